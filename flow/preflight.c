/*
 * flow/preflight.c - the CAA preflight of an order, and its recheck before
 * finalize.
 *
 * Before an order is placed, every identifier is checked the way the CA will
 * check it (caa/): with the CA's identity, the ordering account's URL and the
 * challenge type that will be used.  When several types are configured, the
 * first one the CAA records allow is chosen per identifier; the look-ups are
 * made once and judged again for each type, without more DNS traffic.  How a
 * report is shown is the caller's (cli/preflight.c).
 */
#include "flow/flow.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *const flow_methods[FLOW_METHODS] = {"http-01", "dns-01", "tls-alpn-01",
                                                "dns-persist-01"};

int flow_method_index(const char *type)
{
    for (int i = 0; type != NULL && i < FLOW_METHODS; i++)
        if (strcmp(type, flow_methods[i]) == 0)
            return i;
    return -1;
}

/* ---------------------------------------------------------- preflight */

void flow_preflight_clear(struct flow_preflight *pf)
{
    caa_report_free(pf->report);
    free(pf->params);
    free(pf->chosen);
    free(pf->allowed);
    free(pf->dns_names);
    free(pf->ip_names);
    free(pf->dns_judge);
    pf->dns_names = pf->ip_names = NULL;
    pf->dns_judge = NULL;
    pf->ndns = pf->nips = 0;
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

/* Which types the records allow for identifier i (a bit per flow_methods[]),
 * with any of the CA's identities; `which[m]` is the identity that does. */
static enum cp_code allowed_types(const struct flow_preflight *pf, size_t i, unsigned *mask,
                                  const char **which, struct cp_err *err)
{
    *mask = 0;
    for (int m = 0; m < FLOW_METHODS; m++) {
        which[m] = pf->identities[0];
        for (size_t k = 0; k < pf->nidentities; k++) {
            struct caa_params p = {.ca_identity = pf->identities[k],
                                   .account_uri = pf->account_uri,
                                   .method = flow_methods[m]};
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

enum cp_code flow_preflight_run(struct flow_preflight *pf, struct cp_err *err)
{
    struct timespec t0;
    enum cp_code rc;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (pf->n == 0 || pf->nidentities == 0 || pf->nmethods == 0)
        return cp_err_set(err, CP_EINTERNAL, "a preflight needs names, a CA identity and a type");
    pf->params = calloc(pf->n, sizeof *pf->params);
    pf->chosen = calloc(pf->n, sizeof *pf->chosen);
    pf->allowed = calloc(pf->n, sizeof *pf->allowed);
    pf->dns_names = calloc(pf->n, sizeof *pf->dns_names);
    pf->ip_names = calloc(pf->n, sizeof *pf->ip_names);
    pf->dns_judge = calloc(pf->n, sizeof *pf->dns_judge);
    if (pf->params == NULL || pf->chosen == NULL || pf->allowed == NULL || pf->dns_names == NULL ||
        pf->ip_names == NULL || pf->dns_judge == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        goto fail;
    }
    /* RFC 8738 §7 (and RFC 8659 §3): no CAA look-up for an IP address. */
    for (size_t i = 0; i < pf->n; i++) {
        if (acme_ip_normalize(pf->names[i], NULL)) {
            pf->ip_names[pf->nips++] = pf->names[i];
            continue;
        }
        pf->dns_judge[pf->ndns] = pf->judge_as ? pf->judge_as[i] : NULL;
        pf->dns_names[pf->ndns++] = pf->names[i];
    }
    if (pf->ndns == 0) {
        pf->elapsed_ms = elapsed_ms(&t0);
        return CP_OK;
    }
    const char *const *judge_as = pf->judge_as ? pf->dns_judge : NULL;
    /* One batch: every distinct name queried once, all in parallel.  The
     * first preference only seeds the report; each identifier is judged
     * again below with the type it will use. */
    struct caa_params first = {
        .ca_identity = pf->identities[0], .account_uri = pf->account_uri, .method = pf->methods[0]};
    rc = caa_check(pf->dns_names, pf->ndns, pf->ropts, &first, &pf->report, err);
    if (rc != CP_OK)
        goto fail;
    for (size_t i = 0; i < pf->ndns; i++) {
        const char *which[FLOW_METHODS];
        rc = allowed_types(pf, i, &pf->allowed[i], which, err);
        if (rc != CP_OK)
            goto fail;
        /* The first configured type the records allow; when none is
         * allowed, judge with the first preference for the explanation. */
        const char *const *prefs = judge_as && judge_as[i] ? &judge_as[i] : pf->methods;
        size_t nprefs = judge_as && judge_as[i] ? 1 : pf->nmethods;
        const char *identity = pf->identities[0], *method = prefs[0];
        /* A wildcard is validated only through DNS (RFC 8555 §7.1.3): dns-01,
         * or dns-persist-01 with policy=wildcard. */
        bool wildcard = caa_report_result(pf->report, i)->wildcard;
        for (size_t k = 0; wildcard && !(judge_as && judge_as[i]) && k < nprefs; k++)
            if (strncmp(prefs[k], "dns-", 4) == 0) {
                method = prefs[k];
                break;
            }
        for (size_t k = 0; k < nprefs; k++) {
            int m = flow_method_index(prefs[k]);
            if (wildcard && !(judge_as && judge_as[i]) && strncmp(prefs[k], "dns-", 4) != 0)
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
    flow_preflight_clear(pf);
    return rc;
}

enum caa_status flow_preflight_outcome(const struct flow_preflight *pf)
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

static size_t find(const struct flow_preflight *pf, const char *ident)
{
    for (size_t i = 0; i < caa_report_count(pf->report); i++)
        if (strcasecmp(caa_report_result(pf->report, i)->ident, ident) == 0)
            return i;
    return SIZE_MAX;
}

const char *flow_preflight_chosen(const struct flow_preflight *pf, const char *ident)
{
    size_t i = pf->report ? find(pf, ident) : SIZE_MAX;
    return i == SIZE_MAX ? NULL : pf->chosen[i];
}

bool flow_preflight_allows(const struct flow_preflight *pf, const char *type, const char *ident)
{
    if (pf->report == NULL)
        return true; /* no preflight: the solver alone decides */
    size_t i = find(pf, ident);
    int m = flow_method_index(type);
    if (i == SIZE_MAX || m < 0)
        return true; /* not a name of the preflight: the CA will judge */
    if (pf->chosen[i] == NULL)
        return true; /* refused, but --caa-preflight=warn went on */
    return (pf->allowed[i] & (1u << m)) != 0;
}

/* "dns-01, tls-alpn-01" or "none" */
