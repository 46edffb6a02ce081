/* The scheduler: moves due retries from <b>:retry back onto <b>:events of
 * each partition (base <b> from the deployment's layout), or into <b>:dead
 * when their retry data is missing or corrupt; a retry whose endpoint was
 * deleted or disabled meanwhile is re-enqueued and the worker dead-letters it.
 * It owns the timing (sleep until the earliest due time over all partitions,
 * clamped to [1 ms, interval]), the connection (hq_redis_conn: each
 * partition's batch on the node owning its slot) and the pause of an untagged
 * scheduler while `hookq migrate` runs; the per-member decision is
 * move_due.lua, one atomic call per batch, so any number of schedulers may
 * run side by side.
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
    const char *redis_url; /* borrowed; redis://, unix://, redis-sentinel://, redis-cluster:// */
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
    long long requeued; /* members re-added to <b>:retries (<b>:events when no lane exists) */
    long long dead;     /* members appended to <b>:dead (retry data missing or corrupt) */
    long long now_ms;   /* Redis server time the batch used, unix ms */
    long long next_ms;  /* score of the earliest member left, unix ms; -1 when none */
    int held;           /* due members left in the zset: the retry lane was full */
};

/* Runs the loop until a signal in cfg->stop arrives (returns 0 after finishing
 * the current batch). Redis unreachable at start: HQ_EREDIS with err naming the
 * address. Redis lost later, or an error reply (MOVED: the slot map is
 * refreshed): logged once, reconnected with capped backoff. A migration in
 * progress at start is waited out; an untagged scheduler checks for one
 * every round (at least once a second), and then stops moving, reports
 * "scheduler:<host>:<pid>" in <prefix>:{reg}:migrate:paused, waits for the end
 * and goes on with the new layout. */
int hq_scheduler_run(const struct hq_scheduler_config *cfg, struct hq_err *err) HQ_MUST_CHECK;

/* Moves one batch of at most 'batch' due members of the partition whose base
 * is `base` (L.part[i].base; c the context of the node owning its slot,
 * borrowed) with move_due.lua. [out] res. HQ_EREDIS with err on an I/O
 * failure or error reply. */
int hq_scheduler_move_due(redisContext *c, const char *base, long long batch, long long dead_maxlen,
                          struct hq_move_result *res, struct hq_err *err) HQ_MUST_CHECK;

/* Warns (hq_log) when Redis may lose data: maxmemory-policy other than
 * noeviction, or appendonly off. CONFIG errors (managed Redis) are ignored.
 * Returns the number of warnings logged. */
int hq_scheduler_check_durability(redisContext *c);

#endif
