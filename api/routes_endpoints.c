/* /v1/endpoints: the CLI's `hookq endpoint` over HTTP. Every rule is common/'s
 * (endpoint_edit.h, endpoint.h's validation, endpoint_store.h's storage), so
 * both say the same things about the same input. A tenant-scoped key sees and
 * changes its tenant's endpoints only; others' answer 404, as if absent. */
#include <limits.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "common/alloc.h"
#include "common/attempts_recent.h"
#include "common/clock.h"
#include "common/endpoint_breaker.h"
#include "common/endpoint_edit.h"
#include "common/endpoint_store.h"
#include "common/redis_sync.h"

/* One endpoint object, keys and headers revealed at worst (cmd_endpoint.c's bound). */
#define EP_JSON_MAX                                                                                \
    (4 * (HQ_URL_MAX + HQ_NAME_MAX + HQ_DESCRIPTION_MAX) +                                         \
     2 * HQ_HEADERS_MAX * HQ_HEADER_LINE_MAX + 2 * HQ_EVENT_FILTERS_MAX * (HQ_TYPE_MAX + 4) +      \
     4096)

#define EP_FIELDS(req)                                                                             \
    {"name", HQ_J_STR, req}, {"url", HQ_J_STR, req}, {"description", HQ_J_STR, 0},                 \
        {"events", HQ_J_STRS, 0}, {"headers", HQ_J_STRS, 0}, {"enabled", HQ_J_BOOL, 0},            \
        {"max_attempts", HQ_J_INT, 0}, {"tenant", HQ_J_STR_NULL, 0},                               \
        {"backoff_base_ms", HQ_J_INT, 0}, {"backoff_factor", HQ_J_NUM, 0},                         \
        {"backoff_max_ms", HQ_J_INT, 0}, {"retry_window_ms", HQ_J_INT, 0},                         \
        {"rate_limit", HQ_J_STR_NULL, 0}, {"batch", HQ_J_ANY, 0}, {"ordered", HQ_J_BOOL, 0},       \
        {"ordered_on_failure", HQ_J_STR, 0},                                                       \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

static const struct hq_jfield create_fields[] = {EP_FIELDS(1)};
static const struct hq_jfield update_fields[] = {EP_FIELDS(0)};

static void set_str(char **dst, const json_t *v)
{
    free(*dst);
    *dst = hq_strdup(json_string_value(v));
}

static int clamp_int(json_int_t v)
{
    return v < 0 ? -1 : v > INT_MAX ? INT_MAX : (int)v;
}

/* "batch": null (off), the CLI's --batch string, or the object the endpoint
 * shows ({"max":N,"wait_ms":W,"bytes":B}; wait_ms and bytes default as in
 * the string). The rules and messages are the CLI's (hq_endpoint_set_batch). */
static int set_batch(const json_t *v, struct hq_endpoint *e, struct hq_err *err)
{
    if (json_is_null(v) || json_is_string(v))
        return hq_endpoint_set_batch(e, json_is_null(v) ? "" : json_string_value(v), NULL, err);
    static const struct hq_jfield fields[] = {
        {"max", HQ_J_INT, 1}, {"wait_ms", HQ_J_INT, 0}, {"bytes", HQ_J_INT, 0}, {NULL, 0, 0}};
    if (!json_is_object(v))
        return hq_err_set(err, HQ_EINVAL,
                          "batch: expected null, a string (max=N,wait=DURATION,bytes=SIZE) or "
                          "an object (max, wait_ms, bytes)");
    int rc = hq_api_json_check(v, fields, "batch", err);
    if (rc != 0)
        return rc;
    const json_t *w = json_object_get(v, "wait_ms"), *b = json_object_get(v, "bytes");
    json_int_t max = json_integer_value(json_object_get(v, "max"));
    struct hq_batch_cfg c = {
        .max = max < 0         ? -1
               : max > INT_MAX ? INT_MAX
                               : (int)max,
        .wait_ms = w ? (long long)json_integer_value(w) : HQ_BATCH_WAIT_DEFAULT,
        .bytes = b ? (long long)json_integer_value(b) : HQ_BATCH_BYTES_DEFAULT};
    return hq_endpoint_set_batch(e, NULL, &c, err);
}

/* "ordered" (true/false) and "ordered_on_failure" ("block"/"skip": the
 * CLI's --ordered, --no-ordered, --ordered-on-failure). */
static int apply_ordered(const json_t *doc, struct hq_endpoint *e, struct hq_err *err)
{
    const json_t *on = json_object_get(doc, "ordered");
    const json_t *mode = json_object_get(doc, "ordered_on_failure");
    int ordered = on ? json_is_true(on) : e->ordered != HQ_ORDERED_OFF;
    int m = e->ordered ? e->ordered : HQ_ORDERED_BLOCK;
    if (mode) {
        int rc = hq_endpoint_parse_ordered(json_string_value(mode), &m, err);
        if (rc != 0)
            return hq_err_set(err, rc, "ordered_on_failure: '%s' is not block or skip",
                              json_string_value(mode));
        if (!ordered)
            return hq_err_set(err, HQ_EINVAL,
                              "ordered_on_failure: the endpoint is not ordered (set ordered)");
    }
    e->ordered = ordered ? m : HQ_ORDERED_OFF;
    return 0;
}

/* Applies doc's members to e (the CLI's add/update flags, one by one), then
 * checks the whole endpoint as the CLI does. */
static int apply(struct hq_api_req *q, const json_t *doc, struct hq_endpoint *e, int update,
                 struct hq_err *err)
{
    const json_t *v;
    if ((v = json_object_get(doc, "name")))
        set_str(&e->name, v);
    if ((v = json_object_get(doc, "url")))
        set_str(&e->url, v);
    if ((v = json_object_get(doc, "description")))
        set_str(&e->description, v);
    int rc = 0;
    if ((v = json_object_get(doc, "events"))) {
        hq_endpoint_free_list(&e->events, &e->nevents);
        size_t i;
        const json_t *x;
        json_array_foreach(v, i, x) if (rc == 0) rc =
            hq_endpoint_add_event(e, json_string_value(x), err);
        if (rc == 0 && e->nevents == 0)
            rc = hq_err_set(err, HQ_EINVAL, "events: '' lists no filter (use '*' for every type)");
    }
    if (rc == 0 && (v = json_object_get(doc, "headers"))) {
        hq_endpoint_free_list(&e->headers, &e->nheaders);
        size_t n = json_array_size(v);
        if (n > HQ_HEADERS_MAX)
            return hq_err_set(err, HQ_EINVAL, "headers: %zu, at most %d", n, HQ_HEADERS_MAX);
        e->headers = n ? hq_calloc(n, sizeof(char *)) : NULL;
        for (size_t i = 0; i < n; i++)
            e->headers[e->nheaders++] = hq_strdup(json_string_value(json_array_get(v, i)));
    }
    if ((v = json_object_get(doc, "enabled")))
        e->enabled = json_is_true(v);
    if ((v = json_object_get(doc, "max_attempts")))
        e->max_attempts = clamp_int(json_integer_value(v));
    const char *key_tenant = hq_api_tenant(q);
    if (rc == 0 && (v = json_object_get(doc, "tenant"))) {
        const char *t = json_is_null(v) ? "" : json_string_value(v);
        if (*t || (!update && json_is_string(v))) /* add --tenant '' is refused too */
            rc = hq_endpoint_check_tenant(t, err);
        if (rc == 0)
            snprintf(e->tenant, sizeof(e->tenant), "%s", t);
    }
    if (rc == 0 && key_tenant[0] && strcmp(e->tenant, key_tenant) != 0) {
        if (!json_object_get(doc, "tenant") && !update)
            snprintf(e->tenant, sizeof(e->tenant), "%s", key_tenant);
        else
            rc = hq_err_set(err, HQ_EINVAL, "tenant: '%s' is not this API key's tenant", e->tenant);
    }
    if (rc == 0 && (v = json_object_get(doc, "rate_limit")))
        rc = hq_rate_parse(json_is_null(v) ? "" : json_string_value(v), &e->rate, err);
    if (rc == 0 && (v = json_object_get(doc, "batch")))
        rc = set_batch(v, e, err);
    if ((v = json_object_get(doc, "backoff_base_ms")))
        e->backoff_base_ms = json_integer_value(v);
    if ((v = json_object_get(doc, "backoff_factor")))
        e->backoff_factor = json_number_value(v);
    if ((v = json_object_get(doc, "backoff_max_ms")))
        e->backoff_max_ms = json_integer_value(v);
    if ((v = json_object_get(doc, "retry_window_ms")))
        e->retry_window_ms = json_integer_value(v);
    if (rc == 0)
        rc = apply_ordered(doc, e, err);
    if (rc != 0)
        return rc;
    struct hq_policy dep;
    hq_endpoint_deployment_policy(&dep);
    rc = hq_endpoint_check_policy(e, &dep, err);
    if (rc != 0)
        return rc;
    struct hq_netguard g = q->api->cfg.guard;
    if (update)
        hq_endpoint_update_guard(&g, json_object_get(doc, "url") != NULL);
    return hq_endpoint_validate(e, &g, err);
}

/* Answers e as JSON with status. */
static void answer_endpoint(struct hq_api_req *q, unsigned status, const struct hq_endpoint *e,
                            enum hq_endpoint_keys keys, int reveal_headers)
{
    struct hq_buf b;
    hq_buf_init(&b, EP_JSON_MAX);
    if (hq_endpoint_json(&b, e, keys, reveal_headers) == 0)
        hq_api_json(q, status, &b);
    else
        hq_api_problem(q, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "endpoint: too large");
    hq_buf_free(&b);
}

/* hq_endpoint_get, with another tenant's endpoint reported as absent. */
static int get_visible(struct hq_api_req *q, redisContext *c, const char *id, int watched,
                       struct hq_endpoint *e, struct hq_err *err)
{
    int rc = hq_endpoint_check_id(id, err);
    if (rc == 0)
        rc = watched ? hq_endpoint_get_watched(c, q->api->L.reg, id, e, err)
                     : hq_endpoint_get(c, q->api->L.reg, id, e, err);
    const char *t = hq_api_tenant(q);
    if (rc == 0 && t[0] && strcmp(e->tenant, t) != 0) {
        hq_endpoint_free(e);
        rc = hq_err_set(err, HQ_ENOTFOUND, "no endpoint '%s'", id);
    }
    return rc;
}

static void unwatch(redisContext *c)
{
    redisReply *r = hq_redis_cmdf(c, NULL, "UNWATCH");
    if (r)
        freeReplyObject(r);
}

void hq_api_ep_create(struct hq_api_req *q)
{
    json_t *doc;
    if (hq_api_json_body(q, create_fields, &doc) != 0)
        return;
    struct hq_err err = {0};
    struct hq_endpoint e = {0};
    e.description = hq_strdup("");
    e.enabled = 1;
    int rc = apply(q, doc, &e, 0, &err);
    json_decref(doc);
    redisContext *c = NULL;
    if (rc == 0 && !(c = hq_api_registry(q, &err)))
        rc = HQ_EREDIS;
    if (rc == 0)
        rc = hq_endpoint_create(c, q->api->L.reg, &e, &err);
    if (rc == 0)
        answer_endpoint(q, MHD_HTTP_CREATED, &e, HQ_EP_KEYS_REVEALED, 1);
    else
        hq_api_fail(q, rc, &err);
    hq_endpoint_free(&e);
}

void hq_api_ep_get(struct hq_api_req *q)
{
    int reveal = hq_api_query_bool(q, "reveal", 0);
    if (reveal < 0)
        return;
    if (reveal && q->key.scope < HQ_SCOPE_ADMIN) {
        q->www_auth = "Bearer error=\"insufficient_scope\"";
        hq_api_problem(q, MHD_HTTP_FORBIDDEN, "forbidden",
                       "reveal: needs the admin scope; the key has a smaller one");
        return;
    }
    struct hq_err err = {0};
    struct hq_endpoint e;
    redisContext *c = hq_api_registry(q, &err);
    int rc = c ? get_visible(q, c, q->params[0], 0, &e, &err) : HQ_EREDIS;
    if (rc != 0) {
        hq_api_fail(q, rc, &err);
        return;
    }
    answer_endpoint(q, MHD_HTTP_OK, &e, reveal ? HQ_EP_KEYS_REVEALED : HQ_EP_KEYS_MASKED, reveal);
    hq_endpoint_free(&e);
}

/* The CLI's load_for_write + change + save: old is what the indexes hold now,
 * e the copy changed by change(); a concurrent change makes the save fail
 * with HQ_EAGAIN (409). */
typedef int (*change_fn)(struct hq_api_req *q, const void *arg, struct hq_endpoint *e,
                         struct hq_err *err);

static int modify(struct hq_api_req *q, change_fn change, const void *arg, struct hq_endpoint *old,
                  struct hq_endpoint *e, struct hq_err *err)
{
    redisContext *c = hq_api_registry(q, err);
    if (!c)
        return HQ_EREDIS;
    int rc = get_visible(q, c, q->params[0], 1, old, err);
    if (rc == 0) {
        rc = hq_endpoint_get(c, q->api->L.reg, q->params[0], e, err);
        if (rc != 0) {
            hq_endpoint_free(old);
            memset(old, 0, sizeof(*old));
        }
    }
    if (rc != 0) {
        unwatch(c);
        return rc;
    }
    rc = change(q, arg, e, err);
    if (rc == 0) {
        e->updated_ms = hq_now_ms();
        rc = hq_endpoint_save(c, q->api->L.reg, old, e, err);
    } else {
        unwatch(c);
    }
    return rc;
}

static int change_fields(struct hq_api_req *q, const void *doc, struct hq_endpoint *e,
                         struct hq_err *err)
{
    return apply(q, doc, e, 1, err);
}

void hq_api_ep_update(struct hq_api_req *q)
{
    json_t *doc;
    if (hq_api_json_body(q, update_fields, &doc) != 0)
        return;
    struct hq_err err = {0};
    struct hq_endpoint old = {0}, e = {0};
    int rc = json_object_size(doc) == 0
                 ? hq_err_set(&err, HQ_EINVAL, "body: nothing to update (give at least one field)")
                 : modify(q, change_fields, doc, &old, &e, &err);
    json_decref(doc);
    if (rc == 0)
        answer_endpoint(q, MHD_HTTP_OK, &e, HQ_EP_KEYS_MASKED, 0);
    else
        hq_api_fail(q, rc, &err);
    hq_endpoint_free(&old);
    hq_endpoint_free(&e);
}

void hq_api_ep_delete(struct hq_api_req *q)
{
    struct hq_err err = {0};
    struct hq_endpoint e;
    redisContext *c = hq_api_registry(q, &err);
    int rc = c ? get_visible(q, c, q->params[0], 0, &e, &err) : HQ_EREDIS;
    if (rc == 0) {
        hq_endpoint_free(&e);
        rc = hq_endpoint_delete(c, q->api->L.reg, q->params[0], &err);
    }
    if (rc != 0) {
        hq_api_fail(q, rc, &err);
        return;
    }
    q->status = MHD_HTTP_NO_CONTENT;
    q->answered = 1;
}

struct rotation {
    int slot, used;
};

static int change_rotate(struct hq_api_req *q, const void *arg, struct hq_endpoint *e,
                         struct hq_err *err)
{
    (void)q;
    struct rotation *r = (struct rotation *)arg;
    return hq_endpoint_rotate(e, r->slot, &r->used, err);
}

void hq_api_ep_rotate(struct hq_api_req *q)
{
    static const struct hq_jfield fields[] = {{"slot", HQ_J_INT, 0}, {NULL, 0, 0}};
    json_t *doc;
    if (hq_api_json_body(q, fields, &doc) != 0)
        return;
    const json_t *s = json_object_get(doc, "slot");
    struct rotation r = {s ? clamp_int(json_integer_value(s)) : 0, 0};
    json_decref(doc);
    struct hq_err err = {0};
    if (s && r.slot != 1 && r.slot != 2) {
        hq_err_set(&err, HQ_EINVAL, "slot: %d is not 1 or 2", r.slot);
        hq_api_fail(q, HQ_EINVAL, &err);
        return;
    }
    struct hq_endpoint old = {0}, e = {0};
    int rc = modify(q, change_rotate, &r, &old, &e, &err);
    if (rc != 0) {
        hq_api_fail(q, rc, &err);
        hq_endpoint_free(&old);
        hq_endpoint_free(&e);
        return;
    }
    struct hq_buf b;
    hq_buf_init(&b, 256);
    if (hq_buf_printf(&b, "{\"id\":\"%s\",\"slot\":%d,\"key\":\"%s\"}", e.id, r.used,
                      r.used == 1 ? e.key1 : e.key2) == 0)
        hq_api_json(q, MHD_HTTP_OK, &b);
    hq_buf_free(&b);
    hq_endpoint_free(&old);
    hq_endpoint_free(&e);
}

static int change_enabled(struct hq_api_req *q, const void *arg, struct hq_endpoint *e,
                          struct hq_err *err)
{
    (void)q, (void)err;
    e->enabled = *(const int *)arg;
    return 0;
}

static void set_enabled(struct hq_api_req *q, int enabled)
{
    struct hq_err err = {0};
    struct hq_endpoint old = {0}, e = {0};
    int rc = modify(q, change_enabled, &enabled, &old, &e, &err);
    if (rc == 0 && enabled && !old.enabled) {
        struct hq_redis_conn *conn = hq_api_redis(q, &err);
        rc = conn ? hq_endpoint_breaker_reset(conn, &q->api->L, &e, &err) : HQ_EREDIS;
    }
    if (rc == 0)
        answer_endpoint(q, MHD_HTTP_OK, &e, HQ_EP_KEYS_NONE, 0);
    else
        hq_api_fail(q, rc, &err);
    hq_endpoint_free(&old);
    hq_endpoint_free(&e);
}

void hq_api_ep_enable(struct hq_api_req *q)
{
    set_enabled(q, 1);
}

void hq_api_ep_disable(struct hq_api_req *q)
{
    set_enabled(q, 0);
}

/* ---- list --------------------------------------------------------------------------------- */

struct listing {
    struct hq_buf *b;
    const char *tenant; /* "" = any */
    int enabled;        /* -1 = any */
    long long limit, n;
    int failed;
};

static int on_endpoint(const struct hq_endpoint *e, void *arg)
{
    struct listing *l = arg;
    if ((l->tenant[0] && strcmp(e->tenant, l->tenant) != 0) ||
        (l->enabled >= 0 && !!e->enabled != l->enabled))
        return 0;
    if ((l->n && hq_buf_printf(l->b, ",") != 0) ||
        hq_endpoint_json(l->b, e, HQ_EP_KEYS_NONE, 0) != 0) {
        l->failed = 1;
        return 1;
    }
    return ++l->n >= l->limit;
}

/* The iterator is "<created ms>:<id>": the walk's position, valid after the
 * endpoint it names is deleted. */
static int decode_iterator(const char *it, struct hq_endpoint_cursor *cur, struct hq_err *err)
{
    const char *colon = strchr(it, ':');
    size_t sl = colon ? (size_t)(colon - it) : 0;
    int ok = colon && sl > 0 && sl < sizeof(cur->score) && strspn(it, "0123456789") == sl &&
             hq_endpoint_check_id(colon + 1, NULL) == 0;
    if (!ok)
        return hq_err_set(err, HQ_EINVAL, "iterator: '%.60s' is not one this API returned", it);
    memcpy(cur->score, it, sl);
    cur->score[sl] = '\0';
    snprintf(cur->last, sizeof(cur->last), "%s", colon + 1);
    return 0;
}

void hq_api_ep_list(struct hq_api_req *q)
{
    long long limit = hq_api_query_limit(q);
    int enabled = hq_api_query_bool(q, "enabled", -1);
    if (limit < 0 || q->answered)
        return;
    const char *tenant;
    if (hq_api_query_tenant(q, &tenant) != 0)
        return;
    struct hq_err err = {0};
    struct hq_endpoint_cursor cur = {0};
    const char *it = hq_api_query(q, "iterator");
    if (it && decode_iterator(it, &cur, &err) != 0) {
        hq_api_problem(q, MHD_HTTP_BAD_REQUEST, "invalid", err.msg);
        return;
    }
    struct hq_buf b;
    hq_buf_init(&b, (size_t)limit * EP_JSON_MAX / 4 + 4096);
    struct listing l = {&b, tenant ? tenant : "", enabled, limit, 0, 0};
    int rc = hq_buf_printf(&b, "{\"data\":[");
    redisContext *c = hq_api_registry(q, &err);
    if (rc == 0)
        rc = c ? hq_endpoint_scan(c, q->api->L.reg, &cur, 0, on_endpoint, &l, &err) : HQ_EREDIS;
    if (rc == 0 && l.failed)
        rc = hq_err_set(&err, HQ_ETOOBIG, "limit: the page is too large; ask for fewer");
    if (rc == 0 && cur.more)
        rc = hq_buf_printf(&b, "],\"iterator\":\"%s:%s\",\"done\":false}", cur.score, cur.last);
    else if (rc == 0)
        rc = hq_buf_printf(&b, "],\"iterator\":null,\"done\":true}");
    if (rc == 0)
        hq_api_json(q, MHD_HTTP_OK, &b);
    else
        hq_api_fail(q, rc, &err);
    hq_buf_free(&b);
}

/* ---- GET /v1/endpoints/{id}/attempts ----------------------------------------------------------
 */

/* The endpoint's newest attempt records (common/attempts_recent.h), for the
 * console's endpoint page: a bounded scan, "complete": false when it ended it. */
void hq_api_ep_attempts(struct hq_api_req *q)
{
    long long limit = hq_api_query_limit_in(q, HQ_RECENT_ATTEMPTS_DEFAULT, HQ_RECENT_ATTEMPTS_MAX);
    if (limit < 0)
        return;
    struct hq_err err = {0};
    struct hq_endpoint e;
    redisContext *reg = hq_api_registry(q, &err);
    int rc = reg ? get_visible(q, reg, q->params[0], 0, &e, &err) : HQ_EREDIS;
    if (rc != 0) {
        hq_api_fail(q, rc, &err);
        return;
    }
    hq_endpoint_free(&e);
    struct hq_recent got;
    struct hq_redis_conn *c = hq_api_redis(q, &err);
    rc = c ? hq_attempts_recent(c, &q->api->L, q->params[0], (int)limit, HQ_RECENT_SCAN_BUDGET,
                                &got, &err)
           : HQ_EREDIS;
    if (rc != 0) {
        hq_api_fail(q, rc, &err);
        return;
    }
    hq_api_json_answer(q, MHD_HTTP_OK,
                       json_pack("{s:s,s:o,s:b,s:I}", "endpoint_id", q->params[0], "data",
                                 got.items, "complete", got.complete, "scanned",
                                 (json_int_t)got.scanned));
}
