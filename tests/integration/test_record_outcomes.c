/* record_outcomes.lua against a real redis-server, called the way the worker
 * calls it: the fence records and acknowledges exactly the entries this
 * consumer still owns, whether it is checked with one XPENDING over a range,
 * per entry, or per entry after a range reply that filled its count; and a
 * call repeated after its reply was lost records nothing twice. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "tests/harness/hq_test.h"

extern const char hq_script_record_outcomes[];

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

/* Calls the script as consumer a for events idx[0..n) (one "delivered" op
 * each: event id, attempt record, no retry, no dead letter), with the fence
 * range given or "" for per-entry checks. The reply's integers go to got. */
static void record(const int *idx, int n, const char *rmin, const char *rmax, const char *rcount,
                   long long *got)
{
    const char *argv[128];
    size_t lens[128];
    char evs[10][8], jsons[10][64];
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
    STR("att:");
    STR("0");
    STR(rmin);
    STR(rmax);
    STR(rcount);
    for (int k = 0; k < n; k++) {
        snprintf(evs[k], sizeof(evs[k]), "e%d", idx[k]);
        snprintf(jsons[k], sizeof(jsons[k]), "{\"outcome\":\"delivered\",\"e\":%d}", idx[k]);
        STR(IDS[idx[k]]);
        STR("3"); /* one delivery op: "a", event id, attempt record */
        STR("a");
        STR(evs[k]);
        STR(jsons[k]);
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

/* 1 when entry i is still pending, to whoever. */
static int pending(int i)
{
    redisReply *r = hq_test_cmd(C, "XPENDING ev workers %s %s 1", IDS[i], IDS[i]);
    int n = (int)r->elements;
    freeReplyObject(r);
    return n;
}

static long long records(int i)
{
    return hq_test_cmd_int(C, "LLEN att:e%d", i);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_range_fence_records_only_this_consumers_entries, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_range_reply_that_fills_its_count_falls_back_per_entry,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_per_entry_fence_without_a_range, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
