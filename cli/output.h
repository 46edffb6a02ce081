/* What the commands print with, so every command shows data the same way:
 * JSON pretty-printing that never fails, terminal-safe escaping (data read
 * from Redis may hold anything; it must not drive the terminal), table cells
 * and time spans. Times themselves are common/clock.h's hq_iso_time. Pure:
 * each writes into a caller's buffer or stream and keeps no state. */
#ifndef HQ_CLI_OUTPUT_H
#define HQ_CLI_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"
#include "common/err.h"

/* Appends s (n bytes) pretty-printed with two-space indents when it is valid
 * JSON; otherwise leaves out unchanged and returns HQ_EINVAL (the caller
 * prints it raw). Nesting deeper than HQ_JSON_PRETTY_DEPTH_MAX is HQ_EINVAL. */
int hq_out_json_pretty(const char *s, size_t n, struct hq_buf *out) HQ_MUST_CHECK;

/* Appends s (n bytes, at most max of them) made safe for a terminal:
 * printable ASCII and valid UTF-8 (no C1 controls) as is, \n and \t as is when
 * keep_lines else escaped, everything else as \xNN; "..." marks a cut. A full
 * buffer just ends the text early. */
void hq_out_escape(struct hq_buf *out, const char *s, size_t n, size_t max, int keep_lines);

/* One table cell: b reset to s (n bytes; NULL = none) escaped and cut at max,
 * or "-" when that is empty. Returns the text, borrowed from b (or static). */
const char *hq_out_cell(struct hq_buf *b, const char *s, size_t n, size_t max);

/* Writes s to out with control characters as '?' (tab and newline kept when
 * multiline): cheaper than hq_out_escape for short fields on one line. */
void hq_out_put_clean(FILE *out, const char *s, int multiline);

/* A span in whole units, rounded down: "12s" under 2 minutes, "5m" under 2
 * hours, "3h" under 2 days, else "4d"; negative counts as 0. Returns out. */
char *hq_out_span(int64_t ms, char *out, size_t n);

#endif
