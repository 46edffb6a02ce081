/* Ordered endpoints and ordering keys (docs/ordering.md): real workers,
 * scheduler, redis-server and receivers. An ordered endpoint receives each
 * key's events one at a time in stream order (the next only after the
 * previous got a 2xx or was dead-lettered), different keys in parallel;
 * `skip` dead-letters a failed head at once and moves on. The order checker
 * (check_order) reads the receiver's requests in arrival order. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/ordered_check.h"

static struct rf R;

/* The value of one metric line "name value" of the worker at url, or -1. */
static long metric(const char *url, const char *name)
{
    struct hq_buf b;
    hq_buf_init(&b, 1 << 20);
    long v = -1;
    if (wenv_http_get(url, &b) == 200) {
        size_t n = strlen(name);
        for (const char *p = b.p; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
            if (strncmp(p, name, n) == 0 && p[n] == ' ')
                v = strtol(p + n + 1, NULL, 10);
    }
    hq_buf_free(&b);
    return v;
}

struct metric_arg {
    const char *url, *name;
    long want;
};

static int metric_is(void *arg)
{
    struct metric_arg *a = arg;
    if (metric(a->url, a->name) == a->want)
        return 1;
    rf_pause_ms(50);
    return 0;
}

/* 10 keys x 50 events (the 100 x 100 is test_ordered_slow's): every
 * key's events in stream order, each once, none lost, more than one line in
 * flight at once (each request takes 20 ms) and never two of one line: at
 * most 10 with room for 16 (unordered, one key's events 10 entries apart
 * would overlap). */
static void test_keys_keep_their_order_and_run_in_parallel(void **state)
{
    (void)state;
    struct ordered_run o = {.r = &R, .path = "/delay/20/ord", .nkeys = 10, .per_key = 50};
    ordered_endpoint(&o, HQ_ORDERED_BLOCK);
    char maddr[64], murl[128];
    snprintf(maddr, sizeof(maddr), "127.0.0.1:%d", hq_test_free_port());
    snprintf(murl, sizeof(murl), "http://%s/metrics", maddr);
    const char *extra[] = {"--concurrency", "64", "--endpoint-concurrency", "16", "--metrics",
                           maddr,           NULL};
    rf_worker(&R, "w1", extra);
    ordered_produce(&o);
    ordered_wait_delivered(&o, 60000);
    struct ordered_report rep;
    check_order(&o, &rep);
    /* Every event parked once, every head sent once, no line left. */
    assert_int_equal(metric(murl, "hookq_deliveries_total{outcome=\"parked\"}"), 500);
    assert_int_equal(metric(murl, "hookq_ordered_heads_sent_total"), 500);
    struct metric_arg ma = {murl, "hookq_ordered_lines", 0};
    wenv_wait(&R.w, metric_is, &ma, 10000, "hookq_ordered_lines 0");
    print_message("[ordered] %ld delivered, %ld repeats, %ld early, %ld lost, max in flight %d\n",
                  rep.delivered, rep.repeats, rep.early, rep.lost, R.w.rcv.max_in_flight);
    assert_int_equal(rep.early, 0);
    assert_int_equal(rep.lost, 0);
    assert_int_equal(rep.repeats, 0);
    assert_true(R.w.rcv.max_in_flight > 1);
    assert_true(R.w.rcv.max_in_flight <= 10);
}

/* Without a key the whole endpoint is one line: never two in flight. */
static void test_keyless_is_one_line(void **state)
{
    (void)state;
    struct ordered_run o = {.r = &R, .path = "/delay/5/one", .nkeys = 0, .per_key = 200};
    ordered_endpoint(&o, HQ_ORDERED_BLOCK);
    const char *extra[] = {"--concurrency", "64", "--endpoint-concurrency", "16", NULL};
    rf_worker(&R, "w1", extra);
    rf_worker(&R, "w2", extra);
    ordered_produce(&o);
    ordered_wait_delivered(&o, 60000);
    struct ordered_report rep;
    check_order(&o, &rep);
    assert_int_equal(rep.early, 0);
    assert_int_equal(rep.lost, 0);
    assert_int_equal(rep.repeats, 0);
    assert_int_equal(R.w.rcv.max_in_flight, 1);
}

/* The watermark: an earlier entry still pending (read by a consumer that
 * never acks, as a worker killed before recording) holds the later ones of
 * the line back until it is reclaimed and parked: nothing is sent before it. */
static void test_a_pending_earlier_entry_holds_the_line(void **state)
{
    (void)state;
    struct ordered_run o = {.r = &R, .path = "/wm", .nkeys = 0, .per_key = 20};
    ordered_endpoint(&o, HQ_ORDERED_BLOCK);
    char stream[HQ_KEY_MAX];
    unsigned part = hq_tl_part_for(&R.w.tl, "k0"); /* ordered_produce's partition */
    assert_true(hq_key_events(hq_tl_base(&R.w.tl, "hookq", part), stream, sizeof(stream)) >= 0);
    redisContext *c = wenv_node(&R.w, part);
    freeReplyObject(hq_test_cmd(c, "XGROUP CREATE %s workers 0 MKSTREAM", stream));
    ordered_produce_part(&o, 0, 1);
    redisReply *r = hq_test_cmd(c, "XREADGROUP GROUP workers stuck COUNT 1 STREAMS %s >", stream);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    ordered_produce_part(&o, 1, 20);
    char maddr[64], murl[128];
    snprintf(maddr, sizeof(maddr), "127.0.0.1:%d", hq_test_free_port());
    snprintf(murl, sizeof(murl), "http://%s/metrics", maddr);
    const char *extra[] = {"--timeout", "1s", "--claim-idle", "7s", "--metrics", maddr, NULL};
    rf_worker(&R, "w1", extra);
    /* While held: one line waiting (the gauge), nothing sent. */
    struct metric_arg ma = {murl, "hookq_ordered_lines", 1};
    wenv_wait(&R.w, metric_is, &ma, 5000, "hookq_ordered_lines 1 while the line is held");
    assert_int_equal(hq_test_receiver_count_path(&R.w.rcv, "/wm"), 0);
    char out[8192], err[1024];
    assert_int_equal(wenv_cli(&R.w, out, sizeof(out), err, sizeof(err), "stats", NULL), 0);
    assert_non_null(strstr(out, "ordered:      1 lines, 19 events waiting in them"));
    ordered_wait_delivered(&o, 60000);
    ma.want = 0;
    wenv_wait(&R.w, metric_is, &ma, 10000, "hookq_ordered_lines 0");
    struct ordered_report rep;
    check_order(&o, &rep);
    assert_int_equal(rep.early, 0);
    assert_int_equal(rep.lost, 0);
}

/* Block: 20 % of requests fail, 3 workers, a kill -9 of one and a restart of
 * the scheduler in the middle: each key's 2xx in stream order, none lost,
 * no head sent before its predecessor's 2xx. */
static void test_block_holds_the_line_through_failures_and_kill9(void **state)
{
    (void)state;
    rf_start_rcv2(&R, 20);
    struct ordered_run o = {.r = &R, .rcv = &R.rcv2, .path = "/flaky", .nkeys = 10, .per_key = 100};
    ordered_endpoint(&o, HQ_ORDERED_BLOCK);
    ordered_kill9_run(&o, 3, 120000);
    struct ordered_report rep;
    check_order(&o, &rep);
    print_message("[ordered, block, 20%% failures] %ld delivered, %ld failed, %ld repeats, %ld "
                  "early, %ld lost\n",
                  rep.delivered, rep.failed, rep.repeats, rep.early, rep.lost);
    assert_int_equal(rep.early, 0);
    assert_int_equal(rep.lost, 0);
    assert_true(rep.failed > 0);
    assert_true(rep.repeats <= 3 * 16); /* the killed worker's heads in flight */
    assert_int_equal(ordered_dead(&o), 0);
}

/* Skip: every head fails; each is dead-lettered after one attempt
 * (`skipped: ordered`) and the line goes on, in order. */
static void test_skip_dead_letters_and_moves_on(void **state)
{
    (void)state;
    struct ordered_run o = {.r = &R, .path = "/s/500/skip", .nkeys = 5, .per_key = 10};
    ordered_endpoint(&o, HQ_ORDERED_SKIP);
    const char *extra[] = {"--concurrency", "16", NULL};
    rf_worker(&R, "w1", extra);
    ordered_produce(&o);
    ordered_wait_dead(&o, 50, 60000);
    struct ordered_report rep;
    check_order(&o, &rep);
    assert_int_equal(rep.early, 0);
    assert_int_equal(rep.failed, 50); /* one attempt each */
    assert_int_equal(ordered_dead_reason(&o, "skipped: ordered"), 50);
}

/* A non-ordered endpoint beside an ordered one gets every event, and the
 * ordered one its own in order. */
static void test_unordered_endpoint_beside_is_unaffected(void **state)
{
    (void)state;
    struct ordered_run o = {.r = &R, .path = "/ord", .nkeys = 4, .per_key = 50};
    ordered_endpoint(&o, HQ_ORDERED_BLOCK);
    int plain = rf_endpoint(&R, "/plain");
    (void)plain;
    const char *extra[] = {"--concurrency", "64", NULL};
    rf_worker(&R, "w1", extra);
    ordered_produce(&o);
    ordered_wait_delivered(&o, 60000);
    struct count_arg ca = {&R.w.rcv, "/plain", 200};
    wenv_wait(&R.w, received_at_least, &ca, 30000, "the unordered endpoint's 200 events");
    struct ordered_report rep;
    check_order(&o, &rep);
    assert_int_equal(rep.early, 0);
    assert_int_equal(rep.lost, 0);
    assert_int_equal(hq_test_receiver_count_path(&R.w.rcv, "/plain"), 200);
}

/* `hookq produce --key` (libhookq, the msgpack form): events of one key but
 * ids of different partitions all go to the key's partition, and reach the
 * ordered endpoint in order. */
static void test_produce_key_routes_by_key(void **state)
{
    (void)state;
    struct ordered_run o = {.r = &R, .path = "/pk", .nkeys = 1, .per_key = 8};
    ordered_endpoint(&o, HQ_ORDERED_BLOCK);
    char out[512], err[512];
    for (int s = 0; s < o.per_key; s++) {
        char id[32];
        snprintf(id, sizeof(id), "o-0-%d", s);
        assert_int_equal(wenv_cli(&R.w, out, sizeof(out), err, sizeof(err), "produce", "--type",
                                  "ord.test", "--key", "k0", "--id", id, "--data", "{}", NULL),
                         0);
    }
    assert_int_equal(wenv_cli(&R.w, out, sizeof(out), err, sizeof(err), "produce", "--type",
                              "ord.test", "--key", "bad key", "--data", "{}", NULL),
                     2);
    assert_non_null(strstr(err, "key:"));
    unsigned part = hq_tl_part_for(&R.w.tl, "k0");
    char stream[HQ_KEY_MAX];
    assert_true(hq_key_events(hq_tl_base(&R.w.tl, "hookq", part), stream, sizeof(stream)) >= 0);
    assert_int_equal(hq_test_cmd_int(wenv_node(&R.w, part), "XLEN %s", stream), o.per_key);
    const char *extra[] = {"--concurrency", "16", NULL};
    rf_worker(&R, "w1", extra);
    ordered_wait_delivered(&o, 30000);
    struct ordered_report rep;
    check_order(&o, &rep);
    assert_int_equal(rep.early, 0);
}

/* The CLI: --ordered, --ordered-on-failure, --no-ordered, show and --json,
 * and bad values refused with nothing changed. */
static void test_cli_ordered_flags(void **state)
{
    (void)state;
    char out[8192], err[2048], id[64];
    int rc = wenv_cli(&R.w, out, sizeof(out), err, sizeof(err), "endpoint", "add", "--name", "o",
                      "--url", "http://127.0.0.1:9/x", "--ordered", "--json", NULL);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "\"ordered\":true"));
    assert_non_null(strstr(out, "\"ordered_on_failure\":\"block\""));
    const char *p = strstr(out, "\"id\":\"");
    assert_non_null(p);
    snprintf(id, sizeof(id), "%.*s", (int)strcspn(p + 6, "\""), p + 6);
    rc = wenv_cli(&R.w, out, sizeof(out), err, sizeof(err), "endpoint", "update", id,
                  "--ordered-on-failure", "sideways", NULL);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "--ordered-on-failure: 'sideways' is not block or skip"));
    rc = wenv_cli(&R.w, out, sizeof(out), err, sizeof(err), "endpoint", "show", id, NULL);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "ordered:      block"));
    rc = wenv_cli(&R.w, out, sizeof(out), err, sizeof(err), "endpoint", "update", id,
                  "--ordered-on-failure", "skip", NULL);
    assert_int_equal(rc, 0);
    rc = wenv_cli(&R.w, out, sizeof(out), err, sizeof(err), "endpoint", "show", id, NULL);
    assert_non_null(strstr(out, "ordered:      skip"));
    rc = wenv_cli(&R.w, out, sizeof(out), err, sizeof(err), "endpoint", "update", id,
                  "--no-ordered", "--ordered", NULL);
    assert_int_equal(rc, 2);
    rc = wenv_cli(&R.w, out, sizeof(out), err, sizeof(err), "endpoint", "update", id,
                  "--no-ordered", NULL);
    assert_int_equal(rc, 0);
    rc = wenv_cli(&R.w, out, sizeof(out), err, sizeof(err), "endpoint", "show", id, "--json", NULL);
    assert_non_null(strstr(out, "\"ordered\":false"));
    rc = wenv_cli(&R.w, out, sizeof(out), err, sizeof(err), "endpoint", "update", id,
                  "--ordered-on-failure", "skip", NULL);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "not ordered"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RF_TEST(test_keys_keep_their_order_and_run_in_parallel, &R),
        RF_TEST(test_keyless_is_one_line, &R),
        RF_TEST(test_a_pending_earlier_entry_holds_the_line, &R),
        RF_TEST(test_block_holds_the_line_through_failures_and_kill9, &R),
        RF_TEST(test_skip_dead_letters_and_moves_on, &R),
        RF_TEST(test_unordered_endpoint_beside_is_unaffected, &R),
        RF_TEST(test_cli_ordered_flags, &R),
        RF_TEST(test_produce_key_routes_by_key, &R),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
