/* Standard Webhooks v1 signing (pure; OpenSSL for HMAC, base64 and the CSPRNG).
 *   signed content = "<webhook-id>.<webhook-timestamp>.<body>"
 *   signature      = "v1," + base64(HMAC-SHA256(key, signed content))
 *   header         = signatures joined by single spaces, one per active key
 * Keys are "whsec_" + base64 of HQ_SECRET_BYTES random bytes. Key material is
 * wiped after use and compared in constant time. Never log a key. */
#ifndef HQ_COMMON_SIGN_H
#define HQ_COMMON_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define HQ_SECRET_STR_MAX 128 /* "whsec_" + base64 of up to 64 bytes + NUL */
#define HQ_SIG_V1_LEN     47  /* "v1," + 44 chars of base64(32 bytes) */
#define HQ_KEY_BYTES_MAX  64

struct hq_sign_key {
    uint8_t k[HQ_KEY_BYTES_MAX]; /* decoded key bytes; secret */
    size_t n;
};

/* Fills out (>= HQ_SECRET_STR_MAX) with a new "whsec_..." key from OpenSSL's CSPRNG. */
int hq_sign_key_generate(char *out, size_t n, struct hq_err *err) HQ_MUST_CHECK;

/* Decodes "whsec_<base64>" (the prefix is optional, as in the reference
 * libraries). HQ_EINVAL "secret: not base64" etc.; the message never echoes the key. */
int hq_sign_key_decode(const char *secret, struct hq_sign_key *out,
                       struct hq_err *err) HQ_MUST_CHECK;

/* Writes "v1,<base64>" + NUL into out (>= HQ_SIG_V1_LEN + 1). */
void hq_sign_v1(const struct hq_sign_key *key, const char *id, size_t id_len, int64_t ts,
                const void *body, size_t body_len, char *out);

/* Writes the webhook-signature header value for nkeys keys (space-separated). out
 * must hold nkeys * (HQ_SIG_V1_LEN + 1) bytes. Returns the length written. */
size_t hq_sign_header(const struct hq_sign_key *keys, int nkeys, const char *id, size_t id_len,
                      int64_t ts, const void *body, size_t body_len, char *out);

/* Verifies a webhook-signature header value: 0 when any v1 signature matches
 * (constant-time compare) and |now - ts| <= tolerance_s (tolerance_s < 0: no
 * check); HQ_EINVAL with the reason otherwise ("no v1 signature matches",
 * "timestamp 1614265330 is 3600 s away from now (tolerance 300 s)"). */
int hq_sign_verify(const struct hq_sign_key *key, const char *id, int64_t ts, const void *body,
                   size_t body_len, const char *header, int64_t now, int64_t tolerance_s,
                   struct hq_err *err) HQ_MUST_CHECK;

/* Wipes key material. */
void hq_sign_key_wipe(struct hq_sign_key *key);

#endif
