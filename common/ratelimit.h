/* Per-endpoint rate limits (docs/flow-control.md, "Rate limits"): the limit's
 * syntax and the GCRA lease arithmetic, pure (no I/O). Workers lease tokens
 * in batches from common/scripts/rl_lease.lua, which does in Redis exactly
 * what hq_rl_lease() does here: this copy is the reference the unit test
 * checks the model against and the script test checks the script against.
 *
 * GCRA with reservation. One value per endpoint, the theoretical arrival
 * time TAT (us), in <H>:rl:<id> of the endpoint's home partition H. With
 * emission interval T = period / n and burst b = clamp(ceil(rate * 250 ms),
 * 1, HQ_RL_BURST_MAX), a lease of k = b tokens at time now:
 *   tat   = max(TAT, now); minus refund * T (unused tokens of the caller's
 *           last lease), never below now
 *   start = tat + k*T - b*T - now   (>= 0: when the k tokens become usable)
 *   start > horizon: refused, TAT unchanged (the caller defers);
 *   else  TAT' = tat + k*T, and the caller may spend k tokens from now+start.
 * So in any window w at most rate * w + b tokens are spent, whatever the
 * number of workers; a worker that dies holding tokens only lowers it. */
#ifndef HQ_COMMON_RATELIMIT_H
#define HQ_COMMON_RATELIMIT_H

#include <stdint.h>

#include "common/err.h"

#define HQ_RL_COUNT_MAX     1000000 /* n of n/s or n/m: far above what one endpoint gets */
#define HQ_RL_BURST_MAX     100     /* tokens per lease at most: bounds a dead worker's loss */
#define HQ_RL_BURST_SPAN_US 250000  /* a lease is worth this much time at the rate */
#define HQ_RL_HORIZON_US    2000000 /* a lease starting later than this is refused */
#define HQ_RL_TOKEN_TTL_US  1000000 /* leased tokens unused this long past their start go back */
#define HQ_RL_STR_MAX       24      /* "1000000/m" and the NUL, with room */

struct hq_rate {
    long long n;      /* deliveries per period; 0 = no limit */
    long long per_ms; /* the period: 1000 (/s) or 60000 (/m); 0 when n is 0 */
};

/* Parses "50/s", "3000/m" (also "/sec", "/min"; n 1-HQ_RL_COUNT_MAX), or ""
 * / "0" for no limit, into [out] out. HQ_EINVAL naming the value. Pure. */
int hq_rate_parse(const char *s, struct hq_rate *out, struct hq_err *err) HQ_MUST_CHECK;
/* Writes "50/s" / "3000/m" ("" for no limit) into out (>= HQ_RL_STR_MAX). */
void hq_rate_format(const struct hq_rate *r, char *out, unsigned long n);
/* Emission interval T in us, rounded up (never above the limit): 0 for none. */
int64_t hq_rate_interval_us(const struct hq_rate *r);
/* Burst b = tokens per lease: clamp(ceil(n * 250 ms / period), 1, HQ_RL_BURST_MAX). */
int hq_rate_burst(const struct hq_rate *r);

/* One lease (the model of rl_lease.lua): *tat_us is the stored TAT (0 when
 * absent), updated on a grant. Returns the offset in us from now when the
 * k tokens become usable (>= 0), or -1 when refused (start past horizon_us;
 * *tat_us then only takes the refund). */
int64_t hq_rl_lease(int64_t *tat_us, int64_t now_us, int64_t interval_us, int k, int burst,
                    int refund, int64_t horizon_us);

#endif
