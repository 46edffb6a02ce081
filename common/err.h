/* Error codes and the error struct every fallible hookq function fills.
 *
 * Functions return 0 or a negative HQ_E* code and, when given one, fill a
 * caller-supplied struct hq_err with a one-line, lower-case message that names
 * the field and the bad value. */
#ifndef HQ_COMMON_ERR_H
#define HQ_COMMON_ERR_H

#include <stddef.h>

#define HQ_MUST_CHECK   __attribute__((warn_unused_result))
#define HQ_PRINTF(f, a) __attribute__((format(printf, f, a)))

enum {
    HQ_OK = 0,
    HQ_EINVAL = -1,    /* bad input: option, argument, event, URL */
    HQ_ENOMEM = -2,    /* allocation failed (library code only; daemons abort) */
    HQ_EREDIS = -3,    /* Redis unreachable, or an error reply */
    HQ_ENOTFOUND = -4, /* no such endpoint / entry / event */
    HQ_ETOOBIG = -5,   /* a bound was hit */
    HQ_EAGAIN = -6,    /* would block / try later: a result, not a failure */
    HQ_ETIMEDOUT = -7, /* a deadline passed */
    HQ_EIO = -8,       /* a system call failed */
    HQ_EBLOCKED = -9,  /* refused by the SSRF guard */
    HQ_EEXIST = -10,   /* already exists */
};

struct hq_err {
    int code;      /* HQ_E* or HQ_OK */
    char msg[256]; /* one line, no trailing newline */
};

/* Sets err (when non-NULL) and returns code, so callers can write
 * `return hq_err_set(err, HQ_EINVAL, "type: %zu chars, max %d", n, max);`. */
int hq_err_set(struct hq_err *err, int code, const char *fmt, ...) HQ_PRINTF(3, 4);

/* Prefixes err->msg with "<prefix>: " (for context added on the way up). */
void hq_err_prefix(struct hq_err *err, const char *prefix);

/* Static name of a code: "invalid argument", "redis error", ... */
const char *hq_strerror(int code);

#endif
