#!/usr/bin/python3
"""`certpilot doctor` against the lab: zones served by several authoritative
servers on their own loopback addresses (Knot, the misbehaving responder, a
server with other data, a lame one, a dead address), Unbound in front.

Each scenario of issue 6 asserts the finding (kind, severity), the server it
names (NS name and address) and the exit status; the JSON is checked against
/work/coord/issue6-contract.md and the human report for its key lines.
"""

import json
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from cplab import Lab, responder, split_addr  # noqa: E402

CERTPILOT = os.environ.get("CERTPILOT", "build/certpilot")
TIMEOUT = 3  # --timeout of every run; only a dropping server makes doctor wait for it
LE = '@ CAA 0 issue "letsencrypt.org"'
LE_RECORD = '0 issue "letsencrypt.org"'
SEVERITIES = ("BLOCKED", "WILL_FAIL", "FLAKY", "INFO")
STATUSES = ("OK", "BLOCKED", "WILL_FAIL", "FLAKY")
KINDS = ("caa_denied", "dnssec", "notimp", "refused", "servfail", "timeout", "lame",
         "inconsistent", "cname", "resolver_error")
FINDING_LINE = {"BLOCKED": "BLOCKED: ", "WILL_FAIL": "WILL FAIL AT THE CA: ",
                "FLAKY": "FLAKY: "}


def run(argv, timeout=60):
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    proc.elapsed = time.monotonic() - start
    return proc


class Doctor(unittest.TestCase):
    """One lab for every scenario; each zone has its own servers."""

    lab = None

    @classmethod
    def setUpClass(cls):
        lab = cls.lab = Lab()
        cls.addClassCleanup(lab.close)
        two_knots = ["knot", "knot"]
        cls.ns = {
            "ok": lab.zone("ok.test", "\n".join([LE, "@ A 192.0.2.10", "www A 192.0.2.11"]),
                           servers=two_knots),
            "servfail": lab.zone("servfail.test", LE,
                                 servers=two_knots + [responder(caa="servfail")]),
            "notimp": lab.zone("notimp.test", LE, servers=two_knots + [responder(caa="notimp")]),
            "refused": lab.zone("refused.test", LE,
                                servers=two_knots + [responder(caa="refused")]),
            "drop": lab.zone("drop.test", LE, servers=two_knots + [responder(caa="drop")]),
            "dead": lab.zone("dead.test", LE, servers=two_knots + ["dead"]),
            # ns1 has an IPv6 address too, where nothing listens (see the lab README).
            "v6dead": lab.zone("v6dead.test", LE + "\nns1 AAAA ::1", servers=two_knots),
            "alldrop": lab.zone("alldrop.test", LE, servers=[
                responder(caa="drop"), responder(caa="drop")]),
            "allnotimp": lab.zone("allnotimp.test", LE, servers=[
                responder(caa="notimp"), responder(caa="notimp")]),
            "bogus": lab.zone("bogus.test", LE, dnssec="broken", servers=two_knots),
            # The third server holds an older CAA set: both allow this CA, so
            # which server the resolver asks does not change the verdict.
            "disagree": lab.zone("disagree.test", LE, servers=two_knots + [
                responder(text=LE + '\n@ CAA 0 issue "otherca.example"')]),
            # Here the odd server is the one the resolver uses: the other two
            # answer CAA 0.6 s late, and once unbound has measured that it
            # asks only the fast one (warm-up below).
            "stale": lab.zone("stale.test", '@ CAA 0 issue ";"', servers=["knot"] + 2 * [
                responder(text=LE, caa={"delay_ms": 600})]),
            "lame": lab.zone("lame.test", LE, servers=two_knots + ["lame"]),
            "cachelame": lab.zone("cachelame.test", LE, servers=two_knots + [responder(aa=False)]),
            # A name aliased into a hosting provider whose CAA allows only
            # another CA for wildcards (spec §11, the GitHub Pages case).
            "site": lab.zone("site.test", """
                blog   CNAME pages.hosting.test.
                chain  CNAME x.cdn.test.
                loop   CNAME loop.cdn.test.
            """, servers=two_knots),
            # A CDN in the middle of a chain, one of whose servers fails CAA.
            "cdn": lab.zone("cdn.test", """
                x     CNAME pages.hosting.test.
                loop  CNAME loop.site.test.
            """, servers=["knot", responder(caa="servfail")]),
            "hosting": lab.zone("hosting.test", """
                pages CAA 0 issue "letsencrypt.org"
                pages CAA 0 issuewild "digicert.com"
            """, servers=two_knots),
            # Let's Encrypt stops at http-01; other CAs may reject the record.
            "methwarn": lab.zone(
                "methwarn.test", '@ CAA 0 issue "letsencrypt.org; validationmethods=http-01,"',
                servers=two_knots),
            # dns-01 challenges delegated to a zone of their own.
            "deleg": lab.zone("deleg.test", "www A 192.0.2.12", servers=two_knots),
            "challenge": lab.zone("_acme-challenge.www.deleg.test", servers=["knot"]),
        }
        lab.start()
        # Unbound's first queries to drop.test may hit the dropping server and
        # take seconds; then it remembers the time-outs and avoids that server,
        # so that doctor's own resolver query is answered well within --timeout.
        for _ in range(3):
            lab.query("drop.test", "CAA", timeout=15)
        for i in range(8):  # other names each time: no answer from the cache
            lab.query("w%d.stale.test" % i, "CAA", timeout=15)

    # -- running doctor

    def doctor(self, *args, expect, timeout=TIMEOUT):
        argv = [CERTPILOT, "doctor", "--resolver", self.lab.resolver,
                "--authoritative-port", str(self.lab.auth_port),
                "--timeout", str(timeout)] + list(args)
        proc = run(argv)
        self.assertEqual(proc.returncode, expect,
                         "exit status of %s\nstdout:\n%s\nstderr:\n%s"
                         % (" ".join(argv), proc.stdout, proc.stderr))
        return proc

    def doctor_json(self, *args, expect, timeout=TIMEOUT):
        proc = self.doctor("--json", *args, expect=expect, timeout=timeout)
        doc = json.loads(proc.stdout)
        self.assertEqual(doc["exit_status"], expect)
        self.assertEqual(doc["ca_identity"], "letsencrypt.org")
        for result in doc["names"]:
            self.assert_shape(result)
        return doc

    def one(self, *args, expect, timeout=TIMEOUT):
        doc = self.doctor_json(*args, expect=expect, timeout=timeout)
        self.assertEqual(len(doc["names"]), 1)
        return doc["names"][0]

    def assert_shape(self, result):
        """The contract's fields and values, for every name of every run."""
        self.assertIn(result["status"], STATUSES)
        self.assertIsInstance(result["caa"], dict)
        for f in result["findings"]:
            self.assertIn(f["severity"], SEVERITIES, f)
            self.assertIn(f["kind"], KINDS, f)
            for key in ("name", "zone", "server", "address", "evidence", "fix"):
                self.assertIn(key, f)
            self.assertTrue(f["evidence"], f)
        worst = [s for s in SEVERITIES[:3] if s in [f["severity"] for f in result["findings"]]]
        self.assertEqual(result["status"], worst[0] if worst else "OK")
        for hop in result["hops"]:
            for key in ("name", "zone", "alias_of", "resolver", "resolver_cd", "servers",
                        "agree"):
                self.assertIn(key, hop)
            for s in hop["servers"]:
                for key in ("name", "address", "rcode", "timeout", "aa", "records", "cname",
                            "ms"):
                    self.assertIn(key, s)
        self.assertIn("readiness", result)

    # -- reading the result

    def findings(self, result, kind):
        return [f for f in result["findings"] if f["kind"] == kind]

    def hop(self, result, name):
        hops = [h for h in result["hops"] if h["name"] == name]
        self.assertEqual(len(hops), 1, "one hop %s in %s" % (name, result["hops"]))
        return hops[0]

    def server(self, hop, address):
        found = [s for s in hop["servers"] if s["address"] == address]
        self.assertEqual(len(found), 1, "server %s in %s" % (address, hop["servers"]))
        return found[0]

    def assert_blames(self, result, zone_key, index, kind, severity):
        """One finding of kind names nameserver `index` of the zone; nothing
        worse than INFO names any other of its servers."""
        zone = zone_key + ".test"
        ns, address = self.ns[zone_key][index]
        found = self.findings(result, kind)
        self.assertEqual(len(found), 1, "one %s finding in %s" % (kind, result["findings"]))
        f = found[0]
        self.assertEqual((f["severity"], f["server"], f["address"], f["zone"]),
                         (severity, ns, address, zone), f)
        self.assertTrue(f["fix"], f)
        innocent = [(n, a) for n, a in self.ns[zone_key] if n != ns]
        for other in result["findings"]:
            if other["severity"] != "INFO":
                self.assertNotIn((other["server"], other["address"]), innocent, other)
        return f

    def assert_good_servers(self, hop, zone_key, records=(LE_RECORD,), skip=()):
        for i, (ns, address) in enumerate(self.ns[zone_key]):
            if i in skip:
                continue
            s = self.server(hop, address)
            self.assertEqual((s["name"], s["rcode"], s["timeout"], s["aa"]),
                             (ns, "NOERROR", False, True), s)
            self.assertEqual(sorted(s["records"]), sorted(records), s)

    def human(self, *names, expect):
        return self.doctor(*names, expect=expect).stdout

    def assert_finding_lines(self, out, severity, *words):
        """A `SEVERITY: ...` line with its evidence and fix lines after it; the
        finding or its evidence carries each of words."""
        lines = out.splitlines()
        for i, line in enumerate(lines):
            if line.startswith(FINDING_LINE[severity]):
                block = lines[i:i + 3]
                if (len(block) == 3 and block[1].startswith("  evidence: ")
                        and block[2].startswith("  fix: ")
                        and all(w in "\n".join(block) for w in words)):
                    return
        self.fail("no %r finding with evidence and fix mentioning %s in:\n%s"
                  % (FINDING_LINE[severity], words, out))

    # -- a healthy zone

    def test_malformed_method_after_the_match_is_a_warning(self):
        result = self.one("www.methwarn.test", expect=0)
        self.assertEqual(result["caa"]["status"], "allowed")
        self.assertIn('"" in its validationmethods', result["caa"]["warning"])
        self.assertIn('methwarn.test. CAA 0 issue "letsencrypt.org; validationmethods=http-01"',
                      result["caa"]["warning"])
        text = self.doctor("www.methwarn.test", expect=0).stdout
        self.assertIn("  Warning:\n    The record 0 issue", text)

    def test_clean_zone_is_ok(self):
        r = self.one("ok.test", expect=0)
        self.assertEqual(r["name"], "ok.test")
        self.assertEqual(r["status"], "OK")
        self.assertEqual([f for f in r["findings"] if f["severity"] != "INFO"], [])
        hop = self.hop(r, "ok.test")
        self.assertEqual(hop["zone"], "ok.test")
        self.assertIsNone(hop["alias_of"])
        self.assertEqual(hop["resolver"]["rcode"], "NOERROR")
        self.assertFalse(hop["resolver"]["timeout"])
        self.assertEqual(hop["resolver"]["records"], [LE_RECORD])
        self.assertIsNone(hop["resolver_cd"])  # asked only when the resolver fails
        self.assertTrue(hop["agree"])
        self.assertEqual(len(hop["servers"]), 2)
        self.assert_good_servers(hop, "ok")

    def test_caa_verdict_is_that_of_caa_check(self):
        r = self.one("www.ok.test", expect=0)
        check = run([CERTPILOT, "caa", "check", "--json", "--resolver", self.lab.resolver,
                     "--timeout", str(TIMEOUT), "www.ok.test"])
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertEqual(r["caa"], json.loads(check.stdout)["results"][0])

    def test_clean_zone_human_report(self):
        out = self.human("ok.test", expect=0)
        lines = out.splitlines()
        self.assertIn("ok.test: OK", lines)
        self.assertIn("192.0.2.10", out)  # readiness: the address the CA would connect to
        self.assertTrue(any(re.match(r"OK\b", line) for line in lines), out)
        for ns, address in self.ns["ok"]:
            self.assertTrue(any(ns in line and address in line and "NOERROR" in line
                                for line in lines), "a line for %s in:\n%s" % (ns, out))

    # -- one authoritative server of three misbehaves; the resolver still answers

    def test_one_server_servfail(self):
        r = self.one("servfail.test", expect=3)
        self.assertEqual(r["status"], "FLAKY")
        self.assertEqual(r["caa"]["status"], "allowed")
        self.assert_blames(r, "servfail", 2, "servfail", "FLAKY")
        hop = self.hop(r, "servfail.test")
        self.assertEqual(hop["resolver"]["rcode"], "NOERROR")
        bad = self.server(hop, self.ns["servfail"][2][1])
        self.assertEqual((bad["name"], bad["rcode"], bad["timeout"], bad["records"]),
                         ("ns3.servfail.test", "SERVFAIL", False, []))
        self.assert_good_servers(hop, "servfail", skip=(2,))

    def test_one_server_servfail_human_report(self):
        out = self.human("servfail.test", expect=3)
        self.assertIn("servfail.test: FLAKY", out.splitlines())
        ns, address = self.ns["servfail"][2]
        self.assert_finding_lines(out, "FLAKY", ns, "SERVFAIL")
        self.assertIn(address, out)
        self.assertTrue(any("ns1.servfail.test" in line and "NOERROR" in line
                            for line in out.splitlines()), out)

    def test_one_server_notimp(self):
        r = self.one("notimp.test", expect=3)
        self.assertEqual(r["status"], "FLAKY")
        f = self.assert_blames(r, "notimp", 2, "notimp", "FLAKY")
        self.assertIn("NOTIMP", f["evidence"])
        hop = self.hop(r, "notimp.test")
        self.assertEqual(self.server(hop, self.ns["notimp"][2][1])["rcode"], "NOTIMP")
        self.assert_good_servers(hop, "notimp", skip=(2,))

    def test_one_server_refuses_caa_only(self):
        # It answers SOA and NS with AA: authoritative, but REFUSED for CAA.
        r = self.one("refused.test", expect=3)
        self.assert_blames(r, "refused", 2, "refused", "FLAKY")
        hop = self.hop(r, "refused.test")
        self.assertEqual(self.server(hop, self.ns["refused"][2][1])["rcode"], "REFUSED")

    def test_one_server_drops_caa(self):
        r = self.one("drop.test", expect=3)
        self.assertEqual(r["status"], "FLAKY")
        self.assert_blames(r, "drop", 2, "timeout", "FLAKY")
        hop = self.hop(r, "drop.test")
        self.assertEqual(hop["resolver"]["rcode"], "NOERROR")
        bad = self.server(hop, self.ns["drop"][2][1])
        self.assertEqual((bad["rcode"], bad["timeout"]), (None, True))
        self.assert_good_servers(hop, "drop", skip=(2,))

    def test_dropping_server_does_not_hold_doctor_up(self):
        address = self.ns["drop"][2][1]
        before = self.lab.responder_stats(address).get("type:CAA", 0)
        proc = self.doctor("--json", "drop.test", expect=3)
        # Generous: the bound is --timeout, the margin covers start-up under ASan.
        self.assertLess(proc.elapsed, 3 * TIMEOUT, "doctor took %.1fs" % proc.elapsed)
        self.assertGreater(self.lab.responder_stats(address)["type:CAA"], before)

    def test_dead_server(self):
        # Nothing listens at its address: ICMP port unreachable, no DNS answer.
        r = self.one("dead.test", expect=3)
        self.assert_blames(r, "dead", 2, "timeout", "FLAKY")
        dead = self.server(self.hop(r, "dead.test"), self.ns["dead"][2][1])
        # "timeout" in the JSON is "no answer", as for the finding's kind.
        self.assertEqual((dead["rcode"], dead["timeout"], dead["records"], dead["aa"]),
                         (None, True, [], False))

    def test_server_dead_over_ipv6_only(self):
        r = self.one("v6dead.test", expect=3)
        found = self.findings(r, "timeout")
        self.assertEqual([(f["severity"], f["server"], f["address"]) for f in found],
                         [("FLAKY", "ns1.v6dead.test", "::1")])
        hop = self.hop(r, "v6dead.test")
        self.assertEqual(self.server(hop, "::1")["timeout"], True)
        self.assert_good_servers(hop, "v6dead")  # their IPv4 addresses answer

    def test_every_server_drops_will_fail_in_bounded_time(self):
        timeout = 2
        r = self.one("alldrop.test", expect=2, timeout=timeout)
        self.assertEqual(r["status"], "WILL_FAIL")
        found = self.findings(r, "timeout")
        self.assertEqual(sorted((f["severity"], f["server"], f["address"]) for f in found),
                         [("WILL_FAIL", ns, address) for ns, address in self.ns["alldrop"]])
        hop = self.hop(r, "alldrop.test")
        self.assertEqual((hop["resolver"]["rcode"], hop["resolver"]["timeout"]), (None, True))
        start = time.monotonic()
        self.doctor("alldrop.test", expect=2, timeout=timeout)
        elapsed = time.monotonic() - start
        self.assertLess(elapsed, 3 * timeout, "doctor took %.1fs" % elapsed)

    def test_same_server_fails_on_every_hop(self):
        # www.servfail.test has no CAA: the climb asks servfail.test too, and
        # ns3 fails both; nothing is blamed on the servers that answer.
        r = self.one("www.servfail.test", expect=3)
        found = self.findings(r, "servfail")
        self.assertTrue(found, r["findings"])
        for f in found:
            self.assertEqual((f["severity"], f["server"], f["address"]),
                             ("FLAKY",) + self.ns["servfail"][2], f)
        for name in ("www.servfail.test", "servfail.test"):
            hop = self.hop(r, name)
            self.assertEqual(hop["zone"], "servfail.test")
            self.assertEqual(self.server(hop, self.ns["servfail"][2][1])["rcode"], "SERVFAIL")
        self.assertEqual(self.hop(r, "www.servfail.test")["resolver"]["rcode"], "NXDOMAIN")

    def test_every_server_notimp_will_fail(self):
        # The resolver fails too (SERVFAIL), with CD=1 as well: not DNSSEC.
        r = self.one("allnotimp.test", expect=2)
        self.assertEqual(r["status"], "WILL_FAIL")
        self.assertEqual(self.findings(r, "dnssec"), [])
        found = self.findings(r, "notimp")
        self.assertEqual(sorted((f["severity"], f["server"], f["address"]) for f in found),
                         [("WILL_FAIL", ns, address) for ns, address in self.ns["allnotimp"]])
        hop = self.hop(r, "allnotimp.test")
        self.assertEqual(hop["resolver"]["rcode"], "SERVFAIL")

    # -- DNSSEC

    def test_broken_dnssec(self):
        r = self.one("bogus.test", expect=2)
        self.assertEqual(r["status"], "WILL_FAIL")
        self.assertEqual(r["caa"]["status"], "error")
        found = self.findings(r, "dnssec")
        self.assertEqual(len(found), 1, r["findings"])
        f = found[0]
        self.assertEqual((f["severity"], f["zone"]), ("WILL_FAIL", "bogus.test"), f)
        # The evidence names the resolver and both answers.
        self.assertIn(str(split_addr(self.lab.resolver)[1]), f["evidence"])
        self.assertIn("SERVFAIL", f["evidence"])
        self.assertIn("NOERROR", f["evidence"])
        self.assertIn("DNSSEC", f["evidence"] + f["fix"])
        for other in r["findings"]:  # every authoritative server answers
            self.assertNotIn(other["kind"], ("servfail", "notimp", "refused", "timeout",
                                             "lame", "inconsistent"), other)
        hop = self.hop(r, "bogus.test")
        self.assertEqual(hop["resolver"]["rcode"], "SERVFAIL")
        self.assertEqual(hop["resolver_cd"]["rcode"], "NOERROR")
        self.assertEqual(hop["resolver_cd"]["records"], [LE_RECORD])
        self.assertTrue(hop["agree"])
        self.assert_good_servers(hop, "bogus")

    def test_broken_dnssec_human_report(self):
        out = self.human("bogus.test", expect=2)
        self.assertTrue(re.search(r"^bogus\.test: WILL[_ ]FAIL", out, re.M), out)
        self.assert_finding_lines(out, "WILL_FAIL", "DNSSEC")

    # -- servers that disagree, lame delegations

    def test_servers_disagree_on_the_caa_set(self):
        r = self.one("disagree.test", expect=3)
        self.assertEqual(r["status"], "FLAKY")
        self.assertEqual(r["caa"]["status"], "allowed")
        self.assert_blames(r, "disagree", 2, "inconsistent", "FLAKY")
        hop = self.hop(r, "disagree.test")
        self.assertFalse(hop["agree"])
        odd = self.server(hop, self.ns["disagree"][2][1])
        self.assertEqual(sorted(odd["records"]), [LE_RECORD, '0 issue "otherca.example"'])
        self.assert_good_servers(hop, "disagree", skip=(2,))

    def test_servers_disagree_and_the_resolver_has_the_refusing_set(self):
        r = self.one("stale.test", expect=1)
        self.assertEqual(r["status"], "BLOCKED")
        hop = self.hop(r, "stale.test")
        self.assertEqual(hop["resolver"]["records"], ['0 issue ";"'])
        self.assertFalse(hop["agree"])
        self.assert_blames(r, "stale", 0, "inconsistent", "BLOCKED")
        for ns, address in self.ns["stale"][1:]:
            self.assertEqual(self.server(hop, address)["records"], [LE_RECORD])

    def test_lame_server_refuses_the_zone(self):
        r = self.one("lame.test", expect=3)
        self.assertEqual(r["status"], "FLAKY")
        self.assert_blames(r, "lame", 2, "lame", "FLAKY")
        lame = self.server(self.hop(r, "lame.test"), self.ns["lame"][2][1])
        self.assertEqual((lame["rcode"], lame["aa"]), ("REFUSED", False))

    def test_lame_server_answers_without_aa(self):
        r = self.one("cachelame.test", expect=3)
        self.assert_blames(r, "cachelame", 2, "lame", "FLAKY")
        lame = self.server(self.hop(r, "cachelame.test"), self.ns["cachelame"][2][1])
        self.assertEqual((lame["rcode"], lame["aa"]), ("NOERROR", False))

    def test_lame_server_human_report(self):
        out = self.human("lame.test", expect=3)
        self.assertIn("lame.test: FLAKY", out.splitlines())
        self.assert_finding_lines(out, "FLAKY", "ns3.lame.test")

    # -- CNAME into another zone

    def test_cname_into_provider_blocks_wildcard(self):
        r = self.one("*.blog.site.test", expect=1)
        self.assertEqual(r["name"], "*.blog.site.test")
        self.assertEqual(r["status"], "BLOCKED")
        self.assertEqual(r["caa"]["status"], "denied")
        self.assertEqual(r["caa"]["alias_target"], "pages.hosting.test")
        denied = self.findings(r, "caa_denied")
        self.assertEqual(len(denied), 1, r["findings"])
        self.assertEqual(denied[0]["severity"], "BLOCKED")
        self.assertIn("digicert.com", denied[0]["evidence"])
        cname = self.findings(r, "cname")
        self.assertEqual([f["severity"] for f in cname], ["INFO"])
        self.assertIn("pages.hosting.test", cname[0]["evidence"])
        # The chain, hop by hop: the alias in site.test, then its target's set.
        alias = self.hop(r, "blog.site.test")
        self.assertEqual((alias["zone"], alias["alias_of"]), ("site.test", None))
        for ns, address in self.ns["site"]:
            s = self.server(alias, address)
            self.assertEqual((s["name"], s["rcode"], s["aa"], s["cname"]),
                             (ns, "NOERROR", True, "pages.hosting.test"), s)
        target = self.hop(r, "pages.hosting.test")
        self.assertEqual((target["zone"], target["alias_of"]), ("hosting.test", "blog.site.test"))
        both = [LE_RECORD, '0 issuewild "digicert.com"']
        self.assertEqual(sorted(target["resolver"]["records"]), both)
        self.assertTrue(target["agree"])
        self.assert_good_servers(target, "hosting", records=both)
        names = [h["name"] for h in r["hops"]]
        self.assertLess(names.index("blog.site.test"), names.index("pages.hosting.test"))

    def test_cname_chain_through_three_zones(self):
        r = self.one("*.chain.site.test", expect=1)
        self.assertEqual(r["status"], "BLOCKED")
        self.assertEqual([f["severity"] for f in self.findings(r, "caa_denied")], ["BLOCKED"])
        chain = [(h["name"], h["zone"], h["alias_of"]) for h in r["hops"]]
        self.assertEqual(chain[:3], [("chain.site.test", "site.test", None),
                                     ("x.cdn.test", "cdn.test", "chain.site.test"),
                                     ("pages.hosting.test", "hosting.test", "x.cdn.test")])
        middle = self.hop(r, "x.cdn.test")
        self.assertEqual(self.server(middle, self.ns["cdn"][0][1])["cname"], "pages.hosting.test")
        # The broken server in the middle of the chain is named as well.
        f = self.assert_blames(r, "cdn", 1, "servfail", "FLAKY")
        self.assertEqual(f["name"], "x.cdn.test")
        cname = self.findings(r, "cname")
        self.assertEqual(len(cname), 1, r["findings"])
        for name in ("x.cdn.test", "pages.hosting.test"):
            self.assertIn(name, cname[0]["evidence"])

    def test_cname_loop_is_shown(self):
        # loop.site.test -> loop.cdn.test -> loop.site.test: the resolver only
        # says SERVFAIL; the servers of both zones show the loop.
        r = self.one("loop.site.test", expect=2)
        self.assertEqual(r["status"], "WILL_FAIL")
        hop = self.hop(r, "loop.site.test")
        self.assertEqual(hop["zone"], "site.test")
        self.assertEqual(hop["resolver"]["rcode"], "SERVFAIL")
        for ns, address in self.ns["site"]:
            self.assertEqual(self.server(hop, address)["cname"], "loop.cdn.test")
        target = self.hop(r, "loop.cdn.test")
        self.assertEqual((target["zone"], target["alias_of"]), ("cdn.test", "loop.site.test"))
        self.assertEqual(self.server(target, self.ns["cdn"][0][1])["cname"], "loop.site.test")
        said = " ".join(f["evidence"] + " " + f["fix"] for f in r["findings"])
        self.assertRegex(said, r"\bloop\b(?!\.)")  # the word, not only the names

    def test_cname_without_wildcard_is_ok(self):
        r = self.one("blog.site.test", expect=0)
        self.assertEqual(r["status"], "OK")
        self.assertEqual([f["severity"] for f in self.findings(r, "cname")], ["INFO"])
        self.assertEqual(self.hop(r, "pages.hosting.test")["alias_of"], "blog.site.test")

    def test_cname_human_report(self):
        out = self.human("*.blog.site.test", expect=1)
        self.assertIn("*.blog.site.test: BLOCKED", out.splitlines())
        self.assert_finding_lines(out, "BLOCKED", "digicert.com")
        self.assertIn("pages.hosting.test", out)
        self.assertIn("blog.site.test", out)

    def test_name_is_normalized(self):
        r = self.one("OK.Test.", expect=0)
        self.assertEqual(r["name"], "ok.test")
        self.assertEqual(self.hop(r, "ok.test")["zone"], "ok.test")

    def test_name_that_does_not_exist(self):
        # NXDOMAIN is no error for CAA: the climb goes on to ok.test.
        r = self.one("nx.ok.test", expect=0)
        self.assertEqual(r["status"], "OK")
        hop = self.hop(r, "nx.ok.test")
        self.assertEqual((hop["zone"], hop["resolver"]["rcode"]), ("ok.test", "NXDOMAIN"))
        self.assertTrue(hop["agree"])

    # -- several names

    def test_exit_status_of_a_batch(self):
        doc = self.doctor_json("ok.test", "servfail.test", expect=3)
        self.assertEqual([(n["name"], n["status"]) for n in doc["names"]],
                         [("ok.test", "OK"), ("servfail.test", "FLAKY")])
        doc = self.doctor_json("servfail.test", "bogus.test", expect=2)
        self.assertEqual([n["status"] for n in doc["names"]], ["FLAKY", "WILL_FAIL"])
        doc = self.doctor_json("bogus.test", "*.blog.site.test", "ok.test", expect=1)
        self.assertEqual([n["status"] for n in doc["names"]], ["WILL_FAIL", "BLOCKED", "OK"])

    def test_human_report_groups_per_name(self):
        out = self.human("ok.test", "lame.test", expect=3)
        lines = out.splitlines()
        self.assertLess(lines.index("ok.test: OK"), lines.index("lame.test: FLAKY"))

    # -- issuance readiness

    def test_http01_shows_the_addresses(self):
        r = self.one("ok.test", expect=0)
        self.assertEqual(r["readiness"]["method"], "http-01")
        self.assertEqual(r["readiness"]["addresses"], ["192.0.2.10"])

    def test_tls_alpn01_shows_the_addresses(self):
        r = self.one("--method", "tls-alpn-01", "www.ok.test", expect=0)
        self.assertEqual(r["readiness"]["method"], "tls-alpn-01")
        self.assertEqual(r["readiness"]["addresses"], ["192.0.2.11"])

    def test_dns01_challenge_zone_and_nameservers(self):
        doc = self.doctor_json("--method", "dns-01", "www.ok.test", expect=0)
        self.assertEqual(doc["method"], "dns-01")
        ready = doc["names"][0]["readiness"]
        self.assertEqual(ready["method"], "dns-01")
        self.assertEqual(ready["challenge_name"], "_acme-challenge.www.ok.test")
        self.assertEqual(ready["challenge_zone"], "ok.test")
        self.assertEqual(sorted(ready["nameservers"]), ["ns1.ok.test", "ns2.ok.test"])

    def test_dns01_challenge_delegated_to_its_own_zone(self):
        r = self.one("--method", "dns-01", "www.deleg.test", expect=0)
        ready = r["readiness"]
        self.assertEqual(ready["challenge_name"], "_acme-challenge.www.deleg.test")
        self.assertEqual(ready["challenge_zone"], "_acme-challenge.www.deleg.test")
        self.assertEqual(ready["nameservers"], [self.ns["challenge"][0][0]])

    def test_dns01_for_a_wildcard(self):
        r = self.one("--method", "dns-01", "*.ok.test", expect=0)
        self.assertEqual(r["readiness"]["challenge_name"], "_acme-challenge.ok.test")
        self.assertEqual(r["readiness"]["challenge_zone"], "ok.test")


class DoctorUsage(unittest.TestCase):
    """Usage errors: exit 64 before any query (the resolver given answers nothing)."""

    def doctor(self, *args):
        argv = [CERTPILOT, "doctor", "--resolver", "127.0.0.1:9", "--timeout", "2"] + list(args)
        proc = run(argv, timeout=30)
        self.assertEqual(proc.returncode, 64, "exit status of %s\nstdout:\n%s\nstderr:\n%s"
                         % (" ".join(argv), proc.stdout, proc.stderr))
        if "--json" in args:  # a usage error is a JSON result too
            doc = json.loads(proc.stdout)
            self.assertEqual((doc["outcome"], doc["exit_status"]), ("usage_error", 64))
        else:
            self.assertEqual(proc.stdout, "")
        self.assertIn("certpilot", proc.stderr)
        return proc

    def test_bad_options(self):
        for args in ([], ["--json"], ["--method", "http-02", "a.test"], ["a.test", "--method"],
                     ["--timeout", "0", "a.test"], ["--timeout", "x", "a.test"],
                     ["--timeout", "-1", "a.test"], ["--tries", "0", "a.test"],
                     ["--tries", "11", "a.test"], ["--ca-identity", "", "a.test"],
                     ["--authoritative-port", "0", "a.test"],
                     ["--authoritative-port", "65536", "a.test"],
                     ["--authoritative-port", "x", "a.test"],
                     ["--authoritative-port", "a.test"], ["--no-such-option", "a.test"],
                     ["--resolver", "not-an-ip", "a.test"],
                     ["--resolver", "127.0.0.1:0", "a.test"]):
            with self.subTest(args=args):
                self.doctor(*args)

    def test_invalid_names(self):
        for bad in ("exa mple.test", "a..test", "a.*.test", "*.", "192.0.2.1", "under_score.test"):
            with self.subTest(name=bad):
                proc = self.doctor("ok.test", bad)
                self.assertIn(bad, proc.stderr)

    def test_help(self):
        proc = run([CERTPILOT, "doctor", "--help"], timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("usage: certpilot doctor", proc.stdout + proc.stderr)
        self.assertIn("--authoritative-port", proc.stdout + proc.stderr)


if __name__ == "__main__":
    unittest.main()
