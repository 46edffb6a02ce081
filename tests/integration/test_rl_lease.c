/* rl_lease.lua against a real redis-server, checked against the model it
 * implements (common/ratelimit.h hq_rl_lease): an idle endpoint's lease is
 * usable at once and moves the TAT k intervals past Redis' now; a busy one's
 * starts when the TAT says and moves the TAT by exactly k intervals; a lease
 * past the horizon is refused and leaves the TAT alone but for the refund;
 * several endpoints go in one call, each on its own key; and the key expires
 * once idle. The script's clock is Redis' TIME, so the test reads it too. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ratelimit.h"
#include "common/scripts.h"
#include "tests/harness/hq_test.h"

static struct hq_test_redis R;
static redisContext *C;

static int64_t redis_now_us(void)
{
    redisReply *r = hq_test_cmd(C, "TIME");
    int64_t us =
        strtoll(r->element[0]->str, NULL, 10) * 1000000 + strtoll(r->element[1]->str, NULL, 10);
    freeReplyObject(r);
    return us;
}

static int64_t tat_of(const char *key)
{
    redisReply *r = hq_test_cmd(C, "GET %s", key);
    int64_t v = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
    freeReplyObject(r);
    return v;
}

struct lease_arg {
    const char *key;
    int64_t T;
    int k, b, refund;
};

/* One call for n endpoints; starts[i] / next[i] from the reply. */
static void lease(const struct lease_arg *a, int n, int64_t *starts, int64_t *next)
{
    const char *argv[64];
    char nums[64][24];
    int argc = 0, m = 0;
    for (int i = 0; i < n; i++)
        argv[argc++] = a[i].key;
    snprintf(nums[m], sizeof(nums[m]), "%d", HQ_RL_HORIZON_US);
    argv[argc++] = nums[m++];
    for (int i = 0; i < n; i++) {
        long long v[4] = {a[i].T, a[i].k, a[i].b, a[i].refund};
        for (int j = 0; j < 4; j++) {
            snprintf(nums[m], sizeof(nums[m]), "%lld", v[j]);
            argv[argc++] = nums[m++];
        }
    }
    struct hq_err err = {0};
    redisReply *r = hq_script_call(C, hq_script_rl_lease, n, argc, argv, NULL, &err);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, (size_t)n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(r->element[i]->elements, 2);
        starts[i] = r->element[i]->element[0]->integer;
        next[i] = r->element[i]->element[1]->integer;
    }
    freeReplyObject(r);
}

static void test_idle_then_busy_lease_follows_the_model(void **state)
{
    (void)state;
    const int64_t T = 50000;
    struct lease_arg a = {"h:rl:ep_a", T, 5, 5, 0};
    int64_t s, nx;
    int64_t before = redis_now_us();
    lease(&a, 1, &s, &nx);
    int64_t after = redis_now_us();
    assert_int_equal(s, 0); /* idle: usable at once */
    int64_t tat = tat_of(a.key);
    assert_true(tat >= before + 5 * T && tat <= after + 5 * T);
    assert_true(nx > 0 && nx <= 5 * T);
    /* Busy: the next lease starts at the old TAT and moves it by exactly k T. */
    lease(&a, 1, &s, &nx);
    int64_t now = redis_now_us();
    assert_int_equal(tat_of(a.key), tat + 5 * T);
    assert_true(s > 0 && s <= tat - before);
    assert_true(s >= tat - now - 1000); /* within the two TIME calls' distance */
    /* The model, fed the same TAT and a now between, agrees on the new TAT. */
    int64_t model = tat;
    assert_true(hq_rl_lease(&model, now, T, 5, 5, 0, HQ_RL_HORIZON_US) >= 0);
    assert_int_equal(model, tat + 5 * T);
    long long pttl = hq_test_cmd_int(C, "PTTL %s", a.key);
    assert_true(pttl > 0 && pttl <= 1000 + 10 * T / 1000 + 50);
}

static void test_past_the_horizon_is_refused_and_the_refund_stands(void **state)
{
    (void)state;
    const int64_t T = 50000;
    int64_t far = redis_now_us() + 3 * 1000000;
    freeReplyObject(hq_test_cmd(C, "SET h:rl:ep_b %lld", (long long)far));
    struct lease_arg a = {"h:rl:ep_b", T, 5, 5, 0};
    int64_t s, nx;
    lease(&a, 1, &s, &nx);
    assert_int_equal(s, -1);
    assert_int_equal(tat_of(a.key), far);
    assert_true(nx > 2 * 1000000 && nx <= 3 * 1000000);
    a.refund = 3;
    lease(&a, 1, &s, &nx);
    assert_int_equal(s, -1);
    assert_int_equal(tat_of(a.key), far - 3 * T);
    /* Refunds never move the TAT before now: an idle key stays idle. */
    struct lease_arg idle = {"h:rl:ep_c", T, 5, 5, 50};
    lease(&idle, 1, &s, &nx);
    assert_int_equal(s, 0);
}

static void test_one_call_leases_for_several_endpoints(void **state)
{
    (void)state;
    int64_t busy = redis_now_us() + 1000000;
    freeReplyObject(hq_test_cmd(C, "SET h:rl:ep_e %lld", (long long)busy));
    struct lease_arg a[3] = {
        {"h:rl:ep_d", 20000, 13, 13, 0},
        {"h:rl:ep_e", 50000, 5, 5, 0},
        {"h:rl:ep_f", 333334, 1, 1, 0},
    };
    int64_t s[3], nx[3];
    lease(a, 3, s, nx);
    assert_int_equal(s[0], 0);
    assert_true(s[1] > 900000 && s[1] <= 1000000);
    assert_int_equal(s[2], 0);
    assert_int_equal(tat_of("h:rl:ep_e"), busy + 5 * 50000);
    assert_true(tat_of("h:rl:ep_d") > 0 && tat_of("h:rl:ep_f") > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_idle_then_busy_lease_follows_the_model, hq_test_group_flush),
        cmocka_unit_test_setup(test_past_the_horizon_is_refused_and_the_refund_stands,
                               hq_test_group_flush),
        cmocka_unit_test_setup(test_one_call_leases_for_several_endpoints, hq_test_group_flush),
    };
    hq_test_redis_group(&R, &C, NULL, 0);
    return cmocka_run_group_tests(tests, hq_test_group_setup, hq_test_group_teardown);
}
