/* `hookq stats` against a private redis-server: every figure it reports is the
 * one Redis holds (stream length, group lag/pending/consumers, retry backlog
 * and next due time, dead letters, endpoints), missing keys count as 0 / none,
 * and --json carries the documented field names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness/hq_test.h"

static struct hq_test_redis redis;

static int setup(void **state)
{
    (void)state;
    hq_test_redis_start(&redis, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hq_test_redis_destroy(&redis);
    return 0;
}

/* Runs `hookq stats [extra] --redis-url <url> --prefix <prefix>`. */
static int run_stats(const char *prefix, const char *extra, char *out, size_t n, char *err,
                     size_t en)
{
    const char *args[] = {"stats", "--redis-url", redis.url, "--prefix", prefix, extra, NULL};
    return hq_test_cli(args, NULL, NULL, out, n, err, en);
}

/* Extracts the raw JSON value of "field" (number, true/false/null or a
 * quoted string, quotes kept) from a flat object into v. */
static int json_field(const char *json, const char *field, char *v, size_t n)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", field);
    const char *p = strstr(json, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    size_t len = 0;
    if (*p == '"') {
        const char *q = strchr(p + 1, '"');
        if (!q)
            return -1;
        len = (size_t)(q - p + 1);
    } else {
        len = strcspn(p, ",}");
    }
    if (len >= n)
        return -1;
    memcpy(v, p, len);
    v[len] = '\0';
    return 0;
}

static void test_stats_shows_zero_and_none_when_nothing_exists(void **state)
{
    (void)state;
    char out[4096], err[1024];
    assert_int_equal(run_stats("empty", NULL, out, sizeof(out), err, sizeof(err)), 0);
    assert_non_null(strstr(out, "events:       0 entries in empty:events"));
    assert_non_null(strstr(out, "workers not created yet"));
    assert_non_null(strstr(out, "retries:      0 waiting, next due none"));
    assert_non_null(strstr(out, "dead letters: 0"));
    assert_non_null(strstr(out, "endpoints:    0"));
    assert_string_equal(err, "");

    assert_int_equal(run_stats("empty", "--json", out, sizeof(out), err, sizeof(err)), 0);
    char v[64];
    assert_int_equal(json_field(out, "stream_length", v, sizeof(v)), 0);
    assert_string_equal(v, "0");
    assert_int_equal(json_field(out, "group_exists", v, sizeof(v)), 0);
    assert_string_equal(v, "false");
    assert_int_equal(json_field(out, "lag", v, sizeof(v)), 0);
    assert_string_equal(v, "null");
    assert_int_equal(json_field(out, "retry_next_due_ms", v, sizeof(v)), 0);
    assert_string_equal(v, "null");
    assert_int_equal(json_field(out, "retry_next_due", v, sizeof(v)), 0);
    assert_string_equal(v, "null");
    assert_int_equal(json_field(out, "dead_letters", v, sizeof(v)), 0);
    assert_string_equal(v, "0");
    assert_int_equal(json_field(out, "endpoints", v, sizeof(v)), 0);
    assert_string_equal(v, "0");
}

static void test_stats_reports_what_redis_holds(void **state)
{
    (void)state;
    redisContext *c = hq_test_redis_connect(&redis);
    /* 5 events; the group read 2 of them through two consumers and acked none. */
    for (int i = 0; i < 5; i++)
        freeReplyObject(hq_test_cmd(c, "XADD full:events * type t.x payload {}"));
    freeReplyObject(hq_test_cmd(c, "XGROUP CREATE full:events workers 0"));
    freeReplyObject(hq_test_cmd(c, "XREADGROUP GROUP workers w1 COUNT 1 STREAMS full:events >"));
    freeReplyObject(hq_test_cmd(c, "XREADGROUP GROUP workers w2 COUNT 1 STREAMS full:events >"));
    /* 3 retries, the earliest due in about a minute. */
    long long due = hq_test_now_ms() + 60000;
    freeReplyObject(hq_test_cmd(c, "ZADD full:retry %lld a/1/1 %lld b/1/1 %lld c/1/1", due,
                                due + 1000, due + 2000));
    for (int i = 0; i < 2; i++)
        freeReplyObject(hq_test_cmd(c, "XADD full:dead * event_id e%d reason exhausted", i));
    for (int i = 0; i < 4; i++)
        freeReplyObject(hq_test_cmd(c, "ZADD full:endpoints %d ep_%d", i, i));

    char out[4096], err[1024], v[64];
    assert_int_equal(run_stats("full", "--json", out, sizeof(out), err, sizeof(err)), 0);
    const struct {
        const char *field, *want;
    } want[] = {
        {"stream_length", "5"}, {"group", "\"workers\""}, {"group_exists", "true"},
        {"consumers", "2"},     {"pending", "2"},         {"lag", "3"},
        {"retry_backlog", "3"}, {"dead_letters", "2"},    {"endpoints", "4"},
        {"prefix", "\"full\""},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++) {
        assert_int_equal(json_field(out, want[i].field, v, sizeof(v)), 0);
        assert_string_equal(v, want[i].want);
    }
    assert_int_equal(json_field(out, "retry_next_due_ms", v, sizeof(v)), 0);
    assert_int_equal(atoll(v), due);
    assert_int_equal(json_field(out, "retry_next_due", v, sizeof(v)), 0);
    assert_int_equal(v[0], '"');
    assert_int_equal(v[strlen(v) - 2], 'Z');

    assert_int_equal(run_stats("full", NULL, out, sizeof(out), err, sizeof(err)), 0);
    assert_non_null(strstr(out, "events:       5 entries in full:events"));
    assert_non_null(strstr(out, "group:        workers: 2 consumers, 2 pending, lag 3"));
    assert_non_null(strstr(out, "retries:      3 waiting, next due "));
    /* Due in ~60 s: the relative time says so (59 or 60 depending on timing). */
    assert_true(strstr(out, "(in 59s)") || strstr(out, "(in 60s)"));
    assert_non_null(strstr(out, "dead letters: 2"));
    assert_non_null(strstr(out, "endpoints:    4"));
    redisFree(c);
}

static void test_stats_shows_overdue_retries(void **state)
{
    (void)state;
    redisContext *c = hq_test_redis_connect(&redis);
    freeReplyObject(hq_test_cmd(c, "ZADD late:retry %lld x/1/1", hq_test_now_ms() - 300000));
    char out[4096], err[1024];
    assert_int_equal(run_stats("late", NULL, out, sizeof(out), err, sizeof(err)), 0);
    assert_non_null(strstr(out, "(overdue by 5m)"));
    redisFree(c);
}

static void test_stats_rejects_bad_options_with_exit_2(void **state)
{
    (void)state;
    char out[4096], err[1024];
    assert_int_equal(run_stats("x", "--bogus", out, sizeof(out), err, sizeof(err)), 2);
    assert_string_equal(err, "hookq stats: --bogus: unknown option (see --help)\n");
    assert_int_equal(run_stats("bad prefix", NULL, out, sizeof(out), err, sizeof(err)), 2);
    assert_non_null(strstr(err, "hookq stats: --prefix: 'bad prefix'"));
    const char *args[] = {"stats", "extra", NULL};
    assert_int_equal(hq_test_cli(args, NULL, NULL, out, sizeof(out), err, sizeof(err)), 2);
    assert_non_null(strstr(err, "hookq stats: unexpected argument 'extra'"));
}

static void test_stats_fails_with_exit_1_when_redis_is_unreachable(void **state)
{
    (void)state;
    char out[4096], err[1024], url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", hq_test_free_port());
    const char *args[] = {"stats", "--redis-url", url, NULL};
    assert_int_equal(hq_test_cli(args, NULL, NULL, out, sizeof(out), err, sizeof(err)), 1);
    assert_non_null(strstr(err, "hookq stats: redis: cannot reach 127.0.0.1:"));
}

static void test_stats_fails_on_a_wrong_type_key(void **state)
{
    (void)state;
    redisContext *c = hq_test_redis_connect(&redis);
    freeReplyObject(hq_test_cmd(c, "SET wrong:dead notastream"));
    char out[4096], err[1024];
    assert_int_equal(run_stats("wrong", NULL, out, sizeof(out), err, sizeof(err)), 1);
    assert_non_null(strstr(err, "hookq stats: redis: XLEN: WRONGTYPE"));
    redisFree(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_shows_zero_and_none_when_nothing_exists),
        cmocka_unit_test(test_stats_reports_what_redis_holds),
        cmocka_unit_test(test_stats_shows_overdue_retries),
        cmocka_unit_test(test_stats_rejects_bad_options_with_exit_2),
        cmocka_unit_test(test_stats_fails_with_exit_1_when_redis_is_unreachable),
        cmocka_unit_test(test_stats_fails_on_a_wrong_type_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
