/*
 * cli/preflight.c - the CAA preflight of commands that order certificates,
 * and the DNS options shared by every command that looks up CAA.
 *
 * Before an order is placed, every identifier is checked the way the CA will
 * check it (caa/): with the CA's identity, the ordering account's URL and the
 * challenge type that will be used.  When several types are configured, the
 * first one the CAA records allow is chosen per identifier; the look-ups are
 * made once and judged again for each type, without more DNS traffic.
 */
#include "cli/cli.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *const cli_methods[CLI_METHODS] = {"http-01", "dns-01", "tls-alpn-01"};

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

int cli_method_index(const char *type)
{
    for (int i = 0; type != NULL && i < CLI_METHODS; i++)
        if (strcmp(type, cli_methods[i]) == 0)
            return i;
    return -1;
}

/* ---------------------------------------------------------- preflight */

void cli_preflight_clear(struct cli_preflight *pf)
{
    caa_report_free(pf->report);
    free(pf->params);
    free(pf->chosen);
    free(pf->allowed);
    pf->report = NULL;
    pf->params = NULL;
    pf->chosen = NULL;
    pf->allowed = NULL;
}

static double elapsed_ms(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1000.0 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Which types the records allow for identifier i (a bit per cli_methods[]),
 * with any of the CA's identities; `which[m]` is the identity that does. */
static enum cp_code allowed_types(const struct cli_preflight *pf, size_t i, unsigned *mask,
                                  const char **which, struct cp_err *err)
{
    *mask = 0;
    for (int m = 0; m < CLI_METHODS; m++) {
        which[m] = pf->identities[0];
        for (size_t k = 0; k < pf->nidentities; k++) {
            struct caa_params p = {.ca_identity = pf->identities[k],
                                   .account_uri = pf->account_uri,
                                   .method = cli_methods[m]};
            enum caa_status st;
            enum cp_code rc = caa_report_status(pf->report, i, &p, &st, err);
            if (rc != CP_OK)
                return rc;
            if (st == CAA_ALLOWED) {
                *mask |= 1u << m;
                which[m] = pf->identities[k];
                break;
            }
        }
    }
    return CP_OK;
}

enum cp_code cli_preflight_run(struct cli_preflight *pf, struct cp_err *err)
{
    struct timespec t0;
    enum cp_code rc;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (pf->n == 0 || pf->nidentities == 0 || pf->nmethods == 0)
        return cp_err_set(err, CP_EINTERNAL, "a preflight needs names, a CA identity and a type");
    pf->params = calloc(pf->n, sizeof *pf->params);
    pf->chosen = calloc(pf->n, sizeof *pf->chosen);
    pf->allowed = calloc(pf->n, sizeof *pf->allowed);
    if (pf->params == NULL || pf->chosen == NULL || pf->allowed == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        goto fail;
    }
    /* One batch: every distinct name queried once, all in parallel.  The
     * first preference only seeds the report; each identifier is judged
     * again below with the type it will use. */
    struct caa_params first = {
        .ca_identity = pf->identities[0], .account_uri = pf->account_uri, .method = pf->methods[0]};
    rc = caa_check(pf->names, pf->n, pf->ropts, &first, &pf->report, err);
    if (rc != CP_OK)
        goto fail;
    for (size_t i = 0; i < pf->n; i++) {
        const char *which[CLI_METHODS];
        rc = allowed_types(pf, i, &pf->allowed[i], which, err);
        if (rc != CP_OK)
            goto fail;
        /* The first configured type the records allow; when none is
         * allowed, judge with the first preference for the explanation. */
        const char *const *prefs = pf->judge_as && pf->judge_as[i] ? &pf->judge_as[i] : pf->methods;
        size_t nprefs = pf->judge_as && pf->judge_as[i] ? 1 : pf->nmethods;
        const char *identity = pf->identities[0], *method = prefs[0];
        /* A wildcard is validated only with dns-01 (RFC 8555 §7.1.3). */
        bool wildcard = caa_report_result(pf->report, i)->wildcard;
        for (size_t k = 0; wildcard && !(pf->judge_as && pf->judge_as[i]) && k < nprefs; k++)
            if (strcmp(prefs[k], "dns-01") == 0)
                method = prefs[k];
        for (size_t k = 0; k < nprefs; k++) {
            int m = cli_method_index(prefs[k]);
            if (wildcard && !(pf->judge_as && pf->judge_as[i]) && strcmp(prefs[k], "dns-01") != 0)
                continue;
            if (m >= 0 && (pf->allowed[i] & (1u << m))) {
                pf->chosen[i] = prefs[k];
                method = prefs[k];
                identity = which[m];
                break;
            }
        }
        pf->params[i] = (struct caa_params){
            .ca_identity = identity, .account_uri = pf->account_uri, .method = method};
        rc = caa_report_judge(pf->report, i, &pf->params[i], err);
        if (rc != CP_OK)
            goto fail;
    }
    pf->elapsed_ms = elapsed_ms(&t0);
    return CP_OK;
fail:
    cli_preflight_clear(pf);
    return rc;
}

enum caa_status cli_preflight_outcome(const struct cli_preflight *pf)
{
    enum caa_status worst = CAA_ALLOWED;
    for (size_t i = 0; i < caa_report_count(pf->report); i++) {
        enum caa_status s = caa_report_result(pf->report, i)->status;
        if (s == CAA_DENIED)
            worst = CAA_DENIED;
        else if (s == CAA_ERROR && worst == CAA_ALLOWED)
            worst = CAA_ERROR;
    }
    return worst;
}

static size_t find(const struct cli_preflight *pf, const char *ident)
{
    for (size_t i = 0; i < caa_report_count(pf->report); i++)
        if (strcasecmp(caa_report_result(pf->report, i)->ident, ident) == 0)
            return i;
    return SIZE_MAX;
}

const char *cli_preflight_chosen(const struct cli_preflight *pf, const char *ident)
{
    size_t i = pf->report ? find(pf, ident) : SIZE_MAX;
    return i == SIZE_MAX ? NULL : pf->chosen[i];
}

bool cli_preflight_allows(const struct cli_preflight *pf, const char *type, const char *ident)
{
    if (pf->report == NULL)
        return true; /* no preflight: the solver alone decides */
    size_t i = find(pf, ident);
    int m = cli_method_index(type);
    if (i == SIZE_MAX || m < 0)
        return true; /* not a name of the preflight: the CA will judge */
    if (pf->chosen[i] == NULL)
        return true; /* refused, but --caa-preflight=warn went on */
    return (pf->allowed[i] & (1u << m)) != 0;
}

/* "dns-01, tls-alpn-01" or "none" */
static void mask_words(unsigned mask, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int m = 0; m < CLI_METHODS; m++)
        if (mask & (1u << m))
            n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "%s%s", n ? ", " : "",
                                  cli_methods[m]);
    if (n == 0)
        snprintf(buf, size, "none");
}

json_t *cli_preflight_json(const struct cli_preflight *pf)
{
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
        for (int m = 0; types != NULL && m < CLI_METHODS; m++)
            if (pf->allowed[i] & (1u << m))
                json_array_append_new(types, json_string(cli_methods[m]));
        json_object_set_new(r, "allowed_methods", types ? types : json_array());
        json_object_set_new(r, "chosen_method",
                            pf->chosen[i] ? json_string(pf->chosen[i]) : json_null());
    }
    json_object_set_new(j, "elapsed_ms", json_integer((json_int_t)(pf->elapsed_ms + 0.5)));
    return j;
}

void cli_preflight_warnings(FILE *f, const struct cli_preflight *pf)
{
    for (size_t i = 0; i < caa_report_count(pf->report); i++) {
        const struct caa_result *res = caa_report_result(pf->report, i);
        if (res->explanation->warning == NULL)
            continue;
        fprintf(f, "%s: allowed (%s)\n", res->ident,
                pf->chosen[i] ? pf->chosen[i] : res->params->method);
        cli_caa_warning_text(f, res);
    }
}

void cli_preflight_text(FILE *f, const struct cli_preflight *pf)
{
    for (size_t i = 0; i < caa_report_count(pf->report); i++) {
        const struct caa_result *res = caa_report_result(pf->report, i);
        if (res->status == CAA_ALLOWED) {
            fprintf(f, "%s: allowed (%s)\n", res->ident, pf->chosen[i]);
            cli_caa_warning_text(f, res);
            continue;
        }
        cli_caa_result_text(f, res);
        const char *reused = pf->judge_as ? pf->judge_as[i] : NULL;
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
