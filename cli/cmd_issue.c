/*
 * cli/cmd_issue.c - `certpilot issue`: obtain a certificate and store it at
 * stable paths in the state directory.
 */
#include "cli/cli.h"

#include <getopt.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hooks/hooks.h"

#define NAMES_MAX       100
#define METHODS_MAX     3
#define HOOK_TIMEOUT_MS 120000
#define RESOLVERS_MAX   16
#define DNS_TIMEOUT_MAX 3600 /* seconds */
#define DNS_POLL_MS     2000 /* how often the nameservers are asked */

static void usage(FILE *f)
{
    fputs("usage: certpilot issue -d NAME [-d NAME]... [--cert-name NAME]\n"
          "         [--key-type ec256|ec384|rsa2048|rsa3072|rsa4096]\n"
          "         [--challenge TYPE[,TYPE...]] [--webroot DIR | --standalone]\n"
          "         [--http-port N] [--tls-port N] [--dns-hook PATH] [--preferred-chain CN]\n"
          "         [--resolver IP[:PORT]]... [--dns-timeout SECONDS] [--authoritative-port N]\n"
          "         [--reuse-key] [--agree-tos] [--email ADDR] [common options]\n"
          "TYPE: http-01 (default), dns-01, tls-alpn-01; a list gives the order of preference.\n"
          "dns-01: after the hook publishes a record, wait until every authoritative\n"
          "nameserver of its zone serves it before the CA is asked to validate:\n"
          "  --resolver IP[:PORT]    recursive resolver that finds the zone and its\n"
          "                          nameservers (repeatable; default: /etc/resolv.conf)\n"
          "  --dns-timeout SECONDS   how long to wait (default: 120; 0: do not wait)\n"
          "  --authoritative-port N  port of the nameservers (default: 53); for test labs\n"
          "                          whose nameservers listen on another port\n"
          "common options: --server URL|letsencrypt|letsencrypt-staging  --ca-bundle FILE\n"
          "                --state-dir DIR  -v/--verbose  --json\n",
          f);
}

/* How this run answers challenges: the struct acme_solver's context. */
struct solving {
    const char *webroot;
    unsigned webroot_created; /* directories made under the webroot (acme_webroot_write) */
    bool standalone;
    int http_port, tls_port;
    const char *dns_hook;
    struct caa_resolver_opts resolvers; /* finds the zone of a dns-01 record */
    unsigned dns_timeout_ms;            /* 0: no propagation wait */
    unsigned authoritative_port;
    struct acme_solver_server *http_srv, *tls_srv;
    bool verbose;
};

static bool supports(void *ctx, const char *type)
{
    const struct solving *s = ctx;
    if (strcmp(type, "http-01") == 0)
        return s->webroot != NULL || s->http_srv != NULL;
    if (strcmp(type, "tls-alpn-01") == 0)
        return s->tls_srv != NULL;
    if (strcmp(type, "dns-01") == 0)
        return s->dns_hook != NULL;
    return false;
}

static enum cp_code run_dns_hook(const struct solving *s, const char *command, const char *domain,
                                 const char *token, const char *key_authz, struct cp_err *err)
{
    char txt[44];
    struct hook_result hr = {0};
    enum cp_code rc = acme_dns01_txt(key_authz, txt, err);
    if (rc != CP_OK)
        return rc;
    const char *args[] = {domain, token, txt};
    rc = hook_dehydrated(s->dns_hook, command, args, 3, NULL, HOOK_TIMEOUT_MS, &hr, err);
    if (rc == CP_OK && !hook_succeeded(&hr)) {
        char how[48];
        if (hr.timed_out)
            snprintf(how, sizeof how, "timed out");
        else if (hr.exit_status >= 0)
            snprintf(how, sizeof how, "exited with status %d", hr.exit_status);
        else
            snprintf(how, sizeof how, "was killed by signal %d", hr.term_signal);
        /* The challenge cannot be answered: a challenge failure (exit 4). */
        rc = cp_err_set(err, CP_ECHALLENGE, "dns hook %s %s %s %s%s%.*s", s->dns_hook, command,
                        domain, how, hr.output_len ? "; it said: " : "",
                        (int)strcspn(hr.output ? hr.output : "", "\n"), hr.output ? hr.output : "");
    } else if (rc == CP_OK && s->verbose && hr.output_len)
        fprintf(stderr, "certpilot: dns hook %s: %s", command, hr.output);
    hook_result_clear(&hr);
    return rc;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* RFC 8555 §8.4: the CA may ask any authoritative server of the zone, so wait
 * until all of them serve the value the hook published. */
static enum cp_code wait_published(const struct solving *s, const char *domain,
                                   const char *key_authz, struct cp_err *err)
{
    char txt[44], name[CAA_NAME_MAX + 1], zone[CAA_NAME_MAX + 1], target[CAA_NAME_MAX + 1];
    struct caa_ns *ns = NULL;
    size_t nns = 0;
    struct timespec t0;

    if (s->dns_timeout_ms == 0)
        return CP_OK;
    enum cp_code rc = acme_dns01_txt(key_authz, txt, err);
    if (rc != CP_OK)
        return rc;
    int n = snprintf(name, sizeof name, "_acme-challenge.%s", domain);
    if (n < 0 || (size_t)n >= sizeof name)
        return cp_err_set(err, CP_EINVAL, "_acme-challenge.%s is longer than %d octets", domain,
                          CAA_NAME_MAX);
    rc = caa_zone_servers(&s->resolvers, name, zone, target, &ns, &nns, err);
    if (rc != CP_OK)
        return rc;
    const char *zname = zone[0] ? zone : ".";
    bool alias = strcmp(target, name) != 0;
    if (s->verbose)
        fprintf(stderr, "certpilot: waiting for %zu nameserver%s of %s to serve %s%s%s\n", nns,
                nns == 1 ? "" : "s", zname, name, alias ? ", an alias of " : "",
                alias ? target : "");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = caa_txt_wait(ns, nns, s->authoritative_port, target, txt, s->dns_timeout_ms, DNS_POLL_MS,
                      err);
    if (rc == CP_OK && s->verbose)
        fprintf(stderr, "certpilot: all %zu nameserver%s of %s serve %s (%.1f s)\n", nns,
                nns == 1 ? "" : "s", zname, name, seconds_since(&t0));
    free(ns);
    return rc;
}

static enum cp_code deploy(void *ctx, const char *type, const char *domain, const char *token,
                           const char *key_authz, struct cp_err *err)
{
    struct solving *s = ctx;
    if (strcmp(type, "http-01") == 0)
        return s->http_srv != NULL
                   ? acme_solver_server_add(s->http_srv, token, key_authz, err)
                   : acme_webroot_write(s->webroot, token, key_authz, &s->webroot_created, err);
    if (strcmp(type, "tls-alpn-01") == 0)
        return acme_solver_server_add(s->tls_srv, domain, key_authz, err);
    /* dns-01 */
    enum cp_code rc = run_dns_hook(s, "deploy_challenge", domain, token, key_authz, err);
    if (rc != CP_OK)
        return rc;
    rc = wait_published(s, domain, key_authz, err);
    if (rc != CP_OK) {
        /* A failed deploy is not cleaned up by the order: take the record
         * back here. */
        struct cp_err cerr = {0};
        if (run_dns_hook(s, "clean_challenge", domain, token, key_authz, &cerr) != CP_OK)
            cli_error("cleaning up the dns-01 challenge for %s: %s", domain, cerr.msg);
    }
    return rc;
}

static void cleanup(void *ctx, const char *type, const char *domain, const char *token,
                    const char *key_authz)
{
    struct solving *s = ctx;
    struct cp_err err = {0};
    if (strcmp(type, "http-01") == 0 && s->http_srv == NULL)
        acme_webroot_remove(s->webroot, token, &s->webroot_created);
    else if (strcmp(type, "dns-01") == 0 &&
             run_dns_hook(s, "clean_challenge", domain, token, key_authz, &err) != CP_OK)
        cli_error("cleaning up the dns-01 challenge for %s: %s", domain, err.msg);
    /* Built-in servers forget everything when they stop. */
}

static int parse_port(const char *opt, const char *arg, int *port)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (*arg == '\0' || *end != '\0' || v < 1 || v > 65535) {
        cli_error("%s \"%s\" is not a port number (1-65535)", opt, arg);
        return -1;
    }
    *port = (int)v;
    return 0;
}

static int parse_dns_timeout(const char *arg, unsigned *ms)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (*arg == '\0' || *end != '\0' || v < 0 || v > DNS_TIMEOUT_MAX) {
        cli_error("--dns-timeout \"%s\" is not a number of seconds from 0 to %d", arg,
                  DNS_TIMEOUT_MAX);
        return -1;
    }
    *ms = (unsigned)v * 1000;
    return 0;
}

static int parse_methods(const char *arg, const char **methods, size_t *n)
{
    static const char *const known[] = {"http-01", "dns-01", "tls-alpn-01"};
    *n = 0;
    const char *p = arg;
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *found = NULL;
        for (size_t i = 0; i < 3; i++)
            if (strlen(known[i]) == len && strncmp(p, known[i], len) == 0)
                found = known[i];
        if (found == NULL || *n == METHODS_MAX) {
            cli_error("--challenge \"%s\": use http-01, dns-01, tls-alpn-01, comma-separated", arg);
            return -1;
        }
        methods[(*n)++] = found;
        p += len + (p[len] == ',');
    }
    return *n ? 0 : -1;
}

static json_t *names_json(const char *const *names, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++)
        json_array_append_new(a, json_string(names[i]));
    return a;
}

/* Verify what the CA sent and store it; 0 or an exit status. */
static int store(const struct cli_common *c, const char *cert_name, const char *const *names,
                 size_t n, const struct acme_key *cert_key, const struct acme_issue_result *res)
{
    struct cp_err err = {0};
    struct acme_chain *chain = NULL;
    char *cert = NULL, *rest = NULL, *full = NULL, *keypem = NULL, live[4096];
    size_t keylen = 0;
    int status = 0;

    enum cp_code rc = acme_chain_parse(res->pem, strlen(res->pem), res->cert_url, &chain, &err);
    if (rc == CP_OK)
        rc = acme_chain_check_key(chain, cert_key, &err);
    if (rc == CP_OK)
        rc = acme_chain_check_names(chain, names, n, &err);
    if (rc == CP_OK)
        rc = acme_chain_pem(chain, &cert, &rest, &full, &err);
    if (rc == CP_OK)
        rc = acme_key_to_pem(cert_key, &keypem, &keylen, &err);
    if (rc == CP_OK)
        rc = cli_cert_store(c->state_dir, cert_name, keypem, keylen, cert, rest, full, live,
                            sizeof live, &err);
    if (rc != CP_OK) {
        status = cli_acme_fail(rc, &err, NULL);
        goto out;
    }
    time_t not_after = acme_chain_not_after(chain);
    char expiry[32];
    struct tm tm;
    gmtime_r(&not_after, &tm);
    strftime(expiry, sizeof expiry, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (c->json) {
        json_t *j =
            json_pack("{s:s, s:o, s:s, s:{s:s+, s:s+, s:s+, s:s+}, s:s, s:s?, s:I}", "cert_name",
                      cert_name, "names", names_json(names, n), "live_dir", live, "paths",
                      "privkey", live, "/privkey.pem", "cert", live, "/cert.pem", "chain", live,
                      "/chain.pem", "fullchain", live, "/fullchain.pem", "not_after", expiry,
                      "order_url", res->order_url, "requests", (json_int_t)res->requests);
        cli_print_json(j);
        json_decref(j);
    } else {
        printf("Certificate issued for %s%s (expires %s)\n", names[0], n > 1 ? " and others" : "",
               expiry);
        printf("  key:       %s/privkey.pem\n  fullchain: %s/fullchain.pem\n", live, live);
        printf("  cert:      %s/cert.pem\n  chain:     %s/chain.pem\n", live, live);
    }
out:
    if (keypem != NULL) {
        OPENSSL_cleanse(keypem, keylen);
        free(keypem);
    }
    free(cert);
    free(rest);
    free(full);
    acme_chain_free(chain);
    return status;
}

int cmd_issue(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"domain", required_argument, NULL, 'd'},
        {"cert-name", required_argument, NULL, 'n'},
        {"key-type", required_argument, NULL, 'k'},
        {"challenge", required_argument, NULL, 'c'},
        {"webroot", required_argument, NULL, 'w'},
        {"standalone", no_argument, NULL, 's'},
        {"http-port", required_argument, NULL, 'p'},
        {"tls-port", required_argument, NULL, 'P'},
        {"dns-hook", required_argument, NULL, 'H'},
        {"preferred-chain", required_argument, NULL, 'C'},
        {"agree-tos", no_argument, NULL, 't'},
        {"reuse-key", no_argument, NULL, 'R'},
        {"email", required_argument, NULL, 'e'},
        {"resolver", required_argument, NULL, 2001},
        {"dns-timeout", required_argument, NULL, 2002},
        {"authoritative-port", required_argument, NULL, 2003},
        {"help", no_argument, NULL, 'h'},
        CLI_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct cli_common common;
    const char *resolvers[RESOLVERS_MAX];
    int auth_port = 53;
    struct solving solving = {.http_port = 80,
                              .tls_port = 443,
                              .resolvers = {.servers = resolvers},
                              .dns_timeout_ms = 120000};
    const char *names[NAMES_MAX], *methods[METHODS_MAX] = {"http-01"};
    size_t nnames = 0, nmethods = 1;
    const char *cert_name = NULL, *preferred = NULL, *email = NULL;
    enum acme_key_type key_type = ACME_KEY_EC256;
    bool agree_tos = false, reuse_key = false;
    struct cp_err err = {0};
    int ch;

    cli_common_init(&common);
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":hvd:", longopts, NULL)) != -1) {
        if (cli_common_option(&common, ch, optarg))
            continue;
        switch (ch) {
        case 'd':
            if (nnames == NAMES_MAX) {
                cli_error("at most %d names in one certificate", NAMES_MAX);
                return CLI_EXIT_USAGE;
            }
            names[nnames++] = optarg;
            break;
        case 'n': cert_name = optarg; break;
        case 'k':
            if (acme_key_type_parse(optarg, &key_type, &err) != CP_OK) {
                cli_error("--key-type: %s", err.msg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'c':
            if (parse_methods(optarg, methods, &nmethods) != 0)
                return CLI_EXIT_USAGE;
            break;
        case 'w': solving.webroot = optarg; break;
        case 's': solving.standalone = true; break;
        case 'p':
            if (parse_port("--http-port", optarg, &solving.http_port) != 0)
                return CLI_EXIT_USAGE;
            break;
        case 'P':
            if (parse_port("--tls-port", optarg, &solving.tls_port) != 0)
                return CLI_EXIT_USAGE;
            break;
        case 'H': solving.dns_hook = optarg; break;
        case 'C': preferred = optarg; break;
        case 't': agree_tos = true; break;
        case 'R': reuse_key = true; break;
        case 'e': email = optarg; break;
        case 2001:
            if (solving.resolvers.nservers == RESOLVERS_MAX) {
                cli_error("at most %d --resolver options", RESOLVERS_MAX);
                return CLI_EXIT_USAGE;
            }
            resolvers[solving.resolvers.nservers++] = optarg;
            break;
        case 2002:
            if (parse_dns_timeout(optarg, &solving.dns_timeout_ms) != 0)
                return CLI_EXIT_USAGE;
            break;
        case 2003:
            if (parse_port("--authoritative-port", optarg, &auth_port) != 0)
                return CLI_EXIT_USAGE;
            break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default:
            cli_error("unknown option or missing value: \"%s\" (see certpilot issue --help)",
                      argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("unexpected argument \"%s\" (names go with -d)", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (nnames == 0) {
        cli_error("issue needs at least one name: -d example.com");
        return CLI_EXIT_USAGE;
    }
    /* Names are validated and normalized by the same rules as caa check. */
    static char normalized[NAMES_MAX][CAA_IDENT_MAX];
    for (size_t i = 0; i < nnames; i++) {
        char base[CAA_IDENT_MAX];
        bool wildcard;
        if (caa_name_normalize(names[i], normalized[i], base, &wildcard, &err) != CP_OK) {
            cli_error("%s", err.msg);
            return CLI_EXIT_USAGE;
        }
        names[i] = normalized[i];
    }
    if (solving.webroot != NULL && solving.standalone) {
        cli_error("--webroot and --standalone exclude each other");
        return CLI_EXIT_USAGE;
    }
    for (size_t i = 0; i < nmethods; i++) {
        bool ok = strcmp(methods[i], "http-01") == 0       ? solving.webroot || solving.standalone
                  : strcmp(methods[i], "tls-alpn-01") == 0 ? solving.standalone
                                                           : solving.dns_hook != NULL;
        if (!ok) {
            cli_error("%s needs %s", methods[i],
                      strcmp(methods[i], "http-01") == 0       ? "--webroot DIR or --standalone"
                      : strcmp(methods[i], "tls-alpn-01") == 0 ? "--standalone"
                                                               : "--dns-hook PATH");
            return CLI_EXIT_USAGE;
        }
    }
    if (solving.dns_hook != NULL && hook_check_executable(solving.dns_hook, &err) != CP_OK) {
        cli_error("--dns-hook: %s", err.msg);
        return CLI_EXIT_USAGE;
    }
    char default_name[CAA_IDENT_MAX];
    if (cert_name == NULL) {
        snprintf(default_name, sizeof default_name, "%s",
                 strncmp(names[0], "*.", 2) == 0 ? names[0] + 2 : names[0]);
        cert_name = default_name;
    }
    if (!cli_cert_name_valid(cert_name)) {
        cli_error("--cert-name \"%s\": use letters, digits, '.', '-' and '_'", cert_name);
        return CLI_EXIT_USAGE;
    }
    int status = cli_common_finish(&common);
    if (status != 0)
        return status;
    solving.verbose = common.verbose;
    solving.authoritative_port = (unsigned)auth_port;

    struct acme_client *client = NULL;
    struct acme_key *account_key = NULL, *cert_key = NULL;
    char *account_url = NULL, *contact = NULL;
    struct acme_issue_result res = {0};

    /* Local set-up first: a port in use fails before anything is ordered. */
    for (size_t i = 0; i < nmethods && solving.standalone; i++) {
        enum cp_code rc = CP_OK;
        if (strcmp(methods[i], "http-01") == 0 && solving.http_srv == NULL)
            rc = acme_http01_server_start(NULL, solving.http_port, &solving.http_srv, &err);
        else if (strcmp(methods[i], "tls-alpn-01") == 0 && solving.tls_srv == NULL)
            rc = acme_tlsalpn01_server_start(NULL, solving.tls_port, &solving.tls_srv, &err);
        if (rc != CP_OK) {
            status = cli_acme_fail(rc, &err, NULL);
            goto out;
        }
    }
    /* --reuse-key: the current certificate's key, when there is one (useful
     * with key pinning, e.g. TLSA records); otherwise a fresh key. */
    if (reuse_key && cli_cert_key_load(common.state_dir, cert_name, &cert_key, &err) != CP_OK) {
        status = cli_acme_fail(err.code, &err, NULL);
        goto out;
    }
    if (cert_key == NULL && acme_key_generate(key_type, &cert_key, &err) != CP_OK) {
        status = cli_acme_fail(err.code, &err, NULL);
        goto out;
    }
    status = cli_client_open(&common, &client);
    if (status != 0)
        goto out;
    if (email != NULL && (contact = malloc(strlen(email) + 8)) != NULL)
        snprintf(contact, strlen(email) + 8, "mailto:%s", email);
    const char *contacts[1] = {contact};
    struct acme_account_req reg = {
        .agree_tos = agree_tos, .contacts = contacts, .ncontacts = contact ? 1 : 0};
    status = cli_account_ensure(&common, client, &reg, &account_key, &account_url);
    if (status != 0)
        goto out;

    struct acme_issue_req req = {
        .names = names,
        .n = nnames,
        .methods = methods,
        .nmethods = nmethods,
        .cert_key = cert_key,
        .preferred_chain = preferred,
        .solver = {.supports = supports, .deploy = deploy, .cleanup = cleanup, .ctx = &solving},
    };
    enum cp_code rc = acme_issue(client, &req, &res, &err);
    if (rc != CP_OK) {
        if (rc == CP_ECHALLENGE && res.failed_identifier != NULL)
            cli_error("challenge %s for %s failed", res.failed_type ? res.failed_type : "",
                      res.failed_identifier);
        status = cli_acme_fail(rc, &err, &res.problem);
        goto out;
    }
    status = store(&common, cert_name, names, nnames, cert_key, &res);
out:
    acme_issue_result_clear(&res);
    acme_solver_server_stop(solving.http_srv);
    acme_solver_server_stop(solving.tls_srv);
    acme_key_free(cert_key);
    acme_key_free(account_key);
    free(account_url);
    free(contact);
    acme_client_free(client);
    return status;
}
