/* Deliveries per second from the workers' /metrics (worker_rate.h). */
#include "api/worker_rate.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"

static const char METRIC[] = "hookq_deliveries_total";

int hq_worker_rate_parse(const char *text, size_t n, struct hq_worker_rate_sample *out)
{
    out->delivered = 0;
    int found = 0;
    const size_t mlen = sizeof(METRIC) - 1;
    for (size_t i = 0; i < n;) {
        const char *line = text + i;
        const char *nl = memchr(line, '\n', n - i);
        size_t len = nl ? (size_t)(nl - line) : n - i;
        i += len + 1;
        if (len <= mlen || memcmp(line, METRIC, mlen) != 0 ||
            (line[mlen] != '{' && line[mlen] != ' '))
            continue;
        /* the value follows the last space (no timestamps in hookq's output) */
        const char *sp = line + len;
        while (sp > line && sp[-1] != ' ')
            sp--;
        char num[64];
        size_t vl = (size_t)(line + len - sp);
        if (sp == line || vl == 0 || vl >= sizeof(num))
            continue;
        memcpy(num, sp, vl);
        num[vl] = 0;
        char *end;
        double v = strtod(num, &end);
        if (end == num || (*end && *end != '\r') || v < 0)
            continue;
        const char *lab = line + mlen;
        if (*lab == '{' && memmem(lab, (size_t)(sp - lab), "outcome=\"delivered\"", 19))
            out->delivered += v;
        found++;
    }
    return found;
}

/* ---- the sampler (process-wide) -------------------------------------------------------- */

struct worker {
    char url[512];
    int ok; /* the last read answered */
    struct hq_worker_rate_sample last;
};

/* Two locks: rd is held by the one thread reading the workers (others do
 * not wait for it: they append the last values), mu guards the values. W
 * and NW are set by hq_worker_rate_configure before the server's threads
 * start; only the reader changes W's samples after that. */
static pthread_mutex_t rd = PTHREAD_MUTEX_INITIALIZER;
static struct worker W[HQ_WORKER_RATE_URLS_MAX]; /* rd */
static int NW;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int64_t read_ms; /* monotonic ms of the last read; 0 = none */
    int reachable;   /* workers that answered the last read */
    int have_rate;   /* the last two reads had a worker in common */
    double delivered_per_s;
} V; /* mu */

int hq_worker_rate_configure(const char *urls, struct hq_err *err)
{
    struct worker w[HQ_WORKER_RATE_URLS_MAX];
    int n = 0;
    for (const char *p = urls ? urls : ""; *p;) {
        p += strspn(p, " ");
        size_t len = strcspn(p, ",");
        size_t next = len;
        while (len && p[len - 1] == ' ')
            len--;
        if (len > 0) {
            if (n == HQ_WORKER_RATE_URLS_MAX)
                return hq_err_set(err, HQ_EINVAL, "--worker-metrics: more than %d URLs",
                                  HQ_WORKER_RATE_URLS_MAX);
            if (len >= sizeof(w[0].url))
                return hq_err_set(err, HQ_EINVAL, "--worker-metrics: a URL of %zu bytes, max %zu",
                                  len, sizeof(w[0].url) - 1);
            if (strncmp(p, "http://", 7) != 0 && strncmp(p, "https://", 8) != 0)
                return hq_err_set(err, HQ_EINVAL,
                                  "--worker-metrics: '%.*s' is not an http:// or https:// URL",
                                  (int)(len > 80 ? 80 : len), p);
            memset(&w[n], 0, sizeof(w[n]));
            memcpy(w[n].url, p, len);
            w[n].url[len] = 0;
            n++;
        }
        p += next;
        p += *p == ',';
    }
    pthread_mutex_lock(&rd);
    memcpy(W, w, sizeof(w[0]) * (size_t)n);
    NW = n;
    pthread_mutex_unlock(&rd);
    pthread_mutex_lock(&mu);
    memset(&V, 0, sizeof(V));
    pthread_mutex_unlock(&mu);
    return 0;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    struct hq_buf *b = arg;
    return hq_buf_append(b, p, size * nmemb) == 0 ? size * nmemb : 0;
}

/* One worker's counters; 0 when it answered 200 with hookq's metric. */
static int read_worker(const char *url, struct hq_worker_rate_sample *out)
{
    CURL *h = curl_easy_init();
    if (!h)
        return -1;
    struct hq_buf body;
    hq_buf_init(&body, HQ_WORKER_RATE_BODY_MAX);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)HQ_WORKER_RATE_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    long status = 0;
    CURLcode cres = curl_easy_perform(h);
    if (cres == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    int rc = cres == CURLE_OK && status == 200 && hq_worker_rate_parse(body.p, body.len, out) > 0
                 ? 0
                 : -1;
    hq_buf_free(&body);
    return rc;
}

/* Reads every worker (rd held) and updates the values: the sum over workers
 * that answered both this read and the last, per second between the two.
 * A counter that went down (the worker restarted) starts over. */
static void sample(void)
{
    double dd = 0;
    int both = 0, reachable = 0;
    for (int i = 0; i < NW; i++) {
        struct worker *w = &W[i];
        struct hq_worker_rate_sample cur;
        if (read_worker(w->url, &cur) != 0) {
            w->ok = 0;
            continue;
        }
        reachable++;
        if (w->ok && cur.delivered >= w->last.delivered) {
            dd += cur.delivered - w->last.delivered;
            both++;
        }
        w->last = cur;
        w->ok = 1;
    }
    int64_t now = hq_mono_ms();
    pthread_mutex_lock(&mu);
    double dt = V.read_ms ? (double)(now - V.read_ms) / 1000.0 : 0;
    V.have_rate = both > 0 && dt > 0;
    if (V.have_rate)
        V.delivered_per_s = dd / dt;
    V.reachable = reachable;
    V.read_ms = now;
    pthread_mutex_unlock(&mu);
}

int hq_worker_rate_append(struct hq_buf *b)
{
    if (b->len == 0 || b->p[b->len - 1] != '}')
        return HQ_EINVAL;
    if (NW == 0)
        return 0;
    pthread_mutex_lock(&mu);
    int due = V.read_ms == 0 || hq_mono_ms() - V.read_ms >= HQ_WORKER_RATE_EVERY_MS;
    pthread_mutex_unlock(&mu);
    if (due && pthread_mutex_trylock(&rd) == 0) {
        sample();
        pthread_mutex_unlock(&rd);
    }
    pthread_mutex_lock(&mu);
    char d[32] = "null";
    if (V.have_rate && V.reachable > 0)
        snprintf(d, sizeof(d), "%.1f", V.delivered_per_s);
    int reachable = V.reachable;
    pthread_mutex_unlock(&mu);
    b->len--; /* the closing brace, written again below */
    int rc = hq_buf_printf(
        b, ",\"workers_configured\":%d,\"workers_reachable\":%d,\"deliveries_per_s\":%s}", NW,
        reachable, d);
    if (rc != 0) {
        b->p[b->len++] = '}';
        b->p[b->len] = 0;
    }
    return rc;
}
