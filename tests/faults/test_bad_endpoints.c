/* Scenario 9 (part): endpoints that misbehave at the socket level — answer
 * the headers one byte at a time, reset the connection, close in the middle
 * of the response, or promise a huge Content-Length and stall. Every attempt
 * ends within its timeout (plus a margin for the loop), is recorded as a
 * failure of the right class, and a healthy endpoint keeps flowing meanwhile.
 * (Hang, refused and huge bodies are covered by the worker's integration
 * tests.) A small raw-socket server per behaviour, on 127.0.0.1. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "tests/integration/worker_env.h"

static struct wenv W;

enum mode { SLOW_HEADERS, RESET, CLOSE_MID, HUGE_LENGTH, NMODES };
static const char *mode_names[] = {"slow_headers", "reset", "close_mid", "huge_length"};

struct bad {
    enum mode mode;
    int lfd;
    int port;
    pthread_t th;
    atomic_int stop;
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

struct conn {
    struct bad *b;
    int fd;
};

static void *serve_conn(void *arg)
{
    struct conn *c = arg;
    struct bad *b = c->b;
    int fd = c->fd;
    free(c);
    char buf[65536];
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ssize_t got = recv(fd, buf, sizeof(buf), 0); /* the request (or most of it) */
    (void)got;
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 2\r\n\r\nok";
    switch (b->mode) {
    case SLOW_HEADERS:
        for (size_t i = 0; i < sizeof(head) - 1 && !atomic_load(&b->stop); i++) {
            if (send(fd, &head[i], 1, MSG_NOSIGNAL) != 1)
                break;
            sleep_ms(500);
        }
        break;
    case RESET: {
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        break;
    }
    case CLOSE_MID:
        /* Cut inside the status line ("HTTP/1.1 2"): no answer at all. (Cut after
         * a complete "200 OK" status line, curl and the worker count the 200.) */
        send(fd, head, 10, MSG_NOSIGNAL);
        break;
    case HUGE_LENGTH: {
        static const char h[] = "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\nabc";
        send(fd, h, sizeof(h) - 1, MSG_NOSIGNAL);
        while (!atomic_load(&b->stop) && recv(fd, buf, sizeof(buf), 0) != 0)
            ; /* stall until the client gives up (recv returns 0) or we stop */
        break;
    }
    default: break;
    }
    close(fd);
    return NULL;
}

static void *accept_loop(void *arg)
{
    struct bad *b = arg;
    for (;;) {
        int fd = accept(b->lfd, NULL, NULL);
        if (fd < 0) {
            if (atomic_load(&b->stop))
                return NULL;
            continue;
        }
        struct conn *c = malloc(sizeof(*c));
        c->b = b;
        c->fd = fd;
        pthread_t t;
        pthread_create(&t, NULL, serve_conn, c);
        pthread_detach(t);
    }
}

static void bad_start(struct bad *b, enum mode m)
{
    memset(b, 0, sizeof(*b));
    b->mode = m;
    b->lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(b->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(b->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(b->lfd, 64), 0);
    socklen_t len = sizeof(a);
    getsockname(b->lfd, (struct sockaddr *)&a, &len);
    b->port = ntohs(a.sin_port);
    pthread_create(&b->th, NULL, accept_loop, b);
}

static void bad_stop(struct bad *b)
{
    atomic_store(&b->stop, 1);
    shutdown(b->lfd, SHUT_RDWR);
    close(b->lfd);
    pthread_join(b->th, NULL);
    sleep_ms(600); /* let detached connection threads see the stop flag */
}

struct att_arg {
    int n;
    char ids[8][64];
};

static int all_recorded(void *arg)
{
    struct att_arg *a = arg;
    for (int i = 0; i < a->n; i++) {
        if (hq_test_cmd_int(W.c, "LLEN hookq:att:%s", a->ids[i]) < 1)
            return 0;
    }
    return 1;
}

static void test_misbehaving_endpoints_end_within_timeout_healthy_flows(void **state)
{
    (void)state;
    struct bad bads[NMODES];
    struct hq_endpoint eps[NMODES], good;
    for (int m = 0; m < NMODES; m++) {
        bad_start(&bads[m], (enum mode)m);
        char url[128], filter[64];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/%s", bads[m].port, mode_names[m]);
        snprintf(filter, sizeof(filter), "bad.%s", mode_names[m]);
        wenv_endpoint(&W, url, filter, NULL, 0, &eps[m]);
    }
    char url[128];
    snprintf(url, sizeof(url), "%s/good", W.rcv.url);
    wenv_endpoint(&W, url, "good.*", NULL, 0, &good);
    const char *extra[] = {"--timeout", "3s", "--connect-timeout", "1s", NULL};
    pid_t pid = wenv_worker(&W, extra, NULL);

    struct att_arg aa = {.n = NMODES};
    for (int m = 0; m < NMODES; m++) {
        char type[64];
        snprintf(type, sizeof(type), "bad.%s", mode_names[m]);
        snprintf(aa.ids[m], sizeof(aa.ids[m]), "evt_bad_%d", m);
        wenv_produce(&W, type, "{}", aa.ids[m], NULL, NULL, 0);
    }
    /* The healthy endpoint flows while the others misbehave. */
    for (int i = 0; i < 200; i++)
        wenv_produce(&W, "good.x", "{}", NULL, NULL, NULL, 0);
    struct count_arg ca = {&W.rcv, "/good", 200};
    wenv_wait(&W, received_at_least, &ca, 2500, "200 healthy deliveries before any timeout");
    wenv_wait(&W, all_recorded, &aa, 15000, "an attempt record per misbehaving endpoint");

    static const char *want[NMODES] = {"timeout: ", "network: ", "network: ", "timeout: "};
    for (int m = 0; m < NMODES; m++) {
        redisReply *r = hq_test_cmd(W.c, "LRANGE hookq:att:%s 0 0", aa.ids[m]);
        assert_int_equal(r->elements, 1);
        const char *rec = r->element[0]->str;
        print_message("%s: %.240s\n", mode_names[m], rec);
        char needle[64];
        snprintf(needle, sizeof(needle), "\"error\":\"%s", want[m]);
        assert_non_null(strstr(rec, needle));
        assert_non_null(strstr(rec, "\"outcome\":\"retry\""));
        const char *d = strstr(rec, "\"duration_ms\":");
        assert_non_null(d);
        long dur = atol(d + 14);
        assert_true(dur <= 3000 + 1000); /* within --timeout, plus the loop's margin */
        freeReplyObject(r);
    }
    assert_int_equal(hq_test_kill_wait(pid, SIGTERM, 20000), 0);
    for (int m = 0; m < NMODES; m++) {
        bad_stop(&bads[m]);
        hq_endpoint_free(&eps[m]);
    }
    hq_endpoint_free(&good);
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
        cmocka_unit_test_setup_teardown(test_misbehaving_endpoints_end_within_timeout_healthy_flows,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
