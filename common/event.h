/* The event wire format (docs/wire-format.md): decoding and validation of a
 * stream entry, pure and I/O-free, fuzzed (tests/fuzz/fuzz_event_decode.c).
 *
 * Two forms of a stream entry's fields are accepted:
 *   msgpack: one field "event" = msgpack map {type, payload, id?, endpoint?, tenant?, ts?}
 *   plain:   fields type, payload, id?, endpoint?, tenant?
 * Entries re-enqueued by the scheduler are plain and carry the internal fields
 * "attempt" (failed attempts so far, decimal) and "first_ms" (unix ms of the
 * first attempt); producers never write those. Entries re-added by a dead-letter
 * replay (or a resend) carry "replay" = "1": they are exempt from the dedupe
 * claim (worker/dedupe.c), like the scheduler's (which carry "attempt").
 *
 * The decoder allocates nothing: every string in struct hq_event points into
 * the input, so the event is valid only while the input is. It never trusts a
 * declared length beyond the bytes present, limits nesting, and rejects wrong
 * types and unknown fields with a short reason ("payload: not str/bin"). */
#ifndef HQ_COMMON_EVENT_H
#define HQ_COMMON_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct hq_field {
    const char *name; /* borrowed */
    size_t name_len;
    const char *val; /* borrowed */
    size_t val_len;
};

struct hq_event {
    const char *type; /* borrowed; 1-HQ_TYPE_MAX chars of [A-Za-z0-9_.:-] */
    size_t type_len;
    const char *payload; /* borrowed; the exact HTTP body */
    size_t payload_len;
    const char *id; /* borrowed; NULL when absent (the worker derives one) */
    size_t id_len;
    const char *endpoint; /* borrowed; NULL = fan out to subscribers */
    size_t endpoint_len;
    const char *tenant; /* borrowed; NULL = any tenant's subscribers */
    size_t tenant_len;
    int64_t ts_ms;    /* producer's timestamp, unix ms; 0 when absent */
    int attempt;      /* failed attempts so far (internal field); 0 for new events */
    int64_t first_ms; /* unix ms of the first attempt (internal field); 0 when new */
    const char *key;  /* borrowed; the ordering key, NULL when absent (docs/ordering.md) */
    size_t key_len;
    const char *line; /* borrowed; internal: set on a line's head sent by lines_claim.lua */
    size_t line_len;
    int requeued; /* 1: the internal field "attempt" was present (a retry or deferral) */
    int replay;   /* 1: the internal field "replay" = "1" (a dead-letter replay or resend) */
    /* A failed batch retried whole (internal field, plain form only; worker/batch_retry.c):
     * its members, one "id type timestamp_ms payload_offset payload_len b64\n" line each,
     * the payload being the batch's body. NULL for a single event. Borrowed. */
    const char *batch;
    size_t batch_len;
};

/* Decodes a stream entry's field/value pairs (either form).
 * [in] fields, n: the entry's pairs, borrowed. max_payload: payload bound in bytes.
 * [out] out: strings borrowed from fields. Returns 0 or HQ_EINVAL with err->msg
 * the reason without the "invalid: " prefix (e.g. "type: missing"). */
int hq_event_decode_fields(const struct hq_field *fields, size_t n, size_t max_payload,
                           struct hq_event *out, struct hq_err *err) HQ_MUST_CHECK;

/* Decodes the msgpack form's map. Same contract as above. */
int hq_event_decode_msgpack(const uint8_t *p, size_t n, size_t max_payload, struct hq_event *out,
                            struct hq_err *err) HQ_MUST_CHECK;

/* Field validators, shared by the decoder, the producer and the CLI. 0 or
 * HQ_EINVAL with a message naming the field ("type: 'a b' has a character
 * outside [A-Za-z0-9_.:-]"). */
int hq_event_check_type(const char *s, size_t n, struct hq_err *err) HQ_MUST_CHECK;
int hq_event_check_id(const char *s, size_t n, struct hq_err *err) HQ_MUST_CHECK;
int hq_event_check_endpoint(const char *s, size_t n, struct hq_err *err) HQ_MUST_CHECK;
int hq_event_check_payload(size_t n, size_t max_payload, struct hq_err *err) HQ_MUST_CHECK;
/* A tenant id: 1-HQ_TENANT_MAX chars of [A-Za-z0-9_.:-] (the type's set). */
int hq_event_check_tenant(const char *s, size_t n, struct hq_err *err) HQ_MUST_CHECK;

/* An ordering key: 1-HQ_ORDER_KEY_MAX chars of [A-Za-z0-9_.:-] (the type's set). */
int hq_event_check_key(const char *s, size_t n, struct hq_err *err) HQ_MUST_CHECK;

/* 1 when the type starts with HQ_RESERVED_TYPE_PREFIX ("hookq."): reserved
 * for the events hookq emits itself; a "*" filter does not match them. */
int hq_event_type_reserved(const char *type, size_t n);
/* hq_event_check_type plus the refusal of a reserved type, for producers
 * (`hookq produce`, libhookq): "type: 'hookq.x' is reserved for hookq's own
 * events (prefix hookq.)". The decoder accepts reserved types. */
int hq_event_check_produced_type(const char *s, size_t n, struct hq_err *err) HQ_MUST_CHECK;

#endif
