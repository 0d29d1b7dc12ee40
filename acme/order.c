/*
 * acme/order.c - one issuance: order, authorizations, challenges, finalize,
 * certificate download (RFC 8555 §7.4, §7.5, §7.5.1, §7.4.2).
 *
 * How a challenge is made answerable is not decided here: the caller's
 * struct acme_solver deploys and cleans up (files, built-in servers, DNS
 * hooks).  This file only speaks ACME.
 */
#include "acme/acme.h"
#include "acme/solver_int.h"
#include "acme/client_int.h"

#include <openssl/crypto.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POLL_FIRST_MS       20    /* pause after the first answer still changing */
#define POLL_MAX_MS         2000  /* the doubling stops here */
#define POLL_RETRY_MAX_MS   10000 /* a CA's Retry-After is followed up to this */
#define POLL_SERVED_WAIT_MS 1000  /* first poll of an authz: wait this long for the fetch */
#define ALTERNATES_MAX      8

struct deployed {
    const char *type; /* static string from the methods list */
    char *domain;
    char *token;
    char *key_authz;
    char *challenge_url;
    char *authz_url;
    char *ident; /* as in the order, with "*." for wildcards */
};

/* What is kept of an authorization that was valid from the start. */
struct reused {
    char *ident;
    char *type; /* NULL when no challenge says it validated */
    long long validated;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static enum cp_code parse_json(const struct acme_response *r, const char *url, json_t **out,
                               struct cp_err *err)
{
    json_error_t jerr;
    *out = json_loadb(r->body ? r->body : "", r->body_len, 0, &jerr);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return cp_err_set(err, CP_EPROTO, "%s answered with something that is not a JSON object",
                          url);
    }
    return CP_OK;
}

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

long acme_poll_delay_ms(unsigned attempt, long retry_after_s)
{
    if (retry_after_s > 0) /* the CA's word, within reason */
        return retry_after_s > POLL_RETRY_MAX_MS / 1000 ? POLL_RETRY_MAX_MS : retry_after_s * 1000;
    long ms = POLL_FIRST_MS;
    for (unsigned i = 0; i < attempt && ms < POLL_MAX_MS; i++)
        ms *= 2;
    return ms > POLL_MAX_MS ? POLL_MAX_MS : ms;
}

/* Pause `ms` before polling the authorization of `d` again: until the
 * built-in server answered the CA's fetch of its challenge, when it does
 * (then *served is set and the pause ends early), else a plain sleep. */
static void pause_for(const struct acme_solver *solver, const struct deployed *d, bool *served,
                      long ms)
{
    if (d != NULL && solver != NULL && solver->await_served != NULL && !*served) {
        int r = solver->await_served(solver->ctx, d->type, d->domain, d->token, ms);
        *served = r == 1;
        if (r >= 0)
            return;
    }
    sleep_ms(ms);
}

/* POST-as-GET `url` until its "status" is not one of `waiting` (a NULL-ended
 * list), pausing as acme_poll_delay_ms() says within the client's deadline.
 * For an authorization, `d` is its deployed challenge and `solver` may wake
 * the wait as soon as the CA fetched it (both NULL for an order).  On CP_OK
 * *out is the last object (the caller's); on failure it is NULL. */
static enum cp_code poll_status(struct acme_client *c, const char *url, const char *const *waiting,
                                const struct acme_solver *solver, const struct deployed *d,
                                long long deadline, json_t **out, struct acme_problem *prob,
                                struct cp_err *err)
{
    *out = NULL;
    bool served = false;
    if (d != NULL) {
        /* The CA validates right after the challenge POST: an authorization
         * polled before its fetch was answered would only say "pending". */
        long long left = deadline - now_ms();
        long first = left < POLL_SERVED_WAIT_MS ? (left > 0 ? (long)left : 0) : POLL_SERVED_WAIT_MS;
        if (first > 0 && solver != NULL && solver->await_served != NULL)
            served = solver->await_served(solver->ctx, d->type, d->domain, d->token, first) == 1;
    }
    for (unsigned attempt = 0;; attempt++) {
        struct acme_response r = {0};
        enum cp_code rc = acme_post(c, url, NULL, &r, prob, err);
        if (rc == CP_OK)
            rc = parse_json(&r, url, out, err);
        long retry = acme_retry_after(r.retry_after, time(NULL));
        acme_response_clear(&r);
        if (rc != CP_OK)
            return rc;
        const char *status = jstr(*out, "status");
        bool wait = false;
        for (size_t i = 0; status != NULL && waiting[i] != NULL; i++)
            wait = wait || strcmp(status, waiting[i]) == 0;
        if (!wait)
            return CP_OK;
        long ms = acme_poll_delay_ms(attempt, retry);
        if (now_ms() + ms > deadline) {
            rc = cp_err_set(err, CP_ETIMEOUT,
                            "%s was still \"%s\" when the wait for the CA ended (after %u s)", url,
                            status, acme_client_deadline_s(c));
            json_decref(*out); /* `status` pointed into it: used above, not after */
            *out = NULL;
            return rc;
        }
        json_decref(*out);
        *out = NULL;
        pause_for(solver, d, &served, ms);
    }
}

static bool offers(const json_t *authz, const char *type, const json_t **chal)
{
    size_t i;
    json_t *ch;
    json_array_foreach(json_object_get(authz, "challenges"), i, ch)
    {
        const char *t = jstr(ch, "type");
        if (t != NULL && strcmp(t, type) == 0) {
            *chal = ch;
            return true;
        }
    }
    return false;
}

/* The problem of the failed challenge in an invalid authorization. */
static void challenge_problem(const json_t *authz, struct acme_problem *prob)
{
    size_t i;
    json_t *ch;
    struct cp_err ignored;
    json_array_foreach(json_object_get(authz, "challenges"), i, ch)
    {
        json_t *e = json_object_get(ch, "error");
        if (e == NULL)
            continue;
        char *text = json_dumps(e, JSON_COMPACT);
        if (text != NULL) {
            acme_problem_clear(prob);
            (void)acme_problem_parse(text, strlen(text), prob, &ignored);
            free(text);
        }
        return;
    }
}

static enum cp_code set_failed(struct acme_issue_result *res, const char *ident, const char *type)
{
    free(res->failed_identifier);
    free(res->failed_type);
    res->failed_identifier = strdup(ident);
    res->failed_type = type ? strdup(type) : NULL;
    return CP_OK;
}

static void deployed_free(struct deployed *d)
{
    free(d->domain);
    free(d->token);
    if (d->key_authz != NULL)
        OPENSSL_cleanse(d->key_authz, strlen(d->key_authz));
    free(d->key_authz);
    free(d->challenge_url);
    free(d->authz_url);
    free(d->ident);
}

/* Note a reused (already valid) authorization: which challenge validated
 * it and when. */
static enum cp_code note_reused(const json_t *authz, const char *ident, struct reused *out,
                                struct cp_err *err)
{
    size_t i;
    json_t *ch;
    const char *type = NULL;
    out->validated = -1;
    json_array_foreach(json_object_get(authz, "challenges"), i, ch)
    {
        const char *st = jstr(ch, "status");
        if (st != NULL && strcmp(st, "valid") == 0 && (type = jstr(ch, "type")) != NULL) {
            if (!acme_timestamp_parse(jstr(ch, "validated"), &out->validated))
                out->validated = -1;
            break;
        }
    }
    out->ident = strdup(ident);
    out->type = type ? strndup(type, 32) : NULL; /* bounded: it is the CA's string */
    if (out->ident == NULL || (type != NULL && out->type == NULL)) {
        free(out->ident);
        free(out->type);
        out->ident = out->type = NULL;
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    }
    return CP_OK;
}

static enum cp_code note_used(struct acme_issue_result *res, size_t max, const char *ident,
                              const char *type, bool reused, struct cp_err *err)
{
    if (res->authzs == NULL && (res->authzs = calloc(max, sizeof *res->authzs)) == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    if (res->nauthzs >= max)
        return CP_OK;
    struct acme_authz_used *u = &res->authzs[res->nauthzs];
    u->ident = strdup(ident);
    u->type = type ? strdup(type) : NULL;
    u->reused = reused;
    if (u->ident == NULL || (type != NULL && u->type == NULL)) {
        free(u->ident);
        free(u->type);
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    }
    res->nauthzs++;
    return CP_OK;
}

/* Case-insensitive ASCII equality, independent of the locale. */
static bool same_text(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return *a == *b;
}

/* Is the authorization's identifier (type, value, wildcard flag) one the
 * order asked for?  Matched by type and value (RFC 8555 §7.1.4, RFC 8738
 * §3): an "ip" value by its octets, a "dns" value case-insensitively, with
 * "*." for a wildcard authorization. */
static bool ident_requested(const struct acme_issue_req *req, const char *type, const char *value,
                            bool wildcard)
{
    char a[ACME_IP_MAX], b[ACME_IP_MAX];
    bool ip = strcmp(type, "ip") == 0;
    if (ip && !acme_ip_normalize(value, a))
        return false;
    if (!ip && strcmp(type, "dns") != 0)
        return false;
    for (size_t i = 0; i < req->n; i++) {
        const char *name = req->names[i];
        if (acme_ip_normalize(name, b)) {
            if (ip && !wildcard && strcmp(a, b) == 0)
                return true;
            continue;
        }
        if (ip)
            continue;
        bool star = strncmp(name, "*.", 2) == 0;
        if (star == wildcard && same_text(star ? name + 2 : name, value))
            return true;
    }
    return false;
}

/* draft-ietf-acme-dns-persist §3.1: issuerDomainNames holds 1 to 10 names of
 * at most 253 octets; clients must refuse any other challenge. */
static bool issuer_names_ok(const json_t *chal)
{
    const json_t *names = json_object_get(chal, "issuerDomainNames");
    size_t n = json_is_array(names) ? json_array_size(names) : 0;
    if (n == 0 || n > ACME_ISSUER_DOMAINS_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(names, i));
        if (s == NULL || *s == '\0' || strlen(s) > 253)
            return false;
    }
    return true;
}

/* Set up every pending authorization's challenge.  Fills `dep` (*ndep) and,
 * for authorizations already valid, `reused` (*nreused). */
static enum cp_code prepare_authzs(struct acme_client *c, const struct acme_issue_req *req,
                                   const json_t *order, struct deployed *dep, size_t *ndep,
                                   struct reused *reused, size_t *nreused,
                                   struct acme_issue_result *res, struct acme_problem *prob,
                                   struct cp_err *err)
{
    char thumb[44];
    enum cp_code rc = acme_key_thumbprint(acme_client_key(c), thumb, err);
    if (rc != CP_OK)
        return rc;

    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(order, "authorizations"), i, u)
    {
        const char *url = json_string_value(u);
        struct acme_response r = {0};
        if (i >= req->n) /* one authorization per identifier: bound what the CA lists */
            return cp_err_set(err, CP_EPROTO, "the order lists more authorizations than names");
        json_t *authz = NULL;
        if (url == NULL)
            return cp_err_set(err, CP_EPROTO, "an order lists an authorization that is no URL");
        rc = acme_post(c, url, NULL, &r, prob, err);
        if (rc == CP_OK)
            rc = parse_json(&r, url, &authz, err);
        acme_response_clear(&r);
        if (rc != CP_OK)
            return rc;

        const char *status = jstr(authz, "status");
        const char *value = jstr(json_object_get(authz, "identifier"), "value");
        const char *itype = jstr(json_object_get(authz, "identifier"), "type");
        bool wildcard = json_is_true(json_object_get(authz, "wildcard"));
        if (value == NULL || itype == NULL || status == NULL) {
            json_decref(authz);
            return cp_err_set(err, CP_EPROTO, "authorization %s lacks identifier or status", url);
        }
        char ident[300];
        snprintf(ident, sizeof ident, "%s%.260s", wildcard ? "*." : "", value);
        if (!ident_requested(req, itype, value, wildcard)) {
            /* The words first: itype points into authz. */
            rc = cp_err_set(err, CP_EPROTO,
                            "the CA sent an authorization for %.8s identifier %s, which the "
                            "order did not ask for",
                            itype, ident);
            json_decref(authz);
            return rc;
        }
        if (strcmp(status, "valid") == 0) { /* reused: nothing to prove */
            rc = note_reused(authz, ident, &reused[*nreused], err);
            json_decref(authz);
            if (rc != CP_OK)
                return rc;
            rc = note_used(res, req->n, ident, reused[*nreused].type, true, err);
            (*nreused)++;
            acme_client_say(c, "%s: already validated (authorization reused)", ident);
            if (rc != CP_OK)
                return rc;
            continue;
        }
        if (strcmp(status, "pending") != 0) {
            set_failed(res, ident, NULL);
            /* The words first: status points into authz. */
            rc = cp_err_set(err, CP_ECHALLENGE, "the authorization for %s is %s", ident, status);
            json_decref(authz);
            return rc;
        }

        const json_t *chal = NULL;
        const char *type = NULL;
        struct cp_err unfit = {0};
        for (size_t m = 0; m < req->nmethods && type == NULL; m++) {
            /* RFC 8738 §7: dns-01 (and dns-persist-01) never for an IP. */
            struct cp_err why;
            if (acme_ident_method_check(ident, req->methods[m], &why) != CP_OK) {
                if (unfit.code == CP_OK)
                    unfit = why;
                continue;
            }
            if (req->solver.supports(req->solver.ctx, req->methods[m], ident) &&
                offers(authz, req->methods[m], &chal))
                type = req->methods[m];
        }
        if (type == NULL) {
            set_failed(res, ident, NULL);
            json_decref(authz);
            if (unfit.code != CP_OK)
                return cp_err_set(err, CP_ECHALLENGE, "%s; no other configured type applies",
                                  unfit.msg);
            return cp_err_set(err, CP_ECHALLENGE,
                              "none of the configured challenge types can be used for %s "
                              "(the CA offers other types, none is set up, or CAA allows "
                              "none of those the CA offers)",
                              ident);
        }
        bool persist = strcmp(type, "dns-persist-01") == 0;
        if (persist && !issuer_names_ok(chal)) {
            json_decref(authz);
            return cp_err_set(err, CP_EPROTO,
                              "the CA sent a dns-persist-01 challenge for %s whose "
                              "issuerDomainNames is not a list of 1 to %d names: refusing it",
                              ident, ACME_ISSUER_DOMAINS_MAX);
        }
        /* draft-ietf-acme-dns-persist §3.1: no token; the record is standing. */
        const char *token = persist ? "" : jstr(chal, "token"), *curl = jstr(chal, "url");
        /* RFC 8555 §8.1: a token is base64url; it becomes a file name and a
         * URL path, so anything else is the CA breaking the protocol. */
        if (token != NULL && !persist && !acme_token_valid(token)) {
            /* The words first: the token points into authz. */
            rc = cp_err_set(err, CP_EPROTO,
                            "the CA sent a %s challenge for %s whose token is not 1 to %d "
                            "base64url characters (\"%.40s\"): refusing it",
                            type, ident, SOLVER_MAX_TOKEN, token);
            json_decref(authz);
            return rc;
        }
        if (token == NULL || curl == NULL) {
            json_decref(authz);
            return cp_err_set(err, CP_EPROTO, "a %s challenge for %s lacks token or url", type,
                              ident);
        }
        struct deployed *d = &dep[*ndep];
        memset(d, 0, sizeof *d);
        d->type = type;
        d->domain = strdup(value);
        d->token = strdup(token);
        d->key_authz = persist ? strdup("") : acme_key_authorization(token, thumb);
        d->challenge_url = strdup(curl);
        d->authz_url = strdup(url);
        d->ident = strdup(ident);
        json_decref(authz);
        if (!d->domain || !d->token || !d->key_authz || !d->challenge_url || !d->authz_url ||
            !d->ident) {
            deployed_free(d);
            return cp_err_set(err, CP_ENOMEM, "out of memory");
        }
        rc = req->solver.deploy(req->solver.ctx, type, d->domain, d->token, d->key_authz, err);
        if (rc != CP_OK) {
            set_failed(res, ident, type);
            deployed_free(d);
            return rc;
        }
        (*ndep)++;
        acme_client_say(c, "%s: %s challenge ready", ident, type);
        rc = note_used(res, req->n, ident, type, false, err);
        if (rc != CP_OK)
            return rc;
    }
    return CP_OK;
}

/* Answer every deployed challenge, then wait for each authorization. */
static enum cp_code validate(struct acme_client *c, const struct acme_solver *solver,
                             struct deployed *dep, size_t ndep, long long deadline,
                             struct acme_issue_result *res, struct acme_problem *prob,
                             struct cp_err *err)
{
    static const char *const waiting[] = {"pending", "processing", NULL};
    for (size_t i = 0; i < ndep; i++) {
        struct acme_response r = {0};
        enum cp_code rc = acme_post(c, dep[i].challenge_url, "{}", &r, prob, err);
        acme_response_clear(&r);
        if (rc != CP_OK) {
            set_failed(res, dep[i].ident, dep[i].type);
            return rc;
        }
    }
    for (size_t i = 0; i < ndep; i++) {
        json_t *authz = NULL;
        enum cp_code rc =
            poll_status(c, dep[i].authz_url, waiting, solver, &dep[i], deadline, &authz, prob, err);
        if (rc != CP_OK) {
            set_failed(res, dep[i].ident, dep[i].type);
            return rc;
        }
        const char *status = jstr(authz, "status");
        if (status == NULL || strcmp(status, "valid") != 0) {
            challenge_problem(authz, prob);
            set_failed(res, dep[i].ident, dep[i].type);
            rc = cp_err_set(err, CP_ECHALLENGE, "%s validation of %s failed: %s", dep[i].type,
                            dep[i].ident,
                            prob->detail ? prob->detail : (status ? status : "no status"));
        }
        json_decref(authz);
        if (rc != CP_OK)
            return rc;
        acme_client_say(c, "%s: validated by the CA (%s)", dep[i].ident, dep[i].type);
    }
    return CP_OK;
}

/* Download the chain at `url`, and its alternates when a preferred root is
 * named; keep the first whose top issuer CN matches, else the default. */
static enum cp_code download(struct acme_client *c, const char *url, const char *preferred,
                             struct acme_issue_result *res, struct acme_problem *prob,
                             struct cp_err *err)
{
    struct acme_response r = {0};
    enum cp_code rc = acme_post(c, url, NULL, &r, prob, err);
    if (rc != CP_OK)
        goto out;
    if (r.body == NULL || r.body_len == 0) {
        rc = cp_err_set(err, CP_EPROTO, "the certificate at %s is empty", url);
        goto out;
    }
    res->pem = strdup(r.body);
    if (res->pem == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        goto out;
    }
    if (preferred == NULL)
        goto out;

    struct acme_chain *chain = NULL;
    if (acme_chain_parse(res->pem, strlen(res->pem), url, &chain, err) != CP_OK)
        goto out; /* judged by the caller's checks */
    bool match = strcmp(acme_chain_top_issuer_cn(chain), preferred) == 0;
    acme_chain_free(chain);
    size_t pos = 0;
    char *alt = NULL;
    for (int n = 0;
         !match && n < ALTERNATES_MAX && (alt = acme_link_next(&r, "alternate", url, &pos)) != NULL;
         n++) {
        struct acme_response ar = {0};
        struct acme_problem ignored_prob = {0};
        struct cp_err ignored;
        if (acme_post(c, alt, NULL, &ar, &ignored_prob, &ignored) == CP_OK && ar.body != NULL &&
            acme_chain_parse(ar.body, ar.body_len, alt, &chain, &ignored) == CP_OK) {
            match = strcmp(acme_chain_top_issuer_cn(chain), preferred) == 0;
            acme_chain_free(chain);
            if (match) {
                char *copy = strdup(ar.body);
                if (copy != NULL) {
                    free(res->pem);
                    res->pem = copy;
                }
            }
        }
        acme_problem_clear(&ignored_prob);
        acme_response_clear(&ar);
        free(alt);
    }
out:
    acme_response_clear(&r);
    return rc;
}

static enum cp_code finalize(struct acme_client *c, const struct acme_issue_req *req,
                             const json_t *order, long long deadline, struct acme_issue_result *res,
                             struct acme_problem *prob, struct cp_err *err)
{
    static const char *const not_ready[] = {"pending", NULL};
    static const char *const processing[] = {"processing", NULL};
    unsigned char *der = NULL;
    size_t der_len = 0;
    char *csr = NULL, *payload = NULL;
    json_t *o = NULL;
    struct acme_response r = {0};
    const char *fin = jstr(order, "finalize");

    enum cp_code rc;
    if (fin == NULL) {
        rc = cp_err_set(err, CP_EPROTO, "the order %s has no finalize URL", res->order_url);
        goto out;
    }
    rc = acme_csr_make(req->cert_key, req->names, req->n, &der, &der_len, err);
    if (rc != CP_OK)
        goto out;
    csr = acme_b64url_encode(der, der_len);
    json_t *p = json_pack("{s:s}", "csr", csr ? csr : "");
    payload = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    if (csr == NULL || payload == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        goto out;
    }
    /* Every authorization is valid by now, so the order is ready (§7.1.6):
     * finalize at once.  Only if the CA disagrees, wait for "ready" and retry. */
    rc = acme_post(c, fin, payload, &r, prob, err);
    if (rc == CP_ECA && acme_problem_is(prob, "orderNotReady")) {
        rc = poll_status(c, res->order_url, not_ready, NULL, NULL, deadline, &o, prob, err);
        json_decref(o);
        o = NULL;
        if (rc == CP_OK)
            rc = acme_post(c, fin, payload, &r, prob, err);
    }
    if (rc != CP_OK)
        goto out;
    /* The answer to finalize is the order: poll only while it is processing. */
    rc = parse_json(&r, fin, &o, err);
    if (rc != CP_OK)
        goto out;
    const char *st = jstr(o, "status");
    if (st != NULL && strcmp(st, "processing") == 0) {
        json_decref(o);
        o = NULL;
        rc = poll_status(c, res->order_url, processing, NULL, NULL, deadline, &o, prob, err);
        if (rc != CP_OK)
            goto out;
    }
    const char *cert = jstr(o, "certificate");
    if (cert == NULL || strcmp(jstr(o, "status") ? jstr(o, "status") : "", "valid") != 0) {
        json_t *e = json_object_get(o, "error");
        char *text = e ? json_dumps(e, JSON_COMPACT) : NULL;
        struct cp_err ignored;
        acme_problem_clear(prob);
        if (text != NULL)
            (void)acme_problem_parse(text, strlen(text), prob, &ignored);
        free(text);
        rc = cp_err_set(err, CP_ECA, "the order %s ended \"%s\" without a certificate",
                        res->order_url, jstr(o, "status") ? jstr(o, "status") : "?");
        goto out;
    }
    res->cert_url = strdup(cert);
    rc = download(c, cert, req->preferred_chain, res, prob, err);
out:
    acme_response_clear(&r);
    json_decref(o);
    free(der);
    free(csr);
    free(payload);
    return rc;
}

/* The newOrder payload: the identifiers, `replaces` and `profile` when not
 * NULL. */
static char *order_payload(json_t *ids, const char *replaces, const char *profile)
{
    json_t *p = json_pack("{s:O}", "identifiers", ids);
    if (p != NULL && replaces != NULL && json_object_set_new(p, "replaces", json_string(replaces)))
        json_object_clear(p);
    if (p != NULL && profile != NULL && json_object_set_new(p, "profile", json_string(profile)))
        json_object_clear(p);
    char *text = p != NULL && json_object_size(p) > 0 ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    return text;
}

/* A newOrder refusal that is about `replaces` (RFC 9773 §5): the
 * predecessor was already replaced, or the CA found the field wrong (Boulder:
 * malformed for a certificate it does not know or that shares no name with
 * the order, unauthorized for one of another account, each with a detail
 * naming "replaces").  Only then is the order worth placing again without it. */
static bool refuses_replaces(const struct acme_problem *p)
{
    return acme_problem_is(p, "alreadyReplaced") ||
           ((acme_problem_is(p, "malformed") || acme_problem_is(p, "unauthorized")) &&
            p->detail != NULL && strstr(p->detail, "replaces") != NULL);
}

enum cp_code acme_issue(struct acme_client *c, const struct acme_issue_req *req,
                        struct acme_issue_result *res, struct cp_err *err)
{
    enum cp_code rc;
    struct acme_response r = {0};
    json_t *ids = json_array(), *order = NULL;
    char *payload = NULL;
    struct deployed *dep = NULL;
    struct reused *reused = NULL;
    size_t ndep = 0, nreused = 0;
    unsigned long requests0 = acme_client_requests(c);
    long long deadline = now_ms() + (long long)acme_client_deadline_s(c) * 1000;

    memset(res, 0, sizeof *res);
    if (ids == NULL || req->n == 0 || req->n > 100) {
        rc = cp_err_set(err, CP_EINVAL, "an order needs between 1 and 100 names");
        goto out;
    }
    for (size_t i = 0; i < req->n; i++) {
        /* RFC 8738 §3: an IP address goes as type "ip" in its normalized form. */
        char ip[ACME_IP_MAX];
        bool is_ip = acme_ip_normalize(req->names[i], ip);
        json_array_append_new(ids, json_pack("{s:s, s:s}", "type", is_ip ? "ip" : "dns", "value",
                                             is_ip ? ip : req->names[i]));
    }
    if (req->profile != NULL &&
        (req->profile[0] == '\0' || strlen(req->profile) > ACME_PROFILE_NAME_MAX)) {
        rc = cp_err_set(err, CP_EINVAL, "a profile name is 1 to %d characters",
                        ACME_PROFILE_NAME_MAX);
        goto out;
    }
    /* RFC 9773 §5: not sent to a CA that does not advertise ARI. */
    const char *replaces = acme_client_directory(c)->renewal_info ? req->replaces : NULL;
    payload = order_payload(ids, replaces, req->profile);
    dep = calloc(req->n, sizeof *dep);
    reused = calloc(req->n, sizeof *reused);
    if (payload == NULL || dep == NULL || reused == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        goto out;
    }

    rc = acme_post(c, acme_client_directory(c)->new_order, payload, &r, &res->problem, err);
    if (rc == CP_ECA && replaces != NULL && refuses_replaces(&res->problem)) {
        free(payload);
        payload = order_payload(ids, NULL, req->profile);
        if (payload == NULL) {
            rc = cp_err_set(err, CP_ENOMEM, "out of memory");
            goto out;
        }
        res->replaces_dropped = true;
        rc = acme_post(c, acme_client_directory(c)->new_order, payload, &r, &res->problem, err);
    }
    if (rc != CP_OK)
        goto out;
    if (r.location == NULL) {
        rc = cp_err_set(err, CP_EPROTO, "newOrder answered without the order's Location");
        goto out;
    }
    res->order_url = strdup(r.location);
    rc = parse_json(&r, "newOrder", &order, err);
    if (rc != CP_OK)
        goto out;
    acme_client_say(c, "order created for %zu name%s: %s", req->n, req->n == 1 ? "" : "s",
                    r.location);
    const char *profile = jstr(order, "profile");
    if (profile != NULL && (res->profile = strndup(profile, ACME_PROFILE_NAME_MAX)) == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        goto out;
    }

    rc = prepare_authzs(c, req, order, dep, &ndep, reused, &nreused, res, &res->problem, err);
    if (rc == CP_OK)
        rc = validate(c, &req->solver, dep, ndep, deadline, res, &res->problem, err);
    /* Challenges are cleaned up as soon as validation is over, also on failure. */
    for (size_t i = 0; i < ndep; i++) {
        req->solver.cleanup(req->solver.ctx, dep[i].type, dep[i].domain, dep[i].token,
                            dep[i].key_authz);
        deployed_free(&dep[i]);
    }
    ndep = 0;
    if (rc == CP_OK && req->before_finalize != NULL) {
        struct acme_reused_authz *view = calloc(nreused ? nreused : 1, sizeof *view);
        if (view == NULL) {
            rc = cp_err_set(err, CP_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < nreused; i++)
            view[i] = (struct acme_reused_authz){
                .ident = reused[i].ident, .type = reused[i].type, .validated = reused[i].validated};
        rc = req->before_finalize(req->before_finalize_ctx, view, nreused, err);
        free(view);
    }
    if (rc == CP_OK) {
        acme_client_say(c, "finalizing the order (the CA signs the certificate)");
        rc = finalize(c, req, order, deadline, res, &res->problem, err);
    }
    if (rc == CP_OK)
        acme_client_say(c, "certificate downloaded");
out:
    for (size_t i = 0; i < ndep; i++) {
        req->solver.cleanup(req->solver.ctx, dep[i].type, dep[i].domain, dep[i].token,
                            dep[i].key_authz);
        deployed_free(&dep[i]);
    }
    free(dep);
    for (size_t i = 0; i < nreused; i++) {
        free(reused[i].ident);
        free(reused[i].type);
    }
    free(reused);
    free(payload);
    json_decref(ids);
    json_decref(order);
    acme_response_clear(&r);
    res->requests = acme_client_requests(c) - requests0;
    return rc;
}

void acme_issue_result_clear(struct acme_issue_result *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nauthzs; i++) {
        free(r->authzs[i].ident);
        free(r->authzs[i].type);
    }
    free(r->authzs);
    free(r->order_url);
    free(r->cert_url);
    free(r->pem);
    free(r->failed_identifier);
    free(r->failed_type);
    free(r->profile);
    acme_problem_clear(&r->problem);
    memset(r, 0, sizeof *r);
}
