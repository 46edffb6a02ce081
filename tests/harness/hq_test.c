/* Test harness implementation. See hq_test.h.
 *
 * Every process it forks (redis-server, hookq commands, workers, schedulers,
 * the stdin feeder of hq_test_cli) is tied to the test binary with
 * PR_SET_PDEATHSIG: a test that crashes or aborts (a failed assertion under
 * ASan ends in LeakSanitizer's abort) must not leave children holding ctest's
 * output pipe, or ctest waits for its 900 s timeout. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/hq_test.h"

#include "common/endpoint_store.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t hq_test_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t hq_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Ports for the servers a test starts (redis-server, a worker's metrics, the
 * API) are chosen where no other socket can take them between the choice and
 * the server's bind: outside the kernel's ephemeral range (32768-60999 by
 * default: the thousands of outgoing connections the tests make get their
 * local ports there), and reserved across the test processes ctest runs in
 * parallel by an flock on PORT_DIR/<port>, held until this process exits
 * (the descriptor is never closed; O_CLOEXEC keeps children from holding it
 * after the test). Binding port 0 and closing, as before, left both doors
 * open: a parallel test once read another test's worker metrics. */
#define PORT_LO  10000
#define PORT_HI  32767
#define PORT_DIR "/tmp/hookq-test-ports"

/* 1 when port binds on 127.0.0.1 now (SO_REUSEADDR, as the servers bind). */
static int port_binds(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

int hq_test_free_port(void)
{
    static unsigned seed;
    if (!seed) {
        seed = (unsigned)getpid() ^ (unsigned)hq_test_now_us();
        if (mkdir(PORT_DIR, 01777) == 0)
            chmod(PORT_DIR, 01777); /* shared by every user's tests; mkdir's mode met the umask */
        else if (errno != EEXIST)
            fail_msg("%s: %s", PORT_DIR, strerror(errno));
    }
    for (int tries = 0; tries < 5000; tries++) {
        int port = PORT_LO + (int)(rand_r(&seed) % (PORT_HI - PORT_LO + 1));
        char path[64];
        snprintf(path, sizeof(path), "%s/%d", PORT_DIR, port);
        int lock = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0666);
        if (lock < 0)
            continue; /* another user's reservation */
        if (flock(lock, LOCK_EX | LOCK_NB) != 0 || !port_binds(port)) {
            close(lock); /* reserved by another test process (or this one), or in use */
            continue;
        }
        return port; /* lock stays open: the reservation lasts as long as this process */
    }
    fail_msg("no free port in %d-%d after 5000 tries", PORT_LO, PORT_HI);
    return -1;
}

/* fork(), failing the test when it cannot. In the child, before anything else:
 * the child gets SIGKILL when the thread that forked it exits, and exits at
 * once if the parent died between fork() and the prctl() (then it was already
 * reparented, so getppid() no longer names the parent). PR_SET_PDEATHSIG is
 * kept across execve (not for set-uid binaries) and cleared in the child's own
 * children. Only async-signal-safe calls: the test binary has threads (MHD
 * receivers). Every fork in this file happens on the thread that runs the
 * test, which lives as long as the process. */
static pid_t fork_child(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0 && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent))
        _exit(127);
    return pid;
}

/* ---- waiting ----------------------------------------------------------------------------- */

int hq_test_wait(hq_test_pred pred, void *arg, int timeout_ms)
{
    int64_t end = hq_test_now_ms() + timeout_ms;
    for (;;) {
        if (pred(arg))
            return 1;
        if (hq_test_now_ms() > end)
            return 0;
        sleep_ms(2);
    }
}

static void on_wake(uv_timer_t *t)
{
    (void)t;
}

int hq_test_run_until(uv_loop_t *loop, hq_test_pred pred, void *arg, int timeout_ms)
{
    uv_timer_t wake;
    uv_timer_init(loop, &wake);
    uv_timer_start(&wake, on_wake, 5, 5);
    int64_t end = hq_test_now_ms() + timeout_ms;
    int ok = 0;
    for (;;) {
        if (pred(arg)) {
            ok = 1;
            break;
        }
        if (hq_test_now_ms() > end)
            break;
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&wake, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

/* ---- redis-server --------------------------------------------------------------------------- */

static pid_t redis_spawn(struct hq_test_redis *r)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", r->port);
    const char *argv[64];
    int argc = 0;
    argv[argc++] = "redis-server";
    argv[argc++] = "--port";
    argv[argc++] = port;
    argv[argc++] = "--bind";
    argv[argc++] = "127.0.0.1";
    argv[argc++] = "--dir";
    argv[argc++] = r->dir;
    argv[argc++] = "--save";
    argv[argc++] = "";
    argv[argc++] = "--appendonly";
    argv[argc++] = "no";
    argv[argc++] = "--daemonize";
    argv[argc++] = "no";
    argv[argc++] = "--loglevel";
    argv[argc++] = "warning";
    argv[argc++] = "--logfile";
    argv[argc++] = "redis.log";
    char extra[sizeof(r->extra)];
    snprintf(extra, sizeof(extra), "%s", r->extra);
    for (char *save = NULL, *tok = strtok_r(extra, " ", &save); tok && argc < 60;
         tok = strtok_r(NULL, " ", &save))
        argv[argc++] = tok;
    argv[argc] = NULL;
    /* stdout and stderr go to a file in the data dir, never to the test's own
     * output: a redis-server outliving the test must not hold ctest's pipe, and
     * start-up errors (bad config args) are still shown by redis_dump_logs. */
    char stdio_path[sizeof(r->dir) + 32];
    snprintf(stdio_path, sizeof(stdio_path), "%s/redis.stdio", r->dir);
    pid_t pid = fork_child();
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        int out = open(stdio_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (devnull < 0 || out < 0)
            _exit(127);
        dup2(devnull, 0);
        dup2(out, 1);
        dup2(out, 2);
        close(devnull);
        close(out);
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Copies the end of one of redis-server's files in its data dir to stderr. */
static void redis_dump_file(const struct hq_test_redis *r, const char *name)
{
    char path[sizeof(r->dir) + 32];
    snprintf(path, sizeof(path), "%s/%s", r->dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char buf[4096];
    if (fseek(f, -(long)(sizeof(buf) - 1), SEEK_END) != 0)
        rewind(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    if (n)
        fprintf(stderr, "---- %s ----\n%s%s", path, buf, buf[n - 1] == '\n' ? "" : "\n");
}

/* Shows why a redis-server did not come up: its log and what it printed. */
static void redis_dump_logs(const struct hq_test_redis *r)
{
    redis_dump_file(r, "redis.log");
    redis_dump_file(r, "redis.stdio");
}

struct ping_arg {
    struct hq_test_redis *r;
};

static int redis_answers(void *arg)
{
    struct hq_test_redis *r = arg;
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    int ok = 0;
    if (c && !c->err) {
        redisReply *rep = redisCommand(c, "PING");
        /* A server started with --requirepass answers NOAUTH: it is up. */
        ok = rep && (rep->type == REDIS_REPLY_STATUS ||
                     (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOAUTH", 6) == 0));
        if (rep)
            freeReplyObject(rep);
    }
    if (c)
        redisFree(c);
    int status;
    if (!ok && waitpid(r->pid, &status, WNOHANG) == r->pid) {
        r->pid = 0; /* reaped: nothing left for stop to signal */
        redis_dump_logs(r);
        fail_msg("redis-server exited at start (status %d); see %s/redis.log", status, r->dir);
    }
    return ok;
}

void hq_test_redis_start(struct hq_test_redis *r, const char *extra)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->dir, sizeof(r->dir), "/tmp/hq-test-redis-XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    snprintf(r->extra, sizeof(r->extra), "%s", extra ? extra : "");
    r->port = hq_test_free_port();
    snprintf(r->url, sizeof(r->url), "redis://127.0.0.1:%d/0", r->port);
    r->pid = redis_spawn(r);
    if (!hq_test_wait(redis_answers, r, 10000)) {
        redis_dump_logs(r);
        fail_msg("redis-server on port %d did not answer within 10 s", r->port);
    }
}

void hq_test_redis_restart(struct hq_test_redis *r)
{
    assert_int_equal(r->pid, 0);
    r->pid = redis_spawn(r);
    if (!hq_test_wait(redis_answers, r, 10000)) {
        redis_dump_logs(r);
        fail_msg("redis-server restart on port %d did not answer within 10 s", r->port);
    }
}

void hq_test_redis_stop(struct hq_test_redis *r, int hard)
{
    if (r->pid > 0) {
        hq_test_kill_wait(r->pid, hard ? SIGKILL : SIGTERM, 10000);
        r->pid = 0;
    }
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void hq_test_redis_destroy(struct hq_test_redis *r)
{
    hq_test_redis_stop(r, 0);
    if (r->dir[0])
        nftw(r->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    r->dir[0] = '\0';
}

redisContext *hq_test_redis_connect(const struct hq_test_redis *r)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    assert_non_null(c);
    if (c->err)
        fail_msg("connect to test redis: %s", c->errstr);
    redisSetTimeout(c, tv);
    return c;
}

/* redisvCommand, failing the test on NULL. */
static redisReply *vcmd(redisContext *c, const char *fmt, va_list ap)
{
    redisReply *r = redisvCommand(c, fmt, ap);
    if (!r)
        fail_msg("redis command '%s' failed: %s", fmt, c->errstr);
    return r;
}

redisReply *hq_test_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = vcmd(c, fmt, ap);
    va_end(ap);
    return r;
}

long long hq_test_cmd_int(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = vcmd(c, fmt, ap);
    va_end(ap);
    if (r->type != REDIS_REPLY_INTEGER)
        fail_msg("redis command '%s': expected an integer, got type %d (%s)", fmt, r->type,
                 r->str ? r->str : "");
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* ---- HTTP receiver
 * ------------------------------------------------------------------------------- */

struct conn_state {
    char *body;
    size_t len, cap;
};

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    char **h = cls;
    size_t old = *h ? strlen(*h) : 0;
    size_t add = strlen(key) + strlen(value) + 3;
    *h = realloc(*h, old + add + 1);
    char *p = *h + old;
    for (const char *k = key; *k; k++)
        *p++ = (char)((*k >= 'A' && *k <= 'Z') ? *k + 32 : *k);
    snprintf(p, add + 1, ": %s\n", value);
    return MHD_YES;
}

static int gate_closed(struct hq_test_receiver *rc)
{
    pthread_mutex_lock(&rc->mu);
    int closed = rc->gate_closed;
    pthread_mutex_unlock(&rc->mu);
    return closed;
}

void hq_test_receiver_gate(struct hq_test_receiver *rc, int closed)
{
    pthread_mutex_lock(&rc->mu);
    rc->gate_closed = closed;
    pthread_mutex_unlock(&rc->mu);
}

static struct MHD_Response *empty_response(void)
{
    return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct hq_test_receiver *rc = cls;
    struct conn_state *st = *con_cls;
    if (!st) {
        st = calloc(1, sizeof(*st));
        *con_cls = st;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (st->len + *upload_data_size + 1 > st->cap) {
            st->cap = (st->len + *upload_data_size + 1) * 2;
            st->body = realloc(st->body, st->cap);
        }
        memcpy(st->body + st->len, upload_data, *upload_data_size);
        st->len += *upload_data_size;
        st->body[st->len] = '\0';
        *upload_data_size = 0;
        return MHD_YES;
    }

    struct hq_test_request q = {0};
    snprintf(q.method, sizeof(q.method), "%s", method);
    snprintf(q.path, sizeof(q.path), "%s", url);
    MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, &q.headers);
    if (!q.headers)
        q.headers = strdup("");
    q.body = st->body ? st->body : strdup("");
    q.body_len = st->len;
    st->body = NULL;
    q.at_us = hq_test_now_us();
    q.at_ms = q.at_us / 1000;

    int status = rc->default_status;
    struct MHD_Response *resp = NULL;
    const char *extra_name = NULL, *extra_value = NULL;
    char valbuf[128];
    pthread_mutex_lock(&rc->mu);
    int flaky = rc->flaky_pct > 0 && (rand() % 100) < rc->flaky_pct;
    rc->in_flight++;
    if (rc->in_flight > rc->max_in_flight)
        rc->max_in_flight = rc->in_flight;
    pthread_mutex_unlock(&rc->mu);

    if (flaky) {
        status = 500;
    } else if (strncmp(url, "/s/", 3) == 0) {
        status = atoi(url + 3);
        if (status >= 300 && status < 400) {
            extra_name = "Location";
            extra_value = "/s/204";
        }
    } else if (strncmp(url, "/delay/", 7) == 0) {
        int ms = atoi(url + 7);
        for (int waited = 0; waited < ms && !rc->stopping; waited += 5)
            sleep_ms(5);
    } else if (strncmp(url, "/gate", 5) == 0) {
        while (!rc->stopping && gate_closed(rc))
            sleep_ms(5);
    } else if (strncmp(url, "/hang", 5) == 0) {
        while (!rc->stopping)
            sleep_ms(5);
        status = 0;
    } else if (strncmp(url, "/big/", 5) == 0) {
        size_t n = (size_t)atoll(url + 5);
        char *big = malloc(n ? n : 1);
        memset(big, 'x', n);
        resp = MHD_create_response_from_buffer(n, big, MHD_RESPMEM_MUST_FREE);
        status = 200;
    } else if (strncmp(url, "/retry-after/", 13) == 0) {
        status = 429;
        snprintf(valbuf, sizeof(valbuf), "%s", url + 13);
        char *slash = strchr(valbuf, '/');
        if (slash)
            *slash = '\0';
        for (char *p = valbuf; *p; p++) {
            if (*p == '_')
                *p = ' ';
        }
        extra_name = "Retry-After";
        extra_value = valbuf;
    } else if (strncmp(url, "/redirect", 9) == 0) {
        status = 302;
        extra_name = "Location";
        extra_value = "/s/204";
    }
    q.status = status;

    pthread_mutex_lock(&rc->mu);
    if (rc->nreqs == rc->capreqs) {
        rc->capreqs = rc->capreqs ? rc->capreqs * 2 : 64;
        rc->reqs = realloc(rc->reqs, rc->capreqs * sizeof(*rc->reqs));
    }
    rc->reqs[rc->nreqs++] = q;
    rc->in_flight--;
    pthread_mutex_unlock(&rc->mu);

    if (status == 0)
        return MHD_NO; /* hung until stop: drop the connection */
    if (!resp)
        resp = empty_response();
    if (extra_name)
        MHD_add_response_header(resp, extra_name, extra_value);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct conn_state *st = *con_cls;
    if (st) {
        free(st->body);
        free(st);
        *con_cls = NULL;
    }
}

void hq_test_receiver_start(struct hq_test_receiver *rc)
{
    memset(rc, 0, sizeof(*rc));
    pthread_mutex_init(&rc->mu, NULL);
    rc->default_status = 204;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* A thread per connection: /hang and /delay handlers block, and must not
     * hold up other endpoints' requests. */
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL,
        NULL, answer, rc, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a, MHD_OPTION_NOTIFY_COMPLETED,
        request_done, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)4000, MHD_OPTION_END);
    assert_non_null(d);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    assert_non_null(info);
    rc->port = info->port;
    rc->mhd = d;
    snprintf(rc->url, sizeof(rc->url), "http://127.0.0.1:%d", rc->port);
}

void hq_test_receiver_stop(struct hq_test_receiver *rc)
{
    if (!rc->mhd)
        return;
    pthread_mutex_lock(&rc->mu);
    rc->stopping = 1;
    pthread_mutex_unlock(&rc->mu);
    MHD_stop_daemon(rc->mhd);
    rc->mhd = NULL;
    for (size_t i = 0; i < rc->nreqs; i++) {
        free(rc->reqs[i].headers);
        free(rc->reqs[i].body);
    }
    free(rc->reqs);
    rc->reqs = NULL;
    rc->nreqs = rc->capreqs = 0;
    pthread_mutex_destroy(&rc->mu);
}

size_t hq_test_receiver_count(struct hq_test_receiver *rc)
{
    pthread_mutex_lock(&rc->mu);
    size_t n = rc->nreqs;
    pthread_mutex_unlock(&rc->mu);
    return n;
}

size_t hq_test_receiver_count_path(struct hq_test_receiver *rc, const char *prefix)
{
    size_t n = 0, len = strlen(prefix);
    pthread_mutex_lock(&rc->mu);
    for (size_t i = 0; i < rc->nreqs; i++)
        n += strncmp(rc->reqs[i].path, prefix, len) == 0;
    pthread_mutex_unlock(&rc->mu);
    return n;
}

int hq_test_request_header(const struct hq_test_request *q, const char *name, char *out, size_t n)
{
    size_t len = strlen(name);
    for (const char *p = q->headers; p && *p;) {
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        if (strncmp(p, name, len) == 0 && p[len] == ':' && p[len + 1] == ' ') {
            const char *v = p + len + 2;
            snprintf(out, n, "%.*s", (int)(nl - v), v);
            return 0;
        }
        p = nl + 1;
    }
    return -1;
}

/* ---- processes
 * ------------------------------------------------------------------------------------- */

/* argv[64] for execv: the hookq binary, then args (NULL-terminated; at most 62 are kept). */
static void hookq_argv(const char *const *args, const char **argv)
{
    int argc = 0;
    argv[argc++] = HQ_TEST_BIN;
    for (; args[argc - 1] && argc < 63; argc++)
        argv[argc] = args[argc - 1];
    argv[argc] = NULL;
}

/* In the child: adds env ("NAME=value" strings, NULL-terminated, may be NULL) and
 * runs the hookq binary; exits 127 when it cannot. */
static void exec_hookq(const char **argv, const char *const *env)
{
    for (; env && *env; env++)
        putenv((char *)*env);
    execv(HQ_TEST_BIN, (char *const *)argv);
    _exit(127);
}

static int decode_status(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

int hq_test_cli(const char *const *args, const char *const *env, const char *in, char *out,
                size_t out_n, char *err, size_t err_n)
{
    int pin[2], pout[2], perr[2];
    assert_int_equal(pipe(pin), 0);
    assert_int_equal(pipe(pout), 0);
    assert_int_equal(pipe(perr), 0);
    const char *argv[64];
    hookq_argv(args, argv);
    pid_t pid = fork_child();
    if (pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        dup2(perr[1], 2);
        close(pin[1]);
        close(pout[0]);
        close(perr[0]);
        exec_hookq(argv, env);
    }
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    /* Write stdin from a child so a large input cannot deadlock against full output pipes. */
    if (in && *in) {
        pid_t w = fork_child();
        if (w == 0) {
            close(pout[0]);
            close(perr[0]);
            size_t len = strlen(in), off = 0;
            while (off < len) {
                ssize_t k = write(pin[1], in + off, len - off);
                if (k <= 0)
                    break;
                off += (size_t)k;
            }
            _exit(0);
        }
        close(pin[1]);
        waitpid(w, NULL, 0);
    } else {
        close(pin[1]);
    }
    size_t olen = 0, elen = 0;
    char dummy[2];
    struct pollfd fds[2] = {{pout[0], POLLIN, 0}, {perr[0], POLLIN, 0}};
    int open_fds = 2;
    while (open_fds > 0) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char tmp[4096];
            ssize_t r = read(fds[i].fd, tmp, sizeof(tmp));
            if (r <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
                continue;
            }
            char *b = i == 0 ? (out ? out : dummy) : (err ? err : dummy);
            size_t bn = i == 0 ? (out ? out_n : sizeof(dummy)) : (err ? err_n : sizeof(dummy));
            size_t *len = i == 0 ? &olen : &elen;
            size_t room = bn - 1 - *len;
            size_t take = (size_t)r < room ? (size_t)r : room;
            memcpy(b + *len, tmp, take);
            *len += take;
        }
    }
    if (out)
        out[olen] = '\0';
    if (err)
        err[elen] = '\0';
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return decode_status(status);
}

pid_t hq_test_spawn(const char *const *args, const char *const *env, const char *log_path)
{
    const char *argv[64];
    hookq_argv(args, argv);
    pid_t pid = fork_child();
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        if (log_path) {
            int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0)
                dup2(fd, 2);
        }
        exec_hookq(argv, env);
    }
    return pid;
}

int hq_test_log_count(const char *path, const char *level, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, needle) != NULL && (!level || strstr(line, level) != NULL);
    fclose(f);
    return n;
}

void hq_test_log_print(const char *path, const char *tag)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[2048];
    while (fgets(line, sizeof(line), f))
        fprintf(stderr, "  %s| %s", tag, line);
    fclose(f);
}

int hq_test_proc_stat(pid_t pid, char *buf, size_t n)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t got = fread(buf, 1, n - 1, f);
    fclose(f);
    buf[got] = '\0';
    return 0;
}

long hq_test_proc_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    }
    fclose(f);
    return kb;
}

int hq_test_proc_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *de; (de = readdir(d));)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

int hq_test_kill_wait(pid_t pid, int sig, int timeout_ms)
{
    if (sig)
        kill(pid, sig);
    int64_t end = hq_test_now_ms() + timeout_ms;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return decode_status(status);
        if (r < 0)
            return -1;
        if (hq_test_now_ms() > end)
            return -1;
        sleep_ms(2);
    }
}

void hq_test_redis_open(struct hq_test_redis *r, redisContext **c, char *url_env, size_t n)
{
    hq_test_redis_start(r, NULL);
    *c = hq_test_redis_connect(r);
    snprintf(url_env, n, "HOOKQ_REDIS_URL=%s", r->url);
}

void hq_test_redis_close(struct hq_test_redis *r, redisContext **c)
{
    redisFree(*c);
    *c = NULL;
    hq_test_redis_destroy(r);
}

void hq_test_flushall(redisContext *c)
{
    freeReplyObject(hq_test_cmd(c, "FLUSHALL"));
}

static struct {
    struct hq_test_redis *r;
    redisContext **c; /* NULL: no connection */
    char *url_env;    /* NULL: no "HOOKQ_REDIS_URL=" string */
    size_t n;
} group;

void hq_test_redis_group(struct hq_test_redis *r, redisContext **c, char *url_env, size_t n)
{
    group.r = r;
    group.c = c;
    group.url_env = url_env;
    group.n = n;
}

int hq_test_group_setup(void **state)
{
    (void)state;
    hq_test_redis_start(group.r, NULL);
    if (group.c)
        *group.c = hq_test_redis_connect(group.r);
    if (group.url_env)
        snprintf(group.url_env, group.n, "HOOKQ_REDIS_URL=%s", group.r->url);
    return 0;
}

int hq_test_group_teardown(void **state)
{
    (void)state;
    if (group.c) {
        redisFree(*group.c);
        *group.c = NULL;
    }
    hq_test_redis_destroy(group.r);
    return 0;
}

int hq_test_group_flush(void **state)
{
    (void)state;
    hq_test_flushall(*group.c);
    return 0;
}

void hq_test_endpoint_numbered(redisContext *c, const char *prefix, int i, char *id, size_t n)
{
    struct hq_endpoint e;
    memset(&e, 0, sizeof(e));
    char name[32];
    snprintf(name, sizeof(name), "ep %d", i);
    e.name = name;
    e.url = "https://example.com/h";
    e.description = "";
    e.enabled = 1;
    struct hq_err err = {0};
    assert_int_equal(hq_endpoint_create(c, prefix, &e, &err), 0);
    snprintf(id, n, "%s", e.id);
}
