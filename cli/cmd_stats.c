/* `hookq stats [--json]`: one look at the queue's health for an SRE: the
 * event stream's length, the consumer group's lag, pending entries and
 * consumers, the retry backlog and when the next retry is due, the dead-letter
 * stream's length and the number of endpoints. One pipelined round trip;
 * read-only. Keys or the group that do not exist yet count as 0 / none, not as
 * errors (a fresh deployment is healthy). docs/endpoints.md ("hookq stats")
 * documents the output; the --json field names are stable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cmd.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/keys.h"
#include "common/limits.h"
#include "common/redis_sync.h"

struct stats {
    long long stream_len; /* XLEN <p>:events */
    int group_exists;     /* the group HQ_GROUP was found on the stream */
    long long consumers;  /* consumers in the group */
    long long pending;    /* entries delivered to a consumer, not yet acknowledged */
    long long lag;        /* entries not yet delivered to the group; -1 unknown (nil) */
    long long retries;    /* ZCARD <p>:retry */
    long long next_due;   /* unix ms of the earliest retry; -1 none */
    long long dead;       /* XLEN <p>:dead */
    long long endpoints;  /* ZCARD <p>:endpoints */
    long long now;        /* unix ms when read */
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void iso_time(long long ms, char *out, size_t n)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char b[32];
    strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, n, "%s.%03lldZ", b, ms % 1000);
}

/* "in 12s", "in 5m", "overdue by 3s": whole units, rounded down. */
static void relative(long long delta_ms, char *out, size_t n)
{
    long long a = delta_ms < 0 ? -delta_ms : delta_ms;
    long long v;
    const char *unit;
    if (a < 120000) {
        v = a / 1000;
        unit = "s";
    } else if (a < 7200000) {
        v = a / 60000;
        unit = "m";
    } else if (a < 172800000LL) {
        v = a / 3600000;
        unit = "h";
    } else {
        v = a / 86400000LL;
        unit = "d";
    }
    snprintf(out, n, "%s%lld%s", delta_ms < 0 ? "overdue by " : "in ", v, unit);
}

static int is_str(const redisReply *r, const char *s)
{
    return (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) &&
           r->len == strlen(s) && memcmp(r->str, s, r->len) == 0;
}

/* An integer reply, or 0 for anything else (a missing key answers 0 anyway). */
static long long int_of(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
}

/* Reads our group's fields out of XINFO GROUPS (an array of field/value arrays). */
static void read_group(const redisReply *r, struct stats *s)
{
    s->lag = -1;
    if (r->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *g = r->element[i];
        if (g->type != REDIS_REPLY_ARRAY || g->elements % 2)
            continue;
        int ours = 0;
        for (size_t j = 0; j + 1 < g->elements; j += 2)
            ours |= is_str(g->element[j], "name") && is_str(g->element[j + 1], HQ_GROUP);
        if (!ours)
            continue;
        s->group_exists = 1;
        for (size_t j = 0; j + 1 < g->elements; j += 2) {
            const redisReply *k = g->element[j], *v = g->element[j + 1];
            if (is_str(k, "consumers"))
                s->consumers = int_of(v);
            else if (is_str(k, "pending"))
                s->pending = int_of(v);
            else if (is_str(k, "lag"))
                s->lag = v->type == REDIS_REPLY_INTEGER ? v->integer : -1;
        }
        return;
    }
}

/* One pipelined round trip. 0 or HQ_EREDIS (I/O failure, or an error reply
 * other than a missing stream, e.g. WRONGTYPE). */
static int read_stats(redisContext *c, const char *prefix, struct stats *s, struct hq_err *err)
{
    char ev[HQ_KEY_MAX], retry[HQ_KEY_MAX], dead[HQ_KEY_MAX], eps[HQ_KEY_MAX];
    hq_key_events(prefix, ev, sizeof(ev));
    hq_key_retry(prefix, retry, sizeof(retry));
    hq_key_dead(prefix, dead, sizeof(dead));
    hq_key_endpoints(prefix, eps, sizeof(eps));
    const char *cmds[][5] = {
        {"XLEN", ev},     {"XINFO", "GROUPS", ev},
        {"ZCARD", retry}, {"ZRANGE", retry, "0", "0", "WITHSCORES"},
        {"XLEN", dead},   {"ZCARD", eps},
    };
    const int argcs[] = {2, 3, 2, 5, 2, 2};
    const int n = (int)(sizeof(argcs) / sizeof(*argcs));
    for (int i = 0; i < n; i++) {
        if (redisAppendCommandArgv(c, argcs[i], cmds[i], NULL) != REDIS_OK)
            return hq_err_set(err, HQ_ENOMEM, "redis: out of memory");
    }
    memset(s, 0, sizeof(*s));
    s->lag = -1;
    s->next_due = -1;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r)
            return hq_err_set(err, HQ_EREDIS, "redis: %s",
                              c->errstr[0] ? c->errstr : "connection lost");
        if (r->type == REDIS_REPLY_ERROR) {
            /* XINFO on a stream nobody has written yet: no group, not an error. */
            int missing = i == 1 && strstr(r->str, "no such key") != NULL;
            if (!missing && rc == 0)
                rc = hq_err_set(err, HQ_EREDIS, "redis: %s: %.*s", cmds[i][0], (int)r->len, r->str);
            freeReplyObject(r);
            continue;
        }
        switch (i) {
        case 0: s->stream_len = int_of(r); break;
        case 1: read_group(r, s); break;
        case 2: s->retries = int_of(r); break;
        case 3:
            if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                r->element[1]->type == REDIS_REPLY_STRING)
                s->next_due = (long long)strtod(r->element[1]->str, NULL);
            break;
        case 4: s->dead = int_of(r); break;
        case 5: s->endpoints = int_of(r); break;
        }
        freeReplyObject(r);
    }
    s->now = now_ms();
    return rc;
}

static void print_human(const char *prefix, const struct stats *s)
{
    printf("events:       %lld entries in %s:events\n", s->stream_len, prefix);
    if (!s->group_exists) {
        printf("group:        %s not created yet (no worker has started)\n", HQ_GROUP);
    } else {
        printf("group:        %s: %lld consumers, %lld pending, lag ", HQ_GROUP, s->consumers,
               s->pending);
        if (s->lag >= 0)
            printf("%lld\n", s->lag);
        else
            printf("unknown (Redis cannot tell after deletions; see pending)\n");
    }
    printf("retries:      %lld waiting, next due ", s->retries);
    if (s->next_due < 0) {
        printf("none\n");
    } else {
        char t[48], rel[48];
        iso_time(s->next_due, t, sizeof(t));
        relative(s->next_due - s->now, rel, sizeof(rel));
        printf("%s (%s)\n", t, rel);
    }
    printf("dead letters: %lld\n", s->dead);
    printf("endpoints:    %lld\n", s->endpoints);
}

static void print_json(const char *prefix, const struct stats *s)
{
    struct hq_buf b;
    hq_buf_init(&b, 4096);
    char lag[24] = "null", due[24] = "null", due_iso[48] = "null";
    if (s->lag >= 0)
        snprintf(lag, sizeof(lag), "%lld", s->lag);
    if (s->next_due >= 0) {
        char t[40];
        snprintf(due, sizeof(due), "%lld", s->next_due);
        iso_time(s->next_due, t, sizeof(t));
        snprintf(due_iso, sizeof(due_iso), "\"%s\"", t);
    }
    int rc = hq_buf_printf(&b, "{\"prefix\":");
    rc = rc ? rc : hq_buf_json_str(&b, prefix, strlen(prefix));
    rc = rc ? rc
            : hq_buf_printf(&b,
                            ",\"stream_length\":%lld,\"group\":\"%s\",\"group_exists\":%s,"
                            "\"consumers\":%lld,\"pending\":%lld,\"lag\":%s,"
                            "\"retry_backlog\":%lld,\"retry_next_due_ms\":%s,"
                            "\"retry_next_due\":%s,\"dead_letters\":%lld,\"endpoints\":%lld,"
                            "\"now_ms\":%lld}",
                            s->stream_len, HQ_GROUP, s->group_exists ? "true" : "false",
                            s->consumers, s->pending, lag, s->retries, due, due_iso, s->dead,
                            s->endpoints, s->now);
    if (rc == 0)
        printf("%s\n", b.p);
    hq_buf_free(&b);
}

int hq_cmd_stats(int argc, char **argv)
{
    struct hq_common_opts common;
    hq_common_opts_init(&common);
    int json = 0;
    struct hq_opt opts[] = {
        {"json", HQ_OPT_BOOL, &json, NULL, "print JSON (stable field names)", HQ_OPTF_NOENV, 0, 0,
         0},
        HQ_COMMON_OPTS(&common),
        {0},
    };
    static const struct hq_cmd_help help = {
        "stats [--json]",
        "Prints the event stream's length, the worker group's lag, pending entries and "
        "consumers, the retry backlog and its next due time, the dead-letter count and the "
        "number of endpoints."};
    struct hq_err err = {0};
    int npos = 0;
    char **pos = NULL;
    int rc = hq_config_parse(opts, &help, argc, argv, &npos, &pos, &err);
    if (rc == 1)
        return 0;
    if (rc != 0)
        return hq_cli_fail(2, "stats", err.msg);
    if (npos) {
        hq_err_set(&err, HQ_EINVAL, "unexpected argument '%.80s' (usage: hookq %s)", pos[0],
                   help.usage);
        free(pos);
        return hq_cli_fail(2, "stats", err.msg);
    }
    free(pos);
    if (hq_common_opts_apply(&common, &err) != 0)
        return hq_cli_fail(2, "stats", err.msg);
    redisContext *c = hq_redis_connect(common.redis_url, HQ_REDIS_CONNECT_TIMEOUT_MS, &err);
    if (!c)
        return hq_cli_fail(1, "stats", err.msg);
    struct stats s;
    rc = read_stats(c, common.prefix, &s, &err);
    redisFree(c);
    if (rc != 0)
        return hq_cli_fail(1, "stats", err.msg);
    if (json)
        print_json(common.prefix, &s);
    else
        print_human(common.prefix, &s);
    return 0;
}
