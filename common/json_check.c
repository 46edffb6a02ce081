/* A strict JSON syntax check. See json_check.h. */
#include "common/json_check.h"

#include <stdint.h>
#include <string.h>

struct cur {
    const unsigned char *p, *end;
};

static void ws(struct cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int lit(struct cur *c, const char *s)
{
    for (; *s; s++, c->p++)
        if (c->p >= c->end || *c->p != (unsigned char)*s)
            return 0;
    return 1;
}

static int digits(struct cur *c)
{
    const unsigned char *s = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        c->p++;
    return c->p > s;
}

static int number(struct cur *c)
{
    if (c->p < c->end && *c->p == '-')
        c->p++;
    if (c->p < c->end && *c->p == '0')
        c->p++;
    else if (!(c->p < c->end && *c->p >= '1' && *c->p <= '9') || !digits(c))
        return 0;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (!digits(c))
            return 0;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (!digits(c))
            return 0;
    }
    return 1;
}

static int hex(unsigned char x)
{
    return (x >= '0' && x <= '9') || (x >= 'a' && x <= 'f') || (x >= 'A' && x <= 'F');
}

/* One UTF-8 sequence of 2-4 bytes starting at a lead byte >= 0x80. */
static int utf8(struct cur *c)
{
    unsigned char b = *c->p;
    int n = b >= 0xc2 && b <= 0xdf   ? 1
            : b >= 0xe0 && b <= 0xef ? 2
            : b >= 0xf0 && b <= 0xf4 ? 3
                                     : -1;
    if (n < 0 || c->end - c->p <= n)
        return 0;
    unsigned char b1 = c->p[1];
    if ((b == 0xe0 && b1 < 0xa0) || (b == 0xed && b1 > 0x9f) || (b == 0xf0 && b1 < 0x90) ||
        (b == 0xf4 && b1 > 0x8f))
        return 0; /* overlong, surrogate or above U+10FFFF */
    for (int i = 1; i <= n; i++)
        if ((c->p[i] & 0xc0) != 0x80)
            return 0;
    c->p += n + 1;
    return 1;
}

static int string(struct cur *c)
{
    c->p++; /* the opening quote */
    while (c->p < c->end) {
        /* The common run of plain ASCII, with a local pointer: c->p may
         * alias the bytes read, so it would be stored and reloaded per byte. */
        const unsigned char *p = c->p, *end = c->end;
        /* Eight bytes at a time while none needs a look: each term sets a
         * byte's high bit when that byte is >= 0x80, < 0x20, '"' or '\\'
         * (bytes < 0x80 there: a borrow only adds false alarms, which the
         * byte loop below settles), so the check misses none. */
        const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
        while (end - p >= 8) {
            uint64_t x;
            memcpy(&x, p, 8);
            if ((x | (x - 0x20 * ones) | ((x ^ 0x22 * ones) - ones) | ((x ^ 0x5c * ones) - ones)) &
                high)
                break;
            p += 8;
        }
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        c->p = p;
        if (p >= end)
            break;
        unsigned char x = *c->p;
        if (x == '"') {
            c->p++;
            return 1;
        }
        if (x < 0x20)
            return 0;
        if (x == '\\') {
            if (++c->p >= c->end)
                return 0;
            x = *c->p++;
            if (x == 'u') {
                for (int i = 0; i < 4; i++, c->p++)
                    if (c->p >= c->end || !hex(*c->p))
                        return 0;
            } else if (!(x == '"' || x == '\\' || x == '/' || x == 'b' || x == 'f' || x == 'n' ||
                         x == 'r' || x == 't')) {
                return 0;
            }
        } else if (x >= 0x80) {
            if (!utf8(c))
                return 0;
        } else {
            c->p++;
        }
    }
    return 0;
}

static int value(struct cur *c, int depth)
{
    ws(c);
    if (c->p >= c->end)
        return 0;
    switch (*c->p) {
    case '"': return string(c);
    case 't': return lit(c, "true");
    case 'f': return lit(c, "false");
    case 'n': return lit(c, "null");
    case '[':
    case '{': {
        int obj = *c->p == '{';
        char close = obj ? '}' : ']';
        if (depth >= HQ_JSON_CHECK_DEPTH)
            return 0;
        c->p++;
        ws(c);
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return 1;
        }
        for (;;) {
            if (obj) {
                ws(c);
                if (c->p >= c->end || *c->p != '"' || !string(c))
                    return 0;
                ws(c);
                if (c->p >= c->end || *c->p++ != ':')
                    return 0;
            }
            if (!value(c, depth + 1))
                return 0;
            ws(c);
            if (c->p >= c->end)
                return 0;
            if (*c->p == ',') {
                c->p++;
                continue;
            }
            if (*c->p++ != close)
                return 0;
            return 1;
        }
    }
    default: return number(c);
    }
}

int hq_json_check(const char *p, size_t n)
{
    struct cur c = {(const unsigned char *)p, (const unsigned char *)p + n};
    if (!value(&c, 0))
        return 0;
    ws(&c);
    return c.p == c.end;
}
