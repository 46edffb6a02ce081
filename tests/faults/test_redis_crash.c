/* Scenario 6 of the reliability suite: redis-server is killed with SIGKILL in
 * the middle of traffic (deliveries in flight, writes acknowledged a moment
 * before) and restarted from its append-only file after an outage, once with
 * appendfsync always and once with everysec. A worker and a scheduler stay up
 * throughout; the producer keeps writing into the outage (refused writes are
 * not acknowledged, so nothing is expected of them).
 *
 * always: every write Redis acknowledged survives, so the checker's full set
 * of invariants holds: nothing lost, duplicates within the in-flight bound.
 * everysec: Redis acknowledges before fsync, so up to about a second (two when
 * an fsync is slow: Redis postpones a late fsync once) of acknowledged writes
 * may vanish in a host crash. That is Redis' promise, not a hookq defect, so
 * the test does not demand zero: it prints what was lost and asserts that
 * every lost pair was acknowledged within EVERYSEC_WINDOW_MS of the kill and
 * that every duplicate's first delivery falls in that window too (a lost XACK).
 * Measured: 0 lost with everysec as well, because Redis write()s the AOF before
 * replying and a killed process leaves the page cache intact; only a host
 * crash or power loss exposes the window, which a test on one machine cannot
 * cause. docs/guarantees.md should say so.
 *
 * Both: every component reconnects without spinning (CPU time used while Redis
 * is down stays a small share of the outage, and the logs gain a few lines, not
 * one per attempt) and exits 0 on SIGTERM. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/fault_env.h"

#define EVENTS_BEFORE 1200 /* produced around the kill, about 1,000/s */
#define KILL_AT       800  /* Redis is killed before this XADD */
#define EVENTS_AFTER  300  /* produced after the restart */
#define OUTAGE_MS     3000 /* Redis stays down this long */
/* everysec: fsync once a second, postponed at most once more (Redis' aof.c). */
#define EVERYSEC_WINDOW_MS 2000
/* Share of the outage a process may spend on CPU while reconnecting. */
#define MAX_CPU_SHARE_PCT 10
/* Reconnect attempts are logged at most every 10 s while down: a line per
 * connection lost (a reader and a retry-lane reader per partition, the
 * writer), a few per failed batch or congested endpoint, not one per attempt.
 * P = 4 logs 8 reader lines alone (seen: 13 lines under ASan). */
#define MAX_OUTAGE_LOG_LINES(P) (10 + 2 * (int)(P))

static struct rf R;

static int setup_always(void **state)
{
    rf_start(*state, "--appendonly yes --appendfsync always");
    return 0;
}

static int setup_everysec(void **state)
{
    rf_start(*state, "--appendonly yes --appendfsync everysec");
    return 0;
}

struct ok_req {
    char key[400]; /* webhook-id \x1f path */
    int64_t at_ms;
};

static int ok_req_cmp(const void *a, const void *b)
{
    const struct ok_req *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return x->at_ms < y->at_ms ? -1 : x->at_ms > y->at_ms;
}

/* Duplicated pairs (2xx answered more than once): how many, and how many of them
 * were first delivered before cutoff_ms (those a lost XACK cannot explain). */
static void duplicates(struct hq_test_receiver *rc, int64_t cutoff_ms, size_t *dups, size_t *early)
{
    pthread_mutex_lock(&rc->mu);
    struct ok_req *v = calloc(rc->nreqs + 1, sizeof(*v));
    assert_non_null(v);
    size_t n = 0;
    for (size_t i = 0; i < rc->nreqs; i++) {
        const struct hq_test_request *q = &rc->reqs[i];
        char id[128];
        if (q->status < 200 || q->status >= 300 ||
            hq_test_request_header(q, "webhook-id", id, sizeof(id)) != 0)
            continue;
        snprintf(v[n].key, sizeof(v[n].key), "%s\x1f%s", id, q->path);
        v[n].at_ms = q->at_ms;
        n++;
    }
    pthread_mutex_unlock(&rc->mu);
    qsort(v, n, sizeof(*v), ok_req_cmp);
    *dups = *early = 0;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(v[i].key, v[i - 1].key) != 0)
            continue;
        (*dups)++;
        /* the first delivery of this pair is the earliest entry of its run */
        size_t first = i - 1;
        while (first > 0 && strcmp(v[first - 1].key, v[i].key) == 0)
            first--;
        if (v[first].at_ms < cutoff_ms)
            (*early)++;
    }
    free(v);
}

static void run(int always)
{
    rf_endpoint(&R, "/delay/200/a");
    rf_endpoint(&R, "/delay/200/b");
    const char *extra[] = {"--timeout", "3s", "--claim-idle", "9s", "--concurrency", "200", NULL};
    pid_t w = rf_worker(&R, "w1", extra);
    pid_t s = rf_scheduler(&R);

    int64_t kill_ms = 0;
    long long bound = 0;
    long cpu_w0 = 0, cpu_s0 = 0;
    int lines_w0 = 0, lines_s0 = 0;
    int refused = 0;
    for (int i = 0; i < EVENTS_BEFORE; i++) {
        if (i == KILL_AT) {
            /* Mid-traffic: deliveries in flight, writes acknowledged a moment ago. */
            bound = rf_in_flight(&R);
            hq_ck_note_fault(&R.ck, bound);
            cpu_w0 = rf_cpu_ms(w);
            cpu_s0 = rf_cpu_ms(s);
            lines_w0 = rf_log_count(R.w.log, NULL, "level=");
            lines_s0 = rf_log_count(R.slog, NULL, "level=");
            kill_ms = hq_test_now_ms();
            hq_test_redis_stop(&R.w.redis, 1);
        }
        if (rf_produce(&R, "crash.test", "{\"n\":1}") != 0) {
            if (i < KILL_AT)
                fail_msg("XADD %d refused before any fault: %s", i, R.w.c->errstr);
            refused++; /* not acknowledged: not expected anywhere */
        }
        if (i % 10 == 9)
            rf_pause_ms(10); /* ~1,000 events/s */
    }
    assert_true(refused > 0);
    rf_pause_ms(OUTAGE_MS);
    long cpu_w = rf_cpu_ms(w) - cpu_w0, cpu_s = rf_cpu_ms(s) - cpu_s0;
    int lines_w = rf_log_count(R.w.log, NULL, "level=") - lines_w0;
    int lines_s = rf_log_count(R.slog, NULL, "level=") - lines_s0;
    hq_test_redis_restart(&R.w.redis);
    rf_reconnect(&R);
    print_message(
        "appendfsync %s: %lld deliveries in flight at the kill, %d XADDs refused, outage %d ms, CPU used meanwhile: worker %ld ms, scheduler %ld ms\n",
        always ? "always" : "everysec", bound, refused, OUTAGE_MS, cpu_w, cpu_s);
    print_message("log lines while Redis was down: worker %d, scheduler %d\n", lines_w, lines_s);
    int max_lines = MAX_OUTAGE_LOG_LINES(R.w.tl.L.nparts);
    if (lines_w > max_lines || lines_s > max_lines)
        rf_dump_logs(&R);
    assert_true(lines_w <= max_lines);
    assert_true(lines_s <= max_lines);
    assert_true(cpu_w >= 0 && cpu_w <= OUTAGE_MS * MAX_CPU_SHARE_PCT / 100);
    assert_true(cpu_s >= 0 && cpu_s <= OUTAGE_MS * MAX_CPU_SHARE_PCT / 100);

    for (int i = 0; i < EVENTS_AFTER; i++) {
        if (rf_produce(&R, "crash.test", "{\"n\":2}") != 0)
            fail_msg("XADD refused after the restart: %s", R.w.c->errstr);
    }
    int64_t restarted_ms = hq_test_now_ms();
    if (!hq_test_wait(rf_quiet, &R, 60000)) {
        rf_dump_logs(&R);
        fail_msg("not quiet within 60 s of the restart");
    }

    print_message("quiet %lld ms after the restart\n",
                  (long long)(hq_test_now_ms() - restarted_ms));
    struct hq_ck_report rep;
    hq_ck_collect(&R.ck, R.w.c, 1, &rep);
    hq_ck_print(&rep, always ? "redis kill -9, appendfsync always"
                             : "redis kill -9, appendfsync everysec");
    if (always) {
        hq_ck_assert(&R.ck, &rep);
        assert_int_equal(rep.lost, 0);
    } else {
        /* Every lost pair was acknowledged within the window before the kill. */
        size_t lost_in_window = 0, lost_outside = 0;
        for (size_t i = 0; i < R.ck.pairs.cap; i++) {
            const struct hq_ck_pair *p = &R.ck.pairs.slots[i];
            if (!p->key || p->ok || p->dead)
                continue;
            int64_t at = rf_pair_ack_ms(&R, p->key);
            if (at >= kill_ms - EVERYSEC_WINDOW_MS && at <= kill_ms)
                lost_in_window++;
            else
                lost_outside++;
        }
        size_t dups = 0, early = 0;
        duplicates(&R.w.rcv, kill_ms - EVERYSEC_WINDOW_MS - 3000 /* attempt timeout */, &dups,
                   &early);
        print_message(
            "everysec: %zu acknowledged pairs lost (%zu of them acknowledged within %d ms of the kill), %zu duplicate deliveries (%zu first delivered before the window)\n",
            rep.lost, lost_in_window, EVERYSEC_WINDOW_MS, dups, early);
        assert_int_equal(lost_outside, 0);
        assert_int_equal(early, 0);
        /* Everything else the checker requires still holds. */
        assert_int_equal(rep.bad_sig, 0);
        assert_int_equal(rep.no_headers, 0);
        assert_int_equal(rep.unknown, 0);
        assert_int_equal(rep.dead_total, 0);
        assert_int_equal(rep.pending, 0);
        assert_int_equal(rep.retry, 0);
        hq_ck_assert_layout(&R.ck, &rep); /* p4: the partitions were used */
    }
    /* Produced after the restart: all delivered in both modes. */
    for (long n = KILL_AT; n < R.nack; n++) {
        char key[HQ_CK_KEY_MAX], id[32];
        snprintf(id, sizeof(id), "evck_%ld", n);
        for (int k = 0; k < R.ck.neps; k++) {
            hq_ck_pair_key(key, id, R.ck.eps[k].e->id);
            const struct hq_ck_pair *p = hq_ck_map_find(&R.ck.pairs, key);
            assert_non_null(p);
            assert_true(p->ok >= 1);
        }
    }
    int st_w = hq_test_kill_wait(w, SIGTERM, 20000), st_s = hq_test_kill_wait(s, SIGTERM, 20000);
    if (st_w != 0 || st_s != 0)
        rf_dump_logs(&R);
    assert_int_equal(st_w, 0);
    assert_int_equal(st_s, 0);
}

static void test_redis_kill9_appendfsync_always_loses_no_acknowledged_write(void **state)
{
    (void)state;
    run(1);
}

static void test_redis_kill9_appendfsync_everysec_loses_only_the_last_second(void **state)
{
    (void)state;
    run(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(
            test_redis_kill9_appendfsync_always_loses_no_acknowledged_write, setup_always,
            rf_teardown, &R),
        cmocka_unit_test_prestate_setup_teardown(
            test_redis_kill9_appendfsync_everysec_loses_only_the_last_second, setup_everysec,
            rf_teardown, &R),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
