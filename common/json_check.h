/* Whether bytes are one JSON text (RFC 8259), strictly: the batch envelope
 * embeds a payload as JSON only when it is (docs/batching.md). Pure, no
 * allocation, nesting bounded by HQ_JSON_CHECK_DEPTH (deeper counts as not
 * JSON: it then travels as base64, untouched). */
#ifndef HQ_COMMON_JSON_CHECK_H
#define HQ_COMMON_JSON_CHECK_H

#include <stddef.h>

#define HQ_JSON_CHECK_DEPTH 64

/* 1 when p[0..n) is exactly one JSON value with optional surrounding
 * whitespace and valid UTF-8 in its strings; else 0. */
int hq_json_check(const char *p, size_t n);

#endif
