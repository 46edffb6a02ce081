/* Batched delivery (docs/batching.md): collects an endpoint's deliveries for
 * at most its --batch wait, count and bytes, then closes the batch: builds
 * its body (one JSON array, each element {"id","type","timestamp","payload"}
 * or "payload_b64" when the payload is not JSON) and its id, and hands its
 * leader back to dispatch.c to send. Memory is bounded: what is collected is
 * held entries, which the consumer bounds (--concurrency), and each batch
 * holds at most HQ_BATCH_MAX_EVENTS and HQ_BATCH_BYTES_MAX. A leaf. */
#include "worker/internal.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/json_check.h"

/* The element's size in the body, near enough to bound it: the payload
 * (base64: 4/3), the id and type (escaped: at most 6x), and the keys. */
static size_t element_size(const struct hq_entry *e, int json)
{
    size_t p = json ? e->ev.payload_len : (e->ev.payload_len + 2) / 3 * 4;
    return p + 6 * (strlen(e->event_id) + e->ev.type_len) + 80;
}

int hq__batch_wants(const struct hq_worker *w, const struct hq_delivery *d)
{
    const struct hq_entry *e = d->entry;
    const struct hq_ep *ep = d->ep;
    /* A line's head goes alone: one in flight per line (ordered.c). */
    if (ep->cb.state != HQ_CB_CLOSED || e->ev.attempt != 0 || e->ev.line || ep->e.ordered)
        return 0;
    /* Fresh lane: a new event (a replayed dead letter of a batch carries
     * first_ms: it goes alone). Retry lane: a deferral coming back. */
    if (w->parts[e->part].lane == HQ_LANE_FRESH && e->ev.first_ms != 0)
        return 0;
    return element_size(e, 0) + 2 <= (size_t)ep->e.batch.bytes;
}

static void unlink_pending(struct hq_worker *w, struct hq_batch_run *b)
{
    if (b->prev)
        b->prev->next = b->next;
    else
        w->batching.head = b->next;
    if (b->next)
        b->next->prev = b->prev;
    else
        w->batching.tail = b->prev;
    b->next = b->prev = NULL;
    b->ep->bpend = NULL;
}

/* Appends e's element to body b; [out] pay: where its payload is in b (for
 * a retry item's member list, batch_retry.c). */
static void put_element(struct hq_buf *b, struct hq_batch_pay *pay, const struct hq_entry *e)
{
    int rc = hq_buf_append(b, "{\"id\":", 6);
    rc |= hq_buf_json_str(b, e->event_id, strlen(e->event_id));
    rc |= hq_buf_append(b, ",\"type\":", 8);
    rc |= hq_buf_json_str(b, e->ev.type, e->ev.type_len);
    /* The producer's timestamp, else when the entry was added to the stream. */
    rc |= hq_buf_append(b, ",\"timestamp\":", 13);
    rc |= hq_buf_i64(b, e->ev.ts_ms ? (long long)e->ev.ts_ms : (long long)e->sid.ms);
    int json = hq_json_check(e->ev.payload, e->ev.payload_len);
    size_t at = b->len + (json ? 11 : 16), n = json ? e->ev.payload_len : 0;
    if (json) {
        rc |= hq_buf_append(b, ",\"payload\":", 11);
        rc |= hq_buf_append(b, e->ev.payload, e->ev.payload_len);
    } else {
        n = (e->ev.payload_len + 2) / 3 * 4;
        rc |= hq_buf_append(b, ",\"payload_b64\":\"", 16);
        rc |= hq_buf_reserve(b, n + 1);
        if (rc == 0) {
            EVP_EncodeBlock((unsigned char *)b->p + b->len, (const unsigned char *)e->ev.payload,
                            (int)e->ev.payload_len);
            b->len += n;
            b->p[b->len] = '\0';
        }
        rc |= hq_buf_append(b, "\"", 1);
    }
    rc |= hq_buf_append(b, "}", 1);
    if (rc != 0) /* the bound is the estimate's plus room: a bug when hit */
        hq_panic("batch body over its bound (%zu bytes)", b->len);
    pay->at = at;
    pay->len = n;
    pay->b64 = !json;
}

/* Closes b: its body and id. Returns its leader, which owns it now. */
static struct hq_delivery *close_batch(struct hq_worker *w, struct hq_batch_run *b)
{
    unlink_pending(w, b);
    hq_buf_init(&b->body, b->bytes + 2 * (size_t)b->n + 64);
    b->pay = hq_malloc((size_t)b->n * sizeof(b->pay[0]));
    if (hq_buf_reserve(&b->body, b->bytes + 2 * (size_t)b->n + 8) != 0)
        hq_panic("batch body: no room");
    if (hq_buf_append(&b->body, "[", 1) != 0)
        hq_panic("batch body: no room");
    for (int i = 0; i < b->n; i++) {
        if (i && hq_buf_append(&b->body, ",", 1) != 0)
            hq_panic("batch body: no room");
        put_element(&b->body, &b->pay[i], b->m[i]->entry);
    }
    if (hq_buf_append(&b->body, "]", 1) != 0)
        hq_panic("batch body: no room");
    hq_batch_id(b->ep->id, b->m[0]->entry->event_id, b->n, b->id);
    b->m[0]->batch = b;
    atomic_fetch_add_explicit(&w->metrics.batches, 1, memory_order_relaxed);
    return b->m[0];
}

static struct hq_batch_run *open_batch(struct hq_worker *w, struct hq_ep *ep)
{
    int max = ep->e.batch.max;
    struct hq_batch_run *b = hq_calloc(1, sizeof(*b) + (size_t)max * sizeof(b->m[0]));
    b->ep = ep;
    b->max = max;
    b->bytes_max = (size_t)ep->e.batch.bytes;
    b->due_us = hq_mono_us() + ep->e.batch.wait_ms * 1000;
    b->prev = w->batching.tail;
    if (b->prev)
        b->prev->next = b;
    else
        w->batching.head = b;
    w->batching.tail = b;
    ep->bpend = b;
    return b;
}

struct hq_delivery *hq__batch_add(struct hq_worker *w, struct hq_delivery *d)
{
    struct hq_ep *ep = d->ep;
    size_t sz = element_size(d->entry, 0) + 1; /* the comma or bracket */
    struct hq_delivery *closed = NULL;
    struct hq_batch_run *b = ep->bpend;
    if (b && b->bytes + sz + 1 > b->bytes_max)
        closed = close_batch(w, b);
    b = ep->bpend;
    if (!b)
        b = open_batch(w, ep);
    b->m[b->n++] = d;
    b->bytes += sz;
    if (b->n == b->max) {
        hq_assert(!closed); /* a batch just opened holds one, and max >= 2 */
        closed = close_batch(w, b);
    }
    return closed;
}

struct hq_delivery *hq__batch_take_due(struct hq_worker *w, int64_t now_us, int all,
                                       int64_t *next_ms)
{
    /* Not in due order when endpoints' waits differ: a walk of the batches
     * being collected, at most one per endpoint with events waiting. */
    struct hq_batch_run *first = NULL;
    int64_t next = -1;
    for (struct hq_batch_run *b = w->batching.head; b; b = b->next) {
        if (all || b->due_us <= now_us) {
            if (!first)
                first = b;
        } else {
            int64_t ms = (b->due_us - now_us + 999) / 1000;
            if (next < 0 || ms < next)
                next = ms;
        }
    }
    *next_ms = next;
    return first ? close_batch(w, first) : NULL;
}

void hq__batch_free(struct hq_worker *w, struct hq_delivery *leader)
{
    (void)w;
    struct hq_batch_run *b = leader->batch;
    leader->batch = NULL;
    hq_buf_free(&b->body);
    free(b->pay);
    free(b);
}
