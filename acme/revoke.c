/*
 * acme/revoke.c - certificate revocation (RFC 8555 §7.6): the reason codes a
 * subscriber may give, the revokeCert payload, and the request, signed by the
 * account or by the certificate's own key (see acme/acme.h).
 */
#include "acme/acme.h"
#include "acme/client_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

/*
 * RFC 5280 §5.3.1 codes.  Left out on purpose: cACompromise (2),
 * certificateHold (6), removeFromCRL (8), privilegeWithdrawn (9) and
 * aACompromise (10) are for a CA to use, not a subscriber; CAs such as
 * Let's Encrypt answer badRevocationReason for them.  (7 is unused.)
 */
static const struct acme_revoke_reason reasons[] = {
    {"unspecified", 0}, {"keyCompromise", 1},        {"affiliationChanged", 3},
    {"superseded", 4},  {"cessationOfOperation", 5},
};
#define NREASONS (sizeof reasons / sizeof reasons[0])

const struct acme_revoke_reason *acme_revoke_reasons(size_t *n)
{
    *n = NREASONS;
    return reasons;
}

enum cp_code acme_revoke_reason_parse(const char *name, int *code, struct cp_err *err)
{
    for (size_t i = 0; i < NREASONS; i++)
        if (strcasecmp(name, reasons[i].name) == 0) {
            *code = reasons[i].code;
            return CP_OK;
        }
    char list[256];
    size_t len = 0;
    for (size_t i = 0; i < NREASONS && len < sizeof list; i++)
        len +=
            (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", reasons[i].name);
    return cp_err_set(err, CP_EINVAL, "--reason \"%.64s\": use one of %s", name, list);
}

const char *acme_revoke_reason_name(int code)
{
    for (size_t i = 0; i < NREASONS; i++)
        if (reasons[i].code == code)
            return reasons[i].name;
    return NULL;
}

enum cp_code acme_revoke_payload(const unsigned char *der, size_t der_len, int reason, char **out,
                                 struct cp_err *err)
{
    *out = NULL;
    if (der == NULL || der_len == 0)
        return cp_err_set(err, CP_EINVAL, "no certificate to revoke");
    if (reason != ACME_REVOKE_NO_REASON && acme_revoke_reason_name(reason) == NULL)
        return cp_err_set(err, CP_EINVAL,
                          "revocation reason code %d is not one a subscriber "
                          "may give",
                          reason);
    char *b64 = acme_b64url_encode(der, der_len);
    json_t *j = b64 ? json_pack("{s:s}", "certificate", b64) : NULL;
    if (j != NULL && reason != ACME_REVOKE_NO_REASON &&
        json_object_set_new(j, "reason", json_integer(reason)) != 0) {
        json_decref(j);
        j = NULL;
    }
    *out = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    free(b64);
    return *out ? CP_OK : cp_err_set(err, CP_ENOMEM, "out of memory");
}

enum cp_code acme_chain_serial_hex(const struct acme_chain *c, char *out, size_t size,
                                   struct cp_err *err)
{
    static const char digits[] = "0123456789abcdef";
    X509 *leaf = c ? acme_chain_x509(c, 0) : NULL;
    const ASN1_INTEGER *serial = leaf ? X509_get0_serialNumber(leaf) : NULL;
    BIGNUM *bn = serial ? ASN1_INTEGER_to_BN(serial, NULL) : NULL;
    unsigned char bytes[64];
    int n = bn && BN_num_bytes(bn) <= (int)sizeof bytes ? BN_bn2bin(bn, bytes) : -1;
    BN_free(bn);
    ERR_clear_error();
    if (n < 0)
        return cp_err_set(err, CP_EINVAL, "the certificate has no usable serial number");
    char hex[2 * sizeof bytes + 1];
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        hex[len++] = digits[bytes[i] >> 4];
        hex[len++] = digits[bytes[i] & 15];
    }
    hex[len] = '\0';
    const char *start = hex + strspn(hex, "0"); /* no leading zeros */
    if (*start == '\0')
        start = "0"; /* serial 0: not valid under RFC 5280, still printable */
    if (strlen(start) >= size)
        return cp_err_set(err, CP_EINVAL, "the certificate's serial number is too long");
    memcpy(out, start, strlen(start) + 1);
    return CP_OK;
}

enum cp_code acme_revoke_cert(struct acme_client *c, const struct acme_chain *cert, int reason,
                              const struct acme_key *cert_key, struct acme_problem *prob,
                              struct cp_err *err)
{
    const struct acme_directory *dir = acme_client_directory(c);
    struct acme_response resp = {0};
    unsigned char *der = NULL;
    char *payload = NULL;
    enum cp_code rc;

    if (dir->revoke_cert == NULL)
        return cp_err_set(err, CP_EPROTO,
                          "the CA's directory names no revokeCert URL: it does not take "
                          "revocation requests");
    if (cert == NULL || acme_chain_count(cert) == 0)
        return cp_err_set(err, CP_EINTERNAL, "acme_revoke_cert: no certificate");
    if (cert_key != NULL && acme_chain_check_key(cert, cert_key, NULL) != CP_OK)
        return cp_err_set(err, CP_EINVAL,
                          "the key given is not the certificate's: its public key differs; "
                          "give the private key the certificate was issued for");
    int len = i2d_X509(acme_chain_x509(cert, 0), &der);
    if (len <= 0) {
        ERR_clear_error();
        return cp_err_set(err, CP_EINVAL, "the certificate cannot be encoded as DER");
    }
    rc = acme_revoke_payload(der, (size_t)len, reason, &payload, err);
    if (rc == CP_OK)
        rc = cert_key != NULL
                 ? acme_post_jwk(c, cert_key, dir->revoke_cert, payload, &resp, prob, err)
                 : acme_post(c, dir->revoke_cert, payload, &resp, prob, err);
    acme_response_clear(&resp);
    free(payload);
    OPENSSL_free(der);
    return rc;
}
