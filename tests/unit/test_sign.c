/* Standard Webhooks signing: the official vector (tests/data), vectors made at
 * test time by an independent signer (Python's hmac + base64), two-key
 * headers, verification (any signature, tolerance, tampering, malformed
 * headers), key decoding and generation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/limits.h"
#include "common/sign.h"
#include "tests/harness/hq_test.h"

#define VECTORS HQ_TEST_SRC "/tests/data/standard-webhooks/vectors.txt"
#define GEN     HQ_TEST_SRC "/tests/data/standard-webhooks/gen_vectors.py"
#define PYTHON  "/usr/bin/python3"

#define OFFICIAL_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define OFFICIAL_ID     "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define OFFICIAL_TS     1614265330
#define OFFICIAL_BODY   "{\"test\": 2432232314}"
#define OFFICIAL_SIG    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static void decode_ok(const char *secret, struct hq_sign_key *k)
{
    struct hq_err err = {0};
    int rc = hq_sign_key_decode(secret, k, &err);
    if (rc != 0)
        fail_msg("decode: %s", err.msg);
}

/* ---- Vectors -------------------------------------------------------------------------- */

static void test_official_vectors_from_data_file_match(void **state)
{
    (void)state;
    FILE *f = fopen(VECTORS, "r");
    assert_non_null(f);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\n")] = '\0';
        char *fields[5];
        char *p = line;
        for (int i = 0; i < 5; i++) {
            fields[i] = p;
            char *tab = strchr(p, '\t');
            if (i < 4) {
                assert_non_null(tab);
                *tab = '\0';
                p = tab + 1;
            }
        }
        struct hq_sign_key k;
        decode_ok(fields[0], &k);
        char sig[HQ_SIG_V1_LEN + 1];
        int64_t ts = strtoll(fields[2], NULL, 10);
        hq_sign_v1(&k, fields[1], strlen(fields[1]), ts, fields[3], strlen(fields[3]), sig);
        assert_string_equal(sig, fields[4]);
        struct hq_err err = {0};
        assert_int_equal(hq_sign_verify(&k, fields[1], ts, fields[3], strlen(fields[3]), fields[4],
                                        ts, 300, &err),
                         0);
        hq_sign_key_wipe(&k);
        n++;
    }
    fclose(f);
    assert_true(n >= 1);
}

static int unhex(const char *h, unsigned char *out, size_t cap, size_t *n)
{
    if (strcmp(h, "-") == 0) {
        *n = 0;
        return 0;
    }
    size_t l = strlen(h);
    if (l % 2 || l / 2 > cap)
        return -1;
    for (size_t i = 0; i < l / 2; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    *n = l / 2;
    return 0;
}

static void test_vectors_from_independent_python_signer_match(void **state)
{
    (void)state;
    if (access(PYTHON, X_OK) != 0) {
        print_message("skipped: %s not found\n", PYTHON);
        skip();
    }
    FILE *p = popen(PYTHON " " GEN " 200 20240601", "r");
    assert_non_null(p);
    static char line[32768];
    static unsigned char secrets[1024], id[256], body[4096], header[256];
    int n = 0, two_key = 0, binary = 0, empty = 0, bare = 0;
    while (fgets(line, sizeof(line), p)) {
        char hs[2100], hid[600], hbody[8200], hhdr[600];
        long long ts;
        assert_int_equal(sscanf(line, "%2099s %599s %lld %8199s %599s", hs, hid, &ts, hbody, hhdr),
                         5);
        /* Zeroed for the optimizer, which cannot see that a failed assert does not return. */
        size_t ns = 0, nid = 0, nbody = 0, nh = 0;
        assert_int_equal(unhex(hs, secrets, sizeof(secrets) - 1, &ns), 0);
        assert_int_equal(unhex(hid, id, sizeof(id) - 1, &nid), 0);
        assert_int_equal(unhex(hbody, body, sizeof(body), &nbody), 0);
        assert_int_equal(unhex(hhdr, header, sizeof(header) - 1, &nh), 0);
        secrets[ns] = id[nid] = header[nh] = '\0';

        struct hq_sign_key keys[2];
        int nkeys = 0;
        char *save = NULL;
        for (char *s = strtok_r((char *)secrets, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
            assert_true(nkeys < 2);
            bare += strncmp(s, "whsec_", 6) != 0;
            decode_ok(s, &keys[nkeys++]);
        }
        char out[2 * (HQ_SIG_V1_LEN + 1)];
        size_t len = hq_sign_header(keys, nkeys, (char *)id, nid, ts, body, nbody, out);
        assert_int_equal(len, nh);
        assert_string_equal(out, (char *)header);
        for (int i = 0; i < nkeys; i++) {
            struct hq_err err = {0};
            assert_int_equal(hq_sign_verify(&keys[i], (char *)id, ts, body, nbody, (char *)header,
                                            ts, 300, &err),
                             0);
            hq_sign_key_wipe(&keys[i]);
        }
        two_key += nkeys == 2;
        empty += nbody == 0;
        binary += nbody > 0 && memchr(body, 0, nbody) != NULL;
        n++;
    }
    assert_int_equal(pclose(p), 0);
    assert_int_equal(n, 200);
    /* The generated set covers what it claims to. */
    assert_true(two_key > 0);
    assert_true(binary > 0);
    assert_true(empty > 0);
    assert_true(bare > 0);
}

/* ---- Headers and verification ----------------------------------------------------------- */

static void test_header_with_two_keys_is_space_separated_and_each_verifies(void **state)
{
    (void)state;
    struct hq_sign_key k[2];
    decode_ok(OFFICIAL_SECRET, &k[0]);
    decode_ok("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", &k[1]);
    char out[2 * (HQ_SIG_V1_LEN + 1)];
    size_t len = hq_sign_header(k, 2, OFFICIAL_ID, strlen(OFFICIAL_ID), OFFICIAL_TS, OFFICIAL_BODY,
                                strlen(OFFICIAL_BODY), out);
    assert_int_equal(len, 2 * HQ_SIG_V1_LEN + 1);
    assert_int_equal(strlen(out), len);
    assert_memory_equal(out, OFFICIAL_SIG " ", HQ_SIG_V1_LEN + 1);
    assert_memory_equal(out + HQ_SIG_V1_LEN + 1, "v1,", 3);
    assert_string_not_equal(out + HQ_SIG_V1_LEN + 1, OFFICIAL_SIG);
    for (int i = 0; i < 2; i++) {
        struct hq_err err = {0};
        assert_int_equal(hq_sign_verify(&k[i], OFFICIAL_ID, OFFICIAL_TS, OFFICIAL_BODY,
                                        strlen(OFFICIAL_BODY), out, OFFICIAL_TS, 300, &err),
                         0);
    }
    /* No keys: an empty header. */
    assert_int_equal(hq_sign_header(k, 0, "x", 1, 1, "", 0, out), 0);
    assert_string_equal(out, "");
}

static void test_verify_accepts_any_of_several_signatures(void **state)
{
    (void)state;
    struct hq_sign_key k;
    decode_ok(OFFICIAL_SECRET, &k);
    const char *headers[] = {
        "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= " OFFICIAL_SIG,
        "v2,whatever " OFFICIAL_SIG " v1,bm90IGl0",
        "  " OFFICIAL_SIG "  ",
        "v1a,xyz v1,short " OFFICIAL_SIG,
    };
    for (size_t i = 0; i < sizeof(headers) / sizeof(*headers); i++) {
        struct hq_err err = {0};
        int rc = hq_sign_verify(&k, OFFICIAL_ID, OFFICIAL_TS, OFFICIAL_BODY, strlen(OFFICIAL_BODY),
                                headers[i], OFFICIAL_TS, 300, &err);
        if (rc != 0)
            fail_msg("header %zu: %s", i, err.msg);
    }
}

static void test_verify_enforces_five_minute_tolerance_both_ways(void **state)
{
    (void)state;
    struct hq_sign_key k;
    decode_ok(OFFICIAL_SECRET, &k);
    size_t bl = strlen(OFFICIAL_BODY);
    struct hq_err err = {0};
    assert_int_equal(hq_sign_verify(&k, OFFICIAL_ID, OFFICIAL_TS, OFFICIAL_BODY, bl, OFFICIAL_SIG,
                                    OFFICIAL_TS + 300, 300, &err),
                     0);
    assert_int_equal(hq_sign_verify(&k, OFFICIAL_ID, OFFICIAL_TS, OFFICIAL_BODY, bl, OFFICIAL_SIG,
                                    OFFICIAL_TS - 300, 300, &err),
                     0);
    assert_int_equal(hq_sign_verify(&k, OFFICIAL_ID, OFFICIAL_TS, OFFICIAL_BODY, bl, OFFICIAL_SIG,
                                    OFFICIAL_TS + 301, 300, &err),
                     HQ_EINVAL);
    assert_string_equal(err.msg, "timestamp 1614265330 is 301 s away from now (tolerance 300 s)");
    assert_int_equal(hq_sign_verify(&k, OFFICIAL_ID, OFFICIAL_TS, OFFICIAL_BODY, bl, OFFICIAL_SIG,
                                    OFFICIAL_TS - 3600, 300, &err),
                     HQ_EINVAL);
    assert_string_equal(err.msg, "timestamp 1614265330 is 3600 s away from now (tolerance 300 s)");
    /* Negative tolerance: no time check at all, even at the int64 extremes. */
    assert_int_equal(hq_sign_verify(&k, OFFICIAL_ID, OFFICIAL_TS, OFFICIAL_BODY, bl, OFFICIAL_SIG,
                                    INT64_MAX, -1, &err),
                     0);
    assert_int_equal(hq_sign_verify(&k, OFFICIAL_ID, INT64_MIN, OFFICIAL_BODY, bl, OFFICIAL_SIG,
                                    INT64_MAX, 300, &err),
                     HQ_EINVAL);
}

static void test_verify_rejects_tampered_body_id_and_timestamp(void **state)
{
    (void)state;
    struct hq_sign_key k;
    decode_ok(OFFICIAL_SECRET, &k);
    struct hq_err err = {0};
    const char *body2 = "{\"test\": 2432232315}";
    assert_int_equal(hq_sign_verify(&k, OFFICIAL_ID, OFFICIAL_TS, body2, strlen(body2),
                                    OFFICIAL_SIG, OFFICIAL_TS, 300, &err),
                     HQ_EINVAL);
    assert_string_equal(err.msg, "no v1 signature matches");
    assert_int_equal(hq_sign_verify(&k, "msg_p5jXN8AQM9LWM0D4loKWxJeK", OFFICIAL_TS, OFFICIAL_BODY,
                                    strlen(OFFICIAL_BODY), OFFICIAL_SIG, OFFICIAL_TS, 300, &err),
                     HQ_EINVAL);
    assert_int_equal(hq_sign_verify(&k, OFFICIAL_ID, OFFICIAL_TS + 1, OFFICIAL_BODY,
                                    strlen(OFFICIAL_BODY), OFFICIAL_SIG, OFFICIAL_TS, 300, &err),
                     HQ_EINVAL);
    /* A body shortened by its last byte (length matters, not just content). */
    assert_int_equal(hq_sign_verify(&k, OFFICIAL_ID, OFFICIAL_TS, OFFICIAL_BODY,
                                    strlen(OFFICIAL_BODY) - 1, OFFICIAL_SIG, OFFICIAL_TS, 300,
                                    &err),
                     HQ_EINVAL);
    /* The right signature under another key. */
    struct hq_sign_key k2;
    decode_ok("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", &k2);
    assert_int_equal(hq_sign_verify(&k2, OFFICIAL_ID, OFFICIAL_TS, OFFICIAL_BODY,
                                    strlen(OFFICIAL_BODY), OFFICIAL_SIG, OFFICIAL_TS, 300, &err),
                     HQ_EINVAL);
}

static void test_verify_fails_malformed_headers_without_crashing(void **state)
{
    (void)state;
    struct hq_sign_key k;
    decode_ok(OFFICIAL_SECRET, &k);
    static char longbad[8192];
    memset(longbad, 'v', sizeof(longbad) - 1);
    const char *headers[] = {
        "",
        " ",
        "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "v1g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "v1,",
        "v1,!!!!not base64 at all!!!",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE==",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF=",
        "V1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ",,,, ,,, v1 v1, ,v1",
        "\xff\xfe\x01",
        longbad,
        NULL,
    };
    for (size_t i = 0; i < sizeof(headers) / sizeof(*headers); i++) {
        struct hq_err err = {0};
        assert_int_equal(hq_sign_verify(&k, OFFICIAL_ID, OFFICIAL_TS, OFFICIAL_BODY,
                                        strlen(OFFICIAL_BODY), headers[i], OFFICIAL_TS, 300, &err),
                         HQ_EINVAL);
        assert_string_equal(err.msg, "no v1 signature matches");
    }
}

/* ---- Keys ---------------------------------------------------------------------------------- */

static void test_key_decode_accepts_with_and_without_prefix(void **state)
{
    (void)state;
    struct hq_sign_key a, b;
    decode_ok(OFFICIAL_SECRET, &a);
    decode_ok(&OFFICIAL_SECRET[6], &b); /* without "whsec_" */
    assert_int_equal(a.n, 24);
    assert_int_equal(b.n, 24);
    assert_memory_equal(a.k, b.k, 24);
    /* Padding: 16 bytes ("==") and 32 bytes ("=") decode to their true lengths. */
    decode_ok("whsec_AAECAwQFBgcICQoLDA0ODw==", &a);
    assert_int_equal(a.n, 16);
    assert_int_equal(a.k[15], 15);
    decode_ok("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", &a);
    assert_int_equal(a.n, 32);
    assert_int_equal(a.k[31], 31);
    hq_sign_key_wipe(&a);
    assert_int_equal(a.n, 0);
    assert_int_equal(a.k[31], 0);
}

static void test_key_decode_rejects_bad_keys_without_echoing_them(void **state)
{
    (void)state;
    /* 64 bytes is the longest accepted key; 65 is one too many. */
    static char k64[200], k65[200];
    /* 21 groups of "QUFB" are 63 bytes; "QQ==" adds 1 and "QUE=" adds 2. */
    strcpy(k64, "whsec_");
    for (int i = 0; i < 21; i++)
        strcat(k64, "QUFB");
    strcat(k64, "QQ==");
    strcpy(k65, "whsec_");
    for (int i = 0; i < 21; i++)
        strcat(k65, "QUFB");
    strcat(k65, "QUE=");
    struct hq_sign_key k;
    decode_ok(k64, &k);
    assert_int_equal(k.n, 64);

    struct {
        const char *secret;
        const char *msg;
    } cases[] = {
        {"", "secret: empty"},
        {"whsec_", "secret: empty"},
        {"whsec_c2VjcmV0LXNob3J0", "secret: 12 bytes decoded, must be 16 to 64"},
        {"whsec_Zm9vYmFyLWtleS1zZWNyZXQhIQ==", NULL}, /* 20 bytes: fine */
        {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La$aSw",
         "secret: not base64 (bad character at position 35)"},
        {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",
         "secret: not base64 (31 characters, not a multiple of 4)"},
        {"whsec_MfKQ9r8GKYqrTwjU=D8ILPZIo2LaLaSw",
         "secret: not base64 (bad character at position 23)"},
        {"whsec_ MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",
         "secret: not base64 (bad character at position 7)"},
        {k65, "secret: 65 bytes decoded, must be 16 to 64"},
        {NULL, "secret: missing"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct hq_err err = {0};
        int rc = hq_sign_key_decode(cases[i].secret, &k, &err);
        if (!cases[i].msg) {
            assert_int_equal(rc, 0);
            continue;
        }
        assert_int_equal(rc, HQ_EINVAL);
        assert_string_equal(err.msg, cases[i].msg);
        /* The message never holds the key material, nor a long slice of it. */
        if (cases[i].secret && strlen(cases[i].secret) > 10)
            assert_null(strstr(err.msg, cases[i].secret + 6));
        assert_null(strstr(err.msg, "MfKQ"));
        assert_int_equal(k.n, 0);
    }
    /* Far too long: refused before decoding. */
    static char huge[1000];
    memset(huge, 'A', sizeof(huge) - 1);
    struct hq_err err = {0};
    assert_int_equal(hq_sign_key_decode(huge, &k, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "secret: 999 base64 characters, max 88 (64 bytes)");
}

static void test_generate_gives_distinct_32_byte_keys_that_decode(void **state)
{
    (void)state;
    enum { N = 64 };
    static char keys[N][HQ_SECRET_STR_MAX];
    for (int i = 0; i < N; i++) {
        struct hq_err err = {0};
        assert_int_equal(hq_sign_key_generate(keys[i], sizeof(keys[i]), &err), 0);
        assert_memory_equal(keys[i], "whsec_", 6);
        assert_int_equal(strlen(keys[i]), 6 + 44);
        struct hq_sign_key k;
        decode_ok(keys[i], &k);
        assert_int_equal(k.n, HQ_SECRET_BYTES);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(keys[i], keys[j]);
        hq_sign_key_wipe(&k);
    }
    struct hq_err err = {0};
    char small[20];
    assert_int_equal(hq_sign_key_generate(small, sizeof(small), &err), HQ_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_official_vectors_from_data_file_match),
        cmocka_unit_test(test_vectors_from_independent_python_signer_match),
        cmocka_unit_test(test_header_with_two_keys_is_space_separated_and_each_verifies),
        cmocka_unit_test(test_verify_accepts_any_of_several_signatures),
        cmocka_unit_test(test_verify_enforces_five_minute_tolerance_both_ways),
        cmocka_unit_test(test_verify_rejects_tampered_body_id_and_timestamp),
        cmocka_unit_test(test_verify_fails_malformed_headers_without_crashing),
        cmocka_unit_test(test_key_decode_accepts_with_and_without_prefix),
        cmocka_unit_test(test_key_decode_rejects_bad_keys_without_echoing_them),
        cmocka_unit_test(test_generate_gives_distinct_32_byte_keys_that_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
