/*
 * cli/cmd_account.c - `certpilot account register|show|update|rollover|
 * deactivate`: the account's whole life at one CA.
 *
 * Every subcommand reads --server, --ca-bundle and --state-dir from the same
 * configuration file as issue (--config, default /etc/certpilot/config),
 * the command line winning.  Those that change something hold the state
 * directory's lock, so that a renew never signs with a key that is being
 * replaced.  What each subcommand does is flow/account.c; this file parses,
 * asks, prints and picks the exit status.
 */
#include "cli/cli.h"

#include <getopt.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/file.h"

#define CONTACTS_MAX        8
#define EAB_KEY_FILE_MAX    4096
#define ACCOUNT_LOCK_WAIT_S 60

static void usage(FILE *f)
{
    fputs("usage: certpilot account register --agree-tos [--email ADDR]... [--key-type TYPE]\n"
          "                                  [--eab-kid ID [--eab-hmac-key KEY |\n"
          "                                   --eab-hmac-key-file FILE]] [common options]\n"
          "       certpilot account show [common options]\n"
          "       certpilot account update (--email ADDR... | --no-email) [common options]\n"
          "       certpilot account rollover [--key-type TYPE] [common options]\n"
          "       certpilot account deactivate [--yes] [common options]\n"
          "\n"
          "  register    create an account key and register it (once per CA; on an existing\n"
          "              account, different --email addresses update its contacts)\n"
          "  show        URL, status and contacts as the CA reports them, key type,\n"
          "              thumbprint, terms of service agreed\n"
          "  update      replace the contacts at the CA (--email repeatable; --no-email\n"
          "              removes them all), then in account.json\n"
          "  rollover    replace the account key (RFC 8555 key change); the account URL\n"
          "              stays; --key-type defaults to the current key's type\n"
          "  deactivate  deactivate the account for good (asks on a terminal; --yes\n"
          "              otherwise); issue and renew then refuse to use it\n"
          "\n"
          "TYPE: ec256 (default for register), ec384, rsa2048, rsa3072, rsa4096.\n"
          "common options: --server URL|letsencrypt|letsencrypt-staging  --ca-bundle FILE\n"
          "                --state-dir DIR  --config FILE  -v/--verbose  -q/--quiet  --json\n"
          "--server, --ca-bundle and --state-dir may come from the config file of issue\n"
          "(--config, default " CLI_DEFAULT_CONFIG "); the command line wins.\n"
          "The EAB MAC key can also come from the environment variable "
          "CERTPILOT_EAB_HMAC_KEY,\n"
          "or a file (first line), so that it does not show in the process list.\n",
          f);
}

enum sub { SUB_REGISTER, SUB_SHOW, SUB_UPDATE, SUB_ROLLOVER, SUB_DEACTIVATE };

static const char *const sub_names[] = {"register", "show", "update", "rollover", "deactivate"};

enum {
    OPT_EMAIL = 'e',
    OPT_AGREE = 't',
    OPT_EAB_KID = 'k',
    OPT_EAB_KEY = 'm',
    OPT_EAB_FILE = 'f',
    OPT_KEY_TYPE = 2001,
    OPT_NO_EMAIL,
    OPT_YES,
    OPT_CONFIG
};

/* Which options each subcommand takes, beyond the common ones. */
static bool option_allowed(enum sub s, int opt)
{
    switch (opt) {
    case OPT_EMAIL: return s == SUB_REGISTER || s == SUB_UPDATE;
    case OPT_AGREE:
    case OPT_EAB_KID:
    case OPT_EAB_KEY:
    case OPT_EAB_FILE: return s == SUB_REGISTER;
    case OPT_KEY_TYPE: return s == SUB_REGISTER || s == SUB_ROLLOVER;
    case OPT_NO_EMAIL: return s == SUB_UPDATE;
    case OPT_YES: return s == SUB_DEACTIVATE;
    default: return true;
    }
}

struct acct {
    enum sub sub;
    struct cli_common common;
    struct cli_conf conf;
    const char *config;
    bool server_set, ca_bundle_set, state_set;
    char *contacts[CONTACTS_MAX];
    size_t ncontacts;
    bool no_email;
    struct acme_account_req req;
    const char *key_file;
    char *file_key;
    enum acme_key_type key_type;
    bool key_type_set;
    bool yes;
};

static void acct_clear(struct acct *o)
{
    for (size_t i = 0; i < o->ncontacts; i++)
        free(o->contacts[i]);
    if (o->file_key != NULL) {
        OPENSSL_cleanse(o->file_key, strlen(o->file_key));
        free(o->file_key);
    }
    cli_conf_clear(&o->conf);
    cli_common_clear(&o->common); /* the lock, if held, with it */
}

/* The first line of `path`, without the line end and trailing blanks, into
 * *out (heap; the caller cleanses and frees it). */
static int read_key_file(const char *path, char **out)
{
    struct cp_err err = {0};
    char *text = NULL;
    size_t len = 0;
    if (cp_file_read(path, EAB_KEY_FILE_MAX, &text, &len, &err) != CP_OK) {
        cli_error("--eab-hmac-key-file: %s", err.msg);
        return CLI_EXIT_CONFIG;
    }
    size_t n = strcspn(text, "\r\n");
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t'))
        n--;
    if (n == 0 || memchr(text, '\0', len) != NULL) {
        OPENSSL_cleanse(text, len);
        free(text);
        cli_error("--eab-hmac-key-file %s: the first line should hold the MAC key the CA gave "
                  "(base64url)",
                  path);
        return CLI_EXIT_CONFIG;
    }
    OPENSSL_cleanse(text + n, len - n);
    text[n] = '\0';
    *out = text;
    return 0;
}

static int add_email(struct acct *o, const char *addr)
{
    if (o->ncontacts == CONTACTS_MAX || strchr(addr, '@') == NULL || strchr(addr, ',') != NULL ||
        strlen(addr) > 512) {
        cli_error("--email \"%s\": give one address per --email, at most %d", addr, CONTACTS_MAX);
        return CLI_EXIT_USAGE;
    }
    size_t size = strlen(addr) + 8;
    o->contacts[o->ncontacts] = malloc(size);
    if (o->contacts[o->ncontacts] == NULL)
        return CLI_EXIT_SOFTWARE;
    snprintf(o->contacts[o->ncontacts], size, "mailto:%s", addr);
    o->ncontacts++;
    return 0;
}

/* --server, --ca-bundle, --state-dir from the config file where the command
 * line did not give them; the rest of the file is issue's business. */
static int apply_config(struct acct *o)
{
    struct cp_err err = {0};
    enum cp_code rc = cli_conf_load(o->config ? o->config : CLI_DEFAULT_CONFIG, o->config == NULL,
                                    &o->conf, &err);
    if (rc != CP_OK) {
        cli_error("%s", err.msg[0] ? err.msg : "out of memory");
        return rc == CP_EIO ? CLI_EXIT_CONFIG : CLI_EXIT_USAGE;
    }
    const char *v;
    if (!o->server_set && (v = cli_conf_get(&o->conf, "server")) != NULL)
        o->common.server = v;
    if (!o->ca_bundle_set && (v = cli_conf_get(&o->conf, "ca-bundle")) != NULL)
        o->common.ca_bundle = v;
    if (!o->state_set && (v = cli_conf_get(&o->conf, "state-dir")) != NULL)
        o->common.state_dir = v;
    cli_common_store_defaults(&o->common, &o->conf);
    return 0;
}

/* argv[0] is the subcommand.  0, -1 after --help, or the exit status. */
static int parse(struct acct *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"email", required_argument, NULL, OPT_EMAIL},
        {"no-email", no_argument, NULL, OPT_NO_EMAIL},
        {"agree-tos", no_argument, NULL, OPT_AGREE},
        {"eab-kid", required_argument, NULL, OPT_EAB_KID},
        {"eab-hmac-key", required_argument, NULL, OPT_EAB_KEY},
        {"eab-hmac-key-file", required_argument, NULL, OPT_EAB_FILE},
        {"key-type", required_argument, NULL, OPT_KEY_TYPE},
        {"yes", no_argument, NULL, OPT_YES},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"help", no_argument, NULL, 'h'},
        CLI_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct cp_err err = {0};
    int ch, status;
    char what[64];

    snprintf(what, sizeof what, "account %s", sub_names[o->sub]);
    if ((status = cli_options_exact(argc, argv, ":hvq", longopts, "account")) != 0)
        return status;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":hvq", longopts, NULL)) != -1) {
        if (ch != ':' && ch != '?' && !option_allowed(o->sub, ch)) {
            cli_error("%s does not take %s (see certpilot account --help)", what, argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
        switch (ch) {
        case 1001: o->server_set = true; break;
        case 1002: o->ca_bundle_set = true; break;
        case 1003: o->state_set = true; break;
        default: break;
        }
        if (cli_common_option(&o->common, ch, optarg))
            continue;
        switch (ch) {
        case OPT_EMAIL:
            status = add_email(o, optarg);
            if (status != 0)
                return status;
            break;
        case OPT_NO_EMAIL: o->no_email = true; break;
        case OPT_AGREE: o->req.agree_tos = true; break;
        case OPT_EAB_KID: o->req.eab_kid = optarg; break;
        case OPT_EAB_KEY: o->req.eab_hmac_key = optarg; break;
        case OPT_EAB_FILE: o->key_file = optarg; break;
        case OPT_KEY_TYPE:
            if (acme_key_type_parse(optarg, &o->key_type, &err) != CP_OK) {
                cli_error("--key-type: %s", err.msg);
                return CLI_EXIT_USAGE;
            }
            o->key_type_set = true;
            break;
        case OPT_YES: o->yes = true; break;
        case OPT_CONFIG: o->config = optarg; break;
        case 'h': usage(stdout); return -1;
        case ':':
            cli_error("%s: option \"%s\" needs a value (see certpilot account --help)", what,
                      argv[optind - 1]);
            return CLI_EXIT_USAGE;
        default:
            cli_error("%s: unknown option \"%s\" (see certpilot account --help)", what,
                      argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("%s: unexpected argument \"%s\"", what, argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (o->sub == SUB_UPDATE && (o->ncontacts > 0) == o->no_email) {
        cli_error("account update: give the new contacts with --email ADDR (repeatable), or "
                  "--no-email to remove them all");
        return CLI_EXIT_USAGE;
    }
    if (o->key_file != NULL && o->req.eab_hmac_key != NULL) {
        cli_error("give the EAB MAC key once: --eab-hmac-key or --eab-hmac-key-file");
        return CLI_EXIT_USAGE;
    }
    if (o->key_file != NULL) {
        status = read_key_file(o->key_file, &o->file_key);
        if (status != 0)
            return status;
        o->req.eab_hmac_key = o->file_key;
    }
    /* The environment is the last resort, and only with a key id. */
    const char *env_key = getenv("CERTPILOT_EAB_HMAC_KEY");
    if (o->req.eab_hmac_key == NULL && o->req.eab_kid != NULL && env_key != NULL &&
        *env_key != '\0')
        o->req.eab_hmac_key = env_key;
    if ((o->req.eab_kid == NULL) != (o->req.eab_hmac_key == NULL)) {
        cli_error("--eab-kid and the EAB MAC key go together (--eab-hmac-key, "
                  "--eab-hmac-key-file or CERTPILOT_EAB_HMAC_KEY)");
        return CLI_EXIT_USAGE;
    }
    if (o->sub == SUB_REGISTER && !o->req.agree_tos) {
        cli_error("registering needs --agree-tos: read the CA's terms of service first");
        return CLI_EXIT_USAGE;
    }
    if (o->sub == SUB_DEACTIVATE && !o->yes && !isatty(STDIN_FILENO)) {
        cli_error("account deactivate cannot be undone: without a terminal to ask on, confirm "
                  "with --yes");
        return CLI_EXIT_USAGE;
    }
    o->req.contacts = (const char *const *)o->contacts;
    o->req.ncontacts = o->ncontacts;
    status = apply_config(o);
    if (status == 0)
        status = cli_common_finish(&o->common);
    return status;
}

/* ---------------------------------------------------------------- output */

/* "mailto:a@x, mailto:b@y" or "(none)". */
static void print_contacts(const json_t *list)
{
    size_t i;
    const json_t *v;
    if (json_array_size(list) == 0) {
        fputs("(none)", stdout);
        return;
    }
    json_array_foreach(list, i, v)
    {
        printf("%s%s", i ? ", " : "", json_string_value(v));
    }
}

static const char *or_q(const char *s)
{
    return s != NULL ? s : "?";
}

static void thumbprint(const struct acme_key *k, char out[44])
{
    struct cp_err err = {0};
    if (k == NULL || acme_key_thumbprint(k, out, &err) != CP_OK)
        out[0] = '\0';
}

/* A flow's failure said (its problem document too), and the exit status. */
static int flow_fail(enum cp_code rc, const struct cp_err *err, struct acme_problem *prob)
{
    int status = cli_acme_fail(rc, err, prob);
    acme_problem_clear(prob);
    return status;
}

/* A held account: lock, open, client, and the account in use. */
static int account_ready(struct acct *o, struct flow_account *a, struct acme_client **client,
                         const struct acme_account_req *reg, unsigned flags)
{
    struct cp_err err = {0};
    struct acme_problem prob = {0};
    struct flow_account_use_req use = {
        .reg = reg, .key_type = o->key_type_set ? o->key_type : ACME_KEY_EC256, .flags = flags};
    memset(a, 0, sizeof *a);
    *client = NULL;
    int status = cli_store_lock(&o->common, ACCOUNT_LOCK_WAIT_S);
    if (status != 0)
        return status;
    enum cp_code rc = flow_account_open(o->common.store, o->common.server, a, &err);
    /* Refused before anything is sent, not even the directory request. */
    if (rc == CP_OK)
        rc = flow_account_check(a, flags, &err);
    if (rc != CP_OK)
        return cli_acme_fail(rc, &err, NULL);
    status = cli_client_open(&o->common, client);
    if (status == 0 &&
        (rc = flow_account_use(a, *client, &use, cli_flow_log(), &prob, &err)) != CP_OK)
        status = flow_fail(rc, &err, &prob);
    return status;
}

/* ---------------------------------------------------------------- show */

/* What the CA reports (when v->asked) with what is saved. */
static void show_print(const struct acct *o, const struct flow_account *a,
                       const struct flow_account_view *v, const char *ca_error, int status)
{
    if (o->common.json) {
        json_t *j = json_pack(
            "{s:s, s:s?, s:s?, s:s?, s:O, s:O, s:s?, s:o, s:s?, s:s, s:s?, s:s, s:s?, s:s?}",
            "server", o->common.server, "url", v->url, "status", v->status, "status_from",
            v->asked            ? "ca"
            : v->deactivated_at ? "state"
                                : NULL,
            "contacts", v->contacts, "saved_contacts", v->saved_contacts, "orders", v->orders,
            "terms_agreed",
            v->terms_agreed >= 0 ? json_boolean(v->terms_agreed)
            : v->terms_recorded  ? json_true()
                                 : json_null(),
            "terms_agreed_at", v->terms_at, "key_type", v->key_type, "thumbprint",
            v->thumbprint[0] ? v->thumbprint : NULL, "state_dir", o->common.state_dir,
            "deactivated_at", v->deactivated_at, "ca_error", ca_error);
        if (j != NULL && v->asked)
            json_object_set_new(j, "ca_key_thumbprint",
                                v->ca_key_thumbprint[0] ? json_string(v->ca_key_thumbprint)
                                                        : json_null());
        cli_json_result(j, status == 0 ? "shown" : "failed", status);
        return;
    }
    printf("Account at %s\n  URL:          %s\n", o->common.server, v->url ? v->url : "(unknown)");
    if (v->asked)
        printf("  status:       %s (as the CA reports it)\n", v->status);
    else if (v->deactivated_at != NULL)
        printf("  status:       deactivated on %s (recorded here; the CA was not asked)\n",
               v->deactivated_at);
    else
        printf("  status:       unknown: the CA could not be asked%s%s\n", ca_error ? ": " : "",
               ca_error ? ca_error : "");
    fputs("  contacts:     ", stdout);
    print_contacts(v->contacts);
    puts(v->asked ? "" : " (saved here)");
    printf("  key:          %s\n  thumbprint:   %s\n", v->key_type, v->thumbprint);
    if (v->key_differs)
        printf("  CA's key:     %s (NOT the key in %s)\n", v->ca_key_thumbprint, a->where);
    if (v->terms_agreed >= 0)
        printf("  terms agreed: %s (as the CA reports it)\n", v->terms_agreed ? "yes" : "no");
    else if (v->terms_recorded)
        printf("  terms agreed: yes, on %s%s%s (recorded here)\n", or_q(v->terms_at),
               v->terms_url ? ": " : "", v->terms_url ? v->terms_url : "");
    else
        puts("  terms agreed: not recorded");
    if (v->orders != NULL)
        printf("  orders:       %s\n", v->orders);
    if (v->url != NULL && v->deactivated_at == NULL)
        printf("  CAA record allowing only this account:\n"
               "    example.com. CAA 0 issue \"<CA identity>; accounturi=%s\"\n",
               v->url);
}

static int cmd_show(struct acct *o)
{
    struct flow_account a;
    struct acme_client *client = NULL;
    struct flow_account_show_res res;
    struct acme_problem prob = {0};
    struct cp_err err = {0};
    struct flow_account_use_req use = {.key_type = ACME_KEY_EC256,
                                       .flags = FLOW_ACCOUNT_ANY_STATUS | FLOW_ACCOUNT_NO_WRITE};
    int status;

    memset(&res, 0, sizeof res);
    /* Read-only unless the URL must be found again or a rollover finished:
     * only then wait for the lock. */
    enum cp_code rc = flow_account_open(o->common.store, o->common.server, &a, &err);
    if (rc != CP_OK) {
        status = cli_acme_fail(rc, &err, NULL);
        goto out;
    }
    if (flow_account_unsettled(&a)) {
        flow_account_close(&a);
        status = account_ready(o, &a, &client, NULL, FLOW_ACCOUNT_ANY_STATUS);
    } else if (a.key != NULL && flow_account_deactivated_at(&a) != NULL) {
        status = 0;
    } else {
        status = cli_client_open(&o->common, &client);
        if (status != 0 && a.key != NULL) {
            flow_account_show(&a, NULL, &res, &prob, &err);
            show_print(o, &a, &res.view, cli_last_error(), status);
            goto out;
        }
        if (status == 0 &&
            (rc = flow_account_use(&a, client, &use, cli_flow_log(), &prob, &err)) != CP_OK)
            status = flow_fail(rc, &err, &prob);
    }
    if (status != 0)
        goto out;
    rc = flow_account_show(&a, client, &res, &prob, &err);
    if (rc != CP_OK) {
        status = flow_fail(rc, &err, &prob);
        show_print(o, &a, &res.view, cli_last_error(), status);
        goto out;
    }
    show_print(o, &a, &res.view, NULL, 0);
out:
    flow_account_show_clear(&res);
    acme_problem_clear(&prob);
    acme_client_free(client);
    flow_account_close(&a);
    return status;
}

/* -------------------------------------------------------------- register */

static void print_result(const struct acct *o, const struct flow_account *a, const char *outcome,
                         const char *headline)
{
    char thumb[44];
    json_t *contacts = flow_account_contacts(a);
    thumbprint(a->key, thumb);
    if (o->common.json) {
        json_t *j = json_pack("{s:s, s:s?, s:O, s:s, s:s, s:s}", "server", o->common.server, "url",
                              flow_account_url(a), "contacts", contacts, "key_type",
                              acme_key_type_name(acme_key_type_of(a->key)), "thumbprint", thumb,
                              "state_dir", o->common.state_dir);
        cli_json_result(j, outcome, 0);
    } else {
        printf("%s\n  URL:        %s\n  contacts:   ", headline, flow_account_url(a));
        print_contacts(contacts);
        printf("\n  key:        %s\n  thumbprint: %s\n",
               acme_key_type_name(acme_key_type_of(a->key)), thumb);
    }
    json_decref(contacts);
}

/* A failure after the CA took new contacts: said, with the flow's error. */
static int contacts_fail(enum cp_code rc, const struct cp_err *err, struct acme_problem *prob,
                         bool record_behind)
{
    if (record_behind)
        cli_error("the CA has the new contacts, but account.json was not updated");
    return flow_fail(rc, err, prob);
}

static int cmd_register(struct acct *o)
{
    struct flow_account a;
    struct acme_client *client = NULL;
    struct acme_problem prob = {0};
    struct cp_err err = {0};
    struct flow_account_register_req req = {
        .reg = &o->req,
        .key_type = o->key_type_set ? o->key_type : ACME_KEY_EC256,
        .key_type_set = o->key_type_set,
    };
    struct flow_account_register_res res = {0};
    char headline[600];
    const char *outcome = "registered";
    int status = cli_store_lock(&o->common, ACCOUNT_LOCK_WAIT_S);
    if (status != 0)
        return status;
    enum cp_code rc = flow_account_open(o->common.store, o->common.server, &a, &err);
    if (rc == CP_OK)
        rc = flow_account_forget_deactivated(&a, cli_flow_log(), &err);
    if (rc != CP_OK) {
        status = cli_acme_fail(rc, &err, NULL);
        goto out;
    }
    status = cli_client_open(&o->common, &client);
    if (status != 0)
        goto out;
    rc = flow_account_register(&a, client, &req, &res, cli_flow_log(), &prob, &err);
    if (rc != CP_OK) {
        status = contacts_fail(rc, &err, &prob, res.record_behind);
        goto out;
    }
    switch (res.outcome) {
    case FLOW_ACCOUNT_REGISTERED:
        snprintf(headline, sizeof headline, "Registered account at %s", o->common.server);
        break;
    case FLOW_ACCOUNT_EXISTING:
        outcome = "existing";
        snprintf(headline, sizeof headline,
                 "Already registered at %s; contacts unchanged (change them with 'certpilot "
                 "account update --email ADDR')",
                 o->common.server);
        break;
    case FLOW_ACCOUNT_CONTACTS_UPDATED:
        outcome = "contacts_updated";
        snprintf(headline, sizeof headline, "Already registered at %s; contacts updated at the CA",
                 o->common.server);
        break;
    }
    print_result(o, &a, outcome, headline);
out:
    acme_problem_clear(&prob);
    acme_client_free(client);
    flow_account_close(&a);
    return status;
}

/* ---------------------------------------------------------------- update */

static int cmd_update(struct acct *o)
{
    struct flow_account a;
    struct acme_client *client = NULL;
    struct acme_problem prob = {0};
    struct cp_err err = {0};
    struct flow_account_update_req req = {.contacts = (const char *const *)o->contacts,
                                          .ncontacts = o->ncontacts};
    struct flow_account_update_res res = {0};
    char headline[600];
    int status = account_ready(o, &a, &client, NULL, 0);
    if (status == 0) {
        enum cp_code rc = flow_account_update(&a, client, &req, &res, &prob, &err);
        if (rc != CP_OK)
            status = contacts_fail(rc, &err, &prob, res.record_behind);
    }
    if (status == 0) {
        snprintf(headline, sizeof headline, "Contacts updated at %s", o->common.server);
        print_result(o, &a, "contacts_updated", headline);
    }
    acme_client_free(client);
    flow_account_close(&a);
    return status;
}

/* -------------------------------------------------------------- rollover */

static int cmd_rollover(struct acct *o)
{
    struct flow_account a;
    struct acme_client *client = NULL;
    struct acme_problem prob = {0};
    struct cp_err err = {0};
    struct flow_account_rollover_req req = {.key_type = o->key_type,
                                            .key_type_set = o->key_type_set};
    struct flow_account_rollover_res res;
    memset(&res, 0, sizeof res);
    int status = account_ready(o, &a, &client, NULL, 0);
    if (status != 0)
        goto out;
    enum cp_code rc = flow_account_rollover(&a, client, &req, &res, &prob, &err);
    if (rc != CP_OK) {
        status = flow_fail(rc, &err, &prob);
        if (res.after.code != CP_OK)
            cli_error("%s", res.after.msg);
        if (res.unknown)
            cli_error("whether the CA changed the key is not known: the new key stays in %s, "
                      "and the next certpilot command for this account asks the CA which key it "
                      "has and keeps that one",
                      a.pending_where);
        if (res.record_behind)
            cli_error("the CA has the new key, kept in %s; the next certpilot command for this "
                      "account makes it the account key",
                      a.pending_where);
        goto out;
    }
    char thumb[44];
    thumbprint(a.key, thumb);
    if (o->common.json) {
        json_t *j =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "server", o->common.server, "url",
                      flow_account_url(&a), "old_key_type", acme_key_type_name(res.old_type),
                      "old_thumbprint", res.old_thumbprint, "key_type",
                      acme_key_type_name(acme_key_type_of(a.key)), "thumbprint", thumb, "state_dir",
                      o->common.state_dir);
        cli_json_result(j, "rolled_over", 0);
    } else {
        printf("Account key replaced at %s\n  URL:        %s (unchanged)\n"
               "  old key:    %s %s (removed)\n  new key:    %s %s\n",
               o->common.server, flow_account_url(&a), acme_key_type_name(res.old_type),
               res.old_thumbprint, acme_key_type_name(acme_key_type_of(a.key)), thumb);
    }
out:
    acme_problem_clear(&prob);
    acme_client_free(client);
    flow_account_close(&a);
    return status;
}

/* ------------------------------------------------------------ deactivate */

/* Ask on the terminal; true for "yes". */
static bool confirm(const struct acct *o, const char *url)
{
    char line[16];
    fprintf(stderr,
            "Deactivate the account %s at %s?\nThe CA then refuses every request of this "
            "account, for good; certificates already issued stay valid.\nType yes to go on: ",
            url, o->common.server);
    fflush(stderr);
    if (fgets(line, sizeof line, stdin) == NULL)
        return false;
    line[strcspn(line, "\r\n")] = '\0';
    return strcmp(line, "yes") == 0;
}

static int cmd_deactivate(struct acct *o)
{
    struct flow_account a;
    struct acme_client *client = NULL;
    struct flow_account_deactivate_res res;
    struct acme_problem prob = {0};
    struct cp_err err = {0};
    memset(&res, 0, sizeof res);
    int status = account_ready(o, &a, &client, NULL, 0);
    if (status != 0)
        goto out;
    if (!o->yes && !confirm(o, flow_account_url(&a))) {
        cli_error("not confirmed: the account stays active");
        status = CLI_EXIT_USAGE;
        goto out;
    }
    enum cp_code rc = flow_account_deactivate(&a, client, &res, &prob, &err);
    if (rc != CP_OK) {
        status = flow_fail(rc, &err, &prob);
        if (res.record_behind)
            cli_error("the CA has deactivated the account, but account.json does not say so");
        goto out;
    }
    if (o->common.json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "server", o->common.server, "url",
                              flow_account_url(&a), "status", res.ca.status, "deactivated_at",
                              res.deactivated_at, "state_dir", o->common.state_dir);
        cli_json_result(j, "deactivated", 0);
    } else {
        printf("Account deactivated at %s\n  URL:    %s\n  status: %s (as the CA reports it), "
               "on %s\nissue and renew refuse this account from now on; register a new one "
               "with 'certpilot account register --agree-tos'.\n",
               o->common.server, flow_account_url(&a), res.ca.status, res.deactivated_at);
    }
out:
    acme_account_clear(&res.ca);
    acme_problem_clear(&prob);
    acme_client_free(client);
    flow_account_close(&a);
    return status;
}

int cmd_account(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    struct acct o;
    memset(&o, 0, sizeof o);
    cli_common_init(&o.common);
    size_t n = sizeof sub_names / sizeof sub_names[0];
    size_t i = 0;
    while (i < n && strcmp(argv[1], sub_names[i]) != 0)
        i++;
    if (i == n) {
        cli_error("unknown account command \"%s\" (register, show, update, rollover, "
                  "deactivate)",
                  argv[1]);
        return CLI_EXIT_USAGE;
    }
    o.sub = (enum sub)i;
    int status = parse(&o, argc - 1, argv + 1);
    if (status == 0) {
        cli_output_setup(&o.common);
        switch (o.sub) {
        case SUB_REGISTER: status = cmd_register(&o); break;
        case SUB_SHOW: status = cmd_show(&o); break;
        case SUB_UPDATE: status = cmd_update(&o); break;
        case SUB_ROLLOVER: status = cmd_rollover(&o); break;
        case SUB_DEACTIVATE: status = cmd_deactivate(&o); break;
        }
    }
    acct_clear(&o);
    return status < 0 ? CLI_EXIT_OK : status;
}
