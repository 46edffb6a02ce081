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
    DL_FIELDS
};
static const char *const dl_names[DL_FIELDS] = {
    "event_id",        "type",        "endpoint_id", "url",
    "attempts",        "last_status", "last_error",  "first_attempt_ms",
    "last_attempt_ms", "reason",      "payload",
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
    return arg(o, "a", 1) | arg_str(o, event_id) | arg(o, att, att_len);
}

static int dead_fields(struct hq_ops *o, const struct hq_dead_letter *dl)
{
    char nums[DL_FIELDS][24];
    const char *v[DL_FIELDS] = {0};
    size_t len[DL_FIELDS] = {0};
    int64_t n64[DL_FIELDS] = {0};
    n64[DL_ATTEMPTS] = dl->attempts;
    n64[DL_LAST_STATUS] = dl->last_status;
    n64[DL_FIRST_ATTEMPT_MS] = dl->first_attempt_ms;
    n64[DL_LAST_ATTEMPT_MS] = dl->last_attempt_ms;
    v[DL_EVENT_ID] = dl->event_id;
    v[DL_TYPE] = dl->type, len[DL_TYPE] = dl->type ? dl->type_len : 0;
    v[DL_ENDPOINT_ID] = dl->endpoint_id;
    v[DL_URL] = dl->url;
    v[DL_LAST_ERROR] = dl->last_error;
    v[DL_REASON] = dl->reason;
    v[DL_PAYLOAD] = dl->payload, len[DL_PAYLOAD] = dl->payload ? dl->payload_len : 0;
    for (int i = 0; i < DL_FIELDS; i++) {
        if (i == DL_ATTEMPTS || i == DL_LAST_STATUS || i == DL_FIRST_ATTEMPT_MS ||
            i == DL_LAST_ATTEMPT_MS) {
            len[i] = (size_t)snprintf(nums[i], sizeof(nums[i]), "%lld", (long long)n64[i]);
            v[i] = nums[i];
        } else if (!v[i]) {
            v[i] = "";
            len[i] = 0;
        } else if (i != DL_TYPE && i != DL_PAYLOAD) {
            len[i] = strlen(v[i]);
        }
    }
    /* The count is computed, never written by hand: the fields, then the raw pairs. */
    int rc = arg_dec(o, 2 * DL_FIELDS + 2 * dl->nraw);
    for (int i = 0; i < DL_FIELDS; i++)
        rc |= arg_str(o, dl_names[i]) | arg(o, v[i], len[i]);
    const char *p = dl->raw;
    for (int i = 0; i < 2 * dl->nraw; i++) {
        size_t n = strlen(p);
        rc |= arg(o, p, n);
        p += n + 1;
    }
    return rc;
}

int hq_ops_full(struct hq_ops *o, const struct hq_full_op *op)
{
    int rc = arg(o, "f", 1);
    if (op->event_id)
        rc |= arg_str(o, op->event_id) | arg(o, op->att, op->att_len);
    else
        rc |= arg(o, "", 0) | arg(o, "", 0);
    if (op->retry_member)
        rc |= arg_str(o, op->retry_member) | arg_dec(o, op->due_ms) |
              arg(o, op->retry_data, op->retry_data_len);
    else
        rc |= arg(o, "", 0) | arg(o, "0", 1) | arg(o, "", 0);
    if (op->dead)
        rc |= dead_fields(o, op->dead);
    else
        rc |= arg(o, "0", 1);
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
