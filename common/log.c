/* Logger. See log.h. Writes each line with one write(2) so lines from several
 * processes sharing a terminal or journal do not interleave. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"

int hq_log_level_min = HQ_LOG_INFO;
static enum hq_log_format log_format = HQ_LOG_LOGFMT;

static const char *level_names[] = {"debug", "info", "warn", "error", "off"};

int hq_log_parse_level(const char *s, enum hq_log_level *out)
{
    for (int i = 0; i <= HQ_LOG_OFF; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum hq_log_level)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = HQ_LOG_WARN;
        return 0;
    }
    return HQ_EINVAL;
}

int hq_log_parse_format(const char *s, enum hq_log_format *out)
{
    if (strcmp(s, "logfmt") == 0)
        *out = HQ_LOG_LOGFMT;
    else if (strcmp(s, "json") == 0)
        *out = HQ_LOG_JSON;
    else
        return HQ_EINVAL;
    return 0;
}

void hq_log_setup(enum hq_log_level level, enum hq_log_format format)
{
    hq_log_level_min = (int)level;
    log_format = format;
}

void hq__log(enum hq_log_level level, const char *comp, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    char when[HQ_ISO_TIME_MAX];
    hq_iso_time(hq_now_ms(), when, sizeof(when));

    char line[1400];
    struct hq_buf b = {.p = line, .len = 0, .cap = sizeof(line), .max = sizeof(line) - 2};
    const char *lv = level_names[level < HQ_LOG_OFF ? level : HQ_LOG_ERROR];
    int rc;
    if (log_format == HQ_LOG_JSON) {
        rc = hq_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"comp\":", when, lv);
        if (rc == 0)
            rc = hq_buf_json_str(&b, comp, strlen(comp));
        if (rc == 0)
            rc = hq_buf_append(&b, ",\"msg\":", 7);
        if (rc == 0)
            rc = hq_buf_json_str(&b, msg, strlen(msg));
        if (rc == 0)
            rc = hq_buf_append(&b, "}", 1);
    } else {
        rc = hq_buf_printf(&b, "ts=%s level=%s comp=%s msg=", when, lv, comp);
        if (rc == 0)
            rc = hq_buf_json_str(&b, msg, strlen(msg));
    }
    (void)rc; /* a line cut at the buffer's end is still worth writing */
    b.p[b.len++] = '\n';
    ssize_t n = write(STDERR_FILENO, b.p, b.len);
    (void)n;
}
