/* Worker metrics: counters updated by the loop thread, read by the metrics
 * HTTP server's own thread (libmicrohttpd), hence relaxed C11 atomics.
 * /metrics renders them in Prometheus text format; /healthz answers 200 while
 * the worker's Redis connections are ready, 503 otherwise. */
#ifndef HQ_WORKER_METRICS_H
#define HQ_WORKER_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "common/err.h"
#include "common/limits.h"

/* Delivery outcomes: the one list, for the label outcome=... and the
 * "outcome" of attempt records alike (outcome.c decides and counts them). */
enum hq_metric_outcome {
    HQ_MO_DELIVERED = 0, /* 2xx */
    HQ_MO_RETRY,         /* failed, retry scheduled */
    HQ_MO_DEAD,          /* failed, dead-lettered (exhausted, blocked, invalid, endpoint gone) */
    HQ_MO_DEFERRED,      /* postponed: endpoint's queue congested (no attempt spent) */
    HQ_MO_PARKED,        /* an ordered endpoint's pair put in its line (no attempt) */
    HQ_MO_DUPLICATE,     /* an entry whose event id was claimed already: acked, not delivered */
    HQ_MO_COUNT
};

/* Their names: "delivered", "retry", "dead", "deferred", "duplicate". */
extern const char *const hq_metrics_outcome_names[HQ_MO_COUNT];

/* Error classes of failed attempts (label class=...). */
enum hq_metric_class {
    HQ_MC_HTTP_STATUS = 0, /* non-2xx answer (3xx included) */
    HQ_MC_TIMEOUT,
    HQ_MC_CONNECT, /* refused / unreachable */
    HQ_MC_DNS,
    HQ_MC_TLS,
    HQ_MC_NETWORK, /* reset, closed mid-response, send/recv errors */
    HQ_MC_BLOCKED, /* SSRF guard */
    HQ_MC_OTHER,
    HQ_MC_COUNT
};

/* Latency buckets (seconds) of the attempt latency histogram. */
#define HQ_LAT_BUCKETS 12
extern const double hq_metrics_lat_bounds[HQ_LAT_BUCKETS]; /* 0.005 ... 30 */

struct hq_metrics {
    atomic_ulong deliveries[HQ_MO_COUNT];    /* hookq_deliveries_total{outcome} */
    atomic_ulong failures[HQ_MC_COUNT];      /* hookq_attempt_failures_total{class} */
    atomic_ulong lat_bucket[HQ_LAT_BUCKETS]; /* hookq_attempt_duration_seconds_bucket
                                                (non-cumulative here) */
    atomic_ulong lat_count;
    atomic_ulong lat_sum_us;       /* sum of durations in microseconds */
    atomic_long in_flight;         /* hookq_in_flight */
    atomic_long queued;            /* hookq_queued (waiting for an endpoint slot) */
    atomic_ulong events_read;      /* hookq_events_read_total */
    atomic_ulong events_claimed;   /* hookq_events_claimed_total (XAUTOCLAIM) */
    atomic_ulong events_invalid;   /* hookq_events_invalid_total */
    atomic_ulong events_acked;     /* hookq_events_acked_total */
    atomic_ulong fenced;           /* hookq_outcomes_fenced_total (lost ownership) */
    atomic_ulong line_heads;       /* hookq_ordered_heads_sent_total (ordered.c, outcome.c) */
    atomic_long lines;             /* hookq_ordered_lines: lines waiting, as last seen */
    atomic_ulong breaker_opened;   /* hookq_breaker_transitions_total{to="open"} */
    atomic_ulong breaker_closed;   /* hookq_breaker_transitions_total{to="closed"} */
    atomic_ulong breaker_disabled; /* hookq_breaker_transitions_total{to="disabled"} */
    atomic_long eps_open;          /* hookq_endpoints_circuit_open (cached, as learned) */
    atomic_long eps_disabled;      /* hookq_endpoints_disabled (cached, as learned) */
    atomic_ulong redis_reconnects; /* hookq_redis_reconnects_total */
    atomic_long stream_lag;        /* hookq_stream_lag (XINFO GROUPS lag; -1 unknown) */
    atomic_long stream_pending;    /* hookq_stream_pending */
    atomic_int redis_ready;        /* 1 when both connections are ready (/healthz) */
    /* hookq_partition_lag{partition="<i>"}: each partition's lag (-1 unknown),
     * exported when there are several. Set up by the worker before the
     * metrics server starts, freed after it stopped. */
    atomic_long *part_lag;
    /* The retry lane of each partition (<b>:retries), exported always:
     * hookq_retry_lane_depth{partition}: entries in it (unread + unacknowledged);
     * hookq_retry_lane_lag_seconds{partition}: age of its oldest unread entry
     * (0 when none). -1 unknown. Same life as part_lag. */
    atomic_long *lane_depth;
    atomic_long *lane_lag_ms;
    /* hookq_duplicates_total{partition}: entries of a partition acknowledged as
     * duplicates (dedupe.c; their sum is deliveries_total{outcome="duplicate"}).
     * Same life as part_lag. */
    atomic_ulong *part_dups;
    unsigned nparts;
    /* hookq_deliveries_by_tenant_total{tenant}: attempts finished to the
     * endpoints of each of the first HQ_METRICS_TENANTS_MAX tenants seen; the
     * slot after them counts every later tenant as "other". Names are written
     * by the loop thread before ntenants publishes them (release/acquire). */
    char tenant_names[HQ_METRICS_TENANTS_MAX][HQ_TENANT_MAX + 1];
    atomic_int ntenants;
    atomic_ulong by_tenant[HQ_METRICS_TENANTS_MAX + 1];

    /* Rate limits (dispatch.c, ratelimit.c): totals over every limited
     * endpoint, and hookq_rate_limited_by_endpoint_total{endpoint,result} for
     * the first HQ_METRICS_RL_ENDPOINTS_MAX limited endpoints seen (then
     * "other"), published as the tenant names are. */
    atomic_ulong rl_throttled; /* hookq_rate_limit_throttled_total: waited in memory for tokens */
    atomic_ulong rl_deferred;  /* hookq_rate_limit_deferred_total: over the limit, deferred */
    atomic_ulong rl_leases;    /* hookq_rate_limit_leases_total: lease calls answered */
    char rl_names[HQ_METRICS_RL_ENDPOINTS_MAX][HQ_ENDPOINT_ID_MAX + 1];
    atomic_int nrl;
    atomic_ulong rl_by_ep[HQ_METRICS_RL_ENDPOINTS_MAX + 1][2]; /* [slot][0 throttled, 1 deferred] */

    atomic_ulong batches; /* hookq_batches_total: batches closed to be sent (batch.c) */
};

/* Allocates the per-partition gauges for n partitions (all -1); freed by hq_metrics_free_parts. */
void hq_metrics_alloc_parts(struct hq_metrics *m, unsigned n);
void hq_metrics_free_parts(struct hq_metrics *m);

void hq_metrics_init(struct hq_metrics *m);
/* The by-tenant slot of tenant ("" = none: -1), assigning the next free one
 * to a new tenant, HQ_METRICS_TENANTS_MAX ("other") when all are taken. Loop
 * thread only; O(slots), so callers keep the slot (per cached endpoint). */
int hq_metrics_tenant_slot(struct hq_metrics *m, const char *tenant);
/* The same for a rate-limited endpoint's id (ids outside [A-Za-z0-9_-]
 * count as "other"). */
int hq_metrics_rl_slot(struct hq_metrics *m, const char *endpoint_id);
/* Counts one throttled (deferred 0) or deferred (1) delivery of the endpoint in slot. */
static inline void hq_metrics_rl_count(struct hq_metrics *m, int slot, int deferred)
{
    atomic_fetch_add_explicit(deferred ? &m->rl_deferred : &m->rl_throttled, 1,
                              memory_order_relaxed);
    if (slot >= 0)
        atomic_fetch_add_explicit(&m->rl_by_ep[slot][deferred], 1, memory_order_relaxed);
}
/* Counts one finished attempt for slot (-1: none, nothing counted). */
static inline void hq_metrics_tenant_count(struct hq_metrics *m, int slot)
{
    if (slot >= 0)
        atomic_fetch_add_explicit(&m->by_tenant[slot], 1, memory_order_relaxed);
}
/* Records one finished attempt's latency. */
void hq_metrics_observe_latency(struct hq_metrics *m, uint64_t duration_us);

struct hq_metrics_server;
/* Starts serving /metrics and /healthz on addr "HOST:PORT" (":9090" = all
 * interfaces; "127.0.0.1:0" picks a port) in its own thread. m is borrowed
 * and must outlive the server. Returns NULL with err set on failure
 * ("--metrics: cannot listen on 127.0.0.1:80: Permission denied"). */
struct hq_metrics_server *hq_metrics_serve(const char *addr, struct hq_metrics *m,
                                           struct hq_err *err);
/* The bound port (useful with port 0). */
int hq_metrics_port(const struct hq_metrics_server *s);
void hq_metrics_stop(struct hq_metrics_server *s);

#endif
