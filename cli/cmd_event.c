/* `hookq event show EVENT_ID [--json]`: every recorded attempt of an event
 * (JSON objects written by the worker, read by hq_attempts_read, oldest
 * first), grouped by endpoint. Owns reading the flat attempt objects leniently (a record that is
 * not the expected JSON is shown raw, never fatal) and the terminal output.
 * In a partitioned layout they live in one partition (att_lookup finds it). */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/output.h"
#include "common/attempts.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/event.h"
#include "common/keys.h"
#include "common/layout.h"
#include "common/redis_conn.h"
#include "common/limits.h"

/* One attempt record, decoded. Strings are owned by the record. */
struct att {
    const char *raw; /* borrowed from the reply */
    size_t raw_len;
    int parsed;                                    /* 1 when raw was a JSON object */
    char endpoint[HQ_ENDPOINT_ID_MAX + 1];         /* "" when absent */
    long long attempt, at_ms, duration_ms, status; /* -1 when absent */
    char outcome[32];
    char error[256];
    struct hq_buf response; /* decoded response text, bounded by HQ_RESP_KEEP_MAX */
};

/* ---- A lenient reader for flat JSON objects ------------------------------------------------- */

static void ws(const char **p, const char *e)
{
    while (*p < e && isspace((unsigned char)**p))
        (*p)++;
}

/* Appends; a full buffer just drops the tail (the record is bounded anyway). */
static void app(struct hq_buf *b, const void *p, size_t n)
{
    if (hq_buf_append(b, p, n) != 0)
        return;
}

static void put_utf8(struct hq_buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    }
    app(b, u, n);
}

/* Reads a JSON string at *p (on the quote) into b (decoded); -1 if malformed. */
static int str(const char **p, const char *e, struct hq_buf *b)
{
    (*p)++;
    while (*p < e && **p != '"') {
        char ch = **p;
        if (ch != '\\') {
            app(b, &ch, 1);
            (*p)++;
            continue;
        }
        if (++(*p) >= e)
            return -1;
        char esc = **p;
        (*p)++;
        const char *map = strchr("\"\"\\\\//b\bf\fn\nr\rt\t", esc);
        if (esc == 'u') {
            if (e - *p < 4)
                return -1;
            char hex[5] = {(*p)[0], (*p)[1], (*p)[2], (*p)[3], 0};
            char *end;
            unsigned long cp = strtoul(hex, &end, 16);
            if (*end)
                return -1;
            *p += 4;
            put_utf8(b, cp >= 0xd800 && cp <= 0xdfff ? '?' : (unsigned)cp);
        } else if (map && ((map - "\"\"\\\\//b\bf\fn\nr\rt\t") % 2) == 0) {
            app(b, map + 1, 1);
        } else {
            return -1;
        }
    }
    if (*p >= e)
        return -1;
    (*p)++;
    return 0;
}

/* Skips a scalar or a nested value; -1 if malformed. */
static int skip(const char **p, const char *e, struct hq_buf *scratch)
{
    if (**p == '"') {
        hq_buf_reset(scratch);
        return str(p, e, scratch);
    }
    if (**p == '{' || **p == '[') {
        int depth = 0;
        while (*p < e) {
            if (**p == '"') {
                hq_buf_reset(scratch);
                if (str(p, e, scratch) != 0)
                    return -1;
                continue;
            }
            if (**p == '{' || **p == '[')
                depth++;
            if (**p == '}' || **p == ']')
                depth--;
            (*p)++;
            if (depth == 0)
                return 0;
        }
        return -1;
    }
    while (*p < e && **p != ',' && **p != '}' && !isspace((unsigned char)**p))
        (*p)++;
    return 0;
}

static long long num(const char **p, const char *e)
{
    char tmp[32];
    size_t n = 0;
    while (*p < e && n + 1 < sizeof(tmp) && (isdigit((unsigned char)**p) || strchr("-+.eE", **p)))
        tmp[n++] = *(*p)++;
    tmp[n] = '\0';
    if (n == 0)
        return -1;
    return (long long)strtod(tmp, NULL);
}

static void parse_att(struct att *a)
{
    const char *p = a->raw, *e = a->raw + a->raw_len;
    struct hq_buf key, val;
    hq_buf_init(&key, 64);
    hq_buf_init(&val, HQ_RESP_KEEP_MAX * 2);
    a->attempt = a->at_ms = a->duration_ms = a->status = -1;
    ws(&p, e);
    if (p >= e || *p != '{')
        goto out;
    p++;
    for (;;) {
        ws(&p, e);
        if (p < e && *p == '}') {
            a->parsed = 1;
            goto out;
        }
        hq_buf_reset(&key);
        if (p >= e || *p != '"' || str(&p, e, &key) != 0)
            goto out;
        ws(&p, e);
        if (p >= e || *p != ':')
            goto out;
        p++;
        ws(&p, e);
        if (p >= e)
            goto out;
        const char *k = key.p ? key.p : "";
        long long *n = strcmp(k, "attempt") == 0       ? &a->attempt
                       : strcmp(k, "at_ms") == 0       ? &a->at_ms
                       : strcmp(k, "duration_ms") == 0 ? &a->duration_ms
                       : strcmp(k, "status") == 0      ? &a->status
                                                       : NULL;
        if (n && (*p == '-' || isdigit((unsigned char)*p))) {
            *n = num(&p, e);
        } else if (*p == '"' && (strcmp(k, "endpoint_id") == 0 || strcmp(k, "outcome") == 0 ||
                                 strcmp(k, "error") == 0 || strcmp(k, "response") == 0)) {
            struct hq_buf *dst = strcmp(k, "response") == 0 ? &a->response : &val;
            hq_buf_reset(&val);
            if (str(&p, e, dst) != 0)
                goto out;
            if (strcmp(k, "endpoint_id") == 0)
                snprintf(a->endpoint, sizeof(a->endpoint), "%s", val.p ? val.p : "");
            else if (strcmp(k, "outcome") == 0)
                snprintf(a->outcome, sizeof(a->outcome), "%s", val.p ? val.p : "");
            else if (strcmp(k, "error") == 0)
                snprintf(a->error, sizeof(a->error), "%s", val.p ? val.p : "");
        } else if (skip(&p, e, &val) != 0) {
            goto out;
        }
        ws(&p, e);
        if (p < e && *p == ',')
            p++;
    }
out:
    hq_buf_free(&key);
    hq_buf_free(&val);
}

/* ---- Output --------------------------------------------------------------------------------- */

/* An attempt's time, or "-" padded to the same width when unknown. */
static void fmt_time(char *out, size_t n, long long ms)
{
    if (ms < 0)
        snprintf(out, n, "%-24s", "-");
    else
        hq_iso_time(ms, out, n);
}

static void print_text(const char *id, struct att *a, size_t n, const int *order)
{
    struct hq_buf b1, b2, b3;
    hq_buf_init(&b1, 4096);
    hq_buf_init(&b2, 4096);
    hq_buf_init(&b3, HQ_RESP_KEEP_MAX * 4 + 16);
    printf("event %s: %zu attempt%s recorded\n", id, n, n == 1 ? "" : "s");
    const char *cur = NULL;
    for (size_t k = 0; k < n; k++) {
        struct att *x = &a[order[k]];
        if (!cur || strcmp(cur, x->endpoint) != 0) {
            cur = x->endpoint;
            const char *ep = hq_out_cell(&b1, x->endpoint, strlen(x->endpoint), HQ_ENDPOINT_ID_MAX);
            printf("\nendpoint %s\n", x->parsed ? ep : "(unreadable records)");
        }
        if (!x->parsed) {
            hq_buf_reset(&b3);
            hq_out_escape(&b3, x->raw, x->raw_len, 200, 0);
            printf("  (not a JSON object) %s\n", b3.p ? b3.p : "");
            continue;
        }
        char when[40], status[24], dur[32];
        fmt_time(when, sizeof(when), x->at_ms);
        if (x->status > 0)
            snprintf(status, sizeof(status), "%lld", x->status);
        else
            snprintf(status, sizeof(status), "-");
        if (x->duration_ms >= 0)
            snprintf(dur, sizeof(dur), "%lld ms", x->duration_ms);
        else
            snprintf(dur, sizeof(dur), "-");
        const char *outcome = hq_out_cell(&b1, x->outcome, strlen(x->outcome), 16);
        const char *error = hq_out_cell(&b2, x->error, strlen(x->error), 120);
        printf("  #%-3lld %s  %-9s status %-4s %9s  error %s\n", x->attempt, when, outcome, status,
               dur, error);
        if (x->response.len > 0) {
            hq_buf_reset(&b3);
            hq_out_escape(&b3, x->response.p, x->response.len, 200, 0);
            printf("       response: %s\n", b3.p);
        }
    }
    hq_buf_free(&b1);
    hq_buf_free(&b2);
    hq_buf_free(&b3);
}

static void print_json(const char *id, struct att *a, size_t n, const int *order)
{
    struct hq_buf b, scratch;
    hq_buf_init(&b, (size_t)(n + 1) * (HQ_RESP_KEEP_MAX * 8 + 4096));
    hq_buf_init(&scratch, HQ_RESP_KEEP_MAX * 8 + 4096);
    int rc = hq_buf_append(&b, "{\"event_id\":", 12);
    rc = rc ? rc : hq_buf_json_str(&b, id, strlen(id));
    rc = rc ? rc : hq_buf_append(&b, ",\"endpoints\":[", 14);
    const char *cur = NULL;
    for (size_t k = 0; k < n && rc == 0; k++) {
        struct att *x = &a[order[k]];
        if (!cur || strcmp(cur, x->endpoint) != 0) {
            if (cur)
                rc = hq_buf_append(&b, "]},", 3);
            cur = x->endpoint;
            rc = rc ? rc : hq_buf_append(&b, "{\"endpoint_id\":", 15);
            rc = rc ? rc : hq_buf_json_str(&b, x->endpoint, strlen(x->endpoint));
            rc = rc ? rc : hq_buf_append(&b, ",\"attempts\":[", 13);
        } else {
            rc = rc ? rc : hq_buf_append(&b, ",", 1);
        }
        /* Records are embedded as they are when they are valid JSON, else as a string. */
        hq_buf_reset(&scratch);
        if (x->parsed && hq_out_json_pretty(x->raw, x->raw_len, &scratch) == 0)
            rc = rc ? rc : hq_buf_append(&b, x->raw, x->raw_len);
        else
            rc = rc ? rc : hq_buf_json_str(&b, x->raw, x->raw_len);
    }
    if (cur)
        rc = rc ? rc : hq_buf_append(&b, "]}", 2);
    rc = rc ? rc : hq_buf_append(&b, "]}", 2);
    (void)rc; /* sized for every record at its largest */
    printf("%s\n", b.p);
    hq_buf_free(&b);
    hq_buf_free(&scratch);
}

int hq_cmd_event(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "resend") == 0)
        return hq_cmd_event_resend(argc - 1, argv + 1);
    struct hq_common_opts common;
    hq_common_opts_init(&common);
    int json = 0;
    struct hq_opt opts[] = {
        {"json", HQ_OPT_BOOL, &json, NULL, "machine-readable output", HQ_OPTF_NOENV, 0, 0, 0},
        HQ_COMMON_OPTS(&common),
        {0},
    };
    static const struct hq_cmd_help help = {
        "event (show EVENT_ID [--json] | resend EVENT_ID [--endpoint ID])",
        "Shows every recorded delivery attempt of an event, grouped by endpoint: time,\n"
        "attempt number, outcome, HTTP status, duration, error and the start of the response.\n"
        "Records are kept for HOOKQ_ATTEMPT_TTL (72h by default).\n"
        "resend: see hookq event resend --help."};
    int npos;
    char **pos;
    int rc = hq_cli_parse(opts, &help, argv[0], argc, argv, &npos, &pos);
    if (rc >= 0)
        return rc;
    struct hq_err err = {0};
    int status = 0;
    struct hq_redis_conn *c = NULL;
    struct hq_layout L = {0};
    redisReply *r = NULL;
    struct att *a = NULL;
    int *order = NULL;
    if (npos != 2 || strcmp(pos[0], "show") != 0) {
        status = hq_cli_fail(
            2, "event",
            "usage: hookq event show EVENT_ID [--json] | resend EVENT_ID [--endpoint ID]");
        goto out;
    }
    const char *id = pos[1];
    if (hq_event_check_id(id, strlen(id), &err) != 0) {
        status = hq_cli_fail(2, "event show", err.msg);
        goto out;
    }
    if (hq_common_opts_apply(&common, &err) != 0) {
        status = hq_cli_fail(2, "event show", err.msg);
        goto out;
    }
    status = hq_cli_connect("event show", &common, &c, &L);
    if (status != 0)
        goto out;
    r = hq_attempts_lookup(c, &L, id, &err);
    if (!r) {
        status = hq_cli_fail(1, "event show", err.msg);
        goto out;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        fprintf(
            stderr,
            "hookq event show: no attempts recorded for event '%s' (kept for HOOKQ_ATTEMPT_TTL)\n",
            id);
        status = 1;
        goto out;
    }
    size_t n = r->elements;
    a = calloc(n, sizeof(*a));
    order = calloc(n, sizeof(*order));
    if (!a || !order) {
        status = hq_cli_fail(1, "event show", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const redisReply *it = r->element[i];
        a[i].raw = it->type == REDIS_REPLY_STRING ? it->str : "";
        a[i].raw_len = it->type == REDIS_REPLY_STRING ? it->len : 0;
        hq_buf_init(&a[i].response, HQ_RESP_KEEP_MAX * 2);
        parse_att(&a[i]);
    }
    /* Grouped by endpoint in order of first appearance, attempts in record order. */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(a[j].endpoint, a[i].endpoint) == 0;
        if (seen)
            continue;
        for (size_t j = i; j < n; j++) {
            if (strcmp(a[j].endpoint, a[i].endpoint) == 0)
                order[k++] = (int)j;
        }
    }
    if (json)
        print_json(id, a, n, order);
    else
        print_text(id, a, n, order);
    for (size_t i = 0; i < n; i++)
        hq_buf_free(&a[i].response);
out:
    free(a);
    free(order);
    if (r)
        freeReplyObject(r);
    if (c)
        hq_cli_disconnect(c, &L);
    free(pos);
    return status;
}
