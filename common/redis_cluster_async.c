/* Redis Cluster routing, async half: the contract is hq_redis_router's
 * (redis_router.h), for a redis-cluster:// URL, on a libuv loop.
 *
 * Parts, each owned by the struct hq_cluster_async:
 *  - the slot map (CLUSTER SLOTS), loaded asynchronously: one CLUSTER SLOTS
 *    in flight at a time, over any READY node client, else over seed clients
 *    opened for that purpose (one per seed of the URL, closed once a map is
 *    known). Refreshes are rate-limited to one per REFRESH_MIN_MS, so a
 *    caller polling ready() while a node is down costs a few small commands
 *    per second, not a busy loop.
 *  - node clients: one hq_redis_client per primary, keyed by host:port,
 *    created on the first ready()/command for one of its slots; reconnects,
 *    deadlines, AUTH and the EVALSHA fallback are the client's. A client is
 *    closed when a refresh no longer names its node and nothing is pending
 *    on it (bounded by HQ_CLUSTER_NODES_MAX).
 *  - requests: each command the caller gave, with a copy of its argv (a
 *    redirect resends it after the caller's arrays are gone). A reply with
 *    MOVED / ASK is not passed up: the request is resent (at most
 *    REDIRECTS_MAX times); a request whose target is not READY yet waits in a
 *    FIFO until it is, its map is loaded, or its deadline passes (then its
 *    callback gets NULL: outcome unknown, as for a lost connection).
 *
 * Everything runs on the loop's thread. Callbacks into the caller (state_cb,
 * reply callbacks) may call back into this file, including close: code after
 * such a call re-checks c->closing. c itself is freed only from a libuv close
 * callback, never while one of our frames is on the stack. */
#include "common/redis_cluster.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/cluster_slots.h"
#include "common/limits.h"
#include "common/log.h"

/* A slot settles after one MOVED (or ASK then MOVED when a migration ends);
 * more redirects mean the cluster is reconfiguring faster than we follow and
 * the caller's back-off is the better retry. */
#define REDIRECTS_MAX 5
/* Minimum gap between two CLUSTER SLOTS of one router: fast enough to find a
 * promoted replica within a second of the failover, cheap while degraded. */
#define REFRESH_MIN_MS 250
/* While requests wait or a refresh is wanted: how often to look again. */
#define TICK_MS 100

struct hq_cluster_async;

/* A connection to one node: a primary of the map, or a seed. */
struct anode {
    struct hq_cluster_async *c;  /* owner */
    struct hq_redis_client *cli; /* owned until its on_closed */
    char host[HQ_CLUSTER_HOST_MAX];
    int port;
    int seed; /* 1: opened only to load the map; transitions are not forwarded */
    int lost; /* the connection dropped and has not been READY since: the map may be stale */
};

/* One caller's command, from hq_cluster_async_command/_script until its
 * callback ran. */
struct req {
    struct req *next; /* in c->wait_head list while waiting */
    struct hq_cluster_async *c;
    unsigned slot;
    hq_redis_reply_cb cb;
    void *arg;
    int timeout_ms;                /* as given to _command (0 = the client's default) */
    int is_script;                 /* 1: script + numkeys, else a plain command */
    struct hq_redis_script script; /* a copy: the client's EVALSHA points at its sha */
    int numkeys;
    int argc;
    const char **argv; /* owned: one block holding the pointers, lens and bytes */
    size_t *lens;      /* points into the same block */
    int redirects;     /* MOVED/ASK followed so far */
    int ask;           /* 1: the next send goes to ask_host:ask_port after ASKING */
    char ask_host[HQ_CLUSTER_HOST_MAX];
    int ask_port;
    char at_host[HQ_CLUSTER_HOST_MAX]; /* node it was last sent to: a redirect's "" host */
    uint64_t deadline;                 /* waiting: give up at this loop time */
};

struct hq_cluster_async {
    uv_loop_t *loop;            /* borrowed */
    struct hq_redis_url url;    /* copy; holds the password: never logged */
    char name[32];              /* for the node clients' log lines */
    hq_redis_state_cb state_cb; /* may be NULL */
    void *arg;
    struct hq_slot_map *map;     /* owned; valid when have_map */
    struct hq_slot_map *scratch; /* owned; a refresh parses here, then the two swap */
    int have_map;
    struct anode *node[HQ_CLUSTER_NODES_MAX]; /* node clients by address; NULL = free */
    struct anode *seed[HQ_SENTINELS_MAX];     /* seed clients while loading; NULL = none */
    int refresh_wanted;                       /* a CLUSTER SLOTS should be sent */
    int refresh_inflight;                     /* one was sent, its reply not yet seen */
    int refreshed_once;                       /* last_refresh is meaningful */
    uint64_t last_refresh;                    /* loop ms the last one was sent */
    uint64_t last_warn;                       /* loop ms of the last refresh warning */
    char refresh_host[HQ_CLUSTER_HOST_MAX];   /* node asked: the map's "" host */
    struct req *wait_head, *wait_tail;        /* requests waiting for a target */
    int nwaiting;
    int pending;     /* requests whose callback has not run */
    uv_timer_t tick; /* refresh retry and waiting deadlines */
    int open;        /* clients + the tick not yet closed */
    int closing;     /* hq_cluster_async_close was called */
    void (*on_closed)(void *arg);
    void *closed_arg;
    unsigned long reconnects_gone; /* reconnects of clients already closed */
};

static void refresh_request(struct hq_cluster_async *c);
static void refresh_maybe_start(struct hq_cluster_async *c);
static void flush_waiting(struct hq_cluster_async *c);

/* ---- Teardown -------------------------------------------------------------- */

static void maybe_finish(struct hq_cluster_async *c)
{
    if (!c->closing || c->open > 0)
        return;
    void (*cb)(void *) = c->on_closed;
    void *arg = c->closed_arg;
    free(c->map);
    free(c->scratch);
    memset(&c->url, 0, sizeof(c->url)); /* the password */
    free(c);
    if (cb)
        cb(arg);
}

static void on_client_closed(void *arg)
{
    struct anode *n = arg;
    struct hq_cluster_async *c = n->c;
    free(n);
    c->open--;
    maybe_finish(c);
}

/* Starts closing n's client (its pending callbacks get NULL later, from the
 * client's idle); the caller removes n from its table. */
static void anode_close(struct anode *n)
{
    n->c->reconnects_gone += hq_redis_client_reconnects(n->cli);
    hq_redis_client_close(n->cli, on_client_closed, n);
}

static void on_tick(uv_timer_t *t);

/* Looks again in TICK_MS (never 0 ms: libuv 1.44 busy-loops on a 0 ms timer
 * re-armed from its own callback). */
static void tick_arm(struct hq_cluster_async *c)
{
    if (!c->closing && !uv_is_active((uv_handle_t *)&c->tick))
        uv_timer_start(&c->tick, on_tick, TICK_MS, 0);
}

/* ---- Nodes ------------------------------------------------------------------- */

static void on_node_state(struct hq_redis_client *cli, int ready, const char *why, void *arg)
{
    struct anode *n = arg;
    struct hq_cluster_async *c = n->c;
    if (c->closing)
        return;
    if (n->seed) {
        if (ready)
            refresh_maybe_start(c);
        return;
    }
    n->lost = !ready;
    /* A lost primary may be failing over: its slots may have a new owner. */
    if (!ready)
        refresh_request(c);
    if (c->state_cb)
        c->state_cb(cli, ready, why, c->arg);
    if (ready && !c->closing) {
        refresh_maybe_start(c);
        flush_waiting(c);
    }
}

static struct anode *anode_new(struct hq_cluster_async *c, const char *host, int port, int seed)
{
    struct anode *n = hq_calloc(1, sizeof(*n));
    n->c = c;
    snprintf(n->host, sizeof(n->host), "%s", host);
    n->port = port;
    n->seed = seed;
    /* The node's own URL: the cluster's credentials, db 0, no seeds. */
    struct hq_redis_url u = c->url;
    snprintf(u.host, sizeof(u.host), "%s", host);
    u.port = port;
    u.path[0] = '\0';
    u.db = 0;
    u.cluster = 0;
    u.nseeds = 0;
    u.nsentinels = 0;
    c->open++;
    n->cli = hq_redis_client_new(c->loop, &u, c->name, on_node_state, n);
    memset(&u, 0, sizeof(u));
    return n;
}

static int map_names(const struct hq_slot_map *m, const char *host, int port)
{
    for (int i = 0; i < m->nnodes; i++)
        if (m->node[i].port == port && strcmp(m->node[i].host, host) == 0)
            return 1;
    return 0;
}

/* Closes node clients the map no longer names (a demoted or removed
 * primary) that have nothing pending: what they would answer is MOVED. */
static void nodes_prune(struct hq_cluster_async *c)
{
    for (int i = 0; i < HQ_CLUSTER_NODES_MAX; i++) {
        struct anode *n = c->node[i];
        if (n && !map_names(c->map, n->host, n->port) && hq_redis_client_pending(n->cli) == 0) {
            c->node[i] = NULL;
            anode_close(n);
        }
    }
}

/* The node client for host:port, created (connecting) when missing; NULL
 * only when the table is full of nodes still in use. */
static struct anode *node_get(struct hq_cluster_async *c, const char *host, int port)
{
    int free_i = -1;
    for (int i = 0; i < HQ_CLUSTER_NODES_MAX; i++) {
        struct anode *n = c->node[i];
        if (n && n->port == port && strcmp(n->host, host) == 0)
            return n;
        if (!n && free_i < 0)
            free_i = i;
    }
    if (free_i < 0 && c->have_map) {
        nodes_prune(c);
        for (int i = 0; i < HQ_CLUSTER_NODES_MAX && free_i < 0; i++)
            if (!c->node[i])
                free_i = i;
    }
    if (free_i < 0)
        return NULL;
    c->node[free_i] = anode_new(c, host, port, 0);
    return c->node[free_i];
}

static void seeds_open(struct hq_cluster_async *c)
{
    for (int i = 0; i < c->url.nseeds; i++)
        if (c->seed[i])
            return; /* already loading */
    for (int i = 0; i < c->url.nseeds && i < HQ_SENTINELS_MAX; i++)
        c->seed[i] = anode_new(c, c->url.seeds[i].host, c->url.seeds[i].port, 1);
}

static void seeds_close(struct hq_cluster_async *c)
{
    for (int i = 0; i < HQ_SENTINELS_MAX; i++) {
        if (c->seed[i]) {
            anode_close(c->seed[i]);
            c->seed[i] = NULL;
        }
    }
}

/* ---- The slot map ---------------------------------------------------------- */

static void refresh_warn(struct hq_cluster_async *c, const char *what)
{
    uint64_t now = uv_now(c->loop);
    if (c->last_warn && now - c->last_warn < HQ_REDIS_DOWN_LOG_EVERY_MS) {
        hq_log(HQ_LOG_DEBUG, "redis", "redis %s: cluster slot map: %s", c->name, what);
        return;
    }
    c->last_warn = now;
    hq_log(HQ_LOG_WARN, "redis", "redis %s: cluster slot map: %s", c->name, what);
}

static void on_slots(struct hq_redis_client *cli, redisReply *reply, void *arg)
{
    (void)cli;
    struct hq_cluster_async *c = arg;
    c->refresh_inflight = 0;
    if (c->closing)
        return;
    if (!reply) {
        refresh_request(c); /* the connection went: ask another node (rate-limited) */
        return;
    }
    struct hq_err err = {0};
    if (hq_cluster_slots_parse(reply, c->scratch, &err) != 0 || c->scratch->covered == 0) {
        char what[HQ_CLUSTER_HOST_MAX + sizeof(err.msg) + 16];
        snprintf(what, sizeof(what), "%s answered %s", c->refresh_host,
                 err.msg[0] ? err.msg : "that it serves no slot");
        refresh_warn(c, what);
        refresh_request(c);
        return;
    }
    struct hq_slot_map *m = c->scratch;
    for (int i = 0; i < m->nnodes; i++) /* "" = the node asked */
        if (!m->node[i].host[0])
            snprintf(m->node[i].host, sizeof(m->node[i].host), "%s", c->refresh_host);
    c->scratch = c->map;
    c->map = m;
    /* Said when first known and whenever coverage changes (not per refresh):
     * commands for an unserved slot wait quietly in ready(), so this warning
     * is the operator's only sign that those partitions are stalled. */
    if (!c->have_map || c->scratch->covered != m->covered) {
        if (m->covered < HQ_SLOTS) {
            char gaps[160];
            hq_slot_map_gaps(m, gaps, sizeof(gaps));
            hq_log(HQ_LOG_WARN, "redis",
                   "redis %s: cluster of %d primaries, %d/%d slots served; not served: %s "
                   "(waiting for them to be assigned)",
                   c->name, m->nnodes, m->covered, HQ_SLOTS, gaps);
        } else {
            hq_log(HQ_LOG_INFO, "redis", "redis %s: cluster of %d primaries, %d/%d slots served",
                   c->name, m->nnodes, m->covered, HQ_SLOTS);
        }
    }
    c->have_map = 1;
    seeds_close(c);
    nodes_prune(c);
    flush_waiting(c);
    if (!c->closing)
        refresh_maybe_start(c);
}

/* A READY client to ask CLUSTER SLOTS: a node's, else a seed's. */
static struct anode *pick_ready(struct hq_cluster_async *c)
{
    for (int i = 0; i < HQ_CLUSTER_NODES_MAX; i++)
        if (c->node[i] && hq_redis_client_ready(c->node[i]->cli))
            return c->node[i];
    for (int i = 0; i < HQ_SENTINELS_MAX; i++)
        if (c->seed[i] && hq_redis_client_ready(c->seed[i]->cli))
            return c->seed[i];
    return NULL;
}

static void refresh_maybe_start(struct hq_cluster_async *c)
{
    if (c->closing || !c->refresh_wanted || c->refresh_inflight)
        return;
    uint64_t now = uv_now(c->loop);
    if (c->refreshed_once && now - c->last_refresh < REFRESH_MIN_MS) {
        tick_arm(c);
        return;
    }
    struct anode *n = pick_ready(c);
    if (!n) {
        /* No node to ask: the seeds' clients call back here once READY. */
        seeds_open(c);
        tick_arm(c);
        return;
    }
    static const char *argv[] = {"CLUSTER", "SLOTS"};
    if (hq_redis_client_command(n->cli, on_slots, c, 0, 2, argv, NULL) != 0) {
        tick_arm(c);
        return;
    }
    snprintf(c->refresh_host, sizeof(c->refresh_host), "%s", n->host);
    c->refresh_wanted = 0;
    c->refresh_inflight = 1;
    c->refreshed_once = 1;
    c->last_refresh = now;
}

static void refresh_request(struct hq_cluster_async *c)
{
    c->refresh_wanted = 1;
    refresh_maybe_start(c);
}

/* ---- Requests ---------------------------------------------------------------- */

static struct req *req_new(struct hq_cluster_async *c, unsigned slot, hq_redis_reply_cb cb,
                           void *arg, int argc, const char **argv, const size_t *lens)
{
    struct req *r = hq_calloc(1, sizeof(*r));
    r->c = c;
    r->slot = slot;
    r->cb = cb;
    r->arg = arg;
    r->argc = argc;
    size_t total = 0;
    for (int i = 0; i < argc; i++)
        total += lens ? lens[i] : strlen(argv[i]);
    /* One block: pointers, lengths, then the bytes (freed with r->argv). */
    size_t head = sizeof(char *) * (size_t)argc + sizeof(size_t) * (size_t)argc;
    char *block = hq_malloc(head + total + 1);
    r->argv = (const char **)block;
    r->lens = (size_t *)(block + sizeof(char *) * (size_t)argc);
    char *bytes = block + head;
    for (int i = 0; i < argc; i++) {
        size_t n = lens ? lens[i] : strlen(argv[i]);
        memcpy(bytes, argv[i], n);
        r->argv[i] = bytes;
        r->lens[i] = n;
        bytes += n;
    }
    return r;
}

static void req_free(struct req *r)
{
    free((void *)r->argv);
    free(r);
}

/* Runs the caller's callback (exactly once per request) and frees r. */
static void req_finish(struct req *r, struct hq_redis_client *cli, redisReply *reply)
{
    struct hq_cluster_async *c = r->c;
    hq_redis_reply_cb cb = r->cb;
    void *arg = r->arg;
    req_free(r);
    c->pending--;
    cb(cli, reply, arg);
}

static void on_req_reply(struct hq_redis_client *cli, redisReply *reply, void *arg);

static void on_asking(struct hq_redis_client *cli, redisReply *reply, void *arg)
{
    /* Nothing to do: a refused ASKING shows in the command's own reply. */
    (void)cli, (void)reply, (void)arg;
}

/* Sends r to the node its redirect or the map names. 0 when sent (r is
 * then the client's until on_req_reply); HQ_EAGAIN when that node is not
 * READY or the map is not known (r may wait); another code when it cannot
 * be sent at all (no owner, no room for a client). */
static int req_send(struct hq_cluster_async *c, struct req *r)
{
    const char *host;
    int port;
    if (r->ask) {
        host = r->ask_host;
        port = r->ask_port;
    } else {
        if (!c->have_map)
            return HQ_EAGAIN;
        int o = c->map->owner[r->slot];
        if (o < 0)
            return HQ_ENOTFOUND;
        host = c->map->node[o].host;
        port = c->map->node[o].port;
    }
    struct anode *n = node_get(c, host, port);
    if (!n)
        return HQ_ETOOBIG;
    if (!hq_redis_client_ready(n->cli)) {
        if (n->lost)
            refresh_request(c);
        return HQ_EAGAIN;
    }
    int rc;
    if (r->ask) {
        /* ASKING holds for the next command on this connection only: both go
         * down the same pipe, in order. */
        static const char *asking[] = {"ASKING"};
        rc = hq_redis_client_command(n->cli, on_asking, NULL, 0, 1, asking, NULL);
        if (rc != 0)
            return rc;
    }
    if (r->is_script)
        rc = hq_redis_client_script(n->cli, &r->script, on_req_reply, r, r->numkeys, r->argc,
                                    r->argv, r->lens);
    else
        rc = hq_redis_client_command(n->cli, on_req_reply, r, r->timeout_ms, r->argc, r->argv,
                                     r->lens);
    if (rc == 0) {
        snprintf(r->at_host, sizeof(r->at_host), "%s", n->host);
        r->ask = 0;
    }
    return rc;
}

static void wait_push(struct hq_cluster_async *c, struct req *r)
{
    r->next = NULL;
    if (c->wait_tail)
        c->wait_tail->next = r;
    else
        c->wait_head = r;
    c->wait_tail = r;
    c->nwaiting++;
    tick_arm(c);
}

/* Sends r again after a redirect: now, later (waiting) or never (NULL). */
static void req_resend(struct hq_cluster_async *c, struct req *r)
{
    int rc = req_send(c, r);
    if (rc == 0)
        return;
    if (rc == HQ_EAGAIN && !c->closing) {
        int t = r->timeout_ms > 0 ? r->timeout_ms : HQ_REDIS_COMMAND_TIMEOUT_MS;
        r->deadline = uv_now(c->loop) + (uint64_t)t;
        wait_push(c, r);
        return;
    }
    req_finish(r, NULL, NULL);
}

static void on_req_reply(struct hq_redis_client *cli, redisReply *reply, void *arg)
{
    struct req *r = arg;
    struct hq_cluster_async *c = r->c;
    if (reply && reply->type == REDIS_REPLY_ERROR && !c->closing && r->redirects < REDIRECTS_MAX) {
        struct hq_redirect rd;
        enum hq_redirect_kind kind = hq_redirect_parse(reply->str, reply->len, &rd);
        if (kind == HQ_REDIRECT_MOVED || kind == HQ_REDIRECT_ASK) {
            char host[HQ_CLUSTER_HOST_MAX];
            snprintf(host, sizeof(host), "%s", rd.host[0] ? rd.host : r->at_host);
            r->redirects++;
            if (kind == HQ_REDIRECT_MOVED) {
                /* For good: patch the map now, re-read all of it (a failover
                 * moves every slot of the old primary) in the background. */
                (void)hq_slot_map_move(c->map, r->slot, host, rd.port); /* full: the refresh says */
                refresh_request(c);
            } else {
                r->ask = 1;
                snprintf(r->ask_host, sizeof(r->ask_host), "%s", host);
                r->ask_port = rd.port;
            }
            req_resend(c, r);
            return;
        }
    }
    req_finish(r, cli, reply);
}

/* Sends what waits whose target is READY; fails what is past its deadline. */
static void flush_waiting(struct hq_cluster_async *c)
{
    struct req *r = c->wait_head;
    c->wait_head = c->wait_tail = NULL;
    c->nwaiting = 0;
    uint64_t now = uv_now(c->loop);
    while (r) {
        struct req *next = r->next;
        int rc = HQ_EAGAIN;
        if (!c->closing && now < r->deadline)
            rc = req_send(c, r);
        if (rc == HQ_EAGAIN && !c->closing && now < r->deadline)
            wait_push(c, r);
        else if (rc != 0)
            req_finish(r, NULL, NULL); /* may call back into close: checked above */
        r = next;
    }
}

static void on_tick(uv_timer_t *t)
{
    struct hq_cluster_async *c = container_of(t, struct hq_cluster_async, tick);
    refresh_maybe_start(c);
    flush_waiting(c);
    if (!c->closing && (c->nwaiting > 0 || c->refresh_wanted))
        uv_timer_start(&c->tick, on_tick, TICK_MS, 0);
}

/* ---- Public API ------------------------------------------------------------ */

struct hq_cluster_async *hq_cluster_async_new(uv_loop_t *loop, const struct hq_redis_url *u,
                                              const char *name, hq_redis_state_cb state_cb,
                                              void *arg)
{
    if (u->nseeds <= 0 || u->db != 0)
        return NULL; /* the URL parser refuses both already */
    struct hq_cluster_async *c = hq_calloc(1, sizeof(*c));
    c->loop = loop;
    c->url = *u;
    snprintf(c->name, sizeof(c->name), "%s", name ? name : "client");
    c->state_cb = state_cb;
    c->arg = arg;
    c->map = hq_malloc(sizeof(*c->map));
    c->scratch = hq_malloc(sizeof(*c->scratch));
    uv_timer_init(loop, &c->tick);
    c->open = 1; /* the tick */
    /* Seed clients connect from the loop (hq_redis_client_new defers it), so
     * nothing calls back before the caller has the pointer. */
    c->refresh_wanted = 1;
    seeds_open(c);
    return c;
}

int hq_cluster_async_ready(struct hq_cluster_async *c, unsigned slot)
{
    if (c->closing || slot >= HQ_SLOTS)
        return 0;
    if (!c->have_map) {
        refresh_request(c);
        return 0;
    }
    int o = c->map->owner[slot];
    if (o < 0) {
        refresh_request(c); /* rate-limited: the slot may have been assigned since */
        return 0;
    }
    struct anode *n = node_get(c, c->map->node[o].host, c->map->node[o].port);
    if (!n)
        return 0;
    if (hq_redis_client_ready(n->cli))
        return 1;
    if (n->lost)
        refresh_request(c);
    return 0;
}

static int submit(struct hq_cluster_async *c, struct req *r)
{
    if (req_send(c, r) != 0) {
        req_free(r);
        return HQ_EAGAIN;
    }
    c->pending++;
    return 0;
}

int hq_cluster_async_command(struct hq_cluster_async *c, unsigned slot, hq_redis_reply_cb cb,
                             void *arg, int timeout_ms, int argc, const char **argv,
                             const size_t *lens)
{
    if (!hq_cluster_async_ready(c, slot))
        return HQ_EAGAIN;
    struct req *r = req_new(c, slot, cb, arg, argc, argv, lens);
    r->timeout_ms = timeout_ms;
    return submit(c, r);
}

int hq_cluster_async_script(struct hq_cluster_async *c, unsigned slot,
                            const struct hq_redis_script *s, hq_redis_reply_cb cb, void *arg,
                            int numkeys, int argc, const char **argv, const size_t *lens)
{
    if (!hq_cluster_async_ready(c, slot))
        return HQ_EAGAIN;
    struct req *r = req_new(c, slot, cb, arg, argc, argv, lens);
    r->is_script = 1;
    r->script = *s;
    r->numkeys = numkeys;
    return submit(c, r);
}

int hq_cluster_async_pending(const struct hq_cluster_async *c)
{
    return c->pending;
}

static void on_tick_closed(uv_handle_t *h)
{
    struct hq_cluster_async *c = container_of((uv_timer_t *)h, struct hq_cluster_async, tick);
    c->open--;
    maybe_finish(c);
}

void hq_cluster_async_close(struct hq_cluster_async *c, void (*on_closed)(void *arg), void *arg)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->on_closed = on_closed;
    c->closed_arg = arg;
    uv_timer_stop(&c->tick);
    flush_waiting(c); /* closing: every waiting request gets NULL */
    seeds_close(c);
    for (int i = 0; i < HQ_CLUSTER_NODES_MAX; i++) {
        if (c->node[i]) {
            anode_close(c->node[i]);
            c->node[i] = NULL;
        }
    }
    /* Requests sent get NULL from their clients' close; on_closed runs after
     * the last client's and the tick's close callbacks. */
    uv_close((uv_handle_t *)&c->tick, on_tick_closed);
}

unsigned long hq_cluster_async_reconnects(const struct hq_cluster_async *c)
{
    unsigned long n = c->reconnects_gone;
    for (int i = 0; i < HQ_CLUSTER_NODES_MAX; i++)
        if (c->node[i])
            n += hq_redis_client_reconnects(c->node[i]->cli);
    for (int i = 0; i < HQ_SENTINELS_MAX; i++)
        if (c->seed[i])
            n += hq_redis_client_reconnects(c->seed[i]->cli);
    return n;
}
