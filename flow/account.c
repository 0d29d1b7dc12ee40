/*
 * flow/account.c - an account's life at one CA, below the command line:
 * loading it from the store, making it ready to sign with (settling an
 * interrupted rollover, finding its URL, registering a new key), and the
 * changes `certpilot account` makes (register, show, update, rollover,
 * deactivate).  The protocol is acme/account.c, the keeping store/; every
 * change is written through the store as soon as it is made, the CA asked
 * first where the CA decides.
 */
#include "flow/flow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/civil.h"

static void thumbprint_of(const struct acme_key *k, char out[44])
{
    struct cp_err err = {0};
    if (k == NULL || acme_key_thumbprint(k, out, &err) != CP_OK)
        out[0] = '\0';
}

/* ---------------------------------------------------- the account object */

enum cp_code flow_account_open(struct cp_store *st, const char *server, struct flow_account *a,
                               struct cp_err *err)
{
    struct store_account sa;
    memset(a, 0, sizeof *a);
    memset(&sa, 0, sizeof sa);
    a->st = st;
    if (snprintf(a->server, sizeof a->server, "%s", server) >= (int)sizeof a->server)
        return cp_err_set(err, CP_EINVAL, "the directory URL %.100s... is too long", server);
    enum cp_code rc = store_account_load(st, server, &sa, err);
    a->key = sa.key;
    a->pending = sa.pending;
    a->rec = sa.rec;
    snprintf(a->where, sizeof a->where, "%s", sa.where);
    snprintf(a->pending_where, sizeof a->pending_where, "%s", sa.pending_where);
    if (rc != CP_OK)
        flow_account_close(a);
    return rc;
}

void flow_account_close(struct flow_account *a)
{
    acme_key_free(a->key);
    acme_key_free(a->pending);
    json_decref(a->rec);
    a->key = NULL;
    a->pending = NULL;
    a->rec = NULL;
}

const char *flow_account_url(const struct flow_account *a)
{
    const char *u = json_string_value(json_object_get(a->rec, "url"));
    return u != NULL && *u != '\0' ? u : NULL;
}

const char *flow_account_deactivated_at(const struct flow_account *a)
{
    const char *st = json_string_value(json_object_get(a->rec, "status"));
    if (st == NULL || strcmp(st, "deactivated") != 0)
        return NULL;
    const char *at = json_string_value(json_object_get(a->rec, "deactivated_at"));
    return at != NULL ? at : "an unknown date";
}

json_t *flow_account_contacts(const struct flow_account *a)
{
    json_t *out = json_array();
    const json_t *list = json_object_get(a->rec, "contact");
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v)
    {
        if (json_is_string(v) && out != NULL)
            json_array_append(out, (json_t *)v);
    }
    return out;
}

bool flow_account_unsettled(const struct flow_account *a)
{
    return a->pending != NULL || (a->key != NULL && flow_account_url(a) == NULL);
}

/* Set a member of the record (steals `value`); written by record_write(). */
static enum cp_code record_set(struct flow_account *a, const char *key, json_t *value,
                               struct cp_err *err)
{
    if (value == NULL || json_object_set_new(a->rec, key, value) != 0)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    return CP_OK;
}

/* The record, with "directory" = the server and the key's "key_type". */
static enum cp_code record_write(struct flow_account *a, struct cp_err *err)
{
    enum cp_code rc = record_set(a, "directory", json_string(a->server), err);
    if (rc == CP_OK && a->key != NULL)
        rc = record_set(a, "key_type", json_string(acme_key_type_name(acme_key_type_of(a->key))),
                        err);
    if (rc == CP_OK && json_object_get(a->rec, "contact") == NULL)
        rc = record_set(a, "contact", json_array(), err);
    if (rc == CP_OK)
        rc = store_account_save_record(a->st, a->server, a->rec, err);
    return rc;
}

/* On success `key` belongs to `a` (the old key is freed). */
static enum cp_code key_write(struct flow_account *a, struct acme_key *key, struct cp_err *err)
{
    enum cp_code rc = store_account_save_key(a->st, a->server, key, err);
    if (rc == CP_OK) {
        acme_key_free(a->key);
        a->key = key;
    }
    return rc;
}

static enum cp_code pending_write(struct flow_account *a, struct acme_key *key, struct cp_err *err)
{
    enum cp_code rc = store_account_save_pending(a->st, a->server, key, err);
    if (rc == CP_OK) {
        acme_key_free(a->pending);
        a->pending = key;
    }
    return rc;
}

static enum cp_code pending_commit(struct flow_account *a, struct cp_err *err)
{
    if (a->pending == NULL)
        return cp_err_set(err, CP_EINTERNAL, "no pending account key to make current");
    enum cp_code rc = store_account_commit_pending(a->st, a->server, err);
    if (rc == CP_OK) {
        acme_key_free(a->key);
        a->key = a->pending;
        a->pending = NULL;
    }
    return rc;
}

static enum cp_code pending_remove(struct flow_account *a, struct cp_err *err)
{
    enum cp_code rc = store_account_remove_pending(a->st, a->server, err);
    if (rc == CP_OK) {
        acme_key_free(a->pending);
        a->pending = NULL;
    }
    return rc;
}

enum cp_code flow_account_check(const struct flow_account *a, unsigned flags, struct cp_err *err)
{
    const char *at = flow_account_deactivated_at(a);
    if (at == NULL || (flags & FLOW_ACCOUNT_ANY_STATUS))
        return CP_OK;
    const char *url = flow_account_url(a);
    return cp_err_set(err, CP_ESETUP,
                      "the account %s at %s was deactivated on %s and cannot be used any more; "
                      "register a new one with 'certpilot account register --agree-tos "
                      "[--email ADDR]'",
                      url ? url : "(URL unknown)", a->server, at);
}

/* ------------------------------------------------------ using the account */

#define ACCOUNT_LOCK_WAIT_S 120 /* for another host's registration */

static void account_waiting(void *ctx, const char *holder)
{
    flow_say(ctx, FLOW_NOTICE, "another host (%s) is registering the account; waiting for it",
             holder);
}

/* Under the account lock: the account another host registered while this
 * one waited, read again from the store, replaces `a` (*adopted).  A
 * deactivated one (which this registration replaces) or one left halfway
 * (a key without a URL, a rollover to settle) is not taken. */
static enum cp_code adopt_registered(struct flow_account *a, bool *adopted, struct cp_err *err)
{
    struct flow_account now;
    char server[sizeof a->server];
    snprintf(server, sizeof server, "%s", a->server);
    *adopted = false;
    enum cp_code rc = flow_account_open(a->st, server, &now, err);
    if (rc != CP_OK)
        return rc;
    if (now.key != NULL && now.pending == NULL && flow_account_url(&now) != NULL &&
        flow_account_deactivated_at(&now) == NULL) {
        flow_account_close(a);
        *a = now;
        a->adopted = *adopted = true;
        return CP_OK;
    }
    flow_account_close(&now);
    return CP_OK;
}

/* onlyReturnExisting with `key`: CP_OK with *known set (and *url when it is
 * known; accountDoesNotExist is "not known"), or any other failure. */
static enum cp_code key_known(struct acme_client *client, const struct acme_key *key, char **url,
                              bool *known, struct acme_problem *prob, struct cp_err *err)
{
    struct acme_account_req lookup = {.only_existing = true};
    free(*url);
    *url = NULL;
    enum cp_code rc = acme_account_register(client, key, &lookup, url, prob, err);
    *known = rc == CP_OK;
    if (rc == CP_ECA && acme_problem_is(prob, "accountDoesNotExist")) {
        acme_problem_clear(prob);
        cp_err_clear(err);
        rc = CP_OK;
    }
    return rc;
}

/*
 * The pending key is left: a rollover stopped between writing the new key
 * and acting on the CA's answer.  The CA knows exactly one of the two keys
 * (keyChange is atomic there); keep that one.  Without `write` the choice is
 * made in memory only (dry runs).
 */
static enum cp_code finish_rollover(struct flow_account *a, struct acme_client *client, bool write,
                                    const struct flow_log *log, struct acme_problem *prob,
                                    struct cp_err *err)
{
    char *url = NULL;
    enum cp_code rc = CP_OK;
    bool old_known = false, new_known = false;

    flow_say(log, FLOW_NOTICE,
             "%s is left from an account key rollover that did not finish; asking %s which key "
             "it knows",
             a->pending_where, a->server);
    if (a->key != NULL && (rc = key_known(client, a->key, &url, &old_known, prob, err)) != CP_OK)
        goto out;
    if (old_known) {
        flow_say(log, FLOW_NOTICE,
                 "the CA still knows the old key: the rollover did not happen; %s is removed",
                 a->pending_where);
        if (write) {
            rc = pending_remove(a, err);
        } else {
            acme_key_free(a->pending);
            a->pending = NULL;
        }
    } else {
        if ((rc = key_known(client, a->pending, &url, &new_known, prob, err)) != CP_OK)
            goto out;
        if (!new_known) {
            rc = cp_err_set(err, CP_ECA,
                            "%s knows neither %s/account.key nor %s; both are kept. Check the "
                            "--server, or move the account directory away and register anew",
                            a->server, a->where, a->pending_where);
            goto out;
        }
        flow_say(log, FLOW_NOTICE, "the CA has the new key: the rollover is complete now");
        if (write) {
            rc = pending_commit(a, err);
        } else {
            acme_key_free(a->key);
            a->key = a->pending;
            a->pending = NULL;
        }
    }
    if (rc == CP_OK && url != NULL &&
        (flow_account_url(a) == NULL || strcmp(flow_account_url(a), url) != 0)) {
        rc = record_set(a, "url", json_string(url), err);
        if (rc == CP_OK && write)
            rc = record_write(a, err);
    } else if (rc == CP_OK && write) {
        rc = record_write(a, err); /* key_type of the key kept */
    }
out:
    free(url);
    return rc;
}

/* No account and none made: what to run instead, with what the CA asks for. */
static enum cp_code no_account(const struct flow_account *a, struct acme_client *client,
                               struct cp_err *err)
{
    const struct acme_directory *d = acme_client_directory(client);
    return cp_err_set(err, CP_ESETUP,
                      "no account for %s in %s yet: register one with "
                      "'certpilot account register --agree-tos [--email ADDR]%s'%s%s",
                      a->server, store_where(a->st),
                      d->external_account_required ? " --eab-kid ID --eab-hmac-key KEY" : "",
                      d->terms_of_service ? " after reading the terms: " : "",
                      d->terms_of_service ? d->terms_of_service : "");
}

enum cp_code flow_account_use(struct flow_account *a, struct acme_client *client,
                              const struct flow_account_use_req *req, const struct flow_log *log,
                              struct acme_problem *prob, struct cp_err *err)
{
    const struct acme_account_req *reg = req->reg;
    unsigned flags = req->flags;
    bool write = (flags & FLOW_ACCOUNT_NO_WRITE) == 0;
    struct acme_key *fresh = NULL;
    struct store_lineage_lock *lock = NULL;
    char *url = NULL;
    enum cp_code rc = flow_account_check(a, flags, err);

    if (rc != CP_OK)
        return rc;
    if (a->pending != NULL && (rc = finish_rollover(a, client, write, log, prob, err)) != CP_OK)
        return rc;
    if (a->key != NULL && flow_account_url(a) != NULL) { /* complete: no request needed */
        acme_client_set_account(client, a->key, flow_account_url(a));
        return CP_OK;
    }
    if (a->key == NULL && (flags & FLOW_ACCOUNT_LOOKUP_ONLY))
        return CP_OK; /* no account yet, and none may be made */
    if (a->key == NULL) {
        if (reg == NULL || !reg->agree_tos)
            return no_account(a, client, err);
        if (acme_client_directory(client)->external_account_required && reg->eab_kid == NULL)
            return cp_err_set(err, CP_EINVAL,
                              "%s requires External Account Binding: register with 'certpilot "
                              "account register --agree-tos --eab-kid ID --eab-hmac-key KEY' "
                              "(the key id and HMAC key come from the CA)",
                              a->server);
        /* Hosts sharing the store register one account between them. */
        if (write && store_shared(a->st)) {
            bool adopted = false;
            rc = store_account_lock(a->st, a->server, ACCOUNT_LOCK_WAIT_S, account_waiting,
                                    (void *)log, &lock, err);
            if (rc == CP_OK)
                rc = adopt_registered(a, &adopted, err);
            if (rc != CP_OK)
                goto out;
            if (adopted) {
                flow_say(log, FLOW_NOTICE, "another host registered the account meanwhile: %s",
                         flow_account_url(a));
                acme_client_set_account(client, a->key, flow_account_url(a));
                goto out;
            }
        }
        rc = acme_key_generate(req->key_type, &fresh, err);
        if (rc != CP_OK)
            goto out;
    }
    /* A key without a URL (or an explicit registration): newAccount gives the
     * URL of the existing account or creates one. */
    struct acme_account_req lookup = {.only_existing = true};
    const struct acme_account_req *send =
        reg && (fresh != NULL || reg->agree_tos) && !(flags & FLOW_ACCOUNT_LOOKUP_ONLY) ? reg
                                                                                        : &lookup;
    rc = acme_account_register(client, fresh != NULL ? fresh : a->key, send, &url, prob, err);
    if (rc != CP_OK)
        goto out;
    if (fresh != NULL) {
        /* A new account replaces whatever the record held (e.g. a deactivated one). */
        json_object_clear(a->rec);
        if (write) {
            rc = key_write(a, fresh, err);
        } else {
            acme_key_free(a->key);
            a->key = fresh;
        }
        if (rc != CP_OK)
            goto out;
        fresh = NULL;
    }
    rc = record_set(a, "url", json_string(url), err);
    /* A look-up learns only the URL: the saved contacts stay as they are. */
    if (rc == CP_OK && send != &lookup) {
        json_t *list = json_array();
        for (size_t i = 0; list != NULL && i < send->ncontacts; i++)
            json_array_append_new(list, json_string(send->contacts[i]));
        rc = record_set(a, "contact", list, err);
        if (rc == CP_OK && send->agree_tos) {
            const char *tos = acme_client_directory(client)->terms_of_service;
            char now[32];
            cp_time_str((long long)time(NULL), now);
            rc = record_set(a, "terms_agreed", json_pack("{s:s?, s:s}", "terms", tos, "at", now),
                            err);
        }
    }
    if (rc == CP_OK && write)
        rc = record_write(a, err);
    /* The URL is the one the CA just named, also when the record was old. */
    if (rc == CP_OK)
        acme_client_set_account(client, a->key, url);
out:
    store_lineage_unlock(lock); /* the record is written: another host finds it */
    acme_key_free(fresh);
    free(url);
    return rc;
}

enum cp_code flow_account_release(struct flow_account *a, struct acme_client *client,
                                  struct acme_key **key, char **url, struct cp_err *err)
{
    *key = NULL;
    *url = NULL;
    if (a->key == NULL)
        return CP_OK;
    const char *u = flow_account_url(a);
    *url = strdup(u != NULL ? u : "");
    if (*url == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    *key = a->key; /* the caller's now, and still the client's signing key */
    a->key = NULL;
    if (client != NULL)
        acme_client_set_account(client, *key, *url);
    return CP_OK;
}

/* -------------------------------------------------------------- register */

enum cp_code flow_account_forget_deactivated(struct flow_account *a, const struct flow_log *log,
                                             struct cp_err *err)
{
    const char *at = flow_account_deactivated_at(a);
    if (at == NULL)
        return CP_OK;
    /* The CA refuses that key for good: a new account gets a new key. */
    flow_say(log, FLOW_NOTICE, "the account %s was deactivated on %s; registering a new one",
             flow_account_url(a) ? flow_account_url(a) : "(URL unknown)", at);
    if (a->pending != NULL) {
        enum cp_code rc = pending_remove(a, err);
        if (rc != CP_OK)
            return rc;
    }
    acme_key_free(a->key);
    a->key = NULL;
    return CP_OK;
}

bool flow_account_same_contacts(const struct acme_account *ca, const char *const *want, size_t n)
{
    if (ca->ncontacts != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t j = 0; j < ca->ncontacts && !found; j++)
            found = strcasecmp(want[i], ca->contacts[j]) == 0;
        if (!found)
            return false;
    }
    return true;
}

static json_t *strings_json(char *const *list, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++)
        json_array_append_new(arr, json_string(list[i]));
    return arr;
}

/* Contacts at the CA, then in the record: what update and register share.
 * *record_behind when the CA changed them but the record was not written. */
static enum cp_code contacts_replace(struct flow_account *a, struct acme_client *client,
                                     const char *const *contacts, size_t n, bool *record_behind,
                                     struct acme_problem *prob, struct cp_err *err)
{
    struct acme_account ca = {.terms_agreed = -1};
    enum cp_code rc = acme_account_update(client, contacts, n, &ca, prob, err);
    if (rc == CP_OK) {
        rc = record_set(a, "contact", strings_json(ca.contacts, ca.ncontacts), err);
        if (rc == CP_OK)
            rc = record_write(a, err);
        *record_behind = rc != CP_OK;
    }
    acme_account_clear(&ca);
    return rc;
}

enum cp_code flow_account_register(struct flow_account *a, struct acme_client *client,
                                   const struct flow_account_register_req *req,
                                   struct flow_account_register_res *res,
                                   const struct flow_log *log, struct acme_problem *prob,
                                   struct cp_err *err)
{
    struct acme_account_req lookup = {.only_existing = true};
    struct acme_account ca = {.terms_agreed = -1};
    bool existing = a->key != NULL || a->pending != NULL;
    struct flow_account_use_req use = {.reg = existing ? &lookup : req->reg,
                                       .key_type = req->key_type,
                                       .flags = FLOW_ACCOUNT_ANY_STATUS};
    memset(res, 0, sizeof *res);
    res->outcome = existing ? FLOW_ACCOUNT_EXISTING : FLOW_ACCOUNT_REGISTERED;
    enum cp_code rc = flow_account_use(a, client, &use, log, prob, err);
    if (rc != CP_OK || (!existing && !a->adopted))
        goto out;
    /* Found, or registered by another host meanwhile: the contacts asked for
     * are compared with the CA's all the same. */
    if (a->adopted)
        res->outcome = FLOW_ACCOUNT_EXISTING;
    /* Already registered: only the contacts can change, and only when they
     * differ from what the CA holds. */
    if (req->key_type_set)
        flow_say(log, FLOW_WARNING,
                 "--key-type: the account keeps its key; replace it with 'certpilot account "
                 "rollover --key-type TYPE'");
    if (req->reg == NULL || req->reg->ncontacts == 0)
        goto out;
    rc = acme_account_fetch(client, &ca, prob, err);
    if (rc != CP_OK || flow_account_same_contacts(&ca, req->reg->contacts, req->reg->ncontacts))
        goto out;
    rc = contacts_replace(a, client, req->reg->contacts, req->reg->ncontacts, &res->record_behind,
                          prob, err);
    if (rc == CP_OK)
        res->outcome = FLOW_ACCOUNT_CONTACTS_UPDATED;
out:
    acme_account_clear(&ca);
    return rc;
}

/* ------------------------------------------------------------------ show */

void flow_account_view_make(const struct flow_account *a, const struct acme_account *ca,
                            struct flow_account_view *out)
{
    const json_t *terms = json_object_get(a->rec, "terms_agreed");
    memset(out, 0, sizeof *out);
    out->asked = ca != NULL;
    out->url = flow_account_url(a);
    out->deactivated_at = flow_account_deactivated_at(a);
    out->status = ca ? ca->status : out->deactivated_at ? "deactivated" : NULL;
    out->saved_contacts = flow_account_contacts(a);
    out->contacts =
        ca ? strings_json(ca->contacts, ca->ncontacts) : json_incref(out->saved_contacts);
    out->orders = ca ? ca->orders : NULL;
    out->terms_agreed = ca ? ca->terms_agreed : -1;
    out->terms_recorded = terms != NULL;
    out->terms_at = json_string_value(json_object_get(terms, "at"));
    out->terms_url = json_string_value(json_object_get(terms, "terms"));
    out->key_type = a->key ? acme_key_type_name(acme_key_type_of(a->key)) : "(none)";
    thumbprint_of(a->key, out->thumbprint);
    out->ca_key_thumbprint = ca ? ca->key_thumbprint : NULL;
    out->key_differs = ca != NULL && ca->key_thumbprint[0] != '\0' &&
                       strcmp(ca->key_thumbprint, out->thumbprint) != 0;
}

enum cp_code flow_account_show(struct flow_account *a, struct acme_client *client,
                               struct flow_account_show_res *res, struct acme_problem *prob,
                               struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    memset(res, 0, sizeof *res);
    res->ca.terms_agreed = -1;
    /* The CA refuses a deactivated account's requests: what is saved says it all. */
    if (client != NULL && flow_account_deactivated_at(a) == NULL)
        rc = acme_account_fetch(client, &res->ca, prob, err);
    bool asked = client != NULL && flow_account_deactivated_at(a) == NULL && rc == CP_OK;
    flow_account_view_make(a, asked ? &res->ca : NULL, &res->view);
    return rc;
}

void flow_account_show_clear(struct flow_account_show_res *res)
{
    json_decref(res->view.contacts);
    json_decref(res->view.saved_contacts);
    res->view.contacts = NULL;
    res->view.saved_contacts = NULL;
    acme_account_clear(&res->ca);
}

/* ---------------------------------------------------------------- update */

enum cp_code flow_account_update(struct flow_account *a, struct acme_client *client,
                                 const struct flow_account_update_req *req,
                                 struct flow_account_update_res *res, struct acme_problem *prob,
                                 struct cp_err *err)
{
    memset(res, 0, sizeof *res);
    return contacts_replace(a, client, req->contacts, req->ncontacts, &res->record_behind, prob,
                            err);
}

/* -------------------------------------------------------------- rollover */

enum cp_code flow_account_rollover(struct flow_account *a, struct acme_client *client,
                                   const struct flow_account_rollover_req *req,
                                   struct flow_account_rollover_res *res, struct acme_problem *prob,
                                   struct cp_err *err)
{
    struct acme_key *fresh = NULL;
    memset(res, 0, sizeof *res);
    res->old_type = ACME_KEY_EC256;
    if (acme_client_directory(client)->key_change == NULL)
        return cp_err_set(err, CP_ECA,
                          "%s names no keyChange in its directory: this CA does not offer "
                          "account key rollover; the account keeps its key",
                          a->server);
    if (a->key == NULL)
        return cp_err_set(err, CP_EINTERNAL, "no account key to replace");
    res->old_type = acme_key_type_of(a->key);
    thumbprint_of(a->key, res->old_thumbprint);
    enum cp_code rc =
        acme_key_generate(req->key_type_set ? req->key_type : res->old_type, &fresh, err);
    /* The new key is kept before the CA hears of it: whatever happens next,
     * the key the CA ends up with is in the store. */
    if (rc == CP_OK)
        rc = pending_write(a, fresh, err);
    if (rc != CP_OK) {
        acme_key_free(fresh);
        return rc;
    }
    rc = acme_account_key_change(client, a->pending, prob, err);
    if (rc == CP_ECA) {
        /* Refused: the CA keeps the old key, the new one is of no use. */
        pending_remove(a, &res->after);
        return rc;
    }
    if (rc != CP_OK) {
        res->unknown = true;
        return rc;
    }
    rc = pending_commit(a, err);
    if (rc == CP_OK)
        rc = record_write(a, err);
    res->record_behind = rc != CP_OK;
    return rc;
}

/* ------------------------------------------------------------ deactivate */

enum cp_code flow_account_deactivate(struct flow_account *a, struct acme_client *client,
                                     struct flow_account_deactivate_res *res,
                                     struct acme_problem *prob, struct cp_err *err)
{
    memset(res, 0, sizeof *res);
    res->ca.terms_agreed = -1;
    enum cp_code rc = acme_account_deactivate(client, &res->ca, prob, err);
    if (rc != CP_OK)
        return rc;
    cp_time_str((long long)time(NULL), res->deactivated_at);
    rc = record_set(a, "status", json_string("deactivated"), err);
    if (rc == CP_OK)
        rc = record_set(a, "deactivated_at", json_string(res->deactivated_at), err);
    if (rc == CP_OK)
        rc = record_write(a, err);
    res->record_behind = rc != CP_OK;
    return rc;
}
