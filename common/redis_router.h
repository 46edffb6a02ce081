/* The worker's async Redis access to a whole deployment, on a libuv loop:
 * one hq_redis_client for a single Redis (redis://, unix://,
 * redis-sentinel://), or one client per cluster primary plus the slot map for
 * a Redis Cluster (redis-cluster://; common/redis_cluster.c). Callers name
 * the slot of the keys a command touches (from hq_layout); in single mode it
 * is ignored and every call is the hq_redis_client call, unchanged.
 *
 * Cluster mode: the map comes from CLUSTER SLOTS; a command for a slot whose
 * node has no READY connection yet starts connecting and returns HQ_EAGAIN
 * (like a client not READY); a MOVED reply refreshes the map and resends the
 * command to the new owner (the callback sees only the final reply); ASK
 * resends once after ASKING; TRYAGAIN / CLUSTERDOWN / LOADING / MASTERDOWN are
 * passed to the callback as the error replies they are (the caller backs off
 * as for any Redis error). A lost node connection gives every pending command
 * reply == NULL, as hq_redis_client does.
 *
 * One router per role: the worker keeps one for writes (scripts, claims,
 * lookups) and one per partition for its blocking XREADGROUP, so a read never
 * delays a write. Single-threaded: call only from the loop's thread. */
#ifndef HQ_COMMON_REDIS_ROUTER_H
#define HQ_COMMON_REDIS_ROUTER_H

#include "common/redis_client.h"

struct hq_redis_router;

/* Starts connecting (single) or loading the slot map (cluster). url is
 * copied. state_cb (may be NULL) is called as hq_redis_client's, for each
 * node connection: c is that node's client. */
struct hq_redis_router *hq_redis_router_new(uv_loop_t *loop, const struct hq_redis_url *url,
                                            const char *name, hq_redis_state_cb state_cb,
                                            void *arg);

/* 1 when a command for slot can be sent now. */
int hq_redis_router_ready(struct hq_redis_router *r, unsigned slot);

/* As hq_redis_client_command / _script, sent to the node owning slot. The
 * callback's c is the client that gave the final reply (may be NULL when the
 * router itself failed the command). */
int hq_redis_router_command(struct hq_redis_router *r, unsigned slot, hq_redis_reply_cb cb,
                            void *arg, int timeout_ms, int argc, const char **argv,
                            const size_t *lens) HQ_MUST_CHECK;
int hq_redis_router_script(struct hq_redis_router *r, unsigned slot,
                           const struct hq_redis_script *s, hq_redis_reply_cb cb, void *arg,
                           int numkeys, int argc, const char **argv,
                           const size_t *lens) HQ_MUST_CHECK;

/* Commands sent whose callbacks have not run. */
int hq_redis_router_pending(const struct hq_redis_router *r);

/* Closes every connection (pending callbacks get NULL); on_closed(arg) runs
 * once, when all are closed, then r is freed. */
void hq_redis_router_close(struct hq_redis_router *r, void (*on_closed)(void *arg), void *arg);

/* Reconnects summed over the node connections (metrics). */
unsigned long hq_redis_router_reconnects(const struct hq_redis_router *r);

#endif
