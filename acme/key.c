/*
 * acme/key.c - account and certificate keys (see acme/acme.h): the five key
 * types RFC 8555 servers commonly accept, generated, loaded and stored through
 * OpenSSL EVP, with their public JWK (RFC 7517/7518) and RFC 7638 thumbprint.
 */
#include "acme/acme.h"
#include "acme/key_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/buffer.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

struct acme_key {
    EVP_PKEY *pkey; /* always holds the private key */
    enum acme_key_type type;
};

#define SUPPORTED "supported: EC P-256 or P-384, RSA 2048, 3072 or 4096 bits"

static const struct key_info {
    enum acme_key_type type;
    const char *name;  /* acme_key_type_parse() */
    const char *alg;   /* JWS "alg", RFC 7518 §3.1 */
    const char *curve; /* JWK "crv" and OpenSSL group name; NULL for RSA */
    int bits;          /* RSA modulus size; EC field size */
    size_t coord;      /* EC coordinate and signature half size, RFC 7518 §3.4/§6.2.1.2 */
} key_infos[] = {
    {ACME_KEY_EC256, "ec256", "ES256", "P-256", 256, 32},
    {ACME_KEY_EC384, "ec384", "ES384", "P-384", 384, 48},
    {ACME_KEY_RSA2048, "rsa2048", "RS256", NULL, 2048, 0},
    {ACME_KEY_RSA3072, "rsa3072", "RS256", NULL, 3072, 0},
    {ACME_KEY_RSA4096, "rsa4096", "RS256", NULL, 4096, 0},
};

static const struct key_info *info_of(enum acme_key_type t)
{
    for (size_t i = 0; i < sizeof key_infos / sizeof key_infos[0]; i++) {
        if (key_infos[i].type == t)
            return &key_infos[i];
    }
    return NULL;
}

/* The reason OpenSSL gave for the last failure, and an empty error queue. */
static const char *ossl_reason(void)
{
    const char *r = ERR_reason_error_string(ERR_peek_last_error());
    ERR_clear_error();
    return r != NULL ? r : "unknown reason";
}

/* ------------------------------------------------------------------ types */

enum cp_code acme_key_type_parse(const char *name, enum acme_key_type *out, struct cp_err *err)
{
    if (name == NULL)
        return cp_err_set(err, CP_EINVAL,
                          "key type is missing (ec256, ec384, rsa2048, rsa3072 "
                          "or rsa4096)");
    for (size_t i = 0; i < sizeof key_infos / sizeof key_infos[0]; i++) {
        if (strcmp(name, key_infos[i].name) == 0) {
            if (out != NULL)
                *out = key_infos[i].type;
            return CP_OK;
        }
    }
    return cp_err_set(err, CP_EINVAL,
                      "unknown key type \"%s\" (expected ec256, ec384, rsa2048, rsa3072 or "
                      "rsa4096)",
                      name);
}

const char *acme_key_type_name(enum acme_key_type t)
{
    const struct key_info *ki = info_of(t);
    return ki != NULL ? ki->name : "unknown";
}

/* Which of the five types `pkey` is; anything else is refused naming `what`. */
static enum cp_code classify(EVP_PKEY *pkey, const char *what, enum acme_key_type *out,
                             struct cp_err *err)
{
    if (EVP_PKEY_is_a(pkey, "EC")) {
        char group[80];
        size_t glen = 0;
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                           &glen) != 1) {
            ERR_clear_error();
            return cp_err_set(err, CP_EINVAL,
                              "%s: EC key without a named curve is not supported (" SUPPORTED ")",
                              what);
        }
        /* OpenSSL names the groups "prime256v1" and "secp384r1". */
        int nid = OBJ_sn2nid(group);
        if (nid == NID_undef)
            nid = EC_curve_nist2nid(group);
        if (nid == NID_X9_62_prime256v1) {
            *out = ACME_KEY_EC256;
            return CP_OK;
        }
        if (nid == NID_secp384r1) {
            *out = ACME_KEY_EC384;
            return CP_OK;
        }
        const char *nist = nid != NID_undef ? EC_curve_nid2nist(nid) : NULL;
        return cp_err_set(err, CP_EINVAL, "%s: EC key on curve %s is not supported (" SUPPORTED ")",
                          what, nist != NULL ? nist : group);
    }
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        int bits = EVP_PKEY_get_bits(pkey);
        switch (bits) {
        case 2048: *out = ACME_KEY_RSA2048; return CP_OK;
        case 3072: *out = ACME_KEY_RSA3072; return CP_OK;
        case 4096: *out = ACME_KEY_RSA4096; return CP_OK;
        default: break;
        }
        return cp_err_set(err, CP_EINVAL, "%s: %d-bit RSA key is not supported (" SUPPORTED ")",
                          what, bits);
    }
    const char *tn = EVP_PKEY_get0_type_name(pkey);
    return cp_err_set(err, CP_EINVAL, "%s: %s key is not supported (" SUPPORTED ")", what,
                      tn != NULL ? tn : "this kind of");
}

/* A loaded key as an acme_key, once classify() accepts its kind: takes
 * *pkey (NULL after) on success. */
static enum cp_code key_wrap(EVP_PKEY **pkey, const char *what, struct acme_key **out,
                             struct cp_err *err)
{
    enum acme_key_type t;
    enum cp_code rc = classify(*pkey, what, &t, err);
    if (rc != CP_OK)
        return rc;
    struct acme_key *k = calloc(1, sizeof *k);
    if (k == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory reading %s", what);
    k->pkey = *pkey;
    k->type = t;
    *pkey = NULL;
    *out = k;
    return CP_OK;
}

/* ------------------------------------------------------ make, load, store */

enum cp_code acme_key_generate(enum acme_key_type t, struct acme_key **out, struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    const struct key_info *ki = info_of(t);
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    BIGNUM *e = NULL;
    struct acme_key *k = NULL;

    if (out == NULL)
        return cp_err_set(err, CP_EINTERNAL, "acme_key_generate: no output");
    *out = NULL;
    if (ki == NULL)
        return cp_err_set(err, CP_EINVAL, "cannot generate a key of unknown type %d", (int)t);

    ctx = EVP_PKEY_CTX_new_from_name(NULL, ki->curve != NULL ? "EC" : "RSA", NULL);
    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0)
        goto ossl_fail;
    if (ki->curve != NULL) {
        if (EVP_PKEY_CTX_set_group_name(ctx, ki->curve) <= 0)
            goto ossl_fail;
    } else {
        /* e = 65537 is OpenSSL's default too; ACME CAs (Boulder's goodkey)
         * refuse other exponents, so do not depend on the default. */
        e = BN_new();
        if (e == NULL || BN_set_word(e, 65537) != 1 ||
            EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, ki->bits) <= 0 ||
            EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, e) <= 0)
            goto ossl_fail;
    }
    if (EVP_PKEY_generate(ctx, &pkey) <= 0)
        goto ossl_fail;

    k = calloc(1, sizeof *k);
    if (k == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory generating a %s key", ki->name);
        goto out;
    }
    k->pkey = pkey;
    k->type = t;
    pkey = NULL;
    *out = k;
    goto out;

ossl_fail:
    rc = cp_err_set(err, CP_EINTERNAL, "cannot generate a %s key: %s", ki->name, ossl_reason());
out:
    EVP_PKEY_free(pkey);
    BN_free(e);
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

/* Never prompt for a passphrase: certpilot stores keys unencrypted in a 0700
 * directory, and a library must not read the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static bool contains(const char *s, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; n <= len && i <= len - n; i++) {
        if (memcmp(s + i, needle, n) == 0)
            return true;
    }
    return false;
}

enum cp_code acme_key_from_pem(const char *pem, size_t len, const char *what, struct acme_key **out,
                               struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;

    if (what == NULL)
        what = "key";
    if (out == NULL)
        return cp_err_set(err, CP_EINTERNAL, "acme_key_from_pem: no output for %s", what);
    *out = NULL;
    if (pem == NULL || len == 0)
        return cp_err_set(err, CP_EINVAL, "%s: empty, expected a PEM private key", what);
    if (len > INT_MAX)
        return cp_err_set(err, CP_EINVAL, "%s: too big for a PEM private key (%zu bytes)", what,
                          len);

    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory reading %s", what);
        goto out;
    }
    pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    if (pkey == NULL) {
        /* OpenSSL 3's decoder says "unsupported" for every kind of failure;
         * a look at the text tells the user more. */
        ERR_clear_error();
        if (contains(pem, len, "ENCRYPTED"))
            rc = cp_err_set(err, CP_EINVAL,
                            "%s: the private key is encrypted; certpilot needs it unencrypted "
                            "(kept in a 0700 directory)",
                            what);
        else if (!contains(pem, len, "-----BEGIN "))
            rc = cp_err_set(err, CP_EINVAL, "%s: not a PEM private key (no \"-----BEGIN\" line)",
                            what);
        else if (!contains(pem, len, "PRIVATE KEY-----"))
            rc = cp_err_set(err, CP_EINVAL,
                            "%s: not a PEM private key (no PRIVATE KEY block; a certificate or "
                            "public key?)",
                            what);
        else
            rc = cp_err_set(err, CP_EINVAL,
                            "%s: not a PEM private key (the PRIVATE KEY block is damaged or "
                            "truncated)",
                            what);
        goto out;
    }
    rc = key_wrap(&pkey, what, out, err);

out:
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    return rc;
}

/* JWK member `member` of `jwk`, base64url-decoded into a BIGNUM of at most
 * `max` bytes (a secret one when `secret`: freed with BN_clear_free). */
static enum cp_code jwk_bn(const json_t *jwk, const char *member, const char *what, size_t max,
                           bool secret, BIGNUM **out, struct cp_err *err)
{
    char label[160];
    unsigned char *buf = NULL;
    size_t len = 0;
    const char *s = json_string_value(json_object_get(jwk, member));
    snprintf(label, sizeof label, "%s: JWK member \"%s\"", what, member);
    if (s == NULL)
        return cp_err_set(err, CP_EINVAL, "%s is missing (or not a string)", label);
    enum cp_code rc = acme_b64url_decode(s, label, &buf, &len, err);
    if (rc != CP_OK)
        return rc;
    if (len == 0 || len > max) {
        rc = cp_err_set(err, CP_EINVAL, "%s: %zu bytes, expected 1 to %zu", label, len, max);
    } else {
        *out = secret ? BN_secure_new() : BN_new();
        if (*out == NULL || BN_bin2bn(buf, (int)len, *out) == NULL)
            rc = cp_err_set(err, CP_ENOMEM, "out of memory reading %s", label);
    }
    OPENSSL_cleanse(buf, len);
    free(buf);
    return rc;
}

enum cp_code acme_key_from_jwk(const json_t *jwk, const char *what, struct acme_key **out,
                               struct cp_err *err)
{
    /* RSA members in the order of OpenSSL's parameters below; d and the CRT
     * values are secret. */
    static const char *const rsa_members[] = {"n", "e", "d", "p", "q", "dp", "dq", "qi"};
    static const char *const rsa_params[] = {
        OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
        OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
        OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
    enum { NRSA = sizeof rsa_members / sizeof rsa_members[0] };
    BIGNUM *bn[NRSA] = {NULL};
    unsigned char point[1 + 2 * 48];
    const struct key_info *ki = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL, *check = NULL;
    EVP_PKEY *pkey = NULL;
    enum cp_code rc = CP_OK;
    bool rsa;

    if (what == NULL)
        what = "JWK private key";
    if (out == NULL)
        return cp_err_set(err, CP_EINTERNAL, "acme_key_from_jwk: no output for %s", what);
    *out = NULL;
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    if (!json_is_object(jwk) || kty == NULL)
        return cp_err_set(err, CP_EINVAL, "%s: not a JWK (no \"kty\")", what);
    if (strcmp(kty, "RSA") == 0) {
        rsa = true;
    } else if (strcmp(kty, "EC") == 0) {
        rsa = false;
        const char *crv = json_string_value(json_object_get(jwk, "crv"));
        for (size_t i = 0; crv != NULL && i < sizeof key_infos / sizeof key_infos[0]; i++)
            if (key_infos[i].curve != NULL && strcmp(key_infos[i].curve, crv) == 0)
                ki = &key_infos[i];
        if (ki == NULL)
            return cp_err_set(err, CP_EINVAL,
                              "%s: EC curve \"%s\" is not supported (" SUPPORTED ")", what,
                              crv != NULL ? crv : "(none)");
    } else {
        return cp_err_set(err, CP_EINVAL, "%s: JWK kty \"%s\" is not supported (EC or RSA)", what,
                          kty);
    }

    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL)
        goto ossl_fail;
    if (rsa) {
        /* 512 bytes: a 4096-bit modulus, the largest supported. */
        for (size_t i = 0; i < NRSA; i++) {
            rc = jwk_bn(jwk, rsa_members[i], what, 512, i >= 2, &bn[i], err);
            if (rc != CP_OK)
                goto out;
            if (OSSL_PARAM_BLD_push_BN(bld, rsa_params[i], bn[i]) != 1)
                goto ossl_fail;
        }
    } else {
        /* RFC 7518 §6.2.1: an uncompressed point 04 || x || y, each coordinate
         * the full field size. */
        point[0] = 0x04;
        for (size_t i = 0; i < 3; i++) {
            rc = jwk_bn(jwk,
                        i == 0   ? "x"
                        : i == 1 ? "y"
                                 : "d",
                        what, ki->coord, i == 2, &bn[i], err);
            if (rc != CP_OK)
                goto out;
            if (i < 2 && BN_bn2binpad(bn[i], point + 1 + i * ki->coord, (int)ki->coord) < 0)
                goto ossl_fail;
        }
        if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, ki->curve, 0) != 1 ||
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point,
                                             1 + 2 * ki->coord) != 1 ||
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bn[2]) != 1)
            goto ossl_fail;
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, rsa ? "RSA" : "EC", NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1)
        goto ossl_fail;
    if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) != 1) {
        rc = cp_err_set(err, CP_EINVAL, "%s: the %s JWK members do not make a key: %s", what, kty,
                        ossl_reason());
        goto out;
    }
    /* The members must agree: the public point is on the curve and d
     * belongs to it; n = p*q and d, dp, dq, qi fit e. */
    check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (check == NULL)
        goto ossl_fail;
    if (EVP_PKEY_check(check) != 1) {
        rc = cp_err_set(err, CP_EINVAL, "%s: the %s JWK members do not make one consistent key: %s",
                        what, kty, ossl_reason());
        goto out;
    }
    rc = key_wrap(&pkey, what, out, err);
    goto out;

ossl_fail:
    rc = cp_err_set(err, CP_EINTERNAL, "%s: cannot build the key: %s", what, ossl_reason());
out:
    ERR_clear_error();
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params); /* secret BIGNUMs went to the secure heap */
    OSSL_PARAM_BLD_free(bld);
    for (size_t i = 0; i < NRSA; i++)
        BN_clear_free(bn[i]);
    return rc;
}

enum cp_code acme_key_to_pem(const struct acme_key *k, char **pem, size_t *len, struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    BIO *bio = NULL;
    BUF_MEM *bm = NULL;
    char *copy = NULL;

    if (pem == NULL || len == NULL || k == NULL)
        return cp_err_set(err, CP_EINTERNAL, "acme_key_to_pem: missing argument");
    *pem = NULL;
    *len = 0;

    /* A secure-heap memory BIO is freed with OPENSSL_clear_free, and it grows
     * with BUF_MEM_grow_clean; the buffer is wiped here anyway. */
    bio = BIO_new(BIO_s_secmem());
    if (bio == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory writing a %s key",
                        acme_key_type_name(k->type));
        goto out;
    }
    /* Unencrypted PKCS#8 ("BEGIN PRIVATE KEY") for every key type. */
    if (PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
        BIO_get_mem_ptr(bio, &bm) != 1 || bm == NULL || bm->length == 0) {
        rc = cp_err_set(err, CP_EINTERNAL, "cannot write the %s key as PEM: %s",
                        acme_key_type_name(k->type), ossl_reason());
        goto out;
    }
    copy = malloc(bm->length + 1);
    if (copy == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory writing a %s key",
                        acme_key_type_name(k->type));
        goto out;
    }
    memcpy(copy, bm->data, bm->length);
    copy[bm->length] = '\0';
    *pem = copy;
    *len = bm->length;

out:
    if (bm != NULL && bm->data != NULL)
        OPENSSL_cleanse(bm->data, bm->length);
    BIO_free(bio);
    return rc;
}

enum acme_key_type acme_key_type_of(const struct acme_key *k)
{
    return k->type;
}

const char *acme_key_alg(const struct acme_key *k)
{
    const struct key_info *ki = k != NULL ? info_of(k->type) : NULL;
    return ki != NULL ? ki->alg : NULL;
}

struct evp_pkey_st *acme_key_evp(const struct acme_key *k)
{
    return k != NULL ? k->pkey : NULL;
}

void acme_key_free(struct acme_key *k)
{
    if (k == NULL)
        return;
    /* EVP_PKEY_free clears the private key material (BN_clear_free). */
    EVP_PKEY_free(k->pkey);
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}

/* -------------------------------------------------------------------- JWK */

/* base64url of `bn` as big-endian bytes: exactly `size` bytes (left-padded
 * with zeros) when size > 0, the minimal number of bytes otherwise. */
static char *bn_b64url(const BIGNUM *bn, size_t size)
{
    unsigned char *buf = NULL;
    char *s = NULL;
    size_t n = size > 0 ? size : (size_t)BN_num_bytes(bn);

    if (n == 0 || n > 1024)
        return NULL;
    buf = malloc(n);
    if (buf == NULL)
        return NULL;
    if (size > 0 ? BN_bn2binpad(bn, buf, (int)n) == (int)n : BN_bn2bin(bn, buf) == (int)n)
        s = acme_b64url_encode(buf, n);
    free(buf);
    return s;
}

json_t *acme_key_jwk(const struct acme_key *k)
{
    const struct key_info *ki = k != NULL ? info_of(k->type) : NULL;
    BIGNUM *a = NULL;
    BIGNUM *b = NULL;
    char *sa = NULL;
    char *sb = NULL;
    json_t *jwk = NULL;

    if (ki == NULL)
        return NULL;
    if (ki->curve != NULL) {
        /* RFC 7518 §6.2.1.2/3: x and y are the full coordinate size. */
        if (EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, &a) != 1 ||
            EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &b) != 1)
            goto out;
        sa = bn_b64url(a, ki->coord);
        sb = bn_b64url(b, ki->coord);
        if (sa == NULL || sb == NULL)
            goto out;
        jwk = json_pack("{s:s, s:s, s:s, s:s}", "crv", ki->curve, "kty", "EC", "x", sa, "y", sb);
    } else {
        /* RFC 7518 §6.3.1: n and e without leading zero bytes. */
        if (EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_N, &a) != 1 ||
            EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_E, &b) != 1)
            goto out;
        sa = bn_b64url(a, 0);
        sb = bn_b64url(b, 0);
        if (sa == NULL || sb == NULL)
            goto out;
        jwk = json_pack("{s:s, s:s, s:s}", "e", sb, "kty", "RSA", "n", sa);
    }

out:
    ERR_clear_error();
    free(sb);
    free(sa);
    BN_free(b);
    BN_free(a);
    return jwk;
}

enum cp_code acme_jwk_thumbprint(const json_t *jwk, char out[44], struct cp_err *err)
{
    static const char *const ec_members[] = {"crv", "kty", "x", "y", NULL};
    static const char *const rsa_members[] = {"e", "kty", "n", NULL};
    enum cp_code rc = CP_OK;
    const char *const *members;
    json_t *canon = NULL;
    char *text = NULL;
    char *b64 = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    if (kty == NULL)
        return cp_err_set(err, CP_EINVAL, "JWK has no \"kty\"");
    if (strcmp(kty, "EC") == 0)
        members = ec_members;
    else if (strcmp(kty, "RSA") == 0)
        members = rsa_members;
    else
        return cp_err_set(err, CP_EINVAL, "JWK kty \"%s\" is not supported (EC or RSA)", kty);

    /* RFC 7638 §3.2: only the required members, sorted, no whitespace. */
    canon = json_object();
    if (canon == NULL)
        goto nomem;
    for (size_t i = 0; members[i] != NULL; i++) {
        json_t *v = json_object_get(jwk, members[i]);
        if (!json_is_string(v)) {
            rc = cp_err_set(err, CP_EINVAL, "%s JWK has no string member \"%s\"", kty, members[i]);
            goto out;
        }
        if (json_object_set(canon, members[i], v) != 0)
            goto nomem;
    }
    text = json_dumps(canon, JSON_SORT_KEYS | JSON_COMPACT);
    if (text == NULL)
        goto nomem;
    if (EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        rc = cp_err_set(err, CP_EINTERNAL, "SHA-256 failed: %s", ossl_reason());
        goto out;
    }
    b64 = acme_b64url_encode(md, mdlen);
    if (b64 == NULL)
        goto nomem;
    if (strlen(b64) != 43) {
        rc = cp_err_set(err, CP_EINTERNAL, "thumbprint has %zu characters, not 43", strlen(b64));
        goto out;
    }
    memcpy(out, b64, 44);
    goto out;

nomem:
    rc = cp_err_set(err, CP_ENOMEM, "out of memory computing a JWK thumbprint");
out:
    free(b64);
    free(text);
    json_decref(canon);
    return rc;
}

enum cp_code acme_key_thumbprint(const struct acme_key *k, char out[44], struct cp_err *err)
{
    if (k == NULL || out == NULL)
        return cp_err_set(err, CP_EINTERNAL, "acme_key_thumbprint: missing argument");
    json_t *jwk = acme_key_jwk(k);
    if (jwk == NULL)
        return cp_err_set(err, CP_ENOMEM, "cannot build the JWK of a %s key",
                          acme_key_type_name(k->type));
    enum cp_code rc = acme_jwk_thumbprint(jwk, out, err);
    json_decref(jwk);
    return rc;
}
