/* Chromium over its DevTools protocol on a pipe (cdp.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/cdp.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define CALL_TIMEOUT_MS 30000
#define POLL_EVERY_MS   25

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *browser_path(void)
{
    const char *p = getenv("HQ_CHROMIUM");
    if (p && *p) {
        if (access(p, X_OK) != 0)
            fail_msg("HQ_CHROMIUM=%s is not an executable", p);
        return p;
    }
    const char *cands[] = {"/usr/bin/chromium", "/usr/lib/chromium/chromium",
                           "/usr/bin/chromium-browser"};
    for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++)
        if (access(cands[i], X_OK) == 0)
            return cands[i];
    fail_msg("chromium not found (install Debian's chromium: ./run deps; or set HQ_CHROMIUM)");
    return NULL;
}

/* ---- messages ----------------------------------------------------------------------- */

static void send_msg(struct hq_cdp *b, json_t *msg)
{
    char *s = json_dumps(msg, JSON_COMPACT);
    assert_non_null(s);
    size_t n = strlen(s) + 1; /* the NUL ends the message */
    for (size_t off = 0; off < n;) {
        ssize_t w = write(b->wfd, s + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            fail_msg("cdp: writing to the browser: %s", strerror(errno));
        off += (size_t)w;
    }
    free(s);
}

/* Reads what the pipe has within wait_ms into b->in; 0 on timeout. */
static int fill(struct hq_cdp *b, int wait_ms)
{
    struct pollfd p = {.fd = b->rfd, .events = POLLIN};
    int pr = poll(&p, 1, wait_ms);
    if (pr < 0 && errno == EINTR)
        return 0;
    if (pr <= 0)
        return 0;
    if (b->in_cap - b->in_len < 65536) {
        size_t cap = b->in_cap ? b->in_cap * 2 : 1 << 20;
        if (cap > HQ_CDP_MSG_MAX + 65536)
            fail_msg("cdp: a message over %u bytes", HQ_CDP_MSG_MAX);
        b->in = realloc(b->in, cap);
        assert_non_null(b->in);
        b->in_cap = cap;
    }
    ssize_t r = read(b->rfd, b->in + b->in_len, b->in_cap - b->in_len);
    if (r == 0) {
        char log_path[300];
        snprintf(log_path, sizeof(log_path), "%s.log", b->profile);
        fail_msg("cdp: the browser closed its pipe (crashed?); its stderr is in %s", log_path);
    }
    if (r < 0 && errno != EINTR && errno != EAGAIN)
        fail_msg("cdp: read: %s", strerror(errno));
    if (r < 0)
        return 0;
    b->in_len += (size_t)r;
    return 1;
}

/* The next whole message already read, parsed (caller decrefs); NULL when none. */
static json_t *take(struct hq_cdp *b)
{
    if (b->in_len == 0)
        return NULL;
    char *end = memchr(b->in, 0, b->in_len);
    if (end == NULL)
        return NULL;
    size_t n = (size_t)(end - b->in);
    json_error_t jerr;
    json_t *m = json_loadb(b->in, n, 0, &jerr);
    if (m == NULL)
        fail_msg("cdp: bad JSON from the browser: %s", jerr.text);
    memmove(b->in, end + 1, b->in_len - n - 1);
    b->in_len -= n + 1;
    return m;
}

static void note_error(struct hq_cdp *b, const char *what, const char *text)
{
    snprintf(b->last_error, sizeof(b->last_error), "%s: %s", what, text ? text : "");
    fprintf(stderr, "  browser| %s\n", b->last_error);
}

/* Events we keep: dialogs (dismissed at once: an open dialog blocks the page),
 * exceptions and error-level log entries. */
static void on_event(struct hq_cdp *b, const char *method, json_t *params)
{
    if (strcmp(method, "Page.javascriptDialogOpening") == 0) {
        b->dialogs++;
        snprintf(b->dialog, sizeof(b->dialog), "%s",
                 json_string_value(json_object_get(params, "message"))
                     ? json_string_value(json_object_get(params, "message"))
                     : "");
        fprintf(stderr, "  browser| dialog opened: %s\n", b->dialog);
        json_t *m = json_pack("{s:i, s:s, s:{s:b}, s:s}", "id", b->next_id++, "method",
                              "Page.handleJavaScriptDialog", "params", "accept", 0, "sessionId",
                              b->session);
        send_msg(b, m);
        json_decref(m);
    } else if (strcmp(method, "Runtime.exceptionThrown") == 0) {
        b->exceptions++;
        json_t *d = json_object_get(params, "exceptionDetails");
        json_t *ex = json_object_get(d, "exception");
        const char *t = json_string_value(json_object_get(ex, "description"));
        note_error(b, "exception", t ? t : json_string_value(json_object_get(d, "text")));
    } else if (strcmp(method, "Log.entryAdded") == 0) {
        json_t *e = json_object_get(params, "entry");
        const char *level = json_string_value(json_object_get(e, "level"));
        const char *source = json_string_value(json_object_get(e, "source"));
        const char *text = json_string_value(json_object_get(e, "text"));
        /* failed resource loads (the API's 4xx answers the page shows, a
         * favicon) are "network" entries, not page errors */
        if (level && strcmp(level, "error") == 0 && !(source && strcmp(source, "network") == 0)) {
            b->log_errors++;
            note_error(b, source ? source : "log", text);
        }
    } else if (strcmp(method, "Runtime.consoleAPICalled") == 0) {
        const char *type = json_string_value(json_object_get(params, "type"));
        if (type && strcmp(type, "error") == 0) {
            b->log_errors++;
            json_t *a0 = json_array_get(json_object_get(params, "args"), 0);
            note_error(b, "console.error", json_string_value(json_object_get(a0, "value")));
        }
    } else if (strcmp(method, "Inspector.targetCrashed") == 0) {
        fail_msg("cdp: the page crashed");
    }
}

/* Reads messages for up to wait_ms, handling events, until the reply to id
 * (returned; caller decrefs) or, for id 0, until the time is up (NULL). */
static json_t *pump(struct hq_cdp *b, int id, int wait_ms)
{
    long long end = now_ms() + wait_ms;
    for (;;) {
        json_t *m;
        while ((m = take(b)) != NULL) {
            json_t *mid = json_object_get(m, "id");
            if (mid && json_integer_value(mid) == id && id != 0)
                return m;
            const char *method = json_string_value(json_object_get(m, "method"));
            if (method)
                on_event(b, method, json_object_get(m, "params"));
            json_decref(m);
        }
        long long left = end - now_ms();
        if (left <= 0)
            return NULL;
        fill(b, (int)left);
    }
}

json_t *hq_cdp_call(struct hq_cdp *b, int to_browser, const char *method, json_t *params)
{
    int id = b->next_id++;
    json_t *m = json_pack("{s:i, s:s, s:o}", "id", id, "method", method, "params",
                          params ? params : json_object());
    assert_non_null(m);
    if (!to_browser && b->session[0])
        json_object_set_new(m, "sessionId", json_string(b->session));
    send_msg(b, m);
    json_decref(m);
    json_t *r = pump(b, id, CALL_TIMEOUT_MS);
    if (r == NULL)
        fail_msg("cdp: no answer to %s in %d ms", method, CALL_TIMEOUT_MS);
    json_t *err = json_object_get(r, "error");
    if (err) {
        char *s = json_dumps(err, JSON_COMPACT);
        fprintf(stderr, "cdp: %s failed: %s\n", method, s ? s : "?");
        free(s);
        json_decref(r);
        fail_msg("cdp: %s failed", method);
    }
    json_t *res = json_incref(json_object_get(r, "result"));
    json_decref(r);
    return res ? res : json_object();
}

/* ---- the browser's life ---------------------------------------------------------------- */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* Profiles (and their logs) of test processes that are gone: a failed
 * assertion leaves hq_cdp_close uncalled (cmocka jumps out of the test). */
static void remove_stale_profiles(void)
{
    DIR *d = opendir("/tmp");
    if (d == NULL)
        return;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        int pid;
        if (sscanf(de->d_name, "hq-chromium-%d-", &pid) != 1 || pid <= 0 || pid == getpid() ||
            kill(pid, 0) == 0 || errno != ESRCH)
            continue;
        char path[300];
        snprintf(path, sizeof(path), "/tmp/%s", de->d_name);
        if (strstr(de->d_name, ".log"))
            remove(path);
        else
            nftw(path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    }
    closedir(d);
}

void hq_cdp_launch(struct hq_cdp *b, int width, int height)
{
    memset(b, 0, sizeof(*b));
    b->next_id = 1;
    const char *exe = browser_path();
    remove_stale_profiles();
    snprintf(b->profile, sizeof(b->profile), "/tmp/hq-chromium-%d-XXXXXX", (int)getpid());
    assert_non_null(mkdtemp(b->profile));
    int to_browser[2], from_browser[2];
    assert_int_equal(pipe2(to_browser, O_CLOEXEC), 0);
    assert_int_equal(pipe2(from_browser, O_CLOEXEC), 0);
    char profile_arg[300], size_arg[64], log_path[300];
    snprintf(log_path, sizeof(log_path), "%s.log", b->profile);
    snprintf(profile_arg, sizeof(profile_arg), "--user-data-dir=%s", b->profile);
    snprintf(size_arg, sizeof(size_arg), "--window-size=%d,%d", width, height);
    const char *argv[] = {exe,
                          "--headless=new",
                          "--remote-debugging-pipe",
                          profile_arg,
                          size_arg,
                          "--no-sandbox", /* tests run as root in CI containers */
                          "--disable-gpu",
                          "--disable-dev-shm-usage",
                          "--disable-background-networking",
                          "--disable-component-update",
                          "--disable-sync",
                          "--disable-extensions",
                          "--disable-default-apps",
                          "--no-first-run",
                          "--no-default-browser-check",
                          "--hide-scrollbars",
                          "--mute-audio",
                          "about:blank",
                          NULL};
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* only async-signal-safe calls: the test binary has threads */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(127);
        setpgid(0, 0); /* the browser's helpers die with its group in hq_cdp_close */
        int devnull = open("/dev/null", O_RDWR);
        int log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(log >= 0 ? log : devnull, 2);
        /* fds 3 and 4 without O_CLOEXEC: first out of the way (a pipe end may
         * be 3 or 4 already, where dup2 would keep its O_CLOEXEC) */
        int in = fcntl(to_browser[0], F_DUPFD_CLOEXEC, 10);
        int out = fcntl(from_browser[1], F_DUPFD_CLOEXEC, 10);
        if (in < 0 || out < 0 || dup2(in, 3) != 3 || dup2(out, 4) != 4)
            _exit(126);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    b->pid = pid;
    close(to_browser[0]);
    close(from_browser[1]);
    b->wfd = to_browser[1];
    b->rfd = from_browser[0];
    signal(SIGPIPE, SIG_IGN); /* a dead browser is a read of 0, not a signal */

    json_t *r = hq_cdp_call(b, 1, "Target.createTarget", json_pack("{s:s}", "url", "about:blank"));
    const char *target = json_string_value(json_object_get(r, "targetId"));
    assert_non_null(target);
    json_t *a = hq_cdp_call(b, 1, "Target.attachToTarget",
                            json_pack("{s:s, s:b}", "targetId", target, "flatten", 1));
    json_decref(r);
    const char *sid = json_string_value(json_object_get(a, "sessionId"));
    assert_non_null(sid);
    snprintf(b->session, sizeof(b->session), "%s", sid);
    json_decref(a);
    const char *enable[] = {"Page.enable", "Runtime.enable", "Log.enable"};
    for (size_t i = 0; i < sizeof(enable) / sizeof(enable[0]); i++)
        json_decref(hq_cdp_call(b, 0, enable[i], NULL));
    json_decref(hq_cdp_call(b, 0, "Emulation.setDeviceMetricsOverride",
                            json_pack("{s:i, s:i, s:i, s:b}", "width", width, "height", height,
                                      "deviceScaleFactor", 1, "mobile", 0)));
}

void hq_cdp_close(struct hq_cdp *b)
{
    if (b->pid > 0) {
        json_t *m = json_pack("{s:i, s:s}", "id", b->next_id++, "method", "Browser.close");
        send_msg(b, m);
        json_decref(m);
        long long end = now_ms() + 5000;
        int status;
        while (waitpid(b->pid, &status, WNOHANG) == 0) {
            if (now_ms() > end) {
                kill(-b->pid, SIGKILL);
                kill(b->pid, SIGKILL);
                waitpid(b->pid, &status, 0);
                break;
            }
            struct pollfd p = {.fd = b->rfd, .events = POLLIN};
            if (poll(&p, 1, 20) > 0) {
                char sink[4096];
                if (read(b->rfd, sink, sizeof(sink)) <= 0)
                    p.fd = -1; /* closed: the reap follows */
            }
        }
        kill(-b->pid, SIGKILL); /* helpers the browser left behind */
        b->pid = 0;
    }
    if (b->wfd > 0)
        close(b->wfd);
    if (b->rfd > 0)
        close(b->rfd);
    b->wfd = b->rfd = -1;
    free(b->in);
    b->in = NULL;
    if (b->profile[0]) {
        char log_path[300];
        snprintf(log_path, sizeof(log_path), "%s.log", b->profile);
        remove(log_path);
        nftw(b->profile, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    }
    b->profile[0] = 0;
}

/* ---- the page ------------------------------------------------------------------------------ */

const char *hq_cdp_quote(const char *s, char *out, size_t n)
{
    json_t *j = json_string(s);
    assert_non_null(j);
    char *q = json_dumps(j, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
    json_decref(j);
    assert_non_null(q);
    assert_true(strlen(q) < n);
    snprintf(out, n, "%s", q);
    free(q);
    return out;
}

/* Evaluates expr; *threw set when it threw (the value is then the message). */
static json_t *eval(struct hq_cdp *b, const char *expr, int *threw)
{
    json_t *r = hq_cdp_call(
        b, 0, "Runtime.evaluate",
        json_pack("{s:s, s:b, s:b}", "expression", expr, "returnByValue", 1, "awaitPromise", 1));
    json_t *ex = json_object_get(r, "exceptionDetails");
    *threw = ex != NULL;
    json_t *v;
    if (ex) {
        const char *d =
            json_string_value(json_object_get(json_object_get(ex, "exception"), "description"));
        v = json_string(d ? d : "exception");
    } else {
        v = json_object_get(json_object_get(r, "result"), "value");
        v = v ? json_incref(v) : json_null();
    }
    json_decref(r);
    return v;
}

json_t *hq_cdp_eval(struct hq_cdp *b, const char *expr)
{
    int threw;
    json_t *v = eval(b, expr, &threw);
    if (threw) {
        fprintf(stderr, "cdp: %s\n  threw %s\n", expr, json_string_value(v));
        json_decref(v);
        fail_msg("cdp: an evaluation threw");
    }
    return v;
}

void hq_cdp_eval_str(struct hq_cdp *b, const char *expr, char *out, size_t n)
{
    json_t *v = hq_cdp_eval(b, expr);
    snprintf(out, n, "%s", json_is_string(v) ? json_string_value(v) : "");
    json_decref(v);
}

void hq_cdp_wait(struct hq_cdp *b, const char *expr, int timeout_ms, const char *what)
{
    long long end = now_ms() + timeout_ms;
    char last[300] = "";
    for (;;) {
        int threw;
        json_t *v = eval(b, expr, &threw);
        int ok = !threw && json_is_true(v);
        if (!ok && !threw && v && !json_is_false(v) && !json_is_null(v))
            ok = json_is_string(v) ? json_string_length(v) > 0
                                   : !(json_is_number(v) && json_number_value(v) == 0);
        if (threw)
            snprintf(last, sizeof(last), "%s", json_string_value(v));
        json_decref(v);
        if (ok)
            return;
        if (now_ms() > end) {
            char page[600] = "";
            hq_cdp_eval_str(b, "location.href + ' | ' + document.body.innerText.slice(0, 400)",
                            page, sizeof(page));
            fail_msg("cdp: waited %d ms for %s (%s)%s%s\n  page: %s", timeout_ms, what, expr,
                     last[0] ? "; last error: " : "", last, page);
        }
        pump(b, 0, POLL_EVERY_MS); /* reads events meanwhile; the poll is the pause */
    }
}

void hq_cdp_navigate(struct hq_cdp *b, const char *url)
{
    json_t *r = hq_cdp_call(b, 0, "Page.navigate", json_pack("{s:s}", "url", url));
    const char *err = json_string_value(json_object_get(r, "errorText"));
    if (err)
        fail_msg("cdp: navigating to %s: %s", url, err);
    json_decref(r);
    char q[1200], expr[1400];
    hq_cdp_quote(url, q, sizeof(q));
    snprintf(expr, sizeof(expr),
             "location.href.startsWith(%s) && document.readyState === 'complete'", q);
    hq_cdp_wait(b, expr, 10000, url);
}

/* "(() => { const e = <the element css selects>; <body> })()" into out. */
static void element_expr(const char *css, const char *body, char *out, size_t n)
{
    char q[600];
    hq_cdp_quote(css, q, sizeof(q));
    snprintf(out, n, "(() => { const e = document.querySelector(%s); %s })()", q, body);
}

void hq_cdp_wait_visible(struct hq_cdp *b, const char *css)
{
    char expr[1000];
    element_expr(css,
                 "if (!e) return false; const r = e.getBoundingClientRect();"
                 " return r.width > 0 && r.height > 0;",
                 expr, sizeof(expr));
    hq_cdp_wait(b, expr, 5000, css);
}

void hq_cdp_click(struct hq_cdp *b, const char *css)
{
    hq_cdp_wait_visible(b, css);
    char expr[1000], body[300];
    element_expr(css,
                 "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
                 " return [r.x + r.width / 2, r.y + r.height / 2];",
                 expr, sizeof(expr));
    json_t *xy = hq_cdp_eval(b, expr);
    double x = json_number_value(json_array_get(xy, 0)),
           y = json_number_value(json_array_get(xy, 1));
    json_decref(xy);
    /* the element at that point must be it (or inside it): not covered */
    snprintf(
        body, sizeof(body),
        "const t = document.elementFromPoint(%g, %g); return !!t && (t === e || e.contains(t));", x,
        y);
    element_expr(css, body, expr, sizeof(expr));
    hq_cdp_wait(b, expr, 5000, css);
    const char *types[] = {"mouseMoved", "mousePressed", "mouseReleased"};
    for (size_t i = 0; i < 3; i++)
        json_decref(
            hq_cdp_call(b, 0, "Input.dispatchMouseEvent",
                        json_pack("{s:s, s:f, s:f, s:s, s:i}", "type", types[i], "x", x, "y", y,
                                  "button", i ? "left" : "none", "clickCount", i ? 1 : 0)));
}

void hq_cdp_type(struct hq_cdp *b, const char *css, const char *text)
{
    hq_cdp_wait_visible(b, css);
    char expr[1000];
    element_expr(css, "e.focus(); e.select(); return document.activeElement === e;", expr,
                 sizeof(expr));
    hq_cdp_wait(b, expr, 5000, css);
    json_decref(hq_cdp_call(b, 0, "Input.insertText", json_pack("{s:s}", "text", text)));
}

void hq_cdp_text(struct hq_cdp *b, const char *css, char *out, size_t n)
{
    char q[600], expr[1000];
    hq_cdp_quote(css, q, sizeof(q));
    snprintf(expr, sizeof(expr), "!!document.querySelector(%s)", q);
    hq_cdp_wait(b, expr, 5000, css);
    snprintf(expr, sizeof(expr), "document.querySelector(%s).textContent", q);
    hq_cdp_eval_str(b, expr, out, n);
}

void hq_cdp_screenshot(struct hq_cdp *b, const char *path)
{
    json_t *m = hq_cdp_call(b, 0, "Page.getLayoutMetrics", NULL);
    json_t *size = json_object_get(m, "cssContentSize");
    double w = json_number_value(json_object_get(size, "width"));
    double h = json_number_value(json_object_get(size, "height"));
    json_decref(m);
    json_t *r = hq_cdp_call(b, 0, "Page.captureScreenshot",
                            json_pack("{s:s, s:b, s:{s:f, s:f, s:f, s:f, s:f}}", "format", "png",
                                      "captureBeyondViewport", 1, "clip", "x", 0.0, "y", 0.0,
                                      "width", w, "height", h, "scale", 1.0));
    const char *data = json_string_value(json_object_get(r, "data"));
    assert_non_null(data);
    size_t n = strlen(data);
    unsigned char *png = malloc(n / 4 * 3 + 4);
    assert_non_null(png);
    int len = EVP_DecodeBlock(png, (const unsigned char *)data, (int)n);
    assert_true(len > 8);
    len -= (n >= 1 && data[n - 1] == '=') + (n >= 2 && data[n - 2] == '=');
    json_decref(r);
    FILE *fp = fopen(path, "wb");
    if (fp == NULL)
        fail_msg("cdp: cannot write %s: %s", path, strerror(errno));
    assert_int_equal(fwrite(png, 1, (size_t)len, fp), (size_t)len);
    fclose(fp);
    free(png);
}
