/* `hookq api` over HTTP on loopback against a private redis-server: every
 * /v1/endpoints route (success, validation errors with the CLI's messages,
 * 401/403/404), API keys and scopes, tenant-scoped keys, the failed-auth
 * limit, CORS, the OpenAPI document against the route table both ways,
 * pagination over 10,000 endpoints, concurrent creates from 4 replicas, and
 * the graceful stop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "tests/harness/api_env.h"
#include "tests/harness/hq_test.h"

static struct hq_test_redis R;
static redisContext *C;
static char ENV_URL[400];
static struct hq_api_env A;
static char ADMIN[128], WRITE[128], READ[128];

static int setup(void **state)
{
    hq_test_group_flush(state);
    hq_api_env_keys(R.url, ADMIN, WRITE, READ, sizeof(ADMIN));
    return 0;
}

/* Creates an endpoint through the API; its id into id. */
static void create(const char *body, char *id, size_t n)
{
    struct hq_api_resp r;
    if (hq_api_call(&A, "POST", "/v1/endpoints", WRITE, body, &r) != 201)
        fail_msg("create: %ld %s", r.status, r.body);
    hq_api_json_str(r.body, "id", id, n);
    hq_api_resp_free(&r);
}

/* What Redis holds, to check a refused request changed nothing. */
struct snapshot {
    long long dbsize;
    char ver[32];
};

static void snap(struct snapshot *s)
{
    s->dbsize = hq_test_cmd_int(C, "DBSIZE");
    redisReply *r = hq_test_cmd(C, "GET hookq:endpoints:ver");
    snprintf(s->ver, sizeof(s->ver), "%s", r->type == REDIS_REPLY_STRING ? r->str : "-");
    freeReplyObject(r);
}

static void assert_unchanged(const struct snapshot *before)
{
    struct snapshot now;
    snap(&now);
    assert_int_equal(now.dbsize, before->dbsize);
    assert_string_equal(now.ver, before->ver);
    struct hq_api_resp r;
    assert_int_equal(hq_api_call(&A, "GET", "/readyz", NULL, NULL, &r), 200);
    hq_api_resp_free(&r);
}

/* The CLI's one-line message for `hookq endpoint add <args>` (after "hookq endpoint add: "). */
static void cli_add_message(const char *const *args, char *msg, size_t n)
{
    const char *argv[32] = {"endpoint", "add"};
    int k = 2;
    for (int i = 0; args[i]; i++)
        argv[k++] = args[i];
    argv[k++] = "--redis-url";
    argv[k++] = R.url;
    argv[k] = NULL;
    char out[4096], err[4096];
    int st = hq_test_cli(argv, NULL, NULL, out, sizeof(out), err, sizeof(err));
    assert_int_not_equal(st, 0);
    const char *p = strstr(err, "hookq endpoint add: ");
    assert_non_null(p);
    p += strlen("hookq endpoint add: ");
    snprintf(msg, n, "%.*s", (int)strcspn(p, "\n"), p);
}

/* ---- auth ----------------------------------------------------------------------------- */

static void test_every_route_needs_a_key_of_enough_scope(void **state)
{
    (void)state;
    struct hq_api_resp r;
    assert_int_equal(hq_api_call(&A, "GET", "/v1/endpoints", NULL, NULL, &r), 401);
    assert_non_null(strstr(r.headers, "WWW-Authenticate: Bearer"));
    assert_non_null(strstr(r.headers, "application/problem+json"));
    json_t *j = hq_api_resp_json(&r);
    assert_string_equal(hq_api_jstr(j, "code"), "unauthorized");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 401);
    json_decref(j);
    hq_api_resp_free(&r);
    /* A well-formed key that does not exist, and one whose secret is wrong. */
    char forged[128];
    snprintf(forged, sizeof(forged), "%s", READ);
    forged[strlen(forged) - 1] = forged[strlen(forged) - 1] == 'a' ? 'b' : 'a';
    assert_int_equal(hq_api_call(&A, "GET", "/v1/endpoints", forged, NULL, &r), 401);
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&A, "GET", "/v1/endpoints", "hq_live_x", NULL, &r), 401);
    hq_api_resp_free(&r);
    /* read < write < admin. */
    assert_int_equal(hq_api_call(&A, "GET", "/v1/endpoints", READ, NULL, &r), 200);
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&A, "POST", "/v1/endpoints", READ,
                                 "{\"name\":\"a\",\"url\":\"https://example.com/h\"}", &r),
                     403);
    assert_non_null(strstr(r.headers, "insufficient_scope"));
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&A, "POST", "/v1/dead-letters/purge", WRITE, "{}", &r), 403);
    hq_api_resp_free(&r);
    /* Only the digest is stored. */
    redisReply *keys = hq_test_cmd(C, "KEYS hookq:apikey:*");
    for (size_t i = 0; i < keys->elements; i++) {
        redisReply *h = hq_test_cmd(C, "HGETALL %s", keys->element[i]->str);
        for (size_t f = 0; f < h->elements; f++) {
            assert_null(strstr(h->element[f]->str, ADMIN + 21));
            assert_null(strstr(h->element[f]->str, READ + 21));
        }
        freeReplyObject(h);
    }
    freeReplyObject(keys);
    /* api-key list shows ids and scopes, never a key. */
    const char *largs[] = {"api-key", "list", "--json", "--redis-url", R.url, NULL};
    char lout[4096], lerr[256];
    assert_int_equal(hq_test_cli(largs, NULL, NULL, lout, sizeof(lout), lerr, sizeof(lerr)), 0);
    assert_non_null(strstr(lout, "\"scope\":\"admin\""));
    assert_null(strstr(lout, ADMIN + 21));
    assert_null(strstr(lout, "hq_live_"));
    /* Revoked: refused at once. */
    char id[16];
    snprintf(id, sizeof(id), "%.12s", READ + 8);
    const char *args[] = {"api-key", "revoke", id, "--redis-url", R.url, NULL};
    char out[256], err[256];
    assert_int_equal(hq_test_cli(args, NULL, NULL, out, sizeof(out), err, sizeof(err)), 0);
    assert_int_equal(hq_api_call(&A, "GET", "/v1/endpoints", READ, NULL, &r), 401);
    hq_api_resp_free(&r);
    /* Keys never reach the log. */
    assert_int_equal(hq_test_log_count(A.log, NULL, ADMIN + 21), 0);
    assert_int_equal(hq_test_log_count(A.log, NULL, WRITE + 21), 0);
}

static void test_failed_authentications_are_limited_per_address(void **state)
{
    (void)state;
    struct hq_api_resp r;
    int got429 = 0, n = 0;
    for (; n < 40 && !got429; n++) {
        long st = hq_api_call(&A, "GET", "/v1/stats", "hq_live_bad", NULL, &r);
        if (st == 429) {
            got429 = 1;
            assert_non_null(strstr(r.headers, "Retry-After:"));
        } else {
            assert_int_equal(st, 401);
        }
        hq_api_resp_free(&r);
    }
    assert_true(got429);
    assert_true(n > 10); /* the burst passed first */
    /* Even a good key is refused from that address for now. */
    assert_int_equal(hq_api_call(&A, "GET", "/v1/endpoints", ADMIN, NULL, &r), 429);
    hq_api_resp_free(&r);
    /* A missing key is not a guess: still 401, not counted. */
}

/* The limit is per process: a fresh server for the tests that follow. */
static int restart_api(void **state)
{
    (void)state;
    hq_api_env_stop(&A);
    hq_api_env_start(&A, R.url, NULL);
    return 0;
}

/* ---- endpoints ------------------------------------------------------------------------- */

static void test_endpoint_lifecycle(void **state)
{
    (void)state;
    struct hq_api_resp r;
    assert_int_equal(hq_api_call(&A, "POST", "/v1/endpoints", WRITE,
                                 "{\"name\":\"Billing\",\"url\":\"https://billing.example.com/h\","
                                 "\"events\":[\"invoice.paid\",\"user.*\",\"user.*\"],"
                                 "\"headers\":[\"Authorization: Bearer t0k\"],\"max_attempts\":5,"
                                 "\"rate_limit\":\"50/s\",\"backoff_base_ms\":2000}",
                                 &r),
                     201);
    json_t *j = hq_api_resp_json(&r);
    assert_true(json_is_null(json_object_get(j, "batch"))); /* off unless asked */
    char id[64], key1[128], key2[128];
    snprintf(id, sizeof(id), "%s", hq_api_jstr(j, "id"));
    snprintf(key1, sizeof(key1), "%s", hq_api_jstr(j, "key1"));
    snprintf(key2, sizeof(key2), "%s", hq_api_jstr(j, "key2"));
    assert_int_equal(strncmp(key1, "whsec_", 6), 0);
    assert_true(strlen(key1) > 20);
    assert_int_equal(json_array_size(json_object_get(j, "events")), 2); /* deduplicated */
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "headers"), 0)),
                        "Authorization: Bearer t0k");
    assert_string_equal(hq_api_jstr(j, "rate_limit"), "50/s");
    json_decref(j);
    hq_api_resp_free(&r);
    /* The registry holds what the CLI would have written: `hookq endpoint show` reads it. */
    const char *args[] = {"endpoint", "show", id, "--reveal", "--redis-url", R.url, NULL};
    char out[8192], err[1024];
    assert_int_equal(hq_test_cli(args, NULL, NULL, out, sizeof(out), err, sizeof(err)), 0);
    assert_non_null(strstr(out, key1));
    assert_non_null(strstr(out, "invoice.paid,user.*"));

    char path[128];
    snprintf(path, sizeof(path), "/v1/endpoints/%s", id);
    assert_int_equal(hq_api_call(&A, "GET", path, READ, NULL, &r), 200);
    assert_null(strstr(r.body, key1)); /* masked */
    assert_non_null(strstr(r.body, "Authorization: ***"));
    hq_api_resp_free(&r);
    char rpath[160];
    snprintf(rpath, sizeof(rpath), "%s?reveal=true", path);
    assert_int_equal(hq_api_call(&A, "GET", rpath, WRITE, NULL, &r), 403);
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&A, "GET", rpath, ADMIN, NULL, &r), 200);
    assert_non_null(strstr(r.body, key1));
    assert_non_null(strstr(r.body, key2));
    hq_api_resp_free(&r);

    /* PATCH changes what it names and keeps the rest (and the keys). */
    assert_int_equal(hq_api_call(&A, "PATCH", path, WRITE,
                                 "{\"name\":\"Billing 2\",\"events\":[\"*\"],\"tenant\":\"acme\"}",
                                 &r),
                     200);
    j = hq_api_resp_json(&r);
    assert_string_equal(hq_api_jstr(j, "name"), "Billing 2");
    assert_string_equal(hq_api_jstr(j, "url"), "https://billing.example.com/h");
    assert_string_equal(hq_api_jstr(j, "tenant"), "acme");
    json_decref(j);
    hq_api_resp_free(&r);
    assert_int_equal(hq_test_cmd_int(C, "SISMEMBER hookq:idx:p: %s", id), 1);
    assert_int_equal(hq_test_cmd_int(C, "SISMEMBER hookq:idx:t:invoice.paid %s", id), 0);
    assert_int_equal(hq_test_cmd_int(C, "SISMEMBER hookq:idx:tenant:acme %s", id), 1);
    assert_int_equal(hq_api_call(&A, "PATCH", path, WRITE, "{}", &r), 422);
    hq_api_resp_free(&r);

    /* batch: the object the endpoint shows, the CLI's string, or null (off);
     * stored as `endpoint update --batch` stores it. */
    assert_int_equal(hq_api_call(&A, "PATCH", path, WRITE, "{\"batch\":{\"max\":50}}", &r), 200);
    assert_non_null(strstr(r.body, "\"batch\":{\"max\":50,\"wait_ms\":100,\"bytes\":1048576}"));
    hq_api_resp_free(&r);
    redisReply *h = hq_test_cmd(C, "HGET hookq:ep:%s batch", id);
    assert_string_equal(h->str, "max=50,wait=100ms,bytes=1048576");
    freeReplyObject(h);
    assert_int_equal(
        hq_api_call(&A, "PATCH", path, WRITE, "{\"batch\":\"max=20,wait=1s,bytes=256k\"}", &r),
        200);
    assert_non_null(strstr(r.body, "\"batch\":{\"max\":20,\"wait_ms\":1000,\"bytes\":262144}"));
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&A, "PATCH", path, WRITE,
                                 "{\"batch\":{\"max\":3,\"wait_ms\":7,\"bytes\":2048}}", &r),
                     200);
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&A, "GET", path, READ, NULL, &r), 200);
    assert_non_null(strstr(r.body, "\"batch\":{\"max\":3,\"wait_ms\":7,\"bytes\":2048}"));
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&A, "PATCH", path, WRITE, "{\"batch\":null}", &r), 200);
    assert_non_null(strstr(r.body, "\"batch\":null"));
    hq_api_resp_free(&r);
    h = hq_test_cmd(C, "HGET hookq:ep:%s batch", id);
    assert_true(h->type == REDIS_REPLY_NIL || (h->type == REDIS_REPLY_STRING && h->len == 0));
    freeReplyObject(h);

    /* rotate: slot 2 replaced, key1 kept. */
    snprintf(rpath, sizeof(rpath), "%s/rotate", path);
    assert_int_equal(hq_api_call(&A, "POST", rpath, WRITE, "{\"slot\":2}", &r), 200);
    j = hq_api_resp_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "slot")), 2);
    assert_string_not_equal(hq_api_jstr(j, "key"), key2);
    char newkey[128];
    snprintf(newkey, sizeof(newkey), "%s", hq_api_jstr(j, "key"));
    json_decref(j);
    hq_api_resp_free(&r);
    h = hq_test_cmd(C, "HMGET hookq:ep:%s key1 key2", id);
    assert_string_equal(h->element[0]->str, key1);
    assert_string_equal(h->element[1]->str, newkey);
    freeReplyObject(h);
    assert_int_equal(hq_api_call(&A, "POST", rpath, WRITE, "{\"slot\":3}", &r), 422);
    hq_api_resp_free(&r);

    /* disable / enable. */
    snprintf(rpath, sizeof(rpath), "%s/disable", path);
    assert_int_equal(hq_api_call(&A, "POST", rpath, WRITE, NULL, &r), 200);
    assert_non_null(strstr(r.body, "\"enabled\":false"));
    hq_api_resp_free(&r);
    h = hq_test_cmd(C, "HGET hookq:ep:%s enabled", id);
    assert_string_equal(h->str, "0");
    freeReplyObject(h);
    snprintf(rpath, sizeof(rpath), "%s/enable", path);
    assert_int_equal(hq_api_call(&A, "POST", rpath, WRITE, NULL, &r), 200);
    assert_non_null(strstr(r.body, "\"enabled\":true"));
    hq_api_resp_free(&r);

    /* delete, then 404 everywhere. */
    assert_int_equal(hq_api_call(&A, "DELETE", path, WRITE, NULL, &r), 204);
    hq_api_resp_free(&r);
    assert_int_equal(hq_test_cmd_int(C, "EXISTS hookq:ep:%s", id), 0);
    assert_int_equal(hq_api_call(&A, "GET", path, READ, NULL, &r), 404);
    j = hq_api_resp_json(&r);
    char want[128];
    snprintf(want, sizeof(want), "no endpoint '%s'", id);
    assert_string_equal(hq_api_jstr(j, "detail"), want);
    json_decref(j);
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&A, "DELETE", path, WRITE, NULL, &r), 404);
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&A, "PUT", path, WRITE, "{}", &r), 405);
    hq_api_resp_free(&r);
    /* The server logged every request (debug), and no secret. */
    if (hq_test_log_count(A.log, NULL, path) == 0) {
        hq_test_log_print(A.log, "api");
        fail_msg("%s not in %s", path, A.log);
    }
    assert_int_equal(hq_test_log_count(A.log, NULL, key1 + 6), 0);
    assert_int_equal(hq_test_log_count(A.log, NULL, newkey + 6), 0);
    assert_int_equal(hq_test_log_count(A.log, NULL, "t0k"), 0);
}

/* Each refused create: the status, the API's detail equals the CLI's message
 * for the same input, and Redis is untouched. */
struct bad_case {
    const char *body;
    const char *cli[12]; /* the same input to `hookq endpoint add` (NULL: no CLI twin) */
    long status;
    const char *field;
};

static void test_validation_errors_match_the_cli_and_change_nothing(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"{\"name\":\"a\",\"url\":\"http://169.254.169.254/latest\"}",
         {"--name", "a", "--url", "http://169.254.169.254/latest", NULL},
         422,
         "url"},
        {"{\"name\":\"a\",\"url\":\"http://2130706433/\"}",
         {"--name", "a", "--url", "http://2130706433/", NULL},
         422,
         "url"},
        {"{\"name\":\"a\",\"url\":\"ftp://example.com/\"}",
         {"--name", "a", "--url", "ftp://example.com/", NULL},
         422,
         "url"},
        {"{\"name\":\"a\",\"url\":\"https://e.com/\",\"events\":[\"user*\"]}",
         {"--name", "a", "--url", "https://e.com/", "--events", "user*", NULL},
         422,
         "events"},
        {"{\"name\":\"a\",\"url\":\"https://e.com/\",\"headers\":[\"X-A: 1\\r\\nX-B: 2\"]}",
         {"--name", "a", "--url", "https://e.com/", "--header", "X-A: 1\r\nX-B: 2", NULL},
         422,
         "headers"},
        {"{\"name\":\"a\",\"url\":\"https://e.com/\",\"headers\":[\"Host: evil\"]}",
         {"--name", "a", "--url", "https://e.com/", "--header", "Host: evil", NULL},
         422,
         "headers"},
        {"{\"name\":\"a\\u0001b\",\"url\":\"https://e.com/\"}",
         {"--name", "a\001b", "--url", "https://e.com/", NULL},
         422,
         "name"},
        {"{\"name\":\"a\\r\\nX-Evil: 1\",\"url\":\"https://e.com/\"}",
         {"--name", "a\r\nX-Evil: 1", "--url", "https://e.com/", NULL},
         422,
         "name"},
        {"{\"name\":\"a\",\"url\":\"https://e.com/\",\"tenant\":\"a b\"}", {NULL}, 422, "tenant"},
        {"{\"name\":\"a\",\"url\":\"https://e.com/\",\"backoff_factor\":0.5}",
         {"--name", "a", "--url", "https://e.com/", "--backoff-factor", "0.5", NULL},
         422,
         "backoff_factor"},
        {"{\"name\":\"a\",\"url\":\"https://e.com/\",\"rate_limit\":\"5/h\"}",
         {"--name", "a", "--url", "https://e.com/", "--rate-limit", "5/h", NULL},
         422,
         NULL},
        {"{\"name\":\"a\",\"url\":\"https://e.com/\",\"batch\":{\"max\":1}}",
         {"--name", "a", "--url", "https://e.com/", "--batch", "max=1", NULL},
         422,
         "batch"},
        {"{\"name\":\"a\",\"url\":\"https://e.com/\",\"batch\":\"max=10,speed=3\"}",
         {"--name", "a", "--url", "https://e.com/", "--batch", "max=10,speed=3", NULL},
         422,
         "batch"},
        {"{\"name\":\"a\",\"url\":\"https://e.com/\",\"batch\":7}", {NULL}, 422, "batch"},
        {"{\"name\":\"a\",\"url\":\"https://e.com/\",\"batch\":{\"max\":5,\"wait\":1}}",
         {NULL},
         422,
         "wait"},
        {"{\"name\":\"a\",\"url\":\"https://e.com/\",\"max_attempts\":1000}", {NULL}, 422, NULL},
        {"{\"name\":\"a\"}", {NULL}, 400, "url"},
        {"{\"name\":7,\"url\":\"https://e.com/\"}", {NULL}, 400, "name"},
        {"{\"name\":\"a\",\"url\":\"https://e.com/\",\"colour\":\"red\"}", {NULL}, 400, "colour"},
        {"{\"name\":\"a\",\"name\":\"b\",\"url\":\"https://e.com/\"}", {NULL}, 400, "body"},
        {"{\"name\":\"a\",\"url\":\"https://e.com/\"", {NULL}, 400, "body"},
        {"{\"name\":\"a\",\"url\":\"https://e.com/\"} x", {NULL}, 400, "body"},
        {"[1,2]", {NULL}, 400, "body"},
        {"{\"name\":\"a\\u0000\",\"url\":\"https://e.com/\"}", {NULL}, 400, "body"},
    };
    struct snapshot before;
    snap(&before);
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        const struct bad_case *c = &cases[i];
        struct hq_api_resp r;
        long st = hq_api_call(&A, "POST", "/v1/endpoints", WRITE, c->body, &r);
        if (st != c->status)
            fail_msg("case %zu %s: %ld %s", i, c->body, st, r.body);
        assert_non_null(strstr(r.headers, "application/problem+json"));
        json_t *j = hq_api_resp_json(&r);
        if (c->field && strcmp(hq_api_jstr(j, "field"), c->field) != 0)
            fail_msg("case %zu: field '%s', want '%s': %s", i, hq_api_jstr(j, "field"), c->field,
                     r.body);
        if (c->cli[0]) {
            char msg[512];
            cli_add_message(c->cli, msg, sizeof(msg));
            if (strcmp(msg, hq_api_jstr(j, "detail")) != 0 &&
                !(c->field && strcmp(c->field, "backoff_factor") == 0 &&
                  strstr(msg, "--backoff-factor")))
                fail_msg("case %zu: API '%s' vs CLI '%s'", i, hq_api_jstr(j, "detail"), msg);
        }
        json_decref(j);
        hq_api_resp_free(&r);
        assert_unchanged(&before);
    }
}

/* PATCH refusals: the API's detail is `hookq endpoint update`'s message for
 * the same change, and nothing changes. */
static void test_update_errors_match_the_cli(void **state)
{
    (void)state;
    char id[64];
    create("{\"name\":\"a\",\"url\":\"https://e.com/\"}", id, sizeof(id));
    static const struct {
        const char *body;
        const char *cli[6];
        long status;
    } cases[] = {
        {"{\"url\":\"http://[::1]/\"}", {"--url", "http://[::1]/", NULL}, 422},
        {"{\"events\":[\"a.*.b\"]}", {"--events", "a.*.b", NULL}, 422},
        {"{\"backoff_base_ms\":7200000,\"backoff_max_ms\":60000}",
         {"--backoff-base", "2h", "--backoff-max", "1m", NULL},
         422},
        {"{\"rate_limit\":\"fast\"}", {"--rate-limit", "fast", NULL}, 422},
        {"{\"tenant\":\"no spaces\"}", {"--tenant", "no spaces", NULL}, 422},
        {"{\"batch\":{\"max\":20,\"wait_ms\":5000}}", {"--batch", "max=20,wait=5000ms", NULL}, 422},
        {"{\"batch\":\"wait=1s\"}", {"--batch", "wait=1s", NULL}, 422},
    };
    struct snapshot before;
    snap(&before);
    char path[128];
    snprintf(path, sizeof(path), "/v1/endpoints/%s", id);
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct hq_api_resp r;
        long st = hq_api_call(&A, "PATCH", path, WRITE, cases[i].body, &r);
        if (st != cases[i].status)
            fail_msg("case %zu: %ld %s", i, st, r.body);
        json_t *j = hq_api_resp_json(&r);
        const char *argv[16] = {"endpoint", "update", id};
        int k = 3;
        for (int a = 0; cases[i].cli[a]; a++)
            argv[k++] = cases[i].cli[a];
        argv[k++] = "--redis-url";
        argv[k++] = R.url;
        argv[k] = NULL;
        char out[4096], err[4096];
        assert_int_not_equal(hq_test_cli(argv, NULL, NULL, out, sizeof(out), err, sizeof(err)), 0);
        const char *msg = strstr(err, "hookq endpoint update: ");
        assert_non_null(msg);
        msg += strlen("hookq endpoint update: ");
        char cli[512];
        snprintf(cli, sizeof(cli), "%.*s", (int)strcspn(msg, "\n"), msg);
        /* The CLI names --tenant where the API's field is tenant. */
        const char *api = hq_api_jstr(j, "detail");
        if (strcmp(cli, api) != 0 && !(strncmp(cli, "--", 2) == 0 && strcmp(cli + 2, api) == 0))
            fail_msg("case %zu: API '%s' vs CLI '%s'", i, api, cli);
        json_decref(j);
        hq_api_resp_free(&r);
        assert_unchanged(&before);
    }
}

static void test_hostile_bodies_get_4xx_and_the_server_keeps_serving(void **state)
{
    (void)state;
    struct snapshot before;
    snap(&before);
    struct hq_api_resp r;
    /* 100 MB announced: refused at the headers, nothing read. */
    const char *big[] = {"Content-Length: 104857600", NULL};
    assert_int_equal(hq_api_call_ex(&A, "POST", "/v1/endpoints", WRITE, "{}", 2, big, &r), 413);
    hq_api_resp_free(&r);
    /* 100 MB sent. */
    size_t n = 100u * 1024 * 1024;
    char *huge = malloc(n);
    memset(huge, '[', n);
    /* With Expect: 100-continue curl waits for the verdict on the headers (as
     * well-behaved clients do); without, the client may still be writing when
     * the server answers 413 and closes. */
    const char *expect[] = {"Expect: 100-continue", NULL};
    long st = hq_api_call_ex(&A, "POST", "/v1/endpoints", WRITE, huge, n, expect, &r);
    assert_int_equal(st, 413);
    hq_api_resp_free(&r);
    /* Deep nesting within the bounds: 3,000 '[' (over jansson's depth limit, 2048). */
    huge[3000] = '\0';
    assert_int_equal(hq_api_call(&A, "POST", "/v1/endpoints", WRITE, huge, &r), 400);
    hq_api_resp_free(&r);
    /* Many small items: refused by the bound on values, before jansson. */
    size_t k = 0;
    huge[k++] = '[';
    while (k < 60000) {
        memcpy(huge + k, "[],", 3);
        k += 3;
    }
    memcpy(huge + k, "[]]", 4);
    st = hq_api_call(&A, "POST", "/v1/endpoints", WRITE, huge, &r);
    assert_int_equal(st, 413); /* "too complex": 40,000 values */
    hq_api_resp_free(&r);
    free(huge);
    /* Invalid UTF-8. */
    assert_int_equal(hq_api_call(&A, "POST", "/v1/endpoints", WRITE,
                                 "{\"name\":\"\xc3\x28\",\"url\":\"https://e.com/\"}", &r),
                     400);
    hq_api_resp_free(&r);
    /* Chunked. */
    const char *chunked[] = {"Transfer-Encoding: chunked", NULL};
    assert_int_equal(hq_api_call_ex(&A, "POST", "/v1/endpoints", WRITE,
                                    "{\"name\":\"a\",\"url\":\"https://e.com/\"}", 33, chunked, &r),
                     411);
    hq_api_resp_free(&r);
    /* Not JSON. */
    const char *text[] = {"Content-Type: text/plain", NULL};
    assert_int_equal(hq_api_call_ex(&A, "POST", "/v1/endpoints", WRITE, "{}", 2, text, &r), 415);
    hq_api_resp_free(&r);
    /* A 40 KB header: over the per-connection memory, refused by the HTTP layer. */
    char *hdr = malloc(41000);
    memcpy(hdr, "X-Big: ", 7);
    memset(hdr + 7, 'a', 40000);
    hdr[40007] = '\0';
    const char *bigh[] = {hdr, NULL};
    st = hq_api_call_ex(&A, "GET", "/v1/endpoints", READ, NULL, 0, bigh, &r);
    assert_true(st == 431 || st == 413 || st == 400);
    hq_api_resp_free(&r);
    free(hdr);
    /* A path that is no route, and a parameter that is no id. */
    assert_int_equal(hq_api_call(&A, "GET", "/v1/endpoints/%2e%2e%2fx", READ, NULL, &r), 404);
    hq_api_resp_free(&r);
    assert_unchanged(&before);
}

/* The bound on values refuses expensive bodies, not large valid ones: an
 * endpoint at every bound (64 filters, 16 headers of 1 KiB, 4 KiB of text). */
static void test_largest_valid_endpoint_is_accepted(void **state)
{
    (void)state;
    json_t *doc = json_pack("{s:s,s:s,s:[],s:[]}", "name", "big", "url", "https://e.com/h",
                            "events", "headers");
    char item[1100];
    for (int i = 0; i < 64; i++) {
        snprintf(item, sizeof(item), "t%03d.%0120d", i, 0);
        json_array_append_new(json_object_get(doc, "events"), json_string(item));
    }
    for (int i = 0; i < 16; i++) {
        snprintf(item, sizeof(item), "X-H%02d: %01000d", i, 0);
        json_array_append_new(json_object_get(doc, "headers"), json_string(item));
    }
    char *desc = malloc(4097);
    memset(desc, 'd', 4096);
    desc[4096] = '\0';
    json_object_set_new(doc, "description", json_string(desc));
    free(desc);
    char *body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    struct hq_api_resp r;
    long st = hq_api_call(&A, "POST", "/v1/endpoints", WRITE, body, &r);
    if (st != 201)
        fail_msg("%ld %s", st, r.body);
    hq_api_resp_free(&r);
    free(body);
}

static void test_tenant_scoped_keys_see_their_tenant_only(void **state)
{
    (void)state;
    char acme[128];
    hq_api_env_key(R.url, "write", "acme", acme, sizeof(acme));
    char mine[64], theirs[64];
    struct hq_api_resp r;
    assert_int_equal(hq_api_call(&A, "POST", "/v1/endpoints", acme,
                                 "{\"name\":\"a\",\"url\":\"https://e.com/\"}", &r),
                     201);
    assert_non_null(strstr(r.body, "\"tenant\":\"acme\"")); /* the key's tenant by default */
    hq_api_json_str(r.body, "id", mine, sizeof(mine));
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&A, "POST", "/v1/endpoints", acme,
                                 "{\"name\":\"a\",\"url\":\"https://e.com/\",\"tenant\":\"other\"}",
                                 &r),
                     422);
    hq_api_resp_free(&r);
    create("{\"name\":\"b\",\"url\":\"https://e.com/\",\"tenant\":\"other\"}", theirs,
           sizeof(theirs));
    char path[128];
    snprintf(path, sizeof(path), "/v1/endpoints/%s", theirs);
    assert_int_equal(hq_api_call(&A, "GET", path, acme, NULL, &r), 404);
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&A, "DELETE", path, acme, NULL, &r), 404);
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&A, "PATCH", path, acme, "{\"name\":\"x\"}", &r), 404);
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&A, "GET", "/v1/endpoints", acme, NULL, &r), 200);
    assert_non_null(strstr(r.body, mine));
    assert_null(strstr(r.body, theirs));
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&A, "GET", "/v1/endpoints?tenant=other", acme, NULL, &r), 403);
    hq_api_resp_free(&r);
    /* tenant null: none (as `endpoint add` without --tenant); "" is refused as `--tenant ''`. */
    assert_int_equal(hq_api_call(&A, "POST", "/v1/endpoints", WRITE,
                                 "{\"name\":\"n\",\"url\":\"https://e.com/\",\"tenant\":null}", &r),
                     201);
    assert_non_null(strstr(r.body, "\"tenant\":null"));
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&A, "POST", "/v1/endpoints", WRITE,
                                 "{\"name\":\"n\",\"url\":\"https://e.com/\",\"tenant\":\"\"}", &r),
                     422);
    hq_api_resp_free(&r);
    /* An unscoped key filters by tenant when asked. */
    assert_int_equal(hq_api_call(&A, "GET", "/v1/endpoints?tenant=other", READ, NULL, &r), 200);
    assert_non_null(strstr(r.body, theirs));
    assert_null(strstr(r.body, mine));
    hq_api_resp_free(&r);
}

static void test_cors_is_off_unless_origins_are_named(void **state)
{
    (void)state;
    struct hq_api_resp r;
    const char *origin[] = {"Origin: https://console.example.com", NULL};
    hq_api_call_ex(&A, "GET", "/v1/endpoints", READ, NULL, 0, origin, &r);
    assert_null(strstr(r.headers, "Access-Control-Allow-Origin"));
    hq_api_resp_free(&r);
    struct hq_api_env B;
    const char *extra[] = {"--cors-origin", "https://console.example.com", NULL};
    hq_api_env_start(&B, R.url, extra);
    hq_api_call_ex(&B, "GET", "/v1/endpoints", READ, NULL, 0, origin, &r);
    assert_non_null(strstr(r.headers, "Access-Control-Allow-Origin: https://console.example.com"));
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call_ex(&B, "OPTIONS", "/v1/endpoints", NULL, NULL, 0, origin, &r),
                     204);
    assert_non_null(strstr(r.headers, "Access-Control-Allow-Headers"));
    hq_api_resp_free(&r);
    const char *evil[] = {"Origin: https://evil.example.com", NULL};
    hq_api_call_ex(&B, "GET", "/v1/endpoints", READ, NULL, 0, evil, &r);
    assert_null(strstr(r.headers, "Access-Control-Allow-Origin"));
    hq_api_resp_free(&r);
    hq_api_env_stop(&B);
}

/* ---- TLS and the graceful stop ------------------------------------------------------------ */

static size_t discard(char *d, size_t s, size_t n, void *arg)
{
    (void)d, (void)arg;
    return s * n;
}

static void test_tls_serves_https(void **state)
{
    (void)state;
    char dir[] = "/tmp/hq-api-tls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[1024], cert[300], key[300];
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
             "-subj /CN=127.0.0.1 -keyout %s -out %s 2>/dev/null",
             key, cert);
    if (system(cmd) != 0)
        skip();
    /* hq_api_env_start polls http://: start by hand and poll https://. */
    struct hq_api_env B = {0};
    B.port = hq_test_free_port();
    snprintf(B.base, sizeof(B.base), "https://127.0.0.1:%d", B.port);
    snprintf(B.log, sizeof(B.log), "%s/api.log", dir);
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", B.port);
    const char *args[] = {"api", "--listen",   listen, "--redis-url", R.url, "--shutdown-delay",
                          "0",   "--tls-cert", cert,   "--tls-key",   key,   NULL};
    B.pid = hq_test_spawn(args, NULL, B.log);
    long st = 0;
    for (int i = 0; i < 200 && st != 200; i++) {
        CURL *c = curl_easy_init();
        char url[128];
        snprintf(url, sizeof(url), "%s/healthz", B.base);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 500L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
        curl_easy_cleanup(c);
        if (st != 200)
            usleep(20000);
    }
    if (st != 200)
        hq_test_log_print(B.log, "api");
    assert_int_equal(st, 200);
    /* Plain HTTP on the TLS port is not served. */
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", B.port);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    long plain = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &plain);
    curl_easy_cleanup(c);
    assert_int_not_equal(plain, 200);
    hq_api_env_stop(&B);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static int readyz_unavailable(void *arg)
{
    struct hq_api_resp r;
    long st = hq_api_call(arg, "GET", "/readyz", NULL, NULL, &r);
    hq_api_resp_free(&r);
    return st == 503;
}

static void test_sigterm_drains_then_exits_0(void **state)
{
    (void)state;
    struct hq_api_env B;
    const char *extra[] = {"--shutdown-delay", "1s", NULL};
    hq_api_env_start(&B, R.url, extra);
    struct hq_api_resp r;
    assert_int_equal(hq_api_call(&B, "GET", "/readyz", NULL, NULL, &r), 200);
    hq_api_resp_free(&r);
    assert_int_equal(kill(B.pid, SIGTERM), 0);
    /* /readyz says 503 at once, while the rest is still served. */
    assert_true(hq_test_wait(readyz_unavailable, &B, 900));
    assert_int_equal(hq_api_call(&B, "GET", "/v1/endpoints", READ, NULL, &r), 200);
    hq_api_resp_free(&r);
    assert_int_equal(hq_test_kill_wait(B.pid, 0, 15000), 0);
    B.pid = 0;
}

static int readyz_ok(void *arg)
{
    struct hq_api_resp r;
    long st = hq_api_call(arg, "GET", "/readyz", NULL, NULL, &r);
    hq_api_resp_free(&r);
    return st == 200;
}

/* Redis away: 503 with Retry-After (not a crash, not a hang); back: every
 * pool thread reconnects on its next request. */
static void test_redis_restart_is_503_then_recovers(void **state)
{
    (void)state;
    struct hq_api_resp r;
    /* Warm every pool thread's connection. */
    for (int i = 0; i < 16; i++) {
        assert_int_equal(hq_api_call(&A, "GET", "/v1/endpoints", READ, NULL, &r), 200);
        hq_api_resp_free(&r);
    }
    hq_test_redis_stop(&R, 0);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(hq_api_call(&A, "GET", "/v1/endpoints", READ, NULL, &r), 503);
        assert_non_null(strstr(r.headers, "Retry-After: 1"));
        hq_api_resp_free(&r);
    }
    assert_int_equal(hq_api_call(&A, "GET", "/readyz", NULL, NULL, &r), 503);
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&A, "GET", "/healthz", NULL, NULL, &r), 200);
    hq_api_resp_free(&r);
    hq_test_redis_restart(&R);
    redisFree(C);
    C = hq_test_redis_connect(&R);
    assert_true(hq_test_wait(readyz_ok, &A, 5000));
    hq_api_env_keys(R.url, ADMIN, WRITE, READ, sizeof(ADMIN)); /* the data did not survive */
    for (int i = 0; i < 16; i++) {
        assert_int_equal(hq_api_call(&A, "GET", "/v1/endpoints", READ, NULL, &r), 200);
        hq_api_resp_free(&r);
    }
}

/* ---- the OpenAPI document ------------------------------------------------------------- */

static void test_openapi_documents_exactly_the_routes_served(void **state)
{
    (void)state;
    json_error_t je;
    json_t *doc = json_load_file(HQ_TEST_SRC "/docs/openapi.json", JSON_REJECT_DUPLICATES, &je);
    if (!doc)
        fail_msg("docs/openapi.json: %s (line %d)", je.text, je.line);
    assert_string_equal(hq_api_jstr(doc, "openapi"), "3.1.0");
    static const char *const methods[] = {"get", "post", "patch", "delete", "put"};
    const char *path;
    json_t *item;
    size_t documented = 0;
    json_object_foreach(json_object_get(doc, "paths"), path, item)
    {
        for (size_t m = 0; m < sizeof(methods) / sizeof(*methods); m++) {
            json_t *op = json_object_get(item, methods[m]);
            if (!op)
                continue;
            documented++;
            char upper[8];
            for (size_t i = 0; i <= strlen(methods[m]); i++)
                upper[i] = (char)(methods[m][i] >= 'a' ? methods[m][i] - 32 : methods[m][i]);
            const struct hq_api_route *rt = NULL;
            for (size_t i = 0; i < hq_api_nroutes; i++)
                if (strcmp(hq_api_routes[i].method, upper) == 0 &&
                    strcmp(hq_api_routes[i].path, path) == 0)
                    rt = &hq_api_routes[i];
            if (!rt)
                fail_msg("documented but not served: %s %s", upper, path);
            const char *scope = hq_api_jstr(op, "x-hookq-scope");
            if (strcmp(scope, rt->scope ? hq_apikey_scope_name(rt->scope) : "none") != 0)
                fail_msg("%s %s: documented scope %s, served %s", upper, path, scope,
                         hq_apikey_scope_name(rt->scope));
            /* Live: without a key every /v1 route answers 401 (not 404/405). */
            char live[256];
            snprintf(live, sizeof(live), "%s", path);
            char *brace;
            while ((brace = strchr(live, '{')) != NULL) {
                char *end = strchr(brace, '}');
                memmove(brace + 1, end + 1, strlen(end + 1) + 1);
                *brace = 'x';
            }
            struct hq_api_resp r;
            long st = hq_api_call(&A, upper, live, NULL, strcmp(upper, "GET") ? "{}" : NULL, &r);
            hq_api_resp_free(&r);
            if (st != (rt->scope ? 401 : 200))
                fail_msg("%s %s without a key: %ld", upper, live, st);
        }
    }
    assert_int_equal(documented, hq_api_nroutes); /* and nothing served is undocumented */
    json_decref(doc);
    /* The server serves the same document. */
    struct hq_api_resp r;
    assert_int_equal(hq_api_call(&A, "GET", "/v1/openapi.json", READ, NULL, &r), 200);
    json_t *served = hq_api_resp_json(&r);
    json_t *file = json_load_file(HQ_TEST_SRC "/docs/openapi.json", 0, &je);
    assert_true(json_equal(served, file));
    json_decref(served);
    json_decref(file);
    hq_api_resp_free(&r);
}

/* ---- scale ------------------------------------------------------------------------------ */

/* 10,000 endpoints in pages of 500 while the listing's anchor (the last
 * endpoint of each page) is deleted and new endpoints are created between
 * pages: no endpoint twice, none of those present throughout missed, and the
 * new ones at the end. */
static void test_pagination_over_10000_endpoints(void **state)
{
    (void)state;
    enum { N = 10000 };
    char id[64];
    for (int i = 0; i < N; i++)
        hq_test_endpoint_numbered(C, "hookq", i, id, sizeof(id));
    char path[256] = "/v1/endpoints?limit=500";
    int seen = 0, pages = 0, added = 0;
    freeReplyObject(hq_test_cmd(C, "DEL api-test-seen"));
    for (;;) {
        struct hq_api_resp r;
        assert_int_equal(hq_api_call(&A, "GET", path, READ, NULL, &r), 200);
        json_t *j = hq_api_resp_json(&r);
        json_t *data = json_object_get(j, "data");
        size_t i;
        json_t *e;
        char last[64] = "";
        json_array_foreach(data, i, e)
        {
            assert_int_equal(hq_test_cmd_int(C, "SADD api-test-seen %s", hq_api_jstr(e, "id")), 1);
            snprintf(last, sizeof(last), "%s", hq_api_jstr(e, "id"));
            seen++;
        }
        pages++;
        int done = json_is_true(json_object_get(j, "done"));
        if (!done)
            snprintf(path, sizeof(path), "/v1/endpoints?limit=500&iterator=%s",
                     hq_api_jstr(j, "iterator"));
        json_decref(j);
        hq_api_resp_free(&r);
        if (done)
            break;
        /* Delete the anchor and create one endpoint before the next page. */
        char del[128];
        snprintf(del, sizeof(del), "/v1/endpoints/%s", last);
        assert_int_equal(hq_api_call(&A, "DELETE", del, WRITE, NULL, &r), 204);
        hq_api_resp_free(&r);
        create("{\"name\":\"late\",\"url\":\"https://e.com/\"}", id, sizeof(id));
        added++;
        assert_true(pages <= N / 500 + 3);
    }
    assert_int_equal(seen, N + added);
    assert_int_equal(hq_test_cmd_int(C, "SISMEMBER api-test-seen %s", id), 1); /* the last one */
    assert_true(pages >= N / 500);
}

struct creator {
    const struct hq_api_env *env;
    const char *key;
    int ok;
};

static void *create_many(void *arg)
{
    struct creator *c = arg;
    for (int i = 0; i < 100; i++) {
        struct hq_api_resp r;
        char body[128];
        snprintf(body, sizeof(body), "{\"name\":\"c%d\",\"url\":\"https://e.com/%d\"}", i, i);
        if (hq_api_call(c->env, "POST", "/v1/endpoints", c->key, body, &r) == 201)
            c->ok++;
        hq_api_resp_free(&r);
    }
    return NULL;
}

static void test_concurrent_creates_from_4_replicas(void **state)
{
    (void)state;
    struct hq_api_env env[4];
    struct creator cr[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        hq_api_env_start(&env[i], R.url, NULL);
    for (int i = 0; i < 4; i++) {
        cr[i] = (struct creator){&env[i], WRITE, 0};
        pthread_create(&th[i], NULL, create_many, &cr[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(cr[i].ok, 100);
    }
    assert_int_equal(hq_test_cmd_int(C, "ZCARD hookq:endpoints"), 400);
    redisReply *v = hq_test_cmd(C, "GET hookq:endpoints:ver");
    assert_int_equal(atoll(v->str), 400);
    freeReplyObject(v);
    for (int i = 0; i < 4; i++)
        hq_api_env_stop(&env[i]);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    hq_test_redis_group(&R, &C, ENV_URL, sizeof(ENV_URL));
    hq_test_group_setup(NULL);
    hq_api_env_start(&A, R.url, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_every_route_needs_a_key_of_enough_scope, setup),
        cmocka_unit_test_setup_teardown(test_failed_authentications_are_limited_per_address, setup,
                                        restart_api),
        cmocka_unit_test_setup(test_endpoint_lifecycle, setup),
        cmocka_unit_test_setup(test_validation_errors_match_the_cli_and_change_nothing, setup),
        cmocka_unit_test_setup(test_update_errors_match_the_cli, setup),
        cmocka_unit_test_setup(test_hostile_bodies_get_4xx_and_the_server_keeps_serving, setup),
        cmocka_unit_test_setup(test_largest_valid_endpoint_is_accepted, setup),
        cmocka_unit_test_setup(test_tenant_scoped_keys_see_their_tenant_only, setup),
        cmocka_unit_test_setup(test_cors_is_off_unless_origins_are_named, setup),
        cmocka_unit_test_setup(test_tls_serves_https, setup),
        cmocka_unit_test_setup(test_sigterm_drains_then_exits_0, setup),
        cmocka_unit_test_setup(test_redis_restart_is_503_then_recovers, setup),
        cmocka_unit_test_setup(test_openapi_documents_exactly_the_routes_served, setup),
        cmocka_unit_test_setup(test_pagination_over_10000_endpoints, setup),
        cmocka_unit_test_setup(test_concurrent_creates_from_4_replicas, setup),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    hq_api_env_stop(&A);
    hq_test_group_teardown(NULL);
    return failed;
}
