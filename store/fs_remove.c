/*
 * store/fs_remove.c - the filesystem store's whole-lineage operations: what a
 * lineage holds (STATE/certs/NAME), and removing it.
 *
 * Removal never follows a symbolic link: the lineage is opened with
 * O_NOFOLLOW, every directory below it is opened relative to its parent with
 * O_NOFOLLOW (and must be on the same file system, not swapped since it was
 * examined), and every other entry, symbolic links included, is unlinked
 * where it is.  A link that points outside the lineage loses the link, never
 * its target.  The lineage is first renamed to a hidden name in certs/, so
 * that renew and list stop seeing it at once; an interrupted removal leaves
 * that hidden directory, never a half lineage that renew would re-issue.
 */
#define _DEFAULT_SOURCE /* fdopendir, openat & co. on older libcs */
#include "store/fs_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEPTH_MAX   4     /* certpilot makes two levels: versions/STAMP/ */
#define ENTRIES_MAX 20000 /* per directory: far beyond any real lineage */

/* ------------------------------------------------------------- the walk */

struct walk {
    bool remove;                /* else list into `out` */
    struct store_contents *out; /* when listing */
    size_t removed;             /* entries removed so far */
    dev_t dev;                  /* the lineage's file system */
    const char *where;          /* the lineage's path, for messages */
    struct cp_err *err;
};

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in the directory `dfd` (not "." and ".."), sorted. */
static enum cp_code read_names(int dfd, const char *rel, struct walk *w, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    int copy = dup(dfd);
    DIR *d = copy >= 0 ? fdopendir(copy) : NULL;
    if (d == NULL) {
        if (copy >= 0)
            close(copy);
        return cp_err_set(w->err, CP_EIO, "cannot read %s/%s: %s", w->where, rel, strerror(errno));
    }
    /* The copy shares the offset of `dfd`, which an earlier walk left at the end. */
    rewinddir(d);
    enum cp_code rc = CP_OK;
    size_t cap = 0;
    struct dirent *e;
    while (rc == CP_OK && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (*n == ENTRIES_MAX) {
            rc = cp_err_set(w->err, CP_EUNSAFE,
                            "refusing %s/%s: more than %d entries, which certpilot never makes",
                            w->where, rel, ENTRIES_MAX);
            break;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **grown = realloc(*names, cap * sizeof *grown);
            if (grown == NULL) {
                rc = cp_err_set(w->err, CP_ENOMEM, "out of memory");
                break;
            }
            *names = grown;
        }
        if (((*names)[*n] = strdup(e->d_name)) == NULL)
            rc = cp_err_set(w->err, CP_ENOMEM, "out of memory");
        else
            (*n)++;
    }
    closedir(d);
    if (*n > 1)
        qsort(*names, *n, sizeof **names, by_name);
    return rc;
}

static enum cp_code add_entry(struct walk *w, const char *path, const char *target)
{
    struct store_contents *c = w->out;
    struct store_entry *grown = realloc(c->e, (c->n + 1) * sizeof *grown);
    if (grown == NULL)
        return cp_err_set(w->err, CP_ENOMEM, "out of memory");
    c->e = grown;
    c->e[c->n].path = strdup(path);
    c->e[c->n].target = target ? strdup(target) : NULL;
    if (c->e[c->n].path == NULL || (target != NULL && c->e[c->n].target == NULL)) {
        free(c->e[c->n].path);
        free(c->e[c->n].target);
        return cp_err_set(w->err, CP_ENOMEM, "out of memory");
    }
    c->n++;
    return CP_OK;
}

/* List or remove what the directory `dfd` holds; `rel` is its path in the
 * lineage ("" for the lineage itself). */
static enum cp_code walk_dir(struct walk *w, int dfd, const char *rel, int depth)
{
    char **names = NULL, path[4200];
    size_t n = 0;
    enum cp_code rc = read_names(dfd, rel[0] ? rel : ".", w, &names, &n);
    for (size_t i = 0; rc == CP_OK && i < n; i++) {
        const char *name = names[i];
        struct stat st;
        int len = snprintf(path, sizeof path, "%s%s%s", rel, rel[0] ? "/" : "", name);
        if (len < 0 || (size_t)len >= sizeof path) {
            rc = cp_err_set(w->err, CP_EUNSAFE, "refusing %s: a path in it is too long", w->where);
            break;
        }
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = cp_err_set(w->err, CP_EIO, "cannot examine %s/%s: %s", w->where, path,
                            strerror(errno));
            break;
        }
        if (S_ISDIR(st.st_mode)) {
            if (depth >= DEPTH_MAX || st.st_dev != w->dev) {
                rc = cp_err_set(w->err, CP_EUNSAFE,
                                "refusing %s/%s: %s; certpilot did not make it, so it removes "
                                "nothing there: move it away first",
                                w->where, path,
                                st.st_dev != w->dev ? "another file system is mounted there"
                                                    : "directories nest deeper than in a lineage");
                break;
            }
            int child = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            struct stat cst;
            if (child < 0 || fstat(child, &cst) != 0 || cst.st_dev != st.st_dev ||
                cst.st_ino != st.st_ino) {
                rc = cp_err_set(w->err, CP_EUNSAFE,
                                "refusing %s/%s: it changed while being examined (%s)", w->where,
                                path, child < 0 ? strerror(errno) : "another directory");
                if (child >= 0)
                    close(child);
                break;
            }
            if (!w->remove) {
                char dir[4210];
                snprintf(dir, sizeof dir, "%s/", path);
                rc = add_entry(w, dir, NULL);
                if (rc == CP_OK)
                    w->out->dirs++;
            }
            if (rc == CP_OK)
                rc = walk_dir(w, child, path, depth + 1);
            close(child);
            if (rc == CP_OK && w->remove) {
                if (unlinkat(dfd, name, AT_REMOVEDIR) != 0)
                    rc = cp_err_set(w->err, CP_EIO, "cannot remove %s/%s: %s", w->where, path,
                                    strerror(errno));
                else
                    w->removed++;
            }
        } else if (w->remove) {
            /* A symbolic link is removed itself: what it points to stays. */
            if (unlinkat(dfd, name, 0) != 0)
                rc = cp_err_set(w->err, CP_EIO, "cannot remove %s/%s: %s", w->where, path,
                                strerror(errno));
            else
                w->removed++;
        } else if (S_ISLNK(st.st_mode)) {
            char target[4096];
            ssize_t k = readlinkat(dfd, name, target, sizeof target - 1);
            target[k > 0 ? k : 0] = '\0';
            rc = add_entry(w, path, target);
            if (rc == CP_OK)
                w->out->links++;
        } else {
            rc = add_entry(w, path, NULL);
            if (rc == CP_OK)
                w->out->files++;
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* Open STATE/certs (following a symlinked state directory, not certs) and
 * the lineage in it, without following a symlink at NAME. */
static enum cp_code open_lineage(const char *state, const char *cert_name, int *certs, int *dfd,
                                 struct stat *st, char *where, size_t size, struct cp_err *err)
{
    *certs = *dfd = -1;
    int n = snprintf(where, size, "%s/certs/%s", state, cert_name);
    if (n < 0 || (size_t)n >= size)
        return cp_err_set(err, CP_EINVAL, "path too long under the state directory");
    enum cp_code rc = fs_lineage_check_dir(state, cert_name, err);
    if (rc != CP_OK)
        return rc;
    int root = open(state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    *certs =
        root >= 0 ? openat(root, "certs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
    if (root >= 0)
        close(root);
    if (*certs >= 0)
        *dfd = openat(*certs, cert_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (*dfd < 0) {
        int e = errno;
        if (*certs >= 0)
            close(*certs);
        *certs = -1;
        return cp_err_set(err, e == ENOENT ? CP_EINVAL : CP_EUNSAFE, "cannot open %s: %s%s", where,
                          strerror(e),
                          e == ELOOP || e == ENOTDIR ? " (not a directory of certpilot's)" : "");
    }
    if (fstat(*dfd, st) != 0) {
        int e = errno;
        close(*dfd);
        close(*certs);
        *certs = *dfd = -1;
        return cp_err_set(err, CP_EIO, "cannot examine %s: %s", where, strerror(e));
    }
    return CP_OK;
}

enum cp_code fs_lineage_contents(struct cp_store *store, const char *cert_name,
                                 struct store_contents *out, struct cp_err *err)
{
    const char *state = FS(store)->dir;
    char where[4400];
    struct stat st;
    int certs, dfd;
    memset(out, 0, sizeof *out);
    enum cp_code rc = open_lineage(state, cert_name, &certs, &dfd, &st, where, sizeof where, err);
    if (rc != CP_OK)
        return rc;
    struct walk w = {.remove = false, .out = out, .dev = st.st_dev, .where = where, .err = err};
    rc = walk_dir(&w, dfd, "", 0);
    close(dfd);
    close(certs);
    if (rc != CP_OK)
        store_contents_clear(out);
    return rc;
}

void store_contents_clear(struct store_contents *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->e[i].path);
        free(c->e[i].target);
    }
    free(c->e);
    memset(c, 0, sizeof *c);
}

enum cp_code fs_lineage_remove(struct cp_store *store, const char *cert_name, size_t *removed,
                               struct cp_err *err)
{
    const char *state = FS(store)->dir;
    char where[4400], hidden[64], moved[4500];
    struct stat st, after;
    int certs, dfd;
    *removed = 0;
    enum cp_code rc = open_lineage(state, cert_name, &certs, &dfd, &st, where, sizeof where, err);
    if (rc != CP_OK)
        return rc;
    /* Whatever would stop the removal half way (a mount point, nesting that
     * certpilot never makes) refuses it now, before anything is touched. */
    struct store_contents dry = {0};
    struct walk check = {
        .remove = false, .out = &dry, .dev = st.st_dev, .where = where, .err = err};
    rc = walk_dir(&check, dfd, "", 0);
    store_contents_clear(&dry);
    if (rc != CP_OK)
        goto out;
    /* Out of sight first (renew and list skip names starting with '.'). */
    snprintf(hidden, sizeof hidden, ".deleting-%ld-%lld", (long)getpid(), (long long)time(NULL));
    snprintf(moved, sizeof moved, "%s/certs/%s", state, hidden);
    if (renameat(certs, cert_name, certs, hidden) != 0) {
        rc = cp_err_set(err, CP_EIO, "cannot move %s out of the way to remove it: %s", where,
                        strerror(errno));
        goto out;
    }
    if (fstatat(certs, hidden, &after, AT_SYMLINK_NOFOLLOW) != 0 || after.st_dev != st.st_dev ||
        after.st_ino != st.st_ino) {
        rc = cp_err_set(err, CP_EUNSAFE,
                        "refusing to remove %s: it changed while being removed; nothing more "
                        "was removed, look at %s",
                        where, moved);
        goto out;
    }
    struct walk w = {.remove = true, .dev = st.st_dev, .where = moved, .err = err};
    rc = walk_dir(&w, dfd, "", 0);
    *removed = w.removed;
    if (rc == CP_OK && unlinkat(certs, hidden, AT_REMOVEDIR) != 0)
        rc = cp_err_set(err, CP_EIO, "cannot remove %s: %s", moved, strerror(errno));
    if (rc == CP_OK)
        (*removed)++;
    else if (err != NULL) {
        /* Say where the rest is: the user finishes by hand. */
        size_t len = strlen(err->msg);
        snprintf(err->msg + len, sizeof err->msg - len,
                 "; the lineage is no longer used, and what is left of it is in %s", moved);
    }
    if (rc == CP_OK)
        (void)fsync(certs);
out:
    close(dfd);
    close(certs);
    return rc;
}
