/* Redis URL parsing. See redis_url.h. */
#include "common/redis_url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int copy(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        return -1;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

static int parse_db(const char *s, size_t n, int *db)
{
    if (n == 0 || n > 5)
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *db = v;
    return 0;
}

/* One "host[:port]" of a sentinel or cluster seed list, n bytes at s; [v6]
 * allowed; what names the kind of address in messages ("sentinel", "node"). */
static int parse_list_addr(const char *s, size_t n, struct hq_sentinel_addr *a, int defport,
                           const char *what, struct hq_err *err)
{
    const char *end = s + n, *h = s, *hend;
    size_t hlen;
    if (n > 0 && *s == '[') {
        const char *rb = memchr(s, ']', n);
        if (!rb)
            return hq_err_set(err, HQ_EINVAL, "--redis-url: unterminated [ in %s '%.*s'", what,
                              (int)(n > 64 ? 64 : n), s);
        h = s + 1;
        hlen = (size_t)(rb - h);
        hend = rb + 1;
    } else {
        const char *colon = memchr(s, ':', n);
        hend = colon ? colon : end;
        hlen = (size_t)(hend - s);
    }
    if (hlen == 0)
        return hq_err_set(err, HQ_EINVAL, "--redis-url: empty %s address in the list", what);
    if (copy(a->host, sizeof(a->host), h, hlen) != 0)
        return hq_err_set(err, HQ_EINVAL, "--redis-url: %s host too long", what);
    a->port = defport;
    if (hend < end) {
        if (*hend != ':' || hend + 1 == end || end - hend > 6)
            return hq_err_set(err, HQ_EINVAL, "--redis-url: %s '%.*s': bad port", what,
                              (int)(n > 64 ? 64 : n), s);
        long port = 0;
        for (const char *q = hend + 1; q < end; q++) {
            if (*q < '0' || *q > '9')
                return hq_err_set(err, HQ_EINVAL, "--redis-url: %s '%.*s': bad port", what,
                                  (int)(n > 64 ? 64 : n), s);
            port = port * 10 + (*q - '0');
        }
        if (port < 1 || port > 65535)
            return hq_err_set(err, HQ_EINVAL, "--redis-url: %s '%.*s': port must be 1-65535", what,
                              (int)(n > 64 ? 64 : n), s);
        a->port = (int)port;
    }
    return 0;
}

static int valid_master_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
}

/* The userinfo [user]:password or password between p and at (the '@'), into
 * out: the same rule for redis:// and redis-sentinel://. */
static int parse_userinfo(const char *p, const char *at, struct hq_redis_url *out,
                          struct hq_err *err)
{
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (colon) {
        if (copy(out->user, sizeof(out->user), p, (size_t)(colon - p)) != 0 ||
            copy(out->password, sizeof(out->password), colon + 1, (size_t)(at - colon - 1)) != 0)
            return hq_err_set(err, HQ_EINVAL, "--redis-url: user or password too long");
    } else if (copy(out->password, sizeof(out->password), p, (size_t)(at - p)) != 0) {
        return hq_err_set(err, HQ_EINVAL, "--redis-url: password too long");
    }
    return 0;
}

/* The part of redis-sentinel:// and redis-cluster:// URLs before the path:
 * [[user]:password@]h1:p1,h2:p2,... into out's userinfo and addrs[] (count in
 * *n, at most HQ_SENTINELS_MAX); p points after the scheme. *slash is set to
 * the path's '/' or NULL. what names an address in messages ("sentinel",
 * "node"); none is an example of the list for the error when it is empty. */
static int parse_userinfo_and_list(const char *p, struct hq_redis_url *out,
                                   struct hq_sentinel_addr *addrs, int *n, int defport,
                                   const char *what, const char *none, const char **slash,
                                   struct hq_err *err)
{
    *slash = strchr(p, '/');
    /* The last '@' before the path: a password may itself hold '@'. */
    const char *at = NULL;
    for (const char *q = p; *q && q != *slash; q++)
        if (*q == '@')
            at = q;
    if (at) {
        int rc = parse_userinfo(p, at, out, err);
        if (rc != 0)
            return rc;
        p = at + 1;
    }
    const char *lend = *slash ? *slash : p + strlen(p);
    if (lend == p)
        return hq_err_set(err, HQ_EINVAL, "--redis-url: %s", none);
    while (p < lend) {
        const char *comma = memchr(p, ',', (size_t)(lend - p));
        const char *e = comma ? comma : lend;
        if (*n == HQ_SENTINELS_MAX)
            return hq_err_set(err, HQ_EINVAL, "--redis-url: too many %ss (max %d)", what,
                              HQ_SENTINELS_MAX);
        if (parse_list_addr(p, (size_t)(e - p), &addrs[*n], defport, what, err) != 0)
            return err->code;
        (*n)++;
        p = comma ? comma + 1 : lend;
        if (comma && p == lend)
            return hq_err_set(err, HQ_EINVAL, "--redis-url: empty %s address in the list", what);
    }
    return 0;
}

/* redis-sentinel://[[user]:password@]h1:p1,h2:p2/<master>[/db]; p points
 * after the scheme. */
static int parse_sentinel(const char *p, struct hq_redis_url *out, struct hq_err *err)
{
    const char *slash;
    int rc = parse_userinfo_and_list(
        p, out, out->sentinels, &out->nsentinels, HQ_SENTINEL_PORT, "sentinel",
        "redis-sentinel URL names no sentinel (h1:26379,...)", &slash, err);
    if (rc != 0)
        return rc;
    if (!slash || !slash[1] || slash[1] == '/')
        return hq_err_set(err, HQ_EINVAL,
                          "--redis-url: redis-sentinel URL needs a master name after the sentinels "
                          "(.../mymaster)");
    const char *m = slash + 1;
    size_t mlen = strcspn(m, "/");
    if (mlen > HQ_SENTINEL_NAME_MAX)
        return hq_err_set(err, HQ_EINVAL, "--redis-url: master name longer than %d characters",
                          HQ_SENTINEL_NAME_MAX);
    for (size_t i = 0; i < mlen; i++)
        if (!valid_master_char(m[i]))
            return hq_err_set(err, HQ_EINVAL,
                              "--redis-url: master name '%.*s' may hold only A-Z a-z 0-9 . _ -",
                              (int)mlen, m);
    memcpy(out->master, m, mlen);
    out->master[mlen] = '\0';
    const char *rest = m + mlen;
    if (*rest == '/') {
        rest++;
        if (*rest && parse_db(rest, strlen(rest), &out->db) != 0)
            return hq_err_set(err, HQ_EINVAL, "--redis-url: db '%.16s' must be a number", rest);
    }
    out->port = 0; /* unknown until a sentinel names the master */
    return 0;
}

/* redis-cluster://[[user]:password@]h1:p1,h2:p2[/0]; p points after the
 * scheme. The nodes are seeds: any one that answers gives the slot map. */
static int parse_cluster(const char *p, struct hq_redis_url *out, struct hq_err *err)
{
    const char *slash;
    int rc = parse_userinfo_and_list(p, out, out->seeds, &out->nseeds, 6379, "node",
                                     "redis-cluster URL names no node (h1:7000,h2:7001,...)",
                                     &slash, err);
    if (rc != 0)
        return rc;
    if (slash && slash[1]) {
        int db = 0;
        if (parse_db(slash + 1, strlen(slash + 1), &db) != 0)
            return hq_err_set(err, HQ_EINVAL, "--redis-url: db '%.16s' must be a number",
                              slash + 1);
        if (db != 0)
            return hq_err_set(err, HQ_EINVAL,
                              "--redis-url: a Redis Cluster has only db 0 (the URL names db %d)",
                              db);
    }
    out->cluster = 1;
    _Static_assert(sizeof(out->host) == sizeof(out->seeds[0].host), "same host buffers");
    memcpy(out->host, out->seeds[0].host, sizeof(out->host));
    out->port = out->seeds[0].port;
    return 0;
}

int hq_redis_url_parse(const char *url, struct hq_redis_url *out, struct hq_err *err)
{
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (strncmp(url, "unix://", 7) == 0) {
        const char *p = url + 7;
        const char *q = strchr(p, '?');
        size_t plen = q ? (size_t)(q - p) : strlen(p);
        if (plen == 0 || p[0] != '/' || copy(out->path, sizeof(out->path), p, plen) != 0)
            return hq_err_set(
                err, HQ_EINVAL,
                "--redis-url: unix URL needs an absolute socket path (unix:///path.sock)");
        while (q && *q) {
            q++;
            const char *amp = strchr(q, '&');
            size_t len = amp ? (size_t)(amp - q) : strlen(q);
            if (len > 3 && strncmp(q, "db=", 3) == 0) {
                if (parse_db(q + 3, len - 3, &out->db) != 0)
                    return hq_err_set(err, HQ_EINVAL, "--redis-url: db must be a number");
            } else if (len > 9 && strncmp(q, "password=", 9) == 0) {
                if (copy(out->password, sizeof(out->password), q + 9, len - 9) != 0)
                    return hq_err_set(err, HQ_EINVAL, "--redis-url: password too long");
            } else {
                return hq_err_set(
                    err, HQ_EINVAL,
                    "--redis-url: unknown unix URL parameter (db= and password= are known)");
            }
            q = amp;
        }
        return 0;
    }
    if (strncmp(url, "redis-sentinel://", 17) == 0)
        return parse_sentinel(url + 17, out, err);
    if (strncmp(url, "redis-cluster://", 16) == 0)
        return parse_cluster(url + 16, out, err);
    if (strncmp(url, "redis://", 8) != 0)
        /* Only the scheme is echoed: the rest may hold a password
         * (rediss://:secret@host). */
        return hq_err_set(err, HQ_EINVAL,
                          "--redis-url: '%.*s...' must start with redis://, redis-sentinel://, "
                          "redis-cluster:// or unix://",
                          (int)(strcspn(url, ":/@") > 16 ? 16 : strcspn(url, ":/@")), url);
    const char *p = url + 8;
    const char *at = strrchr(p, '@');
    if (at) {
        int rc = parse_userinfo(p, at, out, err);
        if (rc != 0)
            return rc;
        p = at + 1;
    }
    const char *hend;
    if (*p == '[') {
        const char *rb = strchr(p, ']');
        if (!rb)
            return hq_err_set(err, HQ_EINVAL, "--redis-url: unterminated [ in host");
        if (copy(out->host, sizeof(out->host), p + 1, (size_t)(rb - p - 1)) != 0)
            return hq_err_set(err, HQ_EINVAL, "--redis-url: host too long");
        hend = rb + 1;
    } else {
        hend = p + strcspn(p, ":/");
        if (copy(out->host, sizeof(out->host), p, (size_t)(hend - p)) != 0)
            return hq_err_set(err, HQ_EINVAL, "--redis-url: host too long");
    }
    if (!out->host[0])
        return hq_err_set(err, HQ_EINVAL, "--redis-url: '%.64s' has no host", url);
    if (*hend == ':') {
        char *end;
        long port = strtol(hend + 1, &end, 10);
        if (end == hend + 1 || port < 1 || port > 65535 || (*end && *end != '/'))
            return hq_err_set(err, HQ_EINVAL, "--redis-url: port must be 1-65535");
        out->port = (int)port;
        hend = end;
    }
    if (*hend == '/') {
        hend++;
        if (*hend && parse_db(hend, strlen(hend), &out->db) != 0)
            return hq_err_set(err, HQ_EINVAL, "--redis-url: db '%.16s' must be a number", hend);
    } else if (*hend) {
        return hq_err_set(err, HQ_EINVAL, "--redis-url: unexpected '%.16s' after the host", hend);
    }
    return 0;
}

const char *hq_redis_url_describe(const struct hq_redis_url *u, char *buf, size_t n)
{
    if (u->nsentinels > 0 && !u->host[0])
        return hq_sentinel_list_describe(u, buf, n);
    if (u->cluster) {
        int k = snprintf(buf, n, "cluster ");
        if (k < 0 || (size_t)k >= n)
            return buf;
        for (int i = 0; i < u->nseeds && (size_t)k < n; i++) {
            const struct hq_sentinel_addr *a = &u->seeds[i];
            int w = snprintf(buf + k, n - (size_t)k, strchr(a->host, ':') ? "%s[%s]:%d" : "%s%s:%d",
                             i ? "," : "", a->host, a->port);
            if (w < 0)
                break;
            k += w;
        }
        return buf;
    }
    if (u->path[0])
        snprintf(buf, n, "unix:%s", u->path);
    else if (strchr(u->host, ':'))
        snprintf(buf, n, "[%s]:%d", u->host, u->port);
    else
        snprintf(buf, n, "%s:%d", u->host, u->port);
    return buf;
}

const char *hq_sentinel_list_describe(const struct hq_redis_url *u, char *buf, size_t n)
{
    size_t off = 0;
    if (n == 0)
        return buf;
    buf[0] = '\0';
    for (int i = 0; i < u->nsentinels && off < n; i++) {
        const struct hq_sentinel_addr *a = &u->sentinels[i];
        int k = snprintf(buf + off, n - off, strchr(a->host, ':') ? "%s[%s]:%d" : "%s%s:%d",
                         i ? "," : "", a->host, a->port);
        if (k < 0)
            break;
        off += (size_t)k;
    }
    return buf;
}
