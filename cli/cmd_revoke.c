/*
 * cli/cmd_revoke.c - `certpilot revoke`: ask the CA to revoke a certificate
 * (RFC 8555 §7.6).
 *
 * Two ways, as the RFC allows:
 *   --cert-name NAME     the current certificate of a lineage, signed with the
 *                        account of the lineage's CA (the server of its
 *                        renewal.conf) kept in the state directory; the
 *                        lineage is then marked revoked in its status.json so
 *                        that renew leaves it alone (flow_lineage_revoked), and
 *                        --delete-after-revoke removes it.
 *   --cert-path FILE     any certificate, signed with its own private key
 *                        (--key-path, no account needed: for a certificate
 *                        whose account is gone) or with the account of
 *                        --server.  Nothing in the state directory changes.
 *
 * The revocation, the mark and the removal are flow/revoke.c's; here: the
 * options, the account, what is printed and the exit status.  Also here:
 * reading the defaults file for revoke and delete.
 */
#include "cli/cli.h"

#include <getopt.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/civil.h"

#include "common/file.h"

#define REVOKE_LOCK_TIMEOUT 300 /* seconds, as issue waits for a renew run */
#define CERT_FILE_MAX       (256 * 1024)
#define KEY_FILE_MAX        (64 * 1024)

int cli_defaults_load(int argc, char **argv, struct cli_conf *conf, struct cli_common *c)
{
    static const char *const refused[] = {"domain",  "cert-name", "config", "help",
                                          "verbose", "json",      NULL};
    const char *config = NULL;
    struct cp_err err = {0};
    struct cli_args checked = {0};

    if (cli_help_asked(argc, argv))
        return 0; /* the command prints its usage */
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--config=", 9) == 0)
            config = argv[i] + 9;
        else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config = argv[++i];
    }
    /* The same file issue reads: every setting must be one issue takes. */
    enum cp_code rc =
        cli_conf_load(config ? config : CLI_DEFAULT_CONFIG, config == NULL, conf, &err);
    if (rc == CP_OK)
        rc = cli_conf_to_args(conf, cli_issue_options(), refused, NULL, &checked, &err);
    cli_args_clear(&checked);
    if (rc != CP_OK) {
        cli_error("%s", err.msg[0] ? err.msg : "out of memory");
        return CLI_EXIT_CONFIG;
    }
    const char *v;
    if ((v = cli_conf_get(conf, "server")) != NULL)
        c->server = v;
    if ((v = cli_conf_get(conf, "ca-bundle")) != NULL)
        c->ca_bundle = v;
    if ((v = cli_conf_get(conf, "state-dir")) != NULL)
        c->state_dir = v;
    cli_common_store_defaults(c, conf);
    return 0;
}

static void usage(FILE *f)
{
    fputs("usage: certpilot revoke --cert-name NAME [--reason REASON]\n"
          "                        [--delete-after-revoke]\n"
          "       certpilot revoke --cert-path FILE [--key-path KEY] [--reason REASON]\n"
          "                        [--server URL]\n"
          "         [--config FILE] [--ca-bundle FILE] [--state-dir DIR] [-v] [-q] [--json]\n"
          "Asks the CA to revoke a certificate (RFC 8555 section 7.6).\n"
          "  --cert-name NAME       the current certificate of the lineage NAME (see\n"
          "                         certpilot list), signed with the account kept for its\n"
          "                         CA (the server in its renewal.conf); renew skips the\n"
          "                         lineage afterwards, until renewed explicitly with\n"
          "                         'certpilot renew --cert-name NAME --force-renewal'\n"
          "  --delete-after-revoke  then delete the lineage (see certpilot delete)\n"
          "  --cert-path FILE       a certificate in a PEM file (the first one is revoked)\n"
          "  --key-path KEY         sign with the certificate's own private key: no\n"
          "                         account needed; without it, the account of --server\n"
          "  --reason REASON        unspecified, keyCompromise, affiliationChanged,\n"
          "                         superseded or cessationOfOperation (default: none\n"
          "                         given, which the CA records as unspecified)\n"
          "  --config FILE          server, ca-bundle and state-dir defaults (default\n"
          "                         /etc/certpilot/config, if it exists)\n"
          "Exit: 0 revoked; 3 the CA refused (e.g. alreadyRevoked, unauthorized: its\n"
          "problem shown); 64 bad options or no such lineage; 78 no account for the CA.\n",
          f);
}

struct revoke {
    struct cli_common common;
    struct cli_conf defaults;
    const char *cert_name, *cert_path, *key_path;
    int reason;
    bool delete_after, server_given, bundle_given;
    /* this run */
    struct flow_revoke_req req;
    struct flow_revoke_plan plan;
    struct flow_revoke_result res;
};

static int parse_args(struct revoke *r, int argc, char **argv)
{
    static const struct option opts[] = {
        {"cert-name", required_argument, NULL, 'n'},
        {"cert-path", required_argument, NULL, 'c'},
        {"key-path", required_argument, NULL, 'k'},
        {"reason", required_argument, NULL, 'r'},
        {"delete-after-revoke", no_argument, NULL, 'D'},
        {"config", required_argument, NULL, 2010},
        {"help", no_argument, NULL, 'h'},
        CLI_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    int ch;
    struct cp_err err = {0};
    if (cli_options_exact(argc, argv, ":hvq", opts, "revoke") != 0)
        return CLI_EXIT_USAGE;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":hvq", opts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            if (!store_name_valid(optarg)) {
                cli_error("--cert-name \"%s\": use letters, digits, '.', '-' and '_'", optarg);
                return CLI_EXIT_USAGE;
            }
            r->cert_name = optarg;
            break;
        case 'c': r->cert_path = optarg; break;
        case 'k': r->key_path = optarg; break;
        case 'r':
            if (acme_revoke_reason_parse(optarg, &r->reason, &err) != CP_OK) {
                cli_error("%s", err.msg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'D': r->delete_after = true; break;
        case 2010: break; /* read by cli_defaults_load() */
        case 'h': usage(stdout); return -1;
        case 1001:
            r->server_given = true;
            r->common.server = optarg;
            break;
        case 1002:
            r->bundle_given = true;
            r->common.ca_bundle = optarg;
            break;
        default:
            if (cli_common_option(&r->common, ch, optarg))
                break;
            cli_error("unknown option or missing value: \"%s\" (see certpilot revoke --help)",
                      argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("unexpected argument \"%s\" (see certpilot revoke --help)", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if ((r->cert_name == NULL) == (r->cert_path == NULL)) {
        cli_error("say which certificate to revoke: --cert-name NAME (a lineage of the state "
                  "directory) or --cert-path FILE, not %s",
                  r->cert_name ? "both" : "neither");
        return CLI_EXIT_USAGE;
    }
    if (r->key_path != NULL && r->cert_path == NULL) {
        cli_error("--key-path goes with --cert-path (a lineage is revoked with its account; "
                  "to use its key, give --cert-path %s/cert.pem --key-path %s/privkey.pem of "
                  "the lineage)",
                  "STATE/certs/NAME", "STATE/certs/NAME");
        return CLI_EXIT_USAGE;
    }
    if (r->delete_after && r->cert_name == NULL) {
        cli_error("--delete-after-revoke goes with --cert-name: a --cert-path file is not a "
                  "lineage certpilot keeps");
        return CLI_EXIT_USAGE;
    }
    if (r->server_given && r->cert_name != NULL) {
        cli_error("revoke --cert-name takes the CA from the lineage's renewal.conf: leave out "
                  "--server (or revoke with --cert-path FILE --server URL)");
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* An exit status for a refusal of the plan (said first). */
static int plan_fail(const struct cp_err *err)
{
    switch (err->code) {
    case CP_EINVAL: cli_error("%s", err->msg); return CLI_EXIT_USAGE;
    case CP_ESETUP: cli_error("%s", err->msg); return CLI_EXIT_CONFIG;
    default: return cli_store_fail(err);
    }
}

/* The CA of a lineage: "server" (and "ca-bundle" unless given on the command
 * line) of its renewal.conf. */
static int lineage_ca(struct revoke *r)
{
    struct cp_err err = {0};
    if (flow_revoke_plan_ca(r->common.store, &r->req, &r->plan, &err) != CP_OK)
        return plan_fail(&err);
    r->common.server = r->plan.server;
    if (r->plan.has_ca_bundle && !r->bundle_given)
        r->common.ca_bundle = r->plan.ca_bundle;
    /* "letsencrypt" and the like become URLs; the state directory again. */
    return cli_common_finish(&r->common);
}

/* Read and parse a certificate (the first of the file is the one). */
static int load_cert(const char *path, struct acme_chain **chain)
{
    char *pem = NULL;
    size_t len = 0;
    struct cp_err err = {0};
    enum cp_code rc = cp_file_read(path, CERT_FILE_MAX, &pem, &len, &err);
    if (rc == CP_OK)
        rc = acme_chain_parse(pem, len, path, chain, &err);
    free(pem);
    if (rc == CP_OK)
        return 0;
    cli_error("%s", err.msg);
    return rc == CP_EIO ? CLI_EXIT_IO : CLI_EXIT_USAGE;
}

static int load_key(const char *path, struct acme_key **key)
{
    char *pem = NULL;
    size_t len = 0;
    struct cp_err err = {0};
    enum cp_code rc = cp_file_read(path, KEY_FILE_MAX, &pem, &len, &err);
    if (rc == CP_OK)
        rc = acme_key_from_pem(pem, len, path, key, &err);
    if (pem != NULL) {
        OPENSSL_cleanse(pem, len);
        free(pem);
    }
    if (rc == CP_OK)
        return 0;
    cli_error("--key-path: %s", err.msg);
    return rc == CP_EIO ? CLI_EXIT_IO : CLI_EXIT_USAGE;
}

/* The mark could not be written (said). */
static int mark_fail(const struct cp_err *err)
{
    cli_error("%s", err->msg);
    return err->code == CP_ENOMEM ? CLI_EXIT_SOFTWARE : CLI_EXIT_IO;
}

/* --delete-after-revoke: what goes, said before the outcome. */
static void say_deleting(const struct revoke *r)
{
    const struct store_contents *list = &r->res.listed;
    FILE *f = r->common.json ? stderr : stdout;
    fprintf(f, "Deleting %s: %zu files, %zu links, %zu directories\n", r->plan.live, list->files,
            list->links, list->dirs);
    for (size_t i = 0; i < list->n; i++)
        fprintf(f, "  %s%s%s\n", list->e[i].path, list->e[i].target ? " -> " : "",
                list->e[i].target ? list->e[i].target : "");
}

static void print_result(struct revoke *r, int status, long long now)
{
    const char *reason = acme_revoke_reason_name(r->reason);
    char at[32];
    cp_time_str(now, at);
    if (r->common.json) {
        json_t *j = json_pack("{s:b, s:s?, s:s?, s:s?, s:s, s:s?, s:o, s:s, s:s?, s:i}", "revoked",
                              status == 0 || r->res.already, "cert_name", r->cert_name, "cert_path",
                              r->cert_path, "serial", r->plan.serial[0] ? r->plan.serial : NULL,
                              "server", r->common.server, "reason", reason, "reason_code",
                              reason ? json_integer(r->reason) : json_null(), "signed_with",
                              r->key_path ? "certificate_key" : "account", "account_url",
                              r->res.account_url, "exit_status", status);
        if (j == NULL)
            return;
        if (status == 0 || r->res.already)
            json_object_set_new(j, "revoked_at", json_string(at));
        json_object_set_new(j, "already_revoked", json_boolean(r->res.already));
        if (r->cert_name != NULL) {
            json_object_set_new(j, "marked", json_boolean(r->res.marked));
            json_object_set_new(j, "deleted", json_boolean(r->res.deleted));
        }
        json_object_set_new(j, "message", json_string(status ? cli_last_error() : ""));
        json_object_set_new(j, "problem", cli_problem_json(&r->res.prob));
        cli_json_result(j,
                        r->res.already ? "already_revoked"
                        : status == 0  ? "revoked"
                                       : "failed",
                        status);
        return;
    }
    if (status != 0 && !r->res.already)
        return; /* said on stderr */
    if (status == 0) {
        if (r->cert_name != NULL)
            printf("Revoked the certificate of %s (serial %s) at %s", r->cert_name, r->plan.serial,
                   r->common.server);
        else
            printf("Revoked the certificate in %s (serial %s) at %s", r->cert_path, r->plan.serial,
                   r->common.server);
        printf(", %s%s%s.\n", r->key_path ? "signed with its own key, " : "",
               reason ? "reason " : "no reason given", reason ? reason : "");
    }
    if (r->res.deleted)
        printf("Deleted the lineage %s.\n", r->cert_name);
    else if (r->res.marked)
        printf("certpilot renew skips %s from now on.  To replace its certificate: certpilot "
               "renew --cert-name %s --force-renewal (or issue it again); to remove it: "
               "certpilot delete --cert-name %s\n",
               r->cert_name, r->cert_name, r->cert_name);
}

/* The revocation itself, once the certificate is known. */
static int revoke(struct revoke *r, long long now)
{
    struct acme_client *client = NULL;
    struct acme_key *account_key = NULL, *cert_key = NULL;
    char *account_url = NULL;
    struct cp_err err = {0};
    int status = 0;

    if (r->key_path != NULL && (status = load_key(r->key_path, &cert_key)) != 0)
        goto out;
    status = cli_client_open(&r->common, &client);
    if (status != 0)
        goto out;
    if (cert_key == NULL) {
        /* The account as kept; never registered, nothing written. */
        status = cli_account_ensure(&r->common, client, NULL,
                                    CLI_ACCOUNT_LOOKUP_ONLY | CLI_ACCOUNT_NO_WRITE, &account_key,
                                    &account_url);
        if (status != 0)
            goto out;
        if (account_key == NULL) {
            if (r->cert_name != NULL)
                cli_error("no account for %s in %s, so the lineage's certificate cannot be "
                          "revoked in the account's name; revoke it with its own key instead: "
                          "certpilot revoke --cert-path %s/cert.pem --key-path "
                          "%s/privkey.pem --server %s",
                          r->common.server, r->common.state_dir, r->plan.live, r->plan.live,
                          r->common.server);
            else
                cli_error("no account for %s in %s: give the certificate's private key with "
                          "--key-path KEY, or the state directory that holds the account",
                          r->common.server, r->common.state_dir);
            status = CLI_EXIT_CONFIG;
            goto out;
        }
    }
    enum cp_code rc =
        flow_revoke_run(r->common.store, client, &r->req, &r->plan, cert_key, now, &r->res, &err);
    if (r->res.delete_tried)
        say_deleting(r);
    switch (r->res.failed) {
    case FLOW_REVOKE_DONE: break;
    case FLOW_REVOKE_SEND:
        status = cli_acme_fail(rc, &err, &r->res.prob);
        if (r->res.already && r->cert_name != NULL)
            cli_error("note: the CA says the certificate of %s was revoked before; it is "
                      "marked revoked here too, and not deleted (certpilot delete --cert-name "
                      "%s removes it)",
                      r->cert_name, r->cert_name);
        if (r->res.mark_err.code != CP_OK)
            (void)mark_fail(&r->res.mark_err); /* the CA's refusal decides the status */
        break;
    case FLOW_REVOKE_MARK: status = mark_fail(&err); break;
    case FLOW_REVOKE_DELETE:
        cli_error("%s", err.msg);
        status = rc == CP_EUNSAFE ? CLI_EXIT_UNSAFE : CLI_EXIT_IO;
        break;
    }
out:
    acme_key_free(cert_key);
    acme_key_free(account_key);
    acme_client_free(client);
    free(account_url);
    return status;
}

int cmd_revoke(int argc, char **argv)
{
    struct revoke r = {.reason = ACME_REVOKE_NO_REASON};
    struct acme_chain *chain = NULL;
    struct cp_err err = {0};
    bool parsed = false;
    long long now = (long long)time(NULL);

    cli_common_init(&r.common);
    int status = cli_defaults_load(argc, argv, &r.defaults, &r.common);
    if (status == 0)
        status = parse_args(&r, argc, argv);
    if (status != 0)
        goto out;
    cli_output_setup(&r.common);
    status = cli_common_finish(&r.common);
    if (status != 0)
        goto out;
    parsed = true;
    r.req.cert_name = r.cert_name;
    r.req.reason = r.reason;
    r.req.delete_after = r.delete_after;
    if (r.cert_name != NULL) {
        status = cli_store_lock(&r.common, REVOKE_LOCK_TIMEOUT);
        if (status == 0)
            status = lineage_ca(&r);
    } else {
        status = load_cert(r.cert_path, &chain);
        r.req.chain = chain;
    }
    if (status != 0)
        goto out;
    if (flow_revoke_plan_cert(r.common.store, &r.req, &r.plan, &err) != CP_OK)
        status = plan_fail(&err);
    else
        status = revoke(&r, now);
out:
    if (parsed)
        print_result(&r, status, now);
    acme_chain_free(chain);
    flow_revoke_plan_clear(&r.plan);
    flow_revoke_result_clear(&r.res);
    cli_conf_clear(&r.defaults);
    cli_common_clear(&r.common);
    return status < 0 ? CLI_EXIT_OK : status;
}
