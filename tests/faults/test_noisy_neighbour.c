/* Noisy neighbour, default-suite size: tenant A has 10,000 events for an
 * endpoint limited to 20/s and 1,000 for one that answers only after the
 * workers' timeout, while tenant B produces 500 events/s to a healthy
 * endpoint; three workers. Checked over a 30-s run: B's p99 (enqueue ->
 * receipt) within 3x its p99 with A absent (both measured here), A's limit
 * within +-10 % over every sliding 10-s window, no attempt of A's spent while
 * throttled, nothing lost. The 100,000 / 10,000 is
 * test_noisy_neighbour_slow. Scenario: tests/harness/noisy.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/noisy.h"

static struct rf R;

static void test_tenant_a_backlog_does_not_slow_tenant_b_past_3x(void **state)
{
    (void)state;
    /* 1.2 deferrals per attempt of the hanging endpoint: measured 0.59-0.60;
     * 1.05-1.7 when a congested endpoint's free slots went unused. */
    hq_noisy_neighbour(&R, 10000, 1000, 30, 240000, 1.2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RF_TEST(test_tenant_a_backlog_does_not_slow_tenant_b_past_3x, &R),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
