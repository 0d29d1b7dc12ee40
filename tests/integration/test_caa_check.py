#!/usr/bin/python3
"""`certpilot caa check` against real servers: Knot (authoritative), Unbound
(validating resolver) and the misbehaving responder, all on loopback.

Each case asserts the exit status, the JSON fields and, for refusals, the
exact problem detail the CA would return (spec §9).
"""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from cplab import Lab  # noqa: E402

CERTPILOT = os.environ.get("CERTPILOT", "build/certpilot")
LE_ACCT = "https://acme-v02.api.letsencrypt.org/acme/acct/"
LE_V1_REG = "https://acme-v01.api.letsencrypt.org/acme/reg/"
SERVFAIL_EXTRA = " - the domain's nameservers may be malfunctioning"


def caa_deny_detail(ident, name):
    return "While processing CAA for %s: CAA record for %s prevents issuance" % (ident, name)


def dns_detail(ident, what, name, extra=""):
    return ("While processing CAA for %s: DNS problem: %s looking up CAA for %s%s"
            % (ident, what, name, extra))


class CaaCheck(unittest.TestCase):
    lab = None

    @classmethod
    def setUpClass(cls):
        lab = cls.lab = Lab()
        lab.zone("allowed.test", '@ CAA 0 issue "letsencrypt.org"')
        lab.zone("other.test", """
            @    CAA 0 issue "otherca.example"
            sub  CAA 0 issue "letsencrypt.org"
        """)
        lab.zone("forbid.test", '@ CAA 0 issue ";"')
        lab.zone("empty.test", '@ CAA 0 issue ""')
        lab.zone("case.test", """
            @ CAA 0 ISSUE "LetsEncrypt.org"
            @ CAA 0 issue "letsencrypt.org."
        """)
        lab.zone("acct.test", '@ CAA 0 issue "letsencrypt.org; accounturi=%s42"' % LE_ACCT)
        lab.zone("acctv1.test", '@ CAA 0 issue "letsencrypt.org; accounturi=%s42"' % LE_V1_REG)
        lab.zone("methods.test", '@ CAA 0 issue "letsencrypt.org; validationmethods=dns-01"')
        lab.zone("malformed.test", '@ CAA 0 issue "letsencrypt.org; validationmethods dns-01"')
        lab.zone("wild.test", """
            @ CAA 0 issue "letsencrypt.org"
            @ CAA 0 issuewild "otherca.example"
        """)
        lab.zone("iodef.test", '@ CAA 0 iodef "mailto:caa@iodef.test"')
        lab.zone("crit.test", '@ CAA 128 tbs "unknown"')
        lab.zone("crit1.test", '@ CAA 1 tbs "unknown"')
        lab.zone("critmail.test", '@ CAA 128 issuemail "otherca.example"')
        # A name aliased into a hosting provider whose CAA allows only another
        # CA for wildcards (the GitHub Pages case of the field reports).
        lab.zone("site.test", "blog CNAME pages.hosting.test.")
        lab.zone("hosting.test", """
            pages CAA 0 issue "letsencrypt.org"
            pages CAA 0 issuewild "digicert.com"
        """)
        lab.zone("signed.test", '@ CAA 0 issue "letsencrypt.org"', dnssec=True)
        lab.zone("bogus.test", '@ CAA 0 issue "letsencrypt.org"', dnssec="broken")
        lab.misbehaving_zone("servfail.test", caa="servfail")
        lab.misbehaving_zone("notimp.test", caa="notimp")
        lab.misbehaving_zone("refused.test", caa="refused")
        lab.misbehaving_zone("drop.test", caa="drop")
        lab.misbehaving_zone("trunc.test", '@ CAA 0 issue "otherca.example"', caa="truncate")
        lab.start()

    @classmethod
    def tearDownClass(cls):
        if cls.lab is not None:
            cls.lab.close()

    def run_check(self, *args, resolver=None, expect=None):
        argv = [CERTPILOT, "caa", "check", "--resolver", resolver or self.lab.resolver,
                "--timeout", "4"] + list(args)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if expect is not None:
            self.assertEqual(proc.returncode, expect,
                             "exit status of %s\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(argv), proc.stdout, proc.stderr))
        return proc

    def check_json(self, *args, expect, resolver=None):
        proc = self.run_check("--json", *args, resolver=resolver, expect=expect)
        return json.loads(proc.stdout)

    def one(self, *args, expect, resolver=None):
        doc = self.check_json(*args, expect=expect, resolver=resolver)
        self.assertEqual(len(doc["results"]), 1)
        return doc["results"][0]

    def assert_denied(self, result, ident, name):
        self.assertEqual(result["status"], "denied")
        self.assertEqual(result["relevant_name"], name)
        self.assertEqual(result["problem"]["type"], "urn:ietf:params:acme:error:caa")
        self.assertEqual(result["problem"]["detail"], caa_deny_detail(ident, name))
        self.assertTrue(result["fix"])

    def verdicts(self, result):
        return [(r["tag"], r["value"], r["verdict"]) for r in result["records"]]

    # -- allowed

    def test_apex_record_for_this_ca_allows(self):
        r = self.one("allowed.test", expect=0)
        self.assertEqual(r["status"], "allowed")
        self.assertEqual(r["relevant_name"], "allowed.test")
        self.assertEqual(self.verdicts(r), [("issue", "letsencrypt.org", "authorizes")])
        self.assertIsNone(r["problem"])
        self.assertIsNone(r["fix"])

    def test_subdomain_inherits_parent_set(self):
        r = self.one("www.deep.allowed.test", expect=0)
        self.assertEqual(r["relevant_name"], "allowed.test")
        self.assertEqual([l["name"] for l in r["lookups"]],
                         ["www.deep.allowed.test", "deep.allowed.test", "allowed.test", "test"])

    def test_no_caa_anywhere_allows(self):
        # The climb reaches the TLD: "test." exists in the lab and has no CAA.
        r = self.one("nothing.signed-not.test", expect=0)
        self.assertEqual(r["status"], "allowed")
        self.assertIsNone(r["relevant_name"])
        self.assertEqual(r["records"], [])

    def test_lower_set_overrides_parent(self):
        r = self.one("sub.other.test", expect=0)
        self.assertEqual(r["relevant_name"], "sub.other.test")

    def test_dnssec_signed_zone_allows(self):
        r = self.one("www.signed.test", expect=0)
        self.assertEqual(r["relevant_name"], "signed.test")

    def test_queries_are_deduplicated(self):
        doc = self.check_json("a.allowed.test", "b.allowed.test", "allowed.test", expect=0)
        # a.allowed.test, b.allowed.test, allowed.test, test
        self.assertEqual(doc["queries"], 4)
        self.assertEqual([r["identifier"] for r in doc["results"]],
                         ["a.allowed.test", "b.allowed.test", "allowed.test"])

    def test_identifier_is_normalized(self):
        r = self.one("WWW.Allowed.Test.", expect=0)
        self.assertEqual(r["identifier"], "www.allowed.test")

    # -- denied

    def test_other_ca_denies_with_exact_detail(self):
        r = self.one("www.other.test", expect=1)
        self.assert_denied(r, "www.other.test", "other.test")
        self.assertEqual(self.verdicts(r), [("issue", "otherca.example", "other CA")])
        self.assertIn('other.test. CAA 0 issue "letsencrypt.org"', r["fix"])

    def test_semicolon_forbids_everyone(self):
        r = self.one("forbid.test", expect=1)
        self.assert_denied(r, "forbid.test", "forbid.test")
        self.assertEqual(self.verdicts(r)[0][2], "forbids all CAs")

    def test_empty_value_forbids_everyone(self):
        # c-ares 1.18's own CAA parser rejects empty values; ours must not.
        r = self.one("empty.test", expect=1)
        self.assert_denied(r, "empty.test", "empty.test")
        self.assertEqual(self.verdicts(r), [("issue", "", "forbids all CAs")])

    def test_issuer_is_case_and_dot_sensitive_tag_is_not(self):
        r = self.one("case.test", expect=1)
        self.assert_denied(r, "case.test", "case.test")
        self.assertEqual(sorted(v for _, _, v in self.verdicts(r)), ["other CA", "other CA"])

    def test_accounturi(self):
        r = self.one("--account-uri", LE_ACCT + "42", "acct.test", expect=0)
        self.assertEqual(self.verdicts(r)[0][2], "authorizes")
        r = self.one("--account-uri", LE_ACCT + "43", "acct.test", expect=1)
        self.assert_denied(r, "acct.test", "acct.test")
        self.assertEqual(self.verdicts(r)[0][2], "account mismatch")
        self.assertIn("accounturi=" + LE_ACCT + "43", r["fix"])
        # Without an account URL, a record bound to an account authorizes nothing.
        r = self.one("acct.test", expect=1)
        self.assertEqual(self.verdicts(r)[0][2], "account mismatch")

    def test_accounturi_v1_form_matches_same_account(self):
        self.one("--account-uri", LE_ACCT + "42", "acctv1.test", expect=0)
        self.one("--account-uri", LE_ACCT + "7", "acctv1.test", expect=1)

    def test_validationmethods(self):
        r = self.one("methods.test", expect=1)
        self.assert_denied(r, "methods.test", "methods.test")
        self.assertEqual(self.verdicts(r)[0][2], "method mismatch")
        self.one("--method", "dns-01", "methods.test", expect=0)

    def test_malformed_record_authorizes_nothing(self):
        r = self.one("malformed.test", expect=1)
        self.assertEqual(self.verdicts(r)[0][2], "malformed")

    def test_issuewild_blocks_only_the_wildcard(self):
        self.one("wild.test", expect=0)
        r = self.one("*.wild.test", expect=1)
        self.assert_denied(r, "*.wild.test", "wild.test")
        self.assertTrue(r["wildcard"])
        self.assertIn('wild.test. CAA 0 issuewild "letsencrypt.org"', r["fix"])
        verdicts = dict((tag, v) for tag, _, v in self.verdicts(r))
        self.assertEqual(verdicts, {"issue": "ignored", "issuewild": "other CA"})

    def test_iodef_only_set(self):
        self.one("iodef.test", expect=0)
        # spec §5 rule 3: a wildcard with neither issue nor issuewild has no
        # candidate records, and that restricts nothing.
        r = self.one("*.iodef.test", expect=0)
        self.assertEqual(r["status"], "allowed")
        self.assertEqual(r["relevant_name"], "iodef.test")

    def test_critical_unknown_tag(self):
        r = self.one("crit.test", expect=1)
        self.assert_denied(r, "crit.test", "crit.test")
        self.assertEqual(self.verdicts(r)[0][2], "critical unknown tag")
        r = self.one("crit1.test", expect=1)  # flag 1 counts as critical at Let's Encrypt
        self.assert_denied(r, "crit1.test", "crit1.test")
        # issuemail is a known tag: critical or not, it does not block issuance.
        self.one("critmail.test", expect=0)

    def test_alias_into_hosting_provider_blocks_wildcard(self):
        r = self.one("blog.site.test", expect=0)
        self.assertEqual(r["alias_target"], "pages.hosting.test")
        r = self.one("*.blog.site.test", expect=1)
        # The CA names the queried name, not the alias target.
        self.assert_denied(r, "*.blog.site.test", "blog.site.test")
        self.assertEqual(r["alias_target"], "pages.hosting.test")
        self.assertIn("pages.hosting.test", r["explanation"])

    # -- DNS failures

    def test_broken_dnssec_is_servfail(self):
        r = self.one("www.bogus.test", expect=2)
        self.assertEqual(r["status"], "error")
        self.assertEqual(r["relevant_name"], "www.bogus.test")
        self.assertEqual(r["problem"]["type"], "urn:ietf:params:acme:error:dns")
        # Unbound (ede: yes) explains its SERVFAIL with an Extended DNS Error,
        # which the CA quotes: 9 with a text when fresh, 6 from its cache.
        # test_caa_ede.py checks the whole detail against Unbound's answer.
        self.assertTrue(r["problem"]["detail"].startswith(
            "While processing CAA for www.bogus.test: DNS problem: looking up CAA for "
            "www.bogus.test: DNSSEC: "), r["problem"]["detail"])
        self.assertEqual(self.lookup(r, "www.bogus.test")["rcode"], "SERVFAIL")
        self.assertIn("DNSSEC", r["explanation"])

    def test_servfail_from_authoritative_through_resolver(self):
        r = self.one("servfail.test", expect=2)
        self.assertEqual(r["problem"]["detail"],
                         dns_detail("servfail.test", "SERVFAIL", "servfail.test", SERVFAIL_EXTRA))

    def test_notimp_through_resolver_becomes_servfail(self):
        # What the CA sees: its resolver turns the upstream NOTIMP into SERVFAIL.
        r = self.one("notimp.test", expect=2)
        self.assertEqual(self.lookup(r, "notimp.test")["rcode"], "SERVFAIL")

    def test_rcodes_straight_from_a_server(self):
        for zone, rcode in (("notimp.test", "NOTIMP"), ("refused.test", "REFUSED"),
                            ("servfail.test", "SERVFAIL")):
            with self.subTest(zone=zone):
                r = self.one("www." + zone, expect=2, resolver=self.lab.responder)
                extra = SERVFAIL_EXTRA if rcode == "SERVFAIL" else ""
                self.assertEqual(r["problem"]["detail"],
                                 dns_detail("www." + zone, rcode, "www." + zone, extra))
                self.assertEqual(self.lookup(r, "www." + zone)["answer"], "rcode")

    def test_silent_drop_times_out(self):
        proc = self.run_check("--json", "--timeout", "1", "drop.test",
                              resolver=self.lab.responder, expect=2)
        r = json.loads(proc.stdout)["results"][0]
        self.assertEqual(r["problem"]["detail"],
                         dns_detail("drop.test", "query timed out", "drop.test"))
        self.assertEqual(self.lookup(r, "drop.test")["answer"], "timeout")

    def test_tries_resend_to_a_silent_server(self):
        # A dropping server sees every attempt: --tries 3 sends drop.test three
        # times; "test", answered at once (REFUSED), is asked once.
        for tries, expected in ((1, 2), (3, 4)):
            before = self.lab.responder_stats().get("type:CAA", 0)
            self.run_check("--json", "--timeout", "1", "--tries", str(tries), "drop.test",
                           resolver=self.lab.responder, expect=2)
            after = self.lab.responder_stats().get("type:CAA", 0)
            self.assertEqual(after - before, expected, "--tries %d" % tries)

    def test_truncated_answer_is_retried_over_tcp(self):
        r = self.one("trunc.test", expect=1, resolver=self.lab.responder)
        self.assertEqual(self.verdicts(r), [("issue", "otherca.example", "other CA")])

    def test_unreachable_resolver_is_a_network_error(self):
        # A port nothing listens on: the UDP query is refused by the kernel.
        r = self.one("--timeout", "2", "allowed.test", expect=2, resolver="127.0.0.1:9")
        self.assertIn(self.lookup(r, "allowed.test")["answer"], ("network", "timeout"))

    def test_error_first_hides_records_above(self):
        # www.bogus.test fails before bogus.test's allowing record is reached.
        r = self.one("www.bogus.test", expect=2)
        self.assertEqual(r["records"], [])

    def lookup(self, result, name):
        return next(l for l in result["lookups"] if l["name"] == name)

    # -- batches and exit status

    def test_batch_exit_status_prefers_denial(self):
        doc = self.check_json("allowed.test", "www.bogus.test", "forbid.test", expect=1)
        self.assertEqual([r["status"] for r in doc["results"]], ["allowed", "error", "denied"])
        self.check_json("allowed.test", "www.bogus.test", expect=2)

    def test_human_output(self):
        proc = self.run_check("*.wild.test", "allowed.test", expect=1)
        out = proc.stdout
        self.assertIn("*.wild.test: REFUSED by the CAA record set at wild.test", out)
        self.assertIn(caa_deny_detail("*.wild.test", "wild.test"), out)
        self.assertIn('wild.test. CAA 0 issuewild "letsencrypt.org"', out)
        self.assertIn("allowed.test: allowed", out)

    # -- usage errors: exit 64, a message naming the input, no query sent

    def test_invalid_identifiers(self):
        for bad in ("", "exa mple.test", "a..test", "-a.test", "a.*.test", "**.test",
                    "x" * 64 + ".test", ".".join(["abcdefghi"] * 26), "192.0.2.1", "2001:db8::1",
                    "under_score.test"):
            with self.subTest(identifier=bad):
                proc = self.run_check("allowed.test", bad, expect=64)
                self.assertEqual(proc.stdout, "")
                self.assertIn("certpilot:", proc.stderr)
                if bad:
                    self.assertIn(bad[:20], proc.stderr)

    def test_bad_options(self):
        for args in (["--method", "http-02", "a.test"], ["--timeout", "0", "a.test"],
                     ["--timeout", "x", "a.test"], ["--ca-identity", "", "a.test"], [],
                     ["--tries", "0", "a.test"], ["--tries", "11", "a.test"],
                     ["--no-such-option", "a.test"]):
            with self.subTest(args=args):
                self.run_check(*args, expect=64)
        proc = self.run_check("a.test", resolver="not-an-ip", expect=64)
        self.assertIn("not-an-ip", proc.stderr)


if __name__ == "__main__":
    unittest.main()
