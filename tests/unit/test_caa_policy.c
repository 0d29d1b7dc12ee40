/* tests/unit/test_caa_policy.c - caa/policy.c: the decision rules of spec §4-§8. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "caa/caa.h"

/* ---------------------------------------------------------------- fixtures */

#define MAXL 6
#define MAXR 8

struct fx {
    struct caa_lookup l[MAXL];
    struct caa_record r[MAXL][MAXR];
    const struct caa_lookup *chain[MAXL];
    size_t n;
    struct caa_decision d;
};

static const char *const LE = "letsencrypt.org";
static const char *const ACCT = "https://acme-v02.api.letsencrypt.org/acme/acct/12345";

static struct caa_params params(const char *account, const char *method)
{
    return (struct caa_params){.ca_identity = LE, .account_uri = account, .method = method};
}

/* The chain of `base`, every lookup answered NOERROR with no records. */
static void fx_chain(struct fx *f, const char *base)
{
    const char *names[MAXL];
    caa_decision_clear(&f->d); /* from an earlier evaluation on the same fixture */
    memset(f, 0, sizeof *f);
    f->n = caa_name_chain(base, names, MAXL);
    for (size_t i = 0; i < f->n; i++) {
        snprintf(f->l[i].name, sizeof f->l[i].name, "%s", names[i]);
        f->l[i].answer = CAA_ANSWER_RECORDS;
        f->l[i].rcode = 0;
        f->l[i].records = f->r[i];
        f->chain[i] = &f->l[i];
    }
}

static void fx_recn(struct fx *f, size_t at, uint8_t flags, const char *tag, const char *value,
                    size_t len)
{
    struct caa_lookup *l = &f->l[at];
    assert_true(l->nrecords < MAXR);
    l->records[l->nrecords++] = (struct caa_record){.flags = flags,
                                                    .tag = (char *)tag,
                                                    .tag_len = strlen(tag),
                                                    .value = (unsigned char *)value,
                                                    .value_len = len};
}

static void fx_rec(struct fx *f, size_t at, uint8_t flags, const char *tag, const char *value)
{
    fx_recn(f, at, flags, tag, value, strlen(value));
}

static void fx_fail(struct fx *f, size_t at, enum caa_answer a, int rcode)
{
    f->l[at].answer = a;
    f->l[at].rcode = rcode;
}

static void eval(struct fx *f, bool wildcard, const struct caa_params *p)
{
    struct cp_err err;
    cp_err_clear(&err);
    caa_decision_clear(&f->d);
    enum cp_code rc = caa_evaluate(f->chain, f->n, wildcard, p, &f->d, &err);
    if (rc != CP_OK)
        fail_msg("caa_evaluate: %s", err.msg);
}

/* Evaluate a one-record set at the name itself for an http-01 order. */
static enum caa_verdict verdict_of(const char *value, const char *account, const char *method)
{
    struct fx f = {0};
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", value);
    struct caa_params p = params(account, method);
    eval(&f, false, &p);
    assert_int_equal(f.d.nverdicts, 1);
    enum caa_verdict v = f.d.verdicts[0];
    if (v == CAA_VERDICT_AUTHORIZES) {
        assert_int_equal(f.d.status, CAA_ALLOWED);
        assert_int_equal(f.d.why, CAA_WHY_AUTHORIZED);
        assert_int_equal(f.d.authorizing, 0);
    } else {
        assert_int_equal(f.d.status, CAA_DENIED);
        assert_int_equal(f.d.why, CAA_WHY_NOT_AUTHORIZED);
        assert_int_equal(f.d.authorizing, SIZE_MAX);
    }
    caa_decision_clear(&f.d);
    return v;
}

#define ASSERT_VERDICT(value, account, method, want)                                               \
    do {                                                                                           \
        enum caa_verdict got_ = verdict_of((value), (account), (method));                          \
        if (got_ != (want))                                                                        \
            fail_msg("%s: verdict %s, expected %s", (value), caa_verdict_name(got_),               \
                     caa_verdict_name(want));                                                      \
    } while (0)

/* ---------------------------------------------------------- spec §4: where */

static void no_records_anywhere_allows(void **state)
{
    (void)state;
    struct fx f = {0};
    struct caa_params p = params(NULL, "http-01");
    fx_chain(&f, "a.b.example.com");
    eval(&f, false, &p);
    assert_int_equal(f.d.status, CAA_ALLOWED);
    assert_int_equal(f.d.why, CAA_WHY_NO_RECORDS);
    assert_int_equal(f.d.at, SIZE_MAX);
    assert_int_equal(f.d.authorizing, SIZE_MAX);
    assert_null(f.d.verdicts);
    /* Wildcards too. */
    eval(&f, true, &p);
    assert_int_equal(f.d.status, CAA_ALLOWED);
    caa_decision_clear(&f.d);
    /* An empty chain has no records either. */
    struct caa_decision d;
    assert_int_equal(caa_evaluate(NULL, 0, false, &p, &d, NULL), CP_OK);
    assert_int_equal(d.status, CAA_ALLOWED);
    assert_int_equal(d.why, CAA_WHY_NO_RECORDS);
}

static void closest_rrset_is_relevant(void **state)
{
    (void)state;
    struct fx f = {0};
    struct caa_params p = params(NULL, "http-01");
    fx_chain(&f, "a.b.example.com");
    fx_rec(&f, 2, 0, "issue", "letsencrypt.org");
    fx_rec(&f, 3, 0, "issue", ";"); /* above the relevant set: never looked at */
    eval(&f, false, &p);
    assert_int_equal(f.d.status, CAA_ALLOWED);
    assert_int_equal(f.d.at, 2);
    assert_int_equal(f.d.nverdicts, 1);
    /* And the other way round: the forbidding set is closer. */
    fx_chain(&f, "a.b.example.com");
    fx_rec(&f, 1, 0, "issue", ";");
    fx_rec(&f, 2, 0, "issue", "letsencrypt.org");
    eval(&f, false, &p);
    assert_int_equal(f.d.status, CAA_DENIED);
    assert_int_equal(f.d.at, 1);
    caa_decision_clear(&f.d);
}

static void nxdomain_and_empty_keep_climbing(void **state)
{
    (void)state;
    struct fx f = {0};
    struct caa_params p = params(NULL, "http-01");
    fx_chain(&f, "a.b.example.com");
    f.l[0].rcode = 3; /* NXDOMAIN is a (empty) set of records, spec §3 */
    fx_rec(&f, 2, 0, "issue", "digicert.com");
    eval(&f, false, &p);
    assert_int_equal(f.d.status, CAA_DENIED);
    assert_int_equal(f.d.at, 2);
    caa_decision_clear(&f.d);
}

static void first_error_before_records_fails(void **state)
{
    (void)state;
    struct fx f = {0};
    struct caa_params p = params(NULL, "http-01");
    fx_chain(&f, "a.b.example.com");
    fx_fail(&f, 1, CAA_ANSWER_RCODE, 2);
    fx_fail(&f, 3, CAA_ANSWER_TIMEOUT, -1);
    fx_rec(&f, 2, 0, "issue", "letsencrypt.org");
    eval(&f, false, &p);
    assert_int_equal(f.d.status, CAA_ERROR);
    assert_int_equal(f.d.why, CAA_WHY_DNS);
    assert_int_equal(f.d.at, 1);
    assert_null(f.d.verdicts);
    assert_int_equal(f.d.nverdicts, 0);
    assert_int_equal(f.d.authorizing, SIZE_MAX);
    caa_decision_clear(&f.d);
}

static void every_failure_kind_is_an_error(void **state)
{
    (void)state;
    struct fx f = {0};
    struct caa_params p = params(NULL, "http-01");
    const enum caa_answer kinds[] = {CAA_ANSWER_RCODE, CAA_ANSWER_TIMEOUT, CAA_ANSWER_NETWORK};
    for (size_t i = 0; i < 3; i++) {
        fx_chain(&f, "example.com");
        fx_fail(&f, 1, kinds[i], kinds[i] == CAA_ANSWER_RCODE ? 5 : -1);
        eval(&f, false, &p);
        assert_int_equal(f.d.status, CAA_ERROR);
        assert_int_equal(f.d.at, 1);
        caa_decision_clear(&f.d);
    }
}

static void records_below_hide_error_above(void **state)
{
    (void)state;
    struct fx f = {0};
    struct caa_params p = params(NULL, "http-01");
    fx_chain(&f, "a.b.example.com");
    fx_rec(&f, 1, 0, "issue", "letsencrypt.org");
    fx_fail(&f, 2, CAA_ANSWER_RCODE, 2);
    fx_fail(&f, 3, CAA_ANSWER_NETWORK, -1);
    eval(&f, false, &p);
    assert_int_equal(f.d.status, CAA_ALLOWED);
    assert_int_equal(f.d.why, CAA_WHY_AUTHORIZED);
    assert_int_equal(f.d.at, 1);
    caa_decision_clear(&f.d);
}

/* -------------------------------------------------------- spec §5: rules */

static void several_records_are_additive(void **state)
{
    (void)state;
    struct fx f = {0};
    struct caa_params p = params(NULL, "http-01");
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "digicert.com");
    fx_rec(&f, 0, 0, "issue", ";");
    fx_rec(&f, 0, 0, "iodef", "mailto:a@example.com");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org; validationmethods=dns-01");
    eval(&f, false, &p);
    assert_int_equal(f.d.status, CAA_ALLOWED);
    assert_int_equal(f.d.why, CAA_WHY_AUTHORIZED);
    assert_int_equal(f.d.authorizing, 3);
    assert_int_equal(f.d.nverdicts, 5);
    assert_int_equal(f.d.verdicts[0], CAA_VERDICT_OTHER_CA);
    assert_int_equal(f.d.verdicts[1], CAA_VERDICT_FORBIDS);
    assert_int_equal(f.d.verdicts[2], CAA_VERDICT_IGNORED);
    assert_int_equal(f.d.verdicts[3], CAA_VERDICT_AUTHORIZES);
    assert_int_equal(f.d.verdicts[4], CAA_VERDICT_METHOD_MISMATCH);
    caa_decision_clear(&f.d);
}

static void authorizing_is_the_first(void **state)
{
    (void)state;
    struct fx f = {0};
    struct caa_params p = params(NULL, "http-01");
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "iodef", "mailto:a@example.com");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org");
    eval(&f, false, &p);
    assert_int_equal(f.d.authorizing, 1);
    assert_int_equal(f.d.verdicts[2], CAA_VERDICT_AUTHORIZES);
    caa_decision_clear(&f.d);
}

static void critical_unknown_bit_128_denies(void **state)
{
    (void)state;
    struct fx f = {0};
    struct caa_params p = params(NULL, "http-01");
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org");
    fx_rec(&f, 0, 128, "tbs", "Unknown");
    eval(&f, false, &p);
    assert_int_equal(f.d.status, CAA_DENIED);
    assert_int_equal(f.d.why, CAA_WHY_CRITICAL_UNKNOWN);
    assert_int_equal(f.d.authorizing, SIZE_MAX);
    assert_int_equal(f.d.verdicts[0], CAA_VERDICT_IGNORED);
    assert_int_equal(f.d.verdicts[1], CAA_VERDICT_CRITICAL);
    /* Wildcards too. */
    eval(&f, true, &p);
    assert_int_equal(f.d.why, CAA_WHY_CRITICAL_UNKNOWN);
    caa_decision_clear(&f.d);
}

static void critical_unknown_bit_1_denies(void **state)
{
    (void)state;
    struct fx f = {0};
    struct caa_params p = params(NULL, "http-01");
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org");
    fx_rec(&f, 0, 1, "future", "x");
    eval(&f, false, &p);
    assert_int_equal(f.d.status, CAA_DENIED);
    assert_int_equal(f.d.why, CAA_WHY_CRITICAL_UNKNOWN);
    assert_int_equal(f.d.verdicts[1], CAA_VERDICT_CRITICAL);
    caa_decision_clear(&f.d);
}

static void unknown_without_critical_bits_ignored(void **state)
{
    (void)state;
    struct fx f = {0};
    struct caa_params p = params(NULL, "http-01");
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org");
    fx_rec(&f, 0, 2, "future", "x");
    fx_rec(&f, 0, 64, "future", "x");
    fx_rec(&f, 0, 126, "future", "x");
    eval(&f, false, &p);
    assert_int_equal(f.d.status, CAA_ALLOWED);
    for (size_t i = 1; i < 4; i++)
        assert_int_equal(f.d.verdicts[i], CAA_VERDICT_IGNORED);
    caa_decision_clear(&f.d);
}

static void critical_iodef_and_issuemail_not_denied(void **state)
{
    (void)state;
    struct fx f = {0};
    struct caa_params p = params(NULL, "http-01");
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 128, "iodef", "mailto:a@example.com");
    fx_rec(&f, 0, 129, "IODEF", "mailto:a@example.com");
    fx_rec(&f, 0, 128, "issuemail", "example.net");
    fx_rec(&f, 0, 1, "IssueMail", "example.net");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org");
    eval(&f, false, &p);
    assert_int_equal(f.d.status, CAA_ALLOWED);
    assert_int_equal(f.d.why, CAA_WHY_AUTHORIZED);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(f.d.verdicts[i], CAA_VERDICT_IGNORED);
    /* And with no issue record at all: no restriction for a non-wildcard. */
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 128, "iodef", "mailto:a@example.com");
    fx_rec(&f, 0, 128, "issuemail", "example.net");
    eval(&f, false, &p);
    assert_int_equal(f.d.status, CAA_ALLOWED);
    assert_int_equal(f.d.why, CAA_WHY_NO_ISSUE);
    caa_decision_clear(&f.d);
}

static void critical_issue_record_is_known(void **state)
{
    (void)state;
    struct fx f = {0};
    struct caa_params p = params(NULL, "http-01");
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 128, "issue", "letsencrypt.org");
    eval(&f, false, &p);
    assert_int_equal(f.d.status, CAA_ALLOWED);
    caa_decision_clear(&f.d);
}

static void non_wildcard_without_issue_allowed(void **state)
{
    (void)state;
    struct fx f = {0};
    struct caa_params p = params(NULL, "http-01");
    const char *tags[] = {"issuewild", "iodef", "future"};
    for (size_t i = 0; i < 3; i++) {
        fx_chain(&f, "example.com");
        fx_rec(&f, 0, 0, tags[i], "digicert.com");
        eval(&f, false, &p);
        assert_int_equal(f.d.status, CAA_ALLOWED);
        assert_int_equal(f.d.why, CAA_WHY_NO_ISSUE);
        assert_int_equal(f.d.at, 0);
        assert_int_equal(f.d.nverdicts, 1);
        assert_int_equal(f.d.verdicts[0], CAA_VERDICT_IGNORED);
        assert_int_equal(f.d.authorizing, SIZE_MAX);
        caa_decision_clear(&f.d);
    }
}

static void wildcard_without_issue_or_issuewild_allowed(void **state)
{
    (void)state;
    /* spec §5 rule 3 (issue 12, cause 1): a wildcard whose relevant set holds
     * neither issue nor issuewild has no candidate records, and an empty list
     * restricts nothing. */
    static const char *const tags[] = {"iodef", "issuemail", "issuevmc", "tbs", "issue\0"};
    static const size_t lens[] = {5, 9, 8, 3, 6};
    for (size_t t = 0; t < sizeof tags / sizeof tags[0]; t++) {
        struct fx f = {0};
        struct caa_params p = params(NULL, "dns-01");
        fx_chain(&f, "example.com");
        fx_rec(&f, 0, 0, tags[t], "mailto:a@example.com");
        f.l[0].records[0].tag_len = lens[t];
        eval(&f, true, &p);
        assert_int_equal(f.d.status, CAA_ALLOWED);
        assert_int_equal(f.d.why, CAA_WHY_NO_CANDIDATE);
        assert_int_equal(f.d.verdicts[0], CAA_VERDICT_IGNORED);
        caa_decision_clear(&f.d);
    }
    /* An empty set of records at the name is no set: the parent decides. */
    struct fx f = {0};
    struct caa_params p = params(NULL, "dns-01");
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "pki.goog");
    eval(&f, true, &p);
    assert_int_equal(f.d.status, CAA_DENIED);
    caa_decision_clear(&f.d);
}

static void tag_with_nul_is_unknown(void **state)
{
    (void)state;
    /* spec §5 (issue 12, cause 2): "issue\0" is six bytes, an unknown tag:
     * ignored when not critical, blocking when critical. */
    struct fx f = {0};
    struct caa_params p = params(NULL, "http-01");
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "pki.goog");
    f.l[0].records[0].tag_len = 6;
    f.l[0].records[0].tag = "issue\0";
    eval(&f, false, &p);
    assert_int_equal(f.d.status, CAA_ALLOWED);
    assert_int_equal(f.d.why, CAA_WHY_NO_ISSUE);
    caa_decision_clear(&f.d);
    f.l[0].records[0].flags = 128;
    eval(&f, false, &p);
    assert_int_equal(f.d.status, CAA_DENIED);
    assert_int_equal(f.d.why, CAA_WHY_CRITICAL_UNKNOWN);
    assert_int_equal(f.d.verdicts[0], CAA_VERDICT_CRITICAL);
    caa_decision_clear(&f.d);
    /* Beside a real issue record for this CA, the non-critical one is inert. */
    f.l[0].records[0].flags = 0;
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org");
    eval(&f, false, &p);
    assert_int_equal(f.d.status, CAA_ALLOWED);
    assert_int_equal(f.d.authorizing, 1);
    assert_int_equal(f.d.verdicts[0], CAA_VERDICT_IGNORED);
    caa_decision_clear(&f.d);
}

static void critical_issuevmc_does_not_block(void **state)
{
    (void)state;
    /* spec §5 (issue 12, cause 4): issuevmc is known, so never "unknown
     * critical"; likewise iodef and issuemail. */
    static const char *const tags[] = {"issuevmc", "IssueVMC", "iodef", "issuemail"};
    for (size_t t = 0; t < sizeof tags / sizeof tags[0]; t++) {
        struct fx f = {0};
        struct caa_params p = params(NULL, "http-01");
        fx_chain(&f, "example.com");
        fx_rec(&f, 0, 128, tags[t], "x");
        fx_rec(&f, 0, 0, "issue", "letsencrypt.org");
        eval(&f, false, &p);
        assert_int_equal(f.d.status, CAA_ALLOWED);
        assert_int_equal(f.d.verdicts[0], CAA_VERDICT_IGNORED);
        caa_decision_clear(&f.d);
    }
}

static void issuewild_governs_wildcard_when_present(void **state)
{
    (void)state;
    struct fx f = {0};
    struct caa_params p = params(NULL, "http-01");
    /* GitHub Pages shape: issue allows two CAs, issuewild only one. */
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org");
    fx_rec(&f, 0, 0, "issue", "digicert.com");
    fx_rec(&f, 0, 0, "issuewild", "digicert.com");
    eval(&f, true, &p);
    assert_int_equal(f.d.status, CAA_DENIED);
    assert_int_equal(f.d.why, CAA_WHY_NOT_AUTHORIZED);
    assert_int_equal(f.d.verdicts[0], CAA_VERDICT_IGNORED);
    assert_int_equal(f.d.verdicts[1], CAA_VERDICT_IGNORED);
    assert_int_equal(f.d.verdicts[2], CAA_VERDICT_OTHER_CA);
    /* The same set for the non-wildcard: issue governs, issuewild ignored. */
    eval(&f, false, &p);
    assert_int_equal(f.d.status, CAA_ALLOWED);
    assert_int_equal(f.d.authorizing, 0);
    assert_int_equal(f.d.verdicts[2], CAA_VERDICT_IGNORED);
    /* issuewild for us, issue for another CA: the opposite outcome. */
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "digicert.com");
    fx_rec(&f, 0, 0, "ISSUEWILD", "letsencrypt.org");
    eval(&f, true, &p);
    assert_int_equal(f.d.status, CAA_ALLOWED);
    assert_int_equal(f.d.authorizing, 1);
    eval(&f, false, &p);
    assert_int_equal(f.d.status, CAA_DENIED);
    caa_decision_clear(&f.d);
}

static void issue_only_set_governs_wildcard(void **state)
{
    (void)state;
    struct fx f = {0};
    struct caa_params p = params(NULL, "http-01");
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org");
    eval(&f, true, &p);
    assert_int_equal(f.d.status, CAA_ALLOWED);
    assert_int_equal(f.d.why, CAA_WHY_AUTHORIZED);
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "digicert.com");
    eval(&f, true, &p);
    assert_int_equal(f.d.status, CAA_DENIED);
    assert_int_equal(f.d.why, CAA_WHY_NOT_AUTHORIZED);
    caa_decision_clear(&f.d);
}

static void tag_case_insensitive(void **state)
{
    (void)state;
    struct fx f = {0};
    struct caa_params p = params(NULL, "http-01");
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "ISSUE", "letsencrypt.org");
    eval(&f, false, &p);
    assert_int_equal(f.d.status, CAA_ALLOWED);
    assert_int_equal(f.d.why, CAA_WHY_AUTHORIZED);
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "Issue", "digicert.com");
    eval(&f, false, &p);
    assert_int_equal(f.d.status, CAA_DENIED);
    caa_decision_clear(&f.d);
}

/* ------------------------------------------------- issuer, spec §1 and §6 */

static void issuer_compared_exactly(void **state)
{
    (void)state;
    ASSERT_VERDICT("letsencrypt.org", NULL, "http-01", CAA_VERDICT_AUTHORIZES);
    ASSERT_VERDICT("LetsEncrypt.org", NULL, "http-01", CAA_VERDICT_OTHER_CA);
    ASSERT_VERDICT("letsencrypt.org.", NULL, "http-01", CAA_VERDICT_OTHER_CA);
    ASSERT_VERDICT("letsencrypt.com", NULL, "http-01", CAA_VERDICT_OTHER_CA);
    ASSERT_VERDICT("digicert.com", NULL, "http-01", CAA_VERDICT_OTHER_CA);
    ASSERT_VERDICT("\"letsencrypt.org\"", NULL, "http-01", CAA_VERDICT_OTHER_CA);
}

static void issuer_trimmed(void **state)
{
    (void)state;
    ASSERT_VERDICT("  letsencrypt.org  ", NULL, "http-01", CAA_VERDICT_AUTHORIZES);
    ASSERT_VERDICT("\tletsencrypt.org\t;", NULL, "http-01", CAA_VERDICT_AUTHORIZES);
    ASSERT_VERDICT("letsencrypt.org ; ", NULL, "http-01", CAA_VERDICT_AUTHORIZES);
}

static void empty_issuer_forbids(void **state)
{
    (void)state;
    ASSERT_VERDICT(";", NULL, "http-01", CAA_VERDICT_FORBIDS);
    ASSERT_VERDICT("", NULL, "http-01", CAA_VERDICT_FORBIDS);
    ASSERT_VERDICT("  ;  ", NULL, "http-01", CAA_VERDICT_FORBIDS);
    ASSERT_VERDICT("; accounturi=https://x/1", NULL, "http-01", CAA_VERDICT_FORBIDS);
}

static void nul_issuer_matches_nothing(void **state)
{
    (void)state;
    struct fx f = {0};
    struct caa_params p = params(NULL, "http-01");
    fx_chain(&f, "example.com");
    fx_recn(&f, 0, 0, "issue", "\0", 1);
    fx_recn(&f, 0, 0, "issue", "letsencrypt.org\0", 16);
    eval(&f, false, &p);
    assert_int_equal(f.d.status, CAA_DENIED);
    assert_int_equal(f.d.verdicts[0], CAA_VERDICT_OTHER_CA);
    assert_int_equal(f.d.verdicts[1], CAA_VERDICT_OTHER_CA);
    caa_decision_clear(&f.d);
}

static void malformed_records_authorize_nothing(void **state)
{
    (void)state;
    ASSERT_VERDICT("letsencrypt.org; accounturi=https://a b/1", ACCT, "http-01",
                   CAA_VERDICT_MALFORMED);
    ASSERT_VERDICT("letsencrypt.org; account-uri=x", NULL, "http-01", CAA_VERDICT_MALFORMED);
    ASSERT_VERDICT("letsencrypt.org; acc_uri=x", NULL, "http-01", CAA_VERDICT_MALFORMED);
    ASSERT_VERDICT("letsencrypt.org; accounturi", NULL, "http-01", CAA_VERDICT_MALFORMED);
    ASSERT_VERDICT("letsencrypt.org;;", NULL, "http-01", CAA_VERDICT_MALFORMED);
    ASSERT_VERDICT("; junk", NULL, "http-01", CAA_VERDICT_MALFORMED);
    /* Unknown parameters are fine. */
    ASSERT_VERDICT("letsencrypt.org; policy=ev", NULL, "http-01", CAA_VERDICT_AUTHORIZES);
    /* An empty parameter tag passes Let's Encrypt's parser. */
    ASSERT_VERDICT("letsencrypt.org; =x", NULL, "http-01", CAA_VERDICT_AUTHORIZES);
}

static void verdict_precedence(void **state)
{
    (void)state;
    /* parse, then empty issuer, then issuer, then account, then methods */
    ASSERT_VERDICT("digicert.com; accounturi=x; validationmethods=dns-01", ACCT, "http-01",
                   CAA_VERDICT_OTHER_CA);
    ASSERT_VERDICT("letsencrypt.org; accounturi=x; validationmethods=dns-01", ACCT, "http-01",
                   CAA_VERDICT_ACCOUNT_MISMATCH);
    ASSERT_VERDICT("digicert.com; validationmethods=dns 01", ACCT, "http-01",
                   CAA_VERDICT_MALFORMED);
}

/* ------------------------------------------------------ accounturi, spec §7 */

static void accounturi_exact(void **state)
{
    (void)state;
    char v[256];
    snprintf(v, sizeof v, "letsencrypt.org; accounturi=%s", ACCT);
    ASSERT_VERDICT(v, ACCT, "http-01", CAA_VERDICT_AUTHORIZES);
    ASSERT_VERDICT(v, "https://acme-v02.api.letsencrypt.org/acme/acct/123456", "http-01",
                   CAA_VERDICT_ACCOUNT_MISMATCH);
    ASSERT_VERDICT(v, "https://acme-v02.api.letsencrypt.org/acme/acct/1234", "http-01",
                   CAA_VERDICT_ACCOUNT_MISMATCH);
    ASSERT_VERDICT("letsencrypt.org; accounturi=https://acme-v02.api.letsencrypt.org/acme/acct/"
                   "12345/",
                   ACCT, "http-01", CAA_VERDICT_ACCOUNT_MISMATCH);
    ASSERT_VERDICT("letsencrypt.org; accounturi=HTTPS://acme-v02.api.letsencrypt.org/acme/acct/"
                   "12345",
                   ACCT, "http-01", CAA_VERDICT_ACCOUNT_MISMATCH);
    ASSERT_VERDICT("letsencrypt.org; accounturi=", ACCT, "http-01", CAA_VERDICT_ACCOUNT_MISMATCH);
    /* Another CA's account URL: exact match only. */
    ASSERT_VERDICT("letsencrypt.org; accounturi=https://ca.example/acct/7",
                   "https://ca.example/acct/7", "http-01", CAA_VERDICT_AUTHORIZES);
}

static void accounturi_unknown_account_does_not_match(void **state)
{
    (void)state;
    char v[256];
    snprintf(v, sizeof v, "letsencrypt.org; accounturi=%s", ACCT);
    ASSERT_VERDICT(v, NULL, "http-01", CAA_VERDICT_ACCOUNT_MISMATCH);
    /* No accounturi: any account, known or not. */
    ASSERT_VERDICT("letsencrypt.org", NULL, "http-01", CAA_VERDICT_AUTHORIZES);
}

static void accounturi_lets_encrypt_v1_alias(void **state)
{
    (void)state;
    ASSERT_VERDICT("letsencrypt.org; accounturi=https://acme-v01.api.letsencrypt.org/acme/reg/"
                   "12345",
                   ACCT, "http-01", CAA_VERDICT_AUTHORIZES);
    ASSERT_VERDICT("letsencrypt.org; accounturi=https://acme-v01.api.letsencrypt.org/acme/reg/"
                   "1234",
                   ACCT, "http-01", CAA_VERDICT_ACCOUNT_MISMATCH);
    ASSERT_VERDICT("letsencrypt.org; accounturi=https://acme-v01.api.letsencrypt.org/acme/acct/"
                   "12345",
                   ACCT, "http-01", CAA_VERDICT_ACCOUNT_MISMATCH);
    /* Known by its v1 URL, the account matches its v2 URL too. */
    ASSERT_VERDICT("letsencrypt.org; accounturi=https://acme-v02.api.letsencrypt.org/acme/acct/"
                   "12345",
                   "https://acme-v01.api.letsencrypt.org/acme/reg/12345", "http-01",
                   CAA_VERDICT_AUTHORIZES);
    /* Production and staging do not mix. */
    ASSERT_VERDICT("letsencrypt.org; accounturi=https://acme-staging.api.letsencrypt.org/acme/"
                   "reg/12345",
                   ACCT, "http-01", CAA_VERDICT_ACCOUNT_MISMATCH);
}

static void accounturi_staging_alias(void **state)
{
    (void)state;
    const char *staging = "https://acme-staging-v02.api.letsencrypt.org/acme/acct/777";
    ASSERT_VERDICT("letsencrypt.org; accounturi=https://acme-staging.api.letsencrypt.org/acme/"
                   "reg/777",
                   staging, "http-01", CAA_VERDICT_AUTHORIZES);
    ASSERT_VERDICT("letsencrypt.org; accounturi=https://acme-staging-v02.api.letsencrypt.org/"
                   "acme/acct/777",
                   staging, "http-01", CAA_VERDICT_AUTHORIZES);
    ASSERT_VERDICT("letsencrypt.org; accounturi=https://acme-v01.api.letsencrypt.org/acme/reg/"
                   "777",
                   staging, "http-01", CAA_VERDICT_ACCOUNT_MISMATCH);
}

static void accounturi_twice_unsatisfiable(void **state)
{
    (void)state;
    /* spec §6 (issue 12, cause 6): a second accounturi makes the value
     * unsatisfiable, whichever copy is the account, and when both are. */
    char v[256];
    snprintf(v, sizeof v, "letsencrypt.org; accounturi=%s; accounturi=https://x/1", ACCT);
    ASSERT_VERDICT(v, ACCT, "http-01", CAA_VERDICT_MALFORMED);
    snprintf(v, sizeof v, "letsencrypt.org; accounturi=https://x/1; accounturi=%s", ACCT);
    ASSERT_VERDICT(v, ACCT, "http-01", CAA_VERDICT_MALFORMED);
    snprintf(v, sizeof v, "letsencrypt.org; accounturi=%s; accounturi=%s", ACCT, ACCT);
    ASSERT_VERDICT(v, ACCT, "http-01", CAA_VERDICT_MALFORMED);
    /* Tags are case-sensitive: "AccountURI" is another parameter. */
    snprintf(v, sizeof v, "letsencrypt.org; accounturi=%s; AccountURI=https://x/1", ACCT);
    ASSERT_VERDICT(v, ACCT, "http-01", CAA_VERDICT_AUTHORIZES);
}

/* ----------------------------------------------- validationmethods, spec §8 */

static void methods_match_listed(void **state)
{
    (void)state;
    ASSERT_VERDICT("letsencrypt.org; validationmethods=http-01", NULL, "http-01",
                   CAA_VERDICT_AUTHORIZES);
    ASSERT_VERDICT("letsencrypt.org; validationmethods=dns-01,http-01", NULL, "http-01",
                   CAA_VERDICT_AUTHORIZES);
    ASSERT_VERDICT("letsencrypt.org; validationmethods=tls-alpn-01", NULL, "tls-alpn-01",
                   CAA_VERDICT_AUTHORIZES);
    ASSERT_VERDICT("letsencrypt.org; validationmethods=dns-01", NULL, "http-01",
                   CAA_VERDICT_METHOD_MISMATCH);
    ASSERT_VERDICT("letsencrypt.org; validationmethods=dns-01,tls-alpn-01", NULL, "http-01",
                   CAA_VERDICT_METHOD_MISMATCH);
    /* Case matters: "HTTP-01" is a valid token but no known type. */
    ASSERT_VERDICT("letsencrypt.org; validationmethods=HTTP-01", NULL, "http-01",
                   CAA_VERDICT_METHOD_MISMATCH);
    ASSERT_VERDICT("letsencrypt.org; validationmethods=", NULL, "http-01",
                   CAA_VERDICT_METHOD_MISMATCH);
    /* dns-persist-01 (draft-ietf-acme-dns-persist) is a method like the others. */
    ASSERT_VERDICT("letsencrypt.org; validationmethods=dns-persist-01", NULL, "dns-persist-01",
                   CAA_VERDICT_AUTHORIZES);
    ASSERT_VERDICT("letsencrypt.org; validationmethods=dns-01", NULL, "dns-persist-01",
                   CAA_VERDICT_METHOD_MISMATCH);
    ASSERT_VERDICT("letsencrypt.org; validationmethods=dns-persist-01", NULL, "dns-01",
                   CAA_VERDICT_METHOD_MISMATCH);
}

static void methods_unknown_types_skipped(void **state)
{
    (void)state;
    ASSERT_VERDICT("letsencrypt.org; validationmethods=ca-specific-1,http-01", NULL, "http-01",
                   CAA_VERDICT_AUTHORIZES);
    ASSERT_VERDICT("letsencrypt.org; validationmethods=ca-specific-1", NULL, "http-01",
                   CAA_VERDICT_METHOD_MISMATCH);
    /* A method this check does not know never matches, even when listed. */
    ASSERT_VERDICT("letsencrypt.org; validationmethods=future-01", NULL, "future-01",
                   CAA_VERDICT_METHOD_MISMATCH);
}

static void methods_invalid_token_rejects_record(void **state)
{
    (void)state;
    ASSERT_VERDICT("letsencrypt.org; validationmethods=http_01,http-01", NULL, "http-01",
                   CAA_VERDICT_METHOD_MISMATCH);
    ASSERT_VERDICT("letsencrypt.org; validationmethods=dns-01,http_01,http-01", NULL, "http-01",
                   CAA_VERDICT_METHOD_MISMATCH);
    ASSERT_VERDICT("letsencrypt.org; validationmethods=,http-01", NULL, "http-01",
                   CAA_VERDICT_METHOD_MISMATCH);
    ASSERT_VERDICT("letsencrypt.org; validationmethods=dns-01,,http-01", NULL, "http-01",
                   CAA_VERDICT_METHOD_MISMATCH);
    ASSERT_VERDICT("letsencrypt.org; validationmethods=http-01/x", NULL, "http-01",
                   CAA_VERDICT_METHOD_MISMATCH);
}

static void methods_first_match_ends_the_walk(void **state)
{
    (void)state;
    /* spec §8 (issue 12, cause 5): the walk stops at the first element equal
     * to the method in use; what follows it is never read. */
    ASSERT_VERDICT("letsencrypt.org; validationmethods=http-01,http_01", NULL, "http-01",
                   CAA_VERDICT_AUTHORIZES);
    ASSERT_VERDICT("letsencrypt.org; validationmethods=http-01,", NULL, "http-01",
                   CAA_VERDICT_AUTHORIZES);
    ASSERT_VERDICT("letsencrypt.org; validationmethods=dns-01,http-01,,x/y", NULL, "http-01",
                   CAA_VERDICT_AUTHORIZES);
    /* ...but the same element before the match still rejects the record, and
     * for another method the walk reaches it. */
    ASSERT_VERDICT("letsencrypt.org; validationmethods=http-01,", NULL, "dns-01",
                   CAA_VERDICT_METHOD_MISMATCH);
    ASSERT_VERDICT("letsencrypt.org; validationmethods=http-01,http_01,dns-01", NULL, "dns-01",
                   CAA_VERDICT_METHOD_MISMATCH);
}

static void methods_twice_unsatisfiable(void **state)
{
    (void)state;
    /* spec §6 (issue 12, cause 7): validationmethods twice is unsatisfiable. */
    ASSERT_VERDICT("letsencrypt.org; validationmethods=dns-01; validationmethods=http-01", NULL,
                   "http-01", CAA_VERDICT_MALFORMED);
    ASSERT_VERDICT("letsencrypt.org; validationmethods=http-01; validationmethods=dns-01", NULL,
                   "http-01", CAA_VERDICT_MALFORMED);
    ASSERT_VERDICT("letsencrypt.org; validationmethods=http-01; validationmethods=http-01", NULL,
                   "http-01", CAA_VERDICT_MALFORMED);
}

static void methods_and_account_together(void **state)
{
    (void)state;
    char v[256];
    snprintf(v, sizeof v, "letsencrypt.org; accounturi=%s; validationmethods=dns-01", ACCT);
    ASSERT_VERDICT(v, ACCT, "dns-01", CAA_VERDICT_AUTHORIZES);
    ASSERT_VERDICT(v, ACCT, "http-01", CAA_VERDICT_METHOD_MISMATCH);
}

/* -------------------------------------------------------------- interface */

static void bad_arguments(void **state)
{
    (void)state;
    struct fx f = {0};
    struct cp_err err;
    struct caa_params p = params(NULL, "http-01");
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org");
    assert_int_equal(caa_evaluate(f.chain, f.n, false, NULL, &f.d, &err), CP_EINVAL);
    /* A failed evaluation never reads as "allowed". */
    assert_int_not_equal(f.d.status, CAA_ALLOWED);
    assert_null(f.d.verdicts);
    p.ca_identity = NULL;
    assert_int_equal(caa_evaluate(f.chain, f.n, false, &p, &f.d, &err), CP_EINVAL);
    assert_int_equal(err.code, CP_EINVAL);
    p = params(NULL, NULL);
    assert_int_equal(caa_evaluate(f.chain, f.n, false, &p, &f.d, &err), CP_EINVAL);
    p = params(NULL, "http-01");
    assert_int_equal(caa_evaluate(f.chain, f.n, false, &p, NULL, &err), CP_EINVAL);
    assert_int_equal(caa_evaluate(NULL, 2, false, &p, &f.d, &err), CP_EINVAL);
    fx_chain(&f, "example.com");
    f.chain[0] = NULL;
    assert_int_equal(caa_evaluate(f.chain, f.n, false, &p, &f.d, NULL), CP_EINVAL);
}

static void decision_clear_frees_and_zeroes(void **state)
{
    (void)state;
    struct fx f = {0};
    struct caa_params p = params(NULL, "http-01");
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org");
    eval(&f, false, &p);
    assert_non_null(f.d.verdicts);
    caa_decision_clear(&f.d);
    assert_null(f.d.verdicts);
    assert_int_equal(f.d.nverdicts, 0);
    caa_decision_clear(&f.d); /* twice is fine */
    caa_decision_clear(NULL);
}

static void verdict_names(void **state)
{
    (void)state;
    const char *seen[8];
    for (int v = CAA_VERDICT_AUTHORIZES; v <= CAA_VERDICT_IGNORED; v++) {
        seen[v] = caa_verdict_name((enum caa_verdict)v);
        assert_non_null(seen[v]);
        for (int w = 0; w < v; w++)
            assert_string_not_equal(seen[v], seen[w]);
    }
    assert_string_equal(caa_verdict_name(CAA_VERDICT_AUTHORIZES), "authorizes");
    assert_string_equal(caa_verdict_name(CAA_VERDICT_OTHER_CA), "other CA");
}

/* Spec §10: more than 7 hours since validation, or unknown, means a recheck. */
static void recheck_window(void **state)
{
    (void)state;
    const long long now = 1800000000LL;
    assert_false(caa_recheck_due(now, now));
    assert_false(caa_recheck_due(now - 3600, now));
    assert_false(caa_recheck_due(now - 7 * 3600, now)); /* exactly 7 h: not yet */
    assert_true(caa_recheck_due(now - 7 * 3600 - 1, now));
    assert_true(caa_recheck_due(now - 30 * 86400, now));
    assert_true(caa_recheck_due(-1, now));        /* unknown */
    assert_false(caa_recheck_due(now + 60, now)); /* CA clock ahead of ours */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_records_anywhere_allows),
        cmocka_unit_test(closest_rrset_is_relevant),
        cmocka_unit_test(nxdomain_and_empty_keep_climbing),
        cmocka_unit_test(first_error_before_records_fails),
        cmocka_unit_test(every_failure_kind_is_an_error),
        cmocka_unit_test(records_below_hide_error_above),
        cmocka_unit_test(several_records_are_additive),
        cmocka_unit_test(authorizing_is_the_first),
        cmocka_unit_test(critical_unknown_bit_128_denies),
        cmocka_unit_test(critical_unknown_bit_1_denies),
        cmocka_unit_test(unknown_without_critical_bits_ignored),
        cmocka_unit_test(critical_iodef_and_issuemail_not_denied),
        cmocka_unit_test(critical_issue_record_is_known),
        cmocka_unit_test(non_wildcard_without_issue_allowed),
        cmocka_unit_test(wildcard_without_issue_or_issuewild_allowed),
        cmocka_unit_test(tag_with_nul_is_unknown),
        cmocka_unit_test(critical_issuevmc_does_not_block),
        cmocka_unit_test(issuewild_governs_wildcard_when_present),
        cmocka_unit_test(issue_only_set_governs_wildcard),
        cmocka_unit_test(tag_case_insensitive),
        cmocka_unit_test(issuer_compared_exactly),
        cmocka_unit_test(issuer_trimmed),
        cmocka_unit_test(empty_issuer_forbids),
        cmocka_unit_test(nul_issuer_matches_nothing),
        cmocka_unit_test(malformed_records_authorize_nothing),
        cmocka_unit_test(verdict_precedence),
        cmocka_unit_test(accounturi_exact),
        cmocka_unit_test(accounturi_unknown_account_does_not_match),
        cmocka_unit_test(accounturi_lets_encrypt_v1_alias),
        cmocka_unit_test(accounturi_staging_alias),
        cmocka_unit_test(accounturi_twice_unsatisfiable),
        cmocka_unit_test(methods_match_listed),
        cmocka_unit_test(methods_unknown_types_skipped),
        cmocka_unit_test(methods_invalid_token_rejects_record),
        cmocka_unit_test(methods_first_match_ends_the_walk),
        cmocka_unit_test(methods_twice_unsatisfiable),
        cmocka_unit_test(methods_and_account_together),
        cmocka_unit_test(bad_arguments),
        cmocka_unit_test(decision_clear_frees_and_zeroes),
        cmocka_unit_test(verdict_names),
        cmocka_unit_test(recheck_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
