/*
 * flow/hooks.c - running the user's hooks, with their output in the flow's
 * log.
 *
 * A hook command (--pre-hook, --post-hook, --deploy-hook) is words separated
 * by spaces or tabs: the program, then its arguments.  They are passed as an
 * argv to hooks/ (posix_spawn, no shell), so nothing in them is expanded or
 * interpreted.  A command written "sh:TEXT" is the one explicit way to get a
 * shell: it runs as the argv {"/bin/sh", "-c", TEXT}, TEXT exactly as the user
 * wrote it.  No name, path or other data is ever put into TEXT; what a hook
 * needs to know is in its environment (RENEWED_LINEAGE, RENEWED_DOMAINS).
 *
 * A hook directory (hooks.d/pre, hooks.d/post, hooks.d/deploy) holds
 * executables run one after the other in name order (byte order, as the C
 * locale sorts), each with no arguments and the same environment as the
 * matching command.  A dehydrated hook gets one command of its protocol and
 * that command's arguments.
 */
#include "flow/flow.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hooks/hooks.h"

#define HOOK_WORDS_MAX       64
#define HOOK_SHELL_PREFIX    "sh:"
#define HOOK_DIR_ENTRIES_MAX 256

/* Split `command` into words in `buf`; argv NULL-terminated; count or -1. */
static int split_words(const char *command, char *buf, size_t size, const char **argv)
{
    size_t len = strlen(command);
    if (len >= size)
        return -1;
    memcpy(buf, command, len + 1);
    int n = 0;
    for (char *p = buf; *p;) {
        while (*p == ' ' || *p == '\t')
            *p++ = '\0';
        if (*p == '\0')
            break;
        if (n == HOOK_WORDS_MAX)
            return -1;
        argv[n++] = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
    }
    argv[n] = NULL;
    return n;
}

/* Log the hook's output and how it ended; true when it exited 0. */
static bool report(const struct flow_log *log, const char *what, const char *name,
                   const struct hook_result *hr)
{
    bool ok = hook_succeeded(hr);
    for (const char *p = hr->output_len > 0 ? hr->output : ""; *p;) {
        size_t n = strcspn(p, "\n");
        flow_say(log, ok ? FLOW_INFO : FLOW_ERR, "%s: %.*s", what, (int)n, p);
        p += n + (p[n] == '\n');
    }
    if (ok)
        flow_say(log, FLOW_DEBUG, "%s %s exited with status 0", what, name);
    else if (hr->timed_out)
        flow_say(log, FLOW_ERR, "%s %s timed out and was stopped", what, name);
    else if (hr->exit_status >= 0)
        flow_say(log, FLOW_ERR, "%s %s failed with exit status %d", what, name, hr->exit_status);
    else
        flow_say(log, FLOW_ERR, "%s %s was killed by signal %d", what, name, hr->term_signal);
    return ok;
}

/* Run argv with `env` added; log and report as `what`. */
static bool run_argv(const struct flow_log *log, const char *what, const char *const *argv,
                     const char *const *env)
{
    struct hook_result hr = {0};
    struct cp_err err = {0};
    if (hook_run(argv, env, 0, &hr, &err) != CP_OK) {
        flow_say(log, FLOW_ERR, "%s: %s", what, err.msg);
        hook_result_clear(&hr); /* a failed start may leave an output buffer */
        return false;
    }
    bool ok = report(log, what, argv[0], &hr);
    hook_result_clear(&hr);
    return ok;
}

/* The text after "sh:", or NULL when `command` is words. */
static const char *shell_text(const char *command)
{
    size_t n = strlen(HOOK_SHELL_PREFIX);
    return strncmp(command, HOOK_SHELL_PREFIX, n) == 0 ? command + n : NULL;
}

static bool blank(const char *s)
{
    return s[strspn(s, " \t\n")] == '\0';
}

enum cp_code flow_hook_command_check(const char *command, struct cp_err *err)
{
    char buf[4096];
    const char *argv[HOOK_WORDS_MAX + 1];
    const char *text = shell_text(command);
    if (text != NULL && blank(text))
        return cp_err_set(err, CP_EINVAL,
                          "hook \"%s\": write a shell command line after \"sh:\" (e.g. "
                          "\"sh:systemctl reload nginx && echo done\")",
                          command);
    if (text == NULL && split_words(command, buf, sizeof buf, argv) <= 0)
        return cp_err_set(err, CP_EINVAL,
                          "hook \"%s\": write a program and its arguments, separated by spaces "
                          "(at most %d words), or \"sh:\" and a shell command line",
                          command, HOOK_WORDS_MAX);
    return CP_OK;
}

bool flow_hook_command(const struct flow_log *log, const char *what, const char *command,
                       const char *const *env)
{
    char buf[4096];
    const char *argv[HOOK_WORDS_MAX + 1];
    struct cp_err err = {0};

    if (flow_hook_command_check(command, &err) != CP_OK) {
        flow_say(log, FLOW_ERR, "%s: %s", what, err.msg);
        return false;
    }
    const char *text = shell_text(command);
    if (text != NULL) {
        /* The text goes to the shell exactly as written: data stays in env. */
        const char *shell[] = {"/bin/sh", "-c", text, NULL};
        flow_say(log, FLOW_INFO, "running %s through /bin/sh -c: %s", what, text);
        return run_argv(log, what, shell, env);
    }
    split_words(command, buf, sizeof buf, argv); /* checked above */
    flow_say(log, FLOW_INFO, "running %s: %s", what, command);
    return run_argv(log, what, argv, env);
}

static const char *const phase_names[] = {"pre", "post", "deploy"};

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b); /* bytes, as the C locale */
}

/* Is the entry `name` of `dir` one to run?  Says at debug why not. */
/* Whoever can change a hook gets their code run as this user: a hook and
 * its directory must belong to this user or root and be closed to writes by
 * group and others. */
static bool owned_safely(const struct stat *sb)
{
    return (sb->st_uid == geteuid() || sb->st_uid == 0) && (sb->st_mode & 022) == 0;
}

static void say_unsafe(const struct flow_log *log, const char *path, const struct stat *sb)
{
    flow_say(log, FLOW_ERR,
             "refusing the hook %s: it is owned by uid %u with mode %04o, so someone else could "
             "change what runs; make it this user's or root's and run: chmod go-w %s",
             path, (unsigned)sb->st_uid, (unsigned)(sb->st_mode & 07777), path);
}

/* Is `name` in `dir` a hook to run?  *unsafe when it is one that someone
 * else could have changed (said; it is not run). */
static bool runnable(const struct flow_log *log, const char *dir, const char *name, char *path,
                     size_t size, bool *unsafe)
{
    size_t len = strlen(name);
    if (name[0] == '.' || name[len - 1] == '~') {
        if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0)
            flow_say(log, FLOW_DEBUG, "%s/%s: skipped (a hidden or backup file)", dir, name);
        return false;
    }
    int n = snprintf(path, size, "%s/%s", dir, name);
    struct stat sb;
    if (n < 0 || (size_t)n >= size) {
        flow_say(log, FLOW_DEBUG, "%s/%s: skipped (the path is too long)", dir, name);
        return false;
    }
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || access(path, X_OK) != 0) {
        flow_say(log, FLOW_DEBUG, "%s: skipped (not an executable file)", path);
        return false;
    }
    if (!owned_safely(&sb)) {
        say_unsafe(log, path, &sb);
        *unsafe = true;
        return false;
    }
    return true;
}

bool flow_hook_dir(const struct flow_log *log, const char *hooks_dir, enum flow_hook_phase phase,
                   const char *const *env)
{
    char dir[4096], path[4400], what[64];
    char *names[HOOK_DIR_ENTRIES_MAX];
    size_t n = 0;
    bool ok = true;

    if (hooks_dir == NULL)
        return true;
    int len = snprintf(dir, sizeof dir, "%s/%s", hooks_dir, phase_names[phase]);
    if (len < 0 || (size_t)len >= sizeof dir) {
        flow_say(log, FLOW_ERR, "hook directory %s: the path is too long", hooks_dir);
        return false;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT || errno == ENOTDIR) {
            flow_say(log, FLOW_DEBUG, "no hook directory %s", dir);
            return true;
        }
        flow_say(log, FLOW_ERR, "hook directory %s: %s", dir, strerror(errno));
        return false;
    }
    struct stat dsb;
    if (fstat(dirfd(d), &dsb) != 0 || !owned_safely(&dsb)) {
        say_unsafe(log, dir, &dsb);
        closedir(d);
        return false;
    }
    bool unsafe = false;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (!runnable(log, dir, e->d_name, path, sizeof path, &unsafe))
            continue;
        if (n == HOOK_DIR_ENTRIES_MAX) {
            flow_say(log, FLOW_ERR, "hook directory %s: more than %d hooks; none was run", dir,
                     HOOK_DIR_ENTRIES_MAX);
            ok = false;
            break;
        }
        if ((names[n] = strdup(e->d_name)) == NULL) {
            flow_say(log, FLOW_ERR, "hook directory %s: out of memory", dir);
            ok = false;
            break;
        }
        n++;
    }
    closedir(d);
    if (unsafe)
        ok = false; /* none runs: the set someone meant to run is not known */
    if (ok) {
        qsort(names, n, sizeof names[0], name_cmp);
        snprintf(what, sizeof what, "%s hook", phase_names[phase]);
        for (size_t i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            const char *argv[] = {path, NULL};
            flow_say(log, FLOW_INFO, "running %s %s", what, path);
            ok = run_argv(log, what, argv, env) && ok; /* the others still run */
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    return ok;
}

bool flow_hook_event(const struct flow_log *log, const char *hook, const char *command,
                     const char *const *args, size_t nargs)
{
    struct hook_result hr = {0};
    struct cp_err err = {0};
    char what[96];
    snprintf(what, sizeof what, "hook %s", command);
    flow_say(log, FLOW_DEBUG, "running %s %s", hook, command);
    if (hook_dehydrated(hook, command, args, nargs, NULL, 0, &hr, &err) != CP_OK) {
        flow_say(log, FLOW_ERR, "%s: %s", what, err.msg);
        hook_result_clear(&hr);
        return false;
    }
    bool ok = report(log, what, hook, &hr);
    hook_result_clear(&hr);
    return ok;
}
