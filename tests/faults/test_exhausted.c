/* hookq.delivery.exhausted with real worker and scheduler processes: an
 * endpoint that always fails (500), events with max attempts 2, two workers;
 * an operator endpoint subscribed to hookq.* receives the exhausted events,
 * signed, whose counts add up to the dead letters, fewer events than dead
 * letters, never two within --exhausted-interval; counts held back by the
 * interval go out once it is over though no dead letter follows (the poke);
 * dead letters of the retry window are counted apart (retry_window_exceeded);
 * --exhausted-interval 0 emits none; a bad value exits 2 with one line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>

#include "tests/harness/fault_env.h"

static struct rf R;

static const char *const ENV[] = {"HOOKQ_ALLOW_PRIVATE=1",   "HOOKQ_BACKOFF_BASE=100ms",
                                  "HOOKQ_BACKOFF_MAX=200ms", "HOOKQ_BREAKER_FAILURES=1000000",
                                  "HOOKQ_BREAKER_RATIO=0",   NULL};

#define INTERVAL_MS 2000
#define EXH_MAX     64

/* The hookq.delivery.exhausted events the operator endpoint received about
 * ep_id (distinct webhook-ids), each checked signed with op's key. */
struct exh {
    int n;
    long count[EXH_MAX], exhausted[EXH_MAX], window[EXH_MAX];
    int64_t at[EXH_MAX];
    char first[EXH_MAX][64], last[EXH_MAX][64];
    int sampled[EXH_MAX]; /* "sample_event_ids":[ present */
};

static long num_after(const char *body, const char *field)
{
    const char *p = strstr(body, field);
    return p ? atol(p + strlen(field)) : -1;
}

static void str_after(const char *body, const char *field, char *out, size_t n)
{
    out[0] = '\0';
    const char *p = strstr(body, field);
    if (!p)
        return;
    p += strlen(field);
    size_t k = 0;
    while (p[k] && p[k] != '"' && k + 1 < n) {
        out[k] = p[k];
        k++;
    }
    out[k] = '\0';
}

static void exh_collect(const struct hq_endpoint *op, const char *ep_id, struct exh *x)
{
    struct hq_sign_key k;
    struct hq_err err = {0};
    assert_int_equal(hq_sign_key_decode(op->key1, &k, &err), 0);
    char ids[EXH_MAX][160];
    memset(x, 0, sizeof(*x));
    pthread_mutex_lock(&R.w.rcv.mu);
    for (size_t i = 0; i < R.w.rcv.nreqs && x->n < EXH_MAX; i++) {
        const struct hq_test_request *q = &R.w.rcv.reqs[i];
        if (strcmp(q->path, "/ops") != 0 || !strstr(q->body, "\"hookq.delivery.exhausted\"") ||
            !strstr(q->body, ep_id))
            continue;
        char id[160];
        wenv_assert_signed(q, &k, id, sizeof(id));
        int seen = 0;
        for (int j = 0; j < x->n; j++)
            seen |= strcmp(ids[j], id) == 0;
        if (seen)
            continue;
        snprintf(ids[x->n], sizeof(ids[0]), "%s", id);
        x->count[x->n] = num_after(q->body, "\"count\":");
        x->exhausted[x->n] = num_after(q->body, "\"exhausted\":");
        x->window[x->n] = num_after(q->body, "\"retry_window_exceeded\":");
        x->at[x->n] = num_after(q->body, "\"at_ms\":");
        str_after(q->body, "\"first_event_id\":\"", x->first[x->n], sizeof(x->first[0]));
        str_after(q->body, "\"last_event_id\":\"", x->last[x->n], sizeof(x->last[0]));
        x->sampled[x->n] = strstr(q->body, "\"sample_event_ids\":[\"") != NULL;
        x->n++;
    }
    pthread_mutex_unlock(&R.w.rcv.mu);
    hq_sign_key_wipe(&k);
}

static long exh_total(const struct exh *x)
{
    long t = 0;
    for (int i = 0; i < x->n; i++)
        t += x->count[i];
    return t;
}

struct want {
    const struct hq_endpoint *op;
    const char *ep_id;
    long total; /* exhausted events' counts add up to this */
};

static int counted(void *arg)
{
    struct want *a = arg;
    struct exh x;
    exh_collect(a->op, a->ep_id, &x);
    return exh_total(&x) >= a->total;
}

static void produce_batch(const char *tag, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "ex_%s_%d", tag, i);
        wenv_produce(&R.w, "ex.test", "{}", id, NULL, NULL, 0);
    }
}

static void test_a_storm_of_dead_letters_yields_a_few_batched_signed_events(void **state)
{
    (void)state;
    struct hq_endpoint f, op;
    wenv_endpoint_at(&R.w, "/s/500", "ex.*", 2, &f);
    wenv_endpoint_at(&R.w, "/ops", "hookq.*", 0, &op);
    const char *sargs[] = {"--interval", "100ms", NULL};
    pid_t sc = wenv_scheduler(&R.w, sargs);
    const char *extra[] = {"--exhausted-interval", "2s", NULL};
    pid_t a = wenv_worker(&R.w, extra, ENV);
    pid_t b = wenv_worker(&R.w, extra, ENV);
    /* A first storm: at least one event reports it. */
    produce_batch("a", 0, 150);
    struct want w1 = {&op, f.id, 1};
    wenv_wait(&R.w, counted, &w1, 20000, "a first hookq.delivery.exhausted");
    struct exh x;
    exh_collect(&op, f.id, &x);
    assert_true(x.n >= 1);
    assert_true(x.first[0][0] != '\0' && strncmp(x.first[0], "ex_a_", 5) == 0);
    assert_true(x.sampled[0]);
    /* A second storm right after the first event: held back by the interval,
     * it still goes out once the interval is over, with no dead letter after. */
    produce_batch("b", 0, 150);
    struct want w2 = {&op, f.id, 300};
    if (!hq_test_wait(counted, &w2, 30000)) {
        exh_collect(&op, f.id, &x);
        wenv_dump_log(&R.w);
        fail_msg("exhausted events count %ld of 300 dead letters (%d events)", exh_total(&x), x.n);
    }
    assert_int_equal(wenv_dead_count(&R.w, f.id, "exhausted"), 300);
    rf_pause_ms(INTERVAL_MS + 1000); /* nothing more comes: the counts are exact */
    exh_collect(&op, f.id, &x);
    print_message("[exhausted] 300 dead letters, 2 workers: %d events, counts", x.n);
    for (int i = 0; i < x.n; i++)
        print_message(" %ld", x.count[i]);
    print_message("\n");
    assert_int_equal(exh_total(&x), 300);
    assert_true(x.n >= 2 && x.n <= 6);
    for (int i = 0; i < x.n; i++) {
        assert_int_equal(x.exhausted[i], x.count[i]);
        assert_true(x.sampled[i]);
        assert_true(x.last[i][0] != '\0');
    }
    /* Never two within the interval (Redis' clock: at_ms). */
    for (int i = 0; i < x.n; i++)
        for (int j = 0; j < x.n; j++)
            if (i != j && x.at[j] > x.at[i] && x.at[j] - x.at[i] < INTERVAL_MS)
                fail_msg("two exhausted events %lld ms apart", (long long)(x.at[j] - x.at[i]));
    hq_endpoint_free(&f);
    hq_endpoint_free(&op);
    assert_int_equal(hq_test_kill_wait(a, SIGTERM, 20000), 0);
    assert_int_equal(hq_test_kill_wait(b, SIGTERM, 20000), 0);
    assert_int_equal(hq_test_kill_wait(sc, SIGTERM, 20000), 0);
}

static void test_retry_window_dead_letters_are_counted_apart(void **state)
{
    (void)state;
    struct hq_endpoint f, op;
    wenv_endpoint_at(&R.w, "/s/500", "ex.*", 10, &f);
    wenv_endpoint_at(&R.w, "/ops", "hookq.*", 0, &op);
    /* Every retry would be due >= 80 ms after the first attempt: past 50 ms. */
    char out[4096], err[1024];
    assert_int_equal(wenv_cli(&R.w, out, sizeof(out), err, sizeof(err), "endpoint", "update", f.id,
                              "--retry-window", "50ms", NULL),
                     0);
    const char *extra[] = {"--exhausted-interval", "1s", NULL};
    pid_t a = wenv_worker(&R.w, extra, ENV);
    produce_batch("w", 0, 20);
    struct want w1 = {&op, f.id, 20};
    wenv_wait(&R.w, counted, &w1, 20000, "exhausted events counting 20 dead letters");
    assert_int_equal(wenv_dead_count(&R.w, f.id, "retry_window_exceeded"), 20);
    struct exh x;
    exh_collect(&op, f.id, &x);
    long window = 0, exhausted = 0;
    for (int i = 0; i < x.n; i++) {
        window += x.window[i];
        exhausted += x.exhausted[i];
    }
    assert_int_equal(window, 20);
    assert_int_equal(exhausted, 0);
    assert_int_equal(hq_test_kill_wait(a, SIGTERM, 20000), 0);
    hq_endpoint_free(&f);
    hq_endpoint_free(&op);
}

static void test_interval_0_emits_none_and_bad_values_exit_2(void **state)
{
    (void)state;
    struct hq_endpoint f, op;
    wenv_endpoint_at(&R.w, "/s/500", "ex.*", 1, &f);
    wenv_endpoint_at(&R.w, "/ops", "hookq.*", 0, &op);
    const char *extra[] = {"--exhausted-interval", "0", NULL};
    pid_t a = wenv_worker(&R.w, extra, ENV);
    produce_batch("z", 0, 20);
    for (int i = 0; i < 200 && wenv_dead_count(&R.w, f.id, "exhausted") < 20; i++)
        rf_pause_ms(50);
    assert_int_equal(wenv_dead_count(&R.w, f.id, "exhausted"), 20);
    rf_pause_ms(1000); /* a tick or four: nothing may come */
    struct exh x;
    exh_collect(&op, f.id, &x);
    assert_int_equal(x.n, 0);
    assert_int_equal(hq_test_kill_wait(a, SIGTERM, 20000), 0);
    static const char *const bad[] = {"-1s", "x", "2d"};
    long long before = hq_test_cmd_int(R.w.c, "DBSIZE");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *args[] = {"worker",      "--exhausted-interval", bad[i],
                              "--redis-url", wenv_url(&R.w),         NULL};
        char out[4096], err[4096];
        int rc = hq_test_cli(args, NULL, NULL, out, sizeof(out), err, sizeof(err));
        if (rc != 2 || !strstr(err, "exhausted-interval") ||
            strchr(err, '\n') != err + strlen(err) - 1)
            fail_msg("--exhausted-interval %s: exit %d, stderr '%s'", bad[i], rc, err);
    }
    assert_int_equal(hq_test_cmd_int(R.w.c, "DBSIZE"), before);
    hq_endpoint_free(&f);
    hq_endpoint_free(&op);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RF_TEST(test_a_storm_of_dead_letters_yields_a_few_batched_signed_events, &R),
        RF_TEST(test_retry_window_dead_letters_are_counted_apart, &R),
        RF_TEST(test_interval_0_emits_none_and_bad_values_exit_2, &R),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
