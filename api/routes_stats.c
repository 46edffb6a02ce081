/* /v1/stats: `hookq stats --json [--tenant T]`, computed by common/stats.c
 * (a tenant key gets its tenant's summary). */
#include <microhttpd.h>
#include <string.h>

#include "api/internal.h"
#include "api/worker_rate.h"
#include "common/stats.h"

void hq_api_stats(struct hq_api_req *q)
{
    const char *tenant;
    if (hq_api_query_tenant(q, &tenant) != 0)
        return;
    struct hq_err err = {0};
    struct hq_redis_conn *c = hq_api_redis(q, &err);
    struct hq_buf b;
    int rc = c ? hq_stats_collect_json(c, &q->api->L, tenant, &b, &err) : HQ_EREDIS;
    if (rc != 0) {
        hq_api_fail(q, rc, &err);
        return;
    }
    (void)hq_worker_rate_append(&b); /* deliveries/s when HOOKQ_WORKER_METRICS names workers */
    hq_api_json(q, MHD_HTTP_OK, &b);
    hq_buf_free(&b);
}
