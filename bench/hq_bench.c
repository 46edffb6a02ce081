/* hq_bench: the helper program behind bench/worker_bench.sh (the delivery
 * benchmark). It owns the parts of the benchmark that a shell cannot do fast or
 * precisely: filling a stream with pipelined XADDs, the Redis half of the floor
 * (XREADGROUP COUNT 100 + one XACK per batch), producing at a steady rate with
 * microsecond send times, waiting for a stream to drain, reading a process's CPU
 * time and peak RSS, and turning nginx's access log into latency percentiles.
 * For bench/shapes.sh (many endpoints): creating K endpoints in one go, spreading
 * events round-robin over them, and percentiles from hq_sink's µs receipt log.
 *
 * It does not start or stop anything (the script does) and it is not part of
 * hookq: it links hq_common only for key names (common/keys.h), the blocking
 * Redis helpers and, when the endpoint CLI is missing, hq_endpoint_create.
 *
 * Output contract: each subcommand prints ONE line of key=value pairs on
 * stdout for the script to parse; errors are one line on stderr,
 * "hq_bench <cmd>: <what>", exit 2 for usage and 1 for a failure at run time.
 * It talks only to the Redis URL it is given (the script passes 127.0.0.1). */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/endpoint.h"
#include "common/endpoint_store.h"
#include "common/err.h"
#include "common/keys.h"
#include "common/redis_sync.h"

/* Benchmark parameters, not bounds of hookq, so they live here rather than in
 * common/limits.h. */
#define BENCH_PAYLOAD_BYTES 1024      /* the delivery benchmark: 1 KiB JSON payloads */
#define BENCH_PIPELINE      1000      /* XADDs per round trip: ~1 MiB of commands in flight */
#define BENCH_READ_COUNT    100       /* the floor: XREADGROUP COUNT 100 */
#define BENCH_POLL_MS       50        /* drain poll period: ~1 % of a 5 s run, negligible load */
#define BENCH_CONNECT_MS    5000      /* connect timeout to the bench's own redis-server */
#define BENCH_FLOOR_PREFIX  "hqfloor" /* the floor's scratch stream, apart from the real one */
#define BENCH_TYPE          "bench.event"
#define BENCH_CONSUMER      "floor" /* consumer name of the floor's reader */
#define BENCH_LOG_LINE_MAX  512     /* "msec webhook-id" lines are ~30 bytes; longer is ignored */
#define BENCH_RATE_MAX      1000000 /* --rate ceiling: one synchronous XADD per event */
#define BENCH_EVENTS_MAX    100000000LL /* --events ceiling: ~100 GiB of stream, far beyond RAM */
#define BENCH_ENDPOINTS_MAX 100000      /* shapes go to 10,000; ports end at 65535 anyway */
/* Drain polls per count of the worker's sockets (one a second): reading
 * 10,000 fd links costs ~10 ms of CPU on the cores the worker needs, which
 * every 200 ms showed as 10 % of a core in the 10,000-endpoint shape. */
#define BENCH_SOCK_EVERY 20

static const char *g_cmd = "hq_bench"; /* subcommand name for error lines */

static void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int status, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "hq_bench %s: ", g_cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(status);
}

/* ---- Small helpers ---------------------------------------------------------- */

static long long parse_num(const char *name, const char *s, long long min, long long max)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        die(2, "%s: '%s' is not an integer in [%lld, %lld]", name, s, min, max);
    return v;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wall-clock time: compared with nginx's $msec, which is wall-clock too. */
static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static redisContext *connect_or_die(const char *url)
{
    struct hq_err err = {0};
    redisContext *c = hq_redis_connect(url, BENCH_CONNECT_MS, &err);
    if (!c)
        die(1, "%s", err.msg);
    return c;
}

static redisReply *cmd_or_die(redisContext *c, int argc, const char **argv)
{
    struct hq_err err = {0};
    redisReply *r = hq_redis_cmd(c, &err, argc, argv, NULL);
    if (!r)
        die(1, "%s: %s", argv[0], err.msg);
    return r;
}

static void key_events(const char *prefix, char *out)
{
    if (hq_key_events(prefix, out, HQ_KEY_MAX) < 0)
        die(2, "prefix: '%.40s' is too long", prefix);
}

/* A 1 KiB JSON object whose size does not depend on seq:
 * {"type":"bench.event","seq":N,"data":"xxx...x"}. */
static void make_payload(char *buf, long long seq)
{
    int n = snprintf(buf, BENCH_PAYLOAD_BYTES,
                     "{\"type\":\"" BENCH_TYPE "\",\"seq\":%lld,\"data\":\"", seq);
    memset(buf + n, 'x', (size_t)(BENCH_PAYLOAD_BYTES - n - 2));
    buf[BENCH_PAYLOAD_BYTES - 2] = '"';
    buf[BENCH_PAYLOAD_BYTES - 1] = '}';
}

/* XGROUP CREATE <stream> workers 0 MKSTREAM, tolerating an existing group.
 * Created at 0 (not $) so that entries added before a worker starts are read. */
static void group_create(redisContext *c, const char *stream)
{
    const char *argv[] = {"XGROUP", "CREATE", stream, HQ_GROUP, "0", "MKSTREAM"};
    struct hq_err err = {0};
    redisReply *r = hq_redis_cmd(c, &err, 6, argv, NULL);
    if (r)
        freeReplyObject(r);
    else if (!strstr(err.msg, "BUSYGROUP"))
        die(1, "XGROUP CREATE %s: %s", stream, err.msg);
}

/* Endpoint ids to address events to (hq_bench endpoints writes them, one a
 * line, line i = the endpoint on port base + i); n == 0: no endpoint field. */
struct ids {
    char **v;
    size_t n;
};

static void ids_load(const char *path, struct ids *ids)
{
    ids->v = NULL;
    ids->n = 0;
    if (!path)
        return;
    FILE *f = fopen(path, "r");
    if (!f)
        die(1, "%s: %s", path, strerror(errno));
    size_t cap = 0;
    char line[HQ_ENDPOINT_ID_MAX + 8];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        struct hq_err err = {0};
        if (hq_endpoint_check_id(line, &err) != 0)
            die(1, "%s line %zu: %s", path, ids->n + 1, err.msg);
        if (ids->n == cap) {
            cap = cap ? cap * 2 : 256;
            ids->v = hq_realloc(ids->v, cap * sizeof(*ids->v));
        }
        ids->v[ids->n++] = hq_strdup(line);
    }
    fclose(f);
    if (ids->n == 0)
        die(1, "%s: no endpoint ids", path);
}

static void ids_free(struct ids *ids)
{
    for (size_t i = 0; i < ids->n; i++)
        free(ids->v[i]);
    free(ids->v);
}

/* Appends one XADD of an event to c's output buffer: fields type, payload,
 * id and, when ep is given, endpoint (the worker then delivers to that one
 * endpoint instead of fanning out to every subscriber). */
/* Reads one pipelined XADD's reply; exits on an error. */
static void read_xadd_reply(redisContext *c)
{
    void *rv = NULL;
    if (redisGetReply(c, &rv) != REDIS_OK)
        die(1, "XADD: %s", c->errstr);
    redisReply *r = rv;
    if (r->type == REDIS_REPLY_ERROR)
        die(1, "XADD: %s", r->str);
    freeReplyObject(r);
}

static void append_xadd(redisContext *c, const char *stream, const char *payload, const char *id,
                        const char *ep)
{
    const char *argv[] = {"XADD",  stream, "*", "type",     BENCH_TYPE, "payload",
                          payload, "id",   id,  "endpoint", ep};
    size_t lens[] = {
        4, strlen(stream),     1, 4, strlen(BENCH_TYPE), 7, BENCH_PAYLOAD_BYTES, 2, strlen(id),
        8, ep ? strlen(ep) : 0};
    if (redisAppendCommandArgv(c, ep ? 11 : 9, argv, lens) != REDIS_OK)
        die(1, "XADD: %s", c->errstr);
}

/* Appends n events to stream with pipelined XADDs (BENCH_PIPELINE per round
 * trip). Plain fields type, payload and id = <id_tag><seq>; event seq goes to
 * endpoint ids[seq % n] (round-robin: every endpoint gets the same load). */
static void fill(redisContext *c, const char *stream, long long n, char id_tag,
                 const struct ids *ids)
{
    char payload[BENCH_PAYLOAD_BYTES];
    char id[32];
    long long queued = 0;
    /* HQ_BENCH_ID_FROM=K numbers the ids from K: a second fill meets no
     * duplicates of the first (dedupe is on by default). */
    const char *from_env = getenv("HQ_BENCH_ID_FROM");
    long long from = from_env ? strtoll(from_env, NULL, 10) : 0;
    for (long long seq = 0; seq < n; seq++) {
        make_payload(payload, seq);
        snprintf(id, sizeof(id), "%c%lld", id_tag, from + seq);
        append_xadd(c, stream, payload, id,
                    ids && ids->n ? ids->v[(unsigned long long)seq % ids->n] : NULL);
        queued++;
        if (queued < BENCH_PIPELINE && seq + 1 < n)
            continue;
        for (; queued > 0; queued--) {
            read_xadd_reply(c);
        }
    }
}

/* ---- Subcommands -------------------------------------------------------------- */

/* free-port: a TCP port on 127.0.0.1 that was free a moment ago. */
static int cmd_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die(1, "socket: %s", strerror(errno));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        die(1, "bind 127.0.0.1:0: %s", strerror(errno));
    close(fd);
    printf("port=%d\n", ntohs(sa.sin_port));
    return 0;
}

/* floor-redis URL N: the Redis half of the floor. Fills a scratch stream with N
 * 1 KiB entries, then consumes it as a worker minimally must: XREADGROUP COUNT
 * 100 and one XACK per batch, in a tight loop. Only the consuming is timed. */
static int cmd_floor_redis(const char *url, long long n)
{
    char stream[HQ_KEY_MAX];
    key_events(BENCH_FLOOR_PREFIX, stream);
    redisContext *c = connect_or_die(url);
    const char *del[] = {"DEL", stream};
    freeReplyObject(cmd_or_die(c, 2, del));
    fill(c, stream, n, 'f', NULL);
    group_create(c, stream);

    const char *read_argv[] = {"XREADGROUP", "GROUP", HQ_GROUP, BENCH_CONSUMER, "COUNT", "100",
                               "STREAMS",    stream,  ">"};
    const char *ack_argv[3 + BENCH_READ_COUNT] = {"XACK", stream, HQ_GROUP};
    long long done = 0;
    int64_t t0 = mono_ns();
    while (done < n) {
        redisReply *r = cmd_or_die(c, 9, read_argv);
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 ||
            r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements != 2)
            die(1, "XREADGROUP: unexpected reply after %lld of %lld entries", done, n);
        redisReply *entries = r->element[0]->element[1];
        if (entries->elements == 0 || entries->elements > BENCH_READ_COUNT)
            die(1, "XREADGROUP: %zu entries in a batch", entries->elements);
        for (size_t i = 0; i < entries->elements; i++)
            ack_argv[3 + i] = entries->element[i]->element[0]->str;
        redisReply *a = cmd_or_die(c, 3 + (int)entries->elements, ack_argv);
        if (a->type != REDIS_REPLY_INTEGER || a->integer != (long long)entries->elements)
            die(1, "XACK: acknowledged %lld of %zu", a->integer, entries->elements);
        done += (long long)entries->elements;
        freeReplyObject(a);
        freeReplyObject(r);
    }
    double secs = (double)(mono_ns() - t0) / 1e9;
    freeReplyObject(cmd_or_die(c, 2, del));
    redisFree(c);
    printf("rate=%.0f n=%lld secs=%.3f\n", (double)n / secs, n, secs);
    return 0;
}

/* produce URL PREFIX N [IDS_FILE]: creates the group at 0 and pre-fills
 * <p>:events with N events (ids t0..tN-1) by pipelined XADD, addressed
 * round-robin to the endpoints of IDS_FILE when given. */
static int cmd_produce(const char *url, const char *prefix, long long n, const char *ids_path)
{
    char stream[HQ_KEY_MAX];
    key_events(prefix, stream);
    struct ids ids;
    ids_load(ids_path, &ids);
    redisContext *c = connect_or_die(url);
    group_create(c, stream);
    int64_t t0 = mono_ns();
    fill(c, stream, n, 't', &ids);
    ids_free(&ids);
    double secs = (double)(mono_ns() - t0) / 1e9;
    redisFree(c);
    printf("n=%lld secs=%.3f\n", n, secs);
    return 0;
}

/* produce-rate URL PREFIX R S [IDS_FILE]: R events/s for S seconds, each sent
 * at its scheduled instant (absolute sleeps, so no drift) with id b<send time
 * in unix µs>, one synchronous XADD each, round-robin over IDS_FILE's endpoints
 * when given. Reports how late the latest send was, so a producer that could
 * not keep up is visible rather than hidden. */
static int cmd_produce_rate(const char *url, const char *prefix, long long rate, long long secs,
                            const char *ids_path)
{
    char stream[HQ_KEY_MAX];
    key_events(prefix, stream);
    struct ids ids;
    ids_load(ids_path, &ids);
    redisContext *c = connect_or_die(url);
    group_create(c, stream);
    char payload[BENCH_PAYLOAD_BYTES];
    char id[32];
    long long total = rate * secs;
    int64_t max_late = 0;
    int64_t start = mono_ns() + 10000000; /* 10 ms ahead: the first send is on schedule too */
    for (long long k = 0; k < total; k++) {
        int64_t due = start + (int64_t)((double)k * 1e9 / (double)rate);
        struct timespec ts = {.tv_sec = due / 1000000000, .tv_nsec = due % 1000000000};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
        }
        int64_t late = mono_ns() - due;
        if (late > max_late)
            max_late = late;
        make_payload(payload, k);
        snprintf(id, sizeof(id), "b%" PRId64, real_ns() / 1000);
        append_xadd(c, stream, payload, id, ids.n ? ids.v[(unsigned long long)k % ids.n] : NULL);
        read_xadd_reply(c);
    }
    double took = (double)(mono_ns() - start) / 1e9;
    ids_free(&ids);
    redisFree(c);
    printf("sent=%lld secs=%.3f rate=%.0f max_late_ms=%.2f\n", total, took, (double)total / took,
           (double)max_late / 1e6);
    return 0;
}

/* State of a process from /proc: 0 when gone or a zombie (it exited). */
static int proc_alive(long pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* Looks up group `workers` in an XINFO GROUPS reply: pending count and lag
 * (-1 when Redis reports lag as unknown). Returns 0 when the group is found. */
static int group_info(const redisReply *r, long long *pending, long long *lag)
{
    if (r->type != REDIS_REPLY_ARRAY)
        return -1;
    for (size_t g = 0; g < r->elements; g++) {
        const redisReply *kv = r->element[g];
        int ours = 0;
        *pending = -1;
        *lag = -1;
        for (size_t i = 0; kv->type == REDIS_REPLY_ARRAY && i + 1 < kv->elements; i += 2) {
            const redisReply *k = kv->element[i], *v = kv->element[i + 1];
            if (k->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(k->str, "name") == 0 && v->type == REDIS_REPLY_STRING)
                ours = strcmp(v->str, HQ_GROUP) == 0;
            else if (strcmp(k->str, "pending") == 0 && v->type == REDIS_REPLY_INTEGER)
                *pending = v->integer;
            else if (strcmp(k->str, "lag") == 0 && v->type == REDIS_REPLY_INTEGER)
                *lag = v->integer;
        }
        if (ours)
            return 0;
    }
    return -1;
}

/* wait-drain URL PREFIX PID TIMEOUT_S START_NS: polls every 50 ms until the
 * group has nothing pending and nothing left to read (XLEN 0, or lag 0 when
 * the worker does not delete acknowledged entries). Fails at once when the
 * worker PID exits, and at the timeout. Prints the seconds since START_NS (a
 * CLOCK_REALTIME instant in ns, e.g. `date +%s%N` just before the worker was
 * started) and the retry/dead-letter counts, which must be 0 for a run in which
 * every delivery succeeded. */
/* Sockets among PID's open files (entries of /proc/PID/fd linking to
 * "socket:[...]"): its connections plus a few listeners and Redis links. -1
 * when the process is gone. */
static long count_sockets(long pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    long n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char target[32];
        ssize_t len = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
        if (len > 7 && memcmp(target, "socket:", 7) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* drain: wait-drain that also waits for <p>:retry to be empty (a worker may
 * defer deliveries there; the scheduler brings them back), and reports the
 * largest retry set and socket count of PID seen while waiting. */
static int cmd_wait_drain(const char *url, const char *prefix, long pid, long long timeout_s,
                          long long start_ns, int drain)
{
    char stream[HQ_KEY_MAX], dead[HQ_KEY_MAX], retry[HQ_KEY_MAX];
    key_events(prefix, stream);
    hq_key_dead(prefix, dead, sizeof(dead));
    hq_key_retry(prefix, retry, sizeof(retry));
    redisContext *c = connect_or_die(url);
    if (start_ns <= 0)
        start_ns = real_ns();
    int64_t deadline = mono_ns() + (int64_t)timeout_s * 1000000000;
    long long xlen = -1, pending = -1, lag = -1, ndead = -1, nretry = -1;
    long long retry_max = 0, polls = 0;
    long sock_max = 0;
    for (;;) {
        if (drain && pid > 0 && polls++ % BENCH_SOCK_EVERY == 0) {
            long socks = count_sockets(pid);
            if (socks > sock_max)
                sock_max = socks;
        }
        const char *a1[] = {"XLEN", stream};
        const char *a2[] = {"XINFO", "GROUPS", stream};
        const char *a3[] = {"XLEN", dead};
        const char *a4[] = {"ZCARD", retry};
        redisReply *r1 = cmd_or_die(c, 2, a1);
        redisReply *r2 = cmd_or_die(c, 3, a2);
        redisReply *r3 = cmd_or_die(c, 2, a3);
        redisReply *r4 = cmd_or_die(c, 2, a4);
        int64_t seen = real_ns();
        xlen = r1->integer;
        ndead = r3->integer;
        nretry = r4->integer;
        if (group_info(r2, &pending, &lag) != 0)
            die(1, "group '%s' on %s is gone", HQ_GROUP, stream);
        freeReplyObject(r1);
        freeReplyObject(r2);
        freeReplyObject(r3);
        freeReplyObject(r4);
        if (nretry > retry_max)
            retry_max = nretry;
        if (pending == 0 && (xlen == 0 || lag == 0) && (!drain || nretry == 0)) {
            if (drain)
                printf("secs=%.3f xlen=%lld dead=%lld retry=%lld retry_max=%lld sock_max=%ld\n",
                       (double)(seen - start_ns) / 1e9, xlen, ndead, nretry, retry_max, sock_max);
            else
                printf("secs=%.3f xlen=%lld dead=%lld retry=%lld\n",
                       (double)(seen - start_ns) / 1e9, xlen, ndead, nretry);
            redisFree(c);
            return 0;
        }
        if (pid > 0 && !proc_alive(pid))
            die(1,
                "worker (pid %ld) exited before the stream drained: xlen %lld, pending %lld, lag %lld",
                pid, xlen, pending, lag);
        if (mono_ns() > deadline)
            die(1,
                "not drained after %lld s: xlen %lld, pending %lld, lag %lld, dead %lld, retry %lld",
                timeout_s, xlen, pending, lag, ndead, nretry);
        struct timespec ts = {.tv_sec = 0, .tv_nsec = BENCH_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* proc PID: CPU seconds (utime + stime) and peak/current RSS from /proc. */
static int cmd_proc(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        die(1, "%s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the ")" that ends comm: state is field 3, utime 14, stime 15. */
    const char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        die(1, "%s: unexpected format", path);
    long hz = sysconf(_SC_CLK_TCK);
    long hwm = -1, rss = -1;
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    f = fopen(path, "r");
    if (!f)
        die(1, "%s: %s", path, strerror(errno));
    char line[256];
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmHWM:", 6) == 0)
            hwm = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmRSS:", 6) == 0)
            rss = strtol(line + 6, NULL, 10);
    }
    fclose(f);
    printf("cpu_s=%.3f hwm_kib=%ld rss_kib=%ld\n", (double)(ut + st) / (double)hz, hwm, rss);
    return 0;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* Parses nginx's "$msec" ("1732665600.123") into unix ms. */
static int parse_msec(const char *s, long long *ms)
{
    char *end = NULL;
    long long sec = strtoll(s, &end, 10);
    if (end == s || end[0] != '.' || !isdigit((unsigned char)end[1]) ||
        !isdigit((unsigned char)end[2]) || !isdigit((unsigned char)end[3]))
        return -1;
    *ms = sec * 1000 + (end[1] - '0') * 100 + (end[2] - '0') * 10 + (end[3] - '0');
    return 0;
}

/* latency LOG: reads "$msec $http_webhook_id" lines. For each id b<µs>,
 * latency = receipt - send. $msec has 1 ms resolution (the receipt lies in
 * [msec, msec + 1 ms)), so the midpoint msec + 0.5 ms is used: each value is
 * within +-0.5 ms. Also counts t<seq> ids (the throughput phase's deliveries). */
static int cmd_latency(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die(1, "%s: %s", path, strerror(errno));
    size_t cap = 1024, n = 0;
    long long *lat = hq_malloc(cap * sizeof(*lat));
    long long tcount = 0, other = 0;
    char line[BENCH_LOG_LINE_MAX];
    while (fgets(line, sizeof(line), f)) {
        char *sp = strchr(line, ' ');
        long long ms = 0;
        if (!sp || parse_msec(line, &ms) != 0) {
            other++;
            continue;
        }
        const char *id = sp + 1;
        if (id[0] == 't' && isdigit((unsigned char)id[1])) {
            tcount++;
            continue;
        }
        char *end = NULL;
        long long sent_us = id[0] == 'b' ? strtoll(id + 1, &end, 10) : 0;
        if (sent_us <= 0 || !end || (*end != '\n' && *end != '\0')) {
            other++;
            continue;
        }
        if (n == cap) {
            cap *= 2;
            lat = hq_realloc(lat, cap * sizeof(*lat));
        }
        lat[n++] = ms * 1000 + 500 - sent_us;
    }
    fclose(f);
    if (n == 0) {
        printf("n=0 t_count=%lld other=%lld\n", tcount, other);
        free(lat);
        return 0;
    }
    qsort(lat, n, sizeof(*lat), cmp_ll);
    /* Nearest-rank percentiles. */
    const double ps[] = {0.50, 0.90, 0.99};
    double v[3];
    for (int i = 0; i < 3; i++) {
        size_t rank = (size_t)(ps[i] * (double)n + 0.999999);
        v[i] = (double)lat[(rank ? rank : 1) - 1] / 1000.0;
    }
    printf("n=%zu t_count=%lld other=%lld p50=%.2f p90=%.2f p99=%.2f max=%.2f min=%.2f\n", n,
           tcount, other, v[0], v[1], v[2], (double)lat[n - 1] / 1000.0, (double)lat[0] / 1000.0);
    free(lat);
    return 0;
}

/* endpoint URL PREFIX ENDPOINT_URL: creates the endpoint "bench" subscribed to
 * every type with hq_endpoint_create (the code `hookq endpoint add` uses). The
 * script's fallback while the endpoint CLI is not built. Prints id=... only. */
static int cmd_endpoint(const char *url, const char *prefix, const char *ep_url)
{
    redisContext *c = connect_or_die(url);
    struct hq_endpoint e;
    memset(&e, 0, sizeof(e));
    e.name = hq_strdup("bench");
    e.url = hq_strdup(ep_url);
    e.description = hq_strdup("hq_bench sink");
    e.enabled = 1;
    struct hq_err err = {0};
    if (hq_endpoint_create(c, prefix, &e, &err) != 0)
        die(1, "%s", err.msg);
    printf("id=%s\n", e.id);
    hq_endpoint_free(&e);
    redisFree(c);
    return 0;
}

/* One receipt time per line of hq_sink's logs: "<unix µs> <webhook-id>". */
struct lat {
    long long *v;
    size_t n, cap;
    long long tcount, other;
};

static void lat_read(const char *path, struct lat *l)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die(1, "%s: %s", path, strerror(errno));
    char line[BENCH_LOG_LINE_MAX];
    while (fgets(line, sizeof(line), f)) {
        char *end = NULL;
        long long recv_us = strtoll(line, &end, 10);
        if (end == line || *end != ' ') {
            l->other++;
            continue;
        }
        const char *id = end + 1;
        if (id[0] == 't' && isdigit((unsigned char)id[1])) {
            l->tcount++;
            continue;
        }
        long long sent_us = id[0] == 'b' ? strtoll(id + 1, &end, 10) : 0;
        if (sent_us <= 0 || (*end != '\n' && *end != '\0')) {
            l->other++;
            continue;
        }
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 1024;
            l->v = hq_realloc(l->v, l->cap * sizeof(*l->v));
        }
        l->v[l->n++] = recv_us - sent_us;
    }
    fclose(f);
}

/* Nearest rank: the smallest value with at least p of them at or below it. */
static double lat_pct(const struct lat *l, double p)
{
    size_t rank = (size_t)(p * (double)l->n);
    if ((double)rank < p * (double)l->n)
        rank++;
    return (double)l->v[(rank ? rank : 1) - 1] / 1000.0;
}

/* latency-us LOG...: the sink logs of one run (one per sink process): counts
 * the t<seq> ids (throughput phase) and the b<µs> ids (latency phase), and the
 * latter's enqueue -> receipt percentiles in ms. Both clocks are this host's
 * CLOCK_REALTIME in µs, so no rounding as with nginx's $msec. */
static int cmd_latency_us(int nfiles, char **files)
{
    struct lat l = {0};
    for (int i = 0; i < nfiles; i++)
        lat_read(files[i], &l);
    if (l.n == 0) {
        printf("b_count=0 t_count=%lld other=%lld\n", l.tcount, l.other);
        return 0;
    }
    qsort(l.v, l.n, sizeof(*l.v), cmp_ll);
    printf("b_count=%zu t_count=%lld other=%lld p50=%.2f p99=%.2f p999=%.2f max=%.2f\n", l.n,
           l.tcount, l.other, lat_pct(&l, 0.50), lat_pct(&l, 0.99), lat_pct(&l, 0.999),
           (double)l.v[l.n - 1] / 1000.0);
    free(l.v);
    return 0;
}

/* Expands TEMPLATE's {port} (port_base + i) and {i} into out. */
static void expand_url(const char *tmpl, long long port_base, long long i, char *out, size_t n)
{
    size_t k = 0;
    for (const char *p = tmpl; *p;) {
        char num[24];
        const char *put = NULL;
        if (strncmp(p, "{port}", 6) == 0) {
            snprintf(num, sizeof(num), "%lld", port_base + i);
            put = num;
            p += 6;
        } else if (strncmp(p, "{i}", 3) == 0) {
            snprintf(num, sizeof(num), "%lld", i);
            put = num;
            p += 3;
        }
        size_t len = put ? strlen(put) : 1;
        if (k + len >= n)
            die(2, "URL_TEMPLATE: the URL of endpoint %lld is longer than %zu", i, n - 1);
        memcpy(out + k, put ? put : p, len);
        k += len;
        if (!put)
            p++;
    }
    out[k] = '\0';
}

/* endpoints URL PREFIX K PORT_BASE URL_TEMPLATE IDS_OUT: creates K endpoints
 * named e0..e<K-1>, endpoint i at URL_TEMPLATE with {port} = PORT_BASE + i and
 * {i} = i, subscribed to bench.event, each through hq_endpoint_create (so the
 * registry is exactly what `hookq endpoint add` writes; ids are the generated
 * ep_... ones), and writes their ids to IDS_OUT, line i = endpoint i. One
 * MULTI/EXEC round trip each: 10,000 take about a second on loopback. With
 * HQ_BENCH_TENANTS=T in the environment endpoint i belongs to tenant t<i % T>
 * (bench/noisy.sh). */
static int cmd_endpoints(const char *url, const char *prefix, long long k, long long port_base,
                         const char *tmpl, const char *ids_out)
{
    if (!strstr(tmpl, "{port}") && !strstr(tmpl, "{i}"))
        die(2, "URL_TEMPLATE: '%s' has neither {port} nor {i}: every endpoint would be the same",
            tmpl);
    if (port_base + k - 1 > 65535)
        die(2, "PORT_BASE %lld + K %lld goes past port 65535", port_base, k);
    FILE *f = fopen(ids_out, "w");
    if (!f)
        die(1, "%s: %s", ids_out, strerror(errno));
    const char *tv = getenv("HQ_BENCH_TENANTS");
    long long tenants = tv ? parse_num("HQ_BENCH_TENANTS", tv, 1, 1000000) : 0;
    redisContext *c = connect_or_die(url);
    int64_t t0 = mono_ns();
    for (long long i = 0; i < k; i++) {
        char ep_url[HQ_URL_MAX + 1], name[32];
        expand_url(tmpl, port_base, i, ep_url, sizeof(ep_url));
        snprintf(name, sizeof(name), "e%lld", i);
        struct hq_endpoint e;
        memset(&e, 0, sizeof(e));
        e.name = hq_strdup(name);
        e.url = hq_strdup(ep_url);
        e.description = hq_strdup("hq_bench shapes sink");
        e.events = hq_malloc(sizeof(*e.events));
        e.events[0] = hq_strdup(BENCH_TYPE);
        e.nevents = 1;
        e.enabled = 1;
        if (tenants)
            snprintf(e.tenant, sizeof(e.tenant), "t%lld", i % tenants);
        struct hq_err err = {0};
        if (hq_endpoint_create(c, prefix, &e, &err) != 0)
            die(1, "endpoint %lld (%s): %s", i, ep_url, err.msg);
        fprintf(f, "%s\n", e.id);
        hq_endpoint_free(&e);
    }
    double secs = (double)(mono_ns() - t0) / 1e9;
    redisFree(c);
    if (fclose(f) != 0)
        die(1, "%s: %s", ids_out, strerror(errno));
    printf("k=%lld secs=%.3f\n", k, secs);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: hq_bench free-port\n"
                    "       hq_bench floor-redis URL N\n"
                    "       hq_bench produce URL PREFIX N [IDS_FILE]\n"
                    "       hq_bench produce-rate URL PREFIX RATE SECONDS [IDS_FILE]\n"
                    "       hq_bench wait-drain URL PREFIX PID TIMEOUT_S START_NS\n"
                    "       hq_bench drain URL PREFIX PID TIMEOUT_S START_NS\n"
                    "       hq_bench proc PID\n"
                    "       hq_bench latency ACCESS_LOG\n"
                    "       hq_bench endpoint URL PREFIX ENDPOINT_URL\n"
                    "       hq_bench endpoints URL PREFIX K PORT_BASE URL_TEMPLATE IDS_OUT\n"
                    "       hq_bench latency-us SINK_LOG...\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return 2;
    }
    g_cmd = argv[1];
    const char *c = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(c, "free-port") == 0 && argc == 2)
        return cmd_free_port();
    if (strcmp(c, "floor-redis") == 0 && argc == 4)
        return cmd_floor_redis(argv[2], parse_num("N", argv[3], 1, BENCH_EVENTS_MAX));
    if (strcmp(c, "produce") == 0 && (argc == 5 || argc == 6))
        return cmd_produce(argv[2], argv[3], parse_num("N", argv[4], 1, BENCH_EVENTS_MAX),
                           argc == 6 ? argv[5] : NULL);
    if (strcmp(c, "produce-rate") == 0 && (argc == 6 || argc == 7))
        return cmd_produce_rate(argv[2], argv[3], parse_num("RATE", argv[4], 1, BENCH_RATE_MAX),
                                parse_num("SECONDS", argv[5], 1, 86400),
                                argc == 7 ? argv[6] : NULL);
    if ((strcmp(c, "wait-drain") == 0 || strcmp(c, "drain") == 0) && argc == 7)
        return cmd_wait_drain(argv[2], argv[3], (long)parse_num("PID", argv[4], 0, INT32_MAX),
                              parse_num("TIMEOUT_S", argv[5], 1, 86400),
                              parse_num("START_NS", argv[6], 0, INT64_MAX),
                              strcmp(c, "drain") == 0);
    if (strcmp(c, "proc") == 0 && argc == 3)
        return cmd_proc((long)parse_num("PID", argv[2], 1, INT32_MAX));
    if (strcmp(c, "latency") == 0 && argc == 3)
        return cmd_latency(argv[2]);
    if (strcmp(c, "endpoint") == 0 && argc == 5)
        return cmd_endpoint(argv[2], argv[3], argv[4]);
    if (strcmp(c, "endpoints") == 0 && argc == 8)
        return cmd_endpoints(argv[2], argv[3], parse_num("K", argv[4], 1, BENCH_ENDPOINTS_MAX),
                             parse_num("PORT_BASE", argv[5], 1, 65535), argv[6], argv[7]);
    if (strcmp(c, "latency-us") == 0 && argc >= 3)
        return cmd_latency_us(argc - 2, argv + 2);
    usage();
    die(2, "unknown subcommand or wrong argument count");
}
