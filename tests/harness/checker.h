/* The fault suite's checker: what a scenario produced against what
 * the receivers saw and what Redis holds at the end. Part of the harness
 * library (checker.c); failures use cmocka's assertions.
 *
 * API
 *   struct hq_ck ck;
 *   hq_ck_init(&ck, "hookq");                    prefix of the keys
 *   ck.tl = &tl;                                 optional (layout_env.h): produce to and read
 *                                                every partition of that layout, on its nodes;
 *                                                collect(verify=1) then also checks that the run
 *                                                was really tagged (hq_tl_assert's facts) and
 *                                                hq_ck_assert fails when it was not
 *   hq_ck_endpoint(&ck, &ep, &rcv);              ep: an endpoint made with hq_endpoint_create
 *                                                (borrowed until hq_ck_free) whose URL points at
 *                                                rcv; requests are matched to it by exact path, so
 *                                                give each endpoint its own path on a receiver
 *                                                ("/delay/2000/a", "/a"). Returns its index.
 *   hq_ck_expect_dead_endpoint(&ck, idx)         every pair for that endpoint must end dead
 *   hq_ck_produce(&ck, c, type, payload)         XADDs a plain event with a fresh id "evck_<n>"
 *                                                (to the partition of the id, with ck.tl set)
 *                                                and records a pair per registered endpoint
 *                                                whose filters match type
 *   hq_ck_produce_to(&ck, c, type, payload, idx) same, addressed to one endpoint
 *   hq_ck_record(&ck, event_id, endpoint_id, expect_dead)  records a pair produced otherwise
 *   hq_ck_note_fault(&ck, in_flight)             adds the deliveries in flight just before a
 *                                                fault to the duplicate bound
 *   hq_ck_collect(&ck, c, verify, &rep)          reads receivers + Redis into rep (below);
 *                                                verify=1 also checks every signature
 *   hq_ck_wait_settled(&ck, c, ms)               awaits: nothing lost, nothing pending, retry
 *                                                backlog empty (polls every 50 ms); 1 = settled
 *   hq_ck_assert(&ck, &rep)                      fails the test (printing the report) when any
 *                                                invariant is broken: lost, dups over the bound,
 *                                                bad or missing signature headers, requests for
 *                                                unknown pairs, dead letters other than the
 *                                                expected pairs, pending entries, retry backlog
 *   hq_ck_print(&rep, label)                     one-line summary (print_message)
 *   hq_ck_outcomes(&ck, c, &o)                   counts attempt records by outcome (delivered,
 *                                                retry, deferred, dead): failures no receiver saw
 *   hq_ck_free(&ck)
 * Process health:
 *   hq_ck_proc_sample(pid, &s)                   VmRSS (KiB) and open fds of a process
 *   hq_ck_proc_back(&base, &now, rss_pct, fd_slack, why, n)  0 when now is within rss_pct % of
 *                                                the baseline RSS and fd_slack fds of its fds;
 *                                                pass HQ_CK_RSS_PCT(pct): no RSS check under ASan
 * Keys: a pair is (webhook-id, endpoint). webhook-id is the event id and stays
 * the same across retries, so "webhook-id stable" is checked by every request
 * mapping onto a produced pair (a changed id shows up as an unknown pair and as
 * a lost one). A request counts as delivered when the receiver answered 2xx. */
#ifndef HQ_TESTS_HARNESS_CHECKER_H
#define HQ_TESTS_HARNESS_CHECKER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/endpoint.h"
#include "common/keys.h"
#include "common/sign.h"
#include "tests/harness/hq_test.h"
#include "tests/harness/layout_env.h"

#define HQ_CK_EPS_MAX 32  /* endpoints one scenario registers */
#define HQ_CK_KEY_MAX 200 /* "<event id>\x1f<endpoint id>" */
#define HQ_CK_POLL_MS 50  /* wait_settled's polling period: a full collect is ~ms per 10k */

/* ---- a tiny open-addressing map: string -> pair record ------------------------ */
struct hq_ck_pair {
    char *key;       /* owned; NULL = empty slot */
    uint64_t h;      /* FNV-1a of key */
    int expect_dead; /* 1 when this pair must end in <p>:dead */
    int ok;          /* 2xx answers received (collect) */
    int attempts;    /* requests received (collect) */
    int dead;        /* entries in <p>:dead (collect) */
    unsigned
        part; /* partition the event was produced to (its dead letter and attempts live there) */
};

struct hq_ck_map {
    struct hq_ck_pair *slots; /* owned; cap is a power of two */
    size_t cap, n;
};

struct hq_ck_pair *hq_ck_map_find(const struct hq_ck_map *m, const char *key);

/* ---- the checker ------------------------------------------------------------------- */
struct hq_ck_ep {
    const struct hq_endpoint *e;  /* borrowed */
    struct hq_test_receiver *rcv; /* borrowed */
    char path[256];               /* the URL's path: requests are matched on it */
    struct hq_sign_key k1, k2;    /* decoded keys; wiped by hq_ck_free */
    int expect_dead;              /* every pair for it must be dead-lettered */
};

struct hq_ck {
    char prefix[64];
    struct hq_ck_ep eps[HQ_CK_EPS_MAX];
    int neps;
    struct hq_ck_map pairs; /* produced (event, endpoint) pairs */
    long seq;               /* next generated event number */
    long long dup_bound;    /* sum of deliveries in flight sampled before each fault */
    int nfaults;
    struct hq_tl *tl; /* borrowed: the layout every read and write goes through (NULL: untagged
                       * under prefix, on the caller's context) */
};

struct hq_ck_report {
    size_t pairs;                   /* produced (event, endpoint) pairs */
    size_t delivered;               /* pairs with at least one 2xx */
    size_t dead;                    /* pairs found in <p>:dead */
    size_t lost;                    /* pairs neither delivered nor dead-lettered */
    size_t dups;                    /* 2xx answers beyond the first, summed over pairs */
    size_t requests;                /* requests matched to a produced pair */
    size_t failed_attempts;         /* of those, answered non-2xx or not at all */
    int max_attempts;               /* most requests any one pair received */
    size_t bad_sig;                 /* requests whose signature no endpoint key verifies */
    size_t no_headers;              /* requests missing webhook-id/-timestamp/-signature */
    size_t unknown;                 /* requests or dead letters for no produced pair */
    size_t dead_unexpected;         /* dead pairs that were not expected dead */
    size_t dead_missing;            /* expected-dead pairs not in <p>:dead */
    size_t dead_twice;              /* pairs dead-lettered more than once */
    size_t dead_total;              /* entries in <p>:dead */
    long long pending;              /* XPENDING count of the workers group (0 if no group) */
    long long retry;                /* ZCARD <p>:retry */
    long long retry_data;           /* HLEN <p>:retry:data */
    long long dup_bound;            /* copied from the checker */
    size_t dead_wrong_part;         /* dead letters in another partition than their event's */
    int layout_checked;             /* a tagged layout: collected with verify, fields below set */
    unsigned parts_used;            /* partitions whose events stream received entries */
    unsigned nodes_used;            /* distinct nodes holding those streams */
    int untagged_keys;              /* untagged keys that exist (must be none when tagged) */
    char first_lost[HQ_CK_KEY_MAX]; /* one lost pair, for the failure message */
    char problem[640];              /* first unknown/bad request seen */
};

void hq_ck_init(struct hq_ck *ck, const char *prefix);

void hq_ck_free(struct hq_ck *ck);

int hq_ck_endpoint(struct hq_ck *ck, const struct hq_endpoint *e, struct hq_test_receiver *rcv);

void hq_ck_expect_dead_endpoint(struct hq_ck *ck, int idx);

void hq_ck_pair_key(char *out, const char *event_id, const char *endpoint_id);

/* Records a pair whose event went to the partition its id maps to (hq_layout_partition_for). */
void hq_ck_record(struct hq_ck *ck, const char *event_id, const char *endpoint_id, int expect_dead);

/* The same for an event written to partition part. */
void hq_ck_record_in(struct hq_ck *ck, const char *event_id, const char *endpoint_id,
                     int expect_dead, unsigned part);

/* Produces one event fanned out by type; returns the pairs it created. */
int hq_ck_produce(struct hq_ck *ck, redisContext *c, const char *type, const char *payload);

void hq_ck_produce_to(struct hq_ck *ck, redisContext *c, const char *type, const char *payload,
                      int idx);

void hq_ck_note_fault(struct hq_ck *ck, long long in_flight);

/* Writes n retries of fresh events ("evck_<n>", type, payload) for endpoint
 * idx straight into the retry zset and data hash of each event's partition, as
 * a failed first attempt would (attempt 1, the contract's msgpack map), all
 * due at due_ms (unix ms), and records their pairs. In script calls of 2,000,
 * so none holds Redis long: 200,000 take about a second. */
void hq_ck_fill_retries(struct hq_ck *ck, redisContext *c, int idx, const char *type,
                        const char *payload, long n, int64_t due_ms);

/* The receiver's current in-flight count (thread-safe). */
int hq_ck_in_flight(struct hq_test_receiver *rcv);

void hq_ck_collect(struct hq_ck *ck, redisContext *c, int verify, struct hq_ck_report *rep);

void hq_ck_print(const struct hq_ck_report *rep, const char *label);

struct hq_ck_wait_arg {
    struct hq_ck *ck;
    redisContext *c;
    struct hq_ck_report rep;
};

/* Awaits settling; on timeout prints the last report and returns 0. */
int hq_ck_wait_settled(struct hq_ck *ck, redisContext *c, int timeout_ms);

/* Fails the test when any invariant is broken (hq_ck_assert_layout's included). */
void hq_ck_assert(const struct hq_ck *ck, const struct hq_ck_report *rep);

/* Only the layout part: with ck.tl asking for a tagged layout, fails unless the
 * report (collected with verify = 1) shows P as asked, more than one partition's
 * stream fed (on every primary of a cluster) and no untagged key. For scenarios
 * that check the other invariants one by one. */
void hq_ck_assert_layout(const struct hq_ck *ck, const struct hq_ck_report *rep);

/* ---- attempt records (hq_attempts_read) ------------------------------------------------ */
struct hq_ck_outcomes {
    size_t records, delivered, retry, deferred, dead, other; /* by "outcome" */
};

/* Counts the outcomes of every attempt record of the produced events
 * (attempts_read.lua pipelined, 500 at a time): failures the receivers never saw (a
 * refused or reset connection) show up here as "retry". */
void hq_ck_outcomes(struct hq_ck *ck, redisContext *c, struct hq_ck_outcomes *o);

/* ---- process health ------------------------------------------------------------------ */
struct hq_ck_proc {
    long rss_kb; /* VmRSS */
    int fds;     /* entries in /proc/<pid>/fd */
};

int hq_ck_proc_sample(pid_t pid, struct hq_ck_proc *s);

/* ASan keeps freed memory in quarantine (256 MiB by default), so a sanitized
 * process's RSS says nothing about leaks: scenarios pass HQ_CK_RSS_PCT(n), which
 * skips the RSS check there, and rely on LeakSanitizer at the worker's exit. */
#if defined(__SANITIZE_ADDRESS__)
#define HQ_CK_RSS_PCT(n) (-1)
#else
#define HQ_CK_RSS_PCT(n) (n)
#endif

/* 0 when now is back within rss_pct % (RSS; < 0: not checked) and fd_slack (fds) of base;
 * otherwise -1 with the reason in why. */
int hq_ck_proc_back(const struct hq_ck_proc *base, const struct hq_ck_proc *now, int rss_pct,
                    int fd_slack, char *why, size_t n);

/* Samples pid into now until hq_ck_proc_back says it is back within the bounds
 * of base, for at most timeout_ms: a worker started with --idle-close closes
 * the burst's keep-alive connections once quiet, so its fds come back to where
 * they were before the traffic. 0 when back; -1 with the reason in why. */
int hq_ck_proc_wait_back(pid_t pid, const struct hq_ck_proc *base, struct hq_ck_proc *now,
                         int rss_pct, int fd_slack, int timeout_ms, char *why, size_t n);

/* Clients connected to Redis (CLIENT LIST lines): a worker holds two (reader
 * and writer) once ready, a scheduler one. */
int hq_ck_redis_clients(redisContext *c);

#endif
