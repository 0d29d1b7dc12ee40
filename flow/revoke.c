/*
 * flow/revoke.c - revoking a certificate (RFC 8555 §7.6) and what it means
 * for its lineage: the revocation mark in the lineage's status that renew
 * and issue read, and the removal of a lineage (see flow/flow.h, "revoke and
 * delete").
 *
 * A lineage's certificate is revoked in the name of the account of the CA
 * its settings name; the account itself is the caller's (it connects the
 * client and sets the account on it).  Nothing here prints: what was done
 * comes back in a result, what failed in a cp_err.
 */
#include "flow/flow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/civil.h"

#include "common/conf.h"

/* ------------------------------------------------------------- helpers */

/* A store error as the caller maps it: the few codes that mean something
 * apart, anything else a local I/O failure. */
static enum cp_code store_code(enum cp_code rc)
{
    switch (rc) {
    case CP_EUNSAFE:
    case CP_ETIMEOUT:
    case CP_ENOMEM: return rc;
    default: return CP_EIO;
    }
}

/* The settings of a lineage that matter here. */
struct settings {
    size_t n;             /* settings read */
    char server[4096];    /* the last "server" ... */
    char ca_bundle[4096]; /* ... and "ca-bundle" */
    bool has_server, has_ca_bundle;
    json_t *names;    /* every "domain" and "ip-address", in order */
    char label[4096]; /* what messages call the file */
};

static enum cp_code take_setting(void *ctx, const char *key, const char *value, unsigned line,
                                 struct cp_err *err)
{
    struct settings *s = ctx;
    (void)line;
    s->n++;
    if (strcmp(key, "server") == 0) {
        snprintf(s->server, sizeof s->server, "%s", value);
        s->has_server = true;
    } else if (strcmp(key, "ca-bundle") == 0) {
        snprintf(s->ca_bundle, sizeof s->ca_bundle, "%s", value);
        s->has_ca_bundle = true;
    } else if ((strcmp(key, "domain") == 0 || strcmp(key, "ip-address") == 0) &&
               json_array_append_new(s->names, json_string(value)) != 0) {
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    }
    return CP_OK;
}

/* Read the lineage's settings into `s` (clear its names after). */
static enum cp_code read_settings(struct cp_store *st, const char *name, struct settings *s,
                                  struct cp_err *err)
{
    char *text = NULL;
    size_t len = 0;
    memset(s, 0, sizeof *s);
    s->names = json_array();
    if (s->names == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    enum cp_code rc = store_settings_load(st, name, &text, &len, s->label, sizeof s->label, err);
    if (rc == CP_OK && text != NULL)
        rc = cp_conf_scan(s->label, text, len, take_setting, s, err);
    free(text);
    return rc;
}

json_t *flow_lineage_names(struct cp_store *st, const char *name)
{
    struct settings s;
    if (read_settings(st, name, &s, NULL) == CP_OK)
        return s.names;
    json_decref(s.names);
    return json_array();
}

/* The "no such lineage" refusal both commands share. */
static enum cp_code no_lineage(struct cp_store *st, const char *name, struct cp_err *err)
{
    return cp_err_set(err, CP_EINVAL,
                      "there is no certificate named \"%s\" in %s/certs; 'certpilot list' shows "
                      "the names",
                      name, store_where(st));
}

/* ------------------------------------------------------ revocation mark */

enum cp_code flow_lineage_serial(struct cp_store *st, const char *cert_name, char *out, size_t size,
                                 struct cp_err *err)
{
    char *pem = NULL;
    size_t len = 0;
    struct acme_chain *chain = NULL;
    enum cp_code rc = store_current_cert(st, cert_name, &pem, &len, err);
    if (rc == CP_OK && pem == NULL)
        rc = cp_err_set(err, CP_EINVAL, "%s has no certificate", cert_name);
    if (rc == CP_OK)
        rc = acme_chain_parse(pem, len, cert_name, &chain, err);
    if (rc == CP_OK)
        rc = acme_chain_serial_hex(chain, out, size, err);
    acme_chain_free(chain);
    free(pem);
    return rc;
}

bool flow_lineage_revoked(struct cp_store *st, const char *cert_name, const json_t *status,
                          char *note, size_t size)
{
    const json_t *mark = json_object_get(status, "revoked");
    const char *serial = json_string_value(json_object_get(mark, "serial"));
    char current[128], at[32];
    if (serial == NULL ||
        (!flow_lineage_cached_serial(st, cert_name, status, current, sizeof current) &&
         flow_lineage_serial(st, cert_name, current, sizeof current, NULL) != CP_OK) ||
        strcmp(serial, current) != 0)
        return false; /* no mark, or about a certificate the lineage no longer holds */
    const json_t *t = json_object_get(mark, "at");
    const char *reason = json_string_value(json_object_get(mark, "reason"));
    cp_time_str(json_is_integer(t) ? (long long)json_integer_value(t) : 0, at);
    if (note != NULL && size > 0)
        snprintf(note, size, "revoked %s (%s%s, serial %s)", at,
                 reason ? "reason " : "no reason given", reason ? reason : "", serial);
    return true;
}

enum cp_code flow_lineage_mark_revoked(struct cp_store *st, const char *cert_name,
                                       const char *serial, int reason_code, bool already,
                                       long long now, struct cp_err *err)
{
    struct cp_err save = {0};
    json_t *status = store_status_load(st, cert_name);
    /* Revoked before: with whatever reason was given then, unknown here. */
    const char *reason = already ? NULL : acme_revoke_reason_name(reason_code);
    json_t *mark =
        json_pack("{s:I, s:s?, s:o, s:s, s:s, s:b}", "at", (json_int_t)now, "reason", reason,
                  "reason_code", reason ? json_integer(reason_code) : json_null(), "serial", serial,
                  "signed_with", "account", "already_revoked", already);
    enum cp_code rc = CP_OK;
    if (status == NULL || mark == NULL || json_object_set_new(status, "revoked", mark) != 0)
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
    else if (store_status_save(st, cert_name, status, &save) != CP_OK)
        rc = cp_err_set(err, CP_EIO,
                        "the certificate is revoked, but %s: renew may still renew it; delete "
                        "the lineage or fix the file",
                        save.msg);
    json_decref(status);
    return rc;
}

/* ---------------------------------------------------------------- revoke */

enum cp_code flow_revoke_plan_ca(struct cp_store *st, const struct flow_revoke_req *req,
                                 struct flow_revoke_plan *plan, struct cp_err *err)
{
    struct settings s;
    struct cp_err serr = {0};
    if (req->cert_name == NULL)
        return CP_OK; /* a certificate given: its CA is the caller's */
    if (!store_lineage_exists(st, req->cert_name))
        return no_lineage(st, req->cert_name, err);
    enum cp_code rc = store_lineage_check(st, req->cert_name, err);
    if (rc == CP_OK)
        rc = store_lineage_dir(st, req->cert_name, plan->live, sizeof plan->live, err);
    if (rc != CP_OK) {
        if (err != NULL)
            err->code = store_code(rc);
        return store_code(rc);
    }
    rc = read_settings(st, req->cert_name, &s, &serr);
    if (rc == CP_OK && s.n == 0)
        rc = cp_err_set(&serr, CP_EIO, "%s has no settings", req->cert_name);
    if (rc != CP_OK)
        rc = cp_err_set(err, CP_ESETUP,
                        "%s; without them the lineage's CA is unknown: revoke with --cert-path "
                        "%s/cert.pem --server URL",
                        serr.msg, plan->live);
    else if (!s.has_server)
        rc = cp_err_set(err, CP_ESETUP,
                        "%s names no server; add \"server = URL\" (the CA that issued the "
                        "certificate)",
                        s.label);
    if (rc == CP_OK) {
        snprintf(plan->server, sizeof plan->server, "%s", s.server);
        snprintf(plan->ca_bundle, sizeof plan->ca_bundle, "%s", s.ca_bundle);
        plan->has_ca_bundle = s.has_ca_bundle;
    }
    json_decref(s.names);
    return rc;
}

enum cp_code flow_revoke_plan_cert(struct cp_store *st, const struct flow_revoke_req *req,
                                   struct flow_revoke_plan *plan, struct cp_err *err)
{
    const struct acme_chain *chain = req->chain;
    if (req->cert_name != NULL) {
        char *pem = NULL, what[4500];
        size_t len = 0;
        snprintf(what, sizeof what, "%s/cert.pem", plan->live);
        enum cp_code rc = store_current_cert(st, req->cert_name, &pem, &len, err);
        if (rc != CP_OK) {
            if (err != NULL)
                err->code = store_code(rc);
            return store_code(rc);
        }
        if (pem == NULL)
            return cp_err_set(err, CP_EINVAL,
                              "%s has no certificate (%s is missing): nothing to revoke",
                              req->cert_name, what);
        rc = acme_chain_parse(pem, len, what, &plan->chain, err);
        free(pem);
        if (rc != CP_OK) {
            if (err != NULL)
                err->code = CP_EINVAL;
            return CP_EINVAL;
        }
        chain = plan->chain;
    }
    if (chain == NULL)
        return cp_err_set(err, CP_EINVAL, "no certificate to revoke");
    if (acme_chain_serial_hex(chain, plan->serial, sizeof plan->serial, err) != CP_OK) {
        if (err != NULL)
            err->code = CP_EINVAL;
        return CP_EINVAL;
    }
    return CP_OK;
}

void flow_revoke_plan_clear(struct flow_revoke_plan *plan)
{
    acme_chain_free(plan->chain);
    plan->chain = NULL;
}

/* delete_after: what goes (kept for the caller to show), then away with it. */
static enum cp_code remove_lineage(struct cp_store *st, const char *name,
                                   struct flow_revoke_result *res, struct cp_err *err)
{
    struct cp_err rerr = {0};
    enum cp_code rc = store_lineage_contents(st, name, &res->listed, &rerr);
    if (rc == CP_OK) {
        res->delete_tried = true;
        rc = store_lineage_remove(st, name, &res->removed, &rerr);
    }
    if (rc != CP_OK)
        return cp_err_set(err, rc == CP_EUNSAFE ? CP_EUNSAFE : CP_EIO,
                          "the certificate is revoked, but deleting the lineage failed: %s",
                          rerr.msg);
    res->deleted = true;
    return CP_OK;
}

enum cp_code flow_revoke_run(struct cp_store *st, struct acme_client *client,
                             const struct flow_revoke_req *req, const struct flow_revoke_plan *plan,
                             const struct acme_key *cert_key, long long now,
                             struct flow_revoke_result *res, struct cp_err *err)
{
    const struct acme_chain *chain = req->cert_name ? plan->chain : req->chain;
    if (cert_key == NULL && acme_client_kid(client) != NULL) {
        res->account_url = strdup(acme_client_kid(client));
        if (res->account_url == NULL) {
            res->failed = FLOW_REVOKE_SEND;
            return cp_err_set(err, CP_ENOMEM, "out of memory");
        }
    }
    enum cp_code rc = acme_revoke_cert(client, chain, req->reason, cert_key, &res->prob, err);
    res->revoked = rc == CP_OK;
    res->already = rc == CP_ECA && acme_problem_is(&res->prob, "alreadyRevoked");
    if (rc != CP_OK)
        res->failed = FLOW_REVOKE_SEND;
    if (req->cert_name == NULL || !(res->revoked || res->already))
        return rc;

    /* Revoked now or before: renew must leave the lineage alone. */
    json_t *status = store_status_load(st, req->cert_name);
    bool marked = flow_lineage_revoked(st, req->cert_name, status, NULL, 0);
    json_decref(status);
    if (!(marked && res->already)) {
        struct cp_err merr = {0};
        enum cp_code mrc = flow_lineage_mark_revoked(st, req->cert_name, plan->serial, req->reason,
                                                     res->already, now, &merr);
        if (mrc == CP_OK) {
            marked = true;
        } else if (rc == CP_OK) {
            res->failed = FLOW_REVOKE_MARK;
            if (err != NULL)
                *err = merr;
            rc = mrc;
        } else {
            res->mark_err = merr;
        }
    }
    res->marked = marked;
    if (rc == CP_OK && req->delete_after) {
        rc = remove_lineage(st, req->cert_name, res, err);
        if (rc != CP_OK)
            res->failed = FLOW_REVOKE_DELETE;
    }
    return rc;
}

void flow_revoke_result_clear(struct flow_revoke_result *res)
{
    free(res->account_url);
    res->account_url = NULL;
    store_contents_clear(&res->listed);
    acme_problem_clear(&res->prob);
}

/* ---------------------------------------------------------------- delete */

enum cp_code flow_delete_plan(struct cp_store *st, const char *cert_name,
                              struct flow_delete_plan *plan, struct cp_err *err)
{
    struct settings s;
    struct cp_err serr = {0};
    if (!store_lineage_exists(st, cert_name))
        return no_lineage(st, cert_name, err);
    enum cp_code rc = store_lineage_contents(st, cert_name, &plan->list, &serr);
    if (rc == CP_OK)
        rc = store_lineage_dir(st, cert_name, plan->live, sizeof plan->live, &serr);
    if (rc != CP_OK)
        return cp_err_set(err, rc == CP_EUNSAFE ? CP_EUNSAFE : CP_EIO, "%s; nothing was deleted",
                          serr.msg);
    /* The names as its settings list them, also when other settings are unusable. */
    if (read_settings(st, cert_name, &s, &serr) == CP_OK) {
        plan->names = s.names;
    } else {
        json_decref(s.names);
        plan->names = json_array();
    }
    if (plan->names == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    json_t *status = store_status_load(st, cert_name);
    (void)flow_lineage_revoked(st, cert_name, status, plan->revoked, sizeof plan->revoked);
    json_decref(status);
    return CP_OK;
}

void flow_delete_plan_clear(struct flow_delete_plan *plan)
{
    store_contents_clear(&plan->list);
    json_decref(plan->names);
    plan->names = NULL;
}

enum cp_code flow_delete_run(struct cp_store *st, const char *cert_name, size_t *removed,
                             struct cp_err *err)
{
    return store_lineage_remove(st, cert_name, removed, err);
}
