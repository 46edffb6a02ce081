/* Cluster mode of hq_redis_conn (blocking) and hq_redis_router (async): the
 * routing layer over hiredis 0.14 (which has no cluster client). Only
 * redis_conn.c and redis_router.c include this; their headers give the
 * contracts, which these functions implement for a redis-cluster:// URL. */
#ifndef HQ_COMMON_REDIS_CLUSTER_H
#define HQ_COMMON_REDIS_CLUSTER_H

#include "common/redis_client.h"
#include "common/redis_conn.h"

struct hq_cluster_sync;
struct hq_cluster_sync *hq_cluster_sync_open(const struct hq_redis_url *u, int timeout_ms,
                                             struct hq_err *err);
void hq_cluster_sync_free(struct hq_cluster_sync *c);
int hq_cluster_sync_primaries(const struct hq_cluster_sync *c);
redisContext *hq_cluster_sync_node(struct hq_cluster_sync *c, unsigned slot, struct hq_err *err);
redisReply *hq_cluster_sync_cmd(struct hq_cluster_sync *c, unsigned slot, struct hq_err *err,
                                int argc, const char **argv, const size_t *lens);
int hq_cluster_sync_refresh(struct hq_cluster_sync *c, struct hq_err *err);
const char *hq_cluster_sync_node_name(const struct hq_cluster_sync *c, unsigned slot, char *buf,
                                      size_t n);

struct hq_cluster_async;
struct hq_cluster_async *hq_cluster_async_new(uv_loop_t *loop, const struct hq_redis_url *u,
                                              const char *name, hq_redis_state_cb state_cb,
                                              void *arg);
int hq_cluster_async_ready(struct hq_cluster_async *c, unsigned slot);
int hq_cluster_async_command(struct hq_cluster_async *c, unsigned slot, hq_redis_reply_cb cb,
                             void *arg, int timeout_ms, int argc, const char **argv,
                             const size_t *lens);
int hq_cluster_async_script(struct hq_cluster_async *c, unsigned slot,
                            const struct hq_redis_script *s, hq_redis_reply_cb cb, void *arg,
                            int numkeys, int argc, const char **argv, const size_t *lens);
int hq_cluster_async_pending(const struct hq_cluster_async *c);
void hq_cluster_async_close(struct hq_cluster_async *c, void (*on_closed)(void *arg), void *arg);
unsigned long hq_cluster_async_reconnects(const struct hq_cluster_async *c);

#endif
