/* Encoding an event into the canonical msgpack form of the wire format
 * (docs/wire-format.md): a map {type: str, payload: bin, id?: str,
 * endpoint?: str, ts?: int} that hq_event_decode_msgpack() reads back.
 *
 * Part of libhookq: never aborts and allocates nothing; the caller owns the
 * output buffer. Encoding does not validate; callers validate first with the
 * hq_event_check_* functions (common/event.h). */
#ifndef HQ_PRODUCER_ENCODE_H
#define HQ_PRODUCER_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/event.h"

/* Exact size in bytes of the encoding of ev (borrowed). The internal fields
 * attempt and first_ms are not part of the msgpack form and are ignored;
 * id/endpoint are left out when NULL, ts when 0. */
size_t hq_encode_event_size(const struct hq_event *ev);

/* Encodes ev (borrowed) into out[0..cap).
 * [out] len: bytes written. Returns 0, or HQ_ETOOBIG when cap is smaller than
 * hq_encode_event_size(ev) (out then holds a partial encoding). */
int hq_encode_event(const struct hq_event *ev, uint8_t *out, size_t cap, size_t *len,
                    struct hq_err *err) HQ_MUST_CHECK;

#endif
