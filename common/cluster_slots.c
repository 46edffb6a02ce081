/* CLUSTER SLOTS and redirect decoding (common/cluster_slots.h), written from
 * the cluster specification's description of the reply and of the -MOVED and
 * -ASK errors. Everything a server sends is treated as untrusted input: each
 * element's type and range is checked before use, and nothing is sized by a
 * count the reply declares. */
#include "common/cluster_slots.h"

#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

/* ---- CLUSTER SLOTS --------------------------------------------------------- */

static const char *type_name(int type)
{
    switch (type) {
    case REDIS_REPLY_STRING: return "string";
    case REDIS_REPLY_ARRAY: return "array";
    case REDIS_REPLY_INTEGER: return "integer";
    case REDIS_REPLY_NIL: return "nil";
    case REDIS_REPLY_STATUS: return "status";
    case REDIS_REPLY_ERROR: return "error";
    default: return "reply of an unknown type";
    }
}

static void map_reset(struct hq_slot_map *map)
{
    for (int s = 0; s < HQ_SLOTS; s++)
        map->owner[s] = -1;
    map->nnodes = 0;
    map->covered = 0;
}

/* Leaves map without owners (a half-filled map must not be routed by) and
 * returns code with err set. */
static int refuse(struct hq_slot_map *map, struct hq_err *err, int code, const char *what,
                  size_t entry)
{
    map_reset(map);
    return hq_err_set(err, code, "cluster slots: entry %zu: %s", entry, what);
}

/* Host names and addresses are printable and have no spaces: anything else
 * would end up in a log line or a connect call as garbage. */
static int host_ok(const char *s, size_t n)
{
    if (n >= HQ_CLUSTER_HOST_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f)
            return 0;
    }
    return 1;
}

/* One node element [host, port, id?, ...] into out; 0, or -1 with *why set. */
static int node_parse(const redisReply *r, struct hq_cluster_node *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
        *why = "a node is not [host, port, ...]";
        return -1;
    }
    const redisReply *host = r->element[0], *port = r->element[1];
    if (!host || (host->type != REDIS_REPLY_NIL && host->type != REDIS_REPLY_STRING)) {
        *why = "a node's host is not a string";
        return -1;
    }
    if (host->type == REDIS_REPLY_STRING) {
        if (!host_ok(host->str, host->len)) {
            *why = "a node's host is too long or not printable";
            return -1;
        }
        memcpy(out->host, host->str, host->len);
        out->host[host->len] = '\0';
    }
    if (!port || port->type != REDIS_REPLY_INTEGER || port->integer < 1 || port->integer > 65535) {
        *why = "a node's port is not an integer in 1..65535";
        return -1;
    }
    out->port = (int)port->integer;
    if (r->elements >= 3) {
        const redisReply *id = r->element[2];
        if (!id || id->type != REDIS_REPLY_STRING || id->len >= HQ_CLUSTER_ID_MAX ||
            !host_ok(id->str, id->len)) {
            *why = "a node's id is not a string of at most 40 characters";
            return -1;
        }
        memcpy(out->id, id->str, id->len);
        out->id[id->len] = '\0';
    }
    /* Elements after the id (Redis 7's metadata map, anything newer) are not needed. */
    return 0;
}

/* Index of the node with n's host:port in map, adding n when new; -1 when the
 * table is full. */
static int node_index(struct hq_slot_map *map, const struct hq_cluster_node *n)
{
    for (int i = 0; i < map->nnodes; i++)
        if (map->node[i].port == n->port && strcmp(map->node[i].host, n->host) == 0)
            return i;
    if (map->nnodes == HQ_CLUSTER_NODES_MAX)
        return -1;
    map->node[map->nnodes] = *n;
    return map->nnodes++;
}

int hq_cluster_slots_parse(const redisReply *reply, struct hq_slot_map *map, struct hq_err *err)
{
    map_reset(map);
    if (!reply)
        return hq_err_set(err, HQ_EINVAL, "cluster slots: no reply");
    if (reply->type == REDIS_REPLY_ERROR)
        return hq_err_set(err, HQ_EREDIS, "cluster slots: %.200s", reply->str ? reply->str : "");
    if (reply->type != REDIS_REPLY_ARRAY)
        return hq_err_set(err, HQ_EINVAL, "cluster slots: the reply is a %s, not an array",
                          type_name(reply->type));
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 3)
            return refuse(map, err, HQ_EINVAL, "not [start, end, primary, replicas...]", i);
        const redisReply *start = e->element[0], *end = e->element[1];
        if (!start || !end || start->type != REDIS_REPLY_INTEGER ||
            end->type != REDIS_REPLY_INTEGER)
            return refuse(map, err, HQ_EINVAL, "start and end are not integers", i);
        if (start->integer < 0 || end->integer >= HQ_SLOTS || start->integer > end->integer) {
            map_reset(map);
            return hq_err_set(err, HQ_EINVAL,
                              "cluster slots: entry %zu: range %lld-%lld is not within 0-%d", i,
                              start->integer, end->integer, HQ_SLOTS - 1);
        }
        struct hq_cluster_node n;
        const char *why = NULL;
        for (size_t k = e->elements; k-- > 2;) {
            /* Replicas are checked too (last to first, so n ends as the
             * primary): a reply with a broken replica is a broken reply. */
            if (node_parse(e->element[k], &n, &why) != 0)
                return refuse(map, err, HQ_EINVAL, why, i);
        }
        n.replicas = (int)(e->elements - 3);
        int idx = node_index(map, &n);
        if (idx < 0) {
            map_reset(map);
            return hq_err_set(err, HQ_ETOOBIG, "cluster slots: more than %d primaries",
                              HQ_CLUSTER_NODES_MAX);
        }
        for (long long s = start->integer; s <= end->integer; s++) {
            if (map->owner[s] != -1) {
                map_reset(map);
                return hq_err_set(err, HQ_EINVAL,
                                  "cluster slots: entry %zu: slot %lld claimed twice", i, s);
            }
            map->owner[s] = (int16_t)idx;
            map->covered++;
        }
    }
    return 0;
}

int hq_slot_map_gaps(const struct hq_slot_map *map, char *out, size_t n)
{
    static const char cut[] = "...";
    size_t used = 0;
    int missing = 0, full = 0;
    if (n)
        out[0] = '\0';
    for (int s = 0; s < HQ_SLOTS;) {
        if (map->owner[s] != -1) {
            s++;
            continue;
        }
        int first = s;
        while (s < HQ_SLOTS && map->owner[s] == -1)
            s++;
        missing += s - first;
        if (full || n == 0)
            continue;
        char piece[32];
        int w = first == s - 1
                    ? snprintf(piece, sizeof(piece), "%s%d", used ? "," : "", first)
                    : snprintf(piece, sizeof(piece), "%s%d-%d", used ? "," : "", first, s - 1);
        /* Keep room for "..." so a cut list says it was cut. */
        if (used + (size_t)w + sizeof(cut) <= n) {
            memcpy(out + used, piece, (size_t)w + 1);
            used += (size_t)w;
        } else {
            full = 1;
            if (used + sizeof(cut) <= n)
                memcpy(out + used, cut, sizeof(cut));
        }
    }
    return missing;
}

/* ---- Redirects and cluster-state errors ------------------------------------ */

static const struct {
    const char *word;
    enum hq_redirect_kind kind;
} kinds[] = {
    {"MOVED", HQ_REDIRECT_MOVED},           {"ASK", HQ_REDIRECT_ASK},
    {"TRYAGAIN", HQ_REDIRECT_TRYAGAIN},     {"CLUSTERDOWN", HQ_REDIRECT_CLUSTERDOWN},
    {"LOADING", HQ_REDIRECT_LOADING},       {"CROSSSLOT", HQ_REDIRECT_CROSSSLOT},
    {"MASTERDOWN", HQ_REDIRECT_MASTERDOWN}, {"READONLY", HQ_REDIRECT_READONLY},
};

const char *hq_redirect_name(enum hq_redirect_kind kind)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (kinds[i].kind == kind)
            return kinds[i].word;
    return "none";
}

/* Decimal digits s[0..n) as a number not above max; -1 when empty, not all
 * digits, or too big (at most 5 digits are read, so no overflow). */
static long decimal(const char *s, size_t n, long max)
{
    if (n == 0 || n > 5)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= max ? v : -1;
}

/* "<slot> <host>:<port>" (n bytes at s) into out; 0, or -1 when malformed. */
static int target_parse(const char *s, size_t n, struct hq_redirect *out)
{
    const char *sp = memchr(s, ' ', n);
    if (!sp)
        return -1;
    long slot = decimal(s, (size_t)(sp - s), HQ_SLOTS - 1);
    if (slot < 0)
        return -1;
    const char *ep = sp + 1;
    size_t en = n - (size_t)(ep - s);
    /* The port follows the last ':', so "::1:7000" is host "::1", port 7000. */
    const char *colon = NULL;
    for (size_t i = en; i-- > 0;) {
        if (ep[i] == ':') {
            colon = ep + i;
            break;
        }
    }
    if (!colon)
        return -1;
    const char *pp = colon + 1;
    long port = decimal(pp, en - (size_t)(pp - ep), 65535);
    if (port < 1)
        return -1;
    const char *host = ep;
    size_t hn = (size_t)(colon - ep);
    if (hn >= 2 && host[0] == '[' && host[hn - 1] == ']') {
        host++;
        hn -= 2;
    }
    if (!host_ok(host, hn))
        return -1;
    out->slot = (int)slot;
    memcpy(out->host, host, hn);
    out->host[hn] = '\0';
    out->port = (int)port;
    return 0;
}

enum hq_redirect_kind hq_redirect_parse(const char *s, size_t len, struct hq_redirect *out)
{
    out->kind = HQ_REDIRECT_NONE;
    out->slot = -1;
    out->host[0] = '\0';
    out->port = 0;
    if (!s)
        return out->kind;
    const char *sp = memchr(s, ' ', len);
    size_t wn = sp ? (size_t)(sp - s) : len;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strlen(kinds[i].word) != wn || memcmp(s, kinds[i].word, wn) != 0)
            continue;
        enum hq_redirect_kind k = kinds[i].kind;
        if (k == HQ_REDIRECT_MOVED || k == HQ_REDIRECT_ASK) {
            /* A redirect without a usable target is not one: following it
             * would send the command nowhere. */
            if (!sp || target_parse(sp + 1, len - wn - 1, out) != 0) {
                out->slot = -1;
                out->host[0] = '\0';
                out->port = 0;
                return out->kind;
            }
        }
        out->kind = k;
        return k;
    }
    return out->kind;
}

int hq_slot_map_move(struct hq_slot_map *m, unsigned slot, const char *host, int port)
{
    if (slot >= HQ_SLOTS)
        return -1;
    int idx = -1;
    for (int n = 0; n < m->nnodes && idx < 0; n++)
        if (m->node[n].port == port && strcmp(m->node[n].host, host) == 0)
            idx = n;
    if (idx < 0) {
        if (m->nnodes >= HQ_CLUSTER_NODES_MAX)
            return -1;
        idx = m->nnodes++;
        memset(&m->node[idx], 0, sizeof(m->node[idx]));
        snprintf(m->node[idx].host, sizeof(m->node[idx].host), "%s", host);
        m->node[idx].port = port;
    }
    if (m->owner[slot] < 0)
        m->covered++;
    m->owner[slot] = (int16_t)idx;
    return 0;
}
