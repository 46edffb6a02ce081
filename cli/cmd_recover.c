/* `hookq recover --endpoint E --since T [--until T2] [--all]` and `hookq event
 * resend ID [--endpoint E]` (docs/resend.md): re-send what an endpoint did not
 * get (its dead letters) and, with --all or by id, what it got (the delivered
 * events workers keep with HOOKQ_RETAIN, <base>:retained). Owns the argument
 * checks (nothing changes on a bad one) and the walk over both streams of
 * every partition; the re-send itself is DLQ replay's (hq_dlq_replay_ids_from,
 * dlq_replay.lua): each event goes back to its partition's events stream for
 * that endpoint only, with its own id, so its original webhook-id. Paged
 * (HQ_DLQ_PAGE entries at a time): memory does not grow with the window. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/dlq.h"
#include "common/endpoint.h"
#include "common/endpoint_store.h"
#include "common/event.h"
#include "common/keys.h"
#include "common/layout.h"
#include "common/redis_conn.h"

/* The progress line on a terminal; arg: the total counted first. */
static void on_progress(const struct hq_dlq_counts *n, void *arg)
{
    fprintf(stderr, "\rre-sent %lld/%lld", n->done, *(const long long *)arg);
    fflush(stderr);
}

/* Whether any partition holds <base>:retained: 1 yes, 0 no, -1 error. */
static int any_retained(struct hq_redis_conn *c, const struct hq_layout *L, struct hq_err *err)
{
    for (unsigned i = 0; i < L->nparts; i++) {
        char key[HQ_KEY_MAX];
        hq_key_retained(L->part[i].base, key, sizeof(key));
        const char *argv[] = {"EXISTS", key};
        redisReply *r = hq_redis_conn_cmd(c, L->part[i].slot, err, 2, argv, NULL);
        if (!r)
            return -1;
        int yes = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
        freeReplyObject(r);
        if (yes)
            return 1;
    }
    return 0;
}

/* Counts (count_only) or re-sends what f matches in the dead streams and, when
 * retained, the retained ones, partition by partition. */
static int walk(struct hq_redis_conn *c, const struct hq_layout *L, struct hq_dlq_filter *f,
                int retained, int count_only, long long *total, struct hq_dlq_counts *n,
                struct hq_err *err)
{
    for (int s = 0; s <= retained; s++) {
        f->retained = s;
        for (unsigned i = 0; i < L->nparts; i++) {
            int rc = count_only ? hq_dlq_purge_matching(c, L, i, f, 1, n, err)
                                : hq_dlq_replay_matching(c, L, i, f, total ? on_progress : NULL,
                                                         total, n, err);
            if (rc != 0)
                return rc;
        }
    }
    f->retained = 0;
    return 0;
}

/* The checks and the run both commands share. endpoint may be NULL (resend by id). */
static int run(const char *cmd, const struct hq_common_opts *common, struct hq_dlq_filter *f,
               int retained, int json)
{
    struct hq_err err = {0};
    struct hq_redis_conn *c = NULL;
    struct hq_layout L = {0};
    int status = hq_cli_connect(cmd, common, &c, &L);
    if (status != 0)
        return status;
    char msg[300];
    if (f->endpoint) {
        redisContext *reg = hq_redis_conn_node(c, L.reg_slot, &err);
        struct hq_endpoint e;
        int rc = reg ? hq_endpoint_get(reg, L.reg, f->endpoint, &e, &err) : HQ_EREDIS;
        if (rc == 0)
            hq_endpoint_free(&e);
        if (rc == HQ_ENOTFOUND) {
            snprintf(msg, sizeof(msg), "--endpoint: unknown endpoint '%.64s'; nothing changed",
                     f->endpoint);
            status = hq_cli_fail(2, cmd, msg);
            goto out;
        }
        if (rc != 0) {
            status = hq_cli_fail(1, cmd, err.msg);
            goto out;
        }
    }
    if (retained && !f->event_id) {
        int has = any_retained(c, &L, &err);
        if (has < 0) {
            status = hq_cli_fail(1, cmd, err.msg);
            goto out;
        }
        if (!has) {
            status = hq_cli_fail(
                2, cmd,
                "--all: no delivered events are retained (HOOKQ_RETAIN is off on the workers, or nothing was delivered within it); nothing changed");
            goto out;
        }
    }
    struct hq_dlq_counts n = {0};
    long long total = 0;
    int tty = isatty(STDERR_FILENO);
    if (tty || f->event_id) {
        if (walk(c, &L, f, retained, 1, NULL, &n, &err) != 0) {
            status = hq_cli_fail(1, cmd, err.msg);
            goto out;
        }
        total = n.done;
        if (total == 0 && f->event_id) {
            snprintf(
                msg, sizeof(msg),
                "event '%.128s' is neither dead-lettered nor retained%s%.64s%s; nothing changed",
                f->event_id, f->endpoint ? " for endpoint '" : "", f->endpoint ? f->endpoint : "",
                f->endpoint ? "'" : "");
            status = hq_cli_fail(1, cmd, msg);
            goto out;
        }
        n = (struct hq_dlq_counts){0};
    }
    int rc = walk(c, &L, f, retained, 0, tty ? &total : NULL, &n, &err);
    if (tty)
        fprintf(stderr, "\n");
    if (rc != 0) {
        status = hq_cli_fail(1, cmd, err.msg);
        goto out;
    }
    if (json)
        printf("{\"resent\":%lld,\"skipped\":%lld,\"missing\":%lld}\n", n.done, n.skipped,
               n.missing);
    else
        printf("re-sent %lld\n", n.done);
    if (n.skipped)
        fprintf(
            stderr,
            "hookq %s: skipped %lld dead letters that hold no valid event (reason invalid: ...); they stay\n",
            cmd, n.skipped);
out:
    hq_cli_disconnect(c, &L);
    return status;
}

int hq_cmd_recover(int argc, char **argv)
{
    struct hq_common_opts common;
    hq_common_opts_init(&common);
    const char *endpoint = NULL, *since = NULL, *until = NULL;
    int all = 0, json = 0;
    struct hq_opt opts[] = {
        {"endpoint", HQ_OPT_STR, &endpoint, "ID", "the endpoint to re-send to (required)",
         HQ_OPTF_NOENV, 0, 0, 0},
        {"since", HQ_OPT_STR, &since, "TIME",
         "outcomes recorded at or after TIME: 2h (ago), unix ms, 2026-11-26[T12:00:00Z] (required)",
         HQ_OPTF_NOENV, 0, 0, 0},
        {"until", HQ_OPT_STR, &until, "TIME", "and before TIME (default: now)", HQ_OPTF_NOENV, 0, 0,
         0},
        {"all", HQ_OPT_BOOL, &all, NULL,
         "also the delivered events kept with HOOKQ_RETAIN (default: only dead letters)",
         HQ_OPTF_NOENV, 0, 0, 0},
        {"json", HQ_OPT_BOOL, &json, NULL, "machine-readable output", HQ_OPTF_NOENV, 0, 0, 0},
        HQ_COMMON_OPTS(&common),
        {0},
    };
    static const struct hq_cmd_help help = {
        "recover --endpoint ID --since TIME [--until TIME] [--all] [--json]",
        "Re-sends to one endpoint what it did not get in a window: its dead letters whose\n"
        "outcome was recorded in [--since, --until), each with its original webhook-id and a\n"
        "fresh attempt budget. --all adds the events it did get (2xx) that the workers kept\n"
        "(HOOKQ_RETAIN). Each re-sent event leaves the dead-letter or retained stream."};
    int npos;
    char **pos;
    int rc = hq_cli_parse(opts, &help, "recover", argc, argv, &npos, &pos);
    if (rc >= 0)
        return rc;
    free(pos);
    const char *cmd = "recover";
    struct hq_err err = {0};
    struct hq_dlq_filter f = {.endpoint = endpoint};
    int64_t now = hq_now_ms();
    if (npos > 0)
        return hq_cli_fail(2, cmd, "takes no arguments (see --help)");
    if (!endpoint)
        return hq_cli_fail(2, cmd, "--endpoint: required");
    if (!since)
        return hq_cli_fail(2, cmd, "--since: required");
    if (hq_dlq_parse_time("--since", since, now, &f.since_ms, &err) != 0 ||
        (until && hq_dlq_parse_time("--until", until, now, &f.before_ms, &err) != 0) ||
        hq_common_opts_apply(&common, &err) != 0)
        return hq_cli_fail(2, cmd, err.msg);
    if (until && f.before_ms <= f.since_ms) {
        char msg[200];
        snprintf(msg, sizeof(msg), "--until: '%.40s' is not after --since '%.40s'", until, since);
        return hq_cli_fail(2, cmd, msg);
    }
    return run(cmd, &common, &f, all, json);
}

int hq_cmd_event_resend(int argc, char **argv)
{
    struct hq_common_opts common;
    hq_common_opts_init(&common);
    const char *endpoint = NULL;
    int json = 0;
    struct hq_opt opts[] = {
        {"endpoint", HQ_OPT_STR, &endpoint, "ID", "only to this endpoint (default: every one)",
         HQ_OPTF_NOENV, 0, 0, 0},
        {"json", HQ_OPT_BOOL, &json, NULL, "machine-readable output", HQ_OPTF_NOENV, 0, 0, 0},
        HQ_COMMON_OPTS(&common),
        {0},
    };
    static const struct hq_cmd_help help = {
        "event resend EVENT_ID [--endpoint ID] [--json]",
        "Re-sends an event, with its original webhook-id, to every endpoint (or ID) that has it\n"
        "dead-lettered or delivered and kept (HOOKQ_RETAIN). Looks through every dead letter and\n"
        "retained event (paged)."};
    int npos;
    char **pos;
    int rc = hq_cli_parse(opts, &help, "event resend", argc, argv, &npos, &pos);
    if (rc >= 0)
        return rc;
    const char *cmd = "event resend";
    const char *id = npos == 1 ? pos[0] : NULL;
    free(pos);
    struct hq_err err = {0};
    if (!id)
        return hq_cli_fail(2, cmd, "usage: hookq event resend EVENT_ID [--endpoint ID]");
    if (hq_event_check_id(id, strlen(id), &err) != 0 || hq_common_opts_apply(&common, &err) != 0)
        return hq_cli_fail(2, cmd, err.msg);
    struct hq_dlq_filter f = {.endpoint = endpoint, .event_id = id};
    return run(cmd, &common, &f, 1, json);
}
