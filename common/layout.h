/* The layout of a deployment's keys: how many partitions it has, and the base
 * every key name is built on. Two naming schemes, one branch:
 *
 *   untagged (a single Redis with P = 1, the default and today's names):
 *     every base is "<prefix>": "<prefix>:events", "<prefix>:ep:<id>", ...
 *   tagged (P > 1, or any Redis Cluster):
 *     partition i's base is "<prefix>:{T_i}" (T_i from hq_partition_tags), so
 *     "<prefix>:{T_i}:events", ":retry", ":retry:data", ":dead", ":att:<id>"
 *     share one slot; the registry's base is "<prefix>:{reg}" (":ep:<id>",
 *     ":endpoints", ":idx:...", ":endpoints:ver" share another).
 *
 * common/keys.h builds every name from a base, so no other code knows which
 * scheme is in use. A tagged deployment is described by the hash
 * "<prefix>:{reg}:config" (fields version, partitions, tags: "p0,p1.20,...")
 * which producers in other languages read to find the stream of a partition;
 * its absence on a single Redis means the untagged layout
 * (common/layout_store.c reads and writes it).
 *
 * Pure: no I/O; hq_layout_init allocates the partition array (freed by
 * hq_layout_free). docs/internals/redis-layout.md documents the keys. */
#ifndef HQ_COMMON_LAYOUT_H
#define HQ_COMMON_LAYOUT_H

#include <stddef.h>

#include "common/err.h"
#include "common/partition.h"

#define HQ_LAYOUT_VERSION                                                                          \
    1                         /* the "version" field of the config hash this code writes and reads \
                               */
#define HQ_PREFIX_MAX      64 /* --prefix length (common/config.c enforces it) */
#define HQ_LAYOUT_BASE_MAX (HQ_PREFIX_MAX + HQ_PARTITION_TAG_MAX + 4) /* "<prefix>:{T}" + NUL */
#define HQ_LAYOUT_TAGS_MAX (HQ_PARTITIONS_MAX * HQ_PARTITION_TAG_MAX) /* the tags field, joined */
#define HQ_REG_TAG         "reg"                                      /* the registry's hash tag */

struct hq_layout_part {
    char tag[HQ_PARTITION_TAG_MAX]; /* T_i; "" in the untagged layout */
    char base[HQ_LAYOUT_BASE_MAX];  /* "<prefix>:{T_i}", or "<prefix>" untagged */
    unsigned slot;                  /* cluster slot of the base (of T_i) */
};

struct hq_layout {
    char prefix[HQ_PREFIX_MAX + 1];
    unsigned nparts;              /* P >= 1 */
    int tagged;                   /* 0: untagged names (then nparts == 1) */
    char reg[HQ_LAYOUT_BASE_MAX]; /* registry base: "<prefix>:{reg}", or "<prefix>" untagged */
    unsigned reg_slot;            /* cluster slot of the registry keys */
    struct hq_layout_part *part;  /* nparts entries, owned */
    int migrating; /* the config's state is "migrating": `hookq migrate` is moving an untagged
                    * deployment to this layout; nothing may use either layout until it ends */
};

/* The untagged layout (P = 1, today's names). Cannot fail for a valid prefix. */
int hq_layout_init_untagged(struct hq_layout *L, const char *prefix,
                            struct hq_err *err) HQ_MUST_CHECK;
/* A tagged layout of P partitions with the tags of hq_partition_tags. */
int hq_layout_init_tagged(struct hq_layout *L, const char *prefix, unsigned P,
                          struct hq_err *err) HQ_MUST_CHECK;
/* A tagged layout from a config hash's fields (as strings; NULL = missing):
 * checks version, partitions and that tags holds P valid tags. Errors name the
 * field: "layout: <prefix>:{reg}:config field tags holds 3 tags for 4 partitions". */
int hq_layout_init_config(struct hq_layout *L, const char *prefix, const char *version,
                          const char *partitions, const char *tags,
                          struct hq_err *err) HQ_MUST_CHECK;
void hq_layout_free(struct hq_layout *L);

/* "p0,p1.20,..." (the config hash's tags field) into out[n]; -1 if too small. */
int hq_layout_tags_join(const struct hq_layout *L, char *out, size_t n);

/* "<prefix>:{reg}:config" (also in the untagged layout: that is where one looks). */
int hq_key_config(const char *prefix, char *out, size_t n);

/* How entry ids are shown to and taken from users: "p<i>/<entry id>" in a
 * tagged layout, the bare entry id untagged. hq_layout_entry_parse also takes
 * a bare id when P == 1; errors name the input ("'p9/1-0': no partition 9 (P = 4)"). */
int hq_layout_entry_fmt(const struct hq_layout *L, unsigned part, const char *entry_id, char *out,
                        size_t n);
int hq_layout_entry_parse(const struct hq_layout *L, const char *s, unsigned *part, char *entry_id,
                          size_t n, struct hq_err *err) HQ_MUST_CHECK;

/* An id derived from a stream entry id, unique across partitions:
 * "<kind>_<entry id>" untagged (as before), "<kind>_p<i>_<entry id>" tagged.
 * kind is "evt": the webhook-id of an event without an id, and the event_id of
 * an undecodable entry's dead letter. */
int hq_layout_derived_id(const struct hq_layout *L, unsigned part, const char *kind,
                         const char *entry_id, size_t entry_len, char *out, size_t n);

/* The partition a producer writes an event to: hq_partition_of_id of its id
 * when it has one (len > 0), else `any` modulo P (the caller's choice: random
 * or round robin). */
unsigned hq_layout_partition_for(const struct hq_layout *L, const char *id, size_t len,
                                 unsigned any);

#endif
