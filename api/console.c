/* The web console's files and headers (console.h). */
#include "api/console.h"

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
