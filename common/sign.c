/* Standard Webhooks v1 signing: key generation and decoding, the signature
 * header, and verification (common/sign.h). Pure apart from OpenSSL (HMAC,
 * base64, CSPRNG); no logging, so no key can leak through a log line. It does
 * not decide which keys an endpoint has (common/endpoint.c) nor read bodies.
 *
 * Hot path: the worker calls hq_sign_header once per delivery attempt. The
 * signed content "<id>.<ts>.<body>" is streamed into the hash in pieces,
 * never concatenated, so signing makes no copy of the body. Each thread
 * fetches SHA-256 once and reuses one digest context (see mac_one for why
 * HMAC is written out): OpenSSL 3's fetches take a lock and a method-store
 * lookup, and its EVP_MAC HMAC allocates on every init and final, which
 * together used to cost more than hashing a 1 KiB body. */
#include "common/sign.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/assert.h"
#include "common/limits.h"

#define PREFIX     "whsec_"
#define PREFIX_LEN 6
#define MAC_LEN    32                             /* SHA-256 output */
#define B64_MAC    44                             /* base64 of 32 bytes, with padding */
#define B64_KEYMAX (HQ_KEY_BYTES_MAX / 3 * 4 + 4) /* base64 of the longest key: 88 */

/* ---- Keys ---------------------------------------------------------------------- */

int hq_sign_key_generate(char *out, size_t n, struct hq_err *err)
{
    uint8_t raw[HQ_SECRET_BYTES];
    size_t need = PREFIX_LEN + (HQ_SECRET_BYTES + 2) / 3 * 4 + 1;
    if (n < need)
        return hq_err_set(err, HQ_EINVAL, "secret: buffer of %zu bytes, need %zu", n, need);
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return hq_err_set(err, HQ_EIO, "secret: the OpenSSL random generator failed");
    memcpy(out, PREFIX, PREFIX_LEN);
    EVP_EncodeBlock((unsigned char *)out + PREFIX_LEN, raw, (int)sizeof(raw));
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}

static int is_b64(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

int hq_sign_key_decode(const char *secret, struct hq_sign_key *out, struct hq_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!secret)
        return hq_err_set(err, HQ_EINVAL, "secret: missing");
    const char *s = secret;
    if (strncmp(s, PREFIX, PREFIX_LEN) == 0)
        s += PREFIX_LEN;
    /* Validate the alphabet ourselves: EVP_DecodeBlock skips surrounding
     * whitespace, which a key never has. Messages give positions, never content. */
    size_t len = strlen(s);
    if (len == 0)
        return hq_err_set(err, HQ_EINVAL, "secret: empty");
    if (len > B64_KEYMAX)
        return hq_err_set(err, HQ_EINVAL, "secret: %zu base64 characters, max %d (%d bytes)", len,
                          B64_KEYMAX, HQ_KEY_BYTES_MAX);
    if (len % 4 != 0)
        return hq_err_set(err, HQ_EINVAL,
                          "secret: not base64 (%zu characters, not a multiple of 4)", len);
    size_t pad = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '=' && i >= len - 2) {
            pad++;
            continue;
        }
        if (pad || !is_b64(c))
            return hq_err_set(err, HQ_EINVAL, "secret: not base64 (bad character at position %zu)",
                              i + 1 + (size_t)(s - secret));
    }
    uint8_t tmp[B64_KEYMAX / 4 * 3];
    int dn = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)len);
    if (dn < 0) {
        OPENSSL_cleanse(tmp, sizeof(tmp));
        return hq_err_set(err, HQ_EINVAL, "secret: not base64");
    }
    /* EVP_DecodeBlock counts the bytes padding stands for as zero bytes. */
    size_t n = (size_t)dn - pad;
    if (n < HQ_KEY_BYTES_MIN || n > HQ_KEY_BYTES_MAX) {
        OPENSSL_cleanse(tmp, sizeof(tmp));
        return hq_err_set(err, HQ_EINVAL, "secret: %zu bytes decoded, must be %d to %d", n,
                          HQ_KEY_BYTES_MIN, HQ_KEY_BYTES_MAX);
    }
    memcpy(out->k, tmp, n);
    out->n = n;
    OPENSSL_cleanse(tmp, sizeof(tmp));
    return 0;
}

void hq_sign_key_wipe(struct hq_sign_key *key)
{
    OPENSSL_cleanse(key, sizeof(*key));
}

/* ---- Signing -------------------------------------------------------------------- */

/* One thread's SHA-256: the digest fetched once and a digest context reused
 * for every hash (EVP_DigestInit_ex2 with the same digest reinitialises the
 * provider's context in place, without allocating). */
struct sha {
    EVP_MD *md;
    EVP_MD_CTX *c;
};

#define BLOCK 64 /* SHA-256 block size, HMAC's pad length */
_Static_assert(HQ_KEY_BYTES_MAX <= BLOCK, "keys longer than a block would need hashing first");

/* HMAC-SHA256 (RFC 2104) of "<id>.<ts>.<body>" with key into mac:
 * H((K ^ opad) || H((K ^ ipad) || message)). Written out over the digest
 * rather than through EVP_MAC because OpenSSL 3's HMAC copies its digest
 * contexts on every init and final, five allocations per signature; keys are
 * at most one block long, so they are used as they are. */
static int mac_one(struct sha *h, const struct hq_sign_key *key, const char *id, size_t id_len,
                   const char *ts, size_t ts_len, const void *body, size_t body_len,
                   uint8_t mac[MAC_LEN])
{
    uint8_t pad[BLOCK], inner[MAC_LEN];
    memset(pad, 0x36, BLOCK);
    for (size_t i = 0; i < key->n; i++)
        pad[i] ^= key->k[i];
    unsigned int il = 0, ol = 0;
    int ok = EVP_DigestInit_ex2(h->c, h->md, NULL) == 1 &&
             EVP_DigestUpdate(h->c, pad, BLOCK) == 1 && EVP_DigestUpdate(h->c, id, id_len) == 1 &&
             EVP_DigestUpdate(h->c, ".", 1) == 1 && EVP_DigestUpdate(h->c, ts, ts_len) == 1 &&
             EVP_DigestUpdate(h->c, ".", 1) == 1 &&
             (body_len == 0 || EVP_DigestUpdate(h->c, body, body_len) == 1) &&
             EVP_DigestFinal_ex(h->c, inner, &il) == 1 && il == MAC_LEN;
    for (size_t i = 0; i < BLOCK; i++)
        pad[i] ^= 0x36 ^ 0x5c;
    ok = ok && EVP_DigestInit_ex2(h->c, h->md, NULL) == 1 &&
         EVP_DigestUpdate(h->c, pad, BLOCK) == 1 && EVP_DigestUpdate(h->c, inner, MAC_LEN) == 1 &&
         EVP_DigestFinal_ex(h->c, mac, &ol) == 1 && ol == MAC_LEN;
    OPENSSL_cleanse(pad, sizeof(pad));
    OPENSSL_cleanse(inner, sizeof(inner));
    return ok ? 0 : -1;
}

/* This thread's digest, made on first use and kept for the life of the thread;
 * a thread-specific key, not _Thread_local, so a thread that ends
 * (libmicrohttpd's per-connection threads in `hookq up`'s demo receiver) frees
 * it instead of leaking it. Failing to make it means OpenSSL itself is broken
 * or out of memory, which the sign functions treat as fatal: a delivery must
 * never go out with a wrong signature. */
static pthread_key_t sha_key;
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

static void sha_destroy(void *p)
{
    struct sha *h = p;
    EVP_MD_CTX_free(h->c);
    EVP_MD_free(h->md);
    free(h);
}

static void sha_key_make(void)
{
    if (pthread_key_create(&sha_key, sha_destroy) != 0) {
        hq_panic("cannot create a thread-specific key");
    }
}

static struct sha *thread_sha(void)
{
    pthread_once(&sha_once, sha_key_make);
    struct sha *h = pthread_getspecific(sha_key);
    if (h)
        return h;
    h = calloc(1, sizeof(*h));
    if (h) {
        h->md = EVP_MD_fetch(NULL, "SHA256", NULL);
        h->c = EVP_MD_CTX_new();
    }
    if (!h || !h->md || !h->c || pthread_setspecific(sha_key, h) != 0) {
        hq_panic("OpenSSL SHA-256 unavailable");
    }
    return h;
}

/* Writes "v1,<base64>" + NUL (HQ_SIG_V1_LEN + 1 bytes) for one key. */
static void sign_into(struct sha *ctx, const struct hq_sign_key *key, const char *id, size_t id_len,
                      const char *ts, size_t ts_len, const void *body, size_t body_len, char *out)
{
    uint8_t mac[MAC_LEN];
    if (mac_one(ctx, key, id, id_len, ts, ts_len, body, body_len, mac) != 0) {
        hq_panic("HMAC-SHA256 failed");
    }
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, MAC_LEN);
    OPENSSL_cleanse(mac, sizeof(mac));
}

void hq_sign_v1(const struct hq_sign_key *key, const char *id, size_t id_len, int64_t ts,
                const void *body, size_t body_len, char *out)
{
    char tsb[24];
    int tl = snprintf(tsb, sizeof(tsb), "%" PRId64, ts);
    sign_into(thread_sha(), key, id, id_len, tsb, (size_t)tl, body, body_len, out);
}

size_t hq_sign_header(const struct hq_sign_key *keys, int nkeys, const char *id, size_t id_len,
                      int64_t ts, const void *body, size_t body_len, char *out)
{
    out[0] = '\0';
    if (nkeys <= 0)
        return 0;
    char tsb[24];
    int tl = snprintf(tsb, sizeof(tsb), "%" PRId64, ts);
    struct sha *ctx = thread_sha();
    size_t len = 0;
    for (int i = 0; i < nkeys; i++) {
        if (i)
            out[len++] = ' ';
        sign_into(ctx, &keys[i], id, id_len, tsb, (size_t)tl, body, body_len, out + len);
        len += HQ_SIG_V1_LEN;
    }
    return len;
}

/* ---- Verification ---------------------------------------------------------------- */

int hq_sign_verify(const struct hq_sign_key *key, const char *id, int64_t ts, const void *body,
                   size_t body_len, const char *header, int64_t now, int64_t tolerance_s,
                   struct hq_err *err)
{
    if (tolerance_s >= 0) {
        /* |now - ts| without signed overflow for any pair of int64 values. */
        uint64_t diff = now >= ts ? (uint64_t)now - (uint64_t)ts : (uint64_t)ts - (uint64_t)now;
        if (diff > (uint64_t)tolerance_s)
            return hq_err_set(err, HQ_EINVAL,
                              "timestamp %" PRId64 " is %" PRIu64
                              " s away from now (tolerance %" PRId64 " s)",
                              ts, diff, tolerance_s);
    }
    if (!header)
        return hq_err_set(err, HQ_EINVAL, "no v1 signature matches");
    char want[HQ_SIG_V1_LEN + 1];
    char tsb[24];
    int tl = snprintf(tsb, sizeof(tsb), "%" PRId64, ts);
    sign_into(thread_sha(), key, id, strlen(id), tsb, (size_t)tl, body, body_len, want);

    /* The header is space-separated "<version>,<signature>" tokens; anything
     * that is not exactly a v1 token of the right length cannot match and is
     * skipped, and every v1 token is compared in constant time. */
    int match = 0;
    const char *p = header;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *start = p;
        while (*p && *p != ' ')
            p++;
        size_t tlen = (size_t)(p - start);
        if (tlen == HQ_SIG_V1_LEN && memcmp(start, "v1,", 3) == 0 &&
            CRYPTO_memcmp(start, want, HQ_SIG_V1_LEN) == 0)
            match = 1;
    }
    OPENSSL_cleanse(want, sizeof(want));
    if (!match)
        return hq_err_set(err, HQ_EINVAL, "no v1 signature matches");
    return 0;
}
