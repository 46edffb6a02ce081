/* Fault scenario 2: kill -9 of a worker holding ~1,000 deliveries
 * in flight (held at the receiver's gate, so however slow the machine all of
 * them are in flight together); another worker reclaims every entry after
 * --claim-idle. Checked: nothing lost, duplicates no more than the
 * deliveries the killed worker had in flight, signatures valid, nothing
 * pending, no retry budget spent, no dead letters. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/fault_env.h"

static struct rf R;

static void test_kill9_with_1000_in_flight_another_worker_reclaims_all(void **state)
{
    (void)state;
    /* Held until the gate opens: a 2 s delay instead let an ASan worker on a
     * busy machine see its first requests answered before its last were sent
     * (at most 823 of 950 in flight at once). */
    rf_endpoint(&R, "/gate/k");
    hq_test_receiver_gate(&R.w.rcv, 1);
    /* 950: the receiver (libmicrohttpd, select()) cannot serve fds past 1024, and
     * the reclaiming worker opens its connections all at once. */
    const int n = 950;
    for (int i = 0; i < n; i++)
        assert_int_equal(hq_ck_produce(&R.ck, R.w.c, "kill.test", "{\"k\":1}"), 1);

    /* --timeout 30s: a request held at the gate is in flight, not failed, for
     * as long as the test waits for 900 of them (25 s); --claim-idle must
     * exceed it by more than 5 s (the worker refuses less). */
    const char *extra[] = {"--timeout",
                           "30s",
                           "--claim-idle",
                           "36s",
                           "--concurrency",
                           "1200",
                           "--endpoint-concurrency",
                           "1200",
                           NULL};
    const char *sargs[] = {"--interval", "200ms", NULL};
    pid_t sc = wenv_scheduler(&R.w, sargs);
    pid_t a = wenv_worker(&R.w, extra, NULL);
    struct rf_flight_arg fa = {&R.w.rcv, 900};
    if (!hq_test_wait(rf_in_flight_at_least, &fa, 25000)) {
        wenv_dump_log(&R.w);
        fail_msg("900 deliveries never in flight (%d; %lld entries pending)",
                 hq_ck_in_flight(&R.w.rcv), wenv_pending(&R.w));
    }
    /* Sampled just before the fault: what the receiver is answering, and what
     * the worker holds unacknowledged (in flight from its side). */
    int at_receiver = hq_ck_in_flight(&R.w.rcv);
    long long held = wenv_pending(&R.w);
    assert_int_equal(hq_test_kill_wait(a, SIGKILL, 5000), 128 + SIGKILL);
    hq_ck_note_fault(&R.ck, held);
    /* The killed worker's held requests are answered to closed sockets; the
     * reclaiming worker's pass at once. */
    hq_test_receiver_gate(&R.w.rcv, 0);

    int64_t t_kill = hq_test_now_ms();
    /* b: as a but with a shorter timeout (below), closing idle connections after 1 s, and with
     * /healthz to say when it is ready. Its baseline: ready, nothing reclaimed yet (the claim idle
     * time is 16 s). */
    char maddr[64], hurl[128];
    snprintf(maddr, sizeof(maddr), "127.0.0.1:%d", hq_test_free_port());
    snprintf(hurl, sizeof(hurl), "http://%s/healthz", maddr);
    /* --timeout 10s: its 950 requests leave at once, and on a loaded machine
     * the receiver's threads may take seconds to answer them all (4 s timed
     * ~40 out under ASan, answered after: a failed attempt and a duplicate,
     * not what is tested). --claim-idle 16s: it must exceed that by more than 5 s;
     * shorter than the killed worker's, which no longer matters. */
    const char *bextra[] = {"--timeout",
                            "10s",
                            "--claim-idle",
                            "16s",
                            "--concurrency",
                            "1200",
                            "--endpoint-concurrency",
                            "1200",
                            "--idle-close",
                            "1s",
                            "--metrics",
                            maddr,
                            NULL};
    pid_t b = wenv_worker(&R.w, bextra, NULL);
    struct wenv_healthz_arg ha = {hurl};
    wenv_wait(&R.w, wenv_healthz_ok, &ha, 10000, "the reclaiming worker's /healthz");
    struct hq_ck_proc base_b;
    assert_int_equal(hq_ck_proc_sample(b, &base_b), 0);
    if (!hq_ck_wait_settled(&R.ck, R.w.c, 60000)) {
        wenv_dump_log(&R.w);
        fail_msg("not settled after the reclaim");
    }
    struct hq_ck_report rep;
    hq_ck_collect(&R.ck, R.w.c, 1, &rep);
    /* Its 950 reclaimed connections closed once it is idle (--idle-close 1s):
     * fds back to where they were before the reclaim. RSS is printed, not
     * judged: the pooled curl handles of a 950-wide burst stay by design. */
    struct hq_ck_proc pb;
    char why[128];
    int back = hq_ck_proc_wait_back(b, &base_b, &pb, -1, 8, 10000, why, sizeof(why));
    print_message("[kill -9] reclaiming worker: rss %ld -> %ld KiB, fds %d -> %d once quiet\n",
                  base_b.rss_kb, pb.rss_kb, base_b.fds, pb.fds);
    if (back != 0)
        fail_msg("reclaiming worker did not come back to its baseline: %s", why);
    print_message(
        "[kill -9] in flight at the receiver %d, entries held %lld; settled %lld ms after the kill\n",
        at_receiver, held, (long long)(hq_test_now_ms() - t_kill));
    hq_ck_print(&rep, "kill -9");
    hq_ck_assert(&R.ck, &rep);
    assert_int_equal(rep.delivered, (size_t)n);
    assert_int_equal(rep.dead_total, 0);
    /* A crash spends no retry budget: every request was answered 2xx and no
     * attempt was recorded as a failure. */
    assert_int_equal(rep.failed_attempts, 0);
    struct hq_ck_outcomes o;
    hq_ck_outcomes(&R.ck, R.w.c, &o);
    print_message("[kill -9] attempt records %zu: delivered %zu retry %zu deferred %zu\n",
                  o.records, o.delivered, o.retry, o.deferred);
    assert_int_equal(o.retry + o.dead, 0);
    assert_int_equal(hq_test_kill_wait(b, SIGTERM, 20000), 0);
    assert_int_equal(hq_test_kill_wait(sc, SIGTERM, 20000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RF_TEST(test_kill9_with_1000_in_flight_another_worker_reclaims_all, &R),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
