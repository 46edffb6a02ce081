/* The web console end to end in headless Chromium (tests/harness/cdp.h),
 * against a real `hookq api`, a real worker, real Redis and real receivers:
 * - the seed's flow: a webhook created in the page (name, URL, description,
 *   an event checkbox from /v1/event-types and a `prefix.*` pattern), both
 *   keys read off the screen; an event produced reaches the receiver and its
 *   signature verifies with each key (and not with another endpoint's);
 * - the list, the detail page, event lookup (attempt timeline per endpoint);
 * - a dead letter (its receiver answered 503, one attempt allowed) shown with
 *   its payload pretty-printed and replayed from the page reaches the
 *   receiver that has come back; the filtered set replayed in one click; a
 *   purge only after its confirmation;
 * - the overview, with deliveries/s from the worker's /metrics (the API reads
 *   HOOKQ_WORKER_METRICS); no page threw, logged an error (CSP) or opened a dialog.
 * Screenshots: <build>/screenshots/console-*.png. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>

#include "common/endpoint_store.h"
#include "tests/harness/console_env.h"

static struct wenv W;

/* ---- receivers --------------------------------------------------------------------------------
 */

struct path_arg {
    struct hq_test_receiver *rcv;
    const char *path;
    int status; /* 0: any */
};

static int got_request(void *arg)
{
    struct path_arg *p = arg;
    pthread_mutex_lock(&p->rcv->mu);
    int n = 0;
    for (size_t i = 0; i < p->rcv->nreqs; i++)
        n += strcmp(p->rcv->reqs[i].path, p->path) == 0 &&
             (p->status == 0 || p->rcv->reqs[i].status == p->status);
    pthread_mutex_unlock(&p->rcv->mu);
    return n > 0;
}

/* The first request to path with status (0: any); fails after 15 s. */
static const struct hq_test_request *await_request(struct hq_test_receiver *rcv, const char *path,
                                                   int status)
{
    struct path_arg p = {rcv, path, status};
    wenv_wait(&W, got_request, &p, 15000, path);
    pthread_mutex_lock(&rcv->mu);
    const struct hq_test_request *q = NULL;
    for (size_t i = 0; i < rcv->nreqs && !q; i++)
        if (strcmp(rcv->reqs[i].path, path) == 0 && (status == 0 || rcv->reqs[i].status == status))
            q = &rcv->reqs[i];
    pthread_mutex_unlock(&rcv->mu);
    return q; /* stable: requests are appended, and this one is complete */
}

/* The request's signature verifies with key (and not with other). */
static void assert_signed_by(const struct hq_test_request *q, const char *key, const char *other)
{
    char id[256], ts[64], sig[1024];
    assert_int_equal(hq_test_request_header(q, "webhook-id", id, sizeof(id)), 0);
    assert_int_equal(hq_test_request_header(q, "webhook-timestamp", ts, sizeof(ts)), 0);
    assert_int_equal(hq_test_request_header(q, "webhook-signature", sig, sizeof(sig)), 0);
    struct hq_sign_key k;
    struct hq_err err = {0};
    assert_int_equal(hq_sign_key_decode(key, &k, &err), 0);
    if (hq_sign_verify(&k, id, atoll(ts), q->body, q->body_len, sig, hq_test_now_ms() / 1000, 300,
                       &err) != 0)
        fail_msg("the request to %s does not verify with the key read off the page: %s", q->path,
                 err.msg);
    hq_sign_key_wipe(&k);
    if (other) {
        assert_int_equal(hq_sign_key_decode(other, &k, &err), 0);
        assert_int_not_equal(hq_sign_verify(&k, id, atoll(ts), q->body, q->body_len, sig,
                                            hq_test_now_ms() / 1000, 300, &err),
                             0);
        hq_sign_key_wipe(&k);
    }
}

static void set_status(struct hq_test_receiver *rcv, int status)
{
    pthread_mutex_lock(&rcv->mu);
    rcv->default_status = status;
    pthread_mutex_unlock(&rcv->mu);
}

/* ---- the test ----------------------------------------------------------------------------- */

/* The event (arg: its id) has an attempt record. */
static int recorded(void *arg)
{
    redisReply *r = wenv_attempts(&W, arg);
    int n = (int)r->elements;
    freeReplyObject(r);
    return n > 0;
}

static void test_seed_flow_and_dead_letter_replay(void **state)
{
    (void)state;
    /* a subscribed type for the checkboxes, at a path of its own */
    struct hq_endpoint other;
    wenv_endpoint_at(&W, "/other", "invoice.paid", 0, &other);
    /* the receiver that goes away and comes back */
    struct hq_test_receiver back;
    hq_test_receiver_start(&back);
    set_status(&back, 503);
    char url[128];
    snprintf(url, sizeof(url), "%s/back", back.url);
    struct hq_endpoint flaky;
    wenv_endpoint(&W, url, "invoice.failed", NULL, 1, &flaky);

    struct console_api a;
    /* the API reads the worker's /metrics for the overview's deliveries/s */
    char metrics[64], metrics_url[128];
    int mport = hq_test_free_port();
    snprintf(metrics, sizeof(metrics), "127.0.0.1:%d", mport);
    snprintf(metrics_url, sizeof(metrics_url), "http://127.0.0.1:%d/metrics", mport);
    setenv("HOOKQ_WORKER_METRICS", metrics_url, 1);
    console_api_start(&W, &a);
    unsetenv("HOOKQ_WORKER_METRICS");
    const char *wargs[] = {"--metrics", metrics, NULL};
    wenv_worker(&W, wargs, NULL);

    struct hq_cdp b;
    hq_cdp_launch(&b, 1280, 900);
    console_open(&b, &a);
    console_wait_text(&b, "#webhook-list .ep-name", "test");
    console_shot(&b, "webhooks");

    /* create, as in the seed */
    hq_cdp_click(&b, "#new-webhook");
    hq_cdp_wait_visible(&b, "#wh-events input[value='invoice.paid']");
    console_shot(&b, "new-webhook");
    hq_cdp_type(&b, "#wh-name", "Billing");
    char target[160];
    snprintf(target, sizeof(target), "%s/console", W.rcv.url);
    hq_cdp_type(&b, "#wh-url", target);
    hq_cdp_type(&b, "#wh-description", "invoices for the billing service");
    hq_cdp_click(&b, "#wh-events input[value='invoice.paid']");
    hq_cdp_type(&b, "#wh-patterns", "user.*");
    hq_cdp_click(&b, "#wh-create");
    hq_cdp_wait_visible(&b, "#key1");
    console_shot(&b, "created");
    char key1[HQ_SECRET_STR_MAX], key2[HQ_SECRET_STR_MAX], id[64];
    hq_cdp_text(&b, "#key1", key1, sizeof(key1));
    hq_cdp_text(&b, "#key2", key2, sizeof(key2));
    hq_cdp_text(&b, "#created-id", id, sizeof(id));
    assert_true(strncmp(key1, "whsec_", 6) == 0 && strncmp(key2, "whsec_", 6) == 0);
    assert_string_not_equal(key1, key2);
    /* the copy buttons put the key on the clipboard */
    json_decref(hq_cdp_call(&b, 1, "Browser.grantPermissions",
                            json_pack("{s:[s,s], s:s}", "permissions", "clipboardReadWrite",
                                      "clipboardSanitizedWrite", "origin", a.base)));
    json_decref(hq_cdp_call(&b, 0, "Page.bringToFront", NULL)); /* the clipboard needs focus */
    for (int i = 1; i <= 2; i++) {
        char sel[32], q[HQ_SECRET_STR_MAX + 8], expr[400];
        snprintf(sel, sizeof(sel), "#copy-key%d", i);
        hq_cdp_click(&b, sel);
        console_wait_text(&b, sel, "Copied");
        hq_cdp_quote(i == 1 ? key1 : key2, q, sizeof(q));
        snprintf(expr, sizeof(expr), "navigator.clipboard.readText().then((t) => t === %s)", q);
        hq_cdp_wait(&b, expr, 5000, "the key on the clipboard");
    }
    /* stored as typed */
    struct hq_endpoint got;
    struct hq_err err = {0};
    assert_int_equal(hq_endpoint_get(wenv_reg_node(&W), hq_tl_reg(&W.tl, "hookq"), id, &got, &err),
                     0);
    assert_string_equal(got.name, "Billing");
    assert_string_equal(got.url, target);
    assert_string_equal(got.description, "invoices for the billing service");
    assert_int_equal(got.nevents, 2);
    assert_string_equal(got.events[0], "invoice.paid");
    assert_string_equal(got.events[1], "user.*");
    hq_endpoint_free(&got);

    /* an event reaches the receiver, signed with both keys read off the screen */
    const char *body = "{\"invoice\":\"in_1\",\"amount\":4200}";
    wenv_produce(&W, "invoice.paid", body, "evt_console_1", NULL, NULL, 0);
    const struct hq_test_request *q = await_request(&W.rcv, "/console", 0);
    assert_int_equal(q->body_len, strlen(body));
    assert_memory_equal(q->body, body, strlen(body));
    assert_signed_by(q, key1, other.key1);
    assert_signed_by(q, key2, other.key2);
    /* ... and a user.* event too (the pattern), attempted strictly later */
    wenv_next_ms(&W);
    wenv_produce(&W, "user.created", "{}", "evt_console_2", NULL, NULL, 0);
    struct count_arg two = {&W.rcv, "/console", 2};
    wenv_wait(&W, received_at_least, &two, 15000, "the user.* event");

    /* the list and the detail page, with the endpoint's recent attempts */
    wenv_wait(&W, recorded, "evt_console_2", 15000, "the user.* event's attempt record");
    console_go(&b, "#/webhooks");
    console_wait_text(&b, "#webhook-list .ep-name", "Billing");
    char sel[200];
    snprintf(sel, sizeof(sel), "#webhook-list tr[data-id='%s']", id);
    hq_cdp_click(&b, sel);
    console_wait_text(&b, "#wh-detail-name", "Billing");
    hq_cdp_wait(&b,
                "document.querySelectorAll('#wh-attempts-table tbody tr').length === 2 && "
                "document.querySelector('#wh-attempts-table tbody tr a').textContent === "
                "'evt_console_2'",
                10000, "the two attempts, newest first, on the detail page");
    console_shot(&b, "webhook-detail");

    /* event lookup: the attempt timeline per endpoint */
    console_go(&b, "#/events");
    hq_cdp_type(&b, "#ev-id", "evt_console_1");
    hq_cdp_click(&b, "#ev-go");
    snprintf(sel, sizeof(sel), ".ev-endpoint[data-endpoint='%s'] .timeline li", id);
    hq_cdp_wait_visible(&b, sel);
    snprintf(sel, sizeof(sel), ".ev-endpoint[data-endpoint='%s']", other.id);
    hq_cdp_wait_visible(&b, sel);
    console_shot(&b, "event-lookup");

    /* a dead letter: the receiver answers 503, one attempt allowed */
    const char *dl_body = "{\"invoice\":\"in_2\",\"lines\":[{\"sku\":\"a\",\"qty\":1}]}";
    wenv_produce(&W, "invoice.failed", dl_body, "evt_console_dead", NULL, NULL, 0);
    await_request(&back, "/back", 503);
    struct redis_arg one_dead = {&W, "XLEN hookq:dead", 1};
    wenv_wait(&W, redis_int_is, &one_dead, 15000, "the dead letter");
    console_go(&b, "#/dead-letters");
    hq_cdp_wait_visible(&b, "#dl-list .dl-row");
    hq_cdp_type(&b, "#dl-endpoint", flaky.id);
    hq_cdp_click(&b, "#dl-apply");
    hq_cdp_wait(&b, "location.hash.includes('endpoint=')", 5000, "the filter in the URL");
    console_wait_shown(&b); /* the filtered list, not the one it replaces */
    console_wait_text(&b, "#dl-list .dl-reason", "exhausted");
    hq_cdp_click(&b, "#dl-list .dl-show");
    hq_cdp_wait_visible(&b, "#dl-payload");
    char pretty[512];
    hq_cdp_text(&b, "#dl-payload", pretty, sizeof(pretty));
    assert_non_null(strstr(pretty, "{\n  \"invoice\": \"in_2\",\n  \"lines\": [\n    {\n"));
    console_shot(&b, "dead-letters");

    /* the receiver comes back; replay from the page */
    set_status(&back, 204);
    hq_cdp_click(&b, "#dl-list .dl-replay");
    console_wait_text(&b, "#dl-list .dl-replay", "Replayed");
    q = await_request(&back, "/back", 204);
    assert_int_equal(q->body_len, strlen(dl_body));
    assert_memory_equal(q->body, dl_body, strlen(dl_body));
    assert_signed_by(q, flaky.key1, NULL);
    assert_signed_by(q, flaky.key2, NULL);
    struct redis_arg none_dead = {&W, "XLEN hookq:dead", 0};
    wenv_wait(&W, redis_int_is, &none_dead, 5000, "the dead letter replayed");

    /* the filtered set: two more dead letters, replayed in one click */
    set_status(&back, 503);
    wenv_produce(&W, "invoice.failed", "{\"n\":3}", "evt_console_d3", NULL, NULL, 0);
    wenv_produce(&W, "invoice.failed", "{\"n\":4}", "evt_console_d4", NULL, NULL, 0);
    struct redis_arg two_dead = {&W, "XLEN hookq:dead", 2};
    wenv_wait(&W, redis_int_is, &two_dead, 15000, "two dead letters");
    set_status(&back, 204);
    hq_cdp_click(&b, "#dl-apply"); /* the same filter again: a refresh */
    hq_cdp_wait(&b, "document.querySelectorAll('#dl-list .dl-row').length === 2", 10000,
                "two rows");
    hq_cdp_click(&b, "#dl-replay-all");
    console_wait_text(&b, "#notice", "replayed 2 dead letters");
    struct count_arg three = {&back, "/back", 4}; /* 503, 204, and the two replayed */
    wenv_wait(&W, received_at_least, &three, 15000, "the replayed set");
    wenv_wait(&W, redis_int_is, &none_dead, 5000, "the replayed set gone from the stream");

    /* purge with a confirmation: one more dead letter, purged */
    set_status(&back, 503);
    wenv_produce(&W, "invoice.failed", "{\"n\":5}", "evt_console_d5", NULL, NULL, 0);
    wenv_wait(&W, redis_int_is, &one_dead, 15000, "a dead letter to purge");
    hq_cdp_click(&b, "#dl-apply");
    hq_cdp_wait_visible(&b, "#dl-list .dl-row");
    hq_cdp_click(&b, "#dl-purge");
    hq_cdp_wait_visible(&b, "#dl-purge-yes");
    console_shot(&b, "purge-confirm");
    assert_int_equal(hq_test_cmd_int(W.c, "XLEN hookq:dead"), 1); /* nothing before yes */
    hq_cdp_click(&b, "#dl-purge-yes");
    console_wait_text(&b, "#notice", "purged 1 dead letter");
    assert_int_equal(hq_test_cmd_int(W.c, "XLEN hookq:dead"), 0);

    /* overview: one dead letter left, by reason */
    wenv_produce(&W, "invoice.failed", "{\"n\":6}", "evt_console_d6", NULL, NULL, 0);
    wenv_wait(&W, redis_int_is, &one_dead, 15000, "a dead letter for the overview");
    console_go(&b, "#/overview");
    hq_cdp_wait_visible(&b, "#stats .stat[data-stat='stream_length']");
    console_wait_text(&b, "#stats .stat[data-stat='dead_letters'] .v", "1");
    console_wait_text(&b, "#dead-by-reason td", "exhausted");
    /* deliveries/s: the first read only measures; events delivered before the
     * next poll (5 s) give a rate */
    for (int i = 0; i < 5; i++) {
        char eid[32];
        snprintf(eid, sizeof(eid), "evt_console_r%d", i);
        wenv_produce(&W, "invoice.paid", "{}", eid, NULL, NULL, 0);
    }
    hq_cdp_wait(
        &b,
        "(() => { const t = document.querySelector(\"#stats [data-stat='deliveries_per_s']\");"
        " return !!t && Number(t.querySelector('.v').textContent) > 0 &&"
        " t.querySelector('.k').textContent.includes('1 of 1 workers'); })()",
        15000, "a deliveries/s figure from the worker's metrics");
    console_shot(&b, "overview");

    console_assert_clean(&b);
    hq_cdp_close(&b);
    console_api_stop(&a);
    hq_test_receiver_stop(&back);
    hq_endpoint_free(&other);
    hq_endpoint_free(&flaky);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        WENV_TEST(test_seed_flow_and_dead_letter_replay, &W),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
