/* Recording outcomes, durable before acknowledged. Each finished delivery
 * appends an op to its entry (an attempt record, a retry, a dead letter);
 * when an entry has no delivery left it joins the ready queue, and once per
 * loop turn (uv_prepare, Redis' beforeSleep) up to HQ_OUTCOME_BATCH_MAX ready
 * entries are recorded by ONE record_outcomes.lua call on the writer, which
 * fences on ownership and only then XACKs and XDELs. A NULL or error reply
 * acknowledges nothing: the batch goes back to the queue and is retried after
 * a capped backoff (harmless thanks to the fence). Op format:
 * docs/internals/outcomes.md. */
#include "worker/internal.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"

#define FLUSHES_IN_FLIGHT_MAX 4 /* pipelined record calls: bounds memory and Redis' queue */
#define FLUSH_BACKOFF_MAX_MS  5000
#define FENCE_RANGE_SLACK     32 /* entries of ours in a fence range beyond twice the batch */

static int pack_write(void *data, const char *buf, size_t len)
{
    return hq_buf_append(data, buf, len) == 0 ? 0 : -1;
}

static void pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_cstr(msgpack_packer *pk, const char *s)
{
    pack_str(pk, s, strlen(s));
}

static void pack_kv(msgpack_packer *pk, const char *k, const char *v, size_t n)
{
    pack_cstr(pk, k);
    pack_str(pk, v, n);
}

static void pack_kint(msgpack_packer *pk, const char *k, int64_t v)
{
    pack_cstr(pk, k);
    msgpack_pack_int64(pk, v);
}

/* The attempt record: one JSON object (docs/internals/redis-layout.md). */
#define LIT(b, s) hq_buf_append(b, s, sizeof(s) - 1)

/* The attempt record, one per attempt and so one per delivery: built with
 * appends, not printf, which cost more than the rest of the outcome here. */
static void attempt_json(struct hq_buf *b, const struct hq_attempt *a, const char *outcome)
{
    int rc = LIT(b, "{\"endpoint_id\":");
    rc |= hq_buf_json_str(b, a->endpoint_id, strlen(a->endpoint_id));
    rc |= LIT(b, ",\"attempt\":");
    rc |= hq_buf_i64(b, a->attempt);
    rc |= LIT(b, ",\"at_ms\":");
    rc |= hq_buf_i64(b, a->at_ms);
    rc |= LIT(b, ",\"duration_ms\":");
    rc |= hq_buf_i64(b, a->duration_ms);
    rc |= LIT(b, ",\"status\":");
    rc |= hq_buf_i64(b, a->status);
    rc |= LIT(b, ",\"outcome\":\"");
    rc |= hq_buf_append(b, outcome, strlen(outcome)); /* one of ours, nothing to escape */
    rc |= LIT(b, "\",\"error\":");
    rc |= hq_buf_json_str(b, a->error, strlen(a->error));
    rc |= LIT(b, ",\"response\":");
    rc |= hq_buf_json_str(b, a->resp, a->resp_len);
    rc |= LIT(b, "}");
    (void)rc; /* the buffer's bound (HQ_RESP_KEEP_MAX escaped) is never hit */
}

/* Appends one script argument to the entry's outcome buffer (a 4-byte length,
 * then the bytes; flush_one points the call's argv at them). */
static void arg(struct hq_entry *e, const char *s, size_t n)
{
    uint32_t len = (uint32_t)n;
    if (hq_buf_append(&e->ops, &len, 4) != 0 || hq_buf_append(&e->ops, s, n) != 0) {
        hq_log(HQ_LOG_ERROR, "outcome", "entry %s: outcome buffer full", e->id);
        abort(); /* a bound we set far above any real entry: a bug, not input */
    }
    e->nargs++;
}

static void arg_str(struct hq_entry *e, const char *s)
{
    arg(e, s, strlen(s));
}

static void arg_dec(struct hq_entry *e, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%lld", (long long)v);
    arg(e, num, (size_t)n);
}

static void arg_kv(struct hq_entry *e, const char *k, const char *v, size_t n)
{
    arg_str(e, k);
    arg(e, v, n);
}

static void arg_kdec(struct hq_entry *e, const char *k, int64_t v)
{
    arg_str(e, k);
    arg_dec(e, v);
}

void hq__outcome_add(struct hq_worker *w, struct hq_entry *e, enum hq_outcome_kind kind,
                     const struct hq_attempt *a, const char *endpoint_id, const char *url,
                     int failed_attempts, int64_t due_ms, const char *dead_reason)
{
    static const char *names[] = {"delivered", "retry", "dead", "deferred"};
    int64_t now = hq__now_ms();
    if (!e->first_ms)
        e->first_ms = a ? a->at_ms : now;
    url = url ? url : "";

    /* One op. A delivery (most of them): "a", event id, attempt record.
     * Anything else: "f", event id and attempt record (or "" ""), retry
     * member, due and data (or "" "0" ""), then the dead-letter field count
     * and fields. */
    if (kind == HQ_OUT_DELIVERED && a) {
        struct hq_buf *att = &w->att_json;
        hq_buf_reset(att);
        attempt_json(att, a, names[kind]);
        arg(e, "a", 1);
        arg_str(e, e->event_id);
        arg(e, att->p, att->len);
        return;
    }
    arg(e, "f", 1);
    if (a) {
        struct hq_buf *att = &w->att_json;
        hq_buf_reset(att);
        attempt_json(att, a, names[kind]);
        arg_str(e, e->event_id);
        arg(e, att->p, att->len);
    } else {
        arg(e, "", 0);
        arg(e, "", 0);
    }
    if (kind == HQ_OUT_RETRY || kind == HQ_OUT_DEFERRED) {
        /* Member unique per (endpoint, event, attempt): identical payloads never collapse. */
        char member[HQ_ENDPOINT_ID_MAX + HQ_ID_MAX + 24];
        snprintf(member, sizeof(member), "%s/%s/%d", endpoint_id, e->event_id, failed_attempts);
        arg_str(e, member);
        arg_dec(e, due_ms);
        /* Retry data: a msgpack map (docs/internals/redis-layout.md). */
        struct hq_buf data;
        hq_buf_init(&data, (size_t)w->cfg->max_payload + 64 * 1024);
        msgpack_packer dp;
        msgpack_packer_init(&dp, &data, pack_write);
        msgpack_pack_map(&dp, 11);
        pack_kv(&dp, "type", e->ev.type, e->ev.type_len);
        pack_kv(&dp, "payload", e->ev.payload, e->ev.payload_len);
        pack_kv(&dp, "id", e->event_id, strlen(e->event_id));
        pack_kv(&dp, "endpoint", endpoint_id, strlen(endpoint_id));
        pack_kint(&dp, "attempt", failed_attempts);
        pack_kint(&dp, "first_ms", e->first_ms);
        pack_kint(&dp, "last_ms", a ? a->at_ms : now);
        pack_kint(&dp, "last_status", a ? a->status : 0);
        pack_kv(&dp, "last_error", a ? a->error : "", a ? strlen(a->error) : 0);
        pack_kv(&dp, "url", url, strlen(url));
        pack_kint(&dp, "deferred", kind == HQ_OUT_DEFERRED);
        arg(e, data.p, data.len);
        hq_buf_free(&data);
    } else {
        arg(e, "", 0);
        arg(e, "0", 1);
        arg(e, "", 0);
    }
    if (kind == HQ_OUT_DEAD) {
        arg_dec(e, 22);
        arg_kv(e, "event_id", e->event_id, strlen(e->event_id));
        arg_kv(e, "type", e->ev.type, e->ev.type_len);
        arg_kv(e, "endpoint_id", endpoint_id, strlen(endpoint_id));
        arg_kv(e, "url", url, strlen(url));
        arg_kdec(e, "attempts", failed_attempts);
        arg_kdec(e, "last_status", a ? a->status : 0);
        arg_kv(e, "last_error", a ? a->error : "", a ? strlen(a->error) : 0);
        arg_kdec(e, "first_attempt_ms", a ? e->first_ms : (e->ev.first_ms ? e->ev.first_ms : 0));
        arg_kdec(e, "last_attempt_ms", a ? a->at_ms : 0);
        arg_kv(e, "reason", dead_reason, strlen(dead_reason));
        arg_kv(e, "payload", e->ev.payload, e->ev.payload_len);
    } else {
        arg(e, "0", 1);
    }
}

void hq__outcome_add_invalid(struct hq_worker *w, struct hq_entry *e)
{
    /* Raw fields: NUL-separated name/value pairs kept by the consumer. */
    int nraw = 0;
    for (size_t i = 0; i < e->raw.len; i++)
        nraw += e->raw.p[i] == '\0';
    nraw /= 2;
    arg(e, "f", 1);
    arg(e, "", 0);
    arg(e, "", 0);
    arg(e, "", 0);
    arg(e, "0", 1);
    arg(e, "", 0);
    arg_dec(e, 22 + nraw * 2);
    char reason[300];
    snprintf(reason, sizeof(reason), "invalid: %s", e->invalid);
    int64_t now = hq__now_ms();
    arg_kv(e, "event_id", e->event_id, strlen(e->event_id));
    arg_kv(e, "type", "", 0);
    arg_kv(e, "endpoint_id", "", 0);
    arg_kv(e, "url", "", 0);
    arg_kv(e, "attempts", "0", 1);
    arg_kv(e, "last_status", "0", 1);
    arg_kv(e, "last_error", "", 0);
    arg_kdec(e, "first_attempt_ms", now);
    arg_kdec(e, "last_attempt_ms", now);
    arg_kv(e, "reason", reason, strlen(reason));
    arg_kv(e, "payload", "", 0);
    const char *p = e->raw.p;
    for (int i = 0; i < nraw * 2; i++) {
        size_t n = strlen(p);
        arg(e, p, n);
        p += n + 1;
    }
    atomic_fetch_add_explicit(&w->metrics.deliveries[HQ_MO_DEAD], 1, memory_order_relaxed);
    e->remaining = 1;
    hq__outcome_delivery_finished(w, e);
}

/* ---- Ready queue and flushing ------------------------------------------------------- */

static void ready_push(struct hq_worker *w, struct hq_entry *e)
{
    e->qnext = NULL;
    if (w->ready_tail)
        w->ready_tail->qnext = e;
    else
        w->ready_head = e;
    w->ready_tail = e;
}

void hq__outcome_delivery_finished(struct hq_worker *w, struct hq_entry *e)
{
    if (--e->remaining > 0)
        return;
    hq__entry_set_state(w, e, HQ_ENTRY_READY);
    ready_push(w, e);
}

void hq__outcome_init(struct hq_worker *w)
{
    w->ready_head = w->ready_tail = NULL;
}

struct flush {
    struct hq_worker *w;
    int n;
    struct hq_entry *entries[HQ_OUTCOME_BATCH_MAX];
};

static void on_flush_reply(struct hq_redis_client *c, redisReply *r, void *arg)
{
    (void)c;
    struct flush *f = arg;
    struct hq_worker *w = f->w;
    w->flushing--;
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == (size_t)f->n;
    if (!ok) {
        /* Nothing is acknowledged: put the batch back in front, retry after a pause. */
        const char *why = !r                             ? "no reply (connection lost or deadline)"
                          : r->type == REDIS_REPLY_ERROR ? r->str
                                                         : "unexpected reply";
        hq_log(HQ_LOG_ERROR, "outcome", "recording %d outcomes failed: %s; nothing acknowledged",
               f->n, why);
        for (int i = f->n - 1; i >= 0; i--) {
            struct hq_entry *e = f->entries[i];
            hq__entry_set_state(w, e, HQ_ENTRY_READY);
            e->qnext = w->ready_head;
            w->ready_head = e;
            if (!w->ready_tail)
                w->ready_tail = e;
        }
        /* Several calls in flight fail together when a connection drops: back
         * off once per round, not once per call. */
        int64_t now = hq__now_ms();
        if (now >= w->flush_retry_at_ms) {
            w->flush_retry_at_ms = now + w->flush_backoff_ms;
            w->flush_backoff_ms *= 2;
            if (w->flush_backoff_ms > FLUSH_BACKOFF_MAX_MS)
                w->flush_backoff_ms = FLUSH_BACKOFF_MAX_MS;
        }
        free(f);
        return;
    }
    w->flush_backoff_ms = 100;
    w->flush_retry_at_ms = 0;
    for (int i = 0; i < f->n; i++) {
        redisReply *x = r->element[i];
        if (x->type == REDIS_REPLY_INTEGER && x->integer == 1) {
            atomic_fetch_add_explicit(&w->metrics.events_acked, 1, memory_order_relaxed);
        } else {
            atomic_fetch_add_explicit(&w->metrics.fenced, 1, memory_order_relaxed);
            hq_log(HQ_LOG_WARN, "outcome",
                   "entry %s was reclaimed by another worker before its outcome was recorded: "
                   "its outcome was dropped (the other worker delivers it)",
                   f->entries[i]->id);
        }
        hq__entry_free(w, f->entries[i]);
    }
    free(f);
    hq__worker_capacity_changed(w);
    hq__worker_maybe_done(w);
}

/* The fence of one flush in a single XPENDING: when this worker's own entries
 * between the batch's lowest and highest id are few (completions come roughly
 * in id order, so usually about the batch itself), the script asks Redis once
 * for this consumer's pending entries in that range instead of once per entry.
 * Fills min/max/count (decimal strings) and returns 1, or returns 0 to keep
 * the per-entry check: the range would hold many entries not in the batch. The
 * count has a margin; the script falls back to per-entry checks when the reply
 * fills it, so a wrong guess costs time, never correctness. */
static int fence_range(const struct hq_worker *w, const struct flush *f, char *min, char *max,
                       char *count, size_t n)
{
    struct hq_sid lo = {0, 0}, hi = {0, 0};
    if (f->n == 0)
        return 0;
    for (int k = 0; k < f->n; k++) {
        const struct hq_entry *e = f->entries[k];
        if (!e->sid_ok)
            return 0;
        if (k == 0 || hq__sid_cmp(&e->sid, &lo) < 0)
            lo = e->sid;
        if (k == 0 || hq__sid_cmp(&e->sid, &hi) > 0)
            hi = e->sid;
    }
    long held = 0;
    for (const struct hq_entry *e = w->entries.next; e != &w->entries; e = e->next)
        held += !e->sid_ok || (hq__sid_cmp(&e->sid, &lo) >= 0 && hq__sid_cmp(&e->sid, &hi) <= 0);
    if (held > 2L * f->n + FENCE_RANGE_SLACK)
        return 0;
    snprintf(min, n, "%llu-%llu", lo.ms, lo.seq);
    snprintf(max, n, "%llu-%llu", hi.ms, hi.seq);
    snprintf(count, n, "%ld", held + FENCE_RANGE_SLACK);
    return 1;
}

static int flush_one(struct hq_worker *w)
{
    struct flush *f = hq_calloc(1, sizeof(*f));
    f->w = w;
    size_t argc = 9;
    for (struct hq_entry *e = w->ready_head; e && f->n < HQ_OUTCOME_BATCH_MAX; e = e->qnext) {
        f->entries[f->n++] = e;
        argc += 2 + (size_t)e->nargs;
    }
    char rmin[48] = "", rmax[48] = "", rcount[48] = "0"; /* two 20-digit numbers and a dash fit */
    fence_range(w, f, rmin, rmax, rcount, sizeof(rmin));
    const char **argv = hq_malloc(sizeof(char *) * (argc + 4));
    size_t *lens = hq_malloc(sizeof(size_t) * (argc + 4));
    char(*counts)[12] = hq_malloc(sizeof(*counts) * (size_t)f->n);
    char ttl[24], keep[12], maxlen[24];
    snprintf(ttl, sizeof(ttl), "%lld", w->cfg->attempt_ttl_ms);
    snprintf(keep, sizeof(keep), "%d", HQ_ATTEMPTS_KEPT_MAX);
    snprintf(maxlen, sizeof(maxlen), "%lld", w->cfg->dead_maxlen);
    size_t i = 0;
    const char *keys[] = {w->key_events, w->key_retry, w->key_retry_data, w->key_dead};
    for (int k = 0; k < 4; k++, i++) {
        argv[i] = keys[k];
        lens[i] = strlen(keys[k]);
    }
    const char *fixed[] = {
        HQ_GROUP, w->cfg->consumer, ttl, keep, w->key_att_prefix, maxlen, rmin, rmax, rcount};
    for (int k = 0; k < 9; k++, i++) {
        argv[i] = fixed[k];
        lens[i] = strlen(fixed[k]);
    }
    for (int k = 0; k < f->n; k++) {
        struct hq_entry *e = f->entries[k];
        argv[i] = e->id;
        lens[i++] = strlen(e->id);
        snprintf(counts[k], sizeof(counts[k]), "%d", e->nargs);
        argv[i] = counts[k];
        lens[i++] = strlen(counts[k]);
        size_t off = 0;
        for (int o = 0; o < e->nargs; o++) {
            uint32_t len;
            memcpy(&len, e->ops.p + off, 4);
            argv[i] = e->ops.p + off + 4;
            lens[i++] = len;
            off += 4 + len;
        }
    }
    int rc = hq_redis_client_script(w->writer, &w->record_script, on_flush_reply, f, 4, (int)i,
                                    argv, lens);
    free(argv);
    free(lens);
    free(counts);
    if (rc != 0) {
        free(f);
        return -1;
    }
    w->flushing++;
    /* Detach the batch from the ready queue. */
    for (int k = 0; k < f->n; k++) {
        hq__entry_set_state(w, f->entries[k], HQ_ENTRY_FLUSHING);
        w->ready_head = f->entries[k]->qnext;
    }
    if (!w->ready_head)
        w->ready_tail = NULL;
    return 0;
}

void hq__outcome_flush(struct hq_worker *w)
{
    if (w->stopping || !w->writer || !hq_redis_client_ready(w->writer))
        return;
    if (w->flush_retry_at_ms && hq__now_ms() < w->flush_retry_at_ms)
        return;
    while (w->ready_head && w->flushing < FLUSHES_IN_FLIGHT_MAX) {
        if (flush_one(w) != 0)
            return;
    }
}
