/* Scenario 10, TLS: https receivers with a self-signed, an expired and a
 * wrong-host certificate fail the attempt as a TLS error (class "tls:", with
 * the reason its certificate deserves), are retried like any failure, and
 * never see the request: the payload does not leave for a peer that was not
 * verified. A receiver whose certificate chains to the CA given with
 * HOOKQ_CA_FILE (the control) gets the delivery, byte for byte, with its webhook-id.
 * Certificates are made at test time with the openssl CLI (the expired one
 * signed by `openssl ca` with dates in 2020); the receivers are libmicrohttpd
 * daemons with TLS on loopback, in this process. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "tests/harness/worker_env.h"

static struct wenv W;
static char dir[256];

static void sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    char full[2400];
    snprintf(full, sizeof(full), "cd %s && (%s) >/dev/null 2>&1", dir, cmd);
    if (system(full) != 0)
        fail_msg("command failed: %s", cmd);
}

static char *slurp(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot read %s", path);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    fclose(f);
    assert_true(n > 0);
    return buf;
}

/* ---- An https receiver: answers 204 and counts what reached it ------------------------ */
struct tls_rcv {
    struct MHD_Daemon *d;
    int port;
    char *cert, *key;      /* PEM, kept alive while the daemon runs */
    atomic_int requests;   /* complete requests received */
    atomic_llong body_len; /* bytes of the last request's body */
    char body[256];        /* the first bytes of the last request's body */
    char webhook_id[128];  /* the last request's webhook-id */
};

struct req_state {
    size_t len;
    char body[256];
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
    (void)url;
    (void)method;
    (void)version;
    struct tls_rcv *t = cls;
    struct req_state *st = *con_cls;
    if (!st) {
        *con_cls = calloc(1, sizeof(*st));
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*data_size) {
        if (st->len < sizeof(st->body) - 1) {
            size_t room = sizeof(st->body) - 1 - st->len;
            memcpy(st->body + st->len, data, *data_size < room ? *data_size : room);
        }
        st->len += *data_size;
        *data_size = 0;
        return MHD_YES;
    }
    const char *id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "webhook-id");
    snprintf(t->webhook_id, sizeof(t->webhook_id), "%s", id ? id : "");
    memcpy(t->body, st->body, sizeof(t->body));
    atomic_store(&t->body_len, (long long)st->len);
    atomic_fetch_add(&t->requests, 1);
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(conn, 204, r);
    MHD_destroy_response(r);
    return ret;
}

static void on_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

static void tls_rcv_start(struct tls_rcv *t, const char *cert, const char *key)
{
    memset(t, 0, sizeof(*t));
    t->cert = slurp(cert);
    t->key = slurp(key);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    t->d = MHD_start_daemon(MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD |
                                MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL,
                            0, NULL, NULL, on_request, t, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&a, MHD_OPTION_HTTPS_MEM_CERT, t->cert,
                            MHD_OPTION_HTTPS_MEM_KEY, t->key, MHD_OPTION_NOTIFY_COMPLETED, on_done,
                            NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (!t->d)
        fail_msg("libmicrohttpd could not start a TLS daemon with %s", cert);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(t->d, MHD_DAEMON_INFO_BIND_PORT);
    assert_non_null(info);
    t->port = info->port;
}

static void tls_rcv_stop(struct tls_rcv *t)
{
    MHD_stop_daemon(t->d);
    free(t->cert);
    free(t->key);
}

/* The attempt record of event_id for endpoint ep_id ("" when none). */
static void attempt_of(const char *event_id, const char *ep_id, char *out, size_t n)
{
    out[0] = '\0';
    redisReply *r = wenv_attempts(&W, event_id);
    for (size_t i = 0; i < r->elements; i++) {
        if (strstr(r->element[i]->str, ep_id))
            snprintf(out, n, "%s", r->element[i]->str);
    }
    freeReplyObject(r);
}

struct att_arg {
    const char *event_id;
    long long want;
};

static int attempts_recorded(void *arg)
{
    struct att_arg *a = arg;
    redisReply *r = wenv_attempts(&W, a->event_id);
    long long n = (long long)r->elements;
    freeReplyObject(r);
    return n >= a->want;
}

static void make_certs(void)
{
    snprintf(dir, sizeof(dir), "/tmp/hq-tls-XXXXXX");
    assert_non_null(mkdtemp(dir));
    sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 -subj '/CN=hookq test CA'");
    sh("openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj '/CN=127.0.0.1'");
    sh("printf 'subjectAltName=IP:127.0.0.1\\n' > ip.ext && printf 'subjectAltName=DNS:example.invalid\\n' > dns.ext");
    sh("openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile ip.ext -out good.pem");
    /* Expired: valid through January 2020 only. `openssl x509 -req` cannot
     * set dates in the past; `openssl ca` can, given a minimal CA config. */
    sh("printf '[ca]\\ndefault_ca=d\\n[d]\\ndatabase=index.txt\\nnew_certs_dir=.\\n"
       "serial=serial\\ndefault_md=sha256\\npolicy=p\\n[p]\\ncommonName=supplied\\n' > ca.cnf && : > index.txt && echo 01 > serial");
    sh("openssl ca -batch -notext -config ca.cnf -cert ca.pem -keyfile ca.key -in srv.csr -startdate 20200101000000Z -enddate 20200201000000Z -extfile ip.ext -out expired.pem");
    sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout self.key -out self.pem -days 30 -subj '/CN=127.0.0.1' -addext 'subjectAltName=IP:127.0.0.1'");
    sh("openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile dns.ext -out wronghost.pem");
    sh("openssl x509 -checkend 0 -noout -in expired.pem; test $? -eq 1");
}

static void test_bad_certificates_fail_as_tls_errors_and_never_see_the_request(void **state)
{
    (void)state;
    make_certs();
    static const struct {
        const char *name, *cert, *key;
        const char *reason; /* in the "tls: " detail; NULL for the control */
    } cases[] = {
        {"good", "good.pem", "srv.key", NULL},
        {"expired", "expired.pem", "srv.key", "expired"},
        {"wrong host", "wronghost.pem", "srv.key", "target host name"},
        {"self-signed", "self.pem", "self.key", "self-signed"},
    };
    enum { N = sizeof(cases) / sizeof(cases[0]) };
    struct tls_rcv rcv[N];
    struct hq_endpoint eps[N];
    for (int i = 0; i < N; i++) {
        tls_rcv_start(&rcv[i], cases[i].cert, cases[i].key);
        char url[128];
        snprintf(url, sizeof(url), "https://127.0.0.1:%d/hook", rcv[i].port);
        wenv_endpoint(&W, url, NULL, NULL, 0, &eps[i]);
    }
    char ca_env[320];
    snprintf(ca_env, sizeof(ca_env), "HOOKQ_CA_FILE=%s/ca.pem", dir);
    const char *env[] = {"HOOKQ_ALLOW_PRIVATE=1", ca_env, NULL};
    const char *extra[] = {"--timeout", "5s", NULL};
    pid_t pid = wenv_worker(&W, extra, env);
    static const char payload[] = "{\"tls\":\"only to verified peers\"}";
    wenv_produce(&W, "tls.test", payload, "evt_tls", NULL, NULL, 0);
    struct att_arg aa = {"evt_tls", N};
    wenv_wait(&W, attempts_recorded, &aa, 30000, "an attempt record per endpoint");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the ack");

    char rec[8192];
    for (int i = 0; i < N; i++) {
        attempt_of("evt_tls", eps[i].id, rec, sizeof(rec));
        print_message("%-11s %.300s\n", cases[i].name, rec);
        if (!cases[i].reason) {
            /* The control: verified through HOOKQ_CA_FILE, delivered whole. */
            assert_non_null(strstr(rec, "\"outcome\":\"delivered\""));
            assert_int_equal(atomic_load(&rcv[i].requests), 1);
            assert_int_equal(atomic_load(&rcv[i].body_len), (long long)strlen(payload));
            assert_string_equal(rcv[i].body, payload);
            assert_string_equal(rcv[i].webhook_id, "evt_tls");
            continue;
        }
        if (!strstr(rec, "\"error\":\"tls: ") || !strstr(rec, cases[i].reason))
            fail_msg("%s: want a tls error about \"%s\", got %s", cases[i].name, cases[i].reason,
                     rec);
        assert_non_null(strstr(rec, "\"outcome\":\"retry\""));
        assert_non_null(strstr(rec, "\"status\":0"));
        /* The handshake failed before a byte of the request was sent. */
        assert_int_equal(atomic_load(&rcv[i].requests), 0);
    }
    /* The three failures wait for their retry, nothing is dead yet. */
    assert_int_equal(hq_test_cmd_int(W.c, "ZCARD hookq:retry"), N - 1);
    assert_int_equal(hq_test_cmd_int(W.c, "XLEN hookq:dead"), 0);
    assert_int_equal(hq_test_kill_wait(pid, SIGTERM, 20000), 0);
    for (int i = 0; i < N; i++) {
        tls_rcv_stop(&rcv[i]);
        hq_endpoint_free(&eps[i]);
    }
    sh("rm -f *.pem *.key *.csr *.ext *.srl *.cnf index.txt* serial*");
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        WENV_TEST(test_bad_certificates_fail_as_tls_errors_and_never_see_the_request, &W),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
