/* hq_assert / hq_panic: see assert.h. */
#include "common/assert.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void hq__assert_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "hookq: %s:%d: %s\n", file, line, what);
    fflush(stderr);
    abort();
}

void hq__panic(const char *file, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    hq__assert_fail(msg, file, line);
}
