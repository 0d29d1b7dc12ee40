/*
 * cli/options.c - option hygiene shared by every command: getopt_long takes
 * any unique prefix of a long option ("--force-renew" for
 * "--force-renewal"), which hides typos and breaks when an option is added.
 * Before a command's getopt_long loop runs, cli_options_exact() checks that
 * each long option on its command line is spelled in full and, when one is
 * not, names it and suggests the closest option it knows.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

/* Levenshtein distance of a[0..la) and b[0..lb); names are short, so a
 * bound keeps the table on the stack (longer ones count as far apart). */
size_t cli_edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    enum { MAXLEN = 64 };
    size_t row[MAXLEN + 1];
    if (la > MAXLEN || lb > MAXLEN)
        return (size_t)-1;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *cli_option_suggest(const char *given, size_t len, const struct option *opts)
{
    const char *prefix_of = NULL, *closest = NULL;
    size_t nprefix = 0, best = 3; /* suggest at distance 2 at most */
    for (const struct option *o = opts; o->name != NULL; o++) {
        size_t ol = strlen(o->name);
        if (len > 0 && len < ol && strncmp(given, o->name, len) == 0) {
            nprefix++;
            prefix_of = o->name;
        }
        size_t d = cli_edit_distance(given, len, o->name, ol);
        if (d < best) {
            best = d;
            closest = o->name;
        }
    }
    if (nprefix == 1)
        return prefix_of;
    return closest;
}

static const struct option *find_long(const struct option *opts, const char *name, size_t len)
{
    for (const struct option *o = opts; o->name != NULL; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

int cli_options_find_inexact(int argc, char *const *argv, const char *shortopts,
                             const struct option *longopts)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            return -1;
        if (a[0] != '-' || a[1] == '\0')
            continue; /* an operand (getopt_long moves them after the options) */
        if (a[1] == '-') {
            size_t len = strcspn(a + 2, "=");
            const struct option *o = find_long(longopts, a + 2, len);
            if (o == NULL)
                return i;
            if (o->has_arg == required_argument && a[2 + len] == '\0')
                i++; /* its value, whatever it looks like */
            continue;
        }
        /* A cluster of short options: one taking a value ends it. */
        for (const char *p = a + 1; *p != '\0'; p++) {
            const char *s = *p == ':' ? NULL : strchr(shortopts, *p);
            if (s != NULL && s[1] == ':') {
                if (p[1] == '\0')
                    i++;
                break;
            }
        }
    }
    return -1;
}

/* `certpilot COMMAND --list-options`: the long options of the table, one a
 * line, "--name" for a flag, "--name=" when it takes a value, "--name[=]"
 * when the value is optional: what the shell completions offer. */
static void list_options(const struct option *longopts)
{
    for (const struct option *o = longopts; o->name != NULL; o++)
        printf("--%s%s\n", o->name,
               o->has_arg == required_argument   ? "="
               : o->has_arg == optional_argument ? "[=]"
                                                 : "");
    fflush(stdout);
}

int cli_options_exact(int argc, char *const *argv, const char *shortopts,
                      const struct option *longopts, const char *command)
{
    for (int k = 1; k < argc && strcmp(argv[k], "--") != 0; k++)
        if (strcmp(argv[k], "--list-options") == 0) {
            list_options(longopts);
            exit(CLI_EXIT_OK);
        }
    int i = cli_options_find_inexact(argc, argv, shortopts, longopts);
    if (i < 0)
        return 0;
    const char *name = argv[i] + 2;
    size_t len = strcspn(name, "=");
    const char *s = cli_option_suggest(name, len, longopts);
    if (s != NULL)
        cli_error("unknown option \"--%.*s\": did you mean --%s? (see certpilot %s --help)",
                  (int)len, name, s, command);
    else
        cli_error("unknown option \"--%.*s\" (see certpilot %s --help)", (int)len, name, command);
    return CLI_EXIT_USAGE;
}

/* certbot's key options mapped onto certpilot's key types. */
int cli_key_type_resolve(const char *type, const char *curve, const char *rsa_size,
                         enum acme_key_type *out, char *msg, size_t size)
{
    enum acme_key_type from_curve = ACME_KEY_EC256, from_size = ACME_KEY_RSA2048, t;
    struct cp_err err = {0};
    if (curve != NULL) {
        if (strcmp(curve, "secp256r1") == 0)
            from_curve = ACME_KEY_EC256;
        else if (strcmp(curve, "secp384r1") == 0)
            from_curve = ACME_KEY_EC384;
        else {
            snprintf(msg, size, "--elliptic-curve \"%s\": use secp256r1 or secp384r1", curve);
            return -1;
        }
    }
    if (rsa_size != NULL) {
        if (strcmp(rsa_size, "2048") == 0)
            from_size = ACME_KEY_RSA2048;
        else if (strcmp(rsa_size, "3072") == 0)
            from_size = ACME_KEY_RSA3072;
        else if (strcmp(rsa_size, "4096") == 0)
            from_size = ACME_KEY_RSA4096;
        else {
            snprintf(msg, size, "--rsa-key-size \"%s\": use 2048, 3072 or 4096", rsa_size);
            return -1;
        }
    }
    if (curve != NULL && rsa_size != NULL) {
        snprintf(msg, size,
                 "--elliptic-curve (an ECDSA key) and --rsa-key-size (an RSA key) "
                 "exclude each other");
        return -1;
    }
    if (type == NULL) { /* certbot: each implies its family */
        if (curve != NULL)
            *out = from_curve;
        else if (rsa_size != NULL)
            *out = from_size;
        return 0;
    }
    bool ecdsa = strcmp(type, "ecdsa") == 0, rsa = strcmp(type, "rsa") == 0;
    if (ecdsa || rsa) {
        if ((ecdsa && rsa_size != NULL) || (rsa && curve != NULL)) {
            snprintf(msg, size, "--key-type %s does not go with %s", type,
                     ecdsa ? "--rsa-key-size" : "--elliptic-curve");
            return -1;
        }
        *out = ecdsa ? from_curve : from_size;
        return 0;
    }
    if (acme_key_type_parse(type, &t, &err) != CP_OK) {
        snprintf(msg, size, "--key-type: %s (or ecdsa, rsa)", err.msg);
        return -1;
    }
    bool is_ec = t == ACME_KEY_EC256 || t == ACME_KEY_EC384;
    if ((curve != NULL && (!is_ec || t != from_curve)) ||
        (rsa_size != NULL && (is_ec || t != from_size))) {
        snprintf(msg, size, "--key-type %s does not go with %s %s", type,
                 curve ? "--elliptic-curve" : "--rsa-key-size", curve ? curve : rsa_size);
        return -1;
    }
    *out = t;
    return 0;
}

bool cli_help_asked(int argc, char *const *argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}
