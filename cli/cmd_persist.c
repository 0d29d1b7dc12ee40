/*
 * cli/cmd_persist.c - `certpilot persist-record`: the standing TXT record of
 * dns-persist-01 (draft-ietf-acme-dns-persist) for this account and CA,
 * printed to be published once; and how a dns-persist-01 check
 * (flow/persist.c) is shown, for issue and doctor.
 *
 * The account comes from the state directory (looked up at the CA when only
 * its key is known), never registered here: the record names the account
 * that will order, so it has to exist first.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "common/civil.h"

enum { OPT_WILDCARD = 1401, OPT_UNTIL };

static void usage(FILE *f)
{
    fputs("usage: certpilot persist-record -d NAME [--wildcard] [--until DATE|UNIX]\n"
          "                                [--ca-identity DOMAIN] [common options]\n"
          "\n"
          "Prints the TXT record that lets this account validate NAME with dns-persist-01\n"
          "(issue --challenge dns-persist-01): its zone-file line and its value.  Publish it\n"
          "once at _validation-persist.NAME on every nameserver of the zone; it stays valid\n"
          "until removed (or until --until).  The account must exist (certpilot account\n"
          "register): the record names its URL.\n"
          "\n"
          "  -d, --domain NAME     the name (\"*.NAME\" implies --wildcard)\n"
          "  --wildcard            also allow *.NAME (policy=wildcard)\n"
          "  --until DATE|UNIX     persistUntil: 2027-06-30, 2027-06-30T12:00:00Z or Unix\n"
          "                        seconds; the CA stops honouring the record after it\n"
          "  --ca-identity DOMAIN  the issuer domain to name when the CA's directory gives\n"
          "                        neither issuerDomainNames nor caaIdentities\n"
          "  --server URL|NAME, --ca-bundle FILE, --state-dir DIR, --json, -v, -q\n",
          f);
}

/* 2027-06-30 (midnight UTC), an RFC 3339 date-time, or Unix seconds. */
static int parse_until(const char *arg, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (*arg != '\0' && *end == '\0' && errno == 0 && v > 0) {
        *out = v;
        return 0;
    }
    int y, m, d;
    char tail;
    if (strlen(arg) == 10 && sscanf(arg, "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3 && m >= 1 &&
        m <= 12 && d >= 1 && d <= 31 && y >= 1970) {
        *out = (long long)cp_days_from_civil(y, m, d) * 86400;
        return 0;
    }
    if (acme_timestamp_parse(arg, out) && *out > 0)
        return 0;
    cli_error("--until \"%s\": give a date (2027-06-30), a date-time (2027-06-30T12:00:00Z) or "
              "Unix seconds",
              arg);
    return -1;
}

/* The issuer domain the record names: the directory's issuerDomainNames
 * (draft §3.2), else its first CAA identity, else --ca-identity. */
static const char *issuer_of(const struct acme_directory *d, const char *given)
{
    if (d->nissuer_domain_names > 0)
        return d->issuer_domain_names[0];
    if (d->ncaa_identities > 0)
        return d->caa_identities[0];
    return given;
}

int cmd_persist_record(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"domain", required_argument, NULL, 'd'},
        {"wildcard", no_argument, NULL, OPT_WILDCARD},
        {"until", required_argument, NULL, OPT_UNTIL},
        {"ca-identity", required_argument, NULL, CLI_OPT_CA_IDENTITY},
        {"help", no_argument, NULL, 'h'},
        CLI_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct cli_common c;
    const char *name = NULL, *ca_identity = NULL;
    bool wildcard = false;
    long long until = 0;
    int ch, status;

    cli_common_init(&c);
    if (cli_options_exact(argc, argv, ":hvqd:", longopts, "persist-record") != 0)
        return CLI_EXIT_USAGE;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":hvqd:", longopts, NULL)) != -1) {
        if (cli_common_option(&c, ch, optarg))
            continue;
        switch (ch) {
        case 'd':
            if (name != NULL) {
                cli_error("persist-record takes one -d NAME (a record per name)");
                return CLI_EXIT_USAGE;
            }
            name = optarg;
            break;
        case OPT_WILDCARD: wildcard = true; break;
        case OPT_UNTIL:
            if (parse_until(optarg, &until) != 0)
                return CLI_EXIT_USAGE;
            break;
        case CLI_OPT_CA_IDENTITY:
            if (!cli_ca_identity_valid(optarg)) {
                cli_error("--ca-identity \"%s\" is not an issuer domain name", optarg);
                return CLI_EXIT_USAGE;
            }
            ca_identity = optarg;
            break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default: return cli_option_error(ch, argv, "persist-record", "nothing");
        }
    }
    if (optind < argc) {
        cli_error("unexpected argument \"%s\": give the name with -d NAME", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (name == NULL) {
        cli_error("persist-record needs the name: -d example.com");
        return CLI_EXIT_USAGE;
    }
    if (acme_ip_normalize(name, NULL)) {
        cli_error("%s is an IP address: dns-persist-01 validates DNS names only (use http-01 or "
                  "tls-alpn-01 for it)",
                  name);
        return CLI_EXIT_USAGE;
    }
    cli_output_setup(&c);
    status = cli_common_finish(&c);
    if (status != 0)
        return status;

    struct acme_client *client = NULL;
    struct acme_key *key = NULL;
    char *url = NULL;
    status = cli_client_open(&c, &client);
    if (status == 0)
        status = cli_account_ensure(&c, client, NULL,
                                    CLI_ACCOUNT_NO_WRITE | CLI_ACCOUNT_LOOKUP_ONLY, &key, &url);
    if (status == 0 && url == NULL) {
        cli_error("no account for %s in %s yet: register one first (certpilot account register "
                  "--agree-tos); the record names its URL",
                  c.server, c.state_dir ? c.state_dir : "the state directory");
        status = CLI_EXIT_CONFIG;
    }
    const char *issuer = status == 0 ? issuer_of(acme_client_directory(client), ca_identity) : NULL;
    if (status == 0 && issuer == NULL) {
        cli_error("%s names no issuer domain (no issuerDomainNames, no caaIdentities): pass "
                  "--ca-identity DOMAIN, e.g. letsencrypt.org",
                  c.server);
        status = CLI_EXIT_USAGE;
    }
    struct caa_persist_record rec;
    struct cp_err err = {0};
    struct caa_persist_spec spec = {
        .issuer = issuer, .account_uri = url, .wildcard = wildcard, .persist_until = until};
    if (status == 0 && caa_persist_build(name, &spec, &rec, &err) != CP_OK) {
        cli_error("%s", err.msg);
        status = CLI_EXIT_USAGE;
    }
    if (status == 0 && c.json) {
        char when[32];
        if (until > 0)
            cp_time_str(until, when);
        cli_json_result(json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s?}", "name", name,
                                  "owner", rec.owner, "value", rec.value, "zone_line",
                                  rec.zone_line, "issuer", issuer, "account_url", url, "wildcard",
                                  wildcard || strncmp(name, "*.", 2) == 0, "persist_until",
                                  until > 0 ? when : NULL),
                        "printed", 0);
    } else if (status == 0 && !c.quiet) {
        printf("%s\n", rec.zone_line);
        printf("\nowner: %s\nvalue: %s\n", rec.owner, rec.value);
    }
    if (status != 0 && c.json && !cli_json_done())
        cli_json_result(json_object(), "failed", status);
    free(url);
    acme_key_free(key);
    acme_client_free(client);
    cli_common_clear(&c);
    return status;
}

/* -------------------------------------------- a check, shown (issue, doctor) */

json_t *cli_persist_json(const struct flow_persist_report *r)
{
    json_t *names = json_array();
    for (size_t i = 0; names != NULL && r != NULL && i < r->n; i++) {
        const struct flow_persist_name *p = &r->names[i];
        json_t *servers = json_array();
        for (size_t k = 0; servers != NULL && p->error[0] == '\0' && k < p->nns; k++) {
            const struct caa_persist_server *s = &p->servers[k];
            bool ok = s->answered && s->verdict.authorized;
            json_array_append_new(
                servers, json_pack("{s:s, s:s, s:b, s:b, s:i, s:I, s:s?}", "name", p->ns[k].name,
                                   "address", p->ns[k].addr, "answered", s->answered, "authorizes",
                                   ok, "rcode", s->rcode, "records", (json_int_t)s->nvalues,
                                   "reason", ok ? NULL : flow_persist_server_says(p, k)));
        }
        json_array_append_new(
            names, json_pack("{s:s, s:s, s:s?, s:s?, s:b, s:o, s:s?}", "identifier", p->ident,
                             "validation_name", p->qname, "zone", p->zone[0] ? p->zone : NULL,
                             "asked", p->target[0] ? p->target : NULL, "authorized",
                             flow_persist_name_ok(p), "servers", servers ? servers : json_array(),
                             "error", p->error[0] ? p->error : NULL));
    }
    return names ? names : json_array();
}

void cli_persist_text(FILE *f, const struct flow_persist_report *r)
{
    char line[CP_ERR_MSG_MAX];
    for (size_t i = 0; r != NULL && i < r->n; i++) {
        const struct flow_persist_name *p = &r->names[i];
        fprintf(f, "%s: dns-persist-01 %s\n", p->ident,
                flow_persist_name_ok(p) ? "OK" : "WILL FAIL AT THE CA");
        if (p->error[0] != '\0') {
            flow_persist_summary(p, line, sizeof line);
            fprintf(f, "  %s\n", line);
            continue;
        }
        fprintf(f, "  %s (zone %s)%s%s\n", p->qname, p->zone[0] ? p->zone : ".",
                strcmp(p->qname, p->target) != 0 ? ", an alias of " : "",
                strcmp(p->qname, p->target) != 0 ? p->target : "");
        for (size_t k = 0; k < p->nns; k++)
            fprintf(f, "    %s %s: %s\n", p->ns[k].name, p->ns[k].addr,
                    flow_persist_server_says(p, k));
    }
}
