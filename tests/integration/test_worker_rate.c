/* Deliveries per second for the console's overview (api/worker_rate.h): the
 * parser reads a real worker's /metrics body (worker/metrics.c's renderer),
 * and the sampler turns two reads of real /metrics servers into a rate,
 * leaving out a worker that does not answer and starting over when a counter
 * goes down (the worker restarted). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "api/worker_rate.h"
#include "tests/harness/worker_env.h"
#include "worker/metrics.h"

static void test_parse_reads_a_workers_metrics(void **state)
{
    (void)state;
    struct hq_metrics m;
    hq_metrics_init(&m);
    m.deliveries[HQ_MO_DELIVERED] = 7;
    m.deliveries[HQ_MO_RETRY] = 3;
    m.deliveries[HQ_MO_DEFERRED] = 100;
    struct hq_buf body;
    wenv_metrics_text(&m, &body);
    struct hq_worker_rate_sample s;
    assert_int_equal(hq_worker_rate_parse(body.p, body.len, &s), HQ_MO_COUNT);
    assert_true(s.delivered == 7);
    hq_buf_free(&body);
    hq_metrics_free_parts(&m);
}

static void test_parse_ignores_what_is_not_the_counter(void **state)
{
    (void)state;
    const char *text = "# HELP hookq_deliveries_total Deliveries\n"
                       "# TYPE hookq_deliveries_total counter\n"
                       "hookq_deliveries_total_other{outcome=\"delivered\"} 5\n"
                       "hookq_deliveries_by_tenant_total{tenant=\"delivered\"} 9\n"
                       "hookq_deliveries_total{outcome=\"delivered\"} abc\n"
                       "hookq_deliveries_total{outcome=\"delivered\"} -4\n"
                       "hookq_deliveries_total{outcome=\"retry\"} 2\r\n"
                       "hookq_deliveries_total{outcome=\"delivered\"} 12"; /* no final newline */
    struct hq_worker_rate_sample s;
    assert_int_equal(hq_worker_rate_parse(text, strlen(text), &s), 2);
    assert_true(s.delivered == 12);
    assert_int_equal(hq_worker_rate_parse("", 0, &s), 0);
    assert_int_equal(hq_worker_rate_parse("hookq_deliveries_total", 22, &s), 0);
}

struct rate_arg {
    char want[128]; /* a substring of the appended fields */
    int absent;     /* wait for want to be absent instead */
    char last[512];
};

static int appended_has(void *arg)
{
    struct rate_arg *a = arg;
    struct hq_buf b;
    hq_buf_init(&b, 4096);
    assert_int_equal(hq_buf_append(&b, "{\"x\":1}", 7), 0);
    assert_int_equal(hq_worker_rate_append(&b), 0);
    snprintf(a->last, sizeof(a->last), "%s", b.p);
    hq_buf_free(&b);
    return (strstr(a->last, a->want) != NULL) != a->absent;
}

static void test_sampler_rates_reachable_workers(void **state)
{
    (void)state;
    struct hq_metrics m;
    hq_metrics_init(&m);
    m.deliveries[HQ_MO_DELIVERED] = 1000;
    struct hq_err err = {0};
    struct hq_metrics_server *s = hq_metrics_serve("127.0.0.1:0", &m, &err);
    assert_non_null(s);
    char urls[256];
    snprintf(urls, sizeof(urls), " http://127.0.0.1:%d/metrics , http://127.0.0.1:%d/metrics",
             hq_metrics_port(s), hq_test_free_port());
    struct hq_err cerr = {0};
    assert_int_equal(hq_worker_rate_configure(urls, &cerr), 0);

    /* first read: one of two reachable, no rate yet */
    struct rate_arg a = {.want = ",\"workers_configured\":2,\"workers_reachable\":1,"
                                 "\"deliveries_per_s\":null}"};
    assert_true(appended_has(&a));
    assert_true(strncmp(a.last, "{\"x\":1,", 7) == 0);
    /* 50 more deliveries: the next read (a second later at the earliest) has a rate */
    m.deliveries[HQ_MO_DELIVERED] += 50;
    struct rate_arg none = {.want = "\"deliveries_per_s\":null", .absent = 1};
    if (!hq_test_wait(appended_has, &none, 5000))
        fail_msg("no rate after 5 s: %s", none.last);
    double rate = atof(strstr(none.last, "\"deliveries_per_s\":") + 19);
    if (!(rate > 0 && rate <= 50.0))
        fail_msg("rate %g for 50 deliveries over >= 1 s: %s", rate, none.last);
    /* a counter that goes down (a restarted worker) starts over: null again */
    m.deliveries[HQ_MO_DELIVERED] = 3;
    struct rate_arg reset = {.want = "\"deliveries_per_s\":null"};
    if (!hq_test_wait(appended_has, &reset, 5000))
        fail_msg("a restarted worker's counter gave a rate: %s", reset.last);
    /* not an object: refused, b unchanged */
    struct hq_buf b;
    hq_buf_init(&b, 64);
    assert_int_equal(hq_buf_append(&b, "[1]", 3), 0);
    assert_int_equal(hq_worker_rate_append(&b), HQ_EINVAL);
    assert_string_equal(b.p, "[1]");
    hq_buf_free(&b);
    hq_metrics_stop(s);
    hq_metrics_free_parts(&m);
}

/* hookq api --worker-metrics: bad URLs refused before anything starts,
 * naming the one at fault. */
static void test_bad_urls_are_refused(void **state)
{
    (void)state;
    struct hq_err err = {0};
    assert_int_equal(hq_worker_rate_configure("http://a/metrics, ftp://b/metrics", &err),
                     HQ_EINVAL);
    assert_string_equal(err.msg,
                        "--worker-metrics: 'ftp://b/metrics' is not an http:// or https:// URL");
    assert_int_equal(hq_worker_rate_configure("", &err), 0);
    const char *args[] = {"api", "--worker-metrics", "10.0.0.5:9464", NULL};
    char out[512], errs[512];
    assert_int_equal(hq_test_cli(args, NULL, NULL, out, sizeof(out), errs, sizeof(errs)), 2);
    assert_string_equal(
        errs, "hookq api: --worker-metrics: '10.0.0.5:9464' is not an http:// or https:// URL\n");
    /* the option is also HOOKQ_WORKER_METRICS */
    const char *env[] = {"HOOKQ_WORKER_METRICS=nope", NULL};
    const char *args2[] = {"api", NULL};
    assert_int_equal(hq_test_cli(args2, env, NULL, out, sizeof(out), errs, sizeof(errs)), 2);
    assert_non_null(strstr(errs, "'nope' is not an http:// or https:// URL"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_reads_a_workers_metrics),
        cmocka_unit_test(test_parse_ignores_what_is_not_the_counter),
        cmocka_unit_test(test_sampler_rates_reachable_workers),
        cmocka_unit_test(test_bad_urls_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
