/* Retry policy defaults and checks, backoff delays and Retry-After parsing
 * (common/backoff.h). Pure: no clock (callers pass now), no PRNG (callers pass
 * a random 64-bit value), no locale. It does not decide whether an outcome is
 * retried (the worker does) nor schedule anything (the scheduler does).
 *
 * Jitter then clamp: the exponential delay d = min(base * factor^(n-1), max)
 * is multiplied by a factor in [0.8, 1.2) and the result clamped to max, so a
 * delay is always in [0.8 d, min(1.2 d, max)] (truncated to whole ms) and
 * never exceeds max. Clamping last means retries of a long outage still spread
 * over [0.8 max, max] instead of all landing on max. */
#include "common/backoff.h"

#include <stdio.h>
#include <string.h>

#include "common/limits.h"

void hq_policy_init(struct hq_policy *p)
{
    p->max_attempts = HQ_MAX_ATTEMPTS_DEFAULT;
    p->base_ms = HQ_BACKOFF_BASE_DEFAULT_MS;
    p->factor = HQ_BACKOFF_FACTOR_DEFAULT;
    p->max_ms = HQ_BACKOFF_MAX_DEFAULT_MS;
}

int hq_policy_check(const struct hq_policy *p, struct hq_err *err)
{
    /* Written as !(x >= 1) so that NaN is refused too. */
    if (!(p->factor >= 1))
        return hq_err_set(err, HQ_EINVAL, "--backoff-factor: %g must be >= 1", p->factor);
    if (!(p->factor <= HQ_BACKOFF_FACTOR_MAX))
        return hq_err_set(err, HQ_EINVAL, "--backoff-factor: %g must be <= %d", p->factor,
                          HQ_BACKOFF_FACTOR_MAX);
    if (p->max_attempts < 1)
        return hq_err_set(err, HQ_EINVAL, "--max-attempts: %lld must be >= 1", p->max_attempts);
    if (p->base_ms < 1)
        return hq_err_set(err, HQ_EINVAL, "--backoff-base: %lldms must be >= 1ms", p->base_ms);
    if (p->base_ms > p->max_ms)
        return hq_err_set(err, HQ_EINVAL,
                          "--backoff-base: %lldms must be <= --backoff-max (%lldms)", p->base_ms,
                          p->max_ms);
    return 0;
}

/* x^e by squaring: O(log e) multiplications, so a huge attempt count costs
 * nothing; overflow goes to +inf, which the caller clamps. */
static double pow_u(double x, unsigned e)
{
    double r = 1.0;
    while (e) {
        if (e & 1u)
            r *= x;
        e >>= 1;
        if (e)
            x *= x;
    }
    return r;
}

/* The un-jittered delay, clamped to [0, max]; computed in double so neither the
 * power nor the product can overflow an integer. */
static double raw_delay(const struct hq_policy *p, int failed)
{
    double max = p->max_ms > 0 ? (double)p->max_ms : 0.0;
    unsigned e = failed > 1 ? (unsigned)(failed - 1) : 0u;
    double d = (double)p->base_ms * pow_u(p->factor, e);
    if (!(d < max)) /* also catches +inf and NaN */
        d = max;
    if (d < 0)
        d = 0;
    return d;
}

long long hq_backoff_delay_ms(const struct hq_policy *p, int failed, uint64_t rnd)
{
    double d = raw_delay(p, failed);
    /* The top 53 bits of rnd give a uniform u in [0, 1). */
    double u = (double)(rnd >> 11) * (1.0 / 9007199254740992.0);
    double j = HQ_BACKOFF_JITTER_PCT / 100.0;
    double v = d * ((1.0 - j) + 2.0 * j * u);
    double max = p->max_ms > 0 ? (double)p->max_ms : 0.0;
    if (v > max)
        v = max;
    return (long long)v;
}

long long hq_backoff_next_ms(const struct hq_policy *p, int failed, long long retry_after_ms,
                             uint64_t rnd)
{
    long long d = hq_backoff_delay_ms(p, failed, rnd);
    if (retry_after_ms > d)
        d = retry_after_ms;
    long long max = p->max_ms > 0 ? p->max_ms : 0;
    return d > max ? max : d;
}

int hq_backoff_in_window(long long first_ms, long long window_ms, long long due_ms)
{
    /* A difference, not first + window: no overflow for any stored values. */
    return window_ms <= 0 || due_ms - first_ms <= window_ms;
}

/* ---- Retry-After (RFC 9110 section 10.2.3) ------------------------------------------ */

static const char *const wkday[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const weekday[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                       "Thursday", "Friday", "Saturday"};
static const char *const month[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Matches one of names at *s exactly (case-sensitive, as RFC 9110 says);
 * advances *s and returns its index, or -1. */
static int match_name(const char **s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (strncmp(*s, names[i], l) == 0) {
            *s += l;
            return i;
        }
    }
    return -1;
}

/* Exactly n digits at *s (n <= 4); advances *s. -1 when not. */
static int digits(const char **s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char)(*s)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *s += n;
    return v;
}

static int lit(const char **s, const char *l)
{
    size_t n = strlen(l);
    if (strncmp(*s, l, n) != 0)
        return -1;
    *s += n;
    return 0;
}

/* "HH:MM:SS" */
static int hms(const char **s, int *h, int *m, int *sec)
{
    *h = digits(s, 2);
    if (*h < 0 || lit(s, ":") != 0)
        return -1;
    *m = digits(s, 2);
    if (*m < 0 || lit(s, ":") != 0)
        return -1;
    *sec = digits(s, 2);
    return *sec < 0 ? -1 : 0;
}

static int leap(long long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil): what timegm does, without time_t or the TZ environment. */
static long long days_from_civil(long long y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Checks ranges and converts to unix ms. */
static int to_ms(long long y, int mon, int d, int h, int mi, int sec, int64_t *out)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mon < 0 || mon > 11 || d < 1 || h > 23 || mi > 59 || sec > 60)
        return -1;
    if (d > mdays[mon] + (mon == 1 && leap(y)))
        return -1;
    long long days = days_from_civil(y, mon + 1, d);
    *out = ((int64_t)days * 86400 + h * 3600 + mi * 60 + sec) * 1000;
    return 0;
}

/* The three HTTP-date forms; 0 and *out (unix ms) or -1. */
static int parse_http_date(const char *s, int64_t now_ms, int64_t *out)
{
    int y, mon, d, h, mi, sec;
    const char *p = s;
    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
    if (match_name(&p, wkday, 7) >= 0 && lit(&p, ", ") == 0) {
        if ((d = digits(&p, 2)) < 0 || lit(&p, " ") != 0 || (mon = match_name(&p, month, 12)) < 0 ||
            lit(&p, " ") != 0 || (y = digits(&p, 4)) < 0 || lit(&p, " ") != 0 ||
            hms(&p, &h, &mi, &sec) != 0 || lit(&p, " GMT") != 0 || *p)
            return -1;
        return to_ms(y, mon, d, h, mi, sec, out);
    }
    /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
    p = s;
    if (match_name(&p, weekday, 7) >= 0 && lit(&p, ", ") == 0) {
        if ((d = digits(&p, 2)) < 0 || lit(&p, "-") != 0 || (mon = match_name(&p, month, 12)) < 0 ||
            lit(&p, "-") != 0 || (y = digits(&p, 2)) < 0 || lit(&p, " ") != 0 ||
            hms(&p, &h, &mi, &sec) != 0 || lit(&p, " GMT") != 0 || *p)
            return -1;
        /* RFC 9110 5.6.7: a two-digit year more than 50 years in the future is
         * the most recent past year with those digits. */
        long long now_year = 1970 + (now_ms / 1000) / 31556952; /* mean Gregorian year */
        long long full = now_year - now_year % 100 + y;
        if (full > now_year + 50)
            full -= 100;
        return to_ms(full, mon, d, h, mi, sec, out);
    }
    /* asctime: "Sun Nov  6 08:49:37 1994" (day space-padded to two characters) */
    p = s;
    if (match_name(&p, wkday, 7) >= 0 && lit(&p, " ") == 0) {
        if ((mon = match_name(&p, month, 12)) < 0 || lit(&p, " ") != 0)
            return -1;
        if (*p == ' ') {
            p++;
            d = digits(&p, 1);
        } else {
            d = digits(&p, 2);
        }
        if (d < 0 || lit(&p, " ") != 0 || hms(&p, &h, &mi, &sec) != 0 || lit(&p, " ") != 0 ||
            (y = digits(&p, 4)) < 0 || *p)
            return -1;
        return to_ms(y, mon, d, h, mi, sec, out);
    }
    return -1;
}

int hq_retry_after_parse(const char *v, int64_t now_ms, long long *delay_ms)
{
    if (!v)
        return HQ_EINVAL;
    /* Header values may carry optional whitespace around them. */
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n == 0 || n > HQ_RETRY_AFTER_LEN_MAX)
        return HQ_EINVAL;
    char s[HQ_RETRY_AFTER_LEN_MAX + 1];
    memcpy(s, v, n);
    s[n] = '\0';

    if (s[0] >= '0' && s[0] <= '9') {
        /* delta-seconds: digits only; huge values saturate, never wrap. */
        long long secs = 0;
        for (size_t i = 0; i < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                return HQ_EINVAL;
            if (secs < HQ_RETRY_AFTER_MAX_S)
                secs = secs * 10 + (s[i] - '0');
        }
        if (secs > HQ_RETRY_AFTER_MAX_S)
            secs = HQ_RETRY_AFTER_MAX_S;
        *delay_ms = secs * 1000;
        return 0;
    }
    int64_t at;
    if (parse_http_date(s, now_ms, &at) != 0)
        return HQ_EINVAL;
    int64_t d = at - now_ms;
    if (d < 0)
        d = 0;
    if (d > HQ_RETRY_AFTER_MAX_S * 1000)
        d = HQ_RETRY_AFTER_MAX_S * 1000;
    *delay_ms = d;
    return 0;
}
