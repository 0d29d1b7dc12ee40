/*
 * store/store.c - the store interface: checks every backend shares (names),
 * then the call handed to the backend's table (store/store_int.h).
 */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* Every name reaches a backend only once it is known to be a plain name. */
#define NAME_CHECK(name, err)                                                                      \
    do {                                                                                           \
        if (!store_name_valid(name))                                                               \
            return cp_err_set(err, CP_EINVAL,                                                      \
                              "\"%.100s\" is not a certificate name: use letters, digits, '.', "   \
                              "'-' and '_'",                                                       \
                              name);                                                               \
    } while (0)

bool store_name_valid(const char *name)
{
    if (*name == '\0' || *name == '.' || strlen(name) > 255)
        return false;
    for (const char *p = name; *p; p++) {
        char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_';
        if (!ok)
            return false;
    }
    return strstr(name, "..") == NULL;
}

void store_close(struct cp_store *st)
{
    if (st != NULL)
        st->ops->close(st);
}

const char *store_where(const struct cp_store *st)
{
    return st->where;
}

enum cp_code store_lock(struct cp_store *st, unsigned timeout_s,
                        void (*waiting)(void *ctx, const char *holder), void *ctx, size_t *swept,
                        struct cp_err *err)
{
    return st->ops->lock(st, timeout_s, waiting, ctx, swept, err);
}

void store_unlock(struct cp_store *st)
{
    st->ops->unlock(st);
}

enum cp_code store_account_load(struct cp_store *st, const char *directory_url,
                                struct store_account *out, struct cp_err *err)
{
    memset(out, 0, sizeof *out);
    enum cp_code rc = st->ops->account_load(st, directory_url, out, err);
    if (rc == CP_OK && out->rec == NULL && (out->rec = json_object()) == NULL)
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
    return rc;
}

void store_account_clear(struct store_account *a)
{
    acme_key_free(a->key);
    acme_key_free(a->pending);
    json_decref(a->rec);
    a->key = a->pending = NULL;
    a->rec = NULL;
}

enum cp_code store_account_save_record(struct cp_store *st, const char *directory_url,
                                       const json_t *rec, struct cp_err *err)
{
    return st->ops->account_save_record(st, directory_url, rec, err);
}

enum cp_code store_account_save_key(struct cp_store *st, const char *directory_url,
                                    const struct acme_key *key, struct cp_err *err)
{
    return st->ops->account_save_key(st, directory_url, 0, key, err);
}

enum cp_code store_account_save_pending(struct cp_store *st, const char *directory_url,
                                        const struct acme_key *key, struct cp_err *err)
{
    return st->ops->account_save_key(st, directory_url, 1, key, err);
}

enum cp_code store_account_commit_pending(struct cp_store *st, const char *directory_url,
                                          struct cp_err *err)
{
    return st->ops->account_settle(st, directory_url, true, err);
}

enum cp_code store_account_remove_pending(struct cp_store *st, const char *directory_url,
                                          struct cp_err *err)
{
    return st->ops->account_settle(st, directory_url, false, err);
}

enum cp_code store_lineage_names(struct cp_store *st, char ***names, size_t *n, struct cp_err *err)
{
    return st->ops->lineage_names(st, names, n, err);
}

void store_names_free(char **names, size_t n)
{
    for (size_t i = 0; names != NULL && i < n; i++)
        free(names[i]);
    free(names);
}

enum cp_code store_lineage_check(struct cp_store *st, const char *name, struct cp_err *err)
{
    NAME_CHECK(name, err);
    return st->ops->lineage_check(st, name, err);
}

bool store_lineage_exists(struct cp_store *st, const char *name)
{
    return store_name_valid(name) && st->ops->lineage_exists(st, name);
}

enum cp_code store_lineage_contents(struct cp_store *st, const char *name,
                                    struct store_contents *out, struct cp_err *err)
{
    memset(out, 0, sizeof *out);
    NAME_CHECK(name, err);
    return st->ops->lineage_contents(st, name, out, err);
}

enum cp_code store_lineage_remove(struct cp_store *st, const char *name, size_t *removed,
                                  struct cp_err *err)
{
    *removed = 0;
    NAME_CHECK(name, err);
    return st->ops->lineage_remove(st, name, removed, err);
}

enum cp_code store_lineage_dir(struct cp_store *st, const char *name, char *out, size_t size,
                               struct cp_err *err)
{
    NAME_CHECK(name, err);
    return st->ops->lineage_dir(st, name, out, size, err);
}

enum cp_code store_settings_load(struct cp_store *st, const char *name, char **text, size_t *len,
                                 char *label, size_t label_size, struct cp_err *err)
{
    *text = NULL;
    *len = 0;
    NAME_CHECK(name, err);
    return st->ops->settings_load(st, name, text, len, label, label_size, err);
}

enum cp_code store_settings_save(struct cp_store *st, const char *name, const char *text,
                                 size_t len, struct cp_err *err)
{
    NAME_CHECK(name, err);
    return st->ops->settings_save(st, name, text, len, err);
}

enum cp_code store_version_add(struct cp_store *st, const char *name, const char *privkey_pem,
                               size_t privkey_len, const char *cert_pem, const char *chain_pem,
                               const char *fullchain_pem, struct cp_err *err)
{
    NAME_CHECK(name, err);
    return st->ops->version_add(st, name, privkey_pem, privkey_len, cert_pem, chain_pem,
                                fullchain_pem, err);
}

enum cp_code store_current_key(struct cp_store *st, const char *name, struct acme_key **key,
                               struct cp_err *err)
{
    *key = NULL;
    NAME_CHECK(name, err);
    return st->ops->current_key(st, name, key, err);
}

enum cp_code store_current_cert(struct cp_store *st, const char *name, char **pem, size_t *len,
                                struct cp_err *err)
{
    *pem = NULL;
    *len = 0;
    NAME_CHECK(name, err);
    return st->ops->current_cert(st, name, pem, len, err);
}

enum cp_code store_current_version(struct cp_store *st, const char *name,
                                   char out[STORE_VERSION_ID_MAX], struct cp_err *err)
{
    out[0] = '\0';
    NAME_CHECK(name, err);
    return st->ops->current_version ? st->ops->current_version(st, name, out, err) : CP_OK;
}

enum cp_code store_versions_prune(struct cp_store *st, const char *name, unsigned keep,
                                  size_t *removed, struct cp_err *err)
{
    *removed = 0;
    NAME_CHECK(name, err);
    return st->ops->versions_prune(st, name, keep, removed, err);
}

json_t *store_status_load(struct cp_store *st, const char *name)
{
    return store_name_valid(name) ? st->ops->status_load(st, name) : json_object();
}

enum cp_code store_status_save(struct cp_store *st, const char *name, const json_t *status,
                               struct cp_err *err)
{
    NAME_CHECK(name, err);
    return st->ops->status_save(st, name, status, err);
}

/* ---------------------------------------------------------------- shared */

bool store_shared(const struct cp_store *st)
{
    return st->ops->lineage_lock != NULL;
}

bool store_unavailable(const struct cp_store *st)
{
    return st != NULL && st->ops->unavailable != NULL && st->ops->unavailable(st);
}

enum cp_code store_open(const struct store_open_opts *o, struct cp_store **out, struct cp_err *err)
{
    *out = NULL;
    const char *url = o->url;
    if (url == NULL || url[0] == '\0')
        return store_fs_open(o->local_dir, out, err);
    if (strncmp(url, "etcd://", 7) == 0 || strncmp(url, "etcds://", 8) == 0)
        return store_etcd_open(o, out, err);
    if (strstr(url, "://") != NULL)
        return cp_err_set(err, CP_EINVAL,
                          "--store \"%.200s\": not a store certpilot knows; give a directory, "
                          "etcd://HOST:PORT[,HOST:PORT...]/PREFIX or etcds://... (HTTPS)",
                          url);
    /* A path: the filesystem store there. */
    return store_fs_open(url, out, err);
}

/* A lock by any name (one that is not a lineage's too). */
static enum cp_code lock_named(struct cp_store *st, const char *name, unsigned timeout_s,
                               void (*waiting)(void *ctx, const char *holder), void *ctx,
                               struct store_lineage_lock **out, struct cp_err *err)
{
    if (st->ops->lineage_lock != NULL)
        return st->ops->lineage_lock(st, name, timeout_s, waiting, ctx, out, err);
    /* Not shared: the run lock already keeps runs apart. */
    if ((*out = calloc(1, sizeof **out)) == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory locking \"%s\"", name);
    (*out)->st = st;
    return CP_OK;
}

enum cp_code store_lineage_lock(struct cp_store *st, const char *name, unsigned timeout_s,
                                void (*waiting)(void *ctx, const char *holder), void *ctx,
                                struct store_lineage_lock **out, struct cp_err *err)
{
    *out = NULL;
    NAME_CHECK(name, err);
    return lock_named(st, name, timeout_s, waiting, ctx, out, err);
}

enum cp_code store_account_lock(struct cp_store *st, const char *directory_url, unsigned timeout_s,
                                void (*waiting)(void *ctx, const char *holder), void *ctx,
                                struct store_lineage_lock **out, struct cp_err *err)
{
    /* ".account-" and half the SHA-256 of the URL: no lineage name starts
     * with '.', so it is no lineage's lock. */
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char name[64];
    *out = NULL;
    if (!EVP_Digest(directory_url, strlen(directory_url), md, &n, EVP_sha256(), NULL))
        return cp_err_set(err, CP_EINTERNAL, "SHA-256 failed");
    int used = snprintf(name, sizeof name, ".account-");
    for (unsigned i = 0; i < 16; i++)
        used += snprintf(name + used, sizeof name - (size_t)used, "%02x", md[i]);
    return lock_named(st, name, timeout_s, waiting, ctx, out, err);
}

bool store_lineage_lock_held(const struct store_lineage_lock *l)
{
    return l->st->ops->lineage_lock_held == NULL || l->st->ops->lineage_lock_held(l);
}

void store_lineage_unlock(struct store_lineage_lock *l)
{
    if (l == NULL)
        return;
    if (l->st->ops->lineage_unlock != NULL)
        l->st->ops->lineage_unlock(l);
    else
        free(l);
}

enum cp_code store_lineage_sync(struct cp_store *st, const char *name, bool *changed,
                                struct cp_err *err)
{
    *changed = false;
    NAME_CHECK(name, err);
    return st->ops->lineage_sync ? st->ops->lineage_sync(st, name, changed, err) : CP_OK;
}

enum cp_code store_challenge_publish(struct cp_store *st, const char *token, const char *key_authz,
                                     unsigned ttl_s, struct cp_err *err)
{
    return st->ops->challenge_publish ? st->ops->challenge_publish(st, token, key_authz, ttl_s, err)
                                      : CP_OK;
}

enum cp_code store_challenge_withdraw(struct cp_store *st, const char *token, struct cp_err *err)
{
    return st->ops->challenge_withdraw ? st->ops->challenge_withdraw(st, token, err) : CP_OK;
}

enum cp_code store_challenge_lookup(struct cp_store *st, const char *token, char **key_authz,
                                    struct cp_err *err)
{
    *key_authz = NULL;
    return st->ops->challenge_lookup ? st->ops->challenge_lookup(st, token, key_authz, err) : CP_OK;
}
