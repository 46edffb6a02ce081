/* SSRF rules (pure): classifies a socket address as allowed or blocked, with a
 * reason. Blocked unless allowed: 0.0.0.0/8, 127/8, 10/8, 172.16/12, 192.168/16,
 * 169.254/16, 100.64/10, 192.0.0/24, 198.18/15, 224/4, 240/4, 255.255.255.255;
 * ::1, ::, fe80::/10, fc00::/7, fec0::/10, ff00::/8, and the v4-mapped
 * (::ffff:0:0/96), NAT64 (64:ff9b::/96) and 6to4 (2002::/16) forms of blocked
 * IPv4 addresses. HOOKQ_ALLOW_PRIVATE=1 allows everything; HOOKQ_ALLOW_CIDRS
 * allows the listed ranges. */
#ifndef HQ_COMMON_NETGUARD_H
#define HQ_COMMON_NETGUARD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/err.h"

#define HQ_ALLOW_CIDRS_MAX 64

struct hq_cidr {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network address (4 or 16 bytes used) */
    int bits;         /* prefix length */
};

struct hq_netguard {
    int allow_private;                        /* 1: nothing is blocked */
    struct hq_cidr allow[HQ_ALLOW_CIDRS_MAX]; /* explicitly allowed ranges */
    int nallow;
};

/* Parses "10.1.0.0/16,fd00::/8" into g->allow (appending). HQ_EINVAL
 * "--allow-cidrs: '10.1.0.0/33' is not a CIDR range". */
int hq_netguard_parse_cidrs(struct hq_netguard *g, const char *list,
                            struct hq_err *err) HQ_MUST_CHECK;

/* 0 when connecting to sa is allowed; HQ_EBLOCKED with why filled
 * ("127.0.0.1 is loopback (127.0.0.0/8)") otherwise. */
int hq_netguard_check(const struct hq_netguard *g, const struct sockaddr *sa, char *why,
                      size_t why_len) HQ_MUST_CHECK;

/* Same for a URL host that is an IP literal ("127.0.0.1", "[::1]", "::1");
 * a host name returns 0 (checked at connect time). */
int hq_netguard_check_host(const struct hq_netguard *g, const char *host, char *why,
                           size_t why_len) HQ_MUST_CHECK;

/* Options shared by `endpoint add/update` and `worker` (use with common/config.h):
 *   int allow_private = 0; const char *allow_cidrs = NULL; */
#define HQ_NETGUARD_OPTS(allow_private, allow_cidrs)                                               \
    {"allow-private",                                                                              \
     HQ_OPT_BOOL,                                                                                  \
     (allow_private),                                                                              \
     NULL,                                                                                         \
     "allow private, loopback and link-local targets",                                             \
     0,                                                                                            \
     0,                                                                                            \
     0,                                                                                            \
     0},                                                                                           \
    {                                                                                              \
        "allow-cidrs", HQ_OPT_STR, (allow_cidrs), "LIST",                                          \
            "comma-separated CIDR ranges allowed despite the SSRF guard", 0, 0, 0, 0               \
    }
#endif
