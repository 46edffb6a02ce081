/* hq_json_check (common/json_check.c): what the batch envelope embeds as JSON
 * and what it sends as base64 instead. Compared with jansson (a full parser)
 * on the same inputs where both apply. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "common/json_check.h"

static int check(const char *s)
{
    return hq_json_check(s, strlen(s));
}

static void test_accepts_json_values(void **state)
{
    (void)state;
    const char *ok[] = {
        "{}",     "[]",          " {\"a\": [1, 2.5e-3, -0, true, false, null]} ",
        "\"x\"",  "0",           "-12.5E+3",
        "[[[]]]", "\"\\u00e9\"", "{\"j\\u00fc\":\"J\xc3\xbcrgen \xe2\x82\xac \xf0\x9f\x98\x80\"}"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++)
        if (!check(ok[i]))
            fail_msg("refused: %s", ok[i]);
}

static void test_refuses_what_is_not_one_json_value(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         " ",
                         "{",
                         "[1,]",
                         "{\"a\":}",
                         "{a:1}",
                         "01",
                         "1.",
                         ".5",
                         "+1",
                         "tru",
                         "nul",
                         "\"a",
                         "\"\\x\"",
                         "\"\\u12\"",
                         "\"\x01\"",
                         "{} {}",
                         "[1] x",
                         "'a'",
                         "NaN",
                         "\"\xc3\"",
                         "\"\xc0\xaf\"",
                         "\"\xed\xa0\x80\"",
                         "\"\xf5\x80\x80\x80\"",
                         "not json 7",
                         "{\"a\" 1}",
                         "[1 2]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        if (check(bad[i]))
            fail_msg("accepted: %s", bad[i]);
    /* A bounded depth: deeper travels as base64. */
    char deep[2 * HQ_JSON_CHECK_DEPTH + 3];
    memset(deep, '[', HQ_JSON_CHECK_DEPTH + 1);
    memset(deep + HQ_JSON_CHECK_DEPTH + 1, ']', HQ_JSON_CHECK_DEPTH + 1);
    deep[2 * HQ_JSON_CHECK_DEPTH + 2] = '\0';
    assert_false(check(deep));
    /* A NUL inside is not JSON text. */
    assert_false(hq_json_check("{}\0", 3));
}

/* Where jansson says yes, so do we (jansson allows what RFC 8259 does, with
 * JSON_DECODE_ANY for scalars). */
static void test_agrees_with_jansson(void **state)
{
    (void)state;
    const char *in[] = {"{\"a\":1}", "[1,2,{\"b\":[null]}]", "\"s\"", "1e5", "[1,]", "{", "x"};
    for (size_t i = 0; i < sizeof(in) / sizeof(*in); i++) {
        json_error_t e;
        json_t *j = json_loads(in[i], JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
        assert_int_equal(check(in[i]), j != NULL);
        json_decref(j);
    }
}

/* Every byte at every place of a string long enough for the eight-byte
 * scan: one byte that needs a look (a quote, a backslash, a control byte,
 * one of a UTF-8 sequence) is never skipped over; jansson decides. */
static void test_every_byte_in_a_long_string(void **state)
{
    (void)state;
    char in[40];
    for (int at = 0; at < 30; at++) {
        for (int b = 0; b < 256; b++) {
            memset(in, 'a', sizeof(in));
            in[0] = '"';
            in[1 + at] = (char)b;
            in[31] = '"';
            json_error_t e;
            json_t *j = json_loadb(in, 32, JSON_DECODE_ANY, &e);
            if (hq_json_check(in, 32) != (j != NULL))
                fail_msg("byte 0x%02x at %d: ours %d, jansson %d", b, at, hq_json_check(in, 32),
                         j != NULL);
            json_decref(j);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_json_values),
        cmocka_unit_test(test_refuses_what_is_not_one_json_value),
        cmocka_unit_test(test_agrees_with_jansson),
        cmocka_unit_test(test_every_byte_in_a_long_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
