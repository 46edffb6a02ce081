/* The retry-storm scenario of issue 15 (docs/guarantees.md, "A retry storm"),
 * shared by tests/faults/test_retry_storm.c (20,000 retries, default suite)
 * and test_retry_storm_slow.c (200,000, as issued). Part of the harness
 * library (retry_storm.c). */
#ifndef HQ_TESTS_HARNESS_RETRY_STORM_H
#define HQ_TESTS_HARNESS_RETRY_STORM_H

#include "tests/harness/fault_env.h"

/* Fresh events at 500/s to a healthy endpoint: their p99 enqueue -> receipt
 * is measured quiet, then while nretries retries (another healthy endpoint,
 * answering in 50 ms) are all due at once. Fails unless the storm's p99 is within 3 times the
 * quiet one, every retry drained (the checker: nothing lost, nothing pending,
 * no backlog) within drain_timeout_ms, and no partition's retry lane ever held
 * more than the scheduler's bound. */
void hq_retry_storm(struct rf *r, long nretries, int drain_timeout_ms);

#endif
