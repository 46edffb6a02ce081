/* The worker on a partitioned layout (P = 4 on one Redis): it reads every
 * partition's stream, records each entry's outcome in its own partition, gives
 * events without an id a webhook-id naming the partition, and an untagged
 * worker pauses for a migration, reports itself, and resumes on the new
 * layout without a restart. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/layout.h"
#include "common/layout_store.h"
#include "common/redis_conn.h"
#include "tests/harness/worker_env.h"

static struct wenv W;

/* Writes the config of a P-partition layout and returns it. */
static void make_layout(unsigned P, struct hq_layout *L)
{
    struct hq_err err = {0};
    struct hq_redis_conn *c = hq_redis_conn_open(W.redis.url, 2000, &err);
    if (!c)
        fail_msg("%s", err.msg);
    if (hq_layout_create(c, "hookq", P, L, &err) != 0)
        fail_msg("%s", err.msg);
    hq_redis_conn_free(c);
}

/* XADDs an event to partition p's stream. */
static void produce_to(const struct hq_layout *L, unsigned p, const char *type, const char *id,
                       char *entry, size_t n)
{
    char key[HQ_KEY_MAX];
    hq_key_events(L->part[p].base, key, sizeof(key));
    redisReply *r = id ? redisCommand(W.c, "XADD %s * type %s payload {} id %s", key, type, id)
                       : redisCommand(W.c, "XADD %s * type %s payload {}", key, type);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    if (entry)
        snprintf(entry, n, "%s", r->str);
    freeReplyObject(r);
}

static long long cmd_int(const char *fmt, const char *key)
{
    redisReply *r = redisCommand(W.c, fmt, key);
    assert_non_null(r);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return v;
}

struct parts_arg {
    const struct hq_layout *L;
};

/* Every partition's stream is empty and nothing is pending in its group. */
static int all_parts_settled(void *arg)
{
    const struct hq_layout *L = ((struct parts_arg *)arg)->L;
    for (unsigned i = 0; i < L->nparts; i++) {
        char key[HQ_KEY_MAX];
        hq_key_events(L->part[i].base, key, sizeof(key));
        if (cmd_int("XLEN %s", key) != 0)
            return 0;
        redisReply *r = redisCommand(W.c, "XPENDING %s workers", key);
        long long pending = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                                    r->element[0]->type == REDIS_REPLY_INTEGER
                                ? r->element[0]->integer
                                : -1;
        if (r)
            freeReplyObject(r);
        if (pending != 0)
            return 0;
    }
    return 1;
}

/* The lag of partition p's group as Redis reports it, -1 for nil. */
static long redis_lag(const struct hq_layout *L, unsigned p)
{
    char key[HQ_KEY_MAX];
    hq_key_events(L->part[p].base, key, sizeof(key));
    redisReply *r = redisCommand(W.c, "XINFO GROUPS %s", key);
    long lag = -2;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        redisReply *g = r->element[0];
        for (size_t k = 0; k + 1 < g->elements; k += 2)
            if (strcmp(g->element[k]->str, "lag") == 0)
                lag = g->element[k + 1]->type == REDIS_REPLY_INTEGER
                          ? (long)g->element[k + 1]->integer
                          : -1;
    }
    if (r)
        freeReplyObject(r);
    return lag;
}

struct metrics_arg {
    const struct hq_layout *L;
    const char *url;
};

static int partition_lags_match(void *arg)
{
    struct metrics_arg *ma = arg;
    struct hq_buf b;
    hq_buf_init(&b, 1 << 20);
    int ok = wenv_http_get(ma->url, &b) == 200;
    for (unsigned p = 0; ok && p < ma->L->nparts; p++) {
        char line[64];
        snprintf(line, sizeof(line), "hookq_partition_lag{partition=\"%u\"} ", p);
        const char *at = strstr(b.p, line);
        ok = at && atol(at + strlen(line)) == redis_lag(ma->L, p);
    }
    hq_buf_free(&b);
    return ok;
}

static void header_of(size_t i, const char *name, char *out, size_t n)
{
    pthread_mutex_lock(&W.rcv.mu);
    assert_true(i < W.rcv.nreqs);
    int rc = hq_test_request_header(&W.rcv.reqs[i], name, out, n);
    pthread_mutex_unlock(&W.rcv.mu);
    assert_int_equal(rc, 0);
}

static void stop_worker(pid_t pid)
{
    int st = hq_test_kill_wait(pid, SIGTERM, 20000);
    if (st != 0)
        wenv_dump_log(&W);
    assert_int_equal(st, 0);
}

static void test_a_worker_delivers_every_partition_once(void **state)
{
    (void)state;
    struct hq_layout L;
    make_layout(4, &L);
    struct hq_endpoint a;
    W.registry = L.reg;
    wenv_endpoint_at(&W, "/a", "*", 0, &a);
    /* 50 events per partition: half with an id, half without, so the
     * entry ids (one per partition's stream) repeat across partitions. */
    for (unsigned p = 0; p < L.nparts; p++)
        for (int k = 0; k < 50; k++) {
            char id[32];
            snprintf(id, sizeof(id), "ord-%u-%d", p, k);
            produce_to(&L, p, "order.created", k % 2 ? id : NULL, NULL, 0);
        }
    char addr[64], murl[128];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", hq_test_free_port());
    snprintf(murl, sizeof(murl), "http://%s/metrics", addr);
    const char *extra[] = {"--concurrency", "16", "--metrics", addr, NULL};
    pid_t pid = wenv_worker(&W, extra, NULL);
    struct count_arg ca = {&W.rcv, NULL, 200};
    wenv_wait(&W, received_at_least, &ca, 30000, "200 deliveries");
    struct parts_arg pa = {&L};
    wenv_wait(&W, all_parts_settled, &pa, 10000, "every partition acknowledged");
    /* Each partition's lag is exported as Redis reports it (XINFO GROUPS;
     * nil, which Redis 7.0 gives after deletions, as -1): awaited, since the
     * worker samples every 5 s. */
    struct metrics_arg ma = {&L, murl};
    wenv_wait(&W, partition_lags_match, &ma, 15000, "hookq_partition_lag as XINFO GROUPS says");
    stop_worker(pid);
    assert_true(wenv_log_has(&W, "partitions=4"));
    /* Each webhook-id once; id-less events name their partition. */
    size_t n = hq_test_receiver_count(&W.rcv);
    assert_int_equal(n, 200);
    char(*ids)[128] = calloc(n, 128);
    int derived[4] = {0};
    for (size_t i = 0; i < n; i++) {
        header_of(i, "webhook-id", ids[i], 128);
        unsigned p;
        if (sscanf(ids[i], "evt_p%u_", &p) == 1) {
            assert_true(p < 4);
            derived[p]++;
        } else {
            assert_int_equal(strncmp(ids[i], "ord-", 4), 0);
        }
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(ids[i], ids[j]);
    }
    for (int p = 0; p < 4; p++)
        assert_int_equal(derived[p], 25);
    /* Attempt records went to each partition's own keys. */
    struct hq_err err = {0};
    redisReply *att = hq_attempts_read(W.c, L.part[2].base, "ord-2-1", &err);
    assert_non_null(att);
    assert_int_equal(att->elements, 1);
    freeReplyObject(att);
    att = hq_attempts_read(W.c, "hookq", "ord-2-1", &err);
    assert_non_null(att);
    assert_int_equal(att->elements, 0);
    freeReplyObject(att);
    assert_int_equal(cmd_int("EXISTS %s", "hookq:attempts"), 0);
    free(ids);
    hq_endpoint_free(&a);
    W.registry = NULL;
    hq_layout_free(&L);
}

static void test_dead_letters_stay_in_their_partition(void **state)
{
    (void)state;
    struct hq_layout L;
    make_layout(4, &L);
    struct hq_endpoint a;
    W.registry = L.reg;
    wenv_endpoint_at(&W, "/s/400", "*", 1, &a);
    produce_to(&L, 1, "t", NULL, NULL, 0);
    produce_to(&L, 3, "t", NULL, NULL, 0);
    produce_to(&L, 3, "t", NULL, NULL, 0);
    pid_t pid = wenv_worker(&W, NULL, NULL);
    char d1[HQ_KEY_MAX], d3[HQ_KEY_MAX];
    hq_key_dead(L.part[1].base, d1, sizeof(d1));
    hq_key_dead(L.part[3].base, d3, sizeof(d3));
    char cmd3[HQ_KEY_MAX + 8];
    snprintf(cmd3, sizeof(cmd3), "XLEN %s", d3);
    struct redis_arg ra = {&W, cmd3, 2};
    wenv_wait(&W, redis_int_is, &ra, 20000, "two dead letters in partition 3");
    char cmd1[HQ_KEY_MAX + 8];
    snprintf(cmd1, sizeof(cmd1), "XLEN %s", d1);
    struct redis_arg ra1 = {&W, cmd1, 1};
    wenv_wait(&W, redis_int_is, &ra1, 20000, "one dead letter in partition 1");
    char dead0[HQ_KEY_MAX];
    hq_key_dead(L.part[0].base, dead0, sizeof(dead0));
    assert_int_equal(cmd_int("XLEN %s", dead0), 0);
    assert_int_equal(cmd_int("EXISTS %s", "hookq:dead"), 0);
    char evid[128];
    stream_field(&W, d3, 0, "event_id", evid, sizeof(evid));
    assert_int_equal(strncmp(evid, "evt_p3_", 7), 0);
    stop_worker(pid);
    hq_endpoint_free(&a);
    W.registry = NULL;
    hq_layout_free(&L);
}

struct member_arg {
    const char *key, *member;
};

static int is_member(void *arg)
{
    struct member_arg *m = arg;
    redisReply *r = redisCommand(W.c, "SISMEMBER %s %s", m->key, m->member);
    int yes = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (r)
        freeReplyObject(r);
    return yes;
}

/* Moves every untagged key to its tagged name, as `hookq migrate` does. */
static void rename_untagged(const struct hq_layout *L)
{
    redisReply *r = redisCommand(W.c, "KEYS hookq:*");
    assert_non_null(r);
    for (size_t i = 0; i < r->elements; i++) {
        const char *k = r->element[i]->str + strlen("hookq:");
        if (k[0] == '{')
            continue;
        int part = strncmp(k, "events", 6) == 0 || strncmp(k, "retry", 5) == 0 ||
                   strncmp(k, "dead", 4) == 0 || strncmp(k, "att:", 4) == 0;
        redisReply *x = redisCommand(W.c, "RENAME %s %s:%s", r->element[i]->str,
                                     part ? L->part[0].base : L->reg, k);
        assert_non_null(x);
        assert_int_not_equal(x->type, REDIS_REPLY_ERROR);
        freeReplyObject(x);
    }
    freeReplyObject(r);
}

static void test_an_untagged_worker_pauses_for_a_migration_and_resumes(void **state)
{
    (void)state;
    struct hq_endpoint a;
    wenv_endpoint_at(&W, "/m", "*", 0, &a);
    wenv_produce(&W, "t", "{}", "before-1", NULL, NULL, 0);
    const char *extra[] = {"--consumer", "w-mig", NULL};
    pid_t pid = wenv_worker(&W, extra, NULL);
    struct count_arg ca = {&W.rcv, NULL, 1};
    wenv_wait(&W, received_at_least, &ca, 20000, "the first delivery");
    /* What `hookq migrate` writes first: the target layout, state=migrating. */
    struct hq_layout L;
    struct hq_err err = {0};
    assert_int_equal(hq_layout_init_tagged(&L, "hookq", 2, &err), 0);
    char tags[64], cfg[HQ_KEY_MAX], paused[HQ_KEY_MAX];
    hq_layout_tags_join(&L, tags, sizeof(tags));
    hq_key_config("hookq", cfg, sizeof(cfg));
    hq_key_migrate_paused("hookq", paused, sizeof(paused));
    freeReplyObject(
        redisCommand(W.c, "HSET %s version 1 partitions 2 tags %s state migrating", cfg, tags));
    struct member_arg m = {paused, "w-mig"};
    wenv_wait(&W, is_member, &m, 10000, "the worker reports itself paused");
    rename_untagged(&L);
    freeReplyObject(redisCommand(W.c, "HDEL %s state", cfg));
    /* The same process, on the new layout: events in both partitions. */
    produce_to(&L, 0, "t", "after-0", NULL, 0);
    produce_to(&L, 1, "t", "after-1", NULL, 0);
    ca.want = 3;
    wenv_wait(&W, received_at_least, &ca, 20000, "deliveries after the migration");
    struct parts_arg pa = {&L};
    wenv_wait(&W, all_parts_settled, &pa, 10000, "both partitions acknowledged");
    assert_int_equal(kill(pid, 0), 0); /* not restarted: still the first process */
    assert_true(wenv_log_has(&W, "partitions=2"));
    stop_worker(pid);
    assert_int_equal(hq_test_receiver_count(&W.rcv), 3);
    hq_endpoint_free(&a);
    W.registry = NULL;
    hq_layout_free(&L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        WENV_TEST(test_a_worker_delivers_every_partition_once, &W),
        WENV_TEST(test_dead_letters_stay_in_their_partition, &W),
        WENV_TEST(test_an_untagged_worker_pauses_for_a_migration_and_resumes, &W),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
