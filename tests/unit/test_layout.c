/* Key layouts (common/layout.c): the untagged layout keeps today's names; a
 * tagged one puts each partition's keys and the registry's keys in one slot
 * each; the config hash's fields are checked, not trusted; entry ids and
 * derived ids name the partition. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/keys.h"
#include "common/layout.h"
#include "common/slot.h"

static unsigned slot_of(const char *k)
{
    return hq_key_slot(k, strlen(k));
}

static void test_untagged_layout_keeps_todays_names(void **state)
{
    (void)state;
    struct hq_layout L;
    struct hq_err err = {0};
    assert_int_equal(hq_layout_init_untagged(&L, "hookq", &err), 0);
    assert_int_equal(L.nparts, 1);
    assert_false(L.tagged);
    char k[HQ_KEY_MAX];
    hq_key_events(L.part[0].base, k, sizeof(k));
    assert_string_equal(k, "hookq:events");
    hq_key_endpoint(L.reg, "ep_1", k, sizeof(k));
    assert_string_equal(k, "hookq:ep:ep_1");
    char id[64];
    hq_layout_derived_id(&L, 0, "evt", "1-0", 3, id, sizeof(id));
    assert_string_equal(id, "evt_1-0");
    hq_layout_entry_fmt(&L, 0, "1-0", id, sizeof(id));
    assert_string_equal(id, "1-0");
    hq_layout_free(&L);
}

static void test_tagged_layout_puts_each_partition_in_one_slot(void **state)
{
    (void)state;
    struct hq_layout L;
    struct hq_err err = {0};
    assert_int_equal(hq_layout_init_tagged(&L, "hq", 6, &err), 0);
    assert_int_equal(L.nparts, 6);
    assert_string_equal(L.part[3].tag, "p3.11");
    assert_string_equal(L.part[3].base, "hq:{p3.11}");
    assert_string_equal(L.reg, "hq:{reg}");
    for (unsigned i = 0; i < L.nparts; i++) {
        char k[5][HQ_KEY_MAX];
        hq_key_events(L.part[i].base, k[0], HQ_KEY_MAX);
        hq_key_retry(L.part[i].base, k[1], HQ_KEY_MAX);
        hq_key_retry_data(L.part[i].base, k[2], HQ_KEY_MAX);
        hq_key_dead(L.part[i].base, k[3], HQ_KEY_MAX);
        hq_key_attempts(L.part[i].base, "evt_some-id", k[4], HQ_KEY_MAX);
        for (int j = 0; j < 5; j++)
            assert_int_equal(slot_of(k[j]), L.part[i].slot);
        if (i > 0)
            assert_int_not_equal(L.part[i].slot, L.part[i - 1].slot);
    }
    char r[4][HQ_KEY_MAX];
    hq_key_endpoint(L.reg, "x", r[0], HQ_KEY_MAX);
    hq_key_endpoints(L.reg, r[1], HQ_KEY_MAX);
    hq_key_idx_type(L.reg, "user.created", r[2], HQ_KEY_MAX);
    hq_key_config("hq", r[3], HQ_KEY_MAX);
    for (int j = 0; j < 4; j++)
        assert_int_equal(slot_of(r[j]), L.reg_slot);
    char tags[256];
    assert_true(hq_layout_tags_join(&L, tags, sizeof(tags)) > 0);
    assert_string_equal(tags, "p0.1,p1.20,p2.2,p3.11,p4.33,p5.52");
    hq_layout_free(&L);
}

static void test_config_fields_are_checked(void **state)
{
    (void)state;
    struct hq_layout L;
    struct hq_err err = {0};
    assert_int_equal(hq_layout_init_config(&L, "hq", "1", "3", "a,b,c", &err), 0);
    assert_string_equal(L.part[2].base, "hq:{c}");
    hq_layout_free(&L);
    assert_int_equal(hq_layout_init_config(&L, "hq", "1", "4", "a,b,c", &err), HQ_EINVAL);
    assert_non_null(strstr(err.msg, "holds 3 tags for 4 partitions"));
    assert_int_equal(hq_layout_init_config(&L, "hq", "1", "2", "a,b,c", &err), HQ_EINVAL);
    assert_non_null(strstr(err.msg, "holds 3 tags for 2 partitions"));
    assert_int_equal(hq_layout_init_config(&L, "hq", "2", "1", "a", &err), HQ_EINVAL);
    assert_non_null(strstr(err.msg, "version 2"));
    assert_int_equal(hq_layout_init_config(&L, "hq", "1", "0", "a", &err), HQ_EINVAL);
    assert_int_equal(hq_layout_init_config(&L, "hq", "1", "x", "a", &err), HQ_EINVAL);
    assert_int_equal(hq_layout_init_config(&L, "hq", NULL, "1", "a", &err), HQ_EINVAL);
    assert_int_equal(hq_layout_init_config(&L, "hq", "1", "2", "a,{b}", &err), HQ_EINVAL);
    assert_non_null(strstr(err.msg, "tag 1"));
    assert_int_equal(hq_layout_init_config(&L, "hq", "1", "2", "a,", &err), HQ_EINVAL);
    assert_int_equal(hq_layout_init_config(&L, "hq", "1", "1", NULL, &err), HQ_EINVAL);
}

static void test_entry_ids_name_the_partition(void **state)
{
    (void)state;
    struct hq_layout L;
    struct hq_err err = {0};
    assert_int_equal(hq_layout_init_tagged(&L, "hq", 4, &err), 0);
    char s[64], id[64];
    unsigned p = 99;
    hq_layout_entry_fmt(&L, 3, "17-2", s, sizeof(s));
    assert_string_equal(s, "p3/17-2");
    assert_int_equal(hq_layout_entry_parse(&L, s, &p, id, sizeof(id), &err), 0);
    assert_int_equal(p, 3);
    assert_string_equal(id, "17-2");
    assert_int_equal(hq_layout_entry_parse(&L, "p4/1-0", &p, id, sizeof(id), &err), HQ_EINVAL);
    assert_non_null(strstr(err.msg, "no partition 4"));
    assert_int_equal(hq_layout_entry_parse(&L, "1-0", &p, id, sizeof(id), &err), HQ_EINVAL);
    assert_int_equal(hq_layout_entry_parse(&L, "px/1-0", &p, id, sizeof(id), &err), HQ_EINVAL);
    assert_int_equal(hq_layout_entry_parse(&L, "p1/", &p, id, sizeof(id), &err), HQ_EINVAL);
    /* Two partitions minting the same entry id give two webhook-ids. */
    char a[64], b[64];
    hq_layout_derived_id(&L, 0, "evt", "5-0", 3, a, sizeof(a));
    hq_layout_derived_id(&L, 1, "evt", "5-0", 3, b, sizeof(b));
    assert_string_equal(a, "evt_p0_5-0");
    assert_string_not_equal(a, b);
    /* An event with an id goes where its id hashes; without one, where asked. */
    assert_int_equal(hq_layout_partition_for(&L, "order-1", 7, 0),
                     hq_partition_of_id("order-1", 7, 4));
    assert_int_equal(hq_layout_partition_for(&L, NULL, 0, 6), 2);
    hq_layout_free(&L);
    struct hq_layout U;
    assert_int_equal(hq_layout_init_untagged(&U, "hq", &err), 0);
    assert_int_equal(hq_layout_entry_parse(&U, "1-0", &p, id, sizeof(id), &err), 0);
    assert_int_equal(p, 0);
    hq_layout_free(&U);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_untagged_layout_keeps_todays_names),
        cmocka_unit_test(test_tagged_layout_puts_each_partition_in_one_slot),
        cmocka_unit_test(test_config_fields_are_checked),
        cmocka_unit_test(test_entry_ids_name_the_partition),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
