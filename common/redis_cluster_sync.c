/* Redis Cluster routing, blocking half: see redis_cluster.h. Placeholder until
 * the routing layer lands: every call fails with a clear error. */
#include "common/redis_cluster.h"

struct hq_cluster_sync *hq_cluster_sync_open(const struct hq_redis_url *u, int timeout_ms,
                                             struct hq_err *err)
{
    (void)u;
    (void)timeout_ms;
    hq_err_set(err, HQ_EINVAL, "--redis-url: redis-cluster:// is not supported by this build");
    return NULL;
}
void hq_cluster_sync_free(struct hq_cluster_sync *c)
{
    (void)c;
}
int hq_cluster_sync_primaries(const struct hq_cluster_sync *c)
{
    (void)c;
    return 0;
}
redisContext *hq_cluster_sync_node(struct hq_cluster_sync *c, unsigned slot, struct hq_err *err)
{
    (void)c;
    (void)slot;
    hq_err_set(err, HQ_EINVAL, "redis-cluster:// is not supported by this build");
    return NULL;
}
redisReply *hq_cluster_sync_cmd(struct hq_cluster_sync *c, unsigned slot, struct hq_err *err,
                                int argc, const char **argv, const size_t *lens)
{
    (void)c;
    (void)slot;
    (void)argc;
    (void)argv;
    (void)lens;
    hq_err_set(err, HQ_EINVAL, "redis-cluster:// is not supported by this build");
    return NULL;
}
int hq_cluster_sync_refresh(struct hq_cluster_sync *c, struct hq_err *err)
{
    (void)c;
    return hq_err_set(err, HQ_EINVAL, "redis-cluster:// is not supported by this build");
}
const char *hq_cluster_sync_node_name(const struct hq_cluster_sync *c, unsigned slot, char *buf,
                                      size_t n)
{
    (void)c;
    (void)slot;
    if (n)
        buf[0] = '\0';
    return buf;
}
