/*
 * store/etcd_kv.h - a small client of etcd v3 through its JSON gateway
 * (POST /v3/kv/range, /v3/kv/put, /v3/kv/deleterange, /v3/kv/txn,
 * /v3/lease/grant, /v3/lease/keepalive, /v3/lease/revoke,
 * /v3/auth/authenticate), over HTTP or HTTPS with libcurl.  Keys and values
 * are bytes; the gateway's base64 is done here (OpenSSL EVP).
 *
 * Several endpoints may be given (the members of one cluster): a request that
 * cannot reach one member, or that a member answers without a quorum (an
 * "etcdserver: ..." error such as "no leader" or a timeout), is tried on the
 * next, each within the per-request timeout; CP_ENET when none answered,
 * with a message naming every endpoint and what each said.
 *
 * Every length from the network is bounded (ETCD_KV_MAX_*).  A handle is used
 * by one thread at a time: a thread that keeps a lease alive opens its own.
 * Nothing here prints.
 *
 * Errors (store/etcd_kv.c): CP_ENET when no member answered (each is given
 * timeout_ms, so a call takes at most about nendpoints * timeout_ms, twice
 * that when it has to authenticate); CP_ESETUP when the cluster refused the
 * user, password or permission for the key, or when a TLS file is unusable;
 * CP_EPROTO for any other refusal (the member and etcd's words in the
 * message) and for replies that break the bounds; CP_EINVAL for bad options
 * or keys.  Keys are at most 4096 bytes.  A refusal names the member.
 * With client-cert-auth and etcd users both on, etcd 3.4's gateway refuses
 * a client certificate that has a Common Name (tests/lab/etcd.py).
 */
#ifndef CP_STORE_ETCD_KV_H
#define CP_STORE_ETCD_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define ETCD_KV_MAX_ENDPOINTS 16
#define ETCD_KV_MAX_VALUE     (1u << 20) /* bytes of one value, after base64 decoding */
#define ETCD_KV_MAX_REPLY     (8u << 20) /* bytes of one gateway reply */
#define ETCD_KV_MAX_ITEMS     100000     /* items of one range reply */

struct etcd_kv; /* opaque */

struct etcd_kv_opts {
    const char *const *endpoints; /* "http://127.0.0.1:2379", "https://h:2379" */
    size_t nendpoints;
    const char *ca_file;              /* HTTPS: CA bundle for the members; NULL: system store */
    const char *cert_file, *key_file; /* client certificate (PEM), both or neither */
    const char *user, *password;      /* etcd authentication; NULL: none */
    unsigned timeout_ms;              /* per request and endpoint; 0: 5000 */
};

/* Checks the options (not the network); the endpoints are copied. */
enum cp_code etcd_kv_open(const struct etcd_kv_opts *o, struct etcd_kv **out, struct cp_err *err);
void etcd_kv_close(struct etcd_kv *kv); /* NULL: no-op */

struct etcd_kv_item {
    char *key;            /* NUL-terminated copy */
    unsigned char *value; /* NUL-terminated copy (len excludes the NUL); NULL: absent */
    size_t len;
    int64_t create_revision, mod_revision, version, lease;
};
void etcd_kv_item_clear(struct etcd_kv_item *it);

struct etcd_kv_list {
    struct etcd_kv_item *items; /* sorted by key */
    size_t n;
    int64_t revision; /* the store's revision the answer was read at */
};
void etcd_kv_list_clear(struct etcd_kv_list *l);

/* One key: out->value NULL (CP_OK) when it does not exist. */
enum cp_code etcd_kv_get(struct etcd_kv *kv, const char *key, struct etcd_kv_item *out,
                         struct cp_err *err);
/* Every key starting with `prefix`; keys_only: values left NULL. */
enum cp_code etcd_kv_range(struct etcd_kv *kv, const char *prefix, bool keys_only,
                           struct etcd_kv_list *out, struct cp_err *err);
/* lease 0: none. */
enum cp_code etcd_kv_put(struct etcd_kv *kv, const char *key, const void *value, size_t len,
                         int64_t lease, struct cp_err *err);
/* prefix: every key starting with `key`.  *deleted (may be NULL) counts them. */
enum cp_code etcd_kv_delete(struct etcd_kv *kv, const char *key, bool prefix, size_t *deleted,
                            struct cp_err *err);

/* A transaction: when every comparison holds, every op of `then` is applied
 * at once (else those of `otherwise`); *succeeded says which. */
enum etcd_cmp_target {
    ETCD_CMP_VERSION,
    ETCD_CMP_CREATE,
    ETCD_CMP_MOD,
    ETCD_CMP_VALUE,
    ETCD_CMP_LEASE
};
enum etcd_cmp_result { ETCD_EQUAL, ETCD_NOT_EQUAL, ETCD_LESS, ETCD_GREATER };
struct etcd_cmp {
    const char *key;
    enum etcd_cmp_target target;
    enum etcd_cmp_result result;
    int64_t number;    /* VERSION, CREATE, MOD, LEASE */
    const void *value; /* VALUE */
    size_t len;
};
enum etcd_op_type { ETCD_OP_PUT, ETCD_OP_DELETE };
struct etcd_op {
    enum etcd_op_type type;
    const char *key;
    const void *value; /* PUT */
    size_t len;
    int64_t lease; /* PUT; 0: none */
    bool prefix;   /* DELETE: every key starting with key */
};
enum cp_code etcd_kv_txn(struct etcd_kv *kv, const struct etcd_cmp *cmps, size_t ncmps,
                         const struct etcd_op *then, size_t nthen, const struct etcd_op *otherwise,
                         size_t notherwise, bool *succeeded, int64_t *revision, struct cp_err *err);

/* Leases: granted for ttl_s seconds; a keep-alive renews it (*ttl_left 0 and
 * CP_ETIMEOUT when it had already expired); revoke deletes its keys (CP_OK
 * too when the lease is already gone, and its keys with it). */
enum cp_code etcd_lease_grant(struct etcd_kv *kv, unsigned ttl_s, int64_t *id, struct cp_err *err);
enum cp_code etcd_lease_keepalive(struct etcd_kv *kv, int64_t id, int64_t *ttl_left,
                                  struct cp_err *err);
enum cp_code etcd_lease_revoke(struct etcd_kv *kv, int64_t id, struct cp_err *err);

#endif
