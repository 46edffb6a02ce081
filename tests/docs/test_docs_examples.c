/* Runs the producer examples of docs/wire-format.md: each fenced block after a
 * "<!-- tested: LANG -->" marker is written to a file and run with REDIS_URL
 * pointing at a private redis-server; then every entry it wrote must decode
 * with hookq's decoder into the event the page promises (type invoice.paid,
 * id evt_in_1, the exact payload). The "partitioned" examples run twice: on
 * the untagged single Redis (they must write <prefix>:events) and after a
 * P = 4 layout was created (they must write the stream of partition
 * CRC16("evt_in_1") mod 4 and nothing else), and once more against a real
 * Redis Cluster of 3 primaries (REDIS_URL=redis-cluster://..., so they must
 * pick the cluster client; hookq creates P = 6 there): the entry must be in
 * partition CRC16("evt_in_1") mod 6's stream on the node owning its slot, and
 * no stream on any node may hold anything else. A language whose interpreter
 * or packages are absent is skipped with a message (cmocka skip()), never
 * failed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/event.h"
#include "common/keys.h"
#include "common/layout_store.h"
#include "common/limits.h"
#include "common/partition.h"
#include "common/redis_conn.h"
#include "tests/harness/cluster_env.h"
#include "tests/harness/hq_test.h"

#define DOC_PATH     HQ_TEST_SRC "/docs/wire-format.md"
#define NODE_DIR     HQ_TEST_BUILD "/tests/docs/node"
#define EXAMPLE_MAX  16384 /* bytes of one example block */
#define WANT_PAYLOAD "{\"id\":\"in_1\",\"amount\":4200}"

static struct hq_test_redis redis;
static struct hq_test_cluster cluster; /* started by the first cluster test (cluster.n > 0) */
static char cluster_url[512];

/* Copies the fenced block that follows "<!-- tested: lang -->" into out.
 * Returns 0, or -1 when the page has no such block. */
static int extract_example(const char *lang, char *out, size_t cap)
{
    FILE *f = fopen(DOC_PATH, "r");
    assert_non_null(f);
    char marker[64], line[1024];
    snprintf(marker, sizeof(marker), "<!-- tested: %s -->", lang);
    int state = 0; /* 0 looking for the marker, 1 for the fence, 2 inside */
    size_t n = 0;
    out[0] = '\0';
    while (fgets(line, sizeof(line), f)) {
        if (state == 0 && strncmp(line, marker, strlen(marker)) == 0) {
            state = 1;
        } else if (state == 1 && strncmp(line, "```", 3) == 0) {
            state = 2;
        } else if (state == 2 && strncmp(line, "```", 3) == 0) {
            fclose(f);
            return 0;
        } else if (state == 2) {
            size_t k = strlen(line);
            assert_true(n + k < cap);
            memcpy(out + n, line, k + 1);
            n += k;
        }
    }
    fclose(f);
    return -1;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Runs a shell command line; returns its exit status (or -1). */
static int run(const char *cmd)
{
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

/* Every entry in stream key (on the server of c) must be the documented
 * event; deletes the key and returns how many entries it held. */
static size_t check_entries(redisContext *c, const char *key)
{
    redisReply *r = hq_test_cmd(c, "XRANGE %s - +", key);
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *kv = r->element[i]->element[1];
        struct hq_field f[HQ_EVENT_FIELDS_MAX];
        size_t nf = kv->elements / 2;
        assert_true(nf <= HQ_EVENT_FIELDS_MAX);
        for (size_t k = 0; k < nf; k++)
            f[k] = (struct hq_field){kv->element[2 * k]->str, kv->element[2 * k]->len,
                                     kv->element[2 * k + 1]->str, kv->element[2 * k + 1]->len};
        struct hq_event ev;
        struct hq_err err = {0};
        int rc = hq_event_decode_fields(f, nf, HQ_PAYLOAD_MAX_DEFAULT, &ev, &err);
        if (rc != 0)
            print_error("entry %zu: invalid: %s\n", i, err.msg);
        assert_int_equal(rc, 0);
        assert_int_equal(ev.type_len, strlen("invoice.paid"));
        assert_memory_equal(ev.type, "invoice.paid", ev.type_len);
        assert_int_equal(ev.id_len, strlen("evt_in_1"));
        assert_memory_equal(ev.id, "evt_in_1", ev.id_len);
        assert_int_equal(ev.payload_len, strlen(WANT_PAYLOAD));
        assert_memory_equal(ev.payload, WANT_PAYLOAD, ev.payload_len);
    }
    size_t n = r->elements;
    freeReplyObject(r);
    freeReplyObject(hq_test_cmd(c, "DEL %s", key));
    return n;
}

static size_t check_written_in(const char *key)
{
    redisContext *c = hq_test_redis_connect(&redis);
    size_t n = check_entries(c, key);
    redisFree(c);
    return n;
}

static size_t check_written(void)
{
    return check_written_in("hookq:events");
}

/* Extracts the example for lang into a temporary file named *.ext and runs
 * "<runner> <file>" with REDIS_URL=url. */
static int run_example_at(const char *url, const char *lang, const char *ext, const char *env,
                          const char *runner)
{
    static char code[EXAMPLE_MAX];
    assert_int_equal(extract_example(lang, code, sizeof(code)), 0);
    char dir[] = "/tmp/hq_docs_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], cmd[1024];
    snprintf(path, sizeof(path), "%s/example.%s", dir, ext);
    write_file(path, code);
    snprintf(cmd, sizeof(cmd), "cd %s && REDIS_URL='%s' %s %s %s", dir, url, env, runner, path);
    int st = run(cmd);
    unlink(path);
    rmdir(dir);
    return st;
}

static int run_example(const char *lang, const char *ext, const char *env, const char *runner)
{
    return run_example_at(redis.url, lang, ext, env, runner);
}

/* Skips the test, saying why, unless the shell command cmd succeeds. */
static void skip_unless(const char *cmd, const char *why)
{
    if (run(cmd) != 0) {
        print_message("skip: %s\n", why);
        skip();
    }
}

static void test_docs_redis_cli_example_writes_a_valid_plain_entry(void **state)
{
    (void)state;
    skip_unless("command -v redis-cli >/dev/null 2>&1", "redis-cli is not installed");
    assert_int_equal(run_example("sh", "sh", "", "sh"), 0);
    assert_int_equal(check_written(), 1);
}

static void test_docs_python_example_writes_a_valid_msgpack_entry(void **state)
{
    (void)state;
    /* Debian's python3-redis and python3-msgpack live with /usr/bin/python3;
     * a python3 earlier on PATH may lack them. */
    skip_unless("/usr/bin/python3 -c 'import redis, msgpack' >/dev/null 2>&1",
                "/usr/bin/python3 with redis and msgpack is not installed");
    assert_int_equal(run_example("python", "py", "", "/usr/bin/python3"), 0);
    assert_int_equal(check_written(), 1);
}

/* Skips unless node and its two packages are there (installing them into the
 * build dir once if npm can). */
static void need_node(void)
{
    skip_unless("command -v node >/dev/null 2>&1", "node is not installed");
    const char *check =
        "NODE_PATH=" NODE_DIR
        "/node_modules node -e 'require(\"ioredis\"); require(\"@msgpack/msgpack\")' >/dev/null 2>&1";
    if (run(check) != 0) {
        /* Install into the build dir only, once, and only if the registry answers. */
        mkdir(HQ_TEST_BUILD "/tests/docs", 0755);
        mkdir(NODE_DIR, 0755);
        run("command -v npm >/dev/null 2>&1 && timeout 120 npm install --prefix " NODE_DIR
            " --no-audit --no-fund --no-save --fetch-retries=0 --fetch-timeout=20000 ioredis @msgpack/msgpack >/dev/null 2>&1");
        skip_unless(
            check,
            "node packages ioredis and @msgpack/msgpack are not installed and npm could not install them");
    }
}

static void test_docs_node_example_writes_a_valid_msgpack_entry(void **state)
{
    (void)state;
    need_node();
    assert_int_equal(run_example("node", "js", "NODE_PATH=" NODE_DIR "/node_modules", "node"), 0);
    assert_int_equal(check_written(), 1);
}

/* Runs a partitioned example untagged, then at P = 4 (layout created here)
 * and at P = 5, 7 and 11: one id per run, so several P make a wrong hash
 * that happens to pick the right partition once (1 in P) very unlikely to
 * pass them all. */
static void run_partitioned(const char *lang, const char *ext, const char *env, const char *runner)
{
    assert_int_equal(run_example(lang, ext, env, runner), 0);
    assert_int_equal(check_written(), 1);

    static const unsigned Ps[] = {4, 5, 7, 11};
    for (size_t k = 0; k < sizeof(Ps) / sizeof(Ps[0]); k++) {
        unsigned P = Ps[k];
        struct hq_err e = {0};
        struct hq_redis_conn *conn = hq_redis_conn_open(redis.url, 2000, &e);
        assert_non_null(conn);
        struct hq_layout L = {0};
        assert_int_equal(hq_layout_create(conn, "hookq", P, &L, &e), 0);
        hq_redis_conn_free(conn);
        assert_int_equal(run_example(lang, ext, env, runner), 0);
        unsigned want = hq_partition_of_id("evt_in_1", 8, P);
        for (unsigned i = 0; i < P; i++) {
            char key[HQ_KEY_MAX];
            snprintf(key, sizeof(key), "%s:events", L.part[i].base);
            if (check_written_in(key) != (i == want ? 1u : 0u))
                fail_msg("P = %u: partition %u's stream holds %s (want partition %u)", P, i,
                         i == want ? "nothing" : "the event", want);
        }
        assert_int_equal(check_written(), 0);
        hq_layout_free(&L);
        redisContext *c = hq_test_redis_connect(&redis);
        freeReplyObject(hq_test_cmd(c, "FLUSHALL")); /* back to the untagged layout */
        redisFree(c);
    }
}

/* Stream keys on cluster node i that still hold entries (scanning the whole
 * keyspace, so a write to a key no partition owns is seen too). */
static size_t streams_with_entries(int i)
{
    redisContext *c = hq_test_cluster_connect(&cluster, i);
    size_t n = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = hq_test_cmd(c, "SCAN %s TYPE stream COUNT 1000", cursor);
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t k = 0; k < r->element[1]->elements; k++) {
            const char *key = r->element[1]->element[k]->str;
            redisReply *len = hq_test_cmd(c, "XLEN %s", key);
            if (len->integer > 0) {
                print_error("node %d: %s holds %lld entries\n", i, key, len->integer);
                n++;
            }
            freeReplyObject(len);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    redisFree(c);
    return n;
}

/* Runs a partitioned example with REDIS_URL=redis-cluster://... against a
 * 3-primary cluster (started once, shared by the languages): hookq's layout
 * on a fresh cluster is P = 6 (2 per primary), so the entry must be in
 * partition CRC16("evt_in_1") mod 6's stream on the node owning that
 * partition's slot, and no stream anywhere may hold anything else (each
 * check deletes what it read, so the next language starts clean). */
static void run_partitioned_on_cluster(const char *lang, const char *ext, const char *env,
                                       const char *runner)
{
    if (cluster.n == 0) {
        hq_test_cluster_start(&cluster, 3, 0, NULL);
        hq_test_cluster_url(&cluster, cluster_url, sizeof(cluster_url));
    }
    struct hq_err e = {0};
    struct hq_redis_conn *conn = hq_redis_conn_open(cluster_url, 5000, &e);
    if (!conn)
        fail_msg("%s", e.msg);
    struct hq_layout L = {0};
    if (hq_layout_load(conn, "hookq", &L, &e) != 0)
        fail_msg("%s", e.msg);
    assert_true(L.tagged);
    assert_int_equal(L.nparts, 6);

    assert_int_equal(run_example_at(cluster_url, lang, ext, env, runner), 0);
    unsigned want = hq_partition_of_id("evt_in_1", 8, L.nparts);
    for (unsigned i = 0; i < L.nparts; i++) {
        char key[HQ_KEY_MAX];
        assert_true(hq_key_events(L.part[i].base, key, sizeof(key)) > 0);
        redisContext *node = hq_redis_conn_node(conn, L.part[i].slot, &e);
        if (!node)
            fail_msg("%s", e.msg);
        if (check_entries(node, key) != (i == want ? 1u : 0u))
            fail_msg("cluster, P = 6: partition %u's stream %s holds %s (want partition %u)", i,
                     key, i == want ? "nothing" : "the event", want);
    }
    for (int i = 0; i < cluster.n; i++)
        assert_int_equal(streams_with_entries(i), 0);
    hq_layout_free(&L);
    hq_redis_conn_free(conn);
}

static void test_docs_python_partitioned_example_finds_the_partition_stream(void **state)
{
    (void)state;
    skip_unless("/usr/bin/python3 -c 'import redis, msgpack' >/dev/null 2>&1",
                "/usr/bin/python3 with redis and msgpack is not installed");
    run_partitioned("python-partitioned", "py", "", "/usr/bin/python3");
}

static void test_docs_node_partitioned_example_finds_the_partition_stream(void **state)
{
    (void)state;
    need_node();
    run_partitioned("node-partitioned", "js", "NODE_PATH=" NODE_DIR "/node_modules", "node");
}

static void test_docs_python_partitioned_example_uses_the_cluster_client(void **state)
{
    (void)state;
    skip_unless(
        "/usr/bin/python3 -c 'import msgpack; from redis import RedisCluster' >/dev/null 2>&1",
        "/usr/bin/python3 with redis (RedisCluster: redis-py >= 4.1) and msgpack is not installed");
    run_partitioned_on_cluster("python-partitioned", "py", "", "/usr/bin/python3");
}

static void test_docs_node_partitioned_example_uses_the_cluster_client(void **state)
{
    (void)state;
    need_node();
    run_partitioned_on_cluster("node-partitioned", "js", "NODE_PATH=" NODE_DIR "/node_modules",
                               "node");
}

static int group_teardown(void **state)
{
    if (cluster.n > 0)
        hq_test_cluster_destroy(&cluster);
    return hq_test_group_teardown(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_docs_redis_cli_example_writes_a_valid_plain_entry),
        cmocka_unit_test(test_docs_python_example_writes_a_valid_msgpack_entry),
        cmocka_unit_test(test_docs_node_example_writes_a_valid_msgpack_entry),
        cmocka_unit_test(test_docs_python_partitioned_example_finds_the_partition_stream),
        cmocka_unit_test(test_docs_node_partitioned_example_finds_the_partition_stream),
        cmocka_unit_test(test_docs_python_partitioned_example_uses_the_cluster_client),
        cmocka_unit_test(test_docs_node_partitioned_example_uses_the_cluster_client),
    };
    hq_test_redis_group(&redis, NULL, NULL, 0);
    return cmocka_run_group_tests(tests, hq_test_group_setup, group_teardown);
}
