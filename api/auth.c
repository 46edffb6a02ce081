/* Bearer API keys (common/apikey.h) with scopes, and a limit on failed
 * authentications per client address: a fixed table of token buckets under
 * one mutex, touched only by failures, checked before any Redis call. Per
 * replica (a shared counter would turn an attack into Redis writes). */
#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/event.h"
#include "common/log.h"

#define RL_SLOTS     4096
#define RL_BURST     20   /* failures allowed at once */
#define RL_REFILL_MS 6000 /* then one more per 6 s (10 a minute) */

struct rl_slot {
    uint64_t addr_hash; /* 0 = free */
    double tokens;
    int64_t at_ms;
};

struct hq_api_ratelimit {
    pthread_mutex_t mu;
    struct rl_slot slot[RL_SLOTS];
};

struct hq_api_ratelimit *hq_api_ratelimit_new(void)
{
    struct hq_api_ratelimit *rl = hq_calloc(1, sizeof(*rl));
    pthread_mutex_init(&rl->mu, NULL);
    return rl;
}

void hq_api_ratelimit_free(struct hq_api_ratelimit *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->mu);
    free(rl);
}

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h ? h : 1;
}

/* The slot of addr, refilled to now. Caller holds mu. */
static struct rl_slot *slot_of(struct hq_api_ratelimit *rl, const char *addr, int64_t now)
{
    uint64_t h = fnv(addr);
    struct rl_slot *s = &rl->slot[h % RL_SLOTS];
    if (s->addr_hash != h) { /* a collision evicts: the table is bounded */
        s->addr_hash = h;
        s->tokens = RL_BURST;
        s->at_ms = now;
    }
    s->tokens += (double)(now - s->at_ms) / RL_REFILL_MS;
    if (s->tokens > RL_BURST)
        s->tokens = RL_BURST;
    s->at_ms = now;
    return s;
}

/* 1 when addr has no failure left to spend. */
static int limited(struct hq_api_ratelimit *rl, const char *addr)
{
    pthread_mutex_lock(&rl->mu);
    int r = slot_of(rl, addr, hq_mono_ms())->tokens < 1;
    pthread_mutex_unlock(&rl->mu);
    return r;
}

static void spend(struct hq_api_ratelimit *rl, const char *addr)
{
    pthread_mutex_lock(&rl->mu);
    struct rl_slot *s = slot_of(rl, addr, hq_mono_ms());
    if (s->tokens >= 1)
        s->tokens -= 1;
    pthread_mutex_unlock(&rl->mu);
}

/* A key presented and refused costs a token; a missing header does not (it
 * costs no Redis call and guesses nothing). */
static int unauthorized(struct hq_api_req *q, const char *msg, int presented)
{
    if (presented)
        spend(q->api->rl, q->client);
    q->www_auth = "Bearer realm=\"hookq\"";
    hq_api_problem(q, MHD_HTTP_UNAUTHORIZED, "unauthorized", msg);
    return -1;
}

int hq_api_auth(struct hq_api_req *q)
{
    if (limited(q->api->rl, q->client)) {
        snprintf(q->retry_after, sizeof(q->retry_after), "%d", RL_REFILL_MS / 1000);
        hq_api_problem(q, MHD_HTTP_TOO_MANY_REQUESTS, "too_many_requests",
                       "authorization: too many failed attempts from this address; retry later");
        return -1;
    }
    const char *h = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Authorization");
    if (!h)
        return unauthorized(q, "authorization: missing (send 'Authorization: Bearer <api key>')",
                            0);
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return unauthorized(q, "authorization: not a Bearer token", 1);
    const char *key = h + 7;
    while (*key == ' ')
        key++;
    struct hq_err err = {0};
    redisContext *c = hq_api_registry(q, &err);
    if (!c) {
        hq_api_fail(q, HQ_EREDIS, &err);
        return -1;
    }
    int rc = hq_apikey_verify(c, q->api->L.reg, key, &q->key, &err);
    if (rc == HQ_ENOTFOUND)
        return unauthorized(q, "authorization: the API key is not valid (unknown or revoked)", 1);
    if (rc != 0) {
        hq_api_fail(q, rc, &err);
        return -1;
    }
    if (q->key.scope < q->route->scope) {
        char msg[160];
        snprintf(msg, sizeof(msg), "authorization: this route needs the %s scope; the key has %s",
                 hq_apikey_scope_name(q->route->scope), hq_apikey_scope_name(q->key.scope));
        q->www_auth = "Bearer error=\"insufficient_scope\"";
        hq_api_problem(q, MHD_HTTP_FORBIDDEN, "forbidden", msg);
        return -1;
    }
    return 0;
}

const char *hq_api_tenant(const struct hq_api_req *q)
{
    return q->key.tenant;
}

int hq_api_query_tenant(struct hq_api_req *q, const char **tenant)
{
    const char *t = hq_api_query(q, "tenant");
    const char *kt = hq_api_tenant(q);
    struct hq_err err = {0};
    if (t && hq_event_check_tenant(t, strlen(t), &err) != 0) {
        hq_api_problem(q, MHD_HTTP_BAD_REQUEST, "invalid", err.msg);
        return -1;
    }
    if (kt[0] && t && strcmp(t, kt) != 0) {
        hq_api_problem(q, MHD_HTTP_FORBIDDEN, "forbidden",
                       "tenant: this API key is scoped to another tenant");
        return -1;
    }
    *tenant = kt[0] ? kt : t;
    return 0;
}
