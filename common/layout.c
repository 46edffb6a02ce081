/* Key layouts: see layout.h. */
#include "common/layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/slot.h"

static int set_prefix(struct hq_layout *L, const char *prefix, struct hq_err *err)
{
    memset(L, 0, sizeof(*L));
    size_t n = strlen(prefix);
    if (n == 0 || n > HQ_PREFIX_MAX)
        return hq_err_set(err, HQ_EINVAL, "--prefix: '%.80s' must be 1-%d characters", prefix,
                          HQ_PREFIX_MAX);
    memcpy(L->prefix, prefix, n + 1);
    return 0;
}

static unsigned base_slot(const char *base)
{
    return hq_key_slot(base, strlen(base));
}

int hq_layout_init_untagged(struct hq_layout *L, const char *prefix, struct hq_err *err)
{
    int rc = set_prefix(L, prefix, err);
    if (rc != 0)
        return rc;
    L->nparts = 1;
    L->part = calloc(1, sizeof(*L->part));
    if (!L->part)
        return hq_err_set(err, HQ_ENOMEM, "layout: out of memory");
    snprintf(L->reg, sizeof(L->reg), "%s", prefix);
    snprintf(L->part[0].base, sizeof(L->part[0].base), "%s", prefix);
    L->reg_slot = L->part[0].slot = base_slot(prefix);
    return 0;
}

/* Fills the bases from L->part[i].tag. */
static void tag_bases(struct hq_layout *L)
{
    L->tagged = 1;
    snprintf(L->reg, sizeof(L->reg), "%s:{%s}", L->prefix, HQ_REG_TAG);
    L->reg_slot = base_slot(L->reg);
    for (unsigned i = 0; i < L->nparts; i++) {
        snprintf(L->part[i].base, sizeof(L->part[i].base), "%s:{%s}", L->prefix, L->part[i].tag);
        L->part[i].slot = base_slot(L->part[i].base);
    }
}

int hq_layout_init_tagged(struct hq_layout *L, const char *prefix, unsigned P, struct hq_err *err)
{
    int rc = set_prefix(L, prefix, err);
    if (rc != 0)
        return rc;
    if (P < 1 || P > HQ_PARTITIONS_MAX)
        return hq_err_set(err, HQ_EINVAL, "--partitions: %u is not within 1..%d", P,
                          HQ_PARTITIONS_MAX);
    char(*tags)[HQ_PARTITION_TAG_MAX] = calloc(P, sizeof(*tags));
    L->part = calloc(P, sizeof(*L->part));
    if (!tags || !L->part) {
        free(tags);
        hq_layout_free(L);
        return hq_err_set(err, HQ_ENOMEM, "layout: out of memory");
    }
    rc = hq_partition_tags(P, tags, err);
    if (rc != 0) {
        free(tags);
        hq_layout_free(L);
        return rc;
    }
    L->nparts = P;
    for (unsigned i = 0; i < P; i++)
        memcpy(L->part[i].tag, tags[i], sizeof(tags[i]));
    free(tags);
    tag_bases(L);
    return 0;
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
    if (!s || !*s)
        return -1;
    unsigned long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > max)
            return -1;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* A tag from a config hash: 1..15 bytes of [A-Za-z0-9._-] (never a brace,
 * which would change what a cluster hashes). */
static int valid_tag(const char *s, size_t n)
{
    if (n == 0 || n >= HQ_PARTITION_TAG_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int hq_layout_init_config(struct hq_layout *L, const char *prefix, const char *version,
                          const char *partitions, const char *tags, struct hq_err *err)
{
    int rc = set_prefix(L, prefix, err);
    if (rc != 0)
        return rc;
    unsigned v = 0, P = 0;
    if (parse_uint(version, 1000000, &v) != 0)
        return hq_err_set(err, HQ_EINVAL, "layout: %s:{reg}:config field version is %s", prefix,
                          version ? "not a number" : "missing");
    if (v != HQ_LAYOUT_VERSION)
        return hq_err_set(err, HQ_EINVAL,
                          "layout: %s:{reg}:config has layout version %u; this hookq reads "
                          "version %d (upgrade hookq)",
                          prefix, v, HQ_LAYOUT_VERSION);
    if (parse_uint(partitions, HQ_PARTITIONS_MAX, &P) != 0 || P < 1)
        return hq_err_set(err, HQ_EINVAL, "layout: %s:{reg}:config field partitions must be 1..%d",
                          prefix, HQ_PARTITIONS_MAX);
    if (!tags)
        return hq_err_set(err, HQ_EINVAL, "layout: %s:{reg}:config field tags is missing", prefix);
    L->nparts = P;
    L->part = calloc(P, sizeof(*L->part));
    if (!L->part)
        return hq_err_set(err, HQ_ENOMEM, "layout: out of memory");
    unsigned k = 0;
    const char *p = tags;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (k == P) {
            k++;
            break;
        }
        if (!valid_tag(p, n)) {
            hq_layout_free(L);
            return hq_err_set(err, HQ_EINVAL,
                              "layout: %s:{reg}:config field tags: tag %u is not 1-%d "
                              "characters of A-Z a-z 0-9 . _ -",
                              prefix, k, HQ_PARTITION_TAG_MAX - 1);
        }
        memcpy(L->part[k].tag, p, n);
        L->part[k].tag[n] = '\0';
        k++;
        if (!comma)
            break;
        p = comma + 1;
    }
    if (k != P) {
        unsigned got = k;
        if (got > P) /* count the rest for the message */
            for (got = P + 1; *p; p++)
                got += *p == ',';
        hq_layout_free(L);
        return hq_err_set(err, HQ_EINVAL,
                          "layout: %s:{reg}:config field tags holds %u tags for %u partitions",
                          prefix, got, P);
    }
    tag_bases(L);
    return 0;
}

void hq_layout_free(struct hq_layout *L)
{
    free(L->part);
    L->part = NULL;
    L->nparts = 0;
}

int hq_layout_tags_join(const struct hq_layout *L, char *out, size_t n)
{
    size_t off = 0;
    if (n == 0)
        return -1;
    out[0] = '\0';
    for (unsigned i = 0; i < L->nparts; i++) {
        int w = snprintf(out + off, n - off, "%s%s", i ? "," : "", L->part[i].tag);
        if (w < 0 || (size_t)w >= n - off)
            return -1;
        off += (size_t)w;
    }
    return (int)off;
}

int hq_key_config(const char *prefix, char *out, size_t n)
{
    int w = snprintf(out, n, "%s:{%s}:config", prefix, HQ_REG_TAG);
    return (w < 0 || (size_t)w >= n) ? -1 : w;
}

int hq_layout_entry_fmt(const struct hq_layout *L, unsigned part, const char *entry_id, char *out,
                        size_t n)
{
    int w =
        L->tagged ? snprintf(out, n, "p%u/%s", part, entry_id) : snprintf(out, n, "%s", entry_id);
    return (w < 0 || (size_t)w >= n) ? -1 : w;
}

int hq_layout_entry_parse(const struct hq_layout *L, const char *s, unsigned *part, char *entry_id,
                          size_t n, struct hq_err *err)
{
    const char *slash = strchr(s, '/');
    const char *id = s;
    unsigned p = 0;
    if (slash) {
        char num[12];
        size_t len = (size_t)(slash - s);
        if (len < 2 || len > 11 || s[0] != 'p')
            return hq_err_set(err, HQ_EINVAL,
                              "'%.64s': an entry id is p<partition>/<id> (e.g. p3/1700000000000-0)",
                              s);
        memcpy(num, s + 1, len - 1);
        num[len - 1] = '\0';
        if (parse_uint(num, HQ_PARTITIONS_MAX, &p) != 0)
            return hq_err_set(err, HQ_EINVAL, "'%.64s': '%s' is not a partition number", s, num);
        if (p >= L->nparts)
            return hq_err_set(err, HQ_EINVAL, "'%.64s': no partition %u (this deployment has %u)",
                              s, p, L->nparts);
        id = slash + 1;
    } else if (L->nparts > 1) {
        return hq_err_set(err, HQ_EINVAL,
                          "'%.64s': name the partition too (p<i>/<id>, as hookq prints it): this "
                          "deployment has %u partitions",
                          s, L->nparts);
    }
    size_t idn = strlen(id);
    if (idn == 0 || idn >= n)
        return hq_err_set(err, HQ_EINVAL, "'%.64s': bad entry id", s);
    memcpy(entry_id, id, idn + 1);
    *part = p;
    return 0;
}

int hq_layout_derived_id(const struct hq_layout *L, unsigned part, const char *kind,
                         const char *entry_id, size_t entry_len, char *out, size_t n)
{
    int w = L->tagged ? snprintf(out, n, "%s_p%u_%.*s", kind, part, (int)entry_len, entry_id)
                      : snprintf(out, n, "%s_%.*s", kind, (int)entry_len, entry_id);
    return (w < 0 || (size_t)w >= n) ? -1 : w;
}

unsigned hq_layout_partition_for(const struct hq_layout *L, const char *id, size_t len,
                                 unsigned any)
{
    if (L->nparts <= 1)
        return 0;
    return len > 0 ? hq_partition_of_id(id, len, L->nparts) : any % L->nparts;
}
