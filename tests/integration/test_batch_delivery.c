/* Batched delivery (docs/batching.md) against a real redis-server, a real
 * worker and a loopback receiver: a batching endpoint gets its events as JSON
 * arrays of at most max events and about bytes, after at most wait; each
 * request is signed once over the whole body with the batch's id as
 * webhook-id; every member's outcome is recorded (with the batch's id); a
 * failed batch leaves one retry or one dead letter per event, and a replayed
 * dead letter is delivered alone. Bad --batch values change nothing.
 *
 * Runs in every layout (HQ_TEST_LAYOUT, tests/CMakeLists.txt): an event goes
 * to its id's partition, and a worker batches an endpoint's events whatever
 * partition they were read from, so what is checked per stream (order, dead
 * letters) is checked per partition; at P = 1 that is the one stream. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "common/attempts.h"
#include "common/batch.h"
#include "common/endpoint_store.h"
#include "common/redis_conn.h"

#include "tests/harness/worker_env.h"

static struct wenv W;

/* Predicate: "<cmd> <key>" summed over partitions (wenv_sum) is want. */
struct sum_arg {
    const char *cmd;
    hq_tl_key_fn key;
    long long want;
};

static int sum_is(void *arg)
{
    const struct sum_arg *a = arg;
    return wenv_sum(&W, a->cmd, a->key) == a->want;
}

/* A dead letter found by its event_id: its partition and entry id. */
struct dead_ref {
    unsigned part;
    char id[64];
};

/* Field f of stream entry el ("" when absent) into out. */
static void entry_field(const redisReply *el, const char *f, char *out, size_t n)
{
    out[0] = '\0';
    const redisReply *kv = el->element[1];
    for (size_t j = 0; j + 1 < kv->elements; j += 2)
        if (strcmp(kv->element[j]->str, f) == 0)
            snprintf(out, n, "%.*s", (int)kv->element[j + 1]->len, kv->element[j + 1]->str);
}

/* XRANGE of partition part's dead-letter stream (caller frees). */
static redisReply *dead_range(unsigned part)
{
    char key[HQ_KEY_MAX];
    assert_true(hq_key_dead(hq_tl_base(&W.tl, "hookq", part), key, sizeof(key)) >= 0);
    redisReply *r = hq_test_cmd(wenv_node(&W, part), "XRANGE %s - +", key);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    return r;
}

/* The dead letters are exactly ids[0..n-1], one each, and in each partition's
 * stream in that order (a batch's order: batch_order). */
static void assert_dead_letters(const char *const *ids, int n)
{
    int seen[16] = {0};
    assert_true(n <= 16);
    long total = 0;
    for (unsigned p = 0; p < hq_tl_nparts(&W.tl); p++) {
        redisReply *r = dead_range(p);
        int prev = -1;
        for (size_t i = 0; i < r->elements; i++) {
            char ev[128];
            entry_field(r->element[i], "event_id", ev, sizeof(ev));
            int k = 0;
            while (k < n && strcmp(ids[k], ev) != 0)
                k++;
            if (k == n)
                fail_msg("unexpected dead letter '%s'", ev);
            assert_true(k > prev);
            prev = k;
            seen[k]++;
            total++;
        }
        freeReplyObject(r);
    }
    assert_int_equal(total, n);
    for (int k = 0; k < n; k++)
        assert_int_equal(seen[k], 1);
}

/* The element ids of request q (a batch of the events produced[0..n-1]) in
 * its order into order[0..n-1], asserting it holds each once and the events
 * of one partition in the order produced (stream order; at P = 1 order is
 * produced). */
static void batch_order(const struct hq_test_request *q, const char *const *produced, int n,
                        const char **order)
{
    json_t *arr = json_loadb(q->body, q->body_len, 0, NULL);
    assert_non_null(arr);
    assert_int_equal(json_array_size(arr), n);
    int prev[HQ_TL_CLUSTER_PARTS];
    for (int p = 0; p < HQ_TL_CLUSTER_PARTS; p++)
        prev[p] = -1;
    for (int i = 0; i < n; i++) {
        const char *id = json_string_value(json_object_get(json_array_get(arr, (size_t)i), "id"));
        assert_non_null(id);
        int k = 0;
        while (k < n && strcmp(produced[k], id) != 0)
            k++;
        if (k == n)
            fail_msg("batch element '%s' was not produced", id);
        unsigned part = hq_tl_part_for(&W.tl, id);
        assert_true(k > prev[part]);
        prev[part] = k;
        order[i] = produced[k];
    }
    json_decref(arr);
}

/* An event's attempt records, oldest first, as `hookq event show` and the
 * API read them (hq_attempts_lookup). A batch retried whole writes its
 * members' later records with its retry item, in the partition of the
 * batch's leader (worker/batch_retry.c), not in each member's own: at P > 1
 * the lookup must merge partitions to show them all. */
struct recs {
    size_t elements;
    char rec[8][4096];
};

static void member_attempts(const char *id, struct recs *out)
{
    struct hq_err err = {0};
    struct hq_redis_conn *c = hq_redis_conn_open(wenv_url(&W), 2000, &err);
    if (!c)
        fail_msg("connecting to %s: %s", wenv_url(&W), err.msg);
    redisReply *r = hq_attempts_lookup(c, &W.tl.L, id, &err);
    if (!r)
        fail_msg("reading attempt records of %s: %s", id, err.msg);
    out->elements = 0;
    for (size_t i = 0; i < r->elements; i++) {
        assert_true(out->elements < 8);
        snprintf(out->rec[out->elements++], sizeof(out->rec[0]), "%s", r->element[i]->str);
    }
    freeReplyObject(r);
    hq_redis_conn_free(c);
}

/* Where event_id's one dead letter is, whichever partition holds it. */
static struct dead_ref find_dead(const char *event_id)
{
    struct dead_ref d = {0};
    int found = 0;
    for (unsigned p = 0; p < hq_tl_nparts(&W.tl); p++) {
        redisReply *r = dead_range(p);
        for (size_t i = 0; i < r->elements; i++) {
            char ev[128];
            entry_field(r->element[i], "event_id", ev, sizeof(ev));
            if (strcmp(ev, event_id) == 0) {
                d.part = p;
                snprintf(d.id, sizeof(d.id), "%s", r->element[i]->element[0]->str);
                found++;
            }
        }
        freeReplyObject(r);
    }
    if (found != 1)
        fail_msg("%d dead letters of %s", found, event_id);
    return d;
}

/* Fails unless field f of event_id's dead letter is want. */
static void dead_field_is(const char *event_id, const char *f, const char *want)
{
    struct dead_ref d = find_dead(event_id);
    char key[HQ_KEY_MAX], v[4096];
    assert_true(hq_key_dead(hq_tl_base(&W.tl, "hookq", d.part), key, sizeof(key)) >= 0);
    redisReply *r = hq_test_cmd(wenv_node(&W, d.part), "XRANGE %s %s %s", key, d.id, d.id);
    assert_int_equal(r->elements, 1);
    entry_field(r->element[0], f, v, sizeof(v));
    freeReplyObject(r);
    if (strcmp(v, want) != 0)
        fail_msg("dead letter of %s: %s is '%s', not '%s'", event_id, f, v, want);
}

static void stop_worker(pid_t pid)
{
    int st = hq_test_kill_wait(pid, SIGTERM, 20000);
    if (st != 0)
        wenv_dump_log(&W);
    assert_int_equal(st, 0);
}

/* An endpoint at <receiver><path> batching with spec ("max=10,wait=1s");
 * base_ms > 0: its backoff base (retries soon). */
static void batch_endpoint_backoff(const char *path, const char *spec, int max_attempts,
                                   long long base_ms, struct hq_endpoint *e)
{
    char url[128];
    snprintf(url, sizeof(url), "%s%s", W.rcv.url, path);
    wenv_endpoint_fill(url, NULL, NULL, max_attempts, e);
    if (base_ms > 0)
        e->backoff_base_ms = base_ms;
    struct hq_err err = {0};
    if (hq_batch_parse(spec, &e->batch, &err) != 0)
        fail_msg("%s", err.msg);
    wenv_endpoint_create(&W, e);
}

static void batch_endpoint(const char *path, const char *spec, int max_attempts,
                           struct hq_endpoint *e)
{
    batch_endpoint_backoff(path, spec, max_attempts, 0, e);
}

/* n events to ep: ids <prefix>0.., payloads {"i":0}.. */
static void produce_n(const struct hq_endpoint *ep, const char *prefix, int n)
{
    for (int i = 0; i < n; i++) {
        char id[32], body[32];
        snprintf(id, sizeof(id), "%s%d", prefix, i);
        snprintf(body, sizeof(body), "{\"i\":%d}", i);
        wenv_produce(&W, "t.x", body, id, ep->id, NULL, 0);
    }
}

/* Asserts sig holds the Standard Webhooks v1 signature of (wid, ts, body) by
 * secret as an independent signer computes it: Python's hmac, hashlib and
 * base64 (as tests/data/standard-webhooks/gen_vectors.py), never hookq's code. */
static void assert_signed_independently(const char *secret, const char *wid, const char *ts,
                                        const char *body, size_t n, const char *sig)
{
    char path[] = "/tmp/hq_batch_body.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, body, n), (ssize_t)n);
    close(fd);
    char cmd[1024], got[128] = "";
    snprintf(
        cmd, sizeof(cmd),
        "python3 -c 'import base64,hashlib,hmac,sys;"
        "k=base64.b64decode(sys.argv[1].split(\"_\")[1]);"
        "m=sys.argv[2].encode()+b\".\"+sys.argv[3].encode()+b\".\"+open(sys.argv[4],\"rb\").read();"
        "print(\"v1,\"+base64.b64encode(hmac.new(k,m,hashlib.sha256).digest()).decode())' "
        "'%s' '%s' '%s' '%s'",
        secret, wid, ts, path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    if (!fgets(got, sizeof(got), p))
        got[0] = '\0';
    pclose(p);
    unlink(path);
    got[strcspn(got, "\n")] = '\0';
    if (strlen(got) != HQ_SIG_V1_LEN || !strstr(sig, got))
        fail_msg("independent signature '%s' not in '%s'", got, sig);
}

/* Checks request q is one signed batch of ep: a JSON array whose webhook-id is
 * the batch id of (ep, first element's id, n), verifying with both keys over
 * the whole body. Returns the array (caller json_decref's). */
static json_t *check_batch(const struct hq_test_request *q, const struct hq_endpoint *ep)
{
    json_error_t je;
    json_t *arr = json_loadb(q->body, q->body_len, 0, &je);
    if (!arr || !json_is_array(arr))
        fail_msg("batch body is not a JSON array: %s: %.200s", je.text, q->body);
    size_t n = json_array_size(arr);
    assert_true(n >= 1);
    char wid[256], ts[32], sig[512];
    assert_int_equal(hq_test_request_header(q, "webhook-id", wid, sizeof(wid)), 0);
    assert_int_equal(hq_test_request_header(q, "webhook-timestamp", ts, sizeof(ts)), 0);
    assert_int_equal(hq_test_request_header(q, "webhook-signature", sig, sizeof(sig)), 0);
    char want[HQ_BATCH_ID_MAX];
    hq_batch_id(ep->id, json_string_value(json_object_get(json_array_get(arr, 0), "id")), (int)n,
                want);
    assert_string_equal(wid, want);
    const char *keys[2] = {ep->key1, ep->key2};
    for (int i = 0; i < 2; i++) {
        struct hq_sign_key k;
        struct hq_err err = {0};
        assert_int_equal(hq_sign_key_decode(keys[i], &k, &err), 0);
        assert_int_equal(hq_sign_verify(&k, wid, atoll(ts), q->body, q->body_len, sig,
                                        hq_test_now_ms() / 1000, 300, &err),
                         0);
    }
    assert_signed_independently(ep->key1, wid, ts, q->body, q->body_len, sig);
    for (size_t i = 0; i < n; i++) {
        json_t *el = json_array_get(arr, i);
        assert_true(json_is_string(json_object_get(el, "id")));
        assert_true(json_is_string(json_object_get(el, "type")));
        assert_true(json_is_integer(json_object_get(el, "timestamp")));
        assert_true(json_object_get(el, "payload") || json_object_get(el, "payload_b64"));
    }
    return arr;
}

/* 25 events, max=10, wait=1s: two full batches at once, the last 5 after the
 * wait (not before); every event once, in stream order within each batch
 * (the events of one partition: a batch may hold several's); a payload that
 * is not JSON travels as payload_b64. */
static void test_batches_hold_max_events_and_wait_then_send_signed(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    batch_endpoint("/b", "max=10,wait=1s", 0, &ep);
    pid_t pid = wenv_worker(&W, NULL, NULL);
    int64_t t_prod[25]; /* when each was produced */
    for (int i = 0; i < 25; i++) {
        char id[32], body[64];
        snprintf(id, sizeof(id), "evt_%02d", i);
        if (i == 7)
            snprintf(body, sizeof(body), "not json %d", i);
        else
            snprintf(body, sizeof(body), "{\"n\":%d}", i);
        t_prod[i] = hq_test_now_ms();
        wenv_produce(&W, "order.created", body, id, ep.id, NULL, 0);
    }
    struct count_arg ca = {&W.rcv, "/b", 3};
    wenv_wait(&W, received_at_least, &ca, 10000, "three batches");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the acks");
    assert_int_equal(hq_test_receiver_count(&W.rcv), 3);
    int seen[25] = {0}, sizes[3];
    for (int r = 0; r < 3; r++) {
        const struct hq_test_request *q = &W.rcv.reqs[r];
        json_t *arr = check_batch(q, &ep);
        sizes[r] = (int)json_array_size(arr);
        int prev[HQ_TL_CLUSTER_PARTS];
        for (int p = 0; p < HQ_TL_CLUSTER_PARTS; p++)
            prev[p] = -1;
        for (size_t i = 0; i < json_array_size(arr); i++) {
            json_t *el = json_array_get(arr, i);
            const char *id = json_string_value(json_object_get(el, "id"));
            int k = atoi(id + 4);
            unsigned part = hq_tl_part_for(&W.tl, id);
            assert_true(k > prev[part]); /* stream order within a batch */
            prev[part] = k;
            seen[k]++;
            assert_string_equal(json_string_value(json_object_get(el, "type")), "order.created");
            if (k == 7) {
                assert_null(json_object_get(el, "payload"));
                assert_string_equal(json_string_value(json_object_get(el, "payload_b64")),
                                    "bm90IGpzb24gNw==");
            } else {
                assert_int_equal(
                    json_integer_value(json_object_get(json_object_get(el, "payload"), "n")), k);
            }
        }
        json_decref(arr);
    }
    for (int k = 0; k < 25; k++)
        assert_int_equal(seen[k], 1);
    assert_int_equal(sizes[0], 10);
    assert_int_equal(sizes[1], 10);
    assert_int_equal(sizes[2], 5);
    /* The partial batch waited its second (its timer started when its first
     * element was read, after it was produced). */
    json_t *last = check_batch(&W.rcv.reqs[2], &ep);
    int first = atoi(json_string_value(json_object_get(json_array_get(last, 0), "id")) + 4);
    assert_true(W.rcv.reqs[2].at_ms - t_prod[first] >= 1000 - 2);
    /* Each member's attempt record names the batch (its third: evt_22 at P = 1). */
    char wid[256], member[32];
    assert_int_equal(hq_test_request_header(&W.rcv.reqs[2], "webhook-id", wid, sizeof(wid)), 0);
    snprintf(member, sizeof(member), "%s",
             json_string_value(json_object_get(json_array_get(last, 2), "id")));
    json_decref(last);
    redisReply *r = wenv_attempts(&W, member);
    assert_int_equal(r->elements, 1);
    assert_non_null(strstr(r->element[0]->str, "\"outcome\":\"delivered\""));
    assert_non_null(strstr(r->element[0]->str, wid));
    freeReplyObject(r);
    stop_worker(pid);
    wenv_assert_layout(&W, "batches");
    hq_endpoint_free(&ep);
}

/* bytes=4k with ~1 KiB events and max=100: each body stays within 4 KiB and
 * still holds several events (a long wait: only bytes closes them, but for
 * the last). */
static void test_batches_respect_bytes(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    batch_endpoint("/b", "max=100,wait=2s,bytes=4k", 0, &ep);
    pid_t pid = wenv_worker(&W, NULL, NULL);
    char body[1100];
    memset(body, 'x', sizeof(body));
    memcpy(body, "{\"pad\":\"", 8);
    strcpy(body + 1000, "\"}");
    for (int i = 0; i < 20; i++) {
        char id[32];
        snprintf(id, sizeof(id), "evt_%02d", i);
        wenv_produce(&W, "t.x", body, id, ep.id, NULL, 0);
    }
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the acks");
    size_t events = 0, n = hq_test_receiver_count(&W.rcv);
    for (size_t r = 0; r < n; r++) {
        const struct hq_test_request *q = &W.rcv.reqs[r];
        assert_true(q->body_len <= 4096);
        json_t *arr = check_batch(q, &ep);
        assert_true(json_array_size(arr) >= 2);
        events += json_array_size(arr);
        json_decref(arr);
    }
    assert_int_equal(events, 20);
    stop_worker(pid);
    hq_endpoint_free(&ep);
}

/* The endpoint is fixed (its URL now <receiver>/ok) and the dead letter of
 * event id is replayed (by its partition's id, p<i>/<entry>, when tagged): it comes alone, id as
 * webhook-id and body its payload (len bytes), signed. A new worker (no cached endpoint to wait
 * out), stopped at the end; the breaker is forgotten first, so only the
 * replay's own marking keeps it out of a batch. */
static void replay_alone(const struct hq_endpoint *ep, const char *id, const char *body, size_t len)
{
    char url[128], out[4096], err[4096];
    snprintf(url, sizeof(url), "%s/ok", W.rcv.url);
    assert_int_equal(wenv_cli(&W, out, sizeof(out), err, sizeof(err), "endpoint", "update", ep->id,
                              "--url", url, NULL),
                     0);
    struct dead_ref d = find_dead(id);
    char did[80];
    if (hq_tl_nparts(&W.tl) > 1)
        snprintf(did, sizeof(did), "p%u/%s", d.part, d.id);
    else
        snprintf(did, sizeof(did), "%s", d.id);
    assert_int_equal(wenv_cli(&W, out, sizeof(out), err, sizeof(err), "dlq", "replay", did, NULL),
                     0);
    char cb[HQ_KEY_MAX];
    unsigned home = hq_tl_part_for(&W.tl, ep->id);
    assert_true(hq_key_breaker(hq_tl_base(&W.tl, "hookq", home), ep->id, cb, sizeof(cb)) > 0);
    freeReplyObject(hq_test_cmd(wenv_node(&W, home), "DEL %s", cb));
    size_t before = hq_test_receiver_count(&W.rcv);
    pid_t pid = wenv_worker(&W, NULL, NULL);
    struct count_arg ca = {&W.rcv, "/ok", 1};
    wenv_wait(&W, received_at_least, &ca, 10000, "the replay");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the replay's ack");
    const struct hq_test_request *q = &W.rcv.reqs[before];
    assert_int_equal(q->body_len, len);
    assert_memory_equal(q->body, body, len);
    char v[256];
    assert_int_equal(hq_test_request_header(q, "webhook-id", v, sizeof(v)), 0);
    assert_string_equal(v, id);
    struct hq_sign_key k;
    struct hq_err kerr = {0};
    assert_int_equal(hq_sign_key_decode(ep->key1, &k, &kerr), 0);
    wenv_assert_signed(q, &k, NULL, 0);
    assert_int_equal(hq_test_receiver_count(&W.rcv), before + 1);
    stop_worker(pid);
}

/* A batch that fails: each member is retried on its own (one retry item per
 * event, the batch's id in its attempt record); at the last attempt each gets
 * its own dead letter with batch_id, and a replayed one arrives alone. */
static void test_failed_batch_splits_per_event_and_replay_goes_alone(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    batch_endpoint("/s/503", "max=5,wait=2s", 1, &ep);
    pid_t pid = wenv_worker(&W, NULL, NULL);
    produce_n(&ep, "evt_", 5);
    struct sum_arg sa = {"XLEN", hq_key_dead, 5};
    wenv_wait(&W, sum_is, &sa, 10000, "five dead letters");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the acks");
    assert_int_equal(hq_test_receiver_count(&W.rcv), 1); /* one request for the five */
    char wid[256];
    assert_int_equal(hq_test_request_header(&W.rcv.reqs[0], "webhook-id", wid, sizeof(wid)), 0);
    assert_memory_equal(wid, "bat_", 4);
    const char *produced[] = {"evt_0", "evt_1", "evt_2", "evt_3", "evt_4"}, *ids[5];
    batch_order(&W.rcv.reqs[0], produced, 5, ids);
    assert_dead_letters(ids, 5);
    for (int i = 0; i < 5; i++) {
        dead_field_is(ids[i], "batch_id", wid);
        dead_field_is(ids[i], "reason", "exhausted");
    }
    stop_worker(pid);
    replay_alone(&ep, "evt_3", "{\"i\":3}", 7);
    hq_endpoint_free(&ep);
}

/* With attempts left, a failed batch leaves one retry: the batch itself
 * (its id, its body, its members), and each member's attempt record. */
static void test_failed_batch_leaves_one_retry_for_the_batch(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    batch_endpoint("/s/500", "max=4,wait=2s", 3, &ep);
    pid_t pid = wenv_worker(&W, NULL, NULL);
    produce_n(&ep, "evt_r", 4);
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the acks");
    assert_int_equal(wenv_sum(&W, "ZCARD", hq_key_retry), 1);
    assert_int_equal(hq_test_receiver_count(&W.rcv), 1);
    char wid[256], member[512];
    assert_int_equal(hq_test_request_header(&W.rcv.reqs[0], "webhook-id", wid, sizeof(wid)), 0);
    snprintf(member, sizeof(member), "%s/%s/1", ep.id, wid);
    for (unsigned p = 0; p < hq_tl_nparts(&W.tl); p++) { /* the one retry, where it is */
        char key[HQ_KEY_MAX];
        assert_true(hq_key_retry(hq_tl_base(&W.tl, "hookq", p), key, sizeof(key)) >= 0);
        redisReply *z = hq_test_cmd(wenv_node(&W, p), "ZRANGE %s 0 -1", key);
        if (z->elements == 1)
            assert_string_equal(z->element[0]->str, member);
        freeReplyObject(z);
    }
    for (int i = 0; i < 4; i++) {
        char id[32];
        snprintf(id, sizeof(id), "evt_r%d", i);
        redisReply *r = wenv_attempts(&W, id);
        assert_int_equal(r->elements, 1);
        assert_non_null(strstr(r->element[0]->str, "\"outcome\":\"retry\""));
        assert_non_null(strstr(r->element[0]->str, wid));
        freeReplyObject(r);
    }
    stop_worker(pid);
    hq_endpoint_free(&ep);
}

static int received_3(void *arg)
{
    (void)arg;
    return hq_test_receiver_count(&W.rcv) >= 3;
}

/* The receiver answers 500 until told otherwise (default_status). */
static void receiver_answers(int status)
{
    pthread_mutex_lock(&W.rcv.mu);
    W.rcv.default_status = status;
    pthread_mutex_unlock(&W.rcv.mu);
}

/* Requests 0..n-1 all carry the same batch: one webhook-id, one body, each
 * signed over it (check_batch); returns the id in wid. */
static void assert_same_batch(const struct hq_endpoint *ep, size_t n, char *wid, size_t wn)
{
    assert_int_equal(hq_test_receiver_count(&W.rcv), n);
    for (size_t i = 0; i < n; i++) {
        const struct hq_test_request *q = &W.rcv.reqs[i];
        json_decref(check_batch(q, ep));
        char v[256];
        assert_int_equal(hq_test_request_header(q, "webhook-id", v, sizeof(v)), 0);
        if (i == 0)
            snprintf(wid, wn, "%s", v);
        assert_string_equal(v, wid);
        assert_int_equal(q->body_len, W.rcv.reqs[0].body_len);
        assert_memory_equal(q->body, W.rcv.reqs[0].body, q->body_len);
    }
}

/* A batch failing twice, then answered 2xx: sent three times whole, the same
 * webhook-id and body each time (re-signed), by the scheduler's retries; each
 * member's attempts are recorded (retry, retry, delivered). */
static void test_failed_batch_is_retried_whole_with_its_id(void **state)
{
    (void)state;
    receiver_answers(500);
    struct hq_endpoint ep;
    batch_endpoint_backoff("/b", "max=4,wait=2s", 5, 300, &ep);
    pid_t pid = wenv_worker(&W, NULL, NULL);
    pid_t sched = wenv_scheduler(&W, NULL);
    produce_n(&ep, "evt_w", 4);
    struct count_arg ca = {&W.rcv, "/b", 2};
    wenv_wait(&W, received_at_least, &ca, 15000, "the batch and its first retry");
    receiver_answers(204);
    wenv_wait(&W, received_3, NULL, 15000, "the second retry");
    struct sum_arg sa = {"ZCARD", hq_key_retry, 0};
    wenv_wait(&W, sum_is, &sa, 10000, "no retry left");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the acks");
    char wid[256];
    assert_same_batch(&ep, 3, wid, sizeof(wid));
    json_decref(check_batch(&W.rcv.reqs[2], &ep));
    const char *produced[] = {"evt_w0", "evt_w1", "evt_w2", "evt_w3"}, *order[4];
    batch_order(&W.rcv.reqs[2], produced, 4, order); /* at P = 1: evt_w0..3 */
    for (int i = 0; i < 4; i++) {
        const char *id = order[i];
        struct recs r;
        member_attempts(id, &r);
        assert_int_equal(r.elements, 3);
        assert_non_null(strstr(r.rec[0], "\"outcome\":\"retry\""));
        assert_non_null(strstr(r.rec[1], "\"attempt\":2"));
        assert_non_null(strstr(r.rec[2], "\"outcome\":\"delivered\""));
        assert_non_null(strstr(r.rec[2], wid));
    }
    assert_int_equal(wenv_sum(&W, "XLEN", hq_key_dead), 0);
    stop_worker(sched);
    stop_worker(pid);
    hq_endpoint_free(&ep);
}

/* A batch failing every time: retried whole until its attempts are spent,
 * then one dead letter per event (its own id, type and payload, a non-JSON
 * one as produced; batch_id the batch's). */
static void test_exhausted_batch_splits_into_dead_letters(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    batch_endpoint_backoff("/s/503", "max=3,wait=2s", 3, 200, &ep);
    pid_t pid = wenv_worker(&W, NULL, NULL);
    pid_t sched = wenv_scheduler(&W, NULL);
    wenv_produce(&W, "t.a", "{\"i\":0}", "evt_x0", ep.id, NULL, 0);
    wenv_produce(&W, "t.b", "not json \x01", "evt_x1", ep.id, NULL, 0);
    wenv_produce(&W, "t.c", "[1,2]", "evt_x2", ep.id, NULL, 0);
    struct sum_arg sa = {"XLEN", hq_key_dead, 3};
    wenv_wait(&W, sum_is, &sa, 20000, "three dead letters");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the acks");
    char wid[256];
    assert_same_batch(&ep, 3, wid, sizeof(wid));
    const char *ids[] = {"evt_x0", "evt_x1", "evt_x2"}, *types[] = {"t.a", "t.b", "t.c"};
    const char *payloads[] = {"{\"i\":0}", "not json \x01", "[1,2]"}, *order[3];
    batch_order(&W.rcv.reqs[0], ids, 3, order);
    assert_dead_letters(order, 3); /* in the batch's order (at P = 1: as produced) */
    for (int i = 0; i < 3; i++) {
        dead_field_is(ids[i], "type", types[i]);
        dead_field_is(ids[i], "payload", payloads[i]);
        dead_field_is(ids[i], "batch_id", wid);
        dead_field_is(ids[i], "reason", "exhausted");
        dead_field_is(ids[i], "attempts", "3");
        struct recs r;
        member_attempts(ids[i], &r);
        assert_int_equal(r.elements, 3);
        assert_non_null(strstr(r.rec[2], "\"outcome\":\"dead\""));
    }
    assert_int_equal(wenv_sum(&W, "ZCARD", hq_key_retry), 0);
    stop_worker(sched);
    stop_worker(pid);
    /* Each is replayable alone: the one that was not JSON (base64 in the
     * batch) comes back byte for byte. */
    replay_alone(&ep, "evt_x1", "not json \x01", 10);
    hq_endpoint_free(&ep);
}

/* The first request answered and the next one being answered now. */
static int second_in_flight(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&W.rcv.mu);
    int yes = W.rcv.nreqs == 1 && W.rcv.in_flight == 1;
    pthread_mutex_unlock(&W.rcv.mu);
    return yes;
}

/* A worker killed (-9) while it sends a batch's retry: the retry's entry
 * stays pending and another worker reclaims it and sends it whole (the same
 * id and body); every member is delivered. */
static void test_a_worker_killed_during_a_batch_retry_resends_it_whole(void **state)
{
    (void)state;
    receiver_answers(500);
    struct hq_endpoint ep;
    batch_endpoint_backoff("/delay/800/k", "max=3,wait=1s", 5, 300, &ep);
    const char *args[] = {"--timeout", "2s", "--claim-idle", "8s", NULL};
    pid_t a = wenv_worker(&W, args, NULL);
    pid_t sched = wenv_scheduler(&W, NULL);
    produce_n(&ep, "evt_q", 3);
    wenv_wait(&W, second_in_flight, NULL, 15000, "the batch's retry in flight");
    assert_int_equal(hq_test_kill_wait(a, SIGKILL, 5000), 128 + SIGKILL);
    receiver_answers(204);
    pid_t b = wenv_worker(&W, args, NULL);
    struct count_arg ca = {&W.rcv, "/delay", 3};
    wenv_wait(&W, received_at_least, &ca, 30000, "the reclaimed retry");
    struct sum_arg sa = {"XLEN", hq_key_retries, 0};
    wenv_wait(&W, sum_is, &sa, 30000, "the retry lane acked");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the acks");
    char wid[256];
    assert_same_batch(&ep, 3, wid, sizeof(wid));
    for (int i = 0; i < 3; i++) {
        char id[32];
        snprintf(id, sizeof(id), "evt_q%d", i);
        struct recs r;
        member_attempts(id, &r);
        assert_true(r.elements >= 2);
        assert_non_null(strstr(r.rec[r.elements - 1], "\"outcome\":\"delivered\""));
    }
    assert_int_equal(wenv_sum(&W, "ZCARD", hq_key_retry), 0);
    stop_worker(sched);
    stop_worker(b);
    hq_endpoint_free(&ep);
}

static int pending_is_10(void *arg)
{
    return wenv_pending(arg) == 10;
}

/* A worker killed (-9) while it collects a batch: the events stay pending,
 * another worker reclaims them after --claim-idle and delivers each. */
static void test_a_worker_killed_while_collecting_loses_nothing(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    batch_endpoint("/k", "max=100,wait=2s", 0, &ep);
    const char *args[] = {"--timeout", "1s", "--claim-idle", "7s", NULL};
    pid_t a = wenv_worker(&W, args, NULL);
    produce_n(&ep, "evt_k", 10);
    wenv_wait(&W, pending_is_10, &W, 10000, "the worker holding the ten");
    assert_int_equal(hq_test_kill_wait(a, SIGKILL, 5000), 128 + SIGKILL);
    assert_int_equal(hq_test_receiver_count(&W.rcv), 0); /* killed within the wait */
    pid_t b = wenv_worker(&W, args, NULL);
    struct count_arg ca = {&W.rcv, "/k", 1};
    wenv_wait(&W, received_at_least, &ca, 30000, "the reclaimed batch");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 30000, "the acks");
    int seen[10] = {0};
    for (size_t r = 0; r < hq_test_receiver_count(&W.rcv); r++) {
        json_t *arr = check_batch(&W.rcv.reqs[r], &ep);
        for (size_t i = 0; i < json_array_size(arr); i++)
            seen[atoi(json_string_value(json_object_get(json_array_get(arr, i), "id")) + 5)]++;
        json_decref(arr);
    }
    for (int i = 0; i < 10; i++)
        assert_int_equal(seen[i], 1);
    stop_worker(b);
    hq_endpoint_free(&ep);
}

/* `endpoint add|update --batch`: shown by show (text and --json); bad values
 * exit 2 with one line naming the field and change nothing; off clears. */
static void test_batch_flag_is_validated_shown_and_cleared(void **state)
{
    (void)state;
    char out[8192], err[4096], url[128];
    snprintf(url, sizeof(url), "%s/x", W.rcv.url);
    assert_int_equal(wenv_cli(&W, out, sizeof(out), err, sizeof(err), "endpoint", "add", "--name",
                              "b", "--url", url, "--batch", "max=50,wait=20ms", "--json", NULL),
                     0);
    json_error_t je;
    json_t *o = json_loads(out, 0, &je);
    assert_non_null(o);
    char id[80];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(o, "id")));
    json_t *b = json_object_get(o, "batch");
    assert_int_equal(json_integer_value(json_object_get(b, "max")), 50);
    assert_int_equal(json_integer_value(json_object_get(b, "wait_ms")), 20);
    assert_int_equal(json_integer_value(json_object_get(b, "bytes")), HQ_BATCH_BYTES_DEFAULT);
    json_decref(o);
    struct {
        const char *v, *msg;
    } bad[] = {{"max=1", "max=1 is out of range"},
               {"max=10,wait=10s", "wait=10000ms is out of range"},
               {"max=10,bytes=12", "bytes=12 is out of range"},
               {"max=10,speed=3", "'speed=3' is not max=N"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        assert_int_equal(wenv_cli(&W, out, sizeof(out), err, sizeof(err), "endpoint", "update", id,
                                  "--batch", bad[i].v, NULL),
                         2);
        if (!strstr(err, "--batch: ") || !strstr(err, bad[i].msg) ||
            strchr(err, '\n') != err + strlen(err) - 1)
            fail_msg("--batch %s: %s", bad[i].v, err);
        assert_int_equal(wenv_cli(&W, out, sizeof(out), err, sizeof(err), "endpoint", "add",
                                  "--name", "c", "--url", url, "--batch", bad[i].v, NULL),
                         2);
    }
    /* --batch with --ordered: accepted, both shown (docs/batching.md). */
    assert_int_equal(wenv_cli(&W, out, sizeof(out), err, sizeof(err), "endpoint", "add", "--name",
                              "c", "--url", url, "--ordered", "--batch", "max=10", "--json", NULL),
                     0);
    assert_non_null(strstr(out, "\"ordered\":true"));
    assert_non_null(strstr(out, "\"batch\":{\"max\":10,"));
    char eps[HQ_KEY_MAX];
    assert_true(hq_key_endpoints(hq_tl_reg(&W.tl, "hookq"), eps, sizeof(eps)) >= 0);
    assert_int_equal(hq_test_cmd_int(wenv_reg_node(&W), "ZCARD %s", eps), 2);
    assert_int_equal(wenv_cli(&W, out, sizeof(out), err, sizeof(err), "endpoint", "update", id,
                              "--ordered", NULL),
                     0);
    assert_int_equal(wenv_cli(&W, out, sizeof(out), err, sizeof(err), "endpoint", "show", id, NULL),
                     0);
    assert_non_null(strstr(out, "ordered:      block"));
    assert_non_null(strstr(out, "batch:        max=50,wait=20ms,bytes=1048576"));
    assert_int_equal(wenv_cli(&W, out, sizeof(out), err, sizeof(err), "endpoint", "update", id,
                              "--batch", "off", NULL),
                     0);
    assert_int_equal(wenv_cli(&W, out, sizeof(out), err, sizeof(err), "endpoint", "show", id, NULL),
                     0);
    assert_non_null(strstr(out, "batch:        off"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        WENV_TEST(test_batches_hold_max_events_and_wait_then_send_signed, &W),
        WENV_TEST(test_batches_respect_bytes, &W),
        WENV_TEST(test_failed_batch_splits_per_event_and_replay_goes_alone, &W),
        WENV_TEST(test_failed_batch_leaves_one_retry_for_the_batch, &W),
        WENV_TEST(test_failed_batch_is_retried_whole_with_its_id, &W),
        WENV_TEST(test_exhausted_batch_splits_into_dead_letters, &W),
        WENV_TEST(test_batch_flag_is_validated_shown_and_cleared, &W),
        WENV_TEST(test_a_worker_killed_while_collecting_loses_nothing, &W),
        WENV_TEST(test_a_worker_killed_during_a_batch_retry_resends_it_whole, &W),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
