/*
 * store/etcd_json.c - base64 and the reading of etcd's JSON gateway replies
 * (see store/etcd_kv_int.h).  Nothing here uses the network.
 */
#include "store/etcd_kv_int.h"

#include <openssl/evp.h>

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* gRPC status codes the gateway passes on (grpc/codes). */
enum {
    GRPC_CANCELLED = 1,
    GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_PERMISSION_DENIED = 7,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_UNAVAILABLE = 14,
    GRPC_UNAUTHENTICATED = 16
};

/* ------------------------------------------------------------------ base64 */

char *etcd_b64_encode(const void *data, size_t len)
{
    if (len > ETCD_KV_MAX_VALUE)
        return NULL;
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (out == NULL)
        return NULL;
    /* One call: ETCD_KV_MAX_VALUE fits an int; the output is NUL-terminated. */
    int n = EVP_EncodeBlock((unsigned char *)out, data != NULL ? data : (const void *)"", (int)len);
    if (n < 0) {
        free(out);
        return NULL;
    }
    return out;
}

static bool b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

enum cp_code etcd_b64_decode(const char *text, size_t max, unsigned char **out, size_t *len,
                             struct cp_err *err)
{
    *out = NULL;
    *len = 0;
    size_t n = strlen(text);
    if (n % 4 != 0)
        return cp_err_set(err, CP_EPROTO, "etcd sent base64 of %zu characters (not 4k)", n);
    if (n / 4 * 3 > max + 2)
        return cp_err_set(err, CP_EPROTO, "etcd sent a value of more than %zu bytes", max);
    size_t pad = 0;
    if (n >= 4 && text[n - 1] == '=')
        pad = text[n - 2] == '=' ? 2 : 1;
    /* EVP_DecodeBlock skips white space and is lax about '=': check first. */
    for (size_t i = 0; i < n - pad; i++)
        if (!b64_char((unsigned char)text[i]))
            return cp_err_set(err, CP_EPROTO, "etcd sent invalid base64 (byte %zu)", i);
    size_t raw = n / 4 * 3 - pad;
    if (raw > max)
        return cp_err_set(err, CP_EPROTO, "etcd sent a value of more than %zu bytes", max);
    unsigned char *buf = malloc(n / 4 * 3 + 1);
    if (buf == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory decoding an etcd value");
    int got = n > 0 ? EVP_DecodeBlock(buf, (const unsigned char *)text, (int)n) : 0;
    /* EVP_DecodeBlock counts the padding as decoded zero bytes. */
    if (got < 0 || (size_t)got != n / 4 * 3) {
        free(buf);
        return cp_err_set(err, CP_EPROTO, "etcd sent invalid base64");
    }
    buf[raw] = '\0';
    *out = buf;
    *len = raw;
    return CP_OK;
}

/* ------------------------------------------------------------------ replies */

/* Copies s into dst as printable ASCII (others as '?'), truncated. */
static void copy_printable(char *dst, size_t size, const char *s)
{
    size_t i = 0;
    for (; s != NULL && s[i] != '\0' && i + 1 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[i] = (char)(c >= 0x20 && c < 0x7f ? c : '?');
    }
    dst[i] = '\0';
}

static bool contains(const char *s, const char *what)
{
    return strstr(s, what) != NULL;
}

/* What a refusal with this gRPC code and message means (etcd 3.4's
 * rpctypes: which errors come from a member without a quorum). */
static enum etcd_verdict classify(int code, const char *msg)
{
    if (code == GRPC_UNAUTHENTICATED || contains(msg, "invalid auth token") ||
        contains(msg, "auth store is old"))
        return ETCD_REAUTH;
    if (code == GRPC_UNAVAILABLE || code == GRPC_DEADLINE_EXCEEDED ||
        code == GRPC_RESOURCE_EXHAUSTED || code == GRPC_CANCELLED || contains(msg, "no leader") ||
        contains(msg, "not leader") || contains(msg, "leader changed") ||
        contains(msg, "timed out") || contains(msg, "server stopped") ||
        contains(msg, "unhealthy cluster") || contains(msg, "too many requests") ||
        contains(msg, "not capable"))
        return ETCD_RETRY;
    if (code == GRPC_PERMISSION_DENIED || contains(msg, "permission denied") ||
        contains(msg, "authentication failed") || contains(msg, "user name is empty") ||
        contains(msg, "authentication is not enabled"))
        return ETCD_DENIED;
    return ETCD_REFUSED;
}

/* A refusal in `obj`: top level {"error": "...", "code": N, "message": "..."}
 * or a stream's {"error": {"grpc_code": N, "message": "..."}}.  Also a lease
 * grant's own non-empty "error" string.  False when obj is no refusal. */
static bool read_refusal(const json_t *obj, struct etcd_reply *r)
{
    const json_t *e = json_object_get(obj, "error");
    const json_t *code = json_object_get(obj, "code");
    const char *msg = NULL;
    json_int_t c = -1;

    if (json_is_object(e)) {
        msg = json_string_value(json_object_get(e, "message"));
        const json_t *gc = json_object_get(e, "grpc_code");
        c = json_is_integer(gc) ? json_integer_value(gc) : -1;
    } else if ((json_is_string(e) && json_string_length(e) > 0) ||
               (json_is_integer(code) && json_integer_value(code) != 0)) {
        msg = json_string_value(json_object_get(obj, "message"));
        if (msg == NULL || *msg == '\0')
            msg = json_string_value(e);
        c = json_is_integer(code) ? json_integer_value(code) : -1;
    } else {
        return false;
    }
    r->code = c >= 0 && c <= INT_MAX ? (int)c : -1;
    copy_printable(r->message, sizeof r->message, msg != NULL ? msg : "no message");
    r->verdict = classify(r->code, r->message);
    return true;
}

enum cp_code etcd_reply_parse(const char *body, size_t len, bool stream, struct etcd_reply *r,
                              struct cp_err *err)
{
    json_error_t jerr;

    memset(r, 0, sizeof *r);
    r->code = -1;
    if (len > ETCD_KV_MAX_REPLY)
        return cp_err_set(err, CP_EPROTO, "the reply is larger than %u bytes", ETCD_KV_MAX_REPLY);
    /* A stream holds several objects: read the first only. */
    json_t *root = json_loadb(body, len, stream ? JSON_DISABLE_EOF_CHECK : 0, &jerr);
    if (root == NULL)
        return cp_err_set(err, CP_EPROTO, "the reply is not JSON (%s)", jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return cp_err_set(err, CP_EPROTO, "the reply is not a JSON object");
    }
    if (read_refusal(root, r)) {
        json_decref(root);
        return CP_OK;
    }
    if (stream) {
        json_t *result = json_object_get(root, "result");
        if (!json_is_object(result)) {
            json_decref(root);
            return cp_err_set(err, CP_EPROTO, "the stream's first object has no result");
        }
        json_incref(result);
        json_decref(root);
        root = result;
        if (read_refusal(root, r)) {
            json_decref(root);
            return CP_OK;
        }
    }
    r->verdict = ETCD_ANSWER;
    r->root = root;
    return CP_OK;
}

void etcd_reply_clear(struct etcd_reply *r)
{
    if (r == NULL)
        return;
    json_decref(r->root);
    r->root = NULL;
}

enum cp_code etcd_json_int64(const json_t *obj, const char *name, int64_t *out, struct cp_err *err)
{
    const json_t *v = json_object_get(obj, name);
    *out = 0;
    if (v == NULL || json_is_null(v))
        return CP_OK;
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return CP_OK;
    }
    const char *s = json_string_value(v);
    if (s == NULL || json_string_length(v) > 20 || *s == '\0')
        return cp_err_set(err, CP_EPROTO, "etcd sent a bad \"%s\" (not an int64)", name);
    for (const char *p = *s == '-' ? s + 1 : s; *p != '\0'; p++)
        if (*p < '0' || *p > '9')
            return cp_err_set(err, CP_EPROTO, "etcd sent a bad \"%s\" (not an int64)", name);
    errno = 0;
    char *end = NULL;
    long long n = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return cp_err_set(err, CP_EPROTO, "etcd sent a bad \"%s\" (not an int64)", name);
    *out = (int64_t)n;
    return CP_OK;
}

enum cp_code etcd_json_revision(const json_t *root, int64_t *out, struct cp_err *err)
{
    const json_t *h = json_object_get(root, "header");
    *out = 0;
    if (h == NULL)
        return CP_OK;
    if (!json_is_object(h))
        return cp_err_set(err, CP_EPROTO, "etcd sent a header that is not an object");
    return etcd_json_int64(h, "revision", out, err);
}

static enum cp_code read_item(const json_t *kv, bool keys_only, struct etcd_kv_item *it,
                              struct cp_err *err)
{
    enum cp_code rc;
    unsigned char *key = NULL;
    size_t klen = 0;

    if (!json_is_object(kv))
        return cp_err_set(err, CP_EPROTO, "etcd sent a key-value that is not an object");
    const char *k64 = json_string_value(json_object_get(kv, "key"));
    if (k64 == NULL)
        return cp_err_set(err, CP_EPROTO, "etcd sent a key-value without a key");
    rc = etcd_b64_decode(k64, ETCD_KV_MAX_KEY, &key, &klen, err);
    if (rc != CP_OK)
        return rc;
    if (klen == 0 || memchr(key, '\0', klen) != NULL) {
        free(key);
        return cp_err_set(err, CP_EPROTO, "etcd sent an empty key or one with a NUL byte");
    }
    it->key = (char *)key;
    if ((rc = etcd_json_int64(kv, "create_revision", &it->create_revision, err)) != CP_OK ||
        (rc = etcd_json_int64(kv, "mod_revision", &it->mod_revision, err)) != CP_OK ||
        (rc = etcd_json_int64(kv, "version", &it->version, err)) != CP_OK ||
        (rc = etcd_json_int64(kv, "lease", &it->lease, err)) != CP_OK)
        return rc;
    if (keys_only)
        return CP_OK;
    /* An empty value is left out of the JSON: still a value. */
    const json_t *v = json_object_get(kv, "value");
    const char *v64 = v == NULL ? "" : json_string_value(v);
    if (v64 == NULL)
        return cp_err_set(err, CP_EPROTO, "etcd sent a value that is not a string");
    return etcd_b64_decode(v64, ETCD_KV_MAX_VALUE, &it->value, &it->len, err);
}

static int item_cmp(const void *a, const void *b)
{
    return strcmp(((const struct etcd_kv_item *)a)->key, ((const struct etcd_kv_item *)b)->key);
}

enum cp_code etcd_json_kvs(const json_t *root, bool keys_only, struct etcd_kv_list *out,
                           struct cp_err *err)
{
    enum cp_code rc;

    memset(out, 0, sizeof *out);
    if ((rc = etcd_json_revision(root, &out->revision, err)) != CP_OK)
        return rc;
    if (json_is_true(json_object_get(root, "more")))
        return cp_err_set(err, CP_EPROTO, "more than %u keys: the answer was cut",
                          ETCD_KV_MAX_ITEMS);
    const json_t *kvs = json_object_get(root, "kvs");
    if (kvs == NULL)
        return CP_OK;
    if (!json_is_array(kvs))
        return cp_err_set(err, CP_EPROTO, "etcd sent \"kvs\" that is not an array");
    size_t n = json_array_size(kvs);
    if (n > ETCD_KV_MAX_ITEMS)
        return cp_err_set(err, CP_EPROTO, "etcd sent more than %u keys", ETCD_KV_MAX_ITEMS);
    if (n == 0)
        return CP_OK;
    out->items = calloc(n, sizeof *out->items);
    if (out->items == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory reading %zu keys", n);
    for (size_t i = 0; i < n; i++) {
        out->n = i + 1; /* so that a failure frees what is there */
        rc = read_item(json_array_get(kvs, i), keys_only, &out->items[i], err);
        if (rc != CP_OK) {
            int64_t rev = out->revision;
            etcd_kv_list_clear(out);
            out->revision = rev;
            return rc;
        }
    }
    qsort(out->items, out->n, sizeof *out->items, item_cmp);
    return CP_OK;
}

enum cp_code etcd_json_token(const json_t *root, char **out, struct cp_err *err)
{
    const char *t = json_string_value(json_object_get(root, "token"));
    *out = NULL;
    if (t == NULL || *t == '\0')
        return cp_err_set(err, CP_EPROTO, "etcd sent no token");
    size_t n = strlen(t);
    if (n > ETCD_KV_MAX_TOKEN)
        return cp_err_set(err, CP_EPROTO, "etcd sent a token of more than %u bytes",
                          ETCD_KV_MAX_TOKEN);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
            return cp_err_set(err, CP_EPROTO, "etcd sent a token that is not printable");
    *out = strdup(t);
    if (*out == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    return CP_OK;
}

/* ------------------------------------------------------------------ items */

void etcd_kv_item_clear(struct etcd_kv_item *it)
{
    if (it == NULL)
        return;
    free(it->key);
    free(it->value);
    memset(it, 0, sizeof *it);
}

void etcd_kv_list_clear(struct etcd_kv_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        etcd_kv_item_clear(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}
