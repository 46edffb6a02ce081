/* The event wire format: decoding and validation of a stream entry
 * (docs/wire-format.md). Owns the bounded msgpack cursor, the plain-field
 * reader, the field validators and every "invalid: <why>" reason. Does not own
 * encoding (producer/encode.c) nor what happens to an invalid entry (the
 * worker dead-letters it).
 *
 * Why a hand-written msgpack reader: msgpack-c 4.0's unpacker allocates for the
 * element count a container header *declares* before those bytes exist, so a
 * 5-byte array32 header costs ~100 GB of address space. This cursor checks
 * every declared length against the bytes left before it is used, allocates
 * nothing, and never reads past p + n. It is pure and fuzzed
 * (tests/fuzz/fuzz_event_decode.c), and is linked into libhookq, so it must
 * never abort. */
#include "common/event.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/limits.h"

/* The event map is flat: every value is a scalar, so the reader only ever
 * stands at depth 1 and a nested container is refused as a wrong type before
 * its contents are looked at. That keeps the depth bound trivially. */
_Static_assert(HQ_MSGPACK_DEPTH_MAX >= 1, "the event map itself is depth 1");

/* ---- Echoing bad values ------------------------------------------------------- */

/* Bytes an echo may need: every byte escaped as \xNN, "..." and the NUL. */
#define ECHO_BUF (HQ_EVENT_ECHO_MAX * 4 + 4)

/* Renders at most HQ_EVENT_ECHO_MAX bytes of s for a message, escaping quotes,
 * backslashes and non-printables as \xNN so a message stays one short line
 * whatever a producer sent; "..." marks a cut. Returns out. */
static const char *echo(const char *s, size_t n, char out[ECHO_BUF])
{
    static const char hex[] = "0123456789abcdef";
    size_t lim = n < HQ_EVENT_ECHO_MAX ? n : HQ_EVENT_ECHO_MAX;
    size_t o = 0;
    for (size_t i = 0; i < lim; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (lim < n) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

/* ---- Field validators --------------------------------------------------------- */

#define ALLOW_DOT   1u
#define ALLOW_COLON 2u

static int name_char_ok(unsigned char c, unsigned extra)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    if (c == '_' || c == '-')
        return 1;
    if (c == '.' && (extra & ALLOW_DOT))
        return 1;
    return c == ':' && (extra & ALLOW_COLON);
}

/* Checks a name-like field: present, 1..max chars, every char in the set. */
static int check_name(const char *field, const char *s, size_t n, size_t max, unsigned extra,
                      const char *set, struct hq_err *err)
{
    char e[ECHO_BUF];
    if (!s)
        return hq_err_set(err, HQ_EINVAL, "%s: missing", field);
    if (n == 0)
        return hq_err_set(err, HQ_EINVAL, "%s: empty", field);
    if (n > max)
        return hq_err_set(err, HQ_EINVAL, "%s: %zu chars, max %zu", field, n, max);
    for (size_t i = 0; i < n; i++) {
        if (!name_char_ok((unsigned char)s[i], extra))
            return hq_err_set(err, HQ_EINVAL, "%s: '%s' has a character outside %s", field,
                              echo(s, n, e), set);
    }
    return 0;
}

int hq_event_check_type(const char *s, size_t n, struct hq_err *err)
{
    return check_name("type", s, n, HQ_TYPE_MAX, ALLOW_DOT | ALLOW_COLON, "[A-Za-z0-9_.:-]", err);
}

int hq_event_check_id(const char *s, size_t n, struct hq_err *err)
{
    /* No dots: the signed content is "<id>.<timestamp>.<body>". */
    return check_name("id", s, n, HQ_ID_MAX, ALLOW_COLON, "[A-Za-z0-9_:-]", err);
}

int hq_event_check_endpoint(const char *s, size_t n, struct hq_err *err)
{
    return check_name("endpoint", s, n, HQ_ENDPOINT_ID_MAX, 0, "[A-Za-z0-9_-]", err);
}

int hq_event_check_tenant(const char *s, size_t n, struct hq_err *err)
{
    return check_name("tenant", s, n, HQ_TENANT_MAX, ALLOW_DOT | ALLOW_COLON, "[A-Za-z0-9_.:-]",
                      err);
}

int hq_event_check_key(const char *s, size_t n, struct hq_err *err)
{
    return check_name("key", s, n, HQ_ORDER_KEY_MAX, ALLOW_DOT | ALLOW_COLON, "[A-Za-z0-9_.:-]",
                      err);
}

/* The internal line field: a line item's name, digits and one dash. */
static int check_line(const char *s, size_t n, struct hq_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return hq_err_set(err, HQ_EINVAL, "line: not a line item");
    return n > 0 && n <= 48 ? 0 : hq_err_set(err, HQ_EINVAL, "line: not a line item");
}

int hq_event_type_reserved(const char *type, size_t n)
{
    size_t k = sizeof(HQ_RESERVED_TYPE_PREFIX) - 1;
    return type && n >= k && memcmp(type, HQ_RESERVED_TYPE_PREFIX, k) == 0;
}

int hq_event_check_produced_type(const char *s, size_t n, struct hq_err *err)
{
    char e[ECHO_BUF];
    int rc = hq_event_check_type(s, n, err);
    if (rc == 0 && hq_event_type_reserved(s, n))
        rc = hq_err_set(
            err, HQ_EINVAL,
            "type: '%s' is reserved for hookq's own events (prefix " HQ_RESERVED_TYPE_PREFIX ")",
            echo(s, n, e));
    return rc;
}

int hq_event_check_payload(size_t n, size_t max_payload, struct hq_err *err)
{
    if (n > max_payload)
        return hq_err_set(err, HQ_EINVAL, "payload: %zu bytes, max %zu", n, max_payload);
    return 0;
}

/* The checks both forms share once the fields are read. An empty payload is
 * allowed (a POST with an empty body is a valid webhook); a missing one is not. */
static int validate(const struct hq_event *ev, size_t max_payload, struct hq_err *err)
{
    int rc = hq_event_check_type(ev->type, ev->type_len, err);
    if (rc != 0)
        return rc;
    if (!ev->payload)
        return hq_err_set(err, HQ_EINVAL, "payload: missing");
    rc = hq_event_check_payload(ev->payload_len, max_payload, err);
    if (rc == 0 && ev->id)
        rc = hq_event_check_id(ev->id, ev->id_len, err);
    if (rc == 0 && ev->endpoint)
        rc = hq_event_check_endpoint(ev->endpoint, ev->endpoint_len, err);
    if (rc == 0 && ev->tenant)
        rc = hq_event_check_tenant(ev->tenant, ev->tenant_len, err);
    if (rc == 0 && ev->key)
        rc = hq_event_check_key(ev->key, ev->key_len, err);
    if (rc == 0 && ev->line)
        rc = check_line(ev->line, ev->line_len, err);
    return rc;
}

/* ---- Known fields ---------------------------------------------------------------- */

enum field_id {
    F_TYPE,
    F_PAYLOAD,
    F_ID,
    F_ENDPOINT,
    F_TS,
    F_ATTEMPT,
    F_FIRST_MS,
    F_TENANT,
    F_BATCH,
    F_KEY,
    F_LINE,
    F_REPLAY,
    F_UNKNOWN
};

static const char *const field_names[] = {"type",  "payload", "id",       "endpoint",
                                          "ts",    "attempt", "first_ms", "tenant",
                                          "batch", "key",     "line",     "replay"};

/* Looks a field name up among the names allowed in a form (a bitmask). */
static enum field_id field_lookup(const char *s, size_t n, unsigned allowed)
{
    for (int f = 0; f < F_UNKNOWN; f++) {
        if (!(allowed & (1u << f)))
            continue;
        if (strlen(field_names[f]) == n && n > 0 && memcmp(s, field_names[f], n) == 0)
            return (enum field_id)f;
    }
    return F_UNKNOWN;
}

/* ---- The msgpack cursor ---------------------------------------------------------- */

enum mp_kind {
    MP_NIL,
    MP_BOOL,
    MP_INT,
    MP_UINT,
    MP_FLOAT,
    MP_STR,
    MP_BIN,
    MP_ARRAY,
    MP_MAP,
    MP_EXT
};

static const char *const kind_names[] = {"nil", "bool", "int",   "int", "float",
                                         "str", "bin",  "array", "map", "ext"};

struct mp_cur {
    const uint8_t *p; /* borrowed input */
    size_t n;         /* input length */
    size_t off;       /* next byte to read; always <= n */
};

struct mp_val {
    enum mp_kind kind;
    uint64_t u;          /* MP_UINT value */
    int64_t i;           /* MP_INT value (signed formats) */
    const uint8_t *data; /* MP_STR/MP_BIN/MP_EXT bytes, borrowed from the input */
    uint64_t len;        /* bytes for str/bin/ext, elements or pairs for array/map */
};

static size_t left(const struct mp_cur *c)
{
    return c->n - c->off;
}

/* Reads an nbytes big-endian unsigned integer (nbytes <= 8). */
static int read_be(struct mp_cur *c, int nbytes, uint64_t *out, struct hq_err *err)
{
    if (left(c) < (size_t)nbytes)
        return hq_err_set(err, HQ_EINVAL,
                          "msgpack: truncated at byte %zu: needs %d bytes, %zu left", c->off,
                          nbytes, left(c));
    uint64_t v = 0;
    for (int k = 0; k < nbytes; k++)
        v = (v << 8) | c->p[c->off++];
    *out = v;
    return 0;
}

/* Takes len bytes of a str/bin/ext body after checking they are present. */
static int take(struct mp_cur *c, struct mp_val *v, const char *what, struct hq_err *err)
{
    if (v->len > left(c))
        return hq_err_set(err, HQ_EINVAL, "msgpack: %s declares %" PRIu64 " bytes, %zu bytes left",
                          what, v->len, left(c));
    v->data = c->p + c->off;
    c->off += (size_t)v->len;
    return 0;
}

/* Reads one value. Scalars and str/bin/ext bodies are consumed; for array and
 * map only the header is read and len holds the declared count (the caller
 * decides, before touching any element). */
static int read_value(struct mp_cur *c, struct mp_val *v, struct hq_err *err)
{
    memset(v, 0, sizeof(*v));
    if (left(c) == 0)
        return hq_err_set(err, HQ_EINVAL, "msgpack: truncated at byte %zu: a value is missing",
                          c->off);
    size_t at = c->off;
    uint8_t b = c->p[c->off++];
    uint64_t u = 0;
    int rc = 0;

    if (b <= 0x7f) {
        v->kind = MP_UINT;
        v->u = b;
        return 0;
    }
    if (b >= 0xe0) {
        v->kind = MP_INT;
        v->i = (int8_t)b;
        return 0;
    }
    if ((b & 0xf0) == 0x80 || (b & 0xf0) == 0x90) {
        v->kind = (b & 0xf0) == 0x80 ? MP_MAP : MP_ARRAY;
        v->len = b & 0x0f;
        return 0;
    }
    if ((b & 0xe0) == 0xa0) {
        v->kind = MP_STR;
        v->len = b & 0x1f;
        return take(c, v, "str", err);
    }
    switch (b) {
    case 0xc0: v->kind = MP_NIL; return 0;
    case 0xc2:
    case 0xc3: v->kind = MP_BOOL; return 0;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        v->kind = MP_BIN;
        rc = read_be(c, 1 << (b - 0xc4), &v->len, err);
        return rc ? rc : take(c, v, "bin", err);
    case 0xc7:
    case 0xc8:
    case 0xc9:
        v->kind = MP_EXT;
        rc = read_be(c, 1 << (b - 0xc7), &v->len, err);
        if (rc)
            return rc;
        v->len += 1; /* the ext type byte */
        return take(c, v, "ext", err);
    case 0xca:
    case 0xcb: v->kind = MP_FLOAT; return read_be(c, b == 0xca ? 4 : 8, &u, err);
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf: v->kind = MP_UINT; return read_be(c, 1 << (b - 0xcc), &v->u, err);
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        int nb = 1 << (b - 0xd0);
        v->kind = MP_INT;
        rc = read_be(c, nb, &u, err);
        if (rc)
            return rc;
        /* Sign-extend from nb bytes without shifting into the sign bit. */
        if (nb < 8 && (u & (1ull << (nb * 8 - 1))))
            u |= ~0ull << (nb * 8);
        memcpy(&v->i, &u, sizeof(v->i));
        return 0;
    }
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        v->kind = MP_EXT;
        v->len = 1 + (1u << (b - 0xd4));
        return take(c, v, "ext", err);
    case 0xd9:
    case 0xda:
    case 0xdb:
        v->kind = MP_STR;
        rc = read_be(c, 1 << (b - 0xd9), &v->len, err);
        return rc ? rc : take(c, v, "str", err);
    case 0xdc:
    case 0xdd: v->kind = MP_ARRAY; return read_be(c, b == 0xdc ? 2 : 4, &v->len, err);
    case 0xde:
    case 0xdf: v->kind = MP_MAP; return read_be(c, b == 0xde ? 2 : 4, &v->len, err);
    default: /* 0xc1 */
        return hq_err_set(err, HQ_EINVAL, "msgpack: byte 0xc1 at %zu is never used", at);
    }
}

/* Stores a string-like value into the event field it names. */
static void set_str(struct hq_event *ev, enum field_id f, const char *s, size_t n)
{
    switch (f) {
    case F_TYPE:
        ev->type = s;
        ev->type_len = n;
        break;
    case F_PAYLOAD:
        ev->payload = s;
        ev->payload_len = n;
        break;
    case F_ID:
        ev->id = s;
        ev->id_len = n;
        break;
    case F_ENDPOINT:
        ev->endpoint = s;
        ev->endpoint_len = n;
        break;
    case F_TENANT:
        ev->tenant = s;
        ev->tenant_len = n;
        break;
    case F_BATCH:
        ev->batch = s;
        ev->batch_len = n;
        break;
    case F_KEY:
        ev->key = s;
        ev->key_len = n;
        break;
    case F_LINE:
        ev->line = s;
        ev->line_len = n;
        break;
    default: break;
    }
}

static int read_ts(const struct mp_val *v, struct hq_event *ev, struct hq_err *err)
{
    if (v->kind == MP_UINT) {
        if (v->u == 0 || v->u > (uint64_t)INT64_MAX)
            return hq_err_set(err, HQ_EINVAL, "ts: %" PRIu64 " is not a positive unix ms time",
                              v->u);
        ev->ts_ms = (int64_t)v->u;
        return 0;
    }
    if (v->kind == MP_INT) {
        if (v->i <= 0)
            return hq_err_set(err, HQ_EINVAL, "ts: %" PRId64 " is not a positive unix ms time",
                              v->i);
        ev->ts_ms = v->i;
        return 0;
    }
    return hq_err_set(err, HQ_EINVAL, "ts: not an int (got %s)", kind_names[v->kind]);
}

int hq_event_decode_msgpack(const uint8_t *p, size_t n, size_t max_payload, struct hq_event *out,
                            struct hq_err *err)
{
    char e[ECHO_BUF];
    memset(out, 0, sizeof(*out));
    if (n == 0)
        return hq_err_set(err, HQ_EINVAL, "msgpack: empty");
    struct mp_cur c = {p, n, 0};
    struct mp_val v;
    int rc = read_value(&c, &v, err);
    if (rc)
        return rc;
    if (v.kind != MP_MAP)
        return hq_err_set(err, HQ_EINVAL, "msgpack: top level is %s, not a map",
                          kind_names[v.kind]);
    /* Every pair takes at least two bytes: refuse a count the input cannot hold
     * before looping over it. */
    if (v.len > left(&c) / 2)
        return hq_err_set(err, HQ_EINVAL, "msgpack: map declares %" PRIu64 " pairs, %zu bytes left",
                          v.len, left(&c));
    if (v.len > HQ_EVENT_FIELDS_MAX)
        return hq_err_set(err, HQ_EINVAL, "msgpack: map has %" PRIu64 " pairs, max %d", v.len,
                          HQ_EVENT_FIELDS_MAX);
    size_t pairs = (size_t)v.len;
    unsigned seen = 0;
    const unsigned allowed = (1u << F_TYPE) | (1u << F_PAYLOAD) | (1u << F_ID) |
                             (1u << F_ENDPOINT) | (1u << F_TS) | (1u << F_TENANT) | (1u << F_KEY);
    for (size_t k = 0; k < pairs; k++) {
        struct mp_val key;
        rc = read_value(&c, &key, err);
        if (rc)
            return rc;
        if (key.kind != MP_STR)
            return hq_err_set(err, HQ_EINVAL, "msgpack: key %zu is %s, not str", k + 1,
                              kind_names[key.kind]);
        const char *name = (const char *)key.data;
        size_t name_len = (size_t)key.len;
        enum field_id f = field_lookup(name, name_len, allowed);
        if (f == F_UNKNOWN)
            return hq_err_set(err, HQ_EINVAL, "unknown field '%s'", echo(name, name_len, e));
        if (seen & (1u << f))
            return hq_err_set(err, HQ_EINVAL, "duplicate field '%s'", field_names[f]);
        seen |= 1u << f;
        rc = read_value(&c, &v, err);
        if (rc)
            return rc;
        if (f == F_TS) {
            rc = read_ts(&v, out, err);
            if (rc)
                return rc;
            continue;
        }
        if (f == F_PAYLOAD && v.kind != MP_STR && v.kind != MP_BIN)
            return hq_err_set(err, HQ_EINVAL, "payload: not str/bin (got %s)", kind_names[v.kind]);
        if (f != F_PAYLOAD && v.kind != MP_STR)
            return hq_err_set(err, HQ_EINVAL, "%s: not str (got %s)", field_names[f],
                              kind_names[v.kind]);
        set_str(out, f, (const char *)v.data, (size_t)v.len);
    }
    if (left(&c) != 0)
        return hq_err_set(err, HQ_EINVAL, "msgpack: %zu trailing bytes after the map", left(&c));
    return validate(out, max_payload, err);
}

/* ---- The plain-field form ------------------------------------------------------------ */

/* Parses 1-19 decimal digits into a non-negative int64 bounded by max. */
static int parse_decimal(const char *s, size_t n, int64_t max, int64_t *out)
{
    if (!s || n == 0 || n > 19)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        int d = s[i] - '0';
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int hq_event_decode_fields(const struct hq_field *fields, size_t n, size_t max_payload,
                           struct hq_event *out, struct hq_err *err)
{
    char e[ECHO_BUF];
    memset(out, 0, sizeof(*out));
    if (n > HQ_EVENT_FIELDS_MAX)
        return hq_err_set(err, HQ_EINVAL, "entry has %zu fields, max %d", n, HQ_EVENT_FIELDS_MAX);
    for (size_t k = 0; k < n; k++) {
        if (fields[k].name_len == 5 && memcmp(fields[k].name, "event", 5) == 0) {
            if (n != 1)
                return hq_err_set(err, HQ_EINVAL,
                                  "event: the msgpack form must be the only field (entry has %zu)",
                                  n);
            return hq_event_decode_msgpack((const uint8_t *)fields[0].val, fields[0].val_len,
                                           max_payload, out, err);
        }
    }
    unsigned seen = 0;
    const unsigned allowed = (1u << F_TYPE) | (1u << F_PAYLOAD) | (1u << F_ID) |
                             (1u << F_ENDPOINT) | (1u << F_ATTEMPT) | (1u << F_FIRST_MS) |
                             (1u << F_TENANT) | (1u << F_BATCH) | (1u << F_KEY) | (1u << F_LINE) |
                             (1u << F_REPLAY);
    for (size_t k = 0; k < n; k++) {
        const struct hq_field *fl = &fields[k];
        const char *val = fl->val ? fl->val : "";
        size_t val_len = fl->val ? fl->val_len : 0;
        enum field_id f = fl->name ? field_lookup(fl->name, fl->name_len, allowed) : F_UNKNOWN;
        if (f == F_UNKNOWN)
            return hq_err_set(err, HQ_EINVAL, "unknown field '%s'",
                              echo(fl->name ? fl->name : "", fl->name ? fl->name_len : 0, e));
        if (seen & (1u << f))
            return hq_err_set(err, HQ_EINVAL, "duplicate field '%s'", field_names[f]);
        seen |= 1u << f;
        int64_t num;
        if (f == F_ATTEMPT) {
            if (parse_decimal(val, val_len, HQ_ATTEMPT_FIELD_MAX, &num) != 0)
                return hq_err_set(err, HQ_EINVAL, "attempt: '%s' is not a number 0-%d",
                                  echo(val, val_len, e), HQ_ATTEMPT_FIELD_MAX);
            out->attempt = (int)num;
            out->requeued = 1;
        } else if (f == F_REPLAY) {
            if (val_len != 1 || val[0] != '1')
                return hq_err_set(err, HQ_EINVAL, "replay: '%s' is not 1", echo(val, val_len, e));
            out->replay = 1;
        } else if (f == F_FIRST_MS) {
            if (parse_decimal(val, val_len, INT64_MAX, &num) != 0)
                return hq_err_set(err, HQ_EINVAL, "first_ms: '%s' is not a unix ms time",
                                  echo(val, val_len, e));
            out->first_ms = num;
        } else {
            set_str(out, f, val, val_len);
        }
    }
    return validate(out, max_payload, err);
}
