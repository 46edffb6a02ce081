/* The one clock of the project: wall-clock milliseconds (what Redis stores
 * and users read), a monotonic microsecond counter (durations), and the ISO
 * 8601 form every command prints. Pure apart from reading the clock. */
#ifndef HQ_COMMON_CLOCK_H
#define HQ_COMMON_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Unix time in milliseconds (CLOCK_REALTIME). */
int64_t hq_now_ms(void);
/* Monotonic microseconds: only differences mean anything. */
int64_t hq_mono_us(void);
/* Monotonic milliseconds. */
int64_t hq_mono_ms(void);

#define HQ_ISO_TIME_MAX 32 /* "2026-12-06T20:24:12.123Z" and its NUL, with room */

/* Formats unix ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC) into out (at least
 * HQ_ISO_TIME_MAX bytes); returns out. */
char *hq_iso_time(int64_t ms, char *out, size_t n);

#endif
