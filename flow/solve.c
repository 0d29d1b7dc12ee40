/*
 * flow/solve.c - answering challenges: files under a webroot or the built-in
 * servers for http-01, the built-in TLS server for tls-alpn-01, a dehydrated
 * hook for dns-01 (then waiting until every authoritative nameserver of the
 * record's zone serves it, RFC 8555 §8.4), nothing for dns-persist-01 (a
 * record the operator published once).  The struct acme_solver an order
 * runs with (acme/acme.h) is made from one of these.
 *
 * With a store a fleet shares, every http-01 key authorization is also
 * published there (PREFIX/challenges/http-01/TOKEN under a lease) before
 * the CA is told, and withdrawn after: the CA may reach any host of the
 * fleet behind the name, and each host's responder (the built-in server of
 * --standalone, or `certpilot serve-challenges`) looks up the tokens it was
 * not given there.  --http-shared leaves http-01 to those responders alone.
 */
#include "flow/flow.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/file.h"
#include "hooks/hooks.h"

#define HOOK_TIMEOUT_MS 120000
#define DNS_POLL_MS     2000 /* how often the nameservers are asked */
#define SHARED_TTL_S    900  /* a published key authorization's default life */

/* The look-up of a built-in http-01 server in a shared store.  One store
 * handle is used by one thread at a time: the server's look-up threads take
 * turns (each look-up is bounded by the store's request time-out). */
struct shared_lookup {
    pthread_mutex_t mu;
    struct cp_store *st;
    void (*served)(void *ctx, const char *token);
    void *ctx;
};

static enum cp_code lookup_find(void *ctx, const char *token, char **key_authz, struct cp_err *err)
{
    struct shared_lookup *lk = ctx;
    pthread_mutex_lock(&lk->mu);
    enum cp_code rc = store_challenge_lookup(lk->st, token, key_authz, err);
    pthread_mutex_unlock(&lk->mu);
    return rc;
}

static void lookup_served(void *ctx, const char *token, bool looked_up)
{
    const struct shared_lookup *lk = ctx;
    (void)looked_up;
    if (lk->served != NULL)
        lk->served(lk->ctx, token);
}

struct flow_solver {
    struct flow_solve_opts o;
    const struct flow_log *log;
    /* directories made under each webroot (acme_webroot_write): [i] for
     * webroots[i], [nwebroots] for the default one */
    unsigned *webroot_created;
    struct acme_solver_server *http_srv, *tls_srv;
    bool (*allows)(void *ctx, const char *type, const char *ident);
    void *allows_ctx;
    struct shared_lookup lookup; /* the http-01 server's, when lookup_store is shared */
    bool lookup_init;
};

/* Is there a store shared by a fleet to publish http-01 answers in? */
static bool shared(const struct flow_solver *s)
{
    return s->o.store != NULL && store_shared(s->o.store);
}

enum cp_code flow_solver_new(const struct flow_solve_opts *o, const struct flow_log *log,
                             struct flow_solver **out, struct cp_err *err)
{
    *out = calloc(1, sizeof **out);
    if (*out == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    (*out)->o = *o;
    (*out)->log = log;
    (*out)->webroot_created = calloc(o->nwebroots + 1, sizeof *(*out)->webroot_created);
    if ((*out)->webroot_created == NULL) {
        free(*out);
        *out = NULL;
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    }
    return CP_OK;
}

void flow_solver_free(struct flow_solver *s)
{
    if (s == NULL)
        return;
    acme_solver_server_stop(s->http_srv); /* waits for its look-ups */
    acme_solver_server_stop(s->tls_srv);
    if (s->lookup_init)
        pthread_mutex_destroy(&s->lookup.mu);
    free(s->webroot_created);
    free(s);
}

/* The built-in http-01 server; with a shared look-up store, it answers the
 * fleet's other tokens too. */
static enum cp_code start_http(struct flow_solver *s, struct cp_err *err)
{
    struct cp_store *lst = s->o.lookup_store;
    if (lst == NULL || !store_shared(lst))
        return acme_http01_server_start(s->o.http_addr, s->o.http_port, &s->http_srv, err);
    if (!s->lookup_init) {
        if (pthread_mutex_init(&s->lookup.mu, NULL) != 0)
            return cp_err_set(err, CP_EIO, "cannot create a mutex");
        s->lookup_init = true;
    }
    s->lookup.st = lst;
    const struct acme_http01_lookup lk = {
        .find = lookup_find, .served = lookup_served, .ctx = &s->lookup};
    return acme_http01_server_start_lookup(s->o.http_addr, s->o.http_port, &lk, &s->http_srv, err);
}

enum cp_code flow_solver_start(struct flow_solver *s, const char *const *methods, size_t n,
                               struct cp_err *err)
{
    if (s->o.http_shared && !shared(s))
        return cp_err_set(err, CP_ESETUP,
                          "--http-shared answers http-01 through a store the fleet shares: "
                          "give --store etcd://...");
    /* A read-only webroot (ProtectSystem=strict) fails before the order. */
    for (size_t i = 0; i < n && !s->o.standalone && !s->o.http_shared; i++) {
        if (strcmp(methods[i], "http-01") != 0)
            continue;
        for (size_t j = 0; j <= s->o.nwebroots; j++) {
            const char *dir = j < s->o.nwebroots ? s->o.webroots[j] : s->o.webroot;
            if (dir != NULL && cp_path_readonly(dir)) {
                cp_err_set(err, CP_EIO, "webroot %s: cannot write the http-01 challenge files",
                           dir);
                cp_err_readonly(err, dir);
                return CP_EIO;
            }
        }
    }
    for (size_t i = 0; i < n && s->o.standalone; i++) {
        enum cp_code rc = CP_OK;
        if (strcmp(methods[i], "http-01") == 0 && s->http_srv == NULL)
            rc = start_http(s, err);
        else if (strcmp(methods[i], "tls-alpn-01") == 0 && s->tls_srv == NULL)
            rc = acme_tlsalpn01_server_start(s->o.tls_addr, s->o.tls_port, &s->tls_srv, err);
        if (rc != CP_OK)
            return rc;
    }
    return CP_OK;
}

void flow_solver_filter(struct flow_solver *s,
                        bool (*allows)(void *ctx, const char *type, const char *ident), void *ctx)
{
    s->allows = allows;
    s->allows_ctx = ctx;
}

/* The webroot of identifier `domain` (NULL: none) and, in *slot, the index
 * of its directories' record: the first entry with the same directory, so
 * names sharing a webroot share it. */
static const char *webroot_of(const struct flow_solver *s, const char *domain, size_t *slot)
{
    const char *dir = s->o.webroot;
    for (size_t i = 0; i < s->o.nwebroots; i++)
        if (strcmp(s->o.webroot_names[i], domain) == 0)
            dir = s->o.webroots[i];
    *slot = s->o.nwebroots;
    for (size_t i = 0; dir != NULL && i < s->o.nwebroots; i++)
        if (strcmp(s->o.webroots[i], dir) == 0) {
            *slot = i;
            break;
        }
    return dir;
}

/* --dry-run: every webroot in use can take the challenge files. */
static enum cp_code check_webroots(const struct flow_solver *s, char *what, size_t size,
                                   struct cp_err *err)
{
    size_t n = s->o.nwebroots + 1, used = 0;
    for (size_t i = 0; i < n; i++) {
        const char *dir = i < s->o.nwebroots ? s->o.webroots[i] : s->o.webroot;
        bool seen = dir == NULL;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(s->o.webroots[j], dir) == 0;
        if (seen)
            continue;
        used++;
        snprintf(what, size, "webroot %s is writable", dir);
        enum cp_code rc = acme_webroot_check(dir, err);
        if (rc != CP_OK) {
            cp_err_readonly(err, dir);
            return rc;
        }
    }
    if (used > 1)
        snprintf(what, size, "%zu webroots are writable", used);
    else if (used == 0)
        return cp_err_set(err, CP_EINVAL, "no webroot given");
    return CP_OK;
}

enum cp_code flow_solver_check(const struct flow_solver *s, const char *method, char *what,
                               size_t size, struct cp_err *err)
{
    if (strcmp(method, "dns-persist-01") == 0) {
        snprintf(what, size, "dns-persist-01 needs nothing deployed (a standing record)");
        return CP_OK;
    }
    if (strcmp(method, "dns-01") == 0) {
        snprintf(what, size, "dns-01 hook %s is executable", s->o.dns_hook);
        return hook_check_executable(s->o.dns_hook, err);
    }
    if (strcmp(method, "http-01") == 0 && s->o.http_shared) {
        /* The store answers (nothing is published): the fleet's responders
         * are checked by the webroot check. */
        char *ka = NULL;
        snprintf(what, size, "the shared store %s answers (http-01 by the fleet's responders)",
                 s->o.store ? store_where(s->o.store) : "(none)");
        if (!shared(s))
            return cp_err_set(err, CP_ESETUP, "--http-shared needs a shared store (--store)");
        enum cp_code rc = store_challenge_lookup(s->o.store, "certpilot-dry-run", &ka, err);
        free(ka);
        return rc;
    }
    if (!s->o.standalone) /* http-01 through webroots */
        return check_webroots(s, what, size, err);
    bool http = strcmp(method, "http-01") == 0;
    int port = http ? s->o.http_port : s->o.tls_port;
    snprintf(what, size, "%s port %d can be bound", method, port);
    return acme_port_check(http ? s->o.http_addr : s->o.tls_addr, port, err);
}

static bool supports(void *ctx, const char *type, const char *ident)
{
    const struct flow_solver *s = ctx;
    if (s->allows != NULL && !s->allows(s->allows_ctx, type, ident))
        return false;
    size_t slot;
    if (strcmp(type, "http-01") == 0 && s->o.http_shared)
        return shared(s) && strncmp(ident, "*.", 2) != 0;
    if (strcmp(type, "http-01") == 0)
        return s->http_srv != NULL || webroot_of(s, ident, &slot) != NULL;
    if (strcmp(type, "tls-alpn-01") == 0)
        return s->tls_srv != NULL;
    if (strcmp(type, "dns-01") == 0)
        return s->o.dns_hook != NULL;
    /* draft-ietf-acme-dns-persist: the record stands; the check before the
     * order (flow/persist.c) has seen every nameserver serve it. */
    if (strcmp(type, "dns-persist-01") == 0)
        return true;
    return false;
}

/* Each line of `text` as its own debug line after `prefix`. */
static void say_lines(const struct flow_log *log, const char *prefix, const char *text)
{
    while (text != NULL && *text) {
        size_t n = strcspn(text, "\n");
        flow_say(log, FLOW_DEBUG, "%s%.*s", prefix, (int)n, text);
        text += n + (text[n] == '\n');
    }
}

static enum cp_code run_dns_hook(const struct flow_solver *s, const char *command,
                                 const char *domain, const char *token, const char *key_authz,
                                 struct cp_err *err)
{
    char txt[44];
    struct hook_result hr = {0};
    enum cp_code rc = acme_dns01_txt(key_authz, txt, err);
    if (rc != CP_OK)
        return rc;
    const char *args[] = {domain, token, txt};
    rc = hook_dehydrated(s->o.dns_hook, command, args, 3, NULL, HOOK_TIMEOUT_MS, &hr, err);
    if (rc == CP_OK && !hook_succeeded(&hr)) {
        char how[48];
        if (hr.timed_out)
            snprintf(how, sizeof how, "timed out");
        else if (hr.exit_status >= 0)
            snprintf(how, sizeof how, "exited with status %d", hr.exit_status);
        else
            snprintf(how, sizeof how, "was killed by signal %d", hr.term_signal);
        /* The challenge cannot be answered: a challenge failure. */
        rc = cp_err_set(err, CP_ECHALLENGE, "dns hook %s %s %s %s%s%.*s", s->o.dns_hook, command,
                        domain, how, hr.output_len ? "; it said: " : "",
                        (int)strcspn(hr.output ? hr.output : "", "\n"), hr.output ? hr.output : "");
    } else if (rc == CP_OK && hr.output_len) {
        say_lines(s->log, "dns hook: ", hr.output);
    }
    hook_result_clear(&hr);
    return rc;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* RFC 8555 §8.4: the CA may ask any authoritative server of the zone, so wait
 * until all of them serve the value the hook published. */
static enum cp_code wait_published(const struct flow_solver *s, const char *domain,
                                   const char *key_authz, struct cp_err *err)
{
    char txt[44], name[CAA_NAME_MAX + 1], zone[CAA_NAME_MAX + 1], target[CAA_NAME_MAX + 1];
    struct caa_ns *ns = NULL;
    size_t nns = 0;
    struct timespec t0;

    if (s->o.dns_timeout_ms == 0)
        return CP_OK;
    enum cp_code rc = acme_dns01_txt(key_authz, txt, err);
    if (rc != CP_OK)
        return rc;
    int n = snprintf(name, sizeof name, "_acme-challenge.%s", domain);
    if (n < 0 || (size_t)n >= sizeof name)
        return cp_err_set(err, CP_EINVAL, "_acme-challenge.%s is longer than %d octets", domain,
                          CAA_NAME_MAX);
    rc = caa_zone_servers(&s->o.resolvers, name, zone, target, &ns, &nns, err);
    if (rc != CP_OK)
        return rc;
    const char *zname = zone[0] ? zone : ".";
    bool alias = strcmp(target, name) != 0;
    flow_say(s->log, FLOW_DEBUG, "waiting for %zu nameserver%s of %s to serve %s%s%s", nns,
             nns == 1 ? "" : "s", zname, name, alias ? ", an alias of " : "", alias ? target : "");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = caa_txt_wait(ns, nns, s->o.authoritative_port, target, txt, s->o.dns_timeout_ms,
                      DNS_POLL_MS, err);
    if (rc == CP_OK)
        flow_say(s->log, FLOW_DEBUG, "all %zu nameserver%s of %s serve %s (%.1f s)", nns,
                 nns == 1 ? "" : "s", zname, name, seconds_since(&t0));
    free(ns);
    return rc;
}

/* http-01 answered here: the built-in server or a webroot. */
static enum cp_code deploy_http_local(struct flow_solver *s, const char *domain, const char *token,
                                      const char *key_authz, struct cp_err *err)
{
    if (s->http_srv != NULL)
        return acme_solver_server_add(s->http_srv, token, key_authz, err);
    size_t slot;
    const char *dir = webroot_of(s, domain, &slot);
    if (dir == NULL)
        return cp_err_set(err, CP_EINVAL, "no webroot for %s", domain);
    flow_say(s->log, FLOW_DEBUG, "http-01 for %s: webroot %s", domain, dir);
    enum cp_code rc = acme_webroot_write(dir, token, key_authz, &s->webroot_created[slot], err);
    if (rc == CP_EIO)
        cp_err_readonly(err, dir);
    return rc;
}

static void withdraw(const struct flow_solver *s, const char *domain, const char *token)
{
    struct cp_err err = {0};
    if (store_challenge_withdraw(s->o.store, token, &err) != CP_OK)
        flow_say(s->log, FLOW_WARNING,
                 "withdrawing the http-01 answer for %s from the shared store: %s (it goes "
                 "when its lease ends)",
                 domain, err.msg);
}

/* http-01 with a shared store: published for every responder of the fleet
 * first, then (unless --http-shared) answered here too. */
static enum cp_code deploy_http(struct flow_solver *s, const char *domain, const char *token,
                                const char *key_authz, struct cp_err *err)
{
    if (!shared(s)) {
        if (s->o.http_shared) /* flow_solver_start() refused it already */
            return cp_err_set(err, CP_ESETUP, "--http-shared needs a shared store (--store)");
        return deploy_http_local(s, domain, token, key_authz, err);
    }
    unsigned ttl = s->o.shared_ttl_s ? s->o.shared_ttl_s : SHARED_TTL_S;
    enum cp_code rc = store_challenge_publish(s->o.store, token, key_authz, ttl, err);
    if (rc != CP_OK)
        return rc;
    flow_say(s->log, FLOW_DEBUG, "http-01 for %s: published in the shared store %s (%u s)", domain,
             store_where(s->o.store), ttl);
    if (s->o.http_shared)
        return CP_OK;
    rc = deploy_http_local(s, domain, token, key_authz, err);
    if (rc != CP_OK) /* a failed deploy is not cleaned up by the order */
        withdraw(s, domain, token);
    return rc;
}

static enum cp_code deploy(void *ctx, const char *type, const char *domain, const char *token,
                           const char *key_authz, struct cp_err *err)
{
    struct flow_solver *s = ctx;
    if (strcmp(type, "http-01") == 0)
        return deploy_http(s, domain, token, key_authz, err);
    if (strcmp(type, "tls-alpn-01") == 0)
        return acme_solver_server_add(s->tls_srv, domain, key_authz, err);
    if (strcmp(type, "dns-persist-01") == 0) {
        flow_say(s->log, FLOW_DEBUG, "dns-persist-01 for %s: the standing record answers", domain);
        return CP_OK;
    }
    /* dns-01 */
    enum cp_code rc = run_dns_hook(s, "deploy_challenge", domain, token, key_authz, err);
    if (rc != CP_OK)
        return rc;
    rc = wait_published(s, domain, key_authz, err);
    if (rc != CP_OK) {
        /* A failed deploy is not cleaned up by the order: take the record
         * back here. */
        struct cp_err cerr = {0};
        if (run_dns_hook(s, "clean_challenge", domain, token, key_authz, &cerr) != CP_OK)
            flow_say(s->log, FLOW_ERR, "cleaning up the dns-01 challenge for %s: %s", domain,
                     cerr.msg);
    }
    return rc;
}

static void cleanup(void *ctx, const char *type, const char *domain, const char *token,
                    const char *key_authz)
{
    struct flow_solver *s = ctx;
    struct cp_err err = {0};
    size_t slot;
    const char *dir = strcmp(type, "http-01") == 0 ? webroot_of(s, domain, &slot) : NULL;
    if (strcmp(type, "http-01") == 0) {
        if (s->http_srv == NULL && !s->o.http_shared && dir != NULL)
            acme_webroot_remove(dir, token, &s->webroot_created[slot]);
        if (shared(s))
            withdraw(s, domain, token);
    } else if (strcmp(type, "dns-01") == 0 &&
               run_dns_hook(s, "clean_challenge", domain, token, key_authz, &err) != CP_OK)
        flow_say(s->log, FLOW_ERR, "cleaning up the dns-01 challenge for %s: %s", domain, err.msg);
    /* Built-in servers forget everything when they stop. */
}

/* Challenges answered by a built-in server wake the order as soon as the CA
 * fetched them; for the others (webroot, DNS) the order keeps its schedule. */
static int await_served(void *ctx, const char *type, const char *domain, const char *token, long ms)
{
    struct flow_solver *s = ctx;
    if (strcmp(type, "http-01") == 0 && s->http_srv != NULL)
        return acme_solver_server_await(s->http_srv, token, ms) ? 1 : 0;
    if (strcmp(type, "tls-alpn-01") == 0 && s->tls_srv != NULL)
        return acme_solver_server_await(s->tls_srv, domain, ms) ? 1 : 0;
    return -1;
}

struct acme_solver flow_solver_acme(struct flow_solver *s)
{
    return (struct acme_solver){.supports = supports,
                                .deploy = deploy,
                                .cleanup = cleanup,
                                .await_served = await_served,
                                .ctx = s};
}

/* ------------------------------------------------- serve-challenges */

struct flow_responder {
    struct shared_lookup lookup;
    struct acme_solver_server *srv;
};

enum cp_code flow_responder_start(struct cp_store *st, const char *addr, int port,
                                  void (*served)(void *ctx, const char *token), void *ctx,
                                  struct flow_responder **out, struct cp_err *err)
{
    *out = NULL;
    if (st == NULL || !store_shared(st))
        return cp_err_set(err, CP_ESETUP,
                          "serving http-01 challenges for a fleet needs a store it shares: give "
                          "--store etcd://...");
    struct flow_responder *r = calloc(1, sizeof *r);
    if (r == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    if (pthread_mutex_init(&r->lookup.mu, NULL) != 0) {
        free(r);
        return cp_err_set(err, CP_EIO, "cannot create a mutex");
    }
    r->lookup.st = st;
    r->lookup.served = served;
    r->lookup.ctx = ctx;
    const struct acme_http01_lookup lk = {
        .find = lookup_find, .served = lookup_served, .ctx = &r->lookup};
    enum cp_code rc = acme_http01_server_start_lookup(addr, port, &lk, &r->srv, err);
    if (rc != CP_OK) {
        pthread_mutex_destroy(&r->lookup.mu);
        free(r);
        return rc;
    }
    *out = r;
    return CP_OK;
}

void flow_responder_stop(struct flow_responder *r)
{
    if (r == NULL)
        return;
    acme_solver_server_stop(r->srv);
    pthread_mutex_destroy(&r->lookup.mu);
    free(r);
}
