/* `hookq endpoint ...` against a private redis-server: add/show/list/update/
 * rotate/disable/enable/delete do what they say to the hash, the listing zset,
 * the idx:* sets and the version counter; listing pages through thousands of
 * endpoints; the subscribers of a type are exactly one SUNION over
 * hq_endpoint_index_keys; keys and header values are only printed where
 * documented; every bad input gets one line and the documented exit status.
 * In a tagged layout (P = 4) every registry key the commands write carries
 * the {reg} tag, and none is left untagged. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/endpoint.h"
#include "common/endpoint_store.h"
#include "common/layout_store.h"
#include "tests/harness/hq_test.h"

#define OUT_MAX (4 * 1024 * 1024)

static struct hq_test_redis redis;
static redisContext *rc_;
static char *out;
static char err[4096];

static int setup(void **state)
{
    (void)state;
    hq_test_redis_start(&redis, NULL);
    rc_ = hq_test_redis_connect(&redis);
    out = malloc(OUT_MAX);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    redisFree(rc_);
    free(out);
    hq_test_redis_destroy(&redis);
    return 0;
}

/* Runs `hookq endpoint <args...> --redis-url <url> --prefix <prefix>` with env
 * (may be NULL); output in out/err; returns the exit status. */
static int ep_env(const char *const *env, const char *prefix, ...)
{
    const char *args[48];
    int n = 0;
    args[n++] = "endpoint";
    va_list ap;
    va_start(ap, prefix);
    for (const char *a = va_arg(ap, const char *); a && n < 40; a = va_arg(ap, const char *))
        args[n++] = a;
    va_end(ap);
    args[n++] = "--redis-url";
    args[n++] = redis.url;
    args[n++] = "--prefix";
    args[n++] = prefix;
    args[n] = NULL;
    return hq_test_cli(args, env, NULL, out, OUT_MAX, err, sizeof(err));
}
#define EP(prefix, ...) ep_env(NULL, prefix, __VA_ARGS__, NULL)

/* Copies what follows pat in s, up to the first of stop, into v; fails the
 * test naming what and where when pat is absent. */
static void value_after(const char *s, const char *pat, const char *stop, const char *what,
                        const char *where, char *v, size_t n)
{
    const char *p = strstr(s, pat);
    if (!p)
        fail_msg("no '%s' in %s: %s", what, where, s);
    p += strlen(pat);
    size_t len = strcspn(p, stop);
    assert_true(len < n);
    memcpy(v, p, len);
    v[len] = '\0';
}

/* Copies the rest of the line after "<label>: " in s into v. */
static void line_value(const char *s, const char *label, char *v, size_t n)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "%s: ", label);
    value_after(s, pat, "\n", label, "output", v, n);
}

/* Copies the string value of "field" in a JSON object into v. */
static void json_str_field(const char *s, const char *field, char *v, size_t n)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":\"", field);
    value_after(s, pat, "\"", field, "JSON", v, n);
}

struct added {
    char id[80], key1[160], key2[160];
};

static void add_ok(const char *prefix, struct added *a, const char *events)
{
    assert_int_equal(EP(prefix, "add", "--name", "Billing", "--url", "https://example.com/hook",
                        "--events", events),
                     0);
    assert_string_equal(err, "");
    line_value(out, "id", a->id, sizeof(a->id));
    line_value(out, "key1", a->key1, sizeof(a->key1));
    line_value(out, "key2", a->key2, sizeof(a->key2));
}

static int sismember(const char *key, const char *id)
{
    return (int)hq_test_cmd_int(rc_, "SISMEMBER %s %s", key, id);
}

static long long version(const char *prefix)
{
    redisReply *r = hq_test_cmd(rc_, "GET %s:endpoints:ver", prefix);
    long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
    freeReplyObject(r);
    return v;
}

/* ---- add / show -------------------------------------------------------------------- */

static void test_add_prints_id_and_keys_and_show_masks_them(void **state)
{
    (void)state;
    struct added a;
    add_ok("t1", &a, "invoice.paid,user.*");
    assert_int_equal(strncmp(a.id, "ep_", 3), 0);
    assert_int_equal(strlen(a.id), 27);
    assert_int_equal(strspn(a.id + 3, "abcdefghijklmnopqrstuvwxyz234567"), 24);
    assert_int_equal(strncmp(a.key1, "whsec_", 6), 0);
    assert_int_equal(strncmp(a.key2, "whsec_", 6), 0);
    assert_string_not_equal(a.key1, a.key2);
    assert_int_equal(version("t1"), 1);

    /* Stored as documented: hash, zset, indexes. */
    assert_int_equal(hq_test_cmd_int(rc_, "EXISTS t1:ep:%s", a.id), 1);
    redisReply *r = hq_test_cmd(rc_, "ZSCORE t1:endpoints %s", a.id);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    assert_int_equal(sismember("t1:idx:t:invoice.paid", a.id), 1);
    assert_int_equal(sismember("t1:idx:p:user.", a.id), 1);

    assert_int_equal(EP("t1", "show", a.id), 0);
    assert_null(strstr(out, a.key1));
    assert_null(strstr(out, a.key2));
    char masked[64];
    snprintf(masked, sizeof(masked), "whsec_\xe2\x80\xa6%s", a.key1 + strlen(a.key1) - 4);
    assert_non_null(strstr(out, masked));
    assert_non_null(strstr(out, "name:         Billing\n"));
    assert_non_null(strstr(out, "url:          https://example.com/hook\n"));
    assert_non_null(strstr(out, "events:       invoice.paid,user.*\n"));
    assert_non_null(strstr(out, "state:        enabled\n"));

    assert_int_equal(EP("t1", "show", a.id, "--reveal"), 0);
    assert_non_null(strstr(out, a.key1));
    assert_non_null(strstr(out, a.key2));

    assert_int_equal(EP("t1", "show", a.id, "--json"), 0);
    char v[200];
    json_str_field(out, "id", v, sizeof(v));
    assert_string_equal(v, a.id);
    json_str_field(out, "key1", v, sizeof(v));
    assert_string_equal(v, masked);
    assert_non_null(strstr(out, "\"events\":[\"invoice.paid\",\"user.*\"]"));
    assert_non_null(strstr(out, "\"enabled\":true"));
    assert_non_null(strstr(out, "\"max_attempts\":0"));
    assert_non_null(strstr(out, "\"key1_ms\":"));

    assert_int_equal(EP("t1", "show", a.id, "--json", "--reveal"), 0);
    json_str_field(out, "key2", v, sizeof(v));
    assert_string_equal(v, a.key2);
}

static void test_add_json_prints_the_object_with_keys(void **state)
{
    (void)state;
    assert_int_equal(EP("t2", "add", "--name", "N", "--url", "https://example.com/",
                        "--description", "say \"hi\"", "--max-attempts", "5", "--disabled",
                        "--json"),
                     0);
    char id[80], k1[160], k2[160];
    json_str_field(out, "id", id, sizeof(id));
    json_str_field(out, "key1", k1, sizeof(k1));
    json_str_field(out, "key2", k2, sizeof(k2));
    assert_int_equal(strncmp(k1, "whsec_", 6), 0);
    assert_non_null(strstr(out, "\"description\":\"say \\\"hi\\\"\""));
    assert_non_null(strstr(out, "\"enabled\":false"));
    assert_non_null(strstr(out, "\"max_attempts\":5"));
    assert_non_null(strstr(out, "\"events\":[\"*\"]"));
    /* No --events: subscribed to everything, through the "*" index. */
    assert_int_equal(sismember("t2:idx:p:", id), 1);
    redisReply *r = hq_test_cmd(rc_, "HGET t2:ep:%s key1", id);
    assert_string_equal(r->str, k1);
    freeReplyObject(r);
}

static void test_header_values_are_masked_except_on_add_and_reveal(void **state)
{
    (void)state;
    assert_int_equal(EP("t3", "add", "--name", "N", "--url", "https://example.com/", "--header",
                        "Authorization: Bearer tok123", "--header", "X-Tenant: 9", "--json"),
                     0);
    char id[80];
    json_str_field(out, "id", id, sizeof(id));
    assert_non_null(strstr(out, "tok123"));
    assert_int_equal(EP("t3", "show", id), 0);
    assert_null(strstr(out, "tok123"));
    assert_non_null(strstr(out, "Authorization: ***"));
    assert_int_equal(EP("t3", "list"), 0);
    assert_null(strstr(out, "tok123"));
    assert_int_equal(EP("t3", "list", "--json"), 0);
    assert_null(strstr(out, "tok123"));
    assert_int_equal(EP("t3", "show", id, "--reveal"), 0);
    assert_non_null(strstr(out, "Authorization: Bearer tok123"));
}

/* ---- list --------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collects the "id" values of a list --json output (strdup'ed) into ids. */
static size_t collect_ids(const char *s, char **ids, size_t max)
{
    size_t n = 0;
    for (const char *p = strstr(s, "{\"id\":\""); p; p = strstr(p + 1, "{\"id\":\"")) {
        assert_true(n < max);
        p += 7;
        ids[n++] = strndup(p, strcspn(p, "\""));
    }
    return n;
}

#define MANY 1200

static void test_list_pages_through_all_endpoints(void **state)
{
    (void)state;
    static char *created[MANY], *listed[MANY + 10];
    for (int i = 0; i < MANY; i++) {
        char id[HQ_ENDPOINT_ID_MAX + 1];
        hq_test_endpoint_numbered(rc_, "many", i, id, sizeof(id));
        created[i] = strdup(id);
    }
    qsort(created, MANY, sizeof(char *), cmp_str);

    /* One run streams every page (HQ_LIST_PAGE at a time). */
    assert_int_equal(EP("many", "list", "--json"), 0);
    size_t n = collect_ids(out, listed, MANY + 10);
    assert_int_equal(n, MANY);
    assert_non_null(strstr(out, "\"next_after\":null}"));
    assert_null(strstr(out, "whsec_"));
    qsort(listed, n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(listed[i], created[i]);
        free(listed[i]);
    }

    /* Human output: a header line and one line per endpoint. */
    assert_int_equal(EP("many", "list"), 0);
    size_t lines = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, MANY + 1);
    assert_int_equal(strncmp(out, "ID\tSTATE\tNAME\tURL\tEVENTS\n", 24), 0);

    /* --limit/--after: pages of 500 chained by next_after reach everything once. */
    size_t total = 0, pages = 0;
    char after[80] = "";
    for (;;) {
        int st = after[0] ? EP("many", "list", "--json", "--limit", "500", "--after", after)
                          : EP("many", "list", "--json", "--limit", "500");
        assert_int_equal(st, 0);
        size_t k = collect_ids(out, listed + total, MANY + 10 - total);
        assert_true(k <= 500);
        total += k;
        pages++;
        if (strstr(out, "\"next_after\":null"))
            break;
        json_str_field(out, "next_after", after, sizeof(after));
        assert_string_equal(after, listed[total - 1]);
    }
    assert_int_equal(pages, 3);
    assert_int_equal(total, MANY);
    qsort(listed, total, sizeof(char *), cmp_str);
    for (size_t i = 0; i < total; i++) {
        assert_string_equal(listed[i], created[i]);
        free(listed[i]);
    }
    for (int i = 0; i < MANY; i++)
        free(created[i]);
}

/* ---- subscribers -------------------------------------------------------------------- */

static void test_subscribers_are_one_sunion_over_the_index_keys(void **state)
{
    (void)state;
    struct {
        const char *filters; /* comma-separated; NULL = none (everything) */
        char id[HQ_ENDPOINT_ID_MAX + 1];
    } eps[] = {
        {"invoice.paid", ""},        {"invoice.*", ""},    {"*", ""},     {NULL, ""},
        {"user.*,invoice.paid", ""}, {"user.created", ""}, {"a.b.*", ""},
    };
    const size_t neps = sizeof(eps) / sizeof(*eps);
    for (size_t i = 0; i < neps; i++) {
        struct hq_endpoint e;
        memset(&e, 0, sizeof(e));
        char buf[64], *f[4];
        int nf = 0;
        if (eps[i].filters) {
            snprintf(buf, sizeof(buf), "%s", eps[i].filters);
            for (char *s = strtok(buf, ","); s; s = strtok(NULL, ","))
                f[nf++] = s;
        }
        e.name = "n";
        e.url = "https://example.com/";
        e.events = nf ? f : NULL;
        e.nevents = nf;
        e.enabled = 1;
        struct hq_err e_err = {0};
        assert_int_equal(hq_endpoint_create(rc_, "sub", &e, &e_err), 0);
        memcpy(eps[i].id, e.id, sizeof(e.id));
    }
    const char *types[] = {"invoice.paid", "invoice.failed", "user.created", "user",
                           "other.x",      "a.b.c.d",        "a.b",          "invoice"};
    for (size_t t = 0; t < sizeof(types) / sizeof(*types); t++) {
        char keys[HQ_ENDPOINT_INDEX_KEYS_MAX][HQ_KEY_MAX];
        int nk = hq_endpoint_index_keys("sub", types[t], strlen(types[t]), keys,
                                        HQ_ENDPOINT_INDEX_KEYS_MAX);
        assert_true(nk >= 2);
        const char *argv[HQ_ENDPOINT_INDEX_KEYS_MAX + 1];
        argv[0] = "SUNION";
        for (int k = 0; k < nk; k++)
            argv[k + 1] = keys[k];
        redisReply *r = redisCommandArgv(rc_, nk + 1, argv, NULL);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        /* Expected: the endpoints whose filters match, by the pure matcher. */
        size_t want = 0;
        for (size_t i = 0; i < neps; i++) {
            struct hq_endpoint e;
            struct hq_err g_err = {0};
            assert_int_equal(hq_endpoint_get(rc_, "sub", eps[i].id, &e, &g_err), 0);
            int m = hq_endpoint_matches(&e, types[t], strlen(types[t]));
            hq_endpoint_free(&e);
            int found = 0;
            for (size_t j = 0; j < r->elements; j++)
                found |= strcmp(r->element[j]->str, eps[i].id) == 0;
            if (found != m)
                fail_msg("type %s endpoint %zu (%s): in union %d, matches %d", types[t], i,
                         eps[i].filters ? eps[i].filters : "(none)", found, m);
            want += (size_t)m;
        }
        assert_int_equal(r->elements, want);
        freeReplyObject(r);
    }
    /* Spot checks against hand-computed answers. */
    redisReply *r = hq_test_cmd(rc_, "SUNION sub:idx:t:user sub:idx:p:");
    assert_int_equal(r->elements, 2); /* "*" and no filters */
    freeReplyObject(r);
    r = hq_test_cmd(rc_, "SUNION sub:idx:t:invoice.paid sub:idx:p: sub:idx:p:invoice.");
    assert_int_equal(r->elements, 5);
    freeReplyObject(r);
}

/* ---- update / rotate / disable / enable / delete ------------------------------------- */

static void test_update_changes_fields_and_moves_index_entries(void **state)
{
    (void)state;
    struct added a;
    add_ok("up", &a, "invoice.paid");
    long long v0 = version("up");
    assert_int_equal(EP("up", "update", a.id, "--name", "New", "--url", "https://new.example.com/x",
                        "--events", "user.*, order.created", "--description", "d"),
                     0);
    assert_string_equal(err, "");
    assert_null(strstr(out, a.key1));
    assert_null(strstr(out, a.key2));
    assert_int_equal(version("up"), v0 + 1);
    assert_int_equal(sismember("up:idx:t:invoice.paid", a.id), 0);
    assert_int_equal(sismember("up:idx:p:user.", a.id), 1);
    assert_int_equal(sismember("up:idx:t:order.created", a.id), 1);
    assert_int_equal(EP("up", "show", a.id, "--reveal"), 0);
    assert_non_null(strstr(out, "name:         New\n"));
    assert_non_null(strstr(out, "url:          https://new.example.com/x\n"));
    assert_non_null(strstr(out, "events:       user.*,order.created\n"));
    /* Keys survive an update. */
    assert_non_null(strstr(out, a.key1));
    assert_non_null(strstr(out, a.key2));

    assert_int_equal(EP("up", "update", a.id, "--header", "X-A: 1", "--header", "X-B: 2"), 0);
    assert_int_equal(EP("up", "show", a.id, "--json", "--reveal"), 0);
    assert_non_null(strstr(out, "\"headers\":[\"X-A: 1\",\"X-B: 2\"]"));
    assert_int_equal(EP("up", "update", a.id, "--header", "X-C: 3"), 0);
    assert_int_equal(EP("up", "show", a.id, "--json", "--reveal"), 0);
    assert_non_null(strstr(out, "\"headers\":[\"X-C: 3\"]"));
    assert_int_equal(EP("up", "update", a.id, "--clear-headers", "--max-attempts", "4"), 0);
    assert_int_equal(EP("up", "show", a.id, "--json"), 0);
    assert_non_null(strstr(out, "\"headers\":[]"));
    assert_non_null(strstr(out, "\"max_attempts\":4"));
    assert_int_equal(EP("up", "update", a.id, "--max-attempts", "0"), 0);
    assert_int_equal(EP("up", "show", a.id, "--json"), 0);
    assert_non_null(strstr(out, "\"max_attempts\":0"));

    /* A private URL needs the allowance, from the flag or the environment. */
    assert_int_equal(EP("up", "update", a.id, "--url", "http://127.0.0.1:9/x"), 2);
    assert_non_null(strstr(err, "is blocked"));
    const char *env[] = {"HOOKQ_ALLOW_PRIVATE=1", NULL};
    assert_int_equal(ep_env(env, "up", "update", a.id, "--url", "http://127.0.0.1:9/x", NULL), 0);
    /* Later updates of other fields keep the accepted URL without the allowance. */
    assert_int_equal(EP("up", "update", a.id, "--name", "Again"), 0);
}

static void test_rotate_replaces_the_older_key_only(void **state)
{
    (void)state;
    struct added a;
    add_ok("rot", &a, "*");
    /* Both keys are as old: key1 goes first. */
    assert_int_equal(EP("rot", "rotate", a.id), 0);
    char k1[160], v[160];
    line_value(out, "key1", k1, sizeof(k1));
    assert_null(strstr(out, "key2:"));
    assert_int_equal(strncmp(k1, "whsec_", 6), 0);
    assert_string_not_equal(k1, a.key1);
    redisReply *r = hq_test_cmd(rc_, "HMGET rot:ep:%s key1 key2", a.id);
    assert_string_equal(r->element[0]->str, k1);
    assert_string_equal(r->element[1]->str, a.key2);
    freeReplyObject(r);

    /* Now key2 is the older one. */
    assert_int_equal(EP("rot", "rotate", a.id, "--json"), 0);
    assert_non_null(strstr(out, "\"slot\":2"));
    json_str_field(out, "key", v, sizeof(v));
    assert_string_not_equal(v, a.key2);
    r = hq_test_cmd(rc_, "HMGET rot:ep:%s key1 key2", a.id);
    assert_string_equal(r->element[0]->str, k1);
    assert_string_equal(r->element[1]->str, v);
    freeReplyObject(r);

    /* An explicit slot wins. */
    assert_int_equal(EP("rot", "rotate", a.id, "--slot", "2"), 0);
    char k2[160];
    line_value(out, "key2", k2, sizeof(k2));
    assert_string_not_equal(k2, v);
    r = hq_test_cmd(rc_, "HGET rot:ep:%s key1", a.id);
    assert_string_equal(r->str, k1);
    freeReplyObject(r);
}

static void test_disable_and_enable_flip_the_state(void **state)
{
    (void)state;
    struct added a;
    add_ok("dis", &a, "*");
    long long v0 = version("dis");
    assert_int_equal(EP("dis", "disable", a.id), 0);
    char want[128];
    snprintf(want, sizeof(want), "disabled %s\n", a.id);
    assert_string_equal(out, want);
    redisReply *r = hq_test_cmd(rc_, "HGET dis:ep:%s enabled", a.id);
    assert_string_equal(r->str, "0");
    freeReplyObject(r);
    assert_int_equal(version("dis"), v0 + 1);
    assert_int_equal(EP("dis", "list"), 0);
    assert_non_null(strstr(out, "\tdisabled\t"));
    assert_int_equal(EP("dis", "enable", a.id, "--json"), 0);
    assert_non_null(strstr(out, "\"enabled\":true"));
    r = hq_test_cmd(rc_, "HGET dis:ep:%s enabled", a.id);
    assert_string_equal(r->str, "1");
    freeReplyObject(r);
    assert_int_equal(version("dis"), v0 + 2);
}

static void test_delete_removes_the_hash_and_every_index_entry(void **state)
{
    (void)state;
    struct added a;
    add_ok("del", &a, "invoice.paid,user.*,*");
    long long v0 = version("del");
    assert_int_equal(EP("del", "delete", a.id), 0);
    assert_int_equal(version("del"), v0 + 1);
    assert_int_equal(hq_test_cmd_int(rc_, "EXISTS del:ep:%s", a.id), 0);
    redisReply *r = hq_test_cmd(rc_, "ZSCORE del:endpoints %s", a.id);
    assert_int_equal(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    assert_int_equal(sismember("del:idx:t:invoice.paid", a.id), 0);
    assert_int_equal(sismember("del:idx:p:user.", a.id), 0);
    assert_int_equal(sismember("del:idx:p:", a.id), 0);
    assert_int_equal(EP("del", "show", a.id), 1);
    assert_int_equal(EP("del", "delete", a.id), 1);
}

static void test_save_refuses_a_change_made_after_the_read(void **state)
{
    (void)state;
    struct hq_endpoint e;
    memset(&e, 0, sizeof(e));
    e.name = "n";
    e.url = "https://example.com/";
    e.enabled = 1;
    struct hq_err e_err = {0};
    assert_int_equal(hq_endpoint_create(rc_, "cc", &e, &e_err), 0);
    char id[HQ_ENDPOINT_ID_MAX + 1];
    memcpy(id, e.id, sizeof(id));

    /* The CLI's read-modify-write: WATCH, read, change, save. */
    freeReplyObject(hq_test_cmd(rc_, "WATCH cc:ep:%s", id));
    struct hq_endpoint old, cur;
    assert_int_equal(hq_endpoint_get(rc_, "cc", id, &old, &e_err), 0);
    assert_int_equal(hq_endpoint_get(rc_, "cc", id, &cur, &e_err), 0);
    redisContext *other = hq_test_redis_connect(&redis);
    freeReplyObject(hq_test_cmd(other, "HSET cc:ep:%s name theirs", id));
    redisFree(other);
    free(cur.name);
    cur.name = strdup("mine");
    assert_int_equal(hq_endpoint_save(rc_, "cc", &old, &cur, &e_err), HQ_EAGAIN);
    assert_non_null(strstr(e_err.msg, "changed by someone else meanwhile"));
    redisReply *r = hq_test_cmd(rc_, "HGET cc:ep:%s name", id);
    assert_string_equal(r->str, "theirs");
    freeReplyObject(r);
    hq_endpoint_free(&old);
    hq_endpoint_free(&cur);
}

/* ---- bad input --------------------------------------------------------------------------- */

static void expect(int status, int want_status, const char *want_err)
{
    if (status != want_status || strncmp(err, want_err, strlen(want_err)) != 0)
        fail_msg("exit %d (want %d), stderr '%s' (want '%s...')", status, want_status, err,
                 want_err);
    /* One line. */
    assert_int_equal(strchr(err, '\n') - err, (long)strlen(err) - 1);
}

static void test_bad_input_gets_one_line_and_the_right_exit_status(void **state)
{
    (void)state;
    struct added a;
    add_ok("bad", &a, "*");
    expect(EP("bad", "add", "--url", "https://e.com/"), 2, "hookq endpoint add: --name: required");
    expect(EP("bad", "add", "--name", "n"), 2, "hookq endpoint add: --url: required");
    expect(EP("bad", "add", "--name", "n", "--url", "ftp://e.com/"), 2,
           "hookq endpoint add: url: 'ftp://e.com/' scheme 'ftp' is not http or https\n");
    expect(EP("bad", "add", "--name", "n", "--url", "https://u:pw@e.com/"), 2,
           "hookq endpoint add: url: user:password in the URL is not allowed");
    expect(EP("bad", "add", "--name", "n", "--url", "http://169.254.169.254/"), 2,
           "hookq endpoint add: url: 'http://169.254.169.254/' is blocked: ");
    expect(EP("bad", "add", "--name", "n", "--url", "https://e.com/", "--header", "Host: x"), 2,
           "hookq endpoint add: header 'Host': set by hookq, cannot be overridden\n");
    expect(EP("bad", "add", "--name", "n", "--url", "https://e.com/", "--events", "user*"), 2,
           "hookq endpoint add: events: 'user*' has a wildcard not after a dot");
    expect(EP("bad", "add", "--name", "n", "--url", "https://e.com/", "--events", ","), 2,
           "hookq endpoint add: events: ',' lists no filter");
    expect(EP("bad", "add", "--name", "n", "--url", "https://e.com/", "--max-attempts", "1000"), 2,
           "hookq endpoint add: --max-attempts: '1000' is out of range (0 to 100)\n");
    expect(
        EP("bad", "add", "--name", "n", "--url", "https://e.com/", "--allow-cidrs", "1.2.3.4/99"),
        2, "hookq endpoint add: --allow-cidrs: ");
    expect(EP("bad", "add", "--name", "n", "--url", "https://e.com/", "--nope"), 2,
           "hookq endpoint add: --nope: unknown option (see --help)\n");
    expect(EP("bad", "show", "ep_x"), 1, "hookq endpoint show: no endpoint 'ep_x'\n");
    expect(EP("bad", "show", "ep x!"), 2, "hookq endpoint show: id: 'ep x!' is not an endpoint id");
    expect(EP("bad", "show"), 2, "hookq endpoint show: missing the endpoint id");
    expect(EP("bad", "show", a.id, "extra"), 2, "hookq endpoint show: unexpected argument 'extra'");
    expect(EP("bad", "frobnicate"), 2, "hookq endpoint: 'frobnicate' is not a subcommand");
    expect(EP("bad", "update", a.id), 2, "hookq endpoint update: nothing to update");
    expect(EP("bad", "update", a.id, "--header", "X: 1", "--clear-headers"), 2,
           "hookq endpoint update: --header and --clear-headers: give one or the other\n");
    expect(EP("bad", "update", "ep_missing", "--name", "x"), 1,
           "hookq endpoint update: no endpoint 'ep_missing'\n");
    expect(EP("bad", "update", a.id, "--events", "a b"), 2,
           "hookq endpoint update: events: 'a b' has a character outside [A-Za-z0-9_.:-]\n");
    expect(EP("bad", "rotate", a.id, "--slot", "3"), 2,
           "hookq endpoint rotate: --slot: '3' is out of range (1 to 2)\n");
    expect(EP("bad", "rotate", "ep_missing"), 1,
           "hookq endpoint rotate: no endpoint 'ep_missing'\n");
    expect(EP("bad", "disable", "ep_missing"), 1,
           "hookq endpoint disable: no endpoint 'ep_missing'\n");
    expect(EP("bad", "delete", "ep_missing"), 1,
           "hookq endpoint delete: no endpoint 'ep_missing'\n");
    expect(EP("bad", "list", "--after", "ep_missing"), 1,
           "hookq endpoint list: --after: no endpoint 'ep_missing'\n");
    expect(EP("bad", "list", "--limit", "0"), 2,
           "hookq endpoint list: --limit: '0' is out of range");

    /* Nothing bad input did changed the stored endpoint. */
    assert_int_equal(hq_test_cmd_int(rc_, "ZCARD bad:endpoints"), 1);
    assert_int_equal(version("bad"), 1);

    /* Redis unreachable: exit 1, one line naming the address. */
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", hq_test_free_port());
    const char *args[] = {"endpoint", "show", "ep_x", "--redis-url", url, NULL};
    int st = hq_test_cli(args, NULL, NULL, out, OUT_MAX, err, sizeof(err));
    expect(st, 1, "hookq endpoint show: redis: cannot reach 127.0.0.1:");
}

/* ---- circuit breaker overrides --------------------------------------------------------- */

static void test_breaker_overrides_are_stored_shown_updated_and_bad_values_refused(void **state)
{
    (void)state;
    assert_int_equal(EP("cbo", "add", "--name", "n", "--url", "https://e.com/",
                        "--breaker-failures", "2", "--breaker-ratio", "25%", "--breaker-window",
                        "30s", "--breaker-min-attempts", "5", "--breaker-probe-interval", "2s"),
                     0);
    char id[80];
    line_value(out, "id", id, sizeof(id));
    char key[160];
    snprintf(key, sizeof(key), "cbo:ep:%s", id);
    redisReply *r = hq_test_cmd(rc_,
                                "HMGET %s breaker_failures breaker_ratio breaker_window_ms "
                                "breaker_min_attempts breaker_probe_ms",
                                key);
    assert_string_equal(r->element[0]->str, "2");
    assert_string_equal(r->element[1]->str, "25");
    assert_string_equal(r->element[2]->str, "30000");
    assert_string_equal(r->element[3]->str, "5");
    assert_string_equal(r->element[4]->str, "2000");
    freeReplyObject(r);
    assert_int_equal(EP("cbo", "show", id), 0);
    assert_non_null(strstr(out, "breaker:      failures 2, ratio 25%, window 30000ms, "
                                "min_attempts 5, probe_interval 2000ms\n"));
    assert_int_equal(EP("cbo", "show", id, "--json"), 0);
    assert_non_null(strstr(out, "\"breaker\":{\"failures\":2,\"ratio\":25,\"window_ms\":30000,"
                                "\"min_attempts\":5,\"probe_interval_ms\":2000}"));
    /* Update: 0 / '' give back the worker's value; ratio 0 is "off". */
    assert_int_equal(EP("cbo", "update", id, "--breaker-failures", "0", "--breaker-ratio", "0",
                        "--breaker-window", "0"),
                     0);
    assert_int_equal(EP("cbo", "show", id, "--json"), 0);
    assert_non_null(strstr(out, "\"breaker\":{\"failures\":null,\"ratio\":0,\"window_ms\":null,"
                                "\"min_attempts\":5,\"probe_interval_ms\":2000}"));
    assert_int_equal(EP("cbo", "update", id, "--breaker-ratio", "", "--breaker-min-attempts", "0",
                        "--breaker-probe-interval", "0"),
                     0);
    assert_int_equal(EP("cbo", "show", id), 0);
    assert_non_null(strstr(out, "breaker:      the worker's defaults (--breaker-*)\n"));
    assert_int_equal(EP("cbo", "list", "--json"), 0);
    assert_non_null(strstr(out, "\"breaker\":{\"failures\":null,\"ratio\":null,"));
    /* Bad values: one line naming the flag, exit 2, nothing changed. */
    long long v0 = version("cbo");
    static const char *const bad[][3] = {
        {"--breaker-failures", "-1", "--breaker-failures"},
        {"--breaker-failures", "2000000", "--breaker-failures"},
        {"--breaker-failures", "x", "--breaker-failures"},
        {"--breaker-ratio", "101%", "--breaker-ratio: '101%' is not a percentage"},
        {"--breaker-ratio", "-5", "--breaker-ratio: '-5' is not a percentage"},
        {"--breaker-ratio", "half", "--breaker-ratio: 'half' is not a percentage"},
        {"--breaker-window", "500ms", "--breaker-window: 500ms is out of range"},
        {"--breaker-window", "2d", "--breaker-window"},
        {"--breaker-min-attempts", "0x", "--breaker-min-attempts"},
        {"--breaker-probe-interval", "50ms", "--breaker-probe-interval: 50ms is out of range"},
        {"--breaker-probe-interval", "soon", "--breaker-probe-interval"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[160];
        snprintf(want, sizeof(want), "hookq endpoint update: %s", bad[i][2]);
        expect(EP("cbo", "update", id, bad[i][0], bad[i][1]), 2, want);
        snprintf(want, sizeof(want), "hookq endpoint add: %s", bad[i][2]);
        expect(EP("cbo", "add", "--name", "n", "--url", "https://e.com/", bad[i][0], bad[i][1]), 2,
               want);
    }
    assert_int_equal(version("cbo"), v0);
    assert_int_equal(hq_test_cmd_int(rc_, "ZCARD cbo:endpoints"), 1);
    assert_int_equal(EP("cbo", "show", id), 0);
    assert_non_null(strstr(out, "breaker:      the worker's defaults (--breaker-*)\n"));
    /* A hand-edited hash out of range is refused when read, naming the field. */
    hq_test_cmd_int(rc_, "HSET %s breaker_failures 0x", key);
    expect(EP("cbo", "show", id), 2, "hookq endpoint show: endpoint");
    assert_non_null(strstr(err, "malformed hash field breaker_*"));
    hq_test_cmd_int(rc_, "HSET %s breaker_failures 0 breaker_window_ms 5", key);
    expect(EP("cbo", "show", id), 2, "hookq endpoint show: endpoint");
    assert_non_null(strstr(err, "breaker_* (out of range)"));
}

/* ---- tagged layout ------------------------------------------------------------------ */

/* Every key under "<prefix>:" (SCAN), asserting each is a registry key
 * "<prefix>:{reg}:..."; returns how many there are. */
static int registry_keys_only(const char *prefix)
{
    char want[80];
    snprintf(want, sizeof(want), "%s:{reg}:", prefix);
    int n = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = hq_test_cmd(rc_, "SCAN %s MATCH %s:* COUNT 1000", cursor, prefix);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *k = r->element[1]->element[i]->str;
            if (strncmp(k, want, strlen(want)) != 0)
                fail_msg("untagged key %s", k);
            n++;
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return n;
}

static void test_tagged_layout_writes_registry_keys_under_the_reg_tag(void **state)
{
    (void)state;
    struct hq_err e = {0};
    struct hq_redis_conn *conn = hq_redis_conn_open(redis.url, 2000, &e);
    assert_non_null(conn);
    struct hq_layout L = {0};
    assert_int_equal(hq_layout_create(conn, "pt", 4, &L, &e), 0);
    assert_string_equal(L.reg, "pt:{reg}");
    hq_layout_free(&L);
    hq_redis_conn_free(conn);

    struct added a;
    add_ok("pt", &a, "invoice.paid,user.*");
    assert_int_equal(hq_test_cmd_int(rc_, "EXISTS pt:{reg}:ep:%s", a.id), 1);
    assert_int_equal(hq_test_cmd_int(rc_, "ZCARD pt:{reg}:endpoints"), 1);
    assert_int_equal(sismember("pt:{reg}:idx:t:invoice.paid", a.id), 1);
    assert_int_equal(sismember("pt:{reg}:idx:p:user.", a.id), 1);
    assert_int_equal(version("pt:{reg}"), 1);
    /* config, ep, endpoints, two indexes, ver */
    assert_int_equal(registry_keys_only("pt"), 6);

    assert_int_equal(EP("pt", "list"), 0);
    assert_non_null(strstr(out, a.id));
    assert_int_equal(EP("pt", "update", a.id, "--events", "order.created"), 0);
    assert_int_equal(sismember("pt:{reg}:idx:t:order.created", a.id), 1);
    assert_int_equal(hq_test_cmd_int(rc_, "EXISTS pt:{reg}:idx:t:invoice.paid"), 0);
    assert_int_equal(EP("pt", "disable", a.id), 0);
    redisReply *r = hq_test_cmd(rc_, "HGET pt:{reg}:ep:%s enabled", a.id);
    assert_string_equal(r->str, "0");
    freeReplyObject(r);
    assert_int_equal(EP("pt", "show", a.id), 0);
    assert_int_equal(version("pt:{reg}"), 3);
    assert_int_equal(registry_keys_only("pt"), 5);

    assert_int_equal(EP("pt", "delete", a.id), 0);
    assert_int_equal(hq_test_cmd_int(rc_, "EXISTS pt:{reg}:ep:%s", a.id), 0);
    assert_int_equal(EP("pt", "show", a.id), 1);
    /* config and ver remain */
    assert_int_equal(registry_keys_only("pt"), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_prints_id_and_keys_and_show_masks_them),
        cmocka_unit_test(test_add_json_prints_the_object_with_keys),
        cmocka_unit_test(test_header_values_are_masked_except_on_add_and_reveal),
        cmocka_unit_test(test_list_pages_through_all_endpoints),
        cmocka_unit_test(test_subscribers_are_one_sunion_over_the_index_keys),
        cmocka_unit_test(test_update_changes_fields_and_moves_index_entries),
        cmocka_unit_test(test_rotate_replaces_the_older_key_only),
        cmocka_unit_test(test_disable_and_enable_flip_the_state),
        cmocka_unit_test(test_delete_removes_the_hash_and_every_index_entry),
        cmocka_unit_test(test_save_refuses_a_change_made_after_the_read),
        cmocka_unit_test(test_breaker_overrides_are_stored_shown_updated_and_bad_values_refused),
        cmocka_unit_test(test_bad_input_gets_one_line_and_the_right_exit_status),
        cmocka_unit_test(test_tagged_layout_writes_registry_keys_under_the_reg_tag),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
