/* Option-table parsing. See config.h. */
#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"

void hq_strlist_free(struct hq_strlist *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

void hq_common_opts_init(struct hq_common_opts *c)
{
    c->redis_url = "redis://127.0.0.1:6379/0";
    c->prefix = "hookq";
    c->log_level = "info";
    c->log_format = "logfmt";
}

int hq_common_opts_apply(const struct hq_common_opts *c, struct hq_err *err)
{
    size_t n = strlen(c->prefix);
    if (n == 0 || n > 64)
        return hq_err_set(err, HQ_EINVAL, "--prefix: '%s' must be 1-64 characters", c->prefix);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)c->prefix[i];
        if (!isalnum(ch) && ch != '_' && ch != '-' && ch != '.' && ch != ':')
            return hq_err_set(
                err, HQ_EINVAL,
                "--prefix: '%s' may hold only letters, digits and _ - . :", c->prefix);
    }
    enum hq_log_level lv;
    enum hq_log_format lf;
    if (hq_log_parse_level(c->log_level, &lv) != 0)
        return hq_err_set(err, HQ_EINVAL, "--log-level: '%s' is not debug, info, warn or error",
                          c->log_level);
    if (hq_log_parse_format(c->log_format, &lf) != 0)
        return hq_err_set(err, HQ_EINVAL, "--log-format: '%s' is not logfmt or json",
                          c->log_format);
    hq_log_setup(lv, lf);
    return 0;
}

void hq_config_env_name(const char *name, char *out, size_t n)
{
    size_t i = 0;
    const char *pre = "HOOKQ_";
    for (; *pre && i + 1 < n; pre++)
        out[i++] = *pre;
    for (; *name && i + 1 < n; name++)
        out[i++] = *name == '-' ? '_' : (char)toupper((unsigned char)*name);
    out[i] = '\0';
}

int hq_parse_int(const char *s, long long *out)
{
    if (!*s)
        return HQ_EINVAL;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || isspace((unsigned char)*s))
        return HQ_EINVAL;
    *out = v;
    return 0;
}

/* Parses "<digits><unit>" where unit is looked up in units[]; no unit allowed
 * only when bare_ok (or the value is 0). Overflow is an error, not a wrap. */
struct unit {
    const char *suffix;
    long long mult;
};

static int parse_scaled(const char *s, const struct unit *units, int bare_ok, long long *out)
{
    const char *p = s;
    if (!isdigit((unsigned char)*p))
        return HQ_EINVAL;
    unsigned long long v = 0;
    while (isdigit((unsigned char)*p)) {
        if (v > (unsigned long long)LLONG_MAX / 10)
            return HQ_EINVAL;
        v = v * 10 + (unsigned)(*p - '0');
        p++;
    }
    if (v > (unsigned long long)LLONG_MAX)
        return HQ_EINVAL;
    if (!*p) {
        if (!bare_ok && v != 0)
            return HQ_EINVAL;
        *out = (long long)v;
        return 0;
    }
    for (const struct unit *u = units; u->suffix; u++) {
        if (strcmp(p, u->suffix) == 0) {
            if (v > (unsigned long long)(LLONG_MAX / u->mult))
                return HQ_EINVAL;
            *out = (long long)v * u->mult;
            return 0;
        }
    }
    return HQ_EINVAL;
}

int hq_parse_duration_ms(const char *s, long long *out)
{
    static const struct unit units[] = {{"ms", 1},        {"s", 1000},       {"m", 60000},
                                        {"h", 3600000LL}, {"d", 86400000LL}, {NULL, 0}};
    return parse_scaled(s, units, 0, out);
}

int hq_parse_size(const char *s, long long *out)
{
    static const struct unit units[] = {{"k", 1024},    {"K", 1024},       {"M", 1048576},
                                        {"m", 1048576}, {"G", 1073741824}, {NULL, 0}};
    return parse_scaled(s, units, 1, out);
}

int hq_parse_bool(const char *s, int *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"};
    static const char *no[] = {"0", "false", "no", "off", ""};
    for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++) {
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return HQ_EINVAL;
}

static const char *type_hint(enum hq_opt_type t)
{
    switch (t) {
    case HQ_OPT_INT: return "is not a whole number";
    case HQ_OPT_DURATION:
        return "is not a duration (a number with ms, s, m, h or d: 200ms, 15s, 7d)";
    case HQ_OPT_SIZE: return "is not a size (bytes, or a number with k or M: 64k, 1M)";
    case HQ_OPT_BOOL: return "is not a boolean (1/0, true/false, yes/no)";
    case HQ_OPT_DOUBLE: return "is not a number";
    default: return "is not valid";
    }
}

/* Stores one value into o; 'src' names where it came from for the message
 * ("--timeout" or "HOOKQ_TIMEOUT"). */
static int set_value(struct hq_opt *o, const char *v, const char *src, struct hq_err *err)
{
    int rc = 0;
    long long n = 0;
    switch (o->type) {
    case HQ_OPT_STR: *(const char **)o->dst = v; break;
    case HQ_OPT_LIST: {
        struct hq_strlist *l = o->dst;
        l->v = hq_realloc(l->v, sizeof(*l->v) * (size_t)(l->n + 1));
        l->v[l->n++] = v;
        break;
    }
    case HQ_OPT_BOOL: rc = hq_parse_bool(v, (int *)o->dst); break;
    case HQ_OPT_DOUBLE: {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (errno || end == v || *end)
            rc = HQ_EINVAL;
        else
            *(double *)o->dst = d;
        break;
    }
    case HQ_OPT_INT:
    case HQ_OPT_DURATION:
    case HQ_OPT_SIZE:
        rc = o->type == HQ_OPT_INT        ? hq_parse_int(v, &n)
             : o->type == HQ_OPT_DURATION ? hq_parse_duration_ms(v, &n)
                                          : hq_parse_size(v, &n);
        if (rc == 0 && (o->min || o->max) && (n < o->min || n > o->max)) {
            if (o->type == HQ_OPT_INT)
                return hq_err_set(err, HQ_EINVAL, "%s: '%s' is out of range (%lld to %lld)", src, v,
                                  o->min, o->max);
            return hq_err_set(err, HQ_EINVAL, "%s: '%s' is out of range (%lld%s to %lld%s)", src, v,
                              o->min, o->type == HQ_OPT_DURATION ? "ms" : " bytes", o->max,
                              o->type == HQ_OPT_DURATION ? "ms" : " bytes");
        }
        if (rc == 0)
            *(long long *)o->dst = n;
        break;
    }
    if (rc != 0)
        return hq_err_set(err, HQ_EINVAL, "%s: '%s' %s", src, v, type_hint(o->type));
    o->given = 1;
    return 0;
}

static struct hq_opt *find(struct hq_opt *opts, const char *name, size_t n)
{
    for (struct hq_opt *o = opts; o->name; o++) {
        if (strlen(o->name) == n && strncmp(o->name, name, n) == 0)
            return o;
    }
    return NULL;
}

int hq_config_parse(struct hq_opt *opts, const struct hq_cmd_help *help, int argc, char **argv,
                    int *npos, char ***pos, struct hq_err *err)
{
    *npos = 0;
    *pos = hq_calloc((size_t)argc + 1, sizeof(char *));

    /* Environment first: flags given later overwrite what it set. */
    for (struct hq_opt *o = opts; o->name; o++) {
        if (o->flags & HQ_OPTF_NOENV)
            continue;
        char env[96];
        hq_config_env_name(o->name, env, sizeof(env));
        const char *v = getenv(env);
        if (v && set_value(o, v, env, err) != 0)
            goto fail;
        if (v && o->type == HQ_OPT_LIST)
            o->given = 1;
    }

    int only_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            (*pos)[(*npos)++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            hq_config_usage(stdout, opts, help->usage, help->summary);
            free(*pos);
            *pos = NULL;
            return 1;
        }
        if (a[1] != '-') {
            hq_err_set(err, HQ_EINVAL, "%s: unknown option (options are spelled --name)", a);
            goto fail;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        struct hq_opt *o = find(opts, name, nlen);
        if (!o) {
            hq_err_set(err, HQ_EINVAL, "--%.*s: unknown option (see --help)", (int)nlen, name);
            goto fail;
        }
        char src[80];
        snprintf(src, sizeof(src), "--%s", o->name);
        if (o->type == HQ_OPT_BOOL && !eq) {
            *(int *)o->dst = 1;
            o->given = 1;
            continue;
        }
        const char *v;
        if (eq) {
            v = eq + 1;
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            hq_err_set(err, HQ_EINVAL, "%s: needs a value (%s)", src, o->metavar ? o->metavar : "");
            goto fail;
        }
        /* The first flag of a list replaces what the environment put there. */
        if (o->type == HQ_OPT_LIST && o->given == 1) {
            struct hq_strlist *l = o->dst;
            l->n = 0;
            o->given = 2;
        }
        if (set_value(o, v, src, err) != 0)
            goto fail;
        if (o->type == HQ_OPT_LIST)
            o->given = 2;
    }
    return 0;
fail:
    free(*pos);
    *pos = NULL;
    *npos = 0;
    return HQ_EINVAL;
}

void hq_config_usage(FILE *out, const struct hq_opt *opts, const char *usage, const char *summary)
{
    fprintf(out, "usage: hookq %s\n", usage);
    if (summary && *summary)
        fprintf(out, "\n%s\n", summary);
    fprintf(out, "\noptions:\n");
    for (const struct hq_opt *o = opts; o->name; o++) {
        char flag[96];
        snprintf(flag, sizeof(flag), "--%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        /* Two spaces at least between a long flag and its help (tools split on them). */
        fprintf(out, "  %-26s%s%s", flag, strlen(flag) >= 26 ? "  " : " ", o->help);
        if (!(o->flags & HQ_OPTF_NOENV)) {
            char env[96];
            hq_config_env_name(o->name, env, sizeof(env));
            fprintf(out, " [env %s]", env);
        }
        fputc('\n', out);
    }
    fprintf(out, "  %-26s %s\n", "--help", "show this help");
}
