/* A Sentinel deployment on 127.0.0.1 for tests: a primary, a replica
 * (replicaof) and three `redis-server --sentinel` processes monitoring the
 * primary as master "m" (quorum 2, down-after 1000 ms, failover-timeout
 * 5000 ms), each with its generated config in a private temp dir. Start
 * returns once every sentinel knows the replica and the two other sentinels
 * (polled, never slept on). Include after hq_test.h. */
#ifndef HQ_TESTS_SENTINEL_ENV_H
#define HQ_TESTS_SENTINEL_ENV_H

#include <sys/types.h>

#include "tests/harness/hq_test.h"

#define HQ_TEST_SENTINELS 3

struct hq_test_sentinel {
    pid_t pid;     /* the sentinel process; 0 when stopped */
    int port;      /* 127.0.0.1:port */
    char dir[256]; /* temp dir with sentinel.conf and sentinel.log */
};

struct hq_test_sentinel_env {
    struct hq_test_redis primary;                    /* initial master */
    struct hq_test_redis replica;                    /* replicaof primary */
    struct hq_test_sentinel sent[HQ_TEST_SENTINELS]; /* monitoring "m" */
    char url[512];                                   /* redis-sentinel://...:p1,...:p3/m/0 */
};

/* primary_extra: extra args for the primary ("--min-replicas-to-write 1"),
 * may be NULL. Fails the test when the deployment is not ready in 20 s. */
void hq_test_sentinel_env_start(struct hq_test_sentinel_env *e, const char *primary_extra);
/* SIGCONTs and stops everything, removes the temp dirs. */
void hq_test_sentinel_env_destroy(struct hq_test_sentinel_env *e);

/* Starts one sentinel whose config holds `monitors` (lines, e.g. "sentinel
 * monitor r 127.0.0.1 6380 1\n"). Returns once it answers PING. */
void hq_test_sentinel_start(struct hq_test_sentinel *s, const char *monitors);
void hq_test_sentinel_stop(struct hq_test_sentinel *s);

/* The port SENTINEL get-master-addr-by-name m gives on sentinel s (0 when it
 * gives none). */
int hq_test_sentinel_master_port(const struct hq_test_sentinel *s, const char *name);

/* "master", "slave", ... as ROLE on 127.0.0.1:port says ("" when no answer
 * within 1 s). */
void hq_test_role_of(int port, char *out, size_t n);

#endif
