/* The --batch setting (common/batch.c): its syntax, defaults and bounds, the
 * one-line errors naming the field, the stored form read back, and the batch
 * id (stable for the same endpoint, first event and size; different else). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "common/batch.h"

static void test_parse_fields_defaults_and_off(void **state)
{
    (void)state;
    struct hq_err err = {0};
    struct hq_batch_cfg c;
    assert_int_equal(hq_batch_parse("max=100,wait=50ms,bytes=512k", &c, &err), 0);
    assert_int_equal(c.max, 100);
    assert_int_equal(c.wait_ms, 50);
    assert_int_equal(c.bytes, 512 * 1024);
    assert_int_equal(hq_batch_parse("bytes=2M,max=10", &c, &err), 0);
    assert_int_equal(c.max, 10);
    assert_int_equal(c.wait_ms, HQ_BATCH_WAIT_DEFAULT);
    assert_int_equal(c.bytes, 2 * 1024 * 1024);
    assert_int_equal(hq_batch_parse("max=7", &c, &err), 0);
    assert_int_equal(c.bytes, HQ_BATCH_BYTES_DEFAULT);
    assert_int_equal(hq_batch_parse("off", &c, &err), 0);
    assert_int_equal(c.max, 0);
    assert_int_equal(hq_batch_parse("", &c, &err), 0);
    assert_int_equal(c.max, 0);
}

static void test_bad_values_name_the_field(void **state)
{
    (void)state;
    struct {
        const char *in, *want;
    } bad[] = {
        {"max=1", "max=1 is out of range"},
        {"max=1001", "max=1001 is out of range"},
        {"max=x", "max='x' is not a whole number"},
        {"max=-5", "max='-5' is not a whole number"},
        {"max=10,wait=5s", "wait=5000ms is out of range"},
        {"max=10,wait=0ms", "wait=0ms is out of range"},
        {"max=10,wait=soon", "wait='soon' is not a duration"},
        {"max=10,bytes=10", "bytes=10 is out of range"},
        {"max=10,bytes=1G", "bytes=1073741824 is out of range"},
        {"max=10,bytes=lots", "bytes='lots' is not a size"},
        {"max=10,max=20", "max= is given twice"},
        {"wait=50ms", "max=N is missing"},
        {"max=10,colour=red", "'colour=red' is not max=N"},
        {"max=10,", "'' is not max=N"},
        {"on", "'on' is not max=N"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        struct hq_err err = {0};
        struct hq_batch_cfg c = {.max = 99};
        assert_int_equal(hq_batch_parse(bad[i].in, &c, &err), HQ_EINVAL);
        assert_int_equal(c.max, 0); /* nothing half-set */
        if (!strstr(err.msg, "--batch: ") || !strstr(err.msg, bad[i].want) || strchr(err.msg, '\n'))
            fail_msg("'%s': got '%s', want '%s'", bad[i].in, err.msg, bad[i].want);
    }
}

static void test_stored_form_reads_back(void **state)
{
    (void)state;
    struct hq_batch_cfg c = {.max = 100, .wait_ms = 2000, .bytes = HQ_BATCH_BYTES_MAX}, back;
    char s[HQ_BATCH_STR_MAX];
    hq_batch_format(&c, s, sizeof(s));
    assert_string_equal(s, "max=100,wait=2000ms,bytes=16777216");
    assert_int_equal(hq_batch_parse(s, &back, NULL), 0);
    assert_memory_equal(&c, &back, sizeof(c));
    c.max = 0;
    hq_batch_format(&c, s, sizeof(s));
    assert_string_equal(s, "");
}

static void test_batch_id_is_stable_and_distinct(void **state)
{
    (void)state;
    char a[HQ_BATCH_ID_MAX], b[HQ_BATCH_ID_MAX];
    hq_batch_id("ep_1", "evt_1", 10, a);
    hq_batch_id("ep_1", "evt_1", 10, b);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), HQ_BATCH_ID_MAX - 1);
    assert_memory_equal(a, "bat_", 4);
    hq_batch_id("ep_1", "evt_1", 11, b);
    assert_string_not_equal(a, b);
    hq_batch_id("ep_2", "evt_1", 10, b);
    assert_string_not_equal(a, b);
    hq_batch_id("ep_1", "evt_2", 10, b);
    assert_string_not_equal(a, b);
    /* The separators keep ("ep_1", "1evt") apart from ("ep_11", "evt"). */
    hq_batch_id("ep_1", "1evt", 10, a);
    hq_batch_id("ep_11", "evt", 10, b);
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields_defaults_and_off),
        cmocka_unit_test(test_bad_values_name_the_field),
        cmocka_unit_test(test_stored_form_reads_back),
        cmocka_unit_test(test_batch_id_is_stable_and_distinct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
