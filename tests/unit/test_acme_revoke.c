/* tests/unit/test_acme_revoke.c - acme/revoke.c: the table of reasons a
 * subscriber may give, the revokeCert payload (RFC 8555 §7.6) and the serial
 * number as hex, on certificates made here with OpenSSL. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "acme/acme.h"

static struct acme_key *key;

static int group_setup(void **state)
{
    (void)state;
    struct cp_err err = {0};
    return acme_key_generate(ACME_KEY_EC256, &key, &err) == CP_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    acme_key_free(key);
    return 0;
}

/* A self-signed certificate with the serial number given in hex. */
static X509 *make_cert(const char *serial_hex)
{
    X509 *x = X509_new();
    BIGNUM *bn = NULL;
    assert_non_null(x);
    assert_true(BN_hex2bn(&bn, serial_hex) > 0);
    assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
    BN_free(bn);
    X509_NAME *name = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"revoke.test", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_int_equal(X509_set_pubkey(x, acme_key_evp(key)), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
    assert_true(X509_sign(x, acme_key_evp(key), EVP_sha256()) > 0);
    return x;
}

static struct acme_chain *chain_of(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *pem;
    struct acme_chain *c = NULL;
    struct cp_err err = {0};
    assert_int_equal(PEM_write_bio_X509(b, x), 1);
    long len = BIO_get_mem_data(b, &pem);
    assert_int_equal(acme_chain_parse(pem, (size_t)len, "test", &c, &err), CP_OK);
    BIO_free(b);
    return c;
}

/* ------------------------------------------------------------- reasons */

static void test_reason_table(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int code;
    } want[] = {{"unspecified", 0},
                {"keyCompromise", 1},
                {"affiliationChanged", 3},
                {"superseded", 4},
                {"cessationOfOperation", 5}};
    size_t n = 0;
    const struct acme_revoke_reason *r = acme_revoke_reasons(&n);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++) {
        struct cp_err err = {0};
        int code = -5;
        assert_string_equal(r[i].name, want[i].name);
        assert_int_equal(r[i].code, want[i].code);
        assert_int_equal(acme_revoke_reason_parse(want[i].name, &code, &err), CP_OK);
        assert_int_equal(code, want[i].code);
        assert_string_equal(acme_revoke_reason_name(want[i].code), want[i].name);
    }
}

static void test_reason_case_insensitive(void **state)
{
    (void)state;
    struct cp_err err = {0};
    int code = -5;
    assert_int_equal(acme_revoke_reason_parse("KEYCOMPROMISE", &code, &err), CP_OK);
    assert_int_equal(code, 1);
    assert_int_equal(acme_revoke_reason_parse("superSeded", &code, &err), CP_OK);
    assert_int_equal(code, 4);
}

static void test_reason_refused(void **state)
{
    (void)state;
    /* The CA's own reasons, unused 7, numbers, near misses. */
    static const char *const bad[] = {"cACompromise",
                                      "certificateHold",
                                      "removeFromCRL",
                                      "privilegeWithdrawn",
                                      "aACompromise",
                                      "1",
                                      "",
                                      "key",
                                      "keyCompromise ",
                                      "superseded,"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cp_err err = {0};
        int code = -5;
        assert_int_equal(acme_revoke_reason_parse(bad[i], &code, &err), CP_EINVAL);
        assert_int_equal(code, -5);
        assert_non_null(strstr(err.msg, "--reason"));
        /* Every accepted name is listed. */
        size_t n = 0;
        const struct acme_revoke_reason *r = acme_revoke_reasons(&n);
        for (size_t k = 0; k < n; k++)
            assert_non_null(strstr(err.msg, r[k].name));
    }
    for (int code = -1; code <= 11; code++)
        if (code == 2 || code > 5 || code < 0)
            assert_null(acme_revoke_reason_name(code));
}

/* ------------------------------------------------------------- payload */

/* Parse the payload and check its certificate decodes to `der`. */
static json_t *check_payload(const char *text, const unsigned char *der, size_t der_len)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    assert_true(json_is_object(j));
    const char *b64 = json_string_value(json_object_get(j, "certificate"));
    assert_non_null(b64);
    assert_null(strpbrk(b64, "+/=")); /* base64url without padding */
    unsigned char *back = NULL;
    size_t back_len = 0;
    struct cp_err err = {0};
    assert_int_equal(acme_b64url_decode(b64, "test", &back, &back_len, &err), CP_OK);
    assert_int_equal(back_len, der_len);
    assert_memory_equal(back, der, der_len);
    free(back);
    return j;
}

static void test_payload_certificate_der(void **state)
{
    (void)state;
    X509 *x = make_cert("1234abcd");
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    assert_true(len > 0);
    char *text = NULL;
    struct cp_err err = {0};
    assert_int_equal(acme_revoke_payload(der, (size_t)len, ACME_REVOKE_NO_REASON, &text, &err),
                     CP_OK);
    json_t *j = check_payload(text, der, (size_t)len);
    /* No reason given: no member, not a null or a 0. */
    assert_int_equal(json_object_size(j), 1);
    assert_null(json_object_get(j, "reason"));
    json_decref(j);
    free(text);

    /* The DER decodes back to the same certificate. */
    const unsigned char *p = der;
    X509 *again = d2i_X509(NULL, &p, len);
    assert_non_null(again);
    assert_int_equal(X509_cmp(x, again), 0);
    X509_free(again);
    OPENSSL_free(der);
    X509_free(x);
}

static void test_payload_with_reason(void **state)
{
    (void)state;
    /* Lengths around the base64 block boundaries, bytes that map to '-' and '_'. */
    unsigned char der[66];
    for (size_t i = 0; i < sizeof der; i++)
        der[i] = (unsigned char)(0xfb + i * 7);
    for (size_t len = 1; len <= sizeof der; len += 13) {
        size_t n = 0;
        const struct acme_revoke_reason *r = acme_revoke_reasons(&n);
        for (size_t k = 0; k < n; k++) {
            char *text = NULL;
            struct cp_err err = {0};
            assert_int_equal(acme_revoke_payload(der, len, r[k].code, &text, &err), CP_OK);
            json_t *j = check_payload(text, der, len);
            json_t *reason = json_object_get(j, "reason");
            assert_true(json_is_integer(reason));
            assert_int_equal(json_integer_value(reason), r[k].code);
            assert_int_equal(json_object_size(j), 2);
            json_decref(j);
            free(text);
        }
    }
}

static void test_payload_refused(void **state)
{
    (void)state;
    unsigned char der[4] = {0x30, 0x02, 0x05, 0x00};
    char *text = (char *)"untouched";
    struct cp_err err = {0};
    assert_int_equal(acme_revoke_payload(NULL, 0, 1, &text, &err), CP_EINVAL);
    assert_null(text);
    assert_int_equal(acme_revoke_payload(der, 0, 1, &text, &err), CP_EINVAL);
    static const int bad[] = {2, 6, 7, 8, 9, 10, 11, -2, 100};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(acme_revoke_payload(der, sizeof der, bad[i], &text, &err), CP_EINVAL);
        assert_null(text);
    }
}

/* -------------------------------------------------------------- serial */

static void test_serial_hex(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"01", "1"},
        {"0a0b", "a0b"},
        {"FF", "ff"},
        {"00ff", "ff"},
        {"7fffffffffffffff", "7fffffffffffffff"},
        /* 20 octets, the most RFC 5280 allows */
        {"7A5B3C1D0E9F8a7b6c5d4e3f2a1b0c9d8e7f6a5b", "7a5b3c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        X509 *x = make_cert(cases[i].in);
        struct acme_chain *c = chain_of(x);
        char out[41];
        struct cp_err err = {0};
        assert_int_equal(acme_chain_serial_hex(c, out, sizeof out, &err), CP_OK);
        assert_string_equal(out, cases[i].out);
        /* One byte short of the text and its NUL: refused, not cut. */
        char small[8];
        size_t need = strlen(cases[i].out) + 1;
        if (need > sizeof small)
            assert_int_equal(acme_chain_serial_hex(c, small, sizeof small, &err), CP_EINVAL);
        else
            assert_int_equal(acme_chain_serial_hex(c, small, need - 1, &err), CP_EINVAL);
        acme_chain_free(c);
        X509_free(x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reason_table),        cmocka_unit_test(test_reason_case_insensitive),
        cmocka_unit_test(test_reason_refused),      cmocka_unit_test(test_payload_certificate_der),
        cmocka_unit_test(test_payload_with_reason), cmocka_unit_test(test_payload_refused),
        cmocka_unit_test(test_serial_hex),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
