/* `hookq endpoint add|list|show|update|rotate|disable|enable|delete`: the
 * admin commands over the endpoint registry (common/endpoint.h), their
 * human-readable and --json output (docs/endpoints.md documents both; the JSON
 * field names are stable).
 *
 * It owns argument handling and printing only: validation is
 * common/endpoint.c's, storage, indexes and paging common/endpoint_store.c's
 * (it decodes no hash field itself). Secrets: keys are printed only by add,
 * rotate and show --reveal; custom header values (often credentials) only by
 * add and show --reveal. Everything else prints them masked.
 *
 * Exit status: 0 ok, 1 no such endpoint or Redis trouble, 2 bad usage or input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cmd.h"
#include "cli/output.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/endpoint.h"
#include "common/endpoint_breaker.h"
#include "common/endpoint_edit.h"
#include "common/endpoint_store.h"
#include "common/keys.h"
#include "common/layout.h"
#include "common/redis_conn.h"
#include "common/limits.h"
#include "common/scripts.h"

/* JSON for one endpoint is at most a few fields of bounded size; a list page
 * is flushed after every endpoint, so this bounds one object, not the list. */
#define JSON_OBJ_MAX                                                                               \
    (4 * (HQ_URL_MAX + HQ_NAME_MAX + HQ_DESCRIPTION_MAX) +                                         \
     2 * HQ_HEADERS_MAX * HQ_HEADER_LINE_MAX + 2 * HQ_EVENT_FILTERS_MAX * (HQ_TYPE_MAX + 4) +      \
     4096)

/* --json, which every subcommand takes. */
#define JSON_OPT(x)                                                                                \
    {                                                                                              \
        "json", HQ_OPT_BOOL, &(x)->json, NULL, "print JSON", HQ_OPTF_NOENV, 0, 0, 0                \
    }

/* What a subcommand parsed: the shared options and the connection. */
struct ctx {
    char cmd[48]; /* "endpoint add", for messages */
    struct hq_common_opts common;
    int json; /* --json */
    struct hq_redis_conn *conn;
    struct hq_layout L;
    redisContext *c; /* the registry node's context (borrowed from conn): every registry key
                      * carries L.reg's tag, so one node serves all and MULTI/WATCH stay
                      * single-slot */
};

static int given(const struct hq_opt *opts, const char *name)
{
    for (; opts->name; opts++) {
        if (strcmp(opts->name, name) == 0)
            return opts->given;
    }
    return 0;
}

static int exit_for(int rc)
{
    return (rc == HQ_EINVAL || rc == HQ_EBLOCKED) ? 2 : 1;
}

static int fail(const struct ctx *x, int status, const struct hq_err *err)
{
    return hq_cli_fail(status, x->cmd, err->msg);
}

/* Parses argv for a subcommand that takes npos positional arguments (0 or 1).
 * Returns -1 to go on, or the exit status (0 after --help). */
static int parse(struct ctx *x, struct hq_opt *opts, const struct hq_cmd_help *help, int argc,
                 char **argv, int npos_want, const char **pos_out)
{
    int npos = 0;
    char **pos = NULL;
    int status = hq_cli_parse(opts, help, x->cmd, argc, argv, &npos, &pos);
    if (status >= 0)
        return status;
    struct hq_err err = {0};
    if (npos != npos_want) {
        if (npos_want == 1 && npos == 0)
            hq_err_set(&err, HQ_EINVAL, "missing the endpoint id (usage: hookq %s)", help->usage);
        else
            hq_err_set(&err, HQ_EINVAL, "unexpected argument '%.80s' (usage: hookq %s)",
                       pos[npos_want], help->usage);
        free(pos);
        return fail(x, 2, &err);
    }
    if (npos_want == 1) {
        *pos_out = pos[0];
        if (hq_endpoint_check_id(pos[0], &err) != 0) {
            free(pos);
            return fail(x, 2, &err);
        }
    }
    free(pos);
    if (hq_common_opts_apply(&x->common, &err) != 0)
        return fail(x, 2, &err);
    return -1;
}

/* Connects after the arguments were found good. -1 to go on, else the exit
 * status. */
static int connect_redis(struct ctx *x)
{
    if (hq_cli_connect(x->cmd, &x->common, &x->conn, &x->L) != 0)
        return 1;
    struct hq_err err = {0};
    x->c = hq_redis_conn_node(x->conn, x->L.reg_slot, &err);
    if (!x->c)
        return fail(x, 1, &err);
    return -1;
}

/* parse() for a subcommand on one endpoint id, then connect_redis(). -1 to go
 * on, else the exit status. */
static int parse_id_and_connect(struct ctx *x, struct hq_opt *opts, const struct hq_cmd_help *help,
                                int argc, char **argv, const char **id)
{
    int status = parse(x, opts, help, argc, argv, 1, id);
    return status >= 0 ? status : connect_redis(x);
}

static int finish(struct ctx *x, int status)
{
    if (x->conn)
        hq_cli_disconnect(x->conn, &x->L);
    x->conn = NULL;
    x->c = NULL;
    return status;
}

static int netguard(const struct ctx *x, int allow_private, const char *allow_cidrs,
                    struct hq_netguard *g)
{
    struct hq_err err = {0};
    memset(g, 0, sizeof(*g));
    g->allow_private = allow_private;
    if (allow_cidrs && *allow_cidrs && hq_netguard_parse_cidrs(g, allow_cidrs, &err) != 0)
        return fail(x, 2, &err);
    return -1;
}

/* ---- Output helpers ------------------------------------------------------------------------- */

/* A time the registry recorded, or "never" for 0. */
static const char *when(long long ms, char *out, size_t n)
{
    if (ms <= 0) {
        snprintf(out, n, "never");
        return out;
    }
    return hq_iso_time(ms, out, n);
}

static void print_json_endpoint(const struct hq_endpoint *e, enum hq_endpoint_keys keys,
                                int reveal_headers)
{
    struct hq_buf b;
    hq_buf_init(&b, JSON_OBJ_MAX);
    if (hq_endpoint_json(&b, e, keys, reveal_headers) == 0)
        printf("%s\n", b.p);
    hq_buf_free(&b);
}

static void print_events(const struct hq_endpoint *e)
{
    if (e->nevents == 0)
        hq_out_put_clean(stdout, "*", 0);
    for (int i = 0; i < e->nevents; i++) {
        if (i)
            fputs(",", stdout);
        hq_out_put_clean(stdout, e->events[i], 0);
    }
}

/* "name: 1000ms", or the deployment's default named by its variable. */
static void print_override(const char *name, long long ms, const char *env)
{
    char label[24];
    snprintf(label, sizeof(label), "%s:", name);
    if (ms > 0)
        printf("%-14s%lldms\n", label, ms);
    else
        printf("%-14sdeployment default (%s)\n", label, env);
}

static void print_human(const struct hq_endpoint *e, enum hq_endpoint_keys keys, int reveal_headers)
{
    char t[48];
    printf("id:           %s\n", e->id);
    fputs("name:         ", stdout);
    hq_out_put_clean(stdout, e->name, 0);
    fputs("\nurl:          ", stdout);
    hq_out_put_clean(stdout, e->url, 0);
    fputs("\ndescription:  ", stdout);
    hq_out_put_clean(stdout, e->description, 1);
    fputs("\nevents:       ", stdout);
    print_events(e);
    fputs("\nheaders:      ", stdout);
    for (int i = 0; i < e->nheaders; i++) {
        char h[HQ_HEADER_LINE_MAX + 8];
        hq_endpoint_header_shown(e->headers[i], reveal_headers, h, sizeof(h));
        if (i)
            fputs("\n              ", stdout);
        hq_out_put_clean(stdout, h, 0);
    }
    if (e->nheaders == 0)
        fputs("none", stdout);
    printf("\nstate:        %s\n", e->enabled ? "enabled" : "disabled");
    if (e->max_attempts)
        printf("max_attempts: %d\n", e->max_attempts);
    else
        printf("max_attempts: deployment default (HOOKQ_MAX_ATTEMPTS)\n");
    printf("tenant:       %s\n", e->tenant[0] ? e->tenant : "none");
    print_override("backoff_base", e->backoff_base_ms, "HOOKQ_BACKOFF_BASE");
    if (e->backoff_factor > 0)
        printf("backoff_factor: %g\n", e->backoff_factor);
    else
        printf("backoff_factor: deployment default (HOOKQ_BACKOFF_FACTOR)\n");
    print_override("backoff_max", e->backoff_max_ms, "HOOKQ_BACKOFF_MAX");
    if (e->retry_window_ms > 0)
        printf("retry_window: %lldms\n", e->retry_window_ms);
    else
        printf("retry_window: none (attempts alone bound retries)\n");
    char rl[HQ_RL_STR_MAX];
    hq_rate_format(&e->rate, rl, sizeof(rl));
    printf("rate_limit:   %s\n", rl[0] ? rl : "none");
    char cbo[200];
    hq_endpoint_breaker_format(&e->breaker, cbo, sizeof(cbo));
    printf("breaker:      %s\n", cbo);
    char bt[HQ_BATCH_STR_MAX];
    hq_batch_format(&e->batch, bt, sizeof(bt));
    printf("batch:        %s\n", bt[0] ? bt : "off (one event per request)");
    printf("ordered:      %s\n", e->ordered ? hq_endpoint_ordered_name(e->ordered) : "no");
    if (keys != HQ_EP_KEYS_NONE) {
        char k[HQ_SECRET_STR_MAX + 8];
        for (int slot = 1; slot <= 2; slot++) {
            const char *key = slot == 1 ? e->key1 : e->key2;
            if (keys == HQ_EP_KEYS_MASKED)
                hq_endpoint_mask_key(key, k, sizeof(k));
            else
                snprintf(k, sizeof(k), "%s", key);
            when(slot == 1 ? e->key1_ms : e->key2_ms, t, sizeof(t));
            printf("key%d:         ", slot);
            hq_out_put_clean(stdout, k, 0);
            printf(" (created %s)\n", t);
        }
    }
    printf("created:      %s\n", when(e->created_ms, t, sizeof(t)));
    printf("updated:      %s\n", when(e->updated_ms, t, sizeof(t)));
}

/* ---- Shared argument handling --------------------------------------------------------------- */

static void set_headers(struct hq_endpoint *e, const struct hq_strlist *l)
{
    e->headers = l->n ? hq_calloc((size_t)l->n, sizeof(char *)) : NULL;
    e->nheaders = l->n;
    for (int i = 0; i < l->n; i++)
        e->headers[i] = hq_strdup(l->v[i]);
}

/* hq_endpoint_check_tenant with the message naming the flag ("--tenant: ..."). */
static int check_tenant_flag(const char *tenant, struct hq_err *err)
{
    int rc = hq_endpoint_check_tenant(tenant, err);
    if (rc != 0 && strncmp(err->msg, "tenant: ", 8) == 0) {
        char rest[sizeof(err->msg)];
        snprintf(rest, sizeof(rest), "%s", err->msg + 8);
        hq_err_set(err, rc, "--tenant: %s", rest);
    }
    return rc;
}

/* The per-endpoint tenant and retry policy flags of add and update. */
struct policy_args {
    const char *tenant;
    const char *rate_limit;
    long long base_ms, max_ms, window_ms;
    double factor;
    const char *breaker_ratio;
    struct hq_endpoint_breaker breaker; /* the other --breaker-* flags */
    const char *batch;
    int ordered, no_ordered; /* --ordered, --no-ordered */
    const char *on_failure;  /* --ordered-on-failure */
};

/* The ordered-delivery flags of add and update (docs/ordering.md). */
#define ORDERED_OPTS(p)                                                                            \
    {"ordered",                                                                                    \
     HQ_OPT_BOOL,                                                                                  \
     &(p)->ordered,                                                                                \
     NULL,                                                                                         \
     "deliver one at a time per ordering key, in stream order",                                    \
     HQ_OPTF_NOENV,                                                                                \
     0,                                                                                            \
     0,                                                                                            \
     0},                                                                                           \
        {"ordered-on-failure",                                                                     \
         HQ_OPT_STR,                                                                               \
         &(p)->on_failure,                                                                         \
         "block|skip",                                                                             \
         "a failed head holds its line until delivered or dead (block, default) or is "            \
         "dead-lettered at once (skip)",                                                           \
         HQ_OPTF_NOENV,                                                                            \
         0,                                                                                        \
         0,                                                                                        \
         0},                                                                                       \
    {                                                                                              \
        "no-ordered", HQ_OPT_BOOL, &(p)->no_ordered, NULL, "deliver unordered again",              \
            HQ_OPTF_NOENV, 0, 0, 0                                                                 \
    }

/* Applies --ordered / --ordered-on-failure / --no-ordered to e. */
static int apply_ordered(const struct hq_opt *opts, const struct policy_args *pa,
                         struct hq_endpoint *e, struct hq_err *err)
{
    if (pa->no_ordered && (pa->ordered || given(opts, "ordered-on-failure")))
        return hq_err_set(err, HQ_EINVAL,
                          "--no-ordered: give it without --ordered and "
                          "--ordered-on-failure");
    if (pa->no_ordered) {
        e->ordered = HQ_ORDERED_OFF;
        return 0;
    }
    int mode = e->ordered ? e->ordered : HQ_ORDERED_BLOCK;
    if (given(opts, "ordered-on-failure")) {
        int rc = hq_endpoint_parse_ordered(pa->on_failure, &mode, err);
        if (rc != 0)
            return rc;
        if (!pa->ordered && !e->ordered)
            return hq_err_set(err, HQ_EINVAL,
                              "--ordered-on-failure: the endpoint is not ordered (add --ordered)");
    }
    if (pa->ordered || e->ordered)
        e->ordered = mode;
    return 0;
}

/* The per-endpoint circuit breaker flags: the worker's names (cmd_worker.c),
 * 0 / '' = the worker's value. */
#define BREAKER_OPTS(p)                                                                            \
    {"breaker-failures",                                                                           \
     HQ_OPT_INT,                                                                                   \
     &(p)->breaker.failures,                                                                       \
     "N",                                                                                          \
     "open its circuit after N consecutive failures (0 = the worker's --breaker-failures)",        \
     HQ_OPTF_NOENV,                                                                                \
     0,                                                                                            \
     HQ_BREAKER_FAILURES_MAX,                                                                      \
     0},                                                                                           \
        {"breaker-ratio",                                                                          \
         HQ_OPT_STR,                                                                               \
         &(p)->breaker_ratio,                                                                      \
         "P%",                                                                                     \
         "open it when P% of a window's attempts failed; 0 off ('' = the worker's)",               \
         HQ_OPTF_NOENV,                                                                            \
         0,                                                                                        \
         0,                                                                                        \
         0},                                                                                       \
        {"breaker-window",                                                                         \
         HQ_OPT_DURATION,                                                                          \
         &(p)->breaker.window_ms,                                                                  \
         "DUR",                                                                                    \
         "the ratio's window, 1s-24h (0 = the worker's)",                                          \
         HQ_OPTF_NOENV,                                                                            \
         0,                                                                                        \
         HQ_BREAKER_WINDOW_MAX_MS,                                                                 \
         0},                                                                                       \
        {"breaker-min-attempts",                                                                   \
         HQ_OPT_INT,                                                                               \
         &(p)->breaker.min_attempts,                                                               \
         "N",                                                                                      \
         "attempts in the window before the ratio counts (0 = the worker's)",                      \
         HQ_OPTF_NOENV,                                                                            \
         0,                                                                                        \
         HQ_BREAKER_FAILURES_MAX,                                                                  \
         0},                                                                                       \
    {                                                                                              \
        "breaker-probe-interval", HQ_OPT_DURATION, &(p)->breaker.probe_ms, "DUR",                  \
            "while open, one probe this often, 100ms-24h (0 = the worker's)", HQ_OPTF_NOENV, 0,    \
            HQ_BREAKER_PROBE_MAX_MS, 0                                                             \
    }

#define POLICY_OPTS(p)                                                                             \
    {"tenant",                                                                                     \
     HQ_OPT_STR,                                                                                   \
     &(p)->tenant,                                                                                 \
     "T",                                                                                          \
     "owning tenant (customer/account id): 1-64 of [A-Za-z0-9_.:-] (update: '' removes it)",       \
     HQ_OPTF_NOENV,                                                                                \
     0,                                                                                            \
     0,                                                                                            \
     0},                                                                                           \
        {"backoff-base",                                                                           \
         HQ_OPT_DURATION,                                                                          \
         &(p)->base_ms,                                                                            \
         "DUR",                                                                                    \
         "delay after the first failure (0 = HOOKQ_BACKOFF_BASE)",                                 \
         HQ_OPTF_NOENV,                                                                            \
         0,                                                                                        \
         HQ_BACKOFF_SPAN_MAX_MS,                                                                   \
         0},                                                                                       \
        {"backoff-factor",                                                                         \
         HQ_OPT_DOUBLE,                                                                            \
         &(p)->factor,                                                                             \
         "F",                                                                                      \
         "delay growth per failure, 1-100 (0 = HOOKQ_BACKOFF_FACTOR)",                             \
         HQ_OPTF_NOENV,                                                                            \
         0,                                                                                        \
         0,                                                                                        \
         0},                                                                                       \
        {"rate-limit",                                                                             \
         HQ_OPT_STR,                                                                               \
         &(p)->rate_limit,                                                                         \
         "N/s|N/m",                                                                                \
         "deliveries per second or minute, all workers together ('' or 0 = none)",                 \
         HQ_OPTF_NOENV,                                                                            \
         0,                                                                                        \
         0,                                                                                        \
         0},                                                                                       \
        {"batch",                                                                                  \
         HQ_OPT_STR,                                                                               \
         &(p)->batch,                                                                              \
         "max=N,wait=DUR,bytes=SIZE",                                                              \
         "send up to N events per request as one JSON array (docs/batching.md; off = one each)",   \
         HQ_OPTF_NOENV,                                                                            \
         0,                                                                                        \
         0,                                                                                        \
         0},                                                                                       \
        {"backoff-max",                                                                            \
         HQ_OPT_DURATION,                                                                          \
         &(p)->max_ms,                                                                             \
         "DUR",                                                                                    \
         "longest delay between attempts (0 = HOOKQ_BACKOFF_MAX)",                                 \
         HQ_OPTF_NOENV,                                                                            \
         0,                                                                                        \
         HQ_BACKOFF_SPAN_MAX_MS,                                                                   \
         0},                                                                                       \
    {                                                                                              \
        "retry-window", HQ_OPT_DURATION, &(p)->window_ms, "DUR",                                   \
            "no retry later than this after the first attempt (0 = none)", HQ_OPTF_NOENV, 0,       \
            HQ_RETRY_WINDOW_MAX_MS, 0                                                              \
    }

/* 1 when one of the BREAKER_OPTS flags was given. */
static int breaker_given(const struct hq_opt *opts)
{
    return given(opts, "breaker-failures") || given(opts, "breaker-ratio") ||
           given(opts, "breaker-window") || given(opts, "breaker-min-attempts") ||
           given(opts, "breaker-probe-interval");
}

/* Applies the given policy flags to e (opts: the command's table), then
 * checks e's policy against the deployment's. 0 or HQ_EINVAL. */
static int apply_policy(const struct hq_opt *opts, const struct policy_args *pa, int update,
                        struct hq_endpoint *e, struct hq_err *err)
{
    if (given(opts, "tenant")) {
        if (update && !pa->tenant[0]) {
            e->tenant[0] = '\0';
        } else {
            int rc = check_tenant_flag(pa->tenant, err);
            if (rc != 0)
                return rc;
            snprintf(e->tenant, sizeof(e->tenant), "%s", pa->tenant);
        }
    }
    if (given(opts, "rate-limit")) {
        int rc = hq_rate_parse(pa->rate_limit, &e->rate, err);
        if (rc != 0)
            return rc;
    }
    if (given(opts, "batch")) {
        int rc = hq_endpoint_set_batch(e, pa->batch ? pa->batch : "", NULL, err);
        if (rc != 0)
            return rc;
    }
    if (given(opts, "backoff-base"))
        e->backoff_base_ms = pa->base_ms;
    if (given(opts, "backoff-factor"))
        e->backoff_factor = pa->factor;
    if (given(opts, "backoff-max"))
        e->backoff_max_ms = pa->max_ms;
    if (given(opts, "retry-window"))
        e->retry_window_ms = pa->window_ms;
    if (given(opts, "breaker-failures"))
        e->breaker.failures = pa->breaker.failures;
    if (given(opts, "breaker-window"))
        e->breaker.window_ms = pa->breaker.window_ms;
    if (given(opts, "breaker-min-attempts"))
        e->breaker.min_attempts = pa->breaker.min_attempts;
    if (given(opts, "breaker-probe-interval"))
        e->breaker.probe_ms = pa->breaker.probe_ms;
    if (given(opts, "breaker-ratio")) {
        int rc = hq_endpoint_parse_breaker_ratio(pa->breaker_ratio, &e->breaker, err);
        if (rc != 0)
            return rc;
    }
    int orc = apply_ordered(opts, pa, e, err);
    if (orc != 0)
        return orc;
    int brc = hq_endpoint_check_breaker(&e->breaker, err);
    if (brc != 0)
        return brc;
    struct hq_policy dep;
    hq_endpoint_deployment_policy(&dep);
    return hq_endpoint_check_policy(e, &dep, err);
}

/* ---- add ------------------------------------------------------------------------------------ */

static int cmd_add(struct ctx *x, int argc, char **argv)
{
    const char *name = NULL, *url = NULL, *description = "", *events = "*", *allow_cidrs = NULL;
    struct hq_strlist headers = {0};
    long long max_attempts = 0;
    int disabled = 0, allow_private = 0;
    struct policy_args pa = {0};
    struct hq_opt opts[] = {
        {"name", HQ_OPT_STR, &name, "NAME", "a name for people (required)", HQ_OPTF_NOENV, 0, 0, 0},
        {"url", HQ_OPT_STR, &url, "URL", "http(s) URL to POST to (required)", HQ_OPTF_NOENV, 0, 0,
         0},
        {"description", HQ_OPT_STR, &description, "TEXT", "free text", HQ_OPTF_NOENV, 0, 0, 0},
        {"events", HQ_OPT_STR, &events, "LIST",
         "event types to receive: invoice.paid,user.*,* (default *)", HQ_OPTF_NOENV, 0, 0, 0},
        {"header", HQ_OPT_LIST, &headers, "'K: V'", "custom header sent with every delivery",
         HQ_OPTF_NOENV, 0, 0, 0},
        {"max-attempts", HQ_OPT_INT, &max_attempts, "N",
         "attempts before dead-lettering (0 = HOOKQ_MAX_ATTEMPTS)", HQ_OPTF_NOENV, 0,
         HQ_ENDPOINT_ATTEMPTS_MAX, 0},
        {"disabled", HQ_OPT_BOOL, &disabled, NULL, "create it disabled", HQ_OPTF_NOENV, 0, 0, 0},
        POLICY_OPTS(&pa),
        BREAKER_OPTS(&pa),
        ORDERED_OPTS(&pa),
        JSON_OPT(x),
        HQ_NETGUARD_OPTS(&allow_private, &allow_cidrs),
        HQ_COMMON_OPTS(&x->common),
        {0},
    };
    static const struct hq_cmd_help help = {
        "endpoint add --name N --url U [--events LIST] [--header 'K: V']... [--tenant T] [retry policy] [options]",
        "Registers an endpoint and prints its id and both signing keys (the only time they are shown without --reveal)."};
    struct hq_err err = {0};
    const char *unused = NULL;
    int status = parse(x, opts, &help, argc, argv, 0, &unused);
    if (status >= 0) {
        hq_strlist_free(&headers);
        return status;
    }
    struct hq_endpoint e = {0};
    struct hq_netguard g;
    status = netguard(x, allow_private, allow_cidrs, &g);
    if (status >= 0)
        goto out;
    if (!name || !url) {
        hq_err_set(&err, HQ_EINVAL, "%s: required (usage: hookq %s)", !name ? "--name" : "--url",
                   help.usage);
        status = fail(x, 2, &err);
        goto out;
    }
    e.name = hq_strdup(name);
    e.url = hq_strdup(url);
    e.description = hq_strdup(description);
    e.enabled = !disabled;
    e.max_attempts = (int)max_attempts;
    int rc = hq_endpoint_parse_events(events, &e, &err);
    if (rc == 0)
        rc = apply_policy(opts, &pa, 0, &e, &err);
    if (rc == 0) {
        set_headers(&e, &headers);
        rc = hq_endpoint_validate(&e, &g, &err);
    }
    if (rc != 0) {
        status = fail(x, exit_for(rc), &err);
        goto out;
    }
    /* Everything typed is checked before Redis is contacted. */
    status = connect_redis(x);
    if (status >= 0)
        goto out;
    rc = hq_endpoint_create(x->c, x->L.reg, &e, &err);
    if (rc != 0) {
        status = fail(x, exit_for(rc), &err);
        goto out;
    }
    if (x->json) {
        print_json_endpoint(&e, HQ_EP_KEYS_REVEALED, 1);
    } else {
        printf("id: %s\nkey1: %s\nkey2: %s\n", e.id, e.key1, e.key2);
    }
    status = 0;
out:
    hq_endpoint_free(&e);
    hq_strlist_free(&headers);
    return finish(x, status);
}

/* ---- Loading for a change ------------------------------------------------------------------- */

/* Connects, WATCHes the endpoint's hash, then reads it into old (what the
 * indexes hold now) and into e (to be modified): hq_endpoint_save then fails
 * with HQ_EAGAIN instead of overwriting a concurrent change. -1 to go on. */
static int load_for_write(struct ctx *x, const char *id, struct hq_endpoint *old,
                          struct hq_endpoint *e)
{
    int status = connect_redis(x);
    if (status >= 0)
        return status;
    struct hq_err err = {0};
    int rc = hq_endpoint_get_watched(x->c, x->L.reg, id, old, &err);
    if (rc == 0)
        rc = hq_endpoint_get(x->c, x->L.reg, id, e, &err);
    if (rc != 0)
        return fail(x, exit_for(rc), &err);
    return -1;
}

static int save(struct ctx *x, const struct hq_endpoint *old, struct hq_endpoint *e)
{
    struct hq_err err = {0};
    e->updated_ms = hq_now_ms();
    int rc = hq_endpoint_save(x->c, x->L.reg, old, e, &err);
    if (rc != 0)
        return fail(x, exit_for(rc), &err);
    return -1;
}

/* ---- list ----------------------------------------------------------------------------------- */

static void print_list_line(const struct hq_endpoint *e)
{
    printf("%s\t%s\t", e->id, e->enabled ? "enabled" : "disabled");
    hq_out_put_clean(stdout, e->name, 0);
    putchar('\t');
    hq_out_put_clean(stdout, e->url, 0);
    putchar('\t');
    print_events(e);
    putchar('\n');
}

struct list_out {
    int json;  /* --json */
    int shown; /* endpoints printed so far */
};

/* Prints one endpoint of the listing as soon as it arrives (a page is never
 * held for printing). */
static int on_list(const struct hq_endpoint *e, void *arg)
{
    struct list_out *o = arg;
    if (o->json) {
        if (o->shown)
            putchar(',');
        struct hq_buf jb;
        hq_buf_init(&jb, JSON_OBJ_MAX);
        if (hq_endpoint_json(&jb, e, HQ_EP_KEYS_NONE, 0) == 0)
            fputs(jb.p, stdout);
        hq_buf_free(&jb);
    } else {
        print_list_line(e);
    }
    /* A page's worth at a time reaches a reader at once, as it was fetched. */
    if (++o->shown % HQ_LIST_PAGE == 0)
        fflush(stdout);
    return 0;
}

/* `list --tenant T`: the tenant's index set, page by page. */
static int list_tenant(struct ctx *x, const char *tenant, long long limit)
{
    struct hq_err err = {0};
    if (x->json)
        fputs("{\"endpoints\":[", stdout);
    else
        puts("ID\tSTATE\tNAME\tURL\tEVENTS");
    struct list_out out = {x->json, 0};
    int rc = hq_endpoint_scan_tenant(x->c, x->L.reg, tenant, limit, on_list, &out, &err);
    if (x->json)
        puts(rc == 0 ? "],\"next_after\":null}" : "");
    fflush(stdout);
    return rc == 0 ? 0 : fail(x, 1, &err);
}

static int cmd_list(struct ctx *x, int argc, char **argv)
{
    long long limit = 0;
    const char *after = NULL, *tenant = NULL;
    struct hq_opt opts[] = {
        {"limit", HQ_OPT_INT, &limit, "N", "print at most N endpoints (default: all)",
         HQ_OPTF_NOENV, 1, 1000000000, 0},
        {"tenant", HQ_OPT_STR, &tenant, "T",
         "only this tenant's endpoints (its index: no scan; in no particular order)", HQ_OPTF_NOENV,
         0, 0, 0},
        {"after", HQ_OPT_STR, &after, "ID", "start after this endpoint (a previous list's last)",
         HQ_OPTF_NOENV, 0, 0, 0},
        JSON_OPT(x),
        HQ_COMMON_OPTS(&x->common),
        {0},
    };
    static const struct hq_cmd_help help = {
        "endpoint list [--limit N] [--after ID | --tenant T] [--json]",
        "Lists endpoints oldest first, fetched and printed page by page. Keys are never printed; header values are masked."};
    struct hq_err err = {0};
    const char *unused = NULL;
    int status = parse(x, opts, &help, argc, argv, 0, &unused);
    if (status >= 0)
        return status;
    if (after && hq_endpoint_check_id(after, &err) != 0) {
        hq_err_prefix(&err, "--after");
        return fail(x, 2, &err);
    }
    if (tenant && check_tenant_flag(tenant, &err) != 0)
        return fail(x, 2, &err);
    if (tenant && after) {
        hq_err_set(&err, HQ_EINVAL, "--after and --tenant: give one or the other");
        return fail(x, 2, &err);
    }
    status = connect_redis(x);
    if (status >= 0)
        return finish(x, status);
    if (tenant)
        return finish(x, list_tenant(x, tenant, limit));

    struct hq_endpoint_cursor cur;
    if (hq_endpoint_scan_from(x->c, x->L.reg, after, &cur, &err) != 0) {
        if (err.code == HQ_ENOTFOUND)
            hq_err_prefix(&err, "--after");
        return finish(x, fail(x, 1, &err));
    }
    if (x->json)
        fputs("{\"endpoints\":[", stdout);
    else
        puts("ID\tSTATE\tNAME\tURL\tEVENTS");
    struct list_out out = {x->json, 0};
    if (hq_endpoint_scan(x->c, x->L.reg, &cur, limit, on_list, &out, &err) != 0) {
        if (x->json)
            puts("");
        fflush(stdout);
        return finish(x, fail(x, 1, &err));
    }
    /* With --limit, tell the caller where to continue when more are left. */
    if (x->json) {
        fputs("],\"next_after\":", stdout);
        if (cur.more)
            printf("\"%s\"}\n", cur.last);
        else
            puts("null}");
    } else if (cur.more) {
        fprintf(stderr, "more: hookq endpoint list --after %s\n", cur.last);
    }
    return finish(x, 0);
}

/* ---- show ----------------------------------------------------------------------------------- */

/* An endpoint's circuit breaker (<p>:{H}:cb:<id> in its home partition, see
 * common/scripts/health.lua): state "closed" when there is no hash. */
struct breaker_view {
    char state[16];
    long long failures, next_probe_ms;
    char disabled_reason[200]; /* the registry's, when disabled automatically */
};

static int read_breaker(struct ctx *x, const char *id, struct breaker_view *v, struct hq_err *err)
{
    memset(v, 0, sizeof(*v));
    snprintf(v->state, sizeof(v->state), "closed");
    unsigned h = hq_layout_partition_for(&x->L, id, strlen(id), 0);
    char key[HQ_KEY_MAX];
    hq_key_breaker(x->L.part[h].base, id, key, sizeof(key));
    const char *argv[] = {"HMGET", key, "state", "fails", "next_probe_ms"};
    redisReply *r = hq_redis_conn_cmd(x->conn, x->L.part[h].slot, err, 5, argv, NULL);
    if (!r)
        return HQ_EREDIS;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[0]->type == REDIS_REPLY_STRING) {
        snprintf(v->state, sizeof(v->state), "%s", r->element[0]->str);
        if (r->element[1]->type == REDIS_REPLY_STRING)
            v->failures = atoll(r->element[1]->str);
        if (r->element[2]->type == REDIS_REPLY_STRING)
            v->next_probe_ms = atoll(r->element[2]->str);
    }
    freeReplyObject(r);
    hq_key_endpoint(x->L.reg, id, key, sizeof(key));
    const char *rargv[] = {"HGET", key, "disabled_reason"};
    r = hq_redis_conn_cmd(x->conn, x->L.reg_slot, err, 3, rargv, NULL);
    if (!r)
        return HQ_EREDIS;
    if (r->type == REDIS_REPLY_STRING)
        snprintf(v->disabled_reason, sizeof(v->disabled_reason), "%s", r->str);
    freeReplyObject(r);
    return 0;
}

static void print_breaker(const struct breaker_view *v, int json)
{
    char t[48];
    int open = strcmp(v->state, "closed") != 0;
    if (json) {
        printf(",\"circuit\":{\"state\":\"%s\",\"failures\":%lld,\"next_probe_ms\":%lld},"
               "\"disabled_reason\":",
               v->state, v->failures, open ? v->next_probe_ms : 0);
        struct hq_buf b;
        hq_buf_init(&b, sizeof(v->disabled_reason) * 6 + 8);
        if (hq_buf_json_str(&b, v->disabled_reason, strlen(v->disabled_reason)) == 0)
            printf("%s}\n", b.p);
        hq_buf_free(&b);
        return;
    }
    if (v->disabled_reason[0]) {
        fputs("disabled_why: ", stdout);
        hq_out_put_clean(stdout, v->disabled_reason, 0);
        fputs("\n", stdout);
    }
    if (strcmp(v->state, "disabled") == 0)
        printf("circuit:      disabled (%lld failures; enable the endpoint to reset)\n",
               v->failures);
    else if (!open)
        printf("circuit:      closed (%lld consecutive failures)\n", v->failures);
    else
        printf("circuit:      %s (%lld failures; next probe %s)\n", v->state, v->failures,
               when(v->next_probe_ms, t, sizeof(t)));
}

static int cmd_show(struct ctx *x, int argc, char **argv)
{
    int reveal = 0;
    struct hq_opt opts[] = {
        {"reveal", HQ_OPT_BOOL, &reveal, NULL, "print the keys and header values in full",
         HQ_OPTF_NOENV, 0, 0, 0},
        JSON_OPT(x),
        HQ_COMMON_OPTS(&x->common),
        {0},
    };
    static const struct hq_cmd_help help = {
        "endpoint show ID [--reveal] [--json]",
        "Shows one endpoint. Keys print as whsec_...abcd and header values as *** unless --reveal."};
    const char *id = NULL;
    int status = parse_id_and_connect(x, opts, &help, argc, argv, &id);
    if (status >= 0)
        return status;
    struct hq_err err = {0};
    struct hq_endpoint e;
    int rc = hq_endpoint_get(x->c, x->L.reg, id, &e, &err);
    if (rc != 0)
        return finish(x, fail(x, exit_for(rc), &err));
    struct breaker_view cb;
    rc = read_breaker(x, id, &cb, &err);
    if (rc != 0) {
        hq_endpoint_free(&e);
        return finish(x, fail(x, exit_for(rc), &err));
    }
    if (x->json) {
        struct hq_buf b;
        hq_buf_init(&b, JSON_OBJ_MAX);
        if (hq_endpoint_json(&b, &e, reveal ? HQ_EP_KEYS_REVEALED : HQ_EP_KEYS_MASKED, reveal) ==
                0 &&
            b.len) {
            b.p[b.len - 1] = '\0'; /* the closing brace: the circuit goes inside */
            fputs(b.p, stdout);
            print_breaker(&cb, 1);
        }
        hq_buf_free(&b);
    } else {
        print_human(&e, reveal ? HQ_EP_KEYS_REVEALED : HQ_EP_KEYS_MASKED, reveal);
        print_breaker(&cb, 0);
    }
    hq_endpoint_free(&e);
    return finish(x, 0);
}

/* ---- update --------------------------------------------------------------------------------- */

static int cmd_update(struct ctx *x, int argc, char **argv)
{
    const char *name = NULL, *url = NULL, *description = NULL, *events = NULL, *allow_cidrs = NULL;
    struct hq_strlist headers = {0};
    long long max_attempts = 0;
    int clear_headers = 0, allow_private = 0;
    struct policy_args pa = {0};
    struct hq_opt opts[] = {
        {"name", HQ_OPT_STR, &name, "NAME", "new name", HQ_OPTF_NOENV, 0, 0, 0},
        {"url", HQ_OPT_STR, &url, "URL", "new http(s) URL", HQ_OPTF_NOENV, 0, 0, 0},
        {"description", HQ_OPT_STR, &description, "TEXT", "new description", HQ_OPTF_NOENV, 0, 0,
         0},
        {"events", HQ_OPT_STR, &events, "LIST", "new event filters (replaces all)", HQ_OPTF_NOENV,
         0, 0, 0},
        {"header", HQ_OPT_LIST, &headers, "'K: V'", "custom header (replaces all headers)",
         HQ_OPTF_NOENV, 0, 0, 0},
        {"clear-headers", HQ_OPT_BOOL, &clear_headers, NULL, "remove every custom header",
         HQ_OPTF_NOENV, 0, 0, 0},
        {"max-attempts", HQ_OPT_INT, &max_attempts, "N",
         "attempts before dead-lettering (0 = HOOKQ_MAX_ATTEMPTS)", HQ_OPTF_NOENV, 0,
         HQ_ENDPOINT_ATTEMPTS_MAX, 0},
        POLICY_OPTS(&pa),
        BREAKER_OPTS(&pa),
        ORDERED_OPTS(&pa),
        JSON_OPT(x),
        HQ_NETGUARD_OPTS(&allow_private, &allow_cidrs),
        HQ_COMMON_OPTS(&x->common),
        {0},
    };
    static const struct hq_cmd_help help = {
        "endpoint update ID [--name N] [--url U] [--description D] [--events LIST] [--header 'K: V']... [--clear-headers] [--max-attempts N] [--tenant T] [--backoff-base DUR] [--backoff-factor F] [--backoff-max DUR] [--retry-window DUR] [--rate-limit N/s] [--batch max=N,wait=DUR,bytes=SIZE|off] [--breaker-failures N] [--breaker-ratio P%] [--breaker-window DUR] [--breaker-min-attempts N] [--breaker-probe-interval DUR] [--ordered [--ordered-on-failure block|skip] | --no-ordered]",
        "Changes an endpoint; workers see the change within HOOKQ_ENDPOINT_CACHE."};
    const char *id = NULL;
    struct hq_err err = {0};
    struct hq_endpoint old = {0}, e = {0};
    struct hq_netguard g;
    int status = parse(x, opts, &help, argc, argv, 1, &id);
    if (status >= 0)
        goto out;
    if (!(name || url || description || events || headers.n || clear_headers ||
          given(opts, "max-attempts") || given(opts, "tenant") || given(opts, "backoff-base") ||
          given(opts, "backoff-factor") || given(opts, "backoff-max") ||
          given(opts, "retry-window") || given(opts, "rate-limit") || given(opts, "batch") ||
          breaker_given(opts) || pa.ordered || pa.no_ordered ||
          given(opts, "ordered-on-failure"))) {
        hq_err_set(&err, HQ_EINVAL, "nothing to update (usage: hookq %s)", help.usage);
        status = fail(x, 2, &err);
        goto out;
    }
    if (headers.n && clear_headers) {
        hq_err_set(&err, HQ_EINVAL, "--header and --clear-headers: give one or the other");
        status = fail(x, 2, &err);
        goto out;
    }
    /* A URL that was accepted when set stays accepted: the guard applies to a new
     * URL. */
    status = netguard(x, allow_private, allow_cidrs, &g);
    if (status >= 0)
        goto out;
    hq_endpoint_update_guard(&g, url != NULL);
    status = load_for_write(x, id, &old, &e);
    if (status >= 0)
        goto out;
    if (name) {
        free(e.name);
        e.name = hq_strdup(name);
    }
    if (url) {
        free(e.url);
        e.url = hq_strdup(url);
    }
    if (description) {
        free(e.description);
        e.description = hq_strdup(description);
    }
    int rc = 0;
    if (events) {
        hq_endpoint_free_list(&e.events, &e.nevents);
        rc = hq_endpoint_parse_events(events, &e, &err);
    }
    if (headers.n || clear_headers) {
        hq_endpoint_free_list(&e.headers, &e.nheaders);
        set_headers(&e, &headers);
    }
    if (given(opts, "max-attempts"))
        e.max_attempts = (int)max_attempts;
    if (rc == 0)
        rc = apply_policy(opts, &pa, 1, &e, &err);
    if (rc == 0)
        rc = hq_endpoint_validate(&e, &g, &err);
    if (rc != 0) {
        status = fail(x, exit_for(rc), &err);
        goto out;
    }
    status = save(x, &old, &e);
    if (status >= 0)
        goto out;
    if (x->json)
        print_json_endpoint(&e, HQ_EP_KEYS_MASKED, 0);
    else
        printf("updated %s\n", e.id);
    status = 0;
out:
    hq_endpoint_free(&old);
    hq_endpoint_free(&e);
    hq_strlist_free(&headers);
    return finish(x, status);
}

/* ---- rotate --------------------------------------------------------------------------------- */

static int cmd_rotate(struct ctx *x, int argc, char **argv)
{
    long long slot = 0;
    struct hq_opt opts[] = {
        {"slot", HQ_OPT_INT, &slot, "1|2", "which key to replace (default: the older)",
         HQ_OPTF_NOENV, 1, 2, 0},
        JSON_OPT(x),
        HQ_COMMON_OPTS(&x->common),
        {0},
    };
    static const struct hq_cmd_help help = {
        "endpoint rotate ID [--slot 1|2] [--json]",
        "Replaces one of the endpoint's two signing keys (the older by default) and prints the new key. Deliveries are signed with both keys, so receivers that know either keep verifying during the switch."};
    const char *id = NULL;
    struct hq_err err = {0};
    struct hq_endpoint old = {0}, e = {0};
    int status = parse(x, opts, &help, argc, argv, 1, &id);
    if (status >= 0)
        goto out;
    status = load_for_write(x, id, &old, &e);
    if (status >= 0)
        goto out;
    int used = 0;
    int rc = hq_endpoint_rotate(&e, (int)slot, &used, &err);
    if (rc != 0) {
        status = fail(x, 1, &err);
        goto out;
    }
    slot = used;
    const char *key = slot == 1 ? e.key1 : e.key2;
    status = save(x, &old, &e);
    if (status >= 0)
        goto out;
    if (x->json)
        printf("{\"id\":\"%s\",\"slot\":%lld,\"key\":\"%s\"}\n", e.id, slot, key);
    else
        printf("id: %s\nkey%lld: %s\n", e.id, slot, key);
    status = 0;
out:
    hq_endpoint_free(&old);
    hq_endpoint_free(&e);
    return finish(x, status);
}

/* ---- enable / disable / delete -------------------------------------------------------------- */

static int cmd_set_enabled(struct ctx *x, int argc, char **argv, int enabled)
{
    struct hq_opt opts[] = {
        JSON_OPT(x),
        HQ_COMMON_OPTS(&x->common),
        {0},
    };
    static const struct hq_cmd_help help_on = {"endpoint enable ID [--json]",
                                               "Resumes deliveries to a disabled endpoint."};
    static const struct hq_cmd_help help_off = {
        "endpoint disable ID [--json]",
        "Stops deliveries to an endpoint: new events skip it and its due retries are dead-lettered (reason endpoint_disabled) for replay after enabling it."};
    const char *id = NULL;
    struct hq_endpoint old = {0}, e = {0};
    int status = parse(x, opts, enabled ? &help_on : &help_off, argc, argv, 1, &id);
    if (status >= 0)
        goto out;
    status = load_for_write(x, id, &old, &e);
    if (status >= 0)
        goto out;
    e.enabled = enabled;
    status = save(x, &old, &e);
    if (status >= 0)
        goto out;
    if (enabled && !old.enabled) {
        struct hq_err err = {0};
        if (hq_endpoint_breaker_reset(x->conn, &x->L, &e, &err) != 0) {
            status = fail(x, 1, &err);
            goto out;
        }
    }
    if (x->json)
        printf("{\"id\":\"%s\",\"enabled\":%s}\n", e.id, enabled ? "true" : "false");
    else
        printf("%s %s\n", enabled ? "enabled" : "disabled", e.id);
    status = 0;
out:
    hq_endpoint_free(&old);
    hq_endpoint_free(&e);
    return finish(x, status);
}

static int cmd_enable(struct ctx *x, int argc, char **argv)
{
    return cmd_set_enabled(x, argc, argv, 1);
}

static int cmd_disable(struct ctx *x, int argc, char **argv)
{
    return cmd_set_enabled(x, argc, argv, 0);
}

static int cmd_delete(struct ctx *x, int argc, char **argv)
{
    struct hq_opt opts[] = {
        JSON_OPT(x),
        HQ_COMMON_OPTS(&x->common),
        {0},
    };
    static const struct hq_cmd_help help = {
        "endpoint delete ID [--json]",
        "Deletes an endpoint and its index entries. Its pending retries are dead-lettered (reason endpoint_deleted) when they come due."};
    const char *id = NULL;
    int status = parse_id_and_connect(x, opts, &help, argc, argv, &id);
    if (status >= 0)
        return status;
    struct hq_err err = {0};
    int rc = hq_endpoint_delete(x->c, x->L.reg, id, &err);
    if (rc != 0)
        return finish(x, fail(x, exit_for(rc), &err));
    if (x->json)
        printf("{\"id\":\"%s\",\"deleted\":true}\n", id);
    else
        printf("deleted %s\n", id);
    return finish(x, 0);
}

/* ---- Dispatch ------------------------------------------------------------------------------- */

struct subcommand {
    const char *name;
    int (*run)(struct ctx *x, int argc, char **argv);
    const char *summary;
};

static const struct subcommand subcommands[] = {
    {"add", cmd_add, "register an endpoint; prints its id and both keys"},
    {"list", cmd_list, "list endpoints, page by page"},
    {"show", cmd_show, "show one endpoint (keys masked unless --reveal)"},
    {"update", cmd_update, "change name, URL, description, events, headers, max attempts"},
    {"rotate", cmd_rotate, "replace the older signing key (or --slot 1|2)"},
    {"disable", cmd_disable, "stop deliveries to an endpoint"},
    {"enable", cmd_enable, "resume deliveries to an endpoint"},
    {"delete", cmd_delete, "delete an endpoint and its index entries"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: hookq endpoint <subcommand> [options]\n\nsubcommands:\n");
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(*subcommands); i++)
        fprintf(out, "  %-8s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(out, "\n'hookq endpoint <subcommand> --help' lists its options.\n");
}

int hq_cmd_endpoint(int argc, char **argv)
{
    int status = hq_cli_usage(argc, argv, usage);
    if (status >= 0)
        return status;
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(*subcommands); i++) {
        if (strcmp(argv[1], subcommands[i].name) != 0)
            continue;
        struct ctx x;
        memset(&x, 0, sizeof(x));
        snprintf(x.cmd, sizeof(x.cmd), "endpoint %s", subcommands[i].name);
        hq_common_opts_init(&x.common);
        return subcommands[i].run(&x, argc - 1, argv + 1);
    }
    fprintf(
        stderr,
        "hookq endpoint: '%.80s' is not a subcommand (add, list, show, update, rotate, disable, enable, delete)\n",
        argv[1]);
    return 2;
}
