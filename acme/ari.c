/*
 * acme/ari.c - ACME Renewal Information (RFC 9773): the identifier a CA gives
 * a certificate, and the renewal window it suggests for it.
 *
 * The renewalInfo answer is untrusted server text that decides when a
 * certificate is replaced, so it is read strictly: a window that cannot be
 * read whole is an error (§4.2: treat it as no answer at all), never a
 * window guessed from parts.  The explanation URL only ever reaches the
 * operator; one that is not a plain short http(s) URL is dropped.  Picking a
 * time in the window is the caller's business, not this file's.
 */
#include "acme/acme.h"
#include "acme/client_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define ARI_MAX_BODY      16384 /* a renewalInfo object is a few hundred bytes */
#define ARI_MAX_TIMESTAMP 64
#define ARI_MAX_URL       1024
#define ARI_MAX_CERT_ID   512 /* AKI and serial are 20-odd bytes each in practice */
/* RFC 9773 §4.3.2 asks for limits on the checking interval and gives one
 * minute and one day as examples; §4.3.3 waits six hours after an answer
 * without a usable Retry-After.  acme_retry_after() caps at one day too. */
#define ARI_RETRY_MIN_S     60
#define ARI_RETRY_MAX_S     86400
#define ARI_RETRY_DEFAULT_S (6 * 3600)

/* ------------------------------------------------------------- cert ID */

/* The content octets of the serial's DER encoding (without tag and length):
 * what §4.1 encodes, including the 0x00 that keeps a serial with its high
 * bit set positive.  Returns base64url or NULL. */
static char *serial_b64url(const X509 *x)
{
    const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
    unsigned char *der = NULL;
    char *b64 = NULL;
    int n = serial != NULL ? i2d_ASN1_INTEGER(serial, &der) : -1;
    if (n <= 0)
        return NULL;
    const unsigned char *p = der;
    long clen = 0;
    int tag = 0, cls = 0;
    int ret = ASN1_get_object(&p, &clen, &tag, &cls, n);
    if ((ret & 0x80) == 0 && tag == V_ASN1_INTEGER && clen > 0 && p + clen == der + n)
        b64 = acme_b64url_encode(p, (size_t)clen);
    OPENSSL_free(der);
    return b64;
}

enum cp_code acme_ari_cert_id(const struct acme_chain *c, char **out, struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    char *aki = NULL, *serial = NULL;

    *out = NULL;
    X509 *leaf = acme_chain_x509(c, 0);
    if (leaf == NULL)
        return cp_err_set(err, CP_EINTERNAL, "acme_ari_cert_id: no certificate");
    /* NULL when there is no AKI, when it has only issuer and serial, or when
     * OpenSSL found the extension malformed. */
    const ASN1_OCTET_STRING *keyid = X509_get0_authority_key_id(leaf);
    if (keyid == NULL || ASN1_STRING_length(keyid) <= 0) {
        rc = cp_err_set(err, CP_EINVAL,
                        "the certificate has no Authority Key Identifier with a keyIdentifier, "
                        "so it has no ARI identifier (RFC 9773 §4.1)");
        goto out;
    }
    aki = acme_b64url_encode(ASN1_STRING_get0_data(keyid), (size_t)ASN1_STRING_length(keyid));
    serial = serial_b64url(leaf);
    if (aki == NULL || serial == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory (or an unreadable serial number)");
        goto out;
    }
    size_t len = strlen(aki) + 1 + strlen(serial) + 1;
    *out = malloc(len);
    if (*out == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(*out, len, "%s.%s", aki, serial);
out:
    ERR_clear_error();
    free(aki);
    free(serial);
    return rc;
}

/* -------------------------------------------------------- renewalInfo */

void acme_renewal_info_clear(struct acme_renewal_info *r)
{
    if (r == NULL)
        return;
    free(r->explanation_url);
    memset(r, 0, sizeof *r);
}

/* window[key] read as an RFC 3339 time; errors name the member. */
static enum cp_code window_time(const json_t *window, const char *key, long long *out,
                                struct cp_err *err)
{
    const json_t *v = json_object_get(window, key);
    if (v == NULL)
        return cp_err_set(err, CP_EPROTO, "renewalInfo: suggestedWindow has no \"%s\"", key);
    if (!json_is_string(v))
        return cp_err_set(err, CP_EPROTO, "renewalInfo: suggestedWindow.%s is not a string", key);
    if (json_string_length(v) > ARI_MAX_TIMESTAMP ||
        !acme_timestamp_parse(json_string_value(v), out))
        return cp_err_set(err, CP_EPROTO,
                          "renewalInfo: suggestedWindow.%s is not an RFC 3339 date-time", key);
    return CP_OK;
}

/* A copy of the URL when it is short, printable ASCII without spaces, and
 * http or https; NULL otherwise (also when out of memory: it is optional). */
static char *explanation_url(const json_t *v)
{
    if (!json_is_string(v) || json_string_length(v) > ARI_MAX_URL)
        return NULL;
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (strncasecmp(s, "https://", 8) != 0 && strncasecmp(s, "http://", 7) != 0)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch >= 0x7f) /* also refuses UTF-8 and terminal controls */
            return NULL;
    }
    return strndup(s, len);
}

enum cp_code acme_renewal_info_parse(const char *body, size_t len, struct acme_renewal_info *out,
                                     struct cp_err *err)
{
    enum cp_code rc;
    json_t *j = NULL;
    json_error_t jerr;

    memset(out, 0, sizeof *out);
    if (body == NULL || len == 0)
        return cp_err_set(err, CP_EPROTO, "renewalInfo: empty answer");
    if (len > ARI_MAX_BODY)
        return cp_err_set(err, CP_EPROTO, "renewalInfo: %zu bytes, more than the %d allowed", len,
                          ARI_MAX_BODY);
    j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(j)) {
        rc = cp_err_set(err, CP_EPROTO, "renewalInfo: not a JSON object");
        goto out;
    }
    const json_t *window = json_object_get(j, "suggestedWindow");
    if (!json_is_object(window)) {
        rc = cp_err_set(err, CP_EPROTO, "renewalInfo: %s",
                        window ? "suggestedWindow is not an object" : "no suggestedWindow");
        goto out;
    }
    long long start = 0, end = 0;
    if ((rc = window_time(window, "start", &start, err)) != CP_OK ||
        (rc = window_time(window, "end", &end, err)) != CP_OK)
        goto out;
    if (end <= start) { /* §4.2: such an object is invalid */
        rc = cp_err_set(err, CP_EPROTO, "renewalInfo: the suggested window ends before it starts");
        goto out;
    }
    out->start = start;
    out->end = end;
    out->explanation_url = explanation_url(json_object_get(j, "explanationURL"));
    rc = CP_OK;
out:
    json_decref(j);
    return rc;
}

/* base64url "." base64url, bounded: it becomes a path segment. */
static bool cert_id_ok(const char *id)
{
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t a = strspn(id, b64url);
    if (a == 0 || id[a] != '.')
        return false;
    size_t b = strspn(id + a + 1, b64url);
    return b > 0 && id[a + 1 + b] == '\0' && a + 1 + b <= ARI_MAX_CERT_ID;
}

enum cp_code acme_renewal_info_get(struct acme_client *c, const char *cert_id,
                                   struct acme_renewal_info *out, struct cp_err *err)
{
    enum cp_code rc;
    struct acme_response r = {0};
    char *url = NULL;

    memset(out, 0, sizeof *out);
    const char *base = acme_client_directory(c)->renewal_info;
    if (base == NULL)
        return cp_err_set(err, CP_EINVAL,
                          "this CA offers no renewal information (no renewalInfo in its "
                          "directory)");
    if (cert_id == NULL || !cert_id_ok(cert_id))
        return cp_err_set(err, CP_EINVAL, "\"%.64s\" is not an ARI certificate identifier",
                          cert_id ? cert_id : "");
    size_t blen = strlen(base);
    bool slash = blen > 0 && base[blen - 1] == '/';
    size_t len = blen + 1 + strlen(cert_id) + 1;
    url = malloc(len);
    if (url == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    snprintf(url, len, "%s%s%s", base, slash ? "" : "/", cert_id);

    rc = acme_client_get(c, url, &r, err);
    if (rc != CP_OK)
        goto out;
    if (r.status < 200 || r.status > 299) {
        struct acme_problem prob = {0};
        struct cp_err ignored;
        if (r.body != NULL && acme_problem_parse(r.body, r.body_len, &prob, &ignored) == CP_OK)
            rc = cp_err_set(err, CP_ECA, "renewalInfo %s: HTTP %ld: %s: %s", url, r.status,
                            prob.type, prob.detail ? prob.detail : "");
        else
            rc = cp_err_set(err, CP_ECA, "renewalInfo %s: HTTP %ld without a problem document", url,
                            r.status);
        acme_problem_clear(&prob);
        goto out;
    }
    rc = acme_renewal_info_parse(r.body, r.body_len, out, err);
    if (rc != CP_OK)
        goto out;
    long wait = acme_retry_after(r.retry_after, time(NULL));
    if (wait < 0)
        wait = ARI_RETRY_DEFAULT_S;
    out->retry_after = wait < ARI_RETRY_MIN_S   ? ARI_RETRY_MIN_S
                       : wait > ARI_RETRY_MAX_S ? ARI_RETRY_MAX_S
                                                : wait;
out:
    acme_response_clear(&r);
    free(url);
    return rc;
}
