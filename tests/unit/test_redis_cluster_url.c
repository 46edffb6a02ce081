/* redis-cluster:// URL parsing: seed lists, the default port, the password
 * kept out of descriptions, and db 0 only (a cluster has no other). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "common/redis_url.h"

static void test_a_seed_list_is_parsed(void **state)
{
    (void)state;
    struct hq_redis_url u;
    struct hq_err err = {0};
    assert_int_equal(hq_redis_url_parse("redis-cluster://:s3cr@t@h1:7000,h2,[::1]:7002", &u, &err),
                     0);
    assert_true(u.cluster);
    assert_int_equal(u.nseeds, 3);
    assert_string_equal(u.seeds[0].host, "h1");
    assert_int_equal(u.seeds[0].port, 7000);
    assert_int_equal(u.seeds[1].port, 6379);
    assert_string_equal(u.seeds[2].host, "::1");
    assert_string_equal(u.password, "s3cr@t");
    assert_string_equal(u.host, "h1"); /* the node to start with */
    char d[200];
    hq_redis_url_describe(&u, d, sizeof(d));
    assert_string_equal(d, "cluster h1:7000,h2:6379,[::1]:7002");
    assert_null(strstr(d, "s3cr"));
    assert_int_equal(hq_redis_url_parse("redis-cluster://h1:7000/0", &u, &err), 0);
    assert_int_equal(u.db, 0);
}

static void test_bad_cluster_urls_are_refused_with_a_reason(void **state)
{
    (void)state;
    struct hq_redis_url u;
    struct hq_err err = {0};
    assert_int_equal(hq_redis_url_parse("redis-cluster://h1:7000/2", &u, &err), HQ_EINVAL);
    assert_non_null(strstr(err.msg, "only db 0"));
    assert_int_equal(hq_redis_url_parse("redis-cluster://", &u, &err), HQ_EINVAL);
    assert_non_null(strstr(err.msg, "names no node"));
    assert_int_equal(hq_redis_url_parse("redis-cluster://h1:70000", &u, &err), HQ_EINVAL);
    assert_non_null(strstr(err.msg, "port must be 1-65535"));
    assert_int_equal(hq_redis_url_parse("redis-cluster://h1,", &u, &err), HQ_EINVAL);
    assert_int_equal(hq_redis_url_parse("redis-cluster://h1:x", &u, &err), HQ_EINVAL);
    assert_int_equal(hq_redis_url_parse("redis-cluster://h1/x", &u, &err), HQ_EINVAL);
    assert_int_equal(hq_redis_url_parse("redis-cluster://a,b,c,d,e,f,g,h,i", &u, &err), HQ_EINVAL);
    assert_non_null(strstr(err.msg, "too many nodes (max 8)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_seed_list_is_parsed),
        cmocka_unit_test(test_bad_cluster_urls_are_refused_with_a_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
