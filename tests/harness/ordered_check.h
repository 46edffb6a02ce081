/* Ordered endpoints' test runs and their order checker (docs/ordering.md),
 * for tests/integration/test_ordered.c and the _slow fault scenario. A run
 * produces per_key events for each of nkeys keys (0: no key, one line),
 * interleaved, with ids "o-<key>-<seq>" and key "k<key>", to one ordered
 * endpoint at <receiver><path>; check_order walks the receiver's requests for
 * that path in arrival order. Part of the harness library (ordered_check.c). */
#ifndef HQ_TESTS_HARNESS_ORDERED_CHECK_H
#define HQ_TESTS_HARNESS_ORDERED_CHECK_H

#include "tests/harness/fault_env.h"

struct ordered_run {
    struct rf *r;
    struct hq_test_receiver *rcv; /* NULL: r->w.rcv */
    const char *path;
    int nkeys;   /* 0: events without a key */
    int per_key; /* events per key */
    int skip;    /* set by ordered_endpoint: a failed head is dead at once */
    int produced;
};

struct ordered_report {
    long delivered; /* first 2xx of each event */
    long failed;    /* non-2xx answers of the head in turn */
    long repeats;   /* requests for an event already delivered (duplicates) */
    long early;     /* requests for an event before its predecessor ended: order broken */
    long lost;      /* events never delivered (nor, with skip, failed once) */
};

/* Creates the run's ordered endpoint (mode HQ_ORDERED_BLOCK or _SKIP; backoff
 * 50-200 ms, 50 attempts) in r->eps (freed by rf_stop). */
void ordered_endpoint(struct ordered_run *o, int mode);
/* XADDs the run's events (pipelined), or the first / second half of them. */
void ordered_produce(struct ordered_run *o);
void ordered_produce_part(struct ordered_run *o, int from_seq, int to_seq);
void check_order(struct ordered_run *o, struct ordered_report *rep);
/* Awaits lost == 0 (fails naming the report after ms). */
void ordered_wait_delivered(struct ordered_run *o, int ms);
/* Awaits n dead letters. */
void ordered_wait_dead(struct ordered_run *o, long n, int ms);
long ordered_dead(struct ordered_run *o);
long ordered_dead_reason(struct ordered_run *o, const char *reason);
/* nworkers workers and a scheduler; half the events; once a quarter are
 * delivered the other half, at once a kill -9 of a worker and a restart of
 * the scheduler, and a replacement worker; awaits every event delivered. */
void ordered_kill9_run(struct ordered_run *o, int nworkers, int ms);

#endif
