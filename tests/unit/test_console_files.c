/* The console's embedded files (api/console.h): the lookup serves every file of
 * api/console/ byte for byte at its path ("/" is index.html) with its content
 * type and nothing else; the headers carry the CSP the page relies on; the page
 * itself has no inline code and never parses data as HTML. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/console.h"

#define CONSOLE_DIR HQ_TEST_SRC "/api/console"

/* The file at path, read whole (caller frees); fails the test when unreadable. */
static char *slurp(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long len = ftell(fp);
    assert_true(len >= 0);
    rewind(fp);
    char *p = malloc((size_t)len + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)len, fp), (size_t)len);
    p[len] = 0;
    fclose(fp);
    *n = (size_t)len;
    return p;
}

static void test_every_source_file_is_served_byte_for_byte(void **state)
{
    (void)state;
    DIR *d = opendir(CONSOLE_DIR);
    assert_non_null(d);
    int seen = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (de->d_name[0] == '.')
            continue;
        char path[512], url[300];
        snprintf(path, sizeof(path), "%s/%s", CONSOLE_DIR, de->d_name);
        snprintf(url, sizeof(url), "/%s", de->d_name);
        size_t n;
        char *src = slurp(path, &n);
        const struct hq_console_file *f = hq_console_find(url);
        assert_non_null(f);
        assert_string_equal(f->path, url);
        assert_int_equal(f->len, n);
        assert_memory_equal(f->data, src, n);
        assert_int_equal(f->data[n], 0);
        assert_true(f->etag[0] == '"' && f->etag[strlen(f->etag) - 1] == '"');
        free(src);
        seen++;
    }
    closedir(d);
    assert_true(seen >= 3);
    int table = 0;
    for (const struct hq_console_file *f = hq_console_files; f->path; f++)
        table++;
    assert_int_equal(table, seen);
}

static void test_root_is_index_and_types_follow_extensions(void **state)
{
    (void)state;
    const struct hq_console_file *root = hq_console_find("/");
    assert_non_null(root);
    assert_ptr_equal(root, hq_console_find("/index.html"));
    assert_string_equal(root->content_type, "text/html; charset=utf-8");
    assert_string_equal(hq_console_cache_control(root), "no-cache");
    const struct hq_console_file *js = hq_console_find("/app.js");
    assert_non_null(js);
    assert_string_equal(js->content_type, "text/javascript; charset=utf-8");
    assert_string_not_equal(js->etag, root->etag);
    assert_string_equal(hq_console_find("/style.css")->content_type, "text/css; charset=utf-8");
}

static void test_unknown_paths_are_not_found(void **state)
{
    (void)state;
    const char *bad[] = {"",         "index.html", "/index.htm",     "/app.js?v=1", "/APP.JS",
                         "/v1",      "/v1/stats",  "/../app.js",     "//app.js",    "/app.js/",
                         "/console", "/app.js%00", "/.gitattributes"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (hq_console_find(bad[i]) != NULL)
            fail_msg("path \"%s\" was found", bad[i]);
    }
    assert_null(hq_console_find(NULL));
}

static const char *header(const char *name)
{
    for (const struct hq_console_header *h = hq_console_headers; h->name; h++)
        if (strcmp(h->name, name) == 0)
            return h->value;
    return NULL;
}

static void test_headers_forbid_inline_code_framing_and_sniffing(void **state)
{
    (void)state;
    const char *csp = header("Content-Security-Policy");
    assert_non_null(csp);
    const char *want[] = {"default-src 'none'",     "script-src 'self';",
                          "style-src 'self';",      "connect-src 'self';",
                          "frame-ancestors 'none'", "require-trusted-types-for 'script'",
                          "base-uri 'none'",        "form-action 'none'"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (strstr(csp, want[i]) == NULL)
            fail_msg("CSP lacks %s: %s", want[i], csp);
    assert_null(strstr(csp, "unsafe"));
    assert_string_equal(header("X-Content-Type-Options"), "nosniff");
    assert_string_equal(header("X-Frame-Options"), "DENY");
    assert_string_equal(header("Referrer-Policy"), "no-referrer");
}

/* A static guard beside the browser test: the page has no inline script or
 * style and the script never hands a string to an HTML parser. */
static void test_page_has_no_inline_code_and_no_html_sinks(void **state)
{
    (void)state;
    const struct hq_console_file *html = hq_console_find("/index.html");
    const char *p = (const char *)html->data;
    for (const char *s = strstr(p, "<script"); s; s = strstr(s + 1, "<script")) {
        const char *end = strchr(s, '>');
        assert_non_null(end);
        if (memmem(s, (size_t)(end - s), " src=", 5) == NULL)
            fail_msg("inline <script> in index.html");
    }
    const char *never_html[] = {"<style",   " style=",    " onclick=", " onload=",   " onerror=",
                                "src=\"//", "src=\"http", "href=\"//", "href=\"http"};
    for (size_t i = 0; i < sizeof(never_html) / sizeof(never_html[0]); i++)
        if (strstr(p, never_html[i]))
            fail_msg("index.html has %s", never_html[i]);
    const char *js = (const char *)hq_console_find("/app.js")->data;
    const char *never_js[] = {"innerHTML",      "outerHTML", "insertAdjacentHTML",
                              "document.write", "eval(",     "new Function",
                              "srcdoc",         "import("};
    for (size_t i = 0; i < sizeof(never_js) / sizeof(never_js[0]); i++)
        if (strstr(js, never_js[i]))
            fail_msg("app.js uses %s", never_js[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_source_file_is_served_byte_for_byte),
        cmocka_unit_test(test_root_is_index_and_types_follow_extensions),
        cmocka_unit_test(test_unknown_paths_are_not_found),
        cmocka_unit_test(test_headers_forbid_inline_code_framing_and_sniffing),
        cmocka_unit_test(test_page_has_no_inline_code_and_no_html_sinks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
