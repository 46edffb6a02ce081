/* Scenario 9: endpoints that misbehave at the socket level — hang, answer the
 * headers or the body one byte at a time, reset the connection, refuse it,
 * close inside the status line or in the middle of the body, send a 1 GiB
 * body, promise a huge Content-Length and stall, send header lines or
 * "100 Continue" answers without end. Every attempt ends within its timeout
 * (seen from the worker's attempt record and from the server, which sees the
 * client leave), is recorded with the right class, the endless senders get no
 * further than the response caps (plus socket buffers) before the worker hangs
 * up, the worker's memory does not grow with what it was sent, and a healthy
 * endpoint keeps flowing while all of this is in flight. The misbehaving
 * servers are tests/harness/bad_server.c, one per behaviour, on 127.0.0.1. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/bad_server.h"
#include "tests/harness/worker_env.h"

static struct wenv W;

#define TIMEOUT_MS 5000 /* the worker's --timeout */
/* What the worker's loop may add to an attempt past its timeout (ASan and a
 * loaded 2-core machine included). */
#define MARGIN_MS 1500
/* The most of the 1 GiB body the sender may get rid of: the worker stops
 * reading at 1 MiB (HQ_RESP_DISCARD_MAX); the rest is what the two loopback
 * socket buffers hold (autotuned, a few MiB at most). */
#define HUGE_SENT_MAX (32LL << 20)
/* The worker's RSS may grow this much while being sent 1 GiB (it keeps 4 KiB
 * per attempt; the rest is curl's and the allocator's slack). */
#define RSS_GROWTH_MAX_KB (32 * 1024)

/* The behaviours under test and what each attempt must be recorded as. */
static const struct {
    enum bs_mode mode;
    const char *error;   /* prefix of the record's "error" ("" for none; "a|b": either) */
    const char *outcome; /* the record's "outcome" */
    int peer_leaves;     /* the server must see the worker hang up */
} cases[] = {
    {BS_HANG, "timeout: ", "retry", 1},
    {BS_SLOW_HEADERS, "timeout: ", "retry", 1},
    {BS_SLOW_BODY, "timeout: ", "retry", 1},
    {BS_RESET, "network: Recv failure: Connection reset by peer", "retry", 0},
    {BS_REFUSE, "connect: ", "retry", 0},
    {BS_CUT_STATUS, "network: ", "retry", 0},
    {BS_CLOSE_MID, "network: ", "retry", 0},
    /* Part of the body and the reset arrive together: libuv reports only the
     * error; curl, told the direction too, reads the bytes and then the
     * reset in the same action, and says so. */
    {BS_RESET_MID, "network: Recv failure: Connection reset by peer", "retry", 0},
    /* A 2xx whose body is cut by the worker's cap counts by its status. */
    {BS_HUGE_BODY, "", "delivered", 1},
    {BS_HUGE_LENGTH, "timeout: ", "retry", 1},
    /* curl caps what it takes of response headers (300 KiB), 1xx included. */
    {BS_HUGE_HEADERS, "network: ", "retry", 0},
    /* Usually the same header cap; now and then libcurl 7.88 loses its place
     * between back-to-back 1xx answers and reports "Received HTTP/0.9 when not
     * allowed", which the worker also classes as network (worker/delivery.c). */
    {BS_ENDLESS_1XX, "network: ", "retry", 0},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static size_t case_of(enum bs_mode m)
{
    size_t i = 0;
    while (cases[i].mode != m)
        i++;
    return i;
}

struct att_arg {
    char ids[NCASES][64];
};

static int all_recorded(void *arg)
{
    struct att_arg *a = arg;
    for (size_t i = 0; i < NCASES; i++) {
        redisReply *r = wenv_attempts(&W, a->ids[i]);
        size_t n = r->elements;
        freeReplyObject(r);
        if (n < 1)
            return 0;
    }
    return 1;
}

static int peer_left(void *arg)
{
    return atomic_load(&((struct bs_server *)arg)->peer_closed) >= 1 &&
           atomic_load(&((struct bs_server *)arg)->open) == 0;
}

/* 1 when rec's "error" starts with one of the '|'-separated prefixes in want. */
static int error_is(const char *rec, const char *want)
{
    char alts[128];
    snprintf(alts, sizeof(alts), "%s", want);
    char *save = NULL;
    if (!alts[0])
        return strstr(rec, "\"error\":\"\"") != NULL;
    for (char *a = strtok_r(alts, "|", &save); a; a = strtok_r(NULL, "|", &save)) {
        char needle[160];
        snprintf(needle, sizeof(needle), "\"error\":\"%s", a);
        if (strstr(rec, needle))
            return 1;
    }
    return 0;
}

/* The JSON integer after "key": in rec (-1 if absent). */
static long long json_int(const char *rec, const char *key)
{
    char k[64];
    snprintf(k, sizeof(k), "\"%s\":", key);
    const char *p = strstr(rec, k);
    return p ? atoll(p + strlen(k)) : -1;
}

static void test_misbehaving_endpoints_end_within_timeout_healthy_flows(void **state)
{
    (void)state;
    struct bs_server bads[NCASES];
    struct hq_endpoint eps[NCASES], good;
    for (size_t i = 0; i < NCASES; i++) {
        bs_start(&bads[i], cases[i].mode);
        char url[128], filter[64];
        snprintf(url, sizeof(url), "%s/%s", bads[i].url, bs_mode_names[cases[i].mode]);
        snprintf(filter, sizeof(filter), "bad.%s", bs_mode_names[cases[i].mode]);
        wenv_endpoint(&W, url, filter, NULL, 0, &eps[i]);
    }
    wenv_endpoint_at(&W, "/good", "good.*", 0, &good);
    const char *extra[] = {"--timeout", "5s", "--connect-timeout", "1s", NULL};
    pid_t pid = wenv_worker(&W, extra, NULL);

    /* Warm-up: one healthy delivery, then the worker's resident size. */
    wenv_produce(&W, "good.x", "{}", NULL, NULL, NULL, 0);
    struct count_arg warm = {&W.rcv, "/good", 1};
    wenv_wait(&W, received_at_least, &warm, 10000, "the warm-up delivery");
    long rss0 = hq_test_proc_rss_kb(pid);
    assert_true(rss0 > 0);

    struct att_arg aa;
    for (size_t i = 0; i < NCASES; i++) {
        char type[64];
        snprintf(type, sizeof(type), "bad.%s", bs_mode_names[cases[i].mode]);
        snprintf(aa.ids[i], sizeof(aa.ids[i]), "evt_%s", bs_mode_names[cases[i].mode]);
        wenv_produce(&W, type, "{}", aa.ids[i], NULL, NULL, 0);
    }
    /* The healthy endpoint flows while the others misbehave: all of its
     * events land while the hanging attempt is still open. */
    const size_t n_good = 200;
    for (size_t i = 0; i < n_good; i++)
        wenv_produce(&W, "good.x", "{}", NULL, NULL, NULL, 0);
    struct count_arg ca = {&W.rcv, "/good", n_good + 1};
    wenv_wait(&W, received_at_least, &ca, 20000, "the healthy deliveries");
    size_t hang = case_of(BS_HANG);
    print_message("healthy done with %d hanging connection(s) open\n",
                  atomic_load(&bads[hang].open));
    assert_true(atomic_load(&bads[hang].accepted) == 1 && atomic_load(&bads[hang].open) == 1);

    wenv_wait(&W, all_recorded, &aa, 20000, "an attempt record per misbehaving endpoint");
    for (size_t i = 0; i < NCASES; i++) {
        const char *name = bs_mode_names[cases[i].mode];
        redisReply *r = wenv_attempts(&W, aa.ids[i]);
        assert_int_equal(r->elements, 1); /* one attempt: no scheduler runs */
        const char *rec = r->element[0]->str;
        print_message("%-12s %.200s\n", name, rec);
        if (!error_is(rec, cases[i].error))
            fail_msg("%s: want error \"%s...\" in %s", name, cases[i].error, rec);
        char needle[96];
        snprintf(needle, sizeof(needle), "\"outcome\":\"%s\"", cases[i].outcome);
        if (!strstr(rec, needle))
            fail_msg("%s: want outcome %s in %s", name, cases[i].outcome, rec);
        long long dur = json_int(rec, "duration_ms");
        assert_true(dur >= 0);
        if (dur > TIMEOUT_MS + MARGIN_MS)
            fail_msg("%s: attempt took %lld ms, timeout %d ms", name, dur, TIMEOUT_MS);
        freeReplyObject(r);
        if (cases[i].peer_leaves) {
            /* Seen from the server: the worker hung up, in time. */
            wenv_wait(&W, peer_left, &bads[i], 10000, "the worker to hang up");
            long long held = atomic_load(&bads[i].max_conn_ms);
            print_message("%-12s connection held %lld ms\n", name, held);
            assert_true(held <= TIMEOUT_MS + MARGIN_MS);
        }
    }
    assert_int_equal(atomic_load(&bads[case_of(BS_REFUSE)].accepted),
                     0); /* refused: never connected */

    /* The endless senders (1 GiB of body, of headers, of 1xx answers): the
     * worker read up to its cap and hung up; its memory did not follow. */
    static const enum bs_mode endless[] = {BS_HUGE_BODY, BS_HUGE_HEADERS, BS_ENDLESS_1XX};
    for (size_t k = 0; k < sizeof(endless) / sizeof(endless[0]); k++) {
        struct bs_server *s = &bads[case_of(endless[k])];
        wenv_wait(&W, peer_left, s, 10000, "the worker to hang up on an endless sender");
        long long sent = atomic_load(&s->body_sent);
        print_message("%-12s %lld bytes taken by the socket before the hang-up\n",
                      bs_mode_names[endless[k]], sent);
        assert_true(sent <= HUGE_SENT_MAX);
    }
    assert_true(atomic_load(&bads[case_of(BS_HUGE_BODY)].body_sent) >= (1LL << 20));
    long rss1 = hq_test_proc_rss_kb(pid);
    assert_true(rss1 > 0);
    print_message("worker RSS %ld -> %ld KiB\n", rss0, rss1);
    assert_true(rss1 - rss0 <= RSS_GROWTH_MAX_KB);

    /* Every outcome recorded: the failures wait in the retry set, one each,
     * and the stream holds nothing unacknowledged. */
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "every entry acknowledged");
    assert_int_equal(wenv_sum(&W, "ZCARD", hq_key_retry), (long long)NCASES - 1);
    assert_int_equal(wenv_sum(&W, "XLEN", hq_key_dead), 0);
    wenv_assert_layout(&W, "bad endpoints"); /* tagged: the events went to several partitions */
    assert_int_equal(hq_test_receiver_count(&W.rcv), n_good + 1);

    assert_int_equal(hq_test_kill_wait(pid, SIGTERM, 20000), 0);
    for (size_t i = 0; i < NCASES; i++) {
        bs_stop(&bads[i]);
        hq_endpoint_free(&eps[i]);
    }
    hq_endpoint_free(&good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        WENV_TEST(test_misbehaving_endpoints_end_within_timeout_healthy_flows, &W),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
