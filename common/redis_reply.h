/* Reply objects for hiredis readers: each top-level reply and everything in it
 * (nested arrays, their element vectors, every string) lives in one arena, so
 * a reply costs a few allocations instead of two per element, and freeing it
 * is freeing its chunks. A stream read of 100 entries with four fields each
 * was ~2,200 malloc/free pairs through hiredis's default functions.
 *
 * The objects are plain redisReply structs with the layout and invariants of
 * hiredis's own (strings NUL-terminated, error/status/string in str/len,
 * integers in integer, arrays in element/elements), so callers cannot tell
 * the difference, and the reader frees them through freeObject as before.
 * Pure: no I/O; tests feed a reader bytes (tests/unit/test_redis_reply.c). */
#ifndef HQ_COMMON_REDIS_REPLY_H
#define HQ_COMMON_REDIS_REPLY_H

#include <hiredis/read.h>

/* Largest array a reply may declare: a larger count is a protocol error, not
 * an allocation of count pointers (hiredis 0.14 callocs whatever the server
 * declares, and has no limit of its own). Our largest legitimate array is a
 * set of subscribed endpoints, far below this. */
#define HQ_REPLY_ELEMENTS_MAX (1024 * 1024)

/* Makes reader r build its replies with the arena functions. Call before the
 * first reply is read (right after the context is created). */
void hq_redis_reply_use_arena(redisReader *r);

/* The functions themselves, for a reader created by hand (tests). */
extern redisReplyObjectFunctions hq_redis_reply_arena_fns;

#endif
