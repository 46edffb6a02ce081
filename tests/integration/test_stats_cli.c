/* `hookq stats` against a private redis-server: every figure it reports is the
 * one Redis holds (stream length, group lag/pending/consumers, retry backlog
 * and next due time, dead letters and their counts by reason class and by
 * endpoint, endpoints), missing keys count as 0 / none, the dead-letter walk
 * is bounded (newest HQ_STATS_DEAD_SCAN_MAX entries, 1000 distinct endpoints),
 * and --json carries the documented field names. At P = 4: a line per
 * partition (its node and figures), totals over the partitions, and a
 * "partitions" array in --json. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/keys.h"
#include "common/layout_store.h"
#include "common/limits.h"
#include "tests/harness/hq_test.h"

static struct hq_test_redis redis;

/* Runs `hookq stats [extra] --redis-url <url> --prefix <prefix>`. */
static int run_stats(const char *prefix, const char *extra, char *out, size_t n, char *err,
                     size_t en)
{
    const char *args[] = {"stats", "--redis-url", redis.url, "--prefix", prefix, extra, NULL};
    return hq_test_cli(args, NULL, NULL, out, n, err, en);
}

/* Where the value of "field" starts in json (after its colon), or NULL. */
static const char *json_value(const char *json, const char *field)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", field);
    const char *p = strstr(json, pat);
    return p ? p + strlen(pat) : NULL;
}

/* Extracts the raw JSON value of "field" (number, true/false/null or a
 * quoted string, quotes kept) from a flat object into v. */
static int json_field(const char *json, const char *field, char *v, size_t n)
{
    const char *p = json_value(json, field);
    if (!p)
        return -1;
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

/* Extracts the object value of "field" ({...}, braces kept; the test data has
 * no braces inside names) into v. */
static int json_object(const char *json, const char *field, char *v, size_t n)
{
    const char *p = json_value(json, field);
    if (!p || *p != '{')
        return -1;
    const char *q = strchr(p, '}');
    if (!q || (size_t)(q - p + 1) >= n)
        return -1;
    memcpy(v, p, (size_t)(q - p + 1));
    v[q - p + 1] = '\0';
    return 0;
}

/* Fails unless "field" of the flat JSON object json holds exactly want (the raw
 * value, quotes kept). */
static void assert_json_field(const char *json, const char *field, const char *want)
{
    char v[256];
    if (json_field(json, field, v, sizeof(v)) != 0)
        fail_msg("no value for \"%s\" in %s", field, json);
    assert_string_equal(v, want);
}

/* Fails unless the object "field" of json is exactly want (braces kept). */
static void assert_json_object(const char *json, const char *field, const char *want)
{
    char v[4096];
    if (json_object(json, field, v, sizeof(v)) != 0)
        fail_msg("no object for \"%s\" in %s", field, json);
    assert_string_equal(v, want);
}

/* Copies the output line that starts with 'start' (without its newline) into v. */
static int out_line(const char *out, const char *start, char *v, size_t n)
{
    const char *p = strstr(out, start);
    if (!p || (p != out && p[-1] != '\n'))
        return -1;
    size_t len = strcspn(p, "\n");
    if (len >= n)
        return -1;
    memcpy(v, p, len);
    v[len] = '\0';
    return 0;
}

/* Counts the occurrences of needle in hay. */
static int occurrences(const char *hay, const char *needle)
{
    int k = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        k++;
    return k;
}

/* Appends n dead letters to <prefix>:dead in one pipeline, with the fields
 * redis-layout.md lists; endpoint "%d" in ep_fmt takes the letter's index. */
static void add_dead(redisContext *c, const char *prefix, int n, const char *ep_fmt,
                     const char *reason)
{
    for (int i = 0; i < n; i++) {
        char ep[64];
        snprintf(ep, sizeof(ep), ep_fmt, i);
        assert_int_equal(
            redisAppendCommand(
                c,
                "XADD %s:dead * event_id ev_%d type t.x endpoint_id %s url https://example.com/h attempts 10 last_status 500 last_error http_status first_attempt_ms 1 last_attempt_ms 2 reason %s payload {}",
                prefix, i, ep, reason),
            REDIS_OK);
    }
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        assert_int_equal(redisGetReply(c, (void **)&r), REDIS_OK);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        freeReplyObject(r);
    }
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
    /* No dead letters: no breakdown lines at all. */
    assert_null(strstr(out, "by reason"));
    assert_null(strstr(out, "by endpoint"));
    assert_string_equal(err, "");

    assert_int_equal(run_stats("empty", "--json", out, sizeof(out), err, sizeof(err)), 0);
    assert_json_field(out, "dead_scanned", "0");
    assert_json_object(out, "dead_by_reason", "{}");
    assert_json_object(out, "dead_by_endpoint", "{}");
    assert_json_field(out, "stream_length", "0");
    assert_json_field(out, "group_exists", "false");
    assert_json_field(out, "lag", "null");
    assert_json_field(out, "retry_next_due_ms", "null");
    assert_json_field(out, "retry_next_due", "null");
    assert_json_field(out, "dead_letters", "0");
    assert_json_field(out, "endpoints", "0");
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
    for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++)
        assert_json_field(out, want[i].field, want[i].want);
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

static void test_stats_counts_dead_letters_by_reason_class_and_endpoint(void **state)
{
    (void)state;
    redisContext *c = hq_test_redis_connect(&redis);
    char z70[71], z64[65];
    memset(z70, 'z', 70);
    z70[70] = '\0';
    memset(z64, 'z', 64);
    z64[64] = '\0';
    add_dead(c, "dl", 3, "ep_a", "exhausted");
    add_dead(c, "dl", 1, "ep_b", "exhausted");
    /* Invalid stream entries have endpoint_id "" (see redis-layout.md). */
    for (int i = 0; i < 2; i++)
        freeReplyObject(hq_test_cmd(c, "XADD dl:dead * event_id ev_%d endpoint_id %s reason %s", i,
                                    "", "invalid: payload: not str/bin"));
    add_dead(c, "dl", 1, "ep_b", "blocked: 10.0.0.1 is private");
    add_dead(c, "dl", 1, "ep_c", "endpoint_disabled");
    add_dead(c, "dl", 1, "ep_d", "endpoint_deleted");
    add_dead(c, "dl", 1, "ep_a", z70);               /* unknown reason: kept, cut to 64 */
    add_dead(c, "dl", 1, "ep_e", "bad\x1b[2Jthing"); /* escaped for the terminal */
    freeReplyObject(hq_test_cmd(c, "XADD dl:dead * event_id ev_x")); /* no reason, no endpoint */

    char out[8192], err[1024], want[1024], v[2048];
    assert_int_equal(run_stats("dl", NULL, out, sizeof(out), err, sizeof(err)), 0);
    snprintf(
        want, sizeof(want),
        "dead letters: 12\n"
        "  by reason: exhausted 4, invalid 2, (none) 1, bad\\x1b[2Jthing 1, blocked 1, endpoint_deleted 1, endpoint_disabled 1, %s 1\n"
        "  by endpoint: ep_a 4, (none) 3, ep_b 2, ep_c 1, ep_d 1, ep_e 1\n"
        "endpoints:    0\n",
        z64);
    assert_non_null(strstr(out, want));
    assert_string_equal(err, "");

    assert_int_equal(run_stats("dl", "--json", out, sizeof(out), err, sizeof(err)), 0);
    assert_json_field(out, "dead_letters", "12");
    assert_json_field(out, "dead_scanned", "12");
    assert_int_equal(json_object(out, "dead_by_reason", v, sizeof(v)), 0);
    snprintf(
        want, sizeof(want),
        "{\"exhausted\":4,\"invalid\":2,\"(none)\":1,\"bad\\u001b[2Jthing\":1,\"blocked\":1,\"endpoint_deleted\":1,\"endpoint_disabled\":1,\"%s\":1}",
        z64);
    assert_string_equal(v, want);
    assert_json_object(out, "dead_by_endpoint",
                       "{\"ep_a\":4,\"(none)\":3,\"ep_b\":2,\"ep_c\":1,\"ep_d\":1,\"ep_e\":1}");
    /* The fields around the new ones are untouched. */
    assert_json_field(out, "endpoints", "0");
    redisFree(c);
}

static void test_stats_names_the_top_10_endpoints_and_json_keeps_all(void **state)
{
    (void)state;
    redisContext *c = hq_test_redis_connect(&redis);
    /* ep_01 has 12 dead letters, ep_02 11, ..., ep_12 1 (78 in all). */
    for (int k = 1; k <= 12; k++) {
        char ep[16];
        snprintf(ep, sizeof(ep), "ep_%02d", k);
        add_dead(c, "top", 13 - k, ep, "exhausted");
    }
    char out[8192], err[1024], v[2048];
    assert_int_equal(run_stats("top", NULL, out, sizeof(out), err, sizeof(err)), 0);
    assert_int_equal(out_line(out, "  by reason", v, sizeof(v)), 0);
    assert_string_equal(v, "  by reason: exhausted 78");
    assert_int_equal(out_line(out, "  by endpoint", v, sizeof(v)), 0);
    /* ep_11 (2) and ep_12 (1) are not named: 3 letters under (other). */
    assert_string_equal(
        v,
        "  by endpoint: ep_01 12, ep_02 11, ep_03 10, ep_04 9, ep_05 8, ep_06 7, ep_07 6, ep_08 5, ep_09 4, ep_10 3, (other) 3");

    assert_int_equal(run_stats("top", "--json", out, sizeof(out), err, sizeof(err)), 0);
    assert_json_object(
        out, "dead_by_endpoint",
        "{\"ep_01\":12,\"ep_02\":11,\"ep_03\":10,\"ep_04\":9,\"ep_05\":8,\"ep_06\":7,\"ep_07\":6,\"ep_08\":5,\"ep_09\":4,\"ep_10\":3,\"ep_11\":2,\"ep_12\":1}");
    redisFree(c);
}

static void test_stats_keeps_1000_endpoints_and_counts_the_rest_as_other(void **state)
{
    (void)state;
    redisContext *c = hq_test_redis_connect(&redis);
    /* 1005 endpoints, one letter each; walked newest first, so ep_1004 ..
     * ep_0005 are kept (1000, cmd_stats.c's STATS_ENDPOINTS_MAX) and the
     * oldest five, ep_0000 .. ep_0004, arrive when the map is full. */
    add_dead(c, "many", 1005, "ep_%04d", "exhausted");
    static char out[256 * 1024], v[128 * 1024];
    char err[1024];
    assert_int_equal(run_stats("many", "--json", out, sizeof(out), err, sizeof(err)), 0);
    assert_int_equal(json_object(out, "dead_by_endpoint", v, sizeof(v)), 0);
    assert_int_equal(occurrences(v, "\"ep_"), 1000);
    assert_non_null(strstr(v, "{\"ep_0005\":1,\"ep_0006\":1,"));
    assert_non_null(strstr(v, ",\"ep_1004\":1,\"(other)\":5}"));
    assert_null(strstr(v, "\"ep_0004\""));
    assert_json_field(out, "dead_scanned", "1005");

    assert_int_equal(run_stats("many", NULL, out, sizeof(out), err, sizeof(err)), 0);
    assert_int_equal(out_line(out, "  by endpoint", v, sizeof(v)), 0);
    assert_string_equal(
        v,
        "  by endpoint: ep_0005 1, ep_0006 1, ep_0007 1, ep_0008 1, ep_0009 1, ep_0010 1, ep_0011 1, ep_0012 1, ep_0013 1, ep_0014 1, (other) 995");
    redisFree(c);
}

static void test_stats_counts_only_the_newest_dead_letters_of_a_long_stream(void **state)
{
    (void)state;
    redisContext *c = hq_test_redis_connect(&redis);
    /* HQ_STATS_DEAD_SCAN_MAX old letters, then 500 newer ones: the walk reads
     * the newest HQ_STATS_DEAD_SCAN_MAX, i.e. all 500 new and all but 500 old. */
    const long long cap = HQ_STATS_DEAD_SCAN_MAX, total = cap + 500;
    for (long long done = 0; done < cap; done += 10000)
        add_dead(c, "long", (int)(cap - done < 10000 ? cap - done : 10000), "ep_old", "exhausted");
    add_dead(c, "long", 500, "ep_new", "blocked: 10.0.0.9 is private");

    char out[8192], err[1024], want[256], v[1024];
    assert_int_equal(run_stats("long", NULL, out, sizeof(out), err, sizeof(err)), 0);
    assert_int_equal(out_line(out, "  by reason", v, sizeof(v)), 0);
    snprintf(want, sizeof(want), "  by reason, newest %lld of %lld: exhausted %lld, blocked 500",
             cap, total, cap - 500);
    assert_string_equal(v, want);
    assert_int_equal(out_line(out, "  by endpoint", v, sizeof(v)), 0);
    snprintf(want, sizeof(want), "  by endpoint, newest %lld of %lld: ep_old %lld, ep_new 500", cap,
             total, cap - 500);
    assert_string_equal(v, want);

    assert_int_equal(run_stats("long", "--json", out, sizeof(out), err, sizeof(err)), 0);
    assert_int_equal(json_field(out, "dead_letters", v, sizeof(v)), 0);
    assert_int_equal(atoll(v), total);
    assert_int_equal(json_field(out, "dead_scanned", v, sizeof(v)), 0);
    assert_int_equal(atoll(v), cap);
    assert_int_equal(json_object(out, "dead_by_reason", v, sizeof(v)), 0);
    snprintf(want, sizeof(want), "{\"exhausted\":%lld,\"blocked\":500}", cap - 500);
    assert_string_equal(v, want);
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

static void test_stats_p4_shows_each_partition_and_the_totals(void **state)
{
    (void)state;
    struct hq_err e = {0};
    struct hq_layout L = {0};
    struct hq_redis_conn *conn = hq_redis_conn_open(redis.url, 2000, &e);
    assert_non_null(conn);
    assert_int_equal(hq_layout_create(conn, "part4", 4, &L, &e), 0);
    hq_redis_conn_free(conn);
    redisContext *c = hq_test_redis_connect(&redis);
    long long due = hq_test_now_ms() + 60000;
    for (unsigned p = 0; p < 4; p++) {
        char ev[HQ_KEY_MAX], retry[HQ_KEY_MAX], dead[HQ_KEY_MAX];
        hq_key_events(L.part[p].base, ev, sizeof(ev));
        hq_key_retry(L.part[p].base, retry, sizeof(retry));
        hq_key_dead(L.part[p].base, dead, sizeof(dead));
        /* Partition p: p + 1 events, one read (pending 1, lag p). */
        for (unsigned i = 0; i <= p; i++)
            freeReplyObject(hq_test_cmd(c, "XADD %s * type t.x payload {}", ev));
        freeReplyObject(hq_test_cmd(c, "XGROUP CREATE %s workers 0", ev));
        freeReplyObject(hq_test_cmd(c, "XREADGROUP GROUP workers w1 COUNT 1 STREAMS %s >", ev));
        if (p == 2)
            freeReplyObject(hq_test_cmd(c, "ZADD %s %lld a/1/1 %lld b/1/1", retry, due, due + 1));
        if (p == 1) { /* two retries in the lane, unread, the oldest added 200 s ago */
            char lane[HQ_KEY_MAX];
            hq_key_retries(L.part[p].base, lane, sizeof(lane));
            freeReplyObject(hq_test_cmd(c, "XADD %s %lld-0 type t.x", lane, due - 260000));
            freeReplyObject(hq_test_cmd(c, "XADD %s * type t.x", lane));
        }
        for (unsigned i = 0; i < (p == 3 ? 3u : p == 0 ? 1u : 0u); i++)
            freeReplyObject(hq_test_cmd(c, "XADD %s * event_id e%u reason exhausted", dead, i));
    }
    char eps[HQ_KEY_MAX];
    hq_key_endpoints(L.reg, eps, sizeof(eps));
    freeReplyObject(hq_test_cmd(c, "ZADD %s 1 ep_1 2 ep_2", eps));
    char dups[HQ_KEY_MAX]; /* idempotent events: p1 acked 5 duplicates */
    hq_key_duplicates(L.part[1].base, dups, sizeof(dups));
    freeReplyObject(hq_test_cmd(c, "SET %s 5", dups));

    char out[8192], err[1024], line[256], node[64];
    snprintf(node, sizeof(node), "127.0.0.1:%d", redis.port);
    assert_int_equal(run_stats("part4", NULL, out, sizeof(out), err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(out_line(out, "PARTITION", line, sizeof(line)), 0);
    const char *rows[] = {"p0", "p1", "p2", "p3"};
    const long long want_dead[] = {1, 0, 0, 3}, want_retry[] = {0, 0, 2, 0};
    const long long want_lane[] = {0, 2, 0, 0};
    const char *want_age[] = {"0s", "3m", "0s", "0s"};
    for (unsigned p = 0; p < 4; p++) {
        char want[200];
        snprintf(want, sizeof(want), "%-9s %-21s %10u %8u %8d %8lld %8lld %8lld %9s %10d", rows[p],
                 node, p + 1, p, 1, want_retry[p], want_dead[p], want_lane[p], want_age[p],
                 p == 1 ? 5 : 0);
        if (out_line(out, rows[p], line, sizeof(line)) != 0 || strcmp(line, want) != 0)
            fail_msg("partition %u: want '%s' in\n%s", p, want, out);
    }
    assert_non_null(strstr(out, "events:       10 entries in 4 partitions"));
    assert_non_null(strstr(out, "group:        workers: 1 consumers, 4 pending, lag 6"));
    assert_non_null(strstr(out, "retries:      2 waiting"));
    assert_non_null(strstr(out, "retry lane:   2 entries in part4:{<tag>}:retries, oldest unread "
                                "waited 3m"));
    assert_non_null(strstr(out, "dead letters: 4\n  by reason: exhausted 4"));
    assert_non_null(strstr(out, "endpoints:    2"));
    assert_non_null(strstr(out, "duplicates:   5 "));

    assert_int_equal(run_stats("part4", "--json", out, sizeof(out), err, sizeof(err)), 0);
    const struct {
        const char *field, *want;
    } top[] = {{"stream_length", "10"},    {"pending", "4"},      {"lag", "6"},
               {"retry_backlog", "2"},     {"dead_letters", "4"}, {"endpoints", "2"},
               {"retry_lane_length", "2"}, {"duplicates", "5"}};
    for (size_t i = 0; i < sizeof(top) / sizeof(*top); i++)
        assert_json_field(out, top[i].field, top[i].want);
    const char *parts = strstr(out, ",\"partitions\":[{\"partition\":0,");
    assert_non_null(parts);
    char want[400];
    snprintf(want, sizeof(want),
             "{\"partition\":2,\"tag\":\"%s\",\"node\":\"%s\",\"stream_length\":3,\"group_exists\":"
             "true,\"consumers\":1,\"pending\":1,\"lag\":2,\"retry_backlog\":2,"
             "\"retry_next_due_ms\":%lld,\"dead_letters\":0,\"retry_lane_length\":0,"
             "\"retry_lane_oldest_ms\":0,\"duplicates\":0}",
             L.part[2].tag, node, due);
    if (!strstr(parts, want))
        fail_msg("want %s in %s", want, parts);
    /* Untagged deployments keep today's JSON: no partitions array. */
    assert_int_equal(run_stats("other", "--json", out, sizeof(out), err, sizeof(err)), 0);
    assert_null(strstr(out, "partitions"));
    hq_layout_free(&L);
    redisFree(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_shows_zero_and_none_when_nothing_exists),
        cmocka_unit_test(test_stats_reports_what_redis_holds),
        cmocka_unit_test(test_stats_p4_shows_each_partition_and_the_totals),
        cmocka_unit_test(test_stats_counts_dead_letters_by_reason_class_and_endpoint),
        cmocka_unit_test(test_stats_names_the_top_10_endpoints_and_json_keeps_all),
        cmocka_unit_test(test_stats_keeps_1000_endpoints_and_counts_the_rest_as_other),
        cmocka_unit_test(test_stats_counts_only_the_newest_dead_letters_of_a_long_stream),
        cmocka_unit_test(test_stats_shows_overdue_retries),
        cmocka_unit_test(test_stats_rejects_bad_options_with_exit_2),
        cmocka_unit_test(test_stats_fails_with_exit_1_when_redis_is_unreachable),
        cmocka_unit_test(test_stats_fails_on_a_wrong_type_key),
    };
    hq_test_redis_group(&redis, NULL, NULL, 0);
    return cmocka_run_group_tests(tests, hq_test_group_setup, hq_test_group_teardown);
}
