/* `hookq api` for tests (api_env.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "tests/harness/api_env.h"
#include "tests/harness/hq_test.h"

struct sink {
    char *p;
    size_t len;
};

static size_t on_body(char *d, size_t s, size_t n, void *arg)
{
    struct sink *k = arg;
    char *p = realloc(k->p, k->len + s * n + 1);
    if (!p)
        return 0;
    memcpy(p + k->len, d, s * n);
    k->p = p;
    k->len += s * n;
    p[k->len] = '\0';
    return s * n;
}

static size_t on_header(char *d, size_t s, size_t n, void *arg)
{
    char *h = arg;
    size_t have = strlen(h), add = s * n;
    if (have + add < 4095) {
        memcpy(h + have, d, add);
        h[have + add] = '\0';
    }
    return s * n;
}

long hq_api_call_ex(const struct hq_api_env *a, const char *method, const char *path,
                    const char *key, const char *body, size_t body_len, const char *const *headers,
                    struct hq_api_resp *r)
{
    memset(r, 0, sizeof(*r));
    CURL *c = curl_easy_init();
    char url[2048], auth[256];
    snprintf(url, sizeof(url), "%s%s", a->base, path);
    struct curl_slist *hl = NULL;
    if (key) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
        hl = curl_slist_append(hl, auth);
    }
    int own_type = 0;
    for (int i = 0; headers && headers[i]; i++)
        own_type |= strncasecmp(headers[i], "Content-Type:", 13) == 0;
    if (body && !own_type)
        hl = curl_slist_append(hl, "Content-Type: application/json");
    int own_expect = 0;
    for (int i = 0; headers && headers[i]; i++)
        own_expect |= strncasecmp(headers[i], "Expect:", 7) == 0;
    if (!own_expect)
        hl = curl_slist_append(hl, "Expect:");
    for (int i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    struct sink k = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &k);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK)
        fail_msg("%s %s: %s", method, path, curl_easy_strerror(cc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    r->body = k.p ? k.p : calloc(1, 1);
    r->len = k.len;
    return r->status;
}

long hq_api_call(const struct hq_api_env *a, const char *method, const char *path, const char *key,
                 const char *body, struct hq_api_resp *r)
{
    return hq_api_call_ex(a, method, path, key, body, body ? strlen(body) : 0, NULL, r);
}

void hq_api_resp_free(struct hq_api_resp *r)
{
    free(r->body);
    r->body = NULL;
}

void hq_api_json_str(const char *json, const char *field, char *v, size_t n)
{
    char pat[80];
    snprintf(pat, sizeof(pat), "\"%s\":\"", field);
    v[0] = '\0';
    const char *p = strstr(json, pat);
    if (!p)
        return;
    p += strlen(pat);
    size_t len = strcspn(p, "\"");
    if (len >= n)
        len = n - 1;
    memcpy(v, p, len);
    v[len] = '\0';
}

static int healthy(void *arg)
{
    const struct hq_api_env *a = arg;
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof(url), "%s/healthz", a->base);
    struct sink k = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &k);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 500L);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    free(k.p);
    return status == 200;
}

void hq_api_env_start(struct hq_api_env *a, const char *url, const char *const *extra)
{
    memset(a, 0, sizeof(*a));
    a->port = hq_test_free_port();
    snprintf(a->base, sizeof(a->base), "http://127.0.0.1:%d", a->port);
    snprintf(a->log, sizeof(a->log), "%s/api-%d-%d.log", HQ_TEST_BUILD, (int)getpid(), a->port);
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", a->port);
    /* debug: every request is logged, so tests can check what never is. */
    const char *args[48] = {"api", "--listen",    listen, "--redis-url", url, "--shutdown-delay",
                            "0",   "--log-level", "debug"};
    int n = 9;
    for (int i = 0; extra && extra[i] && n < 46; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    a->pid = hq_test_spawn(args, NULL, a->log);
    if (!hq_test_wait(healthy, a, 10000)) {
        hq_test_log_print(a->log, "api");
        fail_msg("hookq api did not answer /healthz on %s", a->base);
    }
}

void hq_api_env_stop(struct hq_api_env *a)
{
    if (a->pid <= 0)
        return;
    int st = hq_test_kill_wait(a->pid, SIGTERM, 15000);
    a->pid = 0;
    if (st != 0)
        hq_test_log_print(a->log, "api");
    assert_int_equal(st, 0);
    unlink(a->log);
}

void hq_api_env_key(const char *url, const char *scope, const char *tenant, char *key, size_t n)
{
    const char *args[16] = {"api-key", "create", "--name",      "test",
                            "--scope", scope,    "--redis-url", url};
    int k = 8;
    if (tenant) {
        args[k++] = "--tenant";
        args[k++] = tenant;
    }
    args[k] = NULL;
    char out[1024], err[1024];
    int st = hq_test_cli(args, NULL, NULL, out, sizeof(out), err, sizeof(err));
    if (st != 0)
        fail_msg("api-key create: exit %d: %s", st, err);
    const char *p = strstr(out, "key: ");
    assert_non_null(p);
    p += 5;
    size_t len = strcspn(p, "\n");
    assert_true(len < n);
    memcpy(key, p, len);
    key[len] = '\0';
}

json_t *hq_api_resp_json(const struct hq_api_resp *r)
{
    json_error_t je;
    json_t *j = json_loadb(r->body, r->len, 0, &je);
    if (!j)
        fail_msg("not JSON (%s): %s", je.text, r->body);
    return j;
}

const char *hq_api_jstr(const json_t *j, const char *k)
{
    const char *s = json_string_value(json_object_get(j, k));
    return s ? s : "";
}

void hq_api_env_keys(const char *url, char *admin, char *write, char *read, size_t n)
{
    hq_api_env_key(url, "admin", NULL, admin, n);
    hq_api_env_key(url, "write", NULL, write, n);
    hq_api_env_key(url, "read", NULL, read, n);
}
