/* Scenario 10, TLS: https receivers with a self-signed, an expired and a
 * wrong-host certificate fail the attempt as a TLS error (class "tls:"), and
 * are retried like any failure; a receiver whose certificate chains to the
 * CA given with HOOKQ_CA_FILE passes the handshake (the control). Certificates
 * are made at test time with the openssl CLI; the servers are
 * `openssl s_server` processes on loopback. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "tests/integration/worker_env.h"

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

struct server {
    pid_t pid;
    int port;
    int stdin_fd; /* kept open: s_server exits when its stdin closes */
};

static void server_start(struct server *s, const char *cert, const char *key)
{
    s->port = hq_test_free_port();
    int p[2];
    assert_int_equal(pipe(p), 0);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        char port[16], certp[512], keyp[512];
        snprintf(port, sizeof(port), "%d", s->port);
        snprintf(certp, sizeof(certp), "%s/%s", dir, cert);
        snprintf(keyp, sizeof(keyp), "%s/%s", dir, key);
        dup2(p[0], 0);
        close(p[1]);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("openssl", "openssl", "s_server", "-4", "-accept", port, "-cert", certp, "-key",
               keyp, "-www", (char *)NULL);
        _exit(127);
    }
    close(p[0]);
    s->stdin_fd = p[1];
}

static int accepts(void *arg)
{
    struct server *s = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static void server_stop(struct server *s)
{
    close(s->stdin_fd);
    hq_test_kill_wait(s->pid, SIGTERM, 5000);
}

static int cert_expired(void *arg)
{
    (void)arg;
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "openssl x509 -checkend 0 -noout -in %s/expired.pem >/dev/null 2>&1",
             dir);
    int st = system(cmd);
    return WIFEXITED(st) && WEXITSTATUS(st) == 1;
}

/* The last_error of the retry for endpoint ep ("" when none). */
static void attempt_error(const char *event_id, const char *ep_id, char *out, size_t n)
{
    out[0] = '\0';
    redisReply *r = hq_test_cmd(W.c, "LRANGE hookq:att:%s 0 -1", event_id);
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
    return hq_test_cmd_int(W.c, "LLEN hookq:att:%s", a->event_id) >= a->want;
}

static void test_bad_certificates_fail_as_tls_errors(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/hq-tls-XXXXXX");
    assert_non_null(mkdtemp(dir));
    sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 "
       "-subj '/CN=hookq test CA'");
    sh("openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj '/CN=127.0.0.1'");
    sh("printf 'subjectAltName=IP:127.0.0.1\\n' > ip.ext && "
       "printf 'subjectAltName=DNS:example.invalid\\n' > dns.ext");
    sh("openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 "
       "-extfile ip.ext -out good.pem");
    /* -days 0: valid for no time at all, expired a second later. */
    sh("openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 0 "
       "-extfile ip.ext -out expired.pem");
    sh("openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 "
       "-extfile dns.ext -out wronghost.pem");
    sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout self.key -out self.pem -days 30 "
       "-subj '/CN=127.0.0.1' -addext 'subjectAltName=IP:127.0.0.1'");

    struct server good, expired, wrong, self;
    server_start(&good, "good.pem", "srv.key");
    server_start(&expired, "expired.pem", "srv.key");
    server_start(&wrong, "wronghost.pem", "srv.key");
    server_start(&self, "self.pem", "self.key");
    struct server *all[] = {&good, &expired, &wrong, &self};
    for (int i = 0; i < 4; i++)
        wenv_wait(&W, accepts, all[i], 15000, "openssl s_server listening");
    wenv_wait(&W, cert_expired, NULL, 5000, "the expired certificate to expire");

    struct hq_endpoint eps[4];
    for (int i = 0; i < 4; i++) {
        char url[128];
        snprintf(url, sizeof(url), "https://127.0.0.1:%d/", all[i]->port);
        wenv_endpoint(&W, url, NULL, NULL, 0, &eps[i]);
    }
    char ca_env[320];
    snprintf(ca_env, sizeof(ca_env), "HOOKQ_CA_FILE=%s/ca.pem", dir);
    const char *env[] = {"HOOKQ_ALLOW_PRIVATE=1", ca_env, NULL};
    const char *extra[] = {"--timeout", "5s", NULL};
    pid_t pid = wenv_worker(&W, extra, env);
    wenv_produce(&W, "tls.test", "{}", "evt_tls", NULL, NULL, 0);
    struct att_arg aa = {"evt_tls", 4};
    wenv_wait(&W, attempts_recorded, &aa, 30000, "four attempt records");
    wenv_wait(&W, nothing_pending_and_stream_empty, &W, 10000, "the ack");

    char rec[8192];
    const char *names[] = {"good", "expired", "wrong host", "self-signed"};
    for (int i = 1; i < 4; i++) {
        attempt_error("evt_tls", eps[i].id, rec, sizeof(rec));
        print_message("%s: %.300s\n", names[i], rec);
        assert_non_null(strstr(rec, "\"error\":\"tls: "));
        assert_non_null(strstr(rec, "\"outcome\":\"retry\""));
    }
    /* The control: its handshake succeeded, whatever s_server answered. */
    attempt_error("evt_tls", eps[0].id, rec, sizeof(rec));
    print_message("good: %.300s\n", rec);
    assert_non_null(strstr(rec, eps[0].id));
    assert_null(strstr(rec, "\"error\":\"tls: "));
    assert_int_equal(hq_test_kill_wait(pid, SIGTERM, 20000), 0);
    for (int i = 0; i < 4; i++) {
        server_stop(all[i]);
        hq_endpoint_free(&eps[i]);
    }
    sh("rm -f *.pem *.key *.csr *.ext *.srl");
    rmdir(dir);
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
        cmocka_unit_test_setup_teardown(test_bad_certificates_fail_as_tls_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
