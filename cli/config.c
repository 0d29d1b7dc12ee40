/*
 * cli/config.c - "key = value" files (the defaults file and each
 * certificate's renewal.conf), and turning them into long options.
 *
 * Syntax (read by common/conf.c): one setting per line; blank lines and lines starting with '#' are
 * skipped; the key is a long option name of `certpilot issue`, the value is
 * the rest of the line after '=', trimmed, taken literally (no quoting, no
 * variables).  Flags take yes/no.  A key may repeat; what that means is up to
 * the option (names and resolvers add up, other settings: the last wins).
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/conf.h"
#include "common/file.h"

#define CONF_FILE_MAX (256 * 1024)
#define CONF_LINE_MAX CP_CONF_LINE_MAX

static enum cp_code add_entry(void *ctx, const char *key, const char *value, unsigned line,
                              struct cp_err *err)
{
    struct cli_conf *c = ctx;
    struct cli_conf_entry *e = realloc(c->e, (c->n + 1) * sizeof *e);
    if (e == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    c->e = e;
    e = &c->e[c->n];
    e->key = strdup(key);
    e->value = strdup(value);
    e->line = line;
    if (e->key == NULL || e->value == NULL) {
        free(e->key);
        free(e->value);
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    }
    c->n++;
    return CP_OK;
}

/* The syntax is common/conf.c's, shared with the flows. */
enum cp_code cli_conf_parse(const char *path, const char *text, size_t len, struct cli_conf *out,
                            struct cp_err *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", path);
    enum cp_code rc = cp_conf_scan(path, text, len, add_entry, out, err);
    if (rc != CP_OK)
        cli_conf_clear(out);
    return rc;
}

enum cp_code cli_conf_load(const char *path, bool missing_ok, struct cli_conf *out,
                           struct cp_err *err)
{
    char *text = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", path);
    if (missing_ok && access(path, F_OK) != 0 && errno == ENOENT)
        return CP_OK;
    enum cp_code rc = cp_file_read(path, CONF_FILE_MAX, &text, &len, err);
    if (rc == CP_OK)
        rc = cli_conf_parse(path, text, len, out, err);
    free(text);
    return rc;
}

enum cp_code cli_conf_load_lineage(struct cp_store *st, const char *name, struct cli_conf *out,
                                   struct cp_err *err)
{
    char *text = NULL, label[sizeof out->path];
    size_t len = 0;
    memset(out, 0, sizeof *out);
    enum cp_code rc = store_settings_load(st, name, &text, &len, label, sizeof label, err);
    if (rc == CP_OK)
        snprintf(out->path, sizeof out->path, "%s", label);
    if (rc == CP_OK && text != NULL)
        rc = cli_conf_parse(label, text, len, out, err);
    free(text);
    return rc;
}

void cli_conf_clear(struct cli_conf *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->e[i].key);
        free(c->e[i].value);
    }
    free(c->e);
    c->e = NULL;
    c->n = 0;
}

const char *cli_conf_get(const struct cli_conf *c, const char *key)
{
    for (size_t i = c->n; i-- > 0;)
        if (strcmp(c->e[i].key, key) == 0)
            return c->e[i].value;
    return NULL;
}

static bool in_list(const char *const *list, const char *s)
{
    for (; list != NULL && *list != NULL; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

enum cp_code cli_args_add(struct cli_args *a, const char *arg, const char *origin)
{
    if (a->argc + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        char **v = realloc(a->argv, cap * sizeof *v);
        if (v == NULL)
            return CP_ENOMEM;
        a->argv = v;
        char **o = realloc(a->origin, cap * sizeof *o);
        if (o == NULL)
            return CP_ENOMEM;
        a->origin = o;
        a->cap = cap;
    }
    a->argv[a->argc] = strdup(arg);
    a->origin[a->argc] = origin ? strdup(origin) : NULL;
    if (a->argv[a->argc] == NULL) {
        free(a->origin[a->argc]);
        return CP_ENOMEM;
    }
    a->argc++;
    a->argv[a->argc] = NULL;
    a->origin[a->argc] = NULL;
    return CP_OK;
}

void cli_args_clear(struct cli_args *a)
{
    for (size_t i = 0; i < a->argc; i++) {
        free(a->argv[i]);
        free(a->origin[i]);
    }
    free(a->argv);
    free(a->origin);
    memset(a, 0, sizeof *a);
}

static const struct option *find_option(const struct option *opts, const char *name)
{
    for (; opts->name != NULL; opts++)
        if (strcmp(opts->name, name) == 0)
            return opts;
    return NULL;
}

enum cp_code cli_conf_to_args(const struct cli_conf *c, const struct option *opts,
                              const char *const *refused, const char *const *skip,
                              struct cli_args *a, struct cp_err *err)
{
    char arg[CONF_LINE_MAX + 64], origin[4200];
    for (size_t i = 0; i < c->n; i++) {
        const struct cli_conf_entry *e = &c->e[i];
        const struct option *o = find_option(opts, e->key);
        if (o == NULL || o->has_arg == optional_argument || in_list(refused, e->key))
            return cp_err_set(err, CP_EINVAL,
                              "%s:%u: \"%s\" is not a setting this file can hold (see "
                              "CONFIGURATION in certpilot(1))",
                              c->path, e->line, e->key);
        if (in_list(skip, e->key))
            continue;
        snprintf(origin, sizeof origin, "%s:%u", c->path, e->line);
        if (o->has_arg == no_argument) {
            const char *v = e->value;
            bool yes = strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "on") == 0 ||
                       strcmp(v, "1") == 0;
            bool no = strcmp(v, "no") == 0 || strcmp(v, "false") == 0 || strcmp(v, "off") == 0 ||
                      strcmp(v, "0") == 0;
            if (!yes && !no)
                return cp_err_set(err, CP_EINVAL, "%s: %s = \"%s\": use yes or no", origin, e->key,
                                  v);
            if (no)
                continue;
            snprintf(arg, sizeof arg, "--%s", e->key);
        } else {
            if (e->value[0] == '\0')
                return cp_err_set(err, CP_EINVAL, "%s: %s has no value", origin, e->key);
            snprintf(arg, sizeof arg, "--%s=%s", e->key, e->value);
        }
        if (cli_args_add(a, arg, origin) != CP_OK)
            return cp_err_set(err, CP_ENOMEM, "out of memory");
    }
    return CP_OK;
}

const char *cli_hooks_dir(const char *config, char *buf, size_t size)
{
    const char *path = config != NULL ? config : CLI_DEFAULT_CONFIG;
    const char *slash = strrchr(path, '/');
    /* "config" alone is in the current directory; "/config" in "/". */
    int dirlen = slash == NULL ? 1 : slash == path ? 0 : (int)(slash - path);
    int n = snprintf(buf, size, "%.*s/hooks.d", dirlen, slash == NULL ? "." : path);
    return n < 0 || (size_t)n >= size ? NULL : buf;
}
