/* The libcurl <-> libuv binding: the contract in curl_uv.h.
 *
 * Owns the multi handle, its timer, one uv_poll_t per socket curl asks us to
 * watch, and the list of easy handles in progress (curl 7.88 has no
 * curl_multi_get_handles, and close must remove them before
 * curl_multi_cleanup). It does not own the easy handles and knows nothing of
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
struct sock {
    uv_poll_t poll;        /* on fd; recovered with container_of */
    curl_socket_t fd;      /* the socket curl gave us */
    struct hq_curl_uv *cu; /* owner */
    int mask;              /* UV_READABLE | UV_WRITABLE the poll is started with */
    int parkable;          /* a TCP socket: curl closes those only through our
                            * close-socket callback (its resolver's socketpair it
                            * closes itself, so that one is never parked) */
    int parked;            /* curl REMOVEd it (idle keep-alive connection): we keep the
                            * poll so reuse costs no epoll_ctl, and stop it on the first
                            * event (the peer closed, or sent something unasked) */
};

struct hq_curl_uv {
    uv_loop_t *loop;      /* borrowed */
    CURLM *multi;         /* owned; cleaned up in close */
    uv_timer_t timer;     /* curl's single timeout */
    uv_check_t now_check; /* runs a 0 ms timeout in the loop turn that asked for it */
    uv_idle_t now_idle;   /* active while one is pending: the turn's poll does not block */
    int run_now;          /* curl asked for a 0 ms timeout outside an action */
    hq_curl_done_cb done; /* called once per finished transfer */
    void *arg;            /* for done */
    struct sock **by_fd;  /* fd -> watched socket (NULL = none); owned array */
    size_t by_fd_cap;     /* entries in by_fd */
    CURL **easies;        /* transfers in progress (borrowed handles); owned array */
    int neasies, easies_cap;
    int open_handles;  /* timer + socket polls whose close callback has not run */
    int in_action;     /* > 0 while inside curl_multi_socket_action / the reap loop */
    int closing;       /* close was called: no new polls, no timer, no done */
    int close_pending; /* close was called inside an action: finish after it */
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
    free(cu->easies);
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

static void track_easy(struct hq_curl_uv *cu, CURL *easy)
{
    if (cu->neasies == cu->easies_cap) {
        cu->easies_cap = cu->easies_cap ? cu->easies_cap * 2 : 64;
        cu->easies = hq_realloc(cu->easies, (size_t)cu->easies_cap * sizeof(*cu->easies));
    }
    cu->easies[cu->neasies++] = easy;
}

static void untrack_easy(struct hq_curl_uv *cu, CURL *easy)
{
    for (int i = 0; i < cu->neasies; i++) {
        if (cu->easies[i] == easy) {
            cu->easies[i] = cu->easies[--cu->neasies];
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
static void reap(struct hq_curl_uv *cu)
{
    CURLMsg *msg;
    int left;
    while (!cu->closing && (msg = curl_multi_info_read(cu->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        /* Copy before removal: msg is invalid after curl_multi_remove_handle. */
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        CURLMcode mres = curl_multi_remove_handle(cu->multi, easy);
        if (mres != CURLM_OK)
            hq_log(HQ_LOG_ERROR, "curl", "curl_multi_remove_handle: %s", curl_multi_strerror(mres));
        untrack_easy(cu, easy);
        /* After removal: the callee owns easy again and may reset, re-add or
         * clean it up, or close us (then the loop stops at cu->closing). */
        cu->done(easy, result, cu->arg);
    }
}

/* One socket_action plus the reap, with close deferred until both are done. */
static void action(struct hq_curl_uv *cu, curl_socket_t fd, int flags)
{
    int running = 0;
    cu->in_action++;
    CURLMcode mres = curl_multi_socket_action(cu->multi, fd, flags, &running);
    if (mres != CURLM_OK)
        hq_log(HQ_LOG_ERROR, "curl", "curl_multi_socket_action fd %d: %s", (int)fd,
               curl_multi_strerror(mres));
    reap(cu);
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
    action(cu, fd, flags);
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
    struct hq_curl_uv *cu = container_of(t, struct hq_curl_uv, timer);
    action(cu, CURL_SOCKET_TIMEOUT, 0);
}

/* ---- curl callbacks ------------------------------------------------------------------- */

/* Tells curl that fd's watcher is s. On failure s is forgotten and -1 makes
 * curl fail the transfer. */
static int assign(struct hq_curl_uv *cu, curl_socket_t fd, struct sock *s)
{
    CURLMcode mres = curl_multi_assign(cu->multi, fd, s);
    if (mres == CURLM_OK)
        return 0;
    hq_log(HQ_LOG_ERROR, "curl", "curl_multi_assign fd %d: %s", (int)fd, curl_multi_strerror(mres));
    sock_forget(cu, s);
    return -1;
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct hq_curl_uv *cu = userp;
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

        /* curl forgot its association at REMOVE: give it back. */
        if (assign(cu, fd, s) != 0)
            return -1;
    }
    if (!s) {
        s = hq_calloc(1, sizeof(*s));
        s->fd = fd;
        s->cu = cu;
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
        if (assign(cu, fd, s) != 0)
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
    run_now_stop(cu);
    action(cu, CURL_SOCKET_TIMEOUT, 0);
}

static void on_now_idle(uv_idle_t *i)
{
    (void)i; /* only its being active matters: it makes the poll phase not block */
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct hq_curl_uv *cu = userp;
    if (timeout_ms < 0) {
        uv_timer_stop(&cu->timer);
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
        if (!cu->run_now) {
            cu->run_now = 1;
            uv_check_start(&cu->now_check, on_now_check);
            uv_idle_start(&cu->now_idle, on_now_idle);
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
    if (timeout_ms == 0 && uv_is_active((uv_handle_t *)&cu->timer) &&
        uv_timer_get_due_in(&cu->timer) <= 1)
        return 0;
    int uvrc = uv_timer_start(&cu->timer, on_uv_timer, delay, 0);
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

struct hq_curl_uv *hq_curl_uv_new(uv_loop_t *loop, hq_curl_done_cb done, void *arg)
{
    CURLM *multi = curl_multi_init();
    if (!multi) {
        hq_log(HQ_LOG_ERROR, "curl", "curl_multi_init failed");
        return NULL;
    }
    struct hq_curl_uv *cu = hq_calloc(1, sizeof(*cu));
    cu->loop = loop;
    cu->multi = multi;
    cu->done = done;
    cu->arg = arg;
    CURLMcode mres = CURLM_OK;
    if (mres == CURLM_OK)
        mres = curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    if (mres == CURLM_OK)
        mres = curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, cu);
    if (mres == CURLM_OK)
        mres = curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    if (mres == CURLM_OK)
        mres = curl_multi_setopt(multi, CURLMOPT_TIMERDATA, cu);
    if (mres != CURLM_OK) {
        hq_log(HQ_LOG_ERROR, "curl", "curl_multi_setopt: %s", curl_multi_strerror(mres));
        curl_multi_cleanup(multi);
        free(cu);
        return NULL;
    }
    uv_timer_init(loop, &cu->timer); /* these three cannot fail on unix */
    uv_check_init(loop, &cu->now_check);
    uv_idle_init(loop, &cu->now_idle);
    cu->open_handles = 3;
    return cu;
}

CURLM *hq_curl_uv_multi(struct hq_curl_uv *cu)
{
    return cu->multi;
}

void hq_curl_uv_prepare_easy(struct hq_curl_uv *cu, CURL *easy)
{
    CURLcode cres = curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, on_curl_closesocket);
    if (cres == CURLE_OK)
        cres = curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, cu);
    if (cres != CURLE_OK)
        hq_log(HQ_LOG_ERROR, "curl", "CURLOPT_CLOSESOCKETFUNCTION: %s", curl_easy_strerror(cres));
}

int hq_curl_uv_add(struct hq_curl_uv *cu, CURL *easy)
{
    if (cu->closing) {
        hq_log(HQ_LOG_ERROR, "curl", "transfer added while closing");
        return HQ_EIO;
    }
    /* Adding asks for a 0 ms timeout through on_curl_timer: the transfer
     * starts in this loop turn's check phase, not from here. */
    CURLMcode mres = curl_multi_add_handle(cu->multi, easy);
    if (mres != CURLM_OK) {
        hq_log(HQ_LOG_ERROR, "curl", "curl_multi_add_handle: %s", curl_multi_strerror(mres));
        return HQ_EIO;
    }
    track_easy(cu, easy);
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
    CURLMcode mres;
    while (cu->neasies > 0) {
        CURL *easy = cu->easies[--cu->neasies];
        mres = curl_multi_remove_handle(cu->multi, easy);
        if (mres != CURLM_OK)
            hq_log(HQ_LOG_ERROR, "curl", "curl_multi_remove_handle: %s", curl_multi_strerror(mres));
    }
    mres = curl_multi_cleanup(cu->multi);
    if (mres != CURLM_OK)
        hq_log(HQ_LOG_ERROR, "curl", "curl_multi_cleanup: %s", curl_multi_strerror(mres));
    cu->multi = NULL;
    /* Sockets curl never REMOVEd (it should have): close their polls too, so
     * uv_loop_close can succeed. */
    for (size_t fd = 0; fd < cu->by_fd_cap; fd++) {
        if (cu->by_fd[fd])
            sock_forget(cu, cu->by_fd[fd]);
    }
    cu->timer.data = cu->now_check.data = cu->now_idle.data = cu;
    uv_close((uv_handle_t *)&cu->timer, on_handle_closed);
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
    uv_timer_stop(&cu->timer);
    run_now_stop(cu);
    if (cu->in_action) {
        /* Called from done (inside the reap loop): curl_multi_cleanup must wait
         * until curl_multi_socket_action and the reap have returned. */
        cu->close_pending = 1;
        return;
    }
    finish_close(cu);
}
