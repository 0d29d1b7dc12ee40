/*
 * common/file.c - directories with a mode, atomic file replacement, bounded
 * whole-file reads (see common/file.h).
 */
#include "common/file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

/* ------------------------------------------------------------ directories */

/* One component of cp_dir_ensure: `dir` exists as a directory afterwards.
 * `whole` is the caller's path, named in messages when it differs. */
static enum cp_code dir_one(const char *dir, const char *whole, mode_t mode, bool *created,
                            struct stat *st, struct cp_err *err)
{
    *created = false;
    if (mkdir(dir, mode) == 0) {
        *created = true;
        return CP_OK;
    }
    int saved = errno;
    /* EEXIST is the common case; EACCES or EROFS can also hide an existing
     * directory, so look before reporting the mkdir error. */
    if (stat(dir, st) == 0) {
        if (S_ISDIR(st->st_mode))
            return CP_OK;
        if (strcmp(dir, whole) == 0)
            return cp_err_set(err, CP_EIO, "%s exists and is not a directory", dir);
        return cp_err_set(err, CP_EIO,
                          "cannot create directory %s: %s exists and is not a directory", whole,
                          dir);
    }
    if (strcmp(dir, whole) == 0)
        return cp_err_set(err, CP_EIO, "cannot create directory %s: %s", dir, strerror(saved));
    return cp_err_set(err, CP_EIO, "cannot create directory %s (for %s): %s", dir, whole,
                      strerror(saved));
}

enum cp_code cp_dir_ensure(const char *path, mode_t mode, struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    char *buf = NULL;
    struct stat st;
    bool created = false;
    size_t n;

    if (path == NULL || path[0] == '\0')
        return cp_err_set(err, CP_EINVAL, "directory path is empty");
    mode &= 07777;
    buf = strdup(path);
    if (buf == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory creating directory %s", path);
    n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = '\0';

    /* Parents first: every prefix that ends just before a '/'. */
    for (size_t i = 1; i < n; i++) {
        if (buf[i] != '/' || buf[i - 1] == '/')
            continue;
        buf[i] = '\0';
        rc = dir_one(buf, path, mode, &created, &st, err);
        buf[i] = '/';
        if (rc != CP_OK)
            goto out;
    }
    rc = dir_one(buf, path, mode, &created, &st, err);
    if (rc != CP_OK || created)
        goto out;

    /* An existing directory: tighten it when it grants more than `mode`. */
    if ((st.st_mode & 07777 & ~mode) != 0) {
        if (chmod(buf, mode) != 0) {
            rc = cp_err_set(err, CP_EIO,
                            "directory %s has mode %04o, more open than %04o: chmod: %s", path,
                            (unsigned)(st.st_mode & 07777), (unsigned)mode, strerror(errno));
            goto out;
        }
    }

out:
    free(buf);
    return rc;
}

/* ---------------------------------------------------------- atomic write */

/* The directory part of `path` ("." when there is none). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        size_t chunk = len > (size_t)SSIZE_MAX ? (size_t)SSIZE_MAX : len;
        ssize_t w = write(fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            /* Not expected for a regular file; do not spin. */
            errno = EIO;
            return -1;
        }
        p += (size_t)w;
        len -= (size_t)w;
    }
    return 0;
}

enum cp_code cp_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                                  struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    char *dir = NULL;
    char *tmp = NULL;
    size_t tmpcap;
    int fd = -1;
    int dfd = -1;
    bool have_tmp = false;

    if (path == NULL || path[0] == '\0')
        return cp_err_set(err, CP_EINVAL, "file path is empty");
    if (path[strlen(path) - 1] == '/')
        return cp_err_set(err, CP_EINVAL, "cannot write %s: the path names a directory", path);
    if (data == NULL && len > 0)
        return cp_err_set(err, CP_EINTERNAL, "cp_file_write_atomic: no data for %s", path);
    mode &= 07777;

    dir = dir_of(path);
    tmpcap = strlen(path) + sizeof ".tmp-0123456789abcdef";
    tmp = malloc(tmpcap);
    if (dir == NULL || tmp == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory writing %s", path);
        goto out;
    }

    /* The temporary file lives next to the target so that rename() is atomic;
     * the random suffix keeps concurrent writers (and stale leftovers) apart. */
    for (int attempt = 0; fd < 0; attempt++) {
        unsigned char rnd[8];
        if (RAND_bytes(rnd, (int)sizeof rnd) != 1) {
            rc = cp_err_set(err, CP_EINTERNAL,
                            "cannot write %s: no random bytes for a temporary name", path);
            goto out;
        }
        int n = snprintf(tmp, tmpcap, "%s.tmp-%02x%02x%02x%02x%02x%02x%02x%02x", path, rnd[0],
                         rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
        if (n < 0 || (size_t)n >= tmpcap) {
            rc = cp_err_set(err, CP_EINTERNAL, "cannot write %s: temporary name too long", path);
            goto out;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0 && (errno != EEXIST || attempt >= 8)) {
            rc = cp_err_set(err, CP_EIO, "cannot write %s: creating %s: %s", path, tmp,
                            strerror(errno));
            goto out;
        }
    }
    have_tmp = true;

    /* open() applied the umask, which can only have removed bits; set exactly
     * what the caller asked for (the file was never more open than `mode`). */
    if (fchmod(fd, mode) != 0) {
        rc = cp_err_set(err, CP_EIO, "cannot write %s: chmod %s: %s", path, tmp, strerror(errno));
        goto out;
    }
    if (write_all(fd, data, len) != 0) {
        rc = cp_err_set(err, CP_EIO, "cannot write %s: writing %s: %s", path, tmp, strerror(errno));
        goto out;
    }
    if (fsync(fd) != 0) {
        rc = cp_err_set(err, CP_EIO, "cannot write %s: fsync %s: %s", path, tmp, strerror(errno));
        goto out;
    }
    int cfd = fd;
    fd = -1;
    if (close(cfd) != 0) {
        rc = cp_err_set(err, CP_EIO, "cannot write %s: closing %s: %s", path, tmp, strerror(errno));
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = cp_err_set(err, CP_EIO, "cannot replace %s: %s", path, strerror(errno));
        goto out;
    }
    have_tmp = false;

    /* Make the rename itself durable.  Some file systems cannot fsync a
     * directory (EINVAL); there is nothing more to do on those. */
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || (fsync(dfd) != 0 && errno != EINVAL)) {
        rc = cp_err_set(err, CP_EIO, "%s was written but its directory %s could not be synced: %s",
                        path, dir, strerror(errno));
        goto out;
    }

out:
    if (dfd >= 0)
        (void)close(dfd);
    if (fd >= 0)
        (void)close(fd);
    if (have_tmp)
        (void)unlink(tmp);
    free(tmp);
    free(dir);
    return rc;
}

/* ------------------------------------------------------------------ read */

/* Grow `*buf` (holding `used` bytes) to `cap` + 1 bytes without leaving a copy
 * of the contents in freed memory: the file may be a private key. */
static int grow_clean(char **buf, size_t used, size_t cap)
{
    char *n = malloc(cap + 1);
    if (n == NULL)
        return -1;
    if (*buf != NULL) {
        memcpy(n, *buf, used);
        OPENSSL_cleanse(*buf, used);
        free(*buf);
    }
    *buf = n;
    return 0;
}

uid_t cp_euid(void)
{
    static uid_t me;
    static bool known;
    if (!known) {
        me = geteuid();
        known = true;
    }
    return me;
}

/* `path` names the file in messages; it is opened as `rel` under the
 * directory `at` (AT_FDCWD: `rel` is `path`). */
static enum cp_code file_read(int at, const char *rel, const char *path, int flags, size_t max,
                              char **out, size_t *len, struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    char *buf = NULL;
    size_t used = 0;
    size_t cap;
    struct stat st;
    int fd = -1;

    if (out != NULL)
        *out = NULL;
    if (len != NULL)
        *len = 0;
    if (out == NULL || len == NULL)
        return cp_err_set(err, CP_EINTERNAL, "cp_file_read: no output for %s",
                          path != NULL ? path : "(null)");
    if (path == NULL || path[0] == '\0')
        return cp_err_set(err, CP_EINVAL, "file path is empty");
    /* Keep max + 1 and the doubling below far from overflow. */
    if (max > SIZE_MAX / 4)
        max = SIZE_MAX / 4;

    fd = openat(at, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY | flags);
    if (fd < 0 && errno == ELOOP && (flags & O_NOFOLLOW)) {
        rc = cp_err_set(err, CP_EUNSAFE,
                        "refusing %s: it is a symbolic link where certpilot keeps a file of its "
                        "own; remove the link",
                        path);
        goto out;
    }
    if (fd < 0) {
        rc = cp_err_set(err, CP_EIO, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        rc = cp_err_set(err, CP_EIO, "cannot stat %s: %s", path, strerror(errno));
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = cp_err_set(err, CP_EIO, "cannot read %s: %s", path, strerror(EISDIR));
        goto out;
    }
    if ((flags & O_NOFOLLOW) && (!S_ISREG(st.st_mode) || st.st_uid != cp_euid())) {
        rc = cp_err_set(err, CP_EUNSAFE,
                        "refusing %s: it is not a regular file of this user; move it away", path);
        goto out;
    }
    if (S_ISREG(st.st_mode) && st.st_size > 0 && (uintmax_t)st.st_size > (uintmax_t)max) {
        rc = cp_err_set(err, CP_EINVAL, "%s is %jd bytes, more than the limit of %zu bytes", path,
                        (intmax_t)st.st_size, max);
        goto out;
    }

    /* One byte more than the expected size, so that EOF is seen without a
     * reallocation; files that report no size (pipes, /proc) grow as read. */
    cap = (S_ISREG(st.st_mode) && st.st_size > 0) ? (size_t)st.st_size + 1 : 4096;
    if (cap > max + 1)
        cap = max + 1;
    if (grow_clean(&buf, 0, cap) != 0) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory reading %s", path);
        goto out;
    }
    for (;;) {
        if (used == cap) {
            if (used > max) {
                rc =
                    cp_err_set(err, CP_EINVAL, "%s is more than the limit of %zu bytes", path, max);
                goto out;
            }
            size_t ncap = cap > (max + 1) / 2 ? max + 1 : cap * 2;
            if (grow_clean(&buf, used, ncap) != 0) {
                rc = cp_err_set(err, CP_ENOMEM, "out of memory reading %s", path);
                goto out;
            }
            cap = ncap;
        }
        size_t want = cap - used;
        if (want > (size_t)SSIZE_MAX)
            want = (size_t)SSIZE_MAX;
        ssize_t r = read(fd, buf + used, want);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = cp_err_set(err, CP_EIO, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        used += (size_t)r;
        /* A regular file read short at the size fstat() gave is at its end:
         * no second read() to be told so (two syscalls a lineage for renew). */
        if (S_ISREG(st.st_mode) && st.st_size > 0 && (size_t)r < want && used == (size_t)st.st_size)
            break;
    }
    if (used > max) {
        rc = cp_err_set(err, CP_EINVAL, "%s is more than the limit of %zu bytes", path, max);
        goto out;
    }
    buf[used] = '\0';
    *out = buf;
    *len = used;
    buf = NULL;

out:
    if (buf != NULL) {
        OPENSSL_cleanse(buf, used);
        free(buf);
    }
    if (fd >= 0)
        (void)close(fd);
    return rc;
}

enum cp_code cp_file_read(const char *path, size_t max, char **out, size_t *len, struct cp_err *err)
{
    return file_read(AT_FDCWD, path, path, 0, max, out, len, err);
}

enum cp_code cp_file_read_nofollow(const char *path, size_t max, char **out, size_t *len,
                                   struct cp_err *err)
{
    return file_read(AT_FDCWD, path, path, O_NOFOLLOW, max, out, len, err);
}

enum cp_code cp_file_read_nofollow_at(int at, const char *rel, const char *path, size_t max,
                                      char **out, size_t *len, struct cp_err *err)
{
    return file_read(at, rel, path, O_NOFOLLOW, max, out, len, err);
}

/* -------------------------------------------------------- read-only mounts */

bool cp_path_readonly(const char *path)
{
    char buf[PATH_MAX];
    struct statvfs sv;
    if (path == NULL || path[0] == '\0')
        return false;
    int n = snprintf(buf, sizeof buf, "%s", path);
    if (n < 0 || (size_t)n >= sizeof buf)
        return false;
    /* A directory not made yet is on the mount of the parent it would be
     * made in. */
    for (;;) {
        if (statvfs(buf, &sv) == 0)
            return (sv.f_flag & ST_RDONLY) != 0;
        if (errno != ENOENT && errno != ENOTDIR)
            return false;
        char *slash = strrchr(buf, '/');
        if (slash == NULL)
            return statvfs(".", &sv) == 0 && (sv.f_flag & ST_RDONLY) != 0;
        if (slash == buf) {
            if (buf[1] == '\0')
                return false;
            buf[1] = '\0';
        } else {
            *slash = '\0';
        }
    }
}

void cp_readonly_hint(const char *dir, bool systemd, char *buf, size_t size)
{
    /* ReadWritePaths= needs the directory itself (or a parent), and a drop-in
     * survives package upgrades where an edited unit does not. */
    int n = systemd
                ? snprintf(buf, size,
                           "%s is read-only in this systemd service (ProtectSystem=strict): ", dir)
                : snprintf(buf, size,
                           "%s is on a read-only file system: mount it read-write; if "
                           "certpilot runs from a systemd unit with ProtectSystem=strict, ",
                           dir);
    if (n < 0 || (size_t)n >= size)
        return; /* truncated: what fits is there */
    if (snprintf(buf + n, size - (size_t)n,
                 "add ReadWritePaths=%s to a drop-in ('systemctl edit "
                 "certpilot-renew.service'), or run 'certpilot systemd install', which writes one "
                 "for every directory certpilot writes",
                 dir) < 0)
        buf[n] = '\0';
}

bool cp_err_readonly(struct cp_err *err, const char *dir)
{
    if (!cp_path_readonly(dir))
        return false;
    if (err == NULL)
        return true;
    char hint[CP_ERR_MSG_MAX];
    const char *inv = getenv("INVOCATION_ID");
    cp_readonly_hint(dir, inv != NULL && inv[0] != '\0', hint, sizeof hint);
    size_t used = strlen(err->msg);
    /* A hint cut short by a long message still names the directory first. */
    if (used + 3 < sizeof err->msg &&
        snprintf(err->msg + used, sizeof err->msg - used, "%s%s", used ? "; " : "", hint) < 0)
        err->msg[used] = '\0';
    return true;
}
