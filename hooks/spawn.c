/*
 * hooks/spawn.c - start a hook with posix_spawn, capture its output, bound its time.
 *
 * The hook runs in its own process group so that the timeout reaches whatever
 * it started too.  No SIGCHLD handler is installed (cli/ owns the signals):
 * the loop polls the output pipe with a short timeout and checks the child
 * with waitid(WNOWAIT), which leaves it a zombie until the very end.  While
 * the zombie exists its PID, and so the process group ID, cannot be reused,
 * so kill(-pgid, ...) never reaches an unrelated group.
 */
#include "hooks/hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define HOOK_DEFAULT_TIMEOUT_MS 300000u
#define HOOK_TERM_GRACE_MS      2000u /* SIGTERM to SIGKILL */
#define HOOK_LEFTOVER_GRACE_MS  1000u /* hook exited, but something still holds its output */
#define HOOK_KILL_WAIT_MS       5000u /* after SIGKILL, before giving up on the child */
#define HOOK_POLL_MS            50    /* longest sleep without checking the child */
#define HOOK_READ_CHUNK         16384
#define HOOK_READS_PER_TURN     16   /* a fast writer cannot starve the timeout checks */
#define HOOK_EXTRA_ENV_MAX      1024 /* entries in extra_env */
#define HOOK_ENVIRON_MAX        65536

static uint64_t now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Length of the NAME part of "NAME=value"; 0 when there is no '=' or no name. */
static size_t env_name_len(const char *entry)
{
    const char *eq = strchr(entry, '=');
    return eq == NULL ? 0 : (size_t)(eq - entry);
}

/*
 * environ minus the variables extra_env names, then extra_env, NULL-terminated.
 * The array borrows every string; the caller frees only the array.
 */
static enum cp_code build_env(const char *const *extra_env, const char ***envp_out,
                              struct cp_err *err)
{
    size_t n_extra = 0, n_env = 0;
    if (extra_env != NULL) {
        for (; extra_env[n_extra] != NULL; n_extra++) {
            if (n_extra >= HOOK_EXTRA_ENV_MAX)
                return cp_err_set(err, CP_EINVAL, "hook environment: more than %d variables",
                                  HOOK_EXTRA_ENV_MAX);
            if (env_name_len(extra_env[n_extra]) == 0)
                return cp_err_set(err, CP_EINVAL,
                                  "hook environment: \"%s\" is not of the form NAME=value",
                                  extra_env[n_extra]);
        }
    }
    if (environ != NULL) {
        while (environ[n_env] != NULL) {
            if (++n_env > HOOK_ENVIRON_MAX)
                return cp_err_set(err, CP_EINVAL, "environment: more than %d variables",
                                  HOOK_ENVIRON_MAX);
        }
    }

    const char **envp = calloc(n_env + n_extra + 1, sizeof *envp);
    if (envp == NULL)
        return cp_err_set(err, CP_ENOMEM, "hook environment: out of memory");
    size_t n = 0;
    for (size_t i = 0; i < n_env; i++) {
        size_t len = env_name_len(environ[i]);
        bool replaced = false;
        for (size_t j = 0; j < n_extra && !replaced; j++)
            replaced = len > 0 && env_name_len(extra_env[j]) == len &&
                       memcmp(environ[i], extra_env[j], len) == 0;
        if (!replaced)
            envp[n++] = environ[i];
    }
    for (size_t j = 0; j < n_extra; j++) {
        /* The last of several same-named entries wins, as with repeated setenv(). */
        size_t len = env_name_len(extra_env[j]);
        bool later = false;
        for (size_t k = j + 1; k < n_extra && !later; k++)
            later =
                env_name_len(extra_env[k]) == len && memcmp(extra_env[j], extra_env[k], len) == 0;
        if (!later)
            envp[n++] = extra_env[j];
    }
    envp[n] = NULL;
    *envp_out = envp;
    return CP_OK;
}

/* Move fd above 2 (so that the child's dup2 onto 0..2 cannot collide with it)
 * and mark it close-on-exec.  Returns the new fd, or -1 with fd closed. */
static int fd_high_cloexec(int fd)
{
    if (fd > STDERR_FILENO) {
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) {
            int saved = errno;
            (void)close(fd);
            errno = saved;
            return -1;
        }
        return fd;
    }
    int high = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    int saved = errno;
    (void)close(fd);
    errno = saved;
    return high;
}

static enum cp_code spawn_error(const char *path, int e, struct cp_err *err)
{
    struct stat st;
    bool searched = strchr(path, '/') == NULL;
    switch (e) {
    case ENOENT:
        if (searched)
            return cp_err_set(err, CP_EIO, "hook \"%s\": not found in PATH", path);
        if (stat(path, &st) == 0)
            /* execve() says ENOENT for a missing #! interpreter or ELF loader too. */
            return cp_err_set(err, CP_EIO,
                              "hook \"%s\": cannot be run: its #! interpreter (or loader) "
                              "was not found",
                              path);
        return cp_err_set(err, CP_EIO, "hook \"%s\": not found", path);
    case EACCES:
    case EPERM:
        return cp_err_set(err, CP_EIO, "hook \"%s\": is not executable (%s)", path, strerror(e));
    case ENOEXEC:
        return cp_err_set(err, CP_EIO,
                          "hook \"%s\": is not executable: not a program, and no #! line", path);
    case ENOTDIR:
        return cp_err_set(err, CP_EIO,
                          "hook \"%s\": not found (a path component is not a "
                          "directory)",
                          path);
    case E2BIG:
        return cp_err_set(err, CP_EIO, "hook \"%s\": arguments and environment are too long", path);
    default:
        return cp_err_set(err, CP_EIO, "hook \"%s\": cannot be started: %s", path, strerror(e));
    }
}

static enum cp_code start_child(const char *const *argv, const char *const *envp, int out_fd,
                                pid_t *pid_out, struct cp_err *err)
{
    enum cp_code rc = CP_EIO;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    bool fa_init = false, attr_init = false;
    sigset_t mask, defaults;
    int e;

    if ((e = posix_spawn_file_actions_init(&fa)) != 0)
        goto fail;
    fa_init = true;
    /* out_fd is above 2 (fd_high_cloexec), so these cannot clobber one another;
     * dup2 clears close-on-exec on the copies, exec closes the original. */
    if ((e = posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO)) != 0 ||
        (e = posix_spawn_file_actions_adddup2(&fa, out_fd, STDERR_FILENO)) != 0 ||
        (e = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0)) != 0)
        goto fail;

    if ((e = posix_spawnattr_init(&attr)) != 0)
        goto fail;
    attr_init = true;
    /* Own process group (so the timeout can signal everything the hook
     * started); no blocked signals; every signal at its default disposition,
     * since an ignored SIGPIPE or SIGINT would otherwise be inherited. */
    (void)sigemptyset(&mask);
    (void)sigfillset(&defaults);
    if ((e = posix_spawnattr_setpgroup(&attr, 0)) != 0 ||
        (e = posix_spawnattr_setsigmask(&attr, &mask)) != 0 ||
        (e = posix_spawnattr_setsigdefault(&attr, &defaults)) != 0 ||
        (e = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                                 POSIX_SPAWN_SETSIGDEF)) != 0)
        goto fail;

    /* posix_spawnp searches this process's PATH, not a PATH given in extra_env. */
    if (strchr(argv[0], '/') != NULL)
        e = posix_spawn(pid_out, argv[0], &fa, &attr, (char *const *)argv, (char *const *)envp);
    else
        e = posix_spawnp(pid_out, argv[0], &fa, &attr, (char *const *)argv, (char *const *)envp);
    if (e != 0) {
        rc = spawn_error(argv[0], e, err);
        goto out;
    }
    rc = CP_OK;
    goto out;

fail:
    rc = cp_err_set(err, e == ENOMEM ? CP_ENOMEM : CP_EIO, "hook \"%s\": cannot be started: %s",
                    argv[0], strerror(e));
out:
    if (attr_init)
        (void)posix_spawnattr_destroy(&attr);
    if (fa_init)
        (void)posix_spawn_file_actions_destroy(&fa);
    return rc;
}

/* Has the child ended?  Leaves it a zombie (WNOWAIT), keeping its PGID reserved. */
static bool child_ended(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == -1)
        return errno == ECHILD; /* someone else reaped it: nothing left to wait for */
    return si.si_pid == pid;
}

/* Read what is available now; keep up to HOOK_OUTPUT_MAX bytes, count the rest.
 * Returns true at end of file (or on a read error, which ends reading too). */
static bool drain(int fd, struct hook_result *out)
{
    char chunk[HOOK_READ_CHUNK];
    for (int i = 0; i < HOOK_READS_PER_TURN; i++) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n == 0)
            return true;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno != EAGAIN && errno != EWOULDBLOCK;
        }
        size_t got = (size_t)n;
        size_t room = HOOK_OUTPUT_MAX - out->output_len;
        size_t keep = got < room ? got : room;
        memcpy(out->output + out->output_len, chunk, keep);
        out->output_len += keep;
        out->output_dropped += got - keep;
    }
    return false;
}

/*
 * Collect output until the hook has ended and its output is closed, enforcing
 * the timeout; then reap it.  Never returns with the child unreaped unless it
 * survives SIGKILL for HOOK_KILL_WAIT_MS (stuck in the kernel).
 */
static enum cp_code supervise(pid_t pid, int fd, unsigned timeout_ms, struct hook_result *out,
                              struct cp_err *err, const char *name)
{
    const uint64_t start = now_ms();
    const uint64_t deadline = start + timeout_ms;
    bool eof = false, ended = false, terminating = false, killed = false;
    uint64_t ended_at = 0, term_at = 0, kill_at = 0;

    for (;;) {
        int wait_ms = HOOK_POLL_MS;
        if (!eof) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int pr = poll(&pfd, 1, wait_ms);
            if (pr > 0)
                eof = drain(fd, out);
            else if (pr < 0 && errno != EINTR)
                eof = true; /* cannot happen with a valid fd; stop reading, keep supervising */
        } else {
            (void)poll(NULL, 0, wait_ms);
        }

        uint64_t now = now_ms();
        if (!ended && child_ended(pid)) {
            ended = true;
            ended_at = now;
        }
        if (ended && (eof || killed))
            break;
        if (killed) {
            if (now - kill_at >= HOOK_KILL_WAIT_MS)
                return cp_err_set(err, CP_EIO,
                                  "hook \"%s\": still running %u ms after SIGKILL (pid %ld)", name,
                                  HOOK_KILL_WAIT_MS, (long)pid);
            continue;
        }
        if (terminating) {
            if (now - term_at >= HOOK_TERM_GRACE_MS) {
                (void)kill(-pid, SIGKILL);
                killed = true;
                kill_at = now;
            }
            continue;
        }
        if (now >= deadline) {
            out->timed_out = true;
            terminating = true;
            term_at = now;
            (void)kill(-pid, SIGTERM);
        } else if (ended && now - ended_at >= HOOK_LEFTOVER_GRACE_MS) {
            /* The hook is gone but something it started still holds the pipe:
             * stop waiting for it and end its process group. */
            terminating = true;
            term_at = now;
            (void)kill(-pid, SIGTERM);
        }
    }

    /* Read what is still buffered in the pipe (bounded by drain's per-turn limit). */
    if (!eof)
        (void)drain(fd, out);

    int status = 0;
    pid_t r;
    do
        r = waitpid(pid, &status, WNOHANG);
    while (r == -1 && errno == EINTR);
    if (r == pid) {
        if (WIFEXITED(status)) {
            out->exit_status = WEXITSTATUS(status);
        } else if (WIFSIGNALED(status)) {
            out->term_signal = WTERMSIG(status);
        }
    }
    return CP_OK;
}

enum cp_code hook_run(const char *const *argv, const char *const *extra_env, unsigned timeout_ms,
                      struct hook_result *out, struct cp_err *err)
{
    enum cp_code rc;
    const char **envp = NULL;
    int pipefd[2] = {-1, -1};
    pid_t pid = -1;

    if (out == NULL)
        return cp_err_set(err, CP_EINVAL, "hook_run: no result given");
    memset(out, 0, sizeof *out);
    out->exit_status = -1;
    if (argv == NULL || argv[0] == NULL || argv[0][0] == '\0')
        return cp_err_set(err, CP_EINVAL, "hook: no program given");
    if (timeout_ms == 0)
        timeout_ms = HOOK_DEFAULT_TIMEOUT_MS;

    out->output = malloc(HOOK_OUTPUT_MAX + 1);
    if (out->output == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "hook \"%s\": out of memory", argv[0]);
        goto out;
    }
    out->output[0] = '\0';

    rc = build_env(extra_env, &envp, err);
    if (rc != CP_OK)
        goto out;

    if (pipe(pipefd) == -1) {
        rc = cp_err_set(err, CP_EIO, "hook \"%s\": pipe: %s", argv[0], strerror(errno));
        goto out;
    }
    for (int i = 0; i < 2; i++) {
        pipefd[i] = fd_high_cloexec(pipefd[i]);
        if (pipefd[i] == -1) {
            rc = cp_err_set(err, CP_EIO, "hook \"%s\": pipe: %s", argv[0], strerror(errno));
            goto out;
        }
    }
    int fl = fcntl(pipefd[0], F_GETFL);
    if (fl == -1 || fcntl(pipefd[0], F_SETFL, fl | O_NONBLOCK) == -1) {
        rc = cp_err_set(err, CP_EIO, "hook \"%s\": pipe: %s", argv[0], strerror(errno));
        goto out;
    }

    rc = start_child(argv, envp, pipefd[1], &pid, err);
    if (rc != CP_OK)
        goto out;
    /* Only the child may hold the write end, or EOF would never come. */
    (void)close(pipefd[1]);
    pipefd[1] = -1;

    rc = supervise(pid, pipefd[0], timeout_ms, out, err, argv[0]);

out:
    if (out->output != NULL) {
        out->output[out->output_len] = '\0';
        if (out->output_len < HOOK_OUTPUT_MAX) {
            char *shrunk = realloc(out->output, out->output_len + 1);
            if (shrunk != NULL)
                out->output = shrunk;
        }
    }
    for (int i = 0; i < 2; i++) {
        if (pipefd[i] != -1)
            (void)close(pipefd[i]);
    }
    free(envp);
    return rc;
}

void hook_result_clear(struct hook_result *r)
{
    if (r == NULL)
        return;
    free(r->output);
    memset(r, 0, sizeof *r);
    r->exit_status = -1;
}

bool hook_succeeded(const struct hook_result *r)
{
    /* A hook that caught SIGTERM at the timeout and exited 0 did not succeed. */
    return r != NULL && !r->timed_out && r->term_signal == 0 && r->exit_status == 0;
}

/* Regular file, executable by us; names the path and the problem otherwise. */
static enum cp_code check_file(const char *shown, const char *path, struct cp_err *err)
{
    struct stat st;
    if (stat(path, &st) == -1) {
        if (errno == ENOENT || errno == ENOTDIR)
            return cp_err_set(err, CP_EIO, "hook \"%s\": not found", shown);
        return cp_err_set(err, CP_EIO, "hook \"%s\": %s", shown, strerror(errno));
    }
    if (S_ISDIR(st.st_mode))
        return cp_err_set(err, CP_EIO, "hook \"%s\": is a directory, not a program", shown);
    if (!S_ISREG(st.st_mode))
        return cp_err_set(err, CP_EIO, "hook \"%s\": is not a regular file", shown);
    if (access(path, X_OK) == -1)
        return cp_err_set(err, CP_EIO, "hook \"%s\": is not executable (%s)", shown,
                          strerror(errno));
    return CP_OK;
}

enum cp_code hook_check_executable(const char *path, struct cp_err *err)
{
    if (path == NULL || path[0] == '\0')
        return cp_err_set(err, CP_EINVAL, "hook: empty path");
    if (strchr(path, '/') != NULL)
        return check_file(path, path, err);

    /* No '/': hook_run() searches PATH (posix_spawnp), so look where it will. */
    const char *dirs = getenv("PATH");
    if (dirs == NULL)
        dirs = "/bin:/usr/bin";
    enum cp_code first = CP_OK;
    struct cp_err first_err;
    cp_err_clear(&first_err);
    for (const char *p = dirs;;) {
        const char *colon = strchr(p, ':');
        size_t dlen = colon != NULL ? (size_t)(colon - p) : strlen(p);
        char full[PATH_MAX];
        int n = -1;
        if (dlen == 0) /* an empty entry means the current directory */
            n = snprintf(full, sizeof full, "%s", path);
        else if (dlen < sizeof full)
            n = snprintf(full, sizeof full, "%.*s/%s", (int)dlen, p, path);
        if (n > 0 && (size_t)n < sizeof full) {
            struct stat st;
            if (stat(full, &st) == 0) {
                struct cp_err e;
                enum cp_code rc = check_file(full, full, &e);
                if (rc == CP_OK)
                    return CP_OK;
                if (first == CP_OK) { /* execvp would go on; report the first near miss */
                    first = rc;
                    first_err = e;
                }
            }
        }
        if (colon == NULL)
            break;
        p = colon + 1;
    }
    if (first != CP_OK)
        return cp_err_set(err, first, "%s", first_err.msg);
    return cp_err_set(err, CP_EIO, "hook \"%s\": not found in PATH", path);
}
