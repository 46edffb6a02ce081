/* Partition tags and the partition of an id (common/partition.h). The rules
 * are a protocol between hookq and producers in other languages: change them
 * only with a new layout version (docs/internals/partitions.md). */
#include "common/partition.h"

#include <stdio.h>

#include "common/slot.h"

unsigned hq_partition_range_first(unsigned i, unsigned P)
{
    /* 64-bit product: i * 16384 stays exact for any unsigned i. */
    return (unsigned)(((unsigned long long)i * HQ_SLOTS) / P);
}

int hq_partition_tags(unsigned P, char (*out)[HQ_PARTITION_TAG_MAX], struct hq_err *err)
{
    if (P < 1 || P > HQ_PARTITIONS_MAX)
        return hq_err_set(err, HQ_EINVAL, "partitions: %u is not within 1..%d", P,
                          HQ_PARTITIONS_MAX);
    for (unsigned i = 0; i < P; i++) {
        unsigned first = hq_partition_range_first(i, P), end = hq_partition_range_first(i + 1, P);
        unsigned margin = (end - first) / 4;
        unsigned lo = first + margin, hi = end - margin;
        int found = 0;
        for (unsigned n = 0; n < HQ_PARTITION_TRIES && !found; n++) {
            char tag[HQ_PARTITION_TAG_MAX];
            int w = n == 0 ? snprintf(tag, sizeof(tag), "p%u", i)
                           : snprintf(tag, sizeof(tag), "p%u.%u", i, n);
            unsigned slot = hq_slot_crc16(tag, (size_t)w) & (HQ_SLOTS - 1);
            if (slot >= lo && slot < hi) {
                snprintf(out[i], HQ_PARTITION_TAG_MAX, "%s", tag);
                found = 1;
            }
        }
        /* Not reached for P <= 1024: every such P finds all its tags within
         * 16,684 candidates (docs/internals/partitions.md; the unit tests
         * compute P = 1..256, 1000, 1021, 1023 and 1024). Kept so a changed bound fails loudly
         * instead of looping. */
        if (!found)
            return hq_err_set(err, HQ_EINVAL, "partitions: no tag for partition %u of %u", i, P);
    }
    return 0;
}

unsigned hq_partition_of_id(const char *id, size_t len, unsigned P)
{
    if (P == 0)
        P = 1;
    return hq_slot_crc16(id, len) % P;
}
