/* Lua scripts, one atomic operation each, embedded from common/scripts/ (one .lua file per script)
 * at build time (cmake/HqEmbed.cmake). Callers use EVALSHA and fall back to
 * EVAL on NOSCRIPT (a restarted Redis has an empty script cache). */
#ifndef HQ_COMMON_SCRIPTS_H
#define HQ_COMMON_SCRIPTS_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "common/err.h"
#include "common/limits.h"

/* The scripts' sources, generated from common/scripts/<name>.lua. */
extern const char hq_script_record_outcomes[];
extern const char hq_script_move_due[];
extern const char hq_script_dlq_replay[];
extern const char hq_script_attempts_read[];
extern const char hq_script_lane_stats[];
extern const char hq_script_rl_lease[];
extern const char hq_script_health[];  /* circuit breakers (worker/breaker.c) */
extern const char hq_script_disable[]; /* automatic disable, registry side (worker/breaker.c) */

/* hookq.delivery.exhausted (worker/exhausted.c) */
extern const char hq_script_exhausted[];

/* A failed batch's retry item (worker/batch_retry.c) */
extern const char hq_script_batch_retry[];
/* ordered endpoints' lines: sends due heads (worker/ordered.c) */
extern const char hq_script_lines_claim[];
/* idempotent events: the dedupe claim of a read batch (worker/dedupe.c) */
extern const char hq_script_claim_ids[];
/* idempotent events, producers' side: is an id claimed? (producer/producer.c,
 * pipelined with the XADD; libhookq embeds it alone: gen/dd_seen_gen.c) */
extern const char hq_script_dd_seen[];
extern const char hq_script_dd_seen_sha1[]; /* its SHA1, hex: computed at build time */

/* SHA1 hex (41 bytes with NUL) of a script's source, for EVALSHA. */
void hq_script_sha1(const char *src, char out[41]);

/* Arguments (keys and args) one blocking script call may carry. */
#define HQ_SCRIPT_ARGS_MAX (HQ_DLQ_PAGE + 8)

/* Blocking script call for the scheduler and admin commands (the worker's
 * async client has its own, hq_redis_client_script): EVALSHA sha numkeys
 * argv..., and once EVAL with the source when Redis answers NOSCRIPT (a
 * restarted Redis has an empty script cache). argv holds keys then args
 * (borrowed); lens NULL means NUL-terminated. Returns the reply (caller frees)
 * or NULL with err set, for I/O failures and error replies alike. */
redisReply *hq_script_call(redisContext *c, const char *script, int nkeys, int argc,
                           const char **argv, const size_t *lens, struct hq_err *err);

/* 1 when r is Redis' NOSCRIPT error reply. */
int hq_script_is_noscript(const redisReply *r);

#endif
