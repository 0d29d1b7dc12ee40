/*
 * store/fs_account.c - the filesystem store's accounts, one directory per CA:
 *
 *   STATE/accounts/<ca-id>/             0700
 *     account.key                       0600, the key the account signs with
 *     account.key.pending               0600, a rollover's new key: only from just before
 *                                       keyChange is sent until the CA's answer is acted on
 *     account.json                      0600, the account's record (store.h)
 *
 * Every file is read without following a symbolic link (only a regular file
 * of this user is accepted) and written to a temp name, fsync'd and renamed.
 * A rollover switches keys with one rename() of account.key.pending over
 * account.key, so at any moment account.key is a whole key: the old one or
 * the new one.
 */
#include "store/fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/file.h"

#define ACCOUNT_FILE_MAX (64 * 1024)

static const char *const key_names[] = {"account.key", "account.key.pending"};
#define RECORD_NAME "account.json"

/* The whole of a file of the account directory; *out NULL (CP_OK) when it
 * does not exist.  Cleanse and free it. */
static enum cp_code read_file(const char *path, char **out, size_t *len, struct cp_err *err)
{
    *out = NULL;
    *len = 0;
    if (access(path, F_OK) != 0 && errno == ENOENT)
        return CP_OK;
    return cp_file_read_nofollow(path, ACCOUNT_FILE_MAX, out, len, err);
}

static void wipe_free(char *buf, size_t len)
{
    if (buf != NULL) {
        OPENSSL_cleanse(buf, len);
        free(buf);
    }
}

static enum cp_code load_key(const char *dir, const char *name, struct acme_key **key,
                             struct cp_err *err)
{
    char path[4400], *pem = NULL;
    size_t len = 0;
    *key = NULL;
    enum cp_code rc = fs_join(path, sizeof path, err, "%s/%s", dir, name);
    if (rc == CP_OK)
        rc = read_file(path, &pem, &len, err);
    if (rc == CP_OK && pem != NULL)
        rc = acme_key_from_pem(pem, len, path, key, err);
    wipe_free(pem, len);
    return rc;
}

enum cp_code fs_account_load(struct cp_store *st, const char *directory_url,
                             struct store_account *out, struct cp_err *err)
{
    char path[4400], *text = NULL;
    size_t len = 0;
    enum cp_code rc =
        fs_account_dir(FS(st)->dir, directory_url, out->where, sizeof out->where, false, err);
    if (rc == CP_OK)
        rc = fs_join(out->pending_where, sizeof out->pending_where, err, "%s/%s", out->where,
                     key_names[1]);
    if (rc == CP_OK)
        rc = load_key(out->where, key_names[0], &out->key, err);
    if (rc == CP_OK)
        rc = load_key(out->where, key_names[1], &out->pending, err);
    if (rc == CP_OK)
        rc = fs_join(path, sizeof path, err, "%s/%s", out->where, RECORD_NAME);
    if (rc == CP_OK)
        rc = read_file(path, &text, &len, err);
    if (rc == CP_OK && text != NULL) {
        json_error_t jerr;
        out->rec = json_loadb(text, len, 0, &jerr);
        if (!json_is_object(out->rec))
            rc = cp_err_set(err, CP_EIO,
                            "%s is not a JSON object (%s, line %d); repair it or move it away "
                            "(with the account key still there, certpilot finds the account "
                            "URL again)",
                            path, jerr.text, jerr.line);
    }
    free(text);
    return rc;
}

enum cp_code fs_account_save_record(struct cp_store *st, const char *directory_url,
                                    const json_t *rec, struct cp_err *err)
{
    char dir[4300], path[4400];
    enum cp_code rc = fs_account_dir(FS(st)->dir, directory_url, dir, sizeof dir, true, err);
    if (rc == CP_OK)
        rc = fs_join(path, sizeof path, err, "%s/%s", dir, RECORD_NAME);
    if (rc != CP_OK)
        return rc;
    char *text = json_dumps(rec, JSON_INDENT(2));
    if (text == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    rc = cp_file_write_atomic(path, text, strlen(text), 0600, err);
    free(text);
    return rc;
}

enum cp_code fs_account_save_key(struct cp_store *st, const char *directory_url, int which,
                                 const struct acme_key *key, struct cp_err *err)
{
    char dir[4300], path[4400], *pem = NULL;
    size_t len = 0;
    enum cp_code rc = fs_account_dir(FS(st)->dir, directory_url, dir, sizeof dir, true, err);
    if (rc == CP_OK)
        rc = fs_join(path, sizeof path, err, "%s/%s", dir, key_names[which != 0]);
    if (rc == CP_OK)
        rc = acme_key_to_pem(key, &pem, &len, err);
    if (rc == CP_OK)
        rc = cp_file_write_atomic(path, pem, len, 0600, err);
    wipe_free(pem, len);
    return rc;
}

/* Make a rename or unlink in the account directory durable. */
static enum cp_code sync_dir(const char *dir, struct cp_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return cp_err_set(err, CP_EIO, "cannot open %s: %s", dir, strerror(errno));
    int r = fsync(fd);
    int e = errno;
    close(fd);
    if (r != 0)
        return cp_err_set(err, CP_EIO, "cannot sync %s: %s", dir, strerror(e));
    return CP_OK;
}

enum cp_code fs_account_settle(struct cp_store *st, const char *directory_url, bool commit,
                               struct cp_err *err)
{
    char dir[4300], from[4400], to[4400];
    enum cp_code rc = fs_account_dir(FS(st)->dir, directory_url, dir, sizeof dir, false, err);
    if (rc == CP_OK)
        rc = fs_join(from, sizeof from, err, "%s/%s", dir, key_names[1]);
    if (rc == CP_OK)
        rc = fs_join(to, sizeof to, err, "%s/%s", dir, key_names[0]);
    if (rc != CP_OK)
        return rc;
    if (commit) {
        /* One rename: account.key is the old key or the new one, never neither. */
        if (rename(from, to) != 0)
            return cp_err_set(err, CP_EIO, "cannot rename %s to %s: %s", from, to, strerror(errno));
    } else if (unlink(from) != 0 && errno != ENOENT) {
        return cp_err_set(err, CP_EIO, "cannot remove %s: %s", from, strerror(errno));
    }
    return sync_dir(dir, err);
}
