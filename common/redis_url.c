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
    if (strncmp(url, "redis://", 8) != 0)
        return hq_err_set(err, HQ_EINVAL,
                          "--redis-url: '%.64s' must start with redis:// or unix://", url);
    const char *p = url + 8;
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (copy(out->user, sizeof(out->user), p, (size_t)(colon - p)) != 0 ||
                copy(out->password, sizeof(out->password), colon + 1, (size_t)(at - colon - 1)) !=
                    0)
                return hq_err_set(err, HQ_EINVAL, "--redis-url: user or password too long");
        } else if (copy(out->password, sizeof(out->password), p, (size_t)(at - p)) != 0) {
            return hq_err_set(err, HQ_EINVAL, "--redis-url: password too long");
        }
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
    if (u->path[0])
        snprintf(buf, n, "unix:%s", u->path);
    else if (strchr(u->host, ':'))
        snprintf(buf, n, "[%s]:%d", u->host, u->port);
    else
        snprintf(buf, n, "%s:%d", u->host, u->port);
    return buf;
}
