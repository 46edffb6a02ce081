/* Reading an event's attempt records (blocking). The worker writes them in
 * common/scripts/record_outcomes.lua, into per-partition time buckets
 * (<p>:attempts:<start ms>, listed in <p>:attempts); workers before that
 * wrote one list per event (<p>:att:<event id>), still read here. Used by
 * `hookq event show` and by the tests, so both read records one way. */
#ifndef HQ_COMMON_ATTEMPTS_H
#define HQ_COMMON_ATTEMPTS_H

#include <hiredis/hiredis.h>

#include "common/err.h"

/* The records of event_id in the partition whose key base is base, on node
 * (the Redis serving that partition's slot): an array reply of JSON strings,
 * oldest first, the last HQ_ATTEMPTS_KEPT_MAX. Caller frees the reply with
 * freeReplyObject(); NULL with err set on an I/O or Redis error. */
redisReply *hq_attempts_read(redisContext *node, const char *base, const char *event_id,
                             struct hq_err *err);

struct hq_redis_conn;
struct hq_layout;
/* The records of event id in a deployment (hq_attempts_read), from every
 * partition, merged by time ("at_ms"), the last HQ_ATTEMPTS_KEPT_MAX: a
 * batch retried whole writes its members' later records in the batch's
 * partition; events produced before a migration to more partitions kept
 * theirs in partition 0; a producer may have chosen another. NULL with err.
 * `hookq event show` and `hookq api` read records through it. */
redisReply *hq_attempts_lookup(struct hq_redis_conn *c, const struct hq_layout *L, const char *id,
                               struct hq_err *err);

#endif
