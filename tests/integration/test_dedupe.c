/* Idempotent events (worker/dedupe.c, docs/wire-format.md "Idempotent
 * events"): an event id produced twice, as plain fields and as msgpack, is
 * delivered once and counted as a duplicate; after the window it is delivered
 * again; a kill -9 between the first delivery and its record never turns the
 * dedupe into a loss (the reclaim delivers again); a dead-letter replay is
 * not a duplicate. claim_ids.lua alone, on the claim generations: a claim
 * holds in the next generation, a generation is UNLINKed by the claim calls
 * once past its end (not by its PEXPIREAT backstop) and its id is claimed
 * anew. Real worker processes, real Redis, a real receiver. */
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

/* The claim generations' index <p>:dd of id's partition, and its node. */
static redisContext *dd_index(const char *id, char *key, size_t n)
{
    unsigned part = hq_tl_part_for(&W.tl, id);
    assert_true(hq_key_dedupe_index(W.tl.L.part[part].base, key, n) >= 0);
    return wenv_node(&W, part);
}

/* The entry id holding id's claim (dd_seen.lua, as producers look), "" when free. */
static void dd_seen(const char *id, char *out, size_t n)
{
    char idx[HQ_KEY_MAX];
    redisContext *c = dd_index(id, idx, sizeof(idx));
    const char *argv[] = {idx, id};
    redisReply *r = hq_script_call(c, hq_script_dd_seen, 1, 2, argv, NULL, &(struct hq_err){0});
    assert_non_null(r);
    snprintf(out, n, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
}

struct gone_arg {
    const char *id;
};

static int dd_claim_gone(void *arg)
{
    struct gone_arg *a = arg;
    char v[64];
    dd_seen(a->id, v, sizeof(v));
    return v[0] == '\0';
}

/* claim_ids.lua on the partition of id route (the ids claimed need not be
 * its: the script does not look): n (event id, entry id) pairs; the replies into res. */
static void claim(const char *route, const char *window, int n, const char *const *pairs,
                  long long *res)
{
    char idx[HQ_KEY_MAX];
    redisContext *c = dd_index(route, idx, sizeof(idx));
    const char *argv[2 + 2 * 8] = {idx, window};
    assert_true(n <= 8);
    for (int i = 0; i < 2 * n; i++)
        argv[2 + i] = pairs[i];
    redisReply *r =
        hq_script_call(c, hq_script_claim_ids, 1, 2 + 2 * n, argv, NULL, &(struct hq_err){0});
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, (size_t)n);
    for (int i = 0; i < n; i++)
        res[i] = r->element[i]->integer;
    freeReplyObject(r);
}

/* Redis' clock, ms. */
static long long redis_ms(redisContext *c)
{
    redisReply *r = redisCommand(c, "TIME");
    assert_non_null(r);
    long long ms = atoll(r->element[0]->str) * 1000 + atoll(r->element[1]->str) / 1000;
    freeReplyObject(r);
    return ms;
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

/* claim_ids.lua alone: a free id is claimed (1) as a field of the current
 * generation; the same entry again (a reclaim after a crash) is delivered (1);
 * another entry with the id is a duplicate (0) and changes nothing, in the
 * same batch as in a later one. */
static void test_claim_script_decides_first_own_and_duplicate(void **state)
{
    (void)state;
    char idx[HQ_KEY_MAX];
    redisContext *c = dd_index("evt_a", idx, sizeof(idx));
    const char *steps[][4] = {
        {"evt_a", "1-1", "evt_a",
         "1-2"}, /* free: claimed by 1-1; 1-2 in the same batch: a duplicate */
        {"evt_a", "1-1", "evt_a",
         "1-3"}, /* 1-1 read again (a reclaim): delivered; 1-3 later: a duplicate */
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(*steps); i++) {
        long long res[2];
        claim("evt_a", "60000", 2, steps[i], res);
        assert_int_equal(res[0], 1);
        assert_int_equal(res[1], 0);
    }
    char v[64];
    dd_seen("evt_a", v, sizeof(v));
    assert_string_equal(v, "1-1"); /* the duplicates did not take it over */
    /* One generation, G = 60 s / 2 wide, listed until its newest claim is a
     * window old, removed by Redis one G after that at the latest. */
    redisReply *g = redisCommand(c, "ZRANGE %s 0 -1 WITHSCORES", idx);
    assert_non_null(g);
    assert_int_equal(g->elements, 2);
    long long start = atoll(g->element[0]->str), end = atoll(g->element[1]->str);
    assert_int_equal(start % 30000, 0);
    assert_int_equal(end, start + 30000 + 60000);
    char gen[HQ_KEY_MAX];
    hq_key_dedupe_gen(W.tl.L.part[hq_tl_part_for(&W.tl, "evt_a")].base, g->element[0]->str, gen,
                      sizeof(gen));
    freeReplyObject(g);
    assert_int_equal(hq_test_cmd_int(c, "HLEN %s", gen), 1);
    long long ttl = hq_test_cmd_int(c, "PTTL %s", gen), now = redis_ms(c);
    assert_true(ttl > 0 && now + ttl <= end + 30000 + 50 && now + ttl >= end + 30000 - 50);
}

struct gen_arg {
    redisContext *c;
    long long after; /* ms */
};

static int redis_clock_past(void *arg)
{
    struct gen_arg *a = arg;
    return redis_ms(a->c) >= a->after;
}

struct unlink_arg {
    redisContext *c;
    const char *gen, *idx, *start;
    long long end; /* the generation's score */
    int n;
};

/* Claims a fresh id (the clean-up runs in claim calls), then: is the generation gone? */
static int generation_unlinked(void *arg)
{
    struct unlink_arg *a = arg;
    char id[32];
    snprintf(id, sizeof(id), "evt_gc_%d", a->n++);
    const char *pair[] = {id, "2-1"};
    long long res[1], before = redis_ms(a->c);
    claim("evt_g", "2000", 1, pair, res);
    long long now = redis_ms(a->c);
    if (hq_test_cmd_int(a->c, "EXISTS %s", a->gen) == 1) {
        /* Removed by the claim calls (UNLINK), long before its PEXPIREAT
         * backstop (end + G): a claim well past end left it in place. */
        if (before >= a->end + 500)
            fail_msg("generation %s not unlinked %lld ms past its end", a->gen, before - a->end);
        return 0;
    }
    /* Never removed before its newest claim is a window old. */
    assert_true(now >= a->end);
    redisReply *z = redisCommand(a->c, "ZSCORE %s %s", a->idx, a->start);
    assert_non_null(z);
    int listed = z->type != REDIS_REPLY_NIL;
    freeReplyObject(z);
    assert_false(listed);
    return 1;
}

/* Generations at a 2 s window (G = 1 s): a claim made in one generation still
 * holds in the next (an id is deduplicated for at least the window); once
 * every claim of a generation is a window old, the generation is UNLINKed and
 * unlisted, and its id is delivered again (at most window + G after its claim). */
static void test_claims_hold_across_generations_then_expire(void **state)
{
    (void)state;
    char idx[HQ_KEY_MAX], gen[HQ_KEY_MAX], start_s[24];
    redisContext *c = dd_index("evt_g", idx, sizeof(idx));
    const char *first[] = {"evt_g", "1-1"};
    long long res[2], t0 = redis_ms(c);
    claim("evt_g", "2000", 1, first, res);
    assert_int_equal(res[0], 1);
    redisReply *g = redisCommand(c, "ZRANGE %s 0 -1 WITHSCORES", idx);
    assert_non_null(g);
    assert_int_equal(g->elements, 2);
    long long start = atoll(g->element[0]->str), end = atoll(g->element[1]->str);
    snprintf(start_s, sizeof(start_s), "%s", g->element[0]->str);
    freeReplyObject(g);
    assert_true(start <= t0 + 5 && t0 < start + 1000 + 5);
    assert_int_equal(end, start + 1000 + 2000);
    hq_key_dedupe_gen(W.tl.L.part[hq_tl_part_for(&W.tl, "evt_g")].base, start_s, gen, sizeof(gen));

    /* The next generation: the claim is found in the previous one. */
    struct gen_arg next = {c, start + 1000};
    wenv_wait(&W, redis_clock_past, &next, 5000, "the next claim generation");
    const char *other[] = {"evt_g2", "1-3"}; /* opens the new generation */
    claim("evt_g", "2000", 1, other, res);
    assert_int_equal(res[0], 1);
    assert_int_equal(hq_test_cmd_int(c, "ZCARD %s", idx), 2);
    const char *again[] = {"evt_g", "1-2"};
    claim("evt_g", "2000", 1, again, res);
    assert_int_equal(res[0], 0); /* a duplicate: claimed a generation ago */
    char v[64];
    dd_seen("evt_g", v, sizeof(v));
    assert_string_equal(v, "1-1");

    /* Past start + G + window: unlinked by a claim call, and free again. */
    struct unlink_arg u = {c, gen, idx, start_s, end, 0};
    wenv_wait(&W, generation_unlinked, &u, 10000, "the first generation unlinked");
    dd_seen("evt_g", v, sizeof(v));
    assert_string_equal(v, "");
    const char *third[] = {"evt_g", "1-4"};
    claim("evt_g", "2000", 1, third, res);
    assert_int_equal(res[0], 1); /* delivered again: claimed anew */
    assert_true(redis_ms(c) - t0 >= 2000);
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
                                 "Redis keeps ~125 bytes per id for up to 1.5x that"));
    assert_int_equal(hq_test_kill_wait(wk, SIGTERM, 20000), 0);
    hq_endpoint_free(&ep);
}

/* --dedupe-window 0 turns it off: every entry is delivered, no claim is written. */
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
    char idx[HQ_KEY_MAX];
    redisContext *c = dd_index("evt_dd_off", idx, sizeof(idx));
    assert_int_equal(hq_test_cmd_int(c, "EXISTS %s", idx), 0);
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
    char v[64];
    dd_seen("evt_dd_w", v, sizeof(v));
    assert_true(v[0] != '\0'); /* claimed */
    struct gone_arg g = {"evt_dd_w"};
    wenv_wait(&W, dd_claim_gone, &g, 10000, "the claim expired");
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
    /* A batch: a round's first look-up is an EVAL, the later ones EVALSHAs of
     * the build-time SHA1; the claimed id in the middle is reported. */
    struct hookq_event evs[3] = {ev, ev, ev};
    evs[0].id = "evt_dd_b1";
    evs[1].id = "evt_dd_p";
    evs[2].id = "evt_dd_b2";
    char ids[3][64];
    assert_int_equal(hookq_produce_batch(p, evs, 3, ids, msg, sizeof(msg)), HOOKQ_DUPLICATE);
    if (!strstr(msg, "1 of 3 events' ids already produced (first: event 1, id evt_dd_p)"))
        fail_msg("want the batch's duplicate reported, got '%s'", msg);
    hookq_producer_free(p);

    struct id_arg other = {&W.rcv, "evt_dd_p_new", 1};
    wenv_wait(&W, id_requests_at_least, &other, 15000, "the new id delivered");
    struct id_arg b2 = {&W.rcv, "evt_dd_b2", 1};
    wenv_wait(&W, id_requests_at_least, &b2, 15000, "the batch's new ids delivered");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 15000, "everything acked");
    assert_int_equal(requests_with_id(&W.rcv, "evt_dd_p"), 1);
    assert_int_equal(requests_with_id(&W.rcv, "evt_dd_b1"), 1);
    assert_int_equal(dup_count(), 4);
    assert_int_equal(hq_test_kill_wait(wk, SIGTERM, 20000), 0);
    hq_endpoint_free(&ep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        WENV_TEST(test_claim_script_decides_first_own_and_duplicate, &W),
        WENV_TEST(test_claims_hold_across_generations_then_expire, &W),
        WENV_TEST(test_same_id_plain_and_msgpack_is_delivered_once, &W),
        WENV_TEST(test_after_the_window_the_id_is_delivered_again, &W),
        WENV_TEST(test_window_0_delivers_every_entry, &W),
        WENV_TEST(test_kill9_between_delivery_and_record_is_no_loss, &W),
        WENV_TEST(test_dlq_replay_is_not_a_duplicate, &W),
        WENV_TEST(test_producers_report_a_duplicate, &W),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
