/* The worker's metrics server: Prometheus text on /metrics, /healthz following
 * redis_ready, 404 elsewhere, --metrics address parsing and its errors. Real
 * HTTP over loopback with libcurl easy (blocking is fine in a test). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "worker/metrics.h"
#include "tests/harness/hq_test.h"

struct got {
    long status;
    char body[65536];
    size_t len;
    char ctype[128];
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct got *g = arg;
    size_t len = size * n;
    size_t room = sizeof(g->body) - 1 - g->len;
    size_t take = len < room ? len : room;
    memcpy(g->body + g->len, p, take);
    g->len += take;
    g->body[g->len] = '\0';
    return len;
}

/* GETs url into g; fails the test when the transfer fails. */
static void get(const char *url, struct got *g)
{
    memset(g, 0, sizeof(*g));
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, g);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    CURLcode cres = curl_easy_perform(c);
    if (cres != CURLE_OK)
        fail_msg("GET %s: %s", url, curl_easy_strerror(cres));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &g->status);
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    if (ct)
        snprintf(g->ctype, sizeof(g->ctype), "%s", ct);
    curl_easy_cleanup(c);
}

static void get_path(const struct hq_metrics_server *s, const char *path, struct got *g)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", hq_metrics_port(s), path);
    get(url, g);
}

/* 1 when body holds exactly this line. */
static int has_line(const char *body, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = body; (p = strstr(p, line)) != NULL; p++) {
        if ((p == body || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return 1;
    }
    return 0;
}

#define assert_line(body, line)                                                                    \
    do {                                                                                           \
        if (!has_line((body), (line)))                                                             \
            fail_msg("missing line '%s' in:\n%s", (line), (body));                                 \
    } while (0)

static struct hq_metrics_server *serve(const char *addr, struct hq_metrics *m)
{
    struct hq_err err = {0};
    struct hq_metrics_server *s = hq_metrics_serve(addr, m, &err);
    if (!s)
        fail_msg("hq_metrics_serve(%s): %s", addr, err.msg);
    assert_true(hq_metrics_port(s) > 0);
    return s;
}

static void test_metrics_render_counters_histogram_and_gauges(void **state)
{
    (void)state;
    struct hq_metrics m;
    hq_metrics_init(&m);
    struct hq_metrics_server *s = serve("127.0.0.1:0", &m);

    atomic_fetch_add(&m.deliveries[HQ_MO_DELIVERED], 3);
    atomic_fetch_add(&m.deliveries[HQ_MO_DEAD], 1);
    atomic_fetch_add(&m.failures[HQ_MC_TIMEOUT], 2);
    atomic_fetch_add(&m.events_read, 7);
    atomic_fetch_add(&m.redis_reconnects, 1);
    atomic_store(&m.in_flight, 5);
    atomic_store(&m.stream_pending, 9);
    hq_metrics_observe_latency(&m, 3000);     /* 3 ms   -> le 0.005 */
    hq_metrics_observe_latency(&m, 40000);    /* 40 ms  -> le 0.05 */
    hq_metrics_observe_latency(&m, 2000000);  /* 2 s    -> le 2.5 */
    hq_metrics_observe_latency(&m, 45000000); /* 45 s   -> +Inf only */

    struct got g;
    get_path(s, "/metrics", &g);
    assert_int_equal(g.status, 200);
    assert_non_null(strstr(g.ctype, "version=0.0.4"));

    assert_line(g.body, "# TYPE hookq_deliveries_total counter");
    assert_non_null(strstr(g.body, "# HELP hookq_deliveries_total "));
    assert_line(g.body, "hookq_deliveries_total{outcome=\"delivered\"} 3");
    assert_line(g.body, "hookq_deliveries_total{outcome=\"retry\"} 0");
    assert_line(g.body, "hookq_deliveries_total{outcome=\"dead\"} 1");
    assert_line(g.body, "hookq_deliveries_total{outcome=\"deferred\"} 0");
    assert_line(g.body, "# TYPE hookq_attempt_failures_total counter");
    assert_line(g.body, "hookq_attempt_failures_total{class=\"timeout\"} 2");
    assert_line(g.body, "hookq_attempt_failures_total{class=\"http_status\"} 0");
    assert_line(g.body, "hookq_events_read_total 7");
    assert_line(g.body, "hookq_redis_reconnects_total 1");

    /* Histogram: cumulative buckets, +Inf == count, sum in seconds. */
    assert_line(g.body, "# TYPE hookq_attempt_duration_seconds histogram");
    assert_line(g.body, "hookq_attempt_duration_seconds_bucket{le=\"0.005\"} 1");
    assert_line(g.body, "hookq_attempt_duration_seconds_bucket{le=\"0.025\"} 1");
    assert_line(g.body, "hookq_attempt_duration_seconds_bucket{le=\"0.05\"} 2");
    assert_line(g.body, "hookq_attempt_duration_seconds_bucket{le=\"1\"} 2");
    assert_line(g.body, "hookq_attempt_duration_seconds_bucket{le=\"2.5\"} 3");
    assert_line(g.body, "hookq_attempt_duration_seconds_bucket{le=\"30\"} 3");
    assert_line(g.body, "hookq_attempt_duration_seconds_bucket{le=\"+Inf\"} 4");
    assert_line(g.body, "hookq_attempt_duration_seconds_sum 47.043000");
    assert_line(g.body, "hookq_attempt_duration_seconds_count 4");

    assert_line(g.body, "# TYPE hookq_in_flight gauge");
    assert_line(g.body, "hookq_in_flight 5");
    assert_line(g.body, "hookq_stream_lag -1");
    assert_line(g.body, "hookq_stream_pending 9");
    assert_line(g.body, "hookq_redis_ready 0");

    /* A later scrape sees later values. */
    atomic_fetch_add(&m.deliveries[HQ_MO_DELIVERED], 1);
    atomic_store(&m.in_flight, 0);
    get_path(s, "/metrics", &g);
    assert_line(g.body, "hookq_deliveries_total{outcome=\"delivered\"} 4");
    assert_line(g.body, "hookq_in_flight 0");
    hq_metrics_stop(s);
}

static void test_every_metric_has_help_and_type_before_its_samples(void **state)
{
    (void)state;
    struct hq_metrics m;
    hq_metrics_init(&m);
    struct hq_metrics_server *s = serve("127.0.0.1:0", &m);
    struct got g;
    get_path(s, "/metrics", &g);
    assert_int_equal(g.status, 200);
    /* Walk the lines: each sample's family must have been declared by
     * # HELP and # TYPE lines earlier in the body. */
    char *save = NULL;
    char declared[64][96];
    int nd = 0, samples = 0;
    for (char *line = strtok_r(g.body, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[96];
        if (strncmp(line, "# TYPE ", 7) == 0) {
            assert_int_equal(sscanf(line + 7, "%95s", name), 1);
            assert_true(nd < 64);
            snprintf(declared[nd++], sizeof(declared[0]), "%s", name);
            continue;
        }
        if (line[0] == '#')
            continue;
        assert_int_equal(sscanf(line, "%95[a-z_]", name), 1);
        int found = 0;
        for (int i = 0; i < nd && !found; i++) {
            size_t dl = strlen(declared[i]);
            found = strncmp(name, declared[i], dl) == 0 &&
                    (name[dl] == '\0' || strcmp(name + dl, "_bucket") == 0 ||
                     strcmp(name + dl, "_sum") == 0 || strcmp(name + dl, "_count") == 0);
        }
        if (!found)
            fail_msg("sample '%s' has no # TYPE before it", line);
        samples++;
    }
    assert_true(samples >= 30);
    hq_metrics_stop(s);
}

static void test_healthz_is_503_until_redis_ready_then_200(void **state)
{
    (void)state;
    struct hq_metrics m;
    hq_metrics_init(&m);
    struct hq_metrics_server *s = serve("127.0.0.1:0", &m);
    struct got g;
    get_path(s, "/healthz", &g);
    assert_int_equal(g.status, 503);
    assert_string_equal(g.body, "redis not ready\n");
    atomic_store(&m.redis_ready, 1);
    get_path(s, "/healthz", &g);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.body, "ok\n");
    atomic_store(&m.redis_ready, 0);
    get_path(s, "/healthz", &g);
    assert_int_equal(g.status, 503);
    hq_metrics_stop(s);
}

static void test_other_paths_are_404(void **state)
{
    (void)state;
    struct hq_metrics m;
    hq_metrics_init(&m);
    struct hq_metrics_server *s = serve("127.0.0.1:0", &m);
    struct got g;
    get_path(s, "/", &g);
    assert_int_equal(g.status, 404);
    get_path(s, "/metrics/extra", &g);
    assert_int_equal(g.status, 404);
    get_path(s, "/healthzz", &g);
    assert_int_equal(g.status, 404);
    hq_metrics_stop(s);
}

static void test_bad_addresses_name_metrics_and_the_value(void **state)
{
    (void)state;
    struct hq_metrics m;
    hq_metrics_init(&m);
    static const char *const bad[] = {
        "9090",     "127.0.0.1:", "127.0.0.1:99999",   "127.0.0.1:9x",
        "::1:9090", "[::1:9090",  "metrics-host:9090", "127.0.0.1:-1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        struct hq_err err = {0};
        struct hq_metrics_server *s = hq_metrics_serve(bad[i], &m, &err);
        if (s)
            fail_msg("'%s' was accepted", bad[i]);
        assert_int_not_equal(err.code, 0);
        assert_non_null(strstr(err.msg, "--metrics"));
        assert_non_null(strstr(err.msg, bad[i]));
        assert_null(strchr(err.msg, '\n'));
    }
}

static void test_busy_port_reports_the_cause_and_stop_frees_the_port(void **state)
{
    (void)state;
    struct hq_metrics m;
    hq_metrics_init(&m);
    struct hq_metrics_server *s = serve("127.0.0.1:0", &m);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", hq_metrics_port(s));

    struct hq_err err = {0};
    assert_null(hq_metrics_serve(addr, &m, &err));
    assert_non_null(strstr(err.msg, "--metrics: cannot listen on"));
    assert_non_null(strstr(err.msg, "Address already in use"));

    hq_metrics_stop(s);
    /* The port is released: serving on it again works. */
    s = serve(addr, &m);
    struct got g;
    get_path(s, "/healthz", &g);
    assert_int_equal(g.status, 503);
    hq_metrics_stop(s);
}

static void test_all_interfaces_and_ipv6_loopback_serve(void **state)
{
    (void)state;
    struct hq_metrics m;
    hq_metrics_init(&m);
    atomic_store(&m.redis_ready, 1);
    /* ":PORT" listens on every interface, so 127.0.0.1 reaches it. */
    struct hq_metrics_server *s = serve(":0", &m);
    struct got g;
    get_path(s, "/healthz", &g);
    assert_int_equal(g.status, 200);
    hq_metrics_stop(s);

    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 lo = {.sin6_family = AF_INET6, .sin6_addr = in6addr_loopback};
    int have_v6 = probe >= 0 && bind(probe, (struct sockaddr *)&lo, sizeof(lo)) == 0;
    if (probe >= 0)
        close(probe);
    if (!have_v6) {
        print_message("no IPv6 loopback here: [::1] part not run\n");
        return;
    }
    s = serve("[::1]:0", &m);
    char url[64];
    snprintf(url, sizeof(url), "http://[::1]:%d/healthz", hq_metrics_port(s));
    get(url, &g);
    assert_int_equal(g.status, 200);
    hq_metrics_stop(s);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_render_counters_histogram_and_gauges),
        cmocka_unit_test(test_every_metric_has_help_and_type_before_its_samples),
        cmocka_unit_test(test_healthz_is_503_until_redis_ready_then_200),
        cmocka_unit_test(test_other_paths_are_404),
        cmocka_unit_test(test_bad_addresses_name_metrics_and_the_value),
        cmocka_unit_test(test_busy_port_reports_the_cause_and_stop_frees_the_port),
        cmocka_unit_test(test_all_interfaces_and_ipv6_loopback_serve),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
