/* Option tables: every option is a flag with an environment twin named after
 * it (--claim-idle <-> HOOKQ_CLAIM_IDLE); flags win over the environment.
 * Command arguments that are not configuration (--name, --json) carry
 * HQ_OPTF_NOENV. Bad values give one line naming the option and the value;
 * commands print it and exit 2.
 *
 *   long long timeout_ms = HQ_TIMEOUT_DEFAULT_MS;
 *   struct hq_opt opts[] = {
 *       {"timeout", HQ_OPT_DURATION, &timeout_ms, "DUR", "total attempt timeout", 0, 1, 3600000},
 *       HQ_COMMON_OPTS(&common),
 *       {0},
 *   };
 */
#ifndef HQ_COMMON_CONFIG_H
#define HQ_COMMON_CONFIG_H

#include <stdio.h>

#include "common/err.h"

enum hq_opt_type {
    HQ_OPT_STR,      /* dst: char ** (points into argv/environ, not copied) */
    HQ_OPT_INT,      /* dst: long long * */
    HQ_OPT_DURATION, /* dst: long long * in ms; "200ms", "15s", "5m", "2h", "7d"; bare "0" only */
    HQ_OPT_SIZE,     /* dst: long long * in bytes; "512", "64k", "1M" */
    HQ_OPT_BOOL,     /* dst: int *; a flag without value; env accepts 1/0/true/false/yes/no */
    HQ_OPT_LIST,     /* dst: struct hq_strlist *; repeatable flag (env: one value) */
    HQ_OPT_DOUBLE,   /* dst: double * */
};

#define HQ_OPTF_NOENV 1u /* no HOOKQ_* twin: a command argument, not configuration */

struct hq_opt {
    const char *name; /* flag without dashes: "claim-idle"; NULL ends a table */
    enum hq_opt_type type;
    void *dst;           /* where the parsed value goes; see the type */
    const char *metavar; /* for --help: "DUR", "URL"; NULL for bools */
    const char *help;    /* one line */
    unsigned flags;      /* HQ_OPTF_* */
    long long min, max;  /* inclusive bounds for INT/DURATION/SIZE; both 0 = unbounded */
    int given;           /* [out] set to 1 when the flag or env var supplied a value */
};

struct hq_strlist {
    const char **v; /* borrowed strings (argv/environ); array owned, free with hq_strlist_free */
    int n;
};
void hq_strlist_free(struct hq_strlist *l);

/* Options every subcommand that talks to Redis takes. */
struct hq_common_opts {
    const char *redis_url;  /* --redis-url, default redis://127.0.0.1:6379/0 */
    const char *prefix;     /* --prefix, default "hookq" */
    const char *log_level;  /* --log-level: debug|info|warn|error */
    const char *log_format; /* --log-format: logfmt|json */
};
void hq_common_opts_init(struct hq_common_opts *c);
/* Validates the prefix and the log settings and applies the log settings. */
int hq_common_opts_apply(const struct hq_common_opts *c, struct hq_err *err) HQ_MUST_CHECK;

#define HQ_COMMON_OPTS(c)                                                                          \
    {"redis-url",                                                                                  \
     HQ_OPT_STR,                                                                                   \
     &(c)->redis_url,                                                                              \
     "URL",                                                                                        \
     "redis://[:password@]host:port/db or unix:///path.sock",                                      \
     0,                                                                                            \
     0,                                                                                            \
     0,                                                                                            \
     0},                                                                                           \
        {"prefix", HQ_OPT_STR, &(c)->prefix, "P", "key prefix: every key starts with P:", 0, 0,    \
         0,        0},                                                                             \
        {"log-level", HQ_OPT_STR, &(c)->log_level, "LEVEL", "debug|info|warn|error", 0, 0, 0, 0},  \
    {                                                                                              \
        "log-format", HQ_OPT_STR, &(c)->log_format, "FMT", "logfmt|json", 0, 0, 0, 0               \
    }

/* Command help: the usage line after "hookq " and a one-paragraph summary. */
struct hq_cmd_help {
    const char *usage;   /* "endpoint add --name N --url U [options]" */
    const char *summary; /* what the command does, for whom */
};

/* Parses the environment, then argv[1..argc-1] (argv[0] is the subcommand name).
 * Positional arguments are returned in *pos (array allocated, strings borrowed;
 * free(*pos)); *npos their count. Returns 0, 1 when --help was asked (usage
 * already printed to stdout; *pos is NULL), or HQ_EINVAL with err naming the option. */
int hq_config_parse(struct hq_opt *opts, const struct hq_cmd_help *help, int argc, char **argv,
                    int *npos, char ***pos, struct hq_err *err) HQ_MUST_CHECK;

/* Prints "usage: hookq <usage>\n\n<summary>\n\noptions:\n  --flag METAVAR  help [env HOOKQ_FLAG]".
 */
void hq_config_usage(FILE *out, const struct hq_opt *opts, const char *usage, const char *summary);

/* Value parsers (pure; used by the table and by tests). 0 or HQ_EINVAL. */
int hq_parse_duration_ms(const char *s, long long *out);
int hq_parse_size(const char *s, long long *out);
int hq_parse_int(const char *s, long long *out);
int hq_parse_bool(const char *s, int *out);

/* "HOOKQ_" + upper(name with '-' -> '_') into out (size n). */
void hq_config_env_name(const char *name, char *out, size_t n);

#endif
