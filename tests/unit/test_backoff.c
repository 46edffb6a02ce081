/* Retry policy and backoff: defaults, checks, jitter bounds, the default
 * schedule's span, overflow safety, and every Retry-After form. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/backoff.h"
#include "common/limits.h"
#include "tests/harness/hq_test.h"

/* 1994-11-06 08:49:37 UTC, the RFC 9110 example date, in unix ms. */
#define RFC_DATE_MS 784111777000LL

/* splitmix64: a reproducible spread of rnd values for the jitter tests. */
static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The un-jittered delay by the definition, by repeated multiplication. */
static double expected_delay(const struct hq_policy *p, int failed)
{
    double d = (double)p->base_ms;
    for (int i = 1; i < failed; i++)
        d *= p->factor;
    return d > (double)p->max_ms ? (double)p->max_ms : d;
}

static void test_policy_init_sets_limits_defaults_and_passes_check(void **state)
{
    (void)state;
    struct hq_policy p;
    hq_policy_init(&p);
    assert_int_equal(p.max_attempts, HQ_MAX_ATTEMPTS_DEFAULT);
    assert_int_equal(p.base_ms, HQ_BACKOFF_BASE_DEFAULT_MS);
    assert_true(p.factor == HQ_BACKOFF_FACTOR_DEFAULT);
    assert_int_equal(p.max_ms, HQ_BACKOFF_MAX_DEFAULT_MS);
    struct hq_err err = {0};
    assert_int_equal(hq_policy_check(&p, &err), 0);
}

static void test_policy_check_names_the_option_in_one_line(void **state)
{
    (void)state;
    struct {
        double factor;
        long long base, max, attempts;
        const char *msg;
    } cases[] = {
        {0.5, 1000, 2000, 3, "--backoff-factor: 0.5 must be >= 1"},
        {NAN, 1000, 2000, 3, "--backoff-factor: nan must be >= 1"},
        {101, 1000, 2000, 3, "--backoff-factor: 101 must be <= 100"},
        {2, 5000, 2000, 3, "--backoff-base: 5000ms must be <= --backoff-max (2000ms)"},
        {2, 1000, 2000, 0, "--max-attempts: 0 must be >= 1"},
        {1, 2000, 2000, 1, NULL},
        {100, 1, 1, 1000, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct hq_policy p = {cases[i].attempts, cases[i].base, cases[i].factor, cases[i].max};
        struct hq_err err = {0};
        int rc = hq_policy_check(&p, &err);
        if (!cases[i].msg) {
            assert_int_equal(rc, 0);
            continue;
        }
        assert_int_equal(rc, HQ_EINVAL);
        assert_string_equal(err.msg, cases[i].msg);
        assert_null(strchr(err.msg, '\n'));
    }
}

static void test_delay_stays_within_jitter_bounds_over_many_rnd_values(void **state)
{
    (void)state;
    struct hq_policy p;
    hq_policy_init(&p);
    uint64_t s = 42;
    for (int failed = 1; failed <= 12; failed++) {
        double d = expected_delay(&p, failed);
        double lo = d * 0.8, hi = d * 1.2 > (double)p.max_ms ? (double)p.max_ms : d * 1.2;
        long long mn = LLONG_MAX, mx = 0;
        for (int i = 0; i < 20000; i++) {
            long long v = hq_backoff_delay_ms(&p, failed, splitmix(&s));
            assert_true(v >= (long long)lo);
            assert_true((double)v <= hi);
            assert_true(v <= p.max_ms);
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
        }
        /* The jitter actually spreads: both ends of the range are approached. */
        assert_true((double)mn < lo + (hi - lo) * 0.01 + 1);
        assert_true((double)mx > hi - (hi - lo) * 0.01 - 1 || mx == p.max_ms);
    }
    /* The extremes of rnd give the extremes of the range. */
    assert_int_equal(hq_backoff_delay_ms(&p, 1, 0), 24000);
    long long top = hq_backoff_delay_ms(&p, 1, UINT64_MAX);
    assert_true(top >= 35999 && top <= 36000);
    /* At the cap, jitter keeps delays in [0.8 max, max]. */
    assert_int_equal(hq_backoff_delay_ms(&p, 9, UINT64_MAX), p.max_ms);
    assert_int_equal(hq_backoff_delay_ms(&p, 9, 0), p.max_ms * 8 / 10);
}

static void test_default_schedule_spans_about_a_day_over_ten_attempts(void **state)
{
    (void)state;
    struct hq_policy p;
    hq_policy_init(&p);
    /* 10 attempts = 9 waits. With rnd = 2^63 the jitter factor is exactly 1.0. */
    long long sum = 0;
    for (int failed = 1; failed < p.max_attempts; failed++) {
        long long v = hq_backoff_delay_ms(&p, failed, 1ULL << 63);
        assert_int_equal(v, (long long)expected_delay(&p, failed));
        sum += v;
    }
    /* 30 s, 90 s, 4.5 m, 13.5 m, 40.5 m, 2 h, 6 h, 10 h, 10 h: 29.1 h in all. */
    assert_int_equal(sum, 104790000LL);
    assert_true(sum >= 20LL * 3600 * 1000 && sum <= 36LL * 3600 * 1000);
}

static void test_delay_is_overflow_safe_for_huge_attempts_and_factors(void **state)
{
    (void)state;
    struct hq_policy p = {1000, 86400000LL * 30, 100, 86400000LL * 30};
    int counts[] = {1, 2, 64, 1000, 100000, INT_MAX};
    for (size_t i = 0; i < sizeof(counts) / sizeof(*counts); i++) {
        long long v = hq_backoff_delay_ms(&p, counts[i], 1ULL << 63);
        assert_int_equal(v, p.max_ms);
        assert_true(hq_backoff_delay_ms(&p, counts[i], UINT64_MAX) <= p.max_ms);
    }
    /* Factor 1: constant delay however many attempts. */
    struct hq_policy q = {5, 1500, 1, 60000};
    assert_int_equal(hq_backoff_delay_ms(&q, INT_MAX, 1ULL << 63), 1500);
    /* A factor barely above 1 with a huge count still reaches (and stays at) max. */
    struct hq_policy r = {5, 1000, 1.0000001, 60000};
    assert_int_equal(hq_backoff_delay_ms(&r, INT_MAX, 1ULL << 63), 60000);
    /* failed <= 0 is treated as the first failure rather than misbehaving. */
    assert_int_equal(hq_backoff_delay_ms(&q, 0, 1ULL << 63), 1500);
    assert_int_equal(hq_backoff_delay_ms(&q, INT_MIN, 1ULL << 63), 1500);
    /* The largest values the options accept. */
    struct hq_policy big = {1000, 86400000LL * 30, 1e300, 86400000LL * 30};
    assert_int_equal(hq_backoff_delay_ms(&big, 3, 1ULL << 63), big.max_ms);
}

static void test_next_is_max_of_backoff_and_retry_after_clamped_to_max(void **state)
{
    (void)state;
    struct hq_policy p = {10, 1000, 2, 60000};
    uint64_t mid = 1ULL << 63;
    assert_int_equal(hq_backoff_next_ms(&p, 1, -1, mid), 1000);
    assert_int_equal(hq_backoff_next_ms(&p, 1, 500, mid), 1000);    /* never earlier */
    assert_int_equal(hq_backoff_next_ms(&p, 1, 30000, mid), 30000); /* later */
    assert_int_equal(hq_backoff_next_ms(&p, 1, 3600000, mid), 60000);
    assert_int_equal(hq_backoff_next_ms(&p, 1, LLONG_MAX, mid), 60000);
    assert_int_equal(hq_backoff_next_ms(&p, 40, -1, UINT64_MAX), 60000);
}

static void test_retry_after_delta_seconds(void **state)
{
    (void)state;
    long long d = -1;
    assert_int_equal(hq_retry_after_parse("120", 0, &d), 0);
    assert_int_equal(d, 120000);
    assert_int_equal(hq_retry_after_parse("0", 0, &d), 0);
    assert_int_equal(d, 0);
    assert_int_equal(hq_retry_after_parse(" 7 ", 0, &d), 0);
    assert_int_equal(d, 7000);
    /* Huge values saturate instead of overflowing; the policy clamps later. */
    assert_int_equal(hq_retry_after_parse("99999999999999999999999999999999", 0, &d), 0);
    assert_int_equal(d, HQ_RETRY_AFTER_MAX_S * 1000);
}

static void test_retry_after_http_dates_in_all_three_forms(void **state)
{
    (void)state;
    long long d = -1;
    int64_t now = RFC_DATE_MS - 60000; /* one minute before the date */
    const char *forms[] = {
        "Sun, 06 Nov 1994 08:49:37 GMT",  /* IMF-fixdate */
        "Sunday, 06-Nov-94 08:49:37 GMT", /* RFC 850 */
        "Sun Nov  6 08:49:37 1994",       /* asctime */
    };
    for (size_t i = 0; i < 3; i++) {
        d = -1;
        assert_int_equal(hq_retry_after_parse(forms[i], now, &d), 0);
        assert_int_equal(d, 60000);
    }
    /* asctime with a two-digit day; IMF-fixdate around a leap day. */
    assert_int_equal(hq_retry_after_parse("Thu Nov 16 08:49:37 1994", now, &d), 0);
    assert_int_equal(d, 60000 + 10LL * 86400000);
    assert_int_equal(
        hq_retry_after_parse("Thu, 29 Feb 2024 00:00:00 GMT", 1709164800000LL - 5000, &d), 0);
    assert_int_equal(d, 5000);
    /* RFC 850 two-digit years near now: "30" read at the end of 2029 means 2030, not 1930. */
    assert_int_equal(
        hq_retry_after_parse("Friday, 01-Mar-30 00:00:00 GMT", 1893456000000LL - 1000, &d), 0);
    assert_int_equal(d, 1000 + 59LL * 86400000);
    /* Dates in the past mean "now". */
    assert_int_equal(hq_retry_after_parse(forms[0], RFC_DATE_MS + 3600000, &d), 0);
    assert_int_equal(d, 0);
}

static void test_retry_after_garbage_is_einval(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "   ",
        "-5",
        "+5",
        "1.5",
        "12abc",
        "soon",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "sun, 06 nov 1994 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Sun, 29 Feb 1900 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:49:37 GMT",
        "Sun, 06 Nov 1994 08:60:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT trailing",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov  6 08:49:37 94",
        "Sun, 06 Nov 1994 08:49",
        "Sun, 06 Nov 1994 08:49:37 GMT 0000000000000000000000000000000000000000000000000000",
        "Mon, 00 Nov 1994 08:49:37 GMT",
        NULL,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        long long d = 12345;
        if (hq_retry_after_parse(bad[i], RFC_DATE_MS, &d) != HQ_EINVAL)
            fail_msg("accepted '%s'", bad[i] ? bad[i] : "(null)");
        assert_int_equal(d, 12345);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_init_sets_limits_defaults_and_passes_check),
        cmocka_unit_test(test_policy_check_names_the_option_in_one_line),
        cmocka_unit_test(test_delay_stays_within_jitter_bounds_over_many_rnd_values),
        cmocka_unit_test(test_default_schedule_spans_about_a_day_over_ten_attempts),
        cmocka_unit_test(test_delay_is_overflow_safe_for_huge_attempts_and_factors),
        cmocka_unit_test(test_next_is_max_of_backoff_and_retry_after_clamped_to_max),
        cmocka_unit_test(test_retry_after_delta_seconds),
        cmocka_unit_test(test_retry_after_http_dates_in_all_three_forms),
        cmocka_unit_test(test_retry_after_garbage_is_einval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
