/* The consumer: reads entries through the consumer group, one blocking
 * XREADGROUP per stream on that stream's reader (two per partition: its
 * events and its retry lane; a multi-stream read applies COUNT per stream,
 * so weighting takes separate calls), COUNT = a share of the free capacity,
 * split between the lanes (read_partition); reclaims entries
 * idle longer than --claim-idle on the writer (XAUTOCLAIM, per partition);
 * decodes them into struct hq_entry (entry.c), hands valid ones to dedupe.c
 * (which claims their event ids, then hands them to dispatch.c)
 * and invalid ones to outcome.c (a dead letter with their raw fields). It
 * recreates a partition's group when Redis comes back without it (NOGROUP).
 * Re-arming the reads when capacity frees is worker.c's, once per loop turn. */
#include "worker/internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/keys.h"
#include "common/log.h"

#define READ_ERROR_PAUSE_MS 1000 /* after an error reply, do not re-read sooner (no busy loop) */

/* Copies a decoded event's strings into one allocation owned by the entry:
 * hiredis frees the reply when our callback returns. */
static void own_event(struct hq_entry *e, const struct hq_event *ev)
{
    size_t n = ev->type_len + ev->payload_len + ev->id_len + ev->endpoint_len + ev->tenant_len +
               ev->batch_len + ev->key_len + ev->line_len + 8;
    char *p = hq_malloc(n);
    e->data = p;
    e->ev = *ev;
#define COPY(field, len)                                                                           \
    do {                                                                                           \
        if (ev->field)                                                                             \
            memcpy(p, ev->field, ev->len);                                                         \
        p[ev->len] = '\0';                                                                         \
        e->ev.field = ev->field ? p : NULL;                                                        \
        p += ev->len + 1;                                                                          \
    } while (0)
    COPY(type, type_len);
    COPY(payload, payload_len);
    COPY(id, id_len);
    COPY(endpoint, endpoint_len);
    COPY(tenant, tenant_len);
    COPY(batch, batch_len);
    COPY(key, key_len);
    COPY(line, line_len);
#undef COPY
}

/* Keeps an invalid entry's raw fields (each value cut at 64 KiB) for its
 * dead letter, as NUL-separated name/value strings. */
#define RAW_VALUE_MAX (64 * 1024)
#define RAW_MAX       (HQ_EVENT_FIELDS_MAX * 2 * (RAW_VALUE_MAX + 64))

static void keep_raw(struct hq_entry *e, const redisReply *fields)
{
    hq_buf_init(&e->raw, RAW_MAX);
    for (size_t i = 0; i + 1 < fields->elements && i < HQ_EVENT_FIELDS_MAX * 2; i += 2) {
        const redisReply *f = fields->element[i], *v = fields->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        size_t vl = v->len > RAW_VALUE_MAX ? RAW_VALUE_MAX : v->len;
        size_t fl = f->len > 60 ? 60 : f->len;
        if (hq_buf_append(&e->raw, "raw_", 4) != 0 || hq_buf_append(&e->raw, f->str, fl) != 0 ||
            hq_buf_append(&e->raw, "", 1) != 0 || hq_buf_append(&e->raw, v->str, vl) != 0 ||
            hq_buf_append(&e->raw, "", 1) != 0)
            break;
    }
}

/* Builds an entry from one [id, [field, value, ...]] element. Returns NULL for
 * an element that is not an entry at all (logged); the caller skips it. */
static struct hq_entry *entry_from_reply(struct hq_wpart *p, const redisReply *el)
{
    struct hq_worker *w = p->w;
    if (el->type != REDIS_REPLY_ARRAY || el->elements < 2 ||
        el->element[0]->type != REDIS_REPLY_STRING || el->element[0]->len >= HQ_STREAM_ID_MAX) {
        hq_log(HQ_LOG_WARN, "consumer", "skipping a malformed stream reply element");
        return NULL;
    }
    const redisReply *idr = el->element[0], *fields = el->element[1];
    struct hq_entry *e = hq__entry_new(&w->entries, p->index, idr->str, idr->len);

    struct hq_field f[HQ_EVENT_FIELDS_MAX];
    size_t nf = 0;
    struct hq_err err = {0};
    int rc = 0;
    if (fields->type != REDIS_REPLY_ARRAY) {
        /* A pending entry deleted from the stream (claimed after XDEL) has no fields. */
        rc = hq_err_set(&err, HQ_EINVAL, "entry has no fields (deleted from the stream)");
    } else if (fields->elements / 2 > HQ_EVENT_FIELDS_MAX || fields->elements % 2) {
        rc = hq_err_set(&err, HQ_EINVAL, "entry has %zu field values, max %d pairs",
                        fields->elements, HQ_EVENT_FIELDS_MAX);
    } else {
        for (size_t i = 0; i + 1 < fields->elements; i += 2) {
            const redisReply *k = fields->element[i], *v = fields->element[i + 1];
            if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
                rc = hq_err_set(&err, HQ_EINVAL, "entry field is not a string");
                break;
            }
            f[nf++] = (struct hq_field){k->str, k->len, v->str, v->len};
        }
    }
    struct hq_event ev;
    if (rc == 0)
        rc = hq_event_decode_fields(f, nf, (size_t)w->cfg->max_payload, &ev, &err);
    if (rc == 0) {
        own_event(e, &ev);
        if (e->ev.id) { /* checked: no NUL inside (hq_event_check_id), at most HQ_ID_MAX */
            size_t n = e->ev.id_len < sizeof(e->event_id) ? e->ev.id_len : sizeof(e->event_id) - 1;
            memcpy(e->event_id, e->ev.id, n);
            e->event_id[n] = '\0';
        } else
            hq_layout_derived_id(w->layout, p->lpart, "evt", e->id, strlen(e->id), e->event_id,
                                 sizeof(e->event_id));
        e->first_ms = e->ev.first_ms;
    } else {
        e->invalid = hq_strdup(err.msg);
        hq_layout_derived_id(w->layout, p->lpart, "evt", e->id, strlen(e->id), e->event_id,
                             sizeof(e->event_id));
        if (fields->type == REDIS_REPLY_ARRAY)
            keep_raw(e, fields);
        else
            hq_buf_init(&e->raw, 0);
        atomic_fetch_add_explicit(&w->metrics.events_invalid, 1, memory_order_relaxed);
        hq_log(HQ_LOG_WARN, "consumer", "entry %s of %s is invalid (%s): dead-lettered", e->id,
               p->key_events, err.msg);
    }
    return e;
}

/* Takes the entries array of an XREADGROUP stream or XAUTOCLAIM reply. */
static void take_entries(struct hq_wpart *p, const redisReply *arr, int claimed)
{
    struct hq_worker *w = p->w;
    struct hq_entry *batch = NULL, **tail = &batch;
    for (size_t i = 0; i < arr->elements; i++) {
        const redisReply *el = arr->element[i];
        if (claimed && el->type == REDIS_REPLY_ARRAY && el->elements >= 1 &&
            el->element[0]->type == REDIS_REPLY_STRING &&
            hq__entries_hold(&w->entries, p->index, el->element[0]->str, el->element[0]->len))
            continue; /* ours already: idle only because its outcome flush is retrying */
        struct hq_entry *e = entry_from_reply(p, el);
        if (!e)
            continue;
        atomic_fetch_add_explicit(claimed ? &w->metrics.events_claimed : &w->metrics.events_read, 1,
                                  memory_order_relaxed);
        if (e->invalid) {
            hq__outcome_add_invalid(w, e);
            continue;
        }
        *tail = e;
        tail = &e->qnext;
    }
    if (batch)
        hq__dedupe_batch(w, p, batch);
}

/* ---- Group ------------------------------------------------------------------------------ */

static void on_group_created(struct hq_redis_client *c, redisReply *r, void *arg)
{
    (void)c;
    struct hq_wpart *p = arg;
    struct hq_worker *w = p->w;
    struct hq_consumer_part *cp = &w->consumer.part[p->index];
    cp->group_asked = 0;
    if (!r)
        return; /* connection lost; retried on READY */
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0) {
        hq_log(HQ_LOG_ERROR, "consumer", "cannot create consumer group '%s' on %s: %s", HQ_GROUP,
               p->key_events, r->str);
        return;
    }
    if (r->type != REDIS_REPLY_ERROR && cp->group_seen)
        hq_log(
            HQ_LOG_ERROR, "consumer",
            "consumer group '%s' on %s was gone (Redis restarted without its data?): recreated it; events and pending entries from before may have been lost",
            HQ_GROUP, p->key_events);
    cp->group_ready = 1;
    cp->group_seen = 1;
    hq__consumer_read(w);
    hq__consumer_claim(w);
}

static void create_group(struct hq_wpart *p)
{
    struct hq_worker *w = p->w;
    struct hq_consumer_part *cp = &w->consumer.part[p->index];
    if (cp->group_ready || cp->group_asked || !w->writer ||
        !hq_redis_router_ready(w->writer, p->slot))
        return;
    /* At id 0: events produced before the first worker ever started are delivered too. */
    const char *argv[] = {"XGROUP", "CREATE", p->key_events, HQ_GROUP, "0", "MKSTREAM"};
    if (hq_redis_router_command(w->writer, p->slot, on_group_created, p, 0, 6, argv, NULL) == 0)
        cp->group_asked = 1; /* else not ready: asked again on READY or at the tick */
}

void hq__consumer_start(struct hq_worker *w)
{
    if (!w->consumer.part) {
        w->consumer.part = hq_calloc(w->nparts, sizeof(*w->consumer.part));
    }
    for (unsigned i = 0; i < w->nparts; i++)
        create_group(&w->parts[i]);
}

void hq__consumer_free(struct hq_worker *w)
{
    free(w->consumer.part);
    w->consumer.part = NULL;
}

/* ---- Reading ------------------------------------------------------------------------ */

/* Free capacity in entries: how many may be read now. Entries still being
 * delivered (or their deliveries, when one event fans out to several
 * endpoints) count against --concurrency. Settled entries, whose outcomes only
 * wait to be recorded, do not: the next read need not wait for the last
 * batch's record_outcomes round trip (acks may wait, deliveries do not). They
 * still hold memory, so a read is armed only while all held entries stay
 * within twice the concurrency; the reads in flight (two per partition, each
 * at most a 1/P share of the concurrency, hq__consumer_read) may bring two
 * concurrencies' worth more: held entries never exceed four times it. */
static int capacity(const struct hq_worker *w)
{
    long active = w->entries.n - w->entries.settled;
    long used = active > w->dispatch.deliveries ? active : w->dispatch.deliveries;
    long cap = (long)w->cfg->concurrency - used;
    long held_room = 2 * (long)w->cfg->concurrency - w->entries.n;
    if (cap > held_room)
        cap = held_room;
    if (cap > HQ_READ_COUNT_MAX)
        cap = HQ_READ_COUNT_MAX;
    return cap > 0 ? (int)cap : 0;
}

static void read_done(struct hq_wpart *p)
{
    struct hq_consumer_part *cp = &p->w->consumer.part[p->index];
    if (cp->reading && p->lane == HQ_LANE_RETRY)
        p->w->consumer.retry_reserved -= cp->asked;
    cp->reading = 0;
    cp->full = 0;
}

static void on_read(struct hq_redis_client *c, redisReply *r, void *arg)
{
    (void)c;
    struct hq_wpart *p = arg;
    struct hq_worker *w = p->w;
    struct hq_consumer_part *cp = &w->consumer.part[p->index];
    read_done(p);
    if (!r)
        return; /* outcome unknown: whatever was delivered stays pending and is reclaimed */
    if (r->type == REDIS_REPLY_ERROR) {
        if (strncmp(r->str, "NOGROUP", 7) == 0) {
            hq_log(
                HQ_LOG_ERROR, "consumer",
                "consumer group '%s' on %s is gone (Redis restarted without its data?): recreating it; events and pending entries from before may have been lost",
                HQ_GROUP, p->key_events);
            cp->group_ready = 0;
            create_group(p);
        } else {
            hq_log(HQ_LOG_ERROR, "consumer", "XREADGROUP on %s failed: %s", p->key_events, r->str);
            cp->read_paused_until_ms = hq_now_ms() + READ_ERROR_PAUSE_MS;
        }
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *s = r->element[i];
            if (s->type == REDIS_REPLY_ARRAY && s->elements == 2 &&
                s->element[1]->type == REDIS_REPLY_ARRAY) {
                cp->full = s->element[1]->elements >= (size_t)cp->asked;
                take_entries(p, s->element[1], 0);
            }
        }
    }
    /* nil = BLOCK timed out with nothing new. */
    hq__consumer_read(w);
}

void hq__consumer_reader_changed(struct hq_wpart *p, int ready)
{
    if (!p->w->consumer.part)
        return;
    if (!ready)
        read_done(p); /* its callback got NULL (or will): re-armed on READY */
    else
        hq__consumer_read(p->w);
}

/* 1 when stream p's read can be armed now (none in flight, group and reader ready). */
static int can_read(struct hq_wpart *p, int64_t *now)
{
    struct hq_consumer_part *cp = &p->w->consumer.part[p->index];
    if (cp->reading || !cp->group_ready || !p->reader || !hq_redis_router_ready(p->reader, p->slot))
        return 0;
    if (cp->read_paused_until_ms) { /* the clock only after an error: this runs every turn */
        if (!*now)
            *now = hq_now_ms();
        if (*now < cp->read_paused_until_ms)
            return 0;
    }
    return 1;
}

/* Arms stream p's read with COUNT cap. */
static void read_one(struct hq_wpart *p, int cap)
{
    struct hq_worker *w = p->w;
    struct hq_consumer_part *cp = &w->consumer.part[p->index];
    if (cap <= 0)
        return;
    char count[16], block[16];
    snprintf(count, sizeof(count), "%d", cap);
    snprintf(block, sizeof(block), "%d", HQ_READ_BLOCK_MS);
    const char *argv[] = {"XREADGROUP", "GROUP", HQ_GROUP,  w->cfg->consumer, "COUNT", count,
                          "BLOCK",      block,   "STREAMS", p->key_events,    ">"};
    if (hq_redis_router_command(p->reader, p->slot, on_read, p,
                                HQ_READ_BLOCK_MS + HQ_REDIS_BLOCK_MARGIN_MS, 11, argv, NULL) == 0) {
        cp->reading = 1;
        cp->asked = cap;
        if (p->lane == HQ_LANE_RETRY)
            w->consumer.retry_reserved += cap;
    }
}

/* The retry lane (docs/internals/retry-lane.md): partition lp's share of
 * the free capacity, f, is split between its two streams only while both have
 * a backlog (their last read returned its whole COUNT): fresh events get
 * ceil(HQ_LANE_FRESH_PCT % of f), retries the rest, and at least one read in
 * HQ_LANE_RETRY_EVERY when that rest rounds to 0, so a flood of fresh events
 * cannot starve retries forever; retries hold at most HQ_LANE_RETRY_HOLD_PCT
 * % of --concurrency, so a storm of them cannot starve fresh events. A
 * stream without a backlog needs no share (its read blocks, or will return
 * what there is): the other takes all of f (work-conserving). A read already
 * in flight keeps its COUNT; so the reads in flight hold at most two shares
 * per partition. */
static void read_partition(struct hq_worker *w, unsigned lp, int share, int64_t *now)
{
    struct hq_wpart *fresh = &w->parts[lp * HQ_LANES + HQ_LANE_FRESH];
    struct hq_wpart *retry = &w->parts[lp * HQ_LANES + HQ_LANE_RETRY];
    int rf = can_read(fresh, now), rr = can_read(retry, now);
    if (!rf && !rr)
        return;
    int f = capacity(w);
    if (f > share)
        f = share;
    if (f <= 0)
        return;
    struct hq_consumer_part *cf = &w->consumer.part[fresh->index];
    struct hq_consumer_part *cr = &w->consumer.part[retry->index];
    int fresh_cap = f, retry_cap = f;
    /* Retries never hold more than their share of --concurrency: the rest is
     * kept for fresh events, whose read then always has room, whatever the
     * retries' endpoints take to answer. */
    long retry_max = (long)w->cfg->concurrency * HQ_LANE_RETRY_HOLD_PCT / 100;
    if (retry_max < 1)
        retry_max = 1;
    /* Held, and what the retry reads in flight (every partition's) may bring. */
    long retry_room = retry_max - w->entries.retry_active - w->consumer.retry_reserved;
    if (rf && rr && cf->full && cr->full) {
        fresh_cap = (int)(((long)f * HQ_LANE_FRESH_PCT + 99) / 100);
        retry_cap = f - fresh_cap;
        if (retry_cap == 0 && cr->splits++ % HQ_LANE_RETRY_EVERY == 0) {
            retry_cap = 1;
            fresh_cap = f > 1 ? f - 1 : 0;
        }
    }
    if (retry_cap > retry_room)
        retry_cap = retry_room > 0 ? (int)retry_room : 0;
    if (rf)
        read_one(fresh, fresh_cap);
    if (rr)
        read_one(retry, retry_cap);
}

void hq__consumer_read(struct hq_worker *w)
{
    if (w->draining || w->stopping || !w->consumer.part)
        return;
    /* Each partition's reads bring at most a 1/P share of the concurrency per
     * lane, so the reads in flight together add at most two concurrencies'
     * worth to what is held (capacity() above), and a read blocked on an idle
     * partition reserves nothing that a busy one needs: a share counted
     * against the free capacity starved the busy partitions (P = 4 ran at
     * 0.63x of P = 1, bench/partitions.sh). The round starts one partition
     * further each time, so none is always served last. With one partition
     * the share is the free capacity. */
    unsigned np = w->layout->nparts;
    int share = np == 1 ? HQ_READ_COUNT_MAX : (int)((w->cfg->concurrency + (long long)np - 1) / np);
    if (share < 1)
        share = 1;
    int64_t now = 0;
    unsigned start = w->consumer.next++ % np;
    for (unsigned k = 0; k < np; k++)
        read_partition(w, (start + k) % np, share, &now);
}

/* ---- Claiming ----------------------------------------------------------------------- */

static void on_claim(struct hq_redis_client *c, redisReply *r, void *arg)
{
    (void)c;
    struct hq_wpart *p = arg;
    struct hq_worker *w = p->w;
    struct hq_consumer_part *cp = &w->consumer.part[p->index];
    cp->claiming = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
        if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOGROUP", 7) != 0)
            hq_log(HQ_LOG_WARN, "consumer", "XAUTOCLAIM on %s failed: %s", p->key_events, r->str);
        snprintf(cp->claim_cursor, sizeof(cp->claim_cursor), "0-0");
        return;
    }
    const redisReply *next = r->element[0];
    size_t got = r->element[1]->elements;
    if (got)
        hq_log(HQ_LOG_INFO, "consumer", "reclaimed %zu entries of %s idle longer than %lld ms", got,
               p->key_events, w->cfg->claim_idle_ms);
    take_entries(p, r->element[1], 1);
    snprintf(cp->claim_cursor, sizeof(cp->claim_cursor), "%.*s", (int)next->len, next->str);
    /* More to scan: go on at once while there is capacity; else wait for the timer. */
    if (strcmp(cp->claim_cursor, "0-0") != 0)
        hq__consumer_claim(w);
}

static void claim_one(struct hq_wpart *p)
{
    struct hq_worker *w = p->w;
    struct hq_consumer_part *cp = &w->consumer.part[p->index];
    if (cp->claiming || !cp->group_ready || !w->writer ||
        !hq_redis_router_ready(w->writer, p->slot))
        return;
    int cap = capacity(w);
    if (cap <= 0)
        return;
    if (cap > HQ_CLAIM_COUNT)
        cap = HQ_CLAIM_COUNT;
    if (!cp->claim_cursor[0])
        snprintf(cp->claim_cursor, sizeof(cp->claim_cursor), "0-0");
    char idle[24], count[16];
    snprintf(idle, sizeof(idle), "%lld", w->cfg->claim_idle_ms);
    snprintf(count, sizeof(count), "%d", cap);
    const char *argv[] = {"XAUTOCLAIM", p->key_events,    HQ_GROUP, w->cfg->consumer,
                          idle,         cp->claim_cursor, "COUNT",  count};
    if (hq_redis_router_command(w->writer, p->slot, on_claim, p, 0, 8, argv, NULL) == 0)
        cp->claiming = 1;
}

void hq__consumer_claim(struct hq_worker *w)
{
    if (w->draining || w->stopping || !w->consumer.part)
        return;
    for (unsigned i = 0; i < w->nparts; i++)
        claim_one(&w->parts[i]);
}

int hq__consumer_busy(const struct hq_worker *w)
{
    if (!w->consumer.part)
        return 0;
    for (unsigned i = 0; i < w->nparts; i++)
        if (w->consumer.part[i].reading || w->consumer.part[i].claiming)
            return 1;
    return 0;
}
