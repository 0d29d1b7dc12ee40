/*
 * flow/issue.c - the steps of obtaining a certificate that surround the order
 * itself (acme_issue): the certificate's key, and checking and keeping what
 * the CA issued.
 */
#include "flow/flow.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum cp_code flow_issue_key(struct cp_store *st, const char *name, bool reuse,
                            enum acme_key_type type, struct acme_key **key, struct cp_err *err)
{
    *key = NULL;
    /* --reuse-key: the current certificate's key, when there is one (useful
     * with key pinning, e.g. TLSA records); otherwise a fresh key. */
    if (reuse) {
        enum cp_code rc = store_current_key(st, name, key, err);
        if (rc != CP_OK)
            return rc;
    }
    return *key != NULL ? CP_OK : acme_key_generate(type, key, err);
}

void flow_issue_kept_clear(struct flow_issue_kept *k)
{
    free(k->cert);
    free(k->chain);
    free(k->fullchain);
    k->cert = k->chain = k->fullchain = NULL;
}

enum cp_code flow_issue_keep(struct cp_store *st, const char *name, const struct acme_key *cert_key,
                             const struct acme_issue_result *res, const char *const *names,
                             size_t n, bool save, unsigned keep_versions,
                             const struct flow_log *log, struct flow_issue_kept *out,
                             struct cp_err *err)
{
    struct acme_chain *chain = NULL;
    char *keypem = NULL;
    size_t keylen = 0;

    memset(out, 0, sizeof *out);
    enum cp_code rc = acme_chain_parse(res->pem, strlen(res->pem), res->cert_url, &chain, err);
    if (rc == CP_OK)
        rc = acme_chain_check_key(chain, cert_key, err);
    if (rc == CP_OK)
        rc = acme_chain_check_names(chain, names, n, err);
    if (rc == CP_OK)
        rc = acme_chain_pem(chain, &out->cert, &out->chain, &out->fullchain, err);
    if (rc == CP_OK && save)
        rc = acme_key_to_pem(cert_key, &keypem, &keylen, err);
    if (rc == CP_OK && save)
        rc =
            store_version_add(st, name, keypem, keylen, out->cert, out->chain, out->fullchain, err);
    if (rc == CP_OK && save)
        rc = store_lineage_dir(st, name, out->live_dir, sizeof out->live_dir, err);
    if (rc == CP_OK) {
        time_t not_after = acme_chain_not_after(chain);
        struct tm tm;
        gmtime_r(&not_after, &tm);
        strftime(out->not_after, sizeof out->not_after, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    if (rc == CP_OK && save) {
        struct cp_err perr = {0};
        if (store_versions_prune(st, name, keep_versions, &out->pruned, &perr) != CP_OK)
            flow_say(log, FLOW_WARNING,
                     "warning: the new certificate is in place, but not every old version "
                     "could be removed: %s",
                     perr.msg);
        else if (out->pruned > 0)
            flow_say(log, FLOW_INFO, "removed %zu old version%s (--keep-versions %u)", out->pruned,
                     out->pruned == 1 ? "" : "s", keep_versions);
    }
    if (keypem != NULL) {
        OPENSSL_cleanse(keypem, keylen);
        free(keypem);
    }
    acme_chain_free(chain);
    if (rc != CP_OK)
        flow_issue_kept_clear(out);
    return rc;
}

#define RECHECK_MAX 100 /* identifiers in one order, as issue allows */

struct order_run {
    const struct flow_order_req *req;
    const struct flow_log *log;
    struct flow_order_result *out;
};

/* acme_issue's before_finalize: recheck CAA for reused authorizations whose
 * validation is older than the CA's window (spec §10), judged with the type
 * that validated them. */
static enum cp_code recheck(void *ctx, const struct acme_reused_authz *reused, size_t n,
                            struct cp_err *err)
{
    const struct order_run *run = ctx;
    const struct flow_caa *caa = run->req->caa;
    const char *names[RECHECK_MAX], *types[RECHECK_MAX];
    size_t k = 0;
    long long now = (long long)time(NULL);

    if (caa == NULL || !caa->enabled || caa->nidentities == 0)
        return CP_OK;
    for (size_t i = 0; i < n && k < RECHECK_MAX; i++) {
        if (!caa_recheck_due(reused[i].validated, now))
            continue;
        names[k] = reused[i].ident;
        types[k++] = flow_method_index(reused[i].type) >= 0 ? reused[i].type : NULL;
    }
    flow_say(run->log, FLOW_DEBUG,
             "CAA recheck before finalize: %zu of %zu reused authorizations validated more "
             "than %d hours ago",
             k, n, CAA_REUSE_WINDOW_S / 3600);
    if (k == 0)
        return CP_OK;
    struct flow_preflight pf = {.names = names,
                                .n = k,
                                .methods = run->req->methods,
                                .nmethods = run->req->nmethods,
                                .judge_as = types,
                                .identities = caa->identities,
                                .nidentities = caa->nidentities,
                                .account_uri = caa->account_url,
                                .ropts = caa->ropts};
    enum cp_code rc = flow_preflight_run(&pf, err);
    if (rc == CP_OK && caa->verdict != NULL)
        run->out->stopped = caa->verdict(caa->verdict_ctx, &pf, "recheck");
    /* `names` and `types` live on this stack frame only. */
    flow_preflight_clear(&pf);
    if (rc == CP_OK && run->out->stopped != 0)
        rc = cp_err_set(err, CP_ECA, "stopped before finalize by the CAA recheck");
    return rc;
}

enum cp_code flow_issue_order(struct acme_client *c, struct cp_store *st,
                              const struct flow_order_req *req, const struct flow_log *log,
                              struct flow_order_result *out, struct cp_err *err)
{
    struct order_run run = {req, log, out};
    memset(out, 0, sizeof *out);
    struct acme_issue_req ir = {
        .names = req->names,
        .n = req->n,
        .methods = req->methods,
        .nmethods = req->nmethods,
        .cert_key = req->cert_key,
        .preferred_chain = req->preferred_chain,
        .replaces = req->replaces,
        .solver = flow_solver_acme(req->solver),
        .before_finalize = recheck,
        .before_finalize_ctx = &run,
    };
    enum cp_code rc = acme_issue(c, &ir, &out->order, err);
    out->issued = rc == CP_OK;
    if (rc == CP_OK)
        rc = flow_issue_keep(st, req->cert_name, req->cert_key, &out->order, req->names, req->n,
                             req->save, req->keep_versions, log, &out->kept, err);
    return rc;
}

void flow_order_result_clear(struct flow_order_result *r)
{
    acme_issue_result_clear(&r->order);
    flow_issue_kept_clear(&r->kept);
    r->stopped = 0;
    r->issued = false;
}
