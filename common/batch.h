/* Batched delivery (docs/batching.md): an endpoint's --batch setting, its
 * syntax and bounds, and the batch's id, pure (no I/O).
 *
 * Stored in the endpoint hash as field "batch" = "max=N,wait=MSms,bytes=B"
 * ("" or absent: off). A batch holds up to max events collected for at most
 * wait_ms and at most bytes of body; one POST carries them as a JSON array. */
#ifndef HQ_COMMON_BATCH_H
#define HQ_COMMON_BATCH_H

#include <stddef.h>

#include "common/err.h"

#define HQ_BATCH_MAX_EVENTS   1000 /* events per batch: bounds what a worker holds per endpoint */
#define HQ_BATCH_WAIT_DEFAULT 100  /* ms collected at most when wait= is not given */
/* wait= ceiling: entries stay unacknowledged while collected, and the worker's
 * --claim-idle is at least its total timeout + 5 s (cmd_worker.c), so a batch
 * waiting at most 2 s and then sent is never reclaimed while it is live. */
#define HQ_BATCH_WAIT_MAX_MS   2000
#define HQ_BATCH_BYTES_DEFAULT (1024 * 1024)      /* body bytes at most when bytes= is not given */
#define HQ_BATCH_BYTES_MIN     1024               /* smaller is one event a batch */
#define HQ_BATCH_BYTES_MAX     (16 * 1024 * 1024) /* one request body at most */
#define HQ_BATCH_STR_MAX       64                 /* "max=1000,wait=2000ms,bytes=16777216" + NUL */
#define HQ_BATCH_ID_MAX        37                 /* "bat_" + 32 hex digits + NUL */

struct hq_batch_cfg {
    int max; /* events per batch; 0 = batching off */
    long long wait_ms;
    long long bytes;
};

/* Parses "max=N[,wait=DUR][,bytes=SIZE]" (any order; N 2-HQ_BATCH_MAX_EVENTS,
 * wait 1ms-HQ_BATCH_WAIT_MAX_MS, bytes HQ_BATCH_BYTES_MIN-HQ_BATCH_BYTES_MAX),
 * or "off" / "" for off, into [out] out. HQ_EINVAL with a one-line message
 * naming --batch and the field ("--batch: wait=5s is above 2s ..."). Pure. */
int hq_batch_parse(const char *s, struct hq_batch_cfg *out, struct hq_err *err) HQ_MUST_CHECK;
/* Writes the stored form ("max=100,wait=50ms,bytes=1048576"; "" when off) into out
 * (>= HQ_BATCH_STR_MAX). hq_batch_parse reads it back. */
void hq_batch_format(const struct hq_batch_cfg *c, char *out, size_t n);
/* Validates a decoded setting (the same bounds as the parser). Pure. */
int hq_batch_check(const struct hq_batch_cfg *c, struct hq_err *err) HQ_MUST_CHECK;
/* The batch's id, the webhook-id of its request: "bat_" + the first 16 bytes
 * (hex) of SHA-256(endpoint id NUL first entry's event id NUL n). Stable: the
 * same endpoint, first event and size give the same id. out >= HQ_BATCH_ID_MAX. */
void hq_batch_id(const char *endpoint_id, const char *first_event_id, int n, char *out);

#endif
