/* The event wire format: the data-driven cases in tests/data/wire/cases.txt,
 * plus targeted tests for byte-exact payloads, declared-length bombs, the
 * payload bound, short error messages and the producer's encoder round trip. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/event.h"
#include "common/limits.h"
#include "producer/encode.h"
#include "tests/harness/hq_test.h"

/* ---- The cases file ---------------------------------------------------------- */

#define CASE_BYTES_MAX  16384 /* msgpack bytes in one case */
#define CASE_FIELDS_MAX 32    /* more than HQ_EVENT_FIELDS_MAX, to test the bound */
#define CASE_STR_MAX    1024  /* one field name or value */
#define RENDER_MAX      8192

struct tcase {
    int line;        /* line of the "=>" */
    int has_msgpack; /* a msgpack: line was seen */
    int has_fields;  /* a field: or field-none: line was seen */
    uint8_t mp[CASE_BYTES_MAX];
    size_t mp_len;
    char names[CASE_FIELDS_MAX][CASE_STR_MAX];
    char vals[CASE_FIELDS_MAX][CASE_STR_MAX];
    struct hq_field fields[CASE_FIELDS_MAX];
    size_t nfields;
    size_t max_payload;
};

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Appends hex digits (spaces ignored) to the case's bytes; -1 on bad hex. */
static int add_hex(struct tcase *tc, const char *s)
{
    int hi = -1;
    for (; *s; s++) {
        if (*s == ' ' || *s == '\t')
            continue;
        int v = hexval((unsigned char)*s);
        if (v < 0 || tc->mp_len >= CASE_BYTES_MAX)
            return -1;
        if (hi < 0) {
            hi = v;
        } else {
            tc->mp[tc->mp_len++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    return hi < 0 ? 0 : -1;
}

/* Unescapes \xNN and \\ from s[0..n) into out; returns the length or -1. */
static long unescape(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (o >= cap)
            return -1;
        if (s[i] == '\\' && i + 1 < n && s[i + 1] == '\\') {
            out[o++] = '\\';
            i++;
        } else if (s[i] == '\\' && i + 3 < n && s[i + 1] == 'x' && hexval(s[i + 2]) >= 0 &&
                   hexval(s[i + 3]) >= 0) {
            out[o++] = (char)(hexval(s[i + 2]) << 4 | hexval(s[i + 3]));
            i += 3;
        } else {
            out[o++] = s[i];
        }
    }
    return (long)o;
}

static int add_field(struct tcase *tc, const char *s)
{
    const char *eq = strchr(s, '=');
    if (!eq || tc->nfields >= CASE_FIELDS_MAX)
        return -1;
    size_t k = tc->nfields;
    long nl = unescape(s, (size_t)(eq - s), tc->names[k], CASE_STR_MAX);
    long vl = unescape(eq + 1, strlen(eq + 1), tc->vals[k], CASE_STR_MAX);
    if (nl < 0 || vl < 0)
        return -1;
    tc->fields[k] = (struct hq_field){tc->names[k], (size_t)nl, tc->vals[k], (size_t)vl};
    tc->nfields++;
    return 0;
}

static void render_str(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n && *o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[(*o)++] = (char)c;
        else
            *o += (size_t)snprintf(out + *o, cap - *o, "\\x%02x", c);
    }
    out[*o] = '\0';
}

/* Renders a decode result the way the cases file states it. */
static void render(int rc, const struct hq_event *ev, const struct hq_err *err, char *out,
                   size_t cap)
{
    if (rc != 0) {
        snprintf(out, cap, "invalid: %s", err->msg);
        return;
    }
    size_t o = (size_t)snprintf(out, cap, "ok type=");
    render_str(out, cap, &o, ev->type, ev->type_len);
    o += (size_t)snprintf(out + o, cap - o, " payload=");
    render_str(out, cap, &o, ev->payload, ev->payload_len);
    if (ev->id) {
        o += (size_t)snprintf(out + o, cap - o, " id=");
        render_str(out, cap, &o, ev->id, ev->id_len);
    }
    if (ev->endpoint) {
        o += (size_t)snprintf(out + o, cap - o, " endpoint=");
        render_str(out, cap, &o, ev->endpoint, ev->endpoint_len);
    }
    if (ev->ts_ms)
        o += (size_t)snprintf(out + o, cap - o, " ts=%" PRId64, ev->ts_ms);
    if (ev->attempt)
        o += (size_t)snprintf(out + o, cap - o, " attempt=%d", ev->attempt);
    if (ev->first_ms)
        o += (size_t)snprintf(out + o, cap - o, " first_ms=%" PRId64, ev->first_ms);
    if (ev->tenant) {
        o += (size_t)snprintf(out + o, cap - o, " tenant=");
        render_str(out, cap, &o, ev->tenant, ev->tenant_len);
    }
    if (ev->key) {
        o += (size_t)snprintf(out + o, cap - o, " key=");
        render_str(out, cap, &o, ev->key, ev->key_len);
    }
    if (ev->line) {
        o += (size_t)snprintf(out + o, cap - o, " line=");
        render_str(out, cap, &o, ev->line, ev->line_len);
    }
    if (ev->requeued)
        o += (size_t)snprintf(out + o, cap - o, " requeued");
    if (ev->replay)
        o += (size_t)snprintf(out + o, cap - o, " replay");
}

/* Runs one case; returns the number of mismatches (printed). */
static int run_case(struct tcase *tc, const char *want)
{
    char got[RENDER_MAX];
    struct hq_event ev;
    struct hq_err err = {0};
    int bad = 0;
    if (tc->has_msgpack == tc->has_fields) {
        print_error("cases.txt:%d: a case needs msgpack: lines or field: lines, not both\n",
                    tc->line);
        return 1;
    }
    if (tc->has_msgpack) {
        int rc = hq_event_decode_msgpack(tc->mp, tc->mp_len, tc->max_payload, &ev, &err);
        render(rc, &ev, &err, got, sizeof(got));
        if (strcmp(got, want) != 0) {
            print_error("cases.txt:%d (msgpack)\n  want: %s\n  got:  %s\n", tc->line, want, got);
            bad++;
        }
        /* The same bytes as the single field "event" must give the same result. */
        struct hq_field f = {"event", 5, (const char *)tc->mp, tc->mp_len};
        rc = hq_event_decode_fields(&f, 1, tc->max_payload, &ev, &err);
        render(rc, &ev, &err, got, sizeof(got));
        if (strcmp(got, want) != 0) {
            print_error("cases.txt:%d (field event)\n  want: %s\n  got:  %s\n", tc->line, want,
                        got);
            bad++;
        }
    } else {
        int rc = hq_event_decode_fields(tc->fields, tc->nfields, tc->max_payload, &ev, &err);
        render(rc, &ev, &err, got, sizeof(got));
        if (strcmp(got, want) != 0) {
            print_error("cases.txt:%d (fields)\n  want: %s\n  got:  %s\n", tc->line, want, got);
            bad++;
        }
    }
    return bad;
}

static void reset_case(struct tcase *tc)
{
    tc->has_msgpack = tc->has_fields = 0;
    tc->mp_len = 0;
    tc->nfields = 0;
    tc->max_payload = HQ_PAYLOAD_MAX_DEFAULT;
}

static void test_cases_file_decodes_as_stated(void **state)
{
    (void)state;
    const char *path = HQ_TEST_SRC "/tests/data/wire/cases.txt";
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    struct tcase *tc = calloc(1, sizeof(*tc));
    assert_non_null(tc);
    reset_case(tc);
    char line[8192];
    int lineno = 0, ncases = 0, bad = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        size_t n = strlen(line);
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        int rc = 0;
        if (strncmp(line, "msgpack:", 8) == 0) {
            tc->has_msgpack = 1;
            rc = add_hex(tc, line + 8);
        } else if (strncmp(line, "field: ", 7) == 0) {
            tc->has_fields = 1;
            rc = add_field(tc, line + 7);
        } else if (strcmp(line, "field-none:") == 0) {
            tc->has_fields = 1;
        } else if (strncmp(line, "max: ", 5) == 0) {
            tc->max_payload = (size_t)strtoull(line + 5, NULL, 10);
        } else if (strncmp(line, "=> ", 3) == 0) {
            tc->line = lineno;
            bad += run_case(tc, line + 3);
            ncases++;
            reset_case(tc);
        } else {
            rc = -1;
        }
        if (rc != 0) {
            print_error("cases.txt:%d: cannot parse '%s'\n", lineno, line);
            bad++;
        }
    }
    fclose(f);
    free(tc);
    print_message("%d wire-format cases, %d mismatches\n", ncases, bad);
    assert_true(ncases >= 100);
    assert_int_equal(bad, 0);
}

/* ---- Targeted tests -------------------------------------------------------------- */

static void test_payload_with_nuls_is_returned_byte_exact(void **state)
{
    (void)state;
    static const uint8_t body[] = {'{', 0, 0, 0xff, 0x80, '}', 0};
    struct hq_event in = {
        .type = "t", .type_len = 1, .payload = (const char *)body, .payload_len = sizeof(body)};
    uint8_t buf[128];
    size_t len;
    struct hq_err err = {0};
    assert_int_equal(hq_encode_event(&in, buf, sizeof(buf), &len, &err), 0);

    struct hq_event ev;
    assert_int_equal(hq_event_decode_msgpack(buf, len, 1024, &ev, &err), 0);
    assert_int_equal(ev.payload_len, sizeof(body));
    assert_memory_equal(ev.payload, body, sizeof(body));
    /* Borrowed: the payload points into the input, not into a copy. */
    assert_true((const uint8_t *)ev.payload > buf && (const uint8_t *)ev.payload < buf + len);

    struct hq_field f[] = {{"type", 4, "t", 1}, {"payload", 7, (const char *)body, sizeof(body)}};
    assert_int_equal(hq_event_decode_fields(f, 2, 1024, &ev, &err), 0);
    assert_int_equal(ev.payload_len, sizeof(body));
    assert_ptr_equal(ev.payload, body);
}

static void test_declared_length_bombs_are_refused_before_use(void **state)
{
    (void)state;
    struct hq_event ev;
    struct hq_err err = {0};
    /* A 5-byte array32 header at the top and as a value. */
    static const uint8_t arr[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(hq_event_decode_msgpack(arr, sizeof(arr), 1024, &ev, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "msgpack: top level is array, not a map");
    static const uint8_t val[] = {0x81, 0xa7, 'p',  'a',  'y',  'l',  'o',
                                  'a',  'd',  0xdd, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(hq_event_decode_msgpack(val, sizeof(val), 1024, &ev, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "payload: not str/bin (got array)");
    /* A map32 header alone. */
    static const uint8_t map[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(hq_event_decode_msgpack(map, sizeof(map), 1024, &ev, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "msgpack: map declares 4294967295 pairs, 0 bytes left");
    /* str32 / bin32 / ext32 lengths beyond the input, each copied to a heap
     * block of its exact size so a read past the end is caught under ASan. */
    static const uint8_t k_str32[] = {0x81, 0xdb, 0xff, 0xff, 0xff, 0xf0};
    static const uint8_t v_bin32[] = {0x81, 0xa7, 'p',  'a',  'y',  'l',  'o', 'a',
                                      'd',  0xc6, 0x7f, 0xff, 0xff, 0xff, 'x'};
    static const uint8_t v_ext32[] = {0x81, 0xa2, 't', 's', 0xc9, 0x01};
    static const struct {
        const uint8_t *p;
        size_t n;
        const char *msg;
    } bombs[] = {
        {k_str32, sizeof(k_str32), "msgpack: str declares 4294967280 bytes, 0 bytes left"},
        {v_bin32, sizeof(v_bin32), "msgpack: bin declares 2147483647 bytes, 1 bytes left"},
        {v_ext32, sizeof(v_ext32), "msgpack: truncated at byte 5: needs 4 bytes, 1 left"},
    };
    for (size_t i = 0; i < sizeof(bombs) / sizeof(*bombs); i++) {
        uint8_t *copy = malloc(bombs[i].n);
        assert_non_null(copy);
        memcpy(copy, bombs[i].p, bombs[i].n);
        assert_int_equal(hq_event_decode_msgpack(copy, bombs[i].n, 1024, &ev, &err), HQ_EINVAL);
        assert_string_equal(err.msg, bombs[i].msg);
        free(copy);
    }
}

static void test_max_payload_is_accepted_exactly_and_one_more_byte_refused(void **state)
{
    (void)state;
    size_t max = HQ_PAYLOAD_MAX_DEFAULT;
    char *body = malloc(max + 1);
    assert_non_null(body);
    memset(body, 'x', max + 1);
    uint8_t *buf = malloc(max + 64);
    assert_non_null(buf);
    struct hq_err err = {0};
    struct hq_event ev;
    size_t len;

    struct hq_event in = {.type = "t", .type_len = 1, .payload = body, .payload_len = max};
    assert_int_equal(hq_encode_event(&in, buf, max + 64, &len, &err), 0);
    assert_int_equal(hq_event_decode_msgpack(buf, len, max, &ev, &err), 0);
    assert_int_equal(ev.payload_len, max);
    in.payload_len = max + 1;
    assert_int_equal(hq_encode_event(&in, buf, max + 64, &len, &err), 0);
    assert_int_equal(hq_event_decode_msgpack(buf, len, max, &ev, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "payload: 1048577 bytes, max 1048576");

    struct hq_field f[] = {{"type", 4, "t", 1}, {"payload", 7, body, max}};
    assert_int_equal(hq_event_decode_fields(f, 2, max, &ev, &err), 0);
    f[1].val_len = max + 1;
    assert_int_equal(hq_event_decode_fields(f, 2, max, &ev, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "payload: 1048577 bytes, max 1048576");
    free(buf);
    free(body);
}

static void test_error_messages_stay_short_whatever_the_input(void **state)
{
    (void)state;
    size_t n = 100000;
    char *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i % 7 == 0 ? '\n' : 'a');
    struct hq_err err = {0};
    struct hq_event ev;
    /* A huge unknown field name full of newlines. */
    struct hq_field f[] = {{big, n, "v", 1}};
    assert_int_equal(hq_event_decode_fields(f, 1, 1024, &ev, &err), HQ_EINVAL);
    assert_true(strlen(err.msg) < 200);
    assert_null(strchr(err.msg, '\n'));
    assert_non_null(strstr(err.msg, "unknown field '\\x0aaaaaaa"));
    /* A bad type within the length bound: cut to HQ_EVENT_ECHO_MAX. */
    assert_int_equal(hq_event_check_type(big + 1, HQ_TYPE_MAX, &err), HQ_EINVAL);
    assert_true(strlen(err.msg) < 200);
    assert_non_null(strstr(err.msg, "...' has a character outside"));
    free(big);
}

static void test_encoding_round_trips_through_the_decoder(void **state)
{
    (void)state;
    struct hq_event cases[] = {
        {.type = "a", .type_len = 1, .payload = "", .payload_len = 0},
        {.type = "invoice.paid",
         .type_len = 12,
         .payload = "{\"x\":1}",
         .payload_len = 7,
         .id = "evt_1",
         .id_len = 5,
         .endpoint = "ep_1",
         .endpoint_len = 4,
         .ts_ms = 1700000000000},
        {.type = "t", .type_len = 1, .payload = "p", .payload_len = 1, .ts_ms = 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        uint8_t buf[256];
        size_t len;
        struct hq_err err = {0};
        struct hq_event ev;
        size_t want = hq_encode_event_size(&cases[i]);
        assert_int_equal(hq_encode_event(&cases[i], buf, sizeof(buf), &len, &err), 0);
        assert_int_equal(len, want);
        assert_int_equal(hq_event_decode_msgpack(buf, len, 1024, &ev, &err), 0);
        assert_int_equal(ev.type_len, cases[i].type_len);
        assert_memory_equal(ev.type, cases[i].type, ev.type_len);
        assert_int_equal(ev.payload_len, cases[i].payload_len);
        assert_memory_equal(ev.payload, cases[i].payload, ev.payload_len);
        assert_int_equal(ev.id == NULL, cases[i].id == NULL);
        assert_int_equal(ev.endpoint == NULL, cases[i].endpoint == NULL);
        assert_int_equal(ev.ts_ms, cases[i].ts_ms);
        /* One byte short is refused, never overrun. */
        assert_int_equal(hq_encode_event(&cases[i], buf, want - 1, &len, &err), HQ_ETOOBIG);
        assert_int_equal(len, 0);
    }
}

static void test_a_large_payload_uses_the_32_bit_bin_header(void **state)
{
    (void)state;
    size_t n = 70000; /* above bin16 */
    char *body = malloc(n);
    assert_non_null(body);
    memset(body, 'y', n);
    struct hq_event in = {.type = "t", .type_len = 1, .payload = body, .payload_len = n};
    size_t sz = hq_encode_event_size(&in);
    uint8_t *buf = malloc(sz);
    assert_non_null(buf);
    size_t len;
    struct hq_err err = {0};
    struct hq_event ev;
    assert_int_equal(hq_encode_event(&in, buf, sz, &len, &err), 0);
    assert_int_equal(hq_event_decode_msgpack(buf, len, n, &ev, &err), 0);
    assert_int_equal(ev.payload_len, n);
    free(buf);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases_file_decodes_as_stated),
        cmocka_unit_test(test_payload_with_nuls_is_returned_byte_exact),
        cmocka_unit_test(test_declared_length_bombs_are_refused_before_use),
        cmocka_unit_test(test_max_payload_is_accepted_exactly_and_one_more_byte_refused),
        cmocka_unit_test(test_error_messages_stay_short_whatever_the_input),
        cmocka_unit_test(test_encoding_round_trips_through_the_decoder),
        cmocka_unit_test(test_a_large_payload_uses_the_32_bit_bin_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
