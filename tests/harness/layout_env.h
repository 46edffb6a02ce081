/* The layout a test environment runs in, chosen by the environment variable
 * HQ_TEST_LAYOUT (tests/CMakeLists.txt registers fault tests a second and third
 * time with it set):
 *   p1 (default, or unset)  one redis-server, untagged keys ("hookq:events"):
 *                           what every test did before layouts existed
 *   p4                      one redis-server with a P = 4 config written by
 *                           hq_layout_create before any worker or endpoint
 *   cluster                 3 primaries + 3 replicas (cluster_env.h), P = 6;
 *                           processes get redis-cluster://<every primary>
 * and the per-partition access every harness read and write goes through:
 * the node of a partition or of the registry, the base of a partition, the
 * partition an event is produced to, sums over partitions, and the check that
 * a tagged run really ran tagged (hq_tl_assert). A struct hq_tl is embedded
 * in struct wenv (worker_env.h) and borrowed by the checker (checker.h); a
 * NULL struct hq_tl * means p1 under the checker's prefix.
 *
 * p1 and p4 use the caller's single context for every partition (one
 * server), so a test that reconnects (rf_reconnect) keeps working; cluster
 * uses an hq_redis_conn on the cluster URL. Part of the harness library
 * (layout_env.c). Include after <stdarg.h> <stddef.h> <setjmp.h> <cmocka.h>. */
#ifndef HQ_TESTS_HARNESS_LAYOUT_ENV_H
#define HQ_TESTS_HARNESS_LAYOUT_ENV_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "common/layout.h"
#include "common/redis_conn.h"
#include "tests/harness/cluster_env.h"
#include "tests/harness/hq_test.h"

#define HQ_TL_P4_PARTS      4
#define HQ_TL_CLUSTER_PRIM  3  /* primaries, each with one replica */
#define HQ_TL_CLUSTER_PARTS 6  /* HQ_LAYOUT_PARTS_PER_PRIMARY x 3, what a cluster gets unasked */
#define HQ_TL_SKIP          77 /* ctest's skip code (SKIP_RETURN_CODE in tests/CMakeLists.txt) */

enum hq_tl_kind { HQ_TL_P1, HQ_TL_P4, HQ_TL_CLUSTER };

struct hq_tl {
    enum hq_tl_kind kind;
    struct hq_layout L;              /* the layout every process and the harness use */
    struct hq_test_cluster *cluster; /* cluster: the nodes (owned) */
    struct hq_redis_conn *conn;      /* cluster: routes the harness's commands (owned) */
    char url[1024];                  /* what `hookq worker --redis-url` gets */
    unsigned rr;                     /* round robin for events without an id */
};

/* HQ_TEST_LAYOUT as a kind; fails the test on an unknown value. */
enum hq_tl_kind hq_tl_kind_env(void);
const char *hq_tl_kind_name(enum hq_tl_kind k);
/* Partitions a kind runs with: 1, HQ_TL_P4_PARTS, HQ_TL_CLUSTER_PARTS. */
unsigned hq_tl_parts_of(enum hq_tl_kind k);

/* p1: the untagged layout (no I/O: nothing changes on the server).
 * p4: writes the P = 4 config through a short-lived hq_redis_conn on url. */
void hq_tl_single(struct hq_tl *t, enum hq_tl_kind k, const char *url);

/* cluster: starts the nodes, connects, writes the P = 6 config. When this
 * build cannot route redis-cluster:// (common/redis_cluster_sync.c's stub),
 * runs `hookq worker` on the URL to show it says so, prints why and exits
 * HQ_TL_SKIP after stopping the nodes (that worker logs to the first node's
 * dir, worker.log, printed with the reason). */
void hq_tl_cluster(struct hq_tl *t);

/* Frees the layout and the connection, stops the cluster. */
void hq_tl_free(struct hq_tl *t);

/* Partitions (1 for NULL), the base of partition i ("<prefix>" for NULL). */
unsigned hq_tl_nparts(const struct hq_tl *t);
const char *hq_tl_base(const struct hq_tl *t, const char *prefix, unsigned i);
const char *hq_tl_reg(const struct hq_tl *t, const char *prefix);

/* The context for partition i's keys / the registry's: c unless cluster. */
redisContext *hq_tl_node(struct hq_tl *t, redisContext *c, unsigned i);
redisContext *hq_tl_reg_node(struct hq_tl *t, redisContext *c);

/* The partition a producer writes an event to (hq_layout_partition_for: the
 * id's when it has one, else the next in round robin). */
unsigned hq_tl_part_for(struct hq_tl *t, const char *id);

/* Sum over partitions of "<cmd> <key>" (an integer reply; missing -> 0), the
 * key built by keyfn from the partition's base (common/keys.h). */
typedef int (*hq_tl_key_fn)(const char *base, char *out, size_t n);
long long hq_tl_sum(struct hq_tl *t, redisContext *c, const char *prefix, const char *cmd,
                    hq_tl_key_fn keyfn);

/* Entries ever added (XINFO STREAM entries-added; 0 when missing) to partition
 * i's stream keyfn names (hq_key_events, hq_key_retries). */
long long hq_tl_entries_added(struct hq_tl *t, redisContext *c, const char *prefix, unsigned i,
                              hq_tl_key_fn keyfn);

/* Pending entries of group `workers`, both lanes, summed over partitions. */
long long hq_tl_pending(struct hq_tl *t, redisContext *c, const char *prefix);

/* Partitions whose events stream or retry lane ever received an entry (XINFO STREAM
 * entries-added > 0: workers delete what they acknowledge, so XLEN says nothing),
 * and into *nodes (may be NULL) the distinct nodes holding those streams (1
 * unless a cluster). */
unsigned hq_tl_parts_used(struct hq_tl *t, redisContext *c, const char *prefix, unsigned *nodes);

/* Nodes a run must have fed: a cluster's primaries, else 1. */
unsigned hq_tl_nodes_want(const struct hq_tl *t);

/* Untagged keys (<prefix>:events, :retry, :retry:data, :dead, :endpoints) that exist. */
int hq_tl_untagged_keys(struct hq_tl *t, redisContext *c, const char *prefix);

/* A tagged run really ran tagged: P as asked, no untagged key exists, more
 * than one partition's stream received entries and (a cluster) streams on
 * every primary did; fails the test otherwise (p1: nothing to check). label
 * names the scenario in the printed line. */
void hq_tl_assert(struct hq_tl *t, redisContext *c, const char *prefix, const char *label);

#endif
