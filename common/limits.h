/* Every bound and default in hookq, each with its reason, in one place.
 * Options that override a default name it here; docs/operations.md lists them. */
#ifndef HQ_COMMON_LIMITS_H
#define HQ_COMMON_LIMITS_H

/* ---- Wire format (docs/wire-format.md) ------------------------------------ */
#define HQ_TYPE_MAX            128 /* event type length: fits an index key comfortably */
#define HQ_ID_MAX              128 /* event id length: becomes the webhook-id header */
#define HQ_ENDPOINT_ID_MAX     64  /* endpoint ids are generated "ep_" + 24 chars; 64 leaves room */
#define HQ_PAYLOAD_MAX_DEFAULT (1024 * 1024) /* default max body: Svix's limit is similar */
#define HQ_PAYLOAD_MAX_LIMIT                                                                       \
    (64 * 1024 * 1024)            /* --max-payload ceiling: a stream entry should stay small */
#define HQ_MSGPACK_DEPTH_MAX 8    /* nesting accepted by the decoder: the event map is flat */
#define HQ_EVENT_FIELDS_MAX  16   /* fields in a stream entry: 6 known, the rest is garbage */
#define HQ_ATTEMPT_FIELD_MAX 1000 /* internal "attempt" field: above any sane --max-attempts */
#define HQ_EVENT_ECHO_MAX    40   /* bytes of a bad value echoed in an error: no huge messages */

/* ---- Endpoints -------------------------------------------------------------- */
#define HQ_URL_MAX               2048 /* common browser/server limit for URLs */
#define HQ_NAME_MAX              256  /* endpoint name */
#define HQ_DESCRIPTION_MAX       4096 /* endpoint description */
#define HQ_HEADERS_MAX           16   /* custom headers per endpoint */
#define HQ_HEADER_LINE_MAX       1024 /* "Name: value" of one custom header */
#define HQ_EVENT_FILTERS_MAX     64   /* event-type filters per endpoint */
#define HQ_SECRET_BYTES          32   /* whsec_ key size (Standard Webhooks recommends 24-64) */
#define HQ_LIST_PAGE             500  /* endpoints fetched per round trip when listing */
#define HQ_ENDPOINT_ATTEMPTS_MAX 100  /* per-endpoint --max-attempts ceiling: 100 spans weeks */

/* ---- Tenants and per-endpoint retry policy (docs/flow-control.md) ------------ */
#define HQ_ORDER_KEY_MAX        128      /* an event's ordering key: part of a Redis key name */
#define HQ_TENANT_MAX           64       /* tenant (customer/account) id: fits a key and a label */
#define HQ_RESERVED_TYPE_PREFIX "hookq." /* types hookq emits itself (operational webhooks) */
#define HQ_BACKOFF_SPAN_MAX_MS  (86400000LL * 30)  /* endpoint --backoff-base/-max: as deployment */
#define HQ_RETRY_WINDOW_MAX_MS  (86400000LL * 366) /* endpoint --retry-window: a year is plenty */
#define HQ_METRICS_TENANTS_MAX  100 /* by-tenant label values, then "other": bounded series */

/* ---- Rate limits (docs/flow-control.md; the lease's own bounds: common/ratelimit.h) ---- */
#define HQ_METRICS_RL_ENDPOINTS_MAX 100 /* rate-limited endpoints labelled, then "other" */

/* ---- Delivery ----------------------------------------------------------------- */
#define HQ_RESP_KEEP_MAX                4096 /* response body kept for the attempt record */
#define HQ_DNS_CACHE_SECS               60   /* DNS answers reused this long (libcurl's default) */
#define HQ_DNS_PRUNE_INTERVAL_MS        1000 /* libcurl's DNS cache is pruned at most this often */
#define HQ_CURL_BUFFER_SIZE             1024 /* libcurl's receive buffer per transfer (default 16 KiB) */
#define HQ_CONNECT_TIMEOUT_DEFAULT_MS   5000
#define HQ_TIMEOUT_DEFAULT_MS           15000
#define HQ_LOW_SPEED_BYTES              64 /* bytes/s under which an answer counts as stalled ... */
#define HQ_LOW_SPEED_SECS               10 /* ... for this long (slowloris guard) */
#define HQ_CONCURRENCY_DEFAULT          512 /* in-flight deliveries per worker */
#define HQ_ENDPOINT_CONCURRENCY_DEFAULT 32  /* in-flight deliveries per endpoint per worker */
#define HQ_CONNECTIONS_PER_SLOT         4   /* default --max-connections per --concurrency slot */
#define HQ_CONNECTIONS_PER_SHARD        256 /* connections per libcurl multi handle (curl_uv.h) */
#define HQ_SHARDS_MAX                   64  /* multi handles per worker at most */
#define HQ_FD_RESERVE                   128 /* open files kept for Redis, metrics, logs, resolver */
#define HQ_CLAIM_MARGIN_MS              30000 /* default --claim-idle = total timeout + this */
#define HQ_CLAIM_MIN_MARGIN_MS          5000  /* --claim-idle must exceed total timeout + this */
#define HQ_READ_BLOCK_MS                2000 /* XREADGROUP BLOCK: short enough to notice a drain promptly */
#define HQ_READ_COUNT_MAX               256 /* XREADGROUP COUNT ceiling: bounds one reply's size */
/* The retry lane's read share (worker/consumer.c): while both lanes of a
 * partition have a backlog, fresh events get this percentage of the free
 * capacity (rounded up) and retries the rest, at least one entry every
 * HQ_LANE_RETRY_EVERY reads. */
#define HQ_LANE_FRESH_PCT   75
#define HQ_LANE_RETRY_EVERY 4
/* Entries read from the retry lanes and not yet settled are at most this
 * percentage of --concurrency (at least 1): the rest stays free for fresh
 * events during a retry storm, whatever the retries' endpoints take. */
#define HQ_LANE_RETRY_HOLD_PCT 75
#define HQ_ENDPOINT_CACHE_DEFAULT_MS                                                               \
    60000                        /* hand edits of endpoint hashes reach workers within this */
#define HQ_DEFER_DEFAULT_MS 5000 /* a congested endpoint's deliveries come back after ~this */
/* Circuit breaker defaults (hookq worker --breaker-*; docs/flow-control.md). */
#define HQ_BREAKER_FAILURES_DEFAULT     10    /* consecutive failures that open it */
#define HQ_BREAKER_RATIO_DEFAULT        50    /* % of a window's attempts failed opens it */
#define HQ_BREAKER_WINDOW_DEFAULT_MS    60000 /* the ratio's window */
#define HQ_BREAKER_MIN_ATTEMPTS_DEFAULT 20    /* attempts in the window before the ratio counts */
#define HQ_BREAKER_PROBE_DEFAULT_MS     30000 /* one probe this often while open */
#define HQ_API_PORT_DEFAULT             8480  /* hookq api --listen 127.0.0.1:8480 */
#define HQ_BREAKER_FEED_MAX             10000 /* transitions kept in <reg>:breakers (~MAXLEN) */
#define HQ_TYPES_SEEN_MAX               10000 /* event types kept in <reg>:types */
#define HQ_BREAKER_FEED_READ            256   /* read per tick by each worker */
#define HQ_DISABLE_AFTER_DEFAULT_MS     (5LL * 86400000) /* no success this long disables (Svix) */
#define HQ_FAILING_AFTER_DEFAULT_MS     86400000LL       /* hookq.endpoint.failing after this */
/* The breaker's bounds (the worker's flags and the per-endpoint overrides). */
#define HQ_BREAKER_FAILURES_MAX  1000000
#define HQ_BREAKER_WINDOW_MIN_MS 1000
#define HQ_BREAKER_WINDOW_MAX_MS 86400000LL
#define HQ_BREAKER_PROBE_MIN_MS  100
#define HQ_BREAKER_PROBE_MAX_MS  86400000LL
/* hookq.delivery.exhausted: at most one per endpoint per interval (hookq
 * worker --exhausted-interval), with a sample of this many event ids; one
 * exhausted.lua call carries at most HQ_EXHAUSTED_CALL_MAX endpoints. */
#define HQ_EXHAUSTED_INTERVAL_DEFAULT_MS 60000
#define HQ_EXHAUSTED_SAMPLE              5
#define HQ_EXHAUSTED_CALL_MAX            64
#define HQ_IDLE_CLOSE_DEFAULT_MS                                                                   \
    30000 /* an idle worker closes its keep-alive connections after this:                          \
           * curl prunes only at the next transfer */

/* ---- Retry policy (a Svix-like schedule spanning about a day) ----------------------- */
#define HQ_MAX_ATTEMPTS_DEFAULT    10
#define HQ_BACKOFF_BASE_DEFAULT_MS 30000
#define HQ_BACKOFF_FACTOR_DEFAULT  3
#define HQ_BACKOFF_MAX_DEFAULT_MS  (10LL * 3600 * 1000)
#define HQ_BACKOFF_JITTER_PCT      20 /* +-20 %: spreads a recovered outage's retries */
#define HQ_ATTEMPT_TTL_DEFAULT_MS  (72LL * 3600 * 1000) /* attempt records kept for `event show` */
#define HQ_ATTEMPTS_KEPT_MAX       50 /* attempt records kept per event: bounds the list */
#define HQ_RECENT_ATTEMPTS_DEFAULT 20 /* an endpoint's recent attempts: records answered */
#define HQ_RECENT_ATTEMPTS_MAX     100
#define HQ_RECENT_SCAN_BUDGET                                                                      \
    20000 /* bucket fields one recent-attempts read looks at, all partitions together (plus at     \
           * most one HSCAN reply): bounds the request whatever the data size */
#define HQ_RETRY_AFTER_MAX_S                                                                       \
    (366LL * 86400)                /* Retry-After seconds saturate here (no overflow);             \
                                    * the policy's --backoff-max clamps further */
#define HQ_RETRY_AFTER_LEN_MAX 64  /* longest Retry-After value parsed: a date is 29 chars */
#define HQ_BACKOFF_FACTOR_MAX  100 /* --backoff-factor ceiling: 100x per failure is absurd */

/* ---- Redis client ---------------------------------------------------------------- */
#define HQ_REDIS_CONNECT_TIMEOUT_MS 5000
#define HQ_REDIS_COMMAND_TIMEOUT_MS 10000 /* a reply later than this means the server is stuck */
#define HQ_REDIS_BLOCK_MARGIN_MS    5000  /* BLOCK + this before the read is declared lost */
#define HQ_RECONNECT_MIN_MS         100
#define HQ_RECONNECT_MAX_MS         5000  /* capped backoff: no busy loop, prompt recovery */
#define HQ_REDIS_DOWN_LOG_EVERY_MS  10000 /* while down: one warn line per this, not per retry */

/* ---- Scheduler ---------------------------------------------------------------------- */
#define HQ_SCHED_INTERVAL_DEFAULT_MS 1000
#define HQ_SCHED_BATCH_DEFAULT       1000
#define HQ_SCHED_BATCH_MAX           10000 /* one move_due.lua call blocks Redis: ~10k moves is ~0.1 s */
#define HQ_SCHED_INTERVAL_MAX_MS     60000 /* longest sleep: a new earlier retry waits at most this */
/* The retry lane (<b>:retries): the scheduler moves due retries only while it
 * holds fewer than this many batches (unread + unacknowledged), so a storm
 * stays in the zset, in due order; while held back it looks again this often. */
#define HQ_SCHED_LANE_BATCHES    4
#define HQ_SCHED_LANE_WAIT_MS    20
#define HQ_DEAD_RAW_MAX          65536 /* raw bytes kept in a dead letter (as for invalid events) */
#define HQ_DLQ_PAGE              500   /* dead letters fetched per round trip (bounded memory) */
#define HQ_DLQ_LIMIT_DEFAULT     50    /* `dlq list` entries shown unless --limit */
#define HQ_DLQ_LIMIT_MAX         100000 /* `dlq list --limit` ceiling: a listing, not an export */
#define HQ_DLQ_IDS_MAX           10000  /* entry ids on one command line (argv is bounded anyway) */
#define HQ_JSON_PRETTY_DEPTH_MAX 64     /* deeper payloads are printed raw: bounded recursion */
#define HQ_STATS_DEAD_SCAN_MAX                                                                     \
    100000 /* `stats` counts by reason/endpoint over at most                                       \
            * the newest this many dead letters: 200 pages of                                      \
            * HQ_DLQ_PAGE, so a look stays quick */

/* ---- Metrics server and `hookq up` ------------------------------------------------ */
#define HQ_METRICS_CONN_MAX    16          /* scrapers are few; bounds the metrics thread's work */
#define HQ_METRICS_TIMEOUT_S   10          /* idle scrape connections are closed after this */
#define HQ_METRICS_BODY_MAX    (64 * 1024) /* rendered /metrics text: ~60 series fit easily */
#define HQ_UP_START_TIMEOUT_MS 10000       /* private redis-server must answer PING within this */
#define HQ_UP_STOP_TIMEOUT_MS  15000       /* a child that ignores SIGTERM this long gets SIGKILL */
#define HQ_UP_PRODUCE_EVERY_MS 2000        /* demo event cadence: readable, not a flood */
#define HQ_UP_PING_EVERY_MS    50   /* start-up: how often the private redis-server is asked PING */
#define HQ_UP_LINE_MAX         4096 /* a child's output line passed through; longer ones are split */
#define HQ_DEMO_BODY_MAX       (1024 * 1024) /* demo receiver request body: the default max payload */
#define HQ_DEMO_CONN_MAX       128 /* demo receiver: above the worker's per-endpoint concurrency */
#define HQ_DEMO_IDS_TRACKED    256 /* demo receiver: ids whose attempts are numbered (ring) */
#define HQ_DEMO_TOLERANCE_S    300 /* signature timestamp tolerance (Standard Webhooks: 5 min) */

/* ---- Signing (Standard Webhooks) ------------------------------------------------------ */
#define HQ_KEY_BYTES_MIN    16   /* shorter signing keys are refused: too weak for HMAC-SHA256 */
#define HQ_SIGN_TOLERANCE_S 300  /* `hookq verify` timestamp tolerance (5 min, as the spec says) */
#define HQ_SIG_HEADER_MAX   4096 /* webhook-signature value accepted by `hookq verify` */

/* HOOKQ_RETAIN_MAX_BYTES default: payload and field bytes kept for resend over all
 * partitions (docs/resend.md); Redis holds them in about as much memory. */
#define HQ_RETAIN_MAX_BYTES_DEFAULT (1024LL * 1024 * 1024)

/* Idempotent events (worker/dedupe.c): an event id is delivered at most once per
 * window; 0 turns it off. The default is the 24 h; 30 days at most (a
 * claim costs ~120 bytes of Redis memory per id, held for the window to 1.5
 * windows: docs/wire-format.md). */
#define HQ_DEDUPE_WINDOW_DEFAULT_MS (24LL * 3600 * 1000)
#define HQ_DEDUPE_WINDOW_MAX_MS     (30LL * 24 * 3600 * 1000)
/* Redis memory per claimed id, a field of a claim generation (claim_ids.lua):
 * 120-122 B measured (36-char ids, used_memory, 100,000 and 1,000,000 claims) */
#define HQ_DEDUPE_ID_BYTES 125
/* Claims are held for at most the window times this (generations G = window / 2). */
#define HQ_DEDUPE_HOLD_MAX 1.5

#endif
