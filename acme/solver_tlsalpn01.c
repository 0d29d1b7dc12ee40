/*
 * acme/solver_tlsalpn01.c - the built-in tls-alpn-01 server (RFC 8737) and
 * its certificate.
 *
 * A connection is a TLS handshake and nothing else (RFC 8737 §3: the
 * validation is the handshake): the ClientHello must offer ALPN "acme-tls/1"
 * and an SNI of a registered name, and gets that name's self-signed
 * certificate carrying the critical id-pe-acmeIdentifier extension; every
 * other handshake fails with an alert.  No application data is exchanged.
 * The handshake runs on the non-blocking socket: each call of
 * acme_tlsalpn01_step() goes as far as the bytes at hand allow and returns
 * what OpenSSL waits for (WANT_READ/WANT_WRITE) to the poll loop
 * (solver_loop.c), so a client that stops half-way holds nothing but its
 * slot until its deadline.  The thread, table and stop logic are shared with
 * http-01 (solver_http01.c, solver_loop.c).
 */
#include "acme/acme.h"
#include "acme/solver_int.h"

#include <arpa/inet.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* RFC 8737 §6.2: the ALPN protocol ID, and §6.1: id-pe-acmeIdentifier. */
#define ACME_TLS_1          "acme-tls/1"
#define ACME_TLS_1_LEN      10
#define OID_ACME_IDENTIFIER "1.3.6.1.5.5.7.1.31"
#define CERT_VALID_BEFORE   3600L         /* backdated 1 h for clock skew */
#define CERT_VALID_AFTER    (7L * 86400L) /* an order never takes a week */

/* ----------------------------------------------------------- certificate */

static bool ldh(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

enum cp_code acme_tlsalpn01_name(const char *name, char out[254], struct cp_err *err)
{
    if (name == NULL || *name == '\0')
        return cp_err_set(err, CP_EINVAL, "tls-alpn-01: empty name");
    /* Characters first, so that the messages below can show the name (it
     * may come from the network: no control characters in our output). */
    size_t n = strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (!ldh(name[i]) && name[i] != '.' && name[i] != '*')
            return cp_err_set(err, CP_EINVAL,
                              "tls-alpn-01: the name has a character other than letters, "
                              "digits, '-' and '.' (byte %zu)",
                              i);
    }
    if (strchr(name, '*') != NULL)
        return cp_err_set(err, CP_EINVAL,
                          "tls-alpn-01 cannot validate the wildcard name %.300s (RFC 8737 §3; "
                          "use dns-01)",
                          name);
    if (n > 253)
        return cp_err_set(err, CP_EINVAL,
                          "tls-alpn-01: name %.64s... is longer than 253 characters", name);
    size_t label = 0;
    for (size_t i = 0; i <= n; i++) {
        char c = name[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63)
                return cp_err_set(err, CP_EINVAL,
                                  "tls-alpn-01: %s is not a DNS name (empty or over-long label)",
                                  name);
            label = 0;
        } else {
            label++;
        }
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    return CP_OK;
}

/* subjectAltName with exactly the one dNSName (RFC 8737 §3), or the one
 * iPAddress of `iplen` octets `ip` when iplen > 0 (RFC 8738 §6). */
static bool add_san(X509 *x, const char *name, const unsigned char *ip, int iplen)
{
    bool ok = false;
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_STRING *ia5 = iplen > 0 ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
    if (gens == NULL || gn == NULL || ia5 == NULL)
        goto out;
    if (iplen > 0 ? ASN1_OCTET_STRING_set(ia5, ip, iplen) != 1
                  : ASN1_STRING_set(ia5, name, (int)strlen(name)) != 1)
        goto out;
    GENERAL_NAME_set0_value(gn, iplen > 0 ? GEN_IPADD : GEN_DNS, ia5);
    ia5 = NULL;
    if (sk_GENERAL_NAME_push(gens, gn) <= 0)
        goto out;
    gn = NULL;
    ok = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1;
out:
    ASN1_STRING_free(ia5);
    GENERAL_NAME_free(gn);
    GENERAL_NAMES_free(gens);
    return ok;
}

/* id-pe-acmeIdentifier, critical (RFC 8737 §3), whose extnValue is the DER of
 * Authorization ::= OCTET STRING (SIZE (32)): 04 20 <SHA-256(key authz)>. */
static bool add_acme_identifier(X509 *x, const unsigned char der[34])
{
    bool ok = false;
    ASN1_OBJECT *oid = OBJ_txt2obj(OID_ACME_IDENTIFIER, 1);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext = NULL;
    if (oid == NULL || os == NULL || ASN1_OCTET_STRING_set(os, der, 34) != 1)
        goto out;
    ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 1, os);
    ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
out:
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(oid);
    return ok;
}

static bool set_serial(X509 *x)
{
    unsigned char rnd[16];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return false;
    rnd[0] &= 0x7f; /* positive */
    rnd[0] |= 0x40; /* and non-zero */
    BIGNUM *bn = BN_bin2bn(rnd, sizeof rnd, NULL);
    bool ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

enum cp_code acme_tlsalpn01_cert(const char *name, const char *key_authz,
                                 struct evp_pkey_st **key_out, struct x509_st **cert_out,
                                 struct cp_err *err)
{
    if (key_out == NULL || cert_out == NULL)
        return cp_err_set(err, CP_EINVAL, "tls-alpn-01 certificate: no result pointers");
    *key_out = NULL;
    *cert_out = NULL;
    char lower[254];
    unsigned char ip[16];
    int iplen = 0;
    enum cp_code rc = CP_OK;
    if (acme_ip_normalize(name, NULL)) {
        iplen = inet_pton(AF_INET, name, ip) == 1 ? 4 : 16;
        if (iplen == 16 && inet_pton(AF_INET6, name, ip) != 1)
            return cp_err_set(err, CP_EINTERNAL, "tls-alpn-01: cannot read the address");
        (void)acme_ip_normalize(name, lower);
    } else {
        rc = acme_tlsalpn01_name(name, lower, err);
    }
    if (rc != CP_OK)
        return rc;
    if (key_authz == NULL || *key_authz == '\0')
        return cp_err_set(err, CP_EINVAL, "tls-alpn-01: empty key authorization for %s", lower);

    unsigned char der[34] = {0x04, 0x20};
    unsigned int mdlen = 0;
    EVP_PKEY *pkey = NULL;
    X509 *x = NULL;
    if (EVP_Digest(key_authz, strlen(key_authz), der + 2, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen != 32) {
        rc = cp_err_set(err, CP_EINTERNAL, "tls-alpn-01: SHA-256 failed");
        goto out;
    }

    pkey = EVP_EC_gen("P-256");
    x = X509_new();
    if (pkey == NULL || x == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "tls-alpn-01: cannot make a P-256 key for %s", lower);
        goto out;
    }

    X509_NAME *subject = X509_get_subject_name(x);
    bool ok = X509_set_version(x, X509_VERSION_3) == 1 && set_serial(x) &&
              X509_gmtime_adj(X509_getm_notBefore(x), -CERT_VALID_BEFORE) != NULL &&
              X509_gmtime_adj(X509_getm_notAfter(x), CERT_VALID_AFTER) != NULL &&
              X509_set_pubkey(x, pkey) == 1;
    /* A CN is limited to 64 characters (RFC 5280 ub-common-name); the SAN is
     * what counts, so longer names go without one. */
    if (ok && strlen(lower) <= 64 && iplen == 0)
        ok = X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const unsigned char *)lower,
                                        -1, -1, 0) == 1;
    ok = ok && X509_set_issuer_name(x, subject) == 1 && add_san(x, lower, ip, iplen) &&
         add_acme_identifier(x, der) && X509_sign(x, pkey, EVP_sha256()) > 0;
    if (!ok) {
        rc = cp_err_set(err, CP_EINTERNAL, "tls-alpn-01: cannot build the certificate for %s",
                        lower);
        goto out;
    }
    *key_out = pkey;
    *cert_out = x;
    pkey = NULL;
    x = NULL;
out:
    OPENSSL_cleanse(der, sizeof der);
    EVP_PKEY_free(pkey);
    X509_free(x);
    ERR_clear_error();
    return rc;
}

/* ----------------------------------------------------------------- server */

/* A ClientHello without ALPN never reaches the ALPN callback: refuse it here
 * (RFC 8737 §3: the server must use "acme-tls/1"). */
static int client_hello_cb(SSL *ssl, int *al, void *arg)
{
    (void)arg;
    const unsigned char *ext = NULL;
    size_t len = 0;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext,
                                  &len) != 1) {
        *al = SSL_AD_NO_APPLICATION_PROTOCOL;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    for (unsigned int i = 0; i < inlen;) {
        unsigned int n = in[i];
        if (n == 0 || n > inlen - i - 1)
            break;
        if (n == ACME_TLS_1_LEN && memcmp(in + i + 1, ACME_TLS_1, ACME_TLS_1_LEN) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)n;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* Pick the certificate for the SNI; unknown or missing names end the
 * handshake. */
static int servername_cb(SSL *ssl, int *al, void *arg)
{
    struct acme_solver_server *s = arg;
    struct solver_conn *c = SSL_get_app_data(ssl);
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    char lower[254];
    if (c == NULL || sni == NULL || acme_tlsalpn01_name(sni, lower, NULL) != CP_OK) {
        *al = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    bool ok = false;
    pthread_mutex_lock(&s->lock);
    struct solver_entry *e = acme_solver_lookup(s, lower);
    /* SSL_use_* take their own references: a later replacement of the
     * entry does not pull them from under this handshake. */
    if (e != NULL)
        ok = SSL_use_certificate(ssl, e->cert) == 1 && SSL_use_PrivateKey(ssl, e->pkey) == 1;
    pthread_mutex_unlock(&s->lock);
    if (!ok) {
        *al = e == NULL ? SSL_AD_UNRECOGNIZED_NAME : SSL_AD_INTERNAL_ERROR;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    c->matched = true;
    memcpy(c->name, lower, strlen(lower) + 1); /* at most 253 characters */
    return SSL_TLSEXT_ERR_OK;
}

enum tls_phase { TLS_HANDSHAKE, TLS_CLOSE };

void acme_tlsalpn01_release(struct solver_conn *c)
{
    SSL_free(c->ssl);
    c->ssl = NULL;
    ERR_clear_error();
}

/* What SSL_accept()/SSL_shutdown() wait for; false: they failed. */
static bool tls_wants(struct solver_conn *c, int r)
{
    int e = SSL_get_error(c->ssl, r);
    ERR_clear_error();
    c->events = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
    return c->events != 0;
}

bool acme_tlsalpn01_step(struct acme_solver_server *s, struct solver_conn *c)
{
    if (c->ssl == NULL) {
        c->ssl = SSL_new(s->ssl_ctx);
        /* SSL_set_fd keeps the socket non-blocking: every call below returns
         * WANT_READ/WANT_WRITE instead of waiting. */
        if (c->ssl == NULL || SSL_set_app_data(c->ssl, c) != 1 || SSL_set_fd(c->ssl, c->fd) != 1)
            return false;
        c->phase = TLS_HANDSHAKE;
    }
    if (c->phase == TLS_HANDSHAKE) {
        ERR_clear_error();
        int r = SSL_accept(c->ssl);
        if (r != 1)
            return tls_wants(c, r);
        const unsigned char *proto = NULL;
        unsigned int plen = 0;
        SSL_get0_alpn_selected(c->ssl, &proto, &plen);
        if (c->matched && plen == ACME_TLS_1_LEN && memcmp(proto, ACME_TLS_1, ACME_TLS_1_LEN) == 0)
            acme_solver_served(s, c->name);
        c->answered = true;
        c->phase = TLS_CLOSE;
    }
    /* One close_notify and done: nothing else is exchanged.  Sent, or
     * failed: close; only a full send buffer is worth waiting for. */
    ERR_clear_error();
    int r = SSL_shutdown(c->ssl);
    if (r >= 0)
        return false;
    return tls_wants(c, r) && c->events == POLLOUT;
}

static bool setup_ctx(struct acme_solver_server *s)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return false;
    s->ssl_ctx = ctx;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        return false;
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_set_num_tickets(ctx, 0) != 1)
        return false;
    SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, s);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, s);
    return SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb) == 1 &&
           SSL_CTX_set_tlsext_servername_arg(ctx, s) == 1;
}

enum cp_code acme_tlsalpn01_server_start(const char *addr, int port,
                                         struct acme_solver_server **out, struct cp_err *err)
{
    if (out == NULL)
        return cp_err_set(err, CP_EINVAL, "tls-alpn-01 server: no result pointer");
    struct acme_solver_server *s = NULL;
    enum cp_code rc = acme_solver_server_new(SOLVER_TLSALPN01, addr, port, &s, err);
    if (rc != CP_OK)
        return rc;
    if (!setup_ctx(s)) {
        rc = cp_err_set(err, CP_EINTERNAL, "tls-alpn-01 server: cannot set up TLS");
        ERR_clear_error();
    }
    if (rc == CP_OK)
        rc = acme_solver_server_run(s, err);
    if (rc != CP_OK) {
        acme_solver_server_stop(s);
        return rc;
    }
    *out = s;
    return CP_OK;
}
