/* tests/unit/test_acme_key.c - acme/key.c: key types, generation, PEM, JWK and
 * the RFC 7638 thumbprint. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/buffer.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "acme/acme.h"
#include "acme/key_int.h"

#define NTYPES 5

static const enum acme_key_type all_types[NTYPES] = {
    ACME_KEY_EC256, ACME_KEY_EC384, ACME_KEY_RSA2048, ACME_KEY_RSA3072, ACME_KEY_RSA4096,
};

/* One key of each type, generated once for the whole group. */
static struct acme_key *keys[NTYPES];

static int group_setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < NTYPES; i++) {
        struct cp_err err = {0};
        if (acme_key_generate(all_types[i], &keys[i], &err) != CP_OK) {
            fprintf(stderr, "generate %s: %s\n", acme_key_type_name(all_types[i]), err.msg);
            return -1;
        }
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < NTYPES; i++)
        acme_key_free(keys[i]);
    return 0;
}

static bool is_ec(enum acme_key_type t)
{
    return t == ACME_KEY_EC256 || t == ACME_KEY_EC384;
}

static int rsa_bits(enum acme_key_type t)
{
    return t == ACME_KEY_RSA2048 ? 2048 : t == ACME_KEY_RSA3072 ? 3072 : 4096;
}

/* An EVP_PKEY as PEM text (heap); traditional or PKCS#8, optionally encrypted. */
static char *pem_of(EVP_PKEY *pkey, bool traditional, const char *pass)
{
    BIO *bio = BIO_new(BIO_s_mem());
    BUF_MEM *bm = NULL;
    int ok;
    assert_non_null(bio);
    if (pass != NULL)
        ok = PEM_write_bio_PrivateKey(bio, pkey, EVP_aes_256_cbc(), (const unsigned char *)pass,
                                      (int)strlen(pass), NULL, NULL);
    else if (traditional)
        ok = PEM_write_bio_PrivateKey_traditional(bio, pkey, NULL, NULL, 0, NULL, NULL);
    else
        ok = PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);
    assert_int_equal(ok, 1);
    BIO_get_mem_ptr(bio, &bm);
    char *s = calloc(1, bm->length + 1);
    assert_non_null(s);
    memcpy(s, bm->data, bm->length);
    BIO_free(bio);
    return s;
}

static unsigned char *b64d(const char *text, size_t *len)
{
    unsigned char *out = NULL;
    struct cp_err err = {0};
    assert_int_equal(acme_b64url_decode(text, "test", &out, len, &err), CP_OK);
    return out;
}

/* ----------------------------------------------------------------- types */

static void test_type_names(void **state)
{
    (void)state;
    static const char *const names[NTYPES] = {"ec256", "ec384", "rsa2048", "rsa3072", "rsa4096"};
    struct cp_err err = {0};

    for (size_t i = 0; i < NTYPES; i++) {
        enum acme_key_type t = ACME_KEY_RSA4096;
        assert_int_equal(acme_key_type_parse(names[i], &t, &err), CP_OK);
        assert_int_equal(t, all_types[i]);
        assert_string_equal(acme_key_type_name(t), names[i]);
    }
    enum acme_key_type t;
    assert_int_equal(acme_key_type_parse("ec521", &t, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "\"ec521\""));
    assert_non_null(strstr(err.msg, "rsa4096"));
    assert_int_equal(acme_key_type_parse("EC256 ", &t, &err), CP_EINVAL);
    assert_int_equal(acme_key_type_parse(NULL, &t, &err), CP_EINVAL);
}

static void test_generate_each(void **state)
{
    (void)state;
    static const char *const algs[NTYPES] = {"ES256", "ES384", "RS256", "RS256", "RS256"};

    for (size_t i = 0; i < NTYPES; i++) {
        EVP_PKEY *pkey = acme_key_evp(keys[i]);
        assert_non_null(pkey);
        assert_int_equal(acme_key_type_of(keys[i]), all_types[i]);
        assert_string_equal(acme_key_alg(keys[i]), algs[i]);
        if (is_ec(all_types[i])) {
            char group[64];
            assert_true(EVP_PKEY_is_a(pkey, "EC"));
            assert_int_equal(EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                            sizeof group, NULL),
                             1);
            assert_string_equal(group, all_types[i] == ACME_KEY_EC256 ? "prime256v1" : "secp384r1");
        } else {
            BIGNUM *e = NULL;
            assert_true(EVP_PKEY_is_a(pkey, "RSA"));
            assert_int_equal(EVP_PKEY_get_bits(pkey), rsa_bits(all_types[i]));
            assert_int_equal(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e), 1);
            assert_true(BN_is_word(e, 65537));
            BN_free(e);
        }
    }
    /* Two generations give two different keys. */
    struct acme_key *k = NULL;
    struct cp_err err = {0};
    assert_int_equal(acme_key_generate(ACME_KEY_EC256, &k, &err), CP_OK);
    assert_int_not_equal(EVP_PKEY_eq(acme_key_evp(k), acme_key_evp(keys[0])), 1);
    acme_key_free(k);

    assert_int_equal(acme_key_generate((enum acme_key_type)42, &k, &err), CP_EINVAL);
    assert_null(k);
}

/* ------------------------------------------------------------------- PEM */

static void test_pem_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < NTYPES; i++) {
        struct cp_err err = {0};
        char *pem = NULL;
        size_t len = 0;
        struct acme_key *back = NULL;
        char tp1[44];
        char tp2[44];

        assert_int_equal(acme_key_to_pem(keys[i], &pem, &len, &err), CP_OK);
        assert_int_equal(strlen(pem), len);
        /* Unencrypted PKCS#8 for every type. */
        assert_int_equal(strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28), 0);
        assert_non_null(strstr(pem, "-----END PRIVATE KEY-----\n"));

        assert_int_equal(acme_key_from_pem(pem, len, "account key", &back, &err), CP_OK);
        assert_int_equal(acme_key_type_of(back), all_types[i]);
        assert_int_equal(EVP_PKEY_eq(acme_key_evp(back), acme_key_evp(keys[i])), 1);

        json_t *j1 = acme_key_jwk(keys[i]);
        json_t *j2 = acme_key_jwk(back);
        assert_true(json_equal(j1, j2));
        json_decref(j1);
        json_decref(j2);
        assert_int_equal(acme_key_thumbprint(keys[i], tp1, &err), CP_OK);
        assert_int_equal(acme_key_thumbprint(back, tp2, &err), CP_OK);
        assert_string_equal(tp1, tp2);

        acme_key_free(back);
        free(pem);
    }
}

static void test_pem_traditional_and_bundle(void **state)
{
    (void)state;
    for (size_t i = 0; i < 3; i++) { /* ec256, ec384, rsa2048 */
        struct cp_err err = {0};
        struct acme_key *back = NULL;
        char *pem = pem_of(acme_key_evp(keys[i]), true, NULL);
        assert_non_null(
            strstr(pem, is_ec(all_types[i]) ? "BEGIN EC PRIVATE KEY" : "BEGIN RSA PRIVATE KEY"));
        assert_int_equal(acme_key_from_pem(pem, strlen(pem), "key", &back, &err), CP_OK);
        assert_int_equal(acme_key_type_of(back), all_types[i]);
        acme_key_free(back);
        free(pem);
    }

    /* Text around the key block (as in a combined file) is skipped. */
    struct cp_err err = {0};
    struct acme_key *back = NULL;
    char *pem = pem_of(acme_key_evp(keys[0]), false, NULL);
    size_t cap = strlen(pem) + 64;
    char *bundle = malloc(cap);
    assert_non_null(bundle);
    snprintf(bundle, cap, "comment line\n%s\ntrailing\n", pem);
    assert_int_equal(acme_key_from_pem(bundle, strlen(bundle), "key", &back, &err), CP_OK);
    acme_key_free(back);
    free(bundle);
    free(pem);
}

static void expect_refused(EVP_PKEY *pkey, const char *needle)
{
    struct cp_err err = {0};
    struct acme_key *k = keys[0]; /* must be reset to NULL */
    char *pem = pem_of(pkey, false, NULL);
    assert_int_equal(acme_key_from_pem(pem, strlen(pem), "--account-key /x/key.pem", &k, &err),
                     CP_EINVAL);
    assert_null(k);
    assert_int_equal(err.code, CP_EINVAL);
    assert_non_null(strstr(err.msg, "--account-key /x/key.pem"));
    assert_non_null(strstr(err.msg, needle));
    assert_non_null(strstr(err.msg, "not supported"));
    assert_non_null(strstr(err.msg, "P-256"));
    free(pem);
}

static void test_refuse_p521(void **state)
{
    (void)state;
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    assert_non_null(pkey);
    expect_refused(pkey, "P-521");
    EVP_PKEY_free(pkey);

    /* A named curve OpenSSL has no NIST name for. */
    pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    assert_non_null(pkey);
    expect_refused(pkey, "secp256k1");
    EVP_PKEY_free(pkey);
}

static void test_refuse_rsa1024(void **state)
{
    (void)state;
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    assert_non_null(pkey);
    expect_refused(pkey, "1024-bit RSA");
    EVP_PKEY_free(pkey);
}

static void test_refuse_ed25519(void **state)
{
    (void)state;
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(pkey);
    expect_refused(pkey, "ED25519");
    EVP_PKEY_free(pkey);
}

static void test_refuse_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "hello",
        "-----BEGIN PRIVATE KEY-----\nnot base64 at all!\n-----END PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA\n"
        "-----END PRIVATE KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC "
        "KEY-----\n",
    };
    static const char *const why[] = {"BEGIN", "damaged", "damaged", "public key"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cp_err err = {0};
        struct acme_key *k = NULL;
        assert_int_equal(acme_key_from_pem(bad[i], strlen(bad[i]), "key.pem", &k, &err), CP_EINVAL);
        assert_null(k);
        assert_non_null(strstr(err.msg, "key.pem"));
        assert_non_null(strstr(err.msg, "not a PEM private key"));
        assert_non_null(strstr(err.msg, why[i]));
        assert_int_equal(ERR_peek_error(), 0); /* the error queue is left clean */
    }
    struct cp_err err = {0};
    struct acme_key *k = NULL;
    assert_int_equal(acme_key_from_pem("", 0, "key.pem", &k, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "key.pem"));
    assert_int_equal(acme_key_from_pem(NULL, 0, NULL, &k, &err), CP_EINVAL);

    /* A valid key followed by only part of the length given: truncated. */
    char *pem = NULL;
    size_t len = 0;
    assert_int_equal(acme_key_to_pem(keys[0], &pem, &len, &err), CP_OK);
    assert_int_equal(acme_key_from_pem(pem, len / 2, "key.pem", &k, &err), CP_EINVAL);
    assert_null(k);
    free(pem);
}

static void test_refuse_encrypted(void **state)
{
    (void)state;
    struct cp_err err = {0};
    struct acme_key *k = NULL;
    /* Must fail without prompting for a passphrase. */
    char *pem = pem_of(acme_key_evp(keys[0]), false, "passphrase");
    assert_non_null(strstr(pem, "ENCRYPTED"));
    assert_int_equal(acme_key_from_pem(pem, strlen(pem), "key.pem", &k, &err), CP_EINVAL);
    assert_null(k);
    assert_non_null(strstr(err.msg, "key.pem"));
    assert_non_null(strstr(err.msg, "encrypted"));
    free(pem);
}

/* ------------------------------------------------------------------- JWK */

/* Rebuild a public key from the JWK and compare it with the private key. */
static void assert_jwk_matches(json_t *jwk, EVP_PKEY *priv, enum acme_key_type t)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pub = NULL;
    unsigned char *x = NULL;
    unsigned char *y = NULL;
    size_t xl = 0;
    size_t yl = 0;
    BIGNUM *n = NULL;
    BIGNUM *e = NULL;
    unsigned char point[1 + 2 * 48];

    assert_non_null(bld);
    if (is_ec(t)) {
        size_t c = t == ACME_KEY_EC256 ? 32 : 48;
        x = b64d(json_string_value(json_object_get(jwk, "x")), &xl);
        y = b64d(json_string_value(json_object_get(jwk, "y")), &yl);
        assert_int_equal(xl, c);
        assert_int_equal(yl, c);
        point[0] = 0x04;
        memcpy(point + 1, x, c);
        memcpy(point + 1 + c, y, c);
        assert_int_equal(
            OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                            json_string_value(json_object_get(jwk, "crv")), 0),
            1);
        assert_int_equal(
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * c), 1);
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    } else {
        x = b64d(json_string_value(json_object_get(jwk, "n")), &xl);
        y = b64d(json_string_value(json_object_get(jwk, "e")), &yl);
        /* Minimal big-endian: the modulus has exactly its size in bytes and
         * the exponent 65537 is AQAB. */
        assert_int_equal(xl, (size_t)rsa_bits(t) / 8);
        assert_true(x[0] >= 0x80);
        assert_int_equal(yl, 3);
        assert_string_equal(json_string_value(json_object_get(jwk, "e")), "AQAB");
        n = BN_bin2bn(x, (int)xl, NULL);
        e = BN_bin2bn(y, (int)yl, NULL);
        assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n), 1);
        assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e), 1);
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    assert_non_null(params);
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &pub, EVP_PKEY_PUBLIC_KEY, params), 1);
    assert_int_equal(EVP_PKEY_eq(pub, priv), 1);

    EVP_PKEY_free(pub);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    free(x);
    free(y);
}

static void test_jwk_members(void **state)
{
    (void)state;
    for (size_t i = 0; i < NTYPES; i++) {
        enum acme_key_type t = all_types[i];
        json_t *jwk = acme_key_jwk(keys[i]);
        assert_non_null(jwk);
        if (is_ec(t)) {
            assert_int_equal(json_object_size(jwk), 4);
            assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "EC");
            assert_string_equal(json_string_value(json_object_get(jwk, "crv")),
                                t == ACME_KEY_EC256 ? "P-256" : "P-384");
            assert_true(json_is_string(json_object_get(jwk, "x")));
            assert_true(json_is_string(json_object_get(jwk, "y")));
            /* 32 bytes: 43 characters; 48 bytes: 64 characters, no padding. */
            size_t chars = t == ACME_KEY_EC256 ? 43 : 64;
            assert_int_equal(strlen(json_string_value(json_object_get(jwk, "x"))), chars);
            assert_int_equal(strlen(json_string_value(json_object_get(jwk, "y"))), chars);
        } else {
            assert_int_equal(json_object_size(jwk), 3);
            assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "RSA");
            assert_true(json_is_string(json_object_get(jwk, "n")));
            assert_true(json_is_string(json_object_get(jwk, "e")));
        }
        assert_jwk_matches(jwk, acme_key_evp(keys[i]), t);
        json_decref(jwk);
    }
    assert_null(acme_key_jwk(NULL));
}

/* EC coordinates with leading zero bytes keep their full size: generate until
 * one coordinate starts with a zero byte (1 in 128 per key on average). */
static void test_jwk_ec_coordinates_padded(void **state)
{
    (void)state;
    bool seen = false;
    for (int i = 0; i < 2000 && !seen; i++) {
        struct acme_key *k = NULL;
        struct cp_err err = {0};
        BIGNUM *x = NULL;
        BIGNUM *y = NULL;
        assert_int_equal(acme_key_generate(ACME_KEY_EC256, &k, &err), CP_OK);
        assert_int_equal(EVP_PKEY_get_bn_param(acme_key_evp(k), OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
        assert_int_equal(EVP_PKEY_get_bn_param(acme_key_evp(k), OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
        if (BN_num_bytes(x) < 32 || BN_num_bytes(y) < 32) {
            seen = true;
            json_t *jwk = acme_key_jwk(k);
            assert_int_equal(strlen(json_string_value(json_object_get(jwk, "x"))), 43);
            assert_int_equal(strlen(json_string_value(json_object_get(jwk, "y"))), 43);
            assert_jwk_matches(jwk, acme_key_evp(k), ACME_KEY_EC256);
            json_decref(jwk);
        }
        BN_free(x);
        BN_free(y);
        acme_key_free(k);
    }
    assert_true(seen);
}

/* ------------------------------------------------------------ thumbprint */

static void test_thumbprint_of_keys(void **state)
{
    (void)state;
    for (size_t i = 0; i < NTYPES; i++) {
        struct cp_err err = {0};
        char tp[44];
        unsigned char md[32];
        assert_int_equal(acme_key_thumbprint(keys[i], tp, &err), CP_OK);
        assert_int_equal(strlen(tp), 43);

        /* Independently: canonical JSON by hand, SHA-256, base64url. */
        json_t *jwk = acme_key_jwk(keys[i]);
        char canon[2048];
        int n;
        if (is_ec(all_types[i]))
            n = snprintf(canon, sizeof canon,
                         "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
                         json_string_value(json_object_get(jwk, "crv")),
                         json_string_value(json_object_get(jwk, "x")),
                         json_string_value(json_object_get(jwk, "y")));
        else
            n = snprintf(canon, sizeof canon, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}",
                         json_string_value(json_object_get(jwk, "e")),
                         json_string_value(json_object_get(jwk, "n")));
        assert_true(n > 0 && (size_t)n < sizeof canon);
        assert_int_equal(EVP_Digest(canon, (size_t)n, md, NULL, EVP_sha256(), NULL), 1);
        char *expect = acme_b64url_encode(md, sizeof md);
        assert_string_equal(tp, expect);
        free(expect);
        json_decref(jwk);
    }
}

/* RFC 7638 §3.1: the example RSA key and its thumbprint; "alg" and "kid" are
 * not part of the hash, and neither is member order or whitespace. */
static void test_thumbprint_rfc7638_example(void **state)
{
    (void)state;
    static const char *const jwk_text =
        "{\n"
        "  \"kty\": \"RSA\",\n"
        "  \"n\": \"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbf"
        "AAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMs"
        "tn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0"
        "_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn"
        "1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPks"
        "INHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw\",\n"
        "  \"e\": \"AQAB\",\n"
        "  \"alg\": \"RS256\",\n"
        "  \"kid\": \"2011-04-29\"\n"
        "}\n";
    struct cp_err err = {0};
    char tp[44];
    json_error_t jerr;
    json_t *jwk = json_loads(jwk_text, 0, &jerr);
    assert_non_null(jwk);
    assert_int_equal(acme_jwk_thumbprint(jwk, tp, &err), CP_OK);
    assert_string_equal(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");

    /* A required member missing, or not a string. */
    json_object_del(jwk, "e");
    assert_int_equal(acme_jwk_thumbprint(jwk, tp, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "\"e\""));
    json_object_set_new(jwk, "e", json_integer(65537));
    assert_int_equal(acme_jwk_thumbprint(jwk, tp, &err), CP_EINVAL);
    json_object_set_new(jwk, "kty", json_string("oct"));
    assert_int_equal(acme_jwk_thumbprint(jwk, tp, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "oct"));
    json_decref(jwk);
}

/* ------------------------------------------------------- private JWK */

/* base64url of a private parameter of `pkey`, `size` bytes (0: minimal). */
static char *param_b64(const EVP_PKEY *pkey, const char *param, size_t size)
{
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(pkey, param, &bn), 1);
    size_t n = size ? size : (size_t)BN_num_bytes(bn);
    unsigned char buf[600];
    assert_true(n <= sizeof buf);
    assert_int_equal(BN_bn2binpad(bn, buf, (int)n), (int)n);
    BN_clear_free(bn);
    return acme_b64url_encode(buf, n);
}

/* The private JWK of `k`, as certbot's private_key.json holds it. */
static json_t *private_jwk(const struct acme_key *k)
{
    static const char *const rsa[][2] = {
        {"d", OSSL_PKEY_PARAM_RSA_D},          {"p", OSSL_PKEY_PARAM_RSA_FACTOR1},
        {"q", OSSL_PKEY_PARAM_RSA_FACTOR2},    {"dp", OSSL_PKEY_PARAM_RSA_EXPONENT1},
        {"dq", OSSL_PKEY_PARAM_RSA_EXPONENT2}, {"qi", OSSL_PKEY_PARAM_RSA_COEFFICIENT1}};
    json_t *jwk = acme_key_jwk(k);
    assert_non_null(jwk);
    const EVP_PKEY *pkey = acme_key_evp(k);
    if (is_ec(acme_key_type_of(k))) {
        size_t coord = acme_key_type_of(k) == ACME_KEY_EC256 ? 32 : 48;
        char *d = param_b64(pkey, OSSL_PKEY_PARAM_PRIV_KEY, coord);
        json_object_set_new(jwk, "d", json_string(d));
        free(d);
    } else {
        for (size_t i = 0; i < sizeof rsa / sizeof rsa[0]; i++) {
            char *v = param_b64(pkey, rsa[i][1], 0);
            json_object_set_new(jwk, rsa[i][0], json_string(v));
            free(v);
        }
    }
    return jwk;
}

static void test_jwk_private_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < NTYPES; i++) {
        struct cp_err err = {0};
        struct acme_key *back = NULL;
        json_t *jwk = private_jwk(keys[i]);
        json_object_set_new(jwk, "alg", json_string("ignored"));
        assert_int_equal(acme_key_from_jwk(jwk, "private_key.json", &back, &err), CP_OK);
        assert_non_null(back);
        assert_int_equal(acme_key_type_of(back), all_types[i]);
        assert_int_equal(EVP_PKEY_eq(acme_key_evp(back), acme_key_evp(keys[i])), 1);
        char tp1[44], tp2[44];
        assert_int_equal(acme_key_thumbprint(keys[i], tp1, &err), CP_OK);
        assert_int_equal(acme_key_thumbprint(back, tp2, &err), CP_OK);
        assert_string_equal(tp1, tp2);
        /* and it signs: the PEM of it reads back as the same key */
        char *pem = NULL;
        size_t len = 0;
        assert_int_equal(acme_key_to_pem(back, &pem, &len, &err), CP_OK);
        free(pem);
        acme_key_free(back);
        json_decref(jwk);
    }
}

/* `jwk` (consumed) is refused with a message containing `needle`. */
static void expect_jwk_refused(json_t *jwk, const char *needle)
{
    struct cp_err err = {0};
    struct acme_key *k = (struct acme_key *)1;
    assert_int_not_equal(acme_key_from_jwk(jwk, "private_key.json", &k, &err), CP_OK);
    assert_null(k);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("message \"%s\" does not contain \"%s\"", err.msg, needle);
    assert_non_null(strstr(err.msg, "private_key.json"));
    json_decref(jwk);
}

static void test_jwk_private_refused(void **state)
{
    (void)state;
    json_t *ec = private_jwk(keys[0]), *ec2 = private_jwk(keys[1]), *rsa = private_jwk(keys[2]);
    json_t *j;

    expect_jwk_refused(json_string("x"), "no \"kty\"");
    expect_jwk_refused(json_pack("{s:s, s:s}", "kty", "oct", "k", "AAAA"), "\"oct\"");
    /* public only */
    j = json_deep_copy(ec);
    json_object_del(j, "d");
    expect_jwk_refused(j, "\"d\" is missing");
    j = json_deep_copy(rsa);
    json_object_del(j, "qi");
    expect_jwk_refused(j, "\"qi\" is missing");
    /* a curve that is not supported, and a P-384 coordinate on P-256 */
    j = json_deep_copy(ec);
    json_object_set_new(j, "crv", json_string("P-521"));
    expect_jwk_refused(j, "P-521");
    j = json_deep_copy(ec);
    json_object_set(j, "x", json_object_get(ec2, "x"));
    expect_jwk_refused(j, "\"x\"");
    /* not base64url */
    j = json_deep_copy(ec);
    json_object_set_new(j, "d", json_string("ab+/cd"));
    expect_jwk_refused(j, "base64url");
    j = json_deep_copy(rsa);
    json_object_set_new(j, "n", json_integer(3));
    expect_jwk_refused(j, "\"n\" is missing");
    /* members that do not belong together: another key's d; a point off
     * the curve; RSA with its primes swapped for garbage */
    struct acme_key *other = NULL;
    struct cp_err err = {0};
    assert_int_equal(acme_key_generate(ACME_KEY_EC256, &other, &err), CP_OK);
    json_t *oj = private_jwk(other);
    j = json_deep_copy(ec);
    json_object_set(j, "d", json_object_get(oj, "d"));
    expect_jwk_refused(j, "consistent");
    j = json_deep_copy(ec);
    json_object_set(j, "y", json_object_get(ec, "x"));
    expect_jwk_refused(j, "private_key.json");
    j = json_deep_copy(rsa);
    json_object_set(j, "p", json_object_get(rsa, "q"));
    json_object_set(j, "d", json_object_get(rsa, "dp"));
    expect_jwk_refused(j, "private_key.json");
    json_decref(oj);
    acme_key_free(other);
    json_decref(ec);
    json_decref(ec2);
    json_decref(rsa);
}

static void test_free_null(void **state)
{
    (void)state;
    acme_key_free(NULL);
    assert_null(acme_key_evp(NULL));
    assert_null(acme_key_alg(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_generate_each),
        cmocka_unit_test(test_pem_round_trip),
        cmocka_unit_test(test_pem_traditional_and_bundle),
        cmocka_unit_test(test_refuse_p521),
        cmocka_unit_test(test_refuse_rsa1024),
        cmocka_unit_test(test_refuse_ed25519),
        cmocka_unit_test(test_refuse_garbage),
        cmocka_unit_test(test_refuse_encrypted),
        cmocka_unit_test(test_jwk_members),
        cmocka_unit_test(test_jwk_ec_coordinates_padded),
        cmocka_unit_test(test_thumbprint_of_keys),
        cmocka_unit_test(test_thumbprint_rfc7638_example),
        cmocka_unit_test(test_jwk_private_round_trip),
        cmocka_unit_test(test_jwk_private_refused),
        cmocka_unit_test(test_free_null),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
