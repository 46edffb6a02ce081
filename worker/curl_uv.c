/* The libcurl <-> libuv binding: the contract in curl_uv.h.
 *
 * Owns the multi handles (its shards), their timers, one uv_poll_t per socket
 * curl asks us to watch, and the lists of easy handles in progress (curl 7.88
 * has no curl_multi_get_handles, and close must remove them before
 * curl_multi_cleanup).
 *
 * Why shards: libcurl 7.88 walks its whole connection cache on every
 * curl_multi_remove_handle after a keep-alive transfer (close_connect_only,
 * looking for the handle's last connection), and its whole DNS cache, one
 * entry per host:port, at the end of every transfer. With 10,000 endpoints
 * both walks are O(10,000) per delivery (bench/shapes.sh 10000x50: the worker
 * spent three quarters of its CPU there). Each shard is a multi handle with
 * its own caches; a transfer goes to the shard its key picks (the caller keys
 * by host:port, so one host's connections stay in one cache), and each walk
 * covers one shard's connections only. It does not own the easy handles and knows nothing of
 * deliveries: it reports each finished transfer through done.
 *
 * Each rule below is one curl's docs/examples/multi-uv.c gets wrong, and is
 * explained where it is applied; docs/internals/worker-loop.md collects them. */
#include "worker/curl_uv.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/log.h"

/* One watched socket. Lives from curl's first IN/OUT for the fd until the
 * poll's close callback (after REMOVE, our close-socket callback, or close). */
struct shard;

struct sock {
    uv_poll_t poll;        /* on fd; recovered with container_of */
    curl_socket_t fd;      /* the socket curl gave us */
    struct hq_curl_uv *cu; /* owner */
    struct shard *sh;      /* the multi whose transfer uses it now */
    int mask;              /* UV_READABLE | UV_WRITABLE the poll is started with */
    int parkable;          /* a TCP socket: curl closes those only through our
                            * close-socket callback (its resolver's socketpair it
                            * closes itself, so that one is never parked) */
    int parked;            /* curl REMOVEd it (idle keep-alive connection): we keep the
                            * poll so reuse costs no epoll_ctl, and stop it on the first
                            * event (the peer closed, or sent something unasked) */
};

/* One multi handle and what belongs to it alone. */
struct shard {
    struct hq_curl_uv *cu; /* owner */
    CURLM *multi;          /* owned; cleaned up in close */
    uv_timer_t timer;      /* this multi's single timeout */
    int run_now;           /* it asked for a 0 ms timeout outside an action */
    CURL **easies;         /* its transfers in progress (borrowed handles); owned array */
    int neasies, easies_cap;
};

struct hq_curl_uv {
    uv_loop_t *loop;      /* borrowed */
    struct shard *shards; /* owned array */
    int nshards;
    uv_check_t now_check; /* runs 0 ms timeouts in the loop turn that asked for them */
    uv_idle_t now_idle;   /* active while one is pending: the turn's poll does not block */
    int run_now;          /* shards with run_now set */
    hq_curl_done_cb done; /* called once per finished transfer */
    void *arg;            /* for done */
    struct sock **by_fd;  /* fd -> watched socket (NULL = none); owned array */
    size_t by_fd_cap;     /* entries in by_fd */
    int neasies;          /* transfers in progress, all shards */
    int open_handles;     /* timer + socket polls whose close callback has not run */
    int in_action;        /* > 0 while inside curl_multi_socket_action / the reap loop */
    int closing;          /* close was called: no new polls, no timer, no done */
    int close_pending;    /* close was called inside an action: finish after it */
    void (*on_closed)(void *arg);
    void *closed_arg;
};

static void finish_close(struct hq_curl_uv *cu);

/* ---- Bookkeeping ---------------------------------------------------------------- */

static struct sock *sock_lookup(struct hq_curl_uv *cu, curl_socket_t fd)
{
    if (fd < 0 || (size_t)fd >= cu->by_fd_cap)
        return NULL;
    return cu->by_fd[fd];
}

static void sock_store(struct hq_curl_uv *cu, curl_socket_t fd, struct sock *s)
{
    if ((size_t)fd >= cu->by_fd_cap) {
        size_t cap = cu->by_fd_cap ? cu->by_fd_cap : 64;
        while (cap <= (size_t)fd)
            cap *= 2;
        cu->by_fd = hq_realloc(cu->by_fd, cap * sizeof(*cu->by_fd));
        memset(cu->by_fd + cu->by_fd_cap, 0, (cap - cu->by_fd_cap) * sizeof(*cu->by_fd));
        cu->by_fd_cap = cap;
    }
    cu->by_fd[fd] = s;
}

static void maybe_closed(struct hq_curl_uv *cu)
{
    if (!cu->closing || cu->open_handles > 0 || cu->in_action)
        return;
    void (*cb)(void *) = cu->on_closed;
    void *arg = cu->closed_arg;
    free(cu->by_fd);
    for (int i = 0; i < cu->nshards; i++)
        free(cu->shards[i].easies);
    free(cu->shards);
    free(cu);
    if (cb)
        cb(arg);
}

static void on_sock_closed(uv_handle_t *h)
{
    struct sock *s = container_of((uv_poll_t *)h, struct sock, poll);
    struct hq_curl_uv *cu = s->cu;
    free(s); /* memory attached to a libuv handle is freed only in its close callback */
    cu->open_handles--;
    maybe_closed(cu);
}

/* Stops watching fd: uv_close stops the poll synchronously (the fd leaves
 * epoll now, so a close() right after is safe), frees in the callback. */
static void sock_forget(struct hq_curl_uv *cu, struct sock *s)
{
    cu->by_fd[s->fd] = NULL;
    uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static void track_easy(struct shard *sh, CURL *easy)
{
    if (sh->neasies == sh->easies_cap) {
        sh->easies_cap = sh->easies_cap ? sh->easies_cap * 2 : 64;
        sh->easies = hq_realloc(sh->easies, (size_t)sh->easies_cap * sizeof(*sh->easies));
    }
    sh->easies[sh->neasies++] = easy;
    sh->cu->neasies++;
}

/* Newest first: a transfer that just finished is often among the last added. */
static void untrack_easy(struct shard *sh, CURL *easy)
{
    for (int i = sh->neasies - 1; i >= 0; i--) {
        if (sh->easies[i] == easy) {
            sh->easies[i] = sh->easies[--sh->neasies];
            sh->cu->neasies--;
            return;
        }
    }
}

/* ---- Reaping ------------------------------------------------------------------------ */

/* Reads every finished transfer. Called after every curl_multi_socket_action,
 * with no "running > 0" guard: when the last transfer finishes (say, times
 * out) running is 0 and its DONE message would otherwise wait for some other
 * socket to fire, which on an idle worker is never (multi-uv before curl
 * c722346518, and still guarded at HEAD). */
static void reap(struct shard *sh)
{
    struct hq_curl_uv *cu = sh->cu;
    CURLMsg *msg;
    int left;
    while (!cu->closing && (msg = curl_multi_info_read(sh->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        /* Copy before removal: msg is invalid after curl_multi_remove_handle. */
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        CURLMcode mres = curl_multi_remove_handle(sh->multi, easy);
        if (mres != CURLM_OK)
            hq_log(HQ_LOG_ERROR, "curl", "curl_multi_remove_handle: %s", curl_multi_strerror(mres));
        untrack_easy(sh, easy);
        /* After removal: the callee owns easy again and may reset, re-add or
         * clean it up, or close us (then the loop stops at cu->closing). */
        cu->done(easy, result, cu->arg);
    }
}

/* One socket_action plus the reap, with close deferred until both are done. */
static void action(struct shard *sh, curl_socket_t fd, int flags)
{
    struct hq_curl_uv *cu = sh->cu;
    int running = 0;
    cu->in_action++;
    CURLMcode mres = curl_multi_socket_action(sh->multi, fd, flags, &running);
    if (mres != CURLM_OK)
        hq_log(HQ_LOG_ERROR, "curl", "curl_multi_socket_action fd %d: %s", (int)fd,
               curl_multi_strerror(mres));
    reap(sh);
    cu->in_action--;
    if (cu->close_pending && !cu->in_action) {
        cu->close_pending = 0;
        finish_close(cu);
    }
}

/* ---- libuv callbacks ---------------------------------------------------------------- */

static void on_uv_poll(uv_poll_t *poll, int status, int events)
{
    struct sock *s = container_of(poll, struct sock, poll);
    struct hq_curl_uv *cu = s->cu;
    if (s->parked) {
        /* No transfer owns this connection: curl will find it dead (or not) when
         * it next reuses it. Stop watching so a closed peer cannot spin the loop. */
        uv_poll_stop(&s->poll);
        s->mask = 0;
        return;
    }
    curl_socket_t fd = s->fd; /* s may be closed during the action: copy first */
    int flags = 0, stopped = 0;
    if (status < 0) {
        /* libuv reports POLLERR as a negative status, having stopped the poll.
         * Tell curl (CCF #7308: else the transfer waits for its timeout), and
         * add the direction it waits for: with the error bit alone, libcurl
         * fails with "select/poll returned error"; with it, libcurl makes that
         * read or write and reports the socket's own error ("Connection reset
         * by peer"), which is what an SRE reading the attempt needs. */
        flags = CURL_CSELECT_ERR;
        stopped = s->mask;
        if (s->mask & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (s->mask & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
        s->mask = 0;
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    action(s->sh, fd, flags);
    /* A safety net: libcurl 7.88 reads (or writes) until the error and fails
     * the transfer in this action (test_bad_endpoints, "reset_mid": data and
     * reset together). Should a transfer live on, curl keeps its interest and
     * would not ask again, so restart the poll libuv stopped rather than let
     * the transfer sit until its timeout. A socket closed during the action
     * has left the table (its struct is freed only in the close callback,
     * after this returns), and cu outlives the action. */
    if (stopped && !cu->closing && sock_lookup(cu, fd) == s && !s->parked && s->mask == 0 &&
        uv_poll_start(&s->poll, stopped, on_uv_poll) == 0)
        s->mask = stopped;
}

static void on_uv_timer(uv_timer_t *t)
{
    action(container_of(t, struct shard, timer), CURL_SOCKET_TIMEOUT, 0);
}

/* ---- curl callbacks ------------------------------------------------------------------- */

/* Tells curl that fd's watcher is s. On failure s is forgotten and -1 makes
 * curl fail the transfer. */
static int assign(struct hq_curl_uv *cu, struct shard *sh, curl_socket_t fd, struct sock *s)
{
    CURLMcode mres = curl_multi_assign(sh->multi, fd, s);
    if (mres == CURLM_OK)
        return 0;
    hq_log(HQ_LOG_ERROR, "curl", "curl_multi_assign fd %d: %s", (int)fd, curl_multi_strerror(mres));
    sock_forget(cu, s);
    return -1;
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct shard *sh = userp;
    struct hq_curl_uv *cu = sh->cu;
    struct sock *s = sock_lookup(cu, fd);
    if (what == CURL_POLL_REMOVE) {
        /* curl >= 8.13 may REMOVE a socket it never registered (curl #17949),
         * and a socket our close-socket callback already forgot is unknown
         * too: ignore both. socketp is compared, never dereferenced, because
         * it may name a struct already freed. */
        if (s && (!socketp || socketp == s)) {
            if (cu->closing || !s->parkable || (s->mask & UV_WRITABLE)) {
                sock_forget(cu, s);
            } else {
                /* Usually a keep-alive connection going idle: park it, poll and
                 * all, so the next transfer on it needs no epoll_ctl (each
                 * uv_poll_init costs an ADD + DEL check, each start an ADD). Our
                 * close-socket callback still forgets it before close(). */
                s->parked = 1;
            }
        }
        return 0;
    }
    /* During close curl may ask for IN just before REMOVE (CCF #7308): start
     * nothing then, since every handle is about to be closed. */
    if (cu->closing)
        return 0;
    if (s && s->parked) {
        s->parked = 0;
        s->sh = sh; /* a connection stays in its multi's cache; set anyway */

        /* curl forgot its association at REMOVE: give it back. */
        if (assign(cu, sh, fd, s) != 0)
            return -1;
    }
    if (!s) {
        s = hq_calloc(1, sizeof(*s));
        s->fd = fd;
        s->cu = cu;
        s->sh = sh;
        int domain = 0;
        socklen_t dlen = sizeof(domain);
        s->parkable = getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) == 0 &&
                      (domain == AF_INET || domain == AF_INET6);
        int uvrc = uv_poll_init_socket(cu->loop, &s->poll, fd);
        if (uvrc < 0) {
            /* UV_EEXIST: another poll still watches this fd. Returning -1
             * makes curl fail this transfer, which beats hanging. */
            hq_log(HQ_LOG_ERROR, "curl", "uv_poll_init_socket fd %d: %s", (int)fd,
                   uv_strerror(uvrc));
            free(s); /* init failed: the handle never joined the loop */
            return -1;
        }
        cu->open_handles++;
        sock_store(cu, fd, s);
        if (assign(cu, sh, fd, s) != 0)
            return -1;
    }
    int mask = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        mask |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        mask |= UV_WRITABLE;
    /* curl reports changes, but not only changes: re-arm only when the mask
     * differs (each uv_poll_start is an epoll_ctl DEL + ADD on libuv 1.44). */
    if (mask == s->mask)
        return 0;
    int uvrc = uv_poll_start(&s->poll, mask, on_uv_poll);
    if (uvrc < 0) {
        hq_log(HQ_LOG_ERROR, "curl", "uv_poll_start fd %d: %s", (int)fd, uv_strerror(uvrc));
        return -1;
    }
    s->mask = mask;
    return 0;
}

static void run_now_stop(struct hq_curl_uv *cu)
{
    for (int i = 0; i < cu->nshards; i++)
        cu->shards[i].run_now = 0;
    cu->run_now = 0;
    uv_check_stop(&cu->now_check);
    uv_idle_stop(&cu->now_idle);
}

/* The check phase of the turn in which curl asked for a 0 ms timeout (after
 * that turn's I/O callbacks): a transfer added while reading an entry starts
 * now, not a timer tick later. */
static void on_now_check(uv_check_t *c)
{
    struct hq_curl_uv *cu = container_of(c, struct hq_curl_uv, now_check);
    uv_check_stop(&cu->now_check);
    uv_idle_stop(&cu->now_idle);
    for (int i = 0; i < cu->nshards && cu->run_now > 0 && !cu->closing; i++) {
        struct shard *sh = &cu->shards[i];
        if (!sh->run_now)
            continue;
        sh->run_now = 0;
        cu->run_now--;
        action(sh, CURL_SOCKET_TIMEOUT, 0);
    }
}

static void on_now_idle(uv_idle_t *i)
{
    (void)i; /* only its being active matters: it makes the poll phase not block */
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct shard *sh = userp;
    struct hq_curl_uv *cu = sh->cu;
    if (timeout_ms < 0) {
        uv_timer_stop(&sh->timer);
        return 0;
    }
    if (cu->closing)
        return 0; /* the timer is closed or about to be: do not start it */
    /* A 0 ms timeout asked for from outside curl (curl_multi_add_handle, the
     * common case) runs in this loop turn's check phase: curl must not be
     * called from inside this callback, and a 0 ms uv timer is out (below).
     * Asked for from inside an action, it waits for the 1 ms timer instead, so
     * a curl that keeps asking for 0 cannot spin the loop. */
    if (timeout_ms == 0 && !cu->in_action) {
        if (!sh->run_now) {
            sh->run_now = 1;
            if (cu->run_now++ == 0) {
                uv_check_start(&cu->now_check, on_now_check);
                uv_idle_start(&cu->now_idle, on_now_idle);
            }
        }
        return 0;
    }
    /* 0 -> 1 ms: libuv < 1.48 busy-loops on a 0 ms timer re-armed from its
     * own callback (libuv #4245, fixed by 51a22f60d). */
    uint64_t delay = timeout_ms == 0 ? 1 : (uint64_t)timeout_ms;
    /* Never push an imminent expiry later: restarting an armed 1 ms timer on
     * every 0 ms request starves it while requests keep coming faster than
     * 1 ms apart (measured: the first transfer of a burst waited ~9 ms median
     * at 2,000 adds/s). */
    if (timeout_ms == 0 && uv_is_active((uv_handle_t *)&sh->timer) &&
        uv_timer_get_due_in(&sh->timer) <= 1)
        return 0;
    int uvrc = uv_timer_start(&sh->timer, on_uv_timer, delay, 0);
    if (uvrc < 0) {
        /* -1 aborts every transfer of this multi: loud beats hung. */
        hq_log(HQ_LOG_ERROR, "curl", "uv_timer_start: %s", uv_strerror(uvrc));
        return -1;
    }
    return 0;
}

/* Our close-socket callback: stop and close the fd's poll (if any) before
 * close(). libuv forbids closing an fd under an active poll and aborts in
 * epoll_ctl if it polls a closed fd (libuv #1495); curl is meant to REMOVE
 * first, but late or missing REMOVEs are reported (curl #14976, #16026). */
static int on_curl_closesocket(void *clientp, curl_socket_t fd)
{
    struct hq_curl_uv *cu = clientp;
    struct sock *s = sock_lookup(cu, fd);
    if (s)
        sock_forget(cu, s);
    return close(fd);
}

/* ---- Public API ------------------------------------------------------------------------- */

static int shard_init(struct hq_curl_uv *cu, struct shard *sh)
{
    sh->cu = cu;
    sh->multi = curl_multi_init();
    if (!sh->multi) {
        hq_log(HQ_LOG_ERROR, "curl", "curl_multi_init failed");
        return -1;
    }
    CURLMcode mres = curl_multi_setopt(sh->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    if (mres == CURLM_OK)
        mres = curl_multi_setopt(sh->multi, CURLMOPT_SOCKETDATA, sh);
    if (mres == CURLM_OK)
        mres = curl_multi_setopt(sh->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    if (mres == CURLM_OK)
        mres = curl_multi_setopt(sh->multi, CURLMOPT_TIMERDATA, sh);
    if (mres != CURLM_OK) {
        hq_log(HQ_LOG_ERROR, "curl", "curl_multi_setopt: %s", curl_multi_strerror(mres));
        curl_multi_cleanup(sh->multi);
        sh->multi = NULL;
        return -1;
    }
    return 0;
}

struct hq_curl_uv *hq_curl_uv_new(uv_loop_t *loop, int nshards, hq_curl_done_cb done, void *arg)
{
    hq_assert(nshards >= 1);
    struct hq_curl_uv *cu = hq_calloc(1, sizeof(*cu));
    cu->loop = loop;
    cu->done = done;
    cu->arg = arg;
    cu->shards = hq_calloc((size_t)nshards, sizeof(*cu->shards));
    cu->nshards = nshards;
    for (int i = 0; i < nshards; i++) {
        if (shard_init(cu, &cu->shards[i]) != 0) {
            while (i-- > 0)
                curl_multi_cleanup(cu->shards[i].multi);
            free(cu->shards);
            free(cu);
            return NULL;
        }
    }
    for (int i = 0; i < nshards; i++)
        uv_timer_init(loop, &cu->shards[i].timer); /* these cannot fail on unix */
    uv_check_init(loop, &cu->now_check);
    uv_idle_init(loop, &cu->now_idle);
    cu->open_handles = nshards + 2;
    return cu;
}

int hq_curl_uv_multi_setopt(struct hq_curl_uv *cu, CURLMoption opt, long value)
{
    for (int i = 0; i < cu->nshards; i++) {
        CURLMcode mres = curl_multi_setopt(cu->shards[i].multi, opt, value);
        if (mres != CURLM_OK) {
            hq_log(HQ_LOG_ERROR, "curl", "curl_multi_setopt %d: %s", (int)opt,
                   curl_multi_strerror(mres));
            return HQ_EIO;
        }
    }
    return 0;
}

int hq_curl_uv_shards(const struct hq_curl_uv *cu)
{
    return cu->nshards;
}

void hq_curl_uv_prepare_easy(struct hq_curl_uv *cu, CURL *easy)
{
    CURLcode cres = curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, on_curl_closesocket);
    if (cres == CURLE_OK)
        cres = curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, cu);
    if (cres != CURLE_OK)
        hq_log(HQ_LOG_ERROR, "curl", "CURLOPT_CLOSESOCKETFUNCTION: %s", curl_easy_strerror(cres));
}

int hq_curl_uv_add(struct hq_curl_uv *cu, CURL *easy, uint32_t key)
{
    if (cu->closing) {
        hq_log(HQ_LOG_ERROR, "curl", "transfer added while closing");
        return HQ_EIO;
    }
    /* Adding asks for a 0 ms timeout through on_curl_timer: the transfer
     * starts in this loop turn's check phase, not from here. */
    struct shard *sh = &cu->shards[key % (uint32_t)cu->nshards];
    CURLMcode mres = curl_multi_add_handle(sh->multi, easy);
    if (mres != CURLM_OK) {
        hq_log(HQ_LOG_ERROR, "curl", "curl_multi_add_handle: %s", curl_multi_strerror(mres));
        return HQ_EIO;
    }
    track_easy(sh, easy);
    return 0;
}

int hq_curl_uv_running(const struct hq_curl_uv *cu)
{
    return cu->neasies;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct hq_curl_uv *cu = h->data;
    cu->open_handles--;
    maybe_closed(cu);
}

/* The cleanup order (docs/internals/worker-loop.md, rule 8): remove what is in
 * progress, curl_multi_cleanup while this struct is alive (it calls our socket
 * and close-socket callbacks for cached connections), then close our handles
 * and free in the last close callback. */
static void finish_close(struct hq_curl_uv *cu)
{
    for (int i = 0; i < cu->nshards; i++) {
        struct shard *sh = &cu->shards[i];
        CURLMcode mres;
        while (sh->neasies > 0) {
            CURL *easy = sh->easies[--sh->neasies];
            mres = curl_multi_remove_handle(sh->multi, easy);
            if (mres != CURLM_OK)
                hq_log(HQ_LOG_ERROR, "curl", "curl_multi_remove_handle: %s",
                       curl_multi_strerror(mres));
        }
        mres = curl_multi_cleanup(sh->multi);
        if (mres != CURLM_OK)
            hq_log(HQ_LOG_ERROR, "curl", "curl_multi_cleanup: %s", curl_multi_strerror(mres));
        sh->multi = NULL;
    }
    cu->neasies = 0;
    /* Sockets curl never REMOVEd (it should have): close their polls too, so
     * uv_loop_close can succeed. */
    for (size_t fd = 0; fd < cu->by_fd_cap; fd++) {
        if (cu->by_fd[fd])
            sock_forget(cu, cu->by_fd[fd]);
    }
    for (int i = 0; i < cu->nshards; i++) {
        cu->shards[i].timer.data = cu;
        uv_close((uv_handle_t *)&cu->shards[i].timer, on_handle_closed);
    }
    cu->now_check.data = cu->now_idle.data = cu;
    uv_close((uv_handle_t *)&cu->now_check, on_handle_closed);
    uv_close((uv_handle_t *)&cu->now_idle, on_handle_closed);
}

void hq_curl_uv_close(struct hq_curl_uv *cu, void (*on_closed)(void *arg), void *arg)
{
    if (cu->closing)
        return;
    cu->closing = 1;
    cu->on_closed = on_closed;
    cu->closed_arg = arg;
    for (int i = 0; i < cu->nshards; i++)
        uv_timer_stop(&cu->shards[i].timer);
    run_now_stop(cu);
    if (cu->in_action) {
        /* Called from done (inside the reap loop): curl_multi_cleanup must wait
         * until curl_multi_socket_action and the reap have returned. */
        cu->close_pending = 1;
        return;
    }
    finish_close(cu);
}
