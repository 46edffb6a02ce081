/* Endpoints' Redis storage (endpoint_store.c): create, get, save, delete and
 * the paged walk, all blocking I/O, for the CLI and tests, never the worker
 * loop. The model, validation and decoding are common/endpoint.h (pure); the
 * keys written are described there. Every `base` is the registry base (L.reg of
 * common/layout.h): keys are built from it, never from the bare prefix. */
#ifndef HQ_COMMON_ENDPOINT_STORE_H
#define HQ_COMMON_ENDPOINT_STORE_H

#include <hiredis/hiredis.h>

#include "common/endpoint.h"
#include "common/err.h"
#include "common/limits.h"

/* ---- Registry (blocking; for the CLI and tests, never the worker loop) ------- */
/* Creates e (validated by the caller): generates id and both keys into e, writes
 * the hash and the indexes atomically (MULTI/EXEC). */
int hq_endpoint_create(redisContext *c, const char *base, struct hq_endpoint *e,
                       struct hq_err *err) HQ_MUST_CHECK;
int hq_endpoint_get(redisContext *c, const char *base, const char *id, struct hq_endpoint *e,
                    struct hq_err *err) HQ_MUST_CHECK;
/* hq_endpoint_get after WATCHing the hash: a later hq_endpoint_save on this
 * connection fails with HQ_EAGAIN if someone else changed it in between. */
int hq_endpoint_get_watched(redisContext *c, const char *base, const char *id,
                            struct hq_endpoint *e, struct hq_err *err) HQ_MUST_CHECK;
/* Rewrites e's hash and moves its index entries from old's filters to e's. */
int hq_endpoint_save(redisContext *c, const char *base, const struct hq_endpoint *old,
                     const struct hq_endpoint *e, struct hq_err *err) HQ_MUST_CHECK;
int hq_endpoint_delete(redisContext *c, const char *base, const char *id,
                       struct hq_err *err) HQ_MUST_CHECK;

/* Where a paged walk over <r>:endpoints (oldest first) stands. */
struct hq_endpoint_cursor {
    char last[HQ_ENDPOINT_ID_MAX + 1]; /* the last id walked past; "" = before the oldest */
    char score[32];                    /* last's score (created ms) as stored, to find its
                                          place if it is deleted meanwhile */
    int more; /* [out] of a walk cut short by its limit or cb: endpoints remain after last */
};

/* Called per endpoint, oldest first; e is borrowed until return. Return 0 to
 * go on, 1 to stop (the cursor then ends on e). */
typedef int (*hq_endpoint_visit_cb)(const struct hq_endpoint *e, void *arg);

/* [out] *cur positioned just after 'after' (NULL: before the oldest).
 * HQ_ENOTFOUND "no endpoint '<after>'" when it is not registered; HQ_EREDIS. */
int hq_endpoint_scan_from(redisContext *c, const char *base, const char *after,
                          struct hq_endpoint_cursor *cur, struct hq_err *err) HQ_MUST_CHECK;
/* Walks the endpoints after cur, HQ_LIST_PAGE per round trip (bounded memory
 * for any registry size), calling cb with each (decoded by
 * hq_endpoint_from_listing; keys are never read) until limit were yielded
 * (0 = all) or cb stops; endpoints deleted meanwhile are skipped, none is
 * yielded twice. cur advances, so a later call continues. 0 or HQ_EREDIS. */
int hq_endpoint_scan(redisContext *c, const char *base, struct hq_endpoint_cursor *cur,
                     long long limit, hq_endpoint_visit_cb cb, void *arg,
                     struct hq_err *err) HQ_MUST_CHECK;

/* Walks the endpoints of one tenant through <r>:idx:tenant:<tenant> (SSCAN,
 * HQ_LIST_PAGE per round trip, one pipelined HMGET per page; no scan of the
 * registry), in no particular order, calling cb (as hq_endpoint_scan) until
 * limit were yielded (0 = all) or cb stops. An id whose hash is gone or names
 * another tenant (a hand edit) is skipped. 0, HQ_EINVAL, HQ_EREDIS. */
int hq_endpoint_scan_tenant(redisContext *c, const char *base, const char *tenant, long long limit,
                            hq_endpoint_visit_cb cb, void *arg, struct hq_err *err) HQ_MUST_CHECK;

#endif
