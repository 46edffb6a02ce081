/* The route table (the one list of what the server answers; the OpenAPI
 * coverage test compares it with docs/openapi.json both ways), matching, query
 * parameters, authentication and dispatch. */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "api/console.h"
#include "common/log.h"

const struct hq_api_route hq_api_routes[] = {
    {"GET", "/healthz", HQ_SCOPE_NONE, hq_api_healthz, HQ_BODY_NONE},
    {"GET", "/readyz", HQ_SCOPE_NONE, hq_api_readyz, HQ_BODY_NONE},
    {"GET", "/v1/openapi.json", HQ_SCOPE_READ, hq_api_openapi, HQ_BODY_NONE},
    {"GET", "/v1/endpoints", HQ_SCOPE_READ, hq_api_ep_list, HQ_BODY_NONE},
    {"POST", "/v1/endpoints", HQ_SCOPE_WRITE, hq_api_ep_create, HQ_BODY_DOC},
    {"GET", "/v1/endpoints/{id}", HQ_SCOPE_READ, hq_api_ep_get, HQ_BODY_NONE},
    {"PATCH", "/v1/endpoints/{id}", HQ_SCOPE_WRITE, hq_api_ep_update, HQ_BODY_DOC},
    {"DELETE", "/v1/endpoints/{id}", HQ_SCOPE_WRITE, hq_api_ep_delete, HQ_BODY_NONE},
    {"POST", "/v1/endpoints/{id}/rotate", HQ_SCOPE_WRITE, hq_api_ep_rotate, HQ_BODY_DOC},
    {"POST", "/v1/endpoints/{id}/enable", HQ_SCOPE_WRITE, hq_api_ep_enable, HQ_BODY_NONE},
    {"POST", "/v1/endpoints/{id}/disable", HQ_SCOPE_WRITE, hq_api_ep_disable, HQ_BODY_NONE},
    {"GET", "/v1/endpoints/{id}/attempts", HQ_SCOPE_READ, hq_api_ep_attempts, HQ_BODY_NONE},
    {"GET", "/v1/event-types", HQ_SCOPE_READ, hq_api_event_types, HQ_BODY_NONE},
    {"POST", "/v1/events", HQ_SCOPE_WRITE, hq_api_events_post, HQ_BODY_EVENTS},
    {"GET", "/v1/events/{id}/attempts", HQ_SCOPE_READ, hq_api_event_attempts, HQ_BODY_NONE},
    {"GET", "/v1/dead-letters", HQ_SCOPE_READ, hq_api_dl_list, HQ_BODY_NONE},
    {"GET", "/v1/dead-letters/{id}", HQ_SCOPE_READ, hq_api_dl_get, HQ_BODY_NONE},
    {"POST", "/v1/dead-letters/replay", HQ_SCOPE_WRITE, hq_api_dl_replay, HQ_BODY_DOC},
    {"POST", "/v1/dead-letters/purge", HQ_SCOPE_ADMIN, hq_api_dl_purge, HQ_BODY_DOC},
    {"GET", "/v1/stats", HQ_SCOPE_READ, hq_api_stats, HQ_BODY_NONE},
};
const size_t hq_api_nroutes = sizeof(hq_api_routes) / sizeof(*hq_api_routes);

/* A path parameter: 1-HQ_API_PARAM_MAX of [A-Za-z0-9_.:-]. */
static int param_ok(const char *s, size_t n)
{
    if (n == 0 || n > HQ_API_PARAM_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

/* Matches path against a template, segment by segment. */
static int match(const char *tpl, const char *path,
                 char params[HQ_API_PARAMS_MAX][HQ_API_PARAM_MAX + 1])
{
    int np = 0;
    while (*tpl && *path) {
        if (*tpl != '/' || *path != '/')
            return 0;
        tpl++, path++;
        size_t tl = strcspn(tpl, "/"), pl = strcspn(path, "/");
        if (tpl[0] == '{') {
            if (!param_ok(path, pl) || np == HQ_API_PARAMS_MAX)
                return 0;
            if (params) {
                memcpy(params[np], path, pl);
                params[np][pl] = '\0';
            }
            np++;
        } else if (tl != pl || memcmp(tpl, path, tl) != 0) {
            return 0;
        }
        tpl += tl, path += pl;
    }
    return *tpl == '\0' && *path == '\0';
}

const struct hq_api_route *hq_api_route_find(const char *method, const char *path,
                                             char params[HQ_API_PARAMS_MAX][HQ_API_PARAM_MAX + 1],
                                             int *path_known)
{
    *path_known = 0;
    for (size_t i = 0; i < hq_api_nroutes; i++) {
        if (!match(hq_api_routes[i].path, path, NULL))
            continue;
        *path_known = 1;
        if (strcmp(hq_api_routes[i].method, method) == 0) {
            match(hq_api_routes[i].path, path, params);
            return &hq_api_routes[i];
        }
    }
    return NULL;
}

const char *hq_api_query(struct hq_api_req *q, const char *name)
{
    return MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, name);
}

long long hq_api_query_limit(struct hq_api_req *q)
{
    return hq_api_query_limit_in(q, HQ_API_LIST_DEFAULT, HQ_API_LIST_MAX);
}

long long hq_api_query_limit_in(struct hq_api_req *q, long long def, long long max)
{
    const char *v = hq_api_query(q, "limit");
    if (!v)
        return def;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || n < 1 || n > max) {
        char msg[160];
        snprintf(msg, sizeof(msg), "limit: '%.20s' is not a number 1-%lld", v, max);
        hq_api_problem(q, MHD_HTTP_BAD_REQUEST, "invalid", msg);
        return -1;
    }
    return n;
}

int hq_api_query_bool(struct hq_api_req *q, const char *name, int def)
{
    const char *v = hq_api_query(q, name);
    if (!v)
        return def;
    if (strcmp(v, "true") == 0)
        return 1;
    if (strcmp(v, "false") == 0)
        return 0;
    char msg[160];
    snprintf(msg, sizeof(msg), "%s: '%.20s' is not true or false", name, v);
    hq_api_problem(q, MHD_HTTP_BAD_REQUEST, "invalid", msg);
    return -1;
}

/* Forgets an answer about to be replaced by a second try. */
static void reset_answer(struct hq_api_req *q)
{
    hq_buf_free(&q->out);
    hq_buf_init(&q->out, 0);
    q->answered = 0;
    q->redis_failed = 0;
    q->retry_after[0] = '\0';
    q->www_auth = NULL;
}

void hq_api_dispatch(struct hq_api_req *q)
{
    int known = 0;
    q->route = hq_api_route_find(q->method, q->path, q->params, &known);
    if (!q->route) {
        if (known) {
            hq_api_problem(q, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                           "method: not allowed on this path");
            return;
        }
        /* CONSOLE: non-API GETs (/, /app.js, ...) are the web console's
         * (api/console.h); send_answer queues the file. */
        if ((strcmp(q->method, "GET") == 0 || strcmp(q->method, "HEAD") == 0) &&
            (q->console = hq_console_find(q->path)) != NULL) {
            q->status = MHD_HTTP_OK;
            q->answered = 1;
            return;
        }
        hq_api_problem(q, MHD_HTTP_NOT_FOUND, "not_found", "path: no such route");
        return;
    }
    /* A thread's connection found dead (Redis restarted since its last use)
     * costs one fresh connection, not a 503: the key check and GET handlers
     * only read, so they run once more. A write answers 503 (Retry-After). */
    int auth = q->route->scope != HQ_SCOPE_NONE ? hq_api_auth(q) : 0;
    if (auth != 0 && q->redis_failed) {
        reset_answer(q);
        auth = hq_api_auth(q);
    }
    if (auth != 0)
        return;
    if (q->route->body == HQ_BODY_NONE && q->body.len > 0) {
        hq_api_problem(q, MHD_HTTP_BAD_REQUEST, "invalid", "body: this route takes none");
        return;
    }
    q->route->fn(q);
    if (q->redis_failed && strcmp(q->method, "GET") == 0) {
        reset_answer(q);
        q->route->fn(q);
    }
}
