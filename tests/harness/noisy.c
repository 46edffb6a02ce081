/* The noisy-neighbour scenario: see noisy.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/noisy.h"

#include "common/ratelimit.h"

#define NN_RATE_US       2000 /* tenant B: 500 events a second */
#define NN_WARMUP        200  /* B's events before measuring (connections, caches) */
#define NN_QUIET         3000 /* measured with A absent: 6 s */
#define NN_LIMIT         20   /* A's limited endpoint, per second */
#define NN_A_PRODUCE_SEC 5    /* A's backlog is produced within this many seconds of the run */
#define NN_RATIO_MAX     3.0
#define NN_REDEFER_MAX   0.5 /* deferrals per delivery of A's limited endpoint, its backlog made */
/* The quiet p99 the ratio is taken against is at least this (as in the
 * retry storm, tests/harness/retry_storm.c): loopback deliveries on the shared
 * 2-core machine have a quiet p99 of 0.3-3 ms from run to run. */
#define NN_QUIET_FLOOR_US 2000
/* Under ASan the workers saturate the two cores: B waits for the CPU, not
 * for A (see retry_storm.c). The ratio is printed there, not judged. */
#if defined(__SANITIZE_ADDRESS__)
#define NN_RATIO_JUDGED 0
#else
#define NN_RATIO_JUDGED 1
#endif

/* B's events with A's backlog are PH_LOADED + the 5-s part of the run they
 * were produced in (up to PH_LAST), so the p99 can be told part by part. */
enum { PH_NONE = 0, PH_QUIET, PH_LOADED, PH_LAST = 100 };
#define NN_PART_MS 5000

struct nn {
    struct rf *r;
    int b, a_lim, a_hang; /* checker indexes */
    int64_t *ack;         /* [event number] = unix us its XADD was sent */
    char *phase;          /* [event number] = PH_* (B's events only) */
    long cap;
    int64_t next_us; /* pacing of B */
};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

long long hq_lat_p99(struct hq_test_receiver *rcv, const char *path, const int64_t *ack,
                     const char *phase, long cap, char ph, char ph_hi, size_t *count,
                     const char *label)
{
    pthread_mutex_lock(&rcv->mu);
    long long *lat = calloc(rcv->nreqs + 1, sizeof(*lat));
    assert_non_null(lat);
    size_t k = 0;
    for (size_t i = 0; i < rcv->nreqs; i++) {
        const struct hq_test_request *q = &rcv->reqs[i];
        char id[64];
        long n;
        if (strcmp(q->path, path) != 0 || q->status < 200 || q->status >= 300 ||
            hq_test_request_header(q, "webhook-id", id, sizeof(id)) != 0 ||
            sscanf(id, "evck_%ld", &n) != 1 || n < 0 || n >= cap || phase[n] < ph ||
            phase[n] > ph_hi)
            continue;
        lat[k++] = q->at_us - ack[n];
    }
    pthread_mutex_unlock(&rcv->mu);
    qsort(lat, k, sizeof(*lat), cmp_ll);
    long long p = k ? lat[(k * 99 + 99) / 100 - 1] : -1;
    if (k && label)
        print_message("%s: p50 %.2f p90 %.2f p99 %.2f max %.2f ms\n", label,
                      lat[(k * 50 + 99) / 100 - 1] / 1000.0, lat[(k * 90 + 99) / 100 - 1] / 1000.0,
                      p / 1000.0, lat[k - 1] / 1000.0);
    *count = k;
    free(lat);
    return p;
}

void hq_paced_produce(struct rf *r, int64_t *next_us, int period_us, int64_t *ack, char *phase,
                      long cap, char ph, const char *type, const char *payload, int idx)
{
    int64_t wait = *next_us - mono_us();
    if (wait > 0)
        rf_pause_ms((int)((wait + 999) / 1000)); /* pacing, not an assertion */
    *next_us += period_us;
    long n = r->ck.seq;
    assert_true(n < cap);
    ack[n] = hq_test_now_us(); /* enqueue: when the XADD is sent */
    hq_ck_produce_to(&r->ck, r->w.c, type, payload, idx);
    phase[n] = ph;
}

void hq_rate_windows(const int64_t *at, size_t n, int64_t t0, int secs, int *lo, int *hi)
{
    *lo = 1 << 30;
    *hi = 0;
    for (int64_t w0 = t0; w0 + 10000 <= t0 + (int64_t)secs * 1000; w0 += 100) {
        int c = 0;
        for (size_t i = 0; i < n; i++)
            c += at[i] >= w0 && at[i] < w0 + 10000;
        *lo = c < *lo ? c : *lo;
        *hi = c > *hi ? c : *hi;
    }
}

/* One event of tenant B, at B's pace. */
static void b_one(struct nn *s, char phase)
{
    hq_paced_produce(s->r, &s->next_us, NN_RATE_US, s->ack, s->phase, s->cap, phase, "b.test",
                     "{\"b\":1}", s->b);
}

/* An endpoint of tenant on rcv at path, with a rate limit (or NULL). */
static int nn_endpoint(struct rf *r, struct hq_test_receiver *rcv, const char *path,
                       const char *tenant, const char *rate, int max_attempts)
{
    assert_true(r->neps < RF_EPS_MAX);
    char url[256];
    snprintf(url, sizeof(url), "%s%s", rcv->url, path);
    struct hq_endpoint *e = &r->eps[r->neps];
    wenv_endpoint_fill(url, NULL, NULL, max_attempts, e);
    snprintf(e->tenant, sizeof(e->tenant), "%s", tenant);
    struct hq_err err = {0};
    if (rate)
        assert_int_equal(hq_rate_parse(rate, &e->rate, &err), 0);
    wenv_endpoint_create(&r->w, e);
    int idx = hq_ck_endpoint(&r->ck, e, rcv);
    r->neps++;
    return idx;
}

/* Receipt times (unix ms) and event numbers of the requests to path on rcv. */
static size_t receipts(struct hq_test_receiver *rcv, const char *path, int64_t *at, long *num,
                       size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&rcv->mu);
    for (size_t i = 0; i < rcv->nreqs && n < max; i++) {
        const struct hq_test_request *q = &rcv->reqs[i];
        char id[64];
        if (strcmp(q->path, path) != 0)
            continue;
        at[n] = q->at_ms;
        if (num && (hq_test_request_header(q, "webhook-id", id, sizeof(id)) != 0 ||
                    sscanf(id, "evck_%ld", &num[n]) != 1))
            num[n] = -1;
        n++;
    }
    pthread_mutex_unlock(&rcv->mu);
    return n;
}

/* Sum over the workers' /metrics of the sample line starting with name. */
static long metric_sum(char (*addr)[64], int n, const char *name)
{
    long sum = 0;
    for (int i = 0; i < n; i++) {
        char url[128];
        snprintf(url, sizeof(url), "http://%.63s/metrics", addr[i]);
        struct hq_buf body;
        hq_buf_init(&body, 1 << 20);
        char line[160];
        snprintf(line, sizeof(line), "\n%s", name); /* the sample, not its # HELP */
        if (wenv_http_get(url, &body) == 200) {
            const char *p = strstr(body.p, line);
            sum += p ? atol(p + strlen(line)) : 0;
        }
        hq_buf_free(&body);
    }
    return sum;
}

/* Makes every deferred delivery of one endpoint due now (what waiting out its
 * spread would do, minutes sooner). */
static const char redue_lua[] =
    "local n = 0\n"
    "for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')) do\n"
    "  if string.sub(m, 1, #ARGV[2]) == ARGV[2] then\n"
    "    redis.call('ZADD', KEYS[1], ARGV[1], m)\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "return n\n";

struct redue_arg {
    struct nn *s;
    const char *prefix; /* "<endpoint id>/" */
    size_t want;        /* the endpoint's deliveries, all received */
};

static int redue_until_received(void *arg)
{
    struct redue_arg *a = arg;
    struct rf *r = a->s->r;
    for (unsigned i = 0; i < hq_tl_nparts(&r->w.tl); i++) {
        char key[HQ_KEY_MAX];
        assert_true(hq_key_retry(hq_tl_base(&r->w.tl, "hookq", i), key, sizeof(key)) >= 0);
        freeReplyObject(hq_test_cmd(wenv_node(&r->w, i), "EVAL %s 1 %s %lld %s", redue_lua, key,
                                    (long long)hq_test_now_ms(), a->prefix));
    }
    return hq_test_receiver_count_path(&r->w.rcv, "/a/limited") >= a->want;
}

void hq_noisy_neighbour(struct rf *r, long nlimited, long nhang, int secs, int settle_ms,
                        double congested_max)
{
    struct nn s = {.r = r};
    /* B alone on the main receiver; A's hanging endpoint on the second, which
     * answers 500 (after 2 s, when the workers gave up at 1 s). */
    rf_start_rcv2(r, 0);
    r->rcv2.default_status = 500;
    s.b = nn_endpoint(r, &r->w.rcv, "/b", "tenant_b", NULL, 0);
    s.a_lim = nn_endpoint(r, &r->w.rcv, "/a/limited", "tenant_a", "20/s", 0);
    s.a_hang = nn_endpoint(r, &r->rcv2, "/delay/2000/a/hang", "tenant_a", NULL, 1);
    hq_ck_expect_dead_endpoint(&r->ck, s.a_hang);
    const long loaded_max = (long)(secs + 30) * (1000000 / NN_RATE_US);
    s.cap = r->ck.seq + NN_WARMUP + NN_QUIET + nlimited + nhang + loaded_max + 16;
    s.ack = calloc((size_t)s.cap, sizeof(*s.ack));
    s.phase = calloc((size_t)s.cap, 1);
    assert_non_null(s.ack);
    assert_non_null(s.phase);

    char addr[3][64];
    pid_t workers[3];
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "nn%d", i);
        snprintf(addr[i], sizeof(addr[i]), "127.0.0.1:%d", hq_test_free_port());
        const char *extra[] = {"--timeout", "1s", "--metrics", addr[i], NULL};
        workers[i] = rf_worker(r, name, extra);
    }
    pid_t sc = rf_scheduler(r);

    s.next_us = mono_us();
    for (int i = 0; i < NN_WARMUP; i++)
        b_one(&s, PH_NONE);
    for (int i = 0; i < NN_QUIET; i++)
        b_one(&s, PH_QUIET);

    /* A's backlog arrives within the first NN_A_PRODUCE_SEC seconds, between
     * B's events, which keep their pace for the judged run. */
    const long per_tick = (nlimited + nhang) / (NN_A_PRODUCE_SEC * (1000000 / NN_RATE_US)) + 1;
    long made_lim = 0, made_hang = 0, loaded = 0;
    int64_t t_load = hq_test_now_ms(), t_made = 0, t0 = 0, t_mid = 0;
    long deferred_mid = 0;
    static int64_t at[200000];
    static long num[200000];
    for (;;) {
        int64_t part = (hq_test_now_ms() - t_load) / NN_PART_MS;
        b_one(&s, (char)(PH_LOADED + (part < PH_LAST - PH_LOADED ? part : PH_LAST - PH_LOADED)));
        loaded++;
        for (long k = 0; k < per_tick && (made_lim < nlimited || made_hang < nhang); k++) {
            /* Interleaved in proportion: hang events spread through the limited ones. */
            if (made_hang < nhang && made_hang * nlimited <= made_lim * nhang) {
                hq_ck_produce_to(&r->ck, r->w.c, "a.test", "{\"a\":1}", s.a_hang);
                made_hang++;
            } else {
                hq_ck_produce_to(&r->ck, r->w.c, "a.test", "{\"a\":1}", s.a_lim);
                made_lim++;
            }
        }
        if (!t_made && made_lim == nlimited && made_hang == nhang)
            t_made = hq_test_now_ms();
        if (loaded % 50)
            continue;
        if (!t0 && receipts(&r->w.rcv, "/a/limited", at, NULL, 1) == 1)
            t0 = at[0];
        if (t0 && !t_mid && hq_test_now_ms() >= t0 + (int64_t)secs * 1000 / 3) {
            /* A's backlog made and deferred: what is deferred from now on
             * came back from the retry set too early. */
            t_mid = hq_test_now_ms();
            deferred_mid = metric_sum(addr, 3, "hookq_rate_limit_deferred_total ");
        }
        if (t0 && hq_test_now_ms() >= t0 + (int64_t)secs * 1000 + 500)
            break;
        if (loaded >= loaded_max)
            fail_msg("A's limited endpoint received nothing within %d s of its backlog", secs + 30);
    }
    print_message("[noisy] A: %ld limited + %ld hanging events produced in %lld ms; B: %ld "
                  "events during the run of %d s\n",
                  made_lim, made_hang, (long long)(t_made - t_load), loaded, secs);
    long deferred_rl = metric_sum(addr, 3, "hookq_rate_limit_deferred_total ");
    long deferred_all = metric_sum(addr, 3, "hookq_deliveries_total{outcome=\"deferred\"} ");

    /* A's limit over every sliding 10-s window (100-ms steps) of [t0, t0 + secs). */
    size_t n = receipts(&r->w.rcv, "/a/limited", at, num, sizeof(at) / sizeof(*at));
    int lo, hi;
    size_t in_run = 0;
    hq_rate_windows(at, n, t0, secs, &lo, &hi);
    size_t after_mid = 0;
    for (size_t i = 0; i < n && at[i] < t0 + (int64_t)secs * 1000; i++) {
        in_run++;
        after_mid += at[i] >= t_mid;
    }
    double again = after_mid ? (double)(deferred_rl - deferred_mid) / (double)after_mid : 0.0;
    print_message("[noisy] A limited (20/s, 3 workers): %zu received in %d s; sliding 10-s "
                  "windows %d..%d (limit 200, +-10 %% = 180..220); deferred over the limit %ld "
                  "times, %ld in the last %d s, %.2f per delivery of theirs (%zu); all "
                  "deferrals %ld\n",
                  in_run, secs, lo, hi, deferred_rl, deferred_rl - deferred_mid, secs - secs / 3,
                  again, after_mid, deferred_all);
    size_t hang_attempts = hq_test_receiver_count_path(&r->rcv2, "/delay/2000/a/hang");
    long congested = deferred_all - deferred_rl;
    double per_attempt = hang_attempts ? (double)congested / (double)hang_attempts : 0.0;
    print_message("[noisy] A hanging: %zu attempts in the run, %ld deferrals while congested "
                  "(%.2f per attempt)\n",
                  hang_attempts, congested,
                  hang_attempts ? (double)congested / (double)hang_attempts : 0.0);
    /* Nothing of A's spent an attempt while throttled: each delivery it
     * received in the run was its event's first and only attempt. */
    for (size_t i = 0; i < in_run; i++) {
        assert_true(num[i] >= 0);
        long long k = rf_attempt_records(r, num[i]);
        if (k != 1)
            fail_msg("event evck_%ld of A's limited endpoint has %lld attempt records", num[i], k);
    }

    /* Nothing lost: the limit lifted and A's deferred backlog made due, every
     * event settles (the hanging endpoint's in dead letters). */
    char out[4096], err[4096];
    assert_int_equal(wenv_cli(&r->w, out, sizeof(out), err, sizeof(err), "endpoint", "update",
                              r->eps[s.a_lim].id, "--rate-limit", "", NULL),
                     0);
    char prefix[HQ_ENDPOINT_ID_MAX + 2];
    snprintf(prefix, sizeof(prefix), "%s/", r->eps[s.a_lim].id);
    struct redue_arg ra = {&s, prefix, (size_t)nlimited};
    wenv_wait(&r->w, redue_until_received, &ra, settle_ms, "A's limited endpoint drained");
    struct hq_ck_report rep;
    rf_settle_and_check(r, settle_ms, "noisy neighbour", &rep);
    print_message("[noisy] settled: %zu pairs, %zu dead (A's hanging endpoint: %ld), most "
                  "requests for one pair %d\n",
                  rep.pairs, rep.dead, nhang, rep.max_attempts);
    assert_int_equal(rep.dead, (size_t)nhang);
    assert_int_equal(rep.max_attempts, 1); /* no delivery of anyone's was attempted twice */

    size_t nq, nl;
    long long q99 = hq_lat_p99(&r->w.rcv, "/b", s.ack, s.phase, s.cap, PH_QUIET, PH_QUIET, &nq,
                               "[noisy] B, A absent");
    long long l99 = hq_lat_p99(&r->w.rcv, "/b", s.ack, s.phase, s.cap, PH_LOADED, PH_LAST, &nl,
                               "[noisy] B, A's backlog");
    char parts[1024] = "";
    for (int k = PH_LOADED; k <= PH_LAST && strlen(parts) < sizeof(parts) - 16; k++) {
        size_t c;
        long long p =
            hq_lat_p99(&r->w.rcv, "/b", s.ack, s.phase, s.cap, (char)k, (char)k, &c, NULL);
        if (c)
            snprintf(parts + strlen(parts), sizeof(parts) - strlen(parts), " %.1f", p / 1000.0);
    }
    print_message("[noisy] B's p99 (ms) in each 5 s of the run (A's backlog made in the first "
                  "%lld ms):%s\n",
                  (long long)(t_made - t_load), parts);
    long long base = q99 > NN_QUIET_FLOOR_US ? q99 : NN_QUIET_FLOOR_US;
    double raw = (double)l99 / (double)(q99 > 0 ? q99 : 1), ratio = (double)l99 / (double)base;
    print_message("[noisy] B's p99: A absent %.2f ms (%zu events), with A %.2f ms (%zu events): "
                  "ratio %.2f, %.2f against the quiet p99 floored at %.1f ms (max %.1f)\n",
                  q99 / 1000.0, nq, l99 / 1000.0, nl, raw, ratio, NN_QUIET_FLOOR_US / 1000.0,
                  NN_RATIO_MAX);
    assert_int_equal(nq, NN_QUIET);
    assert_int_equal(nl, (size_t)loaded);
    if (hi > NN_LIMIT * 10 * 11 / 10 || lo < NN_LIMIT * 10 * 9 / 10)
        fail_msg("A's limited endpoint received %d..%d per 10 s, not 180..220", lo, hi);
    /* Deferrals spaced for all the workers: what came back was delivered,
     * not deferred again (each worker spacing by T alone: ~2 per delivery). */
    if (again > NN_REDEFER_MAX)
        fail_msg("A's limited endpoint: %.2f deferrals per delivery after its backlog was "
                 "deferred (at most %.2f)",
                 again, NN_REDEFER_MAX);
    /* A congested endpoint's deferrals spaced by its pace, and free slots
     * used while congested: each comes back about once. */
    if (per_attempt > congested_max)
        fail_msg("A's hanging endpoint: %.2f deferrals per attempt (at most %.2f)", per_attempt,
                 congested_max);
    if (ratio > NN_RATIO_MAX && NN_RATIO_JUDGED)
        fail_msg("B's p99 with A's backlog (%lld us) is %.2f x its p99 without (%lld us, "
                 "floored at %d us)",
                 l99, ratio, q99, NN_QUIET_FLOOR_US);
    for (int i = 0; i < 3; i++)
        assert_int_equal(hq_test_kill_wait(workers[i], SIGTERM, 30000), 0);
    assert_int_equal(hq_test_kill_wait(sc, SIGTERM, 30000), 0);
    free(s.ack);
    free(s.phase);
}
