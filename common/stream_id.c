/* Stream id parsing and ordering. See stream_id.h. */
#include "common/stream_id.h"

#include <stdio.h>
#include <stdlib.h>

int hq_sid_parse(const char *s, struct hq_sid *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return 0;
    out->ms = strtoull(s, &end, 10);
    if (*end != '-' || end[1] < '0' || end[1] > '9')
        return 0;
    out->seq = strtoull(end + 1, &end, 10);
    return *end == '\0';
}

int hq_sid_cmp(const struct hq_sid *a, const struct hq_sid *b)
{
    if (a->ms != b->ms)
        return a->ms < b->ms ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

char *hq_sid_format(const struct hq_sid *id, char *out, unsigned n)
{
    snprintf(out, n, "%llu-%llu", id->ms, id->seq);
    return out;
}
