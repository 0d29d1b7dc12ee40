/* tests/unit/test_caa_persist.c - caa/persist.c: the dns-persist-01 record
 * (draft-ietf-acme-dns-persist) built for an account, and every rule of its
 * evaluation with records that pass and records that must fail. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "caa/caa.h"

#define ACCT  "https://acme-v02.api.letsencrypt.org/acme/acct/1234"
#define OTHER "https://acme-v02.api.letsencrypt.org/acme/acct/9999"
#define NOW   1800000000LL

static const char *const ISSUERS[] = {"letsencrypt.org"};
static const struct caa_persist_check CHECK = {
    .issuers = ISSUERS, .nissuers = 1, .account_uri = ACCT, .now = NOW};

static enum caa_persist_fault judge(const char *ident, const char *value)
{
    return caa_persist_judge(ident, (const unsigned char *)value, strlen(value), &CHECK, NULL);
}

/* ----------------------------------------------------------------- build */

static void test_build_plain(void **state)
{
    (void)state;
    struct caa_persist_record r;
    struct cp_err err = {0};
    struct caa_persist_spec s = {.issuer = "LetsEncrypt.org", .account_uri = ACCT};
    assert_int_equal(caa_persist_build("WWW.Example.com.", &s, &r, &err), CP_OK);
    assert_string_equal(r.owner, "_validation-persist.www.example.com");
    assert_string_equal(r.value, "letsencrypt.org; accounturi=" ACCT);
    assert_string_equal(r.zone_line, "_validation-persist.www.example.com. IN TXT "
                                     "\"letsencrypt.org; accounturi=" ACCT "\"");
}

static void test_build_wildcard_and_until(void **state)
{
    (void)state;
    struct caa_persist_record r;
    struct cp_err err = {0};
    struct caa_persist_spec s = {
        .issuer = "letsencrypt.org", .account_uri = ACCT, .persist_until = 1767225600};
    assert_int_equal(caa_persist_build("*.example.com", &s, &r, &err), CP_OK);
    assert_string_equal(r.owner, "_validation-persist.example.com");
    assert_string_equal(r.value, "letsencrypt.org; accounturi=" ACCT
                                 "; policy=wildcard; persistUntil=1767225600");
    s.wildcard = true;
    s.persist_until = 0;
    assert_int_equal(caa_persist_build("example.com", &s, &r, &err), CP_OK);
    assert_string_equal(r.value, "letsencrypt.org; accounturi=" ACCT "; policy=wildcard");
}

static void test_build_long_value_split(void **state)
{
    (void)state;
    char uri[400];
    memset(uri, 'a', sizeof uri - 1);
    uri[sizeof uri - 1] = '\0';
    memcpy(uri, "https://ca/\"x\\", 14);
    struct caa_persist_record r;
    struct cp_err err = {0};
    struct caa_persist_spec s = {.issuer = "ca.example", .account_uri = uri};
    assert_int_equal(caa_persist_build("example.com", &s, &r, &err), CP_OK);
    /* Two character-strings; the quote and backslash escaped. */
    const char *first = strstr(r.zone_line, "TXT \"");
    assert_non_null(first);
    assert_non_null(strstr(r.zone_line, "\" \""));
    assert_non_null(strstr(r.zone_line, "https://ca/\\\"x\\\\"));
}

static void test_build_refuses(void **state)
{
    (void)state;
    struct caa_persist_record r;
    struct cp_err err = {0};
    struct caa_persist_spec s = {.issuer = "letsencrypt.org", .account_uri = ACCT};
    assert_int_equal(caa_persist_build("192.0.2.1", &s, &r, &err), CP_EINVAL);
    assert_int_equal(caa_persist_build("bad_name.example", &s, &r, &err), CP_EINVAL);
    s.issuer = "*.letsencrypt.org";
    assert_int_equal(caa_persist_build("example.com", &s, &r, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "cannot be a wildcard"));
    s.issuer = "letsencrypt.org";
    static const char *const bad_uris[] = {"", "https://ca/acct/1 2", "https://ca/a;b",
                                           "https://ca/\x01"};
    for (size_t i = 0; i < sizeof bad_uris / sizeof bad_uris[0]; i++) {
        s.account_uri = bad_uris[i];
        assert_int_equal(caa_persist_build("example.com", &s, &r, &err), CP_EINVAL);
        assert_non_null(strstr(err.msg, "cannot go in a record"));
    }
    s.account_uri = ACCT;
    s.persist_until = -5;
    assert_int_equal(caa_persist_build("example.com", &s, &r, &err), CP_EINVAL);
    s.persist_until = 0;
    s.account_uri = NULL;
    assert_int_equal(caa_persist_build("example.com", &s, &r, &err), CP_EINVAL);
}

/* What the builder writes, the evaluator accepts. */
static void test_build_then_evaluate(void **state)
{
    (void)state;
    static const char *const names[] = {"example.com", "*.example.com", "a.b.example.org"};
    for (size_t i = 0; i < 3; i++) {
        struct caa_persist_record r;
        struct cp_err err = {0};
        struct caa_persist_spec s = {
            .issuer = "letsencrypt.org", .account_uri = ACCT, .persist_until = NOW + 1};
        assert_int_equal(caa_persist_build(names[i], &s, &r, &err), CP_OK);
        struct caa_persist_txt t = {(const unsigned char *)r.value, strlen(r.value)};
        struct caa_persist_verdict v;
        assert_int_equal(caa_persist_evaluate(names[i], &t, 1, &CHECK, &v, &err), CP_OK);
        assert_true(v.authorized);
        assert_int_equal(v.record, 0);
        assert_int_equal(v.persist_until, NOW + 1);
        assert_string_equal(v.reason, "");
    }
}

/* ----------------------------------------------------------------- rules */

static void test_issuer(void **state)
{
    (void)state;
    assert_int_equal(judge("example.com", "letsencrypt.org; accounturi=" ACCT),
                     CAA_PERSIST_AUTHORIZES);
    assert_int_equal(judge("example.com", "  LetsEncrypt.ORG ;accounturi=" ACCT),
                     CAA_PERSIST_AUTHORIZES);
    assert_int_equal(judge("example.com", "pki.goog; accounturi=" ACCT), CAA_PERSIST_OTHER_ISSUER);
    assert_int_equal(judge("example.com", "letsencrypt.org.; accounturi=" ACCT),
                     CAA_PERSIST_OTHER_ISSUER);
    assert_int_equal(judge("example.com", "; accounturi=" ACCT), CAA_PERSIST_OTHER_ISSUER);
    assert_int_equal(judge("example.com", "v=spf1 -all"), CAA_PERSIST_OTHER_ISSUER);
    assert_int_equal(judge("example.com", ""), CAA_PERSIST_OTHER_ISSUER);
    /* Any one of the CA's issuer domain names. */
    static const char *const two[] = {"authority.example", "ca.example.net"};
    struct caa_persist_check c = CHECK;
    c.issuers = two;
    c.nissuers = 2;
    const char *v = "ca.example.net; accounturi=" ACCT;
    assert_int_equal(
        caa_persist_judge("example.com", (const unsigned char *)v, strlen(v), &c, NULL),
        CAA_PERSIST_AUTHORIZES);
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "letsencrypt.org; accounturi",                            /* no '=' */
        "letsencrypt.org; account-uri=x; accounturi=" ACCT,       /* bad tag */
        "letsencrypt.org; accounturi=" ACCT "; accounturi=" ACCT, /* repeated (spec §6) */
        "letsencrypt.org; accounturi=" ACCT "; policy=wildcard; policy=wildcard",
        "letsencrypt.org; accounturi=" ACCT "; persistUntil=1; persistUntil=2",
        "letsencrypt.org; accounturi=" ACCT "; persistUntil=soon",
        "letsencrypt.org; accounturi=" ACCT "; persistUntil=-1",
        "letsencrypt.org; accounturi=" ACCT "; persistUntil=+1900000000",
        "letsencrypt.org; accounturi=" ACCT "; persistUntil=",
        "letsencrypt.org; accounturi=" ACCT "; persistUntil=1.5",
        "letsencrypt.org; accounturi=" ACCT "; persistUntil=99999999999999999999",
        "letsencrypt.org;; accounturi=" ACCT,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(judge("example.com", bad[i]), CAA_PERSIST_MALFORMED);
    }
    /* Unknown parameters are ignored (draft §4.1 item 1). */
    assert_int_equal(judge("example.com", "letsencrypt.org; future=1; accounturi=" ACCT),
                     CAA_PERSIST_AUTHORIZES);
    /* Parameter tags are case-sensitive: "PersistUntil" is an unknown one. */
    assert_int_equal(judge("example.com", "letsencrypt.org; accounturi=" ACCT "; PersistUntil=1"),
                     CAA_PERSIST_AUTHORIZES);
    assert_int_equal(
        judge("example.com", "letsencrypt.org; accounturi=" ACCT "; persistUntil=01900000000"),
        CAA_PERSIST_AUTHORIZES);
}

static void test_account(void **state)
{
    (void)state;
    assert_int_equal(judge("example.com", "letsencrypt.org"), CAA_PERSIST_NO_ACCOUNT);
    assert_int_equal(judge("example.com", "letsencrypt.org;"), CAA_PERSIST_NO_ACCOUNT);
    assert_int_equal(judge("example.com", "letsencrypt.org; policy=wildcard"),
                     CAA_PERSIST_NO_ACCOUNT);
    assert_int_equal(judge("example.com", "letsencrypt.org; accounturi=" OTHER),
                     CAA_PERSIST_OTHER_ACCOUNT);
    /* Simple string comparison: no case folding, no trailing slash tolerance. */
    assert_int_equal(judge("example.com",
                           "letsencrypt.org; accounturi=HTTPS://acme-v02.api.letsencrypt.org/acme/"
                           "acct/1234"),
                     CAA_PERSIST_OTHER_ACCOUNT);
    assert_int_equal(judge("example.com", "letsencrypt.org; accounturi=" ACCT "/"),
                     CAA_PERSIST_OTHER_ACCOUNT);
    assert_int_equal(judge("example.com", "letsencrypt.org; accounturi="),
                     CAA_PERSIST_OTHER_ACCOUNT);
}

static void test_wildcard_policy(void **state)
{
    (void)state;
    assert_int_equal(judge("*.example.com", "letsencrypt.org; accounturi=" ACCT),
                     CAA_PERSIST_NOT_WILDCARD);
    assert_int_equal(
        judge("*.example.com", "letsencrypt.org; accounturi=" ACCT "; policy=wildcard"),
        CAA_PERSIST_AUTHORIZES);
    assert_int_equal(
        judge("*.example.com", "letsencrypt.org; accounturi=" ACCT "; policy=WildCard"),
        CAA_PERSIST_AUTHORIZES);
    assert_int_equal(
        judge("*.example.com", "letsencrypt.org; accounturi=" ACCT "; policy=subdomain"),
        CAA_PERSIST_NOT_WILDCARD);
    assert_int_equal(judge("*.example.com", "letsencrypt.org; accounturi=" ACCT "; policy="),
                     CAA_PERSIST_NOT_WILDCARD);
    /* policy=wildcard also covers the name itself. */
    assert_int_equal(judge("example.com", "letsencrypt.org; accounturi=" ACCT "; policy=wildcard"),
                     CAA_PERSIST_AUTHORIZES);
}

static void test_persist_until(void **state)
{
    (void)state;
    char v[256];
    long long until = 0;
    snprintf(v, sizeof v, "letsencrypt.org; accounturi=%s; persistUntil=%lld", ACCT, NOW - 1);
    assert_int_equal(
        caa_persist_judge("example.com", (const unsigned char *)v, strlen(v), &CHECK, &until),
        CAA_PERSIST_EXPIRED);
    assert_int_equal(until, NOW - 1);
    snprintf(v, sizeof v, "letsencrypt.org; accounturi=%s; persistUntil=%lld", ACCT, NOW);
    assert_int_equal(judge("example.com", v), CAA_PERSIST_AUTHORIZES);
    snprintf(v, sizeof v, "letsencrypt.org; accounturi=%s; persistUntil=0", ACCT);
    assert_int_equal(judge("example.com", v), CAA_PERSIST_EXPIRED);
    /* Absent: no end. */
    assert_int_equal(caa_persist_judge("example.com",
                                       (const unsigned char *)"letsencrypt.org; "
                                                              "accounturi=" ACCT,
                                       strlen("letsencrypt.org; accounturi=" ACCT), &CHECK, &until),
                     CAA_PERSIST_AUTHORIZES);
    assert_int_equal(until, -1);
}

/* ------------------------------------------------------------- evaluate */

static struct caa_persist_txt txt(const char *s)
{
    return (struct caa_persist_txt){(const unsigned char *)s, strlen(s)};
}

static void test_evaluate_no_record(void **state)
{
    (void)state;
    struct caa_persist_verdict v;
    struct cp_err err = {0};
    assert_int_equal(caa_persist_evaluate("www.example.com", NULL, 0, &CHECK, &v, &err), CP_OK);
    assert_false(v.authorized);
    assert_int_equal(v.record, SIZE_MAX);
    assert_string_equal(v.reason, "there is no TXT record at _validation-persist.www.example.com: "
                                  "publish the dns-persist-01 record there");
}

static void test_evaluate_one_of_many(void **state)
{
    (void)state;
    struct caa_persist_txt t[] = {txt("pki.goog; accounturi=x"),
                                  txt("letsencrypt.org; accounturi=" OTHER),
                                  txt("letsencrypt.org; accounturi=" ACCT)};
    struct caa_persist_verdict v;
    struct cp_err err = {0};
    assert_int_equal(caa_persist_evaluate("example.com", t, 3, &CHECK, &v, &err), CP_OK);
    assert_true(v.authorized);
    assert_int_equal(v.record, 2);
    assert_int_equal(v.fault, CAA_PERSIST_AUTHORIZES);
}

static void test_evaluate_reasons(void **state)
{
    (void)state;
    struct caa_persist_verdict v;
    struct cp_err err = {0};
    /* The record that got furthest speaks. */
    struct caa_persist_txt t[] = {txt("pki.goog; accounturi=" ACCT),
                                  txt("letsencrypt.org; accounturi=" ACCT),
                                  txt("letsencrypt.org; accounturi=" OTHER)};
    assert_int_equal(caa_persist_evaluate("*.example.com", t, 3, &CHECK, &v, &err), CP_OK);
    assert_false(v.authorized);
    assert_int_equal(v.record, 1);
    assert_int_equal(v.fault, CAA_PERSIST_NOT_WILDCARD);
    assert_non_null(strstr(v.reason, "*.example.com is a wildcard name"));
    assert_non_null(strstr(v.reason, "lacks policy=wildcard"));

    assert_int_equal(caa_persist_evaluate("example.com", &t[2], 1, &CHECK, &v, &err), CP_OK);
    assert_non_null(strstr(v.reason, "is for another account than " ACCT));
    assert_int_equal(caa_persist_evaluate("example.com", &t[0], 1, &CHECK, &v, &err), CP_OK);
    assert_non_null(strstr(v.reason, "names another CA than letsencrypt.org"));
    assert_non_null(strstr(v.reason, "at _validation-persist.example.com"));

    struct caa_persist_txt e = txt("letsencrypt.org; accounturi=" ACCT "; persistUntil=1767225600");
    assert_int_equal(caa_persist_evaluate("example.com", &e, 1, &CHECK, &v, &err), CP_OK);
    assert_int_equal(v.fault, CAA_PERSIST_EXPIRED);
    assert_non_null(
        strstr(v.reason, "expired at persistUntil=1767225600 (2026-01-01 00:00:00 UTC)"));

    struct caa_persist_txt m = txt("letsencrypt.org; accounturi=" ACCT "; persistUntil=never");
    assert_int_equal(caa_persist_evaluate("example.com", &m, 1, &CHECK, &v, &err), CP_OK);
    assert_int_equal(v.fault, CAA_PERSIST_MALFORMED);
    assert_non_null(strstr(v.reason, "is malformed"));

    struct caa_persist_txt n = txt("letsencrypt.org");
    assert_int_equal(caa_persist_evaluate("example.com", &n, 1, &CHECK, &v, &err), CP_OK);
    assert_non_null(strstr(v.reason, "has no accounturi"));

    /* Bytes from the network reach the reason escaped. */
    struct caa_persist_txt ctl = {(const unsigned char *)"pki.goog\n\x01\"", 11};
    assert_int_equal(caa_persist_evaluate("example.com", &ctl, 1, &CHECK, &v, &err), CP_OK);
    assert_non_null(strstr(v.reason, "pki.goog\\010\\001\\\""));
}

static void test_evaluate_refuses(void **state)
{
    (void)state;
    struct caa_persist_verdict v;
    struct cp_err err = {0};
    struct caa_persist_check c = CHECK;
    assert_int_equal(caa_persist_evaluate("127.0.0.1", NULL, 0, &CHECK, &v, &err), CP_EINVAL);
    c.nissuers = 0;
    assert_int_equal(caa_persist_evaluate("example.com", NULL, 0, &c, &v, &err), CP_EINVAL);
    c = CHECK;
    c.account_uri = NULL;
    assert_int_equal(caa_persist_evaluate("example.com", NULL, 0, &c, &v, &err), CP_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_plain),
        cmocka_unit_test(test_build_wildcard_and_until),
        cmocka_unit_test(test_build_long_value_split),
        cmocka_unit_test(test_build_refuses),
        cmocka_unit_test(test_build_then_evaluate),
        cmocka_unit_test(test_issuer),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_account),
        cmocka_unit_test(test_wildcard_policy),
        cmocka_unit_test(test_persist_until),
        cmocka_unit_test(test_evaluate_no_record),
        cmocka_unit_test(test_evaluate_one_of_many),
        cmocka_unit_test(test_evaluate_reasons),
        cmocka_unit_test(test_evaluate_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
