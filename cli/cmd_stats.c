/* `hookq stats [--json]`: one look at the queue's health for an SRE: the
 * event stream's length, the consumer group's lag, pending entries and
 * consumers, the retry backlog and when the next retry is due, the dead-letter
 * stream's length (one pipelined round trip per partition, on its node) and
 * the number of endpoints, then the dead letters counted by reason class and
 * by endpoint (a paged walk over the newest HQ_STATS_DEAD_SCAN_MAX dead
 * letters of all partitions, merged newest first, bounded memory). A
 * partitioned deployment also gets a line per partition (its node and
 * figures) before the totals, and a "partitions" array in --json; the
 * untagged layout prints what it always did.
 * Read-only. Keys or the group that do not exist yet count as 0 / none, not
 * as errors (a fresh deployment is healthy). docs/endpoints.md ("hookq
 * stats") documents the output; the --json field names are stable. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/output.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/hash.h"
#include "common/keys.h"
#include "common/layout.h"
#include "common/redis_conn.h"
#include "common/limits.h"
#include "common/dlq.h"
#include "common/endpoint_store.h"
#include "common/event.h"
#include "common/scripts.h"
#include "common/stats.h"

/* "  by reason: a 3, b 1" (with ", newest N of M" when the walk was capped);
 * at most 'top' names, then "(other) K" for the letters not named. */
static void print_breakdown(const char *what, const struct hq_tally *t, size_t top,
                            const struct hq_dead_breakdown *d, long long dead)
{
    size_t n = 0;
    struct hq_tally_slot **v = hq_tally_sorted(t, &n);
    struct hq_buf b;
    hq_buf_init(&b, (top + 1) * (STATS_NAME_MAX * 4 + 32) + 128);
    long long other = t->other;
    for (size_t i = top; i < n; i++)
        other += v[i]->count;
    for (size_t i = 0; i < n && i < top; i++) {
        if (i && hq_buf_append(&b, ", ", 2) != 0)
            break;
        hq_out_escape(&b, v[i]->name, v[i]->len, STATS_NAME_MAX, 0);
        if (hq_buf_printf(&b, " %lld", v[i]->count) != 0)
            break;
    }
    if (other > 0 && hq_buf_printf(&b, "%s(other) %lld", b.len ? ", " : "", other) != 0)
        hq_buf_reset(&b); /* cannot happen: the buffer is sized for 'top' names */
    if (d->capped && dead > d->scanned)
        printf("  by %s, newest %lld of %lld: %s\n", what, d->scanned, dead, b.p ? b.p : "");
    else
        printf("  by %s: %s\n", what, b.p ? b.p : "");
    hq_buf_free(&b);
    free(v);
}

static void print_partitions(const struct hq_layout *L, const struct hq_stats *part)
{
    printf("%-9s %-21s %10s %8s %8s %8s %8s %8s %9s %10s\n", "PARTITION", "NODE", "EVENTS", "LAG",
           "PENDING", "RETRIES", "DEAD", "LANE", "LANE_AGE", "DUPLICATES");
    for (unsigned i = 0; i < L->nparts; i++) {
        const struct hq_stats *p = &part[i];
        char name[16], lag[24];
        snprintf(name, sizeof(name), "p%u", i);
        if (p->lag >= 0)
            snprintf(lag, sizeof(lag), "%lld", p->lag);
        else
            snprintf(lag, sizeof(lag), "%s", p->group_exists ? "?" : "-");
        char age[48];
        hq_out_span(p->lane_age, age, sizeof(age));
        printf("%-9s %-21s %10lld %8s %8lld %8lld %8lld %8lld %9s %10lld\n", name, p->node,
               p->stream_len, lag, p->pending, p->retries, p->dead, p->lane_len, age,
               p->duplicates);
    }
    printf("totals:\n");
}

static void print_human(const struct hq_layout *L, const struct hq_stats *part,
                        const struct hq_stats *s, const struct hq_dead_breakdown *d)
{
    if (L->tagged) {
        print_partitions(L, part);
        printf("events:       %lld entries in %u partitions (%s:{<tag>}:events)\n", s->stream_len,
               L->nparts, L->prefix);
    } else {
        printf("events:       %lld entries in %s:events\n", s->stream_len, L->prefix);
    }
    if (!s->group_exists) {
        printf("group:        %s not created yet (no worker has started)\n", HQ_GROUP);
    } else {
        printf("group:        %s: %lld consumers, %lld pending, lag ", HQ_GROUP, s->consumers,
               s->pending);
        if (s->lag >= 0)
            printf("%lld\n", s->lag);
        else
            printf("unknown (Redis cannot tell after deletions; see pending)\n");
    }
    printf("retries:      %lld waiting, next due ", s->retries);
    if (s->next_due < 0) {
        printf("none\n");
    } else {
        char t[48], rel[48];
        long long delta = s->next_due - s->now;
        hq_iso_time(s->next_due, t, sizeof(t));
        hq_out_span(delta < 0 ? -delta : delta, rel, sizeof(rel));
        printf("%s (%s%s)\n", t, delta < 0 ? "overdue by " : "in ", rel);
    }
    char age[48];
    hq_out_span(s->lane_age, age, sizeof(age));
    printf("retry lane:   %lld entries in %s%s:retries, oldest unread waited %s\n", s->lane_len,
           L->prefix, L->tagged ? ":{<tag>}" : "", age);
    printf("breakers:     %lld open, %lld half_open, %lld disabled\n", s->cb_open, s->cb_half_open,
           s->cb_disabled);
    printf("dead letters: %lld\n", s->dead);
    /* An empty dead-letter stream prints no breakdown lines. */
    if (d->scanned > 0) {
        print_breakdown("reason", &d->reasons, STATS_REASONS_MAX, d, s->dead);
        print_breakdown("endpoint", &d->endpoints, STATS_TOP_ENDPOINTS, d, s->dead);
    }
    if (s->retained > 0 || s->retained_bytes > 0) /* HOOKQ_RETAIN: docs/resend.md */
        printf("retained:     %lld deliveries, %lld bytes\n", s->retained, s->retained_bytes);
    if (s->lines > 0) /* ordered endpoints: docs/ordering.md */
        printf("ordered:      %lld lines, %lld events waiting in them\n", s->lines, s->line_items);
    printf("endpoints:    %lld\n", s->endpoints);
    printf(
        "duplicates:   %lld (entries acknowledged, not delivered: their event id was seen within "
        "the dedupe window)\n",
        s->duplicates);
}

/* ---- --tenant -------------------------------------------------------------------------- */

/* `stats --tenant T`: the tenant's endpoints (through its index set) and its
 * dead letters among the newest HQ_STATS_DEAD_SCAN_MAX of all partitions. */
static int tenant_stats(struct hq_redis_conn *c, const struct hq_layout *L, const char *tenant,
                        int json, struct hq_err *err)
{
    struct hq_tenant_eps eps = {0};
    struct hq_dead_breakdown d = {.tenant = tenant};
    hq_tally_init(&d.reasons, STATS_REASONS_MAX);
    hq_tally_init(&d.endpoints, STATS_ENDPOINTS_MAX);
    int rc = hq_stats_tenant_read(c, L, tenant, &eps, &d, err);
    if (rc == 0 && json) {
        struct hq_buf b;
        if (hq_stats_tenant_json(tenant, &eps, &d, &b) == 0) {
            printf("%s\n", b.p);
            hq_buf_free(&b);
        }
    } else if (rc == 0) {
        printf("tenant:       %s\n", tenant);
        printf("endpoints:    %lld (%lld enabled, %lld disabled)\n", eps.total, eps.enabled,
               eps.total - eps.enabled);
        printf("dead letters: %lld%s (the newest %lld dead letters scanned)\n", d.matched,
               d.capped ? " or more" : "", d.scanned);
        if (d.matched > 0) {
            print_breakdown("reason", &d.reasons, STATS_REASONS_MAX, &d, 0);
            print_breakdown("endpoint", &d.endpoints, STATS_TOP_ENDPOINTS, &d, 0);
        }
    }
    hq_tally_free(&d.reasons);
    hq_tally_free(&d.endpoints);
    return rc;
}

int hq_cmd_stats(int argc, char **argv)
{
    struct hq_common_opts common;
    hq_common_opts_init(&common);
    int json = 0;
    const char *tenant = NULL;
    struct hq_opt opts[] = {
        {"json", HQ_OPT_BOOL, &json, NULL, "print JSON (stable field names)", HQ_OPTF_NOENV, 0, 0,
         0},
        {"tenant", HQ_OPT_STR, &tenant, "T",
         "only this tenant: its endpoints and its dead letters among the newest 100000",
         HQ_OPTF_NOENV, 0, 0, 0},
        HQ_COMMON_OPTS(&common),
        {0},
    };
    static const struct hq_cmd_help help = {
        "stats [--tenant T] [--json]",
        "Prints the event stream's length, the worker group's lag, pending entries and consumers, the retry backlog and its next due time, the dead-letter count (with the newest dead letters counted by reason and by endpoint) and the number of endpoints."};
    struct hq_err err = {0};
    int npos = 0;
    char **pos = NULL;
    int rc = hq_cli_parse(opts, &help, "stats", argc, argv, &npos, &pos);
    if (rc >= 0)
        return rc;
    if (npos) {
        hq_err_set(&err, HQ_EINVAL, "unexpected argument '%.80s' (usage: hookq %s)", pos[0],
                   help.usage);
        free(pos);
        return hq_cli_fail(2, "stats", err.msg);
    }
    free(pos);
    if (hq_common_opts_apply(&common, &err) != 0)
        return hq_cli_fail(2, "stats", err.msg);
    if (tenant && hq_event_check_tenant(tenant, strlen(tenant), &err) != 0) {
        char flag[sizeof(err.msg) + 2];
        snprintf(flag, sizeof(flag), "--%s", err.msg); /* "tenant: ..." names the flag */
        return hq_cli_fail(2, "stats", flag);
    }
    struct hq_redis_conn *c = NULL;
    struct hq_layout L = {0};
    if (hq_cli_connect("stats", &common, &c, &L) != 0)
        return 1;
    if (tenant) {
        rc = tenant_stats(c, &L, tenant, json, &err);
        hq_cli_disconnect(c, &L);
        return rc == 0 ? 0 : hq_cli_fail(1, "stats", err.msg);
    }
    struct hq_stats s;
    struct hq_stats *part = hq_calloc(L.nparts, sizeof(*part));
    struct hq_dead_breakdown d = {0};
    hq_tally_init(&d.reasons, STATS_REASONS_MAX);
    hq_tally_init(&d.endpoints, STATS_ENDPOINTS_MAX);
    rc = hq_stats_read(c, &L, part, &s, &err);
    if (rc == 0 && s.dead > 0)
        rc = hq_stats_read_dead(c, &L, &d, &err);
    struct hq_buf jb;
    if (rc == 0 && json && hq_stats_json(&L, part, &s, &d, &jb) == 0) {
        printf("%s\n", jb.p);
        hq_buf_free(&jb);
    } else if (rc == 0)
        print_human(&L, part, &s, &d);
    hq_cli_disconnect(c, &L);
    free(part);
    hq_tally_free(&d.reasons);
    hq_tally_free(&d.endpoints);
    return rc == 0 ? 0 : hq_cli_fail(1, "stats", err.msg);
}
