/* Entries: one stream entry held by this worker, from read/claim until its
 * outcome batch is acknowledged. This file owns the set of held entries and
 * the one function that changes an entry's state, which checks that the
 * transition is legal:
 *
 *   RESOLVING -> DELIVERING -> READY -> FLUSHING -> freed
 *                                 ^         |
 *                                 +---------+ (a failed flush: retried)
 *
 * Invalid entries skip resolving: RESOLVING -> READY with their dead letter.
 * A leaf: it calls nothing else in worker/. */
#include "worker/internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/log.h"

static const char *const state_names[] = {"resolving", "delivering", "ready", "flushing"};

/* Legal transitions, [from][to]. */
static const unsigned char legal[4][4] = {
    [HQ_ENTRY_RESOLVING] =
        {[HQ_ENTRY_RESOLVING] = 1, [HQ_ENTRY_DELIVERING] = 1, [HQ_ENTRY_READY] = 1},
    [HQ_ENTRY_DELIVERING] = {[HQ_ENTRY_READY] = 1},
    [HQ_ENTRY_READY] = {[HQ_ENTRY_FLUSHING] = 1},
    [HQ_ENTRY_FLUSHING] = {[HQ_ENTRY_READY] = 1},
};

static int settled(enum hq_entry_state s)
{
    return s == HQ_ENTRY_READY || s == HQ_ENTRY_FLUSHING;
}

void hq__entry_set_state(struct hq_entries *set, struct hq_entry *e, enum hq_entry_state s)
{
    if (hq_unlikely(!legal[e->state][s]))
        hq_panic("entry %s: illegal state change %s -> %s", e->id, state_names[e->state],
                 state_names[s]);
    hq_log(HQ_LOG_DEBUG, "entry", "%s %s -> %s", e->id, state_names[e->state], state_names[s]);
    int d = settled(s) - settled(e->state);
    set->settled += d;
    if (e->part % HQ_LANES == HQ_LANE_RETRY)
        set->retry_active -= d;
    e->state = s;
}

void hq__entries_init(struct hq_entries *set)
{
    set->head.next = set->head.prev = &set->head;
    set->n = 0;
    set->settled = 0;
    set->retry_active = 0;
}

struct hq_entry *hq__entry_new(struct hq_entries *set, unsigned part, const char *id, size_t len)
{
    hq_assert(len < HQ_STREAM_ID_MAX);
    struct hq_entry *e = hq_calloc(1, sizeof(*e));
    e->part = part;
    memcpy(e->id, id, len);
    e->id[len] = '\0';
    e->sid_ok = hq_sid_parse(e->id, &e->sid);
    e->state = HQ_ENTRY_RESOLVING;
    hq_ops_init(&e->ops, (size_t)64 * 1024 * 1024);
    /* Room for the usual single "delivered" op (about 300 bytes) in one allocation;
     * 512 bytes under a 64 MiB max cannot fail. */
    int rc = hq_buf_reserve(&e->ops.buf, 512);
    hq_assert(rc == 0);
    e->next = &set->head;
    e->prev = set->head.prev;
    set->head.prev->next = e;
    set->head.prev = e;
    set->n++;
    if (part % HQ_LANES == HQ_LANE_RETRY)
        set->retry_active++;
    return e;
}

int hq__entries_hold(const struct hq_entries *set, unsigned part, const char *id, size_t len)
{
    for (const struct hq_entry *e = set->head.next; e != &set->head; e = e->next) {
        if (e->part == part && strlen(e->id) == len && memcmp(e->id, id, len) == 0)
            return 1;
    }
    return 0;
}

void hq__entry_release_event(struct hq_entry *e)
{
    hq_assert(e->state == HQ_ENTRY_READY);
    free(e->data);
    e->data = NULL;
    memset(&e->ev, 0, sizeof(e->ev));
}

void hq__entry_free(struct hq_entries *set, struct hq_entry *e)
{
    /* Freed only when nothing references it: no delivery left. */
    hq_assert(e->remaining == 0);
    hq_assert(set->n > 0);
    e->prev->next = e->next;
    e->next->prev = e->prev;
    set->n--;
    set->settled -= settled(e->state);
    if (e->part % HQ_LANES == HQ_LANE_RETRY && !settled(e->state))
        set->retry_active--;
    free(e->data);
    free(e->invalid);
    hq_buf_free(&e->raw);
    hq_ops_free(&e->ops);
    free(e);
}

void hq__entries_free_all(struct hq_entries *set)
{
    /* Entries still held (a timed-out drain) stay pending in Redis; their
     * deliveries were torn down with the loop. */
    while (set->head.next != &set->head) {
        set->head.next->remaining = 0;
        hq__entry_free(set, set->head.next);
    }
}
