/*
 * acme/cert.c - the certificate chain a CA serves from an order's certificate
 * URL (RFC 8555 §7.4.2: application/pem-certificate-chain, leaf first).
 *
 * The chain is untrusted input until checked, so parsing is strict where
 * OpenSSL's PEM readers are lenient: PEM_read_bio_X509() skips any text before
 * a block and silently passes over blocks with other labels (a private key
 * among the certificates would vanish unnoticed).  Here the text between
 * blocks must be white space, every block must be a "CERTIFICATE" without PEM
 * headers whose DER is exactly one certificate, and the count and total size
 * are bounded.  RFC 8555 §9.1 wants the strict encoding of RFC 7468 and no
 * explanatory text, so nothing else is lost by refusing it.
 *
 * This module does not verify the chain against a trust store: the transport
 * to the CA is authenticated, and what matters to the user is that the leaf
 * carries their key and names (acme_chain_check_key/_names).
 */
#include "acme/acme.h"

#include <arpa/inet.h>
#include "common/civil.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define CHAIN_MAX_CERTS 10
#define CHAIN_MAX_BYTES (1024 * 1024) /* the transport's default body cap */

struct acme_chain {
    X509 *certs[CHAIN_MAX_CERTS];
    size_t n;
    time_t not_before; /* of the leaf, converted once at parse time */
    time_t not_after;
    char *top_issuer_cn; /* never NULL once parsed */
};

/* ------------------------------------------------------------------ time */

static bool asn1_time_to_unix(const ASN1_TIME *t, time_t *out)
{
    struct tm tm = {0};
    /* ASN1_TIME_to_tm checks the format (UTCTime or GeneralizedTime, "Z") and
     * normalizes to UTC. */
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return false;
    int64_t secs =
        cp_days_from_civil((int64_t)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) * 86400 +
        tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
    if (sizeof(time_t) < sizeof(int64_t) && (secs > INT32_MAX || secs < INT32_MIN))
        return false;
    *out = (time_t)secs;
    return true;
}

/* ----------------------------------------------------------------- names */

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* An ASN.1 string equals `name` exactly, ignoring ASCII case (and an embedded
 * NUL never matches). */
static bool asn1_name_equal(const ASN1_STRING *s, const char *name)
{
    const unsigned char *data = ASN1_STRING_get0_data(s);
    int slen = ASN1_STRING_length(s);
    size_t len = strlen(name);
    if (data == NULL || slen < 0 || (size_t)slen != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (ascii_lower(data[i]) != ascii_lower((unsigned char)name[i]))
            return false;
    }
    return true;
}

/* The last CN of `name` as a heap UTF-8 string; "" when absent or when it
 * holds a NUL (it would compare as a shorter, different name).  NULL only
 * when out of memory. */
static char *name_cn(const X509_NAME *name)
{
    int idx = -1;
    for (int i = -1; (i = X509_NAME_get_index_by_NID(name, NID_commonName, i)) >= 0;)
        idx = i;
    unsigned char *utf8 = NULL;
    int len = -1;
    if (idx >= 0) {
        const ASN1_STRING *data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
        len = ASN1_STRING_to_UTF8(&utf8, data);
    }
    if (len < 0 || memchr(utf8, '\0', (size_t)len) != NULL)
        len = 0;
    char *copy = malloc((size_t)len + 1);
    if (copy != NULL) {
        if (len > 0)
            memcpy(copy, utf8, (size_t)len);
        copy[len] = '\0';
    }
    OPENSSL_free(utf8);
    return copy;
}

/* ----------------------------------------------------------------- parse */

static bool is_pem_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* p starts with a whole "-----BEGIN CERTIFICATE-----" line.  Checked here because
 * PEM_read_bio() would skip a malformed BEGIN line and whatever follows it. */
static bool is_begin_cert(const char *p, size_t avail)
{
    static const char begin[] = "-----BEGIN " PEM_STRING_X509 "-----";
    size_t i = sizeof begin - 1;
    if (avail < i || memcmp(p, begin, i) != 0)
        return false;
    while (i < avail && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r'))
        i++;
    return i < avail && p[i] == '\n';
}

/* The label of a "-----BEGIN <label>-----" line at p, cut to fit `out`, for messages. */
static void begin_label(const char *p, size_t avail, char *out, size_t outsz)
{
    static const char begin[] = "-----BEGIN ";
    size_t i = 0;
    if (avail >= sizeof begin - 1 && memcmp(p, begin, sizeof begin - 1) == 0) {
        p += sizeof begin - 1;
        avail -= sizeof begin - 1;
        while (i + 1 < outsz && i < avail && p[i] != '-' && p[i] >= 0x20 && p[i] < 0x7f) {
            out[i] = p[i];
            i++;
        }
    }
    out[i] = '\0';
}

enum cp_code acme_chain_parse(const char *pem, size_t len, const char *what,
                              struct acme_chain **out, struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    struct acme_chain *c = NULL;
    BIO *bio = NULL;
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;

    if (what == NULL)
        what = "certificate chain";
    if (out == NULL)
        return cp_err_set(err, CP_EINTERNAL, "acme_chain_parse: no output");
    *out = NULL;
    if (pem == NULL || len == 0)
        return cp_err_set(err, CP_EPROTO, "%s: empty, no certificate", what);
    if (len > CHAIN_MAX_BYTES)
        return cp_err_set(err, CP_EPROTO, "%s: %zu bytes, more than the %d a chain may have", what,
                          len, CHAIN_MAX_BYTES);

    c = calloc(1, sizeof *c);
    bio = BIO_new_mem_buf(pem, (int)len);
    if (c == NULL || bio == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "%s: out of memory", what);
        goto out;
    }

    for (;;) {
        /* Peek at what is left: a read-only memory BIO reports its read position. */
        char *rest = NULL;
        long left = BIO_get_mem_data(bio, &rest);
        while (left > 0 && is_pem_space(*rest)) {
            rest++;
            left--;
        }
        if (left <= 0)
            break;
        size_t at = len - (size_t)left;
        /* A BEGIN line must start a line too: PEM_read_bio() would skip an indented one. */
        if (!is_begin_cert(rest, (size_t)left) || (at > 0 && pem[at - 1] != '\n')) {
            char label[40];
            begin_label(rest, (size_t)left, label, sizeof label);
            if (strncmp(label, PEM_STRING_X509, sizeof PEM_STRING_X509) == 0)
                rc = cp_err_set(err, CP_EPROTO, "%s: malformed BEGIN line at byte %zu", what, at);
            else if (label[0] != '\0')
                rc = cp_err_set(err, CP_EPROTO,
                                "%s: a \"%s\" PEM block at byte %zu where only certificates "
                                "may be",
                                what, label, at);
            else
                rc = cp_err_set(err, CP_EPROTO, "%s: %s at byte %zu, not a PEM certificate", what,
                                c->n == 0 ? "text" : "trailing text", at);
            goto out;
        }
        if (c->n == CHAIN_MAX_CERTS) {
            rc = cp_err_set(err, CP_EPROTO, "%s: more than %d certificates", what, CHAIN_MAX_CERTS);
            goto out;
        }

        long dlen = 0;
        if (PEM_read_bio(bio, &name, &header, &data, &dlen) != 1) {
            rc = cp_err_set(err, CP_EPROTO, "%s: certificate %zu (byte %zu) is not valid PEM", what,
                            c->n + 1, at);
            goto out;
        }
        /* The peek above saw "-----BEGIN CERTIFICATE-----"; PEM_read_bio checked
         * the END line matches it.  Encryption headers make no sense here. */
        if (strcmp(name, PEM_STRING_X509) != 0 || header[0] != '\0') {
            rc = cp_err_set(err, CP_EPROTO,
                            "%s: certificate %zu (byte %zu) has PEM headers or a wrong END line",
                            what, c->n + 1, at);
            goto out;
        }
        const unsigned char *p = data;
        X509 *x = d2i_X509(NULL, &p, dlen);
        if (x == NULL || p != data + dlen) {
            X509_free(x);
            rc = cp_err_set(err, CP_EPROTO,
                            "%s: certificate %zu (byte %zu) is not a DER X.509 certificate", what,
                            c->n + 1, at);
            goto out;
        }
        c->certs[c->n++] = x;
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        name = header = NULL;
        data = NULL;
    }

    if (c->n == 0) {
        rc = cp_err_set(err, CP_EPROTO, "%s: no certificate", what);
        goto out;
    }
    if (!asn1_time_to_unix(X509_get0_notBefore(c->certs[0]), &c->not_before) ||
        !asn1_time_to_unix(X509_get0_notAfter(c->certs[0]), &c->not_after)) {
        rc = cp_err_set(err, CP_EPROTO, "%s: the certificate has an unreadable validity period",
                        what);
        goto out;
    }
    c->top_issuer_cn = name_cn(X509_get_issuer_name(c->certs[c->n - 1]));
    if (c->top_issuer_cn == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "%s: out of memory", what);
        goto out;
    }
    *out = c;
    c = NULL;

out:
    ERR_clear_error();
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    BIO_free(bio);
    acme_chain_free(c);
    return rc;
}

size_t acme_chain_count(const struct acme_chain *c)
{
    return c != NULL ? c->n : 0;
}

/* ------------------------------------------------------------------- PEM */

/* PEM of certificates [from, to) as a heap string ("" for none); NULL when out of memory. */
static char *pem_range(const struct acme_chain *c, size_t from, size_t to)
{
    char *text = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        return NULL;
    for (size_t i = from; i < to; i++) {
        if (PEM_write_bio_X509(bio, c->certs[i]) != 1)
            goto out;
    }
    char *mem = NULL;
    long n = BIO_get_mem_data(bio, &mem);
    if (n < 0)
        goto out;
    text = malloc((size_t)n + 1);
    if (text == NULL)
        goto out;
    if (n > 0)
        memcpy(text, mem, (size_t)n);
    text[n] = '\0';
out:
    BIO_free(bio);
    return text;
}

enum cp_code acme_chain_pem(const struct acme_chain *c, char **cert, char **chain, char **fullchain,
                            struct cp_err *err)
{
    char *texts[3] = {NULL, NULL, NULL};
    char **outs[3] = {cert, chain, fullchain};

    for (size_t i = 0; i < 3; i++) {
        if (outs[i] != NULL)
            *outs[i] = NULL;
    }
    if (c == NULL || c->n == 0)
        return cp_err_set(err, CP_EINTERNAL, "acme_chain_pem: no chain");
    if (cert != NULL)
        texts[0] = pem_range(c, 0, 1);
    if (chain != NULL)
        texts[1] = pem_range(c, 1, c->n);
    if (fullchain != NULL)
        texts[2] = pem_range(c, 0, c->n);
    ERR_clear_error();
    for (size_t i = 0; i < 3; i++) {
        if (outs[i] != NULL && texts[i] == NULL) {
            for (size_t j = 0; j < 3; j++)
                free(texts[j]);
            return cp_err_set(err, CP_ENOMEM, "out of memory writing the certificate chain");
        }
    }
    for (size_t i = 0; i < 3; i++) {
        if (outs[i] != NULL)
            *outs[i] = texts[i];
    }
    return CP_OK;
}

/* ---------------------------------------------------------------- checks */

enum cp_code acme_chain_check_key(const struct acme_chain *c, const struct acme_key *key,
                                  struct cp_err *err)
{
    const EVP_PKEY *pkey = acme_key_evp(key);
    if (c == NULL || c->n == 0 || pkey == NULL)
        return cp_err_set(err, CP_EINTERNAL, "acme_chain_check_key: no chain or key");
    EVP_PKEY *pub = X509_get0_pubkey(c->certs[0]);
    /* Compares the public parts only; 0, -1 (other type) and -2 all mean "not ours". */
    int eq = pub != NULL ? EVP_PKEY_eq(pub, pkey) : 0;
    ERR_clear_error();
    if (eq != 1)
        return cp_err_set(err, CP_EPROTO,
                          "the certificate's public key is not the certificate key's");
    return CP_OK;
}

enum cp_code acme_chain_check_names(const struct acme_chain *c, const char *const *names, size_t n,
                                    struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    if (c == NULL || c->n == 0 || (names == NULL && n > 0))
        return cp_err_set(err, CP_EINTERNAL, "acme_chain_check_names: no chain or names");
    /* NULL also when the extension is absent or repeated (invalid, RFC 5280 §4.2):
     * then no name is covered. */
    GENERAL_NAMES *sans = X509_get_ext_d2i(c->certs[0], NID_subject_alt_name, NULL, NULL);
    ERR_clear_error();
    for (size_t i = 0; i < n && rc == CP_OK; i++) {
        bool found = false;
        unsigned char ip[16];
        int iplen = names[i] == NULL                         ? 0
                    : inet_pton(AF_INET, names[i], ip) == 1  ? 4
                    : inet_pton(AF_INET6, names[i], ip) == 1 ? 16
                                                             : 0;
        for (int j = 0; sans != NULL && j < sk_GENERAL_NAME_num(sans) && !found; j++) {
            const GENERAL_NAME *gen = sk_GENERAL_NAME_value(sans, j);
            if (iplen > 0) /* RFC 8738 §4: an address is an iPAddress, never a dNSName */
                found = gen->type == GEN_IPADD && ASN1_STRING_length(gen->d.iPAddress) == iplen &&
                        memcmp(ASN1_STRING_get0_data(gen->d.iPAddress), ip, (size_t)iplen) == 0;
            else
                found = gen->type == GEN_DNS && names[i] != NULL &&
                        asn1_name_equal(gen->d.dNSName, names[i]);
        }
        if (!found)
            rc = cp_err_set(err, CP_EPROTO, "the certificate does not name %s in subjectAltName",
                            names[i] != NULL ? names[i] : "(null)");
    }
    GENERAL_NAMES_free(sans);
    return rc;
}

/* ------------------------------------------------------------- accessors */

time_t acme_chain_not_before(const struct acme_chain *c)
{
    return c != NULL ? c->not_before : 0;
}

time_t acme_chain_not_after(const struct acme_chain *c)
{
    return c != NULL ? c->not_after : 0;
}

const char *acme_chain_top_issuer_cn(const struct acme_chain *c)
{
    return c != NULL && c->top_issuer_cn != NULL ? c->top_issuer_cn : "";
}

struct x509_st *acme_chain_x509(const struct acme_chain *c, size_t i)
{
    return c != NULL && i < c->n ? c->certs[i] : NULL;
}

void acme_chain_free(struct acme_chain *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        X509_free(c->certs[i]);
    free(c->top_issuer_cn);
    free(c);
}
