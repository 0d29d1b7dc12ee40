/*
 * flow/hooks.c - running the user's hooks, with their output in the flow's
 * log.
 *
 * A hook command (--pre-hook, --post-hook, --deploy-hook) is words separated
 * by spaces or tabs: the program, then its arguments.  They are passed as an
 * argv to hooks/ (posix_spawn, no shell), so nothing in them is expanded or
 * interpreted; anything fancier belongs in a script.  A dehydrated hook gets
 * one command of its protocol and that command's arguments.
 */
#include "flow/flow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hooks/hooks.h"

#define HOOK_WORDS_MAX 64

/* Split `command` into words in `buf`; argv NULL-terminated; count or -1. */
static int split_words(const char *command, char *buf, size_t size, const char **argv)
{
    if (strlen(command) >= size)
        return -1;
    strcpy(buf, command);
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

bool flow_hook_command(const struct flow_log *log, const char *what, const char *command,
                       const char *const *env)
{
    char buf[4096];
    const char *argv[HOOK_WORDS_MAX + 1];
    struct hook_result hr = {0};
    struct cp_err err = {0};

    if (split_words(command, buf, sizeof buf, argv) <= 0) {
        flow_say(log, FLOW_ERR,
                 "%s \"%s\": write a program and its arguments, separated by spaces (at most "
                 "%d words)",
                 what, command, HOOK_WORDS_MAX);
        return false;
    }
    flow_say(log, FLOW_INFO, "running %s: %s", what, command);
    if (hook_run(argv, env, 0, &hr, &err) != CP_OK) {
        flow_say(log, FLOW_ERR, "%s: %s", what, err.msg);
        return false;
    }
    bool ok = report(log, what, argv[0], &hr);
    hook_result_clear(&hr);
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
        return false;
    }
    bool ok = report(log, what, hook, &hr);
    hook_result_clear(&hr);
    return ok;
}
