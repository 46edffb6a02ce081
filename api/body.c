/* Request bodies and JSON answers over the connection: the Content-Type
 * check, decoding through json.c (pure, fuzzed), and dumping jansson values
 * into an answer. */
#include <microhttpd.h>
#include <string.h>
#include <strings.h>

#include "api/internal.h"

int hq_api_json_body(struct hq_api_req *q, const struct hq_jfield *fields, json_t **out)
{
    *out = NULL;
    const char *ct = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Content-Type");
    if (q->body.len > 0 && (!ct || strncasecmp(ct, "application/json", 16) != 0)) {
        hq_api_problem(q, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                       "content-type: must be application/json");
        return -1;
    }
    struct hq_err err = {0};
    int too_complex = 0;
    if (hq_api_json_decode(q->body.len ? q->body.p : "{}", q->body.len ? q->body.len : 2, fields,
                           out, &too_complex, &err) != 0) {
        if (too_complex)
            hq_api_problem(q, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large", err.msg);
        else
            hq_api_problem(q, MHD_HTTP_BAD_REQUEST, "invalid", err.msg);
        return -1;
    }
    return 0;
}

static int to_buf(const char *p, size_t n, void *arg)
{
    return hq_buf_append(arg, p, n) == 0 ? 0 : -1;
}

void hq_api_json_answer(struct hq_api_req *q, unsigned status, json_t *out)
{
    struct hq_buf b;
    hq_buf_init(&b, 64u * 1024 * 1024);
    if (out && json_dump_callback(out, to_buf, &b, JSON_COMPACT) == 0)
        hq_api_json(q, status, &b);
    else
        hq_api_problem(q, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "answer: out of memory");
    hq_buf_free(&b);
    json_decref(out);
}
