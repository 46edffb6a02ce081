/* Async Redis client on a libuv loop (hiredis 0.14 async + our own adapter,
 * common/redis_uv.c). hiredis 0.14 has no timeouts, so this file owns them:
 * a connect deadline, a per-command deadline (BLOCK commands pass their own,
 * BLOCK + margin), and capped-backoff reconnects (h2o lib/common/redis.c).
 *
 * States (redis_client.c, enum state): DOWN -> CONNECTING -> HANDSHAKE
 * (AUTH/SELECT/PING) -> READY; a failure or deadline seen inside a hiredis
 * callback -> TEARDOWN, and redisAsyncFree runs from the idle handle (never
 * inside a hiredis callback): every pending callback gets reply == NULL
 * ("outcome unknown": the caller must not treat it as success), then DOWN and
 * a reconnect after HQ_RECONNECT_MIN_MS doubling up to HQ_RECONNECT_MAX_MS.
 * hq_redis_client_close -> CLOSING, final.
 *
 * One client = one connection. The worker keeps two: a reader for the
 * blocking XREADGROUP and a writer for everything else, so an ack never waits
 * behind a BLOCK. Single-threaded: call only from the loop's thread. */
#ifndef HQ_COMMON_REDIS_CLIENT_H
#define HQ_COMMON_REDIS_CLIENT_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <uv.h>

#include "common/err.h"
#include "common/redis_url.h"

struct hq_redis_client;

/* reply: borrowed until the callback returns (hiredis frees it after), or NULL
 * when the outcome is unknown (disconnect, deadline, client closing). Error
 * replies are passed as they are (type REDIS_REPLY_ERROR). */
typedef void (*hq_redis_reply_cb)(struct hq_redis_client *c, redisReply *reply, void *arg);
/* Called on every transition to READY (ready = 1; after AUTH/SELECT succeeded)
 * and on every loss of the connection (ready = 0), with a one-line reason. */
typedef void (*hq_redis_state_cb)(struct hq_redis_client *c, int ready, const char *why, void *arg);

/* A script, for hq_redis_client_script: source plus its SHA1 (EVALSHA first,
 * EVAL on NOSCRIPT). Fill with hq_redis_script_init. */
struct hq_redis_script {
    const char *src; /* borrowed, static */
    char sha[41];
};
void hq_redis_script_init(struct hq_redis_script *s, const char *src);

/* Creates a client and starts connecting. name is used in log lines ("reader").
 * url is copied. state_cb may be NULL. Caller closes with hq_redis_client_close. */
struct hq_redis_client *hq_redis_client_new(uv_loop_t *loop, const struct hq_redis_url *url,
                                            const char *name, hq_redis_state_cb state_cb,
                                            void *arg);

/* 1 when READY. */
int hq_redis_client_ready(const struct hq_redis_client *c);

/* Sends a command (argv form; argv/lens are copied by hiredis). timeout_ms:
 * the deadline for its reply (0 = HQ_REDIS_COMMAND_TIMEOUT_MS); when it passes,
 * the connection is torn down and every pending command gets NULL.
 * Returns 0 (cb will be called exactly once) or HQ_EAGAIN when not READY
 * (cb is not called). */
int hq_redis_client_command(struct hq_redis_client *c, hq_redis_reply_cb cb, void *arg,
                            int timeout_ms, int argc, const char **argv,
                            const size_t *lens) HQ_MUST_CHECK;

/* EVALSHA sha numkeys args...; on a NOSCRIPT error reply, resends it as EVAL src
 * transparently (cb sees only the final reply). argv excludes the command, sha
 * and numkeys. Same return contract as hq_redis_client_command. */
int hq_redis_client_script(struct hq_redis_client *c, const struct hq_redis_script *s,
                           hq_redis_reply_cb cb, void *arg, int numkeys, int argc,
                           const char **argv, const size_t *lens) HQ_MUST_CHECK;

/* Number of commands sent whose callbacks have not run yet. */
int hq_redis_client_pending(const struct hq_redis_client *c);

/* Closes: pending callbacks get NULL, handles are closed; on_closed(arg) runs
 * once every libuv handle's close callback has run (then c is freed).
 * May be called from inside a reply or state callback (the work is deferred
 * to an idle callback); a second call is ignored. */
void hq_redis_client_close(struct hq_redis_client *c, void (*on_closed)(void *arg), void *arg);

/* Counters for metrics. reconnects: connection attempts after the first one,
 * failed or not (a 3 s outage adds 4 or 5: the backoff bounds it). */
unsigned long hq_redis_client_reconnects(const struct hq_redis_client *c);

#endif
