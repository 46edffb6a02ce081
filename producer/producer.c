/* libhookq: the producer library behind include/hookq/hookq.h. Owns the
 * producer handle (one blocking hiredis connection), validation of events
 * before any write, and the pipelined XADD of a batch. Does not own the wire
 * format (common/event.c validates, producer/encode.c encodes) nor key names
 * (common/keys.c).
 *
 * Library rules: nothing here aborts or calls
 * hq_malloc; every allocation is checked and fails with HOOKQ_ENOMEM. The
 * common/ code it calls (err, event, keys, redis_url, redis_sync) allocates
 * only through hiredis, which returns NULL on OOM. */
#include "hookq/hookq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "common/err.h"
#include "common/event.h"
#include "common/keys.h"
#include "common/limits.h"
#include "common/redis_sync.h"
#include "producer/encode.h"

_Static_assert(HOOKQ_EINVAL == HQ_EINVAL && HOOKQ_ENOMEM == HQ_ENOMEM && HOOKQ_EREDIS == HQ_EREDIS,
               "public codes are the internal ones");

/* Lifecycle: created connected by hookq_producer_connect; after an I/O error
 * the connection is dropped (c = NULL) and the next produce call reconnects;
 * freed by hookq_producer_free. */
struct hookq_producer {
    redisContext *c;         /* owned; NULL while disconnected */
    char *url;               /* owned copy of the URL, for reconnecting; may hold a password */
    char events[HQ_KEY_MAX]; /* <prefix>:events */
    size_t max_payload;      /* bytes; HQ_PAYLOAD_MAX_DEFAULT unless set */
};

/* ---- Helpers ------------------------------------------------------------------ */

static void copy_err(char *out, size_t n, const struct hq_err *e)
{
    if (out && n > 0)
        snprintf(out, n, "%s", e->msg);
}

/* Wipes a string that may hold a password before it is freed. */
static void wipe_free(char *s)
{
    if (!s)
        return;
    volatile char *v = s;
    while (*v)
        *v++ = '\0';
    free(s);
}

static void disconnect(struct hookq_producer *p)
{
    if (p->c)
        redisFree(p->c);
    p->c = NULL;
}

static int ensure_connected(struct hookq_producer *p, struct hq_err *err)
{
    if (p->c && !p->c->err)
        return 0;
    disconnect(p);
    p->c = hq_redis_connect(p->url, HQ_REDIS_CONNECT_TIMEOUT_MS, err);
    return p->c ? 0 : err->code;
}

/* Same rule as --prefix (common/config.c), without the logging side effects. */
static int check_prefix(const char *prefix, struct hq_err *err)
{
    size_t n = strlen(prefix);
    if (n == 0 || n > 64)
        return hq_err_set(err, HQ_EINVAL, "prefix: '%.64s' must be 1-64 characters", prefix);
    for (size_t i = 0; i < n; i++) {
        char ch = prefix[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '_' || ch == '-' || ch == '.' || ch == ':';
        if (!ok)
            return hq_err_set(err, HQ_EINVAL,
                              "prefix: '%.64s' may hold only letters, digits and _ - . :", prefix);
    }
    return 0;
}

/* Converts and validates a public event. [out] ev borrows from in. */
static int to_event(const struct hookq_event *in, size_t max_payload, struct hq_event *ev,
                    struct hq_err *err)
{
    memset(ev, 0, sizeof(*ev));
    ev->type = in->type;
    ev->type_len = in->type ? strlen(in->type) : 0;
    int rc = hq_event_check_type(ev->type, ev->type_len, err);
    if (rc != 0)
        return rc;
    if (!in->payload && in->payload_len > 0)
        return hq_err_set(err, HQ_EINVAL, "payload: NULL with payload_len %zu", in->payload_len);
    ev->payload = in->payload ? in->payload : "";
    ev->payload_len = in->payload_len;
    rc = hq_event_check_payload(ev->payload_len, max_payload, err);
    if (rc != 0)
        return rc;
    if (in->id) {
        ev->id = in->id;
        ev->id_len = strlen(in->id);
        rc = hq_event_check_id(ev->id, ev->id_len, err);
        if (rc != 0)
            return rc;
    }
    if (in->endpoint) {
        ev->endpoint = in->endpoint;
        ev->endpoint_len = strlen(in->endpoint);
        rc = hq_event_check_endpoint(ev->endpoint, ev->endpoint_len, err);
        if (rc != 0)
            return rc;
    }
    if (in->ts_ms < 0)
        return hq_err_set(err, HQ_EINVAL, "ts: %lld is not a positive unix ms time",
                          (long long)in->ts_ms);
    ev->ts_ms = in->ts_ms;
    return 0;
}

/* ---- Connection -------------------------------------------------------------------- */

int hookq_producer_connect(const char *redis_url, const char *prefix, struct hookq_producer **out,
                           char *errbuf, size_t err_len)
{
    struct hq_err err = {0};
    *out = NULL;
    if (!prefix)
        prefix = "hookq";
    if (!redis_url) {
        hq_err_set(&err, HQ_EINVAL, "redis url: missing");
        copy_err(errbuf, err_len, &err);
        return HQ_EINVAL;
    }
    if (check_prefix(prefix, &err) != 0) {
        copy_err(errbuf, err_len, &err);
        return err.code;
    }
    struct hookq_producer *p = calloc(1, sizeof(*p));
    char *url = strdup(redis_url);
    if (!p || !url) {
        free(p);
        wipe_free(url);
        hq_err_set(&err, HQ_ENOMEM, "out of memory");
        copy_err(errbuf, err_len, &err);
        return HQ_ENOMEM;
    }
    p->url = url;
    p->max_payload = HQ_PAYLOAD_MAX_DEFAULT;
    if (hq_key_events(prefix, p->events, sizeof(p->events)) < 0) {
        hookq_producer_free(p);
        hq_err_set(&err, HQ_EINVAL, "prefix: too long");
        copy_err(errbuf, err_len, &err);
        return HQ_EINVAL;
    }
    if (ensure_connected(p, &err) != 0) {
        hookq_producer_free(p);
        copy_err(errbuf, err_len, &err);
        return err.code;
    }
    *out = p;
    return 0;
}

void hookq_producer_set_max_payload(struct hookq_producer *p, size_t max)
{
    p->max_payload = max > HQ_PAYLOAD_MAX_LIMIT ? HQ_PAYLOAD_MAX_LIMIT : max;
}

void hookq_producer_free(struct hookq_producer *p)
{
    if (!p)
        return;
    disconnect(p);
    wipe_free(p->url);
    free(p);
}

/* ---- Producing ---------------------------------------------------------------------- */

/* Validates and encodes all n events into one arena, then writes them as n
 * pipelined XADDs in one round trip. ids (may be NULL): n slots of id_len
 * bytes each for the entry ids. index_errors: prefix messages with the event's
 * index (batches). */
static int produce(struct hookq_producer *p, const struct hookq_event *evs, size_t n, char *ids,
                   size_t id_len, int index_errors, struct hq_err *err)
{
    if (n == 0)
        return 0;
    if (n > (SIZE_MAX / sizeof(size_t)) - 1)
        return hq_err_set(err, HQ_ENOMEM, "batch: %zu events is too many", n);
    size_t *offs = malloc((n + 1) * sizeof(*offs));
    if (!offs)
        return hq_err_set(err, HQ_ENOMEM, "out of memory");

    /* Validate everything before writing anything. */
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        struct hq_event ev;
        if (to_event(&evs[i], p->max_payload, &ev, err) != 0) {
            free(offs);
            if (index_errors) {
                char where[32];
                snprintf(where, sizeof(where), "event %zu", i);
                hq_err_prefix(err, where);
            }
            return HQ_EINVAL;
        }
        size_t sz = hq_encode_event_size(&ev);
        offs[i] = total;
        if (sz > SIZE_MAX - total) {
            free(offs);
            return hq_err_set(err, HQ_ENOMEM, "batch: encoded size overflows");
        }
        total += sz;
    }
    offs[n] = total;
    uint8_t *arena = malloc(total ? total : 1);
    if (!arena) {
        free(offs);
        return hq_err_set(err, HQ_ENOMEM, "out of memory (%zu bytes for the batch)", total);
    }
    for (size_t i = 0; i < n; i++) {
        struct hq_event ev;
        size_t len;
        (void)to_event(&evs[i], p->max_payload, &ev, err); /* validated above */
        if (hq_encode_event(&ev, arena + offs[i], offs[i + 1] - offs[i], &len, err) != 0) {
            free(arena);
            free(offs);
            return HQ_ENOMEM; /* sizes were computed by the same packer: cannot happen */
        }
    }

    int rc = ensure_connected(p, err);
    if (rc != 0) {
        free(arena);
        free(offs);
        return rc;
    }

    /* Queue all commands locally, then send and read them in one round trip. */
    for (size_t i = 0; i < n; i++) {
        const char *argv[] = {"XADD", p->events, "*", "event", (const char *)arena + offs[i]};
        size_t lens[] = {4, strlen(p->events), 1, 5, offs[i + 1] - offs[i]};
        if (redisAppendCommandArgv(p->c, 5, argv, lens) != REDIS_OK) {
            /* The output buffer may hold part of the batch: drop it unsent. */
            disconnect(p);
            free(arena);
            free(offs);
            return hq_err_set(err, HQ_ENOMEM, "redis: out of memory queueing event %zu", i);
        }
    }
    size_t written = 0, failed = 0, first_failed = 0;
    char first_msg[160] = "";
    for (size_t i = 0; i < n; i++) {
        void *vr = NULL;
        if (redisGetReply(p->c, &vr) != REDIS_OK || !vr) {
            hq_err_set(
                err, HQ_EREDIS,
                "redis: %s (%zu of %zu events confirmed written; the rest may or may not be)",
                p->c->errstr[0] ? p->c->errstr : "connection lost", written, n);
            disconnect(p);
            free(arena);
            free(offs);
            return HQ_EREDIS;
        }
        redisReply *r = vr;
        if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
            written++;
            if (ids && id_len > 0)
                snprintf(ids + i * id_len, id_len, "%.*s", (int)r->len, r->str);
        } else {
            if (failed++ == 0) {
                first_failed = i;
                if (r->type == REDIS_REPLY_ERROR)
                    snprintf(first_msg, sizeof(first_msg), "%.*s", (int)r->len, r->str);
                else
                    snprintf(first_msg, sizeof(first_msg), "unexpected reply type %d", r->type);
            }
            if (ids && id_len > 0)
                ids[i * id_len] = '\0';
        }
        freeReplyObject(r);
    }
    free(arena);
    free(offs);
    if (failed == 0)
        return 0;
    if (!index_errors)
        return hq_err_set(err, HQ_EREDIS, "redis: %s", first_msg);
    return hq_err_set(err, HQ_EREDIS, "event %zu: redis: %s (%zu of %zu events written)",
                      first_failed, first_msg, written, n);
}

int hookq_produce(struct hookq_producer *p, const struct hookq_event *ev, char *entry_id,
                  size_t entry_id_len, char *errbuf, size_t err_len)
{
    struct hq_err err = {0};
    if (entry_id && entry_id_len > 0)
        entry_id[0] = '\0';
    int rc = produce(p, ev, 1, entry_id, entry_id_len, 0, &err);
    if (rc != 0)
        copy_err(errbuf, err_len, &err);
    return rc;
}

int hookq_produce_batch(struct hookq_producer *p, const struct hookq_event *evs, size_t n,
                        char (*ids)[64], char *errbuf, size_t err_len)
{
    struct hq_err err = {0};
    int rc = produce(p, evs, n, ids ? ids[0] : NULL, ids ? sizeof(ids[0]) : 0, 1, &err);
    if (rc != 0)
        copy_err(errbuf, err_len, &err);
    return rc;
}
