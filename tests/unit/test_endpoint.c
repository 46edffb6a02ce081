/* Endpoint rules (pure): URL checks (scheme, credentials, host, SSRF on
 * literal addresses), custom-header rules, event filters, matching, the index
 * keys a type is looked up under, and reading the stored hash. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/endpoint.h"
#include "common/limits.h"
#include "tests/harness/hq_test.h"

static const struct hq_netguard strict = {0};

static int url_ok(const char *url, const struct hq_netguard *g, struct hq_err *err)
{
    memset(err, 0, sizeof(*err));
    return hq_endpoint_check_url(url, g, err);
}

static void test_url_accepts_http_and_https_with_host_names(void **state)
{
    (void)state;
    struct hq_err err;
    assert_int_equal(url_ok("https://example.com/hooks?x=1", &strict, &err), 0);
    assert_int_equal(url_ok("http://hooks.example.com:8080/a/b", &strict, &err), 0);
    assert_int_equal(url_ok("HTTPS://EXAMPLE.COM/", &strict, &err), 0);
    /* Public literals pass; host names are checked at connect time. */
    assert_int_equal(url_ok("http://93.184.216.34/x", &strict, &err), 0);
    assert_int_equal(url_ok("http://[2606:2800:220:1::]/x", &strict, &err), 0);
}

static void test_url_refuses_user_and_password_without_echoing_them(void **state)
{
    (void)state;
    struct hq_err err;
    assert_int_equal(url_ok("https://bob:s3cretpw@example.com/", &strict, &err), HQ_EINVAL);
    assert_non_null(strstr(err.msg, "url: user:password in the URL is not allowed"));
    assert_null(strstr(err.msg, "s3cretpw"));
    assert_int_equal(url_ok("https://bob@example.com/", &strict, &err), HQ_EINVAL);
    assert_non_null(strstr(err.msg, "user:password"));
    assert_int_equal(url_ok("https://:pw@example.com/", &strict, &err), HQ_EINVAL);
}

static void test_url_refuses_schemes_other_than_http_and_https(void **state)
{
    (void)state;
    struct hq_err err;
    assert_int_equal(url_ok("ftp://example.com/x", &strict, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "url: 'ftp://example.com/x' scheme 'ftp' is not http or https");
    assert_int_equal(url_ok("file:///etc/passwd", &strict, &err), HQ_EINVAL);
    assert_non_null(strstr(err.msg, "scheme 'file' is not http or https"));
    assert_int_equal(url_ok("gopher://example.com/", &strict, &err), HQ_EINVAL);
    assert_int_equal(url_ok("dict://127.0.0.1:6379/info", &strict, &err), HQ_EINVAL);
}

static void test_url_refuses_relative_empty_long_and_control_characters(void **state)
{
    (void)state;
    struct hq_err err;
    assert_int_equal(url_ok("", &strict, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "url: required");
    assert_int_equal(url_ok("example.com/hook", &strict, &err), HQ_EINVAL);
    assert_non_null(strstr(err.msg, "url: 'example.com/hook' is not a valid absolute URL"));
    assert_int_equal(url_ok("/hook", &strict, &err), HQ_EINVAL);
    assert_int_equal(url_ok("http://", &strict, &err), HQ_EINVAL);
    assert_int_equal(url_ok("http://exa mple.com/", &strict, &err), HQ_EINVAL);
    assert_non_null(strstr(err.msg, "space or control character"));
    assert_int_equal(url_ok("http://example.com/\r\nX-Injected: 1", &strict, &err), HQ_EINVAL);
    assert_null(strchr(err.msg, '\n'));

    char *long_url = malloc(HQ_URL_MAX + 2);
    memcpy(long_url, "http://e.com/", 13);
    memset(long_url + 13, 'a', HQ_URL_MAX + 1 - 13);
    long_url[HQ_URL_MAX + 1] = '\0';
    assert_int_equal(url_ok(long_url, &strict, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "url: 2049 chars, max 2048");
    long_url[HQ_URL_MAX] = '\0';
    assert_int_equal(url_ok(long_url, &strict, &err), 0);
    free(long_url);
}

static void test_url_refuses_literal_blocked_addresses(void **state)
{
    (void)state;
    struct hq_err err;
    const char *blocked[] = {
        "http://127.0.0.1/x",
        "http://127.0.0.1:8080/x",
        "http://[::1]/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
        /* Numeric IPv4 forms are normalised by curl before the check. */
        "http://2130706433/",
        "http://0x7f.1/",
    };
    for (size_t i = 0; i < sizeof(blocked) / sizeof(*blocked); i++) {
        int rc = url_ok(blocked[i], &strict, &err);
        if (rc != HQ_EBLOCKED)
            fail_msg("%s: rc %d (%s)", blocked[i], rc, err.msg);
        assert_non_null(strstr(err.msg, "is blocked: "));
        assert_non_null(strstr(err.msg, "HOOKQ_ALLOW_PRIVATE=1"));
    }
    assert_int_equal(url_ok("http://127.0.0.1/x", &strict, &err), HQ_EBLOCKED);
    assert_non_null(strstr(err.msg, "url: 'http://127.0.0.1/x' is blocked: 127.0.0.1"));
}

static void test_url_allows_blocked_addresses_when_allowed(void **state)
{
    (void)state;
    struct hq_err err;
    struct hq_netguard open = {0};
    open.allow_private = 1;
    assert_int_equal(url_ok("http://127.0.0.1:8080/x", &open, &err), 0);
    assert_int_equal(url_ok("http://[::1]/x", &open, &err), 0);
    assert_int_equal(url_ok("http://169.254.169.254/", &open, &err), 0);

    struct hq_netguard some = {0};
    assert_int_equal(hq_netguard_parse_cidrs(&some, "127.0.0.0/8", &err), 0);
    assert_int_equal(url_ok("http://127.0.0.1/x", &some, &err), 0);
    assert_int_equal(url_ok("http://10.0.0.1/x", &some, &err), HQ_EBLOCKED);
    /* The scheme and credential rules still apply when private targets are
     * allowed. */
    assert_int_equal(url_ok("ftp://127.0.0.1/x", &open, &err), HQ_EINVAL);
    assert_int_equal(url_ok("http://u:p@127.0.0.1/x", &open, &err), HQ_EINVAL);
}

static int header_ok(const char *h, struct hq_err *err)
{
    memset(err, 0, sizeof(*err));
    return hq_endpoint_check_header(h, err);
}

static void test_header_accepts_name_colon_value(void **state)
{
    (void)state;
    struct hq_err err;
    assert_int_equal(header_ok("X-Tenant: 42", &err), 0);
    assert_int_equal(header_ok("Authorization: Bearer abc.def", &err), 0);
    assert_int_equal(header_ok("x-a:b", &err), 0);
    assert_int_equal(header_ok("X-Tab: a\tb", &err), 0);
}

static void test_header_refuses_forbidden_names_in_any_case(void **state)
{
    (void)state;
    struct hq_err err;
    const char *names[] = {"Host",
                           "content-length",
                           "Content-Type",
                           "USER-AGENT",
                           "Transfer-Encoding",
                           "Connection",
                           "Keep-Alive",
                           "TE",
                           "Trailer",
                           "Upgrade",
                           "Expect",
                           "Content-Encoding",
                           "webhook-id",
                           "Webhook-Signature",
                           "WEBHOOK-TIMESTAMP",
                           "webhook-anything"};
    for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
        char line[128];
        snprintf(line, sizeof(line), "%s: x", names[i]);
        if (header_ok(line, &err) != HQ_EINVAL)
            fail_msg("%s accepted", names[i]);
        char want[128];
        snprintf(want, sizeof(want), "header '%s': ", names[i]);
        assert_non_null(strstr(err.msg, want));
    }
    assert_int_equal(header_ok("Host: evil", &err), HQ_EINVAL);
    assert_string_equal(err.msg, "header 'Host': set by hookq, cannot be overridden");
    /* Names that only start like a forbidden one are fine. */
    assert_int_equal(header_ok("Hostname: x", &err), 0);
    assert_int_equal(header_ok("Webhook: x", &err), 0);
}

static void test_header_refuses_bad_shapes_without_echoing_values(void **state)
{
    (void)state;
    struct hq_err err;
    assert_int_equal(header_ok("X-A: ok\r\nInjected: 1", &err), HQ_EINVAL);
    assert_string_equal(err.msg, "header 'X-A': value has a CR or LF");
    assert_int_equal(header_ok("X-A: ok\nInjected: 1", &err), HQ_EINVAL);
    assert_int_equal(header_ok("X-A: a\x01", &err), HQ_EINVAL);
    assert_string_equal(err.msg, "header 'X-A': value has a control character");
    assert_int_equal(header_ok("X A: b", &err), HQ_EINVAL);
    assert_string_equal(err.msg, "header: name 'X A' is not an HTTP token");
    assert_int_equal(header_ok("X(A): b", &err), HQ_EINVAL);
    assert_int_equal(header_ok(": b", &err), HQ_EINVAL);
    assert_non_null(strstr(err.msg, "header: empty name"));
    assert_int_equal(header_ok("NoColon", &err), HQ_EINVAL);
    assert_string_equal(err.msg, "header: 'NoColon' is not 'Name: value'");
    assert_int_equal(header_ok("X-Empty:   ", &err), HQ_EINVAL);
    assert_string_equal(err.msg, "header 'X-Empty': empty value");
    assert_int_equal(header_ok("Authorization: Bearer topsecret\r", &err), HQ_EINVAL);
    assert_null(strstr(err.msg, "topsecret"));

    char line[HQ_HEADER_LINE_MAX + 2];
    memcpy(line, "X-Long: ", 8);
    memset(line + 8, 'v', sizeof(line) - 9);
    line[sizeof(line) - 1] = '\0';
    assert_int_equal(header_ok(line, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "header: 1025 chars, max 1024");
    line[HQ_HEADER_LINE_MAX] = '\0';
    assert_int_equal(header_ok(line, &err), 0);
}

static int filter_ok(const char *f, struct hq_err *err)
{
    memset(err, 0, sizeof(*err));
    return hq_endpoint_check_filter(f, err);
}

static void test_filter_accepts_exact_star_and_dot_star(void **state)
{
    (void)state;
    struct hq_err err;
    assert_int_equal(filter_ok("invoice.paid", &err), 0);
    assert_int_equal(filter_ok("*", &err), 0);
    assert_int_equal(filter_ok("user.*", &err), 0);
    assert_int_equal(filter_ok("a.b.*", &err), 0);
    assert_int_equal(filter_ok("Ns:thing-1_x", &err), 0);
}

static void test_filter_refuses_misplaced_wildcards_and_bad_types(void **state)
{
    (void)state;
    struct hq_err err;
    assert_int_equal(filter_ok("user*", &err), HQ_EINVAL);
    assert_string_equal(err.msg,
                        "events: 'user*' has a wildcard not after a dot (use 'user.*' or '*')");
    assert_int_equal(filter_ok("*.paid", &err), HQ_EINVAL);
    assert_int_equal(filter_ok("a.*.b", &err), HQ_EINVAL);
    assert_int_equal(filter_ok("a.**", &err), HQ_EINVAL);
    assert_int_equal(filter_ok(".*", &err), HQ_EINVAL);
    assert_int_equal(filter_ok("", &err), HQ_EINVAL);
    assert_string_equal(err.msg, "events: empty filter");
    assert_int_equal(filter_ok("a b", &err), HQ_EINVAL);
    assert_string_equal(err.msg, "events: 'a b' has a character outside [A-Za-z0-9_.:-]");
    assert_int_equal(filter_ok("a,b", &err), HQ_EINVAL);

    char f[HQ_TYPE_MAX + 3];
    memset(f, 'a', HQ_TYPE_MAX + 1);
    f[HQ_TYPE_MAX + 1] = '\0';
    assert_int_equal(filter_ok(f, &err), HQ_EINVAL);
    f[HQ_TYPE_MAX] = '\0';
    assert_int_equal(filter_ok(f, &err), 0);
    /* "<type>.*" whose prefix fills a whole type is still a valid filter. */
    memset(f, 'a', HQ_TYPE_MAX - 1);
    f[HQ_TYPE_MAX - 1] = '.';
    f[HQ_TYPE_MAX] = '*';
    f[HQ_TYPE_MAX + 1] = '\0';
    assert_int_equal(filter_ok(f, &err), 0);
}

/* An endpoint with the given filters (borrowed strings). */
static struct hq_endpoint with_filters(char **filters, int n)
{
    struct hq_endpoint e;
    memset(&e, 0, sizeof(e));
    e.events = filters;
    e.nevents = n;
    return e;
}

static int matches(const struct hq_endpoint *e, const char *type)
{
    return hq_endpoint_matches(e, type, strlen(type));
}

static void test_matching_follows_exact_prefix_and_star_filters(void **state)
{
    (void)state;
    struct hq_endpoint none = with_filters(NULL, 0);
    assert_true(matches(&none, "anything.at.all"));

    char *f1[] = {"invoice.paid"};
    struct hq_endpoint exact = with_filters(f1, 1);
    assert_true(matches(&exact, "invoice.paid"));
    assert_false(matches(&exact, "invoice.paid.late"));
    assert_false(matches(&exact, "invoice.pai"));
    assert_false(matches(&exact, "invoice"));

    char *f2[] = {"user.*"};
    struct hq_endpoint pre = with_filters(f2, 1);
    assert_true(matches(&pre, "user.created"));
    assert_true(matches(&pre, "user.a.b"));
    assert_false(matches(&pre, "user"));
    assert_false(matches(&pre, "users.created"));
    assert_false(matches(&pre, "x.user.created"));

    char *f3[] = {"*"};
    struct hq_endpoint star = with_filters(f3, 1);
    assert_true(matches(&star, "x"));

    char *f4[] = {"a.b", "c.*"};
    struct hq_endpoint two = with_filters(f4, 2);
    assert_true(matches(&two, "a.b"));
    assert_true(matches(&two, "c.d"));
    assert_false(matches(&two, "a.c"));
    /* The type is a length-delimited slice, not a C string. */
    assert_true(hq_endpoint_matches(&two, "a.bXYZ", 3));
}

static void test_index_keys_for_a_dotted_type(void **state)
{
    (void)state;
    char keys[HQ_ENDPOINT_INDEX_KEYS_MAX][HQ_KEY_MAX];
    int n = hq_endpoint_index_keys("hq", "a.b.c", 5, keys, HQ_ENDPOINT_INDEX_KEYS_MAX);
    assert_int_equal(n, 4);
    assert_string_equal(keys[0], "hq:idx:t:a.b.c");
    assert_string_equal(keys[1], "hq:idx:p:");
    assert_string_equal(keys[2], "hq:idx:p:a.");
    assert_string_equal(keys[3], "hq:idx:p:a.b.");

    n = hq_endpoint_index_keys("hq", "plain", 5, keys, HQ_ENDPOINT_INDEX_KEYS_MAX);
    assert_int_equal(n, 2);
    assert_string_equal(keys[0], "hq:idx:t:plain");
    assert_string_equal(keys[1], "hq:idx:p:");

    assert_int_equal(hq_endpoint_index_keys("hq", "a.b.c", 5, keys, 3), HQ_ETOOBIG);
    assert_int_equal(hq_endpoint_index_keys("hq", "", 0, keys, 4), HQ_EINVAL);
    assert_int_equal(hq_endpoint_index_keys("hq", "x", HQ_TYPE_MAX + 1, keys, 4), HQ_EINVAL);

    /* The worst case (all dots) fits HQ_ENDPOINT_INDEX_KEYS_MAX. */
    char dots[HQ_TYPE_MAX];
    memset(dots, '.', sizeof(dots));
    n = hq_endpoint_index_keys("hq", dots, sizeof(dots), keys, HQ_ENDPOINT_INDEX_KEYS_MAX);
    assert_int_equal(n, HQ_TYPE_MAX + 2);
}

static void test_filter_keys_agree_with_matching(void **state)
{
    (void)state;
    /* For every filter and type: the filter's index key is among the type's
     * index keys exactly when the filter matches the type. */
    const char *filters[] = {"*", "a.*", "a.b.*", "a.b.c", "a.b", "b.*", "a", "a.b.c.*"};
    const char *types[] = {"a", "a.b", "a.b.c", "a.b.c.d", "b.x", "ab.c", "a.bc", "c"};
    for (size_t i = 0; i < sizeof(filters) / sizeof(*filters); i++) {
        char fk[HQ_KEY_MAX];
        assert_true(hq_endpoint_filter_key("p", filters[i], fk, sizeof(fk)) > 0);
        char *fv[] = {(char *)filters[i]};
        struct hq_endpoint e = with_filters(fv, 1);
        for (size_t j = 0; j < sizeof(types) / sizeof(*types); j++) {
            char keys[HQ_ENDPOINT_INDEX_KEYS_MAX][HQ_KEY_MAX];
            int n = hq_endpoint_index_keys("p", types[j], strlen(types[j]), keys,
                                           HQ_ENDPOINT_INDEX_KEYS_MAX);
            assert_true(n >= 2);
            int in = 0;
            for (int k = 0; k < n; k++)
                in |= strcmp(keys[k], fk) == 0;
            if (in != matches(&e, types[j]))
                fail_msg("filter %s type %s: indexed %d, matches %d", filters[i], types[j], in,
                         matches(&e, types[j]));
        }
    }
    char k[HQ_KEY_MAX];
    assert_true(hq_endpoint_filter_key("p", "user.*", k, sizeof(k)) > 0);
    assert_string_equal(k, "p:idx:p:user.");
    assert_true(hq_endpoint_filter_key("p", "*", k, sizeof(k)) > 0);
    assert_string_equal(k, "p:idx:p:");
    assert_true(hq_endpoint_filter_key("p", "x.y", k, sizeof(k)) > 0);
    assert_string_equal(k, "p:idx:t:x.y");
}

/* ---- The stored hash
 * ---------------------------------------------------------------- */

struct fake {
    redisReply top;
    redisReply items[32];
    redisReply *ptrs[32];
};

/* Builds an array reply of the given strings (NULL-terminated). */
static redisReply *fake_reply(struct fake *f, const char *const *s)
{
    memset(f, 0, sizeof(*f));
    size_t n = 0;
    for (; s[n]; n++) {
        f->items[n].type = REDIS_REPLY_STRING;
        f->items[n].str = (char *)s[n];
        f->items[n].len = strlen(s[n]);
        f->ptrs[n] = &f->items[n];
    }
    f->top.type = REDIS_REPLY_ARRAY;
    f->top.elements = n;
    f->top.element = f->ptrs;
    return &f->top;
}

static void test_hash_is_read_into_the_struct(void **state)
{
    (void)state;
    const char *fields[] = {"name",
                            "Billing",
                            "url",
                            "https://example.com/h",
                            "description",
                            "",
                            "events",
                            "invoice.paid,user.*",
                            "headers",
                            "X-A: 1\nX-B: 2",
                            "key1",
                            "whsec_AAAA",
                            "key2",
                            "whsec_BBBB",
                            "key1_ms",
                            "100",
                            "key2_ms",
                            "200",
                            "enabled",
                            "0",
                            "max_attempts",
                            "7",
                            "created_ms",
                            "50",
                            "updated_ms",
                            "60",
                            "future_field",
                            "ignored",
                            NULL};
    struct fake f;
    struct hq_endpoint e;
    struct hq_err err = {0};
    assert_int_equal(hq_endpoint_from_reply(fake_reply(&f, fields), "ep_x", &e, &err), 0);
    assert_string_equal(e.id, "ep_x");
    assert_string_equal(e.name, "Billing");
    assert_string_equal(e.url, "https://example.com/h");
    assert_string_equal(e.description, "");
    assert_int_equal(e.nevents, 2);
    assert_string_equal(e.events[0], "invoice.paid");
    assert_string_equal(e.events[1], "user.*");
    assert_int_equal(e.nheaders, 2);
    assert_string_equal(e.headers[1], "X-B: 2");
    assert_string_equal(e.key1, "whsec_AAAA");
    assert_string_equal(e.key2, "whsec_BBBB");
    assert_int_equal(e.key1_ms, 100);
    assert_int_equal(e.key2_ms, 200);
    assert_int_equal(e.enabled, 0);
    assert_int_equal(e.max_attempts, 7);
    assert_int_equal(e.created_ms, 50);
    assert_int_equal(e.updated_ms, 60);
    hq_endpoint_free(&e);
    assert_null(e.name);
    assert_int_equal(e.key1[0], '\0');
}

static void test_hash_that_is_empty_or_malformed_is_refused(void **state)
{
    (void)state;
    struct fake f;
    struct hq_endpoint e;
    struct hq_err err = {0};
    const char *empty[] = {NULL};
    assert_int_equal(hq_endpoint_from_reply(fake_reply(&f, empty), "ep_x", &e, &err), HQ_ENOTFOUND);
    assert_string_equal(err.msg, "no endpoint 'ep_x'");

    const char *odd[] = {"name", NULL};
    assert_int_equal(hq_endpoint_from_reply(fake_reply(&f, odd), "ep_x", &e, &err), HQ_EINVAL);

    const char *no_url[] = {"name", "n", "key1", "whsec_A", "key2", "whsec_B", NULL};
    assert_int_equal(hq_endpoint_from_reply(fake_reply(&f, no_url), "ep_x", &e, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "endpoint ep_x: malformed hash field url (missing)");

    const char *bad_enabled[] = {"url",     "http://e.com/", "key1", "whsec_A", "key2",
                                 "whsec_B", "enabled",       "yes",  NULL};
    assert_int_equal(hq_endpoint_from_reply(fake_reply(&f, bad_enabled), "ep_x", &e, &err),
                     HQ_EINVAL);
    assert_string_equal(err.msg, "endpoint ep_x: malformed hash field enabled");

    const char *bad_ms[] = {"url",     "http://e.com/", "key1", "whsec_A", "key2",
                            "whsec_B", "created_ms",    "12x",  NULL};
    assert_int_equal(hq_endpoint_from_reply(fake_reply(&f, bad_ms), "ep_x", &e, &err), HQ_EINVAL);

    /* A non-string element (a nested array) is refused, not dereferenced. */
    const char *pairs[] = {"url", "http://e.com/", NULL};
    redisReply *r = fake_reply(&f, pairs);
    f.items[1].type = REDIS_REPLY_ARRAY;
    f.items[1].elements = 0;
    f.items[1].element = NULL;
    assert_int_equal(hq_endpoint_from_reply(r, "ep_x", &e, &err), HQ_EINVAL);
    assert_int_equal(hq_endpoint_from_reply(NULL, "ep_x", &e, &err), HQ_EINVAL);
}

/* ---- A whole endpoint
 * ----------------------------------------------------------------- */

static void test_validate_checks_every_field(void **state)
{
    (void)state;
    char *events[] = {"a.b"};
    char *headers[] = {"X-A: 1", "x-a: 2"};
    struct hq_endpoint e;
    memset(&e, 0, sizeof(e));
    e.name = "n";
    e.url = "https://example.com/";
    e.description = "line one\nline two";
    e.events = events;
    e.nevents = 1;
    struct hq_err err = {0};
    assert_int_equal(hq_endpoint_validate(&e, &strict, &err), 0);

    e.name = "";
    assert_int_equal(hq_endpoint_validate(&e, &strict, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "name: required");
    e.name = "bad\x1b[31m";
    assert_int_equal(hq_endpoint_validate(&e, &strict, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "name: control character 0x1b at offset 3");
    e.name = "n";

    e.headers = headers;
    e.nheaders = 2;
    assert_int_equal(hq_endpoint_validate(&e, &strict, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "header 'x-a': given twice");
    e.nheaders = 1;

    e.max_attempts = HQ_ENDPOINT_ATTEMPTS_MAX + 1;
    assert_int_equal(hq_endpoint_validate(&e, &strict, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "max-attempts: 101 is out of range (0 to 100)");
    e.max_attempts = 3;

    e.nevents = HQ_EVENT_FILTERS_MAX + 1;
    assert_int_equal(hq_endpoint_validate(&e, &strict, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "events: 65 filters, max 64");
    e.nevents = 1;

    e.url = "http://127.0.0.1/";
    assert_int_equal(hq_endpoint_validate(&e, &strict, &err), HQ_EBLOCKED);
}

static void test_ids_are_checked_for_shape_only(void **state)
{
    (void)state;
    struct hq_err err = {0};
    assert_int_equal(hq_endpoint_check_id("ep_abcdefghijklmnopqrstuvwx", &err), 0);
    assert_int_equal(hq_endpoint_check_id("ep_x", &err), 0);
    assert_int_equal(hq_endpoint_check_id("", &err), HQ_EINVAL);
    assert_int_equal(hq_endpoint_check_id("ep_x:evil", &err), HQ_EINVAL);
    assert_string_equal(err.msg, "id: 'ep_x:evil' is not an endpoint id (ep_...)");
    assert_int_equal(hq_endpoint_check_id("ep\nx", &err), HQ_EINVAL);
    assert_null(strchr(err.msg, '\n'));
    char long_id[HQ_ENDPOINT_ID_MAX + 2];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_int_equal(hq_endpoint_check_id(long_id, &err), HQ_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_accepts_http_and_https_with_host_names),
        cmocka_unit_test(test_url_refuses_user_and_password_without_echoing_them),
        cmocka_unit_test(test_url_refuses_schemes_other_than_http_and_https),
        cmocka_unit_test(test_url_refuses_relative_empty_long_and_control_characters),
        cmocka_unit_test(test_url_refuses_literal_blocked_addresses),
        cmocka_unit_test(test_url_allows_blocked_addresses_when_allowed),
        cmocka_unit_test(test_header_accepts_name_colon_value),
        cmocka_unit_test(test_header_refuses_forbidden_names_in_any_case),
        cmocka_unit_test(test_header_refuses_bad_shapes_without_echoing_values),
        cmocka_unit_test(test_filter_accepts_exact_star_and_dot_star),
        cmocka_unit_test(test_filter_refuses_misplaced_wildcards_and_bad_types),
        cmocka_unit_test(test_matching_follows_exact_prefix_and_star_filters),
        cmocka_unit_test(test_index_keys_for_a_dotted_type),
        cmocka_unit_test(test_filter_keys_agree_with_matching),
        cmocka_unit_test(test_hash_is_read_into_the_struct),
        cmocka_unit_test(test_hash_that_is_empty_or_malformed_is_refused),
        cmocka_unit_test(test_validate_checks_every_field),
        cmocka_unit_test(test_ids_are_checked_for_shape_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
