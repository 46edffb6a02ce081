/* SSRF guard: every blocked range's first and last address, public addresses,
 * IPv4 embedded in v4-mapped/NAT64/6to4 IPv6, URL host literals (including
 * the inet_aton shorthand forms), the allow-list and allow_private, and CIDR
 * parse errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "common/netguard.h"
#include "tests/harness/hq_test.h"

/* Builds a sockaddr from an address literal (v4 or v6) and runs the check. */
static int check_addr(const struct hq_netguard *g, const char *a, char *why, size_t n)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, a, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(443);
    } else if (inet_pton(AF_INET6, a, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(443);
    } else {
        fail_msg("bad test address '%s'", a);
    }
    return hq_netguard_check(g, (const struct sockaddr *)&ss, why, n);
}

struct row {
    const char *addr;
    const char *why; /* NULL: allowed */
};

static void run_table(const struct hq_netguard *g, const struct row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char why[256] = "";
        int rc = check_addr(g, rows[i].addr, why, sizeof(why));
        if (!rows[i].why) {
            if (rc != 0)
                fail_msg("%s: blocked (%s), want allowed", rows[i].addr, why);
            continue;
        }
        if (rc != HQ_EBLOCKED)
            fail_msg("%s: allowed, want blocked", rows[i].addr);
        if (strcmp(why, rows[i].why) != 0)
            fail_msg("%s: why '%s', want '%s'", rows[i].addr, why, rows[i].why);
    }
}

static const struct row v4_rows[] = {
    {"0.0.0.0", "0.0.0.0 is \"this network\" (0.0.0.0/8)"},
    {"0.255.255.255", "0.255.255.255 is \"this network\" (0.0.0.0/8)"},
    {"127.0.0.0", "127.0.0.0 is loopback (127.0.0.0/8)"},
    {"127.255.255.255", "127.255.255.255 is loopback (127.0.0.0/8)"},
    {"10.0.0.0", "10.0.0.0 is private (10.0.0.0/8)"},
    {"10.255.255.255", "10.255.255.255 is private (10.0.0.0/8)"},
    {"172.16.0.0", "172.16.0.0 is private (172.16.0.0/12)"},
    {"172.31.255.255", "172.31.255.255 is private (172.16.0.0/12)"},
    {"192.168.0.0", "192.168.0.0 is private (192.168.0.0/16)"},
    {"192.168.255.255", "192.168.255.255 is private (192.168.0.0/16)"},
    {"169.254.0.0", "169.254.0.0 is link-local (169.254.0.0/16)"},
    {"169.254.169.254", "169.254.169.254 is link-local (169.254.0.0/16)"},
    {"169.254.255.255", "169.254.255.255 is link-local (169.254.0.0/16)"},
    {"100.64.0.0", "100.64.0.0 is shared address space (CGNAT) (100.64.0.0/10)"},
    {"100.127.255.255", "100.127.255.255 is shared address space (CGNAT) (100.64.0.0/10)"},
    {"192.0.0.0", "192.0.0.0 is IETF protocol assignments (192.0.0.0/24)"},
    {"192.0.0.255", "192.0.0.255 is IETF protocol assignments (192.0.0.0/24)"},
    {"198.18.0.0", "198.18.0.0 is benchmarking (198.18.0.0/15)"},
    {"198.19.255.255", "198.19.255.255 is benchmarking (198.18.0.0/15)"},
    {"224.0.0.0", "224.0.0.0 is multicast (224.0.0.0/4)"},
    {"239.255.255.255", "239.255.255.255 is multicast (224.0.0.0/4)"},
    {"240.0.0.0", "240.0.0.0 is reserved (240.0.0.0/4)"},
    {"255.255.255.254", "255.255.255.254 is reserved (240.0.0.0/4)"},
    {"255.255.255.255", "255.255.255.255 is broadcast (255.255.255.255/32)"},
    /* Neighbours just outside the ranges, and public addresses. */
    {"1.0.0.0", NULL},
    {"1.1.1.1", NULL},
    {"8.8.8.8", NULL},
    {"9.255.255.255", NULL},
    {"11.0.0.0", NULL},
    {"126.255.255.255", NULL},
    {"128.0.0.0", NULL},
    {"172.15.255.255", NULL},
    {"172.32.0.0", NULL},
    {"192.167.255.255", NULL},
    {"192.169.0.0", NULL},
    {"169.253.255.255", NULL},
    {"100.63.255.255", NULL},
    {"100.128.0.0", NULL},
    {"192.0.1.0", NULL},
    {"198.17.255.255", NULL},
    {"198.20.0.0", NULL},
    {"223.255.255.255", NULL},
};

static const struct row v6_rows[] = {
    {"::1", "::1 is loopback (::1/128)"},
    {"::", ":: is unspecified (::/128)"},
    {"fe80::", "fe80:: is link-local (fe80::/10)"},
    {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
     "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff is link-local (fe80::/10)"},
    {"fc00::", "fc00:: is unique local (fc00::/7)"},
    {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
     "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff is unique local (fc00::/7)"},
    {"fec0::", "fec0:: is site-local (fec0::/10)"},
    {"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
     "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff is site-local (fec0::/10)"},
    {"ff00::", "ff00:: is multicast (ff00::/8)"},
    {"ff02::1", "ff02::1 is multicast (ff00::/8)"},
    {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff is multicast (ff00::/8)"},
    /* IPv4 embedded in IPv6: judged by the IPv4 address. */
    {"::ffff:127.0.0.1",
     "::ffff:127.0.0.1 (v4-mapped form of 127.0.0.1) is loopback (127.0.0.0/8)"},
    {"::ffff:169.254.169.254",
     "::ffff:169.254.169.254 (v4-mapped form of 169.254.169.254) is link-local (169.254.0.0/16)"},
    {"::ffff:10.1.2.3", "::ffff:10.1.2.3 (v4-mapped form of 10.1.2.3) is private (10.0.0.0/8)"},
    {"64:ff9b::7f00:1", "64:ff9b::7f00:1 (NAT64 form of 127.0.0.1) is loopback (127.0.0.0/8)"},
    {"64:ff9b::a9fe:a9fe",
     "64:ff9b::a9fe:a9fe (NAT64 form of 169.254.169.254) is link-local (169.254.0.0/16)"},
    {"2002:7f00:1::", "2002:7f00:1:: (6to4 form of 127.0.0.1) is loopback (127.0.0.0/8)"},
    {"2002:c0a8:101::1", "2002:c0a8:101::1 (6to4 form of 192.168.1.1) is private (192.168.0.0/16)"},
    {"::ffff:1.1.1.1", NULL},
    {"64:ff9b::101:101", NULL},
    {"2002:808:808::1", NULL},
    /* Public IPv6 and the neighbours of blocked ranges. */
    {"2606:4700::1111", NULL},
    {"2001:4860:4860::8888", NULL},
    {"::2", NULL},
    {"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
    {"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
    {"feff::", "feff:: is site-local (fec0::/10)"},
};

static void test_every_blocked_ipv4_range_edge_and_public_neighbours(void **state)
{
    (void)state;
    struct hq_netguard g = {0};
    run_table(&g, v4_rows, sizeof(v4_rows) / sizeof(*v4_rows));
}

static void test_every_blocked_ipv6_range_edge_and_embedded_ipv4(void **state)
{
    (void)state;
    struct hq_netguard g = {0};
    run_table(&g, v6_rows, sizeof(v6_rows) / sizeof(*v6_rows));
}

static void test_allow_private_allows_everything(void **state)
{
    (void)state;
    struct hq_netguard g = {0};
    g.allow_private = 1;
    const char *all[] = {"127.0.0.1", "169.254.169.254", "::1", "::ffff:10.0.0.1", "ff02::1"};
    for (size_t i = 0; i < sizeof(all) / sizeof(*all); i++)
        assert_int_equal(check_addr(&g, all[i], NULL, 0), 0);
    char why[128];
    assert_int_equal(hq_netguard_check_host(&g, "127.0.0.1", why, sizeof(why)), 0);
    assert_int_equal(hq_netguard_check_host(&g, "[::1]", why, sizeof(why)), 0);
}

static void test_allow_list_opens_only_the_listed_ranges(void **state)
{
    (void)state;
    struct hq_netguard g = {0};
    struct hq_err err = {0};
    assert_int_equal(hq_netguard_parse_cidrs(&g, "10.1.0.0/16, fd00::/8,127.0.0.1,", &err), 0);
    assert_int_equal(g.nallow, 3);
    const struct row rows[] = {
        {"10.1.0.0", NULL},
        {"10.1.255.255", NULL},
        {"10.2.0.0", "10.2.0.0 is private (10.0.0.0/8)"},
        {"10.0.255.255", "10.0.255.255 is private (10.0.0.0/8)"},
        {"127.0.0.1", NULL},
        {"127.0.0.2", "127.0.0.2 is loopback (127.0.0.0/8)"},
        {"fd12::1", NULL},
        {"fc00::1", "fc00::1 is unique local (fc00::/7)"},
        /* The allowed IPv4 range is allowed in its embedded forms too. */
        {"::ffff:10.1.2.3", NULL},
        {"64:ff9b::a01:203", NULL},
        {"::ffff:10.2.0.1", "::ffff:10.2.0.1 (v4-mapped form of 10.2.0.1) is private (10.0.0.0/8)"},
        {"169.254.169.254", "169.254.169.254 is link-local (169.254.0.0/16)"},
    };
    run_table(&g, rows, sizeof(rows) / sizeof(*rows));

    /* Without the list, the same addresses are blocked. */
    struct hq_netguard none = {0};
    assert_int_equal(check_addr(&none, "10.1.2.3", NULL, 0), HQ_EBLOCKED);
    assert_int_equal(check_addr(&none, "fd12::1", NULL, 0), HQ_EBLOCKED);

    /* Appending: a second call adds to the list. */
    assert_int_equal(hq_netguard_parse_cidrs(&g, "169.254.0.0/16", &err), 0);
    assert_int_equal(g.nallow, 4);
    assert_int_equal(check_addr(&g, "169.254.169.254", NULL, 0), 0);
    /* /0 allows a whole family. */
    struct hq_netguard all6 = {0};
    assert_int_equal(hq_netguard_parse_cidrs(&all6, "::/0", &err), 0);
    assert_int_equal(check_addr(&all6, "::1", NULL, 0), 0);
    assert_int_equal(check_addr(&all6, "127.0.0.1", NULL, 0), HQ_EBLOCKED);
}

static void test_bad_cidrs_give_one_line_naming_the_item(void **state)
{
    (void)state;
    struct {
        const char *list;
        const char *msg;
    } cases[] = {
        {"10.1.0.0/33", "--allow-cidrs: '10.1.0.0/33' is not a CIDR range"},
        {"fd00::/129", "--allow-cidrs: 'fd00::/129' is not a CIDR range"},
        {"10.1.0.0/", "--allow-cidrs: '10.1.0.0/' is not a CIDR range"},
        {"10.1.0.0/-1", "--allow-cidrs: '10.1.0.0/-1' is not a CIDR range"},
        {"10.1.0.0/1x", "--allow-cidrs: '10.1.0.0/1x' is not a CIDR range"},
        {"10.1/16", "--allow-cidrs: '10.1/16' is not a CIDR range"},
        {"example.com/8", "--allow-cidrs: 'example.com/8' is not a CIDR range"},
        {"/8", "--allow-cidrs: '/8' is not a CIDR range"},
        {"10.0.0.0/8,300.1.1.1/32", "--allow-cidrs: '300.1.1.1/32' is not a CIDR range"},
        {"10.1.2.3/16",
         "--allow-cidrs: '10.1.2.3/16' has host bits set (the network is 10.1.0.0/16)"},
        {"fd00::1/8", "--allow-cidrs: 'fd00::1/8' has host bits set (the network is fd00::/8)"},
        {"10.1.2.3/0000", "--allow-cidrs: '10.1.2.3/0000' is not a CIDR range"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct hq_netguard g = {0};
        struct hq_err err = {0};
        assert_int_equal(hq_netguard_parse_cidrs(&g, cases[i].list, &err), HQ_EINVAL);
        assert_string_equal(err.msg, cases[i].msg);
    }
    /* Too many ranges. */
    static char many[HQ_ALLOW_CIDRS_MAX * 16 + 32];
    many[0] = '\0';
    for (int i = 0; i <= HQ_ALLOW_CIDRS_MAX; i++) {
        char one[24];
        snprintf(one, sizeof(one), "10.%d.0.0/16,", i);
        strcat(many, one);
    }
    struct hq_netguard g = {0};
    struct hq_err err = {0};
    assert_int_equal(hq_netguard_parse_cidrs(&g, many, &err), HQ_EINVAL);
    assert_string_equal(err.msg, "--allow-cidrs: more than 64 ranges");
    /* A huge item is echoed truncated, never whole. */
    static char huge[4000];
    memset(huge, '9', sizeof(huge) - 1);
    assert_int_equal(hq_netguard_parse_cidrs(&g, huge, &err), HQ_EINVAL);
    assert_true(strlen(err.msg) < 120);
    /* Empty and NULL lists are no-ops. */
    struct hq_netguard e = {0};
    assert_int_equal(hq_netguard_parse_cidrs(&e, "", &err), 0);
    assert_int_equal(hq_netguard_parse_cidrs(&e, NULL, &err), 0);
    assert_int_equal(e.nallow, 0);
}

static void test_host_literals_including_inet_aton_shorthand_are_checked(void **state)
{
    (void)state;
    struct hq_netguard g = {0};
    struct {
        const char *host;
        int rc;
        const char *why;
    } cases[] = {
        {"127.0.0.1", HQ_EBLOCKED, "127.0.0.1 is loopback (127.0.0.0/8)"},
        {"2130706433", HQ_EBLOCKED, "127.0.0.1 is loopback (127.0.0.0/8)"},
        {"0x7f.1", HQ_EBLOCKED, "127.0.0.1 is loopback (127.0.0.0/8)"},
        {"127.1", HQ_EBLOCKED, "127.0.0.1 is loopback (127.0.0.0/8)"},
        {"017700000001", HQ_EBLOCKED, "127.0.0.1 is loopback (127.0.0.0/8)"},
        {"0xa9fea9fe", HQ_EBLOCKED, "169.254.169.254 is link-local (169.254.0.0/16)"},
        {"0", HQ_EBLOCKED, "0.0.0.0 is \"this network\" (0.0.0.0/8)"},
        {"[::1]", HQ_EBLOCKED, "::1 is loopback (::1/128)"},
        {"::1", HQ_EBLOCKED, "::1 is loopback (::1/128)"},
        {"[::ffff:127.0.0.1]", HQ_EBLOCKED,
         "::ffff:127.0.0.1 (v4-mapped form of 127.0.0.1) is loopback (127.0.0.0/8)"},
        {"[fe80::1%25eth0]", HQ_EBLOCKED, "fe80::1 is link-local (fe80::/10)"},
        {"fe80::1%eth0", HQ_EBLOCKED, "fe80::1 is link-local (fe80::/10)"},
        {"[::1", HQ_EINVAL, "'[::1' is not an IPv6 literal"},
        {"[127.0.0.1]", HQ_EINVAL, "'[127.0.0.1]' is not an IPv6 literal"},
        {"[::zz]", HQ_EINVAL, "'[::zz]' is not an IPv6 literal"},
        {"1.1.1.1", 0, NULL},
        {"[2606:4700::1111]", 0, NULL},
        {"example.com", 0, NULL},
        {"localhost", 0, NULL}, /* a name: judged at connect time */
        {"1e100.net", 0, NULL},
        {"", 0, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char why[256] = "";
        int rc = hq_netguard_check_host(&g, cases[i].host, why, sizeof(why));
        if (rc != cases[i].rc)
            fail_msg("%s: rc %d (%s), want %d", cases[i].host, rc, why, cases[i].rc);
        if (cases[i].why)
            assert_string_equal(why, cases[i].why);
    }
    /* A host literal in the allow-list passes, shorthand included. */
    struct hq_err err = {0};
    assert_int_equal(hq_netguard_parse_cidrs(&g, "127.0.0.0/8", &err), 0);
    assert_int_equal(hq_netguard_check_host(&g, "0x7f.1", NULL, 0), 0);
    assert_int_equal(hq_netguard_check_host(&g, "[::ffff:127.0.0.1]", NULL, 0), 0);
}

static void test_non_ip_families_and_null_are_blocked(void **state)
{
    (void)state;
    struct hq_netguard g = {0};
    struct sockaddr sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_family = AF_UNIX;
    char why[128];
    assert_int_equal(hq_netguard_check(&g, &sa, why, sizeof(why)), HQ_EBLOCKED);
    assert_string_equal(why, "address family 1 is not IPv4 or IPv6");
    assert_int_equal(hq_netguard_check(&g, NULL, why, sizeof(why)), HQ_EBLOCKED);
    /* A tiny why buffer truncates without overflowing. */
    char small[8];
    assert_int_equal(check_addr(&g, "169.254.169.254", small, sizeof(small)), HQ_EBLOCKED);
    assert_string_equal(small, "169.254");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_blocked_ipv4_range_edge_and_public_neighbours),
        cmocka_unit_test(test_every_blocked_ipv6_range_edge_and_embedded_ipv4),
        cmocka_unit_test(test_allow_private_allows_everything),
        cmocka_unit_test(test_allow_list_opens_only_the_listed_ranges),
        cmocka_unit_test(test_bad_cidrs_give_one_line_naming_the_item),
        cmocka_unit_test(test_host_literals_including_inet_aton_shorthand_are_checked),
        cmocka_unit_test(test_non_ip_families_and_null_are_blocked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
