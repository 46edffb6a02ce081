/* Redis Cluster key slots: CRC16/XMODEM, the hash-tag rule, and the slot of a
 * key, computed exactly as a cluster node computes them (redis.io cluster spec,
 * "Keys distribution model"), so hookq can route a command to the node that
 * owns its key without asking (CLUSTER KEYSLOT would cost a round trip per key).
 *
 * Pure: no I/O, no allocation, no state; safe in libhookq and in any thread.
 * The slot map (which node owns a slot) is common/cluster_slots.h; the choice
 * of partition tags is common/partition.h. */
#ifndef HQ_COMMON_SLOT_H
#define HQ_COMMON_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define HQ_SLOTS 16384 /* slots of a Redis Cluster: fixed by the protocol */

/* CRC16/XMODEM (polynomial 0x1021, initial value 0, no reflection, no final
 * xor) of n bytes at p (p may be NULL when n is 0). "123456789" -> 0x31C3.
 * Python's binascii.crc_hqx(data, 0) computes the same value. */
uint16_t hq_slot_crc16(const void *p, size_t n);

/* The part of key (len bytes, binary-safe, need not be NUL-terminated) that a
 * cluster hashes: when key has a '{', and a '}' somewhere after the first '{',
 * and at least one byte between the two, the bytes between them; otherwise the
 * whole key. [out] *tag points into key (borrowed, same lifetime), *tag_len is
 * its length. Examples: "a{b}c{d}" -> "b", "{}x" -> "{}x", "{{a}}" -> "{a",
 * "}{a}" -> "a", "{" -> "{". */
void hq_key_hash_tag(const char *key, size_t len, const char **tag, size_t *tag_len);

/* The cluster slot of key (len bytes, binary-safe): CRC16 of its hash tag
 * modulo 16384. Always in [0, HQ_SLOTS). */
unsigned hq_key_slot(const char *key, size_t len);

#endif
