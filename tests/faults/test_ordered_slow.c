/* Ordered endpoints at the sizes (docs/ordering.md; the shorter runs
 * are tests/integration/test_ordered.c): 5,000 events over 100 keys to an
 * ordered endpoint failing 20 % of requests, from 3 workers with a kill -9
 * and a scheduler restart in the middle, an unordered endpoint beside it;
 * and 100 keys x 100 events: per-key order held, lines run in parallel. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/ordered_check.h"

static struct rf R;

static void test_5000_events_block_20pct_failures_kill9_scheduler_restart(void **state)
{
    (void)state;
    rf_start_rcv2(&R, 20);
    struct ordered_run o = {.r = &R, .rcv = &R.rcv2, .path = "/flaky", .nkeys = 100, .per_key = 50};
    ordered_endpoint(&o, HQ_ORDERED_BLOCK);
    rf_endpoint(&R, "/plain"); /* unordered, on the other receiver */
    int64_t t0 = hq_test_now_ms();
    ordered_kill9_run(&o, 3, 300000);
    struct ordered_report rep;
    check_order(&o, &rep);
    print_message("[ordered slow, block] %ld delivered, %ld failed, %ld repeats, %ld early, %ld "
                  "lost in %lld ms\n",
                  rep.delivered, rep.failed, rep.repeats, rep.early, rep.lost,
                  (long long)(hq_test_now_ms() - t0));
    assert_int_equal(rep.early, 0);
    assert_int_equal(rep.lost, 0);
    assert_true(rep.failed > 0);
    assert_int_equal(ordered_dead(&o), 0);
    struct count_arg ca = {&R.w.rcv, "/plain", 5000};
    wenv_wait(&R.w, received_at_least, &ca, 60000, "the unordered endpoint's 5000 events");
}

static void test_100_keys_x_100_in_order_and_in_parallel(void **state)
{
    (void)state;
    struct ordered_run o = {.r = &R, .path = "/delay/5/ord", .nkeys = 100, .per_key = 100};
    ordered_endpoint(&o, HQ_ORDERED_BLOCK);
    const char *extra[] = {"--concurrency", "128", "--endpoint-concurrency", "32", NULL};
    rf_worker(&R, "w1", extra);
    rf_worker(&R, "w2", extra);
    int64_t t0 = hq_test_now_ms();
    ordered_produce(&o);
    ordered_wait_delivered(&o, 300000);
    struct ordered_report rep;
    check_order(&o, &rep);
    print_message("[ordered slow, 100 x 100] %ld delivered, %ld repeats, %ld early, max in flight "
                  "%d, %lld ms\n",
                  rep.delivered, rep.repeats, rep.early, R.w.rcv.max_in_flight,
                  (long long)(hq_test_now_ms() - t0));
    assert_int_equal(rep.early, 0);
    assert_int_equal(rep.lost, 0);
    assert_int_equal(rep.repeats, 0);
    assert_true(R.w.rcv.max_in_flight > 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RF_TEST(test_5000_events_block_20pct_failures_kill9_scheduler_restart, &R),
        RF_TEST(test_100_keys_x_100_in_order_and_in_parallel, &R),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
