/* The retry-storm scenario: see retry_storm.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/retry_storm.h"
#include "tests/harness/noisy.h"

#include "common/limits.h"

#define STORM_RATE_US     2000 /* 500 fresh events a second */
#define STORM_WARMUP      200  /* fresh events before measuring (connections, caches) */
#define STORM_QUIET       3000 /* measured quiet: 6 s */
#define STORM_MIN_EVENTS  1500 /* measured during the storm: at least 3 s */
#define STORM_MAX_EVENTS  150000
#define STORM_SCHED_BATCH 1000 /* the scheduler's default --batch */
#define STORM_RATIO_MAX   3.0
/* The quiet p99 the ratio is taken against is at least this: on the shared
 * 2-core test machine the quiet p99 of these loopback deliveries is 0.3-3 ms
 * from run to run (other builds and tests share the cores). Measured with the
 * lane: storm p99 1.0-1.5 ms; without the retries' hold cap 25-36 ms; with
 * retries on the events stream, the drain time (seconds). */
#define STORM_QUIET_FLOOR_US 2000
/* The ratio is a claim about scheduling (retries cannot take fresh events'
 * reads), measured in a worker that has CPU to spare. Under ASan the worker
 * runs 2-5x slower and saturates this 2-core machine, so fresh events wait for
 * the CPU, not for the retries (p99 ~270 ms against ~3 ms quiet, seen in CI):
 * there the ratio is printed, not judged; every other check holds. Release,
 * RelWithDebInfo and clang builds judge it. */
#if defined(__SANITIZE_ADDRESS__)
#define STORM_RATIO_JUDGED 0
#else
#define STORM_RATIO_JUDGED 1
#endif

enum { PH_NONE = 0, PH_QUIET, PH_STORM };

struct storm {
    struct rf *r;
    int fresh;       /* checker index of the fresh endpoint */
    int64_t *ack;    /* [event number] = unix us its XADD was sent */
    char *phase;     /* [event number] = PH_* */
    long cap;        /* size of both */
    int64_t next_us; /* pacing: when the next fresh event is due */
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Produces one fresh event at the pace of STORM_RATE_US, addressed to the fresh endpoint. */
static void fresh_one(struct storm *s, char phase)
{
    hq_paced_produce(s->r, &s->next_us, STORM_RATE_US, s->ack, s->phase, s->cap, phase,
                     "fresh.test", "{\"f\":1}", s->fresh);
}

/* p99 of enqueue -> receipt (us) of the fresh events of phase ph. */
static long long p99_of(struct storm *s, char ph, size_t *count, const char *label)
{
    char l[64];
    snprintf(l, sizeof(l), "[retry storm] %s", label);
    return hq_lat_p99(&s->r->w.rcv, "/fresh", s->ack, s->phase, s->cap, ph, ph, count, l);
}

void hq_retry_storm(struct rf *r, long nretries, int drain_timeout_ms)
{
    struct storm s = {.r = r};
    s.fresh = rf_endpoint(r, "/fresh");
    /* The retries' endpoint is another server (its own receiver) answering
     * in 50 ms, as an endpoint that was down and came back would be: its
     * retries hold the worker's slots for a while, which is what starved fresh
     * events before retries were capped to their share of --concurrency. */
    rf_start_rcv2(r, 0);
    int storm_ep = rf_endpoint_on(r, &r->rcv2, "/delay/50/storm", 0);
    s.cap = r->ck.seq + nretries + STORM_WARMUP + STORM_QUIET + STORM_MAX_EVENTS + 16;
    s.ack = calloc((size_t)s.cap, sizeof(*s.ack));
    s.phase = calloc((size_t)s.cap, 1);
    assert_non_null(s.ack);
    assert_non_null(s.phase);

    /* 64: the retries may hold 48 (HQ_LANE_RETRY_HOLD_PCT), about 960
     * deliveries a second to the 50-ms endpoint. */
    const char *extra[] = {"--concurrency", "64", "--endpoint-concurrency", "64", NULL};
    pid_t w = rf_worker(r, "storm", extra);
    pid_t sc = rf_scheduler(r);

    s.next_us = now_us();
    for (int i = 0; i < STORM_WARMUP; i++)
        fresh_one(&s, PH_NONE);
    for (int i = 0; i < STORM_QUIET; i++)
        fresh_one(&s, PH_QUIET);

    int64_t t_fill = hq_test_now_ms();
    hq_ck_fill_retries(&r->ck, r->w.c, storm_ep, "storm.test", "{\"s\":1}", nretries, t_fill);
    int64_t t_storm = hq_test_now_ms();
    print_message("[retry storm] %ld retries due at once (filled in %lld ms)\n", nretries,
                  (long long)(t_storm - t_fill));

    /* Fresh events while the storm drains (at least STORM_MIN_EVENTS); the
     * lanes' depth is sampled as it goes. */
    long long lane_max = 0, bound = (long long)HQ_SCHED_LANE_BATCHES * STORM_SCHED_BATCH;
    size_t storm_seen = 0;
    long produced = 0;
    s.next_us = now_us();
    for (;;) {
        fresh_one(&s, PH_STORM);
        produced++;
        if (produced % 50 == 0) {
            for (unsigned i = 0; i < hq_tl_nparts(&r->w.tl); i++) {
                char key[HQ_KEY_MAX];
                assert_true(hq_key_retries(hq_tl_base(&r->w.tl, "hookq", i), key, sizeof(key)) >=
                            0);
                long long d = hq_test_cmd_int(wenv_node(&r->w, i), "XLEN %s", key);
                if (d > lane_max)
                    lane_max = d;
            }
            storm_seen = hq_test_receiver_count_path(&r->rcv2, "/delay/50/storm");
            if (produced >= STORM_MIN_EVENTS && storm_seen >= (size_t)nretries)
                break;
            if (produced >= STORM_MAX_EVENTS)
                break;
        }
    }
    int64_t t_end = hq_test_now_ms();
    print_message("[retry storm] %ld fresh events during the storm; %zu of %ld retries received "
                  "after %lld ms; deepest retry lane %lld (bound %lld)\n",
                  produced, storm_seen, nretries, (long long)(t_end - t_storm), lane_max, bound);

    struct hq_ck_report rep;
    rf_settle_and_check(r, drain_timeout_ms, "retry storm", &rep);
    size_t nq, ns;
    long long q99 = p99_of(&s, PH_QUIET, &nq, "quiet"), s99 = p99_of(&s, PH_STORM, &ns, "storm");
    long long base = q99 > STORM_QUIET_FLOOR_US ? q99 : STORM_QUIET_FLOOR_US;
    double raw = (double)s99 / (double)(q99 > 0 ? q99 : 1), ratio = (double)s99 / (double)base;
    print_message("[retry storm] fresh p99: quiet %.2f ms (%zu events), storm %.2f ms (%zu "
                  "events): ratio %.2f, %.2f against the quiet p99 floored at %.1f ms (max %.1f)\n",
                  q99 / 1000.0, nq, s99 / 1000.0, ns, raw, ratio, STORM_QUIET_FLOOR_US / 1000.0,
                  STORM_RATIO_MAX);
    assert_int_equal(nq, STORM_QUIET);
    assert_true(ns >= STORM_MIN_EVENTS);
    assert_int_equal(rep.dead_total, 0);
    if (lane_max > bound)
        fail_msg("a retry lane held %lld entries, over the scheduler's bound %lld", lane_max,
                 bound);
    if (ratio > STORM_RATIO_MAX && STORM_RATIO_JUDGED)
        fail_msg("fresh events' p99 during the storm (%lld us) is %.2f x the quiet p99 "
                 "(%lld us, floored at %d us)",
                 s99, ratio, q99, STORM_QUIET_FLOOR_US);
    assert_int_equal(hq_test_kill_wait(w, SIGTERM, 30000), 0);
    assert_int_equal(hq_test_kill_wait(sc, SIGTERM, 30000), 0);
    free(s.ack);
    free(s.phase);
}
