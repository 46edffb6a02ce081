/* /v1/dead-letters: the CLI's `hookq dlq` over HTTP, on common/dlq.c. Ids are
 * the CLI's with ':' for '/' ("p3:1732660000000-0"; bare ids untagged), so
 * they fit in a path. Replay and purge take ids, or a filter worked through
 * in slices of at most SLICE entries per call: the answer's iterator (the
 * merged cursor, as `hookq dlq list --cursor`) continues where the slice
 * stopped, so no call runs long and an interrupted run resumes. */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "common/clock.h"
#include "common/dlq.h"
#include "common/event.h"
#include "common/limits.h"

#define SLICE     2000 /* entries replayed or purged per call by filter */
#define IDS_MAX   500  /* ids per call */
#define ENTRY_MAX ((size_t)HQ_PAYLOAD_MAX_LIMIT * 6 + 65536)

/* "p3:1-0" / "1-0" into part and entry id (hq_layout_entry_parse's rules and messages). */
static int parse_id(const struct hq_layout *L, const char *s, unsigned *part, char *id,
                    struct hq_err *err)
{
    char cli[HQ_DLQ_ID_MAX + 16];
    snprintf(cli, sizeof(cli), "%s", s);
    char *colon = strchr(cli, ':');
    if (colon && cli[0] == 'p')
        *colon = '/';
    int rc = hq_layout_entry_parse(L, cli, part, id, HQ_DLQ_ID_MAX, err);
    return rc ? rc : hq_dlq_check_id("entry id", id, err);
}

static void format_id(const struct hq_layout *L, unsigned part, const char *entry, char *out,
                      size_t n)
{
    if (hq_layout_entry_fmt(L, part, entry, out, n) < 0)
        out[0] = '\0';
    char *slash = strchr(out, '/');
    if (slash)
        *slash = ':';
}

/* The filter from query parameters or a JSON object (get(name)); tenant forced
 * by a tenant key. -1 after answering. */
typedef const char *(*getter)(void *src, const char *name);

static const char *from_query(void *q, const char *name)
{
    return hq_api_query(q, name);
}

static const char *from_json(void *o, const char *name)
{
    return json_string_value(json_object_get(o, name));
}

static int read_filter(struct hq_api_req *q, getter get, void *src, struct hq_dlq_filter *f,
                       unsigned bad_status)
{
    memset(f, 0, sizeof(*f));
    struct hq_err err = {0};
    f->endpoint = get(src, "endpoint");
    f->type = get(src, "type");
    f->reason = get(src, "reason");
    f->tenant = get(src, "tenant");
    const char *since = get(src, "since"), *until = get(src, "until");
    const char *kt = hq_api_tenant(q);
    int rc = 0;
    if (f->tenant && hq_event_check_tenant(f->tenant, strlen(f->tenant), &err) != 0)
        rc = -1;
    else if (kt[0] && f->tenant && strcmp(f->tenant, kt) != 0)
        rc = hq_err_set(&err, HQ_EINVAL, "tenant: this API key is scoped to another tenant");
    else if (since && hq_dlq_parse_time("since", since, hq_now_ms(), &f->since_ms, &err) != 0)
        rc = -1;
    else if (until && hq_dlq_parse_time("until", until, hq_now_ms(), &f->before_ms, &err) != 0)
        rc = -1;
    if (rc != 0) {
        hq_api_problem(q, bad_status, "invalid", err.msg);
        return -1;
    }
    if (kt[0])
        f->tenant = kt;
    return 0;
}

/* ---- list / get ----------------------------------------------------------------------------- */

struct page {
    const struct hq_layout *L;
    struct hq_buf *b;
    long long limit, n;
    int failed;
};

static int on_entry(const redisReply *e, unsigned part, void *arg)
{
    struct page *p = arg;
    char id[HQ_DLQ_ID_MAX + 16];
    format_id(p->L, part, hq_dlq_entry_id(e), id, sizeof(id));
    if ((p->n && hq_buf_append(p->b, ",", 1) != 0) || hq_dlq_entry_json(p->b, id, e) != 0) {
        p->failed = 1;
        return 1;
    }
    return ++p->n >= p->limit;
}

void hq_api_dl_list(struct hq_api_req *q)
{
    long long limit = hq_api_query_limit(q);
    struct hq_dlq_filter f;
    if (limit < 0 || read_filter(q, from_query, q, &f, MHD_HTTP_BAD_REQUEST) != 0)
        return;
    const struct hq_layout *L = &q->api->L;
    struct hq_err err = {0};
    struct hq_dlq_cursor cur;
    hq_dlq_cursor_init(&cur, L->nparts);
    const char *it = hq_api_query(q, "iterator");
    if (it && hq_dlq_cursor_decode(&cur, it, &err) != 0) {
        hq_dlq_cursor_free(&cur);
        hq_api_problem(q, MHD_HTTP_BAD_REQUEST, "invalid", err.msg);
        return;
    }
    struct hq_buf b;
    hq_buf_init(&b, (size_t)limit * ENTRY_MAX / 64 + ENTRY_MAX);
    struct page p = {L, &b, limit, 0, 0};
    int more = 0;
    size_t pg = limit < HQ_DLQ_PAGE ? (size_t)limit + 1 : (size_t)HQ_DLQ_PAGE;
    struct hq_redis_conn *c = hq_api_redis(q, &err);
    int rc = hq_buf_printf(&b, "{\"data\":[");
    if (rc == 0)
        rc = c ? hq_dlq_scan_merged(c, L, &f, &cur, pg, on_entry, &p, &more, &err) : HQ_EREDIS;
    if (rc == 0 && p.failed)
        rc = hq_err_set(&err, HQ_ETOOBIG, "limit: the page is too large; ask for fewer");
    char *token = rc == 0 && more ? hq_dlq_cursor_encode(&cur) : NULL;
    if (rc == 0)
        rc = token ? hq_buf_printf(&b, "],\"iterator\":\"%s\",\"done\":false}", token)
                   : hq_buf_printf(&b, "],\"iterator\":null,\"done\":true}");
    free(token);
    hq_dlq_cursor_free(&cur);
    if (rc == 0)
        hq_api_json(q, MHD_HTTP_OK, &b);
    else
        hq_api_fail(q, rc, &err);
    hq_buf_free(&b);
}

/* The entry of id if the key may see it. [out] *r (freeReplyObject), *part, entry. */
static int get_visible(struct hq_api_req *q, const char *id, unsigned *part, char *entry,
                       redisReply **r, struct hq_err *err)
{
    const struct hq_layout *L = &q->api->L;
    int rc = parse_id(L, id, part, entry, err);
    if (rc != 0)
        return rc;
    struct hq_redis_conn *c = hq_api_redis(q, err);
    if (!c)
        return HQ_EREDIS;
    rc = hq_dlq_get(c, L, *part, entry, r, err);
    const char *kt = hq_api_tenant(q);
    if (rc == 0 && kt[0]) {
        size_t len = 0;
        const char *t = hq_dlq_field((*r)->element[0], "tenant", &len);
        if (!t || len != strlen(kt) || memcmp(t, kt, len) != 0) {
            freeReplyObject(*r);
            *r = NULL;
            rc = hq_err_set(err, HQ_ENOTFOUND, "no dead letter '%s'", id);
        }
    }
    return rc;
}

void hq_api_dl_get(struct hq_api_req *q)
{
    struct hq_err err = {0};
    unsigned part;
    char entry[HQ_DLQ_ID_MAX];
    redisReply *r = NULL;
    int rc = get_visible(q, q->params[0], &part, entry, &r, &err);
    if (rc != 0) {
        hq_api_fail(q, rc, &err);
        return;
    }
    char id[HQ_DLQ_ID_MAX + 16];
    format_id(&q->api->L, part, entry, id, sizeof(id));
    struct hq_buf b;
    hq_buf_init(&b, ENTRY_MAX);
    if (hq_dlq_entry_json(&b, id, r->element[0]) == 0)
        hq_api_json(q, MHD_HTTP_OK, &b);
    else
        hq_api_problem(q, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "entry: too large");
    hq_buf_free(&b);
    freeReplyObject(r);
}

/* ---- replay / purge ------------------------------------------------------------------------- */

struct slice {
    const char ***ids; /* per partition: borrowed from store */
    size_t *n;
    char (*store)[HQ_DLQ_ID_MAX];
    size_t used;
};

static int on_slice(const redisReply *e, unsigned part, void *arg)
{
    struct slice *s = arg;
    snprintf(s->store[s->used], HQ_DLQ_ID_MAX, "%s", hq_dlq_entry_id(e));
    s->ids[part][s->n[part]++] = s->store[s->used++];
    return s->used >= SLICE;
}

static int act(struct hq_redis_conn *c, const struct hq_layout *L, unsigned part,
               const char *const *ids, size_t n, int replay, struct hq_dlq_counts *counts,
               struct hq_err *err)
{
    return replay ? hq_dlq_replay_ids(c, L, part, ids, n, counts, err)
                  : hq_dlq_delete_ids(c, L, part, ids, n, counts, err);
}

static void answer_counts(struct hq_api_req *q, const struct hq_dlq_counts *n, const char *token)
{
    struct hq_buf b;
    hq_buf_init(&b, 1024);
    int rc = hq_buf_printf(&b, "{\"done_count\":%lld,\"skipped\":%lld,\"missing\":%lld,", n->done,
                           n->skipped, n->missing);
    rc = rc      ? rc
         : token ? hq_buf_printf(&b, "\"done\":false,\"iterator\":\"%s\"}", token)
                 : hq_buf_printf(&b, "\"done\":true,\"iterator\":null}");
    if (rc == 0)
        hq_api_json(q, MHD_HTTP_OK, &b);
    hq_buf_free(&b);
}

static void by_ids(struct hq_api_req *q, const json_t *ids, int replay)
{
    const struct hq_layout *L = &q->api->L;
    size_t n = json_array_size(ids);
    struct hq_err err = {0};
    if (n == 0 || n > IDS_MAX) {
        hq_err_set(&err, HQ_EINVAL, "ids: %zu ids, give 1-%d", n, IDS_MAX);
        hq_api_fail(q, HQ_EINVAL, &err);
        return;
    }
    unsigned *parts = calloc(n, sizeof(*parts));
    char(*entries)[HQ_DLQ_ID_MAX] = calloc(n, HQ_DLQ_ID_MAX);
    int rc = 0;
    /* Every id is checked (shape, existence, tenant) before anything changes, as the CLI. */
    for (size_t i = 0; i < n && rc == 0; i++) {
        redisReply *r = NULL;
        rc = get_visible(q, json_string_value(json_array_get(ids, i)), &parts[i], entries[i], &r,
                         &err);
        if (r)
            freeReplyObject(r);
    }
    struct hq_dlq_counts counts = {0};
    struct hq_redis_conn *c = rc == 0 ? hq_api_redis(q, &err) : NULL;
    if (rc == 0 && !c)
        rc = HQ_EREDIS;
    const char **list = calloc(n, sizeof(*list));
    for (unsigned p = 0; rc == 0 && p < L->nparts; p++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (parts[i] == p)
                list[k++] = entries[i];
        if (k)
            rc = act(c, L, p, list, k, replay, &counts, &err);
    }
    free(list);
    free(parts);
    free(entries);
    if (rc == 0)
        answer_counts(q, &counts, NULL);
    else
        hq_api_fail(q, rc, &err);
}

static void bulk(struct hq_api_req *q, int replay)
{
    static const struct hq_jfield fields[] = {
        {"ids", HQ_J_STRS, 0}, {"filter", HQ_J_OBJ, 0}, {"iterator", HQ_J_STR, 0}, {NULL, 0, 0}};
    static const struct hq_jfield filter_fields[] = {{"endpoint", HQ_J_STR, 0},
                                                     {"type", HQ_J_STR, 0},
                                                     {"reason", HQ_J_STR, 0},
                                                     {"since", HQ_J_STR, 0},
                                                     {"until", HQ_J_STR, 0},
                                                     {"tenant", HQ_J_STR, 0},
                                                     {NULL, 0, 0}};
    json_t *doc;
    if (hq_api_json_body(q, fields, &doc) != 0)
        return;
    const json_t *ids = json_object_get(doc, "ids"), *fo = json_object_get(doc, "filter");
    struct hq_err err = {0};
    if (!!ids == !!fo || (ids && json_object_get(doc, "iterator"))) {
        hq_api_problem(q, MHD_HTTP_BAD_REQUEST, "invalid",
                       "body: give ids, or filter (with the iterator of the previous call)");
        json_decref(doc);
        return;
    }
    if (ids) {
        by_ids(q, ids, replay);
        json_decref(doc);
        return;
    }
    if (hq_api_json_check(fo, filter_fields, "filter", &err) != 0) {
        hq_api_problem(q, MHD_HTTP_BAD_REQUEST, "invalid", err.msg);
        json_decref(doc);
        return;
    }
    struct hq_dlq_filter f;
    if (read_filter(q, from_json, (void *)fo, &f, MHD_HTTP_UNPROCESSABLE_CONTENT) != 0) {
        json_decref(doc);
        return;
    }
    const struct hq_layout *L = &q->api->L;
    struct hq_dlq_cursor cur;
    hq_dlq_cursor_init(&cur, L->nparts);
    const char *it = json_string_value(json_object_get(doc, "iterator"));
    int rc = it ? hq_dlq_cursor_decode(&cur, it, &err) : 0;
    struct slice *s = calloc(1, sizeof(*s));
    s->store = calloc(SLICE, HQ_DLQ_ID_MAX);
    s->ids = calloc(L->nparts, sizeof(*s->ids));
    s->n = calloc(L->nparts, sizeof(*s->n));
    for (unsigned p = 0; p < L->nparts; p++)
        s->ids[p] = calloc(SLICE, sizeof(char *));
    struct hq_redis_conn *c = rc == 0 ? hq_api_redis(q, &err) : NULL;
    if (rc == 0 && !c)
        rc = HQ_EREDIS;
    int more = 0;
    if (rc == 0)
        rc = hq_dlq_scan_merged(c, L, &f, &cur, HQ_DLQ_PAGE, on_slice, s, &more, &err);
    struct hq_dlq_counts counts = {0};
    for (unsigned p = 0; rc == 0 && p < L->nparts; p++)
        if (s->n[p])
            rc = act(c, L, p, s->ids[p], s->n[p], replay, &counts, &err);
    char *token = rc == 0 && more ? hq_dlq_cursor_encode(&cur) : NULL;
    if (rc == 0)
        answer_counts(q, &counts, token);
    else
        hq_api_fail(q, rc, &err);
    free(token);
    for (unsigned p = 0; p < L->nparts; p++)
        free(s->ids[p]);
    free(s->ids);
    free(s->n);
    free(s->store);
    free(s);
    hq_dlq_cursor_free(&cur);
    json_decref(doc);
}

void hq_api_dl_replay(struct hq_api_req *q)
{
    bulk(q, 1);
}

void hq_api_dl_purge(struct hq_api_req *q)
{
    bulk(q, 0);
}
