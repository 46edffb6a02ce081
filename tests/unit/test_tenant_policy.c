/* Tenants and per-endpoint retry policy, the pure parts: tenant syntax, the
 * reserved "hookq." type prefix against "*" and explicit filters (matching
 * and the index keys a worker unions), producers refusing reserved types,
 * policy override resolution and its cross-field check, and the retry window
 * arithmetic. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "common/backoff.h"
#include "common/endpoint.h"
#include "common/event.h"
#include "common/limits.h"

static void test_tenant_syntax_is_1_to_64_chars_of_the_type_set(void **state)
{
    (void)state;
    struct hq_err err = {0};
    assert_int_equal(hq_endpoint_check_tenant("acme", &err), 0);
    assert_int_equal(hq_endpoint_check_tenant("acct_42:eu-1.prod", &err), 0);
    char t[HQ_TENANT_MAX + 2];
    memset(t, 'x', sizeof(t));
    t[HQ_TENANT_MAX] = '\0';
    assert_int_equal(hq_endpoint_check_tenant(t, &err), 0);
    t[HQ_TENANT_MAX] = 'x';
    t[HQ_TENANT_MAX + 1] = '\0';
    assert_int_equal(hq_endpoint_check_tenant(t, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "tenant: 65 chars, max 64");
    assert_int_equal(hq_endpoint_check_tenant("", &err), HQ_EINVAL);
    assert_string_equal(err.msg, "tenant: empty");
    assert_int_equal(hq_endpoint_check_tenant("a b", &err), HQ_EINVAL);
    assert_string_equal(err.msg, "tenant: 'a b' has a character outside [A-Za-z0-9_.:-]");
    assert_int_equal(hq_endpoint_check_tenant("a/b", &err), HQ_EINVAL);
    assert_int_equal(hq_endpoint_check_tenant("t\n", &err), HQ_EINVAL);
}

static struct hq_endpoint with_filters(char **f, int n)
{
    struct hq_endpoint e;
    memset(&e, 0, sizeof(e));
    e.events = f;
    e.nevents = n;
    return e;
}

#define MATCH(e, t) hq_endpoint_matches(&(e), (t), strlen(t))

static void test_star_does_not_match_reserved_types_explicit_filters_do(void **state)
{
    (void)state;
    char star[] = "*", hq[] = "hookq.*", hqep[] = "hookq.endpoint.*",
         exact[] = "hookq.endpoint.disabled", user[] = "user.*";
    struct hq_endpoint none = with_filters(NULL, 0); /* no filter = "*" */
    struct hq_endpoint s = with_filters((char *[]){star}, 1);
    assert_true(MATCH(none, "invoice.paid"));
    assert_true(MATCH(s, "invoice.paid"));
    assert_false(MATCH(none, "hookq.endpoint.disabled"));
    assert_false(MATCH(s, "hookq.endpoint.disabled"));
    assert_false(MATCH(s, "hookq.x"));
    /* Only the exact prefix "hookq." is reserved. */
    assert_true(MATCH(s, "hookq"));
    assert_true(MATCH(s, "hookqx.a"));
    assert_true(MATCH(s, "Hookq.a"));

    struct hq_endpoint h = with_filters((char *[]){hq}, 1);
    assert_true(MATCH(h, "hookq.endpoint.disabled"));
    assert_false(MATCH(h, "invoice.paid"));
    struct hq_endpoint he = with_filters((char *[]){hqep}, 1);
    assert_true(MATCH(he, "hookq.endpoint.disabled"));
    assert_false(MATCH(he, "hookq.tenant.x"));
    struct hq_endpoint ex = with_filters((char *[]){exact}, 1);
    assert_true(MATCH(ex, "hookq.endpoint.disabled"));
    assert_false(MATCH(ex, "hookq.endpoint.enabled"));
    /* "*" beside an explicit hookq filter: the explicit one still matches. */
    struct hq_endpoint both = with_filters((char *[]){star, hqep}, 2);
    assert_true(MATCH(both, "hookq.endpoint.disabled"));
    assert_false(MATCH(both, "hookq.tenant.x"));
    struct hq_endpoint u = with_filters((char *[]){user}, 1);
    assert_false(MATCH(u, "hookq.user.x"));
}

static void test_index_keys_of_a_reserved_type_leave_out_the_star_set(void **state)
{
    (void)state;
    char keys[HQ_ENDPOINT_INDEX_KEYS_MAX][HQ_KEY_MAX];
    const char *t = "hookq.endpoint.disabled";
    int n = hq_endpoint_index_keys("p", t, strlen(t), keys, HQ_ENDPOINT_INDEX_KEYS_MAX);
    assert_int_equal(n, 3);
    assert_string_equal(keys[0], "p:idx:t:hookq.endpoint.disabled");
    assert_string_equal(keys[1], "p:idx:p:hookq.");
    assert_string_equal(keys[2], "p:idx:p:hookq.endpoint.");
    for (int i = 0; i < n; i++)
        assert_string_not_equal(keys[i], "p:idx:p:");
    t = "invoice.paid";
    n = hq_endpoint_index_keys("p", t, strlen(t), keys, HQ_ENDPOINT_INDEX_KEYS_MAX);
    assert_int_equal(n, 3);
    assert_string_equal(keys[1], "p:idx:p:");
}

static void test_producers_refuse_reserved_types_the_decoder_accepts_them(void **state)
{
    (void)state;
    struct hq_err err = {0};
    const char *t = "hookq.endpoint.disabled";
    assert_true(hq_event_type_reserved(t, strlen(t)));
    assert_false(hq_event_type_reserved("hookq", 5));
    assert_int_equal(hq_event_check_produced_type(t, strlen(t), &err), HQ_EINVAL);
    assert_string_equal(
        err.msg,
        "type: 'hookq.endpoint.disabled' is reserved for hookq's own events (prefix hookq.)");
    assert_int_equal(hq_event_check_produced_type("invoice.paid", 12, &err), 0);
    assert_int_equal(hq_event_check_produced_type("a b", 3, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "type: 'a b' has a character outside [A-Za-z0-9_.:-]");
    assert_int_equal(hq_event_check_type(t, strlen(t), &err), 0);
}

static struct hq_policy deployment(void)
{
    struct hq_policy p = {.max_attempts = 10, .base_ms = 30000, .factor = 3, .max_ms = 36000000};
    return p;
}

static void test_policy_overrides_apply_field_by_field(void **state)
{
    (void)state;
    struct hq_policy dep = deployment(), p;
    struct hq_endpoint e;
    memset(&e, 0, sizeof(e));
    hq_endpoint_policy(&e, &dep, &p);
    assert_int_equal(p.max_attempts, 10);
    assert_int_equal(p.base_ms, 30000);
    assert_true(p.factor == 3);
    assert_int_equal(p.max_ms, 36000000);
    e.backoff_base_ms = 1000;
    hq_endpoint_policy(&e, &dep, &p);
    assert_int_equal(p.base_ms, 1000);
    assert_true(p.factor == 3);
    assert_int_equal(p.max_ms, 36000000);
    e.backoff_factor = 1;
    e.backoff_max_ms = 5000;
    e.max_attempts = 4;
    hq_endpoint_policy(&e, &dep, &p);
    assert_int_equal(p.max_attempts, 4);
    assert_int_equal(p.base_ms, 1000);
    assert_true(p.factor == 1);
    assert_int_equal(p.max_ms, 5000);
    /* base 1 s, factor 1: every delay in [0.8 s, 1.2 s], not the deployment's 30 s. */
    for (int failed = 1; failed <= 5; failed++) {
        long long lo = hq_backoff_delay_ms(&p, failed, 0);
        long long hi = hq_backoff_delay_ms(&p, failed, UINT64_MAX);
        assert_true(lo >= 800 && hi <= 1200);
    }
}

static void test_policy_check_is_against_the_effective_values(void **state)
{
    (void)state;
    struct hq_policy dep = deployment();
    struct hq_err err = {0};
    struct hq_endpoint e;
    memset(&e, 0, sizeof(e));
    assert_int_equal(hq_endpoint_check_policy(&e, &dep, &err), 0);
    e.backoff_base_ms = 72000000; /* 20 h > the deployment's 10 h max */
    assert_int_equal(hq_endpoint_check_policy(&e, &dep, &err), HQ_EINVAL);
    assert_string_equal(
        err.msg,
        "--backoff-base: 72000000ms must be <= the effective backoff max (36000000ms, the deployment's)");
    e.backoff_max_ms = 86400000; /* its own max makes it fine */
    assert_int_equal(hq_endpoint_check_policy(&e, &dep, &err), 0);
    e.backoff_base_ms = 0;
    e.backoff_max_ms = 1000; /* below the deployment's 30 s base */
    assert_int_equal(hq_endpoint_check_policy(&e, &dep, &err), HQ_EINVAL);
    assert_string_equal(
        err.msg,
        "--backoff-max: 1000ms must be >= the effective backoff base (30000ms, the deployment's)");
    e.backoff_base_ms = 2000;
    assert_int_equal(hq_endpoint_check_policy(&e, &dep, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "--backoff-base: 2000ms must be <= --backoff-max (1000ms)");
    memset(&e, 0, sizeof(e));
    e.backoff_factor = 0.5;
    assert_int_equal(hq_endpoint_check_policy(&e, &dep, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "--backoff-factor: 0.5 must be >= 1 and <= 100");
    e.backoff_factor = 101;
    assert_int_equal(hq_endpoint_check_policy(&e, &dep, &err), HQ_EINVAL);
    e.backoff_factor = 0;
    e.retry_window_ms = HQ_RETRY_WINDOW_MAX_MS + 1;
    assert_int_equal(hq_endpoint_check_policy(&e, &dep, &err), HQ_EINVAL);
    e.retry_window_ms = -1;
    assert_int_equal(hq_endpoint_check_policy(&e, &dep, &err), HQ_EINVAL);
}

static void test_validate_refuses_a_bad_tenant_and_bad_overrides(void **state)
{
    (void)state;
    struct hq_netguard g;
    memset(&g, 0, sizeof(g));
    g.allow_private = 1;
    struct hq_err err = {0};
    char name[] = "n", url[] = "http://example.com/x";
    struct hq_endpoint e;
    memset(&e, 0, sizeof(e));
    e.name = name;
    e.url = url;
    strcpy(e.tenant, "acme");
    assert_int_equal(hq_endpoint_validate(&e, &g, &err), 0);
    strcpy(e.tenant, "a b");
    assert_int_equal(hq_endpoint_validate(&e, &g, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "tenant: 'a b' has a character outside [A-Za-z0-9_.:-]");
    e.tenant[0] = '\0';
    e.backoff_base_ms = HQ_BACKOFF_SPAN_MAX_MS + 1;
    assert_int_equal(hq_endpoint_validate(&e, &g, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "--backoff-base: 2592000001ms is out of range (1ms to 30d)");
}

static void test_retry_window_bounds_the_due_time_from_the_first_attempt(void **state)
{
    (void)state;
    long long first = 1700000000000LL;
    assert_true(hq_backoff_in_window(first, 0, first + 86400000LL * 365)); /* none */
    assert_true(hq_backoff_in_window(first, -5, first + 1));
    assert_true(hq_backoff_in_window(first, 2500, first + 2500)); /* the end is inside */
    assert_false(hq_backoff_in_window(first, 2500, first + 2501));
    assert_true(hq_backoff_in_window(first, 2500, first + 1000));
    /* No overflow for extreme stored values. */
    assert_true(hq_backoff_in_window(0, HQ_RETRY_WINDOW_MAX_MS, HQ_RETRY_WINDOW_MAX_MS));
    assert_false(hq_backoff_in_window(0, HQ_RETRY_WINDOW_MAX_MS, INT64_MAX / 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tenant_syntax_is_1_to_64_chars_of_the_type_set),
        cmocka_unit_test(test_star_does_not_match_reserved_types_explicit_filters_do),
        cmocka_unit_test(test_index_keys_of_a_reserved_type_leave_out_the_star_set),
        cmocka_unit_test(test_producers_refuse_reserved_types_the_decoder_accepts_them),
        cmocka_unit_test(test_policy_overrides_apply_field_by_field),
        cmocka_unit_test(test_policy_check_is_against_the_effective_values),
        cmocka_unit_test(test_validate_refuses_a_bad_tenant_and_bad_overrides),
        cmocka_unit_test(test_retry_window_bounds_the_due_time_from_the_first_attempt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
