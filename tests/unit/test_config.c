/* Option parsing: durations, sizes, env twins, flags over env, one-line errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/limits.h"
#include "tests/harness/hq_test.h"

struct parse_case {
    const char *in;
    long long want;
};

/* Each input parses (0) to its value. */
static void assert_parses(int (*parse)(const char *, long long *), const struct parse_case *c,
                          size_t n)
{
    for (size_t i = 0; i < n; i++) {
        long long v = -1;
        if (parse(c[i].in, &v) != 0 || v != c[i].want)
            fail_msg("'%s': got %lld, want %lld", c[i].in, v, c[i].want);
    }
}

static void test_durations_accept_each_unit(void **state)
{
    (void)state;
    static const struct parse_case cases[] = {
        {"200ms", 200},  {"15s", 15000},      {"5m", 300000},
        {"2h", 7200000}, {"7d", 604800000LL}, {"0", 0},
    };
    assert_parses(hq_parse_duration_ms, cases, sizeof(cases) / sizeof(*cases));
}

static void test_durations_reject_bare_numbers_and_garbage(void **state)
{
    (void)state;
    long long v;
    assert_int_equal(hq_parse_duration_ms("15000", &v), HQ_EINVAL);
    assert_int_equal(hq_parse_duration_ms("15x", &v), HQ_EINVAL);
    assert_int_equal(hq_parse_duration_ms("-1s", &v), HQ_EINVAL);
    assert_int_equal(hq_parse_duration_ms("", &v), HQ_EINVAL);
    assert_int_equal(hq_parse_duration_ms("99999999999999999999d", &v), HQ_EINVAL);
    assert_int_equal(hq_parse_duration_ms("999999999999999d", &v), HQ_EINVAL);
}

static void test_sizes_accept_k_and_M(void **state)
{
    (void)state;
    static const struct parse_case cases[] = {{"512", 512}, {"64k", 65536}, {"1M", 1048576}};
    assert_parses(hq_parse_size, cases, sizeof(cases) / sizeof(*cases));
    long long v;
    assert_int_equal(hq_parse_size("1.5M", &v), HQ_EINVAL);
}

static void test_env_twin_is_read_and_flag_wins(void **state)
{
    (void)state;
    long long timeout = 1, idle = 2;
    struct hq_opt opts[] = {
        {"timeout", HQ_OPT_DURATION, &timeout, "DUR", "t", 0, 0, 0, 0},
        {"claim-idle", HQ_OPT_DURATION, &idle, "DUR", "c", 0, 0, 0, 0},
        {0},
    };
    setenv("HOOKQ_TIMEOUT", "3s", 1);
    setenv("HOOKQ_CLAIM_IDLE", "1m", 1);
    char *argv[] = {"worker", "--timeout", "4s", NULL};
    int npos;
    char **pos;
    struct hq_err err = {0};
    struct hq_cmd_help help = {"worker", ""};
    assert_int_equal(hq_config_parse(opts, &help, 3, argv, &npos, &pos, &err), 0);
    assert_int_equal(timeout, 4000);
    assert_int_equal(idle, 60000);
    assert_int_equal(npos, 0);
    free(pos);
    unsetenv("HOOKQ_TIMEOUT");
    unsetenv("HOOKQ_CLAIM_IDLE");
}

static void test_bad_value_names_option_and_value(void **state)
{
    (void)state;
    long long timeout = 0;
    struct hq_opt opts[] = {{"timeout", HQ_OPT_DURATION, &timeout, "DUR", "t", 0, 0, 0, 0}, {0}};
    char *argv[] = {"worker", "--timeout=15x", NULL};
    int npos;
    char **pos;
    struct hq_err err = {0};
    struct hq_cmd_help help = {"worker", ""};
    assert_int_equal(hq_config_parse(opts, &help, 2, argv, &npos, &pos, &err), HQ_EINVAL);
    assert_non_null(strstr(err.msg, "--timeout: '15x' is not a duration"));
    assert_null(strchr(err.msg, '\n'));

    setenv("HOOKQ_TIMEOUT", "soon", 1);
    char *argv2[] = {"worker", NULL};
    assert_int_equal(hq_config_parse(opts, &help, 1, argv2, &npos, &pos, &err), HQ_EINVAL);
    assert_non_null(strstr(err.msg, "HOOKQ_TIMEOUT: 'soon'"));
    unsetenv("HOOKQ_TIMEOUT");
}

static void test_range_and_unknown_option(void **state)
{
    (void)state;
    long long n = 0;
    struct hq_opt opts[] = {{"concurrency", HQ_OPT_INT, &n, "N", "c", 0, 1, 100000, 0}, {0}};
    char *argv[] = {"worker", "--concurrency", "0", NULL};
    int npos;
    char **pos;
    struct hq_err err = {0};
    struct hq_cmd_help help = {"worker", ""};
    assert_int_equal(hq_config_parse(opts, &help, 3, argv, &npos, &pos, &err), HQ_EINVAL);
    assert_non_null(strstr(err.msg, "--concurrency: '0' is out of range (1 to 100000)"));
    char *argv2[] = {"worker", "--bogus", NULL};
    assert_int_equal(hq_config_parse(opts, &help, 2, argv2, &npos, &pos, &err), HQ_EINVAL);
    assert_non_null(strstr(err.msg, "--bogus: unknown option"));
    char *argv3[] = {"worker", "--concurrency", NULL};
    assert_int_equal(hq_config_parse(opts, &help, 2, argv3, &npos, &pos, &err), HQ_EINVAL);
    assert_non_null(strstr(err.msg, "--concurrency: needs a value"));
}

static void test_lists_positionals_and_bools(void **state)
{
    (void)state;
    struct hq_strlist hdrs = {0};
    int json = 0;
    struct hq_opt opts[] = {
        {"header", HQ_OPT_LIST, &hdrs, "H", "h", HQ_OPTF_NOENV, 0, 0, 0},
        {"json", HQ_OPT_BOOL, &json, NULL, "j", HQ_OPTF_NOENV, 0, 0, 0},
        {0},
    };
    char *argv[] = {"endpoint", "show",   "--header",      "A: 1",
                    "ep_x",     "--json", "--header=B: 2", NULL};
    int npos;
    char **pos;
    struct hq_err err = {0};
    struct hq_cmd_help help = {"endpoint", ""};
    assert_int_equal(hq_config_parse(opts, &help, 7, argv, &npos, &pos, &err), 0);
    assert_int_equal(hdrs.n, 2);
    assert_string_equal(hdrs.v[0], "A: 1");
    assert_string_equal(hdrs.v[1], "B: 2");
    assert_int_equal(json, 1);
    assert_int_equal(npos, 2);
    assert_string_equal(pos[0], "show");
    assert_string_equal(pos[1], "ep_x");
    free(pos);
    hq_strlist_free(&hdrs);
}

static void test_cli_bad_option_exits_2_with_one_line(void **state)
{
    (void)state;
    char out[4096], err[4096];
    const char *args[] = {"--version", NULL};
    assert_int_equal(hq_test_cli(args, NULL, NULL, out, sizeof(out), err, sizeof(err)), 0);
    assert_non_null(strstr(out, "hookq 0."));
    const char *args2[] = {"nosuch", NULL};
    assert_int_equal(hq_test_cli(args2, NULL, NULL, out, sizeof(out), err, sizeof(err)), 2);
    assert_non_null(strstr(err, "'nosuch' is not a command"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations_accept_each_unit),
        cmocka_unit_test(test_durations_reject_bare_numbers_and_garbage),
        cmocka_unit_test(test_sizes_accept_k_and_M),
        cmocka_unit_test(test_env_twin_is_read_and_flag_wins),
        cmocka_unit_test(test_bad_value_names_option_and_value),
        cmocka_unit_test(test_range_and_unknown_option),
        cmocka_unit_test(test_lists_positionals_and_bools),
        cmocka_unit_test(test_cli_bad_option_exits_2_with_one_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
