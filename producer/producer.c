/* libhookq: the producer library behind include/hookq/hookq.h. Owns the
 * producer handle (one blocking connection to the deployment, hq_redis_conn,
 * and its layout), validation of events before any write, the choice of each
 * event's partition (hq_layout_partition_for: CRC16 of the id, else round
 * robin), the pipelined XADDs of a batch on each partition's node, and the
 * optional WAIT for a replica (durable mode). Does not own the wire format
 * (common/event.c validates, producer/encode.c encodes) nor key names
 * (common/keys.c) nor the layout rules (common/layout.c).
 *
 * Library rules: nothing here aborts or calls hq_malloc; every allocation is
 * checked and fails with HOOKQ_ENOMEM. The common/ code it calls (err, event,
 * keys, redis_url, redis_sync, redis_conn, redis_cluster_sync, layout,
 * layout_store, partition, slot, cluster_slots) allocates only with plain
 * malloc/calloc, checked, or through hiredis, which returns NULL on OOM
 * (tests/scripts/check_exports.sh checks the built library). */
#include "hookq/hookq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "common/err.h"
#include "common/event.h"
#include "common/keys.h"
#include "common/layout_store.h"
#include "common/limits.h"
#include "common/redis_conn.h"
#include "common/scripts.h"
#include "producer/encode.h"

_Static_assert(HOOKQ_EINVAL == HQ_EINVAL && HOOKQ_ENOMEM == HQ_ENOMEM &&
                   HOOKQ_EREDIS == HQ_EREDIS && HOOKQ_ETIMEDOUT == HQ_ETIMEDOUT,
               "public codes are the internal ones");

/* How long opening (or reconnecting) waits for a `hookq migrate` in progress. */
#define MIGRATION_WAIT_MS 30000
/* An untagged producer re-reads the config at most this often (before a
 * write), so that it follows a migration: its writes to the untagged stream
 * in between are swept into the partitions by `hookq migrate`. */
#define LAYOUT_CHECK_MS 1000

/* Lifecycle: created connected by hookq_producer_connect; after an I/O error
 * the connection is dropped (c = NULL) and the next produce call reconnects;
 * freed by hookq_producer_free. */
struct hookq_producer {
    struct hq_redis_conn *conn; /* owned; NULL while disconnected */
    struct hq_layout L;         /* loaded at each (re)connect; nparts 0 before */
    char prefix[HQ_PREFIX_MAX + 1];
    char *url;            /* owned copy of the URL, for reconnecting; may hold a password */
    size_t max_payload;   /* bytes; HQ_PAYLOAD_MAX_DEFAULT unless set */
    unsigned rr;          /* round robin over partitions for events without an id */
    int durable_ms;       /* > 0: WAIT 1 durable_ms after the writes */
    int report_dups;      /* 1: dd_seen.lua of <p>:dd before each XADD of an event with an id */
    long long checked_ms; /* monotonic ms of the last layout read */
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

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void disconnect(struct hookq_producer *p)
{
    hq_redis_conn_free(p->conn);
    p->conn = NULL;
}

/* Reads the layout; waits up to MIGRATION_WAIT_MS while a migration runs
 * (HQ_ETIMEDOUT after). */
static int load_layout(struct hookq_producer *p, struct hq_err *err)
{
    hq_layout_free(&p->L);
    int rc = hq_layout_load(p->conn, p->prefix, &p->L, err);
    if (rc == 0 && p->L.migrating)
        rc = hq_layout_wait_migration(p->conn, p->prefix, &p->L, MIGRATION_WAIT_MS, err);
    if (rc == 0)
        p->checked_ms = mono_ms();
    return rc;
}

static int ensure_connected(struct hookq_producer *p, struct hq_err *err)
{
    if (p->conn) {
        /* Untagged: a migration may have begun since the last look. */
        if (p->L.tagged || mono_ms() - p->checked_ms < LAYOUT_CHECK_MS || load_layout(p, err) == 0)
            return 0;
        /* The read failed (the connection may have died idle): one fresh
         * connection decides. */
        disconnect(p);
    }
    p->conn = hq_redis_conn_open(p->url, HQ_REDIS_CONNECT_TIMEOUT_MS, err);
    if (!p->conn)
        return err->code;
    int rc = load_layout(p, err);
    if (rc != 0)
        disconnect(p);
    return rc;
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
    int rc = hq_event_check_produced_type(ev->type, ev->type_len, err);
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
    if (in->tenant) {
        ev->tenant = in->tenant;
        ev->tenant_len = strlen(in->tenant);
        rc = hq_event_check_tenant(ev->tenant, ev->tenant_len, err);
        if (rc != 0)
            return rc;
    }
    if (in->key) {
        ev->key = in->key;
        ev->key_len = strlen(in->key);
        rc = hq_event_check_key(ev->key, ev->key_len, err);
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
    snprintf(p->prefix, sizeof(p->prefix), "%s", prefix);
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

void hookq_producer_set_durable(struct hookq_producer *p, int timeout_ms)
{
    p->durable_ms = timeout_ms > 0 ? timeout_ms : 0;
}

void hookq_producer_free(struct hookq_producer *p)
{
    if (!p)
        return;
    disconnect(p);
    hq_layout_free(&p->L);
    wipe_free(p->url);
    free(p);
}

/* ---- Producing ---------------------------------------------------------------------- */

/* What a write of a batch came to, over its rounds. */
struct tally {
    size_t written, failed, first_failed, not_durable;
    size_t dups, first_dup; /* events whose id a worker had claimed (report_dups) */
    long long acked;        /* replicas of the first round that missed the durable bound */
    char first_msg[160];
};

/* One round trip on one node: the XADDs of events idx[0..m) (pipelined), then
 * WAIT 1 in durable mode. Entry ids into ids ("p<i>/<entry id>" tagged).
 * 0, or HQ_EREDIS after an I/O failure (the connection is dropped). */
static int write_round(struct hookq_producer *p, redisContext *c, const struct hookq_event *evs,
                       const size_t *idx, size_t m, const unsigned *part, const uint8_t *arena,
                       const size_t *offs, char *ids, size_t id_len, size_t n, struct tally *t,
                       struct hq_err *err)
{
    int loaded = 0; /* the round's first look-up is an EVAL: it loads the script */
    for (size_t k = 0; k < m; k++) {
        size_t i = idx[k];
        char key[HQ_KEY_MAX];
        if (p->report_dups && evs[i].id && evs[i].id[0]) {
            /* Idempotent events: a worker claimed the id within the dedupe window
             * (dd_seen.lua: the id in the claim generations listed in <p>:dd). The
             * later ones of the round are EVALSHAs: Redis hashes no script again. */
            hq_key_dedupe_index(p->L.part[part[i]].base, key, sizeof(key));
            const char *gv[] = {loaded ? "EVALSHA" : "EVAL",
                                loaded ? hq_script_dd_seen_sha1 : hq_script_dd_seen, "1", key,
                                evs[i].id};
            loaded = 1;
            if (redisAppendCommandArgv(c, 5, gv, NULL) != REDIS_OK) {
                disconnect(p);
                return hq_err_set(err, HQ_ENOMEM, "redis: out of memory queueing event %zu", i);
            }
        }
        hq_key_events(p->L.part[part[i]].base, key, sizeof(key));
        const char *argv[] = {"XADD", key, "*", "event", (const char *)arena + offs[i]};
        size_t lens[] = {4, strlen(key), 1, 5, offs[i + 1] - offs[i]};
        if (redisAppendCommandArgv(c, 5, argv, lens) != REDIS_OK) {
            /* The output buffer may hold part of the batch: drop it unsent. */
            disconnect(p);
            return hq_err_set(err, HQ_ENOMEM, "redis: out of memory queueing event %zu", i);
        }
    }
    size_t round_written = 0;
    for (size_t k = 0; k < m; k++) {
        size_t i = idx[k];
        void *vr = NULL;
        if (p->report_dups && evs[i].id && evs[i].id[0]) {
            if (redisGetReply(c, &vr) != REDIS_OK || !vr) {
                hq_err_set(err, HQ_EREDIS,
                           "redis: %s (%zu of %zu events confirmed written; the rest may or may "
                           "not be)",
                           c->errstr[0] ? c->errstr : "connection lost", t->written, n);
                disconnect(p);
                return HQ_EREDIS;
            }
            /* An error (say NOSCRIPT after a SCRIPT FLUSH between the EVAL and
             * an EVALSHA): the id is not reported, as before any worker read it. */
            if (((redisReply *)vr)->type == REDIS_REPLY_STRING && t->dups++ == 0)
                t->first_dup = i;
            freeReplyObject(vr);
            vr = NULL;
        }
        if (redisGetReply(c, &vr) != REDIS_OK || !vr) {
            hq_err_set(
                err, HQ_EREDIS,
                "redis: %s (%zu of %zu events confirmed written; the rest may or may not be)",
                c->errstr[0] ? c->errstr : "connection lost", t->written, n);
            disconnect(p);
            return HQ_EREDIS;
        }
        redisReply *r = vr;
        if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
            t->written++;
            round_written++;
            if (ids && id_len > 0 &&
                hq_layout_entry_fmt(&p->L, part[i], r->str, ids + i * id_len, id_len) < 0)
                ids[i * id_len] = '\0';
        } else {
            if (t->failed++ == 0) {
                t->first_failed = i;
                if (r->type == REDIS_REPLY_ERROR)
                    snprintf(t->first_msg, sizeof(t->first_msg), "%.*s", (int)r->len, r->str);
                else
                    snprintf(t->first_msg, sizeof(t->first_msg), "unexpected reply type %d",
                             r->type);
            }
            if (r->type == REDIS_REPLY_ERROR && r->len >= 5 && memcmp(r->str, "MOVED", 5) == 0) {
                /* Resharded: the next write finds the new owner. */
                struct hq_err ignored = {0};
                int refreshed = hq_redis_conn_refresh(p->conn, &ignored);
                (void)refreshed; /* a failed refresh: the MOVED is what the caller sees */
            }
            if (ids && id_len > 0)
                ids[i * id_len] = '\0';
        }
        freeReplyObject(r);
    }
    if (p->durable_ms <= 0 || round_written == 0)
        return 0;
    /* Durable mode: the writes count only once a replica has them, so that a
     * failover right after the call cannot lose them. */
    redisReply *r = redisCommand(c, "WAIT 1 %d", p->durable_ms);
    if (!r) {
        hq_err_set(err, HQ_EREDIS,
                   "redis: %s waiting for a replica (%zu of %zu events written to the primary)",
                   c->errstr[0] ? c->errstr : "connection lost", t->written, n);
        disconnect(p);
        return HQ_EREDIS;
    }
    long long acked = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    if (r->type == REDIS_REPLY_ERROR && t->failed++ == 0) {
        t->first_failed = idx[0];
        snprintf(t->first_msg, sizeof(t->first_msg), "WAIT: %.*s", (int)r->len, r->str);
    } else if (acked < 1) {
        if (t->not_durable == 0)
            t->acked = acked;
        t->not_durable += round_written;
    }
    freeReplyObject(r);
    return 0;
}

/* Sends the encoded events: each to its partition's stream
 * (hq_layout_partition_for), one round trip per node: a single Redis gets all
 * in one pipeline; a cluster one per partition touched (its node's context is
 * borrowed only until the next call on the conn). */
static int write_all(struct hookq_producer *p, const struct hookq_event *evs, size_t n,
                     const uint8_t *arena, const size_t *offs, char *ids, size_t id_len,
                     int index_errors, struct hq_err *err)
{
    unsigned P = p->L.nparts;
    unsigned *part = malloc(n * sizeof(*part));
    size_t *idx = malloc(n * sizeof(*idx));
    size_t *start = calloc((size_t)P + 1, sizeof(*start));
    if (!part || !idx || !start) {
        free(part);
        free(idx);
        free(start);
        return hq_err_set(err, HQ_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        /* By the ordering key when there is one: a key's events share a
         * partition, so its line sees them in stream order (docs/ordering.md). */
        const char *by = evs[i].key ? evs[i].key : evs[i].id;
        size_t len = by ? strlen(by) : 0;
        part[i] = hq_layout_partition_for(&p->L, by, len, p->rr);
        if (len == 0)
            p->rr++;
        start[part[i] + 1]++;
    }
    /* Counting sort by partition, stable: a partition's events keep their order. */
    for (unsigned j = 0; j < P; j++)
        start[j + 1] += start[j];
    {
        size_t *fill = calloc(P, sizeof(*fill));
        if (!fill) {
            free(part);
            free(idx);
            free(start);
            return hq_err_set(err, HQ_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < n; i++)
            idx[start[part[i]] + fill[part[i]]++] = i;
        free(fill);
    }

    struct tally t = {0};
    int rc = 0;
    int single = !hq_redis_conn_is_cluster(p->conn);
    for (unsigned j = 0; j < P && rc == 0; j++) {
        size_t from = start[j], to = single ? n : start[j + 1];
        if (single && j > 0)
            break;
        if (to == from)
            continue;
        redisContext *c = hq_redis_conn_node(p->conn, p->L.part[j].slot, err);
        if (!c) {
            rc = HQ_EREDIS;
            break;
        }
        rc = write_round(p, c, evs, idx + from, to - from, part, arena, offs, ids, id_len, n, &t,
                         err);
    }
    free(part);
    free(idx);
    free(start);
    if (rc != 0)
        return rc;
    if (t.failed > 0) {
        if (!index_errors)
            return hq_err_set(err, HQ_EREDIS, "redis: %s", t.first_msg);
        return hq_err_set(err, HQ_EREDIS, "event %zu: redis: %s (%zu of %zu events written)",
                          t.first_failed, t.first_msg, t.written, n);
    }
    if (t.not_durable > 0) {
        if (!index_errors)
            return hq_err_set(err, HQ_ETIMEDOUT,
                              "durable: %lld of 1 replicas acknowledged within %d ms (the event "
                              "was written to the primary only)",
                              t.acked, p->durable_ms);
        return hq_err_set(err, HQ_ETIMEDOUT,
                          "durable: %lld of 1 replicas acknowledged within %d ms (%zu of %zu "
                          "events written to the primary only)",
                          t.acked, p->durable_ms, t.not_durable, n);
    }
    if (t.dups > 0) {
        if (!index_errors)
            return hq_err_set(err, HOOKQ_DUPLICATE,
                              "duplicate: id %s already produced (a worker claimed it within the "
                              "dedupe window: this entry is acknowledged, not delivered)",
                              evs[t.first_dup].id);
        return hq_err_set(err, HOOKQ_DUPLICATE,
                          "duplicate: %zu of %zu events' ids already produced (first: event %zu, "
                          "id %s): those entries are acknowledged, not delivered",
                          t.dups, n, t.first_dup, evs[t.first_dup].id);
    }
    return 0;
}

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
    rc = write_all(p, evs, n, arena, offs, ids, id_len, index_errors, err);
    free(arena);
    free(offs);
    return rc;
}

void hookq_producer_set_report_duplicates(struct hookq_producer *p, int on)
{
    p->report_dups = on != 0;
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
