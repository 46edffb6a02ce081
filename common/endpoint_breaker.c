/* Resetting an endpoint's circuit breaker when it is enabled (endpoint_breaker.h). */
#include "common/endpoint_breaker.h"

#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/keys.h"
#include "common/layout.h"
#include "common/redis_conn.h"
#include "common/scripts.h"

int hq_endpoint_breaker_reset(struct hq_redis_conn *conn, const struct hq_layout *L,
                              const struct hq_endpoint *e, struct hq_err *err)
{
    unsigned h = hq_layout_partition_for(L, e->id, strlen(e->id), 0);
    char key[HQ_KEY_MAX], events[HQ_KEY_MAX], now[24];
    hq_key_breaker(L->part[h].base, e->id, key, sizeof(key));
    hq_key_events(L->part[h].base, events, sizeof(events));
    snprintf(now, sizeof(now), "%lld", (long long)hq_now_ms());
    const char *argv[] = {key, events, "e", now, e->id, e->tenant, "0", "0", "0", "0", "0", "0"};
    redisContext *c = hq_redis_conn_node(conn, L->part[h].slot, err);
    if (!c)
        return HQ_EREDIS;
    redisReply *r = hq_script_call(c, hq_script_health, 2, 12, argv, NULL, err);
    if (!r)
        return HQ_EREDIS;
    freeReplyObject(r);
    return 0;
}
