/* struct hq_buf: the hard maximum, printf, and JSON string escaping that stays
 * valid JSON whatever bytes a peer sent. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_refuses_past_max_and_keeps_content),
        cmocka_unit_test(test_json_escapes_controls_quotes_and_backslashes),
        cmocka_unit_test(test_json_keeps_valid_utf8_and_replaces_invalid_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
