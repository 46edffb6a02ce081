/* Scenario 11: two endpoints are down for 40 s while events keep coming, then
 * recover: one answers 503 (the harness receiver), the other is not there at
 * all (its port refuses connections: tests/harness/bad_server.c, bound but not
 * listening) and comes back on the same port. Once they are back everything
 * is delivered, each (event, endpoint) pair exactly once with a 2xx, nothing
 * is dead-lettered, and the retries arrive spread out by the backoff's jitter
 * rather than in one burst. Worker and scheduler with a short policy (2 s
 * base, factor 2, 20 s max). Label slow (~70 s). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/bad_server.h"
#include "tests/harness/worker_env.h"

static struct wenv W;

#define OUTAGE_MS 40000
#define N_EVENTS  200

/* Arrival times of successful requests: their count, first, last, and the
 * most that arrived within any 100 ms. */
struct arrivals {
    size_t n;
    int64_t first, last;
    size_t max_in_100ms;
};

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void arrivals_of(int64_t *at, size_t n, struct arrivals *out)
{
    qsort(at, n, sizeof(*at), cmp_i64);
    out->n = n;
    out->first = n ? at[0] : 0;
    out->last = n ? at[n - 1] : 0;
    out->max_in_100ms = 0;
    for (size_t i = 0, k = 0; i < n; i++) {
        while (at[i] - at[k] >= 100)
            k++;
        if (i - k + 1 > out->max_in_100ms)
            out->max_in_100ms = i - k + 1;
    }
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The 503 endpoint's 2xx arrivals; also counts its distinct webhook-ids. */
static void receiver_arrivals(struct arrivals *out, size_t *distinct)
{
    pthread_mutex_lock(&W.rcv.mu);
    int64_t *at = calloc(W.rcv.nreqs + 1, sizeof(*at));
    char **ids = calloc(W.rcv.nreqs + 1, sizeof(*ids));
    size_t n = 0;
    for (size_t i = 0; i < W.rcv.nreqs; i++) {
        if (W.rcv.reqs[i].status >= 200 && W.rcv.reqs[i].status < 300) {
            char v[128] = "";
            hq_test_request_header(&W.rcv.reqs[i], "webhook-id", v, sizeof(v));
            ids[n] = strdup(v);
            at[n++] = W.rcv.reqs[i].at_ms;
        }
    }
    pthread_mutex_unlock(&W.rcv.mu);
    qsort(ids, n, sizeof(*ids), cmp_str_ptr);
    size_t d = 0;
    for (size_t i = 0; i < n; i++)
        d += i == 0 || strcmp(ids[i], ids[i - 1]) != 0;
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    if (distinct)
        *distinct = d;
    arrivals_of(at, n, out);
    free(at);
}

/* The refusing endpoint's arrivals (it answers 204 to all it accepts). */
static void server_arrivals(struct bs_server *s, struct arrivals *out, size_t *distinct)
{
    struct bs_record *r = NULL;
    size_t n = bs_records(s, &r);
    int64_t *at = calloc(n + 1, sizeof(*at));
    const char **ids = calloc(n + 1, sizeof(*ids));
    for (size_t i = 0; i < n; i++) {
        at[i] = r[i].at_ms;
        ids[i] = r[i].webhook_id;
    }
    qsort(ids, n, sizeof(*ids), cmp_str_ptr);
    size_t d = 0;
    for (size_t i = 0; i < n; i++)
        d += i == 0 || strcmp(ids[i], ids[i - 1]) != 0;
    if (distinct)
        *distinct = d;
    arrivals_of(at, n, out);
    free(ids);
    free(at);
    free(r);
}

static int all_delivered(void *arg)
{
    struct bs_server *s = arg;
    struct arrivals a, b;
    receiver_arrivals(&a, NULL);
    server_arrivals(s, &b, NULL);
    return a.n >= N_EVENTS && b.n >= N_EVENTS;
}

/* 1 when event id's attempt records hold an error of class cls for ep. */
static int failed_with(const char *id, const char *ep_id, const char *cls)
{
    redisReply *r = wenv_attempts(&W, id);
    char needle[64];
    snprintf(needle, sizeof(needle), "\"error\":\"%s", cls);
    int found = 0;
    for (size_t i = 0; i < r->elements && !found; i++)
        found = strstr(r->element[i]->str, ep_id) && strstr(r->element[i]->str, needle);
    freeReplyObject(r);
    return found;
}

static void check_spread(const char *what, const struct arrivals *a, int64_t back)
{
    print_message(
        "%s: %zu delivered, first %lld ms after recovery, spread %lld ms, at most %zu in 100 ms\n",
        what, a->n, (long long)(a->first - back), (long long)(a->last - a->first), a->max_in_100ms);
    assert_int_equal(a->n, N_EVENTS); /* each exactly once (distinct ids checked apart) */
    /* Spread by jitter: not one burst. With a 2 s base the retries due in the
     * same round land over at least a second... */
    assert_true(a->last - a->first >= 1000);
    /* ...and no 100 ms window holds even half of them. */
    assert_true(a->max_in_100ms < N_EVENTS / 2);
}

static void test_outage_then_recovery_delivers_all_spread_by_jitter(void **state)
{
    (void)state;
    struct bs_server down;
    bs_start_down(&down, BS_OK); /* refuses until bs_listen */
    struct hq_endpoint ep503, epdown;
    char url[128];
    wenv_endpoint_at(&W, "/o", NULL, 20, &ep503);
    snprintf(url, sizeof(url), "%s/o", down.url);
    wenv_endpoint(&W, url, NULL, NULL, 20, &epdown);
    static const char *const env[] = {"HOOKQ_ALLOW_PRIVATE=1", "HOOKQ_BACKOFF_BASE=2s",
                                      "HOOKQ_BACKOFF_FACTOR=2", "HOOKQ_BACKOFF_MAX=20s", NULL};
    pid_t worker = wenv_worker(&W, NULL, env);
    const char *sargs[] = {"scheduler", "--redis-url", W.redis.url, NULL};
    pid_t sched = wenv_track(&W, hq_test_spawn(sargs, env, W.log));

    W.rcv.default_status = 503; /* the outage begins */
    int64_t t0 = hq_test_now_ms();
    for (int i = 0; i < N_EVENTS; i++) {
        char id[32];
        snprintf(id, sizeof(id), "evt_o_%d", i);
        wenv_produce(&W, "o.x", "{}", id, NULL, NULL, 0);
    }
    /* Hold the outage for 40 s while the retries cycle: no timing is asserted
     * here, the wait is the outage itself. */
    while (hq_test_now_ms() - t0 < OUTAGE_MS) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    struct arrivals a, b;
    receiver_arrivals(&a, NULL);
    assert_int_equal(a.n, 0);
    assert_int_equal(atomic_load(&down.accepted), 0);
    /* Both failure kinds were seen as what they are and retried. */
    assert_true(failed_with("evt_o_0", ep503.id, "http_status: 503"));
    assert_true(failed_with("evt_o_0", epdown.id, "connect: "));
    redisReply *att = wenv_attempts(&W, "evt_o_0");
    assert_true(att->elements >= 4); /* retried, both */
    freeReplyObject(att);

    pthread_mutex_lock(&W.rcv.mu);
    W.rcv.default_status = 204; /* recovered */
    pthread_mutex_unlock(&W.rcv.mu);
    bs_listen(&down); /* back on the same port */
    int64_t back = hq_test_now_ms();
    wenv_wait(&W, all_delivered, &down, 40000, "every pair delivered after the recovery");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 20000, "nothing pending");
    assert_int_equal(hq_test_cmd_int(W.c, "XLEN hookq:dead"), 0);
    assert_int_equal(hq_test_cmd_int(W.c, "ZCARD hookq:retry"), 0);

    size_t distinct_a, distinct_b;
    receiver_arrivals(&a, &distinct_a);
    server_arrivals(&down, &b, &distinct_b);
    assert_int_equal(distinct_a, N_EVENTS);
    assert_int_equal(distinct_b, N_EVENTS);
    check_spread("503 endpoint", &a, back);
    check_spread("refusing endpoint", &b, back);
    assert_int_equal(hq_test_kill_wait(sched, SIGTERM, 20000), 0);
    assert_int_equal(hq_test_kill_wait(worker, SIGTERM, 20000), 0);
    bs_stop(&down);
    hq_endpoint_free(&ep503);
    hq_endpoint_free(&epdown);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        WENV_TEST(test_outage_then_recovery_delivers_all_spread_by_jitter, &W),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
