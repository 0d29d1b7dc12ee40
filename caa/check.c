/*
 * caa/check.c - check a batch of identifiers: validate them all, look up every
 * distinct name once (parents shared by several identifiers are queried once),
 * every identifier with all its parents in the same wave (caa_resolve()), then
 * evaluate and explain each identifier.  Asking all parents at once and taking
 * the first non-empty set from the bottom gives the answer Let's Encrypt's
 * climb, which stops there, gets (spec §2, §4).
 */
#include "caa/caa.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHAIN_MAX 128 /* a 253-octet name has at most 127 labels */

struct item {
    char ident[CAA_IDENT_MAX];
    char base[CAA_IDENT_MAX];
    bool wildcard;
    const char *names[CHAIN_MAX];
    const struct caa_lookup *chain[CHAIN_MAX];
    size_t nchain;
    struct caa_decision decision;
    struct caa_explanation explanation;
    struct caa_result view;
};

struct caa_report {
    struct item *items;
    size_t n;
    struct caa_lookup *lookups;
    size_t nlookups;
    size_t queries;
    unsigned waves;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Evaluate and explain one identifier, replacing what it had. */
static enum cp_code judge(struct item *it, const struct caa_params *params, struct cp_err *err)
{
    struct caa_decision d = {0};
    struct caa_explanation e = {0};
    enum cp_code rc = caa_evaluate(it->chain, it->nchain, it->wildcard, params, &d, err);
    if (rc == CP_OK)
        rc = caa_explain(it->ident, it->chain, it->nchain, params, &d, &e, err);
    if (rc != CP_OK) {
        caa_decision_clear(&d);
        caa_explanation_clear(&e);
        return rc;
    }
    caa_decision_clear(&it->decision);
    caa_explanation_clear(&it->explanation);
    it->decision = d;
    it->explanation = e;
    it->view = (struct caa_result){
        .ident = it->ident,
        .wildcard = it->wildcard,
        .status = it->decision.status,
        .chain = it->chain,
        .nchain = it->nchain,
        .decision = &it->decision,
        .explanation = &it->explanation,
        .params = params,
    };
    return CP_OK;
}

enum cp_code caa_check(const char *const *identifiers, size_t n,
                       const struct caa_resolver_opts *ropts, const struct caa_params *params,
                       struct caa_report **out, struct cp_err *err)
{
    enum cp_code rc;
    const char **unique = NULL;
    struct caa_report *r = calloc(1, sizeof *r);

    *out = NULL;
    if (r == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    r->n = n;
    r->items = calloc(n ? n : 1, sizeof *r->items);
    if (r->items == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory for %zu identifiers", n);
        goto cleanup;
    }

    /* Every identifier is validated before a single query goes out. */
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        struct item *it = &r->items[i];
        rc = caa_name_normalize(identifiers[i], it->ident, it->base, &it->wildcard, err);
        if (rc != CP_OK)
            goto cleanup;
        it->nchain = caa_name_chain(it->base, it->names, CHAIN_MAX);
        total += it->nchain;
    }

    /* The distinct names, sorted so each identifier finds its own by bsearch. */
    unique = malloc((total ? total : 1) * sizeof *unique);
    if (unique == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory for %zu names", total);
        goto cleanup;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < r->items[i].nchain; j++)
            unique[k++] = r->items[i].names[j];
    qsort(unique, total, sizeof *unique, cmp_str);
    size_t nunique = 0;
    for (size_t i = 0; i < total; i++)
        if (nunique == 0 || strcmp(unique[nunique - 1], unique[i]) != 0)
            unique[nunique++] = unique[i];

    struct caa_resolve_stats st;
    rc = caa_resolve(ropts, unique, nunique, &r->lookups, &st, err);
    if (rc != CP_OK)
        goto cleanup;
    r->queries = st.queries;
    r->waves = st.waves;
    r->nlookups = nunique;

    for (size_t i = 0; i < n; i++) {
        struct item *it = &r->items[i];
        for (size_t j = 0; j < it->nchain; j++) {
            const char **hit = bsearch(&it->names[j], unique, nunique, sizeof *unique, cmp_str);
            if (hit == NULL) {
                rc = cp_err_set(err, CP_EINTERNAL, "name %s missing from the look-ups",
                                it->names[j]);
                goto cleanup;
            }
            it->chain[j] = &r->lookups[hit - unique];
        }
        rc = judge(it, params, err);
        if (rc != CP_OK)
            goto cleanup;
    }
    *out = r;
    r = NULL;
    rc = CP_OK;
cleanup:
    free(unique);
    caa_report_free(r);
    return rc;
}

enum cp_code caa_report_judge(struct caa_report *r, size_t i, const struct caa_params *params,
                              struct cp_err *err)
{
    if (r == NULL || i >= r->n)
        return cp_err_set(err, CP_EINVAL, "no identifier %zu in the CAA report", i);
    return judge(&r->items[i], params, err);
}

enum cp_code caa_report_status(const struct caa_report *r, size_t i,
                               const struct caa_params *params, enum caa_status *status,
                               struct cp_err *err)
{
    if (r == NULL || i >= r->n)
        return cp_err_set(err, CP_EINVAL, "no identifier %zu in the CAA report", i);
    const struct item *it = &r->items[i];
    struct caa_decision d = {0};
    enum cp_code rc = caa_evaluate(it->chain, it->nchain, it->wildcard, params, &d, err);
    if (rc == CP_OK)
        *status = d.status;
    caa_decision_clear(&d);
    return rc;
}

size_t caa_report_count(const struct caa_report *r)
{
    return r ? r->n : 0;
}

const struct caa_result *caa_report_result(const struct caa_report *r, size_t i)
{
    return r && i < r->n ? &r->items[i].view : NULL;
}

size_t caa_report_queries(const struct caa_report *r)
{
    return r ? r->queries : 0;
}

unsigned caa_report_waves(const struct caa_report *r)
{
    return r ? r->waves : 0;
}

void caa_report_free(struct caa_report *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n && r->items != NULL; i++) {
        caa_decision_clear(&r->items[i].decision);
        caa_explanation_clear(&r->items[i].explanation);
    }
    free(r->items);
    caa_lookups_free(r->lookups, r->nlookups);
    free(r);
}
