/* The web console's safety in headless Chromium (tests/harness/cdp.h)
 * against a real `hookq api` and Redis:
 * - the console's responses carry the CSP (no inline script or style,
 *   Trusted Types, no framing) and nosniff;
 * - an endpoint named <img src=x onerror=alert(1)> (URL and description
 *   markup too), created in the page, shows those characters in the list and
 *   the detail page and runs nothing: no dialog, no element made of it; HTML
 *   sinks throw under the page's Trusted Types policy.
 * Screenshots: <build>/screenshots/console-xss-*.png. The seed's flow is
 * test_console_flow.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>

#include "tests/harness/console_env.h"

static struct wenv W;
static const char XSS_NAME[] = "<img src=x onerror=alert(1)>";

/* The console's own responses: CSP, nosniff, types; /v1 stays JSON. */
static void test_console_responses_carry_the_csp(void **state)
{
    (void)state;
    struct console_api a;
    console_api_start(&W, &a);
    const char *paths[] = {"/", "/app.js", "/style.css"};
    const char *types[] = {"text/html", "text/javascript", "text/css"};
    for (int i = 0; i < 3; i++) {
        char cmd[512], out[4096] = "";
        snprintf(cmd, sizeof(cmd), "curl -s -D - -o /dev/null %s%s", a.base, paths[i]);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        size_t n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = 0;
        pclose(p);
        for (char *c = out; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        if (!strstr(out, "http/1.1 200") || !strstr(out, types[i]) ||
            !strstr(out, "content-security-policy: default-src 'none'; script-src 'self'") ||
            !strstr(out, "frame-ancestors 'none'") ||
            !strstr(out, "x-content-type-options: nosniff") || !strstr(out, "etag: \""))
            fail_msg("GET %s answered:\n%s", paths[i], out);
    }
}

/* An endpoint named like markup, created in the page: shown as those
 * characters in the list and the detail page; nothing runs. */
static void test_names_are_text_not_markup(void **state)
{
    (void)state;
    struct console_api a;
    console_api_start(&W, &a);
    struct hq_cdp b;
    hq_cdp_launch(&b, 1280, 900);
    console_open(&b, &a);
    hq_cdp_click(&b, "#new-webhook");
    hq_cdp_type(&b, "#wh-name", XSS_NAME);
    hq_cdp_type(&b, "#wh-url", "https://example.com/<script>alert(2)</script>");
    hq_cdp_type(&b, "#wh-description", "<b onmouseover=alert(3)>bold</b>");
    hq_cdp_click(&b, "#wh-create");
    hq_cdp_wait_visible(&b, "#key1");
    console_wait_text(&b, "#created-name", XSS_NAME);
    console_go(&b, "#/webhooks");
    console_wait_text(&b, "#webhook-list .ep-name", XSS_NAME);
    console_shot(&b, "xss-list");
    hq_cdp_click(&b, "#webhook-list tr.clickable");
    console_wait_text(&b, "#wh-detail-name", XSS_NAME);
    console_shot(&b, "xss-detail");
    json_t *n = hq_cdp_eval(&b, "document.querySelectorAll('img, script:not([src]), b').length");
    assert_int_equal(json_integer_value(n), 0);
    json_decref(n);
    /* the page's own markup cannot be bypassed either: HTML sinks throw
     * (Trusted Types), inline script is refused by the CSP */
    json_t *tt = hq_cdp_eval(&b, "(() => { try { document.body.insertAdjacentHTML('beforeend',"
                                 " '<img src=x onerror=alert(4)>'); return 'inserted'; }"
                                 " catch (e) { return e.name; } })()");
    assert_string_equal(json_string_value(tt), "TypeError");
    json_decref(tt);
    assert_int_equal(b.dialogs, 0);
    assert_int_equal(b.exceptions, 0);
    hq_cdp_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        WENV_TEST(test_console_responses_carry_the_csp, &W),
        WENV_TEST(test_names_are_text_not_markup, &W),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
