/* Retain and resend (docs/resend.md): with --retain a worker keeps each
 * delivered event in <b>:retained, in the outcome call that records the
 * delivery, bounded by age and bytes; `hookq event resend ID` and `hookq
 * recover` re-send dead letters (and with --all retained ones) through the
 * events stream with the original webhook-id; bad arguments change nothing.
 * Real redis-server, worker and receiver; also run with HQ_TEST_LAYOUT=p4. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tests/harness/worker_env.h"

static struct wenv W;
static char OUT[8192], ERR[8192];

static long long sum_of(const char *cmd, hq_tl_key_fn keyfn)
{
    return wenv_sum(&W, cmd, keyfn);
}

/* <b>:retained:bytes summed over partitions (absent: 0). */
static long long bytes_sum(void)
{
    long long sum = 0;
    for (unsigned p = 0; p < W.tl.L.nparts; p++) {
        char key[HQ_KEY_MAX];
        hq_key_retained_bytes(W.tl.L.part[p].base, key, sizeof(key));
        redisReply *r = hq_test_cmd(wenv_node(&W, p), "GET %s", key);
        if (r->type == REDIS_REPLY_STRING)
            sum += atoll(r->str);
        freeReplyObject(r);
    }
    return sum;
}

/* The bytes <b>:retained holds (its fields and values), over partitions. */
static long long held_bytes(void)
{
    long long real = 0;
    for (unsigned p = 0; p < W.tl.L.nparts; p++) {
        char key[HQ_KEY_MAX];
        hq_key_retained(W.tl.L.part[p].base, key, sizeof(key));
        redisReply *r = hq_test_cmd(wenv_node(&W, p), "XRANGE %s - +", key);
        for (size_t i = 0; i < r->elements; i++) {
            redisReply *kv = r->element[i]->element[1];
            for (size_t j = 0; j < kv->elements; j++)
                real += (long long)kv->element[j]->len;
        }
        freeReplyObject(r);
    }
    return real;
}

static int retained_gone(void *arg)
{
    (void)arg;
    return sum_of("XLEN", hq_key_retained) == 0 && bytes_sum() == 0;
}

struct len_arg {
    hq_tl_key_fn keyfn;
    long long want;
};

static int xlen_at_least(void *arg)
{
    struct len_arg *a = arg;
    return sum_of("XLEN", a->keyfn) >= a->want;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every entry of keyfn's stream over all partitions as "<event id>><endpoint>",
 * sorted and comma-joined into out (events use id/endpoint, the others
 * event_id/endpoint_id). */
static void entries(hq_tl_key_fn keyfn, char *out, size_t n)
{
    char *items[512];
    size_t k = 0;
    for (unsigned p = 0; p < W.tl.L.nparts; p++) {
        char key[HQ_KEY_MAX];
        keyfn(W.tl.L.part[p].base, key, sizeof(key));
        redisReply *r = hq_test_cmd(wenv_node(&W, p), "XRANGE %s - +", key);
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            redisReply *kv = r->element[i]->element[1];
            const char *ev = "", *ep = "";
            for (size_t j = 0; j + 1 < kv->elements; j += 2) {
                const char *f = kv->element[j]->str, *v = kv->element[j + 1]->str;
                if (!strcmp(f, "id") || !strcmp(f, "event_id"))
                    ev = v;
                if (!strcmp(f, "endpoint") || !strcmp(f, "endpoint_id"))
                    ep = v;
            }
            assert_true(k < 512);
            items[k] = malloc(strlen(ev) + strlen(ep) + 2);
            sprintf(items[k++], "%s>%s", ev, ep);
        }
        freeReplyObject(r);
    }
    qsort(items, k, sizeof(*items), cmp_str);
    out[0] = '\0';
    for (size_t i = 0; i < k; i++) {
        if (i)
            strncat(out, ",", n - strlen(out) - 1);
        strncat(out, items[i], n - strlen(out) - 1);
        free(items[i]);
    }
}

/* Events with no subscriber filter reach both endpoints: ok (200) and bad
 * (500, one attempt: dead at once). */
static struct hq_endpoint OK, BAD;
static void two_endpoints(void)
{
    wenv_endpoint_at(&W, "/hooks/ok", NULL, 0, &OK);
    wenv_endpoint_at(&W, "/s/500/bad", NULL, 1, &BAD);
}

static void free_endpoints(void)
{
    hq_endpoint_free(&OK);
    hq_endpoint_free(&BAD);
}

/* Produces id and waits until both outcomes are recorded (n-th of each). */
static void produce_settled(const char *id, long long n, int retained)
{
    wenv_produce(&W, "order.paid", "{\"n\":1}", id, NULL, NULL, 0);
    struct len_arg d = {hq_key_dead, n};
    wenv_wait(&W, xlen_at_least, &d, 10000, "the dead letter");
    if (retained) {
        struct len_arg r = {hq_key_retained, n};
        wenv_wait(&W, xlen_at_least, &r, 10000, "the retained delivery");
    }
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the ack");
}

static int cli(const char *a0, ...)
{
    va_list ap;
    va_start(ap, a0);
    const char *a[12];
    int k = 0;
    for (const char *s = va_arg(ap, const char *); s && k < 11; s = va_arg(ap, const char *))
        a[k++] = s;
    va_end(ap);
    a[k] = NULL;
    /* wenv_cli takes its args as a list: at most 11 here. */
    return wenv_cli(&W, OUT, sizeof(OUT), ERR, sizeof(ERR), a0, a[0], a[1], a[2], a[3], a[4], a[5],
                    a[6], a[7], a[8], a[9], a[10], NULL);
}

static void stop(pid_t pid)
{
    assert_int_equal(hq_test_kill_wait(pid, SIGTERM, 20000), 0);
}

static void test_a_delivered_event_is_retained_and_resent_with_its_webhook_id(void **state)
{
    (void)state;
    two_endpoints();
    const char *extra[] = {"--retain", "1h", NULL};
    pid_t pid = wenv_worker(&W, extra, NULL);
    produce_settled("ev_keep", 1, 1);
    assert_true(wenv_log_has(&W, "retain=3600000ms retain_max_bytes=1073741824"));
    char got[4096], want[256];
    entries(hq_key_retained, got, sizeof(got));
    snprintf(want, sizeof(want), "ev_keep>%s", OK.id);
    assert_string_equal(got, want);
    assert_true(bytes_sum() > 0);
    assert_int_equal(hq_test_receiver_count_path(&W.rcv, "/hooks/ok"), 1);
    char st[64];
    snprintf(st, sizeof(st), "\"retained\":1,\"retained_bytes\":%lld,", bytes_sum());
    assert_int_equal(cli("stats", "--json", NULL), 0);
    assert_non_null(strstr(OUT, st));

    /* By id, to the one endpoint: the retained copy (not the other's dead letter). */
    assert_int_equal(cli("event", "resend", "ev_keep", "--endpoint", OK.id, NULL), 0);
    assert_string_equal(OUT, "re-sent 1\n");
    struct count_arg ca = {&W.rcv, "/hooks/ok", 2};
    wenv_wait(&W, received_at_least, &ca, 10000, "the re-sent delivery");
    size_t last = 0;
    for (size_t i = 0; i < W.rcv.nreqs; i++)
        if (!strncmp(W.rcv.reqs[i].path, "/hooks/ok", 9))
            last = i;
    char v[256];
    assert_int_equal(hq_test_request_header(&W.rcv.reqs[last], "webhook-id", v, sizeof(v)), 0);
    assert_string_equal(v, "ev_keep");
    assert_memory_equal(W.rcv.reqs[last].body, "{\"n\":1}", 7);
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the ack");
    struct len_arg r = {hq_key_retained, 1};
    wenv_wait(&W, xlen_at_least, &r, 10000, "retained again");
    assert_int_equal(sum_of("XLEN", hq_key_retained), 1); /* the re-sent copy left */
    assert_int_equal(bytes_sum(), held_bytes());
    assert_int_equal(hq_test_receiver_count_path(&W.rcv, "/s/500/bad"), 1);

    /* Without --endpoint: every endpoint that has it, dead or delivered. */
    assert_int_equal(cli("event", "resend", "ev_keep", NULL), 0);
    assert_string_equal(OUT, "re-sent 2\n");
    struct count_arg cb = {&W.rcv, "/s/500/bad", 2};
    wenv_wait(&W, received_at_least, &cb, 10000, "the dead letter re-sent");
    struct count_arg c3 = {&W.rcv, "/hooks/ok", 3};
    wenv_wait(&W, received_at_least, &c3, 10000, "the delivery re-sent");
    stop(pid);
    free_endpoints();
}

static void test_recover_sends_exactly_the_window_the_endpoint_and_all_say(void **state)
{
    (void)state;
    two_endpoints();
    const char *extra[] = {"--retain", "1h", NULL};
    pid_t pid = wenv_worker(&W, extra, NULL);
    produce_settled("ev_1", 1, 1);
    wenv_next_ms(&W);
    char t1[32], t2[32];
    snprintf(t1, sizeof(t1), "%lld", (long long)hq_test_now_ms());
    produce_settled("ev_2", 2, 1);
    wenv_next_ms(&W);
    snprintf(t2, sizeof(t2), "%lld", (long long)hq_test_now_ms());
    produce_settled("ev_3", 3, 1);
    stop(pid); /* what recover adds stays in the events stream, to be read here */

    char got[4096], want[512];
    assert_int_equal(cli("recover", "--endpoint", BAD.id, "--since", t1, "--until", t2, NULL), 0);
    assert_string_equal(OUT, "re-sent 1\n");
    entries(hq_key_events, got, sizeof(got));
    snprintf(want, sizeof(want), "ev_2>%s", BAD.id);
    assert_string_equal(got, want);

    /* The delivered endpoint has no dead letters: nothing without --all. */
    assert_int_equal(cli("recover", "--endpoint", OK.id, "--since", t1, "--until", t2, NULL), 0);
    assert_string_equal(OUT, "re-sent 0\n");
    assert_int_equal(
        cli("recover", "--endpoint", OK.id, "--since", t1, "--until", t2, "--all", NULL), 0);
    assert_string_equal(OUT, "re-sent 1\n");
    /* No --until: up to now; ev_2's dead letter already left. */
    assert_int_equal(cli("recover", "--endpoint", BAD.id, "--since", t1, NULL), 0);
    assert_string_equal(OUT, "re-sent 1\n");
    entries(hq_key_events, got, sizeof(got));
    snprintf(want, sizeof(want), "ev_2>%s,ev_2>%s,ev_3>%s", BAD.id, OK.id, BAD.id);
    if (strcmp(got, want) != 0) { /* sorted: the endpoint ids decide the order of the ev_2s */
        snprintf(want, sizeof(want), "ev_2>%s,ev_2>%s,ev_3>%s", OK.id, BAD.id, BAD.id);
        assert_string_equal(got, want);
    }
    /* The rest stays where it was. */
    entries(hq_key_dead, got, sizeof(got));
    snprintf(want, sizeof(want), "ev_1>%s", BAD.id);
    assert_string_equal(got, want);
    entries(hq_key_retained, got, sizeof(got));
    snprintf(want, sizeof(want), "ev_1>%s,ev_3>%s", OK.id, OK.id);
    assert_string_equal(got, want);
    assert_int_equal(bytes_sum(), held_bytes());

    /* Delivered again with the original webhook-id. */
    size_t before = hq_test_receiver_count_path(&W.rcv, "/hooks/ok");
    pid = wenv_worker(&W, extra, NULL);
    struct count_arg ca = {&W.rcv, "/hooks/ok", before + 1};
    wenv_wait(&W, received_at_least, &ca, 10000, "the recovered delivery");
    char v[256];
    assert_int_equal(
        hq_test_request_header(&W.rcv.reqs[W.rcv.nreqs - 1], "webhook-id", v, sizeof(v)), 0);
    assert_true(!strcmp(v, "ev_2") || !strcmp(v, "ev_3"));
    stop(pid);
    free_endpoints();
}

/* Keys and lengths of every stream: what a command must leave as it was. */
static void snapshot(char *out, size_t n)
{
    char a[4096], b[4096], c[4096];
    entries(hq_key_events, a, sizeof(a));
    entries(hq_key_dead, b, sizeof(b));
    entries(hq_key_retained, c, sizeof(c));
    snprintf(out, n, "events[%s] dead[%s] retained[%s] bytes %lld", a, b, c, bytes_sum());
}

static void test_bad_arguments_change_nothing(void **state)
{
    (void)state;
    two_endpoints();
    pid_t pid = wenv_worker(&W, NULL, NULL); /* retain off */
    produce_settled("ev_a", 1, 0);
    stop(pid);
    char before[16384], after[16384];
    snapshot(before, sizeof(before));
    const struct {
        const char *a[10];
        int status;
        const char *msg;
    } cases[] = {
        {{"recover", "--endpoint", BAD.id, "--since", "yesterday"}, 2, "--since: 'yesterday'"},
        {{"recover", "--endpoint", "ep_nope", "--since", "1h"}, 2, "unknown endpoint 'ep_nope'"},
        {{"recover", "--endpoint", BAD.id, "--since", "1h", "--until", "2h"},
         2,
         "--until: '2h' is not after --since '1h'"},
        {{"recover", "--since", "1h"}, 2, "--endpoint: required"},
        {{"recover", "--endpoint", BAD.id}, 2, "--since: required"},
        {{"recover", "--endpoint", OK.id, "--since", "1h", "--all"}, 2, "--all: no delivered"},
        {{"event", "resend", "ev_none"}, 1, "'ev_none' is neither dead-lettered nor retained"},
        {{"event", "resend", "ev_a", "--endpoint", OK.id}, 1, "neither dead-lettered"},
        {{"event", "resend", "ev_a", "--endpoint", "ep_nope"}, 2, "unknown endpoint"},
        {{"event", "resend", "bad id!"}, 2, "id"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        const char *const *a = cases[i].a;
        int st = cli(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], NULL);
        if (st != cases[i].status || !strstr(ERR, cases[i].msg))
            fail_msg("case %zu (%s %s): exit %d, stderr: %s", i, a[0], a[1], st, ERR);
        snapshot(after, sizeof(after));
        assert_string_equal(after, before);
    }
    /* And the dead letter is still there to recover; an invalid one beside it
     * is skipped, said, and kept. */
    char dead[HQ_KEY_MAX];
    hq_key_dead(W.tl.L.part[0].base, dead, sizeof(dead));
    freeReplyObject(hq_test_cmd(wenv_node(&W, 0),
                                "XADD %s * event_id ev_bad endpoint_id %s reason invalid:x", dead,
                                BAD.id));
    assert_int_equal(cli("recover", "--endpoint", BAD.id, "--since", "1h", NULL), 0);
    assert_string_equal(OUT, "re-sent 1\n");
    assert_non_null(strstr(ERR, "skipped 1 dead letters that hold no valid event"));
    entries(hq_key_dead, after, sizeof(after));
    snprintf(before, sizeof(before), "ev_bad>%s", BAD.id);
    assert_string_equal(after, before);
    free_endpoints();
}

static void test_retained_events_are_bounded_by_bytes_and_age(void **state)
{
    (void)state;
    wenv_endpoint_at(&W, "/hooks/ok", NULL, 0, &OK);
    const char *extra[] = {"--retain", "2s", "--retain-max-bytes", "4k", NULL};
    pid_t pid = wenv_worker(&W, extra, NULL);
    char payload[201];
    memset(payload, 'x', 200);
    payload[0] = '"';
    payload[199] = '"';
    payload[200] = '\0';
    for (int i = 0; i < 60; i++) {
        char id[32];
        snprintf(id, sizeof(id), "ev_%d", i);
        wenv_produce(&W, "order.paid", payload, id, NULL, NULL, 0);
    }
    struct count_arg ca = {&W.rcv, "/hooks/ok", 60};
    wenv_wait(&W, received_at_least, &ca, 20000, "60 deliveries");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the acks");
    /* ~270 bytes an entry: at most 4 KiB (per partition share) of them, the newest. */
    long long bytes = bytes_sum(), n = sum_of("XLEN", hq_key_retained);
    print_message("[retain] %lld entries, %lld bytes kept of 60 delivered\n", n, bytes);
    assert_true(bytes <= 4096 && bytes > 0);
    assert_true(n >= 1 && n < 60);
    assert_int_equal(held_bytes(), bytes); /* the counter is what the stream holds */
    /* Age: both keys expire after 2 s without a delivery. */
    wenv_wait(&W, retained_gone, NULL, 10000, "the retained keys' expiry");
    stop(pid);
    wenv_assert_layout(&W, "retain"); /* 60 ids: more than one partition at P = 4 */
    hq_endpoint_free(&OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        WENV_TEST(test_a_delivered_event_is_retained_and_resent_with_its_webhook_id, &W),
        WENV_TEST(test_recover_sends_exactly_the_window_the_endpoint_and_all_say, &W),
        WENV_TEST(test_bad_arguments_change_nothing, &W),
        WENV_TEST(test_retained_events_are_bounded_by_bytes_and_age, &W),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
