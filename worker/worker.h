/* hookq worker: one process, one libuv loop, delivering events from the
 * stream through the consumer group (docs/architecture.md).
 * Scale by running more processes. */
#ifndef HQ_WORKER_WORKER_H
#define HQ_WORKER_WORKER_H

#include "common/backoff.h"
#include "common/err.h"
#include "common/layout.h"
#include "common/netguard.h"
#include "common/redis_url.h"

struct hq_worker_config {
    struct hq_redis_url redis;      /* parsed --redis-url */
    const char *redis_url;          /* as given, for messages (password never printed) */
    const char *prefix;             /* --prefix */
    const struct hq_layout *layout; /* the deployment's key layout (borrowed for the run) */
    char consumer[128];             /* --consumer, default <hostname>-<pid> */
    long long concurrency;          /* --concurrency: in-flight deliveries */
    long long endpoint_concurrency; /* --endpoint-concurrency: per endpoint */
    long long max_connections;      /* --max-connections: keep-alive connections kept (> 0) */
    long long connect_timeout_ms;   /* --connect-timeout */
    long long timeout_ms;           /* --timeout: total per attempt */
    long long claim_idle_ms;        /* --claim-idle: reclaim entries idle this long */
    long long max_payload;          /* --max-payload */
    long long attempt_ttl_ms;       /* --attempt-ttl: attempt records kept this long */
    long long endpoint_cache_ms;    /* --endpoint-cache: how long endpoint data is reused */
    long long dead_maxlen;          /* --dead-maxlen: 0 = unbounded */
    long long defer_ms;             /* --defer: postponement of a congested endpoint's deliveries */
    long long idle_close_ms;        /* --idle-close: close keep-alive connections after this idle */
    long long breaker_failures;     /* --breaker-failures: consecutive failures that open */
    long long breaker_ratio;        /* --breaker-ratio: % of failures in the window (0 off) */
    long long breaker_window_ms;    /* --breaker-window */
    long long breaker_min_attempts; /* --breaker-min-attempts: in the window, for the ratio */
    long long breaker_probe_ms;     /* --breaker-probe-interval */
    long long disable_after_ms;     /* --disable-after: no success this long disables (0 never) */
    long long exhausted_every_ms;   /* --exhausted-interval: hookq.delivery.exhausted (0 never) */
    long long failing_after_ms;     /* --failing-after: hookq.endpoint.failing (0 never) */
    int disable_on_gone;            /* --disable-on-gone on|off: a 410 disables at once */
    struct hq_policy policy;        /* retry policy (HOOKQ_MAX_ATTEMPTS, HOOKQ_BACKOFF_*) */
    struct hq_netguard guard;       /* SSRF rules */
    const char *proxy;              /* --proxy: NULL = no proxy, environment ignored */
    const char *ca_file;            /* --ca-file: extra CA bundle for private CAs */
    const char *metrics;            /* --metrics HOST:PORT or NULL */
    long long retain_ms;            /* --retain: keep delivered payloads this long (0 off) */
    long long retain_max_bytes;     /* --retain-max-bytes: over all partitions */
    long long dedupe_window_ms;     /* --dedupe-window: an event id delivered once per (0 off) */
};

/* Runs the worker until SIGTERM/SIGINT drained it (returns 0) or a fatal
 * start-up error (returns < 0 with err set). A second signal exits at once.
 * An untagged worker that sees a migration begin (common/layout_store.h)
 * drains like on SIGTERM, reports itself paused and returns HQ_EAGAIN: the
 * caller waits for the migration's end and runs again on the new layout. */
int hq_worker_run(const struct hq_worker_config *cfg, struct hq_err *err);

#endif
