/* The Redis settings that put events at risk, and the one warning said about
 * each, by the worker (async client) and the scheduler (blocking client)
 * alike. Pure: callers run CONFIG GET their own way and log what this says. */
#ifndef HQ_COMMON_DURABILITY_H
#define HQ_COMMON_DURABILITY_H

#include <stddef.h>

#define HQ_DURABILITY_SETTINGS 2
/* "maxmemory-policy", "appendonly": the names to CONFIG GET. */
extern const char *const hq_durability_settings[HQ_DURABILITY_SETTINGS];

/* 1 with a one-line warning in msg when Redis' setting=value may lose events
 * (an evicting policy; no append-only file), else 0. Unknown names: 0. */
int hq_durability_risk(const char *setting, const char *value, char *msg, size_t n);

#endif
