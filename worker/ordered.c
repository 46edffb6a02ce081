/* Ordered endpoints' lines (docs/ordering.md): sending their due heads.
 *
 * The pairs of an ordered endpoint are parked in lines by record_outcomes.lua
 * (outcome.c's "o" op, atomic with the entry's ack); this file runs
 * lines_claim.lua per partition, which moves each due head that is older
 * than every pending entry of the partition (the watermark) to the
 * partition's retry lane, one in flight per line, at most
 * --endpoint-concurrency lines in flight per endpoint. The head is then read,
 * delivered, reclaimed after a kill -9 and recorded like any retry, and its
 * outcome ends or keeps it in its line ("o" op again). Every worker claims; the
 * script is atomic, so none sends a head twice.
 *
 * Most heads do not come from here: a head's end chains the next one in its
 * record call (record_outcomes.lua's "c" op, docs/ordering.md). When: after
 * this worker recorded a line op that did not chain (a parked pair, a kept
 * head, an end with nothing to chain), when the last claim said a line
 * comes due (its backoff; 10 ms while the watermark holds heads back), and at
 * least once a second for what other workers changed. A deployment without
 * ordered endpoints costs one call per partition per second. */
#include "worker/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/scripts.h"

#define CLAIM_IDLE_MS   1000 /* the slowest a worker looks at its partitions' lines */
#define CLAIM_BUSY_MS   10   /* the fastest, while heads wait for the watermark */
#define CLAIM_HEADS_MAX 64   /* heads one call sends */

void hq__ordered_init(struct hq_worker *w)
{
    struct hq_ordered *o = &w->ordered;
    hq_redis_script_init(&o->script, hq_script_lines_claim);
    o->part = hq_calloc(w->layout->nparts, sizeof(*o->part));
    uv_timer_init(&w->loop, &o->timer);
    o->timer_on = 1;
}

void hq__ordered_close(struct hq_worker *w, void (*close_handle)(struct hq_worker *, uv_handle_t *))
{
    if (w->ordered.timer_on) {
        w->ordered.timer_on = 0;
        close_handle(w, (uv_handle_t *)&w->ordered.timer);
    }
}

void hq__ordered_free(struct hq_worker *w)
{
    free(w->ordered.part);
    w->ordered.part = NULL;
}

struct claim {
    struct hq_worker *w;
    unsigned lp;
};

static void on_claim_reply(struct hq_redis_client *c, redisReply *r, void *arg)
{
    (void)c;
    struct claim *cl = arg;
    struct hq_worker *w = cl->w;
    unsigned lp = cl->lp;
    free(cl);
    if (!w->ordered.part)
        return;
    struct hq_ordered_part *op = &w->ordered.part[lp];
    op->claiming = 0;
    int64_t now = (int64_t)uv_now(&w->loop), wait = CLAIM_IDLE_MS;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
        r->element[0]->type == REDIS_REPLY_INTEGER && r->element[2]->type == REDIS_REPLY_INTEGER &&
        r->element[3]->type == REDIS_REPLY_INTEGER) {
        long long due = r->element[2]->integer;
        atomic_fetch_add_explicit(&w->metrics.line_heads, (unsigned long)r->element[0]->integer,
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&w->metrics.lines, (long)(r->element[3]->integer - op->lines),
                                  memory_order_relaxed);
        op->lines = r->element[3]->integer;
        if (due >= 0 && due < wait)
            wait = due < CLAIM_BUSY_MS ? CLAIM_BUSY_MS : due;
    } else {
        hq_log(HQ_LOG_WARN, "ordered", "lines_claim on partition %u failed: %s", lp,
               !r                             ? "no reply"
               : r->type == REDIS_REPLY_ERROR ? r->str
                                              : "unexpected reply");
    }
    op->next_ms = op->again ? 0 : now + wait;
    op->again = 0;
}

static void claim(struct hq_worker *w, unsigned lp)
{
    struct hq_wpart *fresh = &w->parts[lp * HQ_LANES + HQ_LANE_FRESH];
    struct hq_wpart *lane = &w->parts[lp * HQ_LANES + HQ_LANE_RETRY];
    char max[12], cap[24], maxlen[24], maxpay[24];
    snprintf(max, sizeof(max), "%d", CLAIM_HEADS_MAX);
    snprintf(maxpay, sizeof(maxpay), "%lld", (long long)w->cfg->max_payload);
    snprintf(cap, sizeof(cap), "%lld", w->cfg->endpoint_concurrency);
    snprintf(maxlen, sizeof(maxlen), "%lld", w->cfg->dead_maxlen);
    const char *argv[] = {fresh->key_events,
                          lane->key_events,
                          fresh->key_lines,
                          fresh->key_dead,
                          HQ_GROUP,
                          max,
                          cap,
                          maxlen,
                          maxpay};
    size_t lens[9];
    for (int i = 0; i < 9; i++)
        lens[i] = strlen(argv[i]);
    struct claim *cl = hq_malloc(sizeof(*cl));
    *cl = (struct claim){w, lp};
    if (hq_redis_router_script(w->writer, fresh->slot, &w->ordered.script, on_claim_reply, cl, 4, 9,
                               argv, lens) != 0) {
        free(cl);
        return;
    }
    w->ordered.part[lp].claiming = 1;
}

static void on_timer(uv_timer_t *t)
{
    (void)t; /* it only wakes the loop: the turn's prepare claims */
}

void hq__ordered_turn(struct hq_worker *w)
{
    struct hq_ordered *o = &w->ordered;
    if (w->stopping || w->draining || !w->writer || !o->part)
        return;
    int kicked = o->seen != w->outcomes.lines_flushed;
    o->seen = w->outcomes.lines_flushed;
    int64_t now = (int64_t)uv_now(&w->loop), next = -1;
    for (unsigned lp = 0; lp < w->layout->nparts; lp++) {
        struct hq_ordered_part *op = &o->part[lp];
        struct hq_wpart *lane = &w->parts[lp * HQ_LANES + HQ_LANE_RETRY];
        /* Heads go to the retry lane: only once its group exists (created at "0"). */
        if (!w->consumer.part || !w->consumer.part[lane->index].group_ready ||
            !hq_redis_router_ready(w->writer, lane->slot))
            continue;
        if (op->claiming) {
            op->again |= kicked;
            continue;
        }
        if (kicked || now >= op->next_ms)
            claim(w, lp);
        else if (next < 0 || op->next_ms < next)
            next = op->next_ms;
    }
    if (next < 0)
        next = now + CLAIM_IDLE_MS;
    if (!uv_is_active((uv_handle_t *)&o->timer) ||
        (int64_t)uv_timer_get_due_in(&o->timer) > next - now)
        uv_timer_start(&o->timer, on_timer, (uint64_t)(next > now ? next - now : 0), 0);
}
