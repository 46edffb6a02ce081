/* Noisy neighbour, as issued: tenant A has 100,000 events for an
 * endpoint limited to 20/s and 10,000 for one that answers only after the
 * workers' timeout, while tenant B produces 500 events/s to a healthy
 * endpoint; three workers. Checked over a 60-s run: B's p99 (enqueue ->
 * receipt) within 3x its p99 with A absent (both measured here), A's limit
 * within +-10 % over every sliding 10-s window, no attempt of A's spent while
 * throttled, nothing lost. The default suite's size is
 * test_noisy_neighbour. Scenario: tests/harness/noisy.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/noisy.h"

static struct rf R;

static void test_tenant_a_100000_backlog_does_not_slow_tenant_b_past_3x(void **state)
{
    (void)state;
    /* 4 deferrals per attempt of the hanging endpoint: measured 1.84; 14.3
     * without the congestion spacing, 26 without it and the free slots. */
    hq_noisy_neighbour(&R, 100000, 10000, 60, 900000, 4.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RF_TEST(test_tenant_a_100000_backlog_does_not_slow_tenant_b_past_3x, &R),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
