/* Test harness: real parts only. A private redis-server per test binary on a
 * free loopback port, HTTP receivers on 127.0.0.1 (libmicrohttpd, own thread)
 * that record every request, a runner for the hookq CLI, and waiting on
 * conditions instead of sleeping.
 *
 * Every process the harness starts dies with the test binary (SIGKILL via
 * PR_SET_PDEATHSIG, set race-free in the child), also when the test crashes
 * or aborts. PR_SET_PDEATHSIG follows the forking *thread*: call the starting
 * functions (hq_test_redis_start/restart, hq_test_cli, hq_test_spawn) from the
 * test's own thread, not from a thread that exits before the process is done
 * with the child. redis-server's stdout/stderr go to <dir>/redis.stdio (its
 * log to <dir>/redis.log); both are printed when it fails to start.
 *
 * Include after <stdarg.h> <stddef.h> <setjmp.h> <cmocka.h> in test files. */
#ifndef HQ_TESTS_HARNESS_H
#define HQ_TESTS_HARNESS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>
#include <hiredis/hiredis.h>

/* ---- redis-server --------------------------------------------------------------- */
struct hq_test_redis {
    pid_t pid;       /* the server process; 0 when stopped */
    int port;        /* 127.0.0.1:port */
    char dir[256];   /* private data directory (mkdtemp), removed on stop */
    char url[300];   /* "redis://127.0.0.1:<port>/0" */
    char extra[512]; /* extra config args kept for restarts ("--appendonly yes") */
};

/* Starts redis-server on a free port with --save "" --appendonly no (unless
 * extra overrides, space-separated "--name value" pairs; may be NULL) and waits
 * until it answers PING. Fails the test on error. */
void hq_test_redis_start(struct hq_test_redis *r, const char *extra);
/* SIGTERM (or SIGKILL when hard) and reap; the data dir is kept for restarts. */
void hq_test_redis_stop(struct hq_test_redis *r, int hard);
/* Starts again on the same port with the same dir and args. */
void hq_test_redis_restart(struct hq_test_redis *r);
/* Stops and removes the data dir. */
void hq_test_redis_destroy(struct hq_test_redis *r);
/* A blocking connection to it (fails the test on error). */
redisContext *hq_test_redis_connect(const struct hq_test_redis *r);
/* Creates endpoint "ep <i>" (https://example.com/h, enabled) through the real
 * registry (hq_endpoint_create), asserting success; copies its id into id
 * (n >= HQ_ENDPOINT_ID_MAX + 1). For tests that need many endpoints. */
void hq_test_endpoint_numbered(redisContext *c, const char *prefix, int i, char *id, size_t n);
/* Runs a command and returns the reply; fails the test on NULL. */
redisReply *hq_test_cmd(redisContext *c, const char *fmt, ...);
/* Runs a command expecting an integer reply and returns it. */
long long hq_test_cmd_int(redisContext *c, const char *fmt, ...);

/* ---- HTTP receiver ----------------------------------------------------------------- */
/* Behaviour is chosen by the request path (so one receiver serves many endpoints):
 *   /s/<code>[/...]         answer <code> (e.g. /s/500, /s/302 with Location: /)
 *   /delay/<ms>[/...]       wait <ms>, then answer default_status
 *   /hang[/...]             never answer (until the receiver stops)
 *   /gate[/...]             wait while `gate_closed` is set, then answer default_status
 *   /big/<bytes>[/...]      answer 200 with a body of <bytes> bytes
 *   /retry-after/<v>[/...]  answer 429 with "Retry-After: <v>"
 *   /redirect[/...]         answer 302 with Location: /s/204
 *   anything else           answer default_status (204) with an empty body
 * and `flaky_pct` (0-100) fails that share of requests with 500 before the rule. */
struct hq_test_request {
    char method[16];
    char path[256];
    char *headers; /* "name: value\n" lines, lower-case names; owned */
    char *body;    /* owned, NUL-terminated */
    size_t body_len;
    int status;    /* what the receiver answered (0 = hung) */
    int64_t at_ms; /* unix ms when it arrived */
    int64_t at_us; /* the same in microseconds (latency measurements) */
};

struct hq_test_receiver {
    void *mhd;          /* struct MHD_Daemon * */
    int port;           /* bound loopback port */
    char url[64];       /* "http://127.0.0.1:<port>" */
    int default_status; /* 204 unless changed before requests arrive */
    int flaky_pct;      /* share of requests failed with 500 */
    pthread_mutex_t mu; /* guards the fields below */
    int gate_closed;    /* /gate requests wait while set (hq_test_receiver_gate) */
    struct hq_test_request *reqs;
    size_t nreqs, capreqs;
    int in_flight;     /* requests being answered now */
    int max_in_flight; /* the most requests answered at once so far */
    int stopping;      /* set by stop: hanging handlers return */
};

void hq_test_receiver_start(struct hq_test_receiver *rc);
void hq_test_receiver_stop(struct hq_test_receiver *rc);
/* Closes (1) or opens (0) the gate that /gate requests wait at: a test holds
 * a worker's deliveries in flight for as long as it needs, whatever the speed
 * of the machine, then lets them through. */
void hq_test_receiver_gate(struct hq_test_receiver *rc, int closed);
/* Number of recorded requests (thread-safe). */
size_t hq_test_receiver_count(struct hq_test_receiver *rc);
/* Number of recorded requests whose path starts with prefix. */
size_t hq_test_receiver_count_path(struct hq_test_receiver *rc, const char *prefix);
/* Copies request i's header value (name lower-case) into out; 0 if found. */
int hq_test_request_header(const struct hq_test_request *q, const char *name, char *out, size_t n);

/* ---- waiting ---------------------------------------------------------------------------- */
typedef int (*hq_test_pred)(void *arg);
/* Polls pred every 2 ms until it returns non-zero (returns 1) or timeout_ms passes (0). */
int hq_test_wait(hq_test_pred pred, void *arg, int timeout_ms);
/* Runs loop (UV_RUN_ONCE with a 5 ms wake-up timer) until pred or timeout. */
int hq_test_run_until(uv_loop_t *loop, hq_test_pred pred, void *arg, int timeout_ms);
int64_t hq_test_now_ms(void);
int64_t hq_test_now_us(void); /* unix time in microseconds */

/* ---- processes ----------------------------------------------------------------------------- */
struct hq_test_proc {
    pid_t pid;
    int out_fd, err_fd; /* pipes to read stdout/stderr (or -1) */
};
/* Runs the hookq binary with args (NULL-terminated, without "hookq"), stdin
 * from in (may be NULL), waits, captures stdout/stderr (each bounded to n-1 bytes,
 * NUL-terminated) and returns the exit status (128+sig when killed). env: extra
 * "NAME=value" strings (NULL-terminated, may be NULL). */
int hq_test_cli(const char *const *args, const char *const *env, const char *in, char *out,
                size_t out_n, char *err, size_t err_n);
/* Starts the hookq binary in the background with stderr to log_path (may be NULL;
 * stdin and stdout are /dev/null). It is SIGKILLed if the test binary dies. */
pid_t hq_test_spawn(const char *const *args, const char *const *env, const char *log_path);
/* Sends sig and waits up to timeout_ms; returns the exit status, 128+sig when killed, -1 on
 * timeout. */
int hq_test_kill_wait(pid_t pid, int sig, int timeout_ms);
/* A free TCP port on 127.0.0.1, outside the ephemeral range and reserved
 * for this process until it exits (no parallel test gets it). */
int hq_test_free_port(void);

/* ---- log files ---------------------------------------------------------------------------- */
/* Lines of the file at path containing needle (and level, when not NULL); 0
 * when the file does not exist. */
int hq_test_log_count(const char *path, const char *level, const char *needle);
/* Prints the file at path to stderr, each line prefixed "  <tag>| " (a failing
 * test's context); nothing when it does not exist. */
void hq_test_log_print(const char *path, const char *tag);

/* ---- /proc probes ------------------------------------------------------------------------ */
/* Reads /proc/<pid>/stat into buf (n bytes, NUL-terminated); 0, or -1 when there
 * is no such process. */
int hq_test_proc_stat(pid_t pid, char *buf, size_t n);
/* VmRSS of a process in KiB; -1 when there is no such process (or no RSS: a zombie). */
long hq_test_proc_rss_kb(pid_t pid);
/* Open file descriptors of a process; -1 when there is no such process. */
int hq_test_proc_fds(pid_t pid);

/* ---- fixtures shared by CLI tests ------------------------------------------------------ */
/* The usual group fixture of a test that drives the hookq CLI against its own
 * Redis: starts r (no extra args), connects *c to it and writes
 * "HOOKQ_REDIS_URL=<url>" into url_env (n bytes) for hq_test_cli's env. Fails
 * the test on error. */
void hq_test_redis_open(struct hq_test_redis *r, redisContext **c, char *url_env, size_t n);
/* Frees *c (leaving it NULL) and destroys r. */
void hq_test_redis_close(struct hq_test_redis *r, redisContext **c);
/* FLUSHALL: every test starts from an empty server. */
void hq_test_flushall(redisContext *c);

/* The same as cmocka fixtures, for a test file with one Redis for all its
 * tests. main() first names the file's own variables, then runs the group:
 *   hq_test_redis_group(&R, &C, ENV_URL, sizeof(ENV_URL));
 *   return cmocka_run_group_tests(tests, hq_test_group_setup, hq_test_group_teardown);
 * c and url_env may be NULL (the server only: start and destroy). The per-test
 * setup hq_test_group_flush empties the server (FLUSHALL through *c). */
void hq_test_redis_group(struct hq_test_redis *r, redisContext **c, char *url_env, size_t n);
int hq_test_group_setup(void **state);
int hq_test_group_teardown(void **state);
int hq_test_group_flush(void **state);

#endif
