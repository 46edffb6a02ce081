/* An endpoint's recent attempt records: attempts_recent.h. */
#include "common/attempts_recent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/keys.h"
#include "common/layout.h"
#include "common/limits.h"
#include "common/redis_conn.h"
#include "common/redis_sync.h"

#define RECENT_HSCAN_COUNT "1000"

/* One attempt bucket: its start (the index's member), partition and HSCAN cursor. */
struct bucket {
    long long start;
    unsigned part;
    int done;
    char cursor[32];
};

/* The walk's state. */
struct walk {
    const char *ep;
    char needle[HQ_KEY_MAX + 32]; /* "endpoint_id":"<id>": the cheap prefilter */
    size_t needle_len;
    size_t budget;
    int cut; /* the budget ended a bucket's scan */
    struct hq_recent *out;
};

static int bucket_newer(const void *a, const void *b)
{
    const struct bucket *x = a, *y = b;
    return x->start < y->start ? 1 : x->start > y->start ? -1 : 0;
}

/* Appends every bucket of partition p (ZREVRANGE of its index) to *bs. */
static int list_buckets(struct hq_redis_conn *c, const struct hq_layout *L, unsigned p,
                        struct bucket **bs, size_t *n, size_t *cap, struct hq_err *err)
{
    char index[HQ_KEY_MAX];
    if (hq_key_attempt_index(L->part[p].base, index, sizeof(index)) < 0)
        return hq_err_set(err, HQ_EINVAL, "attempt index: key for partition %u too long", p);
    redisContext *node = hq_redis_conn_node(c, L->part[p].slot, err);
    redisReply *r = node ? hq_redis_cmdf(node, err, "ZREVRANGE %s 0 -1", index) : NULL;
    if (!r)
        return HQ_EREDIS;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *m = r->element[i];
        if (m->type != REDIS_REPLY_STRING)
            continue;
        if (*n == *cap) {
            *cap = *cap ? 2 * *cap : 128;
            *bs = hq_realloc(*bs, *cap * sizeof(**bs));
        }
        (*bs)[(*n)++] = (struct bucket){strtoll(m->str, NULL, 10), p, 0, "0"};
    }
    freeReplyObject(r);
    return 0;
}

/* The records of one field (event id -> JSON lines) that are w->ep's. */
static void match_value(struct walk *w, const redisReply *f, const redisReply *v)
{
    if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
        !memmem(v->str, v->len, w->needle, w->needle_len))
        return;
    const char *p = v->str, *end = v->str + v->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        json_t *rec = json_loadb(p, len, 0, NULL);
        const char *ep = json_string_value(json_object_get(rec, "endpoint_id"));
        if (json_is_object(rec) && ep && strcmp(ep, w->ep) == 0) {
            json_t *item = json_object();
            json_object_set_new(item, "event_id", json_stringn(f->str, f->len));
            json_object_update(item, rec);
            json_array_append_new(w->out->items, item);
        }
        json_decref(rec);
        p += len + 1;
    }
}

/* One HSCAN of b into w (b->done once its cursor is back to 0): 0, or an error. */
static int scan_step(struct hq_redis_conn *c, const struct hq_layout *L, struct bucket *b,
                     struct walk *w, struct hq_err *err)
{
    char start[24], key[HQ_KEY_MAX];
    snprintf(start, sizeof(start), "%lld", b->start);
    if (hq_key_attempt_bucket(L->part[b->part].base, start, key, sizeof(key)) < 0)
        return hq_err_set(err, HQ_EINVAL, "attempt bucket: key for start %s too long", start);
    redisContext *node = hq_redis_conn_node(c, L->part[b->part].slot, err);
    const char *argv[] = {"HSCAN", key, b->cursor, "COUNT", RECENT_HSCAN_COUNT};
    redisReply *r = node ? hq_redis_cmd(node, err, 5, argv, NULL) : NULL;
    if (!r)
        return HQ_EREDIS;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return hq_err_set(err, HQ_EREDIS, "attempt bucket %s: unexpected HSCAN reply", key);
    }
    snprintf(b->cursor, sizeof(b->cursor), "%s", r->element[0]->str);
    b->done = strcmp(b->cursor, "0") == 0;
    const redisReply *kv = r->element[1];
    for (size_t i = 0; i + 1 < kv->elements; i += 2) {
        w->out->scanned++;
        match_value(w, kv->element[i], kv->element[i + 1]);
    }
    freeReplyObject(r);
    return 0;
}

/* Reads the buckets bs[0..n) (one start, one per partition) one HSCAN each in
 * turn, so the budget is shared between partitions: 0 (w->cut set when the
 * budget ended it first), or an error. */
static int scan_group(struct hq_redis_conn *c, const struct hq_layout *L, struct bucket *bs,
                      size_t n, struct walk *w, struct hq_err *err)
{
    for (size_t left = n; left > 0;) {
        for (size_t k = 0; k < n; k++) {
            if (bs[k].done)
                continue;
            if (w->out->scanned >= w->budget) {
                w->cut = 1;
                return 0;
            }
            int rc = scan_step(c, L, &bs[k], w, err);
            if (rc != 0)
                return rc;
            left -= bs[k].done;
        }
    }
    return 0;
}

static int item_newer(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t tx = json_integer_value(json_object_get(x, "at_ms"));
    json_int_t ty = json_integer_value(json_object_get(y, "at_ms"));
    if (tx != ty)
        return tx < ty ? 1 : -1;
    json_int_t ax = json_integer_value(json_object_get(x, "attempt"));
    json_int_t ay = json_integer_value(json_object_get(y, "attempt"));
    if (ax != ay)
        return ax < ay ? 1 : -1;
    return strcmp(json_string_value(json_object_get(x, "event_id")),
                  json_string_value(json_object_get(y, "event_id")));
}

/* Sorts out->items newest first and keeps the first limit. */
static void keep_newest(struct hq_recent *out, int limit)
{
    size_t n = json_array_size(out->items);
    if (n == 0)
        return;
    json_t **v = hq_calloc(n, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(out->items, i));
    qsort(v, n, sizeof(*v), item_newer);
    json_array_clear(out->items);
    for (size_t i = 0; i < n; i++) {
        if (i < (size_t)limit)
            json_array_append(out->items, v[i]);
        json_decref(v[i]);
    }
    free(v);
}

int hq_attempts_recent(struct hq_redis_conn *c, const struct hq_layout *L, const char *endpoint_id,
                       int limit, size_t budget, struct hq_recent *out, struct hq_err *err)
{
    *out = (struct hq_recent){NULL, 1, 0};
    if (limit < 1 || limit > HQ_RECENT_ATTEMPTS_MAX)
        return hq_err_set(err, HQ_EINVAL, "limit: %d, not 1-%d", limit, HQ_RECENT_ATTEMPTS_MAX);
    struct walk w = {.ep = endpoint_id, .budget = budget, .out = out};
    int nl = snprintf(w.needle, sizeof(w.needle), "\"endpoint_id\":\"%s\"", endpoint_id);
    if (nl < 0 || (size_t)nl >= sizeof(w.needle))
        return hq_err_set(err, HQ_EINVAL, "endpoint id '%.40s...' too long", endpoint_id);
    w.needle_len = (size_t)nl;
    struct bucket *bs = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (unsigned p = 0; rc == 0 && p < L->nparts; p++)
        rc = list_buckets(c, L, p, &bs, &n, &cap, err);
    if (n)
        qsort(bs, n, sizeof(*bs), bucket_newer);
    out->items = json_array();
    /* Buckets of one start (one per partition) cover the same time: all are
     * read before the limit may end the walk. */
    for (size_t i = 0, j; rc == 0 && !w.cut && i < n; i = j) {
        if (json_array_size(out->items) >= (size_t)limit)
            break;
        for (j = i + 1; j < n && bs[j].start == bs[i].start;)
            j++;
        rc = scan_group(c, L, bs + i, j - i, &w, err);
    }
    out->complete = !w.cut;
    free(bs);
    if (rc != 0) {
        json_decref(out->items);
        out->items = NULL;
        return rc;
    }
    keep_newest(out, limit);
    return 0;
}
