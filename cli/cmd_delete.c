/*
 * cli/cmd_delete.c - `certpilot delete`: remove one certificate lineage from
 * the state directory, after saying exactly what goes.
 *
 * Only STATE/certs/NAME is touched: accounts and the other lineages stay.
 * What goes and the removal itself (no symbolic link followed, hidden first)
 * are flow_delete_plan() and flow_delete_run() in flow/revoke.c; here: the
 * options, the confirmation and what is printed.  Deleting does not revoke:
 * the CA still counts the certificate valid until it expires.
 */
#include "cli/cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DELETE_LOCK_TIMEOUT 300 /* seconds, as issue waits for a renew run */

static void usage(FILE *f)
{
    fputs("usage: certpilot delete --cert-name NAME [--yes]\n"
          "         [--config FILE] [--state-dir DIR] [-v] [-q/--quiet] [--json]\n"
          "Removes the certificate lineage NAME from the state directory: every version\n"
          "of its key and certificate, its links, renewal.conf and status.json.  Accounts\n"
          "and other certificates are not touched, and the certificate is not revoked\n"
          "(certpilot revoke --cert-name NAME --delete-after-revoke does both).\n"
          "What will be removed is listed first; on a terminal you are asked to confirm.\n"
          "  --yes          do not ask (needed when standard input is not a terminal)\n"
          "  --config FILE  state-dir default (default /etc/certpilot/config, if it exists)\n"
          "Exit: 0 deleted; 1 not confirmed; 64 bad options, no such lineage, or no\n"
          "terminal to confirm on and no --yes; 77 the lineage is unsafe to touch.\n",
          f);
}

struct del {
    struct cli_common common;
    struct cli_conf defaults;
    const char *cert_name;
    bool yes;
};

static int parse_args(struct del *d, int argc, char **argv)
{
    static const struct option opts[] = {
        {"cert-name", required_argument, NULL, 'n'},
        {"yes", no_argument, NULL, 'y'},
        {"config", required_argument, NULL, 2010},
        {"state-dir", required_argument, NULL, 1003},
        CLI_STORE_LONGOPTS,
        CLI_OUTPUT_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    if (cli_options_exact(argc, argv, ":hvqy", opts, "delete") != 0)
        return CLI_EXIT_USAGE;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":hvqy", opts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            if (!store_name_valid(optarg)) {
                cli_error("--cert-name \"%s\": use letters, digits, '.', '-' and '_'", optarg);
                return CLI_EXIT_USAGE;
            }
            d->cert_name = optarg;
            break;
        case 'y': d->yes = true; break;
        case 2010: break; /* read by cli_defaults_load() */
        case 'h': usage(stdout); return -1;
        default:
            if (ch != ':' && ch != '?' && cli_common_option(&d->common, ch, optarg))
                break;
            cli_error("unknown option or missing value: \"%s\" (see certpilot delete --help)",
                      argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("unexpected argument \"%s\": name the lineage with --cert-name", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (d->cert_name == NULL) {
        cli_error("say which certificate to delete: --cert-name NAME ('certpilot list' shows "
                  "the names)");
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* Exactly what goes, on `f`. */
static void say_plan(FILE *f, const struct del *d, const struct flow_delete_plan *plan)
{
    const struct store_contents *list = &plan->list;
    const json_t *names = plan->names;
    const char *revoked = plan->revoked;
    fprintf(f, "The certificate lineage %s (%s) will be deleted:\n", d->cert_name, plan->live);
    if (json_array_size(names) > 0) {
        fputs("  names:   ", f);
        for (size_t i = 0; i < json_array_size(names); i++)
            fprintf(f, "%s%s", i ? " " : "", json_string_value(json_array_get(names, i)));
        fputc('\n', f);
    }
    fprintf(f, "  status:  %s\n", revoked[0] ? revoked : "not revoked by certpilot");
    fprintf(f, "  %zu file%s, %zu symbolic link%s (removed, never followed), %zu director%s:\n",
            list->files, list->files == 1 ? "" : "s", list->links, list->links == 1 ? "" : "s",
            list->dirs, list->dirs == 1 ? "y" : "ies");
    for (size_t i = 0; i < list->n; i++)
        fprintf(f, "    %s%s%s\n", list->e[i].path, list->e[i].target ? " -> " : "",
                list->e[i].target ? list->e[i].target : "");
    fputs("  Accounts and other certificates stay as they are.\n", f);
}

/* On a terminal: yes or no.  True only for "y" or "yes". */
static bool confirmed(const char *name)
{
    char line[64];
    fprintf(stderr, "Delete %s? [y/N] ", name);
    fflush(stderr);
    if (fgets(line, sizeof line, stdin) == NULL)
        return false;
    line[strcspn(line, "\r\n")] = '\0';
    return strcmp(line, "y") == 0 || strcmp(line, "Y") == 0 || strcmp(line, "yes") == 0 ||
           strcmp(line, "YES") == 0;
}

int cmd_delete(int argc, char **argv)
{
    struct del d = {0};
    struct flow_delete_plan plan = {0};
    struct cp_err err = {0};
    size_t removed = 0;
    bool parsed = false;

    cli_common_init(&d.common);
    int status = cli_defaults_load(argc, argv, &d.defaults, &d.common);
    if (status == 0)
        status = parse_args(&d, argc, argv);
    if (status != 0)
        goto out;
    cli_output_setup(&d.common);
    parsed = true;
    d.common.server = CLI_LE_PRODUCTION; /* unused; cli_common_finish wants one */
    status = cli_common_finish(&d.common);
    if (status == 0)
        status = cli_store_lock(&d.common, DELETE_LOCK_TIMEOUT);
    if (status != 0)
        goto out;
    if (flow_delete_plan(d.common.store, d.cert_name, &plan, &err) != CP_OK) {
        cli_error("%s", err.msg);
        status = err.code == CP_EINVAL    ? CLI_EXIT_USAGE
                 : err.code == CP_EUNSAFE ? CLI_EXIT_UNSAFE
                 : err.code == CP_ENOMEM  ? CLI_EXIT_SOFTWARE
                                          : CLI_EXIT_IO;
        goto out;
    }
    /* With --json, stdout carries the one JSON object: the list goes to
     * stderr.  So it does with --quiet when a question is asked: what the
     * answer deletes is always shown with the question. */
    bool asking = !d.yes && isatty(STDIN_FILENO);
    say_plan(d.common.json || (d.common.quiet && asking) ? stderr : stdout, &d, &plan);
    if (!d.yes) {
        if (!isatty(STDIN_FILENO)) {
            cli_error("not deleting %s without confirmation: standard input is not a terminal; "
                      "add --yes to delete it",
                      d.cert_name);
            status = CLI_EXIT_USAGE;
            goto out;
        }
        fflush(stdout);
        if (!confirmed(d.cert_name)) {
            fprintf(d.common.json ? stderr : stdout, "Nothing was deleted.\n");
            status = CLI_EXIT_DECLINED;
            goto out;
        }
    }
    if (flow_delete_run(d.common.store, d.cert_name, &removed, &err) != CP_OK) {
        cli_error("%s", err.msg);
        status = err.code == CP_EUNSAFE ? CLI_EXIT_UNSAFE : CLI_EXIT_IO;
        goto out;
    }
    if (d.common.json) {
        json_t *paths = json_array();
        for (size_t i = 0; paths != NULL && i < plan.list.n; i++)
            json_array_append_new(paths, json_string(plan.list.e[i].path));
        json_t *j = json_pack("{s:s, s:s, s:b, s:O, s:o, s:I}", "cert_name", d.cert_name, "path",
                              plan.live, "deleted", 1, "names", plan.names, "removed",
                              paths ? paths : json_array(), "entries", (json_int_t)removed);
        cli_json_result(j, "deleted", 0);
    } else {
        printf("Deleted %s (%zu entries removed).\n", d.cert_name, removed);
    }
out:
    if (status != 0 && parsed && d.common.json) {
        json_t *j = json_pack("{s:s, s:b, s:s}", "cert_name", d.cert_name, "deleted", 0, "message",
                              cli_last_error());
        cli_json_result(j, status == CLI_EXIT_DECLINED ? "declined" : "failed", status);
    }
    flow_delete_plan_clear(&plan);
    cli_conf_clear(&d.defaults);
    cli_common_clear(&d.common);
    return status < 0 ? CLI_EXIT_OK : status;
}
