/* What `hookq stats` reports (stats.h): the figures per partition, the dead
 * letters by reason and by endpoint, and the --json document, which `hookq
 * api`'s /v1/stats serves unchanged. Moved from cli/cmd_stats.c. */
#include "common/stats.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/dlq.h"
#include "common/endpoint_store.h"
#include "common/hash.h"
#include "common/keys.h"
#include "common/layout.h"
#include "common/limits.h"
#include "common/redis_conn.h"
#include "common/scripts.h"

static int is_str(const redisReply *r, const char *s)
{
    return (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) &&
           r->len == strlen(s) && memcmp(r->str, s, r->len) == 0;
}

/* An integer reply, or 0 for anything else (a missing key answers 0 anyway). */
static long long int_of(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
}

/* Reads our group's fields out of XINFO GROUPS (an array of field/value arrays). */
static void read_group(const redisReply *r, struct hq_stats *s)
{
    s->lag = -1;
    if (r->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *g = r->element[i];
        if (g->type != REDIS_REPLY_ARRAY || g->elements % 2)
            continue;
        int ours = 0;
        for (size_t j = 0; j + 1 < g->elements; j += 2)
            ours |= is_str(g->element[j], "name") && is_str(g->element[j + 1], HQ_GROUP);
        if (!ours)
            continue;
        s->group_exists = 1;
        for (size_t j = 0; j + 1 < g->elements; j += 2) {
            const redisReply *k = g->element[j], *v = g->element[j + 1];
            if (is_str(k, "consumers"))
                s->consumers = int_of(v);
            else if (is_str(k, "pending"))
                s->pending = int_of(v);
            else if (is_str(k, "lag"))
                s->lag = v->type == REDIS_REPLY_INTEGER ? v->integer : -1;
        }
        return;
    }
}

/* Partition part's figures in one pipelined round trip on its node. 0 or
 * HQ_EREDIS (I/O failure, or an error reply other than a missing stream, e.g.
 * WRONGTYPE). */
static int read_part(struct hq_redis_conn *conn, const struct hq_layout *L, unsigned part,
                     struct hq_stats *s, struct hq_err *err)
{
    const char *base = L->part[part].base;
    char ev[HQ_KEY_MAX], retry[HQ_KEY_MAX], dead[HQ_KEY_MAX], lane[HQ_KEY_MAX];
    char kept[HQ_KEY_MAX], kept_bytes[HQ_KEY_MAX];
    hq_key_retained(base, kept, sizeof(kept));
    hq_key_retained_bytes(base, kept_bytes, sizeof(kept_bytes));
    char dups[HQ_KEY_MAX];
    hq_key_duplicates(base, dups, sizeof(dups));
    char lines[HQ_KEY_MAX], line_data[HQ_KEY_MAX];
    hq_key_lines(base, lines, sizeof(lines));
    hq_key_lines_data(base, line_data, sizeof(line_data));
    hq_key_events(base, ev, sizeof(ev));
    hq_key_retry(base, retry, sizeof(retry));
    hq_key_dead(base, dead, sizeof(dead));
    hq_key_retries(base, lane, sizeof(lane));
    const char *cmds[][5] = {
        {"XLEN", ev},        {"XINFO", "GROUPS", ev},
        {"ZCARD", retry},    {"ZRANGE", retry, "0", "0", "WITHSCORES"},
        {"XLEN", dead},      {"EVAL", hq_script_lane_stats, "1", lane, HQ_GROUP},
        {"XLEN", kept},      {"GET", kept_bytes},
        {"GET", dups},       {"ZCARD", lines},
        {"HLEN", line_data},
    };
    const int argcs[] = {2, 3, 2, 5, 2, 5, 2, 2, 2, 2, 2};
    const int n = (int)(sizeof(argcs) / sizeof(*argcs));
    memset(s, 0, sizeof(*s));
    s->lag = -1;
    s->next_due = -1;
    hq_redis_conn_node_name(conn, L->part[part].slot, s->node, sizeof(s->node));
    redisContext *c = hq_redis_conn_node(conn, L->part[part].slot, err);
    if (!c)
        return HQ_EREDIS;
    for (int i = 0; i < n; i++) {
        if (redisAppendCommandArgv(c, argcs[i], cmds[i], NULL) != REDIS_OK)
            return hq_err_set(err, HQ_ENOMEM, "redis: out of memory");
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r)
            return hq_err_set(err, HQ_EREDIS, "redis: %s",
                              c->errstr[0] ? c->errstr : "connection lost");
        if (r->type == REDIS_REPLY_ERROR) {
            /* XINFO on a stream nobody has written yet: no group, not an error. */
            int missing = i == 1 && strstr(r->str, "no such key") != NULL;
            if (!missing && rc == 0)
                rc = hq_err_set(err, HQ_EREDIS, "redis: %s: %.*s", cmds[i][0], (int)r->len, r->str);
            freeReplyObject(r);
            continue;
        }
        switch (i) {
        case 0: s->stream_len = int_of(r); break;
        case 1: read_group(r, s); break;
        case 2: s->retries = int_of(r); break;
        case 3:
            if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                r->element[1]->type == REDIS_REPLY_STRING)
                s->next_due = (long long)strtod(r->element[1]->str, NULL);
            break;
        case 4: s->dead = int_of(r); break;
        case 5: /* {depth, unread, pending, age_ms} */
            if (r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
                s->lane_len = int_of(r->element[0]);
                s->lane_age = int_of(r->element[3]);
            }
            break;
        case 6: s->retained = int_of(r); break;
        case 7: s->retained_bytes = r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0; break;
        case 8:
            s->duplicates = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
            break;
        case 9: s->lines = int_of(r); break;
        case 10: s->line_items = int_of(r); break;
        }
        freeReplyObject(r);
    }
    return rc;
}

/* Counts partition part's circuit breakers by state: a SCAN of its node for
 * <base>:cb:* (hashes exist only for troubled endpoints) and an HGET each. */
static int read_breakers(struct hq_redis_conn *conn, const struct hq_layout *L, unsigned part,
                         struct hq_stats *s, struct hq_err *err)
{
    char match[HQ_KEY_MAX];
    hq_key_breaker(L->part[part].base, "*", match, sizeof(match));
    char cursor[32] = "0";
    do {
        const char *av[] = {"SCAN", cursor, "MATCH", match, "COUNT", "1000"};
        redisReply *r = hq_redis_conn_cmd(conn, L->part[part].slot, err, 6, av, NULL);
        if (!r)
            return HQ_EREDIS;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING) {
            freeReplyObject(r);
            return hq_err_set(err, HQ_EREDIS, "redis: SCAN: unexpected reply");
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        const redisReply *keys = r->element[1];
        for (size_t i = 0; keys->type == REDIS_REPLY_ARRAY && i < keys->elements; i++) {
            const char *hv[] = {"HGET", keys->element[i]->str, "state"};
            redisReply *st = hq_redis_conn_cmd(conn, L->part[part].slot, err, 3, hv, NULL);
            if (!st) {
                freeReplyObject(r);
                return HQ_EREDIS;
            }
            s->cb_open += is_str(st, "open");
            s->cb_half_open += is_str(st, "half_open");
            s->cb_disabled += is_str(st, "disabled");
            freeReplyObject(st);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

/* Every partition into part[0..P), their totals into *s and the registry's
 * endpoint count. Totals: sums, except consumers (the most of any partition:
 * the same workers read every partition), lag (unknown when any partition's
 * is), next due (the earliest) and group_exists (on every partition). */
int hq_stats_read(struct hq_redis_conn *conn, const struct hq_layout *L, struct hq_stats *part,
                  struct hq_stats *s, struct hq_err *err)
{
    memset(s, 0, sizeof(*s));
    s->next_due = -1;
    s->group_exists = 1;
    for (unsigned i = 0; i < L->nparts; i++) {
        struct hq_stats *p = &part[i];
        int rc = read_part(conn, L, i, p, err);
        if (rc == 0)
            rc = read_breakers(conn, L, i, s, err);
        if (rc != 0)
            return rc;
        s->stream_len += p->stream_len;
        s->group_exists &= p->group_exists;
        if (p->consumers > s->consumers)
            s->consumers = p->consumers;
        s->pending += p->pending;
        s->lag = (i > 0 && s->lag < 0) || p->lag < 0 ? -1 : s->lag + p->lag;
        s->retries += p->retries;
        if (p->next_due >= 0 && (s->next_due < 0 || p->next_due < s->next_due))
            s->next_due = p->next_due;
        s->dead += p->dead;
        s->lane_len += p->lane_len;
        s->duplicates += p->duplicates;
        s->lines += p->lines;
        s->line_items += p->line_items;
        if (p->lane_age > s->lane_age)
            s->lane_age = p->lane_age;
        s->retained += p->retained;
        s->retained_bytes += p->retained_bytes;
    }
    char eps[HQ_KEY_MAX];
    hq_key_endpoints(L->reg, eps, sizeof(eps));
    const char *av[] = {"ZCARD", eps};
    redisReply *r = hq_redis_conn_cmd(conn, L->reg_slot, err, 2, av, NULL);
    if (!r)
        return HQ_EREDIS;
    s->endpoints = int_of(r);
    freeReplyObject(r);
    s->now = hq_now_ms();
    return 0;
}

/* ---- Dead letters by reason and by endpoint ---------------------------------------------- */

void hq_tally_init(struct hq_tally *t, size_t max)
{
    size_t cap = 16;
    while (cap < 2 * max)
        cap *= 2;
    t->slots = hq_calloc(cap, sizeof(*t->slots));
    t->cap = cap;
    t->max = max;
    t->used = 0;
    t->other = 0;
}

void hq_tally_free(struct hq_tally *t)
{
    free(t->slots);
    t->slots = NULL;
}

/* Counts one entry for name (n bytes, 1..STATS_NAME_MAX). */
static void tally_add(struct hq_tally *t, const char *name, size_t n)
{
    uint32_t h = hq_fnv1a(name, n);
    for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        struct hq_tally_slot *sl = &t->slots[i];
        if (sl->len == n && memcmp(sl->name, name, n) == 0) {
            sl->count++;
            return;
        }
        if (sl->len == 0) {
            if (t->used >= t->max) {
                t->other++;
                return;
            }
            memcpy(sl->name, name, n);
            sl->name[n] = '\0';
            sl->len = n;
            sl->count = 1;
            t->used++;
            return;
        }
    }
}

/* Most dead letters first, then by name (bytewise), so the output is stable. */
static int slot_cmp(const void *a, const void *b)
{
    const struct hq_tally_slot *x = *(const struct hq_tally_slot *const *)a;
    const struct hq_tally_slot *y = *(const struct hq_tally_slot *const *)b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    int c = memcmp(x->name, y->name, x->len < y->len ? x->len : y->len);
    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* [out] *n kept names; returns them sorted (caller frees the array, not the slots). */
struct hq_tally_slot **hq_tally_sorted(const struct hq_tally *t, size_t *n)
{
    struct hq_tally_slot **v = hq_calloc(t->used ? t->used : 1, sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].len)
            v[k++] = &t->slots[i];
    qsort(v, k, sizeof(*v), slot_cmp);
    *n = k;
    return v;
}

/* Cuts n to at most STATS_NAME_MAX bytes without splitting a UTF-8 sequence. */
static size_t cut_name(const char *s, size_t n)
{
    if (n <= STATS_NAME_MAX)
        return n;
    n = STATS_NAME_MAX;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n ? n : STATS_NAME_MAX; /* all continuation bytes: not UTF-8, cut anywhere */
}

static void tally_entry(struct hq_dead_breakdown *d, const redisReply *e);

static int on_dead_entry(const redisReply *e, unsigned part, void *arg)
{
    (void)part;
    struct hq_dead_breakdown *d = arg;
    /* The scan reads every entry (the cap bounds entries read, not matched). */
    if (!d->tenant || hq_dlq_match(&(struct hq_dlq_filter){.tenant = d->tenant}, e))
        tally_entry(d, e);
    if (++d->scanned >= HQ_STATS_DEAD_SCAN_MAX) {
        d->capped = 1;
        return 1;
    }
    return 0;
}

static void tally_entry(struct hq_dead_breakdown *d, const redisReply *e)
{
    size_t n = 0;
    d->matched++;
    /* Reason class: "invalid: payload: ..." counts as "invalid". */
    const char *r = hq_dlq_field(e, "reason", &n);
    if (r) {
        const char *colon = memchr(r, ':', n);
        if (colon)
            n = (size_t)(colon - r);
    }
    if (!r || n == 0)
        tally_add(&d->reasons, "(none)", 6);
    else
        tally_add(&d->reasons, r, cut_name(r, n));
    /* Invalid stream entries carry endpoint_id "" (no endpoint was known). */
    const char *ep = hq_dlq_field(e, "endpoint_id", &n);
    if (!ep || n == 0)
        tally_add(&d->endpoints, "(none)", 6);
    else
        tally_add(&d->endpoints, ep, cut_name(ep, n));
}

/* Walks the newest HQ_STATS_DEAD_SCAN_MAX dead letters of all partitions. 0
 * or HQ_EREDIS. */
int hq_stats_read_dead(struct hq_redis_conn *c, const struct hq_layout *L,
                       struct hq_dead_breakdown *d, struct hq_err *err)
{
    struct hq_dlq_filter all;
    memset(&all, 0, sizeof(all));
    struct hq_dlq_cursor cur;
    hq_dlq_cursor_init(&cur, L->nparts);
    /* Pages sized so that P partitions' buffers together stay near the cap. */
    size_t page = HQ_STATS_DEAD_SCAN_MAX / L->nparts + 1;
    if (page > (size_t)HQ_DLQ_PAGE)
        page = HQ_DLQ_PAGE;
    int more = 0;
    int rc = hq_dlq_scan_merged(c, L, &all, &cur, page, on_dead_entry, d, &more, err);
    hq_dlq_cursor_free(&cur);
    return rc;
}

/* ,"<field>":{"name":count,...,"(other)":K} with every kept name. */
static int json_breakdown(struct hq_buf *b, const char *field, const struct hq_tally *t)
{
    size_t n = 0;
    struct hq_tally_slot **v = hq_tally_sorted(t, &n);
    int rc = hq_buf_printf(b, ",\"%s\":{", field);
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = i ? hq_buf_append(b, ",", 1) : 0;
        rc = rc ? rc : hq_buf_json_str(b, v[i]->name, v[i]->len);
        rc = rc ? rc : hq_buf_printf(b, ":%lld", v[i]->count);
    }
    if (rc == 0 && t->other > 0)
        rc = hq_buf_printf(b, "%s\"(other)\":%lld", n ? "," : "", t->other);
    rc = rc ? rc : hq_buf_append(b, "}", 1);
    free(v);
    return rc;
}

/* ,"partitions":[{...}, ...]: a partitioned layout's per-partition figures. */
static int json_partitions(struct hq_buf *b, const struct hq_layout *L, const struct hq_stats *part)
{
    int rc = hq_buf_printf(b, ",\"partitions\":[");
    for (unsigned i = 0; i < L->nparts && rc == 0; i++) {
        const struct hq_stats *p = &part[i];
        char lag[24] = "null", due[24] = "null";
        if (p->lag >= 0)
            snprintf(lag, sizeof(lag), "%lld", p->lag);
        if (p->next_due >= 0)
            snprintf(due, sizeof(due), "%lld", p->next_due);
        rc = hq_buf_printf(b, "%s{\"partition\":%u,\"tag\":", i ? "," : "", i);
        rc = rc ? rc : hq_buf_json_str(b, L->part[i].tag, strlen(L->part[i].tag));
        rc = rc ? rc : hq_buf_printf(b, ",\"node\":");
        rc = rc ? rc : hq_buf_json_str(b, p->node, strlen(p->node));
        rc =
            rc ? rc
               : hq_buf_printf(
                     b,
                     ",\"stream_length\":%lld,\"group_exists\":%s,\"consumers\":%lld,\"pending\":%lld,\"lag\":%s,\"retry_backlog\":%lld,\"retry_next_due_ms\":%s,\"dead_letters\":%lld,\"retry_lane_length\":%lld,\"retry_lane_oldest_ms\":%lld",
                     p->stream_len, p->group_exists ? "true" : "false", p->consumers, p->pending,
                     lag, p->retries, due, p->dead, p->lane_len, p->lane_age);
        rc = rc ? rc : hq_buf_printf(b, ",\"duplicates\":%lld}", p->duplicates);
    }
    return rc ? rc : hq_buf_append(b, "]", 1);
}

int hq_stats_json(const struct hq_layout *L, const struct hq_stats *part, const struct hq_stats *s,
                  const struct hq_dead_breakdown *d, struct hq_buf *out)
{
    const char *prefix = L->prefix;
    struct hq_buf b;
    hq_buf_init(&b, STATS_JSON_MAX + (size_t)L->nparts * 512);
    char lag[24] = "null", due[24] = "null", due_iso[48] = "null";
    if (s->lag >= 0)
        snprintf(lag, sizeof(lag), "%lld", s->lag);
    if (s->next_due >= 0) {
        char t[40];
        snprintf(due, sizeof(due), "%lld", s->next_due);
        hq_iso_time(s->next_due, t, sizeof(t));
        snprintf(due_iso, sizeof(due_iso), "\"%s\"", t);
    }
    int rc = hq_buf_printf(&b, "{\"prefix\":");
    rc = rc ? rc : hq_buf_json_str(&b, prefix, strlen(prefix));
    rc =
        rc ? rc
           : hq_buf_printf(
                 &b,
                 ",\"stream_length\":%lld,\"group\":\"%s\",\"group_exists\":%s,\"consumers\":%lld,\"pending\":%lld,\"lag\":%s,\"retry_backlog\":%lld,\"retry_next_due_ms\":%s,\"retry_next_due\":%s,\"dead_letters\":%lld,\"dead_scanned\":%lld,\"retry_lane_length\":%lld,\"retry_lane_oldest_ms\":%lld",
                 s->stream_len, HQ_GROUP, s->group_exists ? "true" : "false", s->consumers,
                 s->pending, lag, s->retries, due, due_iso, s->dead, d->scanned, s->lane_len,
                 s->lane_age);
    rc = rc ? rc : hq_buf_printf(&b, ",\"duplicates\":%lld", s->duplicates);
    rc = rc ? rc : json_breakdown(&b, "dead_by_reason", &d->reasons);
    rc = rc ? rc : json_breakdown(&b, "dead_by_endpoint", &d->endpoints);
    if (L->tagged)
        rc = rc ? rc : json_partitions(&b, L, part);
    rc = rc ? rc
            : hq_buf_printf(&b,
                            ",\"breakers_open\":%lld,\"breakers_half_open\":%lld,"
                            "\"breakers_disabled\":%lld",
                            s->cb_open, s->cb_half_open, s->cb_disabled);
    rc = rc ? rc
            : hq_buf_printf(&b, ",\"retained\":%lld,\"retained_bytes\":%lld", s->retained,
                            s->retained_bytes);
    rc = rc ? rc : hq_buf_printf(&b, ",\"endpoints\":%lld,\"now_ms\":%lld}", s->endpoints, s->now);
    if (rc == 0)
        *out = b;
    else
        hq_buf_free(&b);
    return rc;
}

static int on_tenant_ep(const struct hq_endpoint *e, void *arg)
{
    struct hq_tenant_eps *t = arg;
    t->total++;
    t->enabled += e->enabled != 0;
    return 0;
}

int hq_stats_tenant_read(struct hq_redis_conn *c, const struct hq_layout *L, const char *tenant,
                         struct hq_tenant_eps *eps, struct hq_dead_breakdown *d, struct hq_err *err)
{
    redisContext *reg = hq_redis_conn_node(c, L->reg_slot, err);
    if (!reg)
        return HQ_EREDIS;
    memset(eps, 0, sizeof(*eps));
    int rc = hq_endpoint_scan_tenant(reg, L->reg, tenant, 0, on_tenant_ep, eps, err);
    if (rc == 0)
        rc = hq_stats_read_dead(c, L, d, err);
    return rc;
}

int hq_stats_tenant_json(const char *tenant, const struct hq_tenant_eps *eps,
                         const struct hq_dead_breakdown *d, struct hq_buf *out)
{
    struct hq_buf b;
    hq_buf_init(&b, STATS_JSON_MAX);
    int wrc = hq_buf_printf(&b, "{\"tenant\":");
    wrc = wrc ? wrc : hq_buf_json_str(&b, tenant, strlen(tenant));
    wrc = wrc ? wrc
              : hq_buf_printf(&b,
                              ",\"endpoints\":%lld,\"endpoints_enabled\":%lld,"
                              "\"endpoints_disabled\":%lld,\"dead_letters\":%lld,"
                              "\"dead_scanned\":%lld,\"dead_capped\":%s",
                              eps->total, eps->enabled, eps->total - eps->enabled, d->matched,
                              d->scanned, d->capped ? "true" : "false");
    wrc = wrc ? wrc : json_breakdown(&b, "dead_by_reason", &d->reasons);
    wrc = wrc ? wrc : json_breakdown(&b, "dead_by_endpoint", &d->endpoints);
    wrc = wrc ? wrc : hq_buf_append(&b, "}", 1);
    if (wrc == 0)
        *out = b;
    else
        hq_buf_free(&b);
    return wrc;
}

int hq_stats_collect_json(struct hq_redis_conn *c, const struct hq_layout *L, const char *tenant,
                          struct hq_buf *out, struct hq_err *err)
{
    struct hq_dead_breakdown d = {.tenant = tenant};
    hq_tally_init(&d.reasons, STATS_REASONS_MAX);
    hq_tally_init(&d.endpoints, STATS_ENDPOINTS_MAX);
    int rc;
    if (tenant) {
        struct hq_tenant_eps eps;
        rc = hq_stats_tenant_read(c, L, tenant, &eps, &d, err);
        if (rc == 0 && hq_stats_tenant_json(tenant, &eps, &d, out) != 0)
            rc = hq_err_set(err, HQ_ETOOBIG, "stats: output too large");
    } else {
        struct hq_stats s;
        struct hq_stats *part = hq_calloc(L->nparts, sizeof(*part));
        rc = hq_stats_read(c, L, part, &s, err);
        if (rc == 0 && s.dead > 0)
            rc = hq_stats_read_dead(c, L, &d, err);
        if (rc == 0 && hq_stats_json(L, part, &s, &d, out) != 0)
            rc = hq_err_set(err, HQ_ETOOBIG, "stats: output too large");
        free(part);
    }
    hq_tally_free(&d.reasons);
    hq_tally_free(&d.endpoints);
    return rc;
}
