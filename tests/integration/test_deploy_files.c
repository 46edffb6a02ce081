/* The deployment files (deploy/) and docs/operations.md checked against the
 * code they deploy. The checks live in tests/deploy/check_deploy.py (YAML needs
 * a parser, and Python's is at hand); this file runs each one as its own test,
 * feeding it what only the code knows: the built binary (whose --help lists
 * every option and its HOOKQ_* twin), the stream key and group name from
 * common/keys.h, and a live /metrics page and /healthz from the worker's real
 * metrics server on loopback. A check that cannot run here (no python3, no
 * yaml module, no systemd-analyze) is skipped with its reason, never passed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/keys.h"
#include "common/partition.h"
#include "tests/harness/hq_test.h"
#include "worker/metrics.h"

#define CHECK_SCRIPT HQ_TEST_SRC "/tests/deploy/check_deploy.py"
#define CHECK_SKIP   77 /* the script's "cannot run here" status (automake's convention) */
#define OUT_MAX      (64 * 1024)

/* ---- Running a check ------------------------------------------------------------ */

/* Runs check_deploy.py with the given check and arguments (one string, already
 * shell-safe), prints its output, and passes, fails or skips the test by its
 * exit status. */
static void run_check(const char *check_and_args)
{
    if (system("command -v python3 >/dev/null 2>&1") != 0) {
        print_message("skip: python3 is not installed\n");
        skip();
    }
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "python3 '%s' --src '%s' --bin '%s' %s 2>&1", CHECK_SCRIPT,
             HQ_TEST_SRC, HQ_TEST_BIN, check_and_args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char *out = malloc(OUT_MAX);
    assert_non_null(out);
    /* Read to the end (keeping the first OUT_MAX - 1 bytes) so the child never
     * blocks on a full pipe while pclose waits for it. */
    size_t len = 0;
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), p)) > 0) {
        size_t take = got < OUT_MAX - 1 - len ? got : OUT_MAX - 1 - len;
        memcpy(out + len, chunk, take);
        len += take;
    }
    out[len] = '\0';
    int status = pclose(p);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    /* Straight to stdout: cmocka's print_message truncates long reports. */
    fputs(out, stdout);
    fflush(stdout);
    free(out);
    if (code == CHECK_SKIP)
        skip();
    if (code != 0)
        fail_msg("check_deploy.py %s: exit %d (problems listed above)", check_and_args, code);
}

/* ---- A live metrics server --------------------------------------------------------- */

struct live {
    struct hq_metrics m;
    struct hq_metrics_server *srv;
    int port;
};

static void live_start(struct live *l)
{
    hq_metrics_init(&l->m);
    struct hq_err err = {0};
    l->srv = hq_metrics_serve("127.0.0.1:0", &l->m, &err);
    if (!l->srv)
        fail_msg("hq_metrics_serve: %s", err.msg);
    l->port = hq_metrics_port(l->srv);
    assert_true(l->port > 0);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    return fwrite(p, size, n, arg);
}

/* Saves GET http://127.0.0.1:port/metrics into path. */
static void save_metrics(int port, const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    CURLcode cres = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    fclose(f);
    if (cres != CURLE_OK)
        fail_msg("GET %s: %s", url, curl_easy_strerror(cres));
    assert_int_equal(status, 200);
}

/* ---- Tests ------------------------------------------------------------------------------ */

static void test_deploy_env_vars_named_in_deploy_and_docs_are_real_options(void **state)
{
    (void)state;
    run_check("env-known");
}

static void test_deploy_every_worker_and_scheduler_option_is_in_operations_md(void **state)
{
    (void)state;
    run_check("options-documented");
}

static void test_deploy_yaml_files_and_dashboard_json_parse(void **state)
{
    (void)state;
    run_check("yaml");
}

static void test_deploy_files_agree_on_image_port_probes_grace_stream_and_group(void **state)
{
    (void)state;
    char events[HQ_KEY_MAX];
    assert_true(hq_key_events("hookq", events, sizeof(events)) > 0);
    char args[HQ_KEY_MAX + 256];
    snprintf(args, sizeof(args),
             "consistency --port 9090 --prefix hookq --events-key '%s' --group '%s'", events,
             HQ_GROUP);
    run_check(args);
}

/* The partitioned layout's files (compose profiles cluster and sentinel, the
 * keda-cluster overlay, tag lists in comments and docs/scaling.md). The
 * script recomputes partition tags in Python; it is handed common/partition.c's
 * own tags for a few P so the two rules cannot drift apart unnoticed. */
static void test_deploy_partitioned_layout_files_match_the_partition_rule(void **state)
{
    (void)state;
    static const unsigned ps[] = {1, 4, 6, 12};
    char args[4096];
    int off = snprintf(args, sizeof(args), "partitioned --prefix hookq --group '%s'", HQ_GROUP);
    for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
        char tags[12][HQ_PARTITION_TAG_MAX];
        struct hq_err err = {0};
        if (hq_partition_tags(ps[k], tags, &err) != 0)
            fail_msg("hq_partition_tags(%u): %s", ps[k], err.msg);
        off += snprintf(args + off, sizeof(args) - (size_t)off, " --c-tags %u:", ps[k]);
        for (unsigned i = 0; i < ps[k]; i++)
            off += snprintf(args + off, sizeof(args) - (size_t)off, "%s%s", i ? "," : "", tags[i]);
        assert_true(off > 0 && (size_t)off < sizeof(args));
    }
    run_check(args);
}

static void test_deploy_systemd_units_verify_and_stay_sandboxed(void **state)
{
    (void)state;
    run_check("systemd --threshold 15");
}

static void test_deploy_alerts_and_dashboard_use_only_served_metrics(void **state)
{
    (void)state;
    char dir[] = "/tmp/hq-deploy-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/metrics.txt", dir);
    struct live l;
    live_start(&l);
    save_metrics(l.port, path);
    hq_metrics_stop(l.srv);
    char args[256];
    snprintf(args, sizeof(args), "metric-names --metrics '%s'", path);
    run_check(args);
    unlink(path);
    rmdir(dir);
}

static void test_deploy_dockerfile_installs_every_library_hookq_links(void **state)
{
    (void)state;
    run_check("image-libs");
}

static void test_deploy_docker_healthcheck_follows_healthz(void **state)
{
    (void)state;
    struct live l;
    live_start(&l);
    char args[256];
    atomic_store(&l.m.redis_ready, 1);
    snprintf(args, sizeof(args), "healthcheck --metrics-addr 127.0.0.1:%d --expect ok", l.port);
    run_check(args);
    atomic_store(&l.m.redis_ready, 0);
    snprintf(args, sizeof(args), "healthcheck --metrics-addr 127.0.0.1:%d --expect fail", l.port);
    run_check(args);
    hq_metrics_stop(l.srv);
    /* Nothing listening: the check must fail, not hang or pass. */
    snprintf(args, sizeof(args), "healthcheck --metrics-addr 127.0.0.1:%d --expect fail",
             hq_test_free_port());
    run_check(args);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deploy_env_vars_named_in_deploy_and_docs_are_real_options),
        cmocka_unit_test(test_deploy_every_worker_and_scheduler_option_is_in_operations_md),
        cmocka_unit_test(test_deploy_yaml_files_and_dashboard_json_parse),
        cmocka_unit_test(test_deploy_files_agree_on_image_port_probes_grace_stream_and_group),
        cmocka_unit_test(test_deploy_partitioned_layout_files_match_the_partition_rule),
        cmocka_unit_test(test_deploy_systemd_units_verify_and_stay_sandboxed),
        cmocka_unit_test(test_deploy_alerts_and_dashboard_use_only_served_metrics),
        cmocka_unit_test(test_deploy_dockerfile_installs_every_library_hookq_links),
        cmocka_unit_test(test_deploy_docker_healthcheck_follows_healthz),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
