/*
 * flow/issue.c - the steps of obtaining a certificate that surround the order
 * itself (acme_issue): the certificate's key, and checking and keeping what
 * the CA issued.
 */
#include "flow/flow.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/civil.h"
#include "common/file.h"

#include "hooks/hooks.h"

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
    if (rc == CP_OK && save)
        flow_say(log, FLOW_PROGRESS, "certificate stored in %s", out->live_dir);
    if (rc == CP_OK) {
        cp_time_str((long long)acme_chain_not_after(chain), out->not_after);
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

#define IDENTS_MAX 100 /* identifiers in one order, as issue allows */

struct order_run {
    const struct flow_order_req *req;
    const struct flow_log *log;
    struct flow_order_result *out;
};

/* On a shared store, is the lineage lock gone?  Then another host may be
 * renewing the lineage already: this order must not finalize nor store. */
static enum cp_code lock_check(struct order_run *run, const char *when, struct cp_err *err)
{
    if (run->req->lock == NULL || store_lineage_lock_held(run->req->lock))
        return CP_OK;
    run->out->lock_lost = true;
    return cp_err_set(err, CP_ETIMEOUT,
                      "the lock of \"%s\" was lost %s (its lease ran out: the store was "
                      "unreachable, or this host too slow); nothing was stored, another host "
                      "may renew it",
                      run->req->cert_name, when);
}

/* acme_issue's before_finalize: the lineage lock still held, and CAA
 * rechecked for reused authorizations whose validation is older than the
 * CA's window (spec §10), judged with the type that validated them. */
static enum cp_code recheck(void *ctx, const struct acme_reused_authz *reused, size_t n,
                            struct cp_err *err)
{
    struct order_run *run = ctx;
    const struct flow_caa *caa = run->req->caa;
    const char *names[IDENTS_MAX], *types[IDENTS_MAX];
    size_t k = 0;
    long long now = (long long)time(NULL);

    enum cp_code lrc = lock_check(run, "before finalize", err);
    if (lrc != CP_OK || n == 0)
        return lrc;
    if (caa == NULL || caa->mode == FLOW_CAA_OFF || caa->nidentities == 0)
        return CP_OK;
    for (size_t i = 0; i < n && k < IDENTS_MAX; i++) {
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
    if (rc == CP_OK) {
        run->out->stopped = flow_caa_stops(caa, &pf);
        run->out->stopped_by_dns = flow_preflight_outcome(&pf) == CAA_ERROR;
        if (caa->report != NULL)
            caa->report(caa->report_ctx, &pf, "recheck", run->out->stopped);
    }
    /* `names` and `types` live on this stack frame only. */
    flow_preflight_clear(&pf);
    if (rc == CP_OK && run->out->stopped)
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
        .profile = req->profile,
        .solver = flow_solver_acme(req->solver),
        .before_finalize = recheck,
        .before_finalize_ctx = &run,
    };
    enum cp_code rc = acme_issue(c, &ir, &out->order, err);
    out->issued = rc == CP_OK;
    if (rc == CP_OK && req->save)
        rc = lock_check(&run, "before the certificate was stored", err);
    if (rc == CP_OK)
        rc = flow_issue_keep(st, req->cert_name, req->cert_key, &out->order, req->names, req->n,
                             req->save, req->keep_versions, log, &out->kept, err);
    /* The store refuses a guarded write once the lease is gone. */
    if (rc != CP_OK && !out->lock_lost && out->issued && req->save) {
        struct cp_err lerr = {0};
        if (lock_check(&run, "while the certificate was stored", &lerr) != CP_OK)
            *err = lerr;
    }
    return rc;
}

void flow_order_result_clear(struct flow_order_result *r)
{
    acme_issue_result_clear(&r->order);
    flow_issue_kept_clear(&r->kept);
    r->stopped = r->stopped_by_dns = r->lock_lost = false;
    r->issued = false;
}

bool flow_caa_stops(const struct flow_caa *caa, const struct flow_preflight *pf)
{
    return caa->mode == FLOW_CAA_ENFORCE && flow_preflight_outcome(pf) != CAA_ALLOWED;
}

void flow_issue_result_clear(struct flow_issue_result *r)
{
    flow_preflight_clear(&r->pf);
    flow_order_result_clear(&r->ordered);
    flow_solver_free(r->solver);
    flow_webcheck_result_free(r->web);
    acme_client_free(r->client);
    acme_problem_clear(&r->problem);
    flow_persist_report_free(r->persist);
    r->persist = NULL;
    free(r->account_url);
    r->solver = NULL;
    r->web = NULL;
    r->client = NULL;
    r->account_url = NULL;
}

static bool preflight_allows(void *ctx, const char *type, const char *ident)
{
    return flow_preflight_allows(ctx, type, ident);
}

/* The step a run failed at; returns `rc`. */
static enum cp_code failed(struct flow_issue_result *out, enum flow_issue_step step,
                           enum cp_code rc)
{
    out->outcome = FLOW_FAILED;
    out->step = step;
    return rc;
}

/* A dehydrated hook is told why the order failed (real runs only). */
static void tell_hook(const struct flow_issue_req *req, const struct flow_log *log, enum cp_code rc,
                      const struct acme_issue_result *res)
{
    if (req->hook == NULL || req->dry != FLOW_REAL)
        return;
    if (rc == CP_ECHALLENGE && res->failed_identifier != NULL) {
        const char *args[] = {res->failed_identifier,
                              res->problem.detail ? res->problem.detail : ""};
        flow_hook_event(log, req->hook, "invalid_challenge", args, 2);
    } else if (rc == CP_ECA) {
        char code[16];
        snprintf(code, sizeof code, "%d", res->problem.status);
        const char *args[] = {code, res->problem.detail ? res->problem.detail : "",
                              res->problem.type ? res->problem.type : "", ""};
        flow_hook_event(log, req->hook, "request_failure", args, 4);
    }
}

enum cp_code flow_issue_run(struct cp_store *st, const struct flow_issue_req *req,
                            const struct flow_log *log, struct flow_issue_result *out,
                            struct cp_err *err)
{
    struct acme_key *cert_key = NULL, *account_key = NULL;
    struct flow_account account;
    bool account_open = false;
    enum cp_code rc;

    memset(out, 0, sizeof *out);
    /* Built-in servers first: a port in use fails before anything is asked. */
    rc = flow_solver_new(req->solve, log, &out->solver, err);
    if (rc != CP_OK)
        return failed(out, FLOW_STEP_SOLVER, rc);
    /* The preflight narrows the types per name (empty until it runs: none). */
    flow_solver_filter(out->solver, preflight_allows, &out->pf);
    if (req->dry != FLOW_DRY_CHECK) {
        rc = flow_solver_start(out->solver, req->methods, req->nmethods, err);
        if (rc != CP_OK)
            return failed(out, FLOW_STEP_SOLVER, rc);
        rc = flow_issue_key(st, req->cert_name, req->reuse_key, req->key_type, &cert_key, err);
        if (rc != CP_OK)
            return failed(out, FLOW_STEP_KEY, rc);
    }
    /* Each webroot served at its names, before anything is sent to the CA
     * (the types are judged by preference: CAA has not been read yet). */
    if (req->webcheck != NULL) {
        rc = flow_webcheck_run(req->webcheck, req->solve, req->names, req->n, req->methods,
                               req->nmethods, log, &out->web, err);
        if (rc != CP_OK) {
            rc = failed(out, FLOW_STEP_WEBROOT, rc);
            goto out;
        }
    }
    flow_say(log, FLOW_PROGRESS, "connecting to %s", req->ca->directory_url);
    rc = acme_client_new(req->ca, &out->client, &out->problem, err);
    if (rc != CP_OK) {
        rc = failed(out, FLOW_STEP_CONNECT, rc);
        goto out;
    }
    const struct acme_directory *d = acme_client_directory(out->client);
    if (req->ca_identity != NULL) {
        out->identities = &req->ca_identity;
        out->nidentities = 1;
    } else {
        out->identities = (const char *const *)d->caa_identities;
        out->nidentities = d->ncaa_identities;
    }
    /* The profile is decided from the directory alone: a required one that
     * is not offered stops the run before the account is even looked up. */
    if (req->profile != NULL) {
        rc = acme_profile_choose(d, req->profile, req->profile_mode, &out->profile, err);
        if (rc != CP_OK) {
            rc = failed(out, FLOW_STEP_PROFILE, rc);
            goto out;
        }
        if (out->profile == NULL)
            flow_say(log, FLOW_NOTICE,
                     "note: %s does not offer the profile \"%s\" (--preferred-profile); "
                     "ordering without one, the CA's default applies",
                     req->ca->directory_url, req->profile);
        else
            flow_say(log, FLOW_PROGRESS, "profile: %s", out->profile);
    }

    /* The account first, so that accounturi= records are judged against the
     * URL that will place the order. */
    struct flow_account_use_req use = {
        .reg = req->reg,
        .key_type = ACME_KEY_EC256,
        .flags = req->dry == FLOW_DRY_CHECK   ? FLOW_ACCOUNT_NO_WRITE | FLOW_ACCOUNT_LOOKUP_ONLY
                 : req->dry == FLOW_DRY_ORDER ? FLOW_ACCOUNT_NO_WRITE
                                              : 0};
    rc = flow_account_open(st, req->ca->directory_url, &account, err);
    if (rc != CP_OK) {
        rc = failed(out, FLOW_STEP_STORE, rc);
        goto out;
    }
    account_open = true;
    rc = flow_account_use(&account, out->client, &use, log, &out->problem, err);
    if (rc == CP_OK)
        rc = flow_account_release(&account, out->client, &account_key, &out->account_url, err);
    if (rc != CP_OK) {
        rc = failed(out, FLOW_STEP_ACCOUNT, rc);
        goto out;
    }
    flow_say(log, FLOW_PROGRESS, "account: %s",
             out->account_url ? out->account_url : "none yet (a real run registers one)");

    struct flow_caa caa = {.mode = req->caa_mode,
                           .identities = out->identities,
                           .nidentities = out->nidentities,
                           .account_url = out->account_url,
                           .ropts = req->ropts,
                           .report = req->caa_report,
                           .report_ctx = req->caa_report_ctx};
    if (req->caa_mode != FLOW_CAA_OFF && out->nidentities == 0)
        flow_say(log, FLOW_WARNING,
                 "warning: the CAA preflight cannot run: %s publishes no caaIdentities in its "
                 "directory; pass --ca-identity DOMAIN (the issuer domain the CA looks for, "
                 "e.g. letsencrypt.org) to enable it",
                 req->ca->directory_url);
    if (req->caa_mode != FLOW_CAA_OFF && out->nidentities > 0) {
        out->pf = (struct flow_preflight){.names = req->names,
                                          .n = req->n,
                                          .methods = req->methods,
                                          .nmethods = req->nmethods,
                                          .identities = out->identities,
                                          .nidentities = out->nidentities,
                                          .account_uri = out->account_url,
                                          .ropts = req->ropts};
        rc = flow_preflight_run(&out->pf, err);
        if (rc != CP_OK) {
            rc = failed(out, FLOW_STEP_PREFLIGHT, rc);
            goto out;
        }
        flow_say(log, FLOW_DEBUG, "CAA preflight: %zu identifiers, %zu DNS queries, %.1f ms",
                 req->n, caa_report_queries(out->pf.report), out->pf.elapsed_ms);
        bool stops = flow_caa_stops(&caa, &out->pf);
        enum caa_status pfo = flow_preflight_outcome(&out->pf);
        flow_say(log, FLOW_PROGRESS, "CAA preflight: %s",
                 out->pf.ndns == 0    ? "nothing to check (CAA does not apply to IP addresses)"
                 : pfo == CAA_ALLOWED ? "every name allowed"
                 : pfo == CAA_DENIED  ? "refused"
                                      : "DNS look-ups failed");
        if (req->caa_report != NULL)
            req->caa_report(req->caa_report_ctx, &out->pf, "preflight", stops);
        if (stops) {
            out->outcome = flow_preflight_outcome(&out->pf) == CAA_DENIED ? FLOW_CAA_REFUSED
                                                                          : FLOW_CAA_DNS_ERROR;
            out->stage = "preflight";
            goto out;
        }
    }
    rc = flow_persist_before_order(req, out, log, err);
    if (rc != CP_OK) {
        rc = failed(out, FLOW_STEP_PERSIST, rc);
        goto out;
    }
    if (req->dry == FLOW_DRY_CHECK) {
        out->outcome = FLOW_DRY_CHECKED;
        goto out;
    }

    struct flow_order_req order = {.cert_name = req->cert_name,
                                   .names = req->names,
                                   .n = req->n,
                                   .methods = req->methods,
                                   .nmethods = req->nmethods,
                                   .cert_key = cert_key,
                                   .preferred_chain = req->preferred_chain,
                                   .replaces = req->replaces,
                                   .save = req->dry == FLOW_REAL,
                                   .keep_versions = req->keep_versions,
                                   .solver = out->solver,
                                   .caa = &caa,
                                   .profile = out->profile,
                                   .lock = req->lock};
    rc = flow_issue_order(out->client, st, &order, log, &out->ordered, err);
    if (rc != CP_OK && out->ordered.lock_lost) {
        rc = failed(out, FLOW_STEP_LOCK, rc);
    } else if (rc != CP_OK && out->ordered.stopped) {
        out->outcome = out->ordered.stopped_by_dns ? FLOW_CAA_DNS_ERROR : FLOW_CAA_REFUSED;
        out->stage = "recheck";
        rc = CP_OK;
    } else if (rc != CP_OK && out->ordered.issued) {
        rc = failed(out, FLOW_STEP_KEEP, rc);
    } else if (rc != CP_OK) {
        tell_hook(req, log, rc, &out->ordered.order);
        rc = failed(out, FLOW_STEP_ORDER, rc);
    } else {
        out->outcome = FLOW_ISSUED;
    }
out:
    if (account_open)
        flow_account_close(&account);
    acme_key_free(account_key);
    acme_key_free(cert_key);
    return rc;
}

bool flow_issue_deploy(const struct flow_log *log, const char *deploy_hook, const char *hooks_dir,
                       const char *hook, const char *const *names, size_t n, const char *live_dir)
{
    bool ok = true;
    if (deploy_hook != NULL || hooks_dir != NULL) {
        char lineage[4500], domains[IDENTS_MAX * (CAA_IDENT_MAX + 1) + 32];
        size_t len = (size_t)snprintf(domains, sizeof domains, "RENEWED_DOMAINS=");
        for (size_t i = 0; i < n && len < sizeof domains; i++)
            len += (size_t)snprintf(domains + len, sizeof domains - len, "%s%s", i ? " " : "",
                                    names[i]);
        snprintf(lineage, sizeof lineage, "RENEWED_LINEAGE=%s", live_dir);
        const char *env[] = {lineage, domains, NULL};
        if (deploy_hook != NULL)
            ok = flow_hook_command(log, "deploy-hook", deploy_hook, env);
        ok = flow_hook_dir(log, hooks_dir, FLOW_HOOK_DEPLOY, env) && ok;
    }
    if (hook != NULL && n > 0) {
        /* dehydrated: deploy_cert DOMAIN KEYFILE CERTFILE FULLCHAINFILE CHAINFILE TIMESTAMP */
        char files[4][4500], stamp[24];
        static const char *const file[] = {"privkey.pem", "cert.pem", "fullchain.pem", "chain.pem"};
        for (size_t i = 0; i < 4; i++)
            snprintf(files[i], sizeof files[i], "%s/%s", live_dir, file[i]);
        snprintf(stamp, sizeof stamp, "%lld", (long long)time(NULL));
        const char *args[] = {names[0], files[0], files[1], files[2], files[3], stamp};
        ok = flow_hook_event(log, hook, "deploy_cert", args, 6) && ok;
    }
    return ok;
}

#define INSTALL_FILE_MAX (1024 * 1024) /* a key or a certificate chain */

enum cp_code flow_issue_install(const char *live_dir, const char *install_dir, struct cp_err *err)
{
    static const char *const files[] = {"privkey.pem", "cert.pem", "chain.pem", "fullchain.pem"};
    enum cp_code rc = cp_dir_ensure(install_dir, 0755, err);
    for (size_t i = 0; rc == CP_OK && i < sizeof files / sizeof files[0]; i++) {
        char src[4500], dst[4500];
        char *text = NULL;
        size_t len = 0;
        if ((size_t)snprintf(src, sizeof src, "%s/%s", live_dir, files[i]) >= sizeof src ||
            (size_t)snprintf(dst, sizeof dst, "%s/%s", install_dir, files[i]) >= sizeof dst)
            return cp_err_set(err, CP_EINVAL, "%s: path too long", install_dir);
        rc = cp_file_read(src, INSTALL_FILE_MAX, &text, &len, err);
        if (rc == CP_OK)
            rc = cp_file_write_atomic(dst, text, len, i == 0 ? 0600 : 0644, err);
        if (text != NULL)
            OPENSSL_cleanse(text, len);
        free(text);
    }
    return rc;
}
