/*
 * acme/jws.c - base64url, the flattened JWS of RFC 8555 §6.2 and External
 * Account Binding (§7.3.4) (see acme/acme.h).  Base64 itself is OpenSSL's
 * EVP_EncodeBlock/EVP_DecodeBlock; this file only maps between the standard
 * and the URL-safe alphabet and deals with padding.
 */
#include "acme/acme.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>

/* ------------------------------------------------------------- base64url */

/* EVP_EncodeBlock takes an int; a multiple of 3 keeps chunks free of padding. */
#define B64_CHUNK ((size_t)3 * 16384)

char *acme_b64url_encode(const unsigned char *data, size_t len)
{
    if (data == NULL && len > 0)
        return NULL;
    if (len > (SIZE_MAX - 8) / 4 * 3)
        return NULL;
    size_t cap = (len + 2) / 3 * 4 + 1;
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;

    size_t o = 0;
    for (size_t i = 0; i < len; i += B64_CHUNK) {
        size_t n = len - i < B64_CHUNK ? len - i : B64_CHUNK;
        int w = EVP_EncodeBlock((unsigned char *)out + o, data + i, (int)n);
        if (w < 0) {
            free(out);
            return NULL;
        }
        o += (size_t)w;
    }
    out[o] = '\0';

    /* RFC 4648 §5: '-' and '_' for '+' and '/'; RFC 7515 §2: no padding. */
    while (o > 0 && out[o - 1] == '=')
        out[--o] = '\0';
    for (size_t i = 0; i < o; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    return out;
}

static bool b64url_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

enum cp_code acme_b64url_decode(const char *text, const char *what, unsigned char **out,
                                size_t *outlen, struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    char *std = NULL;
    unsigned char *buf = NULL;
    size_t n;
    size_t m;
    size_t stdlen = 0;

    if (what == NULL)
        what = "base64url value";
    if (out == NULL || outlen == NULL)
        return cp_err_set(err, CP_EINTERNAL, "acme_b64url_decode: no output for %s", what);
    *out = NULL;
    *outlen = 0;
    if (text == NULL)
        return cp_err_set(err, CP_EINVAL, "%s: missing base64url value", what);

    n = strlen(text);
    if (n > (size_t)INT_MAX - 4)
        return cp_err_set(err, CP_EINVAL, "%s: base64url value too long (%zu characters)", what, n);
    m = n;
    while (m > 0 && text[m - 1] == '=')
        m--;
    for (size_t i = 0; i < m; i++) {
        unsigned char c = (unsigned char)text[i];
        if (!b64url_char(c)) {
            if (c > 0x20 && c < 0x7f)
                return cp_err_set(err, CP_EINVAL,
                                  "%s: '%c' at offset %zu is not a base64url character", what, c,
                                  i);
            return cp_err_set(err, CP_EINVAL,
                              "%s: byte 0x%02x at offset %zu is not a base64url character", what, c,
                              i);
        }
    }
    /* A lone character in the last quantum encodes less than one byte. */
    if (m % 4 == 1)
        return cp_err_set(err, CP_EINVAL, "%s: invalid base64url length (%zu characters)", what, m);
    /* Padding is optional, but when present it must be exactly right. */
    if (n > m && (n % 4 != 0 || n - m != (4 - m % 4) % 4))
        return cp_err_set(err, CP_EINVAL, "%s: invalid base64url padding", what);

    /* To the standard alphabet, padded, as EVP_DecodeBlock wants it. */
    stdlen = (m + 3) / 4 * 4;
    std = malloc(stdlen + 1);
    buf = malloc(stdlen / 4 * 3 + 1);
    if (std == NULL || buf == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory decoding %s", what);
        goto out;
    }
    for (size_t i = 0; i < m; i++)
        std[i] = (char)(text[i] == '-' ? '+' : text[i] == '_' ? '/' : text[i]);
    for (size_t i = m; i < stdlen; i++)
        std[i] = '=';
    std[stdlen] = '\0';

    int got = stdlen > 0 ? EVP_DecodeBlock(buf, (unsigned char *)std, (int)stdlen) : 0;
    if (got < 0 || (size_t)got != stdlen / 4 * 3) {
        rc = cp_err_set(err, CP_EINVAL, "%s: invalid base64url value", what);
        goto out;
    }
    /* EVP_DecodeBlock counts the padding as zero bytes: the true length is
     * three bytes per full quantum plus one or two for a partial one. */
    *outlen = m / 4 * 3 + (m % 4 == 0 ? 0 : m % 4 - 1);
    *out = buf;
    buf = NULL;

out:
    if (std != NULL) {
        /* The text may be a secret (an EAB MAC key). */
        OPENSSL_cleanse(std, stdlen);
        free(std);
    }
    if (buf != NULL) {
        OPENSSL_cleanse(buf, stdlen / 4 * 3);
        free(buf);
    }
    return rc;
}

/* ------------------------------------------------------------------- JWS */

/* base64url(JSON of `obj`, compact, keys sorted so that output is stable). */
static char *json_b64url(const json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL)
        return NULL;
    char *b64 = acme_b64url_encode((const unsigned char *)text, strlen(text));
    free(text);
    return b64;
}

/* "<a>.<b>", the JWS Signing Input of RFC 7515 §5.1 step 5. */
static char *signing_input(const char *a, const char *b, size_t *len)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    char *s = malloc(la + lb + 2);
    if (s == NULL)
        return NULL;
    memcpy(s, a, la);
    s[la] = '.';
    memcpy(s + la + 1, b, lb);
    s[la + 1 + lb] = '\0';
    *len = la + 1 + lb;
    return s;
}

/* The flattened JWS JSON (RFC 7515 §7.2.2) as a new object. */
static json_t *flattened(const char *protected_b64, const char *payload_b64, const char *sig_b64)
{
    return json_pack("{s:s, s:s, s:s}", "protected", protected_b64, "payload", payload_b64,
                     "signature", sig_b64);
}

/* A jansson failure to build a header: invalid UTF-8 comes from our caller's
 * input (a server nonce, a URL), anything else is memory. */
static enum cp_code pack_failed(const json_error_t *jerr, const char *what, struct cp_err *err)
{
    if (json_error_code(jerr) == json_error_invalid_utf8)
        return cp_err_set(err, CP_EINVAL, "%s: nonce, URL or key identifier is not valid UTF-8",
                          what);
    return cp_err_set(err, CP_ENOMEM, "out of memory building the %s", what);
}

/*
 * Sign `tbs` with the account key and return the JWS signature bytes: RSA
 * PKCS#1 v1.5, or for ECDSA the DER signature converted to R||S with each half
 * the coordinate size (RFC 7518 §3.4).
 */
static enum cp_code sign_bytes(const struct acme_key *k, const unsigned char *tbs, size_t tbslen,
                               unsigned char **sig, size_t *siglen, struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    EVP_PKEY *pkey = acme_key_evp(k);
    enum acme_key_type t = acme_key_type_of(k);
    const EVP_MD *md = t == ACME_KEY_EC384 ? EVP_sha384() : EVP_sha256();
    size_t half = t == ACME_KEY_EC256 ? 32 : t == ACME_KEY_EC384 ? 48 : 0;
    EVP_MD_CTX *mctx = NULL;
    unsigned char *der = NULL;
    size_t derlen = 0;
    ECDSA_SIG *es = NULL;
    const unsigned char *p = NULL;
    const BIGNUM *r = NULL;
    const BIGNUM *s = NULL;
    unsigned char *raw = NULL;
    const char *why = NULL;

    *sig = NULL;
    *siglen = 0;
    mctx = EVP_MD_CTX_new();
    if (mctx == NULL || EVP_DigestSignInit(mctx, NULL, md, NULL, pkey) != 1 ||
        EVP_DigestSign(mctx, NULL, &derlen, tbs, tbslen) != 1)
        goto ossl_fail;
    der = malloc(derlen);
    if (der == NULL)
        goto nomem;
    if (EVP_DigestSign(mctx, der, &derlen, tbs, tbslen) != 1)
        goto ossl_fail;

    if (half == 0) {
        *sig = der;
        *siglen = derlen;
        der = NULL;
        goto out;
    }
    p = der;
    es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
    if (es == NULL)
        goto ossl_fail;
    ECDSA_SIG_get0(es, &r, &s);
    raw = malloc(2 * half);
    if (raw == NULL)
        goto nomem;
    if (BN_bn2binpad(r, raw, (int)half) != (int)half ||
        BN_bn2binpad(s, raw + half, (int)half) != (int)half)
        goto ossl_fail;
    *sig = raw;
    *siglen = 2 * half;
    raw = NULL;
    goto out;

nomem:
    rc = cp_err_set(err, CP_ENOMEM, "out of memory signing a request");
    goto out;
ossl_fail:
    why = ERR_reason_error_string(ERR_peek_last_error());
    rc = cp_err_set(err, CP_EINTERNAL, "cannot sign with the %s key: %s", acme_key_type_name(t),
                    why != NULL ? why : "unknown reason");
    ERR_clear_error();
out:
    free(raw);
    ECDSA_SIG_free(es);
    free(der);
    EVP_MD_CTX_free(mctx);
    return rc;
}

/* Sign `payload` (NULL: the empty payload of POST-as-GET, §6.3) under the
 * protected header `hdr` and write the flattened JWS JSON text to *out. */
static enum cp_code sign_under(const struct acme_key *k, const json_t *hdr, const char *url,
                               const char *payload, char **out, struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    json_t *jws = NULL;
    char *protected_b64 = json_b64url(hdr);
    char *payload_b64 = acme_b64url_encode((const unsigned char *)(payload != NULL ? payload : ""),
                                           payload != NULL ? strlen(payload) : 0);
    char *tbs = NULL;
    size_t tbslen = 0;
    unsigned char *sig = NULL;
    size_t siglen = 0;
    char *sig_b64 = NULL;

    if (protected_b64 == NULL || payload_b64 == NULL)
        goto nomem;
    tbs = signing_input(protected_b64, payload_b64, &tbslen);
    if (tbs == NULL)
        goto nomem;
    rc = sign_bytes(k, (const unsigned char *)tbs, tbslen, &sig, &siglen, err);
    if (rc != CP_OK)
        goto out;
    sig_b64 = acme_b64url_encode(sig, siglen);
    if (sig_b64 == NULL)
        goto nomem;
    jws = flattened(protected_b64, payload_b64, sig_b64);
    if (jws == NULL)
        goto nomem;
    *out = json_dumps(jws, JSON_COMPACT);
    if (*out == NULL)
        goto nomem;
    goto out;

nomem:
    rc = cp_err_set(err, CP_ENOMEM, "out of memory building a JWS for %s", url);
out:
    json_decref(jws);
    free(sig_b64);
    free(sig);
    free(tbs);
    free(payload_b64);
    free(protected_b64);
    return rc;
}

/* The protected header {alg, jwk, [nonce,] url} as *hdr. */
static enum cp_code jwk_header(const struct acme_key *k, const char *nonce, const char *url,
                               const char *what, json_t **hdr, struct cp_err *err)
{
    json_error_t jerr;
    json_t *jwk = acme_key_jwk(k);
    if (jwk == NULL)
        return cp_err_set(err, CP_ENOMEM, "cannot build the JWK of the %s key",
                          acme_key_type_name(acme_key_type_of(k)));
    *hdr = nonce != NULL ? json_pack_ex(&jerr, 0, "{s:s, s:o, s:s, s:s}", "alg", acme_key_alg(k),
                                        "jwk", jwk, "nonce", nonce, "url", url)
                         : json_pack_ex(&jerr, 0, "{s:s, s:o, s:s}", "alg", acme_key_alg(k), "jwk",
                                        jwk, "url", url);
    return *hdr != NULL ? CP_OK : pack_failed(&jerr, what, err);
}

enum cp_code acme_jws_sign(const struct acme_key *k, const char *kid, const char *nonce,
                           const char *url, const char *payload, char **out, struct cp_err *err)
{
    json_error_t jerr;
    json_t *hdr = NULL;

    if (out == NULL || k == NULL || nonce == NULL || url == NULL)
        return cp_err_set(err, CP_EINTERNAL, "acme_jws_sign: key, nonce, url and out are required");
    *out = NULL;

    /* RFC 8555 §6.2: exactly one of "jwk" and "kid". */
    if (kid != NULL) {
        hdr = json_pack_ex(&jerr, 0, "{s:s, s:s, s:s, s:s}", "alg", acme_key_alg(k), "kid", kid,
                           "nonce", nonce, "url", url);
        if (hdr == NULL)
            return pack_failed(&jerr, "JWS protected header", err);
    } else {
        enum cp_code rc = jwk_header(k, nonce, url, "JWS protected header", &hdr, err);
        if (rc != CP_OK)
            return rc;
    }
    enum cp_code rc = sign_under(k, hdr, url, payload, out, err);
    json_decref(hdr);
    return rc;
}

enum cp_code acme_jws_sign_inner(const struct acme_key *k, const char *url, const char *payload,
                                 char **out, struct cp_err *err)
{
    if (out == NULL || k == NULL || url == NULL || payload == NULL)
        return cp_err_set(err, CP_EINTERNAL,
                          "acme_jws_sign_inner: key, url, payload and out are required");
    *out = NULL;
    /* RFC 8555 §7.3.5: "jwk" of the new key, no "nonce", the same "url". */
    json_t *hdr = NULL;
    enum cp_code rc = jwk_header(k, NULL, url, "key change JWS header", &hdr, err);
    if (rc == CP_OK)
        rc = sign_under(k, hdr, url, payload, out, err);
    json_decref(hdr);
    return rc;
}

/* ------------------------------------------------------------------- EAB */

enum cp_code acme_eab_sign(const struct acme_key *account_key, const char *eab_kid,
                           const char *hmac_key_b64url, const char *url, json_t **out,
                           struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    json_error_t jerr;
    unsigned char *mac_key = NULL;
    size_t mac_keylen = 0;
    json_t *hdr = NULL;
    json_t *jwk = NULL;
    char *protected_b64 = NULL;
    char *payload_b64 = NULL;
    char *tbs = NULL;
    size_t tbslen = 0;
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;
    char *mac_b64 = NULL;

    if (out == NULL || account_key == NULL || url == NULL)
        return cp_err_set(err, CP_EINTERNAL, "acme_eab_sign: key, url and out are required");
    *out = NULL;
    if (eab_kid == NULL || eab_kid[0] == '\0')
        return cp_err_set(err, CP_EINVAL, "--eab-kid: the key identifier is empty");
    if (hmac_key_b64url == NULL || hmac_key_b64url[0] == '\0')
        return cp_err_set(err, CP_EINVAL, "--eab-hmac-key: the MAC key is empty");

    rc = acme_b64url_decode(hmac_key_b64url, "--eab-hmac-key", &mac_key, &mac_keylen, err);
    if (rc != CP_OK)
        goto out;
    if (mac_keylen == 0) {
        rc = cp_err_set(err, CP_EINVAL, "--eab-hmac-key: the MAC key is empty");
        goto out;
    }

    /* §7.3.4: no nonce, and the payload is the account key's JWK. */
    hdr = json_pack_ex(&jerr, 0, "{s:s, s:s, s:s}", "alg", "HS256", "kid", eab_kid, "url", url);
    if (hdr == NULL) {
        rc = pack_failed(&jerr, "external account binding header", err);
        goto out;
    }
    jwk = acme_key_jwk(account_key);
    if (jwk == NULL)
        goto nomem;
    protected_b64 = json_b64url(hdr);
    payload_b64 = json_b64url(jwk);
    if (protected_b64 == NULL || payload_b64 == NULL)
        goto nomem;
    tbs = signing_input(protected_b64, payload_b64, &tbslen);
    if (tbs == NULL)
        goto nomem;
    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, mac_key, mac_keylen,
                  (const unsigned char *)tbs, tbslen, mac, sizeof mac, &maclen) == NULL ||
        maclen != 32) {
        const char *why = ERR_reason_error_string(ERR_peek_last_error());
        ERR_clear_error();
        rc =
            cp_err_set(err, CP_EINTERNAL, "HMAC-SHA256 for the external account binding failed: %s",
                       why != NULL ? why : "unknown reason");
        goto out;
    }
    mac_b64 = acme_b64url_encode(mac, maclen);
    if (mac_b64 == NULL)
        goto nomem;
    *out = flattened(protected_b64, payload_b64, mac_b64);
    if (*out == NULL)
        goto nomem;
    goto out;

nomem:
    rc = cp_err_set(err, CP_ENOMEM, "out of memory building the external account binding");
out:
    free(mac_b64);
    free(tbs);
    free(payload_b64);
    free(protected_b64);
    json_decref(jwk);
    json_decref(hdr);
    if (mac_key != NULL) {
        OPENSSL_cleanse(mac_key, mac_keylen);
        free(mac_key);
    }
    return rc;
}
