/* Async Redis client on a libuv loop: the contract in redis_client.h.
 *
 * Owns one hiredis async connection at a time, its deadlines (connect, per
 * command), the capped-backoff reconnect and the handshake (AUTH, SELECT,
 * PING). It does not own the fd's poll (common/redis_uv.c does) and knows
 * nothing of streams, events or deliveries.
 *
 * Why the shape (docs/internals/worker-loop.md): hiredis 0.14 has no async
 * timeouts, so a stuck server would otherwise hold commands forever. One
 * uv_timer serves the state at hand: the connect deadline while connecting,
 * the earliest command deadline while READY (one timer for all commands,
 * conventions G.44), the backoff wait while down. A uv_idle runs work that must
 * not happen inside a hiredis callback (redisAsyncFree, close), because hiredis
 * still walks the context after a callback returns.
 *
 * Lifecycle: DOWN -(timer)-> CONNECTING -(onConnect ok)-> HANDSHAKE -(PING
 * reply)-> READY. A failure in CONNECTING/HANDSHAKE/READY goes to DOWN (via
 * TEARDOWN when detected inside a hiredis callback) and arms the reconnect
 * backoff. CLOSING is final. */
#include "common/redis_client.h"

#include <hiredis/async.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/redis_reply.h"
#include "common/redis_sentinel.h"
#include "common/redis_sync.h"
#include "common/redis_uv.h"
#include "common/scripts.h"

/* One-line failure reasons: an address, a library message and a reply excerpt. */
#define WHY_MAX 1024

enum state {
    ST_DOWN,       /* no context; the timer waits out the backoff */
    ST_CONNECTING, /* context exists, TCP/unix connect in progress */
    ST_HANDSHAKE,  /* connected; AUTH/SELECT/PING sent, not all answered */
    ST_READY,      /* usable */
    ST_TEARDOWN,   /* failure seen inside a hiredis callback; the idle tears down */
    ST_CLOSING,    /* hq_redis_client_close was called; final */
};

/* One command sent to hiredis whose callback has not run yet. Everything in the
 * client's list is also in hiredis's reply list, so each gets exactly one
 * on_reply: the real reply, or NULL when the context is freed. */
struct pending {
    struct pending *prev, *next; /* in client->head/tail, send order */
    struct hq_redis_client *c;   /* owner */
    hq_redis_reply_cb cb;        /* user callback; NULL for handshake commands */
    void *arg;                   /* user context for cb */
    const char *what;            /* handshake: "AUTH", "SELECT" or "PING" */
    uint64_t deadline;           /* loop ms (uv_now) after which the reply is late */
    int timeout_ms;              /* for messages and the EVAL resend */
    int may_block;               /* caller set its own deadline: a BLOCK command */
    int role_probe;              /* the periodic ROLE of sentinel mode */
    /* Scripts only: the full EVALSHA argv (owned copies), kept for the EVAL
     * resend on NOSCRIPT, and the source to resend (NULL once resent). */
    const char *src; /* borrowed, static */
    int argc;
    char **argv;   /* owned, argv[0..1] point into static strings */
    size_t *lens;  /* owned */
    char *numkeys; /* owned, argv[2] */
};

struct hq_redis_client {
    uv_loop_t *loop;              /* borrowed */
    struct hq_redis_url url;      /* copy; holds the password: never logged */
    char name[32];                /* "reader", "writer": for log lines */
    char where[300];              /* "127.0.0.1:6379" or "unix:/path", for messages */
    hq_redis_state_cb state_cb;   /* may be NULL */
    void *arg;                    /* for state_cb */
    redisAsyncContext *ac;        /* the live context or NULL; ac->data points back */
    enum state state;             /* see the lifecycle above */
    uv_timer_t timer;             /* connect deadline / earliest command deadline / backoff */
    uv_idle_t kick;               /* deferred teardown and close (outside hiredis callbacks) */
    uv_timer_t role_timer;        /* sentinel mode, READY: periodic ROLE while idle */
    int connect_ms;               /* connect + handshake deadline for this mode */
    uint64_t armed;               /* READY: deadline the timer is armed for (0 = none) */
    uint64_t connect_deadline;    /* loop ms: CONNECTING + HANDSHAKE must finish by then */
    struct pending *head, *tail;  /* every command hiredis holds a callback for */
    int npending;                 /* user commands in the list */
    int handshake_left;           /* handshake replies still expected */
    int backoff_ms;               /* next reconnect wait */
    unsigned long attempts;       /* connection attempts since new */
    unsigned long down_attempts;  /* failed attempts since the last READY */
    int reported_down;            /* state_cb(0) and the warn line sent for this outage */
    uint64_t down_since;          /* loop ms of the outage's first failure */
    uint64_t last_log;            /* loop ms of the last warn line during the outage */
    char teardown_why[WHY_MAX];   /* ST_TEARDOWN: the reason to report */
    void (*on_closed)(void *arg); /* close: called after the last close callback */
    void *closed_arg;
    char *fmt; /* owned: the last command in RESP, reused (send_argv) */
    size_t fmt_cap;
};

static void on_timer(uv_timer_t *t);
static void on_kick(uv_idle_t *idle);

/* ---- Pending list -------------------------------------------------------------- */

static void link_pending(struct hq_redis_client *c, struct pending *p)
{
    p->prev = c->tail;
    p->next = NULL;
    if (c->tail)
        c->tail->next = p;
    else
        c->head = p;
    c->tail = p;
    if (p->cb)
        c->npending++;
}

static void unlink_pending(struct hq_redis_client *c, struct pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        c->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        c->tail = p->prev;
    p->prev = p->next = NULL;
    if (p->cb)
        c->npending--;
}

static void free_pending(struct pending *p)
{
    free(p->argv);
    free(p->lens);
    free(p->numkeys);
    free(p);
}

/* Arms the one timer to deadline when it is earlier than what is armed. */
static void arm_deadline(struct hq_redis_client *c, uint64_t deadline)
{
    if (c->armed && c->armed <= deadline)
        return;
    uint64_t now = uv_now(c->loop);
    c->armed = deadline;
    uv_timer_start(&c->timer, on_timer, deadline > now ? deadline - now : 1, 0);
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata);

static char *put_len(char *o, char type, size_t n)
{
    char tmp[24];
    int k = 0;
    do
        tmp[k++] = (char)('0' + n % 10);
    while ((n /= 10) != 0);
    *o++ = type;
    while (k)
        *o++ = tmp[--k];
    *o++ = '\r';
    *o++ = '\n';
    return o;
}

/* Writes the command in RESP into the client's reused buffer and hands it to
 * hiredis as one formatted command. redisAsyncCommandArgv formats each
 * argument's length through sdscatfmt (~900 instructions per argument; a
 * batch of outcomes is hundreds of arguments); this is a few memcpys. The
 * buffer is kept for the next command unless a large one grew it past 1 MiB. */
#define FMT_KEEP_MAX (1024 * 1024)
static int send_argv(struct hq_redis_client *c, redisAsyncContext *ac, struct pending *p, int argc,
                     const char **argv, const size_t *lens)
{
    size_t need = 24 + 3;
    for (int i = 0; i < argc; i++)
        need += 24 + 5 + (lens ? lens[i] : strlen(argv[i]));
    if (need > c->fmt_cap) {
        free(c->fmt);
        c->fmt = hq_malloc(need);
        c->fmt_cap = need;
    }
    char *o = put_len(c->fmt, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        size_t n = lens ? lens[i] : strlen(argv[i]);
        o = put_len(o, '$', n);
        memcpy(o, argv[i], n);
        o += n;
        *o++ = '\r';
        *o++ = '\n';
    }
    int rc = redisAsyncFormattedCommand(ac, on_reply, p, c->fmt, (size_t)(o - c->fmt));
    if (c->fmt_cap > FMT_KEEP_MAX) {
        free(c->fmt);
        c->fmt = NULL;
        c->fmt_cap = 0;
    }
    return rc;
}

/* Hands a command to hiredis and tracks it. Takes ownership of p. */
static int send_pending(struct hq_redis_client *c, struct pending *p, int argc, const char **argv,
                        const size_t *lens)
{
    /* Fails on OOM or when hiredis is already disconnecting (a user callback
     * fed a NULL reply during hiredis's own teardown): "try later". */
    if (send_argv(c, c->ac, p, argc, argv, lens) != REDIS_OK) {
        free_pending(p);
        return HQ_EAGAIN;
    }
    p->deadline = uv_now(c->loop) + (uint64_t)p->timeout_ms;
    link_pending(c, p);
    arm_deadline(c, c->state == ST_READY ? p->deadline : c->connect_deadline);
    return 0;
}

/* ---- Failure, backoff, logging ------------------------------------------------- */

/* The context is gone (c->ac == NULL): log, report, arm the reconnect. Safe
 * inside a hiredis callback (it frees nothing). */
static void fail(struct hq_redis_client *c, const char *why)
{
    c->state = ST_DOWN;
    c->armed = 0;
    int delay = c->backoff_ms;
    c->backoff_ms = delay >= HQ_RECONNECT_MAX_MS / 2 ? HQ_RECONNECT_MAX_MS : delay * 2;
    c->down_attempts++;
    uint64_t now = uv_now(c->loop);
    int first = !c->reported_down;
    if (first) {
        c->reported_down = 1;
        c->down_since = now;
        c->last_log = now;
        hq_log(HQ_LOG_WARN, "redis", "redis %s: %s; reconnecting in %d ms", c->name, why, delay);
    } else if (now - c->last_log >= HQ_REDIS_DOWN_LOG_EVERY_MS) {
        c->last_log = now;
        hq_log(HQ_LOG_WARN, "redis", "redis %s: still down after %lu attempts in %" PRIu64 " s: %s",
               c->name, c->down_attempts, (now - c->down_since) / 1000, why);
    } else {
        hq_log(HQ_LOG_DEBUG, "redis", "redis %s: %s; reconnecting in %d ms", c->name, why, delay);
    }
    uv_timer_start(&c->timer, on_timer, (uint64_t)delay, 0);
    /* Last, and only once per outage: the callback may close the client. */
    if (first && c->state_cb)
        c->state_cb(c, 0, why, c->arg);
}

/* Frees the context and reports why. Only from a timer or idle callback:
 * redisAsyncFree runs every pending callback with NULL, and must not run
 * while hiredis is inside one of its own callbacks. */
static void teardown(struct hq_redis_client *c, const char *why)
{
    char reason[WHY_MAX];
    snprintf(reason, sizeof(reason), "%s", why); /* why may point into c */
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    c->state = ST_DOWN; /* commands issued from the NULL callbacks get HQ_EAGAIN */
    if (ac) {
        ac->data = NULL; /* our on_disconnect then ignores it: we report here */
        redisAsyncFree(ac);
    }
    if (c->state == ST_CLOSING)
        return; /* a callback closed the client; the idle finishes that */
    fail(c, reason);
}

/* A failure seen inside a hiredis callback: stop accepting commands now,
 * tear down from the idle callback. The first reason wins. */
static void request_teardown(struct hq_redis_client *c, const char *why)
{
    if (c->state == ST_TEARDOWN || c->state == ST_CLOSING || c->state == ST_DOWN)
        return;
    c->state = ST_TEARDOWN;
    snprintf(c->teardown_why, sizeof(c->teardown_why), "%s", why);
    uv_idle_start(&c->kick, on_kick);
}

/* ---- Connecting ------------------------------------------------------------------ */

static struct pending *pending_new(struct hq_redis_client *c, hq_redis_reply_cb cb, void *arg,
                                   int timeout_ms);

static void on_role_reply(struct hq_redis_client *c, redisReply *reply, void *arg)
{
    (void)arg;
    struct hq_err err = {0};
    if (!reply || c->state != ST_READY)
        return; /* whoever tore the connection down reports why */
    if (hq_sentinel_check_role(reply, &err) != 0) {
        char why[WHY_MAX];
        snprintf(why, sizeof(why), "%s (sentinel master '%s'): %s: resolving again", c->where,
                 c->url.master, err.msg);
        request_teardown(c, why);
    }
}

/* Not behind a blocking command (one sent with its own deadline: a BLOCK
 * read): ROLE would wait for the read and look like a dead node; that
 * connection's read deadline notices a stopped node. Behind ordinary
 * commands it is pipelined: a stopped node is then noticed in
 * HQ_SENTINEL_ROLE_TIMEOUT_MS instead of their 10 s deadline. */
static void on_role_timer(uv_timer_t *t)
{
    struct hq_redis_client *c = container_of(t, struct hq_redis_client, role_timer);
    if (c->state != ST_READY)
        return;
    for (const struct pending *q = c->head; q; q = q->next)
        if (q->may_block || q->role_probe)
            return;
    struct pending *p = pending_new(c, on_role_reply, NULL, HQ_SENTINEL_ROLE_TIMEOUT_MS);
    if (!p)
        return;
    p->role_probe = 1;
    (void)send_pending(c, p, 1, (const char *[]){"ROLE"}, NULL);
}

static void become_ready(struct hq_redis_client *c)
{
    c->state = ST_READY;
    c->armed = 0;
    uv_timer_stop(&c->timer); /* no user command is pending on a fresh connection */
    if (c->url.nsentinels > 0)
        uv_timer_start(&c->role_timer, on_role_timer, HQ_SENTINEL_ROLE_EVERY_MS,
                       HQ_SENTINEL_ROLE_EVERY_MS);
    if (c->reported_down && c->attempts > 1)
        hq_log(HQ_LOG_INFO, "redis", "redis %s: reconnected to %s after %lu failed attempt(s)",
               c->name, c->where, c->down_attempts);
    else
        hq_log(HQ_LOG_DEBUG, "redis", "redis %s: connected to %s", c->name, c->where);
    c->backoff_ms = HQ_RECONNECT_MIN_MS;
    c->down_attempts = 0;
    c->reported_down = 0;
    if (c->state_cb) {
        char why[320];
        snprintf(why, sizeof(why), "connected to %s", c->where);
        c->state_cb(c, 1, why, c->arg);
    }
}

static void on_handshake_reply(struct hq_redis_client *c, struct pending *p, redisReply *reply)
{
    if (!reply || c->state != ST_HANDSHAKE)
        return; /* the context is going away; whoever freed it reports why */
    if (reply->type == REDIS_REPLY_ERROR) {
        char why[WHY_MAX];
        snprintf(why, sizeof(why), "%s: %s failed: %.*s", c->where, p->what, (int)reply->len,
                 reply->str);
        request_teardown(c, why);
        return;
    }
    if (strcmp(p->what, "ROLE") == 0) {
        struct hq_err err = {0};
        if (hq_sentinel_check_role(reply, &err) != 0) {
            char why[WHY_MAX];
            snprintf(why, sizeof(why), "%s (sentinel master '%s'): %s", c->where, c->url.master,
                     err.msg);
            request_teardown(c, why);
            return;
        }
    }
    if (--c->handshake_left == 0)
        become_ready(c);
}

static int send_handshake(struct hq_redis_client *c, const char *what, int argc, const char **argv)
{
    struct pending *p = hq_calloc(1, sizeof(*p));
    p->c = c;
    p->what = what;
    p->timeout_ms = c->connect_ms;
    c->handshake_left++;
    return send_pending(c, p, argc, argv, NULL);
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct hq_redis_client *c = ac->data;
    if (!c)
        return;
    char why[WHY_MAX];
    if (status != REDIS_OK) {
        /* hiredis frees ac right after this returns: detach now. */
        ac->data = NULL;
        c->ac = NULL;
        snprintf(why, sizeof(why), "cannot connect to %s: %s", c->where,
                 ac->c.errstr[0] ? ac->c.errstr : "connection failed");
        fail(c, why);
        return;
    }
    c->state = ST_HANDSHAKE;
    c->handshake_left = 0;
    int rc = 0;
    char db[16];
    snprintf(db, sizeof(db), "%d", c->url.db);
    if (c->url.password[0]) {
        const char *argv[3] = {"AUTH", c->url.user, c->url.password};
        if (c->url.user[0])
            rc = send_handshake(c, "AUTH", 3, argv);
        else
            rc = send_handshake(c, "AUTH", 2, (const char *[]){"AUTH", c->url.password});
    }
    if (rc == 0 && c->url.db != 0)
        rc = send_handshake(c, "SELECT", 2, (const char *[]){"SELECT", db});
    /* PING proves the server answers: an accepted TCP connection alone does
     * not (a stopped server's kernel still accepts), and NOAUTH shows here. */
    if (rc == 0)
        rc = send_handshake(c, "PING", 1, (const char *[]){"PING"});
    /* Sentinel mode: the sentinels' answer may be stale (a promotion not yet
     * done, a demoted node not yet reconfigured); only a master is used. */
    if (rc == 0 && c->url.nsentinels > 0)
        rc = send_handshake(c, "ROLE", 1, (const char *[]){"ROLE"});
    if (rc != 0) {
        snprintf(why, sizeof(why), "%s: cannot send the handshake", c->where);
        request_teardown(c, why);
    }
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    (void)status;
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct hq_redis_client *c = ac->data;
    if (!c)
        return; /* we freed it ourselves and report from there */
    /* hiredis frees ac right after this returns: clear both back-pointers. */
    ac->data = NULL;
    c->ac = NULL;
    if (c->state == ST_CLOSING)
        return;
    char why[WHY_MAX];
    if (c->state == ST_TEARDOWN && c->teardown_why[0])
        snprintf(why, sizeof(why), "%s", c->teardown_why); /* the first reason is the cause */
    else
        snprintf(why, sizeof(why), "lost %s: %s", c->where,
                 ac->c.errstr[0] ? ac->c.errstr : "connection closed");
    fail(c, why);
}

static void start_connect(struct hq_redis_client *c)
{
    char why[WHY_MAX];
    struct hq_err err = {0};
    c->attempts++;
    if (c->url.nsentinels > 0) {
        /* Re-resolved on every attempt, never cached: after a failover the
         * old address is a replica or gone. Blocking, bounded by
         * HQ_SENTINEL_TIMEOUT_MS per sentinel (see docs/operations.md). */
        c->url.host[0] = '\0';
        int rrc = hq_redis_sentinel_resolve(&c->url, &err);
        uv_update_time(c->loop); /* the backoff and deadlines start from now */
        if (rrc != 0) {
            /* The log line already says "redis <name>:". */
            fail(c, strncmp(err.msg, "redis: ", 7) == 0 ? err.msg + 7 : err.msg);
            return;
        }
        hq_redis_url_describe(&c->url, c->where, sizeof(c->where));
    }
    redisAsyncContext *ac = c->url.path[0] ? redisAsyncConnectUnix(c->url.path)
                                           : redisAsyncConnect(c->url.host, c->url.port);
    if (!ac) {
        snprintf(why, sizeof(why), "cannot connect to %s: out of memory", c->where);
        fail(c, why);
        return;
    }
    /* An immediate failure (refused on loopback, bad address): ours to free. */
    if (ac->err) {
        snprintf(why, sizeof(why), "cannot connect to %s: %s", c->where, ac->errstr);
        redisAsyncFree(ac);
        fail(c, why);
        return;
    }
    /* Replies are built in one arena each (common/redis_reply.h): a stream
     * read is one tree of hundreds of objects, freed as soon as it is read. */
    hq_redis_reply_use_arena(ac->c.reader);
    /* Keepalive catches a peer that vanished without a FIN (0.14: fixed 15 s
     * interval). On failure hiredis sets c->err, which would poison the
     * context, so it counts as a failed attempt. */
    if (!c->url.path[0] && redisEnableKeepAlive(&ac->c) != REDIS_OK) {
        snprintf(why, sizeof(why), "cannot connect to %s: keepalive: %s", c->where, ac->c.errstr);
        redisAsyncFree(ac);
        fail(c, why);
        return;
    }
    if (hq_redis_uv_attach(c->loop, ac, &err) != 0) {
        snprintf(why, sizeof(why), "cannot connect to %s: %s", c->where, err.msg);
        redisAsyncFree(ac);
        fail(c, why);
        return;
    }
    ac->data = c;
    c->ac = ac;
    c->state = ST_CONNECTING;
    /* Asks for the first write event through the adapter: that is "connected". */
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->connect_deadline = uv_now(c->loop) + (uint64_t)c->connect_ms;
    c->armed = 0;
    uv_timer_start(&c->timer, on_timer, (uint64_t)c->connect_ms, 0);
}

/* ---- Timer and idle -------------------------------------------------------------- */

static void check_deadlines(struct hq_redis_client *c)
{
    uint64_t now = uv_now(c->loop), earliest = 0;
    c->armed = 0;
    for (struct pending *p = c->head; p; p = p->next) {
        if (p->deadline <= now) {
            char why[WHY_MAX];
            snprintf(why, sizeof(why), "lost %s: no reply within %d ms", c->where, p->timeout_ms);
            teardown(c, why);
            return;
        }
        if (!earliest || p->deadline < earliest)
            earliest = p->deadline;
    }
    if (earliest)
        arm_deadline(c, earliest);
}

static void on_timer(uv_timer_t *t)
{
    struct hq_redis_client *c = container_of(t, struct hq_redis_client, timer);
    char why[WHY_MAX];
    switch (c->state) {
    case ST_DOWN: start_connect(c); break;
    case ST_CONNECTING:
    case ST_HANDSHAKE:
        snprintf(why, sizeof(why), "cannot connect to %s: %s within %d ms", c->where,
                 c->state == ST_CONNECTING ? "no connection" : "no answer to the handshake",
                 c->connect_ms);
        teardown(c, why);
        break;
    case ST_READY: check_deadlines(c); break;
    case ST_TEARDOWN:
    case ST_CLOSING: break;
    }
}

static void on_kick_closed(uv_handle_t *h)
{
    struct hq_redis_client *c = container_of((uv_idle_t *)h, struct hq_redis_client, kick);
    void (*cb)(void *) = c->on_closed;
    void *arg = c->closed_arg;
    free(c->fmt);
    free(c);
    if (cb)
        cb(arg);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct hq_redis_client *c = container_of((uv_timer_t *)h, struct hq_redis_client, timer);
    /* Closed one closing phase after the timer, so this callback runs after the
     * adapter's poll close callback (queued earlier): on_closed then means
     * "every handle of this client is gone". */
    uv_close((uv_handle_t *)&c->kick, on_kick_closed);
}

static void finish_close(struct hq_redis_client *c)
{
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac); /* pending callbacks get NULL; the adapter closes its poll */
    }
    hq_assert(!c->head); /* hiredis ran every callback it held */
    /* Queued before the timer, so its close callback has run when the kick's does. */
    uv_close((uv_handle_t *)&c->role_timer, NULL);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

static void on_kick(uv_idle_t *idle)
{
    struct hq_redis_client *c = container_of(idle, struct hq_redis_client, kick);
    uv_idle_stop(idle);
    if (c->state == ST_CLOSING)
        finish_close(c);
    else if (c->state == ST_TEARDOWN)
        teardown(c, c->teardown_why);
}

/* ---- Replies ------------------------------------------------------------------------- */

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct pending *p = privdata;
    struct hq_redis_client *c = p->c;
    redisReply *reply = r;
    unlink_pending(c, p);
    if (!reply && c->state == ST_READY && c->ac == ac) {
        /* hiredis is tearing down (on_disconnect follows): refuse new commands
         * now; on_disconnect reports hiredis's own reason. */
        c->state = ST_TEARDOWN;
        c->teardown_why[0] = '\0';
    }
    if (!p->cb) {
        on_handshake_reply(c, p, reply);
        free_pending(p);
        return;
    }
    if (p->src && hq_script_is_noscript(reply) && c->state == ST_READY && c->ac == ac) {
        /* The server's script cache is empty (restart, SCRIPT FLUSH): resend
         * the same call as EVAL; the caller only ever sees the final reply. */
        p->argv[0] = "EVAL";
        p->lens[0] = 4;
        p->argv[1] = (char *)p->src;
        p->lens[1] = strlen(p->src);
        p->src = NULL;
        if (send_argv(c, ac, p, p->argc, (const char **)p->argv, p->lens) == REDIS_OK) {
            p->deadline = uv_now(c->loop) + (uint64_t)p->timeout_ms;
            link_pending(c, p);
            arm_deadline(c, p->deadline);
            return;
        }
        reply = NULL; /* could not resend: outcome unknown */
    }
    if (c->url.nsentinels > 0 && hq_sentinel_is_readonly(reply) && c->ac == ac &&
        c->state == ST_READY) {
        /* A write refused by a replica: this node was demoted under us.
         * Drop the connection; the reconnect asks the sentinels again. */
        char why[WHY_MAX];
        snprintf(why, sizeof(why), "%s is no longer the master (READONLY): resolving again",
                 c->where);
        request_teardown(c, why);
    }
    p->cb(c, reply, p->arg);
    free_pending(p);
}

/* ---- Public API ------------------------------------------------------------------------ */

void hq_redis_script_init(struct hq_redis_script *s, const char *src)
{
    s->src = src;
    hq_script_sha1(src, s->sha);
}

struct hq_redis_client *hq_redis_client_new(uv_loop_t *loop, const struct hq_redis_url *url,
                                            const char *name, hq_redis_state_cb state_cb, void *arg)
{
    struct hq_redis_client *c = hq_calloc(1, sizeof(*c));
    c->loop = loop;
    c->url = *url;
    snprintf(c->name, sizeof(c->name), "%s", name ? name : "client");
    hq_redis_url_describe(&c->url, c->where, sizeof(c->where));
    c->state_cb = state_cb;
    c->arg = arg;
    c->state = ST_DOWN;
    c->backoff_ms = HQ_RECONNECT_MIN_MS;
    uv_timer_init(loop, &c->timer);
    uv_timer_init(loop, &c->role_timer);
    c->connect_ms =
        c->url.nsentinels > 0 ? HQ_SENTINEL_NODE_CONNECT_MS : HQ_REDIS_CONNECT_TIMEOUT_MS;
    uv_idle_init(loop, &c->kick);
    /* Connect from the loop, not here: a failure reports through state_cb,
     * which must not run before the caller has the pointer. Not re-armed at
     * 0 ms from its own callback, so libuv 1.44's 0 ms busy loop does not apply. */
    uv_timer_start(&c->timer, on_timer, 0, 0);
    return c;
}

int hq_redis_client_ready(const struct hq_redis_client *c)
{
    return c->state == ST_READY;
}

/* A pending command for cb/arg, or NULL when the client cannot take one now. */
static struct pending *pending_new(struct hq_redis_client *c, hq_redis_reply_cb cb, void *arg,
                                   int timeout_ms)
{
    if (c->state != ST_READY || !c->ac)
        return NULL;
    struct pending *p = hq_calloc(1, sizeof(*p));
    p->c = c;
    p->cb = cb;
    p->arg = arg;
    p->timeout_ms = timeout_ms > 0 ? timeout_ms : HQ_REDIS_COMMAND_TIMEOUT_MS;
    return p;
}

int hq_redis_client_command(struct hq_redis_client *c, hq_redis_reply_cb cb, void *arg,
                            int timeout_ms, int argc, const char **argv, const size_t *lens)
{
    struct pending *p = pending_new(c, cb, arg, timeout_ms);
    if (!p)
        return HQ_EAGAIN;
    p->may_block = timeout_ms > 0;
    return send_pending(c, p, argc, argv, lens);
}

int hq_redis_client_script(struct hq_redis_client *c, const struct hq_redis_script *s,
                           hq_redis_reply_cb cb, void *arg, int numkeys, int argc,
                           const char **argv, const size_t *lens)
{
    struct pending *p = pending_new(c, cb, arg, 0);
    if (!p)
        return HQ_EAGAIN;
    p->src = s->src;
    /* The caller's argv is borrowed for this call only, and the EVAL resend
     * on NOSCRIPT needs it again after the caller returned: copy it, in one
     * block after the pointer array. */
    size_t total = 0;
    for (int i = 0; i < argc; i++)
        total += lens ? lens[i] : strlen(argv[i]);
    p->argc = argc + 3;
    p->argv = hq_malloc(sizeof(char *) * (size_t)p->argc + total + 1);
    p->lens = hq_malloc(sizeof(size_t) * (size_t)p->argc);
    p->numkeys = hq_malloc(16);
    snprintf(p->numkeys, 16, "%d", numkeys);
    char *bytes = (char *)(p->argv + p->argc);
    p->argv[0] = "EVALSHA";
    p->lens[0] = 7;
    p->argv[1] = (char *)s->sha;
    p->lens[1] = strlen(s->sha);
    p->argv[2] = p->numkeys;
    p->lens[2] = strlen(p->numkeys);
    for (int i = 0; i < argc; i++) {
        size_t n = lens ? lens[i] : strlen(argv[i]);
        memcpy(bytes, argv[i], n);
        p->argv[i + 3] = bytes;
        p->lens[i + 3] = n;
        bytes += n;
    }
    return send_pending(c, p, p->argc, (const char **)p->argv, p->lens);
}

int hq_redis_client_pending(const struct hq_redis_client *c)
{
    return c->npending;
}

void hq_redis_client_close(struct hq_redis_client *c, void (*on_closed)(void *arg), void *arg)
{
    if (c->state == ST_CLOSING)
        return;
    c->state = ST_CLOSING;
    c->on_closed = on_closed;
    c->closed_arg = arg;
    uv_timer_stop(&c->timer);
    /* Always from the idle: close may be called inside a reply callback, where
     * hiredis still uses the context after we return. */
    uv_idle_start(&c->kick, on_kick);
}

unsigned long hq_redis_client_reconnects(const struct hq_redis_client *c)
{
    return c->attempts > 0 ? c->attempts - 1 : 0;
}
