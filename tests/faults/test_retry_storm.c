/* Retry storm, default-suite size: 20,000 retries due at once while fresh
 * events flow at 500/s to a healthy endpoint. Checked: the fresh events' p99
 * (enqueue -> receipt) stays within 3x the quiet p99 measured in the same
 * run, every retry drains (nothing lost, nothing pending), and no retry lane
 * holds more than the scheduler's bound. The 200,000 is
 * test_retry_storm_slow. Scenario: tests/harness/retry_storm.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/retry_storm.h"

static struct rf R;

static void test_20000_due_retries_do_not_slow_fresh_events_past_3x(void **state)
{
    (void)state;
    hq_retry_storm(&R, 20000, 120000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RF_TEST(test_20000_due_retries_do_not_slow_fresh_events_past_3x, &R),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
