/* tests/unit/test_caa_explain.c - caa/explain.c: problem documents (spec §9), texts, fixes. */
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
    struct caa_explanation e;
};

static const char *const ACCT = "https://acme-v02.api.letsencrypt.org/acme/acct/42";

static void fx_chain(struct fx *f, const char *base)
{
    const char *names[MAXL];
    memset(f, 0, sizeof *f);
    f->n = caa_name_chain(base, names, MAXL);
    for (size_t i = 0; i < f->n; i++) {
        snprintf(f->l[i].name, sizeof f->l[i].name, "%s", names[i]);
        f->l[i].answer = CAA_ANSWER_RECORDS;
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

/* Evaluate and explain `ident` (normalized; "*." marks a wildcard). */
static void explain(struct fx *f, const char *ident, const char *account, const char *method)
{
    struct caa_params p = {
        .ca_identity = "letsencrypt.org", .account_uri = account, .method = method};
    struct cp_err err;
    bool wildcard = strncmp(ident, "*.", 2) == 0;
    cp_err_clear(&err);
    if (caa_evaluate(f->chain, f->n, wildcard, &p, &f->d, &err) != CP_OK)
        fail_msg("caa_evaluate: %s", err.msg);
    if (caa_explain(ident, f->chain, f->n, &p, &f->d, &f->e, &err) != CP_OK)
        fail_msg("caa_explain: %s", err.msg);
    assert_non_null(f->e.text);
    /* Network bytes are escaped: no control character but the line breaks. */
    for (const char *c = f->e.text; *c != '\0'; c++)
        assert_true(*c == '\n' || ((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f));
    if (f->d.status == CAA_ALLOWED) {
        assert_null(f->e.problem_type);
        assert_null(f->e.problem_detail);
        assert_null(f->e.fix);
    } else {
        assert_non_null(f->e.problem_type);
        assert_non_null(f->e.problem_detail);
        assert_non_null(f->e.fix);
    }
}

static void done(struct fx *f)
{
    caa_explanation_clear(&f->e);
    caa_decision_clear(&f->d);
}

static void has(const char *haystack, const char *needle)
{
    assert_non_null(haystack);
    if (strstr(haystack, needle) == NULL)
        fail_msg("expected \"%s\" in:\n%s", needle, haystack);
}

static void lacks(const char *haystack, const char *needle)
{
    if (haystack != NULL && strstr(haystack, needle) != NULL)
        fail_msg("did not expect \"%s\" in:\n%s", needle, haystack);
}

/* ------------------------------------------------------ problem documents */

static void caa_denial_detail_exact(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "www.example.com");
    fx_rec(&f, 1, 0, "issue", "digicert.com");
    explain(&f, "www.example.com", NULL, "http-01");
    assert_string_equal(f.e.problem_type, "urn:ietf:params:acme:error:caa");
    assert_string_equal(f.e.problem_detail, "While processing CAA for www.example.com: CAA record "
                                            "for example.com prevents issuance");
    done(&f);
}

static void caa_denial_detail_keeps_wildcard(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issuewild", ";");
    explain(&f, "*.example.com", NULL, "dns-01");
    assert_string_equal(f.e.problem_detail, "While processing CAA for *.example.com: CAA record "
                                            "for example.com prevents issuance");
    done(&f);
}

static void servfail_detail_with_extra(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "a.example.com");
    fx_fail(&f, 1, CAA_ANSWER_RCODE, 2);
    explain(&f, "a.example.com", NULL, "http-01");
    assert_int_equal(f.d.status, CAA_ERROR);
    assert_string_equal(f.e.problem_type, "urn:ietf:params:acme:error:dns");
    assert_string_equal(f.e.problem_detail,
                        "While processing CAA for a.example.com: DNS problem: SERVFAIL looking up "
                        "CAA for example.com - the domain's nameservers may be malfunctioning");
    has(f.e.text, "DNSSEC");
    has(f.e.text, "PowerDNS");
    has(f.e.text, "domainmetadata");
    has(f.e.text, "NOTIMP");
    has(f.e.text, "example.com is a parent of a.example.com");
    has(f.e.fix, "dnsviz");
    has(f.e.fix, "dig CAA example.com");
    has(f.e.fix, "example.com. CAA 0 issue \"letsencrypt.org\"");
    done(&f);
}

static void notimp_detail(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "example.com");
    fx_fail(&f, 0, CAA_ANSWER_RCODE, 4);
    explain(&f, "example.com", NULL, "http-01");
    assert_string_equal(f.e.problem_detail, "While processing CAA for example.com: DNS problem: "
                                            "NOTIMP looking up CAA for example.com");
    has(f.e.text, "RFC 1035");
    has(f.e.fix, "DNS provider");
    done(&f);
}

static void refused_detail(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "example.com");
    fx_fail(&f, 0, CAA_ANSWER_RCODE, 5);
    explain(&f, "*.example.com", NULL, "dns-01");
    assert_string_equal(f.e.problem_detail, "While processing CAA for *.example.com: DNS problem: "
                                            "REFUSED looking up CAA for example.com");
    has(f.e.text, "RFC 1035");
    has(f.e.fix, "upgrade");
    done(&f);
}

static void other_rcodes_detail(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "example.com");
    fx_fail(&f, 0, CAA_ANSWER_RCODE, 1);
    explain(&f, "example.com", NULL, "http-01");
    assert_string_equal(f.e.problem_detail, "While processing CAA for example.com: DNS problem: "
                                            "FORMERR looking up CAA for example.com");
    done(&f);
    fx_chain(&f, "example.com");
    fx_fail(&f, 0, CAA_ANSWER_RCODE, 12);
    explain(&f, "example.com", NULL, "http-01");
    assert_string_equal(f.e.problem_detail, "While processing CAA for example.com: DNS problem: "
                                            "RCODE12 looking up CAA for example.com");
    done(&f);
}

static void timeout_detail(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "example.com");
    fx_fail(&f, 1, CAA_ANSWER_TIMEOUT, -1);
    explain(&f, "example.com", NULL, "http-01");
    assert_string_equal(f.e.problem_detail, "While processing CAA for example.com: DNS problem: "
                                            "query timed out looking up CAA for com");
    has(f.e.text, "firewall");
    has(f.e.fix, "firewall");
    done(&f);
}

static void network_detail(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "example.com");
    fx_fail(&f, 0, CAA_ANSWER_NETWORK, -1);
    explain(&f, "example.com", NULL, "http-01");
    assert_string_equal(f.e.problem_detail, "While processing CAA for example.com: DNS problem: "
                                            "networking error looking up CAA for example.com");
    has(f.e.text, "resolver");
    has(f.e.fix, "resolv.conf");
    lacks(f.e.problem_detail, "malfunctioning");
    done(&f);
}

static void dns_error_behind_alias_names_target(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "www.example.com");
    snprintf(f.l[0].target, sizeof f.l[0].target, "edge.cdn.example.net");
    fx_fail(&f, 0, CAA_ANSWER_RCODE, 2);
    explain(&f, "www.example.com", NULL, "http-01");
    /* The CA names the queried name, not the alias target. */
    has(f.e.problem_detail, "looking up CAA for www.example.com - ");
    has(f.e.text, "alias (CNAME) of edge.cdn.example.net");
    has(f.e.fix, "edge.cdn.example.net");
    done(&f);
}

/* ------------------------------------------- Extended DNS Errors (spec §10) */

static void fx_ede(struct fx *f, size_t at, unsigned code, const char *text)
{
    f->l[at].has_ede = true;
    f->l[at].ede_code = code;
    snprintf(f->l[at].ede_text, sizeof f->l[at].ede_text, "%s", text);
}

static void ede_detail_with_text(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "www.example.com");
    fx_fail(&f, 0, CAA_ANSWER_RCODE, 2);
    fx_ede(&f, 0, 1, "no supported DNSKEY algorithm for example.com.");
    explain(&f, "*.www.example.com", NULL, "dns-01");
    assert_string_equal(f.e.problem_type, "urn:ietf:params:acme:error:dns");
    assert_string_equal(f.e.problem_detail,
                        "While processing CAA for *.www.example.com: DNS problem: looking up CAA "
                        "for www.example.com: DNSSEC: Unsupported DNSKEY Algorithm: no supported "
                        "DNSKEY algorithm for example.com.");
    lacks(f.e.problem_detail, "SERVFAIL");
    has(f.e.text, "the resolver answered SERVFAIL");
    has(f.e.text, "Extended DNS Error (RFC 8914) says: DNSSEC: Unsupported DNSKEY Algorithm: "
                  "\"no supported DNSKEY algorithm for example.com.\"");
    done(&f);
}

static void ede_detail_without_text(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "example.com");
    fx_fail(&f, 0, CAA_ANSWER_RCODE, 2);
    fx_ede(&f, 0, 6, "");
    explain(&f, "example.com", NULL, "http-01");
    assert_string_equal(f.e.problem_detail, "While processing CAA for example.com: DNS problem: "
                                            "looking up CAA for example.com: DNSSEC: Bogus");
    has(f.e.text, "says: DNSSEC: Bogus.");
    done(&f);
}

static void ede_unknown_code(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "example.com");
    fx_fail(&f, 0, CAA_ANSWER_RCODE, 5);
    fx_ede(&f, 0, 1337, "mysterious");
    explain(&f, "example.com", NULL, "http-01");
    assert_string_equal(f.e.problem_detail,
                        "While processing CAA for example.com: DNS problem: looking up CAA for "
                        "example.com: Unknown Extended DNS Error code 1337: mysterious");
    char buf[64];
    assert_string_equal(caa_ede_summary(24, buf, sizeof buf), "Invalid Data");
    assert_string_equal(caa_ede_summary(25, buf, sizeof buf), "Unknown Extended DNS Error code 25");
    assert_string_equal(caa_ede_summary(65535, buf, sizeof buf),
                        "Unknown Extended DNS Error code 65535");
    done(&f);
}

static void ede_text_escaped_in_explanation_exact_in_detail(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "example.com");
    fx_fail(&f, 0, CAA_ANSWER_RCODE, 2);
    fx_ede(&f, 0, 0, "caf\xc3\xa9\n\x1b[31m");
    explain(&f, "example.com", NULL, "http-01"); /* checks: no raw byte in the text */
    assert_string_equal(f.e.problem_detail, "While processing CAA for example.com: DNS problem: "
                                            "looking up CAA for example.com: Other: caf\xc3\xa9\n"
                                            "\x1b[31m");
    has(f.e.text, "Other: \"caf\\195\\169\\010\\027[31m\"");
    done(&f);
}

static void nxdomain_at_tld(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "example.invalidtld");
    fx_fail(&f, 1, CAA_ANSWER_RCODE, 3);
    explain(&f, "example.invalidtld", NULL, "http-01");
    assert_string_equal(f.e.problem_detail,
                        "While processing CAA for example.invalidtld: DNS problem: NXDOMAIN "
                        "looking up CAA for invalidtld - check that a DNS record exists for this "
                        "domain");
    has(f.e.text, "top-level domain");
    done(&f);

    fx_chain(&f, "example.invalidtld");
    fx_fail(&f, 1, CAA_ANSWER_RCODE, 3);
    fx_ede(&f, 1, 6, "proof of non-existence of invalidtld. NSEC");
    explain(&f, "example.invalidtld", NULL, "http-01");
    assert_string_equal(f.e.problem_detail,
                        "While processing CAA for example.invalidtld: DNS problem: looking up CAA "
                        "for invalidtld: DNSSEC: Bogus: proof of non-existence of invalidtld. "
                        "NSEC");
    has(f.e.text, "top-level domain");
    done(&f);
}

static void ede_ignored_unless_rcode_failure(void **state)
{
    (void)state;
    struct fx f;
    /* A NOERROR answer with an EDE (e.g. 3 Stale Answer) is still a set. */
    fx_chain(&f, "example.com");
    fx_ede(&f, 0, 3, "stale");
    fx_rec(&f, 0, 0, "issue", "digicert.com");
    explain(&f, "example.com", NULL, "http-01");
    assert_string_equal(f.e.problem_detail, "While processing CAA for example.com: CAA record "
                                            "for example.com prevents issuance");
    lacks(f.e.text, "Extended DNS Error");
    done(&f);
    /* A time-out never carries one, whatever the fields say. */
    fx_chain(&f, "example.com");
    fx_fail(&f, 0, CAA_ANSWER_TIMEOUT, -1);
    fx_ede(&f, 0, 22, "x");
    explain(&f, "example.com", NULL, "http-01");
    assert_string_equal(f.e.problem_detail, "While processing CAA for example.com: DNS problem: "
                                            "query timed out looking up CAA for example.com");
    done(&f);
}

/* ------------------------------------------------------------------- fixes */

static void fix_has_accounturi_when_given(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "digicert.com");
    explain(&f, "example.com", ACCT, "http-01");
    has(f.e.fix, "example.com. CAA 0 issue \"letsencrypt.org; "
                 "accounturi=https://acme-v02.api.letsencrypt.org/acme/acct/42\"");
    done(&f);
    explain(&f, "example.com", NULL, "http-01");
    has(f.e.fix, "example.com. CAA 0 issue \"letsencrypt.org\"");
    lacks(f.e.fix, "accounturi");
    done(&f);
}

static void fix_at_parent_and_override_at_base(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "www.example.com");
    fx_rec(&f, 1, 0, "issue", "digicert.com");
    explain(&f, "www.example.com", NULL, "http-01");
    has(f.e.text, "www.example.com has no CAA records of its own");
    has(f.e.fix, "example.com. CAA 0 issue \"letsencrypt.org\"");
    has(f.e.fix, "below it");
    has(f.e.fix, "www.example.com. CAA 0 issue \"letsencrypt.org\"");
    has(f.e.fix, "instead");
    done(&f);
    /* Records at the name itself: no override to suggest. */
    fx_chain(&f, "www.example.com");
    fx_rec(&f, 0, 0, "issue", "digicert.com");
    explain(&f, "www.example.com", NULL, "http-01");
    lacks(f.e.fix, "instead");
    done(&f);
}

static void wildcard_fix_uses_issuewild_when_it_governs(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org");
    fx_rec(&f, 0, 0, "issuewild", "digicert.com");
    explain(&f, "*.example.com", ACCT, "dns-01");
    has(f.e.text, "issuewild");
    has(f.e.fix, "example.com. CAA 0 issuewild \"letsencrypt.org; accounturi=" /* ... */);
    done(&f);
}

static void wildcard_without_candidates_allowed(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "iodef", "mailto:security@example.com");
    explain(&f, "*.example.com", NULL, "dns-01");
    assert_int_equal(f.d.status, CAA_ALLOWED);
    assert_int_equal(f.d.why, CAA_WHY_NO_CANDIDATE);
    has(f.e.text, "hold neither");
    has(f.e.text, "do not restrict issuance for *.example.com");
    assert_null(f.e.problem_detail);
    assert_null(f.e.fix);
    assert_null(f.e.warning);
    done(&f);
}

static void methods_warning_after_match(void **state)
{
    (void)state;
    struct fx f;
    /* Allowed at Let's Encrypt (the walk stops at http-01), but another CA
     * may reject the record: a warning with the record corrected. */
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org; validationmethods=http-01,http_01,");
    explain(&f, "example.com", NULL, "http-01");
    assert_int_equal(f.d.status, CAA_ALLOWED);
    has(f.e.warning, "\"http_01\" in its validationmethods");
    has(f.e.warning, "stops at http-01, so it accepts the record for http-01");
    has(f.e.warning, "example.com. CAA 0 issue \"letsencrypt.org; validationmethods=http-01\"");
    lacks(f.e.warning, "http-01,http-01");
    done(&f);
    /* Denied for dns-01 because the walk reaches the bad element first. */
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org; validationmethods=http-01,x/y,dns-01");
    explain(&f, "example.com", NULL, "dns-01");
    assert_int_equal(f.d.status, CAA_DENIED);
    has(f.e.warning, "\"x/y\"");
    has(f.e.warning, "gives up on the record");
    has(f.e.warning, "\"letsencrypt.org; validationmethods=http-01,dns-01\"");
    has(f.e.fix, "validationmethods=http-01,dns-01");
    done(&f);
    /* Nothing to say about well-formed lists. */
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org; validationmethods=dns-01,http-01");
    explain(&f, "example.com", NULL, "http-01");
    assert_null(f.e.warning);
    done(&f);
}

static void duplicate_parameter_explained(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org; accounturi=x; accounturi=x");
    explain(&f, "example.com", "x", "http-01");
    assert_int_equal(f.d.status, CAA_DENIED);
    has(f.e.text, "is malformed");
    has(f.e.text, "the parameter \"accounturi=x\" repeats one given before");
    done(&f);
}

static void wildcard_fix_issue_when_only_issue(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "digicert.com");
    explain(&f, "*.example.com", NULL, "dns-01");
    has(f.e.text, "no issuewild record");
    has(f.e.fix, "example.com. CAA 0 issue \"letsencrypt.org\"");
    lacks(f.e.fix, "issuewild \"");
    done(&f);
}

static void github_pages_alias(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "oops.example.cn");
    snprintf(f.l[0].target, sizeof f.l[0].target, "oops.github.io");
    fx_rec(&f, 0, 0, "issue", "digicert.com");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org");
    fx_rec(&f, 0, 0, "issuewild", "digicert.com");
    explain(&f, "*.oops.example.cn", NULL, "dns-01");
    assert_int_equal(f.d.status, CAA_DENIED);
    /* The CA names the queried name. */
    assert_string_equal(f.e.problem_detail, "While processing CAA for *.oops.example.cn: CAA "
                                            "record for oops.example.cn prevents issuance");
    has(f.e.text, "oops.example.cn is an alias (CNAME) of oops.github.io");
    has(f.e.text, "0 issuewild \"digicert.com\"");
    has(f.e.fix, "operator of oops.github.io");
    has(f.e.fix, "oops.github.io. CAA 0 issuewild \"letsencrypt.org\"");
    has(f.e.fix, "A/AAAA");
    done(&f);
    /* The same alias for the non-wildcard name: allowed, and the text says where from. */
    explain(&f, "oops.example.cn", NULL, "dns-01");
    assert_int_equal(f.d.status, CAA_ALLOWED);
    has(f.e.text, "alias (CNAME) of oops.github.io");
    done(&f);
}

static void method_mismatch_fix_adds_method(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org; validationmethods=dns-01");
    explain(&f, "example.com", NULL, "http-01");
    has(f.e.text, "\"dns-01\"");
    has(f.e.text, "http-01");
    has(f.e.fix, "example.com. CAA 0 issue \"letsencrypt.org; validationmethods=dns-01\"");
    has(f.e.fix, "example.com. CAA 0 issue \"letsencrypt.org; validationmethods=dns-01,http-01\"");
    done(&f);
}

static void method_invalid_token_explained_and_dropped(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org; validationmethods=http_01; accounturi=x");
    explain(&f, "example.com", "x", "http-01");
    has(f.e.text, "gives up at the element \"http_01\", which is not a method name");
    has(f.e.fix, "\"letsencrypt.org; validationmethods=http-01; accounturi=x\"");
    done(&f);
}

static void critical_fix_clears_flags(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org");
    fx_rec(&f, 0, 128, "tbs", "Unknown");
    explain(&f, "example.com", NULL, "http-01");
    has(f.e.text, "128 tbs \"Unknown\"");
    has(f.e.text, "critical");
    has(f.e.fix, "example.com. CAA 0 tbs \"Unknown\"");
    /* The issue record already authorizes: nothing else to add. */
    lacks(f.e.fix, "still");
    done(&f);
    /* Flag value 1, and no authorizing record behind it. */
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 1, "future", "x");
    fx_rec(&f, 0, 0, "issue", "digicert.com");
    explain(&f, "example.com", NULL, "http-01");
    has(f.e.text, "flag value 1");
    has(f.e.fix, "example.com. CAA 0 future \"x\"");
    has(f.e.fix, "still");
    has(f.e.fix, "example.com. CAA 0 issue \"letsencrypt.org\"");
    done(&f);
}

/* ------------------------------------------------------------------- texts */

static void account_mismatch_shows_both(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue",
           "letsencrypt.org; accounturi=https://acme-v02.api.letsencrypt.org/acme/acct/7");
    explain(&f, "example.com", ACCT, "http-01");
    has(f.e.text, "\"https://acme-v02.api.letsencrypt.org/acme/acct/7\"");
    has(f.e.text, ACCT);
    done(&f);
    /* Unknown account: say so rather than call it another account's. */
    explain(&f, "example.com", NULL, "http-01");
    has(f.e.text, "not told which account");
    done(&f);
}

static void malformed_reason_given(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org; accounturi=https://a b/1");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org; account_uri=x");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org; accounturi");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org;;");
    explain(&f, "example.com", NULL, "http-01");
    has(f.e.text, "\"accounturi=https://a b/1\" has a blank in its value");
    has(f.e.text, "\"account_uri=x\" has \"_\" in its tag");
    has(f.e.text, "\"accounturi\" is not of the form tag=value");
    has(f.e.text, "a ';' too many");
    has(f.e.text, "malformed");
    done(&f);
}

static void other_ca_hints(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "LetsEncrypt.org");
    fx_rec(&f, 0, 0, "issue", "letsencrypt.org.");
    fx_recn(&f, 0, 0, "issue", "\0", 1);
    fx_rec(&f, 0, 0, "issue", ";");
    fx_rec(&f, 0, 0, "issue", "digicert.com\n");
    explain(&f, "example.com", NULL, "http-01");
    has(f.e.text, "\"LetsEncrypt.org\"");
    has(f.e.text, "letter case");
    has(f.e.text, "trailing dot");
    has(f.e.text, "0 issue \"\\000\"");
    has(f.e.text, "placeholder");
    has(f.e.text, "forbids issuance by every CA");
    has(f.e.text, "0 issue \"digicert.com\\010\"");
    done(&f);
}

static void allowed_texts(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "www.example.com");
    explain(&f, "www.example.com", NULL, "http-01");
    has(f.e.text, "No CAA record exists at www.example.com or at any parent up to com");
    done(&f);

    fx_chain(&f, "www.example.com");
    fx_rec(&f, 1, 0, "issue", "digicert.com");
    fx_rec(&f, 1, 0, "issue", "letsencrypt.org");
    explain(&f, "www.example.com", NULL, "http-01");
    has(f.e.text, "0 issue \"letsencrypt.org\" at example.com authorizes letsencrypt.org");
    done(&f);

    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issuewild", "digicert.com");
    explain(&f, "example.com", NULL, "http-01");
    has(f.e.text, "no issue record");
    done(&f);
}

/* --------------------------------------------------------------- interface */

static void mismatched_decision_rejected(void **state)
{
    (void)state;
    struct fx f;
    struct caa_params p = {"letsencrypt.org", NULL, "http-01"};
    struct cp_err err;
    fx_chain(&f, "example.com");
    fx_rec(&f, 0, 0, "issue", "digicert.com");
    explain(&f, "example.com", NULL, "http-01");
    caa_explanation_clear(&f.e);
    /* A decision pointing past the chain, or at a set of another size. */
    f.d.at = 5;
    assert_int_equal(caa_explain("example.com", f.chain, f.n, &p, &f.d, &f.e, &err), CP_EINVAL);
    assert_null(f.e.text);
    f.d.at = 0;
    f.l[0].nrecords = 0;
    assert_int_equal(caa_explain("example.com", f.chain, f.n, &p, &f.d, &f.e, &err), CP_EINVAL);
    f.l[0].nrecords = 1;
    assert_int_equal(caa_explain(NULL, f.chain, f.n, &p, &f.d, &f.e, &err), CP_EINVAL);
    assert_int_equal(caa_explain("example.com", f.chain, f.n, NULL, &f.d, &f.e, &err), CP_EINVAL);
    assert_int_equal(caa_explain("example.com", f.chain, f.n, &p, NULL, &f.e, &err), CP_EINVAL);
    assert_int_equal(caa_explain("example.com", f.chain, f.n, &p, &f.d, NULL, NULL), CP_EINVAL);
    done(&f);
}

static void explanation_clear_zeroes(void **state)
{
    (void)state;
    struct fx f;
    fx_chain(&f, "example.com");
    fx_fail(&f, 0, CAA_ANSWER_TIMEOUT, -1);
    explain(&f, "example.com", NULL, "http-01");
    caa_explanation_clear(&f.e);
    assert_null(f.e.text);
    assert_null(f.e.fix);
    assert_null(f.e.problem_type);
    assert_null(f.e.problem_detail);
    caa_explanation_clear(&f.e);
    caa_explanation_clear(NULL);
    done(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(caa_denial_detail_exact),
        cmocka_unit_test(caa_denial_detail_keeps_wildcard),
        cmocka_unit_test(servfail_detail_with_extra),
        cmocka_unit_test(notimp_detail),
        cmocka_unit_test(refused_detail),
        cmocka_unit_test(other_rcodes_detail),
        cmocka_unit_test(timeout_detail),
        cmocka_unit_test(network_detail),
        cmocka_unit_test(dns_error_behind_alias_names_target),
        cmocka_unit_test(ede_detail_with_text),
        cmocka_unit_test(ede_detail_without_text),
        cmocka_unit_test(ede_unknown_code),
        cmocka_unit_test(ede_text_escaped_in_explanation_exact_in_detail),
        cmocka_unit_test(nxdomain_at_tld),
        cmocka_unit_test(ede_ignored_unless_rcode_failure),
        cmocka_unit_test(fix_has_accounturi_when_given),
        cmocka_unit_test(fix_at_parent_and_override_at_base),
        cmocka_unit_test(wildcard_fix_uses_issuewild_when_it_governs),
        cmocka_unit_test(wildcard_without_candidates_allowed),
        cmocka_unit_test(methods_warning_after_match),
        cmocka_unit_test(duplicate_parameter_explained),
        cmocka_unit_test(wildcard_fix_issue_when_only_issue),
        cmocka_unit_test(github_pages_alias),
        cmocka_unit_test(method_mismatch_fix_adds_method),
        cmocka_unit_test(method_invalid_token_explained_and_dropped),
        cmocka_unit_test(critical_fix_clears_flags),
        cmocka_unit_test(account_mismatch_shows_both),
        cmocka_unit_test(malformed_reason_given),
        cmocka_unit_test(other_ca_hints),
        cmocka_unit_test(allowed_texts),
        cmocka_unit_test(mismatched_decision_rejected),
        cmocka_unit_test(explanation_clear_zeroes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
