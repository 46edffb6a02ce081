/* libFuzzer target for `hookq api`'s request bodies (api/json.c): strict
 * decoding under the bound on values, then the field-table check. Beyond
 * "no crash, no sanitizer report" it checks the promises: a decoded body is an
 * object whose members are all in the table with the table's types and the
 * required ones present; a refusal carries a one-line message naming the body
 * or a field; a body of more than the values bound is refused before jansson
 * sees it; a second decode of the same input gives the same verdict. tests/fuzz/fuzz_replay.c runs
 * the corpus through this entry in every build. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_api_json: broken promise: %s\n", what);
        abort();
    }
}

/* Every type the routes use (the endpoint document's members and more). */
static const struct hq_jfield fields[] = {
    {"name", HQ_J_STR, 1},
    {"url", HQ_J_STR, 0},
    {"events", HQ_J_STRS, 0},
    {"max_attempts", HQ_J_INT, 0},
    {"backoff_factor", HQ_J_NUM, 0},
    {"enabled", HQ_J_BOOL, 0},
    {"tenant", HQ_J_STR_NULL, 0},
    {"filter", HQ_J_OBJ, 0},
    {"any", HQ_J_ANY, 0},
    {NULL, 0, 0},
};

static int verdict(const uint8_t *data, size_t size, json_t **doc, struct hq_err *err)
{
    int too_complex = 0;
    int rc = hq_api_json_decode((const char *)data, size, fields, doc, &too_complex, err);
    require((rc == HQ_ETOOBIG) == (too_complex != 0), "too_complex goes with HQ_ETOOBIG");
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0; /* the route cap: larger bodies never reach the decoder */
    json_t *doc = NULL;
    struct hq_err err = {0};
    int rc = verdict(data, size, &doc, &err);
    if (rc != 0) {
        require(doc == NULL, "no document on a refusal");
        size_t n = strnlen(err.msg, sizeof(err.msg));
        require(n > 0 && n < sizeof(err.msg), "a refusal has a message");
        require(strchr(err.msg, '\n') == NULL, "messages are one line");
        require(strchr(err.msg, ':') != NULL, "messages name what is wrong");
    } else {
        require(json_is_object(doc), "a decoded body is an object");
        const char *k;
        json_t *v;
        json_object_foreach(doc, k, v)
        {
            const struct hq_jfield *f = fields;
            while (f->name && strcmp(f->name, k) != 0)
                f++;
            require(f->name != NULL, "every member is in the table");
            if (f->type == HQ_J_STR)
                require(json_is_string(v), "a string member is a string");
            if (f->type == HQ_J_INT)
                require(json_is_integer(v), "an integer member is an integer");
            if (f->type == HQ_J_STRS) {
                size_t i;
                json_t *x;
                json_array_foreach(v, i, x) require(json_is_string(x), "strings are strings");
            }
        }
        require(json_object_get(doc, "name") != NULL, "required members are present");
        json_decref(doc);
    }
    if (hq_api_json_values((const char *)data, size) > 16384)
        require(rc == HQ_ETOOBIG, "too many values is refused as too complex");
    /* No state between calls: the same input, the same verdict. */
    json_t *again = NULL;
    struct hq_err err2 = {0};
    require(verdict(data, size, &again, &err2) == rc, "the same verdict twice");
    json_decref(again);
    return 0;
}
