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

#endif
