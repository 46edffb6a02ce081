/* `hookq migrate --partitions 4` under load, end to end: two `hookq worker`
 * processes deliver events produced before, during and after the migration
 * (during: to the old stream while the config says migrating, as a producer
 * that has not noticed yet does; after: to the partition of each id). The
 * workers pause, report, and restart on the new layout by themselves. The
 * checker then finds every (event, endpoint) pair delivered (Lost = 0) with
 * no duplicate (the workers drain what they hold before pausing), nothing
 * pending in any partition, and nothing left in the old stream. A scheduler
 * runs beside them: what the draining workers deferred goes back to partition
 * 0's stream through it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/layout_store.h"
#include "tests/harness/checker.h"
#include "tests/harness/worker_env.h"

static struct wenv W;

#define N_BEFORE     300
#define N_AFTER      300
#define N_DURING_MAX 3000

/* XADDs event id to the old stream when the deployment is still untagged or
 * migrating (atomically with the check, so the migration's sweep, which runs
 * after the state is gone, finds it); returns 0 without writing once the
 * migration is over. KEYS[1] config, KEYS[2] old stream. */
static const char *old_or_nothing =
    "if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'state') == 1 then "
    "redis.call('XADD', KEYS[2], '*', 'type', 'mig.t', 'payload', '{}', 'id', ARGV[1]) return 1 "
    "end return 0";

/* Produces event evm_<n> as a layout-aware producer would; records its pair. */
static void produce(struct hq_ck *ck, const struct hq_layout *L, const char *ep, int n, int *old)
{
    char id[32], key[HQ_KEY_MAX];
    snprintf(id, sizeof(id), "evm_%d", n);
    long long wrote =
        hq_test_cmd_int(W.c, "EVAL %s 2 hookq:{reg}:config hookq:events %s", old_or_nothing, id);
    if (!wrote) {
        unsigned p = hq_layout_partition_for(L, id, strlen(id), 0);
        hq_key_events(L->part[p].base, key, sizeof(key));
        freeReplyObject(hq_test_cmd(W.c, "XADD %s * type mig.t payload {} id %s", key, id));
    }
    if (old)
        *old += (int)wrote;
    hq_ck_record(ck, id, ep, 0);
}

struct done_arg {
    struct hq_ck *ck;
    size_t pairs;
};

static int all_delivered(void *arg)
{
    struct done_arg *a = arg;
    struct hq_ck_report rep;
    hq_ck_collect(a->ck, W.c, 0, &rep);
    return rep.delivered >= a->pairs;
}

/* Pending entries and retries of partition p. */
static void partition_backlog(const struct hq_layout *L, unsigned p, long long *pending,
                              long long *retries)
{
    char key[HQ_KEY_MAX];
    hq_key_events(L->part[p].base, key, sizeof(key));
    redisReply *r = hq_test_cmd(W.c, "XPENDING %s workers", key);
    *pending = r->type == REDIS_REPLY_ARRAY ? r->element[0]->integer : -1;
    freeReplyObject(r);
    hq_key_retry(L->part[p].base, key, sizeof(key));
    *retries = hq_test_cmd_int(W.c, "ZCARD %s", key);
}

static void print_partitions(const struct hq_layout *L)
{
    for (unsigned p = 0; p < L->nparts; p++) {
        long long pending, retries;
        partition_backlog(L, p, &pending, &retries);
        print_message("partition %u: %lld pending, %lld retries\n", p, pending, retries);
    }
}

/* The checker reads the untagged keys; the partitions' are checked here. */
static int nothing_pending(void *arg)
{
    const struct hq_layout *L = arg;
    for (unsigned p = 0; p < L->nparts; p++) {
        long long pending, retries;
        partition_backlog(L, p, &pending, &retries);
        if (pending != 0 || retries != 0)
            return 0;
    }
    return 1;
}

static void test_workers_deliver_across_the_migration(void **state)
{
    struct wenv *w = *state;
    struct hq_endpoint ep;
    wenv_endpoint_at(w, "/a", NULL, 5, &ep);
    struct hq_ck ck;
    hq_ck_init(&ck, "hookq");
    hq_ck_endpoint(&ck, &ep, &w->rcv);
    struct hq_layout L;
    struct hq_err e = {0};
    assert_int_equal(hq_layout_init_tagged(&L, "hookq", 4, &e), 0);

    /* A deployment: two workers and a scheduler (what a draining worker read
     * but had not started is deferred to the retry zset, which the scheduler
     * moves back once due). */
    wenv_worker(w, NULL, NULL);
    wenv_worker(w, NULL, NULL);
    wenv_scheduler(w, NULL);
    int n = 0;
    for (; n < N_BEFORE; n++)
        produce(&ck, &L, ep.id, n, NULL);
    struct count_arg some = {&w->rcv, "/a", N_BEFORE / 3};
    wenv_wait(w, received_at_least, &some, 20000, "deliveries before the migration");

    char mlog[400];
    snprintf(mlog, sizeof(mlog), "%s.migrate", w->log);
    const char *margs[] = {"migrate", "--partitions", "4",          "--wait",
                           "20s",     "--redis-url",  w->redis.url, NULL};
    pid_t mig = wenv_track(w, hq_test_spawn(margs, NULL, mlog));
    int st = -1, during = 0, old = 0;
    while ((st = hq_test_kill_wait(mig, 0, 2)) < 0 && during < N_DURING_MAX) {
        produce(&ck, &L, ep.id, n++, &old);
        during++;
    }
    if (st < 0)
        st = hq_test_kill_wait(mig, 0, 60000);
    if (st != 0)
        hq_test_log_print(mlog, "migrate");
    assert_int_equal(st, 0);
    assert_int_equal(hq_test_log_count(mlog, NULL, "did not pause"), 0);
    for (int i = 0; i < N_AFTER; i++)
        produce(&ck, &L, ep.id, n++, NULL);

    struct done_arg d = {&ck, (size_t)n};
    if (!hq_test_wait(all_delivered, &d, 60000)) {
        struct hq_ck_report r0;
        hq_ck_collect(&ck, w->c, 0, &r0);
        hq_ck_print(&r0, "not delivered");
        print_partitions(&L);
        hq_test_log_print(mlog, "migrate");
        wenv_dump_log(w);
        fail_msg("every pair delivered: timed out");
    }
    wenv_wait(w, nothing_pending, &L, 20000, "nothing pending or retried in any partition");
    struct hq_ck_report rep;
    hq_ck_collect(&ck, w->c, 1, &rep);
    hq_ck_print(&rep, "migrate under load");
    print_message("produced %d before, %d during (%d to the old stream), %d after\n", N_BEFORE,
                  during, old, N_AFTER);
    hq_ck_assert(&ck, &rep);
    assert_int_equal(rep.lost, 0);
    assert_int_equal(rep.dups, 0);
    assert_true(during > 0);
    assert_int_equal(hq_test_cmd_int(w->c, "EXISTS hookq:events"), 0);
    hq_layout_free(&L);
    hq_ck_free(&ck);
    hq_endpoint_free(&ep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        WENV_TEST(test_workers_deliver_across_the_migration, &W),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
