/*
 * cli/cmd_import_certbot.c - `certpilot import certbot`: certbot's accounts,
 * certificates and hooks into certpilot (flow/import_certbot.c does the
 * reading and writing), then what to do so that only one client renews.
 */
#define _DEFAULT_SOURCE /* realpath() */
#include "cli/cli.h"

#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define CERTBOT_DIR         "/etc/letsencrypt"
#define NAMES_MAX           100
#define IMPORT_LOCK_TIMEOUT 300 /* seconds to wait for a renew run to finish */

static void usage(FILE *f)
{
    fputs("usage: certpilot import certbot [--config-dir DIR] [--cert-name NAME]...\n"
          "         [--keep-live-paths] [--dry-run] [--state-dir DIR] [--config FILE]\n"
          "         [--json] [--quiet]\n"
          "\n"
          "Copy certbot's accounts (their URLs kept: nothing is registered again), its\n"
          "certificates (current key and certificate: nothing is reissued; settings from\n"
          "renewal/NAME.conf, hooks as sh: command lines) and the executables of\n"
          "renewal-hooks/{pre,post,deploy}/ (into hooks.d next to --config).  certbot's\n"
          "files are only read; what is already imported is left as it is, so running it\n"
          "again changes nothing.\n"
          "  --config-dir DIR    certbot's configuration directory (default " CERTBOT_DIR ")\n"
          "  --cert-name NAME    only this certificate and its account (repeatable)\n"
          "  --keep-live-paths   each renewal also writes the certificate's files into\n"
          "                      certbot's live/NAME (install-dir in its renewal.conf), so\n"
          "                      servers configured for certbot need no change\n"
          "  --dry-run           say what would be imported; write nothing\n"
          "  --state-dir DIR     certpilot's state directory (default: the defaults\n"
          "                      file's state-dir, else certpilot's own default)\n"
          "  --config FILE       certpilot's defaults file (default " CLI_DEFAULT_CONFIG ");\n"
          "                      hooks go to hooks.d next to it\n"
          "  --json              the report as one JSON object\n"
          "  -q, --quiet         print nothing unless something cannot be imported\n"
          "Exit status: 0 when everything is imported or already there, 1 when something\n"
          "was left alone or cannot be imported (each said, with why).\n",
          f);
}

static const struct option options[] = {
    {"config-dir", required_argument, NULL, 'D'},
    {"cert-name", required_argument, NULL, 'n'},
    {"keep-live-paths", no_argument, NULL, 'K'},
    {"dry-run", no_argument, NULL, 'N'},
    {"state-dir", required_argument, NULL, 'S'},
    {"config", required_argument, NULL, 'c'},
    {"help", no_argument, NULL, 'h'},
    CLI_STORE_LONGOPTS,
    CLI_OUTPUT_LONGOPTS,
    {NULL, 0, NULL, 0},
};

/* What to do after an import so that certbot and certpilot do not both
 * renew, and so that servers use the imported files. */
static void next_steps(const struct flow_import_report *r, const struct cli_common *c,
                       const char *config_dir, bool keep_live)
{
    struct cp_store *st = c->store;
    char live[4400];
    struct cp_err err = {0};
    const char *name = NULL;
    for (size_t i = 0; i < r->n && name == NULL; i++)
        if (strcmp(r->items[i].kind, "certificate") == 0 &&
            r->items[i].action != FLOW_IMPORT_SKIPPED && r->items[i].action != FLOW_IMPORT_CONFLICT)
            name = r->items[i].name;
    if (name == NULL)
        return;
    printf("\nNext steps%s:\n", r->dry ? " (after the real import)" : "");
    printf("  1. Stop certbot renewing too:  systemctl disable --now certbot.timer\n"
           "     (without systemd: remove or comment out /etc/cron.d/certbot)\n");
    if (keep_live)
        printf("  2. Servers keep using %s/live/NAME/: certpilot writes each renewal there.\n",
               config_dir);
    else if (store_lineage_dir(st, name, live, sizeof live, &err) == CP_OK)
        printf("  2. Point servers at certpilot's files, e.g. %s/fullchain.pem and\n"
               "     privkey.pem (certs/NAME/ in the state directory), or import again\n"
               "     with --keep-live-paths to keep certbot's live/ paths.\n",
               live);
    /* The local state directory, also with a shared store (whose URL
     * store_where() gives): renew needs both then. */
    printf("  3. Check that renewal works:  certpilot renew --dry-run --state-dir %s\n",
           c->state_dir);
    if (store_shared(st))
        printf("     with the same --store options as this import (--store %s ...)\n",
               c->store_url);
}

int cmd_import_certbot(int argc, char **argv)
{
    const char *config_dir = CERTBOT_DIR, *config = NULL;
    const char *names[NAMES_MAX];
    size_t nnames = 0;
    bool dry = false, keep_live = false;
    struct cli_common c;
    struct flow_import_report report = {0};
    struct cli_conf defaults = {0};
    char real[PATH_MAX], hooks[4096];
    struct cp_err err = {0};
    int status = 0, ch;

    cli_common_init(&c);
    if (cli_options_exact(argc, argv, ":hqv", options, "import certbot") != 0)
        return CLI_EXIT_USAGE;
    /* The defaults file's state-dir is where renew will look: import there. */
    status = cli_defaults_load(argc, argv, &defaults, &c);
    if (status != 0)
        goto out;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":hqv", options, NULL)) != -1) {
        switch (ch) {
        case 'D': config_dir = optarg; break;
        case 'n':
            if (nnames == NAMES_MAX) {
                cli_error("import certbot: at most %d --cert-name", NAMES_MAX);
                status = CLI_EXIT_USAGE;
                goto out;
            }
            names[nnames++] = optarg;
            break;
        case 'K': keep_live = true; break;
        case 'N': dry = true; break;
        case 'S': c.state_dir = optarg; break;
        case 'c': config = optarg; break;
        case 'h':
            usage(stdout);
            status = CLI_EXIT_OK;
            goto out;
        default:
            if (ch != ':' && ch != '?' && cli_common_option(&c, ch, optarg))
                break;
            status = cli_option_error(ch, argv, "import certbot", NULL);
            goto out;
        }
    }
    cli_output_setup(&c);
    if (optind < argc) {
        cli_error("import certbot: unexpected argument \"%s\" (certbot's directory is given "
                  "with --config-dir)",
                  argv[optind]);
        status = CLI_EXIT_USAGE;
        goto out;
    }
    /* Absolute: the paths are written into renewal.conf and the report. */
    if (realpath(config_dir, real) == NULL) {
        cli_error("import certbot: %s: no such directory (certbot's configuration directory: "
                  "--config-dir)",
                  config_dir);
        status = CLI_EXIT_CONFIG;
        goto out;
    }
    if (cli_hooks_dir(config, hooks, sizeof hooks) == NULL) {
        cli_error("import certbot: --config %s: path too long", config);
        status = CLI_EXIT_USAGE;
        goto out;
    }
    status = cli_common_finish(&c);
    if (status == 0 && !dry)
        status = cli_store_lock(&c, IMPORT_LOCK_TIMEOUT);
    if (status != 0)
        goto out;

    report.dry = dry;
    struct flow_certbot_import req = {.config_dir = real,
                                      .names = names,
                                      .nnames = nnames,
                                      .hooks_dir = hooks,
                                      .keep_live_paths = keep_live};
    enum cp_code rc = flow_import_certbot(c.store, &req, &report, &err);
    if (rc != CP_OK) {
        if (rc == CP_EINVAL) {
            cli_error("import certbot: %s", err.msg);
            status = CLI_EXIT_CONFIG;
        } else {
            status = cli_store_fail(&err);
        }
        goto out;
    }
    status = cli_import_report(&report, "certbot", &c);
    if (!c.json && !c.quiet)
        next_steps(&report, &c, real, keep_live);
out:
    flow_import_report_clear(&report);
    cli_common_clear(&c);
    cli_conf_clear(&defaults);
    return status;
}
