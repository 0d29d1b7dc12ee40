/*
 * flow/webcheck.c - the webroot check: is each webroot that answers http-01
 * served at the name, as the CA will fetch it?  (See flow/flow.h.)
 *
 * The probe is a file like a challenge file, with a random name and content,
 * so that neither an old challenge file nor a cached answer can pass for it.
 * libcurl fetches it with the address pinned (CURLOPT_RESOLVE) to one the
 * configured resolvers gave, so that the check asks the server the CA will
 * ask, not whatever /etc/hosts says.  What it does not do: follow redirects,
 * or check what a CA in another network would see (a name that only resolves
 * to this host from inside passes here and fails at the CA).
 */
#include "flow/flow.h"

#include "common/file.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FETCH_TIMEOUT_MS 10000
#define BODY_MAX         4096 /* a probe is 60 bytes; more is another page */
#define PROBE_RANDOM     32   /* bytes of randomness in the name and in the content */
#define PROBE_TTL_S      120  /* a probe published in a shared store (--http-shared) */

static const char *const outcome_names[] = {
    "served",    "no_address",  "refused",       "timeout",  "connection_failed",
    "not_found", "http_status", "wrong_content", "redirect",
};

const char *flow_webcheck_outcome_name(enum flow_web_outcome o)
{
    return (size_t)o < sizeof outcome_names / sizeof outcome_names[0] ? outcome_names[o] : "?";
}

bool flow_webcheck_fails(enum flow_web_outcome o)
{
    return o != FLOW_WEB_SERVED && o != FLOW_WEB_REDIRECT;
}

enum flow_web_outcome flow_webcheck_judge(const struct flow_web_fetch *f)
{
    switch (f->transport) {
    case FLOW_WEB_T_REFUSED: return FLOW_WEB_REFUSED;
    case FLOW_WEB_T_TIMEOUT: return FLOW_WEB_TIMEOUT;
    case FLOW_WEB_T_FAILED: return FLOW_WEB_CONN_FAILED;
    case FLOW_WEB_T_OK: break;
    }
    if (f->status == 200)
        return f->body_matches ? FLOW_WEB_SERVED : FLOW_WEB_WRONG_CONTENT;
    if (f->status == 404)
        return FLOW_WEB_NOT_FOUND;
    if (f->status == 301 || f->status == 302 || f->status == 303 || f->status == 307 ||
        f->status == 308)
        return FLOW_WEB_REDIRECT;
    return FLOW_WEB_HTTP_STATUS;
}

void flow_webcheck_explain(enum flow_web_outcome o, const char *name, const char *dir,
                           const char *addr, int port, const struct flow_web_fetch *f, char *buf,
                           size_t size)
{
    const char *detail = f != NULL ? f->detail : "";
    long status = f != NULL ? f->status : 0;
    switch (o) {
    case FLOW_WEB_SERVED:
        snprintf(buf, size, "webroot check: %s serves %s (address %s, port %d)", name, dir, addr,
                 port);
        break;
    case FLOW_WEB_NO_ADDRESS:
        snprintf(buf, size,
                 "webroot check: %s does not resolve (%s): the CA cannot find it either; check "
                 "that its A/AAAA record is published and visible",
                 name, detail);
        break;
    case FLOW_WEB_REFUSED:
        snprintf(buf, size,
                 "webroot check: connection refused by %s port %d (%s): nothing listens on port "
                 "%d of %s; start the web server serving %s, or check the name's address",
                 addr, port, name, port, addr, dir);
        break;
    case FLOW_WEB_TIMEOUT:
        snprintf(buf, size,
                 "webroot check: no answer from %s port %d (%s) in time: a firewall, or an "
                 "address that is not this server's?",
                 addr, port, name);
        break;
    case FLOW_WEB_CONN_FAILED:
        snprintf(buf, size,
                 "webroot check: fetching from %s port %d (%s) failed: %s; the CA would fail "
                 "the same way",
                 addr, port, name, detail);
        break;
    case FLOW_WEB_NOT_FOUND:
        snprintf(buf, size,
                 "webroot check: %s (%s port %d) answered 404 for a file written under %s: the "
                 "server at %s does not serve %s; check the webroot (the root or alias of the "
                 "server block for %s)",
                 name, addr, port, dir, name, dir, name);
        break;
    case FLOW_WEB_HTTP_STATUS:
        snprintf(buf, size,
                 "webroot check: %s (%s port %d) answered HTTP %ld for a file written under %s: "
                 "the CA needs a plain 200 with the file's content; check the server block for "
                 "%s (access rules, authentication)",
                 name, addr, port, status, dir, name);
        break;
    case FLOW_WEB_WRONG_CONTENT:
        snprintf(buf, size,
                 "webroot check: %s (%s port %d) answered 200 but not with the file written "
                 "under %s: another server or site answers for %s; check that its address is "
                 "this server's and which server block takes the name",
                 name, addr, port, dir, name);
        break;
    case FLOW_WEB_REDIRECT:
        snprintf(buf, size,
                 "webroot check: %s (%s port %d) redirects to %s; not followed (the CA follows "
                 "redirects to http or https on ports 80 and 443): not confirmed",
                 name, addr, port, detail[0] ? detail : "(no Location)");
        break;
    }
}

const char *flow_webcheck_webroot(const struct flow_solve_opts *s, const char *const *methods,
                                  size_t nmethods, const char *name)
{
    for (size_t i = 0; i < nmethods; i++) {
        if (strcmp(methods[i], "http-01") == 0) {
            if (s->http_shared)
                return strncmp(name, "*.", 2) != 0 ? FLOW_WEBCHECK_SHARED : NULL;
            if (s->standalone)
                return NULL; /* the built-in server answers */
            const char *dir = s->webroot;
            for (size_t k = 0; k < s->nwebroots; k++)
                if (strcmp(s->webroot_names[k], name) == 0)
                    dir = s->webroots[k];
            if (dir != NULL && strncmp(name, "*.", 2) != 0)
                return dir;
        } else if (strcmp(methods[i], "dns-01") == 0 && s->dns_hook != NULL) {
            return NULL;
        } else if (strcmp(methods[i], "tls-alpn-01") == 0 && s->standalone &&
                   strncmp(name, "*.", 2) != 0) {
            return NULL;
        }
    }
    return NULL;
}

void flow_webcheck_result_free(struct flow_webcheck_result *r)
{
    if (r == NULL)
        return;
    free(r->items);
    free(r);
}

/* --------------------------------------------------------------- fetch */

struct body {
    char buf[BODY_MAX + 1];
    size_t len;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct body *b = ctx;
    size_t n = size * nmemb;
    if (n > BODY_MAX - b->len)
        return 0; /* too long for a probe: stop (CURLE_WRITE_ERROR) */
    memcpy(b->buf + b->len, data, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return n;
}

/* The body without trailing white space, as a CA compares it. */
static bool body_is(struct body *b, const char *content)
{
    while (b->len > 0 && strchr(" \t\r\n", b->buf[b->len - 1]) != NULL)
        b->buf[--b->len] = '\0';
    return b->len == strlen(content) && memcmp(b->buf, content, b->len) == 0;
}

/* GET `url` from `addr` (pinned for `name`:`port`) into `f`; CP_ENOMEM or
 * CP_EINTERNAL when libcurl cannot be set up, else CP_OK (the result is in f). */
static enum cp_code fetch(const char *name, int port, const char *addr, const char *url,
                          const char *content, unsigned timeout_ms, struct flow_web_fetch *f,
                          struct cp_err *err)
{
    char pin[CAA_IDENT_MAX + 96];
    struct body *body = calloc(1, sizeof *body);
    CURL *h = curl_easy_init();
    struct curl_slist *resolve = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    enum cp_code rc = CP_OK;

    memset(f, 0, sizeof *f);
    snprintf(pin, sizeof pin, strchr(addr, ':') ? "%s:%d:[%s]" : "%s:%d:%s", name, port, addr);
    /* An IP identifier is its own address: nothing to pin. */
    bool literal = strcmp(name, addr) == 0;
    if (body == NULL || h == NULL ||
        (!literal && (resolve = curl_slist_append(NULL, pin)) == NULL)) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory for the webroot check");
        goto out;
    }
    CURLcode c = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (c == CURLE_OK)                                                                         \
            c = curl_easy_setopt(h, opt, val);                                                     \
    } while (0)
    SET(CURLOPT_URL, url);
    if (resolve != NULL)
        SET(CURLOPT_RESOLVE, resolve);
    SET(CURLOPT_PROTOCOLS_STR, "http");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_NOPROXY, "*"); /* the CA connects directly */
    SET(CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_USERAGENT, "certpilot webroot check");
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, body);
    SET(CURLOPT_ERRORBUFFER, errbuf);
#undef SET
    if (c != CURLE_OK) {
        rc = cp_err_set(err, CP_EINTERNAL, "webroot check: libcurl: %s", curl_easy_strerror(c));
        goto out;
    }
    c = curl_easy_perform(h);
    long os_errno = 0, status = 0;
    curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (c == CURLE_OK || (c == CURLE_WRITE_ERROR && status > 0)) {
        f->transport = FLOW_WEB_T_OK;
        f->status = status;
        f->body_matches = c == CURLE_OK && body_is(body, content);
        char *location = NULL;
        if (curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &location) == CURLE_OK && location != NULL)
            snprintf(f->detail, sizeof f->detail, "%s", location);
    } else if (c == CURLE_COULDNT_CONNECT && os_errno == ECONNREFUSED) {
        f->transport = FLOW_WEB_T_REFUSED;
    } else if (c == CURLE_OPERATION_TIMEDOUT) {
        f->transport = FLOW_WEB_T_TIMEOUT;
    } else {
        f->transport = FLOW_WEB_T_FAILED;
        snprintf(f->detail, sizeof f->detail, "%s", errbuf[0] ? errbuf : curl_easy_strerror(c));
    }
out:
    curl_slist_free_all(resolve);
    if (h != NULL)
        curl_easy_cleanup(h);
    free(body);
    return rc;
}

/* ------------------------------------------------------------------ run */

/* A random base64url string of PROBE_RANDOM bytes (heap). */
static char *random_text(void)
{
    unsigned char bytes[PROBE_RANDOM];
    if (RAND_bytes(bytes, sizeof bytes) != 1)
        return NULL;
    return acme_b64url_encode(bytes, sizeof bytes);
}

/* --http-shared: the same outcomes, said in terms of the fleet's
 * responders (certpilot serve-challenges) rather than of a webroot. */
static void explain_shared(enum flow_web_outcome o, const char *name, const char *addr, int port,
                           const struct flow_web_fetch *f, char *buf, size_t size)
{
    switch (o) {
    case FLOW_WEB_SERVED:
        snprintf(buf, size,
                 "webroot check: %s answers from the shared store (address %s, port %d): a "
                 "fleet responder serves it",
                 name, addr, port);
        break;
    case FLOW_WEB_REFUSED:
        snprintf(buf, size,
                 "webroot check: connection refused by %s port %d (%s): no fleet responder "
                 "listens there; run `certpilot serve-challenges --store ...` on the hosts %s "
                 "resolves to (or proxy /.well-known/acme-challenge/ to one)",
                 addr, port, name, name);
        break;
    case FLOW_WEB_NOT_FOUND:
        snprintf(buf, size,
                 "webroot check: %s (%s port %d) answered 404 for a probe published in the "
                 "shared store: what answers there is not a fleet responder reading this store "
                 "(check its --store URL and prefix)",
                 name, addr, port);
        break;
    case FLOW_WEB_WRONG_CONTENT:
        snprintf(buf, size,
                 "webroot check: %s (%s port %d) answered 200 but not with the probe published "
                 "in the shared store: another server answers for %s",
                 name, addr, port, name);
        break;
    default: flow_webcheck_explain(o, name, FLOW_WEBCHECK_SHARED, addr, port, f, buf, size); break;
    }
}

/* One name: probe written, fetched from its first address (and the first
 * IPv4 one when an IPv6 address cannot be reached), removed. */
static enum cp_code check_one(const struct flow_webcheck_opts *o, const struct flow_solve_opts *s,
                              struct flow_webcheck_item *it, struct cp_err *err)
{
    struct caa_ns *addrs = NULL;
    size_t naddrs = 0;
    struct flow_web_fetch f = {0};
    struct cp_err derr = {0};
    char *token = random_text(), *rnd = random_text();
    char content[128], url[CAA_IDENT_MAX + 200];
    unsigned created = 0;
    int port = o->port > 0 ? o->port : 80;
    unsigned timeout = o->timeout_ms ? o->timeout_ms : FETCH_TIMEOUT_MS;
    enum cp_code rc = CP_OK;

    if (token == NULL || rnd == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory (or no randomness) for the webroot check");
        goto out;
    }
    if (!s->http_shared && cp_path_readonly(it->dir)) {
        /* ProtectSystem=strict: said first, whatever DNS says */
        cp_err_set(err, CP_EIO, "webroot %s: cannot write the http-01 challenge files", it->dir);
        cp_err_readonly(err, it->dir);
        rc = CP_EIO;
        goto out;
    }
    snprintf(content, sizeof content, "certpilot-webroot-check.%s", rnd);
    /* RFC 8738 §7: the CA connects to an IP identifier itself, no DNS. */
    bool ip = acme_ip_normalize(it->name, NULL);
    snprintf(url, sizeof url,
             ip && strchr(it->name, ':') ? "http://[%s]:%d/.well-known/acme-challenge/%s"
                                         : "http://%s:%d/.well-known/acme-challenge/%s",
             it->name, port, token);
    if (ip) {
        if ((addrs = calloc(1, sizeof *addrs)) == NULL) {
            rc = cp_err_set(err, CP_ENOMEM, "out of memory for the webroot check");
            goto out;
        }
        snprintf(addrs[0].addr, sizeof addrs[0].addr, "%.*s", ACME_IP_MAX, it->name);
        naddrs = 1;
    } else if (caa_addresses(&s->resolvers, it->name, &addrs, &naddrs, &derr) != CP_OK) {
        if (derr.code != CP_ENET && derr.code != CP_EPROTO) {
            rc = cp_err_set(err, derr.code, "webroot check: %s", derr.msg);
            goto out;
        }
        it->outcome = FLOW_WEB_NO_ADDRESS;
        snprintf(f.detail, sizeof f.detail, "%.250s", derr.msg);
        goto said;
    }
    if (s->http_shared)
        rc = store_challenge_publish(s->store, token, content, PROBE_TTL_S, err);
    else
        rc = acme_webroot_write(it->dir, token, content, &created, err);
    if (rc != CP_OK)
        goto out;
    size_t pick = 0;
    for (;;) {
        snprintf(it->addr, sizeof it->addr, "%s", addrs[pick].addr);
        rc = fetch(it->name, port, it->addr, url, content, timeout, &f, err);
        if (rc != CP_OK)
            break;
        it->outcome = flow_webcheck_judge(&f);
        /* An IPv6 address that cannot be reached: the CA tries IPv4 next. */
        bool transport = f.transport != FLOW_WEB_T_OK;
        size_t next = pick + 1;
        while (next < naddrs && strchr(addrs[next].addr, ':') != NULL)
            next++;
        if (!transport || strchr(it->addr, ':') == NULL || next >= naddrs)
            break;
        pick = next;
    }
    if (s->http_shared) {
        struct cp_err werr = {0};
        (void)store_challenge_withdraw(s->store, token, &werr); /* else its lease ends it */
    } else {
        acme_webroot_remove(it->dir, token, &created);
    }
    if (rc != CP_OK)
        goto out;
said:
    if (s->http_shared)
        explain_shared(it->outcome, it->name, it->addr, port, &f, it->message, sizeof it->message);
    else
        flow_webcheck_explain(it->outcome, it->name, it->dir, it->addr, port, &f, it->message,
                              sizeof it->message);
out:
    free(addrs);
    free(token);
    free(rnd);
    return rc;
}

enum cp_code flow_webcheck_run(const struct flow_webcheck_opts *o, const struct flow_solve_opts *s,
                               const char *const *names, size_t n, const char *const *methods,
                               size_t nmethods, const struct flow_log *log,
                               struct flow_webcheck_result **out, struct cp_err *err)
{
    struct flow_webcheck_result *r = calloc(1, sizeof *r);
    *out = NULL;
    if (r == NULL || (r->items = calloc(n ? n : 1, sizeof *r->items)) == NULL) {
        free(r);
        return cp_err_set(err, CP_ENOMEM, "out of memory for the webroot check");
    }
    *out = r;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return cp_err_set(err, CP_EINTERNAL, "webroot check: libcurl cannot be initialized");
    enum cp_code rc = CP_OK;
    char failed[300] = "";
    for (size_t i = 0; rc == CP_OK && i < n; i++) {
        const char *dir = flow_webcheck_webroot(s, methods, nmethods, names[i]);
        if (dir == NULL)
            continue;
        struct flow_webcheck_item *it = &r->items[r->n];
        snprintf(it->name, sizeof it->name, "%s", names[i]);
        it->dir = dir;
        rc = check_one(o, s, it, err);
        if (rc != CP_OK)
            break;
        r->n++;
        bool fails = flow_webcheck_fails(it->outcome);
        flow_say(log,
                 fails                              ? FLOW_ERR
                 : it->outcome == FLOW_WEB_REDIRECT ? FLOW_WARNING
                                                    : FLOW_INFO,
                 "%s", it->message);
        if (fails && r->failed++ < 4) {
            size_t len = strlen(failed);
            snprintf(failed + len, sizeof failed - len, "%s%s", len ? ", " : "", it->name);
        }
    }
    curl_global_cleanup();
    if (rc == CP_OK && r->failed > 0)
        rc = cp_err_set(err, CP_ECHALLENGE,
                        "the webroot check failed for %s%s (above): the CA's http-01 validation "
                        "would fail the same way, so nothing was sent to it (--no-webroot-check "
                        "skips this check, e.g. behind a load balancer)",
                        failed, r->failed > 4 ? ", ..." : "");
    return rc;
}
