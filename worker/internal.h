/* The worker's internal structures, shared by its files (not installed, not
 * used outside worker/). Ownership in one picture:
 *
 *   struct hq_worker            the loop, both Redis clients, curl_uv (shared),
 *    |                          and one embedded struct per module, below
 *    +-- entries (entry.c)      struct hq_entry: one stream entry held by this
 *    |     |                    worker, from read/claim until its outcome batch
 *    |     |                    is acknowledged (remaining = deliveries left,
 *    |     |                    + 1 while they are being created)
 *    |     +-- deliveries       struct hq_delivery: one (entry, endpoint) pair;
 *    |                          holds a reference on its hq_ep
 *    +-- dispatch               struct hq_ep: endpoint data + runtime (in flight,
 *    |                          queue); freed when off the cache and unreferenced
 *    +-- consumer, pool, outcomes
 *
 * Entry lifecycle (entry.c checks it): RESOLVING -> DELIVERING -> READY (all
 * outcomes known, queued for flush) -> FLUSHING (record_outcomes.lua in
 * flight) -> freed on success, back to READY on a failed flush (retried;
 * fencing makes the retry safe). Invalid entries: RESOLVING -> READY.
 */
#ifndef HQ_WORKER_INTERNAL_H
#define HQ_WORKER_INTERNAL_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/assert.h"
#include "common/batch.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/endpoint.h"
#include "common/event.h"
#include "common/limits.h"
#include "common/layout.h"
#include "common/redis_router.h"
#include "common/sign.h"
#include "common/stream_id.h"
#include "worker/curl_uv.h"
#include "worker/metrics.h"
#include "worker/outcome_ops.h"
#include "worker/worker.h"

#define HQ_OUTCOME_BATCH_MAX                                                                       \
    256 /* entries per record_outcomes.lua call: bounds one call's size                            \
         */
/* ... and its bytes, past the first entry: payloads ride along with retained
 * deliveries (docs/resend.md), retries and dead letters, and one call of 256
 * 1-MiB payloads would hold Redis for a long time. */
#define HQ_OUTCOME_BATCH_BYTES (16 * 1024 * 1024)
/* Outcome coalescing: record_outcomes.lua costs Redis ~20 us per delivery in
 * calls of one entry and ~9 us in calls of 32 or more (docs/performance.md), so
 * a call waits for this many ready entries, or until the oldest waited this
 * long. Deliveries never wait for it, only their acks. */
#define HQ_FLUSH_BATCH_MIN 32
#define HQ_FLUSH_WAIT_US   2000
/* With P partitions each ready queue fills at 1/P of the worker's rate, so
 * at a steady rate a batch needs P times as long to reach HQ_FLUSH_BATCH_MIN:
 * the wait grows with P, up to this. Under a backlog batches fill anyway
 * (bench/partitions.sh: 35-62 entries per call at P = 4 and P = 6 either
 * way). Acks wait, deliveries do not. */
#define HQ_FLUSH_WAIT_MAX_US 12000
#define HQ_QUEUE_WAIT_MAX_MS                                                                       \
    1000 /* a delivery waiting longer for its endpoint's slot marks the endpoint congested */
#define HQ_RESP_DISCARD_MAX                                                                        \
    (1024 * 1024)           /* response bytes read (and dropped) before giving up on keep-alive */
#define HQ_CLAIM_COUNT 100  /* XAUTOCLAIM COUNT per call */
#define HQ_EP_MISS_MS  1000 /* how long an unknown endpoint id is remembered as missing */

struct hq_worker;
struct hq_ep;
struct hq_batch_run;

enum hq_entry_state {
    HQ_ENTRY_RESOLVING = 0, /* waiting for endpoint data */
    HQ_ENTRY_DELIVERING,    /* deliveries in progress */
    HQ_ENTRY_READY,         /* every outcome known; in the ready queue */
    HQ_ENTRY_FLUSHING,      /* its outcomes are being recorded */
};

struct hq_entry {
    struct hq_entry *next, *prev; /* in w->entries: every entry held */
    struct hq_entry *qnext;       /* in the ready queue, a resolve batch or the parked list */
    enum hq_entry_state state;
    unsigned part;                /* the stream that holds it (index in w->parts) */
    char id[HQ_STREAM_ID_MAX];    /* stream entry id (unique within its partition only) */
    struct hq_sid sid;            /* id as numbers (parsed once: the fence range compares them) */
    int sid_ok;                   /* id parsed (always, for ids Redis hands out) */
    char event_id[HQ_ID_MAX + 1]; /* webhook-id: the event's id, or hq_layout_derived_id's */
    struct hq_event ev;           /* strings point into data */
    char *data;                   /* owned: copies of the entry's field values */
    char *invalid;                /* owned reason when the entry did not decode; NULL if valid */
    struct hq_buf raw;            /* invalid entries: their raw fields, for the dead letter */
    int remaining;                /* deliveries not yet finished */
    struct hq_ops ops;            /* its outcome ops, as record_outcomes.lua's arguments */
    int64_t first_ms;             /* first attempt time carried across retries */
    int64_t ready_us;             /* monotonic time it became READY (flush coalescing) */
    int lines;                    /* it carries a line op (docs/ordering.md) */
    int retained;                 /* an "r" op (HOOKQ_RETAIN) carries its payload already */
};

enum hq_delivery_state {
    HQ_DELIVERY_NEW = 0,   /* created, not yet queued or started */
    HQ_DELIVERY_QUEUED,    /* waiting for a slot (worker or endpoint cap) */
    HQ_DELIVERY_IN_FLIGHT, /* curl transfer running: holds a slot and an easy handle */
};

/* The set of held entries: a list with a head, its length, and how many of
 * them are settled (READY or FLUSHING: every outcome known, waiting to be
 * recorded). Settled entries hold memory but no delivery slot, so reading
 * counts them apart (consumer.c). */
struct hq_entries {
    struct hq_entry head;
    int n;
    int settled;
    int retry_active; /* entries of a retry lane not settled yet (consumer.c caps them) */
};

struct hq_delivery {
    struct hq_delivery *qnext;       /* in its endpoint's wait queue */
    enum hq_delivery_state state;    /* set by dispatch.c, checked where it matters */
    struct hq_entry *entry;          /* borrowed; the entry outlives its deliveries */
    struct hq_ep *ep;                /* holds a reference */
    CURL *easy;                      /* from the pool while in flight */
    struct curl_slist *custom;       /* owned copy of the endpoint's custom headers, or NULL */
    int64_t queued_ms;               /* when it started waiting */
    int probe;                       /* 1: the half-open breaker's probe (breaker.c) */
    int64_t start_us;                /* monotonic start of the attempt */
    int64_t at_ms;                   /* wall-clock start of the attempt */
    long status;                     /* HTTP status, 0 = no answer */
    long long retry_after_ms;        /* from a Retry-After header on 429/503; -1 none */
    const struct hq_netguard *guard; /* borrowed from the config: the SSRF rules */
    char blocked[160];               /* SSRF refusal reason; "" when not blocked */
    struct hq_batch_run *batch;      /* a batch's leader: owns its batch (batch.c); NULL alone */
    /* Buffers: not cleared when a struct is recycled (hq__delivery_new). */
    struct curl_slist hnodes[6]; /* the standard headers, built without malloc */
    char hbuf[HQ_ID_MAX + 2 * (HQ_SIG_V1_LEN + 1) + 96]; /* their variable text */
    char *resp; /* first bytes of the response body: HQ_RESP_KEEP_MAX bytes, allocated at the
                 * first body byte and kept while the struct is recycled (most webhook answers
                 * have no body: 4 KiB less per delivery in flight); NULL until then */
    size_t resp_len;
    size_t resp_seen; /* response bytes seen (kept + discarded) */
    char curl_err[CURL_ERROR_SIZE];
};

/* An endpoint's rate limit as this worker holds it (ratelimit.c): its
 * parameters (set by ep_fill) and the tokens of its current lease. */
struct hq_ep_rl {
    int64_t interval_us; /* T, the emission interval; 0 = no limit (the one branch) */
    int burst;           /* tokens per lease (hq_rate_burst) */
    unsigned home;       /* the partition holding its TAT key */
    int tokens;          /* leased, not yet spent */
    int64_t usable_us;   /* monotonic us from which they may be spent */
    int64_t expire_us;   /* monotonic us after which the unspent ones go back */
    int refund;          /* expired unspent tokens, given back by the next lease */
    int leasing;         /* a lease call for it is in flight (holds a reference) */
    int64_t free_ms;     /* unix ms when Redis' reserved backlog ends (last reply) */
    int64_t defer_ms;    /* unix ms the last over-limit deferral was due at (spacing) */
    int listed;          /* in dispatch's rate-limit want list (holds a reference) */
    int metric_slot;     /* its hookq_rate_limited_by_endpoint_total slot; -1 none yet */
    struct hq_ep *want_next;
};

/* An endpoint's circuit breaker as this worker last learned it (breaker.c),
 * and the outcomes it has not reported yet. HQ_CB_CLOSED (no hash in Redis) is
 * the healthy path: nothing is reported for successes. */
enum hq_cb_state { HQ_CB_CLOSED = 0, HQ_CB_WATCH, HQ_CB_OPEN, HQ_CB_HALF_OPEN, HQ_CB_DISABLED };
struct hq_ep_breaker {
    enum hq_cb_state state;
    int64_t next_probe_ms; /* open: when a probe may go; half-open: the lease's end */
    int probe;             /* 1: this worker won the probe and has not sent it */
    int claiming;          /* a claim is in flight */
    int reporting;         /* a report is in flight (one at a time: in order) */
    int disabling;         /* the registry write of a disable is in flight */
    int gone;              /* a 410 Gone among the unreported outcomes (--disable-on-gone) */
    int listed;            /* in breaker.pending (which holds a reference) */
    struct hq_ep *pnext;
    int ok, failed, tail, probed; /* unreported: successes, failures, failures since the
                                   * last success, the probe's outcome among them */
    long status;
    char error[128];
};

/* An endpoint's dead letters of exhaustion (attempts or retry window) not
 * yet sent to exhausted.lua (exhausted.c); allocated at its first one. */
struct hq_ep_exh {
    struct hq_ep *next; /* in exhausted.pending */
    int listed;         /* in that list (which holds a reference) */
    int sending;        /* an exhausted.lua call for it is in flight */
    long ne, nw;        /* dead letters "exhausted", "retry_window_exceeded" */
    int64_t first_ms, last_ms;
    int64_t poke_ms; /* counts held in Redis: poke exhausted.lua from then (0 none) */
    int nsample;     /* sample[0] is the first event id */
    char sample[HQ_EXHAUSTED_SAMPLE][HQ_ID_MAX + 1];
    char last_id[HQ_ID_MAX + 1];
    char tenant[HQ_TENANT_MAX + 1];
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
    uint32_t origin_key;               /* hash of the URL's scheme://host:port (curl shard) */
    int64_t fetched_ms;                /* when the data was read (cache freshness) */
    int in_flight;                     /* deliveries to it in flight */
    struct hq_delivery *qhead, *qtail; /* deliveries waiting for a slot */
    int queued;
    struct hq_ep *wnext;        /* in its tenant's waiting list: waiting for a worker-wide slot */
    int waiting;                /* 1 while in that list (which holds a reference) */
    struct hq_tenant *wtn;      /* the tenant whose list it waits in (holds a count) */
    struct hq_tenant *tn;       /* its tenant (holds a count); NULL: none, it is its own (solo) */
    struct hq_tenant *solo;     /* its own scheduling unit when it has no tenant (allocated once) */
    int64_t congested_until_ms; /* while in the future, new deliveries are deferred */
    int64_t dur_ms;             /* its attempts' duration, moving average (1/8 per attempt) */
    int64_t cong_due_ms;        /* when its last congestion deferral was due (spacing) */
    struct hq_policy policy;    /* its retry policy: overrides on the deployment's (ep_fill) */
    int tenant_slot;            /* its hookq_deliveries_by_tenant_total slot; -1 no tenant */
    struct hq_ep_rl rl;         /* its rate limit (ratelimit.c); rl.interval_us 0 = none */
    struct hq_ep_breaker cb;    /* breaker.c: its circuit breaker as last learned */
    struct hq_ep_exh *exh;      /* exhausted.c: owned, NULL until its first exhausted delivery */
    struct hq_batch_run *bpend; /* batch.c: the batch being collected for it; NULL none */
};

/* A scheduling unit of dispatch's fair round robin (docs/flow-control.md,
 * "Fair scheduling"): a tenant, or an endpoint without one (its solo unit).
 * It is in dispatch's ring while some of its endpoints wait for a
 * worker-wide slot; those wait in its own list, in turn. */
struct hq_tenant {
    struct hq_tenant *next;       /* in dispatch.tenants' bucket chain (not a solo unit) */
    struct hq_tenant *rnext;      /* in dispatch's ring */
    struct hq_ep *whead, *wtail;  /* its endpoints waiting for a slot (linked by wnext) */
    int in_ring;                  /* 1 while in dispatch's ring */
    int refs;                     /* endpoints naming it or waiting in it; freed by the tick at 0 */
    char name[HQ_TENANT_MAX + 1]; /* "" for a solo unit */
};

/* Subscriptions cached per event type: the endpoint ids from the SUNION. */
struct hq_subs {
    struct hq_subs *next;
    char *type; /* owned */
    char **ids; /* owned */
    int nids;
    int64_t fetched_ms;
};

/* One finished attempt as delivery.c classified it; outcome.c decides from it.
 * Strings are borrowed from the delivery and its endpoint for the call. */
struct hq_attempt {
    const char *endpoint_id;
    const char *url;
    int attempt; /* the number of this attempt (1-based) */
    int64_t at_ms;
    int64_t done_ms; /* wall clock when it finished */
    int64_t duration_ms;
    long status;
    const char *error; /* error class and detail; "" on success */
    const char *resp;
    size_t resp_len;
    int ok;                   /* a 2xx answer */
    const char *blocked;      /* the SSRF guard's refusal, NULL when not blocked */
    long long retry_after_ms; /* from Retry-After on 429/503; -1 none */
    const char *batch_id;     /* the batch the attempt carried the event in; NULL alone */
    /* A batch member's (dispatch.c): the outcomes' att_gen right after the
     * leader's record was built; while nothing is built after it, a member
     * with the same outcome reuses that record (0: build it). */
    unsigned long same_gen;
};

#define HQ_CACHE_BUCKETS 1024

/* Each module's state, embedded in struct hq_worker. The rule: a file writes
 * only its own part; it may read the parts of the modules it calls (below it
 * in the graph at the top of worker.c) and the worker's shared part
 * (configuration, clients, metrics, key names, the lifecycle flags). */

/* consumer.c: reading and claiming, per partition. */
struct hq_consumer_part {
    int reading;     /* an XREADGROUP is in flight on this partition's reader */
    int claiming;    /* an XAUTOCLAIM is in flight */
    int group_ready; /* the consumer group exists (created or seen) */
    int group_asked; /* an XGROUP CREATE is in flight */
    int group_seen;  /* it existed once in this run: a later creation means it was lost */
    int64_t read_paused_until_ms; /* after an XREADGROUP error reply: no re-read before this */
    int asked;                    /* COUNT of the read in flight (or of the last one) */
    int full;                     /* the last read returned its whole COUNT: a backlog */
    unsigned splits;              /* retry lane: reads split while both lanes had a backlog */
    char claim_cursor[HQ_STREAM_ID_MAX];
};
struct hq_consumer {
    struct hq_consumer_part *part; /* w->nparts of them, owned */
    unsigned next;                 /* partition the next read round starts at (fairness) */
    long retry_reserved;           /* sum of the COUNTs of the retry-lane reads in flight */
};

/* dispatch.c: the endpoint cache, per-endpoint queues, slot accounting. */
struct hq_dispatch {
    struct hq_ep *eps[HQ_CACHE_BUCKETS];
    struct hq_subs *subs[HQ_CACHE_BUCKETS];
    struct hq_entry *parked; /* entries whose endpoint lookups failed; retried by the tick */
    /* Endpoints with deliveries that only the worker-wide --concurrency holds
     * back, by tenant: the ring holds the tenants (and endpoints without one)
     * that have such endpoints, each its own list of them. A freed slot goes
     * to the ring's head tenant's first endpoint; both go to the tail of
     * their list if they have more (round robin in two levels, O(1) per slot). */
    struct hq_tenant *ring_head, *ring_tail;
    struct hq_tenant *tenants[HQ_CACHE_BUCKETS]; /* by name, while referenced */
    long deliveries;                             /* deliveries existing (queued + in flight) */
    long in_flight;                              /* curl transfers running */
    struct hq_ep *rl_want; /* limited endpoints with deliveries waiting for tokens (refs) */
    char ver[24];          /* last <prefix>:endpoints:ver seen ("" = none yet) */
    int ver_asking;        /* a GET of it is in flight */
    int workers;           /* workers reading the group lately (>= 1): deferral spacing */
    int workers_asking;    /* an XINFO CONSUMERS is in flight */
    int64_t workers_ms;    /* when it was last asked */
    uint64_t spread;       /* random state: congestion deferrals past the spacing's reach */
};

/* breaker.c: endpoints with outcomes to report (linked by cb.pnext). */
struct hq_breaker {
    struct hq_ep *pending;
    struct hq_redis_script script;         /* health.lua */
    struct hq_redis_script disable_script; /* disable.lua */
    char key_feed[HQ_KEY_MAX];             /* <reg>:breakers: transitions to follow */
    char feed_id[48];                      /* the last entry read ("" until the first look) */
    int following;                         /* a read of the feed is in flight */
};

/* exhausted.c: endpoints with exhausted dead letters to report (exh->next). */
struct hq_exhausted {
    struct hq_ep *pending;
    struct hq_redis_script script; /* exhausted.lua */
};

/* batch.c (docs/batching.md): one batch of deliveries to one endpoint, sent
 * as one request. Collected in its endpoint's bpend (and the pending list)
 * until full or due; then closed (body and id built) and owned by its
 * leader, m[0], which dispatch.c sends like any delivery. The other members
 * hold no slot; they hold their entry and an endpoint reference, as any
 * delivery does, and get the leader's attempt as their own. */
struct hq_batch_pay {
    size_t at, len; /* the payload's bytes in the body (its base64 text when b64) */
    int b64;
};
struct hq_batch_run {
    struct hq_batch_run *next, *prev; /* in the pending list while collected */
    struct hq_ep *ep;                 /* borrowed: the members hold references */
    int n, max;
    size_t bytes, bytes_max;  /* the body's size estimate so far, and its bound */
    int64_t due_us;           /* monotonic us when it goes, full or not */
    char id[HQ_BATCH_ID_MAX]; /* its webhook-id, once closed */
    struct hq_buf body;       /* the JSON array, once closed */
    struct hq_batch_pay *pay; /* once closed: n, where each member's payload is in body */
    struct hq_delivery *m[];  /* max of them */
};

/* batch.c: the batches being collected, oldest first. */
struct hq_batching {
    struct hq_batch_run *head, *tail;
    struct hq_redis_script retry_script; /* batch_retry.lua (batch_retry.c), once src is set */
};

/* delivery.c: recycled delivery structs and easy handles. */
struct hq_delivery_pool {
    CURL **easy; /* idle easy handles (keep-alive lives in the multi) */
    int neasy;
    struct hq_delivery *free; /* recycled delivery structs (linked by qnext) */
    int nfree;
    int curl_used;            /* connections may be cached in w->curl since the last recycle */
    int64_t last_transfer_ms; /* when the last attempt finished (idle-close) */
    int64_t dns_pruned_ms;    /* monotonic ms an attempt last carried the DNS cache timeout */
};

/* outcome.c: the ready queues and their flushing, one per partition (a
 * script call records the outcomes of one partition: its keys share a slot). */
struct hq_outcome_queue {
    struct hq_entry *ready_head, *ready_tail; /* entries waiting to be flushed */
    int nready;                               /* their number */
    int nlines;                /* of them carrying line ops (flushed without coalescing) */
    int flushing;              /* record_outcomes calls in flight */
    int64_t flush_retry_at_ms; /* after a failed flush, not before this */
    int flush_backoff_ms;
};
struct hq_outcomes {
    struct hq_redis_script record_script;
    struct hq_buf att_json;      /* scratch for one attempt record, reused */
    unsigned long att_gen;       /* bumped at each build of att_json */
    int att_kind;                /* the outcome att_json was built with */
    struct hq_outcome_queue *q;  /* w->nparts of them, owned */
    int flushing;                /* calls in flight over all partitions */
    unsigned long lines_flushed; /* calls recorded that carried line ops (ordered.c claims then) */
    uint64_t rng;                /* xorshift state for the jitter of retries and deferrals */
    const struct hq_batch_cfg *parking_batch; /* hq__outcome_park's endpoint's --batch, or NULL */
};

/* ratelimit.c: tokens and their leases; reports through callbacks (dispatch's). */
enum hq_rl_result {
    HQ_RL_GRANTED = 0, /* tokens leased: usable from ep->rl.usable_us */
    HQ_RL_REFUSED,     /* past the horizon: ep->rl.free_ms says when the backlog ends */
    HQ_RL_FAILED,      /* no answer or an error: asked again on a later tick */
};
typedef void (*hq_rl_tick_cb)(struct hq_worker *w);
typedef void (*hq_rl_leased_cb)(struct hq_worker *w, struct hq_ep *ep, enum hq_rl_result res);
struct hq_ratelimit {
    struct hq_redis_script lease_script;
    hq_rl_tick_cb on_tick;     /* the timer fired */
    hq_rl_leased_cb on_leased; /* one endpoint's lease answered */
    uv_timer_t timer;          /* the lease tick, and the start of leased tokens */
    int timer_on;              /* initialised (closed at shutdown) */
    int64_t timer_due_us;      /* monotonic us the armed timer fires; 0 = not armed */
};

/* dedupe.c: the claim of event ids at read (idempotent events). */
struct hq_dedupe {
    struct hq_redis_script script; /* claim_ids.lua */
    int in_flight;                 /* claim calls in flight (their entries are held) */
};

/* The lanes of a partition: two streams the worker reads, with the same
 * hash tag (one slot). Fresh events arrive on <b>:events; due retries come
 * back on <b>:retries (the scheduler moves them there), read with a bounded
 * share of the capacity so neither starves the other (consumer.c). */
enum hq_lane {
    HQ_LANE_FRESH = 0,
    HQ_LANE_RETRY = 1,
    HQ_LANES = 2,
};

/* One stream the worker reads (a lane of a partition): its key names and its
 * reader (shared: set up by worker.c, read by every file). Everything per
 * stream (read, claim, group, ready queue, entries) is indexed by index; the
 * lanes of layout partition i are w->parts[i * HQ_LANES + lane]. */
struct hq_wpart {
    struct hq_worker *w;
    unsigned index;                 /* i in w->parts */
    unsigned lpart;                 /* the partition in the layout */
    enum hq_lane lane;              /* which of its streams */
    unsigned slot;                  /* the cluster slot of its keys */
    struct hq_redis_router *reader; /* its XREADGROUP only (BLOCK): never delays a write */
    /* key_events is the stream this part reads, acks and fences on: <b>:events,
     * or <b>:retries for the retry lane. The other keys are the partition's. */
    char key_events[HQ_KEY_MAX], key_retry[HQ_KEY_MAX], key_retry_data[HQ_KEY_MAX];
    char key_dead[HQ_KEY_MAX], key_att_index[HQ_KEY_MAX];
    char key_lines[HQ_KEY_MAX]; /* <b>:lines: ordered endpoints' lines (worker/ordered.c) */
    char key_retained[HQ_KEY_MAX], key_retained_bytes[HQ_KEY_MAX];
    char key_duplicates[HQ_KEY_MAX]; /* <b>:duplicates: the partition's duplicate count */
};

/* ordered.c: claiming the due heads of ordered endpoints' lines, per partition. */
struct hq_ordered_part {
    int claiming;    /* a lines_claim.lua call is in flight */
    int again;       /* lines changed meanwhile: claim again at its reply */
    int64_t next_ms; /* loop ms of the next claim */
    long long lines; /* lines in the partition at the last claim (the gauge's share) */
};
struct hq_ordered {
    struct hq_redis_script script; /* lines_claim.lua */
    struct hq_ordered_part *part;  /* layout->nparts of them, owned */
    uv_timer_t timer;              /* wakes the loop for the next claim */
    int timer_on;                  /* initialised (closed at shutdown) */
    unsigned long seen;            /* outcomes.lines_flushed at the last turn */
};

struct hq_worker {
    /* Shared: set up by worker.c, read by every file. */
    const struct hq_worker_config *cfg; /* borrowed for the run */
    const struct hq_layout *layout;     /* cfg->layout */
    uv_loop_t loop;
    struct hq_redis_router *writer; /* scripts, claims, lookups: routed by slot */
    struct hq_wpart *parts;         /* layout->nparts * HQ_LANES, owned */
    unsigned nparts;                /* streams read: layout->nparts * HQ_LANES */
    struct hq_curl_uv *curl;
    struct hq_metrics metrics; /* atomics: every file counts what it decides */
    char key_endpoints_ver[HQ_KEY_MAX];
    char key_types_seen[HQ_KEY_MAX];          /* <reg>:types (event types seen, for the API) */
    struct hq_redis_script lane_stats_script; /* the retry lanes' gauges (worker.c) */
    int draining; /* SIGTERM seen, or the layout is changing: read nothing more */
    int relayout; /* a migration began: drain, report paused, return HQ_EAGAIN */
    int stopping; /* everything is closing */

    /* The modules' own parts. */
    struct hq_entries entries; /* entry.c: every held entry */
    struct hq_consumer consumer;
    struct hq_dispatch dispatch;
    struct hq_delivery_pool pool;
    struct hq_outcomes outcomes;
    struct hq_ratelimit ratelimit;
    struct hq_breaker breaker;
    struct hq_exhausted exhausted;
    struct hq_batching batching;
    struct hq_ordered ordered;
    struct hq_dedupe dedupe;

    /* worker.c's own part. */
    struct hq_metrics_server *metrics_server;
    int durability_checked;    /* the Redis configuration warning was looked for */
    int64_t drain_started_ms;  /* when the drain began (0 = not draining) */
    int64_t last_lag_ms;       /* last XINFO GROUPS sample */
    int64_t last_layout_ms;    /* last look for a migration (untagged layout) */
    int layout_asking;         /* that EXISTS is in flight */
    uv_prepare_t turn_prepare; /* once per loop turn, before it blocks (redis beforeSleep) */
    uv_timer_t claim_timer;    /* periodic XAUTOCLAIM */
    uv_timer_t flush_timer;    /* wakes the loop when a coalesced outcome batch is due */
    uv_timer_t tick_timer; /* congestion checks, lag sampling, endpoint version, flush retries */
    uv_signal_t sigterm, sigint;
    int signals;      /* signals received */
    int handles_open; /* libuv handles not yet closed (shutdown accounting) */
    int exit_code;
};

/* The call graph is one-way: worker.c -> consumer.c -> dedupe.c -> dispatch.c ->
 * delivery.c, outcome.c, breaker.c and exhausted.c; consumer.c and dedupe.c -> outcome.c;
 * everyone -> entry.c, dispatch.c, breaker.c and exhausted.c -> ep.c, and
 * delivery.c -> ssrf.c;
 * dispatch.c -> ratelimit.c, which reports back through the callbacks
 * worker.c installs (hq__dispatch_rl_tick, _rl_leased). Nothing calls up: what
 * depends on many modules (re-arming the read, noticing the drain is done, flushing) is
 * re-evaluated by worker.c once per loop turn. */

/* ---- entry.c: held entries and their state machine (a leaf) ---- */
void hq__entries_init(struct hq_entries *set);
/* A new entry of partition part with stream id (id, len), state RESOLVING, appended to set. */
struct hq_entry *hq__entry_new(struct hq_entries *set, unsigned part, const char *id, size_t len);
/* 1 when set holds an entry of partition part with stream id (id, len). */
int hq__entries_hold(const struct hq_entries *set, unsigned part, const char *id, size_t len);
/* The one state setter: panics on a transition the lifecycle above does not allow. */
void hq__entry_set_state(struct hq_entries *set, struct hq_entry *e, enum hq_entry_state s);
/* Frees a READY entry's copy of its event: its outcome ops (which carry the
 * payload where a retry needs it) are all that recording needs, and settled
 * entries may number as many again as --concurrency. */
void hq__entry_release_event(struct hq_entry *e);
/* Unlinks and frees e; nothing may reference it any more (no delivery left). */
void hq__entry_free(struct hq_entries *set, struct hq_entry *e);
/* At exit: frees what a timed-out drain left (it stays pending in Redis). */
void hq__entries_free_all(struct hq_entries *set);

/* ---- consumer.c: reading, claiming, decoding entries ---- */
/* Creates each partition's consumer group (once; again after NOGROUP). */
void hq__consumer_start(struct hq_worker *w);
void hq__consumer_free(struct hq_worker *w);
/* Re-arms XREADGROUP when there is capacity; O(1) when nothing changed. */
void hq__consumer_read(struct hq_worker *w);
void hq__consumer_claim(struct hq_worker *w);
/* A partition's reader connection became ready (re-arm) or was lost (the read with it). */
void hq__consumer_reader_changed(struct hq_wpart *p, int ready);
/* 1 while a read or a claim is in flight (the drain waits for them). */
int hq__consumer_busy(const struct hq_worker *w);

/* ---- dedupe.c: idempotent events, claimed at read ---- */
void hq__dedupe_init(struct hq_worker *w);
/* Takes a read batch of stream p (linked by qnext; ownership stays with
 * w->entries): claims its entries' event ids in one call, then hands the
 * entries to deliver to hq__dispatch_batch and the duplicates to
 * hq__outcome_duplicate. */
void hq__dedupe_batch(struct hq_worker *w, struct hq_wpart *p, struct hq_entry *batch);

/* ---- dispatch.c: endpoint cache, fan-out, per-endpoint queues ---- */
/* Takes a batch of decoded entries (linked by qnext; ownership stays with
 * w->entries), resolves endpoints (batched Redis lookups for what the cache
 * lacks) and starts deliveries. */
void hq__dispatch_batch(struct hq_worker *w, struct hq_entry *batch);
/* curl_uv's done callback (arg = the worker): classifies the attempt
 * (delivery.c), has outcome.c decide and record, frees the slot. */
void hq__dispatch_done(CURL *easy, CURLcode result, void *arg);
void hq__dispatch_tick(struct hq_worker *w);         /* congestion checks */
void hq__dispatch_retry_parked(struct hq_worker *w); /* re-resolves batches whose lookups failed */
void hq__dispatch_defer_all(struct hq_worker *w);    /* drain: defer every queued delivery */
/* Sends the batches being collected that are due (every one, deferred, while
 * draining; worker.c, once per loop turn). Returns the ms until the next is
 * due, or -1 when none is collected. */
int64_t hq__dispatch_batches(struct hq_worker *w);
/* Rate limits, ratelimit.c's callbacks (installed by worker.c): the tick
 * starts what usable tokens allow and leases for the endpoints out of them;
 * a lease answered starts, defers (refused) or waits for the next tick. */
void hq__dispatch_rl_tick(struct hq_worker *w);
void hq__dispatch_rl_leased(struct hq_worker *w, struct hq_ep *ep, enum hq_rl_result res);
/* Reads <prefix>:endpoints:ver; a change marks the whole cache stale. */
void hq__dispatch_watch_endpoints(struct hq_worker *w);

void hq__dispatch_free_cache(struct hq_worker *w);

/* ---- ep.c: a cached endpoint's lifetime (a leaf) ---- */
/* Frees ep's data (endpoint fields, decoded keys, prebuilt headers). */
void hq__ep_clear_data(struct hq_ep *ep);
/* Drops a reference to ep taken with ep->refs++ (the cache's, a delivery's, a
 * breaker call's); the last frees it. */
void hq__ep_unref(struct hq_ep *ep);
/* The cached endpoint id[0..n), or NULL: no reference taken. */
struct hq_ep *hq__ep_find(struct hq_worker *w, const char *id, size_t n);

/* ---- exhausted.c: hookq.delivery.exhausted (common/scripts/exhausted.lua) ---- */
/* Notes a dead letter of ep for event_id: reason "exhausted" (window 0) or
 * "retry_window_exceeded" (window 1). No Redis call: the tick sends. */
void hq__exhausted_note(struct hq_worker *w, struct hq_ep *ep, const char *event_id, int window);
/* Sends the noted counts: one exhausted.lua call per home partition (the tick). */
void hq__exhausted_flush(struct hq_worker *w);
void hq__exhausted_init(struct hq_worker *w);
void hq__exhausted_free(struct hq_worker *w);

/* ---- breaker.c: circuit breakers (common/scripts/health.lua) ---- */
/* Notes a finished attempt of ep for the next report (failures always, the
 * rest only while ep's breaker is not closed and clean). */
void hq__breaker_note(struct hq_worker *w, struct hq_ep *ep, const struct hq_attempt *a, int probe);
/* Whether d may start now: 0 yes (marks it the probe when it is), -1 no, the
 * endpoint is disabled (dead-letter it: endpoint_disabled), else the due time
 * to defer it to (the breaker is open or another worker probes). */
int64_t hq__breaker_hold(struct hq_worker *w, struct hq_delivery *d, int64_t now);
/* Sends the pending reports (one health.lua call per endpoint; the tick). */
void hq__breaker_flush(struct hq_worker *w);
/* Reads the transitions other workers published since the last call (one
 * command per tick) and applies them to the cached endpoints. */
void hq__breaker_follow(struct hq_worker *w);
/* Installs a state read from Redis (HMGET state next_probe_ms). */
void hq__breaker_learn(struct hq_ep *ep, const redisReply *r);
void hq__breaker_init(struct hq_worker *w);
void hq__breaker_free(struct hq_worker *w);

/* ---- delivery.c: one attempt (a leaf but for ssrf.c) ---- */
/* Delivery structs are recycled (each holds a 4 KiB response buffer: no
 * per-delivery malloc + zeroing). */
struct hq_delivery *hq__delivery_new(struct hq_worker *w);
void hq__delivery_free(struct hq_worker *w, struct hq_delivery *d);
void hq__delivery_pool_free(struct hq_worker *w);
/* Drops the pooled easy handles (their close-socket callback points at a
 * curl_uv about to be closed). */
void hq__delivery_drop_easy(struct hq_worker *w);
/* Starts the attempt of d (state IN_FLIGHT). Returns 0, or -1 when the
 * transfer could not start: then d->curl_err says why and the caller treats
 * it as a finished attempt (hq__delivery_result with CURLE_FAILED_INIT). */
int hq__delivery_start(struct hq_worker *w, struct hq_delivery *d);
/* The delivery whose transfer easy is. */
struct hq_delivery *hq__delivery_of(CURL *easy);
/* Classifies a finished attempt into *a (error text in error[n]); counts the
 * attempt's latency and failure class. */
void hq__delivery_result(struct hq_worker *w, struct hq_delivery *d, CURLcode res,
                         struct hq_attempt *a, char *error, size_t n);
/* Gives back what the attempt held (easy handle, custom header copy). */
void hq__delivery_end(struct hq_worker *w, struct hq_delivery *d);

/* ---- outcome.c: deciding and recording outcomes ---- */
/* A finished attempt of e to ep: delivered, retried (backoff, Retry-After) or
 * dead (exhausted, blocked); counted and appended as an op. Returns
 * HQ_OUT_EXHAUSTED or HQ_OUT_WINDOW when it ended as such a dead letter, else 0. */
enum { HQ_OUT_EXHAUSTED = 1, HQ_OUT_WINDOW = 2 };
int hq__outcome_attempt(struct hq_worker *w, struct hq_entry *e, const struct hq_ep *ep,
                        const struct hq_attempt *a);
/* When a's failure of e is retried (backoff, Retry-After; unix ms), or -1
 * when that is past the endpoint's retry window. */
int64_t hq__outcome_retry_due(struct hq_worker *w, const struct hq_entry *e, const struct hq_ep *ep,
                              const struct hq_attempt *a);
/* Only a's attempt record for e, counted as kind: a member of a batch whose
 * retry item carries the rest (batch_retry.c). */
void hq__outcome_record(struct hq_worker *w, struct hq_entry *e, const struct hq_attempt *a,
                        enum hq_metric_outcome kind);
/* A retry of e alone, due at due_ms, without an attempt record (batch_retry.c's fallback). */
void hq__outcome_retry_alone(struct hq_worker *w, struct hq_entry *e, const char *endpoint_id,
                             const char *url, const char *tenant, int failed, int64_t due_ms);
/* A delivery of e to ep postponed without an attempt (congestion, drain). */
void hq__outcome_defer(struct hq_worker *w, struct hq_entry *e, const struct hq_ep *ep);
/* The same, due at due_ms (unix ms): a rate-limited endpoint's next tokens,
 * an open breaker's next probe. */
void hq__outcome_defer_until(struct hq_worker *w, struct hq_entry *e, const struct hq_ep *ep,
                             int64_t due_ms);
/* Parks the pair (e, ep) of an ordered endpoint as an item of its line
 * (docs/ordering.md): no attempt, recorded with e's ack. */
void hq__outcome_park(struct hq_worker *w, struct hq_entry *e, const struct hq_ep *ep);
/* e cannot go to endpoint (id, url, tenant: "" when unknown): it is deleted,
 * disabled or another tenant's (reason). */
void hq__outcome_dead_endpoint(struct hq_worker *w, struct hq_entry *e, const char *endpoint_id,
                               const char *url, const char *tenant, const char *reason);
/* e is a duplicate (dedupe.c): counted in counter_key by the record call,
 * acknowledged, not delivered; e becomes READY. */
void hq__outcome_duplicate(struct hq_worker *w, struct hq_entry *e, const char *counter_key);
/* Dead-letters an invalid entry with its raw fields; e becomes READY. */
void hq__outcome_add_invalid(struct hq_worker *w, struct hq_entry *e);
/* One delivery of e finished; when none remain, e becomes READY. */
void hq__outcome_delivery_finished(struct hq_worker *w, struct hq_entry *e);
void hq__outcome_init(struct hq_worker *w);
void hq__outcome_free(struct hq_worker *w);
/* Records ready entries (called once per loop turn), in batches: a record call
 * waits for HQ_FLUSH_BATCH_MIN ready entries or until the oldest has waited
 * HQ_FLUSH_WAIT_US (at once while draining). Returns the ms until a waiting
 * batch is due (the caller wakes the loop then), or -1 when none waits. */
int64_t hq__outcome_flush(struct hq_worker *w);

/* ---- ratelimit.c: per-endpoint rate-limit tokens and their leases (a leaf) ---- */
#define HQ_RL_TICK_US       50000 /* lease calls and token checks while endpoints wait */
#define HQ_RL_LEASE_EPS_MAX 64    /* endpoints per lease call: bounds one call's arguments */
void hq__rl_init(struct hq_worker *w, hq_rl_tick_cb on_tick, hq_rl_leased_cb on_leased);
void hq__rl_close(struct hq_worker *w, void (*close_handle)(struct hq_worker *, uv_handle_t *));
/* Makes on_tick run at due_us (monotonic us) unless it runs sooner already. */
void hq__rl_arm(struct hq_worker *w, int64_t due_us);
/* 1 when ep (limited) may start a delivery now: a token is usable (expired
 * ones are set aside for the refund). */
int hq__rl_ready(struct hq_ep *ep, int64_t now_us);
/* The unix ms a deferred delivery of ep should be due at: when Redis said its
 * reserved backlog ends, at least 250 ms ahead, spaced by its interval times
 * workers (the workers sharing its limit, >= 1). */
int64_t hq__rl_defer_due(struct hq_ep *ep, int64_t now_ms, int workers);
/* One lease call for eps[0..n) (n <= HQ_RL_LEASE_EPS_MAX, all of home
 * partition part, out of tokens), each with a reference the caller took:
 * on_leased gets each back (also when the call could not be sent). */
void hq__rl_lease(struct hq_worker *w, unsigned part, struct hq_ep *const *eps, int n);

/* ---- batch.c: collecting deliveries into batches (a leaf) ---- */
/* 1 when d may join a batch: its endpoint batches, the breaker is closed, the
 * event is new (fresh lane, no attempt yet; a deferral coming back) and small
 * enough for the endpoint's bytes bound; never a replay of a dead letter. */
int hq__batch_wants(const struct hq_worker *w, const struct hq_delivery *d);
/* d joins its endpoint's batch being collected. Returns the leader of a batch
 * this closed (full by count, or d would overflow its bytes: d then starts the
 * next), to be sent; NULL when nothing closed. */
struct hq_delivery *hq__batch_add(struct hq_worker *w, struct hq_delivery *d);
/* Closes and returns the leader of one collected batch due at now_us (every
 * one when all), or NULL; *next_ms: ms until the earliest still collected is
 * due (-1 none). */
struct hq_delivery *hq__batch_take_due(struct hq_worker *w, int64_t now_us, int all,
                                       int64_t *next_ms);
/* Frees leader's batch (its members are finished or detached). */
void hq__batch_free(struct hq_worker *w, struct hq_delivery *leader);

/* ---- batch_retry.c: a failed batch retried whole (docs/batching.md) ---- */
/* A fresh batch (leader d, closed) failed with a, which is to be retried: writes
 * its retry item (one call, before any member is recorded) and each member's
 * attempt record, and holds the members' entries until the item is written
 * (then they are recorded; if it cannot be, each gets its own retry). 1 when
 * it did; 0 when the batch is not retried whole (blocked, exhausted, past the
 * retry window, bigger than --max-payload, Redis not ready): the caller
 * records each member alone. */
int hq__batch_retry_whole(struct hq_worker *w, struct hq_delivery *d, const struct hq_attempt *a);
/* ---- batch_members.c: a batch retry item's member list (a leaf) ---- */
/* e is a batch retried whole (e->ev.batch): appends each member's attempt
 * record (att). Returns the number of members (0 when the list is corrupt). */
int hq__batch_retry_records(struct hq_entry *e, const char *att, size_t att_len);
/* e is a batch retried whole and dead: appends op for each member instead of
 * e (its id, type, payload; batch_id e's id). Returns the number of members,
 * or 0 (nothing appended) when the list is corrupt: the caller appends op. */
int hq__batch_retry_split(struct hq_entry *e, const struct hq_full_op *op);
/* ---- ordered.c: sending the due heads of ordered endpoints' lines ---- */
void hq__ordered_init(struct hq_worker *w);
void hq__ordered_close(struct hq_worker *w,
                       void (*close_handle)(struct hq_worker *, uv_handle_t *));
void hq__ordered_free(struct hq_worker *w);
/* Once per loop turn: claims on the partitions whose lines changed or came due. */
void hq__ordered_turn(struct hq_worker *w);

/* ---- ssrf.c ---- */
/* Sets the open-socket callback on a new easy handle; each attempt sets
 * CURLOPT_OPENSOCKETDATA to its delivery, whose guard field the callback reads. */
void hq__ssrf_setup(CURL *easy);

#endif
