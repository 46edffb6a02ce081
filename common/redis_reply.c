/* Arena-built hiredis replies (common/redis_reply.h).
 *
 * A reply's first chunk starts with a struct root (the arena's bookkeeping and
 * the top-level redisReply); every nested object is bump-allocated from that
 * reply's chunks. hiredis creates a reply's objects depth first, root first,
 * and each child's task chain leads to the root task, whose obj is the root
 * reply; so a child finds its arena by walking task->parent, and the reader
 * needs no state of ours. freeObject is only ever called by hiredis on
 * top-level replies (after the callback, when a reader is freed with a reply
 * half-built, on a protocol error); it frees the reply's chunks. */
#include "common/redis_reply.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#define CHUNK_FIRST 4096         /* a typical reply (an EVALSHA array, a small read) fits */
#define CHUNK_MAX   (256 * 1024) /* growth stops doubling here */
#define ALIGN       (alignof(max_align_t))

struct chunk {
    struct chunk *next; /* the reply's other chunks (kept on the first) */
    size_t used, cap;   /* bytes of mem */
    alignas(max_align_t) char mem[];
};

struct root {
    struct chunk *first, *cur; /* cur: where the next object goes */
    redisReply reply;          /* the top-level object */
};

static size_t round_up(size_t n)
{
    return (n + ALIGN - 1) & ~(ALIGN - 1);
}

static struct chunk *chunk_new(size_t cap)
{
    struct chunk *c = malloc(sizeof(*c) + cap);
    if (c) {
        c->next = NULL;
        c->used = 0;
        c->cap = cap;
    }
    return c;
}

/* n bytes from rt's arena, or NULL when out of memory (the reader then fails
 * with an out-of-memory error and frees the root). */
static void *arena_alloc(struct root *rt, size_t n)
{
    n = round_up(n);
    struct chunk *c = rt->cur;
    if (c->cap - c->used < n) {
        size_t cap = c->cap * 2 > CHUNK_MAX ? CHUNK_MAX : c->cap * 2;
        if (cap < n)
            cap = n; /* a large string gets a chunk of its own size */
        struct chunk *nc = chunk_new(cap);
        if (!nc)
            return NULL;
        nc->next = rt->first->next;
        rt->first->next = nc;
        /* Keep bumping in whichever chunk has more room left. */
        if (nc->cap - n >= c->cap - c->used)
            rt->cur = nc;
        c = nc;
    }
    void *p = c->mem + c->used;
    c->used += n;
    return p;
}

static struct root *root_of(const redisReadTask *t)
{
    while (t->parent)
        t = t->parent;
    return (struct root *)((char *)t->obj - offsetof(struct root, reply));
}

/* A new object for task; a top-level one gets a first chunk with room for
 * extra more bytes (a top-level string's). */
static redisReply *object_new(const redisReadTask *task, int type, size_t extra)
{
    redisReply *r;
    if (!task->parent) {
        size_t need = round_up(sizeof(struct root)) + round_up(extra);
        struct chunk *c = chunk_new(need > CHUNK_FIRST ? need : CHUNK_FIRST);
        if (!c)
            return NULL;
        struct root *rt = (struct root *)c->mem;
        c->used = round_up(sizeof(struct root));
        rt->first = rt->cur = c;
        r = &rt->reply;
    } else {
        struct root *rt = root_of(task);
        r = arena_alloc(rt, sizeof(*r));
        if (!r)
            return NULL;
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = r;
    }
    memset(r, 0, sizeof(*r));
    r->type = type;
    return r;
}

/* The arena of object r, just made for task. */
static struct root *root_for(const redisReadTask *task, redisReply *r)
{
    return task->parent ? root_of(task) : (struct root *)((char *)r - offsetof(struct root, reply));
}

static void free_object(void *obj);

/* Out of memory half way through making r: returns NULL for the reader. A
 * nested r lives in its root's arena, which the reader frees with the root;
 * a top-level r was never handed to the reader, so its chunk is freed here. */
static void *orphan(const redisReadTask *task, redisReply *r)
{
    if (!task->parent)
        free_object(r);
    return NULL;
}

static void *create_string(const redisReadTask *task, char *str, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    /* A top-level string's first chunk is sized for its bytes too. */
    redisReply *r = object_new(task, task->type, len + 1);
    if (!r)
        return NULL;
    char *s = arena_alloc(root_for(task, r), len + 1);
    if (!s)
        return orphan(task, r);
    memcpy(s, str, len);
    s[len] = '\0';
    r->str = s;
    r->len = len;
    return r;
}

static void *create_array(const redisReadTask *task, int elements)
{
    if (elements < 0 || elements > HQ_REPLY_ELEMENTS_MAX)
        return NULL;
    redisReply *r = object_new(task, REDIS_REPLY_ARRAY, 0);
    if (!r)
        return NULL;
    if (elements > 0) {
        r->element = arena_alloc(root_for(task, r), (size_t)elements * sizeof(redisReply *));
        if (!r->element)
            return orphan(task, r);
        memset(r->element, 0, (size_t)elements * sizeof(redisReply *));
    }
    r->elements = (size_t)elements;
    return r;
}

static void *create_integer(const redisReadTask *task, long long value)
{
    redisReply *r = object_new(task, REDIS_REPLY_INTEGER, 0);
    if (r)
        r->integer = value;
    return r;
}

static void *create_nil(const redisReadTask *task)
{
    return object_new(task, REDIS_REPLY_NIL, 0);
}

static void free_object(void *obj)
{
    if (!obj)
        return;
    struct root *rt = (struct root *)((char *)obj - offsetof(struct root, reply));
    struct chunk *first = rt->first, *c = first->next;
    while (c) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
    free(first);
}

redisReplyObjectFunctions hq_redis_reply_arena_fns = {
    .createString = create_string,
    .createArray = create_array,
    .createInteger = create_integer,
    .createNil = create_nil,
    .freeObject = free_object,
};

void hq_redis_reply_use_arena(redisReader *r)
{
    r->fn = &hq_redis_reply_arena_fns;
}
