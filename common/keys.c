/* Redis key names. See keys.h; the layout is documented in
 * docs/internals/redis-layout.md. */
#include "common/keys.h"

#include <stdio.h>

static int fmt(char *out, size_t n, const char *prefix, const char *suffix, const char *arg)
{
    int w = arg ? snprintf(out, n, "%s:%s%s", prefix, suffix, arg)
                : snprintf(out, n, "%s:%s", prefix, suffix);
    return (w < 0 || (size_t)w >= n) ? -1 : w;
}

int hq_key_events(const char *p, char *out, size_t n)
{
    return fmt(out, n, p, "events", NULL);
}
int hq_key_dead(const char *p, char *out, size_t n)
{
    return fmt(out, n, p, "dead", NULL);
}
int hq_key_retries(const char *p, char *out, size_t n)
{
    return fmt(out, n, p, "retries", NULL);
}
int hq_key_retry(const char *p, char *out, size_t n)
{
    return fmt(out, n, p, "retry", NULL);
}
int hq_key_retry_data(const char *p, char *out, size_t n)
{
    return fmt(out, n, p, "retry:data", NULL);
}
int hq_key_endpoints(const char *p, char *out, size_t n)
{
    return fmt(out, n, p, "endpoints", NULL);
}
int hq_key_endpoints_version(const char *p, char *out, size_t n)
{
    return fmt(out, n, p, "endpoints:ver", NULL);
}
int hq_key_endpoint(const char *p, const char *id, char *out, size_t n)
{
    return fmt(out, n, p, "ep:", id);
}
int hq_key_idx_type(const char *p, const char *type, char *out, size_t n)
{
    return fmt(out, n, p, "idx:t:", type);
}
int hq_key_idx_prefix(const char *p, const char *tprefix, char *out, size_t n)
{
    return fmt(out, n, p, "idx:p:", tprefix);
}
int hq_key_idx_tenant(const char *p, const char *tenant, char *out, size_t n)
{
    return fmt(out, n, p, "idx:tenant:", tenant);
}
int hq_key_attempts(const char *p, const char *event_id, char *out, size_t n)
{
    return fmt(out, n, p, "att:", event_id);
}
int hq_key_attempt_index(const char *p, char *out, size_t n)
{
    return fmt(out, n, p, "attempts", NULL);
}
int hq_key_attempt_bucket(const char *p, const char *start_ms, char *out, size_t n)
{
    return fmt(out, n, p, "attempts:", start_ms);
}
int hq_key_rate_limit(const char *p, const char *endpoint_id, char *out, size_t n)
{
    return fmt(out, n, p, "rl:", endpoint_id);
}
int hq_key_breaker(const char *p, const char *endpoint_id, char *out, size_t n)
{
    return fmt(out, n, p, "cb:", endpoint_id);
}

int hq_key_exhausted(const char *p, const char *endpoint_id, char *out, size_t n)
{
    return fmt(out, n, p, "exh:", endpoint_id);
}

int hq_key_breaker_feed(const char *p, char *out, size_t n)
{
    return fmt(out, n, p, "breakers", NULL);
}
int hq_key_types_seen(const char *p, char *out, size_t n)
{
    return fmt(out, n, p, "types", NULL);
}
int hq_key_apikey(const char *p, const char *id, char *out, size_t n)
{
    return fmt(out, n, p, "apikey:", id);
}
int hq_key_apikeys(const char *p, char *out, size_t n)
{
    return fmt(out, n, p, "apikeys", NULL);
}
int hq_key_lines(const char *p, char *out, size_t n)
{
    return fmt(out, n, p, "lines", NULL);
}
int hq_key_lines_data(const char *p, char *out, size_t n)
{
    return fmt(out, n, p, "lines:data", NULL);
}
int hq_key_retained(const char *p, char *out, size_t n)
{
    return fmt(out, n, p, "retained", NULL);
}
int hq_key_retained_bytes(const char *p, char *out, size_t n)
{
    return fmt(out, n, p, "retained:bytes", NULL);
}
int hq_key_dedupe_index(const char *p, char *out, size_t n)
{
    return fmt(out, n, p, "dd", NULL);
}
int hq_key_dedupe_gen(const char *p, const char *start_ms, char *out, size_t n)
{
    return fmt(out, n, p, "dd:", start_ms);
}
int hq_key_duplicates(const char *p, char *out, size_t n)
{
    return fmt(out, n, p, "duplicates", NULL);
}
