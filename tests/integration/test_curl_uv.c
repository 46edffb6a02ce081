/* The curl <-> libuv binding (worker/curl_uv.c) against real HTTP receivers on
 * loopback: parallel transfers, the last transfer timing out (the multi-uv
 * reaping bug), refused connections, keep-alive reuse, and closing with
 * transfers in progress (also from inside done) leaving the loop empty. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "worker/curl_uv.h"
#include "tests/harness/hq_test.h"

struct fx;

/* One transfer and what done saw. */
struct xfer {
    struct fx *f;
    CURL *easy;
    char url[160];
    size_t got;      /* body bytes received */
    size_t want;     /* body bytes expected */
    int done;        /* done calls */
    CURLcode result; /* from done */
    long code;       /* CURLINFO_RESPONSE_CODE in done */
    long connects;   /* CURLINFO_NUM_CONNECTS summed over re-adds */
    int repeat;      /* re-add this many more times from done */
};

struct fx {
    uv_loop_t loop;
    struct hq_test_receiver rc;
    struct hq_curl_uv *cu;
    int done_count;
    int closed;
    int close_in_done; /* close from inside the first done */
};

static void on_closed(void *arg)
{
    ((struct fx *)arg)->closed++;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    struct xfer *x = arg;
    x->got += size * n;
    return size * n;
}

static void xfer_setup(struct fx *f, struct xfer *x, const char *url, long timeout_ms)
{
    x->f = f;
    if (!x->easy)
        x->easy = curl_easy_init();
    assert_non_null(x->easy);
    snprintf(x->url, sizeof(x->url), "%s", url);
    hq_curl_uv_prepare_easy(f->cu, x->easy);
    curl_easy_setopt(x->easy, CURLOPT_URL, x->url);
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
}

static void on_done(CURL *easy, CURLcode result, void *arg)
{
    struct fx *f = arg;
    struct xfer *x = NULL;
    assert_int_equal(curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x), CURLE_OK);
    assert_ptr_equal(x->easy, easy);
    x->done++;
    x->result = result;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &x->code);
    long n = 0;
    curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &n);
    x->connects += n;
    f->done_count++;
    if (f->close_in_done) {
        hq_curl_uv_close(f->cu, on_closed, f);
        return;
    }
    if (x->repeat > 0) {
        /* Recycle the handle: connections live in the multi's cache. */
        x->repeat--;
        char url[160];
        snprintf(url, sizeof(url), "%s", x->url);
        curl_easy_reset(easy);
        xfer_setup(f, x, url, 5000);
        assert_int_equal(hq_curl_uv_add(f->cu, easy, 0), 0);
    }
}

static int setup(void **state)
{
    static struct fx f;
    memset(&f, 0, sizeof(f));
    assert_int_equal(uv_loop_init(&f.loop), 0);
    hq_test_receiver_start(&f.rc);
    f.cu = hq_curl_uv_new(&f.loop, 3, on_done, &f); /* shards: transfers spread by key */
    assert_non_null(f.cu);
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
    if (!f->closed) {
        hq_curl_uv_close(f->cu, on_closed, f);
        assert_true(hq_test_run_until(&f->loop, is_closed, f, 5000));
    }
    assert_int_equal(f->closed, 1);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    hq_test_receiver_stop(&f->rc);
    return 0;
}

struct count_arg {
    struct fx *f;
    int n;
};

static int done_reaches(void *arg)
{
    struct count_arg *c = arg;
    return c->f->done_count >= c->n;
}

static void test_parallel_transfers_complete_with_correct_results(void **state)
{
    struct fx *f = *state;
    enum { N = 200 };
    struct xfer *x = calloc(N, sizeof(*x));
    for (int i = 0; i < N; i++) {
        char url[160];
        x[i].want = (size_t)i * 37 + 1;
        snprintf(url, sizeof(url), "%s/big/%zu", f->rc.url, x[i].want);
        xfer_setup(f, &x[i], url, 20000);
        assert_int_equal(hq_curl_uv_add(f->cu, x[i].easy, (uint32_t)i), 0);
    }
    assert_int_equal(hq_curl_uv_running(f->cu), N);
    struct count_arg ca = {f, N};
    assert_true(hq_test_run_until(&f->loop, done_reaches, &ca, 60000));
    for (int i = 0; i < N; i++) {
        assert_int_equal(x[i].done, 1);
        assert_int_equal(x[i].result, CURLE_OK);
        assert_int_equal(x[i].code, 200);
        assert_int_equal(x[i].got, x[i].want);
    }
    assert_int_equal(hq_curl_uv_running(f->cu), 0);
    assert_int_equal(hq_test_receiver_count(&f->rc), N);
    for (int i = 0; i < N; i++)
        curl_easy_cleanup(x[i].easy);
    free(x);
}

static curl_socket_t count_open(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)purpose;
    ++*(int *)arg;
    return socket(a->family, a->socktype, a->protocol);
}

/* curl asks for a 0 ms timeout when a transfer is added. The binding runs it in
 * the same loop turn (check phase), not on a timer a millisecond later: one
 * non-blocking turn right after the add has opened the transfer's socket. */
static void test_an_added_transfer_starts_in_the_same_loop_turn(void **state)
{
    struct fx *f = *state;
    struct xfer x = {0};
    int opened = 0;
    xfer_setup(f, &x, f->rc.url, 5000);
    curl_easy_setopt(x.easy, CURLOPT_OPENSOCKETFUNCTION, count_open);
    curl_easy_setopt(x.easy, CURLOPT_OPENSOCKETDATA, &opened);
    /* Start at the beginning of a millisecond of the loop's clock, so that a
     * 1 ms timer started by the add is not yet due in the turn below. */
    while (uv_hrtime() % 1000000 > 100000)
        ;
    uv_update_time(&f->loop);
    assert_int_equal(hq_curl_uv_add(f->cu, x.easy, 1), 0);
    assert_int_equal(opened, 0); /* not from inside the add */
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(opened, 1);
    struct count_arg ca = {f, 1};
    assert_true(hq_test_run_until(&f->loop, done_reaches, &ca, 10000));
    assert_int_equal(x.result, CURLE_OK);
    assert_int_equal(x.code, 204); /* the receiver's default answer */
    curl_easy_cleanup(x.easy);
}

static void test_last_transfer_timing_out_is_reported(void **state)
{
    struct fx *f = *state;
    struct xfer fast = {0}, hang = {0};
    char url[160];
    snprintf(url, sizeof(url), "%s/s/200", f->rc.url);
    xfer_setup(f, &fast, url, 5000);
    snprintf(url, sizeof(url), "%s/hang", f->rc.url);
    xfer_setup(f, &hang, url, 300);
    assert_int_equal(hq_curl_uv_add(f->cu, fast.easy, 0), 0);
    assert_int_equal(hq_curl_uv_add(f->cu, hang.easy, 1), 0);
    uv_update_time(&f->loop);
    uint64_t t0 = uv_now(&f->loop);
    struct count_arg ca = {f, 2};
    /* Nothing else is in flight once the fast one is done: only the timer path
     * can deliver the timeout, and only if it reaps after socket_action. */
    assert_true(hq_test_run_until(&f->loop, done_reaches, &ca, 5000));
    assert_int_equal(fast.result, CURLE_OK);
    assert_int_equal(fast.code, 200);
    assert_int_equal(hang.done, 1);
    assert_int_equal(hang.result, CURLE_OPERATION_TIMEDOUT);
    assert_true(uv_now(&f->loop) - t0 >= 300);
    assert_int_equal(hq_curl_uv_running(f->cu), 0);
    curl_easy_cleanup(fast.easy);
    curl_easy_cleanup(hang.easy);
}

static void test_connection_refused_is_reported(void **state)
{
    struct fx *f = *state;
    struct xfer x = {0};
    char url[160];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", hq_test_free_port());
    xfer_setup(f, &x, url, 5000);
    assert_int_equal(hq_curl_uv_add(f->cu, x.easy, 1), 0);
    struct count_arg ca = {f, 1};
    assert_true(hq_test_run_until(&f->loop, done_reaches, &ca, 5000));
    assert_int_equal(x.done, 1);
    assert_int_equal(x.result, CURLE_COULDNT_CONNECT);
    curl_easy_cleanup(x.easy);
}

static void test_sequential_requests_reuse_connections(void **state)
{
    struct fx *f = *state;
    enum { N = 200 };
    struct xfer x = {0};
    char url[160];
    snprintf(url, sizeof(url), "%s/s/204", f->rc.url);
    xfer_setup(f, &x, url, 5000);
    x.repeat = N - 1;
    assert_int_equal(hq_curl_uv_add(f->cu, x.easy, 1), 0);
    struct count_arg ca = {f, N};
    assert_true(hq_test_run_until(&f->loop, done_reaches, &ca, 30000));
    assert_int_equal(x.done, N);
    assert_int_equal(x.result, CURLE_OK);
    assert_int_equal(x.code, 204);
    assert_int_equal(hq_test_receiver_count(&f->rc), N);
    print_message("new connections for %d sequential requests: %ld\n", N, x.connects);
    assert_true(x.connects >= 1);
    assert_true(x.connects <= 3);
    curl_easy_cleanup(x.easy);
}

static int receiver_holds(void *arg)
{
    struct count_arg *c = arg;
    pthread_mutex_lock(&c->f->rc.mu);
    int n = c->f->rc.in_flight;
    pthread_mutex_unlock(&c->f->rc.mu);
    return n >= c->n;
}

static void test_close_with_transfers_in_progress_leaves_loop_empty(void **state)
{
    struct fx *f = *state;
    enum { N = 10 };
    struct xfer x[N];
    memset(x, 0, sizeof(x));
    char url[160];
    snprintf(url, sizeof(url), "%s/hang", f->rc.url);
    for (int i = 0; i < N; i++) {
        xfer_setup(f, &x[i], url, 60000);
        assert_int_equal(hq_curl_uv_add(f->cu, x[i].easy, (uint32_t)i), 0);
    }
    struct count_arg ca = {f, N};
    assert_true(hq_test_run_until(&f->loop, receiver_holds, &ca, 10000));
    hq_curl_uv_close(f->cu, on_closed, f);
    assert_true(hq_test_run_until(&f->loop, is_closed, f, 5000));
    assert_int_equal(f->done_count, 0); /* aborted without done */
    assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT), 0);
    for (int i = 0; i < N; i++)
        curl_easy_cleanup(x[i].easy);
}

static void test_close_from_inside_done_is_deferred_safely(void **state)
{
    struct fx *f = *state;
    enum { N = 5 };
    struct xfer x[N];
    memset(x, 0, sizeof(x));
    char url[160];
    for (int i = 0; i < N; i++) {
        snprintf(url, sizeof(url), "%s/%s", f->rc.url, i == 0 ? "s/204" : "hang");
        xfer_setup(f, &x[i], url, 60000);
        assert_int_equal(hq_curl_uv_add(f->cu, x[i].easy, (uint32_t)i), 0);
    }
    f->close_in_done = 1;
    assert_true(hq_test_run_until(&f->loop, is_closed, f, 10000));
    assert_int_equal(f->done_count, 1);
    assert_int_equal(x[0].result, CURLE_OK);
    assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT), 0);
    for (int i = 0; i < N; i++)
        curl_easy_cleanup(x[i].easy);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parallel_transfers_complete_with_correct_results,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_added_transfer_starts_in_the_same_loop_turn, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_last_transfer_timing_out_is_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused_is_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequential_requests_reuse_connections, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_with_transfers_in_progress_leaves_loop_empty,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_from_inside_done_is_deferred_safely, setup,
                                        teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
