/*
 * flow/persist.c - the dns-persist-01 preflight: is the standing record
 * (draft-ietf-acme-dns-persist §4) served by every authoritative server of
 * the validation name, and does each one's record authorize this account
 * with this CA?  The look-ups and the judging are caa/'s
 * (caa_zone_servers, caa_persist_servers); this file runs them per name and
 * words the outcome.  It never publishes anything: the record is the
 * operator's (certpilot persist-record prints it).
 */
#include "flow/flow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static enum cp_code check_one(const char *ident, const struct caa_resolver_opts *ropts,
                              unsigned port, const struct caa_persist_check *chk,
                              struct flow_persist_name *p, struct cp_err *err)
{
    struct cp_err zerr = {0};
    const char *base = strncmp(ident, "*.", 2) == 0 ? ident + 2 : ident;

    snprintf(p->ident, sizeof p->ident, "%s", ident);
    int len = snprintf(p->qname, sizeof p->qname, "_validation-persist.%s", base);
    if (len < 0 || (size_t)len >= sizeof p->qname)
        return cp_err_set(err, CP_EINVAL, "_validation-persist.%s is longer than %d octets", base,
                          CAA_NAME_MAX);
    enum cp_code rc = caa_zone_servers(ropts, p->qname, p->zone, p->target, &p->ns, &p->nns, &zerr);
    if (rc == CP_ENET || rc == CP_EPROTO) {
        p->zone[0] = '\0';
        snprintf(p->error, sizeof p->error, "%s", zerr.msg);
        return CP_OK;
    }
    if (rc != CP_OK) {
        *err = zerr;
        return rc;
    }
    p->servers = calloc(p->nns ? p->nns : 1, sizeof *p->servers);
    if (p->servers == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    return caa_persist_servers(p->ns, p->nns, port, p->target, ident, chk, p->servers,
                               &p->nauthorizing, err);
}

enum cp_code flow_persist_check(const char *const *idents, size_t n,
                                const struct caa_resolver_opts *ropts, unsigned port,
                                const struct caa_persist_check *chk,
                                struct flow_persist_report **out, struct cp_err *err)
{
    struct flow_persist_report *r = calloc(1, sizeof *r);
    *out = NULL;
    if (r == NULL || (r->names = calloc(n ? n : 1, sizeof *r->names)) == NULL) {
        free(r);
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    }
    enum cp_code rc = CP_OK;
    for (size_t i = 0; rc == CP_OK && i < n; i++) {
        rc = check_one(idents[i], ropts, port, chk, &r->names[i], err);
        r->n = i + 1;
        if (rc == CP_OK && !flow_persist_name_ok(&r->names[i]))
            r->failed++;
    }
    if (rc != CP_OK) {
        flow_persist_report_free(r);
        return rc;
    }
    *out = r;
    return CP_OK;
}

void flow_persist_report_free(struct flow_persist_report *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->names[i].ns);
        free(r->names[i].servers);
    }
    free(r->names);
    free(r);
}

bool flow_persist_name_ok(const struct flow_persist_name *p)
{
    return p->error[0] == '\0' && p->nns > 0 && p->nauthorizing == p->nns;
}

const char *flow_persist_server_says(const struct flow_persist_name *p, size_t k)
{
    const struct caa_persist_server *s = &p->servers[k];
    if (!s->answered)
        return s->problem[0] ? s->problem : "no answer";
    return s->verdict.authorized ? "authorizes" : s->verdict.reason;
}

void flow_persist_summary(const struct flow_persist_name *p, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    if (p->error[0] != '\0') {
        snprintf(buf, size, "%s: the nameservers of %s could not be found: %s", p->ident, p->qname,
                 p->error);
        return;
    }
    if (flow_persist_name_ok(p)) {
        snprintf(buf, size, "%s: all %zu nameserver%s of %s serve a record that authorizes",
                 p->ident, p->nns, p->nns == 1 ? "" : "s", p->zone[0] ? p->zone : ".");
        return;
    }
    int w = snprintf(buf, size, "%s: %zu of %zu nameserver%s of %s do not authorize", p->ident,
                     p->nns - p->nauthorizing, p->nns, p->nns == 1 ? "" : "s",
                     p->zone[0] ? p->zone : ".");
    len = w > 0 ? (size_t)w : 0;
    for (size_t k = 0; k < p->nns && len < size; k++) {
        if (p->servers[k].answered && p->servers[k].verdict.authorized)
            continue;
        w = snprintf(buf + len, size - len, "; %s (%s): %s", p->ns[k].name, p->ns[k].addr,
                     flow_persist_server_says(p, k));
        len += w > 0 ? (size_t)w : 0;
    }
    if (len >= size && size > 4)
        memcpy(buf + size - 4, "...", 4);
}

/* The type identifier `name` will be validated with: the one the CAA
 * preflight chose, else the first configured type that can validate it. */
static const char *planned_type(const struct flow_issue_req *req,
                                const struct flow_issue_result *out, const char *name)
{
    const char *chosen = out->pf.report ? flow_preflight_chosen(&out->pf, name) : NULL;
    for (size_t k = 0; chosen == NULL && k < req->nmethods; k++)
        if (acme_ident_method_check(name, req->methods[k], NULL) == CP_OK)
            chosen = req->methods[k];
    return chosen;
}

enum cp_code flow_persist_before_order(const struct flow_issue_req *req,
                                       struct flow_issue_result *out, const struct flow_log *log,
                                       struct cp_err *err)
{
    const char *names[FLOW_PERSIST_NAMES_MAX];
    size_t n = 0;
    for (size_t i = 0; i < req->n && n < FLOW_PERSIST_NAMES_MAX; i++) {
        const char *t = planned_type(req, out, req->names[i]);
        if (t != NULL && strcmp(t, "dns-persist-01") == 0)
            names[n++] = req->names[i];
    }
    if (n == 0)
        return CP_OK;
    if (out->account_url == NULL)
        return cp_err_set(err, CP_EINVAL,
                          "dns-persist-01 names the account in its record, and there is no "
                          "account yet: register one (certpilot account register), publish "
                          "the record certpilot persist-record prints, then issue");
    /* draft-ietf-acme-dns-persist §3.2: the directory's issuerDomainNames;
     * without them, the CA's CAA identities (or --ca-identity). */
    const struct acme_directory *d = acme_client_directory(out->client);
    struct caa_persist_check chk = {.account_uri = out->account_url, .now = (long long)time(NULL)};
    if (d->nissuer_domain_names > 0) {
        chk.issuers = (const char *const *)d->issuer_domain_names;
        chk.nissuers = d->nissuer_domain_names;
    } else {
        chk.issuers = out->identities;
        chk.nissuers = out->nidentities;
    }
    if (chk.nissuers == 0)
        return cp_err_set(err, CP_EINVAL,
                          "dns-persist-01: %s names no issuer domain (no issuerDomainNames, no "
                          "caaIdentities): pass --ca-identity DOMAIN",
                          req->ca->directory_url);
    flow_say(log, FLOW_PROGRESS, "dns-persist-01: asking every nameserver of %zu name%s", n,
             n == 1 ? "" : "s");
    enum cp_code rc = flow_persist_check(names, n, req->ropts, req->solve->authoritative_port, &chk,
                                         &out->persist, err);
    if (rc != CP_OK)
        return rc;
    char line[CP_ERR_MSG_MAX], first[CP_ERR_MSG_MAX] = "";
    for (size_t i = 0; i < out->persist->n; i++) {
        const struct flow_persist_name *p = &out->persist->names[i];
        bool ok = flow_persist_name_ok(p);
        flow_persist_summary(p, line, sizeof line);
        flow_say(log, ok ? FLOW_INFO : FLOW_ERR, "%s", line);
        if (!ok && first[0] == '\0')
            snprintf(first, sizeof first, "%s", line);
    }
    if (out->persist->failed == 0)
        return CP_OK;
    return cp_err_set(err, CP_ECHALLENGE,
                      "dns-persist-01 would fail: %.400s%s; nothing was sent to the CA "
                      "(certpilot persist-record prints the record to publish)",
                      first, out->persist->failed > 1 ? " (and more, above)" : "");
}
