/* Connecting a command to its deployment: the Redis (single, sentinel or
 * cluster) and the layout of its keys, read once at the start. */
#include <stdio.h>

#include "cli/cmd.h"
#include "common/config.h"
#include "common/layout_store.h"
#include "common/limits.h"

int hq_cli_connect(const char *cmd, const struct hq_common_opts *common,
                   struct hq_redis_conn **conn, struct hq_layout *L)
{
    struct hq_err err = {0};
    *conn = hq_redis_conn_open(common->redis_url, HQ_REDIS_CONNECT_TIMEOUT_MS, &err);
    if (!*conn)
        return hq_cli_fail(1, cmd, err.msg);
    if (hq_layout_load(*conn, common->prefix, L, &err) != 0) {
        hq_redis_conn_free(*conn);
        *conn = NULL;
        return hq_cli_fail(1, cmd, err.msg);
    }
    if (L->migrating) {
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "a migration to %u partitions is in progress (hookq migrate); try again when "
                 "it ends",
                 L->nparts);
        hq_cli_disconnect(*conn, L);
        *conn = NULL;
        return hq_cli_fail(1, cmd, msg);
    }
    return 0;
}

void hq_cli_disconnect(struct hq_redis_conn *conn, struct hq_layout *L)
{
    hq_redis_conn_free(conn);
    if (L)
        hq_layout_free(L);
}
