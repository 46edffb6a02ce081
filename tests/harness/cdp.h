/* A headless Chromium driven through its DevTools protocol (CDP) for the
 * browser tests: no websocket, no npm. The browser is started with
 * --remote-debugging-pipe: it reads commands on its fd 3 and writes replies
 * and events on its fd 4, each message one JSON text ended by a NUL byte.
 * One page (a target attached in flattened session mode) per driver.
 *
 * Everything waits on conditions (Runtime.evaluate polled while the pipe is
 * read for events), never on fixed sleeps. Every function fails the test
 * (cmocka) on an error, naming what it waited for. The browser is Debian's
 * `chromium` (HQ_CHROMIUM overrides the path); a missing browser fails the
 * test, it is not skipped: CI installs it (./run's PKGS).
 *
 * Events kept for assertions: JavaScript dialogs (alert/confirm/prompt: each
 * is dismissed at once and counted), uncaught exceptions and console/log
 * errors (CSP violations among them).
 *
 * Include after <stdarg.h> <stddef.h> <setjmp.h> <cmocka.h>. */
#ifndef HQ_TESTS_HARNESS_CDP_H
#define HQ_TESTS_HARNESS_CDP_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#define HQ_CDP_MSG_MAX (64u << 20) /* one message (a full-page screenshot in base64) */

struct hq_cdp {
    pid_t pid;         /* the browser process (its own process group) */
    int wfd;           /* our end of the browser's fd 3 (commands) */
    int rfd;           /* our end of the browser's fd 4 (replies, events) */
    char profile[256]; /* temporary --user-data-dir, removed by hq_cdp_close */
    char session[128]; /* the page's sessionId */
    char *in;          /* bytes read, not yet a whole message; owned */
    size_t in_len, in_cap;
    int next_id;      /* of the next command */
    int dialogs;      /* Page.javascriptDialogOpening events seen */
    char dialog[256]; /* the last dialog's message */
    int exceptions;   /* Runtime.exceptionThrown events seen */
    int log_errors;   /* Log.entryAdded / console errors (not failed resource loads) */
    char last_error[512];
};

/* Starts the browser headless with a fresh profile
 * (/tmp/hq-chromium-<pid>-XXXXXX, its stderr beside it in .log) and a width
 * x height viewport, and attaches to one blank page. Profiles left by test
 * processes that are gone (a failed assertion skips hq_cdp_close) are
 * removed first. */
void hq_cdp_launch(struct hq_cdp *b, int width, int height);

/* Closes the browser (Browser.close, then SIGKILL to its group after 5 s)
 * and removes the profile. */
void hq_cdp_close(struct hq_cdp *b);

/* Sends method with params (stolen; NULL = {}) to the page's session (or
 * the browser when to_browser) and returns the reply's result (caller
 * json_decref's). Fails the test on a protocol error or after 30 s. */
json_t *hq_cdp_call(struct hq_cdp *b, int to_browser, const char *method, json_t *params);

/* Evaluates a JavaScript expression in the page (promises awaited) and
 * returns its value (caller json_decref's; JSON null for undefined). Fails the
 * test when it throws. */
json_t *hq_cdp_eval(struct hq_cdp *b, const char *expr);

/* hq_cdp_eval of a string-valued expression into out (n bytes, cut); "" for
 * a non-string. */
void hq_cdp_eval_str(struct hq_cdp *b, const char *expr, char *out, size_t n);

/* Polls expr (every ~25 ms, reading events meanwhile) until it is truthy;
 * fails the test after timeout_ms naming what. */
void hq_cdp_wait(struct hq_cdp *b, const char *expr, int timeout_ms, const char *what);

/* Loads url and waits until the document is complete. */
void hq_cdp_navigate(struct hq_cdp *b, const char *url);

/* Waits (5 s) until css selects a visible element. */
void hq_cdp_wait_visible(struct hq_cdp *b, const char *css);

/* Clicks the centre of the visible element css selects, with real mouse
 * events (Input.dispatchMouseEvent): a hidden or covered element cannot be
 * clicked this way. */
void hq_cdp_click(struct hq_cdp *b, const char *css);

/* Focuses the element css selects, clears it, and types text as keyboard
 * input (Input.insertText: input events fire as for a user). */
void hq_cdp_type(struct hq_cdp *b, const char *css, const char *text);

/* The textContent of the element css selects into out (n bytes, cut); waits
 * (5 s) for it to exist. */
void hq_cdp_text(struct hq_cdp *b, const char *css, char *out, size_t n);

/* Writes a PNG of the whole page (beyond the viewport) to path. */
void hq_cdp_screenshot(struct hq_cdp *b, const char *path);

/* A JavaScript string literal for s (JSON-quoted) into out; returns out. */
const char *hq_cdp_quote(const char *s, char *out, size_t n);

#endif
