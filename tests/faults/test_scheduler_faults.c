/* Fault scenario 5: schedulers killed mid-move, and two schedulers
 * at once. Retries cycle fast (backoff 1 s, factor 1) between a 30 %-failing
 * endpoint, an always-failing one (3 attempts, then dead) and a healthy one,
 * while two schedulers run and one of them is killed -9 and restarted every
 * 700 ms. A move is one atomic script: a kill loses or repeats nothing, so
 * nothing is lost, nothing delivered twice, each exhausted pair is
 * dead-lettered exactly once, and the retry backlog drains. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/fault_env.h"

static struct rf R; /* R.rcv2: the flaky receiver (30 % of requests fail) */

static pid_t scheduler(void)
{
    const char *args[] = {"--interval", "100ms", "--batch", "50", NULL};
    return wenv_scheduler(&R.w, args);
}

static int retry_backlog_at_least_50(void *arg)
{
    (void)arg;
    return hq_test_cmd_int(R.w.c, "ZCARD hookq:retry") >= 50;
}

static void test_schedulers_killed_mid_move_and_two_at_once_lose_and_repeat_nothing(void **state)
{
    (void)state;
    rf_start_rcv2(&R, 30);
    rf_endpoint_on(&R, &R.rcv2, "/flaky", 20); /* 0.3^20: never exhausted */
    hq_ck_expect_dead_endpoint(&R.ck,
                               rf_endpoint_filtered(&R, &R.w.rcv, "/s/503/down", "sched.down", 3));
    rf_endpoint(&R, "/good");

    const char *extra[] = {
        "--backoff-base", "1s", "--backoff-factor", "1", "--backoff-max", "1s", NULL};
    pid_t wk = wenv_worker(&R.w, extra, NULL);
    pid_t s1 = scheduler(), s2 = scheduler();

    /* 1,500 events: "sched.down" ones fan out to all three endpoints. */
    for (int i = 0; i < 1500; i++)
        hq_ck_produce(&R.ck, R.w.c, i % 5 == 0 ? "sched.down" : "sched.ok", "{\"s\":1}");
    if (!hq_test_wait(retry_backlog_at_least_50, NULL, 15000)) {
        wenv_dump_log(&R.w);
        fail_msg("no retry backlog built up");
    }
    /* Kill -9 one of the two schedulers every 700 ms while retries come due
     * every second; the test restarts it at once, so two run most of the time. */
    int kills = 0;
    int64_t t0 = hq_test_now_ms();
    while (hq_test_now_ms() - t0 < 8000) {
        struct timespec ts = {0, 700 * 1000000L};
        nanosleep(&ts, NULL); /* the fault schedule, not an assertion */
        pid_t *victim = kills % 2 ? &s2 : &s1;
        assert_int_equal(hq_test_kill_wait(*victim, SIGKILL, 5000), 128 + SIGKILL);
        *victim = scheduler();
        kills++;
    }
    hq_ck_note_fault(&R.ck, 0); /* a scheduler holds no delivery in flight */

    print_message("[schedulers] %d kills -9\n", kills);
    struct hq_ck_report rep;
    rf_settle_and_check(&R, 40000, "schedulers", &rep);
    assert_int_equal(rep.dups, 0);
    assert_int_equal(rep.dead, 300); /* every sched.down event to "down", once */
    assert_int_equal(rep.dead_total, 300);
    assert_int_equal(rep.delivered, rep.pairs - 300);
    assert_true(rep.failed_attempts > 300); /* the flaky endpoint really failed */
    assert_int_equal(hq_test_kill_wait(wk, SIGTERM, 20000), 0);
    assert_int_equal(hq_test_kill_wait(s1, SIGTERM, 20000), 0);
    assert_int_equal(hq_test_kill_wait(s2, SIGTERM, 20000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RF_TEST(test_schedulers_killed_mid_move_and_two_at_once_lose_and_repeat_nothing, &R),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
