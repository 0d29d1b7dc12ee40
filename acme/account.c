/*
 * acme/account.c - an existing account: its object as the CA reports it,
 * contact update, key change and deactivation (RFC 8555 §7.1.2, §6.3,
 * §7.3.2, §7.3.5, §7.3.6).  newAccount itself is in acme/client.c.
 */
#include "acme/acme.h"
#include "acme/client_int.h"
#include "acme/key_int.h"

#include <stdlib.h>
#include <string.h>

#define ACCOUNT_BODY_MAX   (64 * 1024)
#define CONTACT_LEN_MAX    1024
#define ORDERS_URL_LEN_MAX 2048

void acme_account_clear(struct acme_account *a)
{
    if (a == NULL)
        return;
    free(a->status);
    for (size_t i = 0; i < a->ncontacts; i++)
        free(a->contacts[i]);
    free(a->contacts);
    free(a->orders);
    memset(a, 0, sizeof *a);
    a->terms_agreed = -1;
}

/* A string member no longer than `max` bytes: CP_OK with *out NULL when
 * absent, CP_EPROTO when it is there but not such a string. */
static enum cp_code bounded_string(const json_t *o, const char *key, size_t max, char **out,
                                   struct cp_err *err)
{
    const json_t *v = json_object_get(o, key);
    *out = NULL;
    if (v == NULL)
        return CP_OK;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max ||
        strlen(json_string_value(v)) != json_string_length(v))
        return cp_err_set(err, CP_EPROTO,
                          "the account object's \"%s\" is not a string of 1 to %zu bytes", key,
                          max);
    *out = strdup(json_string_value(v));
    return *out != NULL ? CP_OK : cp_err_set(err, CP_ENOMEM, "out of memory");
}

enum cp_code acme_account_parse(const char *body, size_t len, struct acme_account *out,
                                struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    json_error_t jerr;
    json_t *j = NULL;

    memset(out, 0, sizeof *out);
    out->terms_agreed = -1;
    if (body == NULL || len == 0)
        return cp_err_set(err, CP_EPROTO, "the CA answered without an account object");
    if (len > ACCOUNT_BODY_MAX)
        return cp_err_set(err, CP_EPROTO, "the account object is %zu bytes, more than %d", len,
                          ACCOUNT_BODY_MAX);
    j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(j)) {
        rc = cp_err_set(err, CP_EPROTO, "the account object is not a JSON object");
        goto out;
    }

    rc = bounded_string(j, "status", 32, &out->status, err);
    if (rc != CP_OK)
        goto out;
    if (out->status == NULL ||
        (strcmp(out->status, "valid") != 0 && strcmp(out->status, "deactivated") != 0 &&
         strcmp(out->status, "revoked") != 0)) {
        rc = cp_err_set(err, CP_EPROTO,
                        "the account object's status is %s%s%s, not valid, deactivated or "
                        "revoked",
                        out->status ? "\"" : "", out->status ? out->status : "missing",
                        out->status ? "\"" : "");
        goto out;
    }

    const json_t *contacts = json_object_get(j, "contact");
    if (contacts != NULL) {
        size_t n = json_is_array(contacts) ? json_array_size(contacts) : 0;
        if (!json_is_array(contacts) || n > ACME_ACCOUNT_CONTACTS_MAX) {
            rc = cp_err_set(err, CP_EPROTO,
                            "the account object's \"contact\" is not an array of at most %d "
                            "entries",
                            ACME_ACCOUNT_CONTACTS_MAX);
            goto out;
        }
        out->contacts = calloc(n ? n : 1, sizeof *out->contacts);
        if (out->contacts == NULL) {
            rc = cp_err_set(err, CP_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            const json_t *c = json_array_get(contacts, i);
            if (!json_is_string(c) || json_string_length(c) == 0 ||
                json_string_length(c) > CONTACT_LEN_MAX ||
                strlen(json_string_value(c)) != json_string_length(c)) {
                rc = cp_err_set(err, CP_EPROTO,
                                "the account object's contact %zu is not a string of 1 to %d "
                                "bytes",
                                i + 1, CONTACT_LEN_MAX);
                goto out;
            }
            out->contacts[i] = strdup(json_string_value(c));
            if (out->contacts[i] == NULL) {
                rc = cp_err_set(err, CP_ENOMEM, "out of memory");
                goto out;
            }
            out->ncontacts++;
        }
    }

    rc = bounded_string(j, "orders", ORDERS_URL_LEN_MAX, &out->orders, err);
    if (rc != CP_OK)
        goto out;

    const json_t *tos = json_object_get(j, "termsOfServiceAgreed");
    if (tos != NULL && !json_is_boolean(tos)) {
        rc = cp_err_set(err, CP_EPROTO,
                        "the account object's \"termsOfServiceAgreed\" is not a boolean");
        goto out;
    }
    if (tos != NULL)
        out->terms_agreed = json_is_true(tos) ? 1 : 0;

    /* Not in RFC 8555's list, but Boulder and Pebble show the account's key:
     * what lets a client see which key the CA holds. */
    const json_t *key = json_object_get(j, "key");
    if (key != NULL && acme_jwk_thumbprint(key, out->key_thumbprint, err) != CP_OK) {
        rc = cp_err_set(err, CP_EPROTO, "the account object's \"key\" is not a usable JWK");
        goto out;
    }
out:
    json_decref(j);
    return rc;
}

/* POST `payload` (NULL: POST-as-GET) to the account URL and parse the
 * account object answered. */
static enum cp_code account_post(struct acme_client *c, const char *payload,
                                 struct acme_account *out, struct acme_problem *prob,
                                 struct cp_err *err)
{
    struct acme_response r = {0};
    const char *kid = acme_client_kid(c);

    memset(out, 0, sizeof *out);
    out->terms_agreed = -1;
    if (kid == NULL)
        return cp_err_set(err, CP_EINTERNAL, "no account URL to send the request to");
    enum cp_code rc = acme_post(c, kid, payload, &r, prob, err);
    if (rc == CP_OK) {
        rc = acme_account_parse(r.body, r.body_len, out, err);
        if (rc != CP_OK) {
            char why[CP_ERR_MSG_MAX];
            snprintf(why, sizeof why, "%s", err != NULL ? err->msg : "");
            rc = cp_err_set(err, rc, "%s answered: %s", kid, why);
        }
    }
    acme_response_clear(&r);
    return rc;
}

enum cp_code acme_account_fetch(struct acme_client *c, struct acme_account *out,
                                struct acme_problem *prob, struct cp_err *err)
{
    /* POST-as-GET (§6.3), which RFC 8555 made the way to read every
     * resource; Pebble refuses the older "empty update" ({}) for this. */
    return account_post(c, NULL, out, prob, err);
}

enum cp_code acme_account_update(struct acme_client *c, const char *const *contacts, size_t n,
                                 struct acme_account *out, struct acme_problem *prob,
                                 struct cp_err *err)
{
    json_t *list = json_array();
    json_t *payload = NULL;
    char *text = NULL;
    enum cp_code rc = CP_OK;

    memset(out, 0, sizeof *out);
    out->terms_agreed = -1;
    for (size_t i = 0; list != NULL && i < n; i++)
        if (json_array_append_new(list, json_string(contacts[i])) != 0) {
            json_decref(list);
            return cp_err_set(err, CP_EINVAL, "the contact \"%s\" is not valid UTF-8", contacts[i]);
        }
    /* §7.3.2: "contact": [] removes every contact. */
    payload = list != NULL ? json_pack("{s:o}", "contact", list) : NULL;
    text = payload != NULL ? json_dumps(payload, JSON_COMPACT) : NULL;
    if (text == NULL)
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
    else
        rc = account_post(c, text, out, prob, err);
    free(text);
    json_decref(payload);
    return rc;
}

enum cp_code acme_account_deactivate(struct acme_client *c, struct acme_account *out,
                                     struct acme_problem *prob, struct cp_err *err)
{
    enum cp_code rc = account_post(c, "{\"status\":\"deactivated\"}", out, prob, err);
    if (rc == CP_OK && strcmp(out->status, "deactivated") != 0)
        rc = cp_err_set(err, CP_EPROTO,
                        "%s answered the deactivation with the status \"%s\", not "
                        "\"deactivated\"",
                        acme_client_kid(c), out->status);
    return rc;
}

enum cp_code acme_key_change_payload(const struct acme_key *old_key, const struct acme_key *new_key,
                                     const char *account_url, const char *key_change_url,
                                     char **out, struct cp_err *err)
{
    *out = NULL;
    json_t *old_jwk = acme_key_jwk(old_key);
    json_t *inner =
        old_jwk != NULL ? json_pack("{s:s, s:o}", "account", account_url, "oldKey", old_jwk) : NULL;
    char *text = inner != NULL ? json_dumps(inner, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(inner);
    if (text == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory building the key change");
    enum cp_code rc = acme_jws_sign_inner(new_key, key_change_url, text, out, err);
    free(text);
    return rc;
}

enum cp_code acme_account_key_change(struct acme_client *c, const struct acme_key *new_key,
                                     struct acme_problem *prob, struct cp_err *err)
{
    const char *url = acme_client_directory(c)->key_change;
    const char *kid = acme_client_kid(c);
    const struct acme_key *old_key = acme_client_key(c);
    struct acme_response r = {0};
    char *payload = NULL;
    char *account = NULL;
    enum cp_code rc;

    acme_problem_clear(prob);
    if (url == NULL)
        return cp_err_set(err, CP_ECA,
                          "the CA's directory names no keyChange: this CA does not offer key "
                          "rollover (RFC 8555 §7.3.5); the account keeps its key");
    if (kid == NULL || old_key == NULL)
        return cp_err_set(err, CP_EINTERNAL, "a key change needs the account's key and URL");
    /* acme_client_set_account() frees the kid it replaces: keep a copy. */
    account = strdup(kid);
    if (account == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    rc = acme_key_change_payload(old_key, new_key, account, url, &payload, err);
    if (rc == CP_OK)
        rc = acme_post(c, url, payload, &r, prob, err);
    if (rc == CP_OK)
        acme_client_set_account(c, new_key, account);
    acme_response_clear(&r);
    free(payload);
    free(account);
    return rc;
}
