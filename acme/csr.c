/*
 * acme/csr.c - the PKCS#10 certificate signing request (RFC 2986) sent to an
 * order's finalize URL (RFC 8555 §7.4).
 *
 * The CA takes the identifiers from subjectAltName; the subject CN is only a
 * courtesy for tools that still show it, so it is left out when no name fits
 * the 64-octet upper bound of RFC 5280 (ub-common-name).  The names are
 * expected to be normalized already (the CLI does that); here they are only
 * checked for what would make the request itself wrong: empty, not printable
 * ASCII (an IA5String cannot hold anything else), too long, too many, or
 * repeated.
 */
#include "acme/acme.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define CSR_MAX_NAMES 100 /* Let's Encrypt's limit of identifiers per order */
#define CSR_MAX_NAME  253 /* RFC 1035 §2.3.4: a name in text form, without the root dot */
#define CSR_MAX_CN    64  /* RFC 5280 Appendix A: ub-common-name */

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Case-insensitive ASCII comparison, independent of the locale. */
static bool same_name(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        if (ascii_lower((unsigned char)*a) != ascii_lower((unsigned char)*b))
            return false;
    }
    return *a == *b;
}

static enum cp_code check_names(const char *const *names, size_t n, struct cp_err *err)
{
    if (names == NULL || n == 0)
        return cp_err_set(err, CP_EINVAL, "a certificate request needs at least one name");
    if (n > CSR_MAX_NAMES)
        return cp_err_set(err, CP_EINVAL, "%zu names are too many for one certificate (at most %d)",
                          n, CSR_MAX_NAMES);
    for (size_t i = 0; i < n; i++) {
        const char *name = names[i];
        if (name == NULL || name[0] == '\0')
            return cp_err_set(err, CP_EINVAL, "name %zu of the certificate request is empty",
                              i + 1);
        size_t len = strlen(name);
        if (len > CSR_MAX_NAME)
            return cp_err_set(err, CP_EINVAL, "name %zu (%.40s...) is longer than %d octets", i + 1,
                              name, CSR_MAX_NAME);
        for (size_t j = 0; j < len; j++) {
            unsigned char c = (unsigned char)name[j];
            if (c <= 0x20 || c >= 0x7f)
                return cp_err_set(err, CP_EINVAL,
                                  "name %zu has a character that cannot go in a certificate "
                                  "(byte 0x%02x at offset %zu)",
                                  i + 1, c, j);
        }
        char a[ACME_IP_MAX], b[ACME_IP_MAX];
        bool ip = acme_ip_normalize(name, a);
        for (size_t j = 0; j < i; j++) {
            /* Two spellings of one address ("::1", "0::1") are one name. */
            if (ip && acme_ip_normalize(names[j], b) && strcmp(a, b) == 0)
                return cp_err_set(err, CP_EINVAL, "the address %s is given twice", a);
            if (same_name(names[j], name))
                return cp_err_set(err, CP_EINVAL,
                                  "name \"%s\" is given twice (names are case-insensitive)", name);
        }
    }
    return CP_OK;
}

/* An iPAddress GeneralName (RFC 5280 §4.2.1.6: the address in network byte
 * order, 4 or 16 octets), or NULL when `name` is no address literal. */
static GENERAL_NAME *ip_general_name(const char *name)
{
    unsigned char buf[16];
    int len = inet_pton(AF_INET, name, buf) == 1 ? 4 : inet_pton(AF_INET6, name, buf) == 1 ? 16 : 0;
    if (len == 0)
        return NULL;
    GENERAL_NAME *gen = GENERAL_NAME_new();
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    if (gen == NULL || os == NULL || ASN1_OCTET_STRING_set(os, buf, len) != 1) {
        GENERAL_NAME_free(gen);
        ASN1_OCTET_STRING_free(os);
        return NULL;
    }
    GENERAL_NAME_set0_value(gen, GEN_IPADD, os);
    return gen;
}

/* The subjectAltName extension with every name as a dNSName, or an
 * iPAddress for an address literal (RFC 8738 §4), in order. */
static X509_EXTENSION *san_extension(const char *const *names, size_t n)
{
    X509_EXTENSION *ext = NULL;
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (gens == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (acme_ip_normalize(names[i], NULL)) {
            GENERAL_NAME *ipgen = ip_general_name(names[i]);
            if (ipgen == NULL || sk_GENERAL_NAME_push(gens, ipgen) <= 0) {
                GENERAL_NAME_free(ipgen);
                goto out;
            }
            continue;
        }
        GENERAL_NAME *gen = GENERAL_NAME_new();
        ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
        if (gen == NULL || ia5 == NULL || ASN1_STRING_set(ia5, names[i], -1) != 1) {
            GENERAL_NAME_free(gen);
            ASN1_IA5STRING_free(ia5);
            goto out;
        }
        GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
        if (sk_GENERAL_NAME_push(gens, gen) <= 0) {
            GENERAL_NAME_free(gen);
            goto out;
        }
    }
    ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
out:
    GENERAL_NAMES_free(gens);
    return ext;
}

/*
 * The request's SubjectPublicKeyInfo.  For an EC key it is written from the
 * key's parameters: the named curve and the encoded point (RFC 5480 §2),
 * the same DER X509_REQ_set_pubkey() makes.  That call takes OpenSSL 3.0's
 * encoder path for a provider key and decodes the result back (about five
 * million instructions, a tenth of a whole issuance); this takes a few
 * thousand.  RSA keys keep X509_REQ_set_pubkey().
 */
static bool set_pubkey(X509_REQ *req, EVP_PKEY *pkey)
{
    if (!EVP_PKEY_is_a(pkey, "EC"))
        return X509_REQ_set_pubkey(req, pkey) == 1;

    char group[64];
    unsigned char point[1 + 2 * 66]; /* uncompressed, up to P-521 */
    size_t glen = 0, plen = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &glen) != 1 ||
        EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                        sizeof point, &plen) != 1 ||
        plen == 0)
        return false;
    int curve = OBJ_txt2nid(group);
    if (curve == NID_undef)
        curve = EC_curve_nist2nid(group);
    X509_PUBKEY *spki = X509_REQ_get_X509_PUBKEY(req);
    ASN1_OBJECT *alg = OBJ_nid2obj(NID_X9_62_id_ecPublicKey);
    ASN1_OBJECT *param = curve != NID_undef ? OBJ_nid2obj(curve) : NULL;
    unsigned char *bits = OPENSSL_memdup(point, plen);
    if (spki == NULL || alg == NULL || param == NULL || bits == NULL ||
        X509_PUBKEY_set0_param(spki, alg, V_ASN1_OBJECT, param, bits, (int)plen) != 1) {
        OPENSSL_free(bits);
        return false;
    }
    return true;
}

enum cp_code acme_csr_make(const struct acme_key *cert_key, const char *const *names, size_t n,
                           unsigned char **der, size_t *der_len, struct cp_err *err)
{
    enum cp_code rc;
    EVP_PKEY *pkey = acme_key_evp(cert_key);
    X509_REQ *req = NULL;
    X509_NAME *subject = NULL;
    X509_EXTENSION *san = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    unsigned char *buf = NULL;

    if (der == NULL || der_len == NULL)
        return cp_err_set(err, CP_EINTERNAL, "acme_csr_make: no output");
    *der = NULL;
    *der_len = 0;
    if (pkey == NULL)
        return cp_err_set(err, CP_EINTERNAL, "acme_csr_make: no key");
    rc = check_names(names, n, err);
    if (rc != CP_OK)
        return rc;

    req = X509_REQ_new();
    subject = X509_NAME_new();
    if (req == NULL || subject == NULL)
        goto ossl_fail;
    /* RFC 2986 §4.1: version is 0 (v1), the only one defined. */
    if (X509_REQ_set_version(req, 0) != 1)
        goto ossl_fail;
    for (size_t i = 0; i < n; i++) {
        /* An address is no common name (CA/B Forum BR §7.1.4.3 wants the
         * CN, if any, to be one of the dNSNames or the address text; CAs
         * differ, so addresses are left to the SAN alone). */
        if (strlen(names[i]) <= CSR_MAX_CN && !acme_ip_normalize(names[i], NULL)) {
            if (X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_ASC,
                                           (const unsigned char *)names[i], -1, -1, 0) != 1)
                goto ossl_fail;
            break;
        }
    }
    if (X509_REQ_set_subject_name(req, subject) != 1)
        goto ossl_fail;
    if (!set_pubkey(req, pkey))
        goto ossl_fail;

    /* RFC 2986 §4.1 / RFC 2985 §5.4.2: the names travel in an extensionRequest attribute. */
    san = san_extension(names, n);
    exts = sk_X509_EXTENSION_new_null();
    if (san == NULL || exts == NULL || sk_X509_EXTENSION_push(exts, san) <= 0)
        goto ossl_fail;
    san = NULL; /* owned by exts now */
    if (X509_REQ_add_extensions(req, exts) != 1)
        goto ossl_fail;

    /* SHA-256 for both key kinds: ECDSA with SHA-256, or RSA PKCS#1 v1.5 with SHA-256. */
    if (X509_REQ_sign(req, pkey, EVP_sha256()) <= 0)
        goto ossl_fail;

    int len = i2d_X509_REQ(req, NULL);
    if (len <= 0)
        goto ossl_fail;
    buf = malloc((size_t)len);
    if (buf == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory encoding the certificate request");
        goto out;
    }
    unsigned char *p = buf;
    if (i2d_X509_REQ(req, &p) != len) {
        free(buf);
        buf = NULL;
        goto ossl_fail;
    }
    *der = buf;
    *der_len = (size_t)len;
    rc = CP_OK;
    goto out;

ossl_fail : {
    unsigned long e = ERR_peek_last_error();
    char reason[160];
    ERR_error_string_n(e, reason, sizeof reason);
    rc = cp_err_set(err, e == 0 ? CP_ENOMEM : CP_EINTERNAL,
                    "cannot build the certificate request for %s: %s", names[0],
                    e == 0 ? "out of memory" : reason);
}
out:
    ERR_clear_error();
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_EXTENSION_free(san);
    X509_NAME_free(subject);
    X509_REQ_free(req);
    return rc;
}
