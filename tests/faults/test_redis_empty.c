/* Scenario 7 of the reliability suite: Redis restarts empty (no persistence;
 * the whole dataset, the consumer group included, is gone). The worker and
 * the scheduler stay up. Checks: the worker says so at error level, the group
 * is recreated (from id 0, so events written before the worker noticed are
 * delivered too), delivery resumes with the checker's invariants holding for
 * everything produced after the restart, and nothing spins meanwhile. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/fault_env.h"

#define EVENTS 300

static struct rf R;

static int group_exists(void *arg)
{
    struct rf *r = arg;
    redisReply *rep = redisCommand(r->w.c, "XINFO GROUPS hookq:events");
    int found = 0;
    if (rep && rep->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < rep->elements && !found; i++) {
            const redisReply *g = rep->element[i];
            for (size_t j = 0; j + 1 < g->elements; j += 2)
                found |= strcmp(g->element[j]->str, "name") == 0 &&
                         strcmp(g->element[j + 1]->str, "workers") == 0;
        }
    }
    if (rep)
        freeReplyObject(rep);
    return found;
}

static void test_redis_restarted_empty_group_recreated_loss_logged_delivery_resumes(void **state)
{
    (void)state;
    rf_endpoint(&R, "/a");
    rf_endpoint(&R, "/b");
    const char *extra[] = {"--timeout", "3s", "--claim-idle", "9s", NULL};
    pid_t w1 = rf_worker(&R, "w1", extra);
    pid_t w2 = rf_worker(&R, "w2", extra);
    pid_t s = rf_scheduler(&R);

    /* Before: everything delivered, exactly once. */
    for (int i = 0; i < EVENTS; i++)
        assert_int_equal(rf_produce(&R, "empty.before", "{\"n\":1}"), 0);
    struct hq_ck_report rep;
    rf_settle_and_check(&R, 30000, "before the empty restart", &rep);
    assert_int_equal(rep.dups, 0);
    assert_int_equal(rf_log_count(R.w.log, "level=error", "gone"), 0);

    /* Restart with no data at all. */
    long cpu_w0 = rf_cpu_ms(w1), cpu_s0 = rf_cpu_ms(s);
    hq_test_redis_stop(&R.w.redis, 1);
    hq_test_redis_restart(&R.w.redis);
    rf_reconnect(&R);
    assert_int_equal(hq_test_cmd_int(R.w.c, "DBSIZE"), 0);

    /* The endpoints are gone with everything else: a fresh receiver, fresh endpoints,
     * a fresh checker. Produced right away, before the workers have noticed. */
    long seq = R.ck.seq; /* event ids stay unique across the two datasets */
    hq_ck_free(&R.ck);
    hq_ck_init(&R.ck, "hookq");
    R.ck.seq = seq;
    rf_free_endpoints(&R);
    hq_test_receiver_stop(&R.w.rcv);
    hq_test_receiver_start(&R.w.rcv);
    rf_endpoint(&R, "/a");
    rf_endpoint(&R, "/b");
    for (int i = 0; i < EVENTS; i++)
        assert_int_equal(rf_produce(&R, "empty.after", "{\"n\":2}"), 0);

    rf_settle_and_check(&R, 30000, "after the empty restart", &rep);
    assert_int_equal(rep.dups, 0);
    assert_int_equal(rep.max_attempts, 1);
    assert_true(group_exists(&R));

    /* Said loudly: the loss is logged at error level. */
    int loud = rf_log_count(R.w.log, "level=error", "was gone") +
               rf_log_count(R.w.log, "level=error", "is gone");
    print_message(
        "empty restart: %d error lines about the lost group; CPU meanwhile: worker %ld ms, scheduler %ld ms\n",
        loud, rf_cpu_ms(w1) - cpu_w0, rf_cpu_ms(s) - cpu_s0);
    if (loud < 1)
        rf_dump_logs(&R);
    /* At least the worker that recreated the group; one that finds it already
     * recreated (BUSYGROUP) by its peer cannot tell it was ever gone. */
    assert_true(loud >= 1);

    int st1 = hq_test_kill_wait(w1, SIGTERM, 20000);
    int st2 = hq_test_kill_wait(w2, SIGTERM, 20000);
    int sts = hq_test_kill_wait(s, SIGTERM, 20000);
    if (st1 || st2 || sts)
        rf_dump_logs(&R);
    assert_int_equal(st1, 0);
    assert_int_equal(st2, 0);
    assert_int_equal(sts, 0);
}

/* The stream survives but the group does not (e.g. a restore from a producer-side
 * backup, or someone ran XGROUP DESTROY): NOGROUP on the next read, recreated. */
static void test_group_destroyed_under_running_workers_is_recreated(void **state)
{
    (void)state;
    rf_endpoint(&R, "/a");
    const char *extra[] = {"--timeout", "3s", "--claim-idle", "9s", NULL};
    pid_t w1 = rf_worker(&R, "w1", extra);
    assert_int_equal(rf_produce(&R, "g.one", "{}"), 0);
    assert_true(hq_ck_wait_settled(&R.ck, R.w.c, 20000));
    assert_int_equal(hq_test_cmd_int(R.w.c, "XGROUP DESTROY hookq:events workers"), 1);
    for (int i = 0; i < 50; i++)
        assert_int_equal(rf_produce(&R, "g.two", "{}"), 0);
    struct hq_ck_report rep;
    rf_settle_and_check(&R, 30000, "group destroyed", &rep);
    assert_true(rf_log_count(R.w.log, "level=error", "gone") >= 1);
    assert_int_equal(hq_test_kill_wait(w1, SIGTERM, 20000), 0);
}

static int in_flight_at_least(void *arg)
{
    return hq_ck_in_flight(&R.w.rcv) >= *(const int *)arg;
}

/* Emptied while the worker holds entries: deliveries in flight, outcomes not yet
 * recorded. Those outcomes belong to a group that no longer exists; they must not
 * wedge the worker (held entries use up its read capacity) or be recorded into the
 * new dataset: delivery of new events resumes and settles cleanly. */
static void test_redis_emptied_with_entries_held_does_not_wedge_the_worker(void **state)
{
    (void)state;
    rf_endpoint(&R, "/delay/1500/a");
    const char *extra[] = {"--timeout", "5s", "--claim-idle", "11s", "--concurrency", "40", NULL};
    pid_t w1 = rf_worker(&R, "w1", extra);
    for (int i = 0; i < 200; i++)
        assert_int_equal(rf_produce(&R, "held.before", "{}"), 0);
    int want = 30;
    wenv_wait(&R.w, in_flight_at_least, &want, 10000, "deliveries in flight");
    long long held = wenv_pending(&R.w);
    hq_test_redis_stop(&R.w.redis, 1);
    hq_test_redis_restart(&R.w.redis);
    rf_reconnect(&R);

    /* What was in Redis is gone (Redis' loss, logged by the worker); what follows is
     * checked from scratch on a fresh receiver. */
    long seq = R.ck.seq; /* event ids stay unique across the two datasets */
    hq_ck_free(&R.ck);
    hq_ck_init(&R.ck, "hookq");
    R.ck.seq = seq;
    rf_free_endpoints(&R);
    hq_test_receiver_stop(&R.w.rcv); /* the held deliveries end, failed */
    hq_test_receiver_start(&R.w.rcv);
    rf_endpoint(&R, "/a");
    for (int i = 0; i < 200; i++)
        assert_int_equal(rf_produce(&R, "held.after", "{}"), 0);
    struct hq_ck_report rep;
    rf_settle_and_check(&R, 30000, "emptied with entries held", &rep);
    assert_int_equal(rep.dups, 0);
    /* Nothing from before leaked into the new dataset: no retries, no dead letters,
     * no attempt records for the old events. */
    assert_int_equal(hq_test_cmd_int(R.w.c, "XLEN hookq:dead"), 0);
    assert_int_equal(hq_test_cmd_int(R.w.c, "ZCARD hookq:retry"), 0);
    print_message("emptied with %lld entries held: resumed and settled\n", held);
    int st = hq_test_kill_wait(w1, SIGTERM, 20000);
    if (st)
        rf_dump_logs(&R);
    assert_int_equal(st, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RF_TEST(test_redis_restarted_empty_group_recreated_loss_logged_delivery_resumes, &R),
        RF_TEST(test_group_destroyed_under_running_workers_is_recreated, &R),
        RF_TEST(test_redis_emptied_with_entries_held_does_not_wedge_the_worker, &R),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
