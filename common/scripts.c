/* Script digests. See scripts.h. */
#include "common/scripts.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

void hq_script_sha1(const char *src, char out[41])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)src, strlen(src), md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}
