/* The dead-letter streams: paging, filters, replay, purge, and the parsing of
 * entry ids and points in time. See dlq.h. Owns no output format. */
#include "common/dlq.h"

#include "common/buf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/config.h"
#include "common/keys.h"
#include "common/layout.h"
#include "common/limits.h"
#include "common/redis_conn.h"
#include "common/redis_sync.h"
#include "common/scripts.h"
#include "common/stream_id.h"

/* ---- Ids and times -------------------------------------------------------------------- */

/* A complete "<ms>-<seq>" that fits HQ_DLQ_ID_MAX with both numbers in 64
 * bits (strtoull, under hq_sid_parse, sets errno on overflow). */
static int parse_id(const char *s, struct hq_sid *id)
{
    if (strlen(s) >= HQ_DLQ_ID_MAX)
        return -1;
    errno = 0;
    return hq_sid_parse(s, id) && errno == 0 ? 0 : -1;
}

int hq_dlq_check_id(const char *what, const char *s, struct hq_err *err)
{
    struct hq_sid id;
    if (parse_id(s, &id) != 0)
        return hq_err_set(err, HQ_EINVAL, "%s: '%.*s' is not a stream entry id (<ms>-<seq>)", what,
                          HQ_EVENT_ECHO_MAX, s);
    return 0;
}

/* -1, 0, 1 like strcmp, for two valid ids. */
static int id_cmp(const char *a, const char *b)
{
    struct hq_sid x = {0, 0}, y = {0, 0};
    (void)parse_id(a, &x);
    (void)parse_id(b, &y);
    return hq_sid_cmp(&x, &y);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil): no timegm(), which C11 lacks. */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

/* Reads exactly n digits; -1 when they are not digits. */
static long long digits(const char *s, int n)
{
    long long v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int parse_iso(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    if (n < 10 || s[4] != '-' || s[7] != '-')
        return -1;
    long long y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    long long h = 0, mi = 0, sec = 0;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31)
        return -1;
    const char *p = s + 10;
    if (*p == 'T' || *p == ' ') {
        if (strlen(p) < 6 || p[3] != ':')
            return -1;
        h = digits(p + 1, 2);
        mi = digits(p + 4, 2);
        p += 6;
        if (*p == ':') {
            sec = digits(p + 1, 2);
            p += 3;
        }
        if (h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60)
            return -1;
    }
    if (*p == 'Z')
        p++;
    if (*p)
        return -1;
    *out =
        ((days_from_civil(y, (unsigned)mo, (unsigned)d) * 24 + h) * 60 + mi) * 60000 + sec * 1000;
    return 0;
}

int hq_dlq_parse_time(const char *what, const char *s, int64_t now_ms, int64_t *out_ms,
                      struct hq_err *err)
{
    long long v;
    int all_digits = *s != '\0';
    for (const char *p = s; *p; p++)
        all_digits &= isdigit((unsigned char)*p) != 0;
    if (all_digits && hq_parse_int(s, &v) == 0 && v > 0) {
        *out_ms = v;
        return 0;
    }
    if (!all_digits && hq_parse_duration_ms(s, &v) == 0) {
        *out_ms = v > now_ms ? 0 : now_ms - v;
        return 0;
    }
    if (parse_iso(s, out_ms) == 0)
        return 0;
    return hq_err_set(
        err, HQ_EINVAL,
        "%s: '%.*s' is not a duration (2h, 7d), unix ms or a date (2026-11-26 or 2026-11-26T12:00:00Z)",
        what, HQ_EVENT_ECHO_MAX, s);
}

/* ---- Entries ----------------------------------------------------------------------------- */

const char *hq_dlq_entry_id(const redisReply *e)
{
    if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return "";
    return e->element[0]->str;
}

const char *hq_dlq_field(const redisReply *e, const char *name, size_t *len)
{
    if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
        e->element[1]->type != REDIS_REPLY_ARRAY)
        return NULL;
    const redisReply *kv = e->element[1];
    for (size_t i = 0; i + 1 < kv->elements; i += 2) {
        const redisReply *k = kv->element[i], *v = kv->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
            strcmp(k->str, name) == 0) {
            if (len)
                *len = v->len;
            return v->str;
        }
    }
    return NULL;
}

static int field_is(const redisReply *e, const char *name, const char *want)
{
    const char *v = hq_dlq_field(e, name, NULL);
    return v && strcmp(v, want) == 0;
}

int hq_dlq_match(const struct hq_dlq_filter *f, const redisReply *e)
{
    if (f->endpoint && !field_is(e, "endpoint_id", f->endpoint))
        return 0;
    if (f->type && !field_is(e, "type", f->type))
        return 0;
    if (f->tenant && !field_is(e, "tenant", f->tenant))
        return 0;
    if (f->event_id && !field_is(e, "event_id", f->event_id))
        return 0;
    if (f->reason) {
        const char *r = hq_dlq_field(e, "reason", NULL);
        if (!r || strncmp(r, f->reason, strlen(f->reason)) != 0)
            return 0;
    }
    return 1;
}

/* ---- Paging --------------------------------------------------------------------------------- */

static redisReply *pcmd(struct hq_redis_conn *c, const struct hq_layout *L, unsigned part,
                        struct hq_err *err, int argc, const char **argv)
{
    return hq_redis_conn_cmd(c, L->part[part].slot, err, argc, argv, NULL);
}

static void dead_key(const struct hq_layout *L, unsigned part, char key[HQ_KEY_MAX])
{
    hq_key_dead(L->part[part].base, key, HQ_KEY_MAX);
}

/* The stream a walk reads: <base>:dead, or <base>:retained. */
static void stream_key(const struct hq_layout *L, unsigned part, int retained, char key[HQ_KEY_MAX])
{
    if (retained)
        hq_key_retained(L->part[part].base, key, HQ_KEY_MAX);
    else
        dead_key(L, part, key);
}

/* The XRANGE bounds of f: lo ("-" or "<since>-0"), hi ("+", "(<before>-0" or max_id). */
static void filter_bounds(const struct hq_dlq_filter *f, char lo[HQ_DLQ_ID_MAX + 1],
                          char hi[HQ_DLQ_ID_MAX + 1])
{
    snprintf(lo, HQ_DLQ_ID_MAX + 1, "-");
    snprintf(hi, HQ_DLQ_ID_MAX + 1, "+");
    if (f->since_ms > 0)
        snprintf(lo, HQ_DLQ_ID_MAX + 1, "%lld-0", (long long)f->since_ms);
    if (f->before_ms > 0)
        snprintf(hi, HQ_DLQ_ID_MAX + 1, "(%lld-0", (long long)f->before_ms);
    if (f->max_id[0] && (f->before_ms <= 0 || id_cmp(f->max_id, hi + 1) < 0))
        snprintf(hi, HQ_DLQ_ID_MAX + 1, "%s", f->max_id);
}

/* One page of partition part between lo and hi; NULL with err, or an array reply. */
static redisReply *read_page(struct hq_redis_conn *c, const struct hq_layout *L, unsigned part,
                             int retained, int newest_first, const char *lo, const char *hi,
                             size_t page, struct hq_err *err)
{
    char key[HQ_KEY_MAX], count[24];
    stream_key(L, part, retained, key);
    snprintf(count, sizeof(count), "%zu", page);
    const char *argv[] = {newest_first ? "XREVRANGE" : "XRANGE",
                          key,
                          newest_first ? hi : lo,
                          newest_first ? lo : hi,
                          "COUNT",
                          count};
    redisReply *r = pcmd(c, L, part, err, 6, argv);
    if (r && r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        hq_err_set(err, HQ_EREDIS, "redis: unexpected reply to XRANGE");
        return NULL;
    }
    return r;
}

int hq_dlq_scan(struct hq_redis_conn *c, const struct hq_layout *L, unsigned part, int newest_first,
                const struct hq_dlq_filter *f, hq_dlq_visit_cb cb, void *arg, struct hq_err *err)
{
    char lo[HQ_DLQ_ID_MAX + 1], hi[HQ_DLQ_ID_MAX + 1];
    filter_bounds(f, lo, hi);
    for (;;) {
        redisReply *r = read_page(c, L, part, f->retained, newest_first, lo, hi, HQ_DLQ_PAGE, err);
        if (!r)
            return HQ_EREDIS;
        int stop = r->elements == 0;
        for (size_t i = 0; i < r->elements && !stop; i++) {
            const redisReply *e = r->element[i];
            if (hq_dlq_match(f, e))
                stop = cb(e, part, arg) != 0;
        }
        if (!stop && r->elements > 0) {
            const char *last = hq_dlq_entry_id(r->element[r->elements - 1]);
            snprintf(newest_first ? hi : lo, HQ_DLQ_ID_MAX + 1, "(%s", last);
        }
        if (r->elements < (size_t)HQ_DLQ_PAGE)
            stop = 1;
        freeReplyObject(r);
        if (stop)
            return 0;
    }
}

/* ---- Merged listing ------------------------------------------------------------------------ */

void hq_dlq_cursor_init(struct hq_dlq_cursor *cur, unsigned nparts)
{
    cur->nparts = nparts;
    cur->last = hq_calloc(nparts ? nparts : 1, sizeof(*cur->last));
}

void hq_dlq_cursor_free(struct hq_dlq_cursor *cur)
{
    free(cur->last);
    cur->last = NULL;
}

char *hq_dlq_cursor_encode(const struct hq_dlq_cursor *cur)
{
    size_t cap = 16 + (size_t)cur->nparts * HQ_DLQ_ID_MAX;
    char *plain = hq_calloc(1, cap);
    size_t n = (size_t)snprintf(plain, cap, "%u;", cur->nparts);
    for (unsigned i = 0; i < cur->nparts; i++)
        n += (size_t)snprintf(plain + n, cap - n, "%s%s", i ? "," : "", cur->last[i]);
    char *hex = hq_calloc(1, 2 * n + 1);
    static const char digitset[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digitset[(unsigned char)plain[i] >> 4];
        hex[2 * i + 1] = digitset[(unsigned char)plain[i] & 15];
    }
    free(plain);
    return hex;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

int hq_dlq_cursor_decode(struct hq_dlq_cursor *cur, const char *token, struct hq_err *err)
{
    size_t n = strlen(token);
    size_t max = 2 * (16 + (size_t)cur->nparts * HQ_DLQ_ID_MAX);
    if (n == 0 || n % 2 || n > max)
        goto bad;
    char *plain = hq_calloc(1, n / 2 + 1);
    for (size_t i = 0; i < n / 2; i++) {
        int a = hexval(token[2 * i]), b = hexval(token[2 * i + 1]);
        if (a < 0 || b < 0) {
            free(plain);
            goto bad;
        }
        plain[i] = (char)(a << 4 | b);
    }
    char *semi = strchr(plain, ';');
    long long p = -1;
    if (semi) {
        *semi = '\0';
        if (hq_parse_int(plain, &p) != 0)
            p = -1;
    }
    if (p != (long long)cur->nparts) {
        free(plain);
        if (p > 0)
            return hq_err_set(err, HQ_EINVAL,
                              "--cursor: this cursor is from a listing of %lld partitions; this "
                              "deployment has %u",
                              p, cur->nparts);
        goto bad;
    }
    char *s = semi + 1;
    for (unsigned i = 0; i < cur->nparts; i++) {
        char *comma = strchr(s, ',');
        if ((comma != NULL) != (i + 1 < cur->nparts)) {
            free(plain);
            goto bad;
        }
        if (comma)
            *comma = '\0';
        struct hq_sid sid;
        if (*s && parse_id(s, &sid) != 0) {
            free(plain);
            goto bad;
        }
        snprintf(cur->last[i], HQ_DLQ_ID_MAX, "%s", s);
        s = comma ? comma + 1 : s + strlen(s);
    }
    free(plain);
    return 0;
bad:
    return hq_err_set(err, HQ_EINVAL,
                      "--cursor: '%.40s%s' is not a cursor printed by hookq dlq list", token,
                      strlen(token) > 40 ? "..." : "");
}

/* One partition's buffered page in a merged walk. */
struct lane {
    redisReply *page; /* the last XREVRANGE reply, or NULL */
    size_t next;      /* its first entry not consumed yet */
    int exhausted;    /* the last page was short: nothing older is left */
    struct hq_sid head;
};

/* Whether lane a's head comes before lane b's in newest-first order (equal
 * ids: the lower partition first). */
static int lane_before(const struct lane *a, unsigned ia, const struct lane *b, unsigned ib)
{
    int c = hq_sid_cmp(&a->head, &b->head);
    return c > 0 || (c == 0 && ia < ib);
}

/* Makes lane i's head available if any is left: 1 yes, 0 none, -1 error. */
static int lane_fill(struct hq_redis_conn *c, const struct hq_layout *L, unsigned i,
                     struct lane *ln, const struct hq_dlq_cursor *cur, const char *lo,
                     const char *fhi, size_t page, struct hq_err *err)
{
    if (ln->page && ln->next < ln->page->elements)
        return 1;
    if (ln->exhausted)
        return 0;
    if (ln->page)
        freeReplyObject(ln->page);
    ln->page = NULL;
    char hi[HQ_DLQ_ID_MAX + 1];
    if (cur->last[i][0])
        snprintf(hi, sizeof(hi), "(%s", cur->last[i]);
    else
        snprintf(hi, sizeof(hi), "%s", fhi);
    ln->page = read_page(c, L, i, 0, 1, lo, hi, page, err);
    if (!ln->page)
        return -1;
    ln->next = 0;
    ln->exhausted = ln->page->elements < page;
    return ln->page->elements > 0;
}

int hq_dlq_scan_merged(struct hq_redis_conn *c, const struct hq_layout *L,
                       const struct hq_dlq_filter *f, struct hq_dlq_cursor *cur, size_t page,
                       hq_dlq_visit_cb cb, void *arg, int *more, struct hq_err *err)
{
    char lo[HQ_DLQ_ID_MAX + 1], fhi[HQ_DLQ_ID_MAX + 1];
    filter_bounds(f, lo, fhi);
    if (page < 1 || page > (size_t)HQ_DLQ_PAGE)
        page = HQ_DLQ_PAGE;
    unsigned P = L->nparts;
    struct lane *ln = hq_calloc(P, sizeof(*ln));
    int rc = 0, stop = 0;
    *more = 0;
    for (;;) {
        int best = -1;
        for (unsigned i = 0; i < P; i++) {
            int has = lane_fill(c, L, i, &ln[i], cur, lo, fhi, page, err);
            if (has < 0) {
                rc = HQ_EREDIS;
                goto out;
            }
            if (!has)
                continue;
            (void)parse_id(hq_dlq_entry_id(ln[i].page->element[ln[i].next]), &ln[i].head);
            if (best < 0 || lane_before(&ln[i], i, &ln[best], (unsigned)best))
                best = (int)i;
        }
        if (best < 0)
            break;
        if (stop) { /* an entry is left after the last one visited */
            *more = 1;
            break;
        }
        struct lane *b = &ln[best];
        const redisReply *e = b->page->element[b->next++];
        snprintf(cur->last[best], HQ_DLQ_ID_MAX, "%s", hq_dlq_entry_id(e));
        if (hq_dlq_match(f, e))
            stop = cb(e, (unsigned)best, arg) != 0;
    }
out:
    for (unsigned i = 0; i < P; i++)
        if (ln[i].page)
            freeReplyObject(ln[i].page);
    free(ln);
    return rc;
}

int hq_dlq_get(struct hq_redis_conn *c, const struct hq_layout *L, unsigned part, const char *id,
               redisReply **entry, struct hq_err *err)
{
    char key[HQ_KEY_MAX];
    dead_key(L, part, key);
    const char *argv[] = {"XRANGE", key, id, id};
    redisReply *r = pcmd(c, L, part, err, 4, argv);
    if (!r)
        return HQ_EREDIS;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 1) {
        freeReplyObject(r);
        return hq_err_set(err, HQ_ENOTFOUND, "entry '%s' is not in %s", id, key);
    }
    *entry = r;
    return 0;
}

int hq_dlq_last_id(struct hq_redis_conn *c, const struct hq_layout *L, unsigned part,
                   char out[HQ_DLQ_ID_MAX], struct hq_err *err)
{
    char key[HQ_KEY_MAX];
    dead_key(L, part, key);
    const char *argv[] = {"XREVRANGE", key, "+", "-", "COUNT", "1"};
    redisReply *r = pcmd(c, L, part, err, 6, argv);
    if (!r)
        return HQ_EREDIS;
    out[0] = '\0';
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1)
        snprintf(out, HQ_DLQ_ID_MAX, "%s", hq_dlq_entry_id(r->element[0]));
    freeReplyObject(r);
    return 0;
}

/* ---- Replay and delete ------------------------------------------------------------------- */

int hq_dlq_replay_ids(struct hq_redis_conn *c, const struct hq_layout *L, unsigned part,
                      const char *const *ids, size_t n, struct hq_dlq_counts *counts,
                      struct hq_err *err)
{
    return hq_dlq_replay_ids_from(c, L, part, 0, ids, n, counts, err);
}

int hq_dlq_replay_ids_from(struct hq_redis_conn *c, const struct hq_layout *L, unsigned part,
                           int retained, const char *const *ids, size_t n,
                           struct hq_dlq_counts *counts, struct hq_err *err)
{
    char dead[HQ_KEY_MAX], events[HQ_KEY_MAX], bytes[HQ_KEY_MAX];
    stream_key(L, part, retained, dead);
    hq_key_events(L->part[part].base, events, sizeof(events));
    hq_key_retained_bytes(L->part[part].base, bytes, sizeof(bytes));
    int nkeys = retained ? 3 : 2;
    const char *argv[3 + HQ_DLQ_PAGE];
    argv[0] = dead;
    argv[1] = events;
    argv[2] = bytes;
    for (size_t off = 0; off < n; off += HQ_DLQ_PAGE) {
        size_t k = n - off < (size_t)HQ_DLQ_PAGE ? n - off : (size_t)HQ_DLQ_PAGE;
        for (size_t i = 0; i < k; i++)
            argv[nkeys + i] = ids[off + i];
        /* The keys carry the partition's tag: one slot, one node. */
        redisContext *node = hq_redis_conn_node(c, L->part[part].slot, err);
        if (!node)
            return HQ_EREDIS;
        redisReply *r =
            hq_script_call(node, hq_script_dlq_replay, nkeys, nkeys + (int)k, argv, NULL, err);
        if (!r)
            return HQ_EREDIS;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
            counts->done += r->element[0]->integer;
            counts->skipped += r->element[1]->integer;
            counts->missing += r->element[2]->integer;
        }
        freeReplyObject(r);
    }
    return 0;
}

int hq_dlq_delete_ids(struct hq_redis_conn *c, const struct hq_layout *L, unsigned part,
                      const char *const *ids, size_t n, struct hq_dlq_counts *counts,
                      struct hq_err *err)
{
    char key[HQ_KEY_MAX];
    dead_key(L, part, key);
    const char *argv[2 + HQ_DLQ_PAGE];
    argv[0] = "XDEL";
    argv[1] = key;
    for (size_t off = 0; off < n; off += HQ_DLQ_PAGE) {
        size_t k = n - off < (size_t)HQ_DLQ_PAGE ? n - off : (size_t)HQ_DLQ_PAGE;
        for (size_t i = 0; i < k; i++)
            argv[2 + i] = ids[off + i];
        redisReply *r = pcmd(c, L, part, err, (int)(2 + k), argv);
        if (!r)
            return HQ_EREDIS;
        long long del = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
        counts->done += del;
        counts->missing += (long long)k - del;
        freeReplyObject(r);
    }
    return 0;
}

/* Ids collected from a scan, acted on a page at a time. */
struct batch {
    struct hq_redis_conn *c;
    const struct hq_layout *L;
    unsigned part;
    int replay;   /* 1 replay, 0 delete, -1 count only */
    int retained; /* replay from <base>:retained (the filter's) */
    char ids[HQ_DLQ_PAGE][HQ_DLQ_ID_MAX];
    size_t n;
    struct hq_dlq_counts *counts;
    hq_dlq_progress_cb progress;
    void *arg;
    struct hq_err *err;
    int rc;
};

static int flush(struct batch *b)
{
    const char *ids[HQ_DLQ_PAGE];
    for (size_t i = 0; i < b->n; i++)
        ids[i] = b->ids[i];
    int rc = b->replay ? hq_dlq_replay_ids_from(b->c, b->L, b->part, b->retained, ids, b->n,
                                                b->counts, b->err)
                       : hq_dlq_delete_ids(b->c, b->L, b->part, ids, b->n, b->counts, b->err);
    b->n = 0;
    if (rc == 0 && b->progress)
        b->progress(b->counts, b->arg);
    return rc;
}

static int on_batch_entry(const redisReply *e, unsigned part, void *arg)
{
    (void)part;
    struct batch *b = arg;
    if (b->replay < 0) {
        b->counts->done++;
        return 0;
    }
    snprintf(b->ids[b->n++], HQ_DLQ_ID_MAX, "%s", hq_dlq_entry_id(e));
    if (b->n == (size_t)HQ_DLQ_PAGE) {
        b->rc = flush(b);
        return b->rc != 0;
    }
    return 0;
}

static int run_batch(struct batch *b, const struct hq_dlq_filter *f)
{
    int rc = hq_dlq_scan(b->c, b->L, b->part, 0, f, on_batch_entry, b, b->err);
    if (rc == 0)
        rc = b->rc;
    if (rc == 0 && b->n > 0)
        rc = flush(b);
    return rc;
}

int hq_dlq_replay_matching(struct hq_redis_conn *c, const struct hq_layout *L, unsigned part,
                           const struct hq_dlq_filter *f, hq_dlq_progress_cb progress, void *arg,
                           struct hq_dlq_counts *counts, struct hq_err *err)
{
    struct batch *b = hq_calloc(1, sizeof(*b));
    *b = (struct batch){.c = c,
                        .L = L,
                        .part = part,
                        .replay = 1,
                        .retained = f->retained,
                        .counts = counts,
                        .progress = progress,
                        .arg = arg,
                        .err = err};
    int rc = run_batch(b, f);
    free(b);
    return rc;
}

int hq_dlq_purge_matching(struct hq_redis_conn *c, const struct hq_layout *L, unsigned part,
                          const struct hq_dlq_filter *f, int count_only,
                          struct hq_dlq_counts *counts, struct hq_err *err)
{
    struct batch *b = hq_calloc(1, sizeof(*b));
    *b = (struct batch){
        .c = c, .L = L, .part = part, .replay = count_only ? -1 : 0, .counts = counts, .err = err};
    int rc = run_batch(b, f);
    free(b);
    return rc;
}

/* Writes the entry as one JSON object: "id" (as users type it back: p<i>/<entry id>
 * in a partitioned layout) then every field. */
int hq_dlq_entry_json(struct hq_buf *b, const char *id, const redisReply *e)
{
    int rc = hq_buf_append(b, "{\"id\":", 6);
    rc = rc ? rc : hq_buf_json_str(b, id, strlen(id));
    const redisReply *kv = e->element[1];
    for (size_t i = 0; rc == 0 && kv->type == REDIS_REPLY_ARRAY && i + 1 < kv->elements; i += 2) {
        const redisReply *k = kv->element[i], *v = kv->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        rc = hq_buf_append(b, ",", 1);
        rc = rc ? rc : hq_buf_json_str(b, k->str, k->len);
        rc = rc ? rc : hq_buf_append(b, ":", 1);
        rc = rc ? rc : hq_buf_json_str(b, v->str, v->len);
    }
    if (rc == 0)
        rc = hq_buf_append(b, "}", 1);
    return rc;
}
