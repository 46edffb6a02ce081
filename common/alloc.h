/* Daemon allocation policy: print and abort on out-of-memory, so call sites
 * carry no NULL checks (redis zmalloc). Code linked into libhookq must not
 * use these; it returns HQ_ENOMEM instead (producer/producer.c). */
#ifndef HQ_COMMON_ALLOC_H
#define HQ_COMMON_ALLOC_H

#include <stddef.h>

void *hq_malloc(size_t n);
void *hq_calloc(size_t count, size_t n);
void *hq_realloc(void *p, size_t n);
char *hq_strdup(const char *s);
char *hq_strndup(const char *s, size_t n);

#endif
