/* Scenario 12, payload size limits: a payload over the maximum is refused by
 * the producer library and by `hookq produce` (nothing written), and when a
 * broken producer writes it to the stream directly the worker dead-letters it
 * as invalid, never delivering or crashing; a payload of exactly the maximum
 * is delivered byte for byte. Default maximum (1 MiB), real processes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/limits.h"
#include "hookq/hookq.h"
#include "tests/harness/worker_env.h"

static struct wenv W;

static char *body_of(size_t n, char fill)
{
    /* A JSON string body of exactly n bytes: "xxxx...". */
    char *b = malloc(n + 1);
    memset(b, fill, n);
    b[0] = '"';
    b[n - 1] = '"';
    b[n] = '\0';
    return b;
}

static void test_over_max_is_refused_by_the_producers(void **state)
{
    (void)state;
    char *over = body_of(HQ_PAYLOAD_MAX_DEFAULT + 1, 'o');
    struct hookq_producer *p = NULL;
    char err[256];
    assert_int_equal(hookq_producer_connect(W.redis.url, "hookq", &p, err, sizeof(err)), 0);
    struct hookq_event ev = {
        .type = "big.event", .payload = over, .payload_len = HQ_PAYLOAD_MAX_DEFAULT + 1};
    char id[64];
    assert_true(hookq_produce(p, &ev, id, sizeof(id), err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "payload: 1048577 bytes, max 1048576"));
    hookq_producer_free(p);

    /* The CLI reads the body from stdin and refuses it with exit 2. */
    char out[512], errs[512];
    const char *args[] = {"produce", "--redis-url", W.redis.url, "--type", "big.event", NULL};
    assert_int_equal(hq_test_cli(args, NULL, over, out, sizeof(out), errs, sizeof(errs)), 2);
    assert_non_null(strstr(errs, "payload"));
    assert_int_equal(hq_test_cmd_int(W.c, "XLEN hookq:events"), 0);
    free(over);
}

static void test_over_max_written_directly_is_dead_lettered_exact_max_delivered(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    char url[128];
    snprintf(url, sizeof(url), "%s/big", W.rcv.url);
    wenv_endpoint(&W, url, NULL, NULL, 0, &ep);
    pid_t pid = wenv_worker(&W, NULL, NULL);

    char *over = body_of(HQ_PAYLOAD_MAX_DEFAULT + 1, 'o');
    char *exact = body_of(HQ_PAYLOAD_MAX_DEFAULT, 'e');
    freeReplyObject(hq_test_cmd(W.c, "XADD hookq:events * type big.event id evt_over payload %b",
                                over, (size_t)HQ_PAYLOAD_MAX_DEFAULT + 1));
    freeReplyObject(hq_test_cmd(W.c, "XADD hookq:events * type big.event id evt_exact payload %b",
                                exact, (size_t)HQ_PAYLOAD_MAX_DEFAULT));

    struct count_arg ca = {&W.rcv, "/big", 1};
    wenv_wait(&W, received_at_least, &ca, 20000, "the maximum-size delivery");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 20000, "both entries acknowledged");

    /* Exactly the maximum: delivered once, byte for byte. */
    assert_int_equal(hq_test_receiver_count(&W.rcv), 1);
    const struct hq_test_request *q = &W.rcv.reqs[0];
    assert_int_equal(q->body_len, (size_t)HQ_PAYLOAD_MAX_DEFAULT);
    assert_memory_equal(q->body, exact, HQ_PAYLOAD_MAX_DEFAULT);
    char v[256];
    assert_int_equal(hq_test_request_header(q, "webhook-id", v, sizeof(v)), 0);
    assert_string_equal(v, "evt_exact");

    /* One byte over: one dead letter, reason invalid, never delivered. */
    assert_int_equal(hq_test_cmd_int(W.c, "XLEN hookq:dead"), 1);
    stream_field(&W, "hookq:dead", 0, "reason", v, sizeof(v));
    assert_string_equal(v, "invalid: payload: 1048577 bytes, max 1048576");
    assert_int_equal(hq_test_cmd_int(W.c, "ZCARD hookq:retry"), 0);

    assert_int_equal(hq_test_kill_wait(pid, SIGTERM, 20000), 0);
    free(over);
    free(exact);
    hq_endpoint_free(&ep);
}

static int setup(void **state)
{
    (void)state;
    wenv_start(&W, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    wenv_stop(&W);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_over_max_is_refused_by_the_producers, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_over_max_written_directly_is_dead_lettered_exact_max_delivered, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
