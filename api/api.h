/* `hookq api`: the HTTP management API (docs/api.md, docs/openapi.json). A
 * stateless server: everything lives in Redis, so replicas behind a load
 * balancer agree. libmicrohttpd with an internal thread pool; each pool thread
 * keeps its own blocking Redis connection; handlers call the same common/
 * functions as the CLI. */
#ifndef HQ_API_API_H
#define HQ_API_API_H

#include "common/err.h"
#include "common/netguard.h"

struct hq_api_config {
    const char *listen;   /* "127.0.0.1:8480", "[::1]:0", ":8480" (all interfaces) */
    int threads;          /* MHD pool threads, 1-64 */
    const char *tls_cert; /* PEM file paths; both or neither */
    const char *tls_key;
    const char *cors_origins; /* comma-separated allowed origins; NULL/"" = CORS off */
    const char *redis_url;
    const char *prefix;
    struct hq_netguard guard;    /* the SSRF policy endpoint URLs are checked with */
    long long max_payload;       /* event payload bound, bytes */
    long long shutdown_delay_ms; /* /readyz answers 503 this long before the server stops */
};

struct hq_api;

/* Loads the deployment's layout, binds, and starts serving. NULL with err. */
struct hq_api *hq_api_start(const struct hq_api_config *cfg, struct hq_err *err);
/* The bound port (for --listen 127.0.0.1:0). */
int hq_api_port(const struct hq_api *a);
/* Graceful stop: /readyz 503 at once, serve on for shutdown_delay_ms, stop
 * accepting, wait up to 10 s for requests in flight, stop. Frees a. */
void hq_api_stop(struct hq_api *a);

#endif
