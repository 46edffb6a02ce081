/* See durability.h. */
#include "common/durability.h"

#include <stdio.h>
#include <string.h>

const char *const hq_durability_settings[HQ_DURABILITY_SETTINGS] = {"maxmemory-policy",
                                                                    "appendonly"};

int hq_durability_risk(const char *setting, const char *value, char *msg, size_t n)
{
    /* An evicting Redis may drop retry data or whole streams under memory
     * pressure: deliveries would vanish without a dead letter. */
    if (strcmp(setting, "maxmemory-policy") == 0 && strcmp(value, "noeviction") != 0) {
        snprintf(msg, n, "redis maxmemory-policy=%s may evict events and retries; use noeviction",
                 value);
        return 1;
    }
    /* Without AOF a restart loses what was acknowledged since the last save. */
    if (strcmp(setting, "appendonly") == 0 && strcmp(value, "yes") != 0) {
        snprintf(
            msg, n,
            "redis appendonly=%s: a redis restart may lose recent events, retries and outcomes",
            value);
        return 1;
    }
    return 0;
}
