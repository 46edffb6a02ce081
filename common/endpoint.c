/* Endpoints: validation of what an admin types (URL, headers, event filters,
 * names), type matching and the index keys a worker unions to find the
 * subscribers of a type, the hash <-> struct mapping, and the blocking
 * registry operations the CLI uses (create, get, save, delete).
 *
 * It does not deliver anything, cache endpoints (the worker does, keyed on
 * <p>:endpoints:ver) or resolve host names (the SSRF guard re-checks every
 * connected address at delivery time; here only literal addresses are
 * refused, so an admin learns at once that 127.0.0.1 will never be reached).
 *
 * Every write is one MULTI/EXEC so the hash, <p>:endpoints, the idx:* sets and
 * the version counter never disagree; a caller that WATCHed the hash before
 * reading it gets HQ_EAGAIN when someone else changed it in between. */
#include "common/endpoint.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/buf.h"
#include "common/event.h"
#include "common/redis_sync.h"

/* Runs a command given as a fixed argv array (NUL-terminated strings). */
#define CMD(c, err, argv)                                                                          \
    hq_redis_cmd((c), (err), (int)(sizeof(argv) / sizeof(*(argv))), (argv), NULL)

/* ---- Small helpers ------------------------------------------------------------ */

/* Copies s into out for an error message: at most 80 bytes, non-printable
 * bytes as '?', so a message stays one line whatever the user typed. */
static const char *echo(const char *s, size_t len, char *out, size_t n)
{
    size_t max = n - 4 < 80 ? n - 4 : 80;
    size_t i = 0;
    for (; i < len && i < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    if (i < len) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
    return out;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A filter's type part follows the wire format's type rule (one rule, in
 * common/event.c); its message is re-labelled with the field the admin typed
 * ("events: 'a b' has ..." rather than "type: ..."). */
static int check_type(const char *field, const char *s, size_t n, struct hq_err *err)
{
    int rc = hq_event_check_type(s, n, err);
    if (rc != 0 && err && strncmp(err->msg, "type: ", 6) == 0) {
        char rest[sizeof(err->msg)];
        snprintf(rest, sizeof(rest), "%s", err->msg + 6);
        hq_err_set(err, rc, "%s: %s", field, rest);
    }
    return rc;
}

void hq_endpoint_free(struct hq_endpoint *e)
{
    free(e->name);
    free(e->url);
    free(e->description);
    for (int i = 0; i < e->nevents; i++)
        free(e->events[i]);
    free(e->events);
    for (int i = 0; i < e->nheaders; i++)
        free(e->headers[i]);
    free(e->headers);
    OPENSSL_cleanse(e->key1, sizeof(e->key1));
    OPENSSL_cleanse(e->key2, sizeof(e->key2));
    memset(e, 0, sizeof(*e));
}

/* ---- Validation (pure) ------------------------------------------------------------ */

int hq_endpoint_check_url(const char *url, const struct hq_netguard *g, struct hq_err *err)
{
    char e[96];
    size_t n = strlen(url);
    if (n == 0)
        return hq_err_set(err, HQ_EINVAL, "url: required");
    if (n > HQ_URL_MAX)
        return hq_err_set(err, HQ_EINVAL, "url: %zu chars, max %d", n, HQ_URL_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)url[i];
        if (ch <= 0x20 || ch == 0x7f)
            return hq_err_set(err, HQ_EINVAL, "url: '%s' has a space or control character",
                              echo(url, n, e, sizeof(e)));
    }

    CURLU *h = curl_url();
    if (!h)
        return hq_err_set(err, HQ_ENOMEM, "url: out of memory");
    int rc = 0;
    char *scheme = NULL, *user = NULL, *pass = NULL, *host = NULL;
    /* NON_SUPPORT_SCHEME: parse any scheme so ftp:// gets our message, not curl's. */
    CURLUcode ures = curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
    if (ures != CURLUE_OK) {
        rc = hq_err_set(err, HQ_EINVAL, "url: '%s' is not a valid absolute URL (%s)",
                        echo(url, n, e, sizeof(e)), curl_url_strerror(ures));
        goto out;
    }
    if (curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        rc = hq_err_set(err, HQ_EINVAL, "url: '%s' scheme '%s' is not http or https",
                        echo(url, n, e, sizeof(e)), scheme ? scheme : "");
        goto out;
    }
    /* Credentials in a URL end up in logs and dead letters; the message does
     * not echo the URL because it holds the password. */
    if (curl_url_get(h, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(h, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK) {
        rc = hq_err_set(err, HQ_EINVAL,
                        "url: user:password in the URL is not allowed (send credentials with "
                        "--header 'Authorization: ...')");
        goto out;
    }
    if (curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
        rc = hq_err_set(err, HQ_EINVAL, "url: '%s' has no host", echo(url, n, e, sizeof(e)));
        goto out;
    }
    /* curl normalises numeric IPv4 forms ("2130706433", "0x7f.1") to dotted
     * quads, so the guard sees the address a connection would use. */
    char why[160];
    if (hq_netguard_check_host(g, host, why, sizeof(why)) != 0) {
        rc = hq_err_set(err, HQ_EBLOCKED,
                        "url: '%s' is blocked: %s (HOOKQ_ALLOW_PRIVATE=1 or --allow-cidrs "
                        "allows it)",
                        echo(url, n, e, sizeof(e)), why);
        goto out;
    }
out:
    curl_free(scheme);
    curl_free(user);
    curl_free(pass);
    curl_free(host);
    curl_url_cleanup(h);
    return rc;
}

/* Names hookq sets itself or that change HTTP framing; overriding them would
 * break signatures (content-type, webhook-*), the request (content-length,
 * transfer-encoding, connection, keep-alive, te, trailer, upgrade, expect,
 * host) or honesty about what sent it (user-agent, content-encoding). */
static const char *const forbidden_headers[] = {
    "host",       "content-length",    "content-type", "content-encoding",
    "user-agent", "transfer-encoding", "connection",   "keep-alive",
    "te",         "trailer",           "upgrade",      "expect",
    NULL,
};

static int is_tchar(unsigned char ch)
{
    return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

int hq_endpoint_check_header(const char *line, struct hq_err *err)
{
    char e[96];
    size_t n = strlen(line);
    if (n > HQ_HEADER_LINE_MAX)
        return hq_err_set(err, HQ_EINVAL, "header: %zu chars, max %d", n, HQ_HEADER_LINE_MAX);
    const char *colon = strchr(line, ':');
    if (!colon)
        return hq_err_set(err, HQ_EINVAL, "header: '%s' is not 'Name: value'",
                          echo(line, n < 40 ? n : 40, e, sizeof(e)));
    size_t nlen = (size_t)(colon - line);
    if (nlen == 0)
        return hq_err_set(err, HQ_EINVAL, "header: empty name in '%s'",
                          echo(line, n < 40 ? n : 40, e, sizeof(e)));
    for (size_t i = 0; i < nlen; i++) {
        if (!is_tchar((unsigned char)line[i]))
            return hq_err_set(err, HQ_EINVAL, "header: name '%s' is not an HTTP token",
                              echo(line, nlen, e, sizeof(e)));
    }
    echo(line, nlen, e, sizeof(e));
    for (const char *const *f = forbidden_headers; *f; f++) {
        if (strlen(*f) == nlen && strncasecmp(line, *f, nlen) == 0)
            return hq_err_set(err, HQ_EINVAL, "header '%s': set by hookq, cannot be overridden", e);
    }
    if (nlen >= 8 && strncasecmp(line, "webhook-", 8) == 0)
        return hq_err_set(err, HQ_EINVAL,
                          "header '%s': webhook-* headers are the signature's, cannot be set", e);
    /* Values are not echoed: they are often credentials. */
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (!*v)
        return hq_err_set(err, HQ_EINVAL, "header '%s': empty value", e);
    for (; *v; v++) {
        unsigned char ch = (unsigned char)*v;
        if (ch == '\r' || ch == '\n')
            return hq_err_set(err, HQ_EINVAL, "header '%s': value has a CR or LF", e);
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return hq_err_set(err, HQ_EINVAL, "header '%s': value has a control character", e);
    }
    return 0;
}

int hq_endpoint_check_filter(const char *f, struct hq_err *err)
{
    char e[96];
    size_t n = strlen(f);
    if (n == 0)
        return hq_err_set(err, HQ_EINVAL, "events: empty filter");
    if (strcmp(f, "*") == 0)
        return 0;
    const char *star = strchr(f, '*');
    if (!star)
        return check_type("events", f, n, err);
    if (star != f + n - 1 || n < 3 || f[n - 2] != '.')
        return hq_err_set(err, HQ_EINVAL,
                          "events: '%s' has a wildcard not after a dot (use 'user.*' or '*')",
                          echo(f, n, e, sizeof(e)));
    /* "<type>.*": the prefix, dot included, must fit a type. */
    if (n - 1 > HQ_TYPE_MAX)
        return hq_err_set(err, HQ_EINVAL, "events: '%s' is %zu chars, max %d",
                          echo(f, n, e, sizeof(e)), n, HQ_TYPE_MAX + 1);
    return check_type("events", f, n - 2, err);
}

int hq_endpoint_check_id(const char *id, struct hq_err *err)
{
    char e[96];
    size_t n = strlen(id);
    if (n == 0 || n > HQ_ENDPOINT_ID_MAX)
        return hq_err_set(err, HQ_EINVAL, "id: '%s' is not an endpoint id (ep_...)",
                          echo(id, n, e, sizeof(e)));
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)id[i];
        if (!isalnum(ch) && ch != '_' && ch != '-')
            return hq_err_set(err, HQ_EINVAL, "id: '%s' is not an endpoint id (ep_...)",
                              echo(id, n, e, sizeof(e)));
    }
    return 0;
}

/* Offset of the first control byte in s (tab and newline allowed when
 * multiline), or -1. */
static long find_ctl(const char *s, int multiline)
{
    for (const char *p = s; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (multiline && (ch == '\t' || ch == '\n'))
            continue;
        if (ch < 0x20 || ch == 0x7f)
            return (long)(p - s);
    }
    return -1;
}

int hq_endpoint_validate(const struct hq_endpoint *e, const struct hq_netguard *g,
                         struct hq_err *err)
{
    size_t n = e->name ? strlen(e->name) : 0;
    if (n == 0)
        return hq_err_set(err, HQ_EINVAL, "name: required");
    if (n > HQ_NAME_MAX)
        return hq_err_set(err, HQ_EINVAL, "name: %zu chars, max %d", n, HQ_NAME_MAX);
    long at = find_ctl(e->name, 0);
    if (at >= 0)
        return hq_err_set(err, HQ_EINVAL, "name: control character 0x%02x at offset %ld",
                          (unsigned char)e->name[at], at);
    if (e->description) {
        n = strlen(e->description);
        if (n > HQ_DESCRIPTION_MAX)
            return hq_err_set(err, HQ_EINVAL, "description: %zu chars, max %d", n,
                              HQ_DESCRIPTION_MAX);
        at = find_ctl(e->description, 1);
        if (at >= 0)
            return hq_err_set(err, HQ_EINVAL, "description: control character 0x%02x at offset %ld",
                              (unsigned char)e->description[at], at);
    }
    int rc = hq_endpoint_check_url(e->url ? e->url : "", g, err);
    if (rc != 0)
        return rc;
    if (e->nevents > HQ_EVENT_FILTERS_MAX)
        return hq_err_set(err, HQ_EINVAL, "events: %d filters, max %d", e->nevents,
                          HQ_EVENT_FILTERS_MAX);
    for (int i = 0; i < e->nevents; i++) {
        rc = hq_endpoint_check_filter(e->events[i], err);
        if (rc != 0)
            return rc;
    }
    if (e->nheaders > HQ_HEADERS_MAX)
        return hq_err_set(err, HQ_EINVAL, "header: %d headers, max %d", e->nheaders,
                          HQ_HEADERS_MAX);
    for (int i = 0; i < e->nheaders; i++) {
        rc = hq_endpoint_check_header(e->headers[i], err);
        if (rc != 0)
            return rc;
        size_t nl = (size_t)(strchr(e->headers[i], ':') - e->headers[i]);
        for (int j = 0; j < i; j++) {
            if (strncasecmp(e->headers[j], e->headers[i], nl) == 0 && e->headers[j][nl] == ':') {
                char b[96];
                return hq_err_set(err, HQ_EINVAL, "header '%s': given twice",
                                  echo(e->headers[i], nl, b, sizeof(b)));
            }
        }
    }
    if (e->max_attempts < 0 || e->max_attempts > HQ_ENDPOINT_ATTEMPTS_MAX)
        return hq_err_set(err, HQ_EINVAL, "max-attempts: %d is out of range (0 to %d)",
                          e->max_attempts, HQ_ENDPOINT_ATTEMPTS_MAX);
    return 0;
}

/* ---- Matching and index keys (pure) --------------------------------------------- */

int hq_endpoint_matches(const struct hq_endpoint *e, const char *type, size_t type_len)
{
    if (e->nevents == 0)
        return 1;
    for (int i = 0; i < e->nevents; i++) {
        const char *f = e->events[i];
        size_t n = strlen(f);
        if (n > 0 && f[n - 1] == '*') {
            /* "*" (n - 1 == 0) matches everything; "a.*" every type starting "a.". */
            if (type_len >= n - 1 && memcmp(type, f, n - 1) == 0)
                return 1;
        } else if (n == type_len && memcmp(type, f, n) == 0) {
            return 1;
        }
    }
    return 0;
}

int hq_endpoint_index_keys(const char *prefix, const char *type, size_t type_len,
                           char (*keys)[HQ_KEY_MAX], int max)
{
    if (type_len == 0 || type_len > HQ_TYPE_MAX)
        return HQ_EINVAL;
    char t[HQ_TYPE_MAX + 1];
    memcpy(t, type, type_len);
    t[type_len] = '\0';
    if (max < 2)
        return HQ_ETOOBIG;
    if (hq_key_idx_type(prefix, t, keys[0], HQ_KEY_MAX) < 0 ||
        hq_key_idx_prefix(prefix, "", keys[1], HQ_KEY_MAX) < 0)
        return HQ_ETOOBIG;
    int k = 2;
    for (size_t i = 0; i < type_len; i++) {
        if (t[i] != '.')
            continue;
        if (k >= max)
            return HQ_ETOOBIG;
        char save = t[i + 1];
        t[i + 1] = '\0';
        int w = hq_key_idx_prefix(prefix, t, keys[k], HQ_KEY_MAX);
        t[i + 1] = save;
        if (w < 0)
            return HQ_ETOOBIG;
        k++;
    }
    return k;
}

int hq_endpoint_filter_key(const char *prefix, const char *filter, char *out, size_t n)
{
    size_t len = strlen(filter);
    if (len > 0 && filter[len - 1] == '*') {
        char pre[HQ_KEY_MAX];
        if (len - 1 >= sizeof(pre))
            return -1;
        memcpy(pre, filter, len - 1);
        pre[len - 1] = '\0';
        return hq_key_idx_prefix(prefix, pre, out, n);
    }
    return hq_key_idx_type(prefix, filter, out, n);
}

/* ---- Hash <-> struct ----------------------------------------------------------------- */

/* Splits s (len bytes) on sep into an owned array of owned strings. Empty
 * pieces are dropped. HQ_EINVAL when there are more than max pieces. */
static int split(const char *s, size_t len, char sep, int max, char ***out, int *nout)
{
    *out = NULL;
    *nout = 0;
    int count = 0;
    for (size_t i = 0, start = 0; i <= len; i++) {
        if (i == len || s[i] == sep) {
            if (i > start)
                count++;
            start = i + 1;
        }
    }
    if (count > max)
        return HQ_EINVAL;
    if (count == 0)
        return 0;
    char **v = hq_calloc((size_t)count, sizeof(*v));
    int k = 0;
    for (size_t i = 0, start = 0; i <= len; i++) {
        if (i == len || s[i] == sep) {
            if (i > start)
                v[k++] = hq_strndup(s + start, i - start);
            start = i + 1;
        }
    }
    *out = v;
    *nout = k;
    return 0;
}

static int parse_ll(const char *s, size_t n, long long *out)
{
    char b[24];
    if (n == 0 || n >= sizeof(b))
        return HQ_EINVAL;
    memcpy(b, s, n);
    b[n] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(b, &end, 10);
    if (errno || *end || !(isdigit((unsigned char)b[0]) || b[0] == '-'))
        return HQ_EINVAL;
    *out = v;
    return 0;
}

static int field_is(const redisReply *k, const char *name)
{
    return k->len == strlen(name) && memcmp(k->str, name, k->len) == 0;
}

int hq_endpoint_from_reply(const redisReply *r, const char *id, struct hq_endpoint *e,
                           struct hq_err *err)
{
    char b[96];
    memset(e, 0, sizeof(*e));
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)
        return hq_err_set(err, HQ_EINVAL, "endpoint %s: hash reply is not field/value pairs",
                          echo(id, strlen(id), b, sizeof(b)));
    if (r->elements == 0)
        return hq_err_set(err, HQ_ENOTFOUND, "no endpoint '%s'",
                          echo(id, strlen(id), b, sizeof(b)));
    if (strlen(id) > HQ_ENDPOINT_ID_MAX)
        return hq_err_set(err, HQ_EINVAL, "endpoint %s: id too long",
                          echo(id, strlen(id), b, sizeof(b)));
    strcpy(e->id, id);
    e->enabled = 1;
    int rc = 0;
    const char *bad = NULL;
    for (size_t i = 0; i < r->elements && !bad; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            bad = "non-string field";
            break;
        }
        long long num = 0;
        if (field_is(k, "name")) {
            free(e->name);
            e->name = hq_strndup(v->str, v->len);
        } else if (field_is(k, "url")) {
            free(e->url);
            e->url = hq_strndup(v->str, v->len);
        } else if (field_is(k, "description")) {
            free(e->description);
            e->description = hq_strndup(v->str, v->len);
        } else if (field_is(k, "events")) {
            for (int j = 0; j < e->nevents; j++)
                free(e->events[j]);
            free(e->events);
            if (split(v->str, v->len, ',', HQ_EVENT_FILTERS_MAX, &e->events, &e->nevents) != 0)
                bad = "events";
        } else if (field_is(k, "headers")) {
            for (int j = 0; j < e->nheaders; j++)
                free(e->headers[j]);
            free(e->headers);
            if (split(v->str, v->len, '\n', HQ_HEADERS_MAX, &e->headers, &e->nheaders) != 0)
                bad = "headers";
        } else if (field_is(k, "key1") || field_is(k, "key2")) {
            char *dst = k->str[3] == '1' ? e->key1 : e->key2;
            if (v->len == 0 || v->len >= HQ_SECRET_STR_MAX) {
                bad = k->str[3] == '1' ? "key1" : "key2";
            } else {
                memcpy(dst, v->str, v->len);
                dst[v->len] = '\0';
            }
        } else if (field_is(k, "key1_ms")) {
            bad = parse_ll(v->str, v->len, &e->key1_ms) ? "key1_ms" : NULL;
        } else if (field_is(k, "key2_ms")) {
            bad = parse_ll(v->str, v->len, &e->key2_ms) ? "key2_ms" : NULL;
        } else if (field_is(k, "created_ms")) {
            bad = parse_ll(v->str, v->len, &e->created_ms) ? "created_ms" : NULL;
        } else if (field_is(k, "updated_ms")) {
            bad = parse_ll(v->str, v->len, &e->updated_ms) ? "updated_ms" : NULL;
        } else if (field_is(k, "enabled")) {
            if (parse_ll(v->str, v->len, &num) || (num != 0 && num != 1))
                bad = "enabled";
            e->enabled = (int)num;
        } else if (field_is(k, "max_attempts")) {
            if (parse_ll(v->str, v->len, &num) || num < 0 || num > HQ_ENDPOINT_ATTEMPTS_MAX)
                bad = "max_attempts";
            e->max_attempts = (int)num;
        }
        /* Unknown fields are ignored: a newer hookq may have added them. */
    }
    if (!bad && !e->url)
        bad = "url (missing)";
    if (!bad && (!e->key1[0] || !e->key2[0]))
        bad = "key1/key2 (missing)";
    if (bad) {
        rc = hq_err_set(err, HQ_EINVAL, "endpoint %s: malformed hash field %s", e->id, bad);
        hq_endpoint_free(e);
        return rc;
    }
    if (!e->name)
        e->name = hq_strdup("");
    if (!e->description)
        e->description = hq_strdup("");
    return 0;
}

/* ---- Registry (blocking) ------------------------------------------------------------ */

/* A pipelined MULTI ... EXEC: commands are appended to the context's output
 * buffer and sent together; tx_exec reads every reply. */
struct tx {
    redisContext *c;
    int ncmds; /* commands appended, MULTI and EXEC included */
};

static void tx_append(struct tx *t, int argc, const char **argv)
{
    /* Appending only fails on OOM, which hiredis reports as REDIS_ERR and
     * which the daemon policy treats as fatal anyway. */
    if (redisAppendCommandArgv(t->c, argc, argv, NULL) != REDIS_OK)
        hq_panic("out of memory appending a Redis command");
    t->ncmds++;
}

static void tx_begin(struct tx *t, redisContext *c)
{
    t->c = c;
    t->ncmds = 0;
    const char *argv[] = {"MULTI"};
    tx_append(t, 1, argv);
}

/* Sends EXEC and reads all replies. HQ_EAGAIN when a WATCHed key changed
 * (EXEC answered nil), HQ_EREDIS for I/O failures and error replies. */
static int tx_exec(struct tx *t, const char *id, struct hq_err *err)
{
    const char *argv[] = {"EXEC"};
    tx_append(t, 1, argv);
    int rc = 0;
    for (int i = 0; i < t->ncmds; i++) {
        redisReply *r = NULL;
        if (redisGetReply(t->c, (void **)&r) != REDIS_OK || !r)
            return hq_err_set(err, HQ_EREDIS, "redis: %s",
                              t->c->errstr[0] ? t->c->errstr : "connection lost");
        int last = i == t->ncmds - 1;
        if (rc == 0 && r->type == REDIS_REPLY_ERROR) {
            rc = hq_err_set(err, HQ_EREDIS, "redis: %.*s", (int)r->len, r->str);
        } else if (rc == 0 && last && r->type == REDIS_REPLY_NIL) {
            rc = hq_err_set(err, HQ_EAGAIN,
                            "endpoint %s: changed by someone else meanwhile; run the command again",
                            id);
        } else if (rc == 0 && last && r->type == REDIS_REPLY_ARRAY) {
            /* MULTI does not roll back: report a failed step so it gets looked at. */
            for (size_t j = 0; j < r->elements && rc == 0; j++) {
                const redisReply *s = r->element[j];
                if (s->type == REDIS_REPLY_ERROR)
                    rc = hq_err_set(err, HQ_EREDIS, "redis: %.*s", (int)s->len, s->str);
            }
        }
        freeReplyObject(r);
    }
    return rc;
}

static char *join(char **v, int n, char sep)
{
    struct hq_buf b;
    hq_buf_init(&b, (size_t)-2);
    for (int i = 0; i < n; i++) {
        if ((i && hq_buf_append(&b, &sep, 1) != 0) || hq_buf_append(&b, v[i], strlen(v[i])) != 0)
            hq_panic("join: an unbounded buffer refused an append");
    }
    return hq_buf_steal(&b);
}

static void tx_hash(struct tx *t, const char *prefix, const struct hq_endpoint *e)
{
    char key[HQ_KEY_MAX], k1[24], k2[24], en[4], ma[16], cr[24], up[24];
    hq_key_endpoint(prefix, e->id, key, sizeof(key));
    const char *del[] = {"DEL", key};
    tx_append(t, 2, del);
    char *events = e->nevents ? join(e->events, e->nevents, ',') : hq_strdup("*");
    char *headers = join(e->headers, e->nheaders, '\n');
    snprintf(k1, sizeof(k1), "%lld", e->key1_ms);
    snprintf(k2, sizeof(k2), "%lld", e->key2_ms);
    snprintf(en, sizeof(en), "%d", e->enabled ? 1 : 0);
    snprintf(ma, sizeof(ma), "%d", e->max_attempts);
    snprintf(cr, sizeof(cr), "%lld", e->created_ms);
    snprintf(up, sizeof(up), "%lld", e->updated_ms);
    const char *argv[] = {
        "HSET",       key,     "name",         e->name ? e->name : "",
        "url",        e->url,  "description",  e->description ? e->description : "",
        "events",     events,  "headers",      headers,
        "key1",       e->key1, "key2",         e->key2,
        "key1_ms",    k1,      "key2_ms",      k2,
        "enabled",    en,      "max_attempts", ma,
        "created_ms", cr,      "updated_ms",   up,
    };
    tx_append(t, (int)(sizeof(argv) / sizeof(*argv)), argv);
    free(events);
    free(headers);
}

/* SADD/SREM id to/from the index set of each filter ("*" when none). */
static void tx_index(struct tx *t, const char *cmd, const char *prefix, char **filters, int n,
                     const char *id)
{
    static char star[] = "*";
    char *all[] = {star};
    if (n == 0) {
        filters = all;
        n = 1;
    }
    for (int i = 0; i < n; i++) {
        char key[HQ_KEY_MAX];
        if (hq_endpoint_filter_key(prefix, filters[i], key, sizeof(key)) < 0)
            continue; /* a garbage filter read from Redis has no index set */
        const char *argv[] = {cmd, key, id};
        tx_append(t, 3, argv);
    }
}

static void tx_bump(struct tx *t, const char *prefix)
{
    char key[HQ_KEY_MAX];
    hq_key_endpoints_version(prefix, key, sizeof(key));
    const char *argv[] = {"INCR", key};
    tx_append(t, 2, argv);
}

static void tx_zadd(struct tx *t, const char *prefix, const struct hq_endpoint *e)
{
    char key[HQ_KEY_MAX], score[24];
    hq_key_endpoints(prefix, key, sizeof(key));
    snprintf(score, sizeof(score), "%lld", e->created_ms);
    const char *argv[] = {"ZADD", key, score, e->id};
    tx_append(t, 4, argv);
}

/* "ep_" + 24 chars of lowercase base32 (RFC 4648 alphabet) of 15 random bytes:
 * 120 bits, so collisions are not a concern. */
static int generate_id(char *out, struct hq_err *err)
{
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyz234567";
    unsigned char rnd[15];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return hq_err_set(err, HQ_EIO, "id: the CSPRNG failed");
    memcpy(out, "ep_", 3);
    unsigned acc = 0;
    int bits = 0, k = 3;
    for (size_t i = 0; i < sizeof(rnd); i++) {
        acc = (acc << 8) | rnd[i];
        bits += 8;
        while (bits >= 5) {
            out[k++] = alpha[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    out[k] = '\0';
    return 0;
}

int hq_endpoint_create(redisContext *c, const char *prefix, struct hq_endpoint *e,
                       struct hq_err *err)
{
    int rc = generate_id(e->id, err);
    if (rc == 0)
        rc = hq_sign_key_generate(e->key1, sizeof(e->key1), err);
    if (rc == 0)
        rc = hq_sign_key_generate(e->key2, sizeof(e->key2), err);
    if (rc != 0)
        return rc;
    long long now = now_ms();
    e->created_ms = e->updated_ms = e->key1_ms = e->key2_ms = now;
    struct tx t;
    tx_begin(&t, c);
    tx_hash(&t, prefix, e);
    tx_zadd(&t, prefix, e);
    tx_index(&t, "SADD", prefix, e->events, e->nevents, e->id);
    tx_bump(&t, prefix);
    return tx_exec(&t, e->id, err);
}

int hq_endpoint_get(redisContext *c, const char *prefix, const char *id, struct hq_endpoint *e,
                    struct hq_err *err)
{
    memset(e, 0, sizeof(*e));
    char key[HQ_KEY_MAX];
    if (hq_key_endpoint(prefix, id, key, sizeof(key)) < 0)
        return hq_err_set(err, HQ_EINVAL, "id: too long");
    const char *argv[] = {"HGETALL", key};
    redisReply *r = CMD(c, err, argv);
    if (!r)
        return HQ_EREDIS;
    int rc = hq_endpoint_from_reply(r, id, e, err);
    freeReplyObject(r);
    return rc;
}

int hq_endpoint_save(redisContext *c, const char *prefix, const struct hq_endpoint *old,
                     const struct hq_endpoint *e, struct hq_err *err)
{
    if (strcmp(old->id, e->id) != 0)
        return hq_err_set(err, HQ_EINVAL, "endpoint %s: save would change the id to %s", old->id,
                          e->id);
    struct tx t;
    tx_begin(&t, c);
    tx_hash(&t, prefix, e);
    tx_zadd(&t, prefix, e);
    tx_index(&t, "SREM", prefix, old->events, old->nevents, e->id);
    tx_index(&t, "SADD", prefix, e->events, e->nevents, e->id);
    tx_bump(&t, prefix);
    return tx_exec(&t, e->id, err);
}

int hq_endpoint_delete(redisContext *c, const char *prefix, const char *id, struct hq_err *err)
{
    char key[HQ_KEY_MAX], zkey[HQ_KEY_MAX];
    if (hq_key_endpoint(prefix, id, key, sizeof(key)) < 0)
        return hq_err_set(err, HQ_EINVAL, "id: too long");
    hq_key_endpoints(prefix, zkey, sizeof(zkey));
    /* WATCH, read the filters, then remove everything in one transaction: a
     * concurrent update cannot leave an index entry behind. */
    const char *watch[] = {"WATCH", key};
    redisReply *r = CMD(c, err, watch);
    if (!r)
        return HQ_EREDIS;
    freeReplyObject(r);
    const char *hget[] = {"HGET", key, "events"};
    r = CMD(c, err, hget);
    if (!r)
        return HQ_EREDIS;
    if (r->type != REDIS_REPLY_STRING) {
        int nil = r->type == REDIS_REPLY_NIL;
        freeReplyObject(r);
        const char *unwatch[] = {"UNWATCH"};
        redisReply *u = CMD(c, err, unwatch);
        if (u)
            freeReplyObject(u);
        char b[96];
        if (nil)
            return hq_err_set(err, HQ_ENOTFOUND, "no endpoint '%s'",
                              echo(id, strlen(id), b, sizeof(b)));
        return hq_err_set(err, HQ_EINVAL, "endpoint %s: events field is not a string", id);
    }
    char **filters = NULL;
    int nfilters = 0;
    /* A hand-edited hash may list any number of filters: remove them all. */
    int src = split(r->str, r->len, ',', (int)r->len + 1, &filters, &nfilters);
    freeReplyObject(r);
    (void)src;
    struct tx t;
    tx_begin(&t, c);
    const char *del[] = {"DEL", key};
    tx_append(&t, 2, del);
    const char *zrem[] = {"ZREM", zkey, id};
    tx_append(&t, 3, zrem);
    tx_index(&t, "SREM", prefix, filters, nfilters, id);
    tx_bump(&t, prefix);
    for (int i = 0; i < nfilters; i++)
        free(filters[i]);
    free(filters);
    return tx_exec(&t, id, err);
}
