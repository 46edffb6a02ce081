/* Worker metrics: the counters' initialisation and latency observation (loop
 * thread), and the /metrics + /healthz HTTP server (libmicrohttpd, its own
 * polling thread). Owns the server and its listening socket; borrows the
 * struct hq_metrics it renders. Does not decide what is counted: the worker's
 * files bump the counters where things happen.
 *
 * The listening socket is bound here rather than by libmicrohttpd so that a
 * failure names the errno ("Address already in use", "Permission denied");
 * MHD_start_daemon only says NULL. */
#include "worker/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/limits.h"

const double hq_metrics_lat_bounds[HQ_LAT_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                      0.5,   1,    2.5,   5,    10,  30};

struct hq_metrics_server {
    struct MHD_Daemon *mhd; /* owned; stopped (and its socket closed) by hq_metrics_stop */
    int port;               /* the bound port */
    struct hq_metrics *m;   /* borrowed; outlives the server */
};

/* ---- Counters ------------------------------------------------------------------ */

void hq_metrics_alloc_parts(struct hq_metrics *m, unsigned n)
{
    m->part_lag = hq_calloc(n, sizeof(*m->part_lag));
    m->lane_depth = hq_calloc(n, sizeof(*m->lane_depth));
    m->lane_lag_ms = hq_calloc(n, sizeof(*m->lane_lag_ms));
    m->part_dups = hq_calloc(n, sizeof(*m->part_dups));
    m->nparts = n;
    for (unsigned i = 0; i < n; i++) {
        atomic_init(&m->part_dups[i], 0);
        atomic_init(&m->part_lag[i], -1);
        atomic_init(&m->lane_depth[i], -1);
        atomic_init(&m->lane_lag_ms[i], -1);
    }
}

void hq_metrics_free_parts(struct hq_metrics *m)
{
    free(m->part_lag);
    free(m->lane_depth);
    free(m->lane_lag_ms);
    free(m->part_dups);
    m->part_lag = m->lane_depth = m->lane_lag_ms = NULL;
    m->part_dups = NULL;
    m->nparts = 0;
}

void hq_metrics_init(struct hq_metrics *m)
{
    m->part_lag = NULL; /* the worker sets these (hq_metrics_alloc_parts) */
    m->lane_depth = m->lane_lag_ms = NULL;
    m->part_dups = NULL;
    m->nparts = 0;
    for (int i = 0; i < HQ_MO_COUNT; i++)
        atomic_init(&m->deliveries[i], 0);
    for (int i = 0; i < HQ_MC_COUNT; i++)
        atomic_init(&m->failures[i], 0);
    for (int i = 0; i < HQ_LAT_BUCKETS; i++)
        atomic_init(&m->lat_bucket[i], 0);
    atomic_init(&m->lat_count, 0);
    atomic_init(&m->lat_sum_us, 0);
    atomic_init(&m->in_flight, 0);
    atomic_init(&m->queued, 0);
    atomic_init(&m->events_read, 0);
    atomic_init(&m->events_claimed, 0);
    atomic_init(&m->events_invalid, 0);
    atomic_init(&m->events_acked, 0);
    atomic_init(&m->fenced, 0);
    atomic_init(&m->line_heads, 0);
    atomic_init(&m->lines, 0);
    atomic_init(&m->breaker_opened, 0);
    atomic_init(&m->breaker_closed, 0);
    atomic_init(&m->eps_open, 0);
    atomic_init(&m->eps_disabled, 0);
    atomic_init(&m->breaker_disabled, 0);
    atomic_init(&m->redis_reconnects, 0);
    atomic_init(&m->stream_lag, -1); /* unknown until the first XINFO GROUPS */
    atomic_init(&m->stream_pending, 0);
    atomic_init(&m->ntenants, 0);
    atomic_init(&m->rl_throttled, 0);
    atomic_init(&m->rl_deferred, 0);
    atomic_init(&m->rl_leases, 0);
    atomic_init(&m->batches, 0);
    atomic_init(&m->nrl, 0);
    for (int i = 0; i <= HQ_METRICS_RL_ENDPOINTS_MAX; i++)
        for (int j = 0; j < 2; j++)
            atomic_init(&m->rl_by_ep[i][j], 0);
    for (int i = 0; i <= HQ_METRICS_TENANTS_MAX; i++)
        atomic_init(&m->by_tenant[i], 0);
    atomic_init(&m->redis_ready, 0);
}

void hq_metrics_observe_latency(struct hq_metrics *m, uint64_t duration_us)
{
    /* Buckets are stored non-cumulative (one increment per observation);
     * rendering sums them. Durations above the last bound only reach +Inf,
     * which is the count. */
    for (int i = 0; i < HQ_LAT_BUCKETS; i++) {
        if ((double)duration_us <= hq_metrics_lat_bounds[i] * 1e6) {
            atomic_fetch_add_explicit(&m->lat_bucket[i], 1, memory_order_relaxed);
            break;
        }
    }
    atomic_fetch_add_explicit(&m->lat_sum_us, duration_us, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->lat_count, 1, memory_order_relaxed);
}

/* ---- Rendering (Prometheus text exposition format 0.0.4) ---------------------------- */

const char *const hq_metrics_outcome_names[HQ_MO_COUNT] = {"delivered", "retry",  "dead",
                                                           "deferred",  "parked", "duplicate"};
static const char *const class_names[HQ_MC_COUNT] = {"http_status", "timeout", "connect", "dns",
                                                     "tls",         "network", "blocked", "other"};

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

static int head(struct hq_buf *b, const char *name, const char *type, const char *help)
{
    return hq_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int counter(struct hq_buf *b, const char *name, const char *help, unsigned long v)
{
    int rc = head(b, name, "counter", help);
    return rc ? rc : hq_buf_printf(b, "%s %lu\n", name, v);
}

static int gauge(struct hq_buf *b, const char *name, const char *help, long v)
{
    int rc = head(b, name, "gauge", help);
    return rc ? rc : hq_buf_printf(b, "%s %ld\n", name, v);
}

static int render_histogram(struct hq_buf *b, struct hq_metrics *m)
{
    static const char name[] = "hookq_attempt_duration_seconds";
    int rc = head(b, name, "histogram", "Duration of delivery attempts.");
    /* The count is read first and caps the cumulative buckets: the loop thread
     * may observe while we read, and Prometheus requires every bucket <= +Inf
     * == _count within one scrape. */
    unsigned long count = LOAD(m->lat_count);
    unsigned long sum_us = LOAD(m->lat_sum_us);
    unsigned long cum = 0;
    for (int i = 0; rc == 0 && i < HQ_LAT_BUCKETS; i++) {
        cum += LOAD(m->lat_bucket[i]);
        if (cum > count)
            cum = count;
        rc = hq_buf_printf(b, "%s_bucket{le=\"%g\"} %lu\n", name, hq_metrics_lat_bounds[i], cum);
    }
    if (rc == 0)
        rc = hq_buf_printf(b, "%s_bucket{le=\"+Inf\"} %lu\n%s_sum %lu.%06lu\n%s_count %lu\n", name,
                           count, name, sum_us / 1000000, sum_us % 1000000, name, count);
    return rc;
}

int hq_metrics_tenant_slot(struct hq_metrics *m, const char *tenant)
{
    if (!tenant || !tenant[0])
        return -1;
    int n = atomic_load_explicit(&m->ntenants, memory_order_relaxed); /* only this thread writes */
    for (int i = 0; i < n; i++) {
        if (strcmp(m->tenant_names[i], tenant) == 0)
            return i;
    }
    if (n == HQ_METRICS_TENANTS_MAX)
        return HQ_METRICS_TENANTS_MAX;
    snprintf(m->tenant_names[n], sizeof(m->tenant_names[n]), "%s", tenant);
    atomic_store_explicit(&m->ntenants, n + 1, memory_order_release);
    return n;
}

int hq_metrics_rl_slot(struct hq_metrics *m, const char *id)
{
    int n = atomic_load_explicit(&m->nrl, memory_order_relaxed); /* only this thread writes */
    for (int i = 0; i < n; i++) {
        if (strcmp(m->rl_names[i], id) == 0)
            return i;
    }
    if (n == HQ_METRICS_RL_ENDPOINTS_MAX || !id[0] || strlen(id) > HQ_ENDPOINT_ID_MAX ||
        strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
            strlen(id))
        return HQ_METRICS_RL_ENDPOINTS_MAX;
    snprintf(m->rl_names[n], sizeof(m->rl_names[n]), "%s", id);
    atomic_store_explicit(&m->nrl, n + 1, memory_order_release);
    return n;
}

static int render_rate_limits(struct hq_buf *b, struct hq_metrics *m)
{
    static const char name[] = "hookq_rate_limited_by_endpoint_total";
    static const char *const result[2] = {"throttled", "deferred"};
    int rc = counter(b, "hookq_rate_limit_throttled_total",
                     "Deliveries of rate-limited endpoints that waited in memory for tokens.",
                     LOAD(m->rl_throttled));
    if (rc == 0)
        rc = counter(b, "hookq_rate_limit_deferred_total",
                     "Deliveries over an endpoint's rate limit deferred to the retry set "
                     "(no attempt spent).",
                     LOAD(m->rl_deferred));
    if (rc == 0)
        rc = counter(b, "hookq_rate_limit_leases_total",
                     "Rate-limit lease calls answered (one per home partition per tick at most).",
                     LOAD(m->rl_leases));
    int n = atomic_load_explicit(&m->nrl, memory_order_acquire);
    if (rc != 0 || n == 0)
        return rc;
    rc = head(b, name, "counter",
              "Throttled and deferred deliveries of each rate-limited endpoint (the first 100 "
              "seen; later ones as other).");
    for (int i = 0; rc == 0 && i <= n; i++) {
        if (i == n && n < HQ_METRICS_RL_ENDPOINTS_MAX)
            break;
        const char *ep = i < n ? m->rl_names[i] : "other";
        for (int j = 0; rc == 0 && j < 2; j++)
            rc = hq_buf_printf(b, "%s{endpoint=\"%s\",result=\"%s\"} %lu\n", name, ep, result[j],
                               LOAD(m->rl_by_ep[i < n ? i : HQ_METRICS_RL_ENDPOINTS_MAX][j]));
    }
    return rc;
}

/* Tenant names are [A-Za-z0-9_.:-] (validated): nothing to escape in a label. */
static int render_by_tenant(struct hq_buf *b, struct hq_metrics *m)
{
    static const char name[] = "hookq_deliveries_by_tenant_total";
    int n = atomic_load_explicit(&m->ntenants, memory_order_acquire);
    if (n == 0)
        return 0;
    int rc = head(b, name, "counter",
                  "Delivery attempts finished to a tenant's endpoints (the first 100 tenants seen; "
                  "later ones as other).");
    for (int i = 0; rc == 0 && i < n; i++)
        rc = hq_buf_printf(b, "%s{tenant=\"%s\"} %lu\n", name, m->tenant_names[i],
                           LOAD(m->by_tenant[i]));
    if (rc == 0 && n == HQ_METRICS_TENANTS_MAX)
        rc = hq_buf_printf(b, "%s{tenant=\"other\"} %lu\n", name,
                           LOAD(m->by_tenant[HQ_METRICS_TENANTS_MAX]));
    return rc;
}

/* Renders every metric into b. 0 or HQ_ETOOBIG (HQ_METRICS_BODY_MAX). */
static int render(struct hq_buf *b, struct hq_metrics *m)
{
    int rc = head(
        b, "hookq_deliveries_total", "counter",
        "Deliveries finished, by outcome (delivered, retry scheduled, dead-lettered, deferred, duplicate: an entry whose event id was delivered already, acked and not delivered).");
    for (int i = 0; rc == 0 && i < HQ_MO_COUNT; i++)
        rc = hq_buf_printf(b, "hookq_deliveries_total{outcome=\"%s\"} %lu\n",
                           hq_metrics_outcome_names[i], LOAD(m->deliveries[i]));
    if (rc == 0)
        rc = head(b, "hookq_attempt_failures_total", "counter",
                  "Failed delivery attempts, by error class.");
    for (int i = 0; rc == 0 && i < HQ_MC_COUNT; i++)
        rc = hq_buf_printf(b, "hookq_attempt_failures_total{class=\"%s\"} %lu\n", class_names[i],
                           LOAD(m->failures[i]));
    if (rc == 0)
        rc = render_histogram(b, m);
    if (rc == 0)
        rc = counter(b, "hookq_events_read_total", "Stream entries read through the group.",
                     LOAD(m->events_read));
    if (rc == 0)
        rc = counter(b, "hookq_events_claimed_total",
                     "Stream entries reclaimed from dead consumers (XAUTOCLAIM).",
                     LOAD(m->events_claimed));
    if (rc == 0)
        rc = counter(b, "hookq_events_invalid_total",
                     "Stream entries that failed validation (dead-lettered).",
                     LOAD(m->events_invalid));
    if (rc == 0)
        rc = counter(b, "hookq_events_acked_total", "Stream entries acknowledged.",
                     LOAD(m->events_acked));
    if (rc == 0)
        rc = counter(b, "hookq_batches_total",
                     "Batches of events built to be sent as one request (--batch).",
                     LOAD(m->batches));
    if (rc == 0)
        rc = counter(b, "hookq_outcomes_fenced_total",
                     "Outcomes discarded because another consumer owned the entry.",
                     LOAD(m->fenced));
    if (rc == 0)
        rc = counter(b, "hookq_ordered_heads_sent_total",
                     "Heads of ordered endpoints' lines this worker sent to the retry lanes.",
                     LOAD(m->line_heads));
    if (rc == 0)
        rc = gauge(b, "hookq_ordered_lines",
                   "Lines of ordered endpoints holding events, all partitions (last claim).",
                   LOAD(m->lines));
    if (rc == 0)
        rc = head(b, "hookq_breaker_transitions_total", "counter",
                  "Circuit breaker state changes this worker made, by new state.");
    if (rc == 0)
        rc = hq_buf_printf(b,
                           "hookq_breaker_transitions_total{to=\"open\"} %lu\n"
                           "hookq_breaker_transitions_total{to=\"closed\"} %lu\n"
                           "hookq_breaker_transitions_total{to=\"disabled\"} %lu\n",
                           LOAD(m->breaker_opened), LOAD(m->breaker_closed),
                           LOAD(m->breaker_disabled));
    if (rc == 0)
        rc = gauge(b, "hookq_endpoints_circuit_open",
                   "Endpoints this worker knows with an open or half-open circuit breaker.",
                   LOAD(m->eps_open));
    if (rc == 0)
        rc = gauge(b, "hookq_endpoints_disabled",
                   "Endpoints this worker knows disabled (by hand or by the breaker).",
                   LOAD(m->eps_disabled));
    if (rc == 0)
        rc = counter(b, "hookq_redis_reconnects_total", "Redis reconnections.",
                     LOAD(m->redis_reconnects));
    if (rc == 0)
        rc = gauge(b, "hookq_in_flight", "Delivery attempts in flight.", LOAD(m->in_flight));
    if (rc == 0)
        rc = gauge(b, "hookq_queued", "Deliveries waiting for an endpoint slot.", LOAD(m->queued));
    if (rc == 0)
        rc = gauge(b, "hookq_stream_lag",
                   "Entries not yet read by the group (XINFO GROUPS lag; -1 unknown).",
                   LOAD(m->stream_lag));
    if (rc == 0)
        rc = gauge(b, "hookq_stream_pending", "Entries read but not acknowledged by the group.",
                   LOAD(m->stream_pending));
    if (rc == 0 && m->nparts > 1) {
        rc = head(b, "hookq_partition_lag", "gauge",
                  "Entries of one partition's stream not yet read by the group (-1 unknown).");
        for (unsigned i = 0; rc == 0 && i < m->nparts; i++)
            rc = hq_buf_printf(b, "hookq_partition_lag{partition=\"%u\"} %ld\n", i,
                               (long)LOAD(m->part_lag[i]));
    }
    if (rc == 0 && m->nparts > 0) {
        rc = head(b, "hookq_retry_lane_depth", "gauge",
                  "Entries in a partition's retry lane, unread or unacknowledged (-1 unknown).");
        for (unsigned i = 0; rc == 0 && i < m->nparts; i++)
            rc = hq_buf_printf(b, "hookq_retry_lane_depth{partition=\"%u\"} %ld\n", i,
                               (long)LOAD(m->lane_depth[i]));
    }
    if (rc == 0 && m->nparts > 0) {
        rc = head(
            b, "hookq_retry_lane_lag_seconds", "gauge",
            "Age of the oldest unread entry of a partition's retry lane (0 none, -1 unknown).");
        for (unsigned i = 0; rc == 0 && i < m->nparts; i++) {
            long ms = (long)LOAD(m->lane_lag_ms[i]);
            rc =
                ms < 0
                    ? hq_buf_printf(b, "hookq_retry_lane_lag_seconds{partition=\"%u\"} -1\n", i)
                    : hq_buf_printf(b, "hookq_retry_lane_lag_seconds{partition=\"%u\"} %ld.%03ld\n",
                                    i, ms / 1000, ms % 1000);
        }
    }
    if (rc == 0 && m->nparts > 0) {
        rc = head(b, "hookq_duplicates_total", "counter",
                  "Entries of a partition acknowledged without delivery: their event id was "
                  "claimed by another entry within the dedupe window.");
        for (unsigned i = 0; rc == 0 && i < m->nparts; i++)
            rc = hq_buf_printf(b, "hookq_duplicates_total{partition=\"%u\"} %lu\n", i,
                               LOAD(m->part_dups[i]));
    }
    if (rc == 0)
        rc = render_by_tenant(b, m);
    if (rc == 0)
        rc = render_rate_limits(b, m);
    if (rc == 0)
        rc = gauge(b, "hookq_redis_ready", "1 when the worker's Redis connections are ready.",
                   (long)LOAD(m->redis_ready));
    return rc;
}

/* ---- HTTP ------------------------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *ctype,
                             char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, mode);
    if (!resp) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

#define TEXT(s) (char *)(s), sizeof(s) - 1, MHD_RESPMEM_PERSISTENT

static enum MHD_Result on_http_request(void *cls, struct MHD_Connection *conn, const char *url,
                                       const char *method, const char *version,
                                       const char *upload_data, size_t *upload_data_size,
                                       void **req_cls)
{
    struct hq_metrics_server *s = cls;
    (void)version;
    (void)upload_data;
    (void)req_cls;
    static const char text[] = "text/plain; charset=utf-8";
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* a body is never wanted here: discard it */
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, text, TEXT("method not allowed\n"));
    if (strcmp(url, "/healthz") == 0) {
        if (atomic_load_explicit(&s->m->redis_ready, memory_order_relaxed))
            return reply(conn, MHD_HTTP_OK, text, TEXT("ok\n"));
        return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, text, TEXT("redis not ready\n"));
    }
    if (strcmp(url, "/metrics") == 0) {
        struct hq_buf b;
        hq_buf_init(&b, HQ_METRICS_BODY_MAX);
        if (render(&b, s->m) != 0) {
            hq_buf_free(&b);
            return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, text,
                         TEXT("metrics exceed HQ_METRICS_BODY_MAX\n"));
        }
        size_t len = b.len;
        char *body = hq_buf_steal(&b);
        return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len,
                     MHD_RESPMEM_MUST_FREE);
    }
    return reply(conn, MHD_HTTP_NOT_FOUND, text, TEXT("not found: try /metrics or /healthz\n"));
}

/* ---- Address parsing and listening ---------------------------------------------------- */

/* Splits "HOST:PORT" / "[V6]:PORT" / ":PORT" into host (empty = all
 * interfaces) and port. */
static int split_addr(const char *addr, char *host, size_t hn, int *port, struct hq_err *err)
{
    const char *colon = strrchr(addr, ':');
    if (!colon)
        return hq_err_set(err, HQ_EINVAL, "--metrics: '%s' is not HOST:PORT", addr);
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (hl > 0 && addr[0] == '[') {
        if (hl < 2 || addr[hl - 1] != ']')
            return hq_err_set(err, HQ_EINVAL, "--metrics: '%s' is not [IPV6]:PORT", addr);
        h = addr + 1;
        hl -= 2;
    } else if (memchr(addr, ':', hl)) {
        return hq_err_set(err, HQ_EINVAL, "--metrics: '%s': write an IPv6 host as [%.*s]:PORT",
                          addr, (int)hl, addr);
    }
    if (hl >= hn)
        return hq_err_set(err, HQ_EINVAL, "--metrics: '%s': host too long", addr);
    memcpy(host, h, hl);
    host[hl] = '\0';
    const char *p = colon + 1;
    long v = 0;
    if (*p == '\0' || strlen(p) > 5)
        return hq_err_set(err, HQ_EINVAL, "--metrics: '%s': port '%s' is not 0-65535", addr, p);
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return hq_err_set(err, HQ_EINVAL, "--metrics: '%s': port '%s' is not 0-65535", addr,
                              colon + 1);
        v = v * 10 + (*p - '0');
    }
    if (v > 65535)
        return hq_err_set(err, HQ_EINVAL, "--metrics: '%s': port '%s' is not 0-65535", addr,
                          colon + 1);
    *port = (int)v;
    return 0;
}

static int listen_on(const struct sockaddr *sa, socklen_t salen, int v6only, const char *addr,
                     int *fd_out, struct hq_err *err)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return hq_err_set(err, HQ_EIO, "--metrics: cannot listen on %s: %s", addr, strerror(errno));
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (sa->sa_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
    if (bind(fd, sa, salen) != 0 || listen(fd, HQ_METRICS_CONN_MAX) != 0) {
        int e = errno;
        close(fd);
        return hq_err_set(err, HQ_EIO, "--metrics: cannot listen on %s: %s", addr, strerror(e));
    }
    *fd_out = fd;
    return 0;
}

/* Binds and listens per addr; [out] *fd. */
static int open_listener(const char *addr, int *fd, struct hq_err *err)
{
    char host[256];
    int port = 0;
    int rc = split_addr(addr, host, sizeof(host), &port, err);
    if (rc)
        return rc;
    if (host[0] == '\0') {
        /* All interfaces: one dual-stack IPv6 socket, or IPv4 only where the
         * kernel has no IPv6. */
        struct sockaddr_in6 a6 = {
            .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port), .sin6_addr = in6addr_any};
        struct hq_err e6;
        if (listen_on((struct sockaddr *)&a6, sizeof(a6), 0, addr, fd, &e6) == 0)
            return 0;
        struct sockaddr_in a4 = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_ANY)};
        return listen_on((struct sockaddr *)&a4, sizeof(a4), 0, addr, fd, err);
    }
    /* IP literals only (and "localhost"): binding must not depend on DNS. */
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV | AI_NUMERICHOST};
    struct addrinfo *res = NULL;
    char ports[8];
    snprintf(ports, sizeof(ports), "%d", port);
    const char *node = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
    int gai = getaddrinfo(node, ports, &hints, &res);
    if (gai != 0 || !res)
        return hq_err_set(err, HQ_EINVAL, "--metrics: '%s': host '%s' is not an IP address", addr,
                          host);
    rc = listen_on(res->ai_addr, res->ai_addrlen, 1, addr, fd, err);
    freeaddrinfo(res);
    return rc;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* ---- Server lifecycle -------------------------------------------------------------------- */

struct hq_metrics_server *hq_metrics_serve(const char *addr, struct hq_metrics *m,
                                           struct hq_err *err)
{
    int fd = -1;
    if (open_listener(addr, &fd, err) != 0)
        return NULL;
    struct hq_metrics_server *s = hq_calloc(1, sizeof(*s));
    s->m = m;
    s->port = bound_port(fd);
    /* MHD_stop_daemon closes the listening socket handed over here. */
    s->mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL, on_http_request, s,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)HQ_METRICS_CONN_MAX,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HQ_METRICS_TIMEOUT_S, MHD_OPTION_END);
    if (!s->mhd) {
        close(fd);
        free(s);
        hq_err_set(err, HQ_EIO, "--metrics: cannot start the HTTP server on %s", addr);
        return NULL;
    }
    return s;
}

int hq_metrics_port(const struct hq_metrics_server *s)
{
    return s->port;
}

void hq_metrics_stop(struct hq_metrics_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->mhd);
    free(s);
}
