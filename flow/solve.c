/*
 * flow/solve.c - answering challenges: files under a webroot or the built-in
 * servers for http-01, the built-in TLS server for tls-alpn-01, a dehydrated
 * hook for dns-01 (then waiting until every authoritative nameserver of the
 * record's zone serves it, RFC 8555 §8.4), nothing for dns-persist-01 (a
 * record the operator published once).  The struct acme_solver an order
 * runs with (acme/acme.h) is made from one of these.
 */
#include "flow/flow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/file.h"
#include "hooks/hooks.h"

#define HOOK_TIMEOUT_MS 120000
#define DNS_POLL_MS     2000 /* how often the nameservers are asked */

struct flow_solver {
    struct flow_solve_opts o;
    const struct flow_log *log;
    /* directories made under each webroot (acme_webroot_write): [i] for
     * webroots[i], [nwebroots] for the default one */
    unsigned *webroot_created;
    struct acme_solver_server *http_srv, *tls_srv;
    bool (*allows)(void *ctx, const char *type, const char *ident);
    void *allows_ctx;
};

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
    acme_solver_server_stop(s->http_srv);
    acme_solver_server_stop(s->tls_srv);
    free(s->webroot_created);
    free(s);
}

enum cp_code flow_solver_start(struct flow_solver *s, const char *const *methods, size_t n,
                               struct cp_err *err)
{
    /* A read-only webroot (ProtectSystem=strict) fails before the order. */
    for (size_t i = 0; i < n && !s->o.standalone; i++) {
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
            rc = acme_http01_server_start(s->o.http_addr, s->o.http_port, &s->http_srv, err);
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

static enum cp_code deploy(void *ctx, const char *type, const char *domain, const char *token,
                           const char *key_authz, struct cp_err *err)
{
    struct flow_solver *s = ctx;
    if (strcmp(type, "http-01") == 0 && s->http_srv != NULL)
        return acme_solver_server_add(s->http_srv, token, key_authz, err);
    if (strcmp(type, "http-01") == 0) {
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
    if (strcmp(type, "http-01") == 0 && s->http_srv == NULL) {
        if (dir != NULL)
            acme_webroot_remove(dir, token, &s->webroot_created[slot]);
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
