/* The --batch setting and the batch id. See batch.h. */
#include "common/batch.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "common/config.h"
#include "common/limits.h"

int hq_batch_check(const struct hq_batch_cfg *c, struct hq_err *err)
{
    if (c->max == 0)
        return 0;
    if (c->max < 2 || c->max > HQ_BATCH_MAX_EVENTS)
        return hq_err_set(err, HQ_EINVAL, "--batch: max=%d is out of range (2 to %d)", c->max,
                          HQ_BATCH_MAX_EVENTS);
    if (c->wait_ms < 1 || c->wait_ms > HQ_BATCH_WAIT_MAX_MS)
        return hq_err_set(err, HQ_EINVAL,
                          "--batch: wait=%lldms is out of range (1ms to %dms: collected events "
                          "stay unacknowledged, well under the worker's --claim-idle)",
                          c->wait_ms, HQ_BATCH_WAIT_MAX_MS);
    if (c->bytes < HQ_BATCH_BYTES_MIN || c->bytes > HQ_BATCH_BYTES_MAX)
        return hq_err_set(err, HQ_EINVAL, "--batch: bytes=%lld is out of range (%d to %d)",
                          c->bytes, HQ_BATCH_BYTES_MIN, HQ_BATCH_BYTES_MAX);
    return 0;
}

/* One "name=value" item into c; seen is the set of names already given. */
static int parse_item(const char *item, struct hq_batch_cfg *c, int *seen, struct hq_err *err)
{
    static const char *const names[] = {"max", "wait", "bytes"};
    const char *eq = strchr(item, '=');
    size_t nl = eq ? (size_t)(eq - item) : strlen(item);
    int k = -1;
    for (int i = 0; i < 3; i++)
        if (strlen(names[i]) == nl && strncmp(item, names[i], nl) == 0)
            k = i;
    if (k < 0 || !eq)
        return hq_err_set(err, HQ_EINVAL,
                          "--batch: '%.40s' is not max=N, wait=DURATION or bytes=SIZE", item);
    if (*seen & (1 << k))
        return hq_err_set(err, HQ_EINVAL, "--batch: %s= is given twice", names[k]);
    *seen |= 1 << k;
    const char *v = eq + 1;
    long long n = 0;
    int rc = k == 0   ? hq_parse_int(v, &n)
             : k == 1 ? hq_parse_duration_ms(v, &n)
                      : hq_parse_size(v, &n);
    if (rc != 0 || (k == 0 && (n < 0 || n > 1000000)))
        return hq_err_set(err, HQ_EINVAL, "--batch: %s='%.40s' is not %s", names[k], v,
                          k == 0   ? "a whole number"
                          : k == 1 ? "a duration (e.g. 50ms, 1s)"
                                   : "a size (e.g. 512k, 1M)");
    if (k == 0)
        c->max = (int)n;
    else if (k == 1)
        c->wait_ms = n;
    else
        c->bytes = n;
    return 0;
}

int hq_batch_parse(const char *s, struct hq_batch_cfg *out, struct hq_err *err)
{
    *out = (struct hq_batch_cfg){0};
    if (!s || !*s || strcmp(s, "off") == 0)
        return 0;
    struct hq_batch_cfg c = {
        .max = 0, .wait_ms = HQ_BATCH_WAIT_DEFAULT, .bytes = HQ_BATCH_BYTES_DEFAULT};
    char item[128];
    int seen = 0;
    for (const char *p = s;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n >= sizeof(item))
            return hq_err_set(err, HQ_EINVAL, "--batch: '%.40s...' is too long", p);
        memcpy(item, p, n);
        item[n] = '\0';
        int rc = parse_item(item, &c, &seen, err);
        if (rc != 0)
            return rc;
        if (!comma)
            break;
        p = comma + 1;
    }
    if (!(seen & 1))
        return hq_err_set(err, HQ_EINVAL,
                          "--batch: max=N is missing (e.g. max=100,wait=50ms; "
                          "off to turn batching off)");
    int rc = hq_batch_check(&c, err);
    if (rc == 0)
        *out = c;
    return rc;
}

void hq_batch_format(const struct hq_batch_cfg *c, char *out, size_t n)
{
    if (c->max <= 0)
        snprintf(out, n, "%s", "");
    else
        snprintf(out, n, "max=%d,wait=%lldms,bytes=%lld", c->max, c->wait_ms, c->bytes);
}

void hq_batch_id(const char *endpoint_id, const char *first_event_id, int n, char *out)
{
    char in[HQ_ENDPOINT_ID_MAX + HQ_ID_MAX + 24];
    int len = snprintf(in, sizeof(in), "%s%c%s%c%d", endpoint_id, 0, first_event_id, 0, n);
    if (len < 0 || (size_t)len >= sizeof(in))
        len = (int)sizeof(in) - 1;
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)in, (size_t)len, d);
    memcpy(out, "bat_", 4);
    for (int i = 0; i < 16; i++)
        snprintf(out + 4 + 2 * i, 3, "%02x", d[i]);
}
