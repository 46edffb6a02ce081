/* `hookq scheduler`: options -> hq_scheduler_run(). Owns only the option
 * table, the signal mask and the exit status; the loop is scheduler.c. */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdlib.h>

#include "cli/cmd.h"
#include "common/config.h"
#include "common/limits.h"
#include "scheduler/scheduler.h"

int hq_cmd_scheduler(int argc, char **argv)
{
    struct hq_common_opts common;
    hq_common_opts_init(&common);
    long long interval_ms = HQ_SCHED_INTERVAL_DEFAULT_MS;
    long long batch = HQ_SCHED_BATCH_DEFAULT;
    long long dead_maxlen = 0;
    struct hq_opt opts[] = {
        {"interval", HQ_OPT_DURATION, &interval_ms, "DUR",
         "longest sleep between checks for due retries", 0, 1, HQ_SCHED_INTERVAL_MAX_MS, 0},
        {"batch", HQ_OPT_INT, &batch, "N", "due retries moved per atomic script call", 0, 1,
         HQ_SCHED_BATCH_MAX, 0},
        {"dead-maxlen", HQ_OPT_INT, &dead_maxlen, "N",
         "keep about N dead letters (XADD MAXLEN ~ N); 0 keeps all", 0, 0, 1000000000LL, 0},
        HQ_COMMON_OPTS(&common),
        {0},
    };
    static const struct hq_cmd_help help = {
        "scheduler [options]",
        "Re-enqueues due retries onto their partition's event stream (the worker then\n"
        "dead-letters those whose endpoint was deleted or disabled meanwhile). Run one\n"
        "or more; they share the work safely. Waits while `hookq migrate` runs.\n"
        "SIGTERM/SIGINT finish the current batch and exit 0."};
    int npos;
    char **pos;
    int rc = hq_cli_parse(opts, &help, argv[0], argc, argv, &npos, &pos);
    if (rc >= 0)
        return rc;
    free(pos);
    if (npos > 0)
        return hq_cli_fail(2, argv[0], "takes no arguments (see --help)");
    struct hq_err err = {0};
    if (hq_common_opts_apply(&common, &err) != 0)
        return hq_cli_fail(2, argv[0], err.msg);

    /* Blocked, then waited for with sigtimedwait in the loop: a stop can never
     * slip in between a check and a sleep. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, NULL);

    struct hq_scheduler_config cfg = {
        .redis_url = common.redis_url,
        .prefix = common.prefix,
        .interval_ms = interval_ms,
        .batch = batch,
        .dead_maxlen = dead_maxlen,
        .stop = &stop,
    };
    if (hq_scheduler_run(&cfg, &err) != 0)
        return hq_cli_fail(1, argv[0], err.msg);
    return 0;
}
