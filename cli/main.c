/*
 * cli/main.c - certpilot's entry point: dispatch on the command word.
 */
#include "cli/cli.h"

#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: certpilot <command> [options]\n"
          "\n"
          "commands:\n"
          "  caa check IDENTIFIER...   would the CA refuse these names because of CAA? why?\n"
          "  doctor NAME...            which nameserver would make the CA fail, and the fix\n"
          "  account register|show|update|rollover|deactivate\n"
          "                            the ACME account: contacts, key rollover, deactivation\n"
          "  issue -d NAME...          obtain a certificate (http-01, dns-01, tls-alpn-01,\n"
          "                            dns-persist-01; --ip-address for IP addresses)\n"
          "  persist-record -d NAME    the standing dns-persist-01 TXT record for the account\n"
          "  renew                     renew every certificate that is due (for timers)\n"
          "  list                      certificates, expiry, next renewal, last result\n"
          "  revoke --cert-name NAME   have the CA revoke a certificate (or --cert-path)\n"
          "  delete --cert-name NAME   remove a certificate lineage from the state directory\n"
          "  import certbot|dehydrated take over another client's accounts, certificates, hooks\n"
          "  systemd install|cron      write the systemd units and the drop-in with the\n"
          "                            directories renewal writes, or a cron line\n"
          "  serve-challenges          answer http-01 for a fleet from the shared store\n"
          "\n"
          "exit status (whose fault it is):\n"
          "  0  done            1  refused by CAA (renew: a certificate failed;\n"
          "                        delete: not confirmed; import: some left out)\n"
          "  2  CAA look-up failed on DNS          3  the CA refused (its problem shown)\n"
          "  4  a challenge failed                 5  the CA unreachable, or a wait ran out\n"
          "  6  a hook failed (certificate stored) 64 your command line (usage)\n"
          "  69 DNS set-up unusable                70 a bug in certpilot\n"
          "  74 a local file cannot be read/written\n"
          "  75 another run holds the lock         76 the CA broke the protocol\n"
          "  77 state directory unsafe (owner, mode, symlink)\n"
          "  78 missing set-up (no account, unreadable config)\n"
          "\n"
          "Run 'certpilot <command> --help' for a command's options; 'man certpilot' for more.\n",
          f);
}

static int dispatch(int argc, char **argv)
{
    if (argc < 2) {
        cli_error("no command given");
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("certpilot %s\n", CP_VERSION);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "caa") == 0)
        return cmd_caa(argc - 1, argv + 1);
    if (strcmp(cmd, "doctor") == 0)
        return cmd_doctor(argc - 1, argv + 1);
    if (strcmp(cmd, "persist-record") == 0)
        return cmd_persist_record(argc - 1, argv + 1);
    if (strcmp(cmd, "account") == 0)
        return cmd_account(argc - 1, argv + 1);
    if (strcmp(cmd, "issue") == 0)
        return cmd_issue(argc - 1, argv + 1);
    if (strcmp(cmd, "renew") == 0)
        return cmd_renew(argc - 1, argv + 1);
    if (strcmp(cmd, "list") == 0)
        return cmd_list(argc - 1, argv + 1);
    if (strcmp(cmd, "revoke") == 0)
        return cmd_revoke(argc - 1, argv + 1);
    if (strcmp(cmd, "delete") == 0)
        return cmd_delete(argc - 1, argv + 1);
    if (strcmp(cmd, "import") == 0)
        return cmd_import(argc - 1, argv + 1);
    if (strcmp(cmd, "systemd") == 0)
        return cmd_systemd(argc - 1, argv + 1);
    if (strcmp(cmd, "serve-challenges") == 0)
        return cmd_serve_challenges(argc - 1, argv + 1);
    if (cmd[0] == '-')
        cli_error("no command given before \"%s\" (the command comes first: certpilot "
                  "COMMAND [options])",
                  cmd);
    else
        cli_error("unknown command \"%s\"", cmd);
    usage(stderr);
    return CLI_EXIT_USAGE;
}

/*
 * Debian's libcurl links librtmp, which links GnuTLS; GnuTLS initialises
 * itself from a library constructor in every process that loads it (about
 * 0.8 million instructions, 40 page faults and 0.6 MiB of resident pages
 * before main).  certpilot never calls GnuTLS: curl does TLS with OpenSSL
 * and rtmp is not among the protocols it may use.  GnuTLS skips that
 * implicit initialisation when the program exports this function returning
 * non-zero (the in-process form of GNUTLS_NO_IMPLICIT_INIT=1); the link
 * exports it (CMakeLists.txt).  Anything that did call GnuTLS would have to
 * call gnutls_global_init() itself, as its manual asks of every user.
 */
int _gnutls_global_init_skip(void);
int _gnutls_global_init_skip(void)
{
    return 1;
}

int main(int argc, char **argv)
{
    int status = dispatch(argc, argv);
    /* --json: a result object in every outcome, also when the command
     * stopped before it could make its own (a usage error, a state
     * directory that cannot be opened, ...); the message stays on stderr. */
    if (status != 0 && !cli_json_done() && cli_json_wanted(argc, argv))
        cli_json_result(NULL, status == CLI_EXIT_USAGE ? "usage_error" : "failed", status);
    return status;
}
