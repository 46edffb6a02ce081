/* Per-endpoint rate limits with real processes: three workers share one
 * endpoint A limited to 20/s, fed a backlog three times what it may take in
 * the run, on the same stream as an unlimited endpoint B.
 *   - A's limit holds within +-10 % over every sliding 10-s window of the
 *     run, judged by the receipt times at the receiver;
 *   - nothing of A's spends an attempt while throttled: every delivery A
 *     received was its event's first and only attempt (attempt records),
 *     although many were deferred (and came back) on the way;
 *   - B is not slowed: all its events arrive within seconds, while A's
 *     backlog takes a minute;
 *   - the operator sees A's throttled and deferred counts per endpoint, the
 *     label set bounded (100 endpoints, then "other");
 *   - every bad value of --rate-limit: one-line error, exit 2, nothing changed.
 * HQ_RL_TEST_SECONDS sets the judged run (default 30). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "common/endpoint_store.h"
#include "worker/metrics.h"
#include "tests/harness/noisy.h"
#include "tests/harness/worker_env.h"

static struct wenv W;
static char out[1 << 16], errb[4096];

#define RATE 20 /* per second */
#define NB   200

#define cli(...) wenv_cli(&W, out, sizeof(out), errb, sizeof(errb), __VA_ARGS__)

static int run_seconds(void)
{
    const char *v = getenv("HQ_RL_TEST_SECONDS");
    int s = v ? atoi(v) : 30;
    return s >= 12 ? s : 30;
}

/* Receipt times (unix ms) of requests whose path starts with prefix, in
 * arrival order, and their webhook-ids; returns their number. */
static size_t receipts(const char *prefix, int64_t *at, char (*ids)[64], size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&W.rcv.mu);
    for (size_t i = 0; i < W.rcv.nreqs && n < max; i++) {
        const struct hq_test_request *q = &W.rcv.reqs[i];
        if (strncmp(q->path, prefix, strlen(prefix)) != 0)
            continue;
        at[n] = q->at_ms;
        if (ids && hq_test_request_header(q, "webhook-id", ids[n], 64) != 0)
            ids[n][0] = '\0';
        n++;
    }
    pthread_mutex_unlock(&W.rcv.mu);
    return n;
}

struct after_arg {
    int64_t until_ms;
};
static int time_passed(void *arg)
{
    struct after_arg *a = arg;
    return hq_test_now_ms() >= a->until_ms;
}

static void test_a_limit_holds_across_three_workers_and_spends_no_attempt(void **state)
{
    (void)state;
    const int secs = run_seconds();
    const int na = RATE * secs * 3; /* a backlog that outlasts the run */
    char url[256];
    struct hq_endpoint a, b;
    snprintf(url, sizeof(url), "%s/a", W.rcv.url);
    wenv_endpoint_fill(url, "a.*", NULL, 0, &a);
    struct hq_err err = {0};
    assert_int_equal(hq_rate_parse("20/s", &a.rate, &err), 0);
    wenv_endpoint_create(&W, &a);
    wenv_endpoint_at(&W, "/b", "b.*", 0, &b);

    for (int i = 0, j = 0; i < na || j < NB;) {
        char id[32];
        if (i < na) {
            snprintf(id, sizeof(id), "evt_a%d", i++);
            wenv_produce(&W, "a.x", "{}", id, NULL, NULL, 0);
        }
        if (j < NB && i % 4 == 0) {
            snprintf(id, sizeof(id), "evt_b%d", j++);
            wenv_produce(&W, "b.x", "{}", id, NULL, NULL, 0);
        }
    }
    int64_t produced_ms = hq_test_now_ms();
    /* Every worker serves metrics: the counts are per worker, summed here. */
    char addr[3][64];
    pid_t workers[3];
    for (int i = 0; i < 3; i++) {
        snprintf(addr[i], sizeof(addr[i]), "127.0.0.1:%d", hq_test_free_port());
        const char *wargs[] = {"--defer", "1s", "--metrics", addr[i], NULL};
        workers[i] = wenv_worker(&W, wargs, NULL);
    }
    const char *sargs[] = {"--interval", "100ms", NULL};
    wenv_scheduler(&W, sargs);

    /* B is not held back by A's backlog. */
    struct count_arg cb = {&W.rcv, "/b", NB};
    wenv_wait(&W, received_at_least, &cb, 15000, "B's events all delivered within 15 s");
    int64_t b_done_ms = hq_test_now_ms();

    /* A at 20/s for the judged run (the backlog lasts three times as long). */
    struct count_arg ca = {&W.rcv, "/a", 1};
    wenv_wait(&W, received_at_least, &ca, 15000, "A's first delivery");
    static int64_t at[20000];
    static char ids[20000][64];
    receipts("/a", at, NULL, 1);
    int64_t t0 = at[0];
    struct after_arg aa = {t0 + (int64_t)secs * 1000 + 500};
    wenv_wait(&W, time_passed, &aa, secs * 1000 + 5000, "the judged run");
    long long deferred = wenv_sum(&W, "HLEN", hq_key_retry_data);
    /* The limit's one key is on A's home partition (and nowhere else). */
    unsigned home = hq_layout_partition_for(&W.tl.L, a.id, strlen(a.id), 0);
    for (unsigned i = 0; i < hq_tl_nparts(&W.tl); i++) {
        char key[HQ_KEY_MAX];
        hq_key_rate_limit(hq_tl_base(&W.tl, "hookq", i), a.id, key, sizeof(key));
        assert_int_equal(hq_test_cmd_int(wenv_node(&W, i), "EXISTS %s", key), i == home);
    }
    wenv_assert_layout(&W, "rate limit");
    size_t n = receipts("/a", at, ids, 20000);
    /* What the operator sees: A's throttled and deferred counts, B absent. */
    long sums[2] = {0, 0};
    for (int i = 0; i < 3; i++) {
        char murl[256], want[160];
        snprintf(murl, sizeof(murl), "http://%s/metrics", addr[i]);
        struct hq_buf body;
        hq_buf_init(&body, 1 << 20);
        assert_int_equal(wenv_http_get(murl, &body), 200);
        for (int k = 0; k < 2; k++) {
            snprintf(want, sizeof(want),
                     "hookq_rate_limited_by_endpoint_total{endpoint=\"%s\",result=\"%s\"} ", a.id,
                     k ? "deferred" : "throttled");
            const char *p = strstr(body.p, want);
            sums[k] += p ? atol(p + strlen(want)) : 0;
        }
        assert_null(strstr(body.p, b.id));
        assert_non_null(strstr(body.p, "hookq_rate_limit_leases_total "));
        hq_buf_free(&body);
    }
    print_message("A throttled %ld, deferred %ld (all workers)\n", sums[0], sums[1]);
    assert_true(sums[0] > 0 && sums[1] > 0);
    /* SIGTERM drains: each worker defers what waits for tokens and exits 0
     * (under ASan, with nothing leaked). */
    for (int i = 0; i < 3; i++) {
        int st = hq_test_kill_wait(workers[i], SIGTERM, 20000);
        if (st != 0)
            wenv_dump_log(&W);
        assert_int_equal(st, 0);
    }
    wenv_kill_leftovers(&W);

    /* Every sliding 10-s window (100-ms steps) of [t0, t0 + secs). */
    int lo, hi;
    hq_rate_windows(at, n, t0, secs, &lo, &hi);
    print_message("A (20/s, 3 workers): %zu received in %d s; sliding 10-s windows %d..%d "
                  "(limit 200, +-10 %% = 180..220); %lld deferred at the end; B's %d in %lld ms\n",
                  n, secs, lo, hi, deferred, NB, (long long)(b_done_ms - produced_ms));
    if (hi > RATE * 10 * 11 / 10 || lo < RATE * 10 * 9 / 10) { /* where it went wrong */
        char line[1024];
        int len = 0;
        for (int s = 0; s < secs && len < (int)sizeof(line) - 8; s++) {
            int c = 0;
            for (size_t i = 0; i < n; i++)
                c += at[i] >= t0 + s * 1000LL && at[i] < t0 + (s + 1) * 1000LL;
            len += snprintf(line + len, sizeof(line) - (size_t)len, " %d", c);
        }
        print_message("A per second:%s\n", line);
    }
    assert_true(hi <= RATE * 10 * 11 / 10);
    assert_true(lo >= RATE * 10 * 9 / 10);
    assert_true(deferred > 0); /* the backlog really went through the retry set */

    /* Nothing of A's spent an attempt: each received delivery was its
     * event's first attempt, and the only one. */
    size_t checked = 0;
    for (size_t i = 0; i < n; i++) {
        if (at[i] >= t0 + (int64_t)secs * 1000)
            break;
        assert_true(ids[i][0] != '\0');
        redisReply *r = wenv_attempts(&W, ids[i]);
        if (r->elements != 1 || !strstr(r->element[0]->str, "\"attempt\":1,")) {
            print_message("event %s: %zu attempt records, first %s\n", ids[i], r->elements,
                          r->elements ? r->element[0]->str : "-");
            fail();
        }
        freeReplyObject(r);
        checked++;
    }
    assert_true(checked >= (size_t)(RATE * secs * 9 / 10));
    hq_endpoint_free(&a);
    hq_endpoint_free(&b);
}

static void test_the_by_endpoint_metric_keeps_100_endpoints_then_other(void **state)
{
    (void)state;
    static struct hq_metrics m; /* large: not on the stack */
    hq_metrics_init(&m);
    char id[32];
    for (int i = 0; i < HQ_METRICS_RL_ENDPOINTS_MAX; i++) {
        snprintf(id, sizeof(id), "ep_%03d", i);
        assert_int_equal(hq_metrics_rl_slot(&m, id), i);
    }
    assert_int_equal(hq_metrics_rl_slot(&m, "ep_007"), 7);
    assert_int_equal(hq_metrics_rl_slot(&m, "ep_late"), HQ_METRICS_RL_ENDPOINTS_MAX);
    hq_metrics_rl_count(&m, 7, 1);
    hq_metrics_rl_count(&m, HQ_METRICS_RL_ENDPOINTS_MAX, 0);
    struct hq_buf body;
    wenv_metrics_text(&m, &body);
    assert_non_null(strstr(body.p, "hookq_rate_limited_by_endpoint_total{endpoint=\"ep_007\","
                                   "result=\"deferred\"} 1\n"));
    assert_non_null(strstr(body.p, "hookq_rate_limited_by_endpoint_total{endpoint=\"other\","
                                   "result=\"throttled\"} 1\n"));
    assert_non_null(strstr(body.p, "hookq_rate_limit_deferred_total 1\n"));
    assert_non_null(strstr(body.p, "hookq_rate_limit_throttled_total 1\n"));
    assert_null(strstr(body.p, "ep_late"));
    hq_buf_free(&body);
}

static void test_bad_rate_limit_values_exit_2_and_change_nothing(void **state)
{
    (void)state;
    assert_int_equal(cli("endpoint", "add", "--name", "x", "--url", "https://example.com/",
                         "--rate-limit", "50/s", "--json", NULL),
                     0);
    char id[64];
    const char *p = strstr(out, "\"id\":\"");
    assert_non_null(p);
    snprintf(id, sizeof(id), "%.*s", (int)strcspn(p + 6, "\""), p + 6);
    assert_non_null(strstr(out, "\"rate_limit\":\"50/s\""));
    const char *bad[] = {"x", "50", "50/h", "0/s", "-1/s", "1000001/s", "5/s ", "1.5/s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        assert_int_equal(cli("endpoint", "update", id, "--rate-limit", bad[i], NULL), 2);
        assert_non_null(strstr(errb, "hookq endpoint update: --rate-limit: '"));
        assert_non_null(strchr(errb, '\n'));
        assert_string_equal(strchr(errb, '\n'), "\n"); /* one line */
        assert_int_equal(cli("endpoint", "add", "--name", "y", "--url", "https://example.com/",
                             "--rate-limit", bad[i], NULL),
                         2);
        assert_non_null(strstr(errb, "hookq endpoint add: --rate-limit: '"));
    }
    assert_int_equal(cli("endpoint", "show", id, "--json", NULL), 0);
    assert_non_null(strstr(out, "\"rate_limit\":\"50/s\""));
    assert_int_equal(cli("endpoint", "list", "--json", NULL), 0);
    assert_null(strstr(out, "\"name\":\"y\"")); /* no endpoint was added */
    /* Per minute, and '' removes it. */
    assert_int_equal(cli("endpoint", "update", id, "--rate-limit", "3000/m", NULL), 0);
    assert_int_equal(cli("endpoint", "show", id, NULL), 0);
    assert_non_null(strstr(out, "rate_limit:   3000/m\n"));
    assert_int_equal(cli("endpoint", "update", id, "--rate-limit", "", NULL), 0);
    assert_int_equal(cli("endpoint", "show", id, "--json", NULL), 0);
    assert_non_null(strstr(out, "\"rate_limit\":null"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_by_endpoint_metric_keeps_100_endpoints_then_other),
        WENV_TEST(test_bad_rate_limit_values_exit_2_and_change_nothing, &W),
        WENV_TEST(test_a_limit_holds_across_three_workers_and_spends_no_attempt, &W),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
