/* The web console's static files (the files in api/console/), embedded in the binary at
 * build time (cmake/HqEmbed.cmake, hq_embed_files) and served by `hookq api`
 * for every GET outside /v1: plain HTML/CSS/JS, no build step, nothing loaded
 * from elsewhere. Every console response carries hq_console_headers: a strict
 * Content-Security-Policy (no inline script or style, Trusted Types, no
 * framing), nosniff and no referrer. Pure: lookups in a constant table. */
#ifndef HQ_API_CONSOLE_H
#define HQ_API_CONSOLE_H

#include <stddef.h>

struct hq_console_file {
    const char *path;         /* "/index.html", "/app.js": the URL path it is served at */
    const char *content_type; /* "text/javascript; charset=utf-8" */
    const char *etag;         /* quoted strong ETag, a SHA-256 prefix of the content */
    const unsigned char *data;
    size_t len; /* bytes of data (a NUL follows, not counted) */
};

/* One response header a console response must carry. */
struct hq_console_header {
    const char *name;
    const char *value;
};

/* The generated table (console_gen.c), ended by an entry with path NULL. */
extern const struct hq_console_file hq_console_files[];

/* The headers of every console response, ended by {NULL, NULL}. */
extern const struct hq_console_header hq_console_headers[];

/* The file served at path ("/" is "/index.html"; a query string is not part
 * of path); NULL when there is none. Static data, never freed. */
const struct hq_console_file *hq_console_find(const char *path);

/* The Cache-Control value for f: "no-cache" for index.html (always
 * revalidated, so a new binary's page is seen at once), else a short max-age
 * (the ETag revalidates after it). */
const char *hq_console_cache_control(const struct hq_console_file *f);

/* Queues f's response on conn (libmicrohttpd; the data is static, not
 * copied): 200 with the content type, ETag, Cache-Control and every
 * hq_console_headers entry, or 304 when If-None-Match names f's ETag. For the
 * server's non-API GET/HEAD path, in place of its JSON answer. */
struct MHD_Connection;
int hq_console_queue(struct MHD_Connection *conn, const struct hq_console_file *f);

#endif
