/* The demo receiver of `hookq up` (see demo_receiver.h): owns its
 * libmicrohttpd daemon, the decoded keys of its two routes and the per-id
 * attempt numbering of the failing route. Verification itself is
 * common/sign.c; this file only gathers the request and reports. Everything
 * it prints from a request is validated first: a request may carry anything. */
#include "cli/demo_receiver.h"

#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/limits.h"
#include "common/sign.h"

static const char *const route_paths[HQ_DEMO_ROUTES] = {"/demo", "/demo-failing"};

struct seen_id {
    char id[HQ_ID_MAX + 1]; /* webhook-id ("" = free slot) */
    int attempts;           /* requests seen with it on the failing route */
};

struct hq_demo_receiver {
    struct MHD_Daemon *mhd; /* owned */
    int port;               /* bound port on 127.0.0.1 */
    FILE *out;              /* borrowed: where delivery lines go */
    pthread_mutex_t mu;     /* guards every field below (MHD thread vs. the caller) */
    struct hq_sign_key keys[HQ_DEMO_ROUTES][2]; /* secret; wiped on replace and stop */
    int nkeys[HQ_DEMO_ROUTES];
    struct seen_id seen[HQ_DEMO_IDS_TRACKED]; /* ring of failing-route ids */
    int seen_next;                            /* next ring slot to reuse */
    struct hq_demo_stats stats;
};

/* One request's body, collected across calls (MHD's req_cls). */
struct req {
    struct hq_buf body;
    int too_big; /* the body passed HQ_DEMO_BODY_MAX: answered 413 */
};

/* ---- Small pure helpers ----------------------------------------------------------- */

/* 1 when s[0..n) is non-empty, short enough, and only has [A-Za-z0-9_.:-]. */
static int printable_token(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

/* Finds "type":"<t>" in a JSON body (demo-grade: the payloads `up` produces
 * carry the type, Standard Webhooks style). Writes "?" when absent or odd. */
static void body_type(const char *body, size_t len, char *out, size_t n)
{
    snprintf(out, n, "?");
    const char *k = memmem(body, len, "\"type\"", 6);
    if (!k)
        return;
    const char *end = body + len;
    const char *p = k + 6;
    while (p < end && (*p == ' ' || *p == ':'))
        p++;
    if (p >= end || *p != '"')
        return;
    const char *v = ++p;
    while (p < end && *p != '"')
        p++;
    if (p < end && printable_token(v, (size_t)(p - v), HQ_TYPE_MAX))
        snprintf(out, n, "%.*s", (int)(p - v), v);
}

/* ---- Request handling ------------------------------------------------------------------- */

/* Verifies the request with each key of the route; writes the verdict
 * ("valid (key1+key2)", "INVALID (reason)") into v. Returns 1 when valid. */
static int verify(struct hq_demo_receiver *r, enum hq_demo_route route, const char *id,
                  const char *ts_s, const char *sig, const struct hq_buf *body, char *v, size_t n)
{
    if (!id || !ts_s || !sig) {
        snprintf(v, n, "INVALID (missing %s header)",
                 !id     ? "webhook-id"
                 : !ts_s ? "webhook-timestamp"
                         : "webhook-signature");
        return 0;
    }
    char *endp = NULL;
    long long ts = strtoll(ts_s, &endp, 10);
    if (endp == ts_s || *endp != '\0') {
        snprintf(v, n, "INVALID (webhook-timestamp is not a number)");
        return 0;
    }
    struct hq_sign_key keys[2];
    pthread_mutex_lock(&r->mu);
    int nkeys = r->nkeys[route];
    memcpy(keys, r->keys[route], sizeof(keys));
    pthread_mutex_unlock(&r->mu);
    if (nkeys == 0) {
        snprintf(v, n, "INVALID (no keys known for this route yet)");
        return 0;
    }
    int64_t now = (int64_t)time(NULL);
    int ok[2] = {0, 0};
    struct hq_err e = {0};
    for (int i = 0; i < nkeys; i++) {
        struct hq_err ei = {0};
        ok[i] = hq_sign_verify(&keys[i], id, ts, body->p ? body->p : "", body->len, sig, now,
                               HQ_DEMO_TOLERANCE_S, &ei) == 0;
        if (!ok[i] && e.code == 0)
            e = ei;
        hq_sign_key_wipe(&keys[i]);
    }
    if (ok[0] && ok[1])
        snprintf(v, n, "valid (key1+key2)");
    else if (ok[0] || ok[1])
        snprintf(v, n, "valid (key%d)", ok[0] ? 1 : 2);
    else
        snprintf(v, n, "INVALID (%s)", e.msg);
    return ok[0] || ok[1];
}

/* Numbers the attempts of an id on the failing route (ring of recent ids). */
static int count_attempt(struct hq_demo_receiver *r, const char *id)
{
    pthread_mutex_lock(&r->mu);
    int attempts = 0;
    for (int i = 0; i < HQ_DEMO_IDS_TRACKED && !attempts; i++) {
        if (strcmp(r->seen[i].id, id) == 0)
            attempts = ++r->seen[i].attempts;
    }
    if (!attempts) {
        struct seen_id *s = &r->seen[r->seen_next];
        r->seen_next = (r->seen_next + 1) % HQ_DEMO_IDS_TRACKED;
        snprintf(s->id, sizeof(s->id), "%s", id);
        attempts = s->attempts = 1;
    }
    pthread_mutex_unlock(&r->mu);
    return attempts;
}

static enum MHD_Result answer_status(struct MHD_Connection *conn, unsigned status)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result deliver(struct hq_demo_receiver *r, struct MHD_Connection *conn,
                               enum hq_demo_route route, struct req *q)
{
    const char *id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "webhook-id");
    const char *ts = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "webhook-timestamp");
    const char *sig = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "webhook-signature");
    char verdict[320];
    int valid = verify(r, route, id, ts, sig, &q->body, verdict, sizeof(verdict));
    char type[HQ_TYPE_MAX + 1];
    body_type(q->body.p ? q->body.p : "", q->body.len, type, sizeof(type));
    const char *shown_id = id && printable_token(id, strlen(id), HQ_ID_MAX) ? id : "(invalid)";

    pthread_mutex_lock(&r->mu);
    r->stats.received[route]++;
    if (valid)
        r->stats.valid++;
    else
        r->stats.invalid++;
    pthread_mutex_unlock(&r->mu);

    if (route == HQ_DEMO_FAILING) {
        int attempt = count_attempt(r, shown_id);
        fprintf(
            r->out,
            "received %s id=%s signature=%s %zu bytes -> 503 (demo-failing always fails, attempt %d)\n",
            type, shown_id, verdict, q->body.len, attempt);
        fflush(r->out);
        return answer_status(conn, MHD_HTTP_SERVICE_UNAVAILABLE);
    }
    if (valid)
        fprintf(r->out, "received %s id=%s signature=%s %zu bytes\n", type, shown_id, verdict,
                q->body.len);
    else
        fprintf(r->out, "received %s id=%s signature=%s %zu bytes -> 401\n", type, shown_id,
                verdict, q->body.len);
    fflush(r->out);
    return answer_status(conn, valid ? MHD_HTTP_NO_CONTENT : MHD_HTTP_UNAUTHORIZED);
}

static enum MHD_Result on_http_request(void *cls, struct MHD_Connection *conn, const char *url,
                                       const char *method, const char *version,
                                       const char *upload_data, size_t *upload_data_size,
                                       void **req_cls)
{
    struct hq_demo_receiver *r = cls;
    (void)version;
    struct req *q = *req_cls;
    if (!q) {
        q = hq_calloc(1, sizeof(*q));
        hq_buf_init(&q->body, HQ_DEMO_BODY_MAX);
        *req_cls = q;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        if (!q->too_big && hq_buf_append(&q->body, upload_data, *upload_data_size) != 0)
            q->too_big = 1;
        *upload_data_size = 0;
        return MHD_YES;
    }
    int route = -1;
    for (int i = 0; i < HQ_DEMO_ROUTES; i++) {
        if (strcmp(url, route_paths[i]) == 0)
            route = i;
    }
    if (route < 0)
        return answer_status(conn, MHD_HTTP_NOT_FOUND);
    if (strcmp(method, "POST") != 0)
        return answer_status(conn, MHD_HTTP_METHOD_NOT_ALLOWED);
    if (q->too_big)
        return answer_status(conn, MHD_HTTP_CONTENT_TOO_LARGE);
    return deliver(r, conn, (enum hq_demo_route)route, q);
}

static void on_request_done(void *cls, struct MHD_Connection *conn, void **req_cls,
                            enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct req *q = *req_cls;
    if (!q)
        return;
    hq_buf_free(&q->body);
    free(q);
    *req_cls = NULL;
}

/* ---- Lifecycle ---------------------------------------------------------------------------- */

struct hq_demo_receiver *hq_demo_receiver_start(FILE *out, struct hq_err *err)
{
    struct hq_demo_receiver *r = hq_calloc(1, sizeof(*r));
    r->out = out;
    pthread_mutex_init(&r->mu, NULL);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    r->mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL, on_http_request, r,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a, MHD_OPTION_NOTIFY_COMPLETED, on_request_done,
        r, MHD_OPTION_CONNECTION_LIMIT, (unsigned)HQ_DEMO_CONN_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)HQ_METRICS_TIMEOUT_S, MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        r->mhd ? MHD_get_daemon_info(r->mhd, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (!info || info->port == 0) {
        if (r->mhd)
            MHD_stop_daemon(r->mhd);
        pthread_mutex_destroy(&r->mu);
        free(r);
        hq_err_set(err, HQ_EIO, "demo receiver: cannot listen on 127.0.0.1");
        return NULL;
    }
    r->port = info->port;
    return r;
}

void hq_demo_receiver_url(const struct hq_demo_receiver *r, enum hq_demo_route route, char *out,
                          size_t n)
{
    snprintf(out, n, "http://127.0.0.1:%d%s", r->port, route_paths[route]);
}

int hq_demo_receiver_set_keys(struct hq_demo_receiver *r, enum hq_demo_route route,
                              const char *key1, const char *key2, struct hq_err *err)
{
    struct hq_sign_key k[2];
    memset(k, 0, sizeof(k));
    int n = 0;
    const char *src[2] = {key1, key2};
    for (int i = 0; i < 2; i++) {
        if (!src[i] || !src[i][0])
            continue;
        int rc = hq_sign_key_decode(src[i], &k[n], err);
        if (rc) {
            hq_sign_key_wipe(&k[0]);
            hq_sign_key_wipe(&k[1]);
            return rc;
        }
        n++;
    }
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < 2; i++)
        hq_sign_key_wipe(&r->keys[route][i]);
    memcpy(r->keys[route], k, sizeof(k));
    r->nkeys[route] = n;
    pthread_mutex_unlock(&r->mu);
    hq_sign_key_wipe(&k[0]);
    hq_sign_key_wipe(&k[1]);
    return 0;
}

void hq_demo_receiver_stats(struct hq_demo_receiver *r, struct hq_demo_stats *st)
{
    pthread_mutex_lock(&r->mu);
    *st = r->stats;
    pthread_mutex_unlock(&r->mu);
}

void hq_demo_receiver_stop(struct hq_demo_receiver *r)
{
    if (!r)
        return;
    MHD_stop_daemon(r->mhd);
    for (int i = 0; i < HQ_DEMO_ROUTES; i++) {
        hq_sign_key_wipe(&r->keys[i][0]);
        hq_sign_key_wipe(&r->keys[i][1]);
    }
    pthread_mutex_destroy(&r->mu);
    free(r);
}
