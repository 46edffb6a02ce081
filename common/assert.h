/* Invariants that stay checked in release builds (redis' serverAssert):
 * a broken one prints what broke, where, and aborts, so a core dump comes with
 * a one-line reason instead of a bare abort(). For bugs only, never for input:
 * bad input gets an error, not an assertion. Also the one container_of. */
#ifndef HQ_COMMON_ASSERT_H
#define HQ_COMMON_ASSERT_H

#include <stddef.h>

#include "common/err.h" /* HQ_PRINTF */

#define HQ_NORETURN    __attribute__((noreturn))
#define hq_unlikely(x) __builtin_expect(!!(x), 0)

/* Prints "hookq: <file>:<line>: <what>" to stderr and aborts. */
HQ_NORETURN void hq__assert_fail(const char *what, const char *file, int line);
/* Prints "hookq: <file>:<line>: <formatted reason>" to stderr and aborts. */
HQ_NORETURN HQ_PRINTF(3, 4) void hq__panic(const char *file, int line, const char *fmt, ...);

#define hq_assert(expr)                                                                            \
    (hq_unlikely(!(expr)) ? hq__assert_fail("assertion failed: " #expr, __FILE__, __LINE__)        \
                          : (void)0)
#define hq_panic(...) hq__panic(__FILE__, __LINE__, __VA_ARGS__)

/* The struct that embeds member, from a pointer to that member. */
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
