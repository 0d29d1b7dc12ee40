/* tests/unit/test_acme_jws.c - acme/jws.c: base64url, RFC 8555 §6.2 JWS
 * (verified independently with OpenSSL) and §7.3.4 External Account Binding. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "acme/acme.h"

#define NTYPES 5

static const enum acme_key_type all_types[NTYPES] = {
    ACME_KEY_EC256, ACME_KEY_EC384, ACME_KEY_RSA2048, ACME_KEY_RSA3072, ACME_KEY_RSA4096,
};

static struct acme_key *keys[NTYPES];

static const char *const NONCE = "oFvnlFP1wIhRlYS2jTaXbA";
static const char *const URL = "https://example.com/acme/new-order";
static const char *const KID = "https://example.com/acme/acct/evOfKhNU60wg";

static int group_setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < NTYPES; i++) {
        struct cp_err err = {0};
        if (acme_key_generate(all_types[i], &keys[i], &err) != CP_OK) {
            fprintf(stderr, "generate: %s\n", err.msg);
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

/* Decode base64url that the test expects to be valid. */
static unsigned char *b64d(const char *text, size_t *len)
{
    unsigned char *out = NULL;
    struct cp_err err = {0};
    assert_int_equal(acme_b64url_decode(text, "test", &out, len, &err), CP_OK);
    assert_non_null(out);
    return out;
}

static json_t *b64d_json(const char *text)
{
    size_t len = 0;
    unsigned char *raw = b64d(text, &len);
    json_error_t jerr;
    json_t *j = json_loadb((const char *)raw, len, 0, &jerr);
    assert_non_null(j);
    free(raw);
    return j;
}

/* ------------------------------------------------------------- base64url */

struct vec {
    const char *raw;
    size_t len;
    const char *b64;
};

/* RFC 4648 §10, without padding, plus bytes that use the URL-safe characters. */
static const struct vec vectors[] = {
    {"", 0, ""},
    {"f", 1, "Zg"},
    {"fo", 2, "Zm8"},
    {"foo", 3, "Zm9v"},
    {"foob", 4, "Zm9vYg"},
    {"fooba", 5, "Zm9vYmE"},
    {"foobar", 6, "Zm9vYmFy"},
    {"\xfb\xff", 2, "-_8"},
    {"\xfb\xff\xbf", 3, "-_-_"},
    {"\x00", 1, "AA"},
    {"\x00\x00", 2, "AAA"},
    {"\x00\x00\x00", 3, "AAAA"},
    {"\x00\x00\x00\x00", 4, "AAAAAA"},
    {"\xff\x00", 2, "_wA"},
};

static void test_b64url_encode_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        char *s = acme_b64url_encode((const unsigned char *)vectors[i].raw, vectors[i].len);
        assert_non_null(s);
        assert_string_equal(s, vectors[i].b64);
        free(s);
    }
    char *s = acme_b64url_encode(NULL, 0);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
}

static void test_b64url_decode_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        size_t len = 99;
        unsigned char *out = b64d(vectors[i].b64, &len);
        /* The true length, not EVP_DecodeBlock's multiple of three. */
        assert_int_equal(len, vectors[i].len);
        assert_memory_equal(out, vectors[i].raw, len);
        free(out);

        /* The same with padding to a multiple of four. */
        char padded[32];
        size_t n = strlen(vectors[i].b64);
        snprintf(padded, sizeof padded, "%s%s", vectors[i].b64, &"=="[2 - (4 - n % 4) % 4]);
        assert_int_equal(strlen(padded) % 4, 0);
        out = b64d(padded, &len);
        assert_int_equal(len, vectors[i].len);
        assert_memory_equal(out, vectors[i].raw, len);
        free(out);
    }
    /* Standard-alphabet padding forms of RFC 4648 §10. */
    size_t len = 0;
    unsigned char *out = b64d("Zm9vYg==", &len);
    assert_int_equal(len, 4);
    assert_memory_equal(out, "foob", 4);
    free(out);
    out = b64d("Zm9vYmE=", &len);
    assert_int_equal(len, 5);
    assert_memory_equal(out, "fooba", 5);
    free(out);
}

static void test_b64url_decode_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "+",    "/",     "*",     "Zm9v+w", "Zm9v/w", "Zm*v",   "Z",      "Zm9vY",
        "Zg=",  "Zg===", "Zm8==", "Zm9v=",  "Zm9v==", "=Zg",    "Zg=a",   "=",
        "====", " Zg",   "Zg ",   "Zg\n",   "Zm 9v",  "Z\x80g", "Zm9v\t", "Zg==Zg",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cp_err err = {0};
        unsigned char *out = (unsigned char *)"sentinel";
        size_t len = 7;
        enum cp_code rc = acme_b64url_decode(bad[i], "--eab-hmac-key", &out, &len, &err);
        if (rc != CP_EINVAL)
            fail_msg("\"%s\" was accepted", bad[i]);
        assert_null(out);
        assert_int_equal(len, 0);
        assert_int_equal(err.code, CP_EINVAL);
        assert_non_null(strstr(err.msg, "--eab-hmac-key"));
    }
    struct cp_err err = {0};
    unsigned char *out = NULL;
    size_t len = 0;
    assert_int_equal(acme_b64url_decode("Zm*v", "x", &out, &len, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "'*' at offset 2"));
    assert_int_equal(acme_b64url_decode(NULL, "x", &out, &len, &err), CP_EINVAL);
}

static void test_b64url_round_trip(void **state)
{
    (void)state;
    unsigned char data[300];
    assert_int_equal(RAND_bytes(data, sizeof data), 1);
    for (size_t n = 0; n <= sizeof data; n++) {
        char *s = acme_b64url_encode(data, n);
        assert_non_null(s);
        assert_int_equal(strlen(s), (n * 4 + 2) / 3);
        assert_null(strpbrk(s, "+/="));
        size_t len = 0;
        unsigned char *back = b64d(s, &len);
        assert_int_equal(len, n);
        assert_memory_equal(back, data, n);
        free(back);
        free(s);
    }
}

/* ------------------------------------------------------------------- JWS */

struct parsed {
    json_t *jws;   /* the whole flattened JWS */
    json_t *hdr;   /* decoded protected header */
    char *payload; /* decoded payload text */
    bool verified; /* signature checks out over "protected.payload" */
};

static void parsed_clear(struct parsed *p)
{
    json_decref(p->jws);
    json_decref(p->hdr);
    free(p->payload);
    memset(p, 0, sizeof *p);
}

/* Check a signature independently of acme/jws.c: back to DER for ECDSA,
 * then EVP_DigestVerify with the hash RFC 7518 §3.1 names for the alg. */
static bool verify_sig(EVP_PKEY *pkey, enum acme_key_type t, const char *tbs,
                       const unsigned char *sig, size_t siglen)
{
    const EVP_MD *md = t == ACME_KEY_EC384 ? EVP_sha384() : EVP_sha256();
    unsigned char *der = NULL;
    int derlen = 0;
    bool ok;

    if (t == ACME_KEY_EC256 || t == ACME_KEY_EC384) {
        size_t half = t == ACME_KEY_EC256 ? 32 : 48;
        assert_int_equal(siglen, 2 * half);
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, (int)half, NULL);
        BIGNUM *s = BN_bin2bn(sig + half, (int)half, NULL);
        assert_non_null(es);
        assert_int_equal(ECDSA_SIG_set0(es, r, s), 1);
        derlen = i2d_ECDSA_SIG(es, &der);
        assert_true(derlen > 0);
        ECDSA_SIG_free(es);
    } else {
        int bits = t == ACME_KEY_RSA2048 ? 2048 : t == ACME_KEY_RSA3072 ? 3072 : 4096;
        assert_int_equal(siglen, (size_t)bits / 8);
    }

    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    assert_non_null(mctx);
    assert_int_equal(EVP_DigestVerifyInit(mctx, NULL, md, NULL, pkey), 1);
    ok = EVP_DigestVerify(mctx, der != NULL ? der : sig, der != NULL ? (size_t)derlen : siglen,
                          (const unsigned char *)tbs, strlen(tbs)) == 1;
    EVP_MD_CTX_free(mctx);
    OPENSSL_free(der);
    return ok;
}

static void parse_jws(const char *text, const struct acme_key *k, struct parsed *p)
{
    json_error_t jerr;
    memset(p, 0, sizeof *p);
    p->jws = json_loads(text, 0, &jerr);
    assert_non_null(p->jws);
    assert_int_equal(json_object_size(p->jws), 3);
    const char *prot = json_string_value(json_object_get(p->jws, "protected"));
    const char *pay = json_string_value(json_object_get(p->jws, "payload"));
    const char *sig = json_string_value(json_object_get(p->jws, "signature"));
    assert_non_null(prot);
    assert_non_null(pay);
    assert_non_null(sig);

    p->hdr = b64d_json(prot);
    size_t len = 0;
    unsigned char *raw = b64d(pay, &len);
    p->payload = calloc(1, len + 1);
    assert_non_null(p->payload);
    memcpy(p->payload, raw, len);
    free(raw);

    char tbs[8192];
    int n = snprintf(tbs, sizeof tbs, "%s.%s", prot, pay);
    assert_true(n > 0 && (size_t)n < sizeof tbs);
    unsigned char *sigbytes = b64d(sig, &len);
    p->verified = verify_sig(acme_key_evp(k), acme_key_type_of(k), tbs, sigbytes, len);
    free(sigbytes);
}

static void test_jws_sign_jwk_each_type(void **state)
{
    (void)state;
    static const char *const algs[NTYPES] = {"ES256", "ES384", "RS256", "RS256", "RS256"};
    const char *payload = "{\"termsOfServiceAgreed\":true,\"contact\":[\"mailto:a@example.com\"]}";

    for (size_t i = 0; i < NTYPES; i++) {
        struct cp_err err = {0};
        char *out = NULL;
        struct parsed p;
        assert_int_equal(acme_jws_sign(keys[i], NULL, NONCE, URL, payload, &out, &err), CP_OK);
        parse_jws(out, keys[i], &p);

        assert_true(p.verified);
        assert_string_equal(p.payload, payload);
        assert_int_equal(json_object_size(p.hdr), 4);
        assert_string_equal(json_string_value(json_object_get(p.hdr, "alg")), algs[i]);
        assert_string_equal(json_string_value(json_object_get(p.hdr, "nonce")), NONCE);
        assert_string_equal(json_string_value(json_object_get(p.hdr, "url")), URL);
        assert_null(json_object_get(p.hdr, "kid"));
        json_t *jwk = acme_key_jwk(keys[i]);
        assert_true(json_equal(json_object_get(p.hdr, "jwk"), jwk));
        json_decref(jwk);

        parsed_clear(&p);
        free(out);
    }
}

static void test_jws_sign_kid_each_type(void **state)
{
    (void)state;
    for (size_t i = 0; i < NTYPES; i++) {
        struct cp_err err = {0};
        char *out = NULL;
        struct parsed p;
        assert_int_equal(acme_jws_sign(keys[i], KID, NONCE, URL, "{}", &out, &err), CP_OK);
        parse_jws(out, keys[i], &p);

        assert_true(p.verified);
        assert_string_equal(p.payload, "{}");
        assert_int_equal(json_object_size(p.hdr), 4);
        assert_string_equal(json_string_value(json_object_get(p.hdr, "kid")), KID);
        assert_null(json_object_get(p.hdr, "jwk"));
        assert_string_equal(json_string_value(json_object_get(p.hdr, "alg")),
                            acme_key_alg(keys[i]));
        parsed_clear(&p);
        free(out);
    }
}

static void test_jws_post_as_get(void **state)
{
    (void)state;
    for (size_t i = 0; i < NTYPES; i++) {
        struct cp_err err = {0};
        char *out = NULL;
        struct parsed p;
        assert_int_equal(acme_jws_sign(keys[i], KID, NONCE, URL, NULL, &out, &err), CP_OK);
        parse_jws(out, keys[i], &p);
        assert_true(p.verified);
        /* RFC 8555 §6.3: the payload member is the empty string. */
        assert_string_equal(json_string_value(json_object_get(p.jws, "payload")), "");
        assert_string_equal(p.payload, "");
        parsed_clear(&p);
        free(out);
    }
}

/* The verification above is not vacuous: a changed payload fails it. */
static void test_jws_tampered_fails(void **state)
{
    (void)state;
    for (size_t i = 0; i < NTYPES; i++) {
        struct cp_err err = {0};
        char *out = NULL;
        char *evil = NULL;
        struct parsed p;
        assert_int_equal(acme_jws_sign(keys[i], KID, NONCE, URL, "{\"a\":1}", &out, &err), CP_OK);
        json_error_t jerr;
        json_t *j = json_loads(out, 0, &jerr);
        assert_non_null(j);
        char *other = acme_b64url_encode((const unsigned char *)"{\"a\":2}", 7);
        json_object_set_new(j, "payload", json_string(other));
        evil = json_dumps(j, 0);
        parse_jws(evil, keys[i], &p);
        assert_false(p.verified);
        parsed_clear(&p);
        /* Nor does the right payload under another key of the same type. */
        if (all_types[i] == ACME_KEY_EC256 || all_types[i] == ACME_KEY_RSA2048) {
            struct acme_key *k2 = NULL;
            assert_int_equal(acme_key_generate(all_types[i], &k2, &err), CP_OK);
            parse_jws(out, k2, &p);
            assert_false(p.verified);
            parsed_clear(&p);
            acme_key_free(k2);
        }
        free(other);
        free(evil);
        json_decref(j);
        free(out);
    }
}

static void test_jws_bad_input(void **state)
{
    (void)state;
    struct cp_err err = {0};
    char *out = (char *)"sentinel";
    assert_int_equal(acme_jws_sign(keys[0], NULL, "bad\xff nonce", URL, "{}", &out, &err),
                     CP_EINVAL);
    assert_null(out);
    assert_non_null(strstr(err.msg, "UTF-8"));
    assert_int_equal(acme_jws_sign(keys[0], NULL, NULL, URL, "{}", &out, &err), CP_EINTERNAL);
    assert_int_equal(acme_jws_sign(NULL, NULL, NONCE, URL, "{}", &out, &err), CP_EINTERNAL);
}

/* ------------------------------------------------------------------- EAB */

static void test_eab(void **state)
{
    (void)state;
    /* A 32-byte MAC key as CAs hand them out: base64url, no padding. */
    unsigned char key[32];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (unsigned char)(0xf0 + i); /* exercises '-' and '_' */
    char *key_b64 = acme_b64url_encode(key, sizeof key);
    const char *eab_kid = "kid-1";
    const char *new_acct = "https://example.com/acme/new-account";

    for (size_t i = 0; i < NTYPES; i++) {
        struct cp_err err = {0};
        json_t *eab = NULL;
        assert_int_equal(acme_eab_sign(keys[i], eab_kid, key_b64, new_acct, &eab, &err), CP_OK);
        assert_non_null(eab);
        assert_int_equal(json_object_size(eab), 3);
        const char *prot = json_string_value(json_object_get(eab, "protected"));
        const char *pay = json_string_value(json_object_get(eab, "payload"));
        const char *sig = json_string_value(json_object_get(eab, "signature"));
        assert_non_null(prot);
        assert_non_null(pay);
        assert_non_null(sig);

        /* §7.3.4: alg HS256, kid, url of newAccount; no nonce, no jwk. */
        json_t *hdr = b64d_json(prot);
        assert_int_equal(json_object_size(hdr), 3);
        assert_string_equal(json_string_value(json_object_get(hdr, "alg")), "HS256");
        assert_string_equal(json_string_value(json_object_get(hdr, "kid")), eab_kid);
        assert_string_equal(json_string_value(json_object_get(hdr, "url")), new_acct);
        json_decref(hdr);

        /* The payload is the account key's JWK. */
        json_t *payload = b64d_json(pay);
        json_t *jwk = acme_key_jwk(keys[i]);
        assert_true(json_equal(payload, jwk));
        json_decref(jwk);
        json_decref(payload);

        /* The MAC, recomputed with HMAC(). */
        char tbs[4096];
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int maclen = 0;
        int n = snprintf(tbs, sizeof tbs, "%s.%s", prot, pay);
        assert_true(n > 0 && (size_t)n < sizeof tbs);
        assert_non_null(HMAC(EVP_sha256(), key, (int)sizeof key, (const unsigned char *)tbs,
                             (size_t)n, mac, &maclen));
        assert_int_equal(maclen, 32);
        size_t siglen = 0;
        unsigned char *sigbytes = b64d(sig, &siglen);
        assert_int_equal(siglen, 32);
        assert_memory_equal(sigbytes, mac, 32);
        free(sigbytes);
        json_decref(eab);
    }

    /* A padded key is the same key. */
    char padded[64];
    snprintf(padded, sizeof padded, "%s=", key_b64); /* 43 characters + 1 */
    struct cp_err err = {0};
    json_t *a = NULL;
    json_t *b = NULL;
    assert_int_equal(acme_eab_sign(keys[0], eab_kid, key_b64, new_acct, &a, &err), CP_OK);
    assert_int_equal(acme_eab_sign(keys[0], eab_kid, padded, new_acct, &b, &err), CP_OK);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    free(key_b64);
}

static void test_eab_bad_key(void **state)
{
    (void)state;
    static const char *const bad[] = {"abc*def", "abc+def", "a", "", "===="};
    const char *new_acct = "https://example.com/acme/new-account";
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cp_err err = {0};
        json_t *eab = json_null(); /* must be reset to NULL */
        assert_int_equal(acme_eab_sign(keys[0], "kid-1", bad[i], new_acct, &eab, &err), CP_EINVAL);
        assert_null(eab);
        assert_non_null(strstr(err.msg, "--eab-hmac-key"));
    }
    struct cp_err err = {0};
    json_t *eab = NULL;
    assert_int_equal(acme_eab_sign(keys[0], "", "AAAA", new_acct, &eab, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "--eab-kid"));
    assert_null(eab);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url_encode_vectors),
        cmocka_unit_test(test_b64url_decode_vectors),
        cmocka_unit_test(test_b64url_decode_rejects),
        cmocka_unit_test(test_b64url_round_trip),
        cmocka_unit_test(test_jws_sign_jwk_each_type),
        cmocka_unit_test(test_jws_sign_kid_each_type),
        cmocka_unit_test(test_jws_post_as_get),
        cmocka_unit_test(test_jws_tampered_fails),
        cmocka_unit_test(test_jws_bad_input),
        cmocka_unit_test(test_eab),
        cmocka_unit_test(test_eab_bad_key),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
