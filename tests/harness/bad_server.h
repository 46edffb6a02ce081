/* Misbehaving HTTP endpoints for the reliability suite: a small raw-socket
 * server on 127.0.0.1 with one thread per connection, each server stuck in one
 * behaviour (hang, slow headers, slow body, reset, refuse, close mid-response,
 * a 1 GiB body, a huge Content-Length, endless headers or 1xx answers), plus a
 * plain "ok" mode that answers 204 with keep-alive and records when each
 * request arrived and its webhook-id (used where a test needs an endpoint
 * that first refuses connections and then comes up on the same port). It
 * owns its sockets and threads and nothing else; it knows no hookq internals.
 * Counters are atomics so a test may read them while the server runs. The
 * harness's libmicrohttpd receiver cannot do any of this: it always speaks
 * correct HTTP.
 *
 * Part of the harness library (bad_server.c); failures use cmocka's assertions. */
#ifndef HQ_TESTS_HARNESS_BAD_SERVER_H
#define HQ_TESTS_HARNESS_BAD_SERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tests/harness/hq_test.h"

enum bs_mode {
    BS_HANG,         /* read the request, never answer */
    BS_SLOW_HEADERS, /* a valid 200 answer, one byte every BS_DRIP_MS */
    BS_SLOW_BODY,    /* headers at once, then the body one byte every BS_DRIP_MS */
    BS_RESET,        /* read the request, then RST (SO_LINGER 0 + close) */
    BS_REFUSE,       /* bound but not listening: every connect is refused */
    BS_CUT_STATUS,   /* close inside the status line ("HTTP/1.1 2") */
    BS_CLOSE_MID,    /* 200 with Content-Length 100, 10 body bytes, close */
    BS_RESET_MID,    /* the same 10 body bytes, then RST: data and error arrive together */
    BS_HUGE_BODY,    /* 200 with a 1 GiB body, streamed until the client leaves */
    BS_HUGE_LENGTH,  /* 200 with Content-Length 10^12, 3 bytes, then stall */
    BS_HUGE_HEADERS, /* 200 followed by header lines without end (up to 1 GiB) */
    BS_ENDLESS_1XX,  /* "100 Continue" interim answers without end (up to 1 GiB) */
    BS_OK,           /* answer 204 (keep-alive) and record the request */
    BS_NMODES
};

extern const char *const bs_mode_names[BS_NMODES];

#define BS_DRIP_MS         400         /* pause between bytes of the slow modes */
#define BS_HUGE_BODY_BYTES (1LL << 30) /* what BS_HUGE_BODY promises and tries to send */
#define BS_MAX_CONNS       1024        /* connections one server takes over its life */
#define BS_MAX_RECORDS     4096        /* requests BS_OK remembers */

struct bs_record {
    int64_t at_ms;       /* unix ms when the request was complete */
    char webhook_id[96]; /* its webhook-id header ("" if none) */
};

struct bs_server;

struct bs_conn {
    struct bs_server *s; /* owner */
    int fd;              /* the accepted socket; closed by the connection thread */
    pthread_t th;
    atomic_int done; /* 1 once the thread stopped touching fd */
};

struct bs_server {
    enum bs_mode mode;
    int lfd;  /* listening (or, for BS_REFUSE, merely bound) socket */
    int port; /* 127.0.0.1:port */
    char url[64];
    pthread_t th; /* accept thread (not for BS_REFUSE before bs_listen) */
    int listening;
    atomic_int stop;
    atomic_int accepted;      /* connections accepted */
    atomic_int open;          /* connections whose thread still runs */
    atomic_int peer_closed;   /* connections the client closed or reset */
    atomic_llong body_sent;   /* body bytes the kernel took (all connections) */
    atomic_llong max_conn_ms; /* longest accept→end of a connection, ms */
    pthread_mutex_t mu;       /* guards conns, nconns and records */
    struct bs_conn *conns[BS_MAX_CONNS];
    int nconns;
    struct bs_record *records;
    size_t nrecords;
};

void bs_record(struct bs_server *s, const char *head);

/* Starts listening (BS_REFUSE servers call it to come up on their port). */
void bs_listen(struct bs_server *s);

/* Binds a fresh port on 127.0.0.1 without listening: connects are refused
 * until bs_listen, which then serves in 'mode' (an endpoint that is down, then
 * comes back on the same port). */
void bs_start_down(struct bs_server *s, enum bs_mode mode);

/* Binds a fresh port on 127.0.0.1 and, except for BS_REFUSE, starts serving. */
void bs_start(struct bs_server *s, enum bs_mode mode);

/* Copies the records BS_OK kept into out (caller frees); returns how many. */
size_t bs_records(struct bs_server *s, struct bs_record **out);

/* Stops accepting, wakes every connection thread and joins them all. */
void bs_stop(struct bs_server *s);

#endif
