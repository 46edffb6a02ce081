/* Sentinel reply parsing and list order. See redis_sentinel.h. */
#include "common/redis_sentinel.h"

#include <string.h>

int hq_sentinel_parse_master_addr(const redisReply *r, const char *master, char *host, size_t n,
                                  int *port, struct hq_err *err)
{
    if (!r)
        return hq_err_set(err, HQ_EREDIS, "no answer");
    if (r->type == REDIS_REPLY_ERROR)
        return hq_err_set(err, HQ_EREDIS, "%.*s", (int)(r->len > 200 ? 200 : r->len), r->str);
    /* A nil reply is the sentinel's "I monitor no master of that name". */
    if (r->type == REDIS_REPLY_NIL)
        return hq_err_set(err, HQ_EREDIS, "does not know master '%s'", master);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING)
        return hq_err_set(err, HQ_EREDIS, "unexpected reply to get-master-addr-by-name");
    const redisReply *h = r->element[0], *p = r->element[1];
    if (h->len == 0 || h->len >= n)
        return hq_err_set(err, HQ_EREDIS, "bad master host in the reply");
    if (p->len == 0 || p->len > 5)
        return hq_err_set(err, HQ_EREDIS, "bad master port in the reply");
    int v = 0;
    for (size_t i = 0; i < p->len; i++) {
        if (p->str[i] < '0' || p->str[i] > '9')
            return hq_err_set(err, HQ_EREDIS, "bad master port in the reply");
        v = v * 10 + (p->str[i] - '0');
    }
    if (v < 1 || v > 65535)
        return hq_err_set(err, HQ_EREDIS, "bad master port in the reply");
    memcpy(host, h->str, h->len);
    host[h->len] = '\0';
    *port = v;
    return 0;
}

int hq_sentinel_check_role(const redisReply *r, struct hq_err *err)
{
    if (!r)
        return hq_err_set(err, HQ_EREDIS, "no answer to ROLE");
    if (r->type == REDIS_REPLY_ERROR)
        return hq_err_set(err, HQ_EREDIS, "ROLE failed: %.*s", (int)(r->len > 200 ? 200 : r->len),
                          r->str);
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return hq_err_set(err, HQ_EREDIS, "unexpected reply to ROLE");
    const redisReply *role = r->element[0];
    if (role->len == 6 && memcmp(role->str, "master", 6) == 0)
        return 0;
    return hq_err_set(err, HQ_EREDIS, "is a %.*s, not the master (failover in progress?)",
                      (int)(role->len > 16 ? 16 : role->len), role->str);
}

void hq_sentinel_promote(struct hq_redis_url *u, int i)
{
    if (i <= 0 || i >= u->nsentinels)
        return;
    struct hq_sentinel_addr first = u->sentinels[i];
    memmove(&u->sentinels[1], &u->sentinels[0], sizeof(u->sentinels[0]) * (size_t)i);
    u->sentinels[0] = first;
}

int hq_sentinel_is_readonly(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && r->len >= 8 && memcmp(r->str, "READONLY", 8) == 0;
}
