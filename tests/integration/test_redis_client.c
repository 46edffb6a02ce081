/* The async Redis client (common/redis_client.c + common/redis_uv.c) against a
 * real, private redis-server: replies, AUTH/SELECT, deadlines on a frozen
 * server, reconnect after a restart without a busy loop, the NOSCRIPT
 * fallback, and an ordered close that leaves the loop empty. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "common/redis_client.h"
#include "common/redis_url.h"
#include "tests/harness/hq_test.h"

struct fx {
    uv_loop_t loop;
    struct hq_test_redis r;
    struct hq_redis_client *c;
    int ready_events; /* state_cb(1) count */
    int down_events;  /* state_cb(0) count */
    char last_why[1024];
    int closed; /* on_closed ran */
};

/* What one command's callback saw. */
struct rec {
    int calls;
    int null;
    int type;
    long long integer;
    char str[256];
};

static void on_state(struct hq_redis_client *c, int ready, const char *why, void *arg)
{
    (void)c;
    struct fx *f = arg;
    if (ready)
        f->ready_events++;
    else
        f->down_events++;
    snprintf(f->last_why, sizeof(f->last_why), "%s", why);
}

static void on_rec(struct hq_redis_client *c, redisReply *reply, void *arg)
{
    (void)c;
    struct rec *r = arg;
    r->calls++;
    r->null = reply == NULL;
    if (reply) {
        r->type = reply->type;
        r->integer = reply->integer;
        if (reply->str)
            snprintf(r->str, sizeof(r->str), "%.*s", (int)reply->len, reply->str);
    }
}

static void on_closed(void *arg)
{
    struct fx *f = arg;
    f->closed++;
}

static int setup(void **state)
{
    static struct fx f;
    memset(&f, 0, sizeof(f));
    hq_test_redis_start(&f.r, NULL);
    assert_int_equal(uv_loop_init(&f.loop), 0);
    *state = &f;
    return 0;
}

static int is_closed(void *arg)
{
    return ((struct fx *)arg)->closed > 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->r.pid > 0)
        kill(f->r.pid, SIGCONT); /* a test may have frozen it */
    if (f->c && !f->closed) {
        hq_redis_client_close(f->c, on_closed, f);
        assert_true(hq_test_run_until(&f->loop, is_closed, f, 5000));
    }
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    hq_test_redis_destroy(&f->r);
    return 0;
}

static void client_new(struct fx *f, const char *url)
{
    struct hq_redis_url u;
    struct hq_err err = {0};
    assert_int_equal(hq_redis_url_parse(url, &u, &err), 0);
    f->c = hq_redis_client_new(&f->loop, &u, "test", on_state, f);
    assert_non_null(f->c);
}

static int ready_once(void *arg)
{
    return ((struct fx *)arg)->ready_events >= 1;
}

static int ready_twice(void *arg)
{
    return ((struct fx *)arg)->ready_events >= 2;
}

static int down_once(void *arg)
{
    return ((struct fx *)arg)->down_events >= 1;
}

static int rec_called(void *arg)
{
    return ((struct rec *)arg)->calls > 0;
}

static int cmd(struct fx *f, struct rec *r, int timeout_ms, int argc, const char **argv)
{
    memset(r, 0, sizeof(*r));
    return hq_redis_client_command(f->c, on_rec, r, timeout_ms, argc, argv, NULL);
}

/* Sends a command and runs the loop until its reply. */
static void roundtrip(struct fx *f, struct rec *r, int argc, const char **argv)
{
    assert_int_equal(cmd(f, r, 0, argc, argv), 0);
    assert_true(hq_test_run_until(&f->loop, rec_called, r, 5000));
    assert_int_equal(r->calls, 1);
    assert_false(r->null);
}

static void test_client_connects_and_commands_get_replies(void **state)
{
    struct fx *f = *state;
    client_new(f, f->r.url);
    struct rec r;
    /* Not READY yet: a result, not a failure, and the callback is not called. */
    assert_int_equal(cmd(f, &r, 0, 1, (const char *[]){"PING"}), HQ_EAGAIN);
    assert_true(hq_test_run_until(&f->loop, ready_once, f, 5000));
    assert_true(hq_redis_client_ready(f->c));
    assert_int_equal(r.calls, 0);

    roundtrip(f, &r, 3, (const char *[]){"SET", "k", "v"});
    assert_int_equal(r.type, REDIS_REPLY_STATUS);
    roundtrip(f, &r, 2, (const char *[]){"GET", "k"});
    assert_int_equal(r.type, REDIS_REPLY_STRING);
    assert_string_equal(r.str, "v");

    /* Error replies are passed as they are. */
    roundtrip(f, &r, 2, (const char *[]){"INCR", "k"});
    assert_int_equal(r.type, REDIS_REPLY_ERROR);

    /* Pipelined commands are counted while pending and answered in order. */
    struct rec a, b;
    assert_int_equal(cmd(f, &a, 0, 2, (const char *[]){"INCR", "n"}), 0);
    assert_int_equal(cmd(f, &b, 0, 2, (const char *[]){"INCR", "n"}), 0);
    assert_int_equal(hq_redis_client_pending(f->c), 2);
    assert_true(hq_test_run_until(&f->loop, rec_called, &b, 5000));
    assert_int_equal(a.integer, 1);
    assert_int_equal(b.integer, 2);
    assert_int_equal(hq_redis_client_pending(f->c), 0);
    assert_int_equal(f->down_events, 0);
}

static void test_auth_and_select_from_url(void **state)
{
    struct fx *f = *state;
    redisContext *s = hq_test_redis_connect(&f->r);
    freeReplyObject(hq_test_cmd(s, "CONFIG SET requirepass x"));
    char url[128];
    snprintf(url, sizeof(url), "redis://:x@127.0.0.1:%d/3", f->r.port);
    client_new(f, url);
    assert_true(hq_test_run_until(&f->loop, ready_once, f, 5000));
    struct rec r;
    roundtrip(f, &r, 3, (const char *[]){"SET", "authed", "yes"});
    assert_int_equal(r.type, REDIS_REPLY_STATUS);

    /* The key landed in db 3, through an authenticated connection. */
    freeReplyObject(hq_test_cmd(s, "SELECT 3"));
    redisReply *g = hq_test_cmd(s, "GET authed");
    assert_int_equal(g->type, REDIS_REPLY_STRING);
    assert_string_equal(g->str, "yes");
    freeReplyObject(g);
    redisFree(s);
}

static void test_wrong_password_reports_clear_reason(void **state)
{
    struct fx *f = *state;
    redisContext *s = hq_test_redis_connect(&f->r);
    freeReplyObject(hq_test_cmd(s, "CONFIG SET requirepass x"));
    redisFree(s);
    char url[128];
    snprintf(url, sizeof(url), "redis://:not-the-secret@127.0.0.1:%d/0", f->r.port);
    client_new(f, url);
    assert_true(hq_test_run_until(&f->loop, down_once, f, 5000));
    assert_int_equal(f->ready_events, 0);
    assert_false(hq_redis_client_ready(f->c));
    assert_non_null(strstr(f->last_why, "AUTH failed"));
    assert_non_null(strstr(f->last_why, "WRONGPASS"));
    char where[64];
    snprintf(where, sizeof(where), "127.0.0.1:%d", f->r.port);
    assert_non_null(strstr(f->last_why, where));
    assert_null(strstr(f->last_why, "not-the-secret")); /* never print a secret */
}

static void test_missing_password_reports_noauth(void **state)
{
    struct fx *f = *state;
    redisContext *s = hq_test_redis_connect(&f->r);
    freeReplyObject(hq_test_cmd(s, "CONFIG SET requirepass x"));
    redisFree(s);
    client_new(f, f->r.url);
    assert_true(hq_test_run_until(&f->loop, down_once, f, 5000));
    assert_int_equal(f->ready_events, 0);
    assert_non_null(strstr(f->last_why, "NOAUTH"));
}

static void test_unreachable_server_reports_refused(void **state)
{
    struct fx *f = *state;
    char url[128];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", hq_test_free_port());
    client_new(f, url);
    assert_true(hq_test_run_until(&f->loop, down_once, f, 5000));
    assert_non_null(strstr(f->last_why, "cannot connect to 127.0.0.1:"));
    assert_non_null(strstr(f->last_why, "refused"));
}

static void test_command_deadline_expires_when_server_frozen(void **state)
{
    struct fx *f = *state;
    client_new(f, f->r.url);
    assert_true(hq_test_run_until(&f->loop, ready_once, f, 5000));
    assert_int_equal(kill(f->r.pid, SIGSTOP), 0);
    struct rec r;
    uv_update_time(&f->loop);
    uint64_t t0 = uv_now(&f->loop);
    assert_int_equal(cmd(f, &r, 300, 1, (const char *[]){"PING"}), 0);
    assert_true(hq_test_run_until(&f->loop, rec_called, &r, 5000));
    uint64_t waited = uv_now(&f->loop) - t0;
    assert_int_equal(r.calls, 1);
    assert_true(r.null); /* outcome unknown */
    assert_true(waited >= 300);
    assert_int_equal(f->down_events, 1);
    assert_non_null(strstr(f->last_why, "no reply within 300 ms"));
    assert_false(hq_redis_client_ready(f->c));

    assert_int_equal(kill(f->r.pid, SIGCONT), 0);
    assert_true(hq_test_run_until(&f->loop, ready_twice, f, 10000));
    roundtrip(f, &r, 1, (const char *[]){"PING"});
    assert_string_equal(r.str, "PONG");
    assert_int_equal(r.calls, 1); /* the expired callback never ran again */
}

static int never(void *arg)
{
    (void)arg;
    return 0;
}

static double cpu_seconds(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 +
           (double)u.ru_stime.tv_sec + (double)u.ru_stime.tv_usec / 1e6;
}

static void test_restart_fails_pending_and_reconnects_without_busy_loop(void **state)
{
    struct fx *f = *state;
    client_new(f, f->r.url);
    assert_true(hq_test_run_until(&f->loop, ready_once, f, 5000));
    struct rec r;
    assert_int_equal(cmd(f, &r, 60000, 3, (const char *[]){"BLPOP", "nothing", "0"}), 0);
    assert_int_equal(hq_redis_client_pending(f->c), 1);

    hq_test_redis_stop(&f->r, 0);
    assert_true(hq_test_run_until(&f->loop, rec_called, &r, 5000));
    assert_true(r.null);
    assert_int_equal(hq_redis_client_pending(f->c), 0);
    assert_int_equal(f->down_events, 1);
    assert_non_null(strstr(f->last_why, "lost 127.0.0.1:"));

    /* A 3 s outage: attempts are bounded by the backoff (100, 200, 400, 800,
     * 1600 ms ...) and the process stays nearly idle. */
    unsigned long before = hq_redis_client_reconnects(f->c);
    double cpu0 = cpu_seconds();
    hq_test_run_until(&f->loop, never, NULL, 3000);
    unsigned long attempts = hq_redis_client_reconnects(f->c) - before;
    double cpu = cpu_seconds() - cpu0;
    print_message("reconnect attempts in 3 s: %lu, cpu %.3f s\n", attempts, cpu);
    assert_true(attempts >= 2);
    assert_true(attempts <= 15);
    assert_true(cpu < 1.0);
    assert_int_equal(f->down_events, 1); /* one report per outage, not per retry */

    hq_test_redis_restart(&f->r);
    assert_true(hq_test_run_until(&f->loop, ready_twice, f, 10000));
    roundtrip(f, &r, 1, (const char *[]){"PING"});
    assert_string_equal(r.str, "PONG");
}

static const char script_src[] = "return ARGV[1] .. KEYS[1]";

static void test_script_falls_back_to_eval_after_script_flush(void **state)
{
    struct fx *f = *state;
    struct hq_redis_script s;
    hq_redis_script_init(&s, script_src);
    redisContext *sc = hq_test_redis_connect(&f->r);
    client_new(f, f->r.url);
    assert_true(hq_test_run_until(&f->loop, ready_once, f, 5000));

    for (int round = 0; round < 3; round++) {
        if (round == 2)
            freeReplyObject(hq_test_cmd(sc, "SCRIPT FLUSH"));
        redisReply *ex = hq_test_cmd(sc, "SCRIPT EXISTS %s", s.sha);
        assert_int_equal(ex->element[0]->integer, round == 1 ? 1 : 0);
        freeReplyObject(ex);

        struct rec r = {0};
        assert_int_equal(hq_redis_client_script(f->c, &s, on_rec, &r, 1, 2,
                                                (const char *[]){"key", "arg-"}, NULL),
                         0);
        assert_true(hq_test_run_until(&f->loop, rec_called, &r, 5000));
        assert_int_equal(r.calls, 1);
        assert_int_equal(r.type, REDIS_REPLY_STRING); /* never the NOSCRIPT error */
        assert_string_equal(r.str, "arg-key");
    }
    redisReply *ex = hq_test_cmd(sc, "SCRIPT EXISTS %s", s.sha);
    assert_int_equal(ex->element[0]->integer, 1);
    freeReplyObject(ex);
    redisFree(sc);
}

static void test_close_with_pending_commands_calls_them_with_null(void **state)
{
    struct fx *f = *state;
    client_new(f, f->r.url);
    assert_true(hq_test_run_until(&f->loop, ready_once, f, 5000));
    struct rec r[5];
    for (int i = 0; i < 5; i++)
        assert_int_equal(cmd(f, &r[i], 60000, 3, (const char *[]){"BLPOP", "nothing", "0"}), 0);
    assert_int_equal(hq_redis_client_pending(f->c), 5);
    hq_redis_client_close(f->c, on_closed, f);
    assert_true(hq_test_run_until(&f->loop, is_closed, f, 5000));
    for (int i = 0; i < 5; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_true(r[i].null);
    }
    assert_int_equal(f->closed, 1);
    assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT), 0); /* nothing left on the loop */
}

/* A reply callback that sends the next command, and closes the client from
 * inside the last reply. */
struct chain {
    struct fx *f;
    int replies;
    int eagain_after_close;
};

static void on_chain(struct hq_redis_client *c, redisReply *reply, void *arg)
{
    struct chain *ch = arg;
    if (!reply)
        return;
    ch->replies++;
    const char *argv[] = {"INCR", "chain"};
    if (ch->replies < 100) {
        assert_int_equal(hq_redis_client_command(c, on_chain, ch, 0, 2, argv, NULL), 0);
        return;
    }
    hq_redis_client_close(c, on_closed, ch->f);
    ch->eagain_after_close = hq_redis_client_command(c, on_chain, ch, 0, 2, argv, NULL);
}

static void test_reply_callback_may_send_and_close(void **state)
{
    struct fx *f = *state;
    client_new(f, f->r.url);
    assert_true(hq_test_run_until(&f->loop, ready_once, f, 5000));
    struct chain ch = {.f = f};
    assert_int_equal(
        hq_redis_client_command(f->c, on_chain, &ch, 0, 2, (const char *[]){"INCR", "chain"}, NULL),
        0);
    assert_true(hq_test_run_until(&f->loop, is_closed, f, 5000));
    assert_int_equal(ch.replies, 100);
    assert_int_equal(ch.eagain_after_close, HQ_EAGAIN);
    redisContext *s = hq_test_redis_connect(&f->r);
    redisReply *g = hq_test_cmd(s, "GET chain");
    assert_string_equal(g->str, "100");
    freeReplyObject(g);
    redisFree(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_client_connects_and_commands_get_replies, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_auth_and_select_from_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_password_reports_clear_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_password_reports_noauth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_server_reports_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_deadline_expires_when_server_frozen, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_restart_fails_pending_and_reconnects_without_busy_loop,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_script_falls_back_to_eval_after_script_flush, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_with_pending_commands_calls_them_with_null,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_callback_may_send_and_close, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
