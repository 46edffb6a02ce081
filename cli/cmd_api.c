/* `hookq api` (the HTTP management API, api/) and `hookq api-key
 * create|list|revoke` (its keys, common/apikey.h): option tables, the signal
 * mask and the exit status. docs/api.md documents both. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/worker_rate.h"
#include "cli/cmd.h"
#include "cli/output.h"
#include "common/apikey.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/layout.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/redis_conn.h"

int hq_cmd_api(int argc, char **argv)
{
    struct hq_common_opts common;
    hq_common_opts_init(&common);
    const char *listen = "127.0.0.1:8480", *tls_cert = NULL, *tls_key = NULL, *cors = NULL,
               *allow_cidrs = NULL, *worker_metrics = NULL;
    long long threads = 4, max_payload = HQ_PAYLOAD_MAX_DEFAULT, delay_ms = 5000;
    int allow_private = 0;
    struct hq_opt opts[] = {
        {"listen", HQ_OPT_STR, &listen, "HOST:PORT", "address to serve on (default 127.0.0.1:8480)",
         0, 0, 0, 0},
        {"threads", HQ_OPT_INT, &threads, "N",
         "request threads, each with its own Redis connection", 0, 1, 64, 0},
        {"tls-cert", HQ_OPT_STR, &tls_cert, "FILE", "PEM certificate (with --tls-key: serve HTTPS)",
         0, 0, 0, 0},
        {"tls-key", HQ_OPT_STR, &tls_key, "FILE", "PEM private key", 0, 0, 0, 0},
        {"cors-origin", HQ_OPT_STR, &cors, "LIST",
         "comma-separated origins allowed to call the API from a browser (default: none)", 0, 0, 0,
         0},
        {"max-payload", HQ_OPT_SIZE, &max_payload, "SIZE", "largest event payload accepted", 0, 1,
         HQ_PAYLOAD_MAX_LIMIT, 0},
        {"shutdown-delay", HQ_OPT_DURATION, &delay_ms, "DUR",
         "on SIGTERM, answer /readyz 503 this long before stopping (load balancers notice)", 0, 0,
         600000, 0},
        {"worker-metrics", HQ_OPT_STR, &worker_metrics, "URLS",
         "comma-separated workers' /metrics URLs: deliveries/s in /v1/stats and the console", 0, 0,
         0, 0},
        HQ_NETGUARD_OPTS(&allow_private, &allow_cidrs),
        HQ_COMMON_OPTS(&common),
        {0},
    };
    static const struct hq_cmd_help help = {
        "api [--listen HOST:PORT] [--threads N] [--tls-cert F --tls-key F] [--cors-origin LIST]",
        "Serves the HTTP management API (docs/api.md, docs/openapi.json). Stateless: run as many\n"
        "replicas as needed behind a load balancer. Keys: hookq api-key create.\n"
        "SIGTERM/SIGINT: /readyz answers 503, then requests in flight finish and it exits 0."};
    int npos;
    char **pos;
    int rc = hq_cli_parse(opts, &help, argv[0], argc, argv, &npos, &pos);
    if (rc >= 0)
        return rc;
    free(pos);
    if (npos > 0)
        return hq_cli_fail(2, argv[0], "takes no arguments (see --help)");
    struct hq_err err = {0};
    if (hq_common_opts_apply(&common, &err) != 0)
        return hq_cli_fail(2, argv[0], err.msg);
    struct hq_api_config cfg = {
        .listen = listen,
        .threads = (int)threads,
        .tls_cert = tls_cert,
        .tls_key = tls_key,
        .cors_origins = cors,
        .redis_url = common.redis_url,
        .prefix = common.prefix,
        .max_payload = max_payload,
        .shutdown_delay_ms = delay_ms,
    };
    cfg.guard.allow_private = allow_private;
    if (allow_cidrs && *allow_cidrs && hq_netguard_parse_cidrs(&cfg.guard, allow_cidrs, &err) != 0)
        return hq_cli_fail(2, argv[0], err.msg);
    if (hq_worker_rate_configure(worker_metrics, &err) != 0)
        return hq_cli_fail(2, argv[0], err.msg);
    /* Blocked before the server's threads exist, so only sigwait sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct hq_api *a = hq_api_start(&cfg, &err);
    if (!a)
        return hq_cli_fail(err.code == HQ_EINVAL ? 2 : 1, argv[0], err.msg);
    hq_log(HQ_LOG_INFO, "api", "listening addr=%s port=%d threads=%lld tls=%s", listen,
           hq_api_port(a), threads, tls_cert ? "on" : "off");
    int sig = 0;
    sigwait(&stop, &sig);
    hq_api_stop(a);
    hq_log(HQ_LOG_INFO, "api", "stopped");
    return 0;
}

/* ---- api-key -------------------------------------------------------------------------------- */

/* Opens the deployment's registry node. 0 or the exit status after printing. */
static int open_registry(const char *cmd, const struct hq_common_opts *common,
                         struct hq_redis_conn **conn, struct hq_layout *L, redisContext **c)
{
    struct hq_err err = {0};
    if (hq_common_opts_apply(common, &err) != 0)
        return hq_cli_fail(2, cmd, err.msg);
    if (hq_cli_connect(cmd, common, conn, L) != 0)
        return 1;
    *c = hq_redis_conn_node(*conn, L->reg_slot, &err);
    if (!*c) {
        hq_cli_disconnect(*conn, L);
        return hq_cli_fail(1, cmd, err.msg);
    }
    return 0;
}

static int key_create(int argc, char **argv)
{
    struct hq_common_opts common;
    hq_common_opts_init(&common);
    const char *name = NULL, *scope = NULL, *tenant = "";
    int json = 0;
    struct hq_opt opts[] = {
        {"name", HQ_OPT_STR, &name, "N", "a name for people (required)", HQ_OPTF_NOENV, 0, 0, 0},
        {"scope", HQ_OPT_STR, &scope, "read|write|admin", "what the key may do (required)",
         HQ_OPTF_NOENV, 0, 0, 0},
        {"tenant", HQ_OPT_STR, &tenant, "T", "restrict the key to one tenant's objects",
         HQ_OPTF_NOENV, 0, 0, 0},
        {"json", HQ_OPT_BOOL, &json, NULL, "print JSON", HQ_OPTF_NOENV, 0, 0, 0},
        HQ_COMMON_OPTS(&common),
        {0},
    };
    static const struct hq_cmd_help help = {
        "api-key create --name N --scope read|write|admin [--tenant T] [--json]",
        "Creates an API key and prints it: the only time it is shown (only its SHA-256 is kept)."};
    int npos;
    char **pos;
    int rc = hq_cli_parse(opts, &help, "api-key create", argc, argv, &npos, &pos);
    if (rc >= 0)
        return rc;
    free(pos);
    if (npos > 0)
        return hq_cli_fail(2, "api-key create", "takes no arguments (see --help)");
    struct hq_err err = {0};
    int sc = 0;
    if (!name || !scope)
        return hq_cli_fail(2, "api-key create",
                           !name ? "--name: required" : "--scope: required (read, write or admin)");
    if (hq_apikey_parse_scope(scope, &sc, &err) != 0)
        return hq_cli_fail(2, "api-key create", err.msg);
    struct hq_redis_conn *conn;
    struct hq_layout L;
    redisContext *c;
    rc = open_registry("api-key create", &common, &conn, &L, &c);
    if (rc != 0)
        return rc;
    char key[HQ_APIKEY_STR_MAX];
    struct hq_apikey k;
    rc = hq_apikey_create(c, L.reg, name, sc, tenant, key, &k, &err);
    hq_cli_disconnect(conn, &L);
    if (rc != 0)
        return hq_cli_fail(rc == HQ_EINVAL ? 2 : 1, "api-key create", err.msg);
    if (json) {
        struct hq_buf b;
        hq_buf_init(&b, 4096);
        int wrc = hq_buf_printf(&b, "{\"id\":\"%s\",\"key\":\"%s\",\"name\":", k.id, key);
        wrc = wrc ? wrc : hq_buf_json_str(&b, k.name, strlen(k.name));
        wrc = wrc ? wrc : hq_buf_printf(&b, ",\"scope\":\"%s\",\"tenant\":", scope);
        wrc = wrc ? wrc
                  : (k.tenant[0] ? hq_buf_json_str(&b, k.tenant, strlen(k.tenant))
                                 : hq_buf_printf(&b, "null"));
        wrc = wrc ? wrc : hq_buf_printf(&b, ",\"created_ms\":%lld}", k.created_ms);
        if (wrc == 0)
            printf("%s\n", b.p);
        hq_buf_free(&b);
    } else {
        printf("id: %s\nkey: %s\n", k.id, key);
    }
    return 0;
}

static int print_key(const struct hq_apikey *k, void *arg)
{
    int json = *(int *)arg;
    char t[40];
    if (json) {
        struct hq_buf b;
        hq_buf_init(&b, 2048);
        int rc = hq_buf_printf(&b, "{\"id\":\"%s\",\"name\":", k->id);
        rc = rc ? rc : hq_buf_json_str(&b, k->name, strlen(k->name));
        rc =
            rc ? rc
               : hq_buf_printf(&b, ",\"scope\":\"%s\",\"tenant\":", hq_apikey_scope_name(k->scope));
        rc = rc ? rc
                : (k->tenant[0] ? hq_buf_json_str(&b, k->tenant, strlen(k->tenant))
                                : hq_buf_printf(&b, "null"));
        rc = rc ? rc : hq_buf_printf(&b, ",\"created_ms\":%lld}", k->created_ms);
        if (rc == 0)
            printf("%s\n", b.p);
        hq_buf_free(&b);
        return 0;
    }
    printf("%s\t%s\t%s\t%s\t", k->id, hq_apikey_scope_name(k->scope),
           k->tenant[0] ? k->tenant : "-", hq_iso_time(k->created_ms, t, sizeof(t)));
    hq_out_put_clean(stdout, k->name, 0);
    putchar('\n');
    return 0;
}

static int key_list_or_revoke(int argc, char **argv, int revoke)
{
    const char *cmd = revoke ? "api-key revoke" : "api-key list";
    struct hq_common_opts common;
    hq_common_opts_init(&common);
    int json = 0;
    struct hq_opt opts[] = {
        {"json", HQ_OPT_BOOL, &json, NULL, "print JSON lines", HQ_OPTF_NOENV, 0, 0, 0},
        HQ_COMMON_OPTS(&common),
        {0},
    };
    static const struct hq_cmd_help help_list = {
        "api-key list [--json]",
        "Lists API keys (id, scope, tenant, created, name; never the key)."};
    static const struct hq_cmd_help help_revoke = {
        "api-key revoke ID", "Deletes an API key: every replica refuses it from the next request."};
    int npos;
    char **pos;
    int rc = hq_cli_parse(opts, revoke ? &help_revoke : &help_list, cmd, argc, argv, &npos, &pos);
    if (rc >= 0)
        return rc;
    const char *id = npos > 0 ? pos[0] : NULL;
    free(pos);
    if (npos != (revoke ? 1 : 0))
        return hq_cli_fail(2, cmd,
                           revoke ? "usage: hookq api-key revoke ID" : "takes no arguments");
    struct hq_redis_conn *conn;
    struct hq_layout L;
    redisContext *c;
    rc = open_registry(cmd, &common, &conn, &L, &c);
    if (rc != 0)
        return rc;
    struct hq_err err = {0};
    if (revoke) {
        rc = hq_apikey_revoke(c, L.reg, id, &err);
        if (rc == 0)
            printf("revoked %s\n", id);
    } else {
        if (!json)
            printf("ID\tSCOPE\tTENANT\tCREATED\tNAME\n");
        rc = hq_apikey_list(c, L.reg, print_key, &json, &err);
    }
    hq_cli_disconnect(conn, &L);
    if (rc != 0)
        return hq_cli_fail(rc == HQ_EINVAL ? 2 : 1, cmd, err.msg);
    return 0;
}

static void key_usage(FILE *out)
{
    fprintf(out, "usage: hookq api-key <subcommand> [options]\n\nsubcommands:\n"
                 "  create   create a key (--name N --scope read|write|admin [--tenant T])\n"
                 "  list     list keys (never the key itself)\n"
                 "  revoke   delete a key\n");
}

int hq_cmd_api_key(int argc, char **argv)
{
    int status = hq_cli_usage(argc, argv, key_usage);
    if (status >= 0)
        return status;
    if (strcmp(argv[1], "create") == 0)
        return key_create(argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0)
        return key_list_or_revoke(argc - 1, argv + 1, 0);
    if (strcmp(argv[1], "revoke") == 0)
        return key_list_or_revoke(argc - 1, argv + 1, 1);
    fprintf(stderr, "hookq api-key: '%.80s' is not a subcommand (create, list, revoke)\n", argv[1]);
    return 2;
}
