/* Shared set-up for the worker's integration tests: a private redis-server,
 * a loopback receiver, endpoints created through the registry API, and
 * `hookq worker` processes started from the built binary. Part of the harness
 * library (worker_env.c). */
#ifndef HQ_TESTS_HARNESS_WORKER_ENV_H
#define HQ_TESTS_HARNESS_WORKER_ENV_H

#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/attempts.h"
#include "common/buf.h"
#include "common/endpoint.h"
#include "common/event.h"
#include "common/keys.h"
#include "common/redis_sync.h"
#include "common/sign.h"
#include "tests/harness/hq_test.h"
#include "tests/harness/layout_env.h"

#define WENV_PROCS_MAX 256 /* processes one test starts (the soak restarts ~60) */

struct wenv {
    struct hq_test_redis redis; /* the server (p1, p4); unused (pid 0) in a cluster */
    struct hq_test_receiver rcv;
    redisContext *c;
    char log[320];               /* worker stderr, kept for a failing test's output */
    pid_t procs[WENV_PROCS_MAX]; /* every process started through wenv, for wenv_stop */
    int nprocs;
    const char *registry; /* base of the registry's keys for wenv_endpoint (NULL: the layout's) */
    struct hq_tl tl;      /* the layout (HQ_TEST_LAYOUT): URL, partitions, their nodes */
    char dir[256];        /* where logs go: the server's data dir (a cluster's first node's) */
};

/* Starts the layout HQ_TEST_LAYOUT names (layout_env.h; p1 when unset):
 * redis-server (redis_extra: see hq_test_redis_start) or a cluster (redis_extra
 * must be NULL there), the P = 4 or 6 config when tagged, the receiver and the
 * test's own connection (a cluster: to its first node; reach partitions with
 * wenv_node). A cluster this build cannot route makes the test binary exit 77
 * (skipped). */
void wenv_start(struct wenv *w, const char *redis_extra);

/* Kills the processes a failed test left running (wenv_kill_leftovers), then
 * stops the receiver and redis-server. */
void wenv_stop(struct wenv *w);

/* The test's fixture, one fresh environment per test: the struct wenv is the
 * test's initial state, so a test file keeps one `static struct wenv W` and
 * lists its tests as WENV_TEST(test_name, &W). */
int wenv_setup(void **state);
int wenv_teardown(void **state);
#define WENV_TEST(f, w) cmocka_unit_test_prestate_setup_teardown(f, wenv_setup, wenv_teardown, w)

/* Records pid (asserted > 0) for wenv_stop; returns it. */
pid_t wenv_track(struct wenv *w, pid_t pid);

/* Kills (SIGKILL) and reaps the recorded processes still running. Only
 * unreaped children are touched (waitpid says so), so a pid the test already
 * reaped, which the system may have reused, is never signalled. */
void wenv_kill_leftovers(struct wenv *w);

/* Teardown of a test that keeps at most one worker pid: kills the worker a failed
 * assertion left running, then stops the environment. */
void wenv_stop_with_worker(struct wenv *w, pid_t *worker);

/* Prints the worker log (for a failing assertion's context). */
void wenv_dump_log(struct wenv *w);

/* Waits for pred; on timeout prints the worker log and fails naming 'what'. */
void wenv_wait(struct wenv *w, hq_test_pred pred, void *arg, int ms, const char *what);

/* 1 when the worker log has a line containing needle. */
int wenv_log_has(struct wenv *w, const char *needle);

/* Creates an endpoint at url (filters: comma-separated, NULL = all), returns
 * its id in id_out and keys in e_out (caller frees with hq_endpoint_free). */
void wenv_endpoint(struct wenv *w, const char *url, const char *filters, const char *header,
                   int max_attempts, struct hq_endpoint *e_out);

/* wenv_endpoint in two steps, for a test that sets more fields in between
 * (tenant, retry policy): fill e_out (no I/O), then create it. */
void wenv_endpoint_fill(const char *url, const char *filters, const char *header, int max_attempts,
                        struct hq_endpoint *e_out);
void wenv_endpoint_create(struct wenv *w, struct hq_endpoint *e);

/* wenv_endpoint at <w->rcv.url><path>, without a custom header. */
void wenv_endpoint_at(struct wenv *w, const char *path, const char *filters, int max_attempts,
                      struct hq_endpoint *e_out);

/* XADDs a plain-field event to the partition of its id (round robin without
 * one); returns the entry id in id_out (may be NULL). */
void wenv_produce(struct wenv *w, const char *type, const char *payload, const char *id,
                  const char *endpoint, char *id_out, size_t n);

/* The URL processes get: the server's (w->redis.url, also after a test
 * replaced the server) or the cluster's redis-cluster://<every node>. */
const char *wenv_url(const struct wenv *w);

/* The context for partition part's keys / the registry's (w->c unless a cluster). */
redisContext *wenv_node(struct wenv *w, unsigned part);
redisContext *wenv_reg_node(struct wenv *w);

/* The attempt records (hq_attempts_read: JSON strings, oldest first) of an
 * event produced with this id (wenv_produce: in the partition of the id).
 * Fails the test on a Redis error; the caller frees the reply. */
redisReply *wenv_attempts(struct wenv *w, const char *event_id);

/* "<cmd> <key>" summed over partitions, the key from keyfn (common/keys.h) and
 * the partition's base: wenv_sum(w, "ZCARD", hq_key_retry). */
long long wenv_sum(struct wenv *w, const char *cmd, hq_tl_key_fn keyfn);

/* Fails unless the run really used its tagged layout (hq_tl_assert); p1: nothing. */
void wenv_assert_layout(struct wenv *w, const char *label);

/* Starts `hookq worker --redis-url <the layout's URL>` with extra args
 * (NULL-terminated list) and env (NULL: HOOKQ_ALLOW_PRIVATE=1), logging to
 * w->log; recorded for wenv_stop. */
pid_t wenv_worker(struct wenv *w, const char *const *extra, const char *const *env);

/* Runs `hookq <a0> <args...> --redis-url <url>` (NULL-terminated, up to 36
 * args) with HOOKQ_ALLOW_PRIVATE=1; stdout in out, stderr in err (each
 * bounded and NUL-terminated). Returns the exit status. */
int wenv_cli(struct wenv *w, char *out, size_t out_n, char *err, size_t err_n, const char *a0, ...);

/* Starts `hookq scheduler --redis-url <url>` with extra args (NULL-terminated),
 * logging to w->log; recorded for wenv_stop. */
pid_t wenv_scheduler(struct wenv *w, const char *const *extra);

struct count_arg {
    struct hq_test_receiver *rcv;
    const char *prefix;
    size_t want;
};

int received_at_least(void *arg);

/* Returns once the wall clock (hq_now_ms) has passed the millisecond it read on
 * entry: a time a worker stamps after this (an attempt's at_ms) is strictly
 * later than one stamped before. */
void wenv_next_ms(struct wenv *w);

struct redis_arg {
    struct wenv *w;
    const char *cmd; /* integer-returning command */
    long long want;
};

int redis_int_is(void *arg);

int redis_int_at_least(void *arg);

/* Pending entries of the workers group, every partition (0 when no group exists yet). */
long long wenv_pending(struct wenv *w);

/* Asserts q carries a valid Standard Webhooks signature by k; its webhook-id
 * into id_out[n] when id_out is not NULL. */
void wenv_assert_signed(const struct hq_test_request *q, const struct hq_sign_key *k, char *id_out,
                        size_t n);

/* Dead letters of endpoint_id with reason, over every partition's dead stream. */
long wenv_dead_count(struct wenv *w, const char *endpoint_id, const char *reason);

int nothing_pending_and_stream_empty(void *arg);

/* Reads field f of the first entry of a stream into out ("" if absent). */
int stream_field(struct wenv *w, const char *key, int index, const char *f, char *out, size_t n);

/* Fails unless field f of entry index of stream key is want ("" when absent). */
void stream_field_is(struct wenv *w, const char *key, int index, const char *f, const char *want);

/* ---- the worker's HTTP side (/healthz, /metrics) ---- */

/* GETs url (loopback only) into body; the HTTP status, 0 when no answer. */
long wenv_http_get(const char *url, struct hq_buf *body);

/* Serves m (worker/metrics.h) on a free loopback port, reads /metrics into
 * body (caller frees; fails the test on anything but 200) and stops. */
struct hq_metrics;
void wenv_metrics_text(struct hq_metrics *m, struct hq_buf *body);

struct wenv_healthz_arg {
    const char *url;
};

/* Predicate: /healthz answers 200 (the worker's Redis connections are ready). */
int wenv_healthz_ok(void *arg);

#endif
