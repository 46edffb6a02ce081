/* The web console's safety in headless Chromium (tests/harness/cdp.h)
 * against a real `hookq api` and Redis:
 * - the console's responses carry the CSP (no inline script or style,
 *   Trusted Types, no framing) and nosniff;
 * - an endpoint named <img src=x onerror=alert(1)> (URL and description
 *   markup too), created in the page, shows those characters in the list and
 *   the detail page and runs nothing: no dialog, no element made of it; HTML
 *   sinks throw under the page's Trusted Types policy.
 * - a webhook's page: rotation per slot (the key shown once is the stored
 *   one), disable/enable, delete behind a typed confirmation.
 * - the dead-letter list page by page (More), filtered by reason prefix, the
 *   purge confirmation naming the count.
 * Screenshots: <build>/screenshots/console-*.png. The seed's flow is
 * test_console_flow.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>

#include "common/endpoint_store.h"
#include "tests/harness/console_env.h"

static struct wenv W;
static const char XSS_NAME[] = "<img src=x onerror=alert(1)>";

/* Lower-cases s in place; returns it. */
static char *lower(char *s)
{
    for (char *c = s; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return s;
}

/* The console's own responses: CSP and the other headers, types, ETag
 * revalidation; /v1 and unknown paths stay the API's. */
static void test_console_responses_carry_the_csp(void **state)
{
    (void)state;
    struct console_api a;
    console_api_start(&W, &a);
    const char *paths[] = {"/", "/app.js", "/style.css"};
    const char *types[] = {"text/html", "text/javascript", "text/css"};
    for (int i = 0; i < 3; i++) {
        struct hq_api_resp r;
        assert_int_equal(hq_api_call(&a.env, "GET", paths[i], NULL, NULL, &r), 200);
        char *hd = lower(r.headers);
        if (!strstr(hd, types[i]) ||
            !strstr(hd, "content-security-policy: default-src 'none'; script-src 'self'") ||
            !strstr(hd, "frame-ancestors 'none'") || !strstr(hd, "require-trusted-types-for") ||
            !strstr(hd, "x-content-type-options: nosniff") || !strstr(hd, "x-frame-options: deny"))
            fail_msg("GET %s answered:\n%s", paths[i], r.headers);
        /* revalidation: the same ETag answers 304 with no body */
        const char *et = strstr(hd, "etag: ");
        assert_non_null(et);
        char inm[128];
        snprintf(inm, sizeof(inm), "If-None-Match: %.*s", (int)strcspn(et + 6, "\r\n"), et + 6);
        const char *extra[] = {inm, NULL};
        struct hq_api_resp r2;
        assert_int_equal(hq_api_call_ex(&a.env, "GET", paths[i], NULL, NULL, 0, extra, &r2), 304);
        assert_int_equal(r2.len, 0);
        hq_api_resp_free(&r2);
        hq_api_resp_free(&r);
    }
    /* the API is still the API: no key, a problem; an unknown path, 404 */
    struct hq_api_resp r;
    assert_int_equal(hq_api_call(&a.env, "GET", "/v1/endpoints", NULL, NULL, &r), 401);
    assert_non_null(strstr(lower(r.headers), "application/problem+json"));
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&a.env, "GET", "/nope.js", NULL, NULL, &r), 404);
    hq_api_resp_free(&r);
    assert_int_equal(hq_api_call(&a.env, "POST", "/", NULL, "{}", &r), 404);
    hq_api_resp_free(&r);
    console_api_stop(&a);
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
    console_api_stop(&a);
}

/* The endpoint as stored (the registry's), for comparing with the page. */
static void stored(const char *id, struct hq_endpoint *e)
{
    struct hq_err err = {0};
    if (hq_endpoint_get(wenv_reg_node(&W), hq_tl_reg(&W.tl, "hookq"), id, e, &err) != 0)
        fail_msg("endpoint %s: %s", id, err.msg);
}

/* A webhook's page: rotate each slot (the new key shown once is the stored
 * one), disable and enable, delete only after typing the id. */
static void test_webhook_page_actions(void **state)
{
    (void)state;
    struct hq_endpoint ep, now;
    wenv_endpoint_at(&W, "/detail", "invoice.paid", 0, &ep);
    struct console_api a;
    console_api_start(&W, &a);
    struct hq_cdp b;
    hq_cdp_launch(&b, 1280, 900);
    console_open(&b, &a);
    char hash[128], key[HQ_SECRET_STR_MAX];
    snprintf(hash, sizeof(hash), "#/webhooks/%s", ep.id);
    console_go(&b, hash);
    console_wait_text(&b, "#wh-detail-name", "test");
    for (int slot = 1; slot <= 2; slot++) {
        char sel[32];
        snprintf(sel, sizeof(sel), "#rotate-%d", slot);
        hq_cdp_click(&b, sel);
        char q[200], expr[400];
        hq_cdp_quote(slot == 1 ? "" : key, q, sizeof(q));
        snprintf(expr, sizeof(expr),
                 "((document.querySelector('#rotated-key') || {}).textContent || '') !== %s", q);
        hq_cdp_wait(&b, expr, 10000, "the rotated key");
        hq_cdp_text(&b, "#rotated-key", key, sizeof(key));
        stored(ep.id, &now);
        assert_string_equal(key, slot == 1 ? now.key1 : now.key2);
        assert_string_not_equal(key, slot == 1 ? ep.key1 : ep.key2);
        hq_endpoint_free(&now);
        if (slot == 1)
            console_shot(&b, "rotated");
    }
    hq_cdp_click(&b, "#toggle-enabled");
    console_wait_text(&b, "#wh-state .badge", "disabled");
    stored(ep.id, &now);
    assert_int_equal(now.enabled, 0);
    hq_endpoint_free(&now);
    hq_cdp_click(&b, "#toggle-enabled");
    console_wait_text(&b, "#wh-state .badge", "enabled");
    stored(ep.id, &now);
    assert_int_equal(now.enabled, 1);
    hq_endpoint_free(&now);
    /* delete: the button stays disabled until the id is typed */
    hq_cdp_click(&b, "#delete");
    hq_cdp_type(&b, "#delete-confirm", "ep_wrong");
    json_t *dis = hq_cdp_eval(&b, "document.querySelector('#delete-yes').disabled");
    assert_true(json_is_true(dis));
    json_decref(dis);
    hq_cdp_type(&b, "#delete-confirm", ep.id);
    console_shot(&b, "delete-confirm");
    hq_cdp_click(&b, "#delete-yes");
    hq_cdp_wait(&b, "location.hash === '#/webhooks'", 10000, "back to the list");
    console_wait_shown(&b);
    struct hq_err err = {0};
    assert_int_equal(
        hq_endpoint_get(wenv_reg_node(&W), hq_tl_reg(&W.tl, "hookq"), ep.id, &now, &err),
        HQ_ENOTFOUND);
    console_assert_clean(&b);
    hq_cdp_close(&b);
    console_api_stop(&a);
    hq_endpoint_free(&ep);
}

/* n dead letters of endpoint ep with this reason, as the scheduler writes
 * them (plain fields in the dead-letter stream). */
static void seed_dead(int n, const char *ep, const char *reason)
{
    freeReplyObject(hq_test_cmd(
        W.c, "EVAL %s 0 %d %s %s",
        "for i = 1, tonumber(ARGV[1]) do redis.call('XADD', 'hookq:dead', '*', 'event_id', "
        "ARGV[2] .. '-' .. i, 'type', 'invoice.paid', 'endpoint_id', ARGV[2], 'tenant', '', "
        "'reason', ARGV[3], 'attempts', '3', 'last_status', '500', 'payload', '{\"i\":' .. i .. '}')"
        " end return 1",
        n, ep, reason));
}

static int rows(struct hq_cdp *b)
{
    json_t *v = hq_cdp_eval(b, "document.querySelectorAll('#dl-list .dl-row').length");
    int n = (int)json_integer_value(v);
    json_decref(v);
    return n;
}

/* The dead-letter list pages (50 rows, More follows the iterator) and
 * filters by reason prefix; the purge confirmation names the count. */
static void test_dead_letters_page_by_page(void **state)
{
    (void)state;
    seed_dead(60, "ep_many", "exhausted");
    seed_dead(5, "ep_blocked", "blocked: 10.0.0.1 is private");
    struct console_api a;
    console_api_start(&W, &a);
    struct hq_cdp b;
    hq_cdp_launch(&b, 1280, 900);
    console_open(&b, &a);
    console_go(&b, "#/dead-letters");
    console_wait_text(&b, "#dl-status", "50+ dead letters");
    assert_int_equal(rows(&b), 50);
    hq_cdp_click(&b, "#dl-more");
    console_wait_text(&b, "#dl-status", "65 dead letters");
    assert_int_equal(rows(&b), 65);
    json_t *hidden = hq_cdp_eval(&b, "document.querySelector('#dl-more').hidden");
    assert_true(json_is_true(hidden));
    json_decref(hidden);
    /* no duplicates across the pages */
    json_t *uniq = hq_cdp_eval(
        &b,
        "new Set([...document.querySelectorAll('#dl-list .dl-row')].map((r) => r.dataset.id)).size");
    assert_int_equal(json_integer_value(uniq), 65);
    json_decref(uniq);
    hq_cdp_type(&b, "#dl-reason", "blocked");
    hq_cdp_click(&b, "#dl-apply");
    console_wait_text(&b, "#dl-status", "5 dead letters");
    assert_int_equal(rows(&b), 5);
    hq_cdp_click(&b, "#dl-purge");
    console_wait_text(&b, "#dl-purge-yes", "Yes, purge 5 dead letters");
    console_shot(&b, "dead-letters-filtered");
    hq_cdp_click(&b, "#dl-purge-yes");
    console_wait_text(&b, "#notice", "purged 5 dead letters");
    assert_int_equal(hq_test_cmd_int(W.c, "XLEN hookq:dead"), 60);
    console_assert_clean(&b);
    hq_cdp_close(&b);
    console_api_stop(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        WENV_TEST(test_console_responses_carry_the_csp, &W),
        WENV_TEST(test_names_are_text_not_markup, &W),
        WENV_TEST(test_webhook_page_actions, &W),
        WENV_TEST(test_dead_letters_page_by_page, &W),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
