/* The msgpack encoding of an event (see encode.h). Owns the key order and the
 * choice of msgpack types; the decoder (common/event.c) owns what is accepted.
 * msgpack-c's packer is used only through a write callback into a bounded
 * caller buffer, so nothing here allocates and nothing can abort (libhookq). */
#include "producer/encode.h"

#include <msgpack.h>
#include <string.h>

/* A packer sink: counts bytes, and copies them when out is non-NULL. */
struct sink {
    uint8_t *out; /* borrowed; NULL when only counting */
    size_t cap;   /* bytes available at out */
    size_t len;   /* bytes produced so far (counted even past cap) */
};

static int on_pack_write(void *data, const char *buf, size_t n)
{
    struct sink *s = data;
    if (s->out) {
        if (n > s->cap - s->len)
            return -1;
        memcpy(s->out + s->len, buf, n);
    }
    s->len += n;
    return 0;
}

static int pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    if (msgpack_pack_str(pk, n) != 0)
        return -1;
    return msgpack_pack_str_body(pk, s, n);
}

/* Packs ev; returns 0 or -1 when the sink refused a write. */
static int pack_event(const struct hq_event *ev, struct sink *s)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, s, on_pack_write);
    size_t pairs = 2 + (ev->id != NULL) + (ev->endpoint != NULL) + (ev->ts_ms != 0) +
                   (ev->tenant != NULL) + (ev->key != NULL);
    if (msgpack_pack_map(&pk, pairs) != 0)
        return -1;
    if (pack_str(&pk, "type", 4) != 0 || pack_str(&pk, ev->type, ev->type_len) != 0)
        return -1;
    /* bin, not str: the payload is sent byte-exact and need not be UTF-8. */
    if (pack_str(&pk, "payload", 7) != 0 || msgpack_pack_bin(&pk, ev->payload_len) != 0 ||
        msgpack_pack_bin_body(&pk, ev->payload, ev->payload_len) != 0)
        return -1;
    if (ev->id && (pack_str(&pk, "id", 2) != 0 || pack_str(&pk, ev->id, ev->id_len) != 0))
        return -1;
    if (ev->endpoint &&
        (pack_str(&pk, "endpoint", 8) != 0 || pack_str(&pk, ev->endpoint, ev->endpoint_len) != 0))
        return -1;
    if (ev->ts_ms != 0 && (pack_str(&pk, "ts", 2) != 0 || msgpack_pack_int64(&pk, ev->ts_ms) != 0))
        return -1;
    if (ev->tenant &&
        (pack_str(&pk, "tenant", 6) != 0 || pack_str(&pk, ev->tenant, ev->tenant_len) != 0))
        return -1;
    if (ev->key && (pack_str(&pk, "key", 3) != 0 || pack_str(&pk, ev->key, ev->key_len) != 0))
        return -1;
    return 0;
}

size_t hq_encode_event_size(const struct hq_event *ev)
{
    struct sink s = {NULL, 0, 0};
    (void)pack_event(ev, &s); /* a counting sink never refuses */
    return s.len;
}

int hq_encode_event(const struct hq_event *ev, uint8_t *out, size_t cap, size_t *len,
                    struct hq_err *err)
{
    struct sink s = {out, cap, 0};
    *len = 0;
    if (pack_event(ev, &s) != 0)
        return hq_err_set(err, HQ_ETOOBIG, "encode: event needs %zu bytes, buffer has %zu",
                          hq_encode_event_size(ev), cap);
    *len = s.len;
    return 0;
}
