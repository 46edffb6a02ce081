/* Sentinel deployment for tests. See sentinel_env.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/sentinel_env.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define READY_WAIT_MS 20000

static redisContext *connect_short(int port)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c)
        return NULL;
    if (c->err) {
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

static int sentinel_answers(void *arg)
{
    struct hq_test_sentinel *s = arg;
    redisContext *c = connect_short(s->port);
    if (!c)
        return 0;
    redisReply *r = redisCommand(c, "PING");
    int ok = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return ok;
}

void hq_test_sentinel_start(struct hq_test_sentinel *s, const char *monitors)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "/tmp/hq-test-sentinel-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    s->port = hq_test_free_port();
    char conf[320];
    snprintf(conf, sizeof(conf), "%s/sentinel.conf", s->dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f,
            "port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\nlogfile %s/sentinel.log\n"
            "loglevel notice\n%s",
            s->port, s->dir, s->dir, monitors);
    fclose(f);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Dies with the test binary, as every harness child does. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("redis-server", "redis-server", conf, "--sentinel", (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    if (!hq_test_wait(sentinel_answers, s, 10000))
        fail_msg("sentinel on port %d did not answer within 10 s", s->port);
}

void hq_test_sentinel_stop(struct hq_test_sentinel *s)
{
    if (s->pid > 0) {
        hq_test_kill_wait(s->pid, SIGKILL, 10000);
        s->pid = 0;
    }
    if (s->dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "sentinel_env: could not remove %s\n", s->dir);
        s->dir[0] = '\0';
    }
}

int hq_test_sentinel_master_port(const struct hq_test_sentinel *s, const char *name)
{
    redisContext *c = connect_short(s->port);
    if (!c)
        return 0;
    redisReply *r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", name);
    int port = 0;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_STRING)
        port = atoi(r->element[1]->str);
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return port;
}

void hq_test_role_of(int port, char *out, size_t n)
{
    out[0] = '\0';
    redisContext *c = connect_short(port);
    if (!c)
        return;
    redisReply *r = redisCommand(c, "ROLE");
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
        r->element[0]->type == REDIS_REPLY_STRING)
        snprintf(out, n, "%s", r->element[0]->str);
    if (r)
        freeReplyObject(r);
    redisFree(c);
}

/* Every sentinel knows one replica that is not down and two other sentinels:
 * only then can a failover be agreed and carried out. */
static int env_ready(void *arg)
{
    struct hq_test_sentinel_env *e = arg;
    for (int i = 0; i < HQ_TEST_SENTINELS; i++) {
        redisContext *c = connect_short(e->sent[i].port);
        if (!c)
            return 0;
        int ok = 0;
        redisReply *r = redisCommand(c, "SENTINEL replicas m");
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
            const redisReply *kv = r->element[0];
            for (size_t k = 0; k + 1 < kv->elements; k += 2)
                if (strcmp(kv->element[k]->str, "flags") == 0 &&
                    strcmp(kv->element[k + 1]->str, "slave") == 0)
                    ok = 1;
        }
        if (r)
            freeReplyObject(r);
        if (ok) {
            r = redisCommand(c, "SENTINEL sentinels m");
            ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == HQ_TEST_SENTINELS - 1;
            if (r)
                freeReplyObject(r);
        }
        redisFree(c);
        if (!ok)
            return 0;
    }
    return 1;
}

static int replica_linked(void *arg)
{
    struct hq_test_redis *replica = arg;
    redisContext *c = connect_short(replica->port);
    if (!c)
        return 0;
    redisReply *r = redisCommand(c, "ROLE");
    /* ROLE of a replica: slave, host, port, state, offset. */
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements >= 4 &&
             strcmp(r->element[3]->str, "connected") == 0;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return ok;
}

void hq_test_sentinel_env_start(struct hq_test_sentinel_env *e, const char *primary_extra)
{
    memset(e, 0, sizeof(*e));
    hq_test_redis_start(&e->primary, primary_extra);
    char extra[128];
    snprintf(extra, sizeof(extra), "--replicaof 127.0.0.1 %d", e->primary.port);
    hq_test_redis_start(&e->replica, extra);
    if (!hq_test_wait(replica_linked, &e->replica, READY_WAIT_MS))
        fail_msg("replica on port %d not linked to the primary", e->replica.port);
    char monitors[256];
    snprintf(monitors, sizeof(monitors),
             "sentinel monitor m 127.0.0.1 %d 2\nsentinel down-after-milliseconds m 1000\n"
             "sentinel failover-timeout m 5000\n",
             e->primary.port);
    for (int i = 0; i < HQ_TEST_SENTINELS; i++)
        hq_test_sentinel_start(&e->sent[i], monitors);
    if (!hq_test_wait(env_ready, e, READY_WAIT_MS))
        fail_msg("sentinels did not learn the replica and each other within %d ms", READY_WAIT_MS);
    snprintf(e->url, sizeof(e->url), "redis-sentinel://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d/m/0",
             e->sent[0].port, e->sent[1].port, e->sent[2].port);
}

void hq_test_sentinel_env_destroy(struct hq_test_sentinel_env *e)
{
    for (int i = 0; i < HQ_TEST_SENTINELS; i++)
        hq_test_sentinel_stop(&e->sent[i]);
    /* A SIGSTOPped server would not act on SIGTERM. */
    if (e->primary.pid > 0)
        kill(e->primary.pid, SIGCONT);
    if (e->replica.pid > 0)
        kill(e->replica.pid, SIGCONT);
    hq_test_redis_destroy(&e->primary);
    hq_test_redis_destroy(&e->replica);
}
