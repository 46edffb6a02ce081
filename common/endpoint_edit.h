/* Changing an endpoint the way a user asks (endpoint_edit.c, pure but for the
 * random keys): the rules `hookq endpoint add|update|rotate` and `hookq api`
 * both apply, in one place, so the CLI and the API cannot disagree, and the
 * endpoint object both print (docs/endpoints.md, "The endpoint object"). */
#ifndef HQ_COMMON_ENDPOINT_EDIT_H
#define HQ_COMMON_ENDPOINT_EDIT_H

#include "common/backoff.h"
#include "common/buf.h"
#include "common/endpoint.h"
#include "common/err.h"
#include "common/netguard.h"

/* Adds one filter to e->events (allocated on first use, HQ_EVENT_FILTERS_MAX
 * entries): checked by hq_endpoint_check_filter, a duplicate dropped, more than
 * HQ_EVENT_FILTERS_MAX refused ("events: more than 64 filters"). */
int hq_endpoint_add_event(struct hq_endpoint *e, const char *filter,
                          struct hq_err *err) HQ_MUST_CHECK;
/* Parses "invoice.paid, user.*" into e->events (deduplicated; whitespace
 * around items ignored; none at all refused). */
int hq_endpoint_parse_events(const char *list, struct hq_endpoint *e,
                             struct hq_err *err) HQ_MUST_CHECK;

/* The deployment's policy as the workers would see it: the defaults, then
 * HOOKQ_BACKOFF_BASE/FACTOR/MAX when set (unparseable values are the
 * workers' to refuse; here they leave the default). [out] p. */
void hq_endpoint_deployment_policy(struct hq_policy *p);

/* The guard an update applies: a URL that was accepted when set stays
 * accepted, so the guard g (the command's or server's) applies only to a new
 * URL. */
void hq_endpoint_update_guard(struct hq_netguard *g, int url_changed);

/* Replaces key slot (1 or 2; 0 = the older: smaller key_ms, key1 when equal)
 * with a fresh key and its time. [out] *used: the slot replaced. */
int hq_endpoint_rotate(struct hq_endpoint *e, int slot, int *used,
                       struct hq_err *err) HQ_MUST_CHECK;

/* How the endpoint object shows keys: absent (listings), masked, in full. */
enum hq_endpoint_keys { HQ_EP_KEYS_NONE, HQ_EP_KEYS_MASKED, HQ_EP_KEYS_REVEALED };
/* Appends the endpoint's JSON object (docs/endpoints.md, "The endpoint
 * object"); header values "***" unless reveal_headers. */
int hq_endpoint_json(struct hq_buf *b, const struct hq_endpoint *e, enum hq_endpoint_keys keys,
                     int reveal_headers) HQ_MUST_CHECK;
/* "whsec_…abcd": enough to tell keys apart, not enough to use one. */
void hq_endpoint_mask_key(const char *key, char *out, size_t n);
/* "Name: ***" unless reveal. */
void hq_endpoint_header_shown(const char *h, int reveal, char *out, size_t n);

/* Sets e->batch from the --batch syntax ("max=N,wait=DUR,bytes=SIZE", "off"
 * or "" for off: hq_batch_parse), or, when spec is NULL, from c (the API's
 * object form; bounds as hq_batch_check). Nothing changed on error. */
int hq_endpoint_set_batch(struct hq_endpoint *e, const char *spec, const struct hq_batch_cfg *c,
                          struct hq_err *err) HQ_MUST_CHECK;

#endif
