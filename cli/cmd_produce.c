/* `hookq produce`: validate one event and write it to its partition's stream
 * (<prefix>:events with one untagged partition; docs/wire-format.md) through
 * libhookq, printing the stream entry id; --durable waits for a replica. Owns the command's options
 * and reading the payload (--data JSON, --data @file, stdin); the wire format and the write belong
 * to libhookq (producer/producer.c).
 *
 * An --id a worker claimed within the dedupe window (idempotent events) is
 * reported on stderr ("duplicate: id X already produced ...", --json adds
 * "duplicate":true): the entry is written and the workers acknowledge it
 * without delivering it; exit 0.
 *
 * Exit status: 0 written (a duplicate too); 2 bad usage or input (nothing written); 1 Redis
 * unreachable or refusing the write, or (--durable) no replica acknowledged
 * it in time. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/event.h"
#include "common/limits.h"
#include "common/redis_url.h"
#include "hookq/hookq.h"

/* Reads at most max + 1 bytes of fd (one more than allowed, so "too big" is
 * detected without reading an unbounded stream). [out] buf (caller frees), len. */
static int read_bounded(int fd, size_t max, char **buf, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *p = hq_malloc(cap);
    for (;;) {
        if (n == cap) {
            if (cap > max)
                break;
            cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            p = hq_realloc(p, cap);
        }
        ssize_t r = read(fd, p + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(p);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *buf = p;
    *len = n;
    return 0;
}

/* Loads the payload named by --data. Returns 0, or 2 after printing why. */
static int load_payload(const char *data, size_t max, char **buf, size_t *len)
{
    char msg[512];
    struct hq_err err = {0};
    if (data && strcmp(data, "-") != 0 && data[0] != '@') {
        *len = strlen(data);
        *buf = hq_strdup(data);
    } else {
        const char *what = "stdin";
        int fd = 0;
        if (data && data[0] == '@') {
            what = data + 1;
            fd = open(what, O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                snprintf(msg, sizeof(msg), "--data: cannot read '%.200s': %s", what,
                         strerror(errno));
                return hq_cli_fail(2, "produce", msg);
            }
            struct stat st;
            if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
                hq_event_check_payload((size_t)st.st_size, max, &err) != 0) {
                close(fd);
                return hq_cli_fail(2, "produce", err.msg);
            }
        } else if (!data && isatty(0)) {
            return hq_cli_fail(
                2, "produce",
                "--data: missing (give --data JSON, --data @file, or pipe the payload on stdin)");
        }
        int rc = read_bounded(fd, max, buf, len);
        int saved = errno;
        if (fd != 0)
            close(fd);
        if (rc != 0) {
            snprintf(msg, sizeof(msg), "--data: cannot read '%.200s': %s", what, strerror(saved));
            return hq_cli_fail(2, "produce", msg);
        }
        if (*len > max) {
            free(*buf);
            *buf = NULL;
            snprintf(msg, sizeof(msg), "payload: %.200s has more than %zu bytes, max %zu", what,
                     max, max);
            return hq_cli_fail(2, "produce", msg);
        }
    }
    if (hq_event_check_payload(*len, max, &err) != 0) {
        free(*buf);
        *buf = NULL;
        return hq_cli_fail(2, "produce", err.msg);
    }
    return 0;
}

/* Checks the event's fields; returns 0 or 2 after printing why. */
static int check_fields(const char *type, const char *id, const char *endpoint, const char *tenant,
                        const char *key)
{
    struct hq_err err = {0};
    if (!type)
        return hq_cli_fail(2, "produce", "--type: missing (the event type is required)");
    if (hq_event_check_produced_type(type, strlen(type), &err) != 0 ||
        (id && hq_event_check_id(id, strlen(id), &err) != 0) ||
        (endpoint && hq_event_check_endpoint(endpoint, strlen(endpoint), &err) != 0) ||
        (tenant && hq_event_check_tenant(tenant, strlen(tenant), &err) != 0) ||
        (key && hq_event_check_key(key, strlen(key), &err) != 0))
        return hq_cli_fail(2, "produce", err.msg);
    return 0;
}

int hq_cmd_produce(int argc, char **argv)
{
    const char *type = NULL, *id = NULL, *endpoint = NULL, *data = NULL, *tenant = NULL,
               *key = NULL;
    long long max_payload = HQ_PAYLOAD_MAX_DEFAULT;
    int json = 0, durable = 0;
    long long durable_ms = 1000;
    struct hq_common_opts common;
    hq_common_opts_init(&common);
    struct hq_opt opts[] = {
        {"type", HQ_OPT_STR, &type, "T", "event type (required): 1-128 of [A-Za-z0-9_.:-]",
         HQ_OPTF_NOENV, 0, 0, 0},
        {"id", HQ_OPT_STR, &id, "ID",
         "event id, sent as webhook-id: 1-128 of [A-Za-z0-9_:-] (default: derived)", HQ_OPTF_NOENV,
         0, 0, 0},
        {"endpoint", HQ_OPT_STR, &endpoint, "EP",
         "deliver only to this endpoint id (default: every subscriber)", HQ_OPTF_NOENV, 0, 0, 0},
        {"tenant", HQ_OPT_STR, &tenant, "T",
         "deliver only to this tenant's endpoints: 1-64 of [A-Za-z0-9_.:-]", HQ_OPTF_NOENV, 0, 0,
         0},
        {"key", HQ_OPT_STR, &key, "K",
         "ordering key: an ordered endpoint keeps each key's events in order, 1-128 of "
         "[A-Za-z0-9_.:-]",
         HQ_OPTF_NOENV, 0, 0, 0},
        {"data", HQ_OPT_STR, &data, "JSON|@FILE|-",
         "the payload, sent byte-exact (default: read stdin)", HQ_OPTF_NOENV, 0, 0, 0},
        {"max-payload", HQ_OPT_SIZE, &max_payload, "SIZE",
         "payload bound, must match the workers' (default 1M, max 64M)", 0, 1, HQ_PAYLOAD_MAX_LIMIT,
         0},
        {"json", HQ_OPT_BOOL, &json, NULL, "print {\"entry_id\":...,\"event_id\":...}",
         HQ_OPTF_NOENV, 0, 0, 0},
        {"durable", HQ_OPT_BOOL, &durable, NULL,
         "succeed only once a replica has the event (WAIT 1), else exit 1", HQ_OPTF_NOENV, 0, 0, 0},
        {"durable-timeout", HQ_OPT_DURATION, &durable_ms, "DUR",
         "how long --durable waits for a replica (default 1s)", HQ_OPTF_NOENV, 1, 600000, 0},
        HQ_COMMON_OPTS(&common),
        {0},
    };
    static const struct hq_cmd_help help = {
        "produce --type T [--id ID] [--endpoint EP] [--tenant T] [--key K] [--data JSON|@FILE|-] [options]",
        "Validates one event and writes it in the msgpack form to the stream of its partition\n"
        "(<prefix>:events on a single Redis; with P partitions CRC16(id) mod P, or any one\n"
        "without --id: docs/wire-format.md), then prints the stream entry id (p<i>/<id> with\n"
        "several partitions). Nothing is written when the event is invalid. Waits up to 30 s\n"
        "while `hookq migrate` runs. An --id already delivered within the workers' dedupe\n"
        "window is reported on stderr (\"duplicate: id X already produced\"); exit 0."};

    int npos = 0;
    char **pos = NULL;
    int rc = hq_cli_parse(opts, &help, "produce", argc, argv, &npos, &pos);
    if (rc >= 0)
        return rc;
    struct hq_err err = {0};
    if (npos > 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "unexpected argument '%.200s' (see --help)", pos[0]);
        free(pos);
        return hq_cli_fail(2, "produce", msg);
    }
    free(pos);
    if (hq_common_opts_apply(&common, &err) != 0)
        return hq_cli_fail(2, "produce", err.msg);
    rc = check_fields(type, id, endpoint, tenant, key);
    if (rc != 0)
        return rc;
    struct hq_redis_url url;
    if (hq_redis_url_parse(common.redis_url, &url, &err) != 0)
        return hq_cli_fail(2, "produce", err.msg);

    char *payload = NULL;
    size_t payload_len = 0;
    rc = load_payload(data, (size_t)max_payload, &payload, &payload_len);
    if (rc != 0)
        return rc;

    char msg[256];
    struct hookq_producer *p = NULL;
    rc = hookq_producer_connect(common.redis_url, common.prefix, &p, msg, sizeof(msg));
    if (rc != 0) {
        free(payload);
        return hq_cli_fail(rc == HOOKQ_EINVAL ? 2 : 1, "produce", msg);
    }
    hookq_producer_set_max_payload(p, (size_t)max_payload);
    if (durable)
        hookq_producer_set_durable(p, (int)durable_ms);
    hookq_producer_set_report_duplicates(p, 1);
    struct hookq_event ev = {.type = type,
                             .payload = payload,
                             .payload_len = payload_len,
                             .id = id,
                             .endpoint = endpoint,
                             .tenant = tenant,
                             .key = key};
    char entry_id[64];
    rc = hookq_produce(p, &ev, entry_id, sizeof(entry_id), msg, sizeof(msg));
    hookq_producer_free(p);
    free(payload);
    /* Not durable: the event was written (to the primary only) and its id is
     * printed, but the command fails. */
    int durable_failed = rc == HOOKQ_ETIMEDOUT && durable;
    /* A duplicate is written and succeeds (exit 0): stderr says so. */
    int duplicate = rc == HOOKQ_DUPLICATE;
    if (duplicate)
        fprintf(stderr, "hookq produce: %s\n", msg);
    if (rc != 0 && !durable_failed && !duplicate)
        return hq_cli_fail(rc == HOOKQ_EINVAL ? 2 : 1, "produce", msg);
    if (durable_failed)
        hq_cli_fail(1, "produce", msg);

    if (!json) {
        printf("%s\n", entry_id);
        return durable_failed ? 1 : 0;
    }
    struct hq_buf out;
    hq_buf_init(&out, 1024);
    int brc = hq_buf_printf(&out, "{\"entry_id\":\"%s\"", entry_id);
    if (brc == 0 && id) {
        brc = hq_buf_printf(&out, ",\"event_id\":");
        if (brc == 0)
            brc = hq_buf_json_str(&out, id, strlen(id));
    }
    if (brc == 0 && duplicate)
        brc = hq_buf_printf(&out, ",\"duplicate\":true");
    if (brc == 0)
        brc = hq_buf_append(&out, "}", 1);
    if (brc == 0)
        printf("%s\n", out.p);
    hq_buf_free(&out);
    return brc == 0 && !durable_failed ? 0 : 1;
}
