/* Reading attempt records: attempts.h. */
#include "common/attempts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/keys.h"
#include "common/layout.h"
#include "common/redis_conn.h"
#include "common/limits.h"
#include "common/scripts.h"

redisReply *hq_attempts_read(redisContext *node, const char *base, const char *event_id,
                             struct hq_err *err)
{
    char list[HQ_KEY_MAX], index[HQ_KEY_MAX], keep[12];
    if (hq_key_attempts(base, event_id, list, sizeof(list)) < 0 ||
        hq_key_attempt_index(base, index, sizeof(index)) < 0) {
        hq_err_set(err, HQ_EINVAL, "attempt records: key for event '%s' too long", event_id);
        return NULL;
    }
    snprintf(keep, sizeof(keep), "%d", HQ_ATTEMPTS_KEPT_MAX);
    const char *argv[] = {list, index, event_id, keep};
    redisReply *r = hq_script_call(node, hq_script_attempts_read, 2, 4, argv, NULL, err);
    if (r && r->type != REDIS_REPLY_ARRAY) {
        hq_err_set(err, HQ_EREDIS, "attempt records: unexpected reply type %d", r->type);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* The partition an event's attempts are most likely in: the one an id
 * derived from a stream entry names ("evt_p3_<entry>"), else the producer
 * rule's partition of the id. */
static unsigned att_first_part(const struct hq_layout *L, const char *id)
{
    unsigned p = 0;
    if (L->tagged && sscanf(id, "evt_p%u_", &p) == 1 && p < L->nparts)
        return p;
    return hq_layout_partition_for(L, id, strlen(id), 0);
}

/* A record's "at_ms" (0 when absent: it then sorts first). */
static long long rec_at_ms(const redisReply *r)
{
    const char *a = r->type == REDIS_REPLY_STRING ? strstr(r->str, "\"at_ms\":") : NULL;
    return a ? atoll(a + 8) : 0;
}

/* Stable (records of one time keep their order), and n is small. */
static void sort_by_at_ms(redisReply **el, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        redisReply *x = el[i];
        long long t = rec_at_ms(x);
        size_t j = i;
        for (; j > 0 && rec_at_ms(el[j - 1]) > t; j--)
            el[j] = el[j - 1];
        el[j] = x;
    }
}

/* Moves the elements of src to the end of dst (both arrays; dst grows). */
static int take_elements(redisReply *dst, redisReply *src)
{
    if (!src->elements)
        return 0;
    redisReply **el = realloc(dst->element, sizeof(*el) * (dst->elements + src->elements));
    if (!el)
        return -1;
    memcpy(el + dst->elements, src->element, sizeof(*el) * src->elements);
    dst->element = el;
    dst->elements += src->elements;
    free(src->element); /* the elements are dst's now */
    src->element = NULL;
    src->elements = 0;
    return 0;
}

/* The attempt records of id (hq_attempts_read) in every partition, merged
 * by time and cut to the last HQ_ATTEMPTS_KEPT_MAX: a batch retried whole
 * records its members' later attempts in the batch's partition, which need
 * not be a member's own (docs/batching.md); events produced before a
 * migration to more partitions kept theirs in partition 0; a producer may
 * have chosen another partition. Tried first in att_first_part's partition,
 * so one partition's reply comes back as it is. NULL with err. */
redisReply *hq_attempts_lookup(struct hq_redis_conn *c, const struct hq_layout *L, const char *id,
                               struct hq_err *err)
{
    unsigned first = att_first_part(L, id);
    redisReply *all = NULL;
    unsigned from = 0; /* partitions that had records */
    for (unsigned k = 0; k < L->nparts; k++) {
        unsigned p = k == 0 ? first : (k <= first ? k - 1 : k);
        redisContext *node = hq_redis_conn_node(c, L->part[p].slot, err);
        redisReply *r = node ? hq_attempts_read(node, L->part[p].base, id, err) : NULL;
        if (!r) {
            if (all)
                freeReplyObject(all);
            return NULL;
        }
        if (!all) {
            all = r;
            from += r->elements > 0;
            continue;
        }
        from += r->elements > 0;
        int rc = take_elements(all, r);
        freeReplyObject(r);
        if (rc != 0) {
            freeReplyObject(all);
            hq_err_set(err, HQ_ENOMEM, "attempt records of '%s': out of memory", id);
            return NULL;
        }
    }
    if (from > 1) { /* records from several partitions: in time order, the newest kept */
        sort_by_at_ms(all->element, all->elements);
        if (all->elements > HQ_ATTEMPTS_KEPT_MAX) {
            size_t drop = all->elements - HQ_ATTEMPTS_KEPT_MAX;
            for (size_t i = 0; i < drop; i++)
                freeReplyObject(all->element[i]);
            memmove(all->element, all->element + drop,
                    sizeof(*all->element) * HQ_ATTEMPTS_KEPT_MAX);
            all->elements = HQ_ATTEMPTS_KEPT_MAX;
        }
    }
    return all;
}
