/* Every bound and default in hookq, each with its reason (conventions.md A.6).
 * Options that override a default name it here; docs/operations.md lists them. */
#ifndef HQ_COMMON_LIMITS_H
#define HQ_COMMON_LIMITS_H

/* ---- Wire format (docs/wire-format.md) ------------------------------------ */
#define HQ_TYPE_MAX            128 /* event type length: fits an index key comfortably */
#define HQ_ID_MAX              128 /* event id length: becomes the webhook-id header */
#define HQ_ENDPOINT_ID_MAX     64  /* endpoint ids are generated "ep_" + 24 chars; 64 leaves room */
#define HQ_PAYLOAD_MAX_DEFAULT (1024 * 1024) /* default max body: Svix's limit is similar */
#define HQ_PAYLOAD_MAX_LIMIT                                                                       \
    (64 * 1024 * 1024)          /* --max-payload ceiling: a stream entry should stay small */
#define HQ_MSGPACK_DEPTH_MAX 8  /* nesting accepted by the decoder: the event map is flat */
#define HQ_EVENT_FIELDS_MAX  16 /* fields in a stream entry: 6 known, the rest is garbage */

/* ---- Endpoints -------------------------------------------------------------- */
#define HQ_URL_MAX           2048 /* common browser/server limit for URLs */
#define HQ_NAME_MAX          256  /* endpoint name */
#define HQ_DESCRIPTION_MAX   4096 /* endpoint description */
#define HQ_HEADERS_MAX       16   /* custom headers per endpoint */
#define HQ_HEADER_LINE_MAX   1024 /* "Name: value" of one custom header */
#define HQ_EVENT_FILTERS_MAX 64   /* event-type filters per endpoint */
#define HQ_SECRET_BYTES      32   /* whsec_ key size (Standard Webhooks recommends 24-64) */
#define HQ_LIST_PAGE         500  /* endpoints fetched per round trip when listing */

/* ---- Delivery ----------------------------------------------------------------- */
#define HQ_RESP_KEEP_MAX                4096 /* response body kept for the attempt record */
#define HQ_CONNECT_TIMEOUT_DEFAULT_MS   5000
#define HQ_TIMEOUT_DEFAULT_MS           15000
#define HQ_LOW_SPEED_BYTES              64 /* bytes/s under which an answer counts as stalled ... */
#define HQ_LOW_SPEED_SECS               10 /* ... for this long (slowloris guard) */
#define HQ_CONCURRENCY_DEFAULT          512   /* in-flight deliveries per worker */
#define HQ_ENDPOINT_CONCURRENCY_DEFAULT 32    /* in-flight deliveries per endpoint per worker */
#define HQ_CLAIM_MARGIN_MS              30000 /* default --claim-idle = total timeout + this */
#define HQ_CLAIM_MIN_MARGIN_MS          5000  /* --claim-idle must exceed total timeout + this */
#define HQ_READ_BLOCK_MS                2000 /* XREADGROUP BLOCK: short enough to notice a drain promptly */
#define HQ_READ_COUNT_MAX               256 /* XREADGROUP COUNT ceiling: bounds one reply's size */

/* ---- Retry policy (issue 4; Svix-like schedule spanning about a day) --------------- */
#define HQ_MAX_ATTEMPTS_DEFAULT    10
#define HQ_BACKOFF_BASE_DEFAULT_MS 30000
#define HQ_BACKOFF_FACTOR_DEFAULT  3
#define HQ_BACKOFF_MAX_DEFAULT_MS  (10LL * 3600 * 1000)
#define HQ_BACKOFF_JITTER_PCT      20 /* +-20 %: spreads a recovered outage's retries */
#define HQ_ATTEMPT_TTL_DEFAULT_MS  (72LL * 3600 * 1000) /* attempt records kept for `event show` */
#define HQ_ATTEMPTS_KEPT_MAX       50 /* attempt records kept per event: bounds the list */

/* ---- Redis client ---------------------------------------------------------------- */
#define HQ_REDIS_CONNECT_TIMEOUT_MS 5000
#define HQ_REDIS_COMMAND_TIMEOUT_MS 10000 /* a reply later than this means the server is stuck */
#define HQ_REDIS_BLOCK_MARGIN_MS    5000  /* BLOCK + this before the read is declared lost */
#define HQ_RECONNECT_MIN_MS         100
#define HQ_RECONNECT_MAX_MS         5000 /* capped backoff: no busy loop, prompt recovery */

/* ---- Scheduler ---------------------------------------------------------------------- */
#define HQ_SCHED_INTERVAL_DEFAULT_MS 1000
#define HQ_SCHED_BATCH_DEFAULT       1000

#endif
