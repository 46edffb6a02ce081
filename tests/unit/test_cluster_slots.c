/* CLUSTER SLOTS and redirect decoding (common/cluster_slots.c). Replies are
 * built here as redisReply trees (the shapes a node sends, and shapes no node
 * should send, NULL elements included), freed with hiredis's freeReplyObject;
 * no server is needed. tests/integration/test_cluster_slot.c decodes real
 * replies; tests/fuzz/fuzz_cluster_reply.c feeds arbitrary ones. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "common/cluster_slots.h"

/* ---- Reply builders (calloc'd as hiredis does, so freeReplyObject frees them) ---- */

static redisReply *obj(int type)
{
    redisReply *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->type = type;
    return r;
}

static redisReply *num(long long v)
{
    redisReply *r = obj(REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
}

static redisReply *bytes(int type, const char *s, size_t n)
{
    redisReply *r = obj(type);
    r->str = malloc(n + 1);
    assert_non_null(r->str);
    memcpy(r->str, s, n);
    r->str[n] = '\0';
    r->len = n;
    return r;
}

static redisReply *str(const char *s)
{
    return bytes(REDIS_REPLY_STRING, s, strlen(s));
}

static redisReply *nil(void)
{
    return obj(REDIS_REPLY_NIL);
}

/* An array of n elements given as arguments (any may be NULL). */
static redisReply *arr(size_t n, ...)
{
    redisReply *r = obj(REDIS_REPLY_ARRAY);
    r->elements = n;
    r->element = n ? calloc(n, sizeof(*r->element)) : NULL;
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        r->element[i] = va_arg(ap, redisReply *);
    va_end(ap);
    return r;
}

/* [host, port, id] as Redis >= 4 sends a node. */
static redisReply *node(const char *host, long long port, const char *id)
{
    return arr(3, str(host), num(port), str(id));
}

static redisReply *range(long long a, long long b, redisReply *primary)
{
    return arr(3, num(a), num(b), primary);
}

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define ID_C "cccccccccccccccccccccccccccccccccccccccc"

static struct hq_slot_map *new_map(void)
{
    struct hq_slot_map *m = malloc(sizeof(*m));
    assert_non_null(m);
    memset(m, 0x5a, sizeof(*m)); /* garbage: the parser must overwrite everything it reports */
    return m;
}

static void assert_empty(const struct hq_slot_map *m)
{
    assert_int_equal(m->nnodes, 0);
    assert_int_equal(m->covered, 0);
    for (int s = 0; s < HQ_SLOTS; s++)
        assert_int_equal(m->owner[s], -1);
}

/* ---- Good replies ------------------------------------------------------------------ */

/* The reply redis-cli --cluster create gives three primaries and three
 * replicas, as Redis 7 sends it (a fourth, metadata element per node). */
static void test_three_primaries_with_replicas_cover_every_slot(void **state)
{
    (void)state;
    redisReply *r = arr(
        3,
        arr(4, num(0), num(5460), arr(4, str("127.0.0.1"), num(7000), str(ID_A), arr(0)),
            arr(4, str("127.0.0.1"), num(7004), str(ID_B), arr(0))),
        arr(4, num(5461), num(10922), node("127.0.0.1", 7001, ID_B), node("127.0.0.1", 7005, ID_C)),
        arr(4, num(10923), num(16383), node("127.0.0.1", 7002, ID_C),
            node("127.0.0.1", 7003, ID_A)));
    struct hq_slot_map *m = new_map();
    struct hq_err err = {0};
    assert_int_equal(hq_cluster_slots_parse(r, m, &err), 0);
    assert_int_equal(m->nnodes, 3);
    assert_int_equal(m->covered, HQ_SLOTS);
    const int edges[][2] = {{0, 7000},     {5460, 7000},  {5461, 7001},
                            {10922, 7001}, {10923, 7002}, {16383, 7002}};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        int o = m->owner[edges[i][0]];
        assert_true(o >= 0 && o < m->nnodes);
        assert_int_equal(m->node[o].port, edges[i][1]);
        assert_string_equal(m->node[o].host, "127.0.0.1");
        assert_int_equal(m->node[o].replicas, 1);
    }
    /* Replicas are never owners. */
    assert_string_equal(m->node[m->owner[0]].id, ID_A);
    assert_string_equal(m->node[m->owner[16383]].id, ID_C);
    char gaps[64];
    assert_int_equal(hq_slot_map_gaps(m, gaps, sizeof(gaps)), 0);
    assert_string_equal(gaps, "");
    freeReplyObject(r);
    free(m);
}

static void test_a_primary_with_several_ranges_is_one_node(void **state)
{
    (void)state;
    /* After resharding a node owns scattered ranges, in any order; a node
     * without an id (Redis < 4) and with a nil or empty host (the node that
     * was asked) is still routable. */
    redisReply *r = arr(3, range(100, 199, node("10.0.0.2", 7001, ID_B)),
                        range(0, 99, arr(2, str("10.0.0.1"), num(7000))),
                        range(200, 16383, arr(2, str("10.0.0.1"), num(7000))));
    struct hq_slot_map *m = new_map();
    struct hq_err err = {0};
    assert_int_equal(hq_cluster_slots_parse(r, m, &err), 0);
    assert_int_equal(m->nnodes, 2);
    assert_int_equal(m->covered, HQ_SLOTS);
    assert_int_equal(m->owner[0], m->owner[16383]);
    assert_int_not_equal(m->owner[0], m->owner[150]);
    assert_string_equal(m->node[m->owner[0]].id, "");
    assert_int_equal(m->node[m->owner[0]].replicas, 0);
    freeReplyObject(r);

    r = arr(1, range(0, 16383, arr(2, nil(), num(7005))));
    assert_int_equal(hq_cluster_slots_parse(r, m, &err), 0);
    assert_int_equal(m->nnodes, 1);
    assert_string_equal(m->node[0].host, "");
    assert_int_equal(m->node[0].port, 7005);
    freeReplyObject(r);
    r = arr(1, range(0, 16383, arr(2, str(""), num(7006))));
    assert_int_equal(hq_cluster_slots_parse(r, m, &err), 0);
    assert_string_equal(m->node[0].host, "");
    assert_int_equal(m->node[0].port, 7006);
    freeReplyObject(r);
    /* The same host on another port is another node. */
    r = arr(2, range(0, 9, node("::1", 7000, ID_A)), range(10, 19, node("::1", 7001, ID_B)));
    assert_int_equal(hq_cluster_slots_parse(r, m, &err), 0);
    assert_int_equal(m->nnodes, 2);
    assert_int_equal(m->covered, 20);
    freeReplyObject(r);
    free(m);
}

static void test_slots_without_an_owner_are_reported_not_refused(void **state)
{
    (void)state;
    redisReply *r = arr(3, range(100, 5460, node("127.0.0.1", 7000, ID_A)),
                        range(5462, 15999, node("127.0.0.1", 7001, ID_B)),
                        range(16000, 16000, node("127.0.0.1", 7002, ID_C)));
    struct hq_slot_map *m = new_map();
    struct hq_err err = {0};
    assert_int_equal(hq_cluster_slots_parse(r, m, &err), 0);
    assert_int_equal(m->covered, HQ_SLOTS - 100 - 1 - 383);
    assert_int_equal(m->owner[99], -1);
    assert_int_equal(m->owner[5461], -1);
    assert_int_equal(m->owner[16001], -1);
    char gaps[64];
    assert_int_equal(hq_slot_map_gaps(m, gaps, sizeof(gaps)), 484);
    assert_string_equal(gaps, "0-99,5461,16001-16383");
    /* Cut short, the list says so, and the count is still the whole count. */
    char small[16];
    assert_int_equal(hq_slot_map_gaps(m, small, sizeof(small)), 484);
    assert_string_equal(small, "0-99,5461...");
    char tiny[3];
    assert_int_equal(hq_slot_map_gaps(m, tiny, sizeof(tiny)), 484);
    assert_string_equal(tiny, "");
    assert_int_equal(hq_slot_map_gaps(m, NULL, 0), 484);
    freeReplyObject(r);

    /* A cluster with no slots assigned: an empty array. */
    r = arr(0);
    assert_int_equal(hq_cluster_slots_parse(r, m, &err), 0);
    assert_empty(m);
    assert_int_equal(hq_slot_map_gaps(m, gaps, sizeof(gaps)), HQ_SLOTS);
    assert_string_equal(gaps, "0-16383");
    freeReplyObject(r);
    free(m);
}

/* ---- Malformed replies ---------------------------------------------------------- */

/* Parses r into a map that held a good map before, expects code and a message
 * containing what, and a map with no owners left; frees r. */
static void assert_refused(redisReply *r, int code, const char *what)
{
    struct hq_slot_map *m = new_map();
    struct hq_err err = {0};
    redisReply *good = arr(1, range(0, 16383, node("127.0.0.1", 7000, ID_A)));
    assert_int_equal(hq_cluster_slots_parse(good, m, &err), 0);
    freeReplyObject(good);
    int rc = hq_cluster_slots_parse(r, m, &err);
    if (rc != code || !strstr(err.msg, what))
        fail_msg("got %d '%s', want %d '...%s...'", rc, err.msg, code, what);
    assert_int_equal(err.code, code);
    assert_empty(m);
    if (r)
        freeReplyObject(r);
    free(m);
}

static void test_replies_that_are_not_a_slot_table_are_refused(void **state)
{
    (void)state;
    assert_refused(NULL, HQ_EINVAL, "no reply");
    assert_refused(bytes(REDIS_REPLY_ERROR, "ERR This instance has cluster support disabled", 46),
                   HQ_EREDIS, "cluster slots: ERR This instance has cluster support disabled");
    assert_refused(bytes(REDIS_REPLY_STATUS, "OK", 2), HQ_EINVAL, "status, not an array");
    assert_refused(num(1), HQ_EINVAL, "integer, not an array");
    assert_refused(str("x"), HQ_EINVAL, "string, not an array");
    assert_refused(nil(), HQ_EINVAL, "nil, not an array");
}

static void test_malformed_entries_are_refused_with_the_entry_named(void **state)
{
    (void)state;
#define GOOD node("127.0.0.1", 7000, ID_A)
    assert_refused(arr(1, NULL), HQ_EINVAL, "entry 0: not [start, end, primary");
    assert_refused(arr(2, range(0, 1, GOOD), num(3)), HQ_EINVAL, "entry 1: not [start");
    assert_refused(arr(1, arr(2, num(0), num(1))), HQ_EINVAL, "entry 0: not [start");
    assert_refused(arr(1, arr(3, str("0"), num(1), GOOD)), HQ_EINVAL, "not integers");
    assert_refused(arr(1, arr(3, num(0), nil(), GOOD)), HQ_EINVAL, "not integers");
    assert_refused(arr(1, arr(3, NULL, num(0), GOOD)), HQ_EINVAL, "not integers");
    assert_refused(arr(1, range(5, 4, GOOD)), HQ_EINVAL, "range 5-4 is not within 0-16383");
    assert_refused(arr(1, range(-1, 4, GOOD)), HQ_EINVAL, "range -1-4");
    assert_refused(arr(1, range(0, 16384, GOOD)), HQ_EINVAL, "range 0-16384");
    assert_refused(arr(1, range(0, 9223372036854775807LL, GOOD)), HQ_EINVAL, "not within");
    assert_refused(arr(2, range(0, 100, GOOD), range(100, 200, node("h", 1, ID_B))), HQ_EINVAL,
                   "entry 1: slot 100 claimed twice");
    assert_refused(arr(1, range(0, 1, NULL)), HQ_EINVAL, "a node is not [host, port");
    assert_refused(arr(1, range(0, 1, str("127.0.0.1:7000"))), HQ_EINVAL, "a node is not");
    assert_refused(arr(1, range(0, 1, arr(1, str("h")))), HQ_EINVAL, "a node is not");
    assert_refused(arr(1, range(0, 1, arr(2, num(1), num(7000)))), HQ_EINVAL,
                   "host is not a string");
    assert_refused(arr(1, range(0, 1, arr(2, NULL, num(7000)))), HQ_EINVAL, "host is not");
    assert_refused(arr(1, range(0, 1, arr(2, str("a b"), num(7000)))), HQ_EINVAL,
                   "host is too long or not printable");
    assert_refused(arr(1, range(0, 1, arr(2, bytes(REDIS_REPLY_STRING, "a\0b", 3), num(7000)))),
                   HQ_EINVAL, "not printable");
    char longhost[HQ_CLUSTER_HOST_MAX + 1];
    memset(longhost, 'h', sizeof(longhost) - 1);
    longhost[HQ_CLUSTER_HOST_MAX] = '\0';
    assert_refused(arr(1, range(0, 1, arr(2, str(longhost), num(7000)))), HQ_EINVAL,
                   "host is too long");
    longhost[HQ_CLUSTER_HOST_MAX - 1] = '\0'; /* 255 characters: the longest host name */
    struct hq_slot_map *m = new_map();
    struct hq_err err = {0};
    redisReply *ok = arr(1, range(0, 1, arr(2, str(longhost), num(7000))));
    assert_int_equal(hq_cluster_slots_parse(ok, m, &err), 0);
    assert_string_equal(m->node[0].host, longhost);
    freeReplyObject(ok);
    free(m);
    assert_refused(arr(1, range(0, 1, arr(2, str("h"), num(0)))), HQ_EINVAL,
                   "port is not an integer in 1..65535");
    assert_refused(arr(1, range(0, 1, arr(2, str("h"), num(65536)))), HQ_EINVAL, "port");
    assert_refused(arr(1, range(0, 1, arr(2, str("h"), num(-7000)))), HQ_EINVAL, "port");
    assert_refused(arr(1, range(0, 1, arr(2, str("h"), str("7000")))), HQ_EINVAL, "port");
    assert_refused(arr(1, range(0, 1, arr(2, str("h"), NULL))), HQ_EINVAL, "port");
    assert_refused(arr(1, range(0, 1, arr(3, str("h"), num(1), num(5)))), HQ_EINVAL,
                   "id is not a string");
    assert_refused(arr(1, range(0, 1, arr(3, str("h"), num(1), str(ID_A "a")))), HQ_EINVAL,
                   "id is not a string of at most 40");
    assert_refused(arr(1, range(0, 1, arr(3, str("h"), num(1), NULL))), HQ_EINVAL, "id");
    /* A broken replica breaks the reply, as a broken primary does. */
    assert_refused(arr(1, arr(4, num(0), num(1), GOOD, arr(2, str("h"), num(0)))), HQ_EINVAL,
                   "entry 0: a node's port");
    assert_refused(arr(1, arr(4, num(0), num(1), GOOD, NULL)), HQ_EINVAL, "entry 0: a node is");
#undef GOOD
}

static void test_more_primaries_than_the_table_holds_is_etoobig(void **state)
{
    (void)state;
    /* HQ_CLUSTER_NODES_MAX primaries fit; one more is refused. */
    redisReply *r = obj(REDIS_REPLY_ARRAY);
    r->elements = HQ_CLUSTER_NODES_MAX + 1;
    r->element = calloc(r->elements, sizeof(*r->element));
    for (size_t i = 0; i < r->elements; i++)
        r->element[i] = range((long long)i, (long long)i, arr(2, str("127.0.0.1"), num(1 + i)));
    struct hq_slot_map *m = new_map();
    struct hq_err err = {0};
    r->elements--;
    assert_int_equal(hq_cluster_slots_parse(r, m, &err), 0);
    assert_int_equal(m->nnodes, HQ_CLUSTER_NODES_MAX);
    r->elements++;
    free(m);
    char want[64];
    snprintf(want, sizeof(want), "more than %d primaries", HQ_CLUSTER_NODES_MAX);
    assert_refused(r, HQ_ETOOBIG, want);
}

/* ---- Redirects and cluster errors ------------------------------------------------ */

static enum hq_redirect_kind parse(const char *s, struct hq_redirect *out)
{
    /* Garbage first: every field must be set by the parser. */
    memset(out, 0x5a, sizeof(*out));
    out->host[sizeof(out->host) - 1] = '\0';
    return hq_redirect_parse(s, strlen(s), out);
}

static void assert_target(const char *s, enum hq_redirect_kind kind, int slot, const char *host,
                          int port)
{
    struct hq_redirect r;
    if (parse(s, &r) != kind)
        fail_msg("'%s': kind %s, want %s", s, hq_redirect_name(r.kind), hq_redirect_name(kind));
    assert_int_equal(r.kind, kind);
    assert_int_equal(r.slot, slot);
    assert_string_equal(r.host, host);
    assert_int_equal(r.port, port);
}

static void test_moved_and_ask_give_slot_host_and_port(void **state)
{
    (void)state;
    assert_target("MOVED 3999 127.0.0.1:6381", HQ_REDIRECT_MOVED, 3999, "127.0.0.1", 6381);
    assert_target("ASK 3999 127.0.0.1:6381", HQ_REDIRECT_ASK, 3999, "127.0.0.1", 6381);
    assert_target("MOVED 0 redis-0.redis.svc:7000", HQ_REDIRECT_MOVED, 0, "redis-0.redis.svc",
                  7000);
    assert_target("MOVED 16383 h:65535", HQ_REDIRECT_MOVED, 16383, "h", 65535);
    assert_target("ASK 1 h:1", HQ_REDIRECT_ASK, 1, "h", 1);
    /* IPv6: the port follows the last colon; brackets are tolerated. */
    assert_target("MOVED 7 ::1:7000", HQ_REDIRECT_MOVED, 7, "::1", 7000);
    assert_target("ASK 7 2001:db8::7:30001", HQ_REDIRECT_ASK, 7, "2001:db8::7", 30001);
    assert_target("MOVED 7 [::1]:7000", HQ_REDIRECT_MOVED, 7, "::1", 7000);
    /* An empty host: the node that answered (Redis 7 with an unknown endpoint). */
    assert_target("MOVED 3999 :6380", HQ_REDIRECT_MOVED, 3999, "", 6380);
    assert_target("ASK 3999 :6380", HQ_REDIRECT_ASK, 3999, "", 6380);
    assert_string_equal(hq_redirect_name(HQ_REDIRECT_MOVED), "MOVED");
    assert_string_equal(hq_redirect_name(HQ_REDIRECT_NONE), "none");
}

static void test_cluster_state_errors_are_classified_by_their_first_word(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        enum hq_redirect_kind kind;
    } cases[] = {
        {"TRYAGAIN Multiple keys request during rehashing of slot", HQ_REDIRECT_TRYAGAIN},
        {"CLUSTERDOWN The cluster is down", HQ_REDIRECT_CLUSTERDOWN},
        {"CLUSTERDOWN Hash slot not served", HQ_REDIRECT_CLUSTERDOWN},
        {"LOADING Redis is loading the dataset in memory", HQ_REDIRECT_LOADING},
        {"CROSSSLOT Keys in request don't hash to the same slot", HQ_REDIRECT_CROSSSLOT},
        {"MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
         HQ_REDIRECT_MASTERDOWN},
        {"READONLY You can't write against a read only replica.", HQ_REDIRECT_READONLY},
        {"TRYAGAIN", HQ_REDIRECT_TRYAGAIN},
        {"CLUSTERDOWN", HQ_REDIRECT_CLUSTERDOWN},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hq_redirect r;
        if (parse(cases[i].s, &r) != cases[i].kind)
            fail_msg("'%s': %s", cases[i].s, hq_redirect_name(r.kind));
        assert_int_equal(r.slot, -1);
        assert_string_equal(r.host, "");
        assert_int_equal(r.port, 0);
        assert_string_equal(hq_redirect_name(r.kind), cases[i].s[0] == 'T'   ? "TRYAGAIN"
                                                      : cases[i].s[1] == 'L' ? "CLUSTERDOWN"
                                                      : cases[i].s[1] == 'O' ? "LOADING"
                                                      : cases[i].s[1] == 'R' ? "CROSSSLOT"
                                                      : cases[i].s[1] == 'A' ? "MASTERDOWN"
                                                                             : "READONLY");
    }
}

static void test_anything_else_is_not_a_redirect(void **state)
{
    (void)state;
    static const char *junk[] = {
        "",
        "ERR unknown command 'FOO'",
        "NOSCRIPT No matching script. Please use EVAL.",
        "WRONGTYPE Operation against a key holding the wrong kind of value",
        "MOVED",
        "MOVED ",
        "MOVED 3999",
        "MOVED 3999 ",
        "MOVED 3999 h",
        "MOVED 3999 h:",
        "MOVED 3999 h:0",
        "MOVED 3999 h:65536",
        "MOVED 3999 h:123456",
        "MOVED 3999 h:+1",
        "MOVED 3999 h:70x0",
        "MOVED 3999 h:7000 ",
        "MOVED 3999 h:7000 extra",
        "MOVED 3999 a b:7000",
        "MOVED  3999 h:7000",
        "MOVED 16384 h:7000",
        "MOVED 99999 h:7000",
        "MOVED 123456 h:7000",
        "MOVED -1 h:7000",
        "MOVED +1 h:7000",
        "MOVED x h:7000",
        "MOVED  h:7000",
        "ASK 1",
        "ASK 1 h:1x",
        "moved 1 h:1",
        "MOVEDX 1 h:1",
        "MOVE 1 h:1",
        "TRYAGAINX",
        "LOADINGfoo",
        " TRYAGAIN",
        "tryagain",
        "CLUSTER DOWN",
    };
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        struct hq_redirect r;
        if (parse(junk[i], &r) != HQ_REDIRECT_NONE)
            fail_msg("'%s' taken for %s", junk[i], hq_redirect_name(r.kind));
        assert_int_equal(r.slot, -1);
        assert_string_equal(r.host, "");
        assert_int_equal(r.port, 0);
    }
    /* Binary: a NUL inside the host, bytes past len, a NULL string. */
    struct hq_redirect r;
    assert_int_equal(hq_redirect_parse("MOVED 1 h\0st:7000", 17, &r), HQ_REDIRECT_NONE);
    assert_int_equal(hq_redirect_parse("MOVED 1 h:7000", 12, &r), HQ_REDIRECT_MOVED);
    assert_int_equal(r.port, 70);
    assert_int_equal(hq_redirect_parse("MOVED 1 h:7000", 5, &r), HQ_REDIRECT_NONE);
    assert_int_equal(hq_redirect_parse(NULL, 0, &r), HQ_REDIRECT_NONE);
    char longhost[300] = "MOVED 1 ";
    memset(longhost + 8, 'h', 260);
    strcpy(longhost + 268, ":7000");
    assert_int_equal(hq_redirect_parse(longhost, strlen(longhost), &r), HQ_REDIRECT_NONE);
}

/* A MOVED points one slot at its new primary, known or not, and a full map
 * refuses a new primary without changing anything. */
static void test_a_moved_slot_points_at_its_new_owner(void **state)
{
    (void)state;
    static struct hq_slot_map m;
    memset(&m, 0, sizeof(m));
    for (int i = 0; i < HQ_SLOTS; i++)
        m.owner[i] = -1;
    assert_int_equal(hq_slot_map_move(&m, 5, "10.0.0.1", 7000), 0);
    assert_int_equal(m.nnodes, 1);
    assert_int_equal(m.covered, 1);
    assert_int_equal(hq_slot_map_move(&m, 6, "10.0.0.1", 7000), 0);
    assert_int_equal(m.nnodes, 1); /* the same primary is not added twice */
    assert_int_equal(m.owner[6], 0);
    assert_int_equal(hq_slot_map_move(&m, 5, "::1", 7001), 0);
    assert_int_equal(m.owner[5], 1);
    assert_int_equal(m.covered, 2); /* a move of a covered slot covers nothing new */
    assert_string_equal(m.node[1].host, "::1");
    assert_int_equal(hq_slot_map_move(&m, HQ_SLOTS, "h", 1), -1);
    m.nnodes = HQ_CLUSTER_NODES_MAX;
    assert_int_equal(hq_slot_map_move(&m, 7, "new", 1), -1);
    assert_int_equal(m.owner[7], -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_primaries_with_replicas_cover_every_slot),
        cmocka_unit_test(test_a_moved_slot_points_at_its_new_owner),
        cmocka_unit_test(test_a_primary_with_several_ranges_is_one_node),
        cmocka_unit_test(test_slots_without_an_owner_are_reported_not_refused),
        cmocka_unit_test(test_replies_that_are_not_a_slot_table_are_refused),
        cmocka_unit_test(test_malformed_entries_are_refused_with_the_entry_named),
        cmocka_unit_test(test_more_primaries_than_the_table_holds_is_etoobig),
        cmocka_unit_test(test_moved_and_ask_give_slot_host_and_port),
        cmocka_unit_test(test_cluster_state_errors_are_classified_by_their_first_word),
        cmocka_unit_test(test_anything_else_is_not_a_redirect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
