/* The worker under faults: kill -9 with deliveries in
 * flight and another worker reclaiming, SIGTERM drain, a hanging endpoint
 * held to its cap while a healthy one flows, and Redis restarted under load
 * or restarted empty. Real processes, real Redis, real receivers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/worker_env.h"

static struct wenv W;

/* Distinct webhook-ids received, and total requests, under a path prefix. */
static size_t distinct_ids(struct hq_test_receiver *rc, const char *prefix, size_t *total)
{
    pthread_mutex_lock(&rc->mu);
    size_t n = rc->nreqs, distinct = 0, all = 0;
    char **seen = calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        if (prefix && strncmp(rc->reqs[i].path, prefix, strlen(prefix)) != 0)
            continue;
        if (rc->reqs[i].status < 200 || rc->reqs[i].status >= 300)
            continue;
        all++;
        char id[256];
        if (hq_test_request_header(&rc->reqs[i], "webhook-id", id, sizeof(id)) != 0)
            continue;
        int dup = 0;
        for (size_t k = 0; k < distinct && !dup; k++)
            dup = strcmp(seen[k], id) == 0;
        if (!dup)
            seen[distinct++] = strdup(id);
    }
    pthread_mutex_unlock(&rc->mu);
    for (size_t k = 0; k < distinct; k++)
        free(seen[k]);
    free(seen);
    if (total)
        *total = all;
    return distinct;
}

struct distinct_arg {
    struct hq_test_receiver *rc;
    const char *prefix;
    size_t want;
};

static int distinct_at_least(void *arg)
{
    struct distinct_arg *a = arg;
    return distinct_ids(a->rc, a->prefix, NULL) >= a->want;
}

static int receiver_in_flight_at_least(void *arg)
{
    struct count_arg *a = arg;
    pthread_mutex_lock(&a->rcv->mu);
    int n = a->rcv->in_flight;
    pthread_mutex_unlock(&a->rcv->mu);
    return (size_t)n >= a->want;
}

static void test_kill9_in_flight_then_another_worker_reclaims_everything(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    wenv_endpoint_at(&W, "/delay/1500", NULL, 0, &ep);
    const int n = 300;
    for (int i = 0; i < n; i++)
        wenv_produce(&W, "crash.test", "{\"i\":1}", NULL, NULL, NULL, 0);
    const char *extra[] = {
        "--timeout", "5s", "--claim-idle", "11s", "--concurrency", "100", "--endpoint-concurrency",
        "100",       NULL};
    pid_t a = wenv_worker(&W, extra, NULL);
    struct count_arg ca = {&W.rcv, NULL, 50};
    wenv_wait(&W, receiver_in_flight_at_least, &ca, 15000, "50 deliveries in flight");
    long long held = wenv_pending(&W);
    assert_int_equal(hq_test_kill_wait(a, SIGKILL, 5000), 128 + SIGKILL);
    pthread_mutex_lock(&W.rcv.mu);
    int in_flight_at_kill = W.rcv.in_flight;
    pthread_mutex_unlock(&W.rcv.mu);

    pid_t b = wenv_worker(&W, extra, NULL);
    struct distinct_arg da = {&W.rcv, NULL, (size_t)n};
    wenv_wait(&W, distinct_at_least, &da, 90000, "every event delivered after the reclaim");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 20000, "nothing pending");
    size_t total = 0;
    size_t distinct = distinct_ids(&W.rcv, NULL, &total);
    assert_int_equal(distinct, (size_t)n);
    size_t dups = total - distinct;
    print_message("kill -9: %d deliveries in flight, %lld entries held, %zu duplicates\n",
                  in_flight_at_kill, held, dups);
    /* Duplicates come only from what the killed worker held at the kill. */
    assert_true(dups <= (size_t)held);
    /* A crash spends no retry budget: nothing went to the retry set or the DLQ. */
    assert_int_equal(hq_test_cmd_int(W.c, "ZCARD hookq:retry"), 0);
    assert_int_equal(hq_test_cmd_int(W.c, "XLEN hookq:dead"), 0);
    assert_int_equal(hq_test_kill_wait(b, SIGTERM, 20000), 0);
    hq_endpoint_free(&ep);
}

struct metric_arg {
    const char *url;  /* /metrics */
    const char *line; /* a line that must appear */
};

static int metrics_has(void *arg)
{
    struct metric_arg *a = arg;
    struct hq_buf b;
    hq_buf_init(&b, 1 << 20);
    int ok = wenv_http_get(a->url, &b) == 200 && strstr(b.p, a->line) != NULL;
    hq_buf_free(&b);
    return ok;
}

static void test_paused_worker_that_lost_its_entry_records_nothing(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    wenv_endpoint_at(&W, "/delay/3000", NULL, 0, &ep);
    char maddr[64], murl[128];
    snprintf(maddr, sizeof(maddr), "127.0.0.1:%d", hq_test_free_port());
    snprintf(murl, sizeof(murl), "http://%s/metrics", maddr);
    const char *a_args[] = {"--timeout", "5s", "--claim-idle", "11s", "--metrics", maddr, NULL};
    const char *b_args[] = {"--timeout", "5s", "--claim-idle", "11s", NULL};
    pid_t a = wenv_worker(&W, a_args, NULL);
    wenv_produce(&W, "fence.test", "{}", "evt_fence", NULL, NULL, 0);
    /* A sent the request, then is paused past the claim time (a GC pause, a
     * stopped container): B reclaims the entry, delivers it and acks it. */
    struct count_arg ca = {&W.rcv, NULL, 1};
    wenv_wait(&W, receiver_in_flight_at_least, &ca, 10000, "A's request at the receiver");
    assert_int_equal(kill(a, SIGSTOP), 0);
    pid_t b = wenv_worker(&W, b_args, NULL);
    struct count_arg two = {&W.rcv, NULL, 2};
    wenv_wait(&W, received_at_least, &two, 30000, "B's re-delivery");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "B's ack");
    redisReply *att = wenv_attempts(&W, "evt_fence");
    assert_int_equal(att->elements, 1);
    freeReplyObject(att);
    /* A wakes with its answer (or its timeout) and flushes: the fence finds
     * the entry no longer A's, and A records nothing — no second attempt
     * record, no retry, no dead letter. */
    assert_int_equal(kill(a, SIGCONT), 0);
    struct metric_arg ma = {murl, "hookq_outcomes_fenced_total 1"};
    wenv_wait(&W, metrics_has, &ma, 20000, "A's outcome fenced");
    redisReply *r = wenv_attempts(&W, "evt_fence");
    assert_int_equal(r->elements, 1);
    assert_non_null(strstr(r->element[0]->str, "\"outcome\":\"delivered\""));
    freeReplyObject(r);
    assert_int_equal(hq_test_cmd_int(W.c, "ZCARD hookq:retry"), 0);
    assert_int_equal(hq_test_cmd_int(W.c, "HLEN hookq:retry:data"), 0);
    assert_int_equal(hq_test_cmd_int(W.c, "XLEN hookq:dead"), 0);
    assert_int_equal(hq_test_kill_wait(a, SIGTERM, 20000), 0);
    assert_int_equal(hq_test_kill_wait(b, SIGTERM, 20000), 0);
    hq_endpoint_free(&ep);
}

static void test_sigterm_drains_in_flight_and_exits_0(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    wenv_endpoint_at(&W, "/delay/1000", NULL, 0, &ep);
    const int n = 100;
    for (int i = 0; i < n; i++)
        wenv_produce(&W, "drain.test", "{}", NULL, NULL, NULL, 0);
    const char *extra[] = {"--concurrency", "20", NULL};
    pid_t a = wenv_worker(&W, extra, NULL);
    struct count_arg ca = {&W.rcv, NULL, 15};
    wenv_wait(&W, receiver_in_flight_at_least, &ca, 15000, "deliveries in flight");
    int st = hq_test_kill_wait(a, SIGTERM, 20000);
    if (st != 0)
        wenv_dump_log(&W);
    assert_int_equal(st, 0);
    /* Every delivery that started finished and was recorded; nothing is left pending. */
    assert_int_equal(wenv_pending(&W), 0);
    size_t total = 0;
    size_t distinct = distinct_ids(&W.rcv, NULL, &total);
    assert_int_equal(total, distinct);
    assert_true(distinct >= 15);
    long long left = hq_test_cmd_int(W.c, "XLEN hookq:events");
    long long deferred = hq_test_cmd_int(W.c, "ZCARD hookq:retry");
    assert_int_equal((long long)distinct + left + deferred, n);
    /* Another worker delivers the rest; nobody receives anything twice. */
    const char *wide[] = {"--endpoint-concurrency", "200", NULL};
    pid_t b = wenv_worker(&W, wide, NULL);
    struct distinct_arg da = {&W.rcv, NULL, (size_t)(n - deferred)};
    wenv_wait(&W, distinct_at_least, &da, 30000, "the rest delivered");
    distinct = distinct_ids(&W.rcv, NULL, &total);
    assert_int_equal(total, distinct);
    assert_int_equal(hq_test_kill_wait(b, SIGTERM, 20000), 0);
    hq_endpoint_free(&ep);
}

static void test_hanging_endpoint_is_held_to_its_cap_while_healthy_flows(void **state)
{
    (void)state;
    struct hq_endpoint hang, good;
    wenv_endpoint_at(&W, "/hang", "h.*", 0, &hang);
    wenv_endpoint_at(&W, "/good", "g.*", 0, &good);
    const char *extra[] = {
        "--timeout", "10s",           "--claim-idle", "60s", "--endpoint-concurrency",
        "8",         "--concurrency", "64",           NULL};
    pid_t a = wenv_worker(&W, extra, NULL);
    const int n = 400;
    for (int i = 0; i < n; i++)
        wenv_produce(&W, i % 2 ? "h.x" : "g.x", "{}", NULL, NULL, NULL, 0);
    /* Every healthy delivery lands before the first hanging attempt could time out. */
    struct count_arg ca = {&W.rcv, "/good", (size_t)n / 2};
    wenv_wait(&W, received_at_least, &ca, 9000, "all healthy deliveries while the other hangs");
    /* Every healthy request has finished, so what is still open is the hanging
     * endpoint's: held to its cap. (Both endpoints have the same cap, so the
     * peak over both is at most twice it.) */
    pthread_mutex_lock(&W.rcv.mu);
    int hanging = W.rcv.in_flight;
    int max_in_flight = W.rcv.max_in_flight;
    pthread_mutex_unlock(&W.rcv.mu);
    assert_true(hanging >= 1 && hanging <= 8);
    assert_true(max_in_flight <= 8 + 8);
    /* The hanging endpoint's backlog was deferred, not dropped. */
    struct redis_arg ra = {&W, "ZCARD hookq:retry", 1};
    wenv_wait(&W, redis_int_at_least, &ra, 5000, "deferrals");
    hq_test_receiver_stop(&W.rcv); /* releases the hung requests */
    hq_test_receiver_start(&W.rcv);
    assert_int_equal(hq_test_kill_wait(a, SIGTERM, 30000), 0);
    assert_int_equal(wenv_pending(&W), 0);
    hq_endpoint_free(&hang);
    hq_endpoint_free(&good);
}

static void test_redis_restart_under_load_loses_nothing(void **state)
{
    (void)state;
    hq_test_redis_destroy(&W.redis);
    redisFree(W.c);
    hq_test_redis_start(&W.redis, "--appendonly yes --appendfsync always");
    W.c = hq_test_redis_connect(&W.redis);
    struct hq_endpoint ep;
    wenv_endpoint_at(&W, "/delay/5", NULL, 0, &ep);
    const int n = 400;
    for (int i = 0; i < n; i++)
        wenv_produce(&W, "restart.test", "{}", NULL, NULL, NULL, 0);
    const char *extra[] = {"--claim-idle", "21s", "--timeout", "5s", NULL};
    pid_t a = wenv_worker(&W, extra, NULL);
    struct count_arg ca = {&W.rcv, NULL, 100};
    wenv_wait(&W, received_at_least, &ca, 20000, "deliveries before the restart");
    redisFree(W.c);
    hq_test_redis_stop(&W.redis, 1);
    hq_test_redis_restart(&W.redis);
    W.c = hq_test_redis_connect(&W.redis);
    struct distinct_arg da = {&W.rcv, NULL, (size_t)n};
    wenv_wait(&W, distinct_at_least, &da, 60000, "every event after the restart");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 40000, "nothing pending");
    assert_int_equal(hq_test_kill_wait(a, SIGTERM, 20000), 0);
    hq_endpoint_free(&ep);
}

static void test_redis_restarted_empty_recreates_group_and_says_so(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    wenv_endpoint(&W, W.rcv.url, NULL, NULL, 0, &ep);
    pid_t a = wenv_worker(&W, NULL, NULL);
    wenv_produce(&W, "e.one", "{}", NULL, NULL, NULL, 0);
    struct count_arg ca = {&W.rcv, NULL, 1};
    wenv_wait(&W, received_at_least, &ca, 10000, "the first delivery");
    /* Restart with no data: the group and the endpoint are gone. */
    redisFree(W.c);
    hq_test_redis_stop(&W.redis, 1);
    hq_test_redis_restart(&W.redis);
    W.c = hq_test_redis_connect(&W.redis);
    hq_endpoint_free(&ep);
    wenv_endpoint(&W, W.rcv.url, NULL, NULL, 0, &ep);
    wenv_produce(&W, "e.two", "{}", NULL, NULL, NULL, 0);
    ca.want = 2;
    wenv_wait(&W, received_at_least, &ca, 20000, "a delivery after the empty restart");
    assert_true(wenv_log_has(&W, "was gone") || wenv_log_has(&W, "is gone"));
    assert_int_equal(hq_test_kill_wait(a, SIGTERM, 20000), 0);
    hq_endpoint_free(&ep);
}

struct fd_arg {
    pid_t pid;
    int max;
};

static int fds_at_most(void *arg)
{
    struct fd_arg *a = arg;
    int n = hq_test_proc_fds(a->pid);
    return n >= 0 && n <= a->max;
}

static void test_idle_worker_closes_keepalive_connections_after_a_burst(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    wenv_endpoint_at(&W, "/delay/300", NULL, 0, &ep);
    const char *extra[] = {"--idle-close", "1s", "--endpoint-concurrency", "64", NULL};
    pid_t a = wenv_worker(&W, extra, NULL);
    wenv_produce(&W, "idle.warmup", "{}", NULL, NULL, NULL, 0);
    struct count_arg ca = {&W.rcv, NULL, 1};
    wenv_wait(&W, received_at_least, &ca, 10000, "the warm-up delivery");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the warm-up ack");
    int base = hq_test_proc_fds(a);
    assert_true(base > 0);
    for (int i = 0; i < 64; i++)
        wenv_produce(&W, "idle.burst", "{}", NULL, NULL, NULL, 0);
    ca.want = 65;
    wenv_wait(&W, received_at_least, &ca, 20000, "the burst");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the burst's acks");
    int peak = hq_test_proc_fds(a);
    struct fd_arg fa = {a, base + 2};
    wenv_wait(&W, fds_at_most, &fa, 10000, "the idle worker's fds back to baseline");
    print_message("fds: %d at start, %d after the burst, %d after idle-close\n", base, peak,
                  hq_test_proc_fds(a));
    assert_true(peak > base + 10); /* the burst really opened connections */
    /* Delivery goes on after the connections were recycled. */
    wenv_produce(&W, "idle.after", "{}", NULL, NULL, NULL, 0);
    ca.want = 66;
    wenv_wait(&W, received_at_least, &ca, 10000, "a delivery after the recycle");
    assert_int_equal(hq_test_kill_wait(a, SIGTERM, 20000), 0);
    hq_endpoint_free(&ep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        WENV_TEST(test_kill9_in_flight_then_another_worker_reclaims_everything, &W),
        WENV_TEST(test_paused_worker_that_lost_its_entry_records_nothing, &W),
        WENV_TEST(test_sigterm_drains_in_flight_and_exits_0, &W),
        WENV_TEST(test_hanging_endpoint_is_held_to_its_cap_while_healthy_flows, &W),
        WENV_TEST(test_redis_restart_under_load_loses_nothing, &W),
        WENV_TEST(test_idle_worker_closes_keepalive_connections_after_a_burst, &W),
        WENV_TEST(test_redis_restarted_empty_recreates_group_and_says_so, &W),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
