/* Redis stream entry ids ("<ms>-<seq>") as numbers, to compare ids in stream
 * order: used by the worker's fence range and by the dead-letter scans. Pure. */
#ifndef HQ_COMMON_STREAM_ID_H
#define HQ_COMMON_STREAM_ID_H

#define HQ_STREAM_ID_MAX 48 /* "<ms>-<seq>": two 64-bit numbers, a dash, a NUL, with room */

struct hq_sid {
    unsigned long long ms, seq;
};

/* 1 when s is a complete stream id "<ms>-<seq>" (fills out), else 0. */
int hq_sid_parse(const char *s, struct hq_sid *out);
/* <0, 0, >0 as a is before, equal to, after b in stream order. */
int hq_sid_cmp(const struct hq_sid *a, const struct hq_sid *b);
/* Writes "<ms>-<seq>" into out (HQ_STREAM_ID_MAX bytes); returns out. */
char *hq_sid_format(const struct hq_sid *id, char *out, unsigned n);

#endif
