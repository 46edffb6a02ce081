/* See tests/harness/worker_env.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/clock.h"
#include "common/endpoint_store.h"
#include "tests/harness/worker_env.h"
#include "worker/metrics.h"

void wenv_start(struct wenv *w, const char *redis_extra)
{
    memset(w, 0, sizeof(*w));
    enum hq_tl_kind k = hq_tl_kind_env();
    if (k == HQ_TL_CLUSTER) {
        if (redis_extra)
            fail_msg("HQ_TEST_LAYOUT=cluster: a test with its own redis-server args (%s) "
                     "does not run on a cluster",
                     redis_extra);
        hq_tl_cluster(&w->tl);
        snprintf(w->dir, sizeof(w->dir), "%s", w->tl.cluster->node[0].dir);
        w->c = hq_test_cluster_connect(w->tl.cluster, 0);
    } else {
        hq_test_redis_start(&w->redis, redis_extra);
        snprintf(w->dir, sizeof(w->dir), "%s", w->redis.dir);
        w->c = hq_test_redis_connect(&w->redis);
        /* Before any worker or endpoint: the layout every process then loads. */
        hq_tl_single(&w->tl, k, w->redis.url);
    }
    hq_test_receiver_start(&w->rcv);
    snprintf(w->log, sizeof(w->log), "%s/worker.log", w->dir);
}

void wenv_stop(struct wenv *w)
{
    wenv_kill_leftovers(w);
    redisFree(w->c);
    w->c = NULL;
    hq_test_receiver_stop(&w->rcv);
    hq_tl_free(&w->tl); /* a cluster's nodes too */
    if (w->redis.dir[0])
        hq_test_redis_destroy(&w->redis);
}

int wenv_setup(void **state)
{
    wenv_start(*state, NULL);
    return 0;
}

int wenv_teardown(void **state)
{
    wenv_stop(*state);
    return 0;
}

pid_t wenv_track(struct wenv *w, pid_t pid)
{
    assert_true(pid > 0);
    if (w->nprocs < WENV_PROCS_MAX)
        w->procs[w->nprocs++] = pid;
    return pid;
}

void wenv_kill_leftovers(struct wenv *w)
{
    for (int i = 0; i < w->nprocs; i++) {
        int st;
        if (waitpid(w->procs[i], &st, WNOHANG) == 0) {
            kill(w->procs[i], SIGKILL);
            waitpid(w->procs[i], &st, 0);
        }
    }
    w->nprocs = 0;
}

void wenv_stop_with_worker(struct wenv *w, pid_t *worker)
{
    if (*worker > 0)
        hq_test_kill_wait(*worker, SIGKILL, 5000);
    *worker = 0;
    wenv_stop(w);
}

void wenv_dump_log(struct wenv *w)
{
    hq_test_log_print(w->log, "worker");
}

void wenv_wait(struct wenv *w, hq_test_pred pred, void *arg, int ms, const char *what)
{
    if (!hq_test_wait(pred, arg, ms)) {
        wenv_dump_log(w);
        fail_msg("timed out waiting for %s", what);
    }
}

int wenv_log_has(struct wenv *w, const char *needle)
{
    return hq_test_log_count(w->log, NULL, needle) > 0;
}

void wenv_endpoint_fill(const char *url, const char *filters, const char *header, int max_attempts,
                        struct hq_endpoint *e_out)
{
    memset(e_out, 0, sizeof(*e_out));
    e_out->name = strdup("test");
    e_out->url = strdup(url);
    e_out->description = strdup("");
    e_out->enabled = 1;
    e_out->max_attempts = max_attempts;
    if (filters) {
        char *copy = strdup(filters), *save = NULL;
        e_out->events = calloc(16, sizeof(char *));
        for (char *t = strtok_r(copy, ",", &save); t && e_out->nevents < 16;
             t = strtok_r(NULL, ",", &save))
            e_out->events[e_out->nevents++] = strdup(t);
        free(copy);
    }
    if (header) {
        e_out->headers = calloc(1, sizeof(char *));
        e_out->headers[0] = strdup(header);
        e_out->nheaders = 1;
    }
}

void wenv_endpoint_create(struct wenv *w, struct hq_endpoint *e)
{
    struct hq_err err = {0};
    if (hq_endpoint_create(wenv_reg_node(w), w->registry ? w->registry : w->tl.L.reg, e, &err) != 0)
        fail_msg("endpoint create: %s", err.msg);
}

void wenv_endpoint(struct wenv *w, const char *url, const char *filters, const char *header,
                   int max_attempts, struct hq_endpoint *e_out)
{
    wenv_endpoint_fill(url, filters, header, max_attempts, e_out);
    wenv_endpoint_create(w, e_out);
}

void wenv_endpoint_at(struct wenv *w, const char *path, const char *filters, int max_attempts,
                      struct hq_endpoint *e_out)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", w->rcv.url, path);
    wenv_endpoint(w, url, filters, NULL, max_attempts, e_out);
}

void wenv_produce(struct wenv *w, const char *type, const char *payload, const char *id,
                  const char *endpoint, char *id_out, size_t n)
{
    const char *argv[12];
    size_t lens[12];
    int argc = 0;
#define ARG(s)                                                                                     \
    do {                                                                                           \
        argv[argc] = (s);                                                                          \
        lens[argc] = strlen(s);                                                                    \
        argc++;                                                                                    \
    } while (0)
    unsigned part = hq_tl_part_for(&w->tl, id);
    char key[HQ_KEY_MAX];
    assert_true(hq_key_events(w->tl.L.part[part].base, key, sizeof(key)) >= 0);
    ARG("XADD");
    ARG(key);
    ARG("*");
    ARG("type");
    ARG(type);
    ARG("payload");
    ARG(payload);
    if (id) {
        ARG("id");
        ARG(id);
    }
    if (endpoint) {
        ARG("endpoint");
        ARG(endpoint);
    }
#undef ARG
    redisReply *r = redisCommandArgv(wenv_node(w, part), argc, argv, lens);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    if (id_out)
        snprintf(id_out, n, "%s", r->str);
    freeReplyObject(r);
}

pid_t wenv_worker(struct wenv *w, const char *const *extra, const char *const *env)
{
    const char *args[48];
    int n = 0;
    args[n++] = "worker";
    args[n++] = "--redis-url";
    args[n++] = wenv_url(w);
    args[n++] = "--log-level";
    args[n++] = "info";
    for (; extra && *extra && n < 46; extra++)
        args[n++] = *extra;
    args[n] = NULL;
    /* The circuit breaker off by default: the suites written before it (issue
     * 15) count on a down endpoint exhausting its attempts, which an open
     * breaker defers instead. test_breaker passes its own env. */
    static const char *const default_env[] = {
        "HOOKQ_ALLOW_PRIVATE=1", "HOOKQ_BREAKER_FAILURES=1000000", "HOOKQ_BREAKER_RATIO=0", NULL};
    return wenv_track(w, hq_test_spawn(args, env ? env : default_env, w->log));
}

void wenv_metrics_text(struct hq_metrics *m, struct hq_buf *body)
{
    struct hq_err err = {0};
    struct hq_metrics_server *s = hq_metrics_serve("127.0.0.1:0", m, &err);
    assert_non_null(s);
    char url[96];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", hq_metrics_port(s));
    hq_buf_init(body, 1 << 20);
    assert_int_equal(wenv_http_get(url, body), 200);
    hq_metrics_stop(s);
}

int wenv_cli(struct wenv *w, char *out, size_t out_n, char *err, size_t err_n, const char *a0, ...)
{
    const char *args[40];
    int n = 0;
    va_list ap;
    va_start(ap, a0);
    for (const char *a = a0; a && n < 36; a = va_arg(ap, const char *))
        args[n++] = a;
    va_end(ap);
    args[n++] = "--redis-url";
    args[n++] = wenv_url(w);
    args[n] = NULL;
    static const char *const env[] = {"HOOKQ_ALLOW_PRIVATE=1", NULL};
    return hq_test_cli(args, env, NULL, out, out_n, err, err_n);
}

pid_t wenv_scheduler(struct wenv *w, const char *const *extra)
{
    const char *args[40];
    int n = 0;
    args[n++] = "scheduler";
    args[n++] = "--redis-url";
    args[n++] = wenv_url(w);
    for (; extra && *extra && n < 39; extra++)
        args[n++] = *extra;
    args[n] = NULL;
    return wenv_track(w, hq_test_spawn(args, NULL, w->log));
}

static int clock_past(void *arg)
{
    return hq_now_ms() > *(const int64_t *)arg;
}

void wenv_next_ms(struct wenv *w)
{
    int64_t t = hq_now_ms();
    wenv_wait(w, clock_past, &t, 1000, "the next millisecond");
}

int received_at_least(void *arg)
{
    struct count_arg *a = arg;
    return (a->prefix ? hq_test_receiver_count_path(a->rcv, a->prefix)
                      : hq_test_receiver_count(a->rcv)) >= a->want;
}

int redis_int_is(void *arg)
{
    struct redis_arg *a = arg;
    return hq_test_cmd_int(a->w->c, a->cmd) == a->want;
}

int redis_int_at_least(void *arg)
{
    struct redis_arg *a = arg;
    return hq_test_cmd_int(a->w->c, a->cmd) >= a->want;
}

long long wenv_pending(struct wenv *w)
{
    return hq_tl_pending(&w->tl, w->c, w->tl.L.prefix);
}

int nothing_pending_and_stream_empty(void *arg)
{
    struct wenv *w = arg;
    return wenv_pending(w) == 0 && wenv_sum(w, "XLEN", hq_key_events) == 0 &&
           wenv_sum(w, "XLEN", hq_key_retries) == 0;
}

const char *wenv_url(const struct wenv *w)
{
    /* One server: its current URL, as a test may replace the server (a new port). */
    return w->tl.cluster ? w->tl.url : w->redis.url;
}

redisContext *wenv_node(struct wenv *w, unsigned part)
{
    return hq_tl_node(&w->tl, w->c, part);
}

redisContext *wenv_reg_node(struct wenv *w)
{
    return hq_tl_reg_node(&w->tl, w->c);
}

redisReply *wenv_attempts(struct wenv *w, const char *event_id)
{
    unsigned part = hq_layout_partition_for(&w->tl.L, event_id, strlen(event_id), 0);
    struct hq_err err = {0};
    redisReply *r = hq_attempts_read(wenv_node(w, part), w->tl.L.part[part].base, event_id, &err);
    if (!r)
        fail_msg("reading attempt records of %s: %s", event_id, err.msg);
    return r;
}

long long wenv_sum(struct wenv *w, const char *cmd, hq_tl_key_fn keyfn)
{
    return hq_tl_sum(&w->tl, w->c, w->tl.L.prefix, cmd, keyfn);
}

void wenv_assert_layout(struct wenv *w, const char *label)
{
    hq_tl_assert(&w->tl, w->c, w->tl.L.prefix, label);
}

int stream_field(struct wenv *w, const char *key, int index, const char *f, char *out, size_t n)
{
    out[0] = '\0';
    redisReply *r = hq_test_cmd(w->c, "XRANGE %s - +", key);
    int found = -1;
    if (r->type == REDIS_REPLY_ARRAY && (size_t)index < r->elements) {
        redisReply *fields = r->element[index]->element[1];
        for (size_t i = 0; i + 1 < fields->elements; i += 2) {
            if (strcmp(fields->element[i]->str, f) == 0) {
                snprintf(out, n, "%.*s", (int)fields->element[i + 1]->len,
                         fields->element[i + 1]->str);
                found = 0;
            }
        }
    }
    freeReplyObject(r);
    return found;
}

void stream_field_is(struct wenv *w, const char *key, int index, const char *f, const char *want)
{
    char v[4096];
    stream_field(w, key, index, f, v, sizeof(v));
    assert_string_equal(v, want);
}

static size_t wenv_collect(char *p, size_t size, size_t n, void *arg)
{
    struct hq_buf *b = arg;
    if (hq_buf_append(b, p, size * n) != 0)
        return 0;
    return size * n;
}

long wenv_http_get(const char *url, struct hq_buf *body)
{
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, wenv_collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    return status;
}

int wenv_healthz_ok(void *arg)
{
    struct wenv_healthz_arg *a = arg;
    struct hq_buf b;
    hq_buf_init(&b, 1 << 16);
    long st = wenv_http_get(a->url, &b);
    hq_buf_free(&b);
    return st == 200;
}

long wenv_dead_count(struct wenv *w, const char *id, const char *reason)
{
    long n = 0;
    for (unsigned p = 0; p < w->tl.L.nparts; p++) {
        char key[HQ_KEY_MAX];
        hq_key_dead(w->tl.L.part[p].base, key, sizeof(key));
        redisReply *r = redisCommand(wenv_node(w, p), "XRANGE %s - +", key);
        assert_non_null(r);
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            redisReply *kv = r->element[i]->element[1];
            int ep = 0, why = 0;
            for (size_t j = 0; j + 1 < kv->elements; j += 2) {
                ep |= !strcmp(kv->element[j]->str, "endpoint_id") &&
                      !strcmp(kv->element[j + 1]->str, id);
                why |= !strcmp(kv->element[j]->str, "reason") &&
                       !strcmp(kv->element[j + 1]->str, reason);
            }
            n += ep && why;
        }
        freeReplyObject(r);
    }
    return n;
}

void wenv_assert_signed(const struct hq_test_request *q, const struct hq_sign_key *k, char *id_out,
                        size_t n)
{
    struct hq_err err = {0};
    char id[160], ts[32], sig[512];
    assert_int_equal(hq_test_request_header(q, "webhook-id", id, sizeof(id)), 0);
    assert_int_equal(hq_test_request_header(q, "webhook-timestamp", ts, sizeof(ts)), 0);
    assert_int_equal(hq_test_request_header(q, "webhook-signature", sig, sizeof(sig)), 0);
    assert_int_equal(hq_sign_verify(k, id, atoll(ts), q->body, q->body_len, sig, 0, -1, &err), 0);
    if (id_out)
        snprintf(id_out, n, "%s", id);
}
