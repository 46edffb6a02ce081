/* Bounded growable buffer. See buf.h. */
#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

void hq_buf_init(struct hq_buf *b, size_t max)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

static int reserve(struct hq_buf *b, size_t n)
{
    if (n > b->max || b->len + n > b->max)
        return HQ_ETOOBIG;
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    b->p = hq_realloc(b->p, cap);
    b->cap = cap;
    return 0;
}

int hq_buf_append(struct hq_buf *b, const void *p, size_t n)
{
    if (reserve(b, n) != 0)
        return HQ_ETOOBIG;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int hq_buf_reserve(struct hq_buf *b, size_t n)
{
    return reserve(b, n);
}

int hq_buf_i64(struct hq_buf *b, long long v)
{
    char tmp[24];
    char *end = tmp + sizeof(tmp), *p = end;
    /* Through unsigned: -LLONG_MIN does not fit in a long long. */
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return hq_buf_append(b, p, (size_t)(end - p));
}

int hq_buf_printf(struct hq_buf *b, const char *fmt, ...)
{
    /* Format into the room already there; only when it does not fit, grow and
     * format again (one vsnprintf in the common case, not two). */
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return HQ_EINVAL;
    if ((size_t)n < room) {
        if (b->len + (size_t)n > b->max) {
            b->p[b->len] = '\0';
            return HQ_ETOOBIG;
        }
        b->len += (size_t)n;
        return 0;
    }
    if (reserve(b, (size_t)n) != 0) {
        if (b->p)
            b->p[b->len] = '\0';
        return HQ_ETOOBIG;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

size_t hq_utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

/* 1 for the bytes hq_buf_json_str copies as they are. */
static int json_plain(unsigned char c)
{
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

int hq_buf_json_str(struct hq_buf *b, const char *s, size_t n)
{
    int rc = hq_buf_append(b, "\"", 1);
    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        if (json_plain(c)) {
            /* A run of plain ASCII goes in with one append. */
            size_t j = i + 1;
            while (j < n && json_plain((unsigned char)s[j]))
                j++;
            rc = hq_buf_append(b, s + i, j - i);
            i = j - 1;
        } else if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            rc = hq_buf_append(b, e, 2);
        } else if (c == '\n') {
            rc = hq_buf_append(b, "\\n", 2);
        } else if (c == '\r') {
            rc = hq_buf_append(b, "\\r", 2);
        } else if (c == '\t') {
            rc = hq_buf_append(b, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            rc = hq_buf_printf(b, "\\u%04x", c);
        } else {
            /* Valid UTF-8 passes through; any other byte becomes U+FFFD, so the
             * output is always valid JSON whatever a peer sent. */
            size_t len = hq_utf8_len((const unsigned char *)s + i, n - i);
            if (len) {
                rc = hq_buf_append(b, &s[i], len);
                i += len - 1;
            } else {
                rc = hq_buf_append(b, "\\ufffd", 6);
            }
        }
    }
    if (rc == 0)
        rc = hq_buf_append(b, "\"", 1);
    return rc;
}

void hq_buf_reset(struct hq_buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

void hq_buf_free(struct hq_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

char *hq_buf_steal(struct hq_buf *b)
{
    char *p = b->p ? b->p : hq_strdup("");
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}
