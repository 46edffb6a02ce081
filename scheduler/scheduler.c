/* The scheduler loop: one blocking connection to the deployment
 * (hq_redis_conn), its layout, one move_due.lua call per partition per round
 * on that partition's node, a sleep until the earliest due retry (clamped to
 * [1 ms, interval]), capped-backoff reconnects, and the pause of an untagged
 * scheduler while `hookq migrate` runs. Owns timing and the connection; the
 * per-member decision (re-enqueue, dead-letter bad data) is move_due.lua's, so
 * that it is atomic and N schedulers can race safely. See scheduler.h and
 * docs/internals/scheduler.md. */
#define _POSIX_C_SOURCE 200809L

#include "scheduler/scheduler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/durability.h"
#include "common/keys.h"
#include "common/layout_store.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/redis_conn.h"
#include "common/scripts.h"
#include "common/slot.h"

static long long reply_ll(const redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING && r->len > 0)
        return strtoll(r->str, NULL, 10);
    return -1;
}

int hq_scheduler_move_due(redisContext *c, const char *base, long long batch, long long dead_maxlen,
                          struct hq_move_result *res, struct hq_err *err)
{
    char retry[HQ_KEY_MAX], data[HQ_KEY_MAX], events[HQ_KEY_MAX], dead[HQ_KEY_MAX];
    char retries[HQ_KEY_MAX], nbatch[24], nmax[24], nraw[24], nbound[24];
    hq_key_retry(base, retry, sizeof(retry));
    hq_key_retry_data(base, data, sizeof(data));
    hq_key_events(base, events, sizeof(events));
    hq_key_dead(base, dead, sizeof(dead));
    hq_key_retries(base, retries, sizeof(retries));
    snprintf(nbound, sizeof(nbound), "%lld", batch * HQ_SCHED_LANE_BATCHES);
    snprintf(nbatch, sizeof(nbatch), "%lld", batch);
    snprintf(nmax, sizeof(nmax), "%lld", dead_maxlen);
    snprintf(nraw, sizeof(nraw), "%d", HQ_DEAD_RAW_MAX);
    const char *argv[] = {retry, data, events, dead, retries, nbatch, nmax, nraw, nbound};
    redisReply *r = hq_script_call(c, hq_script_move_due, 5, 9, argv, NULL, err);
    if (!r)
        return HQ_EREDIS;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 5) {
        freeReplyObject(r);
        return hq_err_set(err, HQ_EREDIS, "move_due: unexpected reply shape");
    }
    res->requeued = reply_ll(r->element[0]);
    res->dead = reply_ll(r->element[1]);
    res->now_ms = reply_ll(r->element[2]);
    res->next_ms = reply_ll(r->element[3]);
    res->held = reply_ll(r->element[4]) == 1;
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

/* An untagged scheduler looks for a migration's config at least this often,
 * whatever --interval says: `hookq migrate` waits for it to pause. */
#define MIGRATION_CHECK_MS 1000
/* Polling period while paused for a migration (a stop signal ends it at once). */
#define MIGRATION_POLL_MS 250

struct sched {
    const struct hq_scheduler_config *cfg;
    struct hq_redis_conn *conn; /* NULL while Redis is down */
    struct hq_layout L;
    char name[300]; /* "scheduler:<hostname>:<pid>", reported while paused */
    long long backoff;
    int64_t last_down_log;
    int down;         /* a failure was logged and nothing has worked since */
    int started;      /* the layout was loaded once ("started" logged) */
    int ran_untagged; /* moved retries in the untagged layout: a migration waits for
                       * this scheduler's report in the paused set */
};

static void next_backoff(struct sched *s)
{
    s->backoff = s->backoff * 2 > HQ_RECONNECT_MAX_MS ? HQ_RECONNECT_MAX_MS : s->backoff * 2;
}

/* Logs a failure once per outage (then every HQ_REDIS_DOWN_LOG_EVERY_MS). */
static void log_down(struct sched *s, const char *what, const struct hq_err *e)
{
    if (!s->down || hq_mono_ms() - s->last_down_log >= HQ_REDIS_DOWN_LOG_EVERY_MS) {
        hq_log(HQ_LOG_WARN, "scheduler", "%s: %s", what, e->msg);
        s->last_down_log = hq_mono_ms();
        s->down = 1;
    }
}

static void drop_conn(struct sched *s)
{
    hq_redis_conn_free(s->conn);
    s->conn = NULL;
}

/* Waits, stop-aware, until no migration is in progress, then L holds the
 * layout to work on. 0, 1 on a stop signal, or an error (Redis lost). */
static int wait_migration(struct sched *s, struct hq_err *e)
{
    for (;;) {
        int rc = hq_layout_wait_migration(s->conn, s->cfg->prefix, &s->L, 0, e);
        if (rc == 0) {
            s->ran_untagged = 0;
            hq_log(HQ_LOG_INFO, "scheduler", "migration over: going on with %u partitions",
                   s->L.nparts);
            return 0;
        }
        if (rc != HQ_ETIMEDOUT)
            return rc;
        if (wait_stop(s->cfg, MIGRATION_POLL_MS))
            return 1;
    }
}

/* SADD <prefix>:{reg}:migrate:paused <name>: this scheduler moves nothing
 * until the migration ends. 0 or HQ_EREDIS. */
static int report_paused(struct sched *s, struct hq_err *e)
{
    char key[HQ_KEY_MAX];
    hq_key_migrate_paused(s->cfg->prefix, key, sizeof(key));
    const char *argv[] = {"SADD", key, s->name};
    redisReply *r = hq_redis_conn_cmd(s->conn, s->L.reg_slot, e, 3, argv, NULL);
    if (!r)
        return HQ_EREDIS;
    freeReplyObject(r);
    hq_log(HQ_LOG_INFO, "scheduler", "paused for a migration to %u partitions (as %s)", s->L.nparts,
           s->name);
    return 0;
}

/* An untagged scheduler: when the config hash has appeared with
 * state=migrating, stops moving (it holds nothing between script calls),
 * reports in the paused set, waits for the end and goes on with the new
 * layout. A config without the state (a layout created meanwhile) is
 * simply taken. 0 to go on, 1 on a stop signal, or an error. */
static int check_migration(struct sched *s, struct hq_err *e)
{
    struct hq_layout n = {0};
    int rc = hq_layout_load(s->conn, s->cfg->prefix, &n, e);
    if (rc != 0)
        return rc;
    if (!n.tagged) {
        hq_layout_free(&n);
        return 0;
    }
    hq_layout_free(&s->L);
    s->L = n;
    if (!s->L.migrating) {
        hq_log(HQ_LOG_INFO, "scheduler", "layout changed: %u partitions", s->L.nparts);
        return 0;
    }
    rc = report_paused(s, e);
    if (rc != 0)
        return rc;
    rc = wait_migration(s, e);
    return rc;
}

/* Loads the layout on the open connection, waiting out a migration. 0, 1 on
 * a stop signal, or an error (conn dropped). */
static int load_deployment(struct sched *s, struct hq_err *e)
{
    hq_layout_free(&s->L);
    int rc = hq_layout_load(s->conn, s->cfg->prefix, &s->L, e);
    if (rc == 0 && s->L.tagged && !s->L.migrating)
        s->ran_untagged = 0; /* a migration seen over: nothing to report any more */
    if (rc == 0 && s->L.migrating) {
        hq_log(HQ_LOG_INFO, "scheduler", "a migration to %u partitions is in progress: waiting",
               s->L.nparts);
        /* Lost Redis while paused (or just before reporting): report again,
         * the migration may still be waiting for this scheduler. */
        if (s->ran_untagged)
            rc = report_paused(s, e);
        if (rc == 0)
            rc = wait_migration(s, e);
    }
    if (rc != 0 && rc != 1)
        drop_conn(s);
    if (rc == 0 && !s->started) {
        hq_log(HQ_LOG_INFO, "scheduler",
               "started prefix=%s partitions=%u batch=%lld interval_ms=%lld", s->cfg->prefix,
               s->L.nparts, s->cfg->batch, s->cfg->interval_ms);
        s->started = 1;
    }
    return rc;
}

/* Opens the connection, then load_deployment. */
static int connect_deployment(struct sched *s, struct hq_err *e)
{
    s->conn = hq_redis_conn_open(s->cfg->redis_url, HQ_REDIS_CONNECT_TIMEOUT_MS, e);
    if (!s->conn)
        return HQ_EREDIS;
    return load_deployment(s, e);
}

/* One round: one batch per partition, each on its partition's node. Fills
 * *full (a partition returned a full batch) and *next (earliest due time left
 * minus now, -1 when none). 0, or an error after which the caller backs off
 * (the conn is dropped when a connection broke, the slot map refreshed after
 * an error reply such as MOVED). */
static int round_all(struct sched *s, long long *sum_requeued, long long *sum_dead, int *full,
                     long long *next, struct hq_err *e)
{
    int failed = 0;
    *full = 0;
    *next = -1;
    for (unsigned i = 0; i < s->L.nparts; i++) {
        redisContext *c = hq_redis_conn_node(s->conn, s->L.part[i].slot, e);
        struct hq_move_result res;
        if (!c) {
            failed = HQ_EREDIS;
            continue;
        }
        if (hq_scheduler_move_due(c, s->L.part[i].base, s->cfg->batch, s->cfg->dead_maxlen, &res,
                                  e) != 0) {
            failed = HQ_EREDIS;
            if (c->err) {
                /* The connection is gone: reconnect after a pause. */
                drop_conn(s);
                return failed;
            }
            /* An error reply (MOVED after a resharding, CLUSTERDOWN, ...):
             * re-read the slot map; the other partitions go on. */
            struct hq_err re = {0};
            if (hq_redis_conn_refresh(s->conn, &re) != 0) {
                drop_conn(s);
                return failed;
            }
            continue;
        }
        *sum_requeued += res.requeued;
        *sum_dead += res.dead;
        /* A full batch means more may be due now: go again without sleeping. */
        if (res.requeued + res.dead >= s->cfg->batch)
            *full = 1;
        if (res.held) {
            /* The retry lane is full: look again once workers have read some. */
            if (*next < 0 || *next > HQ_SCHED_LANE_WAIT_MS)
                *next = HQ_SCHED_LANE_WAIT_MS;
        } else if (res.next_ms >= 0) {
            long long d = res.next_ms - res.now_ms;
            if (*next < 0 || d < *next)
                *next = d < 0 ? 0 : d;
        }
    }
    return failed;
}

int hq_scheduler_run(const struct hq_scheduler_config *cfg, struct hq_err *err)
{
    struct sched s = {.cfg = cfg, .backoff = HQ_RECONNECT_MIN_MS};
    char host[256] = "unknown";
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "unknown");
    host[sizeof(host) - 1] = '\0';
    snprintf(s.name, sizeof(s.name), "scheduler:%s:%ld", host, (long)getpid());

    /* Unreachable at start: exit 1. Lost right after (reading the layout):
     * as if lost later, the loop reconnects; a malformed config: exit 1. */
    s.conn = hq_redis_conn_open(cfg->redis_url, HQ_REDIS_CONNECT_TIMEOUT_MS, err);
    if (!s.conn)
        return HQ_EREDIS;
    struct hq_err e = {0};
    char cfg_key[HQ_KEY_MAX];
    hq_key_config(cfg->prefix, cfg_key, sizeof(cfg_key));
    /* The registry's node (the config's slot): a cluster's others are not checked. */
    redisContext *c0 = hq_redis_conn_node(s.conn, hq_key_slot(cfg_key, strlen(cfg_key)), &e);
    if (c0)
        hq_scheduler_check_durability(c0);
    int rc = load_deployment(&s, err);
    if (rc == 1) {
        drop_conn(&s);
        hq_layout_free(&s.L);
        return 0;
    }
    if (rc != 0 && rc != HQ_EREDIS) {
        drop_conn(&s);
        hq_layout_free(&s.L);
        return rc;
    }
    if (rc != 0)
        log_down(&s, "moving due retries failed", err);

    long long sum_requeued = 0, sum_dead = 0;
    int64_t last_summary = hq_mono_ms();

    for (;;) {
        if (wait_stop(cfg, 0))
            break;
        if (!s.conn) {
            rc = connect_deployment(&s, &e);
            if (rc == 1)
                break;
            if (rc != 0) {
                log_down(&s, "redis still down", &e);
                if (wait_stop(cfg, s.backoff))
                    break;
                next_backoff(&s);
                continue;
            }
            hq_log(HQ_LOG_INFO, "scheduler", "redis reconnected");
            s.down = 0;
            s.backoff = HQ_RECONNECT_MIN_MS;
        }
        if (!s.L.tagged) {
            rc = check_migration(&s, &e);
            if (rc == 1)
                break;
            if (rc != 0) {
                hq_err_prefix(&e, "reading the layout");
                log_down(&s, "moving due retries failed", &e);
                /* Reconnect after the pause: the connection may be what broke. */
                drop_conn(&s);
                if (wait_stop(cfg, s.backoff))
                    break;
                next_backoff(&s);
                continue;
            }
        }

        int full;
        long long next;
        if (!s.L.tagged)
            s.ran_untagged = 1;
        if (round_all(&s, &sum_requeued, &sum_dead, &full, &next, &e) != 0) {
            log_down(&s, "moving due retries failed", &e);
            if (wait_stop(cfg, s.backoff))
                break;
            next_backoff(&s);
            continue;
        }
        if (s.down) {
            hq_log(HQ_LOG_INFO, "scheduler", "moving due retries works again");
            s.down = 0;
        }
        s.backoff = HQ_RECONNECT_MIN_MS;
        if ((sum_requeued || sum_dead) &&
            hq_mono_ms() - last_summary >= HQ_REDIS_DOWN_LOG_EVERY_MS) {
            hq_log(HQ_LOG_INFO, "scheduler", "moved requeued=%lld dead=%lld", sum_requeued,
                   sum_dead);
            sum_requeued = sum_dead = 0;
            last_summary = hq_mono_ms();
        }
        if (full)
            continue;
        long long sleep_ms = cfg->interval_ms;
        if (next >= 0 && next < sleep_ms)
            sleep_ms = next;
        if (!s.L.tagged && sleep_ms > MIGRATION_CHECK_MS)
            sleep_ms = MIGRATION_CHECK_MS;
        if (sleep_ms < 1)
            sleep_ms = 1;
        if (wait_stop(cfg, sleep_ms))
            break;
    }
    if (sum_requeued || sum_dead)
        hq_log(HQ_LOG_INFO, "scheduler", "moved requeued=%lld dead=%lld", sum_requeued, sum_dead);
    hq_log(HQ_LOG_INFO, "scheduler", "stopped");
    drop_conn(&s);
    hq_layout_free(&s.L);
    return 0;
}
