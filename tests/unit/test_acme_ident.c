/* tests/unit/test_acme_ident.c - acme/ident.c (IP address identifiers, RFC
 * 8738; which challenge types fit which identifier), their iPAddress SANs in
 * acme/csr.c, acme/cert.c and the tls-alpn-01 certificate, and the
 * directory's profiles with the preferred/required choice (acme/client.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme/acme.h"
#include "tests/unit/fixture.h"

/* ------------------------------------------------------------ addresses */

static void test_ip_normalize(void **state)
{
    (void)state;
    char out[ACME_IP_MAX];
    assert_true(acme_ip_normalize("127.0.0.1", out));
    assert_string_equal(out, "127.0.0.1");
    assert_true(acme_ip_normalize("0:0:0:0:0:0:0:1", out));
    assert_string_equal(out, "::1");
    assert_true(acme_ip_normalize("2001:DB8:0:0:0:0:0:1", out));
    assert_string_equal(out, "2001:db8::1");
    assert_true(acme_ip_normalize("::ffff:192.0.2.1", out));
    assert_string_equal(out, "::ffff:192.0.2.1");
    assert_true(acme_ip_normalize("::1", NULL));
}

static void test_ip_normalize_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "example.com", "1.2.3",    "1.2.3.4.5", "256.1.1.1", "[::1]", "fe80::1%eth0",
        "01.2.3.4",    " 1.2.3.4", "",          "*.1.2.3.4", "::1::"};
    char out[ACME_IP_MAX];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(acme_ip_normalize(bad[i], out));
    assert_false(acme_ip_normalize(NULL, out));
    char longname[100];
    memset(longname, '1', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_false(acme_ip_normalize(longname, out));
}

static void test_reverse_name(void **state)
{
    (void)state;
    char out[ACME_REVERSE_MAX];
    struct cp_err err = {0};
    assert_int_equal(acme_ip_reverse_name("127.0.0.1", out, &err), CP_OK);
    assert_string_equal(out, "1.0.0.127.in-addr.arpa");
    assert_int_equal(acme_ip_reverse_name("192.0.2.10", out, &err), CP_OK);
    assert_string_equal(out, "10.2.0.192.in-addr.arpa");
    /* RFC 8738 §6's own example. */
    assert_int_equal(acme_ip_reverse_name("2001:db8::1", out, &err), CP_OK);
    assert_string_equal(out,
                        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
    assert_int_equal(acme_ip_reverse_name("::1", out, &err), CP_OK);
    assert_int_equal(strlen(out), ACME_REVERSE_MAX - 2);
    assert_int_equal(acme_ip_reverse_name("example.com", out, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "example.com is not an IP address"));
}

static void test_method_check(void **state)
{
    (void)state;
    struct cp_err err = {0};
    assert_int_equal(acme_ident_method_check("127.0.0.1", "http-01", &err), CP_OK);
    assert_int_equal(acme_ident_method_check("::1", "tls-alpn-01", &err), CP_OK);
    assert_int_equal(acme_ident_method_check("127.0.0.1", "dns-01", &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "dns-01 cannot validate the IP address 127.0.0.1"));
    assert_non_null(strstr(err.msg, "RFC 8738"));
    assert_int_equal(acme_ident_method_check("2001:db8::1", "dns-persist-01", &err), CP_EINVAL);
    assert_int_equal(acme_ident_method_check("*.example.com", "http-01", &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "wildcard name *.example.com"));
    assert_int_equal(acme_ident_method_check("*.example.com", "tls-alpn-01", &err), CP_EINVAL);
    assert_int_equal(acme_ident_method_check("*.example.com", "dns-01", &err), CP_OK);
    assert_int_equal(acme_ident_method_check("*.example.com", "dns-persist-01", &err), CP_OK);
    assert_int_equal(acme_ident_method_check("example.com", "dns-01", &err), CP_OK);
    assert_int_equal(acme_ident_method_check("example.com", "future-01", &err), CP_OK);
}

/* ------------------------------------------------------------ SANs */

/* The SANs of a CSR as "DNS:x" / "IP:x" strings joined by ",". */
static void csr_sans(const unsigned char *der, size_t len, char *out, size_t size, bool *has_cn)
{
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);
    assert_non_null(req);
    *has_cn = X509_NAME_entry_count(X509_REQ_get_subject_name(req)) > 0;
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    GENERAL_NAMES *gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
    assert_non_null(gens);
    out[0] = '\0';
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        char one[80];
        if (g->type == GEN_DNS) {
            snprintf(one, sizeof one, "DNS:%s", (const char *)ASN1_STRING_get0_data(g->d.dNSName));
        } else {
            unsigned char *ip = (unsigned char *)ASN1_STRING_get0_data(g->d.iPAddress);
            int n = ASN1_STRING_length(g->d.iPAddress);
            if (n == 4)
                snprintf(one, sizeof one, "IP:%u.%u.%u.%u", ip[0], ip[1], ip[2], ip[3]);
            else
                snprintf(one, sizeof one, "IP6:%d:%02x", n, ip[15]);
        }
        if (out[0] != '\0')
            strncat(out, ",", size - strlen(out) - 1);
        strncat(out, one, size - strlen(out) - 1);
    }
    GENERAL_NAMES_free(gens);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
}

static void test_csr_ip_sans(void **state)
{
    (void)state;
    struct acme_key *k = NULL;
    struct cp_err err = {0};
    assert_int_equal(acme_key_generate(ACME_KEY_EC256, &k, &err), CP_OK);
    const char *names[] = {"127.0.0.1", "www.example.com", "::1"};
    unsigned char *der = NULL;
    size_t len = 0;
    assert_int_equal(acme_csr_make(k, names, 3, &der, &len, &err), CP_OK);
    char sans[256];
    bool cn = false;
    csr_sans(der, len, sans, sizeof sans, &cn);
    assert_string_equal(sans, "IP:127.0.0.1,DNS:www.example.com,IP6:16:01");
    assert_true(cn); /* the DNS name, not the address */
    free(der);

    /* Addresses alone: no CN at all. */
    const char *only[] = {"127.0.0.1"};
    assert_int_equal(acme_csr_make(k, only, 1, &der, &len, &err), CP_OK);
    csr_sans(der, len, sans, sizeof sans, &cn);
    assert_string_equal(sans, "IP:127.0.0.1");
    assert_false(cn);
    free(der);

    /* One address spelt twice. */
    const char *twice[] = {"::1", "0:0::1"};
    assert_int_equal(acme_csr_make(k, twice, 2, &der, &len, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "the address ::1 is given twice"));
    acme_key_free(k);
}

static void test_tlsalpn01_cert_ip(void **state)
{
    (void)state;
    EVP_PKEY *pk = NULL;
    X509 *x = NULL;
    struct cp_err err = {0};
    assert_int_equal(acme_tlsalpn01_cert("127.0.0.1", "tok.thumb", &pk, &x, &err), CP_OK);
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(gens);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 1);
    GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, 0);
    assert_int_equal(g->type, GEN_IPADD);
    assert_int_equal(ASN1_STRING_length(g->d.iPAddress), 4);
    assert_memory_equal(ASN1_STRING_get0_data(g->d.iPAddress), "\x7f\x00\x00\x01", 4);
    GENERAL_NAMES_free(gens);
    /* RFC 8737 §3: the acmeIdentifier extension, critical. */
    ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
    int at = X509_get_ext_by_OBJ(x, oid, -1);
    ASN1_OBJECT_free(oid);
    assert_true(at >= 0);
    assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(x, at)), 1);
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(x)), 0);
    X509_free(x);
    EVP_PKEY_free(pk);
    assert_int_equal(acme_tlsalpn01_cert("2001:db8::1", "tok.thumb", &pk, &x, &err), CP_OK);
    gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_int_equal(ASN1_STRING_length(sk_GENERAL_NAME_value(gens, 0)->d.iPAddress), 16);
    GENERAL_NAMES_free(gens);
    X509_free(x);
    EVP_PKEY_free(pk);
}

/* A tls-alpn-01 handshake as a CA makes it: ALPN acme-tls/1 and `sni`.
 * Returns the peer's certificate (caller frees) or NULL when it failed. */
static X509 *handshake(int port, const char *sni)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_set_alpn_protos(ctx,
                                             (const unsigned char *)"\x0a"
                                                                    "acme-tls/1",
                                             11),
                     0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, sni);
    X509 *peer = SSL_connect(ssl) == 1 ? SSL_get1_peer_certificate(ssl) : NULL;
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return peer;
}

static void test_server_answers_reverse_sni(void **state)
{
    (void)state;
    struct acme_solver_server *s = NULL;
    struct cp_err err = {0};
    int port = fixture_free_port();
    assert_int_equal(acme_tlsalpn01_server_start("127.0.0.1", port, &s, &err), CP_OK);
    assert_int_equal(acme_solver_server_add(s, "127.0.0.1", "tok.thumb", &err), CP_OK);
    assert_int_equal(acme_solver_server_add(s, "2001:db8::1", "tok.thumb", &err), CP_OK);

    /* RFC 8738 §6: the SNI is the reverse name; the certificate names the address. */
    X509 *peer = handshake(port, "1.0.0.127.in-addr.arpa");
    assert_non_null(peer);
    GENERAL_NAMES *gens = X509_get_ext_d2i(peer, NID_subject_alt_name, NULL, NULL);
    assert_int_equal(sk_GENERAL_NAME_value(gens, 0)->type, GEN_IPADD);
    GENERAL_NAMES_free(gens);
    X509_free(peer);
    peer =
        handshake(port, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
    assert_non_null(peer);
    X509_free(peer);
    /* The address itself is no SNI a CA sends (RFC 6066 §3 forbids it). */
    assert_null(handshake(port, "127.0.0.1"));
    assert_null(handshake(port, "2.0.0.127.in-addr.arpa"));
    assert_int_equal(acme_solver_server_hits(s), 2);
    acme_solver_server_stop(s);
}

/* ------------------------------------------------------------ profiles */

static const char DIR_JSON[] =
    "{\"newNonce\":\"https://ca/n\",\"newAccount\":\"https://ca/a\",\"newOrder\":\"https://ca/o\","
    "\"meta\":{\"profiles\":{\"classic\":\"The same as ever\",\"tlsserver\":\"45 days\","
    "\"shortlived\":\"6 days\",\"bad name\":\"x\",\"odd\":17}}}";

static void test_directory_profiles(void **state)
{
    (void)state;
    struct acme_directory d;
    struct cp_err err = {0};
    assert_int_equal(acme_directory_parse(DIR_JSON, strlen(DIR_JSON), "https://ca/dir", &d, &err),
                     CP_OK);
    assert_int_equal(d.nprofiles, 4);
    assert_int_equal(d.profiles_dropped, 1);
    assert_string_equal(acme_directory_profile(&d, "classic"), "The same as ever");
    assert_string_equal(acme_directory_profile(&d, "shortlived"), "6 days");
    assert_string_equal(acme_directory_profile(&d, "odd"), "");
    assert_null(acme_directory_profile(&d, "Classic"));
    assert_null(acme_directory_profile(&d, "bad name"));
    assert_null(acme_directory_profile(&d, NULL));

    const char *use = "x";
    assert_int_equal(acme_profile_choose(&d, "tlsserver", ACME_PROFILE_REQUIRED, &use, &err),
                     CP_OK);
    assert_string_equal(use, "tlsserver");
    assert_int_equal(acme_profile_choose(&d, "tlsserver", ACME_PROFILE_PREFERRED, &use, &err),
                     CP_OK);
    assert_string_equal(use, "tlsserver");
    assert_int_equal(acme_profile_choose(&d, "other", ACME_PROFILE_PREFERRED, &use, &err), CP_OK);
    assert_null(use);
    assert_int_equal(acme_profile_choose(&d, NULL, ACME_PROFILE_REQUIRED, &use, &err), CP_OK);
    assert_null(use);
    assert_int_equal(acme_profile_choose(&d, "other", ACME_PROFILE_REQUIRED, &use, &err),
                     CP_EINVAL);
    assert_null(use);
    assert_string_equal(err.msg, "the profile \"other\" is required, but this CA offers only: "
                                 "classic, tlsserver, shortlived, odd");
    acme_directory_clear(&d);
    acme_directory_clear(&d); /* twice: zeroed */
    acme_directory_clear(NULL);
}

static void test_directory_without_profiles(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"newNonce\":\"n\",\"newAccount\":\"a\",\"newOrder\":\"o\"}",
        "{\"newNonce\":\"n\",\"newAccount\":\"a\",\"newOrder\":\"o\",\"meta\":{\"profiles\":[]}}",
        "{\"newNonce\":\"n\",\"newAccount\":\"a\",\"newOrder\":\"o\",\"meta\":{\"profiles\":\"x\"}"
        "}",
        "{\"newNonce\":\"n\",\"newAccount\":\"a\",\"newOrder\":\"o\",\"meta\":{\"profiles\":{}}}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        struct acme_directory d;
        struct cp_err err = {0};
        assert_int_equal(acme_directory_parse(bodies[i], strlen(bodies[i]), "u", &d, &err), CP_OK);
        assert_int_equal(d.nprofiles, 0);
        const char *use = NULL;
        assert_int_equal(acme_profile_choose(&d, "shortlived", ACME_PROFILE_REQUIRED, &use, &err),
                         CP_EINVAL);
        assert_string_equal(
            err.msg, "the profile \"shortlived\" is required, but this CA offers no profiles");
        acme_directory_clear(&d);
    }
}

static void test_directory_profiles_bounded(void **state)
{
    (void)state;
    char body[16384];
    size_t len = (size_t)snprintf(body, sizeof body, "%s",
                                  "{\"newNonce\":\"n\",\"newAccount\":\"a\",\"newOrder\":\"o\","
                                  "\"meta\":{\"profiles\":{");
    for (int i = 0; i < 40; i++)
        len += (size_t)snprintf(body + len, sizeof body - len, "%s\"p%d\":\"d\"", i ? "," : "", i);
    char longname[100], longdesc[3000];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    memset(longdesc, 'd', sizeof longdesc - 1);
    longdesc[sizeof longdesc - 1] = '\0';
    len += (size_t)snprintf(body + len, sizeof body - len, ",\"%s\":\"d\"}}}", longname);
    struct acme_directory d;
    struct cp_err err = {0};
    assert_int_equal(acme_directory_parse(body, len, "u", &d, &err), CP_OK);
    assert_int_equal(d.nprofiles, ACME_PROFILES_MAX);
    assert_int_equal(d.profiles_dropped, 41 - ACME_PROFILES_MAX);
    acme_directory_clear(&d);

    len = (size_t)snprintf(body, sizeof body,
                           "{\"newNonce\":\"n\",\"newAccount\":\"a\",\"newOrder\":\"o\","
                           "\"meta\":{\"profiles\":{\"big\":\"%s\"}}}",
                           longdesc);
    assert_int_equal(acme_directory_parse(body, len, "u", &d, &err), CP_OK);
    assert_int_equal(strlen(acme_directory_profile(&d, "big")), ACME_PROFILE_DESC_MAX);
    acme_directory_clear(&d);
}

static void test_directory_issuer_domain_names(void **state)
{
    (void)state;
    static const struct {
        const char *names;
        size_t kept;
    } cases[] = {
        {"[\"letsencrypt.org\"]", 1},
        {"[\"authority.example\", \"ca.example.net\"]", 2},
        {"[]", 0},
        {"[\"LetsEncrypt.org\"]", 0},    /* not lower case */
        {"[\"letsencrypt.org.\"]", 0},   /* trailing dot */
        {"[\"letsencrypt.org\", 7]", 0}, /* one bad: none kept */
        {"[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\"]", 0},
        {"\"letsencrypt.org\"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[512];
        int len = snprintf(body, sizeof body,
                           "{\"newNonce\":\"n\",\"newAccount\":\"a\",\"newOrder\":\"o\","
                           "\"meta\":{\"issuerDomainNames\":%s}}",
                           cases[i].names);
        struct acme_directory d;
        struct cp_err err = {0};
        assert_int_equal(acme_directory_parse(body, (size_t)len, "u", &d, &err), CP_OK);
        assert_int_equal(d.nissuer_domain_names, cases[i].kept);
        if (cases[i].kept > 0)
            assert_string_equal(d.issuer_domain_names[0],
                                i == 1 ? "authority.example" : "letsencrypt.org");
        acme_directory_clear(&d);
    }
}

static void test_directory_refused(void **state)
{
    (void)state;
    struct acme_directory d;
    struct cp_err err = {0};
    assert_int_equal(acme_directory_parse("[]", 2, "https://x/dir", &d, &err), CP_EPROTO);
    assert_non_null(strstr(err.msg, "https://x/dir is not an ACME directory"));
    acme_directory_clear(&d);
    assert_int_equal(acme_directory_parse("{\"newNonce\":\"n\"}", 16, "https://x/dir", &d, &err),
                     CP_EPROTO);
    acme_directory_clear(&d);
    assert_int_equal(acme_directory_parse(NULL, 0, "https://x/dir", &d, &err), CP_EPROTO);
    acme_directory_clear(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ip_normalize),
        cmocka_unit_test(test_ip_normalize_rejects),
        cmocka_unit_test(test_reverse_name),
        cmocka_unit_test(test_method_check),
        cmocka_unit_test(test_csr_ip_sans),
        cmocka_unit_test(test_tlsalpn01_cert_ip),
        cmocka_unit_test(test_server_answers_reverse_sni),
        cmocka_unit_test(test_directory_profiles),
        cmocka_unit_test(test_directory_without_profiles),
        cmocka_unit_test(test_directory_profiles_bounded),
        cmocka_unit_test(test_directory_issuer_domain_names),
        cmocka_unit_test(test_directory_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
