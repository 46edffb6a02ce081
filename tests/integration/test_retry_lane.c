/* The retry lane (docs/internals/scheduler.md, worker-loop.md): due retries
 * come back on each partition's <b>:retries stream, not on <b>:events, and
 * are delivered, recorded and acknowledged from there; entries a killed
 * worker left pending on that stream are reclaimed by another worker. Real
 * worker and scheduler processes, real Redis and receivers; also run with
 * HQ_TEST_LAYOUT=p4 and =cluster (tests/CMakeLists.txt). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/fault_env.h"

static struct rf R;

/* Entries ever added to a stream (workers XDEL what they acknowledge, so
 * XLEN says nothing), summed over partitions. */
static long long entries_added(hq_tl_key_fn keyfn)
{
    long long sum = 0;
    for (unsigned i = 0; i < hq_tl_nparts(&R.w.tl); i++)
        sum += hq_tl_entries_added(&R.w.tl, R.w.c, "hookq", i, keyfn);
    return sum;
}

/* Entries pending in the group on the retry lanes only. */
static long long lane_pending(void)
{
    long long sum = 0;
    for (unsigned i = 0; i < hq_tl_nparts(&R.w.tl); i++) {
        char key[HQ_KEY_MAX];
        assert_true(hq_key_retries(hq_tl_base(&R.w.tl, "hookq", i), key, sizeof(key)) >= 0);
        redisReply *r = hq_test_cmd(wenv_node(&R.w, i), "XPENDING %s workers", key);
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
            r->element[0]->type == REDIS_REPLY_INTEGER)
            sum += r->element[0]->integer;
        freeReplyObject(r);
    }
    return sum;
}

static int lane_pending_at_least_200(void *arg)
{
    (void)arg;
    if (lane_pending() >= 200)
        return 1;
    rf_pause_ms(20); /* polling pace */
    return 0;
}

static void set_default_status(struct hq_test_receiver *rc, int status)
{
    pthread_mutex_lock(&rc->mu);
    rc->default_status = status;
    pthread_mutex_unlock(&rc->mu);
}

static void test_a_failed_delivery_is_retried_through_the_retry_lane(void **state)
{
    (void)state;
    const long n = 40;
    rf_endpoint(&R, "/lane/a");
    set_default_status(&R.w.rcv, 500);
    for (long i = 0; i < n; i++)
        assert_int_equal(rf_produce(&R, "lane.test", "{\"k\":1}"), 0);
    const char *extra[] = {"--backoff-base", "200ms", NULL};
    pid_t w = rf_worker(&R, "w1", extra);
    /* Every first attempt failed and is in the retry zset. */
    int64_t deadline = hq_test_now_ms() + 20000;
    while (wenv_sum(&R.w, "ZCARD", hq_key_retry) < n) {
        if (hq_test_now_ms() > deadline) {
            rf_dump_logs(&R);
            fail_msg("the failed first attempts never all reached the retry zset (%lld)",
                     wenv_sum(&R.w, "ZCARD", hq_key_retry));
        }
        rf_pause_ms(20);
    }
    set_default_status(&R.w.rcv, 204);
    pid_t s = rf_scheduler(&R);
    struct hq_ck_report rep;
    rf_settle_and_check(&R, 30000, "retry lane", &rep);
    assert_int_equal(rep.delivered, (size_t)n);
    assert_int_equal(rep.max_attempts, 2);
    /* The retries came back on the lane, not on the events stream. */
    assert_int_equal(entries_added(hq_key_retries), n);
    assert_int_equal(entries_added(hq_key_events), n);
    assert_int_equal(wenv_sum(&R.w, "XLEN", hq_key_retries), 0); /* acked and deleted */
    assert_int_equal(lane_pending(), 0);
    assert_int_equal(hq_test_kill_wait(w, SIGTERM, 20000), 0);
    assert_int_equal(hq_test_kill_wait(s, SIGTERM, 20000), 0);
}

static int lanes_exist(void *arg)
{
    struct redis_arg *a = arg;
    return wenv_sum(a->w, "EXISTS", hq_key_retries) == a->want;
}

/* Sum of hookq_retry_lane_depth{partition} on a worker's /metrics, > 0. */
struct depth_arg {
    char url[96];
    long long depth;
};

static int lane_depth_reported(void *arg)
{
    struct depth_arg *a = arg;
    struct hq_buf body;
    hq_buf_init(&body, 1 << 20);
    long st = wenv_http_get(a->url, &body);
    a->depth = 0;
    const char *name = "hookq_retry_lane_depth{";
    for (const char *p = body.p; st == 200 && p && (p = strstr(p, name)); p++) {
        const char *v = strchr(p, ' ');
        if (v)
            a->depth += strtoll(v + 1, NULL, 10);
    }
    hq_buf_free(&body);
    if (a->depth <= 0)
        rf_pause_ms(100); /* polling pace: the worker samples every 5 s */
    return a->depth > 0;
}

static void test_a_worker_killed_with_retries_pending_is_reclaimed(void **state)
{
    (void)state;
    const long n = 300;
    int idx = rf_endpoint(&R, "/delay/3000/k");
    hq_ck_fill_retries(&R.ck, R.w.c, idx, "lane.kill", "{\"k\":2}", n, hq_test_now_ms());
    const char *extra[] = {
        "--timeout", "4s", "--claim-idle", "10s", "--concurrency", "400", "--endpoint-concurrency",
        "400",       NULL};
    pid_t a = rf_worker(&R, "wa", extra);
    /* The worker creates each lane (XGROUP CREATE ... MKSTREAM); the scheduler
     * moves retries onto a lane only once it exists. */
    struct redis_arg ra = {&R.w, NULL, (long long)hq_tl_nparts(&R.w.tl)};
    wenv_wait(&R.w, lanes_exist, &ra, 10000, "the worker's retry lanes");
    pid_t s = rf_scheduler(&R);
    /* Pending on the lanes: what the worker holds (each delivery takes 3 s). */
    if (!hq_test_wait(lane_pending_at_least_200, NULL, 15000)) {
        rf_dump_logs(&R);
        fail_msg("200 retries never pending on the lanes (in flight %d; lanes %lld entries, %lld "
                 "pending; retry set "
                 "%lld; events %lld)",
                 hq_ck_in_flight(&R.w.rcv), wenv_sum(&R.w, "XLEN", hq_key_retries), lane_pending(),
                 wenv_sum(&R.w, "ZCARD", hq_key_retry), wenv_sum(&R.w, "XLEN", hq_key_events));
    }
    long long on_lane = lane_pending();
    long long held = wenv_pending(&R.w);
    assert_true(on_lane >= 200); /* what the killed worker holds is on the retry lane */
    assert_int_equal(hq_test_kill_wait(a, SIGKILL, 5000), 128 + SIGKILL);
    hq_ck_note_fault(&R.ck, held);
    /* b reports the lane's depth: what a holds stays pending there until b
     * reclaims it, its --claim-idle (16 s) after a read it. */
    char maddr[64];
    snprintf(maddr, sizeof(maddr), "127.0.0.1:%d", hq_test_free_port());
    /* --timeout 10s: b sends ~300 requests at once (the reclaimed and the
     * unread), each answered after 3 s; on a loaded machine (ASan, clean-clone
     * CI) ~50 were answered 2xx yet left retries due after the settle wait:
     * attempts failed on b's side, most likely its 4 s timeout with 1 s of
     * margin (not reproduced beside four busy loops), not what is tested.
     * --claim-idle must exceed the timeout by more than 5 s. */
    const char *bextra[] = {"--timeout",
                            "10s",
                            "--claim-idle",
                            "16s",
                            "--concurrency",
                            "400",
                            "--endpoint-concurrency",
                            "400",
                            "--metrics",
                            maddr,
                            NULL};
    pid_t b = rf_worker(&R, "wb", bextra);
    struct depth_arg da = {0};
    snprintf(da.url, sizeof(da.url), "http://%s/metrics", maddr);
    if (!hq_test_wait(lane_depth_reported, &da, 8000)) {
        rf_dump_logs(&R);
        fail_msg("hookq_retry_lane_depth never showed the pending lane (last %lld)", da.depth);
    }
    struct hq_ck_report rep;
    rf_settle_and_check(&R, 60000, "retry lane reclaim", &rep);
    assert_int_equal(rep.delivered, (size_t)n);
    assert_int_equal(rep.dead_total, 0);
    assert_true(rf_log_count(R.w.log, NULL, "retries idle longer than") > 0);
    print_message("[retry lane] %lld pending on the lanes at the kill; reclaimed\n", on_lane);
    assert_int_equal(hq_test_kill_wait(b, SIGTERM, 20000), 0);
    assert_int_equal(hq_test_kill_wait(s, SIGTERM, 20000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RF_TEST(test_a_failed_delivery_is_retried_through_the_retry_lane, &R),
        RF_TEST(test_a_worker_killed_with_retries_pending_is_reclaimed, &R),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
