/* Strict JSON with jansson: duplicate keys and trailing data refused, a bound
 * on the values a body holds, checked before decoding (a hostile body fails as
 * "too complex", not as memory pressure), and field tables so an unknown member or a wrong
 * type is named. Pure (no connection; tests/fuzz/fuzz_api_json.c runs it);
 * body.c is the HTTP side. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"

/* Values a body may hold (arrays, objects, members and items, counted by
 * their punctuation outside strings): an endpoint document holds ~100, a batch
 * of 500 events ~4,000. jansson spends ~100 bytes a value, so this bounds what
 * decoding allocates (~2 MiB) however the body is built. The bound is checked
 * before jansson runs: jansson 2.14 is not safe when an allocation fails
 * (found by tests/fuzz/fuzz_api_json.c: a failed allocation while lexing a
 * string writes past its buffer), so a budget enforced by failing malloc is
 * not an option. */
#define JSON_VALUES_MAX 16384

size_t hq_api_json_values(const char *p, size_t n)
{
    size_t count = 1;
    int in_string = 0, escaped = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_string) {
            if (escaped)
                escaped = 0;
            else if (c == '\\')
                escaped = 1;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{' || c == ',' || c == ':') {
            count++;
        }
    }
    return count;
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
    size_t values = hq_api_json_values(text, len);
    if (values > JSON_VALUES_MAX) {
        *too_complex = 1;
        return hq_err_set(err, HQ_ETOOBIG, "body: too complex (%zu values, at most %d)", values,
                          JSON_VALUES_MAX);
    }
    json_error_t je;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
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
