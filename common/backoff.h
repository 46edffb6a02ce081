/* Retry policy and backoff (pure). The delay before attempt n+1 (n failed
 * attempts so far) is min(base * factor^(n-1), max) with +-HQ_BACKOFF_JITTER_PCT
 * jitter; overflow-safe. Retry-After (seconds or HTTP date) on 429/503 pushes
 * the next attempt later, never earlier, clamped to max. */
#ifndef HQ_COMMON_BACKOFF_H
#define HQ_COMMON_BACKOFF_H

#include <stdint.h>

#include "common/err.h"

struct hq_policy {
    long long max_attempts; /* attempts in all, >= 1 (HOOKQ_MAX_ATTEMPTS) */
    long long base_ms;      /* delay after the first failure (HOOKQ_BACKOFF_BASE) */
    double factor;          /* growth per failure, >= 1 (HOOKQ_BACKOFF_FACTOR) */
    long long max_ms;       /* ceiling of one delay (HOOKQ_BACKOFF_MAX) */
};

void hq_policy_init(struct hq_policy *p);
/* Cross-field checks (factor >= 1, base <= max); HQ_EINVAL naming the option. */
int hq_policy_check(const struct hq_policy *p, struct hq_err *err) HQ_MUST_CHECK;

#define HQ_POLICY_OPTS(p)                                                                          \
    {"max-attempts",                                                                               \
     HQ_OPT_INT,                                                                                   \
     &(p)->max_attempts,                                                                           \
     "N",                                                                                          \
     "attempts in all before dead-lettering (default 10)",                                         \
     0,                                                                                            \
     1,                                                                                            \
     1000,                                                                                         \
     0},                                                                                           \
        {"backoff-base",                                                                           \
         HQ_OPT_DURATION,                                                                          \
         &(p)->base_ms,                                                                            \
         "DUR",                                                                                    \
         "delay after the first failure (default 30s)",                                            \
         0,                                                                                        \
         1,                                                                                        \
         86400000LL * 30,                                                                          \
         0},                                                                                       \
        {"backoff-factor",                                                                         \
         HQ_OPT_DOUBLE,                                                                            \
         &(p)->factor,                                                                             \
         "F",                                                                                      \
         "delay growth per failure (default 3)",                                                   \
         0,                                                                                        \
         0,                                                                                        \
         0,                                                                                        \
         0},                                                                                       \
    {                                                                                              \
        "backoff-max", HQ_OPT_DURATION, &(p)->max_ms, "DUR",                                       \
            "longest delay between attempts (default 10h)", 0, 1, 86400000LL * 30, 0               \
    }

/* Delay in ms before the next attempt after 'failed' failed attempts (>= 1).
 * rnd: a uniformly random 64-bit value (the caller's PRNG; tests pass fixed ones). */
long long hq_backoff_delay_ms(const struct hq_policy *p, int failed, uint64_t rnd);

/* Parses a Retry-After value: delta-seconds or an IMF-fixdate/RFC 850/asctime
 * HTTP date. [out] *delay_ms (>= 0). HQ_EINVAL for garbage. */
int hq_retry_after_parse(const char *v, int64_t now_ms, long long *delay_ms) HQ_MUST_CHECK;

/* The delay actually used: max(backoff, retry_after_ms) clamped to p->max_ms;
 * retry_after_ms < 0 means none. */
long long hq_backoff_next_ms(const struct hq_policy *p, int failed, long long retry_after_ms,
                             uint64_t rnd);

/* The retry window (per endpoint): 1 when a retry due at due_ms may be
 * scheduled: window_ms <= 0 (none), or due_ms - first_ms <= window_ms
 * (first_ms: unix ms of the delivery's first attempt). Past it the delivery
 * is exhausted (retry_window_exceeded), whichever of count and time ends first. */
int hq_backoff_in_window(long long first_ms, long long window_ms, long long due_ms);

#endif
