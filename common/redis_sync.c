/* Blocking Redis helpers. See redis_sync.h. */
#include "common/redis_sync.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "common/redis_sentinel.h"

redisReply *hq_redis_check(redisContext *c, redisReply *r, struct hq_err *err)
{
    if (!r) {
        hq_err_set(err, HQ_EREDIS, "redis: %s", c->errstr[0] ? c->errstr : "connection lost");
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        hq_err_set(err, HQ_EREDIS, "redis: %.*s", (int)r->len, r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

int hq_redis_sentinel_resolve(struct hq_redis_url *u, struct hq_err *err)
{
    struct timeval tv = {HQ_SENTINEL_TIMEOUT_MS / 1000, (HQ_SENTINEL_TIMEOUT_MS % 1000) * 1000};
    struct hq_err last = {0};
    for (int i = 0; i < u->nsentinels; i++) {
        const struct hq_sentinel_addr *a = &u->sentinels[i];
        redisContext *c = redisConnectWithTimeout(a->host, a->port, tv);
        if (!c || c->err) {
            hq_err_set(&last, HQ_EREDIS, "%s:%d: %s", a->host, a->port,
                       c ? c->errstr : "out of memory");
            if (c)
                redisFree(c);
            continue;
        }
        redisSetTimeout(c, tv);
        /* Sentinels take no data-node password: the URL's is for the nodes. */
        redisReply *r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", u->master);
        struct hq_err e = {0};
        char host[sizeof(u->host)];
        int port = 0;
        int rc = hq_sentinel_parse_master_addr(r, u->master, host, sizeof(host), &port, &e);
        if (!r)
            hq_err_set(&e, HQ_EREDIS, "%s", c->errstr[0] ? c->errstr : "no answer");
        if (r)
            freeReplyObject(r);
        redisFree(c);
        if (rc != 0) {
            hq_err_set(&last, HQ_EREDIS, "%s:%d: %s", a->host, a->port, e.msg);
            continue;
        }
        memcpy(u->host, host, sizeof(host));
        u->port = port;
        hq_sentinel_promote(u, i);
        return 0;
    }
    char list[300];
    hq_sentinel_list_describe(u, list, sizeof(list));
    return hq_err_set(err, HQ_EREDIS, "redis: no sentinel of %s knows master '%s': %s", list,
                      u->master, last.msg);
}

redisContext *hq_redis_connect(const char *url, int timeout_ms, struct hq_err *err)
{
    struct hq_redis_url u;
    if (hq_redis_url_parse(url, &u, err) != 0)
        return NULL;
    if (u.nsentinels > 0 && hq_redis_sentinel_resolve(&u, err) != 0)
        return NULL;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = u.path[0] ? redisConnectUnixWithTimeout(u.path, tv)
                                : redisConnectWithTimeout(u.host, u.port, tv);
    char where[300];
    hq_redis_url_describe(&u, where, sizeof(where));
    if (!c) {
        hq_err_set(err, HQ_ENOMEM, "redis: cannot reach %s: out of memory", where);
        return NULL;
    }
    if (c->err) {
        hq_err_set(err, HQ_EREDIS, "redis: cannot reach %s: %s", where, c->errstr);
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    redisReply *r = NULL;
    if (u.password[0]) {
        if (u.user[0])
            r = redisCommand(c, "AUTH %s %s", u.user, u.password);
        else
            r = redisCommand(c, "AUTH %s", u.password);
        r = hq_redis_check(c, r, err);
        if (!r) {
            hq_err_prefix(err, where);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(r);
    }
    if (u.db) {
        r = hq_redis_check(c, redisCommand(c, "SELECT %d", u.db), err);
        if (!r) {
            hq_err_prefix(err, where);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(r);
    }
    /* A ping proves the server answers (a TCP accept alone does not). */
    r = hq_redis_check(c, redisCommand(c, "PING"), err);
    if (!r) {
        hq_err_prefix(err, where);
        redisFree(c);
        return NULL;
    }
    freeReplyObject(r);
    /* The sentinels' answer may be stale (a failover in progress, a demoted
     * node not yet reconfigured): only a node that says master takes writes. */
    if (u.nsentinels > 0) {
        r = redisCommand(c, "ROLE");
        int rc = hq_sentinel_check_role(r, err);
        if (r)
            freeReplyObject(r);
        if (rc != 0) {
            hq_err_prefix(err, where);
            hq_err_prefix(err, "redis: sentinel master");
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

redisReply *hq_redis_cmd(redisContext *c, struct hq_err *err, int argc, const char **argv,
                         const size_t *lens)
{
    return hq_redis_check(c, redisCommandArgv(c, argc, argv, lens), err);
}

redisReply *hq_redis_cmdf(redisContext *c, struct hq_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    return hq_redis_check(c, r, err);
}
