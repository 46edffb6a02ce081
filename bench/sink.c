/* hq_sink: the HTTP(S) receiver of the "real-shaped traffic" benchmark.
 *
 * The worker under test delivers to many endpoints at once, some slow, over
 * keep-alive connections, maybe over TLS. nginx with `return 204` is one
 * endpoint that answers at once; this program is thousands of endpoints (one
 * port each, so the worker keeps one connection pool per endpoint) that answer
 * after a configurable, optionally random, delay. It shares the 2-core machine
 * with the worker being measured, so it has to be cheap: one libuv loop per
 * process, no per-request allocation on the common path, memory BIOs for TLS.
 *
 * usage:
 *   hq_sink --port-base B --ports N [--procs K] [--tls CERT_PEM,KEY_PEM]
 *           [--delay MS] [--delay-p99 MS] [--slow-every K2 --slow-delay MS2]
 *           [--log FILE] [--status FILE] [--ready FILE] [--fail]
 *
 * Listens on 127.0.0.1:B .. B+N-1. With --procs K, child i serves the ports
 * whose index is i modulo K (one process cannot hold 10,000 ports and 10,000
 * connections under the 20,000 fd limit). Every request gets
 * "HTTP/1.1 204 No Content" after its delay: --slow-delay on ports whose index
 * i has i % K2 == K2-1, else --delay, or with --delay-p99 a lognormal draw with
 * median --delay and that 99th percentile. --log records "<receipt µs> <webhook-id
 * or ->" per request, --status rewrites one counters line every 500 ms, --ready is
 * created once every port listens; with K > 1 each is FILE.<i> per child.
 * --fail answers "500 Internal Server Error" (empty body) instead of 204: a
 * failing endpoint for bench/noisy.sh.
 * SIGTERM/SIGINT: stop, flush, exit 0. Bad options exit 2, unbindable ports 1. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define SINK_PORTS_MAX  20000
#define SINK_PROCS_MAX  64
#define SINK_HDR_MAX    (16 * 1024)
#define SINK_BODY_MAX   (2 * 1024 * 1024)
#define SINK_DELAY_MAX  3600000u /* one hour: anything longer is a typo */
#define SINK_PIPE_MAX   64       /* queued responses before reading pauses */
#define SINK_WQ_MAX     (256 * 1024)
#define SINK_LOG_FLUSH  (1024 * 1024)
#define SINK_STATUS_MS  500
#define SINK_ID_MAX     256 /* webhook-id bytes kept in the log */
#define SINK_READ_CHUNK (64 * 1024)

static const char RESP_KEEP[] = "HTTP/1.1 204 No Content\r\n\r\n";
static const char RESP_CLOSE[] = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
/* An HTTP/1.0 client assumes close unless told otherwise. */
static const char RESP_KEEP10[] = "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n";
enum { R_KEEP, R_CLOSE, R_KEEP10 };
/* The same three with --fail: a failing endpoint (bench/noisy.sh). */
static const char RESP_KEEP_500[] =
    "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
static const char RESP_CLOSE_500[] =
    "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
static const char RESP_KEEP10_500[] =
    "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n";

struct opts {
    unsigned port_base, ports, procs;
    unsigned delay, delay_p99, slow_every, slow_delay;
    bool has_p99, has_slow_every, has_slow_delay, fail;
    const char *tls, *log, *status, *ready;
};

struct listener {
    uv_tcp_t tcp;
    unsigned idx;
};

/* One queued response. Responses leave strictly in request order, so only the
 * head's deadline matters and one timer per connection is enough. */
struct pend {
    uint64_t deadline;
    uint8_t resp;
    uint8_t body_done;
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct conn *prev, *next;
    const struct listener *l;
    SSL *ssl;
    BIO *rbio, *wbio;
    char *buf; /* partial headers only; NULL while none are pending */
    uint32_t blen;
    uint32_t body_left;
    struct pend *q;
    uint32_t qcap, qhead, qlen;
    uint8_t refs, closing, reading, eof, no_more, shutting, hs_done;
};

struct wreq {
    uv_write_t req;
    char data[];
};

static struct opts O;
static uv_loop_t *loop;
static SSL_CTX *ssl_ctx;
static struct listener *listeners;
static unsigned nlisteners;
static struct conn conns; /* list head of open connections */
static uv_timer_t status_timer;
static uv_signal_t sig_term, sig_int;
static bool stopping;
static double lognorm_sigma;
static uint64_t rng_state;
static char *status_path, *ready_path, *log_path;
static struct {
    char *buf;
    size_t len;
    int fd;
} logbuf = {NULL, 0, -1};
static struct {
    uint64_t requests, accepted, tls_handshakes;
    uint32_t conns_open, conns_max;
} st;

/* libuv reads and SSL_read run to completion before the next one starts, so one
 * buffer each serves every connection; idle connections hold no buffer. */
static char rbuf[SINK_READ_CHUNK];
static char plain[16 * 1024];
static char outb[16 * 1024];

static void conn_close(struct conn *c);
static void conn_progress(struct conn *c);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);
static void on_timer(uv_timer_t *t);

static void usage(FILE *f)
{
    fprintf(f, "usage: hq_sink --port-base B --ports N [--procs K] [--tls CERT_PEM,KEY_PEM]\n"
               "               [--delay MS] [--delay-p99 MS] [--slow-every K2 --slow-delay MS2]\n"
               "               [--log FILE] [--status FILE] [--ready FILE] [--fail]\n");
}

static _Noreturn void bad_opt(const char *opt, const char *val, const char *why)
{
    fprintf(stderr, "hq_sink: bad value '%s' for %s: %s\n", val, opt, why);
    usage(stderr);
    exit(2);
}

static unsigned parse_uint(const char *opt, const char *val, unsigned lo, unsigned hi)
{
    char *end;
    errno = 0;
    if (val[0] < '0' || val[0] > '9')
        bad_opt(opt, val, "not a number");
    unsigned long v = strtoul(val, &end, 10);
    if (errno || *end)
        bad_opt(opt, val, "not a number");
    if (v < lo || v > hi) {
        char why[64];
        snprintf(why, sizeof why, "must be %u..%u", lo, hi);
        bad_opt(opt, val, why);
    }
    return (unsigned)v;
}

static void parse_opts(int argc, char **argv)
{
    static const struct option lo[] = {{"port-base", required_argument, NULL, 'b'},
                                       {"ports", required_argument, NULL, 'n'},
                                       {"procs", required_argument, NULL, 'k'},
                                       {"tls", required_argument, NULL, 't'},
                                       {"delay", required_argument, NULL, 'd'},
                                       {"delay-p99", required_argument, NULL, 'p'},
                                       {"slow-every", required_argument, NULL, 'e'},
                                       {"slow-delay", required_argument, NULL, 's'},
                                       {"log", required_argument, NULL, 'l'},
                                       {"status", required_argument, NULL, 'S'},
                                       {"ready", required_argument, NULL, 'r'},
                                       {"fail", no_argument, NULL, 'F'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    bool has_base = false, has_ports = false;
    int ch;
    O.procs = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
        /* The option as typed: argv[optind - 1] is its value when given apart. */
        char name[32] = "?";
        for (const struct option *o = lo; o->name; o++)
            if (o->val == ch || (ch == ':' && o->val == optopt))
                snprintf(name, sizeof name, "--%s", o->name);
        switch (ch) {
        case 'b': O.port_base = parse_uint(name, optarg, 1, 65535), has_base = true; break;
        case 'n': O.ports = parse_uint(name, optarg, 1, SINK_PORTS_MAX), has_ports = true; break;
        case 'k': O.procs = parse_uint(name, optarg, 1, SINK_PROCS_MAX); break;
        case 't': O.tls = optarg; break;
        case 'd': O.delay = parse_uint(name, optarg, 0, SINK_DELAY_MAX); break;
        case 'p':
            O.delay_p99 = parse_uint(name, optarg, 1, SINK_DELAY_MAX), O.has_p99 = true;
            break;
        case 'e':
            O.slow_every = parse_uint(name, optarg, 1, SINK_PORTS_MAX), O.has_slow_every = true;
            break;
        case 's':
            O.slow_delay = parse_uint(name, optarg, 0, SINK_DELAY_MAX), O.has_slow_delay = true;
            break;
        case 'l': O.log = optarg; break;
        case 'S': O.status = optarg; break;
        case 'r': O.ready = optarg; break;
        case 'F': O.fail = true; break;
        case 'h': usage(stdout); exit(0);
        case ':':
            fprintf(stderr, "hq_sink: option %s needs a value\n", name);
            usage(stderr);
            exit(2);
        default:
            fprintf(stderr, "hq_sink: unknown option '%s'\n", argv[optind - 1]);
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "hq_sink: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        exit(2);
    }
    if (!has_base || !has_ports) {
        fprintf(stderr, "hq_sink: %s is required\n", has_base ? "--ports" : "--port-base");
        usage(stderr);
        exit(2);
    }
    if (O.port_base + O.ports - 1 > 65535) {
        char v[16];
        snprintf(v, sizeof v, "%u", O.ports);
        bad_opt("--ports", v, "port-base + ports - 1 exceeds 65535");
    }
    if (O.procs > O.ports) {
        char v[16];
        snprintf(v, sizeof v, "%u", O.procs);
        bad_opt("--procs", v, "more processes than ports");
    }
    if (O.has_p99) {
        char v[16];
        snprintf(v, sizeof v, "%u", O.delay_p99);
        if (O.delay == 0)
            bad_opt("--delay-p99", v, "needs --delay > 0 (the median)");
        if (O.delay_p99 < O.delay)
            bad_opt("--delay-p99", v, "must be >= --delay");
        lognorm_sigma = log((double)O.delay_p99 / O.delay) / 2.3263;
    }
    if (O.has_slow_every != O.has_slow_delay) {
        fprintf(stderr, "hq_sink: --slow-every and --slow-delay go together\n");
        usage(stderr);
        exit(2);
    }
    if (O.tls && (!strchr(O.tls, ',') || O.tls[0] == ',' || strchr(O.tls, ',')[1] == '\0'))
        bad_opt("--tls", O.tls, "expected CERT_PEM,KEY_PEM");
}

/* ---- delays ---- */

static uint64_t rng_next(void)
{
    /* xorshift64*: plenty for drawing delays, and no libc state shared */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static double rng_unit(void)
{
    /* (0, 1]: log() below must never see 0 */
    return ((rng_next() >> 11) + 1) * (1.0 / 9007199254740992.0);
}

static unsigned delay_for(const struct listener *l)
{
    if (O.has_slow_every && l->idx % O.slow_every == O.slow_every - 1)
        return O.slow_delay;
    if (!O.has_p99)
        return O.delay;
    double z = sqrt(-2.0 * log(rng_unit())) * cos(6.283185307179586 * rng_unit());
    double ms = O.delay * exp(lognorm_sigma * z) + 0.5;
    return ms >= SINK_DELAY_MAX ? SINK_DELAY_MAX : (unsigned)ms;
}

/* ---- log and status files ---- */

static void log_flush(void)
{
    size_t off = 0;
    while (off < logbuf.len) {
        ssize_t n = write(logbuf.fd, logbuf.buf + off, logbuf.len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "hq_sink: writing %s: %s\n", log_path, strerror(errno));
            break; /* losing log lines beats blocking the benchmark */
        }
        off += (size_t)n;
    }
    logbuf.len = 0;
}

static void log_request(const char *id, size_t idlen)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (idlen == 0)
        id = "-", idlen = 1;
    if (idlen > SINK_ID_MAX)
        idlen = SINK_ID_MAX;
    int n = snprintf(logbuf.buf + logbuf.len, 32, "%llu ",
                     (unsigned long long)ts.tv_sec * 1000000ULL +
                         (unsigned long long)ts.tv_nsec / 1000);
    logbuf.len += (size_t)n;
    memcpy(logbuf.buf + logbuf.len, id, idlen);
    logbuf.len += idlen;
    logbuf.buf[logbuf.len++] = '\n';
    if (logbuf.len >= SINK_LOG_FLUSH)
        log_flush();
}

static void write_status(void)
{
    char tmp[4096], line[256];
    snprintf(tmp, sizeof tmp, "%s.tmp", status_path);
    int n = snprintf(line, sizeof line,
                     "requests=%llu conns_open=%u conns_max=%u accepted=%llu tls_handshakes=%llu\n",
                     (unsigned long long)st.requests, st.conns_open, st.conns_max,
                     (unsigned long long)st.accepted, (unsigned long long)st.tls_handshakes);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    bool ok = write(fd, line, (size_t)n) == n;
    if (close(fd) == 0 && ok)
        rename(tmp, status_path);
}

static void on_status_timer(uv_timer_t *t)
{
    (void)t;
    write_status();
}

/* ---- writing ---- */

static void on_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    free(req);
    if (status < 0)
        conn_close(c);
    else if (!c->closing)
        conn_progress(c); /* the write queue shrank: reading may resume */
}

/* Sends bytes on the socket, copying only what the kernel would not take now. */
static void raw_send(struct conn *c, const char *data, size_t len)
{
    size_t done = 0;
    if (c->closing || len == 0)
        return;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n >= 0)
            done = (size_t)n;
        else if (n != UV_EAGAIN) {
            conn_close(c);
            return;
        }
    }
    if (done == len)
        return;
    struct wreq *w = malloc(sizeof *w + (len - done));
    if (!w) {
        conn_close(c);
        return;
    }
    memcpy(w->data, data + done, len - done);
    w->req.data = c;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)(len - done));
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
        free(w);
        conn_close(c);
    }
}

static void tls_flush(struct conn *c)
{
    int n;
    while ((n = BIO_read(c->wbio, outb, sizeof outb)) > 0)
        raw_send(c, outb, (size_t)n);
}

static void conn_send(struct conn *c, const char *data, size_t len)
{
    if (!c->ssl) {
        raw_send(c, data, len);
        return;
    }
    if (len > 0 && SSL_write(c->ssl, data, (int)len) <= 0) {
        conn_close(c);
        return;
    }
    tls_flush(c);
}

/* ---- connections ---- */

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->refs > 0)
        return;
    SSL_free(c->ssl); /* frees both BIOs */
    free(c->buf);
    free(c->q);
    free(c);
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->prev->next = c->next;
    c->next->prev = c->prev;
    st.conns_open--;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    struct conn *c = req->data;
    free(req);
    conn_close(c);
}

/* The last response is queued: the FIN goes after it, then the handle closes. */
static void conn_shutdown(struct conn *c)
{
    if (c->shutting || c->closing)
        return;
    c->shutting = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
    uv_timer_stop(&c->timer);
    if (c->ssl && SSL_is_init_finished(c->ssl)) {
        SSL_shutdown(c->ssl);
        tls_flush(c);
        if (c->closing)
            return;
    }
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req) {
        conn_close(c);
        return;
    }
    req->data = c;
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        free(req);
        conn_close(c);
    }
}

static bool can_parse(const struct conn *c)
{
    return !c->closing && !c->shutting && !c->no_more && c->qlen < SINK_PIPE_MAX;
}

static bool can_read(const struct conn *c)
{
    return can_parse(c) && !c->eof &&
           uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp) < SINK_WQ_MAX;
}

static int enqueue(struct conn *c, uint8_t resp, unsigned delay, bool body_done)
{
    if (c->qlen == c->qcap) {
        uint32_t ncap = c->qcap ? c->qcap * 2 : 4;
        struct pend *nq = malloc(ncap * sizeof *nq);
        if (!nq)
            return -1;
        for (uint32_t i = 0; i < c->qlen; i++)
            nq[i] = c->q[(c->qhead + i) % c->qcap];
        free(c->q);
        c->q = nq, c->qcap = ncap, c->qhead = 0;
    }
    struct pend *p = &c->q[(c->qhead + c->qlen++) % c->qcap];
    p->deadline = uv_now(loop) + delay;
    p->resp = resp;
    p->body_done = body_done;
    return 0;
}

static bool token_in(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    for (size_t i = 0; i < n;) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
            return true;
    }
    return false;
}

static bool name_is(const char *n, size_t nl, const char *want)
{
    return nl == strlen(want) && strncasecmp(n, want, nl) == 0;
}

/* Handles one request's header block h[0..len) ending in CRLF CRLF: logs it,
 * queues its response and arms the body skip. -1: close the connection. */
static int on_request(struct conn *c, const char *h, size_t len)
{
    const char *end = h + len - 2; /* the blank line's CRLF */
    const char *eol = memchr(h, '\r', len);
    const char *sp1 = memchr(h, ' ', (size_t)(eol - h));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp2 || sp1 == h || eol - sp2 != 9 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
        (sp2[8] != '0' && sp2[8] != '1') || eol[1] != '\n')
        return -1;
    bool http10 = sp2[8] == '0', conn_close_tok = false, conn_keep = false, has_cl = false;
    unsigned long cl = 0;
    const char *id = NULL;
    size_t idlen = 0;
    for (const char *p = eol + 2; p < end;) {
        const char *le = memchr(p, '\r', (size_t)(end - p) + 1);
        if (!le || le[1] != '\n')
            return -1;
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (!colon || colon == p || *p == ' ' || *p == '\t')
            return -1; /* no name, or obsolete line folding */
        size_t nl = (size_t)(colon - p);
        const char *v = colon + 1, *ve = le;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        size_t vl = (size_t)(ve - v);
        if (name_is(p, nl, "content-length")) {
            unsigned long x = 0;
            if (vl == 0 || vl > 8)
                return -1;
            for (size_t i = 0; i < vl; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return -1;
                x = x * 10 + (unsigned long)(v[i] - '0');
            }
            if (x > SINK_BODY_MAX || (has_cl && x != cl))
                return -1;
            cl = x, has_cl = true;
        } else if (name_is(p, nl, "transfer-encoding")) {
            return -1; /* chunked bodies are not needed; framing we cannot follow ends here */
        } else if (name_is(p, nl, "connection")) {
            conn_close_tok |= token_in(v, vl, "close");
            conn_keep |= token_in(v, vl, "keep-alive");
        } else if (name_is(p, nl, "webhook-id")) {
            id = v, idlen = vl;
        }
        p = le + 2;
    }
    if (logbuf.buf)
        log_request(id, idlen);
    uint8_t resp = R_KEEP;
    if (conn_close_tok || (http10 && !conn_keep))
        resp = R_CLOSE;
    else if (http10)
        resp = R_KEEP10;
    if (enqueue(c, resp, delay_for(c->l), cl == 0) < 0)
        return -1;
    c->body_left = (uint32_t)cl;
    if (resp == R_CLOSE)
        c->no_more = 1; /* anything after a closing request is ignored */
    return 0;
}

static void body_done(struct conn *c)
{
    c->q[(c->qhead + c->qlen - 1) % c->qcap].body_done = 1;
}

/* Consumes plaintext: skips bodies, parses header blocks, queues responses.
 * Only an incomplete header block is copied, into the connection's own buffer. */
static void feed(struct conn *c, const char *data, size_t len)
{
    while (len > 0 && !c->closing && !c->no_more) {
        if (c->body_left > 0) {
            size_t k = len < c->body_left ? len : c->body_left;
            data += k, len -= k;
            c->body_left -= (uint32_t)k;
            if (c->body_left == 0)
                body_done(c);
            continue;
        }
        if (c->blen > 0) {
            /* Headers split across reads: look for the end in old + new bytes. */
            size_t room = SINK_HDR_MAX - c->blen;
            size_t k = len < room ? len : room;
            size_t old = c->blen;
            memcpy(c->buf + c->blen, data, k);
            c->blen += (uint32_t)k;
            size_t from = old >= 3 ? old - 3 : 0;
            char *e = memmem(c->buf + from, c->blen - from, "\r\n\r\n", 4);
            if (!e) {
                if (c->blen >= SINK_HDR_MAX)
                    conn_close(c);
                return;
            }
            size_t hl = (size_t)(e + 4 - c->buf);
            c->blen = 0;
            if (on_request(c, c->buf, hl) < 0) {
                conn_close(c);
                return;
            }
            data += hl - old, len -= hl - old;
            free(c->buf), c->buf = NULL;
            continue;
        }
        char *e = memmem(data, len < SINK_HDR_MAX ? len : SINK_HDR_MAX, "\r\n\r\n", 4);
        if (!e) {
            if (len >= SINK_HDR_MAX) {
                conn_close(c);
                return;
            }
            if (!c->buf && !(c->buf = malloc(SINK_HDR_MAX))) {
                conn_close(c);
                return;
            }
            memcpy(c->buf, data, len);
            c->blen = (uint32_t)len;
            return;
        }
        size_t hl = (size_t)(e + 4 - data);
        if (on_request(c, data, hl) < 0) {
            conn_close(c);
            return;
        }
        data += hl, len -= hl;
    }
}

/* Sends every response whose delay has passed, in order, in one write. */
static void send_ready(struct conn *c)
{
    uint64_t now = uv_now(loop);
    char out[SINK_PIPE_MAX * 8];
    size_t n = 0;
    bool closing = false;
    while (c->qlen > 0 && !c->closing) {
        struct pend *p = &c->q[c->qhead];
        if (!p->body_done || p->deadline > now)
            break;
        const char *r = p->resp == R_KEEP    ? (O.fail ? RESP_KEEP_500 : RESP_KEEP)
                        : p->resp == R_CLOSE ? (O.fail ? RESP_CLOSE_500 : RESP_CLOSE)
                                             : (O.fail ? RESP_KEEP10_500 : RESP_KEEP10);
        size_t rl = strlen(r);
        if (n + rl > sizeof out) {
            conn_send(c, out, n);
            n = 0;
        }
        memcpy(out + n, r, rl);
        n += rl;
        c->qhead = (c->qhead + 1) % c->qcap;
        c->qlen--;
        st.requests++;
        if (p->resp == R_CLOSE)
            closing = true;
    }
    conn_send(c, out, n);
    if (c->closing)
        return;
    if (closing) {
        c->qlen = 0;
        conn_shutdown(c);
    } else if (c->qlen > 0 && c->q[c->qhead].body_done) {
        uv_timer_start(&c->timer, on_timer, c->q[c->qhead].deadline - now, 0);
    }
}

/* The handshake (certificate out, client hello in) grew both memory BIOs
 * past what requests need; fresh ones save ~2.4 KiB per idle connection. */
static void tls_fresh_bios(struct conn *c)
{
    BIO *r = BIO_new(BIO_s_mem()), *w = BIO_new(BIO_s_mem());
    if (!r || !w) {
        BIO_free(r), BIO_free(w);
        return;
    }
    BIO_set_mem_eof_return(r, -1);
    SSL_set0_rbio(c->ssl, r);
    SSL_set0_wbio(c->ssl, w);
    c->rbio = r, c->wbio = w;
    c->hs_done = 2;
}

/* Reads plaintext out of OpenSSL while requests may still be queued. */
static void tls_pump(struct conn *c)
{
    while (can_parse(c)) {
        int r = SSL_read(c->ssl, plain, sizeof plain);
        if (!c->hs_done && SSL_is_init_finished(c->ssl)) {
            c->hs_done = 1;
            st.tls_handshakes++;
        }
        if (r > 0) {
            feed(c, plain, (size_t)r);
            continue;
        }
        int err = SSL_get_error(c->ssl, r);
        if (err == SSL_ERROR_WANT_READ)
            break;
        if (err == SSL_ERROR_ZERO_RETURN) {
            c->eof = 1; /* close_notify: answer what is queued, then close */
            break;
        }
        ERR_clear_error();
        conn_close(c);
        return;
    }
    tls_flush(c); /* handshake records, session tickets */
    if (c->hs_done == 1 && !c->closing && BIO_ctrl_pending(c->rbio) == 0 &&
        BIO_ctrl_pending(c->wbio) == 0)
        tls_fresh_bios(c);
}

static bool tls_buffered(struct conn *c)
{
    return SSL_pending(c->ssl) > 0 || BIO_ctrl_pending(c->rbio) > 0;
}

/* After any event: send what is due, parse what a full queue held back, and
 * read from the socket only while the queue and the write queue are short. */
static void conn_progress(struct conn *c)
{
    for (;;) {
        send_ready(c);
        if (c->closing || c->shutting)
            return;
        if (!c->ssl || !can_parse(c) || !tls_buffered(c))
            break;
        tls_pump(c);
    }
    if ((c->eof || c->no_more) && c->qlen == 0) {
        conn_shutdown(c);
        return;
    }
    bool want = can_read(c);
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
            conn_close(c);
            return;
        }
        c->reading = 1;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

static void on_timer(uv_timer_t *t)
{
    conn_progress(t->data);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)h, (void)hint;
    *b = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = s->data;
    /* One loop turn over thousands of connections can take milliseconds; delays
     * count from this read, not from the turn's start (a coarse clock: cheap). */
    uv_update_time(loop);
    if (n == UV_EOF) {
        c->eof = 1;
        if (c->body_left > 0 || c->blen > 0) {
            conn_close(c); /* a request cut short gets no answer */
            return;
        }
    } else if (n < 0) {
        conn_close(c);
        return;
    } else if (n > 0 && c->ssl) {
        if (BIO_write(c->rbio, b->base, (int)n) != (int)n) {
            conn_close(c);
            return;
        }
        tls_pump(c);
    } else if (n > 0) {
        feed(c, b->base, (size_t)n);
    }
    if (!c->closing)
        conn_progress(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0 || stopping)
        return;
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->l = server->data;
    uv_tcp_init(loop, &c->tcp);
    uv_timer_init(loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->refs = 2;
    c->next = conns.next, c->prev = &conns;
    conns.next->prev = c, conns.next = c;
    if (++st.conns_open > st.conns_max)
        st.conns_max = st.conns_open;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    st.accepted++;
    uv_tcp_nodelay(&c->tcp, 1);
    if (ssl_ctx) {
        c->ssl = SSL_new(ssl_ctx);
        c->rbio = BIO_new(BIO_s_mem());
        c->wbio = BIO_new(BIO_s_mem());
        if (!c->ssl || !c->rbio || !c->wbio) {
            BIO_free(c->rbio), BIO_free(c->wbio);
            conn_close(c);
            return;
        }
        /* An empty input BIO means "wait for more", not end of stream. */
        BIO_set_mem_eof_return(c->rbio, -1);
        SSL_set_bio(c->ssl, c->rbio, c->wbio);
        SSL_set_accept_state(c->ssl);
    }
    conn_progress(c);
}

/* ---- TLS ---- */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
    (void)ssl, (void)arg;
    for (unsigned i = 0; i < inlen; i += 1u + in[i]) {
        if (in[i] == 8 && i + 9 <= inlen && memcmp(in + i + 1, "http/1.1", 8) == 0) {
            *out = in + i + 1;
            *outlen = 8;
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static SSL_CTX *tls_setup(const char *spec)
{
    char cert[4096];
    const char *comma = strchr(spec, ',');
    size_t cl = (size_t)(comma - spec);
    if (cl >= sizeof cert)
        bad_opt("--tls", spec, "path too long");
    memcpy(cert, spec, cl);
    cert[cl] = '\0';
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, comma + 1, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char err[256];
        ERR_error_string_n(ERR_get_error(), err, sizeof err);
        fprintf(stderr, "hq_sink: --tls %s: %s\n", spec, err);
        exit(1);
    }
    /* Thousands of idle TLS connections: drop the record buffers between reads. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    return ctx;
}

/* ---- process life ---- */

static void on_listener_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s, (void)signum;
    if (stopping)
        return;
    stopping = true;
    for (unsigned i = 0; i < nlisteners; i++)
        uv_close((uv_handle_t *)&listeners[i].tcp, on_listener_closed);
    while (conns.next != &conns)
        conn_close(conns.next);
    if (uv_is_active((uv_handle_t *)&status_timer))
        uv_close((uv_handle_t *)&status_timer, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
}

static char *per_proc_path(const char *base, unsigned i)
{
    if (!base)
        return NULL;
    size_t n = strlen(base) + 16;
    char *p = malloc(n);
    if (!p) {
        fprintf(stderr, "hq_sink: out of memory\n");
        exit(1);
    }
    if (O.procs > 1)
        snprintf(p, n, "%s.%u", base, i);
    else
        snprintf(p, n, "%s", base);
    return p;
}

/* Serves the ports with index % procs == which; returns the exit code. */
static int serve(unsigned which)
{
    loop = uv_default_loop();
    conns.next = conns.prev = &conns;
    rng_state = ((uint64_t)time(NULL) << 20) ^ ((uint64_t)getpid() * 0x9E3779B97F4A7C15ULL) ^ which;
    if (rng_state == 0)
        rng_state = 1;
    status_path = per_proc_path(O.status, which);
    ready_path = per_proc_path(O.ready, which);
    log_path = per_proc_path(O.log, which);
    if (log_path) {
        logbuf.fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
        logbuf.buf = malloc(SINK_LOG_FLUSH + SINK_ID_MAX + 64);
        if (logbuf.fd < 0 || !logbuf.buf) {
            fprintf(stderr, "hq_sink: cannot open %s: %s\n", log_path, strerror(errno));
            return 1;
        }
    }
    listeners = calloc(O.ports / O.procs + 1, sizeof *listeners);
    if (!listeners) {
        fprintf(stderr, "hq_sink: out of memory\n");
        return 1;
    }
    int rc = 0;
    for (unsigned idx = which; idx < O.ports; idx += O.procs) {
        struct listener *l = &listeners[nlisteners];
        unsigned port = O.port_base + idx;
        struct sockaddr_in sa;
        l->idx = idx;
        uv_tcp_init(loop, &l->tcp);
        l->tcp.data = l;
        nlisteners++;
        uv_ip4_addr("127.0.0.1", (int)port, &sa);
        int r = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&sa, 0);
        if (r == 0)
            r = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection);
        if (r < 0) {
            fprintf(stderr, "hq_sink: cannot listen on 127.0.0.1:%u: %s\n", port, uv_strerror(r));
            rc = 1;
            break;
        }
    }
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    if (rc) {
        on_signal(NULL, 0); /* close what was opened, for a clean exit */
        uv_run(loop, UV_RUN_DEFAULT);
    } else {
        uv_signal_start(&sig_term, on_signal, SIGTERM);
        uv_signal_start(&sig_int, on_signal, SIGINT);
        if (status_path) {
            uv_timer_init(loop, &status_timer);
            uv_timer_start(&status_timer, on_status_timer, SINK_STATUS_MS, SINK_STATUS_MS);
            write_status();
        }
        if (ready_path) {
            int fd = open(ready_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0) {
                fprintf(stderr, "hq_sink: cannot create %s: %s\n", ready_path, strerror(errno));
                on_signal(NULL, 0);
                rc = 1;
            } else {
                close(fd);
            }
        }
        uv_run(loop, UV_RUN_DEFAULT);
        if (status_path)
            write_status();
    }
    if (logbuf.buf) {
        log_flush();
        close(logbuf.fd);
        free(logbuf.buf);
    }
    uv_loop_close(loop);
    free(listeners);
    free(status_path), free(ready_path), free(log_path);
    SSL_CTX_free(ssl_ctx);
    return rc;
}

/* The parent only forwards signals and reaps: any child that dies on its own
 * (a port it could not bind) takes the others down and makes the exit 1. */
static int supervise(pid_t *pids, unsigned n, const sigset_t *set)
{
    unsigned alive = n;
    bool stop = false;
    int rc = 0;
    while (alive > 0) {
        int sig = sigwaitinfo(set, NULL);
        if (sig < 0)
            continue;
        if ((sig == SIGTERM || sig == SIGINT) && !stop) {
            stop = true;
            for (unsigned i = 0; i < n; i++)
                if (pids[i] > 0)
                    kill(pids[i], sig);
        }
        pid_t p;
        int ws;
        while ((p = waitpid(-1, &ws, WNOHANG)) > 0) {
            for (unsigned i = 0; i < n; i++) {
                if (pids[i] != p)
                    continue;
                pids[i] = -1;
                alive--;
                /* After a stop, dying of the forwarded signal (before the
                 * child's handler was installed) is as clean as exiting 0. */
                bool clean = WIFEXITED(ws) ? WEXITSTATUS(ws) == 0
                                           : WTERMSIG(ws) == SIGTERM || WTERMSIG(ws) == SIGINT;
                if (!stop || !clean)
                    rc = 1;
                if (!stop) {
                    stop = true;
                    for (unsigned j = 0; j < n; j++)
                        if (pids[j] > 0)
                            kill(pids[j], SIGTERM);
                }
            }
        }
    }
    return rc;
}

int main(int argc, char **argv)
{
    parse_opts(argc, argv);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    if (O.tls)
        ssl_ctx = tls_setup(O.tls); /* once, so a bad certificate is reported once */
    if (O.procs == 1)
        return serve(0);

    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old);
    pid_t pids[SINK_PROCS_MAX];
    for (unsigned i = 0; i < O.procs; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            /* A parent killed with SIGKILL must not leave ports held. */
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() == 1)
                _exit(1);
            sigprocmask(SIG_SETMASK, &old, NULL);
            _exit(serve(i));
        }
        if (pids[i] < 0) {
            fprintf(stderr, "hq_sink: fork: %s\n", strerror(errno));
            for (unsigned j = 0; j < i; j++)
                kill(pids[j], SIGTERM);
            for (unsigned j = 0; j < i; j++)
                waitpid(pids[j], NULL, 0);
            return 1;
        }
    }
    int rc = supervise(pids, O.procs, &set);
    SSL_CTX_free(ssl_ctx);
    return rc;
}
