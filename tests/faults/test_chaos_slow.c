/* Fault scenario 3, rolling chaos (label slow): a minute of traffic
 * to a healthy and a 30 %-failing endpoint, three workers and two schedulers,
 * and every 3 s a random one of them is killed -9 and restarted by the test.
 * Checked: nothing lost; duplicates no more than the deliveries the killed
 * workers held just before their kills (entries pending to that consumer,
 * times the fan-out); signatures valid; nothing pending or waiting to retry
 * once quiet; no dead letters; every worker's fds back to a fresh worker's. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/fault_env.h"

static struct rf R; /* R.rcv2: the flaky receiver (30 % of requests fail) */

#define NWORKERS 3
#define NSCHED   2

static const char *const WORKER_ARGS[] = {"--timeout",
                                          "4s",
                                          "--claim-idle",
                                          "10s",
                                          "--backoff-base",
                                          "1s",
                                          "--backoff-factor",
                                          "1",
                                          "--backoff-max",
                                          "2s",
                                          "--idle-close",
                                          "1s",
                                          NULL};

static pid_t scheduler(void)
{
    const char *args[] = {"--interval", "200ms", NULL};
    return wenv_scheduler(&R.w, args);
}

/* Entries pending to the consumer of worker pid (default name <hostname>-<pid>). */
static long long pending_of(pid_t pid)
{
    char host[128] = "", name[160];
    gethostname(host, sizeof(host) - 1);
    snprintf(name, sizeof(name), "%s-%d", host, (int)pid);
    redisReply *r = hq_test_cmd(R.w.c, "XPENDING hookq:events workers");
    long long n = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
        r->element[3]->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->element[3]->elements; i++) {
            redisReply *c = r->element[3]->element[i];
            if (c->elements == 2 && strcmp(c->element[0]->str, name) == 0)
                n = strtoll(c->element[1]->str, NULL, 10);
        }
    }
    freeReplyObject(r);
    return n;
}

static void test_rolling_kill9_of_workers_and_schedulers_for_a_minute(void **state)
{
    (void)state;
    rf_start_rcv2(&R, 30);
    rf_endpoint(&R, "/delay/20/good");
    rf_endpoint_on(&R, &R.rcv2, "/flaky", 20); /* 0.3^20: never exhausted */

    pid_t workers[NWORKERS], scheds[NSCHED];
    int clients0 = hq_ck_redis_clients(R.w.c);
    for (int i = 0; i < NWORKERS; i++)
        workers[i] = wenv_worker(&R.w, WORKER_ARGS, NULL);
    /* Workers connected (two Redis clients each) before any traffic: a fresh
     * worker's fds, which every worker (restarted ones included) must come
     * back to once quiet. */
    int64_t until = hq_test_now_ms() + 10000;
    while (hq_ck_redis_clients(R.w.c) < clients0 + 2 * NWORKERS && hq_test_now_ms() < until) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL); /* polling a condition, bounded above */
    }
    assert_true(hq_ck_redis_clients(R.w.c) >= clients0 + 2 * NWORKERS);
    struct hq_ck_proc fresh;
    assert_int_equal(hq_ck_proc_sample(workers[0], &fresh), 0);
    for (int i = 0; i < NSCHED; i++)
        scheds[i] = scheduler();

    srand(12345); /* a fixed schedule of victims: reruns see the same chaos */
    const int rate = 100, run_ms = 60000, every_ms = 3000;
    int64_t t0 = hq_test_now_ms(), next_kill = every_ms;
    long done = 0;
    int worker_kills = 0, sched_kills = 0;
    for (int64_t el = 0; el < run_ms; el = hq_test_now_ms() - t0) {
        for (; done < el * rate / 1000 + 1; done++)
            assert_int_equal(hq_ck_produce(&R.ck, R.w.c, "chaos.tick", "{\"c\":1}"), 2);
        if (el >= next_kill) {
            next_kill += every_ms;
            int v = rand() % (NWORKERS + NSCHED);
            if (v < NWORKERS) {
                /* Each held entry may be delivered once more per endpoint. Sampled
                 * just before the kill and again after it (a dead consumer's pending
                 * list is frozen until a reclaim, >= 10 s later): the larger. */
                long long held = pending_of(workers[v]);
                assert_int_equal(hq_test_kill_wait(workers[v], SIGKILL, 5000), 128 + SIGKILL);
                long long after = pending_of(workers[v]);
                hq_ck_note_fault(&R.ck, (after > held ? after : held) * 2);
                workers[v] = wenv_worker(&R.w, WORKER_ARGS, NULL);
                worker_kills++;
            } else {
                v -= NWORKERS;
                assert_int_equal(hq_test_kill_wait(scheds[v], SIGKILL, 5000), 128 + SIGKILL);
                scheds[v] = scheduler();
                sched_kills++;
            }
        }
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL); /* production pacing, not an assertion */
    }
    print_message("[chaos] %d worker kills, %d scheduler kills\n", worker_kills, sched_kills);
    struct hq_ck_report rep;
    rf_settle_and_check(&R, 90000, "chaos", &rep);
    assert_int_equal(rep.delivered, rep.pairs);
    assert_int_equal(rep.dead_total, 0);
    assert_true(worker_kills > 0 && sched_kills > 0);
    /* No descriptor leaked through the kills and reclaims: each worker running
     * now closes its idle connections (--idle-close 1s) and is back to a fresh
     * worker's fds. */
    for (int i = 0; i < NWORKERS; i++) {
        struct hq_ck_proc now;
        char why[128];
        int back = hq_ck_proc_wait_back(workers[i], &fresh, &now, -1, 8, 10000, why, sizeof(why));
        print_message("[chaos] worker %d: rss %ld KiB, fds %d (fresh worker: %d)\n", i, now.rss_kb,
                      now.fds, fresh.fds);
        if (back != 0)
            fail_msg("worker %d did not come back to a fresh worker's fds: %s", i, why);
    }
    for (int i = 0; i < NWORKERS; i++)
        assert_int_equal(hq_test_kill_wait(workers[i], SIGTERM, 30000), 0);
    for (int i = 0; i < NSCHED; i++)
        assert_int_equal(hq_test_kill_wait(scheds[i], SIGTERM, 30000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RF_TEST(test_rolling_kill9_of_workers_and_schedulers_for_a_minute, &R),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
