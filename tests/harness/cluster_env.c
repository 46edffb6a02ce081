/* Redis Cluster fixtures. See cluster_env.h.
 *
 * The cluster is built the way an operator builds one (redis-server
 * --cluster-enabled yes, then redis-cli --cluster create), not by hand with
 * CLUSTER MEET/ADDSLOTS/REPLICATE, so the tests see the slot split and replica
 * placement users get. Readiness is polled from every node: redis-cli returns
 * when its own checks pass, but other nodes may still be learning the
 * topology by gossip. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/cluster_env.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLI_WAIT_MS 60000 /* redis-cli --cluster create took ~3 s in the study */

/* ---- Nodes ------------------------------------------------------------------------ */

void hq_test_cluster_node_start(struct hq_test_redis *r, int *bus_port, const char *extra)
{
    *bus_port = hq_test_free_port();
    char args[sizeof(r->extra)];
    int w = snprintf(args, sizeof(args),
                     "--cluster-enabled yes --cluster-config-file nodes.conf --cluster-port %d "
                     "--cluster-node-timeout 2000 --cluster-require-full-coverage no "
                     "--repl-ping-replica-period 1 %s",
                     *bus_port, extra ? extra : "");
    assert_true(w > 0 && (size_t)w < sizeof(args));
    hq_test_redis_start(r, args);
    /* hq_test_redis_start picked the client port after the bus port was
     * chosen; the two can only clash if the kernel handed out the same free
     * port twice, and then the server would not have come up. */
    assert_int_not_equal(r->port, *bus_port);
}

redisContext *hq_test_cluster_connect(const struct hq_test_cluster *c, int i)
{
    assert_true(i >= 0 && i < c->n);
    return hq_test_redis_connect(&c->node[i]);
}

int hq_test_cluster_node_of_port(const struct hq_test_cluster *c, int port)
{
    for (int i = 0; i < c->n; i++)
        if (c->node[i].port == port)
            return i;
    return -1;
}

void hq_test_cluster_destroy(struct hq_test_cluster *c)
{
    for (int i = 0; i < c->n; i++)
        hq_test_redis_destroy(&c->node[i]);
    c->n = 0;
}

static void start_nodes(struct hq_test_cluster *c, int primaries, int replicas, const char *extra)
{
    memset(c, 0, sizeof(*c));
    int n = primaries * (1 + replicas);
    assert_true(primaries >= 1 && replicas >= 0 && n <= HQ_TEST_CLUSTER_NODES_MAX);
    c->primaries = primaries;
    c->replicas = replicas;
    for (int i = 0; i < n; i++) {
        hq_test_cluster_node_start(&c->node[i], &c->bus_port[i], extra);
        c->n++; /* counted at once, so destroy stops it if a later start fails */
    }
}

void hq_test_cluster_start_single(struct hq_test_cluster *c, const char *extra)
{
    start_nodes(c, 1, 0, extra);
    redisContext *conn = hq_test_cluster_connect(c, 0);
    redisReply *r = hq_test_cmd(conn, "CLUSTER ADDSLOTSRANGE 0 16383");
    if (r->type != REDIS_REPLY_STATUS)
        fail_msg("CLUSTER ADDSLOTSRANGE 0 16383: %s", r->str ? r->str : "(not a status)");
    freeReplyObject(r);
    redisFree(conn);
    if (!hq_test_cluster_wait_ok(c, HQ_TEST_CLUSTER_WAIT_MS))
        fail_msg("single cluster node on port %d not ok within %d ms", c->node[0].port,
                 HQ_TEST_CLUSTER_WAIT_MS);
}

/* ---- redis-cli --cluster create ---------------------------------------------- */

struct cli_run {
    pid_t pid;
    int status; /* raw waitpid status once reaped */
};

static int cli_exited(void *arg)
{
    struct cli_run *run = arg;
    int status;
    pid_t r = waitpid(run->pid, &status, WNOHANG);
    if (r == run->pid) {
        run->status = status;
        return 1;
    }
    return r < 0 && errno != EINTR; /* lost the child: stop waiting, fail below */
}

static void print_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[512];
    fprintf(stderr, "---- %s ----\n", path);
    while (fgets(line, sizeof(line), f))
        fputs(line, stderr);
    fclose(f);
}

static void cluster_create(struct hq_test_cluster *c)
{
    char addr[HQ_TEST_CLUSTER_NODES_MAX][32], reps[16], log[sizeof(c->node[0].dir) + 32];
    const char *argv[HQ_TEST_CLUSTER_NODES_MAX + 8];
    int argc = 0;
    argv[argc++] = "redis-cli";
    argv[argc++] = "--cluster";
    argv[argc++] = "create";
    for (int i = 0; i < c->n; i++) {
        snprintf(addr[i], sizeof(addr[i]), "127.0.0.1:%d", c->node[i].port);
        argv[argc++] = addr[i];
    }
    snprintf(reps, sizeof(reps), "%d", c->replicas);
    argv[argc++] = "--cluster-replicas";
    argv[argc++] = reps;
    argv[argc++] = "--cluster-yes";
    argv[argc] = NULL;
    snprintf(log, sizeof(log), "%s/cluster-create.log", c->node[0].dir);

    pid_t parent = getpid();
    struct cli_run run = {.pid = fork(), .status = -1};
    assert_true(run.pid >= 0);
    if (run.pid == 0) {
        /* As hq_test.c's children: die with the test binary, async-signal-safe calls only. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(127);
        int in = open("/dev/null", O_RDONLY);
        int out = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0)
            _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        close(in);
        close(out);
        execvp("redis-cli", (char *const *)argv);
        _exit(127);
    }
    if (!hq_test_wait(cli_exited, &run, CLI_WAIT_MS)) {
        kill(run.pid, SIGKILL);
        waitpid(run.pid, NULL, 0);
        print_file(log);
        fail_msg("redis-cli --cluster create did not finish within %d ms", CLI_WAIT_MS);
    }
    if (run.status == -1 || !WIFEXITED(run.status) || WEXITSTATUS(run.status) != 0) {
        print_file(log);
        fail_msg("redis-cli --cluster create failed (status %d); see %s", run.status, log);
    }
}

void hq_test_cluster_start(struct hq_test_cluster *c, int primaries, int replicas,
                           const char *extra)
{
    start_nodes(c, primaries, replicas, extra);
    cluster_create(c);
    if (!hq_test_cluster_wait_ok(c, HQ_TEST_CLUSTER_WAIT_MS))
        fail_msg("cluster of %d primaries and %d replicas each not ok within %d ms", primaries,
                 replicas, HQ_TEST_CLUSTER_WAIT_MS);
}

/* ---- CLUSTER NODES ---------------------------------------------------------------- */

/* Copies field (n bytes at s) into dst (cap bytes); -1 when it does not fit. */
static int field_copy(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        return -1;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

/* "a-b" or "a" into [*a, *b]; -1 for anything else ("[...]" migrations included). */
static int slot_range(const char *s, size_t n, int *a, int *b)
{
    char buf[16];
    if (field_copy(buf, sizeof(buf), s, n) != 0 || buf[0] < '0' || buf[0] > '9')
        return -1;
    char *end;
    long x = strtol(buf, &end, 10), y = x;
    if (*end == '-')
        y = strtol(end + 1, &end, 10);
    if (*end != '\0' || x < 0 || y < x || y > 16383)
        return -1;
    *a = (int)x;
    *b = (int)y;
    return 0;
}

/* One CLUSTER NODES line into v; -1 when malformed. */
static int view_line(struct hq_test_cluster_view *v, const char *line, size_t len, char slots[][24],
                     int *nslots, int max_slots)
{
    const char *f[8];
    size_t fl[8];
    int nf = 0;
    size_t i = 0;
    *nslots = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && line[i] != ' ')
            i++;
        if (nf < 8) {
            f[nf] = line + start;
            fl[nf] = i - start;
            nf++;
        } else if (*nslots < max_slots &&
                   field_copy(slots[*nslots], 24, line + start, i - start) == 0) {
            (*nslots)++;
        }
        i++;
    }
    if (nf < 8 || v->n == HQ_TEST_CLUSTER_NODES_MAX)
        return -1;
    struct hq_test_cluster_peer *p = &v->peer[v->n];
    memset(p, 0, sizeof(*p));
    if (field_copy(p->id, sizeof(p->id), f[0], fl[0]) != 0 ||
        field_copy(p->master_id, sizeof(p->master_id), f[3], fl[3]) != 0)
        return -1;
    /* ip:port@cport[,hostname]: the port follows the last ':' before '@'. */
    const char *at = memchr(f[1], '@', fl[1]);
    size_t alen = at ? (size_t)(at - f[1]) : fl[1];
    const char *colon = NULL;
    for (size_t k = alen; k-- > 0;)
        if (f[1][k] == ':') {
            colon = f[1] + k;
            break;
        }
    if (!colon || field_copy(p->ip, sizeof(p->ip), f[1], (size_t)(colon - f[1])) != 0)
        return -1;
    p->port = atoi(colon + 1);
    char flags[128];
    if (field_copy(flags, sizeof(flags), f[2], fl[2]) != 0)
        return -1;
    p->primary = strstr(flags, "master") != NULL;
    p->failing = strstr(flags, "fail") || strstr(flags, "handshake") || strstr(flags, "noaddr");
    if (strstr(flags, "myself"))
        v->self = v->n;
    v->n++;
    return 0;
}

int hq_test_cluster_view(redisContext *conn, struct hq_test_cluster_view *v)
{
    memset(v, 0, sizeof(*v));
    for (int s = 0; s < 16384; s++)
        v->owner[s] = -1;
    redisReply *r = redisCommand(conn, "CLUSTER NODES");
    if (!r || r->type != REDIS_REPLY_STRING) {
        if (r)
            freeReplyObject(r);
        return -1;
    }
    int rc = 0;
    static char slots[4096][24]; /* one line's slot fields; the harness runs on one thread */
    for (const char *line = r->str, *end = r->str + r->len; line < end && rc == 0;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t len = nl ? (size_t)(nl - line) : (size_t)(end - line);
        int nslots = 0;
        if (len > 0) {
            if (view_line(v, line, len, slots, &nslots, 4096) != 0) {
                rc = -1;
                break;
            }
            for (int k = 0; k < nslots; k++) {
                int a, b;
                if (slot_range(slots[k], strlen(slots[k]), &a, &b) != 0)
                    continue; /* "[slot->-id]": migrating, still owned by this node */
                for (int s = a; s <= b; s++)
                    v->owner[s] = (int16_t)(v->n - 1);
            }
        }
        line += len + 1;
    }
    freeReplyObject(r);
    if (rc != 0) {
        memset(v, 0, sizeof(*v));
        for (int s = 0; s < 16384; s++)
            v->owner[s] = -1;
    }
    return rc;
}

/* ---- Waiting for a healthy cluster ------------------------------------------------ */

struct ok_arg {
    struct hq_test_cluster *c;
    struct hq_test_cluster_view *view; /* scratch, heap */
    char why[256];                     /* what was missing at the last poll */
};

/* INFO-style "name:value" line of text into out; -1 when absent. */
static int info_field(const char *text, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, name, nl) == 0 && p[nl] == ':') {
            size_t k = strcspn(p + nl + 1, "\r\n");
            if (k >= n)
                k = n - 1;
            memcpy(out, p + nl + 1, k);
            out[k] = '\0';
            return 0;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -1;
}

/* This node's view as one comparable string: per running peer, its port,
 * role and primary's port; then the owner port of each slot range. */
static void signature(const struct hq_test_cluster *c, const struct hq_test_cluster_view *v,
                      char *out, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(out + used, n - used, __VA_ARGS__);                                      \
        if (w_ > 0 && (size_t)w_ < n - used)                                                       \
            used += (size_t)w_;                                                                    \
    } while (0)
    for (int i = 0; i < c->n; i++) {
        if (c->node[i].pid <= 0)
            continue;
        for (int k = 0; k < v->n; k++) {
            if (v->peer[k].port != c->node[i].port)
                continue;
            int mport = 0;
            for (int m = 0; m < v->n; m++)
                if (strcmp(v->peer[m].id, v->peer[k].master_id) == 0)
                    mport = v->peer[m].port;
            PUT("%d:%c:%d ", v->peer[k].port, v->peer[k].primary ? 'P' : 'R', mport);
        }
    }
    for (int s = 0; s < 16384;) {
        int o = v->owner[s], a = s;
        while (s < 16384 && v->owner[s] == o)
            s++;
        PUT("%d-%d:%d ", a, s - 1, o >= 0 ? v->peer[o].port : -1);
    }
#undef PUT
}

/* Replicas CLUSTER SLOTS lists through conn, counted once per primary; -1
 * when the reply is not a slot table. A primary lists a replica only once it
 * has heard a non-zero replication offset from it (Redis 7.0), some time after
 * CLUSTER NODES already shows the replica, and clients find replicas there. */
static int slots_replicas(redisContext *conn)
{
    redisReply *r = redisCommand(conn, "CLUSTER SLOTS");
    int ports[HQ_TEST_CLUSTER_NODES_MAX], most[HQ_TEST_CLUSTER_NODES_MAX], np = 0, total = -1;
    if (r && r->type == REDIS_REPLY_ARRAY) {
        total = 0;
        for (size_t i = 0; i < r->elements && total >= 0; i++) {
            const redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
                e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2) {
                total = -1;
                break;
            }
            int port = (int)e->element[2]->element[1]->integer, k = 0;
            while (k < np && ports[k] != port)
                k++;
            if (k == np) {
                if (np == HQ_TEST_CLUSTER_NODES_MAX) {
                    total = -1;
                    break;
                }
                ports[np] = port;
                most[np++] = 0;
            }
            if ((int)e->elements - 3 > most[k])
                most[k] = (int)e->elements - 3;
        }
        for (int k = 0; k < np && total >= 0; k++)
            total += most[k];
    }
    if (r)
        freeReplyObject(r);
    return total;
}

/* One poll of one running node; 1 when it is ready, else 0 with a->why set. */
static int node_ok(struct ok_arg *a, int i, int running, char *sig, size_t sig_n)
{
    struct hq_test_cluster *c = a->c;
    int port = c->node[i].port;
    struct timeval tv = {0, 500000};
    redisContext *conn = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!conn || conn->err) {
        snprintf(a->why, sizeof(a->why), "node %d: cannot connect", port);
        if (conn)
            redisFree(conn);
        return 0;
    }
    redisSetTimeout(conn, tv);
    int ok = 0;
    char val[64];
    redisReply *r = redisCommand(conn, "CLUSTER INFO");
    if (!r || r->type != REDIS_REPLY_STRING) {
        snprintf(a->why, sizeof(a->why), "node %d: no CLUSTER INFO", port);
    } else if (info_field(r->str, "cluster_state", val, sizeof(val)) != 0 ||
               strcmp(val, "ok") != 0) {
        snprintf(a->why, sizeof(a->why), "node %d: cluster_state %s", port, val);
    } else if (info_field(r->str, "cluster_slots_assigned", val, sizeof(val)) != 0 ||
               atoi(val) != 16384) {
        snprintf(a->why, sizeof(a->why), "node %d: %s slots assigned", port, val);
    } else if (hq_test_cluster_view(conn, a->view) != 0) {
        snprintf(a->why, sizeof(a->why), "node %d: CLUSTER NODES unreadable", port);
    } else {
        const struct hq_test_cluster_view *v = a->view;
        int seen = 0, primaries = 0, replicas = 0, bad = 0;
        for (int k = 0; k < v->n; k++) {
            if (hq_test_cluster_node_of_port(c, v->peer[k].port) < 0 ||
                c->node[hq_test_cluster_node_of_port(c, v->peer[k].port)].pid <= 0)
                continue; /* a stopped node stays known (as failed) until forgotten */
            seen++;
            bad += v->peer[k].failing;
            if (v->peer[k].primary)
                primaries++;
            else
                replicas++;
        }
        signature(c, v, sig, sig_n);
        if (seen != running || bad) {
            snprintf(a->why, sizeof(a->why), "node %d: knows %d of %d running nodes, %d failing",
                     port, seen, running, bad);
        } else if (primaries != c->primaries || replicas != running - c->primaries) {
            snprintf(a->why, sizeof(a->why), "node %d: sees %d primaries and %d replicas", port,
                     primaries, replicas);
        } else if (slots_replicas(conn) != replicas) {
            snprintf(a->why, sizeof(a->why), "node %d: CLUSTER SLOTS lists %d of %d replicas", port,
                     slots_replicas(conn), replicas);
        } else if (!v->peer[v->self].primary) {
            /* A replica is ready when its replication link is up. */
            redisReply *rep = redisCommand(conn, "INFO replication");
            if (rep && rep->type == REDIS_REPLY_STRING &&
                info_field(rep->str, "master_link_status", val, sizeof(val)) == 0 &&
                strcmp(val, "up") == 0)
                ok = 1;
            else
                snprintf(a->why, sizeof(a->why), "node %d: replication link not up", port);
            if (rep)
                freeReplyObject(rep);
        } else {
            ok = 1;
        }
    }
    if (r)
        freeReplyObject(r);
    redisFree(conn);
    return ok;
}

static int cluster_ok(void *arg)
{
    struct ok_arg *a = arg;
    struct hq_test_cluster *c = a->c;
    static char first[8192], sig[8192];
    int running = 0;
    for (int i = 0; i < c->n; i++)
        running += c->node[i].pid > 0;
    int first_port = 0;
    for (int i = 0; i < c->n; i++) {
        if (c->node[i].pid <= 0)
            continue;
        if (!node_ok(a, i, running, first_port ? sig : first, sizeof(sig)))
            return 0;
        if (first_port && strcmp(first, sig) != 0) {
            snprintf(a->why, sizeof(a->why), "node %d disagrees with node %d on the topology",
                     c->node[i].port, first_port);
            return 0;
        }
        if (!first_port)
            first_port = c->node[i].port;
    }
    return 1;
}

int hq_test_cluster_wait_ok(struct hq_test_cluster *c, int timeout_ms)
{
    struct ok_arg a = {.c = c};
    a.view = malloc(sizeof(*a.view));
    assert_non_null(a.view);
    snprintf(a.why, sizeof(a.why), "not polled");
    int ok = hq_test_wait(cluster_ok, &a, timeout_ms);
    if (!ok)
        fprintf(stderr, "cluster not ok after %d ms: %s\n", timeout_ms, a.why);
    free(a.view);
    return ok;
}

void hq_test_cluster_url(const struct hq_test_cluster *c, char *out, size_t n)
{
    size_t off = (size_t)snprintf(out, n, "redis-cluster://");
    for (int i = 0; i < c->n && off < n; i++)
        off +=
            (size_t)snprintf(out + off, n - off, "%s127.0.0.1:%d", i ? "," : "", c->node[i].port);
    if (off >= n)
        fail_msg("hq_test_cluster_url: %zu bytes are too few for %d nodes", n, c->n);
}
