/* Endpoints, the pure half: validation of what an admin types (URL, headers,
 * event filters, names), type matching and the index keys a worker unions to
 * find the subscribers of a type, and decoding a stored hash into the struct.
 * No I/O: the registry operations that talk to Redis are endpoint_store.c.
 *
 * It does not deliver anything, cache endpoints (the worker does) or resolve
 * host names (the SSRF guard re-checks every connected address at delivery
 * time; here only literal addresses are refused, so an admin learns at once
 * that 127.0.0.1 will never be reached). */
#include "common/endpoint.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/event.h"

/* ---- Small helpers ------------------------------------------------------------ */

/* Copies s into out for an error message: at most 80 bytes, non-printable
 * bytes as '?', so a message stays one line whatever the user typed. */
const char *hq__endpoint_echo(const char *s, size_t len, char *out, size_t n)
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

void hq_endpoint_free_list(char ***v, int *n)
{
    for (int i = 0; i < *n; i++)
        free((*v)[i]);
    free(*v);
    *v = NULL;
    *n = 0;
}

void hq_endpoint_free(struct hq_endpoint *e)
{
    free(e->name);
    free(e->url);
    free(e->description);
    hq_endpoint_free_list(&e->events, &e->nevents);
    hq_endpoint_free_list(&e->headers, &e->nheaders);
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
                              hq__endpoint_echo(url, n, e, sizeof(e)));
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
                        hq__endpoint_echo(url, n, e, sizeof(e)), curl_url_strerror(ures));
        goto out;
    }
    if (curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        rc = hq_err_set(err, HQ_EINVAL, "url: '%s' scheme '%s' is not http or https",
                        hq__endpoint_echo(url, n, e, sizeof(e)), scheme ? scheme : "");
        goto out;
    }
    /* Credentials in a URL end up in logs and dead letters; the message does
     * not echo the URL because it holds the password. */
    if (curl_url_get(h, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(h, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK) {
        rc = hq_err_set(
            err, HQ_EINVAL,
            "url: user:password in the URL is not allowed (send credentials with --header 'Authorization: ...')");
        goto out;
    }
    if (curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
        rc = hq_err_set(err, HQ_EINVAL, "url: '%s' has no host",
                        hq__endpoint_echo(url, n, e, sizeof(e)));
        goto out;
    }
    /* curl normalises numeric IPv4 forms ("2130706433", "0x7f.1") to dotted
     * quads, so the guard sees the address a connection would use. */
    char why[160];
    if (hq_netguard_check_host(g, host, why, sizeof(why)) != 0) {
        rc = hq_err_set(
            err, HQ_EBLOCKED,
            "url: '%s' is blocked: %s (HOOKQ_ALLOW_PRIVATE=1 or --allow-cidrs allows it)",
            hq__endpoint_echo(url, n, e, sizeof(e)), why);
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
                          hq__endpoint_echo(line, n < 40 ? n : 40, e, sizeof(e)));
    size_t nlen = (size_t)(colon - line);
    if (nlen == 0)
        return hq_err_set(err, HQ_EINVAL, "header: empty name in '%s'",
                          hq__endpoint_echo(line, n < 40 ? n : 40, e, sizeof(e)));
    for (size_t i = 0; i < nlen; i++) {
        if (!is_tchar((unsigned char)line[i]))
            return hq_err_set(err, HQ_EINVAL, "header: name '%s' is not an HTTP token",
                              hq__endpoint_echo(line, nlen, e, sizeof(e)));
    }
    hq__endpoint_echo(line, nlen, e, sizeof(e));
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
                          hq__endpoint_echo(f, n, e, sizeof(e)));
    /* "<type>.*": the prefix, dot included, must fit a type. */
    if (n - 1 > HQ_TYPE_MAX)
        return hq_err_set(err, HQ_EINVAL, "events: '%s' is %zu chars, max %d",
                          hq__endpoint_echo(f, n, e, sizeof(e)), n, HQ_TYPE_MAX + 1);
    return check_type("events", f, n - 2, err);
}

int hq_endpoint_check_id(const char *id, struct hq_err *err)
{
    char e[96];
    size_t n = strlen(id);
    if (n == 0 || n > HQ_ENDPOINT_ID_MAX)
        return hq_err_set(err, HQ_EINVAL, "id: '%s' is not an endpoint id (ep_...)",
                          hq__endpoint_echo(id, n, e, sizeof(e)));
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)id[i];
        if (!isalnum(ch) && ch != '_' && ch != '-')
            return hq_err_set(err, HQ_EINVAL, "id: '%s' is not an endpoint id (ep_...)",
                              hq__endpoint_echo(id, n, e, sizeof(e)));
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

/* Each policy override alone: 0 (none) or in range; base <= max when both
 * are set (against the deployment's: hq_endpoint_check_policy). */
static int check_overrides(const struct hq_endpoint *e, struct hq_err *err)
{
    if (e->backoff_base_ms < 0 || e->backoff_base_ms > HQ_BACKOFF_SPAN_MAX_MS)
        return hq_err_set(err, HQ_EINVAL, "--backoff-base: %lldms is out of range (1ms to 30d)",
                          e->backoff_base_ms);
    if (e->backoff_max_ms < 0 || e->backoff_max_ms > HQ_BACKOFF_SPAN_MAX_MS)
        return hq_err_set(err, HQ_EINVAL, "--backoff-max: %lldms is out of range (1ms to 30d)",
                          e->backoff_max_ms);
    /* !(x >= 1) refuses NaN too; 0 means none. */
    if (e->backoff_factor != 0 &&
        !(e->backoff_factor >= 1 && e->backoff_factor <= HQ_BACKOFF_FACTOR_MAX))
        return hq_err_set(err, HQ_EINVAL, "--backoff-factor: %g must be >= 1 and <= %d",
                          e->backoff_factor, HQ_BACKOFF_FACTOR_MAX);
    if (e->retry_window_ms < 0 || e->retry_window_ms > HQ_RETRY_WINDOW_MAX_MS)
        return hq_err_set(err, HQ_EINVAL, "--retry-window: %lldms is out of range (1ms to 366d)",
                          e->retry_window_ms);
    if (e->rate.n < 0 || e->rate.n > HQ_RL_COUNT_MAX ||
        (e->rate.n > 0 && e->rate.per_ms != 1000 && e->rate.per_ms != 60000))
        return hq_err_set(err, HQ_EINVAL, "--rate-limit: %lld per %lldms is out of range",
                          e->rate.n, e->rate.per_ms);
    if (e->backoff_base_ms > 0 && e->backoff_max_ms > 0 && e->backoff_base_ms > e->backoff_max_ms)
        return hq_err_set(err, HQ_EINVAL,
                          "--backoff-base: %lldms must be <= --backoff-max (%lldms)",
                          e->backoff_base_ms, e->backoff_max_ms);
    int rc = hq_endpoint_check_breaker(&e->breaker, err);
    rc = rc ? rc : hq_batch_check(&e->batch, err);
    return rc;
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
                                  hq__endpoint_echo(e->headers[i], nl, b, sizeof(b)));
            }
        }
    }
    if (e->max_attempts < 0 || e->max_attempts > HQ_ENDPOINT_ATTEMPTS_MAX)
        return hq_err_set(err, HQ_EINVAL, "max-attempts: %d is out of range (0 to %d)",
                          e->max_attempts, HQ_ENDPOINT_ATTEMPTS_MAX);
    if (e->tenant[0]) {
        rc = hq_endpoint_check_tenant(e->tenant, err);
        if (rc != 0)
            return rc;
    }
    return check_overrides(e, err);
}

int hq_endpoint_check_tenant(const char *tenant, struct hq_err *err)
{
    return hq_event_check_tenant(tenant, strlen(tenant), err);
}

/* ---- Retry policy (pure) ------------------------------------------------------------ */

void hq_endpoint_policy(const struct hq_endpoint *e, const struct hq_policy *dep,
                        struct hq_policy *out)
{
    *out = *dep;
    if (e->max_attempts > 0)
        out->max_attempts = e->max_attempts;
    if (e->backoff_base_ms > 0)
        out->base_ms = e->backoff_base_ms;
    if (e->backoff_factor > 0)
        out->factor = e->backoff_factor;
    if (e->backoff_max_ms > 0)
        out->max_ms = e->backoff_max_ms;
}

int hq_endpoint_check_policy(const struct hq_endpoint *e, const struct hq_policy *dep,
                             struct hq_err *err)
{
    int rc = check_overrides(e, err);
    if (rc != 0)
        return rc;
    struct hq_policy p;
    hq_endpoint_policy(e, dep, &p);
    if (p.base_ms <= p.max_ms)
        return 0;
    /* Name the flag the endpoint set; the other value is the deployment's. */
    if (e->backoff_base_ms > 0 && e->backoff_max_ms > 0)
        return hq_err_set(err, HQ_EINVAL,
                          "--backoff-base: %lldms must be <= --backoff-max (%lldms)", p.base_ms,
                          p.max_ms);
    if (e->backoff_base_ms > 0)
        return hq_err_set(
            err, HQ_EINVAL,
            "--backoff-base: %lldms must be <= the effective backoff max (%lldms, the deployment's)",
            p.base_ms, p.max_ms);
    return hq_err_set(
        err, HQ_EINVAL,
        "--backoff-max: %lldms must be >= the effective backoff base (%lldms, the deployment's)",
        p.max_ms, p.base_ms);
}

/* ---- Matching and index keys (pure) --------------------------------------------- */

int hq_endpoint_matches(const struct hq_endpoint *e, const char *type, size_t type_len)
{
    /* A reserved type ("hookq.") is matched only by an explicit filter: a
     * tenant's "*" must not receive other tenants' operational events. */
    int reserved = hq_event_type_reserved(type, type_len);
    if (e->nevents == 0)
        return !reserved;
    for (int i = 0; i < e->nevents; i++) {
        const char *f = e->events[i];
        size_t n = strlen(f);
        if (n == 1 && f[0] == '*') {
            if (!reserved)
                return 1;
        } else if (n > 0 && f[n - 1] == '*') {
            /* "a.*" matches every type starting "a.". */
            if (type_len >= n - 1 && memcmp(type, f, n - 1) == 0)
                return 1;
        } else if (n == type_len && memcmp(type, f, n) == 0) {
            return 1;
        }
    }
    return 0;
}

int hq_endpoint_index_keys(const char *base, const char *type, size_t type_len,
                           char (*keys)[HQ_KEY_MAX], int max)
{
    if (type_len == 0 || type_len > HQ_TYPE_MAX)
        return HQ_EINVAL;
    char t[HQ_TYPE_MAX + 1];
    memcpy(t, type, type_len);
    t[type_len] = '\0';
    if (max < 2)
        return HQ_ETOOBIG;
    /* The "*" set (idx:p:) is left out for a reserved type: see hq_endpoint_matches. */
    int k = hq_event_type_reserved(t, type_len) ? 1 : 2;
    if (hq_key_idx_type(base, t, keys[0], HQ_KEY_MAX) < 0 ||
        (k == 2 && hq_key_idx_prefix(base, "", keys[1], HQ_KEY_MAX) < 0))
        return HQ_ETOOBIG;
    for (size_t i = 0; i < type_len; i++) {
        if (t[i] != '.')
            continue;
        if (k >= max)
            return HQ_ETOOBIG;
        char save = t[i + 1];
        t[i + 1] = '\0';
        int w = hq_key_idx_prefix(base, t, keys[k], HQ_KEY_MAX);
        t[i + 1] = save;
        if (w < 0)
            return HQ_ETOOBIG;
        k++;
    }
    return k;
}

int hq_endpoint_filter_key(const char *base, const char *filter, char *out, size_t n)
{
    size_t len = strlen(filter);
    if (len > 0 && filter[len - 1] == '*') {
        char pre[HQ_KEY_MAX];
        if (len - 1 >= sizeof(pre))
            return -1;
        memcpy(pre, filter, len - 1);
        pre[len - 1] = '\0';
        return hq_key_idx_prefix(base, pre, out, n);
    }
    return hq_key_idx_type(base, filter, out, n);
}

/* ---- Hash <-> struct ----------------------------------------------------------------- */

int hq__endpoint_split(const char *s, size_t len, char sep, int max, int cut, char ***out,
                       int *nout)
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
    if (count > max && !cut)
        return HQ_EINVAL;
    if (count > max)
        count = max;
    if (count == 0)
        return 0;
    char **v = hq_calloc((size_t)count, sizeof(*v));
    int k = 0;
    for (size_t i = 0, start = 0; i <= len && k < count; i++) {
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

/* Copies a hash value (not NUL-terminated) into b for strto*; HQ_EINVAL when
 * empty or too long for a number. */
static int number_cstr(const char *s, size_t n, char *b, size_t bn)
{
    if (n == 0 || n >= bn)
        return HQ_EINVAL;
    memcpy(b, s, n);
    b[n] = '\0';
    return 0;
}

static int parse_ll(const char *s, size_t n, long long *out)
{
    char b[24];
    if (number_cstr(s, n, b, sizeof(b)) != 0)
        return HQ_EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(b, &end, 10);
    if (errno || *end || !(isdigit((unsigned char)b[0]) || b[0] == '-'))
        return HQ_EINVAL;
    *out = v;
    return 0;
}

/* ---- Circuit breaker overrides (pure) ------------------------------------------------ */

/* v in lo..hi, or 0 (unset): else HQ_EINVAL naming flag. */
static int breaker_range(const char *flag, long long v, long long lo, long long hi,
                         const char *unit, struct hq_err *err)
{
    if (v == 0 || (v >= lo && v <= hi))
        return 0;
    return hq_err_set(err, HQ_EINVAL,
                      "--%s: %lld%s is out of range (%lld%s to %lld%s; 0 = the worker's)", flag, v,
                      unit, lo, unit, hi, unit);
}

int hq_endpoint_check_breaker(const struct hq_endpoint_breaker *b, struct hq_err *err)
{
    int rc = breaker_range("breaker-failures", b->failures, 1, HQ_BREAKER_FAILURES_MAX, "", err);
    rc = rc ? rc
            : breaker_range("breaker-window", b->window_ms, HQ_BREAKER_WINDOW_MIN_MS,
                            HQ_BREAKER_WINDOW_MAX_MS, "ms", err);
    rc = rc ? rc
            : breaker_range("breaker-min-attempts", b->min_attempts, 1, HQ_BREAKER_FAILURES_MAX, "",
                            err);
    rc = rc ? rc
            : breaker_range("breaker-probe-interval", b->probe_ms, HQ_BREAKER_PROBE_MIN_MS,
                            HQ_BREAKER_PROBE_MAX_MS, "ms", err);
    if (rc == 0 && b->ratio_set && (b->ratio < 0 || b->ratio > 100))
        rc = hq_err_set(err, HQ_EINVAL, "--breaker-ratio: %lld%% is out of range (0%% to 100%%)",
                        b->ratio);
    return rc;
}

int hq_endpoint_parse_breaker_ratio(const char *s, struct hq_endpoint_breaker *b,
                                    struct hq_err *err)
{
    char e[96];
    size_t n = strlen(s);
    if (n == 0) {
        b->ratio_set = 0;
        b->ratio = 0;
        return 0;
    }
    size_t digits = n - (s[n - 1] == '%');
    long long v = 0;
    for (size_t i = 0; i < digits && v <= 100; i++) {
        if (!isdigit((unsigned char)s[i]))
            digits = 0; /* refused below */
        else
            v = v * 10 + (s[i] - '0');
    }
    if (digits == 0 || digits > 3 || v > 100)
        return hq_err_set(
            err, HQ_EINVAL,
            "--breaker-ratio: '%s' is not a percentage 0-100 (e.g. 50%%; '' = the worker's)",
            hq__endpoint_echo(s, n, e, sizeof(e)));
    b->ratio = v;
    b->ratio_set = 1;
    return 0;
}

void hq_endpoint_breaker_format(const struct hq_endpoint_breaker *b, char *out, size_t n)
{
    size_t k = 0;
    out[0] = '\0';
#define PUT(...)                                                                                   \
    do {                                                                                           \
        if (k < n)                                                                                 \
            k += (size_t)snprintf(out + k, n - k, __VA_ARGS__);                                    \
    } while (0)
    if (b->failures)
        PUT("%sfailures %lld", k ? ", " : "", b->failures);
    if (b->ratio_set)
        PUT("%sratio %lld%%", k ? ", " : "", b->ratio);
    if (b->window_ms)
        PUT("%swindow %lldms", k ? ", " : "", b->window_ms);
    if (b->min_attempts)
        PUT("%smin_attempts %lld", k ? ", " : "", b->min_attempts);
    if (b->probe_ms)
        PUT("%sprobe_interval %lldms", k ? ", " : "", b->probe_ms);
#undef PUT
    if (!out[0])
        snprintf(out, n, "the worker's defaults (--breaker-*)");
}

/* Reads breaker field k = v (a breaker_* field of the hash) into b. Returns
 * 0 when k is not one, 1 parsed, -1 malformed. "" is unset. */
const char *hq_endpoint_ordered_name(int ordered)
{
    return ordered == HQ_ORDERED_BLOCK ? "block" : ordered == HQ_ORDERED_SKIP ? "skip" : "";
}

int hq_endpoint_parse_ordered(const char *s, int *out, struct hq_err *err)
{
    if (strcmp(s, "block") == 0)
        *out = HQ_ORDERED_BLOCK;
    else if (strcmp(s, "skip") == 0)
        *out = HQ_ORDERED_SKIP;
    else
        return hq_err_set(err, HQ_EINVAL, "--ordered-on-failure: '%s' is not block or skip", s);
    return 0;
}

/* The hash field ordered: "" = off, "block", "skip". -1 for anything else (*out 0). */
static int ordered_field(const redisReply *v, int *out)
{
    *out = HQ_ORDERED_OFF;
    if (v->len == 0)
        return 0;
    char s[8];
    if (v->len >= sizeof(s))
        return -1;
    memcpy(s, v->str, v->len);
    s[v->len] = '\0';
    return hq_endpoint_parse_ordered(s, out, NULL) == 0 ? 0 : -1;
}

static int breaker_field(const redisReply *k, const redisReply *v, struct hq_endpoint_breaker *b)
{
    static const char *const names[] = {"breaker_failures", "breaker_ratio", "breaker_window_ms",
                                        "breaker_min_attempts", "breaker_probe_ms"};
    long long *dst[] = {&b->failures, &b->ratio, &b->window_ms, &b->min_attempts, &b->probe_ms};
    for (int i = 0; i < 5; i++) {
        if (k->len != strlen(names[i]) || memcmp(k->str, names[i], k->len) != 0)
            continue;
        if (v->len == 0)
            return 1;
        if (parse_ll(v->str, v->len, dst[i]) != 0)
            return -1;
        if (i == 1)
            b->ratio_set = 1;
        return 1;
    }
    return 0;
}

static int parse_double(const char *s, size_t n, double *out)
{
    char b[32];
    if (number_cstr(s, n, b, sizeof(b)) != 0)
        return HQ_EINVAL;
    char *end;
    errno = 0;
    double v = strtod(b, &end);
    if (errno || *end || !(v >= 0))
        return HQ_EINVAL;
    *out = v;
    return 0;
}

static int field_is(const redisReply *k, const char *name)
{
    return k->len == strlen(name) && memcmp(k->str, name, k->len) == 0;
}

/* Copies a string reply's value into out (n bytes, NUL-terminated); -1 when it does not fit. */
static int value_str(const redisReply *v, char *out, size_t n)
{
    if (v->len >= n)
        return -1;
    memcpy(out, v->str, v->len);
    out[v->len] = '\0';
    return 0;
}

int hq_endpoint_from_reply(const redisReply *r, const char *id, struct hq_endpoint *e,
                           struct hq_err *err)
{
    char b[96];
    memset(e, 0, sizeof(*e));
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)
        return hq_err_set(err, HQ_EINVAL, "endpoint %s: hash reply is not field/value pairs",
                          hq__endpoint_echo(id, strlen(id), b, sizeof(b)));
    if (r->elements == 0)
        return hq_err_set(err, HQ_ENOTFOUND, "no endpoint '%s'",
                          hq__endpoint_echo(id, strlen(id), b, sizeof(b)));
    if (strlen(id) > HQ_ENDPOINT_ID_MAX)
        return hq_err_set(err, HQ_EINVAL, "endpoint %s: id too long",
                          hq__endpoint_echo(id, strlen(id), b, sizeof(b)));
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
            hq_endpoint_free_list(&e->events, &e->nevents);
            if (hq__endpoint_split(v->str, v->len, ',', HQ_EVENT_FILTERS_MAX, 0, &e->events,
                                   &e->nevents) != 0)
                bad = "events";
        } else if (field_is(k, "headers")) {
            hq_endpoint_free_list(&e->headers, &e->nheaders);
            if (hq__endpoint_split(v->str, v->len, '\n', HQ_HEADERS_MAX, 0, &e->headers,
                                   &e->nheaders) != 0)
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
        } else if (field_is(k, "tenant")) {
            if (v->len > 0 && hq_event_check_tenant(v->str, v->len, NULL) != 0) {
                bad = "tenant";
            } else {
                memcpy(e->tenant, v->str, v->len);
                e->tenant[v->len] = '\0';
            }
        } else if (field_is(k, "backoff_base_ms")) {
            bad = parse_ll(v->str, v->len, &e->backoff_base_ms) ? "backoff_base_ms" : NULL;
        } else if (field_is(k, "backoff_max_ms")) {
            bad = parse_ll(v->str, v->len, &e->backoff_max_ms) ? "backoff_max_ms" : NULL;
        } else if (field_is(k, "retry_window_ms")) {
            bad = parse_ll(v->str, v->len, &e->retry_window_ms) ? "retry_window_ms" : NULL;
        } else if (field_is(k, "rate_limit")) {
            char rl[HQ_RL_STR_MAX];
            if (value_str(v, rl, sizeof(rl)) != 0 || hq_rate_parse(rl, &e->rate, NULL) != 0)
                bad = "rate_limit";
        } else if (field_is(k, "batch")) {
            char bt[HQ_BATCH_STR_MAX];
            if (value_str(v, bt, sizeof(bt)) != 0 || hq_batch_parse(bt, &e->batch, NULL) != 0)
                bad = "batch";
        } else if (field_is(k, "backoff_factor")) {
            bad = parse_double(v->str, v->len, &e->backoff_factor) ? "backoff_factor" : NULL;
        } else if (breaker_field(k, v, &e->breaker) < 0) {
            bad = "breaker_*";
        } else if (field_is(k, "ordered")) {
            bad = ordered_field(v, &e->ordered) ? "ordered" : NULL;
        }
        /* Unknown fields are ignored: a newer hookq may have added them. */
    }
    if (!bad && !e->url)
        bad = "url (missing)";
    if (!bad && (!e->key1[0] || !e->key2[0]))
        bad = "key1/key2 (missing)";
    if (!bad && check_overrides(e, NULL) != 0)
        bad = "backoff_*/retry_window_ms/breaker_* (out of range)";
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

const char *const hq_endpoint_listing_fields[HQ_ENDPOINT_LISTING_FIELDS] = {"name",
                                                                            "url",
                                                                            "description",
                                                                            "events",
                                                                            "headers",
                                                                            "enabled",
                                                                            "max_attempts",
                                                                            "created_ms",
                                                                            "updated_ms",
                                                                            "tenant",
                                                                            "backoff_base_ms",
                                                                            "backoff_factor",
                                                                            "backoff_max_ms",
                                                                            "retry_window_ms",
                                                                            "rate_limit",
                                                                            "breaker_failures",
                                                                            "breaker_ratio",
                                                                            "breaker_window_ms",
                                                                            "breaker_min_attempts",
                                                                            "breaker_probe_ms",
                                                                            "batch",
                                                                            "ordered"};

int hq_endpoint_from_listing(const redisReply *r, const char *id, struct hq_endpoint *e)
{
    memset(e, 0, sizeof(*e));
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != HQ_ENDPOINT_LISTING_FIELDS)
        return -1;
    int present = 0;
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->enabled = 1;
    for (int i = 0; i < HQ_ENDPOINT_LISTING_FIELDS; i++) {
        const redisReply *v = r->element[i];
        if (v->type != REDIS_REPLY_STRING)
            continue;
        present = 1;
        /* Positions are hq_endpoint_listing_fields'. Lenient: a listing shows
         * a hand-edited hash as well as it can rather than hiding it. */
        switch (i) {
        case 0: e->name = hq_strndup(v->str, v->len); break;
        case 1: e->url = hq_strndup(v->str, v->len); break;
        case 2: e->description = hq_strndup(v->str, v->len); break;
        case 3:
            (void)hq__endpoint_split(v->str, v->len, ',', HQ_EVENT_FILTERS_MAX, 1, &e->events,
                                     &e->nevents);
            break;
        case 4:
            (void)hq__endpoint_split(v->str, v->len, '\n', HQ_HEADERS_MAX, 1, &e->headers,
                                     &e->nheaders);
            break;
        case 5: e->enabled = v->len > 0 && v->str[0] == '1'; break;
        case 6: e->max_attempts = (int)strtol(v->str, NULL, 10); break;
        case 7: e->created_ms = strtoll(v->str, NULL, 10); break;
        case 8: e->updated_ms = strtoll(v->str, NULL, 10); break;
        case 9: snprintf(e->tenant, sizeof(e->tenant), "%.*s", (int)v->len, v->str); break;
        case 10: e->backoff_base_ms = strtoll(v->str, NULL, 10); break;
        case 11: e->backoff_factor = strtod(v->str, NULL); break;
        case 12: e->backoff_max_ms = strtoll(v->str, NULL, 10); break;
        case 13: e->retry_window_ms = strtoll(v->str, NULL, 10); break;
        case 14: {
            char rl[HQ_RL_STR_MAX];
            snprintf(rl, sizeof(rl), "%.*s", (int)v->len, v->str);
            if (hq_rate_parse(rl, &e->rate, NULL) != 0)
                e->rate = (struct hq_rate){0};
            break;
        }
        case 20: {
            char bt[HQ_BATCH_STR_MAX];
            snprintf(bt, sizeof(bt), "%.*s", (int)v->len, v->str);
            if (hq_batch_parse(bt, &e->batch, NULL) != 0)
                e->batch = (struct hq_batch_cfg){0};
            break;
        }
        case 21: (void)ordered_field(v, &e->ordered); break; /* garbage: not ordered */
        default: { /* 15-19: breaker_*, as in the hash reader (lenient: garbage is unset) */
            redisReply k = {.type = REDIS_REPLY_STRING,
                            .str = (char *)hq_endpoint_listing_fields[i],
                            .len = strlen(hq_endpoint_listing_fields[i])};
            if (breaker_field(&k, v, &e->breaker) < 0)
                memset(&e->breaker, 0, sizeof(e->breaker));
            break;
        }
        }
    }
    if (!present)
        return 1;
    if (!e->name)
        e->name = hq_strdup("");
    if (!e->url)
        e->url = hq_strdup("");
    if (!e->description)
        e->description = hq_strdup("");
    return 0;
}
