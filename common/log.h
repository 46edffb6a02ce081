/* Logging: one line per notable event on stderr, logfmt (default) or JSON.
 * The level is checked before anything is formatted. Never pass a secret.
 *
 *   hq_log(HQ_LOG_INFO, "worker", "started consumer=%s concurrency=%d", name, n);
 * logfmt: ts=2026-11-26T23:00:00.123Z level=info comp=worker msg="started consumer=... "
 * json:   {"ts":"...","level":"info","comp":"worker","msg":"started consumer=..."}
 * The only global state in common/: one process, one log configuration. */
#ifndef HQ_COMMON_LOG_H
#define HQ_COMMON_LOG_H

#include "common/err.h"

enum hq_log_level { HQ_LOG_DEBUG = 0, HQ_LOG_INFO, HQ_LOG_WARN, HQ_LOG_ERROR, HQ_LOG_OFF };
enum hq_log_format { HQ_LOG_LOGFMT = 0, HQ_LOG_JSON };

extern int hq_log_level_min; /* messages below this level are skipped; default info */

/* Parses "debug|info|warn|error|off" / "logfmt|json". 0 or HQ_EINVAL. */
int hq_log_parse_level(const char *s, enum hq_log_level *out);
int hq_log_parse_format(const char *s, enum hq_log_format *out);
void hq_log_setup(enum hq_log_level level, enum hq_log_format format);

#define hq_log(level, comp, ...)                                                                   \
    do {                                                                                           \
        if ((int)(level) >= hq_log_level_min)                                                      \
            hq__log((level), (comp), __VA_ARGS__);                                                 \
    } while (0)

void hq__log(enum hq_log_level level, const char *comp, const char *fmt, ...) HQ_PRINTF(3, 4);

#endif
