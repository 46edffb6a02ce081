/* Partitions of a deployment: the hash tag of each of P partitions and the
 * partition of an event id. Every key of partition i carries tag T_i
 * ("<prefix>:{T_i}:events"), so a partition's keys share one cluster slot and
 * its scripts stay single-slot; the tags are chosen so that partitions spread
 * evenly over the nodes of a cluster whose primaries own equal slot ranges.
 *
 * Producers in other languages must compute the same tags and the same
 * partition of an id, so both rules are fixed here and in
 * docs/internals/partitions.md (with tables to check an implementation against).
 *
 * Pure: no I/O, no allocation; safe in libhookq. */
#ifndef HQ_COMMON_PARTITION_H
#define HQ_COMMON_PARTITION_H

#include <stddef.h>

#include "common/err.h"

#define HQ_PARTITIONS_MAX    1024    /* P ceiling: each partition still gets a range of 16 slots */
#define HQ_PARTITION_TAG_MAX 16      /* "p1023." + a suffix of at most 7 digits + NUL */
#define HQ_PARTITION_TRIES   1000000 /* candidates per tag: every P <= 1024 needs at most 16,684 */

/* Partition i's slot range: [first, end) = [floor(i*16384/P), floor((i+1)*16384/P)). */
unsigned hq_partition_range_first(unsigned i, unsigned P);

/* The tags of P partitions (1 <= P <= HQ_PARTITIONS_MAX) into out[0..P).
 * Rule: with w = end - first of partition i's range, the target is the
 * middle of that range, [first + w/4, end - w/4) (integer division); T_i is
 * the first of "p<i>", "p<i>.1", "p<i>.2", ... (decimal, no leading zeros)
 * whose CRC16/XMODEM modulo 16384 falls in the target. The middle rather than
 * the whole range: a tool that splits slots among primaries may round a
 * boundary a slot either way (redis-cli gives the second of three primaries
 * 5461-10922, while 2*16384/3 = 10922.67), and a tag at a range's edge would
 * then land on the neighbour's node. Deterministic; returns 0, or HQ_EINVAL
 * for P out of range (err names it). */
int hq_partition_tags(unsigned P, char (*out)[HQ_PARTITION_TAG_MAX],
                      struct hq_err *err) HQ_MUST_CHECK;

/* The partition of an event id (len bytes, binary-safe): CRC16/XMODEM of
 * the whole id, modulo P (P >= 1; P == 0 is treated as 1). The id's bytes
 * are hashed as they are: no hash-tag rule applies here. */
unsigned hq_partition_of_id(const char *id, size_t len, unsigned P);

#endif
