/* Redis Cluster fixtures for tests: cluster-enabled redis-server nodes on
 * 127.0.0.1 (each a struct hq_test_redis from hq_test.h, so it has its own
 * data dir, nodes.conf, log, and dies with the test binary), a single node
 * owning every slot, or primaries with replicas joined by
 * `redis-cli --cluster create`; waiting until every node agrees the cluster is
 * ok (polling CLUSTER INFO / CLUSTER NODES, never sleeping as an assertion);
 * and an independent reading of CLUSTER NODES to check a client's view of the
 * cluster against. Part of the harness library (cluster_env.c).
 *
 * Nodes run with --cluster-node-timeout 2000 (failover in seconds, as the
 * design study measured), --cluster-require-full-coverage no (partitions on
 * healthy shards keep working while one shard is down) and
 * --repl-ping-replica-period 1 (a primary lists a replica in CLUSTER SLOTS
 * only once its replication offset moved, which otherwise takes up to 10 s); extra arguments are
 * appended after these, so a test can override them. A node's restart
 * (hq_test_redis_restart) keeps its port, bus port and nodes.conf, so it
 * rejoins the cluster.
 *
 * Include after <stdarg.h> <stddef.h> <setjmp.h> <cmocka.h> in test files. */
#ifndef HQ_TESTS_HARNESS_CLUSTER_ENV_H
#define HQ_TESTS_HARNESS_CLUSTER_ENV_H

#include <stdint.h>

#include <hiredis/hiredis.h>

#include "tests/harness/hq_test.h"

#define HQ_TEST_CLUSTER_NODES_MAX 12    /* 3 primaries + 3 replicas is the usual; room for 6 + 6 */
#define HQ_TEST_CLUSTER_WAIT_MS   30000 /* create + converge took ~3 s in the study; 10x margin */

struct hq_test_cluster {
    int n;                                                /* nodes started, node[0..n) */
    int primaries;                                        /* primaries asked for */
    int replicas;                                         /* replicas per primary asked for */
    struct hq_test_redis node[HQ_TEST_CLUSTER_NODES_MAX]; /* the servers (ports, dirs, pids) */
    int bus_port[HQ_TEST_CLUSTER_NODES_MAX];              /* each node's cluster bus port */
};

/* Starts one cluster-enabled node (no slots, alone in its cluster) on a free
 * port with a free bus port (--cluster-port: the default port + 10000 can pass
 * 65535 for an ephemeral port). extra: more "--name value" args or NULL. Fails
 * the test on error. */
void hq_test_cluster_node_start(struct hq_test_redis *r, int *bus_port, const char *extra);

/* One node owning slots 0-16383 (CLUSTER ADDSLOTSRANGE), waited until ok. */
void hq_test_cluster_start_single(struct hq_test_cluster *c, const char *extra);

/* primaries * (1 + replicas) nodes (at most HQ_TEST_CLUSTER_NODES_MAX) joined
 * with `redis-cli --cluster create ... --cluster-replicas <replicas>
 * --cluster-yes` (its output in node[0]'s dir, cluster-create.log, printed on
 * failure), then hq_test_cluster_wait_ok. redis-cli splits the slots into equal
 * ranges (0-5460, 5461-10922, 10923-16383 for three primaries). Fails the test
 * on error. */
void hq_test_cluster_start(struct hq_test_cluster *c, int primaries, int replicas,
                           const char *extra);

/* Waits until every running node (pid > 0) says cluster_state:ok with all
 * 16384 slots assigned, knows every running node, sees the same primaries,
 * replicas and slot ranges in CLUSTER NODES as the others (no node in
 * handshake or failed), lists every running replica in CLUSTER SLOTS, and
 * (for a replica) has its replication link up. Returns 1, or 0 after timeout_ms (printing what was
 * still missing). */
int hq_test_cluster_wait_ok(struct hq_test_cluster *c, int timeout_ms);

/* "redis-cluster://127.0.0.1:<port>,..." naming every node started, into
 * out (n bytes; fails the test when it does not fit). */
void hq_test_cluster_url(const struct hq_test_cluster *c, char *out, size_t n);

/* Stops every node and removes their data dirs. */
void hq_test_cluster_destroy(struct hq_test_cluster *c);

/* A blocking connection to node i (fails the test on error). */
redisContext *hq_test_cluster_connect(const struct hq_test_cluster *c, int i);

/* Index of the node listening on port, or -1. */
int hq_test_cluster_node_of_port(const struct hq_test_cluster *c, int port);

/* ---- An independent view of the cluster, from CLUSTER NODES ---------------- */
struct hq_test_cluster_peer {
    char id[41];        /* node id */
    char ip[64];        /* address as CLUSTER NODES prints it ("" when unknown) */
    int port;           /* client port */
    int primary;        /* 1 for "master", 0 for "slave" */
    char master_id[41]; /* a replica's primary; "-" for a primary */
    int failing;        /* flags include fail, fail?, handshake or noaddr */
};

struct hq_test_cluster_view {
    int n;    /* peers, in CLUSTER NODES order */
    int self; /* index of the node asked */
    struct hq_test_cluster_peer
        peer[HQ_TEST_CLUSTER_NODES_MAX]; /* every node the asked one knows */
    int16_t owner[16384];                /* peer index of the primary serving each slot, or -1 */
};

/* Reads CLUSTER NODES through conn into v (a struct of ~40 KiB: not on a
 * small stack). Slots being migrated ("[slot->-id]") are not ownership and are
 * skipped. Returns 0, or -1 when the reply cannot be read (v is then empty). */
int hq_test_cluster_view(redisContext *conn, struct hq_test_cluster_view *v);

#endif
