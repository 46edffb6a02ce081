/* The worker's internal structures, shared by its files (not installed, not
 * used outside worker/). Ownership in one picture:
 *
 *   struct hq_worker            owns the loop, both Redis clients, curl_uv, the
 *    |                          endpoint cache, every entry and delivery
 *    +-- entries (list)         struct hq_entry: one stream entry held by this
 *    |     |                    worker, from read/claim until its outcome batch
 *    |     |                    is acknowledged (refcount = deliveries left + 1
 *    |     |                    while resolving)
 *    |     +-- deliveries       struct hq_delivery: one (entry, endpoint) pair;
 *    |                          holds a reference on its hq_ep
 *    +-- endpoints (cache)      struct hq_ep: endpoint data + runtime (in flight,
 *                               queue); freed when stale and unreferenced
 *
 * Entry lifecycle (one function changes state: hq__entry_set_state):
 *   RESOLVING -> DELIVERING -> READY (all outcomes known, queued for flush)
 *             -> FLUSHING (record_outcomes.lua in flight) -> freed on success,
 *                back to READY on a failed flush (retried; fencing makes the
 *                retry safe).
 */
#ifndef HQ_WORKER_INTERNAL_H
#define HQ_WORKER_INTERNAL_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/endpoint.h"
#include "common/event.h"
#include "common/limits.h"
#include "common/redis_client.h"
#include "common/sign.h"
#include "worker/curl_uv.h"
#include "worker/metrics.h"
#include "worker/worker.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define HQ_ENTRY_ID_MAX 48 /* "<ms>-<seq>": two 64-bit numbers and a dash */
#define HQ_OUTCOME_BATCH_MAX                                                                       \
    256 /* entries per record_outcomes.lua call: bounds one call's size                            \
         */
#define HQ_QUEUE_WAIT_MAX_MS                                                                       \
    1000 /* a delivery waiting longer for its endpoint's slot marks the endpoint congested */
#define HQ_RESP_DISCARD_MAX                                                                        \
    (1024 * 1024)           /* response bytes read (and dropped) before giving up on keep-alive */
#define HQ_CLAIM_COUNT 100  /* XAUTOCLAIM COUNT per call */
#define HQ_EP_MISS_MS  1000 /* how long an unknown endpoint id is remembered as missing */

struct hq_worker;
struct hq_ep;

enum hq_entry_state {
    HQ_ENTRY_RESOLVING = 0, /* waiting for endpoint data */
    HQ_ENTRY_DELIVERING,    /* deliveries in progress */
    HQ_ENTRY_READY,         /* every outcome known; in w->ready */
    HQ_ENTRY_FLUSHING,      /* its outcomes are being recorded */
};

/* A stream entry id "<ms>-<seq>" as numbers, to compare ids in id order. */
struct hq_sid {
    unsigned long long ms, seq;
};

struct hq_entry {
    struct hq_entry *next, *prev; /* in w->entries: every entry held */
    struct hq_entry *qnext;       /* in w->ready or a resolve batch */
    enum hq_entry_state state;
    char id[HQ_ENTRY_ID_MAX];     /* stream entry id */
    struct hq_sid sid;            /* id as numbers (parsed once: the fence range compares them) */
    int sid_ok;                   /* id parsed (always, for ids Redis hands out) */
    char event_id[HQ_ID_MAX + 1]; /* webhook-id: the event's id, or "evt_<entry id>" */
    struct hq_event ev;           /* strings point into data */
    char *data;                   /* owned: copies of the entry's field values */
    char *invalid;                /* owned reason when the entry did not decode; NULL if valid */
    struct hq_buf raw;            /* invalid entries: their raw fields, for the dead letter */
    int remaining;                /* deliveries not yet finished */
    struct hq_buf ops;            /* outcome ops as length-prefixed script arguments */
    int nargs;                    /* script arguments in 'ops' (its ops, flattened) */
    int64_t first_ms;             /* first attempt time carried across retries */
};

enum hq_delivery_state {
    HQ_DELIVERY_QUEUED = 0, /* waiting for a slot (worker or endpoint cap) */
    HQ_DELIVERY_IN_FLIGHT,  /* curl transfer running */
};

struct hq_delivery {
    struct hq_delivery *qnext; /* in its endpoint's wait queue */
    enum hq_delivery_state state;
    struct hq_entry *entry;          /* borrowed; the entry outlives its deliveries */
    struct hq_ep *ep;                /* holds a reference */
    CURL *easy;                      /* from w->easy_pool while in flight */
    struct curl_slist *custom;       /* owned copy of the endpoint's custom headers, or NULL */
    int64_t queued_ms;               /* when it started waiting */
    int64_t start_us;                /* monotonic start of the attempt */
    int64_t at_ms;                   /* wall-clock start of the attempt */
    long status;                     /* HTTP status, 0 = no answer */
    long long retry_after_ms;        /* from a Retry-After header on 429/503; -1 none */
    const struct hq_netguard *guard; /* borrowed from the config: the SSRF rules */
    char blocked[160];               /* SSRF refusal reason; "" when not blocked */
    /* Buffers: not cleared when a struct is recycled (hq__delivery_new). */
    struct curl_slist hnodes[6]; /* the standard headers, built without malloc */
    char hbuf[HQ_ID_MAX + 2 * (HQ_SIG_V1_LEN + 1) + 96]; /* their variable text */
    char resp[HQ_RESP_KEEP_MAX];                         /* first bytes of the response body */
    size_t resp_len;
    size_t resp_seen; /* response bytes seen (kept + discarded) */
    char curl_err[CURL_ERROR_SIZE];
};

struct hq_ep {
    struct hq_ep *next; /* in the cache's bucket chain */
    char id[HQ_ENDPOINT_ID_MAX + 1];
    int refs;                   /* cache (1 while cached) + deliveries holding it */
    int missing;                /* 1: no such endpoint (a cached negative answer) */
    int cached;                 /* 1 while reachable from the cache table */
    struct hq_endpoint e;       /* endpoint data (owned fields) */
    struct hq_sign_key keys[2]; /* decoded signing keys */
    int nkeys;
    struct curl_slist *custom;         /* the endpoint's custom headers, prebuilt */
    int64_t fetched_ms;                /* when the data was read (cache freshness) */
    int in_flight;                     /* deliveries to it in flight */
    struct hq_delivery *qhead, *qtail; /* deliveries waiting for a slot */
    int queued;
    int64_t congested_until_ms; /* while in the future, new deliveries are deferred */
};

/* Subscriptions cached per event type: the endpoint ids from the SUNION. */
struct hq_subs {
    struct hq_subs *next;
    char *type; /* owned */
    char **ids; /* owned */
    int nids;
    int64_t fetched_ms;
};

#define HQ_CACHE_BUCKETS 1024

struct hq_worker {
    const struct hq_worker_config *cfg; /* borrowed for the run */
    uv_loop_t loop;
    struct hq_redis_client *reader; /* XREADGROUP only */
    struct hq_redis_client *writer; /* scripts, claims, lookups */
    struct hq_curl_uv *curl;
    struct hq_metrics metrics;
    struct hq_metrics_server *metrics_server;

    char key_events[HQ_KEY_MAX], key_retry[HQ_KEY_MAX], key_retry_data[HQ_KEY_MAX];
    char key_dead[HQ_KEY_MAX], key_att_prefix[HQ_KEY_MAX];
    struct hq_redis_script record_script;
    struct hq_buf att_json; /* scratch for one attempt record, reused (outcome.c) */

    int draining;             /* SIGTERM seen: read nothing more */
    int stopping;             /* everything is closing */
    int reading;              /* an XREADGROUP is in flight */
    int claiming;             /* an XAUTOCLAIM is in flight */
    int group_ready;          /* the consumer group exists (created or seen) */
    int64_t last_transfer_ms; /* when the last delivery finished (idle-close) */
    int curl_used;            /* connections may be cached in w->curl since the last recycle */
    int durability_checked;   /* the Redis configuration warning was looked for */
    int group_seen;           /* it existed once in this run: a later creation means it was lost */
    char claim_cursor[HQ_ENTRY_ID_MAX];

    struct hq_entry entries; /* list head of every held entry */
    int nentries;
    struct hq_entry *ready_head, *ready_tail; /* entries waiting to be flushed */
    int flushing;                             /* record_outcomes calls in flight */
    int64_t flush_retry_at_ms;                /* after a failed flush, not before this */
    int flush_backoff_ms;

    long deliveries;                     /* deliveries existing (queued + in flight) */
    long in_flight;                      /* curl transfers running */
    CURL **easy_pool;                    /* idle easy handles (keep-alive lives in the multi) */
    struct hq_delivery *free_deliveries; /* recycled delivery structs (linked by qnext) */
    int nfree_deliveries;
    int npool;

    struct hq_entry *parked;      /* entries whose endpoint lookups failed; retried by the tick */
    int64_t read_paused_until_ms; /* after an XREADGROUP error reply: no re-read before this */
    int64_t drain_started_ms;     /* when the drain began (0 = not draining) */
    int64_t last_lag_ms;          /* last XINFO GROUPS sample */
    struct hq_ep *eps[HQ_CACHE_BUCKETS];
    struct hq_subs *subs[HQ_CACHE_BUCKETS];

    uv_prepare_t flush_prepare; /* flush outcomes once per loop turn (redis beforeSleep) */
    uv_timer_t claim_timer;     /* periodic XAUTOCLAIM */
    uv_timer_t tick_timer;      /* congestion checks, lag sampling, flush retries */
    uv_signal_t sigterm, sigint;
    int signals;      /* signals received */
    int handles_open; /* libuv handles not yet closed (shutdown accounting) */
    uint64_t rng;     /* xorshift state for jitter */
    int exit_code;
};

/* ---- worker.c ---- */
int64_t hq__now_ms(void);
int64_t hq__mono_us(void);
uint64_t hq__rand(struct hq_worker *w);
/* Called whenever capacity may have freed: re-arms reading and claiming. */
void hq__worker_capacity_changed(struct hq_worker *w);
/* Called when the worker may have become idle during a drain. */
void hq__worker_maybe_done(struct hq_worker *w);

/* ---- consumer.c: reading, claiming, decoding entries ---- */
/* 1 when s is a stream id "<ms>-<seq>" (fills out), else 0. */
int hq__sid_parse(const char *s, struct hq_sid *out);
/* <0, 0, >0 as a is before, equal to, after b in stream order. */
int hq__sid_cmp(const struct hq_sid *a, const struct hq_sid *b);
void hq__consumer_start(struct hq_worker *w);
void hq__consumer_read(struct hq_worker *w);
void hq__consumer_claim(struct hq_worker *w);
/* Free capacity in entries: how many may be read now. */
int hq__consumer_capacity(const struct hq_worker *w);
void hq__entry_free(struct hq_worker *w, struct hq_entry *e);
void hq__entry_set_state(struct hq_worker *w, struct hq_entry *e, enum hq_entry_state s);

/* ---- dispatch.c: endpoint cache, fan-out, per-endpoint queues ---- */
/* Takes a batch of decoded entries (linked by qnext), resolves endpoints
 * (batched Redis lookups for what the cache lacks) and starts deliveries. */
void hq__dispatch_batch(struct hq_worker *w, struct hq_entry *batch);
/* A delivery finished (outcome recorded in its entry): frees its slot and
 * starts the next waiting delivery. */
void hq__dispatch_release(struct hq_worker *w, struct hq_ep *ep);
void hq__dispatch_tick(struct hq_worker *w);         /* congestion checks */
void hq__dispatch_retry_parked(struct hq_worker *w); /* re-resolves batches whose lookups failed */
void hq__dispatch_defer_all(struct hq_worker *w);    /* drain: defer every queued delivery */
void hq__ep_unref(struct hq_worker *w, struct hq_ep *ep);
void hq__dispatch_free_cache(struct hq_worker *w);

/* ---- delivery.c: one attempt ---- */
void hq__delivery_start(struct hq_worker *w, struct hq_delivery *d);
/* Delivery structs are recycled (each holds a 4 KiB response buffer: no
 * per-delivery malloc + zeroing). */
struct hq_delivery *hq__delivery_new(struct hq_worker *w);
void hq__delivery_free(struct hq_worker *w, struct hq_delivery *d);
void hq__delivery_pool_free(struct hq_worker *w);
/* Delivery structs are recycled (each holds a 4 KiB response buffer: no
 * per-delivery malloc + zeroing). */
struct hq_delivery *hq__delivery_new(struct hq_worker *w);
void hq__delivery_free(struct hq_worker *w, struct hq_delivery *d);
void hq__delivery_pool_free(struct hq_worker *w);
void hq__delivery_done(CURL *easy, CURLcode result, void *arg); /* curl_uv's done callback */

/* ---- outcome.c: recording outcomes ---- */
enum hq_outcome_kind { HQ_OUT_DELIVERED, HQ_OUT_RETRY, HQ_OUT_DEAD, HQ_OUT_DEFERRED };
struct hq_attempt {
    const char *endpoint_id;
    const char *url;
    int attempt; /* the number of this attempt (1-based) */
    int64_t at_ms;
    int64_t duration_ms;
    long status;
    const char *error; /* error class and detail; "" on success */
    const char *resp;
    size_t resp_len;
};
/* Appends one op for entry e: kind, the attempt (NULL for outcomes without
 * an attempt: deferrals, dead endpoints), due time for retries/deferrals,
 * dead reason for HQ_OUT_DEAD. */
void hq__outcome_add(struct hq_worker *w, struct hq_entry *e, enum hq_outcome_kind kind,
                     const struct hq_attempt *a, const char *endpoint_id, const char *url,
                     int failed_attempts, int64_t due_ms, const char *dead_reason);
/* Dead-letters an invalid entry with its raw fields. */
void hq__outcome_add_invalid(struct hq_worker *w, struct hq_entry *e);
/* One delivery of e finished; when none remain, e becomes READY. */
void hq__outcome_delivery_finished(struct hq_worker *w, struct hq_entry *e);
void hq__outcome_init(struct hq_worker *w);
void hq__outcome_flush(struct hq_worker *w);

/* ---- ssrf.c ---- */
/* Sets the open-socket callback on a new easy handle; each attempt sets
 * CURLOPT_OPENSOCKETDATA to its delivery, whose guard field the callback reads. */
void hq__ssrf_setup(struct hq_worker *w, CURL *easy);

#endif
