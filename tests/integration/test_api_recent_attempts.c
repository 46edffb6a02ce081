/* GET /v1/endpoints/{id}/attempts: an endpoint's newest attempt records, read
 * from the shared attempt buckets (common/attempts_recent.h). Two endpoints
 * get the same events, one answering 500, so every bucket field holds both
 * endpoints' records; the route answers the asked one's only, newest first,
 * limit honoured, a bounded scan. Real redis, a real worker and a real
 * `hookq api`. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>

#include "tests/harness/worker_env.h"
#include "tests/harness/api_env.h"
#include "common/attempts_recent.h"
#include "common/keys.h"
#include "common/redis_conn.h"

static struct wenv W;
static struct hq_api_env A;

struct recorded {
    const char *event_id;
    size_t n;
};

/* The event has n attempt records. */
static int has_records(void *arg)
{
    const struct recorded *r = arg;
    redisReply *rep = wenv_attempts(&W, r->event_id);
    int ok = rep->elements >= r->n;
    freeReplyObject(rep);
    return ok;
}

/* GET path with key; the answer's JSON (status checked against want). */
static json_t *get_json(const char *path, const char *key, long want)
{
    struct hq_api_resp r;
    long st = hq_api_call(&A, "GET", path, key, NULL, &r);
    if (st != want)
        fprintf(stderr, "GET %s: %ld %s\n", path, st, r.body);
    assert_int_equal(st, want);
    json_t *doc = hq_api_resp_json(&r);
    hq_api_resp_free(&r);
    return doc;
}

/* The endpoint's recent attempts (limit 0: none given): data checked to be
 * this endpoint's only, with status, newest first; returns the document. */
static json_t *recent(const char *ep, int limit, const char *key, int status)
{
    char path[256];
    if (limit)
        snprintf(path, sizeof(path), "/v1/endpoints/%s/attempts?limit=%d", ep, limit);
    else
        snprintf(path, sizeof(path), "/v1/endpoints/%s/attempts", ep);
    json_t *doc = get_json(path, key, 200);
    assert_string_equal(hq_api_jstr(doc, "endpoint_id"), ep);
    json_t *data = json_object_get(doc, "data");
    assert_true(json_is_array(data));
    json_int_t prev = INT64_MAX;
    size_t i;
    json_t *it;
    json_array_foreach(data, i, it)
    {
        assert_string_equal(hq_api_jstr(it, "endpoint_id"), ep);
        assert_int_equal(json_integer_value(json_object_get(it, "status")), status);
        assert_int_equal(json_integer_value(json_object_get(it, "attempt")), 1);
        json_int_t at = json_integer_value(json_object_get(it, "at_ms"));
        assert_true(at > 0 && at <= prev);
        prev = at;
    }
    return doc;
}

static void problem_is(const char *path, const char *key, long status, const char *needle)
{
    json_t *doc = get_json(path, key, status);
    if (needle && !strstr(hq_api_jstr(doc, "detail"), needle))
        fail_msg("GET %s: detail '%s' lacks '%s'", path, hq_api_jstr(doc, "detail"), needle);
    json_decref(doc);
}

/* An old bucket in partition 0 with one record of ep (event evt_ra_old),
 * behind the worker's buckets (written while no worker runs: a worker unlinks
 * buckets it finds expired). */
static void old_bucket(const char *ep)
{
    char index[HQ_KEY_MAX], bucket[HQ_KEY_MAX];
    const char *base = W.tl.L.part[0].base;
    redisReply *t = hq_test_cmd(wenv_node(&W, 0), "TIME");
    long long start = (atoll(t->element[0]->str) - 3600) * 1000;
    freeReplyObject(t);
    char s[24];
    snprintf(s, sizeof(s), "%lld", start);
    assert_true(hq_key_attempt_index(base, index, sizeof(index)) >= 0);
    assert_true(hq_key_attempt_bucket(base, s, bucket, sizeof(bucket)) >= 0);
    char rec[512];
    snprintf(rec, sizeof(rec),
             "{\"endpoint_id\":\"%sx\",\"attempt\":1,\"at_ms\":%lld,\"status\":200}\n"
             "{\"endpoint_id\":\"%s\",\"attempt\":1,\"at_ms\":%lld,\"duration_ms\":3,"
             "\"status\":204,\"outcome\":\"delivered\",\"error\":\"\",\"response\":\"\"}",
             ep, start + 1, ep, start + 1);
    freeReplyObject(hq_test_cmd(wenv_node(&W, 0), "ZADD %s %s %s", index, s, s));
    freeReplyObject(hq_test_cmd(wenv_node(&W, 0), "HSET %s evt_ra_old %s", bucket, rec));
}

static void test_recent_attempts_of_one_endpoint_newest_first(void **state)
{
    (void)state;
    struct hq_endpoint ok, bad;
    char url[512];
    snprintf(url, sizeof(url), "%s/ok", W.rcv.url);
    wenv_endpoint_fill(url, NULL, NULL, 1, &ok);
    snprintf(ok.tenant, sizeof(ok.tenant), "acme");
    wenv_endpoint_create(&W, &ok);
    wenv_endpoint_at(&W, "/s/500", NULL, 1, &bad);
    hq_api_env_start(&A, wenv_url(&W), NULL);
    char key[128], acme[128], other[128];
    hq_api_env_key(wenv_url(&W), "read", NULL, key, sizeof(key));
    hq_api_env_key(wenv_url(&W), "read", "acme", acme, sizeof(acme));
    hq_api_env_key(wenv_url(&W), "read", "other", other, sizeof(other));

    /* Before any attempt: an empty, complete answer. */
    json_t *doc = recent(ok.id, 0, key, 204);
    assert_int_equal(json_array_size(json_object_get(doc, "data")), 0);
    assert_true(json_is_true(json_object_get(doc, "complete")));
    json_decref(doc);

    pid_t wk = wenv_worker(&W, NULL, NULL);
    const char *ids[] = {"evt_ra_1", "evt_ra_2", "evt_ra_3", "evt_ra_4", "evt_ra_5"};
    for (int i = 0; i < 5; i++) {
        if (i == 4) { /* the last after the others are recorded: strictly the newest */
            for (int k = 0; k < 4; k++)
                wenv_wait(&W, has_records, &(struct recorded){ids[k], 2}, 15000,
                          "both endpoints' records of the first events");
            wenv_next_ms(&W);
        }
        wenv_produce(&W, "order.created", "{}", ids[i], NULL, NULL, 0);
    }
    wenv_wait(&W, has_records, &(struct recorded){ids[4], 2}, 15000,
              "both endpoints' records of the last event");

    doc = recent(ok.id, 0, key, 204);
    json_t *data = json_object_get(doc, "data");
    assert_int_equal(json_array_size(data), 5);
    assert_string_equal(hq_api_jstr(json_array_get(data, 0), "event_id"), "evt_ra_5");
    assert_true(json_is_true(json_object_get(doc, "complete")));
    assert_true(json_integer_value(json_object_get(doc, "scanned")) >= 5);
    json_decref(doc);
    doc = recent(bad.id, 0, key, 500);
    data = json_object_get(doc, "data");
    assert_int_equal(json_array_size(data), 5);
    assert_string_equal(hq_api_jstr(json_array_get(data, 0), "event_id"), "evt_ra_5");
    json_decref(doc);
    doc = recent(ok.id, 2, key, 204);
    data = json_object_get(doc, "data");
    assert_int_equal(json_array_size(data), 2);
    assert_string_equal(hq_api_jstr(json_array_get(data, 0), "event_id"), "evt_ra_5");
    json_decref(doc);
    doc = recent(ok.id, 1, acme, 204); /* the endpoint's tenant */
    assert_int_equal(json_array_size(json_object_get(doc, "data")), 1);
    json_decref(doc);

    char path[256];
    snprintf(path, sizeof(path), "/v1/endpoints/%s/attempts", ok.id);
    problem_is(path, other, 404, ok.id); /* another tenant's: as if absent */
    problem_is(path, NULL, 401, NULL);
    problem_is("/v1/endpoints/ep_nosuch/attempts", key, 404, "ep_nosuch");
    const char *bad_limits[] = {"0", "101", "x", "-1", ""};
    for (size_t i = 0; i < sizeof(bad_limits) / sizeof(*bad_limits); i++) {
        snprintf(path, sizeof(path), "/v1/endpoints/%s/attempts?limit=%s", ok.id, bad_limits[i]);
        problem_is(path, key, 400, "limit");
    }
    snprintf(path, sizeof(path), "/v1/endpoints/%s/attempts?limit=100", ok.id);
    json_decref(get_json(path, key, 200));

    /* An older bucket: read after the newer one, its record last; an endpoint
     * id with ok's as a prefix is another endpoint. A budget read up by the
     * newer bucket leaves it unread and says so. */
    assert_int_equal(hq_test_kill_wait(wk, SIGTERM, 20000), 0);
    old_bucket(ok.id);
    doc = recent(ok.id, 0, key, 204);
    data = json_object_get(doc, "data");
    assert_int_equal(json_array_size(data), 6);
    assert_string_equal(hq_api_jstr(json_array_get(data, 5), "event_id"), "evt_ra_old");
    assert_true(json_is_true(json_object_get(doc, "complete")));
    json_decref(doc);
    struct hq_err err = {0};
    struct hq_redis_conn *c = hq_redis_conn_open(wenv_url(&W), 2000, &err);
    assert_non_null(c);
    struct hq_recent got;
    assert_int_equal(hq_attempts_recent(c, &W.tl.L, ok.id, 20, 1, &got, &err), 0);
    assert_int_equal(got.complete, 0);
    assert_true(json_array_size(got.items) <= 5); /* evt_ra_old's bucket left unread */
    if (W.tl.L.nparts == 1) { /* one bucket (one HSCAN reply) before the old one */
        assert_int_equal(json_array_size(got.items), 5);
        assert_string_equal(hq_api_jstr(json_array_get(got.items, 0), "event_id"), "evt_ra_5");
        json_decref(got.items);
        /* limit records from the newer bucket: the older one is not read, yet complete. */
        assert_int_equal(hq_attempts_recent(c, &W.tl.L, ok.id, 5, 1, &got, &err), 0);
        assert_int_equal(got.complete, 1);
        assert_int_equal(json_array_size(got.items), 5);
    }
    json_decref(got.items);
    hq_redis_conn_free(c);

    hq_api_env_stop(&A);
    hq_endpoint_free(&ok);
    hq_endpoint_free(&bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        WENV_TEST(test_recent_attempts_of_one_endpoint_newest_first, &W),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
