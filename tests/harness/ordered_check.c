/* See ordered_check.h. */
#include "tests/harness/ordered_check.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

static struct hq_test_receiver *rcv_of(struct ordered_run *o)
{
    return o->rcv ? o->rcv : &o->r->w.rcv;
}

void ordered_endpoint(struct ordered_run *o, int mode)
{
    struct rf *r = o->r;
    assert_true(r->neps < RF_EPS_MAX);
    char url[256];
    snprintf(url, sizeof(url), "%s%s", rcv_of(o)->url, o->path);
    struct hq_endpoint *e = &r->eps[r->neps++];
    wenv_endpoint_fill(url, "ord.*", NULL, 50, e);
    e->ordered = mode;
    e->backoff_base_ms = 50;
    e->backoff_max_ms = 200;
    o->skip = mode == HQ_ORDERED_SKIP;
    wenv_endpoint_create(&r->w, e);
}

void ordered_produce_part(struct ordered_run *o, int from_seq, int to_seq)
{
    struct wenv *w = &o->r->w;
    int nkeys = o->nkeys ? o->nkeys : 1, sent = 0;
    for (int s = from_seq; s < to_seq; s++) {
        for (int k = 0; k < nkeys; k++) {
            char id[48], key[24], payload[64], stream[HQ_KEY_MAX];
            snprintf(id, sizeof(id), "o-%d-%d", k, s);
            snprintf(key, sizeof(key), "k%d", k);
            snprintf(payload, sizeof(payload), "{\"k\":%d,\"s\":%d}", k, s);
            /* By the key, as producers route (keyless: all in k0's partition,
             * the one where a keyless line is in stream order). */
            unsigned part = hq_tl_part_for(&w->tl, key);
            assert_true(hq_key_events(w->tl.L.part[part].base, stream, sizeof(stream)) >= 0);
            redisContext *c = wenv_node(w, part);
            if (o->nkeys)
                redisAppendCommand(c, "XADD %s * type ord.test payload %s id %s key %s", stream,
                                   payload, id, key);
            else
                redisAppendCommand(c, "XADD %s * type ord.test payload %s id %s", stream, payload,
                                   id);
            /* Replies read in order per node: with one node, read as we go. */
            redisReply *rep = NULL;
            assert_int_equal(redisGetReply(c, (void **)&rep), REDIS_OK);
            assert_int_equal(rep->type, REDIS_REPLY_STRING);
            freeReplyObject(rep);
            sent++;
        }
    }
    o->produced += sent;
}

void ordered_produce(struct ordered_run *o)
{
    ordered_produce_part(o, 0, o->per_key);
}

void check_order(struct ordered_run *o, struct ordered_report *rep)
{
    struct hq_test_receiver *rc = rcv_of(o);
    int nkeys = o->nkeys ? o->nkeys : 1;
    int *done = malloc(sizeof(int) * (size_t)nkeys);
    for (int k = 0; k < nkeys; k++)
        done[k] = -1;
    memset(rep, 0, sizeof(*rep));
    pthread_mutex_lock(&rc->mu);
    for (size_t i = 0; i < rc->nreqs; i++) {
        const struct hq_test_request *q = &rc->reqs[i];
        if (strcmp(q->path, o->path) != 0)
            continue;
        char wid[96];
        int k, s;
        if (hq_test_request_header(q, "webhook-id", wid, sizeof(wid)) != 0 ||
            sscanf(wid, "o-%d-%d", &k, &s) != 2 || k < 0 || k >= nkeys) {
            rep->early++; /* a request the run did not produce */
            continue;
        }
        int ok = q->status >= 200 && q->status < 300;
        if (s <= done[k])
            rep->repeats++;
        else if (s > done[k] + 1)
            rep->early++;
        else if (ok) {
            done[k] = s;
            rep->delivered++;
        } else {
            rep->failed++;
            if (o->skip)
                done[k] = s; /* dead-lettered: the line moves on */
        }
    }
    pthread_mutex_unlock(&rc->mu);
    for (int k = 0; k < nkeys; k++)
        rep->lost += o->per_key - 1 - done[k];
    free(done);
}

struct delivered_arg {
    struct ordered_run *o;
    long want;
};

static int delivered_at_least(void *arg)
{
    struct delivered_arg *a = arg;
    struct ordered_report rep;
    check_order(a->o, &rep);
    if (rep.delivered >= a->want)
        return 1;
    rf_pause_ms(20);
    return 0;
}

void ordered_wait_delivered(struct ordered_run *o, int ms)
{
    struct delivered_arg a = {o, (long)(o->nkeys ? o->nkeys : 1) * o->per_key};
    if (!hq_test_wait(delivered_at_least, &a, ms)) {
        struct ordered_report rep;
        check_order(o, &rep);
        wenv_dump_log(&o->r->w);
        fail_msg("ordered run not delivered: %ld delivered, %ld failed, %ld repeats, %ld early, "
                 "%ld lost",
                 rep.delivered, rep.failed, rep.repeats, rep.early, rep.lost);
    }
}

long ordered_dead(struct ordered_run *o)
{
    return (long)wenv_sum(&o->r->w, "XLEN", hq_key_dead);
}

struct dead_arg {
    struct ordered_run *o;
    long n;
};

static int dead_at_least(void *arg)
{
    struct dead_arg *a = arg;
    if (ordered_dead(a->o) >= a->n)
        return 1;
    rf_pause_ms(20);
    return 0;
}

void ordered_wait_dead(struct ordered_run *o, long n, int ms)
{
    struct dead_arg a = {o, n};
    wenv_wait(&o->r->w, dead_at_least, &a, ms, "the dead letters");
}

long ordered_dead_reason(struct ordered_run *o, const char *reason)
{
    long n = 0;
    struct wenv *w = &o->r->w;
    for (unsigned i = 0; i < hq_tl_nparts(&w->tl); i++) {
        char key[HQ_KEY_MAX];
        assert_true(hq_key_dead(hq_tl_base(&w->tl, "hookq", i), key, sizeof(key)) >= 0);
        redisReply *r = hq_test_cmd(wenv_node(w, i), "XRANGE %s - +", key);
        for (size_t e = 0; r->type == REDIS_REPLY_ARRAY && e < r->elements; e++) {
            redisReply *f = r->element[e]->element[1];
            for (size_t j = 0; j + 1 < f->elements; j += 2)
                n += strcmp(f->element[j]->str, "reason") == 0 &&
                     strcmp(f->element[j + 1]->str, reason) == 0;
        }
        freeReplyObject(r);
    }
    return n;
}

void ordered_kill9_run(struct ordered_run *o, int nworkers, int ms)
{
    struct rf *r = o->r;
    const char *extra[] = {"--concurrency",
                           "64",
                           "--endpoint-concurrency",
                           "16",
                           "--claim-idle",
                           "8s",
                           "--timeout",
                           "2s",
                           NULL};
    pid_t sc = rf_scheduler(r);
    pid_t ws[8];
    for (int i = 0; i < nworkers && i < 8; i++) {
        char name[16];
        snprintf(name, sizeof(name), "w%d", i);
        ws[i] = rf_worker(r, name, extra);
    }
    int half = o->per_key / 2;
    ordered_produce_part(o, 0, half);
    struct delivered_arg a = {o, (long)(o->nkeys ? o->nkeys : 1) * o->per_key / 4};
    wenv_wait(&r->w, delivered_at_least, &a, ms, "a quarter delivered");
    /* The kill lands while the second half is being read and parked: the
     * killed worker's entries stay pending (holding the lines back by the
     * watermark) until another worker reclaims them. */
    ordered_produce_part(o, half, o->per_key);
    assert_int_equal(hq_test_kill_wait(ws[0], SIGKILL, 5000), 128 + SIGKILL);
    assert_int_equal(hq_test_kill_wait(sc, SIGTERM, 10000), 0);
    sc = rf_scheduler(r);
    ws[0] = rf_worker(r, "w-new", extra);
    ordered_wait_delivered(o, ms);
    (void)sc;
}
