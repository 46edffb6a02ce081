/* redis:// and unix:// URL parsing (pure).
 *   redis://[[user]:password@]host[:port][/db]     host may be [v6]
 *   unix:///path/redis.sock[?db=N&password=P]
 *   redis-sentinel://[[user]:password@]h1:p1,h2:p2,.../<master-name>[/db]
 *     (sentinel port defaults to 26379; the password is the data nodes')
 *   redis-cluster://[[user]:password@]h1:p1,h2:p2,...[/0]
 *     (seed nodes of a Redis Cluster, port default 6379; db 0 only)
 * The password is never printed: hq_redis_url_describe() gives "host:port" or
 * "unix:/path" for messages. */
#ifndef HQ_COMMON_REDIS_URL_H
#define HQ_COMMON_REDIS_URL_H

#include "common/err.h"

#define HQ_SENTINELS_MAX     8 /* sentinel addresses in one URL: a quorum rarely exceeds 5 */
#define HQ_SENTINEL_PORT     26379
#define HQ_SENTINEL_NAME_MAX 64 /* master name, [A-Za-z0-9._-] */

struct hq_sentinel_addr {
    char host[256]; /* brackets removed */
    int port;
};

struct hq_redis_url {
    char host[256];     /* TCP host, brackets removed; "" for unix */
    int port;           /* TCP port, default 6379 */
    char path[256];     /* unix socket path; "" for TCP */
    char user[128];     /* ACL user ("" = default) */
    char password[256]; /* "" = no AUTH; secret: never log */
    int db;             /* SELECT db, default 0 */
    /* Sentinel mode (nsentinels > 0): host/port are empty until resolved;
     * the resolver fills them with the master's address on each connect. */
    int nsentinels;                                      /* 0 = not a sentinel URL */
    struct hq_sentinel_addr sentinels[HQ_SENTINELS_MAX]; /* asked in this order */
    char master[HQ_SENTINEL_NAME_MAX + 1];               /* the monitored master's name */
    /* Cluster mode (cluster = 1): seeds[] are the nodes given; host/port are
     * seeds[0] (a node to start with); the slot map says where keys live. */
    int cluster;
    int nseeds;
    struct hq_sentinel_addr seeds[HQ_SENTINELS_MAX];
};

int hq_redis_url_parse(const char *url, struct hq_redis_url *out, struct hq_err *err) HQ_MUST_CHECK;
/* "127.0.0.1:6379" or "unix:/run/redis.sock", for messages; a sentinel URL
 * not yet resolved gives its sentinel list, resolved its master's address. */
const char *hq_redis_url_describe(const struct hq_redis_url *u, char *buf, size_t n);
/* "h1:26379,h2:26379": the sentinel list in its current order. */
const char *hq_sentinel_list_describe(const struct hq_redis_url *u, char *buf, size_t n);

#endif
