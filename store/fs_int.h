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
    int lock_fd; /* -1: not held */
};

#define FS(st) ((struct fs_store *)(st))

/* Refuse STATE/certs/NAME when someone else could have changed it (store.h). */
enum cp_code fs_lineage_check_dir(const char *state, const char *cert_name, struct cp_err *err);

enum cp_code fs_lineage_contents(struct cp_store *st, const char *cert_name,
                                 struct store_contents *out, struct cp_err *err);
enum cp_code fs_lineage_remove(struct cp_store *st, const char *cert_name, size_t *removed,
                               struct cp_err *err);

#endif
