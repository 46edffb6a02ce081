/* An endpoint's circuit breaker as `hookq endpoint enable` and `hookq api`'s
 * enable reset it (blocking; the breaker itself is common/scripts/health.lua's). */
#ifndef HQ_COMMON_ENDPOINT_BREAKER_H
#define HQ_COMMON_ENDPOINT_BREAKER_H

#include "common/endpoint.h"
#include "common/err.h"

struct hq_redis_conn;
struct hq_layout;

/* After enabling: forgets the breaker in the endpoint's home partition and
 * emits hookq.endpoint.enabled (health.lua mode "e"). The registry is written
 * first: a failure here leaves it enabled, and enabling again redoes this. */
int hq_endpoint_breaker_reset(struct hq_redis_conn *conn, const struct hq_layout *L,
                              const struct hq_endpoint *e, struct hq_err *err) HQ_MUST_CHECK;

#endif
