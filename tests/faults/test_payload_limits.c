/* Scenario 12, payload size limits, at the default maximum (1 MiB) and at a
 * configured one (--max-payload 64 KiB on the worker and the producers).
 * A payload one byte over the bound is refused by the producer library
 * (single and batch) and by `hookq produce` (stdin and @FILE) with a one-line
 * message naming the size and the bound, and nothing is written. When a
 * broken producer writes it to the stream anyway (plain fields, or the
 * msgpack form from a producer configured with a larger bound), the worker
 * dead-letters it as invalid, never delivering or crashing. A payload of
 * exactly the bound is delivered byte for byte, a binary one holding every
 * byte value (NUL included) too. Real processes, real Redis, the harness
 * receiver. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/limits.h"
#include "hookq/hookq.h"
#include "tests/harness/worker_env.h"

static struct wenv W;

#define LIMIT     65536
#define LIMIT_ARG "65536"

/* ---- the default maximum, plain-field form ---- */

/* The over-size entry: one dead letter with this reason, and nothing to retry. */
static void assert_dead_lettered_once(const char *reason)
{
    assert_int_equal(hq_test_cmd_int(W.c, "XLEN hookq:dead"), 1);
    stream_field_is(&W, "hookq:dead", 0, "reason", reason);
    assert_int_equal(hq_test_cmd_int(W.c, "ZCARD hookq:retry"), 0);
}

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
    wenv_endpoint_at(&W, "/big", NULL, 0, &ep);
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
    assert_dead_lettered_once("invalid: payload: 1048577 bytes, max 1048576");

    assert_int_equal(hq_test_kill_wait(pid, SIGTERM, 20000), 0);
    free(over);
    free(exact);
    hq_endpoint_free(&ep);
}

/* ---- a configured maximum (--max-payload), msgpack form ---- */

/* n bytes cycling through every byte value, NUL included. */
static char *binary_of(size_t n)
{
    char *b = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        b[i] = (char)(unsigned char)(i * 7 + 3);
    b[n] = '\0';
    return b;
}

static char *text_of(size_t n)
{
    char *b = malloc(n + 1);
    memset(b, 't', n);
    b[n] = '\0';
    return b;
}

static struct hookq_producer *producer(size_t max)
{
    struct hookq_producer *p = NULL;
    char err[256];
    if (hookq_producer_connect(W.redis.url, "hookq", &p, err, sizeof(err)) != 0)
        fail_msg("connect: %s", err);
    hookq_producer_set_max_payload(p, max);
    return p;
}

static void test_one_byte_over_the_configured_max_is_refused_by_every_producer(void **state)
{
    (void)state;
    char *over = text_of(LIMIT + 1);
    struct hookq_producer *p = producer(LIMIT);
    char err[256], id[64];
    struct hookq_event ev = {.type = "big.event", .payload = over, .payload_len = LIMIT + 1};
    assert_true(hookq_produce(p, &ev, id, sizeof(id), err, sizeof(err)) < 0);
    assert_string_equal(err, "payload: 65537 bytes, max 65536");

    /* A batch with one over-size event writes none of them. */
    struct hookq_event evs[3] = {
        {.type = "ok.event", .payload = "{}", .payload_len = 2},
        {.type = "big.event", .payload = over, .payload_len = LIMIT + 1},
        {.type = "ok.event", .payload = "{}", .payload_len = 2},
    };
    char ids[3][64];
    assert_true(hookq_produce_batch(p, evs, 3, ids, err, sizeof(err)) < 0);
    assert_string_equal(err, "event 1: payload: 65537 bytes, max 65536"); /* names the index */
    hookq_producer_free(p);

    /* The CLI, from stdin and from a file: exit 2, one line naming both sizes. */
    char out[512], errs[512];
    const char *args[] = {"produce",   "--redis-url",   W.redis.url, "--type",
                          "big.event", "--max-payload", LIMIT_ARG,   NULL};
    assert_int_equal(hq_test_cli(args, NULL, over, out, sizeof(out), errs, sizeof(errs)), 2);
    assert_string_equal(errs,
                        "hookq produce: payload: stdin has more than 65536 bytes, max 65536\n");

    char path[300], data_arg[310];
    snprintf(path, sizeof(path), "%s/over.json", W.redis.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(over, 1, LIMIT + 1, f), LIMIT + 1);
    fclose(f);
    snprintf(data_arg, sizeof(data_arg), "@%s", path);
    const char *fargs[] = {"produce",       "--redis-url", W.redis.url, "--type", "big.event",
                           "--max-payload", LIMIT_ARG,     "--data",    data_arg, NULL};
    assert_int_equal(hq_test_cli(fargs, NULL, NULL, out, sizeof(out), errs, sizeof(errs)), 2);
    assert_string_equal(errs, "hookq produce: payload: 65537 bytes, max 65536\n");
    unlink(path);

    assert_int_equal(hq_test_cmd_int(W.c, "EXISTS hookq:events"), 0); /* nothing written */
    free(over);
}

static const struct hq_test_request *request_with_id(const char *id)
{
    for (size_t i = 0; i < W.rcv.nreqs; i++) {
        char v[128];
        if (hq_test_request_header(&W.rcv.reqs[i], "webhook-id", v, sizeof(v)) == 0 &&
            strcmp(v, id) == 0)
            return &W.rcv.reqs[i];
    }
    return NULL;
}

static void test_exact_max_delivered_byte_for_byte_over_max_dead_lettered(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    wenv_endpoint_at(&W, "/limits", NULL, 0, &ep);
    const char *extra[] = {"--max-payload", LIMIT_ARG, NULL};
    pid_t pid = wenv_worker(&W, extra, NULL);

    /* Exactly the bound, binary, through the library (msgpack bin). */
    char *exact = binary_of(LIMIT);
    struct hookq_producer *p = producer(LIMIT);
    char err[256];
    struct hookq_event ev = {
        .type = "big.event", .payload = exact, .payload_len = LIMIT, .id = "evt_exact"};
    if (hookq_produce(p, &ev, NULL, 0, err, sizeof(err)) != 0)
        fail_msg("produce exact: %s", err);
    hookq_producer_free(p);

    /* One byte over, in the msgpack form, from a producer whose bound is
     * larger than the worker's (a misconfigured fleet). */
    char *over = binary_of(LIMIT + 1);
    p = producer(LIMIT * 2);
    ev = (struct hookq_event){
        .type = "big.event", .payload = over, .payload_len = LIMIT + 1, .id = "evt_over"};
    if (hookq_produce(p, &ev, NULL, 0, err, sizeof(err)) != 0)
        fail_msg("produce over: %s", err);
    hookq_producer_free(p);

    /* Exactly the bound through the CLI's stdin. */
    char *text = text_of(LIMIT);
    char out[512], errs[512];
    const char *args[] = {"produce",       "--redis-url", W.redis.url, "--type",  "big.event",
                          "--max-payload", LIMIT_ARG,     "--id",      "evt_cli", NULL};
    assert_int_equal(hq_test_cli(args, NULL, text, out, sizeof(out), errs, sizeof(errs)), 0);

    struct count_arg ca = {&W.rcv, "/limits", 2};
    wenv_wait(&W, received_at_least, &ca, 20000, "the two deliveries of the bound's size");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 20000, "every entry acknowledged");

    assert_int_equal(hq_test_receiver_count(&W.rcv), 2);
    const struct hq_test_request *q = request_with_id("evt_exact");
    assert_non_null(q);
    assert_int_equal(q->body_len, (size_t)LIMIT);
    assert_memory_equal(q->body, exact, LIMIT);
    q = request_with_id("evt_cli");
    assert_non_null(q);
    assert_int_equal(q->body_len, (size_t)LIMIT);
    assert_memory_equal(q->body, text, LIMIT);
    assert_null(request_with_id("evt_over"));

    assert_dead_lettered_once("invalid: payload: 65537 bytes, max 65536");

    assert_int_equal(hq_test_kill_wait(pid, SIGTERM, 20000), 0);
    free(exact);
    free(over);
    free(text);
    hq_endpoint_free(&ep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        WENV_TEST(test_over_max_is_refused_by_the_producers, &W),
        WENV_TEST(test_over_max_written_directly_is_dead_lettered_exact_max_delivered, &W),
        WENV_TEST(test_one_byte_over_the_configured_max_is_refused_by_every_producer, &W),
        WENV_TEST(test_exact_max_delivered_byte_for_byte_over_max_dead_lettered, &W),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
