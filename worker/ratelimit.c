/* Rate limits: per-endpoint limits held across every worker together
 * (docs/flow-control.md, "Rate limits"). A part of dispatch: dispatch.c asks
 * hq__rl_ready() where a delivery of a limited endpoint would start and
 * queues it (at most a lease's worth) when no token is usable; this file
 * leases tokens for the endpoints in its want list and pumps their queues
 * (hq__dispatch_pump) when the tokens start.
 *
 * Leases: GCRA with reservation (common/ratelimit.h), rl_lease.lua on the
 * writer, one call per home partition per tick (RL_TICK_US) carrying every
 * listed endpoint of that partition that is out of tokens: no Redis round
 * trip per delivery (one per burst of tokens, 0.2 per delivery at 20/s).
 * A lease grants exactly burst tokens usable from a start time Redis gives
 * (its TIME: one clock for every worker); tokens unused HQ_RL_TOKEN_TTL_US
 * after their start go back with the next lease. A refused lease (start past
 * the horizon) defers the endpoint's waiting deliveries to when Redis says
 * its reserved backlog ends. Endpoints without a limit never come here. */
#include "worker/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/scripts.h"

#define RL_TICK_US       50000 /* lease calls and token checks while endpoints wait */
#define RL_LEASE_EPS_MAX 64    /* endpoints per lease call: bounds one call's arguments */
#define RL_DEFER_MIN_MS  250   /* an over-limit deferral is due at least this far ahead */

/* One lease call in flight: the endpoints it carries (each holds a reference
 * and has leasing set) and what was asked for each. */
struct lease_call {
    struct hq_worker *w;
    int n;
    struct hq_ep *eps[RL_LEASE_EPS_MAX];
    int k[RL_LEASE_EPS_MAX];      /* tokens asked */
    int refund[RL_LEASE_EPS_MAX]; /* tokens given back (restored if the call fails) */
};

static void on_timer(uv_timer_t *t);

/* Makes the timer fire at due_us (monotonic) unless it fires sooner already. */
static void arm(struct hq_worker *w, int64_t due_us)
{
    struct hq_ratelimit *rl = &w->ratelimit;
    if (w->stopping || !rl->timer_on)
        return;
    if (rl->timer_due_us && rl->timer_due_us <= due_us)
        return;
    int64_t now = hq_mono_us();
    int64_t ms = due_us > now ? (due_us - now + 999) / 1000 : 0;
    rl->timer_due_us = due_us;
    uv_timer_start(&rl->timer, on_timer, (uint64_t)ms, 0);
}

void hq__rl_init(struct hq_worker *w)
{
    hq_redis_script_init(&w->ratelimit.lease_script, hq_script_rl_lease);
    uv_timer_init(&w->loop, &w->ratelimit.timer);
    w->ratelimit.timer_on = 1;
}

void hq__rl_close(struct hq_worker *w, void (*close_handle)(struct hq_worker *, uv_handle_t *))
{
    if (w->ratelimit.timer_on)
        close_handle(w, (uv_handle_t *)&w->ratelimit.timer);
}

void hq__rl_free(struct hq_worker *w)
{
    for (struct hq_ep *ep; (ep = w->ratelimit.want_head);) {
        w->ratelimit.want_head = ep->rl.want_next;
        ep->rl.listed = 0;
        hq__dispatch_ep_unref(ep);
    }
}

int hq__rl_ready(struct hq_ep *ep, int64_t now_us)
{
    struct hq_ep_rl *r = &ep->rl;
    if (r->tokens > 0 && now_us >= r->expire_us) {
        if (r->refund < HQ_RL_BURST_MAX * 2)
            r->refund += r->tokens;
        r->tokens = 0;
    }
    return r->tokens > 0 && now_us >= r->usable_us;
}

void hq__rl_want(struct hq_worker *w, struct hq_ep *ep)
{
    if (ep->rl.listed)
        return;
    ep->rl.listed = 1;
    ep->refs++; /* the list's */
    ep->rl.want_next = w->ratelimit.want_head;
    w->ratelimit.want_head = ep;
    arm(w, ep->rl.tokens > 0 ? ep->rl.usable_us : hq_mono_us());
}

int64_t hq__rl_defer_due(struct hq_ep *ep, int64_t now_ms)
{
    int64_t due = now_ms + RL_DEFER_MIN_MS;
    if (ep->rl.free_ms > due)
        due = ep->rl.free_ms;
    /* Spaced by the interval, so a backlog comes back at about the rate
     * (per worker) rather than all at once. */
    int64_t step = ep->rl.interval_us / 1000 > 0 ? ep->rl.interval_us / 1000 : 1;
    if (ep->rl.defer_ms + step > due && ep->rl.defer_ms - now_ms < 24LL * 3600 * 1000)
        due = ep->rl.defer_ms + step;
    ep->rl.defer_ms = due;
    return due;
}

static void on_lease_reply(struct hq_redis_client *c, redisReply *r, void *arg)
{
    (void)c;
    struct lease_call *lc = arg;
    struct hq_worker *w = lc->w;
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == (size_t)lc->n;
    if (ok)
        atomic_fetch_add_explicit(&w->metrics.rl_leases, 1, memory_order_relaxed);
    else if (r && !w->stopping)
        hq_log(HQ_LOG_WARN, "ratelimit", "lease call failed: %s",
               r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    int64_t now_us = hq_mono_us(), now_ms = hq_now_ms();
    for (int i = 0; i < lc->n; i++) {
        struct hq_ep *ep = lc->eps[i];
        ep->rl.leasing = 0;
        const redisReply *el = ok ? r->element[i] : NULL;
        if (!el || el->type != REDIS_REPLY_ARRAY || el->elements != 2 ||
            el->element[0]->type != REDIS_REPLY_INTEGER ||
            el->element[1]->type != REDIS_REPLY_INTEGER) {
            ep->rl.refund += lc->refund[i]; /* not given back: asked again next time */
        } else if (el->element[0]->integer < 0) {
            ep->rl.free_ms = now_ms + el->element[1]->integer / 1000;
            if (!w->stopping) /* past the horizon: what waits goes to the retry set */
                hq__dispatch_defer_queued(w, ep, hq__rl_defer_due(ep, now_ms));
        } else {
            /* Usable from now + start: later than Redis meant by the reply's
             * travel, so a worker errs under the limit, never over. */
            ep->rl.free_ms = now_ms + el->element[1]->integer / 1000;
            ep->rl.tokens = lc->k[i];
            ep->rl.usable_us = now_us + el->element[0]->integer;
            ep->rl.expire_us = ep->rl.usable_us + HQ_RL_TOKEN_TTL_US;
        }
        hq__dispatch_ep_unref(ep);
    }
    free(lc);
    if (ok && w->ratelimit.want_head)
        arm(w, now_us); /* pump what the tokens allow, re-arm for their start */
    /* else the tick, armed while endpoints wait, asks again */
}

/* Sends one lease call for the endpoints in lc (all of home partition part). */
static void send_lease(struct hq_worker *w, unsigned part, struct lease_call *lc)
{
    int argc = 1 + 5 * lc->n;
    const char **argv = hq_malloc(sizeof(char *) * (size_t)argc);
    char(*keys)[HQ_KEY_MAX] = hq_malloc(sizeof(*keys) * (size_t)lc->n);
    char(*nums)[24] = hq_malloc(sizeof(*nums) * (size_t)(1 + 4 * lc->n));
    int a = 0, m = 0;
    for (int i = 0; i < lc->n; i++) {
        hq_key_rate_limit(w->layout->part[part].base, lc->eps[i]->id, keys[i], HQ_KEY_MAX);
        argv[a++] = keys[i];
    }
    snprintf(nums[m], sizeof(nums[m]), "%d", HQ_RL_HORIZON_US);
    argv[a++] = nums[m++];
    for (int i = 0; i < lc->n; i++) {
        const struct hq_ep *ep = lc->eps[i];
        long long v[4] = {(long long)ep->rl.interval_us, lc->k[i], ep->rl.burst, lc->refund[i]};
        for (int j = 0; j < 4; j++) {
            snprintf(nums[m], sizeof(nums[m]), "%lld", v[j]);
            argv[a++] = nums[m++];
        }
    }
    int rc = hq_redis_router_script(w->writer, w->parts[part].slot, &w->ratelimit.lease_script,
                                    on_lease_reply, lc, lc->n, a, argv, NULL);
    free(argv);
    free(keys);
    free(nums);
    if (rc != 0) /* not sent: as a failed reply (refunds kept, asked again next tick) */
        on_lease_reply(NULL, NULL, lc);
}

/* The tick: starts what usable tokens allow, drops endpoints with nothing
 * waiting, and leases for the ones out of tokens, one call per partition. */
static void on_timer(uv_timer_t *t)
{
    struct hq_worker *w = container_of(t, struct hq_worker, ratelimit.timer);
    struct hq_ratelimit *rl = &w->ratelimit;
    rl->timer_due_us = 0;
    if (w->stopping)
        return;
    int64_t now = hq_mono_us(), wake = now + RL_TICK_US;
    struct lease_call **calls = NULL;
    for (struct hq_ep **pp = &rl->want_head; *pp;) {
        struct hq_ep *ep = *pp;
        if (ep->qhead)
            hq__dispatch_pump(w, ep);
        if (!ep->qhead || !ep->rl.interval_us) { /* nothing waits, or the limit was removed */
            *pp = ep->rl.want_next;
            ep->rl.listed = 0;
            hq__dispatch_ep_unref(ep);
            continue;
        }
        pp = &ep->rl.want_next;
        if (hq__rl_ready(ep, now) || ep->rl.tokens > 0) {
            if (ep->rl.tokens > 0 && ep->rl.usable_us > now && ep->rl.usable_us < wake)
                wake = ep->rl.usable_us;
            continue; /* a slot frees (pump on finish), or the tokens start */
        }
        unsigned part = ep->rl.home;
        if (ep->rl.leasing || part >= w->nparts || !w->writer ||
            !hq_redis_router_ready(w->writer, w->parts[part].slot))
            continue;
        if (!calls)
            calls = hq_calloc(w->nparts, sizeof(*calls));
        if (calls[part] && calls[part]->n == RL_LEASE_EPS_MAX) {
            send_lease(w, part, calls[part]);
            calls[part] = NULL;
        }
        if (!calls[part]) {
            calls[part] = hq_calloc(1, sizeof(**calls));
            calls[part]->w = w;
        }
        struct lease_call *lc = calls[part];
        lc->eps[lc->n] = ep;
        lc->k[lc->n] = ep->rl.burst;
        lc->refund[lc->n] = ep->rl.refund;
        lc->n++;
        ep->rl.refund = 0;
        ep->rl.leasing = 1;
        ep->refs++; /* the call's */
    }
    for (unsigned i = 0; calls && i < w->nparts; i++)
        if (calls[i])
            send_lease(w, i, calls[i]);
    free(calls);
    if (rl->want_head)
        arm(w, wake);
}
