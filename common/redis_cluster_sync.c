/* Redis Cluster routing, blocking half: the contract is hq_redis_conn's
 * (redis_conn.h), for a redis-cluster:// URL.
 *
 * State: the slot map (CLUSTER SLOTS of the last node that answered) and a
 * table of connections keyed by "host:port", connected on first use. The map
 * names primaries by address, so a connection outlives a refresh that keeps
 * its node, and is dropped by one that does not (the table stays bounded by
 * the map's HQ_CLUSTER_NODES_MAX).
 *
 * libhookq compiles this file: no abort(), no hq_malloc (it aborts on OOM), no
 * libuv, no logging; every failure is an error return with a one-line message.
 * Not thread-safe (one caller thread, as hq_redis_conn). */
#include "common/redis_cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cluster_slots.h"
#include "common/redis_sync.h"

/* Redirects one command follows before giving up: a slot settles after one
 * MOVED (or an ASK, then a MOVED once the migration ends); more means the
 * cluster is reconfiguring faster than we can follow, and the caller's usual
 * back-off is the better retry. */
#define REDIRECTS_MAX 5

struct sync_conn {
    char host[HQ_CLUSTER_HOST_MAX];
    int port;
    redisContext *ctx; /* owned; NULL = slot free */
};

struct hq_cluster_sync {
    struct hq_redis_url url;  /* copy: seeds and the user/password for AUTH (secret) */
    int timeout_ms;           /* connect and per-command timeout of every node */
    struct hq_slot_map *map;  /* owned, current; never NULL after open */
    struct hq_slot_map *next; /* owned scratch for a refresh (so a bad reply leaves map intact) */
    int stale;                /* a node connection failed: refresh before the next command */
    struct sync_conn conn[HQ_CLUSTER_NODES_MAX];
};

static struct sync_conn *conn_find(struct hq_cluster_sync *c, const char *host, int port)
{
    for (int i = 0; i < HQ_CLUSTER_NODES_MAX; i++)
        if (c->conn[i].ctx && c->conn[i].port == port && strcmp(c->conn[i].host, host) == 0)
            return &c->conn[i];
    return NULL;
}

static void conn_drop(struct sync_conn *k)
{
    if (k->ctx)
        redisFree(k->ctx);
    k->ctx = NULL;
}

/* A connected, authenticated context for host:port (db 0: clusters have no
 * other). NULL with err "redis: cannot reach host:port: <cause>". */
static redisContext *node_connect(const struct hq_cluster_sync *c, const char *host, int port,
                                  struct hq_err *err)
{
    struct timeval tv = {c->timeout_ms / 1000, (c->timeout_ms % 1000) * 1000};
    redisContext *ctx = redisConnectWithTimeout(host, port, tv);
    if (!ctx) {
        hq_err_set(err, HQ_ENOMEM, "redis: cannot reach %s:%d: out of memory", host, port);
        return NULL;
    }
    if (ctx->err) {
        hq_err_set(err, HQ_EREDIS, "redis: cannot reach %s:%d: %s", host, port, ctx->errstr);
        redisFree(ctx);
        return NULL;
    }
    /* Every later command gets the same bound: a stuck node must not hang a CLI. */
    redisSetTimeout(ctx, tv);
    if (c->url.password[0]) {
        redisReply *r;
        if (c->url.user[0])
            r = redisCommand(ctx, "AUTH %s %s", c->url.user, c->url.password);
        else
            r = redisCommand(ctx, "AUTH %s", c->url.password);
        r = hq_redis_check(ctx, r, err);
        if (!r) {
            char where[HQ_CLUSTER_HOST_MAX + 16];
            snprintf(where, sizeof(where), "%s:%d", host, port);
            hq_err_prefix(err, where);
            redisFree(ctx);
            return NULL;
        }
        freeReplyObject(r);
    }
    return ctx;
}

/* The table's connection to host:port, connecting now if needed. */
static redisContext *conn_get(struct hq_cluster_sync *c, const char *host, int port,
                              struct hq_err *err)
{
    struct sync_conn *k = conn_find(c, host, port);
    if (k)
        return k->ctx;
    struct sync_conn *slot = NULL;
    for (int i = 0; i < HQ_CLUSTER_NODES_MAX && !slot; i++)
        if (!c->conn[i].ctx)
            slot = &c->conn[i];
    if (!slot) {
        /* Only reachable through ASK/MOVED targets outside the map: drop the
         * first connection rather than refuse (it reconnects on demand). */
        slot = &c->conn[0];
        conn_drop(slot);
    }
    redisContext *ctx = node_connect(c, host, port, err);
    if (!ctx)
        return NULL;
    snprintf(slot->host, sizeof(slot->host), "%s", host);
    slot->port = port;
    slot->ctx = ctx;
    return ctx;
}

/* Drops the connections to nodes the map does not name as primaries: a
 * demoted or removed node; keeps the table bounded by the map. */
static void conn_prune(struct hq_cluster_sync *c)
{
    for (int i = 0; i < HQ_CLUSTER_NODES_MAX; i++) {
        struct sync_conn *k = &c->conn[i];
        if (!k->ctx)
            continue;
        int keep = 0;
        for (int n = 0; n < c->map->nnodes && !keep; n++)
            keep = c->map->node[n].port == k->port && strcmp(c->map->node[n].host, k->host) == 0;
        if (!keep)
            conn_drop(k);
    }
}

/* Asks host:port for CLUSTER SLOTS into c->next. 0, or an error in err (the
 * node's connection is dropped when the failure was I/O). */
static int slots_from(struct hq_cluster_sync *c, const char *host, int port, struct hq_err *err)
{
    redisContext *ctx = conn_get(c, host, port, err);
    if (!ctx)
        return HQ_EREDIS;
    redisReply *r = redisCommand(ctx, "CLUSTER SLOTS");
    if (!r) {
        hq_err_set(err, HQ_EREDIS, "redis: %s:%d: %s", host, port,
                   ctx->errstr[0] ? ctx->errstr : "connection lost");
        conn_drop(conn_find(c, host, port));
        return HQ_EREDIS;
    }
    int rc = hq_cluster_slots_parse(r, c->next, err);
    freeReplyObject(r);
    if (rc != 0) {
        char where[HQ_CLUSTER_HOST_MAX + 32];
        snprintf(where, sizeof(where), "redis: CLUSTER SLOTS of %s:%d", host, port);
        hq_err_prefix(err, where);
        return rc;
    }
    if (c->next->covered == 0)
        return hq_err_set(err, HQ_EREDIS, "redis: cluster node %s:%d serves no slot", host, port);
    /* "" means "the node you asked" (a node that never met another). */
    for (int n = 0; n < c->next->nnodes; n++)
        if (!c->next->node[n].host[0])
            snprintf(c->next->node[n].host, sizeof(c->next->node[n].host), "%s", host);
    struct hq_slot_map *t = c->map;
    c->map = c->next;
    c->next = t;
    c->stale = 0;
    return 0;
}

/* Re-reads the map from the first node that answers: the primaries we know
 * (the likeliest to be up to date), then the seeds. Bounded: one attempt per
 * address, each within timeout_ms to connect and to answer. */
static int refresh(struct hq_cluster_sync *c, int try_known, struct hq_err *err)
{
    struct hq_err last = {0};
    if (try_known) {
        /* Copy: a successful slots_from swaps c->map under the loop. */
        int n = c->map->nnodes;
        for (int i = 0; i < n; i++) {
            char host[HQ_CLUSTER_HOST_MAX];
            snprintf(host, sizeof(host), "%s", c->map->node[i].host);
            if (slots_from(c, host, c->map->node[i].port, &last) == 0) {
                conn_prune(c);
                return 0;
            }
        }
    }
    for (int i = 0; i < c->url.nseeds; i++) {
        if (slots_from(c, c->url.seeds[i].host, c->url.seeds[i].port, &last) == 0) {
            conn_prune(c);
            return 0;
        }
    }
    return hq_err_set(err, last.code ? last.code : HQ_EREDIS,
                      "redis: no node of the cluster answered CLUSTER SLOTS: %s", last.msg);
}

struct hq_cluster_sync *hq_cluster_sync_open(const struct hq_redis_url *u, int timeout_ms,
                                             struct hq_err *err)
{
    if (u->db != 0) { /* the URL parser refuses it already; a cluster has db 0 only */
        hq_err_set(err, HQ_EINVAL, "--redis-url: a redis cluster has only db 0");
        return NULL;
    }
    if (u->nseeds <= 0) {
        hq_err_set(err, HQ_EINVAL, "--redis-url: redis-cluster:// needs at least one host:port");
        return NULL;
    }
    struct hq_cluster_sync *c = calloc(1, sizeof(*c));
    if (c) {
        c->map = malloc(sizeof(*c->map));
        c->next = malloc(sizeof(*c->next));
    }
    if (!c || !c->map || !c->next) {
        hq_cluster_sync_free(c);
        hq_err_set(err, HQ_ENOMEM, "redis: out of memory");
        return NULL;
    }
    c->url = *u;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
    c->map->nnodes = 0;
    if (refresh(c, 0, err) != 0) {
        hq_cluster_sync_free(c);
        return NULL;
    }
    return c;
}

void hq_cluster_sync_free(struct hq_cluster_sync *c)
{
    if (!c)
        return;
    for (int i = 0; i < HQ_CLUSTER_NODES_MAX; i++)
        conn_drop(&c->conn[i]);
    free(c->map);
    free(c->next);
    /* The copy holds the password: do not leave it in freed memory. */
    memset(&c->url, 0, sizeof(c->url));
    free(c);
}

int hq_cluster_sync_primaries(const struct hq_cluster_sync *c)
{
    return c->map->nnodes;
}

/* The owner of slot per the map, or NULL with the "no node serves" error. */
static const struct hq_cluster_node *owner_of(const struct hq_cluster_sync *c, unsigned slot,
                                              struct hq_err *err)
{
    if (slot >= HQ_SLOTS) {
        hq_err_set(err, HQ_EINVAL, "redis: slot %u out of range", slot);
        return NULL;
    }
    int o = c->map->owner[slot];
    if (o < 0) {
        char gaps[160];
        hq_slot_map_gaps(c->map, gaps, sizeof(gaps));
        hq_err_set(err, HQ_EREDIS, "redis: no node serves slot %u (uncovered: %s)", slot, gaps);
        return NULL;
    }
    return &c->map->node[o];
}

redisContext *hq_cluster_sync_node(struct hq_cluster_sync *c, unsigned slot, struct hq_err *err)
{
    if (c->stale)
        (void)refresh(c, 1, NULL); /* best effort: the old map still routes */
    const struct hq_cluster_node *n = owner_of(c, slot, err);
    if (!n) {
        c->stale = 1; /* the slot may be assigned again: re-read the map next time */
        return NULL;
    }
    char host[HQ_CLUSTER_HOST_MAX];
    snprintf(host, sizeof(host), "%s", n->host);
    redisContext *ctx = conn_get(c, host, n->port, err);
    if (!ctx)
        c->stale = 1; /* the owner is unreachable: a failover may move its slots */
    return ctx;
}

redisReply *hq_cluster_sync_cmd(struct hq_cluster_sync *c, unsigned slot, struct hq_err *err,
                                int argc, const char **argv, const size_t *lens)
{
    if (c->stale)
        (void)refresh(c, 1, NULL); /* best effort: the old map still routes */
    char host[HQ_CLUSTER_HOST_MAX];
    int port = 0;
    int asking = 0; /* the next send goes to host:port after ASKING */
    char last[200] = "";
    for (int hop = 0; hop <= REDIRECTS_MAX; hop++) {
        if (!asking) {
            const struct hq_cluster_node *n = owner_of(c, slot, err);
            if (!n) {
                /* Uncovered in our map: without a refresh it would stay so
                 * after the slot is assigned again (nothing answers MOVED). */
                c->stale = 1;
                return NULL;
            }
            snprintf(host, sizeof(host), "%s", n->host);
            port = n->port;
        }
        redisContext *ctx = conn_get(c, host, port, err);
        if (!ctx) {
            c->stale = 1; /* unreachable owner: a failover may move its slots */
            return NULL;
        }
        redisReply *r = NULL;
        if (asking) {
            /* ASKING is valid for the next command only: pipeline the pair. */
            redisAppendCommand(ctx, "ASKING");
            redisAppendCommandArgv(ctx, argc, argv, lens);
            redisReply *a = NULL;
            if (redisGetReply(ctx, (void **)&a) == REDIS_OK && a) {
                freeReplyObject(a);
                if (redisGetReply(ctx, (void **)&r) != REDIS_OK)
                    r = NULL;
            }
            asking = 0;
        } else {
            r = redisCommandArgv(ctx, argc, argv, lens);
        }
        if (!r) {
            hq_err_set(err, HQ_EREDIS, "redis: %s:%d: %s", host, port,
                       ctx->errstr[0] ? ctx->errstr : "connection lost");
            /* hiredis cannot use a context after an I/O error: reconnect next time. */
            conn_drop(conn_find(c, host, port));
            c->stale = 1;
            return NULL;
        }
        struct hq_redirect rd;
        enum hq_redirect_kind kind = r->type == REDIS_REPLY_ERROR
                                         ? hq_redirect_parse(r->str, r->len, &rd)
                                         : HQ_REDIRECT_NONE;
        if ((kind != HQ_REDIRECT_MOVED && kind != HQ_REDIRECT_ASK) || hop == REDIRECTS_MAX)
            return hq_redis_check(ctx, r, err);
        snprintf(last, sizeof(last), "%.*s", (int)r->len, r->str);
        freeReplyObject(r);
        if (rd.host[0]) /* "" = the node that answered */
            snprintf(host, sizeof(host), "%s", rd.host);
        port = rd.port;
        if (kind == HQ_REDIRECT_ASK) {
            asking = 1;
            continue;
        }
        /* MOVED: the slot changed hands for good. Re-read the whole map (a
         * failover moved every slot of the old primary, not just this one);
         * the MOVED target wins if the refresh fails or lags. */
        (void)refresh(c, 1, NULL);
        if (hq_slot_map_move(c->map, slot, host, port) != 0) {
            hq_err_set(err, HQ_ETOOBIG, "redis: %s: more than %d primaries", last,
                       HQ_CLUSTER_NODES_MAX);
            return NULL;
        }
    }
    /* Not reached: the last hop returns the redirect itself as the error. */
    hq_err_set(err, HQ_EREDIS, "redis: slot %u: more than %d redirects (last: %s)", slot,
               REDIRECTS_MAX, last);
    return NULL;
}

int hq_cluster_sync_refresh(struct hq_cluster_sync *c, struct hq_err *err)
{
    return refresh(c, 1, err);
}

const char *hq_cluster_sync_node_name(const struct hq_cluster_sync *c, unsigned slot, char *buf,
                                      size_t n)
{
    int o = slot < HQ_SLOTS ? c->map->owner[slot] : -1;
    if (o < 0)
        snprintf(buf, n, "-");
    else if (strchr(c->map->node[o].host, ':'))
        snprintf(buf, n, "[%s]:%d", c->map->node[o].host, c->map->node[o].port);
    else
        snprintf(buf, n, "%s:%d", c->map->node[o].host, c->map->node[o].port);
    return buf;
}
