/* Fair scheduling of a worker's slots between tenants (docs/flow-control.md,
 * "Fair scheduling"), with a real redis-server, receiver and worker: when
 * the worker-wide --concurrency is what holds deliveries back, a freed slot
 * goes to the tenants in turn, then to a tenant's endpoints in turn. Here one
 * event fans out to tenant A's eight endpoints and tenant B's one at
 * --concurrency 1, B's being last in fan-out order: B's delivery is at most
 * the third of each event's nine (one per tenant in turn), where serving the
 * endpoints in turn, as before tenants counted, made it the ninth. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "tests/harness/worker_env.h"

static struct wenv W;
static char out[1 << 16], errb[4096];

#define NEPS    9
#define NEVENTS 20

#define cli(...) wenv_cli(&W, out, sizeof(out), errb, sizeof(errb), __VA_ARGS__)

/* The endpoint index (path /f<i>) of each request of event id, in arrival order. */
static int arrivals(const char *id, int *idx, int max)
{
    int n = 0;
    pthread_mutex_lock(&W.rcv.mu);
    for (size_t i = 0; i < W.rcv.nreqs && n < max; i++) {
        const struct hq_test_request *q = &W.rcv.reqs[i];
        char got[64];
        if (hq_test_request_header(q, "webhook-id", got, sizeof(got)) == 0 &&
            strcmp(got, id) == 0 && strncmp(q->path, "/f", 2) == 0)
            idx[n++] = atoi(q->path + 2);
    }
    pthread_mutex_unlock(&W.rcv.mu);
    return n;
}

struct seen_arg {
    char metrics[128];
    int probes;         /* probe events produced */
    const char *tenant; /* awaited in the by-tenant metric */
};

/* Produces a probe event whenever the previous one is done; 1 once the
 * worker delivered something as a->tenant's (it read the change). */
static int tenants_seen(void *arg)
{
    struct seen_arg *a = arg;
    if (hq_test_receiver_count_path(&W.rcv, "/f") >= (size_t)(a->probes * NEPS)) {
        char id[32];
        snprintf(id, sizeof(id), "evt_probe%d", a->probes++);
        wenv_produce(&W, "fan.x", "{}", id, NULL, NULL, 0);
    }
    struct hq_buf body;
    hq_buf_init(&body, 1 << 20);
    char want[128];
    snprintf(want, sizeof(want), "hookq_deliveries_by_tenant_total{tenant=\"%s\"} ", a->tenant);
    int seen = wenv_http_get(a->metrics, &body) == 200 && strstr(body.p, want);
    hq_buf_free(&body);
    return seen;
}

static void test_a_freed_slot_goes_to_the_tenants_in_turn(void **state)
{
    (void)state;
    struct hq_endpoint e[NEPS];
    for (int i = 0; i < NEPS; i++) {
        char path[16];
        snprintf(path, sizeof(path), "/f%d", i);
        wenv_endpoint_at(&W, path, "fan.*", 0, &e[i]);
    }
    struct seen_arg sa = {.probes = 0, .tenant = NULL};
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", hq_test_free_port());
    snprintf(sa.metrics, sizeof(sa.metrics), "http://%s/metrics", addr);
    const char *extra[] = {"--concurrency", "1", "--metrics", addr, NULL};
    pid_t w = wenv_worker(&W, extra, NULL);

    /* All tenant A's first, then the order one slot serves them in: with one
     * tenant, the fan-out order. (An update re-adds the endpoint to the type's
     * index set, which may change the order: learnt after.) */
    for (int i = 0; i < NEPS; i++)
        assert_int_equal(cli("endpoint", "update", e[i].id, "--tenant", "tenant_a", NULL), 0);
    sa.tenant = "tenant_a";
    wenv_wait(&W, tenants_seen, &sa, 20000, "the worker delivered as tenant A's");
    struct count_arg probes = {&W.rcv, "/f", (size_t)sa.probes * NEPS};
    wenv_wait(&W, received_at_least, &probes, 10000, "the probes' deliveries");
    char last[32];
    snprintf(last, sizeof(last), "evt_probe%d", sa.probes - 1);
    int order[NEPS];
    assert_int_equal(arrivals(last, order, NEPS), NEPS);
    /* The last one served becomes tenant B's. */
    assert_int_equal(cli("endpoint", "update", e[order[NEPS - 1]].id, "--tenant", "tenant_b", NULL),
                     0);
    sa.tenant = "tenant_b";
    wenv_wait(&W, tenants_seen, &sa, 20000, "the worker delivered as tenant B's");
    size_t before = (size_t)sa.probes * NEPS;
    probes.want = before;
    wenv_wait(&W, received_at_least, &probes, 10000, "the probes' deliveries");

    for (int k = 0; k < NEVENTS; k++) {
        char id[32];
        snprintf(id, sizeof(id), "evt_f%d", k);
        wenv_produce(&W, "fan.x", "{}", id, NULL, NULL, 0);
    }
    struct count_arg done = {&W.rcv, "/f", before + NEVENTS * NEPS};
    wenv_wait(&W, received_at_least, &done, 20000, "every event's deliveries");
    int worst = 0;
    char ranks[NEVENTS * 4 + 1] = "";
    for (int k = 0; k < NEVENTS; k++) {
        char id[32];
        int idx[NEPS], rank = 0;
        snprintf(id, sizeof(id), "evt_f%d", k);
        assert_int_equal(arrivals(id, idx, NEPS), NEPS);
        for (int i = 0; i < NEPS; i++)
            if (idx[i] == order[NEPS - 1])
                rank = i + 1;
        assert_true(rank > 0);
        worst = rank > worst ? rank : worst;
        snprintf(ranks + strlen(ranks), sizeof(ranks) - strlen(ranks), " %d", rank);
    }
    print_message("tenant B's delivery was number%s of each event's %d\n", ranks, NEPS);
    if (worst > 3)
        fail_msg("tenant B's delivery came as late as number %d of %d", worst, NEPS);
    assert_int_equal(hq_test_kill_wait(w, SIGTERM, 20000), 0);
    for (int i = 0; i < NEPS; i++)
        hq_endpoint_free(&e[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        WENV_TEST(test_a_freed_slot_goes_to_the_tenants_in_turn, &W),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
