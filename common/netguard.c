/* The SSRF guard (common/netguard.h): the table of blocked ranges, the
 * allow-list parser, and the classification of socket addresses and URL host
 * literals. Pure: no DNS and no sockets; the worker calls hq_netguard_check on
 * every address curl is about to connect to (after resolution, so DNS
 * rebinding is covered), and endpoint validation calls hq_netguard_check_host
 * on IP-literal URLs so that obvious mistakes are refused at `endpoint add`.
 *
 * IPv6 forms that carry an IPv4 address (v4-mapped ::ffff:0:0/96, NAT64
 * 64:ff9b::/96 and 6to4 2002::/16) are judged by the IPv4 address they embed,
 * against the IPv4 table and the IPv4 allow-list entries.
 *
 * Allow-list CIDRs with host bits set ("10.1.2.3/16") are refused rather than
 * masked: the operator meant either the host or the network, and guessing
 * wrong would widen the hole in the guard. */
#include "common/netguard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct range {
    uint8_t addr[16];
    int bits;
    const char *cidr; /* as printed in reasons */
    const char *what; /* "loopback", "private", ... */
};

/* Order matters only where ranges nest: the more specific comes first so the
 * reason names it (255.255.255.255 inside 240/4). */
static const struct range v4_blocked[] = {
    {{0, 0, 0, 0}, 8, "0.0.0.0/8", "\"this network\""},
    {{127, 0, 0, 0}, 8, "127.0.0.0/8", "loopback"},
    {{10, 0, 0, 0}, 8, "10.0.0.0/8", "private"},
    {{172, 16, 0, 0}, 12, "172.16.0.0/12", "private"},
    {{192, 168, 0, 0}, 16, "192.168.0.0/16", "private"},
    {{169, 254, 0, 0}, 16, "169.254.0.0/16", "link-local"},
    {{100, 64, 0, 0}, 10, "100.64.0.0/10", "shared address space (CGNAT)"},
    {{192, 0, 0, 0}, 24, "192.0.0.0/24", "IETF protocol assignments"},
    {{198, 18, 0, 0}, 15, "198.18.0.0/15", "benchmarking"},
    {{224, 0, 0, 0}, 4, "224.0.0.0/4", "multicast"},
    {{255, 255, 255, 255}, 32, "255.255.255.255/32", "broadcast"},
    {{240, 0, 0, 0}, 4, "240.0.0.0/4", "reserved"},
};

static const struct range v6_blocked[] = {
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "::1/128", "loopback"},
    {{0}, 128, "::/128", "unspecified"},
    {{0xfe, 0x80}, 10, "fe80::/10", "link-local"},
    {{0xfc}, 7, "fc00::/7", "unique local"},
    {{0xfe, 0xc0}, 10, "fec0::/10", "site-local"},
    {{0xff}, 8, "ff00::/8", "multicast"},
};

/* IPv6 prefixes that embed an IPv4 address at byte offset 'off'. */
struct embed {
    uint8_t prefix[16];
    int bits;
    int off;
    const char *what;
};
static const struct embed v6_embeds[] = {
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96, 12, "v4-mapped"},
    {{0, 0x64, 0xff, 0x9b}, 96, 12, "NAT64"},
    {{0x20, 0x02}, 16, 2, "6to4"},
};

/* 1 when the first 'bits' bits of a and b are equal. */
static int prefix_eq(const uint8_t *a, const uint8_t *b, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

static int allowed_by_list(const struct hq_netguard *g, int family, const uint8_t *a)
{
    for (int i = 0; i < g->nallow; i++) {
        if (g->allow[i].family == family && prefix_eq(a, g->allow[i].addr, g->allow[i].bits))
            return 1;
    }
    return 0;
}

static const struct range *v4_match(const uint8_t a[4])
{
    for (size_t i = 0; i < sizeof(v4_blocked) / sizeof(*v4_blocked); i++) {
        if (prefix_eq(a, v4_blocked[i].addr, v4_blocked[i].bits))
            return &v4_blocked[i];
    }
    return NULL;
}

static void put_why(char *why, size_t why_len, const char *fmt, ...) HQ_PRINTF(3, 4);
static void put_why(char *why, size_t why_len, const char *fmt, ...)
{
    if (!why || !why_len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}

static int check_v4(const struct hq_netguard *g, const uint8_t a[4], char *why, size_t why_len)
{
    if (allowed_by_list(g, AF_INET, a))
        return 0;
    const struct range *r = v4_match(a);
    if (!r)
        return 0;
    char s[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, a, s, sizeof(s));
    put_why(why, why_len, "%s is %s (%s)", s, r->what, r->cidr);
    return HQ_EBLOCKED;
}

static int check_v6(const struct hq_netguard *g, const uint8_t a[16], char *why, size_t why_len)
{
    if (allowed_by_list(g, AF_INET6, a))
        return 0;
    char s[INET6_ADDRSTRLEN];
    for (size_t i = 0; i < sizeof(v6_blocked) / sizeof(*v6_blocked); i++) {
        const struct range *r = &v6_blocked[i];
        if (prefix_eq(a, r->addr, r->bits)) {
            inet_ntop(AF_INET6, a, s, sizeof(s));
            put_why(why, why_len, "%s is %s (%s)", s, r->what, r->cidr);
            return HQ_EBLOCKED;
        }
    }
    for (size_t i = 0; i < sizeof(v6_embeds) / sizeof(*v6_embeds); i++) {
        const struct embed *e = &v6_embeds[i];
        if (!prefix_eq(a, e->prefix, e->bits))
            continue;
        const uint8_t *v4 = a + e->off;
        if (allowed_by_list(g, AF_INET, v4))
            return 0;
        const struct range *r = v4_match(v4);
        if (!r)
            return 0;
        char s4[INET_ADDRSTRLEN];
        inet_ntop(AF_INET6, a, s, sizeof(s));
        inet_ntop(AF_INET, v4, s4, sizeof(s4));
        put_why(why, why_len, "%s (%s form of %s) is %s (%s)", s, e->what, s4, r->what, r->cidr);
        return HQ_EBLOCKED;
    }
    return 0;
}

int hq_netguard_check(const struct hq_netguard *g, const struct sockaddr *sa, char *why,
                      size_t why_len)
{
    if (!sa) {
        put_why(why, why_len, "no address");
        return HQ_EBLOCKED;
    }
    if (g && g->allow_private)
        return 0;
    static const struct hq_netguard none = {0};
    if (!g)
        g = &none;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, sa, sizeof(sin));
        return check_v4(g, (const uint8_t *)&sin.sin_addr, why, why_len);
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, sa, sizeof(sin6));
        return check_v6(g, sin6.sin6_addr.s6_addr, why, why_len);
    }
    put_why(why, why_len, "address family %d is not IPv4 or IPv6", (int)sa->sa_family);
    return HQ_EBLOCKED;
}

int hq_netguard_check_host(const struct hq_netguard *g, const char *host, char *why, size_t why_len)
{
    if (!host || !*host)
        return 0;
    static const struct hq_netguard none = {0};
    if (!g)
        g = &none;
    char buf[INET6_ADDRSTRLEN + 8];
    size_t n = strlen(host);
    const char *h = host;
    if (h[0] == '[') {
        if (n < 2 || h[n - 1] != ']') {
            if (why && why_len)
                snprintf(why, why_len, "'%.*s' is not an IPv6 literal", 64, host);
            return HQ_EINVAL;
        }
        h++;
        n -= 2;
    }
    /* A zone id ("fe80::1%eth0", URL-encoded "%25eth0") does not change the
     * address: drop it before parsing. */
    const char *pct = memchr(h, '%', n);
    if (pct)
        n = (size_t)(pct - h);
    if (memchr(h, ':', n)) {
        struct in6_addr a6;
        if (n >= sizeof(buf))
            goto bad6;
        memcpy(buf, h, n);
        buf[n] = '\0';
        if (inet_pton(AF_INET6, buf, &a6) != 1)
            goto bad6;
        if (g->allow_private)
            return 0;
        return check_v6(g, a6.s6_addr, why, why_len);
    }
    if (host[0] == '[')
        goto bad6;
    /* inet_aton, not inet_pton: it accepts the shorthand forms libcurl and the
     * OS resolver also accept ("127.1", "0x7f.1", "2130706433", "017700000001"),
     * so none of them slips past as a "host name". */
    struct in_addr a4;
    if (inet_aton(host, &a4) != 0) {
        if (g->allow_private)
            return 0;
        return check_v4(g, (const uint8_t *)&a4, why, why_len);
    }
    return 0;
bad6:
    put_why(why, why_len, "'%.*s' is not an IPv6 literal", 64, host);
    return HQ_EINVAL;
}

/* ---- Allow-list ------------------------------------------------------------------------ */

static int bad_cidr(struct hq_err *err, const char *item, size_t n, const char *why)
{
    return hq_err_set(err, HQ_EINVAL, "--allow-cidrs: '%.*s' %s", n > 64 ? 64 : (int)n, item, why);
}

/* Parses one "addr[/bits]" item of n bytes into c. A bare address is a single host. */
static int parse_one(const char *item, size_t n, struct hq_cidr *c, struct hq_err *err)
{
    char buf[INET6_ADDRSTRLEN + 8];
    const char *slash = memchr(item, '/', n);
    size_t alen = slash ? (size_t)(slash - item) : n;
    if (alen == 0 || alen >= sizeof(buf))
        return bad_cidr(err, item, n, "is not a CIDR range");
    memcpy(buf, item, alen);
    buf[alen] = '\0';
    memset(c, 0, sizeof(*c));
    int maxbits;
    if (inet_pton(AF_INET, buf, c->addr) == 1) {
        c->family = AF_INET;
        maxbits = 32;
    } else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
        c->family = AF_INET6;
        maxbits = 128;
    } else {
        return bad_cidr(err, item, n, "is not a CIDR range");
    }
    c->bits = maxbits;
    if (slash) {
        const char *p = slash + 1, *end = item + n;
        if (p == end || end - p > 3)
            return bad_cidr(err, item, n, "is not a CIDR range");
        int bits = 0;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9')
                return bad_cidr(err, item, n, "is not a CIDR range");
            bits = bits * 10 + (*p - '0');
        }
        if (bits > maxbits)
            return bad_cidr(err, item, n, "is not a CIDR range");
        c->bits = bits;
    }
    /* Host bits set: refuse and name the network the operator probably meant. */
    uint8_t masked[16];
    memset(masked, 0, sizeof(masked));
    int bytes = c->bits / 8, rest = c->bits % 8;
    memcpy(masked, c->addr, (size_t)bytes);
    if (rest)
        masked[bytes] = (uint8_t)(c->addr[bytes] & (0xff << (8 - rest)));
    if (memcmp(masked, c->addr, (size_t)(maxbits / 8)) != 0) {
        char net[INET6_ADDRSTRLEN], msg[128];
        inet_ntop(c->family, masked, net, sizeof(net));
        snprintf(msg, sizeof(msg), "has host bits set (the network is %s/%d)", net, c->bits);
        return bad_cidr(err, item, n, msg);
    }
    return 0;
}

int hq_netguard_parse_cidrs(struct hq_netguard *g, const char *list, struct hq_err *err)
{
    if (!list)
        return 0;
    const char *p = list;
    while (*p) {
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        if (*p == ',')
            p++;
        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (start == end)
            continue; /* "a,,b" and a trailing comma are harmless */
        if (g->nallow >= HQ_ALLOW_CIDRS_MAX)
            return hq_err_set(err, HQ_EINVAL, "--allow-cidrs: more than %d ranges",
                              HQ_ALLOW_CIDRS_MAX);
        struct hq_cidr c;
        int rc = parse_one(start, (size_t)(end - start), &c, err);
        if (rc != 0)
            return rc;
        g->allow[g->nallow++] = c;
    }
    return 0;
}
