/* What `hookq stats` reports (stats.c, blocking): the figures per partition,
 * the dead letters by reason and by endpoint, and the --json document (the
 * CLI prints it, `hookq api` serves it at /v1/stats). docs/operations.md
 * ("hookq stats") documents the output. */
#ifndef HQ_COMMON_STATS_H
#define HQ_COMMON_STATS_H

#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"

struct hq_redis_conn;
struct hq_layout;

/* Bounds of the dead-letter breakdown (HQ_STATS_DEAD_SCAN_MAX in limits.h
 * bounds the entries read). */
#define STATS_NAME_MAX      64   /* bytes of a reason class or endpoint id kept: ids are <= 64 */
#define STATS_REASONS_MAX   32   /* distinct reason classes kept: 5 are known, more is garbage */
#define STATS_ENDPOINTS_MAX 1000 /* distinct endpoints kept (~80 KB); the rest count as (other) */
#define STATS_TOP_ENDPOINTS 10   /* endpoints named in the human output: a line, not a report */
/* --json output ceiling: the fixed fields plus every kept name escaped at worst
 * (\uXXXX per byte) with its count. */
#define STATS_JSON_MAX                                                                             \
    (4096 + (STATS_REASONS_MAX + STATS_ENDPOINTS_MAX + 2) * (STATS_NAME_MAX * 6 + 32))

struct hq_stats {
    long long stream_len; /* XLEN <p>:events */
    int group_exists;     /* the group HQ_GROUP was found on the stream */
    long long consumers;  /* consumers in the group */
    long long pending;    /* entries delivered to a consumer, not yet acknowledged */
    long long lag;        /* entries not yet delivered to the group; -1 unknown (nil) */
    long long retries;    /* ZCARD <p>:retry */
    long long next_due;   /* unix ms of the earliest retry; -1 none */
    long long dead;       /* XLEN <p>:dead */
    long long lane_len;   /* entries in the retry lane <p>:retries (lane_stats.lua) */
    long long lane_age;   /* ms the oldest unread entry of the lane has waited (0 none) */
    long long endpoints;  /* ZCARD <p>:endpoints (totals only: the registry's) */
    long long cb_open, cb_half_open, cb_disabled; /* circuit breakers by state (<p>:{H}:cb:*) */
    long long now;                                /* unix ms when read */
    char node[64];                                /* the node serving the partition */
    long long retained, retained_bytes; /* XLEN <p>:retained, GET <p>:retained:bytes (resend.md) */
    long long duplicates; /* GET <p>:duplicates: entries acked as duplicates (idempotent events) */
    long long lines, line_items; /* ZCARD <p>:lines, HLEN <p>:lines:data (ordering.md) */
};

/* One counted name (a reason class or an endpoint id; may hold any bytes). */
struct hq_tally_slot {
    char name[STATS_NAME_MAX + 1]; /* NUL-terminated copy, len bytes */
    size_t len;                    /* bytes in name; 0 = free slot */
    long long count;               /* dead letters with this name */
};

/* A bounded name -> count map: open addressing over 'cap' slots (a power of
 * two, at least twice 'max', so probes stay short); names past 'max' distinct
 * ones are counted in 'other' (the map never grows). */
struct hq_tally {
    struct hq_tally_slot *slots; /* owned, cap entries */
    size_t cap;                  /* slots allocated */
    size_t max;                  /* distinct names kept */
    size_t used;                 /* distinct names kept so far */
    long long other;             /* entries whose name arrived after the map was full */
};

struct hq_dead_breakdown {
    struct hq_tally reasons;   /* reason class -> count */
    struct hq_tally endpoints; /* endpoint_id ("(none)" for "") -> count */
    long long scanned;         /* entries read, newest first */
    int capped;                /* the walk stopped at HQ_STATS_DEAD_SCAN_MAX */
    const char *tenant;        /* --tenant: only its dead letters are tallied; NULL = all */
    long long matched;         /* entries tallied (of the tenant's when tenant) */
};

struct hq_tenant_eps {
    long long total, enabled;
};

void hq_tally_init(struct hq_tally *t, size_t max);
void hq_tally_free(struct hq_tally *t);
/* The kept names, most counted first; caller frees the array. */
struct hq_tally_slot **hq_tally_sorted(const struct hq_tally *t, size_t *n);

/* Every partition's figures into part[L->nparts] and their totals into *s. */
int hq_stats_read(struct hq_redis_conn *conn, const struct hq_layout *L, struct hq_stats *part,
                  struct hq_stats *s, struct hq_err *err) HQ_MUST_CHECK;
/* Walks the newest HQ_STATS_DEAD_SCAN_MAX dead letters of all partitions. */
int hq_stats_read_dead(struct hq_redis_conn *c, const struct hq_layout *L,
                       struct hq_dead_breakdown *d, struct hq_err *err) HQ_MUST_CHECK;
/* The --json document of the totals into [out] *out (initialised here). */
int hq_stats_json(const struct hq_layout *L, const struct hq_stats *part, const struct hq_stats *s,
                  const struct hq_dead_breakdown *d, struct hq_buf *out) HQ_MUST_CHECK;
/* --tenant: its endpoints and its dead letters (d->tenant set by the caller). */
int hq_stats_tenant_read(struct hq_redis_conn *c, const struct hq_layout *L, const char *tenant,
                         struct hq_tenant_eps *eps, struct hq_dead_breakdown *d,
                         struct hq_err *err) HQ_MUST_CHECK;
int hq_stats_tenant_json(const char *tenant, const struct hq_tenant_eps *eps,
                         const struct hq_dead_breakdown *d, struct hq_buf *out) HQ_MUST_CHECK;
/* The whole `hookq stats --json [--tenant T]` document (tenant NULL = all) into *out. */
int hq_stats_collect_json(struct hq_redis_conn *c, const struct hq_layout *L, const char *tenant,
                          struct hq_buf *out, struct hq_err *err) HQ_MUST_CHECK;

#endif
