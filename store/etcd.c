/*
 * store/etcd.c - the store in an etcd v3 cluster shared by a fleet of hosts
 * (store/etcd_kv.h is the client).  Under the URL's PREFIX:
 *
 *   PREFIX/accounts/<sha256 hex of the directory URL>/record   the record (JSON)
 *   PREFIX/accounts/<...>/key, /pending                         sealed PEM (store/seal.h)
 *   PREFIX/lineages/<name>/settings                             renewal.conf text
 *   PREFIX/lineages/<name>/status                               results of the last runs (JSON)
 *   PREFIX/lineages/<name>/current                              the current version's id
 *   PREFIX/lineages/<name>/versions/<id>                        {privkey (sealed), cert, chain,
 *                                                                fullchain}
 *   PREFIX/locks/<name>                                         "HOST pid PID", on a lease
 *   PREFIX/locks/.account-<hex>                                 the same, while registering
 *   PREFIX/challenges/http-01/<token>                           a key authorization, on a lease
 *   PREFIX/seal-check                                           a known text, sealed
 *
 * A new version and the move of `current` are one transaction; when this
 * host holds the lineage's lock, the transaction also compares that the lock
 * key is still on this host's lease, so that a host whose lease ran out
 * writes nothing.  The version id is the time it was made (so ids sort by
 * age) and a random suffix.
 *
 * Each host keeps its own state directory (a filesystem store, wrapped
 * here): its run lock, and the deployed files of every lineage, where
 * servers and hooks read them.  certs/<name>/store-version there records the
 * id of the version deployed, so that a sync deploys only what changed.
 *
 * Every request that etcd does not answer is CP_ENET (the client names every
 * endpoint); nothing local is changed before what etcd holds is known.
 */
#define _DEFAULT_SOURCE /* gethostname */
#include "store/store_int.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/file.h"
#include "store/etcd_kv.h"
#include "store/seal.h"

#define KEY_MAX        1024
#define PREFIX_MAX     256
#define DEFAULT_PREFIX "/certpilot"
#define DEFAULT_TTL_S  30
#define DEPLOYED_FILE  "store-version"
#define ID_MAX         64
#define TOKEN_MAX      256

struct etcd_lock;

struct etcd_store {
    struct cp_store base; /* first: a struct cp_store * is a struct etcd_store * */
    struct cp_store *local;
    struct etcd_kv *kv;
    /* What a keep-alive thread needs to open a handle of its own. */
    char *endpoints[ETCD_KV_MAX_ENDPOINTS];
    size_t nendpoints;
    char *ca_file, *cert_file, *key_file, *user, *password;
    unsigned timeout_ms, lock_ttl_s;
    char prefix[PREFIX_MAX];
    struct seal_key key;
    bool unavailable; /* the last request got no answer */
    /* The lineage locks taken through this handle: a new version of such a
     * lineage is stored only while its lock is still this host's.  renew
     * hands this same handle to the issue engine it runs, so that the write
     * is guarded by the lock renew took.  Only the main thread takes, finds
     * and releases locks; the keep-alive threads never touch the list. */
    struct etcd_lock *held;
};

#define ES(st) ((struct etcd_store *)(st))

struct etcd_lock {
    struct store_lineage_lock base; /* first */
    struct etcd_store *es;
    struct etcd_lock *next;
    char name[256];
    char key[KEY_MAX];
    int64_t lease;
    unsigned ttl_s;
    struct etcd_kv *kv; /* the keep-alive thread's own */
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    atomic_bool held;
    atomic_llong expires_ms; /* monotonic: the lease runs out then unless renewed */
};

/* ------------------------------------------------------------- helpers */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long long ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void wipe_free(void *p, size_t len)
{
    if (p != NULL) {
        OPENSSL_cleanse(p, len);
        free(p);
    }
}

/* PREFIX + the rest into `out`; CP_EINVAL when it does not fit. */
static enum cp_code key_of(const struct etcd_store *es, char *out, size_t size, struct cp_err *err,
                           const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
static enum cp_code key_of(const struct etcd_store *es, char *out, size_t size, struct cp_err *err,
                           const char *fmt, ...)
{
    int n = snprintf(out, size, "%s/", es->prefix);
    va_list ap;
    va_start(ap, fmt);
    int m = n > 0 && (size_t)n < size ? vsnprintf(out + n, size - (size_t)n, fmt, ap) : -1;
    va_end(ap);
    if (m < 0 || (size_t)m >= size - (size_t)n)
        return cp_err_set(err, CP_EINVAL, "etcd key too long under %s", es->prefix);
    return CP_OK;
}

/* Note how a request went: a request without an answer makes the store
 * unavailable (store_unavailable) until one is answered. */
static enum cp_code noted(struct etcd_store *es, enum cp_code rc)
{
    if (rc == CP_ENET)
        es->unavailable = true;
    else if (rc == CP_OK)
        es->unavailable = false;
    return rc;
}

static enum cp_code kv_get(struct etcd_store *es, const char *key, struct etcd_kv_item *it,
                           struct cp_err *err)
{
    memset(it, 0, sizeof *it);
    return noted(es, etcd_kv_get(es->kv, key, it, err));
}

static enum cp_code kv_put(struct etcd_store *es, const char *key, const void *value, size_t len,
                           int64_t lease, struct cp_err *err)
{
    return noted(es, etcd_kv_put(es->kv, key, value, len, lease, err));
}

static enum cp_code kv_range(struct etcd_store *es, const char *prefix, bool keys_only,
                             struct etcd_kv_list *l, struct cp_err *err)
{
    memset(l, 0, sizeof *l);
    return noted(es, etcd_kv_range(es->kv, prefix, keys_only, l, err));
}

static enum cp_code kv_delete(struct etcd_store *es, const char *key, bool prefix, size_t *deleted,
                              struct cp_err *err)
{
    return noted(es, etcd_kv_delete(es->kv, key, prefix, deleted, err));
}

static enum cp_code kv_txn(struct etcd_store *es, const struct etcd_cmp *cmps, size_t ncmps,
                           const struct etcd_op *then, size_t nthen, bool *succeeded,
                           struct cp_err *err)
{
    int64_t rev = 0;
    return noted(es, etcd_kv_txn(es->kv, cmps, ncmps, then, nthen, NULL, 0, succeeded, &rev, err));
}

/* A version id or a lineage name read back from etcd: a plain name. */
static bool id_valid(const char *s, size_t len)
{
    if (len == 0 || len >= ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              c == '.' || c == '-'))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------- accounts */

static void account_id(const char *directory_url, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(directory_url, strlen(directory_url), md, &n, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static const char *const account_parts[] = {"key", "pending"};

static enum cp_code account_key(struct etcd_store *es, const char *directory_url, const char *part,
                                char *out, size_t size, struct cp_err *err)
{
    char id[65];
    account_id(directory_url, id);
    return key_of(es, out, size, err, "accounts/%s/%s", id, part);
}

/* Open the sealed PEM `it` (read from it->key) as a private key. */
static enum cp_code open_key(struct etcd_store *es, const struct etcd_kv_item *it,
                             struct acme_key **key, struct cp_err *err)
{
    unsigned char *pem = NULL;
    size_t len = 0;
    enum cp_code rc =
        seal_open(&es->key, it->key, (const char *)it->value, it->len, &pem, &len, err);
    if (rc == CP_OK)
        rc = acme_key_from_pem((const char *)pem, len, it->key, key, err);
    wipe_free(pem, len);
    return rc;
}

static enum cp_code etcd_account_load(struct cp_store *st, const char *directory_url,
                                      struct store_account *out, struct cp_err *err)
{
    struct etcd_store *es = ES(st);
    char dir[KEY_MAX], id[65];
    struct etcd_kv_list l = {0};
    account_id(directory_url, id);
    snprintf(out->where, sizeof out->where, "%s (accounts/%s)", st->where, id);
    snprintf(out->pending_where, sizeof out->pending_where, "%s (accounts/%s/pending)", st->where,
             id);
    enum cp_code rc = key_of(es, dir, sizeof dir, err, "accounts/%s/", id);
    if (rc == CP_OK)
        rc = kv_range(es, dir, false, &l, err);
    if (rc != CP_OK)
        return rc;
    for (size_t i = 0; rc == CP_OK && i < l.n; i++) {
        const struct etcd_kv_item *it = &l.items[i];
        const char *part = it->key + strlen(dir);
        if (it->value == NULL)
            continue;
        if (strcmp(part, "record") == 0) {
            json_error_t jerr;
            out->rec = json_loadb((const char *)it->value, it->len, 0, &jerr);
            if (!json_is_object(out->rec))
                rc = cp_err_set(err, CP_EPROTO, "%s in etcd is not a JSON object (%s)", it->key,
                                jerr.text);
        } else if (strcmp(part, "key") == 0) {
            rc = open_key(es, it, &out->key, err);
        } else if (strcmp(part, "pending") == 0) {
            rc = open_key(es, it, &out->pending, err);
        }
    }
    etcd_kv_list_clear(&l);
    return rc;
}

static enum cp_code etcd_account_save_record(struct cp_store *st, const char *directory_url,
                                             const json_t *rec, struct cp_err *err)
{
    char key[KEY_MAX];
    enum cp_code rc = account_key(ES(st), directory_url, "record", key, sizeof key, err);
    if (rc != CP_OK)
        return rc;
    char *text = json_dumps(rec, JSON_INDENT(2));
    if (text == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    rc = kv_put(ES(st), key, text, strlen(text), 0, err);
    free(text);
    return rc;
}

/* Seal a key's PEM for the etcd key `key`. */
static enum cp_code seal_pem(struct etcd_store *es, const char *key, const char *pem, size_t len,
                             char **sealed, size_t *sealed_len, struct cp_err *err)
{
    return seal_seal(&es->key, key, pem, len, sealed, sealed_len, err);
}

static enum cp_code etcd_account_save_key(struct cp_store *st, const char *directory_url, int which,
                                          const struct acme_key *k, struct cp_err *err)
{
    struct etcd_store *es = ES(st);
    char key[KEY_MAX], *pem = NULL, *sealed = NULL;
    size_t len = 0, slen = 0;
    enum cp_code rc =
        account_key(es, directory_url, account_parts[which != 0], key, sizeof key, err);
    if (rc == CP_OK)
        rc = acme_key_to_pem(k, &pem, &len, err);
    if (rc == CP_OK)
        rc = seal_pem(es, key, pem, len, &sealed, &slen, err);
    if (rc == CP_OK)
        rc = kv_put(es, key, sealed, slen, 0, err);
    wipe_free(pem, len);
    free(sealed);
    return rc;
}

static enum cp_code etcd_account_settle(struct cp_store *st, const char *directory_url, bool commit,
                                        struct cp_err *err)
{
    struct etcd_store *es = ES(st);
    char key[KEY_MAX], pending[KEY_MAX];
    enum cp_code rc = account_key(es, directory_url, "pending", pending, sizeof pending, err);
    if (rc == CP_OK)
        rc = account_key(es, directory_url, "key", key, sizeof key, err);
    if (rc != CP_OK)
        return rc;
    if (!commit)
        return kv_delete(es, pending, false, NULL, err);

    /* The sealed value names its etcd key: the pending key is opened and
     * sealed again for its new place, and both changes are one transaction
     * that holds only if the pending key did not change meanwhile. */
    struct etcd_kv_item it = {0};
    unsigned char *pem = NULL;
    char *sealed = NULL;
    size_t len = 0, slen = 0;
    bool ok = false;
    rc = kv_get(es, pending, &it, err);
    if (rc == CP_OK && it.value == NULL)
        rc = cp_err_set(err, CP_EIO, "no pending account key at %s to make current", pending);
    if (rc == CP_OK)
        rc = seal_open(&es->key, pending, (const char *)it.value, it.len, &pem, &len, err);
    if (rc == CP_OK)
        rc = seal_pem(es, key, (const char *)pem, len, &sealed, &slen, err);
    if (rc == CP_OK) {
        struct etcd_cmp cmp = {.key = pending,
                               .target = ETCD_CMP_MOD,
                               .result = ETCD_EQUAL,
                               .number = it.mod_revision};
        struct etcd_op ops[] = {{.type = ETCD_OP_PUT, .key = key, .value = sealed, .len = slen},
                                {.type = ETCD_OP_DELETE, .key = pending}};
        rc = kv_txn(es, &cmp, 1, ops, 2, &ok, err);
        if (rc == CP_OK && !ok)
            rc = cp_err_set(err, CP_EIO,
                            "the pending account key %s changed while it was being made current; "
                            "run the command again",
                            pending);
    }
    etcd_kv_item_clear(&it);
    wipe_free(pem, len);
    free(sealed);
    return rc;
}

/* ------------------------------------------------------------- lineages */

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static enum cp_code etcd_lineage_names(struct cp_store *st, char ***names, size_t *n,
                                       struct cp_err *err)
{
    struct etcd_store *es = ES(st);
    char dir[KEY_MAX];
    struct etcd_kv_list l = {0};
    *names = NULL;
    *n = 0;
    enum cp_code rc = key_of(es, dir, sizeof dir, err, "lineages/");
    if (rc == CP_OK)
        rc = kv_range(es, dir, true, &l, err);
    if (rc != CP_OK)
        return rc;
    if ((*names = calloc(l.n + 1, sizeof **names)) == NULL)
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
    /* The keys of one lineage are next to each other (they share NAME/). */
    for (size_t i = 0; rc == CP_OK && i < l.n; i++) {
        const char *rel = l.items[i].key + strlen(dir);
        const char *slash = strchr(rel, '/');
        if (slash == NULL || (size_t)(slash - rel) > 255)
            continue;
        char name[256];
        memcpy(name, rel, (size_t)(slash - rel));
        name[slash - rel] = '\0';
        if (!store_name_valid(name) || (*n > 0 && strcmp((*names)[*n - 1], name) == 0))
            continue;
        if (((*names)[*n] = strdup(name)) == NULL)
            rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        else
            (*n)++;
    }
    etcd_kv_list_clear(&l);
    if (rc != CP_OK) {
        store_names_free(*names, *n);
        *names = NULL;
        *n = 0;
        return rc;
    }
    qsort(*names, *n, sizeof **names, by_name);
    return CP_OK;
}

static enum cp_code etcd_lineage_check(struct cp_store *st, const char *name, struct cp_err *err)
{
    /* What etcd holds is opened only through the sealing key; what can be
     * unsafe is this host's deployed copy. */
    return ES(st)->local->ops->lineage_check(ES(st)->local, name, err);
}

static bool etcd_lineage_exists(struct cp_store *st, const char *name)
{
    struct etcd_store *es = ES(st);
    char dir[KEY_MAX];
    struct etcd_kv_list l = {0};
    if (key_of(es, dir, sizeof dir, NULL, "lineages/%s/", name) != CP_OK ||
        kv_range(es, dir, true, &l, NULL) != CP_OK)
        return false;
    bool found = l.n > 0;
    etcd_kv_list_clear(&l);
    return found;
}

static enum cp_code etcd_lineage_dir(struct cp_store *st, const char *name, char *out, size_t size,
                                     struct cp_err *err)
{
    return ES(st)->local->ops->lineage_dir(ES(st)->local, name, out, size, err);
}

static enum cp_code etcd_settings_load(struct cp_store *st, const char *name, char **text,
                                       size_t *len, char *label, size_t label_size,
                                       struct cp_err *err)
{
    struct etcd_store *es = ES(st);
    char key[KEY_MAX];
    struct etcd_kv_item it = {0};
    enum cp_code rc = key_of(es, key, sizeof key, err, "lineages/%s/settings", name);
    if (rc == CP_OK && label != NULL)
        snprintf(label, label_size, "%s (%s)", st->where, key);
    if (rc == CP_OK)
        rc = kv_get(es, key, &it, err);
    if (rc != CP_OK)
        return rc;
    if (it.value != NULL) {
        *text = (char *)it.value; /* NUL-terminated by the client */
        *len = it.len;
        it.value = NULL;
    }
    etcd_kv_item_clear(&it);
    return CP_OK;
}

static enum cp_code etcd_settings_save(struct cp_store *st, const char *name, const char *text,
                                       size_t len, struct cp_err *err)
{
    char key[KEY_MAX];
    enum cp_code rc = key_of(ES(st), key, sizeof key, err, "lineages/%s/settings", name);
    return rc == CP_OK ? kv_put(ES(st), key, text, len, 0, err) : rc;
}

static json_t *etcd_status_load(struct cp_store *st, const char *name)
{
    char key[KEY_MAX];
    struct etcd_kv_item it = {0};
    json_t *j = NULL;
    if (key_of(ES(st), key, sizeof key, NULL, "lineages/%s/status", name) == CP_OK &&
        kv_get(ES(st), key, &it, NULL) == CP_OK) {
        if (it.value != NULL)
            j = json_loadb((const char *)it.value, it.len, 0, NULL);
        etcd_kv_item_clear(&it);
    }
    if (!json_is_object(j)) {
        json_decref(j);
        return json_object();
    }
    return j;
}

static enum cp_code etcd_status_save(struct cp_store *st, const char *name, const json_t *status,
                                     struct cp_err *err)
{
    char key[KEY_MAX];
    enum cp_code rc = key_of(ES(st), key, sizeof key, err, "lineages/%s/status", name);
    if (rc != CP_OK)
        return rc;
    char *text = json_dumps(status, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    rc = kv_put(ES(st), key, text, strlen(text), 0, err);
    free(text);
    return rc;
}

/* ------------------------------------------------------------- versions */

/* The id of the current version into `id` ("" when none). */
static enum cp_code current_id(struct etcd_store *es, const char *name, char *id, size_t size,
                               struct cp_err *err)
{
    char key[KEY_MAX];
    struct etcd_kv_item it = {0};
    id[0] = '\0';
    enum cp_code rc = key_of(es, key, sizeof key, err, "lineages/%s/current", name);
    if (rc == CP_OK)
        rc = kv_get(es, key, &it, err);
    if (rc != CP_OK)
        return rc;
    if (it.value != NULL && !id_valid((const char *)it.value, it.len))
        rc = cp_err_set(err, CP_EPROTO, "%s in etcd does not hold a version id", key);
    else if (it.value != NULL && it.len >= size)
        rc = cp_err_set(err, CP_EINVAL, "no room for the version id of %s", name);
    else if (it.value != NULL)
        snprintf(id, size, "%s", (const char *)it.value);
    etcd_kv_item_clear(&it);
    return rc;
}

/* One version: its four members, checked, as a JSON object (NULL with CP_OK
 * when there is no such version). */
static enum cp_code version_load(struct etcd_store *es, const char *name, const char *id,
                                 json_t **out, char *key, size_t key_size, struct cp_err *err)
{
    struct etcd_kv_item it = {0};
    *out = NULL;
    enum cp_code rc = key_of(es, key, key_size, err, "lineages/%s/versions/%s", name, id);
    if (rc == CP_OK)
        rc = kv_get(es, key, &it, err);
    if (rc != CP_OK || it.value == NULL) {
        etcd_kv_item_clear(&it);
        return rc;
    }
    json_t *j = json_loadb((const char *)it.value, it.len, 0, NULL);
    etcd_kv_item_clear(&it);
    const char *a, *b, *c, *d;
    if (json_unpack(j, "{s:s, s:s, s:s, s:s}", "privkey", &a, "cert", &b, "chain", &c, "fullchain",
                    &d) != 0) {
        json_decref(j);
        return cp_err_set(err, CP_EPROTO,
                          "%s in etcd is not a version (privkey, cert, chain, fullchain)", key);
    }
    *out = j;
    return CP_OK;
}

/* The current version (NULL with CP_OK when none): read again when a host
 * pruned it between the two reads. */
static enum cp_code current_load(struct etcd_store *es, const char *name, json_t **out, char *id,
                                 size_t id_size, char *key, size_t key_size, struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    *out = NULL;
    for (int tries = 0; tries < 3 && rc == CP_OK && *out == NULL; tries++) {
        rc = current_id(es, name, id, id_size, err);
        if (rc != CP_OK || id[0] == '\0')
            return rc;
        rc = version_load(es, name, id, out, key, key_size, err);
    }
    if (rc == CP_OK && *out == NULL)
        rc = cp_err_set(err, CP_EPROTO, "the current version %s of %s is missing from etcd", id,
                        name);
    return rc;
}

static struct etcd_lock *lock_of(const struct etcd_store *es, const char *name)
{
    char key[KEY_MAX];
    if (key_of(es, key, sizeof key, NULL, "locks/%s", name) != CP_OK)
        return NULL;
    for (struct etcd_lock *l = es->held; l != NULL; l = l->next)
        if (strcmp(l->key, key) == 0)
            return l;
    return NULL;
}

/* This host's deployed copy: the version id it holds ("" when none). */
static void deployed_id(struct etcd_store *es, const char *name, char *id, size_t size)
{
    char dir[4096], path[4200], *text = NULL;
    size_t len = 0;
    id[0] = '\0';
    if (es->local->ops->lineage_dir(es->local, name, dir, sizeof dir, NULL) != CP_OK ||
        snprintf(path, sizeof path, "%s/%s", dir, DEPLOYED_FILE) >= (int)sizeof path ||
        access(path, F_OK) != 0 || cp_file_read_nofollow(path, 256, &text, &len, NULL) != CP_OK)
        return;
    while (len > 0 && (text[len - 1] == '\n'))
        text[--len] = '\0';
    if (id_valid(text, len) && len < size)
        snprintf(id, size, "%s", text);
    free(text);
}

/* Deploy a version into this host's state directory, and record its id. */
static enum cp_code deploy(struct etcd_store *es, const char *name, const char *id,
                           const char *privkey, size_t privkey_len, const char *cert,
                           const char *chain, const char *fullchain, struct cp_err *err)
{
    char dir[4096], path[4200], line[ID_MAX + 2];
    enum cp_code rc = es->local->ops->version_add(es->local, name, privkey, privkey_len, cert,
                                                  chain, fullchain, err);
    if (rc == CP_OK)
        rc = es->local->ops->lineage_dir(es->local, name, dir, sizeof dir, err);
    if (rc == CP_OK && snprintf(path, sizeof path, "%s/%s", dir, DEPLOYED_FILE) >= (int)sizeof path)
        rc = cp_err_set(err, CP_EINVAL, "path too long under %s", dir);
    int n = snprintf(line, sizeof line, "%s\n", id);
    if (rc == CP_OK)
        rc = cp_file_write_atomic(path, line, (size_t)n, 0600, err);
    return rc;
}

static enum cp_code etcd_version_add(struct cp_store *st, const char *name, const char *privkey_pem,
                                     size_t privkey_len, const char *cert_pem,
                                     const char *chain_pem, const char *fullchain_pem,
                                     struct cp_err *err)
{
    struct etcd_store *es = ES(st);
    char id[ID_MAX], vkey[KEY_MAX], ckey[KEY_MAX], *sealed = NULL, *text = NULL;
    size_t slen = 0;
    unsigned char rnd[4];
    struct timespec ts;
    struct tm tm;
    json_t *j = NULL;
    bool ok = false;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return cp_err_set(err, CP_EINTERNAL, "no random bytes for a version id");
    snprintf(id, sizeof id, "%04d%02d%02dT%02d%02d%02d.%09ldZ-%02x%02x%02x%02x", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec, rnd[0],
             rnd[1], rnd[2], rnd[3]);

    struct etcd_lock *l = lock_of(es, name);
    if (l != NULL && !store_lineage_lock_held(&l->base))
        return cp_err_set(err, CP_ETIMEOUT,
                          "the lineage lock of %s was lost (its lease ran out): nothing was "
                          "stored; another host may be renewing it",
                          name);
    enum cp_code rc = key_of(es, vkey, sizeof vkey, err, "lineages/%s/versions/%s", name, id);
    if (rc == CP_OK)
        rc = key_of(es, ckey, sizeof ckey, err, "lineages/%s/current", name);
    if (rc == CP_OK)
        rc = seal_pem(es, vkey, privkey_pem, privkey_len, &sealed, &slen, err);
    if (rc != CP_OK)
        goto out;
    j = json_pack("{s:s, s:s, s:s, s:s}", "privkey", sealed, "cert", cert_pem, "chain", chain_pem,
                  "fullchain", fullchain_pem);
    text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    if (text == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        goto out;
    }
    struct etcd_op ops[] = {
        {.type = ETCD_OP_PUT, .key = vkey, .value = text, .len = strlen(text)},
        {.type = ETCD_OP_PUT, .key = ckey, .value = id, .len = strlen(id)},
    };
    struct etcd_cmp cmp = {0};
    if (l != NULL) {
        /* Holds only while the lock key is on this host's lease. */
        cmp.key = l->key;
        cmp.target = ETCD_CMP_LEASE;
        cmp.result = ETCD_EQUAL;
        cmp.number = l->lease;
    }
    rc = kv_txn(es, &cmp, l != NULL ? 1 : 0, ops, 2, &ok, err);
    if (rc == CP_OK && !ok) {
        atomic_store(&l->held, false);
        rc = cp_err_set(err, CP_ETIMEOUT,
                        "the lineage lock of %s is no longer this host's (its lease ran out or "
                        "was revoked): nothing was stored; another host may be renewing it",
                        name);
    }
    if (rc == CP_OK) {
        struct cp_err why = {0};
        rc = deploy(es, name, id, privkey_pem, privkey_len, cert_pem, chain_pem, fullchain_pem,
                    &why);
        if (rc != CP_OK)
            cp_err_set(err, rc,
                       "the new version of %s is stored in %s, but deploying it here failed "
                       "(the next renew deploys it): %s",
                       name, st->where, why.msg);
    }
out:
    json_decref(j);
    free(text);
    free(sealed);
    return rc;
}

static enum cp_code etcd_current_key(struct cp_store *st, const char *name, struct acme_key **key,
                                     struct cp_err *err)
{
    struct etcd_store *es = ES(st);
    char id[ID_MAX], vkey[KEY_MAX];
    json_t *v = NULL;
    enum cp_code rc = current_load(es, name, &v, id, sizeof id, vkey, sizeof vkey, err);
    if (rc != CP_OK || v == NULL)
        return rc;
    const char *sealed = json_string_value(json_object_get(v, "privkey"));
    unsigned char *pem = NULL;
    size_t len = 0;
    rc = seal_open(&es->key, vkey, sealed, strlen(sealed), &pem, &len, err);
    if (rc == CP_OK)
        rc = acme_key_from_pem((const char *)pem, len, vkey, key, err);
    wipe_free(pem, len);
    json_decref(v);
    return rc;
}

static enum cp_code etcd_current_cert(struct cp_store *st, const char *name, char **pem,
                                      size_t *len, struct cp_err *err)
{
    char id[ID_MAX], vkey[KEY_MAX];
    json_t *v = NULL;
    enum cp_code rc = current_load(ES(st), name, &v, id, sizeof id, vkey, sizeof vkey, err);
    if (rc != CP_OK || v == NULL)
        return rc;
    const char *cert = json_string_value(json_object_get(v, "cert"));
    if ((*pem = strdup(cert)) == NULL)
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
    else
        *len = strlen(cert);
    json_decref(v);
    return rc;
}

static enum cp_code etcd_versions_prune(struct cp_store *st, const char *name, unsigned keep,
                                        size_t *removed, struct cp_err *err)
{
    struct etcd_store *es = ES(st);
    char id[ID_MAX], dir[KEY_MAX];
    struct etcd_kv_list l = {0};
    *removed = 0;
    if (keep == 0)
        return CP_OK;
    enum cp_code rc = current_id(es, name, id, sizeof id, err);
    if (rc != CP_OK || id[0] == '\0')
        return rc; /* no current version: nothing is known to be safe to remove */
    rc = key_of(es, dir, sizeof dir, err, "lineages/%s/versions/", name);
    if (rc == CP_OK)
        rc = kv_range(es, dir, true, &l, err);
    if (rc != CP_OK)
        return rc;
    /* The ids sort by time, as the range does. */
    size_t icur = l.n;
    for (size_t i = 0; i < l.n; i++)
        if (strcmp(l.items[i].key + strlen(dir), id) == 0)
            icur = i;
    for (size_t i = 0; rc == CP_OK && icur < l.n && i < l.n; i++) {
        bool kept = i + keep >= l.n || i == icur || i + 1 == icur;
        if (kept)
            continue;
        size_t gone = 0;
        rc = kv_delete(es, l.items[i].key, false, &gone, err);
        *removed += gone;
    }
    etcd_kv_list_clear(&l);
    size_t local = 0;
    if (rc == CP_OK)
        rc = es->local->ops->versions_prune(es->local, name, keep, &local, err);
    return rc;
}

/* --------------------------------------------------- whole lineages */

static enum cp_code add_entry(struct store_contents *c, const char *path)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->e[i].path, path) == 0)
            return CP_OK;
    struct store_entry *grown = realloc(c->e, (c->n + 1) * sizeof *grown);
    if (grown == NULL)
        return CP_ENOMEM;
    c->e = grown;
    if ((c->e[c->n].path = strdup(path)) == NULL)
        return CP_ENOMEM;
    c->e[c->n].target = NULL;
    c->n++;
    if (path[strlen(path) - 1] == '/')
        c->dirs++;
    else
        c->files++;
    return CP_OK;
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const struct store_entry *)a)->path, ((const struct store_entry *)b)->path);
}

static enum cp_code etcd_lineage_contents(struct cp_store *st, const char *name,
                                          struct store_contents *out, struct cp_err *err)
{
    struct etcd_store *es = ES(st);
    char dir[KEY_MAX];
    struct etcd_kv_list l = {0};
    enum cp_code rc = es->local->ops->lineage_check(es->local, name, err);
    if (rc == CP_OK)
        rc = key_of(es, dir, sizeof dir, err, "lineages/%s/", name);
    if (rc == CP_OK)
        rc = kv_range(es, dir, true, &l, err);
    if (rc != CP_OK)
        return rc;
    bool local = es->local->ops->lineage_exists(es->local, name);
    if (l.n == 0 && !local) {
        etcd_kv_list_clear(&l);
        return cp_err_set(err, CP_EINVAL, "there is no certificate named \"%s\" in %s", name,
                          st->where);
    }
    /* This host's deployed files first, then what etcd holds. */
    if (local)
        rc = es->local->ops->lineage_contents(es->local, name, out, err);
    for (size_t i = 0; rc == CP_OK && i < l.n; i++) {
        const char *rel = l.items[i].key + strlen(dir);
        if (strncmp(rel, "versions/", 9) == 0 && add_entry(out, "versions/") != CP_OK)
            rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        if (rc == CP_OK && add_entry(out, rel) != CP_OK)
            rc = cp_err_set(err, CP_ENOMEM, "out of memory");
    }
    etcd_kv_list_clear(&l);
    if (rc == CP_OK)
        qsort(out->e, out->n, sizeof *out->e, by_path);
    return rc;
}

static enum cp_code etcd_lineage_remove(struct cp_store *st, const char *name, size_t *removed,
                                        struct cp_err *err)
{
    struct etcd_store *es = ES(st);
    char dir[KEY_MAX];
    size_t gone = 0, local_gone = 0;
    /* Refusals first: nothing is removed when this host's copy is unsafe. */
    enum cp_code rc = es->local->ops->lineage_check(es->local, name, err);
    if (rc == CP_OK)
        rc = key_of(es, dir, sizeof dir, err, "lineages/%s/", name);
    /* One request: the lineage disappears for every host at once. */
    if (rc == CP_OK)
        rc = kv_delete(es, dir, true, &gone, err);
    *removed = gone;
    if (rc == CP_OK && es->local->ops->lineage_exists(es->local, name)) {
        rc = es->local->ops->lineage_remove(es->local, name, &local_gone, err);
        *removed += local_gone;
    }
    return rc;
}

/* ------------------------------------------------------- lineage locks */

static void *keepalive_main(void *arg)
{
    struct etcd_lock *l = arg;
    long long every = (long long)l->ttl_s * 1000 / 3;
    if (every < 500)
        every = 500;
    for (;;) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t)(every / 1000);
        until.tv_nsec += (long)(every % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&l->mu);
        int w = 0;
        while (!l->stop && w != ETIMEDOUT)
            w = pthread_cond_timedwait(&l->cv, &l->mu, &until);
        bool stop = l->stop;
        pthread_mutex_unlock(&l->mu);
        if (stop)
            break;
        long long sent = now_ms();
        int64_t left = 0;
        enum cp_code rc = etcd_lease_keepalive(l->kv, l->lease, &left, NULL);
        if (rc == CP_OK && left > 0) {
            atomic_store(&l->expires_ms, sent + (long long)left * 1000);
            /* The lease lives; is the lock key still on it (not deleted by
             * hand, or taken over after a lease that ran out meanwhile)? */
            struct etcd_kv_item it = {0};
            if (etcd_kv_get(l->kv, l->key, &it, NULL) == CP_OK &&
                (it.value == NULL || it.lease != l->lease)) {
                etcd_kv_item_clear(&it);
                atomic_store(&l->held, false);
                break;
            }
            etcd_kv_item_clear(&it);
        } else if (rc == CP_OK || rc == CP_ETIMEOUT || now_ms() >= atomic_load(&l->expires_ms)) {
            /* Expired or revoked, or no answer until it must have run out. */
            atomic_store(&l->held, false);
            break;
        }
    }
    return NULL;
}

static bool etcd_lineage_lock_held(const struct store_lineage_lock *base)
{
    const struct etcd_lock *l = (const struct etcd_lock *)base;
    return atomic_load(&l->held) && now_ms() < atomic_load(&l->expires_ms);
}

static void lock_free(struct etcd_lock *l)
{
    if (l->started) {
        pthread_mutex_lock(&l->mu);
        l->stop = true;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    etcd_kv_close(l->kv);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static enum cp_code kv_open(struct etcd_store *es, struct etcd_kv **out, struct cp_err *err)
{
    struct etcd_kv_opts o = {
        .endpoints = (const char *const *)es->endpoints,
        .nendpoints = es->nendpoints,
        .ca_file = es->ca_file,
        .cert_file = es->cert_file,
        .key_file = es->key_file,
        .user = es->user,
        .password = es->password,
        .timeout_ms = es->timeout_ms,
    };
    return etcd_kv_open(&o, out, err);
}

static enum cp_code etcd_lineage_lock(struct cp_store *st, const char *name, unsigned timeout_s,
                                      void (*waiting)(void *ctx, const char *holder), void *ctx,
                                      struct store_lineage_lock **out, struct cp_err *err)
{
    struct etcd_store *es = ES(st);
    char me[300], host[256] = "";
    enum cp_code rc;
    if (lock_of(es, name) != NULL)
        return cp_err_set(err, CP_EINTERNAL, "the lineage lock of %s is held already", name);
    struct etcd_lock *l = calloc(1, sizeof *l);
    if (l == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&l->mu, NULL);
    l->base.st = st;
    l->es = es;
    l->ttl_s = es->lock_ttl_s;
    snprintf(l->name, sizeof l->name, "%s", name);
    (void)gethostname(host, sizeof host - 1);
    snprintf(me, sizeof me, "%s pid %ld", host[0] ? host : "unknown", (long)getpid());
    rc = key_of(es, l->key, sizeof l->key, err, "locks/%s", name);
    if (rc != CP_OK)
        goto fail;

    long long t0 = now_ms(), deadline = t0 + (long long)timeout_s * 1000, pause = 100;
    long long refreshed = 0;
    bool said = false, ok = false;
    for (;;) {
        if (l->lease == 0) {
            rc = noted(es, etcd_lease_grant(es->kv, l->ttl_s, &l->lease, err));
            refreshed = now_ms();
            if (rc != CP_OK)
                goto fail;
        } else if (now_ms() - refreshed >= (long long)l->ttl_s * 1000 / 3) {
            /* Waiting longer than the lease lasts: keep it alive meanwhile. */
            int64_t left = 0;
            refreshed = now_ms();
            rc = noted(es, etcd_lease_keepalive(es->kv, l->lease, &left, err));
            if (rc == CP_ETIMEOUT || (rc == CP_OK && left <= 0)) {
                l->lease = 0;
                continue;
            }
            if (rc != CP_OK)
                goto fail;
        }
        struct etcd_cmp cmp = {.key = l->key, .target = ETCD_CMP_CREATE, .result = ETCD_EQUAL};
        struct etcd_op op = {
            .type = ETCD_OP_PUT, .key = l->key, .value = me, .len = strlen(me), .lease = l->lease};
        rc = kv_txn(es, &cmp, 1, &op, 1, &ok, err);
        if (rc != CP_OK)
            goto fail;
        if (ok)
            break;
        struct etcd_kv_item it = {0};
        char holder[300] = "another host";
        rc = kv_get(es, l->key, &it, err);
        if (rc != CP_OK)
            goto fail;
        if (it.value != NULL)
            snprintf(holder, sizeof holder, "%.*s", (int)(it.len < 200 ? it.len : 200),
                     (const char *)it.value);
        bool gone = it.value == NULL, mine = !gone && it.lease == l->lease;
        etcd_kv_item_clear(&it);
        if (mine)
            break; /* a create that timed out on one member and was retried on
                    * another: the first try had taken the lock for us */
        if (gone)
            continue; /* released meanwhile: try again at once */
        long long now = now_ms();
        if (now >= deadline) {
            rc = cp_err_set(err, CP_ETIMEOUT,
                            "%s holds the lock of %s in %s; gave up after %u s: try again when "
                            "it has finished, or wait longer with --lock-timeout SECONDS",
                            holder, name, st->where, timeout_s);
            goto fail;
        }
        if (!said && waiting != NULL)
            waiting(ctx, holder);
        said = true;
        sleep_ms(pause < deadline - now ? pause : deadline - now);
        pause = pause * 2 > 2000 ? 2000 : pause * 2;
    }
    atomic_store(&l->held, true);
    atomic_store(&l->expires_ms, refreshed + (long long)l->ttl_s * 1000);
    rc = kv_open(es, &l->kv, err);
    if (rc == CP_OK && pthread_create(&l->thread, NULL, keepalive_main, l) != 0)
        rc = cp_err_set(err, CP_EIO, "cannot start the thread keeping the lock of %s", name);
    if (rc != CP_OK)
        goto fail;
    l->started = true;
    l->next = es->held;
    es->held = l;
    *out = &l->base;
    return CP_OK;
fail:
    if (l->lease != 0)
        (void)etcd_lease_revoke(es->kv, l->lease, NULL);
    lock_free(l);
    return rc;
}

static void etcd_lineage_unlock(struct store_lineage_lock *base)
{
    struct etcd_lock *l = (struct etcd_lock *)base;
    struct etcd_store *es = l->es;
    for (struct etcd_lock **p = &es->held; *p != NULL; p = &(*p)->next)
        if (*p == l) {
            *p = l->next;
            break;
        }
    int64_t lease = l->lease;
    lock_free(l);
    /* Revoking the lease deletes the lock key: the next host goes on at once. */
    (void)noted(es, etcd_lease_revoke(es->kv, lease, NULL));
}

static enum cp_code etcd_current_version(struct cp_store *st, const char *name,
                                         char out[STORE_VERSION_ID_MAX], struct cp_err *err)
{
    return current_id(ES(st), name, out, STORE_VERSION_ID_MAX, err);
}

static enum cp_code etcd_lineage_sync(struct cp_store *st, const char *name, bool *changed,
                                      struct cp_err *err)
{
    struct etcd_store *es = ES(st);
    char id[ID_MAX], have[ID_MAX], vkey[KEY_MAX];
    json_t *v = NULL;
    /* The id first: the version itself (a sealed key and a chain) is read
     * only when this host does not have it yet, which is rare. */
    enum cp_code rc = current_id(es, name, id, sizeof id, err);
    if (rc != CP_OK || id[0] == '\0')
        return rc;
    deployed_id(es, name, have, sizeof have);
    if (strcmp(have, id) == 0)
        return CP_OK;
    rc = current_load(es, name, &v, id, sizeof id, vkey, sizeof vkey, err);
    if (rc != CP_OK || v == NULL)
        return rc;
    const char *sealed = json_string_value(json_object_get(v, "privkey"));
    unsigned char *pem = NULL;
    size_t len = 0;
    rc = seal_open(&es->key, vkey, sealed, strlen(sealed), &pem, &len,
                   err); /* checked by version_load */
    if (rc == CP_OK)
        rc = deploy(es, name, id, (const char *)pem, len,
                    json_string_value(json_object_get(v, "cert")),
                    json_string_value(json_object_get(v, "chain")),
                    json_string_value(json_object_get(v, "fullchain")), err);
    if (rc == CP_OK)
        *changed = true;
    wipe_free(pem, len);
    json_decref(v);
    return rc;
}

/* ------------------------------------------------------- shared http-01 */

static enum cp_code token_key(struct etcd_store *es, const char *token, char *out, size_t size,
                              struct cp_err *err)
{
    size_t n = strlen(token);
    if (n == 0 || n > TOKEN_MAX ||
        strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                      "0123456789-_") != n)
        return cp_err_set(err, CP_EINVAL, "\"%.80s\" is not an http-01 token", token);
    return key_of(es, out, size, err, "challenges/http-01/%s", token);
}

static enum cp_code etcd_challenge_publish(struct cp_store *st, const char *token,
                                           const char *key_authz, unsigned ttl_s,
                                           struct cp_err *err)
{
    struct etcd_store *es = ES(st);
    char key[KEY_MAX];
    int64_t lease = 0;
    enum cp_code rc = token_key(es, token, key, sizeof key, err);
    if (rc == CP_OK)
        rc = noted(es, etcd_lease_grant(es->kv, ttl_s > 0 ? ttl_s : 1, &lease, err));
    if (rc == CP_OK)
        rc = kv_put(es, key, key_authz, strlen(key_authz), lease, err);
    return rc;
}

static enum cp_code etcd_challenge_withdraw(struct cp_store *st, const char *token,
                                            struct cp_err *err)
{
    struct etcd_store *es = ES(st);
    char key[KEY_MAX];
    struct etcd_kv_item it = {0};
    enum cp_code rc = token_key(es, token, key, sizeof key, err);
    if (rc == CP_OK)
        rc = kv_get(es, key, &it, err);
    if (rc != CP_OK)
        return rc;
    /* Its lease goes with it: revoking deletes the key too. */
    if (it.value != NULL && it.lease != 0)
        rc = noted(es, etcd_lease_revoke(es->kv, it.lease, err));
    else if (it.value != NULL)
        rc = kv_delete(es, key, false, NULL, err);
    etcd_kv_item_clear(&it);
    return rc;
}

static enum cp_code etcd_challenge_lookup(struct cp_store *st, const char *token, char **key_authz,
                                          struct cp_err *err)
{
    struct etcd_store *es = ES(st);
    char key[KEY_MAX];
    struct etcd_kv_item it = {0};
    enum cp_code rc = token_key(es, token, key, sizeof key, err);
    if (rc == CP_OK)
        rc = kv_get(es, key, &it, err);
    if (rc == CP_OK && it.value != NULL) {
        *key_authz = (char *)it.value;
        it.value = NULL;
    }
    etcd_kv_item_clear(&it);
    return rc;
}

/* ------------------------------------------------------------- the handle */

static enum cp_code etcd_lock_run(struct cp_store *st, unsigned timeout_s,
                                  void (*waiting)(void *ctx, const char *holder), void *ctx,
                                  size_t *swept, struct cp_err *err)
{
    return ES(st)->local->ops->lock(ES(st)->local, timeout_s, waiting, ctx, swept, err);
}

static void etcd_unlock_run(struct cp_store *st)
{
    ES(st)->local->ops->unlock(ES(st)->local);
}

static bool etcd_unavailable(const struct cp_store *st)
{
    return ES(st)->unavailable;
}

static void etcd_lineage_unlock(struct store_lineage_lock *base);

static void etcd_close(struct cp_store *st)
{
    struct etcd_store *es = ES(st);
    while (es->held != NULL) /* a lock outliving its handle would lose its guard */
        etcd_lineage_unlock(&es->held->base);
    store_close(es->local);
    etcd_kv_close(es->kv);
    for (size_t i = 0; i < es->nendpoints; i++)
        free(es->endpoints[i]);
    free(es->ca_file);
    free(es->cert_file);
    free(es->key_file);
    free(es->user);
    if (es->password != NULL)
        wipe_free(es->password, strlen(es->password));
    seal_key_clear(&es->key);
    free(es);
}

static const struct store_ops etcd_ops = {
    .close = etcd_close,
    .lock = etcd_lock_run,
    .unlock = etcd_unlock_run,
    .account_load = etcd_account_load,
    .account_save_record = etcd_account_save_record,
    .account_save_key = etcd_account_save_key,
    .account_settle = etcd_account_settle,
    .lineage_names = etcd_lineage_names,
    .lineage_check = etcd_lineage_check,
    .lineage_dir = etcd_lineage_dir,
    .settings_load = etcd_settings_load,
    .settings_save = etcd_settings_save,
    .version_add = etcd_version_add,
    .current_key = etcd_current_key,
    .current_cert = etcd_current_cert,
    .versions_prune = etcd_versions_prune,
    .lineage_exists = etcd_lineage_exists,
    .lineage_contents = etcd_lineage_contents,
    .lineage_remove = etcd_lineage_remove,
    .status_load = etcd_status_load,
    .status_save = etcd_status_save,
    .lineage_lock = etcd_lineage_lock,
    .lineage_lock_held = etcd_lineage_lock_held,
    .lineage_unlock = etcd_lineage_unlock,
    .current_version = etcd_current_version,
    .lineage_sync = etcd_lineage_sync,
    .challenge_publish = etcd_challenge_publish,
    .challenge_withdraw = etcd_challenge_withdraw,
    .challenge_lookup = etcd_challenge_lookup,
    .unavailable = etcd_unavailable,
};

/* ------------------------------------------------------------- opening */

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == ':' || c == '[' || c == ']';
}

/* etcd[s]://HOST[:PORT][,HOST[:PORT]...][/PREFIX] into endpoints and prefix. */
static enum cp_code parse_url(const char *url, struct etcd_store *es, struct cp_err *err)
{
    bool tls = strncmp(url, "etcds://", 8) == 0;
    const char *p = url + (tls ? 8 : 7);
    size_t hosts_len = strcspn(p, "/");
    const char *path = p + hosts_len;
    if (hosts_len == 0)
        return cp_err_set(err, CP_EINVAL, "--store \"%.200s\" names no etcd member (HOST:PORT)",
                          url);
    for (const char *h = p; h < p + hosts_len;) {
        size_t n = strcspn(h, ",/");
        if (n > (size_t)(p + hosts_len - h))
            n = (size_t)(p + hosts_len - h);
        if (n == 0 || n > 255)
            return cp_err_set(err, CP_EINVAL, "--store \"%.200s\": an empty or too long member",
                              url);
        for (size_t i = 0; i < n; i++)
            if (!host_char(h[i]))
                return cp_err_set(err, CP_EINVAL,
                                  "--store \"%.200s\": '%c' cannot be in a member's HOST:PORT "
                                  "(no user name or password in the URL: use --store-user and "
                                  "--store-password-file)",
                                  url, h[i]);
        if (es->nendpoints == ETCD_KV_MAX_ENDPOINTS)
            return cp_err_set(err, CP_EINVAL, "--store \"%.200s\": more than %d members", url,
                              ETCD_KV_MAX_ENDPOINTS);
        /* The port is 2379 unless given (after the last ':' outside brackets). */
        const char *close = memchr(h, ']', n);
        const char *colon = NULL;
        for (const char *c = close ? close : h; c < h + n; c++)
            if (*c == ':')
                colon = c;
        bool bare_v6 = h[0] != '[' && memchr(h, ':', n) != colon;
        if (bare_v6 || (h[0] == '[' && close == NULL))
            return cp_err_set(err, CP_EINVAL,
                              "--store \"%.200s\": write an IPv6 member as [ADDRESS]:PORT", url);
        if (colon != NULL) {
            size_t digits = (size_t)(h + n - colon - 1);
            if (digits == 0 || digits > 5 || strspn(colon + 1, "0123456789") < digits)
                return cp_err_set(err, CP_EINVAL,
                                  "--store \"%.200s\": a member's port is not a number", url);
        }
        char ep[300];
        snprintf(ep, sizeof ep, "%s://%.*s%s", tls ? "https" : "http", (int)n, h,
                 colon != NULL ? "" : ":2379");
        if ((es->endpoints[es->nendpoints] = strdup(ep)) == NULL)
            return cp_err_set(err, CP_ENOMEM, "out of memory");
        es->nendpoints++;
        h += n;
        if (*h == ',')
            h++;
    }
    size_t plen = strlen(path);
    while (plen > 0 && path[plen - 1] == '/')
        plen--;
    if (plen == 0) {
        snprintf(es->prefix, sizeof es->prefix, "%s", DEFAULT_PREFIX);
        return CP_OK;
    }
    if (plen >= sizeof es->prefix ||
        strspn(path, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
                     "vwxyz0123456789._-/") < plen ||
        strstr(path, "//") != NULL)
        return cp_err_set(err, CP_EINVAL,
                          "--store \"%.200s\": the prefix must be a plain path of letters, digits, "
                          "'.', '-', '_' and single '/'",
                          url);
    snprintf(es->prefix, sizeof es->prefix, "%.*s", (int)plen, path);
    return CP_OK;
}

/*
 * Is the store key the one this store's keys were sealed with?  The first
 * host to use the store leaves a known text sealed under PREFIX/seal-check
 * (only if none is there: a transaction); every later open must open it.  A
 * wrong --store-key-file is thus refused before anything is read or written,
 * with one message, rather than at the first private key.
 */
static enum cp_code seal_check(struct etcd_store *es, const char *key_file, struct cp_err *err)
{
    static const char known[] = "certpilot store key check";
    char key[KEY_MAX], *sealed = NULL;
    size_t slen = 0;
    struct etcd_kv_item it = {0};
    enum cp_code rc = key_of(es, key, sizeof key, err, "seal-check");
    if (rc == CP_OK)
        rc = kv_get(es, key, &it, err);
    if (rc == CP_OK && it.value == NULL) {
        bool ok = false;
        rc = seal_seal(&es->key, key, known, sizeof known - 1, &sealed, &slen, err);
        struct etcd_cmp cmp = {.key = key, .target = ETCD_CMP_CREATE, .result = ETCD_EQUAL};
        struct etcd_op op = {.type = ETCD_OP_PUT, .key = key, .value = sealed, .len = slen};
        if (rc == CP_OK)
            rc = kv_txn(es, &cmp, 1, &op, 1, &ok, err);
        free(sealed);
        if (rc != CP_OK || ok)
            return rc;
        rc = kv_get(es, key, &it, err); /* another host's, written meanwhile */
    }
    unsigned char *plain = NULL;
    size_t plen = 0;
    if (rc == CP_OK && it.value != NULL &&
        (seal_open(&es->key, key, (const char *)it.value, it.len, &plain, &plen, NULL) != CP_OK ||
         plen != sizeof known - 1 || memcmp(plain, known, plen) != 0))
        rc = cp_err_set(err, CP_ESETUP,
                        "the store key file %s is not the key the private keys in %s were sealed "
                        "with (%s does not open with it): use the same --store-key-file on every "
                        "host",
                        key_file, es->base.where, key);
    wipe_free(plain, plen);
    etcd_kv_item_clear(&it);
    return rc;
}

static char *dup_opt(const char *s, bool *failed)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *failed = true;
    return d;
}

enum cp_code store_etcd_open(const struct store_open_opts *o, struct cp_store **out,
                             struct cp_err *err)
{
    *out = NULL;
    if (strlen(o->url) >= sizeof((struct cp_store *)0)->where)
        return cp_err_set(err, CP_EINVAL, "--store: the URL is too long");
    struct etcd_store *es = calloc(1, sizeof *es);
    if (es == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    es->base.ops = &etcd_ops;
    snprintf(es->base.where, sizeof es->base.where, "%s", o->url);
    es->lock_ttl_s = o->lock_ttl_s > 0 ? o->lock_ttl_s : DEFAULT_TTL_S;
    es->timeout_ms = o->timeout_ms;
    bool failed = false;
    es->ca_file = dup_opt(o->ca_file, &failed);
    es->cert_file = dup_opt(o->cert_file, &failed);
    es->key_file = dup_opt(o->key_file, &failed);
    es->user = dup_opt(o->user, &failed);
    es->password = dup_opt(o->password, &failed);
    enum cp_code rc = failed ? cp_err_set(err, CP_ENOMEM, "out of memory") : CP_OK;
    if (rc == CP_OK)
        rc = parse_url(o->url, es, err);
    bool keyless = o->seal_key_file == NULL || o->seal_key_file[0] == '\0';
    if (rc == CP_OK && keyless && !o->key_optional)
        rc = cp_err_set(err, CP_ESETUP,
                        "the etcd store %s needs the key that seals private keys: pass "
                        "--store-key-file FILE (made once with: openssl rand -base64 32 > FILE "
                        "&& chmod 0600 FILE, then copied to every host)",
                        o->url);
    if (rc == CP_OK && !keyless)
        rc = seal_key_load(o->seal_key_file, &es->key, err);
    if (rc == CP_OK)
        rc = store_fs_open(o->local_dir, &es->local, err);
    if (rc == CP_OK)
        rc = kv_open(es, &es->kv, err);
    if (rc == CP_OK && !keyless)
        rc = seal_check(es, o->seal_key_file, err);
    if (rc != CP_OK) {
        etcd_close(&es->base);
        return rc;
    }
    *out = &es->base;
    return CP_OK;
}
