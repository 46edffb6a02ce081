/* The op format of record_outcomes.lua, owned here and nowhere else: pure
 * encoders from outcomes to the script's per-entry arguments, and the
 * unpacking of those arguments into a call's argv. The worker (outcome.c)
 * encodes with it and tests feed its output to the real script, so the
 * format has one writer and one reader (the script's header comment).
 *
 * Per entry the script gets: entry id, n, then n arguments holding its ops:
 *   "a", event id, attempt record JSON                      (a delivery), or
 *   "f", event id or "", attempt record or "", retry member or "", due ms,
 *        retry data or "", d, then d dead-letter field/value strings, or
 *   "o", event id or "", attempt record or "", action, lines key, line, item,
 *        due ms, data or "", d, then d dead-letter field/value strings, or
 *   "d", "", counter key                                    (a duplicate). */
#ifndef HQ_WORKER_OUTCOME_OPS_H
#define HQ_WORKER_OUTCOME_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* One entry's ops: arguments stored as a 4-byte length and the bytes. */
struct hq_ops {
    struct hq_buf buf;
    int nargs; /* script arguments in buf */
};

/* A dead letter's fields (strings borrowed; NULL string = ""). */
struct hq_dead_letter {
    const char *event_id;
    const char *type;
    size_t type_len;
    const char *endpoint_id;
    const char *url;
    int64_t attempts;
    int64_t last_status;
    const char *last_error;
    int64_t first_attempt_ms;
    int64_t last_attempt_ms;
    const char *reason;
    const char *payload;
    size_t payload_len;
    const char *tenant; /* the endpoint's tenant, else the event's; NULL or "" = none */
    size_t tenant_len;
    /* An invalid entry's raw fields: nraw NUL-terminated name/value pairs
     * back to back in raw ("raw_<name>\0<value>\0..."), appended as fields. */
    const char *raw;
    int nraw;
    const char *batch_id; /* the batch it was sent in (field batch_id); NULL: sent alone */
};

/* An "f" op; any part may be absent. */
struct hq_full_op {
    const char *event_id; /* the attempt record's event id; NULL: no attempt record */
    const char *att;      /* attempt record JSON */
    size_t att_len;
    const char *retry_member; /* NULL: no retry */
    int64_t due_ms;
    const char *retry_data; /* a msgpack map, stored as is */
    size_t retry_data_len;
    const struct hq_dead_letter *dead; /* NULL: no dead letter */
};

/* max: the bound of one entry's ops (a bug when hit, never input). */
void hq_ops_init(struct hq_ops *o, size_t max);
void hq_ops_free(struct hq_ops *o);
/* Appends a delivery op. 0, or -1 past the buffer's bound (o unchanged in count). */
int hq_ops_delivered(struct hq_ops *o, const char *event_id, const char *att, size_t att_len);
/* What a delivery keeps for resend (HOOKQ_RETAIN): borrowed strings. */
struct hq_retained_op {
    const char *endpoint_id, *type, *payload, *tenant; /* tenant NULL: none */
    size_t type_len, payload_len, tenant_len;
    int status;          /* the 2xx */
    int64_t first_ms;    /* unix ms of the first attempt */
    long long ttl_ms;    /* kept this long ... */
    long long max_bytes; /* ... and this partition keeps at most this many bytes */
    int payload_again;   /* 1: an earlier "r" op of the same entry carried the payload */
};
/* Appends an "r" op: a delivery op (the same three arguments, with "r") that
 * also keeps the event in <p>:retained. 0, or -1 past the bound. */
int hq_ops_retained(struct hq_ops *o, const char *event_id, const char *att, size_t att_len,
                    const struct hq_retained_op *r);
/* Appends an "f" op. 0, or -1 past the bound. */
int hq_ops_full(struct hq_ops *o, const struct hq_full_op *op);
/* Where an "o" op (an ordered endpoint's line, docs/ordering.md) applies. */
struct hq_line_ref {
    char action;       /* 'p' park the pair as an item, 'k' keep the failed head, 'd' end it,
                        * 'c' end a head read from the retry lane and chain the next one */
    const char *index; /* <p>:lines of the entry's partition */
    const char *name;  /* "<endpoint id>/<key>" ("" key: the endpoint's keyless line) */
    const char *item;  /* the origin entry's padded id */
};
/* Appends an "o" op: op's attempt record, due_ms, retry_data (the item's data,
 * for p and k) and dead letter, applied to line. 0, or -1 past the bound. */
int hq_ops_line(struct hq_ops *o, const struct hq_full_op *op, const struct hq_line_ref *line);
/* Appends a duplicate op: the script counts it in counter_key (the
 * partition's <p>:duplicates) and acks the entry. 0, or -1 past the bound. */
int hq_ops_duplicate(struct hq_ops *o, const char *counter_key);
/* Points argv/lens[0..o->nargs) at o's arguments (borrowed from o). */
void hq_ops_argv(const struct hq_ops *o, const char **argv, size_t *lens);

#endif
