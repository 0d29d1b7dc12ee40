/*
 * cli/state.c - the state directory: accounts per CA, certificates per name.
 *
 *   STATE/                              0700
 *     accounts/<ca-id>/account.key      0600, the account's private key
 *     accounts/<ca-id>/account.json     {"directory", "url", "contact"}
 *     certs/<name>/versions/<stamp>/    privkey.pem (0600), cert.pem, chain.pem, fullchain.pem
 *     certs/<name>/current              symlink -> versions/<stamp>
 *     certs/<name>/{privkey,cert,chain,fullchain}.pem  symlinks -> current/...
 *
 * A new certificate is written into a fresh version directory (each file to a
 * temp name, fsync'd, renamed), and only then does `current` change, by one
 * rename() of a new symlink over it.  The stable paths therefore switch from
 * the old key/certificate pair to the new pair at once, and an interruption at
 * any point leaves the old pair in place.
 */
#define _DEFAULT_SOURCE /* flock() */
#include "cli/cli.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/file.h"

#define KEY_FILE_MAX (64 * 1024)

static const char *const stable_files[] = {"privkey.pem", "cert.pem", "chain.pem", "fullchain.pem"};

const char *cli_default_state_dir(char *buf, size_t size)
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

static enum cp_code join(char *out, size_t size, struct cp_err *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static enum cp_code join(char *out, size_t size, struct cp_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size)
        return cp_err_set(err, CP_EINVAL, "path too long under the state directory");
    return CP_OK;
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
    if (S_ISLNK(st.st_mode))
        return cp_err_set(err, CP_EUNSAFE,
                          "refusing %s: it is a symbolic link where certpilot keeps a directory "
                          "of its own; remove the link (certpilot recreates the directory)",
                          path);
    if (!S_ISDIR(st.st_mode))
        return cp_err_set(err, CP_EUNSAFE, "refusing %s: it is not a directory; move it away",
                          path);
    if (st.st_uid == geteuid() && (st.st_mode & 022) == 0)
        return CP_OK;
    char owner[300];
    owner_words(st.st_uid, owner, sizeof owner);
    return cp_err_set(err, CP_EUNSAFE,
                      "refusing %s: it is owned by %s with mode %04o, so %s could replace the "
                      "keys and certificates certpilot keeps there; if it is yours, run: "
                      "chown %u %s && chmod 0700 %s",
                      path, owner, (unsigned)(st.st_mode & 07777),
                      st.st_uid != geteuid() ? "that user" : "other users", (unsigned)geteuid(),
                      path, path);
}

enum cp_code cli_state_check(const char *state, struct cp_err *err)
{
    static const char *const subdirs[] = {"accounts", "certs"};
    char path[4200];
    enum cp_code rc = dir_safe(state, true, err);
    for (size_t i = 0; rc == CP_OK && i < sizeof subdirs / sizeof subdirs[0]; i++) {
        rc = join(path, sizeof path, err, "%s/%s", state, subdirs[i]);
        if (rc == CP_OK)
            rc = dir_safe(path, false, err);
    }
    return rc;
}

enum cp_code cli_lineage_check(const char *state, const char *cert_name, struct cp_err *err)
{
    char base[4200], path[4400], target[256];
    enum cp_code rc = join(base, sizeof base, err, "%s/certs/%s", state, cert_name);
    if (rc == CP_OK)
        rc = dir_safe(base, false, err);
    if (rc == CP_OK)
        rc = join(path, sizeof path, err, "%s/versions", base);
    if (rc == CP_OK)
        rc = dir_safe(path, false, err);
    if (rc == CP_OK)
        rc = join(path, sizeof path, err, "%s/current", base);
    if (rc != CP_OK)
        return rc;
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n < 0) {
        if (errno == ENOENT)
            return CP_OK; /* no certificate stored yet */
        return cp_err_set(err, CP_EUNSAFE,
                          "refusing %s: it should be a symbolic link to versions/<stamp> (%s); "
                          "move it away",
                          path, strerror(errno));
    }
    target[n] = '\0';
    /* Only what cli_cert_store() writes: "versions/" and one plain name. */
    const char *stamp = target + strlen("versions/");
    if (strncmp(target, "versions/", strlen("versions/")) != 0 || *stamp == '\0' ||
        strchr(stamp, '/') != NULL || strcmp(stamp, ".") == 0 || strcmp(stamp, "..") == 0)
        return cp_err_set(err, CP_EUNSAFE,
                          "refusing %s: it points to \"%s\", outside the lineage's versions/ "
                          "directory; point it back to one of %s/versions/ (ln -sfn "
                          "versions/<stamp> %s)",
                          path, target, base, path);
    rc = join(path, sizeof path, err, "%s/%s", base, target);
    struct stat st;
    if (rc == CP_OK && lstat(path, &st) == 0 && !S_ISDIR(st.st_mode))
        return cp_err_set(err, CP_EUNSAFE,
                          "refusing %s: a version must be a directory of the lineage, not %s; "
                          "remove it and point %s/current to a real version",
                          path, S_ISLNK(st.st_mode) ? "a symbolic link" : "a file", base);
    if (rc == CP_OK)
        rc = dir_safe(path, false, err);
    return rc;
}

enum cp_code cli_account_dir(const char *state, const char *directory_url, char *out, size_t size,
                             bool create, struct cp_err *err)
{
    char id[200];
    ca_id(directory_url, id, sizeof id);
    /* The state directory itself was checked by cli_common_finish(). */
    enum cp_code rc = create ? cp_dir_ensure(state, 0700, err) : CP_OK;
    if (rc == CP_OK)
        rc = join(out, size, err, "%s/accounts/%s", state, id);
    if (rc == CP_OK)
        rc = dir_safe(out, false, err);
    if (rc == CP_OK && create)
        rc = cp_dir_ensure(out, 0700, err);
    return rc;
}

enum cp_code cli_account_load(const char *dir, struct acme_key **key, char **url,
                              struct cp_err *err)
{
    char path[4096], *pem = NULL, *text = NULL;
    size_t len = 0;
    enum cp_code rc;

    *key = NULL;
    *url = NULL;
    rc = join(path, sizeof path, err, "%s/account.key", dir);
    if (rc != CP_OK)
        return rc;
    if (access(path, F_OK) != 0)
        return CP_OK; /* no account yet */
    rc = cp_file_read(path, KEY_FILE_MAX, &pem, &len, err);
    if (rc == CP_OK)
        rc = acme_key_from_pem(pem, len, path, key, err);
    if (pem != NULL) {
        OPENSSL_cleanse(pem, len);
        free(pem);
    }
    if (rc != CP_OK)
        return rc;

    rc = join(path, sizeof path, err, "%s/account.json", dir);
    if (rc == CP_OK && access(path, F_OK) == 0) {
        rc = cp_file_read(path, KEY_FILE_MAX, &text, &len, err);
        if (rc == CP_OK) {
            json_error_t jerr;
            json_t *j = json_loadb(text, len, 0, &jerr);
            const char *u = json_string_value(json_object_get(j, "url"));
            if (u != NULL)
                *url = strdup(u);
            json_decref(j);
        }
        free(text);
    }
    return rc;
}

enum cp_code cli_account_save(const char *dir, const char *directory_url,
                              const struct acme_key *key, const char *url,
                              const char *const *contacts, size_t ncontacts, struct cp_err *err)
{
    char path[4096], *pem = NULL, *text = NULL;
    size_t len = 0;
    enum cp_code rc = join(path, sizeof path, err, "%s/account.key", dir);
    if (rc == CP_OK)
        rc = acme_key_to_pem(key, &pem, &len, err);
    if (rc == CP_OK)
        rc = cp_file_write_atomic(path, pem, len, 0600, err);
    if (pem != NULL) {
        OPENSSL_cleanse(pem, len);
        free(pem);
    }
    if (rc != CP_OK)
        return rc;

    json_t *c = NULL;
    rc = join(path, sizeof path, err, "%s/account.json", dir);
    if (rc != CP_OK)
        return rc;
    if (contacts == NULL) { /* keep what was saved before */
        json_error_t jerr;
        json_t *old = json_load_file(path, 0, &jerr);
        c = json_incref(json_object_get(old, "contact"));
        json_decref(old);
    }
    if (c == NULL) {
        c = json_array();
        for (size_t i = 0; c != NULL && contacts != NULL && i < ncontacts; i++)
            json_array_append_new(c, json_string(contacts[i]));
    }
    json_t *j =
        json_pack("{s:s, s:s?, s:o, s:s}", "directory", directory_url, "url", url, "contact",
                  c ? c : json_array(), "key_type", acme_key_type_name(acme_key_type_of(key)));
    text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    json_decref(j);
    if (text == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    rc = cp_file_write_atomic(path, text, strlen(text), 0600, err);
    free(text);
    return rc;
}

bool cli_cert_name_valid(const char *name)
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

/* Replace `link` by a symlink to `target`, atomically (new link, rename). */
static enum cp_code swap_symlink(const char *target, const char *link, struct cp_err *err)
{
    char tmp[4200];
    enum cp_code rc = join(tmp, sizeof tmp, err, "%s.tmp-%ld", link, (long)getpid());
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

enum cp_code cli_cert_store(const char *state, const char *cert_name, const char *privkey_pem,
                            size_t privkey_len, const char *cert_pem, const char *chain_pem,
                            const char *fullchain_pem, char *live_dir, size_t live_size,
                            struct cp_err *err)
{
    char base[4096], version[4200], path[4400], stamp[64];
    struct timespec ts;
    struct tm tm;
    enum cp_code rc;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(stamp, sizeof stamp, "%04d%02d%02dT%02d%02d%02d.%09ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);

    rc = cli_lineage_check(state, cert_name, err); /* the state dir: cli_common_finish() */
    if (rc == CP_OK)
        rc = cp_dir_ensure(state, 0700, err);
    if (rc == CP_OK)
        rc = join(base, sizeof base, err, "%s/certs/%s", state, cert_name);
    if (rc == CP_OK)
        rc = cp_dir_ensure(base, 0700, err);
    if (rc == CP_OK)
        rc = join(version, sizeof version, err, "%s/versions/%s", base, stamp);
    if (rc == CP_OK)
        rc = cp_dir_ensure(version, 0700, err);
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
        rc = join(path, sizeof path, err, "%s/%s", version, files[i].file);
        if (rc == CP_OK)
            rc = cp_file_write_atomic(path, files[i].data, files[i].len, files[i].mode, err);
        if (rc != CP_OK)
            return rc;
    }

    /* The switch: one rename makes the new pair current. */
    char target[128], link[4200];
    snprintf(target, sizeof target, "versions/%s", stamp);
    rc = join(link, sizeof link, err, "%s/current", base);
    if (rc == CP_OK)
        rc = swap_symlink(target, link, err);
    for (size_t i = 0; rc == CP_OK && i < sizeof stable_files / sizeof stable_files[0]; i++) {
        rc = join(link, sizeof link, err, "%s/%s", base, stable_files[i]);
        snprintf(target, sizeof target, "current/%s", stable_files[i]);
        char existing[128];
        ssize_t n = rc == CP_OK ? readlink(link, existing, sizeof existing - 1) : -1;
        if (n >= 0) {
            existing[n] = '\0';
            if (strcmp(existing, target) == 0)
                continue; /* already points through current */
        }
        if (rc == CP_OK)
            rc = swap_symlink(target, link, err);
    }
    if (rc == CP_OK && live_dir != NULL)
        rc = join(live_dir, live_size, err, "%s", base);
    return rc;
}

enum cp_code cli_cert_key_load(const char *state, const char *cert_name, struct acme_key **key,
                               struct cp_err *err)
{
    char path[4096], *pem = NULL;
    size_t len = 0;
    *key = NULL;
    enum cp_code rc = cli_lineage_check(state, cert_name, err);
    if (rc != CP_OK)
        return rc;
    rc = join(path, sizeof path, err, "%s/certs/%s/privkey.pem", state, cert_name);
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

/* Remove this user's old temp files in the directory `dfd`; its
 * subdirectories (not symlinks, this user's, closed to group/others) are
 * handed to `sub` when it is not NULL.  Returns how many were removed. */
static size_t sweep_dir(int dfd, size_t (*sub)(int dfd), time_t now)
{
    size_t removed = 0;
    int copy = dup(dfd);
    DIR *d = copy >= 0 ? fdopendir(copy) : NULL;
    if (d == NULL) {
        if (copy >= 0)
            close(copy);
        return 0;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (e->d_name[0] == '.' || fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            st.st_uid != geteuid())
            continue;
        if (S_ISDIR(st.st_mode) && sub != NULL && (st.st_mode & 022) == 0) {
            int child = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (child >= 0) {
                removed += sub(child);
                close(child);
            }
        } else if ((S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) && leftover_name(e->d_name) &&
                   now - st.st_mtime > LEFTOVER_AGE_S && unlinkat(dfd, e->d_name, 0) == 0) {
            removed++;
        }
    }
    closedir(d);
    return removed;
}

static size_t sweep_leaf(int dfd)
{
    return sweep_dir(dfd, NULL, time(NULL));
}

/* certs/NAME/versions/: each version's files. */
static size_t sweep_versions(int dfd)
{
    return sweep_dir(dfd, sweep_leaf, time(NULL));
}

/* certs/NAME/: its own files and links, and versions/. */
static size_t sweep_lineage(int dfd)
{
    return sweep_dir(dfd, sweep_versions, time(NULL));
}

/* Under the lock: the temp files that a killed run left in the state
 * directory (accounts/CA/, certs/NAME/, certs/NAME/versions/STAMP/). */
static void sweep_leftovers(const char *state)
{
    int root = open(state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return;
    size_t removed = sweep_leaf(root);
    static const char *const tops[] = {"accounts", "certs"};
    for (size_t i = 0; i < 2; i++) {
        int top = openat(root, tops[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (top < 0)
            continue;
        removed += sweep_dir(top, i == 0 ? sweep_leaf : sweep_lineage, time(NULL));
        close(top);
    }
    close(root);
    if (removed > 0)
        cli_log(CLI_LOG_INFO, "removed %zu temporary file%s left by an interrupted run in %s",
                removed, removed == 1 ? "" : "s", state);
}

int cli_state_lock(const char *state, unsigned timeout_s, int *fd)
{
    char path[4200], holder[32] = "";
    struct cp_err err = {0};
    struct timespec t0, now;

    *fd = -1;
    if (cp_dir_ensure(state, 0700, &err) != CP_OK ||
        join(path, sizeof path, &err, "%s/renew.lock", state) != CP_OK) {
        cli_error("%s", err.msg);
        return CLI_EXIT_IO;
    }
    /* O_NOFOLLOW: a symlink planted under this name must not make certpilot
     * truncate and write whatever file it points to. */
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    struct stat st;
    if (f < 0 && errno == ELOOP) {
        cli_error("refusing the lock file %s: it is a symbolic link; remove it (certpilot "
                  "creates the lock file itself)",
                  path);
        return CLI_EXIT_UNSAFE;
    }
    if (f < 0) {
        cli_error("cannot open the lock file %s: %s", path, strerror(errno));
        return CLI_EXIT_IO;
    }
    if (fstat(f, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
        cli_error("refusing the lock file %s: it is not a regular file of this user; remove it",
                  path);
        close(f);
        return CLI_EXIT_UNSAFE;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool said = false;
    while (flock(f, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            cli_error("cannot lock %s: %s", path, strerror(errno));
            close(f);
            return CLI_EXIT_IO;
        }
        ssize_t n = pread(f, holder, sizeof holder - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long waited_ms =
            (long long)(now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (waited_ms >= (long long)timeout_s * 1000) {
            cli_error("another certpilot run (pid %s) holds %s; gave up after %u s: try again "
                      "when it has finished, or wait longer with --lock-timeout SECONDS",
                      holder[0] ? holder : "unknown", path, timeout_s);
            close(f);
            return CLI_EXIT_LOCKED;
        }
        if (!said)
            cli_log(CLI_LOG_INFO, "waiting for another certpilot run (pid %s) to finish",
                    holder[0] ? holder : "unknown");
        said = true;
        struct timespec pause = {0, 100 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(f, 0) != 0 || pwrite(f, pid, (size_t)len, 0) != len)
        cli_log(CLI_LOG_DEBUG, "could not write the pid into %s", path);
    *fd = f;
    sweep_leftovers(state);
    return 0;
}

json_t *cli_cert_status_load(const char *state, const char *cert_name)
{
    char path[4200];
    json_error_t jerr;
    if (join(path, sizeof path, NULL, "%s/certs/%s/status.json", state, cert_name) != CP_OK)
        return json_object();
    json_t *j = json_load_file(path, 0, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        return json_object();
    }
    return j;
}

enum cp_code cli_cert_status_save(const char *state, const char *cert_name, const json_t *st,
                                  struct cp_err *err)
{
    char path[4200];
    enum cp_code rc = join(path, sizeof path, err, "%s/certs/%s/status.json", state, cert_name);
    if (rc != CP_OK)
        return rc;
    char *text = json_dumps(st, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    rc = cp_file_write_atomic(path, text, strlen(text), 0600, err);
    free(text);
    return rc;
}

void cli_time_str(long long t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
