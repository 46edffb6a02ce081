/* struct hq_buf: the hard maximum, printf, and JSON string escaping that stays
 * valid JSON whatever bytes a peer sent. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"

static void test_append_refuses_past_max_and_keeps_content(void **state)
{
    (void)state;
    struct hq_buf b;
    hq_buf_init(&b, 8);
    assert_int_equal(hq_buf_append(&b, "12345", 5), 0);
    assert_int_equal(hq_buf_append(&b, "6789", 4), HQ_ETOOBIG);
    assert_string_equal(b.p, "12345");
    assert_int_equal(hq_buf_printf(&b, "%d", 678), 0);
    assert_string_equal(b.p, "12345678");
    assert_int_equal(hq_buf_printf(&b, "%d", 9), HQ_ETOOBIG);
    assert_int_equal(b.len, 8);
    hq_buf_free(&b);
}

static void json(const char *in, size_t n, const char *want)
{
    struct hq_buf b;
    hq_buf_init(&b, 1024);
    assert_int_equal(hq_buf_json_str(&b, in, n), 0);
    assert_string_equal(b.p, want);
    hq_buf_free(&b);
}

static void test_json_escapes_controls_quotes_and_backslashes(void **state)
{
    (void)state;
    json("a\"b\\c\n\r\t\x01\x7f", 10, "\"a\\\"b\\\\c\\n\\r\\t\\u0001\\u007f\"");
    json("nul\0x", 5, "\"nul\\u0000x\"");
}

static void test_json_keeps_valid_utf8_and_replaces_invalid_bytes(void **state)
{
    (void)state;
    json("J\xc3\xbcrgen \xe2\x82\xac \xf0\x9f\x98\x80", 16,
         "\"J\xc3\xbcrgen \xe2\x82\xac \xf0\x9f\x98\x80\"");
    json("\xff", 1, "\"\\ufffd\"");
    json("\xc3", 1, "\"\\ufffd\"");                                  /* truncated sequence */
    json("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");                       /* overlong */
    json("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");            /* surrogate */
    json("\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
}

static void test_json_copies_plain_runs_and_stops_at_the_max(void **state)
{
    (void)state;
    /* Runs of plain ASCII around every kind of escape, at both ends. */
    json("\"start plain run\" mid\\dle \x1f end", strlen("\"start plain run\" mid\\dle \x1f end"),
         "\"\\\"start plain run\\\" mid\\\\dle \\u001f end\"");
    json("", 0, "\"\"");
    /* A run that does not fit is refused whole, like any append. */
    struct hq_buf b;
    hq_buf_init(&b, 6);
    assert_int_equal(hq_buf_json_str(&b, "abcdefgh", 8), HQ_ETOOBIG);
    assert_true(b.len <= 6);
    hq_buf_free(&b);
}

static void test_i64_matches_printf_for_edges(void **state)
{
    (void)state;
    const long long v[] = {0, 7, -7, 10, 1764201600123LL, LLONG_MAX, LLONG_MIN, -1};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        struct hq_buf b;
        hq_buf_init(&b, 64);
        assert_int_equal(hq_buf_append(&b, "x=", 2), 0);
        assert_int_equal(hq_buf_i64(&b, v[i]), 0);
        char want[40];
        snprintf(want, sizeof(want), "x=%lld", v[i]);
        assert_string_equal(b.p, want);
        hq_buf_free(&b);
    }
    struct hq_buf b;
    hq_buf_init(&b, 3);
    assert_int_equal(hq_buf_i64(&b, 1234), HQ_ETOOBIG);
    assert_int_equal(b.len, 0);
    hq_buf_free(&b);
}

static void test_reserve_grows_once_and_respects_the_max(void **state)
{
    (void)state;
    struct hq_buf b;
    hq_buf_init(&b, 100);
    assert_int_equal(hq_buf_reserve(&b, 90), 0);
    assert_true(b.cap >= 91);
    char *before = b.p;
    for (int i = 0; i < 9; i++)
        assert_int_equal(hq_buf_append(&b, "0123456789", 10), 0);
    assert_ptr_equal(b.p, before); /* no growth after the reserve */
    assert_int_equal(hq_buf_reserve(&b, 11), HQ_ETOOBIG);
    hq_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_refuses_past_max_and_keeps_content),
        cmocka_unit_test(test_json_escapes_controls_quotes_and_backslashes),
        cmocka_unit_test(test_json_keeps_valid_utf8_and_replaces_invalid_bytes),
        cmocka_unit_test(test_json_copies_plain_runs_and_stops_at_the_max),
        cmocka_unit_test(test_i64_matches_printf_for_edges),
        cmocka_unit_test(test_reserve_grows_once_and_respects_the_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
