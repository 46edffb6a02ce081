/* Fault scenario 5 (issue 5): schedulers killed mid-move, and two schedulers
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

#include "tests/harness/checker.h"
#include "tests/harness/worker_env.h"

static struct wenv W;
static struct hq_test_receiver FLAKY;

static int setup(void **state)
{
    (void)state;
    wenv_start(&W, NULL);
    memset(&FLAKY, 0, sizeof(FLAKY));
    hq_test_receiver_start(&FLAKY);
    FLAKY.flaky_pct = 30;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hq_test_receiver_stop(&FLAKY);
    wenv_stop(&W);
    return 0;
}

static pid_t scheduler(void)
{
    const char *args[] = {"scheduler", "--redis-url", W.redis.url, "--interval",
                          "100ms",     "--batch",     "50",        NULL};
    return hq_test_spawn(args, NULL, W.log);
}

static int retry_backlog_at_least_50(void *arg)
{
    (void)arg;
    return hq_test_cmd_int(W.c, "ZCARD hookq:retry") >= 50;
}

static void test_schedulers_killed_mid_move_and_two_at_once_lose_and_repeat_nothing(void **state)
{
    (void)state;
    struct hq_endpoint flaky, down, good;
    char url[128];
    snprintf(url, sizeof(url), "%s/flaky", FLAKY.url);
    wenv_endpoint(&W, url, NULL, NULL, 20, &flaky); /* 0.3^20: never exhausted */
    snprintf(url, sizeof(url), "%s/s/503/down", W.rcv.url);
    wenv_endpoint(&W, url, "sched.down", NULL, 3, &down);
    snprintf(url, sizeof(url), "%s/good", W.rcv.url);
    wenv_endpoint(&W, url, NULL, NULL, 0, &good);
    struct hq_ck ck;
    hq_ck_init(&ck, "hookq");
    hq_ck_endpoint(&ck, &flaky, &FLAKY);
    hq_ck_expect_dead_endpoint(&ck, hq_ck_endpoint(&ck, &down, &W.rcv));
    hq_ck_endpoint(&ck, &good, &W.rcv);

    const char *extra[] = {
        "--backoff-base", "1s", "--backoff-factor", "1", "--backoff-max", "1s", NULL};
    pid_t wk = wenv_worker(&W, extra, NULL);
    pid_t s1 = scheduler(), s2 = scheduler();

    /* 1,500 events: "sched.down" ones fan out to all three endpoints. */
    for (int i = 0; i < 1500; i++)
        hq_ck_produce(&ck, W.c, i % 5 == 0 ? "sched.down" : "sched.ok", "{\"s\":1}");
    if (!hq_test_wait(retry_backlog_at_least_50, NULL, 15000)) {
        wenv_dump_log(&W);
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
    hq_ck_note_fault(&ck, 0); /* a scheduler holds no delivery in flight */

    if (!hq_ck_wait_settled(&ck, W.c, 40000)) {
        wenv_dump_log(&W);
        fail_msg("not settled after the scheduler kills");
    }
    struct hq_ck_report rep;
    hq_ck_collect(&ck, W.c, 1, &rep);
    print_message("[schedulers] %d kills -9\n", kills);
    hq_ck_print(&rep, "schedulers");
    hq_ck_assert(&ck, &rep);
    assert_int_equal(rep.dups, 0);
    assert_int_equal(rep.dead, 300); /* every sched.down event to "down", once */
    assert_int_equal(rep.dead_total, 300);
    assert_int_equal(rep.delivered, rep.pairs - 300);
    assert_true(rep.failed_attempts > 300); /* the flaky endpoint really failed */
    assert_int_equal(hq_test_kill_wait(wk, SIGTERM, 20000), 0);
    assert_int_equal(hq_test_kill_wait(s1, SIGTERM, 20000), 0);
    assert_int_equal(hq_test_kill_wait(s2, SIGTERM, 20000), 0);
    hq_ck_free(&ck);
    hq_endpoint_free(&flaky);
    hq_endpoint_free(&down);
    hq_endpoint_free(&good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_schedulers_killed_mid_move_and_two_at_once_lose_and_repeat_nothing, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
