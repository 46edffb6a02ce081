/* See outcome_ops.h. Pure: no I/O, no clock. */
#include "worker/outcome_ops.h"

#include <stdio.h>
#include <string.h>

/* The dead-letter fields, in the order the dead stream stores them. */
enum {
    DL_EVENT_ID,
    DL_TYPE,
    DL_ENDPOINT_ID,
    DL_URL,
    DL_ATTEMPTS,
    DL_LAST_STATUS,
    DL_LAST_ERROR,
    DL_FIRST_ATTEMPT_MS,
    DL_LAST_ATTEMPT_MS,
    DL_REASON,
    DL_PAYLOAD,
    DL_TENANT,
    DL_FIELDS
};
static const char *const dl_names[DL_FIELDS] = {
    "event_id",        "type",        "endpoint_id", "url",
    "attempts",        "last_status", "last_error",  "first_attempt_ms",
    "last_attempt_ms", "reason",      "payload",     "tenant",
};

void hq_ops_init(struct hq_ops *o, size_t max)
{
    hq_buf_init(&o->buf, max);
    o->nargs = 0;
}

void hq_ops_free(struct hq_ops *o)
{
    hq_buf_free(&o->buf);
    o->nargs = 0;
}

static inline int arg(struct hq_ops *o, const char *s, size_t n)
{
    uint32_t len = (uint32_t)n;
    if (hq_buf_append(&o->buf, &len, 4) != 0 || hq_buf_append(&o->buf, s, n) != 0)
        return -1;
    o->nargs++;
    return 0;
}

static int arg_str(struct hq_ops *o, const char *s)
{
    return s ? arg(o, s, strlen(s)) : arg(o, "", 0);
}

static int arg_dec(struct hq_ops *o, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%lld", (long long)v);
    return arg(o, num, (size_t)n);
}

int hq_ops_delivered(struct hq_ops *o, const char *event_id, const char *att, size_t att_len)
{
    /* One statement per argument: the operands of | are not sequenced. */
    int rc = arg(o, "a", 1);
    rc |= arg_str(o, event_id);
    rc |= arg(o, att, att_len);
    return rc;
}

int hq_ops_retained(struct hq_ops *o, const char *event_id, const char *att, size_t att_len,
                    const struct hq_retained_op *r)
{
    int rc = arg(o, "r", 1);
    rc |= arg_str(o, event_id);
    rc |= arg(o, att, att_len);
    rc |= arg_str(o, r->endpoint_id);
    rc |= arg(o, r->type, r->type_len);
    /* A fan-out keeps one copy per endpoint in Redis but sends it only once. */
    rc |= r->payload_again ? arg(o, "=", 1) : arg(o, "p", 1);
    rc |= r->payload_again ? arg(o, "", 0) : arg(o, r->payload, r->payload_len);
    rc |= r->tenant ? arg(o, r->tenant, r->tenant_len) : arg(o, "", 0);
    rc |= arg_dec(o, r->status);
    rc |= arg_dec(o, r->first_ms);
    rc |= arg_dec(o, r->ttl_ms);
    rc |= arg_dec(o, r->max_bytes);
    return rc;
}

int hq_ops_duplicate(struct hq_ops *o, const char *counter_key)
{
    int rc = arg(o, "d", 1);
    rc |= arg(o, "", 0);
    rc |= arg_str(o, counter_key);
    return rc;
}

/* A borrowed string with its length. */
struct sv {
    const char *p;
    size_t n;
};

static struct sv sv_str(const char *s)
{
    return s ? (struct sv){s, strlen(s)} : (struct sv){"", 0};
}

static struct sv sv_mem(const char *p, size_t n)
{
    return p ? (struct sv){p, n} : (struct sv){"", 0};
}

static struct sv sv_dec(char *buf, size_t size, int64_t v)
{
    return (struct sv){buf, (size_t)snprintf(buf, size, "%lld", (long long)v)};
}

static int dead_fields(struct hq_ops *o, const struct hq_dead_letter *dl)
{
    char num[4][24];
    const struct sv v[DL_FIELDS] = {
        [DL_EVENT_ID] = sv_str(dl->event_id),
        [DL_TYPE] = sv_mem(dl->type, dl->type_len),
        [DL_ENDPOINT_ID] = sv_str(dl->endpoint_id),
        [DL_URL] = sv_str(dl->url),
        [DL_ATTEMPTS] = sv_dec(num[0], sizeof(num[0]), dl->attempts),
        [DL_LAST_STATUS] = sv_dec(num[1], sizeof(num[1]), dl->last_status),
        [DL_LAST_ERROR] = sv_str(dl->last_error),
        [DL_FIRST_ATTEMPT_MS] = sv_dec(num[2], sizeof(num[2]), dl->first_attempt_ms),
        [DL_LAST_ATTEMPT_MS] = sv_dec(num[3], sizeof(num[3]), dl->last_attempt_ms),
        [DL_REASON] = sv_str(dl->reason),
        [DL_PAYLOAD] = sv_mem(dl->payload, dl->payload_len),
        [DL_TENANT] = sv_mem(dl->tenant, dl->tenant ? dl->tenant_len : 0),
    };
    /* The count is computed, never written by hand: the fields, then the raw pairs. */
    int rc = arg_dec(o, 2 * DL_FIELDS + 2 * dl->nraw + (dl->batch_id ? 2 : 0));
    for (int i = 0; i < DL_FIELDS; i++) {
        rc |= arg_str(o, dl_names[i]);
        rc |= arg(o, v[i].p, v[i].n);
    }
    const char *p = dl->raw;
    for (int i = 0; i < 2 * dl->nraw; i++) {
        size_t n = strlen(p);
        rc |= arg(o, p, n);
        p += n + 1;
    }
    if (dl->batch_id) {
        rc |= arg_str(o, "batch_id");
        rc |= arg_str(o, dl->batch_id);
    }
    return rc;
}

int hq_ops_full(struct hq_ops *o, const struct hq_full_op *op)
{
    int rc = arg(o, "f", 1);
    if (op->event_id) {
        rc |= arg_str(o, op->event_id);
        rc |= arg(o, op->att, op->att_len);
    } else {
        rc |= arg(o, "", 0);
        rc |= arg(o, "", 0);
    }
    if (op->retry_member) {
        rc |= arg_str(o, op->retry_member);
        rc |= arg_dec(o, op->due_ms);
        rc |= arg(o, op->retry_data, op->retry_data_len);
    } else {
        rc |= arg(o, "", 0);
        rc |= arg(o, "0", 1);
        rc |= arg(o, "", 0);
    }
    if (op->dead)
        rc |= dead_fields(o, op->dead);
    else
        rc |= arg(o, "0", 1);
    return rc;
}

int hq_ops_line(struct hq_ops *o, const struct hq_full_op *op, const struct hq_line_ref *line)
{
    int rc = arg(o, "o", 1);
    rc |= arg_str(o, op->event_id);
    rc |= arg(o, op->event_id ? op->att : "", op->event_id ? op->att_len : 0);
    rc |= arg(o, &line->action, 1);
    rc |= arg_str(o, line->index);
    rc |= arg_str(o, line->name);
    rc |= arg_str(o, line->item);
    rc |= arg_dec(o, op->due_ms);
    rc |= arg(o, op->retry_data ? op->retry_data : "", op->retry_data ? op->retry_data_len : 0);
    rc |= op->dead ? dead_fields(o, op->dead) : arg(o, "0", 1);
    return rc;
}

void hq_ops_argv(const struct hq_ops *o, const char **argv, size_t *lens)
{
    size_t off = 0;
    for (int i = 0; i < o->nargs; i++) {
        uint32_t len;
        memcpy(&len, o->buf.p + off, 4);
        argv[i] = o->buf.p + off + 4;
        lens[i] = len;
        off += 4 + len;
    }
}
