/* API keys of `hookq api` (blocking; the CLI's `hookq api-key` and the API's
 * authentication). A key reads "hq_live_<id>_<secret>": id 12 lowercase base32
 * characters (public: it names the hash, is listed and may be logged), secret
 * 52 (260 random bits). Only the SHA-256 of the whole key is stored, in
 * <r>:apikey:<id> (name scope tenant sha256 created_ms; common/keys.h) with
 * <r>:apikeys (zset id -> created ms) listing them; verifying compares digests
 * in constant time. Scopes are ordered: read < write < admin. A key may be
 * scoped to one tenant: it sees and changes that tenant's objects only. */
#ifndef HQ_COMMON_APIKEY_H
#define HQ_COMMON_APIKEY_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "common/err.h"
#include "common/limits.h"

#define HQ_APIKEY_PREFIX     "hq_live_"
#define HQ_APIKEY_ID_LEN     12
#define HQ_APIKEY_SECRET_LEN 52
#define HQ_APIKEY_STR_MAX    (8 + HQ_APIKEY_ID_LEN + 1 + HQ_APIKEY_SECRET_LEN + 1)

enum hq_apikey_scope {
    HQ_SCOPE_NONE = 0,
    HQ_SCOPE_READ = 1,
    HQ_SCOPE_WRITE = 2,
    HQ_SCOPE_ADMIN = 3
};

struct hq_apikey {
    char id[HQ_APIKEY_ID_LEN + 1];
    char name[HQ_NAME_MAX + 1];
    int scope;                      /* enum hq_apikey_scope */
    char tenant[HQ_TENANT_MAX + 1]; /* "" = every tenant */
    long long created_ms;
};

/* "read" | "write" | "admin" into *out; HQ_EINVAL "scope: 'x' is not read, write or admin". */
int hq_apikey_parse_scope(const char *s, int *out, struct hq_err *err) HQ_MUST_CHECK;
const char *hq_apikey_scope_name(int scope);

/* Creates a key: checks name (1-HQ_NAME_MAX chars, no control characters) and
 * tenant ("" or hq_endpoint_check_tenant's rule), generates it, stores its
 * digest. [out] key (the only time it exists in full; HQ_APIKEY_STR_MAX bytes)
 * and *out. */
int hq_apikey_create(redisContext *c, const char *base, const char *name, int scope,
                     const char *tenant, char key[HQ_APIKEY_STR_MAX], struct hq_apikey *out,
                     struct hq_err *err) HQ_MUST_CHECK;

/* Checks a presented key: its shape, then its digest against the stored one
 * (constant time). [out] *out. HQ_ENOTFOUND (one message for every refusal:
 * "api key: not valid") or HQ_EREDIS. */
int hq_apikey_verify(redisContext *c, const char *base, const char *key, struct hq_apikey *out,
                     struct hq_err *err) HQ_MUST_CHECK;

/* Calls cb for every key, oldest first (never the digest). */
typedef int (*hq_apikey_visit_cb)(const struct hq_apikey *k, void *arg);
int hq_apikey_list(redisContext *c, const char *base, hq_apikey_visit_cb cb, void *arg,
                   struct hq_err *err) HQ_MUST_CHECK;

/* Deletes key id (immediate on every API replica: nothing caches keys).
 * HQ_EINVAL for a malformed id, HQ_ENOTFOUND "api key 'x': no such key". */
int hq_apikey_revoke(redisContext *c, const char *base, const char *id,
                     struct hq_err *err) HQ_MUST_CHECK;

#endif
