/* The endpoint health gauges: how many endpoints this worker knows with an
 * open (or half-open) circuit breaker and how many disabled, recounted from
 * the endpoint cache every tick (250 ms; dispatch's tick walks it as often), so a dashboard sees
 * them without a SCAN of Redis (hookq stats does that for the whole deployment). Reads the cache
 * (dispatch.c's) and the breaker state as last learned (breaker.c's); writes only the two gauges.
 */
#include "worker/internal.h"

void hq__health_gauges(struct hq_worker *w)
{
    long open = 0, disabled = 0;
    for (int b = 0; b < HQ_CACHE_BUCKETS; b++) {
        for (const struct hq_ep *ep = w->dispatch.eps[b]; ep; ep = ep->next) {
            if (ep->missing || !ep->fetched_ms)
                continue;
            if (!ep->e.enabled || ep->cb.state == HQ_CB_DISABLED)
                disabled++;
            else if (ep->cb.state == HQ_CB_OPEN || ep->cb.state == HQ_CB_HALF_OPEN)
                open++;
        }
    }
    atomic_store_explicit(&w->metrics.eps_circuit_open, open, memory_order_relaxed);
    atomic_store_explicit(&w->metrics.eps_disabled, disabled, memory_order_relaxed);
}
