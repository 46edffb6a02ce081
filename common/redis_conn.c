/* A blocking connection to a deployment: see redis_conn.h. Single mode wraps
 * one context from hq_redis_connect; cluster mode is common/redis_cluster.c. */
#include "common/redis_conn.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/redis_cluster.h"
#include "common/redis_sync.h"

struct hq_redis_conn {
    redisContext *single;            /* single mode, else NULL */
    struct hq_cluster_sync *cluster; /* cluster mode, else NULL */
    char where[300];                 /* single mode: "host:port" for hookq stats */
};

struct hq_redis_conn *hq_redis_conn_open(const char *url, int timeout_ms, struct hq_err *err)
{
    struct hq_redis_url u;
    if (hq_redis_url_parse(url, &u, err) != 0)
        return NULL;
    struct hq_redis_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        hq_err_set(err, HQ_ENOMEM, "redis: out of memory");
        return NULL;
    }
    if (u.cluster) {
        c->cluster = hq_cluster_sync_open(&u, timeout_ms, err);
        if (!c->cluster) {
            free(c);
            return NULL;
        }
        return c;
    }
    c->single = hq_redis_connect(url, timeout_ms, err);
    if (!c->single) {
        free(c);
        return NULL;
    }
    if (c->single->connection_type == REDIS_CONN_UNIX)
        snprintf(c->where, sizeof(c->where), "unix:%s", c->single->unix_sock.path);
    else
        snprintf(c->where, sizeof(c->where), "%s:%d", c->single->tcp.host, c->single->tcp.port);
    return c;
}

void hq_redis_conn_free(struct hq_redis_conn *c)
{
    if (!c)
        return;
    if (c->single)
        redisFree(c->single);
    if (c->cluster)
        hq_cluster_sync_free(c->cluster);
    free(c);
}

int hq_redis_conn_is_cluster(const struct hq_redis_conn *c)
{
    return c->cluster != NULL;
}

int hq_redis_conn_primaries(const struct hq_redis_conn *c)
{
    return c->cluster ? hq_cluster_sync_primaries(c->cluster) : 1;
}

redisContext *hq_redis_conn_node(struct hq_redis_conn *c, unsigned slot, struct hq_err *err)
{
    return c->single ? c->single : hq_cluster_sync_node(c->cluster, slot, err);
}

redisReply *hq_redis_conn_cmd(struct hq_redis_conn *c, unsigned slot, struct hq_err *err, int argc,
                              const char **argv, const size_t *lens)
{
    if (c->single)
        return hq_redis_cmd(c->single, err, argc, argv, lens);
    return hq_cluster_sync_cmd(c->cluster, slot, err, argc, argv, lens);
}

int hq_redis_conn_refresh(struct hq_redis_conn *c, struct hq_err *err)
{
    return c->cluster ? hq_cluster_sync_refresh(c->cluster, err) : 0;
}

const char *hq_redis_conn_node_name(const struct hq_redis_conn *c, unsigned slot, char *buf,
                                    size_t n)
{
    if (c->cluster)
        return hq_cluster_sync_node_name(c->cluster, slot, buf, n);
    snprintf(buf, n, "%s", c->where);
    return buf;
}
