/*
 * acme/client.c - the ACME conversation: directory, nonces, signed requests
 * with their retries, and the account (RFC 8555 §6, §7.1, §7.2, §7.3).
 */
#include "acme/acme.h"
#include "acme/client_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BADNONCE_RETRIES   15 /* bounded; at a 50 % rejection rate a request fails 1 in 65536 */
#define RETRY_AFTER_MAX_S  60 /* longer waits are reported, not slept through */
#define DEFAULT_DEADLINE_S 300

#define ORIGINS_MAX 8
#define ORIGIN_LEN  300

struct acme_client {
    struct acme_http *http;
    struct acme_directory dir;
    char *directory_url;
    char *nonce;
    const struct acme_key *key; /* borrowed */
    char *kid;
    unsigned deadline_s;
    unsigned long requests;
    /* The CA's origins: its directory's and those of the URLs the directory
     * names; every request goes to one of them (RFC 8555 does not let a CA
     * send the client elsewhere, and a signed POST must not leave the CA). */
    char origins[ORIGINS_MAX][ORIGIN_LEN];
    size_t norigins;
    bool bad_nonce_seen; /* a Replay-Nonce that was not base64url was dropped */
    void (*log)(void *ctx, const char *fmt, ...);
    void *log_ctx;
};

void acme_client_say(struct acme_client *c, const char *fmt, ...)
{
    if (c->log == NULL)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    c->log(c->log_ctx, "%s", line);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

void acme_directory_clear(struct acme_directory *d)
{
    if (d == NULL)
        return;
    free(d->new_nonce);
    free(d->new_account);
    free(d->new_order);
    free(d->revoke_cert);
    free(d->key_change);
    free(d->renewal_info);
    free(d->terms_of_service);
    free(d->website);
    for (size_t i = 0; i < d->ncaa_identities; i++)
        free(d->caa_identities[i]);
    free(d->caa_identities);
    for (size_t i = 0; i < d->nprofiles; i++) {
        free(d->profiles[i].name);
        free(d->profiles[i].description);
    }
    free(d->profiles);
    for (size_t i = 0; i < d->nissuer_domain_names; i++)
        free(d->issuer_domain_names[i]);
    free(d->issuer_domain_names);
    memset(d, 0, sizeof *d);
}

/* A string member of `o`, NULL when absent or not a string. */
static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* A profile name worth keeping: short, and characters that print safely
 * in a message, a file and a JSON document alike. */
static bool profile_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > ACME_PROFILE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* meta.profiles (draft-aaron-acme-profiles §3): {name: description}. */
static enum cp_code parse_profiles(json_t *profiles, struct acme_directory *d, struct cp_err *err)
{
    size_t n = json_is_object(profiles) ? json_object_size(profiles) : 0;
    if (n == 0)
        return CP_OK;
    d->profiles = calloc(n < ACME_PROFILES_MAX ? n : ACME_PROFILES_MAX, sizeof *d->profiles);
    if (d->profiles == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    const char *name;
    json_t *desc;
    json_object_foreach(profiles, name, desc)
    {
        if (d->nprofiles >= ACME_PROFILES_MAX || !profile_name_ok(name)) {
            d->profiles_dropped++;
            continue;
        }
        const char *text = json_is_string(desc) ? json_string_value(desc) : "";
        struct acme_profile *p = &d->profiles[d->nprofiles];
        p->name = strdup(name);
        p->description = strndup(text, ACME_PROFILE_DESC_MAX);
        if (p->name == NULL || p->description == NULL) {
            free(p->name);
            free(p->description);
            p->name = p->description = NULL;
            return cp_err_set(err, CP_ENOMEM, "out of memory");
        }
        d->nprofiles++;
    }
    return CP_OK;
}

/* draft-ietf-acme-dns-persist §3.1: lower case, no trailing dot, at most
 * 253 octets; letters, digits, '-' and '.' (A-labels). */
static bool issuer_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 253 || s[n - 1] == '.' || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return false;
    }
    return true;
}

/* meta.issuerDomainNames: all conforming, or none kept (§3.2). */
static enum cp_code parse_issuer_names(json_t *names, struct acme_directory *d, struct cp_err *err)
{
    size_t n = json_is_array(names) ? json_array_size(names) : 0;
    if (n == 0 || n > ACME_ISSUER_DOMAINS_MAX)
        return CP_OK;
    for (size_t i = 0; i < n; i++)
        if (!issuer_name_ok(json_string_value(json_array_get(names, i))))
            return CP_OK;
    d->issuer_domain_names = calloc(n, sizeof *d->issuer_domain_names);
    if (d->issuer_domain_names == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        d->issuer_domain_names[i] = strdup(json_string_value(json_array_get(names, i)));
        if (d->issuer_domain_names[i] == NULL)
            return cp_err_set(err, CP_ENOMEM, "out of memory");
        d->nissuer_domain_names++;
    }
    return CP_OK;
}

enum cp_code acme_directory_parse(const char *body, size_t len, const char *url,
                                  struct acme_directory *d, struct cp_err *err)
{
    json_error_t jerr;
    json_t *j = json_loadb(body ? body : "", body ? len : 0, 0, &jerr);
    enum cp_code rc = CP_OK;
    memset(d, 0, sizeof *d);
    if (!json_is_object(j)) {
        rc = cp_err_set(err, CP_EPROTO,
                        "%s is not an ACME directory (not a JSON object); check the server URL",
                        url);
        goto out;
    }
    d->new_nonce = dup_or_null(jstr(j, "newNonce"));
    d->new_account = dup_or_null(jstr(j, "newAccount"));
    d->new_order = dup_or_null(jstr(j, "newOrder"));
    d->revoke_cert = dup_or_null(jstr(j, "revokeCert"));
    d->key_change = dup_or_null(jstr(j, "keyChange"));
    d->renewal_info = dup_or_null(jstr(j, "renewalInfo"));
    if (d->new_nonce == NULL || d->new_account == NULL || d->new_order == NULL) {
        rc = cp_err_set(err, CP_EPROTO,
                        "the directory at %s lacks newNonce, newAccount or newOrder; is it an "
                        "ACME v2 server?",
                        url);
        goto out;
    }
    json_t *meta = json_object_get(j, "meta");
    d->terms_of_service = dup_or_null(jstr(meta, "termsOfService"));
    d->website = dup_or_null(jstr(meta, "website"));
    d->external_account_required = json_is_true(json_object_get(meta, "externalAccountRequired"));
    json_t *ids = json_object_get(meta, "caaIdentities");
    size_t n = json_is_array(ids) ? json_array_size(ids) : 0;
    if (n > 16)
        n = 16; /* bounded: no CA has more than a handful */
    d->caa_identities = calloc(n ? n : 1, sizeof *d->caa_identities);
    if (d->caa_identities == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(ids, i));
        if (s != NULL && (d->caa_identities[d->ncaa_identities] = strdup(s)) != NULL)
            d->ncaa_identities++;
    }
    rc = parse_profiles(json_object_get(meta, "profiles"), d, err);
    if (rc == CP_OK)
        rc = parse_issuer_names(json_object_get(meta, "issuerDomainNames"), d, err);
out:
    json_decref(j);
    return rc;
}

const char *acme_directory_profile(const struct acme_directory *d, const char *name)
{
    for (size_t i = 0; d != NULL && name != NULL && i < d->nprofiles; i++)
        if (strcmp(d->profiles[i].name, name) == 0)
            return d->profiles[i].description;
    return NULL;
}

enum cp_code acme_profile_choose(const struct acme_directory *d, const char *name,
                                 enum acme_profile_mode mode, const char **use, struct cp_err *err)
{
    *use = NULL;
    if (name == NULL)
        return CP_OK;
    if (acme_directory_profile(d, name) != NULL) {
        *use = name;
        return CP_OK;
    }
    if (mode == ACME_PROFILE_PREFERRED)
        return CP_OK;
    char offered[512] = "";
    size_t len = 0;
    for (size_t i = 0; d != NULL && i < d->nprofiles; i++) {
        int w = snprintf(offered + len, sizeof offered - len, "%s%s", i ? ", " : "",
                         d->profiles[i].name);
        if (w < 0 || (size_t)w >= sizeof offered - len)
            break;
        len += (size_t)w;
    }
    if (len == 0)
        return cp_err_set(err, CP_EINVAL,
                          "the profile \"%.64s\" is required, but this CA offers no profiles",
                          name);
    return cp_err_set(err, CP_EINVAL,
                      "the profile \"%.64s\" is required, but this CA offers only: %s", name,
                      offered);
}

/* Turn an error response into a problem; a body that is no problem document
 * still yields one, built from the HTTP status. */
static void problem_from(const struct acme_response *r, struct acme_problem *prob)
{
    struct cp_err ignored;
    acme_problem_clear(prob);
    long long at = acme_retry_at(r->retry_after, time(NULL));
    if (r->body != NULL && acme_problem_parse(r->body, r->body_len, prob, &ignored) == CP_OK) {
        prob->retry_at = at > 0 ? at : 0;
        return;
    }
    acme_problem_clear(prob);
    prob->retry_at = at > 0 ? at : 0;
    char detail[64];
    snprintf(detail, sizeof detail, "HTTP status %ld without a problem document", r->status);
    prob->type = strdup("about:blank");
    prob->detail = strdup(detail);
    prob->status = (int)r->status;
}

/* RFC 8555 §6.5.1: a nonce is base64url; one that is not (or is absurdly
 * long) is not kept, so that the CA's mistake is reported as the CA's, when
 * no usable nonce is left, and never as bad input of the user. */
static bool nonce_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 1024)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)n[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

static void take_nonce(struct acme_client *c, struct acme_response *r)
{
    if (r->replay_nonce != NULL && !nonce_ok(r->replay_nonce)) {
        acme_client_say(c, "ignoring a Replay-Nonce that is not base64url");
        c->bad_nonce_seen = true;
        return;
    }
    if (r->replay_nonce != NULL) {
        free(c->nonce);
        c->nonce = r->replay_nonce;
        r->replay_nonce = NULL;
    }
}

static void add_origin(struct acme_client *c, const char *url)
{
    char o[ORIGIN_LEN];
    if (url == NULL || !acme_url_origin(url, o, sizeof o))
        return;
    for (size_t i = 0; i < c->norigins; i++)
        if (strcmp(c->origins[i], o) == 0)
            return;
    if (c->norigins < ORIGINS_MAX)
        memcpy(c->origins[c->norigins++], o, strlen(o) + 1);
}

static enum cp_code request(struct acme_client *c, const char *method, const char *url,
                            const char *body, struct acme_response *r, struct cp_err *err)
{
    if (c->norigins > 0) {
        char o[ORIGIN_LEN];
        bool known = false;
        if (acme_url_origin(url, o, sizeof o))
            for (size_t i = 0; i < c->norigins && !known; i++)
                known = strcmp(c->origins[i], o) == 0;
        if (!known)
            return cp_err_set(err, CP_EPROTO,
                              "refusing %s %s: the CA sent a URL outside its own origins (its "
                              "directory %s names no resource there); nothing was sent to it",
                              method, url, c->directory_url);
    }
    c->requests++;
    enum cp_code rc = acme_http_request(c->http, method, url, body, r, err);
    if (rc == CP_OK)
        take_nonce(c, r);
    return rc;
}

static enum cp_code fresh_nonce(struct acme_client *c, struct cp_err *err)
{
    if (c->nonce != NULL)
        return CP_OK;
    struct acme_response r = {0};
    enum cp_code rc = request(c, "HEAD", c->dir.new_nonce, NULL, &r, err);
    if (rc == CP_OK && c->nonce == NULL)
        rc = cp_err_set(err, CP_EPROTO, "%s gave no %sReplay-Nonce (HTTP %ld)", c->dir.new_nonce,
                        c->bad_nonce_seen ? "usable (base64url) " : "", r.status);
    acme_response_clear(&r);
    return rc;
}

enum cp_code acme_client_new(const struct acme_client_opts *o, struct acme_client **out,
                             struct acme_problem *prob, struct cp_err *err)
{
    enum cp_code rc;
    struct acme_response r = {0};
    struct acme_client *c = calloc(1, sizeof *c);

    *out = NULL;
    if (c == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    c->deadline_s = o->deadline_s ? o->deadline_s : DEFAULT_DEADLINE_S;
    c->log = o->log;
    c->log_ctx = o->log_ctx;
    c->directory_url = strdup(o->directory_url);
    if (c->directory_url == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        goto fail;
    }
    rc = acme_http_new(&o->http, &c->http, err);
    if (rc != CP_OK)
        goto fail;
    rc = request(c, "GET", c->directory_url, NULL, &r, err);
    if (rc != CP_OK)
        goto fail;
    if (r.status != 200) {
        problem_from(&r, prob);
        rc = cp_err_set(err, CP_ECA, "the directory %s answered HTTP %ld", c->directory_url,
                        r.status);
        goto fail;
    }
    rc = acme_directory_parse(r.body, r.body_len, c->directory_url, &c->dir, err);
    if (rc != CP_OK)
        goto fail;
    add_origin(c, c->directory_url);
    const char *named[] = {c->dir.new_nonce,   c->dir.new_account, c->dir.new_order,
                           c->dir.revoke_cert, c->dir.key_change,  c->dir.renewal_info};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        add_origin(c, named[i]);
    acme_response_clear(&r);
    *out = c;
    return CP_OK;
fail:
    acme_response_clear(&r);
    acme_client_free(c);
    return rc;
}

const struct acme_directory *acme_client_directory(const struct acme_client *c)
{
    return &c->dir;
}

void acme_client_set_account(struct acme_client *c, const struct acme_key *key, const char *kid)
{
    c->key = key;
    free(c->kid);
    c->kid = kid ? strdup(kid) : NULL;
}

const struct acme_key *acme_client_key(const struct acme_client *c)
{
    return c->key;
}

unsigned acme_client_deadline_s(const struct acme_client *c)
{
    return c->deadline_s;
}

enum cp_code acme_client_get(struct acme_client *c, const char *url, struct acme_response *r,
                             struct cp_err *err)
{
    return request(c, "GET", url, NULL, r, err);
}

const char *acme_client_kid(const struct acme_client *c)
{
    return c->kid;
}

unsigned long acme_client_requests(const struct acme_client *c)
{
    return c->requests;
}

void acme_client_free(struct acme_client *c)
{
    if (c == NULL)
        return;
    acme_http_free(c->http);
    acme_directory_clear(&c->dir);
    free(c->directory_url);
    free(c->nonce);
    free(c->kid);
    free(c);
}

static void sleep_s(long s)
{
    struct timespec ts = {.tv_sec = s, .tv_nsec = 0};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* One signed POST with its retries, signed by `key` with `kid`, or with the
 * key's JWK when `kid` is NULL. */
static enum cp_code post_signed(struct acme_client *c, const struct acme_key *key, const char *kid,
                                const char *url, const char *payload, struct acme_response *resp,
                                struct acme_problem *prob, struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    bool waited = false;

    for (int attempt = 0;; attempt++) {
        char *jws = NULL;
        rc = fresh_nonce(c, err);
        if (rc != CP_OK)
            return rc;
        rc = acme_jws_sign(key, kid, c->nonce, url, payload, &jws, err);
        free(c->nonce); /* a nonce is good for one request only */
        c->nonce = NULL;
        if (rc != CP_OK)
            return rc;
        acme_response_clear(resp);
        rc = request(c, "POST", url, jws, resp, err);
        free(jws);
        if (rc != CP_OK)
            return rc;
        if (resp->status >= 200 && resp->status < 300) {
            acme_problem_clear(prob); /* a retried badNonce is no longer news */
            return CP_OK;
        }

        problem_from(resp, prob);
        if (acme_problem_is(prob, "badNonce") && attempt < BADNONCE_RETRIES)
            continue; /* RFC 8555 §6.5: retry with the nonce that came with the error */
        long wait = acme_retry_after(resp->retry_after, time(NULL));
        if (!waited && (acme_problem_is(prob, "rateLimited") || resp->status == 503) && wait >= 0 &&
            wait <= RETRY_AFTER_MAX_S) {
            acme_client_say(c, "the CA asks to retry after %ld s", wait);
            sleep_s(wait);
            waited = true;
            continue;
        }
        return cp_err_set(err, CP_ECA, "%s: %s", prob->type, prob->detail ? prob->detail : "");
    }
}

enum cp_code acme_post(struct acme_client *c, const char *url, const char *payload,
                       struct acme_response *resp, struct acme_problem *prob, struct cp_err *err)
{
    if (c->key == NULL)
        return cp_err_set(err, CP_EINTERNAL, "acme_post without an account key");
    return post_signed(c, c->key, c->kid, url, payload, resp, prob, err);
}

enum cp_code acme_post_jwk(struct acme_client *c, const struct acme_key *key, const char *url,
                           const char *payload, struct acme_response *resp,
                           struct acme_problem *prob, struct cp_err *err)
{
    if (key == NULL)
        return cp_err_set(err, CP_EINTERNAL, "acme_post_jwk without a key");
    return post_signed(c, key, NULL, url, payload, resp, prob, err);
}

enum cp_code acme_account_register(struct acme_client *c, const struct acme_key *key,
                                   const struct acme_account_req *req, char **kid,
                                   struct acme_problem *prob, struct cp_err *err)
{
    enum cp_code rc;
    struct acme_response r = {0};
    json_t *payload = json_object(), *contacts = json_array();
    char *text = NULL;

    *kid = NULL;
    if (payload == NULL || contacts == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        goto out;
    }
    if (c->dir.external_account_required && !req->only_existing && req->eab_kid == NULL) {
        rc = cp_err_set(err, CP_EINVAL,
                        "this CA requires External Account Binding: the key id and HMAC key "
                        "come from the CA");
        goto out;
    }
    for (size_t i = 0; i < req->ncontacts; i++)
        json_array_append_new(contacts, json_string(req->contacts[i]));
    if (req->ncontacts > 0)
        json_object_set(payload, "contact", contacts);
    if (req->agree_tos)
        json_object_set_new(payload, "termsOfServiceAgreed", json_true());
    if (req->only_existing)
        json_object_set_new(payload, "onlyReturnExisting", json_true());
    if (req->eab_kid != NULL && !req->only_existing) {
        json_t *eab = NULL;
        rc = acme_eab_sign(key, req->eab_kid, req->eab_hmac_key, c->dir.new_account, &eab, err);
        if (rc != CP_OK)
            goto out;
        json_object_set_new(payload, "externalAccountBinding", eab);
    }
    text = json_dumps(payload, JSON_COMPACT);
    if (text == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        goto out;
    }

    /* newAccount is signed with the JWK, not a kid (§6.2). */
    acme_client_set_account(c, key, NULL);
    rc = acme_post(c, c->dir.new_account, text, &r, prob, err);
    if (rc != CP_OK)
        goto out;
    if (r.location == NULL) {
        rc = cp_err_set(err, CP_EPROTO, "newAccount answered without a Location header");
        goto out;
    }
    *kid = strdup(r.location);
    if (*kid == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        goto out;
    }
    acme_client_set_account(c, key, *kid);
    acme_client_say(c, "account %s (%s)", *kid, r.status == 201 ? "created" : "existing");
out:
    free(text);
    json_decref(contacts);
    json_decref(payload);
    acme_response_clear(&r);
    return rc;
}
