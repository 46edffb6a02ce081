/* See tests/harness/fault_env.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/fault_env.h"

void rf_start(struct rf *r, const char *redis_extra)
{
    memset(r, 0, sizeof(*r));
    wenv_start(&r->w, redis_extra);
    snprintf(r->slog, sizeof(r->slog), "%s/scheduler.log", r->w.dir);
    hq_ck_init(&r->ck, "hookq");
    r->ck.tl = &r->w.tl; /* the checker produces and reads through the fixture's layout */
    r->ack_ms = calloc(RF_EVENTS_MAX, sizeof(int64_t));
    assert_non_null(r->ack_ms);
}

int rf_setup(void **state)
{
    rf_start(*state, NULL);
    return 0;
}

int rf_teardown(void **state)
{
    rf_stop(*state);
    return 0;
}

void rf_start_rcv2(struct rf *r, int flaky_pct)
{
    hq_test_receiver_start(&r->rcv2);
    r->rcv2.flaky_pct = flaky_pct;
    r->rcv2_started = 1;
}

void rf_free_endpoints(struct rf *r)
{
    for (int i = 0; i < r->neps; i++)
        hq_endpoint_free(&r->eps[i]);
    r->neps = 0;
}

void rf_stop(struct rf *r)
{
    wenv_kill_leftovers(&r->w);
    const char *keep = getenv("HQ_FAULTS_KEEP_LOGS"); /* a directory to copy the logs into */
    if (keep) {
        char cmd[1024];
        snprintf(
            cmd, sizeof(cmd),
            "cat '%s' >> '%s/worker.log' 2>/dev/null; cat '%s' >> '%s/scheduler.log' 2>/dev/null; true",
            r->w.log, keep, r->slog, keep);
        if (system(cmd) != 0)
            fprintf(stderr, "could not keep the logs in %s\n", keep);
    }
    hq_ck_free(&r->ck);
    rf_free_endpoints(r);
    if (r->rcv2_started)
        hq_test_receiver_stop(&r->rcv2);
    free(r->ack_ms);
    wenv_stop(&r->w);
}

int rf_endpoint_filtered(struct rf *r, struct hq_test_receiver *rcv, const char *path,
                         const char *filters, int max_attempts)
{
    assert_true(r->neps < RF_EPS_MAX);
    char url[256];
    snprintf(url, sizeof(url), "%s%s", rcv->url, path);
    wenv_endpoint(&r->w, url, filters, NULL, max_attempts, &r->eps[r->neps]);
    int idx = hq_ck_endpoint(&r->ck, &r->eps[r->neps], rcv);
    r->neps++;
    return idx;
}

int rf_endpoint_on(struct rf *r, struct hq_test_receiver *rcv, const char *path, int max_attempts)
{
    return rf_endpoint_filtered(r, rcv, path, NULL, max_attempts);
}

int rf_endpoint(struct rf *r, const char *path)
{
    return rf_endpoint_on(r, &r->w.rcv, path, 0);
}

void rf_reconnect(struct rf *r)
{
    if (r->w.c)
        redisFree(r->w.c);
    r->w.c = hq_test_redis_connect(&r->w.redis);
}

int rf_produce(struct rf *r, const char *type, const char *payload)
{
    char key[HQ_KEY_MAX], id[32];
    long n = r->ck.seq;
    assert_true(n < RF_EVENTS_MAX);
    snprintf(id, sizeof(id), "evck_%ld", n);
    unsigned part = hq_tl_part_for(&r->w.tl, id);
    assert_true(hq_key_events(r->w.tl.L.part[part].base, key, sizeof(key)) >= 0);
    redisContext *c = wenv_node(&r->w, part);
    if (c->err)
        return -1;
    redisReply *rep = redisCommand(c, "XADD %s * type %s payload %s id %s", key, type, payload, id);
    int ok = rep && rep->type == REDIS_REPLY_STRING;
    if (rep)
        freeReplyObject(rep);
    if (!ok)
        return -1;
    r->ck.seq++;
    r->ack_ms[n] = hq_test_now_ms();
    r->nack = r->ck.seq;
    for (int i = 0; i < r->ck.neps; i++)
        hq_ck_record_in(&r->ck, id, r->ck.eps[i].e->id, r->ck.eps[i].expect_dead, part);
    return 0;
}

void rf_pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

pid_t rf_worker(struct rf *r, const char *consumer, const char *const *extra)
{
    const char *args[40];
    int n = 0;
    args[n++] = "--consumer";
    args[n++] = consumer;
    for (; extra && *extra && n < 38; extra++)
        args[n++] = *extra;
    args[n] = NULL;
    return wenv_worker(&r->w, args, NULL);
}

struct started_arg {
    const char *log;
    int before;
};

static int scheduler_started(void *arg)
{
    struct started_arg *a = arg;
    return hq_test_log_count(a->log, NULL, "started prefix=") > a->before;
}

pid_t rf_scheduler(struct rf *r)
{
    const char *args[] = {"scheduler", "--redis-url", wenv_url(&r->w), "--log-level",
                          "info",      "--interval",  "200ms",         NULL};
    /* Returns once it has read the layout and logged "started": a fault
     * injected before that (a paused Redis) would hit its start-up, which
     * gives up on an unreachable Redis, instead of its rounds. */
    struct started_arg a = {r->slog, hq_test_log_count(r->slog, NULL, "started prefix=")};
    pid_t pid = wenv_track(&r->w, hq_test_spawn(args, NULL, r->slog));
    if (!hq_test_wait(scheduler_started, &a, 10000)) {
        hq_test_log_print(r->slog, "scheduler");
        fail_msg("the scheduler did not log 'started' within 10 s");
    }
    return pid;
}

int rf_log_count(const char *path, const char *level, const char *needle)
{
    return hq_test_log_count(path, level, needle);
}

void rf_dump(const char *path, const char *tag)
{
    hq_test_log_print(path, tag);
}

void rf_dump_logs(struct rf *r)
{
    rf_dump(r->w.log, "worker");
    rf_dump(r->slog, "scheduler");
}

void rf_settle_and_check(struct rf *r, int timeout_ms, const char *label, struct hq_ck_report *rep)
{
    if (!hq_ck_wait_settled(&r->ck, r->w.c, timeout_ms)) {
        rf_dump_logs(r);
        fail_msg("%s: not settled within %d ms", label, timeout_ms);
    }
    hq_ck_collect(&r->ck, r->w.c, 1, rep);
    hq_ck_print(rep, label);
    hq_ck_assert(&r->ck, rep); /* tagged: also that the run used the partitions */
}

long rf_cpu_ms(pid_t pid)
{
    char buf[1024];
    if (hq_test_proc_stat(pid, buf, sizeof(buf)) != 0)
        return -1;
    char *p = strrchr(buf, ')'); /* the command name may contain spaces */
    if (!p)
        return -1;
    unsigned long ut = 0, st = 0;
    /* after ')': state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14)
     * stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    return (long)((ut + st) * 1000UL / (unsigned long)(hz > 0 ? hz : 100));
}

long long rf_in_flight(struct rf *r)
{
    long long n = hq_ck_in_flight(&r->w.rcv);
    if (r->rcv2_started)
        n += hq_ck_in_flight(&r->rcv2);
    if (!r->w.c->err)
        n += wenv_pending(&r->w) * r->ck.neps;
    return n;
}

int rf_in_flight_at_least(void *arg)
{
    struct rf_flight_arg *a = arg;
    return hq_ck_in_flight(a->rcv) >= a->want;
}

int rf_quiet(void *arg)
{
    struct rf *r = arg;
    if (r->w.c->err)
        return 0;
    int q = wenv_pending(&r->w) == 0 && wenv_sum(&r->w, "XLEN", hq_key_events) == 0 &&
            wenv_sum(&r->w, "XLEN", hq_key_retries) == 0 &&
            wenv_sum(&r->w, "ZCARD", hq_key_retry) == 0 &&
            wenv_sum(&r->w, "HLEN", hq_key_retry_data) == 0;
    if (!q)
        rf_pause_ms(20); /* polling pace */
    return q;
}

long long rf_attempt_records(struct rf *r, long n)
{
    char id[32];
    snprintf(id, sizeof(id), "evck_%ld", n);
    char pk[HQ_CK_KEY_MAX];
    hq_ck_pair_key(pk, id, r->ck.neps ? r->ck.eps[0].e->id : "");
    const struct hq_ck_pair *p = hq_ck_map_find(&r->ck.pairs, pk);
    unsigned part = p ? p->part : hq_tl_part_for(&r->w.tl, id);
    struct hq_err err = {0};
    redisReply *a = hq_attempts_read(wenv_node(&r->w, part), r->w.tl.L.part[part].base, id, &err);
    if (!a)
        fail_msg("reading attempt records: %s", err.msg);
    long long count = (long long)a->elements;
    freeReplyObject(a);
    return count;
}

int64_t rf_pair_ack_ms(const struct rf *r, const char *pair_key)
{
    if (strncmp(pair_key, "evck_", 5) != 0)
        return -1;
    long n = strtol(pair_key + 5, NULL, 10);
    return n >= 0 && n < r->nack ? r->ack_ms[n] : -1;
}
