/* The fault suite's one fixture (struct rf): a private redis-server, loopback
 * receivers, endpoints registered with the checker, `hookq worker` and `hookq
 * scheduler` processes (killed at teardown when a failed test left them
 * running), a producer that tolerates a Redis that is down or refusing writes
 * (only acknowledged XADDs become expected pairs), the settle-collect-assert
 * step every scenario ends with, and process probes (CPU time, RSS) to show
 * that nothing spins while Redis is away. Part of the harness library
 * (fault_env.c). */
#ifndef HQ_TESTS_HARNESS_FAULT_ENV_H
#define HQ_TESTS_HARNESS_FAULT_ENV_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/harness/checker.h"
#include "tests/harness/worker_env.h"

#define RF_EPS_MAX    8
#define RF_EVENTS_MAX 200000 /* acknowledgement times kept per produced event */

struct rf {
    struct wenv w;                /* redis, receiver (w.rcv), test connection, worker log */
    struct hq_test_receiver rcv2; /* a second receiver (own flaky_pct), started on demand */
    int rcv2_started;
    struct hq_ck ck; /* the checker */
    struct hq_endpoint eps[RF_EPS_MAX];
    int neps;
    char slog[320];  /* scheduler log */
    int64_t *ack_ms; /* [evck number] = unix ms the XADD was acknowledged */
    long nack;
};

/* The fault suite's fixture: wenv_start (the layout HQ_TEST_LAYOUT names, see
 * layout_env.h; redis_extra: see hq_test_redis_start), the checker (prefix
 * "hookq", producing and reading through that layout) and the acknowledgement
 * times. */
void rf_start(struct rf *r, const char *redis_extra);

/* Kills what a failed test left running, keeps the logs when HQ_FAULTS_KEEP_LOGS
 * names a directory, frees the checker and endpoints, stops everything. */
void rf_stop(struct rf *r);

/* rf_start(r, NULL) and rf_stop(r) as cmocka fixtures, with the struct rf as the
 * test's initial state: list the tests as RF_TEST(test_name, &R). */
int rf_setup(void **state);
int rf_teardown(void **state);
#define RF_TEST(f, r) cmocka_unit_test_prestate_setup_teardown(f, rf_setup, rf_teardown, r)

/* Starts the second receiver, failing flaky_pct % of its requests with 500. */
void rf_start_rcv2(struct rf *r, int flaky_pct);

void rf_free_endpoints(struct rf *r);

/* Creates an endpoint at <receiver url><path> for the event types in filters
 * (comma-separated; NULL: all) and registers it with the checker; returns its
 * checker index. max_attempts 0: the default. */
int rf_endpoint_filtered(struct rf *r, struct hq_test_receiver *rcv, const char *path,
                         const char *filters, int max_attempts);

/* The same for every event type. */
int rf_endpoint_on(struct rf *r, struct hq_test_receiver *rcv, const char *path, int max_attempts);

int rf_endpoint(struct rf *r, const char *path);

/* (Re)connects the test's own connection, waiting for Redis to answer. */
void rf_reconnect(struct rf *r);

/* XADDs one event fanned out to every registered endpoint, to the partition of
 * its id ("evck_<n>") on that partition's node. Returns 0 when Redis
 * acknowledged it (the pairs are then expected), -1 on an error reply or a lost
 * connection (nothing is expected; the caller reconnects when it needs to). */
int rf_produce(struct rf *r, const char *type, const char *payload);

/* Sleeps ms: pacing traffic or holding a fault for its stated duration, never an assertion. */
void rf_pause_ms(int ms);

/* Starts a worker with its consumer name and extra args; the log is shared (O_APPEND). */
pid_t rf_worker(struct rf *r, const char *consumer, const char *const *extra);

pid_t rf_scheduler(struct rf *r);

/* Lines of a log file containing needle (and level, when not NULL). */
int rf_log_count(const char *path, const char *level, const char *needle);

void rf_dump(const char *path, const char *tag);

void rf_dump_logs(struct rf *r);

/* Awaits hq_ck_wait_settled (on timeout prints the logs and fails naming label),
 * then collects with every signature verified into rep, prints it and fails on a
 * broken invariant (hq_ck_assert). */
void rf_settle_and_check(struct rf *r, int timeout_ms, const char *label, struct hq_ck_report *rep);

/* CPU time (user + system) a process used so far, in ms; -1 if it is gone. */
long rf_cpu_ms(pid_t pid);

/* Receiver in-flight count plus entries held (pending) by the workers group, times the
 * fan-out: every delivery started or finished-but-unrecorded at this moment. */
long long rf_in_flight(struct rf *r);

/* Quiet: nothing pending, nothing left in the streams, no retry backlog (every partition). Unlike
 * hq_ck_wait_settled this does not require nothing lost, so a scenario that may
 * lose acknowledged writes (appendfsync everysec) can settle and count them. */
int rf_quiet(void *arg);

/* Predicate: at least want requests are being answered by rcv right now. */
struct rf_flight_arg {
    struct hq_test_receiver *rcv;
    int want;
};
int rf_in_flight_at_least(void *arg);

/* How many attempt records event evck_<n> has (hq_attempts_read, in its partition). */
long long rf_attempt_records(struct rf *r, long n);

/* Acknowledgement time of the event of a checker pair key ("evck_<n>\x1f<ep>"); -1 if none. */
int64_t rf_pair_ack_ms(const struct rf *r, const char *pair_key);

#endif
