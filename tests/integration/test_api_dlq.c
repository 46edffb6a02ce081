/* `hookq api`'s dead letters, events, attempts, event types and stats over
 * HTTP against a private redis-server: listing with filters and iterators,
 * replay of 5,000 dead letters by filter through continuations, replay and
 * purge by ids, producing single events and batches with the producer's
 * validation, the attempts `hookq event show` prints, and /v1/stats equal to
 * `hookq stats --json`. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/keys.h"
#include "common/layout_store.h"
#include "common/redis_conn.h"
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

/* n dead letters for endpoint ep, type alternating odd/even, tenant t. */
static void seed(int n, const char *ep, const char *tenant, const char *reason)
{
    freeReplyObject(hq_test_cmd(
        C, "EVAL %s 0 %d %s %s %s",
        "for i = 1, tonumber(ARGV[1]) do redis.call('XADD', 'hookq:dead', '*', 'event_id', "
        "ARGV[2] .. i, 'type', i % 2 == 0 and 'even' or 'odd', 'endpoint_id', ARGV[2], "
        "'tenant', ARGV[3], 'reason', ARGV[4], 'payload', '{}') end return 1",
        n, ep, tenant, reason));
}

static void test_list_get_and_filters(void **state)
{
    (void)state;
    seed(1200, "epA", "acme", "exhausted");
    seed(10, "epB", "other", "blocked: 10.0.0.1 is private");
    char path[512] = "/v1/dead-letters?type=even&endpoint=epA&limit=100";
    int seen = 0;
    char first[64] = "";
    for (int pages = 0;; pages++) {
        assert_true(pages < 20);
        struct hq_api_resp r;
        assert_int_equal(hq_api_call(&A, "GET", path, READ, NULL, &r), 200);
        json_t *j = hq_api_resp_json(&r);
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(j, "data"), i, e)
        {
            assert_string_equal(hq_api_jstr(e, "type"), "even");
            assert_string_equal(hq_api_jstr(e, "endpoint_id"), "epA");
            if (!first[0])
                snprintf(first, sizeof(first), "%s", hq_api_jstr(e, "id"));
            seen++;
        }
        int done = json_is_true(json_object_get(j, "done"));
        if (!done)
            snprintf(path, sizeof(path),
                     "/v1/dead-letters?type=even&endpoint=epA&limit=100&iterator=%s",
                     hq_api_jstr(j, "iterator"));
        json_decref(j);
        hq_api_resp_free(&r);
        if (done)
            break;
    }
    assert_int_equal(seen, 600);
    /* reason matches a prefix. */
    struct hq_api_resp r;
    assert_int_equal(
        hq_api_call(&A, "GET", "/v1/dead-letters?reason=blocked&limit=500", READ, NULL, &r), 200);
    json_t *j = hq_api_resp_json(&r);
    assert_int_equal(json_array_size(json_object_get(j, "data")), 10);
    json_decref(j);
    hq_api_resp_free(&r);
    /* One by id, every field. */
    snprintf(path, sizeof(path), "/v1/dead-letters/%s", first);
    assert_int_equal(hq_api_call(&A, "GET", path, READ, NULL, &r), 200);
    j = hq_api_resp_json(&r);
    assert_string_equal(hq_api_jstr(j, "id"), first);
    assert_string_equal(hq_api_jstr(j, "tenant"), "acme");
    assert_string_equal(hq_api_jstr(j, "payload"), "{}");
    json_decref(j);
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&A, "GET", "/v1/dead-letters/1-0", READ, NULL, &r), 404);
    hq_api_resp_free(&r);
    /* Bad input: the CLI's messages, naming the parameter. */
    assert_int_equal(hq_api_call(&A, "GET", "/v1/dead-letters/abc", READ, NULL, &r), 422);
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&A, "GET", "/v1/dead-letters?since=yesterday", READ, NULL, &r),
                     400);
    j = hq_api_resp_json(&r);
    assert_string_equal(hq_api_jstr(j, "field"), "since");
    json_decref(j);
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&A, "GET", "/v1/dead-letters?iterator=zz", READ, NULL, &r), 400);
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&A, "GET", "/v1/dead-letters?limit=501", READ, NULL, &r), 400);
    hq_api_resp_free(&r);
    /* A tenant key lists and reads its tenant's only. */
    char other[128];
    hq_api_env_key(R.url, "read", "other", other, sizeof(other));
    assert_int_equal(hq_api_call(&A, "GET", "/v1/dead-letters?limit=500", other, NULL, &r), 200);
    j = hq_api_resp_json(&r);
    assert_int_equal(json_array_size(json_object_get(j, "data")), 10);
    json_decref(j);
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&A, "GET", path, other, NULL, &r), 404);
    hq_api_resp_free(&r);
}

static void test_replay_5000_by_filter_through_continuations(void **state)
{
    (void)state;
    seed(5000, "epA", "", "exhausted");
    seed(100, "epB", "", "exhausted");
    long long replayed = 0;
    int calls = 0;
    char body[1024] = "{\"filter\":{\"endpoint\":\"epA\",\"since\":\"1h\"}}";
    for (;;) {
        struct hq_api_resp r;
        assert_int_equal(hq_api_call(&A, "POST", "/v1/dead-letters/replay", WRITE, body, &r), 200);
        json_t *j = hq_api_resp_json(&r);
        replayed += json_integer_value(json_object_get(j, "done_count"));
        calls++;
        assert_true(json_integer_value(json_object_get(j, "done_count")) <= 2000);
        int done = json_is_true(json_object_get(j, "done"));
        if (!done)
            snprintf(body, sizeof(body),
                     "{\"filter\":{\"endpoint\":\"epA\",\"since\":\"1h\"},\"iterator\":\"%s\"}",
                     hq_api_jstr(j, "iterator"));
        json_decref(j);
        hq_api_resp_free(&r);
        if (done)
            break;
        assert_true(calls < 10);
    }
    assert_int_equal(replayed, 5000);
    assert_true(calls >= 3); /* slices, not one long call */
    assert_int_equal(hq_test_cmd_int(C, "XLEN hookq:dead"), 100);
    assert_int_equal(hq_test_cmd_int(C, "XLEN hookq:events"), 5000);
}

static void test_replay_and_purge_by_ids(void **state)
{
    (void)state;
    seed(3, "epA", "", "exhausted");
    seed(1, "epX", "", "invalid: payload: not JSON");
    redisReply *ids = hq_test_cmd(C, "XRANGE hookq:dead - +");
    char a[64], b[64], c[64], inv[64];
    snprintf(a, sizeof(a), "%s", ids->element[0]->element[0]->str);
    snprintf(b, sizeof(b), "%s", ids->element[1]->element[0]->str);
    snprintf(c, sizeof(c), "%s", ids->element[2]->element[0]->str);
    snprintf(inv, sizeof(inv), "%s", ids->element[3]->element[0]->str);
    freeReplyObject(ids);
    char body[512];
    struct hq_api_resp r;
    /* An unknown id among them: nothing is replayed. */
    snprintf(body, sizeof(body), "{\"ids\":[\"%s\",\"1-1\"]}", a);
    assert_int_equal(hq_api_call(&A, "POST", "/v1/dead-letters/replay", WRITE, body, &r), 404);
    hq_api_resp_free(&r);
    assert_int_equal(hq_test_cmd_int(C, "XLEN hookq:dead"), 4);
    snprintf(body, sizeof(body), "{\"ids\":[\"%s\",\"%s\"]}", a, inv);
    assert_int_equal(hq_api_call(&A, "POST", "/v1/dead-letters/replay", WRITE, body, &r), 200);
    json_t *j = hq_api_resp_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "done_count")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "skipped")), 1);
    json_decref(j);
    hq_api_resp_free(&r);
    assert_int_equal(hq_test_cmd_int(C, "XLEN hookq:events"), 1);
    /* purge needs admin. */
    snprintf(body, sizeof(body), "{\"ids\":[\"%s\"]}", b);
    assert_int_equal(hq_api_call(&A, "POST", "/v1/dead-letters/purge", WRITE, body, &r), 403);
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&A, "POST", "/v1/dead-letters/purge", ADMIN, body, &r), 200);
    hq_api_resp_free(&r);
    assert_int_equal(hq_test_cmd_int(C, "XLEN hookq:dead"), 2);
    /* Purge by filter. */
    assert_int_equal(hq_api_call(&A, "POST", "/v1/dead-letters/purge", ADMIN,
                                 "{\"filter\":{\"endpoint\":\"epA\"}}", &r),
                     200);
    hq_api_resp_free(&r);
    assert_int_equal(hq_test_cmd_int(C, "XLEN hookq:dead"), 1); /* the invalid one stays */
    (void)c;
    /* Neither ids nor filter, or both. */
    assert_int_equal(hq_api_call(&A, "POST", "/v1/dead-letters/replay", WRITE, "{}", &r), 400);
    hq_api_resp_free(&r);
}

static void test_events_post_single_batch_and_invalid(void **state)
{
    (void)state;
    struct hq_api_resp r;
    assert_int_equal(hq_api_call(&A, "POST", "/v1/events", WRITE,
                                 "{\"type\":\"invoice.paid\",\"id\":\"evt_1\","
                                 "\"payload\":\"{\\\"amount\\\": 4200}\"}",
                                 &r),
                     202);
    json_t *j = hq_api_resp_json(&r);
    json_t *d0 = json_array_get(json_object_get(j, "data"), 0);
    assert_string_equal(hq_api_jstr(d0, "id"), "evt_1");
    assert_true(strlen(hq_api_jstr(d0, "entry_id")) > 3);
    json_decref(j);
    hq_api_resp_free(&r);
    /* The payload is stored byte-exact (msgpack field "payload"). */
    redisReply *x = hq_test_cmd(C, "XRANGE hookq:events - +");
    assert_int_equal(x->elements, 1);
    freeReplyObject(x);
    assert_int_equal(
        hq_api_call(
            &A, "POST", "/v1/events", WRITE,
            "{\"events\":[{\"type\":\"a\",\"payload\":\"{}\"},{\"type\":\"b\",\"payload\":"
            "\"e30=\",\"payload_encoding\":\"base64\"},{\"type\":\"c\",\"payload\":\"[]\"}]}",
            &r),
        202);
    j = hq_api_resp_json(&r);
    assert_int_equal(json_array_size(json_object_get(j, "data")), 3);
    json_decref(j);
    hq_api_resp_free(&r);
    assert_int_equal(hq_test_cmd_int(C, "XLEN hookq:events"), 4);
    /* One bad event in a batch: nothing written, the producer's message with its index. */
    assert_int_equal(hq_api_call(&A, "POST", "/v1/events", WRITE,
                                 "{\"events\":[{\"type\":\"a\",\"payload\":\"{}\"},"
                                 "{\"type\":\"hookq.endpoint.disabled\",\"payload\":\"{}\"}]}",
                                 &r),
                     422);
    hq_api_resp_free(&r);
    assert_int_equal(
        hq_api_call(&A, "POST", "/v1/events", WRITE, "{\"type\":\"a b\",\"payload\":\"{}\"}", &r),
        422);
    j = hq_api_resp_json(&r);
    /* The same words `hookq produce --type 'a b'` prints. */
    const char *args[] = {"produce", "--type", "a b", "--data", "{}", "--redis-url", R.url, NULL};
    char out[1024], err[1024];
    assert_int_equal(hq_test_cli(args, NULL, NULL, out, sizeof(out), err, sizeof(err)), 2);
    err[strcspn(err, "\n")] = '\0';
    assert_non_null(strstr(err, hq_api_jstr(j, "detail")));
    json_decref(j);
    hq_api_resp_free(&r);
    assert_int_equal(
        hq_api_call(&A, "POST", "/v1/events", WRITE, "{\"type\":\"a\",\"payload\":{}}", &r), 400);
    hq_api_resp_free(&r);
    assert_int_equal(
        hq_api_call(&A, "POST", "/v1/events", READ, "{\"type\":\"a\",\"payload\":\"{}\"}", &r),
        403);
    hq_api_resp_free(&r);
    assert_int_equal(hq_test_cmd_int(C, "XLEN hookq:events"), 4);
}

static void test_attempts_event_types_and_stats(void **state)
{
    (void)state;
    freeReplyObject(hq_test_cmd(
        C, "RPUSH hookq:att:evt_9 %s %s",
        "{\"endpoint_id\":\"ep_a\",\"attempt\":1,\"at_ms\":1,\"status\":500,\"outcome\":\"retry\"}",
        "{\"endpoint_id\":\"ep_a\",\"attempt\":2,\"at_ms\":2,\"status\":200,\"outcome\":\"ok\"}"));
    struct hq_api_resp r;
    assert_int_equal(hq_api_call(&A, "GET", "/v1/events/evt_9/attempts", READ, NULL, &r), 200);
    json_t *j = hq_api_resp_json(&r);
    json_t *g = json_array_get(json_object_get(j, "endpoints"), 0);
    assert_string_equal(hq_api_jstr(g, "endpoint_id"), "ep_a");
    assert_int_equal(json_array_size(json_object_get(g, "attempts")), 2);
    json_decref(j);
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&A, "GET", "/v1/events/evt_none/attempts", READ, NULL, &r), 404);
    hq_api_resp_free(&r);

    const char *bodies[] = {
        "{\"name\":\"a\",\"url\":\"https://e.com/\",\"events\":[\"invoice.paid\",\"user.*\"]}",
        "{\"name\":\"b\",\"url\":\"https://e.com/\",\"events\":[\"invoice.paid\"]}",
    };
    for (int i = 0; i < 2; i++) {
        assert_int_equal(hq_api_call(&A, "POST", "/v1/endpoints", WRITE, bodies[i], &r), 201);
        hq_api_resp_free(&r);
    }
    assert_int_equal(hq_api_call(&A, "GET", "/v1/event-types", READ, NULL, &r), 200);
    assert_non_null(
        strstr(r.body, "{\"name\":\"invoice.paid\",\"subscribed\":2,\"last_seen_ms\":null}"));
    assert_non_null(strstr(r.body, "{\"name\":\"user.*\",\"subscribed\":1,\"last_seen_ms\":null}"));
    hq_api_resp_free(&r);

    seed(7, "epA", "", "exhausted");
    assert_int_equal(hq_api_call(&A, "GET", "/v1/stats", READ, NULL, &r), 200);
    json_t *api = hq_api_resp_json(&r);
    hq_api_resp_free(&r);
    const char *args[] = {"stats", "--json", "--redis-url", R.url, NULL};
    static char out[65536];
    char err[1024];
    assert_int_equal(hq_test_cli(args, NULL, NULL, out, sizeof(out), err, sizeof(err)), 0);
    json_t *cli = json_loads(out, 0, NULL);
    assert_non_null(cli);
    json_object_del(api, "now_ms");
    json_object_del(cli, "now_ms");
    if (!json_equal(api, cli))
        fail_msg("stats differ: %s vs %s", json_dumps(api, 0), json_dumps(cli, 0));
    assert_int_equal(json_integer_value(json_object_get(api, "dead_letters")), 7);
    json_decref(api);
    json_decref(cli);
}

/* A partitioned deployment (P = 4, prefix "pt"): registry keys carry {reg},
 * events go to their partitions' streams, dead-letter ids read p<i>:<entry>
 * and replay puts each back on its own partition. */
static void test_partitioned_layout(void **state)
{
    (void)state;
    struct hq_err err = {0};
    struct hq_redis_conn *conn = hq_redis_conn_open(R.url, 2000, &err);
    assert_non_null(conn);
    struct hq_layout L;
    assert_int_equal(hq_layout_create(conn, "pt", 4, &L, &err), 0);
    hq_redis_conn_free(conn);
    struct hq_api_env B;
    const char *extra[] = {"--prefix", "pt", NULL};
    const char *kargs[] = {"api-key",  "create", "--name",      "p",   "--scope", "admin",
                           "--prefix", "pt",     "--redis-url", R.url, NULL};
    char out[1024], e[1024], key[128];
    assert_int_equal(hq_test_cli(kargs, NULL, NULL, out, sizeof(out), e, sizeof(e)), 0);
    snprintf(key, sizeof(key), "%.*s", (int)strcspn(strstr(out, "key: ") + 5, "\n"),
             strstr(out, "key: ") + 5);
    assert_int_equal(hq_test_cmd_int(C, "EXISTS pt:{reg}:apikeys"), 1);
    hq_api_env_start(&B, R.url, extra);
    struct hq_api_resp r;
    assert_int_equal(hq_api_call(&B, "POST", "/v1/endpoints", key,
                                 "{\"name\":\"a\",\"url\":\"https://e.com/\"}", &r),
                     201);
    char id[64];
    hq_api_json_str(r.body, "id", id, sizeof(id));
    hq_api_resp_free(&r);
    assert_int_equal(hq_test_cmd_int(C, "EXISTS pt:{reg}:ep:%s", id), 1);
    assert_int_equal(hq_test_cmd_int(C, "EXISTS pt:ep:%s", id), 0);
    /* Events with ids land in the producer rule's partitions. */
    assert_int_equal(hq_api_call(&B, "POST", "/v1/events", key,
                                 "{\"events\":[{\"type\":\"a\",\"id\":\"e1\",\"payload\":\"{}\"},"
                                 "{\"type\":\"a\",\"id\":\"e2\",\"payload\":\"{}\"},"
                                 "{\"type\":\"a\",\"id\":\"e3\",\"payload\":\"{}\"}]}",
                                 &r),
                     202);
    assert_non_null(strstr(r.body, "\"entry_id\":\"p"));
    assert_null(strchr(r.body, '/'));
    hq_api_resp_free(&r);
    long long total = 0;
    for (unsigned i = 0; i < L.nparts; i++)
        total += hq_test_cmd_int(C, "XLEN %s:events", L.part[i].base);
    assert_int_equal(total, 3);
    /* Dead letters in partitions 1 and 3. */
    for (unsigned i = 1; i < 4; i += 2)
        freeReplyObject(hq_test_cmd(
            C, "XADD %s:dead * event_id ev%u type t endpoint_id %s reason exhausted payload {}",
            L.part[i].base, i, id));
    assert_int_equal(hq_api_call(&B, "GET", "/v1/dead-letters", key, NULL, &r), 200);
    json_t *j = hq_api_resp_json(&r);
    json_t *data = json_object_get(j, "data");
    assert_int_equal(json_array_size(data), 2);
    char one[64];
    snprintf(one, sizeof(one), "%s", hq_api_jstr(json_array_get(data, 0), "id"));
    assert_true(one[0] == 'p' && strchr(one, ':'));
    json_decref(j);
    hq_api_resp_free(&r);
    char path[128];
    snprintf(path, sizeof(path), "/v1/dead-letters/%s", one);
    assert_int_equal(hq_api_call(&B, "GET", path, key, NULL, &r), 200);
    hq_api_resp_free(&r);
    char body[256];
    snprintf(body, sizeof(body), "{\"filter\":{\"endpoint\":\"%s\"}}", id);
    assert_int_equal(hq_api_call(&B, "POST", "/v1/dead-letters/replay", key, body, &r), 200);
    assert_non_null(strstr(r.body, "\"done_count\":2"));
    hq_api_resp_free(&r);
    assert_int_equal(hq_test_cmd_int(C, "XLEN %s:events", L.part[1].base) +
                         hq_test_cmd_int(C, "XLEN %s:events", L.part[3].base) +
                         hq_test_cmd_int(C, "XLEN %s:events", L.part[0].base) +
                         hq_test_cmd_int(C, "XLEN %s:events", L.part[2].base),
                     5);
    assert_int_equal(hq_test_cmd_int(C, "XLEN %s:dead", L.part[1].base), 0);
    assert_int_equal(hq_api_call(&B, "GET", "/v1/stats", key, NULL, &r), 200);
    assert_non_null(strstr(r.body, "\"partitions\":["));
    hq_api_resp_free(&r);
    hq_api_env_stop(&B);
    hq_layout_free(&L);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    hq_test_redis_group(&R, &C, ENV_URL, sizeof(ENV_URL));
    hq_test_group_setup(NULL);
    hq_api_env_start(&A, R.url, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_list_get_and_filters, setup),
        cmocka_unit_test_setup(test_replay_5000_by_filter_through_continuations, setup),
        cmocka_unit_test_setup(test_replay_and_purge_by_ids, setup),
        cmocka_unit_test_setup(test_events_post_single_batch_and_invalid, setup),
        cmocka_unit_test_setup(test_attempts_event_types_and_stats, setup),
        cmocka_unit_test_setup(test_partitioned_layout, setup),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    hq_api_env_stop(&A);
    hq_test_group_teardown(NULL);
    return failed;
}
