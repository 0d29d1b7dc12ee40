/*
 * hooks/hooks.h - running user hooks safely.
 *
 * A hook is an executable the user names (a script with a shebang is fine).
 * It is started with posix_spawn from an argv array and an explicit
 * environment (this process's environment plus the variables given): never
 * through a shell, so no name, token or path is ever interpreted.  Each run has
 * a timeout after which the hook's whole process group gets SIGTERM, then
 * SIGKILL; its stdout and stderr are captured together, bounded.
 *
 * On top of that, the dehydrated hook protocol: one executable called with a
 * command word and its arguments (deploy_challenge DOMAIN TOKEN_FILENAME
 * TOKEN_VALUE, ...), so existing dehydrated hook scripts work unchanged.
 *
 * Nothing here prints: output is returned for the caller to log.  (A hook
 * the user writes as "sh:COMMAND" is run by flow/hooks.c as the argv
 * /bin/sh -c COMMAND: the shell is what the user asked for, and still nothing
 * is put into the command text.)
 */
#ifndef CP_HOOKS_HOOKS_H
#define CP_HOOKS_HOOKS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define HOOK_OUTPUT_MAX (64 * 1024) /* captured bytes kept; the rest is counted */

struct hook_result {
    int exit_status; /* 0..255 when the hook exited; -1 otherwise */
    int term_signal; /* the signal that ended it, 0 if it exited */
    bool timed_out;  /* killed at the timeout */
    char *output;    /* stdout+stderr, NUL-terminated, at most HOOK_OUTPUT_MAX bytes */
    size_t output_len;
    size_t output_dropped; /* bytes beyond HOOK_OUTPUT_MAX that were discarded */
};

/*
 * Run argv[0] (a path; PATH is not searched unless it has no '/') with
 * arguments argv[1..] (NULL-terminated), with this process's environment plus
 * `extra_env` ("NAME=value" strings, NULL-terminated, may be NULL; they
 * replace same-named variables).  Waits at most timeout_ms (0: 300000).
 * CP_OK means the hook ran to an end, whatever its exit status (see `out`);
 * CP_EIO when it could not be started (message names argv[0] and why: not
 * found, not executable).  Clear `out` with hook_result_clear().
 */
enum cp_code hook_run(const char *const *argv, const char *const *extra_env, unsigned timeout_ms,
                      struct hook_result *out, struct cp_err *err);

void hook_result_clear(struct hook_result *r);

/* True when the hook exited with status 0. */
bool hook_succeeded(const struct hook_result *r);

/*
 * dehydrated protocol: run `hook` with argv {hook, command, args...}.  An exit
 * status of 0 is success; for commands a hook does not handle, dehydrated
 * scripts conventionally exit 0 too.  Same result semantics as hook_run().
 */
enum cp_code hook_dehydrated(const char *hook, const char *command, const char *const *args,
                             size_t nargs, const char *const *extra_env, unsigned timeout_ms,
                             struct hook_result *out, struct cp_err *err);

/* Is `path` an existing regular file executable by us?  For --dry-run; the
 * message names the path and what is wrong. */
enum cp_code hook_check_executable(const char *path, struct cp_err *err);

#endif
