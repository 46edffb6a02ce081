/* `hookq dlq` against a real redis-server: list with each filter and --json,
 * show with a pretty-printed or escaped payload, replay by id and --all
 * (fresh attempt budget, invalid entries skipped, paging past one page),
 * purge (refusal without a terminal, --older-than, --endpoint, ids), and bad
 * ids/filters refused with exit 2 before anything is touched. Dead letters are
 * written here with the contract's fields (docs/internals/redis-layout.md).
 * At P = 4 (a tagged layout): the partitions' dead letters listed merged
 * newest first (ties by partition), paged with --cursor without loss or
 * repeat, and shown, replayed (to the same partition) and purged by their
 * p<i>/ ids; ids naming no partition are refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/dlq.h"
#include "common/keys.h"
#include "common/layout_store.h"
#include "cli/output.h"
#include "tests/harness/hq_test.h"

static struct hq_test_redis R;
static redisContext *C;
static char ENV_URL[400];
static char OUT[1 << 20], ERR[8192];

/* Adds a dead letter at unix ms 'at' (entry id "<at>-<seq>") and returns its id. */
static void add_dead(char id[64], long long at, int seq, const char *ep, const char *type,
                     const char *ev, const char *reason, const char *payload)
{
    snprintf(id, 64, "%lld-%d", at, seq);
    freeReplyObject(hq_test_cmd(
        C,
        "XADD hookq:dead %s event_id %s type %s endpoint_id %s url https://example.test/h attempts 10 last_status 500 last_error http_status first_attempt_ms 1 last_attempt_ms 2 reason %s payload %s",
        id, ev, type, ep, reason, payload));
}

static int dlq(const char *const *args)
{
    const char *env[] = {ENV_URL, NULL};
    OUT[0] = ERR[0] = '\0';
    return hq_test_cli(args, env, NULL, OUT, sizeof(OUT), ERR, sizeof(ERR));
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Three entries: two hours old on ep_a, ten minutes old on ep_b (invalid), now on ep_a. */
static long long NOW;
static char ID_OLD[64], ID_MID[64], ID_NEW[64];
static void fixture(void)
{
    NOW = hq_test_now_ms();
    add_dead(ID_OLD, NOW - 2 * 3600000LL, 0, "ep_a", "invoice.paid", "ev_old", "exhausted",
             "{\"n\":1}");
    add_dead(ID_MID, NOW - 600000LL, 0, "ep_b", "user.created", "ev_mid", "invalid: payload: bad",
             "x");
    add_dead(ID_NEW, NOW, 0, "ep_a", "user.created", "ev_new", "endpoint_disabled", "{\"n\":3}");
}

static void test_list_is_newest_first_and_applies_each_filter(void **state)
{
    (void)state;
    fixture();
    const char *a[] = {"dlq", "list", NULL};
    assert_int_equal(dlq(a), 0);
    assert_int_equal(count_lines(OUT), 4); /* header + 3 */
    char *pn = strstr(OUT, "ev_new"), *pm = strstr(OUT, "ev_mid"), *po = strstr(OUT, "ev_old");
    assert_true(pn && pm && po && pn < pm && pm < po);
    assert_non_null(strstr(OUT, "endpoint_disabled"));

    char ms[32];
    snprintf(ms, sizeof(ms), "%lld", NOW - 60000);
    /* One option each: the lines listed (header included), an event that must
     * be missing and one that must be there (NULL: not checked). */
    const struct {
        const char *opt, *val;
        int lines;
        const char *absent, *present;
    } cases[] = {
        {"--endpoint", "ep_a", 3, "ev_mid", NULL},
        {"--type", "user.created", 3, "ev_old", NULL},
        {"--reason", "invalid", 2, NULL, "ev_mid"},
        {"--since", "1h", 3, "ev_old", NULL},
        {"--since", ms, 2, NULL, NULL},
        {"--since", "2000-01-01", 4, NULL, NULL},
        {"--limit", "1", 2, NULL, "ev_new"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        const char *args[] = {"dlq", "list", cases[i].opt, cases[i].val, NULL};
        assert_int_equal(dlq(args), 0);
        if (count_lines(OUT) != cases[i].lines)
            fail_msg("%s %s: %d lines, want %d:\n%s", cases[i].opt, cases[i].val, count_lines(OUT),
                     cases[i].lines, OUT);
        if (cases[i].absent)
            assert_null(strstr(OUT, cases[i].absent));
        if (cases[i].present)
            assert_non_null(strstr(OUT, cases[i].present));
    }
}

static void test_list_json_is_an_array_of_every_field(void **state)
{
    (void)state;
    fixture();
    const char *a[] = {"dlq", "list", "--json", "--endpoint", "ep_a", NULL};
    assert_int_equal(dlq(a), 0);
    assert_true(OUT[0] == '[');
    char want[200];
    snprintf(want, sizeof(want), "{\"id\":\"%s\",\"event_id\":\"ev_new\",\"type\":\"user.created\"",
             ID_NEW);
    assert_non_null(strstr(OUT, want));
    assert_non_null(strstr(OUT, "\"payload\":\"{\\\"n\\\":1}\""));
    assert_null(strstr(OUT, "ev_mid"));
    const char *none[] = {"dlq", "list", "--json", "--type", "nothing", NULL};
    assert_int_equal(dlq(none), 0);
    assert_string_equal(OUT, "[\n]\n");
}

static void test_list_pages_through_more_than_one_page(void **state)
{
    (void)state;
    freeReplyObject(hq_test_cmd(
        C, "EVAL %s 0",
        "for i = 1, 1200 do redis.call('XADD', 'hookq:dead', '*', 'event_id', 'e' .. i, 'type', i % 2 == 0 and 'even' or 'odd', 'endpoint_id', 'ep', 'reason', 'exhausted', 'payload', 'p') end return 1"));
    const char *a[] = {"dlq", "list", "--type", "odd", "--limit", "100000", NULL};
    assert_int_equal(dlq(a), 0);
    assert_int_equal(count_lines(OUT), 601);
}

static void test_show_prints_every_field_and_pretty_prints_json_payloads(void **state)
{
    (void)state;
    fixture();
    const char *a[] = {"dlq", "show", ID_OLD, NULL};
    assert_int_equal(dlq(a), 0);
    const char *fields[] = {"event_id",        "type",        "endpoint_id", "url",
                            "attempts",        "last_status", "last_error",  "first_attempt_ms",
                            "last_attempt_ms", "reason"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(*fields); i++)
        assert_non_null(strstr(OUT, fields[i]));
    assert_non_null(strstr(OUT, "{\n  \"n\": 1\n}"));

    char id[64];
    add_dead(id, NOW + 1, 0, "ep_a", "t", "ev_esc", "exhausted", "not json \x1b[31m red");
    const char *b[] = {"dlq", "show", id, NULL};
    assert_int_equal(dlq(b), 0);
    assert_non_null(strstr(OUT, "not json \\x1b[31m red"));
    assert_null(strchr(OUT, '\x1b'));

    const char *j[] = {"dlq", "show", ID_OLD, "--json", NULL};
    assert_int_equal(dlq(j), 0);
    assert_non_null(strstr(OUT, "\"reason\":\"exhausted\""));
}

static void test_show_unknown_entry_exits_1_and_bad_id_exits_2(void **state)
{
    (void)state;
    const char *a[] = {"dlq", "show", "123-0", NULL};
    assert_int_equal(dlq(a), 1);
    assert_non_null(strstr(ERR, "entry '123-0' is not in hookq:dead"));
    const char *b[] = {"dlq", "show", "abc", NULL};
    assert_int_equal(dlq(b), 2);
    assert_non_null(strstr(ERR, "entry id: 'abc' is not a stream entry id"));
}

static void test_replay_by_id_reenqueues_with_fresh_budget_and_removes_the_entry(void **state)
{
    (void)state;
    fixture();
    const char *a[] = {"dlq", "replay", ID_OLD, ID_NEW, NULL};
    assert_int_equal(dlq(a), 0);
    assert_string_equal(OUT, "replayed 2\n");
    redisReply *r = hq_test_cmd(C, "XRANGE hookq:events - +");
    assert_int_equal(r->elements, 2);
    const char *want[] = {"type",   "invoice.paid", "payload", "{\"n\":1}", "id",
                          "ev_old", "endpoint",     "ep_a",    "replay",    "1"};
    const redisReply *kv = r->element[0]->element[1];
    /* No attempt field: a fresh budget; replay = 1: not a duplicate (dedupe). */
    assert_int_equal(kv->elements, 10);
    for (int i = 0; i < 10; i++)
        assert_string_equal(kv->element[i]->str, want[i]);
    freeReplyObject(r);
    assert_int_equal(hq_test_cmd_int(C, "XLEN hookq:dead"), 1);
}

static void test_replay_skips_invalid_entries_and_keeps_them(void **state)
{
    (void)state;
    fixture();
    const char *a[] = {"dlq", "replay", ID_MID, NULL};
    assert_int_equal(dlq(a), 0);
    assert_string_equal(OUT, "replayed 0\n");
    assert_non_null(strstr(ERR, "skipped 1 entries that hold no valid event"));
    assert_int_equal(hq_test_cmd_int(C, "XLEN hookq:dead"), 3);
    assert_int_equal(hq_test_cmd_int(C, "EXISTS hookq:events"), 0);
}

static void test_replay_refuses_unknown_or_malformed_ids_and_replays_nothing(void **state)
{
    (void)state;
    fixture();
    const char *a[] = {"dlq", "replay", ID_OLD, "1-1", NULL};
    assert_int_equal(dlq(a), 1);
    assert_non_null(strstr(ERR, "entry '1-1' is not in hookq:dead; nothing changed"));
    const char *b[] = {"dlq", "replay", ID_OLD, "1-x", NULL};
    assert_int_equal(dlq(b), 2);
    assert_non_null(strstr(ERR, "entry id: '1-x'"));
    const char *c[] = {"dlq", "replay", NULL};
    assert_int_equal(dlq(c), 2);
    const char *d[] = {"dlq", "replay", ID_OLD, "--all", NULL};
    assert_int_equal(dlq(d), 2);
    assert_int_equal(hq_test_cmd_int(C, "XLEN hookq:dead"), 3);
    assert_int_equal(hq_test_cmd_int(C, "EXISTS hookq:events"), 0);
}

static void test_replay_all_applies_filters_and_reports_json_counts(void **state)
{
    (void)state;
    fixture();
    const char *a[] = {"dlq", "replay", "--all", "--type", "user.created", "--json", NULL};
    assert_int_equal(dlq(a), 0);
    assert_string_equal(OUT, "{\"replayed\":1,\"skipped\":1,\"missing\":0}\n");
    assert_int_equal(hq_test_cmd_int(C, "XLEN hookq:events"), 1);
    const char *b[] = {"dlq", "replay", "--all", "--since", "1h", NULL};
    assert_int_equal(dlq(b), 0);
    assert_string_equal(OUT, "replayed 0\n");
    const char *c[] = {"dlq", "replay", "--all", "--endpoint", "ep_a", NULL};
    assert_int_equal(dlq(c), 0);
    assert_string_equal(OUT, "replayed 1\n");
    assert_int_equal(hq_test_cmd_int(C, "XLEN hookq:dead"), 1); /* the invalid one */
}

static void test_replay_all_pages_through_thousands_of_entries(void **state)
{
    (void)state;
    freeReplyObject(hq_test_cmd(
        C, "EVAL %s 0",
        "for i = 1, 2345 do redis.call('XADD', 'hookq:dead', '*', 'event_id', 'e' .. i, 'type', 't', 'endpoint_id', 'ep', 'reason', 'exhausted', 'payload', 'p') end return 1"));
    const char *a[] = {"dlq", "replay", "--all", NULL};
    assert_int_equal(dlq(a), 0);
    assert_string_equal(OUT, "replayed 2345\n");
    assert_int_equal(hq_test_cmd_int(C, "XLEN hookq:events"), 2345);
    assert_int_equal(hq_test_cmd_int(C, "XLEN hookq:dead"), 0);
}

static void test_purge_without_a_terminal_or_yes_refuses_with_exit_2(void **state)
{
    (void)state;
    fixture();
    const char *a[] = {"dlq", "purge", "--all", NULL};
    assert_int_equal(dlq(a), 2);
    assert_non_null(strstr(ERR, "not a terminal: add --yes"));
    assert_int_equal(hq_test_cmd_int(C, "XLEN hookq:dead"), 3);
}

static void test_purge_older_than_endpoint_and_ids(void **state)
{
    (void)state;
    fixture();
    const char *a[] = {"dlq", "purge", "--older-than", "1h", "--yes", NULL};
    assert_int_equal(dlq(a), 0);
    assert_string_equal(OUT, "purged 1\n");
    assert_int_equal(hq_test_cmd_int(C, "XLEN hookq:dead"), 2);
    redisReply *r = hq_test_cmd(C, "XRANGE hookq:dead %s %s", ID_OLD, ID_OLD);
    assert_int_equal(r->elements, 0);
    freeReplyObject(r);

    const char *b[] = {"dlq", "purge", "--all", "--endpoint", "ep_b", "--yes", "--json", NULL};
    assert_int_equal(dlq(b), 0);
    assert_string_equal(OUT, "{\"purged\":1,\"skipped\":0,\"missing\":0}\n");
    assert_int_equal(hq_test_cmd_int(C, "XLEN hookq:dead"), 1);

    const char *c[] = {"dlq", "purge", ID_NEW, "--yes", NULL};
    assert_int_equal(dlq(c), 0);
    assert_string_equal(OUT, "purged 1\n");
    assert_int_equal(hq_test_cmd_int(C, "XLEN hookq:dead"), 0);
}

static void test_bad_filters_and_options_exit_2_and_touch_nothing(void **state)
{
    (void)state;
    fixture();
    struct {
        const char *args[8];
        const char *msg;
    } cases[] = {
        {{"dlq", "list", "--since", "yesterday", NULL}, "--since: 'yesterday' is not a duration"},
        {{"dlq", "list", "--since", "2026-13-01", NULL}, "--since: '2026-13-01'"},
        {{"dlq", "list", "--limit", "0", NULL}, "--limit: '0' is out of range"},
        {{"dlq", "list", "--yes", NULL}, "--yes: not an option of list"},
        {{"dlq", "frobnicate", NULL}, "unknown subcommand"},
        {{"dlq", NULL}, "needs a subcommand"},
        {{"dlq", "purge", "--all", "--older-than", "1d", "--yes", NULL}, "give one of"},
        {{"dlq", "purge", "--older-than", "soon", "--yes", NULL}, "--older-than: 'soon'"},
        {{"dlq", "replay", "--all", "--reason", "x", NULL}, "--reason: not an option of replay"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        assert_int_equal(dlq(cases[i].args), 2);
        if (!strstr(ERR, cases[i].msg))
            fail_msg("case %zu: stderr '%s' lacks '%s'", i, ERR, cases[i].msg);
        assert_int_equal(count_lines(ERR), 1);
    }
    assert_int_equal(hq_test_cmd_int(C, "XLEN hookq:dead"), 3);
}

static void test_json_pretty_printer_never_fails(void **state)
{
    (void)state;
    struct hq_buf b;
    hq_buf_init(&b, 1 << 16);
    assert_int_equal(hq_out_json_pretty("{\"a\":[1,2,{}],\"b\":\"x\\\"y\"}", 25, &b), 0);
    assert_string_equal(b.p, "{\n  \"a\": [\n    1,\n    2,\n    {}\n  ],\n  \"b\": \"x\\\"y\"\n}");
    const char *bad[] = {"{", "{\"a\"}", "[1,]", "\"\x01\"", "tru", "{} x", "[\"\\q\"]", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        hq_buf_reset(&b);
        assert_int_equal(hq_out_json_pretty(bad[i], strlen(bad[i]), &b), HQ_EINVAL);
        assert_int_equal(b.len, 0);
    }
    char deep[300];
    memset(deep, '[', 150);
    memset(deep + 150, ']', 150);
    assert_int_equal(hq_out_json_pretty(deep, 300, &b), HQ_EINVAL);
    hq_buf_free(&b);
}

/* ---- P = 4 -------------------------------------------------------------------------------- */

static struct hq_layout L4;

/* A tagged layout of 4 partitions for the default prefix (the config hash). */
static void make_p4(void)
{
    struct hq_err err = {0};
    struct hq_redis_conn *c = hq_redis_conn_open(R.url, 2000, &err);
    assert_non_null(c);
    hq_layout_free(&L4);
    assert_int_equal(hq_layout_create(c, "hookq", 4, &L4, &err), 0);
    hq_redis_conn_free(c);
}

static void add_dead_p(unsigned part, const char *id, const char *ep, const char *type,
                       const char *ev)
{
    char key[HQ_KEY_MAX];
    hq_key_dead(L4.part[part].base, key, sizeof(key));
    freeReplyObject(hq_test_cmd(
        C,
        "XADD %s %s event_id %s type %s endpoint_id %s url https://example.test/h attempts 10 last_status 500 reason exhausted payload {}",
        key, id, ev, type, ep));
}

/* 40 dead letters over 4 partitions: interleaved times, and equal ids in
 * several partitions (ties, ordered by partition). want[] is the merged
 * newest-first order as "p<i>/<id>". */
#define P4_N 40
struct p4e {
    unsigned part;
    long long ms;
    int seq;
};
static char P4_WANT[P4_N][48];
static void p4_fixture(void)
{
    make_p4();
    struct p4e e[P4_N];
    int n = 0;
    for (int k = 0; k < 9; k++)
        for (unsigned p = 0; p < 4; p++, n++)
            e[n] = (struct p4e){p, 1700000000000LL + k * 10 + (k % 3 == 0 ? 0 : p), 0};
    /* Ties: the same id in partitions 3 and 1, another seq of it in 0, 2. */
    e[n++] = (struct p4e){3, 1700000005000LL, 0};
    e[n++] = (struct p4e){1, 1700000005000LL, 0};
    e[n++] = (struct p4e){0, 1700000005000LL, 1};
    e[n++] = (struct p4e){2, 1700000005000LL, 1};
    assert_int_equal(n, P4_N);
    for (int i = 0; i < n; i++) {
        char id[48], ev[32];
        snprintf(id, sizeof(id), "%lld-%d", e[i].ms, e[i].seq);
        snprintf(ev, sizeof(ev), "ev_%d", i);
        add_dead_p(e[i].part, id, i % 2 ? "ep_odd" : "ep_even", i % 5 ? "t.a" : "t.b", ev);
    }
    /* Expected: sorted by (ms, seq) descending, then partition ascending. */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            int later = e[j].ms > e[i].ms || (e[j].ms == e[i].ms && e[j].seq > e[i].seq) ||
                        (e[j].ms == e[i].ms && e[j].seq == e[i].seq && e[j].part < e[i].part);
            if (later) {
                struct p4e t = e[i];
                e[i] = e[j];
                e[j] = t;
            }
        }
    for (int i = 0; i < n; i++)
        snprintf(P4_WANT[i], sizeof(P4_WANT[i]), "p%u/%lld-%d", e[i].part, e[i].ms, e[i].seq);
}

/* The first column of each listed line (the header skipped) into ids. */
static int listed_ids(char ids[][48], int max)
{
    int n = 0;
    const char *line = strchr(OUT, '\n');
    while (line && line[1] && n < max) {
        line++;
        sscanf(line, "%47s", ids[n++]);
        line = strchr(line, '\n');
    }
    return n;
}

static void test_p4_list_merges_partitions_newest_first(void **state)
{
    (void)state;
    p4_fixture();
    const char *a[] = {"dlq", "list", "--limit", "1000", NULL};
    assert_int_equal(dlq(a), 0);
    char ids[P4_N + 1][48];
    assert_int_equal(listed_ids(ids, P4_N + 1), P4_N);
    for (int i = 0; i < P4_N; i++)
        if (strcmp(ids[i], P4_WANT[i]) != 0)
            fail_msg("line %d: %s, want %s\n%s", i, ids[i], P4_WANT[i], OUT);
    assert_null(strstr(ERR, "--cursor")); /* everything shown: no next page */

    /* Filters apply in every partition. */
    const char *b[] = {"dlq", "list", "--endpoint", "ep_odd", "--limit", "1000", NULL};
    assert_int_equal(dlq(b), 0);
    assert_int_equal(count_lines(OUT), 1 + P4_N / 2);
    const char *j[] = {"dlq", "list", "--json", "--limit", "1", NULL};
    assert_int_equal(dlq(j), 0);
    char want[80];
    snprintf(want, sizeof(want), "[\n{\"id\":\"%s\",", P4_WANT[0]);
    assert_true(strncmp(OUT, want, strlen(want)) == 0);
}

static void test_p4_list_pages_with_the_cursor_without_loss_or_repeat(void **state)
{
    (void)state;
    p4_fixture();
    char got[P4_N + 8][48], cursor[4096] = "";
    int n = 0, pages = 0;
    for (;;) {
        const char *a[] = {"dlq",  "list", "--limit", "7", cursor[0] ? "--cursor" : NULL,
                           cursor, NULL};
        assert_int_equal(dlq(a), 0);
        pages++;
        char ids[8][48];
        int k = listed_ids(ids, 8);
        assert_true(k <= 7 && n + k <= P4_N + 8);
        for (int i = 0; i < k; i++)
            memcpy(got[n++], ids[i], 48);
        const char *more = strstr(ERR, "more: --cursor ");
        if (!more)
            break;
        assert_int_equal(sscanf(more + 15, "%4095s", cursor), 1);
        assert_true(pages < 20);
    }
    assert_int_equal(n, P4_N);
    for (int i = 0; i < P4_N; i++)
        if (strcmp(got[i], P4_WANT[i]) != 0)
            fail_msg("entry %d: %s, want %s", i, got[i], P4_WANT[i]);
    assert_int_equal(pages, (P4_N + 6) / 7);

    const char *bad[] = {"dlq", "list", "--cursor", "zz", NULL};
    assert_int_equal(dlq(bad), 2);
    assert_non_null(strstr(ERR, "--cursor: 'zz' is not a cursor printed by hookq dlq list"));
    assert_int_equal(count_lines(ERR), 1);
}

static void test_p4_show_replay_purge_by_partition_ids(void **state)
{
    (void)state;
    p4_fixture();
    char dead[4][HQ_KEY_MAX], events[4][HQ_KEY_MAX];
    for (int p = 0; p < 4; p++) {
        hq_key_dead(L4.part[p].base, dead[p], HQ_KEY_MAX);
        hq_key_events(L4.part[p].base, events[p], HQ_KEY_MAX);
    }
    /* The tied id: shown from the partition named. */
    const char *a[] = {"dlq", "show", "p1/1700000005000-0", "--json", NULL};
    assert_int_equal(dlq(a), 0);
    assert_non_null(strstr(OUT, "{\"id\":\"p1/1700000005000-0\",\"event_id\":\"ev_37\""));
    const char *b[] = {"dlq", "show", "p3/1700000005000-0", NULL};
    assert_int_equal(dlq(b), 0);
    assert_non_null(strstr(OUT, "ev_36"));

    /* Ids that name no partition, or a missing one: refused, nothing touched. */
    const char *c[] = {"dlq", "replay", "p9/1700000005000-0", NULL};
    assert_int_equal(dlq(c), 2);
    assert_non_null(strstr(ERR, "no partition 9"));
    const char *d[] = {"dlq", "show", "1700000005000-0", NULL};
    assert_int_equal(dlq(d), 2);
    assert_non_null(strstr(ERR, "name the partition"));
    const char *e[] = {"dlq", "replay", "p1/1700000005000-0", "p2/1700000005000-0", NULL};
    assert_int_equal(dlq(e), 1); /* p2 holds 5000-1, not 5000-0 */
    assert_non_null(strstr(ERR, "nothing changed"));

    /* Replay goes to the same partition's stream. */
    const char *f[] = {"dlq", "replay", "p1/1700000005000-0", "p3/1700000005000-0", NULL};
    assert_int_equal(dlq(f), 0);
    assert_string_equal(OUT, "replayed 2\n");
    for (int p = 0; p < 4; p++)
        assert_int_equal(hq_test_cmd_int(C, "XLEN %s", events[p]), p == 1 || p == 3);
    assert_int_equal(hq_test_cmd_int(C, "XLEN %s", dead[1]), 9);
    redisReply *r = hq_test_cmd(C, "XRANGE %s - +", events[3]);
    assert_string_equal(r->element[0]->element[1]->element[5]->str, "ev_36");
    freeReplyObject(r);

    /* Replay --all with a filter, across partitions. */
    const char *g[] = {"dlq", "replay", "--all", "--type", "t.b", NULL};
    assert_int_equal(dlq(g), 0);
    assert_string_equal(OUT, "replayed 8\n"); /* i % 5 == 0 of 40, ev_0..ev_35: all kept */

    /* Purge by id in one partition, then everything. */
    const char *h[] = {"dlq", "purge", "p2/1700000005000-1", "--yes", NULL};
    assert_int_equal(dlq(h), 0);
    assert_string_equal(OUT, "purged 1\n");
    const char *i[] = {"dlq", "purge", "--all", "--yes", NULL};
    assert_int_equal(dlq(i), 0);
    assert_string_equal(OUT, "purged 29\n");
    for (int p = 0; p < 4; p++)
        assert_int_equal(hq_test_cmd_int(C, "XLEN %s", dead[p]), 0);
    hq_layout_free(&L4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_list_is_newest_first_and_applies_each_filter,
                               hq_test_group_flush),
        cmocka_unit_test_setup(test_list_json_is_an_array_of_every_field, hq_test_group_flush),
        cmocka_unit_test_setup(test_list_pages_through_more_than_one_page, hq_test_group_flush),
        cmocka_unit_test_setup(test_show_prints_every_field_and_pretty_prints_json_payloads,
                               hq_test_group_flush),
        cmocka_unit_test_setup(test_show_unknown_entry_exits_1_and_bad_id_exits_2,
                               hq_test_group_flush),
        cmocka_unit_test_setup(test_replay_by_id_reenqueues_with_fresh_budget_and_removes_the_entry,
                               hq_test_group_flush),
        cmocka_unit_test_setup(test_replay_skips_invalid_entries_and_keeps_them,
                               hq_test_group_flush),
        cmocka_unit_test_setup(test_replay_refuses_unknown_or_malformed_ids_and_replays_nothing,
                               hq_test_group_flush),
        cmocka_unit_test_setup(test_replay_all_applies_filters_and_reports_json_counts,
                               hq_test_group_flush),
        cmocka_unit_test_setup(test_replay_all_pages_through_thousands_of_entries,
                               hq_test_group_flush),
        cmocka_unit_test_setup(test_purge_without_a_terminal_or_yes_refuses_with_exit_2,
                               hq_test_group_flush),
        cmocka_unit_test_setup(test_purge_older_than_endpoint_and_ids, hq_test_group_flush),
        cmocka_unit_test_setup(test_bad_filters_and_options_exit_2_and_touch_nothing,
                               hq_test_group_flush),
        cmocka_unit_test(test_json_pretty_printer_never_fails),
        cmocka_unit_test_setup(test_p4_list_merges_partitions_newest_first, hq_test_group_flush),
        cmocka_unit_test_setup(test_p4_list_pages_with_the_cursor_without_loss_or_repeat,
                               hq_test_group_flush),
        cmocka_unit_test_setup(test_p4_show_replay_purge_by_partition_ids, hq_test_group_flush),
    };
    hq_test_redis_group(&R, &C, ENV_URL, sizeof(ENV_URL));
    return cmocka_run_group_tests(tests, hq_test_group_setup, hq_test_group_teardown);
}
