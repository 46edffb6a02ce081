/* Decoding what a Redis Cluster tells a client about where keys live: the
 * CLUSTER SLOTS reply (which primary owns each slot) and the redirect and
 * cluster-state errors a node answers a command with (MOVED, ASK, TRYAGAIN,
 * CLUSTERDOWN, LOADING, CROSSSLOT, MASTERDOWN, READONLY).
 *
 * Pure: reads hiredis reply objects and strings, no I/O, no allocation, no
 * logging; safe in libhookq (never aborts). Any reply shape is accepted as
 * input: a malformed one is refused with a message, never trusted or crashed
 * on (tests/fuzz/fuzz_cluster_reply.c). What to do with the result (connect,
 * resend, back off) belongs to the routing layer that calls this. */
#ifndef HQ_COMMON_CLUSTER_SLOTS_H
#define HQ_COMMON_CLUSTER_SLOTS_H

#include <stdint.h>

#include <hiredis/hiredis.h>

#include "common/err.h"
#include "common/slot.h"

/* Primaries a map holds. Redis advises clusters of at most ~1000 nodes (~500
 * primaries with a replica each); hookq's P <= 1024 partitions need far fewer
 * primaries to spread, and a reply naming more is refused, not truncated. */
#define HQ_CLUSTER_NODES_MAX 256
#define HQ_CLUSTER_HOST_MAX  256 /* a host name (255) or an IPv6 text address, plus the NUL */
#define HQ_CLUSTER_ID_MAX    41  /* a node id: 40 hex characters, plus the NUL */

/* A primary named by CLUSTER SLOTS. */
struct hq_cluster_node {
    char host[HQ_CLUSTER_HOST_MAX]; /* as announced; "" = the host of the node that was asked */
    int port;                       /* 1..65535 */
    char id[HQ_CLUSTER_ID_MAX];     /* node id, "" when the server did not send one (< 4.0) */
    int replicas;                   /* replicas listed with its first slot range */
};

/* Which primary owns each slot. A plain struct of ~110 KiB: the caller owns
 * it (heap or static; too big for a small stack) and may reuse it. */
struct hq_slot_map {
    int16_t owner[HQ_SLOTS]; /* index into node[], or -1 when no node serves the slot */
    int nnodes;              /* entries used in node[] */
    int covered;             /* slots with an owner: HQ_SLOTS when coverage is full */
    struct hq_cluster_node node[HQ_CLUSTER_NODES_MAX]; /* distinct primaries by host:port */
};

/* Decodes a CLUSTER SLOTS reply into map (overwritten; on error it holds no
 * owners). The reply is an array of [start, end, primary, replica...] where
 * start and end are integers (inclusive, 0 <= start <= end < 16384) and each
 * node is an array [host, port, id?, metadata?...]; host may be "" or nil
 * (meaning the node asked). One primary may own many ranges: nodes are
 * distinct by host:port. Returns 0, or HQ_EREDIS for an error reply (its text
 * in err), HQ_EINVAL for a reply of any other shape or a slot claimed twice,
 * HQ_ETOOBIG for more than HQ_CLUSTER_NODES_MAX primaries. Slots no entry
 * names are not an error: they are left at -1 and counted out of covered, so
 * the caller decides whether a partial cluster is usable
 * (hq_slot_map_gaps() names them). reply is borrowed. */
int hq_cluster_slots_parse(const redisReply *reply, struct hq_slot_map *map,
                           struct hq_err *err) HQ_MUST_CHECK;

/* Writes the slot ranges without an owner, "0-99,5461,16000-16383", into out
 * (n bytes, NUL-terminated; ends in "..." when cut short); "" when coverage is
 * full. Returns the number of such slots. */
int hq_slot_map_gaps(const struct hq_slot_map *map, char *out, size_t n);

/* Points slot at the primary host:port (a MOVED says so with authority), so a
 * resend goes there before a refresh of the whole map has answered; the node
 * is added when the map does not know it. Returns 0, or -1 when the map has
 * no room for another primary (map unchanged). */
int hq_slot_map_move(struct hq_slot_map *map, unsigned slot, const char *host, int port);

/* What an error reply means to a cluster client. */
enum hq_redirect_kind {
    HQ_REDIRECT_NONE = 0,    /* not a cluster error: handle as any Redis error */
    HQ_REDIRECT_MOVED,       /* the slot lives elsewhere for good: refresh the map, resend */
    HQ_REDIRECT_ASK,         /* the slot is migrating: send ASKING then the command, once */
    HQ_REDIRECT_TRYAGAIN,    /* multi-key command during a slot migration: back off, retry */
    HQ_REDIRECT_CLUSTERDOWN, /* the cluster (or the slot) is down: back off, retry */
    HQ_REDIRECT_LOADING,     /* the node is loading its data set: back off, retry */
    HQ_REDIRECT_CROSSSLOT,   /* keys in different slots: a bug in the caller, never retried */
    HQ_REDIRECT_MASTERDOWN,  /* a replica lost its primary: back off, re-resolve */
    HQ_REDIRECT_READONLY,    /* a write reached a replica: re-resolve the primary */
};

struct hq_redirect {
    enum hq_redirect_kind kind;
    int slot;                       /* MOVED/ASK: the slot, 0..16383; else -1 */
    char host[HQ_CLUSTER_HOST_MAX]; /* MOVED/ASK: target host; "" = the node that answered */
    int port;                       /* MOVED/ASK: target port, 1..65535; else 0 */
};

/* Classifies an error reply's text (len bytes at s, as hiredis gives it:
 * without the leading '-'; binary-safe). MOVED and ASK must be exactly
 * "<KIND> <slot> <host>:<port>" (the port follows the last ':', so an IPv6
 * host such as "::1" needs no brackets; "[::1]:7000" is also accepted); a
 * malformed one is HQ_REDIRECT_NONE, as is anything unknown. The other kinds
 * are recognised by their first word. Fills out and returns out->kind. */
enum hq_redirect_kind hq_redirect_parse(const char *s, size_t len, struct hq_redirect *out);

/* "MOVED", "ASK", ... or "none", for logs. */
const char *hq_redirect_name(enum hq_redirect_kind kind);

#endif
