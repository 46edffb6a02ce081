/* Fault scenario 4: SIGTERM drain under load. Two workers share a
 * stream fed at a steady rate to a slow and a fast endpoint; one worker gets
 * SIGTERM in the middle of the traffic, finishes what it has in flight and
 * exits 0, a replacement starts, and the other worker carries on. A drain is
 * not a crash: nothing is lost and nothing is delivered twice. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/fault_env.h"

static struct rf R;

/* Produces for ms at rate events/s (paced by the clock, not asserted on). */
static void produce_for(struct hq_ck *ck, int ms, int rate)
{
    int64_t t0 = hq_test_now_ms();
    long done = 0;
    for (int64_t el = 0; el < ms; el = hq_test_now_ms() - t0) {
        for (; done < el * rate / 1000 + 1; done++)
            assert_int_equal(hq_ck_produce(ck, R.w.c, "drain.load", "{\"d\":1}"), 2);
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void test_sigterm_under_load_drains_without_loss_or_duplicates(void **state)
{
    (void)state;
    rf_endpoint(&R, "/delay/300/slow");
    rf_endpoint(&R, "/fast");

    const char *extra[] = {"--concurrency", "200", "--endpoint-concurrency", "200", NULL};
    const char *sargs[] = {"--interval", "200ms", NULL};
    pid_t sc = wenv_scheduler(&R.w, sargs);
    pid_t a = wenv_worker(&R.w, extra, NULL);
    pid_t b = wenv_worker(&R.w, extra, NULL);

    produce_for(&R.ck, 3000, 300);
    int in_flight = hq_ck_in_flight(&R.w.rcv);
    hq_ck_note_fault(&R.ck, 0); /* a drain may not duplicate anything */
    int64_t t0 = hq_test_now_ms();
    if (kill(a, SIGTERM) != 0)
        fail_msg("kill: %s", strerror(errno));
    /* Traffic goes on while A drains. */
    produce_for(&R.ck, 2000, 300);
    int st = hq_test_kill_wait(a, SIGTERM, 20000);
    int64_t drain_ms = hq_test_now_ms() - t0;
    if (st != 0)
        wenv_dump_log(&R.w);
    assert_int_equal(st, 0);
    pid_t a2 = wenv_worker(&R.w, extra, NULL);
    produce_for(&R.ck, 2000, 300);

    print_message("[drain] %d in flight at SIGTERM, exited 0 after %lld ms\n", in_flight,
                  (long long)drain_ms);
    struct hq_ck_report rep;
    rf_settle_and_check(&R, 30000, "drain", &rep);
    assert_int_equal(rep.dups, 0);
    assert_int_equal(rep.delivered, rep.pairs);
    assert_int_equal(rep.dead_total, 0);
    struct hq_ck_outcomes o;
    hq_ck_outcomes(&R.ck, R.w.c, &o);
    assert_int_equal(o.retry + o.dead, 0); /* a drain spends no retry budget */
    assert_int_equal(hq_test_kill_wait(b, SIGTERM, 20000), 0);
    assert_int_equal(hq_test_kill_wait(a2, SIGTERM, 20000), 0);
    assert_int_equal(hq_test_kill_wait(sc, SIGTERM, 20000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RF_TEST(test_sigterm_under_load_drains_without_loss_or_duplicates, &R),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
