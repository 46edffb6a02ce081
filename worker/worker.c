/* The worker process: owns the loop and the order of things — start-up,
 * signals, the drain on SIGTERM, and the shutdown sequence that ends with
 * uv_loop_close() == 0. The files form a one-way pipeline:
 *
 *   worker.c -> consumer.c -> dispatch.c -> delivery.c (one HTTP attempt)
 *                   |              |
 *                   +--------------+--> outcome.c (decide, record, ack)
 *   (all -> entry.c; delivery.c -> ssrf.c)
 *
 * Nothing below calls up into this file. What depends on several modules is
 * re-evaluated here once per loop turn, before the loop blocks (the prepare
 * handle, like redis' beforeSleep): record ready outcomes, re-arm the read
 * when capacity freed, and notice that a drain is done. */
#include "worker/internal.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/durability.h"
#include "common/keys.h"
#include "common/layout_store.h"
#include "common/log.h"
#include "common/scripts.h"

#define TICK_MS         250   /* congestion checks, flush retries, re-arming reads */
#define LAG_SAMPLE_MS   5000  /* XINFO GROUPS for the lag gauge */
#define DRAIN_MARGIN_MS 10000 /* drain gives up this long after the attempt timeout */
#define LAYOUT_CHECK_MS 1000  /* an untagged worker looks for a migration this often */

/* ---- Shutdown ------------------------------------------------------------------ */

static void on_handle_closed(uv_handle_t *h)
{
    struct hq_worker *w = h->loop->data;
    w->handles_open--;
}

static void close_handle(struct hq_worker *w, uv_handle_t *h)
{
    if (!uv_is_closing(h)) {
        w->handles_open++;
        uv_close(h, on_handle_closed);
    }
}

static void on_client_closed(void *arg)
{
    struct hq_worker *w = arg;
    w->handles_open--;
}

static void on_curl_closed(void *arg)
{
    struct hq_worker *w = arg;
    w->handles_open--;
    /* curl is gone: close Redis last, so nothing recorded is cut off. */
    for (unsigned i = 0; i < w->nparts; i++) {
        w->handles_open++;
        hq_redis_router_close(w->parts[i].reader, on_client_closed, w);
        w->parts[i].reader = NULL;
    }
    w->handles_open++;
    hq_redis_router_close(w->writer, on_client_closed, w);
    w->writer = NULL;
}

static void shutdown_all(struct hq_worker *w)
{
    if (w->stopping)
        return;
    w->stopping = 1;
    hq_log(HQ_LOG_INFO, "worker", "stopping: %d entries held, %ld deliveries in flight",
           w->entries.n, w->dispatch.in_flight);
    close_handle(w, (uv_handle_t *)&w->turn_prepare);
    close_handle(w, (uv_handle_t *)&w->flush_timer);
    close_handle(w, (uv_handle_t *)&w->claim_timer);
    close_handle(w, (uv_handle_t *)&w->tick_timer);
    hq__rl_close(w, close_handle);
    hq__ordered_close(w, close_handle);
    close_handle(w, (uv_handle_t *)&w->sigterm);
    close_handle(w, (uv_handle_t *)&w->sigint);
    w->handles_open++;
    hq_curl_uv_close(w->curl, on_curl_closed, w);
    w->curl = NULL;
}

static void on_paused_reported(struct hq_redis_client *c, redisReply *r, void *arg)
{
    (void)c;
    struct hq_worker *w = arg;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        w->relayout = 1; /* reported again by the next turn */
        return;
    }
    hq_log(HQ_LOG_INFO, "worker", "paused for the migration: nothing held");
    shutdown_all(w);
}

/* During a drain: stops once nothing is held or in flight. O(1). A worker
 * drained for a migration first tells `hookq migrate` it holds nothing. */
static void maybe_done(struct hq_worker *w)
{
    if (w->stopping || w->entries.n != 0 || hq__consumer_busy(w) || w->outcomes.flushing != 0)
        return;
    if (w->relayout == 1) {
        char key[HQ_KEY_MAX];
        hq_key_migrate_paused(w->cfg->prefix, key, sizeof(key));
        const char *argv[] = {"SADD", key, w->cfg->consumer};
        if (hq_redis_router_command(w->writer, w->layout->reg_slot, on_paused_reported, w, 0, 3,
                                    argv, NULL) == 0)
            w->relayout = 2; /* reported; shut down on the reply */
        return;
    }
    if (w->relayout)
        return;
    hq_log(HQ_LOG_INFO, "worker", "drained: every outcome recorded");
    shutdown_all(w);
}

/* ---- Signals ------------------------------------------------------------------------ */

static void on_signal(uv_signal_t *s, int signum)
{
    struct hq_worker *w = s->loop->data;
    w->signals++;
    if (w->signals > 1) {
        hq_log(
            HQ_LOG_WARN, "worker",
            "second signal (%d): exiting now; %d held entries will be reclaimed by other workers",
            signum, w->entries.n);
        _exit(1);
    }
    hq_log(HQ_LOG_INFO, "worker",
           "signal %d: draining (%ld deliveries in flight, %d entries held; again to exit now)",
           signum, w->dispatch.in_flight, w->entries.n);
    w->draining = 1;
    hq__dispatch_defer_all(w);
}

/* ---- Periodic work ---------------------------------------------------------------------- */

/* Lag and pending are sampled per stream (one XINFO GROUPS per events
 * stream, one lane_stats.lua per retry lane, on the partition's node) and
 * exported summed over both lanes; per partition the events stream's lag
 * (when several partitions) and the retry lane's depth and age. */
struct lag_round;
struct lag_call {
    struct lag_round *round;
    unsigned part;
};
struct lag_round {
    struct hq_worker *w;
    int left;     /* replies still to come */
    long lag;     /* sum so far; -1 once any partition's lag is unknown */
    long pending; /* likewise */
    struct lag_call call[];
};

static void on_lag_reply(struct hq_redis_client *c, redisReply *r, void *arg)
{
    (void)c;
    struct lag_call *call = arg;
    struct lag_round *lr = call->round;
    struct hq_worker *w = lr->w;
    long lag = -1, pending = -1;
    const struct hq_wpart *p = &w->parts[call->part];
    if (p->lane == HQ_LANE_RETRY) {
        /* lane_stats.lua: {depth, unread, pending, age_ms}. */
        long v[4] = {-1, -1, -1, -1};
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 4)
            for (int k = 0; k < 4; k++)
                if (r->element[k]->type == REDIS_REPLY_INTEGER)
                    v[k] = (long)r->element[k]->integer;
        lag = v[1];
        pending = v[2];
        atomic_store_explicit(&w->metrics.lane_depth[p->lpart], v[0], memory_order_relaxed);
        atomic_store_explicit(&w->metrics.lane_lag_ms[p->lpart], v[3], memory_order_relaxed);
    } else if (r && r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r->elements; i++) {
            redisReply *g = r->element[i];
            if (g->type != REDIS_REPLY_ARRAY)
                continue;
            int ours = 0;
            long glag = -1, gpending = -1;
            for (size_t k = 0; k + 1 < g->elements; k += 2) {
                redisReply *f = g->element[k], *v = g->element[k + 1];
                if (f->type != REDIS_REPLY_STRING && f->type != REDIS_REPLY_STATUS)
                    continue;
                if (strcmp(f->str, "name") == 0 && v->type == REDIS_REPLY_STRING)
                    ours = strcmp(v->str, HQ_GROUP) == 0;
                else if (strcmp(f->str, "lag") == 0 && v->type == REDIS_REPLY_INTEGER)
                    glag = (long)v->integer;
                else if (strcmp(f->str, "pending") == 0 && v->type == REDIS_REPLY_INTEGER)
                    gpending = (long)v->integer;
            }
            if (ours) {
                lag = glag;
                pending = gpending;
            }
        }
    if (p->lane == HQ_LANE_FRESH)
        atomic_store_explicit(&w->metrics.part_lag[p->lpart], lag, memory_order_relaxed);
    lr->lag = (lr->lag < 0 || lag < 0) ? -1 : lr->lag + lag;
    lr->pending = (lr->pending < 0 || pending < 0) ? -1 : lr->pending + pending;
    if (--lr->left > 0)
        return;
    atomic_store_explicit(&w->metrics.stream_lag, lr->lag, memory_order_relaxed);
    atomic_store_explicit(&w->metrics.stream_pending, lr->pending, memory_order_relaxed);
    free(lr);
}

/* Returns 1 when the round was sent, 0 when a partition was not ready. */
static int sample_lag(struct hq_worker *w)
{
    for (unsigned i = 0; i < w->nparts; i++)
        if (!hq_redis_router_ready(w->writer, w->parts[i].slot) || !w->consumer.part ||
            !w->consumer.part[i].group_ready)
            return 0; /* a partial sum would read as a drop in lag; no group, no lag */
    struct lag_round *lr = hq_calloc(1, sizeof(*lr) + w->nparts * sizeof(lr->call[0]));
    lr->w = w;
    lr->left = (int)w->nparts + 1; /* + 1 until every call is sent */
    for (unsigned i = 0; i < w->nparts; i++) {
        lr->call[i] = (struct lag_call){lr, i};
        const char *argv[] = {"XINFO", "GROUPS", w->parts[i].key_events};
        const char *lane_argv[] = {w->parts[i].key_events, HQ_GROUP};
        int rc = w->parts[i].lane == HQ_LANE_RETRY
                     ? hq_redis_router_script(w->writer, w->parts[i].slot, &w->lane_stats_script,
                                              on_lag_reply, &lr->call[i], 1, 2, lane_argv, NULL)
                     : hq_redis_router_command(w->writer, w->parts[i].slot, on_lag_reply,
                                               &lr->call[i], 0, 3, argv, NULL);
        if (rc != 0) {
            lr->lag = lr->pending = -1;
            lr->left--;
        }
    }
    if (--lr->left == 0) {
        atomic_store_explicit(&w->metrics.stream_lag, lr->lag, memory_order_relaxed);
        atomic_store_explicit(&w->metrics.stream_pending, lr->pending, memory_order_relaxed);
        free(lr);
    }
    return 1;
}

/* ---- Migration ------------------------------------------------------------------------- */

static void on_layout_reply(struct hq_redis_client *c, redisReply *r, void *arg)
{
    (void)c;
    struct hq_worker *w = arg;
    w->layout_asking = 0;
    if (!r || r->type != REDIS_REPLY_INTEGER || r->integer == 0 || w->relayout || w->stopping)
        return;
    hq_log(HQ_LOG_INFO, "worker",
           "a migration to partitions began (hookq migrate): draining (%ld deliveries in flight, "
           "%d entries held), then resuming on the new layout",
           w->dispatch.in_flight, w->entries.n);
    w->relayout = 1;
    w->draining = 1;
    hq__dispatch_defer_all(w);
}

/* An untagged worker looks for the config hash a migration writes first. */
static void check_layout(struct hq_worker *w, int64_t now)
{
    if (w->layout->tagged || w->relayout || w->layout_asking ||
        now - w->last_layout_ms < LAYOUT_CHECK_MS ||
        !hq_redis_router_ready(w->writer, w->layout->reg_slot))
        return;
    w->last_layout_ms = now;
    char key[HQ_KEY_MAX];
    hq_key_config(w->cfg->prefix, key, sizeof(key));
    const char *argv[] = {"EXISTS", key};
    if (hq_redis_router_command(w->writer, w->layout->reg_slot, on_layout_reply, w, 0, 2, argv,
                                NULL) == 0)
        w->layout_asking = 1;
}

static struct hq_curl_uv *curl_new(struct hq_worker *w)
{
    /* One multi per HQ_CONNECTIONS_PER_SHARD connections (curl_uv.h says why). */
    long maxconn = (long)(w->cfg->max_connections > w->cfg->concurrency ? w->cfg->max_connections
                                                                        : w->cfg->concurrency);
    long nshards = maxconn / HQ_CONNECTIONS_PER_SHARD;
    nshards = nshards < 1 ? 1 : nshards > HQ_SHARDS_MAX ? HQ_SHARDS_MAX : nshards;
    struct hq_curl_uv *cu = hq_curl_uv_new(&w->loop, (int)nshards, hq__dispatch_done, w);
    if (!cu)
        return NULL;
    /* The connection cache must hold a connection per in-flight delivery or
     * keep-alive is lost under load, and one per endpoint in use or a worker
     * spread over thousands of endpoints reconnects for most deliveries
     * (cmd_worker.c sizes it: >= --concurrency, within the open-file limit). */
    /* Split over the shards (an endpoint's connections all live in one), but
     * never below one endpoint's own cap, or a busy endpoint loses keep-alive. */
    long per_shard = (maxconn + nshards - 1) / nshards;
    if (per_shard < (long)w->cfg->endpoint_concurrency)
        per_shard = (long)w->cfg->endpoint_concurrency;
    if (hq_curl_uv_multi_setopt(cu, CURLMOPT_MAXCONNECTS, per_shard) != 0 ||
        hq_curl_uv_multi_setopt(cu, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX) != 0) {
        hq_curl_uv_close(cu, NULL, NULL);
        return NULL;
    }
    return cu;
}

/* An idle worker keeps every keep-alive connection of its last burst open
 * (curl prunes its cache only at the next transfer): after --idle-close with
 * nothing in flight, swap in a fresh multi and close the old one with its
 * connections. Pooled easy handles are dropped too: their close-socket
 * callback points at the old binding. */
static void maybe_close_idle(struct hq_worker *w, int64_t now)
{
    if (!w->pool.curl_used || w->dispatch.in_flight > 0 || w->draining || w->stopping ||
        now - w->pool.last_transfer_ms < w->cfg->idle_close_ms)
        return;
    struct hq_curl_uv *fresh = curl_new(w);
    if (!fresh)
        return;
    hq__delivery_drop_easy(w);
    hq_curl_uv_close(w->curl, NULL, NULL);
    w->curl = fresh;
    hq_log(HQ_LOG_DEBUG, "worker", "idle for %lld ms: closed keep-alive connections",
           (long long)(now - w->pool.last_transfer_ms));
}

static void on_tick(uv_timer_t *t)
{
    struct hq_worker *w = container_of(t, struct hq_worker, tick_timer);
    int64_t now = hq_now_ms();
    hq__dispatch_tick(w);
    hq__breaker_flush(w);
    hq__exhausted_flush(w);
    hq__breaker_follow(w);
    hq__dispatch_watch_endpoints(w);
    hq__dispatch_retry_parked(w);
    maybe_close_idle(w, now);
    hq__consumer_start(w); /* groups not created yet (a node that was not ready) */
    hq__consumer_read(w);
    check_layout(w, now);
    if (now - w->last_lag_ms >= LAG_SAMPLE_MS && w->writer && sample_lag(w))
        w->last_lag_ms = now;
    if (w->draining && !w->stopping) {
        if (!w->drain_started_ms)
            w->drain_started_ms = now;
        if (now - w->drain_started_ms > w->cfg->timeout_ms + DRAIN_MARGIN_MS) {
            hq_log(HQ_LOG_WARN, "worker",
                   "drain timed out with %d entries held; they stay pending and will be reclaimed",
                   w->entries.n);
            w->exit_code = 1;
            shutdown_all(w);
        }
    }
}

static void on_claim_timer(uv_timer_t *t)
{
    struct hq_worker *w = container_of(t, struct hq_worker, claim_timer);
    hq__consumer_claim(w);
}

/* Once per loop turn, after the turn's callbacks and before the loop blocks
 * (libuv computes the poll timeout after prepare handles run, so a command
 * written here does not wait for the next wake-up). Each step is O(1) when
 * nothing changed: the read is normally in flight already. */
static void on_flush_timer(uv_timer_t *t)
{
    (void)t; /* it only wakes the loop: the turn's prepare flushes */
}

static void on_turn_prepare(uv_prepare_t *p)
{
    struct hq_worker *w = container_of(p, struct hq_worker, turn_prepare);
    int64_t batch_ms = hq__dispatch_batches(w); /* before the flush: a send may fail at once */
    int64_t due_ms = hq__outcome_flush(w);
    if (batch_ms >= 0 && (due_ms < 0 || batch_ms < due_ms))
        due_ms = batch_ms;
    if (due_ms >= 0 && !w->stopping &&
        (!uv_is_active((uv_handle_t *)&w->flush_timer) ||
         uv_timer_get_due_in(&w->flush_timer) > (uint64_t)due_ms))
        uv_timer_start(&w->flush_timer, on_flush_timer, (uint64_t)due_ms, 0);
    if (w->draining)
        maybe_done(w);
    else
        hq__consumer_read(w);
    hq__ordered_turn(w);
}

/* ---- Redis connection state --------------------------------------------------------------- */

/* Ready when every partition can be read and written (the gauge: a shard
 * down reads as not ready, though the other partitions keep flowing). */
static void update_ready(struct hq_worker *w)
{
    int ready = w->writer != NULL;
    unsigned long rc = w->writer ? hq_redis_router_reconnects(w->writer) : 0;
    for (unsigned i = 0; i < w->nparts; i++) {
        struct hq_wpart *p = &w->parts[i];
        ready = ready && p->reader && hq_redis_router_ready(p->reader, p->slot) &&
                hq_redis_router_ready(w->writer, p->slot);
        if (p->reader)
            rc += hq_redis_router_reconnects(p->reader);
    }
    atomic_store_explicit(&w->metrics.redis_ready, ready, memory_order_relaxed);
    atomic_store_explicit(&w->metrics.redis_reconnects, rc, memory_order_relaxed);
}

static void on_reader_state(struct hq_redis_client *c, int ready, const char *why, void *arg)
{
    (void)c;
    (void)why;
    struct hq_wpart *p = arg;
    update_ready(p->w);
    hq__consumer_reader_changed(p, ready);
}

/* Warns once when Redis' configuration risks events (common/durability.h
 * says which and how). Errors (a managed Redis that forbids CONFIG) are
 * ignored. */
static void on_config_reply(struct hq_redis_client *c, redisReply *r, void *arg)
{
    (void)c;
    (void)arg;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING)
        return;
    char msg[256];
    if (hq_durability_risk(r->element[0]->str, r->element[1]->str, msg, sizeof(msg)))
        hq_log(HQ_LOG_WARN, "worker", "%s", msg);
}

static void check_durability(struct hq_worker *w)
{
    if (w->durability_checked)
        return;
    w->durability_checked = 1;
    for (int i = 0; i < HQ_DURABILITY_SETTINGS; i++) {
        const char *argv[] = {"CONFIG", "GET", hq_durability_settings[i]};
        if (hq_redis_router_command(w->writer, w->layout->reg_slot, on_config_reply, w, 0, 3, argv,
                                    NULL) != 0) {
            w->durability_checked = 0;
            return;
        }
    }
}

static void on_writer_state(struct hq_redis_client *c, int ready, const char *why, void *arg)
{
    (void)c;
    (void)why;
    struct hq_worker *w = arg;
    update_ready(w);
    if (ready) {
        check_durability(w);
        hq__consumer_start(w);
        (void)hq__outcome_flush(w); /* a batch not due yet is timed by the next turn */
    }
}

/* ---- Run ----------------------------------------------------------------------------------- */

int hq_worker_run(const struct hq_worker_config *cfg, struct hq_err *err)
{
    /* hiredis writes with write(2). When Redis dies with one of our commands
     * unread, its kernel answers with a reset, and a write that comes after
     * it (epoll said writable before the reset arrived) raises SIGPIPE, which
     * would end the worker without a word. Ignored, the write fails with
     * EPIPE and the client reconnects like after any lost connection.
     * (libcurl sends with MSG_NOSIGNAL itself.) */
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, NULL);

    struct hq_worker *w = hq_calloc(1, sizeof(*w));
    w->cfg = cfg;
    w->layout = cfg->layout;
    hq__entries_init(&w->entries);
    hq_metrics_init(&w->metrics);
    w->nparts = w->layout->nparts * HQ_LANES;
    w->parts = hq_calloc(w->nparts, sizeof(*w->parts));
    hq_metrics_alloc_parts(&w->metrics, w->layout->nparts);
    for (unsigned i = 0; i < w->nparts; i++) {
        struct hq_wpart *p = &w->parts[i];
        p->lpart = i / HQ_LANES;
        p->lane = (enum hq_lane)(i % HQ_LANES);
        const char *base = w->layout->part[p->lpart].base;
        p->w = w;
        p->index = i;
        p->slot = w->layout->part[p->lpart].slot;
        if (p->lane == HQ_LANE_RETRY)
            hq_key_retries(base, p->key_events, sizeof(p->key_events));
        else
            hq_key_events(base, p->key_events, sizeof(p->key_events));
        hq_key_retry(base, p->key_retry, sizeof(p->key_retry));
        hq_key_retry_data(base, p->key_retry_data, sizeof(p->key_retry_data));
        hq_key_dead(base, p->key_dead, sizeof(p->key_dead));
        hq_key_attempt_index(base, p->key_att_index, sizeof(p->key_att_index));
        hq_key_lines(base, p->key_lines, sizeof(p->key_lines));
        hq_key_retained(base, p->key_retained, sizeof(p->key_retained));
        hq_key_retained_bytes(base, p->key_retained_bytes, sizeof(p->key_retained_bytes));
        hq_key_duplicates(base, p->key_duplicates, sizeof(p->key_duplicates));
    }
    hq_key_endpoints_version(w->layout->reg, w->key_endpoints_ver, sizeof(w->key_endpoints_ver));
    hq_key_types_seen(w->layout->reg, w->key_types_seen, sizeof(w->key_types_seen));

    if (uv_loop_init(&w->loop) != 0) {
        hq_metrics_free_parts(&w->metrics);
        free(w->parts);
        free(w);
        return hq_err_set(err, HQ_EIO, "cannot initialise the event loop");
    }
    w->loop.data = w;

    if (cfg->metrics) {
        w->metrics_server = hq_metrics_serve(cfg->metrics, &w->metrics, err);
        if (!w->metrics_server) {
            uv_loop_close(&w->loop);
            hq_metrics_free_parts(&w->metrics);
            free(w->parts);
            free(w);
            return err ? err->code : HQ_EIO;
        }
    }

    w->curl = curl_new(w);
    if (!w->curl) {
        if (w->metrics_server)
            hq_metrics_stop(w->metrics_server);
        uv_loop_close(&w->loop);
        hq_metrics_free_parts(&w->metrics);
        free(w->parts);
        free(w);
        return hq_err_set(err, HQ_EIO, "cannot initialise libcurl's multi handle");
    }
    hq__outcome_init(w);
    hq_redis_script_init(&w->lane_stats_script, hq_script_lane_stats);
    hq__rl_init(w, hq__dispatch_rl_tick, hq__dispatch_rl_leased);
    hq__breaker_init(w);
    hq__exhausted_init(w);
    hq__ordered_init(w);
    hq__dedupe_init(w);
    uv_prepare_init(&w->loop, &w->turn_prepare);
    uv_prepare_start(&w->turn_prepare, on_turn_prepare);
    uv_timer_init(&w->loop, &w->flush_timer);
    uv_timer_init(&w->loop, &w->tick_timer);
    uv_timer_start(&w->tick_timer, on_tick, TICK_MS, TICK_MS);
    uv_timer_init(&w->loop, &w->claim_timer);
    uint64_t claim_every = (uint64_t)(cfg->claim_idle_ms / 4);
    if (claim_every < 1000)
        claim_every = 1000;
    uv_timer_start(&w->claim_timer, on_claim_timer, claim_every, claim_every);
    uv_signal_init(&w->loop, &w->sigterm);
    uv_signal_start(&w->sigterm, on_signal, SIGTERM);
    uv_signal_init(&w->loop, &w->sigint);
    uv_signal_start(&w->sigint, on_signal, SIGINT);

    char where[300], retain[80] = "";
    hq_redis_url_describe(&cfg->redis, where, sizeof(where));
    if (cfg->retain_ms > 0) /* docs/resend.md */
        snprintf(retain, sizeof(retain), " retain=%lldms retain_max_bytes=%lld", cfg->retain_ms,
                 cfg->retain_max_bytes);
    hq_log(
        HQ_LOG_INFO, "worker",
        "started consumer=%s redis=%s prefix=%s partitions=%u%s concurrency=%lld endpoint_concurrency=%lld timeout=%lldms claim_idle=%lldms%s",
        cfg->consumer, where, cfg->prefix, w->layout->nparts,
        w->layout->tagged ? "" : " (untagged)", cfg->concurrency, cfg->endpoint_concurrency,
        cfg->timeout_ms, cfg->claim_idle_ms, retain);
    if (cfg->dedupe_window_ms > 0) {
        /* HQ_DEDUPE_ID_BYTES: one field of a claim generation, measured
         * (docs/wire-format.md); held up to HQ_DEDUPE_HOLD_MAX windows: the
         * estimate is the most Redis holds, just before a generation goes. */
        double per_100 = 100.0 * (double)cfg->dedupe_window_ms / 1000.0 * HQ_DEDUPE_HOLD_MAX *
                         HQ_DEDUPE_ID_BYTES;
        hq_log(HQ_LOG_INFO, "worker",
               "dedupe: an event id is delivered at most once per %lldms; Redis keeps ~%d bytes "
               "per id for up to %.1fx that: ~%.0f MiB at 100 events/s with ids "
               "(--dedupe-window 0: off)",
               cfg->dedupe_window_ms, HQ_DEDUPE_ID_BYTES, HQ_DEDUPE_HOLD_MAX,
               per_100 / (1024.0 * 1024.0));
    }

    hq__consumer_start(w); /* allocates its per-partition state; groups wait for READY */
    w->writer = hq_redis_router_new(&w->loop, &cfg->redis, "writer", on_writer_state, w);
    for (unsigned i = 0; i < w->nparts; i++) {
        char name[32];
        const char *what = w->parts[i].lane == HQ_LANE_RETRY ? "retry reader" : "reader";
        if (w->layout->nparts == 1)
            snprintf(name, sizeof(name), "%s", what);
        else
            snprintf(name, sizeof(name), "%s p%u", what, w->parts[i].lpart);
        w->parts[i].reader =
            hq_redis_router_new(&w->loop, &cfg->redis, name, on_reader_state, &w->parts[i]);
    }
    if (!w->writer) { /* a cluster router could not start (its error is logged) */
        w->exit_code = 1;
        shutdown_all(w);
    }

    uv_run(&w->loop, UV_RUN_DEFAULT);

    hq__breaker_free(w);
    hq__exhausted_free(w);
    hq__dispatch_free_cache(w);
    hq__delivery_pool_free(w);
    hq__entries_free_all(&w->entries);
    int rc = uv_loop_close(&w->loop);
    if (rc != 0)
        hq_log(HQ_LOG_ERROR, "worker", "event loop closed with handles still open: %s",
               uv_strerror(rc));
    if (w->metrics_server)
        hq_metrics_stop(w->metrics_server);
    int code = w->exit_code, relayout = w->relayout && !w->signals;
    hq__outcome_free(w);
    hq__ordered_free(w);
    hq__consumer_free(w);
    hq_metrics_free_parts(&w->metrics);
    free(w->parts);
    free(w);
    if (rc != 0)
        return hq_err_set(err, HQ_EIO, "event loop closed with handles still open");
    /* After a migration's drain, even one that timed out: what is still
     * pending moved with the stream and is reclaimed on the new layout. */
    if (relayout)
        return hq_err_set(err, HQ_EAGAIN, "the layout changed: a migration runs");
    return code ? hq_err_set(err, HQ_ETIMEDOUT, "drain timed out") : 0;
}
