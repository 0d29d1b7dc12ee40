/* tests/unit/test_acme_ari.c - acme/ari.c: the RFC 9773 certificate
 * identifier (on the RFC's own example and on certificates made here), and
 * the renewalInfo parser on good and hostile answers.  The GET itself is
 * tested against the lab (tests/integration/test_ari_lab.py). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme/acme.h"

/* RFC 9773 Appendix A: AKI keyIdentifier 69:88:5B:...:C8:D4, serial
 * 0x87654321 (DER content 00 87 65 43 21); §4.1 gives its identifier. */
static const char rfc9773_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBQzCB66ADAgECAgUAh2VDITAKBggqhkjOPQQDAjAVMRMwEQYDVQQDEwpFeGFt\n"
    "cGxlIENBMCIYDzAwMDEwMTAxMDAwMDAwWhgPMDAwMTAxMDEwMDAwMDBaMBYxFDAS\n"
    "BgNVBAMTC2V4YW1wbGUuY29tMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEeBZu\n"
    "7cbpAYNXZLbbh8rNIzuOoqOOtmxA1v7cRm//AwyMwWxyHz4zfwmBhcSrf47NUAFf\n"
    "qzLQ2PPQxdTXREYEnKMjMCEwHwYDVR0jBBgwFoAUaYhba4dGQEHhs3uEe6CuLN4B\n"
    "yNQwCgYIKoZIzj0EAwIDRwAwRAIge09+S5TZAlw5tgtiVvuERV6cT4mfutXIlwTb\n"
    "+FYN/8oCIClDsqBklhB9KAelFiYt9+6FDj3z4KGVelYM5MdsO3pK\n"
    "-----END CERTIFICATE-----\n";

static EVP_PKEY *test_key;

static int setup(void **state)
{
    (void)state;
    test_key = EVP_EC_gen("P-256");
    return test_key != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(test_key);
    return 0;
}

/* ------------------------------------------------------------- cert ID */

enum aki_kind { AKI_NONE, AKI_KEYID, AKI_ISSUER_SERIAL_ONLY };

/* A self-signed PEM certificate with the given serial bytes (big-endian,
 * unsigned) and AKI; heap string. */
static char *make_pem(const unsigned char *serial, size_t nserial, enum aki_kind aki)
{
    static const unsigned char keyid[] = {0xfb, 0xff, 0x01, 0x02, 0x03, 0x04, 0x05,
                                          0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c,
                                          0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12};
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    BIGNUM *bn = BN_bin2bn(serial, (int)nserial, NULL);
    assert_non_null(bn);
    assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
    BN_free(bn);
    X509_NAME *name = X509_NAME_new();
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"ari.test", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    X509_NAME_free(name);
    assert_int_equal(X509_set_pubkey(x, test_key), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
    if (aki != AKI_NONE) {
        AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
        assert_non_null(akid);
        if (aki == AKI_KEYID) {
            akid->keyid = ASN1_OCTET_STRING_new();
            assert_int_equal(ASN1_OCTET_STRING_set(akid->keyid, keyid, sizeof keyid), 1);
        } else {
            akid->serial = ASN1_INTEGER_new();
            assert_int_equal(ASN1_INTEGER_set(akid->serial, 7), 1);
        }
        assert_int_equal(
            X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT), 1);
        AUTHORITY_KEYID_free(akid);
    }
    assert_true(X509_sign(x, test_key, EVP_sha256()) > 0);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(bio, x), 1);
    char *mem = NULL;
    long n = BIO_get_mem_data(bio, &mem);
    char *pem = strndup(mem, (size_t)n);
    assert_non_null(pem);
    BIO_free(bio);
    X509_free(x);
    return pem;
}

/* acme_ari_cert_id of a PEM; *id NULL on failure. */
static enum cp_code cert_id_of(const char *pem, char **id, struct cp_err *err)
{
    struct acme_chain *chain = NULL;
    assert_int_equal(acme_chain_parse(pem, strlen(pem), "test", &chain, err), CP_OK);
    enum cp_code rc = acme_ari_cert_id(chain, id, err);
    acme_chain_free(chain);
    return rc;
}

static void rfc9773_example(void **state)
{
    (void)state;
    char *id = NULL;
    struct cp_err err = {0};
    assert_int_equal(cert_id_of(rfc9773_pem, &id, &err), CP_OK);
    assert_string_equal(id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    free(id);
}

static void serial_encodings(void **state)
{
    (void)state;
    static const struct {
        unsigned char serial[21];
        size_t n;
        const char *suffix;
    } cases[] = {
        {{0x80, 0x01, 0x02}, 3, ".AIABAg"}, /* high bit: 00 80 01 02 */
        {{0x7f, 0xff}, 2, ".f_8"},          /* no padding byte; '_' of base64url */
        {{0x01}, 1, ".AQ"},
        {{0x00}, 1, ".AA"}, /* zero is one content octet */
        /* A 20-octet serial with the high bit set: 21 content octets. */
        {{0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x77, 0x66,
          0x55, 0x44, 0x33, 0x22, 0x11, 0x00, 0xfe, 0xfd, 0xfc, 0xfb},
         20,
         ".AP_u3cy7qpmId2ZVRDMiEQD-_fz7"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *pem = make_pem(cases[i].serial, cases[i].n, AKI_KEYID);
        char *id = NULL;
        struct cp_err err = {0};
        assert_int_equal(cert_id_of(pem, &id, &err), CP_OK);
        /* keyid fb ff 01 .. 12 */
        assert_true(strncmp(id, "-_8BAgMEBQYHCAkKCwwNDg8QERI.", 28) == 0);
        assert_string_equal(strchr(id, '.'), cases[i].suffix);
        free(id);
        free(pem);
    }
}

static void no_aki_keyid(void **state)
{
    (void)state;
    static const unsigned char serial[] = {0x42};
    enum aki_kind kinds[] = {AKI_NONE, AKI_ISSUER_SERIAL_ONLY};
    for (size_t i = 0; i < 2; i++) {
        char *pem = make_pem(serial, 1, kinds[i]);
        char *id = (char *)"untouched";
        struct cp_err err = {0};
        assert_int_equal(cert_id_of(pem, &id, &err), CP_EINVAL);
        assert_null(id);
        assert_non_null(strstr(err.msg, "Authority Key Identifier"));
        free(pem);
    }
}

/* --------------------------------------------------------- renewalInfo */

/* Parse a C string from an exactly sized copy, so ASan sees over-reads. */
static enum cp_code parse(const char *s, struct acme_renewal_info *ri, struct cp_err *err)
{
    size_t len = strlen(s);
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, s, len);
    enum cp_code rc = acme_renewal_info_parse(copy, len, ri, err);
    free(copy);
    return rc;
}

static void parse_rfc_example(void **state)
{
    (void)state;
    struct acme_renewal_info ri;
    struct cp_err err = {0};
    const char *body = "{\n"
                       "  \"suggestedWindow\": {\n"
                       "    \"start\": \"2025-01-02T04:00:00Z\",\n"
                       "    \"end\": \"2025-01-03T04:00:00Z\"\n"
                       "  },\n"
                       "  \"explanationURL\": \"https://acme.example.com/docs/ari\"\n"
                       "}";
    assert_int_equal(parse(body, &ri, &err), CP_OK);
    assert_int_equal(ri.start, 1735790400LL);
    assert_int_equal(ri.end, 1735876800LL);
    assert_string_equal(ri.explanation_url, "https://acme.example.com/docs/ari");
    assert_int_equal(ri.retry_after, 0);
    acme_renewal_info_clear(&ri);
    assert_null(ri.explanation_url);
    acme_renewal_info_clear(NULL);
}

static void parse_variants(void **state)
{
    (void)state;
    struct acme_renewal_info ri;
    struct cp_err err = {0};
    /* Offsets, fractions, lower-case t/z, no explanationURL, unknown members. */
    assert_int_equal(parse("{\"suggestedWindow\":{\"start\":\"2025-01-02T05:00:00+01:00\","
                           "\"end\":\"2025-01-02t04:00:01.999z\",\"x\":1},\"future\":[1,2]}",
                           &ri, &err),
                     CP_OK);
    assert_int_equal(ri.start, 1735790400LL);
    assert_int_equal(ri.end, 1735790401LL);
    assert_null(ri.explanation_url);
    acme_renewal_info_clear(&ri);
}

/* explanationURL is for the operator only: anything odd is dropped and the
 * window kept. */
static void explanation_url_dropped(void **state)
{
    (void)state;
    char long_url[1200];
    memcpy(long_url, "\"https://", 9);
    memset(long_url + 9, 'a', 1100);
    memcpy(long_url + 1109, "\"", 2);
    const char *values[] = {
        "\"javascript:alert(1)\"",
        "\"ftp://example.com/\"",
        "\"/relative\"",
        "42",
        "null",
        "{\"url\":\"https://x\"}",
        "\"https://ex ample.com/\"",
        "\"https://example.com/\\u001b[2J\"",
        "\"https://example.com/\\u00e9\"",
        "\"\"",
        long_url,
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char body[1400];
        int n = snprintf(body, sizeof body,
                         "{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\","
                         "\"end\":\"2025-01-03T04:00:00Z\"},\"explanationURL\":%s}",
                         values[i]);
        assert_true(n > 0 && (size_t)n < sizeof body);
        struct acme_renewal_info ri;
        struct cp_err err = {0};
        assert_int_equal(parse(body, &ri, &err), CP_OK);
        assert_null(ri.explanation_url);
        assert_int_equal(ri.start, 1735790400LL);
        acme_renewal_info_clear(&ri);
    }
    /* http is allowed, and the scheme is case-insensitive. */
    struct acme_renewal_info ri;
    struct cp_err err = {0};
    assert_int_equal(parse("{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\",\"end\":"
                           "\"2025-01-03T04:00:00Z\"},\"explanationURL\":\"HTTP://ca.test/x?a=1\"}",
                           &ri, &err),
                     CP_OK);
    assert_string_equal(ri.explanation_url, "HTTP://ca.test/x?a=1");
    acme_renewal_info_clear(&ri);
}

static void parse_refused(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *msg; /* part of the message */
    } cases[] = {
        {"", "empty"},
        {"not json", "not a JSON object"},
        {"[]", "not a JSON object"},
        {"{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\"", "not a JSON object"},
        {"{}", "no suggestedWindow"},
        {"{\"suggestedWindow\":null}", "not an object"},
        {"{\"suggestedWindow\":[\"2025-01-02T04:00:00Z\",\"2025-01-03T04:00:00Z\"]}",
         "not an object"},
        {"{\"suggestedWindow\":{\"end\":\"2025-01-03T04:00:00Z\"}}", "no \"start\""},
        {"{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\"}}", "no \"end\""},
        {"{\"suggestedWindow\":{\"start\":1735790400,\"end\":\"2025-01-03T04:00:00Z\"}}",
         "start is not a string"},
        {"{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\",\"end\":null}}",
         "end is not a string"},
        {"{\"suggestedWindow\":{\"start\":\"2025-01-02\",\"end\":\"2025-01-03T04:00:00Z\"}}",
         "start is not an RFC 3339"},
        {"{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\",\"end\":\"tomorrow\"}}",
         "end is not an RFC 3339"},
        {"{\"suggestedWindow\":{\"start\":\"2025-02-30T04:00:00Z\",\"end\":\"2025-03-03T04:00:"
         "00Z\"}}",
         "start is not an RFC 3339"},
        {"{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00\",\"end\":\"2025-01-03T04:00:00Z\"}"
         "}",
         "start is not an RFC 3339"},
        {"{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z "
         "\",\"end\":\"2025-01-03T04:00:00Z\"}}",
         "start is not an RFC 3339"},
        /* NUL inside a string: jansson refuses the document. */
        {"{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\\u0000\",\"end\":"
         "\"2025-01-03T04:00:00Z\"}}",
         "not a JSON object"},
        /* A fraction long enough to pass the timestamp bound. */
        {"{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00."
         "00000000000000000000000000000000000000000000000000Z\",\"end\":\"2025-01-03T04:00:00Z\"}}",
         "start is not an RFC 3339"},
        {"{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\",\"end\":\"2025-01-02T04:00:"
         "00Z\"}}",
         "ends before it starts"},
        {"{\"suggestedWindow\":{\"start\":\"2025-01-03T04:00:00Z\",\"end\":\"2025-01-02T04:00:"
         "00Z\"}}",
         "ends before it starts"},
        /* Equal instants in different offsets are still an empty window. */
        {"{\"suggestedWindow\":{\"start\":\"2025-01-02T05:00:00+01:00\",\"end\":"
         "\"2025-01-02T04:00:00Z\"}}",
         "ends before it starts"},
        /* Duplicate members could mean either window: refused. */
        {"{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\",\"end\":\"2025-01-03T04:00:"
         "00Z\","
         "\"end\":\"2030-01-03T04:00:00Z\"}}",
         "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct acme_renewal_info ri;
        struct cp_err err = {0};
        assert_int_equal(parse(cases[i].body, &ri, &err), CP_EPROTO);
        if (strstr(err.msg, cases[i].msg) == NULL)
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.msg, cases[i].msg);
        assert_int_equal(ri.start, 0);
        assert_int_equal(ri.end, 0);
        assert_null(ri.explanation_url);
    }
}

static void parse_oversize(void **state)
{
    (void)state;
    /* A valid object padded with white space past the bound. */
    const char *obj = "{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\","
                      "\"end\":\"2025-01-03T04:00:00Z\"}}";
    size_t len = 20000;
    char *body = malloc(len + 1);
    assert_non_null(body);
    memset(body, ' ', len);
    memcpy(body, obj, strlen(obj));
    body[len] = '\0';
    struct acme_renewal_info ri;
    struct cp_err err = {0};
    assert_int_equal(parse(body, &ri, &err), CP_EPROTO);
    assert_non_null(strstr(err.msg, "more than"));
    body[16384] = '\0'; /* at the bound it is fine */
    assert_int_equal(parse(body, &ri, &err), CP_OK);
    acme_renewal_info_clear(&ri);
    free(body);
    /* NULL body */
    assert_int_equal(acme_renewal_info_parse(NULL, 0, &ri, &err), CP_EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc9773_example), cmocka_unit_test(serial_encodings),
        cmocka_unit_test(no_aki_keyid),    cmocka_unit_test(parse_rfc_example),
        cmocka_unit_test(parse_variants),  cmocka_unit_test(explanation_url_dropped),
        cmocka_unit_test(parse_refused),   cmocka_unit_test(parse_oversize),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
