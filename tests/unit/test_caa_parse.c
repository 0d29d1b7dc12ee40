/* tests/unit/test_caa_parse.c - caa/parse.c: tags, flags, values (spec §5, §6), formatting. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "caa/caa.h"
#include "caa/caa_int.h"

/* Parse a C-string value; the copy is exactly `len` bytes so ASan catches over-reads. */
static bool parse(const char *s, size_t len, struct caa_issue_value *iv, unsigned char **keep)
{
    unsigned char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, s, len);
    *keep = copy;
    return caa_parse_issue_value(copy, len, iv);
}

#define PARSE(lit, iv, keep) parse((lit), sizeof(lit) - 1, (iv), (keep))

static void assert_span(const char *p, size_t len, const char *want)
{
    assert_non_null(p);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(p, want, len);
}

/* ------------------------------------------------------------------- tags */

static void tag_kinds_case_insensitive(void **state)
{
    (void)state;
    assert_int_equal(caa_tag_kind("issue", sizeof "issue" - 1), CAA_TAG_ISSUE);
    assert_int_equal(caa_tag_kind("ISSUE", sizeof "ISSUE" - 1), CAA_TAG_ISSUE);
    assert_int_equal(caa_tag_kind("IsSuE", sizeof "IsSuE" - 1), CAA_TAG_ISSUE);
    assert_int_equal(caa_tag_kind("issuewild", sizeof "issuewild" - 1), CAA_TAG_ISSUEWILD);
    assert_int_equal(caa_tag_kind("IssueWild", sizeof "IssueWild" - 1), CAA_TAG_ISSUEWILD);
    assert_int_equal(caa_tag_kind("iodef", sizeof "iodef" - 1), CAA_TAG_IODEF);
    assert_int_equal(caa_tag_kind("IODEF", sizeof "IODEF" - 1), CAA_TAG_IODEF);
    assert_int_equal(caa_tag_kind("issuemail", sizeof "issuemail" - 1), CAA_TAG_ISSUEMAIL);
    assert_int_equal(caa_tag_kind("ISSUEMAIL", sizeof "ISSUEMAIL" - 1), CAA_TAG_ISSUEMAIL);
}

static void tag_kinds_unknown(void **state)
{
    (void)state;
    assert_int_equal(caa_tag_kind("tbs", sizeof "tbs" - 1), CAA_TAG_UNKNOWN);
    assert_int_equal(caa_tag_kind("issu", sizeof "issu" - 1), CAA_TAG_UNKNOWN);
    assert_int_equal(caa_tag_kind("issues", sizeof "issues" - 1), CAA_TAG_UNKNOWN);
    assert_int_equal(caa_tag_kind("issuewilds", sizeof "issuewilds" - 1), CAA_TAG_UNKNOWN);
    assert_int_equal(caa_tag_kind("issue ", sizeof "issue " - 1), CAA_TAG_UNKNOWN);
    assert_int_equal(caa_tag_kind(" issue", sizeof " issue" - 1), CAA_TAG_UNKNOWN);
    assert_int_equal(caa_tag_kind("issuevmc", sizeof "issuevmc" - 1), CAA_TAG_ISSUEVMC);
    assert_int_equal(caa_tag_kind("", sizeof "" - 1), CAA_TAG_UNKNOWN);
    assert_int_equal(caa_tag_kind(NULL, 0), CAA_TAG_UNKNOWN);
}

static void critical_flag_bits(void **state)
{
    (void)state;
    struct caa_record r = {0};
    const struct {
        uint8_t flags;
        bool critical;
    } cases[] = {{0, false},  {128, true},  {1, true},   {129, true}, {2, false},
                 {64, false}, {126, false}, {127, true}, {255, true}, {3, true}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r.flags = cases[i].flags;
        assert_int_equal(caa_record_critical(&r), cases[i].critical);
    }
    assert_false(caa_record_critical(NULL));
}

/* ------------------------------------------------------------------ values */

static void value_plain_issuer(void **state)
{
    (void)state;
    struct caa_issue_value iv;
    unsigned char *k;
    assert_true(PARSE("letsencrypt.org", &iv, &k));
    assert_span(iv.issuer, iv.issuer_len, "letsencrypt.org");
    assert_null(iv.accounturi);
    assert_null(iv.methods);
    free(k);
}

static void value_issuer_trimmed_of_spaces_and_tabs_only(void **state)
{
    (void)state;
    struct caa_issue_value iv;
    unsigned char *k;
    assert_true(PARSE("  \tletsencrypt.org \t ", &iv, &k));
    assert_span(iv.issuer, iv.issuer_len, "letsencrypt.org");
    free(k);
    /* A newline is not trimmed: the issuer then differs from the CA name. */
    assert_true(PARSE("letsencrypt.org\n", &iv, &k));
    assert_span(iv.issuer, iv.issuer_len, "letsencrypt.org\n");
    free(k);
}

static void value_semicolon_alone_is_empty_issuer(void **state)
{
    (void)state;
    struct caa_issue_value iv;
    unsigned char *k;
    assert_true(PARSE(";", &iv, &k));
    assert_int_equal(iv.issuer_len, 0);
    assert_null(iv.accounturi);
    free(k);
    assert_true(PARSE(" ; ", &iv, &k));
    assert_int_equal(iv.issuer_len, 0);
    free(k);
    assert_true(PARSE("", &iv, &k));
    assert_int_equal(iv.issuer_len, 0);
    free(k);
}

static void value_one_trailing_blank_piece_is_no_parameters(void **state)
{
    (void)state;
    struct caa_issue_value iv;
    unsigned char *k;
    assert_true(PARSE("letsencrypt.org;", &iv, &k));
    assert_span(iv.issuer, iv.issuer_len, "letsencrypt.org");
    free(k);
    assert_true(PARSE("letsencrypt.org; \t ", &iv, &k));
    free(k);
}

static void value_two_trailing_pieces_are_malformed(void **state)
{
    (void)state;
    struct caa_issue_value iv;
    unsigned char *k;
    assert_false(PARSE("letsencrypt.org;;", &iv, &k));
    free(k);
    assert_false(PARSE("letsencrypt.org; ; ", &iv, &k));
    free(k);
    /* A ';' after the last parameter leaves an empty piece. */
    assert_false(PARSE("letsencrypt.org; accounturi=https://a/1;", &iv, &k));
    free(k);
}

static void value_parameters_parsed_and_trimmed(void **state)
{
    (void)state;
    struct caa_issue_value iv;
    unsigned char *k;
    assert_true(PARSE("letsencrypt.org; accounturi = https://a.example/acct/1 ;\t"
                      "validationmethods=dns-01,http-01",
                      &iv, &k));
    assert_span(iv.issuer, iv.issuer_len, "letsencrypt.org");
    assert_span(iv.accounturi, iv.accounturi_len, "https://a.example/acct/1");
    assert_span(iv.methods, iv.methods_len, "dns-01,http-01");
    free(k);
    assert_true(PARSE("letsencrypt.org;accounturi=x;validationmethods=y", &iv, &k));
    assert_span(iv.accounturi, iv.accounturi_len, "x");
    assert_span(iv.methods, iv.methods_len, "y");
    free(k);
}

static void value_equals_sign_inside_value(void **state)
{
    (void)state;
    struct caa_issue_value iv;
    unsigned char *k;
    /* Split at the first '=' only. */
    assert_true(PARSE("letsencrypt.org; accounturi=https://x/?a=b==", &iv, &k));
    assert_span(iv.accounturi, iv.accounturi_len, "https://x/?a=b==");
    free(k);
}

static void value_missing_equals_is_malformed(void **state)
{
    (void)state;
    struct caa_issue_value iv;
    unsigned char *k;
    assert_false(PARSE("letsencrypt.org; accounturi", &iv, &k));
    assert_null(iv.accounturi);
    /* The issuer is still reported, for messages. */
    assert_span(iv.issuer, iv.issuer_len, "letsencrypt.org");
    free(k);
    assert_false(PARSE("letsencrypt.org; validationmethods=http-01; junk", &iv, &k));
    assert_null(iv.methods);
    free(k);
}

static void value_space_inside_value_is_malformed(void **state)
{
    (void)state;
    struct caa_issue_value iv;
    unsigned char *k;
    assert_false(PARSE("letsencrypt.org; accounturi=https://a /1", &iv, &k));
    free(k);
    assert_false(PARSE("letsencrypt.org; validationmethods=http-01 dns-01", &iv, &k));
    free(k);
    assert_false(PARSE("letsencrypt.org; validationmethods=http-01\tdns-01", &iv, &k));
    free(k);
}

static void value_bad_bytes_in_value_are_malformed(void **state)
{
    (void)state;
    struct caa_issue_value iv;
    unsigned char *k;
    assert_false(PARSE("letsencrypt.org; a=\x7f", &iv, &k));
    free(k);
    assert_false(PARSE("letsencrypt.org; a=caf\xc3\xa9", &iv, &k));
    free(k);
    assert_false(PARSE("letsencrypt.org; a=x\0y", &iv, &k));
    free(k);
    assert_false(PARSE("letsencrypt.org; a=\n", &iv, &k));
    free(k);
    /* The whole visible range is fine. */
    assert_true(PARSE("letsencrypt.org; a=!\"#$%&'()*+,-./:<=>?@[\\]^_`{|}~", &iv, &k));
    free(k);
}

static void value_bad_tag_characters_are_malformed(void **state)
{
    (void)state;
    struct caa_issue_value iv;
    unsigned char *k;
    assert_false(PARSE("letsencrypt.org; account-uri=x", &iv, &k));
    free(k);
    assert_false(PARSE("letsencrypt.org; account_uri=x", &iv, &k));
    free(k);
    assert_false(PARSE("letsencrypt.org; account uri=x", &iv, &k));
    free(k);
    assert_false(PARSE("letsencrypt.org; acc\xc3\xa9=x", &iv, &k));
    free(k);
    assert_true(PARSE("letsencrypt.org; Tag2=x", &iv, &k));
    free(k);
}

static void value_empty_parameter_value_allowed(void **state)
{
    (void)state;
    struct caa_issue_value iv;
    unsigned char *k;
    /* RFC 8659 §4.2: parameter-value = 0*(...) */
    assert_true(PARSE("letsencrypt.org; validationmethods=", &iv, &k));
    assert_non_null(iv.methods);
    assert_int_equal(iv.methods_len, 0);
    free(k);
    assert_true(PARSE("letsencrypt.org; accounturi= \t", &iv, &k));
    assert_non_null(iv.accounturi);
    assert_int_equal(iv.accounturi_len, 0);
    free(k);
}

static void value_empty_parameter_tag_accepted_like_lets_encrypt(void **state)
{
    (void)state;
    struct caa_issue_value iv;
    unsigned char *k;
    assert_true(PARSE("letsencrypt.org; =x", &iv, &k));
    assert_null(iv.accounturi);
    assert_null(iv.methods);
    free(k);
}

static void value_duplicate_parameter_unsatisfiable(void **state)
{
    (void)state;
    struct caa_issue_value iv;
    struct caa_parse_error pe;
    unsigned char *k;
    /* spec §6: accounturi or validationmethods a second time. */
    assert_false(PARSE("letsencrypt.org; validationmethods=dns-01; accounturi=a; "
                       "validationmethods=http-01",
                       &iv, &k));
    free(k);
    const char *v = "letsencrypt.org; accounturi=a; accounturi=a";
    assert_false(caa_parse_issue_value_ex((const unsigned char *)v, strlen(v), &iv, &pe));
    assert_int_equal(pe.fault, CAA_PARSE_DUPLICATE);
    assert_int_equal(pe.bad_off, strlen("letsencrypt.org; accounturi=a; "));
    assert_null(iv.accounturi);
    /* Other parameters may repeat; the case of a tag matters. */
    assert_true(PARSE("letsencrypt.org; x=1; x=2; AccountUri=a; accounturi=b", &iv, &k));
    assert_span(iv.accounturi, iv.accounturi_len, "b");
    free(k);
}

static void value_parameter_tags_case_sensitive(void **state)
{
    (void)state;
    struct caa_issue_value iv;
    unsigned char *k;
    assert_true(PARSE("letsencrypt.org; AccountURI=x; ValidationMethods=dns-01", &iv, &k));
    assert_null(iv.accounturi);
    assert_null(iv.methods);
    free(k);
}

static void value_unknown_parameters_ignored(void **state)
{
    (void)state;
    struct caa_issue_value iv;
    unsigned char *k;
    assert_true(PARSE("letsencrypt.org; policy=ev; cansignhttpexchanges=yes", &iv, &k));
    assert_null(iv.accounturi);
    assert_null(iv.methods);
    free(k);
}

static void value_nul_bytes_use_lengths(void **state)
{
    (void)state;
    struct caa_issue_value iv;
    unsigned char *k;
    /* "\000" as mydns.jp published it: an issuer of one NUL byte. */
    assert_true(parse("\0", 1, &iv, &k));
    assert_int_equal(iv.issuer_len, 1);
    assert_int_equal(iv.issuer[0], '\0');
    free(k);
    assert_true(parse("lets\0encrypt.org", 16, &iv, &k));
    assert_int_equal(iv.issuer_len, 16);
    free(k);
    /* The issuer grammar is not enforced: such a record simply matches no CA. */
    assert_true(PARSE("lets encrypt.org", &iv, &k));
    assert_span(iv.issuer, iv.issuer_len, "lets encrypt.org");
    free(k);
}

static void value_never_reads_past_len(void **state)
{
    (void)state;
    struct caa_issue_value iv;
    static const unsigned char buf[] = "letsencrypt.org; junk";
    assert_true(caa_parse_issue_value(buf, 15, &iv));
    assert_span(iv.issuer, iv.issuer_len, "letsencrypt.org");
    assert_true(caa_parse_issue_value(buf, 16, &iv));  /* "letsencrypt.org;" */
    assert_false(caa_parse_issue_value(buf, 18, &iv)); /* "...; j" */
    assert_true(caa_parse_issue_value(NULL, 0, &iv));
    assert_int_equal(iv.issuer_len, 0);
}

static void value_fault_reported(void **state)
{
    (void)state;
    struct caa_issue_value iv;
    struct caa_parse_error pe;
    const char *v1 = "le; a=1; bad";
    assert_false(caa_parse_issue_value_ex((const unsigned char *)v1, strlen(v1), &iv, &pe));
    assert_int_equal(pe.fault, CAA_PARSE_NO_EQUALS);
    assert_int_equal(pe.piece_off, 8);
    assert_int_equal(pe.piece_len, 4);
    const char *v2 = "le; ac-c=1";
    assert_false(caa_parse_issue_value_ex((const unsigned char *)v2, strlen(v2), &iv, &pe));
    assert_int_equal(pe.fault, CAA_PARSE_BAD_TAG);
    assert_int_equal(v2[pe.bad_off], '-');
    const char *v3 = "le; a=x y";
    assert_false(caa_parse_issue_value_ex((const unsigned char *)v3, strlen(v3), &iv, &pe));
    assert_int_equal(pe.fault, CAA_PARSE_BAD_VALUE);
    assert_int_equal(pe.bad_off, 7);
    assert_true(caa_parse_issue_value_ex((const unsigned char *)"le", 2, &iv, &pe));
    assert_int_equal(pe.fault, CAA_PARSE_OK);
}

/* -------------------------------------------------------------- formatting */

static void format_plain_record(void **state)
{
    (void)state;
    struct caa_record r = {0, "issue", sizeof "issue" - 1, (unsigned char *)"letsencrypt.org", 15};
    char buf[64];
    size_t n = caa_record_format(&r, buf, sizeof buf);
    assert_string_equal(buf, "0 issue \"letsencrypt.org\"");
    assert_int_equal(n, strlen(buf));
    r.flags = 128;
    r.tag = "issuewild";
    r.tag_len = strlen(r.tag);
    r.value = (unsigned char *)";";
    r.value_len = 1;
    caa_record_format(&r, buf, sizeof buf);
    assert_string_equal(buf, "128 issuewild \";\"");
    r.flags = 255;
    r.value_len = 0;
    caa_record_format(&r, buf, sizeof buf);
    assert_string_equal(buf, "255 issuewild \"\"");
}

static void format_escapes(void **state)
{
    (void)state;
    static const unsigned char v[] = {'a', '"', 'b', '\\', ' ', 0, 0x7f, 0xff, '\n', ';'};
    struct caa_record r = {0, "issue", sizeof "issue" - 1, (unsigned char *)v, sizeof v};
    char buf[128];
    caa_record_format(&r, buf, sizeof buf);
    assert_string_equal(buf, "0 issue \"a\\\"b\\\\ \\000\\127\\255\\010;\"");
    /* The unquoted tag escapes blanks too. */
    struct caa_record t = {1, "is sue", sizeof "is sue" - 1, (unsigned char *)"x", 1};
    caa_record_format(&t, buf, sizeof buf);
    assert_string_equal(buf, "1 is\\032sue \"x\"");
}

static void format_truncates_like_snprintf(void **state)
{
    (void)state;
    struct caa_record r = {0, "issue", sizeof "issue" - 1, (unsigned char *)"letsencrypt.org", 15};
    char buf[5];
    size_t need = caa_record_format(&r, NULL, 0);
    assert_int_equal(need, strlen("0 issue \"letsencrypt.org\""));
    assert_int_equal(caa_record_format(&r, buf, sizeof buf), need);
    assert_string_equal(buf, "0 is");
    char one[1] = {'x'};
    assert_int_equal(caa_record_format(&r, one, 1), need);
    assert_int_equal(one[0], '\0');
    /* An escape cut in the middle still leaves a terminated prefix. */
    struct caa_record z = {0, "issue", sizeof "issue" - 1, (unsigned char *)"\0", 1};
    char b9[11];
    assert_int_equal(caa_record_format(&z, b9, sizeof b9), strlen("0 issue \"\\000\""));
    assert_string_equal(b9, "0 issue \"\\");
}

static void escape_bytes_helper(void **state)
{
    (void)state;
    char buf[32];
    assert_int_equal(caa_escape_bytes((const unsigned char *)"a\0\"", 3, buf, sizeof buf), 7);
    assert_string_equal(buf, "a\\000\\\"");
}

static void rcode_names(void **state)
{
    (void)state;
    assert_string_equal(caa_rcode_name(0), "NOERROR");
    assert_string_equal(caa_rcode_name(1), "FORMERR");
    assert_string_equal(caa_rcode_name(2), "SERVFAIL");
    assert_string_equal(caa_rcode_name(3), "NXDOMAIN");
    assert_string_equal(caa_rcode_name(4), "NOTIMP");
    assert_string_equal(caa_rcode_name(5), "REFUSED");
    assert_string_equal(caa_rcode_name(6), "YXDOMAIN");
    assert_string_equal(caa_rcode_name(7), "YXRRSET");
    assert_string_equal(caa_rcode_name(8), "NXRRSET");
    assert_string_equal(caa_rcode_name(9), "NOTAUTH");
    assert_string_equal(caa_rcode_name(10), "NOTZONE");
    assert_string_equal(caa_rcode_name(12), "RCODE12");
    assert_string_equal(caa_rcode_name(15), "RCODE15");
    assert_string_equal(caa_rcode_name(16), "BADVERS");
    assert_string_equal(caa_rcode_name(-1), "unknown RCODE");
    assert_string_equal(caa_rcode_name(4096), "unknown RCODE");
    /* Static storage: the same pointer every time. */
    assert_ptr_equal(caa_rcode_name(13), caa_rcode_name(13));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tag_kinds_case_insensitive),
        cmocka_unit_test(tag_kinds_unknown),
        cmocka_unit_test(critical_flag_bits),
        cmocka_unit_test(value_plain_issuer),
        cmocka_unit_test(value_issuer_trimmed_of_spaces_and_tabs_only),
        cmocka_unit_test(value_semicolon_alone_is_empty_issuer),
        cmocka_unit_test(value_one_trailing_blank_piece_is_no_parameters),
        cmocka_unit_test(value_two_trailing_pieces_are_malformed),
        cmocka_unit_test(value_parameters_parsed_and_trimmed),
        cmocka_unit_test(value_equals_sign_inside_value),
        cmocka_unit_test(value_missing_equals_is_malformed),
        cmocka_unit_test(value_space_inside_value_is_malformed),
        cmocka_unit_test(value_bad_bytes_in_value_are_malformed),
        cmocka_unit_test(value_bad_tag_characters_are_malformed),
        cmocka_unit_test(value_empty_parameter_value_allowed),
        cmocka_unit_test(value_empty_parameter_tag_accepted_like_lets_encrypt),
        cmocka_unit_test(value_duplicate_parameter_unsatisfiable),
        cmocka_unit_test(value_parameter_tags_case_sensitive),
        cmocka_unit_test(value_unknown_parameters_ignored),
        cmocka_unit_test(value_nul_bytes_use_lengths),
        cmocka_unit_test(value_never_reads_past_len),
        cmocka_unit_test(value_fault_reported),
        cmocka_unit_test(format_plain_record),
        cmocka_unit_test(format_escapes),
        cmocka_unit_test(format_truncates_like_snprintf),
        cmocka_unit_test(escape_bytes_helper),
        cmocka_unit_test(rcode_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
