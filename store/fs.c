/*
 * store/fs.c - the store on the filesystem: the state directory.
 *
 *   STATE/                              0700
 *     renew.lock                        flock()ed by the run that holds the store
 *     accounts/<ca-id>/account.key      0600, the account's private key
 *     accounts/<ca-id>/account.json     {"directory", "url", "contact", "key_type"}
 *     certs/<name>/renewal.conf         its settings ("key = value", cli/config.c)
 *     certs/<name>/status.json          results of the last runs, the cached ARI answer
 *     certs/<name>/versions/<stamp>/    privkey.pem (0600), cert.pem, chain.pem, fullchain.pem
 *     certs/<name>/current              symlink -> versions/<stamp>
 *     certs/<name>/{privkey,cert,chain,fullchain}.pem  symlinks -> current/...
 *
 * A new certificate is written into a fresh version directory (each file
 * fsync'd, then the directory), and only then does `current` change, by one
 * rename() of a new symlink over it (see fs_version_add()).  The stable paths therefore switch from
 * the old key/certificate pair to the new pair at once, and an interruption at
 * any point leaves the old pair in place.
 *
 * Nothing is read from, or written into, a directory another user owns or
 * others may write, and the files certpilot keeps are opened without
 * following symlinks.
 */
#define _GNU_SOURCE /* flock(), DT_DIR, getdents64() */
#include "store/fs_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/file.h"

#define KEY_FILE_MAX   (64 * 1024)
#define CERT_FILE_MAX  (256 * 1024)
#define SMALL_FILE_MAX (256 * 1024) /* renewal.conf, status.json, account.json */

static const char *const stable_files[] = {"privkey.pem", "cert.pem", "chain.pem", "fullchain.pem"};

const char *store_default_dir(char *buf, size_t size)
{
    if (geteuid() == 0)
        return "/var/lib/certpilot";
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    int n;
    if (xdg != NULL && *xdg == '/')
        n = snprintf(buf, size, "%s/certpilot", xdg);
    else if (home != NULL && *home == '/')
        n = snprintf(buf, size, "%s/.local/state/certpilot", home);
    else
        return NULL;
    return n > 0 && (size_t)n < size ? buf : NULL;
}

/* A directory name for a CA: its directory URL without scheme, every byte
 * outside [A-Za-z0-9.-] turned into '_'.  "https://acme-v02.api.letsencrypt.org/directory"
 * -> "acme-v02.api.letsencrypt.org_directory". */
static void ca_id(const char *url, char *out, size_t size)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = 0;
    for (; *p && n + 1 < size; p++) {
        char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '-';
        out[n++] = ok ? ch : '_';
    }
    while (n > 0 && out[n - 1] == '_')
        n--;
    out[n] = '\0';
}

enum cp_code fs_join(char *out, size_t size, struct cp_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size)
        return cp_err_set(err, CP_EINVAL, "path too long under the state directory");
    return CP_OK;
}

/* A small JSON file certpilot keeps (no symlink followed), `rel` under the
 * directory `at` (AT_FDCWD: `path` itself); NULL when it is missing or
 * unreadable. */
static json_t *json_file_load(int at, const char *rel, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    json_error_t jerr;
    if (cp_file_read_nofollow_at(at, rel, path, SMALL_FILE_MAX, &text, &len, NULL) != CP_OK)
        return NULL;
    json_t *j = json_loadb(text, len, 0, &jerr);
    free(text);
    return j;
}

/* ------------------------------------------------------- who may write here */

/* "root (uid 0)" or "uid 1234" for messages. */
static void owner_words(uid_t uid, char *out, size_t size)
{
    struct passwd pw, *found = NULL;
    char buf[1024];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != NULL)
        snprintf(out, size, "%s (uid %u)", found->pw_name, (unsigned)uid);
    else
        snprintf(out, size, "uid %u", (unsigned)uid);
}

/* dir_safe() below on what stat() or lstat() said of `path`. */
static enum cp_code stat_safe(const char *path, const struct stat *sb, struct cp_err *err)
{
    const uid_t me = cp_euid();
    if (S_ISLNK(sb->st_mode))
        return cp_err_set(err, CP_EUNSAFE,
                          "refusing %s: it is a symbolic link where certpilot keeps a directory "
                          "of its own; remove the link (certpilot recreates the directory)",
                          path);
    if (!S_ISDIR(sb->st_mode))
        return cp_err_set(err, CP_EUNSAFE, "refusing %s: it is not a directory; move it away",
                          path);
    if (sb->st_uid == me && (sb->st_mode & 022) == 0)
        return CP_OK;
    char owner[300];
    owner_words(sb->st_uid, owner, sizeof owner);
    return cp_err_set(err, CP_EUNSAFE,
                      "refusing %s: it is owned by %s with mode %04o, so %s could replace the "
                      "keys and certificates certpilot keeps there; if it is yours, run: "
                      "chown %u %s && chmod 0700 %s",
                      path, owner, (unsigned)(sb->st_mode & 07777),
                      sb->st_uid != me ? "that user" : "other users", (unsigned)me, path, path);
}

/*
 * `path` must be, if it exists, a directory owned by this user that group and
 * others cannot write: anyone who can write a directory can replace what
 * certpilot reads from it (a key, a symlink where a file was).  `follow`:
 * stat() rather than lstat(), for the state directory itself, which may be a
 * symlink an administrator made on purpose.
 */
static enum cp_code dir_safe(const char *path, bool follow, struct cp_err *err)
{
    struct stat st;
    if ((follow ? stat(path, &st) : lstat(path, &st)) != 0) {
        if (errno == ENOENT)
            return CP_OK;
        return cp_err_set(err, CP_EIO, "cannot examine %s: %s", path, strerror(errno));
    }
    return stat_safe(path, &st, err);
}

/* dir_safe(path, false), `path` looked up as `rel` under the directory `at`. */
static enum cp_code dir_safe_at(int at, const char *rel, const char *path, struct cp_err *err)
{
    struct stat st;
    if (fstatat(at, rel, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT)
            return CP_OK;
        return cp_err_set(err, CP_EIO, "cannot examine %s: %s", path, strerror(errno));
    }
    return stat_safe(path, &st, err);
}

/*
 * Lookups under STATE/certs/ start from that directory, opened once per
 * handle (and checked as store_fs_open() checked it) rather than from the
 * start of the path: renew looks up about ten names in every lineage, and
 * the kernel then walks two or three components of each, not the whole
 * state directory path.  certs/ itself is never removed or replaced by
 * certpilot.  `path` is a whole STATE/certs/... name built from fs->dir;
 * the directory to start from is returned and *rel set to the part of
 * `path` under it.  While certs/ cannot be opened (e.g. before it exists):
 * AT_FDCWD, and *rel is `path`.  Messages keep naming `path`.
 */
static int certs_at(struct fs_store *fs, const char *path, const char **rel)
{
    size_t n = strlen(fs->dir);
    *rel = path;
    if (strncmp(path, fs->dir, n) != 0 || strncmp(path + n, "/certs/", 7) != 0 ||
        path[n + 7] == '\0')
        return AT_FDCWD;
    if (fs->certs_fd < 0) {
        char certs[4200];
        struct stat sb;
        if (fs_join(certs, sizeof certs, NULL, "%s/certs", fs->dir) != CP_OK)
            return AT_FDCWD;
        int fd = open(certs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return AT_FDCWD;
        if (fstat(fd, &sb) != 0 || stat_safe(certs, &sb, NULL) != CP_OK) {
            close(fd); /* the whole path: its lookups say what is wrong */
            return AT_FDCWD;
        }
        fs->certs_fd = fd;
    }
    *rel = path + n + 7;
    return fs->certs_fd;
}

static enum cp_code state_check(const char *state, struct cp_err *err)
{
    static const char *const subdirs[] = {"accounts", "certs"};
    char path[4200];
    enum cp_code rc = dir_safe(state, true, err);
    for (size_t i = 0; rc == CP_OK && i < sizeof subdirs / sizeof subdirs[0]; i++) {
        rc = fs_join(path, sizeof path, err, "%s/%s", state, subdirs[i]);
        if (rc == CP_OK)
            rc = dir_safe(path, false, err);
    }
    return rc;
}

static enum cp_code check_lineage(struct fs_store *fs, const char *state, const char *cert_name,
                                  char *target, struct cp_err *err);

enum cp_code fs_lineage_check_dir(const char *state, const char *cert_name, struct cp_err *err)
{
    char target[256];
    return check_lineage(NULL, state, cert_name, target, err);
}

/* fs_lineage_check_dir(), and what `current` points to into `target` (256
 * bytes; "" when there is none).  With `fs` (whose directory `state` is),
 * the names are looked up under its open certs/ (certs_at()). */
static enum cp_code check_lineage(struct fs_store *fs, const char *state, const char *cert_name,
                                  char *target, struct cp_err *err)
{
    char base[4200], path[4400];
    const char *rel;
    int at;
    target[0] = '\0';
    enum cp_code rc = fs_join(base, sizeof base, err, "%s/certs/%s", state, cert_name);
    if (rc == CP_OK) {
        at = fs != NULL ? certs_at(fs, base, &rel) : AT_FDCWD;
        rc = dir_safe_at(at, fs != NULL ? rel : base, base, err);
    }
    if (rc == CP_OK)
        rc = fs_join(path, sizeof path, err, "%s/versions", base);
    if (rc == CP_OK) {
        at = fs != NULL ? certs_at(fs, path, &rel) : AT_FDCWD;
        rc = dir_safe_at(at, fs != NULL ? rel : path, path, err);
    }
    if (rc == CP_OK)
        rc = fs_join(path, sizeof path, err, "%s/current", base);
    if (rc != CP_OK)
        return rc;
    at = fs != NULL ? certs_at(fs, path, &rel) : AT_FDCWD;
    ssize_t n = readlinkat(at, fs != NULL ? rel : path, target, 255);
    if (n < 0) {
        target[0] = '\0';
        if (errno == ENOENT)
            return CP_OK; /* no certificate stored yet */
        return cp_err_set(err, CP_EUNSAFE,
                          "refusing %s: it should be a symbolic link to versions/<stamp> (%s); "
                          "move it away",
                          path, strerror(errno));
    }
    target[n] = '\0';
    /* Only what version_add() writes: "versions/" and one plain name. */
    const char *stamp = target + strlen("versions/");
    if (strncmp(target, "versions/", strlen("versions/")) != 0 || *stamp == '\0' ||
        strchr(stamp, '/') != NULL || strcmp(stamp, ".") == 0 || strcmp(stamp, "..") == 0)
        return cp_err_set(err, CP_EUNSAFE,
                          "refusing %s: it points to \"%s\", outside the lineage's versions/ "
                          "directory; point it back to one of %s/versions/ (ln -sfn "
                          "versions/<stamp> %s)",
                          path, target, base, path);
    rc = fs_join(path, sizeof path, err, "%s/%s", base, target);
    struct stat st;
    if (rc != CP_OK)
        return rc;
    at = fs != NULL ? certs_at(fs, path, &rel) : AT_FDCWD;
    if (fstatat(at, fs != NULL ? rel : path, &st, AT_SYMLINK_NOFOLLOW) != 0) /* dangling */
        return errno == ENOENT
                   ? CP_OK
                   : cp_err_set(err, CP_EIO, "cannot examine %s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return cp_err_set(err, CP_EUNSAFE,
                          "refusing %s: a version must be a directory of the lineage, not %s; "
                          "remove it and point %s/current to a real version",
                          path, S_ISLNK(st.st_mode) ? "a symbolic link" : "a file", base);
    return stat_safe(path, &st, err); /* one lstat() for both questions */
}

enum cp_code fs_account_dir(const char *state, const char *directory_url, char *out, size_t size,
                            bool create, struct cp_err *err)
{
    char id[200];
    ca_id(directory_url, id, sizeof id);
    enum cp_code rc = create ? cp_dir_ensure(state, 0700, err) : CP_OK;
    if (rc == CP_OK)
        rc = fs_join(out, size, err, "%s/accounts/%s", state, id);
    if (rc == CP_OK)
        rc = dir_safe(out, false, err);
    if (rc == CP_OK && create)
        rc = cp_dir_ensure(out, 0700, err);
    return rc;
}

/* ------------------------------------------------------------- lineages */

static enum cp_code fs_lineage_names(struct cp_store *st, char ***out, size_t *n,
                                     struct cp_err *err)
{
    char path[4200];
    struct dirent **list = NULL;
    *out = NULL;
    *n = 0;
    enum cp_code rc = fs_join(path, sizeof path, err, "%s/certs", FS(st)->dir);
    if (rc != CP_OK)
        return rc;
    int k = scandir(path, &list, NULL, alphasort);
    if (k < 0)
        return errno == ENOENT
                   ? CP_OK
                   : cp_err_set(err, CP_EIO, "cannot read %s: %s", path, strerror(errno));
    *out = calloc((size_t)k + 1, sizeof **out);
    for (int i = 0; i < k; i++) {
        if (*out != NULL && store_name_valid(list[i]->d_name) &&
            ((*out)[*n] = strdup(list[i]->d_name)) != NULL)
            (*n)++;
        free(list[i]);
    }
    free(list);
    return *out == NULL ? cp_err_set(err, CP_ENOMEM, "out of memory") : CP_OK;
}

static enum cp_code fs_lineage_check(struct cp_store *st, const char *name, struct cp_err *err)
{
    enum cp_code rc = check_lineage(FS(st), FS(st)->dir, name, FS(st)->checked_current, err);
    int n = snprintf(FS(st)->checked, sizeof FS(st)->checked, "%s", rc == CP_OK ? name : "");
    if (n < 0 || (size_t)n >= sizeof FS(st)->checked)
        FS(st)->checked[0] = '\0';
    return rc;
}

/* Before reading from lineage `name`: checked, unless the caller's
 * store_lineage_check() just did (renew checks each lineage first, then
 * reads its status, settings and certificate: one check, not three). */
static enum cp_code read_check(struct cp_store *st, const char *name, struct cp_err *err)
{
    if (FS(st)->checked[0] != '\0' && strcmp(FS(st)->checked, name) == 0)
        return CP_OK;
    return fs_lineage_check_dir(FS(st)->dir, name, err);
}

/* Any write: the next read checks again. */
static void forget_checked(struct cp_store *st)
{
    FS(st)->checked[0] = '\0';
}

static bool fs_lineage_exists(struct cp_store *st, const char *name)
{
    char path[4400];
    struct stat sb;
    return fs_join(path, sizeof path, NULL, "%s/certs/%s", FS(st)->dir, name) == CP_OK &&
           lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static enum cp_code fs_lineage_dir(struct cp_store *st, const char *name, char *out, size_t size,
                                   struct cp_err *err)
{
    return fs_join(out, size, err, "%s/certs/%s", FS(st)->dir, name);
}

/* STATE/certs/NAME/FILE into `out`. */
static enum cp_code lineage_file(struct cp_store *st, const char *name, const char *file, char *out,
                                 size_t size, struct cp_err *err)
{
    return fs_join(out, size, err, "%s/certs/%s/%s", FS(st)->dir, name, file);
}

static enum cp_code fs_settings_load(struct cp_store *st, const char *name, char **text,
                                     size_t *len, char *label, size_t label_size,
                                     struct cp_err *err)
{
    char path[4400];
    enum cp_code rc = lineage_file(st, name, "renewal.conf", path, sizeof path, err);
    if (rc == CP_OK && label != NULL)
        snprintf(label, label_size, "%s", path);
    if (rc != CP_OK)
        return rc;
    /* Read first; only a failure asks whether the file is there at all (one
     * access() a lineage fewer for renew). */
    struct cp_err rerr = {0};
    const char *rel;
    int at = certs_at(FS(st), path, &rel);
    rc = read_check(st, name, &rerr);
    if (rc == CP_OK)
        rc = cp_file_read_nofollow_at(at, rel, path, SMALL_FILE_MAX, text, len, &rerr);
    if (rc != CP_OK && access(path, F_OK) != 0 && errno == ENOENT)
        return CP_OK; /* none yet: *text stays NULL */
    if (rc != CP_OK && err != NULL)
        *err = rerr;
    return rc;
}

static enum cp_code fs_settings_save(struct cp_store *st, const char *name, const char *text,
                                     size_t len, struct cp_err *err)
{
    char path[4400];
    forget_checked(st);
    enum cp_code rc = fs_lineage_check_dir(FS(st)->dir, name, err);
    if (rc == CP_OK)
        rc = lineage_file(st, name, "renewal.conf", path, sizeof path, err);
    if (rc == CP_OK)
        rc = cp_file_write_atomic(path, text, len, 0600, err);
    return rc;
}

static enum cp_code fs_current_cert(struct cp_store *st, const char *name, char **pem, size_t *len,
                                    struct cp_err *err)
{
    char path[4400];
    enum cp_code rc = read_check(st, name, err);
    if (rc == CP_OK)
        rc = lineage_file(st, name, "cert.pem", path, sizeof path, err);
    if (rc != CP_OK || access(path, F_OK) != 0)
        return rc; /* none yet */
    /* cert.pem is a symlink through current/ by design (checked above). */
    return cp_file_read(path, CERT_FILE_MAX, pem, len, err);
}

/* The stamp of versions/<stamp> that `current` names and the identity of
 * its cert.pem (inode, size, change time): a version's files are written
 * once, so a stamp names one certificate, and the file's identity catches a
 * certificate replaced by hand.  "" when any of it cannot be read: nothing
 * is cached then, and the caller reads the certificate. */
static enum cp_code fs_current_version(struct cp_store *st, const char *name,
                                       char out[STORE_VERSION_ID_MAX], struct cp_err *err)
{
    char path[4400], target[256];
    struct stat sb;
    enum cp_code rc = lineage_file(st, name, "current", path, sizeof path, err);
    bool checked = FS(st)->checked[0] != '\0' && strcmp(FS(st)->checked, name) == 0;
    const char *rel;
    int at = certs_at(FS(st), path, &rel);
    ssize_t n = rc != CP_OK ? -1
                : checked   ? (ssize_t)strlen(FS(st)->checked_current) /* read by the check */
                            : readlinkat(at, rel, target, sizeof target - 1);
    if (n <= 0)
        return rc;
    if (checked)
        memcpy(target, FS(st)->checked_current, (size_t)n);
    target[n] = '\0';
    const char *stamp = target + strlen("versions/");
    if (strncmp(target, "versions/", strlen("versions/")) != 0 || *stamp == '\0' ||
        strchr(stamp, '/') != NULL || strcmp(stamp, ".") == 0 || strcmp(stamp, "..") == 0 ||
        fs_join(path, sizeof path, NULL, "%s/certs/%s/%s/cert.pem", FS(st)->dir, name, target) !=
            CP_OK ||
        (at = certs_at(FS(st), path, &rel), fstatat(at, rel, &sb, AT_SYMLINK_NOFOLLOW) != 0) ||
        !S_ISREG(sb.st_mode))
        return CP_OK;
    int len = snprintf(out, STORE_VERSION_ID_MAX, "%s %llu %lld %lld.%09ld", stamp,
                       (unsigned long long)sb.st_ino, (long long)sb.st_size,
                       (long long)sb.st_ctim.tv_sec, (long)sb.st_ctim.tv_nsec);
    if (len < 0 || len >= STORE_VERSION_ID_MAX)
        out[0] = '\0';
    return CP_OK;
}

static json_t *fs_status_load(struct cp_store *st, const char *name)
{
    char path[4400];
    const char *rel = NULL;
    json_t *j = NULL;
    if (lineage_file(st, name, "status.json", path, sizeof path, NULL) == CP_OK) {
        int at = certs_at(FS(st), path, &rel);
        j = json_file_load(at, rel, path);
    }
    if (!json_is_object(j)) {
        json_decref(j);
        return json_object();
    }
    return j;
}

static enum cp_code fs_status_save(struct cp_store *st, const char *name, const json_t *status,
                                   struct cp_err *err)
{
    forget_checked(st);
    char path[4400];
    enum cp_code rc = lineage_file(st, name, "status.json", path, sizeof path, err);
    if (rc != CP_OK)
        return rc;
    char *text = json_dumps(status, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    rc = cp_file_write_atomic(path, text, strlen(text), 0600, err);
    free(text);
    return rc;
}

/* Replace `link` by a symlink to `target`, atomically (new link, rename). */
static enum cp_code swap_symlink(const char *target, const char *link, struct cp_err *err)
{
    char tmp[4200];
    enum cp_code rc = fs_join(tmp, sizeof tmp, err, "%s.tmp-%ld", link, (long)getpid());
    if (rc != CP_OK)
        return rc;
    (void)unlink(tmp);
    if (symlink(target, tmp) != 0)
        return cp_err_set(err, CP_EIO, "cannot create symlink %s: %s", tmp, strerror(errno));
    if (rename(tmp, link) != 0) {
        int e = errno;
        (void)unlink(tmp);
        return cp_err_set(err, CP_EIO, "cannot replace %s: %s", link, strerror(e));
    }
    return CP_OK;
}

/* fsync() a directory, so that the entries made in it so far survive a
 * crash.  Some file systems cannot fsync a directory (EINVAL): nothing more
 * can be done on those. */
static enum cp_code sync_dir(const char *dir, struct cp_err *err)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (dfd < 0)
        return cp_err_set(err, CP_EIO, "cannot open directory %s: %s", dir, strerror(errno));
    int r = fsync(dfd);
    int e = errno;
    (void)close(dfd);
    if (r != 0 && e != EINVAL)
        return cp_err_set(err, CP_EIO, "cannot sync directory %s: %s", dir, strerror(e));
    return CP_OK;
}

/* `dir` (0700) exists afterwards; when this call made it, its entry in
 * `parent` is made durable too (a crash must not lose a directory that a
 * later durable step points into). */
static enum cp_code dir_ensure_synced(const char *parent, const char *dir, struct cp_err *err)
{
    struct stat sb;
    bool existed = lstat(dir, &sb) == 0 && S_ISDIR(sb.st_mode);
    enum cp_code rc = cp_dir_ensure(dir, 0700, err);
    if (rc == CP_OK && !existed)
        rc = sync_dir(parent, err);
    return rc;
}

/* Write a new file `path` (which must not exist) with `mode`, and fsync it.
 * No temp name and no rename: it goes into a version directory nothing
 * points at yet, so no reader can see it half written. */
static enum cp_code write_new_file(const char *path, const char *data, size_t len, mode_t mode,
                                   struct cp_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return cp_err_set(err, CP_EIO, "cannot create %s: %s", path, strerror(errno));
    const char *what = "chmod";
    bool ok = fchmod(fd, mode) == 0; /* exactly `mode`, whatever the umask */
    while (ok && len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            what = "write";
            ok = false;
            break;
        }
        data += w;
        len -= (size_t)w;
    }
    if (ok && fsync(fd) != 0) {
        what = "fsync";
        ok = false;
    }
    int e = errno;
    if (close(fd) != 0 && ok) {
        e = errno;
        what = "close";
        ok = false;
    }
    if (ok)
        return CP_OK;
    (void)unlink(path);
    return cp_err_set(err, CP_EIO, "cannot write %s: %s: %s", path, what, strerror(e));
}

/*
 * Storing a new version, and what must be durable before what.
 *
 * Readers only ever reach a version through `current` (and the stable links
 * through current/), so the one step that matters is the rename() of the new
 * `current` symlink.  After a crash, a durable `current` must point at a
 * whole, durable version.  Before that rename, therefore:
 *   1. each file's data is on disk: one fsync per file (4);
 *   2. the files' names in versions/<stamp>/ are on disk: one fsync of that
 *      directory (1);
 *   3. versions/<stamp> itself is named in versions/: one fsync of versions/
 *      (1), and, on a first version only, the chain above it (certs/<name>
 *      in certs/, versions/ in certs/<name>) likewise.
 * No temp names are needed for the files: the version directory is new and
 * nothing points at it, so a crash before the rename leaves at most an
 * unreferenced, partly written version (pruned later) and the old pair in
 * place.  After the rename, one fsync of certs/<name> makes the switch (and a
 * first run's stable links, made in that same directory) durable before the
 * caller goes on, e.g. to prune the old version (1).
 *
 * A renewal thus costs 7 fsyncs and 1 rename (it was 8 fsyncs, 5 renames,
 * and the switch itself was never synced).
 */
static enum cp_code fs_version_add(struct cp_store *st, const char *cert_name,
                                   const char *privkey_pem, size_t privkey_len,
                                   const char *cert_pem, const char *chain_pem,
                                   const char *fullchain_pem, struct cp_err *err)
{
    forget_checked(st);
    const char *state = FS(st)->dir;
    char certs[4096], base[4096], versions[4200], version[4200], path[4400], stamp[64];
    struct timespec ts;
    struct tm tm;
    enum cp_code rc;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(stamp, sizeof stamp, "%04d%02d%02dT%02d%02d%02d.%09ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);

    rc = fs_lineage_check_dir(state, cert_name, err); /* the state dir: store_fs_open() */
    if (rc == CP_OK)
        rc = cp_dir_ensure(state, 0700, err);
    if (rc == CP_OK)
        rc = fs_join(certs, sizeof certs, err, "%s/certs", state);
    if (rc == CP_OK)
        rc = dir_ensure_synced(state, certs, err);
    if (rc == CP_OK)
        rc = fs_join(base, sizeof base, err, "%s/%s", certs, cert_name);
    if (rc == CP_OK)
        rc = dir_ensure_synced(certs, base, err);
    if (rc == CP_OK)
        rc = fs_join(versions, sizeof versions, err, "%s/versions", base);
    if (rc == CP_OK)
        rc = dir_ensure_synced(base, versions, err);
    if (rc == CP_OK)
        rc = fs_join(version, sizeof version, err, "%s/%s", versions, stamp);
    if (rc == CP_OK && mkdir(version, 0700) != 0)
        rc = cp_err_set(err, CP_EIO, "cannot create directory %s: %s", version, strerror(errno));
    if (rc != CP_OK)
        return rc;

    const struct {
        const char *file, *data;
        size_t len;
        mode_t mode;
    } files[] = {
        {"privkey.pem", privkey_pem, privkey_len, 0600},
        {"cert.pem", cert_pem, strlen(cert_pem), 0644},
        {"chain.pem", chain_pem, strlen(chain_pem), 0644},
        {"fullchain.pem", fullchain_pem, strlen(fullchain_pem), 0644},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        rc = fs_join(path, sizeof path, err, "%s/%s", version, files[i].file);
        if (rc == CP_OK)
            rc = write_new_file(path, files[i].data, files[i].len, files[i].mode, err);
        if (rc != CP_OK)
            return rc;
    }
    rc = sync_dir(version, err);
    if (rc == CP_OK)
        rc = sync_dir(versions, err);
    if (rc != CP_OK)
        return rc;

    /* The switch: one rename makes the new pair current. */
    char target[128], link[4200];
    snprintf(target, sizeof target, "versions/%s", stamp);
    rc = fs_join(link, sizeof link, err, "%s/current", base);
    if (rc == CP_OK)
        rc = swap_symlink(target, link, err);
    /* The stable links point through current/ and so never change once made;
     * a first run makes them with symlink() alone (no temp name, no rename). */
    for (size_t i = 0; rc == CP_OK && i < sizeof stable_files / sizeof stable_files[0]; i++) {
        rc = fs_join(link, sizeof link, err, "%s/%s", base, stable_files[i]);
        snprintf(target, sizeof target, "current/%s", stable_files[i]);
        char existing[128];
        ssize_t n = rc == CP_OK ? readlink(link, existing, sizeof existing - 1) : -1;
        if (n >= 0) {
            existing[n] = '\0';
            if (strcmp(existing, target) == 0)
                continue; /* already points through current */
        }
        if (rc == CP_OK && n < 0 && errno == ENOENT && symlink(target, link) == 0)
            continue;
        if (rc == CP_OK)
            rc = swap_symlink(target, link, err);
    }
    if (rc == CP_OK)
        rc = sync_dir(base, err);
    return rc;
}

static enum cp_code fs_current_key(struct cp_store *st, const char *cert_name,
                                   struct acme_key **key, struct cp_err *err)
{
    const char *state = FS(st)->dir;
    char path[4096], *pem = NULL;
    size_t len = 0;
    *key = NULL;
    enum cp_code rc = fs_lineage_check_dir(state, cert_name, err);
    if (rc != CP_OK)
        return rc;
    rc = fs_join(path, sizeof path, err, "%s/certs/%s/privkey.pem", state, cert_name);
    if (rc != CP_OK || access(path, F_OK) != 0)
        return rc; /* no previous certificate: nothing to reuse */
    rc = cp_file_read(path, KEY_FILE_MAX, &pem, &len, err);
    if (rc == CP_OK)
        rc = acme_key_from_pem(pem, len, path, key, err);
    if (pem != NULL) {
        OPENSSL_cleanse(pem, len);
        free(pem);
    }
    return rc;
}

/* ------------------------------------------------------------- versions */

#define VERSIONS_MAX 10000

/* "20261206T223931.123456789Z": what fs_version_add() names a version. */
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

static enum cp_code fs_versions_prune(struct cp_store *st, const char *cert_name, unsigned keep,
                                      size_t *removed, struct cp_err *err)
{
    forget_checked(st);
    const char *state = FS(st)->dir;
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

/* ------------------------------------------------- leftovers of killed runs */

#define LEFTOVER_AGE_S 60 /* younger temp files may belong to a run still going */

/* "NAME.tmp-" and 1 to 16 hex digits: what cp_file_write_atomic() (random
 * hex) and swap_symlink() (a pid) name their temp files. */
static bool leftover_name(const char *name)
{
    const char *t = strstr(name, ".tmp-");
    if (t == NULL || t == name)
        return false;
    t += 5;
    size_t n = strspn(t, "0123456789abcdef");
    return n >= 1 && n <= 16 && t[n] == '\0';
}

/* One sweep: when it started, what it removed, and whether it left a temp
 * file of this user only because it was young (a later run must look again). */
struct sweep {
    time_t now;
    size_t removed;
    bool young;
};

/* Remove this user's old temp files in the directory `dfd`; its
 * subdirectories (not symlinks, this user's, closed to group/others) are
 * handed to `sub` when it is not NULL.
 * The entries are read with getdents64() on `dfd` itself (no DIR stream:
 * it would cost a dup(), an fstat() and two fcntl() per directory, and a
 * sweep of the lineages reads three directories of each). */
static void sweep_dir(struct sweep *sw, int dfd, void (*sub)(struct sweep *sw, int dfd))
{
    const uid_t me = cp_euid();
    char buf[8192] __attribute__((aligned(8)));
    ssize_t got;
    while ((got = getdents64(dfd, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; off < got;) {
            const struct dirent64 *e = (const struct dirent64 *)(buf + off);
            off += e->d_reclen;
            struct stat st;
            /* Only a subdirectory or a temp name can lead anywhere: the other
             * entries (the pem files and links, renewal.conf...) need no stat()
             * when the file system tells their type. */
            bool temp = leftover_name(e->d_name);
            if (e->d_name[0] == '.' ||
                (e->d_type != DT_UNKNOWN && (e->d_type != DT_DIR || sub == NULL) && !temp))
                continue;
            if (sub != NULL && !temp && (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN)) {
                /* O_NOFOLLOW: a symlink is not descended; the owner and mode
                 * are asked of the directory opened, not of its name. */
                int child = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (child < 0)
                    continue;
                if (fstat(child, &st) == 0 && st.st_uid == me && (st.st_mode & 022) == 0)
                    sub(sw, child);
                close(child);
                continue;
            }
            if (!temp || fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_uid != me)
                continue;
            if (S_ISDIR(st.st_mode) && sub != NULL && (st.st_mode & 022) == 0) {
                int child = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (child >= 0) {
                    sub(sw, child);
                    close(child);
                }
            } else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
                if (sw->now - st.st_mtime <= LEFTOVER_AGE_S)
                    sw->young = true;
                else if (unlinkat(dfd, e->d_name, 0) == 0)
                    sw->removed++;
            }
        }
    }
}

static void sweep_leaf(struct sweep *sw, int dfd)
{
    sweep_dir(sw, dfd, NULL);
}

/* certs/NAME/versions/: each version's files. */
static void sweep_versions(struct sweep *sw, int dfd)
{
    sweep_dir(sw, dfd, sweep_leaf);
}

/* certs/NAME/: its own files and links, and versions/. */
static void sweep_lineage(struct sweep *sw, int dfd)
{
    sweep_dir(sw, dfd, sweep_versions);
}

/* Under the lock: the temp files that a killed run left in the state
 * directory (STATE/, accounts/CA/, and, when `lineages`, certs/NAME/ and
 * certs/NAME/versions/STAMP/). */
static void sweep_leftovers(struct sweep *sw, const char *state, bool lineages)
{
    int root = open(state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return;
    sweep_leaf(sw, root);
    static const char *const tops[] = {"accounts", "certs"};
    for (size_t i = 0; i < (lineages ? 2 : 1); i++) {
        int top = openat(root, tops[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (top < 0)
            continue;
        sweep_dir(sw, top, i == 0 ? sweep_leaf : sweep_lineage);
        close(top);
    }
    close(root);
}

/* ------------------------------------------------------------- the lock */

/*
 * The lock file also tells whether the lineages need sweeping.  A run that
 * holds the lock writes its pid into the lock file, and empties it again
 * when it lets the lock go (fs_unlock()); a run killed while holding the
 * lock leaves its pid there.  Temp files can only be left in certs/ by such
 * a run, as every write into a lineage happens under the lock and a write
 * that fails removes its own temp file.  So the next run sweeps certs/ (three
 * directories a lineage) only when the lock file is not empty (a killed run,
 * or a certpilot from before this rule), when it had to create the lock file
 * (a state directory it knows nothing of), or when the last sweep left a
 * young temp file of this user in place (its pid is then left in the lock
 * file, so that the next run looks again).  The state directory itself and
 * accounts/ (a few directories) are swept by every run.
 */
static int lock_file_open(const char *path, bool *created)
{
    *created = false;
    for (int attempt = 0; attempt < 4; attempt++) {
        int f = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (f >= 0 || errno != ENOENT)
            return f;
        f = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (f >= 0 || errno != EEXIST) {
            *created = f >= 0;
            return f;
        }
    }
    return -1; /* EEXIST: it came and went four times */
}

static enum cp_code fs_lock(struct cp_store *st, unsigned timeout_s,
                            void (*waiting)(void *ctx, const char *holder), void *ctx,
                            size_t *swept, struct cp_err *err)
{
    forget_checked(st);
    struct fs_store *fs = FS(st);
    char path[4200], holder[32] = "";
    struct timespec t0, now;
    enum cp_code rc;

    *swept = 0;
    if (fs->lock_fd >= 0)
        return CP_OK; /* held already */
    if ((rc = cp_dir_ensure(fs->dir, 0700, err)) != CP_OK ||
        (rc = fs_join(path, sizeof path, err, "%s/renew.lock", fs->dir)) != CP_OK) {
        if (rc == CP_EIO)
            cp_err_readonly(err, fs->dir);
        return rc;
    }
    /* O_NOFOLLOW: a symlink planted under this name must not make certpilot
     * truncate and write whatever file it points to. */
    bool created;
    int f = lock_file_open(path, &created);
    struct stat sb;
    if (f < 0 && errno == ELOOP)
        return cp_err_set(err, CP_EUNSAFE,
                          "refusing the lock file %s: it is a symbolic link; remove it "
                          "(certpilot creates the lock file itself)",
                          path);
    if (f < 0) {
        rc = cp_err_set(err, CP_EIO, "cannot open the lock file %s: %s", path, strerror(errno));
        cp_err_readonly(err, fs->dir); /* every run that writes takes the lock first */
        return rc;
    }
    if (fstat(f, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_uid != cp_euid()) {
        close(f);
        return cp_err_set(err, CP_EUNSAFE,
                          "refusing the lock file %s: it is not a regular file of this user; "
                          "remove it",
                          path);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool said = false;
    while (flock(f, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            rc = cp_err_set(err, CP_EIO, "cannot lock %s: %s", path, strerror(errno));
            close(f);
            return rc;
        }
        ssize_t n = pread(f, holder, sizeof holder - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long waited_ms =
            (long long)(now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (waited_ms >= (long long)timeout_s * 1000) {
            close(f);
            return cp_err_set(err, CP_ETIMEOUT,
                              "another certpilot run (pid %s) holds %s; gave up after %u s: try "
                              "again when it has finished, or wait longer with --lock-timeout "
                              "SECONDS",
                              holder[0] ? holder : "unknown", path, timeout_s);
        }
        if (!said && waiting != NULL)
            waiting(ctx, holder[0] ? holder : "unknown");
        said = true;
        struct timespec pause = {0, 100 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    /* Asked once the lock is held: a run that held it meanwhile may have
     * been killed. */
    bool lineages = created || fstat(f, &sb) != 0 || sb.st_size != 0;
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    /* The pid is written before the rest is cut off: the file is never
     * empty while the lock is held (but when it could not be written at all,
     * e.g. a full file system, where this run's own writes fail too). */
    if (pwrite(f, pid, (size_t)len, 0) != len || ftruncate(f, len) != 0)
        (void)0;
    fs->lock_fd = f;
    struct sweep sw = {.now = time(NULL)};
    sweep_leftovers(&sw, fs->dir, lineages);
    fs->sweep_again = sw.young;
    *swept = sw.removed;
    return CP_OK;
}

static void fs_unlock(struct cp_store *st)
{
    forget_checked(st);
    struct fs_store *fs = FS(st);
    /* Let go in good order: the next run need not sweep the lineages. */
    if (fs->lock_fd >= 0 && !fs->sweep_again && ftruncate(fs->lock_fd, 0) != 0)
        (void)0; /* the next run sweeps them */
    if (fs->lock_fd >= 0)
        close(fs->lock_fd);
    fs->lock_fd = -1;
}

/* ------------------------------------------------------------- the handle */

static void fs_close(struct cp_store *st)
{
    fs_unlock(st);
    if (FS(st)->certs_fd >= 0)
        close(FS(st)->certs_fd);
    free(st);
}

static enum cp_code fs_remove(struct cp_store *st, const char *name, size_t *removed,
                              struct cp_err *err)
{
    forget_checked(st);
    return fs_lineage_remove(st, name, removed, err);
}

static const struct store_ops fs_ops = {
    .close = fs_close,
    .lock = fs_lock,
    .unlock = fs_unlock,
    .account_load = fs_account_load,
    .account_save_record = fs_account_save_record,
    .account_save_key = fs_account_save_key,
    .account_settle = fs_account_settle,
    .lineage_names = fs_lineage_names,
    .lineage_check = fs_lineage_check,
    .lineage_dir = fs_lineage_dir,
    .settings_load = fs_settings_load,
    .settings_save = fs_settings_save,
    .version_add = fs_version_add,
    .current_key = fs_current_key,
    .current_cert = fs_current_cert,
    .current_version = fs_current_version,
    .versions_prune = fs_versions_prune,
    .lineage_exists = fs_lineage_exists,
    .lineage_contents = fs_lineage_contents,
    .lineage_remove = fs_remove,
    .status_load = fs_status_load,
    .status_save = fs_status_save,
};

enum cp_code store_fs_open(const char *dir, struct cp_store **out, struct cp_err *err)
{
    *out = NULL;
    if (dir == NULL || dir[0] == '\0' || strlen(dir) >= sizeof((struct fs_store *)0)->dir)
        return cp_err_set(err, CP_EINVAL, "the state directory \"%.200s\" is empty or too long",
                          dir ? dir : "");
    enum cp_code rc = state_check(dir, err);
    if (rc != CP_OK)
        return rc;
    struct fs_store *fs = calloc(1, sizeof *fs);
    if (fs == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    fs->base.ops = &fs_ops;
    snprintf(fs->base.where, sizeof fs->base.where, "%s", dir);
    snprintf(fs->dir, sizeof fs->dir, "%s", dir);
    fs->lock_fd = -1;
    fs->certs_fd = -1;
    *out = &fs->base;
    return CP_OK;
}
