/* `hookq dlq list|show|replay|purge`: options, argument checks, confirmation
 * and output (text for a terminal, --json for scripts). The stream work is
 * dlq.c. Bad ids or filters are refused before anything is touched (exit 2);
 * an unknown entry id is exit 1. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "cli/output.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/keys.h"
#include "common/layout.h"
#include "common/redis_conn.h"
#include "common/limits.h"
#include "common/dlq.h"
#include "common/event.h"

#define OUT_MAX ((size_t)HQ_PAYLOAD_MAX_LIMIT * 6 + 65536) /* one entry as JSON, worst case */

/* ---- Output ----------------------------------------------------------------------------- */

/* A field cut and escaped for one terminal column. */
static const char *col(struct hq_buf *b, const redisReply *e, const char *name, size_t max)
{
    size_t len = 0;
    const char *v = hq_dlq_field(e, name, &len);
    return hq_out_cell(b, v, len, max);
}

/* ---- list --------------------------------------------------------------------------------- */

struct list_state {
    const struct hq_layout *L;
    long long limit, shown;
    int json;
    int64_t now;
    struct hq_buf b, c[6];
};

static int on_list(const redisReply *e, unsigned part, void *arg)
{
    struct list_state *s = arg;
    char id[HQ_DLQ_ID_MAX + 16];
    if (hq_layout_entry_fmt(s->L, part, hq_dlq_entry_id(e), id, sizeof(id)) < 0)
        id[0] = '\0';
    if (s->json) {
        hq_buf_reset(&s->b);
        if (hq_dlq_entry_json(&s->b, id, e) != 0) /* bounded by OUT_MAX: never */
            hq_buf_reset(&s->b);
        printf("%s%s", s->shown ? ",\n" : "", s->b.p);
    } else {
        unsigned long long ms = strtoull(hq_dlq_entry_id(e), NULL, 10);
        char a[32];
        hq_out_span(s->now - (int64_t)ms, a, sizeof(a));
        printf("%-22s %-5s %-28s %-26s %-24s %-26s %s\n", id, a, col(&s->c[0], e, "reason", 40),
               col(&s->c[1], e, "endpoint_id", 40), col(&s->c[2], e, "type", 40),
               col(&s->c[3], e, "event_id", 40), col(&s->c[4], e, "last_status", 8));
    }
    s->shown++;
    return s->shown >= s->limit;
}

/* Newest first over every partition, from --cursor when given; when entries
 * remain past --limit, the cursor of the next page goes to stderr (stdout
 * stays the listing alone). */
static int do_list(struct hq_redis_conn *c, const char *cmd, const struct hq_layout *L,
                   const struct hq_dlq_filter *f, long long limit, const char *cursor, int json)
{
    struct hq_err err = {0};
    struct hq_dlq_cursor cur;
    hq_dlq_cursor_init(&cur, L->nparts);
    if (cursor && hq_dlq_cursor_decode(&cur, cursor, &err) != 0) {
        hq_dlq_cursor_free(&cur);
        return hq_cli_fail(2, cmd, err.msg);
    }
    struct list_state *s = calloc(1, sizeof(*s));
    if (!s)
        return hq_cli_fail(1, cmd, "out of memory");
    s->L = L;
    s->limit = limit;
    s->json = json;
    s->now = hq_now_ms();
    hq_buf_init(&s->b, OUT_MAX);
    for (int i = 0; i < 6; i++)
        hq_buf_init(&s->c[i], 1024);
    if (json)
        printf("[\n");
    else
        printf("%-22s %-5s %-28s %-26s %-24s %-26s %s\n", "ENTRY", "AGE", "REASON", "ENDPOINT",
               "TYPE", "EVENT", "STATUS");
    int more = 0;
    /* A page of one more than the limit per partition: the merge needs at
     * most limit + 1 heads of any one partition to know whether more remain. */
    size_t page = limit < HQ_DLQ_PAGE ? (size_t)limit + 1 : (size_t)HQ_DLQ_PAGE;
    int rc = hq_dlq_scan_merged(c, L, f, &cur, page, on_list, s, &more, &err);
    if (json)
        printf("%s]\n", s->shown ? "\n" : "");
    else if (rc == 0 && s->shown == 0)
        fprintf(stderr, "no dead letters match\n");
    if (rc == 0 && more) {
        char *next = hq_dlq_cursor_encode(&cur);
        fprintf(stderr, "more: --cursor %s\n", next);
        free(next);
    }
    hq_dlq_cursor_free(&cur);
    hq_buf_free(&s->b);
    for (int i = 0; i < 6; i++)
        hq_buf_free(&s->c[i]);
    free(s);
    return rc ? hq_cli_fail(1, cmd, err.msg) : 0;
}

/* ---- show --------------------------------------------------------------------------------- */

/* An entry id as users give it, resolved to its partition. */
struct ref {
    unsigned part;
    char id[HQ_DLQ_ID_MAX];
};

static int do_show(struct hq_redis_conn *c, const char *cmd, const struct hq_layout *L,
                   const char *shown, const struct ref *ref, int json)
{
    struct hq_err err = {0};
    redisReply *r;
    const char *id = shown;
    if (hq_dlq_get(c, L, ref->part, ref->id, &r, &err) != 0)
        return hq_cli_fail(1, cmd, err.msg);
    const redisReply *e = r->element[0];
    struct hq_buf b;
    hq_buf_init(&b, OUT_MAX);
    if (json) {
        if (hq_dlq_entry_json(&b, id, e) != 0)
            hq_buf_reset(&b);
        printf("%s\n", b.p);
    } else {
        printf("%-17s %s\n", "entry", id);
        const redisReply *kv = e->element[1];
        const char *payload = NULL;
        size_t plen = 0;
        for (size_t i = 0; kv->type == REDIS_REPLY_ARRAY && i + 1 < kv->elements; i += 2) {
            const redisReply *k = kv->element[i], *v = kv->element[i + 1];
            if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(k->str, "payload") == 0) {
                payload = v->str;
                plen = v->len;
                continue;
            }
            hq_buf_reset(&b);
            hq_out_escape(&b, k->str, k->len, 64, 0);
            printf("%-17s ", b.p ? b.p : "");
            hq_buf_reset(&b);
            hq_out_escape(&b, v->str, v->len, v->len, 0);
            printf("%s\n", b.p ? b.p : "");
        }
        if (payload) {
            printf("payload (%zu bytes):\n", plen);
            hq_buf_reset(&b);
            struct hq_buf pretty;
            hq_buf_init(&pretty, OUT_MAX);
            if (hq_out_json_pretty(payload, plen, &pretty) == 0)
                hq_out_escape(&b, pretty.p, pretty.len, pretty.len, 1);
            else
                hq_out_escape(&b, payload, plen, plen, 1);
            hq_buf_free(&pretty);
            printf("%s\n", b.p ? b.p : "");
        }
    }
    hq_buf_free(&b);
    freeReplyObject(r);
    return 0;
}

/* ---- replay -------------------------------------------------------------------------------- */

struct progress {
    long long total;
};

static void on_progress(const struct hq_dlq_counts *n, void *arg)
{
    struct progress *p = arg;
    fprintf(stderr, "\rreplayed %lld/%lld", n->done, p->total);
    fflush(stderr);
}

static int report(const char *cmd, const char *verb, const struct hq_dlq_counts *n, int json)
{
    if (json)
        printf("{\"%s\":%lld,\"skipped\":%lld,\"missing\":%lld}\n", verb, n->done, n->skipped,
               n->missing);
    else
        printf("%s %lld\n", verb, n->done);
    if (n->skipped)
        fprintf(
            stderr,
            "hookq %s: skipped %lld entries that hold no valid event (reason invalid: ...); they stay in the dead-letter stream\n",
            cmd, n->skipped);
    if (n->missing)
        fprintf(stderr, "hookq %s: %lld entries were no longer in the dead-letter stream\n", cmd,
                n->missing);
    return 0;
}

/* Checks that every id exists before anything is changed. */
static int check_exist(struct hq_redis_conn *c, const char *cmd, const struct hq_layout *L,
                       const struct ref *refs, int n)
{
    struct hq_err err = {0};
    for (int i = 0; i < n; i++) {
        redisReply *r;
        int rc = hq_dlq_get(c, L, refs[i].part, refs[i].id, &r, &err);
        if (rc != 0) {
            fprintf(stderr, "hookq %s: %s; nothing changed\n", cmd, err.msg);
            return 1;
        }
        freeReplyObject(r);
    }
    return 0;
}

/* Replays (replay) or deletes the given entries, partition by partition. */
static int by_partition(struct hq_redis_conn *c, const struct hq_layout *L, const struct ref *refs,
                        int n, int replay, struct hq_dlq_counts *counts, struct hq_err *err)
{
    const char **ids = calloc((size_t)n + 1, sizeof(*ids));
    if (!ids)
        return hq_err_set(err, HQ_ENOMEM, "out of memory");
    int rc = 0;
    for (unsigned p = 0; p < L->nparts && rc == 0; p++) {
        size_t k = 0;
        for (int i = 0; i < n; i++)
            if (refs[i].part == p)
                ids[k++] = refs[i].id;
        if (k == 0)
            continue;
        rc = replay ? hq_dlq_replay_ids(c, L, p, ids, k, counts, err)
                    : hq_dlq_delete_ids(c, L, p, ids, k, counts, err);
    }
    free(ids);
    return rc;
}

static int do_replay(struct hq_redis_conn *c, const char *cmd, const struct hq_layout *L,
                     const struct ref *refs, int nids, const struct hq_dlq_filter *f, int json)
{
    struct hq_err err = {0};
    struct hq_dlq_counts n = {0};
    if (nids > 0) {
        int rc = check_exist(c, cmd, L, refs, nids);
        if (rc)
            return rc;
        if (by_partition(c, L, refs, nids, 1, &n, &err) != 0)
            return hq_cli_fail(1, cmd, err.msg);
        return report(cmd, "replayed", &n, json);
    }
    struct progress p = {0};
    int tty = isatty(STDERR_FILENO);
    if (tty) {
        struct hq_dlq_counts total = {0};
        for (unsigned i = 0; i < L->nparts; i++)
            if (hq_dlq_purge_matching(c, L, i, f, 1, &total, &err) != 0)
                return hq_cli_fail(1, cmd, err.msg);
        p.total = total.done;
    }
    int rc = 0;
    for (unsigned i = 0; i < L->nparts && rc == 0; i++)
        rc = hq_dlq_replay_matching(c, L, i, f, tty ? on_progress : NULL, &p, &n, &err);
    if (tty)
        fprintf(stderr, "\n");
    if (rc != 0)
        return hq_cli_fail(1, cmd, err.msg);
    return report(cmd, "replayed", &n, json);
}

/* ---- purge --------------------------------------------------------------------------------- */

static int confirm(long long n)
{
    fprintf(stderr, "purge %lld entries? [y/N] ", n);
    fflush(stderr);
    char line[16];
    if (!fgets(line, sizeof(line), stdin))
        return 0;
    return line[0] == 'y' || line[0] == 'Y';
}

static int do_purge(struct hq_redis_conn *c, const char *cmd, const struct hq_layout *L,
                    const struct ref *refs, int nids, const struct hq_dlq_filter *f, int yes,
                    int json)
{
    struct hq_err err = {0};
    struct hq_dlq_counts n = {0};
    long long want = 0;
    /* Per partition, the filter bounded by its newest entry now. */
    struct hq_dlq_filter *pf = calloc(L->nparts, sizeof(*pf));
    if (!pf)
        return hq_cli_fail(1, cmd, "out of memory");
    if (nids > 0) {
        want = nids;
    } else {
        /* Entries added after the count are not purged: the prompt's number holds. */
        struct hq_dlq_counts cnt = {0};
        for (unsigned i = 0; i < L->nparts; i++) {
            pf[i] = *f;
            if (hq_dlq_last_id(c, L, i, pf[i].max_id, &err) != 0 ||
                (pf[i].max_id[0] && hq_dlq_purge_matching(c, L, i, &pf[i], 1, &cnt, &err) != 0)) {
                free(pf);
                return hq_cli_fail(1, cmd, err.msg);
            }
        }
        want = cnt.done;
    }
    if (want == 0) {
        free(pf);
        if (json)
            printf("{\"purged\":0,\"skipped\":0,\"missing\":0}\n");
        else
            printf("purged 0\n");
        return 0;
    }
    if (!yes && !confirm(want)) {
        free(pf);
        fprintf(stderr, "hookq %s: not confirmed; nothing purged\n", cmd);
        return 1;
    }
    int rc = 0;
    if (nids > 0)
        rc = by_partition(c, L, refs, nids, 0, &n, &err);
    for (unsigned i = 0; nids == 0 && i < L->nparts && rc == 0; i++)
        if (pf[i].max_id[0])
            rc = hq_dlq_purge_matching(c, L, i, &pf[i], 0, &n, &err);
    free(pf);
    if (rc != 0)
        return hq_cli_fail(1, cmd, err.msg);
    return report(cmd, "purged", &n, json);
}

/* ---- Entry point ---------------------------------------------------------------------------- */

enum {
    O_ENDPOINT,
    O_TYPE,
    O_TENANT,
    O_REASON,
    O_SINCE,
    O_LIMIT,
    O_CURSOR,
    O_ALL,
    O_OLDER,
    O_YES,
    O_JSON,
    O_NSPEC
};

int hq_cmd_dlq(int argc, char **argv)
{
    struct hq_common_opts common;
    hq_common_opts_init(&common);
    const char *endpoint = NULL, *type = NULL, *reason = NULL, *since = NULL, *cursor = NULL,
               *tenant = NULL;
    long long limit = HQ_DLQ_LIMIT_DEFAULT, older = 0;
    int all = 0, yes = 0, json = 0;
    struct hq_opt opts[] = {
        [O_ENDPOINT] = {"endpoint", HQ_OPT_STR, &endpoint, "ID", "only this endpoint's entries",
                        HQ_OPTF_NOENV, 0, 0, 0},
        [O_TYPE] = {"type", HQ_OPT_STR, &type, "T", "only events of this type", HQ_OPTF_NOENV, 0, 0,
                    0},
        [O_TENANT] = {"tenant", HQ_OPT_STR, &tenant, "T",
                      "only this tenant's entries (the endpoint's tenant, else the event's)",
                      HQ_OPTF_NOENV, 0, 0, 0},
        [O_REASON] = {"reason", HQ_OPT_STR, &reason, "R",
                      "only entries whose reason starts with R (list)", HQ_OPTF_NOENV, 0, 0, 0},
        [O_SINCE] = {"since", HQ_OPT_STR, &since, "TIME",
                     "only entries newer than TIME: 2h (ago), unix ms, or 2026-11-26[T12:00:00Z]",
                     HQ_OPTF_NOENV, 0, 0, 0},
        [O_LIMIT] = {"limit", HQ_OPT_INT, &limit, "N", "entries listed, newest first (list)",
                     HQ_OPTF_NOENV, 1, HQ_DLQ_LIMIT_MAX, 0},
        [O_CURSOR] = {"cursor", HQ_OPT_STR, &cursor, "C",
                      "go on from where a listing stopped (list prints it: more: --cursor C)",
                      HQ_OPTF_NOENV, 0, 0, 0},
        [O_ALL] = {"all", HQ_OPT_BOOL, &all, NULL, "every matching entry (replay, purge)",
                   HQ_OPTF_NOENV, 0, 0, 0},
        [O_OLDER] = {"older-than", HQ_OPT_DURATION, &older, "DUR", "entries older than DUR (purge)",
                     HQ_OPTF_NOENV, 1, 0, 0},
        [O_YES] = {"yes", HQ_OPT_BOOL, &yes, NULL, "do not ask for confirmation (purge)",
                   HQ_OPTF_NOENV, 0, 0, 0},
        [O_JSON] = {"json", HQ_OPT_BOOL, &json, NULL, "machine-readable output", HQ_OPTF_NOENV, 0,
                    0, 0},
        HQ_COMMON_OPTS(&common),
        {0},
    };
    opts[O_OLDER].max = 86400000LL * 3650;
    static const struct hq_cmd_help help = {
        "dlq (list | show ID | replay (ID... | --all) | purge (ID... | --all | --older-than DUR)) [options]",
        "Inspects and drains the dead-letter stream <prefix>:dead (one per partition: ids p<i>/<id>).\n"
        "  list    newest first: [--endpoint ID] [--type T] [--tenant T] [--reason R] [--since TIME] [--limit N] [--cursor C]\n"
        "  show    every field of one entry; a JSON payload is pretty-printed\n"
        "  replay  re-enqueue with a fresh attempt budget: ID... | --all [--endpoint ID] [--type T] [--tenant T] [--since TIME]\n"
        "  purge   delete: ID... | --all | --older-than DUR, [--endpoint ID] [--tenant T]; asks unless --yes"};
    int npos;
    char **pos;
    int rc = hq_cli_parse(opts, &help, argv[0], argc, argv, &npos, &pos);
    if (rc >= 0)
        return rc;
    struct hq_err err = {0};
    char cmd[32];
    const char *sub = npos > 0 ? pos[0] : "";
    snprintf(cmd, sizeof(cmd), "dlq %.20s", sub);
    int status = 0;
    struct hq_redis_conn *c = NULL;
    struct hq_layout L = {0};
    struct ref *refs = NULL;

    /* Which options each subcommand takes; anything else is a usage error. */
    static const struct {
        const char *name;
        unsigned allowed;
        int min_args, max_args;
    } subs[] = {
        {"list",
         1u << O_ENDPOINT | 1u << O_TYPE | 1u << O_TENANT | 1u << O_REASON | 1u << O_SINCE |
             1u << O_LIMIT | 1u << O_CURSOR | 1u << O_JSON,
         0, 0},
        {"show", 1u << O_JSON, 1, 1},
        {"replay",
         1u << O_ENDPOINT | 1u << O_TYPE | 1u << O_TENANT | 1u << O_SINCE | 1u << O_ALL |
             1u << O_JSON,
         0, HQ_DLQ_IDS_MAX},
        {"purge",
         1u << O_ENDPOINT | 1u << O_TENANT | 1u << O_ALL | 1u << O_OLDER | 1u << O_YES |
             1u << O_JSON,
         0, HQ_DLQ_IDS_MAX},
    };
    int which = -1;
    for (int i = 0; i < 4; i++) {
        if (strcmp(sub, subs[i].name) == 0)
            which = i;
    }
    if (which < 0) {
        status = hq_cli_fail(2, "dlq",
                             npos ? "unknown subcommand (list, show, replay, purge; see --help)"
                                  : "needs a subcommand: list, show, replay or purge");
        goto out;
    }
    for (int i = 0; i < O_NSPEC; i++) {
        if (opts[i].given && !(subs[which].allowed & (1u << i))) {
            snprintf(err.msg, sizeof(err.msg), "--%s: not an option of %s", opts[i].name, sub);
            status = hq_cli_fail(2, cmd, err.msg);
            goto out;
        }
    }
    int nids = npos - 1;
    char **ids = pos + 1;
    if (nids < subs[which].min_args || nids > subs[which].max_args) {
        status =
            hq_cli_fail(2, cmd, which == 1 ? "needs exactly one entry id" : "takes no arguments");
        goto out;
    }
    if (tenant && hq_event_check_tenant(tenant, strlen(tenant), &err) != 0) {
        char flag[sizeof(err.msg) + 2];
        snprintf(flag, sizeof(flag), "--%s", err.msg); /* "tenant: ..." names the flag */
        status = hq_cli_fail(2, cmd, flag);
        goto out;
    }
    struct hq_dlq_filter f = {
        .endpoint = endpoint, .type = type, .tenant = tenant, .reason = reason};
    if (since && hq_dlq_parse_time("--since", since, hq_now_ms(), &f.since_ms, &err) != 0) {
        status = hq_cli_fail(2, cmd, err.msg);
        goto out;
    }
    if (older > 0)
        f.before_ms = hq_now_ms() - older;
    if (which == 2 && (nids > 0) == all) {
        status = hq_cli_fail(
            2, cmd, all ? "give entry ids or --all, not both" : "needs entry ids or --all");
        goto out;
    }
    if (which == 2 && nids > 0 && (endpoint || type || tenant || since)) {
        status =
            hq_cli_fail(2, cmd, "--endpoint, --type, --tenant and --since apply to --all only");
        goto out;
    }
    if (which == 3) {
        int modes = (nids > 0) + all + (older > 0);
        if (modes != 1) {
            status = hq_cli_fail(2, cmd,
                                 modes ? "give one of: entry ids, --all, --older-than"
                                       : "needs entry ids, --all or --older-than DUR");
            goto out;
        }
        if (nids > 0 && (endpoint || tenant)) {
            status =
                hq_cli_fail(2, cmd, "--endpoint and --tenant apply to --all and --older-than only");
            goto out;
        }
        if (!yes && !isatty(STDIN_FILENO)) {
            status = hq_cli_fail(2, cmd, "not a terminal: add --yes to purge without confirmation");
            goto out;
        }
    }
    if (hq_common_opts_apply(&common, &err) != 0) {
        status = hq_cli_fail(2, cmd, err.msg);
        goto out;
    }
    status = hq_cli_connect(cmd, &common, &c, &L);
    if (status != 0)
        goto out;
    /* Ids name their partition (p<i>/<id>) once there are several: resolved
     * against the layout, all of them before anything is touched. */
    refs = calloc((size_t)nids + 1, sizeof(*refs));
    if (!refs) {
        status = hq_cli_fail(1, cmd, "out of memory");
        goto out;
    }
    for (int i = 0; i < nids; i++) {
        if (hq_layout_entry_parse(&L, ids[i], &refs[i].part, refs[i].id, sizeof(refs[i].id),
                                  &err) != 0 ||
            hq_dlq_check_id("entry id", refs[i].id, &err) != 0) {
            status = hq_cli_fail(2, cmd, err.msg);
            goto out;
        }
    }
    switch (which) {
    case 0: status = do_list(c, cmd, &L, &f, limit, cursor, json); break;
    case 1: status = do_show(c, cmd, &L, ids[0], &refs[0], json); break;
    case 2: status = do_replay(c, cmd, &L, refs, nids, &f, json); break;
    default: status = do_purge(c, cmd, &L, refs, nids, &f, yes, json); break;
    }
out:
    if (c)
        hq_cli_disconnect(c, &L);
    free(refs);
    free(pos);
    return status;
}
