/* The web console's files and headers (console.h). */
#include "api/console.h"

#include <microhttpd.h>
#include <string.h>

/* script-src/style-src 'self': no inline code or style attribute runs;
 * require-trusted-types-for: assigning a string to innerHTML (or any other
 * HTML/script sink) throws, so values from Redis can only ever be text;
 * frame-ancestors 'none': no clickjacking; connect-src 'self': the page talks
 * to its own API only; form-action/base-uri 'none': no form posts elsewhere. */
#define HQ_CONSOLE_CSP                                                                             \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "                    \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "            \
    "require-trusted-types-for 'script'; trusted-types 'none'"

const struct hq_console_header hq_console_headers[] = {
    {"Content-Security-Policy", HQ_CONSOLE_CSP},
    {"X-Content-Type-Options", "nosniff"},
    {"X-Frame-Options", "DENY"},
    {"Referrer-Policy", "no-referrer"},
    {"Cross-Origin-Opener-Policy", "same-origin"},
    {"Cross-Origin-Resource-Policy", "same-origin"},
    {NULL, NULL},
};

const struct hq_console_file *hq_console_find(const char *path)
{
    if (path == NULL)
        return NULL;
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (const struct hq_console_file *f = hq_console_files; f->path != NULL; f++)
        if (strcmp(f->path, path) == 0)
            return f;
    return NULL;
}

const char *hq_console_cache_control(const struct hq_console_file *f)
{
    return strcmp(f->path, "/index.html") == 0 ? "no-cache" : "max-age=300";
}

int hq_console_queue(struct MHD_Connection *conn, const struct hq_console_file *f)
{
    const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match");
    int same = inm != NULL && strstr(inm, f->etag) != NULL;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(same ? 0 : f->len, (void *)f->data, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    int ok = MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, f->etag) == MHD_YES &&
             MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
                                     hq_console_cache_control(f)) == MHD_YES;
    if (!same)
        ok = ok &&
             MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, f->content_type) == MHD_YES;
    for (const struct hq_console_header *h = hq_console_headers; ok && h->name; h++)
        ok = MHD_add_response_header(r, h->name, h->value) == MHD_YES;
    enum MHD_Result ret =
        ok ? MHD_queue_response(conn, same ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, r) : MHD_NO;
    MHD_destroy_response(r);
    return ret;
}
