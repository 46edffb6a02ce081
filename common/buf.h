/* struct hq_buf: a growable byte buffer with a hard maximum set at init
 * (curl's dynbuf "toobig"). Always NUL-terminated so it
 * can be printed; the NUL is not counted in len. */
#ifndef HQ_COMMON_BUF_H
#define HQ_COMMON_BUF_H

#include <stddef.h>

#include "common/err.h"

struct hq_buf {
    char *p;    /* owned; NULL until the first append */
    size_t len; /* bytes used, excluding the trailing NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* appends that would exceed this fail with HQ_ETOOBIG */
};

void hq_buf_init(struct hq_buf *b, size_t max);
/* Appends n bytes; HQ_ETOOBIG (buffer unchanged) past max. Aborts on OOM (daemon policy). */
int hq_buf_append(struct hq_buf *b, const void *p, size_t n) HQ_MUST_CHECK;
int hq_buf_printf(struct hq_buf *b, const char *fmt, ...) HQ_MUST_CHECK HQ_PRINTF(2, 3);
/* Appends v in decimal; no printf machinery (hot paths format integers with it). */
int hq_buf_i64(struct hq_buf *b, long long v) HQ_MUST_CHECK;
/* Makes room for n more bytes now, so the appends that follow do not grow the
 * buffer step by step; HQ_ETOOBIG past max. */
int hq_buf_reserve(struct hq_buf *b, size_t n) HQ_MUST_CHECK;
/* Appends s as a JSON string literal, quotes included. */
int hq_buf_json_str(struct hq_buf *b, const char *s, size_t n) HQ_MUST_CHECK;
/* Length of the valid UTF-8 sequence at p (n bytes left), or 0 when invalid
 * (overlong forms, surrogates and code points past U+10FFFF included). */
size_t hq_utf8_len(const unsigned char *p, size_t n);
void hq_buf_reset(struct hq_buf *b);
void hq_buf_free(struct hq_buf *b);
/* Returns the buffer (caller frees with free()) and resets b. */
char *hq_buf_steal(struct hq_buf *b);

#endif
