/* Reading attempt records: attempts.h. */
#include "common/attempts.h"

#include <stdio.h>

#include "common/keys.h"
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
