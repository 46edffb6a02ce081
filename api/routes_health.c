/* /healthz (the process serves), /readyz (Redis answers and the server is
 * not draining: load balancers stop sending before it stops) and the
 * OpenAPI document. */
#include <microhttpd.h>
#include <string.h>

#include "api/internal.h"
#include "common/redis_sync.h"

static void ok(struct hq_api_req *q)
{
    struct hq_buf b;
    hq_buf_init(&b, 64);
    if (hq_buf_printf(&b, "{\"status\":\"ok\"}") == 0)
        hq_api_json(q, MHD_HTTP_OK, &b);
    hq_buf_free(&b);
}

void hq_api_healthz(struct hq_api_req *q)
{
    ok(q);
}

void hq_api_readyz(struct hq_api_req *q)
{
    if (atomic_load(&q->api->draining)) {
        hq_api_problem(q, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                       "server: shutting down (draining)");
        return;
    }
    struct hq_err err = {0};
    redisContext *c = hq_api_registry(q, &err);
    redisReply *r = c ? hq_redis_cmdf(c, &err, "PING") : NULL;
    if (!r) {
        hq_api_fail(q, HQ_EREDIS, &err);
        return;
    }
    freeReplyObject(r);
    ok(q);
}

void hq_api_openapi(struct hq_api_req *q)
{
    struct hq_buf b;
    hq_buf_init(&b, hq_api_openapi_json_len + 1);
    if (hq_buf_append(&b, hq_api_openapi_json, hq_api_openapi_json_len) == 0)
        hq_api_json(q, MHD_HTTP_OK, &b);
    hq_buf_free(&b);
}
