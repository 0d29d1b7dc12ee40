/*
 * cli/state_versions.c - pruning the old versions of a lineage
 * (STATE/certs/NAME/versions/STAMP/) after a new one became current.
 *
 * The current version and the newest one older than it are always kept: the
 * first is what the stable paths point at, the second is what an operator
 * rolls back to when a new certificate misbehaves.  Version directories are
 * removed without following any symlink: their entries are unlinked with
 * unlinkat() (which removes a link, never its target) inside a directory
 * opened with O_NOFOLLOW, and a directory with anything unexpected in it is
 * left alone.
 */
#define _DEFAULT_SOURCE /* DT_DIR */
#include "cli/cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VERSIONS_MAX 10000

/* "20261206T223931.123456789Z": what cli_cert_store() names a version. */
static bool stamp_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 17 || n > 40 || s[8] != 'T' || s[n - 1] != 'Z')
        return false;
    for (size_t i = 0; i + 1 < n; i++)
        if (i != 8 && i != 15 && !(s[i] >= '0' && s[i] <= '9'))
            return false;
    return s[15] == '.';
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Remove the version directory `name` under `vfd`: its regular files and
 * links, then itself.  False (errno set) when it holds anything else. */
static bool remove_version(int vfd, const char *name)
{
    int dfd = openat(vfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (d == NULL) {
        if (dfd >= 0)
            close(dfd);
        return false;
    }
    struct dirent *e;
    bool ok = true;
    while (ok && (e = readdir(d)) != NULL) {
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            ok = false;
        else if (S_ISDIR(st.st_mode)) {
            errno = ENOTEMPTY; /* not something certpilot writes: left alone */
            ok = false;
        } else
            ok = unlinkat(dfd, e->d_name, 0) == 0;
    }
    closedir(d);
    return ok && unlinkat(vfd, name, AT_REMOVEDIR) == 0;
}

enum cp_code cli_cert_prune(const char *state, const char *cert_name, unsigned keep,
                            size_t *removed, struct cp_err *err)
{
    char path[4400], current[256] = "";
    char **names = NULL;
    size_t n = 0, cap = 0;
    enum cp_code rc = CP_OK;
    *removed = 0;
    if (keep == 0)
        return CP_OK; /* keep them all */
    if (snprintf(path, sizeof path, "%s/certs/%s/current", state, cert_name) >= (int)sizeof path)
        return cp_err_set(err, CP_EINVAL, "state directory path too long");
    ssize_t len = readlink(path, current, sizeof current - 1);
    if (len <= 0 || strncmp(current, "versions/", 9) != 0)
        return CP_OK; /* no current version: nothing is known to be safe to remove */
    current[len] = '\0';
    const char *cur = current + 9;

    snprintf(path, sizeof path, "%s/certs/%s/versions", state, cert_name);
    int vfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int copy = vfd >= 0 ? dup(vfd) : -1;
    DIR *d = copy >= 0 ? fdopendir(copy) : NULL;
    if (d == NULL) {
        rc = cp_err_set(err, CP_EIO, "cannot read %s: %s", path, strerror(errno));
        if (copy >= 0)
            close(copy);
        goto cleanup;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < VERSIONS_MAX) {
        if (!stamp_name(e->d_name))
            continue;
        if (n == cap) {
            size_t c = cap ? cap * 2 : 16;
            char **v = realloc(names, c * sizeof *v);
            if (v == NULL)
                break;
            names = v;
            cap = c;
        }
        if ((names[n] = strdup(e->d_name)) != NULL)
            n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name); /* the stamps sort by time */

    /* Keep: the `keep` newest, the current one, and the newest before it. */
    size_t icur = n;
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], cur) == 0)
            icur = i;
    if (icur == n)
        goto cleanup; /* current points elsewhere: touch nothing */
    for (size_t i = 0; i < n; i++) {
        bool kept = i + keep >= n || i == icur || i + 1 == icur;
        if (kept)
            continue;
        if (!remove_version(vfd, names[i])) {
            rc = cp_err_set(err, CP_EIO, "cannot remove the old version %s/%s: %s", path, names[i],
                            strerror(errno));
            break;
        }
        (*removed)++;
    }
cleanup:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (vfd >= 0)
        close(vfd);
    return rc;
}
