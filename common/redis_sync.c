/* Blocking Redis helpers. See redis_sync.h. */
#include "common/redis_sync.h"

#include <stdarg.h>
#include <string.h>
#include <sys/time.h>

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

redisContext *hq_redis_connect(const char *url, int timeout_ms, struct hq_err *err)
{
    struct hq_redis_url u;
    if (hq_redis_url_parse(url, &u, err) != 0)
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
