/*
 * store/etcd_kv.c - the etcd v3 JSON-gateway client of store/etcd_kv.h: the
 * requests, the transport (one libcurl easy handle per struct etcd_kv, so
 * that requests reuse connections), fail-over between members and etcd
 * authentication.  Reading the replies is store/etcd_json.c's job.
 *
 * Choices:
 * - Fail-over: a member that cannot be reached, does not answer in time,
 *   answers something that is not the gateway's JSON, or answers that it
 *   cannot serve now (no leader, a timed-out proposal, too many requests) is
 *   left for the next one; the last member that answered is tried first next
 *   time.  A definite answer (a failed comparison is an answer; so is
 *   "permission denied") is never retried elsewhere.  As with any etcd
 *   client, a write whose member timed out may still have been applied.
 * - TLS: verification of the member's certificate and name is always on;
 *   ca_file replaces the system store.  Members are reached directly, never
 *   through a proxy from the environment.  Redirects are not followed.
 * - Authentication: POST /v3/auth/authenticate gives a token, sent in the
 *   Authorization header of every request after; a token the cluster no
 *   longer knows (expired after the cluster's --auth-token-ttl of idleness)
 *   is replaced once per request.  The password is kept for that and wiped
 *   at close.
 * - Bounds: a reply is read up to ETCD_KV_MAX_REPLY bytes; the lease
 *   keep-alive stream is read up to the end of its first object.
 */
#include "store/etcd_kv.h"
#include "store/etcd_kv_int.h"

#include <curl/curl.h>
#include <openssl/crypto.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 5000u
#define MAX_ENDPOINT       256u
#define GRPC_NOT_FOUND     5

struct etcd_kv {
    CURL *curl;
    char **endpoints; /* "http://127.0.0.1:2379", no trailing '/' */
    size_t n;
    size_t current; /* tried first: the last one that answered */
    char *ca_file, *cert_file, *key_file;
    char *user, *password, *token;
    unsigned timeout_ms;
    char errbuf[CURL_ERROR_SIZE];

    /* The reply being read. */
    char *body;
    size_t len, cap;
    bool too_large, nomem;
    bool stream, stream_done;
};

/* ------------------------------------------------------------ open, close */

static void free_secret(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void etcd_kv_close(struct etcd_kv *kv)
{
    if (kv == NULL)
        return;
    if (kv->curl != NULL) {
        curl_easy_cleanup(kv->curl);
        curl_global_cleanup();
    }
    for (size_t i = 0; i < kv->n; i++)
        free(kv->endpoints[i]);
    free(kv->endpoints);
    free(kv->ca_file);
    free(kv->cert_file);
    free(kv->key_file);
    free(kv->user);
    free_secret(kv->password);
    free_secret(kv->token);
    free(kv->body);
    free(kv);
}

/* "http://host:port" or https, with nothing after but an optional "/";
 * the copy in *out has no trailing '/'. */
static enum cp_code check_endpoint(const char *ep, char **out, struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    char *scheme = NULL, *host = NULL, *path = NULL, *query = NULL, *user = NULL, *frag = NULL;
    CURLU *u = NULL;

    size_t n = strlen(ep);
    if (n == 0 || n > MAX_ENDPOINT)
        return cp_err_set(err, CP_EINVAL, "etcd endpoint \"%.64s\": empty or longer than %u bytes",
                          ep, MAX_ENDPOINT);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)ep[i] <= 0x20 || (unsigned char)ep[i] >= 0x7f)
            return cp_err_set(err, CP_EINVAL, "etcd endpoint \"%.64s\": a space or control byte",
                              ep);
    u = curl_url();
    if (u == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    if (curl_url_set(u, CURLUPART_URL, ep, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        rc = cp_err_set(err, CP_EINVAL, "etcd endpoint %s: not a URL", ep);
        goto out;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        rc = cp_err_set(err, CP_EINVAL, "etcd endpoint %s: the scheme must be http or https", ep);
        goto out;
    }
    (void)curl_url_get(u, CURLUPART_PATH, &path, 0);
    (void)curl_url_get(u, CURLUPART_QUERY, &query, 0);
    (void)curl_url_get(u, CURLUPART_USER, &user, 0);
    (void)curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0);
    if ((path != NULL && strcmp(path, "/") != 0) || query != NULL || user != NULL || frag != NULL) {
        rc = cp_err_set(err, CP_EINVAL,
                        "etcd endpoint %s: give only scheme://host:port (no path, query or user)",
                        ep);
        goto out;
    }
    *out = strndup(ep, ep[n - 1] == '/' ? n - 1 : n);
    if (*out == NULL)
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(path);
    curl_free(query);
    curl_free(user);
    curl_free(frag);
    curl_url_cleanup(u);
    return rc;
}

static enum cp_code dup_opt(const char *s, char **out, struct cp_err *err)
{
    *out = NULL;
    if (s == NULL)
        return CP_OK;
    *out = strdup(s);
    return *out == NULL ? cp_err_set(err, CP_ENOMEM, "out of memory") : CP_OK;
}

/* A file libcurl will read at the first TLS connection: fail early instead. */
static enum cp_code check_readable(const char *path, const char *what, struct cp_err *err)
{
    if (path == NULL)
        return CP_OK;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return cp_err_set(err, CP_ESETUP, "etcd %s %s cannot be read", what, path);
    fclose(f);
    return CP_OK;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx);

enum cp_code etcd_kv_open(const struct etcd_kv_opts *o, struct etcd_kv **out, struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    struct etcd_kv *kv = NULL;
    bool https = false;

    if (out == NULL || o == NULL)
        return cp_err_set(err, CP_EINTERNAL, "etcd_kv_open: missing argument");
    *out = NULL;
    if (o->nendpoints == 0 || o->endpoints == NULL)
        return cp_err_set(err, CP_EINVAL, "etcd: no endpoint given");
    if (o->nendpoints > ETCD_KV_MAX_ENDPOINTS)
        return cp_err_set(err, CP_EINVAL, "etcd: more than %d endpoints", ETCD_KV_MAX_ENDPOINTS);
    if ((o->cert_file == NULL) != (o->key_file == NULL))
        return cp_err_set(err, CP_EINVAL,
                          "etcd: a client certificate needs its key and a key its certificate");
    if ((o->user == NULL) != (o->password == NULL))
        return cp_err_set(err, CP_EINVAL, "etcd: a user needs a password and a password a user");
    if (o->user != NULL && (o->user[0] == '\0' || strlen(o->user) > 256))
        return cp_err_set(err, CP_EINVAL, "etcd: the user name is empty or too long");
    if (o->password != NULL && strlen(o->password) > 1024)
        return cp_err_set(err, CP_EINVAL, "etcd: the password is longer than 1024 bytes");

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return cp_err_set(err, CP_EINTERNAL, "libcurl initialisation failed");
    kv = calloc(1, sizeof *kv);
    if (kv == NULL) {
        curl_global_cleanup();
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    }
    kv->curl = curl_easy_init();
    kv->endpoints = calloc(o->nendpoints, sizeof *kv->endpoints);
    if (kv->curl == NULL || kv->endpoints == NULL) {
        if (kv->curl == NULL)
            curl_global_cleanup();
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < o->nendpoints; i++) {
        if (o->endpoints[i] == NULL) {
            rc = cp_err_set(err, CP_EINVAL, "etcd: endpoint %zu is missing", i + 1);
            goto out;
        }
        rc = check_endpoint(o->endpoints[i], &kv->endpoints[i], err);
        if (rc != CP_OK)
            goto out;
        kv->n = i + 1;
        if (i == 0)
            https = strncmp(kv->endpoints[0], "https:", 6) == 0;
        if (https != (strncmp(kv->endpoints[i], "https:", 6) == 0)) {
            rc = cp_err_set(err, CP_EINVAL, "etcd: endpoints mix http and https (%s)",
                            kv->endpoints[i]);
            goto out;
        }
    }
    if (!https && (o->ca_file != NULL || o->cert_file != NULL)) {
        rc = cp_err_set(err, CP_EINVAL,
                        "etcd: a CA file or client certificate needs https endpoints (%s)",
                        kv->endpoints[0]);
        goto out;
    }
    if ((rc = check_readable(o->ca_file, "CA file", err)) != CP_OK ||
        (rc = check_readable(o->cert_file, "client certificate", err)) != CP_OK ||
        (rc = check_readable(o->key_file, "client key", err)) != CP_OK ||
        (rc = dup_opt(o->ca_file, &kv->ca_file, err)) != CP_OK ||
        (rc = dup_opt(o->cert_file, &kv->cert_file, err)) != CP_OK ||
        (rc = dup_opt(o->key_file, &kv->key_file, err)) != CP_OK ||
        (rc = dup_opt(o->user, &kv->user, err)) != CP_OK ||
        (rc = dup_opt(o->password, &kv->password, err)) != CP_OK)
        goto out;
    kv->timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;

    CURLcode c = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if ((c = curl_easy_setopt(kv->curl, opt, val)) != CURLE_OK)                                \
            goto setopt_failed;                                                                    \
    } while (0)
    SET(CURLOPT_ERRORBUFFER, kv->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_USERAGENT, "certpilot/" CP_VERSION);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_PROXY, ""); /* never a proxy from the environment */
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)kv->timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, (long)kv->timeout_ms);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)ETCD_KV_MAX_REPLY);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, kv);
    if (kv->ca_file != NULL)
        SET(CURLOPT_CAINFO, kv->ca_file);
    if (kv->cert_file != NULL) {
        SET(CURLOPT_SSLCERT, kv->cert_file);
        SET(CURLOPT_SSLCERTTYPE, "PEM");
        SET(CURLOPT_SSLKEY, kv->key_file);
        SET(CURLOPT_SSLKEYTYPE, "PEM");
    }
#undef SET
    *out = kv;
    return CP_OK;

setopt_failed:
    rc =
        cp_err_set(err, CP_EINTERNAL, "etcd: libcurl refused an option: %s", curl_easy_strerror(c));
out:
    etcd_kv_close(kv);
    return rc;
}

/* ------------------------------------------------------------- transport */

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct etcd_kv *kv = ctx;
    size_t n = size * nmemb;

    if (n > ETCD_KV_MAX_REPLY - kv->len) {
        kv->too_large = true;
        return 0;
    }
    if (kv->len + n + 1 > kv->cap) {
        size_t cap = kv->cap ? kv->cap : 4096;
        while (cap < kv->len + n + 1)
            cap *= 2;
        char *b = realloc(kv->body, cap);
        if (b == NULL) {
            kv->nomem = true;
            return 0;
        }
        kv->body = b;
        kv->cap = cap;
    }
    memcpy(kv->body + kv->len, data, n);
    kv->len += n;
    kv->body[kv->len] = '\0';
    /* The keep-alive stream sends one object per line: the first is enough. */
    if (kv->stream && memchr(kv->body, '\n', kv->len) != NULL) {
        kv->stream_done = true;
        return 0;
    }
    return n;
}

/* What went wrong with a member, in a few words, into why[]. */
static void transport_reason(struct etcd_kv *kv, CURLcode c, char *why, size_t size)
{
    const char *what;
    switch (c) {
    case CURLE_COULDNT_CONNECT: what = "connection refused or host unreachable"; break;
    case CURLE_COULDNT_RESOLVE_HOST: what = "the host name does not resolve"; break;
    case CURLE_OPERATION_TIMEDOUT: what = "no answer in time"; break;
    case CURLE_PEER_FAILED_VERIFICATION:
        what = "TLS: the member's certificate is not trusted or does not name the host";
        break;
    case CURLE_SSL_CONNECT_ERROR: what = "TLS handshake failed"; break;
    case CURLE_GOT_NOTHING: what = "closed the connection without an answer"; break;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE: what = "the connection broke"; break;
    default: what = curl_easy_strerror(c); break;
    }
    size_t n = strlen(kv->errbuf);
    while (n > 0 && (kv->errbuf[n - 1] == '\n' || kv->errbuf[n - 1] == ' '))
        kv->errbuf[--n] = '\0';
    if (c == CURLE_OPERATION_TIMEDOUT)
        (void)snprintf(why, size, "%s (%u ms)", what, kv->timeout_ms);
    else if (n > 0 && c != CURLE_COULDNT_CONNECT)
        (void)snprintf(why, size, "%s (%.100s)", what, kv->errbuf);
    else
        (void)snprintf(why, size, "%s", what);
}

/* One POST to member i.  CP_OK: *r holds its reply (any verdict but one
 * that failed to parse).  CP_ENET / CP_EPROTO: this member did not give a
 * usable answer (why[] says what), another may.  Other codes: give up. */
static enum cp_code post_one(struct etcd_kv *kv, size_t i, const char *path, const char *body,
                             bool stream, struct etcd_reply *r, char *why, size_t whysize,
                             struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    struct curl_slist *headers = NULL, *h;
    char url[MAX_ENDPOINT + 64];
    char auth[ETCD_KV_MAX_TOKEN + 32];
    long status = 0;

    (void)snprintf(url, sizeof url, "%s%s", kv->endpoints[i], path);
    headers = curl_slist_append(NULL, "Content-Type: application/json");
    h = headers ? curl_slist_append(headers, "Expect:") : NULL;
    if (h != NULL && kv->token != NULL) {
        (void)snprintf(auth, sizeof auth, "Authorization: %s", kv->token);
        h = curl_slist_append(headers, auth);
        OPENSSL_cleanse(auth, sizeof auth);
    }
    if (h == NULL) {
        curl_slist_free_all(headers);
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    }
    kv->len = 0;
    kv->too_large = kv->nomem = kv->stream_done = false;
    kv->stream = stream;
    kv->errbuf[0] = '\0';
    CURLcode c;
    if ((c = curl_easy_setopt(kv->curl, CURLOPT_URL, url)) != CURLE_OK ||
        (c = curl_easy_setopt(kv->curl, CURLOPT_HTTPHEADER, headers)) != CURLE_OK ||
        (c = curl_easy_setopt(kv->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body))) !=
            CURLE_OK ||
        (c = curl_easy_setopt(kv->curl, CURLOPT_POSTFIELDS, body)) != CURLE_OK) {
        rc = cp_err_set(err, CP_EINTERNAL, "etcd: libcurl refused an option: %s",
                        curl_easy_strerror(c));
        goto out;
    }
    c = curl_easy_perform(kv->curl);
    if (c == CURLE_WRITE_ERROR && kv->stream_done)
        c = CURLE_OK;
    (void)curl_easy_getinfo(kv->curl, CURLINFO_RESPONSE_CODE, &status);
    if (kv->nomem) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory reading etcd's reply");
    } else if (kv->too_large || c == CURLE_FILESIZE_EXCEEDED) {
        (void)snprintf(why, whysize, "a reply larger than %u bytes", ETCD_KV_MAX_REPLY);
        rc = CP_EPROTO;
    } else if (c == CURLE_SSL_CERTPROBLEM || c == CURLE_SSL_CACERT_BADFILE) {
        /* Our own files: every member would fail the same way. */
        transport_reason(kv, c, why, whysize);
        rc = cp_err_set(err, CP_ESETUP, "etcd: the TLS client set-up is unusable: %s", why);
    } else if (c != CURLE_OK) {
        transport_reason(kv, c, why, whysize);
        rc = CP_ENET;
    } else {
        struct cp_err perr = {0};
        if (etcd_reply_parse(kv->body != NULL ? kv->body : "", kv->len, stream, r, &perr) !=
            CP_OK) {
            /* Not the gateway's JSON: show the start of what it was. */
            char text[96];
            size_t k = 0;
            for (; k < kv->len && k + 1 < sizeof text; k++) {
                unsigned char ch = (unsigned char)kv->body[k];
                text[k] = (char)(ch >= 0x20 && ch < 0x7f ? ch : ' ');
            }
            text[k] = '\0';
            (void)snprintf(why, whysize, "HTTP %ld, %s: \"%s\"", status, perr.msg, text);
            rc = CP_EPROTO;
        } else if (r->verdict == ETCD_RETRY) {
            (void)snprintf(why, whysize, "%s", r->message);
            rc = CP_ENET;
        } else if (r->verdict == ETCD_ANSWER && status != 200) {
            /* JSON, but no answer and no refusal either. */
            etcd_reply_clear(r);
            (void)snprintf(why, whysize, "HTTP %ld without an etcd error", status);
            rc = CP_EPROTO;
        }
    }
out:
    curl_slist_free_all(headers);
    (void)curl_easy_setopt(kv->curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    (void)curl_easy_setopt(kv->curl, CURLOPT_POSTFIELDS, (char *)NULL);
    if (kv->body != NULL)
        OPENSSL_cleanse(kv->body, kv->len); /* may hold a token */
    return rc;
}

/* The POST to the first member that answers, from kv->current on.  CP_OK:
 * *r holds a reply that is no ETCD_RETRY, kv->current names its member. */
static enum cp_code post_any(struct etcd_kv *kv, const char *path, const char *body, bool stream,
                             const char *what, struct etcd_reply *r, struct cp_err *err)
{
    char msg[CP_ERR_MSG_MAX];
    size_t used = 0;
    bool net = false;

    used = (size_t)snprintf(msg, sizeof msg, "etcd: no member answered (%s):", what);
    if (used >= sizeof msg)
        used = sizeof msg - 1;
    char last[256] = "";
    for (size_t k = 0; k < kv->n; k++) {
        size_t i = (kv->current + k) % kv->n;
        char why[256] = "";
        etcd_reply_clear(r);
        enum cp_code rc = post_one(kv, i, path, body, stream, r, why, sizeof why, err);
        if (rc == CP_OK) {
            kv->current = i;
            return CP_OK;
        }
        etcd_reply_clear(r);
        if (rc != CP_ENET && rc != CP_EPROTO)
            return rc;
        net = net || rc == CP_ENET;
        /* Every endpoint must fit in the message: a reason once. */
        bool same = k > 0 && strcmp(why, last) == 0;
        int w = snprintf(msg + used, sizeof msg - used, "%s %s: %s", k ? ";" : "", kv->endpoints[i],
                         same ? "the same" : why);
        memcpy(last, why, sizeof last);
        if (w > 0)
            used = (size_t)w >= sizeof msg - used ? sizeof msg - 1 : used + (size_t)w;
    }
    return cp_err_set(err, net ? CP_ENET : CP_EPROTO, "%s", msg);
}

static enum cp_code authenticate(struct etcd_kv *kv, struct cp_err *err)
{
    enum cp_code rc;
    struct etcd_reply r = {0};
    /* Every copy of the password is wiped: the body is written straight
     * into one buffer large enough for any escaping (json_dumps would grow
     * its own and free the smaller ones as they are), and jansson's copy in
     * the request is wiped before it is freed. */
    json_t *req = json_pack("{s:s, s:s}", "name", kv->user, "password", kv->password);
    size_t cap = 6 * (strlen(kv->user) + strlen(kv->password)) + 64, n = 0;
    char *body = req ? malloc(cap) : NULL;
    if (body != NULL) {
        n = json_dumpb(req, body, cap - 1, JSON_COMPACT);
        body[n < cap ? n : 0] = '\0';
    }
    json_t *copy = req ? json_object_get(req, "password") : NULL;
    if (json_is_string(copy)) /* the string's own buffer, about to be freed */
        OPENSSL_cleanse((char *)json_string_value(copy), json_string_length(copy));
    json_decref(req);
    if (body == NULL || n == 0 || n >= cap) {
        if (body != NULL)
            OPENSSL_cleanse(body, cap);
        free(body);
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    }
    rc = post_any(kv, "/v3/auth/authenticate", body, false, "authentication", &r, err);
    free_secret(body);
    if (rc != CP_OK)
        return rc;
    if (r.verdict == ETCD_ANSWER) {
        free_secret(kv->token);
        kv->token = NULL;
        rc = etcd_json_token(r.root, &kv->token, err);
    } else {
        rc = cp_err_set(err, CP_ESETUP, "etcd: %s refused the authentication of user %s: %s",
                        kv->endpoints[kv->current], kv->user, r.message);
    }
    etcd_reply_clear(&r);
    return rc;
}

/* The request `req` (consumed) to `path`, authenticated when a user is set.
 * CP_OK: r->root holds the answer.  A refusal: its code (CP_EPROTO, or
 * CP_ESETUP for authentication and permissions), r->code and r->message
 * kept for the caller. */
static enum cp_code call(struct etcd_kv *kv, const char *path, json_t *req, bool stream,
                         const char *what, struct etcd_reply *r, struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;

    json_decref(req);
    memset(r, 0, sizeof *r);
    if (body == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    for (int round = 0; round < 2; round++) {
        if (kv->user != NULL && kv->token == NULL && (rc = authenticate(kv, err)) != CP_OK)
            break;
        etcd_reply_clear(r);
        rc = post_any(kv, path, body, stream, what, r, err);
        if (rc != CP_OK)
            break;
        const char *ep = kv->endpoints[kv->current];
        if (r->verdict == ETCD_ANSWER)
            break;
        if (r->verdict == ETCD_REAUTH && kv->user != NULL && round == 0) {
            free_secret(kv->token);
            kv->token = NULL;
            continue;
        }
        if (r->verdict == ETCD_DENIED || r->verdict == ETCD_REAUTH)
            rc = cp_err_set(err, CP_ESETUP, "etcd: %s refused the %s%s%s: %s", ep, what,
                            kv->user ? " by user " : " (no user given)", kv->user ? kv->user : "",
                            r->message);
        else
            rc = cp_err_set(err, CP_EPROTO, "etcd: %s refused the %s: %s", ep, what, r->message);
        break;
    }
    free(body);
    return rc;
}

/* ------------------------------------------------------------- key ranges */

static enum cp_code check_key(const char *key, bool may_be_empty, struct cp_err *err)
{
    if (key == NULL)
        return cp_err_set(err, CP_EINTERNAL, "etcd: no key");
    size_t n = strlen(key);
    if ((n == 0 && !may_be_empty) || n > ETCD_KV_MAX_KEY)
        return cp_err_set(err, CP_EINVAL, "etcd: key \"%.64s\" is empty or longer than %u bytes",
                          key, ETCD_KV_MAX_KEY);
    return CP_OK;
}

/* Adds "key" and, for a prefix, "range_end" (the first key after every key
 * starting with `key`) to obj.  The empty prefix is every key: "\0" to "\0". */
static int add_range(json_t *obj, const char *key, bool prefix)
{
    size_t n = strlen(key);
    unsigned char end[ETCD_KV_MAX_KEY + 1];
    size_t endlen = 0;

    if (n > ETCD_KV_MAX_KEY)
        return -1;
    if (prefix)
        endlen = etcd_prefix_end(key, n, end);
    /* The empty prefix starts at the key "\0", the first there can be. */
    char *k64 = prefix && n == 0 ? etcd_b64_encode("", 1) : etcd_b64_encode(key, n);
    char *e64 = prefix ? etcd_b64_encode(end, endlen) : NULL;
    int rc = -1;
    if (k64 != NULL && (!prefix || e64 != NULL)) {
        rc = json_object_set_new(obj, "key", json_string(k64));
        if (rc == 0 && prefix)
            rc = json_object_set_new(obj, "range_end", json_string(e64));
    }
    free(k64);
    free(e64);
    return rc;
}

static json_t *b64_string(const void *data, size_t len)
{
    char *s = etcd_b64_encode(data, len);
    json_t *j = s ? json_string(s) : NULL;
    free(s);
    return j;
}

/* --------------------------------------------------------------- requests */

enum cp_code etcd_kv_get(struct etcd_kv *kv, const char *key, struct etcd_kv_item *out,
                         struct cp_err *err)
{
    enum cp_code rc;
    struct etcd_reply r;
    struct etcd_kv_list l = {0};
    char what[128];

    if (kv == NULL || out == NULL)
        return cp_err_set(err, CP_EINTERNAL, "etcd_kv_get: missing argument");
    memset(out, 0, sizeof *out);
    if ((rc = check_key(key, false, err)) != CP_OK)
        return rc;
    json_t *req = json_object();
    if (req == NULL || add_range(req, key, false) != 0) {
        json_decref(req);
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    }
    (void)snprintf(what, sizeof what, "read of %.80s", key);
    rc = call(kv, "/v3/kv/range", req, false, what, &r, err);
    if (rc == CP_OK)
        rc = etcd_json_kvs(r.root, false, &l, err);
    if (rc == CP_OK && l.n > 1)
        rc = cp_err_set(err, CP_EPROTO, "etcd: %zu keys for the read of %.80s", l.n, key);
    if (rc == CP_OK && l.n == 1 && strcmp(l.items[0].key, key) != 0)
        rc = cp_err_set(err, CP_EPROTO, "etcd: another key for the read of %.80s", key);
    if (rc == CP_OK && l.n == 1) {
        *out = l.items[0];
        memset(&l.items[0], 0, sizeof l.items[0]);
    }
    etcd_kv_list_clear(&l);
    etcd_reply_clear(&r);
    return rc;
}

enum cp_code etcd_kv_range(struct etcd_kv *kv, const char *prefix, bool keys_only,
                           struct etcd_kv_list *out, struct cp_err *err)
{
    enum cp_code rc;
    struct etcd_reply r;
    char what[128];

    if (kv == NULL || out == NULL)
        return cp_err_set(err, CP_EINTERNAL, "etcd_kv_range: missing argument");
    memset(out, 0, sizeof *out);
    if ((rc = check_key(prefix, true, err)) != CP_OK)
        return rc;
    json_t *req = json_pack("{s:I}", "limit", (json_int_t)ETCD_KV_MAX_ITEMS);
    if (req == NULL || add_range(req, prefix, true) != 0 ||
        (keys_only && json_object_set_new(req, "keys_only", json_true()) != 0)) {
        json_decref(req);
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    }
    (void)snprintf(what, sizeof what, "read of the keys under %.80s", prefix);
    rc = call(kv, "/v3/kv/range", req, false, what, &r, err);
    if (rc == CP_OK)
        rc = etcd_json_kvs(r.root, keys_only, out, err);
    etcd_reply_clear(&r);
    return rc;
}

static json_t *put_object(const char *key, const void *value, size_t len, int64_t lease)
{
    json_t *o = json_object();
    /* json_object_set_new takes the value, even when it fails or is NULL. */
    if (o == NULL || add_range(o, key, false) != 0 ||
        json_object_set_new(o, "value", b64_string(value, len)) != 0 ||
        (lease != 0 && json_object_set_new(o, "lease", json_integer((json_int_t)lease)) != 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

enum cp_code etcd_kv_put(struct etcd_kv *kv, const char *key, const void *value, size_t len,
                         int64_t lease, struct cp_err *err)
{
    enum cp_code rc;
    struct etcd_reply r;
    char what[128];

    if (kv == NULL || (value == NULL && len > 0))
        return cp_err_set(err, CP_EINTERNAL, "etcd_kv_put: missing argument");
    if ((rc = check_key(key, false, err)) != CP_OK)
        return rc;
    if (len > ETCD_KV_MAX_VALUE)
        return cp_err_set(err, CP_EINVAL, "etcd: the value for %.80s is larger than %u bytes", key,
                          ETCD_KV_MAX_VALUE);
    json_t *req = put_object(key, value, len, lease);
    if (req == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    (void)snprintf(what, sizeof what, "write of %.80s", key);
    rc = call(kv, "/v3/kv/put", req, false, what, &r, err);
    etcd_reply_clear(&r);
    return rc;
}

enum cp_code etcd_kv_delete(struct etcd_kv *kv, const char *key, bool prefix, size_t *deleted,
                            struct cp_err *err)
{
    enum cp_code rc;
    struct etcd_reply r;
    char what[128];

    if (deleted != NULL)
        *deleted = 0;
    if (kv == NULL)
        return cp_err_set(err, CP_EINTERNAL, "etcd_kv_delete: missing argument");
    if ((rc = check_key(key, prefix, err)) != CP_OK)
        return rc;
    json_t *req = json_object();
    if (req == NULL || add_range(req, key, prefix) != 0) {
        json_decref(req);
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    }
    (void)snprintf(what, sizeof what, "deletion of %s%.80s", prefix ? "the keys under " : "", key);
    rc = call(kv, "/v3/kv/deleterange", req, false, what, &r, err);
    int64_t n = 0;
    if (rc == CP_OK)
        rc = etcd_json_int64(r.root, "deleted", &n, err);
    if (rc == CP_OK && n < 0)
        rc = cp_err_set(err, CP_EPROTO, "etcd: a negative count of deleted keys");
    if (rc == CP_OK && deleted != NULL)
        *deleted = (size_t)n;
    etcd_reply_clear(&r);
    return rc;
}

/* ------------------------------------------------------------ transactions */

static json_t *cmp_object(const struct etcd_cmp *c)
{
    static const char *const targets[] = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
    static const char *const fields[] = {"version", "create_revision", "mod_revision", "value",
                                         "lease"};
    static const char *const results[] = {"EQUAL", "NOT_EQUAL", "LESS", "GREATER"};

    if ((unsigned)c->target > ETCD_CMP_LEASE || (unsigned)c->result > ETCD_GREATER ||
        check_key(c->key, false, NULL) != CP_OK)
        return NULL;
    bool value = c->target == ETCD_CMP_VALUE;
    if (value && (c->len > ETCD_KV_MAX_VALUE || (c->value == NULL && c->len > 0)))
        return NULL;
    json_t *o = json_pack("{s:s, s:s}", "target", targets[c->target], "result", results[c->result]);
    if (o == NULL || add_range(o, c->key, false) != 0 ||
        json_object_set_new(o, fields[c->target],
                            value ? b64_string(c->value, c->len)
                                  : json_integer((json_int_t)c->number)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *op_object(const struct etcd_op *op)
{
    json_t *inner = NULL;
    if (op->type == ETCD_OP_PUT) {
        if (check_key(op->key, false, NULL) != CP_OK || op->len > ETCD_KV_MAX_VALUE ||
            (op->value == NULL && op->len > 0))
            return NULL;
        inner = put_object(op->key, op->value, op->len, op->lease);
    } else if (op->type == ETCD_OP_DELETE) {
        if (check_key(op->key, op->prefix, NULL) != CP_OK)
            return NULL;
        inner = json_object();
        if (inner != NULL && add_range(inner, op->key, op->prefix) != 0) {
            json_decref(inner);
            inner = NULL;
        }
    }
    if (inner == NULL)
        return NULL;
    return json_pack("{s:o}", op->type == ETCD_OP_PUT ? "request_put" : "request_delete_range",
                     inner);
}

static int add_ops(json_t *arr, const struct etcd_op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(arr, op_object(&ops[i])) != 0)
            return -1;
    return 0;
}

enum cp_code etcd_kv_txn(struct etcd_kv *kv, const struct etcd_cmp *cmps, size_t ncmps,
                         const struct etcd_op *then, size_t nthen, const struct etcd_op *otherwise,
                         size_t notherwise, bool *succeeded, int64_t *revision, struct cp_err *err)
{
    enum cp_code rc;
    struct etcd_reply r;

    if (succeeded != NULL)
        *succeeded = false;
    if (revision != NULL)
        *revision = 0;
    if (kv == NULL || (ncmps > 0 && cmps == NULL) || (nthen > 0 && then == NULL) ||
        (notherwise > 0 && otherwise == NULL))
        return cp_err_set(err, CP_EINTERNAL, "etcd_kv_txn: missing argument");
    /* etcd's default --max-txn-ops is 128. */
    if (ncmps > 128 || nthen > 128 || notherwise > 128)
        return cp_err_set(err, CP_EINVAL, "etcd: more than 128 comparisons or operations");
    json_t *c = json_array(), *s = json_array(), *f = json_array();
    json_t *req = json_pack("{s:o, s:o, s:o}", "compare", c, "success", s, "failure", f);
    bool ok = req != NULL;
    for (size_t i = 0; ok && i < ncmps; i++)
        ok = json_array_append_new(c, cmp_object(&cmps[i])) == 0;
    ok = ok && add_ops(s, then, nthen) == 0 && add_ops(f, otherwise, notherwise) == 0;
    if (!ok) {
        json_decref(req);
        return cp_err_set(err, CP_EINVAL,
                          "etcd: a transaction with a bad key, value or kind (or out of memory)");
    }
    const char *first = ncmps > 0 ? cmps[0].key : nthen > 0 ? then[0].key : "";
    char what[128];
    (void)snprintf(what, sizeof what, "transaction on %.80s", first);
    rc = call(kv, "/v3/kv/txn", req, false, what, &r, err);
    if (rc == CP_OK) {
        int64_t rev = 0;
        rc = etcd_json_revision(r.root, &rev, err);
        if (succeeded != NULL)
            *succeeded = json_is_true(json_object_get(r.root, "succeeded"));
        if (revision != NULL)
            *revision = rev;
    }
    etcd_reply_clear(&r);
    return rc;
}

/* ------------------------------------------------------------------ leases */

enum cp_code etcd_lease_grant(struct etcd_kv *kv, unsigned ttl_s, int64_t *id, struct cp_err *err)
{
    enum cp_code rc;
    struct etcd_reply r;
    int64_t got = 0, ttl = 0;

    if (kv == NULL || id == NULL)
        return cp_err_set(err, CP_EINTERNAL, "etcd_lease_grant: missing argument");
    *id = 0;
    if (ttl_s == 0)
        return cp_err_set(err, CP_EINVAL, "etcd: a lease needs a TTL of at least 1 s");
    json_t *req = json_pack("{s:I}", "TTL", (json_int_t)ttl_s);
    rc = call(kv, "/v3/lease/grant", req, false, "lease grant", &r, err);
    if (rc == CP_OK && (rc = etcd_json_int64(r.root, "ID", &got, err)) == CP_OK &&
        (rc = etcd_json_int64(r.root, "TTL", &ttl, err)) == CP_OK && (got == 0 || ttl <= 0))
        rc = cp_err_set(err, CP_EPROTO, "etcd granted no lease (ID %lld, TTL %lld)", (long long)got,
                        (long long)ttl);
    if (rc == CP_OK)
        *id = got;
    etcd_reply_clear(&r);
    return rc;
}

enum cp_code etcd_lease_keepalive(struct etcd_kv *kv, int64_t id, int64_t *ttl_left,
                                  struct cp_err *err)
{
    enum cp_code rc;
    struct etcd_reply r;
    int64_t ttl = 0, got = 0;

    if (ttl_left != NULL)
        *ttl_left = 0;
    if (kv == NULL)
        return cp_err_set(err, CP_EINTERNAL, "etcd_lease_keepalive: missing argument");
    json_t *req = json_pack("{s:I}", "ID", (json_int_t)id);
    rc = call(kv, "/v3/lease/keepalive", req, true, "lease keep-alive", &r, err);
    if (rc == CP_OK && (rc = etcd_json_int64(r.root, "TTL", &ttl, err)) == CP_OK &&
        (rc = etcd_json_int64(r.root, "ID", &got, err)) == CP_OK && got != 0 && got != id)
        rc = cp_err_set(err, CP_EPROTO, "etcd kept another lease alive (%llx, not %llx)",
                        (unsigned long long)got, (unsigned long long)id);
    /* A lease that has expired (or never was) comes back without a TTL. */
    if (rc == CP_OK && ttl <= 0)
        rc = cp_err_set(err, CP_ETIMEOUT, "etcd lease %llx has expired", (unsigned long long)id);
    if (rc == CP_OK && ttl_left != NULL)
        *ttl_left = ttl;
    etcd_reply_clear(&r);
    return rc;
}

enum cp_code etcd_lease_revoke(struct etcd_kv *kv, int64_t id, struct cp_err *err)
{
    enum cp_code rc;
    struct etcd_reply r;

    if (kv == NULL)
        return cp_err_set(err, CP_EINTERNAL, "etcd_lease_revoke: missing argument");
    json_t *req = json_pack("{s:I}", "ID", (json_int_t)id);
    /* etcd 3.4's gateway serves /v3/kv/lease/revoke too; 3.5 keeps this one. */
    rc = call(kv, "/v3/lease/revoke", req, false, "lease revocation", &r, err);
    /* Gone already (expired): its keys are gone too, which is what was asked. */
    if (rc == CP_EPROTO && r.code == GRPC_NOT_FOUND && strstr(r.message, "lease not found"))
        rc = CP_OK;
    etcd_reply_clear(&r);
    return rc;
}
