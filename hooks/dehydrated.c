/*
 * hooks/dehydrated.c - the dehydrated hook protocol on top of hook_run().
 *
 * A dehydrated hook is one executable; the first argument names the event and
 * the rest are that event's positional arguments.  The commands and their
 * arguments, as dehydrated's documentation (docs/examples/hook.sh) describes
 * them:
 *
 *   deploy_challenge DOMAIN TOKEN_FILENAME TOKEN_VALUE
 *       Once per name to validate (alternative names included), before the CA
 *       is asked to check.  For dns-01, TOKEN_VALUE is the content of the TXT
 *       record at _acme-challenge.DOMAIN; for http-01 it is the body to serve
 *       at /.well-known/acme-challenge/TOKEN_FILENAME.
 *   clean_challenge DOMAIN TOKEN_FILENAME TOKEN_VALUE
 *       After each validation attempt, successful or not: remove what
 *       deploy_challenge put in place.
 *   deploy_cert DOMAIN KEYFILE CERTFILE FULLCHAINFILE CHAINFILE TIMESTAMP
 *       Once per newly issued certificate; DOMAIN is its primary name, the
 *       files are paths, TIMESTAMP is when it was made (Unix seconds).
 *   unchanged_cert DOMAIN KEYFILE CERTFILE FULLCHAINFILE CHAINFILE
 *       Once per certificate that was still valid and so not renewed.
 *   invalid_challenge DOMAIN RESPONSE
 *       A challenge failed; RESPONSE is what the CA's validation returned.
 *   request_failure STATUSCODE REASON REQTYPE HEADERS
 *       An HTTP request to the CA got a non-2xx status; REQTYPE is the
 *       method, HEADERS the response headers.
 *   startup_hook
 *       Before a run starts its work (e.g. to start a web server).
 *   exit_hook [ERROR]
 *       At the end of a run; ERROR is the error message if the run failed.
 *
 * dehydrated also knows sync_cert, deploy_ocsp and generate_csr.  With
 * HOOK_CHAIN=yes it passes the triples of every name to one deploy_challenge
 * (or clean_challenge) call.  Hooks are expected to ignore commands they do
 * not know and exit 0: dehydrated checks this by calling them with a made-up
 * command word.
 */
#include "hooks/hooks.h"

#include <stdlib.h>
#include <string.h>

#define HOOK_DEHYDRATED_ARGS_MAX 256 /* HOOK_CHAIN with many names: 3 per name */

enum cp_code hook_dehydrated(const char *hook, const char *command, const char *const *args,
                             size_t nargs, const char *const *extra_env, unsigned timeout_ms,
                             struct hook_result *out, struct cp_err *err)
{
    enum cp_code rc;
    const char **argv = NULL;

    if (out == NULL)
        return cp_err_set(err, CP_EINVAL, "dehydrated hook: no result given");
    /* As hook_run() does, so that hook_result_clear() is safe after any return. */
    memset(out, 0, sizeof *out);
    out->exit_status = -1;
    if (hook == NULL || hook[0] == '\0')
        return cp_err_set(err, CP_EINVAL, "dehydrated hook: no program given");
    if (command == NULL || command[0] == '\0')
        return cp_err_set(err, CP_EINVAL, "dehydrated hook \"%s\": no command given", hook);
    if (nargs > HOOK_DEHYDRATED_ARGS_MAX)
        return cp_err_set(err, CP_EINVAL, "dehydrated hook \"%s\" %s: %zu arguments (at most %d)",
                          hook, command, nargs, HOOK_DEHYDRATED_ARGS_MAX);
    if (nargs > 0 && args == NULL)
        return cp_err_set(err, CP_EINVAL, "dehydrated hook \"%s\" %s: arguments missing", hook,
                          command);
    for (size_t i = 0; i < nargs; i++) {
        if (args[i] == NULL)
            return cp_err_set(err, CP_EINVAL, "dehydrated hook \"%s\" %s: argument %zu is NULL",
                              hook, command, i + 1);
    }

    argv = calloc(nargs + 3, sizeof *argv);
    if (argv == NULL)
        return cp_err_set(err, CP_ENOMEM, "dehydrated hook \"%s\": out of memory", hook);
    argv[0] = hook;
    argv[1] = command;
    for (size_t i = 0; i < nargs; i++)
        argv[2 + i] = args[i];
    argv[nargs + 2] = NULL;

    rc = hook_run(argv, extra_env, timeout_ms, out, err);
    free(argv);
    return rc;
}
