/* Key slots (common/slot.c): CRC16/XMODEM against published vectors, the
 * hash-tag rule on every edge the cluster specification defines, and the
 * slots the design study measured with CLUSTER KEYSLOT. The same functions
 * are checked against a live node in tests/integration/test_cluster_slot.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <string.h>

#include "common/slot.h"

#define S(lit) lit, sizeof(lit) - 1 /* a literal and its length, NULs included */

static void test_crc16_matches_xmodem_check_values(void **state)
{
    (void)state;
    /* "123456789" -> 0x31C3 is the XMODEM check value, and the one Redis'
     * crc16.c documents; the others were computed with Python's
     * binascii.crc_hqx(data, 0). */
    assert_int_equal(hq_slot_crc16(S("123456789")), 0x31C3);
    assert_int_equal(hq_slot_crc16(S("A")), 0x58E5);
    assert_int_equal(hq_slot_crc16(S("somekey")), 0x6B32);
    assert_int_equal(hq_slot_crc16(S("\x00\xff\x10{")), 0x03EC);
    assert_int_equal(hq_slot_crc16(NULL, 0), 0);
    assert_int_equal(hq_slot_crc16(S("")), 0);
}

static void test_crc16_covers_every_byte_of_a_key(void **state)
{
    (void)state;
    /* A CRC that stopped at a NUL, or read one byte too few, would give the
     * same value for these pairs. */
    assert_int_not_equal(hq_slot_crc16(S("ab\0c")), hq_slot_crc16(S("ab")));
    assert_int_not_equal(hq_slot_crc16(S("abc")), hq_slot_crc16(S("ab")));
    assert_int_not_equal(hq_slot_crc16(S("\x80")), hq_slot_crc16(S("\x00")));
}

/* The tag of key as a string, for comparing. */
static void assert_tag(const char *key, size_t len, const char *want, size_t want_len)
{
    const char *tag;
    size_t n;
    hq_key_hash_tag(key, len, &tag, &n);
    if (n != want_len || memcmp(tag, want, n) != 0)
        fail_msg("tag of '%.*s': got '%.*s', want '%.*s'", (int)len, key, (int)n, tag,
                 (int)want_len, want);
    /* The tag is a view into the key, never a copy. */
    assert_true(tag >= key && tag + n <= key + len);
}

static void test_hash_tag_is_between_first_open_and_next_close(void **state)
{
    (void)state;
    assert_tag(S("{user1000}.following"), S("user1000"));
    assert_tag(S("hookq:{p3}:events"), S("p3"));
    assert_tag(S("a{b}c{d}"), S("b")); /* only the first tag counts */
    assert_tag(S("{{a}}"), S("{a"));   /* from the first '{' to the first '}' after it */
    assert_tag(S("}{a}"), S("a"));     /* a '}' before the first '{' is ignored */
    assert_tag(S("x{a}}"), S("a"));    /* the first '}' after the '{' ends it */
    assert_tag(S("{ }"), S(" "));      /* any byte is a tag */
    assert_tag(S("\x01{\x00\xff}\x02"), S("\x00\xff")); /* binary bytes, NUL included */
}

static void test_hash_tag_falls_back_to_the_whole_key(void **state)
{
    (void)state;
    assert_tag(S("{}"), S("{}"));       /* empty tag: the whole key */
    assert_tag(S("{}{a}"), S("{}{a}")); /* the first '{' decides, even with a later tag */
    assert_tag(S("{"), S("{"));
    assert_tag(S("}"), S("}"));
    assert_tag(S("}{"), S("}{"));
    assert_tag(S("abc{"), S("abc{"));
    assert_tag(S("abc}"), S("abc}"));
    assert_tag(S("plain"), S("plain"));
    assert_tag(S(""), S(""));
    /* The length bounds the search: a '}' past len does not close the tag. */
    assert_tag("{ab}", 3, "{ab", 3);
}

static void test_slot_of_a_key_is_crc16_of_its_tag_mod_16384(void **state)
{
    (void)state;
    /* Measured with CLUSTER KEYSLOT in the design study and Redis' docs. */
    assert_int_equal(hq_key_slot(S("{p3}")), 3689);
    assert_int_equal(hq_key_slot(S("{reg}")), 7926);
    assert_int_equal(hq_key_slot(S("somekey")), 11058);
    assert_int_equal(hq_key_slot(S("foo{hash_tag}")), 2515);
    assert_int_equal(hq_key_slot(S("123456789")), 0x31C3 % 16384);
    /* Keys with one tag share a slot whatever surrounds it. */
    assert_int_equal(hq_key_slot(S("hookq:{p3}:events")), 3689);
    assert_int_equal(hq_key_slot(S("hookq:{p3}:att:evt_1")), 3689);
    assert_int_equal(hq_key_slot(S("hookq:{reg}:endpoints:ver")), 7926);
    /* No tag: the whole key, the empty key included. */
    assert_int_equal(hq_key_slot(S("{}")), hq_slot_crc16(S("{}")) % 16384);
    assert_int_equal(hq_key_slot(S("")), 0);
    assert_int_equal(hq_key_slot(NULL, 0), 0);
}

static void test_slot_is_always_below_16384(void **state)
{
    (void)state;
    /* 0x31C3 = 12739 < 16384, but many CRCs are above: those must wrap. */
    int above = 0;
    char key[8];
    for (unsigned i = 0; i < 65536; i++) {
        memcpy(key, &i, sizeof(i));
        unsigned crc = hq_slot_crc16(key, sizeof(i));
        unsigned slot = hq_key_slot(key, sizeof(i));
        assert_true(slot < HQ_SLOTS);
        assert_int_equal(slot, crc % 16384);
        above += crc >= 16384;
    }
    assert_true(above > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16_matches_xmodem_check_values),
        cmocka_unit_test(test_crc16_covers_every_byte_of_a_key),
        cmocka_unit_test(test_hash_tag_is_between_first_open_and_next_close),
        cmocka_unit_test(test_hash_tag_falls_back_to_the_whole_key),
        cmocka_unit_test(test_slot_of_a_key_is_crc16_of_its_tag_mod_16384),
        cmocka_unit_test(test_slot_is_always_below_16384),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
