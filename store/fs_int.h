/*
 * store/fs_int.h - what the filesystem store's files (store/fs.c,
 * store/fs_remove.c) share.  Private to the backend.
 */
#ifndef CP_STORE_FS_INT_H
#define CP_STORE_FS_INT_H

#include "store/store_int.h"

struct fs_store {
    struct cp_store base; /* first: a struct cp_store * is a struct fs_store * */
    char dir[4096];
    int lock_fd;      /* -1: not held */
    bool sweep_again; /* the sweep under this lock left a young temp file of this user */
    int certs_fd;     /* STATE/certs, opened at the first look-up under it (-1: not yet) */
    /* The lineage store_lineage_check() last found safe ("" none): reading
     * its settings or certificate right after need not check it again.  A
     * check of another lineage, a failed check and every write forget it. */
    char checked[256];
    char checked_current[256]; /* what its `current` pointed to then ("" none) */
};

#define FS(st) ((struct fs_store *)(st))

/* snprintf into `out`; CP_EINVAL (path too long) when it does not fit. */
enum cp_code fs_join(char *out, size_t size, struct cp_err *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* STATE/accounts/<ca-id>, refused when unsafe; created (0700) when `create`. */
enum cp_code fs_account_dir(const char *state, const char *directory_url, char *out, size_t size,
                            bool create, struct cp_err *err);

/* Refuse STATE/certs/NAME when someone else could have changed it (store.h). */
enum cp_code fs_lineage_check_dir(const char *state, const char *cert_name, struct cp_err *err);

enum cp_code fs_lineage_contents(struct cp_store *st, const char *cert_name,
                                 struct store_contents *out, struct cp_err *err);
enum cp_code fs_lineage_remove(struct cp_store *st, const char *cert_name, size_t *removed,
                               struct cp_err *err);

enum cp_code fs_account_load(struct cp_store *st, const char *directory_url,
                             struct store_account *out, struct cp_err *err);
enum cp_code fs_account_save_record(struct cp_store *st, const char *directory_url,
                                    const json_t *rec, struct cp_err *err);
enum cp_code fs_account_save_key(struct cp_store *st, const char *directory_url, int which,
                                 const struct acme_key *key, struct cp_err *err);
enum cp_code fs_account_settle(struct cp_store *st, const char *directory_url, bool commit,
                               struct cp_err *err);

#endif
