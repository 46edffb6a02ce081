/* Endpoints, the registry half: the blocking Redis operations the CLI and
 * tests use (create, get, save, delete, and the paged scan a listing walks).
 * Decoding and every rule are endpoint.c's; this file only moves hashes and
 * index entries (layout in endpoint.h).
 *
 * Every write is one MULTI/EXEC so the hash, <p>:endpoints, the idx:* sets and
 * the version counter never disagree; a caller that WATCHed the hash before
 * reading it gets HQ_EAGAIN when someone else changed it in between. */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/endpoint.h"
#include "common/endpoint_store.h"
#include "common/redis_sync.h"

/* Runs a command given as a fixed argv array (NUL-terminated strings). */
#define CMD(c, err, argv)                                                                          \
    hq_redis_cmd((c), (err), (int)(sizeof(argv) / sizeof(*(argv))), (argv), NULL)

/* ---- Transactions ------------------------------------------------------------------ */

/* A pipelined MULTI ... EXEC: commands are appended to the context's output
 * buffer and sent together; tx_exec reads every reply. */
struct tx {
    redisContext *c;
    int ncmds; /* commands appended, MULTI and EXEC included */
};

static void tx_append(struct tx *t, int argc, const char **argv)
{
    /* Appending only fails on OOM, which hiredis reports as REDIS_ERR and
     * which the daemon policy treats as fatal anyway. */
    if (redisAppendCommandArgv(t->c, argc, argv, NULL) != REDIS_OK)
        hq_panic("out of memory appending a Redis command");
    t->ncmds++;
}

static void tx_begin(struct tx *t, redisContext *c)
{
    t->c = c;
    t->ncmds = 0;
    const char *argv[] = {"MULTI"};
    tx_append(t, 1, argv);
}

/* Sends EXEC and reads all replies. HQ_EAGAIN when a WATCHed key changed
 * (EXEC answered nil), HQ_EREDIS for I/O failures and error replies. */
static int tx_exec(struct tx *t, const char *id, struct hq_err *err)
{
    const char *argv[] = {"EXEC"};
    tx_append(t, 1, argv);
    int rc = 0;
    for (int i = 0; i < t->ncmds; i++) {
        redisReply *r = NULL;
        if (redisGetReply(t->c, (void **)&r) != REDIS_OK || !r)
            return hq_err_set(err, HQ_EREDIS, "redis: %s",
                              t->c->errstr[0] ? t->c->errstr : "connection lost");
        int last = i == t->ncmds - 1;
        if (rc == 0 && r->type == REDIS_REPLY_ERROR) {
            rc = hq_err_set(err, HQ_EREDIS, "redis: %.*s", (int)r->len, r->str);
        } else if (rc == 0 && last && r->type == REDIS_REPLY_NIL) {
            rc = hq_err_set(err, HQ_EAGAIN,
                            "endpoint %s: changed by someone else meanwhile; run the command again",
                            id);
        } else if (rc == 0 && last && r->type == REDIS_REPLY_ARRAY) {
            /* MULTI does not roll back: report a failed step so it gets looked at. */
            for (size_t j = 0; j < r->elements && rc == 0; j++) {
                const redisReply *s = r->element[j];
                if (s->type == REDIS_REPLY_ERROR)
                    rc = hq_err_set(err, HQ_EREDIS, "redis: %.*s", (int)s->len, s->str);
            }
        }
        freeReplyObject(r);
    }
    return rc;
}

static char *join(char **v, int n, char sep)
{
    struct hq_buf b;
    hq_buf_init(&b, (size_t)-2);
    for (int i = 0; i < n; i++) {
        if ((i && hq_buf_append(&b, &sep, 1) != 0) || hq_buf_append(&b, v[i], strlen(v[i])) != 0)
            hq_panic("join: an unbounded buffer refused an append");
    }
    return hq_buf_steal(&b);
}

static void tx_hash(struct tx *t, const char *base, const struct hq_endpoint *e)
{
    char key[HQ_KEY_MAX], k1[24], k2[24], en[4], ma[16], cr[24], up[24];
    char bb[24], bf[32], bm[24], rw[24], rl[HQ_RL_STR_MAX], cb[5][24], bt[HQ_BATCH_STR_MAX];
    hq_key_endpoint(base, e->id, key, sizeof(key));
    const char *del[] = {"DEL", key};
    tx_append(t, 2, del);
    char *events = e->nevents ? join(e->events, e->nevents, ',') : hq_strdup("*");
    char *headers = join(e->headers, e->nheaders, '\n');
    snprintf(k1, sizeof(k1), "%lld", e->key1_ms);
    snprintf(k2, sizeof(k2), "%lld", e->key2_ms);
    snprintf(en, sizeof(en), "%d", e->enabled ? 1 : 0);
    snprintf(ma, sizeof(ma), "%d", e->max_attempts);
    snprintf(cr, sizeof(cr), "%lld", e->created_ms);
    snprintf(up, sizeof(up), "%lld", e->updated_ms);
    snprintf(bb, sizeof(bb), "%lld", e->backoff_base_ms);
    snprintf(bf, sizeof(bf), "%.15g", e->backoff_factor);
    snprintf(bm, sizeof(bm), "%lld", e->backoff_max_ms);
    snprintf(rw, sizeof(rw), "%lld", e->retry_window_ms);
    hq_rate_format(&e->rate, rl, sizeof(rl));
    const struct hq_endpoint_breaker *o = &e->breaker; /* "" or 0: the worker's */
    snprintf(cb[0], sizeof(cb[0]), "%lld", o->failures);
    cb[1][0] = '\0';
    if (o->ratio_set)
        snprintf(cb[1], sizeof(cb[1]), "%lld", o->ratio);
    snprintf(cb[2], sizeof(cb[2]), "%lld", o->window_ms);
    snprintf(cb[3], sizeof(cb[3]), "%lld", o->min_attempts);
    snprintf(cb[4], sizeof(cb[4]), "%lld", o->probe_ms);
    hq_batch_format(&e->batch, bt, sizeof(bt));
    const char *argv[] = {
        "HSET",
        key,
        "name",
        e->name ? e->name : "",
        "url",
        e->url,
        "description",
        e->description ? e->description : "",
        "events",
        events,
        "headers",
        headers,
        "key1",
        e->key1,
        "key2",
        e->key2,
        "key1_ms",
        k1,
        "key2_ms",
        k2,
        "enabled",
        en,
        "max_attempts",
        ma,
        "created_ms",
        cr,
        "updated_ms",
        up,
        "tenant",
        e->tenant,
        "backoff_base_ms",
        bb,
        "backoff_factor",
        bf,
        "backoff_max_ms",
        bm,
        "retry_window_ms",
        rw,
        "rate_limit",
        rl,
        "breaker_failures",
        cb[0],
        "breaker_ratio",
        cb[1],
        "breaker_window_ms",
        cb[2],
        "breaker_min_attempts",
        cb[3],
        "breaker_probe_ms",
        cb[4],
        "batch",
        bt,
        "ordered",
        hq_endpoint_ordered_name(e->ordered),
    };
    tx_append(t, (int)(sizeof(argv) / sizeof(*argv)), argv);
    free(events);
    free(headers);
}

/* SADD/SREM id to/from the index set of each filter ("*" when none). */
static void tx_index(struct tx *t, const char *cmd, const char *base, char **filters, int n,
                     const char *id)
{
    static char star[] = "*";
    char *all[] = {star};
    if (n == 0) {
        filters = all;
        n = 1;
    }
    for (int i = 0; i < n; i++) {
        char key[HQ_KEY_MAX];
        if (hq_endpoint_filter_key(base, filters[i], key, sizeof(key)) < 0)
            continue; /* a garbage filter read from Redis has no index set */
        const char *argv[] = {cmd, key, id};
        tx_append(t, 3, argv);
    }
}

/* SADD/SREM id to/from its tenant's set (none when tenant is ""). */
static void tx_tenant(struct tx *t, const char *cmd, const char *base, const char *tenant,
                      const char *id)
{
    char key[HQ_KEY_MAX];
    if (!tenant[0] || hq_key_idx_tenant(base, tenant, key, sizeof(key)) < 0)
        return;
    const char *argv[] = {cmd, key, id};
    tx_append(t, 3, argv);
}

static void tx_bump(struct tx *t, const char *base)
{
    char key[HQ_KEY_MAX];
    hq_key_endpoints_version(base, key, sizeof(key));
    const char *argv[] = {"INCR", key};
    tx_append(t, 2, argv);
}

static void tx_zadd(struct tx *t, const char *base, const struct hq_endpoint *e)
{
    char key[HQ_KEY_MAX], score[24];
    hq_key_endpoints(base, key, sizeof(key));
    snprintf(score, sizeof(score), "%lld", e->created_ms);
    const char *argv[] = {"ZADD", key, score, e->id};
    tx_append(t, 4, argv);
}

/* "ep_" + 24 chars of lowercase base32 (RFC 4648 alphabet) of 15 random bytes:
 * 120 bits, so collisions are not a concern. */
static int generate_id(char *out, struct hq_err *err)
{
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyz234567";
    unsigned char rnd[15];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return hq_err_set(err, HQ_EIO, "id: the CSPRNG failed");
    memcpy(out, "ep_", 3);
    unsigned acc = 0;
    int bits = 0, k = 3;
    for (size_t i = 0; i < sizeof(rnd); i++) {
        acc = (acc << 8) | rnd[i];
        bits += 8;
        while (bits >= 5) {
            out[k++] = alpha[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    out[k] = '\0';
    return 0;
}

/* ---- Registry ---------------------------------------------------------------------- */

int hq_endpoint_create(redisContext *c, const char *base, struct hq_endpoint *e, struct hq_err *err)
{
    int rc = generate_id(e->id, err);
    if (rc == 0)
        rc = hq_sign_key_generate(e->key1, sizeof(e->key1), err);
    if (rc == 0)
        rc = hq_sign_key_generate(e->key2, sizeof(e->key2), err);
    if (rc != 0)
        return rc;
    long long now = hq_now_ms();
    e->created_ms = e->updated_ms = e->key1_ms = e->key2_ms = now;
    struct tx t;
    tx_begin(&t, c);
    tx_hash(&t, base, e);
    tx_zadd(&t, base, e);
    tx_index(&t, "SADD", base, e->events, e->nevents, e->id);
    tx_tenant(&t, "SADD", base, e->tenant, e->id);
    tx_bump(&t, base);
    return tx_exec(&t, e->id, err);
}

/* Runs "<verb> <p>:ep:<id>"; the reply, or NULL with [out] *rc HQ_EINVAL (an
 * id too long for a key) or HQ_EREDIS. */
static redisReply *hash_cmd(redisContext *c, const char *base, const char *id, const char *verb,
                            int *rc, struct hq_err *err)
{
    char key[HQ_KEY_MAX];
    if (hq_key_endpoint(base, id, key, sizeof(key)) < 0) {
        *rc = hq_err_set(err, HQ_EINVAL, "id: too long");
        return NULL;
    }
    const char *argv[] = {verb, key};
    redisReply *r = CMD(c, err, argv);
    *rc = r ? 0 : HQ_EREDIS;
    return r;
}

int hq_endpoint_get(redisContext *c, const char *base, const char *id, struct hq_endpoint *e,
                    struct hq_err *err)
{
    memset(e, 0, sizeof(*e));
    int rc;
    redisReply *r = hash_cmd(c, base, id, "HGETALL", &rc, err);
    if (!r)
        return rc;
    rc = hq_endpoint_from_reply(r, id, e, err);
    freeReplyObject(r);
    return rc;
}

int hq_endpoint_get_watched(redisContext *c, const char *base, const char *id,
                            struct hq_endpoint *e, struct hq_err *err)
{
    memset(e, 0, sizeof(*e));
    int rc;
    redisReply *r = hash_cmd(c, base, id, "WATCH", &rc, err);
    if (!r)
        return rc;
    freeReplyObject(r);
    return hq_endpoint_get(c, base, id, e, err);
}

int hq_endpoint_save(redisContext *c, const char *base, const struct hq_endpoint *old,
                     const struct hq_endpoint *e, struct hq_err *err)
{
    if (strcmp(old->id, e->id) != 0)
        return hq_err_set(err, HQ_EINVAL, "endpoint %s: save would change the id to %s", old->id,
                          e->id);
    struct tx t;
    tx_begin(&t, c);
    tx_hash(&t, base, e);
    tx_zadd(&t, base, e);
    tx_index(&t, "SREM", base, old->events, old->nevents, e->id);
    tx_index(&t, "SADD", base, e->events, e->nevents, e->id);
    tx_tenant(&t, "SREM", base, old->tenant, e->id);
    tx_tenant(&t, "SADD", base, e->tenant, e->id);
    tx_bump(&t, base);
    return tx_exec(&t, e->id, err);
}

int hq_endpoint_delete(redisContext *c, const char *base, const char *id, struct hq_err *err)
{
    char key[HQ_KEY_MAX], zkey[HQ_KEY_MAX];
    if (hq_key_endpoint(base, id, key, sizeof(key)) < 0)
        return hq_err_set(err, HQ_EINVAL, "id: too long");
    hq_key_endpoints(base, zkey, sizeof(zkey));
    /* WATCH, read the filters, then remove everything in one transaction: a
     * concurrent update cannot leave an index entry behind. */
    const char *watch[] = {"WATCH", key};
    redisReply *r = CMD(c, err, watch);
    if (!r)
        return HQ_EREDIS;
    freeReplyObject(r);
    const char *hget[] = {"HMGET", key, "events", "tenant"};
    redisReply *all = CMD(c, err, hget);
    if (!all)
        return HQ_EREDIS;
    r = all->type == REDIS_REPLY_ARRAY && all->elements == 2 ? all->element[0] : all;
    if (r->type != REDIS_REPLY_STRING) {
        int nil = r->type == REDIS_REPLY_NIL;
        freeReplyObject(all);
        const char *unwatch[] = {"UNWATCH"};
        redisReply *u = CMD(c, err, unwatch);
        if (u)
            freeReplyObject(u);
        char b[96];
        if (nil)
            return hq_err_set(err, HQ_ENOTFOUND, "no endpoint '%s'",
                              hq__endpoint_echo(id, strlen(id), b, sizeof(b)));
        return hq_err_set(err, HQ_EINVAL, "endpoint %s: events field is not a string", id);
    }
    char **filters = NULL;
    int nfilters = 0;
    /* A hand-edited hash may list any number of filters: remove them all. */
    (void)hq__endpoint_split(r->str, r->len, ',', (int)r->len + 1, 0, &filters, &nfilters);
    char tenant[HQ_KEY_MAX] = "";
    const redisReply *tr = all->element[1];
    if (tr->type == REDIS_REPLY_STRING)
        snprintf(tenant, sizeof(tenant), "%.*s", (int)tr->len, tr->str);
    freeReplyObject(all);
    struct tx t;
    tx_begin(&t, c);
    const char *del[] = {"DEL", key};
    tx_append(&t, 2, del);
    const char *zrem[] = {"ZREM", zkey, id};
    tx_append(&t, 3, zrem);
    tx_index(&t, "SREM", base, filters, nfilters, id);
    tx_tenant(&t, "SREM", base, tenant, id);
    tx_bump(&t, base);
    for (int i = 0; i < nfilters; i++)
        free(filters[i]);
    free(filters);
    return tx_exec(&t, id, err);
}

/* ---- Scan ------------------------------------------------------------------------------ */

int hq_endpoint_scan_from(redisContext *c, const char *base, const char *after,
                          struct hq_endpoint_cursor *cur, struct hq_err *err)
{
    memset(cur, 0, sizeof(*cur));
    if (!after)
        return 0;
    char zkey[HQ_KEY_MAX];
    hq_key_endpoints(base, zkey, sizeof(zkey));
    const char *zscore[] = {"ZSCORE", zkey, after};
    redisReply *r = CMD(c, err, zscore);
    if (!r)
        return HQ_EREDIS;
    if (r->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        return hq_err_set(err, HQ_ENOTFOUND, "no endpoint '%s'", after);
    }
    snprintf(cur->score, sizeof(cur->score), "%.*s", (int)r->len, r->str);
    freeReplyObject(r);
    snprintf(cur->last, sizeof(cur->last), "%s", after);
    return 0;
}

/* The rank where the page after cur starts. Ranks are re-read per page so
 * deletions meanwhile skip nothing; when the last id itself was deleted, count
 * the scores below it and [out] *skip_ties: its same-millisecond predecessors
 * must be skipped by id (the zset's tie order). */
static int page_start(redisContext *c, const char *zkey, const struct hq_endpoint_cursor *cur,
                      long long *start, int *skip_ties, struct hq_err *err)
{
    *start = 0;
    *skip_ties = 0;
    if (!cur->last[0])
        return 0;
    const char *zrank[] = {"ZRANK", zkey, cur->last};
    redisReply *r = CMD(c, err, zrank);
    if (!r)
        return HQ_EREDIS;
    if (r->type == REDIS_REPLY_INTEGER) {
        *start = r->integer + 1;
    } else {
        char excl[40];
        snprintf(excl, sizeof(excl), "(%s", cur->score);
        const char *zcount[] = {"ZCOUNT", zkey, "-inf", excl};
        freeReplyObject(r);
        r = CMD(c, err, zcount);
        if (!r)
            return HQ_EREDIS;
        *start = r->integer;
        *skip_ties = 1;
    }
    freeReplyObject(r);
    return 0;
}

/* Whether endpoints remain after cur->last (errors read as "no": the hint is
 * a convenience, the listing itself is complete). */
static int more_after(redisContext *c, const char *zkey, const struct hq_endpoint_cursor *cur)
{
    struct hq_err ignored = {0};
    const char *zrank[] = {"ZRANK", zkey, cur->last};
    const char *zcard[] = {"ZCARD", zkey};
    redisReply *rk = CMD(c, &ignored, zrank);
    redisReply *cd = rk ? CMD(c, &ignored, zcard) : NULL;
    int more = rk && cd && rk->type == REDIS_REPLY_INTEGER && rk->integer + 1 < cd->integer;
    if (rk)
        freeReplyObject(rk);
    if (cd)
        freeReplyObject(cd);
    return more;
}

/* Sends one HMGET of the listing fields for id (appended, not read). */
static void append_listing_hmget(redisContext *c, const char *base, const char *id)
{
    char key[HQ_KEY_MAX];
    hq_key_endpoint(base, id, key, sizeof(key));
    const char *argv[2 + HQ_ENDPOINT_LISTING_FIELDS] = {"HMGET", key};
    for (int f = 0; f < HQ_ENDPOINT_LISTING_FIELDS; f++)
        argv[2 + f] = hq_endpoint_listing_fields[f];
    /* Appending fails only on OOM, fatal by the daemon policy. */
    if (redisAppendCommandArgv(c, 2 + HQ_ENDPOINT_LISTING_FIELDS, argv, NULL) != REDIS_OK)
        hq_panic("out of memory appending a Redis command");
}

int hq_endpoint_scan_tenant(redisContext *c, const char *base, const char *tenant, long long limit,
                            hq_endpoint_visit_cb cb, void *arg, struct hq_err *err)
{
    char skey[HQ_KEY_MAX], count[16];
    if (hq_key_idx_tenant(base, tenant, skey, sizeof(skey)) < 0)
        return hq_err_set(err, HQ_EINVAL, "tenant: too long");
    snprintf(count, sizeof(count), "%d", HQ_LIST_PAGE);
    char cursor[32] = "0";
    long long yielded = 0;
    int stopped = 0;
    do {
        const char *sscan[] = {"SSCAN", skey, cursor, "COUNT", count};
        redisReply *page = CMD(c, err, sscan);
        if (!page)
            return HQ_EREDIS;
        if (page->type != REDIS_REPLY_ARRAY || page->elements != 2 ||
            page->element[0]->type != REDIS_REPLY_STRING ||
            page->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(page);
            return hq_err_set(err, HQ_EREDIS, "redis: unexpected reply to SSCAN");
        }
        snprintf(cursor, sizeof(cursor), "%s", page->element[0]->str);
        const redisReply *ids = page->element[1];
        /* One pipelined HMGET per id of the page: one round trip. */
        for (size_t i = 0; i < ids->elements; i++) {
            const redisReply *m = ids->element[i];
            if (m->type == REDIS_REPLY_STRING && m->len <= HQ_ENDPOINT_ID_MAX)
                append_listing_hmget(c, base, m->str);
        }
        int io_failed = 0;
        for (size_t i = 0; i < ids->elements; i++) {
            const redisReply *m = ids->element[i];
            if (m->type != REDIS_REPLY_STRING || m->len > HQ_ENDPOINT_ID_MAX)
                continue;
            redisReply *hr = NULL;
            if (redisGetReply(c, (void **)&hr) != REDIS_OK || !hr) {
                io_failed = 1;
                break;
            }
            struct hq_endpoint e;
            /* An index entry whose hash is gone or moved to another tenant
             * meanwhile is skipped. */
            if (hq_endpoint_from_listing(hr, m->str, &e) == 0 && !stopped &&
                strcmp(e.tenant, tenant) == 0) {
                yielded++;
                stopped = cb(&e, arg) != 0 || (limit && yielded >= limit);
            }
            hq_endpoint_free(&e);
            freeReplyObject(hr);
        }
        freeReplyObject(page);
        if (io_failed)
            return hq_err_set(err, HQ_EREDIS, "redis: %s", c->errstr);
    } while (!stopped && strcmp(cursor, "0") != 0);
    return 0;
}

int hq_endpoint_scan(redisContext *c, const char *base, struct hq_endpoint_cursor *cur,
                     long long limit, hq_endpoint_visit_cb cb, void *arg, struct hq_err *err)
{
    char zkey[HQ_KEY_MAX];
    hq_key_endpoints(base, zkey, sizeof(zkey));
    long long yielded = 0;
    int stopped = 0;
    cur->more = 0;
    for (;;) {
        long long start;
        int skip_ties;
        int rc = page_start(c, zkey, cur, &start, &skip_ties, err);
        if (rc != 0)
            return rc;
        /* With a limit, a page never reads past it, so the cursor ends on the
         * last endpoint yielded. */
        long long count = HQ_LIST_PAGE;
        if (limit && limit - yielded < count)
            count = limit - yielded;
        char a[24], b[24];
        snprintf(a, sizeof(a), "%lld", start);
        snprintf(b, sizeof(b), "%lld", start + count - 1);
        const char *zrange[] = {"ZRANGE", zkey, a, b, "WITHSCORES"};
        redisReply *page = CMD(c, err, zrange);
        if (!page)
            return HQ_EREDIS;
        size_t items = page->type == REDIS_REPLY_ARRAY ? page->elements / 2 : 0;
        /* One pipelined HMGET per endpoint of the page: one round trip. */
        int sent = 0;
        struct hq_endpoint_cursor *sentv = hq_calloc(items ? items : 1, sizeof(*sentv));
        for (size_t i = 0; i < items; i++) {
            const redisReply *m = page->element[2 * i], *s = page->element[2 * i + 1];
            if (m->type != REDIS_REPLY_STRING || m->len > HQ_ENDPOINT_ID_MAX ||
                s->type != REDIS_REPLY_STRING)
                continue;
            char id[HQ_ENDPOINT_ID_MAX + 1];
            memcpy(id, m->str, m->len);
            id[m->len] = '\0';
            int skip = skip_ties && strncmp(s->str, cur->score, s->len) == 0 &&
                       strlen(cur->score) == s->len && strcmp(id, cur->last) <= 0;
            if (i == items - 1) {
                snprintf(cur->last, sizeof(cur->last), "%s", id);
                snprintf(cur->score, sizeof(cur->score), "%.*s", (int)s->len, s->str);
            }
            if (skip)
                continue;
            append_listing_hmget(c, base, id);
            memcpy(sentv[sent].last, id, sizeof(id));
            snprintf(sentv[sent].score, sizeof(sentv[sent].score), "%.*s", (int)s->len, s->str);
            sent++;
        }
        freeReplyObject(page);
        /* Every reply is read even after cb stops, so the connection stays in
         * step for the caller's next command. */
        int io_failed = 0;
        for (int i = 0; i < sent; i++) {
            redisReply *hr = NULL;
            if (redisGetReply(c, (void **)&hr) != REDIS_OK || !hr) {
                io_failed = 1;
                break;
            }
            struct hq_endpoint e;
            if (hq_endpoint_from_listing(hr, sentv[i].last, &e) == 0 && !stopped) {
                yielded++;
                stopped = cb(&e, arg) != 0;
                if (stopped) /* the walk ends here, not at the page's end */
                    memcpy(cur, &sentv[i], sizeof(*cur));
            }
            hq_endpoint_free(&e);
            freeReplyObject(hr);
        }
        free(sentv);
        if (io_failed)
            return hq_err_set(err, HQ_EREDIS, "redis: %s", c->errstr);
        if ((long long)items < count || (limit && yielded >= limit) || stopped)
            break;
    }
    if (((limit && yielded >= limit) || stopped) && cur->last[0])
        cur->more = more_after(c, zkey, cur);
    return 0;
}
