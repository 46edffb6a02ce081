/* Idempotent events (docs/wire-format.md, "Idempotent events"): an event's
 * id is delivered at most once per --dedupe-window. The claim is made at
 * read, before anything is sent: after each XREADGROUP or XAUTOCLAIM of the
 * fresh stream, ONE claim_ids.lua call for the read batch (no round trip per
 * delivery) records id -> the entry id in the current claim generation
 * (<p>:dd:<start ms>, listed in <p>:dd) unless a live generation holds the
 * id. Its
 * answer per entry: deliver (the id was free, or this very entry claimed it
 * and is read again after a crash: a duplicate at most, never a loss), or
 * duplicate (another entry claimed it): the entry gets a "d" op (counted in
 * <p>:duplicates by record_outcomes.lua) and is acknowledged like any
 * outcome, nothing is delivered.
 *
 * Exempt, dispatched as they come: entries of the retry lane, retries and
 * deferrals (the scheduler's "attempt" field), dead-letter replays and
 * resends ("replay" = 1), events without an id, and every entry when the
 * window is 0. A claim call that fails (no reply, an error) dispatches its
 * batch unclaimed: delivery never waits on dedupe. */
#include "worker/internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/scripts.h"

/* One claim call: the read batch and the entries whose ids it claims. */
struct claim {
    struct hq_worker *w;
    unsigned part;              /* the stream read (index in w->parts) */
    struct hq_entry *batch;     /* every entry of the read batch (linked by qnext), in order */
    int n;                      /* entries claimed: claimed[0..n), in batch order */
    struct hq_entry *claimed[]; /* borrowed: held by w->entries */
};

void hq__dedupe_init(struct hq_worker *w)
{
    hq_redis_script_init(&w->dedupe.script, hq_script_claim_ids);
}

/* 1 when e's id is claimed before delivery. */
static int claims(const struct hq_wpart *p, const struct hq_entry *e)
{
    return p->lane == HQ_LANE_FRESH && e->ev.id && !e->ev.requeued && !e->ev.replay;
}

static void on_claimed(struct hq_redis_client *c, redisReply *r, void *arg)
{
    (void)c;
    struct claim *cl = arg;
    struct hq_worker *w = cl->w;
    w->dedupe.in_flight--;
    if (w->stopping) { /* the entries stay pending in Redis; freed at exit */
        free(cl);
        return;
    }
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == (size_t)cl->n;
    if (!ok)
        hq_log(HQ_LOG_WARN, "dedupe",
               "claiming %d event ids of %s failed: %s; delivering them unclaimed", cl->n,
               w->parts[cl->part].key_events,
               !r                             ? "no reply (connection lost or deadline)"
               : r->type == REDIS_REPLY_ERROR ? r->str
                                              : "unexpected reply");
    struct hq_entry *keep = NULL, **tail = &keep;
    int k = 0;
    for (struct hq_entry *e = cl->batch, *next; e; e = next) {
        next = e->qnext;
        int dup = 0;
        if (k < cl->n && cl->claimed[k] == e) {
            const redisReply *d = ok ? r->element[k] : NULL;
            dup = d && d->type == REDIS_REPLY_INTEGER && d->integer == 0;
            k++;
        }
        if (dup) {
            hq_log(HQ_LOG_DEBUG, "dedupe", "entry %s: event id %s already claimed: a duplicate",
                   e->id, e->event_id);
            hq__outcome_duplicate(w, e, w->parts[cl->part].key_duplicates);
            atomic_fetch_add_explicit(&w->metrics.part_dups[w->parts[cl->part].lpart], 1,
                                      memory_order_relaxed);
            continue;
        }
        e->qnext = NULL;
        *tail = e;
        tail = &e->qnext;
    }
    free(cl);
    if (keep)
        hq__dispatch_batch(w, keep);
}

void hq__dedupe_batch(struct hq_worker *w, struct hq_wpart *p, struct hq_entry *batch)
{
    int n = 0;
    if (w->cfg->dedupe_window_ms > 0)
        for (struct hq_entry *e = batch; e; e = e->qnext)
            n += claims(p, e);
    if (n == 0) {
        hq__dispatch_batch(w, batch);
        return;
    }
    struct claim *cl = hq_malloc(sizeof(*cl) + (size_t)n * sizeof(cl->claimed[0]));
    *cl = (struct claim){.w = w, .part = p->index, .batch = batch, .n = 0};
    /* argv: the generation index, the window, then (event id, entry id) per
     * claim (copied by the client when sent). */
    int argc = 2 + 2 * n;
    const char **argv = hq_malloc((size_t)argc * sizeof(*argv));
    size_t *lens = hq_malloc((size_t)argc * sizeof(*lens));
    char index[HQ_KEY_MAX], window[24];
    int len = hq_key_dedupe_index(w->layout->part[p->lpart].base, index, sizeof(index));
    hq_assert(len > 0);
    argv[0] = index;
    lens[0] = (size_t)len;
    lens[1] = (size_t)snprintf(window, sizeof(window), "%lld", w->cfg->dedupe_window_ms);
    argv[1] = window;
    for (struct hq_entry *e = batch; e; e = e->qnext) {
        if (!claims(p, e))
            continue;
        int k = 2 + 2 * cl->n;
        argv[k] = e->ev.id;
        lens[k] = e->ev.id_len;
        argv[k + 1] = e->id;
        lens[k + 1] = strlen(e->id);
        cl->claimed[cl->n++] = e;
    }
    int rc = w->writer ? hq_redis_router_script(w->writer, p->slot, &w->dedupe.script, on_claimed,
                                                cl, 1, argc, argv, lens)
                       : HQ_EIO;
    free(lens);
    free(argv);
    if (rc != 0) {
        hq_log(HQ_LOG_WARN, "dedupe", "cannot claim %d event ids of %s now: delivering unclaimed",
               n, p->key_events);
        free(cl);
        hq__dispatch_batch(w, batch);
        return;
    }
    w->dedupe.in_flight++;
}
