/* Rate limit syntax and the GCRA lease model. See ratelimit.h. */
#include "common/ratelimit.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hq_rate_parse(const char *s, struct hq_rate *out, struct hq_err *err)
{
    out->n = 0;
    out->per_ms = 0;
    if (!s || !*s || strcmp(s, "0") == 0)
        return 0;
    const char *p = s;
    long long n = 0;
    int digits = 0;
    while (isdigit((unsigned char)*p) && digits < 8)
        n = n * 10 + (*p++ - '0'), digits++;
    long long per = 0;
    if (*p == '/') {
        const char *u = p + 1;
        if (strcmp(u, "s") == 0 || strcmp(u, "sec") == 0)
            per = 1000;
        else if (strcmp(u, "m") == 0 || strcmp(u, "min") == 0)
            per = 60000;
    }
    if (!digits || !per)
        return hq_err_set(err, HQ_EINVAL,
                          "--rate-limit: '%.40s' is not N/s or N/m (e.g. 50/s, 3000/m; '' or 0 = "
                          "none)",
                          s);
    if (n < 1 || n > HQ_RL_COUNT_MAX)
        return hq_err_set(err, HQ_EINVAL, "--rate-limit: '%.40s': N must be 1-%d", s,
                          HQ_RL_COUNT_MAX);
    out->n = n;
    out->per_ms = per;
    return 0;
}

void hq_rate_format(const struct hq_rate *r, char *out, unsigned long n)
{
    if (r->n <= 0)
        snprintf(out, n, "%s", "");
    else
        snprintf(out, n, "%lld/%s", r->n, r->per_ms == 60000 ? "m" : "s");
}

int64_t hq_rate_interval_us(const struct hq_rate *r)
{
    if (r->n <= 0 || r->per_ms <= 0)
        return 0;
    int64_t period_us = (int64_t)r->per_ms * 1000;
    return (period_us + r->n - 1) / r->n;
}

int hq_rate_burst(const struct hq_rate *r)
{
    if (r->n <= 0 || r->per_ms <= 0)
        return 0;
    /* ceil(n * span / period), in us to stay exact. */
    int64_t period_us = (int64_t)r->per_ms * 1000;
    int64_t b = ((int64_t)r->n * HQ_RL_BURST_SPAN_US + period_us - 1) / period_us;
    return b < 1 ? 1 : b > HQ_RL_BURST_MAX ? HQ_RL_BURST_MAX : (int)b;
}

int64_t hq_rl_lease(int64_t *tat_us, int64_t now_us, int64_t interval_us, int k, int burst,
                    int refund, int64_t horizon_us)
{
    int64_t tat = *tat_us > now_us ? *tat_us : now_us;
    if (refund > 0) {
        tat -= (int64_t)refund * interval_us;
        if (tat < now_us)
            tat = now_us;
    }
    int64_t next = tat + (int64_t)k * interval_us;
    int64_t start = next - (int64_t)burst * interval_us - now_us;
    if (start < 0)
        start = 0;
    if (start > horizon_us) {
        if (refund > 0) /* the refund stands even when the lease does not */
            *tat_us = tat;
        return -1;
    }
    *tat_us = next;
    return start;
}
