/* `hookq produce` and libhookq against a private redis-server: what is written
 * decodes with the worker's decoder, bad input is refused with one line and
 * the right exit status before anything is written, and a batch is written in
 * order. With P = 4 partitions an event with an id lands in the stream of
 * CRC16(id) mod P and events without one spread over all partitions;
 * --durable succeeds with a replica and fails with a clear message without. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/event.h"
#include "common/keys.h"
#include "common/layout_store.h"
#include "common/limits.h"
#include "hookq/hookq.h"
#include "tests/harness/hq_test.h"

static struct hq_test_redis redis;

/* Empties the stream before a test. */
static void clear_stream(redisContext *c, const char *key)
{
    freeReplyObject(hq_test_cmd(c, "DEL %s", key));
}

/* Decodes entry i of an XRANGE reply with the worker's decoder. The fields
 * borrow from the reply. */
static int decode_entry(redisReply *entry, struct hq_field *f, size_t nf_max, struct hq_event *ev,
                        struct hq_err *err)
{
    assert_int_equal(entry->type, REDIS_REPLY_ARRAY);
    redisReply *kv = entry->element[1];
    size_t nf = kv->elements / 2;
    assert_true(nf <= nf_max);
    for (size_t i = 0; i < nf; i++)
        f[i] = (struct hq_field){kv->element[2 * i]->str, kv->element[2 * i]->len,
                                 kv->element[2 * i + 1]->str, kv->element[2 * i + 1]->len};
    return hq_event_decode_fields(f, nf, HQ_PAYLOAD_MAX_DEFAULT, ev, err);
}

static void test_cli_produce_writes_an_entry_the_decoder_reads_back(void **state)
{
    (void)state;
    redisContext *c = hq_test_redis_connect(&redis);
    clear_stream(c, "hookq:events");
    char out[256], err[512];
    const char *args[] = {"produce", "--redis-url", redis.url, "--type", "invoice.paid", "--id",
                          "evt_42",  "--endpoint",  "ep_1",    "--data", "{\"a\":1}",    NULL};
    assert_int_equal(hq_test_cli(args, NULL, NULL, out, sizeof(out), err, sizeof(err)), 0);
    assert_string_equal(err, "");
    out[strcspn(out, "\n")] = '\0';

    redisReply *r = hq_test_cmd(c, "XRANGE hookq:events - +");
    assert_int_equal(r->elements, 1);
    assert_string_equal(r->element[0]->element[0]->str, out); /* the printed entry id */
    struct hq_field f[HQ_EVENT_FIELDS_MAX];
    struct hq_event ev;
    struct hq_err e = {0};
    assert_int_equal(decode_entry(r->element[0], f, HQ_EVENT_FIELDS_MAX, &ev, &e), 0);
    assert_int_equal(ev.type_len, 12);
    assert_memory_equal(ev.type, "invoice.paid", 12);
    assert_int_equal(ev.payload_len, 7);
    assert_memory_equal(ev.payload, "{\"a\":1}", 7);
    assert_int_equal(ev.id_len, 6);
    assert_memory_equal(ev.id, "evt_42", 6);
    assert_int_equal(ev.endpoint_len, 4);
    assert_memory_equal(ev.endpoint, "ep_1", 4);
    freeReplyObject(r);
    redisFree(c);
}

static void test_cli_produce_reads_the_payload_from_stdin_and_from_a_file(void **state)
{
    (void)state;
    redisContext *c = hq_test_redis_connect(&redis);
    clear_stream(c, "hookq:events");
    char out[256], err[512];
    const char *a1[] = {"produce", "--redis-url", redis.url, "--type", "t", NULL};
    assert_int_equal(
        hq_test_cli(a1, NULL, "{\"from\":\"stdin\"}", out, sizeof(out), err, sizeof(err)), 0);

    char path[] = "/tmp/hq_produce_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char body[] = "{\"from\":\"file\"}\n";
    assert_int_equal(write(fd, body, sizeof(body) - 1), (ssize_t)(sizeof(body) - 1));
    close(fd);
    char data[64];
    snprintf(data, sizeof(data), "@%s", path);
    const char *a2[] = {"produce", "--redis-url", redis.url, "--type", "t", "--data", data, NULL};
    assert_int_equal(hq_test_cli(a2, NULL, NULL, out, sizeof(out), err, sizeof(err)), 0);
    unlink(path);

    redisReply *r = hq_test_cmd(c, "XRANGE hookq:events - +");
    assert_int_equal(r->elements, 2);
    struct hq_field f[HQ_EVENT_FIELDS_MAX];
    struct hq_event ev;
    struct hq_err e = {0};
    assert_int_equal(decode_entry(r->element[0], f, HQ_EVENT_FIELDS_MAX, &ev, &e), 0);
    assert_int_equal(ev.payload_len, 16);
    assert_memory_equal(ev.payload, "{\"from\":\"stdin\"}", 16);
    assert_int_equal(decode_entry(r->element[1], f, HQ_EVENT_FIELDS_MAX, &ev, &e), 0);
    assert_int_equal(ev.payload_len, sizeof(body) - 1); /* byte-exact: newline kept */
    assert_memory_equal(ev.payload, body, sizeof(body) - 1);
    freeReplyObject(r);
    redisFree(c);
}

static void test_cli_produce_json_prints_entry_and_event_ids(void **state)
{
    (void)state;
    char out[256], err[512];
    const char *a1[] = {"produce", "--redis-url", redis.url, "--type", "t", "--id",
                        "evt_7",   "--json",      "--data",  "{}",     NULL};
    assert_int_equal(hq_test_cli(a1, NULL, NULL, out, sizeof(out), err, sizeof(err)), 0);
    assert_true(strncmp(out, "{\"entry_id\":\"", 13) == 0);
    assert_non_null(strstr(out, "\",\"event_id\":\"evt_7\"}\n"));
    const char *a2[] = {"produce", "--redis-url", redis.url, "--type", "t",
                        "--json",  "--data",      "{}",      NULL};
    assert_int_equal(hq_test_cli(a2, NULL, NULL, out, sizeof(out), err, sizeof(err)), 0);
    assert_null(strstr(out, "event_id"));
    assert_true(strncmp(out, "{\"entry_id\":\"", 13) == 0);
}

static void test_cli_produce_honours_the_prefix(void **state)
{
    (void)state;
    redisContext *c = hq_test_redis_connect(&redis);
    clear_stream(c, "other:events");
    char out[256], err[512];
    const char *args[] = {"produce", "--redis-url", redis.url, "--prefix", "other",
                          "--type",  "t",           "--data",  "{}",       NULL};
    assert_int_equal(hq_test_cli(args, NULL, NULL, out, sizeof(out), err, sizeof(err)), 0);
    assert_int_equal(hq_test_cmd_int(c, "XLEN other:events"), 1);
    redisFree(c);
}

/* One bad-input case: argv after "produce --redis-url URL", the expected exit
 * status and stderr line. */
struct bad_case {
    const char *args[12];
    int status;
    const char *err;
};

static void test_cli_produce_refuses_bad_input_with_one_line_and_writes_nothing(void **state)
{
    (void)state;
    redisContext *c = hq_test_redis_connect(&redis);
    clear_stream(c, "hookq:events");
    const struct bad_case cases[] = {
        {{"--type", "bad type", "--data", "{}"},
         2,
         "hookq produce: type: 'bad type' has a character outside [A-Za-z0-9_.:-]\n"},
        {{"--type", "t", "--id", "a.b", "--data", "{}"},
         2,
         "hookq produce: id: 'a.b' has a character outside [A-Za-z0-9_:-]\n"},
        {{"--type", "t", "--endpoint", "ep/1", "--data", "{}"},
         2,
         "hookq produce: endpoint: 'ep/1' has a character outside [A-Za-z0-9_-]\n"},
        {{"--type", "t", "--max-payload", "4", "--data", "12345"},
         2,
         "hookq produce: payload: 5 bytes, max 4\n"},
        {{"--data", "{}"}, 2, "hookq produce: --type: missing (the event type is required)\n"},
        {{"--type", "t", "--max-payload", "65M", "--data", "{}"},
         2,
         "hookq produce: --max-payload: '65M' is out of range (1 bytes to 67108864 bytes)\n"},
        {{"--type", "t", "--data", "@/nonexistent/hq"},
         2,
         "hookq produce: --data: cannot read '/nonexistent/hq': No such file or directory\n"},
        {{"--type", "t", "--data", "{}", "extra"},
         2,
         "hookq produce: unexpected argument 'extra' (see --help)\n"},
        {{"--type", "t", "--data", "{}", "--prefix", "a b"},
         2,
         "hookq produce: --prefix: 'a b' may hold only letters, digits and _ - . :\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        const char *argv[16] = {"produce", "--redis-url", redis.url};
        size_t n = 3;
        for (size_t k = 0; cases[i].args[k]; k++)
            argv[n++] = cases[i].args[k];
        argv[n] = NULL;
        char out[256], err[512];
        int st = hq_test_cli(argv, NULL, NULL, out, sizeof(out), err, sizeof(err));
        if (st != cases[i].status || strcmp(err, cases[i].err) != 0)
            print_error("case %zu: status %d, stderr '%s'\n", i, st, err);
        assert_int_equal(st, cases[i].status);
        assert_string_equal(err, cases[i].err);
        assert_string_equal(out, "");
    }
    assert_int_equal(hq_test_cmd_int(c, "XLEN hookq:events"), 0);
    redisFree(c);
}

static void test_cli_produce_payload_over_the_bound_on_stdin_is_refused(void **state)
{
    (void)state;
    char out[256], err[512];
    const char *args[] = {"produce", "--redis-url", redis.url, "--type", "t", NULL};
    const char *env[] = {"HOOKQ_MAX_PAYLOAD=8", NULL};
    assert_int_equal(hq_test_cli(args, env, "0123456789", out, sizeof(out), err, sizeof(err)), 2);
    assert_string_equal(err, "hookq produce: payload: stdin has more than 8 bytes, max 8\n");
}

static void test_cli_produce_exits_1_when_redis_is_unreachable(void **state)
{
    (void)state;
    char out[256], err[512];
    const char *args[] = {"produce", "--redis-url", "redis://127.0.0.1:1", "--type", "t", "--data",
                          "{}",      NULL};
    assert_int_equal(hq_test_cli(args, NULL, NULL, out, sizeof(out), err, sizeof(err)), 1);
    assert_string_equal(err,
                        "hookq produce: redis: cannot reach 127.0.0.1:1: Connection refused\n");
}

static void test_cli_produce_exits_2_on_a_bad_redis_url(void **state)
{
    (void)state;
    char out[256], err[512];
    const char *args[] = {
        "produce", "--redis-url", "http://127.0.0.1:6379", "--type", "t", "--data", "{}", NULL};
    assert_int_equal(hq_test_cli(args, NULL, NULL, out, sizeof(out), err, sizeof(err)), 2);
    assert_string_equal(
        err,
        "hookq produce: --redis-url: 'http...' must start with redis://, redis-sentinel://, redis-cluster:// or unix://\n");
    const char *env[] = {"HOOKQ_REDIS_URL=redis://127.0.0.1:99999", NULL};
    const char *a2[] = {"produce", "--type", "t", "--data", "{}", NULL};
    assert_int_equal(hq_test_cli(a2, env, NULL, out, sizeof(out), err, sizeof(err)), 2);
    assert_string_equal(err, "hookq produce: --redis-url: port must be 1-65535\n");
}

/* ---- libhookq ------------------------------------------------------------------- */

static void test_lib_batch_of_1000_is_written_in_order(void **state)
{
    (void)state;
    redisContext *c = hq_test_redis_connect(&redis);
    clear_stream(c, "hookq:events");
    struct hookq_producer *p = NULL;
    char msg[256];
    assert_int_equal(hookq_producer_connect(redis.url, NULL, &p, msg, sizeof(msg)), 0);
    enum { N = 1000 };
    static char bodies[N][32];
    static struct hookq_event evs[N];
    static char ids[N][64];
    for (int i = 0; i < N; i++) {
        int n = snprintf(bodies[i], sizeof(bodies[i]), "{\"seq\":%d}", i);
        evs[i] = (struct hookq_event){
            .type = "seq.test", .payload = bodies[i], .payload_len = (size_t)n};
    }
    assert_int_equal(hookq_produce_batch(p, evs, N, ids, msg, sizeof(msg)), 0);
    hookq_producer_free(p);

    redisReply *r = hq_test_cmd(c, "XRANGE hookq:events - +");
    assert_int_equal(r->elements, N);
    for (int i = 0; i < N; i++) {
        assert_string_equal(r->element[i]->element[0]->str, ids[i]);
        struct hq_field f[HQ_EVENT_FIELDS_MAX];
        struct hq_event ev;
        struct hq_err e = {0};
        assert_int_equal(decode_entry(r->element[i], f, HQ_EVENT_FIELDS_MAX, &ev, &e), 0);
        assert_int_equal(ev.payload_len, strlen(bodies[i]));
        assert_memory_equal(ev.payload, bodies[i], ev.payload_len);
    }
    freeReplyObject(r);
    redisFree(c);
}

static void test_lib_batch_with_one_invalid_event_writes_nothing(void **state)
{
    (void)state;
    redisContext *c = hq_test_redis_connect(&redis);
    clear_stream(c, "hookq:events");
    struct hookq_producer *p = NULL;
    char msg[256];
    assert_int_equal(hookq_producer_connect(redis.url, "hookq", &p, msg, sizeof(msg)), 0);
    struct hookq_event evs[3] = {
        {.type = "a", .payload = "{}", .payload_len = 2},
        {.type = "b", .payload = "{}", .payload_len = 2, .id = "x.y"},
        {.type = "c", .payload = "{}", .payload_len = 2},
    };
    assert_int_equal(hookq_produce_batch(p, evs, 3, NULL, msg, sizeof(msg)), HOOKQ_EINVAL);
    assert_string_equal(msg, "event 1: id: 'x.y' has a character outside [A-Za-z0-9_:-]");
    hookq_producer_set_max_payload(p, 1);
    struct hookq_event big = {.type = "a", .payload = "{}", .payload_len = 2};
    assert_int_equal(hookq_produce(p, &big, NULL, 0, msg, sizeof(msg)), HOOKQ_EINVAL);
    assert_string_equal(msg, "payload: 2 bytes, max 1");
    assert_int_equal(hq_test_cmd_int(c, "XLEN hookq:events"), 0);
    hookq_producer_free(p);
    redisFree(c);
}

static void test_lib_connect_reports_bad_url_and_unreachable_redis(void **state)
{
    (void)state;
    struct hookq_producer *p = (struct hookq_producer *)1;
    char msg[256];
    assert_int_equal(hookq_producer_connect("nope://x", NULL, &p, msg, sizeof(msg)), HOOKQ_EINVAL);
    assert_null(p);
    assert_int_equal(hookq_producer_connect("redis://127.0.0.1:1/0", NULL, &p, msg, sizeof(msg)),
                     HOOKQ_EREDIS);
    assert_string_equal(msg, "redis: cannot reach 127.0.0.1:1: Connection refused");
    assert_int_equal(hookq_producer_connect(redis.url, "bad prefix", &p, msg, sizeof(msg)),
                     HOOKQ_EINVAL);
    assert_null(p);
}

static void test_lib_producer_reconnects_after_redis_restarts(void **state)
{
    (void)state;
    struct hookq_producer *p = NULL;
    char msg[256], id[64];
    assert_int_equal(hookq_producer_connect(redis.url, NULL, &p, msg, sizeof(msg)), 0);
    struct hookq_event ev = {.type = "t", .payload = "{}", .payload_len = 2};
    assert_int_equal(hookq_produce(p, &ev, id, sizeof(id), msg, sizeof(msg)), 0);
    hq_test_redis_stop(&redis, 0);
    hq_test_redis_restart(&redis);
    /* The old connection is dead; the first call may fail on it (and says so),
     * after which the handle reconnects. Two calls are always enough. */
    int rc = hookq_produce(p, &ev, id, sizeof(id), msg, sizeof(msg));
    if (rc != 0) {
        assert_int_equal(rc, HOOKQ_EREDIS);
        assert_true(strncmp(msg, "redis: ", 7) == 0);
        rc = hookq_produce(p, &ev, id, sizeof(id), msg, sizeof(msg));
    }
    assert_int_equal(rc, 0);
    assert_true(strlen(id) > 2);
    hookq_producer_free(p);
}

/* ---- partitions ------------------------------------------------------------------ */

/* A P = 4 layout for prefix on the test's Redis. */
static void create_p4(const char *prefix, struct hq_layout *L)
{
    struct hq_err e = {0};
    struct hq_redis_conn *conn = hq_redis_conn_open(redis.url, 2000, &e);
    assert_non_null(conn);
    assert_int_equal(hq_layout_create(conn, prefix, 4, L, &e), 0);
    hq_redis_conn_free(conn);
}

/* Value of field "id" of the decoded entry, into out. */
static void entry_event_id(redisReply *entry, char *out, size_t n)
{
    struct hq_field f[HQ_EVENT_FIELDS_MAX];
    struct hq_event ev;
    struct hq_err e = {0};
    assert_int_equal(decode_entry(entry, f, HQ_EVENT_FIELDS_MAX, &ev, &e), 0);
    snprintf(out, n, "%.*s", (int)ev.id_len, ev.id ? ev.id : "");
}

static void test_p4_events_with_ids_land_in_crc16_of_the_id_mod_p(void **state)
{
    (void)state;
    struct hq_layout L = {0};
    create_p4("pp", &L);
    redisContext *c = hq_test_redis_connect(&redis);

    /* The command: prints p<i>/<entry id>, i = CRC16(id) mod 4. */
    const char *cli_ids[] = {"evt_a", "evt_b", "evt_c", "evt_d", "order-17", "x"};
    int seen[4] = {0};
    for (size_t k = 0; k < sizeof(cli_ids) / sizeof(cli_ids[0]); k++) {
        char out[256], err[512];
        const char *args[] = {"produce", "--redis-url", redis.url,  "--prefix", "pp", "--type",
                              "t",       "--id",        cli_ids[k], "--data",   "{}", NULL};
        assert_int_equal(hq_test_cli(args, NULL, NULL, out, sizeof(out), err, sizeof(err)), 0);
        unsigned want = hq_partition_of_id(cli_ids[k], strlen(cli_ids[k]), 4);
        seen[want]++;
        char prefix[8];
        snprintf(prefix, sizeof(prefix), "p%u/", want);
        assert_true(strncmp(out, prefix, strlen(prefix)) == 0);
    }

    /* The library, a batch of 200 ids. */
    struct hookq_producer *p = NULL;
    char msg[256];
    assert_int_equal(hookq_producer_connect(redis.url, "pp", &p, msg, sizeof(msg)), 0);
    enum { N = 200 };
    static char idbuf[N][16];
    static struct hookq_event evs[N];
    static char ids[N][64];
    for (int i = 0; i < N; i++) {
        snprintf(idbuf[i], sizeof(idbuf[i]), "id_%d", i);
        evs[i] =
            (struct hookq_event){.type = "t", .payload = "{}", .payload_len = 2, .id = idbuf[i]};
        seen[hq_partition_of_id(idbuf[i], strlen(idbuf[i]), 4)]++;
    }
    assert_int_equal(hookq_produce_batch(p, evs, N, ids, msg, sizeof(msg)), 0);
    hookq_producer_free(p);
    for (int i = 0; i < N; i++) {
        char prefix[8];
        snprintf(prefix, sizeof(prefix), "p%u/", hq_partition_of_id(idbuf[i], strlen(idbuf[i]), 4));
        assert_true(strncmp(ids[i], prefix, strlen(prefix)) == 0);
    }

    /* Every entry of partition i's stream has an id whose partition is i. */
    for (unsigned i = 0; i < 4; i++) {
        redisReply *r = hq_test_cmd(c, "XRANGE %s:events - +", L.part[i].base);
        assert_int_equal((int)r->elements, seen[i]);
        assert_true(seen[i] > 0);
        for (size_t k = 0; k < r->elements; k++) {
            char id[160];
            entry_event_id(r->element[k], id, sizeof(id));
            assert_int_equal(hq_partition_of_id(id, strlen(id), 4), i);
        }
        freeReplyObject(r);
    }
    assert_int_equal(hq_test_cmd_int(c, "EXISTS pp:events"), 0);
    hq_layout_free(&L);
    redisFree(c);
}

static void test_p4_events_without_ids_spread_over_every_partition(void **state)
{
    (void)state;
    struct hq_layout L = {0};
    create_p4("pq", &L);
    redisContext *c = hq_test_redis_connect(&redis);
    struct hookq_producer *p = NULL;
    char msg[256];
    assert_int_equal(hookq_producer_connect(redis.url, "pq", &p, msg, sizeof(msg)), 0);
    struct hookq_event ev = {.type = "t", .payload = "{}", .payload_len = 2};
    for (int i = 0; i < 20; i++)
        assert_int_equal(hookq_produce(p, &ev, NULL, 0, msg, sizeof(msg)), 0);
    struct hookq_event evs[20];
    for (int i = 0; i < 20; i++)
        evs[i] = ev;
    assert_int_equal(hookq_produce_batch(p, evs, 20, NULL, msg, sizeof(msg)), 0);
    hookq_producer_free(p);
    char out[256], err[512];
    const char *args[] = {"produce", "--redis-url", redis.url, "--prefix", "pq",
                          "--type",  "t",           "--data",  "{}",       NULL};
    assert_int_equal(hq_test_cli(args, NULL, NULL, out, sizeof(out), err, sizeof(err)), 0);
    long long total = 0;
    for (unsigned i = 0; i < 4; i++) {
        long long n = hq_test_cmd_int(c, "XLEN %s:events", L.part[i].base);
        assert_true(n >= 10); /* round robin: 10 of the library's 40 each */
        total += n;
    }
    assert_int_equal(total, 41);
    assert_int_equal(hq_test_cmd_int(c, "EXISTS pq:events"), 0);
    hq_layout_free(&L);
    redisFree(c);
}

/* ---- --durable -------------------------------------------------------------------- */

static int replica_linked(void *arg)
{
    redisContext *m = arg;
    redisReply *r = hq_test_cmd(m, "INFO replication");
    int ok = strstr(r->str, "connected_slaves:1") != NULL && strstr(r->str, "state=online") != NULL;
    freeReplyObject(r);
    return ok;
}

static void test_cli_produce_durable_needs_a_replica(void **state)
{
    (void)state;
    /* No replica: written, but the command fails and says why. */
    char out[256], err[512];
    const char *a1[] = {"produce", "--redis-url", redis.url,   "--type", "t",
                        "--data",  "{}",          "--durable", NULL};
    assert_int_equal(hq_test_cli(a1, NULL, NULL, out, sizeof(out), err, sizeof(err)), 1);
    assert_non_null(
        strstr(err, "hookq produce: durable: 0 of 1 replicas acknowledged within 1000 ms"));
    assert_int_equal(strchr(err, '\n') - err + 1, (long)strlen(err)); /* one line */
    assert_true(strlen(out) > 2); /* the entry id is still printed: it is on the primary */

    /* A primary with a replica: it succeeds. */
    struct hq_test_redis primary, replica;
    hq_test_redis_start(&primary, NULL);
    char extra[128];
    snprintf(extra, sizeof(extra), "--replicaof 127.0.0.1 %d", primary.port);
    hq_test_redis_start(&replica, extra);
    redisContext *m = hq_test_redis_connect(&primary);
    assert_true(hq_test_wait(replica_linked, m, 10000));
    const char *a2[] = {"produce", "--redis-url", primary.url,         "--type", "t", "--data",
                        "{}",      "--durable",   "--durable-timeout", "5s",     NULL};
    assert_int_equal(hq_test_cli(a2, NULL, NULL, out, sizeof(out), err, sizeof(err)), 0);
    assert_string_equal(err, "");
    redisContext *rc = hq_test_redis_connect(&replica);
    assert_int_equal(hq_test_cmd_int(rc, "XLEN hookq:events"), 1);
    redisFree(rc);
    redisFree(m);
    hq_test_redis_destroy(&replica);
    hq_test_redis_destroy(&primary);
}

/* ---- a migration in progress ------------------------------------------------------- */

struct calls_arg {
    redisContext *c;
    long long want;
};

/* The config has been read (HMGET) at least want times (INFO commandstats). */
static int config_reads_at_least(void *arg)
{
    struct calls_arg *a = arg;
    redisReply *r = hq_test_cmd(a->c, "INFO commandstats");
    const char *p = strstr(r->str, "cmdstat_hmget:calls=");
    long long n = p ? atoll(p + strlen("cmdstat_hmget:calls=")) : 0;
    freeReplyObject(r);
    return n >= a->want;
}

/* `hookq produce` started while the config says state=migrating writes
 * nothing until the state is gone (it polls the config: several HMGETs,
 * where a producer that did not wait would read it once and write), then
 * writes to the new layout's partition. */
static void test_produce_waits_while_a_migration_runs(void **state)
{
    (void)state;
    redisContext *c = hq_test_redis_connect(&redis);
    freeReplyObject(hq_test_cmd(c, "FLUSHALL"));
    freeReplyObject(hq_test_cmd(c, "CONFIG RESETSTAT"));
    struct hq_layout L = {0};
    struct hq_err e = {0};
    assert_int_equal(hq_layout_init_tagged(&L, "pm", 4, &e), 0);
    char tags[HQ_LAYOUT_TAGS_MAX], cfg[HQ_KEY_MAX];
    assert_true(hq_layout_tags_join(&L, tags, sizeof(tags)) > 0);
    hq_key_config("pm", cfg, sizeof(cfg));
    freeReplyObject(
        hq_test_cmd(c, "HSET %s version 1 partitions 4 tags %s state migrating", cfg, tags));
    const char *args[] = {"produce", "--redis-url", redis.url, "--prefix", "pm", "--type",
                          "t",       "--id",        "evt_m",   "--data",   "{}", NULL};
    pid_t pid = hq_test_spawn(args, NULL, NULL);
    struct calls_arg ca = {c, 4};
    assert_true(hq_test_wait(config_reads_at_least, &ca, 10000));
    redisReply *k = hq_test_cmd(c, "KEYS pm:*:events");
    assert_int_equal(k->elements, 0); /* nothing written while migrating */
    freeReplyObject(k);
    freeReplyObject(hq_test_cmd(c, "HDEL %s state", cfg));
    assert_int_equal(hq_test_kill_wait(pid, 0, 10000), 0);
    unsigned want = hq_partition_of_id("evt_m", 5, 4);
    assert_int_equal(hq_test_cmd_int(c, "XLEN %s:events", L.part[want].base), 1);
    hq_layout_free(&L);
    redisFree(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_produce_writes_an_entry_the_decoder_reads_back),
        cmocka_unit_test(test_cli_produce_reads_the_payload_from_stdin_and_from_a_file),
        cmocka_unit_test(test_cli_produce_json_prints_entry_and_event_ids),
        cmocka_unit_test(test_cli_produce_honours_the_prefix),
        cmocka_unit_test(test_cli_produce_refuses_bad_input_with_one_line_and_writes_nothing),
        cmocka_unit_test(test_cli_produce_payload_over_the_bound_on_stdin_is_refused),
        cmocka_unit_test(test_cli_produce_exits_1_when_redis_is_unreachable),
        cmocka_unit_test(test_cli_produce_exits_2_on_a_bad_redis_url),
        cmocka_unit_test(test_lib_batch_of_1000_is_written_in_order),
        cmocka_unit_test(test_lib_batch_with_one_invalid_event_writes_nothing),
        cmocka_unit_test(test_lib_connect_reports_bad_url_and_unreachable_redis),
        cmocka_unit_test(test_lib_producer_reconnects_after_redis_restarts),
        cmocka_unit_test(test_p4_events_with_ids_land_in_crc16_of_the_id_mod_p),
        cmocka_unit_test(test_p4_events_without_ids_spread_over_every_partition),
        cmocka_unit_test(test_cli_produce_durable_needs_a_replica),
        cmocka_unit_test(test_produce_waits_while_a_migration_runs),
    };
    hq_test_redis_group(&redis, NULL, NULL, 0);
    return cmocka_run_group_tests(tests, hq_test_group_setup, hq_test_group_teardown);
}
