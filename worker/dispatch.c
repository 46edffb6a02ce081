/* Dispatch: event -> deliveries. Resolves subscribers through a short-lived
 * cache (--endpoint-cache) filled by batched Redis lookups (one pipelined
 * SUNION per unknown type, one HGETALL per unknown endpoint, on the writer),
 * fans each event out to its enabled endpoints, and holds deliveries in
 * per-endpoint queues so one endpoint never has more than
 * --endpoint-concurrency in flight. An endpoint whose queue stops moving
 * (the oldest waiter waited > HQ_QUEUE_WAIT_MAX_MS) is congested: its waiting
 * and new deliveries are deferred to the retry set (no attempt spent), so a
 * hanging endpoint cannot take the worker's capacity from healthy ones.
 *
 * Dispatch also owns the end of every delivery: curl_uv reports a finished
 * transfer here (hq__dispatch_done), delivery.c classifies it, outcome.c
 * decides and records, and finish_delivery() frees the slot and the struct,
 * the one teardown for attempted and deferred deliveries alike. The cache
 * follows <prefix>:endpoints:ver, which every endpoint change increments: a
 * new value marks everything cached stale, so updates reach this worker
 * within a tick instead of after --endpoint-cache. */
#include "worker/internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/hash.h"
#include "common/keys.h"
#include "common/layout.h"
#include "common/log.h"

/* ---- Endpoint cache ---------------------------------------------------------------- */

static struct hq_ep *ep_find(struct hq_worker *w, const char *id, size_t n)
{
    return hq__ep_find(w, id, n);
}

static int ep_fresh(const struct hq_worker *w, const struct hq_ep *ep, int64_t now)
{
    /* A disabled endpoint is read again by every batch that needs it: its
     * deliveries become dead letters, which must not follow an enable that
     * the version watch has not seen yet. */
    if (hq_unlikely(!ep->missing && (!ep->e.enabled || ep->cb.state == HQ_CB_DISABLED)))
        return 0;
    int64_t ttl = ep->missing ? HQ_EP_MISS_MS : w->cfg->endpoint_cache_ms;
    return ep->fetched_ms && now - ep->fetched_ms < ttl;
}

static struct hq_ep *ep_get_or_add(struct hq_worker *w, const char *id, size_t n)
{
    struct hq_ep *ep = ep_find(w, id, n);
    if (ep)
        return ep;
    ep = hq_calloc(1, sizeof(*ep));
    memcpy(ep->id, id, n < HQ_ENDPOINT_ID_MAX ? n : HQ_ENDPOINT_ID_MAX);
    ep->refs = 1;
    ep->cached = 1;
    ep->tenant_slot = -1;
    ep->rl.metric_slot = -1;
    uint32_t b = hq_fnv1a(ep->id, strlen(ep->id)) % HQ_CACHE_BUCKETS;
    ep->next = w->dispatch.eps[b];
    w->dispatch.eps[b] = ep;
    return ep;
}

/* ---- Tenants (the fair round robin's units) ------------------------------------------- */

/* The tenant named name, added when new. Tenants live while an endpoint
 * names them or waits in them; the tick frees the others. */
static struct hq_tenant *tenant_get(struct hq_worker *w, const char *name)
{
    uint32_t b = hq_fnv1a(name, strlen(name)) % HQ_CACHE_BUCKETS;
    for (struct hq_tenant *t = w->dispatch.tenants[b]; t; t = t->next)
        if (strcmp(t->name, name) == 0)
            return t;
    struct hq_tenant *t = hq_calloc(1, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->next = w->dispatch.tenants[b];
    w->dispatch.tenants[b] = t;
    return t;
}

/* Points ep at its (new) tenant after a refill: an endpoint moved to another
 * tenant waits in the old one's list until its turn there, then in the new. */
static void tenant_set(struct hq_worker *w, struct hq_ep *ep)
{
    struct hq_tenant *t = ep->e.tenant[0] ? tenant_get(w, ep->e.tenant) : NULL;
    if (t == ep->tn)
        return;
    if (t)
        t->refs++;
    if (ep->tn)
        ep->tn->refs--;
    ep->tn = t;
}

/* Frees the tenants nothing refers to (the tick: O(tenants), as its walk of
 * the endpoint cache). */
static void tenant_sweep(struct hq_worker *w, int all)
{
    for (int b = 0; b < HQ_CACHE_BUCKETS; b++) {
        for (struct hq_tenant **pp = &w->dispatch.tenants[b], *t; (t = *pp);) {
            if (all || (t->refs == 0 && !t->in_ring)) {
                *pp = t->next;
                free(t);
            } else {
                pp = &t->next;
            }
        }
    }
}

/* A hash of the URL's scheme and authority (scheme://[user@]host:port), up to
 * the path: endpoints that can share connections get the same curl shard. */
static uint32_t origin_key(const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = (size_t)(p - url) + strcspn(p, "/?#");
    return hq_fnv1a(url, n);
}

/* Installs endpoint data from an HGETALL reply (in place: deliveries in
 * flight keep their slot accounting). */
static void ep_fill(struct hq_worker *w, struct hq_ep *ep, const redisReply *r)
{
    hq__ep_clear_data(ep);
    ep->rl.interval_us = 0;
    ep->fetched_ms = hq_now_ms();
    struct hq_err err = {0};
    int rc = hq_endpoint_from_reply(r, ep->id, &ep->e, &err);
    tenant_set(w, ep);
    if (rc == HQ_ENOTFOUND) {
        ep->missing = 1;
        return;
    }
    if (rc != 0) {
        hq_log(HQ_LOG_ERROR, "dispatch",
               "endpoint %s is malformed in Redis (%s): treated as missing", ep->id, err.msg);
        ep->missing = 1;
        return;
    }
    ep->missing = 0;
    ep->origin_key = origin_key(ep->e.url);
    hq_endpoint_policy(&ep->e, &w->cfg->policy, &ep->policy);
    ep->rl.interval_us = hq_rate_interval_us(&ep->e.rate);
    ep->rl.burst = hq_rate_burst(&ep->e.rate);
    ep->rl.home = hq_layout_partition_for(w->layout, ep->id, strlen(ep->id), 0);
    if (ep->rl.interval_us && ep->rl.metric_slot < 0)
        ep->rl.metric_slot = hq_metrics_rl_slot(&w->metrics, ep->id);
    ep->tenant_slot = hq_metrics_tenant_slot(&w->metrics, ep->e.tenant);
    const char *secrets[2] = {ep->e.key1, ep->e.key2};
    for (int i = 0; i < 2; i++) {
        if (!secrets[i][0])
            continue;
        if (hq_sign_key_decode(secrets[i], &ep->keys[ep->nkeys], &err) == 0)
            ep->nkeys++;
        else
            hq_log(HQ_LOG_ERROR, "dispatch", "endpoint %s key%d is unusable: %s", ep->id, i + 1,
                   err.msg);
    }
    for (int i = 0; i < ep->e.nheaders; i++)
        ep->custom = curl_slist_append(ep->custom, ep->e.headers[i]);
}

static struct hq_subs *subs_find(struct hq_worker *w, const char *type, size_t n)
{
    for (struct hq_subs *s = w->dispatch.subs[hq_fnv1a(type, n) % HQ_CACHE_BUCKETS]; s;
         s = s->next) {
        if (strlen(s->type) == n && memcmp(s->type, type, n) == 0)
            return s;
    }
    return NULL;
}

static void subs_fill(struct hq_worker *w, const char *type, size_t n, const redisReply *r)
{
    struct hq_subs *s = subs_find(w, type, n);
    if (!s) {
        s = hq_calloc(1, sizeof(*s));
        s->type = hq_strndup(type, n);
        uint32_t b = hq_fnv1a(type, n) % HQ_CACHE_BUCKETS;
        s->next = w->dispatch.subs[b];
        w->dispatch.subs[b] = s;
    }
    for (int i = 0; i < s->nids; i++)
        free(s->ids[i]);
    free(s->ids);
    s->ids = NULL;
    s->nids = 0;
    if (r->elements) {
        s->ids = hq_calloc(r->elements, sizeof(char *));
        for (size_t i = 0; i < r->elements; i++) {
            if (r->element[i]->type == REDIS_REPLY_STRING &&
                r->element[i]->len <= HQ_ENDPOINT_ID_MAX)
                s->ids[s->nids++] = hq_strndup(r->element[i]->str, r->element[i]->len);
        }
    }
    s->fetched_ms = hq_now_ms();
}

void hq__dispatch_free_cache(struct hq_worker *w)
{
    for (struct hq_ep *ep; (ep = w->dispatch.rl_want);) {
        w->dispatch.rl_want = ep->rl.want_next;
        ep->rl.listed = 0;
        hq__ep_unref(ep);
    }
    for (struct hq_tenant *t; (t = w->dispatch.ring_head);) {
        w->dispatch.ring_head = t->rnext;
        t->in_ring = 0;
        for (struct hq_ep *wep; (wep = t->whead);) {
            t->whead = wep->wnext;
            wep->waiting = 0;
            wep->wtn = NULL;
            hq__ep_unref(wep);
        }
    }
    w->dispatch.ring_tail = NULL;
    for (int b = 0; b < HQ_CACHE_BUCKETS; b++) {
        for (struct hq_ep *ep = w->dispatch.eps[b], *next; ep; ep = next) {
            next = ep->next;
            ep->cached = 0;
            ep->tn = NULL; /* the tenants go below; deliveries may still hold ep */
            free(ep->solo);
            ep->solo = NULL;
            hq__ep_unref(ep);
        }
        w->dispatch.eps[b] = NULL;
        for (struct hq_subs *s = w->dispatch.subs[b], *next; s; s = next) {
            next = s->next;
            for (int i = 0; i < s->nids; i++)
                free(s->ids[i]);
            free(s->ids);
            free(s->type);
            free(s);
        }
        w->dispatch.subs[b] = NULL;
    }
    tenant_sweep(w, 1);
}

/* ---- Queues and slots ----------------------------------------------------------- */

/* 1 when ep's own cap and rate limit let a delivery start (the worker-wide
 * cap aside). An endpoint without a limit pays one branch for the limit. */
static inline int own_room(const struct hq_worker *w, struct hq_ep *ep)
{
    return ep->in_flight < w->cfg->endpoint_concurrency &&
           (!hq_unlikely(ep->rl.interval_us) || hq__rl_ready(ep, hq_mono_us()));
}

static inline int can_start(const struct hq_worker *w, struct hq_ep *ep)
{
    return w->dispatch.in_flight < w->cfg->concurrency && own_room(w, ep);
}

static void start(struct hq_worker *w, struct hq_delivery *d);
static struct hq_delivery *dequeue(struct hq_worker *w, struct hq_ep *ep);

static void ring_append(struct hq_worker *w, struct hq_tenant *t)
{
    t->in_ring = 1;
    t->rnext = NULL;
    if (w->dispatch.ring_tail)
        w->dispatch.ring_tail->rnext = t;
    else
        w->dispatch.ring_head = t;
    w->dispatch.ring_tail = t;
}

/* Puts ep at the tail of its tenant's waiting list unless it is there, and
 * the tenant at the tail of the ring unless it is there: ep has deliveries
 * queued that its own cap would let start. */
static void wait_for_slot(struct hq_worker *w, struct hq_ep *ep)
{
    if (ep->waiting)
        return;
    struct hq_tenant *t = ep->tn;
    if (!t) {
        if (!ep->solo)
            ep->solo = hq_calloc(1, sizeof(*ep->solo)); /* kept until the cache goes */
        t = ep->solo;
    }
    ep->waiting = 1;
    ep->refs++; /* the list's: ep outlives its queue being emptied by a deferral */
    ep->wtn = t;
    t->refs++;
    ep->wnext = NULL;
    if (t->wtail)
        t->wtail->wnext = ep;
    else
        t->whead = ep;
    t->wtail = ep;
    if (!t->in_ring)
        ring_append(w, t);
}

/* Starts waiting deliveries of ep while it has slots; if only the
 * worker-wide cap stops it, it waits in line for a slot. */
static void pump(struct hq_worker *w, struct hq_ep *ep)
{
    while (ep->qhead && can_start(w, ep))
        start(w, dequeue(w, ep));
    if (ep->qhead && own_room(w, ep))
        wait_for_slot(w, ep);
}

/* Hands free worker-wide slots to the waiting endpoints, one delivery per
 * tenant in turn, and within a tenant one per endpoint in turn: a tenant
 * with 50 busy endpoints gets the share of a tenant with one, and with
 * thousands of endpoints at the cap a finished delivery costs O(1), not a
 * walk of the cache. Endpoints whose deliveries were deferred meanwhile
 * leave their list here without using the tenant's turn. */
static void serve_waiting(struct hq_worker *w)
{
    struct hq_tenant *t;
    while (w->dispatch.in_flight < w->cfg->concurrency && (t = w->dispatch.ring_head)) {
        w->dispatch.ring_head = t->rnext;
        if (!w->dispatch.ring_head)
            w->dispatch.ring_tail = NULL;
        t->in_ring = 0;
        for (struct hq_ep *ep; (ep = t->whead);) {
            t->whead = ep->wnext;
            if (!t->whead)
                t->wtail = NULL;
            ep->waiting = 0;
            ep->wtn = NULL;
            t->refs--;
            int started = 0;
            if (ep->qhead && can_start(w, ep)) {
                start(w, dequeue(w, ep));
                started = 1;
                if (ep->qhead && own_room(w, ep))
                    wait_for_slot(w, ep); /* may put t back in the ring (ep's solo unit) */
            }
            if (started || !t->whead) {
                /* Before the unref: t may be ep's solo unit. */
                if (t->whead && !t->in_ring)
                    ring_append(w, t);
                hq__ep_unref(ep);
                break;
            }
            hq__ep_unref(ep); /* t is a tenant (a solo unit's list held only ep) */
        }
    }
}

/* The one teardown of a delivery, attempted or deferred, after outcome.c has
 * its op: gives back the slot (when it held one) and the attempt's handles,
 * recycles the struct, drops its endpoint reference and counts the entry's
 * delivery as finished. */
static void finish_delivery(struct hq_worker *w, struct hq_delivery *d)
{
    struct hq_entry *e = d->entry;
    struct hq_ep *ep = d->ep;
    int held_slot = d->state == HQ_DELIVERY_IN_FLIGHT;
    hq_assert(d->state != HQ_DELIVERY_QUEUED); /* dequeued first */
    if (hq_unlikely(d->batch))
        hq__batch_free(w, d); /* its other members were finished or detached first */
    if (held_slot) {
        hq__delivery_end(w, d);
        ep->in_flight--;
        w->dispatch.in_flight--;
        atomic_fetch_sub_explicit(&w->metrics.in_flight, 1, memory_order_relaxed);
    }
    hq__delivery_free(w, d);
    w->dispatch.deliveries--;
    if (held_slot) {
        pump(w, ep);
        serve_waiting(w); /* a worker-wide slot freed while other endpoints wait for one */
    }
    hq__ep_unref(ep);
    hq__outcome_delivery_finished(w, e);
}

/* A batch's leader that will not be sent now: detaches the other members
 * (linked by qnext, each alone) to share its fate one by one, and frees the
 * batch. NULL for a delivery sent alone. */
static struct hq_delivery *unbatch(struct hq_worker *w, struct hq_delivery *d)
{
    struct hq_batch_run *b = d->batch;
    if (!b)
        return NULL;
    struct hq_delivery *list = NULL, **tail = &list;
    for (int i = 1; i < b->n; i++) {
        b->m[i]->qnext = NULL;
        *tail = b->m[i];
        tail = &b->m[i]->qnext;
    }
    hq__batch_free(w, d);
    return list;
}

static void defer(struct hq_worker *w, struct hq_delivery *d)
{
    for (struct hq_delivery *m = unbatch(w, d), *next; m; m = next) {
        next = m->qnext;
        defer(w, m);
    }
    hq__outcome_defer(w, d->entry, d->ep);
    finish_delivery(w, d);
}

/* d (and each member of its batch, alone) deferred to due_ms. */
static void defer_until(struct hq_worker *w, struct hq_delivery *d, int64_t due_ms)
{
    for (struct hq_delivery *m = unbatch(w, d), *next; m; m = next) {
        next = m->qnext;
        defer_until(w, m, due_ms);
    }
    hq__outcome_defer_until(w, d->entry, d->ep, due_ms);
    finish_delivery(w, d);
}

/* A congested endpoint's delivery is deferred to come back when its slots
 * should have room: ~--defer / 2 ahead, then spaced by the time its slots
 * take to serve one (its attempts' mean duration over --endpoint-concurrency;
 * every worker spaces its own, and each serves its share of what comes
 * back). So its backlog returns about as fast as it is served, each delivery
 * about once, instead of all within ~--defer, most of it to be deferred
 * again. The spacing reaches at most CONGESTION_SPREAD_MAX x --defer ahead
 * (an endpoint that recovers is not kept waiting longer by it): beyond, a
 * delivery comes back around then, spread over --defer, and is spaced again.
 * With no duration known yet: ~--defer, spread +-50 %, as before. */
#define CONGESTION_SPREAD_MAX 12
static void defer_congested(struct hq_worker *w, struct hq_delivery *d, int64_t now)
{
    for (struct hq_delivery *m = unbatch(w, d), *next; m; m = next) {
        next = m->qnext;
        defer_congested(w, m, now);
    }
    struct hq_ep *ep = d->ep;
    int64_t step = ep->dur_ms / w->cfg->endpoint_concurrency;
    if (step <= 0) {
        defer(w, d);
        return;
    }
    int64_t due = now + w->cfg->defer_ms / 2, far = now + CONGESTION_SPREAD_MAX * w->cfg->defer_ms;
    if (ep->cong_due_ms + step > due)
        due = ep->cong_due_ms + step;
    if (due <= far) {
        ep->cong_due_ms = due;
    } else {
        w->dispatch.spread = w->dispatch.spread * 6364136223846793005ULL + 1442695040888963407ULL;
        due = far - (int64_t)((w->dispatch.spread >> 33) % (uint64_t)(w->cfg->defer_ms + 1));
    }
    hq__outcome_defer_until(w, d->entry, ep, due);
    finish_delivery(w, d);
}

void hq__dispatch_done(CURL *easy, CURLcode res, void *arg)
{
    struct hq_worker *w = arg;
    struct hq_delivery *d = hq__delivery_of(easy);
    hq_assert(d->state == HQ_DELIVERY_IN_FLIGHT);
    char error[CURL_ERROR_SIZE + 64];
    struct hq_attempt a;
    hq__delivery_result(w, d, res, &a, error, sizeof(error));
    d->ep->dur_ms += (a.duration_ms - d->ep->dur_ms) / 8;
    hq_metrics_tenant_count(&w->metrics, d->ep->tenant_slot);
    /* A batch: each member gets the attempt as its own (its outcome, its
     * retry or dead letter alone, the batch's id in its records), in the
     * batch's order, the leader first. */
    char bid[HQ_BATCH_ID_MAX], resp[HQ_RESP_KEEP_MAX];
    struct hq_delivery *members = NULL;
    int whole = 0; /* a failed batch retried whole (batch_retry.c): recorded there */
    if (hq_unlikely(d->batch)) {
        /* Copies: finishing the leader may recycle its struct for a new attempt. */
        memcpy(bid, d->batch->id, sizeof(bid));
        a.batch_id = bid;
        memcpy(resp, a.resp, a.resp_len);
        a.resp = resp;
        whole = !a.ok && hq__batch_retry_whole(w, d, &a);
        members = unbatch(w, d);
    } else if (hq_unlikely(d->entry->ev.batch)) {
        a.batch_id = d->entry->event_id; /* a batch retried whole: its id */
    }
    int ended = whole ? 0 : hq__outcome_attempt(w, d->entry, d->ep, &a);
    if (hq_unlikely(ended)) /* dead letters of exhaustion: hookq.delivery.exhausted */
        hq__exhausted_note(w, d->ep, d->entry->event_id, ended == HQ_OUT_WINDOW);
    /* The healthy path (closed, nothing noted, not the probe) notes nothing. */
    if (hq_unlikely(!a.ok || d->ep->cb.state != HQ_CB_CLOSED || d->ep->cb.listed || d->probe))
        hq__breaker_note(w, d->ep, &a, d->probe);
    /* The leader's record, as built (nothing builds one before the members). */
    unsigned long gen = whole ? 0 : w->outcomes.att_gen;
    finish_delivery(w, d);
    for (struct hq_delivery *m = members, *next; m; m = next) {
        next = m->qnext;
        struct hq_attempt am = a;
        am.attempt = m->entry->ev.attempt + 1;
        am.same_gen = am.attempt == a.attempt ? gen : 0;
        ended = whole ? 0 : hq__outcome_attempt(w, m->entry, m->ep, &am);
        if (hq_unlikely(ended))
            hq__exhausted_note(w, m->ep, m->entry->event_id, ended == HQ_OUT_WINDOW);
        finish_delivery(w, m);
    }
}

/* ---- Rate limits (tokens and leases: ratelimit.c) -------------------------------- */

/* ep (limited) has a delivery waiting for tokens: it joins the want list,
 * which the rate-limit tick walks. */
static void rl_want(struct hq_worker *w, struct hq_ep *ep)
{
    if (ep->rl.listed)
        return;
    ep->rl.listed = 1;
    ep->refs++; /* the list's */
    ep->rl.want_next = w->dispatch.rl_want;
    w->dispatch.rl_want = ep;
    hq__rl_arm(w, ep->rl.tokens > 0 ? ep->rl.usable_us : hq_mono_us());
}

/* Starts what usable tokens allow, drops endpoints with nothing waiting and
 * leases for the ones out of tokens: one call per home partition. */
void hq__dispatch_rl_tick(struct hq_worker *w)
{
    int64_t now = hq_mono_us(), wake = now + HQ_RL_TICK_US;
    struct hq_ep *(*batch)[HQ_RL_LEASE_EPS_MAX] = NULL; /* per partition */
    int *nbatch = NULL;
    for (struct hq_ep **pp = &w->dispatch.rl_want; *pp;) {
        struct hq_ep *ep = *pp;
        pump(w, ep);
        if (!ep->qhead || !ep->rl.interval_us) { /* nothing waits, or the limit was removed */
            *pp = ep->rl.want_next;
            ep->rl.listed = 0;
            hq__ep_unref(ep);
            continue;
        }
        pp = &ep->rl.want_next;
        if (hq__rl_ready(ep, now) || ep->rl.tokens > 0) {
            if (ep->rl.usable_us > now && ep->rl.usable_us < wake)
                wake = ep->rl.usable_us; /* its tokens start then */
            continue;                    /* or a slot frees (finish_delivery pumps) */
        }
        unsigned part = ep->rl.home; /* a layout partition, not a stream of w->parts */
        if (ep->rl.leasing || part >= w->layout->nparts || !w->writer ||
            !hq_redis_router_ready(w->writer, w->layout->part[part].slot))
            continue;
        if (!batch) {
            batch = hq_calloc(w->layout->nparts, sizeof(*batch));
            nbatch = hq_calloc(w->layout->nparts, sizeof(*nbatch));
        }
        if (nbatch[part] == HQ_RL_LEASE_EPS_MAX) {
            hq__rl_lease(w, part, batch[part], nbatch[part]);
            nbatch[part] = 0;
        }
        ep->refs++; /* the lease call's, given back in hq__dispatch_rl_leased */
        batch[part][nbatch[part]++] = ep;
    }
    for (unsigned i = 0; batch && i < w->layout->nparts; i++)
        if (nbatch[i])
            hq__rl_lease(w, i, batch[i], nbatch[i]);
    free(batch);
    free(nbatch);
    if (w->dispatch.rl_want)
        hq__rl_arm(w, wake);
}

void hq__dispatch_rl_leased(struct hq_worker *w, struct hq_ep *ep, enum hq_rl_result res)
{
    if (!w->stopping && res == HQ_RL_REFUSED) {
        /* Past the horizon: what waits goes to the retry set (no attempt). */
        int64_t due = hq__rl_defer_due(ep, hq_now_ms(), w->dispatch.workers);
        struct hq_delivery *d;
        while ((d = dequeue(w, ep))) {
            hq_metrics_rl_count(&w->metrics, ep->rl.metric_slot, 1);
            hq__outcome_defer_until(w, d->entry, ep, due);
            finish_delivery(w, d);
        }
    }
    if (!w->stopping && res == HQ_RL_GRANTED && ep->rl.listed)
        hq__rl_arm(w, hq_mono_us()); /* pump what the tokens allow, or wait for their start */
    hq__ep_unref(ep);                /* the lease call's */
}

/* A limited endpoint out of tokens holds at most one lease's worth (its
 * burst) of deliveries waiting for them; the rest go to the retry set, due
 * when its tokens should be free, spaced by its interval (no attempt spent).
 * Returns 1 when d may wait in the queue. */
static int rl_admit(struct hq_worker *w, struct hq_delivery *d)
{
    struct hq_ep *ep = d->ep;
    if (ep->queued >= ep->rl.burst) {
        hq_metrics_rl_count(&w->metrics, ep->rl.metric_slot, 1);
        defer_until(w, d, hq__rl_defer_due(ep, hq_now_ms(), w->dispatch.workers));
        return 0;
    }
    hq_metrics_rl_count(&w->metrics, ep->rl.metric_slot, 0);
    rl_want(w, ep);
    return 1;
}

static void start(struct hq_worker *w, struct hq_delivery *d)
{
    if (hq_unlikely(d->ep->cb.state >= HQ_CB_OPEN)) {
        int64_t due = hq__breaker_hold(w, d, hq_now_ms());
        if (due < 0) { /* disabled: kept for replay after enabling */
            for (struct hq_delivery *m = unbatch(w, d), *next; m; m = next) {
                next = m->qnext;
                hq__outcome_dead_endpoint(w, m->entry, m->ep->id, m->ep->e.url, m->ep->e.tenant,
                                          "endpoint_disabled");
                finish_delivery(w, m);
            }
            hq__outcome_dead_endpoint(w, d->entry, d->ep->id, d->ep->e.url, d->ep->e.tenant,
                                      "endpoint_disabled");
            finish_delivery(w, d);
            return;
        }
        if (due) { /* the breaker is open: no attempt spent */
            defer_until(w, d, due);
            return;
        }
    }
    if (hq_unlikely(d->ep->rl.interval_us) && d->ep->rl.tokens > 0)
        d->ep->rl.tokens--; /* own_room saw it usable */
    d->state = HQ_DELIVERY_IN_FLIGHT;
    d->ep->in_flight++;
    w->dispatch.in_flight++;
    atomic_fetch_add_explicit(&w->metrics.in_flight, 1, memory_order_relaxed);
    if (hq__delivery_start(w, d) != 0) /* a failed attempt of class "other": retried */
        hq__dispatch_done(d->easy, CURLE_FAILED_INIT, w);
}

static void enqueue(struct hq_worker *w, struct hq_delivery *d)
{
    struct hq_ep *ep = d->ep;
    if (hq_unlikely(w->draining)) {
        defer(w, d);
        return;
    }
    /* A batching endpoint collects it (batch.c); a batch it closed goes on. */
    if (hq_unlikely(ep->e.batch.max) && !d->batch && hq__batch_wants(w, d)) {
        d = hq__batch_add(w, d);
        if (!d)
            return;
    }
    if (!ep->qhead && can_start(w, ep)) {
        start(w, d);
        return;
    }
    int64_t now = hq_now_ms();
    /* Congested: nothing more waits for it in memory (a free slot is still
     * used: its spaced deferrals come back to one). */
    if (ep->congested_until_ms > now) {
        defer_congested(w, d, now);
        return;
    }
    if (hq_unlikely(ep->rl.interval_us) && !hq__rl_ready(ep, hq_mono_us()) && !rl_admit(w, d))
        return;
    d->state = HQ_DELIVERY_QUEUED;
    d->queued_ms = now;
    d->qnext = NULL;
    if (ep->qtail)
        ep->qtail->qnext = d;
    else
        ep->qhead = d;
    ep->qtail = d;
    ep->queued++;
    atomic_fetch_add_explicit(&w->metrics.queued, 1, memory_order_relaxed);
    if (own_room(w, ep))
        wait_for_slot(w, ep); /* held back by the worker-wide cap, not its own */
}

static struct hq_delivery *dequeue(struct hq_worker *w, struct hq_ep *ep)
{
    struct hq_delivery *d = ep->qhead;
    if (!d)
        return NULL;
    hq_assert(d->state == HQ_DELIVERY_QUEUED);
    ep->qhead = d->qnext;
    if (!ep->qhead)
        ep->qtail = NULL;
    ep->queued--;
    d->state = HQ_DELIVERY_NEW;
    atomic_fetch_sub_explicit(&w->metrics.queued, 1, memory_order_relaxed);
    return d;
}

/* ---- The workers sharing the group ---------------------------------------------- */

#define WORKERS_ASK_MS  5000                   /* how often the count is asked */
#define WORKER_IDLE_MAX (3 * HQ_READ_BLOCK_MS) /* a consumer idle longer has gone */

/* XINFO CONSUMERS of the first stream: the consumers that read lately. */
static void on_consumers_reply(struct hq_redis_client *c, redisReply *r, void *arg)
{
    (void)c;
    struct hq_worker *w = arg;
    w->dispatch.workers_asking = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return; /* asked again later; the last count stays */
    int n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        for (size_t j = 0; e->type == REDIS_REPLY_ARRAY && j + 1 < e->elements; j += 2)
            if (e->element[j]->type == REDIS_REPLY_STRING &&
                strcmp(e->element[j]->str, "idle") == 0 &&
                e->element[j + 1]->type == REDIS_REPLY_INTEGER &&
                e->element[j + 1]->integer < WORKER_IDLE_MAX)
                n++;
    }
    w->dispatch.workers = n > 0 ? n : 1;
}

/* How many workers share the deployment (those reading partition 0's
 * events lately): a limited endpoint's deferrals are spaced by it. One call
 * per WORKERS_ASK_MS. */
static void ask_workers(struct hq_worker *w, int64_t now)
{
    if (w->dispatch.workers_asking || now - w->dispatch.workers_ms < WORKERS_ASK_MS || !w->writer ||
        !w->nparts || !hq_redis_router_ready(w->writer, w->parts[0].slot))
        return;
    const char *argv[] = {"XINFO", "CONSUMERS", w->parts[0].key_events, HQ_GROUP};
    if (hq_redis_router_command(w->writer, w->parts[0].slot, on_consumers_reply, w, 0, 4, argv,
                                NULL) == 0) {
        w->dispatch.workers_asking = 1;
        w->dispatch.workers_ms = now;
    }
}

void hq__dispatch_tick(struct hq_worker *w)
{
    int64_t now = hq_now_ms();
    tenant_sweep(w, 0);
    ask_workers(w, now);
    for (int b = 0; b < HQ_CACHE_BUCKETS; b++) {
        for (struct hq_ep *ep = w->dispatch.eps[b]; ep; ep = ep->next) {
            if (!ep->qhead || now - ep->qhead->queued_ms <= HQ_QUEUE_WAIT_MAX_MS)
                continue;
            /* Waiting for rate-limit tokens (bounded: a burst, the lease
             * horizon) is not congestion; a full cap is. */
            if (ep->rl.interval_us && ep->in_flight < w->cfg->endpoint_concurrency)
                continue;
            int n = ep->queued;
            ep->congested_until_ms = now + w->cfg->defer_ms;
            hq_log(
                HQ_LOG_WARN, "dispatch",
                "endpoint %s is congested (%d in flight, oldest waiter %lld ms, attempts take ~%lld ms): deferring %d deliveries by ~%lld ms and more, spaced by its pace",
                ep->id, ep->in_flight, (long long)(now - ep->qhead->queued_ms),
                (long long)ep->dur_ms, n, w->cfg->defer_ms / 2);
            struct hq_delivery *d;
            while ((d = dequeue(w, ep)))
                defer_congested(w, d, now);
        }
    }
}

int64_t hq__dispatch_batches(struct hq_worker *w)
{
    if (!w->batching.head)
        return -1;
    int64_t next = -1, now_us = hq_mono_us();
    struct hq_delivery *d;
    while ((d = hq__batch_take_due(w, now_us, w->draining, &next)))
        enqueue(w, d); /* deferred when draining */
    return next;
}

void hq__dispatch_defer_all(struct hq_worker *w)
{
    (void)hq__dispatch_batches(w); /* draining: every batch being collected, deferred */
    for (int b = 0; b < HQ_CACHE_BUCKETS; b++) {
        for (struct hq_ep *ep = w->dispatch.eps[b]; ep; ep = ep->next) {
            struct hq_delivery *d;
            while ((d = dequeue(w, ep)))
                defer(w, d);
        }
    }
}

/* ---- Fan-out ----------------------------------------------------------------------------- */

static void add_delivery(struct hq_worker *w, struct hq_entry *e, struct hq_ep *ep,
                         struct hq_delivery ***list)
{
    /* An ordered endpoint's fresh pair joins its line (docs/ordering.md);
     * the line's head comes back on the retry lane with e->ev.line set. */
    if (hq_unlikely(ep->e.ordered) && w->parts[e->part].lane == HQ_LANE_FRESH && e->sid_ok) {
        hq__outcome_park(w, e, ep);
        return;
    }
    struct hq_delivery *d = hq__delivery_new(w);
    d->entry = e;
    d->ep = ep;
    ep->refs++;
    d->retry_after_ms = -1;
    d->probe = 0;
    e->remaining++;
    w->dispatch.deliveries++;
    **list = d;
    *list = &d->qnext;
}

/* 1 when the event may go to ep: it names no tenant, or ep's. */
static int tenant_ok(const struct hq_endpoint *ep, const struct hq_event *ev)
{
    return !ev->tenant || (strlen(ep->tenant) == ev->tenant_len &&
                           memcmp(ep->tenant, ev->tenant, ev->tenant_len) == 0);
}

static void fan_out(struct hq_worker *w, struct hq_entry *e)
{
    struct hq_delivery *ds = NULL, **tail = &ds;
    e->remaining = 1; /* held while the deliveries are created */
    hq__entry_set_state(&w->entries, e, HQ_ENTRY_DELIVERING);
    if (e->ev.endpoint) {
        struct hq_ep *ep = ep_find(w, e->ev.endpoint, e->ev.endpoint_len);
        if (!ep || ep->missing)
            hq__outcome_dead_endpoint(w, e, e->ev.endpoint, "", "", "endpoint_deleted");
        else if (!tenant_ok(&ep->e, &e->ev))
            /* Dead-lettered, not skipped: a producer bug or an endpoint moved
             * to another tenant shows up, and can be replayed once fixed. */
            hq__outcome_dead_endpoint(w, e, ep->id, ep->e.url, ep->e.tenant, "tenant_mismatch");
        else if (!ep->e.enabled)
            hq__outcome_dead_endpoint(w, e, ep->id, ep->e.url, ep->e.tenant, "endpoint_disabled");
        else
            add_delivery(w, e, ep, &tail);
    } else {
        struct hq_subs *s = subs_find(w, e->ev.type, e->ev.type_len);
        for (int i = 0; s && i < s->nids; i++) {
            struct hq_ep *ep = ep_find(w, s->ids[i], strlen(s->ids[i]));
            /* Missing (a stale index entry): not subscribed now. An event
             * naming a tenant goes to that tenant's endpoints only. Disabled:
             * kept as a dead letter, replayed after `endpoint enable`. */
            if (!ep || ep->missing || !tenant_ok(&ep->e, &e->ev) ||
                !hq_endpoint_matches(&ep->e, e->ev.type, e->ev.type_len))
                continue;
            if (ep->e.enabled)
                add_delivery(w, e, ep, &tail);
            else
                hq__outcome_dead_endpoint(w, e, ep->id, ep->e.url, ep->e.tenant,
                                          "endpoint_disabled");
        }
    }
    for (struct hq_delivery *d = ds, *next; d; d = next) {
        next = d->qnext;
        enqueue(w, d);
    }
    hq__outcome_delivery_finished(w, e); /* drops the hold taken above */
}

/* ---- Resolution ----------------------------------------------------------------------------- */

/* A batch's resolution: ask for the subscriptions the cache lacks, then for
 * the endpoints they (or the events' own endpoint) name, then fan out. */
enum resolve_phase {
    RESOLVE_START = 0,     /* nothing asked yet */
    RESOLVE_SUBSCRIPTIONS, /* SUNIONs in flight */
    RESOLVE_ENDPOINTS,     /* HGETALLs in flight */
};

/* One batch of entries waiting for endpoint data; its commands are pipelined
 * on the writer and counted down by their replies. */
struct resolve {
    struct hq_worker *w;
    struct hq_entry *batch; /* linked by qnext */
    int pending;            /* replies still expected */
    int failed;             /* a reply was NULL or an error: retry the batch later */
    enum resolve_phase phase;
};

/* One lookup of a batch: a type's subscribers (SUNION) or an endpoint (HGETALL). */
struct resolve_cmd {
    struct resolve *rs;
    int is_ep; /* 0: key is a type, 1: key is an endpoint id, 2: its breaker's state */
    char key[HQ_ENDPOINT_ID_MAX > HQ_TYPE_MAX ? HQ_ENDPOINT_ID_MAX + 1 : HQ_TYPE_MAX + 1];
    size_t len;
};

static void resolve_step(struct resolve *rs);

/* Fills the cache from one lookup's reply; the batch goes on when its last
 * reply is in. */
static void on_lookup_reply(struct hq_redis_client *c, redisReply *r, void *arg)
{
    (void)c;
    struct resolve_cmd *rc = arg;
    struct resolve *rs = rc->rs;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r && rc->is_ep)
            hq_log(HQ_LOG_ERROR, "dispatch", "endpoint lookup for %s failed: %s", rc->key,
                   r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        else if (r)
            hq_log(HQ_LOG_ERROR, "dispatch", "subscriber lookup for '%s' failed: %s", rc->key,
                   r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        rs->failed = 1;
    } else if (rc->is_ep == 2) {
        hq__breaker_learn(ep_get_or_add(rs->w, rc->key, rc->len), r);
    } else if (rc->is_ep) {
        ep_fill(rs->w, ep_get_or_add(rs->w, rc->key, rc->len), r);
    } else {
        subs_fill(rs->w, rc->key, rc->len, r);
    }
    free(rc);
    if (--rs->pending == 0)
        resolve_step(rs);
}

static void on_type_noted(struct hq_redis_client *c, redisReply *r, void *arg)
{
    (void)c, (void)r, (void)arg; /* advisory: the next cache miss notes it again */
}

/* Notes type in <reg>:types for /v1/event-types (the types a UI offers), with
 * its subscriber lookup: once per type per cache refresh, never per event. */
static void note_type(struct hq_worker *w, const char *type, size_t n)
{
    char now[24], cut[24];
    snprintf(now, sizeof(now), "%lld", (long long)hq_now_ms());
    snprintf(cut, sizeof(cut), "%d", -(HQ_TYPES_SEEN_MAX + 1));
    const char *zadd[] = {"ZADD", w->key_types_seen, now, type};
    const size_t zlen[] = {4, strlen(w->key_types_seen), strlen(now), n};
    const char *trim[] = {"ZREMRANGEBYRANK", w->key_types_seen, "0", cut};
    if (hq_redis_router_command(w->writer, w->layout->reg_slot, on_type_noted, NULL, 0, 4, zadd,
                                zlen) == 0 &&
        hq_redis_router_command(w->writer, w->layout->reg_slot, on_type_noted, NULL, 0, 4, trim,
                                NULL) != 0)
        hq_log(HQ_LOG_DEBUG, "dispatch", "could not trim %s", w->key_types_seen);
}

static int send_subs(struct resolve *rs, const char *type, size_t n)
{
    struct hq_worker *w = rs->w;
    /* On the heap: up to HQ_ENDPOINT_INDEX_KEYS_MAX keys, and this runs only on
     * a cache miss (once per type per --endpoint-cache). */
    char(*keys)[HQ_KEY_MAX] = hq_malloc(sizeof(*keys) * HQ_ENDPOINT_INDEX_KEYS_MAX);
    int nk = hq_endpoint_index_keys(w->layout->reg, type, n, keys, HQ_ENDPOINT_INDEX_KEYS_MAX);
    if (nk <= 0) {
        /* Cannot happen for a type the decoder accepted; fail the batch loudly. */
        hq_log(HQ_LOG_ERROR, "dispatch", "no index keys for type '%.*s'", (int)n, type);
        free(keys);
        return -1;
    }
    const char **argv = hq_malloc(sizeof(char *) * (size_t)(nk + 1));
    argv[0] = "SUNION";
    for (int i = 0; i < nk; i++)
        argv[i + 1] = keys[i];
    struct resolve_cmd *rc = hq_calloc(1, sizeof(*rc));
    rc->rs = rs;
    memcpy(rc->key, type, n);
    rc->len = n;
    int rcode = hq_redis_router_command(w->writer, w->layout->reg_slot, on_lookup_reply, rc, 0,
                                        nk + 1, argv, NULL);
    free(argv);
    free(keys);
    if (rcode != 0) {
        free(rc);
        return -1;
    }
    rs->pending++;
    note_type(w, type, n);
    return 0;
}

/* Sends one endpoint lookup (is_ep: see struct resolve_cmd) for id. */
static int send_lookup(struct resolve *rs, const char *id, int is_ep, unsigned slot, int argc,
                       const char **argv)
{
    struct resolve_cmd *rc = hq_calloc(1, sizeof(*rc));
    rc->rs = rs;
    rc->is_ep = is_ep;
    memcpy(rc->key, id, strlen(id));
    rc->len = strlen(id);
    if (hq_redis_router_command(rs->w->writer, slot, on_lookup_reply, rc, 0, argc, argv, NULL) !=
        0) {
        free(rc);
        return -1;
    }
    rs->pending++;
    return 0;
}

static int send_ep(struct resolve *rs, const char *id, size_t n)
{
    struct hq_worker *w = rs->w;
    char key[HQ_KEY_MAX], idz[HQ_ENDPOINT_ID_MAX + 1];
    snprintf(idz, sizeof(idz), "%.*s", (int)n, id);
    hq_key_endpoint(w->layout->reg, idz, key, sizeof(key));
    const char *argv[] = {"HGETALL", key};
    if (send_lookup(rs, idz, 1, w->layout->reg_slot, 2, argv) != 0)
        return -1;
    /* Its breaker's state, in its home partition: one more command per cache
     * refresh, none per delivery. */
    unsigned h = hq_layout_partition_for(w->layout, idz, strlen(idz), 0);
    char cbkey[HQ_KEY_MAX];
    hq_key_breaker(w->layout->part[h].base, idz, cbkey, sizeof(cbkey));
    const char *cbargv[] = {"HMGET", cbkey, "state", "next_probe_ms"};
    return send_lookup(rs, idz, 2, w->layout->part[h].slot, 4, cbargv);
}

/* The keys (types or endpoint ids) one resolve phase has already asked for, so
 * a batch of 100 events of one type sends one SUNION and one HGETALL per
 * endpoint, not one per event. Made only on a cache miss; the keys point into
 * the batch's entries and the subscription cache, which stay put while a phase
 * sends its commands (replies arrive later, after the set is gone). */
#define ASKED_SLOTS 1024
struct asked {
    const char *k[ASKED_SLOTS];
    size_t n[ASKED_SLOTS];
    int used;
};

/* 1 when (k, n) was asked before in this phase; else remembers it (while the
 * table has room: past that, asking twice is merely redundant) and returns 0. */
static int asked_before(struct asked **set, const char *k, size_t n)
{
    if (!*set)
        *set = hq_calloc(1, sizeof(**set));
    struct asked *a = *set;
    uint32_t h = hq_fnv1a(k, n);
    for (uint32_t i = 0; i < ASKED_SLOTS; i++) {
        uint32_t j = (h + i) % ASKED_SLOTS;
        if (!a->k[j]) {
            if (a->used < ASKED_SLOTS * 3 / 4) {
                a->k[j] = k;
                a->n[j] = n;
                a->used++;
            }
            return 0;
        }
        if (a->n[j] == n && memcmp(a->k[j], k, n) == 0)
            return 1;
    }
    return 0;
}

/* Asks for an endpoint's data unless the cache has it fresh or this phase
 * asked already. No "being fetched" marks across batches: a batch waits only
 * for its own replies, and replies come back in the order the commands were
 * sent, so two batches asking in a burst is merely redundant. */
static int need_ep(struct resolve *rs, struct asked **asked, const char *id, size_t n, int64_t now)
{
    struct hq_ep *ep = ep_find(rs->w, id, n);
    if (ep && ep_fresh(rs->w, ep, now))
        return 0;
    if (asked_before(asked, id, n))
        return 0;
    return send_ep(rs, id, n);
}

static void resolve_fail(struct resolve *rs)
{
    /* Park the batch; the tick retries it (the writer is down or answered an error). */
    struct hq_entry *e = rs->batch;
    while (e) {
        struct hq_entry *next = e->qnext;
        e->qnext = rs->w->dispatch.parked;
        rs->w->dispatch.parked = e;
        e = next;
    }
    free(rs);
}

static void resolve_step(struct resolve *rs)
{
    struct hq_worker *w = rs->w;
    int64_t now = hq_now_ms();
    if (rs->failed || w->stopping) {
        resolve_fail(rs);
        return;
    }
    struct asked *asked = NULL;
    switch (rs->phase) {
    case RESOLVE_START:
        rs->phase = RESOLVE_SUBSCRIPTIONS;
        for (struct hq_entry *e = rs->batch; e; e = e->qnext) {
            if (e->ev.endpoint)
                continue;
            struct hq_subs *s = subs_find(w, e->ev.type, e->ev.type_len);
            if (s && now - s->fetched_ms < w->cfg->endpoint_cache_ms)
                continue;
            if (asked_before(&asked, e->ev.type, e->ev.type_len))
                continue;
            if (send_subs(rs, e->ev.type, e->ev.type_len) != 0) {
                rs->failed = 1;
                break;
            }
        }
        free(asked);
        if (rs->pending == 0)
            resolve_step(rs);
        return;
    case RESOLVE_SUBSCRIPTIONS:
        rs->phase = RESOLVE_ENDPOINTS;
        for (struct hq_entry *e = rs->batch; e && !rs->failed; e = e->qnext) {
            if (e->ev.endpoint) {
                if (need_ep(rs, &asked, e->ev.endpoint, e->ev.endpoint_len, now) != 0)
                    rs->failed = 1;
                continue;
            }
            struct hq_subs *s = subs_find(w, e->ev.type, e->ev.type_len);
            for (int i = 0; s && i < s->nids && !rs->failed; i++)
                if (need_ep(rs, &asked, s->ids[i], strlen(s->ids[i]), now) != 0)
                    rs->failed = 1;
        }
        free(asked);
        if (rs->pending == 0)
            resolve_step(rs);
        return;
    case RESOLVE_ENDPOINTS: break;
    }
    /* Everything the batch needs is cached. */
    for (struct hq_entry *e = rs->batch, *next; e; e = next) {
        next = e->qnext;
        e->qnext = NULL;
        fan_out(w, e);
    }
    free(rs);
}

void hq__dispatch_batch(struct hq_worker *w, struct hq_entry *batch)
{
    struct resolve *rs = hq_calloc(1, sizeof(*rs));
    rs->w = w;
    rs->batch = batch;
    for (struct hq_entry *e = batch; e; e = e->qnext)
        hq__entry_set_state(&w->entries, e, HQ_ENTRY_RESOLVING);
    resolve_step(rs);
}

/* Called from the tick: retries parked batches. */
void hq__dispatch_retry_parked(struct hq_worker *w)
{
    if (!w->dispatch.parked || !w->writer || !hq_redis_router_ready(w->writer, w->layout->reg_slot))
        return;
    struct hq_entry *batch = w->dispatch.parked;
    w->dispatch.parked = NULL;
    hq__dispatch_batch(w, batch);
}

/* ---- Following endpoint changes ------------------------------------------------------------ */

/* Marks every cached subscription list and endpoint stale: the next batch
 * that needs one asks Redis again. Data in use stays (deliveries in flight
 * keep their endpoint, which the refill updates in place). */
static void cache_mark_stale(struct hq_worker *w)
{
    for (int b = 0; b < HQ_CACHE_BUCKETS; b++) {
        for (struct hq_ep *ep = w->dispatch.eps[b]; ep; ep = ep->next)
            ep->fetched_ms = 0;
        for (struct hq_subs *s = w->dispatch.subs[b]; s; s = s->next)
            s->fetched_ms = 0;
    }
}

static void on_ver_reply(struct hq_redis_client *c, redisReply *r, void *arg)
{
    (void)c;
    struct hq_worker *w = arg;
    w->dispatch.ver_asking = 0;
    if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL))
        return; /* asked again on the next tick */
    char v[sizeof(w->dispatch.ver)];
    snprintf(v, sizeof(v), "%.*s", r->type == REDIS_REPLY_STRING ? (int)r->len : 0,
             r->type == REDIS_REPLY_STRING ? r->str : "");
    if (strcmp(v, w->dispatch.ver) == 0)
        return;
    /* Replies come in the order commands were sent on the writer, so a
     * lookup answered before this reply read data no newer than v: stale
     * now. The first answer marks too (cheap: the cache is young). */
    if (w->dispatch.ver[0])
        hq_log(HQ_LOG_DEBUG, "dispatch", "endpoints changed (version %s -> %s): cache marked stale",
               w->dispatch.ver, v);
    snprintf(w->dispatch.ver, sizeof(w->dispatch.ver), "%s", v);
    cache_mark_stale(w);
}

void hq__dispatch_watch_endpoints(struct hq_worker *w)
{
    if (w->dispatch.ver_asking || !w->writer ||
        !hq_redis_router_ready(w->writer, w->layout->reg_slot))
        return;
    const char *argv[] = {"GET", w->key_endpoints_ver};
    if (hq_redis_router_command(w->writer, w->layout->reg_slot, on_ver_reply, w, 0, 2, argv,
                                NULL) == 0)
        w->dispatch.ver_asking = 1;
}
