/* Key slots and CLUSTER SLOTS decoding against real cluster nodes: our CRC16
 * and hash-tag rule give CLUSTER KEYSLOT's answer for ~2,000 keys (random
 * bytes, tags, edge cases, partition tags); our decoding of a node's CLUSTER
 * SLOTS reply names the same owner for every slot as CLUSTER NODES and
 * CLUSTER SHARDS; real MOVED, ASK, TRYAGAIN and CROSSSLOT errors are
 * classified; partition tags spread evenly over a 3-primary cluster made by
 * redis-cli; after a primary is killed, the map names the promoted replica.
 * One cluster-enabled node owning all slots, then a 3-primary + 3-replica
 * cluster (tests/harness/cluster_env.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cluster_slots.h"
#include "common/partition.h"
#include "common/slot.h"
#include "tests/harness/cluster_env.h"

static struct hq_test_cluster SINGLE, SIX;

/* splitmix64: reproducible random keys. */
static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#define KEY_MAX 64

struct keys {
    int n;
    char key[2400][KEY_MAX];
    size_t len[2400];
};

static void add(struct keys *k, const char *key, size_t len)
{
    assert_true(k->n < 2400 && len <= KEY_MAX);
    memcpy(k->key[k->n], key, len);
    k->len[k->n] = len;
    k->n++;
}

static void add_str(struct keys *k, const char *key)
{
    add(k, key, strlen(key));
}

/* ~2,000 keys: edge cases, random bytes with braces sprinkled in, tagged
 * keys, and every partition tag of several P as hookq would use them. */
static struct keys *make_keys(void)
{
    struct keys *k = calloc(1, sizeof(*k));
    assert_non_null(k);
    static const char *edges[] = {"",      "{}",   "{",       "}",         "}{",      "a{b}c{d}",
                                  "{{a}}", "}{a}", "{}{a}",   "{ }",       "{p3}",    "{reg}",
                                  "x{a}}", "abc{", "somekey", "123456789", "{a}{}{b}"};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
        add_str(k, edges[i]);
    add(k, "\x01{\x00\xff}\x02", 6);
    uint64_t seed = 14;
    for (int i = 0; i < 1200; i++) {
        char key[KEY_MAX];
        size_t len = splitmix(&seed) % 40;
        for (size_t j = 0; j < len; j++) {
            uint64_t r = splitmix(&seed);
            /* One byte in eight a brace, so tags of every shape occur. */
            key[j] = (r & 7) == 0 ? ((r >> 3) & 1 ? '{' : '}') : (char)(r >> 8);
        }
        add(k, key, len);
    }
    for (int i = 0; i < 500; i++) {
        char key[KEY_MAX];
        int n = snprintf(key, sizeof(key), "hookq:{t%llu}:att:evt_%d",
                         (unsigned long long)(splitmix(&seed) % 100000), i);
        add(k, key, (size_t)n);
    }
    static const unsigned Ps[] = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64};
    for (size_t p = 0; p < sizeof(Ps) / sizeof(Ps[0]); p++) {
        char(*t)[HQ_PARTITION_TAG_MAX] = calloc(Ps[p], HQ_PARTITION_TAG_MAX);
        struct hq_err err = {0};
        assert_int_equal(hq_partition_tags(Ps[p], t, &err), 0);
        for (unsigned i = 0; i < Ps[p]; i++) {
            char key[KEY_MAX];
            int n = snprintf(key, sizeof(key), "hookq:{%s}:events", t[i]);
            add(k, key, (size_t)n);
            add_str(k, t[i]);
        }
        free(t);
    }
    return k;
}

static void test_key_slot_matches_cluster_keyslot_for_2000_keys(void **state)
{
    (void)state;
    struct keys *k = make_keys();
    assert_true(k->n >= 2000);
    redisContext *c = hq_test_cluster_connect(&SINGLE, 0);
    /* Pipelined: one round trip's worth of waiting for all of them. */
    for (int i = 0; i < k->n; i++) {
        const char *argv[3] = {"CLUSTER", "KEYSLOT", k->key[i]};
        size_t lens[3] = {7, 7, k->len[i]};
        assert_int_equal(redisAppendCommandArgv(c, 3, argv, lens), REDIS_OK);
    }
    int mismatches = 0;
    for (int i = 0; i < k->n; i++) {
        redisReply *r = NULL;
        assert_int_equal(redisGetReply(c, (void **)&r), REDIS_OK);
        assert_non_null(r);
        if (r->type != REDIS_REPLY_INTEGER)
            fail_msg("CLUSTER KEYSLOT key %d: %s", i, r->str ? r->str : "(not an integer)");
        unsigned ours = hq_key_slot(k->key[i], k->len[i]);
        if ((long long)ours != r->integer && mismatches++ < 5)
            fprintf(stderr, "key %d (%zu bytes): server %lld, ours %u\n", i, k->len[i], r->integer,
                    ours);
        freeReplyObject(r);
    }
    assert_int_equal(mismatches, 0);
    redisFree(c);
    free(k);
}

/* CLUSTER SLOTS through conn, decoded; fails the test when refused. */
static struct hq_slot_map *decoded_slots(redisContext *c)
{
    struct hq_slot_map *m = malloc(sizeof(*m));
    assert_non_null(m);
    redisReply *r = hq_test_cmd(c, "CLUSTER SLOTS");
    struct hq_err err = {0};
    if (hq_cluster_slots_parse(r, m, &err) != 0)
        fail_msg("decoding a real CLUSTER SLOTS reply: %s", err.msg);
    freeReplyObject(r);
    return m;
}

/* Every slot: the same owner (by port and id) in our map as in CLUSTER NODES. */
static void assert_same_owners(const struct hq_slot_map *m, const struct hq_test_cluster_view *v)
{
    for (int s = 0; s < HQ_SLOTS; s++) {
        int o = m->owner[s], vo = v->owner[s];
        if ((o < 0) != (vo < 0))
            fail_msg("slot %d: owned in %s only", s, o < 0 ? "CLUSTER NODES" : "CLUSTER SLOTS");
        if (o < 0)
            continue;
        if (m->node[o].port != v->peer[vo].port || strcmp(m->node[o].id, v->peer[vo].id) != 0)
            fail_msg("slot %d: CLUSTER SLOTS says %s:%d (%s), CLUSTER NODES %s:%d (%s)", s,
                     m->node[o].host, m->node[o].port, m->node[o].id, v->peer[vo].ip,
                     v->peer[vo].port, v->peer[vo].id);
    }
}

static void test_one_node_decodes_as_owning_every_slot(void **state)
{
    (void)state;
    redisContext *c = hq_test_cluster_connect(&SINGLE, 0);
    struct hq_slot_map *m = decoded_slots(c);
    assert_int_equal(m->nnodes, 1);
    assert_int_equal(m->covered, HQ_SLOTS);
    /* A node that never met another does not know its own address: Redis
     * sends an empty host, which means "the node you asked". */
    assert_string_equal(m->node[0].host, "");
    assert_int_equal(m->node[0].port, SINGLE.node[0].port);
    assert_int_equal(m->node[0].replicas, 0);
    redisReply *id = hq_test_cmd(c, "CLUSTER MYID");
    assert_int_equal(id->type, REDIS_REPLY_STRING);
    assert_string_equal(m->node[0].id, id->str);
    freeReplyObject(id);
    struct hq_test_cluster_view *v = malloc(sizeof(*v));
    assert_int_equal(hq_test_cluster_view(c, v), 0);
    assert_same_owners(m, v);

    /* Slots taken away are reported as gaps, as CLUSTER NODES shows them. */
    redisReply *r = hq_test_cmd(c, "CLUSTER DELSLOTSRANGE 100 199 5000 5000");
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    free(m);
    m = decoded_slots(c);
    char gaps[64];
    assert_int_equal(hq_slot_map_gaps(m, gaps, sizeof(gaps)), 101);
    assert_string_equal(gaps, "100-199,5000");
    assert_int_equal(hq_test_cluster_view(c, v), 0);
    assert_same_owners(m, v);
    r = hq_test_cmd(c, "CLUSTER ADDSLOTSRANGE 100 199 5000 5000");
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    assert_true(hq_test_cluster_wait_ok(&SINGLE, HQ_TEST_CLUSTER_WAIT_MS));
    free(m);
    free(v);
    redisFree(c);
}

/* ---- The 3 + 3 cluster ----------------------------------------------------------- */

/* Reads a CLUSTER SHARDS reply (RESP2: each shard a flat key/value array)
 * into owner ports per slot; fails the test on a shape it does not know. */
static void shards_owner_ports(redisContext *c, int *port_of_slot)
{
    for (int s = 0; s < HQ_SLOTS; s++)
        port_of_slot[s] = -1;
    redisReply *r = hq_test_cmd(c, "CLUSTER SHARDS");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *sh = r->element[i], *slots = NULL, *nodes = NULL;
        assert_int_equal(sh->type, REDIS_REPLY_ARRAY);
        for (size_t k = 0; k + 1 < sh->elements; k += 2) {
            if (strcmp(sh->element[k]->str, "slots") == 0)
                slots = sh->element[k + 1];
            else if (strcmp(sh->element[k]->str, "nodes") == 0)
                nodes = sh->element[k + 1];
        }
        assert_non_null(slots);
        assert_non_null(nodes);
        int port = -1;
        for (size_t n = 0; n < nodes->elements; n++) {
            const redisReply *nd = nodes->element[n];
            int p = -1, primary = 0;
            for (size_t k = 0; k + 1 < nd->elements; k += 2) {
                const char *key = nd->element[k]->str;
                const redisReply *val = nd->element[k + 1];
                if (strcmp(key, "port") == 0)
                    p = (int)val->integer;
                else if (strcmp(key, "role") == 0)
                    primary = strcmp(val->str, "master") == 0;
            }
            if (primary)
                port = p;
        }
        for (size_t k = 0; k + 1 < slots->elements; k += 2) {
            const redisReply *a = slots->element[k], *b = slots->element[k + 1];
            long long x = a->type == REDIS_REPLY_INTEGER ? a->integer : atoll(a->str);
            long long y = b->type == REDIS_REPLY_INTEGER ? b->integer : atoll(b->str);
            assert_true(x >= 0 && y < HQ_SLOTS && x <= y);
            for (long long s = x; s <= y; s++)
                port_of_slot[s] = port;
        }
    }
    freeReplyObject(r);
}

static void test_every_node_of_three_primaries_decodes_as_cluster_nodes_and_shards_say(void **state)
{
    (void)state;
    struct hq_test_cluster_view *v = malloc(sizeof(*v));
    int *shard_port = malloc(HQ_SLOTS * sizeof(int));
    for (int i = 0; i < SIX.n; i++) {
        redisContext *c = hq_test_cluster_connect(&SIX, i);
        struct hq_slot_map *m = decoded_slots(c);
        assert_int_equal(m->nnodes, 3);
        assert_int_equal(m->covered, HQ_SLOTS);
        for (int k = 0; k < m->nnodes; k++) {
            if (m->node[k].replicas != 1)
                fail_msg("node %d: CLUSTER SLOTS lists %d replicas of %d", SIX.node[i].port,
                         m->node[k].replicas, m->node[k].port);
            assert_true(hq_test_cluster_node_of_port(&SIX, m->node[k].port) >= 0);
        }
        assert_int_equal(hq_test_cluster_view(c, v), 0);
        assert_same_owners(m, v);
        shards_owner_ports(c, shard_port);
        for (int s = 0; s < HQ_SLOTS; s++)
            if (shard_port[s] != m->node[m->owner[s]].port)
                fail_msg("node %d, slot %d: CLUSTER SHARDS says port %d, CLUSTER SLOTS %d", i, s,
                         shard_port[s], m->node[m->owner[s]].port);
        free(m);
        redisFree(c);
    }
    free(shard_port);
    free(v);
}

static void test_partition_tags_spread_evenly_over_three_primaries(void **state)
{
    (void)state;
    redisContext *c = hq_test_cluster_connect(&SIX, 0);
    struct hq_slot_map *m = decoded_slots(c);
    static const unsigned Ps[] = {3, 6, 12};
    for (size_t p = 0; p < sizeof(Ps) / sizeof(Ps[0]); p++) {
        char(*t)[HQ_PARTITION_TAG_MAX] = calloc(Ps[p], HQ_PARTITION_TAG_MAX);
        struct hq_err err = {0};
        assert_int_equal(hq_partition_tags(Ps[p], t, &err), 0);
        int count[HQ_CLUSTER_NODES_MAX] = {0};
        for (unsigned i = 0; i < Ps[p]; i++) {
            /* The server's word for the slot, not ours. */
            long long slot = hq_test_cmd_int(c, "CLUSTER KEYSLOT hookq:{%s}:events", t[i]);
            count[m->owner[slot]]++;
        }
        for (int k = 0; k < m->nnodes; k++)
            if (count[k] != (int)Ps[p] / 3)
                fail_msg("P=%u: primary %d holds %d partitions", Ps[p], m->node[k].port, count[k]);
        free(t);
    }
    free(m);
    redisFree(c);
}

/* The error a command gets, parsed; the reply is checked to be an error. */
static enum hq_redirect_kind error_of(redisContext *c, struct hq_redirect *out, const char *fmt,
                                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type != REDIS_REPLY_ERROR)
        fail_msg("'%s': expected an error, got type %d", fmt, r->type);
    enum hq_redirect_kind k = hq_redirect_parse(r->str, r->len, out);
    if (k == HQ_REDIRECT_NONE)
        fprintf(stderr, "'%s' -> '%s': not classified\n", fmt, r->str);
    freeReplyObject(r);
    return k;
}

static void test_real_redirects_and_cluster_errors_are_classified(void **state)
{
    (void)state;
    redisContext *c0 = hq_test_cluster_connect(&SIX, 0);
    struct hq_slot_map *m = decoded_slots(c0);
    const char *key = "hookq:{p3}:events";
    unsigned slot = hq_key_slot(key, strlen(key));
    const struct hq_cluster_node *owner = &m->node[m->owner[slot]];
    /* MOVED: ask a primary that does not own the slot. */
    int other = -1;
    for (int k = 0; k < m->nnodes && other < 0; k++)
        if (k != m->owner[slot])
            other = k;
    redisContext *wrong =
        hq_test_cluster_connect(&SIX, hq_test_cluster_node_of_port(&SIX, m->node[other].port));
    struct hq_redirect rd;
    assert_int_equal(error_of(wrong, &rd, "XADD %s * f v", key), HQ_REDIRECT_MOVED);
    assert_int_equal(rd.slot, (int)slot);
    assert_string_equal(rd.host, owner->host);
    assert_int_equal(rd.port, owner->port);
    /* CROSSSLOT: two tags in one command, on the node owning the first. */
    redisContext *own =
        hq_test_cluster_connect(&SIX, hq_test_cluster_node_of_port(&SIX, owner->port));
    char key2[64];
    for (int i = 0;; i++) {
        snprintf(key2, sizeof(key2), "{x%d}", i);
        if (m->owner[hq_key_slot(key2, strlen(key2))] == m->owner[slot] &&
            hq_key_slot(key2, strlen(key2)) != slot)
            break;
    }
    assert_int_equal(error_of(own, &rd, "MSET %s 1 %s 2", key, key2), HQ_REDIRECT_CROSSSLOT);
    /* ASK and TRYAGAIN: the slot set MIGRATING to the other primary. */
    redisReply *id = hq_test_cmd(wrong, "CLUSTER MYID");
    redisReply *r = hq_test_cmd(own, "SET {p3}:present 1");
    freeReplyObject(r);
    r = hq_test_cmd(own, "CLUSTER SETSLOT %u MIGRATING %s", slot, id->str);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    assert_int_equal(error_of(own, &rd, "GET {p3}:absent"), HQ_REDIRECT_ASK);
    assert_int_equal(rd.slot, (int)slot);
    assert_int_equal(rd.port, m->node[other].port);
    assert_int_equal(error_of(own, &rd, "MGET {p3}:present {p3}:absent"), HQ_REDIRECT_TRYAGAIN);
    r = hq_test_cmd(own, "CLUSTER SETSLOT %u STABLE", slot);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    freeReplyObject(id);
    /* READONLY-free replicas answer MOVED to their primary. */
    redisFree(own);
    redisFree(wrong);
    free(m);
    redisFree(c0);
}

/* The harness follows a failover (the later fault tests rely on it), and a
 * map decoded afterwards names the promoted replica. Last in its group: it
 * changes which nodes are primaries. */
static void test_a_killed_primary_is_replaced_and_the_decoded_map_follows(void **state)
{
    (void)state;
    redisContext *c = hq_test_cluster_connect(&SIX, 0);
    struct hq_slot_map *before = decoded_slots(c);
    redisFree(c);
    unsigned slot = hq_key_slot("{p3}", 4);
    int victim = hq_test_cluster_node_of_port(&SIX, before->node[before->owner[slot]].port);
    assert_true(victim >= 0);
    hq_test_redis_stop(&SIX.node[victim], 1);
    /* cluster-node-timeout 2000: the study measured 3.4 s to the first write. */
    assert_true(hq_test_cluster_wait_ok(&SIX, HQ_TEST_CLUSTER_WAIT_MS));
    c = hq_test_cluster_connect(&SIX, victim == 0 ? 1 : 0);
    struct hq_slot_map *after = decoded_slots(c);
    redisFree(c);
    assert_int_equal(after->covered, HQ_SLOTS);
    int promoted = after->node[after->owner[slot]].port;
    assert_int_not_equal(promoted, SIX.node[victim].port);
    assert_int_equal(after->node[after->owner[slot]].replicas, 0); /* its old primary is down */
    /* The slot's whole range moved with it, to the one replica it had. */
    for (int s = 0; s < HQ_SLOTS; s++)
        if (before->owner[s] == before->owner[slot])
            assert_int_equal(after->node[after->owner[s]].port, promoted);
    /* Back, the old primary rejoins as the new primary's replica. */
    hq_test_redis_restart(&SIX.node[victim]);
    assert_true(hq_test_cluster_wait_ok(&SIX, HQ_TEST_CLUSTER_WAIT_MS));
    c = hq_test_cluster_connect(&SIX, victim);
    free(after);
    after = decoded_slots(c);
    redisFree(c);
    assert_int_equal(after->node[after->owner[slot]].port, promoted);
    assert_int_equal(after->node[after->owner[slot]].replicas, 1);
    free(before);
    free(after);
}

static int single_setup(void **state)
{
    (void)state;
    hq_test_cluster_start_single(&SINGLE, NULL);
    return 0;
}

static int single_teardown(void **state)
{
    (void)state;
    hq_test_cluster_destroy(&SINGLE);
    return 0;
}

static int six_setup(void **state)
{
    (void)state;
    hq_test_cluster_start(&SIX, 3, 1, NULL);
    return 0;
}

static int six_teardown(void **state)
{
    (void)state;
    hq_test_cluster_destroy(&SIX);
    return 0;
}

int main(void)
{
    const struct CMUnitTest single[] = {
        cmocka_unit_test(test_key_slot_matches_cluster_keyslot_for_2000_keys),
        cmocka_unit_test(test_one_node_decodes_as_owning_every_slot),
    };
    const struct CMUnitTest six[] = {
        cmocka_unit_test(
            test_every_node_of_three_primaries_decodes_as_cluster_nodes_and_shards_say),
        cmocka_unit_test(test_partition_tags_spread_evenly_over_three_primaries),
        cmocka_unit_test(test_real_redirects_and_cluster_errors_are_classified),
        cmocka_unit_test(test_a_killed_primary_is_replaced_and_the_decoded_map_follows),
    };
    int failed = cmocka_run_group_tests_name("single node", single, single_setup, single_teardown);
    failed += cmocka_run_group_tests_name("three primaries", six, six_setup, six_teardown);
    return failed;
}
