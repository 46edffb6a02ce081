/* The scheduler against a real redis-server: due retries re-enqueued with
 * exactly the contract's fields, future ones left, retries of gone/disabled
 * endpoints re-enqueued all the same (never reading the registry) and then
 * dead-lettered by the worker, bad retry data dead-lettered, N schedulers
 * racing and a killed scheduler moving each member exactly once, clean
 * SIGTERM, unreachable Redis; at P = 4 every partition's due retries go back
 * to that partition's stream; an untagged scheduler pauses for a migration
 * (reports in the paused set) and goes on with the tagged layout. Retry
 * entries are written here exactly per docs/internals/redis-layout.md
 * (msgpack maps packed with Lua's cmsgpack). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/keys.h"
#include "common/layout_store.h"
#include "common/limits.h"
#include "scheduler/scheduler.h"
#include "tests/harness/hq_test.h"

static struct hq_test_redis R;
static redisContext *C;
static char ENV_URL[400];

/* Writes one retry exactly as the worker does: zset member + msgpack map. */
static const char ADD_RETRY[] =
    "local m = ARGV[1] .. '/' .. ARGV[2] .. '/' .. ARGV[3]\n"
    "redis.call('ZADD', KEYS[1], ARGV[4], m)\n"
    "redis.call('HSET', KEYS[2], m, cmsgpack.pack({type = 'invoice.paid', payload = ARGV[5],\n"
    "  id = ARGV[2], endpoint = ARGV[1], attempt = tonumber(ARGV[3]), first_ms = 1700000000000,\n"
    "  last_ms = 1700000060000, last_status = 503, last_error = 'http_status: 503',\n"
    "  url = 'https://example.test/hook', deferred = 0}))\n"
    "return 1";

static void add_retry_at(const char *base, const char *ep, const char *ev, int attempt,
                         long long due_ms, const char *payload)
{
    freeReplyObject(hq_test_cmd(C, "EVAL %s 2 %s:retry %s:retry:data %s %s %d %lld %s", ADD_RETRY,
                                base, base, ep, ev, attempt, due_ms, payload));
}

static void add_retry(const char *ep, const char *ev, int attempt, long long due_ms,
                      const char *payload)
{
    add_retry_at("hookq", ep, ev, attempt, due_ms, payload);
}

/* n retries ep_a/ev<i>/1, all due at due_ms. */
static void add_many(int n, long long due_ms)
{
    static const char lua[] =
        "for i = 1, tonumber(ARGV[1]) do\n"
        "  local m = 'ep_a/ev' .. i .. '/1'\n"
        "  redis.call('ZADD', KEYS[1], ARGV[2], m)\n"
        "  redis.call('HSET', KEYS[2], m, cmsgpack.pack({type = 't.bulk', payload = 'p' .. i,\n"
        "    id = 'ev' .. i, endpoint = 'ep_a', attempt = 1, first_ms = 1, last_ms = 2,\n"
        "    last_status = 500, last_error = 'x', url = 'u'}))\n"
        "end return 1";
    freeReplyObject(
        hq_test_cmd(C, "EVAL %s 2 hookq:retry hookq:retry:data %d %lld", lua, n, due_ms));
}

static void add_endpoint(const char *id, const char *enabled)
{
    freeReplyObject(hq_test_cmd(C, "HSET hookq:ep:%s enabled %s url https://example.test/%s name n",
                                id, enabled, id));
}

/* Value of field name in stream entry e, or NULL. */
static const char *field(const redisReply *e, const char *name)
{
    const redisReply *kv = e->element[1];
    for (size_t i = 0; i + 1 < kv->elements; i += 2) {
        if (strcmp(kv->element[i]->str, name) == 0)
            return kv->element[i + 1]->str;
    }
    return NULL;
}

static void move_once(struct hq_move_result *res)
{
    struct hq_err err = {0};
    redisContext *c = hq_test_redis_connect(&R);
    assert_int_equal(hq_scheduler_move_due(c, "hookq", 1000, 0, res, &err), 0);
    redisFree(c);
}

static void test_due_members_are_requeued_with_exact_fields_and_future_ones_left(void **state)
{
    (void)state;
    add_endpoint("ep_a", "1");
    long long now = hq_test_now_ms();
    add_retry("ep_a", "ev_1", 2, now - 1000, "{\"n\":1}");
    add_retry("ep_a", "ev_2", 3, now - 10, "{\"n\":2}");
    add_retry("ep_a", "ev_later", 1, now + 3600000, "{\"n\":3}");
    struct hq_move_result res;
    move_once(&res);
    assert_int_equal(res.requeued, 2);
    assert_int_equal(res.dead, 0);
    assert_true(res.next_ms >= now + 3600000 - 1 && res.next_ms <= now + 3600000);

    redisReply *r = hq_test_cmd(C, "XRANGE hookq:events - +");
    assert_int_equal(r->elements, 2);
    /* Exactly: type payload id endpoint attempt first_ms, in that order. */
    const char *want[] = {"type",     "invoice.paid", "payload", "{\"n\":1}", "id",
                          "ev_1",     "endpoint",     "ep_a",    "attempt",   "2",
                          "first_ms", "1700000000000"};
    const redisReply *kv = r->element[0]->element[1];
    assert_int_equal(kv->elements, 12);
    for (int i = 0; i < 12; i++)
        assert_string_equal(kv->element[i]->str, want[i]);
    assert_string_equal(field(r->element[1], "id"), "ev_2");
    assert_string_equal(field(r->element[1], "attempt"), "3");
    freeReplyObject(r);

    assert_int_equal(hq_test_cmd_int(C, "ZCARD hookq:retry"), 1);
    redisReply *score = hq_test_cmd(C, "ZSCORE hookq:retry ep_a/ev_later/1");
    assert_int_equal(score->type, REDIS_REPLY_STRING);
    freeReplyObject(score);
    assert_int_equal(hq_test_cmd_int(C, "HEXISTS hookq:retry:data ep_a/ev_later/1"), 1);
    assert_int_equal(hq_test_cmd_int(C, "HLEN hookq:retry:data"), 1);
    assert_int_equal(hq_test_cmd_int(C, "EXISTS hookq:dead"), 0);
}

static void test_payload_bytes_survive_the_move_exactly(void **state)
{
    (void)state;
    add_endpoint("ep_a", "1");
    /* Binary payload with NUL and high bytes, packed as bin. */
    static const char lua[] =
        "redis.call('ZADD', KEYS[1], 1, 'ep_a/ev_bin/1')\n"
        "redis.call('HSET', KEYS[2], 'ep_a/ev_bin/1', cmsgpack.pack({type = 't', payload = ARGV[1], id = 'ev_bin', endpoint = 'ep_a', attempt = 1, first_ms = 5}))\n"
        "return 1";
    const char bin[] = {'a', 0, (char)0xff, '\n', 'z'};
    freeReplyObject(
        hq_test_cmd(C, "EVAL %s 2 hookq:retry hookq:retry:data %b", lua, bin, sizeof(bin)));
    struct hq_move_result res;
    move_once(&res);
    assert_int_equal(res.requeued, 1);
    redisReply *r = hq_test_cmd(C, "XRANGE hookq:events - +");
    const redisReply *kv = r->element[0]->element[1];
    assert_string_equal(kv->element[2]->str, "payload");
    assert_int_equal(kv->element[3]->len, sizeof(bin));
    assert_memory_equal(kv->element[3]->str, bin, sizeof(bin));
    freeReplyObject(r);
}

static void check_dead(const redisReply *e, const char *reason, const char *ep, const char *ev)
{
    assert_string_equal(field(e, "reason"), reason);
    assert_string_equal(field(e, "endpoint_id"), ep);
    assert_string_equal(field(e, "event_id"), ev);
}

/* The script never reads the registry (another slot than the partition's):
 * a retry whose endpoint was deleted or disabled meanwhile goes back to the
 * stream like any other; the worker dead-letters it (next test). */
static void test_retries_of_deleted_and_disabled_endpoints_are_requeued(void **state)
{
    (void)state;
    add_endpoint("ep_off", "0");
    add_retry("ep_off", "ev_off", 4, 1, "{\"a\":1}");
    add_retry("ep_gone", "ev_gone", 2, 2, "body");
    struct hq_move_result res;
    move_once(&res);
    assert_int_equal(res.requeued, 2);
    assert_int_equal(res.dead, 0);
    assert_int_equal(hq_test_cmd_int(C, "EXISTS hookq:dead"), 0);
    redisReply *r = hq_test_cmd(C, "XRANGE hookq:events - +");
    assert_int_equal(r->elements, 2);
    assert_string_equal(field(r->element[0], "endpoint"), "ep_off");
    assert_string_equal(field(r->element[1], "endpoint"), "ep_gone");
    assert_string_equal(field(r->element[1], "attempt"), "2");
    freeReplyObject(r);
    assert_int_equal(hq_test_cmd_int(C, "EXISTS hookq:retry"), 0);
    assert_int_equal(hq_test_cmd_int(C, "EXISTS hookq:retry:data"), 0);
}

static void test_missing_or_corrupt_retry_data_is_dead_lettered_not_lost(void **state)
{
    (void)state;
    add_endpoint("ep_a", "1");
    freeReplyObject(hq_test_cmd(C, "ZADD hookq:retry 1 ep_a/ev_nodata/3"));
    freeReplyObject(hq_test_cmd(C, "ZADD hookq:retry 2 ep_a/ev_bad/2"));
    freeReplyObject(hq_test_cmd(C, "HSET hookq:retry:data ep_a/ev_bad/2 %b", "\xc1garbage", 8));
    freeReplyObject(hq_test_cmd(C, "ZADD hookq:retry 3 weird-member"));
    /* A map that lacks required keys is corrupt too. */
    freeReplyObject(hq_test_cmd(
        C, "EVAL %s 0",
        "redis.call('ZADD','hookq:retry',4,'ep_a/ev_partial/1') redis.call('HSET','hookq:retry:data','ep_a/ev_partial/1',cmsgpack.pack({type='t'})) return 1"));
    struct hq_move_result res;
    move_once(&res);
    assert_int_equal(res.requeued, 0);
    assert_int_equal(res.dead, 4);
    redisReply *r = hq_test_cmd(C, "XRANGE hookq:dead - +");
    assert_int_equal(r->elements, 4);
    check_dead(r->element[0], "invalid: retry data missing", "ep_a", "ev_nodata");
    assert_string_equal(field(r->element[0], "attempts"), "3");
    assert_string_equal(field(r->element[0], "raw_member"), "ep_a/ev_nodata/3");
    check_dead(r->element[1], "invalid: retry data corrupt", "ep_a", "ev_bad");
    assert_int_equal(memcmp(field(r->element[1], "raw_data"), "\xc1garbage", 8), 0);
    check_dead(r->element[2], "invalid: retry data missing", "", "");
    assert_string_equal(field(r->element[2], "raw_member"), "weird-member");
    check_dead(r->element[3], "invalid: retry data corrupt", "ep_a", "ev_partial");
    freeReplyObject(r);
    assert_int_equal(hq_test_cmd_int(C, "EXISTS hookq:retry"), 0);
    assert_int_equal(hq_test_cmd_int(C, "EXISTS hookq:retry:data"), 0);
}

static void test_dead_maxlen_bounds_the_dead_letter_stream(void **state)
{
    (void)state;
    /* Members without retry data: all dead-lettered ("invalid: retry data missing"). */
    freeReplyObject(hq_test_cmd(
        C, "EVAL %s 1 hookq:retry 3000",
        "for i = 1, tonumber(ARGV[1]) do redis.call('ZADD', KEYS[1], 1, 'ep_a/ev' .. i .. '/1') end "
        "return 1"));
    struct hq_err err = {0};
    struct hq_move_result res;
    redisContext *c = hq_test_redis_connect(&R);
    for (int i = 0; i < 3; i++)
        assert_int_equal(hq_scheduler_move_due(c, "hookq", 1000, 500, &res, &err), 0);
    redisFree(c);
    long long n = hq_test_cmd_int(C, "XLEN hookq:dead");
    /* MAXLEN ~ trims whole macro nodes: near 500, far below 3000. */
    assert_true(n >= 500 && n < 1500);
    assert_int_equal(hq_test_cmd_int(C, "EXISTS hookq:retry"), 0);
}

/* Creates the empty file named by the mkstemp template path (rewritten in place). */
static void make_temp(char *path)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
}

struct log_wait {
    const char *path, *needle;
};

static int log_has(void *arg)
{
    struct log_wait *w = arg;
    FILE *f = fopen(w->path, "r");
    if (!f)
        return 0;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, w->needle) != NULL;
}

struct counts {
    const char *cmd;
    long long want;
};

static int key_reaches(void *arg)
{
    struct counts *c = arg;
    redisContext *x = hq_test_redis_connect(&R);
    long long n = hq_test_cmd_int(x, c->cmd);
    redisFree(x);
    return n == c->want;
}

static int key_above(void *arg)
{
    struct counts *c = arg;
    redisContext *x = hq_test_redis_connect(&R);
    long long n = hq_test_cmd_int(x, c->cmd);
    redisFree(x);
    return n > c->want;
}

static void test_scheduler_process_moves_a_retry_when_due_and_exits_0_on_sigterm(void **state)
{
    (void)state;
    add_endpoint("ep_a", "1");
    const char *env[] = {ENV_URL, NULL};
    /* Due in 1.5 s with a 20 s interval: the move time shows the scheduler
     * slept until the earliest due time, not for the interval. */
    long long due = hq_test_now_ms() + 1500;
    add_retry("ep_a", "ev_timed", 1, due, "x");
    add_retry("ep_a", "ev_far", 1, due + 3600000, "x");
    const char *args[] = {"scheduler", "--interval", "20s", NULL};
    pid_t pid = hq_test_spawn(args, env, NULL);
    struct counts want = {"XLEN hookq:events", 1};
    assert_true(hq_test_wait(key_reaches, &want, 8000));
    redisReply *r = hq_test_cmd(C, "XRANGE hookq:events - +");
    long long moved_at = strtoll(r->element[0]->element[0]->str, NULL, 10);
    assert_true(moved_at >= due);
    assert_true(moved_at < due + 10000);
    freeReplyObject(r);
    assert_int_equal(hq_test_cmd_int(C, "ZCARD hookq:retry"), 1);
    assert_int_equal(hq_test_kill_wait(pid, SIGTERM, 5000), 0);
}

static void test_startup_warns_when_redis_can_evict_or_has_no_aof(void **state)
{
    (void)state;
    char log[] = "/tmp/hq_sched_logXXXXXX";
    make_temp(log);
    const char *env[] = {ENV_URL, NULL};
    const char *args[] = {"scheduler", NULL};
    freeReplyObject(hq_test_cmd(C, "CONFIG SET maxmemory-policy allkeys-lru"));
    pid_t pid = hq_test_spawn(args, env, log);
    struct log_wait started = {log, "started"};
    int ok = hq_test_wait(log_has, &started, 5000);
    freeReplyObject(hq_test_cmd(C, "CONFIG SET maxmemory-policy noeviction"));
    assert_true(ok);
    assert_int_equal(hq_test_kill_wait(pid, SIGTERM, 5000), 0);
    FILE *f = fopen(log, "r");
    char buf[4096] = {0};
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    unlink(log);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "maxmemory-policy=allkeys-lru"));
    assert_non_null(strstr(buf, "appendonly=no"));
    assert_non_null(strstr(buf, "stopped"));
}

/* Every ev<i> (1..n) appears exactly once across the stream and the zset. */
static void assert_each_once(int n, int allow_in_zset)
{
    unsigned char *seen = calloc((size_t)n + 1, 1);
    redisReply *r = hq_test_cmd(C, "XRANGE hookq:events - +");
    for (size_t i = 0; i < r->elements; i++) {
        const char *id = field(r->element[i], "id");
        assert_non_null(id);
        int k = atoi(id + 2);
        assert_true(k >= 1 && k <= n);
        assert_int_equal(seen[k], 0);
        seen[k] = 1;
    }
    freeReplyObject(r);
    r = hq_test_cmd(C, "ZRANGE hookq:retry 0 -1");
    assert_true(allow_in_zset || r->elements == 0);
    for (size_t i = 0; i < r->elements; i++) {
        int k = atoi(r->element[i]->str + strlen("ep_a/ev"));
        assert_true(k >= 1 && k <= n);
        assert_int_equal(seen[k], 0);
        seen[k] = 2;
        assert_int_equal(hq_test_cmd_int(C, "HEXISTS hookq:retry:data %s", r->element[i]->str), 1);
    }
    freeReplyObject(r);
    for (int k = 1; k <= n; k++)
        assert_int_not_equal(seen[k], 0);
    free(seen);
}

static void test_two_schedulers_racing_over_5000_due_entries_move_each_exactly_once(void **state)
{
    (void)state;
    add_endpoint("ep_a", "1");
    add_many(5000, hq_test_now_ms() + 300);
    const char *env[] = {ENV_URL, NULL};
    const char *args[] = {"scheduler", "--batch", "50", NULL};
    pid_t a = hq_test_spawn(args, env, NULL);
    pid_t b = hq_test_spawn(args, env, NULL);
    struct counts want = {"ZCARD hookq:retry", 0};
    assert_true(hq_test_wait(key_reaches, &want, 30000));
    assert_int_equal(hq_test_kill_wait(a, SIGTERM, 5000), 0);
    assert_int_equal(hq_test_kill_wait(b, SIGTERM, 5000), 0);
    assert_int_equal(hq_test_cmd_int(C, "XLEN hookq:events"), 5000);
    assert_int_equal(hq_test_cmd_int(C, "HLEN hookq:retry:data"), 0);
    assert_each_once(5000, 0);
}

static void test_scheduler_killed_mid_run_loses_nothing_and_duplicates_nothing(void **state)
{
    (void)state;
    add_endpoint("ep_a", "1");
    add_many(50000, 1);
    const char *env[] = {ENV_URL, NULL};
    const char *args[] = {"scheduler", "--batch", "100", NULL};
    pid_t pid = hq_test_spawn(args, env, NULL);
    struct counts mid = {"XLEN hookq:events", 2000};
    assert_true(hq_test_wait(key_above, &mid, 30000));
    assert_int_equal(hq_test_kill_wait(pid, SIGKILL, 5000), 128 + SIGKILL);
    long long moved = hq_test_cmd_int(C, "XLEN hookq:events");
    long long left = hq_test_cmd_int(C, "ZCARD hookq:retry");
    assert_true(left > 0); /* really killed mid-run */
    assert_int_equal(moved + left, 50000);
    assert_each_once(50000, 1);

    pid = hq_test_spawn(args, env, NULL);
    struct counts done = {"ZCARD hookq:retry", 0};
    assert_true(hq_test_wait(key_reaches, &done, 60000));
    assert_int_equal(hq_test_kill_wait(pid, SIGTERM, 5000), 0);
    assert_int_equal(hq_test_cmd_int(C, "XLEN hookq:events"), 50000);
    assert_each_once(50000, 0);
}

static void test_scheduler_recovers_after_redis_restarts(void **state)
{
    (void)state;
    char log[] = "/tmp/hq_sched_logXXXXXX";
    make_temp(log);
    const char *env[] = {ENV_URL, NULL};
    const char *args[] = {"scheduler", "--interval", "50ms", NULL};
    pid_t pid = hq_test_spawn(args, env, log);
    struct log_wait started = {log, "started"};
    assert_true(hq_test_wait(log_has, &started, 5000));
    redisFree(C);
    hq_test_redis_stop(&R, 1);
    hq_test_redis_restart(&R);
    C = hq_test_redis_connect(&R);
    add_endpoint("ep_a", "1");
    add_retry("ep_a", "ev_after", 1, 1, "x");
    struct counts want = {"XLEN hookq:events", 1};
    assert_true(hq_test_wait(key_reaches, &want, 15000));
    assert_int_equal(hq_test_kill_wait(pid, SIGTERM, 5000), 0);
    /* The outage was logged, once, and so was the recovery. */
    struct log_wait lost = {log, "moving due retries failed"}, back = {log, "reconnected"};
    assert_true(log_has(&lost));
    assert_true(log_has(&back));
    unlink(log);
}

static void test_scheduler_exits_1_with_one_line_when_redis_is_unreachable(void **state)
{
    (void)state;
    char url[100], env_url[140], out[256], err[1024];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", hq_test_free_port());
    snprintf(env_url, sizeof(env_url), "HOOKQ_REDIS_URL=%s", url);
    const char *env[] = {env_url, NULL};
    const char *args[] = {"scheduler", NULL};
    assert_int_equal(hq_test_cli(args, env, NULL, out, sizeof(out), err, sizeof(err)), 1);
    assert_non_null(strstr(err, "hookq scheduler: redis: cannot reach 127.0.0.1"));
    assert_int_equal(strchr(err, '\n') - err + 1, (long)strlen(err)); /* one line */
}

static void test_scheduler_rejects_bad_options_with_exit_2(void **state)
{
    (void)state;
    char out[256], err[1024];
    const char *env[] = {ENV_URL, NULL};
    const char *a1[] = {"scheduler", "--batch", "0", NULL};
    assert_int_equal(hq_test_cli(a1, env, NULL, out, sizeof(out), err, sizeof(err)), 2);
    assert_non_null(strstr(err, "--batch: '0' is out of range"));
    const char *a2[] = {"scheduler", "--interval", "soon", NULL};
    assert_int_equal(hq_test_cli(a2, env, NULL, out, sizeof(out), err, sizeof(err)), 2);
    assert_non_null(strstr(err, "--interval: 'soon'"));
    const char *env2[] = {ENV_URL, "HOOKQ_DEAD_MAXLEN=lots", NULL};
    const char *a3[] = {"scheduler", NULL};
    assert_int_equal(hq_test_cli(a3, env2, NULL, out, sizeof(out), err, sizeof(err)), 2);
    assert_non_null(strstr(err, "HOOKQ_DEAD_MAXLEN: 'lots'"));
}

/* End to end: a retry comes due after its endpoint was deleted (another's
 * after it was disabled); the scheduler re-enqueues both and the worker
 * dead-letters them with reasons endpoint_deleted / endpoint_disabled. */
static void
test_a_due_retry_of_a_deleted_endpoint_ends_as_a_dead_letter_via_the_worker(void **state)
{
    (void)state;
    /* A real (complete) endpoint, added and disabled with the CLI. */
    const char *env[] = {ENV_URL, "HOOKQ_ALLOW_PRIVATE=1", NULL};
    char out[4096], err[1024], off[80];
    const char *add[] = {"endpoint", "add", "--name", "off", "--url", "https://example.test/x",
                         NULL};
    assert_int_equal(hq_test_cli(add, env, NULL, out, sizeof(out), err, sizeof(err)), 0);
    const char *p = strstr(out, "id: ");
    assert_non_null(p);
    snprintf(off, sizeof(off), "%.*s", (int)strcspn(p + 4, "\n"), p + 4);
    const char *dis[] = {"endpoint", "disable", off, NULL};
    assert_int_equal(hq_test_cli(dis, env, NULL, out, sizeof(out), err, sizeof(err)), 0);
    add_retry("ep_gone", "ev_gone", 2, 1, "body");
    add_retry(off, "ev_off", 3, 2, "{}");
    const char *sargs[] = {"scheduler", "--interval", "50ms", NULL};
    const char *wargs[] = {"worker", NULL};
    pid_t sch = hq_test_spawn(sargs, env, NULL);
    pid_t wk = hq_test_spawn(wargs, env, NULL);
    struct counts want = {"XLEN hookq:dead", 2};
    int ok = hq_test_wait(key_reaches, &want, 15000);
    assert_int_equal(hq_test_kill_wait(sch, SIGTERM, 5000), 0);
    assert_int_equal(hq_test_kill_wait(wk, SIGTERM, 10000), 0);
    assert_true(ok);
    redisReply *r = hq_test_cmd(C, "XRANGE hookq:dead - +");
    assert_int_equal(r->elements, 2);
    for (size_t i = 0; i < 2; i++) {
        const char *ev = field(r->element[i], "event_id");
        assert_non_null(ev);
        if (strcmp(ev, "ev_gone") == 0) {
            check_dead(r->element[i], "endpoint_deleted", "ep_gone", "ev_gone");
            assert_string_equal(field(r->element[i], "attempts"), "2");
            assert_string_equal(field(r->element[i], "payload"), "body");
        } else {
            check_dead(r->element[i], "endpoint_disabled", off, "ev_off");
        }
    }
    freeReplyObject(r);
    assert_int_equal(hq_test_cmd_int(C, "ZCARD hookq:retry"), 0);
}

/* ---- partitions and migration ---------------------------------------------------- */

/* Every partition of L (P = 4) has want entries in its stream. */
struct parts_arg {
    const struct hq_layout *L;
    long long want;
};

static int every_stream_has(void *arg)
{
    struct parts_arg *a = arg;
    redisContext *x = hq_test_redis_connect(&R);
    int ok = 1;
    for (unsigned i = 0; i < a->L->nparts && ok; i++)
        ok = hq_test_cmd_int(x, "XLEN %s:events", a->L->part[i].base) == a->want;
    redisFree(x);
    return ok;
}

static struct hq_redis_conn *open_conn(void)
{
    struct hq_err e = {0};
    struct hq_redis_conn *conn = hq_redis_conn_open(R.url, 2000, &e);
    if (!conn)
        fail_msg("%s", e.msg);
    return conn;
}

/* Each partition's retries (and one untagged left-over, which a tagged
 * scheduler must not touch) go back to that partition's own stream. */
static void test_at_p4_each_partitions_due_retries_go_back_to_its_stream(void **state)
{
    (void)state;
    struct hq_redis_conn *conn = open_conn();
    struct hq_layout L = {0};
    struct hq_err e = {0};
    assert_int_equal(hq_layout_create(conn, "hookq", 4, &L, &e), 0);
    hq_redis_conn_free(conn);
    for (unsigned i = 0; i < 4; i++) {
        char ev[32];
        snprintf(ev, sizeof(ev), "ev_p%u", i);
        add_retry_at(L.part[i].base, "ep_a", ev, 1, 1, "x");
    }
    add_retry_at(L.part[2].base, "ep_a", "ev_later", 1, hq_test_now_ms() + 3600000, "x");
    add_retry("ep_a", "ev_untagged", 1, 1, "x");

    const char *env[] = {ENV_URL, NULL};
    const char *args[] = {"scheduler", "--interval", "50ms", NULL};
    pid_t pid = hq_test_spawn(args, env, NULL);
    struct parts_arg pa = {&L, 1};
    int ok = hq_test_wait(every_stream_has, &pa, 10000);
    assert_int_equal(hq_test_kill_wait(pid, SIGTERM, 5000), 0);
    assert_true(ok);
    for (unsigned i = 0; i < 4; i++) {
        redisReply *r = hq_test_cmd(C, "XRANGE %s:events - +", L.part[i].base);
        char ev[32];
        snprintf(ev, sizeof(ev), "ev_p%u", i);
        assert_string_equal(field(r->element[0], "id"), ev);
        freeReplyObject(r);
        assert_int_equal(hq_test_cmd_int(C, "ZCARD %s:retry", L.part[i].base), i == 2 ? 1 : 0);
        assert_int_equal(hq_test_cmd_int(C, "HLEN %s:retry:data", L.part[i].base), i == 2 ? 1 : 0);
    }
    assert_int_equal(hq_test_cmd_int(C, "EXISTS hookq:events"), 0);
    assert_int_equal(hq_test_cmd_int(C, "ZCARD hookq:retry"), 1);
    hq_layout_free(&L);
}

struct member_arg {
    const char *key, *member;
};

static int is_member(void *arg)
{
    struct member_arg *m = arg;
    redisContext *x = hq_test_redis_connect(&R);
    long long n = hq_test_cmd_int(x, "SISMEMBER %s %s", m->key, m->member);
    redisFree(x);
    return n == 1;
}

/* The migration protocol's scheduler side, with the config written by hand
 * (as `hookq migrate` does): an untagged scheduler sees state=migrating,
 * reports "scheduler:<host>:<pid>" in the paused set (again after a lost
 * connection), and once the state is gone works on the tagged layout. */
static void test_untagged_scheduler_pauses_for_a_migration_and_goes_on_tagged(void **state)
{
    (void)state;
    char log[] = "/tmp/hq_sched_logXXXXXX";
    make_temp(log);
    const char *env[] = {ENV_URL, NULL};
    const char *args[] = {"scheduler", "--interval", "20s", NULL};
    pid_t pid = hq_test_spawn(args, env, log);
    /* Untagged at first: an untagged retry is moved (within a second despite
     * the 20 s interval: an untagged scheduler checks for a migration). */
    add_retry("ep_a", "ev_before", 1, 1, "x");
    struct counts before = {"XLEN hookq:events", 1};
    assert_true(hq_test_wait(key_reaches, &before, 10000));

    struct hq_layout L = {0};
    struct hq_err e = {0};
    assert_int_equal(hq_layout_init_tagged(&L, "hookq", 4, &e), 0);
    char tags[HQ_LAYOUT_TAGS_MAX], cfg[HQ_KEY_MAX], paused[HQ_KEY_MAX];
    assert_true(hq_layout_tags_join(&L, tags, sizeof(tags)) > 0);
    hq_key_config("hookq", cfg, sizeof(cfg));
    hq_key_migrate_paused("hookq", paused, sizeof(paused));
    freeReplyObject(
        hq_test_cmd(C, "HSET %s version 1 partitions 4 tags %s state migrating", cfg, tags));
    char host[256] = "", me[400];
    gethostname(host, sizeof(host));
    host[sizeof(host) - 1] = '\0';
    snprintf(me, sizeof(me), "scheduler:%s:%ld", host, (long)pid);
    struct member_arg m = {paused, me};
    assert_true(hq_test_wait(is_member, &m, 5000));

    /* Connection lost while paused: after reconnecting it finds the migration
     * still running and reports again (migrate may still be waiting). */
    freeReplyObject(hq_test_cmd(C, "DEL %s", paused));
    freeReplyObject(hq_test_cmd(C, "CLIENT KILL TYPE normal SKIPME yes"));
    assert_true(hq_test_wait(is_member, &m, 10000));

    /* Paused: untagged keys are the migration's now, and stay put. */
    add_retry("ep_a", "ev_during", 1, 1, "x");
    for (unsigned i = 0; i < 4; i++) {
        char ev[32];
        snprintf(ev, sizeof(ev), "ev_p%u", i);
        add_retry_at(L.part[i].base, "ep_a", ev, 1, 1, "x");
    }
    freeReplyObject(hq_test_cmd(C, "HDEL %s state", cfg));
    struct parts_arg pa = {&L, 1};
    int ok = hq_test_wait(every_stream_has, &pa, 10000);
    assert_int_equal(hq_test_kill_wait(pid, SIGTERM, 5000), 0);
    assert_true(ok);
    assert_int_equal(hq_test_cmd_int(C, "ZCARD hookq:retry"), 1);
    assert_int_equal(hq_test_cmd_int(C, "XLEN hookq:events"), 1);
    struct log_wait lp = {log, "paused for a migration to 4 partitions"},
                    lo = {log, "migration over: going on with 4 partitions"};
    assert_true(log_has(&lp));
    assert_true(log_has(&lo));
    unlink(log);
    hq_layout_free(&L);
}

/* A scheduler started while a migration is in progress waits for its end
 * before moving anything, then works on the new layout. */
static void test_scheduler_started_during_a_migration_waits_for_its_end(void **state)
{
    (void)state;
    struct hq_layout L = {0};
    struct hq_err e = {0};
    assert_int_equal(hq_layout_init_tagged(&L, "hookq", 4, &e), 0);
    char tags[HQ_LAYOUT_TAGS_MAX], cfg[HQ_KEY_MAX];
    assert_true(hq_layout_tags_join(&L, tags, sizeof(tags)) > 0);
    hq_key_config("hookq", cfg, sizeof(cfg));
    freeReplyObject(
        hq_test_cmd(C, "HSET %s version 1 partitions 4 tags %s state migrating", cfg, tags));
    char log[] = "/tmp/hq_sched_logXXXXXX";
    make_temp(log);
    const char *env[] = {ENV_URL, NULL};
    const char *args[] = {"scheduler", "--interval", "50ms", NULL};
    pid_t pid = hq_test_spawn(args, env, log);
    struct log_wait waiting = {log, "is in progress: waiting"};
    assert_true(hq_test_wait(log_has, &waiting, 5000));
    for (unsigned i = 0; i < 4; i++)
        add_retry_at(L.part[i].base, "ep_a", "ev", 1, 1, "x");
    /* Nothing moved while the state is there: the scheduler has not started. */
    struct log_wait started = {log, "started prefix"};
    assert_false(log_has(&started));
    freeReplyObject(hq_test_cmd(C, "HDEL %s state", cfg));
    struct parts_arg pa = {&L, 1};
    int ok = hq_test_wait(every_stream_has, &pa, 10000);
    assert_int_equal(hq_test_kill_wait(pid, SIGTERM, 5000), 0);
    assert_true(ok);
    assert_true(log_has(&started));
    unlink(log);
    hq_layout_free(&L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_due_members_are_requeued_with_exact_fields_and_future_ones_left,
                               hq_test_group_flush),
        cmocka_unit_test_setup(test_payload_bytes_survive_the_move_exactly, hq_test_group_flush),
        cmocka_unit_test_setup(test_retries_of_deleted_and_disabled_endpoints_are_requeued,
                               hq_test_group_flush),
        cmocka_unit_test_setup(test_missing_or_corrupt_retry_data_is_dead_lettered_not_lost,
                               hq_test_group_flush),
        cmocka_unit_test_setup(test_dead_maxlen_bounds_the_dead_letter_stream, hq_test_group_flush),
        cmocka_unit_test_setup(test_scheduler_process_moves_a_retry_when_due_and_exits_0_on_sigterm,
                               hq_test_group_flush),
        cmocka_unit_test_setup(test_startup_warns_when_redis_can_evict_or_has_no_aof,
                               hq_test_group_flush),
        cmocka_unit_test_setup(
            test_two_schedulers_racing_over_5000_due_entries_move_each_exactly_once,
            hq_test_group_flush),
        cmocka_unit_test_setup(test_scheduler_killed_mid_run_loses_nothing_and_duplicates_nothing,
                               hq_test_group_flush),
        cmocka_unit_test_setup(test_scheduler_recovers_after_redis_restarts, hq_test_group_flush),
        cmocka_unit_test_setup(
            test_a_due_retry_of_a_deleted_endpoint_ends_as_a_dead_letter_via_the_worker,
            hq_test_group_flush),
        cmocka_unit_test_setup(test_at_p4_each_partitions_due_retries_go_back_to_its_stream,
                               hq_test_group_flush),
        cmocka_unit_test_setup(test_untagged_scheduler_pauses_for_a_migration_and_goes_on_tagged,
                               hq_test_group_flush),
        cmocka_unit_test_setup(test_scheduler_started_during_a_migration_waits_for_its_end,
                               hq_test_group_flush),
        cmocka_unit_test(test_scheduler_exits_1_with_one_line_when_redis_is_unreachable),
        cmocka_unit_test(test_scheduler_rejects_bad_options_with_exit_2),
    };
    hq_test_redis_group(&R, &C, ENV_URL, sizeof(ENV_URL));
    return cmocka_run_group_tests(tests, hq_test_group_setup, hq_test_group_teardown);
}
