/* The worker on a real Redis Cluster (3 primaries, P = 6 created on first
 * use): it reads every partition on its node, records each outcome on that
 * node, dead letters stay in their partition, and nothing is left pending.
 * The routing layer itself is test_cluster_router.c; this is the worker
 * through it, end to end. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/endpoint_store.h"
#include "common/keys.h"
#include "common/layout_store.h"
#include "common/redis_conn.h"
#include "tests/harness/cluster_env.h"
#include "tests/harness/hq_test.h"

static struct hq_test_cluster C;
static struct hq_test_receiver R;
static char url[512], wlog[320];
static struct hq_redis_conn *conn;
static struct hq_layout L;

static int setup(void **state)
{
    (void)state;
    hq_test_cluster_start(&C, 3, 0, NULL);
    hq_test_receiver_start(&R);
    hq_test_cluster_url(&C, url, sizeof(url));
    struct hq_err err = {0};
    conn = hq_redis_conn_open(url, 5000, &err);
    if (!conn)
        fail_msg("%s", err.msg);
    if (hq_layout_load(conn, "hookq", &L, &err) != 0)
        fail_msg("%s", err.msg);
    snprintf(wlog, sizeof(wlog), "%s/worker.log", C.node[0].dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hq_layout_free(&L);
    hq_redis_conn_free(conn);
    hq_test_receiver_stop(&R);
    hq_test_cluster_destroy(&C);
    return 0;
}

static redisContext *node(unsigned slot)
{
    struct hq_err err = {0};
    redisContext *x = hq_redis_conn_node(conn, slot, &err);
    if (!x)
        fail_msg("%s", err.msg);
    return x;
}

static void endpoint(const char *path, int max_attempts)
{
    struct hq_endpoint e = {0};
    char u[256];
    snprintf(u, sizeof(u), "%s%s", R.url, path);
    e.name = strdup("t");
    e.url = strdup(u);
    e.description = strdup("");
    e.enabled = 1;
    e.max_attempts = max_attempts;
    e.events = calloc(1, sizeof(char *));
    e.events[0] = strdup(max_attempts ? "dead.*" : "ok.*");
    e.nevents = 1;
    struct hq_err err = {0};
    if (hq_endpoint_create(node(L.reg_slot), L.reg, &e, &err) != 0)
        fail_msg("endpoint: %s", err.msg);
    hq_endpoint_free(&e);
}

static void produce(unsigned p, const char *type)
{
    char key[HQ_KEY_MAX];
    hq_key_events(L.part[p].base, key, sizeof(key));
    redisReply *r = redisCommand(node(L.part[p].slot), "XADD %s * type %s payload {}", key, type);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
}

static long long part_int(unsigned p, const char *fmt, const char *suffix)
{
    char key[HQ_KEY_MAX];
    snprintf(key, sizeof(key), "%s:%s", L.part[p].base, suffix);
    redisReply *r = redisCommand(node(L.part[p].slot), fmt, key);
    long long v = -1;
    if (r && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
             r->element[0]->type == REDIS_REPLY_INTEGER)
        v = r->element[0]->integer; /* XPENDING summary */
    if (r)
        freeReplyObject(r);
    return v;
}

static int settled(void *arg)
{
    long long want_dead = *(long long *)arg, dead = 0;
    for (unsigned p = 0; p < L.nparts; p++) {
        if (part_int(p, "XLEN %s", "events") != 0 ||
            part_int(p, "XPENDING %s workers", "events") != 0)
            return 0;
        dead += part_int(p, "XLEN %s", "dead");
    }
    return dead == want_dead && hq_test_receiver_count_path(&R, "/ok") >= 12 * L.nparts;
}

static void test_a_worker_delivers_from_every_shard(void **state)
{
    (void)state;
    assert_int_equal(L.nparts, 6); /* 2 per primary, created on first use */
    assert_true(L.tagged);
    endpoint("/ok", 0);
    endpoint("/s/400", 1);
    for (unsigned p = 0; p < L.nparts; p++) {
        for (int k = 0; k < 12; k++)
            produce(p, "ok.created");
        produce(p, "dead.created");
    }
    const char *args[] = {"worker", "--redis-url", url, "--log-level", "info", NULL};
    const char *env[] = {"HOOKQ_ALLOW_PRIVATE=1", NULL};
    pid_t pid = hq_test_spawn(args, env, wlog);
    long long want_dead = L.nparts;
    int ok = hq_test_wait(settled, &want_dead, 30000);
    int st = hq_test_kill_wait(pid, SIGTERM, 20000);
    if (!ok || st != 0) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "tail -n 30 %s", wlog);
        if (system(cmd) != 0)
            print_message("(no worker log)\n");
        fail_msg("settled: %d, worker exit status %d", ok, st);
    }
    /* One dead letter per partition, each in its own partition's stream. */
    for (unsigned p = 0; p < L.nparts; p++)
        assert_int_equal(part_int(p, "XLEN %s", "dead"), 1);
    assert_int_equal(hq_test_receiver_count_path(&R, "/ok"), 12 * L.nparts);
    assert_int_equal(hq_test_log_count(wlog, NULL, "partitions=6"), 1);
    /* Every primary served commands for its own partitions only (no MOVED). */
    for (int i = 0; i < C.n; i++) {
        redisContext *x = hq_test_cluster_connect(&C, i);
        redisReply *r = redisCommand(x, "INFO errorstats");
        assert_non_null(r);
        assert_null(strstr(r->str, "errorstat_MOVED"));
        freeReplyObject(r);
        redisFree(x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_worker_delivers_from_every_shard, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
