/* Per-endpoint rate limits, the pure parts: the limit's syntax, the interval
 * and burst derived from it, and the GCRA lease arithmetic (hq_rl_lease, the
 * model rl_lease.lua implements): a first lease is usable at once, a second
 * waits its turn, a lease past the horizon is refused, refunds give tokens
 * back, and three simulated workers leasing in batches spend no more than
 * rate * w + burst in any window (and close to rate * w). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "common/endpoint.h"
#include "common/ratelimit.h"

static void test_syntax_is_n_per_second_or_minute(void **state)
{
    (void)state;
    struct hq_err err = {0};
    struct hq_rate r;
    assert_int_equal(hq_rate_parse("50/s", &r, &err), 0);
    assert_int_equal(r.n, 50);
    assert_int_equal(r.per_ms, 1000);
    assert_int_equal(hq_rate_parse("3000/m", &r, &err), 0);
    assert_int_equal(r.per_ms, 60000);
    assert_int_equal(hq_rate_parse("7/min", &r, &err), 0);
    assert_int_equal(hq_rate_parse("", &r, &err), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(hq_rate_parse("0", &r, &err), 0);
    assert_int_equal(r.n, 0);
    const char *bad[] = {"x",    "50",   "50/h", "0/s",           "-1/s", "1000001/s",
                         "5/s ", " 5/s", "5/S",  "99999999999/s", "/s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        assert_int_equal(hq_rate_parse(bad[i], &r, &err), HQ_EINVAL);
        assert_non_null(strstr(err.msg, "--rate-limit: "));
    }
    char s[HQ_RL_STR_MAX];
    assert_int_equal(hq_rate_parse("3000/m", &r, &err), 0);
    hq_rate_format(&r, s, sizeof(s));
    assert_string_equal(s, "3000/m");
}

static void test_validate_refuses_an_impossible_rate(void **state)
{
    (void)state;
    struct hq_endpoint e = {0};
    char name[] = "n", url[] = "https://example.com/";
    e.name = name;
    e.url = url;
    struct hq_err err = {0};
    e.rate = (struct hq_rate){50, 1000};
    assert_int_equal(hq_endpoint_validate(&e, NULL, &err), 0);
    e.rate = (struct hq_rate){50, 3600000};
    assert_int_equal(hq_endpoint_validate(&e, NULL, &err), HQ_EINVAL);
    assert_non_null(strstr(err.msg, "--rate-limit: "));
    e.rate = (struct hq_rate){HQ_RL_COUNT_MAX + 1, 1000};
    assert_int_equal(hq_endpoint_validate(&e, NULL, &err), HQ_EINVAL);
}

static void test_interval_rounds_up_and_burst_is_a_quarter_second_clamped(void **state)
{
    (void)state;
    struct hq_rate r = {20, 1000};
    assert_int_equal(hq_rate_interval_us(&r), 50000);
    assert_int_equal(hq_rate_burst(&r), 5);
    r = (struct hq_rate){3, 1000};
    assert_int_equal(hq_rate_interval_us(&r), 333334); /* up: never above the limit */
    assert_int_equal(hq_rate_burst(&r), 1);
    r = (struct hq_rate){1000, 1000};
    assert_int_equal(hq_rate_burst(&r), 100); /* 250 clamped */
    r = (struct hq_rate){3000, 60000};
    assert_int_equal(hq_rate_interval_us(&r), 20000);
    assert_int_equal(hq_rate_burst(&r), 13);
    r = (struct hq_rate){0, 0};
    assert_int_equal(hq_rate_interval_us(&r), 0);
}

static void test_leases_reserve_in_turn_and_refuse_past_the_horizon(void **state)
{
    (void)state;
    int64_t tat = 0, now = 1000000000, T = 50000;
    /* Idle: usable at once; the TAT moves k intervals ahead. */
    assert_int_equal(hq_rl_lease(&tat, now, T, 5, 5, 0, HQ_RL_HORIZON_US), 0);
    assert_int_equal(tat, now + 5 * T);
    /* A second caller at the same instant waits for the first's tokens. */
    assert_int_equal(hq_rl_lease(&tat, now, T, 5, 5, 0, HQ_RL_HORIZON_US), 5 * T);
    assert_int_equal(tat, now + 10 * T);
    /* Reserved up to 2 s ahead, then refused with the TAT left alone. */
    int64_t s;
    while ((s = hq_rl_lease(&tat, now, T, 5, 5, 0, HQ_RL_HORIZON_US)) >= 0)
        assert_true(s <= HQ_RL_HORIZON_US);
    int64_t held = tat;
    assert_int_equal(hq_rl_lease(&tat, now, T, 5, 5, 0, HQ_RL_HORIZON_US), -1);
    assert_int_equal(tat, held);
    /* A refund of 3 unused tokens moves it back by 3 intervals. */
    assert_int_equal(hq_rl_lease(&tat, now, T, 5, 5, 3, HQ_RL_HORIZON_US), -1);
    assert_int_equal(tat, held - 3 * T);
    /* Later, after the backlog, a lease is usable at once again, and an old
     * TAT in the past counts as now (no credit for idle time beyond b). */
    now += 10 * 1000000;
    assert_int_equal(hq_rl_lease(&tat, now, T, 5, 5, 0, HQ_RL_HORIZON_US), 0);
    assert_int_equal(tat, now + 5 * T);
}

/* Three workers with endless demand, each leasing k = b tokens when it has
 * none (in 50 ms ticks) and spending them all at their start: every sliding
 * 10-s window of 60 s holds at most rate * 10 + b sends, and at least
 * rate * 10 - 3 * b (the tokens of one lease per worker can fall outside). */
static void test_three_workers_hold_the_rate_over_every_window(void **state)
{
    (void)state;
    struct hq_rate r = {20, 1000};
    int64_t T = hq_rate_interval_us(&r);
    int b = hq_rate_burst(&r);
    int64_t tat = 0, t0 = 5000000000LL;
    enum { W = 3, SENDS_MAX = 4000 };
    int64_t sends[SENDS_MAX];
    int nsends = 0;
    int64_t usable[W] = {0};
    int tokens[W] = {0};
    for (int64_t now = t0; now < t0 + 60 * 1000000; now += 1000) {
        for (int i = 0; i < W; i++) {
            int wk = (int)((now / 1000 + i * 17) % W); /* vary who goes first */
            if (tokens[wk] == 0 && (now - t0) % 50000 == 0) {
                int64_t s = hq_rl_lease(&tat, now, T, b, b, 0, HQ_RL_HORIZON_US);
                if (s >= 0) {
                    tokens[wk] = b;
                    usable[wk] = now + s;
                }
            }
            while (tokens[wk] > 0 && usable[wk] <= now && nsends < SENDS_MAX) {
                sends[nsends++] = now;
                tokens[wk]--;
            }
        }
    }
    int lo = 1 << 30, hi = 0;
    for (int64_t w0 = t0 + 1000000; w0 + 10000000 <= t0 + 60 * 1000000; w0 += 10000) {
        int n = 0;
        for (int i = 0; i < nsends; i++)
            n += sends[i] >= w0 && sends[i] < w0 + 10000000;
        lo = n < lo ? n : lo;
        hi = n > hi ? n : hi;
    }
    print_message("20/s, 3 workers, b %d: sliding 10-s windows hold %d..%d sends\n", b, lo, hi);
    assert_true(hi <= 200 + b);
    assert_true(lo >= 200 - 3 * b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax_is_n_per_second_or_minute),
        cmocka_unit_test(test_validate_refuses_an_impossible_rate),
        cmocka_unit_test(test_interval_rounds_up_and_burst_is_a_quarter_second_clamped),
        cmocka_unit_test(test_leases_reserve_in_turn_and_refuse_past_the_horizon),
        cmocka_unit_test(test_three_workers_hold_the_rate_over_every_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
