/* Reading and writing a deployment's layout (common/layout.h) in Redis: the
 * config hash "<prefix>:{reg}:config". Blocking (hq_redis_conn): for the CLI,
 * the scheduler, the producer library and the worker's start-up, never the
 * worker loop. */
#ifndef HQ_COMMON_LAYOUT_STORE_H
#define HQ_COMMON_LAYOUT_STORE_H

#include "common/layout.h"
#include "common/redis_conn.h"

/* Partitions per primary a cluster gets when nothing configured it: two, so a
 * partition's shard of the load is half a node's and a node added later can
 * take whole partitions. */
#define HQ_LAYOUT_PARTS_PER_PRIMARY 2

/* Fills L with the deployment's layout: the config hash when it exists; else,
 * on a single Redis, the untagged layout (P = 1, today's names); on a cluster,
 * a tagged layout of HQ_LAYOUT_PARTS_PER_PRIMARY x primaries partitions,
 * created now (atomically: when several processes start at once, the first
 * config written wins and all read it). Returns 0 or an error naming the
 * key and the problem. While `hookq migrate` runs (the config's field state
 * is "migrating"), returns 0 with L->migrating set: L is the target layout,
 * and the caller waits (hq_layout_wait_migration) or gives up. */
int hq_layout_load(struct hq_redis_conn *c, const char *prefix, struct hq_layout *L,
                   struct hq_err *err) HQ_MUST_CHECK;

/* Writes the config of a tagged layout of P partitions unless one exists.
 * Returns 0 (L is the new layout), or HQ_EEXIST with L filled from the config
 * that exists (and err naming its P), or another error. */
int hq_layout_create(struct hq_redis_conn *c, const char *prefix, unsigned P, struct hq_layout *L,
                     struct hq_err *err) HQ_MUST_CHECK;

/* Polls the config every 250 ms until no migration is in progress, then
 * loads the layout into L (which must be zeroed or loaded: what it
 * held is freed). Gives up after timeout_ms
 * (-1: never) with HQ_ETIMEDOUT. Blocking: for start-up paths only. */
int hq_layout_wait_migration(struct hq_redis_conn *c, const char *prefix, struct hq_layout *L,
                             long timeout_ms, struct hq_err *err) HQ_MUST_CHECK;

/* The config field `state` while a migration runs, and the set where paused
 * untagged workers and schedulers report (SADD "<prefix>:{reg}:migrate:paused"
 * <consumer name>) that they hold nothing any more. */
#define HQ_LAYOUT_STATE_MIGRATING "migrating"
int hq_key_migrate_paused(const char *prefix, char *out, size_t n);

#endif
