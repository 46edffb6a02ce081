/* Redis Cluster routing, async half: see redis_cluster.h. Placeholder until
 * the routing layer lands: every call fails with a clear error. */
#include "common/redis_cluster.h"

struct hq_cluster_async *hq_cluster_async_new(uv_loop_t *loop, const struct hq_redis_url *u,
                                              const char *name, hq_redis_state_cb state_cb,
                                              void *arg)
{
    (void)loop;
    (void)u;
    (void)name;
    (void)state_cb;
    (void)arg;
    return NULL;
}
int hq_cluster_async_ready(struct hq_cluster_async *c, unsigned slot)
{
    (void)c;
    (void)slot;
    return 0;
}
int hq_cluster_async_command(struct hq_cluster_async *c, unsigned slot, hq_redis_reply_cb cb,
                             void *arg, int timeout_ms, int argc, const char **argv,
                             const size_t *lens)
{
    (void)c, (void)slot, (void)cb, (void)arg, (void)timeout_ms, (void)argc, (void)argv, (void)lens;
    return HQ_EAGAIN;
}
int hq_cluster_async_script(struct hq_cluster_async *c, unsigned slot,
                            const struct hq_redis_script *s, hq_redis_reply_cb cb, void *arg,
                            int numkeys, int argc, const char **argv, const size_t *lens)
{
    (void)c, (void)slot, (void)s, (void)cb, (void)arg, (void)numkeys, (void)argc, (void)argv,
        (void)lens;
    return HQ_EAGAIN;
}
int hq_cluster_async_pending(const struct hq_cluster_async *c)
{
    (void)c;
    return 0;
}
void hq_cluster_async_close(struct hq_cluster_async *c, void (*on_closed)(void *arg), void *arg)
{
    (void)c;
    if (on_closed)
        on_closed(arg);
}
unsigned long hq_cluster_async_reconnects(const struct hq_cluster_async *c)
{
    (void)c;
    return 0;
}
