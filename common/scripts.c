/* Script digests. See scripts.h. */
#include "common/scripts.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "common/redis_sync.h"

void hq_script_sha1(const char *src, char out[41])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)src, strlen(src), md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int hq_script_is_noscript(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && r->len >= 8 && memcmp(r->str, "NOSCRIPT", 8) == 0;
}

redisReply *hq_script_call(redisContext *c, const char *script, int nkeys, int argc,
                           const char **argv, const size_t *lens, struct hq_err *err)
{
    const char *av[3 + HQ_SCRIPT_ARGS_MAX];
    size_t al[3 + HQ_SCRIPT_ARGS_MAX];
    char sha[41], nk[16];
    if (argc > HQ_SCRIPT_ARGS_MAX) {
        hq_err_set(err, HQ_ETOOBIG, "script call: %d arguments, max %d", argc, HQ_SCRIPT_ARGS_MAX);
        return NULL;
    }
    hq_script_sha1(script, sha);
    snprintf(nk, sizeof(nk), "%d", nkeys);
    av[0] = "EVALSHA";
    al[0] = 7;
    av[1] = sha;
    al[1] = 40;
    av[2] = nk;
    al[2] = strlen(nk);
    for (int i = 0; i < argc; i++) {
        av[3 + i] = argv[i];
        al[3 + i] = lens ? lens[i] : strlen(argv[i]);
    }
    redisReply *r = redisCommandArgv(c, 3 + argc, av, al);
    if (hq_script_is_noscript(r)) {
        freeReplyObject(r);
        av[0] = "EVAL";
        al[0] = 4;
        av[1] = script;
        al[1] = strlen(script);
        r = redisCommandArgv(c, 3 + argc, av, al);
    }
    return hq_redis_check(c, r, err);
}
