/* Reading attempt records: attempts.h. */
#include "common/attempts.h"

#include <stdio.h>
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

/* The attempt records of id (hq_attempts_read): in att_first_part's
 * partition, else in every other one (events produced before a migration to
 * more partitions kept their records in partition 0; a producer may have
 * chosen another). NULL with err, or the first non-empty reply (the last empty
 * reply when there is none). */
redisReply *hq_attempts_lookup(struct hq_redis_conn *c, const struct hq_layout *L, const char *id,
                               struct hq_err *err)
{
    unsigned first = att_first_part(L, id);
    redisReply *r = NULL;
    for (unsigned k = 0; k < L->nparts; k++) {
        unsigned p = k == 0 ? first : (k <= first ? k - 1 : k);
        if (r)
            freeReplyObject(r);
        redisContext *node = hq_redis_conn_node(c, L->part[p].slot, err);
        r = node ? hq_attempts_read(node, L->part[p].base, id, err) : NULL;
        if (!r || r->elements > 0)
            return r;
    }
    return r;
}
