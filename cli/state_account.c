/*
 * cli/state_account.c - the account of one CA in the state directory:
 *
 *   STATE/accounts/<ca-id>/             0700
 *     account.key                       0600, the key the account signs with
 *     account.key.pending               0600, a rollover's new key: only from just before
 *                                       keyChange is sent until the CA's answer is acted on
 *     account.json                      0600, {"directory", "url", "contact", "key_type"}
 *                                       and, once the CA deactivated the account, "status":
 *                                       "deactivated" and "deactivated_at"
 *
 * Every file is read without following a symbolic link (only a regular file
 * of this user is accepted) and written to a temp name, fsync'd and renamed.
 * A rollover switches keys with one rename() of account.key.pending over
 * account.key, so at any moment account.key is a whole key: the old one or
 * the new one; which of the two the CA knows after a crash is found out by
 * cli_account_use() (cli/acme_common.c).
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file.h"

#define ACCOUNT_FILE_MAX (64 * 1024)
#define KEY_NAME         "account.key"
#define PENDING_NAME     "account.key.pending"
#define RECORD_NAME      "account.json"

static enum cp_code path_of(const struct cli_account *a, const char *name, char *out, size_t size,
                            struct cp_err *err)
{
    int n = snprintf(out, size, "%s/%s", a->dir, name);
    if (n < 0 || (size_t)n >= size)
        return cp_err_set(err, CP_EINVAL, "path too long under the state directory");
    return CP_OK;
}

static void wipe_free(char *buf, size_t len)
{
    if (buf != NULL) {
        OPENSSL_cleanse(buf, len);
        free(buf);
    }
}

/* The whole of `path`, never through a symlink; *out NULL (CP_OK) when it
 * does not exist.  NUL-terminated; cleanse and free it. */
static enum cp_code read_nofollow(const char *path, char **out, size_t *len, struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    struct stat st;
    char *buf = NULL;
    size_t used = 0;

    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 && errno == ENOENT)
        return CP_OK;
    if (fd < 0 && errno == ELOOP)
        return cp_err_set(err, CP_EUNSAFE,
                          "refusing %s: it is a symbolic link where certpilot keeps a file of "
                          "its own; remove the link",
                          path);
    if (fd < 0)
        return cp_err_set(err, CP_EIO, "cannot open %s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        rc = cp_err_set(err, CP_EIO, "cannot examine %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
        rc = cp_err_set(err, CP_EUNSAFE,
                        "refusing %s: it is not a regular file of this user; move it away", path);
        goto out;
    }
    buf = malloc(ACCOUNT_FILE_MAX + 1);
    if (buf == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory reading %s", path);
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf + used, ACCOUNT_FILE_MAX + 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = cp_err_set(err, CP_EIO, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used > ACCOUNT_FILE_MAX) {
            rc = cp_err_set(err, CP_EIO, "%s is larger than %d bytes: not a file certpilot wrote",
                            path, ACCOUNT_FILE_MAX);
            goto out;
        }
    }
    buf[used] = '\0';
    *out = buf;
    *len = used;
    buf = NULL;
out:
    wipe_free(buf, ACCOUNT_FILE_MAX + 1);
    close(fd);
    return rc;
}

static enum cp_code load_key(const struct cli_account *a, const char *name, struct acme_key **key,
                             struct cp_err *err)
{
    char path[4200], *pem = NULL;
    size_t len = 0;
    *key = NULL;
    enum cp_code rc = path_of(a, name, path, sizeof path, err);
    if (rc == CP_OK)
        rc = read_nofollow(path, &pem, &len, err);
    if (rc == CP_OK && pem != NULL)
        rc = acme_key_from_pem(pem, len, path, key, err);
    wipe_free(pem, len);
    return rc;
}

static enum cp_code write_key(const struct cli_account *a, const char *name,
                              const struct acme_key *key, struct cp_err *err)
{
    char path[4200], *pem = NULL;
    size_t len = 0;
    enum cp_code rc = path_of(a, name, path, sizeof path, err);
    if (rc == CP_OK)
        rc = acme_key_to_pem(key, &pem, &len, err);
    if (rc == CP_OK)
        rc = cp_file_write_atomic(path, pem, len, 0600, err);
    wipe_free(pem, len);
    return rc;
}

enum cp_code cli_account_open(const char *state, const char *server, bool create,
                              struct cli_account *a, struct cp_err *err)
{
    char path[4200], *text = NULL;
    size_t len = 0;

    memset(a, 0, sizeof *a);
    enum cp_code rc = cli_account_dir(state, server, a->dir, sizeof a->dir, create, err);
    if (rc == CP_OK)
        rc = load_key(a, KEY_NAME, &a->key, err);
    if (rc == CP_OK)
        rc = load_key(a, PENDING_NAME, &a->pending, err);
    if (rc == CP_OK)
        rc = path_of(a, RECORD_NAME, path, sizeof path, err);
    if (rc == CP_OK)
        rc = read_nofollow(path, &text, &len, err);
    if (rc == CP_OK && text != NULL) {
        json_error_t jerr;
        a->rec = json_loadb(text, len, 0, &jerr);
        if (!json_is_object(a->rec))
            rc = cp_err_set(err, CP_EIO,
                            "%s is not a JSON object (%s, line %d); repair it or move it away "
                            "(with the account key still there, certpilot finds the account "
                            "URL again)",
                            path, jerr.text, jerr.line);
    }
    free(text);
    if (rc == CP_OK && a->rec == NULL && (a->rec = json_object()) == NULL)
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
    if (rc != CP_OK)
        cli_account_close(a);
    return rc;
}

void cli_account_close(struct cli_account *a)
{
    acme_key_free(a->key);
    acme_key_free(a->pending);
    json_decref(a->rec);
    a->key = NULL;
    a->pending = NULL;
    a->rec = NULL;
}

const char *cli_account_url(const struct cli_account *a)
{
    const char *u = json_string_value(json_object_get(a->rec, "url"));
    return u != NULL && *u != '\0' ? u : NULL;
}

const char *cli_account_deactivated_at(const struct cli_account *a)
{
    const char *st = json_string_value(json_object_get(a->rec, "status"));
    if (st == NULL || strcmp(st, "deactivated") != 0)
        return NULL;
    const char *at = json_string_value(json_object_get(a->rec, "deactivated_at"));
    return at != NULL ? at : "an unknown date";
}

json_t *cli_account_contacts(const struct cli_account *a)
{
    json_t *out = json_array();
    const json_t *list = json_object_get(a->rec, "contact");
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v)
    {
        if (json_is_string(v) && out != NULL)
            json_array_append(out, (json_t *)v);
    }
    return out;
}

enum cp_code cli_account_set(struct cli_account *a, const char *key, json_t *value,
                             struct cp_err *err)
{
    if (value == NULL || json_object_set_new(a->rec, key, value) != 0)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    return CP_OK;
}

enum cp_code cli_account_write(struct cli_account *a, const char *server, struct cp_err *err)
{
    char path[4200];
    enum cp_code rc = cli_account_set(a, "directory", json_string(server), err);
    if (rc == CP_OK && a->key != NULL)
        rc = cli_account_set(a, "key_type",
                             json_string(acme_key_type_name(acme_key_type_of(a->key))), err);
    if (rc == CP_OK && json_object_get(a->rec, "contact") == NULL)
        rc = cli_account_set(a, "contact", json_array(), err);
    if (rc == CP_OK)
        rc = path_of(a, RECORD_NAME, path, sizeof path, err);
    if (rc != CP_OK)
        return rc;
    char *text = json_dumps(a->rec, JSON_INDENT(2));
    if (text == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    rc = cp_file_write_atomic(path, text, strlen(text), 0600, err);
    free(text);
    return rc;
}

enum cp_code cli_account_write_key(struct cli_account *a, struct acme_key *key, struct cp_err *err)
{
    enum cp_code rc = write_key(a, KEY_NAME, key, err);
    if (rc == CP_OK) {
        acme_key_free(a->key);
        a->key = key;
    }
    return rc;
}

enum cp_code cli_account_pending_write(struct cli_account *a, struct acme_key *key,
                                       struct cp_err *err)
{
    enum cp_code rc = write_key(a, PENDING_NAME, key, err);
    if (rc == CP_OK) {
        acme_key_free(a->pending);
        a->pending = key;
    }
    return rc;
}

/* Make a rename or unlink in the account directory durable. */
static enum cp_code sync_dir(const struct cli_account *a, struct cp_err *err)
{
    int fd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return cp_err_set(err, CP_EIO, "cannot open %s: %s", a->dir, strerror(errno));
    int r = fsync(fd);
    int e = errno;
    close(fd);
    if (r != 0)
        return cp_err_set(err, CP_EIO, "cannot sync %s: %s", a->dir, strerror(e));
    return CP_OK;
}

enum cp_code cli_account_pending_commit(struct cli_account *a, struct cp_err *err)
{
    char from[4200], to[4200];
    if (a->pending == NULL)
        return cp_err_set(err, CP_EINTERNAL, "no pending account key to make current");
    enum cp_code rc = path_of(a, PENDING_NAME, from, sizeof from, err);
    if (rc == CP_OK)
        rc = path_of(a, KEY_NAME, to, sizeof to, err);
    if (rc != CP_OK)
        return rc;
    /* One rename: account.key is the old key or the new one, never neither. */
    if (rename(from, to) != 0)
        return cp_err_set(err, CP_EIO, "cannot rename %s to %s: %s", from, to, strerror(errno));
    acme_key_free(a->key);
    a->key = a->pending;
    a->pending = NULL;
    return sync_dir(a, err);
}

enum cp_code cli_account_pending_remove(struct cli_account *a, struct cp_err *err)
{
    char path[4200];
    enum cp_code rc = path_of(a, PENDING_NAME, path, sizeof path, err);
    if (rc != CP_OK)
        return rc;
    if (unlink(path) != 0 && errno != ENOENT)
        return cp_err_set(err, CP_EIO, "cannot remove %s: %s", path, strerror(errno));
    acme_key_free(a->pending);
    a->pending = NULL;
    return sync_dir(a, err);
}

void cli_account_pending_path(const struct cli_account *a, char *out, size_t size)
{
    if (path_of(a, PENDING_NAME, out, size, NULL) != CP_OK && size > 0)
        out[0] = '\0';
}
