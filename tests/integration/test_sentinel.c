/* redis-sentinel:// against real servers on 127.0.0.1 (tests/harness/
 * sentinel_env.h: a primary with min-replicas-to-write 1, a replica, three
 * sentinels): the blocking and the async client connect through the
 * sentinels; a sentinel whose master is really a replica is refused by the
 * ROLE check with a bounded back-off; an unreachable sentinel set gives one
 * clear error line and a bounded back-off; and a failover (SIGSTOP of the
 * primary) is followed within 10 s by the async and blocking clients,
 * hookq produce, a worker and a scheduler, the old primary refusing writes when it
 * resumes and then becoming a replica. The failover test runs last: it moves
 * the master. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/endpoint.h"
#include "common/endpoint_store.h"
#include "common/redis_client.h"
#include "common/redis_sync.h"
#include "common/redis_url.h"
#include "tests/harness/hq_test.h"
#include "tests/harness/sentinel_env.h"

#define FOLLOW_MS 10000 /* the bound for following a failover */

struct fx {
    struct hq_test_sentinel_env env;
    uv_loop_t loop;
    struct hq_redis_client *c;
    int ready_events;
    int down_events;
    char last_why[1024];
    int closed;
    /* the write poll of the failover test */
    int inflight;
    int ok_writes;
};

static struct fx fx_storage;

static void on_state(struct hq_redis_client *c, int ready, const char *why, void *arg)
{
    (void)c;
    struct fx *f = arg;
    if (ready)
        f->ready_events++;
    else
        f->down_events++;
    snprintf(f->last_why, sizeof(f->last_why), "%s", why);
}

static void on_closed(void *arg)
{
    ((struct fx *)arg)->closed = 1;
}

static int is_closed(void *arg)
{
    return ((struct fx *)arg)->closed;
}

static int is_ready(void *arg)
{
    return ((struct fx *)arg)->ready_events > 0;
}

/* `hookq produce --redis-url <url>` of one event of this type: exit status. */
static int cli_produce(const char *url, const char *type, char *err, size_t n)
{
    char out[256];
    const char *args[] = {"produce", "--redis-url", url, "--type", type, "--data", "{}", NULL};
    return hq_test_cli(args, NULL, NULL, out, sizeof(out), err, n);
}

static void endpoint_for(redisContext *c, const char *url, const char *filter)
{
    struct hq_endpoint e;
    memset(&e, 0, sizeof(e));
    e.name = strdup("sentinel test");
    e.url = strdup(url);
    e.description = strdup("");
    e.enabled = 1;
    e.events = calloc(1, sizeof(char *));
    e.events[0] = strdup(filter);
    e.nevents = 1;
    struct hq_err err = {0};
    if (hq_endpoint_create(c, "hookq", &e, &err) != 0)
        fail_msg("endpoint create: %s", err.msg);
    hq_endpoint_free(&e);
}

struct path_count {
    struct hq_test_receiver *rcv;
    const char *path;
};

static int path_received(void *arg)
{
    struct path_count *pc = arg;
    return hq_test_receiver_count_path(pc->rcv, pc->path) > 0;
}

struct sched_log {
    char path[320];
};

static int scheduler_reconnected(void *arg)
{
    return hq_test_log_count(((struct sched_log *)arg)->path, "info", "redis reconnected") > 0;
}

static int scheduler_started(void *arg)
{
    return hq_test_log_count(((struct sched_log *)arg)->path, "info", "started prefix=") > 0;
}

static int is_down(void *arg)
{
    return ((struct fx *)arg)->down_events > 0;
}

static int never(void *arg)
{
    (void)arg;
    return 0;
}

static int group_setup(void **state)
{
    struct fx *f = &fx_storage;
    memset(f, 0, sizeof(*f));
    hq_test_sentinel_env_start(&f->env, "--min-replicas-to-write 1 --min-replicas-max-lag 10");
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    struct fx *f = *state;
    hq_test_sentinel_env_destroy(&f->env);
    return 0;
}

static int setup(void **state)
{
    struct fx *f = *state;
    f->c = NULL;
    f->ready_events = f->down_events = f->closed = f->inflight = f->ok_writes = 0;
    f->last_why[0] = '\0';
    assert_int_equal(uv_loop_init(&f->loop), 0);
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->c) {
        hq_redis_client_close(f->c, on_closed, f);
        assert_true(hq_test_run_until(&f->loop, is_closed, f, 5000));
    }
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    return 0;
}

static void client_new(struct fx *f, const char *url)
{
    struct hq_redis_url u;
    struct hq_err err = {0};
    assert_int_equal(hq_redis_url_parse(url, &u, &err), 0);
    f->c = hq_redis_client_new(&f->loop, &u, "test", on_state, f);
}

static void on_write(struct hq_redis_client *c, redisReply *reply, void *arg)
{
    (void)c;
    struct fx *f = arg;
    f->inflight = 0;
    if (reply && reply->type == REDIS_REPLY_STATUS)
        f->ok_writes++;
}

/* Keeps one SET in flight (1 s deadline, so a stopped node costs 1 s, not
 * the default 10 s) and is true once one succeeded. */
static int wrote(void *arg)
{
    struct fx *f = arg;
    if (f->ok_writes > 0)
        return 1;
    if (!f->inflight && hq_redis_client_ready(f->c)) {
        const char *argv[] = {"SET", "k", "v"};
        if (hq_redis_client_command(f->c, on_write, f, 1000, 3, argv, NULL) == 0)
            f->inflight = 1;
    }
    return 0;
}

static void test_blocking_and_async_connect_through_sentinels(void **state)
{
    struct fx *f = *state;
    struct hq_err err = {0};
    redisContext *c = hq_redis_connect(f->env.url, 1000, &err);
    if (!c)
        fail_msg("%s", err.msg);
    assert_int_equal(c->tcp.port, f->env.primary.port);
    redisReply *r = hq_redis_cmdf(c, &err, "SET a 1");
    assert_non_null(r);
    freeReplyObject(r);

    /* hookq produce (libhookq) resolves through the same code. */
    char msg[512];
    assert_int_equal(cli_produce(f->env.url, "connect.test", msg, sizeof(msg)), 0);
    r = hq_redis_cmdf(c, &err, "XLEN hookq:events");
    assert_non_null(r);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    redisFree(c);
    /* A bad sentinel URL is a usage error, exit 2, one line. */
    assert_int_equal(cli_produce("redis-sentinel://127.0.0.1:1", "t", msg, sizeof(msg)), 2);
    assert_non_null(strstr(msg, "needs a master name"));

    client_new(f, f->env.url);
    assert_true(hq_test_run_until(&f->loop, is_ready, f, 5000));
    assert_non_null(strstr(f->last_why, "connected to 127.0.0.1:"));
    char want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%d", f->env.primary.port);
    assert_non_null(strstr(f->last_why, want));
    assert_true(hq_test_run_until(&f->loop, wrote, f, 5000));
    /* The periodic ROLE check keeps an idle connection to a master. */
    hq_test_run_until(&f->loop, never, NULL, 2500);
    assert_int_equal(f->down_events, 0);
    assert_int_equal(hq_redis_client_reconnects(f->c), 0);
}

/* A sentinel that monitors the replica under the name "r": its answer names a
 * node whose ROLE is slave. */
static void test_a_replica_named_as_master_is_refused(void **state)
{
    struct fx *f = *state;
    struct hq_test_sentinel s;
    char monitors[128];
    snprintf(monitors, sizeof(monitors), "sentinel monitor r 127.0.0.1 %d 1\n",
             f->env.replica.port);
    hq_test_sentinel_start(&s, monitors);
    char url[128];
    snprintf(url, sizeof(url), "redis-sentinel://127.0.0.1:%d/r", s.port);
    assert_int_equal(hq_test_sentinel_master_port(&s, "r"), f->env.replica.port);

    struct hq_err err = {0};
    redisContext *c = hq_redis_connect(url, 1000, &err);
    assert_null(c);
    char want[128];
    snprintf(want, sizeof(want), "redis: sentinel master: 127.0.0.1:%d: is a slave, not the master",
             f->env.replica.port);
    if (strncmp(err.msg, want, strlen(want)) != 0)
        fail_msg("got '%s'", err.msg);

    client_new(f, url);
    hq_test_run_until(&f->loop, never, NULL, 2000);
    assert_int_equal(f->ready_events, 0);
    assert_int_equal(f->down_events, 1); /* reported once per outage */
    assert_non_null(strstr(f->last_why, "is a slave, not the master"));
    /* Backoff 100, 200, 400, 800 ms: about 5 attempts in 2 s, never a loop. */
    unsigned long n = hq_redis_client_reconnects(f->c);
    if (n < 2 || n > 6)
        fail_msg("%lu reconnects in 2 s", n);
    hq_test_sentinel_stop(&s);
}

static void test_unreachable_sentinels_fail_clearly_and_back_off(void **state)
{
    struct fx *f = *state;
    int p1 = hq_test_free_port(), p2 = hq_test_free_port();
    char url[128];
    snprintf(url, sizeof(url), "redis-sentinel://127.0.0.1:%d,127.0.0.1:%d/m", p1, p2);
    struct hq_err err = {0};
    assert_null(hq_redis_connect(url, 1000, &err));
    char want[160];
    snprintf(want, sizeof(want),
             "redis: no sentinel of 127.0.0.1:%d,127.0.0.1:%d knows master 'm': 127.0.0.1:%d: ", p1,
             p2, p2);
    if (strncmp(err.msg, want, strlen(want)) != 0)
        fail_msg("got '%s'", err.msg);
    assert_null(strchr(err.msg, '\n'));

    client_new(f, url);
    hq_test_run_until(&f->loop, never, NULL, 2000);
    assert_int_equal(f->ready_events, 0);
    assert_int_equal(f->down_events, 1);
    assert_non_null(strstr(f->last_why, "no sentinel of"));
    unsigned long n = hq_redis_client_reconnects(f->c);
    if (n < 2 || n > 6)
        fail_msg("%lu reconnects in 2 s", n);
}

static int is_slave(void *arg)
{
    char role[16];
    hq_test_role_of(*(int *)arg, role, sizeof(role));
    return strcmp(role, "slave") == 0;
}

static void test_failover_is_followed_within_10s(void **state)
{
    struct fx *f = *state;
    /* A worker through the sentinels, delivering before the failover. */
    struct hq_test_receiver rcv;
    memset(&rcv, 0, sizeof(rcv));
    hq_test_receiver_start(&rcv);
    struct hq_err err = {0};
    redisContext *c = hq_redis_connect(f->env.url, 1000, &err);
    if (!c)
        fail_msg("%s", err.msg);
    char ep[128];
    snprintf(ep, sizeof(ep), "%s/before", rcv.url);
    endpoint_for(c, ep, "before");
    snprintf(ep, sizeof(ep), "%s/after", rcv.url);
    endpoint_for(c, ep, "after");
    redisFree(c);
    char log[320];
    snprintf(log, sizeof(log), "%s/worker.log", f->env.primary.dir);
    const char *wargs[] = {"worker", "--redis-url", f->env.url, "--log-level", "info", NULL};
    const char *wenv[] = {"HOOKQ_ALLOW_PRIVATE=1", NULL};
    pid_t worker = hq_test_spawn(wargs, wenv, log);
    assert_true(worker > 0);
    struct sched_log slog;
    snprintf(slog.path, sizeof(slog.path), "%s/scheduler.log", f->env.primary.dir);
    const char *sargs[] = {"scheduler", "--redis-url", f->env.url, "--log-level", "info", NULL};
    pid_t scheduler = hq_test_spawn(sargs, NULL, slog.path);
    assert_true(scheduler > 0);
    /* Started (layout read) before the primary is stopped: a scheduler that
     * cannot reach Redis at start-up exits 1 by design, and on a loaded
     * machine (ASan in CI) its start-up could otherwise fall after SIGSTOP. */
    if (!hq_test_wait(scheduler_started, &slog, 10000)) {
        hq_test_log_print(slog.path, "scheduler");
        fail_msg("the scheduler did not start");
    }
    char msg[512];
    assert_int_equal(cli_produce(f->env.url, "before", msg, sizeof(msg)), 0);
    struct path_count before = {&rcv, "/before"}, after = {&rcv, "/after"};
    if (!hq_test_wait(path_received, &before, 10000)) {
        hq_test_log_print(log, "worker");
        fail_msg("no delivery before the failover");
    }

    client_new(f, f->env.url);
    assert_true(hq_test_run_until(&f->loop, is_ready, f, 5000));
    assert_true(hq_test_run_until(&f->loop, wrote, f, 5000));
    f->ok_writes = 0;

    int64_t t0 = hq_test_now_ms();
    assert_int_equal(kill(f->env.primary.pid, SIGSTOP), 0);
    /* The idle client notices through its periodic ROLE (no answer within
     * 2 s) without a command of its own, then resolves again and reaches
     * the promoted replica. */
    assert_true(hq_test_run_until(&f->loop, is_down, f, 4000));
    print_message("idle async client dropped the stopped primary %lld ms after SIGSTOP: %s\n",
                  (long long)(hq_test_now_ms() - t0), f->last_why);
    assert_non_null(strstr(f->last_why, "no reply within 2000 ms"));
    int ok = hq_test_run_until(&f->loop, wrote, f, FOLLOW_MS + 5000);
    int64_t async_ms = hq_test_now_ms() - t0;
    print_message("async client wrote to the new master %lld ms after SIGSTOP\n",
                  (long long)async_ms);
    assert_true(ok);
    assert_true(async_ms < FOLLOW_MS);
    assert_non_null(strstr(f->last_why, "connected to"));
    char want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%d", f->env.replica.port);
    assert_non_null(strstr(f->last_why, want));

    /* The blocking client (the CLI's and libhookq's) resolves at connect. */
    c = NULL;
    while (!c && hq_test_now_ms() - t0 < FOLLOW_MS) {
        c = hq_redis_connect(f->env.url, 1000, &err);
        redisReply *r = c ? hq_redis_cmdf(c, &err, "SET b 1") : NULL;
        if (r)
            freeReplyObject(r);
        else if (c) {
            redisFree(c);
            c = NULL;
        }
    }
    int64_t sync_ms = hq_test_now_ms() - t0;
    print_message("blocking client wrote %lld ms after SIGSTOP\n", (long long)sync_ms);
    if (!c)
        fail_msg("blocking client: %s", err.msg);
    assert_int_equal(c->tcp.port, f->env.replica.port);
    redisFree(c);

    /* hookq produce reaches the new master, and the worker delivers from it
     * (its reader notices the stopped node at the read's deadline, BLOCK +
     * 5 s, and resolves again). */
    assert_int_equal(cli_produce(f->env.url, "after", msg, sizeof(msg)), 0);
    int delivered = hq_test_wait(path_received, &after, 20000);
    int64_t worker_ms = hq_test_now_ms() - t0;
    print_message("worker delivered an event produced after the failover %lld ms after SIGSTOP\n",
                  (long long)worker_ms);
    if (!delivered) {
        hq_test_log_print(log, "worker");
        fail_msg("no delivery after the failover");
    }
    assert_true(worker_ms < FOLLOW_MS);
    /* The scheduler (blocking client, 5 s command timeout) reconnects
     * through the sentinels too. */
    int sched_ok = hq_test_wait(scheduler_reconnected, &slog, FOLLOW_MS);
    int64_t sched_ms = hq_test_now_ms() - t0;
    if (!sched_ok) {
        hq_test_log_print(slog.path, "scheduler");
        fail_msg("the scheduler did not reconnect");
    }
    print_message("scheduler reconnected by %lld ms after SIGSTOP\n", (long long)sched_ms);
    assert_true(sched_ms < FOLLOW_MS);

    /* The old primary resumes still believing it is master: with
     * min-replicas-to-write 1 and its replica gone it refuses writes... */
    assert_int_equal(kill(f->env.primary.pid, SIGCONT), 0);
    redisContext *old = hq_test_redis_connect(&f->env.primary);
    redisReply *r = redisCommand(old, "SET lost 1");
    assert_non_null(r);
    if (r->type != REDIS_REPLY_ERROR)
        fail_msg("the resumed old primary accepted a write (reply type %d)", r->type);
    print_message("old primary on resume: %s\n", r->str);
    freeReplyObject(r);
    redisFree(old);
    /* ...and the sentinels turn it into a replica of the new master. */
    int64_t t1 = hq_test_now_ms();
    assert_true(hq_test_wait(is_slave, &f->env.primary.port, 30000));
    print_message("old primary became a replica %lld ms after SIGCONT\n",
                  (long long)(hq_test_now_ms() - t1));
    assert_int_equal(hq_test_kill_wait(worker, SIGTERM, 30000), 0);
    assert_int_equal(hq_test_kill_wait(scheduler, SIGTERM, 30000), 0);
    hq_test_receiver_stop(&rcv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_blocking_and_async_connect_through_sentinels, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_replica_named_as_master_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_sentinels_fail_clearly_and_back_off, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failover_is_followed_within_10s, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
