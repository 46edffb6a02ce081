/* The console's browser-test environment (console_env.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/console_env.h"

#include <ctype.h>
#include <sys/stat.h>

static int api_ready(void *arg)
{
    struct console_api *a = arg;
    char url[128];
    snprintf(url, sizeof(url), "%s/readyz", a->base);
    struct hq_buf body;
    hq_buf_init(&body, 4096);
    long st = wenv_http_get(url, &body);
    hq_buf_free(&body);
    return st == 200;
}

void console_api_start(struct wenv *w, struct console_api *a)
{
    memset(a, 0, sizeof(*a));
    a->port = hq_test_free_port();
    snprintf(a->base, sizeof(a->base), "http://127.0.0.1:%d", a->port);
    snprintf(a->log, sizeof(a->log), "%s/api.log", w->dir);
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", a->port);
    const char *args[] = {"api", "--listen", listen, "--redis-url", wenv_url(w), NULL};
    const char *env[] = {"HOOKQ_ALLOW_PRIVATE=1", NULL};
    a->pid = wenv_track(w, hq_test_spawn(args, env, a->log));
    if (!hq_test_wait(api_ready, a, 10000)) {
        hq_test_log_print(a->log, "api");
        fail_msg("hookq api did not answer /readyz on %s", a->base);
    }
    char out[1024], err[1024];
    int st = wenv_cli(w, out, sizeof(out), err, sizeof(err), "api-key", "create", "--name",
                      "console-test", "--scope", "admin", NULL);
    if (st != 0)
        fail_msg("hookq api-key create: exit %d: %s", st, err);
    const char *k = strstr(out, "key: ");
    if (k == NULL)
        fail_msg("hookq api-key create printed no key: %s", out);
    k += 5;
    size_t n = 0;
    while (k[n] && (isalnum((unsigned char)k[n]) || k[n] == '_') && n + 1 < sizeof(a->key))
        n++;
    memcpy(a->key, k, n);
    a->key[n] = 0;
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
