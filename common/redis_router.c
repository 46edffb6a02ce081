/* The worker's Redis access: see redis_router.h. Single mode forwards to one
 * hq_redis_client; cluster mode is common/redis_cluster.c. */
#include "common/redis_router.h"

#include <stdlib.h>

#include "common/alloc.h"
#include "common/redis_cluster.h"

struct hq_redis_router {
    struct hq_redis_client *single;   /* single mode, else NULL */
    struct hq_cluster_async *cluster; /* cluster mode, else NULL */
    int closing;                      /* hq_redis_router_close was called */
};

struct hq_redis_router *hq_redis_router_new(uv_loop_t *loop, const struct hq_redis_url *url,
                                            const char *name, hq_redis_state_cb state_cb, void *arg)
{
    struct hq_redis_router *r = hq_calloc(1, sizeof(*r));
    if (url->cluster) {
        r->cluster = hq_cluster_async_new(loop, url, name, state_cb, arg);
        if (!r->cluster) {
            free(r);
            return NULL;
        }
    } else {
        r->single = hq_redis_client_new(loop, url, name, state_cb, arg);
    }
    return r;
}

int hq_redis_router_ready(struct hq_redis_router *r, unsigned slot)
{
    return r->single ? hq_redis_client_ready(r->single) : hq_cluster_async_ready(r->cluster, slot);
}

int hq_redis_router_command(struct hq_redis_router *r, unsigned slot, hq_redis_reply_cb cb,
                            void *arg, int timeout_ms, int argc, const char **argv,
                            const size_t *lens)
{
    if (r->single)
        return hq_redis_client_command(r->single, cb, arg, timeout_ms, argc, argv, lens);
    return hq_cluster_async_command(r->cluster, slot, cb, arg, timeout_ms, argc, argv, lens);
}

int hq_redis_router_script(struct hq_redis_router *r, unsigned slot,
                           const struct hq_redis_script *s, hq_redis_reply_cb cb, void *arg,
                           int numkeys, int argc, const char **argv, const size_t *lens)
{
    if (r->single)
        return hq_redis_client_script(r->single, s, cb, arg, numkeys, argc, argv, lens);
    return hq_cluster_async_script(r->cluster, slot, s, cb, arg, numkeys, argc, argv, lens);
}

int hq_redis_router_pending(const struct hq_redis_router *r)
{
    return r->single ? hq_redis_client_pending(r->single) : hq_cluster_async_pending(r->cluster);
}

struct close_ctx {
    void (*on_closed)(void *arg);
    void *arg;
    struct hq_redis_router *r;
};

static void closed(void *arg)
{
    struct close_ctx *cc = arg;
    if (cc->on_closed)
        cc->on_closed(cc->arg);
    free(cc->r);
    free(cc);
}

void hq_redis_router_close(struct hq_redis_router *r, void (*on_closed)(void *arg), void *arg)
{
    if (r->closing)
        return; /* a second call is ignored, as for hq_redis_client_close */
    r->closing = 1;
    struct close_ctx *cc = hq_calloc(1, sizeof(*cc));
    cc->on_closed = on_closed;
    cc->arg = arg;
    cc->r = r;
    if (r->single)
        hq_redis_client_close(r->single, closed, cc);
    else
        hq_cluster_async_close(r->cluster, closed, cc);
}

unsigned long hq_redis_router_reconnects(const struct hq_redis_router *r)
{
    return r->single ? hq_redis_client_reconnects(r->single)
                     : hq_cluster_async_reconnects(r->cluster);
}
