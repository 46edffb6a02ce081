/* The libcurl <-> libuv binding, and nothing else: curl's multi-socket API
 * (CURLMOPT_SOCKETFUNCTION / TIMERFUNCTION) on uv_poll_t / uv_timer_t, with
 * the rules docs/internals/worker-loop.md collects: reap after every
 * socket_action, poll errors passed as CURL_CSELECT_ERR (with the polled
 * direction, so curl reports the socket's own error), a 0 ms timeout run in
 * the same loop turn's check phase (never a 0 ms uv timer: libuv < 1.48
 * busy-loops on one), unknown socket on REMOVE ignored, re-arm only on mask change, our
 * close-socket callback stops the poll before close(), container_of, checked
 * returns. It knows nothing of deliveries. */
#ifndef HQ_WORKER_CURL_UV_H
#define HQ_WORKER_CURL_UV_H

#include <curl/curl.h>
#include <stdint.h>
#include <uv.h>

#include "common/err.h"

struct hq_curl_uv;

/* Called once per finished transfer, after the easy handle was removed from
 * the multi (curl_easy_getinfo still works on it). The callee owns easy again
 * and may re-add or reset it from inside the callback. */
typedef void (*hq_curl_done_cb)(CURL *easy, CURLcode result, void *arg);

/* Creates nshards (>= 1) multi handles and their timers on loop. Each multi
 * has its own connection and DNS caches, which libcurl 7.88 walks whole on
 * every finished transfer: shards keep those walks short when connections
 * number in the thousands (curl_uv.c). Returns NULL on failure (logged). The
 * worker command calls curl_global_init once before this. */
struct hq_curl_uv *hq_curl_uv_new(uv_loop_t *loop, int nshards, hq_curl_done_cb done, void *arg);

/* Sets a long option (CURLMOPT_MAXCONNECTS: per shard) on every multi. 0 or HQ_EIO (logged). */
int hq_curl_uv_multi_setopt(struct hq_curl_uv *cu, CURLMoption opt, long value);

/* How many multi handles there are. */
int hq_curl_uv_shards(const struct hq_curl_uv *cu);

/* Sets the options this binding needs on an easy handle (close-socket callback);
 * call after every curl_easy_reset and before hq_curl_uv_add. */
void hq_curl_uv_prepare_easy(struct hq_curl_uv *cu, CURL *easy);

/* Starts a transfer on the shard key picks (key % shards): give the same key
 * to transfers that may share connections (one host:port). Returns 0, or
 * HQ_EIO (logged; done is not called). */
int hq_curl_uv_add(struct hq_curl_uv *cu, CURL *easy, uint32_t key) HQ_MUST_CHECK;

/* Transfers in progress. */
int hq_curl_uv_running(const struct hq_curl_uv *cu);

/* Aborts what is in progress (without calling done), cleans up the multi,
 * closes every handle; on_closed(arg) runs after the last close callback
 * and cu is freed. May be called from inside done (finished after the current
 * curl_multi_socket_action returns), not from inside other curl callbacks. */
void hq_curl_uv_close(struct hq_curl_uv *cu, void (*on_closed)(void *arg), void *arg);

#endif
