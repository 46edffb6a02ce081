/* curl_floor: what libcurl alone costs per request, for bench/worker_bench.sh.
 *
 * the delivery floor (Redis XREADGROUP + XACK, and wrk against nginx) bounds the
 * rate; it says nothing about what any libcurl-based worker must spend per
 * delivery. This program is that second floor: N POSTs of a 1 KiB body to one
 * URL, C at a time, through the same binding the worker uses (worker/curl_uv.c:
 * curl's multi-socket API on one libuv loop), the same per-handle options as
 * worker/delivery.c's easy_setup, pooled easy handles, and the same five
 * request headers with values of the same lengths (a fixed signature: no
 * HMAC). No Redis, no event decoding, no signing, no outcome records. The CPU
 * it spends per request (getrusage, user + system) is the part of the worker's
 * CPU per delivery that libcurl, libuv and the kernel's loopback TCP take
 * whatever hookq does around them.
 *
 * usage: curl_floor URL REQUESTS CONCURRENCY
 * prints one line: rate=<requests/s> cpu_us=<CPU µs per request> failed=<n>
 * Only for 127.0.0.1 URLs (the script passes its nginx); exit 1 on a failure. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

#include "worker/curl_uv.h"

#define FLOOR_BODY_BYTES 1024
#define FLOOR_CONC_MAX   4096
#define FLOOR_TIMEOUT_MS 15000L /* the worker's default total timeout */

struct floor {
    struct hq_curl_uv *cu;
    const char *url;
    long todo, started, done, failed;
    CURL *pool[FLOOR_CONC_MAX];
    int npool;
    char body[FLOOR_BODY_BYTES];
    struct curl_slist hdr[6];
};

static size_t discard(char *p, size_t sz, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return sz * n;
}

/* The five Standard Webhooks request headers and "Expect:", with values as long
 * as the worker's (webhook-id "evt_" + 26, a 10-digit timestamp, two v1,
 * signatures of 44 base64 characters). */
static char h_ct[] = "Content-Type: application/json";
static char h_ua[] = "User-Agent: hookq/0.1.0";
static char h_ex[] = "Expect:";
static char h_id[] = "webhook-id: evt_2fsmmb3pdmtzlyhxkqujuvcpt4";
static char h_ts[] = "webhook-timestamp: 1795763484";
static char h_sig[] =
    "webhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4= v1,Zg9uEaVaChvAQ2bJ4BjMa+xvA8h8ArQZbEXXbl4HkW0=";

static void start(struct floor *f)
{
    CURL *easy = f->pool[--f->npool];
    curl_easy_setopt(easy, CURLOPT_URL, f->url);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, f->body);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)sizeof(f->body));
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, f->hdr);
    f->started++;
    if (hq_curl_uv_add(f->cu, easy, 0) != 0) {
        fprintf(stderr, "curl_floor: curl_multi_add_handle failed\n");
        exit(1);
    }
}

static void on_closed(void *arg)
{
    (void)arg;
}

static void on_done(CURL *easy, CURLcode res, void *arg)
{
    struct floor *f = arg;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (res != CURLE_OK || status / 100 != 2)
        f->failed++;
    f->done++;
    f->pool[f->npool++] = easy;
    if (f->started < f->todo)
        start(f);
    else if (f->done == f->todo)
        hq_curl_uv_close(f->cu, on_closed, NULL);
}

/* As worker/delivery.c easy_setup, minus the SSRF open-socket callback (it
 * only reads the address) and the CA file. */
static CURL *easy_new(struct floor *f)
{
    CURL *easy = curl_easy_init();
    if (!easy) {
        fprintf(stderr, "curl_floor: out of memory\n");
        exit(1);
    }
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, discard);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, FLOOR_TIMEOUT_MS);
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 64L);
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, 10L);
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_HTTP09_ALLOWED, 0L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(easy, CURLOPT_PROXY, "");
    hq_curl_uv_prepare_easy(f->cu, easy);
    return easy;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: curl_floor URL REQUESTS CONCURRENCY\n");
        return 2;
    }
    static struct floor f;
    f.url = argv[1];
    f.todo = strtol(argv[2], NULL, 10);
    long conc = strtol(argv[3], NULL, 10);
    if (strncmp(f.url, "http://127.0.0.1:", 17) != 0 || f.todo < 1 || conc < 1 ||
        conc > FLOOR_CONC_MAX) {
        fprintf(
            stderr,
            "curl_floor: want an http://127.0.0.1:PORT/ URL, REQUESTS >= 1 and 1 <= CONCURRENCY <= %d\n",
            FLOOR_CONC_MAX);
        return 2;
    }
    if (conc > f.todo)
        conc = f.todo;
    memset(f.body, 'x', sizeof(f.body));
    memcpy(f.body, "{\"d\":\"", 6);
    memcpy(f.body + sizeof(f.body) - 2, "\"}", 2);
    char *h[] = {h_ct, h_ua, h_ex, h_id, h_ts, h_sig};
    for (int i = 0; i < 6; i++) {
        f.hdr[i].data = h[i];
        f.hdr[i].next = i < 5 ? &f.hdr[i + 1] : NULL;
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);
    uv_loop_t *loop = uv_default_loop();
    f.cu = hq_curl_uv_new(loop, 1, on_done, &f);
    if (!f.cu)
        return 1;
    /* As worker/worker.c: a connection cache as large as the concurrency. */
    if (hq_curl_uv_multi_setopt(f.cu, CURLMOPT_MAXCONNECTS, conc) != 0 ||
        hq_curl_uv_multi_setopt(f.cu, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX) != 0)
        return 1;
    for (long i = 0; i < conc; i++)
        f.pool[f.npool++] = easy_new(&f);

    double c0 = cpu_s(), t0 = wall_s();
    for (long i = 0; i < conc; i++)
        start(&f);
    uv_run(loop, UV_RUN_DEFAULT);
    double secs = wall_s() - t0, cpu = cpu_s() - c0;

    printf("rate=%.0f cpu_us=%.1f failed=%ld\n", (double)f.done / secs, cpu * 1e6 / (double)f.done,
           f.failed);
    for (int i = 0; i < f.npool; i++)
        curl_easy_cleanup(f.pool[i]);
    uv_loop_close(loop);
    curl_global_cleanup();
    return f.failed ? 1 : 0;
}
