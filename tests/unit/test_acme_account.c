/* tests/unit/test_acme_account.c - acme/account.c: the key change payload
 * (RFC 8555 §7.3.5; the inner JWS checked independently with OpenSSL) and
 * parsing of account objects (§7.1.2) from an untrusted CA. */
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

#include "acme/acme.h"

static const char *const ACCOUNT = "https://ca.example/acme/acct/17";
static const char *const KEY_CHANGE = "https://ca.example/acme/key-change";

/* ------------------------------------------------------------- helpers */

static json_t *b64d_json(const char *text, unsigned char **raw_out, size_t *len_out)
{
    unsigned char *raw = NULL;
    size_t len = 0;
    struct cp_err err = {0};
    assert_int_equal(acme_b64url_decode(text, "test", &raw, &len, &err), CP_OK);
    json_error_t jerr;
    json_t *j = json_loadb((const char *)raw, len, 0, &jerr);
    if (raw_out != NULL) {
        *raw_out = raw;
        *len_out = len;
    } else {
        free(raw);
    }
    return j;
}

/* Verify a JWS signature with `k`'s public key, independently of jws.c:
 * R||S back to DER for ECDSA, the hash RFC 7518 §3.1 names for the alg. */
static bool verifies(const struct acme_key *k, const char *prot, const char *payload,
                     const char *sig_b64)
{
    enum acme_key_type t = acme_key_type_of(k);
    unsigned char *sig = NULL, *der = NULL;
    size_t siglen = 0;
    int derlen = 0;
    struct cp_err err = {0};
    assert_int_equal(acme_b64url_decode(sig_b64, "signature", &sig, &siglen, &err), CP_OK);
    if (t == ACME_KEY_EC256 || t == ACME_KEY_EC384) {
        size_t half = t == ACME_KEY_EC256 ? 32 : 48;
        assert_int_equal(siglen, 2 * half);
        ECDSA_SIG *es = ECDSA_SIG_new();
        assert_non_null(es);
        assert_int_equal(ECDSA_SIG_set0(es, BN_bin2bn(sig, (int)half, NULL),
                                        BN_bin2bn(sig + half, (int)half, NULL)),
                         1);
        derlen = i2d_ECDSA_SIG(es, &der);
        ECDSA_SIG_free(es);
        assert_true(derlen > 0);
    }
    char tbs[16384];
    int n = snprintf(tbs, sizeof tbs, "%s.%s", prot, payload);
    assert_true(n > 0 && (size_t)n < sizeof tbs);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    assert_non_null(m);
    assert_int_equal(EVP_DigestVerifyInit(m, NULL,
                                          t == ACME_KEY_EC384 ? EVP_sha384() : EVP_sha256(), NULL,
                                          acme_key_evp(k)),
                     1);
    bool ok = EVP_DigestVerify(m, der ? der : sig, der ? (size_t)derlen : siglen,
                               (const unsigned char *)tbs, (size_t)n) == 1;
    EVP_MD_CTX_free(m);
    OPENSSL_free(der);
    free(sig);
    return ok;
}

/* ---------------------------------------------------------- key change */

static void check_key_change(enum acme_key_type old_type, enum acme_key_type new_type)
{
    struct acme_key *old_key = NULL, *new_key = NULL;
    struct cp_err err = {0};
    char *out = NULL;
    assert_int_equal(acme_key_generate(old_type, &old_key, &err), CP_OK);
    assert_int_equal(acme_key_generate(new_type, &new_key, &err), CP_OK);
    assert_int_equal(acme_key_change_payload(old_key, new_key, ACCOUNT, KEY_CHANGE, &out, &err),
                     CP_OK);

    json_error_t jerr;
    json_t *jws = json_loads(out, 0, &jerr);
    assert_non_null(jws);
    assert_int_equal(json_object_size(jws), 3);
    const char *prot = json_string_value(json_object_get(jws, "protected"));
    const char *pay = json_string_value(json_object_get(jws, "payload"));
    const char *sig = json_string_value(json_object_get(jws, "signature"));
    assert_non_null(prot);
    assert_non_null(pay);
    assert_non_null(sig);

    /* Signed by the new key, not the old one. */
    assert_true(verifies(new_key, prot, pay, sig));
    if (old_type == new_type)
        assert_false(verifies(old_key, prot, pay, sig));

    /* Header: alg, jwk of the new key, url; no nonce, no kid. */
    json_t *hdr = b64d_json(prot, NULL, NULL);
    assert_non_null(hdr);
    assert_int_equal(json_object_size(hdr), 3);
    assert_string_equal(json_string_value(json_object_get(hdr, "alg")), acme_key_alg(new_key));
    assert_string_equal(json_string_value(json_object_get(hdr, "url")), KEY_CHANGE);
    assert_null(json_object_get(hdr, "nonce"));
    assert_null(json_object_get(hdr, "kid"));
    json_t *new_jwk = acme_key_jwk(new_key);
    assert_true(json_equal(json_object_get(hdr, "jwk"), new_jwk));

    /* Payload: exactly the account URL and the old key's JWK. */
    json_t *inner = b64d_json(pay, NULL, NULL);
    assert_non_null(inner);
    assert_int_equal(json_object_size(inner), 2);
    assert_string_equal(json_string_value(json_object_get(inner, "account")), ACCOUNT);
    json_t *old_jwk = acme_key_jwk(old_key);
    assert_true(json_equal(json_object_get(inner, "oldKey"), old_jwk));
    assert_false(json_equal(old_jwk, new_jwk));

    json_decref(old_jwk);
    json_decref(new_jwk);
    json_decref(inner);
    json_decref(hdr);
    json_decref(jws);
    free(out);
    acme_key_free(old_key);
    acme_key_free(new_key);
}

static void test_key_change_same_type(void **state)
{
    (void)state;
    check_key_change(ACME_KEY_EC256, ACME_KEY_EC256);
}

static void test_key_change_other_types(void **state)
{
    (void)state;
    check_key_change(ACME_KEY_EC256, ACME_KEY_EC384);
    check_key_change(ACME_KEY_EC384, ACME_KEY_RSA2048);
    check_key_change(ACME_KEY_RSA2048, ACME_KEY_EC256);
}

static void test_inner_jws_needs_arguments(void **state)
{
    (void)state;
    struct acme_key *k = NULL;
    struct cp_err err = {0};
    char *out = (char *)"untouched";
    assert_int_equal(acme_key_generate(ACME_KEY_EC256, &k, &err), CP_OK);
    assert_int_equal(acme_jws_sign_inner(k, KEY_CHANGE, NULL, &out, &err), CP_EINTERNAL);
    assert_int_equal(acme_jws_sign_inner(k, NULL, "{}", &out, &err), CP_EINTERNAL);
    /* A URL that is not UTF-8 is the caller's input, said as such. */
    assert_int_equal(acme_jws_sign_inner(k, "https://ca.example/\xff", "{}", &out, &err),
                     CP_EINVAL);
    assert_null(out);
    acme_key_free(k);
}

/* ------------------------------------------------------ account object */

static enum cp_code parse(const char *text, struct acme_account *a)
{
    struct cp_err err = {0};
    enum cp_code rc = acme_account_parse(text, strlen(text), a, &err);
    if (rc != CP_OK)
        assert_true(err.msg[0] != '\0');
    return rc;
}

static void test_parse_full(void **state)
{
    (void)state;
    struct acme_account a;
    /* The RFC 7638 §3.1 example key, with its known thumbprint. */
    const char *text =
        "{\"status\":\"valid\",\"contact\":[\"mailto:a@example.org\",\"mailto:b@example.org\"],"
        "\"termsOfServiceAgreed\":true,\"orders\":\"https://ca.example/acme/acct/17/orders\","
        "\"key\":{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFb"
        "WhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4"
        "Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu"
        "6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0L"
        "s1jF44-csFCur-kEgU8awapJzKnqDKgw\"},\"createdAt\":\"2026-01-01T00:00:00Z\"}";
    assert_int_equal(parse(text, &a), CP_OK);
    assert_string_equal(a.status, "valid");
    assert_int_equal(a.ncontacts, 2);
    assert_string_equal(a.contacts[0], "mailto:a@example.org");
    assert_string_equal(a.contacts[1], "mailto:b@example.org");
    assert_int_equal(a.terms_agreed, 1);
    assert_string_equal(a.orders, "https://ca.example/acme/acct/17/orders");
    assert_string_equal(a.key_thumbprint, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    acme_account_clear(&a);
    acme_account_clear(&a); /* cleared twice is fine */
    acme_account_clear(NULL);
}

static void test_parse_minimal(void **state)
{
    (void)state;
    struct acme_account a;
    assert_int_equal(parse("{\"status\":\"deactivated\"}", &a), CP_OK);
    assert_string_equal(a.status, "deactivated");
    assert_int_equal(a.ncontacts, 0);
    assert_null(a.orders);
    assert_int_equal(a.terms_agreed, -1);
    assert_string_equal(a.key_thumbprint, "");
    acme_account_clear(&a);
    assert_int_equal(parse("{\"status\":\"revoked\",\"contact\":[],"
                           "\"termsOfServiceAgreed\":false}",
                           &a),
                     CP_OK);
    assert_int_equal(a.terms_agreed, 0);
    assert_int_equal(a.ncontacts, 0);
    acme_account_clear(&a);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "not json",
        "[]",
        "\"valid\"",
        "{}",                                            /* status missing */
        "{\"status\":null}",                             /* not a string */
        "{\"status\":\"pending\"}",                      /* not an account status */
        "{\"status\":\"\"}",                             /* empty */
        "{\"status\":\"valid\",\"status\":\"revoked\"}", /* duplicate member */
        "{\"status\":\"valid\",\"contact\":\"mailto:a@example.org\"}",
        "{\"status\":\"valid\",\"contact\":[1]}",
        "{\"status\":\"valid\",\"contact\":[\"\"]}",
        "{\"status\":\"valid\",\"contact\":[null]}",
        "{\"status\":\"valid\",\"orders\":42}",
        "{\"status\":\"valid\",\"orders\":\"\"}",
        "{\"status\":\"valid\",\"termsOfServiceAgreed\":\"yes\"}",
        "{\"status\":\"valid\",\"key\":\"not a jwk\"}",
        "{\"status\":\"valid\",\"key\":{\"kty\":\"EC\",\"crv\":\"P-256\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct acme_account a;
        if (parse(bad[i], &a) != CP_EPROTO)
            fail_msg("accepted: %s", bad[i]);
        acme_account_clear(&a);
    }
    struct acme_account a;
    struct cp_err err = {0};
    assert_int_equal(acme_account_parse(NULL, 0, &a, &err), CP_EPROTO);
    acme_account_clear(&a);
}

static void test_parse_bounds(void **state)
{
    (void)state;
    struct acme_account a;
    char text[80000];
    size_t n;

    /* ACME_ACCOUNT_CONTACTS_MAX contacts pass, one more does not. */
    for (int extra = 0; extra <= 1; extra++) {
        n = (size_t)snprintf(text, sizeof text, "{\"status\":\"valid\",\"contact\":[");
        for (int i = 0; i < ACME_ACCOUNT_CONTACTS_MAX + extra; i++)
            n += (size_t)snprintf(text + n, sizeof text - n, "%s\"mailto:%d@example.org\"",
                                  i ? "," : "", i);
        snprintf(text + n, sizeof text - n, "]}");
        assert_int_equal(parse(text, &a), extra ? CP_EPROTO : CP_OK);
        if (!extra)
            assert_int_equal(a.ncontacts, ACME_ACCOUNT_CONTACTS_MAX);
        acme_account_clear(&a);
    }

    /* A contact of 1024 bytes passes, 1025 does not. */
    for (size_t len = 1024; len <= 1025; len++) {
        n = (size_t)snprintf(text, sizeof text, "{\"status\":\"valid\",\"contact\":[\"");
        memset(text + n, 'a', len);
        n += len;
        snprintf(text + n, sizeof text - n, "\"]}");
        assert_int_equal(parse(text, &a), len == 1024 ? CP_OK : CP_EPROTO);
        acme_account_clear(&a);
    }

    /* An orders URL over 2048 bytes. */
    n = (size_t)snprintf(text, sizeof text, "{\"status\":\"valid\",\"orders\":\"https://");
    memset(text + n, 'o', 2100);
    n += 2100;
    snprintf(text + n, sizeof text - n, "\"}");
    assert_int_equal(parse(text, &a), CP_EPROTO);
    acme_account_clear(&a);

    /* The whole object over 64 KiB, however well-formed. */
    n = (size_t)snprintf(text, sizeof text, "{\"status\":\"valid\",\"padding\":\"");
    memset(text + n, ' ', 66000);
    n += 66000;
    snprintf(text + n, sizeof text - n, "\"}");
    assert_int_equal(parse(text, &a), CP_EPROTO);
    acme_account_clear(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_change_same_type),
        cmocka_unit_test(test_key_change_other_types),
        cmocka_unit_test(test_inner_jws_needs_arguments),
        cmocka_unit_test(test_parse_full),
        cmocka_unit_test(test_parse_minimal),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
