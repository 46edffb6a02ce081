/* Rate limits: per-endpoint limits held across every worker together
 * (docs/flow-control.md, "Rate limits"). This file is the tokens and the
 * leases (a leaf: it calls no other worker file); dispatch.c decides with
 * them (hq__rl_ready where a delivery of a limited endpoint would start),
 * keeps the list of limited endpoints with deliveries waiting and, on this
 * file's tick, asks for their leases (hq__rl_lease). Results come back
 * through the callbacks worker.c installs (dispatch's), as curl_uv reports
 * finished transfers.
 *
 * Leases: GCRA with reservation (common/ratelimit.h), rl_lease.lua on the
 * writer, one call per home partition per tick (HQ_RL_TICK_US) carrying every
 * listed endpoint of that partition that is out of tokens: no Redis round
 * trip per delivery (one per burst of tokens, 0.2 per delivery at 20/s).
 * A lease grants exactly burst tokens usable from a start time Redis gives
 * (its TIME: one clock for every worker); tokens unused HQ_RL_TOKEN_TTL_US
 * after their start go back with the next lease. Endpoints without a limit
 * never come here. */
#include "worker/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/scripts.h"

#define RL_DEFER_MIN_MS 250 /* an over-limit deferral is due at least this far ahead */

/* One lease call in flight: the endpoints it carries (each with a reference
 * the caller took, handed back through the leased callback) and what was
 * asked for each. */
struct lease_call {
    struct hq_worker *w;
    int n;
    struct hq_ep *eps[HQ_RL_LEASE_EPS_MAX];
    int k[HQ_RL_LEASE_EPS_MAX];      /* tokens asked */
    int refund[HQ_RL_LEASE_EPS_MAX]; /* tokens given back (restored if the call fails) */
};

static void on_timer(uv_timer_t *t)
{
    struct hq_worker *w = container_of(t, struct hq_worker, ratelimit.timer);
    w->ratelimit.timer_due_us = 0;
    if (!w->stopping)
        w->ratelimit.on_tick(w);
}

void hq__rl_arm(struct hq_worker *w, int64_t due_us)
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

void hq__rl_init(struct hq_worker *w, hq_rl_tick_cb on_tick, hq_rl_leased_cb on_leased)
{
    hq_redis_script_init(&w->ratelimit.lease_script, hq_script_rl_lease);
    w->ratelimit.on_tick = on_tick;
    w->ratelimit.on_leased = on_leased;
    uv_timer_init(&w->loop, &w->ratelimit.timer);
    w->ratelimit.timer_on = 1;
}

void hq__rl_close(struct hq_worker *w, void (*close_handle)(struct hq_worker *, uv_handle_t *))
{
    if (w->ratelimit.timer_on)
        close_handle(w, (uv_handle_t *)&w->ratelimit.timer);
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

int64_t hq__rl_defer_due(struct hq_ep *ep, int64_t now_ms, int workers)
{
    int64_t due = now_ms + RL_DEFER_MIN_MS;
    if (ep->rl.free_ms > due)
        due = ep->rl.free_ms;
    /* Spaced by the interval times the workers (each defers its share of the
     * backlog), so the backlog comes back at about the rate, each delivery
     * about once, rather than all at once or at n times the rate, most of it
     * to be deferred again. */
    int64_t step = ep->rl.interval_us * (workers > 1 ? workers : 1) / 1000;
    if (step < 1)
        step = 1;
    if (ep->rl.defer_ms + step > due)
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
        enum hq_rl_result res = HQ_RL_FAILED;
        if (!el || el->type != REDIS_REPLY_ARRAY || el->elements != 2 ||
            el->element[0]->type != REDIS_REPLY_INTEGER ||
            el->element[1]->type != REDIS_REPLY_INTEGER) {
            ep->rl.refund += lc->refund[i]; /* not given back: asked again next time */
        } else if (el->element[0]->integer < 0) {
            ep->rl.free_ms = now_ms + el->element[1]->integer / 1000;
            res = HQ_RL_REFUSED;
        } else {
            /* Usable from now + start: later than Redis meant by the reply's
             * travel, so a worker errs under the limit, never over. */
            ep->rl.free_ms = now_ms + el->element[1]->integer / 1000;
            ep->rl.tokens = lc->k[i];
            ep->rl.usable_us = now_us + el->element[0]->integer;
            ep->rl.expire_us = ep->rl.usable_us + HQ_RL_TOKEN_TTL_US;
            res = HQ_RL_GRANTED;
        }
        w->ratelimit.on_leased(w, ep, res); /* gives back the call's reference */
    }
    free(lc);
}

void hq__rl_lease(struct hq_worker *w, unsigned part, struct hq_ep *const *eps, int n)
{
    hq_assert(n > 0 && n <= HQ_RL_LEASE_EPS_MAX);
    struct lease_call *lc = hq_calloc(1, sizeof(*lc));
    lc->w = w;
    lc->n = n;
    int argc = 1 + 5 * n;
    const char **argv = hq_malloc(sizeof(char *) * (size_t)argc);
    char(*keys)[HQ_KEY_MAX] = hq_malloc(sizeof(*keys) * (size_t)n);
    char(*nums)[24] = hq_malloc(sizeof(*nums) * (size_t)(1 + 4 * n));
    int a = 0, m = 0;
    for (int i = 0; i < n; i++) {
        struct hq_ep *ep = eps[i];
        lc->eps[i] = ep;
        lc->k[i] = ep->rl.burst;
        lc->refund[i] = ep->rl.refund;
        ep->rl.refund = 0;
        ep->rl.leasing = 1;
        hq_key_rate_limit(w->layout->part[part].base, ep->id, keys[i], HQ_KEY_MAX);
        argv[a++] = keys[i];
    }
    snprintf(nums[m], sizeof(nums[m]), "%d", HQ_RL_HORIZON_US);
    argv[a++] = nums[m++];
    for (int i = 0; i < n; i++) {
        long long v[4] = {(long long)eps[i]->rl.interval_us, lc->k[i], eps[i]->rl.burst,
                          lc->refund[i]};
        for (int j = 0; j < 4; j++) {
            snprintf(nums[m], sizeof(nums[m]), "%lld", v[j]);
            argv[a++] = nums[m++];
        }
    }
    int rc =
        hq_redis_router_script(w->writer, w->layout->part[part].slot, &w->ratelimit.lease_script,
                               on_lease_reply, lc, n, a, argv, NULL);
    free(argv);
    free(keys);
    free(nums);
    if (rc != 0) /* not sent: as a failed reply (refunds kept, asked again next tick) */
        on_lease_reply(NULL, NULL, lc);
}
