/*
 * store/etcd_kv_int.h - the parts of the etcd client that touch no network
 * (store/etcd_json.c): base64 of keys and values, and reading the JSON
 * gateway's replies.  Separate from store/etcd_kv.c so that the reply parser
 * can be fuzzed (tests/fuzz/fuzz_etcd_reply.c) and unit-tested alone.
 *
 * The gateway's conventions (etcd 3.4): keys and values are standard padded
 * base64; int64 fields are JSON strings ("revision": "12"); fields equal to
 * zero or false are left out; a refusal is {"error": "...", "code": N,
 * "message": "..."} with a gRPC status code, and inside a stream (lease
 * keep-alive) {"error": {"grpc_code": N, "message": "..."}}.
 */
#ifndef CP_STORE_ETCD_KV_INT_H
#define CP_STORE_ETCD_KV_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "store/etcd_kv.h"

#define ETCD_KV_MAX_KEY     4096u /* bytes of one key, ours or the cluster's */
#define ETCD_KV_MAX_TOKEN   1024u /* bytes of an authentication token */
#define ETCD_KV_MAX_MESSAGE 160u  /* bytes kept of an etcd error message */

/* Standard padded base64 of `len` bytes, NUL-terminated, malloc'd; NULL
 * when out of memory or len > ETCD_KV_MAX_VALUE. */
char *etcd_b64_encode(const void *data, size_t len);

/* Decodes `text` (standard alphabet, padded, nothing else) into a malloc'd
 * buffer with a NUL after the *len bytes.  CP_EPROTO when it is not such
 * base64 or would decode to more than `max` bytes. */
enum cp_code etcd_b64_decode(const char *text, size_t max, unsigned char **out, size_t *len,
                             struct cp_err *err);

/* What a reply means for the request. */
enum etcd_verdict {
    ETCD_ANSWER,  /* a normal answer: root holds it */
    ETCD_REFUSED, /* a definite refusal (failed permission, bad request, ...) */
    ETCD_DENIED,  /* authentication needed or refused: a configuration problem */
    ETCD_REAUTH,  /* the token is no longer valid: authenticate again */
    ETCD_RETRY    /* this member cannot answer now (no leader, timeout): try another */
};

struct etcd_reply {
    enum etcd_verdict verdict;
    json_t *root;                      /* ETCD_ANSWER: the object (a stream's first result) */
    int code;                          /* refusals: the gRPC status code, -1 if none */
    char message[ETCD_KV_MAX_MESSAGE]; /* refusals: etcd's message, printable ASCII */
};

/* Reads one gateway reply body (at most ETCD_KV_MAX_REPLY bytes are looked
 * at).  stream: the body is a stream of {"result": ...} / {"error": ...}
 * objects and only the first is read.  CP_EPROTO (message in err) when the
 * body is no JSON object of either shape; else CP_OK with r->verdict set.
 * etcd_reply_clear() frees r->root. */
enum cp_code etcd_reply_parse(const char *body, size_t len, bool stream, struct etcd_reply *r,
                              struct cp_err *err);
void etcd_reply_clear(struct etcd_reply *r);

/* An int64 member of obj: a JSON string of decimal digits (the gateway's
 * form) or a JSON integer.  Absent (or null): 0.  CP_EPROTO otherwise. */
enum cp_code etcd_json_int64(const json_t *obj, const char *name, int64_t *out, struct cp_err *err);

/* header.revision of an answer (0 when absent). */
enum cp_code etcd_json_revision(const json_t *root, int64_t *out, struct cp_err *err);

/* The "kvs" of a range answer (absent: none), sorted by key, at most
 * ETCD_KV_MAX_ITEMS; keys_only leaves values NULL.  "more": true (the
 * answer was cut) is CP_EPROTO.  out->revision from the header. */
enum cp_code etcd_json_kvs(const json_t *root, bool keys_only, struct etcd_kv_list *out,
                           struct cp_err *err);

/* The token of an authenticate answer: printable ASCII, at most
 * ETCD_KV_MAX_TOKEN bytes; malloc'd into *out. */
enum cp_code etcd_json_token(const json_t *root, char **out, struct cp_err *err);

#endif
