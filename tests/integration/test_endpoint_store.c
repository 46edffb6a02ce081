/* The endpoint registry's paged walk (hq_endpoint_scan, hq_endpoint_scan_from)
 * and the listing decoder (hq_endpoint_from_listing) against a real
 * redis-server. The CLI's `endpoint list` only shows the walk's happy path;
 * here each page boundary case is driven directly: more endpoints than one
 * page, a callback stopping mid-page, a limit and the `more` hint, and
 * deletions (the cursor's own endpoint included) between and during pages.
 * The scan takes no filter, so there is none to test. Endpoints are created
 * with hq_endpoint_create, the code `hookq endpoint add` runs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/endpoint.h"
#include "common/endpoint_store.h"
#include "common/limits.h"
#include "tests/harness/hq_test.h"

static struct hq_test_redis R;
static redisContext *C;

#define P "st"
/* Two full pages and a partial third: every page boundary is crossed. */
#define N (2 * HQ_LIST_PAGE + 7)

/* Ids in the walk's order (the zset's: created ms, then id for ties). */
static char ids[N][HQ_ENDPOINT_ID_MAX + 1];

static void create_n(int n)
{
    for (int i = 0; i < n; i++)
        hq_test_endpoint_numbered(C, P, i, ids[i], sizeof(ids[i]));
    redisReply *r = hq_test_cmd(C, "ZRANGE " P ":endpoints 0 -1");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, (size_t)n);
    for (int i = 0; i < n; i++)
        snprintf(ids[i], sizeof(ids[i]), "%s", r->element[i]->str);
    freeReplyObject(r);
}

/* What a walk saw, in order. */
struct seen {
    char (*ids)[HQ_ENDPOINT_ID_MAX + 1];
    int n;
    int stop_at;        /* cb returns 1 on this (1-based) endpoint; 0 = never */
    int key_seen;       /* a key reached the callback */
    redisContext *side; /* a second connection for deleting during the walk */
    int delete_at;      /* on this (1-based) endpoint, delete the dels below */
    const char *dels[4];
};

static int collect(const struct hq_endpoint *e, void *arg)
{
    struct seen *s = arg;
    assert_true(s->n < 2 * N);
    snprintf(s->ids[s->n], sizeof(s->ids[s->n]), "%s", e->id);
    s->n++;
    if (e->key1[0] || e->key2[0])
        s->key_seen = 1;
    if (s->delete_at && s->n == s->delete_at)
        for (int i = 0; i < 4 && s->dels[i]; i++) {
            struct hq_err err = {0};
            assert_int_equal(hq_endpoint_delete(s->side, P, s->dels[i], &err), 0);
        }
    return s->stop_at && s->n == s->stop_at;
}

static struct seen *seen_new(void)
{
    struct seen *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->ids = calloc(2 * N, sizeof(*s->ids));
    assert_non_null(s->ids);
    return s;
}

static void seen_free(struct seen *s)
{
    free(s->ids);
    free(s);
}

static int scan(struct hq_endpoint_cursor *cur, long long limit, struct seen *s)
{
    struct hq_err err = {0};
    int rc = hq_endpoint_scan(C, P, cur, limit, collect, s, &err);
    assert_int_equal(rc, 0);
    return rc;
}

/* Asserts s saw exactly ids[from..to) in order, skipping the indexes in gone
 * (terminated by -1). */
static void assert_saw(const struct seen *s, int off, int from, int to, const int *gone)
{
    int k = off;
    for (int i = from; i < to; i++) {
        int skip = 0;
        for (const int *g = gone; g && *g >= 0; g++)
            skip |= *g == i;
        if (skip)
            continue;
        assert_true(k < s->n);
        assert_string_equal(s->ids[k], ids[i]);
        k++;
    }
    assert_int_equal(k, s->n);
}

static long long zrange_calls(void)
{
    redisReply *r = hq_test_cmd(C, "INFO commandstats");
    const char *p = strstr(r->str, "cmdstat_zrange:calls=");
    long long calls = p ? strtoll(p + strlen("cmdstat_zrange:calls="), NULL, 10) : 0;
    freeReplyObject(r);
    return calls;
}

static void test_scan_yields_every_endpoint_once_across_pages_without_keys(void **state)
{
    (void)state;
    create_n(N);
    freeReplyObject(hq_test_cmd(C, "CONFIG RESETSTAT"));
    struct seen *s = seen_new();
    struct hq_endpoint_cursor cur;
    struct hq_err err = {0};
    assert_int_equal(hq_endpoint_scan_from(C, P, NULL, &cur, &err), 0);
    scan(&cur, 0, s);
    /* Oldest first, each once, none missing. */
    assert_saw(s, 0, 0, N, NULL);
    assert_int_equal(cur.more, 0);
    /* A listing never reads the signing keys. */
    assert_int_equal(s->key_seen, 0);
    /* HQ_LIST_PAGE per round trip: three pages for two pages and a bit. */
    assert_int_equal(zrange_calls(), 3);
    seen_free(s);
}

static void test_scan_stopped_by_callback_mid_page_resumes_after_it(void **state)
{
    (void)state;
    create_n(N);
    /* Mid second page, so the rest of the page was fetched but not yielded. */
    const int stop = HQ_LIST_PAGE + HQ_LIST_PAGE / 2;
    struct seen *s = seen_new();
    s->stop_at = stop;
    struct hq_endpoint_cursor cur;
    struct hq_err err = {0};
    assert_int_equal(hq_endpoint_scan_from(C, P, NULL, &cur, &err), 0);
    scan(&cur, 0, s);
    assert_int_equal(s->n, stop);
    assert_string_equal(cur.last, ids[stop - 1]);
    assert_int_equal(cur.more, 1);

    /* The next call continues just after the endpoint cb stopped on. */
    s->stop_at = 0;
    scan(&cur, 0, s);
    assert_saw(s, 0, 0, N, NULL);
    assert_int_equal(cur.more, 0);
    seen_free(s);
}

static void test_scan_limit_sets_more_only_when_endpoints_remain(void **state)
{
    (void)state;
    create_n(N);
    struct seen *s = seen_new();
    struct hq_endpoint_cursor cur;
    struct hq_err err = {0};
    assert_int_equal(hq_endpoint_scan_from(C, P, NULL, &cur, &err), 0);

    /* Just past a page: the limit cuts the second page short. */
    scan(&cur, HQ_LIST_PAGE + 1, s);
    assert_int_equal(s->n, HQ_LIST_PAGE + 1);
    assert_string_equal(cur.last, ids[HQ_LIST_PAGE]);
    assert_int_equal(cur.more, 1);

    /* A limit of exactly what remains: all yielded and nothing left, so no
     * "more" although the limit was reached. */
    scan(&cur, N - (HQ_LIST_PAGE + 1), s);
    assert_saw(s, 0, 0, N, NULL);
    assert_int_equal(cur.more, 0);

    /* Past the end: nothing more, and still no "more". */
    scan(&cur, 5, s);
    assert_int_equal(s->n, N);
    assert_int_equal(cur.more, 0);

    /* A limit beyond the registry's size yields everything, no "more". */
    struct seen *all = seen_new();
    assert_int_equal(hq_endpoint_scan_from(C, P, NULL, &cur, &err), 0);
    scan(&cur, N + 100, all);
    assert_saw(all, 0, 0, N, NULL);
    assert_int_equal(cur.more, 0);
    seen_free(all);
    seen_free(s);
}

static void test_scan_from_starts_after_the_id_and_refuses_an_unknown_one(void **state)
{
    (void)state;
    create_n(N);
    struct seen *s = seen_new();
    struct hq_endpoint_cursor cur;
    struct hq_err err = {0};
    assert_int_equal(hq_endpoint_scan_from(C, P, ids[HQ_LIST_PAGE - 1], &cur, &err), 0);
    scan(&cur, 0, s);
    assert_saw(s, 0, HQ_LIST_PAGE, N, NULL);

    memset(&err, 0, sizeof(err));
    assert_int_equal(hq_endpoint_scan_from(C, P, "ep_nosuchendpoint", &cur, &err), HQ_ENOTFOUND);
    assert_non_null(strstr(err.msg, "no endpoint 'ep_nosuchendpoint'"));
    seen_free(s);
}

/* Gives every endpoint the same created ms, as endpoints created within one
 * millisecond have: the walk must then place a deleted cursor by id among
 * its ties, not by score alone. */
static void same_millisecond(int n)
{
    for (int i = 0; i < n; i++)
        freeReplyObject(hq_test_cmd(C, "ZADD " P ":endpoints XX 1700000000000 %s", ids[i]));
    redisReply *r = hq_test_cmd(C, "ZRANGE " P ":endpoints 0 -1");
    for (int i = 0; i < n; i++)
        snprintf(ids[i], sizeof(ids[i]), "%s", r->element[i]->str);
    freeReplyObject(r);
}

static void test_scan_goes_on_when_the_cursors_endpoint_is_deleted_between_calls(void **state)
{
    (void)state;
    create_n(N);
    same_millisecond(N);
    struct seen *s = seen_new();
    struct hq_endpoint_cursor cur;
    struct hq_err err = {0};
    assert_int_equal(hq_endpoint_scan_from(C, P, NULL, &cur, &err), 0);
    scan(&cur, HQ_LIST_PAGE, s);
    assert_string_equal(cur.last, ids[HQ_LIST_PAGE - 1]);
    assert_int_equal(cur.more, 1);

    /* The cursor's own endpoint goes, and one already walked past: neither
     * may shift the resumed walk back (duplicates) or forward (gaps). */
    assert_int_equal(hq_endpoint_delete(C, P, ids[HQ_LIST_PAGE - 1], &err), 0);
    assert_int_equal(hq_endpoint_delete(C, P, ids[3], &err), 0);
    scan(&cur, 0, s);
    assert_saw(s, 0, 0, N, NULL);
    assert_int_equal(cur.more, 0);
    seen_free(s);
}

static void test_scan_goes_on_when_endpoints_are_deleted_during_the_walk(void **state)
{
    (void)state;
    create_n(N);
    same_millisecond(N);
    struct seen *s = seen_new();
    s->side = hq_test_redis_connect(&R);
    /* On the first page's last endpoint (where the cursor stands between the
     * round trips), delete it, one walked past and one not yet reached. */
    s->delete_at = HQ_LIST_PAGE;
    s->dels[0] = ids[HQ_LIST_PAGE - 1];
    s->dels[1] = ids[10];
    s->dels[2] = ids[HQ_LIST_PAGE + 50];
    struct hq_endpoint_cursor cur;
    struct hq_err err = {0};
    assert_int_equal(hq_endpoint_scan_from(C, P, NULL, &cur, &err), 0);
    scan(&cur, 0, s);
    const int gone[] = {HQ_LIST_PAGE + 50, -1};
    assert_saw(s, 0, 0, N, gone);
    assert_int_equal(cur.more, 0);
    redisFree(s->side);
    seen_free(s);
}

/* HMGET of the listing fields of <p>:ep:<id>, as the scan sends it. */
static redisReply *hmget_listing(const char *id)
{
    char key[128];
    snprintf(key, sizeof(key), P ":ep:%s", id);
    const char *argv[2 + HQ_ENDPOINT_LISTING_FIELDS] = {"HMGET", key};
    for (int f = 0; f < HQ_ENDPOINT_LISTING_FIELDS; f++)
        argv[2 + f] = hq_endpoint_listing_fields[f];
    redisReply *r = redisCommandArgv(C, 2 + HQ_ENDPOINT_LISTING_FIELDS, argv, NULL);
    assert_non_null(r);
    return r;
}

static void test_from_listing_fills_defaults_for_missing_optional_fields(void **state)
{
    (void)state;
    freeReplyObject(hq_test_cmd(C, "HSET " P ":ep:ep_min name n url https://example.com/x"));
    redisReply *r = hmget_listing("ep_min");
    struct hq_endpoint e;
    assert_int_equal(hq_endpoint_from_listing(r, "ep_min", &e), 0);
    assert_string_equal(e.id, "ep_min");
    assert_string_equal(e.name, "n");
    assert_string_equal(e.url, "https://example.com/x");
    assert_string_equal(e.description, "");
    assert_int_equal(e.nevents, 0); /* none = every type */
    assert_int_equal(e.nheaders, 0);
    assert_int_equal(e.enabled, 1); /* no field: enabled, as created */
    assert_int_equal(e.max_attempts, 0);
    assert_int_equal(e.created_ms, 0);
    assert_int_equal(e.updated_ms, 0);
    hq_endpoint_free(&e);
    freeReplyObject(r);

    /* Not even a name or url: shown with empty strings, never NULL. */
    freeReplyObject(hq_test_cmd(C, "HSET " P ":ep:ep_bare enabled 0"));
    r = hmget_listing("ep_bare");
    assert_int_equal(hq_endpoint_from_listing(r, "ep_bare", &e), 0);
    assert_string_equal(e.name, "");
    assert_string_equal(e.url, "");
    assert_int_equal(e.enabled, 0);
    hq_endpoint_free(&e);
    freeReplyObject(r);

    /* Every field nil: the endpoint is gone. */
    r = hmget_listing("ep_gone");
    assert_int_equal(hq_endpoint_from_listing(r, "ep_gone", &e), 1);
    hq_endpoint_free(&e);
    freeReplyObject(r);
}

static void test_from_listing_shows_a_malformed_hash_and_refuses_another_shape(void **state)
{
    (void)state;
    /* A hand-edited hash: empty filters and header lines, non-numbers. */
    freeReplyObject(hq_test_cmd(
        C,
        "HSET " P ":ep:ep_bad name b url x events %s headers %s enabled yes max_attempts abc "
        "created_ms 12x updated_ms -",
        ",a.b,,c.*,", "\nX-A: 1\n\n"));
    redisReply *r = hmget_listing("ep_bad");
    struct hq_endpoint e;
    assert_int_equal(hq_endpoint_from_listing(r, "ep_bad", &e), 0);
    assert_int_equal(e.nevents, 2);
    assert_string_equal(e.events[0], "a.b");
    assert_string_equal(e.events[1], "c.*");
    assert_int_equal(e.nheaders, 1);
    assert_string_equal(e.headers[0], "X-A: 1");
    assert_int_equal(e.enabled, 0); /* only "1" enables */
    assert_int_equal(e.max_attempts, 0);
    assert_int_equal(e.created_ms, 12);
    assert_int_equal(e.updated_ms, 0);
    hq_endpoint_free(&e);
    freeReplyObject(r);

    /* Replies of another shape than an HMGET of the listing fields. */
    r = hq_test_cmd(C, "HMGET " P ":ep:ep_bad name url");
    assert_int_equal(hq_endpoint_from_listing(r, "ep_bad", &e), -1);
    hq_endpoint_free(&e);
    freeReplyObject(r);
    r = hq_test_cmd(C, "HLEN " P ":ep:ep_bad");
    assert_int_equal(hq_endpoint_from_listing(r, "ep_bad", &e), -1);
    hq_endpoint_free(&e);
    freeReplyObject(r);
    assert_int_equal(hq_endpoint_from_listing(NULL, "ep_bad", &e), -1);
    hq_endpoint_free(&e);
}

static void test_scan_yields_a_hand_made_hash_and_skips_a_dangling_id(void **state)
{
    (void)state;
    freeReplyObject(hq_test_cmd(C, "HSET " P ":ep:ep_hand name h"));
    freeReplyObject(hq_test_cmd(C, "ZADD " P ":endpoints 1 ep_hand 2 ep_dangling 3 ep_last"));
    freeReplyObject(hq_test_cmd(C, "HSET " P ":ep:ep_last name l url u"));
    struct seen *s = seen_new();
    struct hq_endpoint_cursor cur;
    struct hq_err err = {0};
    assert_int_equal(hq_endpoint_scan_from(C, P, NULL, &cur, &err), 0);
    scan(&cur, 0, s);
    assert_int_equal(s->n, 2);
    assert_string_equal(s->ids[0], "ep_hand");
    assert_string_equal(s->ids[1], "ep_last");
    seen_free(s);
}

/* A new connection per test as well as an empty server: a test failing
 * inside the walk's callback leaves its connection's pipelined replies unread,
 * which must not fail the tests after it. */
static int fresh(void **state)
{
    (void)state;
    redisFree(C);
    C = hq_test_redis_connect(&R);
    hq_test_flushall(C);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_scan_yields_every_endpoint_once_across_pages_without_keys,
                               fresh),
        cmocka_unit_test_setup(test_scan_stopped_by_callback_mid_page_resumes_after_it, fresh),
        cmocka_unit_test_setup(test_scan_limit_sets_more_only_when_endpoints_remain, fresh),
        cmocka_unit_test_setup(test_scan_from_starts_after_the_id_and_refuses_an_unknown_one,
                               fresh),
        cmocka_unit_test_setup(test_scan_goes_on_when_the_cursors_endpoint_is_deleted_between_calls,
                               fresh),
        cmocka_unit_test_setup(test_scan_goes_on_when_endpoints_are_deleted_during_the_walk, fresh),
        cmocka_unit_test_setup(test_from_listing_fills_defaults_for_missing_optional_fields, fresh),
        cmocka_unit_test_setup(test_from_listing_shows_a_malformed_hash_and_refuses_another_shape,
                               fresh),
        cmocka_unit_test_setup(test_scan_yields_a_hand_made_hash_and_skips_a_dangling_id, fresh),
    };
    hq_test_redis_group(&R, &C, NULL, 0);
    return cmocka_run_group_tests(tests, hq_test_group_setup, hq_test_group_teardown);
}
