/* The operator commands on a real 3-primary Redis Cluster (no replicas): the
 * layout is created on first use (2 partitions per primary), `hookq stats`
 * reads each partition on the node serving it and names that node, `hookq dlq`
 * lists the partitions' dead letters merged newest first across nodes, pages
 * with --cursor, and replays to the partition's own stream on its node,
 * `hookq event show` finds attempt records on another node, and `hookq
 * migrate` refuses a cluster URL. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/keys.h"
#include "common/layout_store.h"
#include "tests/harness/cluster_env.h"

static struct hq_test_cluster CL;
static char URL[128];
static char OUT[1 << 16], ERR[8192];

static int run(const char *const *args)
{
    const char *a[32];
    int n = 0;
    for (; args[n]; n++)
        a[n] = args[n];
    a[n++] = "--redis-url";
    a[n++] = URL;
    a[n] = NULL;
    OUT[0] = ERR[0] = '\0';
    return hq_test_cli(a, NULL, NULL, OUT, sizeof(OUT), ERR, sizeof(ERR));
}

static redisReply *pcmd(struct hq_redis_conn *c, unsigned slot, const char *const *argv, int argc)
{
    struct hq_err e = {0};
    redisReply *r = hq_redis_conn_cmd(c, slot, &e, argc, (const char **)argv, NULL);
    if (!r)
        fail_msg("%s", e.msg);
    return r;
}

static void test_stats_dlq_and_event_show_on_a_cluster(void **state)
{
    (void)state;
    /* stats creates the layout: 6 partitions over 3 primaries. */
    const char *st[] = {"stats", "--json", NULL};
    assert_int_equal(run(st), 0);
    struct hq_err e = {0};
    struct hq_redis_conn *c = hq_redis_conn_open(URL, 2000, &e);
    assert_non_null(c);
    struct hq_layout L = {0};
    assert_int_equal(hq_layout_load(c, "hookq", &L, &e), 0);
    assert_int_equal(L.nparts, 6);
    assert_int_equal(L.tagged, 1);
    /* Each partition's line names the node serving its slot: 3 distinct nodes. */
    char nodes[6][64];
    int distinct = 0;
    for (unsigned p = 0; p < 6; p++) {
        hq_redis_conn_node_name(c, L.part[p].slot, nodes[p], sizeof(nodes[p]));
        char want[600];
        snprintf(want, sizeof(want), "{\"partition\":%u,\"tag\":\"%s\",\"node\":\"%s\"", p,
                 L.part[p].tag, nodes[p]);
        if (!strstr(OUT, want))
            fail_msg("want %s in %s", want, OUT);
        int seen = 0;
        for (unsigned q = 0; q < p; q++)
            seen |= strcmp(nodes[q], nodes[p]) == 0;
        distinct += !seen;
    }
    assert_int_equal(distinct, 3);

    /* Three dead letters per partition, written on its node; the ids
     * interleave across partitions. */
    char want[18][48];
    int nw = 0;
    for (int k = 2; k >= 0; k--)
        for (unsigned p = 0; p < 6; p++)
            snprintf(want[nw++], sizeof(want[0]), "p%u/%lld-0", p,
                     1700000000000LL + k * 100 + (5 - p));
    for (unsigned p = 0; p < 6; p++) {
        char key[HQ_KEY_MAX], id[32], ev[32];
        hq_key_dead(L.part[p].base, key, sizeof(key));
        for (int k = 0; k < 3; k++) {
            snprintf(id, sizeof(id), "%lld-0", 1700000000000LL + k * 100 + (5 - p));
            snprintf(ev, sizeof(ev), "ev_%u_%d", p, k);
            const char *av[] = {"XADD", key,           id,     "event_id", ev,          "type",
                                "t.x",  "endpoint_id", "ep_1", "reason",   "exhausted", "payload",
                                "{}"};
            freeReplyObject(pcmd(c, L.part[p].slot, av, 13));
        }
    }
    /* Sorted newest first: k descending, then ms descending = p ascending. */
    char got[18][48], cursor[4096] = "";
    int n = 0;
    for (int pages = 0; pages < 10; pages++) {
        const char *a[] = {"dlq",  "list", "--limit", "4", cursor[0] ? "--cursor" : NULL,
                           cursor, NULL};
        assert_int_equal(run(a), 0);
        for (const char *line = strchr(OUT, '\n'); line && line[1] && n < 18;
             line = strchr(line + 1, '\n'))
            sscanf(line + 1, "%47s", got[n++]);
        const char *more = strstr(ERR, "more: --cursor ");
        if (!more)
            break;
        assert_int_equal(sscanf(more + 15, "%4095s", cursor), 1);
    }
    assert_int_equal(n, 18);
    for (int i = 0; i < 18; i++)
        if (strcmp(got[i], want[i]) != 0)
            fail_msg("entry %d: %s, want %s", i, got[i], want[i]);

    /* Replay one of partition 4's: back on partition 4's stream, its node. */
    char id4[48];
    snprintf(id4, sizeof(id4), "p4/%lld-0", 1700000000000LL + 100 + 1);
    const char *rp[] = {"dlq", "replay", id4, NULL};
    assert_int_equal(run(rp), 0);
    assert_string_equal(OUT, "replayed 1\n");
    char key[HQ_KEY_MAX];
    hq_key_events(L.part[4].base, key, sizeof(key));
    const char *xl[] = {"XLEN", key};
    redisReply *r = pcmd(c, L.part[4].slot, xl, 2);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_int_equal(run(st), 0);
    assert_non_null(strstr(OUT, "\"dead_letters\":17,"));

    /* An attempt bucket on partition 5's node (its key is not in the reading
     * script's KEYS: the partition's tag keeps it on that node). */
    hq_key_attempt_index(L.part[5].base, key, sizeof(key));
    const char *zadd[] = {"ZADD", key, "1000", "1000"};
    freeReplyObject(pcmd(c, L.part[5].slot, zadd, 4));
    hq_key_attempt_bucket(L.part[5].base, "1000", key, sizeof(key));
    const char *hset[] = {"HSET", key, "evt_p5_1-0",
                          "{\"endpoint_id\":\"ep_c\",\"attempt\":1,\"at_ms\":1,\"status\":200,"
                          "\"outcome\":\"delivered\"}"};
    freeReplyObject(pcmd(c, L.part[5].slot, hset, 4));
    const char *es[] = {"event", "show", "evt_p5_1-0", NULL};
    assert_int_equal(run(es), 0);
    assert_non_null(strstr(OUT, "endpoint ep_c"));

    const char *mg[] = {"migrate", "--partitions", "4", NULL};
    assert_int_equal(run(mg), 1);
    assert_non_null(strstr(ERR, "redis-cli --cluster import"));
    hq_layout_free(&L);
    hq_redis_conn_free(c);
}

static int setup(void **state)
{
    (void)state;
    hq_test_cluster_start(&CL, 3, 0, NULL);
    snprintf(URL, sizeof(URL), "redis-cluster://127.0.0.1:%d", CL.node[0].port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hq_test_cluster_destroy(&CL);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_dlq_and_event_show_on_a_cluster),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
