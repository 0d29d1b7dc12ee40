/*
 * store/store_int.h - what a store backend provides.  A backend allocates a
 * struct of its own that starts with `struct cp_store` (whose `ops` points to
 * its table) and fills every entry; store/store.c dispatches to them, so the
 * flows above see one interface whatever keeps the data.
 */
#ifndef CP_STORE_STORE_INT_H
#define CP_STORE_STORE_INT_H

#include "store/store.h"

struct store_ops {
    void (*close)(struct cp_store *st);
    enum cp_code (*lock)(struct cp_store *st, unsigned timeout_s,
                         void (*waiting)(void *ctx, const char *holder), void *ctx, size_t *swept,
                         struct cp_err *err);
    void (*unlock)(struct cp_store *st);
    enum cp_code (*account_load)(struct cp_store *st, const char *directory_url,
                                 struct store_account *out, struct cp_err *err);
    enum cp_code (*account_save_record)(struct cp_store *st, const char *directory_url,
                                        const json_t *rec, struct cp_err *err);
    /* which: 0 the key, 1 the pending key */
    enum cp_code (*account_save_key)(struct cp_store *st, const char *directory_url, int which,
                                     const struct acme_key *key, struct cp_err *err);
    /* commit: the pending key becomes the key; else it is removed */
    enum cp_code (*account_settle)(struct cp_store *st, const char *directory_url, bool commit,
                                   struct cp_err *err);
    enum cp_code (*lineage_names)(struct cp_store *st, char ***names, size_t *n,
                                  struct cp_err *err);
    enum cp_code (*lineage_check)(struct cp_store *st, const char *name, struct cp_err *err);
    enum cp_code (*lineage_dir)(struct cp_store *st, const char *name, char *out, size_t size,
                                struct cp_err *err);
    enum cp_code (*settings_load)(struct cp_store *st, const char *name, char **text, size_t *len,
                                  char *label, size_t label_size, struct cp_err *err);
    enum cp_code (*settings_save)(struct cp_store *st, const char *name, const char *text,
                                  size_t len, struct cp_err *err);
    enum cp_code (*version_add)(struct cp_store *st, const char *name, const char *privkey_pem,
                                size_t privkey_len, const char *cert_pem, const char *chain_pem,
                                const char *fullchain_pem, struct cp_err *err);
    enum cp_code (*current_key)(struct cp_store *st, const char *name, struct acme_key **key,
                                struct cp_err *err);
    enum cp_code (*current_cert)(struct cp_store *st, const char *name, char **pem, size_t *len,
                                 struct cp_err *err);
    /* NULL: the backend cannot identify a version (nothing is cached) */
    enum cp_code (*current_version)(struct cp_store *st, const char *name,
                                    char out[STORE_VERSION_ID_MAX], struct cp_err *err);
    enum cp_code (*versions_prune)(struct cp_store *st, const char *name, unsigned keep,
                                   size_t *removed, struct cp_err *err);
    bool (*lineage_exists)(struct cp_store *st, const char *name);
    enum cp_code (*lineage_contents)(struct cp_store *st, const char *name,
                                     struct store_contents *out, struct cp_err *err);
    enum cp_code (*lineage_remove)(struct cp_store *st, const char *name, size_t *removed,
                                   struct cp_err *err);
    json_t *(*status_load)(struct cp_store *st, const char *name);
    enum cp_code (*status_save)(struct cp_store *st, const char *name, const json_t *status,
                                struct cp_err *err);

    /* Shared stores only: NULL in a backend that is not shared (store.c then
     * grants the lineage lock at once, reports no version, syncs nothing and
     * keeps no challenge). */
    enum cp_code (*lineage_lock)(struct cp_store *st, const char *name, unsigned timeout_s,
                                 void (*waiting)(void *ctx, const char *holder), void *ctx,
                                 struct store_lineage_lock **out, struct cp_err *err);
    bool (*lineage_lock_held)(const struct store_lineage_lock *l);
    void (*lineage_unlock)(struct store_lineage_lock *l);
    enum cp_code (*lineage_sync)(struct cp_store *st, const char *name, bool *changed,
                                 struct cp_err *err);
    enum cp_code (*challenge_publish)(struct cp_store *st, const char *token, const char *key_authz,
                                      unsigned ttl_s, struct cp_err *err);
    enum cp_code (*challenge_withdraw)(struct cp_store *st, const char *token, struct cp_err *err);
    enum cp_code (*challenge_lookup)(struct cp_store *st, const char *token, char **key_authz,
                                     struct cp_err *err);
    /* Did the last request get no answer (store_unavailable)?  NULL: never. */
    bool (*unavailable)(const struct cp_store *st);
};

/* Every lineage lock starts with this: the store whose backend made it. */
struct store_lineage_lock {
    struct cp_store *st;
};

struct cp_store {
    const struct store_ops *ops;
    char where[4096]; /* for messages */
};

/* The etcd backend (store/etcd.c), for store_open(): o->url is etcd:// or
 * etcds://. */
enum cp_code store_etcd_open(const struct store_open_opts *o, struct cp_store **out,
                             struct cp_err *err);

#endif
