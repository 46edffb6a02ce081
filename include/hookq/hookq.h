/* libhookq: write webhook events to a hookq Redis stream from C.
 *
 *   struct hookq_producer *p;
 *   char err[256], id[64];
 *   if (hookq_producer_connect("redis://127.0.0.1:6379/0", "hookq", &p, err, sizeof(err)) != 0) ...
 *   struct hookq_event ev = {.type = "invoice.paid", .payload = body, .payload_len = n};
 *   if (hookq_produce(p, &ev, id, sizeof(id), err, sizeof(err)) != 0) ...
 *   hookq_producer_free(p);
 *
 * Events are validated before anything is written (type, id, size) and written
 * in the canonical msgpack form (docs/wire-format.md) to the stream of their
 * partition: the deployment's layout (the config hash "<prefix>:{reg}:config";
 * absent on a single Redis: one untagged stream "<prefix>:events") is read at
 * connect, an event with an id goes to partition CRC16(id) mod P, one without
 * to the next partition in turn. The library never
 * aborts: every failure is a negative return and a one-line message in err.
 * A producer handle is not thread-safe; use one per thread. */
#ifndef HOOKQ_HOOKQ_H
#define HOOKQ_HOOKQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HOOKQ_EXPORT __attribute__((visibility("default")))

struct hookq_producer;

/* Return codes (negative); err always carries the one-line reason. */
#define HOOKQ_EINVAL (-1) /* invalid event, URL or prefix: nothing was written */
#define HOOKQ_ENOMEM (-2) /* out of memory: nothing was written */
#define HOOKQ_EREDIS (-3) /* Redis unreachable or an error reply */
#define HOOKQ_ETIMEDOUT                                                                            \
    (-7) /* durable mode: written to the primary, but no replica acknowledged in time; or a        \
          * `hookq migrate` in progress lasted longer than the 30 s a connect waits */

/* Not an error (positive): with hookq_producer_set_report_duplicates on, the
 * event was written but its id had been claimed by a worker within the dedupe
 * window: the workers acknowledge the new entry without delivering it
 * (docs/wire-format.md, "Idempotent events"). err names the id. */
#define HOOKQ_DUPLICATE 1

struct hookq_event {
    const char *type;    /* required: 1-128 chars of [A-Za-z0-9_.:-]; not starting "hookq."
                          * (reserved for hookq's own events) */
    const void *payload; /* required: the exact HTTP body (JSON) */
    size_t payload_len;
    const char *id;       /* optional: 1-128 chars of [A-Za-z0-9_:-]; becomes webhook-id */
    const char *endpoint; /* optional: deliver only to this endpoint id */
    int64_t ts_ms;        /* optional: unix ms; 0 = omitted */
    const char *tenant;   /* optional: 1-64 chars of [A-Za-z0-9_.:-]; only this tenant's
                           * endpoints receive it (added in 0.1: appended, so initialise the
                           * struct with designated initialisers or {0}) */
    const char *key;      /* optional: ordering key, 1-128 chars of [A-Za-z0-9_.:-]; an ordered
                           * endpoint keeps each key's events in order (docs/ordering.md), and
                           * the event goes to the partition of its key (added after 0.1) */
};

/* Connects (5 s timeout), authenticates and selects the db of redis_url
 * (redis://[:password@]host:port/db, unix:///path.sock, redis-sentinel://...,
 * redis-cluster://...) and reads the deployment's layout (waiting up to 30 s
 * while `hookq migrate` runs). prefix NULL = "hookq".
 * Returns 0 and *out (free with hookq_producer_free), or < 0 with err filled. */
HOOKQ_EXPORT int hookq_producer_connect(const char *redis_url, const char *prefix,
                                        struct hookq_producer **out, char *err, size_t err_len);

/* Sets the payload bound (default 1 MiB); must match the workers' --max-payload.
 * Values above 64 MiB (the workers' ceiling) are clamped to 64 MiB. */
HOOKQ_EXPORT void hookq_producer_set_max_payload(struct hookq_producer *p, size_t max);

/* Durable mode: after its writes, each produce call waits up to timeout_ms
 * (WAIT 1 timeout_ms, on each node written to) for one replica to have them,
 * and returns HOOKQ_ETIMEDOUT ("durable: 0 of 1 replicas acknowledged within
 * 1000 ms ...") when none did: the events are on the primary only and a
 * failover now could lose them. timeout_ms <= 0 turns it off (the default). */
HOOKQ_EXPORT void hookq_producer_set_durable(struct hookq_producer *p, int timeout_ms);

/* Reports duplicates: before each write of an event with an id, the same
 * round trip reads whether a worker claimed that id within the dedupe window
 * (one GET per such event); the produce calls then return HOOKQ_DUPLICATE
 * (the events are still written, entry ids filled) instead of 0. A duplicate
 * produced before any worker read the first entry is not reported (the
 * workers still deliver the id once). Off by default. */
HOOKQ_EXPORT void hookq_producer_set_report_duplicates(struct hookq_producer *p, int on);

/* Writes one event; entry_id (may be NULL) receives the stream entry id:
 * "<ms>-<seq>" with one partition, "p<i>/<ms>-<seq>" with several (the form
 * hookq's commands take back).
 * Returns 0, HOOKQ_DUPLICATE (written; see above), or < 0 with err filled
 * (nothing written). */
HOOKQ_EXPORT int hookq_produce(struct hookq_producer *p, const struct hookq_event *ev,
                               char *entry_id, size_t entry_id_len, char *err, size_t err_len);

/* Writes n events pipelined in one round trip. All are validated first: if any
 * is invalid nothing is written and err names its index. ids (may be NULL)
 * is an array of n buffers of ids_len bytes each for the entry ids.
 * Returns 0, HOOKQ_DUPLICATE (all written, some ids were claimed already: err
 * says how many and the first), or < 0 (on a Redis failure some events may
 * have been written; err says how many). */
HOOKQ_EXPORT int hookq_produce_batch(struct hookq_producer *p, const struct hookq_event *evs,
                                     size_t n, char (*ids)[64], char *err, size_t err_len);

HOOKQ_EXPORT void hookq_producer_free(struct hookq_producer *p);

#ifdef __cplusplus
}
#endif

#endif
