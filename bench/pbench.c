/* hq_pbench: the layout-aware helper of bench/partitions.sh. It talks to a
 * deployment the way hookq does (hq_redis_conn: one Redis or a Redis Cluster;
 * hq_layout: untagged or partitioned), so one script measures P = 1, P = 4 on
 * one Redis and P = 6 on a cluster alike.
 *
 *   hq_pbench layout URL PREFIX P          writes a P-partition layout (P > 1)
 *   hq_pbench endpoint URL PREFIX EP_URL   creates one endpoint, prints id=
 *   hq_pbench produce URL PREFIX N         N 1 KiB events, round robin over the
 *                                          partitions, pipelined per partition
 *   hq_pbench drain URL PREFIX TIMEOUT_S START_NS
 *                                          waits until every partition's stream
 *                                          is empty with nothing pending; prints
 *                                          secs= (since START_NS, CLOCK_REALTIME)
 *   hq_pbench cpu URL PREFIX               used_cpu_user+sys of each node that
 *                                          owns a partition: "node=<addr> cpu_s=…"
 *                                          lines, then total_cpu_s= and
 *                                          script_calls= (EVALSHA + EVAL, all nodes),
 *                                          then "cmd=<name> calls=<n> usec=<n>" per
 *                                          command, summed over those nodes
 *
 * A benchmark tool: failures print "hq_pbench <cmd>: <what>" and exit 1, usage 2. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/endpoint_store.h"
#include "common/keys.h"
#include "common/layout_store.h"
#include "common/redis_conn.h"

#define PAYLOAD_BYTES 1024
#define PIPELINE      500 /* XADDs in flight per partition */

static const char *g_cmd = "";

static _Noreturn void die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "hq_pbench %s: ", g_cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
}

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct hq_redis_conn *open_or_die(const char *url, const char *prefix, struct hq_layout *L)
{
    struct hq_err err = {0};
    struct hq_redis_conn *c = hq_redis_conn_open(url, 5000, &err);
    if (!c)
        die(1, "%s", err.msg);
    if (L && hq_layout_load(c, prefix, L, &err) != 0)
        die(1, "%s", err.msg);
    return c;
}

static redisContext *node_or_die(struct hq_redis_conn *c, unsigned slot)
{
    struct hq_err err = {0};
    redisContext *x = hq_redis_conn_node(c, slot, &err);
    if (!x)
        die(1, "%s", err.msg);
    return x;
}

static int cmd_layout(const char *url, const char *prefix, long P)
{
    struct hq_layout L;
    struct hq_err err = {0};
    struct hq_redis_conn *c = open_or_die(url, prefix, NULL);
    int rc = hq_layout_create(c, prefix, (unsigned)P, &L, &err);
    if (rc != 0 && rc != HQ_EEXIST)
        die(1, "%s", err.msg);
    printf("partitions=%u\n", L.nparts);
    hq_layout_free(&L);
    hq_redis_conn_free(c);
    return 0;
}

static int cmd_endpoint(const char *url, const char *prefix, const char *ep_url)
{
    struct hq_layout L;
    struct hq_redis_conn *c = open_or_die(url, prefix, &L);
    struct hq_endpoint e = {0};
    e.name = strdup("bench");
    e.url = strdup(ep_url);
    e.description = strdup("");
    e.enabled = 1;
    struct hq_err err = {0};
    if (hq_endpoint_create(node_or_die(c, L.reg_slot), L.reg, &e, &err) != 0)
        die(1, "%s", err.msg);
    printf("id=%s\n", e.id);
    hq_endpoint_free(&e);
    hq_layout_free(&L);
    hq_redis_conn_free(c);
    return 0;
}

static int cmd_produce(const char *url, const char *prefix, long long n)
{
    struct hq_layout L;
    struct hq_redis_conn *c = open_or_die(url, prefix, &L);
    char payload[PAYLOAD_BYTES + 1];
    memset(payload, 'x', PAYLOAD_BYTES);
    memcpy(payload, "{\"data\":\"", 9);
    memcpy(payload + PAYLOAD_BYTES - 2, "\"}", 2);
    payload[PAYLOAD_BYTES] = '\0';
    int64_t t0 = real_ns();
    /* Each partition in turn gets a pipelined run of up to PIPELINE XADDs: the
     * events end up spread evenly, as a producer without ids spreads them. */
    long long done = 0;
    while (done < n) {
        for (unsigned p = 0; p < L.nparts && done < n; p++) {
            char key[HQ_KEY_MAX];
            hq_key_events(L.part[p].base, key, sizeof(key));
            redisContext *x = node_or_die(c, L.part[p].slot);
            long long batch = (n - done) / (L.nparts - p);
            batch = batch < 1 ? 1 : batch > PIPELINE ? PIPELINE : batch;
            for (long long k = 0; k < batch; k++)
                redisAppendCommand(x, "XADD %s * type bench.event payload %s", key, payload);
            for (long long k = 0; k < batch; k++) {
                redisReply *r = NULL;
                if (redisGetReply(x, (void **)&r) != REDIS_OK || !r ||
                    r->type != REDIS_REPLY_STRING)
                    die(1, "XADD to %s failed: %s", key, r ? r->str : x->errstr);
                freeReplyObject(r);
            }
            done += batch;
        }
    }
    printf("n=%lld secs=%.3f\n", n, (double)(real_ns() - t0) / 1e9);
    hq_layout_free(&L);
    hq_redis_conn_free(c);
    return 0;
}

/* Entries left in partition p: stream length plus the group's pending. */
static long long left_in(struct hq_redis_conn *c, const struct hq_layout *L, unsigned p)
{
    char key[HQ_KEY_MAX];
    hq_key_events(L->part[p].base, key, sizeof(key));
    redisContext *x = node_or_die(c, L->part[p].slot);
    redisReply *a = redisCommand(x, "XLEN %s", key);
    redisReply *b = redisCommand(x, "XPENDING %s workers", key);
    long long n = (a && a->type == REDIS_REPLY_INTEGER ? a->integer : 1) +
                  (b && b->type == REDIS_REPLY_ARRAY && b->elements > 0 &&
                           b->element[0]->type == REDIS_REPLY_INTEGER
                       ? b->element[0]->integer
                       : 0);
    if (a)
        freeReplyObject(a);
    if (b)
        freeReplyObject(b);
    return n;
}

static int cmd_drain(const char *url, const char *prefix, long long timeout_s, long long start_ns)
{
    struct hq_layout L;
    struct hq_redis_conn *c = open_or_die(url, prefix, &L);
    int64_t deadline = real_ns() + timeout_s * 1000000000LL;
    for (;;) {
        long long left = 0;
        for (unsigned p = 0; p < L.nparts; p++)
            left += left_in(c, &L, p);
        if (left == 0)
            break;
        if (real_ns() > deadline)
            die(1, "%lld entries left after %lld s", left, timeout_s);
        /* Polling, a benchmark not a test: every 20 ms, so that its commands
         * (2 per partition) stay a small part of the Redis CPU measured. */
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    printf("secs=%.3f\n", (double)(real_ns() - start_ns) / 1e9);
    hq_layout_free(&L);
    hq_redis_conn_free(c);
    return 0;
}

static double node_cpu(redisContext *x)
{
    redisReply *r = redisCommand(x, "INFO cpu");
    if (!r || r->type != REDIS_REPLY_STRING)
        die(1, "INFO cpu failed");
    double s = 0;
    const char *u = strstr(r->str, "used_cpu_user:"), *y = strstr(r->str, "used_cpu_sys:");
    if (u)
        s += atof(u + 14);
    if (y)
        s += atof(y + 13);
    freeReplyObject(r);
    return s;
}

/* INFO commandstats summed over nodes: name -> calls, usec. */
#define MAX_CMDS 128
struct cmdstat {
    char name[48];
    long long calls, usec;
};
static struct cmdstat g_stats[MAX_CMDS];
static int g_nstats;

/* Adds a node's INFO commandstats lines ("cmdstat_<name>:calls=N,usec=N,...")
 * to g_stats. */
static void add_commandstats(redisContext *x)
{
    redisReply *r = redisCommand(x, "INFO commandstats");
    if (!r || r->type != REDIS_REPLY_STRING)
        die(1, "INFO commandstats failed");
    for (const char *p = strstr(r->str, "cmdstat_"); p; p = strstr(p + 1, "cmdstat_")) {
        char name[48];
        long long calls, usec;
        if (sscanf(p, "cmdstat_%47[^:]:calls=%lld,usec=%lld", name, &calls, &usec) != 3)
            continue;
        int k = 0;
        while (k < g_nstats && strcmp(g_stats[k].name, name) != 0)
            k++;
        if (k == g_nstats) {
            if (g_nstats == MAX_CMDS)
                continue;
            snprintf(g_stats[g_nstats++].name, sizeof(g_stats[0].name), "%s", name);
        }
        g_stats[k].calls += calls;
        g_stats[k].usec += usec;
    }
    freeReplyObject(r);
}

static long long stat_calls(const char *name)
{
    for (int k = 0; k < g_nstats; k++)
        if (strcmp(g_stats[k].name, name) == 0)
            return g_stats[k].calls;
    return 0;
}

static int cmd_cpu(const char *url, const char *prefix)
{
    struct hq_layout L;
    struct hq_redis_conn *c = open_or_die(url, prefix, &L);
    char seen[64][128];
    int nseen = 0;
    double total = 0;
    for (unsigned p = 0; p <= L.nparts; p++) {
        unsigned slot = p < L.nparts ? L.part[p].slot : L.reg_slot;
        char name[128];
        hq_redis_conn_node_name(c, slot, name, sizeof(name));
        int dup = 0;
        for (int k = 0; k < nseen; k++)
            dup |= strcmp(seen[k], name) == 0;
        if (dup || nseen == 64)
            continue;
        snprintf(seen[nseen++], sizeof(seen[0]), "%s", name);
        double s = node_cpu(node_or_die(c, slot));
        total += s;
        add_commandstats(node_or_die(c, slot));
        printf("node=%s cpu_s=%.4f\n", name, s);
    }
    long long calls = stat_calls("evalsha") + stat_calls("eval");
    printf("total_cpu_s=%.4f script_calls=%lld\n", total, calls);
    for (int k = 0; k < g_nstats; k++)
        printf("cmd=%s calls=%lld usec=%lld\n", g_stats[k].name, g_stats[k].calls, g_stats[k].usec);
    hq_layout_free(&L);
    hq_redis_conn_free(c);
    return 0;
}

static long long num(const char *what, const char *s)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < 0)
        die(2, "%s: '%s' is not a number", what, s);
    return v;
}

int main(int argc, char **argv)
{
    if (argc >= 2)
        g_cmd = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 5 && strcmp(g_cmd, "layout") == 0)
        return cmd_layout(argv[2], argv[3], (long)num("P", argv[4]));
    if (argc == 5 && strcmp(g_cmd, "endpoint") == 0)
        return cmd_endpoint(argv[2], argv[3], argv[4]);
    if (argc == 5 && strcmp(g_cmd, "produce") == 0)
        return cmd_produce(argv[2], argv[3], num("N", argv[4]));
    if (argc == 6 && strcmp(g_cmd, "drain") == 0)
        return cmd_drain(argv[2], argv[3], num("TIMEOUT_S", argv[4]), num("START_NS", argv[5]));
    if (argc == 4 && strcmp(g_cmd, "cpu") == 0)
        return cmd_cpu(argv[2], argv[3]);
    fprintf(stderr, "usage: hq_pbench layout URL PREFIX P\n"
                    "       hq_pbench endpoint URL PREFIX EP_URL\n"
                    "       hq_pbench produce URL PREFIX N\n"
                    "       hq_pbench drain URL PREFIX TIMEOUT_S START_NS\n"
                    "       hq_pbench cpu URL PREFIX\n");
    return 2;
}
