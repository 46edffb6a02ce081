/* hookq up: the whole system on one machine, for a first look. Owns the
 * children it starts (a private redis-server unless --redis-url is given,
 * `hookq worker`, `hookq scheduler`), the in-process demo receiver, the two
 * demo endpoints' registration and the demo producer. It does not deliver
 * anything itself: the worker and the scheduler do, exactly as in production.
 *
 * One thread runs everything here: signals (SIGINT, SIGTERM, SIGCHLD) arrive
 * through a signalfd and children's output through pipes, all in one poll(),
 * so shutdown is a plain sequence: stop producing, SIGTERM the worker and the
 * scheduler and wait, stop the receiver, SIGTERM redis and wait. Children run
 * in their own process groups so a terminal's Ctrl-C reaches only `up`, which
 * then stops them in that order (redis last, so the worker drains against a
 * live server); PR_SET_PDEATHSIG takes them down if `up` itself is killed. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "cli/demo_receiver.h"
#include "common/alloc.h"
#include "common/apikey.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/endpoint.h"
#include "common/endpoint_store.h"
#include "common/layout_store.h"
#include "common/limits.h"
#include "common/redis_conn.h"
#include "common/redis_sync.h"
#include "hookq/hookq.h"

extern char **environ;

/* --cluster: three primaries and three replicas, as `redis-cli --cluster
 * create --cluster-replicas 1` wants at least. */
#define UP_NODES 6
enum { KID_REDIS = 0, KID_WORKER = UP_NODES, KID_SCHEDULER, KID_API, KIDS };
#define REDIS_MASK ((1u << UP_NODES) - 1u) /* every redis-server child */

struct child {
    const char *name;          /* "redis", "worker", "scheduler" */
    pid_t pid;                 /* running process; 0 before start and once reaped */
    pid_t started;             /* the pid it had, for messages after reaping */
    int out_fd;                /* read end of its stdout+stderr pipe; -1 when closed */
    char line[HQ_UP_LINE_MAX]; /* partial output line */
    size_t len;                /* bytes in line */
    char last[HQ_UP_LINE_MAX]; /* its last complete output line (for a death report) */
    int status;                /* wait status once reaped */
    int stopping;              /* 1 once `up` asked it to stop: its exit is expected */
};

struct up {
    struct child kids[KIDS];
    int sigfd;                /* signalfd for SIGINT, SIGTERM, SIGCHLD */
    int stop;                 /* SIGINT/SIGTERM received (count) */
    int died;                 /* index of the first child that died unasked, or -1 */
    char redis_url[512];      /* the Redis every part uses */
    int cluster;              /* --cluster: six redis-server nodes joined in a cluster */
    const char *prefix;       /* --prefix */
    const char *log_level;    /* --log-level when given, else NULL */
    char exe[PATH_MAX];       /* this binary, for the worker and scheduler */
    char redis_bin[PATH_MAX]; /* redis-server found on PATH */
    char home[1024];          /* absolute ./.hookq (paths under it fit PATH_MAX) */
    char api_listen[64];      /* where `hookq api` serves the API and the console */
    char worker_metrics[64];  /* where the worker serves /metrics (the console's deliveries/s) */
    char metrics_url[96];     /* http://<worker_metrics>/metrics, given to the API */
    struct hq_demo_receiver *rcv;
    struct hookq_producer *prod;
    unsigned long produced; /* events written */
};

static int fail(int status, const char *fmt, ...) HQ_PRINTF(2, 3);
static int fail(int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return hq_cli_fail(status, "up", msg);
}

/* ---- Children's output and exits ------------------------------------------------------ */

static void emit_line(struct child *c)
{
    c->line[c->len] = '\0';
    fprintf(stderr, "[%s] %s\n", c->name, c->line);
    memcpy(c->last, c->line, c->len + 1);
    c->len = 0;
}

/* Reads what a child wrote; passes complete lines to stderr, prefixed. */
static void drain_output(struct child *c)
{
    while (c->out_fd >= 0) {
        char buf[4096];
        ssize_t n = read(c->out_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            if (c->len)
                emit_line(c);
            close(c->out_fd);
            c->out_fd = -1;
            return;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n') {
                emit_line(c);
                continue;
            }
            c->line[c->len++] = buf[i];
            if (c->len == sizeof(c->line) - 1)
                emit_line(c);
        }
    }
}

static void reap(struct up *u)
{
    for (int i = 0; i < KIDS; i++) {
        struct child *c = &u->kids[i];
        int st;
        if (c->pid <= 0 || waitpid(c->pid, &st, WNOHANG) != c->pid)
            continue;
        c->pid = 0;
        c->status = st;
        drain_output(c); /* it is gone: what it wrote is all in the pipe */
        if (!c->stopping && u->died < 0)
            u->died = i;
    }
}

/* Waits up to timeout_ms for a signal or children's output and handles them. */
static void pump(struct up *u, long long timeout_ms)
{
    struct pollfd fds[1 + KIDS];
    int idx[1 + KIDS];
    int n = 0;
    fds[n] = (struct pollfd){.fd = u->sigfd, .events = POLLIN};
    idx[n++] = -1;
    for (int i = 0; i < KIDS; i++) {
        if (u->kids[i].out_fd >= 0) {
            fds[n] = (struct pollfd){.fd = u->kids[i].out_fd, .events = POLLIN};
            idx[n++] = i;
        }
    }
    if (timeout_ms < 0)
        timeout_ms = 0;
    if (poll(fds, (nfds_t)n, (int)(timeout_ms > INT_MAX ? INT_MAX : timeout_ms)) <= 0)
        return;
    for (int k = 1; k < n; k++) {
        if (fds[k].revents)
            drain_output(&u->kids[idx[k]]);
    }
    if (fds[0].revents & POLLIN) {
        struct signalfd_siginfo si;
        while (read(u->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
            if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM)
                u->stop++;
        }
        reap(u); /* SIGCHLD, or cheap when it was not */
    }
}

static void describe_status(int st, char *out, size_t n)
{
    if (WIFEXITED(st))
        snprintf(out, n, "exit status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(out, n, "killed by signal %d", WTERMSIG(st));
    else
        snprintf(out, n, "status %d", st);
}

/* SIGTERMs the children in mask (bit per index) and waits for them; SIGKILL
 * after HQ_UP_STOP_TIMEOUT_MS or at a second Ctrl-C. */
static void stop_children(struct up *u, unsigned mask)
{
    for (int i = 0; i < KIDS; i++) {
        if ((mask & (1u << i)) && u->kids[i].pid > 0) {
            u->kids[i].stopping = 1;
            kill(u->kids[i].pid, SIGTERM);
        }
    }
    int stops = u->stop;
    long long deadline = hq_mono_ms() + HQ_UP_STOP_TIMEOUT_MS;
    int killed = 0;
    for (;;) {
        int running = 0;
        for (int i = 0; i < KIDS; i++)
            running += (mask & (1u << i)) && u->kids[i].pid > 0;
        if (!running)
            break;
        if (!killed && (hq_mono_ms() >= deadline || u->stop > stops)) {
            for (int i = 0; i < KIDS; i++) {
                if ((mask & (1u << i)) && u->kids[i].pid > 0) {
                    fprintf(stderr, "hookq up: %s (pid %d) is slow to stop: SIGKILL\n",
                            u->kids[i].name, (int)u->kids[i].pid);
                    kill(u->kids[i].pid, SIGKILL);
                }
            }
            killed = 1;
        }
        pump(u, 100);
        reap(u);
    }
    /* Read what they wrote last (pipes end when their last writer exits). */
    for (int i = 0; i < KIDS; i++) {
        if (mask & (1u << i))
            drain_output(&u->kids[i]);
    }
}

/* ---- Starting children ------------------------------------------------------------------ */

/* Builds the child's environment: ours, with 'set' ("NAME=value") replacing
 * same-named entries. Built before fork: the child may only call
 * async-signal-safe functions (the receiver's thread exists). */
static char **child_env(const char *const *set)
{
    size_t n = 0, ns = 0;
    while (environ[n])
        n++;
    while (set && set[ns])
        ns++;
    char **env = hq_calloc(n + ns + 1, sizeof(char *));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int replaced = 0;
        for (size_t j = 0; j < ns && !replaced; j++) {
            size_t len = (size_t)(strchr(set[j], '=') - set[j]) + 1;
            replaced = strncmp(environ[i], set[j], len) == 0;
        }
        if (!replaced)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < ns; j++)
        env[k++] = (char *)set[j];
    env[k] = NULL;
    return env;
}

static int spawn(struct up *u, int which, const char *path, const char *const *argv,
                 const char *const *set_env, struct hq_err *err)
{
    struct child *c = &u->kids[which];
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return hq_err_set(err, HQ_EIO, "%s: pipe: %s", c->name, strerror(errno));
    char **env = child_env(set_env);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        free(env);
        return hq_err_set(err, HQ_EIO, "%s: fork: %s", c->name, strerror(e));
    }
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1); /* `up` died before PDEATHSIG was armed */
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigaction(SIGPIPE, &dfl, NULL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(p[1], 1);
        dup2(p[1], 2);
        /* Nothing else of ours (the receiver's socket, redis connections,
         * a test harness's pipes) leaks into the child. */
        if (close_range(3, ~0U, 0) != 0) {
            for (int fd = 3; fd < 1024; fd++)
                close(fd);
        }
        execve(path, (char *const *)argv, env);
        static const char msg[] = "exec failed\n";
        ssize_t w = write(2, msg, sizeof(msg) - 1);
        (void)w;
        _exit(127);
    }
    free(env);
    close(p[1]);
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    c->pid = c->started = pid;
    c->out_fd = p[0];
    return 0;
}

/* Finds redis-server on PATH; 0 or HQ_ENOTFOUND. */
static int find_on_path(const char *name, char *out, size_t n)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t len = end ? (size_t)(end - path) : strlen(path);
        snprintf(out, n, "%.*s/%s", (int)len, len ? path : ".", name);
        if (access(out, X_OK) == 0)
            return 0;
        path += len + (end ? 1 : 0);
    }
    return HQ_ENOTFOUND;
}

/* Binds a socket to 127.0.0.1:port (0: any free port) and closes it; the
 * port it got, or -1 when that port is taken. */
static int bind_loopback(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int got = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        got = ntohs(a.sin_port);
    close(fd);
    return got;
}

static int free_loopback_port(void)
{
    return bind_loopback(0);
}

/* 1 when the Redis at url answers PING with PONG. */
static int redis_answers(const char *url, int timeout_ms)
{
    struct hq_err err = {0};
    redisContext *c = hq_redis_connect(url, timeout_ms, &err);
    if (!c)
        return 0;
    redisReply *r = hq_redis_cmdf(c, &err, "PING");
    int ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return ok;
}

static int start_redis(struct up *u, struct hq_err *err)
{
    char dir[PATH_MAX], log[PATH_MAX + 16], portbuf[16];
    snprintf(dir, sizeof(dir), "%s/redis", u->home);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return hq_err_set(err, HQ_EIO, "cannot create %s: %s", dir, strerror(errno));
    snprintf(log, sizeof(log), "%s/redis.log", dir);
    int port = free_loopback_port();
    if (port <= 0)
        return hq_err_set(err, HQ_EIO, "no free loopback port for redis-server");
    snprintf(portbuf, sizeof(portbuf), "%d", port);
    const char *argv[] = {u->redis_bin, "--port",       portbuf, "--bind", "127.0.0.1", "--dir",
                          dir,          "--appendonly", "yes",   "--save", "",          "--logfile",
                          log,          "--daemonize",  "no",    NULL};
    int rc = spawn(u, KID_REDIS, u->redis_bin, argv, NULL, err);
    if (rc)
        return rc;
    snprintf(u->redis_url, sizeof(u->redis_url), "redis://127.0.0.1:%d/0", port);
    long long deadline = hq_mono_ms() + HQ_UP_START_TIMEOUT_MS;
    while (!redis_answers(u->redis_url, HQ_UP_PING_EVERY_MS * 4)) {
        pump(u, HQ_UP_PING_EVERY_MS);
        if (u->died == KID_REDIS) {
            u->died = -1; /* reported here, with the log's path */
            return hq_err_set(err, HQ_EIO, "redis-server exited at start-up (%s); see %s",
                              u->kids[KID_REDIS].last[0] ? u->kids[KID_REDIS].last : "no output",
                              log);
        }
        if (u->stop)
            return hq_err_set(err, HQ_EAGAIN, "interrupted while redis-server started");
        if (hq_mono_ms() >= deadline)
            return hq_err_set(err, HQ_ETIMEDOUT,
                              "redis-server did not answer PING within %d ms; see %s",
                              HQ_UP_START_TIMEOUT_MS, log);
    }
    return 0;
}

/* Runs `redis-cli --cluster create` over the nodes (its output in log) and
 * waits for it; 0 or an error naming the log. */
static int create_cluster(struct up *u, const int *ports, const char *log, struct hq_err *err)
{
    char cli[PATH_MAX], addr[UP_NODES][32];
    if (find_on_path("redis-cli", cli, sizeof(cli)) != 0)
        return hq_err_set(
            err, HQ_ENOTFOUND,
            "redis-cli is not installed (apt-get install redis-tools): --cluster needs it");
    const char *argv[UP_NODES + 8];
    int n = 0;
    argv[n++] = cli;
    argv[n++] = "--cluster";
    argv[n++] = "create";
    for (int i = 0; i < UP_NODES; i++) {
        snprintf(addr[i], sizeof(addr[i]), "127.0.0.1:%d", ports[i]);
        argv[n++] = addr[i];
    }
    argv[n++] = "--cluster-replicas";
    argv[n++] = "1";
    argv[n++] = "--cluster-yes";
    argv[n] = NULL;
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return hq_err_set(err, HQ_EIO, "cannot create %s: %s", log, strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(fd);
        return hq_err_set(err, HQ_EIO, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(cli, (char *const *)argv);
        _exit(127);
    }
    close(fd);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return hq_err_set(err, HQ_EIO, "redis-cli --cluster create failed; see %s", log);
    (void)u;
    return 0;
}

/* 1 when every node says cluster_state:ok. */
static int cluster_ok(const int *ports)
{
    for (int i = 0; i < UP_NODES; i++) {
        char url[64];
        snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", ports[i]);
        struct hq_err err = {0};
        redisContext *c = hq_redis_connect(url, HQ_UP_PING_EVERY_MS * 4, &err);
        if (!c)
            return 0;
        redisReply *r = hq_redis_cmdf(c, &err, "CLUSTER INFO");
        int ok = r && r->type == REDIS_REPLY_STRING && strstr(r->str, "cluster_state:ok");
        if (r)
            freeReplyObject(r);
        redisFree(c);
        if (!ok)
            return 0;
    }
    return 1;
}

/* --cluster: six cluster-enabled redis-server children on free loopback ports
 * (data in .hookq/cluster/<i>, made afresh each run: the ports are new each
 * time, and a cluster's nodes.conf names its peers' ports), joined by
 * redis-cli into three primaries with a replica each, the settings the
 * scale-out tests use (node timeout 2 s, full coverage not required). */
static int start_cluster(struct up *u, struct hq_err *err)
{
    char base[PATH_MAX];
    snprintf(base, sizeof(base), "%s/cluster", u->home);
    if (mkdir(base, 0700) != 0 && errno != EEXIST)
        return hq_err_set(err, HQ_EIO, "cannot create %s: %s", base, strerror(errno));
    int ports[UP_NODES];
    int off = snprintf(u->redis_url, sizeof(u->redis_url), "redis-cluster://");
    for (int i = 0; i < UP_NODES; i++) {
        char dir[PATH_MAX + 16], log[PATH_MAX + 32], conf[PATH_MAX + 32], portbuf[16], busbuf[16];
        snprintf(dir, sizeof(dir), "%s/%d", base, i);
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return hq_err_set(err, HQ_EIO, "cannot create %s: %s", dir, strerror(errno));
        snprintf(log, sizeof(log), "%s/redis.log", dir);
        snprintf(conf, sizeof(conf), "%s/nodes.conf", dir);
        unlink(conf);
        char aof[PATH_MAX + 48];
        snprintf(aof, sizeof(aof), "%s/appendonlydir", dir);
        if (access(aof, F_OK) == 0) {
            char cmd[PATH_MAX + 96];
            snprintf(cmd, sizeof(cmd), "rm -rf '%s'", aof);
            if (system(cmd) != 0)
                return hq_err_set(err, HQ_EIO, "cannot clear %s", aof);
        }
        int port = free_loopback_port(), bus = free_loopback_port();
        if (port <= 0 || bus <= 0)
            return hq_err_set(err, HQ_EIO, "no free loopback port for redis-server");
        ports[i] = port;
        snprintf(portbuf, sizeof(portbuf), "%d", port);
        snprintf(busbuf, sizeof(busbuf), "%d", bus);
        const char *argv[] = {u->redis_bin, "--port",
                              portbuf,      "--bind",
                              "127.0.0.1",  "--dir",
                              dir,          "--cluster-enabled",
                              "yes",        "--cluster-config-file",
                              conf,         "--cluster-port",
                              busbuf,       "--cluster-node-timeout",
                              "2000",       "--cluster-require-full-coverage",
                              "no",         "--appendonly",
                              "yes",        "--save",
                              "",           "--logfile",
                              log,          "--daemonize",
                              "no",         NULL};
        int rc = spawn(u, KID_REDIS + i, u->redis_bin, argv, NULL, err);
        if (rc)
            return rc;
        off += snprintf(u->redis_url + off, sizeof(u->redis_url) - (size_t)off, "%s127.0.0.1:%d",
                        i ? "," : "", port);
    }
    long long deadline = hq_mono_ms() + HQ_UP_START_TIMEOUT_MS;
    for (int i = 0; i < UP_NODES; i++) {
        char url[64];
        snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", ports[i]);
        while (!redis_answers(url, HQ_UP_PING_EVERY_MS * 4)) {
            pump(u, HQ_UP_PING_EVERY_MS);
            if (u->died >= 0) {
                int d = u->died;
                u->died = -1;
                return hq_err_set(err, HQ_EIO, "redis-server node %d exited at start-up (%s)",
                                  d - KID_REDIS,
                                  u->kids[d].last[0] ? u->kids[d].last : "no output");
            }
            if (u->stop)
                return hq_err_set(err, HQ_EAGAIN, "interrupted while redis-server started");
            if (hq_mono_ms() >= deadline)
                return hq_err_set(err, HQ_ETIMEDOUT, "redis-server node %d did not answer PING", i);
        }
    }
    char log[PATH_MAX + 32];
    snprintf(log, sizeof(log), "%s/cluster-create.log", base);
    int rc = create_cluster(u, ports, log, err);
    if (rc)
        return rc;
    deadline = hq_mono_ms() + HQ_UP_START_TIMEOUT_MS * 3;
    while (!cluster_ok(ports)) {
        pump(u, 100);
        if (u->stop)
            return hq_err_set(err, HQ_EAGAIN, "interrupted while the cluster formed");
        if (hq_mono_ms() >= deadline)
            return hq_err_set(err, HQ_ETIMEDOUT,
                              "the cluster did not reach cluster_state:ok within %d ms; see %s",
                              HQ_UP_START_TIMEOUT_MS * 3, log);
    }
    printf("cluster: 3 primaries + 3 replicas on %s\n", u->redis_url + strlen("redis-cluster://"));
    return 0;
}

/* ---- Demo endpoints ------------------------------------------------------------------------ */

static const struct {
    const char *name;
    const char *filter;
    const char *description;
} demo_eps[HQ_DEMO_ROUTES] = {
    [HQ_DEMO_OK] = {"demo", "*", "hookq up: the demo receiver, every event"},
    [HQ_DEMO_FAILING] = {"demo-failing", "invoice.*",
                         "hookq up: always answers 503, to show retries and dead letters"},
};

/* Reads the ids `up` registered last time (one per line) from .hookq/demo-endpoints. */
static void load_ids(const struct up *u, char ids[HQ_DEMO_ROUTES][HQ_ENDPOINT_ID_MAX + 1])
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/demo-endpoints", u->home);
    memset(ids, 0, sizeof(char[HQ_DEMO_ROUTES][HQ_ENDPOINT_ID_MAX + 1]));
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[256];
    for (int i = 0; i < HQ_DEMO_ROUTES && fgets(line, sizeof(line), f); i++) {
        line[strcspn(line, "\r\n")] = '\0';
        size_t n = strlen(line);
        if (n <= HQ_ENDPOINT_ID_MAX)
            memcpy(ids[i], line, n + 1);
    }
    fclose(f);
}

static void save_ids(const struct up *u, char ids[HQ_DEMO_ROUTES][HQ_ENDPOINT_ID_MAX + 1])
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/demo-endpoints", u->home);
    FILE *f = fopen(path, "w");
    if (!f)
        return; /* only costs a re-registration next time */
    for (int i = 0; i < HQ_DEMO_ROUTES; i++)
        fprintf(f, "%s\n", ids[i]);
    fclose(f);
}

/* Fills the fields `up` decides; e's owned fields are replaced. */
static void demo_fields(struct hq_endpoint *e, int route, const char *url)
{
    free(e->name);
    free(e->url);
    free(e->description);
    hq_endpoint_free_list(&e->events, &e->nevents);
    e->name = hq_strdup(demo_eps[route].name);
    e->url = hq_strdup(url);
    e->description = hq_strdup(demo_eps[route].description);
    e->events = hq_calloc(1, sizeof(char *));
    e->events[0] = hq_strdup(demo_eps[route].filter);
    e->nevents = 1;
    e->enabled = 1;
}

/* Registers (or, when .hookq/demo-endpoints names endpoints that still
 * exist, re-points) the two demo endpoints and gives their keys to the receiver. */
static int setup_endpoints(struct up *u, struct hq_err *err)
{
    struct hq_redis_conn *conn = hq_redis_conn_open(u->redis_url, HQ_REDIS_CONNECT_TIMEOUT_MS, err);
    if (!conn)
        return err->code;
    struct hq_layout L = {0};
    redisContext *c = NULL;
    if (hq_layout_wait_migration(conn, u->prefix, &L, HQ_UP_START_TIMEOUT_MS, err) != 0 ||
        !(c = hq_redis_conn_node(conn, L.reg_slot, err))) {
        hq_layout_free(&L);
        hq_redis_conn_free(conn);
        return err->code;
    }
    if (L.tagged)
        printf("layout: %u partitions\n", L.nparts);
    char ids[HQ_DEMO_ROUTES][HQ_ENDPOINT_ID_MAX + 1];
    load_ids(u, ids);
    /* The receiver is on loopback: checked as an endpoint created with
     * --allow-private would be. */
    struct hq_netguard guard = {.allow_private = 1};
    int rc = 0;
    for (int route = 0; route < HQ_DEMO_ROUTES && rc == 0; route++) {
        char url[128];
        hq_demo_receiver_url(u->rcv, (enum hq_demo_route)route, url, sizeof(url));
        rc = hq_endpoint_check_url(url, &guard, err);
        if (rc == 0)
            rc = hq_endpoint_check_filter(demo_eps[route].filter, err);
        if (rc)
            break;
        struct hq_endpoint old, e;
        memset(&old, 0, sizeof(old));
        memset(&e, 0, sizeof(e));
        struct hq_err gerr = {0};
        int reused = 0;
        if (ids[route][0] && hq_endpoint_get(c, L.reg, ids[route], &old, &gerr) == 0 &&
            hq_endpoint_get(c, L.reg, ids[route], &e, &gerr) == 0) {
            demo_fields(&e, route, url);
            rc = hq_endpoint_save(c, L.reg, &old, &e, err);
            reused = 1;
        } else {
            demo_fields(&e, route, url);
            rc = hq_endpoint_create(c, L.reg, &e, err);
        }
        if (rc == 0)
            rc = hq_demo_receiver_set_keys(u->rcv, (enum hq_demo_route)route, e.key1, e.key2, err);
        if (rc == 0) {
            snprintf(ids[route], sizeof(ids[route]), "%s", e.id);
            printf("endpoint %s %s (%s) -> %s, events %s\n", demo_eps[route].name,
                   reused ? "reused" : "created", e.id, url, demo_eps[route].filter);
        }
        hq_endpoint_free(&old);
        hq_endpoint_free(&e);
    }
    hq_layout_free(&L);
    hq_redis_conn_free(conn);
    if (rc == 0)
        save_ids(u, ids);
    return rc;
}

/* ---- Demo producer -------------------------------------------------------------------------- */

static int produce_one(struct up *u, const char *type)
{
    unsigned long n = ++u->produced;
    long long ms = hq_now_ms();
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char when[32], id[64], body[512];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(id, sizeof(id), "evt_%lld_%lu", ms, n);
    if (strncmp(type, "invoice.", 8) == 0)
        snprintf(
            body, sizeof(body),
            "{\"type\":\"%s\",\"timestamp\":\"%s\",\"data\":{\"invoice\":\"inv_%04lu\",\"amount_cents\":%lu,\"currency\":\"eur\"}}",
            type, when, n, 1000 + (n * 337) % 9000);
    else
        snprintf(
            body, sizeof(body),
            "{\"type\":\"%s\",\"timestamp\":\"%s\",\"data\":{\"user\":\"usr_%04lu\",\"email\":\"user%lu@example.com\"}}",
            type, when, n, n);
    struct hookq_event ev = {
        .type = type, .payload = body, .payload_len = strlen(body), .id = id, .ts_ms = ms};
    char entry[64], err[256];
    if (hookq_produce(u->prod, &ev, entry, sizeof(entry), err, sizeof(err)) != 0) {
        fprintf(stderr, "hookq up: produce %s: %s\n", type, err);
        return -1;
    }
    printf("produced %s id=%s -> entry %s\n", type, id, entry);
    return 0;
}

/* ---- The command ---------------------------------------------------------------------------- */

static int prepare_home(struct up *u, struct hq_err *err)
{
    char cwd[1000];
    if (!getcwd(cwd, sizeof(cwd)))
        return hq_err_set(err, HQ_EIO, "cannot read the current directory: %s", strerror(errno));
    snprintf(u->home, sizeof(u->home), "%s/.hookq", cwd);
    if (mkdir(u->home, 0700) != 0 && errno != EEXIST)
        return hq_err_set(err, HQ_EIO, "cannot create %s: %s", u->home, strerror(errno));
    return 0;
}

static int start_workers(struct up *u, struct hq_err *err)
{
    static const char *const set_env[] = {
        /* The demo receiver is on loopback, which the SSRF guard blocks by default. */
        "HOOKQ_ALLOW_PRIVATE=1",
        /* A short retry policy so retries and dead-lettering show within ~10 s. */
        "HOOKQ_MAX_ATTEMPTS=3",
        "HOOKQ_BACKOFF_BASE=2s",
        "HOOKQ_BACKOFF_FACTOR=2",
        NULL,
    };
    static const char *const cmds[] = {
        [KID_WORKER] = "worker", [KID_SCHEDULER] = "scheduler", [KID_API] = "api"};
    for (int k = KID_WORKER; k <= KID_API; k++) {
        const char *argv[18];
        int n = 0;
        argv[n++] = u->exe;
        argv[n++] = cmds[k];
        argv[n++] = "--redis-url";
        argv[n++] = u->redis_url;
        argv[n++] = "--prefix";
        argv[n++] = u->prefix;
        if (u->log_level) {
            argv[n++] = "--log-level";
            argv[n++] = u->log_level;
        }
        if (k == KID_WORKER) {
            argv[n++] = "--metrics";
            argv[n++] = u->worker_metrics;
        } else if (k == KID_API) {
            argv[n++] = "--listen";
            argv[n++] = u->api_listen;
            argv[n++] = "--worker-metrics";
            argv[n++] = u->metrics_url;
            argv[n++] = "--shutdown-delay"; /* no load balancer to tell: stop at once */
            argv[n++] = "0";
        }
        argv[n] = NULL;
        int rc = spawn(u, k, u->exe, argv, set_env, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* The API's address: its default port when free, else any free one. */
static void choose_api_listen(struct up *u)
{
    int port = bind_loopback(HQ_API_PORT_DEFAULT) > 0 ? HQ_API_PORT_DEFAULT : free_loopback_port();
    snprintf(u->api_listen, sizeof(u->api_listen), "127.0.0.1:%d", port);
    snprintf(u->worker_metrics, sizeof(u->worker_metrics), "127.0.0.1:%d", free_loopback_port());
    snprintf(u->metrics_url, sizeof(u->metrics_url), "http://%s/metrics", u->worker_metrics);
}

/* Creates the demo's admin API key and prints it with the console's address:
 * the one time the key is shown, as `hookq api-key create` does. */
static int create_admin_key(struct up *u, struct hq_err *err)
{
    struct hq_redis_conn *conn = hq_redis_conn_open(u->redis_url, HQ_REDIS_CONNECT_TIMEOUT_MS, err);
    if (!conn)
        return err->code;
    struct hq_layout L = {0};
    redisContext *c = NULL;
    char key[HQ_APIKEY_STR_MAX];
    struct hq_apikey k;
    int rc = hq_layout_load(conn, u->prefix, &L, err);
    if (rc == 0 && !(c = hq_redis_conn_node(conn, L.reg_slot, err)))
        rc = err->code;
    if (rc == 0)
        rc = hq_apikey_create(c, L.reg, "hookq up", HQ_SCOPE_ADMIN, "", key, &k, err);
    hq_layout_free(&L);
    hq_redis_conn_free(conn);
    if (rc != 0)
        return rc;
    printf("console: http://%s/  (API: http://%s/v1, OpenAPI: /v1/openapi.json)\n", u->api_listen,
           u->api_listen);
    printf("api key (admin, shown once): %s\n", key);
    memset(key, 0, sizeof(key));
    return 0;
}

/* Runs until Ctrl-C, SIGTERM, --duration or a child's death. */
static void run_demo(struct up *u, long long duration_ms)
{
    static const char *const first[] = {"user.created", "invoice.paid", "invoice.paid",
                                        "invoice.paid"};
    static const char *const cycle[] = {"invoice.paid", "user.created", "invoice.refunded"};
    for (size_t i = 0; i < sizeof(first) / sizeof(*first); i++)
        (void)produce_one(u, first[i]);
    long long start = hq_mono_ms();
    long long next = start + HQ_UP_PRODUCE_EVERY_MS;
    size_t k = 0;
    while (!u->stop && u->died < 0) {
        long long t = hq_mono_ms();
        if (duration_ms > 0 && t >= start + duration_ms) {
            fprintf(stderr, "hookq up: --duration reached: stopping\n");
            return;
        }
        if (t >= next) {
            (void)produce_one(u, cycle[k++ % (sizeof(cycle) / sizeof(*cycle))]);
            next += HQ_UP_PRODUCE_EVERY_MS;
            continue;
        }
        long long wake = next;
        if (duration_ms > 0 && start + duration_ms < wake)
            wake = start + duration_ms;
        pump(u, wake - t);
    }
    if (u->stop)
        fprintf(stderr, "hookq up: stopping (signal)\n");
}

static int report_death(struct up *u)
{
    struct child *c = &u->kids[u->died];
    char how[64];
    describe_status(c->status, how, sizeof(how));
    fprintf(stderr, "hookq up: %s (pid %d) exited unexpectedly (%s)%s%s\n", c->name,
            (int)c->started, how, c->last[0] ? ": " : "", c->last);
    return 1;
}

int hq_cmd_up(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* lines show as they happen, pipes included */
    struct hq_common_opts common;
    hq_common_opts_init(&common);
    long long duration_ms = 0;
    int cluster = 0;
    struct hq_opt opts[] = {
        {"duration", HQ_OPT_DURATION, &duration_ms, "DUR",
         "stop by itself after DUR (default: until Ctrl-C)", HQ_OPTF_NOENV, 0, 86400000LL * 365, 0},
        {"cluster", HQ_OPT_BOOL, &cluster, NULL,
         "run on a local Redis Cluster: 3 primaries + 3 replicas (fresh data each run)",
         HQ_OPTF_NOENV, 0, 0, 0},
        HQ_COMMON_OPTS(&common),
        {0},
    };
    static const struct hq_cmd_help help = {
        "up [--duration DUR] [--redis-url URL | --cluster]",
        "Runs the whole system on this machine: a private redis-server (data in ./.hookq/)\n"
        "unless --redis-url is given (or, with --cluster, a private 6-node Redis Cluster),\n"
        "a worker, a scheduler, the API and web console (`hookq api`, with an admin key\n"
        "printed once), a demo receiver that\n"
        "verifies signatures, two demo endpoints (one always failing, to show retries\n"
        "and dead letters) and a producer writing an event every 2 s. Ctrl-C stops it all."};
    int npos = 0;
    char **pos = NULL;
    struct hq_err err = {0};
    int rc = hq_cli_parse(opts, &help, "up", argc, argv, &npos, &pos);
    if (rc >= 0)
        return rc;
    if (npos > 0) {
        rc = fail(2, "unexpected argument '%s' (see --help)", pos[0]);
        free(pos);
        return rc;
    }
    free(pos);
    if (hq_common_opts_apply(&common, &err) != 0)
        return hq_cli_fail(2, "up", err.msg);
    int redis_given = opts[2].given;
    if (redis_given && cluster)
        return hq_cli_fail(2, "up",
                           "--cluster starts its own cluster: give either it or --redis-url (a "
                           "redis-cluster:// URL runs on an existing cluster)");

    struct up u;
    memset(&u, 0, sizeof(u));
    u.sigfd = -1;
    u.died = -1;
    u.prefix = common.prefix;
    u.log_level = opts[4].given ? common.log_level : NULL;
    u.cluster = cluster;
    static const char *const names[KIDS] = {"redis",   "redis-2", "redis-3",   "redis-4", "redis-5",
                                            "redis-6", "worker",  "scheduler", "api"};
    for (int i = 0; i < KIDS; i++) {
        u.kids[i].name = names[i];
        u.kids[i].out_fd = -1;
    }
    ssize_t len = readlink("/proc/self/exe", u.exe, sizeof(u.exe) - 1);
    if (len <= 0)
        return fail(1, "cannot find this executable (/proc/self/exe): %s", strerror(errno));
    u.exe[len] = '\0';
    if (!redis_given && find_on_path("redis-server", u.redis_bin, sizeof(u.redis_bin)) != 0)
        return fail(
            1,
            "redis-server is not installed: apt-get install redis-server (or use ./run up, which installs it), or pass --redis-url");

    /* Signals are read from a signalfd: blocked before any thread starts. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigaction(SIGPIPE, &ign, NULL);
    u.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (u.sigfd < 0)
        return fail(1, "signalfd: %s", strerror(errno));

    int status = 0;
    if (prepare_home(&u, &err) != 0)
        goto failed;
    if (redis_given) {
        snprintf(u.redis_url, sizeof(u.redis_url), "%s", common.redis_url);
        redisContext *c = hq_redis_connect(u.redis_url, HQ_REDIS_CONNECT_TIMEOUT_MS, &err);
        if (!c)
            goto failed;
        redisFree(c);
    } else if (cluster ? start_cluster(&u, &err) != 0 : start_redis(&u, &err) != 0) {
        goto failed;
    }
    u.rcv = hq_demo_receiver_start(stdout, &err);
    choose_api_listen(&u);
    if (!u.rcv || setup_endpoints(&u, &err) != 0 || start_workers(&u, &err) != 0 ||
        create_admin_key(&u, &err) != 0)
        goto failed;
    char perr[256];
    if (hookq_producer_connect(u.redis_url, u.prefix, &u.prod, perr, sizeof(perr)) != 0) {
        hq_err_set(&err, HQ_EREDIS, "producer: %s", perr);
        goto failed;
    }
    if (redis_given)
        printf("pids: redis=external worker=%d scheduler=%d api=%d\n", (int)u.kids[KID_WORKER].pid,
               (int)u.kids[KID_SCHEDULER].pid, (int)u.kids[KID_API].pid);
    else if (cluster)
        printf("pids: redis=%d,%d,%d,%d,%d,%d worker=%d scheduler=%d api=%d\n", (int)u.kids[0].pid,
               (int)u.kids[1].pid, (int)u.kids[2].pid, (int)u.kids[3].pid, (int)u.kids[4].pid,
               (int)u.kids[5].pid, (int)u.kids[KID_WORKER].pid, (int)u.kids[KID_SCHEDULER].pid,
               (int)u.kids[KID_API].pid);
    else
        printf("pids: redis=%d worker=%d scheduler=%d api=%d\n", (int)u.kids[KID_REDIS].pid,
               (int)u.kids[KID_WORKER].pid, (int)u.kids[KID_SCHEDULER].pid,
               (int)u.kids[KID_API].pid);
    fprintf(stderr, "hookq up: running (redis %s, prefix %s); Ctrl-C stops everything\n",
            redis_given ? "given by --redis-url" : u.redis_url, u.prefix);
    run_demo(&u, duration_ms);
    goto shutdown;

failed:
    if (u.stop && err.code == HQ_EAGAIN) {
        fprintf(stderr, "hookq up: stopping (signal)\n");
    } else {
        hq_cli_fail(1, "up", err.msg);
        status = 1;
    }
shutdown:
    if (u.died >= 0)
        status = report_death(&u);
    stop_children(&u, (1u << KID_WORKER) | (1u << KID_SCHEDULER) | (1u << KID_API));
    if (u.prod)
        hookq_producer_free(u.prod);
    if (u.rcv) {
        struct hq_demo_stats st;
        hq_demo_receiver_stats(u.rcv, &st);
        hq_demo_receiver_stop(u.rcv);
        printf(
            "summary: produced %lu events; demo received %lu, demo-failing received %lu (%lu valid signatures, %lu invalid)\n",
            u.produced, st.received[HQ_DEMO_OK], st.received[HQ_DEMO_FAILING], st.valid,
            st.invalid);
    }
    stop_children(&u, REDIS_MASK);
    if (u.died >= 0 && status == 0)
        status = report_death(&u);
    close(u.sigfd);
    return status;
}
