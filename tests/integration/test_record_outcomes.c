/* record_outcomes.lua against a real redis-server, fed by the worker's own op
 * encoder (worker/outcome_ops.h), so the test holds no copy of the format:
 * the fence records and acknowledges exactly the entries this consumer still
 * owns, whether it is checked with one XPENDING over a range, per entry, or
 * per entry after a range reply that filled its count; a call repeated after
 * its reply was lost records nothing twice; and the long form's parts (attempt
 * record, retry, dead letter with an invalid entry's raw fields) land where
 * the script puts them; attempt records go to the current time bucket, keep
 * each event's newest records, and buckets older than ttl go (read back with
 * hq_attempts_read, the reader of `hookq event show`). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/attempts.h"
#include "common/limits.h"
#include "common/scripts.h"
#include "tests/harness/hq_test.h"
#include "worker/outcome_ops.h"

static struct hq_test_redis R;
static redisContext *C;
static char ENV_URL[400];
static char IDS[10][32]; /* stream ids of events e0..e9 */

static int setup(void **state)
{
    (void)state;
    hq_test_redis_open(&R, &C, ENV_URL, sizeof(ENV_URL));
    freeReplyObject(hq_test_cmd(C, "XGROUP CREATE ev workers 0 MKSTREAM"));
    for (int i = 0; i < 10; i++) {
        redisReply *r = hq_test_cmd(C, "XADD ev * type t payload {} id e%d", i);
        snprintf(IDS[i], sizeof(IDS[i]), "%s", r->str);
        freeReplyObject(r);
    }
    /* a owns e0..e5 except e3, which b took over; b owns e6..e9 and e3. */
    freeReplyObject(hq_test_cmd(C, "XREADGROUP GROUP workers a COUNT 6 STREAMS ev >"));
    freeReplyObject(hq_test_cmd(C, "XREADGROUP GROUP workers b COUNT 4 STREAMS ev >"));
    freeReplyObject(hq_test_cmd(C, "XCLAIM ev workers b 0 %s", IDS[3]));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hq_test_redis_close(&R, &C);
    return 0;
}

/* Calls the script as consumer a for entries ids[0..n) with their ops, the
 * fence range given or "" for per-entry checks. The reply's integers go to got. */
static void call(const char *const *ids, struct hq_ops *ops, int n, const char *rmin,
                 const char *rmax, const char *rcount, long long *got)
{
    const char *argv[256];
    size_t lens[256];
    char counts[10][12];
    int c = 0;
#define STR(s) (argv[c] = (s), lens[c] = strlen(s), c++)
    STR("EVAL");
    STR(hq_script_record_outcomes);
    STR("4");
    STR("ev");
    STR("retry");
    STR("retry:data");
    STR("dead");
    STR("workers");
    STR("a");
    STR("60000");
    STR("20");
    STR("t:attempts");
    STR("0");
    STR(rmin);
    STR(rmax);
    STR(rcount);
    for (int k = 0; k < n; k++) {
        snprintf(counts[k], sizeof(counts[k]), "%d", ops[k].nargs);
        STR(ids[k]);
        STR(counts[k]);
        assert_true(c + ops[k].nargs <= 256);
        hq_ops_argv(&ops[k], argv + c, lens + c);
        c += ops[k].nargs;
    }
#undef STR
    redisReply *r = redisCommandArgv(C, c, argv, lens);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("script error: %s", r->str);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, (size_t)n);
    for (int k = 0; k < n; k++)
        got[k] = r->element[k]->integer;
    freeReplyObject(r);
}

/* Records events idx[0..n) as consumer a, one "delivered" op each. */
static void record(const int *idx, int n, const char *rmin, const char *rmax, const char *rcount,
                   long long *got)
{
    struct hq_ops ops[10];
    const char *ids[10];
    for (int k = 0; k < n; k++) {
        char ev[8], json[64];
        snprintf(ev, sizeof(ev), "e%d", idx[k]);
        int jl = snprintf(json, sizeof(json), "{\"outcome\":\"delivered\",\"e\":%d}", idx[k]);
        hq_ops_init(&ops[k], 1 << 20);
        assert_int_equal(hq_ops_delivered(&ops[k], ev, json, (size_t)jl), 0);
        ids[k] = IDS[idx[k]];
    }
    call(ids, ops, n, rmin, rmax, rcount, got);
    for (int k = 0; k < n; k++)
        hq_ops_free(&ops[k]);
}

/* 1 when entry i is still pending, to whoever. */
static int pending(int i)
{
    redisReply *r = hq_test_cmd(C, "XPENDING ev workers %s %s 1", IDS[i], IDS[i]);
    int n = (int)r->elements;
    freeReplyObject(r);
    return n;
}

/* Event e<i>'s attempt records (the caller frees the reply). */
static redisReply *attempts(int i)
{
    char ev[8];
    snprintf(ev, sizeof(ev), "e%d", i);
    struct hq_err err = {0};
    redisReply *r = hq_attempts_read(C, "t", ev, &err);
    if (!r)
        fail_msg("hq_attempts_read: %s", err.msg);
    return r;
}

static long long records(int i)
{
    redisReply *r = attempts(i);
    long long n = (long long)r->elements;
    freeReplyObject(r);
    return n;
}

static long long redis_now_ms(void)
{
    redisReply *t = hq_test_cmd(C, "TIME");
    long long ms = atoll(t->element[0]->str) * 1000 + atoll(t->element[1]->str) / 1000;
    freeReplyObject(t);
    return ms;
}

static void test_range_fence_records_only_this_consumers_entries(void **state)
{
    (void)state;
    /* e1, e3 (now b's), e5: the range e1..e5 holds a's e1, e2, e4, e5. */
    int idx[] = {1, 3, 5};
    long long got[3];
    record(idx, 3, IDS[1], IDS[5], "36", got);
    assert_int_equal(got[0], 1);
    assert_int_equal(got[1], 0); /* fenced: b reclaimed it */
    assert_int_equal(got[2], 1);
    assert_int_equal(pending(1), 0);
    assert_int_equal(pending(5), 0);
    assert_int_equal(pending(3), 1); /* still b's */
    assert_int_equal(records(1), 1);
    assert_int_equal(records(3), 0);
    assert_int_equal(records(5), 1);
    assert_int_equal(pending(2) + pending(4), 2); /* a's others in the range untouched */
    /* The same call again (its first reply lost): nothing is recorded twice. */
    record(idx, 3, IDS[1], IDS[5], "36", got);
    assert_int_equal(got[0] + got[1] + got[2], 0);
    assert_int_equal(records(1), 1);
    assert_int_equal(records(5), 1);
}

static void test_range_reply_that_fills_its_count_falls_back_per_entry(void **state)
{
    (void)state;
    /* Range e0..e6 holds a's e0, e1, e2, e4, e5: a count of 2 is filled, so
     * the script must not take "not in the reply" as "not ours". */
    int idx[] = {0, 3, 5, 6};
    long long got[4];
    record(idx, 4, IDS[0], IDS[6], "2", got);
    assert_int_equal(got[0], 1);
    assert_int_equal(got[1], 0); /* b's */
    assert_int_equal(got[2], 1);
    assert_int_equal(got[3], 0); /* b's */
    assert_int_equal(records(0), 1);
    assert_int_equal(records(5), 1);
    assert_int_equal(records(6), 0);
    assert_int_equal(pending(3) + pending(6), 2);
}

static void test_per_entry_fence_without_a_range(void **state)
{
    (void)state;
    int idx[] = {4, 7, 2};
    long long got[3];
    record(idx, 3, "", "", "0", got);
    assert_int_equal(got[0], 1);
    assert_int_equal(got[1], 0); /* b's */
    assert_int_equal(got[2], 1);
    assert_int_equal(pending(4) + pending(2), 0);
    assert_int_equal(pending(7), 1);
    assert_int_equal(records(4) + records(2), 2);
    assert_int_equal(records(7), 0);
}

/* The field of a dead-stream entry's value list named name, or NULL. */
static const char *field(const redisReply *fields, const char *name)
{
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (strcmp(fields->element[i]->str, name) == 0)
            return fields->element[i + 1]->str;
    return NULL;
}

static void test_long_form_retry_dead_letter_and_raw_fields(void **state)
{
    (void)state;
    /* e0 (a's): a failed attempt with its retry, then a dead letter for a
     * second endpoint; e1 (a's): an invalid entry's dead letter with raw fields. */
    struct hq_ops ops[2];
    hq_ops_init(&ops[0], 1 << 20);
    hq_ops_init(&ops[1], 1 << 20);
    const char att[] = "{\"outcome\":\"retry\"}";
    struct hq_full_op retry = {
        .event_id = "e0",
        .att = att,
        .att_len = sizeof(att) - 1,
        .retry_member = "ep1/e0/1",
        .due_ms = 12345,
        .retry_data = "\x81\xa1k\xa1v", /* msgpack {"k":"v"}, stored as is */
        .retry_data_len = 5,
    };
    assert_int_equal(hq_ops_full(&ops[0], &retry), 0);
    struct hq_dead_letter dl = {
        .event_id = "e0",
        .type = "t",
        .type_len = 1,
        .endpoint_id = "ep2",
        .url = "http://127.0.0.1:9/x",
        .attempts = 3,
        .last_status = 500,
        .last_error = "http_status: 500",
        .first_attempt_ms = 100,
        .last_attempt_ms = 200,
        .reason = "exhausted",
        .payload = "{}",
        .payload_len = 2,
    };
    struct hq_full_op dead = {.dead = &dl};
    assert_int_equal(hq_ops_full(&ops[0], &dead), 0);
    static const char raw[] = "raw_a\0x\0raw_b\0y";
    struct hq_dead_letter inv = {
        .event_id = "evt_1", .reason = "invalid: bad", .raw = raw, .nraw = 2};
    struct hq_full_op invalid = {.dead = &inv};
    assert_int_equal(hq_ops_full(&ops[1], &invalid), 0);

    const char *ids[] = {IDS[0], IDS[1]};
    long long got[2];
    call(ids, ops, 2, "", "", "0", got);
    assert_int_equal(got[0], 1);
    assert_int_equal(got[1], 1);
    assert_int_equal(records(0), 1);
    redisReply *r = hq_test_cmd(C, "ZSCORE retry ep1/e0/1");
    assert_string_equal(r->str, "12345");
    freeReplyObject(r);
    r = hq_test_cmd(C, "HGET retry:data ep1/e0/1");
    assert_int_equal(r->len, 5);
    assert_memory_equal(r->str, "\x81\xa1k\xa1v", 5);
    freeReplyObject(r);

    r = hq_test_cmd(C, "XRANGE dead - +");
    assert_int_equal(r->elements, 2);
    const redisReply *d0 = r->element[0]->element[1], *d1 = r->element[1]->element[1];
    assert_int_equal(d0->elements, 24); /* 12 fields (tenant "" when none) */
    assert_int_equal(d1->elements, 28);
    static const struct {
        int which;
        const char *name, *value;
    } want[] = {
        {0, "event_id", "e0"},
        {0, "endpoint_id", "ep2"},
        {0, "attempts", "3"},
        {0, "last_status", "500"},
        {0, "first_attempt_ms", "100"},
        {0, "reason", "exhausted"},
        {0, "payload", "{}"},
        {0, "tenant", ""},
        {1, "event_id", "evt_1"},
        {1, "type", ""},
        {1, "reason", "invalid: bad"},
        {1, "raw_a", "x"},
        {1, "raw_b", "y"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const char *value = field(want[i].which ? d1 : d0, want[i].name);
        assert_non_null(value);
        assert_string_equal(value, want[i].value);
    }
    freeReplyObject(r);
    hq_ops_free(&ops[0]);
    hq_ops_free(&ops[1]);
}

/* Records go to the bucket t:attempts:<start> of Redis' own clock (ttl 60 s:
 * buckets 1 min wide), listed in t:attempts; an event keeps its newest `keep`
 * (20) records, also when a later call appends to them; a bucket whose
 * records are all older than ttl is unlinked by the next call; the bucket
 * expires one width after that in any case; records a worker wrote before
 * buckets (a list t:att:<id>) are read first. */
static void test_attempt_buckets_keep_the_newest_and_drop_old_buckets(void **state)
{
    (void)state;
    const long long ttl = 60000, width = 60000;
    long long now = redis_now_ms();
    /* A bucket whose newest record is over ttl old, and one not yet. */
    long long gone = now - now % width - width - ttl, kept = gone + width;
    for (long long b = gone; b <= kept; b += width) {
        freeReplyObject(hq_test_cmd(C, "ZADD t:attempts %lld %lld", b, b));
        freeReplyObject(hq_test_cmd(C, "HSET t:attempts:%lld e9 {\"b\":%lld}", b, b));
    }
    /* e2 has a record from before buckets. */
    freeReplyObject(hq_test_cmd(C, "RPUSH t:att:e2 {\"outcome\":\"old\"}"));
    /* e1: one entry with 25 deliveries (a fan-out), more than the 20 kept. */
    struct hq_ops ops[2];
    hq_ops_init(&ops[0], 1 << 20);
    hq_ops_init(&ops[1], 1 << 20);
    for (int k = 0; k < 25; k++) {
        char json[32];
        int jl = snprintf(json, sizeof(json), "{\"n\":%d}", k);
        assert_int_equal(hq_ops_delivered(&ops[0], "e1", json, (size_t)jl), 0);
    }
    assert_int_equal(hq_ops_delivered(&ops[1], "e2", "{\"n\":0}", 7), 0);
    const char *ids[] = {IDS[1], IDS[2]};
    long long got[2];
    call(ids, ops, 2, "", "", "0", got);
    assert_int_equal(got[0], 1);
    assert_int_equal(got[1], 1);

    redisReply *r = attempts(1);
    assert_int_equal(r->elements, 20);
    assert_string_equal(r->element[0]->str, "{\"n\":5}");
    assert_string_equal(r->element[19]->str, "{\"n\":24}");
    freeReplyObject(r);
    r = attempts(2);
    assert_int_equal(r->elements, 2);
    assert_string_equal(r->element[0]->str, "{\"outcome\":\"old\"}");
    assert_string_equal(r->element[1]->str, "{\"n\":0}");
    freeReplyObject(r);

    /* The old bucket went (index and key); the other stays; the current one
     * expires at start + 2 widths + ttl. */
    assert_int_equal(hq_test_cmd_int(C, "EXISTS t:attempts:%lld", gone), 0);
    r = hq_test_cmd(C, "ZSCORE t:attempts %lld", gone);
    assert_int_equal(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    assert_int_equal(hq_test_cmd_int(C, "EXISTS t:attempts:%lld", kept), 1);
    r = hq_test_cmd(C, "ZRANGE t:attempts 0 -1");
    assert_int_equal(r->elements, 2);
    long long start = atoll(r->element[1]->str);
    freeReplyObject(r);
    assert_true(start > kept && start % width == 0);
    assert_int_equal(hq_test_cmd_int(C, "HLEN t:attempts:%lld", start), 2);
    assert_int_equal(hq_test_cmd_int(C, "PEXPIRETIME t:attempts:%lld", start),
                     start + 2 * width + ttl);

    /* A later call (e1 redelivered, one more record) appends and trims again:
     * the newest 20 across both calls. Same bucket unless the minute turned. */
    struct hq_ops more;
    hq_ops_init(&more, 1 << 20);
    assert_int_equal(hq_ops_delivered(&more, "e1", "{\"n\":25}", 8), 0);
    freeReplyObject(hq_test_cmd(C, "XCLAIM ev workers a 0 %s", IDS[1]));
    const char *again[] = {IDS[1]};
    call(again, &more, 1, "", "", "0", got);
    assert_int_equal(got[0], 0); /* acked by the first call: fenced, nothing written */
    assert_int_equal(records(1), 20);
    freeReplyObject(hq_test_cmd(C, "XREADGROUP GROUP workers a COUNT 1 STREAMS ev >"));
    hq_ops_free(&more);
    hq_ops_free(&ops[0]);
    hq_ops_free(&ops[1]);
}

/* An event's records written by two calls (a retry) come back in order. */
static void test_attempt_records_of_two_calls_are_appended(void **state)
{
    (void)state;
    struct hq_ops ops;
    long long got[1];
    for (int k = 0; k < 2; k++) {
        hq_ops_init(&ops, 1 << 20);
        char json[32];
        int jl = snprintf(json, sizeof(json), "{\"try\":%d}", k);
        assert_int_equal(hq_ops_delivered(&ops, "e4", json, (size_t)jl), 0);
        const char *ids[] = {IDS[k == 0 ? 4 : 5]}; /* two entries of event e4, both a's */
        call(ids, &ops, 1, "", "", "0", got);
        assert_int_equal(got[0], 1);
        hq_ops_free(&ops);
    }
    redisReply *r = attempts(4);
    assert_int_equal(r->elements, 2);
    assert_string_equal(r->element[0]->str, "{\"try\":0}");
    assert_string_equal(r->element[1]->str, "{\"try\":1}");
    freeReplyObject(r);
}

/* Parks item (padded id) in line ep/key of t:lines with its data, as the "p"
 * op leaves it (data: the retry-data map lines_claim.lua reads). */
static void park(const char *name, const char *item, const char *id)
{
    freeReplyObject(hq_test_cmd(C, "ZADD t:lines:%s 0 %s", name, item));
    freeReplyObject(hq_test_cmd(
        C, "EVAL %s 1 t:lines:data %s/%s %s", /* the map packed where the script unpacks it */
        "return redis.call('HSET', KEYS[1], ARGV[1], cmsgpack.pack({type = 't', id = ARGV[2], "
        "payload = '{}', attempt = 0, first_ms = 7}))",
        name, item, id));
}

/* Ends the head item of line name ("c": read from the retry lane, here ev) for entry id. */
static long long end_head_of(const char *id, const char *name, const char *item)
{
    struct hq_ops ops;
    hq_ops_init(&ops, 1 << 20);
    struct hq_full_op op = {0};
    struct hq_line_ref ref = {.action = 'c', .index = "t:lines", .name = name, .item = item};
    assert_int_equal(hq_ops_line(&ops, &op, &ref), 0);
    const char *ids[] = {id};
    long long got[1];
    call(ids, &ops, 1, "", "", "0", got);
    hq_ops_free(&ops);
    return got[0];
}

static long long end_head(int i, const char *name, const char *item)
{
    return end_head_of(IDS[i], name, item);
}

/* A command's string reply as a number (HGET, ZSCORE). */
static long long str_num(redisReply *r)
{
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    long long v = atoll(r->str);
    freeReplyObject(r);
    return v;
}

#define ITEM(ms) "0000000000000" #ms "-00000000000000000001"

/* A head that ends ("c") hands its endpoint's slot on in the same call
 * (docs/ordering.md "How it works"): to its line's next item, XADDed to the
 * call's stream with its line field, the line staying in flight, the heads in
 * flight counted as before, reply 2; when that item is not below the
 * watermark (an older entry still pending in t:events), to the head of a due
 * line of the same endpoint (the ended line then due behind it); another
 * endpoint's due line is never taken; with nothing to send, the slot is freed,
 * an empty line leaves t:lines and the reply is 1 (the worker then claims). */
static void test_line_end_chains_the_next_head_below_the_watermark(void **state)
{
    (void)state;
    park("ep1/k", ITEM(10), "x1");
    park("ep1/k", ITEM(20), "x2");
    park("ep1/k", ITEM(40), "x4");
    park("ep2/z", ITEM(30), "z3");
    freeReplyObject(hq_test_cmd(C, "ZADD t:lines +inf ep1/k 0 ep2/z"));
    freeReplyObject(hq_test_cmd(C, "HSET t:lines:busy ep1 1"));
    freeReplyObject(hq_test_cmd(C, "XGROUP CREATE t:events workers 0 MKSTREAM"));

    assert_int_equal(end_head(0, "ep1/k", ITEM(10)), 2);
    redisReply *r = hq_test_cmd(C, "XREVRANGE ev + - COUNT 1");
    assert_int_equal(r->elements, 1);
    const redisReply *f = r->element[0]->element[1];
    const char *want[] = {"type",    "t", "payload", "{}",     "id",       "x2", "endpoint", "ep1",
                          "attempt", "0", "line",    ITEM(20), "first_ms", "7",  "key",      "k"};
    assert_int_equal(f->elements, sizeof(want) / sizeof(*want));
    for (size_t k = 0; k < f->elements; k++)
        assert_string_equal(f->element[k]->str, want[k]);
    freeReplyObject(r);
    assert_false(pending(0));
    r = hq_test_cmd(C, "ZSCORE t:lines ep1/k");
    assert_string_equal(r->str, "inf");
    freeReplyObject(r);
    assert_int_equal(str_num(hq_test_cmd(C, "HGET t:lines:busy ep1")), 1);
    assert_int_equal(hq_test_cmd_int(C, "ZCARD t:lines:ep1/k"), 2);
    assert_int_equal(hq_test_cmd_int(C, "HEXISTS t:lines:data ep1/k/" ITEM(10)), 0);
    assert_int_equal(str_num(hq_test_cmd(C, "ZSCORE t:lines ep2/z")), 0);
    assert_int_equal(hq_test_cmd_int(C, "XLEN ev"), 10); /* e0 acked and deleted, x2 added */

    /* Entry 30-0 of t:events is pending: item 40 waits for it, the slot goes
     * to the due line ep1/m (item 25), ep1/k is due behind it. */
    park("ep1/m", ITEM(25), "m25");
    freeReplyObject(hq_test_cmd(C, "ZADD t:lines 0 ep1/m"));
    freeReplyObject(hq_test_cmd(C, "XADD t:events 30-0 type t"));
    freeReplyObject(hq_test_cmd(C, "XREADGROUP GROUP workers b STREAMS t:events >"));
    long long t0 = redis_now_ms();
    assert_int_equal(end_head(1, "ep1/k", ITEM(20)), 2);
    assert_int_equal(hq_test_cmd_int(C, "XLEN ev"), 10); /* e1 deleted, m25 added */
    r = hq_test_cmd(C, "XREVRANGE ev + - COUNT 1");
    assert_string_equal(r->element[0]->element[1]->element[5]->str, "m25");
    freeReplyObject(r);
    assert_int_equal(str_num(hq_test_cmd(C, "HGET t:lines:busy ep1")), 1);
    r = hq_test_cmd(C, "ZSCORE t:lines ep1/m");
    assert_string_equal(r->str, "inf");
    freeReplyObject(r);
    long long due = str_num(hq_test_cmd(C, "ZSCORE t:lines ep1/k"));
    assert_true(due >= t0 && due <= redis_now_ms());
    assert_int_equal(hq_test_cmd_int(C, "ZCARD t:lines:ep1/k"), 1);

    /* ep1/m ends empty; ep1/k's item 40 still waits: nothing chains. */
    assert_int_equal(end_head(2, "ep1/m", ITEM(25)), 1);
    assert_int_equal(hq_test_cmd_int(C, "XLEN ev"), 9);
    assert_int_equal(hq_test_cmd_int(C, "HEXISTS t:lines:busy ep1"), 0);
    r = hq_test_cmd(C, "ZSCORE t:lines ep1/m"); /* an empty line leaves t:lines */
    assert_int_equal(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    assert_int_equal(str_num(hq_test_cmd(C, "ZSCORE t:lines ep2/z")), 0);
}

#define CHAIN_RUN 16 /* record_outcomes.lua's */

/* A line with a backlog keeps its endpoint's slot for CHAIN_RUN heads in a
 * row, then yields it to a line of the endpoint that waited (due since
 * before), and is due itself behind it: with more keys than the endpoint's
 * concurrency, busy keys cannot keep the others waiting. */
static void test_a_line_yields_its_slot_after_a_run_of_chained_heads(void **state)
{
    (void)state;
    char item[64], id[64], entry[64];
    for (int k = 0; k <= CHAIN_RUN + 1; k++) {
        snprintf(item, sizeof(item), "00000000000%04d-00000000000000000001", 100 + k);
        snprintf(id, sizeof(id), "k%d", k);
        park("ep1/k", item, id);
    }
    park("ep1/m", ITEM(50), "m50");
    freeReplyObject(hq_test_cmd(C, "ZADD t:lines +inf ep1/k 0 ep1/m"));
    freeReplyObject(hq_test_cmd(C, "HSET t:lines:busy ep1 1"));
    freeReplyObject(hq_test_cmd(C, "XGROUP CREATE t:events workers 0 MKSTREAM"));
    snprintf(entry, sizeof(entry), "%s", IDS[0]);
    for (int k = 0; k <= CHAIN_RUN; k++) {
        snprintf(item, sizeof(item), "00000000000%04d-00000000000000000001", 100 + k);
        assert_int_equal(end_head_of(entry, "ep1/k", item), 2);
        /* The chained head: read by a, as a worker reads the retry lane. */
        redisReply *r = hq_test_cmd(C, "XREADGROUP GROUP workers a COUNT 1 STREAMS ev >");
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        const redisReply *e = r->element[0]->element[1]->element[0];
        snprintf(entry, sizeof(entry), "%s", e->element[0]->str);
        snprintf(id, sizeof(id), k < CHAIN_RUN ? "k%d" : "m50", k + 1);
        assert_string_equal(e->element[1]->element[5]->str, id);
        freeReplyObject(r);
    }
    /* The run ended: ep1/m holds the slot, ep1/k is due again, not in flight. */
    redisReply *r = hq_test_cmd(C, "ZSCORE t:lines ep1/m");
    assert_string_equal(r->str, "inf");
    freeReplyObject(r);
    r = hq_test_cmd(C, "ZSCORE t:lines ep1/k");
    assert_string_not_equal(r->str, "inf");
    freeReplyObject(r);
    assert_int_equal(str_num(hq_test_cmd(C, "HGET t:lines:busy ep1")), 1);
    assert_int_equal(hq_test_cmd_int(C, "HEXISTS t:lines:busy ep1/k#run"), 0);
    /* ep1/m ends empty: the slot goes back to ep1/k, a run of its own. */
    assert_int_equal(end_head_of(entry, "ep1/m", ITEM(50)), 2);
    r = hq_test_cmd(C, "XREVRANGE ev + - COUNT 1");
    snprintf(id, sizeof(id), "k%d", CHAIN_RUN + 1);
    assert_string_equal(r->element[0]->element[1]->element[5]->str, id);
    freeReplyObject(r);
    assert_int_equal(hq_test_cmd_int(C, "HEXISTS t:lines:busy ep1/m#run"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_range_fence_records_only_this_consumers_entries, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_range_reply_that_fills_its_count_falls_back_per_entry,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_per_entry_fence_without_a_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_form_retry_dead_letter_and_raw_fields, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_attempt_buckets_keep_the_newest_and_drop_old_buckets,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_attempt_records_of_two_calls_are_appended, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_line_end_chains_the_next_head_below_the_watermark,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_line_yields_its_slot_after_a_run_of_chained_heads,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
