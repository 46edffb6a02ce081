/* `hookq migrate --partitions P [--wait DUR] [--dry-run]`: moves an untagged
 * deployment (P = 1, today's key names) on one Redis to a tagged layout of P
 * partitions, by the protocol of docs/operations.md ("Partitioning a
 * deployment"):
 *
 *   1. write <prefix>:{reg}:config with state=migrating (the target layout);
 *   2. wait (--wait) until the live consumers of the old stream have reported
 *      in <prefix>:{reg}:migrate:paused that they hold nothing;
 *   3. RENAME the untagged keys into the tagged names: the fixed keys in one
 *      MULTI/EXEC (stream with its group and PEL, the retry lane likewise,
 *      retry, retry:data, dead -> partition 0; endpoints, endpoints:ver -> {reg}), then SCAN +
 *      pipelined RENAMENX for :ep:*, :idx:t:*, :idx:p:* (-> {reg}) and :att:*,
 *      :attempts:* (attempt records -> partition 0; the bucket index
 *      :attempts is a fixed key) and :dd:* (dedupe claim generations ->
 *      partition 0; their index :dd is a fixed key);
 *   4. create group `workers` on every partition's stream;
 *   5. HDEL state, DEL the paused set: workers restart on the new layout;
 *   6. sweep what old producers XADDed to <prefix>:events meanwhile into the
 *      partitions (producer rule), entry by entry in a script (no loss, no
 *      duplicate when interrupted).
 *
 * Every step is idempotent, so a run that died mid-way is finished by running
 * again (the config says state=migrating): a key is renamed only when it still
 * exists; a key whose tagged name exists already (written meanwhile by a
 * consumer that never paused) is merged into it instead of overwriting it.
 * Single Redis only: a cluster is reached by migrating first, then importing
 * (redis-cli --cluster import). */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cmd.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/event.h"
#include "common/keys.h"
#include "common/layout.h"
#include "common/layout_store.h"
#include "common/limits.h"
#include "common/redis_conn.h"
#include "common/redis_sync.h"

#define CMD              "migrate"
#define MIG_LIVE_IDLE_MS 15000 /* a consumer idle for less is live: it may hold entries */
#define MIG_POLL_MS      200   /* how often the paused set is read while waiting */
#define MIG_SCAN_COUNT   "1000"
#define MIG_SWEEP_PAGE   500
#define MIG_NAMES_MAX    256 /* consumers tracked while waiting */

/* Writes the config with state=migrating unless one exists: atomic, so two
 * runs (or a cluster's auto-creation) cannot both write one. KEYS[1] config.
 * Returns 1 written, 0 existed. */
static const char *create_migrating = "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end "
                                      "redis.call('HSET', KEYS[1], unpack(ARGV)) return 1";

/* Merges KEYS[1] (an untagged key written after its tagged twin KEYS[2]
 * existed) into KEYS[2], then deletes it: lists are appended, sets and zsets
 * united (a zset keeps the lower score: the earlier retry), hashes keep the
 * tagged field when both have one, streams are re-added entry by entry,
 * counters keep the larger value. Returns the elements moved. */
static const char *merge_script =
    "local t = redis.call('TYPE', KEYS[1])['ok'] local n = 0 "
    "if t == 'list' then local v = redis.call('LRANGE', KEYS[1], 0, -1) "
    "  for i = 1, #v do redis.call('RPUSH', KEYS[2], v[i]) end n = #v "
    "elseif t == 'set' then n = redis.call('SCARD', KEYS[1]) "
    "  redis.call('SUNIONSTORE', KEYS[2], KEYS[2], KEYS[1]) "
    "elseif t == 'zset' then n = redis.call('ZCARD', KEYS[1]) "
    "  redis.call('ZUNIONSTORE', KEYS[2], 2, KEYS[2], KEYS[1], 'AGGREGATE', 'MIN') "
    "elseif t == 'hash' then local v = redis.call('HGETALL', KEYS[1]) "
    "  for i = 1, #v, 2 do n = n + redis.call('HSETNX', KEYS[2], v[i], v[i + 1]) end "
    "elseif t == 'stream' then local v = redis.call('XRANGE', KEYS[1], '-', '+') "
    "  for i = 1, #v do redis.call('XADD', KEYS[2], '*', unpack(v[i][2])) end n = #v "
    "elseif t == 'string' then local a = tonumber(redis.call('GET', KEYS[1])) or 0 "
    "  local b = tonumber(redis.call('GET', KEYS[2])) or 0 "
    "  if a > b then redis.call('SET', KEYS[2], a) end n = 1 "
    "end redis.call('DEL', KEYS[1]) return n";

/* Moves entries of the old stream KEYS[1] to the partitions' streams
 * KEYS[2..P+1]: ARGV holds pairs (entry id, partition index). An entry
 * already gone (moved by an earlier, interrupted run) is skipped, so a move is
 * never repeated. Returns the entries moved. */
static const char *sweep_script =
    "local n = 0 for i = 1, #ARGV, 2 do "
    "  local r = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i]) "
    "  if #r == 1 then redis.call('XADD', KEYS[tonumber(ARGV[i + 1]) + 2], '*', unpack(r[1][2])) "
    "    redis.call('XDEL', KEYS[1], ARGV[i]) n = n + 1 end "
    "end return n";

/* Deletes the old stream once it is empty (an XADD racing the check waits for
 * the next round of the sweep). Returns 1 deleted or absent, 0 not empty. */
static const char *drop_if_empty = "if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end "
                                   "if redis.call('XLEN', KEYS[1]) > 0 then return 0 end "
                                   "redis.call('DEL', KEYS[1]) return 1";

struct counts {
    long long fixed;  /* fixed keys renamed */
    long long reg;    /* registry keys renamed (:ep:*, :idx:*) */
    long long att;    /* attempt record keys renamed (lists, buckets) */
    long long dd;     /* dedupe claim generations renamed */
    long long merged; /* keys merged into an existing tagged twin */
    long long swept;  /* stray events moved into the partitions */
    long long groups; /* groups created */
    int consumers;    /* live consumers seen */
    int unpaused;     /* of which did not report */
    int resumed;      /* a previous run's migration was finished */
};

struct mig {
    redisContext *c;
    const char *prefix;
    struct hq_layout L; /* the target layout */
    long long wait_ms;
    int dry;
    struct counts n;
    struct hq_err err;
};

/* A command (argv form); NULL with m->err on I/O failures and error replies. */
static redisReply *cmdv(struct mig *m, int argc, const char **argv)
{
    return hq_redis_cmd(m->c, &m->err, argc, argv, NULL);
}

static long long cmd_int(struct mig *m, int argc, const char **argv, int *ok)
{
    redisReply *r = cmdv(m, argc, argv);
    *ok = r != NULL;
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    if (r)
        freeReplyObject(r);
    return v;
}

static int exists(struct mig *m, const char *key, int *ok)
{
    const char *av[] = {"EXISTS", key};
    return cmd_int(m, 2, av, ok) > 0;
}

/* ---- Step 1: the config ---------------------------------------------------------------- */

static int write_config(struct mig *m, int *written)
{
    char key[HQ_KEY_MAX], ver[16], parts[16];
    static char tags[HQ_LAYOUT_TAGS_MAX];
    hq_key_config(m->prefix, key, sizeof(key));
    hq_layout_tags_join(&m->L, tags, sizeof(tags));
    snprintf(ver, sizeof(ver), "%d", HQ_LAYOUT_VERSION);
    snprintf(parts, sizeof(parts), "%u", m->L.nparts);
    const char *av[] = {"EVAL",       create_migrating,
                        "1",          key,
                        "version",    ver,
                        "partitions", parts,
                        "tags",       tags,
                        "state",      HQ_LAYOUT_STATE_MIGRATING};
    int ok;
    *written = cmd_int(m, 12, av, &ok) == 1;
    return ok ? 0 : -1;
}

/* ---- Step 2: waiting for the consumers ----------------------------------------------------- */

struct names {
    char *v[MIG_NAMES_MAX];
    int n;
};

static int names_has(const struct names *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->v[i], name) == 0)
            return 1;
    return 0;
}

static void names_add(struct names *s, const char *name)
{
    if (!names_has(s, name) && s->n < MIG_NAMES_MAX)
        s->v[s->n++] = hq_strdup(name);
}

static void names_free(struct names *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->v[i]);
    s->n = 0;
}

static const redisReply *field_of(const redisReply *kv, const char *name)
{
    for (size_t j = 0; kv->type == REDIS_REPLY_ARRAY && j + 1 < kv->elements; j += 2) {
        const redisReply *k = kv->element[j];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0)
            return kv->element[j + 1];
    }
    return NULL;
}

/* Adds the consumers of the old stream's group that were active in the last
 * MIG_LIVE_IDLE_MS to live. A missing stream or group has none. */
static int read_live(struct mig *m, struct names *live)
{
    char ev[HQ_KEY_MAX];
    hq_key_events(m->prefix, ev, sizeof(ev));
    const char *av[] = {"XINFO", "CONSUMERS", ev, HQ_GROUP};
    redisReply *r = redisCommandArgv(m->c, 4, av, NULL);
    if (!r)
        return hq_err_set(&m->err, HQ_EREDIS, "redis: %s", m->c->errstr);
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *name = field_of(r->element[i], "name");
            const redisReply *idle = field_of(r->element[i], "idle");
            if (name && name->type == REDIS_REPLY_STRING && idle &&
                idle->type == REDIS_REPLY_INTEGER && idle->integer < MIG_LIVE_IDLE_MS)
                names_add(live, name->str);
        }
    }
    freeReplyObject(r); /* an error reply: no such key or no group, so no consumer */
    return 0;
}

static int read_paused(struct mig *m, struct names *paused)
{
    char key[HQ_KEY_MAX];
    hq_key_migrate_paused(m->prefix, key, sizeof(key));
    const char *av[] = {"SMEMBERS", key};
    redisReply *r = cmdv(m, 2, av);
    if (!r)
        return -1;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            names_add(paused, r->element[i]->str);
    freeReplyObject(r);
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits until every live consumer (seen at any poll) has reported paused, or
 * m->wait_ms passes; then names on stderr the ones that did not. */
static int wait_paused(struct mig *m)
{
    struct names live = {0}, paused = {0};
    int64_t deadline = hq_mono_ms() + m->wait_ms;
    int rc = 0, missing = 0;
    for (;;) {
        if (read_live(m, &live) != 0 || read_paused(m, &paused) != 0) {
            rc = -1;
            break;
        }
        missing = 0;
        for (int i = 0; i < live.n; i++)
            missing += !names_has(&paused, live.v[i]);
        if (missing == 0 || hq_mono_ms() >= deadline)
            break;
        sleep_ms(MIG_POLL_MS);
    }
    m->n.consumers = live.n;
    m->n.unpaused = rc == 0 ? missing : 0;
    if (rc == 0 && missing > 0) {
        fprintf(stderr,
                "hookq %s: warning: %d of %d live consumers did not pause within %lld ms:", CMD,
                missing, live.n, m->wait_ms);
        for (int i = 0; i < live.n; i++)
            if (!names_has(&paused, live.v[i]))
                fprintf(stderr, " %s", live.v[i]);
        fprintf(stderr, "; going on (what they hold stays pending in partition 0 and is "
                        "reclaimed there)\n");
    }
    names_free(&live);
    names_free(&paused);
    return rc;
}

/* ---- Step 3: renames ------------------------------------------------------------------------ */

#define NFIXED 11

/* The fixed keys: old name -> new name. */
static void fixed_keys(const struct mig *m, char src[NFIXED][HQ_KEY_MAX],
                       char dst[NFIXED][HQ_KEY_MAX])
{
    const char *p0 = m->L.part[0].base, *reg = m->L.reg;
    hq_key_events(m->prefix, src[0], HQ_KEY_MAX);
    hq_key_events(p0, dst[0], HQ_KEY_MAX);
    hq_key_retry(m->prefix, src[1], HQ_KEY_MAX);
    hq_key_retry(p0, dst[1], HQ_KEY_MAX);
    hq_key_retry_data(m->prefix, src[2], HQ_KEY_MAX);
    hq_key_retry_data(p0, dst[2], HQ_KEY_MAX);
    hq_key_dead(m->prefix, src[3], HQ_KEY_MAX);
    hq_key_dead(p0, dst[3], HQ_KEY_MAX);
    hq_key_endpoints(m->prefix, src[4], HQ_KEY_MAX);
    hq_key_endpoints(reg, dst[4], HQ_KEY_MAX);
    hq_key_endpoints_version(m->prefix, src[5], HQ_KEY_MAX);
    hq_key_endpoints_version(reg, dst[5], HQ_KEY_MAX);
    hq_key_attempt_index(m->prefix, src[6], HQ_KEY_MAX);
    hq_key_attempt_index(p0, dst[6], HQ_KEY_MAX);
    hq_key_retries(m->prefix, src[7], HQ_KEY_MAX); /* the retry lane, with its group */
    hq_key_retries(p0, dst[7], HQ_KEY_MAX);
    /* Retained deliveries (docs/resend.md). Merged into a twin a worker wrote
     * meanwhile, the byte count keeps the larger (the string rule): an
     * undercount until the keys expire, never a loss. */
    hq_key_retained(m->prefix, src[8], HQ_KEY_MAX);
    hq_key_retained(p0, dst[8], HQ_KEY_MAX);
    hq_key_retained_bytes(m->prefix, src[9], HQ_KEY_MAX);
    hq_key_retained_bytes(p0, dst[9], HQ_KEY_MAX);
    /* Dedupe claims (idempotent events): the generations' index. Merged into a
     * twin, a generation listed in both keeps the earlier end (ZUNIONSTORE MIN):
     * a claim written meanwhile may be forgotten up to a generation early. */
    hq_key_dedupe_index(m->prefix, src[10], HQ_KEY_MAX);
    hq_key_dedupe_index(p0, dst[10], HQ_KEY_MAX);
}

static int merge(struct mig *m, const char *src, const char *dst)
{
    const char *av[] = {"EVAL", merge_script, "2", src, dst};
    int ok;
    (void)cmd_int(m, 5, av, &ok);
    if (ok)
        m->n.merged++;
    return ok ? 0 : -1;
}

/* RENAMEs in one MULTI/EXEC every fixed key that exists and whose new name
 * does not (WATCHed, retried when something wrote one meanwhile). A fixed key
 * whose new name exists is merged into it, except the stream: its entries
 * are the sweep's (they go to the partitions by the producer rule). */
static int rename_fixed(struct mig *m)
{
    char src[NFIXED][HQ_KEY_MAX], dst[NFIXED][HQ_KEY_MAX];
    fixed_keys(m, src, dst);
    for (int tries = 0; tries < 100; tries++) {
        const char *w[1 + 2 * NFIXED] = {"WATCH"};
        for (int i = 0; i < NFIXED; i++) {
            w[1 + 2 * i] = src[i];
            w[2 + 2 * i] = dst[i];
        }
        redisReply *r = cmdv(m, 1 + 2 * NFIXED, w);
        if (!r)
            return -1;
        freeReplyObject(r);
        int move[NFIXED], twin[NFIXED], nmove = 0, ok = 1;
        for (int i = 0; i < NFIXED && ok; i++) {
            int s = exists(m, src[i], &ok), d = ok ? exists(m, dst[i], &ok) : 0;
            move[i] = s && !d;
            twin[i] = s && d;
            nmove += move[i];
        }
        if (!ok)
            return -1;
        if (nmove > 0) {
            const char *multi[] = {"MULTI"};
            if (!(r = cmdv(m, 1, multi)))
                return -1;
            freeReplyObject(r);
            for (int i = 0; i < NFIXED; i++) {
                if (!move[i])
                    continue;
                const char *av[] = {"RENAME", src[i], dst[i]};
                if (!(r = cmdv(m, 3, av)))
                    return -1;
                freeReplyObject(r);
            }
            const char *exec[] = {"EXEC"};
            if (!(r = cmdv(m, 1, exec)))
                return -1;
            int aborted = r->type == REDIS_REPLY_NIL;
            freeReplyObject(r);
            if (aborted)
                continue; /* a watched key changed: look again */
            m->n.fixed += nmove;
        } else {
            const char *unwatch[] = {"UNWATCH"};
            if (!(r = cmdv(m, 1, unwatch)))
                return -1;
            freeReplyObject(r);
        }
        for (int i = 1; i < NFIXED; i++)
            if (twin[i] && merge(m, src[i], dst[i]) != 0)
                return -1;
        return 0;
    }
    return hq_err_set(&m->err, HQ_EREDIS, "the fixed keys kept changing during 100 tries");
}

/* Copies s into out with the glob characters of a SCAN pattern escaped. */
static void glob_escape(const char *s, char *out, size_t n)
{
    size_t k = 0;
    for (; *s && k + 2 < n; s++) {
        if (strchr("*?[]\\", *s))
            out[k++] = '\\';
        out[k++] = *s;
    }
    out[k] = '\0';
}

typedef int (*key_fn)(const char *base, const char *id, char *out, size_t n);

/* Renames every "<prefix>:<kind>:<id>" (kind_fn(prefix, id)) to
 * kind_fn(dst_base, id): SCAN, then one pipelined RENAMENX per page. The
 * pattern starts with "<prefix>:<kind>:" literally, so tagged names
 * ("<prefix>:{...}:...") never match. [out] *count renamed (or, dry, found). */
static int rename_pattern(struct mig *m, key_fn kind_fn, const char *dst_base, long long *count)
{
    char esc[HQ_PREFIX_MAX * 2 + 1], pattern[HQ_KEY_MAX], head[HQ_KEY_MAX];
    glob_escape(m->prefix, esc, sizeof(esc));
    kind_fn(esc, "*", pattern, sizeof(pattern));
    size_t hl = (size_t)kind_fn(m->prefix, "", head, sizeof(head));
    char cursor[32] = "0";
    do {
        const char *av[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", MIG_SCAN_COUNT};
        redisReply *r = cmdv(m, 6, av);
        if (!r)
            return -1;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING) {
            freeReplyObject(r);
            return hq_err_set(&m->err, HQ_EREDIS, "redis: unexpected reply to SCAN");
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        const redisReply *keys = r->element[1];
        size_t nk = keys->type == REDIS_REPLY_ARRAY ? keys->elements : 0;
        char(*dst)[HQ_KEY_MAX] = hq_calloc(nk ? nk : 1, sizeof(*dst));
        int rc = 0;
        for (size_t i = 0; i < nk; i++) {
            const redisReply *k = keys->element[i];
            if (k->type != REDIS_REPLY_STRING || k->len < hl || memcmp(k->str, head, hl) != 0)
                dst[i][0] = '\0';
            else
                kind_fn(dst_base, k->str + hl, dst[i], HQ_KEY_MAX);
            if (m->dry && dst[i][0])
                (*count)++;
            else if (dst[i][0]) {
                const char *rn[] = {"RENAMENX", k->str, dst[i]};
                if (redisAppendCommandArgv(m->c, 3, rn, NULL) != REDIS_OK)
                    rc = hq_err_set(&m->err, HQ_ENOMEM, "redis: out of memory");
            }
        }
        for (size_t i = 0; !m->dry && rc == 0 && i < nk; i++) {
            if (!dst[i][0])
                continue;
            redisReply *x = NULL;
            if (redisGetReply(m->c, (void **)&x) != REDIS_OK || !x) {
                rc = hq_err_set(&m->err, HQ_EREDIS, "redis: %s", m->c->errstr);
                break;
            }
            /* An error: the key went (SCAN may return a key twice, or it was moved
             * by an earlier run); 0: its tagged twin exists, merge into it. */
            if (x->type == REDIS_REPLY_INTEGER && x->integer == 1)
                (*count)++;
            else if (x->type == REDIS_REPLY_INTEGER && x->integer == 0)
                rc = merge(m, keys->element[i]->str, dst[i]);
            freeReplyObject(x);
        }
        free(dst);
        freeReplyObject(r);
        if (rc != 0)
            return -1;
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

static int rename_all(struct mig *m)
{
    if (!m->dry && rename_fixed(m) != 0)
        return -1;
    const char *reg = m->L.reg, *p0 = m->L.part[0].base;
    if (rename_pattern(m, hq_key_endpoint, reg, &m->n.reg) != 0 ||
        rename_pattern(m, hq_key_idx_type, reg, &m->n.reg) != 0 ||
        rename_pattern(m, hq_key_idx_prefix, reg, &m->n.reg) != 0 ||
        rename_pattern(m, hq_key_attempts, p0, &m->n.att) != 0 ||
        rename_pattern(m, hq_key_attempt_bucket, p0, &m->n.att) != 0 ||
        rename_pattern(m, hq_key_dedupe_gen, p0, &m->n.dd) != 0)
        return -1;
    return 0;
}

/* ---- Steps 4 to 6 ---------------------------------------------------------------------------- */

/* Group `workers` on every partition's stream, from its start (a new
 * partition's entries are all undelivered). Partition 0's exists when the
 * renamed stream had one: BUSYGROUP, kept with its PEL. */
static int create_groups(struct mig *m)
{
    for (unsigned i = 0; i < m->L.nparts; i++) {
        char ev[HQ_KEY_MAX];
        hq_key_events(m->L.part[i].base, ev, sizeof(ev));
        const char *av[] = {"XGROUP", "CREATE", ev, HQ_GROUP, "0", "MKSTREAM"};
        redisReply *r = redisCommandArgv(m->c, 6, av, NULL);
        if (!r)
            return hq_err_set(&m->err, HQ_EREDIS, "redis: %s", m->c->errstr);
        int busy = r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) == 0;
        if (r->type == REDIS_REPLY_ERROR && !busy) {
            hq_err_set(&m->err, HQ_EREDIS, "redis: XGROUP CREATE %s: %s", ev, r->str);
            freeReplyObject(r);
            return -1;
        }
        m->n.groups += !busy;
        freeReplyObject(r);
    }
    return 0;
}

static int finish(struct mig *m)
{
    char cfg[HQ_KEY_MAX], paused[HQ_KEY_MAX];
    hq_key_config(m->prefix, cfg, sizeof(cfg));
    hq_key_migrate_paused(m->prefix, paused, sizeof(paused));
    const char *hdel[] = {"HDEL", cfg, "state"};
    const char *del[] = {"DEL", paused};
    redisReply *r = cmdv(m, 3, hdel);
    if (!r)
        return -1;
    freeReplyObject(r);
    if (!(r = cmdv(m, 2, del)))
        return -1;
    freeReplyObject(r);
    return 0;
}

/* The partition of a stream entry by the producer rule: its event's id
 * (plain field `id` or inside the msgpack form), else round robin (*rr). */
static unsigned partition_of_entry(const struct hq_layout *L, const redisReply *kv, unsigned *rr)
{
    struct hq_field f[HQ_EVENT_FIELDS_MAX + 1];
    size_t n = 0;
    for (size_t j = 0;
         kv->type == REDIS_REPLY_ARRAY && j + 1 < kv->elements && n <= HQ_EVENT_FIELDS_MAX;
         j += 2) {
        const redisReply *k = kv->element[j], *v = kv->element[j + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING)
            f[n++] = (struct hq_field){k->str, k->len, v->str, v->len};
    }
    struct hq_event ev = {0};
    struct hq_err err = {0};
    if (hq_event_decode_fields(f, n, HQ_PAYLOAD_MAX_LIMIT, &ev, &err) != 0 || !ev.id)
        ev.id_len = 0; /* not a valid event, or no id: the worker deals with it wherever */
    return hq_layout_partition_for(L, ev.id_len ? ev.id : "", ev.id_len, (*rr)++);
}

/* Moves the old stream's entries into the partitions, a page per script
 * call, until it is empty and deleted. */
static int sweep(struct mig *m)
{
    unsigned P = m->L.nparts;
    char old[HQ_KEY_MAX];
    hq_key_events(m->prefix, old, sizeof(old));
    char(*dst)[HQ_KEY_MAX] = hq_calloc(P, sizeof(*dst));
    const char **av = hq_calloc(3 + P + 2 * MIG_SWEEP_PAGE, sizeof(*av));
    char(*pidx)[12] = hq_calloc(MIG_SWEEP_PAGE, sizeof(*pidx));
    char nkeys[16], count[16];
    snprintf(nkeys, sizeof(nkeys), "%u", P + 1);
    snprintf(count, sizeof(count), "%d", MIG_SWEEP_PAGE);
    for (unsigned i = 0; i < P; i++)
        hq_key_events(m->L.part[i].base, dst[i], HQ_KEY_MAX);
    unsigned rr = 0; /* events without an id: round robin */
    int rc = 0;
    for (;;) {
        const char *xr[] = {"XRANGE", old, "-", "+", "COUNT", count};
        redisReply *r = cmdv(m, 6, xr);
        if (!r) {
            rc = -1;
            break;
        }
        size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
        if (n == 0) {
            freeReplyObject(r);
            const char *drop[] = {"EVAL", drop_if_empty, "1", old};
            int ok;
            if (cmd_int(m, 4, drop, &ok) == 1 || !ok) {
                rc = ok ? 0 : -1;
                break;
            }
            continue;
        }
        int argc = 0;
        av[argc++] = "EVAL";
        av[argc++] = sweep_script;
        av[argc++] = nkeys;
        av[argc++] = old;
        for (unsigned i = 0; i < P; i++)
            av[argc++] = dst[i];
        for (size_t i = 0; i < n; i++) {
            const redisReply *e = r->element[i];
            unsigned p = partition_of_entry(&m->L, e->element[1], &rr);
            snprintf(pidx[i], sizeof(pidx[i]), "%u", p);
            av[argc++] = e->element[0]->str;
            av[argc++] = pidx[i];
        }
        int ok;
        m->n.swept += cmd_int(m, argc, av, &ok);
        freeReplyObject(r);
        if (!ok) {
            rc = -1;
            break;
        }
    }
    free(dst);
    free(av);
    free(pidx);
    return rc;
}

/* ---- Dry run ----------------------------------------------------------------------------------
 */

static int dry_run(struct mig *m)
{
    char src[NFIXED][HQ_KEY_MAX], dst[NFIXED][HQ_KEY_MAX];
    fixed_keys(m, src, dst);
    if (m->n.resumed)
        printf("would finish the migration to %u partitions in progress\n", m->L.nparts);
    else
        printf("would write %s:{%s}:config: %u partitions, state=%s\n", m->prefix, HQ_REG_TAG,
               m->L.nparts, HQ_LAYOUT_STATE_MIGRATING);
    struct names live = {0};
    if (read_live(m, &live) != 0)
        return -1;
    printf("would wait up to %lld ms for %d live consumers to pause%s", m->wait_ms, live.n,
           live.n ? ":" : "");
    for (int i = 0; i < live.n; i++)
        printf(" %s", live.v[i]);
    printf("\n");
    names_free(&live);
    for (int i = 0; i < NFIXED; i++) {
        int ok, e = exists(m, src[i], &ok);
        if (!ok)
            return -1;
        if (e)
            printf("would rename %s -> %s\n", src[i], dst[i]);
    }
    if (rename_all(m) != 0)
        return -1;
    printf("would rename %lld registry keys (:ep:*, :idx:*) -> %s:..., %lld attempt record keys "
           "(:att:*, :attempts:*) and %lld dedupe claim generations (:dd:*) -> %s:...\n",
           m->n.reg, m->L.reg, m->n.att, m->n.dd, m->L.part[0].base);
    printf("would create group %s on %u streams; nothing changed (dry run)\n", HQ_GROUP,
           m->L.nparts);
    return 0;
}

/* ---- Entry point ------------------------------------------------------------------------------
 */

static int run(struct mig *m, struct hq_redis_conn *conn, unsigned P)
{
    struct hq_layout cur = {0};
    if (hq_layout_load(conn, m->prefix, &cur, &m->err) != 0)
        return hq_cli_fail(1, CMD, m->err.msg);
    char cfg[HQ_PREFIX_MAX + 16]; /* "<prefix>:{reg}:config" */
    hq_key_config(m->prefix, cfg, sizeof(cfg));
    if (cur.tagged && !cur.migrating) {
        snprintf(m->err.msg, sizeof(m->err.msg), "already partitioned: %s describes %u partitions",
                 cfg, cur.nparts);
        hq_layout_free(&cur);
        return hq_cli_fail(1, CMD, m->err.msg);
    }
    if (cur.migrating && cur.nparts != P) {
        snprintf(m->err.msg, sizeof(m->err.msg),
                 "a migration to %u partitions is in progress (%s): finish it with hookq migrate "
                 "--partitions %u",
                 cur.nparts, cfg, cur.nparts);
        hq_layout_free(&cur);
        return hq_cli_fail(1, CMD, m->err.msg);
    }
    m->n.resumed = cur.migrating;
    hq_layout_free(&cur);
    if (hq_layout_init_tagged(&m->L, m->prefix, P, &m->err) != 0)
        return hq_cli_fail(2, CMD, m->err.msg);
    if (m->dry)
        return dry_run(m) == 0 ? 0 : hq_cli_fail(1, CMD, m->err.msg);

    int64_t t0 = hq_mono_ms();
    int written = 0;
    if (write_config(m, &written) != 0)
        return hq_cli_fail(1, CMD, m->err.msg);
    if (!written && !m->n.resumed) {
        /* Someone wrote a config between our read and our write. */
        return hq_cli_fail(1, CMD, "a layout config appeared while starting; run again to see it");
    }
    if (m->n.resumed)
        fprintf(stderr, "hookq %s: finishing the migration a previous run started\n", CMD);
    if (wait_paused(m) != 0 || rename_all(m) != 0 || create_groups(m) != 0 || finish(m) != 0 ||
        sweep(m) != 0)
        return hq_cli_fail(1, CMD, m->err.msg);
    double secs = (double)(hq_mono_ms() - t0) / 1000.0;
    printf("migrated %s to %u partitions in %.2f s: %lld fixed keys, %lld registry keys, %lld "
           "attempt record keys, %lld dedupe claim generations renamed, %lld merged; %lld stray "
           "events swept; %d/%d live consumers paused\n",
           m->prefix, P, secs, m->n.fixed, m->n.reg, m->n.att, m->n.dd, m->n.merged, m->n.swept,
           m->n.consumers - m->n.unpaused, m->n.consumers);
    return 0;
}

int hq_cmd_migrate(int argc, char **argv)
{
    struct hq_common_opts common;
    hq_common_opts_init(&common);
    long long parts = 0, wait_ms = 30000;
    int dry = 0;
    struct hq_opt opts[] = {
        {"partitions", HQ_OPT_INT, &parts, "P", "partitions of the new layout (2..1024)",
         HQ_OPTF_NOENV, 2, HQ_PARTITIONS_MAX, 0},
        {"wait", HQ_OPT_DURATION, &wait_ms, "DUR",
         "how long live consumers get to pause (default 30s)", HQ_OPTF_NOENV, 0, 3600000, 0},
        {"dry-run", HQ_OPT_BOOL, &dry, NULL, "print what would move; change nothing", HQ_OPTF_NOENV,
         0, 0, 0},
        HQ_COMMON_OPTS(&common),
        {0},
    };
    static const struct hq_cmd_help help = {
        "migrate --partitions P [--wait DUR] [--dry-run]",
        "Moves an unpartitioned deployment on one Redis to P hash-tagged partitions (then it can\n"
        "be imported into a Redis Cluster). Running workers and schedulers pause and restart on\n"
        "the new layout by themselves; an interrupted run is finished by running it again.\n"
        "See docs/operations.md (Partitioning a deployment)."};
    int npos;
    char **pos;
    int rc = hq_cli_parse(opts, &help, CMD, argc, argv, &npos, &pos);
    if (rc >= 0)
        return rc;
    free(pos);
    if (npos)
        return hq_cli_fail(2, CMD, "takes no arguments (usage: hookq migrate --partitions P)");
    if (!opts[0].given)
        return hq_cli_fail(2, CMD, "needs --partitions P");
    struct mig *m = hq_calloc(1, sizeof(*m));
    m->prefix = common.prefix;
    m->wait_ms = wait_ms;
    m->dry = dry;
    if (hq_common_opts_apply(&common, &m->err) != 0) {
        rc = hq_cli_fail(2, CMD, m->err.msg);
        free(m);
        return rc;
    }
    if (strncmp(common.redis_url, "redis-cluster://", 16) == 0) {
        free(m);
        return hq_cli_fail(1, CMD,
                           "runs on a single Redis only: migrate there, then move the keys into "
                           "the cluster with redis-cli --cluster import (docs/operations.md)");
    }
    struct hq_redis_conn *conn =
        hq_redis_conn_open(common.redis_url, HQ_REDIS_CONNECT_TIMEOUT_MS, &m->err);
    if (!conn) {
        rc = hq_cli_fail(1, CMD, m->err.msg);
        free(m);
        return rc;
    }
    if (hq_redis_conn_is_cluster(conn)) {
        rc = hq_cli_fail(1, CMD, "runs on a single Redis only (see docs/operations.md)");
    } else if (!(m->c = hq_redis_conn_node(conn, 0, &m->err))) {
        rc = hq_cli_fail(1, CMD, m->err.msg);
    } else {
        rc = run(m, conn, (unsigned)parts);
    }
    hq_layout_free(&m->L);
    hq_redis_conn_free(conn);
    free(m);
    return rc;
}
