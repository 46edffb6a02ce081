/* The scheduler loop: one blocking hiredis connection, one move_due.lua call
 * per batch, a sleep until the earliest due retry (clamped to [1 ms,
 * interval]), capped-backoff reconnects. Owns timing and the connection; the
 * per-member decision (re-enqueue, dead-letter) is move_due.lua's, so that it
 * is atomic and N schedulers can race safely. See scheduler.h and
 * docs/internals/scheduler.md. */
#define _POSIX_C_SOURCE 200809L

#include "scheduler/scheduler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/durability.h"
#include "common/keys.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/redis_sync.h"
#include "common/scripts.h"

static long long reply_ll(const redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING && r->len > 0)
        return strtoll(r->str, NULL, 10);
    return -1;
}

int hq_scheduler_move_due(redisContext *c, const char *prefix, long long batch,
                          long long dead_maxlen, struct hq_move_result *res, struct hq_err *err)
{
    char retry[HQ_KEY_MAX], data[HQ_KEY_MAX], events[HQ_KEY_MAX], dead[HQ_KEY_MAX];
    char ep[HQ_KEY_MAX], nbatch[24], nmax[24], nraw[24];
    hq_key_retry(prefix, retry, sizeof(retry));
    hq_key_retry_data(prefix, data, sizeof(data));
    hq_key_events(prefix, events, sizeof(events));
    hq_key_dead(prefix, dead, sizeof(dead));
    hq_key_endpoint(prefix, "", ep, sizeof(ep));
    snprintf(nbatch, sizeof(nbatch), "%lld", batch);
    snprintf(nmax, sizeof(nmax), "%lld", dead_maxlen);
    snprintf(nraw, sizeof(nraw), "%d", HQ_DEAD_RAW_MAX);
    const char *argv[] = {retry, data, events, dead, nbatch, ep, nmax, nraw};
    redisReply *r = hq_script_call(c, hq_script_move_due, 4, 8, argv, NULL, err);
    if (!r)
        return HQ_EREDIS;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        freeReplyObject(r);
        return hq_err_set(err, HQ_EREDIS, "move_due: unexpected reply shape");
    }
    res->requeued = reply_ll(r->element[0]);
    res->dead = reply_ll(r->element[1]);
    res->now_ms = reply_ll(r->element[2]);
    res->next_ms = reply_ll(r->element[3]);
    freeReplyObject(r);
    return 0;
}

/* ---- Startup check ------------------------------------------------------------- */

/* Returns the value of CONFIG GET <name> into out, or -1 (CONFIG forbidden). */
static int config_get(redisContext *c, const char *name, char *out, size_t n)
{
    redisReply *r = redisCommand(c, "CONFIG GET %s", name);
    int rc = -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_STRING) {
        snprintf(out, n, "%s", r->element[1]->str);
        rc = 0;
    }
    if (r)
        freeReplyObject(r);
    return rc;
}

int hq_scheduler_check_durability(redisContext *c)
{
    int warnings = 0;
    for (int i = 0; i < HQ_DURABILITY_SETTINGS; i++) {
        char v[64], msg[256];
        if (config_get(c, hq_durability_settings[i], v, sizeof(v)) == 0 &&
            hq_durability_risk(hq_durability_settings[i], v, msg, sizeof(msg))) {
            hq_log(HQ_LOG_WARN, "scheduler", "%s", msg);
            warnings++;
        }
    }
    return warnings;
}

/* ---- The loop ------------------------------------------------------------------------ */

/* Waits ms or until a stop signal arrives; returns 1 on a stop signal. */
static int wait_stop(const struct hq_scheduler_config *cfg, long long ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    if (!cfg->stop) {
        nanosleep(&ts, NULL);
        return 0;
    }
    int sig = sigtimedwait(cfg->stop, NULL, &ts);
    return sig > 0;
}

int hq_scheduler_run(const struct hq_scheduler_config *cfg, struct hq_err *err)
{
    redisContext *c = hq_redis_connect(cfg->redis_url, HQ_REDIS_CONNECT_TIMEOUT_MS, err);
    if (!c)
        return HQ_EREDIS;
    hq_scheduler_check_durability(c);
    hq_log(HQ_LOG_INFO, "scheduler", "started prefix=%s batch=%lld interval_ms=%lld", cfg->prefix,
           cfg->batch, cfg->interval_ms);

    long long backoff = HQ_RECONNECT_MIN_MS;
    int64_t last_down_log = 0;
    int down = 0;
    long long sum_requeued = 0, sum_dead = 0;
    int64_t last_summary = hq_mono_ms();
    struct hq_err e = {0};

    for (;;) {
        if (wait_stop(cfg, 0))
            break;
        if (!c) {
            c = hq_redis_connect(cfg->redis_url, HQ_REDIS_CONNECT_TIMEOUT_MS, &e);
            if (!c) {
                if (hq_mono_ms() - last_down_log >= HQ_REDIS_DOWN_LOG_EVERY_MS) {
                    hq_log(HQ_LOG_WARN, "scheduler", "redis still down: %s", e.msg);
                    last_down_log = hq_mono_ms();
                }
                if (wait_stop(cfg, backoff))
                    break;
                backoff = backoff * 2 > HQ_RECONNECT_MAX_MS ? HQ_RECONNECT_MAX_MS : backoff * 2;
                continue;
            }
            hq_log(HQ_LOG_INFO, "scheduler", "redis reconnected");
            down = 0;
            backoff = HQ_RECONNECT_MIN_MS;
        }

        struct hq_move_result res;
        if (hq_scheduler_move_due(c, cfg->prefix, cfg->batch, cfg->dead_maxlen, &res, &e) != 0) {
            if (!down) {
                hq_log(HQ_LOG_WARN, "scheduler", "moving due retries failed: %s", e.msg);
                last_down_log = hq_mono_ms();
                down = 1;
            }
            if (c->err) {
                /* The connection is gone: reconnect (after a pause, no busy loop). */
                redisFree(c);
                c = NULL;
            }
            if (wait_stop(cfg, backoff))
                break;
            backoff = backoff * 2 > HQ_RECONNECT_MAX_MS ? HQ_RECONNECT_MAX_MS : backoff * 2;
            continue;
        }
        if (down) {
            hq_log(HQ_LOG_INFO, "scheduler", "moving due retries works again");
            down = 0;
        }
        backoff = HQ_RECONNECT_MIN_MS;
        sum_requeued += res.requeued;
        sum_dead += res.dead;
        if ((sum_requeued || sum_dead) &&
            hq_mono_ms() - last_summary >= HQ_REDIS_DOWN_LOG_EVERY_MS) {
            hq_log(HQ_LOG_INFO, "scheduler", "moved requeued=%lld dead=%lld", sum_requeued,
                   sum_dead);
            sum_requeued = sum_dead = 0;
            last_summary = hq_mono_ms();
        }
        /* A full batch means more may be due now: go again without sleeping. */
        if (res.requeued + res.dead >= cfg->batch)
            continue;
        long long sleep_ms = cfg->interval_ms;
        if (res.next_ms >= 0 && res.next_ms - res.now_ms < sleep_ms)
            sleep_ms = res.next_ms - res.now_ms;
        if (sleep_ms < 1)
            sleep_ms = 1;
        if (wait_stop(cfg, sleep_ms))
            break;
    }
    if (sum_requeued || sum_dead)
        hq_log(HQ_LOG_INFO, "scheduler", "moved requeued=%lld dead=%lld", sum_requeued, sum_dead);
    hq_log(HQ_LOG_INFO, "scheduler", "stopped");
    if (c)
        redisFree(c);
    return 0;
}
