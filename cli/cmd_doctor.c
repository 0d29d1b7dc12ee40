/*
 * cli/cmd_doctor.c - `certpilot doctor`: what the CA will meet in DNS for each
 * name, every authoritative server asked directly, and the findings with their
 * evidence and fix.  A dry run: nothing is sent to any CA, nor to the
 * addresses the names resolve to.  The JSON shape is a contract (README,
 * "certpilot doctor"); its "caa" member is the result object of
 * `caa check --json`.
 */
#include "cli/cli.h"

#include <errno.h>
#include <time.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { OPT_AUTH_PORT = 1301 }; /* clear of CLI_DNS_LONGOPTS and CLI_CAA_LONGOPTS */
#define DOCTOR_PERSIST_MAX 32  /* names checked for dns-persist-01 in one run */

static void usage(FILE *f)
{
    fputs("usage: certpilot doctor [--resolver IP[:PORT]]... [--timeout SECONDS] [--tries N]\n"
          "                        [--authoritative-port N] [--ca-identity DOMAIN]\n"
          "                        [--account-uri URI]\n"
          "                        [--method http-01|dns-01|tls-alpn-01|dns-persist-01]\n"
          "                        [--json] [-q] NAME...\n"
          "\n"
          "Diagnoses what would make the CA's CAA check for each NAME fail, or fail now and\n"
          "then: the verdict through the resolver, then every authoritative nameserver of\n"
          "every zone on the CAA path asked directly (recursion off, IPv4 and IPv6), compared,\n"
          "and each problem with its evidence and the fix.  Nothing is sent to any CA.\n"
          "\n"
          "  --resolver IP[:PORT]      recursive resolver to ask (repeatable; default: "
          "/etc/resolv.conf)\n"
          "  --timeout SECONDS         time allowed for each round of queries (default: 10)\n"
          "  --tries N                 attempts per query within that time (default: 2)\n"
          "  --authoritative-port N    port of the authoritative servers (default: 53)\n"
          "  --ca-identity DOMAIN      issuer domain the CA looks for (default: "
          "letsencrypt.org)\n"
          "  --account-uri URI         your ACME account URL, matched against accounturi=\n"
          "  --method TYPE             challenge type that will be used (default: http-01);\n"
          "                            dns-persist-01 also asks every nameserver of\n"
          "                            _validation-persist.NAME whether its record authorizes\n"
          "                            --account-uri with --ca-identity\n"
          "  --json                    print one JSON object instead of text\n"
          "  -q, --quiet               print nothing: the exit status is the answer\n"
          "\n"
          "exit status: 0 nothing wrong, 1 issuance would be refused by CAA, 2 issuance would\n"
          "fail on DNS, 3 only warnings (flaky servers), 64 usage error, 69 DNS set-up failed.\n",
          f);
}

/* ----------------------------------------------------------------- JSON */

static json_t *records_json(const struct caa_record *r, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++) {
        char rec[1024];
        size_t need = caa_record_format(&r[i], rec, sizeof rec);
        if (need >= sizeof rec)
            memcpy(rec + sizeof rec - 4, "...", 4);
        if (json_array_append_new(a, json_string(rec)) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static const char *rcode_or_null(const struct caa_diag_answer *a)
{
    return a->asked && !a->timeout && a->error[0] == '\0' && a->rcode >= 0
               ? caa_rcode_name(a->rcode)
               : NULL;
}

static json_t *answer_json(const struct caa_diag_answer *a)
{
    return json_pack("{s:s?, s:b, s:o, s:I}", "rcode", rcode_or_null(a), "timeout", a->timeout,
                     "records", records_json(a->records, a->nrecords), "ms", (json_int_t)a->ms);
}

static json_t *server_json(const struct caa_diag_server *s)
{
    return json_pack("{s:s, s:s?, s:s?, s:b, s:b, s:o, s:s?, s:I}", "name", s->name, "address",
                     s->addr[0] ? s->addr : NULL, "rcode", rcode_or_null(&s->caa), "timeout",
                     s->caa.timeout, "aa", s->caa.aa, "records",
                     records_json(s->caa.records, s->caa.nrecords), "cname",
                     s->caa.cname[0] ? s->caa.cname : NULL, "ms", (json_int_t)s->caa.ms);
}

static json_t *hop_json(const struct caa_diag_hop *h)
{
    json_t *servers = json_array();
    for (size_t i = 0; servers != NULL && i < h->nservers; i++) {
        if (json_array_append_new(servers, server_json(&h->servers[i])) != 0) {
            json_decref(servers);
            return NULL;
        }
    }
    bool failed = !(h->resolver.asked && !h->resolver.timeout && h->resolver.error[0] == '\0' &&
                    (h->resolver.rcode == 0 || h->resolver.rcode == 3));
    json_t *cd = failed && h->resolver_cd.asked ? answer_json(&h->resolver_cd) : json_null();
    return json_pack("{s:s, s:s?, s:s?, s:o, s:o, s:o, s:b}", "name", h->name, "zone",
                     h->zone[0] ? h->zone : NULL, "alias_of", h->alias_of[0] ? h->alias_of : NULL,
                     "resolver", answer_json(&h->resolver), "resolver_cd", cd, "servers", servers,
                     "agree", h->agree);
}

static json_t *finding_json(const struct caa_diag_finding *f)
{
    return json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s, s:s}", "severity",
                     caa_diag_severity_name(f->severity), "kind", caa_diag_kind_name(f->kind),
                     "name", f->name, "zone", f->zone[0] ? f->zone : NULL, "server",
                     f->server[0] ? f->server : NULL, "address", f->address[0] ? f->address : NULL,
                     "evidence", f->evidence, "fix", f->fix);
}

static json_t *readiness_json(const struct caa_diag_readiness *r)
{
    json_t *addrs = json_array();
    for (size_t i = 0; addrs != NULL && i < r->naddresses; i++)
        if (json_array_append_new(addrs, json_string(r->addresses[i])) != 0) {
            json_decref(addrs);
            return NULL;
        }
    json_t *o = json_pack("{s:s, s:o}", "method", r->method, "addresses", addrs);
    if (o == NULL || r->challenge_name[0] == '\0')
        return o;
    json_t *ns = json_array();
    for (size_t i = 0; ns != NULL && i < r->nnameservers; i++)
        if (json_array_append_new(ns, json_string(r->nameservers[i])) != 0) {
            json_decref(ns);
            ns = NULL;
        }
    if (ns == NULL || json_object_set_new(o, "challenge_name", json_string(r->challenge_name)) ||
        json_object_set_new(o, "challenge_zone",
                            r->challenge_zone[0] ? json_string(r->challenge_zone) : json_null()) ||
        json_object_set_new(o, "nameservers", ns)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *name_json(const struct caa_diag_name *d, json_t *caa)
{
    json_t *findings = json_array(), *hops = json_array();
    for (size_t i = 0; findings != NULL && i < d->nfindings; i++)
        if (json_array_append_new(findings, finding_json(&d->findings[i])) != 0) {
            json_decref(findings);
            findings = NULL;
        }
    for (size_t i = 0; hops != NULL && i < d->nhops; i++)
        if (json_array_append_new(hops, hop_json(&d->hops[i])) != 0) {
            json_decref(hops);
            hops = NULL;
        }
    return json_pack("{s:s, s:s, s:O, s:o, s:o, s:o}", "name", d->ident, "status",
                     caa_diag_severity_name(d->status), "caa", caa, "findings", findings, "hops",
                     hops, "readiness", readiness_json(&d->readiness));
}

static json_t *diag_json(const struct caa_diag *dg, const struct caa_params *p, int status)
{
    json_t *report = cli_caa_report_json(caa_diag_report(dg), p), *names = json_array();
    json_t *results = report ? json_object_get(report, "results") : NULL;
    for (size_t i = 0; results != NULL && names != NULL && i < caa_diag_count(dg); i++) {
        json_t *caa = json_array_get(results, i);
        if (caa == NULL || json_array_append_new(names, name_json(caa_diag_get(dg, i), caa)) != 0) {
            json_decref(names);
            names = NULL;
        }
    }
    json_t *o = NULL;
    if (results != NULL && names != NULL)
        o = json_pack("{s:s, s:s, s:i, s:O}", "ca_identity", p->ca_identity, "method", p->method,
                      "exit_status", status, "names", names);
    json_decref(names);
    json_decref(report);
    return o;
}

/* ----------------------------------------------------------------- text */

static void print_answer(FILE *f, const struct caa_diag_answer *a, bool show_aa)
{
    if (!a->asked) {
        fputs("not asked", f);
        return;
    }
    if (a->error[0] != '\0') {
        fprintf(f, "no answer: %s", a->error);
        return;
    }
    if (a->timeout) {
        fprintf(f, "no answer (%ld ms)", a->ms);
        return;
    }
    fprintf(f, "%s%s %ld ms", caa_rcode_name(a->rcode), show_aa && a->aa ? " aa" : "", a->ms);
    if (a->cname[0] != '\0')
        fprintf(f, ", CNAME %s", a->cname);
    if (a->rcode != 0 && a->rcode != 3)
        return;
    if (a->nrecords == 0 && a->cname[0] == '\0')
        fputs(", no CAA record", f);
    for (size_t i = 0; i < a->nrecords; i++) {
        char rec[512];
        size_t need = caa_record_format(&a->records[i], rec, sizeof rec);
        fprintf(f, "%s %s%s", i ? "," : ",", rec, need >= sizeof rec ? "..." : "");
    }
}

static const char *headline(enum caa_diag_severity s)
{
    switch (s) {
    case CAA_DIAG_BLOCKED: return "BLOCKED";
    case CAA_DIAG_WILL_FAIL: return "WILL FAIL AT THE CA";
    case CAA_DIAG_FLAKY: return "FLAKY";
    case CAA_DIAG_INFO: return "INFO";
    case CAA_DIAG_OK: return "OK";
    }
    return "OK";
}

static void print_finding(FILE *f, const struct caa_diag_finding *x)
{
    fprintf(f, "%s: %s\n", headline(x->severity), x->summary);
    fprintf(f, "  evidence: %s\n", x->evidence);
    fprintf(f, "  fix: %s\n", x->fix);
}

/* Nothing wrong: a bare "OK" line, then what was looked at. */
static void print_ok(FILE *f, const struct caa_diag_name *d)
{
    size_t servers = 0, unknown = 0;
    for (size_t i = 0; i < d->nhops; i++) {
        servers += d->hops[i].nservers;
        unknown += d->hops[i].nservers == 0;
    }
    fputs("OK\n", f);
    fprintf(f, "  evidence: CAA allows %s to issue for %s; %zu name%s looked up",
            d->caa->params->ca_identity, d->ident, d->nhops, d->nhops == 1 ? "" : "s");
    if (servers > 0)
        fprintf(f,
                ", %zu server address%s asked directly, each answering with authority and "
                "the same records",
                servers, servers == 1 ? "" : "es");
    if (unknown > 0)
        fprintf(f,
                "; the nameservers of %zu of them could not be found, so they were not "
                "checked (see below)",
                unknown);
    fputc('\n', f);
}

static void print_hops(FILE *f, const struct caa_diag_name *d, const char *resolver)
{
    fputs("  hops:\n", f);
    for (size_t i = 0; i < d->nhops; i++) {
        const struct caa_diag_hop *h = &d->hops[i];
        fprintf(f, "    %s (zone %s%s%s)\n", h->name, h->zone[0] ? h->zone : "unknown",
                h->alias_of[0] ? ", alias target of " : "", h->alias_of);
        if (strncmp(resolver, "the ", 4) == 0)
            fprintf(f, "      %s: ", resolver);
        else
            fprintf(f, "      resolver %s: ", resolver);
        print_answer(f, &h->resolver, false);
        fputc('\n', f);
        bool failed = !(h->resolver.asked && !h->resolver.timeout && h->resolver.error[0] == 0 &&
                        (h->resolver.rcode == 0 || h->resolver.rcode == 3));
        if (failed && h->resolver_cd.asked) {
            fputs("      resolver with CD=1: ", f);
            print_answer(f, &h->resolver_cd, false);
            fputc('\n', f);
        }
        if (h->nservers == 0 && h->zone_error[0] != '\0')
            fprintf(f, "      servers unknown: %s\n", h->zone_error);
        for (size_t k = 0; k < h->nservers; k++) {
            const struct caa_diag_server *s = &h->servers[k];
            if (s->addr[0] == '\0') {
                fprintf(f, "      %s: no address (%s)\n", s->name, s->why);
                continue;
            }
            fprintf(f, "      %s %s: ", s->name, s->addr);
            print_answer(f, &s->caa, true);
            fputc('\n', f);
        }
        if (h->nservers > 1)
            fprintf(f, "      %s\n",
                    h->agree ? "the servers that answered agree" : "the servers DISAGREE");
    }
}

static void print_readiness(FILE *f, const struct caa_diag_readiness *r, const char *base)
{
    fprintf(f, "  readiness (%s): ", r->method);
    if (r->challenge_name[0] != '\0') {
        if (r->challenge_zone[0] == '\0') {
            fprintf(f, "zone of %s unknown: %s\n", r->challenge_name, r->challenge_error);
            return;
        }
        fprintf(f, "%s", r->challenge_name);
        if (strcasecmp(r->challenge_target, r->challenge_name) != 0)
            fprintf(f, " (an alias of %s)", r->challenge_target);
        fprintf(f, " is in zone %s, nameservers", r->challenge_zone);
        for (size_t i = 0; i < r->nnameservers; i++)
            fprintf(f, "%s %s", i ? "," : "", r->nameservers[i]);
        if (r->nnameservers == 0)
            fprintf(f, " unknown (%s)", r->challenge_error);
        fputc('\n', f);
        return;
    }
    if (r->naddresses == 0) {
        fprintf(f, "no address for %s: %s (the CA would have nowhere to connect)\n", base,
                r->addresses_error);
        return;
    }
    fprintf(f, "%s has address%s", base, r->naddresses == 1 ? "" : "es");
    for (size_t i = 0; i < r->naddresses; i++)
        fprintf(f, "%s %s", i ? "," : "", r->addresses[i]);
    fputs(" (not contacted)\n", f);
}

static void print_text(FILE *f, const struct caa_diag *dg)
{
    for (size_t i = 0; i < caa_diag_count(dg); i++) {
        const struct caa_diag_name *d = caa_diag_get(dg, i);
        if (i > 0)
            fputc('\n', f);
        fprintf(f, "%s: %s\n", d->ident, caa_diag_severity_name(d->status));
        for (size_t k = 0; k < d->nfindings; k++)
            if (d->findings[k].severity > CAA_DIAG_INFO)
                print_finding(f, &d->findings[k]);
        if (d->status == CAA_DIAG_OK)
            print_ok(f, d);
        for (size_t k = 0; k < d->nfindings; k++)
            if (d->findings[k].severity == CAA_DIAG_INFO)
                print_finding(f, &d->findings[k]);
        cli_caa_warning_text(f, d->caa);
        print_hops(f, d, caa_diag_resolver(dg));
        print_readiness(f, &d->readiness, d->caa->chain[0]->name);
    }
}

/* ------------------------------------------------------------------ main */

static int exit_status(const struct caa_diag *dg)
{
    enum caa_diag_severity worst = CAA_DIAG_OK;
    for (size_t i = 0; i < caa_diag_count(dg); i++)
        if (caa_diag_get(dg, i)->status > worst)
            worst = caa_diag_get(dg, i)->status;
    switch (worst) {
    case CAA_DIAG_BLOCKED: return CLI_EXIT_CAA_DENIED;
    case CAA_DIAG_WILL_FAIL: return CLI_EXIT_CAA_DNS;
    case CAA_DIAG_FLAKY: return CLI_EXIT_DOCTOR_WARN;
    default: return CLI_EXIT_OK;
    }
}

/* --method dns-persist-01: every nameserver of each name's validation name
 * asked for the standing record (flow/persist.c). */
static enum cp_code persist_check(char **names, size_t n, const struct cli_dns *dns,
                                  const struct caa_params *p, unsigned port,
                                  struct flow_persist_report **out, struct cp_err *err)
{
    char norm[DOCTOR_PERSIST_MAX][CAA_IDENT_MAX], base[CAA_IDENT_MAX];
    const char *idents[DOCTOR_PERSIST_MAX];
    bool wildcard;
    if (n > DOCTOR_PERSIST_MAX)
        return cp_err_set(err, CP_EINVAL, "at most %d names with --method dns-persist-01",
                          DOCTOR_PERSIST_MAX);
    for (size_t i = 0; i < n; i++) {
        enum cp_code rc = caa_name_normalize(names[i], norm[i], base, &wildcard, err);
        if (rc != CP_OK)
            return rc;
        idents[i] = norm[i];
    }
    const char *issuers[1] = {p->ca_identity};
    struct caa_persist_check chk = {
        .issuers = issuers, .nissuers = 1, .account_uri = p->account_uri, .now = time(NULL)};
    return flow_persist_check(idents, n, &dns->ropts, port, &chk, out, err);
}

int cmd_doctor(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_CAA_LONGOPTS,    {"authoritative-port", required_argument, NULL, OPT_AUTH_PORT},
        CLI_OUTPUT_LONGOPTS, {"help", no_argument, NULL, 'h'},
        CLI_DNS_LONGOPTS,    {NULL, 0, NULL, 0},
    };
    struct cli_dns dns;
    struct caa_params params = {.ca_identity = "letsencrypt.org", .method = "http-01"};
    unsigned port = 53;
    struct cli_common out; /* the output options only */
    int ch;

    cli_common_init(&out);
    if (cli_options_exact(argc, argv, ":hvq", longopts, "doctor") != 0)
        return CLI_EXIT_USAGE;
    optind = 1;
    opterr = 0; /* report unknown options ourselves, naming the argument */
    cli_dns_init(&dns);
    while ((ch = getopt_long(argc, argv, ":hvq", longopts, NULL)) != -1) {
        int handled = cli_dns_option(&dns, ch, optarg);
        if (handled == 0)
            handled = cli_caa_option(&params, ch, optarg);
        if (handled < 0)
            return CLI_EXIT_USAGE;
        if (handled > 0 || cli_common_option(&out, ch, optarg))
            continue;
        switch (ch) {
        case OPT_AUTH_PORT: {
            char *end;
            errno = 0;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || errno != 0 || v == 0 || v > 65535 ||
                optarg[0] == '-' || optarg[0] == '+') {
                cli_error("--authoritative-port \"%s\" is not a port number from 1 to 65535",
                          optarg);
                return CLI_EXIT_USAGE;
            }
            port = (unsigned)v;
            break;
        }
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default: return cli_option_error(ch, argv, "doctor", "names");
        }
    }
    if (optind >= argc) {
        cli_error("doctor needs at least one name, e.g. certpilot doctor example.com");
        return CLI_EXIT_USAGE;
    }
    cli_output_setup(&out);
    bool persist = strcmp(params.method, "dns-persist-01") == 0;
    if (persist && params.account_uri == NULL) {
        cli_error("--method dns-persist-01 needs --account-uri URL: the record must name your "
                  "account (certpilot account show prints its URL)");
        return CLI_EXIT_USAGE;
    }

    struct cp_err err = {0};
    struct caa_diag *dg = NULL;
    struct caa_diag_opts o = {.resolver = &dns.ropts, .params = &params, .auth_port = port};
    enum cp_code rc =
        caa_diagnose((const char *const *)argv + optind, (size_t)(argc - optind), &o, &dg, &err);
    switch (rc) {
    case CP_OK: break;
    case CP_EINVAL: cli_error("%s", err.msg); return CLI_EXIT_USAGE;
    case CP_EDNS: cli_error("%s", err.msg); return CLI_EXIT_UNAVAILABLE;
    default: cli_error("%s: %s", cp_code_name(rc), err.msg); return CLI_EXIT_SOFTWARE;
    }

    int status = exit_status(dg);
    struct flow_persist_report *pr = NULL;
    if (persist) {
        rc = persist_check(argv + optind, (size_t)(argc - optind), &dns, &params, port, &pr, &err);
        if (rc != CP_OK) {
            caa_diag_free(dg);
            cli_error("dns-persist-01: %s", err.msg);
            return rc == CP_EINVAL ? CLI_EXIT_USAGE
                   : rc == CP_EDNS ? CLI_EXIT_UNAVAILABLE
                                   : CLI_EXIT_SOFTWARE;
        }
        /* A record the CA would not accept fails the issuance (as DNS does). */
        if (pr->failed > 0 && (status == CLI_EXIT_OK || status == CLI_EXIT_DOCTOR_WARN))
            status = CLI_EXIT_CAA_DNS;
    }
    if (out.json) {
        json_t *j = diag_json(dg, &params, status);
        if (j != NULL && pr != NULL)
            json_object_set_new(j, "persist_check", cli_persist_json(pr));
        if (j == NULL) {
            flow_persist_report_free(pr);
            caa_diag_free(dg);
            cli_error("out of memory building JSON output");
            return CLI_EXIT_SOFTWARE;
        }
        cli_json_result(j,
                        status == CLI_EXIT_CAA_DENIED ? "blocked"
                        : status == CLI_EXIT_CAA_DNS  ? "will_fail"
                        : status == CLI_EXIT_OK       ? "ok"
                                                      : "flaky",
                        status);
    } else {
        print_text(stdout, dg);
        if (pr != NULL) {
            fputc('\n', stdout);
            cli_persist_text(stdout, pr);
        }
    }
    flow_persist_report_free(pr);
    caa_diag_free(dg);
    return status;
}
