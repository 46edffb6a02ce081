/* Tenants and per-endpoint retry policy against a real redis-server, real
 * receivers and the hookq binary: an event naming a tenant reaches only that
 * tenant's subscribers, an endpoint/tenant disagreement is dead-lettered,
 * reserved "hookq." types reach explicit filters only, an endpoint's own
 * backoff and retry window drive its retries, the --tenant filters of
 * `endpoint list`, `dlq` and `stats`, the by-tenant metric and its bound, and
 * every new flag's bad values (exit 2, one line, nothing changed). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "common/buf.h"
#include "common/endpoint_store.h"
#include "hookq/hookq.h"
#include "worker/metrics.h"

#include "tests/harness/worker_env.h"

static struct wenv W;
static char out[1 << 16], errb[4096];

static void reset_env(void)
{
    freeReplyObject(hq_test_cmd(W.c, "FLUSHALL"));
    hq_test_receiver_stop(&W.rcv);
    hq_test_receiver_start(&W.rcv);
    if (truncate(W.log, 0) != 0) {
        /* no log yet */
    }
}

static int setup(void **state)
{
    (void)state;
    reset_env();
    return 0;
}

static void stop(pid_t pid)
{
    int st = hq_test_kill_wait(pid, SIGTERM, 20000);
    if (st != 0)
        wenv_dump_log(&W);
    assert_int_equal(st, 0);
}

/* An endpoint at <receiver><path> with a tenant ("" none) and policy
 * overrides (0 = the deployment's), created through the registry API. */
static void ep_make(const char *path, const char *filters, const char *tenant, long long base_ms,
                    double factor, long long window_ms, int max_attempts, struct hq_endpoint *e)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", W.rcv.url, path);
    wenv_endpoint_fill(url, filters, NULL, max_attempts, e);
    snprintf(e->tenant, sizeof(e->tenant), "%s", tenant);
    e->backoff_base_ms = base_ms;
    e->backoff_factor = factor;
    e->retry_window_ms = window_ms;
    wenv_endpoint_create(&W, e);
}

/* A worker, and a scheduler that moves due retries within 100 ms. */
static void start_both(pid_t *wpid, pid_t *spid)
{
    *wpid = wenv_worker(&W, NULL, NULL);
    const char *sargs[] = {"--interval", "100ms", NULL};
    *spid = wenv_scheduler(&W, sargs);
}

/* Runs `hookq <args...> --redis-url <url>`; stdout in out, stderr in errb. */
#define cli(...) wenv_cli(&W, out, sizeof(out), errb, sizeof(errb), __VA_ARGS__)

/* 1 when one of the receiver's requests to path carried webhook-id id. */
static int got_id(const char *path, const char *id)
{
    int found = 0;
    pthread_mutex_lock(&W.rcv.mu);
    for (size_t i = 0; i < W.rcv.nreqs; i++) {
        char v[160];
        if (strcmp(W.rcv.reqs[i].path, path) == 0 &&
            hq_test_request_header(&W.rcv.reqs[i], "webhook-id", v, sizeof(v)) == 0 &&
            strcmp(v, id) == 0)
            found = 1;
    }
    pthread_mutex_unlock(&W.rcv.mu);
    return found;
}

struct three {
    const char *p[3];
    size_t want[3];
};

static int paths_reached(void *arg)
{
    struct three *t = arg;
    for (int i = 0; i < 3; i++)
        if (t->p[i] && hq_test_receiver_count_path(&W.rcv, t->p[i]) < t->want[i])
            return 0;
    return nothing_pending_and_stream_empty(&W);
}

static void test_an_event_naming_a_tenant_reaches_only_that_tenants_subscribers(void **state)
{
    (void)state;
    struct hq_endpoint a, b, n;
    ep_make("/a", "invoice.*", "acme", 0, 0, 0, 0, &a);
    ep_make("/b", "invoice.*", "beta", 0, 0, 0, 0, &b);
    ep_make("/n", "invoice.*", "", 0, 0, 0, 0, &n);
    int port = hq_test_free_port();
    char addr[64], url[128];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    const char *extra[] = {"--metrics", addr, NULL};
    pid_t pid = wenv_worker(&W, extra, NULL);
    /* Plain-field form, then the msgpack form `hookq produce` writes. */
    freeReplyObject(hq_test_cmd(
        W.c, "XADD hookq:events * type invoice.paid payload {} id evt_acme tenant acme"));
    assert_int_equal(cli("produce", "--type", "invoice.paid", "--id", "evt_beta", "--tenant",
                         "beta", "--data", "{}", NULL),
                     0);
    freeReplyObject(
        hq_test_cmd(W.c, "XADD hookq:events * type invoice.paid payload {} id evt_all"));
    struct three t = {{"/a", "/b", "/n"}, {2, 2, 1}};
    wenv_wait(&W, paths_reached, &t, 15000, "the three events delivered and acked");
    assert_int_equal(hq_test_receiver_count_path(&W.rcv, "/a"), 2);
    assert_int_equal(hq_test_receiver_count_path(&W.rcv, "/b"), 2);
    assert_int_equal(hq_test_receiver_count_path(&W.rcv, "/n"), 1);
    assert_true(got_id("/a", "evt_acme") && got_id("/a", "evt_all"));
    assert_true(got_id("/b", "evt_beta") && got_id("/b", "evt_all"));
    assert_true(got_id("/n", "evt_all"));
    assert_int_equal(hq_test_cmd_int(W.c, "XLEN hookq:dead"), 0);
    /* Attempts counted per tenant; the endpoint without one is not. */
    snprintf(url, sizeof(url), "http://%s/metrics", addr);
    struct hq_buf body;
    hq_buf_init(&body, 1 << 20);
    assert_int_equal(wenv_http_get(url, &body), 200);
    assert_non_null(strstr(body.p, "hookq_deliveries_by_tenant_total{tenant=\"acme\"} 2\n"));
    assert_non_null(strstr(body.p, "hookq_deliveries_by_tenant_total{tenant=\"beta\"} 2\n"));
    assert_null(strstr(body.p, "tenant=\"other\""));
    hq_buf_free(&body);
    stop(pid);
    hq_endpoint_free(&a);
    hq_endpoint_free(&b);
    hq_endpoint_free(&n);
}

static void test_an_endpoint_and_tenant_that_disagree_is_dead_lettered(void **state)
{
    (void)state;
    struct hq_endpoint a;
    ep_make("/a", NULL, "acme", 0, 0, 0, 0, &a);
    pid_t pid = wenv_worker(&W, NULL, NULL);
    freeReplyObject(hq_test_cmd(
        W.c, "XADD hookq:events * type t.x payload {} id evt_bad endpoint %s tenant beta", a.id));
    freeReplyObject(hq_test_cmd(
        W.c, "XADD hookq:events * type t.x payload {} id evt_ok endpoint %s tenant acme", a.id));
    struct three t = {{"/a", NULL, NULL}, {1, 0, 0}};
    wenv_wait(&W, paths_reached, &t, 10000, "the agreeing event delivered, both acked");
    assert_int_equal(hq_test_receiver_count_path(&W.rcv, "/a"), 1);
    assert_true(got_id("/a", "evt_ok"));
    assert_int_equal(hq_test_cmd_int(W.c, "XLEN hookq:dead"), 1);
    stream_field_is(&W, "hookq:dead", 0, "reason", "tenant_mismatch");
    stream_field_is(&W, "hookq:dead", 0, "event_id", "evt_bad");
    stream_field_is(&W, "hookq:dead", 0, "endpoint_id", a.id);
    stream_field_is(&W, "hookq:dead", 0, "tenant", "acme"); /* the endpoint's */
    stop(pid);
    hq_endpoint_free(&a);
}

static void test_reserved_types_reach_explicit_filters_only(void **state)
{
    (void)state;
    struct hq_endpoint s, h, e, x;
    ep_make("/star", NULL, "acme", 0, 0, 0, 0, &s);
    ep_make("/all-hookq", "hookq.*", "", 0, 0, 0, 0, &h);
    ep_make("/ep-hookq", "*,hookq.endpoint.*", "", 0, 0, 0, 0, &e);
    ep_make("/exact", "hookq.tenant.created", "", 0, 0, 0, 0, &x);
    pid_t pid = wenv_worker(&W, NULL, NULL);
    freeReplyObject(
        hq_test_cmd(W.c, "XADD hookq:events * type hookq.endpoint.disabled payload {} id evt_op"));
    freeReplyObject(hq_test_cmd(W.c, "XADD hookq:events * type user.created payload {} id evt_u"));
    struct three t = {{"/star", "/all-hookq", "/ep-hookq"}, {1, 1, 2}};
    wenv_wait(&W, paths_reached, &t, 10000, "both events delivered and acked");
    assert_int_equal(hq_test_receiver_count_path(&W.rcv, "/star"), 1);
    assert_true(got_id("/star", "evt_u")); /* "*": the ordinary type only */
    assert_int_equal(hq_test_receiver_count_path(&W.rcv, "/all-hookq"), 1);
    assert_true(got_id("/all-hookq", "evt_op"));
    assert_int_equal(hq_test_receiver_count_path(&W.rcv, "/ep-hookq"), 2);
    assert_int_equal(hq_test_receiver_count_path(&W.rcv, "/exact"), 0);
    stop(pid);
    hq_endpoint_free(&s);
    hq_endpoint_free(&h);
    hq_endpoint_free(&e);
    hq_endpoint_free(&x);
}

/* The arrival times (unix ms) of the receiver's requests to path, in order. */
static size_t arrivals(const char *path, int64_t *at, size_t max)
{
    size_t k = 0;
    pthread_mutex_lock(&W.rcv.mu);
    for (size_t i = 0; i < W.rcv.nreqs && k < max; i++)
        if (strcmp(W.rcv.reqs[i].path, path) == 0)
            at[k++] = W.rcv.reqs[i].at_ms;
    pthread_mutex_unlock(&W.rcv.mu);
    return k;
}

static void test_an_endpoints_own_backoff_spaces_its_attempts(void **state)
{
    (void)state;
    /* base 1 s, factor 1, 4 attempts; the deployment's default base is 30 s. */
    struct hq_endpoint e;
    ep_make("/s/500", NULL, "acme", 1000, 1, 0, 4, &e);
    pid_t wpid, spid;
    start_both(&wpid, &spid);
    wenv_produce(&W, "b.x", "{}", "evt_b", NULL, NULL, 0);
    struct redis_arg ra = {&W, "XLEN hookq:dead", 1};
    wenv_wait(&W, redis_int_is, &ra, 15000, "4 attempts ~1 s apart, then the dead letter");
    stream_field_is(&W, "hookq:dead", 0, "reason", "exhausted");
    stream_field_is(&W, "hookq:dead", 0, "attempts", "4");
    stream_field_is(&W, "hookq:dead", 0, "tenant", "acme");
    int64_t at[8];
    size_t n = arrivals("/s/500", at, 8);
    assert_int_equal(n, 4);
    for (size_t i = 1; i < n; i++) {
        int64_t gap = at[i] - at[i - 1];
        /* 0.8-1.2 s of backoff plus the scheduler's and worker's turn. */
        if (gap < 700 || gap > 4000)
            fail_msg("attempt %zu came %lld ms after the previous one", i + 1, (long long)gap);
    }
    stop(spid);
    stop(wpid);
    hq_endpoint_free(&e);
}

static void test_the_retry_window_ends_retries_before_max_attempts(void **state)
{
    (void)state;
    /* 1 s apart, 10 attempts allowed, but no retry due past first + 2.5 s. */
    struct hq_endpoint e;
    ep_make("/s/503", NULL, "", 1000, 1, 2500, 10, &e);
    pid_t wpid, spid;
    start_both(&wpid, &spid);
    wenv_produce(&W, "w.x", "{}", "evt_w", NULL, NULL, 0);
    struct redis_arg ra = {&W, "XLEN hookq:dead", 1};
    wenv_wait(&W, redis_int_is, &ra, 15000, "the window's dead letter");
    stream_field_is(&W, "hookq:dead", 0, "reason", "retry_window_exceeded");
    char v[32];
    assert_int_equal(stream_field(&W, "hookq:dead", 0, "attempts", v, sizeof(v)), 0);
    long attempts = strtol(v, NULL, 10);
    assert_true(attempts >= 2 && attempts <= 4);
    assert_int_equal(hq_test_receiver_count_path(&W.rcv, "/s/503"), (size_t)attempts);
    assert_int_equal(stream_field(&W, "hookq:dead", 0, "first_attempt_ms", v, sizeof(v)), 0);
    long long first = strtoll(v, NULL, 10);
    assert_int_equal(stream_field(&W, "hookq:dead", 0, "last_attempt_ms", v, sizeof(v)), 0);
    assert_true(strtoll(v, NULL, 10) - first <= 2500);
    assert_int_equal(hq_test_cmd_int(W.c, "ZCARD hookq:retry"), 0);
    stop(spid);
    stop(wpid);
    hq_endpoint_free(&e);
}

static void test_a_retry_keeps_the_events_tenant(void **state)
{
    (void)state;
    struct hq_endpoint e;
    ep_make("/s/500", NULL, "acme", 1000, 1, 0, 5, &e);
    pid_t wpid = wenv_worker(&W, NULL, NULL);
    freeReplyObject(
        hq_test_cmd(W.c, "XADD hookq:events * type r.x payload {} id evt_r tenant acme"));
    struct redis_arg ra = {&W, "ZCARD hookq:retry", 1};
    wenv_wait(&W, redis_int_is, &ra, 10000, "the retry");
    redisReply *r = hq_test_cmd(W.c, "HVALS hookq:retry:data");
    assert_int_equal(r->elements, 1);
    static const char want[] = "\xa6"
                               "tenant"
                               "\xa4"
                               "acme"; /* msgpack "tenant": "acme" */
    assert_non_null(memmem(r->element[0]->str, r->element[0]->len, want, sizeof(want) - 1));
    freeReplyObject(r);
    /* The endpoint goes away: the re-enqueued retry's dead letter still
     * names the tenant, which only the retry itself carried. */
    struct hq_err err = {0};
    assert_int_equal(hq_endpoint_delete(W.c, W.tl.L.reg, e.id, &err), 0);
    const char *sargs[] = {"--interval", "100ms", NULL};
    pid_t spid = wenv_scheduler(&W, sargs);
    struct redis_arg rd = {&W, "XLEN hookq:dead", 1};
    wenv_wait(&W, redis_int_is, &rd, 10000, "the dead letter");
    stream_field_is(&W, "hookq:dead", 0, "reason", "endpoint_deleted");
    stream_field_is(&W, "hookq:dead", 0, "tenant", "acme");
    stop(spid);
    stop(wpid);
    hq_endpoint_free(&e);
}

/* A dead letter as the worker writes one, by hand. */
static void dead(const char *event_id, const char *ep, const char *tenant, const char *reason)
{
    freeReplyObject(hq_test_cmd(W.c,
                                "XADD hookq:dead * event_id %s type t.x endpoint_id %s url u "
                                "attempts 3 reason %s payload {} tenant %s",
                                event_id, ep, reason, tenant));
}

static void test_dlq_list_replay_and_purge_filter_on_tenant(void **state)
{
    (void)state;
    dead("evt_1", "ep_a", "acme", "exhausted");
    dead("evt_2", "ep_a", "acme", "exhausted");
    dead("evt_3", "ep_b", "beta", "exhausted");
    freeReplyObject(hq_test_cmd(
        W.c, "XADD hookq:dead * event_id evt_4 type t.x endpoint_id ep_c reason exhausted "
             "payload {} tenant \"\""));
    assert_int_equal(cli("dlq", "list", "--tenant", "acme", "--json", NULL), 0);
    assert_non_null(strstr(out, "\"evt_1\""));
    assert_non_null(strstr(out, "\"evt_2\""));
    assert_null(strstr(out, "evt_3"));
    assert_null(strstr(out, "evt_4"));
    assert_int_equal(cli("dlq", "list", "--tenant", "nobody", NULL), 0);
    assert_null(strstr(out, "evt_"));

    assert_int_equal(cli("dlq", "replay", "--all", "--tenant", "acme", NULL), 0);
    assert_int_equal(hq_test_cmd_int(W.c, "XLEN hookq:events"), 2);
    assert_int_equal(hq_test_cmd_int(W.c, "XLEN hookq:dead"), 2);
    /* The replayed events keep their tenant. */
    stream_field_is(&W, "hookq:events", 0, "tenant", "acme");
    stream_field_is(&W, "hookq:events", 1, "tenant", "acme");
    stream_field_is(&W, "hookq:events", 0, "endpoint", "ep_a");

    assert_int_equal(cli("dlq", "purge", "--all", "--tenant", "beta", "--yes", NULL), 0);
    assert_int_equal(hq_test_cmd_int(W.c, "XLEN hookq:dead"), 1);
    stream_field_is(&W, "hookq:dead", 0, "event_id", "evt_4");
}

/* Counts the lines of out holding needle. */
static int lines_with(const char *needle)
{
    int n = 0;
    for (const char *p = out; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_endpoint_list_and_stats_by_tenant(void **state)
{
    (void)state;
    char a1[64], a2[64], b1[64];
    assert_int_equal(cli("endpoint", "add", "--name", "a1", "--url", "http://127.0.0.1:9/a",
                         "--tenant", "acme", "--json", NULL),
                     0);
    assert_int_equal(sscanf(out, "{\"id\":\"%63[^\"]", a1), 1);
    assert_int_equal(cli("endpoint", "add", "--name", "a2", "--url", "http://127.0.0.1:9/a",
                         "--tenant", "acme", "--disabled", "--json", NULL),
                     0);
    assert_int_equal(sscanf(out, "{\"id\":\"%63[^\"]", a2), 1);
    assert_int_equal(cli("endpoint", "add", "--name", "b1", "--url", "http://127.0.0.1:9/b",
                         "--tenant", "beta", "--json", NULL),
                     0);
    assert_int_equal(sscanf(out, "{\"id\":\"%63[^\"]", b1), 1);
    assert_int_equal(
        cli("endpoint", "add", "--name", "none", "--url", "http://127.0.0.1:9/n", NULL), 0);
    assert_int_equal(hq_test_cmd_int(W.c, "SCARD hookq:idx:tenant:acme"), 2);

    assert_int_equal(cli("endpoint", "list", "--tenant", "acme", NULL), 0);
    assert_non_null(strstr(out, a1));
    assert_non_null(strstr(out, a2));
    assert_null(strstr(out, b1));
    assert_int_equal(lines_with("\n"), 3); /* header + 2 */
    assert_int_equal(cli("endpoint", "list", "--tenant", "acme", "--json", NULL), 0);
    assert_int_equal(lines_with("\"tenant\":\"acme\""), 2);
    assert_null(strstr(out, "beta"));
    assert_int_equal(cli("endpoint", "list", "--tenant", "acme", "--limit", "1", NULL), 0);
    assert_int_equal(lines_with("\n"), 2);

    dead("evt_1", a1, "acme", "exhausted");
    dead("evt_2", a2, "acme", "tenant_mismatch");
    dead("evt_3", b1, "beta", "exhausted");
    assert_int_equal(cli("stats", "--tenant", "acme", "--json", NULL), 0);
    assert_non_null(strstr(out, "\"tenant\":\"acme\",\"endpoints\":2,\"endpoints_enabled\":1,"
                                "\"endpoints_disabled\":1,\"dead_letters\":2,\"dead_scanned\":3,"
                                "\"dead_capped\":false"));
    assert_non_null(strstr(out, "\"dead_by_reason\":{\"exhausted\":1,\"tenant_mismatch\":1}"));
    assert_int_equal(cli("stats", "--tenant", "acme", NULL), 0);
    assert_non_null(strstr(out, "endpoints:    2 (1 enabled, 1 disabled)\n"));
    assert_non_null(strstr(out, "dead letters: 2 (the newest 3 dead letters scanned)\n"));

    /* The index follows updates and deletes (same MULTI as the others). */
    assert_int_equal(cli("endpoint", "update", a2, "--tenant", "beta", NULL), 0);
    assert_int_equal(hq_test_cmd_int(W.c, "SISMEMBER hookq:idx:tenant:acme %s", a2), 0);
    assert_int_equal(hq_test_cmd_int(W.c, "SISMEMBER hookq:idx:tenant:beta %s", a2), 1);
    assert_int_equal(cli("endpoint", "update", a2, "--tenant", "", NULL), 0);
    assert_int_equal(hq_test_cmd_int(W.c, "SISMEMBER hookq:idx:tenant:beta %s", a2), 0);
    assert_int_equal(cli("endpoint", "show", a2, "--json", NULL), 0);
    assert_non_null(strstr(out, "\"tenant\":null"));
    assert_int_equal(cli("endpoint", "delete", a1, NULL), 0);
    assert_int_equal(hq_test_cmd_int(W.c, "EXISTS hookq:idx:tenant:acme"), 0);
}

static void test_endpoint_policy_flags_are_stored_and_shown(void **state)
{
    (void)state;
    char id[64];
    assert_int_equal(cli("endpoint", "add", "--name", "p", "--url", "http://127.0.0.1:9/p",
                         "--backoff-base", "1s", "--backoff-factor", "1.5", "--backoff-max", "1m",
                         "--retry-window", "2h", "--json", NULL),
                     0);
    assert_non_null(strstr(out, "\"backoff_base_ms\":1000,\"backoff_factor\":1.5,"
                                "\"backoff_max_ms\":60000,\"retry_window_ms\":7200000"));
    assert_int_equal(sscanf(out, "{\"id\":\"%63[^\"]", id), 1);
    assert_int_equal(cli("endpoint", "show", id, NULL), 0);
    assert_non_null(strstr(out, "backoff_base: 1000ms\n"));
    assert_non_null(strstr(out, "backoff_factor: 1.5\n"));
    assert_non_null(strstr(out, "retry_window: 7200000ms\n"));
    /* 0 gives a field back to the deployment's policy. */
    assert_int_equal(
        cli("endpoint", "update", id, "--backoff-base", "0", "--retry-window", "0", "--json", NULL),
        0);
    assert_non_null(strstr(out, "\"backoff_base_ms\":0,\"backoff_factor\":1.5,"
                                "\"backoff_max_ms\":60000,\"retry_window_ms\":0"));
}

/* Every change bumps endpoints:ver; with it, the key count and the stream
 * lengths, "nothing changed" is checked. */
static void snapshot(long long s[4])
{
    s[0] = hq_test_cmd_int(W.c, "DBSIZE");
    redisReply *r = hq_test_cmd(W.c, "GET hookq:endpoints:ver");
    s[1] = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
    freeReplyObject(r);
    s[2] = hq_test_cmd_int(W.c, "XLEN hookq:events");
    s[3] = hq_test_cmd_int(W.c, "XLEN hookq:dead");
}

static void test_bad_tenant_and_policy_values_exit_2_with_one_line_and_change_nothing(void **state)
{
    (void)state;
    char id[64];
    assert_int_equal(cli("endpoint", "add", "--name", "k", "--url", "http://127.0.0.1:9/k",
                         "--tenant", "acme", "--json", NULL),
                     0);
    assert_int_equal(sscanf(out, "{\"id\":\"%63[^\"]", id), 1);
    dead("evt_1", id, "acme", "exhausted");
    const char *u = "http://127.0.0.1:9/x";
    static const char *const X = NULL;
    struct {
        const char *args[12];
        const char *want;
    } cases[] = {
        {{"endpoint", "add", "--name", "x", "--url", u, "--tenant", "a b"},
         "--tenant: 'a b' has a character outside [A-Za-z0-9_.:-]"},
        {{"endpoint", "add", "--name", "x", "--url", u, "--tenant", ""}, "--tenant: empty"},
        {{"endpoint", "add", "--name", "x", "--url", u, "--tenant",
          "t12345678901234567890123456789012345678901234567890123456789012345"},
         "--tenant: 66 chars, max 64"},
        {{"endpoint", "add", "--name", "x", "--url", u, "--backoff-factor", "0.5"},
         "--backoff-factor: 0.5 must be >= 1 and <= 100"},
        {{"endpoint", "add", "--name", "x", "--url", u, "--backoff-factor", "abc"},
         "--backoff-factor"},
        {{"endpoint", "add", "--name", "x", "--url", u, "--backoff-base", "20h"},
         "--backoff-base: 72000000ms must be <= the effective backoff max"},
        {{"endpoint", "add", "--name", "x", "--url", u, "--backoff-base", "2s", "--backoff-max",
          "1s"},
         "--backoff-base: 2000ms must be <= --backoff-max (1000ms)"},
        {{"endpoint", "add", "--name", "x", "--url", u, "--backoff-max", "31d"}, "--backoff-max"},
        {{"endpoint", "add", "--name", "x", "--url", u, "--retry-window", "400d"},
         "--retry-window"},
        {{"endpoint", "add", "--name", "x", "--url", u, "--retry-window", "soon"},
         "--retry-window"},
        {{"endpoint", "update", id, "--tenant", "x/y"}, "--tenant: 'x/y' has a character outside"},
        {{"endpoint", "update", id, "--backoff-max", "1s"},
         "--backoff-max: 1000ms must be >= the effective backoff base (30000ms"},
        {{"endpoint", "update", id, "--backoff-factor", "101"}, "--backoff-factor: 101"},
        {{"endpoint", "list", "--tenant", "a b"}, "--tenant: 'a b'"},
        {{"endpoint", "list", "--tenant", "acme", "--after", id}, "--after and --tenant"},
        {{"dlq", "list", "--tenant", "a b"}, "--tenant: 'a b'"},
        {{"dlq", "replay", "1-1", "--tenant", "acme"}, "--tenant"},
        {{"dlq", "purge", "1-1", "--tenant", "acme", "--yes"}, "--tenant apply to --all"},
        {{"dlq", "purge", "--all", "--tenant", "", "--yes"}, "--tenant: empty"},
        {{"stats", "--tenant", ""}, "--tenant: empty"},
        {{"produce", "--type", "hookq.endpoint.disabled", "--data", "{}"},
         "type: 'hookq.endpoint.disabled' is reserved for hookq's own events (prefix hookq.)"},
        {{"produce", "--type", "t.x", "--tenant", "a b", "--data", "{}"}, "tenant: 'a b'"},
    };
    (void)X;
    long long before[4], after[4];
    snapshot(before);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *const *a = cases[i].args;
        int rc = cli(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], NULL);
        char *nl = strchr(errb, '\n');
        if (rc != 2 || !strstr(errb, cases[i].want) || !nl || nl[1] != '\0')
            fail_msg("case %zu (%s %s ... %s): rc %d, stderr '%s'", i, a[0], a[1], cases[i].want,
                     rc, errb);
        snapshot(after);
        if (memcmp(before, after, sizeof(before)) != 0)
            fail_msg("case %zu (%s): something changed", i, cases[i].want);
    }
    /* The endpoint is as it was. */
    assert_int_equal(cli("endpoint", "show", id, "--json", NULL), 0);
    assert_non_null(strstr(out, "\"tenant\":\"acme\",\"backoff_base_ms\":0,\"backoff_factor\":0,"
                                "\"backoff_max_ms\":0,\"retry_window_ms\":0"));
}

static void test_libhookq_writes_the_tenant_and_refuses_reserved_types(void **state)
{
    (void)state;
    struct hookq_producer *p = NULL;
    char msg[256], id[64];
    assert_int_equal(hookq_producer_connect(wenv_url(&W), "hookq", &p, msg, sizeof(msg)), 0);
    struct hookq_event ev = {.type = "hookq.endpoint.disabled", .payload = "{}", .payload_len = 2};
    assert_int_equal(hookq_produce(p, &ev, id, sizeof(id), msg, sizeof(msg)), HOOKQ_EINVAL);
    assert_non_null(strstr(msg, "is reserved for hookq's own events"));
    ev.type = "t.x";
    ev.tenant = "a b";
    assert_int_equal(hookq_produce(p, &ev, id, sizeof(id), msg, sizeof(msg)), HOOKQ_EINVAL);
    assert_non_null(strstr(msg, "tenant: 'a b'"));
    assert_int_equal(hq_test_cmd_int(W.c, "XLEN hookq:events"), 0);
    ev.tenant = "acme";
    assert_int_equal(hookq_produce(p, &ev, id, sizeof(id), msg, sizeof(msg)), 0);
    hookq_producer_free(p);
    /* What it wrote decodes with the tenant. */
    redisReply *r = hq_test_cmd(W.c, "XRANGE hookq:events - +");
    const redisReply *f = r->element[0]->element[1];
    struct hq_event got;
    struct hq_err err = {0};
    assert_int_equal(hq_event_decode_msgpack((const uint8_t *)f->element[1]->str,
                                             f->element[1]->len, 1024, &got, &err),
                     0);
    assert_int_equal(got.tenant_len, 4);
    assert_memory_equal(got.tenant, "acme", 4);
    freeReplyObject(r);
}

static void test_the_by_tenant_metric_keeps_100_tenants_then_other(void **state)
{
    (void)state;
    static struct hq_metrics m; /* large: not on the stack */
    hq_metrics_init(&m);
    assert_int_equal(hq_metrics_tenant_slot(&m, ""), -1);
    char t[32];
    for (int i = 0; i < HQ_METRICS_TENANTS_MAX; i++) {
        snprintf(t, sizeof(t), "t%03d", i);
        assert_int_equal(hq_metrics_tenant_slot(&m, t), i);
    }
    assert_int_equal(hq_metrics_tenant_slot(&m, "t007"), 7); /* seen: same slot */
    assert_int_equal(hq_metrics_tenant_slot(&m, "late1"), HQ_METRICS_TENANTS_MAX);
    assert_int_equal(hq_metrics_tenant_slot(&m, "late2"), HQ_METRICS_TENANTS_MAX);
    hq_metrics_tenant_count(&m, 7);
    hq_metrics_tenant_count(&m, HQ_METRICS_TENANTS_MAX);
    hq_metrics_tenant_count(&m, HQ_METRICS_TENANTS_MAX);
    hq_metrics_tenant_count(&m, -1); /* no tenant: nothing */
    struct hq_buf body;
    wenv_metrics_text(&m, &body);
    assert_non_null(strstr(body.p, "# TYPE hookq_deliveries_by_tenant_total counter\n"));
    assert_non_null(strstr(body.p, "hookq_deliveries_by_tenant_total{tenant=\"t007\"} 1\n"));
    assert_non_null(strstr(body.p, "hookq_deliveries_by_tenant_total{tenant=\"t099\"} 0\n"));
    assert_non_null(strstr(body.p, "hookq_deliveries_by_tenant_total{tenant=\"other\"} 2\n"));
    assert_null(strstr(body.p, "late1"));
    int series = 0;
    for (const char *p = body.p; (p = strstr(p, "hookq_deliveries_by_tenant_total{")); p++)
        series++;
    assert_int_equal(series, HQ_METRICS_TENANTS_MAX + 1);
    hq_buf_free(&body);
}

static int group_setup(void **state)
{
    (void)state;
    wenv_start(&W, NULL);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    wenv_stop(&W);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_an_event_naming_a_tenant_reaches_only_that_tenants_subscribers,
                               setup),
        cmocka_unit_test_setup(test_an_endpoint_and_tenant_that_disagree_is_dead_lettered, setup),
        cmocka_unit_test_setup(test_reserved_types_reach_explicit_filters_only, setup),
        cmocka_unit_test_setup(test_an_endpoints_own_backoff_spaces_its_attempts, setup),
        cmocka_unit_test_setup(test_the_retry_window_ends_retries_before_max_attempts, setup),
        cmocka_unit_test_setup(test_a_retry_keeps_the_events_tenant, setup),
        cmocka_unit_test_setup(test_dlq_list_replay_and_purge_filter_on_tenant, setup),
        cmocka_unit_test_setup(test_endpoint_list_and_stats_by_tenant, setup),
        cmocka_unit_test_setup(test_endpoint_policy_flags_are_stored_and_shown, setup),
        cmocka_unit_test_setup(
            test_bad_tenant_and_policy_values_exit_2_with_one_line_and_change_nothing, setup),
        cmocka_unit_test_setup(test_libhookq_writes_the_tenant_and_refuses_reserved_types, setup),
        cmocka_unit_test(test_the_by_tenant_metric_keeps_100_tenants_then_other),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
