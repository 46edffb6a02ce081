/* One delivery attempt: builds the request (headers and Standard Webhooks
 * signatures at attempt time, both keys), sets the easy handle's limits
 * (connect and total timeouts, low-speed guard, no redirects, no
 * decompression, http/https only, proxies only when asked), keeps the first
 * HQ_RESP_KEEP_MAX bytes of the answer and discards the rest as it arrives,
 * then classifies the result for dispatch.c, which has outcome.c decide what
 * follows. A leaf: it calls nothing in worker/ but the SSRF guard's setup.
 * Owns the pools of delivery structs and easy handles (w->pool). */
#include "worker/internal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/ssl.h>

#include "common/alloc.h"
#include "common/backoff.h"

/* ---- Request ------------------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    struct hq_delivery *d = arg;
    size_t n = size * nmemb;
    if (n > 0 && !d->resp)
        d->resp = hq_malloc(HQ_RESP_KEEP_MAX);
    if (d->resp_len < HQ_RESP_KEEP_MAX) {
        size_t take = HQ_RESP_KEEP_MAX - d->resp_len;
        if (take > n)
            take = n;
        memcpy(d->resp + d->resp_len, p, take);
        d->resp_len += take;
    }
    d->resp_seen += n;
    /* Past this, stop reading: the status is known and keep-alive is not worth a GiB. */
    if (d->resp_seen > HQ_RESP_DISCARD_MAX)
        return 0;
    return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
    struct hq_delivery *d = arg;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof(name) - 1 && n < 256 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
        char v[256];
        size_t vl = n - (sizeof(name) - 1);
        memcpy(v, p + sizeof(name) - 1, vl);
        v[vl] = '\0';
        char *s = v;
        while (*s == ' ' || *s == '\t')
            s++;
        char *end = s + strlen(s);
        while (end > s && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
            *--end = '\0';
        long long ms;
        if (hq_retry_after_parse(s, hq_now_ms(), &ms) == 0)
            d->retry_after_ms = ms;
    }
    return n;
}

/* Each TLS connection's buffers (about 34 KiB for reading and writing) are
 * freed while it idles and taken again when it is used: a worker keeps
 * thousands of keep-alive connections and uses few at a time. Called by libcurl
 * for each SSL_CTX it creates (one per connection in 7.88). */
static CURLcode on_ssl_ctx(CURL *easy, void *ctx, void *arg)
{
    (void)easy;
    (void)arg;
    SSL_CTX_set_mode((SSL_CTX *)ctx, SSL_MODE_RELEASE_BUFFERS);
    return CURLE_OK;
}

/* Whether libcurl's TLS is OpenSSL's, so its SSL_CTX is one we may touch
 * (with wolfSSL or mbedTLS the callback gets their own context type). */
static int curl_uses_openssl(void)
{
    static int known = -1;
    if (known < 0) {
        const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
        known = v && v->ssl_version && strncmp(v->ssl_version, "OpenSSL/", 8) == 0;
    }
    return known;
}

/* The options every attempt shares, set once per easy handle: pooled handles
 * keep them (no curl_easy_reset per attempt; each attempt sets only its own
 * options, below). */
static void easy_setup(struct hq_worker *w, CURL *easy)
{
    const struct hq_worker_config *cfg = w->cfg;
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)cfg->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, (long)HQ_LOW_SPEED_BYTES);
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, (long)HQ_LOW_SPEED_SECS);
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    /* A reply that is not HTTP/1.x or 2 (HTTP/0.9: no status line) must fail,
     * not count as "200". */
    curl_easy_setopt(easy, CURLOPT_HTTP09_ALLOWED, 0L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
    if (curl_uses_openssl())
        curl_easy_setopt(easy, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
    /* Memory per transfer: libcurl's receive buffer defaults to 16 KiB per
     * handle, and a worker may have thousands in flight to slow endpoints;
     * answers are read for their status and first bytes only. The upload
     * buffer (used only for bodies over 64 KiB) is held at its minimum. */
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, (long)HQ_CURL_BUFFER_SIZE);
    curl_easy_setopt(easy, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
    /* "" disables the proxy environment variables: only --proxy sets one. */
    curl_easy_setopt(easy, CURLOPT_PROXY, cfg->proxy ? cfg->proxy : "");
    /* Without a proxy, no_proxy means nothing; setting it spares libcurl two
     * getenv calls per transfer. With one, NO_PROXY from the environment
     * still applies. */
    if (!cfg->proxy)
        curl_easy_setopt(easy, CURLOPT_NOPROXY, "");
    if (cfg->ca_file)
        curl_easy_setopt(easy, CURLOPT_CAINFO, cfg->ca_file);
    hq__ssrf_setup(easy);
    hq_curl_uv_prepare_easy(w->curl, easy);
}

static CURL *easy_get(struct hq_worker *w)
{
    if (w->pool.neasy > 0)
        return w->pool.easy[--w->pool.neasy];
    CURL *easy = curl_easy_init();
    if (!easy)
        hq_panic("out of memory creating a curl handle");
    easy_setup(w, easy);
    return easy;
}

static void easy_put(struct hq_worker *w, CURL *easy)
{
    /* Pooled up to the concurrency, keeping their shared options; connections
     * live in the multi's cache, so keep-alive survives. */
    if (w->pool.neasy >= w->cfg->concurrency) {
        curl_easy_cleanup(easy);
        return;
    }
    if (!w->pool.easy)
        w->pool.easy = hq_calloc((size_t)w->cfg->concurrency, sizeof(CURL *));
    w->pool.easy[w->pool.neasy++] = easy;
}

void hq__delivery_drop_easy(struct hq_worker *w)
{
    for (int i = 0; i < w->pool.neasy; i++)
        curl_easy_cleanup(w->pool.easy[i]);
    w->pool.neasy = 0;
    w->pool.curl_used = 0;
}

#define DELIVERY_POOL_MAX                                                                          \
    1024 /* recycled structs kept: ~1 KiB each, + 4 KiB once an answer had a body */

struct hq_delivery *hq__delivery_new(struct hq_worker *w)
{
    struct hq_delivery *d = w->pool.free;
    if (!d)
        return hq_calloc(1, sizeof(*d));
    w->pool.free = d->qnext;
    w->pool.nfree--;
    /* Everything but the buffers, which every attempt rewrites before use. */
    memset(d, 0, offsetof(struct hq_delivery, hnodes));
    return d;
}

void hq__delivery_free(struct hq_worker *w, struct hq_delivery *d)
{
    if (w->pool.nfree >= DELIVERY_POOL_MAX) {
        free(d->resp);
        free(d);
        return;
    }
    d->qnext = w->pool.free;
    w->pool.free = d;
    w->pool.nfree++;
}

void hq__delivery_pool_free(struct hq_worker *w)
{
    while (w->pool.free) {
        struct hq_delivery *d = w->pool.free;
        w->pool.free = d->qnext;
        free(d->resp);
        free(d);
    }
    w->pool.nfree = 0;
    hq__delivery_drop_easy(w);
    free(w->pool.easy);
    w->pool.easy = NULL;
}

/* libcurl (>= 7.88, as CMakeLists.txt requires) sends "Expect: 100-continue"
 * and waits for the answer only for bodies larger than this; an empty Expect
 * header turns that off, and is only sent when it matters, since libcurl
 * compares each of its own headers against every custom one per request. */
#define CURL_EXPECT_100_THRESHOLD (1024 * 1024)

/* The request headers: the standard ones in the delivery's own nodes and
 * buffer (no allocation on the hot path), then a copy of the endpoint's custom
 * headers (copied because a cache refresh may replace the endpoint's list while
 * this attempt runs). */
static struct curl_slist *build_headers(struct hq_delivery *d, int64_t ts, const char *wid,
                                        const char *body, size_t body_len)
{
    struct hq_ep *ep = d->ep;
    static char content_type[] = "Content-Type: application/json";
    static char user_agent[] = "User-Agent: hookq/" HQ_VERSION;
    static char no_expect[] = "Expect:"; /* no 100-continue round trip */
    char *p = d->hbuf, *end = d->hbuf + sizeof(d->hbuf);
    char *id = p;
    p += snprintf(p, (size_t)(end - p), "webhook-id: %s", wid) + 1;
    char *tsh = p;
    p += snprintf(p, (size_t)(end - p), "webhook-timestamp: %lld", (long long)ts) + 1;
    char *sig = p;
    p += snprintf(p, (size_t)(end - p), "webhook-signature: ");
    hq_sign_header(ep->keys, ep->nkeys, wid, strlen(wid), ts, body, body_len, p);
    char *data[6] = {content_type, user_agent, id, tsh, sig, no_expect};
    int n = body_len > CURL_EXPECT_100_THRESHOLD ? 6 : 5;
    for (int i = 0; i < n; i++) {
        d->hnodes[i].data = data[i];
        d->hnodes[i].next = i < n - 1 ? &d->hnodes[i + 1] : NULL;
    }
    d->custom = NULL;
    for (struct curl_slist *c = ep->custom; c; c = c->next)
        d->custom = curl_slist_append(d->custom, c->data);
    d->hnodes[n - 1].next = d->custom;
    return d->hnodes;
}

int hq__delivery_start(struct hq_worker *w, struct hq_delivery *d)
{
    const struct hq_worker_config *cfg = w->cfg;
    hq_assert(d->state == HQ_DELIVERY_IN_FLIGHT); /* dispatch.c gave it a slot */
    d->at_ms = hq_now_ms();
    d->start_us = hq_mono_us();
    d->status = 0;
    d->resp_len = d->resp_seen = 0;
    d->blocked[0] = d->curl_err[0] = '\0';
    d->retry_after_ms = -1;
    d->guard = &cfg->guard;

    CURL *easy = easy_get(w);
    d->easy = easy;
    /* Only what differs per attempt; the rest was set once (easy_setup). */
    curl_easy_setopt(easy, CURLOPT_URL, d->ep->e.url);
    /* A batch (batch.c): its body and id, signed once over the whole body. */
    const char *wid = d->entry->event_id, *body = d->entry->ev.payload;
    size_t body_len = d->entry->ev.payload_len;
    if (hq_unlikely(d->batch)) {
        wid = d->batch->id;
        body = d->batch->body.p;
        body_len = d->batch->body.len;
    }
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER,
                     build_headers(d, d->at_ms / 1000, wid, body, body_len));
    curl_easy_setopt(easy, CURLOPT_PRIVATE, d);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, d);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, d);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, d->curl_err);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, d);
    /* libcurl 7.88 walks its whole DNS cache, one entry per host:port, at the
     * end of every transfer (multi_done -> Curl_hostcache_prune) unless the
     * handle's timeout is -1 ("forever"). With 10,000 endpoints that walk was
     * three quarters of the worker's CPU (bench/shapes.sh 10000x50: 1,032
     * deliveries/s). So one attempt a second carries the real timeout, which
     * both prunes the cache and refuses a stale entry; the others neither
     * prune nor check, so a name is re-resolved at most a second after its
     * entry expired. */
    int64_t now_ms = d->start_us / 1000; /* monotonic: a clock step cannot stop the pruning */
    int prune = now_ms - w->pool.dns_pruned_ms >= HQ_DNS_PRUNE_INTERVAL_MS;
    if (prune)
        w->pool.dns_pruned_ms = now_ms;
    curl_easy_setopt(easy, CURLOPT_DNS_CACHE_TIMEOUT, prune ? (long)HQ_DNS_CACHE_SECS : -1L);

    w->pool.curl_used = 1;
    if (hq_curl_uv_add(w->curl, easy, d->ep->origin_key) != 0) {
        snprintf(d->curl_err, sizeof(d->curl_err), "could not start the transfer");
        return -1;
    }
    return 0;
}

struct hq_delivery *hq__delivery_of(CURL *easy)
{
    struct hq_delivery *d = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&d);
    return d;
}

void hq__delivery_end(struct hq_worker *w, struct hq_delivery *d)
{
    curl_slist_free_all(d->custom);
    d->custom = NULL;
    easy_put(w, d->easy);
    d->easy = NULL;
}

/* ---- Result ----------------------------------------------------------------------------- */

static enum hq_metric_class classify(CURLcode res, const struct hq_delivery *d, const char **name)
{
    if (d->blocked[0]) {
        *name = "blocked";
        return HQ_MC_BLOCKED;
    }
    switch (res) {
    case CURLE_OPERATION_TIMEDOUT: *name = "timeout"; return HQ_MC_TIMEOUT;
    case CURLE_COULDNT_CONNECT: *name = "connect"; return HQ_MC_CONNECT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: *name = "dns"; return HQ_MC_DNS;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS: *name = "tls"; return HQ_MC_TLS;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
    /* Our URLs are only ever http(s) (validated, CURLOPT_PROTOCOLS_STR), so
     * "unsupported protocol" can only be an answer that is not HTTP, such as
     * the "HTTP/0.9" libcurl reports after a flood of 1xx answers. */
    case CURLE_UNSUPPORTED_PROTOCOL: *name = "network"; return HQ_MC_NETWORK;
    default: *name = "other"; return HQ_MC_OTHER;
    }
}

void hq__delivery_result(struct hq_worker *w, struct hq_delivery *d, CURLcode res,
                         struct hq_attempt *a, char *error, size_t n)
{
    int64_t now = hq_now_ms();
    int64_t dur_us = hq_mono_us() - d->start_us;
    long status = 0;
    curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &status);
    d->status = status;
    w->pool.last_transfer_ms = now;
    hq_metrics_observe_latency(&w->metrics, dur_us > 0 ? (uint64_t)dur_us : 0);

    /* A body cut short by us (too big) still counts by its status. */
    int cut = res == CURLE_WRITE_ERROR && d->resp_seen > HQ_RESP_DISCARD_MAX;
    int ok = (res == CURLE_OK || cut) && status >= 200 && status < 300;

    error[0] = '\0';
    if (!ok) {
        enum hq_metric_class mc;
        const char *cls = "";
        if ((res == CURLE_OK || cut) && status) {
            mc = HQ_MC_HTTP_STATUS;
            snprintf(error, n, "http_status: %ld", status);
        } else {
            mc = classify(res, d, &cls);
            snprintf(error, n, "%s: %s", cls,
                     d->blocked[0]    ? d->blocked
                     : d->curl_err[0] ? d->curl_err
                                      : curl_easy_strerror(res));
        }
        atomic_fetch_add_explicit(&w->metrics.failures[mc], 1, memory_order_relaxed);
    }
    *a = (struct hq_attempt){
        .endpoint_id = d->ep->id,
        .url = d->ep->e.url,
        .attempt = d->entry->ev.attempt + 1,
        .at_ms = d->at_ms,
        .done_ms = now,
        .duration_ms = dur_us / 1000,
        .status = status,
        .error = error,
        .resp = d->resp ? d->resp : "",
        .resp_len = d->resp_len,
        .ok = ok,
        .blocked = d->blocked[0] ? d->blocked : NULL,
        .retry_after_ms = (status == 429 || status == 503) ? d->retry_after_ms : -1,
        .batch_id = d->batch ? d->batch->id : NULL,
    };
}
