/* redis:// and unix:// URL parsing (pure).
 *   redis://[[user]:password@]host[:port][/db]     host may be [v6]
 *   unix:///path/redis.sock[?db=N&password=P]
 * The password is never printed: hq_redis_url_describe() gives "host:port" or
 * "unix:/path" for messages. */
#ifndef HQ_COMMON_REDIS_URL_H
#define HQ_COMMON_REDIS_URL_H

#include "common/err.h"

struct hq_redis_url {
    char host[256];     /* TCP host, brackets removed; "" for unix */
    int port;           /* TCP port, default 6379 */
    char path[256];     /* unix socket path; "" for TCP */
    char user[128];     /* ACL user ("" = default) */
    char password[256]; /* "" = no AUTH; secret: never log */
    int db;             /* SELECT db, default 0 */
};

int hq_redis_url_parse(const char *url, struct hq_redis_url *out, struct hq_err *err) HQ_MUST_CHECK;
/* "127.0.0.1:6379" or "unix:/run/redis.sock", for messages. */
const char *hq_redis_url_describe(const struct hq_redis_url *u, char *buf, size_t n);

#endif
