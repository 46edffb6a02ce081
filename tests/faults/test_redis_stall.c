/* Scenario 8 of the reliability suite: Redis stalls or refuses writes while
 * deliveries are in flight.
 *   - paused: SIGSTOP for 14 s (longer than the worker's command deadlines and
 *     its BLOCK + margin), then SIGCONT;
 *   - refusing writes: MISCONF (stop-writes-on-bgsave-error after a failed
 *     BGSAVE), NOREPLICAS (min-replicas-to-write 1 with no replica), OOM
 *     (maxmemory below what is used, noeviction).
 * Checks: no entry is acknowledged on an error reply (the pending count stays
 * while Redis refuses), no endpoint retry budget is spent (nothing enters the
 * retry set, one attempt record per delivery, one request per pair), nothing
 * spins, and once the fault is lifted everything is recorded and the
 * checker's invariants hold. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/fault_env.h"

/* A 14 s pause: commands sent just after Redis stops outlive the worker's
 * command deadline (10 s; a read's is BLOCK 2 s + 5 s margin), so its
 * connections are declared lost while it holds finished deliveries to record.
 * The 4 s beyond the deadline are for a loaded machine (ASan, two suites on
 * two cores), where the outcomes of the deliveries in flight at the stop were
 * sent more than 2 s after it and the writer was not declared lost in time. */
#define PAUSE_MS          14000
#define REFUSE_HOLD_MS    2000 /* how long the no-ack/no-retry invariants are watched */
#define MAX_CPU_SHARE_PCT 10

static struct rf R;

static int setup(void **state)
{
    /* dir is a protected config in Redis 7: the MISCONF fault moves it. */
    rf_start(*state, "--enable-protected-configs yes");
    return 0;
}

/* One attempt record per (event, endpoint) and one request per pair: no attempt
 * was spent on Redis' trouble. */
static void assert_one_attempt_each(const struct hq_ck_report *rep)
{
    assert_int_equal(rep->max_attempts, 1);
    assert_int_equal(rep->failed_attempts, 0);
    assert_int_equal(rep->dups, 0);
    for (long n = 0; n < R.nack; n++) {
        long long recs = rf_attempt_records(&R, n);
        if (recs != R.ck.neps)
            fail_msg("evck_%ld has %lld attempt records, want %d", n, recs, R.ck.neps);
    }
}

static void settle_and_check(const char *label)
{
    struct hq_ck_report rep;
    rf_settle_and_check(&R, 40000, label, &rep);
    assert_one_attempt_each(&rep);
}

static int receiver_in_flight_at_least(void *arg)
{
    struct count_arg *a = arg;
    return (size_t)hq_ck_in_flight(a->rcv) >= a->want;
}

static void test_redis_paused_14s_no_retry_budget_spent_and_recovers(void **state)
{
    (void)state;
    rf_endpoint(&R, "/delay/300/a");
    rf_endpoint(&R, "/delay/300/b");
    /* claim-idle well above the pause: entries held through it are not reclaimed
     * from their own live worker (that is scenario 2's ground). */
    const char *extra[] = {"--timeout", "5s", "--claim-idle", "30s", "--concurrency", "50", NULL};
    pid_t w = rf_worker(&R, "w1", extra);
    pid_t s = rf_scheduler(&R);
    const int n = 300;
    for (int i = 0; i < n; i++)
        assert_int_equal(rf_produce(&R, "stall.pause", "{\"p\":1}"), 0);
    struct count_arg ca = {&R.w.rcv, NULL, 20};
    wenv_wait(&R.w, receiver_in_flight_at_least, &ca, 10000, "deliveries in flight");
    size_t before = hq_test_receiver_count(&R.w.rcv);
    hq_ck_note_fault(&R.ck, rf_in_flight(&R));

    long cpu_w0 = rf_cpu_ms(w), cpu_s0 = rf_cpu_ms(s);
    assert_int_equal(kill(R.w.redis.pid, SIGSTOP), 0);
    rf_pause_ms(PAUSE_MS);
    long cpu_w = rf_cpu_ms(w) - cpu_w0, cpu_s = rf_cpu_ms(s) - cpu_s0;
    size_t during = hq_test_receiver_count(&R.w.rcv) - before;
    assert_int_equal(kill(R.w.redis.pid, SIGCONT), 0);
    print_message(
        "paused %d ms: %zu requests answered meanwhile; CPU: worker %ld ms, scheduler %ld ms\n",
        PAUSE_MS, during, cpu_w, cpu_s);
    assert_true(cpu_w >= 0 && cpu_w <= PAUSE_MS * MAX_CPU_SHARE_PCT / 100);
    assert_true(cpu_s >= 0 && cpu_s <= PAUSE_MS * MAX_CPU_SHARE_PCT / 100);

    settle_and_check("redis paused 14 s");
    /* Both of the worker's connections gave up on the stopped server and came back. */
    int lost_r = rf_log_count(R.w.log, "level=warn", "reader: lost 127.0.0.1");
    int lost_w = rf_log_count(R.w.log, "level=warn", "writer: lost 127.0.0.1");
    print_message("paused: connection declared lost: reader %d, writer %d times\n", lost_r, lost_w);
    if (lost_w < 1)
        rf_dump_logs(&R);
    assert_true(lost_w >= 1); /* the reader only when a read was outstanding at the stop */
    int st_w = hq_test_kill_wait(w, SIGTERM, 20000), st_s = hq_test_kill_wait(s, SIGTERM, 20000);
    if (st_w || st_s)
        rf_dump_logs(&R);
    assert_int_equal(st_w, 0);
    assert_int_equal(st_s, 0);
}

/* ---- refusing writes ---------------------------------------------------------------- */

enum refusal { MISCONF, NOREPLICAS, OOM };

static const char *refusal_name(enum refusal f)
{
    return f == MISCONF ? "MISCONF" : f == NOREPLICAS ? "NOREPLICAS" : "OOM";
}

static void cmd_ok(const char *fmt, const char *arg)
{
    redisReply *r = hq_test_cmd(R.w.c, fmt, arg);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("%s: %s", fmt, r->str);
    freeReplyObject(r);
}

static long long info_field(const char *section, const char *name)
{
    redisReply *r = hq_test_cmd(R.w.c, "INFO %s", section);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    char needle[64];
    snprintf(needle, sizeof(needle), "\n%s:", name);
    const char *p = strstr(r->str, needle);
    long long v = -1;
    if (p) {
        p += strlen(needle);
        v = strncmp(p, "err", 3) == 0 ? -2 : strncmp(p, "ok", 2) == 0 ? 1 : strtoll(p, NULL, 10);
    }
    freeReplyObject(r);
    return v;
}

static int bgsave_failed(void *arg)
{
    (void)arg;
    return info_field("persistence", "rdb_bgsave_in_progress") == 0 &&
           info_field("persistence", "rdb_last_bgsave_status") == -2;
}

/* Writes are refused with the expected error (probed with a SET). */
static int write_refused(const char *prefix)
{
    redisReply *r = hq_test_cmd(R.w.c, "SET hq-test-probe 1");
    int refused = r->type == REDIS_REPLY_ERROR && strncmp(r->str, prefix, strlen(prefix)) == 0;
    freeReplyObject(r);
    return refused;
}

static void fault_on(enum refusal f)
{
    char v[64];
    switch (f) {
    case MISCONF:
        /* A BGSAVE into a directory nobody can create files in (even root: /proc). */
        cmd_ok("CONFIG SET save %s", "3600 1");
        cmd_ok("CONFIG SET stop-writes-on-bgsave-error %s", "yes");
        cmd_ok("CONFIG SET dir %s", "/proc");
        cmd_ok("BGSAVE%s", "");
        wenv_wait(&R.w, bgsave_failed, NULL, 10000, "the BGSAVE to fail");
        break;
    case NOREPLICAS:
        cmd_ok("CONFIG SET min-replicas-max-lag %s", "10");
        cmd_ok("CONFIG SET min-replicas-to-write %s", "1");
        break;
    case OOM:
        cmd_ok("CONFIG SET maxmemory-policy %s", "noeviction");
        snprintf(v, sizeof(v), "%lld", info_field("memory", "used_memory") / 2);
        cmd_ok("CONFIG SET maxmemory %s", v);
        break;
    }
    assert_true(write_refused(refusal_name(f)));
}

static void fault_off(enum refusal f)
{
    switch (f) {
    case MISCONF:
        cmd_ok("CONFIG SET dir %s", R.w.redis.dir);
        cmd_ok("CONFIG SET save %s", "");
        break;
    case NOREPLICAS: cmd_ok("CONFIG SET min-replicas-to-write %s", "0"); break;
    case OOM: cmd_ok("CONFIG SET maxmemory %s", "0"); break;
    }
    redisReply *r = hq_test_cmd(R.w.c, "SET hq-test-probe 1");
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    hq_test_cmd_int(R.w.c, "DEL hq-test-probe");
}

struct log_arg {
    const char *path, *needle;
};

static int log_has(void *arg)
{
    struct log_arg *a = arg;
    return rf_log_count(a->path, NULL, a->needle) > 0;
}

struct pending_arg {
    long long want;
};

static int pending_is(void *arg)
{
    return wenv_pending(&R.w) == ((struct pending_arg *)arg)->want;
}

/* Every dead letter says it took exactly `want` attempts. */
static void assert_dead_attempts(const char *want)
{
    redisReply *r = hq_test_cmd(R.w.c, "XRANGE hookq:dead - +");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *f = r->element[i]->element[1];
        for (size_t j = 0; j + 1 < f->elements; j += 2) {
            if (strcmp(f->element[j]->str, "attempts") == 0 &&
                strcmp(f->element[j + 1]->str, want) != 0)
                fail_msg("dead letter %s: attempts=%s, want %s", r->element[i]->element[0]->str,
                         f->element[j + 1]->str, want);
        }
    }
    freeReplyObject(r);
}

static int all_received(void *arg)
{
    (void)arg;
    return hq_test_receiver_count(&R.w.rcv) >= (size_t)R.nack * 2 &&
           hq_test_receiver_count(&R.rcv2) >= (size_t)R.nack;
}

static int in_flight_on_both(void *arg)
{
    const int *n = arg;
    return hq_ck_in_flight(&R.w.rcv) >= *n && hq_ck_in_flight(&R.rcv2) >= *n / 2;
}

/* Two healthy endpoints and one answering 500 (max 2 attempts, so it ends dead),
 * all answering after 1.5 s: the refusal starts with every delivery in flight, so
 * every first outcome (success or failure) meets a Redis that refuses to record it. */
static void run_refusal(enum refusal f)
{
    hq_test_receiver_start(&R.rcv2);
    R.rcv2.default_status = 500;
    R.rcv2_started = 1;
    rf_endpoint(&R, "/delay/1500/a");
    rf_endpoint(&R, "/delay/1500/b");
    int bad = rf_endpoint_on(&R, &R.rcv2, "/delay/1500/f", 2);
    hq_ck_expect_dead_endpoint(&R.ck, bad);
    const char *extra[] = {"--timeout",
                           "5s",
                           "--claim-idle",
                           "30s",
                           "--concurrency",
                           "400",
                           "--endpoint-concurrency",
                           "200",
                           "--backoff-base",
                           "200ms",
                           "--backoff-max",
                           "1s",
                           NULL};
    pid_t w = rf_worker(&R, "w1", extra);
    pid_t s = rf_scheduler(&R);
    const int n = 100;
    for (int i = 0; i < n; i++)
        assert_int_equal(rf_produce(&R, "stall.refuse", "{\"r\":1}"), 0);
    /* Every entry read and its deliveries under way, none finished yet. */
    struct pending_arg pa = {n};
    wenv_wait(&R.w, pending_is, &pa, 10000, "every event read");
    int want_in_flight = n;
    wenv_wait(&R.w, in_flight_on_both, &want_in_flight, 10000, "deliveries in flight");
    long long held = wenv_pending(&R.w);
    assert_int_equal(held, n);
    hq_ck_note_fault(&R.ck, rf_in_flight(&R));

    fault_on(f);
    /* The deliveries finish while Redis refuses; recording them is refused. */
    wenv_wait(&R.w, all_received, NULL, 10000, "every delivery answered");
    struct log_arg la = {R.w.log, refusal_name(f)};
    wenv_wait(&R.w, log_has, &la, 10000, "the worker to report the refusal");
    long cpu0 = rf_cpu_ms(w), cpu_s0 = rf_cpu_ms(s);
    int64_t until = hq_test_now_ms() + REFUSE_HOLD_MS;
    int samples = 0;
    while (hq_test_now_ms() < until) {
        /* No ack on an error reply; no retry spent on Redis' refusal. */
        assert_int_equal(wenv_pending(&R.w), held);
        assert_int_equal(hq_test_cmd_int(R.w.c, "ZCARD hookq:retry"), 0);
        assert_int_equal(hq_test_cmd_int(R.w.c, "HLEN hookq:retry:data"), 0);
        assert_int_equal(hq_test_cmd_int(R.w.c, "XLEN hookq:dead"), 0);
        samples++;
        rf_pause_ms(100); /* sampling period */
    }
    long cpu = rf_cpu_ms(w) - cpu0, cpu_s = rf_cpu_ms(s) - cpu_s0;
    print_message(
        "%s: %lld entries held unacknowledged over %d samples, CPU in %d ms: worker %ld ms, scheduler %ld ms; %d log lines naming the refusal\n",
        refusal_name(f), held, samples, REFUSE_HOLD_MS, cpu, cpu_s,
        rf_log_count(R.w.log, NULL, refusal_name(f)));
    assert_true(cpu >= 0 && cpu <= REFUSE_HOLD_MS * MAX_CPU_SHARE_PCT / 100);
    assert_true(cpu_s >= 0 && cpu_s <= REFUSE_HOLD_MS * MAX_CPU_SHARE_PCT / 100);
    /* Nothing was recorded while refusing: no attempt lists either. */
    for (long i = 0; i < R.nack; i++)
        assert_int_equal(rf_attempt_records(&R, i), 0);

    fault_off(f);
    /* Traffic after recovery flows too. */
    for (int i = 0; i < 20; i++)
        assert_int_equal(rf_produce(&R, "stall.after", "{\"r\":2}"), 0);
    char label[64];
    snprintf(label, sizeof(label), "redis refusing writes (%s)", refusal_name(f));
    struct hq_ck_report rep;
    rf_settle_and_check(&R, 40000, label, &rep);
    /* The refusal cost no attempt: the healthy pairs took one request each, the
     * failing endpoint exactly its two, and each dead letter says 2. */
    assert_int_equal(rep.dups, 0);
    assert_int_equal(rep.max_attempts, 2);
    assert_int_equal(rep.dead, (size_t)R.nack);
    assert_int_equal(rep.requests, (size_t)R.nack * 4);
    assert_int_equal(rep.failed_attempts, (size_t)R.nack * 2);
    assert_dead_attempts("2");
    for (long i = 0; i < R.nack; i++) {
        long long recs = rf_attempt_records(&R, i);
        if (recs != 4)
            fail_msg("evck_%ld has %lld attempt records, want 4 (1 + 1 + 2)", i, recs);
    }
    int st = hq_test_kill_wait(w, SIGTERM, 20000), st_s = hq_test_kill_wait(s, SIGTERM, 20000);
    if (st || st_s)
        rf_dump_logs(&R);
    assert_int_equal(st, 0);
    assert_int_equal(st_s, 0);
}

static int retries_at_least(void *arg)
{
    return hq_test_cmd_int(R.w.c, "ZCARD hookq:retry") >= *(const long long *)arg;
}

/* The scheduler's side: retries come due while Redis refuses writes (OOM: Redis 7
 * decides a script's OOM state before it starts, so a move is refused whole; the
 * per-command refusals, MISCONF and NOREPLICAS, fail the script's first write). Its move
 * is refused as a whole (nothing re-enqueued, nothing removed), and once writes
 * are accepted again every retry is moved exactly once and delivered. */
static void run_scheduler_refusal(enum refusal f)
{
    hq_test_receiver_start(&R.rcv2);
    R.rcv2.default_status = 500; /* first attempts fail */
    R.rcv2_started = 1;
    rf_endpoint_on(&R, &R.rcv2, "/f", 5);
    const char *extra[] = {"--backoff-base", "3s", "--backoff-max", "3s", NULL};
    pid_t w = rf_worker(&R, "w1", extra);
    pid_t s = rf_scheduler(&R);
    const long long n = 50;
    for (int i = 0; i < n; i++)
        assert_int_equal(rf_produce(&R, "stall.sched", "{\"s\":1}"), 0);
    long long want = n;
    wenv_wait(&R.w, retries_at_least, &want, 10000, "every first failure in the retry set");
    R.rcv2.default_status = 204; /* the endpoint recovers; the retries would succeed */
    fault_on(f);
    const int64_t due_by = hq_test_now_ms() + 3000 + 2000; /* backoff + the scheduler's pace */
    struct log_arg la = {R.slog, refusal_name(f)};
    wenv_wait(&R.w, log_has, &la, 10000, "the scheduler to report the refusal");
    while (hq_test_now_ms() < due_by) {
        assert_int_equal(hq_test_cmd_int(R.w.c, "ZCARD hookq:retry"), n);
        assert_int_equal(hq_test_cmd_int(R.w.c, "HLEN hookq:retry:data"), n);
        assert_int_equal(hq_test_cmd_int(R.w.c, "XLEN hookq:events"), 0);
        assert_int_equal(hq_test_cmd_int(R.w.c, "XLEN hookq:dead"), 0);
        rf_pause_ms(100); /* sampling period */
    }
    fault_off(f);
    char label[80];
    snprintf(label, sizeof(label), "scheduler while redis refuses writes (%s)", refusal_name(f));
    struct hq_ck_report rep;
    rf_settle_and_check(&R, 30000, label, &rep);
    assert_int_equal(rep.dups, 0);
    assert_int_equal(rep.max_attempts, 2);
    assert_int_equal(rep.requests, (size_t)n * 2);
    for (long i = 0; i < R.nack; i++)
        assert_int_equal(rf_attempt_records(&R, i), 2);
    int st = hq_test_kill_wait(w, SIGTERM, 20000), st_s = hq_test_kill_wait(s, SIGTERM, 20000);
    if (st || st_s)
        rf_dump_logs(&R);
    assert_int_equal(st, 0);
    assert_int_equal(st_s, 0);
}

static void test_scheduler_oom_moves_nothing_then_moves_each_retry_once(void **state)
{
    (void)state;
    run_scheduler_refusal(OOM);
}

static void test_redis_misconf_no_ack_no_retry_spent_then_recovers(void **state)
{
    (void)state;
    run_refusal(MISCONF);
}

static void test_redis_noreplicas_no_ack_no_retry_spent_then_recovers(void **state)
{
    (void)state;
    run_refusal(NOREPLICAS);
}

static void test_redis_oom_no_ack_no_retry_spent_then_recovers(void **state)
{
    (void)state;
    run_refusal(OOM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(
            test_redis_paused_14s_no_retry_budget_spent_and_recovers, setup, rf_teardown, &R),
        cmocka_unit_test_prestate_setup_teardown(
            test_redis_misconf_no_ack_no_retry_spent_then_recovers, setup, rf_teardown, &R),
        cmocka_unit_test_prestate_setup_teardown(
            test_redis_noreplicas_no_ack_no_retry_spent_then_recovers, setup, rf_teardown, &R),
        cmocka_unit_test_prestate_setup_teardown(test_redis_oom_no_ack_no_retry_spent_then_recovers,
                                                 setup, rf_teardown, &R),
        cmocka_unit_test_prestate_setup_teardown(
            test_scheduler_oom_moves_nothing_then_moves_each_retry_once, setup, rf_teardown, &R),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
