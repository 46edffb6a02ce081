/* Subcommand entry points. Each takes argv with argv[0] = the subcommand name
 * and returns the process exit status: 0 ok, 1 a negative answer or a runtime
 * failure (Redis unreachable, verify mismatch), 2 bad usage or configuration. */
#ifndef HQ_CLI_CMD_H
#define HQ_CLI_CMD_H

#include <stdio.h>

int hq_cmd_produce(int argc, char **argv);   /* cli/cmd_produce.c */
int hq_cmd_sign(int argc, char **argv);      /* cli/cmd_sign.c */
int hq_cmd_verify(int argc, char **argv);    /* cli/cmd_sign.c */
int hq_cmd_endpoint(int argc, char **argv);  /* cli/cmd_endpoint.c */
int hq_cmd_stats(int argc, char **argv);     /* cli/cmd_stats.c */
int hq_cmd_worker(int argc, char **argv);    /* cli/cmd_worker.c */
int hq_cmd_scheduler(int argc, char **argv); /* cli/cmd_scheduler.c */
int hq_cmd_dlq(int argc, char **argv);       /* cli/cmd_dlq.c */
int hq_cmd_event(int argc, char **argv);     /* cli/cmd_event.c */
int hq_cmd_up(int argc, char **argv);        /* cli/cmd_up.c */
int hq_cmd_migrate(int argc, char **argv);   /* cli/cmd_migrate.c */
int hq_cmd_api(int argc, char **argv);       /* cli/cmd_api.c */
int hq_cmd_api_key(int argc, char **argv);   /* cli/cmd_api.c */
int hq_cmd_recover(int argc, char **argv);   /* cli/cmd_recover.c */
/* `event resend`: argv[0] = "resend" (cli/cmd_recover.c). */
int hq_cmd_event_resend(int argc, char **argv);

/* Prints "hookq <cmd>: <msg>" on stderr and returns 'status' (for `return fail(...)`). */
int hq_cli_fail(int status, const char *cmd, const char *msg);

struct hq_opt;
struct hq_cmd_help;
/* hq_config_parse for a command: returns -1 to go on (positional arguments in
 * *pos, free(*pos)), 0 after --help (usage printed, *pos NULL), or 2 after
 * printing "hookq <cmd>: <what is wrong>" (*pos NULL). */
int hq_cli_parse(struct hq_opt *opts, const struct hq_cmd_help *help, const char *cmd, int argc,
                 char **argv, int *npos, char ***pos);

/* For a command with subcommands (argv[1]): prints usage to stderr and returns
 * 2 when there is none, to stdout and returns 0 for "--help", "-h" or "help";
 * else returns -1 to go on. */
int hq_cli_usage(int argc, char **argv, void (*usage)(FILE *out));

struct hq_common_opts;
struct hq_redis_conn;
struct hq_layout;
/* cli/connect.c: opens the deployment named by the common options (--redis-url,
 * --prefix) and reads its layout into *L (common/layout_store.h). Returns 0, or
 * prints "hookq <cmd>: <why>" and returns 1 (nothing to free). */
int hq_cli_connect(const char *cmd, const struct hq_common_opts *common,
                   struct hq_redis_conn **conn, struct hq_layout *L);
/* Frees what hq_cli_connect gave (either may be NULL). */
void hq_cli_disconnect(struct hq_redis_conn *conn, struct hq_layout *L);

#endif
