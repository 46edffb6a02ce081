/* libFuzzer target for the arena-built hiredis replies (common/redis_reply.c).
 * The first input byte picks how the rest is cut into feeds (1..64 bytes at a
 * time); the rest is fed to two hiredis readers, one with hiredis's own
 * object functions and one with the arena's. Beyond "no crash, no sanitizer
 * report" it checks that both readers agree at every step: the same replies
 * (type, value, bytes, shape, NUL-terminated strings) and an error at the same
 * point. hiredis's functions get the arena's array bound too (they would
 * calloc whatever count the input declares).
 * tests/fuzz/fuzz_replay.c runs the corpus through this entry in every build. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "common/redis_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_redis_reply: broken promise: %s\n", what);
        abort();
    }
}

static redisReplyObjectFunctions *hiredis_fns; /* hiredis's defaults, taken from a reader */

static void *bounded_array(const redisReadTask *task, int elements)
{
    return elements > HQ_REPLY_ELEMENTS_MAX ? NULL : hiredis_fns->createArray(task, elements);
}

static redisReplyObjectFunctions bounded;

static void same(const redisReply *a, const redisReply *b)
{
    require(a && b, "both readers build every element");
    require(a->type == b->type, "same type");
    switch (a->type) {
    case REDIS_REPLY_INTEGER: require(a->integer == b->integer, "same integer"); break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        require(a->len == b->len && memcmp(a->str, b->str, a->len) == 0, "same bytes");
        require(b->str[b->len] == '\0', "strings are NUL-terminated");
        break;
    case REDIS_REPLY_ARRAY:
        require(a->elements == b->elements, "same element count");
        for (size_t i = 0; i < a->elements; i++)
            same(a->element[i], b->element[i]);
        break;
    default: break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = 1 + data[0] % 64;
    data++;
    size--;
    redisReader *d = redisReaderCreate(), *a = redisReaderCreate();
    require(d && a, "redisReaderCreate");
    if (!hiredis_fns) {
        hiredis_fns = d->fn;
        bounded = *hiredis_fns;
        bounded.createArray = bounded_array;
    }
    d->fn = &bounded;
    hq_redis_reply_use_arena(a);
    int failed = 0;
    for (size_t off = 0; off < size && !failed; off += step) {
        size_t k = size - off < step ? size - off : step;
        require(redisReaderFeed(d, (const char *)data + off, k) == REDIS_OK &&
                    redisReaderFeed(a, (const char *)data + off, k) == REDIS_OK,
                "feeding a reader that has not failed");
        for (;;) {
            void *rd = NULL, *ra = NULL;
            int cd = redisReaderGetReply(d, &rd), ca = redisReaderGetReply(a, &ra);
            require(cd == ca, "both readers fail at the same point");
            if (cd != REDIS_OK) {
                require(!rd && !ra, "no reply from a failed reader");
                require(strcmp(d->errstr, a->errstr) == 0, "the same error");
                failed = 1;
                break;
            }
            require((rd == NULL) == (ra == NULL), "a reply is complete for both at once");
            if (!rd)
                break;
            same(rd, ra);
            bounded.freeObject(rd);
            hq_redis_reply_arena_fns.freeObject(ra);
        }
    }
    redisReaderFree(d);
    redisReaderFree(a);
    return 0;
}
