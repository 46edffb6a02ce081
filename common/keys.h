/* Every Redis key and group name hookq uses, derived from the prefix. No other
 * file formats a key, so the layout can change in one place. docs/internals/redis-layout.md
 * documents each key's type and contents.
 *
 * All functions write into out (size n) and return the length written, or a
 * negative value when out is too small (which never happens with HQ_KEY_MAX). */
#ifndef HQ_COMMON_KEYS_H
#define HQ_COMMON_KEYS_H

#include <stddef.h>

#define HQ_KEY_MAX 512       /* prefix (<= 64) + a type (<= 128) or ids, with room to spare */
#define HQ_GROUP   "workers" /* the consumer group every worker reads through */

int hq_key_events(const char *prefix, char *out, size_t n); /* <p>:events   stream of events */
int hq_key_dead(const char *prefix, char *out, size_t n);   /* <p>:dead     dead-letter stream */
int hq_key_retries(const char *prefix, char *out,
                   size_t n); /* <p>:retries  stream: the retry lane (due retries) */
int hq_key_retry(const char *prefix, char *out, size_t n); /* <p>:retry    zset member -> due ms */
int hq_key_retry_data(const char *prefix, char *out,
                      size_t n); /* <p>:retry:data hash member -> entry */
int hq_key_endpoints(const char *prefix, char *out,
                     size_t n); /* <p>:endpoints zset id -> created ms */
int hq_key_endpoint(const char *prefix, const char *id, char *out, size_t n); /* <p>:ep:<id> hash */
int hq_key_idx_type(const char *prefix, const char *type, char *out,
                    size_t n); /* <p>:idx:t:<type> set */
int hq_key_idx_prefix(const char *prefix, const char *tprefix, char *out,
                      size_t n); /* <p>:idx:p:<tprefix> set */
int hq_key_idx_tenant(const char *prefix, const char *tenant, char *out,
                      size_t n); /* <p>:idx:tenant:<tenant> set of endpoint ids */
int hq_key_attempts(const char *prefix, const char *event_id, char *out,
                    size_t n); /* <p>:att:<event id> list (written by workers before
                                  attempt buckets; still read) */
/* <p>:attempts zset bucket start ms -> itself: the attempt buckets
 * <p>:attempts:<start ms>, hashes event id -> its records (JSON lines), which
 * record_outcomes.lua names from this key (docs/internals/outcomes.md). */
int hq_key_attempt_index(const char *prefix, char *out, size_t n);
/* <p>:attempts:<start ms> hash event id -> records (the script forms the same
 * name from the index key; this is for readers and hookq migrate). */
int hq_key_attempt_bucket(const char *prefix, const char *start_ms, char *out, size_t n);
/* <H>:rl:<endpoint id> string: the endpoint's rate-limit TAT in us (GCRA,
 * rl_lease.lua), on the base of its home partition H. */
int hq_key_rate_limit(const char *prefix, const char *endpoint_id, char *out, size_t n);
int hq_key_endpoints_version(const char *prefix, char *out,
                             size_t n); /* <p>:endpoints:ver counter */
/* <p>:{H}:cb:<id> hash: the circuit breaker of an endpoint whose home partition
 * (hq_layout_partition_for of its id) has base p; absent while it is healthy
 * (common/scripts/health.lua). */
int hq_key_breaker(const char *prefix, const char *endpoint_id, char *out, size_t n);
/* <p>:{H}:exh:<id> string: the hookq.delivery.exhausted counts of an endpoint
 * not yet emitted and when the last event went out (common/scripts/exhausted.lua),
 * on the base of its home partition H; expires an interval after the last event. */
int hq_key_exhausted(const char *prefix, const char *endpoint_id, char *out, size_t n);
/* <reg>:breakers stream: the breaker transitions (endpoint, state, next probe),
 * capped, which every worker follows so it stops sending to an endpoint
 * another worker saw fail (worker/breaker.c). */
int hq_key_breaker_feed(const char *prefix, char *out, size_t n);
/* <reg>:types zset: event types the workers have seen (score = when last looked
 * up, ms), the newest HQ_TYPES_SEEN_MAX kept; read by /v1/event-types. */
int hq_key_types_seen(const char *prefix, char *out, size_t n);
/* <r>:apikey:<id> hash: an API key of `hookq api` (name scope tenant sha256
 * created_ms), on the registry base; <r>:apikeys zset id -> created ms
 * (common/apikey.h). */
int hq_key_apikey(const char *prefix, const char *id, char *out, size_t n);
int hq_key_apikeys(const char *prefix, char *out, size_t n);
/* <p>:retained stream of delivered events kept for resend (HOOKQ_RETAIN), and
 * <p>:retained:bytes, the byte count it holds (docs/resend.md). */
int hq_key_retained(const char *prefix, char *out, size_t n);
int hq_key_retained_bytes(const char *prefix, char *out, size_t n);

/* <p>:dd zset: the dedupe claim generations (idempotent events,
 * worker/dedupe.c, common/scripts/claim_ids.lua), member = start ms, score =
 * when its newest claim is a window old; <p>:dd:<start ms> hash event id ->
 * the stream entry id that claimed it for delivery. The scripts form the
 * generations' names from the index (same hash tag). On the base of the
 * event's partition. */
int hq_key_dedupe_index(const char *prefix, char *out, size_t n);
int hq_key_dedupe_gen(const char *prefix, const char *start_ms, char *out, size_t n);
/* <p>:duplicates counter: entries of the partition acknowledged as duplicates
 * (record_outcomes.lua's "d" op; `hookq stats`). */
int hq_key_duplicates(const char *prefix, char *out, size_t n);

/* <p>:lines zset "<endpoint id>/<key>" -> due ms: the lines of ordered endpoints
 * (docs/ordering.md). record_outcomes.lua and lines_claim.lua name the rest
 * from it: <p>:lines:<endpoint id>/<key> zset of the line's items, <p>:lines:data
 * hash "<line>/<item>" -> its data, <p>:lines:busy hash endpoint -> lines in flight. */
int hq_key_lines(const char *prefix, char *out, size_t n);
/* <p>:lines:data (the name the scripts form from <p>:lines), for readers: hookq stats. */
int hq_key_lines_data(const char *prefix, char *out, size_t n);

#endif
