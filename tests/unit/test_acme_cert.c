/* tests/unit/test_acme_cert.c - acme/csr.c and acme/cert.c: the CSR, and the
 * certificate chain served back, against a small CA built here with OpenSSL
 * (root -> intermediate -> leaf issued for a CSR from acme_csr_make). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme/acme.h"

#define DAY 86400L

static struct acme_key *root_key, *int_key, *leaf_key, *other_key, *rsa_key;
static X509 *root_cert, *int_cert;

/* ------------------------------------------------------------- the test CA */

static X509_NAME *cn_name(const char *cn)
{
    X509_NAME *n = X509_NAME_new();
    assert_non_null(n);
    assert_int_equal(X509_NAME_add_entry_by_txt(
                         n, "O", MBSTRING_ASC, (const unsigned char *)"certpilot tests", -1, -1, 0),
                     1);
    if (cn != NULL)
        assert_int_equal(X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_ASC,
                                                    (const unsigned char *)cn, -1, -1, 0),
                         1);
    return n;
}

/* A v3 certificate for `pub` named `subject`, issued by `issuer` (NULL:
 * self-issued) and signed by `signer`, valid from now for `days` days. */
static X509 *make_cert(const X509_NAME *subject, const X509 *issuer, EVP_PKEY *pub,
                       EVP_PKEY *signer, long days, bool ca, const X509_EXTENSION *san)
{
    static long serial = 1;
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
    assert_int_equal(X509_set_subject_name(x, subject), 1);
    assert_int_equal(
        X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : subject), 1);
    assert_int_equal(X509_set_pubkey(x, pub), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), days * DAY));
    if (ca) {
        X509_EXTENSION *bc =
            X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
        assert_non_null(bc);
        assert_int_equal(X509_add_ext(x, bc, -1), 1);
        X509_EXTENSION_free(bc);
    }
    if (san != NULL)
        assert_int_equal(X509_add_ext(x, (X509_EXTENSION *)san, -1), 1);
    assert_true(X509_sign(x, signer, EVP_sha256()) > 0);
    return x;
}

static struct acme_key *gen(enum acme_key_type t)
{
    struct acme_key *k = NULL;
    struct cp_err err = {0};
    if (acme_key_generate(t, &k, &err) != CP_OK) {
        fprintf(stderr, "generate: %s\n", err.msg);
        return NULL;
    }
    return k;
}

static int group_setup(void **state)
{
    (void)state;
    root_key = gen(ACME_KEY_EC384);
    int_key = gen(ACME_KEY_EC256);
    leaf_key = gen(ACME_KEY_EC256);
    other_key = gen(ACME_KEY_EC256);
    rsa_key = gen(ACME_KEY_RSA2048);
    if (!root_key || !int_key || !leaf_key || !other_key || !rsa_key)
        return -1;
    X509_NAME *rn = cn_name("Test Root X1");
    X509_NAME *in = cn_name("Test Intermediate R3");
    root_cert =
        make_cert(rn, NULL, acme_key_evp(root_key), acme_key_evp(root_key), 3650, true, NULL);
    int_cert =
        make_cert(in, root_cert, acme_key_evp(int_key), acme_key_evp(root_key), 1825, true, NULL);
    X509_NAME_free(rn);
    X509_NAME_free(in);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    X509_free(root_cert);
    X509_free(int_cert);
    acme_key_free(root_key);
    acme_key_free(int_key);
    acme_key_free(leaf_key);
    acme_key_free(other_key);
    acme_key_free(rsa_key);
    return 0;
}

/* ------------------------------------------------------------------ helpers */

static X509_REQ *make_req(const struct acme_key *k, const char *const *names, size_t n)
{
    unsigned char *der = NULL;
    size_t len = 0;
    struct cp_err err = {0};
    assert_int_equal(acme_csr_make(k, names, n, &der, &len, &err), CP_OK);
    assert_non_null(der);
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);
    assert_non_null(req);
    assert_ptr_equal(p, der + len);
    free(der);
    return req;
}

/* The CSR's subjectAltName extension (new), or NULL. */
static X509_EXTENSION *req_san(const X509_REQ *req)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions((X509_REQ *)req);
    X509_EXTENSION *copy = NULL;
    int i = X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1);
    if (i >= 0)
        copy = X509_EXTENSION_dup(X509v3_get_ext(exts, i));
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return copy;
}

/* The CN of a name, "" when none. */
static void name_cn(const X509_NAME *n, char *buf, size_t size)
{
    buf[0] = '\0';
    if (X509_NAME_get_index_by_NID(n, NID_commonName, -1) >= 0)
        assert_true(X509_NAME_get_text_by_NID(n, NID_commonName, buf, (int)size) > 0);
}

/* A leaf issued by the intermediate for a CSR of `names` by `k`, the CSR's
 * subject and subjectAltName copied as a CA would. */
static X509 *make_leaf(const struct acme_key *k, const char *const *names, size_t n, long days)
{
    X509_REQ *req = make_req(k, names, n);
    X509_EXTENSION *san = req_san(req);
    assert_non_null(san);
    X509 *leaf = make_cert(X509_REQ_get_subject_name(req), int_cert, X509_REQ_get0_pubkey(req),
                           acme_key_evp(int_key), days, false, san);
    X509_EXTENSION_free(san);
    X509_REQ_free(req);
    return leaf;
}

/* PEM of certs[0..n) as a heap string. */
static char *pem_of(X509 *const *certs, size_t n)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(PEM_write_bio_X509(bio, certs[i]), 1);
    char *mem = NULL;
    long len = BIO_get_mem_data(bio, &mem);
    char *s = malloc((size_t)len + 1);
    assert_non_null(s);
    memcpy(s, mem, (size_t)len);
    s[len] = '\0';
    BIO_free(bio);
    return s;
}

static char *concat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    assert_non_null(s);
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    return s;
}

static bool same_der(X509 *a, X509 *b)
{
    unsigned char *da = NULL, *db = NULL;
    int la = i2d_X509(a, &da), lb = i2d_X509(b, &db);
    bool same = la > 0 && la == lb && memcmp(da, db, (size_t)la) == 0;
    OPENSSL_free(da);
    OPENSSL_free(db);
    return same;
}

static const char *const names3[] = {"example.com", "www.example.com", "*.example.com"};

/* The usual chain: leaf for names3 by leaf_key (90 days) + intermediate. */
static struct acme_chain *usual_chain(void)
{
    X509 *certs[2] = {make_leaf(leaf_key, names3, 3, 90), int_cert};
    char *pem = pem_of(certs, 2);
    struct acme_chain *c = NULL;
    struct cp_err err = {0};
    assert_int_equal(acme_chain_parse(pem, strlen(pem), "test chain", &c, &err), CP_OK);
    X509_free(certs[0]);
    free(pem);
    return c;
}

/* Parsing `text` fails with CP_EPROTO and a message naming the input. */
static void expect_refused(const char *text, size_t len, const char *needle)
{
    struct acme_chain *c = (struct acme_chain *)1;
    struct cp_err err = {0};
    assert_int_equal(acme_chain_parse(text, len, "https://ca.test/cert/42", &c, &err), CP_EPROTO);
    assert_null(c);
    assert_int_equal(err.code, CP_EPROTO);
    assert_non_null(strstr(err.msg, "https://ca.test/cert/42"));
    if (needle != NULL && strstr(err.msg, needle) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, needle);
    assert_int_equal(ERR_peek_error(), 0);
}

/* ---------------------------------------------------------------------- CSR */

static void check_req(const struct acme_key *k, const char *const *names, size_t n,
                      const char *want_cn)
{
    X509_REQ *req = make_req(k, names, n);
    assert_int_equal(X509_REQ_get_version(req), 0);
    assert_int_equal(X509_REQ_verify(req, acme_key_evp(k)), 1);
    assert_int_not_equal(X509_REQ_verify(req, acme_key_evp(other_key)), 1);
    ERR_clear_error();
    assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), acme_key_evp(k)), 1);
    /* The SubjectPublicKeyInfo is byte for byte OpenSSL's own encoding. */
    unsigned char *want = NULL, *got = NULL;
    int want_len = i2d_PUBKEY(acme_key_evp(k), &want);
    int got_len = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(req), &got);
    assert_true(want_len > 0);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, (size_t)want_len);
    OPENSSL_free(want);
    OPENSSL_free(got);

    const X509_ALGOR *alg = NULL;
    X509_REQ_get0_signature(req, NULL, &alg);
    int sig_nid = OBJ_obj2nid(alg->algorithm);
    assert_true(sig_nid == NID_ecdsa_with_SHA256 || sig_nid == NID_sha256WithRSAEncryption);

    char cn[256];
    name_cn(X509_REQ_get_subject_name(req), cn, sizeof cn);
    assert_string_equal(cn, want_cn);
    if (want_cn[0] == '\0')
        assert_int_equal(X509_NAME_entry_count(X509_REQ_get_subject_name(req)), 0);

    X509_EXTENSION *ext = req_san(req);
    assert_non_null(ext);
    GENERAL_NAMES *gens = X509V3_EXT_d2i(ext);
    assert_non_null(gens);
    assert_int_equal(sk_GENERAL_NAME_num(gens), (int)n);
    for (size_t i = 0; i < n; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, (int)i);
        assert_int_equal(g->type, GEN_DNS);
        assert_int_equal(ASN1_STRING_length(g->d.dNSName), (int)strlen(names[i]));
        assert_memory_equal(ASN1_STRING_get0_data(g->d.dNSName), names[i], strlen(names[i]));
    }
    GENERAL_NAMES_free(gens);
    X509_EXTENSION_free(ext);
    X509_REQ_free(req);
}

static void test_csr_ec(void **state)
{
    (void)state;
    check_req(leaf_key, names3, 3, "example.com");
}

static void test_csr_ec384(void **state)
{
    (void)state;
    check_req(root_key, names3, 3, "example.com");
}

static void test_csr_rsa(void **state)
{
    (void)state;
    check_req(rsa_key, names3, 3, "example.com");
}

static void test_csr_cn_rule(void **state)
{
    (void)state;
    /* 58 + 12 = 70 octets: too long for a CN; 52 + 12 = 64: just fits. */
    char long70[71], fits64[65], long65[66];
    memset(long70, 'a', 58);
    memcpy(long70 + 58, ".example.com", 13);
    memset(fits64, 'b', 52);
    memcpy(fits64 + 52, ".example.com", 13);
    memset(long65, 'c', 53);
    memcpy(long65 + 53, ".example.com", 13);
    assert_int_equal(strlen(long70), 70);
    assert_int_equal(strlen(fits64), 64);
    assert_int_equal(strlen(long65), 65);

    const char *const a[] = {long70, fits64, "short.example.com"};
    check_req(leaf_key, a, 3, fits64);
    const char *const b[] = {long70, long65};
    check_req(leaf_key, b, 2, "");
    const char *const c[] = {"*.example.com"};
    check_req(leaf_key, c, 1, "*.example.com");
}

static void expect_csr_refused(const char *const *names, size_t n, const char *needle)
{
    unsigned char *der = (unsigned char *)1;
    size_t len = 7;
    struct cp_err err = {0};
    assert_int_equal(acme_csr_make(leaf_key, names, n, &der, &len, &err), CP_EINVAL);
    assert_null(der);
    assert_int_equal(len, 0);
    if (needle != NULL && strstr(err.msg, needle) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, needle);
}

static void test_csr_refused(void **state)
{
    (void)state;
    const char *const dup[] = {"example.com", "www.example.com", "WWW.Example.COM"};
    expect_csr_refused(dup, 3, "WWW.Example.COM");
    const char *const empty[] = {"example.com", ""};
    expect_csr_refused(empty, 2, "empty");
    const char *const null[] = {"example.com", NULL};
    expect_csr_refused(null, 2, "empty");
    expect_csr_refused(names3, 0, NULL);
    expect_csr_refused(NULL, 0, NULL);
    const char *const space[] = {"exa mple.com"};
    expect_csr_refused(space, 1, NULL);
    const char *const utf8[] = {"b\xc3\xbc"
                                "cher.example"};
    expect_csr_refused(utf8, 1, NULL);
    char toolong[300];
    memset(toolong, 'a', sizeof toolong - 1);
    toolong[sizeof toolong - 1] = '\0';
    const char *const tl[] = {toolong};
    expect_csr_refused(tl, 1, NULL);
}

static void test_csr_hundred_names(void **state)
{
    (void)state;
    static char bufs[101][32];
    const char *names[101];
    for (size_t i = 0; i < 101; i++) {
        int w = snprintf(bufs[i], sizeof bufs[i], "n%zu.example.com", i);
        assert_true(w > 0 && (size_t)w < sizeof bufs[i]);
        names[i] = bufs[i];
    }
    check_req(leaf_key, names, 100, "n0.example.com");
    expect_csr_refused(names, 101, "101");
}

/* -------------------------------------------------------------------- chain */

static void test_chain_round_trip(void **state)
{
    (void)state;
    X509 *leaf = make_leaf(leaf_key, names3, 3, 90);
    X509 *certs[2] = {leaf, int_cert};
    char *pem = pem_of(certs, 2);
    struct acme_chain *c = NULL;
    struct cp_err err = {0};
    assert_int_equal(acme_chain_parse(pem, strlen(pem), "test chain", &c, &err), CP_OK);
    assert_int_equal(acme_chain_count(c), 2);
    assert_true(same_der(acme_chain_x509(c, 0), leaf));
    assert_true(same_der(acme_chain_x509(c, 1), int_cert));
    assert_null(acme_chain_x509(c, 2));
    /* The leaf really chains to the intermediate (sanity of the test CA). */
    assert_int_equal(X509_verify(acme_chain_x509(c, 0), acme_key_evp(int_key)), 1);

    char *cert = NULL, *chain = NULL, *full = NULL;
    assert_int_equal(acme_chain_pem(c, &cert, &chain, &full, &err), CP_OK);
    char *want_cert = pem_of(certs, 1), *want_chain = pem_of(certs + 1, 1);
    assert_string_equal(cert, want_cert);
    assert_string_equal(chain, want_chain);
    char *joined = concat(cert, chain);
    assert_string_equal(full, joined);
    assert_string_equal(full, pem);

    struct acme_chain *again = NULL;
    assert_int_equal(acme_chain_parse(full, strlen(full), "fullchain", &again, &err), CP_OK);
    assert_int_equal(acme_chain_count(again), 2);
    for (size_t i = 0; i < 2; i++)
        assert_true(same_der(acme_chain_x509(again, i), acme_chain_x509(c, i)));
    acme_chain_free(again);

    /* Only the outputs asked for. */
    char *only = NULL;
    assert_int_equal(acme_chain_pem(c, NULL, &only, NULL, &err), CP_OK);
    assert_string_equal(only, want_chain);

    free(only);
    free(joined);
    free(want_cert);
    free(want_chain);
    free(cert);
    free(chain);
    free(full);
    acme_chain_free(c);
    free(pem);
    X509_free(leaf);
}

static void test_chain_single(void **state)
{
    (void)state;
    X509 *leaf = make_leaf(leaf_key, names3, 3, 90);
    char *pem = pem_of(&leaf, 1);
    struct acme_chain *c = NULL;
    struct cp_err err = {0};
    assert_int_equal(acme_chain_parse(pem, strlen(pem), "leaf", &c, &err), CP_OK);
    assert_int_equal(acme_chain_count(c), 1);
    char *cert = NULL, *chain = NULL, *full = NULL;
    assert_int_equal(acme_chain_pem(c, &cert, &chain, &full, &err), CP_OK);
    assert_string_equal(cert, pem);
    assert_string_equal(chain, "");
    assert_string_equal(full, pem);
    /* One certificate: its issuer is the intermediate. */
    assert_string_equal(acme_chain_top_issuer_cn(c), "Test Intermediate R3");
    free(cert);
    free(chain);
    free(full);
    acme_chain_free(c);
    free(pem);
    X509_free(leaf);
}

static void test_chain_crlf_and_length(void **state)
{
    (void)state;
    X509 *leaf = make_leaf(leaf_key, names3, 3, 90);
    X509 *certs[2] = {leaf, int_cert};
    char *pem = pem_of(certs, 2);
    size_t len = strlen(pem);
    struct acme_chain *c = NULL;
    struct cp_err err = {0};

    /* CRLF line ends, as some servers send, are fine. */
    char *crlf = malloc(2 * len + 1);
    assert_non_null(crlf);
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        if (pem[i] == '\n')
            crlf[j++] = '\r';
        crlf[j++] = pem[i];
    }
    crlf[j] = '\0';
    assert_int_equal(acme_chain_parse(crlf, j, "crlf", &c, &err), CP_OK);
    assert_int_equal(acme_chain_count(c), 2);
    acme_chain_free(c);

    /* Only `len` bytes are read: no NUL needed, and what lies beyond is ignored. */
    char *leaf_pem = pem_of(certs, 1);
    size_t leaf_len = strlen(leaf_pem);
    char *exact = malloc(leaf_len);
    assert_non_null(exact);
    memcpy(exact, leaf_pem, leaf_len);
    assert_int_equal(acme_chain_parse(exact, leaf_len, "exact", &c, &err), CP_OK);
    assert_int_equal(acme_chain_count(c), 1);
    acme_chain_free(c);
    assert_int_equal(acme_chain_parse(pem, leaf_len, "prefix", &c, &err), CP_OK);
    assert_int_equal(acme_chain_count(c), 1);
    acme_chain_free(c);

    free(exact);
    free(leaf_pem);
    free(crlf);
    free(pem);
    X509_free(leaf);
}

static void test_chain_check_key(void **state)
{
    (void)state;
    struct acme_chain *c = usual_chain();
    struct cp_err err = {0};
    assert_int_equal(acme_chain_check_key(c, leaf_key, &err), CP_OK);
    assert_int_equal(acme_chain_check_key(c, other_key, &err), CP_EPROTO);
    assert_int_equal(acme_chain_check_key(c, rsa_key, &err), CP_EPROTO);
    assert_int_equal(acme_chain_check_key(c, int_key, &err), CP_EPROTO);
    assert_int_equal(ERR_peek_error(), 0);
    acme_chain_free(c);

    /* RSA too. */
    X509 *leaf = make_leaf(rsa_key, names3, 3, 90);
    char *pem = pem_of(&leaf, 1);
    assert_int_equal(acme_chain_parse(pem, strlen(pem), "rsa", &c, &err), CP_OK);
    assert_int_equal(acme_chain_check_key(c, rsa_key, &err), CP_OK);
    assert_int_equal(acme_chain_check_key(c, leaf_key, &err), CP_EPROTO);
    acme_chain_free(c);
    free(pem);
    X509_free(leaf);
}

static void test_chain_check_names(void **state)
{
    (void)state;
    struct acme_chain *c = usual_chain();
    struct cp_err err = {0};
    assert_int_equal(acme_chain_check_names(c, names3, 3, &err), CP_OK);
    const char *const upper[] = {"WWW.Example.COM", "EXAMPLE.com"};
    assert_int_equal(acme_chain_check_names(c, upper, 2, &err), CP_OK);
    const char *const missing[] = {"example.com", "missing.example.com", "other.example.net"};
    assert_int_equal(acme_chain_check_names(c, missing, 3, &err), CP_EPROTO);
    assert_non_null(strstr(err.msg, "missing.example.com"));
    assert_null(strstr(err.msg, "other.example.net"));
    /* Exact: no prefix or suffix matches. */
    const char *const partial[] = {"example.co"};
    assert_int_equal(acme_chain_check_names(c, partial, 1, &err), CP_EPROTO);
    const char *const longer[] = {"example.com."};
    assert_int_equal(acme_chain_check_names(c, longer, 1, &err), CP_EPROTO);
    acme_chain_free(c);
}

static void test_chain_wildcard_exact(void **state)
{
    (void)state;
    struct cp_err err = {0};
    /* The SAN "*.example.com" does not cover foo.example.com for this check. */
    struct acme_chain *c = usual_chain();
    const char *const foo[] = {"foo.example.com"};
    assert_int_equal(acme_chain_check_names(c, foo, 1, &err), CP_EPROTO);
    assert_non_null(strstr(err.msg, "foo.example.com"));
    const char *const star[] = {"*.EXAMPLE.com"};
    assert_int_equal(acme_chain_check_names(c, star, 1, &err), CP_OK);
    acme_chain_free(c);

    /* And a leaf for foo.example.com does not answer for "*.example.com". */
    X509 *leaf = make_leaf(leaf_key, foo, 1, 90);
    char *pem = pem_of(&leaf, 1);
    assert_int_equal(acme_chain_parse(pem, strlen(pem), "foo", &c, &err), CP_OK);
    const char *const wild[] = {"*.example.com"};
    assert_int_equal(acme_chain_check_names(c, wild, 1, &err), CP_EPROTO);
    assert_non_null(strstr(err.msg, "*.example.com"));
    acme_chain_free(c);
    free(pem);
    X509_free(leaf);
}

static void test_chain_no_san(void **state)
{
    (void)state;
    /* The root has no subjectAltName: nothing is covered. */
    char *pem = pem_of(&root_cert, 1);
    struct acme_chain *c = NULL;
    struct cp_err err = {0};
    assert_int_equal(acme_chain_parse(pem, strlen(pem), "root", &c, &err), CP_OK);
    const char *const n[] = {"example.com"};
    assert_int_equal(acme_chain_check_names(c, n, 1, &err), CP_EPROTO);
    assert_non_null(strstr(err.msg, "example.com"));
    /* Self-signed: its issuer is itself. */
    assert_string_equal(acme_chain_top_issuer_cn(c), "Test Root X1");
    acme_chain_free(c);
    free(pem);
}

static void test_chain_validity(void **state)
{
    (void)state;
    time_t t0 = time(NULL);
    struct acme_chain *c = usual_chain();
    time_t t1 = time(NULL);
    assert_true(acme_chain_not_before(c) >= t0 && acme_chain_not_before(c) <= t1);
    assert_true(acme_chain_not_after(c) >= t0 + 90 * DAY &&
                acme_chain_not_after(c) <= t1 + 90 * DAY);
    acme_chain_free(c);
}

static void test_chain_validity_fixed(void **state)
{
    (void)state;
    /* Known instants, both ASN.1 time forms, and one before the epoch. */
    static const struct {
        const char *text;
        long long unix_time;
    } cases[] = {
        {"19691231235959Z", -1LL},           {"20000229120000Z", 951825600LL},
        {"20491231235959Z", 2524607999LL},   {"20500101000000Z", 2524608000LL},
        {"99991231235959Z", 253402300799LL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        X509_NAME *n = cn_name("fixed.example");
        X509 *x =
            make_cert(n, int_cert, acme_key_evp(leaf_key), acme_key_evp(int_key), 1, false, NULL);
        assert_int_equal(ASN1_TIME_set_string_X509(X509_getm_notBefore(x), cases[0].text), 1);
        assert_int_equal(ASN1_TIME_set_string_X509(X509_getm_notAfter(x), cases[i].text), 1);
        assert_true(X509_sign(x, acme_key_evp(int_key), EVP_sha256()) > 0);
        char *pem = pem_of(&x, 1);
        struct acme_chain *c = NULL;
        struct cp_err err = {0};
        assert_int_equal(acme_chain_parse(pem, strlen(pem), "fixed", &c, &err), CP_OK);
        assert_int_equal((long long)acme_chain_not_before(c), -1LL);
        assert_int_equal((long long)acme_chain_not_after(c), cases[i].unix_time);
        acme_chain_free(c);
        free(pem);
        X509_free(x);
        X509_NAME_free(n);
    }
}

static void test_chain_top_issuer(void **state)
{
    (void)state;
    struct acme_chain *c = usual_chain();
    assert_string_equal(acme_chain_top_issuer_cn(c), "Test Root X1");
    acme_chain_free(c);

    /* An issuer without a CN gives "". */
    X509_NAME *anon = cn_name(NULL);
    X509 *x =
        make_cert(anon, NULL, acme_key_evp(other_key), acme_key_evp(other_key), 1, true, NULL);
    char *pem = pem_of(&x, 1);
    struct cp_err err = {0};
    assert_int_equal(acme_chain_parse(pem, strlen(pem), "anon", &c, &err), CP_OK);
    assert_string_equal(acme_chain_top_issuer_cn(c), "");
    acme_chain_free(c);
    free(pem);
    X509_free(x);
    X509_NAME_free(anon);
}

static void test_chain_refused(void **state)
{
    (void)state;
    X509 *leaf = make_leaf(leaf_key, names3, 3, 90);
    X509 *certs[2] = {leaf, int_cert};
    char *full = pem_of(certs, 2);
    char *leaf_pem = pem_of(certs, 1);
    char *int_pem = pem_of(certs + 1, 1);

    expect_refused("", 0, "no certificate");
    expect_refused(full, 0, "no certificate");
    expect_refused(" \r\n\n\t", 5, "no certificate");

    char *garbage = concat(full, "garbage\n");
    expect_refused(garbage, strlen(garbage), "trailing");
    free(garbage);
    char *before = concat("hello\n", full);
    expect_refused(before, strlen(before), NULL);
    free(before);

    /* A private key among the certificates is refused, not skipped. */
    char *key_pem = NULL;
    size_t key_len = 0;
    struct cp_err err = {0};
    assert_int_equal(acme_key_to_pem(other_key, &key_pem, &key_len, &err), CP_OK);
    char *a = concat(leaf_pem, key_pem), *b = concat(a, int_pem);
    expect_refused(b, strlen(b), "PRIVATE KEY");
    expect_refused(a, strlen(a), "PRIVATE KEY");
    free(a);
    free(b);
    OPENSSL_cleanse(key_pem, key_len);
    free(key_pem);

    /* An indented BEGIN line, which PEM_read_bio would skip with what follows. */
    char *indented = concat("  ", full);
    expect_refused(indented, strlen(indented), NULL);
    free(indented);

    /* A malformed BEGIN line is not skipped over either. */
    char *bad_begin = concat("-----BEGIN CERTIFICATE-----junk\n", full);
    expect_refused(bad_begin, strlen(bad_begin), "BEGIN");
    free(bad_begin);

    /* Broken base64, a cut-off block, and DER with bytes after the certificate. */
    char *broken = strdup(leaf_pem);
    assert_non_null(broken);
    broken[40] = '!';
    expect_refused(broken, strlen(broken), NULL);
    free(broken);
    expect_refused(leaf_pem, strlen(leaf_pem) - 30, NULL);
    unsigned char *der = NULL;
    int der_len = i2d_X509(leaf, &der);
    assert_true(der_len > 0);
    unsigned char *padded = malloc((size_t)der_len + 1);
    assert_non_null(padded);
    memcpy(padded, der, (size_t)der_len);
    padded[der_len] = 0;
    BIO *bio = BIO_new(BIO_s_mem());
    assert_true(PEM_write_bio(bio, PEM_STRING_X509, "", padded, der_len + 1) > 0);
    char *mem = NULL;
    long mem_len = BIO_get_mem_data(bio, &mem);
    expect_refused(mem, (size_t)mem_len, "DER");
    BIO_free(bio);
    free(padded);
    OPENSSL_free(der);

    free(full);
    free(leaf_pem);
    free(int_pem);
    X509_free(leaf);
}

static void test_chain_max_certs(void **state)
{
    (void)state;
    X509 *certs[11];
    for (size_t i = 0; i < 11; i++)
        certs[i] = int_cert;
    char *ten = pem_of(certs, 10), *eleven = pem_of(certs, 11);
    struct acme_chain *c = NULL;
    struct cp_err err = {0};
    assert_int_equal(acme_chain_parse(ten, strlen(ten), "ten", &c, &err), CP_OK);
    assert_int_equal(acme_chain_count(c), 10);
    acme_chain_free(c);
    expect_refused(eleven, strlen(eleven), "more than 10");
    free(ten);
    free(eleven);
}

static void test_null_safe(void **state)
{
    (void)state;
    acme_chain_free(NULL);
    assert_int_equal(acme_chain_count(NULL), 0);
    assert_null(acme_chain_x509(NULL, 0));
    assert_string_equal(acme_chain_top_issuer_cn(NULL), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csr_ec),
        cmocka_unit_test(test_csr_ec384),
        cmocka_unit_test(test_csr_rsa),
        cmocka_unit_test(test_csr_cn_rule),
        cmocka_unit_test(test_csr_refused),
        cmocka_unit_test(test_csr_hundred_names),
        cmocka_unit_test(test_chain_round_trip),
        cmocka_unit_test(test_chain_single),
        cmocka_unit_test(test_chain_crlf_and_length),
        cmocka_unit_test(test_chain_check_key),
        cmocka_unit_test(test_chain_check_names),
        cmocka_unit_test(test_chain_wildcard_exact),
        cmocka_unit_test(test_chain_no_san),
        cmocka_unit_test(test_chain_validity),
        cmocka_unit_test(test_chain_validity_fixed),
        cmocka_unit_test(test_chain_top_issuer),
        cmocka_unit_test(test_chain_refused),
        cmocka_unit_test(test_chain_max_certs),
        cmocka_unit_test(test_null_safe),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
