/* Partition tags and the partition of an id (common/partition.c): every tag
 * lands in the middle of its partition's slot range, tags are distinct and
 * fixed (other languages compute the same ones: docs/internals/partitions.md),
 * and partitions spread exactly over primaries that split the slots as
 * redis-cli --cluster create does. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/partition.h"
#include "common/slot.h"

static char (*tags_of(unsigned P))[HQ_PARTITION_TAG_MAX]
{
    char(*t)[HQ_PARTITION_TAG_MAX] = calloc(P, HQ_PARTITION_TAG_MAX);
    assert_non_null(t);
    struct hq_err err = {0};
    if (hq_partition_tags(P, t, &err) != 0)
        fail_msg("P=%u: %s", P, err.msg);
    return t;
}

/* Every tag of P: "p<i>" or "p<i>.<n>", in the middle half of its range,
 * distinct from the others. */
static void check_tags(unsigned P)
{
    char(*t)[HQ_PARTITION_TAG_MAX] = tags_of(P);
    for (unsigned i = 0; i < P; i++) {
        char want[HQ_PARTITION_TAG_MAX];
        int w = snprintf(want, sizeof(want), "p%u", i);
        size_t n = strlen(t[i]);
        if (strncmp(t[i], want, (size_t)w) != 0 || (t[i][w] != '\0' && t[i][w] != '.'))
            fail_msg("P=%u: tag %u is '%s'", P, i, t[i]);
        unsigned first = hq_partition_range_first(i, P), end = hq_partition_range_first(i + 1, P);
        unsigned slot = hq_key_slot(t[i], n), margin = (end - first) / 4;
        if (slot < first + margin || slot >= end - margin)
            fail_msg("P=%u: tag %u '%s' slot %u outside [%u, %u)", P, i, t[i], slot, first + margin,
                     end - margin);
        /* The tag is all the key hashes: "<prefix>:{T}:events" has its slot. */
        char key[64];
        int kn = snprintf(key, sizeof(key), "hookq:{%s}:events", t[i]);
        assert_int_equal(hq_key_slot(key, (size_t)kn), slot);
        for (unsigned j = 0; j < i; j++)
            assert_string_not_equal(t[i], t[j]);
    }
    free(t);
}

static void test_each_tag_lands_in_the_middle_of_its_range_for_p_1_to_64(void **state)
{
    (void)state;
    for (unsigned P = 1; P <= 64; P++)
        check_tags(P);
}

static void test_the_largest_partition_counts_find_their_tags(void **state)
{
    (void)state;
    /* The narrowest ranges (16 slots, a target of 8) need the longest search. */
    static const unsigned big[] = {1000, 1021, 1023, HQ_PARTITIONS_MAX};
    for (size_t k = 0; k < sizeof(big) / sizeof(big[0]); k++)
        check_tags(big[k]);
}

static void test_partition_counts_out_of_range_are_refused(void **state)
{
    (void)state;
    char t[1][HQ_PARTITION_TAG_MAX];
    struct hq_err err = {0};
    assert_int_equal(hq_partition_tags(0, t, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "partitions: 0 is not within 1..1024");
    assert_int_equal(hq_partition_tags(HQ_PARTITIONS_MAX + 1, t, &err), HQ_EINVAL);
    assert_int_equal(hq_partition_tags(4000000000u, t, &err), HQ_EINVAL);
}

/* The tags are a protocol: these tables are in docs/internals/partitions.md,
 * and a change here is a new layout version. */
static void test_tags_are_the_documented_ones(void **state)
{
    (void)state;
    static const struct {
        unsigned P;
        const char *tags[12];
    } table[] = {
        {1, {"p0.3"}},
        {4, {"p0.1", "p1.10", "p2.1", "p3.10"}},
        {6, {"p0.1", "p1.20", "p2.2", "p3.11", "p4.33", "p5.52"}},
        {12,
         {"p0.41", "p1.59", "p2.43", "p3.23", "p4.1", "p5.50", "p6.63", "p7.20", "p8.1", "p9.49",
          "p10.23", "p11.60"}},
    };
    for (size_t k = 0; k < sizeof(table) / sizeof(table[0]); k++) {
        char(*t)[HQ_PARTITION_TAG_MAX] = tags_of(table[k].P);
        for (unsigned i = 0; i < table[k].P; i++)
            if (strcmp(t[i], table[k].tags[i]) != 0)
                fail_msg("P=%u tag %u: '%s', documented '%s'", table[k].P, i, t[i],
                         table[k].tags[i]);
        free(t);
    }
}

/* The slot ranges redis-cli --cluster create gives M primaries: each gets
 * 16384/M slots, the running boundary rounded to the nearest slot. */
static void primary_ranges(int M, int *first, int *last)
{
    double per = (double)HQ_SLOTS / M, cursor = 0;
    int f = 0;
    for (int j = 0; j < M; j++) {
        long l = (long)(cursor + per - 1 + 0.5); /* lround of a positive value, without libm */
        if (l > HQ_SLOTS - 1 || j == M - 1)
            l = HQ_SLOTS - 1;
        first[j] = f;
        last[j] = (int)l;
        f = (int)l + 1;
        cursor += per;
    }
}

/* How many of tags (n of them, as key strings) each of M primaries owns. */
static void spread(const char (*tags)[HQ_PARTITION_TAG_MAX], unsigned n, int M, int *count)
{
    int first[16], last[16];
    primary_ranges(M, first, last);
    for (int j = 0; j < M; j++)
        count[j] = 0;
    for (unsigned i = 0; i < n; i++) {
        unsigned slot = hq_key_slot(tags[i], strlen(tags[i]));
        for (int j = 0; j < M; j++)
            if ((int)slot >= first[j] && (int)slot <= last[j])
                count[j]++;
    }
}

static void test_partitions_spread_exactly_over_equal_primaries(void **state)
{
    (void)state;
    int first[3], last[3];
    primary_ranges(3, first, last);
    /* What redis-cli printed in the design study: 0-5460, 5461-10922, 10923-16383. */
    assert_int_equal(last[0], 5460);
    assert_int_equal(last[1], 10922);
    assert_int_equal(first[2], 10923);
    static const struct {
        unsigned P;
        int M;
    } cases[] = {{3, 3}, {6, 3}, {12, 3}, {24, 3}, {4, 2}, {12, 4}, {12, 6}, {6, 6}, {16, 4}};
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char(*t)[HQ_PARTITION_TAG_MAX] = tags_of(cases[k].P);
        int count[16];
        spread((const char(*)[HQ_PARTITION_TAG_MAX])t, cases[k].P, cases[k].M, count);
        for (int j = 0; j < cases[k].M; j++)
            if (count[j] != (int)cases[k].P / cases[k].M)
                fail_msg("P=%u on %d primaries: primary %d holds %d", cases[k].P, cases[k].M, j,
                         count[j]);
        free(t);
    }
}

static void test_every_multiple_of_up_to_16_primaries_spreads_exactly(void **state)
{
    (void)state;
    /* The reason for aiming at the middle of each range: with tags anywhere
     * in it, 7 of these cases (the first: P=165 on 5 primaries, 33/34/32/33/33)
     * put a tag on a slot redis-cli's rounding gives to the neighbour. */
    for (unsigned P = 2; P <= 256; P++) {
        char(*t)[HQ_PARTITION_TAG_MAX] = tags_of(P);
        for (int M = 2; M <= 16; M++) {
            if (P % (unsigned)M != 0)
                continue;
            int count[16];
            spread((const char(*)[HQ_PARTITION_TAG_MAX])t, P, M, count);
            for (int j = 0; j < M; j++)
                if (count[j] != (int)P / M)
                    fail_msg("P=%u on %d primaries: primary %d holds %d", P, M, j, count[j]);
        }
        free(t);
    }
}

static void test_naive_tags_spread_unevenly(void **state)
{
    (void)state;
    /* Why tags are chosen at all: the study measured p0..p15 landing 4/5/7
     * on three primaries with CLUSTER KEYSLOT. */
    char naive[16][HQ_PARTITION_TAG_MAX];
    for (int i = 0; i < 16; i++)
        snprintf(naive[i], sizeof(naive[i]), "p%d", i);
    int count[3];
    spread((const char(*)[HQ_PARTITION_TAG_MAX])naive, 16, 3, count);
    int sorted[3] = {count[0], count[1], count[2]};
    for (int a = 0; a < 3; a++)
        for (int b = a + 1; b < 3; b++)
            if (sorted[b] < sorted[a]) {
                int x = sorted[a];
                sorted[a] = sorted[b];
                sorted[b] = x;
            }
    assert_int_equal(sorted[0], 4);
    assert_int_equal(sorted[1], 5);
    assert_int_equal(sorted[2], 7);
}

static void test_partition_of_an_id_is_crc16_mod_p(void **state)
{
    (void)state;
    /* 0x31C3 = 12739: mod 6 = 1, mod 4 = 3, mod 1024 = 451. */
    assert_int_equal(hq_partition_of_id("123456789", 9, 6), 1);
    assert_int_equal(hq_partition_of_id("123456789", 9, 4), 3);
    assert_int_equal(hq_partition_of_id("123456789", 9, 1024), 451);
    assert_int_equal(hq_partition_of_id("123456789", 9, 1), 0);
    assert_int_equal(hq_partition_of_id("123456789", 9, 0), 0);
    /* The whole id is hashed: braces in an id are not a hash tag. */
    assert_int_equal(hq_partition_of_id("{a}b", 4, 65536), hq_slot_crc16("{a}b", 4));
    assert_int_not_equal(hq_partition_of_id("{a}b", 4, 65536), hq_partition_of_id("a", 1, 65536));
    assert_int_equal(hq_partition_of_id("a\0b", 3, 65536), hq_slot_crc16("a\0b", 3));
    /* Ids spread evenly enough: 60,000 ids over 6 partitions, each within 5 %. */
    int count[6] = {0};
    for (int i = 0; i < 60000; i++) {
        char id[32];
        int n = snprintf(id, sizeof(id), "evt_%d", i);
        unsigned p = hq_partition_of_id(id, (size_t)n, 6);
        assert_true(p < 6);
        count[p]++;
    }
    for (int p = 0; p < 6; p++)
        if (count[p] < 9500 || count[p] > 10500)
            fail_msg("partition %d got %d of 60000 ids", p, count[p]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_tag_lands_in_the_middle_of_its_range_for_p_1_to_64),
        cmocka_unit_test(test_the_largest_partition_counts_find_their_tags),
        cmocka_unit_test(test_partition_counts_out_of_range_are_refused),
        cmocka_unit_test(test_tags_are_the_documented_ones),
        cmocka_unit_test(test_partitions_spread_exactly_over_equal_primaries),
        cmocka_unit_test(test_every_multiple_of_up_to_16_primaries_spreads_exactly),
        cmocka_unit_test(test_naive_tags_spread_unevenly),
        cmocka_unit_test(test_partition_of_an_id_is_crc16_mod_p),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
