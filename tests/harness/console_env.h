/* Shared set-up of the browser tests of the web console: a `hookq api` on a
 * free loopback port with an admin key made by `hookq api-key create`, and
 * page helpers on top of the CDP driver (cdp.h). Works in a struct wenv
 * (worker_env.h): its Redis, receiver and process tracking. Part of the
 * harness library (console_env.c). Include after <cmocka.h>. */
#ifndef HQ_TESTS_HARNESS_CONSOLE_ENV_H
#define HQ_TESTS_HARNESS_CONSOLE_ENV_H

#include "tests/harness/api_env.h"
#include "tests/harness/cdp.h"
#include "tests/harness/worker_env.h"

struct console_api {
    struct hq_api_env env; /* the server (api_env.h) */
    char base[64];         /* "http://127.0.0.1:<port>" */
    char key[160];         /* an admin API key, as `hookq api-key create` printed it */
};

/* Starts `hookq api --allow-private` (receivers are on loopback) on w's
 * Redis (hq_api_env_start) and creates an admin key with the CLI. The
 * process is tracked by w (killed by wenv_stop). */
void console_api_start(struct wenv *w, struct console_api *a);

/* Stops the server with SIGTERM and asserts it exits 0 (under ASan: no
 * leak or error in the process). */
void console_api_stop(struct console_api *a);

/* Loads the console at a->base and enters the API key in its key form, as a
 * user would; waits for the webhook list. */
void console_open(struct hq_cdp *b, const struct console_api *a);

/* Sets location.hash (the console's router follows). */
void console_go(struct hq_cdp *b, const char *hash);
/* Waits until the page for the current address has loaded (main's
 * data-shown is the hash): after a click that navigates, before acting on the
 * new page, so an element of the page being replaced is never used. */
void console_wait_shown(struct hq_cdp *b);

/* Waits (10 s) until some element css selects has exactly this textContent. */
void console_wait_text(struct hq_cdp *b, const char *css, const char *text);

/* A full-page screenshot to <build>/screenshots/console-<name>.png. */
void console_shot(struct hq_cdp *b, const char *name);

/* Fails the test if the page opened a dialog, threw, or logged an error (a
 * CSP violation among them). */
void console_assert_clean(const struct hq_cdp *b);

#endif
