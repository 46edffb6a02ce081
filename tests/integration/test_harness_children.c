/* The harness's own guarantee: every process it starts (redis-server, hookq)
 * dies with the test binary, however the test binary ends. Without it a test
 * that crashes or aborts leaves redis-server and workers holding ctest's
 * output pipe, and ctest hangs until its timeout.
 *
 * Each test runs a stand-in for a test binary: this same executable re-run
 * with "--child" (so a failed harness assertion in it exits it instead of
 * jumping back into a copy of the cmocka runner). The stand-in starts a
 * redis-server and a `hookq worker` through the harness, passes their pids
 * back through a pipe, and then ends without any cleanup: _exit, abort, or
 * SIGKILL from the test. The test then waits, bounded, until both
 * grandchildren are gone. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tests/harness/hq_test.h"

/* What the stand-in sends back once its processes are up. */
struct started {
    pid_t redis;   /* the harness's redis-server */
    pid_t worker;  /* the harness's `hookq worker` */
    char dir[256]; /* redis data dir, removed by the test afterwards */
};

/* This executable's path, read in main: exec'ing "/proc/self/exe" from under
 * valgrind would start valgrind, whereas its readlink names the client. */
static char self_exe[4096];

/* ---- The stand-in test binary -------------------------------------------------------- */

/* Runs in the re-executed child: start the processes, report them, wait for
 * the go byte, then end as 'mode' says. Never returns normally. */
static int child_main(const char *mode, int pids_fd, int go_fd)
{
    /* The grandchildren must not inherit the pipes: the test would not see
     * EOF on them, and it is the grandchildren's fate that is under test. */
    fcntl(pids_fd, F_SETFD, FD_CLOEXEC);
    fcntl(go_fd, F_SETFD, FD_CLOEXEC);

    struct hq_test_redis r;
    hq_test_redis_start(&r, NULL);
    char log[sizeof(r.dir) + 32];
    snprintf(log, sizeof(log), "%s/worker.log", r.dir);
    const char *args[] = {"worker", "--redis-url", r.url, NULL};
    pid_t worker = hq_test_spawn(args, NULL, log);

    struct started s = {.redis = r.pid, .worker = worker};
    snprintf(s.dir, sizeof(s.dir), "%s", r.dir);
    if (write(pids_fd, &s, sizeof(s)) != (ssize_t)sizeof(s))
        _exit(120);

    char go;
    while (read(go_fd, &go, 1) < 0 && errno == EINTR) {
    }
    if (strcmp(mode, "abort") == 0) {
        struct rlimit none = {0, 0};
        setrlimit(RLIMIT_CORE, &none); /* no core file from the abort */
        abort();
    }
    _exit(3); /* "exit", and "kill" should its SIGKILL somehow not come */
}

/* ---- /proc ------------------------------------------------------------------------------- */

struct proc_stat {
    char comm[64];              /* executable name, without the parentheses */
    char state;                 /* R, S, D, Z, X, ... */
    pid_t ppid;                 /* parent pid */
    unsigned long long started; /* start time in clock ticks since boot: tells pid reuse */
};

/* Reads /proc/<pid>/stat; 0 on success, -1 when there is no such process. */
static int read_stat(pid_t pid, struct proc_stat *st)
{
    char buf[1024];
    if (hq_test_proc_stat(pid, buf, sizeof(buf)) != 0)
        return -1;
    /* comm may hold spaces and parentheses: it ends at the last ')'. */
    char *open = strchr(buf, '('), *close = strrchr(buf, ')');
    if (!open || !close || close < open)
        return -1;
    snprintf(st->comm, sizeof(st->comm), "%.*s", (int)(close - open - 1), open + 1);
    /* After ") ": state(3) ppid(4) ... starttime is field 22. */
    char *p = close + 2;
    st->state = *p;
    int field = 3;
    st->ppid = 0;
    st->started = 0;
    for (char *save = NULL, *tok = strtok_r(p, " ", &save); tok;
         tok = strtok_r(NULL, " ", &save), field++) {
        if (field == 4)
            st->ppid = (pid_t)atoi(tok);
        if (field == 22) {
            st->started = strtoull(tok, NULL, 10);
            break;
        }
    }
    return 0;
}

struct watched {
    pid_t pid;
    unsigned long long started; /* as first seen alive */
};

/* Gone: no such process, a zombie nobody reaped yet (its reaper is now init
 * or a subreaper, not us), or the pid already reused by a newer process. */
static int is_gone(const struct watched *w)
{
    if (kill(w->pid, 0) == -1 && errno == ESRCH)
        return 1;
    struct proc_stat st;
    if (read_stat(w->pid, &st) != 0)
        return 1;
    return st.state == 'Z' || st.state == 'X' || st.started != w->started;
}

static int all_gone(void *arg)
{
    const struct watched *w = arg;
    return is_gone(&w[0]) && is_gone(&w[1]);
}

/* ---- The scenario ------------------------------------------------------------------------- */

/* Reads exactly n bytes within timeout_ms; 0 on success, -1 on EOF or timeout. */
static int read_full(int fd, void *p, size_t n, int timeout_ms)
{
    size_t got = 0;
    int64_t end = hq_test_now_ms() + timeout_ms;
    while (got < n) {
        int left = (int)(end - hq_test_now_ms());
        if (left <= 0)
            return -1;
        struct pollfd pfd = {fd, POLLIN, 0};
        int rc = poll(&pfd, 1, left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return -1;
        ssize_t k = read(fd, (char *)p + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        got += (size_t)k;
    }
    return 0;
}

struct exec_wait {
    pid_t pid;
    const char *comm;
};

/* The spawned child has exec'd (hq_test_spawn returns right after fork). */
static int has_execed(void *arg)
{
    const struct exec_wait *e = arg;
    struct proc_stat st;
    return read_stat(e->pid, &st) != 0 || st.state == 'Z' || strcmp(st.comm, e->comm) == 0;
}

/* Checks that pid is alive, runs comm and is a child of parent, and
 * remembers its start time; 0 on success, else -1 with why in msg. */
static int watch(struct watched *w, pid_t pid, const char *comm, pid_t parent, char *msg, size_t n)
{
    struct exec_wait e = {pid, comm};
    hq_test_wait(has_execed, &e, 5000);
    struct proc_stat st;
    if (read_stat(pid, &st) != 0) {
        snprintf(msg, n, "%s (pid %d) is not running before the test binary dies", comm, (int)pid);
        return -1;
    }
    if (strcmp(st.comm, comm) != 0 || st.ppid != parent || st.state == 'Z') {
        snprintf(msg, n, "pid %d: expected a live %s child of %d, found '%s' (state %c, parent %d)",
                 (int)pid, comm, (int)parent, st.comm, st.state, (int)st.ppid);
        return -1;
    }
    w->pid = pid;
    w->started = st.started;
    return 0;
}

/* Removes the data dir the stand-in could not clean up (nothing runs in it). */
static void remove_dir(const char *dir)
{
    struct hq_test_redis leftover = {.pid = 0};
    snprintf(leftover.dir, sizeof(leftover.dir), "%s", dir);
    hq_test_redis_destroy(&leftover);
}

/* Runs the stand-in, ends it as mode says ("exit", "abort" or "kill"), and
 * asserts its redis-server and hookq worker are gone within 5 s. */
static void check_children_die(const char *mode, int expect_status)
{
    int pids[2], go[2];
    assert_int_equal(pipe(pids), 0);
    assert_int_equal(pipe(go), 0);
    char pids_fd[16], go_fd[16];
    snprintf(pids_fd, sizeof(pids_fd), "%d", pids[1]);
    snprintf(go_fd, sizeof(go_fd), "%d", go[0]);

    pid_t self = getpid();
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        /* The stand-in itself dies with this test too, the harness's way. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != self)
            _exit(127);
        close(pids[0]);
        close(go[1]);
        execl(self_exe, "test_harness_children", "--child", mode, pids_fd, go_fd, (char *)NULL);
        _exit(127);
    }
    close(pids[1]);
    close(go[0]);

    struct started s;
    if (read_full(pids[0], &s, sizeof(s), 20000) != 0) {
        int status = hq_test_kill_wait(child, SIGKILL, 5000);
        fail_msg("the stand-in sent no pids within 20 s (exit status %d)", status);
    }
    close(pids[0]);

    struct watched w[2];
    char msg[256];
    if (watch(&w[0], s.redis, "redis-server", child, msg, sizeof(msg)) != 0 ||
        watch(&w[1], s.worker, "hookq", child, msg, sizeof(msg)) != 0) {
        /* The stand-in's own children die with it (what the other tests check). */
        hq_test_kill_wait(child, SIGKILL, 5000);
        close(go[1]);
        remove_dir(s.dir);
        fail_msg("%s", msg);
    }

    if (strcmp(mode, "kill") == 0) {
        kill(child, SIGKILL);
    } else {
        char b = 'g';
        assert_int_equal(write(go[1], &b, 1), 1);
    }
    close(go[1]);
    assert_int_equal(hq_test_kill_wait(child, 0, 10000), expect_status);

    int gone = hq_test_wait(all_gone, w, 5000);
    /* Whatever the verdict, leave nothing behind for the next test. */
    int redis_alive = !is_gone(&w[0]), worker_alive = !is_gone(&w[1]);
    if (redis_alive)
        kill(w[0].pid, SIGKILL);
    if (worker_alive)
        kill(w[1].pid, SIGKILL);
    remove_dir(s.dir);
    if (!gone)
        fail_msg("5 s after the test binary died (%s): redis-server %d %s, hookq worker %d %s",
                 mode, (int)w[0].pid, redis_alive ? "alive" : "gone", (int)w[1].pid,
                 worker_alive ? "alive" : "gone");
}

static void test_children_die_when_test_binary_exits_without_cleanup(void **state)
{
    (void)state;
    check_children_die("exit", 3);
}

static void test_children_die_when_test_binary_aborts(void **state)
{
    (void)state;
    check_children_die("abort", 128 + SIGABRT);
}

static void test_children_die_when_test_binary_is_killed(void **state)
{
    (void)state;
    check_children_die("kill", 128 + SIGKILL);
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2], atoi(argv[3]), atoi(argv[4]));
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
    if (n <= 0) {
        fprintf(stderr, "readlink /proc/self/exe: %s\n", strerror(errno));
        return 1;
    }
    self_exe[n] = '\0';
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_children_die_when_test_binary_exits_without_cleanup),
        cmocka_unit_test(test_children_die_when_test_binary_aborts),
        cmocka_unit_test(test_children_die_when_test_binary_is_killed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
