/* Key slots (common/slot.h). Written from the cluster specification: a key's
 * slot is CRC16(hash tag) mod 16384, where the CRC is the XMODEM variant.
 *
 * The CRC is computed bit by bit rather than from a 256-entry table: hookq
 * hashes a handful of short keys per command (a tag such as "p3.23" is a few
 * bytes), so the eight shifts per byte cost less than a table's cache misses
 * would save, and there is no table to get wrong. */
#include "common/slot.h"

#include <string.h>

#define CRC16_POLY 0x1021u /* x^16 + x^12 + x^5 + 1, the CCITT polynomial XMODEM uses */

uint16_t hq_slot_crc16(const void *p, size_t n)
{
    const unsigned char *b = p;
    unsigned crc = 0;
    for (size_t i = 0; i < n; i++) {
        /* Most significant bit first (no reflection): the byte enters at the top. */
        crc ^= (unsigned)b[i] << 8;
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 0x8000u) ? ((crc << 1) ^ CRC16_POLY) : (crc << 1);
        crc &= 0xFFFFu;
    }
    return (uint16_t)crc;
}

void hq_key_hash_tag(const char *key, size_t len, const char **tag, size_t *tag_len)
{
    *tag = key;
    *tag_len = len;
    if (len == 0)
        return;
    const char *open = memchr(key, '{', len);
    if (!open)
        return;
    size_t after = (size_t)(open - key) + 1;
    const char *close = memchr(open + 1, '}', len - after);
    /* "{}" hashes the whole key: an empty tag would put every such key in one slot. */
    if (!close || close == open + 1)
        return;
    *tag = open + 1;
    *tag_len = (size_t)(close - open - 1);
}

unsigned hq_key_slot(const char *key, size_t len)
{
    const char *tag;
    size_t n;
    hq_key_hash_tag(key, len, &tag, &n);
    /* 16384 is a power of two: the modulo keeps the low 14 bits. */
    return hq_slot_crc16(tag, n) & (HQ_SLOTS - 1);
}
