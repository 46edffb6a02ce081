/* Our hiredis 0.14 <-> libuv adapter: one uv_poll_t per redisAsyncContext fd.
 *
 * It owns the poll handle and the tiny struct around it, and nothing else: no
 * timeouts, no reconnects, no business rules (those live in
 * common/redis_client.c). It exists because bookworm's
 * <hiredis/adapters/libuv.h> ignores poll errors, restarts the poll on every
 * read (two extra epoll_ctl calls per read on libuv 1.44) and leaks when
 * uv_poll_init fails (docs/internals/worker-loop.md).
 *
 * Rules kept here (docs/internals/worker-loop.md):
 *  - uv_poll_start only when the wanted event mask changes;
 *  - a poll error (status < 0) is delivered to hiredis as read + write, so
 *    hiredis reads the socket error and tears the context down;
 *  - after redisAsyncHandleRead the context may be gone: the cleanup hook
 *    clears the back-pointer and the write half is skipped (hiredis #468);
 *  - cleanup clears the back-pointer, uv_close()s the poll (which removes the
 *    fd from epoll before hiredis close()s it) and frees in the close callback.
 * Single-threaded: call only from the loop's thread. */
#ifndef HQ_COMMON_REDIS_UV_H
#define HQ_COMMON_REDIS_UV_H

#include <hiredis/async.h>
#include <uv.h>

#include "common/err.h"

/* Attaches ac to loop: installs the ev hooks and a uv_poll_t on ac->c.fd.
 * Call right after redisAsyncConnect*, before redisAsyncSetConnectCallback
 * (which asks for the first write event through these hooks).
 * Returns 0; HQ_EEXIST when ac already has an event library attached; HQ_EIO
 * when uv_poll_init fails (err names the libuv error; nothing was installed
 * and nothing leaks: the caller still owns ac and frees it with
 * redisAsyncFree). The adapter's memory is owned by ac from then on and is
 * released (in a uv close callback) when hiredis calls the cleanup hook. */
int hq_redis_uv_attach(uv_loop_t *loop, redisAsyncContext *ac, struct hq_err *err) HQ_MUST_CHECK;

#endif
