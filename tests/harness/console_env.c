/* The console's browser-test environment (console_env.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/console_env.h"

#include <sys/stat.h>

void console_api_start(struct wenv *w, struct console_api *a)
{
    memset(a, 0, sizeof(*a));
    const char *extra[] = {"--allow-private", NULL};
    hq_api_env_start(&a->env, wenv_url(w), extra);
    wenv_track(w, a->env.pid);
    snprintf(a->base, sizeof(a->base), "%s", a->env.base);
    hq_api_env_key(wenv_url(w), "admin", NULL, a->key, sizeof(a->key));
}

void console_api_stop(struct console_api *a)
{
    hq_api_env_stop(&a->env);
}

void console_open(struct hq_cdp *b, const struct console_api *a)
{
    char url[128];
    snprintf(url, sizeof(url), "%s/", a->base);
    hq_cdp_navigate(b, url);
    hq_cdp_wait_visible(b, "#api-key");
    hq_cdp_type(b, "#api-key", a->key);
    hq_cdp_click(b, "#key-save");
    hq_cdp_wait_visible(b, "#webhook-list");
    /* kept for this tab only */
    char v[200];
    hq_cdp_eval_str(b, "sessionStorage.getItem('hookq.apiKey')", v, sizeof(v));
    assert_string_equal(v, a->key);
}

void console_go(struct hq_cdp *b, const char *hash)
{
    char q[300], expr[400];
    hq_cdp_quote(hash, q, sizeof(q));
    snprintf(expr, sizeof(expr), "location.hash = %s, true", q);
    json_decref(hq_cdp_eval(b, expr));
    console_wait_shown(b);
}

void console_wait_shown(struct hq_cdp *b)
{
    hq_cdp_wait(b,
                "document.getElementById('main').dataset.shown === (location.hash || '#/webhooks')",
                10000, "the page of the current address to load");
}

void console_wait_text(struct hq_cdp *b, const char *css, const char *text)
{
    char qc[400], qt[600], expr[1200];
    hq_cdp_quote(css, qc, sizeof(qc));
    hq_cdp_quote(text, qt, sizeof(qt));
    snprintf(expr, sizeof(expr),
             "[...document.querySelectorAll(%s)].some((e) => e.textContent === %s)", qc, qt);
    hq_cdp_wait(b, expr, 10000, text);
}

void console_shot(struct hq_cdp *b, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/screenshots", HQ_TEST_BUILD);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/screenshots/console-%s.png", HQ_TEST_BUILD, name);
    hq_cdp_screenshot(b, path);
}

void console_assert_clean(const struct hq_cdp *b)
{
    if (b->dialogs)
        fail_msg("a dialog opened in the console: %s", b->dialog);
    if (b->exceptions || b->log_errors)
        fail_msg("the console logged %d exceptions and %d errors; last: %s", b->exceptions,
                 b->log_errors, b->last_error);
}
