/* `hookq sign` and `hookq verify`: the Standard Webhooks signature of a body
 * on stdin, for people writing or debugging a receiver. sign prints the
 * webhook-signature header value hookq would send (one "v1," signature per
 * --secret, space-separated); verify checks a received header value and exits
 * 0 ("ok"), 1 (mismatch or stale timestamp, with the reason) or 2 (bad usage).
 * The signing itself is common/sign.c; this file only reads options and stdin.
 *
 * --secret is a command argument (HQ_OPTF_NOENV): there is no environment
 * twin, so a key is never picked up from the environment by accident. Secrets
 * are never echoed in messages; decoded keys are wiped before exit. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cmd.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/limits.h"
#include "common/sign.h"

#define KEYS_MAX   2              /* an endpoint has at most two active keys */
#define TS_MAX     253402300799LL /* 9999-12-31T23:59:59Z: any larger is a typo */
#define READ_CHUNK (64 * 1024)

/* Everything both commands parse. Owned by the command function. */
struct sign_args {
    struct hq_strlist secrets; /* --secret, borrowed strings */
    const char *id;            /* --id */
    long long ts;              /* --timestamp, unix seconds */
    const char *signature;     /* --signature (verify) */
    int no_tolerance;          /* --no-tolerance (verify) */
    struct hq_sign_key keys[KEYS_MAX];
    int nkeys;
    struct hq_buf body; /* stdin, bounded by HQ_PAYLOAD_MAX_LIMIT */
};

static void args_free(struct sign_args *a)
{
    for (int i = 0; i < KEYS_MAX; i++)
        hq_sign_key_wipe(&a->keys[i]);
    hq_strlist_free(&a->secrets);
    hq_buf_free(&a->body);
}

/* Parses argv with opts; 0 to go on, -1 after --help (exit 0), or the exit
 * status (2). */
static int parse(const char *cmd, struct hq_opt *opts, const struct hq_cmd_help *help, int argc,
                 char **argv, struct sign_args *a)
{
    int npos = 0;
    char **pos = NULL;
    int rc = hq_cli_parse(opts, help, cmd, argc, argv, &npos, &pos);
    if (rc >= 0)
        return rc == 0 ? -1 : rc;
    struct hq_err err = {0};
    if (npos) {
        hq_err_set(&err, HQ_EINVAL, "unexpected argument '%.80s' (usage: hookq %s)", pos[0],
                   help->usage);
        free(pos);
        return hq_cli_fail(2, cmd, err.msg);
    }
    free(pos);
    if (a->secrets.n == 0)
        return hq_cli_fail(2, cmd, "--secret: required (whsec_... ; repeat it for a second key)");
    if (a->secrets.n > KEYS_MAX) {
        hq_err_set(&err, HQ_EINVAL, "--secret: given %d times, max %d", a->secrets.n, KEYS_MAX);
        return hq_cli_fail(2, cmd, err.msg);
    }
    for (int i = 0; i < a->secrets.n; i++) {
        if (hq_sign_key_decode(a->secrets.v[i], &a->keys[i], &err) != 0) {
            /* err.msg starts with "secret: " and never holds the key. */
            char msg[300];
            snprintf(msg, sizeof(msg), "--%s%s", err.msg,
                     a->secrets.n > 1 ? (i ? " (second --secret)" : " (first --secret)") : "");
            return hq_cli_fail(2, cmd, msg);
        }
        a->nkeys++;
    }
    if (!a->id || !*a->id)
        return hq_cli_fail(2, cmd, "--id: required (the webhook-id header value)");
    size_t idn = strlen(a->id);
    if (idn > HQ_ID_MAX) {
        hq_err_set(&err, HQ_EINVAL, "--id: %zu characters, max %d", idn, HQ_ID_MAX);
        return hq_cli_fail(2, cmd, err.msg);
    }
    return 0;
}

/* Reads all of stdin into a->body, binary-safe and bounded. 0 or the exit status. */
static int read_body(const char *cmd, struct sign_args *a)
{
    hq_buf_init(&a->body, HQ_PAYLOAD_MAX_LIMIT);
    static char chunk[READ_CHUNK];
    for (;;) {
        size_t n = fread(chunk, 1, sizeof(chunk), stdin);
        if (n && hq_buf_append(&a->body, chunk, n) != 0) {
            struct hq_err err;
            hq_err_set(&err, HQ_ETOOBIG, "body: more than %d bytes on stdin", HQ_PAYLOAD_MAX_LIMIT);
            return hq_cli_fail(2, cmd, err.msg);
        }
        if (n < sizeof(chunk)) {
            if (ferror(stdin)) {
                struct hq_err err;
                hq_err_set(&err, HQ_EIO, "body: reading stdin: %s", strerror(errno));
                return hq_cli_fail(1, cmd, err.msg);
            }
            if (feof(stdin))
                return 0;
        }
    }
}

int hq_cmd_sign(int argc, char **argv)
{
    struct sign_args a;
    memset(&a, 0, sizeof(a));
    a.ts = -1;
    struct hq_opt opts[] = {
        {"secret", HQ_OPT_LIST, &a.secrets, "KEY",
         "signing key whsec_<base64>; repeat for the second key", HQ_OPTF_NOENV, 0, 0, 0},
        {"id", HQ_OPT_STR, &a.id, "ID", "webhook-id (the event id)", HQ_OPTF_NOENV, 0, 0, 0},
        {"timestamp", HQ_OPT_INT, &a.ts, "TS", "webhook-timestamp, unix seconds (default: now)",
         HQ_OPTF_NOENV, 0, TS_MAX, 0},
        {0},
    };
    static const struct hq_cmd_help help = {
        "sign --secret KEY [--secret KEY2] --id ID [--timestamp TS] < body",
        "Prints the webhook-signature header value hookq sends for the body on stdin: one v1,<base64 HMAC-SHA256> per key, space-separated (Standard Webhooks)."};
    int rc = parse("sign", opts, &help, argc, argv, &a);
    if (rc == 0)
        rc = read_body("sign", &a);
    if (rc != 0) {
        args_free(&a);
        return rc < 0 ? 0 : rc;
    }
    int64_t ts = a.ts >= 0 ? (int64_t)a.ts : (int64_t)time(NULL);
    char out[KEYS_MAX * (HQ_SIG_V1_LEN + 1)];
    hq_sign_header(a.keys, a.nkeys, a.id, strlen(a.id), ts, a.body.p ? a.body.p : "", a.body.len,
                   out);
    printf("%s\n", out);
    args_free(&a);
    return 0;
}

int hq_cmd_verify(int argc, char **argv)
{
    struct sign_args a;
    memset(&a, 0, sizeof(a));
    a.ts = -1;
    struct hq_opt opts[] = {
        {"secret", HQ_OPT_LIST, &a.secrets, "KEY",
         "signing key whsec_<base64>; repeat to accept either of two keys", HQ_OPTF_NOENV, 0, 0, 0},
        {"id", HQ_OPT_STR, &a.id, "ID", "webhook-id header value", HQ_OPTF_NOENV, 0, 0, 0},
        {"timestamp", HQ_OPT_INT, &a.ts, "TS", "webhook-timestamp header value, unix seconds",
         HQ_OPTF_NOENV, 0, TS_MAX, 0},
        {"signature", HQ_OPT_STR, &a.signature, "SIG",
         "webhook-signature header value (\"v1,... v1,...\")", HQ_OPTF_NOENV, 0, 0, 0},
        {"no-tolerance", HQ_OPT_BOOL, &a.no_tolerance, NULL,
         "skip the +-5 min timestamp check (for old captures)", HQ_OPTF_NOENV, 0, 0, 0},
        {0},
    };
    static const struct hq_cmd_help help = {
        "verify --secret KEY [--secret KEY2] --id ID --timestamp TS --signature SIG [--no-tolerance] < body",
        "Checks a webhook-signature header value against the body on stdin. Exits 0 and prints ok when any v1 signature matches a key and the timestamp is within 5 minutes of now; exits 1 with the reason otherwise; 2 on bad usage."};
    int rc = parse("verify", opts, &help, argc, argv, &a);
    if (rc == 0 && a.ts < 0)
        rc = hq_cli_fail(2, "verify", "--timestamp: required (the webhook-timestamp header value)");
    if (rc == 0 && !a.signature)
        rc = hq_cli_fail(2, "verify", "--signature: required (the webhook-signature header value)");
    if (rc == 0 && strlen(a.signature) > HQ_SIG_HEADER_MAX) {
        struct hq_err err;
        hq_err_set(&err, HQ_EINVAL, "--signature: %zu characters, max %d", strlen(a.signature),
                   HQ_SIG_HEADER_MAX);
        rc = hq_cli_fail(2, "verify", err.msg);
    }
    if (rc == 0)
        rc = read_body("verify", &a);
    if (rc != 0) {
        args_free(&a);
        return rc < 0 ? 0 : rc;
    }
    int64_t now = (int64_t)time(NULL);
    int64_t tolerance = a.no_tolerance ? -1 : HQ_SIGN_TOLERANCE_S;
    struct hq_err err = {0};
    rc = HQ_EINVAL;
    for (int i = 0; i < a.nkeys && rc != 0; i++)
        rc = hq_sign_verify(&a.keys[i], a.id, (int64_t)a.ts, a.body.p ? a.body.p : "", a.body.len,
                            a.signature, now, tolerance, &err);
    args_free(&a);
    if (rc != 0)
        return hq_cli_fail(1, "verify", err.msg);
    printf("ok\n");
    return 0;
}
