/*
 * acme/http.c - the HTTPS transport under ACME: one libcurl easy handle per
 * struct acme_http, reused so that requests share a connection (keep-alive,
 * HTTP/2 over TLS).  It captures the body (bounded) and the few headers ACME
 * uses, and parses RFC 8288 Link values.  It does not interpret statuses,
 * problem documents or nonces: that is the protocol layer's job.
 *
 * Security choices:
 * - TLS peer and host verification are never turned off.  A CA bundle
 *   replaces the system store (CURLOPT_CAINFO, no CAPATH); with opts.ca_system
 *   the system's hashed directory (CAPATH = /etc/ssl/certs) is trusted as
 *   well, which OpenSSL consults lazily, certificate by certificate.  The
 *   bundle is read once in acme_http_new, so a bad file fails early.
 * - The trust store is built once per handle, not per connection: libcurl
 *   (>= 7.87) keeps the parsed CAINFO store for CURLOPT_CA_CACHE_TIMEOUT, which
 *   is set to a day.  No CURLOPT_SSL_CTX_FUNCTION: it would turn the cache off.
 * - RFC 8555 §6.1 requires HTTPS.  Plain http is accepted only to 127.0.0.1,
 *   [::1] and localhost (test servers on loopback); other http URLs are
 *   refused before any network use.  Redirects are never followed: ACME does
 *   not use them, and a Location on a 201 is data, not a redirect.
 * - Response bodies are capped (opts.max_response), each header line at
 *   8 KiB and all header lines of a request at 64 KiB.
 */
#include "acme/acme.h"

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define DEFAULT_TIMEOUT_MS         30000L
#define DEFAULT_MAX_RESPONSE       ((size_t)1 << 20)
#define MAX_HEADER_LINE            8192u
#define MAX_HEADER_TOTAL           65536u
#define SYSTEM_CAPATH              "/etc/ssl/certs"
#define CA_CACHE_S                 86400L

enum http_fail {
    FAIL_NONE = 0,
    FAIL_BODY_TOO_LARGE,
    FAIL_HEADER_LINE,
    FAIL_HEADERS_TOTAL,
    FAIL_NOMEM
};

struct acme_http {
    CURL *curl;
    struct curl_slist *post_headers;
    size_t max_response;
    void (*trace)(void *ctx, const char *method, const char *url, long status);
    void *trace_ctx;
    char errbuf[CURL_ERROR_SIZE];

    /* State of the request in progress. */
    struct acme_response *resp;
    size_t body_alloc;
    size_t header_total;
    enum http_fail fail;
};

/* ------------------------------------------------------------ trust store */

/* Read every PEM certificate of `path`. */
static enum cp_code load_bundle(const char *path, STACK_OF(X509) * *out, struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    STACK_OF(X509) *certs = NULL;
    X509 *x = NULL;
    BIO *bio = NULL;

    ERR_clear_error(); /* the end-of-file check below reads the error queue */
    bio = BIO_new_file(path, "r");
    if (bio == NULL) {
        int e = errno;
        ERR_clear_error();
        return cp_err_set(err, CP_EIO, "cannot read CA bundle %s: %s", path,
                          e ? strerror(e) : "open failed");
    }
    certs = sk_X509_new_null();
    if (certs == NULL)
        goto nomem;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (sk_X509_push(certs, x) == 0) {
            X509_free(x);
            goto nomem;
        }
    }
    /* The loop ends with "no start line" at EOF; anything else is a bad PEM block. */
    unsigned long e = ERR_peek_last_error();
    if (!(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) && e != 0) {
        rc = cp_err_set(err, CP_EINVAL, "CA bundle %s: bad PEM certificate: %s", path,
                        ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "unknown");
        goto out;
    }
    if (sk_X509_num(certs) == 0) {
        rc = cp_err_set(err, CP_EINVAL, "CA bundle %s holds no PEM certificate", path);
        goto out;
    }
    *out = certs;
    certs = NULL;
    goto out;

nomem:
    rc = cp_err_set(err, CP_ENOMEM, "out of memory reading CA bundle %s", path);
out:
    ERR_clear_error();
    sk_X509_pop_free(certs, X509_free);
    BIO_free(bio);
    return rc;
}

/* ------------------------------------------------------------- callbacks */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct acme_http *h = userp;
    struct acme_response *r = h->resp;
    size_t n = size * nmemb; /* size is always 1 */

    if (n > h->max_response - r->body_len) {
        h->fail = FAIL_BODY_TOO_LARGE;
        return 0;
    }
    if (r->body_len + n + 1 > h->body_alloc) {
        size_t want = h->body_alloc ? h->body_alloc : 4096;
        while (want < r->body_len + n + 1)
            want *= 2;
        if (want > h->max_response + 1)
            want = h->max_response + 1;
        char *p = realloc(r->body, want);
        if (p == NULL) {
            h->fail = FAIL_NOMEM;
            return 0;
        }
        r->body = p;
        h->body_alloc = want;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return n;
}

/* Forget the headers captured so far (a new status line starts a new response). */
static void reset_headers(struct acme_response *r)
{
    free(r->content_type);
    free(r->location);
    free(r->replay_nonce);
    free(r->retry_after);
    for (size_t i = 0; i < r->nlinks; i++)
        free(r->links[i]);
    free(r->links);
    r->content_type = r->location = r->replay_nonce = r->retry_after = NULL;
    r->links = NULL;
    r->nlinks = 0;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Replace *slot with a copy of [v, v+len); a repeated header keeps its last value. */
static bool set_header(char **slot, const char *v, size_t len)
{
    char *copy = strndup(v, len);
    if (copy == NULL)
        return false;
    free(*slot);
    *slot = copy;
    return true;
}

static size_t on_header(char *line, size_t size, size_t nitems, void *userp)
{
    struct acme_http *h = userp;
    struct acme_response *r = h->resp;
    size_t n = size * nitems;

    if (n > MAX_HEADER_LINE) {
        h->fail = FAIL_HEADER_LINE;
        return 0;
    }
    h->header_total += n;
    if (h->header_total > MAX_HEADER_TOTAL) {
        h->fail = FAIL_HEADERS_TOTAL;
        return 0;
    }
    /* "HTTP/1.1 100 Continue", then "HTTP/1.1 201 Created": keep the last block only. */
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        reset_headers(r);
        return n;
    }
    const char *colon = memchr(line, ':', n);
    if (colon == NULL)
        return n; /* the empty line ending the block, or an obsolete fold: ignored */

    const char *name = line;
    size_t nlen = (size_t)(colon - line);
    while (nlen > 0 && is_ows(name[nlen - 1]))
        nlen--;
    const char *v = colon + 1;
    size_t vlen = n - (size_t)(v - line);
    while (vlen > 0 && is_ows(*v)) {
        v++;
        vlen--;
    }
    while (vlen > 0 && is_ows(v[vlen - 1]))
        vlen--;

#define NAME_IS(lit) (nlen == sizeof(lit) - 1 && strncasecmp(name, lit, nlen) == 0)
    bool ok = true;
    if (NAME_IS("location")) {
        ok = set_header(&r->location, v, vlen);
    } else if (NAME_IS("replay-nonce")) {
        ok = set_header(&r->replay_nonce, v, vlen);
    } else if (NAME_IS("retry-after")) {
        ok = set_header(&r->retry_after, v, vlen);
    } else if (NAME_IS("content-type")) {
        /* media type only: drop parameters, lower-case (RFC 9110 §8.3.1) */
        const char *semi = memchr(v, ';', vlen);
        size_t tlen = semi ? (size_t)(semi - v) : vlen;
        while (tlen > 0 && is_ows(v[tlen - 1]))
            tlen--;
        ok = set_header(&r->content_type, v, tlen);
        for (char *p = ok ? r->content_type : NULL; p != NULL && *p != '\0'; p++)
            *p = (char)tolower((unsigned char)*p);
    } else if (NAME_IS("link")) {
        char **links = realloc(r->links, (r->nlinks + 1) * sizeof *links);
        if (links != NULL) {
            r->links = links;
            links[r->nlinks] = strndup(v, vlen);
            if (links[r->nlinks] != NULL)
                r->nlinks++;
            else
                ok = false;
        } else {
            ok = false;
        }
    }
#undef NAME_IS
    if (!ok) {
        h->fail = FAIL_NOMEM;
        return 0;
    }
    return n;
}

/* ------------------------------------------------------------ life cycle */

enum cp_code acme_http_new(const struct acme_http_opts *opts, struct acme_http **out,
                           struct cp_err *err)
{
    static const struct acme_http_opts defaults = {0};
    enum cp_code rc = CP_OK;
    struct acme_http *h = NULL;
    CURLcode c = CURLE_OK;

    if (out == NULL)
        return cp_err_set(err, CP_EINTERNAL, "acme_http_new: no output");
    *out = NULL;
    if (opts == NULL)
        opts = &defaults;
    if (opts->connect_timeout_ms < 0 || opts->timeout_ms < 0)
        return cp_err_set(err, CP_EINVAL, "HTTP time-outs must not be negative");
    if (opts->user_agent != NULL && strpbrk(opts->user_agent, "\r\n") != NULL)
        return cp_err_set(err, CP_EINVAL, "the User-Agent must be a single line");

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return cp_err_set(err, CP_EINTERNAL, "libcurl initialisation failed");
    h = calloc(1, sizeof *h);
    if (h == NULL) {
        curl_global_cleanup();
        return cp_err_set(err, CP_ENOMEM, "out of memory creating the HTTP client");
    }
    h->max_response = opts->max_response ? opts->max_response : DEFAULT_MAX_RESPONSE;
    if (h->max_response > SIZE_MAX / 2)
        h->max_response = SIZE_MAX / 2;
    h->trace = opts->trace;
    h->trace_ctx = opts->trace_ctx;

    if (opts->ca_bundle != NULL) {
        /* Only a check, so that a bad file fails here, before any request. */
        STACK_OF(X509) *certs = NULL;
        rc = load_bundle(opts->ca_bundle, &certs, err);
        sk_X509_pop_free(certs, X509_free);
        if (rc != CP_OK)
            goto out;
    }

    h->curl = curl_easy_init();
    h->post_headers = curl_slist_append(NULL, "Content-Type: application/jose+json");
    /* No "Expect: 100-continue" round trip before a JWS body. */
    struct curl_slist *more =
        h->post_headers ? curl_slist_append(h->post_headers, "Expect:") : NULL;
    if (h->curl == NULL || more == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory creating the HTTP client");
        goto out;
    }
    h->post_headers = more;

    const char *ua = opts->user_agent ? opts->user_agent : "certpilot/" CP_VERSION;
    long cto = opts->connect_timeout_ms ? opts->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    long to = opts->timeout_ms ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if ((c = curl_easy_setopt(h->curl, opt, val)) != CURLE_OK)                                 \
            goto setopt_failed;                                                                    \
    } while (0)
    SET(CURLOPT_ERRORBUFFER, h->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_USERAGENT, ua);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    SET(CURLOPT_PROTOCOLS_STR, "https,http");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_MAXREDIRS, 0L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, cto);
    SET(CURLOPT_TIMEOUT_MS, to);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, h);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, h);
    SET(CURLOPT_CA_CACHE_TIMEOUT, CA_CACHE_S);
    if (opts->ca_bundle != NULL) {
        SET(CURLOPT_CAINFO, opts->ca_bundle);
        SET(CURLOPT_CAPATH, opts->ca_system ? SYSTEM_CAPATH : (char *)NULL);
    }
#undef SET
    *out = h;
    return CP_OK;

setopt_failed:
    rc = cp_err_set(err, CP_EINTERNAL, "libcurl refused an option: %s", curl_easy_strerror(c));
out:
    acme_http_free(h);
    return rc;
}

void acme_http_free(struct acme_http *h)
{
    if (h == NULL)
        return;
    curl_easy_cleanup(h->curl);
    curl_slist_free_all(h->post_headers);
    free(h);
    curl_global_cleanup();
}

void acme_response_clear(struct acme_response *r)
{
    if (r == NULL)
        return;
    reset_headers(r);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- request */

bool acme_url_origin(const char *url, char *out, size_t size)
{
    char *scheme = NULL, *host = NULL, *port = NULL;
    bool ok = false;
    CURLU *u = curl_url();

    if (u != NULL && url != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        int n = snprintf(out, size, "%s://%s:%s", scheme, host, port);
        ok = n > 0 && (size_t)n < size;
        for (char *p = out; ok && *p != '\0'; p++) /* scheme and host compare caselessly */
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    }
    curl_free(port);
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    return ok;
}

/* RFC 8555 §6.1: HTTPS only; http is let through to loopback test servers. */
static enum cp_code check_url(const char *url, struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    char *scheme = NULL, *host = NULL;
    CURLU *u = curl_url();

    if (u == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory parsing URL %s", url);
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        rc = cp_err_set(err, CP_EINVAL, "invalid URL \"%s\"", url);
        goto out;
    }
    if (strcasecmp(scheme, "https") == 0)
        goto out;
    if (strcasecmp(scheme, "http") == 0) {
        if (curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
            (strcmp(host, "127.0.0.1") == 0 || strcmp(host, "[::1]") == 0 ||
             strcasecmp(host, "localhost") == 0))
            goto out;
        rc = cp_err_set(err, CP_EINVAL,
                        "refusing %s: ACME needs https (plain http is allowed only to "
                        "127.0.0.1, ::1 and localhost)",
                        url);
        goto out;
    }
    rc = cp_err_set(err, CP_EINVAL, "refusing %s: scheme %s is not https", url, scheme);
out:
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
}

/* MAXFILESIZE makes curl refuse a too large body as soon as Content-Length
 * announces it (on_body enforces the same cap for bodies without one).  No
 * body is read after HEAD, so there a large Content-Length is no reason to fail. */
static CURLcode set_method(struct acme_http *h, const char *method, const char *body)
{
    bool head = strcmp(method, "HEAD") == 0;
    curl_off_t cap = head ? 0 : (curl_off_t)h->max_response;
    CURLcode c = curl_easy_setopt(h->curl, CURLOPT_MAXFILESIZE_LARGE, cap);
    if (c != CURLE_OK)
        return c;

    if (strcmp(method, "POST") == 0) {
        const char *b = body ? body : "";
        if ((c = curl_easy_setopt(h->curl, CURLOPT_NOBODY, 0L)) != CURLE_OK ||
            (c = curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, h->post_headers)) != CURLE_OK ||
            (c = curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(b))) !=
                CURLE_OK)
            return c;
        return curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, b);
    }
    /* POSTFIELDS = NULL drops the pointer to the last POST body; HTTPGET then
     * resets the method (and NOBODY) to a plain GET. */
    if ((c = curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL)) !=
            CURLE_OK ||
        (c = curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, (char *)NULL)) != CURLE_OK ||
        (c = curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L)) != CURLE_OK)
        return c;
    return head ? curl_easy_setopt(h->curl, CURLOPT_NOBODY, 1L) : CURLE_OK;
}

/* ------------------------------------------------------- transport errors */

/*
 * What went wrong, in words that say whose side it is on, and which URL:
 * libcurl's own texts are for programmers ("Out of memory" for a header line
 * that is too long, "SSL peer certificate or SSH remote key was not OK").
 * The CA's misbehaviour is CP_EPROTO; the network's, CP_ENET.
 */
static enum cp_code transport_error(const struct acme_http *h, CURLcode c, const char *method,
                                    const char *url, struct cp_err *err)
{
    const char *what = NULL, *hint = "";
    enum cp_code code = CP_ENET;

    switch (c) {
    case CURLE_OUT_OF_MEMORY:
        /* libcurl 7.88 gives up on a header line it would have to buffer past
         * its own bound (100 KB) with this code and the bare words "Out of
         * memory".  Our own allocations fail as FAIL_NOMEM, handled before. */
        what = "the response header is too large (a header line of more than 100 KB, which "
               "libcurl reports as running out of memory)";
        code = CP_EPROTO;
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        what = "the host name does not resolve";
        hint = "; check the --server URL and this machine's DNS";
        break;
    case CURLE_COULDNT_RESOLVE_PROXY: what = "the proxy's host name does not resolve"; break;
    case CURLE_COULDNT_CONNECT:
        what = "the connection was refused or the host is unreachable";
        hint = "; check the --server URL and that nothing blocks outgoing HTTPS";
        break;
    case CURLE_OPERATION_TIMEDOUT: what = "no complete answer in time (timed out)"; break;
    case CURLE_PEER_FAILED_VERIFICATION:
        what = "TLS failure: the server's certificate is not trusted or does not name the host";
        hint = "; for a test CA, give its certificate with --ca-bundle FILE";
        break;
    case CURLE_SSL_CONNECT_ERROR: what = "TLS failure: the handshake did not complete"; break;
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM: what = "TLS failure: the trust store cannot be used"; break;
    case CURLE_GOT_NOTHING:
        what = "the server closed the connection without an answer";
        code = CP_EPROTO;
        break;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
        what = "the answer is not HTTP";
        code = CP_EPROTO;
        break;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE: what = "the connection broke in the middle of the exchange"; break;
    case CURLE_TOO_MANY_REDIRECTS:
        what = "too many redirects";
        code = CP_EPROTO;
        break;
    default: break;
    }
    if (what == NULL)
        return cp_err_set(err, CP_ENET, "%s %s failed: %s%s%s", method, url, curl_easy_strerror(c),
                          h->errbuf[0] ? ": " : "", h->errbuf);
    return cp_err_set(err, code, "%s %s failed: %s%s%s%s%s", method, url, what, hint,
                      h->errbuf[0] ? " (" : "", h->errbuf, h->errbuf[0] ? ")" : "");
}

enum cp_code acme_http_request(struct acme_http *h, const char *method, const char *url,
                               const char *body, struct acme_response *resp, struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    long status = 0;
    CURLcode c;

    if (resp == NULL || h == NULL || method == NULL || url == NULL)
        return cp_err_set(err, CP_EINTERNAL, "acme_http_request: missing argument");
    acme_response_clear(resp);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 && strcmp(method, "POST") != 0)
        return cp_err_set(err, CP_EINTERNAL, "acme_http_request: unsupported method %s", method);
    if (body != NULL && strcmp(method, "POST") != 0)
        return cp_err_set(err, CP_EINTERNAL, "acme_http_request: %s with a body", method);
    rc = check_url(url, err);
    if (rc != CP_OK)
        return rc;

    h->resp = resp;
    h->body_alloc = 0;
    h->header_total = 0;
    h->fail = FAIL_NONE;
    h->errbuf[0] = '\0';
    if ((c = curl_easy_setopt(h->curl, CURLOPT_URL, url)) != CURLE_OK ||
        (c = set_method(h, method, body)) != CURLE_OK) {
        rc = cp_err_set(err, CP_EINTERNAL, "%s %s: libcurl refused an option: %s", method, url,
                        curl_easy_strerror(c));
        goto out;
    }

    c = curl_easy_perform(h->curl);
    if (curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;

    if (h->fail == FAIL_NOMEM) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory reading the response from %s", url);
    } else if (h->fail == FAIL_BODY_TOO_LARGE || c == CURLE_FILESIZE_EXCEEDED) {
        rc = cp_err_set(err, CP_EPROTO, "response from %s larger than %zu bytes", url,
                        h->max_response);
    } else if (h->fail == FAIL_HEADER_LINE) {
        rc = cp_err_set(err, CP_EPROTO, "response from %s has a header line longer than %u bytes",
                        url, MAX_HEADER_LINE);
    } else if (h->fail == FAIL_HEADERS_TOTAL) {
        rc = cp_err_set(err, CP_EPROTO, "response headers from %s larger than %u bytes", url,
                        MAX_HEADER_TOTAL);
    } else if (c != CURLE_OK) {
        size_t n = strlen(h->errbuf);
        while (n > 0 && is_ows(h->errbuf[n - 1]))
            h->errbuf[--n] = '\0';
        rc = transport_error(h, c, method, url, err);
    } else {
        resp->status = status;
    }

out:
    h->resp = NULL;
    if (rc != CP_OK)
        acme_response_clear(resp);
    if (h->trace != NULL)
        h->trace(h->trace_ctx, method, url, status);
    return rc;
}

/* ------------------------------------------------------------ Link (8288) */

struct link {
    const char *uri; /* between < and >, not NUL-terminated */
    size_t urilen;
    bool rel_seen; /* RFC 8288 §3.3: only the first "rel" counts */
    bool match;
};

static bool is_tchar(char c)
{
    return isalnum((unsigned char)c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static void skip_ows(const char **p)
{
    while (**p == ' ' || **p == '\t')
        (*p)++;
}

/* Whether the space-separated relation types in [v, v+len) include `rel`
 * (registered types compare case-insensitively, RFC 8288 §2.1.1). */
static bool rel_has(const char *v, size_t len, const char *rel)
{
    size_t rlen = strlen(rel);
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t'))
            i++;
        size_t start = i;
        while (i < len && v[i] != ' ' && v[i] != '\t')
            i++;
        if (i - start == rlen && rlen > 0 && strncasecmp(v + start, rel, rlen) == 0)
            return true;
    }
    return false;
}

/* After "=": a token or a quoted-string.  Returns false on malformed input. */
static bool param_value(const char **p, const char *rel, bool *match)
{
    const char *s = *p;
    if (*s == '"') {
        /* quoted-string; an escaped character never appears in a relation type
         * we look for, so match on the raw text. */
        const char *start = ++s;
        while (*s != '\0' && *s != '"') {
            if (*s == '\\' && s[1] != '\0')
                s++;
            s++;
        }
        if (*s != '"')
            return false;
        if (match != NULL)
            *match = rel_has(start, (size_t)(s - start), rel);
        *p = s + 1;
        return true;
    }
    const char *start = s;
    while (is_tchar(*s))
        s++;
    if (s == start)
        return false;
    if (match != NULL)
        *match = rel_has(start, (size_t)(s - start), rel);
    *p = s;
    return true;
}

/* Parse one link-value at *p; *p ends after it (before "," or at the end). */
static bool parse_link(const char **p, const char *rel, struct link *l)
{
    const char *s = *p;
    memset(l, 0, sizeof *l);
    if (*s != '<')
        return false;
    l->uri = ++s;
    while (*s != '\0' && *s != '>')
        s++;
    if (*s != '>')
        return false;
    l->urilen = (size_t)(s - l->uri);
    s++;
    for (;;) {
        skip_ows(&s);
        if (*s == '\0' || *s == ',')
            break;
        if (*s != ';')
            return false;
        s++;
        skip_ows(&s);
        const char *name = s;
        while (is_tchar(*s))
            s++;
        size_t nlen = (size_t)(s - name);
        if (nlen == 0)
            return false;
        skip_ows(&s);
        bool is_rel = nlen == 3 && strncasecmp(name, "rel", 3) == 0 && !l->rel_seen;
        if (*s == '=') {
            s++;
            skip_ows(&s);
            bool m = false;
            if (!param_value(&s, rel, is_rel ? &m : NULL))
                return false;
            if (is_rel)
                l->match = m;
        }
        if (is_rel)
            l->rel_seen = true;
    }
    *p = s;
    return true;
}

/* Skip to just after the next "," that is outside <...> and "...", or to the end. */
static void skip_to_next_link(const char **p)
{
    const char *s = *p;
    bool quoted = false, angle = false;
    for (; *s != '\0'; s++) {
        if (quoted) {
            if (*s == '\\' && s[1] != '\0')
                s++;
            else if (*s == '"')
                quoted = false;
        } else if (angle) {
            angle = *s != '>';
        } else if (*s == '"') {
            quoted = true;
        } else if (*s == '<') {
            angle = true;
        } else if (*s == ',') {
            s++;
            break;
        }
    }
    *p = s;
}

/* The target of a link as an absolute URL (resolved against base), or NULL. */
static char *resolve(const char *uri, size_t len, const char *base)
{
    char *ref = strndup(uri, len);
    char *abs = NULL, *out = NULL;
    CURLU *u = curl_url();
    if (ref == NULL || u == NULL)
        goto out;
    if (base != NULL && curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK)
        goto out;
    /* With a URL already in the handle, a relative reference is resolved against it. */
    if (curl_url_set(u, CURLUPART_URL, ref, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &abs, 0) != CURLUE_OK)
        goto out;
    out = strdup(abs);
out:
    curl_free(abs);
    curl_url_cleanup(u);
    free(ref);
    return out;
}

/*
 * *pos counts link-values, not header values: a header value holding two
 * links counts as two.  With one link per Link header (what ACME servers
 * send) the two are the same, and starting at 0 works either way.
 */
char *acme_link_next(const struct acme_response *r, const char *rel, const char *base, size_t *pos)
{
    size_t index = 0;
    if (r == NULL || rel == NULL || pos == NULL)
        return NULL;
    for (size_t i = 0; i < r->nlinks; i++) {
        const char *p = r->links[i];
        while (r->links[i] != NULL && *p != '\0') {
            skip_ows(&p);
            if (*p == ',') { /* empty list element (RFC 9110 §5.6.1) */
                p++;
                continue;
            }
            if (*p == '\0')
                break;
            struct link l;
            bool ok = parse_link(&p, rel, &l);
            if (!ok)
                skip_to_next_link(&p);
            else if (*p == ',')
                p++;
            if (index++ < *pos || !ok || !l.match)
                continue;
            char *url = resolve(l.uri, l.urilen, base);
            if (url != NULL) {
                *pos = index;
                return url;
            }
        }
    }
    *pos = index;
    return NULL;
}
