/* Scenario 11: an endpoint is down for 40 s (answers 503) while events keep
 * coming, then recovers. Everything is delivered once it is back, each event
 * exactly once with a 2xx, and the retries come back spread out by the
 * backoff's jitter rather than in one burst. Worker and scheduler with a
 * short policy (2 s base, factor 2, 20 s max). Label slow (~70 s). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/integration/worker_env.h"

static struct wenv W;

static int setup(void **state)
{
    (void)state;
    wenv_start(&W, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    wenv_stop(&W);
    return 0;
}

static size_t delivered(int64_t *first_ms, int64_t *last_ms, size_t *max_in_100ms)
{
    pthread_mutex_lock(&W.rcv.mu);
    size_t n = 0;
    int64_t lo = INT64_MAX, hi = 0;
    int64_t *at = calloc(W.rcv.nreqs + 1, sizeof(int64_t));
    for (size_t i = 0; i < W.rcv.nreqs; i++) {
        if (W.rcv.reqs[i].status >= 200 && W.rcv.reqs[i].status < 300) {
            at[n++] = W.rcv.reqs[i].at_ms;
            if (W.rcv.reqs[i].at_ms < lo)
                lo = W.rcv.reqs[i].at_ms;
            if (W.rcv.reqs[i].at_ms > hi)
                hi = W.rcv.reqs[i].at_ms;
        }
    }
    pthread_mutex_unlock(&W.rcv.mu);
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        size_t in = 0;
        for (size_t k = 0; k < n; k++)
            in += at[k] >= at[i] && at[k] < at[i] + 100;
        if (in > best)
            best = in;
    }
    free(at);
    if (first_ms)
        *first_ms = lo;
    if (last_ms)
        *last_ms = hi;
    if (max_in_100ms)
        *max_in_100ms = best;
    return n;
}

static int all_delivered(void *arg)
{
    return delivered(NULL, NULL, NULL) >= *(size_t *)arg;
}

static void test_outage_then_recovery_delivers_all_spread_by_jitter(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    char url[128];
    snprintf(url, sizeof(url), "%s/o", W.rcv.url);
    wenv_endpoint(&W, url, NULL, NULL, 20, &ep);
    static const char *const env[] = {"HOOKQ_ALLOW_PRIVATE=1", "HOOKQ_BACKOFF_BASE=2s",
                                      "HOOKQ_BACKOFF_FACTOR=2", "HOOKQ_BACKOFF_MAX=20s", NULL};
    pid_t worker = wenv_worker(&W, NULL, env);
    const char *sargs[] = {"scheduler", "--redis-url", W.redis.url, NULL};
    pid_t sched = hq_test_spawn(sargs, env, W.log);

    W.rcv.default_status = 503; /* the outage begins */
    int64_t t0 = hq_test_now_ms();
    const size_t n = 200;
    for (size_t i = 0; i < n; i++)
        wenv_produce(&W, "o.x", "{}", NULL, NULL, NULL, 0);
    /* Hold the outage for 40 s: the retries cycle meanwhile. */
    while (hq_test_now_ms() - t0 < 40000) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(delivered(NULL, NULL, NULL), 0);
    pthread_mutex_lock(&W.rcv.mu);
    W.rcv.default_status = 204; /* recovered */
    pthread_mutex_unlock(&W.rcv.mu);
    int64_t back = hq_test_now_ms();
    size_t want = n;
    wenv_wait(&W, all_delivered, &want, 40000, "every event after the recovery");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 20000, "nothing pending");
    assert_int_equal(hq_test_cmd_int(W.c, "XLEN hookq:dead"), 0);

    int64_t first, last;
    size_t burst;
    assert_int_equal(delivered(&first, &last, &burst), n); /* each exactly once */
    print_message("recovery: first delivery %lld ms after, spread %lld ms, max %zu in 100 ms\n",
                  (long long)(first - back), (long long)(last - first), burst);
    /* Spread by jitter: not one burst. */
    assert_true(last - first >= 1000);
    assert_true(burst < n / 2);
    assert_int_equal(hq_test_kill_wait(sched, SIGTERM, 20000), 0);
    assert_int_equal(hq_test_kill_wait(worker, SIGTERM, 20000), 0);
    hq_endpoint_free(&ep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_outage_then_recovery_delivers_all_spread_by_jitter,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
