/*
 * common/file.h - the few local file operations certpilot needs, done safely.
 *
 * Account keys, certificate keys and certificates are stored on disk; a crash
 * or a full disk must never leave a half-written key where a good one was, and
 * a key must never be readable by others, not even for a moment.  So:
 *   - directories are created with mkdir -p semantics and an explicit mode,
 *     and an existing directory that is more open than asked is tightened;
 *   - files are replaced atomically: written to a new temporary file in the
 *     same directory (O_CREAT|O_EXCL, created with the final mode), fsync'ed,
 *     renamed over the old one, and the directory fsync'ed;
 *   - files are read whole, with a size limit given by the caller.
 *
 * What it does not do: locking, ownership checks or changes, following the
 * caller's umask (the mode given is the mode the file gets), or anything with
 * file contents.  Every function returns an enum cp_code (CP_EIO for system
 * call failures, CP_ENOMEM, CP_EINVAL for an unusable argument) and fills the
 * optional struct cp_err with a message naming the path and strerror(errno).
 */
#ifndef CP_COMMON_FILE_H
#define CP_COMMON_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"

/*
 * Make sure `path` is a directory, creating it and any missing parents
 * (mkdir -p); every directory created gets `mode` (less the umask, which can
 * only tighten it).  If the final directory already exists and grants any
 * permission bit outside `mode`, it is chmod'ed to `mode`.  Fails when a
 * component exists but is not a directory.
 */
enum cp_code cp_dir_ensure(const char *path, mode_t mode, struct cp_err *err);

/*
 * Replace the file at `path` with `len` bytes of `data`, atomically: readers
 * see either the old file or the whole new one.  The new file has exactly
 * `mode` (the umask is not applied: pass 0600 for secrets) and is a new inode,
 * so the old file's mode and owner are not kept.  On failure the temporary file
 * is removed and the old file, if any, is left as it was.  The directory must
 * exist.
 */
enum cp_code cp_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                                  struct cp_err *err);

/*
 * Read the whole file at `path`: *out is a NUL-terminated heap buffer (free();
 * OPENSSL_cleanse it first when it held a secret) of *len bytes, not counting
 * the NUL.  Files bigger than `max` bytes are refused.  On failure *out is NULL
 * and *len 0.
 */
enum cp_code cp_file_read(const char *path, size_t max, char **out, size_t *len,
                          struct cp_err *err);
/* The effective user id, asked of the kernel once: certpilot never changes
 * it, and the state directory's checks compare owners with it many times
 * per lineage. */
uid_t cp_euid(void);
/* The same as cp_file_read, refusing (CP_EUNSAFE) a path whose last component is a symbolic
 * link, or anything but a regular file of this user: for the files certpilot
 * itself keeps in the state directory. */
enum cp_code cp_file_read_nofollow(const char *path, size_t max, char **out, size_t *len,
                                   struct cp_err *err);
/* The same, the file opened as `rel` under the open directory `at` (fewer
 * path components for the kernel to walk; AT_FDCWD: the working directory).
 * `path` is the file's whole name, for messages. */
enum cp_code cp_file_read_nofollow_at(int at, const char *rel, const char *path, size_t max,
                                      char **out, size_t *len, struct cp_err *err);

/*
 * Read-only mounts.  Under systemd's ProtectSystem=strict (the shipped
 * certpilot-renew.service) everything outside a few directories is mounted
 * read-only, and the only way out is a ReadWritePaths= line: so a write that
 * fails there must say which line to add, and this is the one place that says
 * it.
 */
#include <stdbool.h>
/* Is `path`, or the nearest of its parents that exists, on a file system
 * mounted read-only (statvfs ST_RDONLY)?  False when that cannot be told. */
bool cp_path_readonly(const char *path);
/* What to do about the read-only directory `dir`, into buf (truncated to
 * fit): `systemd` when this run is a systemd service (INVOCATION_ID set). */
void cp_readonly_hint(const char *dir, bool systemd, char *buf, size_t size);
/* When `dir` is on a read-only file system: the hint appended to err's
 * message (as "; hint"), and true.  err may be NULL (nothing said). */
bool cp_err_readonly(struct cp_err *err, const char *dir);

#endif
