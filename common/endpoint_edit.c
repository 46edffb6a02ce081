/* Changing an endpoint the way a user asks: filters, the deployment's policy,
 * the guard of an update, rotation, and the endpoint object (endpoint_edit.h).
 * Moved here from cli/cmd_endpoint.c so that `hookq api` applies the same code. */
#include "common/endpoint_edit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/limits.h"
#include "common/sign.h"

/* ---- Filters ----------------------------------------------------------------------------- */

int hq_endpoint_add_event(struct hq_endpoint *e, const char *tok, struct hq_err *err)
{
    if (!e->events) {
        e->events = hq_calloc(HQ_EVENT_FILTERS_MAX, sizeof(char *));
        e->nevents = 0;
    }
    int rc = hq_endpoint_check_filter(tok, err);
    if (rc != 0)
        return rc;
    int dup = 0;
    for (int i = 0; i < e->nevents; i++)
        dup |= strcmp(e->events[i], tok) == 0;
    if (dup)
        return 0;
    if (e->nevents == HQ_EVENT_FILTERS_MAX)
        return hq_err_set(err, HQ_EINVAL, "events: more than %d filters", HQ_EVENT_FILTERS_MAX);
    e->events[e->nevents++] = hq_strdup(tok);
    return 0;
}

/* Parses "invoice.paid, user.*" into e->events (deduplicated; whitespace
 * around items ignored). */
int hq_endpoint_parse_events(const char *list, struct hq_endpoint *e, struct hq_err *err)
{
    char *copy = hq_strdup(list);
    char *save = NULL;
    int rc = 0;
    e->events = hq_calloc(HQ_EVENT_FILTERS_MAX, sizeof(char *));
    e->nevents = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        size_t n = strlen(tok);
        while (n && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
            tok[--n] = '\0';
        rc = hq_endpoint_add_event(e, tok, err);
    }
    if (rc == 0 && e->nevents == 0)
        rc = hq_err_set(err, HQ_EINVAL, "events: '%.80s' lists no filter (use '*' for every type)",
                        list);
    free(copy);
    return rc;
}

/* ---- Policy and guard ----------------------------------------------------------------------- */

void hq_endpoint_deployment_policy(struct hq_policy *p)
{
    hq_policy_init(p);
    const char *v = getenv("HOOKQ_BACKOFF_BASE");
    long long ms;
    if (v && hq_parse_duration_ms(v, &ms) == 0 && ms > 0)
        p->base_ms = ms;
    v = getenv("HOOKQ_BACKOFF_MAX");
    if (v && hq_parse_duration_ms(v, &ms) == 0 && ms > 0)
        p->max_ms = ms;
    v = getenv("HOOKQ_BACKOFF_FACTOR");
    char *end = NULL;
    double f = v ? strtod(v, &end) : 0;
    if (v && end && !*end && f >= 1)
        p->factor = f;
}

void hq_endpoint_update_guard(struct hq_netguard *g, int url_changed)
{
    if (!url_changed)
        g->allow_private = 1;
}

/* ---- Rotation ------------------------------------------------------------------------------- */

int hq_endpoint_rotate(struct hq_endpoint *e, int slot, int *used, struct hq_err *err)
{
    if (slot == 0)
        slot = e->key1_ms <= e->key2_ms ? 1 : 2;
    if (slot != 1 && slot != 2)
        return hq_err_set(err, HQ_EINVAL, "slot: %d is not 1 or 2", slot);
    char *key = slot == 1 ? e->key1 : e->key2;
    int rc = hq_sign_key_generate(key, HQ_SECRET_STR_MAX, err);
    if (rc != 0)
        return rc;
    if (slot == 1)
        e->key1_ms = hq_now_ms();
    else
        e->key2_ms = hq_now_ms();
    *used = slot;
    return 0;
}

/* ---- The endpoint object -------------------------------------------------------------------- */

void hq_endpoint_mask_key(const char *key, char *out, size_t n)
{
    size_t len = strlen(key);
    snprintf(out, n, "whsec_\xe2\x80\xa6%s", len > 10 ? key + len - 4 : "");
}

void hq_endpoint_header_shown(const char *h, int reveal, char *out, size_t n)
{
    const char *colon = strchr(h, ':');
    if (reveal || !colon)
        snprintf(out, n, "%s", h);
    else
        snprintf(out, n, "%.*s: ***", (int)(colon - h), h);
}

static int json_str(struct hq_buf *b, const char *s)
{
    return hq_buf_json_str(b, s ? s : "", s ? strlen(s) : 0);
}

/* "breaker":{...}: each override, null when the worker's applies. */
static int breaker_json(struct hq_buf *b, const struct hq_endpoint_breaker *o)
{
    const char *names[] = {"failures", "ratio", "window_ms", "min_attempts", "probe_interval_ms"};
    long long v[] = {o->failures, o->ratio, o->window_ms, o->min_attempts, o->probe_ms};
    int set[] = {o->failures != 0, o->ratio_set, o->window_ms != 0, o->min_attempts != 0,
                 o->probe_ms != 0};
    int rc = hq_buf_printf(b, ",\"breaker\":{");
    for (int i = 0; i < 5 && rc == 0; i++)
        rc = set[i] ? hq_buf_printf(b, "%s\"%s\":%lld", i ? "," : "", names[i], v[i])
                    : hq_buf_printf(b, "%s\"%s\":null", i ? "," : "", names[i]);
    return rc ? rc : hq_buf_printf(b, "}");
}

/* "batch":{"max":N,"wait_ms":W,"bytes":B}, or null when off. */
static int batch_json(struct hq_buf *b, const struct hq_batch_cfg *c)
{
    if (c->max <= 0)
        return hq_buf_printf(b, ",\"batch\":null");
    return hq_buf_printf(b, ",\"batch\":{\"max\":%d,\"wait_ms\":%lld,\"bytes\":%lld}", c->max,
                         c->wait_ms, c->bytes);
}

int hq_endpoint_json(struct hq_buf *b, const struct hq_endpoint *e, enum hq_endpoint_keys keys,
                     int reveal_headers)
{
    int rc = hq_buf_printf(b, "{\"id\":");
    rc = rc ? rc : json_str(b, e->id);
    rc = rc ? rc : hq_buf_printf(b, ",\"name\":");
    rc = rc ? rc : json_str(b, e->name);
    rc = rc ? rc : hq_buf_printf(b, ",\"url\":");
    rc = rc ? rc : json_str(b, e->url);
    rc = rc ? rc : hq_buf_printf(b, ",\"description\":");
    rc = rc ? rc : json_str(b, e->description);
    rc = rc ? rc : hq_buf_printf(b, ",\"events\":[");
    for (int i = 0; i < e->nevents && rc == 0; i++) {
        rc = i ? hq_buf_printf(b, ",") : 0;
        rc = rc ? rc : json_str(b, e->events[i]);
    }
    if (rc == 0 && e->nevents == 0)
        rc = json_str(b, "*");
    rc = rc ? rc : hq_buf_printf(b, "],\"headers\":[");
    for (int i = 0; i < e->nheaders && rc == 0; i++) {
        char h[HQ_HEADER_LINE_MAX + 8];
        hq_endpoint_header_shown(e->headers[i], reveal_headers, h, sizeof(h));
        rc = i ? hq_buf_printf(b, ",") : 0;
        rc = rc ? rc : json_str(b, h);
    }
    rc = rc ? rc
            : hq_buf_printf(
                  b, "],\"enabled\":%s,\"max_attempts\":%d,\"created_ms\":%lld,\"updated_ms\":%lld",
                  e->enabled ? "true" : "false", e->max_attempts, e->created_ms, e->updated_ms);
    rc = rc ? rc : hq_buf_printf(b, ",\"tenant\":");
    rc = rc ? rc : (e->tenant[0] ? json_str(b, e->tenant) : hq_buf_printf(b, "null"));
    rc = rc ? rc
            : hq_buf_printf(b,
                            ",\"backoff_base_ms\":%lld,\"backoff_factor\":%.15g,"
                            "\"backoff_max_ms\":%lld,\"retry_window_ms\":%lld",
                            e->backoff_base_ms, e->backoff_factor, e->backoff_max_ms,
                            e->retry_window_ms);
    char rl[HQ_RL_STR_MAX];
    hq_rate_format(&e->rate, rl, sizeof(rl));
    rc = rc ? rc : hq_buf_printf(b, ",\"rate_limit\":");
    rc = rc ? rc : (rl[0] ? json_str(b, rl) : hq_buf_printf(b, "null"));
    rc = rc ? rc : breaker_json(b, &e->breaker);
    rc = rc ? rc : batch_json(b, &e->batch);
    rc = rc ? rc : hq_buf_printf(b, ",\"ordered\":%s", e->ordered ? "true" : "false");
    if (e->ordered)
        rc = rc ? rc
                : hq_buf_printf(b, ",\"ordered_on_failure\":\"%s\"",
                                hq_endpoint_ordered_name(e->ordered));
    if (keys != HQ_EP_KEYS_NONE) {
        char k1[HQ_SECRET_STR_MAX + 8], k2[HQ_SECRET_STR_MAX + 8];
        if (keys == HQ_EP_KEYS_MASKED) {
            hq_endpoint_mask_key(e->key1, k1, sizeof(k1));
            hq_endpoint_mask_key(e->key2, k2, sizeof(k2));
        } else {
            snprintf(k1, sizeof(k1), "%s", e->key1);
            snprintf(k2, sizeof(k2), "%s", e->key2);
        }
        rc = rc ? rc : hq_buf_printf(b, ",\"key1\":");
        rc = rc ? rc : json_str(b, k1);
        rc = rc ? rc : hq_buf_printf(b, ",\"key1_ms\":%lld,\"key2\":", e->key1_ms);
        rc = rc ? rc : json_str(b, k2);
        rc = rc ? rc : hq_buf_printf(b, ",\"key2_ms\":%lld", e->key2_ms);
    }
    rc = rc ? rc : hq_buf_printf(b, "}");
    return rc;
}

int hq_endpoint_set_batch(struct hq_endpoint *e, const char *spec, const struct hq_batch_cfg *c,
                          struct hq_err *err)
{
    struct hq_batch_cfg b = {0};
    int rc = spec ? hq_batch_parse(spec, &b, err) : hq_batch_check(c, err);
    if (rc != 0)
        return rc;
    e->batch = spec ? b : c->max > 0 ? *c : b;
    return 0;
}
