/* hiredis 0.14 <-> libuv adapter. See redis_uv.h for what it owns and why it
 * replaces bookworm's adapters/libuv.h. Knows hiredis and libuv only. */
#include "common/redis_uv.h"

#include <stdlib.h>

#include "common/alloc.h"

/* One per attached context; lives from attach until the poll's close callback. */
struct redis_uv {
    uv_poll_t poll;        /* on ac->c.fd; poll.data points back to this struct */
    redisAsyncContext *ac; /* back-pointer; NULL once hiredis called cleanup */
    int wanted;            /* UV_READABLE | UV_WRITABLE hiredis asked for */
    int started;           /* mask the poll is started with (0 = stopped) */
};

static void on_uv_poll(uv_poll_t *poll, int status, int events)
{
    struct redis_uv *a = poll->data;
    /* libuv reports POLLERR/POLLHUP as a negative status and no events. Pass
     * it on as read + write: hiredis then reads the socket error (or checks
     * SO_ERROR while connecting) and tears down, instead of waiting forever. */
    int ev = status < 0 ? (UV_READABLE | UV_WRITABLE) : events;
    if (a->ac && (ev & UV_READABLE))
        redisAsyncHandleRead(a->ac);
    /* The read may have freed the context (error, or a callback that called
     * redisAsyncFree): cleanup cleared a->ac, so the write half is skipped
     * (hiredis #468: read-then-write on a freed context). */
    if (a->ac && (ev & UV_WRITABLE))
        redisAsyncHandleWrite(a->ac);
}

static void update(struct redis_uv *a)
{
    if (a->wanted == a->started)
        return; /* unchanged: on libuv 1.44 every start costs an epoll_ctl DEL + ADD */
    if (a->wanted == 0) {
        uv_poll_stop(&a->poll);
        a->started = 0;
        return;
    }
    /* A failed start (only on a bad fd) leaves the poll stopped; the owner's
     * connect and command deadlines (redis_client.c) then tear the context
     * down, so nothing waits forever. */
    if (uv_poll_start(&a->poll, a->wanted, on_uv_poll) == 0)
        a->started = a->wanted;
    else
        a->started = 0;
}

static void on_add_read(void *privdata)
{
    struct redis_uv *a = privdata;
    a->wanted |= UV_READABLE;
    update(a);
}

static void on_del_read(void *privdata)
{
    struct redis_uv *a = privdata;
    a->wanted &= ~UV_READABLE;
    update(a);
}

static void on_add_write(void *privdata)
{
    struct redis_uv *a = privdata;
    a->wanted |= UV_WRITABLE;
    update(a);
}

static void on_del_write(void *privdata)
{
    struct redis_uv *a = privdata;
    a->wanted &= ~UV_WRITABLE;
    update(a);
}

static void on_poll_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_cleanup(void *privdata)
{
    struct redis_uv *a = privdata;
    /* hiredis is freeing the context and will close() the fd right after this
     * hook returns. uv_close stops the poll synchronously (the fd leaves epoll
     * now, before the close), and the struct is freed in the close callback,
     * because libuv still references the handle until then. */
    if (a->ac) {
        a->ac->ev.data = NULL;
        a->ac = NULL;
    }
    uv_close((uv_handle_t *)&a->poll, on_poll_closed);
}

int hq_redis_uv_attach(uv_loop_t *loop, redisAsyncContext *ac, struct hq_err *err)
{
    if (ac->ev.data)
        return hq_err_set(err, HQ_EEXIST, "redis adapter: context already attached");
    struct redis_uv *a = hq_calloc(1, sizeof(*a));
    int uvrc = uv_poll_init(loop, &a->poll, ac->c.fd);
    if (uvrc < 0) {
        /* Init failed before the handle joined the loop: plain free, no close. */
        free(a);
        return hq_err_set(err, HQ_EIO, "redis adapter: uv_poll_init fd %d: %s", ac->c.fd,
                          uv_strerror(uvrc));
    }
    a->poll.data = a;
    a->ac = ac;
    ac->ev.data = a;
    ac->ev.addRead = on_add_read;
    ac->ev.delRead = on_del_read;
    ac->ev.addWrite = on_add_write;
    ac->ev.delWrite = on_del_write;
    ac->ev.cleanup = on_cleanup;
    return 0;
}
