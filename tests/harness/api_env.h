/* `hookq api` for tests: a real server process on a loopback port against the
 * test's Redis, keys made with the real `hookq api-key create`, and a libcurl
 * client. Include after hq_test.h. */
#ifndef HQ_TESTS_API_ENV_H
#define HQ_TESTS_API_ENV_H

#include <stddef.h>
#include <sys/types.h>

struct hq_api_env {
    pid_t pid;
    int port;
    char base[64]; /* "http://127.0.0.1:<port>" */
    char log[300]; /* its stderr */
};

/* Spawns `hookq api --listen 127.0.0.1:<free port> --redis-url url
 * --shutdown-delay 0 [extra...]` and waits until /healthz answers (fails the
 * test after 10 s, printing its log). extra: NULL-terminated, may be NULL. */
void hq_api_env_start(struct hq_api_env *a, const char *url, const char *const *extra);
/* SIGTERM; asserts it exits 0 within 15 s. */
void hq_api_env_stop(struct hq_api_env *a);

/* `hookq api-key create --name t --scope scope [--tenant tenant]` against url:
 * the key into key (n >= 80). tenant may be NULL. */
void hq_api_env_key(const char *url, const char *scope, const char *tenant, char *key, size_t n);

struct hq_api_resp {
    long status;
    char *body; /* owned, NUL-terminated */
    size_t len;
    char headers[4096]; /* raw response headers */
};
/* One request: body NULL = none (else sent as application/json with its
 * Content-Length); key NULL = no Authorization. Fails the test when the
 * transfer fails. Returns r->status. */
long hq_api_call(const struct hq_api_env *a, const char *method, const char *path, const char *key,
                 const char *body, struct hq_api_resp *r);
/* The same with extra raw header lines (NULL-terminated) and the body length. */
long hq_api_call_ex(const struct hq_api_env *a, const char *method, const char *path,
                    const char *key, const char *body, size_t body_len, const char *const *headers,
                    struct hq_api_resp *r);
void hq_api_resp_free(struct hq_api_resp *r);
/* The body as JSON (fails the test when it is not); json_decref it. */
struct json_t;
struct json_t *hq_api_resp_json(const struct hq_api_resp *r);
/* The string member k of j, "" when absent or not a string. */
const char *hq_api_jstr(const struct json_t *j, const char *k);
/* Three keys of every scope (admin, write, read) for url, n bytes each. */
void hq_api_env_keys(const char *url, char *admin, char *write, char *read, size_t n);

/* Copies the string value of "field" in a JSON text into v ("" when absent). */
void hq_api_json_str(const char *json, const char *field, char *v, size_t n);

#endif
