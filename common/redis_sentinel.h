/* Sentinel client rules that need no I/O: reading the answer of SENTINEL
 * get-master-addr-by-name, reading ROLE, and keeping the sentinel that
 * answered first in line. The I/O (asking each sentinel with a short
 * timeout) is hq_redis_sentinel_resolve in common/redis_sync.c, used by the
 * blocking and the async client alike. */
#ifndef HQ_COMMON_REDIS_SENTINEL_H
#define HQ_COMMON_REDIS_SENTINEL_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "common/err.h"
#include "common/redis_url.h"

/* Per sentinel, for connect and for the command: short, because a dead
 * sentinel must not hold up asking the next one. */
#define HQ_SENTINEL_TIMEOUT_MS 500
/* Data node in sentinel mode: connect + handshake deadline. Shorter than
 * HQ_REDIS_CONNECT_TIMEOUT_MS because a stopped primary's kernel still
 * accepts, and every second spent on it delays reaching the promoted one. */
#define HQ_SENTINEL_NODE_CONNECT_MS 2000
/* An async connection in sentinel mode (no BLOCK read pending) sends ROLE this often and drops
 * the node when it is not master or does not answer within
 * HQ_SENTINEL_ROLE_TIMEOUT_MS: a stopped or demoted primary is noticed in
 * about 3 s instead of at the next command's 10 s deadline. */
#define HQ_SENTINEL_ROLE_EVERY_MS   1000
#define HQ_SENTINEL_ROLE_TIMEOUT_MS 2000

/* Reads the reply to SENTINEL get-master-addr-by-name (r may be NULL: I/O
 * failure). On success fills host (n bytes) and [out] port and returns 0; else
 * HQ_EREDIS with err naming the cause ("does not know master 'm'"). */
int hq_sentinel_parse_master_addr(const redisReply *r, const char *master, char *host, size_t n,
                                  int *port, struct hq_err *err) HQ_MUST_CHECK;

/* 0 when the ROLE reply says "master"; else HQ_EREDIS with err saying what
 * the node is ("is a replica (slave), not the master"). */
int hq_sentinel_check_role(const redisReply *r, struct hq_err *err) HQ_MUST_CHECK;

/* Moves sentinel i to the front, keeping the others' order: the one that
 * answered is asked first next time (the Sentinel client guidelines). */
void hq_sentinel_promote(struct hq_redis_url *u, int i);

/* 1 when an error reply means "this connection is to a replica" (-READONLY):
 * the client must drop it and resolve the master again. */
int hq_sentinel_is_readonly(const redisReply *r);

#endif
