/* A blocking connection to a whole deployment, for the CLI, the scheduler and
 * the producer library (never the worker loop): one Redis (redis://, unix://,
 * redis-sentinel://) or a Redis Cluster (redis-cluster://). Every hookq
 * command touches keys of one known slot, so callers name the slot (from
 * hq_layout: a partition's or the registry's) and get the context of the node
 * that owns it.
 *
 * Single mode: one redisContext, the slot is ignored.
 * Cluster mode (common/redis_cluster.c): the slot map from CLUSTER SLOTS of a
 * seed node; one context per primary, connected on first use (AUTH with the
 * URL's password); hq_redis_conn_cmd follows MOVED (refresh the map, resend)
 * and ASK (ASKING + resend, once). TRYAGAIN / CLUSTERDOWN / LOADING come back
 * as errors ("redis: TRYAGAIN ...") for the caller's usual back-off.
 *
 * Not thread-safe. Ownership: the conn owns its contexts; a context returned
 * by hq_redis_conn_node is borrowed until the next call on the conn. */
#ifndef HQ_COMMON_REDIS_CONN_H
#define HQ_COMMON_REDIS_CONN_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "common/err.h"
#include "common/redis_url.h"

struct hq_redis_conn;

/* Connects (single: as hq_redis_connect; cluster: to the first seed that
 * answers CLUSTER SLOTS, refusing a cluster without full slot coverage only
 * when nothing is served at all). Returns NULL with a one-line err naming the
 * address and cause. */
struct hq_redis_conn *hq_redis_conn_open(const char *url, int timeout_ms, struct hq_err *err);
void hq_redis_conn_free(struct hq_redis_conn *c);

/* 1 for a redis-cluster:// URL. */
int hq_redis_conn_is_cluster(const struct hq_redis_conn *c);
/* Primaries serving slots (1 in single mode). */
int hq_redis_conn_primaries(const struct hq_redis_conn *c);

/* The context of the node owning slot, connected now if needed; NULL with err
 * ("redis: no node serves slot 1234 (cluster coverage: ...)", or a connect
 * failure). Borrowed. */
redisContext *hq_redis_conn_node(struct hq_redis_conn *c, unsigned slot, struct hq_err *err);

/* One command on the node of slot: as hq_redis_cmd (NULL with err for I/O
 * failures and error replies) after following MOVED and ASK. */
redisReply *hq_redis_conn_cmd(struct hq_redis_conn *c, unsigned slot, struct hq_err *err, int argc,
                              const char **argv, const size_t *lens);

/* Re-reads the slot map (cluster; a no-op returning 0 in single mode), e.g.
 * after a MOVED seen on a pipelined reply. */
int hq_redis_conn_refresh(struct hq_redis_conn *c, struct hq_err *err) HQ_MUST_CHECK;

/* "127.0.0.1:7001", the node owning slot per the current map ("-" when none),
 * for hookq stats; single mode: the one address. */
const char *hq_redis_conn_node_name(const struct hq_redis_conn *c, unsigned slot, char *buf,
                                    size_t n);

#endif
