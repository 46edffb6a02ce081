/* /v1/event-types offers what a UI needs for its checkboxes: the filters
 * endpoints subscribe with (and how many use each) and the event types the
 * workers have seen (<reg>:types, noted once per type per cache refresh), a
 * type nobody subscribes to yet included with subscribed 0. Real redis, a
 * real worker and a real `hookq api`. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>

#include "tests/harness/worker_env.h"
#include "tests/harness/api_env.h"

static struct wenv W;
static struct hq_api_env A;
static char KEY[128];

/* The entry for name in /v1/event-types' data, or NULL; *doc to json_decref. */
static json_t *type_entry(const char *name, json_t **doc)
{
    struct hq_api_resp r;
    assert_int_equal(hq_api_call(&A, "GET", "/v1/event-types", KEY, NULL, &r), 200);
    *doc = hq_api_resp_json(&r);
    hq_api_resp_free(&r);
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(*doc, "data"), i,
                       t) if (strcmp(json_string_value(json_object_get(t, "name")), name) ==
                              0) return t;
    return NULL;
}

static int type_seen(void *arg)
{
    json_t *doc;
    json_t *t = type_entry(arg, &doc);
    int seen = t && json_integer_value(json_object_get(t, "last_seen_ms")) > 0;
    json_decref(doc);
    return seen;
}

static void test_seen_types_are_offered_beside_the_subscribed_filters(void **state)
{
    (void)state;
    struct hq_endpoint ep;
    wenv_endpoint_at(&W, "/inv", "invoice.*", 0, &ep);
    hq_api_env_start(&A, wenv_url(&W), NULL);
    hq_api_env_key(wenv_url(&W), "read", NULL, KEY, sizeof(KEY));
    /* Before any event: the filter alone, never seen. */
    json_t *doc;
    json_t *t = type_entry("invoice.*", &doc);
    assert_non_null(t);
    assert_int_equal(json_integer_value(json_object_get(t, "subscribed")), 1);
    assert_true(json_is_null(json_object_get(t, "last_seen_ms")));
    json_decref(doc);
    assert_null(type_entry("user.signed_up", &doc));
    json_decref(doc);

    pid_t wk = wenv_worker(&W, NULL, NULL);
    wenv_produce(&W, "user.signed_up", "{}", "evt_types_1", NULL, NULL, 0);
    wenv_produce(&W, "invoice.paid", "{}", "evt_types_2", NULL, NULL, 0);
    wenv_wait(&W, type_seen, "user.signed_up", 15000, "user.signed_up among the seen types");
    wenv_wait(&W, type_seen, "invoice.paid", 15000, "invoice.paid among the seen types");
    t = type_entry("user.signed_up", &doc);
    assert_int_equal(json_integer_value(json_object_get(t, "subscribed")), 0);
    json_decref(doc);
    t = type_entry("invoice.*", &doc);
    assert_int_equal(json_integer_value(json_object_get(t, "subscribed")), 1);
    json_decref(doc);
    assert_int_equal(hq_test_kill_wait(wk, SIGTERM, 20000), 0);
    hq_api_env_stop(&A);
    hq_endpoint_free(&ep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        WENV_TEST(test_seen_types_are_offered_beside_the_subscribed_filters, &W),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
