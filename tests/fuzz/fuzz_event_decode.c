/* libFuzzer target for the event decoder (common/event.c). One input feeds
 * both forms:
 *   - the msgpack form: the whole input is the "event" value, decoded with a
 *     1 MiB and a 16-byte payload bound;
 *   - the plain-field form: the input read as length-prefixed records
 *     [len][bytes], alternately a field name and its value.
 * Beyond "no crash, no sanitizer report" it checks the decoder's promises: a
 * decoded event's strings lie inside the input, messages are one line, and a
 * decoded event re-encoded by producer/encode.c decodes to the same event.
 * tests/fuzz/fuzz_replay.c runs the corpus through this entry in every build. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/event.h"
#include "common/limits.h"
#include "producer/encode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_RECORDS_MAX 40 /* more than HQ_EVENT_FIELDS_MAX, to reach that bound */

static void require(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_event_decode: broken promise: %s\n", what);
        abort();
    }
}

static int inside(const void *s, size_t n, const void *base, size_t size)
{
    const uint8_t *p = s, *b = base;
    return n == 0 || (p >= b && p + n <= b + size);
}

static int same(const char *a, size_t an, const char *b, size_t bn)
{
    if ((a == NULL) != (b == NULL) || an != bn)
        return 0;
    return an == 0 || memcmp(a, b, an) == 0;
}

static void check_message(const struct hq_err *err)
{
    size_t n = strnlen(err->msg, sizeof(err->msg));
    require(n > 0 && n < sizeof(err->msg), "an error has a NUL-terminated message");
    require(strchr(err->msg, '\n') == NULL, "messages are one line");
}

/* Re-encodes ev and decodes it again: the result must equal ev. */
static void check_round_trip(const struct hq_event *ev, size_t max_payload)
{
    size_t sz = hq_encode_event_size(ev);
    uint8_t *buf = malloc(sz ? sz : 1);
    require(buf != NULL, "malloc");
    size_t len;
    struct hq_err err = {0};
    require(hq_encode_event(ev, buf, sz, &len, &err) == 0 && len == sz, "encode fits its size");
    struct hq_event back;
    require(hq_event_decode_msgpack(buf, len, max_payload, &back, &err) == 0,
            "a decoded event re-encodes to a valid one");
    require(same(back.type, back.type_len, ev->type, ev->type_len), "type survives");
    require(same(back.payload, back.payload_len, ev->payload, ev->payload_len), "payload survives");
    require(same(back.id, back.id_len, ev->id, ev->id_len), "id survives");
    require(same(back.endpoint, back.endpoint_len, ev->endpoint, ev->endpoint_len),
            "endpoint survives");
    require(same(back.tenant, back.tenant_len, ev->tenant, ev->tenant_len), "tenant survives");
    require(back.ts_ms == ev->ts_ms, "ts survives");
    free(buf);
}

static void check_event(const struct hq_event *ev, const void *base, size_t size,
                        size_t max_payload)
{
    require(ev->type && ev->type_len >= 1 && ev->type_len <= HQ_TYPE_MAX, "type bounds");
    require(ev->payload && ev->payload_len <= max_payload, "payload bound");
    require(!ev->id || (ev->id_len >= 1 && ev->id_len <= HQ_ID_MAX), "id bounds");
    require(!ev->endpoint || (ev->endpoint_len >= 1 && ev->endpoint_len <= HQ_ENDPOINT_ID_MAX),
            "endpoint bounds");
    require(inside(ev->type, ev->type_len, base, size), "type points into the input");
    require(inside(ev->payload, ev->payload_len, base, size), "payload points into the input");
    require(!ev->id || inside(ev->id, ev->id_len, base, size), "id points into the input");
    require(!ev->endpoint || inside(ev->endpoint, ev->endpoint_len, base, size),
            "endpoint points into the input");
    require(!ev->tenant || (ev->tenant_len >= 1 && ev->tenant_len <= HQ_TENANT_MAX),
            "tenant bounds");
    require(!ev->tenant || inside(ev->tenant, ev->tenant_len, base, size),
            "tenant points into the input");
    require(ev->attempt >= 0 && ev->attempt <= HQ_ATTEMPT_FIELD_MAX, "attempt bounds");
    require(ev->ts_ms >= 0 && ev->first_ms >= 0, "times are not negative");
    check_round_trip(ev, max_payload);
}

static void fuzz_msgpack(const uint8_t *data, size_t size, size_t max_payload)
{
    struct hq_event ev;
    struct hq_err err = {0};
    int rc = hq_event_decode_msgpack(data, size, max_payload, &ev, &err);
    if (rc == 0)
        check_event(&ev, data, size, max_payload);
    else
        check_message(&err);
}

static void fuzz_fields(const uint8_t *data, size_t size)
{
    struct hq_field f[FUZZ_RECORDS_MAX];
    const char *tok[2 * FUZZ_RECORDS_MAX];
    size_t len[2 * FUZZ_RECORDS_MAX];
    size_t ntok = 0, off = 0;
    while (off < size && ntok < 2 * FUZZ_RECORDS_MAX) {
        size_t n = data[off++];
        if (n > size - off)
            n = size - off;
        tok[ntok] = (const char *)data + off;
        len[ntok++] = n;
        off += n;
    }
    size_t nf = ntok / 2;
    for (size_t i = 0; i < nf; i++)
        f[i] = (struct hq_field){tok[2 * i], len[2 * i], tok[2 * i + 1], len[2 * i + 1]};
    struct hq_event ev;
    struct hq_err err = {0};
    int rc = hq_event_decode_fields(f, nf, HQ_PAYLOAD_MAX_DEFAULT, &ev, &err);
    if (rc == 0)
        check_event(&ev, data, size, HQ_PAYLOAD_MAX_DEFAULT);
    else
        check_message(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy of exactly size bytes, so any over-read hits a redzone. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    fuzz_msgpack(copy, size, HQ_PAYLOAD_MAX_DEFAULT);
    fuzz_msgpack(copy, size, 16);
    fuzz_fields(copy, size);
    free(copy);
    return 0;
}
