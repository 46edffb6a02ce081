/* FNV-1a, 32 bits: the hash of the worker's caches and of the CLI's tables.
 * Not for anything an attacker could aim at a table's worst case beyond a
 * slower lookup; every table using it is bounded. */
#ifndef HQ_COMMON_HASH_H
#define HQ_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t hq_fnv1a(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

#endif
