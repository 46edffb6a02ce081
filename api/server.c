/* The HTTP server of `hookq api`: libmicrohttpd with an internal thread pool
 * (epoll), one blocking Redis connection per pool thread, bodies read into a
 * buffer capped per route (Content-Length checked before reading; chunked
 * bodies refused with 411), CORS for named origins, optional TLS, and the
 * graceful stop (/readyz 503, delay, quiesce, wait for requests in flight). */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/internal.h"
#include "api/console.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/layout_store.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/redis_conn.h"

#define CONN_LIMIT       256
#define CONN_TIMEOUT_S   65
#define CONN_MEMORY      (32 * 1024)
#define REDIS_TIMEOUT_MS 2000
#define STOP_WAIT_MS     10000

/* ---- This thread's Redis --------------------------------------------------------------- */

static pthread_key_t conn_key;
static pthread_once_t conn_once = PTHREAD_ONCE_INIT;

static void conn_free(void *p)
{
    hq_redis_conn_free(p);
}

static void conn_key_init(void)
{
    (void)pthread_key_create(&conn_key, conn_free);
}

struct hq_redis_conn *hq_api_redis(struct hq_api_req *q, struct hq_err *err)
{
    pthread_once(&conn_once, conn_key_init);
    struct hq_redis_conn *c = pthread_getspecific(conn_key);
    if (!c) {
        c = hq_redis_conn_open(q->api->cfg.redis_url, REDIS_TIMEOUT_MS, err);
        if (c)
            (void)pthread_setspecific(conn_key, c);
    }
    return c;
}

redisContext *hq_api_registry(struct hq_api_req *q, struct hq_err *err)
{
    struct hq_redis_conn *c = hq_api_redis(q, err);
    return c ? hq_redis_conn_node(c, q->api->L.reg_slot, err) : NULL;
}

void hq_api_redis_drop(void)
{
    pthread_once(&conn_once, conn_key_init);
    struct hq_redis_conn *c = pthread_getspecific(conn_key);
    if (c) {
        (void)pthread_setspecific(conn_key, NULL);
        hq_redis_conn_free(c);
    }
}

/* ---- Answers ------------------------------------------------------------------------------ */

/* The request's Origin when --cors-origin lists it, else NULL. */
static const char *cors_origin(struct hq_api_req *q)
{
    const char *list = q->api->cfg.cors_origins;
    const char *o = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Origin");
    if (!list || !*list || !o)
        return NULL;
    size_t n = strlen(o);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if ((len == n && strncmp(p, o, n) == 0) || (len == 1 && *p == '*'))
            return o;
        p += len;
        p += *p == ',';
    }
    return NULL;
}

static enum MHD_Result send_answer(struct hq_api_req *q)
{
    if (q->console) /* the web console's file, with its own headers (CSP) */
        return (enum MHD_Result)hq_console_queue(q->conn, q->console);
    size_t len = q->out.len;
    char *body = hq_buf_steal(&q->out);
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body ? body : (char *)"", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    if (len)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, q->ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (q->retry_after[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, q->retry_after);
    if (q->www_auth)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, q->www_auth);
    const char *origin = cors_origin(q);
    if (origin) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header(r, "Vary", "Origin");
        if (strcmp(q->method, "OPTIONS") == 0) {
            MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE");
            MHD_add_response_header(r, "Access-Control-Allow-Headers",
                                    "Authorization, Content-Type");
            MHD_add_response_header(r, "Access-Control-Max-Age", "600");
        }
    }
    enum MHD_Result ret = MHD_queue_response(q->conn, q->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- Requests ----------------------------------------------------------------------------- */

static void client_addr(struct MHD_Connection *conn, char *out, size_t n)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, n, "-");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    socklen_t len =
        sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    (void)getnameinfo(sa, len, out, (socklen_t)n, NULL, 0, NI_NUMERICHOST);
}

static size_t body_cap(const struct hq_api *a, const struct hq_api_route *r)
{
    /* An event's payload travels as a JSON string: escaping may double it. */
    if (r && r->body == HQ_BODY_EVENTS)
        return (size_t)a->cfg.max_payload * 2 + HQ_API_BODY_MAX;
    return HQ_API_BODY_MAX;
}

static int has_body_method(const char *m)
{
    return strcmp(m, "POST") == 0 || strcmp(m, "PATCH") == 0 || strcmp(m, "PUT") == 0;
}

/* Header checks before any body byte is read; 1 when q is answered. */
static int check_headers(struct hq_api_req *q, size_t cap)
{
    const char *te = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Transfer-Encoding");
    const char *cl = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Content-Length");
    if (te && strcasestr(te, "chunked")) {
        hq_api_problem(q, MHD_HTTP_LENGTH_REQUIRED, "length_required",
                       "body: chunked bodies are not accepted; send Content-Length");
        return 1;
    }
    if (cl) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || !*cl || *end || n > cap) {
            char msg[160];
            snprintf(msg, sizeof(msg), "body: %.24s bytes, at most %zu on this route", cl, cap);
            hq_api_problem(q, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large", msg);
            return 1;
        }
    }
    return 0;
}

static void log_request(const struct hq_api_req *q, int64_t start_us)
{
    enum hq_log_level lv = q->status >= 500 ? HQ_LOG_WARN : HQ_LOG_DEBUG;
    hq_log(lv, "api", "request method=%s path=%.200s status=%u us=%lld key=%s client=%s", q->method,
           q->path, q->status, (long long)(hq_mono_us() - start_us), q->key.id[0] ? q->key.id : "-",
           q->client);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct hq_api *a = cls;
    struct hq_api_req *q = *con_cls;
    if (!q) {
        q = hq_calloc(1, sizeof(*q));
        q->api = a;
        q->conn = conn;
        q->method = method;
        q->path = url;
        hq_buf_init(&q->out, 0);
        client_addr(conn, q->client, sizeof(q->client));
        int known;
        char params[HQ_API_PARAMS_MAX][HQ_API_PARAM_MAX + 1];
        size_t cap = body_cap(a, hq_api_route_find(method, url, params, &known));
        hq_buf_init(&q->body, cap);
        atomic_fetch_add(&a->inflight, 1);
        *con_cls = q;
        if (has_body_method(method) && check_headers(q, cap))
            return send_answer(q);
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!q->answered && !q->body_too_big &&
            hq_buf_append(&q->body, upload_data, *upload_data_size) != 0)
            q->body_too_big = 1;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (q->answered)
        return MHD_YES; /* answered at the headers */
    int64_t start = hq_mono_us();
    if (q->body_too_big) {
        hq_api_problem(q, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large", "body: too large");
    } else if (strcmp(method, "OPTIONS") == 0 && a->cfg.cors_origins && *a->cfg.cors_origins) {
        q->status = cors_origin(q) ? MHD_HTTP_NO_CONTENT : MHD_HTTP_FORBIDDEN;
        q->answered = 1;
    } else {
        hq_api_dispatch(q);
    }
    if (!q->answered)
        hq_api_problem(q, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "handler: no answer");
    log_request(q, start);
    return send_answer(q);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn, (void)toe;
    struct hq_api *a = cls;
    struct hq_api_req *q = *con_cls;
    if (!q)
        return;
    hq_buf_free(&q->body);
    hq_buf_free(&q->out);
    free(q);
    *con_cls = NULL;
    atomic_fetch_sub(&a->inflight, 1);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[300];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\r\n")] = '\0';
    hq_log(HQ_LOG_DEBUG, "api", "mhd: %s", msg);
}

/* ---- Start and stop ------------------------------------------------------------------------ */

/* "host:port", "[v6]:port" or ":port" (all interfaces); IP literals only. */
static int bind_listen(const char *addr, int *fd_out, int *port_out, struct hq_err *err)
{
    char host[128] = "";
    const char *colon = strrchr(addr, ':');
    if (!colon)
        return hq_err_set(err, HQ_EINVAL, "--listen: '%.80s' is not host:port", addr);
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof(host))
        return hq_err_set(err, HQ_EINVAL, "--listen: '%.80s': host too long", addr);
    memcpy(host, addr, hl);
    host[hl] = '\0';
    if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV | AI_NUMERICHOST};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res) != 0 || !res)
        return hq_err_set(err, HQ_EINVAL, "--listen: '%.80s' is not an IP address and port", addr);
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, CONN_LIMIT) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return hq_err_set(err, HQ_EIO, "--listen: cannot listen on %.80s: %s", addr, strerror(e));
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    (void)getsockname(fd, (struct sockaddr *)&ss, &len);
    *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
    return 0;
}

static char *read_file(const char *what, const char *path, struct hq_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        hq_err_set(err, HQ_EIO, "%s: cannot read '%.200s': %s", what, path, strerror(errno));
        return NULL;
    }
    struct hq_buf b;
    hq_buf_init(&b, 1024 * 1024);
    char chunk[4096];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = hq_buf_append(&b, chunk, n);
    fclose(f);
    if (rc != 0 || b.len == 0) {
        hq_buf_free(&b);
        hq_err_set(err, HQ_EINVAL, "%s: '%.200s' is empty or over 1 MiB", what, path);
        return NULL;
    }
    return hq_buf_steal(&b);
}

static int load_layout(struct hq_api *a, struct hq_err *err)
{
    struct hq_redis_conn *c =
        hq_redis_conn_open(a->cfg.redis_url, HQ_REDIS_CONNECT_TIMEOUT_MS, err);
    if (!c)
        return HQ_EREDIS;
    int rc = hq_layout_load(c, a->cfg.prefix, &a->L, err);
    hq_redis_conn_free(c);
    if (rc == 0 && a->L.migrating) {
        hq_layout_free(&a->L);
        return hq_err_set(err, HQ_EAGAIN,
                          "a migration is in progress (hookq migrate); start when it ends");
    }
    return rc;
}

struct hq_api *hq_api_start(const struct hq_api_config *cfg, struct hq_err *err)
{
    if (!!cfg->tls_cert != !!cfg->tls_key) {
        hq_err_set(err, HQ_EINVAL, "--tls-cert and --tls-key: give both or neither");
        return NULL;
    }
    struct hq_api *a = hq_calloc(1, sizeof(*a));
    a->cfg = *cfg;
    a->fd = -1;
    if (cfg->tls_cert) {
        a->tls_cert_pem = read_file("--tls-cert", cfg->tls_cert, err);
        a->tls_key_pem = a->tls_cert_pem ? read_file("--tls-key", cfg->tls_key, err) : NULL;
        if (!a->tls_key_pem)
            goto fail;
    }
    if (load_layout(a, err) != 0)
        goto fail;
    if (bind_listen(cfg->listen, &a->fd, &a->port, err) != 0) {
        hq_layout_free(&a->L);
        goto fail;
    }
    a->rl = hq_api_ratelimit_new();
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC;
    if (a->tls_cert_pem)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem tls[] = {
        {MHD_OPTION_HTTPS_MEM_KEY, 0, a->tls_key_pem},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, a->tls_cert_pem},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_OptionItem none[] = {{MHD_OPTION_END, 0, NULL}};
    a->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, a, MHD_OPTION_LISTEN_SOCKET, a->fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)CONN_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY, MHD_OPTION_STRICT_FOR_CLIENT,
        (int)1, MHD_OPTION_NOTIFY_COMPLETED, on_completed, a, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, NULL, MHD_OPTION_ARRAY, a->tls_cert_pem ? tls : none, MHD_OPTION_END);
    if (!a->mhd) {
        hq_err_set(err, HQ_EIO, "--listen: cannot start the HTTP server on %s%s", cfg->listen,
                   a->tls_cert_pem ? " (are the TLS certificate and key PEM and a pair?)" : "");
        close(a->fd);
        hq_api_ratelimit_free(a->rl);
        hq_layout_free(&a->L);
        goto fail;
    }
    return a;
fail:
    free(a->tls_cert_pem);
    free(a->tls_key_pem);
    free(a);
    return NULL;
}

int hq_api_port(const struct hq_api *a)
{
    return a->port;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void hq_api_stop(struct hq_api *a)
{
    if (!a)
        return;
    atomic_store(&a->draining, 1);
    hq_log(HQ_LOG_INFO, "api", "draining: /readyz answers 503 for %lld ms, then stopping",
           a->cfg.shutdown_delay_ms);
    sleep_ms((long)a->cfg.shutdown_delay_ms);
    MHD_socket fd = MHD_quiesce_daemon(a->mhd);
    int64_t until = hq_mono_ms() + STOP_WAIT_MS;
    while (atomic_load(&a->inflight) > 0 && hq_mono_ms() < until)
        sleep_ms(10);
    MHD_stop_daemon(a->mhd);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    hq_api_ratelimit_free(a->rl);
    hq_layout_free(&a->L);
    free(a->tls_cert_pem);
    free(a->tls_key_pem);
    free(a);
}
