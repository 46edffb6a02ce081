/* See tests/harness/bad_server.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/harness/bad_server.h"

const char *const bs_mode_names[BS_NMODES] = {
    "hang",         "slow_headers", "slow_body", "reset",     "refuse",
    "cut_status",   "close_mid",    "reset_mid", "huge_body", "huge_length",
    "huge_headers", "endless_1xx",  "ok"};

static void bs_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Sends all of p unless the peer leaves or we stop; returns bytes sent. */
static size_t bs_send(struct bs_server *s, int fd, const char *p, size_t n)
{
    size_t off = 0;
    while (off < n && !atomic_load(&s->stop)) {
        ssize_t k = send(fd, p + off, n - off, MSG_NOSIGNAL);
        if (k > 0) {
            off += (size_t)k;
            continue;
        }
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            continue; /* SO_SNDTIMEO expired: look at the stop flag again */
        atomic_fetch_add(&s->peer_closed, 1);
        break;
    }
    return off;
}

/* recv, retried on EAGAIN/EINTR while the server runs: the bytes read (> 0), 0
 * once the server is stopping, -1 when the peer closed or on an error. */
static ssize_t bs_recv(struct bs_server *s, int fd, char *buf, size_t n)
{
    while (!atomic_load(&s->stop)) {
        ssize_t k = recv(fd, buf, n, 0);
        if (k > 0)
            return k;
        if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return -1;
    }
    return 0;
}

/* Waits until the peer closes (1) or we stop (0), discarding what it sends. */
static int bs_wait_peer(struct bs_server *s, int fd)
{
    char buf[4096];
    for (;;) {
        ssize_t k = bs_recv(s, fd, buf, sizeof(buf));
        if (k == 0)
            return 0;
        if (k < 0) {
            atomic_fetch_add(&s->peer_closed, 1);
            return 1;
        }
    }
}

/* Reads one request (head, then Content-Length bytes of body) into buf
 * (NUL-terminated head); returns the head's length or -1. */
static ssize_t bs_read_request(struct bs_server *s, int fd, char *buf, size_t n)
{
    size_t got = 0;
    char *end = NULL;
    while (!end && got + 1 < n) {
        ssize_t k = bs_recv(s, fd, buf + got, n - 1 - got);
        if (k < 0)
            return -1;
        if (k == 0)
            break;
        got += (size_t)k;
        buf[got] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    if (!end)
        return -1;
    size_t head = (size_t)(end - buf) + 4;
    long long want = 0;
    for (char *h = buf; h < end; h = strstr(h, "\r\n") + 2) {
        if (strncasecmp(h, "content-length:", 15) == 0)
            want = atoll(h + 15);
    }
    long long have = (long long)(got - head);
    char sink[16384];
    while (have < want) {
        ssize_t k = bs_recv(s, fd, sink, sizeof(sink));
        if (k < 0)
            return -1;
        if (k == 0)
            break;
        have += k;
    }
    buf[head] = '\0';
    return (ssize_t)head;
}

void bs_record(struct bs_server *s, const char *head)
{
    struct bs_record r = {.at_ms = hq_test_now_ms()};
    const char *h = strcasestr(head, "\r\nwebhook-id:");
    if (h) {
        h += 13;
        while (*h == ' ')
            h++;
        size_t l = strcspn(h, "\r\n");
        snprintf(r.webhook_id, sizeof(r.webhook_id), "%.*s", (int)l, h);
    }
    pthread_mutex_lock(&s->mu);
    if (s->nrecords < BS_MAX_RECORDS)
        s->records[s->nrecords++] = r;
    pthread_mutex_unlock(&s->mu);
}

static void *bs_serve(void *arg)
{
    struct bs_conn *c = arg;
    struct bs_server *s = c->s;
    int fd = c->fd;
    int64_t t0 = hq_test_now_ms();
    /* Short socket timeouts only so that the loops notice the stop flag. */
    struct timeval tv = {0, 200 * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    char req[65536];
    int keep_alive = s->mode == BS_OK;
    do {
        if (bs_read_request(s, fd, req, sizeof(req)) < 0) {
            if (s->mode != BS_OK)
                atomic_fetch_add(&s->peer_closed, 1);
            break;
        }
        static const char ok2[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                  "Content-Length: 2\r\n\r\nok";
        switch (s->mode) {
        case BS_HANG: bs_wait_peer(s, fd); break;
        case BS_SLOW_HEADERS:
            for (size_t i = 0; i < sizeof(ok2) - 1 && !atomic_load(&s->stop); i++) {
                if (bs_send(s, fd, &ok2[i], 1) != 1)
                    break;
                bs_sleep_ms(BS_DRIP_MS);
            }
            break;
        case BS_SLOW_BODY: {
            static const char h[] = "HTTP/1.1 200 OK\r\nContent-Length: 64\r\n\r\n";
            if (bs_send(s, fd, h, sizeof(h) - 1) != sizeof(h) - 1)
                break;
            for (int i = 0; i < 64 && !atomic_load(&s->stop); i++) {
                if (bs_send(s, fd, "x", 1) != 1)
                    break;
                atomic_fetch_add(&s->body_sent, 1);
                bs_sleep_ms(BS_DRIP_MS);
            }
            break;
        }
        case BS_RESET: {
            struct linger lg = {1, 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            break;
        }
        case BS_CUT_STATUS: bs_send(s, fd, ok2, 10); break;
        case BS_CLOSE_MID:
        case BS_RESET_MID: {
            static const char h[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
            bs_send(s, fd, h, sizeof(h) - 1);
            if (s->mode == BS_RESET_MID) {
                /* Both segments are queued at the worker's socket before its
                 * loop wakes: it sees readable data and the error at once. */
                struct linger lg = {1, 0};
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            }
            break;
        }
        case BS_HUGE_BODY: {
            char h[128];
            int hl = snprintf(h, sizeof(h), "HTTP/1.1 200 OK\r\nContent-Length: %lld\r\n\r\n",
                              BS_HUGE_BODY_BYTES);
            if (bs_send(s, fd, h, (size_t)hl) != (size_t)hl)
                break;
            static char chunk[65536];
            memset(chunk, 'b', sizeof(chunk));
            long long left = BS_HUGE_BODY_BYTES;
            while (left > 0 && !atomic_load(&s->stop)) {
                size_t want = left < (long long)sizeof(chunk) ? (size_t)left : sizeof(chunk);
                size_t k = bs_send(s, fd, chunk, want);
                atomic_fetch_add(&s->body_sent, (long long)k);
                left -= (long long)k;
                if (k < want)
                    break; /* the client left (counted by bs_send) or we stop */
            }
            break;
        }
        case BS_HUGE_LENGTH: {
            static const char h[] = "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\nabc";
            if (bs_send(s, fd, h, sizeof(h) - 1) == sizeof(h) - 1)
                bs_wait_peer(s, fd);
            break;
        }
        case BS_HUGE_HEADERS:
        case BS_ENDLESS_1XX: {
            static const char first[] = "HTTP/1.1 200 OK\r\n";
            static char line[4096];
            size_t ll;
            if (s->mode == BS_HUGE_HEADERS) {
                if (bs_send(s, fd, first, sizeof(first) - 1) != sizeof(first) - 1)
                    break;
                memset(line, 'h', sizeof(line));
                memcpy(line, "X-Junk: ", 8);
                memcpy(line + sizeof(line) - 2, "\r\n", 2);
                ll = sizeof(line);
            } else {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                memcpy(line, cont, sizeof(cont) - 1);
                ll = sizeof(cont) - 1;
            }
            long long left = BS_HUGE_BODY_BYTES;
            while (left > 0 && !atomic_load(&s->stop)) {
                size_t k = bs_send(s, fd, line, ll);
                atomic_fetch_add(&s->body_sent, (long long)k);
                left -= (long long)k;
                if (k < ll)
                    break;
            }
            break;
        }
        case BS_OK: {
            bs_record(s, req);
            static const char h[] = "HTTP/1.1 204 No Content\r\n\r\n";
            keep_alive = bs_send(s, fd, h, sizeof(h) - 1) == sizeof(h) - 1;
            break;
        }
        default: break;
        }
    } while (keep_alive && !atomic_load(&s->stop));
    int64_t ms = hq_test_now_ms() - t0;
    long long prev = atomic_load(&s->max_conn_ms);
    while (ms > prev && !atomic_compare_exchange_weak(&s->max_conn_ms, &prev, ms))
        ;
    /* Under the lock: bs_stop must never shut down a number already reused. */
    pthread_mutex_lock(&s->mu);
    close(fd);
    atomic_store(&c->done, 1);
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_sub(&s->open, 1);
    return NULL;
}

static void *bs_accept_loop(void *arg)
{
    struct bs_server *s = arg;
    while (!atomic_load(&s->stop)) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return NULL; /* the listening socket was shut down */
        }
        pthread_mutex_lock(&s->mu);
        if (s->nconns == BS_MAX_CONNS || atomic_load(&s->stop)) {
            pthread_mutex_unlock(&s->mu);
            close(fd);
            continue;
        }
        struct bs_conn *c = calloc(1, sizeof(*c));
        assert_non_null(c);
        c->s = s;
        c->fd = fd;
        s->conns[s->nconns++] = c;
        atomic_fetch_add(&s->accepted, 1);
        atomic_fetch_add(&s->open, 1);
        assert_int_equal(pthread_create(&c->th, NULL, bs_serve, c), 0);
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

void bs_listen(struct bs_server *s)
{
    assert_false(s->listening);
    assert_int_equal(listen(s->lfd, 128), 0);
    s->listening = 1;
    assert_int_equal(pthread_create(&s->th, NULL, bs_accept_loop, s), 0);
}

void bs_start_down(struct bs_server *s, enum bs_mode mode)
{
    memset(s, 0, sizeof(*s));
    s->mode = mode;
    pthread_mutex_init(&s->mu, NULL);
    s->records = calloc(BS_MAX_RECORDS, sizeof(*s->records));
    assert_non_null(s->records);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &len), 0);
    s->port = ntohs(a.sin_port);
    snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
    /* A bound socket that does not listen answers every SYN with RST, and
     * keeps the port ours, so nobody else can start serving on it. */
}

void bs_start(struct bs_server *s, enum bs_mode mode)
{
    bs_start_down(s, mode);
    if (mode != BS_REFUSE)
        bs_listen(s);
}

size_t bs_records(struct bs_server *s, struct bs_record **out)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->nrecords;
    *out = calloc(n + 1, sizeof(**out));
    assert_non_null(*out);
    memcpy(*out, s->records, n * sizeof(**out));
    pthread_mutex_unlock(&s->mu);
    return n;
}

void bs_stop(struct bs_server *s)
{
    atomic_store(&s->stop, 1);
    shutdown(s->lfd, SHUT_RDWR);
    if (s->listening)
        pthread_join(s->th, NULL);
    close(s->lfd);
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->nconns; i++) {
        if (!atomic_load(&s->conns[i]->done))
            shutdown(s->conns[i]->fd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->nconns; i++) {
        pthread_join(s->conns[i]->th, NULL);
        free(s->conns[i]);
    }
    s->nconns = 0;
    free(s->records);
    s->records = NULL;
    pthread_mutex_destroy(&s->mu);
}
