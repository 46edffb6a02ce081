/* Cluster routing against a real 3-primary + 3-replica cluster
 * (tests/harness/cluster_env.h): the blocking hq_redis_conn (CLI, scheduler,
 * producer) and the async hq_redis_router (worker) for redis-cluster:// URLs.
 * Where a key lands is checked on the node itself (its own EXISTS, the
 * context's port), never through the code under test; who owns a slot comes
 * from CLUSTER NODES (hq_test_cluster_view), not from our CLUSTER SLOTS
 * decoding. Tests run in order and change the cluster (a graceful failover,
 * a slot migrated, a primary killed): each reads the ownership afresh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/redis_conn.h"
#include "common/redis_router.h"
#include "common/redis_url.h"
#include "common/slot.h"
#include "tests/harness/cluster_env.h"

static struct hq_test_cluster SIX;

/* ---- Helpers ----------------------------------------------------------------------- */

/* CLUSTER NODES of the first running node (heap: ~40 KiB). */
static struct hq_test_cluster_view *view_now(void)
{
    struct hq_test_cluster_view *v = malloc(sizeof(*v));
    assert_non_null(v);
    for (int i = 0; i < SIX.n; i++) {
        if (SIX.node[i].pid <= 0)
            continue;
        redisContext *c = hq_test_cluster_connect(&SIX, i);
        int rc = hq_test_cluster_view(c, v);
        redisFree(c);
        assert_int_equal(rc, 0);
        return v;
    }
    fail_msg("no running node");
    return NULL;
}

/* Port of the primary owning slot per CLUSTER NODES. */
static int owner_port(const struct hq_test_cluster_view *v, unsigned slot)
{
    assert_true(v->owner[slot] >= 0);
    return v->peer[v->owner[slot]].port;
}

/* The distinct primary ports owning slots, in slot order (3 for SIX). */
static int primary_ports(const struct hq_test_cluster_view *v, int *ports, int max)
{
    int n = 0;
    for (int s = 0; s < HQ_SLOTS; s++) {
        int p = v->owner[s] >= 0 ? v->peer[v->owner[s]].port : -1;
        int seen = p < 0;
        for (int k = 0; k < n && !seen; k++)
            seen = ports[k] == p;
        if (!seen && n < max)
            ports[n++] = p;
    }
    return n;
}

/* A key "{<prefix><i>}" whose slot the primary on port owns. */
static unsigned key_on(const struct hq_test_cluster_view *v, int port, const char *prefix,
                       char *key, size_t n)
{
    for (int i = 0; i < 100000; i++) {
        snprintf(key, n, "{%s%d}", prefix, i);
        unsigned slot = hq_key_slot(key, strlen(key));
        if (owner_port(v, slot) == port)
            return slot;
    }
    fail_msg("no key for port %d", port);
    return 0;
}

/* Index of a replica of the primary on port. */
static int replica_of(const struct hq_test_cluster_view *v, int port)
{
    const char *id = NULL;
    for (int i = 0; i < v->n; i++)
        if (v->peer[i].primary && v->peer[i].port == port)
            id = v->peer[i].id;
    assert_non_null(id);
    for (int i = 0; i < v->n; i++)
        if (!v->peer[i].primary && strcmp(v->peer[i].master_id, id) == 0 && !v->peer[i].failing) {
            int k = hq_test_cluster_node_of_port(&SIX, v->peer[i].port);
            if (k >= 0 && SIX.node[k].pid > 0)
                return k;
        }
    fail_msg("no running replica of %d", port);
    return -1;
}

static const char *id_of(const struct hq_test_cluster_view *v, int port)
{
    for (int i = 0; i < v->n; i++)
        if (v->peer[i].port == port)
            return v->peer[i].id;
    fail_msg("no node on port %d", port);
    return NULL;
}

/* The node on port's own answer to EXISTS key (ASKING first when asking). */
static long long exists_on(int port, const char *key, int asking)
{
    int i = hq_test_cluster_node_of_port(&SIX, port);
    assert_true(i >= 0);
    redisContext *c = hq_test_cluster_connect(&SIX, i);
    if (asking)
        freeReplyObject(hq_test_cmd(c, "ASKING"));
    long long n = hq_test_cmd_int(c, "EXISTS %s", key);
    redisFree(c);
    return n;
}

/* Error replies of one kind ("MOVED", "ASK") the running nodes have sent
 * (INFO errorstats): whether a command was routed or redirected. */
static long long errorstat(const char *kind)
{
    char field[64];
    snprintf(field, sizeof(field), "errorstat_%s:count=", kind);
    long long sum = 0;
    for (int i = 0; i < SIX.n; i++) {
        if (SIX.node[i].pid <= 0)
            continue;
        redisContext *c = hq_test_cluster_connect(&SIX, i);
        redisReply *r = hq_test_cmd(c, "INFO errorstats");
        const char *p = r->str ? strstr(r->str, field) : NULL;
        if (p)
            sum += atoll(p + strlen(field));
        freeReplyObject(r);
        redisFree(c);
    }
    return sum;
}

static void cluster_url(char *url, size_t n, int dead_port)
{
    if (dead_port > 0)
        snprintf(url, n, "redis-cluster://127.0.0.1:%d,127.0.0.1:%d", dead_port,
                 SIX.node[0].pid > 0 ? SIX.node[0].port : SIX.node[1].port);
    else
        snprintf(url, n, "redis-cluster://127.0.0.1:%d,127.0.0.1:%d", SIX.node[0].port,
                 SIX.node[1].port);
}

struct owner_is {
    unsigned slot;
    int port;
};

static int slot_owned_by(void *arg)
{
    struct owner_is *o = arg;
    struct hq_test_cluster_view *v = view_now();
    int ok = v->owner[o->slot] >= 0 && v->peer[v->owner[o->slot]].port == o->port;
    free(v);
    return ok;
}

/* A graceful failover of the primary owning slot: CLUSTER FAILOVER on its
 * replica, awaited until every node agrees. Returns the new owner's port. */
static int failover_slot(unsigned slot)
{
    struct hq_test_cluster_view *v = view_now();
    int old = owner_port(v, slot);
    int r = replica_of(v, old);
    free(v);
    redisContext *c = hq_test_cluster_connect(&SIX, r);
    redisReply *rep = hq_test_cmd(c, "CLUSTER FAILOVER");
    assert_int_equal(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    redisFree(c);
    struct owner_is o = {slot, SIX.node[r].port};
    assert_true(hq_test_wait(slot_owned_by, &o, HQ_TEST_CLUSTER_WAIT_MS));
    assert_true(hq_test_cluster_wait_ok(&SIX, HQ_TEST_CLUSTER_WAIT_MS));
    return SIX.node[r].port;
}

static redisReply *conn_cmd(struct hq_redis_conn *c, const char *key, struct hq_err *err, int argc,
                            const char **argv)
{
    return hq_redis_conn_cmd(c, hq_key_slot(key, strlen(key)), err, argc, argv, NULL);
}

/* ---- Blocking: hq_redis_conn ------------------------------------------------------------ */

static void test_sync_dead_first_seed_then_each_primarys_slots_go_to_that_primary(void **state)
{
    (void)state;
    char url[200];
    cluster_url(url, sizeof(url), hq_test_free_port());
    struct hq_err err = {0};
    struct hq_redis_conn *c = hq_redis_conn_open(url, 2000, &err);
    if (!c)
        fail_msg("open %s: %s", url, err.msg);
    assert_int_equal(hq_redis_conn_is_cluster(c), 1);
    assert_int_equal(hq_redis_conn_primaries(c), 3);
    struct hq_test_cluster_view *v = view_now();
    int ports[3];
    assert_int_equal(primary_ports(v, ports, 3), 3);
    long long moved0 = errorstat("MOVED");
    for (int k = 0; k < 3; k++) {
        char key[32];
        unsigned slot = key_on(v, ports[k], "sync", key, sizeof(key));
        redisReply *r = conn_cmd(c, key, &err, 3, (const char *[]){"SET", key, "v"});
        if (!r)
            fail_msg("SET %s: %s", key, err.msg);
        freeReplyObject(r);
        /* Routed, not redirected: the context used is the owner's own. */
        redisContext *node = hq_redis_conn_node(c, slot, &err);
        assert_non_null(node);
        assert_int_equal(node->tcp.port, ports[k]);
        char name[64], want[64];
        snprintf(want, sizeof(want), "127.0.0.1:%d", ports[k]);
        assert_string_equal(hq_redis_conn_node_name(c, slot, name, sizeof(name)), want);
        assert_int_equal(exists_on(ports[k], key, 0), 1);
    }
    assert_int_equal(errorstat("MOVED"), moved0); /* sent to the owner first time */
    free(v);
    hq_redis_conn_free(c);
}

static void test_sync_follows_moved_after_a_graceful_failover(void **state)
{
    (void)state;
    char url[200];
    cluster_url(url, sizeof(url), 0);
    struct hq_err err = {0};
    struct hq_redis_conn *c = hq_redis_conn_open(url, 2000, &err);
    assert_non_null(c);
    const char *key = "{moved}k";
    unsigned slot = hq_key_slot(key, strlen(key));
    redisReply *r = conn_cmd(c, key, &err, 3, (const char *[]){"SET", key, "1"});
    assert_non_null(r);
    freeReplyObject(r);
    /* The conn's map and connection now point at the old primary. */
    int promoted = failover_slot(slot);
    r = conn_cmd(c, key, &err, 2, (const char *[]){"INCR", key});
    if (!r)
        fail_msg("INCR after failover: %s", err.msg);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 2);
    freeReplyObject(r);
    char name[64], want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%d", promoted);
    assert_string_equal(hq_redis_conn_node_name(c, slot, name, sizeof(name)), want);
    assert_int_equal(exists_on(promoted, key, 0), 1);
    hq_redis_conn_free(c);
}

/* A slot being moved by hand, as redis-cli --cluster reshard does. */
struct migration {
    unsigned slot;
    int from, to, third; /* primaries' ports */
    char from_id[41], to_id[41];
};

/* Sets slot IMPORTING on another primary and MIGRATING on its owner, then
 * MIGRATEs key (already written) over: the owner now answers ASK for it. */
static void migration_begin(struct migration *m, const char *key)
{
    m->slot = hq_key_slot(key, strlen(key));
    struct hq_test_cluster_view *v = view_now();
    int ports[3];
    assert_int_equal(primary_ports(v, ports, 3), 3);
    m->from = owner_port(v, m->slot);
    m->to = ports[0] == m->from ? ports[1] : ports[0];
    for (int k = 0; k < 3; k++)
        if (ports[k] != m->from && ports[k] != m->to)
            m->third = ports[k];
    snprintf(m->from_id, sizeof(m->from_id), "%s", id_of(v, m->from));
    snprintf(m->to_id, sizeof(m->to_id), "%s", id_of(v, m->to));
    free(v);
    redisContext *src = hq_test_cluster_connect(&SIX, hq_test_cluster_node_of_port(&SIX, m->from));
    redisContext *dst = hq_test_cluster_connect(&SIX, hq_test_cluster_node_of_port(&SIX, m->to));
    freeReplyObject(hq_test_cmd(dst, "CLUSTER SETSLOT %u IMPORTING %s", m->slot, m->from_id));
    freeReplyObject(hq_test_cmd(src, "CLUSTER SETSLOT %u MIGRATING %s", m->slot, m->to_id));
    redisReply *r = hq_test_cmd(src, "MIGRATE 127.0.0.1 %d %s 0 5000", m->to, key);
    if (r->type != REDIS_REPLY_STATUS)
        fail_msg("MIGRATE %s: %s", key, r->str ? r->str : "?");
    freeReplyObject(r);
    redisFree(src);
    redisFree(dst);
}

/* Ends it: the slot is the target's (told to target, source, third). */
static void migration_end(const struct migration *m)
{
    const int order[3] = {m->to, m->from, m->third};
    for (int k = 0; k < 3; k++) {
        redisContext *n =
            hq_test_cluster_connect(&SIX, hq_test_cluster_node_of_port(&SIX, order[k]));
        freeReplyObject(hq_test_cmd(n, "CLUSTER SETSLOT %u NODE %s", m->slot, m->to_id));
        redisFree(n);
    }
    assert_true(hq_test_cluster_wait_ok(&SIX, HQ_TEST_CLUSTER_WAIT_MS));
}

static void test_sync_follows_ask_while_a_slot_migrates(void **state)
{
    (void)state;
    char url[200];
    cluster_url(url, sizeof(url), 0);
    struct hq_err err = {0};
    struct hq_redis_conn *c = hq_redis_conn_open(url, 2000, &err);
    assert_non_null(c);
    const char *old = "{ask}old", *fresh = "{ask}new";
    redisReply *r = conn_cmd(c, old, &err, 3, (const char *[]){"SET", old, "v1"});
    assert_non_null(r);
    freeReplyObject(r);
    struct migration m;
    migration_begin(&m, old);
    long long ask0 = errorstat("ASK");
    /* The old owner no longer has the key: it answers ASK. */
    r = conn_cmd(c, old, &err, 2, (const char *[]){"GET", old});
    if (!r)
        fail_msg("GET during migration: %s", err.msg);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "v1");
    freeReplyObject(r);
    r = conn_cmd(c, fresh, &err, 3, (const char *[]){"SET", fresh, "v2"});
    if (!r)
        fail_msg("SET during migration: %s", err.msg);
    freeReplyObject(r);
    assert_int_equal(exists_on(m.to, fresh, 1), 1); /* the source would answer ASK */
    assert_int_equal(errorstat("ASK"), ask0 + 2);
    migration_end(&m);
    /* Now a MOVED: the same conn still finds the key. */
    r = conn_cmd(c, old, &err, 2, (const char *[]){"GET", old});
    if (!r)
        fail_msg("GET after migration: %s", err.msg);
    assert_string_equal(r->str, "v1");
    freeReplyObject(r);
    hq_redis_conn_free(c);
}

static void test_sync_unassigned_slots_fail_clearly_and_the_rest_works(void **state)
{
    (void)state;
    struct hq_test_cluster_view *v = view_now();
    const char *key = "{gap}k";
    unsigned lo = hq_key_slot(key, strlen(key));
    lo = lo > 10 ? lo - 5 : lo; /* a range around the key's slot */
    unsigned hi = lo + 9;
    int owner = owner_port(v, lo);
    assert_int_equal(owner_port(v, hi), owner);
    for (int i = 0; i < SIX.n; i++) {
        redisContext *n = hq_test_cluster_connect(&SIX, i);
        freeReplyObject(hq_test_cmd(n, "CLUSTER DELSLOTSRANGE %u %u", lo, hi));
        redisFree(n);
    }
    char url[200];
    cluster_url(url, sizeof(url), 0);
    struct hq_err err = {0};
    struct hq_redis_conn *c = hq_redis_conn_open(url, 2000, &err);
    if (!c)
        fail_msg("open with a gap: %s", err.msg);
    unsigned slot = hq_key_slot(key, strlen(key));
    redisReply *r = conn_cmd(c, key, &err, 2, (const char *[]){"GET", key});
    assert_null(r);
    char want[128];
    snprintf(want, sizeof(want), "redis: no node serves slot %u (uncovered: %u-%u)", slot, lo, hi);
    assert_string_equal(err.msg, want);
    char name[64];
    assert_string_equal(hq_redis_conn_node_name(c, slot, name, sizeof(name)), "-");
    assert_null(hq_redis_conn_node(c, slot, &err));
    /* Every other primary's slots still work. */
    int ports[3];
    assert_int_equal(primary_ports(v, ports, 3), 3);
    for (int k = 0; k < 3; k++) {
        char other[32];
        key_on(v, ports[k], "gapok", other, sizeof(other));
        r = conn_cmd(c, other, &err, 3, (const char *[]){"SET", other, "x"});
        if (!r)
            fail_msg("SET %s with a gap elsewhere: %s", other, err.msg);
        freeReplyObject(r);
    }
    hq_redis_conn_free(c);
    redisContext *n = hq_test_cluster_connect(&SIX, hq_test_cluster_node_of_port(&SIX, owner));
    freeReplyObject(hq_test_cmd(n, "CLUSTER ADDSLOTSRANGE %u %u", lo, hi));
    redisFree(n);
    assert_true(hq_test_cluster_wait_ok(&SIX, HQ_TEST_CLUSTER_WAIT_MS));
    free(v);
}

static void test_sync_refuses_db_unreachable_seeds_and_a_cluster_serving_nothing(void **state)
{
    (void)state;
    struct hq_err err = {0};
    char url[200];
    snprintf(url, sizeof(url), "redis-cluster://127.0.0.1:%d/1", SIX.node[0].port);
    assert_null(hq_redis_conn_open(url, 2000, &err));
    assert_int_equal(err.code, HQ_EINVAL);
    int d1 = hq_test_free_port(), d2 = hq_test_free_port();
    snprintf(url, sizeof(url), "redis-cluster://127.0.0.1:%d,127.0.0.1:%d", d1, d2);
    assert_null(hq_redis_conn_open(url, 1000, &err));
    char want[64];
    snprintf(want, sizeof(want), "cannot reach 127.0.0.1:%d", d2);
    if (!strstr(err.msg, want) || !strstr(err.msg, "no node of the cluster"))
        fail_msg("unreachable seeds: '%s'", err.msg);
    assert_null(strchr(err.msg, '\n'));
    /* A cluster-enabled node that owns nothing. */
    struct hq_test_redis lone;
    int bus;
    hq_test_cluster_node_start(&lone, &bus, NULL);
    snprintf(url, sizeof(url), "redis-cluster://127.0.0.1:%d", lone.port);
    assert_null(hq_redis_conn_open(url, 1000, &err));
    snprintf(want, sizeof(want), "127.0.0.1:%d serves no slot", lone.port);
    if (!strstr(err.msg, want))
        fail_msg("empty cluster: '%s'", err.msg);
    hq_test_redis_destroy(&lone);
}

/* ---- Async: hq_redis_router ------------------------------------------------------------- */

struct got {
    int calls;
    int null;
    int type;
    long long integer;
    char str[128];
    struct hq_redis_client *cli;
};

static void on_got(struct hq_redis_client *cli, redisReply *reply, void *arg)
{
    struct got *g = arg;
    g->calls++;
    g->cli = cli;
    g->null = reply == NULL;
    if (reply) {
        g->type = reply->type;
        g->integer = reply->integer;
        snprintf(g->str, sizeof(g->str), "%.*s", reply->str ? (int)reply->len : 0,
                 reply->str ? reply->str : "");
    }
}

static int got_called(void *arg)
{
    return ((struct got *)arg)->calls > 0;
}

struct ready_arg {
    struct hq_redis_router *r;
    unsigned slot[3];
    int n;
};

static int all_ready(void *arg)
{
    struct ready_arg *a = arg;
    int ok = 1;
    for (int i = 0; i < a->n; i++)
        ok &= hq_redis_router_ready(a->r, a->slot[i]); /* ask each: it starts what is needed */
    return ok;
}

static int closed_flag;
static void on_router_closed(void *arg)
{
    (*(int *)arg)++;
}

static int is_set(void *arg)
{
    return *(int *)arg != 0;
}

static struct hq_redis_router *router_open(uv_loop_t *loop)
{
    char url[200];
    cluster_url(url, sizeof(url), hq_test_free_port()); /* a dead seed first */
    struct hq_redis_url u;
    struct hq_err err = {0};
    assert_int_equal(hq_redis_url_parse(url, &u, &err), 0);
    struct hq_redis_router *r = hq_redis_router_new(loop, &u, "test", NULL, NULL);
    assert_non_null(r);
    return r;
}

static void router_close(uv_loop_t *loop, struct hq_redis_router *r)
{
    closed_flag = 0;
    hq_redis_router_close(r, on_router_closed, &closed_flag);
    assert_true(hq_test_run_until(loop, is_set, &closed_flag, 10000));
    uv_run(loop, UV_RUN_NOWAIT);
    assert_int_equal(closed_flag, 1);
    assert_int_equal(uv_loop_close(loop), 0); /* every handle of every node client closed */
}

static void await_got(uv_loop_t *loop, struct got *g, int timeout_ms)
{
    assert_true(hq_test_run_until(loop, got_called, g, timeout_ms));
}

static const char *SCRIPT = "return redis.call('INCRBY', KEYS[1], ARGV[1])";

static void test_async_commands_and_a_script_reach_every_primary(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct hq_redis_router *r = router_open(&loop);
    struct hq_test_cluster_view *v = view_now();
    int ports[3];
    assert_int_equal(primary_ports(v, ports, 3), 3);
    char keys[3][32];
    struct ready_arg ra = {.r = r, .n = 3};
    for (int k = 0; k < 3; k++)
        ra.slot[k] = key_on(v, ports[k], "async", keys[k], sizeof(keys[k]));
    /* Not loaded yet: refused, and the callback is never called. */
    struct got early = {0};
    assert_int_equal(hq_redis_router_command(r, ra.slot[0], on_got, &early, 0, 2,
                                             (const char *[]){"GET", keys[0]}, NULL),
                     HQ_EAGAIN);
    assert_true(hq_test_run_until(&loop, all_ready, &ra, 10000));
    struct hq_redis_script s;
    hq_redis_script_init(&s, SCRIPT);
    struct got set[3] = {{0}}, scr[3] = {{0}};
    long long moved0 = errorstat("MOVED");
    for (int k = 0; k < 3; k++) {
        assert_int_equal(hq_redis_router_command(r, ra.slot[k], on_got, &set[k], 0, 3,
                                                 (const char *[]){"SET", keys[k], "40"}, NULL),
                         0);
        assert_int_equal(hq_redis_router_script(r, ra.slot[k], &s, on_got, &scr[k], 1, 2,
                                                (const char *[]){keys[k], "2"}, NULL),
                         0);
    }
    assert_int_equal(hq_redis_router_pending(r), 6);
    for (int k = 0; k < 3; k++) {
        await_got(&loop, &scr[k], 10000);
        assert_int_equal(set[k].calls, 1);
        assert_int_equal(set[k].type, REDIS_REPLY_STATUS);
        assert_int_equal(scr[k].calls, 1);
        if (scr[k].type != REDIS_REPLY_INTEGER)
            fail_msg("script on %d: %s", ports[k], scr[k].str);
        assert_int_equal(scr[k].integer, 42);
        assert_int_equal(exists_on(ports[k], keys[k], 0), 1);
    }
    assert_int_equal(early.calls, 0);
    assert_int_equal(hq_redis_router_pending(r), 0);
    assert_int_equal(errorstat("MOVED"), moved0); /* routed, not redirected */
    /* Close with a command pending: its callback gets NULL, once. */
    struct got blocked = {0};
    char bkey[32];
    unsigned bslot = key_on(v, ports[0], "blk", bkey, sizeof(bkey));
    struct ready_arg rb = {.r = r, .n = 1, .slot = {bslot}};
    assert_true(hq_test_run_until(&loop, all_ready, &rb, 10000));
    assert_int_equal(hq_redis_router_command(r, bslot, on_got, &blocked, 20000, 3,
                                             (const char *[]){"BLPOP", bkey, "10"}, NULL),
                     0);
    router_close(&loop, r);
    assert_int_equal(blocked.calls, 1);
    assert_int_equal(blocked.null, 1);
    free(v);
}

static void test_async_follows_moved_after_a_failover_and_calls_back_once(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct hq_redis_router *r = router_open(&loop);
    const char *key = "{amoved}k";
    unsigned slot = hq_key_slot(key, strlen(key));
    struct ready_arg ra = {.r = r, .n = 1, .slot = {slot}};
    assert_true(hq_test_run_until(&loop, all_ready, &ra, 10000));
    struct got g = {0};
    assert_int_equal(
        hq_redis_router_command(r, slot, on_got, &g, 0, 3, (const char *[]){"SET", key, "7"}, NULL),
        0);
    await_got(&loop, &g, 10000);
    int promoted = failover_slot(slot);
    long long moved0 = errorstat("MOVED");
    /* Still ready: the router's connection to the old primary is up (it is a
     * replica now, answering MOVED). */
    struct hq_redis_script s;
    hq_redis_script_init(&s, SCRIPT);
    struct got cmd = {0}, scr = {0};
    int rc =
        hq_redis_router_command(r, slot, on_got, &cmd, 0, 2, (const char *[]){"INCR", key}, NULL);
    if (rc == HQ_EAGAIN) { /* the old primary dropped us: wait for the new map */
        assert_true(hq_test_run_until(&loop, all_ready, &ra, 10000));
        rc = hq_redis_router_command(r, slot, on_got, &cmd, 0, 2, (const char *[]){"INCR", key},
                                     NULL);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(
        hq_redis_router_script(r, slot, &s, on_got, &scr, 1, 2, (const char *[]){key, "10"}, NULL),
        0);
    await_got(&loop, &scr, 10000);
    if (cmd.type != REDIS_REPLY_INTEGER)
        fail_msg("INCR after failover: %s", cmd.null ? "(null)" : cmd.str);
    assert_int_equal(cmd.integer, 8);
    if (scr.type != REDIS_REPLY_INTEGER)
        fail_msg("script after failover: %s", scr.null ? "(null)" : scr.str);
    assert_int_equal(scr.integer, 18);
    assert_non_null(cmd.cli);
    /* Nothing else arrives later: exactly one call each. */
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(cmd.calls, 1);
    assert_int_equal(scr.calls, 1);
    assert_int_equal(hq_redis_router_pending(r), 0);
    assert_int_equal(exists_on(promoted, key, 0), 1);
    assert_true(errorstat("MOVED") > moved0); /* the path taken was a redirect */
    router_close(&loop, r);
}

static void test_async_follows_ask_while_a_slot_migrates(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct hq_redis_router *r = router_open(&loop);
    const char *old = "{aask}old", *fresh = "{aask}new";
    unsigned slot = hq_key_slot(old, strlen(old));
    struct ready_arg ra = {.r = r, .n = 1, .slot = {slot}};
    assert_true(hq_test_run_until(&loop, all_ready, &ra, 10000));
    struct got g = {0};
    assert_int_equal(hq_redis_router_command(r, slot, on_got, &g, 0, 3,
                                             (const char *[]){"SET", old, "v1"}, NULL),
                     0);
    await_got(&loop, &g, 10000);
    struct migration m;
    migration_begin(&m, old);
    long long ask0 = errorstat("ASK");
    struct hq_redis_script s;
    hq_redis_script_init(&s, SCRIPT);
    struct got get = {0}, scr = {0};
    assert_int_equal(
        hq_redis_router_command(r, slot, on_got, &get, 0, 2, (const char *[]){"GET", old}, NULL),
        0);
    assert_int_equal(
        hq_redis_router_script(r, slot, &s, on_got, &scr, 1, 2, (const char *[]){fresh, "5"}, NULL),
        0);
    await_got(&loop, &get, 10000);
    await_got(&loop, &scr, 10000);
    if (get.type != REDIS_REPLY_STRING)
        fail_msg("GET during migration: %s", get.null ? "(null)" : get.str);
    assert_string_equal(get.str, "v1");
    if (scr.type != REDIS_REPLY_INTEGER)
        fail_msg("script during migration: %s", scr.null ? "(null)" : scr.str);
    assert_int_equal(scr.integer, 5);
    assert_int_equal(exists_on(m.to, fresh, 1), 1);
    assert_true(errorstat("ASK") >= ask0 + 2);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(get.calls, 1);
    assert_int_equal(scr.calls, 1);
    migration_end(&m);
    router_close(&loop, r);
}

/* CLUSTER SLOTS calls answered so far by the running nodes but skip_port
 * (INFO commandstats). */
static long long cluster_slots_calls(int skip_port)
{
    long long sum = 0;
    for (int i = 0; i < SIX.n; i++) {
        if (SIX.node[i].pid <= 0 || SIX.node[i].port == skip_port)
            continue;
        redisContext *c = hq_test_cluster_connect(&SIX, i);
        redisReply *r = hq_test_cmd(c, "INFO commandstats");
        const char *p = r->str ? strstr(r->str, "cmdstat_cluster|slots:calls=") : NULL;
        if (p)
            sum += atoll(p + strlen("cmdstat_cluster|slots:calls="));
        freeReplyObject(r);
        redisFree(c);
    }
    return sum;
}

static void on_wake(uv_timer_t *t)
{
    (void)t;
}

static void
test_async_killed_primary_nulls_pending_others_go_on_and_the_promoted_replica_takes_over(
    void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct hq_redis_router *r = router_open(&loop);
    struct hq_test_cluster_view *v = view_now();
    int ports[3];
    assert_int_equal(primary_ports(v, ports, 3), 3);
    char keys[3][32];
    struct ready_arg ra = {.r = r, .n = 3};
    for (int k = 0; k < 3; k++)
        ra.slot[k] = key_on(v, ports[k], "kill", keys[k], sizeof(keys[k]));
    free(v);
    assert_true(hq_test_run_until(&loop, all_ready, &ra, 10000));
    /* A command pending on the victim when it dies. */
    struct got blocked = {0};
    assert_int_equal(hq_redis_router_command(r, ra.slot[0], on_got, &blocked, 30000, 3,
                                             (const char *[]){"BLPOP", keys[0], "20"}, NULL),
                     0);
    uv_run(&loop, UV_RUN_NOWAIT); /* sent */
    unsigned long reconnects0 = hq_redis_router_reconnects(r);
    long long slots0 = cluster_slots_calls(ports[0]);
    int victim = hq_test_cluster_node_of_port(&SIX, ports[0]);
    hq_test_redis_stop(&SIX.node[victim], 1);
    int64_t t0 = hq_test_now_ms();
    await_got(&loop, &blocked, 10000);
    assert_int_equal(blocked.null, 1);
    /* The other primaries' slots keep working meanwhile. */
    for (int k = 1; k < 3; k++) {
        struct got g = {0};
        assert_int_equal(hq_redis_router_command(r, ra.slot[k], on_got, &g, 0, 3,
                                                 (const char *[]){"SET", keys[k], "y"}, NULL),
                         0);
        await_got(&loop, &g, 10000);
        assert_int_equal(g.type, REDIS_REPLY_STATUS);
    }
    /* Poll ready() as a worker would, each loop turn, until the promoted
     * replica serves the victim's slot; count the turns. */
    uv_timer_t wake;
    uv_timer_init(&loop, &wake);
    uv_timer_start(&wake, on_wake, 20, 20);
    long turns = 0;
    int64_t deadline = t0 + HQ_TEST_CLUSTER_WAIT_MS;
    while (!hq_redis_router_ready(r, ra.slot[0]) && hq_test_now_ms() < deadline) {
        uv_run(&loop, UV_RUN_ONCE);
        turns++;
    }
    int64_t down_ms = hq_test_now_ms() - t0;
    uv_close((uv_handle_t *)&wake, NULL);
    assert_true(hq_redis_router_ready(r, ra.slot[0]));
    long long slots_calls = cluster_slots_calls(ports[0]) - slots0;
    fprintf(stderr, "# down %lld ms: %ld loop turns, %lld CLUSTER SLOTS, %lu reconnects\n",
            (long long)down_ms, turns, slots_calls, hq_redis_router_reconnects(r) - reconnects0);
    /* The 20 ms wake-up gives 50 turns/s; replies and the router's own
     * timers add some. A busy loop would be thousands. */
    assert_true(turns <= down_ms / 5 + 50);
    /* Refreshes are rate-limited (250 ms), whoever asks. */
    assert_true(slots_calls <= down_ms / 200 + 10);
    assert_true(hq_redis_router_reconnects(r) > reconnects0);
    struct got g = {0};
    assert_int_equal(hq_redis_router_command(r, ra.slot[0], on_got, &g, 0, 3,
                                             (const char *[]){"SET", keys[0], "z"}, NULL),
                     0);
    await_got(&loop, &g, 10000);
    assert_int_equal(g.type, REDIS_REPLY_STATUS);
    v = view_now();
    assert_int_equal(exists_on(owner_port(v, ra.slot[0]), keys[0], 0), 1);
    assert_int_not_equal(owner_port(v, ra.slot[0]), ports[0]);
    free(v);
    router_close(&loop, r);
}

static int six_setup(void **state)
{
    (void)state;
    hq_test_cluster_start(&SIX, 3, 1, NULL);
    return 0;
}

static int six_teardown(void **state)
{
    (void)state;
    hq_test_cluster_destroy(&SIX);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_dead_first_seed_then_each_primarys_slots_go_to_that_primary),
        cmocka_unit_test(test_sync_refuses_db_unreachable_seeds_and_a_cluster_serving_nothing),
        cmocka_unit_test(test_sync_follows_moved_after_a_graceful_failover),
        cmocka_unit_test(test_sync_follows_ask_while_a_slot_migrates),
        cmocka_unit_test(test_sync_unassigned_slots_fail_clearly_and_the_rest_works),
        cmocka_unit_test(test_async_commands_and_a_script_reach_every_primary),
        cmocka_unit_test(test_async_follows_moved_after_a_failover_and_calls_back_once),
        cmocka_unit_test(test_async_follows_ask_while_a_slot_migrates),
        /* Last: it leaves a primary dead. */
        cmocka_unit_test(
            test_async_killed_primary_nulls_pending_others_go_on_and_the_promoted_replica_takes_over),
    };
    return cmocka_run_group_tests_name("cluster router", tests, six_setup, six_teardown);
}
