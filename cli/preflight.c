/*
 * cli/preflight.c - how the CAA preflight of an order (flow/preflight.c) is
 * shown, and the DNS options shared by every command that looks up CAA.
 *
 * Before an order is placed, every identifier is checked the way the CA will
 * check it (caa/): with the CA's identity, the ordering account's URL and the
 * challenge type that will be used.  When several types are configured, the
 * first one the CAA records allow is chosen per identifier; the look-ups are
 * made once and judged again for each type, without more DNS traffic.
 */
#include "cli/cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ options */

void cli_dns_init(struct cli_dns *d)
{
    memset(d, 0, sizeof *d);
    d->ropts.servers = d->servers;
}

static int parse_timeout(const char *s, unsigned *ms)
{
    char *end;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || !isfinite(v) || v <= 0 || v > 300)
        return -1;
    *ms = (unsigned)(v * 1000.0 + 0.5);
    if (*ms == 0)
        *ms = 1;
    return 0;
}

int cli_dns_option(struct cli_dns *d, int opt, const char *arg)
{
    switch (opt) {
    case CLI_OPT_RESOLVER:
        if (d->ropts.nservers == CLI_RESOLVERS_MAX) {
            cli_error("at most %d --resolver options", CLI_RESOLVERS_MAX);
            return -1;
        }
        d->servers[d->ropts.nservers++] = arg;
        return 1;
    case CLI_OPT_TIMEOUT:
        if (parse_timeout(arg, &d->ropts.timeout_ms) != 0) {
            cli_error("--timeout \"%s\" is not a number of seconds between 0 and 300", arg);
            return -1;
        }
        return 1;
    case CLI_OPT_TRIES: {
        char *end;
        long v = strtol(arg, &end, 10);
        if (*arg == '\0' || *end != '\0' || v < 1 || v > 10) {
            cli_error("--tries \"%s\" is not a number of attempts from 1 to 10", arg);
            return -1;
        }
        d->ropts.tries = (unsigned)v;
        return 1;
    }
    default: return 0;
    }
}

bool cli_ca_identity_valid(const char *s)
{
    /* Compared byte for byte with record values: refuse what no record could
     * ever name, so a typo is caught here rather than as a denial. */
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (*s <= 0x20 || *s >= 0x7f || *s == ';')
            return false;
    return true;
}

static void mask_words(unsigned mask, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int m = 0; m < FLOW_METHODS; m++)
        if (mask & (1u << m))
            n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "%s%s", n ? ", " : "",
                                  flow_methods[m]);
    if (n == 0)
        snprintf(buf, size, "none");
}

/* The configured types that can validate IP address `ip` (RFC 8738 §7),
 * as JSON, and the first of them in *first (NULL: none). */
static json_t *ip_methods(const struct flow_preflight *pf, const char *ip, const char **first)
{
    json_t *a = json_array();
    *first = NULL;
    for (size_t k = 0; a != NULL && k < pf->nmethods; k++)
        if (acme_ident_method_check(ip, pf->methods[k], NULL) == CP_OK &&
            flow_method_index(pf->methods[k]) >= 0) {
            json_array_append_new(a, json_string(pf->methods[k]));
            if (*first == NULL)
                *first = pf->methods[k];
        }
    return a ? a : json_array();
}

#define IP_NO_CAA                                                                                  \
    "CAA applies to DNS names only (RFC 8659 §3, RFC 8738 §7): nothing is checked for an IP "    \
    "address"

/* One entry per IP identifier, saying that CAA does not apply to it. */
static void ip_results_json(const struct flow_preflight *pf, json_t *results)
{
    for (size_t i = 0; results != NULL && i < pf->nips; i++) {
        const char *first;
        json_t *types = ip_methods(pf, pf->ip_names[i], &first);
        json_array_append_new(results,
                              json_pack("{s:s, s:s, s:b, s:s, s:s, s:o, s:s?}", "identifier",
                                        pf->ip_names[i], "type", "ip", "wildcard", 0, "status",
                                        "not_applicable", "explanation", IP_NO_CAA,
                                        "allowed_methods", types, "chosen_method", first));
    }
}

static void ip_text(FILE *f, const struct flow_preflight *pf)
{
    for (size_t i = 0; i < pf->nips; i++)
        fprintf(f, "%s: not checked (%s)\n", pf->ip_names[i], IP_NO_CAA);
}

json_t *cli_preflight_json(const struct flow_preflight *pf)
{
    if (pf->report == NULL && pf->nips > 0) {
        json_t *results = json_array();
        ip_results_json(pf, results);
        return json_pack("{s:s?, s:s?, s:s?, s:I, s:I, s:o, s:I}", "ca_identity",
                         pf->nidentities ? pf->identities[0] : NULL, "account_uri", pf->account_uri,
                         "method", pf->nmethods ? pf->methods[0] : NULL, "queries", (json_int_t)0,
                         "round_trips", (json_int_t)0, "results", results ? results : json_array(),
                         "elapsed_ms", (json_int_t)(pf->elapsed_ms + 0.5));
    }
    if (pf->report == NULL)
        return json_null();
    /* The top level names the first preference (for a recheck, the type
     * judged first); each result its own type. */
    struct caa_params top = {.ca_identity = pf->params[0].ca_identity,
                             .account_uri = pf->account_uri,
                             .method = pf->judge_as ? pf->params[0].method : pf->methods[0]};
    json_t *j = cli_caa_report_json(pf->report, &top);
    json_t *results = json_object_get(j, "results");
    for (size_t i = 0; results != NULL && i < json_array_size(results); i++) {
        json_t *r = json_array_get(results, i), *types = json_array();
        for (int m = 0; types != NULL && m < FLOW_METHODS; m++)
            if (pf->allowed[i] & (1u << m))
                json_array_append_new(types, json_string(flow_methods[m]));
        json_object_set_new(r, "allowed_methods", types ? types : json_array());
        json_object_set_new(r, "chosen_method",
                            pf->chosen[i] ? json_string(pf->chosen[i]) : json_null());
    }
    ip_results_json(pf, results);
    json_object_set_new(j, "elapsed_ms", json_integer((json_int_t)(pf->elapsed_ms + 0.5)));
    return j;
}

void cli_preflight_warnings(FILE *f, const struct flow_preflight *pf)
{
    ip_text(f, pf);
    for (size_t i = 0; i < caa_report_count(pf->report); i++) {
        const struct caa_result *res = caa_report_result(pf->report, i);
        if (res->explanation->warning == NULL)
            continue;
        fprintf(f, "%s: allowed (%s)\n", res->ident,
                pf->chosen[i] ? pf->chosen[i] : res->params->method);
        cli_caa_warning_text(f, res);
    }
}

void cli_preflight_text(FILE *f, const struct flow_preflight *pf)
{
    ip_text(f, pf);
    for (size_t i = 0; i < caa_report_count(pf->report); i++) {
        const struct caa_result *res = caa_report_result(pf->report, i);
        if (res->status == CAA_ALLOWED) {
            fprintf(f, "%s: allowed (%s)\n", res->ident, pf->chosen[i]);
            cli_caa_warning_text(f, res);
            continue;
        }
        cli_caa_result_text(f, res);
        const char *reused = pf->judge_as ? pf->dns_judge[i] : NULL;
        if (res->status == CAA_DENIED && reused != NULL) {
            char words[64];
            mask_words(pf->allowed[i], words, sizeof words);
            fprintf(f,
                    "  The CA reuses an authorization of %s that %s validated more than %d hours\n"
                    "  ago, and checks CAA again for %s before issuing.  CAA allows %s: allow %s\n"
                    "  in the record, or wait until that authorization expires.\n",
                    res->ident, reused, CAA_REUSE_WINDOW_S / 3600, reused, words, reused);
        } else if (res->status == CAA_DENIED && pf->chosen[i] == NULL && pf->allowed[i] != 0) {
            char words[64];
            mask_words(pf->allowed[i], words, sizeof words);
            fprintf(f, "  CAA allows only %s for %s; this order is set up for", words, res->ident);
            for (size_t k = 0; k < pf->nmethods; k++)
                fprintf(f, "%s %s", k ? "," : "", pf->methods[k]);
            fputs(" (see --challenge).\n", f);
        }
        fputc('\n', f);
    }
}
