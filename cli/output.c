/* Output helpers shared by the commands: JSON pretty-printing, terminal-safe
 * escaping, table cells, times and spans. See output.h. */
#include "cli/output.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/limits.h"

/* ---- JSON pretty-printer ------------------------------------------------------------------ */

struct pp {
    const char *p, *end;
    struct hq_buf *out;
    int ok; /* 0 once an append failed (too big) */
};

static void put(struct pp *x, const char *s, size_t n)
{
    if (x->ok && hq_buf_append(x->out, s, n) != 0)
        x->ok = 0;
}

static void indent(struct pp *x, int depth)
{
    put(x, "\n", 1);
    for (int i = 0; i < depth; i++)
        put(x, "  ", 2);
}

static void skip_ws(struct pp *x)
{
    while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\n' || *x->p == '\r'))
        x->p++;
}

static int pp_string(struct pp *x)
{
    const char *start = x->p++;
    while (x->p < x->end && *x->p != '"') {
        unsigned char ch = (unsigned char)*x->p;
        if (ch < 0x20)
            return -1;
        if (ch == '\\') {
            x->p++;
            if (x->p >= x->end || !strchr("\"\\/bfnrtu", *x->p))
                return -1;
            if (*x->p == 'u') {
                if (x->end - x->p < 5)
                    return -1;
                for (int i = 1; i <= 4; i++) {
                    if (!isxdigit((unsigned char)x->p[i]))
                        return -1;
                }
                x->p += 4;
            }
        }
        x->p++;
    }
    if (x->p >= x->end)
        return -1;
    x->p++;
    put(x, start, (size_t)(x->p - start));
    return 0;
}

static int pp_number(struct pp *x)
{
    const char *start = x->p;
    if (*x->p == '-')
        x->p++;
    if (x->p >= x->end || !isdigit((unsigned char)*x->p))
        return -1;
    while (x->p < x->end && (isdigit((unsigned char)*x->p) || strchr(".eE+-", *x->p)))
        x->p++;
    put(x, start, (size_t)(x->p - start));
    return 0;
}

static int pp_value(struct pp *x, int depth)
{
    skip_ws(x);
    if (x->p >= x->end || depth > HQ_JSON_PRETTY_DEPTH_MAX)
        return -1;
    char ch = *x->p;
    if (ch == '"')
        return pp_string(x);
    if (ch == '-' || isdigit((unsigned char)ch))
        return pp_number(x);
    static const char *const lits[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(lits[i]);
        if ((size_t)(x->end - x->p) >= n && memcmp(x->p, lits[i], n) == 0) {
            put(x, lits[i], n);
            x->p += n;
            return 0;
        }
    }
    if (ch != '{' && ch != '[')
        return -1;
    char close = ch == '{' ? '}' : ']';
    put(x, &ch, 1);
    x->p++;
    skip_ws(x);
    if (x->p < x->end && *x->p == close) {
        put(x, &close, 1);
        x->p++;
        return 0;
    }
    for (;;) {
        indent(x, depth + 1);
        if (ch == '{') {
            skip_ws(x);
            if (x->p >= x->end || *x->p != '"' || pp_string(x) != 0)
                return -1;
            skip_ws(x);
            if (x->p >= x->end || *x->p != ':')
                return -1;
            x->p++;
            put(x, ": ", 2);
        }
        if (pp_value(x, depth + 1) != 0)
            return -1;
        skip_ws(x);
        if (x->p >= x->end)
            return -1;
        if (*x->p == ',') {
            put(x, ",", 1);
            x->p++;
            continue;
        }
        if (*x->p != close)
            return -1;
        x->p++;
        indent(x, depth);
        put(x, &close, 1);
        return 0;
    }
}

int hq_out_json_pretty(const char *s, size_t n, struct hq_buf *out)
{
    size_t mark = out->len;
    struct pp x = {s, s + n, out, 1};
    int rc = pp_value(&x, 0);
    skip_ws(&x);
    if (rc != 0 || x.p != x.end || !x.ok) {
        out->len = mark;
        if (out->p)
            out->p[mark] = '\0';
        return HQ_EINVAL;
    }
    return 0;
}

/* ---- Terminal escaping -------------------------------------------------------------------- */

/* Length of a valid UTF-8 sequence at s (n bytes left) that is not a C1
 * control (U+0080..U+009F, encoded C2 80..C2 9F: terminals obey some), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = hq_utf8_len(s, n);
    return len == 2 && s[0] == 0xc2 && s[1] < 0xa0 ? 0 : len;
}

void hq_out_escape(struct hq_buf *out, const char *s, size_t n, size_t max, int keep_lines)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t lim = n < max ? n : max;
    int rc = 0;
    for (size_t i = 0; i < lim && rc == 0;) {
        unsigned char ch = u[i];
        size_t ul;
        if (ch >= 0x20 && ch < 0x7f) {
            rc = hq_buf_append(out, &u[i], 1);
            i++;
        } else if (keep_lines && (ch == '\n' || ch == '\t')) {
            rc = hq_buf_append(out, &u[i], 1);
            i++;
        } else if (ch == '\n') {
            rc = hq_buf_append(out, "\\n", 2);
            i++;
        } else if (ch == '\t') {
            rc = hq_buf_append(out, "\\t", 2);
            i++;
        } else if (ch >= 0x80 && (ul = utf8_len(&u[i], n - i)) > 0 && i + ul <= lim) {
            rc = hq_buf_append(out, &u[i], ul);
            i += ul;
        } else {
            rc = hq_buf_printf(out, "\\x%02x", ch);
            i++;
        }
    }
    if (rc == 0 && lim < n)
        rc = hq_buf_append(out, "...", 3);
    (void)rc; /* a full buffer just ends the text early */
}

/* ---- Cells, lines, times ------------------------------------------------------------------ */

const char *hq_out_cell(struct hq_buf *b, const char *s, size_t n, size_t max)
{
    hq_buf_reset(b);
    hq_out_escape(b, s ? s : "", s ? n : 0, max, 0);
    if (b->len == 0 && hq_buf_append(b, "-", 1) != 0)
        return "-";
    return b->p;
}

void hq_out_put_clean(FILE *out, const char *s, int multiline)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch < 0x20 && !(multiline && (ch == '\n' || ch == '\t'))) || ch == 0x7f)
            ch = '?';
        putc(ch, out);
    }
}

char *hq_out_span(int64_t ms, char *out, size_t n)
{
    long long s = ms < 0 ? 0 : (long long)(ms / 1000);
    if (s < 120)
        snprintf(out, n, "%llds", s);
    else if (s < 7200)
        snprintf(out, n, "%lldm", s / 60);
    else if (s < 172800)
        snprintf(out, n, "%lldh", s / 3600);
    else
        snprintf(out, n, "%lldd", s / 86400);
    return out;
}
