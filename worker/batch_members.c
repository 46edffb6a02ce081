/* The member list of a batch retried whole (batch_retry.c, docs/batching.md):
 * one line per member, "id type timestamp_ms payload_offset payload_len b64",
 * its payload being the batch body's bytes there (base64 when b64 is 1).
 * Reading it: each member's attempt record, and at the end of the batch one
 * dead letter per member. A leaf (outcome.c calls it). */
#include "worker/internal.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

struct member {
    char id[HQ_ID_MAX + 1];
    char type[HQ_TYPE_MAX + 1];
    long long ts;
    size_t off, len;
    int b64;
};

/* The next member of e's list from *at; 1, 0 at the end, -1 corrupt. */
static int next_member(const struct hq_entry *e, size_t *at, struct member *m)
{
    const char *s = e->ev.batch + *at, *end = e->ev.batch + e->ev.batch_len;
    if (s >= end)
        return 0;
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    char line[HQ_ID_MAX + HQ_TYPE_MAX + 96], fmt[64];
    if (!nl || (size_t)(nl - s) >= sizeof(line))
        return -1;
    memcpy(line, s, (size_t)(nl - s));
    line[nl - s] = '\0';
    *at += (size_t)(nl - s) + 1;
    snprintf(fmt, sizeof(fmt), "%%%ds %%%ds %%lld %%zu %%zu %%d%%n", HQ_ID_MAX, HQ_TYPE_MAX);
    int used = 0;
    if (sscanf(line, fmt, m->id, m->type, &m->ts, &m->off, &m->len, &m->b64, &used) != 6 ||
        line[used] != '\0' || m->off > e->ev.payload_len || m->len > e->ev.payload_len - m->off ||
        (m->b64 && m->len % 4 != 0))
        return -1;
    return 1;
}

/* The number of members, or 0 when the list is corrupt. */
static int count_members(const struct hq_entry *e)
{
    struct member m;
    size_t at = 0;
    int n = 0, rc;
    while ((rc = next_member(e, &at, &m)) > 0)
        n++;
    return rc < 0 ? 0 : n;
}

int hq__batch_retry_records(struct hq_entry *e, const char *att, size_t att_len)
{
    int n = count_members(e);
    struct member m;
    size_t at = 0;
    for (int i = 0; i < n && next_member(e, &at, &m) > 0; i++)
        if (hq_ops_delivered(&e->ops, m.id, att, att_len) != 0)
            hq_panic("entry %s: outcome buffer full", e->id);
    return n;
}

int hq__batch_retry_split(struct hq_entry *e, const struct hq_full_op *op)
{
    int n = count_members(e);
    struct member m;
    size_t at = 0;
    for (int i = 0; i < n && next_member(e, &at, &m) > 0; i++) {
        struct hq_dead_letter dl = *op->dead;
        unsigned char *raw = NULL;
        dl.event_id = m.id;
        dl.type = m.type;
        dl.type_len = strlen(m.type);
        dl.payload = e->ev.payload + m.off;
        dl.payload_len = m.len;
        dl.batch_id = e->event_id;
        if (m.b64) {
            raw = hq_malloc(m.len / 4 * 3 + 1);
            int k = m.len ? EVP_DecodeBlock(raw, (const unsigned char *)dl.payload, (int)m.len) : 0;
            if (k < 0)
                k = 0;
            for (size_t j = m.len; j > 0 && dl.payload[j - 1] == '=' && k > 0; j--)
                k--; /* the padding decoded as zero bytes */
            dl.payload = (const char *)raw;
            dl.payload_len = (size_t)k;
        }
        struct hq_full_op mop = *op;
        mop.event_id = op->event_id ? m.id : NULL;
        mop.retry_member = NULL;
        mop.dead = &dl;
        if (hq_ops_full(&e->ops, &mop) != 0)
            hq_panic("entry %s: outcome buffer full", e->id);
        free(raw);
    }
    return n;
}
