/* The worker against a real redis-server and a real loopback receiver: what it
 * sends (byte-exact, signed with both keys), whom it sends to, and how every
 * failure class is recorded (retry, dead letter) before the entry is acked. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <msgpack.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/endpoint_store.h"

#include "tests/harness/worker_env.h"

static struct wenv W;

static void reset_env(void)
{
    freeReplyObject(hq_test_cmd(W.c, "FLUSHALL"));
    /* A fresh receiver per test keeps request indexes simple. */
    hq_test_receiver_stop(&W.rcv);
    hq_test_receiver_start(&W.rcv);
    if (truncate(W.log, 0) != 0) {
        /* no log yet */
    }
}

static int setup(void **state)
{
    (void)state;
    reset_env();
    return 0;
}

static pid_t start_worker(const char *const *extra)
{
    return wenv_worker(&W, extra, NULL);
}

static void stop_worker(pid_t pid)
{
    int st = hq_test_kill_wait(pid, SIGTERM, 20000);
    if (st != 0)
        wenv_dump_log(&W);
    assert_int_equal(st, 0);
}

/* Looks up key k in a msgpack map and copies it as a string (ints printed). */
static int map_get(const char *blob, size_t n, const char *k, char *out, size_t outn)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int found = -1;
    if (msgpack_unpack_next(&u, blob, n, NULL) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < u.data.via.map.size; i++) {
            msgpack_object_kv *kv = &u.data.via.map.ptr[i];
            if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen(k) &&
                memcmp(kv->key.via.str.ptr, k, kv->key.via.str.size) == 0) {
                if (kv->val.type == MSGPACK_OBJECT_STR)
                    snprintf(out, outn, "%.*s", (int)kv->val.via.str.size, kv->val.via.str.ptr);
                else if (kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                    snprintf(out, outn, "%llu", (unsigned long long)kv->val.via.u64);
                else
                    snprintf(out, outn, "?");
                found = 0;
            }
        }
    }
    msgpack_unpacked_destroy(&u);
    return found;
}

/* The retry data field k of the retry member for endpoint ep. */
static int retry_field(const char *ep, const char *k, char *out, size_t n)
{
    redisReply *r = hq_test_cmd(W.c, "HGETALL hookq:retry:data");
    int rc = -1;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        if (strncmp(r->element[i]->str, ep, strlen(ep)) == 0 &&
            r->element[i]->str[strlen(ep)] == '/')
            rc = map_get(r->element[i + 1]->str, r->element[i + 1]->len, k, out, n);
    }
    freeReplyObject(r);
    return rc;
}

static void test_delivers_signed_request_byte_exact(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    char url[128];
    snprintf(url, sizeof(url), "%s/hooks/a", W.rcv.url);
    wenv_endpoint(&W, url, "invoice.*", "X-Tenant: 42", 0, &ep);
    pid_t pid = start_worker(NULL);
    const char *body = "{\"amount\": 12.5, \"name\": \"J\\u00fcrgen\", \"nested\": {\"x\": [1,2]}}";
    int64_t before = hq_test_now_ms() / 1000;
    wenv_produce(&W, "invoice.paid", body, "msg_2Ab-c:d", NULL, NULL, 0);
    struct count_arg ca = {&W.rcv, "/hooks/a", 1};
    wenv_wait(&W, received_at_least, &ca, 10000, "the delivery");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the ack");

    const struct hq_test_request *q = &W.rcv.reqs[0];
    assert_string_equal(q->method, "POST");
    assert_string_equal(q->path, "/hooks/a");
    assert_int_equal(q->body_len, strlen(body));
    assert_memory_equal(q->body, body, strlen(body));
    char v[512];
    assert_int_equal(hq_test_request_header(q, "content-type", v, sizeof(v)), 0);
    assert_string_equal(v, "application/json");
    assert_int_equal(hq_test_request_header(q, "user-agent", v, sizeof(v)), 0);
    assert_true(strncmp(v, "hookq/", 6) == 0);
    assert_int_equal(hq_test_request_header(q, "x-tenant", v, sizeof(v)), 0);
    assert_string_equal(v, "42");
    assert_int_equal(hq_test_request_header(q, "webhook-id", v, sizeof(v)), 0);
    assert_string_equal(v, "msg_2Ab-c:d");
    assert_int_equal(hq_test_request_header(q, "webhook-timestamp", v, sizeof(v)), 0);
    long long ts = atoll(v);
    assert_true(ts >= before && ts <= hq_test_now_ms() / 1000 + 1);
    char sig[512];
    assert_int_equal(hq_test_request_header(q, "webhook-signature", sig, sizeof(sig)), 0);
    /* Two signatures, one per key, and each key alone verifies. */
    assert_non_null(strchr(sig, ' '));
    const char *keys[2] = {ep.key1, ep.key2};
    for (int i = 0; i < 2; i++) {
        struct hq_sign_key k;
        struct hq_err err = {0};
        assert_int_equal(hq_sign_key_decode(keys[i], &k, &err), 0);
        char one[HQ_SIG_V1_LEN + 1];
        hq_sign_v1(&k, "msg_2Ab-c:d", 11, ts, body, strlen(body), one);
        assert_non_null(strstr(sig, one));
        assert_int_equal(hq_sign_verify(&k, "msg_2Ab-c:d", ts, body, strlen(body), sig,
                                        hq_test_now_ms() / 1000, 300, &err),
                         0);
    }
    /* The attempt record says delivered. */
    redisReply *r = wenv_attempts(&W, "msg_2Ab-c:d");
    assert_int_equal(r->elements, 1);
    assert_non_null(strstr(r->element[0]->str, "\"outcome\":\"delivered\""));
    assert_non_null(strstr(r->element[0]->str, ep.id));
    freeReplyObject(r);
    /* ... in the one attempt bucket, which expires (the index names it). */
    redisReply *idx = hq_test_cmd(W.c, "ZRANGE hookq:attempts 0 -1");
    assert_int_equal(idx->elements, 1);
    assert_true(
        hq_test_cmd_int(W.c, "HEXISTS hookq:attempts:%s msg_2Ab-c:d", idx->element[0]->str));
    assert_true(hq_test_cmd_int(W.c, "PTTL hookq:attempts:%s", idx->element[0]->str) > 0);
    freeReplyObject(idx);
    stop_worker(pid);
    hq_endpoint_free(&ep);
}

/* Past 1 MiB libcurl would send "Expect: 100-continue" and hold the body
 * back until the receiver answers 100 (or a second passes); the worker turns
 * that off for the bodies where libcurl would do it (--max-payload allows up
 * to 64 MiB), and the body still arrives byte-exact. */
static void test_a_body_over_1_mib_is_sent_without_expect_100_continue(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    wenv_endpoint_at(&W, "/big", "big.*", 0, &ep);
    const char *extra[] = {"--max-payload", "4194304", NULL};
    pid_t pid = start_worker(extra);
    size_t n = 2 * 1024 * 1024 + 7;
    char *body = malloc(n + 1);
    assert_non_null(body);
    memset(body, 'x', n);
    body[0] = '"';
    body[n - 1] = '"';
    body[n] = '\0';
    wenv_produce(&W, "big.body", body, "evt_big", NULL, NULL, 0);
    struct count_arg ca = {&W.rcv, "/big", 1};
    wenv_wait(&W, received_at_least, &ca, 10000, "the delivery");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the ack");
    const struct hq_test_request *q = &W.rcv.reqs[0];
    assert_int_equal(q->body_len, n);
    assert_memory_equal(q->body, body, n);
    char v[64] = "";
    if (hq_test_request_header(q, "expect", v, sizeof(v)) == 0)
        assert_string_equal(v, ""); /* present only as libcurl's empty override */
    stop_worker(pid);
    free(body);
    hq_endpoint_free(&ep);
}

static void test_fans_out_only_to_enabled_subscribers(void **state)
{
    (void)state;
    struct hq_endpoint a, b, c, d;
    wenv_endpoint_at(&W, "/a", "invoice.*", 0, &a);
    wenv_endpoint_at(&W, "/b", "*", 0, &b);
    wenv_endpoint_at(&W, "/c", "user.created", 0, &c);
    wenv_endpoint_at(&W, "/d", "invoice.paid", 0, &d);
    freeReplyObject(hq_test_cmd(W.c, "HSET hookq:ep:%s enabled 0", d.id));
    pid_t pid = start_worker(NULL);
    for (int i = 0; i < 5; i++)
        wenv_produce(&W, "invoice.paid", "{}", NULL, NULL, NULL, 0);
    wenv_produce(&W, "user.created", "{}", NULL, NULL, NULL, 0);
    struct count_arg ca = {&W.rcv, NULL, 12};
    wenv_wait(&W, received_at_least, &ca, 10000, "12 deliveries");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the acks");
    assert_int_equal(hq_test_receiver_count_path(&W.rcv, "/a"), 5);
    assert_int_equal(hq_test_receiver_count_path(&W.rcv, "/b"), 6);
    assert_int_equal(hq_test_receiver_count_path(&W.rcv, "/c"), 1);
    assert_int_equal(hq_test_receiver_count_path(&W.rcv, "/d"), 0);
    /* Each event id is distinct per event and the same for every endpoint. */
    stop_worker(pid);
    hq_endpoint_free(&a);
    hq_endpoint_free(&b);
    hq_endpoint_free(&c);
    hq_endpoint_free(&d);
}

/* calls=N of one command in INFO commandstats (0 when never called). */
static long long command_calls(const char *cmd)
{
    redisReply *r = hq_test_cmd(W.c, "INFO commandstats");
    char needle[64];
    snprintf(needle, sizeof(needle), "cmdstat_%s:calls=", cmd);
    const char *p = strstr(r->str, needle);
    long long n = p ? atoll(p + strlen(needle)) : 0;
    freeReplyObject(r);
    return n;
}

static void test_a_batch_of_one_type_looks_up_subscribers_once(void **state)
{
    (void)state;
    struct hq_endpoint a, b;
    wenv_endpoint_at(&W, "/a", "order.*", 0, &a);
    wenv_endpoint_at(&W, "/b", "order.created", 0, &b);
    /* 200 events of one type waiting before the worker starts: one read takes
     * them all (capacity 512), and one batch needs one subscriber lookup and
     * one lookup per endpoint, not one per event. */
    for (int i = 0; i < 200; i++)
        wenv_produce(&W, "order.created", "{}", NULL, NULL, NULL, 0);
    freeReplyObject(hq_test_cmd(W.c, "CONFIG RESETSTAT"));
    const char *extra[] = {"--endpoint-cache", "60s", NULL};
    pid_t pid = start_worker(extra);
    struct count_arg ca = {&W.rcv, NULL, 400};
    wenv_wait(&W, received_at_least, &ca, 20000, "400 deliveries");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the acks");
    assert_int_equal(command_calls("xreadgroup") >= 1, 1);
    print_message("%lld XREADGROUP, %lld SUNION, %lld HGETALL for 200 events x 2 endpoints\n",
                  command_calls("xreadgroup"), command_calls("sunion"), command_calls("hgetall"));
    assert_int_equal(command_calls("sunion"), 1);
    assert_int_equal(command_calls("hgetall"), 2);
    stop_worker(pid);
    hq_endpoint_free(&a);
    hq_endpoint_free(&b);
}

static void test_every_failure_class_is_scheduled_for_retry(void **state)
{
    (void)state;
    struct hq_endpoint e500, e302, refused, hang, dns;
    char url[128];
    wenv_endpoint_at(&W, "/s/500", NULL, 0, &e500);
    wenv_endpoint_at(&W, "/redirect", NULL, 0, &e302);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", hq_test_free_port());
    wenv_endpoint(&W, url, NULL, NULL, 0, &refused);
    wenv_endpoint_at(&W, "/hang", NULL, 0, &hang);
    wenv_endpoint(&W, "http://no-such-host.invalid/", NULL, NULL, 0, &dns);
    const char *extra[] = {"--timeout", "1s", "--claim-idle", "40s", NULL};
    pid_t pid = start_worker(extra);
    int64_t t0 = hq_test_now_ms();
    wenv_produce(&W, "order.created", "{\"n\":1}", "evt_fail", NULL, NULL, 0);
    struct redis_arg ra = {&W, "ZCARD hookq:retry", 5};
    wenv_wait(&W, redis_int_is, &ra, 15000, "5 retries");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the ack");

    char v[256];
    assert_int_equal(retry_field(e500.id, "last_status", v, sizeof(v)), 0);
    assert_string_equal(v, "500");
    assert_int_equal(retry_field(e500.id, "last_error", v, sizeof(v)), 0);
    assert_string_equal(v, "http_status: 500");
    assert_int_equal(retry_field(e302.id, "last_status", v, sizeof(v)), 0);
    assert_string_equal(v, "302");
    assert_int_equal(hq_test_receiver_count_path(&W.rcv, "/s/204"), 0); /* not followed */
    assert_int_equal(retry_field(refused.id, "last_error", v, sizeof(v)), 0);
    assert_true(strncmp(v, "connect: ", 9) == 0);
    assert_int_equal(retry_field(hang.id, "last_error", v, sizeof(v)), 0);
    assert_true(strncmp(v, "timeout: ", 9) == 0);
    assert_int_equal(retry_field(dns.id, "last_error", v, sizeof(v)), 0);
    assert_true(strncmp(v, "dns: ", 5) == 0);
    /* Every retry carries the payload, the stable id, attempt 1, and a due time
     * from the backoff (30 s +-20 % by default). */
    const char *ids[] = {e500.id, e302.id, refused.id, hang.id, dns.id};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(retry_field(ids[i], "payload", v, sizeof(v)), 0);
        assert_string_equal(v, "{\"n\":1}");
        assert_int_equal(retry_field(ids[i], "id", v, sizeof(v)), 0);
        assert_string_equal(v, "evt_fail");
        assert_int_equal(retry_field(ids[i], "attempt", v, sizeof(v)), 0);
        assert_string_equal(v, "1");
        char member[256];
        snprintf(member, sizeof(member), "%s/evt_fail/1", ids[i]);
        redisReply *r = hq_test_cmd(W.c, "ZSCORE hookq:retry %s", member);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        long long due = atoll(r->str);
        freeReplyObject(r);
        assert_true(due >= t0 + 24000 && due <= hq_test_now_ms() + 36000);
    }
    assert_int_equal(hq_test_cmd_int(W.c, "XLEN hookq:dead"), 0);
    stop_worker(pid);
    hq_endpoint_free(&e500);
    hq_endpoint_free(&e302);
    hq_endpoint_free(&refused);
    hq_endpoint_free(&hang);
    hq_endpoint_free(&dns);
}

static void test_retry_after_pushes_the_next_attempt_later(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    wenv_endpoint_at(&W, "/retry-after/600", NULL, 0, &ep);
    const char *extra[] = {"--backoff-base", "1s", NULL};
    pid_t pid = start_worker(extra);
    int64_t t0 = hq_test_now_ms();
    wenv_produce(&W, "a.b", "{}", "evt_ra", NULL, NULL, 0);
    struct redis_arg ra = {&W, "ZCARD hookq:retry", 1};
    wenv_wait(&W, redis_int_is, &ra, 10000, "the retry");
    char member[256];
    snprintf(member, sizeof(member), "%s/evt_ra/1", ep.id);
    redisReply *r = hq_test_cmd(W.c, "ZSCORE hookq:retry %s", member);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    long long due = atoll(r->str);
    freeReplyObject(r);
    assert_true(due >= t0 + 599000);
    stop_worker(pid);
    hq_endpoint_free(&ep);
}

static void test_exhausted_delivery_is_dead_lettered_with_every_field(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    char url[128];
    snprintf(url, sizeof(url), "%s/s/503", W.rcv.url);
    wenv_endpoint(&W, url, NULL, NULL, 3, &ep);
    pid_t pid = start_worker(NULL);
    /* A retry re-enqueued by the scheduler: two failures already. */
    redisReply *r = hq_test_cmd(
        W.c,
        "XADD hookq:events * type t.x payload {\"p\":1} id evt_ex endpoint %s attempt 2 first_ms 1700000000000",
        ep.id);
    freeReplyObject(r);
    struct redis_arg ra = {&W, "XLEN hookq:dead", 1};
    wenv_wait(&W, redis_int_is, &ra, 10000, "the dead letter");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the ack");
    char v[256];
    stream_field_is(&W, "hookq:dead", 0, "reason", "exhausted");
    stream_field_is(&W, "hookq:dead", 0, "event_id", "evt_ex");
    stream_field_is(&W, "hookq:dead", 0, "type", "t.x");
    stream_field_is(&W, "hookq:dead", 0, "endpoint_id", ep.id);
    stream_field_is(&W, "hookq:dead", 0, "url", url);
    stream_field_is(&W, "hookq:dead", 0, "attempts", "3");
    stream_field_is(&W, "hookq:dead", 0, "last_status", "503");
    stream_field_is(&W, "hookq:dead", 0, "last_error", "http_status: 503");
    stream_field_is(&W, "hookq:dead", 0, "first_attempt_ms", "1700000000000");
    stream_field(&W, "hookq:dead", 0, "last_attempt_ms", v, sizeof(v));
    assert_true(atoll(v) > 1700000000000LL);
    stream_field_is(&W, "hookq:dead", 0, "payload", "{\"p\":1}");
    assert_int_equal(hq_test_cmd_int(W.c, "ZCARD hookq:retry"), 0);
    stop_worker(pid);
    hq_endpoint_free(&ep);
}

static void test_blocked_addresses_are_dead_lettered_not_retried(void **state)
{
    (void)state;
    struct hq_endpoint lit, name;
    char url[128];
    wenv_endpoint(&W, W.rcv.url, NULL, NULL, 0, &lit);
    snprintf(url, sizeof(url), "http://localhost:%d/", W.rcv.port);
    wenv_endpoint(&W, url, NULL, NULL, 0, &name);
    static const char *const env[] = {"HOOKQ_ALLOW_PRIVATE=0", NULL};
    pid_t pid = wenv_worker(&W, NULL, env);
    wenv_produce(&W, "a.b", "{}", "evt_blk", NULL, NULL, 0);
    struct redis_arg ra = {&W, "XLEN hookq:dead", 2};
    wenv_wait(&W, redis_int_is, &ra, 10000, "two dead letters");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the ack");
    char v[256];
    for (int i = 0; i < 2; i++) {
        stream_field(&W, "hookq:dead", i, "reason", v, sizeof(v));
        assert_true(strncmp(v, "blocked: ", 9) == 0);
        assert_non_null(strstr(v, "loopback"));
    }
    assert_int_equal(hq_test_receiver_count(&W.rcv), 0);
    assert_int_equal(hq_test_cmd_int(W.c, "ZCARD hookq:retry"), 0);
    stop_worker(pid);

    /* The allow-list lets the same endpoints through. */
    freeReplyObject(hq_test_cmd(W.c, "DEL hookq:dead"));
    static const char *const env2[] = {"HOOKQ_ALLOW_CIDRS=127.0.0.0/8,::1/128", NULL};
    pid = wenv_worker(&W, NULL, env2);
    wenv_produce(&W, "a.b", "{}", "evt_ok", NULL, NULL, 0);
    struct count_arg ca = {&W.rcv, NULL, 2};
    wenv_wait(&W, received_at_least, &ca, 10000, "two deliveries");
    assert_int_equal(hq_test_cmd_int(W.c, "XLEN hookq:dead"), 0);
    stop_worker(pid);
    hq_endpoint_free(&lit);
    hq_endpoint_free(&name);
}

static void test_invalid_entries_are_dead_lettered_with_raw_fields(void **state)
{
    (void)state;
    pid_t pid = start_worker(NULL);
    freeReplyObject(hq_test_cmd(W.c, "XADD hookq:events * type %s payload x", "bad type!"));
    freeReplyObject(hq_test_cmd(W.c, "XADD hookq:events * event %b", "\xc1\x00", (size_t)2));
    freeReplyObject(hq_test_cmd(W.c, "XADD hookq:events * color blue"));
    struct redis_arg ra = {&W, "XLEN hookq:dead", 3};
    wenv_wait(&W, redis_int_is, &ra, 10000, "three dead letters");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the acks");
    char v[256];
    for (int i = 0; i < 3; i++) {
        stream_field(&W, "hookq:dead", i, "reason", v, sizeof(v));
        assert_true(strncmp(v, "invalid: ", 9) == 0);
    }
    stream_field_is(&W, "hookq:dead", 0, "raw_type", "bad type!");
    stream_field_is(&W, "hookq:dead", 2, "raw_color", "blue");
    stop_worker(pid);
}

/* One event fanned out to six endpoints with two worker-wide slots: four
 * deliveries wait for a slot, and each gets one as another finishes (the
 * waiting list), none left to wait until the congestion check defers it to
 * the retry set. */
static void test_deliveries_waiting_for_a_worker_slot_each_get_one(void **state)
{
    (void)state;
    struct hq_endpoint ep[6];
    for (int i = 0; i < 6; i++) {
        char path[32];
        snprintf(path, sizeof(path), "/delay/150/e%d", i);
        wenv_endpoint_at(&W, path, "fan.*", 0, &ep[i]);
    }
    const char *extra[] = {"--concurrency", "2", "--endpoint-concurrency", "2", NULL};
    pid_t pid = start_worker(extra);
    wenv_produce(&W, "fan.out", "{}", NULL, NULL, NULL, 0);
    struct count_arg ca = {&W.rcv, NULL, 6};
    wenv_wait(&W, received_at_least, &ca, 10000, "six deliveries");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the ack");
    for (int i = 0; i < 6; i++) {
        char path[32];
        snprintf(path, sizeof(path), "/delay/150/e%d", i);
        assert_int_equal(hq_test_receiver_count_path(&W.rcv, path), 1);
    }
    assert_int_equal(hq_test_cmd_int(W.c, "ZCARD hookq:retry"), 0);
    stop_worker(pid);
    for (int i = 0; i < 6; i++)
        hq_endpoint_free(&ep[i]);
}

static void test_targeted_event_for_missing_or_disabled_endpoint(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    wenv_endpoint(&W, W.rcv.url, NULL, NULL, 0, &ep);
    freeReplyObject(hq_test_cmd(W.c, "HSET hookq:ep:%s enabled 0", ep.id));
    pid_t pid = start_worker(NULL);
    wenv_produce(&W, "a.b", "{}", "evt_t1", "ep_nosuchendpoint", NULL, 0);
    wenv_produce(&W, "a.b", "{}", "evt_t2", ep.id, NULL, 0);
    struct redis_arg ra = {&W, "XLEN hookq:dead", 2};
    wenv_wait(&W, redis_int_is, &ra, 10000, "two dead letters");
    stream_field_is(&W, "hookq:dead", 0, "reason", "endpoint_deleted");
    stream_field_is(&W, "hookq:dead", 1, "reason", "endpoint_disabled");
    assert_int_equal(hq_test_receiver_count(&W.rcv), 0);
    stop_worker(pid);
    hq_endpoint_free(&ep);
}

static void test_huge_response_is_cut_and_delivery_counts(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    wenv_endpoint_at(&W, "/big/200000000", NULL, 0, &ep);
    pid_t pid = start_worker(NULL);
    wenv_produce(&W, "a.b", "{}", "evt_big", NULL, NULL, 0);
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 20000, "the ack");
    redisReply *r = wenv_attempts(&W, "evt_big");
    assert_int_equal(r->elements, 1);
    assert_non_null(strstr(r->element[0]->str, "\"outcome\":\"delivered\""));
    assert_non_null(strstr(r->element[0]->str, "\"status\":200"));
    assert_true(r->element[0]->len < 4096 + 512);
    freeReplyObject(r);
    stop_worker(pid);
    hq_endpoint_free(&ep);
}

static int log_has_aof_warning(void *arg)
{
    (void)arg;
    return wenv_log_has(&W, "appendonly=no");
}

static void test_metrics_health_and_redis_config_warning(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    wenv_endpoint(&W, W.rcv.url, NULL, NULL, 0, &ep);
    int port = hq_test_free_port();
    char addr[64], url[128];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    const char *extra[] = {"--metrics", addr, NULL};
    pid_t pid = start_worker(extra);
    snprintf(url, sizeof(url), "http://%s/healthz", addr);
    struct wenv_healthz_arg ha = {url};
    wenv_wait(&W, wenv_healthz_ok, &ha, 10000, "/healthz 200");
    wenv_produce(&W, "m.x", "{}", "evt_m", NULL, NULL, 0);
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the ack");
    snprintf(url, sizeof(url), "http://%s/metrics", addr);
    struct hq_buf b;
    hq_buf_init(&b, 1 << 20);
    assert_int_equal(wenv_http_get(url, &b), 200);
    assert_non_null(strstr(b.p, "hookq_deliveries_total{outcome=\"delivered\"} 1"));
    assert_non_null(strstr(b.p, "hookq_events_read_total 1"));
    assert_non_null(strstr(b.p, "hookq_events_acked_total 1"));
    assert_non_null(strstr(b.p, "hookq_attempt_duration_seconds_count 1"));
    hq_buf_free(&b);
    /* The test Redis runs without AOF: the worker says so, once. */
    wenv_wait(&W, log_has_aof_warning, NULL, 5000, "the appendonly warning");
    assert_false(wenv_log_has(&W, "maxmemory-policy="));
    stop_worker(pid);
    hq_endpoint_free(&ep);
}

static void test_bad_worker_options_exit_2_with_one_line(void **state)
{
    (void)state;
    char out[2048], err[2048];
    const char *a1[] = {"worker", "--timeout", "15s", "--claim-idle", "10s", NULL};
    assert_int_equal(hq_test_cli(a1, NULL, NULL, out, sizeof(out), err, sizeof(err)), 2);
    assert_non_null(
        strstr(err, "--claim-idle: 10000ms must exceed the total timeout + 5s (20000ms)"));
    const char *a2[] = {"worker", "--concurrency", "lots", NULL};
    assert_int_equal(hq_test_cli(a2, NULL, NULL, out, sizeof(out), err, sizeof(err)), 2);
    assert_non_null(strstr(err, "--concurrency: 'lots' is not a whole number"));
    const char *a3[] = {"worker", "--redis-url", "http://x", NULL};
    assert_int_equal(hq_test_cli(a3, NULL, NULL, out, sizeof(out), err, sizeof(err)), 2);
    assert_non_null(strstr(err, "--redis-url"));
    static const char *const env[] = {"HOOKQ_ALLOW_CIDRS=10.0.0.0/99", NULL};
    const char *a4[] = {"worker", NULL};
    assert_int_equal(hq_test_cli(a4, env, NULL, out, sizeof(out), err, sizeof(err)), 2);
    assert_non_null(strstr(err, "10.0.0.0/99"));
    /* More transfers than open files: said at start, not EMFILE under load. The
     * limit is lowered in a child, which runs the command and reports. */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        struct rlimit rl = {300, 300};
        const char *a5[] = {"worker", "--concurrency", "400", NULL};
        const char *a6[] = {"worker", "--concurrency", "100", "--max-connections", "250", NULL};
        int ok =
            setrlimit(RLIMIT_NOFILE, &rl) == 0 &&
            hq_test_cli(a5, NULL, NULL, out, sizeof(out), err, sizeof(err)) == 2 &&
            strstr(err, "--concurrency: 400 transfers need 528 open files, but the limit is 300") &&
            hq_test_cli(a6, NULL, NULL, out, sizeof(out), err, sizeof(err)) == 2 &&
            strstr(err, "--max-connections: 250 connections need 378 open files");
        if (!ok)
            fprintf(stderr, "open-file limit check: %s\n", err);
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(waitpid(child, &st, 0), child);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* The worker has read <prefix>:endpoints:ver since calls_before GETs: two
 * more GETs, and it sends one only after the reply of the one before. */
static int version_seen_since(void *arg)
{
    return command_calls("get") >= *(long long *)arg + 2;
}

/* Saves changed over old through the registry and waits until the worker has
 * read the endpoint version since. */
static void save_and_wait_seen(const struct hq_endpoint *old, const struct hq_endpoint *changed)
{
    long long gets = command_calls("get");
    struct hq_err err = {0};
    if (hq_endpoint_save(W.c, "hookq", old, changed, &err) != 0)
        fail_msg("endpoint save: %s", err.msg);
    wenv_wait(&W, version_seen_since, &gets, 5000, "the worker's read of the endpoint version");
}

/* Workers follow <prefix>:endpoints:ver: with --endpoint-cache 60s, an
 * endpoint saved through the registry (which increments it) reaches the
 * worker within a tick, not after the cache's minute: events after a URL
 * change go to the new URL, and after disabling are dead-lettered. */
static void test_endpoint_changes_reach_the_worker_before_the_cache_expires(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    char url[128];
    snprintf(url, sizeof(url), "%s/old", W.rcv.url);
    wenv_endpoint(&W, url, NULL, NULL, 0, &ep);
    const char *const args[] = {"--endpoint-cache", "60s", NULL};
    pid_t pid = start_worker(args);
    wenv_produce(&W, "a.b", "{}", NULL, NULL, NULL, 0);
    struct count_arg old1 = {&W.rcv, "/old", 1};
    wenv_wait(&W, received_at_least, &old1, 10000, "the delivery to the old URL");

    struct hq_endpoint changed;
    struct hq_err err = {0};
    assert_int_equal(hq_endpoint_get(W.c, "hookq", ep.id, &changed, &err), 0);
    free(changed.url);
    snprintf(url, sizeof(url), "%s/new", W.rcv.url);
    changed.url = strdup(url);
    save_and_wait_seen(&ep, &changed);
    wenv_produce(&W, "a.b", "{}", NULL, NULL, NULL, 0);
    struct count_arg new1 = {&W.rcv, "/new", 1};
    wenv_wait(&W, received_at_least, &new1, 10000, "the delivery to the new URL");

    changed.enabled = 0;
    save_and_wait_seen(&ep, &changed);
    /* Disabled: by type and by id alike, the event is kept as a dead letter
     * (issue 15: a subscribed but disabled endpoint's events are kept). */
    wenv_produce(&W, "a.b", "{}", NULL, NULL, NULL, 0);
    wenv_produce(&W, "a.b", "{}", "evt_after_disable", ep.id, NULL, 0);
    struct redis_arg dead = {&W, "XLEN hookq:dead", 2};
    wenv_wait(&W, redis_int_is, &dead, 10000, "the dead letter of the disabled endpoint");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the acks");
    char reason[64];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(stream_field(&W, "hookq:dead", i, "reason", reason, sizeof(reason)), 0);
        assert_string_equal(reason, "endpoint_disabled");
    }
    assert_int_equal(hq_test_receiver_count_path(&W.rcv, "/old"), 1);
    assert_int_equal(hq_test_receiver_count_path(&W.rcv, "/new"), 1);
    stop_worker(pid);
    hq_endpoint_free(&changed);
    hq_endpoint_free(&ep);
}

static int group_setup(void **state)
{
    (void)state;
    wenv_start(&W, NULL);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    wenv_stop(&W);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_delivers_signed_request_byte_exact, setup),
        cmocka_unit_test_setup(test_a_body_over_1_mib_is_sent_without_expect_100_continue, setup),
        cmocka_unit_test_setup(test_fans_out_only_to_enabled_subscribers, setup),
        cmocka_unit_test_setup(test_a_batch_of_one_type_looks_up_subscribers_once, setup),
        cmocka_unit_test_setup(test_every_failure_class_is_scheduled_for_retry, setup),
        cmocka_unit_test_setup(test_retry_after_pushes_the_next_attempt_later, setup),
        cmocka_unit_test_setup(test_exhausted_delivery_is_dead_lettered_with_every_field, setup),
        cmocka_unit_test_setup(test_blocked_addresses_are_dead_lettered_not_retried, setup),
        cmocka_unit_test_setup(test_invalid_entries_are_dead_lettered_with_raw_fields, setup),
        cmocka_unit_test_setup(test_deliveries_waiting_for_a_worker_slot_each_get_one, setup),
        cmocka_unit_test_setup(test_targeted_event_for_missing_or_disabled_endpoint, setup),
        cmocka_unit_test_setup(test_huge_response_is_cut_and_delivery_counts, setup),
        cmocka_unit_test_setup(test_metrics_health_and_redis_config_warning, setup),
        cmocka_unit_test(test_bad_worker_options_exit_2_with_one_line),
        cmocka_unit_test_setup(test_endpoint_changes_reach_the_worker_before_the_cache_expires,
                               setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
