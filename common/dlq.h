/* The dead-letter streams (<base>:dead, one per partition): filtering, paging, replay and purge,
 * plus the parsing of what its users type (entry ids, points in time). Owns no output format: its
 * callers print. Every walk over the stream is paged (HQ_DLQ_PAGE entries per round trip), so
 * memory stays bounded for any stream length. Entry fields are documented in
 * docs/internals/redis-layout.md. */
#ifndef HQ_COMMON_DLQ_H
#define HQ_COMMON_DLQ_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* ---- Pure helpers ------------------------------------------------------------------- */

#define HQ_DLQ_ID_MAX 48 /* "<20 digits>-<20 digits>" and a NUL */

/* Validates a stream entry id "<ms>-<seq>" (both decimal). 0 or HQ_EINVAL
 * naming 'what' and the value: "entry id: 'abc' is not <ms>-<seq>". */
int hq_dlq_check_id(const char *what, const char *s, struct hq_err *err) HQ_MUST_CHECK;

/* Parses a point in time: a duration ("2h" = now - 2h), unix ms ("1732660000000"),
 * or an ISO date ("2026-11-26", "2026-11-26T12:00:00Z", UTC). [out] *out_ms.
 * HQ_EINVAL with err naming 'what' ("--since") and the value. */
int hq_dlq_parse_time(const char *what, const char *s, int64_t now_ms, int64_t *out_ms,
                      struct hq_err *err) HQ_MUST_CHECK;

/* ---- Entries ---------------------------------------------------------------------------- */

/* A stream entry reply is [id, [field, value, ...]]; these read it (borrowed). */
const char *hq_dlq_entry_id(const redisReply *entry);
/* The value of field 'name', or NULL; [out] *len (may be NULL). */
const char *hq_dlq_field(const redisReply *entry, const char *name, size_t *len);

struct hq_buf;
/* Appends the entry as one JSON object: "id" (as given: how users type it
 * back) then every field as a string. 0 or HQ_ETOOBIG. */
int hq_dlq_entry_json(struct hq_buf *b, const char *id, const redisReply *entry) HQ_MUST_CHECK;

struct hq_dlq_filter {
    const char *endpoint;       /* exact endpoint_id, or NULL */
    const char *type;           /* exact type, or NULL */
    const char *tenant;         /* exact tenant (the endpoint's, else the event's), or NULL */
    const char *reason;         /* prefix of reason ("invalid" matches "invalid: ..."), or NULL */
    int64_t since_ms;           /* only entries added at or after this unix ms; 0 = no bound */
    int64_t before_ms;          /* only entries added before this unix ms; 0 = no bound */
    char max_id[HQ_DLQ_ID_MAX]; /* only entries with id <= this; "" = no bound */
    const char *event_id;       /* exact event_id, or NULL */
    int retained; /* 1: scan, count and replay <base>:retained (HOOKQ_RETAIN: delivered events,
                     docs/resend.md) instead of <base>:dead; the same fields */
};

/* Whether the entry passes the field filters (endpoint, type, tenant, reason). */
int hq_dlq_match(const struct hq_dlq_filter *f, const redisReply *entry);

struct hq_redis_conn;
struct hq_layout;

/* Called per matching entry of partition part (borrowed until return).
 * Return 0 to go on, 1 to stop. */
typedef int (*hq_dlq_visit_cb)(const redisReply *entry, unsigned part, void *arg);

/* Every function below works on one partition's dead stream (L->part[part]:
 * "<base>:dead", on the node owning its slot); callers loop over partitions. */

/* Walks partition part's dead stream in pages, newest first when
 * newest_first, calling cb for each entry that matches f. 0 or HQ_EREDIS. */
int hq_dlq_scan(struct hq_redis_conn *c, const struct hq_layout *L, unsigned part, int newest_first,
                const struct hq_dlq_filter *f, hq_dlq_visit_cb cb, void *arg,
                struct hq_err *err) HQ_MUST_CHECK;

/* ---- Merged listing across partitions ---------------------------------------------------- */

/* Where a newest-first listing over every partition stands: per partition,
 * the id of the last entry consumed ("" = none yet). Every entry of partition
 * i newer than last[i] has been visited, so a listing resumed from a cursor
 * neither loses nor repeats entries. */
struct hq_dlq_cursor {
    unsigned nparts;
    char (*last)[HQ_DLQ_ID_MAX]; /* nparts entries, owned */
};

void hq_dlq_cursor_init(struct hq_dlq_cursor *cur, unsigned nparts);
void hq_dlq_cursor_free(struct hq_dlq_cursor *cur);
/* The cursor as an opaque token for users (hex of "<P>;<id0>,<id1>,..."); the
 * caller frees it. */
char *hq_dlq_cursor_encode(const struct hq_dlq_cursor *cur);
/* Reads a token of hq_dlq_cursor_encode into cur (initialised for nparts).
 * HQ_EINVAL naming the token when it is not one, or is one of a deployment
 * with another number of partitions. */
int hq_dlq_cursor_decode(struct hq_dlq_cursor *cur, const char *token,
                         struct hq_err *err) HQ_MUST_CHECK;

/* Visits the entries of every partition that match f, newest first: merged
 * by entry id (ms, then seq; equal ids by partition number), from where cur
 * stands, advancing it past every entry read. Each partition is read with
 * XREVRANGE ... COUNT page (1..HQ_DLQ_PAGE) on its node. Stops when cb returns 1
 * or nothing is left; [out] *more: 1 when entries may remain after cur. */
int hq_dlq_scan_merged(struct hq_redis_conn *c, const struct hq_layout *L,
                       const struct hq_dlq_filter *f, struct hq_dlq_cursor *cur, size_t page,
                       hq_dlq_visit_cb cb, void *arg, int *more, struct hq_err *err) HQ_MUST_CHECK;

/* ---- One partition ------------------------------------------------------------------------ */

/* Reads one entry by id. [out] *entry: the XRANGE reply array (caller frees it
 * with freeReplyObject); its element[0] is the entry. HQ_ENOTFOUND when absent. */
int hq_dlq_get(struct hq_redis_conn *c, const struct hq_layout *L, unsigned part, const char *id,
               redisReply **entry, struct hq_err *err) HQ_MUST_CHECK;

/* The id of the newest entry into out ("" when the stream is empty). */
int hq_dlq_last_id(struct hq_redis_conn *c, const struct hq_layout *L, unsigned part,
                   char out[HQ_DLQ_ID_MAX], struct hq_err *err) HQ_MUST_CHECK;

struct hq_dlq_counts {
    long long done;    /* replayed or deleted */
    long long skipped; /* not replayable: no valid event ("invalid: ...") */
    long long missing; /* ids that were not (or no longer) in the stream */
};

/* Progress callback: called after each page with the counts so far. */
typedef void (*hq_dlq_progress_cb)(const struct hq_dlq_counts *c, void *arg);

/* Replays the n given ids (dlq_replay.lua, HQ_DLQ_PAGE ids per call): each
 * is re-added to the same partition's events stream (type payload id
 * endpoint, no attempt field) and deleted from its dead stream in one step.
 * [out] counts are added to. */
int hq_dlq_replay_ids(struct hq_redis_conn *c, const struct hq_layout *L, unsigned part,
                      const char *const *ids, size_t n, struct hq_dlq_counts *counts,
                      struct hq_err *err) HQ_MUST_CHECK;

/* Replays every entry matching f, oldest first, page by page. */
int hq_dlq_replay_matching(struct hq_redis_conn *c, const struct hq_layout *L, unsigned part,
                           const struct hq_dlq_filter *f, hq_dlq_progress_cb progress, void *arg,
                           struct hq_dlq_counts *counts, struct hq_err *err) HQ_MUST_CHECK;

/* The same from <base>:retained when retained (the entries leave it, their
 * bytes leave <base>:retained:bytes). */
int hq_dlq_replay_ids_from(struct hq_redis_conn *c, const struct hq_layout *L, unsigned part,
                           int retained, const char *const *ids, size_t n,
                           struct hq_dlq_counts *counts, struct hq_err *err) HQ_MUST_CHECK;

/* XDELs the n given ids in batches. [out] counts->done deleted, ->missing absent. */
int hq_dlq_delete_ids(struct hq_redis_conn *c, const struct hq_layout *L, unsigned part,
                      const char *const *ids, size_t n, struct hq_dlq_counts *counts,
                      struct hq_err *err) HQ_MUST_CHECK;

/* Counts (count_only) or deletes the entries matching f, page by page. */
int hq_dlq_purge_matching(struct hq_redis_conn *c, const struct hq_layout *L, unsigned part,
                          const struct hq_dlq_filter *f, int count_only,
                          struct hq_dlq_counts *counts, struct hq_err *err) HQ_MUST_CHECK;

#endif
