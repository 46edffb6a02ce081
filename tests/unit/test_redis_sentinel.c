/* redis-sentinel:// URL parsing (good and bad forms, the password kept out of
 * descriptions) and the pure Sentinel rules: the get-master-addr-by-name
 * reply, ROLE, READONLY and the order of the sentinel list. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/redis_sentinel.h"
#include "common/redis_url.h"
#include "tests/harness/hq_test.h"

static void test_url_good(void **state)
{
    (void)state;
    struct hq_redis_url u;
    struct hq_err err = {0};
    assert_int_equal(hq_redis_url_parse("redis-sentinel://:s3cr@t@h1:26379,h2:26380,[::1]:1/"
                                        "my.master-1_x/3",
                                        &u, &err),
                     0);
    assert_int_equal(u.nsentinels, 3);
    assert_string_equal(u.sentinels[0].host, "h1");
    assert_int_equal(u.sentinels[0].port, 26379);
    assert_string_equal(u.sentinels[1].host, "h2");
    assert_int_equal(u.sentinels[1].port, 26380);
    assert_string_equal(u.sentinels[2].host, "::1");
    assert_int_equal(u.sentinels[2].port, 1);
    assert_string_equal(u.master, "my.master-1_x");
    assert_string_equal(u.password, "s3cr@t");
    assert_int_equal(u.db, 3);
    assert_string_equal(u.host, "");
    char buf[300];
    hq_redis_url_describe(&u, buf, sizeof(buf));
    assert_string_equal(buf, "h1:26379,h2:26380,[::1]:1");
    assert_null(strstr(buf, "s3cr"));
    /* Resolved: the master's address, still no password. */
    snprintf(u.host, sizeof(u.host), "10.0.0.5");
    u.port = 6380;
    hq_redis_url_describe(&u, buf, sizeof(buf));
    assert_string_equal(buf, "10.0.0.5:6380");

    assert_int_equal(hq_redis_url_parse("redis-sentinel://h1/m", &u, &err), 0);
    assert_int_equal(u.nsentinels, 1);
    assert_int_equal(u.sentinels[0].port, HQ_SENTINEL_PORT);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.password, "");
    assert_int_equal(hq_redis_url_parse("redis-sentinel://h1,h2,h3,h4,h5,h6,h7,h8/m/", &u, &err),
                     0);
    assert_int_equal(u.nsentinels, 8);
    /* Plain URLs are not sentinel URLs. */
    assert_int_equal(hq_redis_url_parse("redis://127.0.0.1:6379/0", &u, &err), 0);
    assert_int_equal(u.nsentinels, 0);
}

static void bad(const char *url, const char *needle)
{
    struct hq_redis_url u;
    struct hq_err err = {0};
    int rc = hq_redis_url_parse(url, &u, &err);
    if (rc != HQ_EINVAL || !strstr(err.msg, needle))
        fail_msg("%s: rc %d, '%s' (wanted '%s')", url, rc, err.msg, needle);
    assert_null(strstr(err.msg, "\n"));
    assert_null(strstr(err.msg, "pw9"));
}

static void test_url_bad(void **state)
{
    (void)state;
    bad("redis-sentinel://", "names no sentinel");
    bad("redis-sentinel:///m", "names no sentinel");
    bad("redis-sentinel://:pw9@/m", "names no sentinel");
    bad("redis-sentinel://h1:26379", "needs a master name");
    bad("redis-sentinel://h1:26379/", "needs a master name");
    bad("redis-sentinel://h1:0/m", "port must be 1-65535");
    bad("redis-sentinel://h1:99999/m", "port must be 1-65535");
    bad("redis-sentinel://h1:1234567/m", "bad port");
    bad("redis-sentinel://h1:12a/m", "bad port");
    bad("redis-sentinel://h1:/m", "bad port");
    bad("redis-sentinel://h1,,h2/m", "empty sentinel address");
    bad("redis-sentinel://h1,/m", "empty sentinel address");
    bad("redis-sentinel://[::1/m", "unterminated [");
    bad("redis-sentinel://h1,h2,h3,h4,h5,h6,h7,h8,h9/m", "too many sentinels (max 8)");
    bad("redis-sentinel://h1/bad name", "may hold only");
    bad("redis-sentinel://h1/m$", "may hold only");
    bad("redis-sentinel://h1/"
        "m12345678901234567890123456789012345678901234567890123456789012345",
        "longer than 64");
    bad("redis-sentinel://h1/m/x", "db 'x' must be a number");
    bad("sentinel://h1/m", "must start with redis://");
    /* A scheme not known: the rest of the URL (a password) is not echoed. */
    bad("rediss://:pw9@h1:6379/0", "'rediss...' must start with redis://");
}

/* A reply tree built by hand, freed with freeReplyObject. */
static redisReply *str(int type, const char *s)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = type;
    if (s) {
        r->len = strlen(s);
        r->str = strdup(s);
    }
    return r;
}

static redisReply *arr(size_t n, redisReply **el)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = REDIS_REPLY_ARRAY;
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof(*el));
    if (n)
        memcpy(r->element, el, n * sizeof(*el));
    return r;
}

static int addr(redisReply *r, char *host, int *port, char *msg)
{
    struct hq_err err = {0};
    int rc = hq_sentinel_parse_master_addr(r, "m", host, 64, port, &err);
    snprintf(msg, 256, "%s", err.msg);
    if (r)
        freeReplyObject(r);
    return rc;
}

static void test_master_addr(void **state)
{
    (void)state;
    char host[64], msg[256];
    int port = 0;
    redisReply *el[2] = {str(REDIS_REPLY_STRING, "127.0.0.1"), str(REDIS_REPLY_STRING, "6380")};
    assert_int_equal(addr(arr(2, el), host, &port, msg), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 6380);

    assert_int_equal(addr(str(REDIS_REPLY_NIL, NULL), host, &port, msg), HQ_EREDIS);
    assert_string_equal(msg, "does not know master 'm'");
    assert_int_equal(addr(str(REDIS_REPLY_ERROR, "ERR unknown"), host, &port, msg), HQ_EREDIS);
    assert_string_equal(msg, "ERR unknown");
    assert_int_equal(addr(NULL, host, &port, msg), HQ_EREDIS);
    redisReply *p0[2] = {str(REDIS_REPLY_STRING, "h"), str(REDIS_REPLY_STRING, "0")};
    assert_int_equal(addr(arr(2, p0), host, &port, msg), HQ_EREDIS);
    redisReply *px[2] = {str(REDIS_REPLY_STRING, "h"), str(REDIS_REPLY_STRING, "65536")};
    assert_int_equal(addr(arr(2, px), host, &port, msg), HQ_EREDIS);
    redisReply *pa[2] = {str(REDIS_REPLY_STRING, "h"), str(REDIS_REPLY_STRING, "8x")};
    assert_int_equal(addr(arr(2, pa), host, &port, msg), HQ_EREDIS);
    redisReply *he[2] = {str(REDIS_REPLY_STRING, ""), str(REDIS_REPLY_STRING, "1")};
    assert_int_equal(addr(arr(2, he), host, &port, msg), HQ_EREDIS);
    char longh[100];
    memset(longh, 'a', 99);
    longh[99] = '\0';
    redisReply *hl[2] = {str(REDIS_REPLY_STRING, longh), str(REDIS_REPLY_STRING, "1")};
    assert_int_equal(addr(arr(2, hl), host, &port, msg), HQ_EREDIS);
    redisReply *one[1] = {str(REDIS_REPLY_STRING, "h")};
    assert_int_equal(addr(arr(1, one), host, &port, msg), HQ_EREDIS);
    redisReply *ty[2] = {str(REDIS_REPLY_STRING, "h"), str(REDIS_REPLY_INTEGER, NULL)};
    assert_int_equal(addr(arr(2, ty), host, &port, msg), HQ_EREDIS);
}

static int role(redisReply *r, char *msg)
{
    struct hq_err err = {0};
    int rc = hq_sentinel_check_role(r, &err);
    snprintf(msg, 256, "%s", err.msg);
    if (r)
        freeReplyObject(r);
    return rc;
}

static void test_role(void **state)
{
    (void)state;
    char msg[256];
    redisReply *m[3] = {str(REDIS_REPLY_STRING, "master"), str(REDIS_REPLY_INTEGER, NULL),
                        arr(0, NULL)};
    assert_int_equal(role(arr(3, m), msg), 0);
    redisReply *s[2] = {str(REDIS_REPLY_STRING, "slave"), str(REDIS_REPLY_STRING, "127.0.0.1")};
    assert_int_equal(role(arr(2, s), msg), HQ_EREDIS);
    assert_string_equal(msg, "is a slave, not the master (failover in progress?)");
    redisReply *se[1] = {str(REDIS_REPLY_STRING, "sentinel")};
    assert_int_equal(role(arr(1, se), msg), HQ_EREDIS);
    redisReply *ma[1] = {str(REDIS_REPLY_STRING, "masterx")};
    assert_int_equal(role(arr(1, ma), msg), HQ_EREDIS);
    assert_int_equal(role(arr(0, NULL), msg), HQ_EREDIS);
    assert_int_equal(role(str(REDIS_REPLY_ERROR, "NOPERM"), msg), HQ_EREDIS);
    assert_int_equal(role(NULL, msg), HQ_EREDIS);
}

static void test_readonly_and_promote(void **state)
{
    (void)state;
    redisReply *r = str(REDIS_REPLY_ERROR, "READONLY You can't write against a read only replica.");
    assert_true(hq_sentinel_is_readonly(r));
    freeReplyObject(r);
    r = str(REDIS_REPLY_ERROR, "ERR READONLY");
    assert_false(hq_sentinel_is_readonly(r));
    freeReplyObject(r);
    r = str(REDIS_REPLY_STATUS, "READONLY");
    assert_false(hq_sentinel_is_readonly(r));
    freeReplyObject(r);
    assert_false(hq_sentinel_is_readonly(NULL));

    struct hq_redis_url u;
    struct hq_err err = {0};
    assert_int_equal(hq_redis_url_parse("redis-sentinel://a:1,b:2,c:3,d:4/m", &u, &err), 0);
    char buf[300];
    hq_sentinel_promote(&u, 2);
    assert_string_equal(hq_sentinel_list_describe(&u, buf, sizeof(buf)), "c:3,a:1,b:2,d:4");
    hq_sentinel_promote(&u, 0);
    assert_string_equal(hq_sentinel_list_describe(&u, buf, sizeof(buf)), "c:3,a:1,b:2,d:4");
    hq_sentinel_promote(&u, 3);
    assert_string_equal(hq_sentinel_list_describe(&u, buf, sizeof(buf)), "d:4,c:3,a:1,b:2");
    hq_sentinel_promote(&u, 4); /* out of range: unchanged */
    hq_sentinel_promote(&u, -1);
    assert_string_equal(hq_sentinel_list_describe(&u, buf, sizeof(buf)), "d:4,c:3,a:1,b:2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_good),
        cmocka_unit_test(test_url_bad),
        cmocka_unit_test(test_master_addr),
        cmocka_unit_test(test_role),
        cmocka_unit_test(test_readonly_and_promote),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
