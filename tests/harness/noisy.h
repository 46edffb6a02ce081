/* The noisy-neighbour scenario of issue 15 (docs/guarantees.md, "A noisy
 * neighbour"), shared by tests/faults/test_noisy_neighbour.c (10,000 and
 * 1,000 events of tenant A, default suite) and test_noisy_neighbour_slow.c
 * (100,000 and 10,000, as issued). Part of the harness library (noisy.c). */
#ifndef HQ_TESTS_HARNESS_NOISY_H
#define HQ_TESTS_HARNESS_NOISY_H

#include "tests/harness/fault_env.h"

/* Three workers. Tenant B produces 500 events/s to a healthy endpoint; its
 * p99 enqueue -> receipt is measured with tenant A absent, then while A has
 * nlimited events for an endpoint limited to 20/s and nhang for one that
 * answers only after the workers' --timeout (1 s), produced within the first
 * seconds of a judged run of secs seconds. Fails unless B's p99 with A is
 * within 3 times its p99 without; A's limited endpoint receives 20/s +-10 %
 * over every sliding 10-s window of the run; each of its deliveries in the
 * run was its event's only attempt; once its backlog is deferred, fewer than
 * 0.5 deferrals per delivery (each comes back about once); the hanging
 * endpoint deferred at most congested_max times per attempt in the run; and, once the limit is
 * lifted and the deferred backlog made due, the checker finds nothing lost within settle_ms (A's
 * hanging endpoint's events dead-lettered after their one attempt, everything else delivered). */
void hq_noisy_neighbour(struct rf *r, long nlimited, long nhang, int secs, int settle_ms,
                        double congested_max);

/* p99 (us) of enqueue -> receipt of the 2xx requests to path on rcv whose
 * webhook-id is evck_<n> with ph <= phase[n] <= ph_hi (ack[n]: unix us of the
 * XADD, both arrays of cap); *count their number. Prints p50, p90, p99 and
 * the maximum in ms, prefixed by label, unless label is NULL. Shared with the
 * retry storm. */
long long hq_lat_p99(struct hq_test_receiver *rcv, const char *path, const int64_t *ack,
                     const char *phase, long cap, char ph, char ph_hi, size_t *count,
                     const char *label);

/* One event of type to the checker's endpoint idx, sent no sooner than
 * *next_us (monotonic us, then advanced by period_us): traffic at a steady
 * pace. Notes its send time (unix us) in ack[n] and ph in phase[n], n its
 * checker number (< cap). Shared with the retry storm. */
void hq_paced_produce(struct rf *r, int64_t *next_us, int period_us, int64_t *ack, char *phase,
                      long cap, char ph, const char *type, const char *payload, int idx);

/* The fewest and the most of the n receipt times at[] in any 10-s window
 * of [t0, t0 + secs s), sliding by 100 ms. Shared with test_rate_limit. */
void hq_rate_windows(const int64_t *at, size_t n, int64_t t0, int secs, int *lo, int *hi);

#endif
