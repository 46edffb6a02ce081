/* `hookq worker`: the option table -> struct hq_worker_config -> hq_worker_run. */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "common/config.h"
#include "common/layout_store.h"
#include "common/limits.h"
#include "common/log.h"
#include "worker/worker.h"

static int opts_given(const struct hq_opt *opts, const char *name)
{
    for (; opts->name; opts++) {
        if (strcmp(opts->name, name) == 0)
            return opts->given;
    }
    return 0;
}

/* Raises the soft open-file limit to the hard one (as nginx's
 * worker_rlimit_nofile and Go's runtime do): a worker holding thousands of
 * keep-alive connections needs a descriptor for each, and the usual soft
 * limit of 1,024 would fail them with EMFILE. Returns the limit now in force. */
static long long raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl.rlim_cur = rl.rlim_max;
    }
    return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1000000000 ? 1000000000
                                                                    : (long long)rl.rlim_cur;
}

/* Sizes the connection cache from the open-file limit: every transfer in flight
 * holds a connection, and every cached one a descriptor. Fails with a message
 * naming the flag when they cannot fit. */
static int size_connections(struct hq_worker_config *cfg, int given, char *msg, size_t n)
{
    long long nofile = raise_nofile();
    long long room = nofile - HQ_FD_RESERVE;
    if (cfg->concurrency > room) {
        snprintf(
            msg, n,
            "--concurrency: %lld transfers need %lld open files, but the limit is %lld (raise it with ulimit -n or the service's LimitNOFILE)",
            cfg->concurrency, cfg->concurrency + HQ_FD_RESERVE, nofile);
        return -1;
    }
    if (!given) {
        cfg->max_connections = cfg->concurrency * HQ_CONNECTIONS_PER_SLOT;
        if (cfg->max_connections > room)
            cfg->max_connections = room;
    } else if (cfg->max_connections > room) {
        snprintf(
            msg, n,
            "--max-connections: %lld connections need %lld open files, but the limit is %lld (raise it with ulimit -n or the service's LimitNOFILE)",
            cfg->max_connections, cfg->max_connections + HQ_FD_RESERVE, nofile);
        return -1;
    }
    if (cfg->max_connections < cfg->concurrency)
        cfg->max_connections = cfg->concurrency; /* one per transfer, or keep-alive is lost */
    return 0;
}

static const struct hq_cmd_help help = {
    "worker [options]",
    "Reads events from <prefix>:events through the consumer group 'workers', signs them\n"
    "(Standard Webhooks, both endpoint keys) and POSTs them to every subscribed endpoint.\n"
    "Run as many replicas as you need; each needs only the Redis URL. SIGTERM drains.",
};

/* SIGTERM or SIGINT before the loop (which installs its own handlers) runs:
 * nothing is held yet, so the worker stops as if drained. */
static volatile sig_atomic_t early_stop;

static void on_early_signal(int sig)
{
    (void)sig;
    early_stop = 1;
}

/* The deployment's layout, read before the loop starts (blocking, once per
 * run): retried with a capped backoff while Redis is unreachable, as the
 * worker's own connections are, and waited for while a migration runs.
 * Returns 0, or an error for a layout that cannot be used (err says why). */
static int load_layout(const char *url, const char *prefix, struct hq_layout *L, struct hq_err *err)
{
    int backoff_ms = 100;
    for (;;) {
        struct hq_redis_conn *c = hq_redis_conn_open(url, HQ_REDIS_CONNECT_TIMEOUT_MS, err);
        int rc = c ? hq_layout_wait_migration(c, prefix, L, -1, err) : err->code;
        hq_redis_conn_free(c);
        if (rc == 0 || early_stop)
            return rc;
        if (rc != HQ_EREDIS)
            return rc;
        hq_log(HQ_LOG_WARN, "worker", "reading the key layout: %s; retrying in %d ms", err->msg,
               backoff_ms);
        struct timespec ts = {backoff_ms / 1000, (long)(backoff_ms % 1000) * 1000000L};
        if (early_stop)
            return rc;
        nanosleep(&ts, NULL); /* a signal cuts it short */
        backoff_ms = backoff_ms * 2 > HQ_RECONNECT_MAX_MS ? HQ_RECONNECT_MAX_MS : backoff_ms * 2;
    }
}

int hq_cmd_worker(int argc, char **argv)
{
    struct hq_common_opts common;
    hq_common_opts_init(&common);
    struct hq_worker_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.concurrency = HQ_CONCURRENCY_DEFAULT;
    cfg.endpoint_concurrency = HQ_ENDPOINT_CONCURRENCY_DEFAULT;
    cfg.connect_timeout_ms = HQ_CONNECT_TIMEOUT_DEFAULT_MS;
    cfg.timeout_ms = HQ_TIMEOUT_DEFAULT_MS;
    cfg.max_payload = HQ_PAYLOAD_MAX_DEFAULT;
    cfg.attempt_ttl_ms = HQ_ATTEMPT_TTL_DEFAULT_MS;
    cfg.retain_max_bytes = HQ_RETAIN_MAX_BYTES_DEFAULT;
    cfg.endpoint_cache_ms = HQ_ENDPOINT_CACHE_DEFAULT_MS;
    cfg.defer_ms = HQ_DEFER_DEFAULT_MS;
    cfg.idle_close_ms = HQ_IDLE_CLOSE_DEFAULT_MS;
    cfg.breaker_failures = HQ_BREAKER_FAILURES_DEFAULT;
    cfg.breaker_ratio = HQ_BREAKER_RATIO_DEFAULT;
    cfg.breaker_window_ms = HQ_BREAKER_WINDOW_DEFAULT_MS;
    cfg.breaker_min_attempts = HQ_BREAKER_MIN_ATTEMPTS_DEFAULT;
    cfg.breaker_probe_ms = HQ_BREAKER_PROBE_DEFAULT_MS;
    cfg.disable_after_ms = HQ_DISABLE_AFTER_DEFAULT_MS;
    cfg.failing_after_ms = HQ_FAILING_AFTER_DEFAULT_MS;
    cfg.exhausted_every_ms = HQ_EXHAUSTED_INTERVAL_DEFAULT_MS;
    cfg.dedupe_window_ms = HQ_DEDUPE_WINDOW_DEFAULT_MS;
    const char *on_gone = "on";
    hq_policy_init(&cfg.policy);
    const char *consumer = NULL, *allow_cidrs = NULL;
    int allow_private = 0;
    struct hq_opt opts[] = {
        HQ_COMMON_OPTS(&common),
        {"consumer", HQ_OPT_STR, &consumer, "NAME", "consumer name (default <hostname>-<pid>)", 0,
         0, 0, 0},
        {"concurrency", HQ_OPT_INT, &cfg.concurrency, "N",
         "deliveries in flight at most (default 512)", 0, 1, 100000, 0},
        {"endpoint-concurrency", HQ_OPT_INT, &cfg.endpoint_concurrency, "N",
         "deliveries in flight per endpoint at most (default 32)", 0, 1, 100000, 0},
        {"max-connections", HQ_OPT_INT, &cfg.max_connections, "N",
         "keep-alive connections kept open at most (default 4 x --concurrency, within the open-file limit)",
         0, 1, 1000000, 0},
        {"connect-timeout", HQ_OPT_DURATION, &cfg.connect_timeout_ms, "DUR",
         "connect timeout per attempt (default 5s)", 0, 1, 3600000, 0},
        {"timeout", HQ_OPT_DURATION, &cfg.timeout_ms, "DUR",
         "total timeout per attempt (default 15s)", 0, 1, 3600000, 0},
        {"claim-idle", HQ_OPT_DURATION, &cfg.claim_idle_ms, "DUR",
         "reclaim entries idle this long from dead workers (default timeout + 30s)", 0, 1,
         86400000LL * 7, 0},
        {"max-payload", HQ_OPT_SIZE, &cfg.max_payload, "SIZE",
         "largest payload accepted (default 1M)", 0, 1, HQ_PAYLOAD_MAX_LIMIT, 0},
        HQ_POLICY_OPTS(&cfg.policy),
        {"attempt-ttl", HQ_OPT_DURATION, &cfg.attempt_ttl_ms, "DUR",
         "how long attempt records are kept (default 72h)", 0, 1000, 86400000LL * 365, 0},
        {"endpoint-cache", HQ_OPT_DURATION, &cfg.endpoint_cache_ms, "DUR",
         "how long endpoint data is reused when <prefix>:endpoints:ver does not move (default 60s)",
         0, 1, 3600000, 0},
        {"idle-close", HQ_OPT_DURATION, &cfg.idle_close_ms, "DUR",
         "close idle keep-alive connections after this long without deliveries (default 30s)", 0,
         100, 86400000LL, 0},
        {"defer", HQ_OPT_DURATION, &cfg.defer_ms, "DUR",
         "postponement of a congested endpoint's deliveries (default 5s)", 0, 1, 3600000, 0},
        {"retain", HQ_OPT_DURATION, &cfg.retain_ms, "DUR",
         "keep delivered events this long for hookq event resend / recover --all (default 0: off)",
         0, 0, 86400000LL * 365, 0},
        {"retain-max-bytes", HQ_OPT_SIZE, &cfg.retain_max_bytes, "SIZE",
         "and at most this many bytes of them over all partitions, oldest dropped (default 1G)", 0,
         1024, 1LL << 50, 0},
        {"dead-maxlen", HQ_OPT_INT, &cfg.dead_maxlen, "N",
         "cap the dead-letter stream at about N entries (default: no cap)", 0, 0, 1000000000LL, 0},
        {"breaker-failures", HQ_OPT_INT, &cfg.breaker_failures, "N",
         "open an endpoint's circuit after N consecutive failures (default 10)", 0, 1,
         HQ_BREAKER_FAILURES_MAX, 0},
        {"breaker-ratio", HQ_OPT_INT, &cfg.breaker_ratio, "PERCENT",
         "open it when this % of a window's attempts failed (default 50; 0 off)", 0, 0, 100, 0},
        {"breaker-window", HQ_OPT_DURATION, &cfg.breaker_window_ms, "DUR",
         "the failure-ratio window (default 60s)", 0, HQ_BREAKER_WINDOW_MIN_MS,
         HQ_BREAKER_WINDOW_MAX_MS, 0},
        {"breaker-min-attempts", HQ_OPT_INT, &cfg.breaker_min_attempts, "N",
         "attempts in the window before the ratio counts (default 20)", 0, 1,
         HQ_BREAKER_FAILURES_MAX, 0},
        {"breaker-probe-interval", HQ_OPT_DURATION, &cfg.breaker_probe_ms, "DUR",
         "while open, one probe delivery this often (default 30s)", 0, HQ_BREAKER_PROBE_MIN_MS,
         HQ_BREAKER_PROBE_MAX_MS, 0},
        {"disable-after", HQ_OPT_DURATION, &cfg.disable_after_ms, "DUR",
         "disable an endpoint without a success for this long (default 5d; 0 never)", 0, 0,
         86400000LL * 366, 0},
        {"failing-after", HQ_OPT_DURATION, &cfg.failing_after_ms, "DUR",
         "emit hookq.endpoint.failing after this long without a success (default 1d; 0 never)", 0,
         0, 86400000LL * 366, 0},
        {"exhausted-interval", HQ_OPT_DURATION, &cfg.exhausted_every_ms, "DUR",
         "at most one hookq.delivery.exhausted per endpoint this often (default 60s; 0 never)", 0,
         0, 86400000LL, 0},
        {"disable-on-gone", HQ_OPT_STR, &on_gone, "on|off",
         "a 410 Gone answer disables the endpoint at once (default on)", 0, 0, 0, 0},
        HQ_NETGUARD_OPTS(&allow_private, &allow_cidrs),
        {"proxy", HQ_OPT_STR, &cfg.proxy, "URL",
         "send deliveries through this proxy (proxy environment variables are ignored)", 0, 0, 0,
         0},
        {"ca-file", HQ_OPT_STR, &cfg.ca_file, "PATH",
         "CA bundle to verify endpoints with, instead of the system one (for private CAs)", 0, 0, 0,
         0},
        {"metrics", HQ_OPT_STR, &cfg.metrics, "HOST:PORT", "serve /metrics and /healthz here", 0, 0,
         0, 0},
        {"dedupe-window", HQ_OPT_DURATION, &cfg.dedupe_window_ms, "DUR",
         "deliver an event id at most once per this window (default 24h; 0 off)", 0, 0,
         HQ_DEDUPE_WINDOW_MAX_MS, 0},
        {0},
    };
    struct hq_err err = {0};
    int npos = 0;
    char **pos = NULL;
    int rc = hq_cli_parse(opts, &help, "worker", argc, argv, &npos, &pos);
    if (rc >= 0)
        return rc;
    free(pos);
    if (npos > 0)
        return hq_cli_fail(2, "worker", "takes no arguments (see --help)");
    if (hq_common_opts_apply(&common, &err) != 0 ||
        hq_redis_url_parse(common.redis_url, &cfg.redis, &err) != 0 ||
        hq_policy_check(&cfg.policy, &err) != 0)
        return hq_cli_fail(2, "worker", err.msg);
    if (strcmp(on_gone, "on") != 0 && strcmp(on_gone, "off") != 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "--disable-on-gone: '%.40s' is not on or off", on_gone);
        return hq_cli_fail(2, "worker", msg);
    }
    cfg.disable_on_gone = strcmp(on_gone, "on") == 0;
    cfg.redis_url = common.redis_url;
    cfg.prefix = common.prefix;
    cfg.guard.allow_private = allow_private;
    if (allow_cidrs && hq_netguard_parse_cidrs(&cfg.guard, allow_cidrs, &err) != 0)
        return hq_cli_fail(2, "worker", err.msg);
    long long min_idle = cfg.timeout_ms + HQ_CLAIM_MIN_MARGIN_MS;
    if (!opts_given(opts, "claim-idle")) {
        cfg.claim_idle_ms = cfg.timeout_ms + HQ_CLAIM_MARGIN_MS;
    } else if (cfg.claim_idle_ms <= min_idle) {
        char msg[200];
        snprintf(
            msg, sizeof(msg),
            "--claim-idle: %lldms must exceed the total timeout + 5s (%lldms): a slow but live delivery would be reclaimed and sent twice",
            cfg.claim_idle_ms, min_idle);
        return hq_cli_fail(2, "worker", msg);
    }
    if (cfg.endpoint_concurrency > cfg.concurrency)
        cfg.endpoint_concurrency = cfg.concurrency;
    char msg[256];
    if (size_connections(&cfg, opts_given(opts, "max-connections"), msg, sizeof(msg)) != 0)
        return hq_cli_fail(2, "worker", msg);
    if (consumer) {
        if (!*consumer || strlen(consumer) >= sizeof(cfg.consumer) || strpbrk(consumer, " \r\n"))
            return hq_cli_fail(2, "worker", "--consumer: must be 1-127 characters without spaces");
        snprintf(cfg.consumer, sizeof(cfg.consumer), "%s", consumer);
    } else {
        char host[64] = "worker";
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        snprintf(cfg.consumer, sizeof(cfg.consumer), "%s-%ld", host, (long)getpid());
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return hq_cli_fail(1, "worker", "cannot initialise libcurl");
    struct hq_layout layout = {0};
    struct sigaction sa = {.sa_handler = on_early_signal};
    sigemptyset(&sa.sa_mask);
    for (;;) {
        /* Again after each run: closing the loop's signal handles resets them. */
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        rc = load_layout(common.redis_url, common.prefix, &layout, &err);
        if (early_stop) {
            hq_log(HQ_LOG_INFO, "worker", "signal before start: stopping");
            rc = 0;
            break;
        }
        if (rc != 0)
            break;
        cfg.layout = &layout;
        rc = hq_worker_run(&cfg, &err);
        if (rc != HQ_EAGAIN)
            break; /* else a migration began: wait for its end, run on the new layout */
        hq_log(HQ_LOG_INFO, "worker", "waiting for the migration to end");
    }
    hq_layout_free(&layout);
    curl_global_cleanup();
    if (rc != 0) {
        hq_log(HQ_LOG_ERROR, "worker", "%s", err.msg);
        return 1;
    }
    return 0;
}
