/* API keys: generation, digest storage, constant-time verification, listing
 * and revocation (apikey.h). */
#include "common/apikey.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/endpoint.h"
#include "common/keys.h"
#include "common/redis_sync.h"

static const char *const scope_names[] = {"none", "read", "write", "admin"};

int hq_apikey_parse_scope(const char *s, int *out, struct hq_err *err)
{
    for (int i = HQ_SCOPE_READ; i <= HQ_SCOPE_ADMIN; i++) {
        if (strcmp(s, scope_names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return hq_err_set(err, HQ_EINVAL, "scope: '%.40s' is not read, write or admin", s);
}

const char *hq_apikey_scope_name(int scope)
{
    return scope >= HQ_SCOPE_READ && scope <= HQ_SCOPE_ADMIN ? scope_names[scope] : "none";
}

/* n characters of lowercase base32, each from its own random byte (5 bits of it). */
static int random_b32(char *out, size_t n, struct hq_err *err)
{
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyz234567";
    unsigned char rnd[64];
    if (n > sizeof(rnd) || RAND_bytes(rnd, (int)n) != 1)
        return hq_err_set(err, HQ_EIO, "api key: the CSPRNG failed");
    for (size_t i = 0; i < n; i++)
        out[i] = alpha[rnd[i] & 31];
    out[n] = '\0';
    OPENSSL_cleanse(rnd, sizeof(rnd));
    return 0;
}

static void digest_hex(const char *key, char hex[2 * SHA256_DIGEST_LENGTH + 1])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)key, strlen(key), d);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static int check_id(const char *id)
{
    if (strlen(id) != HQ_APIKEY_ID_LEN)
        return -1;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '2' && *p <= '7')))
            return -1;
    return 0;
}

static int check_name(const char *name, struct hq_err *err)
{
    size_t n = strlen(name);
    if (n == 0 || n > HQ_NAME_MAX)
        return hq_err_set(err, HQ_EINVAL, "name: %zu chars, must be 1-%d", n, HQ_NAME_MAX);
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return hq_err_set(err, HQ_EINVAL, "name: control character 0x%02x", *p);
    return 0;
}

int hq_apikey_create(redisContext *c, const char *base, const char *name, int scope,
                     const char *tenant, char key[HQ_APIKEY_STR_MAX], struct hq_apikey *out,
                     struct hq_err *err)
{
    int rc = check_name(name, err);
    if (rc == 0 && tenant && *tenant)
        rc = hq_endpoint_check_tenant(tenant, err);
    if (rc == 0 && (scope < HQ_SCOPE_READ || scope > HQ_SCOPE_ADMIN))
        rc = hq_err_set(err, HQ_EINVAL, "scope: %d is not read, write or admin", scope);
    if (rc != 0)
        return rc;
    memset(out, 0, sizeof(*out));
    char secret[HQ_APIKEY_SECRET_LEN + 1];
    rc = random_b32(out->id, HQ_APIKEY_ID_LEN, err);
    rc = rc ? rc : random_b32(secret, HQ_APIKEY_SECRET_LEN, err);
    if (rc != 0)
        return rc;
    snprintf(key, HQ_APIKEY_STR_MAX, HQ_APIKEY_PREFIX "%s_%s", out->id, secret);
    OPENSSL_cleanse(secret, sizeof(secret));
    snprintf(out->name, sizeof(out->name), "%s", name);
    snprintf(out->tenant, sizeof(out->tenant), "%s", tenant ? tenant : "");
    out->scope = scope;
    out->created_ms = hq_now_ms();
    char hex[2 * SHA256_DIGEST_LENGTH + 1], k[HQ_KEY_MAX], z[HQ_KEY_MAX], ms[24];
    digest_hex(key, hex);
    hq_key_apikey(base, out->id, k, sizeof(k));
    hq_key_apikeys(base, z, sizeof(z));
    snprintf(ms, sizeof(ms), "%lld", out->created_ms);
    const char *hset[] = {
        "HSET",   k,           "name",   out->name, "scope",      hq_apikey_scope_name(scope),
        "tenant", out->tenant, "sha256", hex,       "created_ms", ms};
    redisReply *r = hq_redis_cmd(c, err, 12, hset, NULL);
    if (!r)
        return HQ_EREDIS;
    freeReplyObject(r);
    const char *zadd[] = {"ZADD", z, ms, out->id};
    r = hq_redis_cmd(c, err, 4, zadd, NULL);
    if (!r)
        return HQ_EREDIS;
    freeReplyObject(r);
    return 0;
}

static int refuse(struct hq_err *err)
{
    return hq_err_set(err, HQ_ENOTFOUND, "api key: not valid");
}

/* Fills k from an HMGET of name scope tenant created_ms. */
static void from_fields(const redisReply *r, size_t at, struct hq_apikey *k)
{
    const redisReply *const *f = (const redisReply *const *)r->element + at;
    if (f[0]->type == REDIS_REPLY_STRING)
        snprintf(k->name, sizeof(k->name), "%s", f[0]->str);
    int scope = HQ_SCOPE_NONE;
    if (f[1]->type == REDIS_REPLY_STRING && hq_apikey_parse_scope(f[1]->str, &scope, NULL) != 0)
        scope = HQ_SCOPE_NONE;
    k->scope = scope;
    if (f[2]->type == REDIS_REPLY_STRING)
        snprintf(k->tenant, sizeof(k->tenant), "%s", f[2]->str);
    if (f[3]->type == REDIS_REPLY_STRING)
        k->created_ms = atoll(f[3]->str);
}

int hq_apikey_verify(redisContext *c, const char *base, const char *key, struct hq_apikey *out,
                     struct hq_err *err)
{
    memset(out, 0, sizeof(*out));
    size_t plen = strlen(HQ_APIKEY_PREFIX);
    if (strlen(key) != HQ_APIKEY_STR_MAX - 1 || strncmp(key, HQ_APIKEY_PREFIX, plen) != 0 ||
        key[plen + HQ_APIKEY_ID_LEN] != '_')
        return refuse(err);
    memcpy(out->id, key + plen, HQ_APIKEY_ID_LEN);
    out->id[HQ_APIKEY_ID_LEN] = '\0';
    if (check_id(out->id) != 0)
        return refuse(err);
    char k[HQ_KEY_MAX];
    hq_key_apikey(base, out->id, k, sizeof(k));
    const char *argv[] = {"HMGET", k, "sha256", "name", "scope", "tenant", "created_ms"};
    redisReply *r = hq_redis_cmd(c, err, 7, argv, NULL);
    if (!r)
        return HQ_EREDIS;
    int rc = 0;
    char hex[2 * SHA256_DIGEST_LENGTH + 1];
    digest_hex(key, hex);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 5 ||
        r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[0]->len != 2 * SHA256_DIGEST_LENGTH ||
        CRYPTO_memcmp(r->element[0]->str, hex, 2 * SHA256_DIGEST_LENGTH) != 0) {
        rc = refuse(err);
    } else {
        from_fields(r, 1, out);
        if (out->scope == HQ_SCOPE_NONE)
            rc = refuse(err);
    }
    freeReplyObject(r);
    return rc;
}

int hq_apikey_list(redisContext *c, const char *base, hq_apikey_visit_cb cb, void *arg,
                   struct hq_err *err)
{
    char z[HQ_KEY_MAX];
    hq_key_apikeys(base, z, sizeof(z));
    const char *argv[] = {"ZRANGE", z, "0", "-1"};
    redisReply *ids = hq_redis_cmd(c, err, 4, argv, NULL);
    if (!ids)
        return HQ_EREDIS;
    int rc = 0;
    for (size_t i = 0; ids->type == REDIS_REPLY_ARRAY && i < ids->elements && rc == 0; i++) {
        struct hq_apikey k = {0};
        snprintf(k.id, sizeof(k.id), "%s", ids->element[i]->str ? ids->element[i]->str : "");
        char key[HQ_KEY_MAX];
        hq_key_apikey(base, k.id, key, sizeof(key));
        const char *h[] = {"HMGET", key, "name", "scope", "tenant", "created_ms"};
        redisReply *r = hq_redis_cmd(c, err, 6, h, NULL);
        if (!r) {
            rc = HQ_EREDIS;
            break;
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
            from_fields(r, 0, &k);
            if (cb(&k, arg) != 0)
                rc = 1;
        }
        freeReplyObject(r);
    }
    freeReplyObject(ids);
    return rc < 0 ? rc : 0;
}

int hq_apikey_revoke(redisContext *c, const char *base, const char *id, struct hq_err *err)
{
    if (check_id(id) != 0)
        return hq_err_set(err, HQ_EINVAL, "id: '%.40s' is not an api key id (12 of [a-z2-7])", id);
    char k[HQ_KEY_MAX], z[HQ_KEY_MAX];
    hq_key_apikey(base, id, k, sizeof(k));
    hq_key_apikeys(base, z, sizeof(z));
    const char *del[] = {"DEL", k};
    redisReply *r = hq_redis_cmd(c, err, 2, del, NULL);
    if (!r)
        return HQ_EREDIS;
    long long n = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    const char *zrem[] = {"ZREM", z, id};
    r = hq_redis_cmd(c, err, 3, zrem, NULL);
    if (!r)
        return HQ_EREDIS;
    freeReplyObject(r);
    if (n == 0)
        return hq_err_set(err, HQ_ENOTFOUND, "api key '%s': no such key", id);
    return 0;
}
