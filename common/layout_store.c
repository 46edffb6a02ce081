/* The layout's config hash in Redis: see layout_store.h. */
#include "common/layout_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/keys.h"
#include "common/slot.h"

/* Creates the hash only if absent, in one step, so concurrent creators agree:
 * KEYS[1] config; ARGV field/value pairs. Returns 1 created, 0 existed. */
static const char *create_script = "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end "
                                   "redis.call('HSET', KEYS[1], unpack(ARGV)) return 1";

/* The i-th value of an HMGET reply, NULL when the field is missing. */
static const char *field(const redisReply *r, size_t i)
{
    const redisReply *v = r->element[i];
    return v->type == REDIS_REPLY_STRING ? v->str : NULL;
}

/* Reads the config hash: 0 with L filled, HQ_ENOTFOUND when absent, or an error. */
static int read_config(struct hq_redis_conn *c, const char *prefix, struct hq_layout *L,
                       struct hq_err *err)
{
    char key[HQ_KEY_MAX];
    hq_key_config(prefix, key, sizeof(key));
    unsigned slot = hq_key_slot(key, strlen(key));
    const char *argv[] = {"HMGET", key, "version", "partitions", "tags", "state"};
    redisReply *r = hq_redis_conn_cmd(c, slot, err, 6, argv, NULL);
    if (!r)
        return err->code;
    int rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4)
        rc = hq_err_set(err, HQ_EREDIS, "layout: unexpected reply reading %s", key);
    else if (!field(r, 0) && !field(r, 1) && !field(r, 2) && !field(r, 3))
        rc = HQ_ENOTFOUND;
    else {
        rc = hq_layout_init_config(L, prefix, field(r, 0), field(r, 1), field(r, 2), err);
        const char *st = field(r, 3);
        if (rc == 0)
            L->migrating = st && strcmp(st, HQ_LAYOUT_STATE_MIGRATING) == 0;
    }
    freeReplyObject(r);
    return rc;
}

int hq_layout_create(struct hq_redis_conn *c, const char *prefix, unsigned P, struct hq_layout *L,
                     struct hq_err *err)
{
    struct hq_layout n;
    int rc = hq_layout_init_tagged(&n, prefix, P, err);
    if (rc != 0)
        return rc;
    /* On the heap, not static: libhookq may open producers from several
     * threads at once. */
    char *tags = malloc(HQ_LAYOUT_TAGS_MAX);
    if (!tags) {
        hq_layout_free(&n);
        return hq_err_set(err, HQ_ENOMEM, "layout: out of memory");
    }
    char key[HQ_KEY_MAX], ver[16], parts[16];
    hq_key_config(prefix, key, sizeof(key));
    hq_layout_tags_join(&n, tags, HQ_LAYOUT_TAGS_MAX);
    snprintf(ver, sizeof(ver), "%d", HQ_LAYOUT_VERSION);
    snprintf(parts, sizeof(parts), "%u", P);
    const char *argv[] = {"EVAL", create_script, "1",   key,    "version",
                          ver,    "partitions",  parts, "tags", tags};
    redisReply *r = hq_redis_conn_cmd(c, hq_key_slot(key, strlen(key)), err, 10, argv, NULL);
    free(tags);
    if (!r) {
        hq_layout_free(&n);
        return err->code;
    }
    int created = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    if (created) {
        *L = n;
        return 0;
    }
    hq_layout_free(&n);
    rc = read_config(c, prefix, L, err);
    if (rc == HQ_ENOTFOUND)
        return hq_err_set(err, HQ_EREDIS, "layout: %s vanished while being created", key);
    if (rc != 0)
        return rc;
    return hq_err_set(err, HQ_EEXIST, "layout: %s already describes %u partitions", key, L->nparts);
}

int hq_layout_load(struct hq_redis_conn *c, const char *prefix, struct hq_layout *L,
                   struct hq_err *err)
{
    int rc = read_config(c, prefix, L, err);
    if (rc != HQ_ENOTFOUND)
        return rc;
    if (!hq_redis_conn_is_cluster(c))
        return hq_layout_init_untagged(L, prefix, err);
    int primaries = hq_redis_conn_primaries(c);
    unsigned P = (unsigned)(primaries > 0 ? primaries : 1) * HQ_LAYOUT_PARTS_PER_PRIMARY;
    if (P > HQ_PARTITIONS_MAX)
        P = HQ_PARTITIONS_MAX;
    rc = hq_layout_create(c, prefix, P, L, err);
    return rc == HQ_EEXIST ? 0 : rc;
}

int hq_key_migrate_paused(const char *prefix, char *out, size_t n)
{
    int w = snprintf(out, n, "%s:{%s}:migrate:paused", prefix, HQ_REG_TAG);
    return (w < 0 || (size_t)w >= n) ? -1 : w;
}

int hq_layout_wait_migration(struct hq_redis_conn *c, const char *prefix, struct hq_layout *L,
                             long timeout_ms, struct hq_err *err)
{
    long waited = 0;
    for (;;) {
        hq_layout_free(L);
        int rc = hq_layout_load(c, prefix, L, err);
        if (rc != 0 || !L->migrating)
            return rc;
        if (timeout_ms >= 0 && waited >= timeout_ms)
            return hq_err_set(err, HQ_ETIMEDOUT,
                              "layout: a migration of %s has been in progress for %ld ms", prefix,
                              waited);
        struct timespec ts = {0, 250 * 1000 * 1000};
        nanosleep(&ts, NULL);
        waited += 250;
    }
}
