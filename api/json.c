/* Strict JSON with jansson: duplicate keys and trailing data refused, a byte
 * budget on what decoding may allocate (a hostile body fails as "too complex",
 * not as memory pressure), and field tables so an unknown member or a wrong
 * type is named. Pure (no connection; tests/fuzz/fuzz_api_json.c runs it);
 * body.c is the HTTP side. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"

/* Decoding may allocate at most this many times the body's size (jansson asks
 * ~12-43 bytes per input byte for arrays and objects of small items). */
#define JSON_BUDGET_FACTOR 16

static _Thread_local size_t budget_left;
static _Thread_local int budget_armed, budget_hit;

/* Every block carries its size in front, so freeing gives the budget back. */
#define HDR 16

static void *budget_malloc(size_t n)
{
    if (budget_armed) {
        if (n + HDR > budget_left) {
            budget_hit = 1;
            return NULL;
        }
        budget_left -= n + HDR;
    }
    unsigned char *p = malloc(n + HDR);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof(n));
    return p + HDR;
}

static void budget_free(void *ptr)
{
    if (!ptr)
        return;
    unsigned char *p = (unsigned char *)ptr - HDR;
    if (budget_armed) {
        size_t n;
        memcpy(&n, p, sizeof(n));
        budget_left += n + HDR;
    }
    free(p);
}

void hq_api_json_init(void)
{
    json_set_alloc_funcs(budget_malloc, budget_free);
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    default: return "null";
    }
}

static int type_ok(const json_t *v, enum hq_jtype t)
{
    switch (t) {
    case HQ_J_STR: return json_is_string(v);
    case HQ_J_INT: return json_is_integer(v);
    case HQ_J_NUM: return json_is_number(v);
    case HQ_J_BOOL: return json_is_boolean(v);
    case HQ_J_STR_NULL: return json_is_string(v) || json_is_null(v);
    case HQ_J_OBJ: return json_is_object(v);
    case HQ_J_ANY: return 1;
    case HQ_J_STRS: {
        if (!json_is_array(v))
            return 0;
        size_t i;
        const json_t *x;
        json_array_foreach(v, i, x) if (!json_is_string(x)) return 0;
        return 1;
    }
    }
    return 0;
}

static const char *const wanted[] = {
    "a string",         "an integer", "a number", "a boolean", "an array of strings",
    "a string or null", "an object",  "anything"};

int hq_api_json_check(const json_t *obj, const struct hq_jfield *fields, const char *where,
                      struct hq_err *err)
{
    if (!json_is_object(obj))
        return hq_err_set(err, HQ_EINVAL, "%s: expected an object, got %s", where, type_name(obj));
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        const struct hq_jfield *f = fields;
        while (f->name && strcmp(f->name, k) != 0)
            f++;
        if (!f->name) {
            char allowed[512] = "";
            size_t off = 0;
            for (const struct hq_jfield *a = fields; a->name && off < sizeof(allowed); a++)
                off += (size_t)snprintf(allowed + off, sizeof(allowed) - off, "%s%s",
                                        a == fields ? "" : ", ", a->name);
            return hq_err_set(err, HQ_EINVAL, "%.60s: unknown field (allowed: %.180s)", k, allowed);
        }
        if (!type_ok(v, f->type))
            return hq_err_set(err, HQ_EINVAL, "%s: expected %s, got %s", f->name, wanted[f->type],
                              f->type == HQ_J_STRS && json_is_array(v)
                                  ? "an array with a non-string"
                                  : type_name(v));
    }
    for (const struct hq_jfield *f = fields; f->name; f++)
        if (f->required && !json_object_get(obj, f->name))
            return hq_err_set(err, HQ_EINVAL, "%s: required", f->name);
    return 0;
}

int hq_api_json_decode(const char *text, size_t len, const struct hq_jfield *fields, json_t **out,
                       int *too_complex, struct hq_err *err)
{
    *out = NULL;
    *too_complex = 0;
    json_error_t je;
    budget_left = (len + 1024) * JSON_BUDGET_FACTOR;
    budget_hit = 0;
    budget_armed = 1;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    budget_armed = 0;
    if (!doc && budget_hit) {
        *too_complex = 1;
        return hq_err_set(err, HQ_ETOOBIG, "body: too complex (nesting or item count)");
    }
    if (!doc)
        return hq_err_set(err, HQ_EINVAL, "body: not valid JSON: %.160s (line %d, column %d)",
                          je.text, je.line, je.column);
    int rc = hq_api_json_check(doc, fields, "body", err);
    if (rc != 0) {
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return 0;
}
