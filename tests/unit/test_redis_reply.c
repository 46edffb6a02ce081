/* Arena-built hiredis replies (common/redis_reply.c): every reply a reader
 * builds with them is the same tree hiredis's default functions build, whole
 * or fed in pieces, and broken or oversized input fails the reader without a
 * leak (the ASan build checks the frees). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "common/buf.h"
#include "common/redis_reply.h"

/* Same type, value, bytes and shape; strings NUL-terminated like hiredis's. */
static void assert_same(const redisReply *a, const redisReply *b)
{
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->type, b->type);
    switch (a->type) {
    case REDIS_REPLY_INTEGER: assert_true(a->integer == b->integer); break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        assert_int_equal(a->len, b->len);
        assert_memory_equal(a->str, b->str, a->len);
        assert_int_equal(b->str[b->len], '\0');
        break;
    case REDIS_REPLY_ARRAY:
        assert_int_equal(a->elements, b->elements);
        for (size_t i = 0; i < a->elements; i++)
            assert_same(a->element[i], b->element[i]);
        break;
    default: break;
    }
}

static redisReader *reader(int arena)
{
    redisReader *r = redisReaderCreate();
    assert_non_null(r);
    if (arena)
        hq_redis_reply_use_arena(r);
    return r;
}

/* Feeds in to both readers, step bytes at a time, and compares every reply. */
static int differ(const char *in, size_t n, size_t step)
{
    redisReader *d = reader(0), *a = reader(1);
    int replies = 0;
    for (size_t off = 0; off < n; off += step) {
        size_t k = n - off < step ? n - off : step;
        assert_int_equal(redisReaderFeed(d, in + off, k), REDIS_OK);
        assert_int_equal(redisReaderFeed(a, in + off, k), REDIS_OK);
        for (;;) {
            void *rd = NULL, *ra = NULL;
            assert_int_equal(redisReaderGetReply(d, &rd), REDIS_OK);
            assert_int_equal(redisReaderGetReply(a, &ra), REDIS_OK);
            assert_true((rd == NULL) == (ra == NULL));
            if (!rd)
                break;
            assert_same(rd, ra);
            freeReplyObject(rd);
            hq_redis_reply_arena_fns.freeObject(ra);
            replies++;
        }
    }
    redisReaderFree(d);
    redisReaderFree(a);
    return replies;
}

static void test_every_reply_type_matches_hiredis(void **state)
{
    (void)state;
    static const char in[] = "+OK\r\n-ERR wrong\r\n:-42\r\n$5\r\nhe\0lo\r\n$0\r\n\r\n$-1\r\n"
                             "*-1\r\n*0\r\n*3\r\n:1\r\n*2\r\n$1\r\na\r\n*0\r\n$-1\r\n";
    assert_int_equal(differ(in, sizeof(in) - 1, sizeof(in)), 9);
    /* The same bytes a byte at a time: replies cut anywhere are resumed. */
    assert_int_equal(differ(in, sizeof(in) - 1, 1), 9);
}

/* An XREADGROUP reply of 100 entries with four fields, 1 KiB payloads: the
 * shape the worker reads all day, past the first chunk's size. */
static void test_a_stream_read_reply_matches_hiredis(void **state)
{
    (void)state;
    struct hq_buf b;
    hq_buf_init(&b, 1 << 20);
    char payload[1024];
    memset(payload, 'x', sizeof(payload));
    assert_int_equal(hq_buf_printf(&b, "*1\r\n*2\r\n$12\r\nhookq:events\r\n*100\r\n"), 0);
    for (int i = 0; i < 100; i++) {
        char id[32];
        int il = snprintf(id, sizeof(id), "1795763484392-%d", i);
        assert_int_equal(
            hq_buf_printf(
                &b,
                "*2\r\n$%d\r\n%s\r\n*4\r\n$4\r\ntype\r\n$11\r\nbench.event\r\n$4\r\ndata\r\n$1024\r\n",
                il, id),
            0);
        assert_int_equal(hq_buf_append(&b, payload, sizeof(payload)), 0);
        assert_int_equal(hq_buf_append(&b, "\r\n", 2), 0);
    }
    assert_int_equal(differ(b.p, b.len, b.len), 1);
    assert_int_equal(differ(b.p, b.len, 977), 1);
    hq_buf_free(&b);
}

/* A 1 MiB bulk string (the largest payload) gets a chunk of its own, at the
 * top level and inside an array. */
static void test_a_large_string_matches_hiredis(void **state)
{
    (void)state;
    size_t big = 1024 * 1024;
    struct hq_buf b;
    hq_buf_init(&b, 4 << 20);
    char *chunk = malloc(big);
    assert_non_null(chunk);
    for (size_t i = 0; i < big; i++)
        chunk[i] = (char)(i * 31 + 7);
    assert_int_equal(hq_buf_printf(&b, "$%zu\r\n", big), 0);
    assert_int_equal(hq_buf_append(&b, chunk, big), 0);
    assert_int_equal(hq_buf_printf(&b, "\r\n*3\r\n:7\r\n$%zu\r\n", big), 0);
    assert_int_equal(hq_buf_append(&b, chunk, big), 0);
    assert_int_equal(hq_buf_printf(&b, "\r\n$2\r\nok\r\n"), 0);
    assert_int_equal(differ(b.p, b.len, b.len), 2);
    assert_int_equal(differ(b.p, b.len, 65536), 2);
    free(chunk);
    hq_buf_free(&b);
}

/* Random well-formed trees (seeded, so a failure repeats): arrays up to the
 * reader's nesting limit, every scalar type, strings of 0..5000 bytes. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

static void gen(struct hq_buf *b, int depth)
{
    uint32_t k = next_rand() % (depth < 6 ? 7 : 5);
    switch (k) {
    case 0:
        assert_int_equal(hq_buf_printf(b, ":%lld\r\n", (long long)(int32_t)next_rand()), 0);
        break;
    case 1: assert_int_equal(hq_buf_printf(b, "$-1\r\n"), 0); break;
    case 2: assert_int_equal(hq_buf_printf(b, "+status %u\r\n", next_rand()), 0); break;
    case 3: assert_int_equal(hq_buf_printf(b, "-ERR %u\r\n", next_rand()), 0); break;
    case 4: {
        size_t n = next_rand() % 5000;
        assert_int_equal(hq_buf_printf(b, "$%zu\r\n", n), 0);
        for (size_t i = 0; i < n; i++) {
            char c = (char)next_rand();
            assert_int_equal(hq_buf_append(b, &c, 1), 0);
        }
        assert_int_equal(hq_buf_append(b, "\r\n", 2), 0);
        break;
    }
    default: {
        uint32_t n = next_rand() % 12;
        assert_int_equal(hq_buf_printf(b, "*%u\r\n", n), 0);
        for (uint32_t i = 0; i < n; i++)
            gen(b, depth + 1);
    }
    }
}

static void test_random_trees_match_hiredis(void **state)
{
    (void)state;
    for (int round = 0; round < 300; round++) {
        struct hq_buf b;
        hq_buf_init(&b, 64 << 20);
        int n = 1 + (int)(next_rand() % 4);
        for (int i = 0; i < n; i++)
            gen(&b, 1);
        size_t step = 1 + next_rand() % 4096;
        assert_int_equal(differ(b.p, b.len, b.len), n);
        assert_int_equal(differ(b.p, b.len, step), n);
        hq_buf_free(&b);
    }
}

/* A protocol error in the middle of an array: the reader fails and the half
 * built reply is freed (ASan would report it otherwise). */
static void test_a_protocol_error_mid_reply_fails_without_a_leak(void **state)
{
    (void)state;
    static const char in[] = "*3\r\n*2\r\n$3\r\nabc\r\n:5\r\n!what\r\n";
    redisReader *r = reader(1);
    assert_int_equal(redisReaderFeed(r, in, sizeof(in) - 1), REDIS_OK);
    void *reply = NULL;
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_ERR);
    assert_null(reply);
    assert_string_equal(r->errstr, "Protocol error, got \"!\" as reply type byte");
    redisReaderFree(r);

    /* A reader freed while a reply is half read frees it too. */
    r = reader(1);
    static const char part[] = "*2\r\n$3\r\nabc\r\n*4\r\n:1\r\n";
    assert_int_equal(redisReaderFeed(r, part, sizeof(part) - 1), REDIS_OK);
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_OK);
    assert_null(reply);
    redisReaderFree(r);
}

/* A server that declares an absurd array size fails the reader instead of
 * making it allocate count pointers (hiredis 0.14 would calloc 16 GiB). */
static void test_an_oversized_array_count_fails_the_reader(void **state)
{
    (void)state;
    char in[64];
    int n = snprintf(in, sizeof(in), "*2\r\n:1\r\n*%d\r\n", HQ_REPLY_ELEMENTS_MAX + 1);
    redisReader *r = reader(1);
    assert_int_equal(redisReaderFeed(r, in, (size_t)n), REDIS_OK);
    void *reply = NULL;
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_ERR);
    assert_null(reply);
    redisReaderFree(r);
    /* The limit itself is accepted. */
    n = snprintf(in, sizeof(in), "*%d\r\n", HQ_REPLY_ELEMENTS_MAX);
    r = reader(1);
    assert_int_equal(redisReaderFeed(r, in, (size_t)n), REDIS_OK);
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_OK);
    assert_null(reply); /* waiting for the elements */
    redisReaderFree(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_reply_type_matches_hiredis),
        cmocka_unit_test(test_a_stream_read_reply_matches_hiredis),
        cmocka_unit_test(test_a_large_string_matches_hiredis),
        cmocka_unit_test(test_random_trees_match_hiredis),
        cmocka_unit_test(test_a_protocol_error_mid_reply_fails_without_a_leak),
        cmocka_unit_test(test_an_oversized_array_count_fails_the_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
