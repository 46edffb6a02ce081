/* The scheduler: moves due retries from <p>:retry back onto <p>:events, or
 * into <p>:dead when their endpoint is gone or disabled. It owns the timing
 * (sleep until the earliest due time, clamped to [1 ms, interval]) and the
 * Redis connection; the per-member decision is move_due.lua, one atomic call
 * per batch, so any number of schedulers may run side by side.
 *
 * It is a plain blocking loop over hiredis sync: it is not the hot delivery
 * path, and one script call per batch of up to HQ_SCHED_BATCH_MAX members
 * dominates its cost. docs/internals/scheduler.md explains the choices. */
#ifndef HQ_SCHEDULER_SCHEDULER_H
#define HQ_SCHEDULER_SCHEDULER_H

#include <hiredis/hiredis.h>
#include <signal.h>

#include "common/err.h"

struct hq_scheduler_config {
    const char *redis_url; /* borrowed; redis:// or unix:// */
    const char *prefix;    /* borrowed; key prefix */
    long long interval_ms; /* longest sleep between checks, >= 1 */
    long long batch;       /* members moved per script call, 1..HQ_SCHED_BATCH_MAX */
    long long dead_maxlen; /* XADD MAXLEN ~ on <p>:dead; 0 = unbounded */
    const sigset_t *stop;  /* borrowed; signals that stop the loop. The caller blocks
                            * them first (sigprocmask); the loop waits on them with
                            * sigtimedwait, so a stop is never missed between a check
                            * and a sleep. NULL: run until an error. */
};

/* Result of one batch. */
struct hq_move_result {
    long long requeued; /* members re-added to <p>:events */
    long long dead;     /* members appended to <p>:dead (endpoint gone/disabled, bad data) */
    long long now_ms;   /* Redis server time the batch used, unix ms */
    long long next_ms;  /* score of the earliest member left, unix ms; -1 when none */
};

/* Runs the loop until a signal in cfg->stop arrives (returns 0 after finishing
 * the current batch). Redis unreachable at start: HQ_EREDIS with err naming the
 * address. Redis lost later: logged once, reconnected with capped backoff. */
int hq_scheduler_run(const struct hq_scheduler_config *cfg, struct hq_err *err) HQ_MUST_CHECK;

/* Moves one batch of at most 'batch' due members (move_due.lua). c is
 * borrowed. [out] res. HQ_EREDIS with err on an I/O failure or error reply. */
int hq_scheduler_move_due(redisContext *c, const char *prefix, long long batch,
                          long long dead_maxlen, struct hq_move_result *res,
                          struct hq_err *err) HQ_MUST_CHECK;

/* Warns (hq_log) when Redis may lose data: maxmemory-policy other than
 * noeviction, or appendonly off. CONFIG errors (managed Redis) are ignored.
 * Returns the number of warnings logged. */
int hq_scheduler_check_durability(redisContext *c);

#endif
