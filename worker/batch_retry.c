/* A failed batch retried whole (docs/batching.md): the same members, in the
 * same order, the same body and webhook-id, until a 2xx or exhaustion, which
 * dead-letters each member alone.
 *
 * The retry item is one retry (redis-layout.md) whose id is the batch's id,
 * payload the batch's body and field "batch" the member list: one line per
 * member, "id type timestamp_ms payload_offset payload_len b64", where the
 * member's payload is the body's bytes at that offset (base64 when b64 is 1).
 * The scheduler moves it like any retry; the worker reads it as one entry and
 * sends its payload with its id (delivery.c, unchanged), so a reclaim after a
 * kill -9 sends it whole too. It is bounded by the batch's bytes (body) and
 * ~100 bytes a member, and written only when within --max-payload.
 *
 * The first failure: the members are separate stream entries, possibly of
 * other partitions and recorded by other calls, so no one record call can
 * write the item and acknowledge them all. The item is written first
 * (batch_retry.lua, one call per failed batch: failures only), the members'
 * entries held until its reply; only then are they recorded and acknowledged.
 * A crash in between re-sends the members from their entries (a duplicate,
 * never a loss); a failed write records each member's own retry instead. */
#include "worker/internal.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/scripts.h"

struct whole {
    struct hq_worker *w;
    char ep_id[HQ_ENDPOINT_ID_MAX + 1];
    char tenant[HQ_TENANT_MAX + 1];
    char *url;
    int failed;
    int64_t due_ms;
    int n;
    struct hq_entry *e[]; /* held: remaining + 1 each */
};

static int pack_write(void *data, const char *buf, size_t len)
{
    return hq_buf_append(data, buf, len) == 0 ? 0 : -1;
}

static void kv(msgpack_packer *pk, const char *k, const char *v, size_t n)
{
    msgpack_pack_str(pk, strlen(k));
    msgpack_pack_str_body(pk, k, strlen(k));
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, v, n);
}

static void kint(msgpack_packer *pk, const char *k, int64_t v)
{
    msgpack_pack_str(pk, strlen(k));
    msgpack_pack_str_body(pk, k, strlen(k));
    msgpack_pack_int64(pk, v);
}

static void on_written(struct hq_redis_client *c, redisReply *r, void *arg)
{
    (void)c;
    struct whole *k = arg;
    struct hq_worker *w = k->w;
    int ok = r && r->type == REDIS_REPLY_INTEGER;
    if (!ok)
        hq_log(HQ_LOG_WARN, "batch",
               "writing a failed batch's retry item failed (%s): its %d events retried one by one",
               r && r->type == REDIS_REPLY_ERROR ? r->str : "no reply", k->n);
    for (int i = 0; i < k->n; i++) {
        if (!ok)
            hq__outcome_retry_alone(w, k->e[i], k->ep_id, k->url, k->tenant, k->failed, k->due_ms);
        hq__outcome_delivery_finished(w, k->e[i]); /* the hold */
    }
    free(k->url);
    free(k);
}

int hq__batch_retry_whole(struct hq_worker *w, struct hq_delivery *d, const struct hq_attempt *a)
{
    struct hq_batch_run *b = d->batch;
    struct hq_ep *ep = d->ep;
    struct hq_entry *le = d->entry;
    struct hq_wpart *p = &w->parts[le->part];
    if (a->blocked || a->attempt >= ep->policy.max_attempts ||
        b->body.len > (size_t)w->cfg->max_payload || w->stopping || !w->writer ||
        !hq_redis_router_ready(w->writer, p->slot))
        return 0;
    int64_t due = hq__outcome_retry_due(w, le, ep, a);
    if (due < 0)
        return 0;
    int64_t first = le->first_ms ? le->first_ms : a->at_ms;
    struct hq_buf data;
    struct hq_buf ml; /* the member list (batch_members.c) */
    hq_buf_init(&ml, (size_t)b->n * (HQ_ID_MAX + HQ_TYPE_MAX + 72));
    for (int i = 0; i < b->n; i++) {
        const struct hq_entry *e = b->m[i]->entry;
        if (hq_buf_printf(&ml, "%s %.*s %lld %zu %zu %d\n", e->event_id, (int)e->ev.type_len,
                          e->ev.type, e->ev.ts_ms ? (long long)e->ev.ts_ms : (long long)e->sid.ms,
                          b->pay[i].at, b->pay[i].len, b->pay[i].b64) != 0)
            hq_panic("batch member list: no room");
    }
    hq_buf_init(&data, b->body.len + ml.len + 64 * 1024);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &data, pack_write);
    msgpack_pack_map(&pk, 12 + !!le->ev.tenant);
    kv(&pk, "type", le->ev.type, le->ev.type_len);
    kv(&pk, "payload", b->body.p, b->body.len);
    kv(&pk, "id", b->id, strlen(b->id));
    kv(&pk, "endpoint", ep->id, strlen(ep->id));
    kint(&pk, "attempt", a->attempt);
    kint(&pk, "first_ms", first);
    kint(&pk, "last_ms", a->at_ms);
    kint(&pk, "last_status", a->status);
    kv(&pk, "last_error", a->error, strlen(a->error));
    kv(&pk, "url", ep->e.url, strlen(ep->e.url));
    kint(&pk, "deferred", 0);
    if (le->ev.tenant) /* the event's: a retry stays within its tenant */
        kv(&pk, "tenant", le->ev.tenant, le->ev.tenant_len);
    kv(&pk, "batch", ml.p, ml.len);
    hq_buf_free(&ml);
    char member[HQ_ENDPOINT_ID_MAX + HQ_BATCH_ID_MAX + 24], due_s[24];
    snprintf(member, sizeof(member), "%s/%s/%d", ep->id, b->id, a->attempt);
    snprintf(due_s, sizeof(due_s), "%lld", (long long)due);
    struct hq_redis_script *script = &w->batching.retry_script;
    if (!script->src)
        hq_redis_script_init(script, hq_script_batch_retry);
    struct whole *k = hq_calloc(1, sizeof(*k) + (size_t)b->n * sizeof(k->e[0]));
    const char *argv[] = {p->key_retry, p->key_retry_data, member, due_s, data.p};
    size_t lens[] = {strlen(argv[0]), strlen(argv[1]), strlen(member), strlen(due_s), data.len};
    int rc = hq_redis_router_script(w->writer, p->slot, script, on_written, k, 2, 5, argv, lens);
    hq_buf_free(&data);
    if (rc != 0) {
        free(k);
        return 0;
    }
    k->w = w;
    snprintf(k->ep_id, sizeof(k->ep_id), "%s", ep->id);
    snprintf(k->tenant, sizeof(k->tenant), "%s", ep->e.tenant);
    k->url = hq_strdup(ep->e.url);
    k->failed = a->attempt;
    k->due_ms = due;
    for (int i = 0; i < b->n; i++) {
        struct hq_entry *e = b->m[i]->entry;
        hq__outcome_record(w, e, a, HQ_MO_RETRY);
        e->remaining++; /* held until the item is written */
        k->e[k->n++] = e;
    }
    return 1;
}
