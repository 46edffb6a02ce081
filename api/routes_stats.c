/* /v1/stats: `hookq stats --json [--tenant T]`, computed by common/stats.c
 * (a tenant key gets its tenant's summary). */
#include <microhttpd.h>
#include <string.h>

#include "api/internal.h"
#include "common/event.h"
#include "common/stats.h"

void hq_api_stats(struct hq_api_req *q)
{
    const char *tenant = hq_api_query(q, "tenant");
    const char *kt = hq_api_tenant(q);
    struct hq_err err = {0};
    if (tenant && hq_event_check_tenant(tenant, strlen(tenant), &err) != 0) {
        hq_api_problem(q, MHD_HTTP_BAD_REQUEST, "invalid", err.msg);
        return;
    }
    if (kt[0] && tenant && strcmp(tenant, kt) != 0) {
        hq_api_problem(q, MHD_HTTP_FORBIDDEN, "forbidden",
                       "tenant: this API key is scoped to another tenant");
        return;
    }
    if (kt[0])
        tenant = kt;
    struct hq_redis_conn *c = hq_api_redis(q, &err);
    struct hq_buf b;
    int rc = c ? hq_stats_collect_json(c, &q->api->L, tenant, &b, &err) : HQ_EREDIS;
    if (rc != 0) {
        hq_api_fail(q, rc, &err);
        return;
    }
    hq_api_json(q, MHD_HTTP_OK, &b);
    hq_buf_free(&b);
}
