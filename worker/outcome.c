/* Outcomes: deciding and recording them, durable before acknowledged. This
 * file decides what follows an attempt (delivered; retry after the backoff;
 * dead when blocked or exhausted), a deferral or a missing endpoint, and
 * counts each decision (hookq_deliveries_total). Each finished delivery
 * appends an op to its entry (outcome_ops.c encodes it: an attempt record, a
 * retry, a dead letter);
 * when an entry has no delivery left it joins its partition's ready queue, and
 * once per loop turn (uv_prepare, Redis' beforeSleep) up to
 * HQ_OUTCOME_BATCH_MAX ready entries of one partition are recorded by ONE
 * record_outcomes.lua call on the writer (to the partition's node), which
 * fences on ownership and only then XACKs and XDELs. A NULL or error reply
 * acknowledges nothing: the batch goes back to the queue and is retried after
 * a capped backoff (harmless thanks to the fence). Op format:
 * docs/internals/outcomes.md. */
#include "worker/internal.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/backoff.h"
#include "common/json_check.h"
#include "common/log.h"
#include "common/scripts.h"

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
    if (a->batch_id) {
        rc |= LIT(b, ",\"batch_id\":");
        rc |= hq_buf_json_str(b, a->batch_id, strlen(a->batch_id));
    }
    rc |= LIT(b, "}");
    (void)rc; /* the buffer's bound (HQ_RESP_KEEP_MAX escaped) is never hit */
}

/* w's attempt record of a with outcome kind, in w->outcomes.att_json: built,
 * or kept as it is when it was last built for the same attempt of a batch
 * (a->same_gen: its members share the leader's record, one build per batch). */
static struct hq_buf *att_record(struct hq_worker *w, const struct hq_attempt *a,
                                 enum hq_metric_outcome kind)
{
    struct hq_outcomes *o = &w->outcomes;
    if (a->same_gen && a->same_gen == o->att_gen && o->att_kind == (int)kind)
        return &o->att_json;
    hq_buf_reset(&o->att_json);
    attempt_json(&o->att_json, a, hq_metrics_outcome_names[kind]);
    o->att_gen++;
    o->att_kind = (int)kind;
    return &o->att_json;
}

/* Appends one op to e (a bound far above any real entry: hitting it is a bug). */
static void ops_check(const struct hq_entry *e, int rc)
{
    if (hq_unlikely(rc != 0))
        hq_panic("entry %s: outcome buffer full (%zu bytes)", e->id, e->ops.buf.len);
}

static inline uint64_t jitter_rand(struct hq_outcomes *o)
{
    /* xorshift64*: jitter only, not security. */
    uint64_t x = o->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    o->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Counts the other n - 1 members of a batch retried whole; n (0: none). */
static int count_more(struct hq_worker *w, enum hq_metric_outcome kind, int n)
{
    if (n > 1)
        atomic_fetch_add_explicit(&w->metrics.deliveries[kind], (unsigned long)(n - 1),
                                  memory_order_relaxed);
    return n;
}

/* The item data an ordered and batched endpoint's line builds its batches
 * from (lines_claim.lua): the setting then (bmax, bbytes), whether the
 * payload is JSON (else base64 in the body) and the element's timestamp. */
static void pack_line_batch(msgpack_packer *dp, const struct hq_entry *e,
                            const struct hq_batch_cfg *b)
{
    pack_kint(dp, "bmax", b->max);
    pack_kint(dp, "bbytes", b->bytes);
    pack_kint(dp, "json", hq_json_check(e->ev.payload, e->ev.payload_len));
    pack_kint(dp, "ts", e->ev.ts_ms ? e->ev.ts_ms : (int64_t)e->sid.ms);
}

/* The "o" op of an outcome that concerns a line (docs/ordering.md): the
 * parking of a fresh entry's pair for an ordered endpoint (PARKED), or the
 * outcome of a line's head (e->ev.line): kept while it is retried or
 * deferred, ended when delivered or dead. */
static int line_op(struct hq_worker *w, struct hq_entry *e, const char *endpoint_id,
                   enum hq_metric_outcome kind, const struct hq_full_op *op)
{
    char name[HQ_ENDPOINT_ID_MAX + HQ_ORDER_KEY_MAX + 2], item[48];
    snprintf(name, sizeof(name), "%s/%.*s", endpoint_id, (int)e->ev.key_len,
             e->ev.key ? e->ev.key : "");
    if (kind == HQ_MO_PARKED)
        snprintf(item, sizeof(item), "%015llu-%020llu", e->sid.ms, e->sid.seq);
    else
        snprintf(item, sizeof(item), "%.*s", (int)e->ev.line_len, e->ev.line);
    /* A head read from the retry lane that ended chains its line's next head
     * ("c": record_outcomes.lua's chain(), which sends it to that stream). */
    char end = w->parts[e->part].lane == HQ_LANE_RETRY ? 'c' : 'd';
    struct hq_line_ref ref = {
        .action = kind == HQ_MO_PARKED                            ? 'p'
                  : kind == HQ_MO_RETRY || kind == HQ_MO_DEFERRED ? 'k'
                                                                  : end,
        .index = w->parts[e->part].key_lines,
        .name = name,
        .item = item,
    };
    /* A batch of the line (lines_claim.lua): kept as the line's "#b" while it
     * is retried whole; ended with its members, the items up to its last. */
    if (hq_unlikely(e->ev.batch) && kind != HQ_MO_PARKED) {
        if (ref.action == 'k')
            ref.item = "#b";
        else
            ref.action = 'b';
    }
    e->lines = 1;
    return hq_ops_line(&e->ops, op, &ref);
}

/* Records one outcome of e for endpoint (endpoint_id, url): kind, the attempt
 * (NULL for outcomes without one: deferrals, dead endpoints), the failed
 * attempts so far, the due time of retries and deferrals, the dead reason.
 * Counted here, where it is decided. */
static void add(struct hq_worker *w, struct hq_entry *e, enum hq_metric_outcome kind,
                const struct hq_attempt *a, const char *endpoint_id, const char *url,
                const char *tenant, int failed_attempts, int64_t due_ms, const char *dead_reason)
{
    atomic_fetch_add_explicit(&w->metrics.deliveries[kind], 1, memory_order_relaxed);
    int64_t now = a ? a->done_ms : hq_now_ms();
    if (!e->first_ms)
        e->first_ms = a ? a->at_ms : now;
    url = url ? url : "";
    struct hq_buf *att = a ? att_record(w, a, kind) : &w->outcomes.att_json;
    /* A batch retried whole (batch_retry.c): each member gets the attempt
     * record too (and is counted), the batch's own stays. */
    if (hq_unlikely(e->ev.batch) && a && kind != HQ_MO_DEAD)
        count_more(w, kind, hq__batch_retry_records(e, att->p, att->len));
    /* An ordered line's ops ("o": docs/ordering.md); its deliveries are not retained. */
    int line = kind == HQ_MO_PARKED || e->ev.line;
    if (kind == HQ_MO_DELIVERED && a && !line && w->cfg->retain_ms > 0 &&
        !e->ev.batch) { /* kept for resend */
        struct hq_retained_op r = {
            .endpoint_id = endpoint_id,
            .type = e->ev.type,
            .type_len = e->ev.type_len,
            .payload = e->ev.payload,
            .payload_len = e->ev.payload_len,
            .tenant = e->ev.tenant,
            .tenant_len = e->ev.tenant_len,
            .status = a->status,
            .first_ms = e->first_ms,
            .ttl_ms = w->cfg->retain_ms,
            .max_bytes = w->cfg->retain_max_bytes / (long long)w->layout->nparts,
            .payload_again = e->retained,
        };
        ops_check(e, hq_ops_retained(&e->ops, e->event_id, att->p, att->len, &r));
        e->retained = 1;
        return;
    }
    if (kind == HQ_MO_DELIVERED && a && !line) { /* most ops: the short form */
        ops_check(e, hq_ops_delivered(&e->ops, e->event_id, att->p, att->len));
        return;
    }
    struct hq_full_op op = {0};
    if (a) {
        op.event_id = e->event_id;
        op.att = att->p;
        op.att_len = att->len;
    }
    /* Member unique per (endpoint, event, attempt): identical payloads never collapse. */
    char member[HQ_ENDPOINT_ID_MAX + HQ_ID_MAX + 24];
    struct hq_buf data = {0};
    if (kind == HQ_MO_RETRY || kind == HQ_MO_DEFERRED || kind == HQ_MO_PARKED) {
        snprintf(member, sizeof(member), "%s/%s/%d", endpoint_id, e->event_id, failed_attempts);
        op.retry_member = member;
        op.due_ms = due_ms;
        /* Retry data: a msgpack map (docs/internals/redis-layout.md). */
        hq_buf_init(&data, (size_t)w->cfg->max_payload + 64 * 1024);
        msgpack_packer dp;
        msgpack_packer_init(&dp, &data, pack_write);
        const struct hq_batch_cfg *pb =
            kind == HQ_MO_PARKED ? w->outcomes.parking_batch : NULL; /* hq__outcome_park */
        msgpack_pack_map(&dp, 11 + !!e->ev.tenant + !!e->ev.batch + (pb ? 4 : 0));
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
        pack_kint(&dp, "deferred", kind == HQ_MO_DEFERRED);
        if (e->ev.tenant) /* the event's: a retry stays within its tenant */
            pack_kv(&dp, "tenant", e->ev.tenant, e->ev.tenant_len);
        if (e->ev.batch) /* a batch retried whole: its members */
            pack_kv(&dp, "batch", e->ev.batch, e->ev.batch_len);
        if (pb) /* an ordered line's batches (lines_claim.lua builds them) */
            pack_line_batch(&dp, e, pb);
        op.retry_data = data.p;
        op.retry_data_len = data.len;
    }
    struct hq_dead_letter dl;
    if (kind == HQ_MO_DEAD) {
        dl = (struct hq_dead_letter){
            .event_id = e->event_id,
            .type = e->ev.type,
            .type_len = e->ev.type_len,
            .endpoint_id = endpoint_id,
            .url = url,
            .attempts = failed_attempts,
            .last_status = a ? a->status : 0,
            .last_error = a ? a->error : "",
            .first_attempt_ms = a ? e->first_ms : e->ev.first_ms,
            .last_attempt_ms = a ? a->at_ms : 0,
            .reason = dead_reason,
            .payload = e->ev.payload,
            .payload_len = e->ev.payload_len,
            .tenant = tenant && *tenant ? tenant : e->ev.tenant,
            .tenant_len = tenant && *tenant ? strlen(tenant) : e->ev.tenant_len,
            .batch_id = a ? a->batch_id : NULL,
        };
        op.dead = &dl;
        /* A dead batch: one dead letter per member, each replayable alone. */
        if (hq_unlikely(e->ev.batch) && count_more(w, kind, hq__batch_retry_split(e, &op))) {
            if (e->ev.line) /* an ordered line's batch: it ends (b), the line moves on */
                ops_check(e, line_op(w, e, endpoint_id, kind, &(struct hq_full_op){0}));
            return;
        }
    }
    ops_check(e, line ? line_op(w, e, endpoint_id, kind, &op) : hq_ops_full(&e->ops, &op));
    if (data.max)
        hq_buf_free(&data);
}

int64_t hq__outcome_retry_due(struct hq_worker *w, const struct hq_entry *e, const struct hq_ep *ep,
                              const struct hq_attempt *a)
{
    long long due = a->done_ms + hq_backoff_next_ms(&ep->policy, a->attempt, a->retry_after_ms,
                                                    jitter_rand(&w->outcomes));
    return hq_backoff_in_window(e->first_ms ? e->first_ms : a->at_ms, ep->e.retry_window_ms, due)
               ? (int64_t)due
               : -1;
}

void hq__outcome_record(struct hq_worker *w, struct hq_entry *e, const struct hq_attempt *a,
                        enum hq_metric_outcome kind)
{
    atomic_fetch_add_explicit(&w->metrics.deliveries[kind], 1, memory_order_relaxed);
    if (!e->first_ms)
        e->first_ms = a->at_ms;
    struct hq_buf *att = att_record(w, a, kind);
    ops_check(e, hq_ops_delivered(&e->ops, e->event_id, att->p, att->len));
}

void hq__outcome_retry_alone(struct hq_worker *w, struct hq_entry *e, const char *endpoint_id,
                             const char *url, const char *tenant, int failed, int64_t due_ms)
{
    add(w, e, HQ_MO_RETRY, NULL, endpoint_id, url, tenant, failed, due_ms, NULL);
}

int hq__outcome_attempt(struct hq_worker *w, struct hq_entry *e, const struct hq_ep *ep,
                        const struct hq_attempt *a)
{
    const char *t = ep->e.tenant;
    if (a->ok) {
        add(w, e, HQ_MO_DELIVERED, a, ep->id, ep->e.url, t, 0, 0, NULL);
        return 0;
    }
    /* The endpoint's policy (its overrides on the deployment's, resolved
     * when the endpoint was cached: dispatch.c ep_fill). */
    int failed = a->attempt, ended = 0;
    if (a->blocked) {
        /* Not retried: the address will not stop being internal. */
        char reason[200];
        snprintf(reason, sizeof(reason), "blocked: %s", a->blocked);
        add(w, e, HQ_MO_DEAD, a, ep->id, ep->e.url, t, failed, 0, reason);
    } else if (e->ev.line && ep->e.ordered == HQ_ORDERED_SKIP) {
        /* An ordered endpoint that skips: the line moves on at once. */
        add(w, e, HQ_MO_DEAD, a, ep->id, ep->e.url, t, failed, 0, "skipped: ordered");
    } else if (failed >= ep->policy.max_attempts) {
        add(w, e, HQ_MO_DEAD, a, ep->id, ep->e.url, t, failed, 0, "exhausted");
        ended = HQ_OUT_EXHAUSTED;
    } else {
        int64_t due = hq__outcome_retry_due(w, e, ep, a);
        if (due >= 0)
            add(w, e, HQ_MO_RETRY, a, ep->id, ep->e.url, t, failed, due, NULL);
        else {
            add(w, e, HQ_MO_DEAD, a, ep->id, ep->e.url, t, failed, 0, "retry_window_exceeded");
            ended = HQ_OUT_WINDOW;
        }
    }
    hq_log(HQ_LOG_DEBUG, "delivery", "event %s to %s failed (attempt %d): %s", e->event_id, ep->id,
           failed, a->error);
    return ended;
}

void hq__outcome_defer(struct hq_worker *w, struct hq_entry *e, const struct hq_ep *ep)
{
    /* 0.5x-1.5x of --defer, so a congested endpoint's backlog comes back spread out. */
    int64_t defer_ms = w->cfg->defer_ms;
    int64_t delay = defer_ms / 2 + (int64_t)(jitter_rand(&w->outcomes) % (uint64_t)(defer_ms + 1));
    hq__outcome_defer_until(w, e, ep, hq_now_ms() + delay);
}

void hq__outcome_defer_until(struct hq_worker *w, struct hq_entry *e, const struct hq_ep *ep,
                             int64_t due_ms)
{
    add(w, e, HQ_MO_DEFERRED, NULL, ep->id, ep->e.url, ep->e.tenant, e->ev.attempt, due_ms, NULL);
}

void hq__outcome_park(struct hq_worker *w, struct hq_entry *e, const struct hq_ep *ep)
{
    w->outcomes.parking_batch = ep->e.batch.max ? &ep->e.batch : NULL;
    add(w, e, HQ_MO_PARKED, NULL, ep->id, ep->e.url, ep->e.tenant, e->ev.attempt, 0, NULL);
    w->outcomes.parking_batch = NULL;
}

void hq__outcome_dead_endpoint(struct hq_worker *w, struct hq_entry *e, const char *endpoint_id,
                               const char *url, const char *tenant, const char *reason)
{
    add(w, e, HQ_MO_DEAD, NULL, endpoint_id, url, tenant, e->ev.attempt, 0, reason);
}

void hq__outcome_add_invalid(struct hq_worker *w, struct hq_entry *e)
{
    /* Raw fields: NUL-separated name/value pairs kept by the consumer. */
    int nraw = 0;
    for (size_t i = 0; i < e->raw.len; i++)
        nraw += e->raw.p[i] == '\0';
    char reason[300];
    snprintf(reason, sizeof(reason), "invalid: %s", e->invalid);
    int64_t now = hq_now_ms();
    struct hq_dead_letter dl = {
        .event_id = e->event_id,
        .first_attempt_ms = now,
        .last_attempt_ms = now,
        .reason = reason,
        .raw = e->raw.p,
        .nraw = nraw / 2,
    };
    struct hq_full_op op = {.dead = &dl};
    ops_check(e, hq_ops_full(&e->ops, &op));
    atomic_fetch_add_explicit(&w->metrics.deliveries[HQ_MO_DEAD], 1, memory_order_relaxed);
    e->remaining = 1;
    hq__outcome_delivery_finished(w, e);
}

void hq__outcome_duplicate(struct hq_worker *w, struct hq_entry *e, const char *counter_key)
{
    ops_check(e, hq_ops_duplicate(&e->ops, counter_key));
    atomic_fetch_add_explicit(&w->metrics.deliveries[HQ_MO_DUPLICATE], 1, memory_order_relaxed);
    e->remaining = 1;
    hq__outcome_delivery_finished(w, e);
}

/* ---- Ready queue and flushing ------------------------------------------------------- */

static void ready_push(struct hq_worker *w, struct hq_entry *e)
{
    struct hq_outcome_queue *q = &w->outcomes.q[e->part];
    e->ready_us = hq_mono_us();
    q->nready++;
    q->nlines += e->lines;
    e->qnext = NULL;
    if (q->ready_tail)
        q->ready_tail->qnext = e;
    else
        q->ready_head = e;
    q->ready_tail = e;
}

void hq__outcome_delivery_finished(struct hq_worker *w, struct hq_entry *e)
{
    if (--e->remaining > 0)
        return;
    hq__entry_set_state(&w->entries, e, HQ_ENTRY_READY);
    hq__entry_release_event(e); /* the ops carry what recording needs */
    ready_push(w, e);
}

void hq__outcome_init(struct hq_worker *w)
{
    struct hq_outcomes *o = &w->outcomes;
    o->q = hq_calloc(w->nparts, sizeof(*o->q));
    for (unsigned i = 0; i < w->nparts; i++)
        o->q[i].flush_backoff_ms = 100;
    o->rng = (uint64_t)hq_mono_us() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ULL;
    hq_redis_script_init(&o->record_script, hq_script_record_outcomes);
    hq_buf_init(&o->att_json, HQ_RESP_KEEP_MAX * 6 + 1024); /* 4 KiB escaped, plus the fields */
}

void hq__outcome_free(struct hq_worker *w)
{
    free(w->outcomes.q);
    w->outcomes.q = NULL;
    hq_buf_free(&w->outcomes.att_json);
}

struct flush {
    struct hq_worker *w;
    unsigned part;
    int n;
    struct hq_entry *entries[HQ_OUTCOME_BATCH_MAX];
};

static void on_flush_reply(struct hq_redis_client *c, redisReply *r, void *arg)
{
    (void)c;
    struct flush *f = arg;
    struct hq_worker *w = f->w;
    struct hq_outcome_queue *q = &w->outcomes.q[f->part];
    w->outcomes.flushing--;
    q->flushing--;
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == (size_t)f->n;
    if (!ok) {
        /* Nothing is acknowledged: put the batch back in front, retry after a pause. */
        const char *why = !r                             ? "no reply (connection lost or deadline)"
                          : r->type == REDIS_REPLY_ERROR ? r->str
                                                         : "unexpected reply";
        hq_log(HQ_LOG_ERROR, "outcome",
               "recording %d outcomes of %s failed: %s; nothing acknowledged", f->n,
               w->parts[f->part].key_events, why);
        for (int i = f->n - 1; i >= 0; i--) {
            struct hq_entry *e = f->entries[i];
            hq__entry_set_state(&w->entries, e, HQ_ENTRY_READY);
            e->qnext = q->ready_head;
            q->ready_head = e;
            if (!q->ready_tail)
                q->ready_tail = e;
            q->nready++;
            q->nlines += e->lines;
        }
        /* Several calls in flight fail together when a connection drops: back
         * off once per round, not once per call. Per partition: a shard that
         * is down does not hold back the others' acks. */
        int64_t now = hq_now_ms();
        if (now >= q->flush_retry_at_ms) {
            q->flush_retry_at_ms = now + q->flush_backoff_ms;
            q->flush_backoff_ms *= 2;
            if (q->flush_backoff_ms > FLUSH_BACKOFF_MAX_MS)
                q->flush_backoff_ms = FLUSH_BACKOFF_MAX_MS;
        }
        free(f);
        return;
    }
    q->flush_backoff_ms = 100;
    q->flush_retry_at_ms = 0;
    for (int i = 0; i < f->n; i++) {
        redisReply *x = r->element[i];
        /* 2: a line's next head was chained (no claim needed for it). */
        int chained = x->type == REDIS_REPLY_INTEGER && x->integer == 2;
        if (chained)
            atomic_fetch_add_explicit(&w->metrics.line_heads, 1, memory_order_relaxed);
        else if (f->entries[i]->lines)
            w->outcomes.lines_flushed++;
        if (x->type == REDIS_REPLY_INTEGER && (x->integer == 1 || chained)) {
            atomic_fetch_add_explicit(&w->metrics.events_acked, 1, memory_order_relaxed);
        } else {
            atomic_fetch_add_explicit(&w->metrics.fenced, 1, memory_order_relaxed);
            hq_log(
                HQ_LOG_WARN, "outcome",
                "entry %s was reclaimed by another worker before its outcome was recorded: its outcome was dropped (the other worker delivers it)",
                f->entries[i]->id);
        }
        hq__entry_free(&w->entries, f->entries[i]);
    }
    free(f);
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
        if (k == 0 || hq_sid_cmp(&e->sid, &lo) < 0)
            lo = e->sid;
        if (k == 0 || hq_sid_cmp(&e->sid, &hi) > 0)
            hi = e->sid;
    }
    /* Counting stops as soon as the range is known to be too wide: with
     * thousands of entries held and completions out of id order (slow
     * endpoints beside fast ones), a full walk per flush was 7 % of the
     * worker's CPU (bench/shapes.sh 10000x50). */
    long held = 0, limit = 2L * f->n + FENCE_RANGE_SLACK;
    for (const struct hq_entry *e = w->entries.head.next; e != &w->entries.head; e = e->next) {
        if (e->part != f->part)
            continue; /* another stream: its ids are not in this range */
        held += !e->sid_ok || (hq_sid_cmp(&e->sid, &lo) >= 0 && hq_sid_cmp(&e->sid, &hi) <= 0);
        if (held > limit)
            return 0;
    }
    snprintf(min, n, "%llu-%llu", lo.ms, lo.seq);
    snprintf(max, n, "%llu-%llu", hi.ms, hi.seq);
    snprintf(count, n, "%ld", held + FENCE_RANGE_SLACK);
    return 1;
}

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int flush_one(struct hq_worker *w, unsigned part)
{
    struct hq_wpart *p = &w->parts[part];
    struct hq_outcome_queue *q = &w->outcomes.q[part];
    struct flush *f = hq_calloc(1, sizeof(*f));
    f->w = w;
    f->part = part;
    char rmin[48] = "", rmax[48] = "", rcount[48] = "0"; /* two 20-digit numbers and a dash fit */
    char ttl[24], keep[12], maxlen[24];
    snprintf(ttl, sizeof(ttl), "%lld", w->cfg->attempt_ttl_ms);
    snprintf(keep, sizeof(keep), "%d", HQ_ATTEMPTS_KEPT_MAX);
    snprintf(maxlen, sizeof(maxlen), "%lld", w->cfg->dead_maxlen);
    /* KEYS and the fixed ARGV of record_outcomes.lua, in its header's order. */
    const char *keys[] = {p->key_events, p->key_retry,    p->key_retry_data,
                          p->key_dead,   p->key_retained, p->key_retained_bytes};
    const char *fixed[] = {
        HQ_GROUP, w->cfg->consumer, ttl, keep, p->key_att_index, maxlen, rmin, rmax, rcount};
    size_t argc = NELEM(keys) + NELEM(fixed);
    size_t bytes = 0;
    for (struct hq_entry *e = q->ready_head; e && f->n < HQ_OUTCOME_BATCH_MAX; e = e->qnext) {
        if (f->n > 0 && bytes + e->ops.buf.len > HQ_OUTCOME_BATCH_BYTES)
            break;
        bytes += e->ops.buf.len;
        f->entries[f->n++] = e;
        argc += 2 + (size_t)e->ops.nargs; /* id, count, its ops */
    }
    fence_range(w, f, rmin, rmax, rcount, sizeof(rmin));
    const char **argv = hq_malloc(sizeof(char *) * argc);
    size_t *lens = hq_malloc(sizeof(size_t) * argc);
    char(*counts)[12] = hq_malloc(sizeof(*counts) * (size_t)f->n);
    size_t i = 0;
    for (size_t k = 0; k < NELEM(keys); k++, i++) {
        argv[i] = keys[k];
        lens[i] = strlen(keys[k]);
    }
    for (size_t k = 0; k < NELEM(fixed); k++, i++) {
        argv[i] = fixed[k];
        lens[i] = strlen(fixed[k]);
    }
    for (int k = 0; k < f->n; k++) {
        struct hq_entry *e = f->entries[k];
        argv[i] = e->id;
        lens[i++] = strlen(e->id);
        snprintf(counts[k], sizeof(counts[k]), "%d", e->ops.nargs);
        argv[i] = counts[k];
        lens[i++] = strlen(counts[k]);
        hq_ops_argv(&e->ops, argv + i, lens + i);
        i += (size_t)e->ops.nargs;
    }
    hq_assert(i == argc);
    int rc = hq_redis_router_script(w->writer, p->slot, &w->outcomes.record_script, on_flush_reply,
                                    f, (int)NELEM(keys), (int)i, argv, lens);
    free(argv);
    free(lens);
    free(counts);
    if (rc != 0) {
        free(f);
        return -1;
    }
    w->outcomes.flushing++;
    q->flushing++;
    /* Detach the batch from the ready queue. */
    for (int k = 0; k < f->n; k++) {
        hq__entry_set_state(&w->entries, f->entries[k], HQ_ENTRY_FLUSHING);
        q->nlines -= f->entries[k]->lines;
        q->ready_head = f->entries[k]->qnext;
    }
    q->nready -= f->n;
    if (!q->ready_head)
        q->ready_tail = NULL;
    return 0;
}

/* One partition's queue: returns the ms until its waiting batch is due, or -1.
 * *now_ms is read from the clock on first need only: this runs every loop
 * turn, mostly with nothing to record or no back-off to check. */
static int64_t flush_part(struct hq_worker *w, unsigned part, int64_t *now_ms)
{
    struct hq_outcome_queue *q = &w->outcomes.q[part];
    if (!q->ready_head || !hq_redis_router_ready(w->writer, w->parts[part].slot))
        return -1; /* flushed when the writer is ready again */
    if (q->flush_retry_at_ms) {
        if (!*now_ms)
            *now_ms = hq_now_ms();
        if (*now_ms < q->flush_retry_at_ms)
            return -1; /* the tick retries */
    }
    int64_t wait_us = (int64_t)HQ_FLUSH_WAIT_US * w->layout->nparts;
    if (wait_us > HQ_FLUSH_WAIT_MAX_US)
        wait_us = HQ_FLUSH_WAIT_MAX_US;
    while (q->ready_head && q->flushing < FLUSHES_IN_FLIGHT_MAX) {
        /* Line ops do not wait: an ordered line's next head waits for them. */
        if (!w->draining && q->nready < HQ_FLUSH_BATCH_MIN && !q->nlines) {
            int64_t waited = hq_mono_us() - q->ready_head->ready_us;
            if (waited < wait_us)
                return (wait_us - waited + 999) / 1000;
        }
        if (flush_one(w, part) != 0)
            return -1;
    }
    return -1;
}

int64_t hq__outcome_flush(struct hq_worker *w)
{
    if (w->stopping || !w->writer || !w->outcomes.q)
        return -1;
    int64_t now = 0, due = -1;
    for (unsigned i = 0; i < w->nparts; i++) {
        int64_t d = flush_part(w, i, &now);
        if (d >= 0 && (due < 0 || d < due))
            due = d;
    }
    return due;
}
