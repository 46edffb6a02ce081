/* Idempotent events (worker/dedupe.c, docs/wire-format.md "Idempotent
 * events"): an event id produced twice, as plain fields and as msgpack, is
 * delivered once and counted as a duplicate; after the window it is delivered
 * again; a kill -9 between the first delivery and its record never turns the
 * dedupe into a loss (the reclaim delivers again); a dead-letter replay is
 * not a duplicate. Real worker processes, real Redis, a real receiver. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "hookq/hookq.h"
#include "common/scripts.h"
#include "producer/encode.h"
#include "tests/harness/worker_env.h"

static struct wenv W;

/* Requests the receiver got carrying webhook-id id (any status). */
static size_t requests_with_id(struct hq_test_receiver *rc, const char *id)
{
    pthread_mutex_lock(&rc->mu);
    size_t n = 0;
    for (size_t i = 0; i < rc->nreqs; i++) {
        char got[256];
        if (hq_test_request_header(&rc->reqs[i], "webhook-id", got, sizeof(got)) == 0 &&
            strcmp(got, id) == 0)
            n++;
    }
    pthread_mutex_unlock(&rc->mu);
    return n;
}

struct id_arg {
    struct hq_test_receiver *rc;
    const char *id;
    size_t want;
};

static int id_requests_at_least(void *arg)
{
    struct id_arg *a = arg;
    return requests_with_id(a->rc, a->id) >= a->want;
}

/* XADDs the msgpack form of an event (one field "event") to its id's partition. */
static void produce_msgpack(const char *type, const char *payload, const char *id)
{
    struct hq_event ev = {.type = type,
                          .type_len = strlen(type),
                          .payload = payload,
                          .payload_len = strlen(payload),
                          .id = id,
                          .id_len = strlen(id)};
    uint8_t buf[1024];
    size_t len = 0;
    struct hq_err err = {0};
    assert_int_equal(hq_encode_event(&ev, buf, sizeof(buf), &len, &err), 0);
    unsigned part = hq_tl_part_for(&W.tl, id);
    char key[HQ_KEY_MAX];
    assert_true(hq_key_events(W.tl.L.part[part].base, key, sizeof(key)) >= 0);
    const char *argv[] = {"XADD", key, "*", "event", (const char *)buf};
    size_t lens[] = {4, strlen(key), 1, 5, len};
    redisReply *r = redisCommandArgv(wenv_node(&W, part), 5, argv, lens);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
}

/* The <p>:dd:<id> key of id, in its partition. */
static redisContext *dd_key(const char *id, char *key, size_t n)
{
    unsigned part = hq_tl_part_for(&W.tl, id);
    assert_true(hq_key_dedupe(W.tl.L.part[part].base, id, key, n) >= 0);
    return wenv_node(&W, part);
}

struct gone_arg {
    const char *id;
};

static int dd_key_gone(void *arg)
{
    struct gone_arg *a = arg;
    char key[HQ_KEY_MAX];
    redisContext *c = dd_key(a->id, key, sizeof(key));
    return hq_test_cmd_int(c, "EXISTS %s", key) == 0;
}

/* The worker's hookq_deliveries_total{outcome="duplicate"}, -1 when unreadable. */
static long metric_duplicates(const char *url)
{
    struct hq_buf b;
    hq_buf_init(&b, 1 << 20);
    long v = -1;
    const char *line = "hookq_deliveries_total{outcome=\"duplicate\"} ";
    if (wenv_http_get(url, &b) == 200) {
        const char *at = strstr(b.p, line);
        if (at)
            v = strtol(at + strlen(line), NULL, 10);
    }
    hq_buf_free(&b);
    return v;
}

/* <p>:duplicates summed over the partitions. */
static long long dup_count(void)
{
    long long sum = 0;
    for (unsigned i = 0; i < W.tl.L.nparts; i++) {
        char key[HQ_KEY_MAX];
        assert_true(hq_key_duplicates(W.tl.L.part[i].base, key, sizeof(key)) >= 0);
        redisReply *r = redisCommand(wenv_node(&W, i), "GET %s", key);
        assert_non_null(r);
        if (r->type == REDIS_REPLY_STRING)
            sum += atoll(r->str);
        freeReplyObject(r);
    }
    return sum;
}

/* claim_ids.lua alone: a free id is claimed (1) with the window as its TTL;
 * the same entry again (a reclaim after a crash) is delivered (1); another
 * entry with the id is a duplicate (0) and changes nothing. */
static void test_claim_script_decides_first_own_and_duplicate(void **state)
{
    (void)state;
    char ka[HQ_KEY_MAX];
    redisContext *c = dd_key("evt_a", ka, sizeof(ka));
    struct hq_err err = {0};
    const struct {
        const char *e1, *e2;
    } steps[] = {
        {"1-1", "1-2"}, /* free: claimed by 1-1; 1-2 in the same batch: a duplicate */
        {"1-1", "1-3"}, /* 1-1 read again (a reclaim): delivered; 1-3 later: a duplicate */
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(*steps); i++) {
        const char *argv[] = {ka, ka, "60000", steps[i].e1, steps[i].e2};
        redisReply *r = hq_script_call(c, hq_script_claim_ids, 2, 5, argv, NULL, &err);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        assert_int_equal(r->elements, 2);
        assert_int_equal(r->element[0]->integer, 1);
        assert_int_equal(r->element[1]->integer, 0);
        freeReplyObject(r);
    }
    redisReply *v = redisCommand(c, "GET %s", ka);
    assert_non_null(v);
    assert_string_equal(v->str, "1-1"); /* the duplicates did not take it over */
    freeReplyObject(v);
    long long ttl = hq_test_cmd_int(c, "PTTL %s", ka);
    assert_true(ttl > 55000 && ttl <= 60000);
}

static void test_same_id_plain_and_msgpack_is_delivered_once(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    wenv_endpoint_at(&W, "/dd", NULL, 0, &ep);
    char maddr[64], murl[128];
    snprintf(maddr, sizeof(maddr), "127.0.0.1:%d", hq_test_free_port());
    snprintf(murl, sizeof(murl), "http://%s/metrics", maddr);
    const char *args[] = {"--metrics", maddr, NULL};
    pid_t wk = wenv_worker(&W, args, NULL);
    wenv_produce(&W, "order.paid", "{\"n\":1}", "evt_dd_1", NULL, NULL, 0);
    produce_msgpack("order.paid", "{\"n\":2}", "evt_dd_1");
    wenv_produce(&W, "order.paid", "{\"n\":3}", "evt_dd_1", NULL, NULL, 0);
    /* Another id after the duplicates: once it and everything else is acked, the
     * duplicates were decided (the stream is read in order, acks wait for records). */
    wenv_produce(&W, "order.paid", "{\"n\":4}", "evt_dd_other", NULL, NULL, 0);
    struct id_arg other = {&W.rcv, "evt_dd_other", 1};
    wenv_wait(&W, id_requests_at_least, &other, 15000, "the other event delivered");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 15000, "everything acked");
    assert_int_equal(requests_with_id(&W.rcv, "evt_dd_1"), 1);
    assert_int_equal(metric_duplicates(murl), 2);
    struct hq_buf mb;
    hq_buf_init(&mb, 1 << 20);
    assert_int_equal(wenv_http_get(murl, &mb), 200);
    char line[96];
    snprintf(line, sizeof(line), "hookq_duplicates_total{partition=\"%u\"} 2\n",
             hq_tl_part_for(&W.tl, "evt_dd_1"));
    if (!strstr(mb.p, line))
        fail_msg("want %s in /metrics", line);
    hq_buf_free(&mb);
    /* Counted in Redis, per partition, for `hookq stats`. */
    assert_int_equal(dup_count(), 2);
    char out[8192], err[1024];
    assert_int_equal(wenv_cli(&W, out, sizeof(out), err, sizeof(err), "stats", "--json", NULL), 0);
    if (!strstr(out, "\"duplicates\":2,"))
        fail_msg("want \"duplicates\":2 in hookq stats --json: %s", out);
    /* The one delivered is the first produced. */
    pthread_mutex_lock(&W.rcv.mu);
    int first = 0;
    for (size_t i = 0; i < W.rcv.nreqs; i++)
        if (strstr(W.rcv.reqs[i].body, "\"n\":1"))
            first = 1;
    pthread_mutex_unlock(&W.rcv.mu);
    assert_true(first);
    assert_int_equal(wenv_sum(&W, "XLEN", hq_key_dead), 0);
    /* The start-up line states the window and the memory it costs. */
    assert_true(wenv_log_has(&W, "dedupe: an event id is delivered at most once per 86400000ms; "
                                 "Redis keeps ~200 bytes per id"));
    assert_int_equal(hq_test_kill_wait(wk, SIGTERM, 20000), 0);
    hq_endpoint_free(&ep);
}

/* --dedupe-window 0 turns it off: every entry is delivered, no key is written. */
static void test_window_0_delivers_every_entry(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    wenv_endpoint_at(&W, "/dd", NULL, 0, &ep);
    const char *args[] = {"--dedupe-window", "0", NULL};
    pid_t wk = wenv_worker(&W, args, NULL);
    wenv_produce(&W, "order.paid", "{}", "evt_dd_off", NULL, NULL, 0);
    produce_msgpack("order.paid", "{}", "evt_dd_off");
    struct id_arg two = {&W.rcv, "evt_dd_off", 2};
    wenv_wait(&W, id_requests_at_least, &two, 15000, "both entries delivered");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 15000, "everything acked");
    struct gone_arg g = {"evt_dd_off"};
    assert_true(dd_key_gone(&g));
    assert_false(wenv_log_has(&W, "dedupe")); /* no start-up line, no claim call */
    assert_int_equal(hq_test_kill_wait(wk, SIGTERM, 20000), 0);
    hq_endpoint_free(&ep);
}

static void test_after_the_window_the_id_is_delivered_again(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    wenv_endpoint_at(&W, "/dd", NULL, 0, &ep);
    const char *args[] = {"--dedupe-window", "2s", NULL};
    pid_t wk = wenv_worker(&W, args, NULL);
    wenv_produce(&W, "order.paid", "{}", "evt_dd_w", NULL, NULL, 0);
    struct id_arg one = {&W.rcv, "evt_dd_w", 1};
    wenv_wait(&W, id_requests_at_least, &one, 15000, "the first delivery");
    char key[HQ_KEY_MAX];
    redisContext *c = dd_key("evt_dd_w", key, sizeof(key));
    long long ttl = hq_test_cmd_int(c, "PTTL %s", key);
    assert_true(ttl > 0 && ttl <= 2000);
    struct gone_arg g = {"evt_dd_w"};
    wenv_wait(&W, dd_key_gone, &g, 10000, "the claim expired");
    wenv_produce(&W, "order.paid", "{}", "evt_dd_w", NULL, NULL, 0);
    struct id_arg two = {&W.rcv, "evt_dd_w", 2};
    wenv_wait(&W, id_requests_at_least, &two, 15000, "delivered again after the window");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 15000, "everything acked");
    assert_int_equal(dup_count(), 0);
    assert_int_equal(hq_test_kill_wait(wk, SIGTERM, 20000), 0);
    hq_endpoint_free(&ep);
}

static int receiver_in_flight(void *arg)
{
    struct hq_test_receiver *rc = arg;
    pthread_mutex_lock(&rc->mu);
    int n = rc->in_flight;
    pthread_mutex_unlock(&rc->mu);
    return n >= 1;
}

/* kill -9 after the claim and the send, before the record: the entry stays
 * pending, claimed by its own entry id; the reclaim finds its own id and
 * delivers it again (a duplicate at most, never a loss). */
static void test_kill9_between_delivery_and_record_is_no_loss(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    wenv_endpoint_at(&W, "/delay/2000", NULL, 0, &ep);
    const char *args[] = {"--timeout", "5s", "--claim-idle", "11s", NULL};
    pid_t a = wenv_worker(&W, args, NULL);
    wenv_produce(&W, "order.paid", "{}", "evt_dd_k", NULL, NULL, 0);
    wenv_wait(&W, receiver_in_flight, &W.rcv, 15000, "the first delivery in flight");
    assert_int_equal(hq_test_kill_wait(a, SIGKILL, 5000), 128 + SIGKILL);
    pid_t b = wenv_worker(&W, args, NULL);
    struct id_arg two = {&W.rcv, "evt_dd_k", 2};
    wenv_wait(&W, id_requests_at_least, &two, 40000, "the reclaim delivered it again");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 15000, "everything acked");
    assert_int_equal(dup_count(), 0);
    assert_int_equal(wenv_sum(&W, "XLEN", hq_key_dead), 0);
    assert_int_equal(hq_test_kill_wait(b, SIGTERM, 20000), 0);
    hq_endpoint_free(&ep);
}

struct dead_arg {
    const char *endpoint;
    long want;
};

static int dead_letters_at_least(void *arg)
{
    struct dead_arg *a = arg;
    return wenv_dead_count(&W, a->endpoint, "exhausted") >= a->want;
}

/* A dead-letter replay carries replay = 1: not a duplicate of its first delivery. */
static void test_dlq_replay_is_not_a_duplicate(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    wenv_endpoint_at(&W, "/s/500", NULL, 1, &ep);
    pid_t wk = wenv_worker(&W, NULL, NULL);
    wenv_produce(&W, "order.paid", "{}", "evt_dd_r", NULL, NULL, 0);
    struct dead_arg d = {ep.id, 1};
    wenv_wait(&W, dead_letters_at_least, &d, 15000, "the event dead-lettered");
    char out[4096], err[4096];
    int rc = wenv_cli(&W, out, sizeof(out), err, sizeof(err), "dlq", "replay", "--all", NULL);
    if (rc != 0)
        print_message("dlq replay: %s%s\n", out, err);
    assert_int_equal(rc, 0);
    struct id_arg two = {&W.rcv, "evt_dd_r", 2};
    wenv_wait(&W, id_requests_at_least, &two, 15000, "the replay delivered");
    struct dead_arg d2 = {ep.id, 1};
    wenv_wait(&W, dead_letters_at_least, &d2, 15000, "the replay dead-lettered again");
    assert_int_equal(dup_count(), 0);
    assert_int_equal(hq_test_kill_wait(wk, SIGTERM, 20000), 0);
    hq_endpoint_free(&ep);
}

/* `hookq produce` and libhookq report an id a worker already claimed; the
 * entry is still written and the workers acknowledge it without delivering. */
static void test_producers_report_a_duplicate(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    wenv_endpoint_at(&W, "/dd", NULL, 0, &ep);
    pid_t wk = wenv_worker(&W, NULL, NULL);
    char out[4096], err[4096];
    assert_int_equal(wenv_cli(&W, out, sizeof(out), err, sizeof(err), "produce", "--type",
                              "order.paid", "--id", "evt_dd_p", "--data", "{}", NULL),
                     0);
    assert_null(strstr(err, "duplicate"));
    struct id_arg one = {&W.rcv, "evt_dd_p", 1};
    wenv_wait(&W, id_requests_at_least, &one, 15000, "the first delivery");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 15000, "the first acked");
    assert_int_equal(wenv_cli(&W, out, sizeof(out), err, sizeof(err), "produce", "--type",
                              "order.paid", "--id", "evt_dd_p", "--data", "{}", "--json", NULL),
                     0);
    if (!strstr(err, "hookq produce: duplicate: id evt_dd_p already produced"))
        fail_msg("want the duplicate reported on stderr, got '%s'", err);
    assert_non_null(strstr(out, "\"duplicate\":true"));

    struct hookq_producer *p = NULL;
    char msg[256], id[64];
    assert_int_equal(hookq_producer_connect(wenv_url(&W), NULL, &p, msg, sizeof(msg)), 0);
    struct hookq_event ev = {
        .type = "order.paid", .payload = "{}", .payload_len = 2, .id = "evt_dd_p"};
    /* Off by default: 0, as before. */
    assert_int_equal(hookq_produce(p, &ev, id, sizeof(id), msg, sizeof(msg)), 0);
    hookq_producer_set_report_duplicates(p, 1);
    assert_int_equal(hookq_produce(p, &ev, id, sizeof(id), msg, sizeof(msg)), HOOKQ_DUPLICATE);
    assert_non_null(strstr(msg, "duplicate: id evt_dd_p already produced"));
    assert_true(id[0] != '\0'); /* written all the same */
    ev.id = "evt_dd_p_new";
    assert_int_equal(hookq_produce(p, &ev, id, sizeof(id), msg, sizeof(msg)), 0);
    hookq_producer_free(p);

    struct id_arg other = {&W.rcv, "evt_dd_p_new", 1};
    wenv_wait(&W, id_requests_at_least, &other, 15000, "the new id delivered");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 15000, "everything acked");
    assert_int_equal(requests_with_id(&W.rcv, "evt_dd_p"), 1);
    assert_int_equal(dup_count(), 3);
    assert_int_equal(hq_test_kill_wait(wk, SIGTERM, 20000), 0);
    hq_endpoint_free(&ep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        WENV_TEST(test_claim_script_decides_first_own_and_duplicate, &W),
        WENV_TEST(test_same_id_plain_and_msgpack_is_delivered_once, &W),
        WENV_TEST(test_after_the_window_the_id_is_delivered_again, &W),
        WENV_TEST(test_window_0_delivers_every_entry, &W),
        WENV_TEST(test_kill9_between_delivery_and_record_is_no_loss, &W),
        WENV_TEST(test_dlq_replay_is_not_a_duplicate, &W),
        WENV_TEST(test_producers_report_a_duplicate, &W),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
