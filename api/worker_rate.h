/* Deliveries per second for the console's overview, from the workers' own
 * /metrics (hookq_deliveries_total{outcome}, worker/metrics.c). `hookq api
 * --worker-metrics URLS` (HOOKQ_WORKER_METRICS; comma-separated, e.g.
 * "http://10.0.0.5:9464/metrics,http://10.0.0.6:9464/metrics") reads them
 * when /v1/stats is asked, at most once a second, and reports the rate
 * between two reads. A worker that does not answer within HQ_WORKER_RATE_TIMEOUT_MS
 * is left out of that read ("when reachable"). */
#ifndef HQ_API_WORKER_RATE_H
#define HQ_API_WORKER_RATE_H

#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"

#define HQ_WORKER_RATE_URLS_MAX   32        /* workers read per sample */
#define HQ_WORKER_RATE_TIMEOUT_MS 500       /* one worker's /metrics, connect included */
#define HQ_WORKER_RATE_BODY_MAX   (1 << 20) /* one /metrics body (a worker's is ~10 KiB) */
#define HQ_WORKER_RATE_EVERY_MS   1000      /* at most one read per this, whatever the callers */

struct hq_worker_rate_sample {
    double delivered; /* hookq_deliveries_total{outcome="delivered"}: 2xx answers */
};

/* Pure: reads a Prometheus text body (n bytes, not necessarily
 * NUL-terminated) into out. Returns how many hookq_deliveries_total samples
 * it found (0: not a hookq worker's metrics). */
int hq_worker_rate_parse(const char *text, size_t n, struct hq_worker_rate_sample *out);

/* Sets the workers' /metrics URLs (comma-separated; spaces around them are
 * ignored) for the process, before any hq_worker_rate_append. Each must be
 * an http:// or https:// URL shorter than 512 bytes, at most
 * HQ_WORKER_RATE_URLS_MAX of them. HQ_EINVAL naming the bad one; nothing set
 * then. NULL or "": none (the default). */
int hq_worker_rate_configure(const char *urls, struct hq_err *err) HQ_MUST_CHECK;

/* Appends to b, which holds one JSON object (the /v1/stats answer), before
 * its closing brace:
 *   ,"workers_configured":M,"workers_reachable":K,"deliveries_per_s":D
 * D (2xx answers per second, one decimal) is null until two reads of the
 * same worker exist. Nothing when
 * HOOKQ_WORKER_METRICS is unset or empty. One process-wide sampler (mutex):
 * the thread that reads blocks for at most M x HQ_WORKER_RATE_TIMEOUT_MS;
 * other threads meanwhile append the last values. 0, or HQ_ETOOBIG / HQ_EINVAL
 * (b is not an object). */
int hq_worker_rate_append(struct hq_buf *b);

#endif
