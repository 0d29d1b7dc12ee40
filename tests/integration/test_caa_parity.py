#!/usr/bin/python3
"""The causes of disagreement with Let's Encrypt's own CAA code (issue 12),
each on the real lab: Knot serves the records, Unbound resolves them, and
`certpilot caa check --json` must reach Let's Encrypt's verdict, problem
type and detail.

Records Knot will not take in presentation form (a tag holding a NUL byte)
are written in the generic RFC 3597 form (TYPE257 \\# ...), which Knot
serves as the same wire bytes.
"""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from cplab import Lab  # noqa: E402

CERTPILOT = os.environ.get("CERTPILOT", "build/certpilot")
ACCT = "https://acme-v02.api.letsencrypt.org/acme/acct/42"
NXDOMAIN_EXTRA = " - check that a DNS record exists for this domain"


def caa_rdata(flags, tag, value):
    """A CAA record in RFC 3597 generic syntax, from raw bytes."""
    rd = bytes([flags, len(tag)]) + tag + value
    return "TYPE257 \\# %d %s" % (len(rd), rd.hex())


def deny_detail(ident, name):
    return "While processing CAA for %s: CAA record for %s prevents issuance" % (ident, name)


class Parity(unittest.TestCase):
    lab = None

    @classmethod
    def setUpClass(cls):
        lab = cls.lab = Lab()
        # Cause 1: wildcards and sets with neither issue nor issuewild.
        lab.zone("onlyiodef.test", '@ CAA 0 iodef "mailto:a@onlyiodef.test"')
        lab.zone("onlymail.test", '@ CAA 0 issuemail "otherca.example"')
        lab.zone("onlyvmc.test", '@ CAA 0 issuevmc "otherca.example"')
        lab.zone("onlyunknown.test", '@ CAA 0 tbs "x"')
        lab.zone("emptytag.test", "@ " + caa_rdata(0, b"", b"x"))
        lab.zone("wildissue.test", '@ CAA 0 issue "otherca.example"')
        # Cause 2: tags are byte strings.
        lab.zone("nultag.test", "@ " + caa_rdata(0, b"issue\x00", b"otherca.example"))
        lab.zone("nulcrit.test", "@ " + caa_rdata(128, b"issue\x00", b"letsencrypt.org"))
        lab.zone("nulmix.test", """
            @ %s
            @ CAA 0 issue "otherca.example"
        """ % caa_rdata(0, b"issue\x00", b"letsencrypt.org"))
        # Cause 3: NXDOMAIN at a dotless name, also at the end of a CNAME chain.
        lab.zone("cn.test", """
            tld    CNAME nosuchtld.
            deeper CNAME gone.nosuchtld.
        """)
        # Cause 4: issuevmc is known, critical or not.
        lab.zone("critvmc.test", """
            @ CAA 128 issuevmc "otherca.example"
            @ CAA 0 issue "letsencrypt.org"
        """)
        lab.zone("critunknown.test", """
            @ CAA 128 issuevmcx "otherca.example"
            @ CAA 0 issue "letsencrypt.org"
        """)
        # Cause 5: validationmethods stops at the first match.
        lab.zone("trailingcomma.test",
                 '@ CAA 0 issue "letsencrypt.org; validationmethods=http-01,"')
        lab.zone("underscore.test",
                 '@ CAA 0 issue "letsencrypt.org; validationmethods=http-01,http_01"')
        lab.zone("badfirst.test",
                 '@ CAA 0 issue "letsencrypt.org; validationmethods=http_01,http-01"')
        # Causes 6 and 7: a parameter twice.
        lab.zone("acct2.test",
                 '@ CAA 0 issue "letsencrypt.org; accounturi=%s; accounturi=%s"' % (ACCT, ACCT))
        lab.zone("acct1.test", '@ CAA 0 issue "letsencrypt.org; accounturi=%s"' % ACCT)
        lab.zone("meth2.test", '@ CAA 0 issue "letsencrypt.org; validationmethods=http-01; '
                 'validationmethods=http-01"')
        # Cause 8: identifiers are lower-cased, and so is the detail.
        lab.zone("upper.test", '@ CAA 0 issue "otherca.example"')
        lab.start()

    @classmethod
    def tearDownClass(cls):
        if cls.lab is not None:
            cls.lab.close()

    def check(self, *args, expect):
        argv = [CERTPILOT, "caa", "check", "--json", "--resolver", self.lab.resolver,
                "--timeout", "4"] + list(args)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, expect, "exit status of %s\nstdout:\n%s\nstderr:\n%s"
                         % (" ".join(argv), proc.stdout, proc.stderr))
        doc = json.loads(proc.stdout)
        self.assertEqual(len(doc["results"]), 1)
        return doc["results"][0]

    def assert_allowed(self, result, relevant):
        self.assertEqual(result["status"], "allowed")
        self.assertEqual(result["relevant_name"], relevant)
        self.assertIsNone(result["problem"])

    def assert_denied(self, result, ident, name):
        self.assertEqual(result["status"], "denied")
        self.assertEqual(result["problem"]["type"], "urn:ietf:params:acme:error:caa")
        self.assertEqual(result["problem"]["detail"], deny_detail(ident, name))

    # -- cause 1

    def test_wildcard_without_issue_or_issuewild_is_allowed(self):
        for zone in ("onlyiodef", "onlymail", "onlyvmc", "onlyunknown", "emptytag", "nultag"):
            with self.subTest(zone=zone):
                r = self.check("--method", "dns-01", "*.%s.test" % zone, expect=0)
                self.assert_allowed(r, "%s.test" % zone)
                self.assertTrue(r["wildcard"])
                self.assertTrue(all(rec["verdict"] == "ignored" for rec in r["records"]))

    def test_wildcard_with_issue_records_is_still_judged_by_them(self):
        r = self.check("--method", "dns-01", "*.wildissue.test", expect=1)
        self.assert_denied(r, "*.wildissue.test", "wildissue.test")

    # -- cause 2

    def test_tag_with_nul_is_an_unknown_tag(self):
        r = self.check("nultag.test", expect=0)
        self.assert_allowed(r, "nultag.test")
        self.assertEqual(r["records"][0]["tag"], "issue\\000")
        self.assertEqual(r["records"][0]["verdict"], "ignored")

    def test_critical_tag_with_nul_blocks(self):
        r = self.check("nulcrit.test", expect=1)
        self.assert_denied(r, "nulcrit.test", "nulcrit.test")
        self.assertEqual(r["records"][0]["verdict"], "critical unknown tag")

    def test_tag_with_nul_never_authorizes(self):
        # Read as "issue" it would authorize letsencrypt.org: fail open.
        r = self.check("www.nulmix.test", expect=1)
        self.assert_denied(r, "www.nulmix.test", "nulmix.test")
        verdicts = sorted((rec["tag"], rec["verdict"]) for rec in r["records"])
        self.assertEqual(verdicts, [("issue", "other CA"), ("issue\\000", "ignored")])

    # -- cause 3

    def test_nxdomain_at_the_tld_is_a_dns_error(self):
        r = self.check("www.nosuchtld", expect=2)
        self.assertEqual(r["status"], "error")
        self.assertEqual(r["relevant_name"], "nosuchtld")
        self.assertEqual(r["problem"]["type"], "urn:ietf:params:acme:error:dns")
        self.assertEqual(r["problem"]["detail"],
                         "While processing CAA for www.nosuchtld: DNS problem: NXDOMAIN looking "
                         "up CAA for nosuchtld" + NXDOMAIN_EXTRA)
        lookups = {lk["name"]: lk for lk in r["lookups"]}
        self.assertEqual(lookups["www.nosuchtld"]["rcode"], "NXDOMAIN")
        self.assertEqual(lookups["www.nosuchtld"]["answer"], "records")

    def test_nxdomain_below_the_tld_is_an_empty_set(self):
        r = self.check("nothing.here.test", expect=0)
        self.assert_allowed(r, None)
        self.assertEqual(r["lookups"][0]["rcode"], "NXDOMAIN")

    def test_nxdomain_through_a_cname_into_a_dotless_name(self):
        r = self.check("tld.cn.test", expect=2)
        self.assertEqual(r["relevant_name"], "tld.cn.test")
        self.assertEqual(r["problem"]["detail"],
                         "While processing CAA for tld.cn.test: DNS problem: NXDOMAIN looking "
                         "up CAA for tld.cn.test" + NXDOMAIN_EXTRA)
        # Into a name with a dot, NXDOMAIN is an empty set and the climb goes on.
        r = self.check("deeper.cn.test", expect=0)
        self.assert_allowed(r, None)

    # -- cause 4

    def test_critical_issuevmc_does_not_block(self):
        r = self.check("critvmc.test", expect=0)
        self.assert_allowed(r, "critvmc.test")
        r = self.check("critunknown.test", expect=1)
        self.assert_denied(r, "critunknown.test", "critunknown.test")

    # -- cause 5

    def test_validationmethods_stops_at_the_first_match(self):
        for zone in ("trailingcomma", "underscore"):
            with self.subTest(zone=zone):
                r = self.check("%s.test" % zone, expect=0)
                self.assert_allowed(r, "%s.test" % zone)
                self.assertIn("in its validationmethods, which is not a method name",
                              r["warning"])
                self.assertIn('%s.test. CAA 0 issue "letsencrypt.org; validationmethods=http-01"'
                              % zone, r["warning"])
                # For dns-01 the walk reaches the bad element before any match.
                r = self.check("--method", "dns-01", "%s.test" % zone, expect=1)
                self.assert_denied(r, "%s.test" % zone, "%s.test" % zone)

    def test_malformed_element_before_the_match_denies(self):
        r = self.check("badfirst.test", expect=1)
        self.assert_denied(r, "badfirst.test", "badfirst.test")
        self.assertEqual(r["records"][0]["verdict"], "method mismatch")
        self.assertIn("gives up on the record", r["warning"])
        self.assertIn("validationmethods=http-01", r["fix"])

    def test_no_warning_for_well_formed_lists(self):
        r = self.check("--account-uri", ACCT, "acct1.test", expect=0)
        self.assertIsNone(r["warning"])

    # -- causes 6 and 7

    def test_accounturi_twice_is_unsatisfiable(self):
        r = self.check("--account-uri", ACCT, "acct2.test", expect=1)
        self.assert_denied(r, "acct2.test", "acct2.test")
        self.assertEqual(r["records"][0]["verdict"], "malformed")
        self.assertIn("repeats one given before", r["explanation"])
        self.check("--account-uri", ACCT, "acct1.test", expect=0)

    def test_validationmethods_twice_is_unsatisfiable(self):
        r = self.check("meth2.test", expect=1)
        self.assert_denied(r, "meth2.test", "meth2.test")
        self.assertEqual(r["records"][0]["verdict"], "malformed")

    # -- cause 8

    def test_detail_echoes_the_lower_case_identifier(self):
        r = self.check("WWW.Upper.TEST", expect=1)
        self.assertEqual(r["identifier"], "www.upper.test")
        self.assert_denied(r, "www.upper.test", "upper.test")
        r = self.check("*.WWW.Upper.TEST", "--method", "dns-01", expect=1)
        self.assert_denied(r, "*.www.upper.test", "upper.test")


if __name__ == "__main__":
    unittest.main()
