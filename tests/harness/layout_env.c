/* See tests/harness/layout_env.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "common/keys.h"
#include "common/layout_store.h"
#include "common/partition.h"
#include "tests/harness/layout_env.h"

#define TL_PREFIX "hookq"

enum hq_tl_kind hq_tl_kind_env(void)
{
    const char *v = getenv("HQ_TEST_LAYOUT");
    if (!v || !*v || strcmp(v, "p1") == 0)
        return HQ_TL_P1;
    if (strcmp(v, "p4") == 0)
        return HQ_TL_P4;
    if (strcmp(v, "cluster") == 0)
        return HQ_TL_CLUSTER;
    fail_msg("HQ_TEST_LAYOUT=%s: want p1, p4 or cluster", v);
    return HQ_TL_P1; /* not reached */
}

unsigned hq_tl_parts_of(enum hq_tl_kind k)
{
    return k == HQ_TL_P4 ? HQ_TL_P4_PARTS : k == HQ_TL_CLUSTER ? HQ_TL_CLUSTER_PARTS : 1;
}

const char *hq_tl_kind_name(enum hq_tl_kind k)
{
    return k == HQ_TL_P4 ? "p4" : k == HQ_TL_CLUSTER ? "cluster" : "p1";
}

void hq_tl_single(struct hq_tl *t, enum hq_tl_kind k, const char *url)
{
    memset(t, 0, sizeof(*t));
    t->kind = k;
    snprintf(t->url, sizeof(t->url), "%s", url);
    struct hq_err err = {0};
    if (k == HQ_TL_P1) {
        if (hq_layout_init_untagged(&t->L, TL_PREFIX, &err) != 0)
            fail_msg("layout: %s", err.msg);
        return;
    }
    struct hq_redis_conn *c = hq_redis_conn_open(url, 2000, &err);
    if (!c)
        fail_msg("layout: %s", err.msg);
    if (hq_layout_create(c, TL_PREFIX, HQ_TL_P4_PARTS, &t->L, &err) != 0)
        fail_msg("layout create: %s", err.msg);
    hq_redis_conn_free(c);
}

/* Runs `hookq worker` on the cluster URL and waits (bounded) for it to exit:
 * 1 when it said this build cannot route redis-cluster://. */
static int worker_refuses_cluster(const char *url, const char *log)
{
    const char *args[] = {"worker", "--redis-url", url, "--log-level", "info", NULL};
    static const char *const env[] = {"HOOKQ_ALLOW_PRIVATE=1", NULL};
    pid_t pid = hq_test_spawn(args, env, log);
    int64_t until = hq_test_now_ms() + 10000;
    int st = 0;
    pid_t got = 0;
    while ((got = waitpid(pid, &st, WNOHANG)) == 0 && hq_test_now_ms() < until) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL); /* polling the child's exit, bounded above */
    }
    if (got == 0) { /* still running: it took the URL */
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        return 0;
    }
    return hq_test_log_count(log, NULL, "not supported by this build") > 0;
}

void hq_tl_cluster(struct hq_tl *t)
{
    char log[320];
    memset(t, 0, sizeof(*t));
    t->kind = HQ_TL_CLUSTER;
    t->cluster = calloc(1, sizeof(*t->cluster));
    assert_non_null(t->cluster);
    hq_test_cluster_start(t->cluster, HQ_TL_CLUSTER_PRIM, 1, NULL);
    snprintf(log, sizeof(log), "%s/worker.log", t->cluster->node[0].dir);
    hq_test_cluster_url(t->cluster, t->url, sizeof(t->url));
    struct hq_err err = {0};
    t->conn = hq_redis_conn_open(t->url, 2000, &err);
    if (!t->conn) {
        char msg[sizeof(err.msg)];
        snprintf(msg, sizeof(msg), "%s", err.msg);
        if (strstr(msg, "not supported by this build") && worker_refuses_cluster(t->url, log)) {
            hq_test_log_print(log, "worker");
            print_message("SKIP: HQ_TEST_LAYOUT=cluster: `hookq worker --redis-url "
                          "redis-cluster://...` is not supported by this build (%s)\n",
                          msg);
            hq_tl_free(t);
            exit(HQ_TL_SKIP);
        }
        fail_msg("cluster: %s", msg);
    }
    if (hq_layout_create(t->conn, TL_PREFIX, HQ_TL_CLUSTER_PARTS, &t->L, &err) != 0)
        fail_msg("layout create: %s", err.msg);
}

void hq_tl_free(struct hq_tl *t)
{
    hq_layout_free(&t->L);
    if (t->conn)
        hq_redis_conn_free(t->conn);
    t->conn = NULL;
    if (t->cluster) {
        hq_test_cluster_destroy(t->cluster);
        free(t->cluster);
    }
    t->cluster = NULL;
}

unsigned hq_tl_nparts(const struct hq_tl *t)
{
    return t ? t->L.nparts : 1;
}

const char *hq_tl_base(const struct hq_tl *t, const char *prefix, unsigned i)
{
    return t ? t->L.part[i].base : prefix;
}

const char *hq_tl_reg(const struct hq_tl *t, const char *prefix)
{
    return t ? t->L.reg : prefix;
}

static redisContext *tl_slot_node(struct hq_tl *t, redisContext *c, unsigned slot)
{
    if (!t || !t->conn)
        return c;
    struct hq_err err = {0};
    redisContext *n = hq_redis_conn_node(t->conn, slot, &err);
    if (!n)
        fail_msg("cluster: %s", err.msg);
    return n;
}

redisContext *hq_tl_node(struct hq_tl *t, redisContext *c, unsigned i)
{
    return tl_slot_node(t, c, t ? t->L.part[i].slot : 0);
}

redisContext *hq_tl_reg_node(struct hq_tl *t, redisContext *c)
{
    return tl_slot_node(t, c, t ? t->L.reg_slot : 0);
}

unsigned hq_tl_part_for(struct hq_tl *t, const char *id)
{
    if (!t)
        return 0;
    return hq_layout_partition_for(&t->L, id, id ? strlen(id) : 0, t->rr++);
}

static long long tl_int(redisContext *c, const char *cmd, const char *key)
{
    redisReply *r = redisCommand(c, "%s %s", cmd, key);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    return n;
}

long long hq_tl_sum(struct hq_tl *t, redisContext *c, const char *prefix, const char *cmd,
                    hq_tl_key_fn keyfn)
{
    long long sum = 0;
    for (unsigned i = 0; i < hq_tl_nparts(t); i++) {
        char key[HQ_KEY_MAX];
        assert_true(keyfn(hq_tl_base(t, prefix, i), key, sizeof(key)) >= 0);
        long long n = tl_int(hq_tl_node(t, c, i), cmd, key);
        if (n < 0)
            return -1; /* as one server would say: an error reply or a lost connection */
        sum += n;
    }
    return sum;
}

long long hq_tl_pending(struct hq_tl *t, redisContext *c, const char *prefix)
{
    long long sum = 0;
    hq_tl_key_fn streams[] = {hq_key_events, hq_key_retries}; /* both lanes */
    for (unsigned i = 0; i < hq_tl_nparts(t); i++)
        for (int s = 0; s < 2; s++) {
            char key[HQ_KEY_MAX];
            assert_true(streams[s](hq_tl_base(t, prefix, i), key, sizeof(key)) >= 0);
            redisReply *r = redisCommand(hq_tl_node(t, c, i), "XPENDING %s workers", key);
            if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
                r->element[0]->type == REDIS_REPLY_INTEGER)
                sum += r->element[0]->integer;
            if (r)
                freeReplyObject(r);
        }
    return sum;
}

unsigned hq_tl_nodes_want(const struct hq_tl *t)
{
    return t && t->conn ? (unsigned)hq_redis_conn_primaries(t->conn) : 1;
}

long long hq_tl_entries_added(struct hq_tl *t, redisContext *c, const char *prefix, unsigned i,
                              hq_tl_key_fn keyfn)
{
    char key[HQ_KEY_MAX];
    assert_true(keyfn(hq_tl_base(t, prefix, i), key, sizeof(key)) >= 0);
    redisReply *r = redisCommand(hq_tl_node(t, c, i), "XINFO STREAM %s", key);
    long long added = 0;
    if (r && r->type == REDIS_REPLY_ARRAY)
        for (size_t j = 0; j + 1 < r->elements; j += 2)
            if (r->element[j]->type == REDIS_REPLY_STRING &&
                strcmp(r->element[j]->str, "entries-added") == 0 &&
                r->element[j + 1]->type == REDIS_REPLY_INTEGER)
                added = r->element[j + 1]->integer;
    if (r)
        freeReplyObject(r);
    return added;
}

unsigned hq_tl_parts_used(struct hq_tl *t, redisContext *c, const char *prefix, unsigned *nodes)
{
    unsigned used = 0, nnodes = 0;
    char seen[HQ_TL_CLUSTER_PARTS * 2][64]; /* node names of the used partitions */
    for (unsigned i = 0; i < hq_tl_nparts(t); i++) {
        /* Either lane: a partition fed only through its retry lane is used too. */
        if (hq_tl_entries_added(t, c, prefix, i, hq_key_events) <= 0 &&
            hq_tl_entries_added(t, c, prefix, i, hq_key_retries) <= 0)
            continue;
        used++;
        char buf[64];
        const char *name =
            t && t->conn ? hq_redis_conn_node_name(t->conn, t->L.part[i].slot, buf, sizeof(buf))
                         : "single";
        unsigned k = 0;
        while (k < nnodes && strcmp(seen[k], name) != 0)
            k++;
        if (k == nnodes && nnodes < sizeof(seen) / sizeof(seen[0]))
            snprintf(seen[nnodes++], sizeof(seen[0]), "%s", name);
    }
    if (nodes)
        *nodes = nnodes;
    return used;
}

int hq_tl_untagged_keys(struct hq_tl *t, redisContext *c, const char *prefix)
{
    static const hq_tl_key_fn fns[] = {hq_key_events,     hq_key_retries, hq_key_retry,
                                       hq_key_retry_data, hq_key_dead,    hq_key_endpoints};
    int n = 0;
    for (size_t k = 0; k < sizeof(fns) / sizeof(fns[0]); k++) {
        char key[HQ_KEY_MAX];
        assert_true(fns[k](prefix, key, sizeof(key)) >= 0);
        /* An untagged key's slot is CRC16(key) mod 16384: hq_partition_of_id with P = 16384. */
        unsigned slot = hq_partition_of_id(key, strlen(key), 16384);
        long long e = tl_int(tl_slot_node(t, c, slot), "EXISTS", key);
        if (e != 0)
            print_message("untagged key %s: EXISTS says %lld\n", key, e);
        n += e != 0;
    }
    return n;
}

void hq_tl_assert(struct hq_tl *t, redisContext *c, const char *prefix, const char *label)
{
    if (!t || t->kind == HQ_TL_P1)
        return;
    unsigned nodes = 0, used = hq_tl_parts_used(t, c, prefix, &nodes);
    int untagged = hq_tl_untagged_keys(t, c, prefix);
    print_message("[%s] layout %s: P=%u, %u partition streams on %u of %u nodes received entries, "
                  "%d untagged keys\n",
                  label, hq_tl_kind_name(t->kind), t->L.nparts, used, nodes, hq_tl_nodes_want(t),
                  untagged);
    /* By the kind asked for, not by t->L: a fixture that fell back to the
     * untagged layout must fail here, not skip the check. */
    if (!t->L.tagged || t->L.nparts != hq_tl_parts_of(t->kind) || untagged != 0 || used < 2 ||
        nodes < hq_tl_nodes_want(t))
        fail_msg("[%s] the run did not use the %s layout (see the line above)", label,
                 hq_tl_kind_name(t->kind));
}
