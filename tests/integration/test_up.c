/* `hookq up` end to end: the whole system on one machine (private
 * redis-server, worker, scheduler, demo receiver, demo producer). Each run
 * happens in its own temporary directory, so ./.hookq/ lands there. Needs a
 * working `hookq worker` and `hookq scheduler`: until they land, the delivery
 * tests fail with up's report that the worker exited. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "tests/harness/hq_test.h"

#define OUT_MAX (512 * 1024)

struct tmp_cwd {
    char dir[64]; /* the temporary directory, now the cwd */
    int back;     /* fd of the previous cwd */
};

static void enter_tmp(struct tmp_cwd *t)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/hq-up-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    t->back = open(".", O_RDONLY | O_DIRECTORY);
    assert_true(t->back >= 0);
    assert_int_equal(chdir(t->dir), 0);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void leave_tmp(struct tmp_cwd *t)
{
    assert_int_equal(fchdir(t->back), 0);
    close(t->back);
    nftw(t->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Each test runs in a fresh temporary cwd, removed even when the test fails. */
static struct tmp_cwd cur;
static pid_t up_pid; /* a background `hookq up` not yet reaped (stopped by the teardown) */

static int setup_cwd(void **state)
{
    (void)state;
    enter_tmp(&cur);
    return 0;
}

static int teardown_cwd(void **state)
{
    (void)state;
    if (up_pid > 0 && hq_test_kill_wait(up_pid, SIGTERM, 30000) < 0)
        hq_test_kill_wait(up_pid, SIGKILL, 5000);
    up_pid = 0;
    leave_tmp(&cur);
    return 0;
}

struct pids {
    int redis, worker, scheduler, api;
};

static int parse_pids(const char *out, struct pids *p)
{
    const char *l = strstr(out, "pids: redis=");
    return l && sscanf(l, "pids: redis=%d worker=%d scheduler=%d api=%d", &p->redis, &p->worker,
                       &p->scheduler, &p->api) == 4;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p, (void)arg;
    return size * n;
}

/* The status of GET url with a bearer key ("" none); 0 when nothing answered. */
static long http_get_status(const char *url, const char *key)
{
    CURL *h = curl_easy_init();
    char auth[256];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    struct curl_slist *hd = key[0] ? curl_slist_append(NULL, auth) : NULL;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    return status;
}

static void assert_gone(int pid, const char *what)
{
    errno = 0;
    if (kill(pid, 0) == 0 || errno != ESRCH)
        fail_msg("%s (pid %d) is still running after hookq up exited", what, pid);
}

static size_t count_lines_with(const char *out, const char *a, const char *b, const char * not )
{
    size_t n = 0;
    for (const char *l = out; l && *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        char line[1024];
        snprintf(line, sizeof(line), "%.*s", (int)(len < sizeof(line) ? len : sizeof(line) - 1), l);
        if (strstr(line, a) && (!b || strstr(line, b)) && (!not || !strstr(line, not )))
            n++;
        l = nl ? nl + 1 : NULL;
    }
    return n;
}

static void test_up_delivers_signed_events_retries_the_failing_endpoint_and_cleans_up(void **state)
{
    (void)state;
    char *out = malloc(OUT_MAX), *err = malloc(OUT_MAX);
    assert_non_null(out);
    assert_non_null(err);
    const char *args[] = {"up", "--duration", "15s", NULL};
    int st = hq_test_cli(args, NULL, NULL, out, OUT_MAX, err, OUT_MAX);
    if (st != 0)
        fail_msg("hookq up exited %d\nstdout:\n%s\nstderr:\n%s", st, out, err);

    struct pids p;
    if (!parse_pids(out, &p))
        fail_msg("no 'pids:' line in:\n%s", out);
    assert_true(p.redis > 0 && p.worker > 0 && p.scheduler > 0);

    /* The four start-up events reached the demo endpoint, signed with both keys. */
    assert_true(count_lines_with(out, "produced user.created", NULL, NULL) >= 1);
    assert_true(count_lines_with(out, "produced invoice.paid", NULL, NULL) >= 3);
    size_t ok = count_lines_with(out, "received ", "signature=valid (key1+key2)", "-> 503");
    if (ok < 4)
        fail_msg("%zu valid deliveries to the demo endpoint, want >= 4:\n%s", ok, out);
    assert_true(count_lines_with(out, "received invoice.paid id=evt_", "bytes", NULL) >= 3);
    assert_int_equal(count_lines_with(out, "INVALID", NULL, NULL), 0);

    /* The failing endpoint was retried: some event reached it a second time. */
    if (count_lines_with(out, "-> 503", "attempt 2)", NULL) == 0)
        fail_msg("no retry of the failing endpoint in:\n%s", out);
    assert_non_null(strstr(out, "summary: produced "));

    /* Nothing is left behind. */
    assert_gone(p.redis, "redis-server");
    assert_gone(p.worker, "worker");
    assert_gone(p.scheduler, "scheduler");
    assert_gone(p.api, "api");
    struct stat sb;
    assert_int_equal(stat(".hookq/redis", &sb), 0); /* data stayed in the cwd */
    free(out);
    free(err);
}

/* --cluster: six nodes joined into 3 primaries + 3 replicas, the layout made
 * with 6 partitions on first use, and the same demo through them: signed
 * deliveries, retries of the failing endpoint (the scheduler moves them on
 * the cluster), events spread over partitions, nothing left running. */
static void test_up_cluster_runs_the_demo_on_a_local_redis_cluster(void **state)
{
    (void)state;
    char *out = malloc(OUT_MAX), *err = malloc(OUT_MAX);
    assert_non_null(out);
    assert_non_null(err);
    const char *args[] = {"up", "--cluster", "--duration", "12s", NULL};
    int st = hq_test_cli(args, NULL, NULL, out, OUT_MAX, err, OUT_MAX);
    if (st != 0)
        fail_msg("hookq up --cluster exited %d\nstdout:\n%s\nstderr:\n%s", st, out, err);
    assert_non_null(strstr(out, "cluster: 3 primaries + 3 replicas on 127.0.0.1:"));
    assert_non_null(strstr(out, "layout: 6 partitions"));
    int pid[6], w = 0, s = 0;
    const char *l = strstr(out, "pids: redis=");
    if (!l || sscanf(l, "pids: redis=%d,%d,%d,%d,%d,%d worker=%d scheduler=%d", &pid[0], &pid[1],
                     &pid[2], &pid[3], &pid[4], &pid[5], &w, &s) != 8)
        fail_msg("no cluster 'pids:' line in:\n%s", out);
    size_t ok = count_lines_with(out, "received ", "signature=valid (key1+key2)", "-> 503");
    if (ok < 4)
        fail_msg("%zu valid deliveries to the demo endpoint, want >= 4:\n%s", ok, out);
    if (count_lines_with(out, "-> 503", "attempt 2)", NULL) == 0)
        fail_msg("no retry of the failing endpoint in:\n%s", out);
    /* Entries went to more than one partition (ids print as p<i>/<entry id>). */
    int seen[6] = {0}, nseen = 0;
    for (const char *q = strstr(out, "-> entry p"); q; q = strstr(q + 1, "-> entry p")) {
        int i = atoi(q + strlen("-> entry p"));
        if (i >= 0 && i < 6 && !seen[i]++)
            nseen++;
    }
    if (nseen < 2)
        fail_msg("events went to %d partition(s):\n%s", nseen, out);
    assert_int_equal(count_lines_with(out, "INVALID", NULL, NULL), 0);
    for (int i = 0; i < 6; i++)
        assert_gone(pid[i], "redis-server (cluster node)");
    assert_gone(w, "worker");
    assert_gone(s, "scheduler");
    free(out);
    free(err);
}

/* ---- Runs in the background with output in a file ---------------------------------------- */

static pid_t spawn_up(const char *log, const char *const *args)
{
    const char *argv[16] = {HQ_TEST_BIN};
    int n = 1;
    for (; args[n - 1] && n < 15; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int devnull = open("/dev/null", O_RDONLY);
        if (fd < 0 || devnull < 0)
            _exit(127);
        dup2(devnull, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(HQ_TEST_BIN, (char *const *)argv);
        _exit(127);
    }
    up_pid = pid;
    return pid;
}

struct log_wait {
    const char *path;
    const char *needle;
    pid_t pid; /* stop waiting when it exits */
    char buf[OUT_MAX];
};

static void read_log(struct log_wait *w)
{
    w->buf[0] = '\0';
    FILE *f = fopen(w->path, "r");
    if (!f)
        return;
    size_t n = fread(w->buf, 1, sizeof(w->buf) - 1, f);
    w->buf[n] = '\0';
    fclose(f);
}

static int log_has(void *arg)
{
    struct log_wait *w = arg;
    read_log(w);
    if (strstr(w->buf, w->needle))
        return 1;
    /* Stop waiting when it exited; WNOWAIT leaves it for hq_test_kill_wait to reap. */
    siginfo_t si = {0};
    return waitid(P_PID, (id_t)w->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid != 0;
}

static struct log_wait lw; /* large: kept off the stack */

struct api_arg {
    const char *url, *key;
};

static int api_answers(void *arg)
{
    struct api_arg *a = arg;
    return http_get_status(a->url, a->key) == 200;
}

static void test_up_stops_everything_on_sigint_with_status_0(void **state)
{
    (void)state;
    const char *args[] = {"up", NULL};
    pid_t pid = spawn_up("up.log", args);
    lw = (struct log_wait){.path = "up.log", .needle = "signature=valid", .pid = pid};
    assert_true(hq_test_wait(log_has, &lw, 30000));
    if (!strstr(lw.buf, "signature=valid"))
        fail_msg("no delivery before hookq up stopped:\n%s", lw.buf);
    struct pids p;
    assert_true(parse_pids(lw.buf, &p));
    /* The API and console run beside them, with the admin key printed once. */
    char base[64] = "", key[128] = "", url[256];
    const char *cl = strstr(lw.buf, "console: http://"), *kl = strstr(lw.buf, "shown once): ");
    if (!cl || !kl || sscanf(cl, "console: %63[^/ ]//%63[^/ ]", url, base) != 2 ||
        sscanf(kl, "shown once): %127s", key) != 1)
        fail_msg("no console address and admin key in:\n%s", lw.buf);
    snprintf(url, sizeof(url), "http://%s/v1/stats", base);
    struct api_arg aa = {url, key};
    if (!hq_test_wait(api_answers, &aa, 10000)) /* it starts beside the worker */
        fail_msg("GET %s with the admin key: %ld, not 200", url, http_get_status(url, key));
    assert_int_equal(http_get_status(url, ""), 401);
    int st = hq_test_kill_wait(pid, SIGINT, 30000);
    if (st >= 0)
        up_pid = 0;
    read_log(&lw);
    if (st != 0)
        fail_msg("hookq up exited %d after SIGINT:\n%s", st, lw.buf);
    assert_non_null(strstr(lw.buf, "stopping (signal)"));
    assert_gone(p.redis, "redis-server");
    assert_gone(p.worker, "worker");
    assert_gone(p.scheduler, "scheduler");
    assert_gone(p.api, "api");
}

static void test_up_reports_a_dead_worker_and_exits_1_after_cleaning_up(void **state)
{
    (void)state;
    const char *args[] = {"up", NULL};
    pid_t pid = spawn_up("up.log", args);
    lw = (struct log_wait){.path = "up.log", .needle = "pids: ", .pid = pid};
    assert_true(hq_test_wait(log_has, &lw, 30000));
    struct pids p;
    if (!parse_pids(lw.buf, &p))
        fail_msg("no 'pids:' line:\n%s", lw.buf);
    assert_int_equal(kill(p.worker, SIGKILL), 0);
    int st = hq_test_kill_wait(pid, 0, 30000); /* signal 0: only wait */
    if (st >= 0)
        up_pid = 0;
    read_log(&lw);
    if (st != 1)
        fail_msg("hookq up exited %d after its worker was killed:\n%s", st, lw.buf);
    char want[96];
    snprintf(want, sizeof(want), "worker (pid %d) exited unexpectedly (killed by signal 9)",
             p.worker);
    if (!strstr(lw.buf, want))
        fail_msg("'%s' missing in:\n%s", want, lw.buf);
    assert_gone(p.redis, "redis-server");
    assert_gone(p.scheduler, "scheduler");
}

static void test_up_without_redis_server_says_how_to_install_it(void **state)
{
    (void)state;
    char out[4096], err[4096];
    const char *args[] = {"up", "--duration", "1s", NULL};
    const char *env[] = {"PATH=/nonexistent", NULL};
    int st = hq_test_cli(args, env, NULL, out, sizeof(out), err, sizeof(err));
    assert_int_equal(st, 1);
    assert_non_null(strstr(err, "hookq up: redis-server is not installed"));
    assert_non_null(strstr(err, "apt-get install redis-server"));
    assert_non_null(strstr(err, "./run up"));
    assert_int_equal(count_lines_with(err, "hookq up", NULL, NULL), 1); /* one line */
    assert_ptr_equal(strchr(err, '\n'), err + strlen(err) - 1);
    struct stat sb;
    assert_int_not_equal(stat(".hookq", &sb), 0); /* nothing started, nothing created */
}

static void test_up_rejects_bad_options_with_status_2(void **state)
{
    (void)state;
    char out[4096], err[4096];
    const char *bad_duration[] = {"up", "--duration", "5x", NULL};
    assert_int_equal(hq_test_cli(bad_duration, NULL, NULL, out, sizeof(out), err, sizeof(err)), 2);
    assert_non_null(strstr(err, "hookq up: --duration"));
    assert_non_null(strstr(err, "5x"));
    const char *extra[] = {"up", "now", NULL};
    assert_int_equal(hq_test_cli(extra, NULL, NULL, out, sizeof(out), err, sizeof(err)), 2);
    assert_non_null(strstr(err, "hookq up: unexpected argument 'now'"));
    const char *help[] = {"up", "--help", NULL};
    assert_int_equal(hq_test_cli(help, NULL, NULL, out, sizeof(out), err, sizeof(err)), 0);
    assert_non_null(strstr(out, "--duration"));
    const char *both[] = {"up", "--cluster", "--redis-url", "redis://127.0.0.1:1", NULL};
    assert_int_equal(hq_test_cli(both, NULL, NULL, out, sizeof(out), err, sizeof(err)), 2);
    assert_non_null(strstr(err, "hookq up: --cluster starts its own cluster"));
}

int main(void)
{
    unsetenv("HOOKQ_REDIS_URL"); /* up must start its own redis-server here */
    unsetenv("HOOKQ_PREFIX");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_up_rejects_bad_options_with_status_2, setup_cwd,
                                        teardown_cwd),
        cmocka_unit_test_setup_teardown(test_up_without_redis_server_says_how_to_install_it,
                                        setup_cwd, teardown_cwd),
        cmocka_unit_test_setup_teardown(
            test_up_delivers_signed_events_retries_the_failing_endpoint_and_cleans_up, setup_cwd,
            teardown_cwd),
        cmocka_unit_test_setup_teardown(test_up_cluster_runs_the_demo_on_a_local_redis_cluster,
                                        setup_cwd, teardown_cwd),
        cmocka_unit_test_setup_teardown(test_up_stops_everything_on_sigint_with_status_0, setup_cwd,
                                        teardown_cwd),
        cmocka_unit_test_setup_teardown(test_up_reports_a_dead_worker_and_exits_1_after_cleaning_up,
                                        setup_cwd, teardown_cwd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
