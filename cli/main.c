/* The hookq executable: a subcommand table, --help and --version, and the two
 * helpers every subcommand shares (hq_cli_fail, hq_cli_parse, hq_cli_usage);
 * nothing else. Each subcommand is a cmd_*.c beside it (curl's src/tool_*). */
#include <stdio.h>
#include <string.h>

#include "cli/cmd.h"
#include "common/config.h"

struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct subcommand commands[] = {
    {"up", hq_cmd_up, "run a local demo: redis, worker, scheduler, receiver, events"},
    {"worker", hq_cmd_worker, "deliver events from the stream (scale by replicas)"},
    {"scheduler", hq_cmd_scheduler, "re-enqueue due retries, dead-letter exhausted ones"},
    {"produce", hq_cmd_produce, "validate and write one event to the stream"},
    {"endpoint", hq_cmd_endpoint,
     "add, list, show, update, rotate, enable, disable, delete endpoints"},
    {"dlq", hq_cmd_dlq, "list, show, replay, purge the dead-letter stream"},
    {"event", hq_cmd_event, "show every attempt of an event, or re-send it"},
    {"recover", hq_cmd_recover, "re-send an endpoint's dead (or all retained) events of a window"},
    {"api", hq_cmd_api, "serve the HTTP management API (docs/api.md)"},
    {"api-key", hq_cmd_api_key, "create, list, revoke API keys of hookq api"},
    {"migrate", hq_cmd_migrate, "move a single-Redis deployment to P partitions"},
    {"stats", hq_cmd_stats, "stream length, lag, pending, retries, dead letters, endpoints"},
    {"sign", hq_cmd_sign, "print a webhook-signature header value for a body on stdin"},
    {"verify", hq_cmd_verify, "check a webhook-signature header against a body on stdin"},
};

int hq_cli_fail(int status, const char *cmd, const char *msg)
{
    fprintf(stderr, "hookq %s: %s\n", cmd, msg);
    return status;
}

int hq_cli_parse(struct hq_opt *opts, const struct hq_cmd_help *help, const char *cmd, int argc,
                 char **argv, int *npos, char ***pos)
{
    struct hq_err err = {0};
    int rc = hq_config_parse(opts, help, argc, argv, npos, pos, &err);
    if (rc == 1)
        return 0;
    if (rc != 0)
        return hq_cli_fail(2, cmd, err.msg);
    return -1;
}

int hq_cli_usage(int argc, char **argv, void (*usage)(FILE *out))
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    return -1;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: hookq <command> [options]\n\nwebhook delivery over Redis streams\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(*commands); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'hookq <command> --help' describes a command's options; every option\n"
                 "also reads an environment variable (--redis-url <-> HOOKQ_REDIS_URL).\n");
}

int main(int argc, char **argv)
{
    int status = hq_cli_usage(argc, argv, usage);
    if (status >= 0)
        return status;
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("hookq %s\n", HQ_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(*commands); i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "hookq: '%s' is not a command (see hookq --help)\n", argv[1]);
    return 2;
}
