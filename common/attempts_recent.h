/* An endpoint's most recent attempt records (blocking), for the console's
 * endpoint page (GET /v1/endpoints/{id}/attempts). The records live in the
 * shared attempt buckets (<p>:attempts:<start ms>, hashes event id -> that
 * event's records; attempts.h), which have no per-endpoint index: this walks
 * every partition's buckets newest first and HSCANs them, reading at most a
 * fixed number of fields, so a request costs the same whatever the data. */
#ifndef HQ_COMMON_ATTEMPTS_RECENT_H
#define HQ_COMMON_ATTEMPTS_RECENT_H

#include <jansson.h>
#include <stddef.h>

#include "common/err.h"

struct hq_redis_conn;
struct hq_layout;

/* What hq_attempts_recent found. */
struct hq_recent {
    json_t *items;  /* array, newest first (at_ms), at most limit: each the record's
                     * fields with "event_id" first; owned: json_decref */
    int complete;   /* 0 when the budget ended the scan before the newest limit
                     * records were known (items holds the newest of what was read) */
    size_t scanned; /* bucket fields read */
};

/* The newest limit (1-HQ_RECENT_ATTEMPTS_MAX) attempt records of endpoint_id
 * in every partition of L. Buckets are taken newest start first; the buckets
 * of one start (one per partition, the same time span) are HSCANned in turn,
 * one reply each, so the budget is shared. Once all of one start are read and
 * limit records matched, older buckets are left (a record is in the bucket of
 * when it was written, after its attempt ended: a slow attempt may sit one
 * bucket later than a quicker newer one's; the order is by at_ms among the
 * records read). budget bounds the fields read (HQ_RECENT_SCAN_BUDGET for the
 * API), checked before each HSCAN (COUNT 1000), so passed by one reply at most.
 * When it ends the scan inside a bucket, the records are the newest of those
 * read, in the hash's order, not the endpoint's newest. Records of the lists
 * older workers wrote (<p>:att:<event id>) are not read. A record's line
 * must parse as a JSON object whose endpoint_id is endpoint_id exactly.
 * 0, or HQ_EREDIS / HQ_EINVAL with err (out->items NULL). */
int hq_attempts_recent(struct hq_redis_conn *c, const struct hq_layout *L, const char *endpoint_id,
                       int limit, size_t budget, struct hq_recent *out, struct hq_err *err);

#endif
