/* hookq.delivery.exhausted: deliveries dead-lettered because their attempts
 * (max_attempts) or their retry window ran out are counted here per endpoint,
 * in memory, with the first and last event ids and a small sample; once per
 * tick the counts of every endpoint go to its home partition H in ONE
 * exhausted.lua call per partition, which emits at most one event per endpoint
 * per --exhausted-interval onto H's events stream and holds the rest in
 * <p>:{H}:exh:<ep> for the next (docs/flow-control.md#operational-webhooks).
 *
 * The healthy path costs nothing: outcome.c reports only those dead letters
 * (one branch in dispatch.c), and no Redis call is made per delivery. The
 * counts are advisory: a worker killed before its tick loses what it noted,
 * and a delivery redelivered after a kill may be counted twice. */
#include "worker/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/keys.h"
#include "common/layout.h"
#include "common/log.h"
#include "common/scripts.h"

#define ARGS_PER_EP 9 /* exhausted.lua's arguments per endpoint */

void hq__exhausted_init(struct hq_worker *w)
{
    hq_redis_script_init(&w->exhausted.script, hq_script_exhausted);
}

void hq__exhausted_free(struct hq_worker *w)
{
    for (struct hq_ep *ep; (ep = w->exhausted.pending);) {
        w->exhausted.pending = ep->exh->next;
        ep->exh->listed = 0;
        hq__ep_unref(ep);
    }
}

static void list_add(struct hq_worker *w, struct hq_ep *ep)
{
    if (ep->exh->listed)
        return;
    ep->exh->listed = 1;
    ep->refs++; /* the list's */
    ep->exh->next = w->exhausted.pending;
    w->exhausted.pending = ep;
}

void hq__exhausted_note(struct hq_worker *w, struct hq_ep *ep, const char *event_id, int window)
{
    if (w->cfg->exhausted_every_ms <= 0)
        return;
    if (!ep->exh)
        ep->exh = hq_calloc(1, sizeof(*ep->exh));
    struct hq_ep_exh *x = ep->exh;
    int64_t now = hq_now_ms();
    if (x->ne + x->nw == 0) {
        x->first_ms = now;
        x->nsample = 0;
    }
    if (window)
        x->nw++;
    else
        x->ne++;
    x->last_ms = now;
    snprintf(x->last_id, sizeof(x->last_id), "%s", event_id);
    if (x->nsample < HQ_EXHAUSTED_SAMPLE)
        snprintf(x->sample[x->nsample++], sizeof(x->sample[0]), "%s", event_id);
    snprintf(x->tenant, sizeof(x->tenant), "%s", ep->e.tenant);
    list_add(w, ep);
}

/* One exhausted.lua call in flight: the endpoints it carries (a reference each). */
struct call {
    struct hq_worker *w;
    int n;
    struct hq_ep *eps[HQ_EXHAUSTED_CALL_MAX];
};

static void on_reply(struct hq_redis_client *c, redisReply *r, void *arg)
{
    (void)c;
    struct call *k = arg;
    struct hq_worker *w = k->w;
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == (size_t)k->n;
    if (!ok && r && !w->stopping)
        hq_log(HQ_LOG_ERROR, "exhausted", "exhausted.lua failed: %s",
               r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    for (int i = 0; i < k->n; i++) {
        struct hq_ep *ep = k->eps[i];
        struct hq_ep_exh *x = ep->exh;
        x->sending = 0;
        const redisReply *e = ok ? r->element[i] : NULL;
        long long wait = e && e->type == REDIS_REPLY_INTEGER ? e->integer : 0;
        /* Held back in Redis: poke once the interval is over, so the counts go
         * out even when no more dead letters come (an error: advisory, dropped). */
        x->poke_ms = wait > 0 ? hq_now_ms() + wait : 0;
        if ((x->poke_ms || x->ne + x->nw) && !w->stopping)
            list_add(w, ep);
        hq__ep_unref(ep); /* the call's */
    }
    free(k);
}

/* One endpoint's arguments as text (borrowed by argv until the call is sent). */
struct ep_args {
    char key[HQ_KEY_MAX];
    char num[4][24];
    char sample[HQ_EXHAUSTED_SAMPLE * (HQ_ID_MAX + 1) + 1]; /* "\n"-joined */
};

static void send_call(struct hq_worker *w, unsigned h, struct hq_ep **eps, int n)
{
    struct call *k = hq_calloc(1, sizeof(*k));
    k->w = w;
    int argc = 1 + n + 2 + n * ARGS_PER_EP;
    const char **argv = hq_calloc((size_t)argc, sizeof(*argv));
    struct ep_args *t = hq_calloc((size_t)n, sizeof(*t));
    char interval[24], keep[24];
    snprintf(interval, sizeof(interval), "%lld", w->cfg->exhausted_every_ms);
    snprintf(keep, sizeof(keep), "%d", HQ_EXHAUSTED_SAMPLE);
    argv[0] = w->parts[h * HQ_LANES + HQ_LANE_FRESH].key_events;
    argv[1 + n] = interval;
    argv[2 + n] = keep;
    for (int i = 0; i < n; i++) {
        struct hq_ep_exh *x = eps[i]->exh;
        (void)hq_key_exhausted(w->layout->part[h].base, eps[i]->id, t[i].key, sizeof(t[i].key));
        argv[1 + i] = t[i].key;
        size_t len = 0;
        for (int j = 0; j < x->nsample; j++)
            len += (size_t)snprintf(t[i].sample + len, sizeof(t[i].sample) - len, "%s\n",
                                    x->sample[j]);
        snprintf(t[i].num[0], sizeof(t[i].num[0]), "%ld", x->ne);
        snprintf(t[i].num[1], sizeof(t[i].num[1]), "%ld", x->nw);
        snprintf(t[i].num[2], sizeof(t[i].num[2]), "%lld", (long long)x->first_ms);
        snprintf(t[i].num[3], sizeof(t[i].num[3]), "%lld", (long long)x->last_ms);
        const char **a = argv + 3 + n + i * ARGS_PER_EP;
        a[0] = eps[i]->id;
        a[1] = x->tenant;
        a[2] = t[i].num[0];
        a[3] = t[i].num[1];
        a[4] = x->nsample ? x->sample[0] : "";
        a[5] = x->last_id;
        a[6] = t[i].num[2];
        a[7] = t[i].num[3];
        a[8] = t[i].sample;
    }
    int rc = hq_redis_router_script(w->writer, w->layout->part[h].slot, &w->exhausted.script,
                                    on_reply, k, 1 + n, argc, argv, NULL);
    free(t);
    free(argv);
    if (rc != 0) {
        for (int i = 0; i < n; i++)
            list_add(w, eps[i]); /* the next tick tries again */
        free(k);
        return;
    }
    for (int i = 0; i < n; i++) {
        struct hq_ep_exh *x = eps[i]->exh;
        k->eps[k->n++] = eps[i];
        eps[i]->refs++; /* the call's */
        x->sending = 1;
        x->ne = x->nw = 0;
        x->nsample = 0;
        x->poke_ms = 0;
    }
}

void hq__exhausted_flush(struct hq_worker *w)
{
    if (!w->writer || w->stopping || !w->exhausted.pending)
        return;
    int64_t now = hq_now_ms();
    struct hq_ep *list = w->exhausted.pending;
    w->exhausted.pending = NULL;
    /* Due endpoints grouped by home partition, a call per partition (and per
     * HQ_EXHAUSTED_CALL_MAX); the others go back to the list. */
    unsigned nparts = w->layout->nparts;
    struct hq_ep **due = hq_calloc((size_t)nparts * HQ_EXHAUSTED_CALL_MAX, sizeof(*due));
    int *ndue = hq_calloc(nparts, sizeof(*ndue));
    for (struct hq_ep *ep = list, *next; ep; ep = next) {
        struct hq_ep_exh *x = ep->exh;
        next = x->next;
        x->listed = 0;
        unsigned h = hq_layout_partition_for(w->layout, ep->id, strlen(ep->id), 0);
        int ready = x->ne + x->nw > 0 || (x->poke_ms && now >= x->poke_ms);
        if (!x->sending && ready && ndue[h] < HQ_EXHAUSTED_CALL_MAX) {
            due[h * HQ_EXHAUSTED_CALL_MAX + (unsigned)ndue[h]++] = ep;
            continue; /* the list's reference moves to due[] */
        }
        if (x->sending || x->ne + x->nw > 0 || x->poke_ms)
            list_add(w, ep);
        hq__ep_unref(ep); /* the list's (list_add took another) */
    }
    for (unsigned h = 0; h < nparts; h++) {
        if (!ndue[h])
            continue;
        struct hq_ep **eps = due + h * HQ_EXHAUSTED_CALL_MAX;
        send_call(w, h, eps, ndue[h]);
        for (int i = 0; i < ndue[h]; i++)
            hq__ep_unref(eps[i]); /* the list's */
    }
    free(ndue);
    free(due);
}
