/* Circuit breakers: per endpoint, shared by every worker through one hash in
 * the endpoint's home partition (<p>:{H}:cb:<ep>, H = hq_layout_partition_for
 * of its id), which common/scripts/health.lua owns. This file notes attempt
 * outcomes, reports them once per tick (one health.lua call per troubled
 * endpoint), learns the state from the replies (and from the cache refresh in
 * dispatch.c), and decides whether a delivery may start: while the breaker is
 * open, deliveries are deferred to the next probe time without spending an
 * attempt; when the probe time comes, one worker wins the probe (the script's
 * claim) and sends the next delivery as it.
 *
 * The healthy path writes nothing: a success is noted only while the endpoint
 * is troubled (a hash exists, or failures wait to be reported), so an
 * endpoint that never fails costs one well-predicted branch per delivery. */
#include "worker/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/keys.h"
#include "common/layout.h"
#include "common/log.h"
#include "common/scripts.h"

#define PROBE_LEASE_MARGIN_MS 5000 /* a probe's lease: --timeout plus this */
#define CLAIM_RETRY_MAX_MS    1000 /* deferral while a claim is in flight: interval/4, at most */

void hq__breaker_init(struct hq_worker *w)
{
    hq_redis_script_init(&w->breaker.script, hq_script_health);
    hq_redis_script_init(&w->breaker.disable_script, hq_script_disable);
    hq_key_breaker_feed(w->layout->reg, w->breaker.key_feed, sizeof(w->breaker.key_feed));
}

void hq__breaker_free(struct hq_worker *w)
{
    for (struct hq_ep *ep; (ep = w->breaker.pending);) {
        w->breaker.pending = ep->cb.pnext;
        ep->cb.listed = 0;
        hq__ep_unref(ep);
    }
}

static void list_add(struct hq_worker *w, struct hq_ep *ep)
{
    if (ep->cb.listed)
        return;
    ep->cb.listed = 1;
    ep->refs++; /* the list's */
    ep->cb.pnext = w->breaker.pending;
    w->breaker.pending = ep;
}

void hq__breaker_note(struct hq_worker *w, struct hq_ep *ep, const struct hq_attempt *a, int probe)
{
    struct hq_ep_breaker *cb = &ep->cb;
    if (a->ok) {
        cb->ok++;
        cb->tail = 0;
    } else {
        cb->failed++;
        cb->tail++;
        cb->status = a->status;
        snprintf(cb->error, sizeof(cb->error), "%s", a->error);
    }
    cb->probed |= probe;
    cb->gone |= a->status == 410 && w->cfg->disable_on_gone;
    list_add(w, ep);
    if (cb->gone && !cb->reporting) /* at once, not at the tick: its retry may be near */
        hq__breaker_flush(w);
}

static enum hq_cb_state state_of(const char *s, size_t n)
{
    if (n == 4 && memcmp(s, "open", 4) == 0)
        return HQ_CB_OPEN;
    if (n == 9 && memcmp(s, "half_open", 9) == 0)
        return HQ_CB_HALF_OPEN;
    if (n == 5 && memcmp(s, "watch", 5) == 0)
        return HQ_CB_WATCH;
    if (n == 8 && memcmp(s, "disabled", 8) == 0)
        return HQ_CB_DISABLED;
    return HQ_CB_CLOSED;
}

void hq__breaker_learn(struct hq_ep *ep, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return;
    const redisReply *s = r->element[0], *n = r->element[1];
    if (s->type != REDIS_REPLY_STRING) {
        ep->cb.state = HQ_CB_CLOSED;
        return;
    }
    enum hq_cb_state st = state_of(s->str, s->len);
    ep->cb.state = st == HQ_CB_CLOSED ? HQ_CB_WATCH : st; /* a hash exists */
    ep->cb.next_probe_ms = n->type == REDIS_REPLY_STRING ? strtoll(n->str, NULL, 10) : 0;
}

static void on_disable_reply(struct hq_redis_client *c, redisReply *r, void *arg)
{
    (void)c;
    struct hq_ep *ep = arg;
    ep->cb.disabling = 0;
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
        hq_log(HQ_LOG_WARN, "breaker", "endpoint %s disabled in the registry", ep->id);
    else if (r && r->type == REDIS_REPLY_ERROR)
        hq_log(HQ_LOG_ERROR, "breaker", "disabling endpoint %s failed: %s", ep->id, r->str);
    hq__ep_unref(ep);
}

/* The registry side of a disable (disable.lua, idempotent): sent by whichever
 * worker sees the breaker disabled while its cached endpoint is enabled. */
static void write_disable(struct hq_worker *w, struct hq_ep *ep, const char *reason)
{
    if (ep->cb.disabling || !ep->e.enabled || !w->writer)
        return;
    char key[HQ_KEY_MAX], now[24], at[24];
    hq_key_endpoint(w->layout->reg, ep->id, key, sizeof(key));
    snprintf(now, sizeof(now), "%lld", (long long)hq_now_ms());
    snprintf(at, sizeof(at), "%lld", (long long)ep->cb.next_probe_ms); /* when disabled */
    const char *argv[] = {key, w->key_endpoints_ver, reason && *reason ? reason : "automatic", now,
                          at};
    if (hq_redis_router_script(w->writer, w->layout->reg_slot, &w->breaker.disable_script,
                               on_disable_reply, ep, 2, (int)(sizeof(argv) / sizeof(argv[0])), argv,
                               NULL) != 0)
        return;
    ep->refs++;
    ep->cb.disabling = 1;
}

static void on_published(struct hq_redis_client *c, redisReply *r, void *arg)
{
    (void)c, (void)r, (void)arg;
}

/* Tells the other workers of a transition this worker's report made (state:
 * "open", "closed" or "disabled"). Advisory, so without a callback: a worker
 * that misses it learns from its own failures or its next cache refresh. */
static void publish(struct hq_worker *w, const struct hq_ep *ep, const char *state)
{
    char next[24], max[24];
    snprintf(next, sizeof(next), "%lld", (long long)ep->cb.next_probe_ms);
    snprintf(max, sizeof(max), "%d", HQ_BREAKER_FEED_MAX);
    const char *argv[] = {
        "XADD", w->breaker.key_feed, "MAXLEN", "~", max, "*", "ep", ep->id, "state", state, "next",
        next};
    if (hq_redis_router_command(w->writer, w->layout->reg_slot, on_published, NULL, 0,
                                (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL) != 0)
        hq_log(HQ_LOG_DEBUG, "breaker", "could not publish the transition of %s", ep->id);
}

/* Applies one feed entry [id, [field, value, ...]] to the cached endpoint it
 * names (endpoints not cached are read with their state when first needed). */
static void apply(struct hq_worker *w, const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
        return;
    const redisReply *f = e->element[1];
    const redisReply *id = NULL, *st = NULL, *next = NULL;
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(k->str, "ep") == 0)
            id = v;
        else if (strcmp(k->str, "state") == 0)
            st = v;
        else if (strcmp(k->str, "next") == 0)
            next = v;
    }
    if (!id || !st || !next)
        return;
    struct hq_ep *ep = hq__ep_find(w, id->str, id->len);
    if (!ep)
        return;
    ep->cb.state = state_of(st->str, st->len);
    ep->cb.next_probe_ms = strtoll(next->str, NULL, 10);
}

static void on_feed_reply(struct hq_redis_client *c, redisReply *r, void *arg)
{
    (void)c;
    struct hq_worker *w = arg;
    w->breaker.following = 0;
    if (!r || (r->type != REDIS_REPLY_ARRAY && r->type != REDIS_REPLY_NIL))
        return; /* asked again on the next tick */
    const redisReply *entries = NULL;
    int first = !w->breaker.feed_id[0];
    if (first) { /* XREVRANGE + - COUNT 1: where to start; nothing to apply */
        snprintf(w->breaker.feed_id, sizeof(w->breaker.feed_id), "0-0");
        entries = r->type == REDIS_REPLY_ARRAY ? r : NULL;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
               r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2) {
        entries = r->element[0]->element[1]; /* XREAD: [[key, entries]] */
    }
    if (!entries || entries->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING ||
            e->element[0]->len >= sizeof(w->breaker.feed_id))
            continue;
        snprintf(w->breaker.feed_id, sizeof(w->breaker.feed_id), "%s", e->element[0]->str);
        if (!first)
            apply(w, e);
    }
}

/* The gauges of what this worker knows: cached endpoints open (or half-open)
 * and disabled. A walk of the cache per tick, as dispatch.c's congestion check. */
static void count_states(struct hq_worker *w)
{
    long open = 0, disabled = 0;
    for (int b = 0; b < HQ_CACHE_BUCKETS; b++) {
        for (const struct hq_ep *ep = w->dispatch.eps[b]; ep; ep = ep->next) {
            if (ep->missing)
                continue;
            if (ep->cb.state == HQ_CB_OPEN || ep->cb.state == HQ_CB_HALF_OPEN)
                open++;
            else if (ep->cb.state == HQ_CB_DISABLED || !ep->e.enabled)
                disabled++;
        }
    }
    atomic_store_explicit(&w->metrics.eps_open, open, memory_order_relaxed);
    atomic_store_explicit(&w->metrics.eps_disabled, disabled, memory_order_relaxed);
}

void hq__breaker_follow(struct hq_worker *w)
{
    count_states(w);
    if (w->breaker.following || !w->writer || w->stopping ||
        !hq_redis_router_ready(w->writer, w->layout->reg_slot))
        return;
    char count[16];
    snprintf(count, sizeof(count), "%d", HQ_BREAKER_FEED_READ);
    const char *first[] = {"XREVRANGE", w->breaker.key_feed, "+", "-", "COUNT", "1"};
    const char *next[] = {"XREAD",           "COUNT", count, "STREAMS", w->breaker.key_feed,
                          w->breaker.feed_id};
    int fresh = !w->breaker.feed_id[0];
    if (hq_redis_router_command(w->writer, w->layout->reg_slot, on_feed_reply, w, 0, 6,
                                fresh ? first : next, NULL) == 0)
        w->breaker.following = 1;
}

/* One health.lua call in flight; holds a reference to ep. */
struct call {
    struct hq_worker *w;
    struct hq_ep *ep;
    int claim;
};

static void on_reply(struct hq_redis_client *c, redisReply *r, void *arg)
{
    (void)c;
    struct call *k = arg;
    struct hq_worker *w = k->w;
    struct hq_ep *ep = k->ep;
    if (k->claim)
        ep->cb.claiming = 0;
    else
        ep->cb.reporting = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 5 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_INTEGER ||
        r->element[2]->type != REDIS_REPLY_INTEGER || r->element[3]->type != REDIS_REPLY_STRING ||
        r->element[4]->type != REDIS_REPLY_STRING) {
        /* Advisory: the next failure reports again; a lost claim is asked again. */
        if (r && !w->stopping)
            hq_log(HQ_LOG_ERROR, "breaker", "health.lua for endpoint %s failed: %s", ep->id,
                   r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    } else {
        struct hq_ep_breaker *cb = &ep->cb;
        cb->state = state_of(r->element[0]->str, r->element[0]->len);
        cb->next_probe_ms = r->element[1]->integer;
        if (k->claim)
            cb->probe = r->element[2]->integer == 1;
        const char *t = r->element[3]->str;
        if (strcmp(t, "opened") == 0) {
            atomic_fetch_add_explicit(&w->metrics.breaker_opened, 1, memory_order_relaxed);
            hq_log(
                HQ_LOG_WARN, "breaker",
                "endpoint %s: circuit opened (last error: %s); deliveries deferred until a probe succeeds",
                ep->id, cb->error[0] ? cb->error : "-");
        } else if (strcmp(t, "closed") == 0) {
            atomic_fetch_add_explicit(&w->metrics.breaker_closed, 1, memory_order_relaxed);
            hq_log(HQ_LOG_INFO, "breaker", "endpoint %s: circuit closed", ep->id);
        } else if (strcmp(t, "disabled") == 0) {
            atomic_fetch_add_explicit(&w->metrics.breaker_disabled, 1, memory_order_relaxed);
            hq_log(
                HQ_LOG_WARN, "breaker",
                "endpoint %s: disabled (%s); its deliveries are dead-lettered (endpoint_disabled) until it is enabled",
                ep->id, r->element[4]->str);
        }
        if (t[0])
            publish(w, ep, r->element[0]->str);
        if (cb->state == HQ_CB_DISABLED)
            write_disable(w, ep, r->element[4]->str);
    }
    hq__ep_unref(ep);
    free(k);
}

/* Sends health.lua for ep: a report of its noted outcomes, or a claim. */
static int send_call(struct hq_worker *w, struct hq_ep *ep, int claim, int64_t now)
{
    const struct hq_worker_config *cfg = w->cfg;
    unsigned h = hq_layout_partition_for(w->layout, ep->id, strlen(ep->id), 0);
    char key[HQ_KEY_MAX];
    if (hq_key_breaker(w->layout->part[h].base, ep->id, key, sizeof(key)) < 0)
        return -1;
    struct hq_ep_breaker *cb = &ep->cb;
    char num[14][24];
    int i = 0;
    const char *argv[21];
    argv[0] = key;
    argv[1] = w->parts[h * HQ_LANES + HQ_LANE_FRESH].key_events; /* its operational events */
    argv[2] = claim ? "c" : "r";
#define NUM(v) (snprintf(num[i], sizeof(num[i]), "%lld", (long long)(v)), num[i++])
    argv[3] = NUM(now);
    argv[4] = ep->id;
    argv[5] = ep->e.tenant;
    const struct hq_endpoint_breaker *o = &ep->e.breaker; /* its overrides, else the worker's */
    argv[6] = NUM(o->failures ? o->failures : cfg->breaker_failures);
    argv[7] = NUM(o->ratio_set ? o->ratio : cfg->breaker_ratio);
    argv[8] = NUM(o->window_ms ? o->window_ms : cfg->breaker_window_ms);
    argv[9] = NUM(o->min_attempts ? o->min_attempts : cfg->breaker_min_attempts);
    argv[10] = NUM(o->probe_ms ? o->probe_ms : cfg->breaker_probe_ms);
    argv[11] = NUM(cfg->timeout_ms + PROBE_LEASE_MARGIN_MS);
    int argc = 12;
    if (!claim) {
        argv[12] = NUM(cb->ok);
        argv[13] = NUM(cb->failed);
        argv[14] = NUM(cb->tail);
        argv[15] = cb->probed ? "1" : "0";
        argv[16] = NUM(cb->status);
        argv[17] = cb->error;
        argv[18] = cb->gone ? "1" : "0";
        argv[19] = NUM(cfg->disable_after_ms);
        argv[20] = NUM(cfg->failing_after_ms);
        argc = 21;
    }
#undef NUM
    struct call *k = hq_calloc(1, sizeof(*k));
    k->w = w;
    k->ep = ep;
    k->claim = claim;
    if (hq_redis_router_script(w->writer, w->layout->part[h].slot, &w->breaker.script, on_reply, k,
                               2, argc, argv, NULL) != 0) {
        free(k);
        return -1;
    }
    ep->refs++; /* the call's */
    if (claim) {
        cb->claiming = 1;
    } else {
        cb->reporting = 1;
        cb->ok = cb->failed = cb->tail = cb->probed = cb->gone = 0;
    }
    return 0;
}

void hq__breaker_flush(struct hq_worker *w)
{
    if (!w->writer || w->stopping)
        return;
    int64_t now = hq_now_ms();
    struct hq_ep *list = w->breaker.pending;
    w->breaker.pending = NULL;
    for (struct hq_ep *ep = list, *next; ep; ep = next) {
        next = ep->cb.pnext;
        ep->cb.listed = 0;
        if (ep->cb.reporting || send_call(w, ep, 0, now) != 0) {
            list_add(w, ep); /* in order: after the report in flight */
        }
        hq__ep_unref(ep); /* the list's (list_add or the call took another) */
    }
}

int64_t hq__breaker_hold(struct hq_worker *w, struct hq_delivery *d, int64_t now)
{
    struct hq_ep *ep = d->ep;
    struct hq_ep_breaker *cb = &ep->cb;
    if (cb->state == HQ_CB_DISABLED) {
        write_disable(w, ep, NULL); /* redone when the first writer died */
        return -1;
    }
    if (cb->probe) {
        cb->probe = 0;
        if (now < cb->next_probe_ms) {
            d->probe = 1;
            return 0;
        }
    }
    int64_t interval = w->cfg->breaker_probe_ms;
    if (now >= cb->next_probe_ms) { /* open, or a half-open lease that ran out */
        if (!cb->claiming && w->writer)
            (void)send_call(w, ep, 1, now); /* failing to send: the next delivery asks again */
        return now + (interval / 4 < CLAIM_RETRY_MAX_MS ? interval / 4 : CLAIM_RETRY_MAX_MS);
    }
    if (cb->state == HQ_CB_OPEN)
        return cb->next_probe_ms;
    return now + interval; /* half-open: another worker's probe is out */
}
