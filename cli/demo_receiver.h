/* The demo webhook receiver of `hookq up`: a libmicrohttpd server on
 * 127.0.0.1 (its own thread) that plays the customer's side. It verifies each
 * request's Standard Webhooks signature with the endpoint's keys and prints
 * one line per delivery:
 *   received invoice.paid id=evt_... signature=valid (key1+key2) 142 bytes
 * Two routes: HQ_DEMO_OK answers 204 to a valid signature (401 otherwise);
 * HQ_DEMO_FAILING always answers 503, so the retry schedule and dead-lettering
 * can be watched. Demo code: not used by the worker or the scheduler. */
#ifndef HQ_CLI_DEMO_RECEIVER_H
#define HQ_CLI_DEMO_RECEIVER_H

#include <stdio.h>

#include "common/err.h"

enum hq_demo_route {
    HQ_DEMO_OK = 0,  /* path /demo: verify, 204 */
    HQ_DEMO_FAILING, /* path /demo-failing: verify, always 503 */
    HQ_DEMO_ROUTES
};

/* Counts since start (read with hq_demo_receiver_stats; any thread). */
struct hq_demo_stats {
    unsigned long received[HQ_DEMO_ROUTES]; /* requests per route */
    unsigned long valid;                    /* requests whose signature verified */
    unsigned long invalid;                  /* requests whose signature did not */
};

struct hq_demo_receiver;

/* Starts the receiver on 127.0.0.1, port chosen by the kernel. Lines go to out
 * (borrowed; must outlive the receiver; written from the receiver's thread).
 * Returns NULL with err set on failure. */
struct hq_demo_receiver *hq_demo_receiver_start(FILE *out, struct hq_err *err);

/* Writes the URL of a route ("http://127.0.0.1:<port>/demo") into out. */
void hq_demo_receiver_url(const struct hq_demo_receiver *r, enum hq_demo_route route, char *out,
                          size_t n);

/* Sets the signing keys ("whsec_..."; key2 may be NULL) a route verifies with.
 * Copies and decodes them; may be called while requests arrive. 0 or HQ_EINVAL
 * (the message never echoes a key). */
int hq_demo_receiver_set_keys(struct hq_demo_receiver *r, enum hq_demo_route route,
                              const char *key1, const char *key2, struct hq_err *err) HQ_MUST_CHECK;

/* Copies the counters into [out] st. */
void hq_demo_receiver_stats(struct hq_demo_receiver *r, struct hq_demo_stats *st);

/* Stops the server (waits for its thread), wipes the keys and frees r. NULL is a no-op. */
void hq_demo_receiver_stop(struct hq_demo_receiver *r);

#endif
