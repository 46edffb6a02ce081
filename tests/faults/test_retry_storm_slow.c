/* Retry storm as issue 15 states it: 200,000 retries due at once while fresh
 * events flow at 500/s to a healthy endpoint; their p99 stays within 3x the
 * quiet p99 and the retries all drain. Label slow (minutes); the default
 * suite runs test_retry_storm (20,000). Scenario: tests/harness/retry_storm.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/retry_storm.h"

static struct rf R;

static void test_200000_due_retries_do_not_slow_fresh_events_past_3x(void **state)
{
    (void)state;
    hq_retry_storm(&R, 200000, 600000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RF_TEST(test_200000_due_retries_do_not_slow_fresh_events_past_3x, &R),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
