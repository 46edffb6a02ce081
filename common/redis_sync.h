/* Blocking hiredis helpers for the CLI and admin commands (never the worker
 * loop): connect by URL with a timeout, AUTH and SELECT, one-line errors that
 * name the address and the cause. */
#ifndef HQ_COMMON_REDIS_SYNC_H
#define HQ_COMMON_REDIS_SYNC_H

#include <hiredis/hiredis.h>

#include "common/err.h"
#include "common/redis_url.h"

/* Connects, authenticates and selects the db; a redis-sentinel:// URL is
 * resolved first and the node's ROLE must be master. Returns a context the caller
 * frees with redisFree(), or NULL with err set: "redis: cannot reach
 * 127.0.0.1:6379: Connection refused". */
redisContext *hq_redis_connect(const char *url, int timeout_ms, struct hq_err *err);

/* Sentinel mode (u->nsentinels > 0): asks each sentinel in turn, each with
 * HQ_SENTINEL_TIMEOUT_MS to connect and to answer, for the address of
 * u->master; fills u->host/u->port and moves the sentinel that answered to
 * the front. Blocking: at most nsentinels x 2 x HQ_SENTINEL_TIMEOUT_MS.
 * Returns 0, or HQ_EREDIS with err "no sentinel of h1:26379,h2:26379 knows
 * master 'm': <the last cause>". */
int hq_redis_sentinel_resolve(struct hq_redis_url *u, struct hq_err *err) HQ_MUST_CHECK;

/* Runs a command (argv form) and returns its reply (caller frees with
 * freeReplyObject), or NULL with err set for I/O failures AND error replies
 * ("redis: <the server's error>"). */
redisReply *hq_redis_cmd(redisContext *c, struct hq_err *err, int argc, const char **argv,
                         const size_t *lens);

/* The error handling of hq_redis_cmd for a reply got another way (pipelined,
 * EVALSHA with a fallback): r as it came from hiredis (NULL for an I/O
 * failure). Takes ownership of r: returns it when it is not an error reply,
 * else frees it and returns NULL with err set ("redis: <cause>"). */
redisReply *hq_redis_check(redisContext *c, redisReply *r, struct hq_err *err);

/* printf-style convenience around redisCommand (for fixed-shape commands);
 * same error handling as hq_redis_cmd. */
redisReply *hq_redis_cmdf(redisContext *c, struct hq_err *err, const char *fmt, ...);

#endif
