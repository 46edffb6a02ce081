/* The browser driver itself (tests/harness/cdp.h), on pages given as data:
 * URLs: typing and clicking reach the page as user input, a hidden element
 * cannot be clicked, dialogs and exceptions are seen (the console test's XSS
 * check relies on it), screenshots are PNG files. Needs Debian's chromium:
 * a missing browser fails, it does not skip. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/harness/cdp.h"

static const char PAGE[] =
    "data:text/html,<title>t</title><input id=a><button id=b>go</button>"
    "<button id=hid hidden>hidden</button><p id=out></p>"
    "<script>document.getElementById('b').addEventListener('click', () => {"
    " document.getElementById('out').textContent = 'typed: ' + document.getElementById('a').value;"
    "});</script>";

static void test_types_clicks_and_reads_text(void **state)
{
    (void)state;
    struct hq_cdp b;
    hq_cdp_launch(&b, 800, 600);
    hq_cdp_navigate(&b, PAGE);
    hq_cdp_type(&b, "#a", "<img src=x onerror=alert(1)>");
    hq_cdp_click(&b, "#b");
    hq_cdp_wait(&b, "document.getElementById('out').textContent.startsWith('typed:')", 5000,
                "the click handler");
    char text[200];
    hq_cdp_text(&b, "#out", text, sizeof(text));
    assert_string_equal(text, "typed: <img src=x onerror=alert(1)>");
    /* typing again replaces the value */
    hq_cdp_type(&b, "#a", "second");
    hq_cdp_eval_str(&b, "document.getElementById('a').value", text, sizeof(text));
    assert_string_equal(text, "second");
    assert_int_equal(b.dialogs, 0);
    assert_int_equal(b.exceptions, 0);
    char path[400];
    snprintf(path, sizeof(path), "%s/screenshots", HQ_TEST_BUILD);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/screenshots/cdp-selftest.png", HQ_TEST_BUILD);
    hq_cdp_screenshot(&b, path);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    unsigned char sig[8];
    assert_int_equal(fread(sig, 1, 8, fp), 8);
    fclose(fp);
    assert_memory_equal(sig, "\x89PNG\r\n\x1a\n", 8);
    hq_cdp_close(&b);
}

static void test_dialogs_and_exceptions_are_counted(void **state)
{
    (void)state;
    struct hq_cdp b;
    hq_cdp_launch(&b, 800, 600);
    hq_cdp_navigate(&b, "data:text/html,<p>x</p>");
    /* a dialog opened by a timer (as an onerror handler would) is seen and
     * dismissed: the evaluation that waits for it returns */
    json_decref(
        hq_cdp_eval(&b, "new Promise((r) => setTimeout(() => { alert('boom'); r(1); }, 10))"));
    assert_int_equal(b.dialogs, 1);
    assert_string_equal(b.dialog, "boom");
    json_decref(hq_cdp_eval(
        &b, "new Promise((r) => { setTimeout(() => { throw new Error('uncaught'); }, 0);"
            " setTimeout(r, 50); })"));
    assert_int_equal(b.exceptions, 1);
    hq_cdp_close(&b);
}

static void test_hidden_elements_cannot_be_clicked(void **state)
{
    (void)state;
    struct hq_cdp b;
    hq_cdp_launch(&b, 800, 600);
    hq_cdp_navigate(&b, PAGE);
    json_t *v = hq_cdp_eval(&b, "getComputedStyle(document.getElementById('hid')).display");
    assert_string_equal(json_string_value(v), "none");
    json_decref(v);
    /* hq_cdp_click would fail the test: check its visibility predicate instead */
    v = hq_cdp_eval(&b, "document.getElementById('hid').getBoundingClientRect().width");
    assert_true(json_number_value(v) == 0);
    json_decref(v);
    hq_cdp_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types_clicks_and_reads_text),
        cmocka_unit_test(test_dialogs_and_exceptions_are_counted),
        cmocka_unit_test(test_hidden_elements_cannot_be_clicked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
