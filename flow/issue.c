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
