/* What the api/ files share: the request being answered, the route table,
 * and the helpers handlers answer with. Not for other folders. */
#ifndef HQ_API_INTERNAL_H
#define HQ_API_INTERNAL_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>

#include "api/api.h"
#include "common/apikey.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/layout.h"

struct MHD_Connection;
struct MHD_Daemon;
struct hq_redis_conn;
struct hq_api_ratelimit;

/* Bodies: endpoint documents and everything else but events. */
#define HQ_API_BODY_MAX     (64 * 1024)
#define HQ_API_LIST_MAX     500 /* limit= ceiling */
#define HQ_API_LIST_DEFAULT 50
#define HQ_API_PARAMS_MAX   2
#define HQ_API_PARAM_MAX    128

struct hq_api {
    struct hq_api_config cfg; /* strings borrowed from the caller (argv) */
    struct hq_layout L;       /* read once at start; read-only */
    struct MHD_Daemon *mhd;
    int fd, port;
    atomic_int draining; /* /readyz answers 503 */
    atomic_int inflight; /* requests being answered */
    struct hq_api_ratelimit *rl;
    char *tls_cert_pem, *tls_key_pem; /* owned */
};

struct hq_api_req;
typedef void (*hq_api_handler)(struct hq_api_req *q);

enum hq_api_body { HQ_BODY_NONE, HQ_BODY_DOC, HQ_BODY_EVENTS };

struct hq_api_route {
    const char *method;
    const char *path; /* template: "/v1/endpoints/{id}" */
    int scope;        /* HQ_SCOPE_*; HQ_SCOPE_NONE = no key needed */
    hq_api_handler fn;
    enum hq_api_body body;
};
extern const struct hq_api_route hq_api_routes[];
extern const size_t hq_api_nroutes;

struct hq_api_req {
    struct hq_api *api;
    struct MHD_Connection *conn;
    const char *method, *path;
    const struct hq_api_route *route;
    char params[HQ_API_PARAMS_MAX][HQ_API_PARAM_MAX + 1]; /* path parameters in order */
    struct hq_buf body;
    int body_too_big;
    struct hq_apikey key; /* the authenticated key */
    char client[64];      /* client address, for the auth-failure limit and logs */
    /* The answer. */
    unsigned status;
    const char *ctype;
    struct hq_buf out;
    char retry_after[16];
    const char *www_auth;
    int answered;
    int redis_failed; /* hq_api_fail saw HQ_EREDIS (the thread's connection was dropped) */
    const struct hq_console_file *console; /* a console file to send instead of out */
};

/* ---- router.c -------------------------------------------------------------------------- */
/* Routes and answers a request whose body is complete. */
void hq_api_dispatch(struct hq_api_req *q);
/* The route for method and path (params filled), NULL; *path_known: some route has the path. */
const struct hq_api_route *hq_api_route_find(const char *method, const char *path,
                                             char params[HQ_API_PARAMS_MAX][HQ_API_PARAM_MAX + 1],
                                             int *path_known);

/* ---- problem.c ------------------------------------------------------------------------- */
/* Answers an RFC 9457 problem: code a slug (docs/openapi.json's enum), detail the message. */
void hq_api_problem(struct hq_api_req *q, unsigned status, const char *code, const char *detail);
/* Answers the problem an hq_err code means: HQ_EINVAL 422 invalid, HQ_EBLOCKED 422 blocked,
 * HQ_ENOTFOUND 404, HQ_EAGAIN 409, HQ_ETOOBIG 413, HQ_EREDIS 503 (+ Retry-After), else 500. */
void hq_api_fail(struct hq_api_req *q, int rc, const struct hq_err *err);
/* Answers 200/201 with b's JSON (b is reset). */
void hq_api_json(struct hq_api_req *q, unsigned status, struct hq_buf *b);

/* ---- json.c ---------------------------------------------------------------------------- */
enum hq_jtype {
    HQ_J_STR,
    HQ_J_INT,
    HQ_J_NUM,
    HQ_J_BOOL,
    HQ_J_STRS,
    HQ_J_STR_NULL,
    HQ_J_OBJ,
    HQ_J_ANY
};
struct hq_jfield {
    const char *name;
    enum hq_jtype type;
    int required;
};
/* An upper bound of the values JSON text holds: 1 + its '[' '{' ',' ':'
 * outside strings (json.c; decoding refuses more than JSON_VALUES_MAX). */
size_t hq_api_json_values(const char *p, size_t n);
/* Decodes text strictly (duplicate keys, trailing data refused; at most
 * JSON_VALUES_MAX values, checked first) and checks it is an object as fields say. [out] *out
 * (json_decref). HQ_EINVAL naming what is wrong, or HQ_ETOOBIG with
 * *too_complex set for too many values. Pure (json.c). */
int hq_api_json_decode(const char *text, size_t len, const struct hq_jfield *fields, json_t **out,
                       int *too_complex, struct hq_err *err);
/* Decodes q's body as hq_api_json_decode does, checks it is an object whose members
 * are all in fields with the right types and the required ones present.
 * [out] *out (json_decref). On failure answers the problem itself and returns -1. */
int hq_api_json_body(struct hq_api_req *q, const struct hq_jfield *fields, json_t **out);
/* Answers status with out's compact JSON (taking out's reference; NULL: 500). */
void hq_api_json_answer(struct hq_api_req *q, unsigned status, json_t *out);
/* Checks an object value against fields (for nested objects); HQ_EINVAL naming the field. */
int hq_api_json_check(const json_t *obj, const struct hq_jfield *fields, const char *where,
                      struct hq_err *err);

/* ---- redis (server.c) ------------------------------------------------------------------ */
/* This thread's connection to the deployment (opened on first use); NULL with err. */
struct hq_redis_conn *hq_api_redis(struct hq_api_req *q, struct hq_err *err);
/* This thread's registry node (hq_api_redis's node of L.reg_slot); NULL with err. */
struct redisContext *hq_api_registry(struct hq_api_req *q, struct hq_err *err);
/* Forgets this thread's connection after an I/O error (the next request reconnects). */
void hq_api_redis_drop(void);

/* ---- query strings (router.c) ---------------------------------------------------------- */
const char *hq_api_query(struct hq_api_req *q, const char *name);
/* limit=: 1-HQ_API_LIST_MAX, default HQ_API_LIST_DEFAULT; -1 after answering 400. */
long long hq_api_query_limit(struct hq_api_req *q);
/* limit=: 1-max, default def; -1 after answering 400. */
long long hq_api_query_limit_in(struct hq_api_req *q, long long def, long long max);
/* A boolean query parameter: 0/1, def when absent, -1 after answering 400. */
int hq_api_query_bool(struct hq_api_req *q, const char *name, int def);

/* ---- auth.c ---------------------------------------------------------------------------- */
struct hq_api_ratelimit *hq_api_ratelimit_new(void);
void hq_api_ratelimit_free(struct hq_api_ratelimit *rl);
/* Authenticates q for its route's scope; answers 401/403/429 and returns -1 when refused. */
int hq_api_auth(struct hq_api_req *q);
/* The ?tenant= filter of a list: the key's tenant for a tenant key (another
 * one named is 403), else the parameter (checked) or NULL. -1 after answering. */
int hq_api_query_tenant(struct hq_api_req *q, const char **tenant);
/* The tenant q may act on: the key's ("" = any). */
const char *hq_api_tenant(const struct hq_api_req *q);

/* ---- handlers (routes_*.c) ------------------------------------------------------------- */
void hq_api_healthz(struct hq_api_req *q);
void hq_api_readyz(struct hq_api_req *q);
void hq_api_openapi(struct hq_api_req *q);
void hq_api_ep_list(struct hq_api_req *q);
void hq_api_ep_create(struct hq_api_req *q);
void hq_api_ep_get(struct hq_api_req *q);
void hq_api_ep_update(struct hq_api_req *q);
void hq_api_ep_delete(struct hq_api_req *q);
void hq_api_ep_rotate(struct hq_api_req *q);
void hq_api_ep_enable(struct hq_api_req *q);
void hq_api_ep_disable(struct hq_api_req *q);
void hq_api_ep_attempts(struct hq_api_req *q);
void hq_api_event_types(struct hq_api_req *q);
void hq_api_events_post(struct hq_api_req *q);
void hq_api_event_attempts(struct hq_api_req *q);
void hq_api_dl_list(struct hq_api_req *q);
void hq_api_dl_get(struct hq_api_req *q);
void hq_api_dl_replay(struct hq_api_req *q);
void hq_api_dl_purge(struct hq_api_req *q);
void hq_api_stats(struct hq_api_req *q);

/* The embedded docs/openapi.json (generated). */
extern const char hq_api_openapi_json[];
extern const size_t hq_api_openapi_json_len;

#endif
