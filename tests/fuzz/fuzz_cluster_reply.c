/* libFuzzer target for the cluster decoders (common/cluster_slots.c,
 * common/slot.c, common/partition.c). The first input byte picks how the rest
 * is cut into feeds (1..64 bytes at a time); the rest is fed to a hiredis
 * reader with hiredis's own object functions (each element its own
 * allocation, so ASan sees a read past an array's end, which it could not
 * inside the worker's arena replies) bounded like the arena's
 * (HQ_REPLY_ELEMENTS_MAX), and every reply it builds, of any shape, goes through the CLUSTER SLOTS
 * decoder and, when it has text, the redirect parser. The same bytes are also parsed as a redirect
 * directly (most redirect shapes are short strings a RESP reader would rarely build) and hashed as
 * a key and an event id.
 *
 * Beyond "no crash, no leak, no sanitizer report" it checks the promises of
 * cluster_slots.h: a decoded map names only nodes it holds, counts its covered
 * slots right, holds printable NUL-terminated hosts and valid ports; a refused
 * reply leaves no owners; a redirect has a slot and a port, anything else
 * neither. tests/fuzz/fuzz_replay.c runs the corpus through this entry in
 * every build. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "common/cluster_slots.h"
#include "common/partition.h"
#include "common/redis_reply.h"
#include "common/slot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_cluster_reply: broken promise: %s\n", what);
        abort();
    }
}

static struct hq_slot_map map; /* ~110 KiB: static, the fuzzer runs one input at a time */

static redisReplyObjectFunctions *hiredis_fns; /* hiredis's defaults, taken from a reader */
static redisReplyObjectFunctions bounded;

/* hiredis 0.14 callocs whatever element count the input declares. */
static void *bounded_array(const redisReadTask *task, int elements)
{
    return elements > HQ_REPLY_ELEMENTS_MAX ? NULL : hiredis_fns->createArray(task, elements);
}

static void check_redirect(const char *s, size_t n)
{
    struct hq_redirect rd;
    enum hq_redirect_kind k = hq_redirect_parse(s, n, &rd);
    require(k == rd.kind, "the kind returned is the kind stored");
    require(strlen(rd.host) < HQ_CLUSTER_HOST_MAX, "host is NUL-terminated");
    if (k == HQ_REDIRECT_MOVED || k == HQ_REDIRECT_ASK) {
        require(rd.slot >= 0 && rd.slot < HQ_SLOTS, "a redirect's slot is a slot");
        require(rd.port >= 1 && rd.port <= 65535, "a redirect's port is a port");
        for (const char *h = rd.host; *h; h++)
            require(*h > ' ' && *h < 0x7f, "a redirect's host is printable");
    } else {
        require(rd.slot == -1 && rd.port == 0 && rd.host[0] == '\0', "no target otherwise");
    }
    require(strcmp(hq_redirect_name(k), "") != 0, "every kind has a name");
}

static void check_map(const redisReply *r)
{
    struct hq_err err = {0};
    int rc = hq_cluster_slots_parse(r, &map, &err);
    int covered = 0;
    for (int s = 0; s < HQ_SLOTS; s++) {
        require(map.owner[s] >= -1 && map.owner[s] < map.nnodes, "owners are known nodes");
        covered += map.owner[s] >= 0;
    }
    require(covered == map.covered, "covered counts the owned slots");
    char gaps[40];
    require(hq_slot_map_gaps(&map, gaps, sizeof(gaps)) == HQ_SLOTS - covered,
            "gaps count the slots without an owner");
    require(strlen(gaps) < sizeof(gaps), "gaps are NUL-terminated");
    if (rc != 0) {
        require(rc == HQ_EINVAL || rc == HQ_EREDIS || rc == HQ_ETOOBIG, "a known error code");
        require(err.code == rc && err.msg[0] != '\0', "a refusal says why");
        require(map.nnodes == 0 && map.covered == 0, "a refused reply leaves no owners");
        return;
    }
    require(map.nnodes >= 0 && map.nnodes <= HQ_CLUSTER_NODES_MAX, "node count in bounds");
    for (int i = 0; i < map.nnodes; i++) {
        require(strlen(map.node[i].host) < HQ_CLUSTER_HOST_MAX, "host is NUL-terminated");
        require(strlen(map.node[i].id) < HQ_CLUSTER_ID_MAX, "id is NUL-terminated");
        require(map.node[i].port >= 1 && map.node[i].port <= 65535, "a node's port is a port");
        require(map.node[i].replicas >= 0, "replicas are counted");
    }
}

static void check_reply(const redisReply *r)
{
    /* The full map check walks the 16384 slots three times: only arrays can
     * decode, so other replies get the cheap half (refused, nothing kept). */
    if (r->type == REDIS_REPLY_ARRAY) {
        check_map(r);
    } else {
        struct hq_err err = {0};
        require(hq_cluster_slots_parse(r, &map, &err) != 0, "only an array is a slot table");
        require(map.nnodes == 0 && map.covered == 0, "a refused reply leaves no owners");
    }
    if (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS ||
        r->type == REDIS_REPLY_STRING)
        check_redirect(r->str, r->len);
    /* A string inside a CLUSTER SLOTS-like array is a host: hash it as a key too. */
    if (r->type == REDIS_REPLY_STRING)
        require(hq_key_slot(r->str, r->len) < HQ_SLOTS, "a slot is below 16384");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = 1 + data[0] % 64;
    data++;
    size--;
    check_redirect((const char *)data, size);
    require(hq_key_slot((const char *)data, size) < HQ_SLOTS, "a slot is below 16384");
    require(hq_partition_of_id((const char *)data, size, 6) < 6, "a partition is below P");

    redisReader *rd = redisReaderCreate();
    require(rd != NULL, "redisReaderCreate");
    if (!hiredis_fns) {
        hiredis_fns = rd->fn;
        bounded = *hiredis_fns;
        bounded.createArray = bounded_array;
    }
    rd->fn = &bounded;
    int failed = 0;
    for (size_t off = 0; off < size && !failed; off += step) {
        size_t k = size - off < step ? size - off : step;
        require(redisReaderFeed(rd, (const char *)data + off, k) == REDIS_OK,
                "feeding a reader that has not failed");
        for (;;) {
            void *reply = NULL;
            if (redisReaderGetReply(rd, &reply) != REDIS_OK) {
                failed = 1;
                break;
            }
            if (!reply)
                break;
            check_reply(reply);
            bounded.freeObject(reply);
        }
    }
    redisReaderFree(rd);
    return 0;
}
