/* See tests/harness/checker.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/checker.h"

#include "common/limits.h"
#include "common/scripts.h"

static uint64_t hq_ck_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

struct hq_ck_pair *hq_ck_map_find(const struct hq_ck_map *m, const char *key)
{
    if (!m->cap)
        return NULL;
    uint64_t h = hq_ck_hash(key);
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        struct hq_ck_pair *p = &m->slots[i];
        if (!p->key)
            return NULL;
        if (p->h == h && strcmp(p->key, key) == 0)
            return p;
    }
}

static struct hq_ck_pair *hq_ck_map_put(struct hq_ck_map *m, const char *key)
{
    if ((m->n + 1) * 2 > m->cap) { /* keep the load under 1/2 */
        struct hq_ck_map g = {calloc(m->cap ? m->cap * 2 : 1024, sizeof(struct hq_ck_pair)),
                              m->cap ? m->cap * 2 : 1024, m->n};
        assert_non_null(g.slots);
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->slots[i].key)
                continue;
            size_t j = m->slots[i].h & (g.cap - 1);
            while (g.slots[j].key)
                j = (j + 1) & (g.cap - 1);
            g.slots[j] = m->slots[i];
        }
        free(m->slots);
        *m = g;
    }
    uint64_t h = hq_ck_hash(key);
    size_t i = h & (m->cap - 1);
    for (; m->slots[i].key; i = (i + 1) & (m->cap - 1)) {
        if (m->slots[i].h == h && strcmp(m->slots[i].key, key) == 0)
            return &m->slots[i];
    }
    m->slots[i].key = strdup(key);
    m->slots[i].h = h;
    m->n++;
    return &m->slots[i];
}

static void hq_ck_map_free(struct hq_ck_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

void hq_ck_init(struct hq_ck *ck, const char *prefix)
{
    memset(ck, 0, sizeof(*ck));
    snprintf(ck->prefix, sizeof(ck->prefix), "%s", prefix);
}

void hq_ck_free(struct hq_ck *ck)
{
    for (int i = 0; i < ck->neps; i++) {
        hq_sign_key_wipe(&ck->eps[i].k1);
        hq_sign_key_wipe(&ck->eps[i].k2);
    }
    hq_ck_map_free(&ck->pairs);
    memset(ck, 0, sizeof(*ck));
}

int hq_ck_endpoint(struct hq_ck *ck, const struct hq_endpoint *e, struct hq_test_receiver *rcv)
{
    assert_true(ck->neps < HQ_CK_EPS_MAX);
    struct hq_ck_ep *x = &ck->eps[ck->neps];
    memset(x, 0, sizeof(*x));
    x->e = e;
    x->rcv = rcv;
    const char *p = strstr(e->url, "://");
    p = p ? strchr(p + 3, '/') : NULL;
    snprintf(x->path, sizeof(x->path), "%s", p ? p : "/");
    char *q = strchr(x->path, '?');
    if (q)
        *q = '\0';
    for (int i = 0; i < ck->neps; i++) {
        if (ck->eps[i].rcv == rcv && strcmp(ck->eps[i].path, x->path) == 0)
            fail_msg("checker: endpoints %s and %s share path '%s' on one receiver",
                     ck->eps[i].e->id, e->id, x->path);
    }
    struct hq_err err = {0};
    if (hq_sign_key_decode(e->key1, &x->k1, &err) != 0 ||
        hq_sign_key_decode(e->key2, &x->k2, &err) != 0)
        fail_msg("checker: endpoint %s key: %s", e->id, err.msg);
    return ck->neps++;
}

void hq_ck_expect_dead_endpoint(struct hq_ck *ck, int idx)
{
    ck->eps[idx].expect_dead = 1;
}

void hq_ck_pair_key(char *out, const char *event_id, const char *endpoint_id)
{
    snprintf(out, HQ_CK_KEY_MAX, "%s\x1f%s", event_id, endpoint_id);
}

void hq_ck_record_in(struct hq_ck *ck, const char *event_id, const char *endpoint_id,
                     int expect_dead, unsigned part)
{
    char key[HQ_CK_KEY_MAX];
    hq_ck_pair_key(key, event_id, endpoint_id);
    struct hq_ck_pair *p = hq_ck_map_put(&ck->pairs, key);
    p->expect_dead = expect_dead;
    p->part = part;
}

void hq_ck_record(struct hq_ck *ck, const char *event_id, const char *endpoint_id, int expect_dead)
{
    hq_ck_record_in(ck, event_id, endpoint_id, expect_dead, hq_tl_part_for(ck->tl, event_id));
}

/* XADDs type/payload/id[/endpoint] to the partition of the id; writes the
 * generated id into id_out (>= 32) and returns the partition. */
static unsigned hq_ck_xadd(struct hq_ck *ck, redisContext *c, const char *type, const char *payload,
                           size_t payload_len, const char *endpoint, char *id_out)
{
    char key[HQ_KEY_MAX];
    snprintf(id_out, 32, "evck_%ld", ck->seq++);
    unsigned part = hq_tl_part_for(ck->tl, id_out);
    assert_true(hq_key_events(hq_tl_base(ck->tl, ck->prefix, part), key, sizeof(key)) >= 0);
    c = hq_tl_node(ck->tl, c, part);
    const char *argv[11] = {"XADD",  key,  "*",    "type",     type,    "payload",
                            payload, "id", id_out, "endpoint", endpoint};
    size_t lens[11];
    for (int i = 0; i < 11; i++)
        lens[i] = argv[i] ? strlen(argv[i]) : 0;
    lens[6] = payload_len;
    redisReply *r = redisCommandArgv(c, endpoint ? 11 : 9, argv, lens);
    if (!r || r->type != REDIS_REPLY_STRING)
        fail_msg("checker: XADD failed: %s", r ? r->str : c->errstr);
    freeReplyObject(r);
    return part;
}

int hq_ck_produce(struct hq_ck *ck, redisContext *c, const char *type, const char *payload)
{
    char id[32];
    unsigned part = hq_ck_xadd(ck, c, type, payload, strlen(payload), NULL, id);
    int n = 0;
    for (int i = 0; i < ck->neps; i++) {
        const struct hq_endpoint *e = ck->eps[i].e;
        if (e->enabled && hq_endpoint_matches(e, type, strlen(type))) {
            hq_ck_record_in(ck, id, e->id, ck->eps[i].expect_dead, part);
            n++;
        }
    }
    return n;
}

void hq_ck_produce_to(struct hq_ck *ck, redisContext *c, const char *type, const char *payload,
                      int idx)
{
    char id[32];
    unsigned part = hq_ck_xadd(ck, c, type, payload, strlen(payload), ck->eps[idx].e->id, id);
    hq_ck_record_in(ck, id, ck->eps[idx].e->id, ck->eps[idx].expect_dead, part);
}

#define FILL_CHUNK 2000
static const char fill_lua[] =
    "local due, ep, ty, pl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "for i = 5, #ARGV do\n"
    "  local id = ARGV[i]\n"
    "  local m = ep .. '/' .. id .. '/1'\n"
    "  redis.call('ZADD', KEYS[1], due, m)\n"
    "  redis.call('HSET', KEYS[2], m, cmsgpack.pack({type = ty, payload = pl, id = id,\n"
    "    endpoint = ep, attempt = 1, first_ms = tonumber(due)}))\n"
    "end\n"
    "return 1\n";

struct fill_part {
    char keys[2][HQ_KEY_MAX];
    char ids[FILL_CHUNK][32];
    int n;
};

static void fill_flush(struct hq_ck *ck, redisContext *c, unsigned part, struct fill_part *fp,
                       const char *head[8])
{
    if (fp->n == 0)
        return;
    const char **argv = calloc((size_t)fp->n + 9, sizeof(*argv));
    assert_non_null(argv);
    argv[0] = "EVAL";
    argv[1] = fill_lua;
    argv[2] = "2";
    argv[3] = fp->keys[0];
    argv[4] = fp->keys[1];
    for (int i = 0; i < 4; i++)
        argv[5 + i] = head[i];
    for (int i = 0; i < fp->n; i++)
        argv[9 + i] = fp->ids[i];
    redisReply *r = redisCommandArgv(hq_tl_node(ck->tl, c, part), fp->n + 9, argv, NULL);
    if (!r || r->type != REDIS_REPLY_INTEGER)
        fail_msg("checker: filling retries failed: %s", r ? r->str : c->errstr);
    freeReplyObject(r);
    free(argv);
    fp->n = 0;
}

void hq_ck_fill_retries(struct hq_ck *ck, redisContext *c, int idx, const char *type,
                        const char *payload, long n, int64_t due_ms)
{
    unsigned np = hq_tl_nparts(ck->tl);
    struct fill_part *fp = calloc(np, sizeof(*fp));
    assert_non_null(fp);
    for (unsigned i = 0; i < np; i++) {
        assert_true(hq_key_retry(hq_tl_base(ck->tl, ck->prefix, i), fp[i].keys[0],
                                 sizeof(fp[i].keys[0])) >= 0);
        assert_true(hq_key_retry_data(hq_tl_base(ck->tl, ck->prefix, i), fp[i].keys[1],
                                      sizeof(fp[i].keys[1])) >= 0);
    }
    char due[24];
    snprintf(due, sizeof(due), "%lld", (long long)due_ms);
    const char *ep = ck->eps[idx].e->id;
    const char *head[8] = {due, ep, type, payload};
    for (long k = 0; k < n; k++) {
        char id[32];
        snprintf(id, sizeof(id), "evck_%ld", ck->seq++);
        unsigned part = hq_tl_part_for(ck->tl, id);
        hq_ck_record_in(ck, id, ep, ck->eps[idx].expect_dead, part);
        snprintf(fp[part].ids[fp[part].n++], 32, "%s", id);
        if (fp[part].n == FILL_CHUNK)
            fill_flush(ck, c, part, &fp[part], head);
    }
    for (unsigned i = 0; i < np; i++)
        fill_flush(ck, c, i, &fp[i], head);
    free(fp);
}

void hq_ck_note_fault(struct hq_ck *ck, long long in_flight)
{
    ck->dup_bound += in_flight;
    ck->nfaults++;
}

int hq_ck_in_flight(struct hq_test_receiver *rcv)
{
    pthread_mutex_lock(&rcv->mu);
    int n = rcv->in_flight;
    pthread_mutex_unlock(&rcv->mu);
    return n;
}

static void hq_ck_problem(struct hq_ck_report *rep, const char *fmt, const char *a, const char *b)
{
    if (!rep->problem[0])
        snprintf(rep->problem, sizeof(rep->problem), fmt, a, b);
}

/* Matches one receiver's requests to pairs (under its lock). */
static void hq_ck_scan_receiver(struct hq_ck *ck, struct hq_test_receiver *rcv, int verify,
                                struct hq_ck_report *rep)
{
    pthread_mutex_lock(&rcv->mu);
    for (size_t i = 0; i < rcv->nreqs; i++) {
        const struct hq_test_request *q = &rcv->reqs[i];
        struct hq_ck_ep *x = NULL;
        for (int k = 0; k < ck->neps && !x; k++) {
            if (ck->eps[k].rcv == rcv && strcmp(ck->eps[k].path, q->path) == 0)
                x = &ck->eps[k];
        }
        if (!x) {
            rep->unknown++;
            hq_ck_problem(rep, "request for unregistered path '%s'%s", q->path, "");
            continue;
        }
        char id[128], ts[32], sig[512], key[HQ_CK_KEY_MAX];
        if (hq_test_request_header(q, "webhook-id", id, sizeof(id)) != 0 ||
            hq_test_request_header(q, "webhook-timestamp", ts, sizeof(ts)) != 0 ||
            hq_test_request_header(q, "webhook-signature", sig, sizeof(sig)) != 0) {
            rep->no_headers++;
            hq_ck_problem(rep, "request to '%s' without webhook headers%s", q->path, "");
            continue;
        }
        if (verify) {
            struct hq_err err = {0};
            int64_t t = strtoll(ts, NULL, 10);
            if (hq_sign_verify(&x->k1, id, t, q->body, q->body_len, sig, 0, -1, &err) != 0 &&
                hq_sign_verify(&x->k2, id, t, q->body, q->body_len, sig, 0, -1, &err) != 0) {
                rep->bad_sig++;
                hq_ck_problem(rep, "bad signature on %s to %s", id, x->e->id);
            }
        }
        hq_ck_pair_key(key, id, x->e->id);
        struct hq_ck_pair *p = hq_ck_map_find(&ck->pairs, key);
        if (!p) {
            rep->unknown++;
            hq_ck_problem(rep, "request for unproduced pair %s -> %s", id, x->e->id);
            continue;
        }
        rep->requests++;
        p->attempts++;
        if (q->status >= 200 && q->status < 300)
            p->ok++;
        else
            rep->failed_attempts++;
    }
    pthread_mutex_unlock(&rcv->mu);
}

/* Reads partition part's dead-letter stream. */
static void hq_ck_scan_dead(struct hq_ck *ck, redisContext *c, unsigned part,
                            struct hq_ck_report *rep)
{
    char key[HQ_KEY_MAX];
    assert_true(hq_key_dead(hq_tl_base(ck->tl, ck->prefix, part), key, sizeof(key)) >= 0);
    c = hq_tl_node(ck->tl, c, part);
    char from[64] = "-";
    for (;;) {
        redisReply *r = redisCommand(c, "XRANGE %s %s + COUNT 1000", key, from);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            if (r)
                freeReplyObject(r);
            return;
        }
        size_t n = r->elements;
        for (size_t i = 0; i < n; i++) {
            redisReply *ent = r->element[i];
            redisReply *f = ent->element[1];
            const char *ev = "", *ep = "";
            for (size_t j = 0; j + 1 < f->elements; j += 2) {
                if (strcmp(f->element[j]->str, "event_id") == 0)
                    ev = f->element[j + 1]->str;
                else if (strcmp(f->element[j]->str, "endpoint_id") == 0)
                    ep = f->element[j + 1]->str;
            }
            rep->dead_total++;
            char pk[HQ_CK_KEY_MAX];
            hq_ck_pair_key(pk, ev, ep);
            struct hq_ck_pair *p = hq_ck_map_find(&ck->pairs, pk);
            if (!p) {
                rep->unknown++;
                hq_ck_problem(rep, "dead letter for unproduced pair %s -> %s", ev, ep);
                continue;
            }
            p->dead++;
            if (p->part != part) { /* a dead letter stays in its event's partition */
                rep->dead_wrong_part++;
                hq_ck_problem(rep, "dead letter of %s in another partition (%s)", ev, key);
            }
        }
        if (n > 0) /* the next page starts after the last id ("(" = exclusive) */
            snprintf(from, sizeof(from), "(%s", r->element[n - 1]->element[0]->str);
        freeReplyObject(r);
        if (n < 1000)
            return;
    }
}

void hq_ck_collect(struct hq_ck *ck, redisContext *c, int verify, struct hq_ck_report *rep)
{
    memset(rep, 0, sizeof(*rep));
    for (size_t i = 0; i < ck->pairs.cap; i++) {
        struct hq_ck_pair *p = &ck->pairs.slots[i];
        p->ok = p->attempts = p->dead = 0;
    }
    for (int k = 0; k < ck->neps; k++) {
        int seen = 0;
        for (int j = 0; j < k; j++)
            seen |= ck->eps[j].rcv == ck->eps[k].rcv;
        if (!seen)
            hq_ck_scan_receiver(ck, ck->eps[k].rcv, verify, rep);
    }
    for (unsigned i = 0; i < hq_tl_nparts(ck->tl); i++)
        hq_ck_scan_dead(ck, c, i, rep);
    for (size_t i = 0; i < ck->pairs.cap; i++) {
        struct hq_ck_pair *p = &ck->pairs.slots[i];
        if (!p->key)
            continue;
        rep->pairs++;
        if (p->ok)
            rep->delivered++;
        if (p->ok > 1)
            rep->dups += (size_t)p->ok - 1;
        if (p->attempts > rep->max_attempts)
            rep->max_attempts = p->attempts;
        if (p->dead) {
            rep->dead++;
            if (p->dead > 1)
                rep->dead_twice++;
            if (!p->expect_dead)
                rep->dead_unexpected++;
        } else if (p->expect_dead) {
            rep->dead_missing++;
        }
        if (!p->ok && !p->dead) {
            rep->lost++;
            if (!rep->first_lost[0]) {
                snprintf(rep->first_lost, sizeof(rep->first_lost), "%s", p->key);
                char *sep = strchr(rep->first_lost, '\x1f');
                if (sep)
                    *sep = ' ';
            }
        }
    }
    rep->pending = hq_tl_pending(ck->tl, c, ck->prefix);
    rep->retry = hq_tl_sum(ck->tl, c, ck->prefix, "ZCARD", hq_key_retry);
    rep->retry_data = hq_tl_sum(ck->tl, c, ck->prefix, "HLEN", hq_key_retry_data);
    rep->dup_bound = ck->dup_bound;
    if (verify && ck->tl && ck->tl->kind != HQ_TL_P1) {
        rep->layout_checked = 1;
        rep->parts_used = hq_tl_parts_used(ck->tl, c, ck->prefix, &rep->nodes_used);
        rep->untagged_keys = hq_tl_untagged_keys(ck->tl, c, ck->prefix);
    }
}

void hq_ck_print(const struct hq_ck_report *rep, const char *label)
{
    print_message(
        "[%s] pairs=%zu delivered=%zu dead=%zu lost=%zu dups=%zu (bound %lld) requests=%zu failed=%zu max_attempts=%d bad_sig=%zu no_headers=%zu unknown=%zu dead_unexpected=%zu dead_missing=%zu dead_twice=%zu pending=%lld retry=%lld retry_data=%lld%s%s%s%s\n",
        label, rep->pairs, rep->delivered, rep->dead, rep->lost, rep->dups, rep->dup_bound,
        rep->requests, rep->failed_attempts, rep->max_attempts, rep->bad_sig, rep->no_headers,
        rep->unknown, rep->dead_unexpected, rep->dead_missing, rep->dead_twice, rep->pending,
        rep->retry, rep->retry_data, rep->first_lost[0] ? " first_lost=" : "", rep->first_lost,
        rep->problem[0] ? " problem: " : "", rep->problem);
    if (rep->layout_checked) /* only tagged runs: the untagged line stays as it was */
        print_message("[%s] layout: %u partition streams on %u nodes received entries, %d untagged "
                      "keys, %zu dead letters in a wrong partition\n",
                      label, rep->parts_used, rep->nodes_used, rep->untagged_keys,
                      rep->dead_wrong_part);
}

/* Settled: nothing lost, nothing pending, nothing waiting to be retried. */
static int hq_ck_settled(const struct hq_ck_report *rep)
{
    return rep->lost == 0 && rep->pending == 0 && rep->retry <= 0 && rep->retry_data <= 0;
}

static int hq_ck_settled_pred(void *arg)
{
    struct hq_ck_wait_arg *a = arg;
    hq_ck_collect(a->ck, a->c, 0, &a->rep);
    if (hq_ck_settled(&a->rep))
        return 1;
    struct timespec ts = {0, HQ_CK_POLL_MS * 1000000L};
    nanosleep(&ts, NULL); /* pacing of a full collect, not an assertion */
    return 0;
}

int hq_ck_wait_settled(struct hq_ck *ck, redisContext *c, int timeout_ms)
{
    struct hq_ck_wait_arg a = {ck, c, {0}};
    if (hq_test_wait(hq_ck_settled_pred, &a, timeout_ms))
        return 1;
    hq_ck_print(&a.rep, "not settled");
    return 0;
}

/* 1 when a tagged run did not really run tagged. By the kind asked for
 * (HQ_TEST_LAYOUT), not by the layout in hand: a fixture that fell back to
 * untagged names must fail, not skip the check. */
static int hq_ck_layout_bad(const struct hq_ck *ck, const struct hq_ck_report *rep)
{
    const struct hq_tl *t = ck->tl;
    if (!t || t->kind == HQ_TL_P1)
        return 0;
    if (!rep->layout_checked)
        fail_msg("checker: a tagged layout's report must come from hq_ck_collect(verify = 1)");
    /* P partitions as asked, more than one stream fed (on every primary of a
     * cluster), nothing untagged. */
    return !t->L.tagged || t->L.nparts != hq_tl_parts_of(t->kind) || rep->parts_used < 2 ||
           rep->untagged_keys != 0 || rep->nodes_used < hq_tl_nodes_want(t);
}

void hq_ck_assert_layout(const struct hq_ck *ck, const struct hq_ck_report *rep)
{
    if (hq_ck_layout_bad(ck, rep)) {
        hq_ck_print(rep, "checker FAILED");
        fail_msg("checker: the run did not use its %s layout (see the line above)",
                 hq_tl_kind_name(ck->tl->kind));
    }
}

void hq_ck_assert(const struct hq_ck *ck, const struct hq_ck_report *rep)
{
    int layout_bad = hq_ck_layout_bad(ck, rep);
    int bad = rep->lost || (long long)rep->dups > rep->dup_bound || rep->bad_sig ||
              rep->no_headers || rep->unknown || rep->dead_unexpected || rep->dead_missing ||
              rep->dead_twice || rep->dead_wrong_part || rep->pending || rep->retry > 0 ||
              rep->retry_data > 0 || layout_bad;
    if (bad) {
        hq_ck_print(rep, "checker FAILED");
        fail_msg("checker: invariants broken (see the line above)");
    }
}

void hq_ck_outcomes(struct hq_ck *ck, redisContext *c, struct hq_ck_outcomes *o)
{
    memset(o, 0, sizeof(*o));
    struct hq_ck_map seen = {0};
    redisContext *c0 = c;
    /* A pipeline goes to one node: one pass per partition, over its events. */
    for (unsigned part = 0; part < hq_tl_nparts(ck->tl); part++) {
        c = hq_tl_node(ck->tl, c0, part);
        const char *base = hq_tl_base(ck->tl, ck->prefix, part);
        char sha[41], index[HQ_KEY_MAX], keep[12];
        hq_script_sha1(hq_script_attempts_read, sha);
        freeReplyObject(hq_test_cmd(c, "SCRIPT LOAD %s", hq_script_attempts_read));
        assert_true(hq_key_attempt_index(base, index, sizeof(index)) >= 0);
        snprintf(keep, sizeof(keep), "%d", HQ_ATTEMPTS_KEPT_MAX);
        size_t i = 0;
        while (i < ck->pairs.cap) {
            int sent = 0;
            for (; i < ck->pairs.cap && sent < 500; i++) {
                const char *k = ck->pairs.slots[i].key;
                if (!k || ck->pairs.slots[i].part != part)
                    continue;
                char ev[HQ_CK_KEY_MAX], key[HQ_KEY_MAX];
                snprintf(ev, sizeof(ev), "%s", k);
                *strchr(ev, '\x1f') = '\0';
                if (hq_ck_map_find(&seen, ev))
                    continue;
                hq_ck_map_put(&seen, ev);
                /* attempts_read.lua, as hq_attempts_read (pipelined here) */
                assert_true(hq_key_attempts(base, ev, key, sizeof(key)) >= 0);
                redisAppendCommand(c, "EVALSHA %s 2 %s %s %s %s", sha, key, index, ev, keep);
                sent++;
            }
            for (int j = 0; j < sent; j++) {
                redisReply *r = NULL;
                if (redisGetReply(c, (void **)&r) != REDIS_OK || !r)
                    fail_msg("checker: reading attempt records failed: %s", c->errstr);
                for (size_t k = 0; r->type == REDIS_REPLY_ARRAY && k < r->elements; k++) {
                    const char *js = r->element[k]->str;
                    o->records++;
                    if (strstr(js, "\"outcome\":\"delivered\""))
                        o->delivered++;
                    else if (strstr(js, "\"outcome\":\"retry\""))
                        o->retry++;
                    else if (strstr(js, "\"outcome\":\"deferred\""))
                        o->deferred++;
                    else if (strstr(js, "\"outcome\":\"dead\""))
                        o->dead++;
                    else
                        o->other++;
                }
                freeReplyObject(r);
            }
        }
    }
    hq_ck_map_free(&seen);
}

int hq_ck_proc_sample(pid_t pid, struct hq_ck_proc *s)
{
    s->rss_kb = hq_test_proc_rss_kb(pid);
    s->fds = hq_test_proc_fds(pid);
    if (s->fds < 0) {
        s->fds = 0;
        return -1;
    }
    return s->rss_kb >= 0 ? 0 : -1;
}

int hq_ck_proc_back(const struct hq_ck_proc *base, const struct hq_ck_proc *now, int rss_pct,
                    int fd_slack, char *why, size_t n)
{
    if (rss_pct >= 0 && now->rss_kb > base->rss_kb + base->rss_kb * rss_pct / 100) {
        snprintf(why, n, "rss %ld KiB > baseline %ld KiB + %d%%", now->rss_kb, base->rss_kb,
                 rss_pct);
        return -1;
    }
    if (now->fds > base->fds + fd_slack) {
        snprintf(why, n, "fds %d > baseline %d + %d", now->fds, base->fds, fd_slack);
        return -1;
    }
    why[0] = '\0';
    return 0;
}

int hq_ck_proc_wait_back(pid_t pid, const struct hq_ck_proc *base, struct hq_ck_proc *now,
                         int rss_pct, int fd_slack, int timeout_ms, char *why, size_t n)
{
    int64_t until = hq_test_now_ms() + timeout_ms;
    for (;;) {
        if (hq_ck_proc_sample(pid, now) != 0) {
            snprintf(why, n, "process %d is gone", (int)pid);
            return -1;
        }
        if (hq_ck_proc_back(base, now, rss_pct, fd_slack, why, n) == 0)
            return 0;
        if (hq_test_now_ms() > until)
            return -1;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL); /* polling a condition, bounded above */
    }
}

int hq_ck_redis_clients(redisContext *c)
{
    redisReply *r = redisCommand(c, "CLIENT LIST");
    int n = 0;
    if (r && r->type == REDIS_REPLY_STRING)
        for (const char *p = r->str; (p = strchr(p, '\n')); p++)
            n++;
    if (r)
        freeReplyObject(r);
    return n;
}
