/* `hookq sign` and `hookq verify` as a user runs them: exit statuses (0 ok,
 * 1 mismatch or stale, 2 bad usage), stdout and the one-line messages, two
 * keys, binary bodies (checked against Python's hmac), the stdin bound, and
 * that no secret is read from the environment or echoed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/limits.h"
#include "tests/harness/hq_test.h"

#define K1   "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define K2   "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define ID   "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define TS   "1614265330"
#define BODY "{\"test\": 2432232314}"
#define SIG1 "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
#define PY   "/usr/bin/python3"

static char out[8192], err[8192];

static int cli(const char *const *args, const char *const *env, const char *in)
{
    out[0] = err[0] = '\0';
    return hq_test_cli(args, env, in, out, sizeof(out), err, sizeof(err));
}

static void test_sign_prints_the_official_vector(void **state)
{
    (void)state;
    const char *a[] = {"sign", "--secret", K1, "--id", ID, "--timestamp", TS, NULL};
    assert_int_equal(cli(a, NULL, BODY), 0);
    assert_string_equal(out, SIG1 "\n");
    assert_string_equal(err, "");
    /* The key without its whsec_ prefix signs the same. */
    const char *b[] = {"sign", "--secret", &K1[6], "--id", ID, "--timestamp", TS, NULL};
    assert_int_equal(cli(b, NULL, BODY), 0);
    assert_string_equal(out, SIG1 "\n");
}

static void test_sign_with_two_secrets_prints_two_signatures_each_verifiable(void **state)
{
    (void)state;
    const char *a[] = {"sign", "--secret", K1, "--secret", K2, "--id", ID, "--timestamp", TS, NULL};
    assert_int_equal(cli(a, NULL, BODY), 0);
    assert_int_equal(strlen(out), 47 + 1 + 47 + 1);
    assert_memory_equal(out, SIG1 " v1,", 51);
    char header[128];
    snprintf(header, sizeof(header), "%.95s", out);
    /* Each key alone verifies the two-signature header. */
    const char *keys[] = {K1, K2};
    for (int i = 0; i < 2; i++) {
        const char *v[] = {"verify", "--secret",    keys[i], "--id",           ID,  "--timestamp",
                           TS,       "--signature", header,  "--no-tolerance", NULL};
        assert_int_equal(cli(v, NULL, BODY), 0);
        assert_string_equal(out, "ok\n");
    }
}

static void test_sign_without_timestamp_uses_now(void **state)
{
    (void)state;
    time_t t0 = time(NULL);
    const char *a[] = {"sign", "--secret", K1, "--id", ID, NULL};
    assert_int_equal(cli(a, NULL, BODY), 0);
    time_t t1 = time(NULL);
    char header[64];
    snprintf(header, sizeof(header), "%.47s", out);
    /* Exactly one second in [t0, t1] produced it, and verify (with the
     * tolerance on) accepts it for that second. */
    int matched = 0;
    for (time_t t = t0; t <= t1; t++) {
        char ts[32];
        snprintf(ts, sizeof(ts), "%lld", (long long)t);
        const char *v[] = {"verify", "--secret",    K1,     "--id", ID, "--timestamp",
                           ts,       "--signature", header, NULL};
        if (cli(v, NULL, BODY) == 0)
            matched++;
    }
    assert_int_equal(matched, 1);
}

/* Runs a shell pipeline and returns its first output line (newline stripped). */
static int run_sh(const char *cmd, char *line, size_t n)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    line[0] = '\0';
    if (fgets(line, (int)n, p))
        line[strcspn(line, "\n")] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_sign_body_is_binary_safe_and_matches_python_hmac(void **state)
{
    (void)state;
    if (access(PY, X_OK) != 0) {
        print_message("skipped: %s not found\n", PY);
        skip();
    }
    /* NUL, 0xff, CR/LF and a trailing newline: all signed as given. stdin
     * with NUL bytes cannot go through hq_test_cli (a C string), so a shell
     * pipe feeds the real binary. */
    const char *bytes = "\\000a\\377\\r\\n\\000b\\n";
    char cmd[1024], ours[256], theirs[256];
    snprintf(cmd, sizeof(cmd),
             "printf '%s' | %s sign --secret " K1 " --secret " K2 " --id " ID " --timestamp " TS,
             bytes, HQ_TEST_BIN);
    assert_int_equal(run_sh(cmd, ours, sizeof(ours)), 0);
    snprintf(
        cmd, sizeof(cmd),
        "printf '%s' | " PY " -c 'import sys,hmac,hashlib,base64\n"
        "b=sys.stdin.buffer.read()\n"
        "ks=[base64.b64decode(k[6:]) for k in (\"" K1 "\",\"" K2 "\")]\n"
        "m=b\"" ID "." TS ".\"+b\n"
        "print(\" \".join(\"v1,\"+base64.b64encode(hmac.new(k,m,hashlib.sha256).digest()).decode() for k in ks))'",
        bytes);
    assert_int_equal(run_sh(cmd, theirs, sizeof(theirs)), 0);
    assert_int_equal(strlen(theirs), 95);
    assert_string_equal(ours, theirs);
    /* And verify reads the same bytes back. */
    snprintf(cmd, sizeof(cmd),
             "printf '%s' | %s verify --secret " K2 " --id " ID " --timestamp " TS
             " --no-tolerance --signature '%s'",
             bytes, HQ_TEST_BIN, theirs);
    assert_int_equal(run_sh(cmd, ours, sizeof(ours)), 0);
    assert_string_equal(ours, "ok");
}

/* Cross-check with the reference TypeScript library when it is available:
 * HQ_TEST_NODE_PATH names a node_modules folder holding `standardwebhooks`
 * (npm install standardwebhooks). hookq's header must pass its verify, and
 * its signature must pass hookq verify. Skipped when node or the package is
 * absent, so the suite needs no network. */
static void test_sign_and_verify_agree_with_standardwebhooks_npm_package(void **state)
{
    (void)state;
    const char *np = getenv("HQ_TEST_NODE_PATH");
    char cmd[2048], line[256];
    if (!np || !*np) {
        print_message("skipped: HQ_TEST_NODE_PATH not set (npm standardwebhooks)\n");
        skip();
    }
    snprintf(cmd, sizeof(cmd), "NODE_PATH='%s' node -e 'require(\"standardwebhooks\")' 2>/dev/null",
             np);
    if (run_sh(cmd, line, sizeof(line)) != 0) {
        print_message("skipped: node or the standardwebhooks package is missing\n");
        skip();
    }
    long long now = (long long)time(NULL);
    char ts[32], ours[256], theirs[256];
    snprintf(ts, sizeof(ts), "%lld", now);
    /* hookq signs (two keys), the library verifies with each key. */
    const char *a[] = {"sign", "--secret", K1, "--secret", K2, "--id", ID, "--timestamp", ts, NULL};
    assert_int_equal(cli(a, NULL, BODY), 0);
    snprintf(ours, sizeof(ours), "%.95s", out);
    const char *keys[] = {K1, K2};
    for (int i = 0; i < 2; i++) {
        snprintf(
            cmd, sizeof(cmd),
            "NODE_PATH='%s' node -e 'const {Webhook}=require(\"standardwebhooks\");new Webhook(process.argv[1]).verify(process.argv[2],{\"webhook-id\":process.argv[3],\"webhook-timestamp\":process.argv[4],\"webhook-signature\":process.argv[5]});console.log(\"ok\")' '%s' '%s' '%s' '%s' '%s'",
            np, keys[i], BODY, ID, ts, ours);
        assert_int_equal(run_sh(cmd, line, sizeof(line)), 0);
        assert_string_equal(line, "ok");
    }
    /* The library signs, hookq verifies (with the tolerance on). */
    snprintf(
        cmd, sizeof(cmd),
        "NODE_PATH='%s' node -e 'const {Webhook}=require(\"standardwebhooks\");console.log(new Webhook(process.argv[1]).sign(process.argv[2],new Date(Number(process.argv[3])*1000),process.argv[4]))' '%s' '%s' '%s' '%s'",
        np, K2, ID, ts, BODY);
    assert_int_equal(run_sh(cmd, theirs, sizeof(theirs)), 0);
    assert_int_equal(strlen(theirs), 47);
    const char *v[] = {"verify", "--secret",    K2,     "--id", ID, "--timestamp",
                       ts,       "--signature", theirs, NULL};
    assert_int_equal(cli(v, NULL, BODY), 0);
    assert_string_equal(out, "ok\n");
}

static void test_verify_exit_codes_and_reasons(void **state)
{
    (void)state;
    /* Matches (any of several signatures; unknown versions are ignored). */
    const char *ok[] = {"verify",
                        "--secret",
                        K1,
                        "--id",
                        ID,
                        "--timestamp",
                        TS,
                        "--signature",
                        "v2,abc v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= " SIG1,
                        "--no-tolerance",
                        NULL};
    assert_int_equal(cli(ok, NULL, BODY), 0);
    assert_string_equal(out, "ok\n");
    assert_string_equal(err, "");
    /* Tampered body. */
    assert_int_equal(cli(ok, NULL, "{\"test\": 2432232315}"), 1);
    assert_string_equal(out, "");
    assert_string_equal(err, "hookq verify: no v1 signature matches\n");
    /* Wrong key, then the right one as a second --secret. */
    const char *k2only[] = {"verify", "--secret",    K2,   "--id",           ID,  "--timestamp",
                            TS,       "--signature", SIG1, "--no-tolerance", NULL};
    assert_int_equal(cli(k2only, NULL, BODY), 1);
    const char *both[] = {"verify", "--secret",    K2, "--secret",    K1,   "--id",
                          ID,       "--timestamp", TS, "--signature", SIG1, "--no-tolerance",
                          NULL};
    assert_int_equal(cli(both, NULL, BODY), 0);
    /* Malformed signatures are a mismatch, not a crash. */
    const char *bad[] = {"v1", "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "v1,@@@", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        const char *v[] = {"verify", "--secret",    K1,     "--id",           ID,  "--timestamp",
                           TS,       "--signature", bad[i], "--no-tolerance", NULL};
        assert_int_equal(cli(v, NULL, BODY), 1);
        assert_string_equal(err, "hookq verify: no v1 signature matches\n");
    }
    /* The tolerance is on by default: a 2021 timestamp is stale now. */
    const char *stale[] = {"verify", "--secret",    K1,   "--id", ID, "--timestamp",
                           TS,       "--signature", SIG1, NULL};
    assert_int_equal(cli(stale, NULL, BODY), 1);
    assert_non_null(strstr(err, "hookq verify: timestamp 1614265330 is "));
    assert_non_null(strstr(err, " s away from now (tolerance 300 s)\n"));
}

struct usage_case {
    const char *args[16];
    const char *env[2];
    const char *err;
};

static void test_bad_usage_exits_2_with_one_line_and_no_secret(void **state)
{
    (void)state;
    static const struct usage_case cases[] = {
        {{"sign", "--id", ID, NULL},
         {NULL},
         "hookq sign: --secret: required (whsec_... ; repeat it for a second key)\n"},
        /* No environment twin: HOOKQ_SECRET is not a source of keys. */
        {{"sign", "--id", ID, NULL},
         {"HOOKQ_SECRET=" K1, NULL},
         "hookq sign: --secret: required (whsec_... ; repeat it for a second key)\n"},
        {{"sign", "--secret", "whsec_c2VjcmV0LXNob3J0", "--id", ID, NULL},
         {NULL},
         "hookq sign: --secret: 12 bytes decoded, must be 16 to 64\n"},
        {{"sign", "--secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La$aSw", "--id", ID, NULL},
         {NULL},
         "hookq sign: --secret: not base64 (bad character at position 35)\n"},
        {{"sign", "--secret", K1, "--secret", "whsec_", "--id", ID, NULL},
         {NULL},
         "hookq sign: --secret: empty (second --secret)\n"},
        {{"sign", "--secret", K1, "--secret", K1, "--secret", K2, "--id", ID, NULL},
         {NULL},
         "hookq sign: --secret: given 3 times, max 2\n"},
        {{"sign", "--secret", K1, NULL},
         {NULL},
         "hookq sign: --id: required (the webhook-id header value)\n"},
        {{"sign", "--secret", K1, "--id", ID, "--timestamp", "soon", NULL},
         {NULL},
         "hookq sign: --timestamp: 'soon' is not a whole number\n"},
        {{"sign", "--secret", K1, "--id", ID, "extra", NULL},
         {NULL},
         "hookq sign: unexpected argument 'extra' (usage: hookq sign --secret KEY [--secret KEY2] --id ID [--timestamp TS] < body)\n"},
        {{"verify", "--secret", K1, "--id", ID, "--timestamp", "12x", "--signature", SIG1, NULL},
         {NULL},
         "hookq verify: --timestamp: '12x' is not a whole number\n"},
        {{"verify", "--secret", K1, "--id", ID, "--signature", SIG1, NULL},
         {NULL},
         "hookq verify: --timestamp: required (the webhook-timestamp header value)\n"},
        {{"verify", "--secret", K1, "--id", ID, "--timestamp", TS, NULL},
         {NULL},
         "hookq verify: --signature: required (the webhook-signature header value)\n"},
        {{"verify", "--id", ID, "--timestamp", TS, "--signature", SIG1, NULL},
         {NULL},
         "hookq verify: --secret: required (whsec_... ; repeat it for a second key)\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        int rc = cli(cases[i].args, cases[i].env[0] ? cases[i].env : NULL, BODY);
        if (rc != 2 || strcmp(err, cases[i].err) != 0)
            fail_msg("case %zu: rc %d, stderr '%s', want 2 '%s'", i, rc, err, cases[i].err);
        assert_string_equal(out, "");
        /* No key material in any message. */
        assert_null(strstr(err, "MfKQ9r8GKYqr"));
        assert_null(strstr(err, "c2VjcmV0"));
    }
    /* --help is not an error. */
    const char *h[] = {"verify", "--help", NULL};
    assert_int_equal(cli(h, NULL, NULL), 0);
    assert_non_null(strstr(out, "usage: hookq verify"));
}

static void test_body_over_the_payload_limit_exits_2(void **state)
{
    (void)state;
    size_t n = (size_t)HQ_PAYLOAD_MAX_LIMIT + 1;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'x', n);
    big[n] = '\0';
    const char *a[] = {"sign", "--secret", K1, "--id", ID, "--timestamp", TS, NULL};
    int rc = cli(a, NULL, big);
    free(big);
    assert_int_equal(rc, 2);
    assert_string_equal(err, "hookq sign: body: more than 67108864 bytes on stdin\n");
    assert_string_equal(out, "");
}

static void test_empty_body_signs(void **state)
{
    (void)state;
    const char *a[] = {"sign", "--secret", K1, "--id", ID, "--timestamp", TS, NULL};
    assert_int_equal(cli(a, NULL, NULL), 0);
    assert_int_equal(strlen(out), 48);
    char header[64];
    snprintf(header, sizeof(header), "%.47s", out);
    const char *v[] = {"verify", "--secret",    K1,     "--id",           ID,  "--timestamp",
                       TS,       "--signature", header, "--no-tolerance", NULL};
    assert_int_equal(cli(v, NULL, NULL), 0);
    assert_int_equal(cli(v, NULL, " "), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_prints_the_official_vector),
        cmocka_unit_test(test_sign_with_two_secrets_prints_two_signatures_each_verifiable),
        cmocka_unit_test(test_sign_without_timestamp_uses_now),
        cmocka_unit_test(test_sign_body_is_binary_safe_and_matches_python_hmac),
        cmocka_unit_test(test_sign_and_verify_agree_with_standardwebhooks_npm_package),
        cmocka_unit_test(test_verify_exit_codes_and_reasons),
        cmocka_unit_test(test_bad_usage_exits_2_with_one_line_and_no_secret),
        cmocka_unit_test(test_body_over_the_payload_limit_exits_2),
        cmocka_unit_test(test_empty_body_signs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
