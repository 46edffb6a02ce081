/* Error struct helpers. See err.h. */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int hq_err_set(struct hq_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        /* Messages are one line: a stray newline from a peer must not split a log line. */
        for (char *p = err->msg; *p; p++) {
            if (*p == '\n' || *p == '\r')
                *p = ' ';
        }
    }
    return code;
}

void hq_err_prefix(struct hq_err *err, const char *prefix)
{
    if (!err)
        return;
    char tmp[sizeof(err->msg)];
    size_t p = strlen(prefix);
    if (p > sizeof(tmp) - 3)
        p = sizeof(tmp) - 3;
    memcpy(tmp, prefix, p);
    tmp[p] = ':';
    tmp[p + 1] = ' ';
    size_t room = sizeof(tmp) - p - 3;
    size_t m = strnlen(err->msg, room);
    memcpy(tmp + p + 2, err->msg, m);
    tmp[p + 2 + m] = '\0';
    memcpy(err->msg, tmp, sizeof(tmp));
}

const char *hq_strerror(int code)
{
    switch (code) {
    case HQ_OK: return "ok";
    case HQ_EINVAL: return "invalid argument";
    case HQ_ENOMEM: return "out of memory";
    case HQ_EREDIS: return "redis error";
    case HQ_ENOTFOUND: return "not found";
    case HQ_ETOOBIG: return "too big";
    case HQ_EAGAIN: return "try again";
    case HQ_ETIMEDOUT: return "timed out";
    case HQ_EIO: return "i/o error";
    case HQ_EBLOCKED: return "blocked";
    case HQ_EEXIST: return "already exists";
    default: return "unknown error";
    }
}
