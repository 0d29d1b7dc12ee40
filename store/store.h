/*
 * store/store.h - where certpilot keeps what outlives a run: one account per
 * CA, and lineages (a certificate's name, its versions, its settings and the
 * results of its last runs).
 *
 * The store is one interface with backends behind it (store/store_int.h); the
 * filesystem is the first (store/fs.c: the state directory laid out as the
 * comment there shows).  Callers name things (a CA's directory URL, a
 * certificate's name), never paths, so that a backend which keeps them
 * elsewhere (a replicated key-value store) fits behind the same calls.  The
 * one path it hands out is where a lineage's files are deployed for servers
 * and hooks to read (store_lineage_dir), which every backend has locally.
 *
 * Nothing here prints: errors come back as a cp_code with a message that
 * names what was refused and what to do.  CP_EUNSAFE is a state someone else
 * could have changed (another owner, open modes, a symlink where none
 * belongs); CP_ETIMEOUT a lock another run holds.
 */
#ifndef CP_STORE_STORE_H
#define CP_STORE_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "acme/acme.h"
#include "common/err.h"

struct cp_store; /* opaque: one backend's handle */

/* The state directory `dir` as a store: nothing is created until written.
 * Refuses (CP_EUNSAFE) a directory another user owns or others may write. */
enum cp_code store_fs_open(const char *dir, struct cp_store **out, struct cp_err *err);
void store_close(struct cp_store *st); /* releases the lock; NULL: no-op */
/* Where it is, for messages ("/var/lib/certpilot"). */
const char *store_where(const struct cp_store *st);

/* The default state directory: /var/lib/certpilot for root, else
 * $XDG_STATE_HOME/certpilot or ~/.local/state/certpilot; NULL when neither
 * variable is usable. */
const char *store_default_dir(char *buf, size_t size);

/*
 * One run at a time: wait at most timeout_s for the store's lock (`waiting`,
 * when not NULL, is called once with the holder's pid as text if it must
 * wait).  CP_ETIMEOUT when another run still holds it (the message names it);
 * held until store_unlock() or store_close().  Under the lock, the temp files
 * a killed run left are removed; *swept counts them (the filesystem store
 * looks through the lineages only when the last run that held the lock did
 * not let it go in good order: see store/fs.c).
 */
enum cp_code store_lock(struct cp_store *st, unsigned timeout_s,
                        void (*waiting)(void *ctx, const char *holder), void *ctx, size_t *swept,
                        struct cp_err *err);
void store_unlock(struct cp_store *st);

/* ------------------------------------------------------------- accounts */

/*
 * One CA's account as kept: its key, the new key of a key rollover that has
 * not been settled (written before keyChange is sent, so that a crash cannot
 * lose the key the CA may now know), and its record, a JSON object
 * ({"directory", "url", "contact", "key_type"} and, once deactivated,
 * "status" and "deactivated_at"; members a later version adds are kept).
 */
struct store_account {
    struct acme_key *key;     /* NULL: none yet */
    struct acme_key *pending; /* NULL: no rollover left unsettled */
    json_t *rec;              /* never NULL after a load: {} when there is none */
    char where[4300];         /* for messages: where the account is kept */
    char pending_where[4400]; /* ... and its pending key */
};
/* Load what there is for the CA at `directory_url` (nothing is no error).
 * Clear it after, also on failure. */
enum cp_code store_account_load(struct cp_store *st, const char *directory_url,
                                struct store_account *out, struct cp_err *err);
void store_account_clear(struct store_account *a);
/* Write the record / the key / the pending key, each atomically. */
enum cp_code store_account_save_record(struct cp_store *st, const char *directory_url,
                                       const json_t *rec, struct cp_err *err);
enum cp_code store_account_save_key(struct cp_store *st, const char *directory_url,
                                    const struct acme_key *key, struct cp_err *err);
enum cp_code store_account_save_pending(struct cp_store *st, const char *directory_url,
                                        const struct acme_key *key, struct cp_err *err);
/* Settle a rollover: the pending key becomes the key at once (commit), or
 * goes (remove). */
enum cp_code store_account_commit_pending(struct cp_store *st, const char *directory_url,
                                          struct cp_err *err);
enum cp_code store_account_remove_pending(struct cp_store *st, const char *directory_url,
                                          struct cp_err *err);

/* ------------------------------------------------------------- lineages */

/* Letters, digits, '.', '-', '_'; not starting with '.', no "..". */
bool store_name_valid(const char *name);
/* Every lineage, sorted (heap array of heap strings; store_names_free). */
enum cp_code store_lineage_names(struct cp_store *st, char ***names, size_t *n, struct cp_err *err);
void store_names_free(char **names, size_t n);
/* Refuse a lineage someone else could have changed (CP_EUNSAFE); CP_OK when
 * it does not exist yet. */
enum cp_code store_lineage_check(struct cp_store *st, const char *name, struct cp_err *err);
/* Is there a lineage of that name (whatever it holds)? */
bool store_lineage_exists(struct cp_store *st, const char *name);
/* Where the lineage's stable files are (privkey.pem, cert.pem, chain.pem,
 * fullchain.pem): what servers and hooks are given. */
enum cp_code store_lineage_dir(struct cp_store *st, const char *name, char *out, size_t size,
                               struct cp_err *err);

/* Its settings (renewal.conf): *text NULL when it has none; `label` (when
 * not NULL) is what error messages call the file.  Saved atomically. */
enum cp_code store_settings_load(struct cp_store *st, const char *name, char **text, size_t *len,
                                 char *label, size_t label_size, struct cp_err *err);
enum cp_code store_settings_save(struct cp_store *st, const char *name, const char *text,
                                 size_t len, struct cp_err *err);

/*
 * A new version: key and certificate files written, then made current at
 * once; an interruption leaves the previous pair in place.
 */
enum cp_code store_version_add(struct cp_store *st, const char *name, const char *privkey_pem,
                               size_t privkey_len, const char *cert_pem, const char *chain_pem,
                               const char *fullchain_pem, struct cp_err *err);
/* The current version's private key, and its certificate (PEM, heap): NULL
 * with CP_OK when there is none. */
enum cp_code store_current_key(struct cp_store *st, const char *name, struct acme_key **key,
                               struct cp_err *err);
enum cp_code store_current_cert(struct cp_store *st, const char *name, char **pem, size_t *len,
                                struct cp_err *err);
/*
 * What identifies the current version's certificate without reading it:
 * an opaque text (at most STORE_VERSION_ID_MAX - 1 bytes) that changes
 * whenever another version is made current or its certificate file is
 * replaced.  Callers may cache what they learnt from the certificate under
 * it.  "" (with CP_OK) when there is no current version, or when the
 * backend cannot tell (then nothing may be cached).  A shared store's id is
 * the same on every host.
 */
#define STORE_VERSION_ID_MAX 200
enum cp_code store_current_version(struct cp_store *st, const char *name,
                                   char out[STORE_VERSION_ID_MAX], struct cp_err *err);
/* Remove the old versions beyond the `keep` newest (0: keep all); the
 * current one and the newest before it always stay. */
enum cp_code store_versions_prune(struct cp_store *st, const char *name, unsigned keep,
                                  size_t *removed, struct cp_err *err);

/* What a lineage holds, for saying what removing it removes: every entry,
 * sorted, a directory before its contents, nothing followed. */
struct store_entry {
    char *path;   /* relative to the lineage; a directory's ends in '/' */
    char *target; /* a symbolic link's target as stored, else NULL */
};
struct store_contents {
    struct store_entry *e;
    size_t n;
    size_t files, links, dirs;
};
/* store_lineage_check() first (its refusal is returned); CP_EINVAL when
 * there is no such lineage.  Clear `out` after (also on failure). */
enum cp_code store_lineage_contents(struct cp_store *st, const char *name,
                                    struct store_contents *out, struct cp_err *err);
void store_contents_clear(struct store_contents *c);
/*
 * Remove the lineage: versions, keys, certificates, links, settings and
 * status; nothing else.  Refused before anything is touched when the
 * lineage is unsafe, holds another file system's mount point or nests deeper
 * than certpilot makes it.  No symbolic link is followed.  It disappears for
 * every reader at once; when removal fails half way the message says where
 * the rest is.  Hold the lock.  *removed counts the entries removed.
 */
enum cp_code store_lineage_remove(struct cp_store *st, const char *name, size_t *removed,
                                  struct cp_err *err);

/* Its status (results of the last runs, cached ARI answer): an object, empty
 * when there is none (never NULL but on allocation failure). */
json_t *store_status_load(struct cp_store *st, const char *name);
enum cp_code store_status_save(struct cp_store *st, const char *name, const json_t *status,
                               struct cp_err *err);

/* -------------------------------------------------------- shared stores */

/*
 * A store named by a URL, for the command line's --store and the config's
 * "store =": NULL or a path is the filesystem store at local_dir (as
 * store_fs_open); etcd://HOST:PORT[,HOST:PORT...]/PREFIX (etcds:// for
 * HTTPS) is an etcd v3 cluster shared by a fleet of hosts (store/etcd.c).
 * A shared store keeps accounts, lineages, settings and status in etcd
 * (private keys sealed with the operator's key, never plain) and deploys
 * each lineage's current version into local_dir, where servers and hooks
 * read it and where this host's run lock lives.
 */
struct store_open_opts {
    const char *url;                  /* NULL: the filesystem store at local_dir */
    const char *local_dir;            /* this host's state directory */
    const char *seal_key_file;        /* etcd: the key sealing private keys (store/seal.h) */
    const char *ca_file;              /* etcd over HTTPS: CA bundle of the members */
    const char *cert_file, *key_file; /* etcd: client certificate, both or neither */
    const char *user, *password;      /* etcd authentication; NULL: none */
    unsigned lock_ttl_s;              /* etcd: lease of a lineage lock; 0: 30 */
    unsigned timeout_ms;              /* etcd: per request; 0: 5000 */
    /* etcd: seal_key_file may be NULL (serve-challenges, which reads only
     * http-01 key authorizations, never sealed): a private key then can be
     * neither read nor stored.  A key file given is checked all the same. */
    bool key_optional;
};
enum cp_code store_open(const struct store_open_opts *o, struct cp_store **out, struct cp_err *err);

/* Do several hosts share it (renewals then take the lineage lock)? */
bool store_shared(const struct cp_store *st);
/* Did the shared store's last request get no answer from any member (the
 * CP_ENET a caller got came from the store, not from the CA)?  Always false
 * for the filesystem. */
bool store_unavailable(const struct cp_store *st);

/*
 * The renewal lock of one lineage across every host sharing the store.  A
 * store that is not shared grants it at once (its run lock already keeps
 * runs apart).  A shared one holds it by a lease kept alive in the
 * background: wait at most timeout_s (`waiting`, when not NULL, is called
 * once with the holder's description if it must wait); CP_ETIMEOUT when
 * another host still holds it.  A host that dies loses it when the lease
 * runs out.  While held, store_version_add() for that lineage succeeds only
 * if the lock is still this host's: a lost lease writes nothing.
 */
struct store_lineage_lock; /* opaque */
enum cp_code store_lineage_lock(struct cp_store *st, const char *name, unsigned timeout_s,
                                void (*waiting)(void *ctx, const char *holder), void *ctx,
                                struct store_lineage_lock **out, struct cp_err *err);
/* False once the lease was lost (the holder must stop and write nothing).
 * The guard is the handle's: store_version_add() through the handle that
 * took the lock (renew hands its own to the issue engine).  store_close()
 * releases the locks its handle still holds. */
bool store_lineage_lock_held(const struct store_lineage_lock *l);
void store_lineage_unlock(struct store_lineage_lock *l); /* NULL: no-op */
/* The same kind of lock for registering the account at the CA of
 * `directory_url`, so that hosts sharing the store register one account
 * between them (released with store_lineage_unlock). */
enum cp_code store_account_lock(struct cp_store *st, const char *directory_url, unsigned timeout_s,
                                void (*waiting)(void *ctx, const char *holder), void *ctx,
                                struct store_lineage_lock **out, struct cp_err *err);

/* store_current_version() (above), read before and after waiting for the
 * lineage lock, tells that another host renewed meanwhile. */
/* Deploy the shared current version into this host's files when they differ;
 * *changed says whether it did (deploy hooks are then due).  Not shared:
 * nothing to do. */
enum cp_code store_lineage_sync(struct cp_store *st, const char *name, bool *changed,
                                struct cp_err *err);

/* http-01 key authorizations shared by a fleet, so that any host's responder
 * answers a challenge another host ordered.  Publish keeps it for at most
 * ttl_s seconds; a store that is not shared ignores publish and withdraw and
 * finds nothing. */
enum cp_code store_challenge_publish(struct cp_store *st, const char *token, const char *key_authz,
                                     unsigned ttl_s, struct cp_err *err);
enum cp_code store_challenge_withdraw(struct cp_store *st, const char *token, struct cp_err *err);
/* *key_authz: heap string, NULL (CP_OK) when not published. */
enum cp_code store_challenge_lookup(struct cp_store *st, const char *token, char **key_authz,
                                    struct cp_err *err);

#endif
