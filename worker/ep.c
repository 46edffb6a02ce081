/* A cached endpoint's lifetime (struct hq_ep): its data and its references.
 * The cache (dispatch.c), deliveries and breaker calls (breaker.c) each hold
 * a reference; the last one dropped frees it; and the lookup in the cache's
 * table. A leaf, so both can use it without calling each other. */
#include "worker/internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

void hq__ep_clear_data(struct hq_ep *ep)
{
    hq_endpoint_free(&ep->e);
    memset(&ep->e, 0, sizeof(ep->e));
    for (int i = 0; i < ep->nkeys; i++)
        hq_sign_key_wipe(&ep->keys[i]);
    ep->nkeys = 0;
    curl_slist_free_all(ep->custom);
    ep->custom = NULL;
}

struct hq_ep *hq__ep_find(struct hq_worker *w, const char *id, size_t n)
{
    for (struct hq_ep *ep = w->dispatch.eps[hq_fnv1a(id, n) % HQ_CACHE_BUCKETS]; ep;
         ep = ep->next) {
        if (strlen(ep->id) == n && memcmp(ep->id, id, n) == 0)
            return ep;
    }
    return NULL;
}

void hq__ep_unref(struct hq_ep *ep)
{
    hq_assert(ep->refs > 0);
    if (--ep->refs > 0)
        return;
    hq_assert(!ep->cached && ep->in_flight == 0 && !ep->qhead);
    hq__ep_clear_data(ep);
    free(ep->exh);
    free(ep);
}
