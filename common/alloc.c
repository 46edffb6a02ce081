/* Abort-on-OOM allocation for daemons and the CLI. See alloc.h. */
#include "common/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    fprintf(stderr, "hookq: out of memory allocating %zu bytes\n", n);
    abort();
}

void *hq_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *hq_calloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p)
        oom(count * n);
    return p;
}

void *hq_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *hq_strdup(const char *s)
{
    return hq_strndup(s, strlen(s));
}

char *hq_strndup(const char *s, size_t n)
{
    char *p = hq_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}
