/* Answers: RFC 9457 problem documents carrying common/'s messages verbatim
 * (the CLI prints the same text), and JSON bodies. */
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

#include "api/internal.h"

#define PROBLEM_MAX 2048

struct slug {
    const char *code, *title;
};
static const struct slug slugs[] = {
    {"invalid", "Invalid request"},
    {"blocked", "Address refused by the SSRF guard"},
    {"not_found", "Not found"},
    {"conflict", "Concurrent change"},
    {"unauthorized", "Missing or invalid API key"},
    {"forbidden", "The API key's scope is too small"},
    {"too_many_requests", "Too many failed authentications"},
    {"payload_too_large", "Body too large"},
    {"length_required", "Content-Length required"},
    {"unsupported_media_type", "Body must be application/json"},
    {"method_not_allowed", "Method not allowed"},
    {"unavailable", "Redis unavailable"},
    {"internal", "Internal error"},
};

/* The CLI names flags ("--backoff-base: ..."); the API's field is the JSON member. */
static const char *const flag_fields[][2] = {
    {"--backoff-base", "backoff_base_ms"},
    {"--backoff-max", "backoff_max_ms"},
    {"--backoff-factor", "backoff_factor"},
    {"--retry-window", "retry_window_ms"},
    {"--rate-limit", "rate_limit"},
    {"--tenant", "tenant"},
    {"--max-attempts", "max_attempts"},
    {"--since", "since"},
    {"--until", "until"},
    {"--batch", "batch"},
};

/* The field a message names: its leading token before ": ", when it looks like one. */
static void field_of(const char *detail, char *out, size_t n)
{
    out[0] = '\0';
    if (strncmp(detail, "header ", 7) == 0) { /* "header 'X-A': value has a CR or LF" */
        snprintf(out, n, "headers");
        return;
    }
    const char *colon = strstr(detail, ": ");
    size_t len = colon ? (size_t)(colon - detail) : 0;
    if (len == 0 || len >= n || strcspn(detail, " '\"") < len)
        return;
    memcpy(out, detail, len);
    out[len] = '\0';
    for (size_t i = 0; i < sizeof(flag_fields) / sizeof(*flag_fields); i++)
        if (strcmp(out, flag_fields[i][0]) == 0)
            snprintf(out, n, "%s", flag_fields[i][1]);
}

void hq_api_problem(struct hq_api_req *q, unsigned status, const char *code, const char *detail)
{
    const char *title = "Error";
    for (size_t i = 0; i < sizeof(slugs) / sizeof(*slugs); i++)
        if (strcmp(slugs[i].code, code) == 0)
            title = slugs[i].title;
    char field[64];
    field_of(detail, field, sizeof(field));
    hq_buf_free(&q->out);
    hq_buf_init(&q->out, PROBLEM_MAX);
    int rc = hq_buf_printf(&q->out,
                           "{\"type\":\"about:blank\",\"title\":\"%s\",\"status\":%u,"
                           "\"code\":\"%s\",\"detail\":",
                           title, status, code);
    rc = rc ? rc : hq_buf_json_str(&q->out, detail, strlen(detail));
    if (field[0]) {
        rc = rc ? rc : hq_buf_printf(&q->out, ",\"field\":");
        rc = rc ? rc : hq_buf_json_str(&q->out, field, strlen(field));
    }
    rc = rc ? rc : hq_buf_printf(&q->out, "}");
    if (rc != 0) {
        hq_buf_reset(&q->out);
        if (hq_buf_printf(&q->out, "{\"status\":%u,\"code\":\"%s\"}", status, code) != 0)
            hq_buf_reset(&q->out);
    }
    q->status = status;
    q->ctype = "application/problem+json";
    q->answered = 1;
}

void hq_api_fail(struct hq_api_req *q, int rc, const struct hq_err *err)
{
    const char *msg = err && err->msg[0] ? err->msg : hq_strerror(rc);
    switch (rc) {
    case HQ_EINVAL: hq_api_problem(q, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid", msg); break;
    case HQ_EBLOCKED: hq_api_problem(q, MHD_HTTP_UNPROCESSABLE_CONTENT, "blocked", msg); break;
    case HQ_ENOTFOUND: hq_api_problem(q, MHD_HTTP_NOT_FOUND, "not_found", msg); break;
    case HQ_EAGAIN: hq_api_problem(q, MHD_HTTP_CONFLICT, "conflict", msg); break;
    case HQ_ETOOBIG: hq_api_problem(q, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large", msg); break;
    case HQ_EREDIS:
    case HQ_ETIMEDOUT:
        hq_api_redis_drop();
        q->redis_failed = 1;
        snprintf(q->retry_after, sizeof(q->retry_after), "1");
        hq_api_problem(q, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", msg);
        break;
    default: hq_api_problem(q, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", msg);
    }
}

void hq_api_json(struct hq_api_req *q, unsigned status, struct hq_buf *b)
{
    hq_buf_free(&q->out);
    q->out = *b;
    hq_buf_init(b, 0);
    q->status = status;
    q->ctype = "application/json";
    q->answered = 1;
}
