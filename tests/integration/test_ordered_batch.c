/* Endpoints both ordered and batched (docs/batching.md, docs/ordering.md):
 * real workers, scheduler, redis-server and a receiver. A line sends up to
 * max consecutive events of its key as one batch, in stream order; its next
 * batch goes only after this one got a 2xx or was dead-lettered. A failed
 * batch is retried whole (same webhook-id, members and order); exhausted, it
 * leaves one dead letter per member and the line moves on. The checker
 * (check_batches) reads the receiver's requests in arrival order. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>

#include "common/attempts.h"
#include "tests/harness/ordered_check.h"

static struct rf R;

struct batch_report {
    long delivered; /* events whose request got its first 2xx */
    long failed;    /* non-2xx answers of the batch in turn */
    long repeats;   /* requests of events already delivered */
    long early;     /* requests not starting right after the key's last delivered event */
    long bad;       /* requests mixing keys, not consecutive, over max, or unreadable */
    long lost;      /* events never delivered (nor dead-lettered with skip) */
    long requests, batches, max_size;
};

/* The (key, seq) of each event of request q: a batch's elements or the
 * event alone. Returns how many, -1 when unreadable. */
static int members(const struct hq_test_request *q, int *k, int *s, int cap)
{
    char wid[96];
    if (hq_test_request_header(q, "webhook-id", wid, sizeof(wid)) != 0)
        return -1;
    if (strncmp(wid, "bat_", 4) != 0)
        return sscanf(wid, "o-%d-%d", &k[0], &s[0]) == 2 ? 1 : -1;
    if (strlen(wid) != 36 || strspn(wid + 4, "0123456789abcdef") != 32)
        return -1;
    json_error_t je;
    json_t *arr = json_loadb(q->body, q->body_len, 0, &je);
    int n =
        json_is_array(arr) && json_array_size(arr) <= (size_t)cap ? (int)json_array_size(arr) : -1;
    for (int i = 0; i < n; i++) {
        json_t *el = json_array_get(arr, (size_t)i);
        const char *id = json_string_value(json_object_get(el, "id"));
        json_t *p = json_object_get(el, "payload");
        int pk = -1, ps = -1;
        /* The payload as produced ({"k":K,"s":S}) must match the id. */
        if (!id || sscanf(id, "o-%d-%d", &k[i], &s[i]) != 2 || !p ||
            (pk = (int)json_integer_value(json_object_get(p, "k"))) != k[i] ||
            (ps = (int)json_integer_value(json_object_get(p, "s"))) != s[i] ||
            strcmp(json_string_value(json_object_get(el, "type")), "ord.test") != 0)
            n = -1;
    }
    json_decref(arr);
    return n;
}

static void check_batches(struct ordered_run *o, int max, struct batch_report *rep)
{
    struct hq_test_receiver *rc = o->rcv ? o->rcv : &o->r->w.rcv;
    int nkeys = o->nkeys ? o->nkeys : 1;
    int *done = malloc(sizeof(int) * (size_t)nkeys);
    for (int k = 0; k < nkeys; k++)
        done[k] = -1;
    memset(rep, 0, sizeof(*rep));
    int ks[1024], ss[1024];
    pthread_mutex_lock(&rc->mu);
    for (size_t i = 0; i < rc->nreqs; i++) {
        const struct hq_test_request *q = &rc->reqs[i];
        if (strcmp(q->path, o->path) != 0)
            continue;
        rep->requests++;
        int n = members(q, ks, ss, 1024), ok = q->status >= 200 && q->status < 300;
        for (int m = 1; m < n; m++)
            if (ks[m] != ks[0] || ss[m] != ss[0] + m)
                n = -1;
        if (n < 1 || n > max || ks[0] < 0 || ks[0] >= nkeys) {
            rep->bad++;
            continue;
        }
        rep->batches += n > 1;
        if (n > rep->max_size)
            rep->max_size = n;
        int k = ks[0], last = ss[n - 1];
        if (last <= done[k])
            rep->repeats++;
        else if (ss[0] != done[k] + 1)
            rep->early++;
        else if (ok) {
            done[k] = last;
            rep->delivered += n;
        } else {
            rep->failed++;
            if (o->skip)
                done[k] = last;
        }
    }
    pthread_mutex_unlock(&rc->mu);
    for (int k = 0; k < nkeys; k++)
        rep->lost += o->per_key - 1 - done[k];
    free(done);
}

struct delivered_arg {
    struct ordered_run *o;
    int max;
    long want; /* events delivered; 0: all of the run's */
};

static int delivered_at_least(void *arg)
{
    struct delivered_arg *a = arg;
    struct batch_report rep;
    check_batches(a->o, a->max, &rep);
    if (a->want ? rep.delivered >= a->want : rep.lost == 0)
        return 1;
    rf_pause_ms(20);
    return 0;
}

/* An ordered endpoint (mode) batched with max; backoff base_ms..4x, attempts. */
static void ob_endpoint(struct ordered_run *o, int mode, int max, long long base_ms, int attempts)
{
    struct rf *r = o->r;
    assert_true(r->neps < RF_EPS_MAX);
    struct hq_test_receiver *rc = o->rcv ? o->rcv : &r->w.rcv;
    char url[256];
    assert_true(snprintf(url, sizeof(url), "%s%s", rc->url, o->path) < (int)sizeof(url));
    struct hq_endpoint *e = &r->eps[r->neps++];
    wenv_endpoint_fill(url, "ord.*", NULL, attempts, e);
    e->ordered = mode;
    e->backoff_base_ms = base_ms;
    e->backoff_max_ms = 4 * base_ms;
    e->batch = (struct hq_batch_cfg){.max = max, .wait_ms = 100, .bytes = 1 << 20};
    o->skip = mode == HQ_ORDERED_SKIP;
    wenv_endpoint_create(&r->w, e);
}

/* Nothing left in the lines: no line, no item data, no batch kept. */
static void lines_empty(void)
{
    assert_int_equal(wenv_sum(&R.w, "ZCARD", hq_key_lines), 0);
    assert_int_equal(wenv_sum(&R.w, "HLEN", hq_key_lines_data), 0);
}

static int lines_gone(void *arg)
{
    (void)arg;
    if (wenv_sum(&R.w, "ZCARD", hq_key_lines) == 0)
        return 1;
    rf_pause_ms(20);
    return 0;
}

/* 8 keys x 40 events, max=8, produced before the worker starts: every
 * request holds consecutive events of one key in stream order (at most 8),
 * each event delivered once, none lost, and batches really formed; lines run
 * in parallel (each request takes 10 ms), never two of one line. */
static void test_batches_hold_consecutive_events_of_one_key(void **state)
{
    (void)state;
    struct ordered_run o = {.r = &R, .path = "/delay/10/ob", .nkeys = 8, .per_key = 40};
    ob_endpoint(&o, HQ_ORDERED_BLOCK, 8, 50, 50);
    ordered_produce(&o);
    const char *extra[] = {"--concurrency", "512", "--endpoint-concurrency", "16", NULL};
    rf_worker(&R, "w1", extra);
    rf_worker(&R, "w2", extra);
    struct delivered_arg wa = {&o, 8, 0};
    wenv_wait(&R.w, delivered_at_least, &wa, 60000, "every event delivered");
    wenv_wait(&R.w, lines_gone, NULL, 10000, "the lines ended");
    struct batch_report rep;
    check_batches(&o, 8, &rep);
    print_message("[ordered batch] %ld delivered in %ld requests (%ld batches, largest %ld), "
                  "%ld repeats, %ld early, %ld bad, max in flight %d\n",
                  rep.delivered, rep.requests, rep.batches, rep.max_size, rep.repeats, rep.early,
                  rep.bad, R.w.rcv.max_in_flight);
    assert_int_equal(rep.bad, 0);
    assert_int_equal(rep.early, 0);
    assert_int_equal(rep.repeats, 0);
    assert_int_equal(rep.lost, 0);
    assert_int_equal(rep.delivered, 320);
    assert_true(rep.batches > 0);
    assert_true(rep.requests < 320);
    assert_true(R.w.rcv.max_in_flight > 1);
    assert_true(R.w.rcv.max_in_flight <= 8);
    lines_empty();
}

/* The webhook-id of request i at path (in arrival order) in wid; its body. */
static const char *nth_request(const char *path, int i, char *wid, size_t n)
{
    const char *body = NULL;
    pthread_mutex_lock(&R.w.rcv.mu);
    for (size_t j = 0; j < R.w.rcv.nreqs; j++) {
        const struct hq_test_request *q = &R.w.rcv.reqs[j];
        if (strcmp(q->path, path) == 0 && i-- == 0) {
            assert_int_equal(hq_test_request_header(q, "webhook-id", wid, n), 0);
            body = q->body;
            break;
        }
    }
    pthread_mutex_unlock(&R.w.rcv.mu);
    assert_non_null(body);
    return body;
}

/* One key, 12 events, max=4; the receiver fails the first two requests:
 * the first batch arrives 3 times with the same webhook-id and body (the
 * same members in the same order), and the key's next batch only after it. */
static void test_failed_batch_is_retried_whole_before_the_next(void **state)
{
    (void)state;
    struct ordered_run o = {.r = &R, .path = "/obr", .nkeys = 1, .per_key = 12};
    ob_endpoint(&o, HQ_ORDERED_BLOCK, 4, 400, 10);
    ordered_produce(&o);
    R.w.rcv.default_status = 500;
    const char *extra[] = {"--concurrency", "64", NULL};
    rf_worker(&R, "w1", extra);
    struct count_arg ca = {&R.w.rcv, "/obr", 2};
    wenv_wait(&R.w, received_at_least, &ca, 15000, "the batch and its first retry");
    R.w.rcv.default_status = 204;
    struct delivered_arg wa = {&o, 4, 0};
    wenv_wait(&R.w, delivered_at_least, &wa, 30000, "every event delivered");
    struct batch_report rep;
    check_batches(&o, 4, &rep);
    assert_int_equal(rep.bad, 0);
    assert_int_equal(rep.early, 0);
    assert_int_equal(rep.failed, 2);
    assert_int_equal(rep.requests, 5); /* 3 + the two next batches */
    char w0[96], w1[96], w2[96], w3[96];
    const char *b0 = nth_request("/obr", 0, w0, sizeof(w0));
    const char *b1 = nth_request("/obr", 1, w1, sizeof(w1));
    const char *b2 = nth_request("/obr", 2, w2, sizeof(w2));
    const char *b3 = nth_request("/obr", 3, w3, sizeof(w3));
    assert_int_equal(strncmp(w0, "bat_", 4), 0);
    assert_string_equal(w0, w1);
    assert_string_equal(w0, w2);
    assert_string_equal(b0, b1);
    assert_string_equal(b0, b2);
    assert_string_not_equal(w0, w3);
    assert_non_null(strstr(b0, "\"id\":\"o-0-0\""));
    assert_non_null(strstr(b0, "\"id\":\"o-0-3\""));
    assert_non_null(strstr(b3, "\"id\":\"o-0-4\""));
    /* Each member's attempts: retry, retry, delivered, with the batch's id. */
    /* In the key's partition (its entry's), not the id's. */
    unsigned part = hq_tl_part_for(&R.w.tl, "k0");
    struct hq_err err = {0};
    redisReply *r =
        hq_attempts_read(wenv_node(&R.w, part), R.w.tl.L.part[part].base, "o-0-2", &err);
    assert_non_null(r);
    assert_int_equal(r->elements, 3);
    assert_non_null(strstr(r->element[0]->str, "\"outcome\":\"retry\""));
    assert_non_null(strstr(r->element[2]->str, "\"outcome\":\"delivered\""));
    assert_non_null(strstr(r->element[2]->str, w0));
    freeReplyObject(r);
    wenv_wait(&R.w, lines_gone, NULL, 10000, "the line ended");
    lines_empty();
    assert_int_equal(ordered_dead(&o), 0);
}

/* The ids of the dead letters, in order, joined by ','. */
static void dead_ids(char *out, size_t n)
{
    out[0] = '\0';
    for (unsigned i = 0; i < hq_tl_nparts(&R.w.tl); i++) {
        char key[HQ_KEY_MAX];
        assert_true(hq_key_dead(hq_tl_base(&R.w.tl, "hookq", i), key, sizeof(key)) >= 0);
        redisReply *r = hq_test_cmd(wenv_node(&R.w, i), "XRANGE %s - +", key);
        for (size_t e = 0; r->type == REDIS_REPLY_ARRAY && e < r->elements; e++) {
            redisReply *f = r->element[e]->element[1];
            for (size_t j = 0; j + 1 < f->elements; j += 2)
                if (strcmp(f->element[j]->str, "event_id") == 0)
                    snprintf(out + strlen(out), n - strlen(out), "%s%s", *out ? "," : "",
                             f->element[j + 1]->str);
        }
        freeReplyObject(r);
    }
}

/* Block, every request failing, 2 attempts, 8 events of one key, max=4: the
 * first batch is sent twice, then one dead letter per member (exhausted, in
 * order), then the line moves on to the next batch, which ends the same way. */
static void test_exhausted_batch_dead_letters_each_member_then_moves_on(void **state)
{
    (void)state;
    struct ordered_run o = {.r = &R, .path = "/s/503/obx", .nkeys = 1, .per_key = 8};
    ob_endpoint(&o, HQ_ORDERED_BLOCK, 4, 50, 2);
    ordered_produce(&o);
    const char *extra[] = {"--concurrency", "64", NULL};
    rf_worker(&R, "w1", extra);
    ordered_wait_dead(&o, 8, 30000);
    wenv_wait(&R.w, lines_gone, NULL, 10000, "the line ended");
    char ids[512];
    dead_ids(ids, sizeof(ids));
    assert_string_equal(ids, "o-0-0,o-0-1,o-0-2,o-0-3,o-0-4,o-0-5,o-0-6,o-0-7");
    assert_int_equal(ordered_dead_reason(&o, "exhausted"), 8);
    struct batch_report rep;
    check_batches(&o, 4, &rep);
    assert_int_equal(rep.bad, 0);
    assert_int_equal(rep.requests, 4);
    char w[4][96];
    for (int i = 0; i < 4; i++)
        (void)nth_request("/s/503/obx", i, w[i], sizeof(w[i]));
    assert_string_equal(w[0], w[1]);
    assert_string_equal(w[2], w[3]);
    assert_string_not_equal(w[1], w[2]);
    assert_non_null(strstr(nth_request("/s/503/obx", 2, w[2], sizeof(w[2])), "\"id\":\"o-0-4\""));
    lines_empty();
}

/* Skip: a failed batch is dead-lettered at once (one per member, `skipped:
 * ordered`) and the line moves on: one request per batch. */
static void test_skip_dead_letters_the_batch_at_once(void **state)
{
    (void)state;
    struct ordered_run o = {.r = &R, .path = "/s/500/obs", .nkeys = 2, .per_key = 10};
    ob_endpoint(&o, HQ_ORDERED_SKIP, 5, 50, 10);
    ordered_produce(&o);
    const char *extra[] = {"--concurrency", "64", NULL};
    rf_worker(&R, "w1", extra);
    ordered_wait_dead(&o, 20, 30000);
    wenv_wait(&R.w, lines_gone, NULL, 10000, "the lines ended");
    struct batch_report rep;
    check_batches(&o, 5, &rep);
    assert_int_equal(rep.bad, 0);
    assert_int_equal(rep.early, 0);
    assert_int_equal(rep.repeats, 0);
    assert_int_equal(rep.lost, 0);
    assert_int_equal(rep.failed, rep.requests);
    assert_true(rep.batches > 0);
    assert_int_equal(ordered_dead_reason(&o, "skipped: ordered"), 20);
    lines_empty();
}

/* A batch's elements as unordered batches have them: a payload that is not
 * JSON goes base64 (payload_b64, byte for byte), the timestamp is the
 * entry's; with no attempt left (1), each member's dead letter
 * carries its own payload as produced. */
static void test_batch_elements_and_dead_letters_as_produced(void **state)
{
    (void)state;
    struct ordered_run o = {.r = &R, .path = "/s/500/obe", .nkeys = 1, .per_key = 3};
    ob_endpoint(&o, HQ_ORDERED_BLOCK, 10, 50, 1);
    unsigned part = hq_tl_part_for(&R.w.tl, "k0");
    char stream[HQ_KEY_MAX];
    assert_true(hq_key_events(hq_tl_base(&R.w.tl, "hookq", part), stream, sizeof(stream)) >= 0);
    const char *pay[] = {"{\"k\":0,\"s\":0}", "not json \x01\xff", "[1,2]"};
    long long ms[3];
    for (int i = 0; i < 3; i++) {
        redisReply *r = hq_test_cmd(wenv_node(&R.w, part),
                                    "XADD %s * type ord.test payload %b id o-0-%d key k0", stream,
                                    pay[i], strlen(pay[i]), i);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        ms[i] = atoll(r->str);
        freeReplyObject(r);
    }
    const char *extra[] = {"--concurrency", "64", NULL};
    rf_worker(&R, "w1", extra);
    ordered_wait_dead(&o, 3, 30000);
    wenv_wait(&R.w, lines_gone, NULL, 10000, "the line ended");
    char wid[96];
    const char *body = nth_request("/s/500/obe", 0, wid, sizeof(wid));
    json_error_t je;
    json_t *arr = json_loads(body, 0, &je);
    assert_non_null(arr);
    assert_int_equal(json_array_size(arr), 3);
    json_t *e1 = json_array_get(arr, 1);
    assert_null(json_object_get(e1, "payload"));
    assert_string_equal(json_string_value(json_object_get(e1, "payload_b64")), "bm90IGpzb24gAf8=");
    assert_int_equal(json_integer_value(json_object_get(e1, "timestamp")), ms[1]);
    /* [1,2]: JSON, an array as produced. */
    assert_true(json_is_array(json_object_get(json_array_get(arr, 2), "payload")));
    json_decref(arr);
    for (int i = 0; i < 3; i++) {
        char key[HQ_KEY_MAX];
        assert_true(hq_key_dead(hq_tl_base(&R.w.tl, "hookq", part), key, sizeof(key)) >= 0);
        redisReply *r = hq_test_cmd(wenv_node(&R.w, part), "XRANGE %s - +", key);
        assert_int_equal(r->elements, 3);
        redisReply *f = r->element[i]->element[1];
        int seen = 0;
        for (size_t j = 0; j + 1 < f->elements; j += 2) {
            if (strcmp(f->element[j]->str, "payload") == 0) {
                assert_int_equal(f->element[j + 1]->len, strlen(pay[i]));
                assert_memory_equal(f->element[j + 1]->str, pay[i], strlen(pay[i]));
                seen++;
            }
            if (strcmp(f->element[j]->str, "batch_id") == 0) {
                assert_string_equal(f->element[j + 1]->str, wid);
                seen++;
            }
        }
        assert_int_equal(seen, 2);
        freeReplyObject(r);
    }
    lines_empty();
}

/* Block with batches: 20 % of requests fail, 3 workers, half the events;
 * once a quarter are delivered the other half, a kill -9 of a worker and a
 * restart of the scheduler: each key's batches in stream order, none lost,
 * no batch sent before its predecessor's 2xx. */
static void test_batches_hold_the_line_through_failures_and_kill9(void **state)
{
    (void)state;
    rf_start_rcv2(&R, 20);
    struct ordered_run o = {.r = &R, .rcv = &R.rcv2, .path = "/flaky", .nkeys = 10, .per_key = 60};
    ob_endpoint(&o, HQ_ORDERED_BLOCK, 6, 50, 50);
    const char *extra[] = {"--concurrency",
                           "64",
                           "--endpoint-concurrency",
                           "16",
                           "--claim-idle",
                           "8s",
                           "--timeout",
                           "2s",
                           NULL};
    pid_t sc = rf_scheduler(&R);
    pid_t ws[3];
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "w%d", i);
        ws[i] = rf_worker(&R, name, extra);
    }
    ordered_produce_part(&o, 0, 30);
    struct delivered_arg da = {&o, 6, 150};
    wenv_wait(&R.w, delivered_at_least, &da, 60000, "a quarter delivered");
    ordered_produce_part(&o, 30, 60);
    assert_int_equal(hq_test_kill_wait(ws[0], SIGKILL, 5000), 128 + SIGKILL);
    assert_int_equal(hq_test_kill_wait(sc, SIGTERM, 10000), 0);
    rf_scheduler(&R);
    rf_worker(&R, "w-new", extra);
    struct delivered_arg wa = {&o, 6, 0};
    wenv_wait(&R.w, delivered_at_least, &wa, 120000, "every event delivered");
    struct batch_report rep;
    check_batches(&o, 6, &rep);
    print_message("[ordered batch, block, 20%% failures, kill -9] %ld delivered in %ld requests "
                  "(%ld batches), %ld failed, %ld repeats, %ld early, %ld bad\n",
                  rep.delivered, rep.requests, rep.batches, rep.failed, rep.repeats, rep.early,
                  rep.bad);
    assert_int_equal(rep.bad, 0);
    assert_int_equal(rep.early, 0);
    assert_int_equal(rep.lost, 0);
    assert_true(rep.failed > 0);
    assert_true(rep.batches > 0);
    assert_true(rep.repeats <= 16); /* the killed worker's batches in flight */
    assert_int_equal(ordered_dead(&o), 0);
}

/* XADDs event o-<k>-<seq> with key k<k> to the key's partition. */
static void produce_one(int k, int seq)
{
    char key[16], stream[HQ_KEY_MAX];
    snprintf(key, sizeof(key), "k%d", k);
    unsigned part = hq_tl_part_for(&R.w.tl, key);
    assert_true(hq_key_events(hq_tl_base(&R.w.tl, "hookq", part), stream, sizeof(stream)) >= 0);
    redisReply *r =
        hq_test_cmd(wenv_node(&R.w, part),
                    "XADD %s * type ord.test payload {\"k\":%d,\"s\":%d} id o-%d-%d key %s", stream,
                    k, seq, k, seq, key);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
}

static int one_in_flight(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&R.w.rcv.mu);
    int n = R.w.rcv.in_flight;
    pthread_mutex_unlock(&R.w.rcv.mu);
    if (n >= 1)
        return 1;
    rf_pause_ms(5);
    return 0;
}

/* The watermark within a batch: a line's fresh head waits (the endpoint's one
 * line in flight is another key's) while the key's next entry is pending
 * with a consumer that never acks and later ones are parked: the head goes
 * alone, never in a batch that skips the pending entry; once that entry is
 * reclaimed and parked, the rest follow in order. */
static void test_a_batch_stops_at_the_watermark(void **state)
{
    (void)state;
    int kb = 1; /* a key in k0's partition: both lines share one lines:busy count */
    char kbs[16];
    for (;; kb++) {
        snprintf(kbs, sizeof(kbs), "k%d", kb);
        if (hq_tl_part_for(&R.w.tl, kbs) == hq_tl_part_for(&R.w.tl, "k0"))
            break;
    }
    struct ordered_run o = {.r = &R, .path = "/delay/1500/obw", .nkeys = kb + 1, .per_key = 5};
    ob_endpoint(&o, HQ_ORDERED_BLOCK, 10, 50, 10);
    unsigned part = hq_tl_part_for(&R.w.tl, "k0");
    char stream[HQ_KEY_MAX];
    assert_true(hq_key_events(hq_tl_base(&R.w.tl, "hookq", part), stream, sizeof(stream)) >= 0);
    redisContext *c = wenv_node(&R.w, part);
    freeReplyObject(hq_test_cmd(c, "XGROUP CREATE %s workers 0 MKSTREAM", stream));
    produce_one(0, 0);
    produce_one(kb, 0);
    const char *extra[] = {
        "--endpoint-concurrency", "1", "--claim-idle", "8s", "--timeout", "2s", NULL};
    pid_t pid = rf_worker(&R, "w1", extra);
    wenv_wait(&R.w, one_in_flight, NULL, 10000, "k0's head in flight");
    /* The worker paused: the stuck consumer surely reads kb's next entry. */
    assert_int_equal(kill(pid, SIGSTOP), 0);
    /* An entry for no endpoint first: it answers the paused worker's
     * blocking read, if one is waiting. */
    freeReplyObject(hq_test_cmd(c, "XADD %s * type other.x payload {} id filler", stream));
    rf_pause_ms(50);
    produce_one(kb, 1);
    redisReply *r = hq_test_cmd(c, "XREADGROUP GROUP workers stuck COUNT 10 STREAMS %s >", stream);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_non_null(strstr(r->element[0]
                               ->element[1]
                               ->element[r->element[0]->element[1]->elements - 1]
                               ->element[1]
                               ->element[5]
                               ->str,
                           "o-"));
    freeReplyObject(r);
    for (int s = 2; s < 5; s++)
        produce_one(kb, s);
    assert_int_equal(kill(pid, SIGCONT), 0);
    struct delivered_arg da = {&o, 10, 6};
    wenv_wait(&R.w, delivered_at_least, &da, 60000, "the second key's events");
    struct batch_report rep;
    check_batches(&o, 10, &rep);
    print_message("[ordered batch, watermark] %ld delivered in %ld requests, %ld early, %ld bad\n",
                  rep.delivered, rep.requests, rep.early, rep.bad);
    assert_int_equal(rep.bad, 0);
    assert_int_equal(rep.early, 0);
}

/* A head sent alone (its line held one event) that ends does not chain its
 * line's next event alone: the events parked meanwhile go as one batch. */
static void test_after_a_lone_head_the_rest_go_as_a_batch(void **state)
{
    (void)state;
    struct ordered_run o = {.r = &R, .path = "/delay/500/obl", .nkeys = 1, .per_key = 6};
    ob_endpoint(&o, HQ_ORDERED_BLOCK, 10, 50, 10);
    produce_one(0, 0);
    const char *extra[] = {"--concurrency", "64", NULL};
    rf_worker(&R, "w1", extra);
    wenv_wait(&R.w, one_in_flight, NULL, 10000, "the lone head in flight");
    for (int s = 1; s < 6; s++)
        produce_one(0, s);
    struct delivered_arg da = {&o, 10, 0};
    wenv_wait(&R.w, delivered_at_least, &da, 30000, "every event delivered");
    struct batch_report rep;
    check_batches(&o, 10, &rep);
    assert_int_equal(rep.bad, 0);
    assert_int_equal(rep.early, 0);
    assert_int_equal(rep.requests, 2);
    char wid[96];
    (void)nth_request("/delay/500/obl", 0, wid, sizeof(wid));
    assert_string_equal(wid, "o-0-0");
    (void)nth_request("/delay/500/obl", 1, wid, sizeof(wid));
    assert_int_equal(strncmp(wid, "bat_", 4), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RF_TEST(test_batches_hold_consecutive_events_of_one_key, &R),
        RF_TEST(test_failed_batch_is_retried_whole_before_the_next, &R),
        RF_TEST(test_exhausted_batch_dead_letters_each_member_then_moves_on, &R),
        RF_TEST(test_skip_dead_letters_the_batch_at_once, &R),
        RF_TEST(test_batch_elements_and_dead_letters_as_produced, &R),
        RF_TEST(test_batches_hold_the_line_through_failures_and_kill9, &R),
        RF_TEST(test_a_batch_stops_at_the_watermark, &R),
        RF_TEST(test_after_a_lone_head_the_rest_go_as_a_batch, &R),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
