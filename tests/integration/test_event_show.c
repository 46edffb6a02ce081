/* `hookq event show` against a real redis-server, over hand-written attempt
 * records in the contract's JSON form (docs/internals/redis-layout.md): a
 * delivered event, one that was retried then dead-lettered, records that are
 * not JSON, unknown events and bad ids. At P = 4: the attempts are found in
 * the partition of the event's id, in partition 0 for an event recorded
 * before a migration, and in the partition a derived id names
 * ("evt_p3_<entry>") before any other. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/keys.h"
#include "common/layout_store.h"
#include "tests/harness/hq_test.h"

static struct hq_test_redis R;
static redisContext *C;
static char ENV_URL[400];
static char OUT[1 << 16], ERR[4096];

static int run(const char *const *args)
{
    const char *env[] = {ENV_URL, NULL};
    OUT[0] = ERR[0] = '\0';
    return hq_test_cli(args, env, NULL, OUT, sizeof(OUT), ERR, sizeof(ERR));
}

static void record(const char *ev, const char *json)
{
    freeReplyObject(hq_test_cmd(C, "RPUSH hookq:att:%s %s", ev, json));
}

/* Appends a record to ev's field in the attempt bucket starting at start ms,
 * as record_outcomes.lua writes them (JSON lines), and lists the bucket. */
static void bucket_record(long long start, const char *ev, const char *json)
{
    redisReply *r = hq_test_cmd(C, "HGET hookq:attempts:%lld %s", start, ev);
    if (r->type == REDIS_REPLY_STRING)
        freeReplyObject(
            hq_test_cmd(C, "HSET hookq:attempts:%lld %s %s\n%s", start, ev, r->str, json));
    else
        freeReplyObject(hq_test_cmd(C, "HSET hookq:attempts:%lld %s %s", start, ev, json));
    freeReplyObject(r);
    freeReplyObject(hq_test_cmd(C, "ZADD hookq:attempts %lld %lld", start, start));
}

/* ev_1: ep_b fails twice (500, timeout) and is dead-lettered at attempt 3;
 * ep_a is delivered at once. Records interleave as a worker writes them: the
 * first in a list by a worker from before attempt buckets, the next two in
 * one bucket, the last in a later one (listed first: order comes from the
 * bucket index's scores, not from insertion). */
static void fixture(void)
{
    freeReplyObject(hq_test_cmd(C, "ZADD hookq:attempts 7200000 7200000"));
    record(
        "ev_1",
        "{\"endpoint_id\":\"ep_b\",\"attempt\":1,\"at_ms\":1764201600000,\"duration_ms\":35,\"status\":500,\"error\":\"http_status\",\"response\":\"oops\\n\\u001b[2J\",\"outcome\":\"retry\"}");
    bucket_record(
        3600000, "ev_1",
        "{\"endpoint_id\":\"ep_a\",\"attempt\":1,\"at_ms\":1764201600010,\"duration_ms\":12,\"status\":200,\"error\":\"\",\"response\":\"ok\",\"outcome\":\"delivered\"}");
    bucket_record(
        3600000, "ev_1",
        "{\"endpoint_id\":\"ep_b\",\"attempt\":2,\"at_ms\":1764201630000,\"duration_ms\":15000,\"status\":0,\"error\":\"timeout: no answer\",\"response\":\"\",\"outcome\":\"retry\"}");
    bucket_record(
        7200000, "ev_1",
        "{\"endpoint_id\":\"ep_b\",\"attempt\":3,\"at_ms\":1764201720000,\"duration_ms\":40,\"status\":503,\"error\":\"http_status\",\"response\":\"down\",\"outcome\":\"dead\"}");
}

static void test_attempts_are_grouped_by_endpoint_with_every_detail(void **state)
{
    (void)state;
    fixture();
    const char *a[] = {"event", "show", "ev_1", NULL};
    assert_int_equal(run(a), 0);
    assert_non_null(strstr(OUT, "event ev_1: 4 attempts recorded"));
    char *b = strstr(OUT, "endpoint ep_b"), *ea = strstr(OUT, "endpoint ep_a");
    assert_true(b && ea && b < ea); /* first appearance order */
    /* ep_b's three attempts come before ep_a's group, in order. */
    char *b1 = strstr(b, "#1"), *b2 = strstr(b, "#2"), *b3 = strstr(b, "#3");
    assert_true(b1 && b2 && b3 && b1 < b2 && b2 < b3 && b3 < ea);
    assert_non_null(strstr(OUT, "2025-11-27T00:00:00.000Z"));
    assert_non_null(strstr(b, "retry"));
    assert_non_null(strstr(b, "status 500"));
    assert_non_null(strstr(b, "15000 ms"));
    assert_non_null(strstr(b, "error timeout: no answer"));
    assert_non_null(strstr(b3, "dead"));
    assert_non_null(strstr(ea, "delivered"));
    assert_non_null(strstr(ea, "status 200"));
    /* The response snippet is escaped for the terminal: no raw ESC or newline. */
    assert_non_null(strstr(OUT, "response: oops\\n\\x1b[2J"));
    assert_null(strchr(OUT, '\x1b'));
}

static void test_json_output_groups_the_raw_records(void **state)
{
    (void)state;
    fixture();
    const char *a[] = {"event", "show", "ev_1", "--json", NULL};
    assert_int_equal(run(a), 0);
    assert_non_null(strstr(
        OUT,
        "{\"event_id\":\"ev_1\",\"endpoints\":[{\"endpoint_id\":\"ep_b\",\"attempts\":[{\"endpoint_id\":\"ep_b\",\"attempt\":1,"));
    assert_non_null(strstr(OUT, "]},{\"endpoint_id\":\"ep_a\",\"attempts\":[{"));
    assert_non_null(strstr(OUT, "\"outcome\":\"delivered\"}]}]}\n"));
}

static void test_records_that_are_not_json_are_shown_not_fatal(void **state)
{
    (void)state;
    record("ev_2", "garbage \x07 here");
    record(
        "ev_2",
        "{\"endpoint_id\":\"ep_a\",\"attempt\":1,\"nested\":{\"x\":[1,2]},\"status\":204,\"outcome\":\"delivered\"}");
    record("ev_2", "{\"endpoint_id\":\"ep_a\",\"attempt\":");
    const char *a[] = {"event", "show", "ev_2", NULL};
    assert_int_equal(run(a), 0);
    assert_non_null(strstr(OUT, "(not a JSON object) garbage \\x07 here"));
    assert_non_null(strstr(OUT, "status 204"));
    const char *j[] = {"event", "show", "ev_2", "--json", NULL};
    assert_int_equal(run(j), 0);
    assert_non_null(strstr(OUT, "\"garbage \\u0007 here\""));
}

static void test_unknown_event_exits_1_naming_the_retention(void **state)
{
    (void)state;
    const char *a[] = {"event", "show", "ev_nope", NULL};
    assert_int_equal(run(a), 1);
    assert_string_equal(
        ERR,
        "hookq event show: no attempts recorded for event 'ev_nope' (kept for HOOKQ_ATTEMPT_TTL)\n");
}

static void test_bad_usage_and_ids_exit_2(void **state)
{
    (void)state;
    const char *a[] = {"event", "show", "bad.id", NULL};
    assert_int_equal(run(a), 2);
    assert_non_null(strstr(ERR, "bad.id"));
    const char *b[] = {"event", "list", NULL};
    assert_int_equal(run(b), 2);
    assert_non_null(strstr(ERR, "usage: hookq event show EVENT_ID"));
}

static void record_in(const char *base, const char *ev, const char *endpoint)
{
    char key[HQ_KEY_MAX], json[256];
    hq_key_attempts(base, ev, key, sizeof(key));
    snprintf(json, sizeof(json),
             "{\"endpoint_id\":\"%s\",\"attempt\":1,\"at_ms\":1764201600000,\"duration_ms\":5,"
             "\"status\":200,\"error\":\"\",\"response\":\"\",\"outcome\":\"delivered\"}",
             endpoint);
    freeReplyObject(hq_test_cmd(C, "RPUSH %s %s", key, json));
}

static void test_p4_attempts_are_found_in_their_partition_or_any(void **state)
{
    (void)state;
    struct hq_err e = {0};
    struct hq_layout L = {0};
    struct hq_redis_conn *conn = hq_redis_conn_open(R.url, 2000, &e);
    assert_non_null(conn);
    assert_int_equal(hq_layout_create(conn, "hookq", 4, &L, &e), 0);
    hq_redis_conn_free(conn);

    /* By the producer rule. */
    unsigned p = hq_layout_partition_for(&L, "ord_17", 6, 0);
    record_in(L.part[p].base, "ord_17", "ep_rule");
    const char *a[] = {"event", "show", "ord_17", NULL};
    assert_int_equal(run(a), 0);
    assert_non_null(strstr(OUT, "endpoint ep_rule"));

    /* Recorded before the migration: partition 0, whatever the rule says. */
    char old[32];
    for (int i = 0;; i++) {
        snprintf(old, sizeof(old), "old_%d", i);
        if (hq_layout_partition_for(&L, old, strlen(old), 0) != 0)
            break;
    }
    record_in(L.part[0].base, old, "ep_old");
    const char *b[] = {"event", "show", old, NULL};
    assert_int_equal(run(b), 0);
    assert_non_null(strstr(OUT, "endpoint ep_old"));

    /* A derived id names its partition, which wins over the rule's. */
    const char *derived = "evt_p3_1700000000000-0";
    unsigned rule = hq_layout_partition_for(&L, derived, strlen(derived), 0);
    assert_int_not_equal(rule, 3); /* else this case proves nothing */
    record_in(L.part[rule].base, derived, "ep_decoy");
    record_in(L.part[3].base, derived, "ep_named");
    const char *c[] = {"event", "show", derived, NULL};
    assert_int_equal(run(c), 0);
    assert_non_null(strstr(OUT, "endpoint ep_named"));

    const char *d[] = {"event", "show", "nowhere", NULL};
    assert_int_equal(run(d), 1);
    assert_non_null(strstr(ERR, "no attempts recorded for event 'nowhere'"));
    hq_layout_free(&L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_attempts_are_grouped_by_endpoint_with_every_detail,
                               hq_test_group_flush),
        cmocka_unit_test_setup(test_json_output_groups_the_raw_records, hq_test_group_flush),
        cmocka_unit_test_setup(test_records_that_are_not_json_are_shown_not_fatal,
                               hq_test_group_flush),
        cmocka_unit_test_setup(test_unknown_event_exits_1_naming_the_retention,
                               hq_test_group_flush),
        cmocka_unit_test_setup(test_bad_usage_and_ids_exit_2, hq_test_group_flush),
        cmocka_unit_test_setup(test_p4_attempts_are_found_in_their_partition_or_any,
                               hq_test_group_flush),
    };
    hq_test_redis_group(&R, &C, ENV_URL, sizeof(ENV_URL));
    return cmocka_run_group_tests(tests, hq_test_group_setup, hq_test_group_teardown);
}
