/* Endpoints (the product's "webhooks"): the model, its validation, type
 * matching and hash decoding (endpoint.c, pure). Their blocking Redis storage
 * is common/endpoint_store.h, a header apart so that including this one
 * (as the worker does) cannot reach blocking I/O by accident.
 *
 * Storage (docs/internals/redis-layout.md), every key on the registry base <r>
 * (hq_layout's L.reg: "<prefix>" untagged, "<prefix>:{reg}" tagged, so the
 * registry is one cluster slot and its MULTI/WATCH transactions stay valid):
 *   <r>:ep:<id>        hash: name url description events headers key1 key2
 *                      key1_ms key2_ms enabled max_attempts created_ms updated_ms
 *                      tenant backoff_base_ms backoff_factor backoff_max_ms
 *                      retry_window_ms rate_limit (each optional: absent/""/0 = none/the
 *                      deployment's policy)
 *                      breaker_failures breaker_ratio breaker_window_ms
 *                      breaker_min_attempts breaker_probe_ms (circuit breaker
 *                      overrides; absent/"" = the worker's --breaker-*; 0 = the
 *                      worker's too but for breaker_ratio, where 0 = off)
 *                      ordered ("block" | "skip"; absent/"" = not ordered)
 *                      events  = filters joined by ","  ("invoice.paid,user.*")
 *                      headers = "Name: value" lines joined by "\n" (CR/LF are refused in headers)
 *   <r>:endpoints      zset id -> created ms (paged listing)
 *   <r>:idx:t:<type>   set of ids subscribed to exactly <type>
 *   <r>:idx:p:<pre>    set of ids with a filter "<pre>*" ("" for "*", "user." for "user.*")
 *   <r>:endpoints:ver  counter bumped on every change (workers' cache check)
 *   <r>:idx:tenant:<t> set of ids of tenant <t> (endpoint list --tenant, stats --tenant)
 * Finding the subscribers of type "a.b.c" is one SUNION over idx:t:a.b.c,
 * idx:p:, idx:p:a., idx:p:a.b. (hq_endpoint_index_keys): no scan of endpoints.
 * A filter is an exact type, "*", or "<prefix>.*" (a wildcard only after a dot).
 * "*" does not match reserved types (HQ_RESERVED_TYPE_PREFIX, "hookq."): only
 * an explicit filter ("hookq.*", "hookq.endpoint.*", an exact type) does. */
#ifndef HQ_COMMON_ENDPOINT_H
#define HQ_COMMON_ENDPOINT_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "common/backoff.h"
#include "common/batch.h"
#include "common/err.h"
#include "common/keys.h"
#include "common/limits.h"
#include "common/netguard.h"
#include "common/ratelimit.h"
#include "common/sign.h"

/* Per-endpoint circuit breaker overrides; each unset (0, ratio_set 0) = the
 * worker's --breaker-* value. Ranges: hq_endpoint_validate (HQ_BREAKER_*). */
struct hq_endpoint_breaker {
    long long failures;     /* consecutive failures that open it */
    long long ratio;        /* % of a window's attempts failed that opens it (0 off) */
    int ratio_set;          /* 1: ratio is the endpoint's */
    long long window_ms;    /* the ratio's window */
    long long min_attempts; /* attempts in the window before the ratio counts */
    long long probe_ms;     /* one probe this often while open */
};

struct hq_endpoint {
    char id[HQ_ENDPOINT_ID_MAX + 1]; /* "ep_" + 24 lowercase base32 chars */
    char *name;                      /* owned */
    char *url;                       /* owned */
    char *description;               /* owned; "" when none */
    char **events;                   /* owned array of owned filters; none = "*" */
    int nevents;
    char **headers; /* owned array of owned "Name: value" */
    int nheaders;
    char key1[HQ_SECRET_STR_MAX]; /* whsec_...; secret */
    char key2[HQ_SECRET_STR_MAX]; /* whsec_...; secret */
    long long key1_ms,
        key2_ms;      /* when each key was generated, unix ms (rotate replaces the older) */
    int enabled;      /* 0 = disabled: nothing delivered, due retries dead-lettered */
    int max_attempts; /* 0 = the deployment's HOOKQ_MAX_ATTEMPTS */
    long long created_ms, updated_ms;
    char tenant[HQ_TENANT_MAX + 1]; /* owning tenant (customer/account id); "" = none */
    /* Retry policy overrides, field by field; 0 = the deployment's value. */
    long long backoff_base_ms;          /* delay after the first failure, ms */
    double backoff_factor;              /* growth per failure, >= 1 */
    long long backoff_max_ms;           /* ceiling of one delay, ms */
    long long retry_window_ms;          /* no retry due later than the first attempt + this, ms */
    struct hq_rate rate;                /* rate limit (hash field rate_limit "50/s"); n 0 = none */
    struct hq_endpoint_breaker breaker; /* circuit breaker overrides (breaker_* fields) */
    struct hq_batch_cfg batch;          /* --batch (hash field batch); max 0 = off */
    int ordered; /* hash field ordered: HQ_ORDERED_OFF ("" / absent), _BLOCK, _SKIP */
};

/* Ordered delivery (docs/ordering.md): off, or one line per ordering key whose
 * failed head holds the line until it is delivered or dead (block), or is
 * dead-lettered at once (skip). */
enum { HQ_ORDERED_OFF = 0, HQ_ORDERED_BLOCK = 1, HQ_ORDERED_SKIP = 2 };
/* "block" / "skip" / "" for e->ordered. */
const char *hq_endpoint_ordered_name(int ordered);
/* Parses an --ordered-on-failure value ("block", "skip") into *out. HQ_EINVAL naming the flag. */
int hq_endpoint_parse_ordered(const char *s, int *out, struct hq_err *err) HQ_MUST_CHECK;

void hq_endpoint_free(struct hq_endpoint *e); /* frees the owned fields, wipes keys */
/* Frees an owned list of owned strings (e->events, e->headers) and leaves it
 * empty (*v NULL, *n 0), ready to be replaced. */
void hq_endpoint_free_list(char ***v, int *n);

/* ---- Validation (pure) ---------------------------------------------------- */
/* URL: http/https only (libcurl's URL API), no user:password, <= HQ_URL_MAX,
 * and a literal blocked address refused per the netguard g. */
int hq_endpoint_check_url(const char *url, const struct hq_netguard *g,
                          struct hq_err *err) HQ_MUST_CHECK;
/* "Name: value": token name, no CR/LF/NUL, <= HQ_HEADER_LINE_MAX, not host,
 * content-length, content-type, user-agent, webhook-* (case-insensitive). */
int hq_endpoint_check_header(const char *line, struct hq_err *err) HQ_MUST_CHECK;
/* An event filter: a valid type, "*", or "<type>.*". */
int hq_endpoint_check_filter(const char *f, struct hq_err *err) HQ_MUST_CHECK;
/* 1 when a filter list (none = everything) matches the type. */
int hq_endpoint_matches(const struct hq_endpoint *e, const char *type, size_t type_len);

/* Writes the index keys to union for a type into keys (each HQ_KEY_MAX);
 * returns their count (<= HQ_TYPE_MAX / 2 + 2). */
int hq_endpoint_index_keys(const char *base, const char *type, size_t type_len,
                           char (*keys)[HQ_KEY_MAX], int max);

/* Fills e from an HGETALL reply's field/value pairs (array of strings).
 * HQ_ENOTFOUND for an empty reply; HQ_EINVAL for a malformed hash. */
int hq_endpoint_from_reply(const redisReply *r, const char *id, struct hq_endpoint *e,
                           struct hq_err *err) HQ_MUST_CHECK;

/* The hash fields a listing reads: every field but the keys, so a listing
 * never holds a secret. */
#define HQ_ENDPOINT_LISTING_FIELDS 22
extern const char *const hq_endpoint_listing_fields[HQ_ENDPOINT_LISTING_FIELDS];
/* Fills e (caller frees with hq_endpoint_free) from an HMGET of
 * hq_endpoint_listing_fields, leniently: a hand-edited hash is shown as well
 * as it can be, not hidden. 0, 1 when the endpoint is gone (every field nil),
 * -1 for a reply of another shape. */
int hq_endpoint_from_listing(const redisReply *r, const char *id, struct hq_endpoint *e);

/* ---- Additions (validation of a whole endpoint, id syntax, one filter's key) --- */
/* Enough index keys for any type of up to HQ_TYPE_MAX chars: the exact key, the
 * "*" key and one per dot. Pass it as max to hq_endpoint_index_keys, which
 * returns HQ_EINVAL for an empty or over-long type and HQ_ETOOBIG when max is
 * smaller than the count (a type of many dots exceeds HQ_TYPE_MAX / 2 + 2). */
#define HQ_ENDPOINT_INDEX_KEYS_MAX (HQ_TYPE_MAX + 2)

/* Validates every field of e before create/save: name (1-HQ_NAME_MAX chars, no
 * control characters), description (<= HQ_DESCRIPTION_MAX, no control
 * characters but tab and newline), url (hq_endpoint_check_url with g), each
 * filter and header and their counts, max_attempts (0-HQ_ENDPOINT_ATTEMPTS_MAX).
 * HQ_EINVAL/HQ_EBLOCKED with a message naming the field. Pure. */
int hq_endpoint_validate(const struct hq_endpoint *e, const struct hq_netguard *g,
                         struct hq_err *err) HQ_MUST_CHECK;
/* The endpoint's retry policy: the deployment's dep with e's overrides, field
 * by field (max attempts, backoff base, factor, max). Pure. [out] out. */
void hq_endpoint_policy(const struct hq_endpoint *e, const struct hq_policy *dep,
                        struct hq_policy *out);
/* Cross-field check of e's policy against the effective values (its own
 * override, else dep's): factor >= 1, base <= max. HQ_EINVAL naming the
 * flag ("--backoff-base: 72000000ms must be <= the effective backoff max
 * (36000000ms, the deployment's)"). Pure. */
int hq_endpoint_check_policy(const struct hq_endpoint *e, const struct hq_policy *dep,
                             struct hq_err *err) HQ_MUST_CHECK;
/* The breaker overrides' ranges (the worker's --breaker-* bounds; 0 = unset
 * but for the ratio). HQ_EINVAL naming the flag ("--breaker-failures: 0 is
 * out of range (1 to 1000000)"). Pure. */
int hq_endpoint_check_breaker(const struct hq_endpoint_breaker *b,
                              struct hq_err *err) HQ_MUST_CHECK;
/* Parses a --breaker-ratio value: "" unset, "N" or "N%" with N 0-100 into b.
 * HQ_EINVAL naming the flag and the value. Pure. */
int hq_endpoint_parse_breaker_ratio(const char *s, struct hq_endpoint_breaker *b,
                                    struct hq_err *err) HQ_MUST_CHECK;
/* Formats b's set fields for people ("failures 2, ratio 50%, ..."), or
 * "the worker's defaults" when none is. */
void hq_endpoint_breaker_format(const struct hq_endpoint_breaker *b, char *out, size_t n);

/* Syntax of a tenant given by a user or stored: hq_event_check_tenant's rule
 * (1-HQ_TENANT_MAX chars of [A-Za-z0-9_.:-]). */
int hq_endpoint_check_tenant(const char *tenant, struct hq_err *err) HQ_MUST_CHECK;

/* Syntax of an id given by a user: 1-HQ_ENDPOINT_ID_MAX chars of [A-Za-z0-9_-].
 * Whether it exists is hq_endpoint_get's business. */
int hq_endpoint_check_id(const char *id, struct hq_err *err) HQ_MUST_CHECK;
/* Writes the index key that holds a filter's subscribers into out (size n):
 * idx:t:<type> for an exact type, idx:p:<pre> for "<pre>*". Returns the length
 * or a negative value when out is too small. */
int hq_endpoint_filter_key(const char *base, const char *filter, char *out, size_t n);

/* ---- Shared by endpoint.c and endpoint_store.c only ------------------------------------ */
/* Copies s (len bytes) into out (n bytes) for an error message: at most 80
 * bytes, non-printable bytes as '?', "..." when cut. Returns out. */
const char *hq__endpoint_echo(const char *s, size_t len, char *out, size_t n);
/* Splits s (len bytes) on sep into [out] an owned array of owned strings
 * (empty pieces dropped). More than max pieces: HQ_EINVAL, or when cut the
 * first max of them. */
int hq__endpoint_split(const char *s, size_t len, char sep, int max, int cut, char ***out,
                       int *nout);

#endif
