#!/usr/bin/python3
"""Large CAA RRsets: a truncated UDP answer is followed over TCP, and the whole
set is judged, as Let's Encrypt's resolver (DNS over HTTPS) sees it (spec §3).

Through Unbound (the set served by Knot) and with the responder as the
resolver: the verdict and every record of a ~3.5 kB set, the TCP query in
the responder's counters, UDP answers that fit in EDNS's 1232 octets taken
as they are, and the failures (a set too large even for TCP, TCP refused)
reported as DNS errors of that name, never as "no records".
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
ACCOUNT = LE_ACCT + "4242"
OTHERS = 30  # records for other CAs in a large set


def other_records(count, owner):
    """`count` issue records for other CAs, each with a long accounturi."""
    return ['%s CAA 0 issue "ca%02d.example; accounturi=https://acme.ca%02d.example/acme/'
            'account/%s"' % (owner, k, k, "%02d" % k * 30) for k in range(count)]


def large_set(owner, authorizes):
    """A ~3.5 kB RRset: OTHERS records for other CAs plus one for Let's Encrypt,
    for the test's account and dns-01 when `authorizes`, else for another
    account (so that nothing in it authorizes the test's order)."""
    account = ACCOUNT if authorizes else LE_ACCT + "999"
    le = ('%s CAA 0 issue "letsencrypt.org; accounturi=%s; validationmethods=dns-01"'
          % (owner, account))
    records = other_records(OTHERS, owner)
    records.insert(OTHERS // 2, le)  # not first, not last
    return records


def deny_detail(ident, name):
    return "While processing CAA for %s: CAA record for %s prevents issuance" % (ident, name)


def dns_detail(ident, what, name):
    return ("While processing CAA for %s: DNS problem: %s looking up CAA for %s"
            % (ident, what, name))


class CaaLarge(unittest.TestCase):
    lab = None

    @classmethod
    def setUpClass(cls):
        lab = cls.lab = Lab()
        try:
            # The TLD answers NOERROR/empty from the responder, so that a set
            # wrongly read as empty would climb to it and come out allowed.
            lab.misbehaving_zone("test")
            lab.zone("large.test", "\n".join(large_set("ok", True) + large_set("no", False)))
            lab.misbehaving_zone("trunc.test", "\n".join(
                large_set("ok", True) + large_set("no", False)), caa="truncate")
            # No rule: the responder truncates what exceeds the query's EDNS size.
            lab.misbehaving_zone("plain.test", "\n".join(
                large_set("big", True) + other_records(6, "mid")))
            # More than 65535 octets of CAA records: too large even for TCP.
            lab.misbehaving_zone("huge.test", "\n".join(
                other_records(1, "@") + ['@ CAA 0 issue "letsencrypt.org; x%03d=%s"'
                                         % (k, "y" * 230) for k in range(300)]))
            lab.misbehaving_zone("notcp.test", "\n".join(large_set("@", True)), caa="tcpfail")
            lab.start()
        except BaseException:
            lab.close()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.lab is not None:
            cls.lab.close()

    def check(self, ident, resolver, expect, *extra):
        argv = [CERTPILOT, "caa", "check", "--json", "--resolver", resolver, "--timeout", "4",
                "--account-uri", ACCOUNT, "--method", "dns-01"] + list(extra) + [ident]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, expect, "%s\nstdout:\n%s\nstderr:\n%s"
                         % (" ".join(argv), proc.stdout, proc.stderr))
        results = json.loads(proc.stdout)["results"]
        self.assertEqual(len(results), 1)
        return results[0]

    def lookup(self, result, name):
        return next(l for l in result["lookups"] if l["name"] == name)

    def assert_whole_set(self, result, name):
        self.assertEqual(self.lookup(result, name)["records"], OTHERS + 1)
        self.assertEqual(len(result["records"]), OTHERS + 1)
        verdicts = [r["verdict"] for r in result["records"]]
        self.assertEqual(verdicts.count("other CA"), OTHERS)
        return verdicts

    def tcp_queries(self, before):
        return self.lab.responder_stats().get("tcp", 0) - before.get("tcp", 0)

    # -- through Unbound, the set served by Knot

    def test_set_is_larger_than_a_udp_answer(self):
        full = self.lab.query("ok.large.test", "CAA", tcp=True)
        self.assertEqual(len(full.rr), OTHERS + 1)
        self.assertGreater(len(full.pack()), 3000)

    def test_large_set_through_unbound_allows(self):
        r = self.check("ok.large.test", self.lab.resolver, 0)
        self.assertEqual(r["status"], "allowed")
        self.assertEqual(r["relevant_name"], "ok.large.test")
        verdicts = self.assert_whole_set(r, "ok.large.test")
        self.assertEqual(verdicts.count("authorizes"), 1)

    def test_large_set_through_unbound_denies(self):
        r = self.check("no.large.test", self.lab.resolver, 1)
        self.assertEqual(r["status"], "denied")
        self.assertEqual(r["relevant_name"], "no.large.test")
        self.assertEqual(r["problem"]["type"], "urn:ietf:params:acme:error:caa")
        self.assertEqual(r["problem"]["detail"], deny_detail("no.large.test", "no.large.test"))
        verdicts = self.assert_whole_set(r, "no.large.test")
        self.assertNotIn("authorizes", verdicts)

    # -- the responder as the resolver

    def test_truncated_udp_answer_is_asked_again_over_tcp(self):
        for ident, expect, status in (("ok.trunc.test", 0, "allowed"),
                                      ("no.trunc.test", 1, "denied")):
            before = self.lab.responder_stats()
            r = self.check(ident, self.lab.responder, expect)
            self.assertEqual(r["status"], status)
            self.assertEqual(r["relevant_name"], ident)
            self.assert_whole_set(r, ident)
            self.assertGreaterEqual(self.tcp_queries(before), 1, ident)
        self.assertEqual(r["problem"]["detail"], deny_detail("no.trunc.test", "no.trunc.test"))

    def test_answer_over_edns_size_goes_over_tcp(self):
        before = self.lab.responder_stats()
        r = self.check("big.plain.test", self.lab.responder, 0)
        self.assertEqual(r["status"], "allowed")
        self.assert_whole_set(r, "big.plain.test")
        self.assertGreaterEqual(self.tcp_queries(before), 1)

    def test_answer_within_edns_size_stays_on_udp(self):
        # Six records, about 800 octets: more than plain DNS's 512, less than
        # the 1232 the query offers; c-ares must take it without TCP.
        full = self.lab.query("mid.plain.test", "CAA", server=self.lab.responder, tcp=True)
        self.assertTrue(512 < len(full.pack()) < 1232, len(full.pack()))
        before = self.lab.responder_stats()
        r = self.check("mid.plain.test", self.lab.responder, 1)
        self.assertEqual(r["status"], "denied")
        self.assertEqual(self.lookup(r, "mid.plain.test")["records"], 6)
        self.assertEqual(self.tcp_queries(before), 0)

    def test_set_too_large_for_tcp_is_a_dns_error(self):
        r = self.check("huge.test", self.lab.responder, 2)
        self.assertEqual(r["status"], "error")
        self.assertEqual(r["records"], [])
        self.assertEqual(self.lookup(r, "huge.test")["answer"], "network")
        self.assertEqual(r["problem"]["type"], "urn:ietf:params:acme:error:dns")
        self.assertEqual(r["problem"]["detail"],
                         dns_detail("huge.test", "networking error", "huge.test"))

    def test_tcp_failure_after_truncation_is_a_dns_error(self):
        before = self.lab.responder_stats()
        r = self.check("notcp.test", self.lab.responder, 2)
        self.assertEqual(r["status"], "error")
        self.assertEqual(r["records"], [])
        self.assertIn(self.lookup(r, "notcp.test")["answer"], ("network", "timeout"))
        self.assertEqual(r["problem"]["type"], "urn:ietf:params:acme:error:dns")
        self.assertGreaterEqual(self.tcp_queries(before), 1)


if __name__ == "__main__":
    unittest.main()
