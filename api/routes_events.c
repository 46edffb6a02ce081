/* /v1/events (produce through the producer library: its validation and wire
 * format), /v1/events/{id}/attempts (what `hookq event show --json` prints,
 * read by common/attempts.c) and /v1/event-types (the filters endpoints
 * subscribe with, for a UI's checkboxes). */
#include <microhttpd.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "common/attempts.h"
#include "common/endpoint_store.h"
#include "common/event.h"
#include "common/keys.h"
#include "common/redis_sync.h"
#include "hookq/hookq.h"

#define BATCH_MAX 500

/* ---- POST /v1/events ------------------------------------------------------------------------ */

static pthread_key_t prod_key;
static pthread_once_t prod_once = PTHREAD_ONCE_INIT;

static void prod_free(void *p)
{
    hookq_producer_free(p);
}

static void prod_key_init(void)
{
    (void)pthread_key_create(&prod_key, prod_free);
}

/* This thread's producer (connected on first use); NULL with err. */
static struct hookq_producer *producer(struct hq_api_req *q, struct hq_err *err)
{
    pthread_once(&prod_once, prod_key_init);
    struct hookq_producer *p = pthread_getspecific(prod_key);
    if (!p) {
        char msg[256];
        if (hookq_producer_connect(q->api->cfg.redis_url, q->api->cfg.prefix, &p, msg,
                                   sizeof(msg)) != 0) {
            hq_err_set(err, HQ_EREDIS, "%s", msg);
            return NULL;
        }
        hookq_producer_set_max_payload(p, (size_t)q->api->cfg.max_payload);
        (void)pthread_setspecific(prod_key, p);
    }
    return p;
}

static void producer_drop(void)
{
    struct hookq_producer *p = pthread_getspecific(prod_key);
    if (p) {
        (void)pthread_setspecific(prod_key, NULL);
        hookq_producer_free(p);
    }
}

static const struct hq_jfield event_fields[] = {
    {"type", HQ_J_STR, 1}, {"payload", HQ_J_STR, 1},  {"payload_encoding", HQ_J_STR, 0},
    {"id", HQ_J_STR, 0},   {"endpoint", HQ_J_STR, 0}, {"tenant", HQ_J_STR, 0},
    {NULL, 0, 0},
};

/* One event of the body into ev; payload decoded into *owned when base64. */
static int to_event(struct hq_api_req *q, const json_t *o, size_t i, struct hookq_event *ev,
                    unsigned char **owned, int *shape, struct hq_err *err)
{
    char where[32];
    snprintf(where, sizeof(where), "events[%zu]", i);
    int rc = hq_api_json_check(o, event_fields, where, err);
    if (rc != 0) {
        *shape = 1; /* a wrong member or type: 400, as for every body */
        return rc;
    }
    memset(ev, 0, sizeof(*ev));
    ev->type = json_string_value(json_object_get(o, "type"));
    ev->id = json_string_value(json_object_get(o, "id"));
    ev->endpoint = json_string_value(json_object_get(o, "endpoint"));
    ev->tenant = json_string_value(json_object_get(o, "tenant"));
    const char *kt = hq_api_tenant(q);
    if (kt[0] && ev->tenant && strcmp(ev->tenant, kt) != 0)
        return hq_err_set(err, HQ_EINVAL, "tenant: '%.64s' is not this API key's tenant",
                          ev->tenant);
    if (kt[0])
        ev->tenant = kt;
    const json_t *p = json_object_get(o, "payload");
    const char *enc = json_string_value(json_object_get(o, "payload_encoding"));
    if (!enc || strcmp(enc, "utf8") == 0) {
        ev->payload = json_string_value(p);
        ev->payload_len = json_string_length(p);
        return 0;
    }
    if (strcmp(enc, "base64") != 0)
        return hq_err_set(err, HQ_EINVAL, "payload_encoding: '%.20s' is not utf8 or base64", enc);
    size_t n = json_string_length(p);
    if (n % 4 != 0)
        return hq_err_set(err, HQ_EINVAL, "payload: not base64 (length %zu)", n);
    *owned = malloc(n / 4 * 3 + 1);
    int len = EVP_DecodeBlock(*owned, (const unsigned char *)json_string_value(p), (int)n);
    if (len < 0)
        return hq_err_set(err, HQ_EINVAL, "payload: not base64");
    const char *s = json_string_value(p);
    len -= n >= 1 && s[n - 1] == '=';
    len -= n >= 2 && s[n - 2] == '=';
    ev->payload = *owned;
    ev->payload_len = (size_t)len;
    return 0;
}

void hq_api_events_post(struct hq_api_req *q)
{
    static const struct hq_jfield any[] = {
        {"events", HQ_J_ANY, 0},           {"type", HQ_J_ANY, 0}, {"payload", HQ_J_ANY, 0},
        {"payload_encoding", HQ_J_ANY, 0}, {"id", HQ_J_ANY, 0},   {"endpoint", HQ_J_ANY, 0},
        {"tenant", HQ_J_ANY, 0},           {NULL, 0, 0},
    };
    json_t *doc;
    if (hq_api_json_body(q, any, &doc) != 0)
        return;
    struct hq_err err = {0};
    const json_t *list = json_object_get(doc, "events");
    size_t n = list ? json_array_size(list) : 1;
    int rc = 0;
    if (list && (json_object_size(doc) != 1 || !json_is_array(list) || n == 0 || n > BATCH_MAX))
        rc = hq_err_set(&err, HQ_EINVAL,
                        "events: expected an array of 1-%d events and no other member", BATCH_MAX);
    struct hookq_event *evs = calloc(n ? n : 1, sizeof(*evs));
    unsigned char **owned = calloc(n ? n : 1, sizeof(*owned));
    int shape = list && rc != 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = to_event(q, list ? json_array_get(list, i) : doc, i, &evs[i], &owned[i], &shape, &err);
    char(*ids)[64] = calloc(n ? n : 1, 64);
    struct hookq_producer *p = rc == 0 ? producer(q, &err) : NULL;
    if (rc == 0 && !p)
        rc = HQ_EREDIS;
    if (rc == 0) {
        char msg[256];
        /* One event: hookq_produce, whose messages are `hookq produce`'s word for word. */
        int prc = list ? hookq_produce_batch(p, evs, n, ids, msg, sizeof(msg))
                       : hookq_produce(p, &evs[0], ids[0], sizeof(ids[0]), msg, sizeof(msg));
        if (prc != 0) {
            rc = prc == HOOKQ_EINVAL ? HQ_EINVAL : HQ_EREDIS;
            hq_err_set(&err, rc, "%s", msg);
            if (rc == HQ_EREDIS)
                producer_drop();
        }
    }
    struct hq_buf b;
    hq_buf_init(&b, n * 512 + 64);
    int wrc = rc == 0 ? hq_buf_printf(&b, "{\"data\":[") : 0;
    for (size_t i = 0; rc == 0 && wrc == 0 && i < n; i++) {
        wrc = hq_buf_printf(&b, "%s{\"id\":", i ? "," : "");
        wrc = wrc         ? wrc
              : evs[i].id ? hq_buf_json_str(&b, evs[i].id, strlen(evs[i].id))
                          : hq_buf_printf(&b, "null");
        /* API entry ids are slash-free: "p3:<entry>". */
        char *slash = strchr(ids[i], '/');
        if (slash)
            *slash = ':';
        wrc = wrc ? wrc : hq_buf_printf(&b, ",\"entry_id\":\"%s\"}", ids[i]);
    }
    wrc = wrc ? wrc : rc == 0 ? hq_buf_printf(&b, "]}") : 0;
    if (rc == 0 && wrc == 0)
        hq_api_json(q, MHD_HTTP_ACCEPTED, &b);
    else if (shape)
        hq_api_problem(q, MHD_HTTP_BAD_REQUEST, "invalid", err.msg);
    else
        hq_api_fail(q, rc ? rc : wrc, &err);
    hq_buf_free(&b);
    for (size_t i = 0; i < n; i++)
        free(owned[i]);
    free(owned);
    free(evs);
    free(ids);
    json_decref(doc);
}

/* ---- GET /v1/events/{id}/attempts ------------------------------------------------------------ */

void hq_api_event_attempts(struct hq_api_req *q)
{
    const char *id = q->params[0];
    struct hq_err err = {0};
    if (hq_event_check_id(id, strlen(id), &err) != 0) {
        hq_api_fail(q, HQ_EINVAL, &err);
        return;
    }
    struct hq_redis_conn *c = hq_api_redis(q, &err);
    redisReply *r = c ? hq_attempts_lookup(c, &q->api->L, id, &err) : NULL;
    if (!r) {
        hq_api_fail(q, HQ_EREDIS, &err);
        return;
    }
    /* Records grouped by endpoint in order of first appearance, as `hookq event show --json`. */
    json_t *groups = json_array();
    json_t *by = json_object();
    const char *kt = hq_api_tenant(q);
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *it = r->element[i];
        if (it->type != REDIS_REPLY_STRING)
            continue;
        json_t *rec = json_loadb(it->str, it->len, 0, NULL);
        if (!rec)
            rec = json_stringn(it->str, it->len);
        const char *ep = json_string_value(json_object_get(rec, "endpoint_id"));
        if (!ep)
            ep = "";
        json_t *g = json_object_get(by, ep);
        if (!g) {
            g = json_pack("{s:s,s:[]}", "endpoint_id", ep, "attempts");
            json_object_set(by, ep, g);
            json_array_append_new(groups, g);
        }
        json_array_append_new(json_object_get(g, "attempts"), rec);
    }
    freeReplyObject(r);
    json_decref(by);
    /* A tenant key sees the attempts at its tenant's endpoints only. */
    if (kt[0]) {
        redisContext *reg = hq_api_registry(q, &err);
        for (size_t i = json_array_size(groups); reg && i-- > 0;) {
            const char *ep =
                json_string_value(json_object_get(json_array_get(groups, i), "endpoint_id"));
            struct hq_endpoint e;
            int mine = hq_endpoint_get(reg, q->api->L.reg, ep, &e, NULL) == 0;
            if (mine) {
                mine = strcmp(e.tenant, kt) == 0;
                hq_endpoint_free(&e);
            }
            if (!mine)
                json_array_remove(groups, i);
        }
    }
    if (json_array_size(groups) == 0) {
        json_decref(groups);
        hq_err_set(&err, HQ_ENOTFOUND,
                   "no attempts recorded for event '%s' (kept for HOOKQ_ATTEMPT_TTL)", id);
        hq_api_fail(q, HQ_ENOTFOUND, &err);
        return;
    }
    hq_api_json_answer(q, MHD_HTTP_OK, json_pack("{s:s,s:o}", "event_id", id, "endpoints", groups));
}

/* ---- GET /v1/event-types ----------------------------------------------------------------------
 */

static int count_filters(const struct hq_endpoint *e, void *arg)
{
    json_t *counts = arg;
    for (int i = 0; i < (e->nevents ? e->nevents : 1); i++) {
        const char *f = e->nevents ? e->events[i] : "*";
        json_t *c = json_object_get(counts, f);
        json_object_set_new(counts, f, json_integer(c ? json_integer_value(c) + 1 : 1));
    }
    return 0;
}

/* Every <r>:idx:t:* and <r>:idx:p:* set with its size: the filters in use. */
static int scan_index(redisContext *c, const char *base, json_t *counts, struct hq_err *err)
{
    char t[HQ_KEY_MAX], p[HQ_KEY_MAX];
    int tl = hq_key_idx_type(base, "", t, sizeof(t));
    int pl = hq_key_idx_prefix(base, "", p, sizeof(p));
    char cursor[32] = "0";
    do {
        redisReply *r = hq_redis_cmdf(c, err, "SCAN %s MATCH %s:idx:* COUNT 1000", cursor, base);
        if (!r)
            return HQ_EREDIS;
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        const redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            const char *k = keys->element[i]->str;
            char name[HQ_KEY_MAX + 2];
            if (strncmp(k, t, (size_t)tl) == 0)
                snprintf(name, sizeof(name), "%s", k + tl);
            else if (strncmp(k, p, (size_t)pl) == 0)
                snprintf(name, sizeof(name), "%s*", k + pl);
            else
                continue;
            redisReply *n = hq_redis_cmdf(c, err, "SCARD %s", k);
            if (!n) {
                freeReplyObject(r);
                return HQ_EREDIS;
            }
            if (n->integer > 0)
                json_object_set_new(counts, name, json_integer(n->integer));
            freeReplyObject(n);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

void hq_api_event_types(struct hq_api_req *q)
{
    const char *tenant;
    if (hq_api_query_tenant(q, &tenant) != 0)
        return;
    struct hq_err err = {0};
    redisContext *c = hq_api_registry(q, &err);
    json_t *counts = json_object();
    int rc = !c ? HQ_EREDIS
             : tenant
                 ? hq_endpoint_scan_tenant(c, q->api->L.reg, tenant, 0, count_filters, counts, &err)
                 : scan_index(c, q->api->L.reg, counts, &err);
    if (rc != 0) {
        json_decref(counts);
        hq_api_fail(q, rc, &err);
        return;
    }
    /* The types the workers have seen (<reg>:types, newest first): a type
     * nobody subscribes to yet is offered too, with subscribed 0. */
    json_t *seen = json_object();
    char tkey[HQ_KEY_MAX];
    hq_key_types_seen(q->api->L.reg, tkey, sizeof(tkey));
    redisReply *r =
        hq_redis_cmdf(c, &err, "ZREVRANGE %s 0 %d WITHSCORES", tkey, HQ_TYPES_SEEN_MAX - 1);
    if (!r) {
        json_decref(counts);
        json_decref(seen);
        hq_api_fail(q, HQ_EREDIS, &err);
        return;
    }
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
        json_object_set_new(seen, r->element[i]->str,
                            json_integer(strtoll(r->element[i + 1]->str, NULL, 10)));
    freeReplyObject(r);
    json_t *data = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(counts, k, v)
    {
        json_t *at = json_object_get(seen, k);
        json_array_append_new(data, json_pack("{s:s,s:O,s:O}", "name", k, "subscribed", v,
                                              "last_seen_ms", at ? at : json_null()));
    }
    json_object_foreach(seen, k, v)
    {
        if (!json_object_get(counts, k))
            json_array_append_new(
                data, json_pack("{s:s,s:i,s:O}", "name", k, "subscribed", 0, "last_seen_ms", v));
    }
    json_decref(counts);
    json_decref(seen);
    hq_api_json_answer(q, MHD_HTTP_OK, json_pack("{s:o}", "data", data));
}
