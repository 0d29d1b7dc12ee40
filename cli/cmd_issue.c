/*
 * cli/cmd_issue.c - `certpilot issue`: obtain a certificate and store it at
 * stable paths in the state directory.
 */
#define _DEFAULT_SOURCE /* realpath() */
#include "cli/cli.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/civil.h"

#include "common/file.h"
#include "hooks/hooks.h"

#define NAMES_MAX          100
#define METHODS_MAX        3
#define HOOK_TIMEOUT_MS    120000
#define DNS_TIMEOUT_MAX    3600  /* seconds */
#define DNS_POLL_MS        2000  /* how often the nameservers are asked */
#define ISSUE_LOCK_TIMEOUT 300   /* seconds to wait for a renew run to finish */
#define WAIT_MAX_S         86400 /* --wait-timeout: one day at most */
#define KEEP_VERSIONS      5     /* --keep-versions default */
#define KEEP_VERSIONS_MAX  1000

static void usage(FILE *f)
{
    fputs("usage: certpilot issue -d NAME[,NAME...] [-d NAME]... [--ip-address ADDR]...\n"
          "         [--cert-name NAME]\n"
          "         [--key-type ec256|ec384|rsa2048|rsa3072|rsa4096|ecdsa|rsa]\n"
          "         [--elliptic-curve secp256r1|secp384r1] [--rsa-key-size 2048|3072|4096]\n"
          "         [--challenge TYPE[,TYPE...]] [[-w DIR] -d NAME...]... [--webroot DIR]\n"
          "         [--webroot-map NAME:DIR]... [--standalone | --http-shared]\n"
          "         [--no-webroot-check | --webroot-check] [--webroot-check-port N]\n"
          "         [--http-port N] [--tls-port N] [--http-address ADDR] [--tls-address ADDR]\n"
          "         [--hook PATH | --dns-hook PATH]\n"
          "         [--pre-hook CMD] [--post-hook CMD] [--deploy-hook CMD] [--preferred-chain CN]\n"
          "         [--caa-preflight enforce|warn|off] [--ca-identity DOMAIN]\n"
          "         [--resolver IP[:PORT]]... [--timeout SECONDS] [--tries N]\n"
          "         [--dns-timeout SECONDS] [--authoritative-port N] [--dry-run[=check|order]]\n"
          "         [--reuse-key | --no-reuse-key] [--agree-tos] [--email ADDR] [--config FILE]\n"
          "         [--wait-timeout SECONDS] [--keep-versions N] [--install-dir DIR]\n"
          "         [--force-renewal] [--expand | --replace-names]\n"
          "         [--preferred-profile NAME | --required-profile NAME] [common options]\n"
          "TYPE: http-01 (default), dns-01, tls-alpn-01, dns-persist-01; a list gives the order\n"
          "of preference.  dns-persist-01 answers with a standing record (certpilot\n"
          "persist-record prints it); every nameserver must serve it before anything is ordered.\n"
          "certbot's spellings: --domains (= -d; both take comma-separated names),\n"
          "--webroot-path (= -w = --webroot), --key-type ecdsa with --elliptic-curve,\n"
          "--key-type rsa with --rsa-key-size; saved as certpilot's keys (key-type = ec384).\n"
          "One webroot per name: each -w DIR serves the -d names that follow it; names\n"
          "before any -w use the last -w (saved as webroot, the others as webroot-map).\n"
          "--ip-address ADDR: an IPv4 or IPv6 address as an identifier (RFC 8738), alone or\n"
          "with -d names; validated with http-01 or tls-alpn-01 only, and not subject to CAA.\n"
          "Long options must be spelled in full (no abbreviations).\n"
          "\n",
          f);
    fputs("Profiles (the CA's meta.profiles, e.g. Let's Encrypt's classic, tlsserver,\n"
          "shortlived); kept for renew:\n"
          "  --preferred-profile NAME   asked for when the CA offers it, else left out (said)\n"
          "  --required-profile NAME    not offered: nothing is ordered (exit 78)\n"
          "\n",
          f);
    fputs("CAA preflight: before anything is ordered, each name's CAA records are checked the\n"
          "way the CA checks them; an order the CA would refuse is not placed (exit 1; exit 2\n"
          "when the DNS look-ups fail).  Per name, the first TYPE its records allow is used.\n"
          "  --caa-preflight MODE    enforce (default), warn (report and go on), off\n"
          "  --ca-identity DOMAIN    issuer domain the CA looks for in CAA records\n"
          "                          (default: the directory's caaIdentities)\n"
          "  --resolver IP[:PORT]    recursive resolver for the CAA look-ups and for finding\n"
          "                          a dns-01 zone (repeatable; default: /etc/resolv.conf)\n"
          "  --timeout SECONDS       time allowed for each CAA query (default: 10)\n"
          "  --tries N               attempts per query within that time (default: 2)\n",
          f);
    fputs("Hooks: CMD is a program and its arguments separated by spaces (no shell), or\n"
          "  sh:COMMAND-LINE, run as /bin/sh -c COMMAND-LINE (data only in the environment).\n"
          "  Executables in hooks.d/{pre,post,deploy}/ next to --config run too, in name order.\n"
          "  --pre-hook CMD / --post-hook CMD   before ordering / after, whatever happened\n"
          "  --deploy-hook CMD   after the certificate is stored (RENEWED_LINEAGE,\n"
          "                      RENEWED_DOMAINS); kept for renew with the other settings\n"
          "  --hook PATH         a dehydrated hook script: dns-01 challenges, deploy_cert,\n"
          "                      startup_hook, exit_hook, ...  (--dns-hook: challenges only)\n"
          "  --config FILE       defaults (default /etc/certpilot/config, if it exists)\n"
          "\n"
          "An existing certificate (--cert-name, or the first name's): its renewal.conf\n"
          "settings are used, those given here replace theirs key by key (the rest of\n"
          "the file, comments and hand edits included, stays).  When its names are the\n"
          "same and it is not due, nothing is sent to the CA (exit 0).\n"
          "  --force-renewal     replace it even though it is not due\n"
          "  --expand            the names given add to its names (none may be dropped)\n"
          "  --replace-names     the names given replace its names, dropping any\n"
          "  --keep-versions N   old versions kept after a renewal (default 5, 0: all;\n"
          "                      the current one and the one before it always stay)\n"
          "  --install-dir DIR   each new certificate is also written into DIR as\n"
          "                      privkey.pem (0600), cert.pem, chain.pem, fullchain.pem,\n"
          "                      before the deploy hooks run (kept for renew)\n"
          "--wait-timeout SECONDS: how long to wait for the CA to validate and to issue\n"
          "  (default: 300); a run that gives up can simply be run again\n"
          "dns-01: after the hook publishes a record, wait until every authoritative\n"
          "nameserver of its zone serves it before the CA is asked to validate:\n"
          "  --dns-timeout SECONDS   how long to wait (default: 120; 0: do not wait)\n"
          "  --authoritative-port N  port of the nameservers (default: 53); for test labs\n"
          "                          whose nameservers listen on another port\n"
          "--standalone: built-in servers for http-01 (--http-port, default 80) and\n"
          "tls-alpn-01 (--tls-port, default 443) on all addresses, IPv6 included, or on\n"
          "the one numeric IPv4/IPv6 address of --http-address / --tls-address.\n"
          "--http-shared: http-01 answered only by the fleet's responders (certpilot\n"
          "serve-challenges on the hosts the names resolve to), which read the key\n"
          "authorization from the shared store (--store etcd://...); nothing listens here\n"
          "and no webroot is written.  With a shared store, every http-01 answer is\n"
          "published there too (also with --webroot or --standalone).\n"
          "Webroot check: before ordering, a probe file written under each webroot is\n"
          "fetched from http://NAME/.well-known/acme-challenge/ as the CA will fetch the\n"
          "token (NAME resolved through --resolver); a name that does not serve it stops\n"
          "the run (exit 4) before anything is sent to the CA.\n"
          "  --no-webroot-check      skip it (a name that does not route back to this host,\n"
          "                          e.g. behind a load balancer); kept in renewal.conf\n"
          "  --webroot-check         check again after --no-webroot-check\n"
          "  --webroot-check-port N  port fetched (default 80, where every real CA\n"
          "                          validates; for test CAs such as Pebble)\n"
          "--dry-run (=check): directory, account look-up, preflight and solver checks; no\n"
          "order, nothing written.  --dry-run=order: a real order whose certificate is not\n"
          "saved (the default for letsencrypt-staging; refused for letsencrypt).\n"
          "common options: --server URL|letsencrypt|letsencrypt-staging  --ca-bundle FILE\n"
          "                --state-dir DIR  -v/--verbose  -q/--quiet  --json\n"
          "a store shared by several hosts: --store etcd[s]://HOST:PORT[,...]/PREFIX\n"
          "  --store-key-file FILE  --store-ca-file FILE  --store-client-cert FILE\n"
          "  --store-client-key FILE  --store-user USER  --store-password-file FILE\n"
          "  --store-lock-ttl SECONDS  (see SHARED STORE in certpilot(1))\n",
          f);
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

/* A numeric IPv4 or IPv6 address to bind (no names: nothing is resolved). */
static int parse_address(const char *opt, const char *arg, const char **addr)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, arg, buf) != 1 && inet_pton(AF_INET6, arg, buf) != 1) {
        cli_error("%s \"%s\" is not a numeric IPv4 or IPv6 address (e.g. 192.0.2.1 or "
                  "2001:db8::1; leave it out to listen on all addresses)",
                  opt, arg);
        return -1;
    }
    *addr = arg;
    return 0;
}

/* A whole number of seconds from min to max for `option`. */
static int parse_seconds(const char *option, const char *arg, long min, long max, unsigned *s)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (*arg == '\0' || *end != '\0' || v < min || v > max) {
        cli_error("%s \"%s\" is not a number of seconds from %ld to %ld", option, arg, min, max);
        return -1;
    }
    *s = (unsigned)v;
    return 0;
}

static int parse_methods(const char *arg, const char **methods, size_t *n)
{
    static const char *const known[] = {"http-01", "dns-01", "tls-alpn-01", "dns-persist-01"};
    *n = 0;
    const char *p = arg;
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *found = NULL;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            if (strlen(known[i]) == len && strncmp(p, known[i], len) == 0)
                found = known[i];
        if (found == NULL || *n == METHODS_MAX) {
            cli_error("--challenge \"%s\": use http-01, dns-01, tls-alpn-01, dns-persist-01, "
                      "comma-separated",
                      arg);
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

enum dry_run { DRY_NONE, DRY_DEFAULT, DRY_CHECK, DRY_ORDER };
enum pf_mode { PF_ENFORCE, PF_WARN, PF_OFF };

/* Everything one `certpilot issue` run works with. */
struct issue {
    struct cli_common common;
    struct cli_dns dns;
    struct flow_solve_opts solving; /* how challenges are answered */
    const char *names[NAMES_MAX], *methods[METHODS_MAX];
    size_t nnames, nmethods;
    char normalized[NAMES_MAX][CAA_IDENT_MAX];
    const char *cert_name, *preferred, *email, *ca_identity;
    char default_name[CAA_IDENT_MAX];
    enum acme_key_type key_type;
    bool agree_tos, reuse_key;
    bool force_renewal, expand, replace_names;
    unsigned keep_versions;
    const char *webroot_src, *standalone_src; /* where each came from (origins) */
    const char *shared_src;                   /* where --http-shared came from */
    /* the key as given: --key-type, --elliptic-curve, --rsa-key-size */
    const char *key_given[3], *key_src;
    char split[NAMES_MAX][CAA_IDENT_MAX]; /* names of "-d a,b" */
    /* One webroot per name: "-w DIR -d NAME" on the command line (the name's
     * index in names[]) or --webroot-map NAME:DIR (its name); later wins. */
    struct wmap {
        const char *name; /* NULL: names[index] */
        size_t index;
        const char *dir;
        bool command_line;
    } wmap[NAMES_MAX];
    size_t nwmap;
    const char *wmap_src, *cur_webroot; /* cur: the last -w so far on the command line */
    bool cur_used;                      /* a -d followed it */
    /* the map handed to the solver (names normalized) and its settings */
    const char *wr_names[NAMES_MAX], *wr_dirs[NAMES_MAX];
    char wr_norm[NAMES_MAX][CAA_IDENT_MAX];
    char *wr_text[NAMES_MAX]; /* "NAME:DIR" for renewal.conf */
    bool existing;            /* the lineage exists: its renewal.conf is updated, not rewritten */
    enum pf_mode pf_mode;
    enum dry_run dry_run;
    int auth_port;
    bool no_webcheck; /* --no-webroot-check */
    bool for_renew;   /* run by renew, which refuses a dry-run order per certificate */
    int webcheck_port;
    /* while running */
    struct {
        struct flow_issue_result r; /* the run: preflight, solver, account, order */
    } run;
    bool json_done; /* the one JSON object of --json was made */
    json_t *result; /* that object, printed with the exit status at the end (finish()) */
    /* hooks (a command line of words, or the dehydrated hook's path) */
    const char *pre_hook, *post_hook, *deploy_hook;
    const char *hook; /* --hook: the whole dehydrated protocol (--dns-hook: challenges only) */
    const char *install_dir; /* --install-dir: each new version copied there too */
    /* --config: hooks.d/ is next to it */
    const char *config;
    /* the settings as given, to be written into renewal.conf */
    struct setting {
        const char *key, *value;
        bool command_line; /* not from a file */
    } settings[NAMES_MAX + 64];
    size_t nsettings;
    const char *const *origin; /* per argv index: "FILE:LINE" or NULL */
    /* renew: the certificate this order replaces (ARI), engine output; a
     * dry run only reports it (would_replace) */
    const char *replaces;
    const char *would_replace; /* what a real run would put in newOrder, or NULL */
    bool directory_read;       /* the CA's directory was read: would_replace is known */
    FILE *out;                 /* what a run reports (stdout for issue) */
    char not_after[32];        /* of the certificate obtained */
    char live_dir[4400];       /* where it was stored */
    const char *outcome;       /* "issued", "caa_refused", "caa_dns_error", "failed", "dry_run" */
    /* --preferred-profile (2050) or --required-profile (2051), the last given */
    const char *profile, *profile_src;
    int profile_opt;                              /* 0: none */
    char profile_used[ACME_PROFILE_NAME_MAX + 1]; /* what the CA said it used ("" none) */
    /* a shared store: the lineage lock held while ordering and storing */
    const struct store_lineage_lock *lock;
    struct cp_store *borrowed; /* renew's store, used in place of its own (not closed) */
};

/* The webroot check's findings, per name. */
static json_t *webcheck_json(const struct flow_webcheck_result *w)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && w != NULL && i < w->n; i++) {
        const struct flow_webcheck_item *it = &w->items[i];
        json_array_append_new(
            a, json_pack("{s:s, s:s, s:s?, s:s, s:s}", "name", it->name, "webroot", it->dir,
                         "address", it->addr[0] ? it->addr : NULL, "outcome",
                         flow_webcheck_outcome_name(it->outcome), "message", it->message));
    }
    return a;
}

/* The run's JSON object, kept until the exit status is known. */
static void print_json(struct issue *is, json_t *j)
{
    json_decref(is->result);
    is->result = j;
    is->json_done = true;
}

/* The end of a run: with --json, its object with "outcome" and the exit
 * status (a hook may still fail after the certificate is reported). */
static int finish(struct issue *is, int status)
{
    if (!is->common.json || cli_json_done())
        return status;
    const char *outcome = is->outcome;
    if (status == CLI_EXIT_HOOK)
        outcome = "hook_failed";
    else if (outcome == NULL)
        outcome = status == 0 ? "done" : "failed";
    json_t *j = is->result ? is->result
                           : json_pack("{s:s?, s:o}", "cert_name", is->cert_name, "names",
                                       names_json(is->names, is->nnames));
    is->result = NULL;
    cli_json_result(j, outcome, status);
    return status;
}

/* --json after a failure that printed no object of its own: the exit status
 * and what the CA said, so that a script gets an object in every outcome
 * (the message itself is on stderr). */
static void print_failure_json(struct issue *is, int status, const struct acme_issue_result *res)
{
    json_t *j =
        json_pack("{s:s, s:o, s:s, s:i, s:s?, s:s?, s:s?, s:o, s:o}", "cert_name", is->cert_name,
                  "names", names_json(is->names, is->nnames), "outcome", "failed", "exit_status",
                  status, "order_url", res->order_url, "failed_identifier", res->failed_identifier,
                  "failed_type", res->failed_type, "problem", cli_problem_json(&res->problem),
                  "preflight", cli_preflight_json(&is->run.r.pf));
    if (j != NULL && is->run.r.web != NULL) {
        json_object_set_new(j, "outcome", json_string(is->outcome ? is->outcome : "failed"));
        json_object_set_new(j, "webroot_check", webcheck_json(is->run.r.web));
    }
    if (j != NULL && is->run.r.persist != NULL) {
        json_object_set_new(j, "outcome", json_string(is->outcome ? is->outcome : "failed"));
        json_object_set_new(j, "persist_check", cli_persist_json(is->run.r.persist));
    }
    print_json(is, j);
}

/* The JSON of a run that stopped because of CAA. */
static void print_caa_stop(struct issue *is, const struct flow_preflight *pf, const char *stage,
                           enum caa_status outcome)
{
    if (is->common.json) {
        print_json(is, json_pack("{s:s, s:o, s:s, s:s, s:o}", "cert_name", is->cert_name, "names",
                                 names_json(is->names, is->nnames), "outcome",
                                 outcome == CAA_DENIED ? "caa_refused" : "caa_dns_error", "stage",
                                 stage, "preflight", cli_preflight_json(pf)));
    } else {
        cli_preflight_text(is->out, pf);
    }
}

/*
 * A finished preflight or recheck, shown: the warnings of records other CAs
 * may read differently when allowed; in warn mode the report and a warning;
 * when it stops the run (enforce), the report and why nothing more was sent.
 */
static void caa_show(void *ctx, const struct flow_preflight *pf, const char *stage, bool stops)
{
    struct issue *is = ctx;
    enum caa_status outcome = flow_preflight_outcome(pf);
    bool recheck = strcmp(stage, "recheck") == 0;
    if (!recheck && pf->account_uri == NULL && !is->common.json)
        cli_error("note: no account yet, so records with accounturi= were judged as for "
                  "another account");
    if (outcome == CAA_ALLOWED) {
        if (!is->common.json)
            cli_preflight_warnings(is->out, pf);
        return;
    }
    if (!stops) {
        if (!is->common.json)
            cli_preflight_text(is->out, pf);
        cli_error("warning: the CAA %s %s; going on because of --caa-preflight=warn",
                  recheck ? "recheck before finalize" : "preflight",
                  outcome == CAA_DENIED ? "says the CA will refuse this order"
                                        : "could not complete");
        return;
    }
    is->outcome = outcome == CAA_DENIED ? "caa_refused" : "caa_dns_error";
    print_caa_stop(is, pf, stage, outcome);
    if (outcome == CAA_DENIED)
        cli_error("CAA %s refused the order: %s", recheck ? "recheck" : "preflight",
                  recheck ? "finalize was not sent (the order stays unfinished at the CA)"
                          : "nothing was sent to the CA");
    else
        cli_error("CAA %s could not complete (a DNS failure, shown above): %s; "
                  "--caa-preflight=warn goes on regardless",
                  recheck ? "recheck" : "preflight",
                  recheck ? "finalize was not sent" : "nothing was sent to the CA");
}

/* --dry-run=check: what the solvers need, without keeping anything. */
static int dry_checks(struct issue *is, json_t *checks)
{
    struct cp_err err;
    int status = 0;
    const struct flow_webcheck_result *w = is->run.r.web;
    for (size_t i = 0; w != NULL && i < w->n; i++) { /* a failure stopped the run before */
        json_array_append_new(checks, json_pack("{s:s, s:b, s:s}", "check", w->items[i].message,
                                                "ok", true, "detail", ""));
        if (!is->common.json)
            fprintf(is->out, "  %-4s %s\n", "ok", w->items[i].message);
    }
    for (size_t i = 0; i < is->nmethods; i++) {
        char what[128];
        cp_err_clear(&err);
        enum cp_code rc =
            flow_solver_check(is->run.r.solver, is->methods[i], what, sizeof what, &err);
        json_array_append_new(checks, json_pack("{s:s, s:b, s:s}", "check", what, "ok", rc == CP_OK,
                                                "detail", rc == CP_OK ? "" : err.msg));
        if (!is->common.json)
            fprintf(is->out, "  %-4s %s%s%s\n", rc == CP_OK ? "ok" : "FAIL", what,
                    rc == CP_OK ? "" : ": ", rc == CP_OK ? "" : err.msg);
        if (rc != CP_OK && status == 0)
            status = cli_acme_fail(rc, &err, NULL);
    }
    /* A real run writes the state directory too (ProtectSystem=strict). */
    cp_err_set(&err, CP_EIO, "the state directory cannot be written");
    bool ro = cp_err_readonly(&err, is->common.state_dir);
    json_array_append_new(checks, json_pack("{s:s, s:b, s:s}", "check",
                                            "state directory is on a writable mount", "ok", !ro,
                                            "detail", ro ? err.msg : ""));
    if (!is->common.json)
        fprintf(is->out, "  %-4s state directory is on a writable mount%s%s\n", ro ? "FAIL" : "ok",
                ro ? ": " : "", ro ? err.msg : "");
    if (ro && status == 0)
        status = cli_acme_fail(CP_EIO, &err, NULL);
    return status;
}

/* The type each name will use, as JSON: {"name": "http-01" | null}. */
static json_t *planned_methods(const struct issue *is)
{
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < is->nnames; i++) {
        const char *m =
            is->run.r.pf.report ? flow_preflight_chosen(&is->run.r.pf, is->names[i]) : NULL;
        /* an IP address (no CAA): the first type that can validate it */
        for (size_t k = 0; m == NULL && acme_ip_normalize(is->names[i], NULL) && k < is->nmethods;
             k++)
            if (acme_ident_method_check(is->names[i], is->methods[k], NULL) == CP_OK)
                m = is->methods[k];
        if (m == NULL && (is->run.r.pf.report == NULL || is->pf_mode == PF_WARN))
            m = is->methods[0]; /* no CAA constraint known: the first preference */
        json_object_set_new(o, is->names[i], m ? json_string(m) : json_null());
    }
    return o;
}

static json_t *json_string_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

/* A dry renewal: the certificate a real one would say it replaces (ARI). */
static void replaces_line(const struct issue *is)
{
    if (is->replaces == NULL)
        return;
    if (is->would_replace != NULL)
        fprintf(is->out, "  a real run would name the certificate it replaces (ARI): %s\n",
                is->would_replace);
    else
        fprintf(is->out, "  the CA offers no ARI: a real run names no certificate it replaces\n");
}

static int dry_run_report(struct issue *is)
{
    json_t *checks = json_array(), *methods = planned_methods(is);
    if (!is->common.json) {
        fprintf(is->out, "Dry run (nothing ordered, nothing written) against %s\n",
                is->common.server);
        fprintf(is->out, "  account: %s\n",
                is->run.r.account_url ? is->run.r.account_url
                                      : "none yet (a real run registers one)");
        for (size_t i = 0; i < is->nnames; i++) {
            const char *m = json_string_value(json_object_get(methods, is->names[i]));
            fprintf(is->out, "  would order %s with %s\n", is->names[i], m ? m : "no usable type");
        }
        replaces_line(is);
    }
    int status = dry_checks(is, checks);
    if (is->common.json) {
        json_t *j =
            json_pack("{s:s, s:s, s:o, s:s, s:s?, s:o, s:o, s:o}", "dry_run", "check", "cert_name",
                      is->cert_name, "names", names_json(is->names, is->nnames), "server",
                      is->common.server, "account_url", is->run.r.account_url, "preflight",
                      cli_preflight_json(&is->run.r.pf), "methods", methods, "checks", checks);
        if (j != NULL && is->run.r.persist != NULL)
            json_object_set_new(j, "persist_check", cli_persist_json(is->run.r.persist));
        if (j != NULL && is->replaces != NULL)
            json_object_set_new(j, "replaces", json_string_or_null(is->would_replace));
        print_json(is, j);
    } else {
        json_decref(methods);
        json_decref(checks);
        fprintf(is->out, "%s\n",
                status == 0 ? "Dry run: everything is ready for a real run."
                            : "Dry run: fix the failed check above first.");
    }
    return status;
}

/* What the order used, per name: {"name": "http-01"}, and the reused ones. */
static void used_json(const struct acme_issue_result *res, json_t **methods, json_t **reused)
{
    *methods = json_object();
    *reused = json_array();
    for (size_t i = 0; *methods && *reused && i < res->nauthzs; i++) {
        const struct acme_authz_used *u = &res->authzs[i];
        json_object_set_new(*methods, u->ident, u->type ? json_string(u->type) : json_null());
        if (u->reused)
            json_array_append_new(*reused, json_string(u->ident));
    }
}

/* What was issued and where it is (or that a dry run kept nothing). */
static void report(struct issue *is, const struct flow_issue_kept *kept,
                   const struct acme_issue_result *res)
{
    bool save = is->dry_run == DRY_NONE;
    const char *expiry = kept->not_after, *live = kept->live_dir;
    snprintf(is->not_after, sizeof is->not_after, "%s", expiry);
    snprintf(is->live_dir, sizeof is->live_dir, "%s", live);
    if (is->common.json) {
        json_t *methods, *reused, *j;
        used_json(res, &methods, &reused);
        if (save)
            j = json_pack("{s:s, s:o, s:s, s:{s:s+, s:s+, s:s+, s:s+}, s:s, s:s?, s:I}",
                          "cert_name", is->cert_name, "names", names_json(is->names, is->nnames),
                          "live_dir", live, "paths", "privkey", live, "/privkey.pem", "cert", live,
                          "/cert.pem", "chain", live, "/chain.pem", "fullchain", live,
                          "/fullchain.pem", "not_after", expiry, "order_url", res->order_url,
                          "requests", (json_int_t)res->requests);
        else
            j = json_pack("{s:s, s:s, s:o, s:s, s:s?, s:I}", "dry_run", "order", "cert_name",
                          is->cert_name, "names", names_json(is->names, is->nnames), "not_after",
                          expiry, "order_url", res->order_url, "requests",
                          (json_int_t)res->requests);
        json_object_set_new(j, "preflight", cli_preflight_json(&is->run.r.pf));
        if (is->run.r.web != NULL)
            json_object_set_new(j, "webroot_check", webcheck_json(is->run.r.web));
        if (is->run.r.persist != NULL)
            json_object_set_new(j, "persist_check", cli_persist_json(is->run.r.persist));
        json_object_set_new(j, "methods", methods);
        json_object_set_new(j, "reused", reused);
        json_object_set_new(j, "profile",
                            is->profile_used[0] ? json_string(is->profile_used) : json_null());
        if (!save && is->replaces != NULL)
            json_object_set_new(j, "replaces", json_string_or_null(is->would_replace));
        print_json(is, j);
    } else if (save) {
        if (is->run.r.pf.report != NULL && flow_preflight_outcome(&is->run.r.pf) == CAA_ALLOWED)
            fprintf(is->out, "CAA preflight: every name allowed for %s\n",
                    is->run.r.pf.params[0].ca_identity);
        fputs("Certificate issued for ", is->out);
        cli_names_print(is->out, is->names, is->nnames);
        fprintf(is->out, " (expires %s)\n", expiry);
        fprintf(is->out, "  key:       %s/privkey.pem\n  fullchain: %s/fullchain.pem\n", live,
                live);
        fprintf(is->out, "  cert:      %s/cert.pem\n  chain:     %s/chain.pem\n", live, live);
        if (is->profile_used[0])
            fprintf(is->out, "  profile:   %s\n", is->profile_used);
    } else {
        fputs("Dry run: the CA issued a certificate for ", is->out);
        cli_names_print(is->out, is->names, is->nnames);
        fprintf(is->out, " (expires %s); nothing was saved.\n", expiry);
        replaces_line(is);
    }
}

static int parse_mode(const char *arg, enum pf_mode *mode)
{
    if (strcmp(arg, "enforce") == 0)
        *mode = PF_ENFORCE;
    else if (strcmp(arg, "warn") == 0)
        *mode = PF_WARN;
    else if (strcmp(arg, "off") == 0)
        *mode = PF_OFF;
    else {
        cli_error("--caa-preflight \"%s\": use enforce, warn or off", arg);
        return -1;
    }
    return 0;
}

static int parse_dry_run(const char *arg, enum dry_run *d)
{
    if (arg == NULL)
        *d = DRY_DEFAULT;
    else if (strcmp(arg, "check") == 0)
        *d = DRY_CHECK;
    else if (strcmp(arg, "order") == 0)
        *d = DRY_ORDER;
    else {
        cli_error("--dry-run=%s: use --dry-run, --dry-run=check or --dry-run=order", arg);
        return -1;
    }
    return 0;
}

/* issue's options; their long names are also the keys of the config files. */
static const struct option issue_options[] = {
    {"domain", required_argument, NULL, 'd'},
    {"domains", required_argument, NULL, 'd'}, /* certbot's spelling */
    {"ip-address", required_argument, NULL, 2060},
    {"cert-name", required_argument, NULL, 'n'},
    {"key-type", required_argument, NULL, 'k'},
    {"elliptic-curve", required_argument, NULL, 2021},
    {"rsa-key-size", required_argument, NULL, 2022},
    {"challenge", required_argument, NULL, 'c'},
    {"webroot", required_argument, NULL, 'w'},
    {"webroot-path", required_argument, NULL, 'w'}, /* certbot's spelling */
    {"webroot-map", required_argument, NULL, 2023},
    {"standalone", no_argument, NULL, 's'},
    {"http-shared", no_argument, NULL, 2070},
    {"http-port", required_argument, NULL, 'p'},
    {"tls-port", required_argument, NULL, 'P'},
    {"http-address", required_argument, NULL, 2013},
    {"tls-address", required_argument, NULL, 2014},
    {"hook", required_argument, NULL, 'H'},
    {"dns-hook", required_argument, NULL, 2012},
    {"pre-hook", required_argument, NULL, 2007},
    {"post-hook", required_argument, NULL, 2008},
    {"deploy-hook", required_argument, NULL, 2009},
    {"config", required_argument, NULL, 2010},
    {"preferred-chain", required_argument, NULL, 'C'},
    {"agree-tos", no_argument, NULL, 't'},
    {"reuse-key", no_argument, NULL, 'R'},
    {"email", required_argument, NULL, 'e'},
    {"dns-timeout", required_argument, NULL, 2002},
    {"authoritative-port", required_argument, NULL, 2003},
    {"ca-identity", required_argument, NULL, 2004},
    {"caa-preflight", required_argument, NULL, 2005},
    {"dry-run", optional_argument, NULL, 2006},
    {"wait-timeout", required_argument, NULL, 2015},
    {"force-renewal", no_argument, NULL, 2016},
    {"expand", no_argument, NULL, 2017},
    {"replace-names", no_argument, NULL, 2018},
    {"keep-versions", required_argument, NULL, 2019},
    {"no-reuse-key", no_argument, NULL, 2020},
    {"webroot-check", no_argument, NULL, 2040},
    {"no-webroot-check", no_argument, NULL, 2041},
    {"webroot-check-port", required_argument, NULL, 2042},
    {"install-dir", required_argument, NULL, 2024},
    {"preferred-profile", required_argument, NULL, 2050},
    {"required-profile", required_argument, NULL, 2051},
    {"help", no_argument, NULL, 'h'},
    CLI_COMMON_LONGOPTS,
    CLI_DNS_LONGOPTS,
    {NULL, 0, NULL, 0},
};

const struct option *cli_issue_options(void)
{
    return issue_options;
}

/* Options that are a certificate's settings (kept in renewal.conf); the
 * others belong to one run. */
static bool persistent(int ch)
{
    switch (ch) {
    case 't':
    case 'e':
    case 'h':
    case 'n':
    case 'v':
    case 'q':
    case 1003:
    case 1004:
    case 2006:
    case 2010:
    case 2016:
    case 2017:
    case 2018: return false;
    default: return !CLI_STORE_OPTION(ch); /* the store is the host's, not the certificate's */
    }
}

static const char *option_name(int ch)
{
    for (const struct option *o = issue_options; o->name != NULL; o++)
        if (o->val == ch)
            return o->name;
    return "?";
}

/* The source of argv[i]: the file part of its origin, "" for the command line. */
static size_t source_len(const char *origin)
{
    return origin == NULL ? 0 : strcspn(origin, ":");
}

static bool same_source(const char *a, const char *b)
{
    size_t la = source_len(a), lb = source_len(b);
    return la == lb && (la == 0 || strncmp(a, b, la) == 0);
}

static void drop_settings(struct issue *is, const char *key)
{
    size_t k = 0;
    for (size_t i = 0; i < is->nsettings; i++)
        if (strcmp(is->settings[i].key, key) != 0)
            is->settings[k++] = is->settings[i];
    is->nsettings = k;
}

/* Remember a setting for renewal.conf: lists add up, the rest is replaced. */
static void record(struct issue *is, int ch, const char *value, const char *origin)
{
    /* --no-reuse-key is "reuse-key = no"; --webroot-check "no-webroot-check = no"
     * (a "no" setting adds no option when read back: the default applies) */
    const char *key = ch == 2020 ? "reuse-key" : ch == 2040 ? "no-webroot-check" : option_name(ch);
    bool list = ch == 'd' || ch == 2060 || ch == CLI_OPT_RESOLVER;
    if (!persistent(ch))
        return;
    if (!list)
        drop_settings(is, key);
    if (ch == 'H' || ch == 2012) /* one dehydrated hook: the last given */
        drop_settings(is, ch == 'H' ? "dns-hook" : "hook");
    if (is->nsettings < sizeof is->settings / sizeof is->settings[0])
        is->settings[is->nsettings++] = (struct setting){key,
                                                         value                      ? value
                                                         : ch == 2020 || ch == 2040 ? "no"
                                                                                    : "yes",
                                                         !origin};
}

static int parse_one(struct issue *is, int ch, char **argv);

/* -d/--domains: one name, or several separated by commas (certbot's
 * spelling); each is kept as its own "domain" setting. */
static int add_names(struct issue *is, const char *arg, const char *origin)
{
    size_t added = 0;
    for (const char *p = arg; *p != '\0';) {
        size_t len = strcspn(p, ",");
        const char *start = p;
        p += len + (p[len] == ',');
        while (len > 0 && (*start == ' ' || *start == '\t'))
            start++, len--;
        while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t'))
            len--;
        if (len == 0)
            continue;
        if (is->nnames == NAMES_MAX) {
            cli_error("at most %d names in one certificate", NAMES_MAX);
            return CLI_EXIT_USAGE;
        }
        if (len >= CAA_IDENT_MAX) {
            cli_error("-d \"%.*s...\": a name is at most %d characters", 40, start,
                      CAA_IDENT_MAX - 1);
            return CLI_EXIT_USAGE;
        }
        char *name = is->split[is->nnames];
        memcpy(name, start, len);
        name[len] = '\0';
        is->names[is->nnames++] = name;
        record(is, 'd', name, origin);
        added++;
    }
    if (added == 0) {
        cli_error("-d \"%s\" names no domain", arg);
        if (origin != NULL)
            cli_error("(that setting is at %s)", origin);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* --ip-address: one IPv4 or IPv6 address (RFC 8738), kept normalized as
 * its own "ip-address" setting. */
static int add_ip(struct issue *is, const char *arg, const char *origin)
{
    char ip[ACME_IP_MAX];
    if (!acme_ip_normalize(arg, ip)) {
        cli_error("--ip-address \"%s\" is not an IPv4 or IPv6 address (no brackets, no port)", arg);
        if (origin != NULL)
            cli_error("(that setting is at %s)", origin);
        return CLI_EXIT_USAGE;
    }
    if (is->nnames == NAMES_MAX) {
        cli_error("at most %d names in one certificate", NAMES_MAX);
        return CLI_EXIT_USAGE;
    }
    char *name = is->split[is->nnames];
    snprintf(name, CAA_IDENT_MAX, "%s", ip);
    is->names[is->nnames++] = name;
    record(is, 2060, name, origin);
    return 0;
}

/* Options into `is`; 0 to go on, else the exit status.  Names and resolvers
 * add up within one source (the defaults file, renewal.conf, the command
 * line); a later source's list replaces an earlier one's. */
static int parse_args(struct issue *is, int argc, char **argv)
{
    const char *domain_src = NULL, *resolver_src = NULL;
    int status = 0, cur = 0;
    int ch;

    if (cli_options_exact(argc, argv, ":hvqd:w:", issue_options, "issue") != 0)
        return CLI_EXIT_USAGE;
    optind = 1;
    opterr = 0;
    while (status == 0 && (ch = getopt_long(argc, argv, ":hvqd:w:", issue_options, NULL)) != -1) {
        cur = optind - 1;
        const char *origin = is->origin ? is->origin[cur] : NULL;
        if (ch == CLI_OPT_RESOLVER && is->dns.ropts.nservers > 0 &&
            !same_source(resolver_src, origin)) {
            is->dns.ropts.nservers = 0;
            drop_settings(is, "resolver");
        }
        if (ch == CLI_OPT_RESOLVER)
            resolver_src = origin;
        /* -d and --ip-address make one list of identifiers */
        bool ident_opt = ch == 'd' || ch == 2060;
        if (ident_opt && is->nnames > 0 && !same_source(domain_src, origin)) {
            is->nnames = 0;
            drop_settings(is, "domain");
            drop_settings(is, "ip-address");
        }
        if (ident_opt)
            domain_src = origin;
        if (ch == 2060) {
            status = add_ip(is, optarg, origin);
            continue;
        }
        /* The key's options: a later source's replace all of an earlier one's. */
        bool key_opt = ch == 'k' || ch == 2021 || ch == 2022;
        if (key_opt && !same_source(is->key_src, origin)) {
            memset(is->key_given, 0, sizeof is->key_given);
            drop_settings(is, "key-type");
        }
        if (key_opt)
            is->key_src = origin;
        if (ch == 'd') {
            size_t before = is->nnames;
            status = add_names(is, optarg, origin);
            /* certbot: a -w applies to the -d that follow it (command line only:
             * a file's keys have no order) */
            if (origin == NULL && is->cur_webroot != NULL)
                is->cur_used = true;
            for (size_t i = before; status == 0 && origin == NULL && is->cur_webroot &&
                                    i < is->nnames && is->nwmap < NAMES_MAX;
                 i++)
                is->wmap[is->nwmap++] = (struct wmap){NULL, i, is->cur_webroot, true};
            continue;
        }
        if (ch == 2023) {
            const char *colon = strchr(optarg, ':');
            if (colon == NULL || colon == optarg || colon[1] == '\0' ||
                (size_t)(colon - optarg) >= CAA_IDENT_MAX) {
                cli_error("--webroot-map \"%s\": use NAME:DIR", optarg);
                if (origin != NULL)
                    cli_error("(that setting is at %s)", origin);
                status = CLI_EXIT_USAGE;
            } else if (is->nwmap < NAMES_MAX) {
                is->wmap[is->nwmap++] = (struct wmap){optarg, 0, colon + 1, origin == NULL};
            }
            continue;
        }
        /* --webroot and --standalone exclude each other within one source;
         * a later source's choice replaces an earlier one's. */
        if (ch == 's' && is->solving.webroot != NULL && !same_source(is->webroot_src, origin)) {
            is->solving.webroot = NULL;
            drop_settings(is, "webroot");
        }
        /* A source that gives webroots replaces an earlier one's map. */
        bool map_opt = ch == 'w' || ch == 2023 || ch == 's';
        if (map_opt && is->nwmap > 0 && !same_source(is->wmap_src, origin))
            is->nwmap = 0;
        if (map_opt)
            is->wmap_src = origin;
        if (ch == 'w' && origin == NULL) {
            if (is->cur_webroot != NULL && !is->cur_used) {
                cli_error("-w %s is followed by no -d NAME before the next -w: each -w "
                          "applies to the names after it",
                          is->cur_webroot);
                status = CLI_EXIT_USAGE;
                continue;
            }
            is->cur_webroot = optarg;
            is->cur_used = false;
        }
        if (ch == 'w' && is->solving.standalone && !same_source(is->standalone_src, origin)) {
            is->solving.standalone = false;
            drop_settings(is, "standalone");
        }
        if (ch == 's')
            is->standalone_src = origin;
        /* --http-shared excludes both as well, by the same rule. */
        if (ch == 2070 && is->solving.standalone && !same_source(is->standalone_src, origin)) {
            is->solving.standalone = false;
            drop_settings(is, "standalone");
        }
        if (ch == 2070 && is->solving.webroot != NULL && !same_source(is->webroot_src, origin)) {
            is->solving.webroot = NULL;
            drop_settings(is, "webroot");
        }
        if (ch == 2070 && is->nwmap > 0 && !same_source(is->wmap_src, origin)) {
            is->nwmap = 0;
            drop_settings(is, "webroot-map");
        }
        if ((ch == 'w' || ch == 's' || ch == 2023) && is->solving.http_shared &&
            !same_source(is->shared_src, origin)) {
            is->solving.http_shared = false;
            drop_settings(is, "http-shared");
        }
        if (ch == 2070)
            is->shared_src = origin;
        /* The two profile options exclude each other within one source; a
         * later source's replaces an earlier one's. */
        if ((ch == 2050 || ch == 2051) && is->profile_opt != 0 && is->profile_opt != ch) {
            if (same_source(is->profile_src, origin)) {
                cli_error("--preferred-profile and --required-profile exclude each other");
                if (origin != NULL)
                    cli_error("(that setting is at %s)", origin);
                status = CLI_EXIT_USAGE;
                continue;
            }
            drop_settings(is, option_name(is->profile_opt));
        }
        if (ch == 2050 || ch == 2051)
            is->profile_src = origin;
        if (ch == 'w')
            is->webroot_src = origin;
        if (ch != ':' && ch != '?' && !key_opt)
            record(is, ch, optarg, origin);
        if (cli_common_option(&is->common, ch, optarg))
            continue;
        int handled = cli_dns_option(&is->dns, ch, optarg);
        if (handled < 0) {
            status = CLI_EXIT_USAGE;
            if (origin != NULL)
                cli_error("(that setting is at %s)", origin);
        }
        if (handled != 0)
            continue;
        /* A setting from a file: its errors name FILE:LINE. */
        char saved[256];
        const char *ctx = cli_log_context_get();
        snprintf(saved, sizeof saved, "%s", ctx ? ctx : "");
        if (origin != NULL)
            cli_log_context(origin);
        status = parse_one(is, ch, argv);
        if (origin != NULL)
            cli_log_context(saved[0] ? saved : NULL);
    }
    if (status == 0 && optind < argc) {
        cli_error("unexpected argument \"%s\" (names go with -d)", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    return status;
}

/* One option of parse_args(); 0, -1 for --help, or an exit status. */
static int parse_one(struct issue *is, int ch, char **argv)
{
    switch (ch) {
    case 'n': is->cert_name = optarg; break;
    case 'k':
    case 2021:
    case 2022: { /* checked together by check_args() */
        char msg[256];
        enum acme_key_type t;
        is->key_given[ch == 'k' ? 0 : ch == 2021 ? 1 : 2] = optarg;
        if (cli_key_type_resolve(ch == 'k' ? optarg : NULL, ch == 2021 ? optarg : NULL,
                                 ch == 2022 ? optarg : NULL, &t, msg, sizeof msg) != 0) {
            cli_error("%s", msg);
            return CLI_EXIT_USAGE;
        }
        break;
    }
    case 'c':
        if (parse_methods(optarg, is->methods, &is->nmethods) != 0)
            return CLI_EXIT_USAGE;
        break;
    case 'w': is->solving.webroot = optarg; break;
    case 's': is->solving.standalone = true; break;
    case 2070: is->solving.http_shared = true; break;
    case 'p':
        if (parse_port("--http-port", optarg, &is->solving.http_port) != 0)
            return CLI_EXIT_USAGE;
        break;
    case 'P':
        if (parse_port("--tls-port", optarg, &is->solving.tls_port) != 0)
            return CLI_EXIT_USAGE;
        break;
    case 2013:
        if (parse_address("--http-address", optarg, &is->solving.http_addr) != 0)
            return CLI_EXIT_USAGE;
        break;
    case 2014:
        if (parse_address("--tls-address", optarg, &is->solving.tls_addr) != 0)
            return CLI_EXIT_USAGE;
        break;
    case 'H': is->solving.dns_hook = is->hook = optarg; break;
    case 2012: /* only the challenge commands: deploy_challenge, clean_challenge */
        is->solving.dns_hook = optarg;
        is->hook = NULL;
        break;
    case 'C': is->preferred = optarg; break;
    case 2050:
    case 2051: {
        size_t len = strlen(optarg);
        /* draft-aaron-acme-profiles names, as acme/ keeps them */
        if (len == 0 || len > ACME_PROFILE_NAME_MAX ||
            strspn(optarg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
                len) {
            cli_error("--%s \"%s\": a profile name is 1 to %d letters, digits, '.', '_' or '-'",
                      option_name(ch), optarg, ACME_PROFILE_NAME_MAX);
            return CLI_EXIT_USAGE;
        }
        is->profile = optarg;
        is->profile_opt = ch;
        break;
    }
    case 't': is->agree_tos = true; break;
    case 'R': is->reuse_key = true; break;
    case 'e': is->email = optarg; break;
    case 2002:
        if (parse_seconds("--dns-timeout", optarg, 0, DNS_TIMEOUT_MAX,
                          &is->solving.dns_timeout_ms) != 0)
            return CLI_EXIT_USAGE;
        is->solving.dns_timeout_ms *= 1000;
        break;
    case 2003:
        if (parse_port("--authoritative-port", optarg, &is->auth_port) != 0)
            return CLI_EXIT_USAGE;
        break;
    case 2004:
        if (!cli_ca_identity_valid(optarg)) {
            cli_error("--ca-identity \"%s\" is not an issuer domain name "
                      "(e.g. letsencrypt.org)",
                      optarg);
            return CLI_EXIT_USAGE;
        }
        is->ca_identity = optarg;
        break;
    case 2005:
        if (parse_mode(optarg, &is->pf_mode) != 0)
            return CLI_EXIT_USAGE;
        break;
    case 2006:
        if (parse_dry_run(optarg, &is->dry_run) != 0)
            return CLI_EXIT_USAGE;
        break;
    case 2007: is->pre_hook = optarg; break;
    case 2008: is->post_hook = optarg; break;
    case 2009: is->deploy_hook = optarg; break;
    case 2024:
        /* renew runs from anywhere: a relative path would move with it */
        if (optarg[0] != '/') {
            cli_error("--install-dir \"%s\": give an absolute path", optarg);
            return CLI_EXIT_USAGE;
        }
        is->install_dir = optarg;
        break;
    case 2010: is->config = optarg; break; /* read before parsing; hooks.d is next to it */
    case 2015:
        if (parse_seconds("--wait-timeout", optarg, 1, WAIT_MAX_S, &is->common.wait_s) != 0)
            return CLI_EXIT_USAGE;
        break;
    case 2016: is->force_renewal = true; break;
    case 2020: is->reuse_key = false; break;
    case 2040: is->no_webcheck = false; break;
    case 2041: is->no_webcheck = true; break;
    case 2042:
        if (parse_port("--webroot-check-port", optarg, &is->webcheck_port) != 0)
            return CLI_EXIT_USAGE;
        break;
    case 2017: is->expand = true; break;
    case 2018: is->replace_names = true; break;
    case 2019: {
        char *end;
        long v = strtol(optarg, &end, 10);
        if (*optarg == '\0' || *end != '\0' || v < 0 || v > KEEP_VERSIONS_MAX || v == 1) {
            cli_error("--keep-versions \"%s\": a number of versions from 2 to %d (the current "
                      "one and the one before it are always kept), or 0 to keep them all",
                      optarg, KEEP_VERSIONS_MAX);
            return CLI_EXIT_USAGE;
        }
        is->keep_versions = (unsigned)v;
        break;
    }
    case 'h': usage(stdout); return -1;
    default:
        cli_error("unknown option or missing value: \"%s\" (see certpilot issue --help)",
                  argv[optind - 1]);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* Is `name` one of the certificate's (normalized) names? */
static bool has_name(const struct issue *is, const char *name)
{
    for (size_t i = 0; i < is->nnames; i++)
        if (strcmp(is->names[i], name) == 0)
            return true;
    return false;
}

/* The per-name webroots for the solver and renewal.conf, from is->wmap
 * (after the names are normalized): the last entry of a name wins; entries
 * whose webroot is the default one, or whose name is not in the
 * certificate, are left out.  0, or an exit status (said). */
static int webroot_map(struct issue *is)
{
    size_t n = 0;
    bool command_line = false;
    for (size_t k = is->nwmap; k-- > 0;) {
        const struct wmap *e = &is->wmap[k];
        char given[CAA_IDENT_MAX], base[CAA_IDENT_MAX];
        bool wildcard, dup = false;
        struct cp_err err = {0};
        command_line = command_line || e->command_line;
        if (e->name == NULL) {
            snprintf(is->wr_norm[n], CAA_IDENT_MAX, "%s", is->names[e->index]);
        } else {
            snprintf(given, sizeof given, "%.*s", (int)strcspn(e->name, ":"), e->name);
            if (!acme_ip_normalize(given, is->wr_norm[n]) &&
                caa_name_normalize(given, is->wr_norm[n], base, &wildcard, &err) != CP_OK) {
                cli_error("--webroot-map: %s", err.msg);
                return CLI_EXIT_USAGE;
            }
        }
        for (size_t j = 0; j < n && !dup; j++)
            dup = strcmp(is->wr_names[j], is->wr_norm[n]) == 0;
        if (dup || !has_name(is, is->wr_norm[n]) ||
            (is->solving.webroot != NULL && strcmp(e->dir, is->solving.webroot) == 0))
            continue;
        is->wr_names[n] = is->wr_norm[n];
        is->wr_dirs[n++] = e->dir;
    }
    drop_settings(is, "webroot-map");
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(is->wr_names[i]) + strlen(is->wr_dirs[i]) + 2;
        free(is->wr_text[i]);
        if ((is->wr_text[i] = malloc(len)) == NULL) {
            cli_error("out of memory");
            return CLI_EXIT_SOFTWARE;
        }
        snprintf(is->wr_text[i], len, "%s:%s", is->wr_names[i], is->wr_dirs[i]);
        if (is->nsettings < sizeof is->settings / sizeof is->settings[0])
            is->settings[is->nsettings++] =
                (struct setting){"webroot-map", is->wr_text[i], command_line};
    }
    is->solving.webroot_names = is->wr_names;
    is->solving.webroots = is->wr_dirs;
    is->solving.nwebroots = n;
    if (n > 0 && is->solving.standalone) {
        cli_error("--webroot-map and --standalone exclude each other");
        return CLI_EXIT_USAGE;
    }
    /* Without a default webroot, every name needs its own for http-01 alone. */
    for (size_t i = 0; n > 0 && is->solving.webroot == NULL && i < is->nnames; i++) {
        bool found = false;
        for (size_t j = 0; j < n && !found; j++)
            found = strcmp(is->wr_names[j], is->names[i]) == 0;
        if (!found && is->nmethods == 1 && strcmp(is->methods[0], "http-01") == 0) {
            cli_error("%s has no webroot: give -w DIR before its -d, or --webroot-map %s:DIR",
                      is->names[i], is->names[i]);
            return CLI_EXIT_USAGE;
        }
    }
    return 0;
}

/* Did --ip-address give `ip` (rather than -d)? */
static bool is_ip_setting(const struct issue *is, const char *ip)
{
    for (size_t i = 0; i < is->nsettings; i++)
        if (strcmp(is->settings[i].key, "ip-address") == 0 &&
            strcmp(is->settings[i].value, ip) == 0)
            return true;
    return false;
}

/* Cross-option rules and defaults; 0 to go on, else the exit status. */
static int check_args(struct issue *is)
{
    struct cp_err err = {0};
    if (is->nnames == 0) {
        cli_error("issue needs at least one name: -d example.com (or --ip-address ADDR)");
        return CLI_EXIT_USAGE;
    }
    /* Names are validated and normalized by the same rules as caa check;
     * IP addresses (--ip-address) are normalized already. */
    for (size_t i = 0; i < is->nnames; i++) {
        char base[CAA_IDENT_MAX];
        bool wildcard;
        if (acme_ip_normalize(is->names[i], NULL)) {
            if (!is_ip_setting(is, is->names[i])) {
                cli_error("-d %s: an IP address is no domain name; use --ip-address %s",
                          is->names[i], is->names[i]);
                return CLI_EXIT_USAGE;
            }
            bool usable = false;
            for (size_t k = 0; k < is->nmethods && !usable; k++)
                usable = acme_ident_method_check(is->names[i], is->methods[k], NULL) == CP_OK;
            if (!usable) {
                cli_error("%s is an IP address, which CAs validate only with http-01 or "
                          "tls-alpn-01 (RFC 8738 §7), not with %s: add --challenge http-01 or "
                          "tls-alpn-01 (with --standalone or --webroot)",
                          is->names[i], is->methods[0]);
                return CLI_EXIT_USAGE;
            }
            continue;
        }
        if (caa_name_normalize(is->names[i], is->normalized[i], base, &wildcard, &err) != CP_OK) {
            cli_error("%s", err.msg);
            return CLI_EXIT_USAGE;
        }
        is->names[i] = is->normalized[i];
    }
    int mstatus = webroot_map(is);
    if (mstatus != 0)
        return mstatus;
    if (is->key_given[0] || is->key_given[1] || is->key_given[2]) {
        char msg[256];
        if (cli_key_type_resolve(is->key_given[0], is->key_given[1], is->key_given[2],
                                 &is->key_type, msg, sizeof msg) != 0) {
            cli_error("%s", msg);
            return CLI_EXIT_USAGE;
        }
        /* renewal.conf holds certpilot's own name of the key type only */
        record(is, 'k', acme_key_type_name(is->key_type), is->key_src);
    }
    const char *const hooks[] = {is->pre_hook, is->post_hook, is->deploy_hook};
    for (size_t i = 0; i < 3; i++)
        if (hooks[i] != NULL && flow_hook_command_check(hooks[i], &err) != CP_OK) {
            cli_error("--%s: %s", (const char *[]){"pre-hook", "post-hook", "deploy-hook"}[i],
                      err.msg);
            return CLI_EXIT_USAGE;
        }
    if (is->expand && is->replace_names) {
        cli_error("--expand (names may only be added) and --replace-names (any change) exclude "
                  "each other: give one");
        return CLI_EXIT_USAGE;
    }
    if (is->solving.webroot != NULL && is->solving.standalone) {
        cli_error("--webroot and --standalone exclude each other");
        return CLI_EXIT_USAGE;
    }
    if (is->solving.http_shared &&
        (is->solving.webroot != NULL || is->solving.standalone || is->solving.nwebroots > 0)) {
        cli_error("--http-shared (http-01 answered by the fleet's responders) excludes "
                  "--webroot, --webroot-map and --standalone");
        return CLI_EXIT_USAGE;
    }
    for (size_t i = 0; i < is->nmethods; i++) {
        const char *m = is->methods[i];
        bool ok = strcmp(m, "http-01") == 0
                      ? is->solving.webroot || is->solving.standalone ||
                            is->solving.nwebroots > 0 || is->solving.http_shared
                  : strcmp(m, "tls-alpn-01") == 0    ? is->solving.standalone
                  : strcmp(m, "dns-persist-01") == 0 ? true /* a standing record, no hook */
                                                     : is->solving.dns_hook != NULL;
        if (!ok) {
            cli_error("%s needs %s", m,
                      strcmp(m, "http-01") == 0 ? "--webroot DIR, --standalone or --http-shared"
                      : strcmp(m, "tls-alpn-01") == 0 ? "--standalone"
                                                      : "--hook PATH (or --dns-hook PATH)");
            return CLI_EXIT_USAGE;
        }
    }
    bool dns01 = false;
    for (size_t i = 0; i < is->nmethods; i++)
        dns01 = dns01 || strncmp(is->methods[i], "dns-", 4) == 0;
    for (size_t i = 0; i < is->nnames && !dns01; i++)
        if (strncmp(is->names[i], "*.", 2) == 0) {
            cli_error("%s is a wildcard, which CAs validate only through DNS (RFC 8555 "
                      "§7.1.3): add --challenge dns-01 (or a list with it) and --hook PATH, or "
                      "--challenge dns-persist-01",
                      is->names[i]);
            return CLI_EXIT_USAGE;
        }
    if (is->solving.dns_hook != NULL && is->dry_run == DRY_NONE &&
        hook_check_executable(is->solving.dns_hook, &err) != CP_OK) {
        cli_error("--dns-hook: %s", err.msg);
        return CLI_EXIT_USAGE;
    }
    if (is->cert_name == NULL) {
        snprintf(is->default_name, sizeof is->default_name, "%s",
                 strncmp(is->names[0], "*.", 2) == 0 ? is->names[0] + 2 : is->names[0]);
        /* an IPv6 address: "2001:db8::1" is stored as "2001_db8__1" */
        for (char *c = is->default_name; *c; c++)
            if (*c == ':')
                *c = '_';
        is->cert_name = is->default_name;
    }
    if (!store_name_valid(is->cert_name)) {
        cli_error("--cert-name \"%s\": use letters, digits, '.', '-' and '_'", is->cert_name);
        return CLI_EXIT_USAGE;
    }
    int status = cli_common_finish(&is->common);
    if (status != 0)
        return status;
    if (is->solving.http_shared && !store_shared(is->common.store)) {
        cli_error("--http-shared answers http-01 only through the fleet's responders, which "
                  "read the key authorizations from a store the fleet shares, but %s is this "
                  "host's own: give --store etcd://HOST:PORT/PREFIX (and run certpilot "
                  "serve-challenges with it on the hosts the names resolve to)",
                  store_where(is->common.store));
        return CLI_EXIT_CONFIG;
    }
    /* Like certbot: a dry run against the staging CA places a real order. */
    if (is->dry_run == DRY_DEFAULT)
        is->dry_run = strcmp(is->common.server, CLI_LE_STAGING) == 0 ? DRY_ORDER : DRY_CHECK;
    if (is->dry_run == DRY_ORDER && strcmp(is->common.server, CLI_LE_PRODUCTION) == 0 &&
        !is->for_renew) {
        cli_error("--dry-run=order against Let's Encrypt's production CA would count against "
                  "its rate limits: add --server letsencrypt-staging, or use --dry-run=check");
        return CLI_EXIT_USAGE;
    }
    is->solving.authoritative_port = (unsigned)is->auth_port;
    is->solving.resolvers = is->dns.ropts;
    /* A shared store gets every http-01 answer, for as long as the order's
     * validation may take and some more (the store is set in obtain(): renew
     * lends its own). */
    is->solving.shared_ttl_s = (is->common.wait_s ? is->common.wait_s : 300) + 600;
    return 0;
}

static void issue_init(struct issue *is)
{
    memset(is, 0, sizeof *is);
    cli_common_init(&is->common);
    cli_dns_init(&is->dns);
    is->methods[0] = "http-01";
    is->nmethods = 1;
    is->key_type = ACME_KEY_EC256;
    is->auth_port = 53;
    is->solving.http_port = 80;
    is->solving.tls_port = 443;
    is->webcheck_port = 80;
    is->solving.dns_timeout_ms = 120000;
    is->keep_versions = KEEP_VERSIONS;
    is->out = stdout;
}

/* Why a run ended, for renew's summary and status file. */
static void set_outcome(struct issue *is, int status)
{
    if (is->outcome == NULL)
        is->outcome = status == 0 ? (is->dry_run != DRY_NONE ? "dry_run" : "issued") : "failed";
}

/* The engine: from the solvers to the stored certificate (flow_issue_run),
 * then what happened said; 0 or the exit status. */
static int obtain(struct issue *is)
{
    struct cp_err err = {0};
    struct acme_client_opts ca;
    char *contact = NULL;
    int status = 0;

    cli_client_opts(&is->common, &ca);
    if (is->email != NULL && (contact = malloc(strlen(is->email) + 8)) != NULL)
        snprintf(contact, strlen(is->email) + 8, "mailto:%s", is->email);
    const char *contacts[1] = {contact};
    struct acme_account_req reg = {
        .agree_tos = is->agree_tos, .contacts = contacts, .ncontacts = contact ? 1 : 0};
    const struct flow_webcheck_opts webcheck = {.port = is->webcheck_port};
    struct flow_issue_req req = {
        .cert_name = is->cert_name,
        .names = is->names,
        .n = is->nnames,
        .methods = is->methods,
        .nmethods = is->nmethods,
        .key_type = is->key_type,
        .reuse_key = is->reuse_key,
        .preferred_chain = is->preferred,
        /* A dry run names no certificate it replaces: a CA accepts one
         * replacement per certificate, and the real renewal must still be
         * able to claim it.  It says which one a real run would name. */
        .replaces = is->dry_run == DRY_NONE ? is->replaces : NULL,
        .keep_versions = is->keep_versions,
        .dry = is->dry_run == DRY_CHECK   ? FLOW_DRY_CHECK
               : is->dry_run == DRY_ORDER ? FLOW_DRY_ORDER
                                          : FLOW_REAL,
        .solve = &is->solving,
        .ca = &ca,
        .reg = &reg,
        .caa_mode = is->pf_mode == PF_OFF    ? FLOW_CAA_OFF
                    : is->pf_mode == PF_WARN ? FLOW_CAA_WARN
                                             : FLOW_CAA_ENFORCE,
        .ca_identity = is->ca_identity,
        .ropts = &is->dns.ropts,
        .hook = is->hook,
        .webcheck = is->no_webcheck ? NULL : &webcheck,
        .caa_report = caa_show,
        .caa_report_ctx = is,
        .profile = is->profile,
        .profile_mode = is->profile_opt == 2051 ? ACME_PROFILE_REQUIRED : ACME_PROFILE_PREFERRED,
        .lock = is->lock,
    };
    is->solving.store = is->common.store;
    /* The built-in http-01 server answers the fleet's other tokens too,
     * through a handle of its own (one thread at a time per handle). */
    struct cp_store *lookup = NULL;
    bool http01 = false;
    for (size_t i = 0; i < is->nmethods; i++)
        http01 = http01 || strcmp(is->methods[i], "http-01") == 0;
    if (http01 && is->solving.standalone && store_shared(is->common.store) &&
        is->dry_run != DRY_CHECK) {
        if (cli_common_store_open(&is->common, is->common.state_dir, &lookup, &err) != CP_OK) {
            status = cli_store_fail(&err);
            set_outcome(is, status);
            free(contact);
            return status;
        }
        is->solving.lookup_store = lookup;
    }
    struct flow_issue_result *r = &is->run.r;
    enum cp_code rc = flow_issue_run(is->common.store, &req, cli_flow_log(), r, &err);
    const struct acme_issue_result *res = &r->ordered.order;
    const struct acme_directory *dir = r->client ? acme_client_directory(r->client) : NULL;
    is->directory_read = dir != NULL;
    is->would_replace = dir != NULL && dir->renewal_info != NULL ? is->replaces : NULL;
    /* What the CA says it used, else what was asked (a CA that offers
     * profiles but does not echo the order's). */
    const char *used = res->profile ? res->profile : r->ordered.issued ? r->profile : NULL;
    snprintf(is->profile_used, sizeof is->profile_used, "%s", used ? used : "");
    if (rc == CP_OK && (r->outcome == FLOW_CAA_REFUSED || r->outcome == FLOW_CAA_DNS_ERROR)) {
        status = r->outcome == FLOW_CAA_REFUSED ? CLI_EXIT_CAA_DENIED : CLI_EXIT_CAA_DNS;
    } else if (rc == CP_OK && r->outcome == FLOW_DRY_CHECKED) {
        status = dry_run_report(is);
    } else if (rc == CP_OK) {
        report(is, &r->ordered.kept, res);
    } else if (r->step == FLOW_STEP_STORE) {
        status = cli_store_fail(&err);
    } else if (r->step == FLOW_STEP_LOCK) {
        /* Another host may be renewing it now: this one wrote nothing. */
        cli_error("%s", err.msg);
        is->outcome = "lock_lost";
        status = CLI_EXIT_LOCKED;
    } else if (r->step == FLOW_STEP_PREFLIGHT) {
        cli_error("CAA preflight: %s", err.msg);
        status = rc == CP_EDNS     ? CLI_EXIT_UNAVAILABLE
                 : rc == CP_EINVAL ? CLI_EXIT_USAGE
                                   : CLI_EXIT_SOFTWARE;
    } else if (r->step == FLOW_STEP_PROFILE) {
        /* Nothing was sent: the settings ask for what this CA does not do,
         * which only a change of settings (or of CA) can fix. */
        cli_error("%s; nothing was ordered (use --preferred-profile to fall back to the CA's "
                  "default)",
                  err.msg);
        is->outcome = "profile_not_offered";
        status = CLI_EXIT_CONFIG;
    } else if (r->step == FLOW_STEP_PERSIST) {
        if (rc == CP_ECHALLENGE)
            is->outcome = "persist_check_failed";
        status = cli_acme_fail(rc, &err, NULL);
    } else if (r->step == FLOW_STEP_WEBROOT) {
        if (rc == CP_ECHALLENGE)
            is->outcome = "webroot_check_failed";
        status = cli_acme_fail(rc, &err, NULL);
    } else if (r->step == FLOW_STEP_ORDER) {
        /* (unless the error says it already, with the CA's words) */
        if (rc == CP_ECHALLENGE && res->failed_identifier != NULL &&
            !(strstr(err.msg, res->failed_identifier) && strstr(err.msg, "failed")))
            cli_error("challenge %s for %s failed", res->failed_type ? res->failed_type : "",
                      res->failed_identifier);
        status = cli_acme_fail(rc, &err, &res->problem);
    } else {
        status = cli_acme_fail(rc, &err, &r->problem);
    }
    set_outcome(is, status);
    if (status != 0 && is->common.json && !is->json_done)
        print_failure_json(is, status, res);
    flow_issue_result_clear(r); /* the servers stopped: the look-up handle is free */
    is->solving.lookup_store = NULL;
    store_close(lookup);
    free(contact);
    return status;
}

static int deploy_hooks(struct issue *is, const char *override, const char *hooks_dir)
{
    /* The copy first: deploy hooks reload servers that may read it. */
    struct cp_err err = {0};
    /* Not stored by this run (another host's version, deployed here): the
     * lineage's files are where they always are. */
    if (is->live_dir[0] == '\0' && store_lineage_dir(is->common.store, is->cert_name, is->live_dir,
                                                     sizeof is->live_dir, &err) != CP_OK)
        return cli_store_fail(&err);
    if (is->install_dir != NULL &&
        flow_issue_install(is->live_dir, is->install_dir, &err) != CP_OK) {
        cli_error("copying the new certificate into --install-dir %s: %s (it is stored in %s; "
                  "deploy hooks not run)",
                  is->install_dir, err.msg, is->live_dir);
        return CLI_EXIT_IO;
    }
    bool ok = flow_issue_deploy(cli_flow_log(), override ? override : is->deploy_hook, hooks_dir,
                                is->hook, is->names, is->nnames, is->live_dir);
    return ok ? 0 : CLI_EXIT_HOOK;
}

/* Paths in renewal.conf are made absolute: renew runs from anywhere. */
static const char *absolute(const char *key, const char *value, char *buf, size_t size)
{
    bool path =
        strcmp(key, "webroot") == 0 || strcmp(key, "ca-bundle") == 0 || strcmp(key, "hook") == 0;
    if (strcmp(key, "webroot-map") == 0) { /* NAME:DIR, the directory made absolute */
        size_t name = strcspn(value, ":");
        char *real = value[name] == ':' && value[name + 1] != '/' && value[name + 1] != '\0'
                         ? realpath(value + name + 1, NULL)
                         : NULL;
        if (real == NULL)
            return value;
        snprintf(buf, size, "%.*s:%s", (int)name, value, real);
        free(real);
        return buf;
    }
    bool command = strstr(key, "-hook") != NULL;
    if (command && strncmp(value, "sh:", 3) == 0)
        return value; /* a shell command line is kept exactly as written */
    if ((!path && !command) || value[0] == '/' || (command && strchr(value, '/') == NULL))
        return value;
    size_t first = command ? strcspn(value, " \t") : strlen(value);
    char word[4096], *real;
    snprintf(word, sizeof word, "%.*s", (int)first, value);
    if ((real = realpath(word, NULL)) == NULL)
        return value; /* checked elsewhere; keep what was given */
    snprintf(buf, size, "%s%s", real, value + first);
    free(real);
    return buf;
}

/* renewal.conf: the settings of this certificate, for `certpilot renew`. */
static int save_settings(struct issue *is)
{
    char *text = NULL;
    size_t len = 0;
    struct cp_err err = {0};
    FILE *f = open_memstream(&text, &len);
    if (f == NULL) {
        cli_error("out of memory");
        return CLI_EXIT_SOFTWARE;
    }
    fprintf(f,
            "# certpilot: settings of the certificate \"%s\", used by `certpilot renew`.\n"
            "# Written by `certpilot issue`; edit freely (keys are issue's long options,\n"
            "# see CONFIGURATION in certpilot(1)).\n",
            is->cert_name);
    bool have_server = false;
    for (size_t i = 0; i < is->nsettings; i++)
        have_server = have_server || strcmp(is->settings[i].key, "server") == 0;
    if (!have_server) /* the default CA, written out so that renew keeps using it */
        fprintf(f, "server = %s\n", is->common.server);
    for (size_t i = 0; i < is->nsettings; i++) {
        char buf[8192];
        const char *key = is->settings[i].key;
        fprintf(f, "%s = %s\n", key, absolute(key, is->settings[i].value, buf, sizeof buf));
    }
    fclose(f);
    enum cp_code rc = store_settings_save(is->common.store, is->cert_name, text, len, &err);
    free(text);
    if (rc != CP_OK) {
        cli_error("saving the renewal settings: %s", err.msg);
        return CLI_EXIT_IO;
    }
    return 0;
}

/*
 * An existing lineage's renewal.conf: the settings given on the command line
 * replace those keys, everything else in the file stays as written (what
 * changes is decided by flow_lineage_settings_update).  The keys changed are
 * appended to `changed` (a JSON array) when it is not NULL.
 */
static int update_settings(struct issue *is, json_t *changed)
{
    char path[4400], *text = NULL, *out = NULL;
    size_t len = 0, outlen = 0, n = 0;
    struct cp_err err = {0};
    struct cli_conf conf = {0};
    struct flow_setting given[NAMES_MAX + 64], *current = NULL;
    char *bufs[NAMES_MAX + 64] = {0};
    size_t nbufs = 0;
    int status = 0;

    for (size_t i = 0; i < is->nsettings && n < sizeof given / sizeof given[0]; i++) {
        if (!is->settings[i].command_line)
            continue;
        char buf[8192];
        const char *key = is->settings[i].key;
        const char *v = absolute(key, is->settings[i].value, buf, sizeof buf);
        if (v == buf && (v = bufs[nbufs++] = strdup(buf)) == NULL) {
            cli_error("out of memory");
            status = CLI_EXIT_SOFTWARE;
            goto out;
        }
        given[n++] = (struct flow_setting){key, v, 0};
    }
    enum cp_code rc =
        store_settings_load(is->common.store, is->cert_name, &text, &len, path, sizeof path, &err);
    if (rc == CP_OK && text == NULL)
        rc = cp_err_set(&err, CP_EIO, "%s has gone", path);
    if (rc == CP_OK)
        rc = cli_conf_parse(path, text, len, &conf, &err);
    if (rc == CP_OK && (current = calloc(conf.n + 1, sizeof *current)) == NULL)
        rc = cp_err_set(&err, CP_ENOMEM, "out of memory");
    for (size_t i = 0; rc == CP_OK && i < conf.n; i++)
        current[i] = (struct flow_setting){conf.e[i].key, conf.e[i].value, conf.e[i].line};
    if (rc == CP_OK)
        rc = flow_lineage_settings_update(text, len, current, conf.n, given, n, &out, &outlen,
                                          changed, &err);
    if (rc == CP_OK && out != NULL)
        rc = store_settings_save(is->common.store, is->cert_name, out, outlen, &err);
    if (rc != CP_OK) {
        cli_error("updating the renewal settings: %s", err.msg);
        status = rc == CP_EINVAL ? CLI_EXIT_CONFIG : CLI_EXIT_IO;
    }
out:
    for (size_t i = 0; i < nbufs; i++)
        free(bufs[i]);
    cli_conf_clear(&conf);
    free(current);
    free(text);
    free(out);
    return status;
}

static void names_line(FILE *f, const char *label, const char *const *names, size_t n)
{
    fprintf(f, "  %-22s", label);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%s", i ? ", " : "", names[i]);
    fputs(n ? "\n" : "(none)\n", f);
}

/* A run that would change a lineage's names without saying so: refused. */
static int refuse_names(struct issue *is, const char *const *old, size_t nold,
                        const char *const *added, size_t nadded, const char *const *dropped,
                        size_t ndropped)
{
    is->outcome = "names_differ";
    if (is->common.json) {
        json_t *j =
            json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:i}", "cert_name", is->cert_name, "outcome",
                      "names_differ", "names", names_json(is->names, is->nnames), "current_names",
                      names_json(old, nold), "added", names_json(added, nadded), "dropped",
                      names_json(dropped, ndropped), "exit_status", CLI_EXIT_USAGE);
        print_json(is, j);
    }
    cli_error("the certificate \"%s\" already exists with other names; nothing was changed",
              is->cert_name);
    names_line(stderr, "its names:", old, nold);
    names_line(stderr, "this run asks for:", is->names, is->nnames);
    if (ndropped > 0) {
        names_line(stderr, "it would drop:", dropped, ndropped);
        fprintf(stderr,
                "To get a certificate without %s, add --replace-names; to keep %s, "
                "give %s with -d too%s.\n",
                ndropped == 1 ? "that name" : "those names", ndropped == 1 ? "it" : "them",
                ndropped == 1 ? "it" : "them", nadded ? " and add --expand" : "");
    } else {
        names_line(stderr, "it would add:", added, nadded);
        fputs("To add them (none is dropped), add --expand.\n", stderr);
    }
    fprintf(stderr, "(A separate certificate: give it its own --cert-name.)\n");
    return CLI_EXIT_USAGE;
}

/* Nothing to do: the lineage has these names and is not due. */
static int report_unchanged(struct issue *is, long long renew_at, const char *why)
{
    char when[32];
    json_t *changed = json_array();
    int status = is->dry_run == DRY_NONE ? update_settings(is, changed) : 0;
    cp_time_str(renew_at, when);
    is->outcome = "unchanged";
    if (status != 0) {
        json_decref(changed);
        return status;
    }
    if (is->common.json) {
        json_t *j =
            json_pack("{s:s, s:s, s:o, s:s, s:s, s:o, s:i}", "cert_name", is->cert_name, "outcome",
                      "unchanged", "names", names_json(is->names, is->nnames), "renew_at", when,
                      "why", why, "settings_updated", changed, "requests", 0);
        print_json(is, j);
        return 0;
    }
    fprintf(is->out, "Certificate \"%s\" (", is->cert_name);
    cli_names_print(is->out, is->names, is->nnames);
    fprintf(is->out,
            ") is not due for renewal: %s.\n"
            "Nothing was sent to the CA; add --force-renewal to replace it now.\n",
            why);
    if (json_array_size(changed) > 0) {
        fputs("Settings saved in renewal.conf (used from the next renewal):", is->out);
        for (size_t i = 0; i < json_array_size(changed); i++)
            fprintf(is->out, "%s %s", i ? "," : "", json_string_value(json_array_get(changed, i)));
        fputc('\n', is->out);
    }
    json_decref(changed);
    return 0;
}

/*
 * issue on a lineage that exists: 0 to order, -2 when there is nothing to
 * do (said), or the exit status of a refusal.  The names may change only
 * as --expand or --replace-names allow; with the same names, a certificate
 * that is not due is left alone unless --force-renewal (the plan is
 * flow_lineage_plan's).
 */
static int lineage_plan(struct issue *is)
{
    static struct flow_lineage_plan plan; /* large (the names): not on the stack */
    struct cli_conf conf = {0};
    struct cp_err err = {0};
    const char *current[NAMES_MAX];
    size_t ncurrent = 0;
    int status = 0;

    if (!is->existing)
        return 0;
    if (cli_conf_load_lineage(is->common.store, is->cert_name, &conf, &err) != CP_OK) {
        if (err.code != CP_EINVAL)
            return cli_store_fail(&err);
        cli_error("%s", err.msg);
        return CLI_EXIT_CONFIG;
    }
    for (size_t i = 0; i < conf.n && ncurrent < NAMES_MAX; i++)
        if (strcmp(conf.e[i].key, "domain") == 0 || strcmp(conf.e[i].key, "ip-address") == 0)
            current[ncurrent++] = conf.e[i].value;
    char revoked[256];
    json_t *mark = store_status_load(is->common.store, is->cert_name);
    bool was_revoked =
        flow_lineage_revoked(is->common.store, is->cert_name, mark, revoked, sizeof revoked);
    json_decref(mark);
    const struct flow_lineage_plan_req req = {
        .names = is->names,
        .nnames = is->nnames,
        .current = current,
        .ncurrent = ncurrent,
        .expand = is->expand,
        .replace_names = is->replace_names,
        .forced = is->force_renewal,
        .revoked = was_revoked,
        .now = (long long)time(NULL),
    };
    flow_lineage_plan(is->common.store, is->cert_name, &req, &plan);
    cli_conf_clear(&conf);
    if (plan.refuse_names)
        return refuse_names(is, plan.current, plan.ncurrent, plan.added, plan.nadded, plan.dropped,
                            plan.ndropped);
    if (plan.reason == FLOW_ORDER_NAMES)
        cli_log(CLI_LOG_NOTICE, "%s: %zu name%s added, %zu dropped (%s)", is->cert_name,
                plan.nadded, plan.nadded == 1 ? "" : "s", plan.ndropped,
                is->expand ? "--expand" : "--replace-names");
    /* asked for by name: a revoked certificate is replaced */
    if (plan.reason == FLOW_ORDER_REVOKED)
        cli_log(CLI_LOG_NOTICE, "%s: its certificate was %s; replacing it", is->cert_name, revoked);
    if (plan.judged && plan.cert_err.code != CP_OK)
        cli_error("%s", plan.cert_err.msg);
    if (plan.order)
        return 0;
    if (is->dry_run != DRY_NONE) {
        cli_log(CLI_LOG_NOTICE,
                "%s is not due (%s): without --dry-run, nothing would be sent to the CA",
                is->cert_name, plan.why);
        return 0;
    }
    status = report_unchanged(is, plan.renew_at, plan.why);
    return status == 0 ? -2 : status;
}

void cli_lineage_waiting(void *ctx, const char *holder)
{
    cli_log(CLI_LOG_NOTICE, "waiting for the lock of %s, held by %s (another host renewing it)",
            (const char *)ctx, holder);
}

/* issue on a shared store: the lineage lock taken (*lock) and the shared
 * current version deployed here (*synced: it changed this host's files);
 * 0, or an exit status (said). */
static int lineage_claim(struct issue *is, struct store_lineage_lock **lock, bool *synced)
{
    struct cp_err err = {0};
    char version[STORE_VERSION_ID_MAX];
    enum cp_code rc = store_lineage_lock(is->common.store, is->cert_name, ISSUE_LOCK_TIMEOUT,
                                         cli_lineage_waiting, (void *)is->cert_name, lock, &err);
    if (rc == CP_OK)
        rc = flow_fleet_sync(is->common.store, is->cert_name, version, synced, &err);
    if (rc != CP_OK) {
        store_lineage_unlock(*lock);
        *lock = NULL;
        return cli_store_fail(&err);
    }
    if (*synced)
        cli_log(CLI_LOG_NOTICE, "%s: another host's version (%s) deployed here", is->cert_name,
                version);
    /* Another host may have issued it while this one waited: then it is an
     * existing lineage, judged as such (not due: left alone). */
    if (!is->existing) {
        char *text = NULL;
        size_t len = 0;
        rc = store_settings_load(is->common.store, is->cert_name, &text, &len, NULL, 0, &err);
        is->existing = rc == CP_OK && text != NULL;
        free(text);
        if (rc != CP_OK) {
            store_lineage_unlock(*lock);
            *lock = NULL;
            return cli_store_fail(&err);
        }
        if (is->existing)
            cli_log(CLI_LOG_NOTICE, "%s: another host issued it meanwhile", is->cert_name);
    }
    is->lock = *lock;
    return 0;
}

/* status.json after issue: what `certpilot list` shows as the last result. */
static void note_status(struct issue *is, int status)
{
    struct cp_err err = {0};
    long long now = (long long)time(NULL);
    json_t *st = store_status_load(is->common.store, is->cert_name);
    flow_lineage_record(st, status == 0 ? "issued" : "failed", status,
                        status ? cli_last_error() : "", now);
    json_object_del(st, "ari");                     /* it was about the previous certificate */
    flow_lineage_set_profile(st, is->profile_used); /* of the certificate just stored */
    if (store_status_save(is->common.store, is->cert_name, st, &err) != CP_OK)
        cli_error("%s", err.msg);
    json_decref(st);
}

enum cp_code cli_issue_settings_args(const struct cli_conf *defaults,
                                     const struct cli_conf *lineage, const char *const *skip,
                                     struct cli_args *a, struct cp_err *err)
{
    static const char *const refused_defaults[] = {
        "domain", "ip-address", "cert-name", "config", "help", "verbose", "quiet", "json", NULL};
    /* A certificate's settings cannot move it to another store: the store is the host's. */
    static const char *const refused_cert[] = {
        "cert-name", "config",    "help",      "verbose",          "quiet",
        "json",      "state-dir", "agree-tos", CLI_STORE_SETTINGS, NULL};
    enum cp_code rc = cli_conf_to_args(defaults, issue_options, refused_defaults, skip, a, err);
    if (rc == CP_OK && lineage != NULL)
        rc = cli_conf_to_args(lineage, issue_options, refused_cert, skip, a, err);
    return rc;
}

/* The arguments in `args`, parsed into a scratch run to learn which lineage
 * they name: 0 with `lineage` its settings (empty when it has none yet) and
 * *existing set, -1 for --help, or an exit status (said). */
static int find_lineage(const struct cli_args *args, struct cli_conf *lineage, bool *existing)
{
    struct issue *scratch = malloc(sizeof *scratch);
    char state_buf[1024], name[CAA_IDENT_MAX], base[CAA_IDENT_MAX];
    struct cp_err err = {0};
    struct cp_store *st = NULL;
    bool wildcard;
    int status;

    *existing = false;
    if (scratch == NULL) {
        cli_error("out of memory");
        return CLI_EXIT_SOFTWARE;
    }
    issue_init(scratch);
    scratch->origin = (const char *const *)args->origin;
    status = parse_args(scratch, (int)args->argc, args->argv);
    const char *state = scratch->common.state_dir;
    if (state == NULL)
        state = store_default_dir(state_buf, sizeof state_buf);
    if (scratch->cert_name != NULL)
        snprintf(name, sizeof name, "%s", scratch->cert_name);
    else if (scratch->nnames > 0 &&
             caa_name_normalize(scratch->names[0], name, base, &wildcard, &err) == CP_OK)
        memmove(name, name + (wildcard ? 2 : 0), strlen(name + (wildcard ? 2 : 0)) + 1);
    else
        name[0] = '\0';
    if (status == 0 && state != NULL && store_name_valid(name)) {
        enum cp_code rc = cli_common_store_open(&scratch->common, state, &st, &err);
        if (rc == CP_OK)
            rc = store_lineage_check(st, name, &err);
        char *text = NULL, label[4400];
        size_t len = 0;
        if (rc == CP_OK) /* it exists for issue when it has settings */
            rc = store_settings_load(st, name, &text, &len, label, sizeof label, &err);
        if (rc == CP_OK && (*existing = text != NULL))
            rc = cli_conf_parse(label, text, len, lineage, &err);
        free(text);
        if (rc != CP_OK && st == NULL && rc == CP_EINVAL) /* --store's URL or lock TTL */
            status = (cli_error("%s", err.msg), CLI_EXIT_USAGE);
        else if (rc != CP_OK)
            status = rc == CP_EINVAL ? (cli_error("%s", err.msg), CLI_EXIT_CONFIG)
                                     : cli_store_fail(&err);
    }
    store_close(st);
    free(scratch);
    return status;
}

/*
 * issue's arguments: the defaults file's settings, then (for a certificate
 * that exists) its renewal.conf, then the command line; each later source
 * wins.  *existing says whether there was a renewal.conf.
 */
static int gather_args(int argc, char **argv, struct cli_args *args, bool *existing)
{
    const char *config = NULL;
    bool resolver = false;
    struct cp_err err = {0};
    struct cli_conf conf = {0}, lineage = {0};
    struct cli_args first = {0};
    int status = 0;

    *existing = false;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--config=", 9) == 0)
            config = argv[i] + 9;
        else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config = argv[++i];
        else if (strncmp(argv[i], "--resolver", 10) == 0)
            resolver = true;
    }
    const char *const skip[] = {resolver ? "resolver" : NULL, NULL};
    /* With --help, no defaults file: the usage is printed whatever it holds. */
    enum cp_code rc =
        cli_help_asked(argc, argv)
            ? CP_OK
            : cli_conf_load(config ? config : CLI_DEFAULT_CONFIG, config == NULL, &conf, &err);
    /* Twice: without the lineage's settings to learn which lineage it is,
     * then with them. */
    for (int pass = 0; pass < 2 && rc == CP_OK && status == 0; pass++) {
        struct cli_args *a = pass == 0 ? &first : args;
        rc = cli_args_add(a, argv[0], NULL);
        if (rc == CP_OK)
            rc = cli_issue_settings_args(&conf, &lineage, skip, a, &err);
        for (int i = 1; rc == CP_OK && i < argc; i++)
            rc = cli_args_add(a, argv[i], NULL);
        if (rc == CP_OK && pass == 0)
            status = find_lineage(&first, &lineage, existing);
    }
    cli_conf_clear(&conf);
    cli_conf_clear(&lineage);
    cli_args_clear(&first);
    if (rc != CP_OK) {
        cli_error("%s", err.msg[0] ? err.msg : "out of memory");
        return rc == CP_EIO ? CLI_EXIT_CONFIG : CLI_EXIT_USAGE;
    }
    return status;
}

int cmd_issue(int argc, char **argv)
{
    static struct issue is; /* large (normalized names): not on the stack */
    struct cli_args args = {0};
    issue_init(&is);

    bool existing = false;
    int status = gather_args(argc, argv, &args, &existing);
    if (status == 0) {
        is.origin = (const char *const *)args.origin;
        status = parse_args(&is, (int)args.argc, args.argv);
    }
    if (status == 0)
        status = check_args(&is);
    is.existing = existing;
    if (status != 0) {
        cli_args_clear(&args);
        cli_common_clear(&is.common);
        return status < 0 ? CLI_EXIT_OK : status;
    }
    cli_output_setup(&is.common);
    bool real = is.dry_run == DRY_NONE;
    /* Not at the same time as a renew of the same state directory. */
    if (real && (status = cli_store_lock(&is.common, ISSUE_LOCK_TIMEOUT)) != 0) {
        cli_args_clear(&args);
        cli_common_clear(&is.common);
        return finish(&is, status);
    }
    /* A shared store: no other host orders for this lineage meanwhile, and
     * another host's newer version is deployed here before it is judged. */
    struct store_lineage_lock *lock = NULL;
    bool synced = false;
    char dir_buf[4200];
    const char *hooks_dir = cli_hooks_dir(is.config, dir_buf, sizeof dir_buf);
    if (real && store_shared(is.common.store))
        status = lineage_claim(&is, &lock, &synced);
    /* An existing certificate: its names change only when asked, and one
     * that is not due is left alone. */
    if (status == 0)
        status = lineage_plan(&is);
    if (status == -2 && synced && hooks_dir != NULL) /* another host's version: deployed here */
        status = deploy_hooks(&is, NULL, hooks_dir) == 0 ? -2 : CLI_EXIT_HOOK;
    if (status != 0) {
        store_lineage_unlock(lock);
        cli_args_clear(&args);
        cli_common_clear(&is.common);
        return finish(&is, status == -2 ? CLI_EXIT_OK : status);
    }
    const char *hook = is.hook;
    if (real && hooks_dir == NULL) {
        cli_error("--config %s: the path is too long", is.config);
        status = CLI_EXIT_CONFIG;
    }
    if (real && hook != NULL)
        flow_hook_event(cli_flow_log(), hook, "startup_hook", NULL, 0);
    /* hooks.d/pre, then the pre-hook; each later phase the other way round */
    if (status == 0 && real && !flow_hook_dir(cli_flow_log(), hooks_dir, FLOW_HOOK_PRE, NULL))
        status = CLI_EXIT_HOOK;
    if (status == 0 && real && is.pre_hook != NULL &&
        !flow_hook_command(cli_flow_log(), "pre-hook", is.pre_hook, NULL))
        status = CLI_EXIT_HOOK;
    if (status == 0)
        status = obtain(&is);
    if (status == 0 && real)
        status = is.existing ? update_settings(&is, NULL) : save_settings(&is);
    if (real && is.live_dir[0])
        note_status(&is, status);
    store_lineage_unlock(lock); /* stored: other hosts deploy it from now */
    is.lock = NULL;
    if (status == 0 && real)
        status = deploy_hooks(&is, NULL, hooks_dir);
    if (real && is.post_hook != NULL &&
        !flow_hook_command(cli_flow_log(), "post-hook", is.post_hook, NULL) && status == 0)
        status = CLI_EXIT_HOOK;
    if (real && hooks_dir != NULL &&
        !flow_hook_dir(cli_flow_log(), hooks_dir, FLOW_HOOK_POST, NULL) && status == 0)
        status = CLI_EXIT_HOOK;
    if (real && hook != NULL) {
        const char *args1[] = {status == 0 ? "" : "ERROR"};
        flow_hook_event(cli_flow_log(), hook, "exit_hook", args1, status == 0 ? 0 : 1);
    }
    cli_args_clear(&args);
    cli_common_clear(&is.common);
    return finish(&is, status);
}

/* ------------------------------------------------------- for renew */

struct cli_issue *cli_issue_new(void)
{
    struct issue *is = malloc(sizeof *is);
    if (is != NULL) {
        issue_init(is);
        is->for_renew = true;
    }
    return (struct cli_issue *)is;
}

void cli_issue_free(struct cli_issue *ci)
{
    if (ci != NULL) {
        struct issue *is = (struct issue *)ci;
        cli_common_clear(&is->common);
        json_decref(is->result);
        for (size_t i = 0; i < NAMES_MAX; i++)
            free(is->wr_text[i]);
    }
    free(ci);
}

void cli_issue_share_store(struct cli_issue *ci, struct cp_store *st)
{
    struct issue *is = (struct issue *)ci;
    cli_common_clear(&is->common);
    is->common.store = st;
    is->common.store_borrowed = st != NULL;
    is->borrowed = st;
}

int cli_issue_configure(struct cli_issue *ci, const struct cli_args *args)
{
    struct issue *is = (struct issue *)ci;
    is->origin = (const char *const *)args->origin;
    int status = parse_args(is, (int)args->argc, args->argv);
    if (status == 0)
        status = check_args(is);
    if (status == 0 && is->borrowed != NULL && is->common.store != is->borrowed) {
        cli_common_clear(&is->common); /* parsing opened another: the caller's is the one */
        is->common.store = is->borrowed;
        is->common.store_borrowed = true;
    }
    return status < 0 ? CLI_EXIT_USAGE : status;
}

void cli_issue_hold(struct cli_issue *ci, const struct store_lineage_lock *lock)
{
    ((struct issue *)ci)->lock = lock;
}

void cli_issue_info(const struct cli_issue *ci, struct cli_issue_info *out)
{
    const struct issue *is = (const struct issue *)ci;
    *out = (struct cli_issue_info){.cert_name = is->cert_name,
                                   .server = is->common.server,
                                   .ca_bundle = is->common.ca_bundle,
                                   .state_dir = is->common.state_dir,
                                   .hook = is->hook,
                                   .pre_hook = is->pre_hook,
                                   .post_hook = is->post_hook,
                                   .deploy_hook = is->deploy_hook,
                                   .names = is->names,
                                   .nnames = is->nnames,
                                   .ropts = &is->dns.ropts,
                                   .dry_run = is->dry_run == DRY_CHECK   ? "check"
                                              : is->dry_run == DRY_ORDER ? "order"
                                                                         : NULL};
}

int cli_issue_obtain(struct cli_issue *ci, FILE *out, const char *replaces)
{
    struct issue *is = (struct issue *)ci;
    is->out = out;
    is->replaces = replaces;
    return obtain(is);
}

int cli_issue_deploy(struct cli_issue *ci, const char *override, const char *hooks_dir)
{
    return deploy_hooks((struct issue *)ci, override, hooks_dir);
}

bool cli_issue_would_replace(const struct cli_issue *ci, const char **id)
{
    const struct issue *is = (const struct issue *)ci;
    *id = is->would_replace;
    return is->directory_read;
}

const char *cli_issue_profile(const struct cli_issue *ci)
{
    const struct issue *is = (const struct issue *)ci;
    return is->profile_used[0] ? is->profile_used : NULL;
}

const char *cli_issue_outcome(const struct cli_issue *ci, const char **not_after)
{
    const struct issue *is = (const struct issue *)ci;
    if (not_after != NULL)
        *not_after = is->not_after[0] ? is->not_after : NULL;
    return is->outcome ? is->outcome : "not_run";
}
