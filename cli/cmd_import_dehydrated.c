/*
 * cli/cmd_import_dehydrated.c - `certpilot import dehydrated`: dehydrated's
 * accounts, certificates and settings into the state directory
 * (flow_import_dehydrated(), flow/import_dehydrated.c), dehydrated's own
 * files only read; then what to do next.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IMPORT_LOCK_TIMEOUT 300 /* seconds, as issue waits for a renew run */
#define CERT_NAMES_MAX      256

static void usage(FILE *f)
{
    fputs("usage: certpilot import dehydrated [--basedir DIR] [--dehydrated-config FILE]\n"
          "         [--cert-name NAME]... [--dry-run] [--config FILE] [--state-dir DIR]\n"
          "         [--quiet] [-v] [--json]\n"
          "Copies dehydrated's accounts (key, and URL when dehydrated stored it),\n"
          "certificates (current key, certificate and chain: nothing is reissued) and\n"
          "their settings (CA, names, key type, challenge, WELLKNOWN, HOOK, PREFERRED_CHAIN,\n"
          "PRIVATE_KEY_RENEW) into the state directory; each certificate gets a\n"
          "renewal.conf that certpilot renew uses.  dehydrated's files are only read, and\n"
          "what is imported already is left as it is: a second import changes nothing.\n"
          "HOOK stays where it is and is called with dehydrated's hook protocol.\n"
          "  --basedir DIR              dehydrated's BASEDIR (default /etc/dehydrated);\n"
          "                             its config file is DIR/config\n"
          "  --dehydrated-config FILE   dehydrated's config file, as dehydrated -f FILE\n"
          "  --cert-name NAME           only this certificate (its alias in domains.txt,\n"
          "                             or its first name); repeatable; accounts always\n"
          "  --dry-run                  say what would be imported; write nothing\n"
          "  --config FILE              certpilot's defaults (state-dir), default\n"
          "                             /etc/certpilot/config if it exists\n"
          "  --quiet                    print only what was not imported\n"
          "The config is a bash fragment: plain assignments (NAME=value, quoted or not,\n"
          "with ${NAME} of earlier settings) are read; shell code is never run and is\n"
          "listed as not imported, as is any setting certpilot cannot carry over.\n"
          "Exit: 0 everything imported (or already there); 1 something was not imported\n"
          "or is left alone (listed, with why); 64 bad options; 74 a file unreadable.\n",
          f);
}

struct imp {
    struct cli_common common;
    struct cli_conf defaults;
    struct flow_dh_import_req req;
    const char *names[CERT_NAMES_MAX];
    const char *state_arg; /* --state-dir as given, for the next steps */
    bool dry;
};

static int parse_args(struct imp *m, int argc, char **argv)
{
    static const struct option opts[] = {
        {"basedir", required_argument, NULL, 'b'},
        {"dehydrated-config", required_argument, NULL, 'f'},
        {"cert-name", required_argument, NULL, 'n'},
        {"dry-run", no_argument, NULL, 'D'},
        {"config", required_argument, NULL, 2010},
        {"state-dir", required_argument, NULL, 1003},
        {"help", no_argument, NULL, 'h'},
        CLI_STORE_LONGOPTS,
        CLI_OUTPUT_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    int ch;
    if (cli_options_exact(argc, argv, ":hvq", opts, "import dehydrated") != 0)
        return CLI_EXIT_USAGE;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":hvq", opts, NULL)) != -1) {
        switch (ch) {
        case 'b': m->req.basedir = optarg; break;
        case 'f': m->req.config = optarg; break;
        case 'n':
            if (!store_name_valid(optarg)) {
                cli_error("--cert-name \"%s\": use letters, digits, '.', '-' and '_'", optarg);
                return CLI_EXIT_USAGE;
            }
            if (m->req.ncert_names == CERT_NAMES_MAX) {
                cli_error("--cert-name: at most %d", CERT_NAMES_MAX);
                return CLI_EXIT_USAGE;
            }
            m->names[m->req.ncert_names++] = optarg;
            break;
        case 'D': m->dry = true; break;
        case 1003:
            m->state_arg = optarg;
            m->common.state_dir = optarg;
            break;
        case 2010: break; /* read by cli_defaults_load() */
        case 'h': usage(stdout); return -1;
        default:
            if (ch != ':' && ch != '?' && cli_common_option(&m->common, ch, optarg))
                break;
            cli_error("unknown option or missing value: \"%s\" (see certpilot import dehydrated "
                      "--help)",
                      argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("unexpected argument \"%s\" (see certpilot import dehydrated --help)",
                  argv[optind]);
        return CLI_EXIT_USAGE;
    }
    m->req.cert_names = m->names;
    return 0;
}

/* What the user does after a real import. */
static void next_steps(const struct imp *m)
{
    printf("\nNext:\n"
           "  1. certpilot renew --dry-run%s%s\n"
           "     checks each imported certificate's settings without ordering anything.\n"
           "  2. Stop dehydrated from renewing too: remove its cron job or timer (look in\n"
           "     /etc/cron.d/, crontab -l and systemctl list-timers).  Its files stay as\n"
           "     they were; certpilot no longer reads them, but keep the HOOK script and\n"
           "     the WELLKNOWN directory: renewal.conf uses them where they are.\n"
           "  3. Let certpilot renew instead: certpilot systemd install (or, without\n"
           "     systemd, certpilot systemd cron --install).\n",
           m->state_arg ? " --state-dir " : "", m->state_arg ? m->state_arg : "");
}

int cmd_import_dehydrated(int argc, char **argv)
{
    struct imp m = {0};
    struct flow_import_report rep = {0};
    struct cp_err err = {0};

    cli_common_init(&m.common);
    int status = cli_defaults_load(argc, argv, &m.defaults, &m.common);
    if (status == 0)
        status = parse_args(&m, argc, argv);
    if (status != 0)
        goto out;
    cli_output_setup(&m.common);
    /* dehydrated -f with a missing file stops at once: so does this, before
     * the state directory is touched. */
    if (m.req.config != NULL && access(m.req.config, R_OK) != 0) {
        cli_error("--dehydrated-config %s: %s", m.req.config, strerror(errno));
        status = CLI_EXIT_IO;
        goto out;
    }
    m.common.server = CLI_LE_PRODUCTION; /* unused; cli_common_finish wants one */
    status = cli_common_finish(&m.common);
    if (status == 0 && !m.dry)
        status = cli_store_lock(&m.common, IMPORT_LOCK_TIMEOUT);
    if (status != 0)
        goto out;
    rep.dry = m.dry;
    enum cp_code rc = flow_import_dehydrated(m.common.store, &m.req, &rep, &err);
    if (rc != CP_OK) {
        cli_error("import dehydrated: %s", err.msg[0] ? err.msg : "failed");
        status = rc == CP_ENOMEM    ? CLI_EXIT_SOFTWARE
                 : rc == CP_EUNSAFE ? CLI_EXIT_UNSAFE
                 : rc == CP_EINVAL  ? CLI_EXIT_CONFIG
                                    : CLI_EXIT_IO;
        if (rep.n > 0 && !m.common.json && !m.common.quiet) {
            fputs("Until then:\n", stdout);
            cli_import_report(&rep, "dehydrated", &m.common);
        }
        goto out;
    }
    status = cli_import_report(&rep, "dehydrated", &m.common);
    if (!m.common.json && !m.common.quiet && !m.dry)
        next_steps(&m);
out:
    flow_import_report_clear(&rep);
    cli_conf_clear(&m.defaults);
    cli_common_clear(&m.common);
    return status < 0 ? CLI_EXIT_OK : status;
}
