#!/usr/bin/python3
"""Extended DNS Errors (RFC 8914) in `certpilot caa check`, end to end.

When the resolver's error answer carries an EDE option, the CA's detail
quotes it (spec §10 EDE).  Each case asks the resolver itself, here, for the
raw answer, computes from it the detail the CA would write (first EDE option
of the OPT record, the CA's words for the code, the text with every byte
that is not valid UTF-8 replaced by U+FFFD as Go does), and requires
certpilot's detail to be that string, byte for byte.

Resolvers: Unbound (ede: yes, val-log-level: 2, so DNSSEC failures carry a
code and a text), and the lab's responder standing in for a resolver that
sends chosen EDE options (Unbound 1.17 sends none for an unreachable
authority; see test_dead_authority_through_unbound).
"""

import json
import os
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from cplab import Lab, split_addr  # noqa: E402
from dnslib import DNSRecord, EDNS0, QTYPE, RCODE  # noqa: E402

CERTPILOT = os.environ.get("CERTPILOT", "build/certpilot")
EXIT_DNS_FAILURE = 2

# RFC 8914 §4 INFO-CODEs, in the words Let's Encrypt prints (spec §10 EDE).
EDE_SUMMARY = {
    0: "Other", 1: "DNSSEC: Unsupported DNSKEY Algorithm", 2: "DNSSEC: Unsupported DS Digest Type",
    3: "Stale Answer", 4: "Forged Answer", 5: "DNSSEC: Indeterminate", 6: "DNSSEC: Bogus",
    7: "DNSSEC: Signature Expired", 8: "DNSSEC: Signature Not Yet Valid",
    9: "DNSSEC: DNSKEY Missing", 10: "DNSSEC: RRSIGs Missing", 11: "DNSSEC: No Zone Key Bit Set",
    12: "DNSSEC: NSEC Missing", 13: "Cached Error", 14: "Not Ready", 15: "Blocked",
    16: "Censored", 17: "Filtered", 18: "Prohibited", 19: "Stale NXDOMAIN Answer",
    20: "Not Authoritative", 21: "Not Supported", 22: "No Reachable Authority",
    23: "Network Error between Resolver and Authority", 24: "Invalid Data",
}
DNSSEC_CODES = {1, 2, 5, 6, 7, 8, 9, 10, 11, 12}
SERVFAIL_EXTRA = " - the domain's nameservers may be malfunctioning"


def summary(code):
    return EDE_SUMMARY.get(code, "Unknown Extended DNS Error code %d" % code)


def go_text(raw):
    """Bytes as Go turns them into a string for JSON: each byte that does not
    start a well-formed UTF-8 sequence becomes U+FFFD, one per byte.  (Python's
    own errors="replace" merges some bytes into one U+FFFD, so not that.)"""
    out, i = [], 0
    while i < len(raw):
        for n in (1, 2, 3, 4):
            try:
                ch = raw[i:i + n].decode("utf-8")  # strict: no overlong, surrogate, > U+10FFFF
            except UnicodeDecodeError:
                continue
            if len(ch) == 1:
                out.append(ch)
                i += n
                break
        else:
            out.append("\ufffd")
            i += 1
    return "".join(out)


def ask(server, name):
    """The resolver's raw answer to "name CAA?", asked as certpilot asks
    (RD, an OPT record with a 1232-byte payload size)."""
    query = DNSRecord.question(name, "CAA")
    query.header.rd = 1
    query.add_ar(EDNS0(udp_len=1232))
    wire = query.pack()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(split_addr(server))
        sock.settimeout(10)
        sock.send(wire)
        while True:
            data = sock.recv(65535)
            if data[:2] == wire[:2]:
                return DNSRecord.parse(data)


def first_ede(reply):
    """(INFO-CODE, EXTRA-TEXT bytes) of the first EDE option of the first
    OPT record, or None."""
    for rr in reply.ar:
        if rr.rtype == QTYPE.OPT:
            for option in rr.rdata:
                if option.code == 15:
                    return int.from_bytes(option.data[:2], "big"), bytes(option.data[2:])
            return None
    return None


def expected_detail(ident, name, reply):
    """The CA's detail for a failed lookup of `name`, from the raw answer."""
    ede = first_ede(reply)
    if ede is not None:
        code, text = ede
        detail = "DNS problem: looking up CAA for %s: %s" % (name, summary(code))
        if text:
            detail += ": " + go_text(text)
    else:
        rcode = RCODE.get(reply.header.rcode)
        extra = SERVFAIL_EXTRA if rcode == "SERVFAIL" else ""
        detail = "DNS problem: %s looking up CAA for %s%s" % (rcode, name, extra)
    return "While processing CAA for %s: %s" % (ident, detail)


def hexed(data):
    return data.hex()


class CaaEde(unittest.TestCase):
    lab = None

    @classmethod
    def setUpClass(cls):
        # Unbound gives up on a dead server after one try of 100 ms instead of
        # backing off for many seconds: the unreachable case stays fast.
        lab = cls.lab = Lab(unbound_options=["outbound-msg-retry: 1",
                                             "max-sent-count: 2",
                                             "unknown-server-time-limit: 100"])
        lab.zone("bogus.test", '@ CAA 0 issue "letsencrypt.org"', dnssec="broken")
        lab.zone("dead.test", '@ CAA 0 issue "letsencrypt.org"', servers=["dead"])
        lab.misbehaving_zone("servfail.test", caa="servfail")
        lab.misbehaving_zone("unreach.test", caa={"action": "servfail", "ede": [
            [22, hexed(b"no nameserver of unreach.test. answered (127.0.0.9)")],
            [23, hexed(b"second option, never quoted")]]})
        lab.misbehaving_zone("bytes.test", caa={"action": "servfail", "ede": [
            [0, hexed(b"caf\xc3\xa9 \xff\xfe \xe2\x82 \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 "
                      b"\xf0\x9f\x94\x92 end")]]})
        lab.misbehaving_zone("nul.test", caa={"action": "servfail", "ede": [
            [6, hexed(b"before\x00after")]]})
        lab.misbehaving_zone("escape.test", caa={"action": "servfail", "ede": [
            [6, hexed(b"line one\nline two \x1b[31mred\x1b[0m")]]})
        lab.misbehaving_zone("unknown.test", caa={"action": "refused", "ede": [
            [1337, hexed(b"mysterious")]]})
        lab.misbehaving_zone("notext.test", caa={"action": "servfail", "ede": [[6, ""]]})
        lab.misbehaving_zone("stale.test", '@ CAA 0 issue "letsencrypt.org"',
                             caa={"action": "answer", "ede": [[3, hexed(b"stale")]]})
        lab.start()

    @classmethod
    def tearDownClass(cls):
        if cls.lab is not None:
            cls.lab.close()

    def check(self, ident, resolver, *args, expect, json_out=True):
        argv = [CERTPILOT, "caa", "check", "--resolver", resolver, "--timeout", "4",
                "--tries", "1"] + (["--json"] if json_out else []) + list(args) + [ident]
        proc = subprocess.run(argv, capture_output=True, timeout=60)
        self.assertEqual(proc.returncode, expect,
                         "exit status of %s\nstdout:\n%s\nstderr:\n%s"
                         % (" ".join(argv), proc.stdout.decode(errors="replace"),
                            proc.stderr.decode(errors="replace")))
        if not json_out:
            return proc.stdout
        doc = json.loads(proc.stdout)
        self.assertEqual(len(doc["results"]), 1)
        return doc["results"][0]

    def lookup(self, result, name):
        return next(entry for entry in result["lookups"] if entry["name"] == name)

    def assert_same_detail(self, ident, name, resolver, flush=False):
        """Ask `resolver` here, then through certpilot; the details must be
        equal byte for byte.  Returns (raw answer, certpilot's result)."""
        if flush:
            self.lab.flush()  # Unbound puts the text only in answers not from its cache
        reply = ask(resolver, name)
        if flush:
            self.lab.flush()
        result = self.check(ident, resolver, expect=EXIT_DNS_FAILURE)
        self.assertEqual(result["status"], "error")
        self.assertEqual(result["relevant_name"], name)
        self.assertEqual(result["problem"]["type"], "urn:ietf:params:acme:error:dns")
        want = expected_detail(ident, name, reply)
        self.assertEqual(result["problem"]["detail"].encode(), want.encode())
        ede = first_ede(reply)
        entry = self.lookup(result, name)
        self.assertEqual(entry["answer"], "rcode")
        if ede is None:
            self.assertNotIn("ede", entry)
        else:
            self.assertEqual(entry["ede"], {"code": ede[0], "summary": summary(ede[0]),
                                            "text": go_text(ede[1]).replace("\0", "\ufffd")})
        return reply, result

    # -- Unbound

    def test_broken_dnssec_through_unbound(self):
        # The apex: certpilot's other query ("test", insecure) does not touch
        # bogus.test's keys.  For www.bogus.test, its parallel query of
        # bogus.test may mark the key bad first, and Unbound then gives
        # another code and text (6, "... marked as invalid ...") than to a
        # query alone: the detail would depend on which query Unbound
        # validated first.
        reply, result = self.assert_same_detail("bogus.test", "bogus.test",
                                                self.lab.resolver, flush=True)
        self.assertEqual(reply.header.rcode, RCODE.SERVFAIL)
        ede = first_ede(reply)
        self.assertIsNotNone(ede, "Unbound sent no EDE: is ede: yes in the lab's config?")
        self.assertIn(ede[0], DNSSEC_CODES)
        self.assertTrue(ede[1], "no text: val-log-level 2 gives one")
        self.assertIn("DNSSEC", result["explanation"])
        self.assertIn("Extended DNS Error", result["explanation"])

    def test_dead_authority_through_unbound(self):
        # Unbound 1.17 answers SERVFAIL without an EDE when no nameserver of
        # the zone answers (later versions may send 22, No Reachable
        # Authority): either way the detail follows the answer exactly.
        reply, _ = self.assert_same_detail("dead.test", "dead.test", self.lab.resolver,
                                           flush=True)
        self.assertEqual(reply.header.rcode, RCODE.SERVFAIL)
        ede = first_ede(reply)
        if ede is not None:
            self.assertIn(ede[0], (22, 23))

    # -- a resolver that sends chosen EDE options (the responder)

    def test_unreachable_authority_first_option_quoted(self):
        _, result = self.assert_same_detail("unreach.test", "unreach.test", self.lab.responder)
        self.assertEqual(result["problem"]["detail"],
                         "While processing CAA for unreach.test: DNS problem: looking up CAA "
                         "for unreach.test: No Reachable Authority: no nameserver of "
                         "unreach.test. answered (127.0.0.9)")

    def test_text_bytes_replaced_as_go_does(self):
        _, result = self.assert_same_detail("bytes.test", "bytes.test", self.lab.responder)
        self.assertIn("caf\u00e9 \ufffd\ufffd \ufffd\ufffd \ufffd\ufffd \ufffd\ufffd\ufffd "
                      "\ufffd\ufffd\ufffd\ufffd \U0001f512 end", result["problem"]["detail"])

    def test_nul_in_text_is_the_documented_difference(self):
        # The CA would keep U+0000; certpilot's C strings cannot (caa/caa.h).
        self.lab.flush()
        reply = ask(self.lab.responder, "nul.test")
        result = self.check("nul.test", self.lab.responder, expect=EXIT_DNS_FAILURE)
        ca = expected_detail("nul.test", "nul.test", reply)
        self.assertIn("before\0after", ca)
        self.assertEqual(result["problem"]["detail"], ca.replace("\0", "\ufffd"))

    def test_unknown_code_and_other_rcode(self):
        _, result = self.assert_same_detail("unknown.test", "unknown.test", self.lab.responder)
        self.assertTrue(result["problem"]["detail"].endswith(
            ": Unknown Extended DNS Error code 1337: mysterious"))
        self.assertEqual(self.lookup(result, "unknown.test")["rcode"], "REFUSED")

    def test_code_without_text(self):
        _, result = self.assert_same_detail("notext.test", "notext.test", self.lab.responder)
        self.assertTrue(result["problem"]["detail"].endswith(
            "looking up CAA for notext.test: DNSSEC: Bogus"))

    def test_without_ede_plain_servfail(self):
        _, result = self.assert_same_detail("servfail.test", "servfail.test",
                                            self.lab.responder)
        self.assertEqual(result["problem"]["detail"],
                         "While processing CAA for servfail.test: DNS problem: SERVFAIL looking "
                         "up CAA for servfail.test" + SERVFAIL_EXTRA)

    def test_ede_on_a_good_answer_is_ignored(self):
        self.assertEqual(first_ede(ask(self.lab.responder, "stale.test")), (3, b"stale"))
        result = self.check("stale.test", self.lab.responder, expect=0)
        self.assertEqual(result["status"], "allowed")
        self.assertNotIn("ede", self.lookup(result, "stale.test"))

    def test_text_output_escapes_control_characters(self):
        out = self.check("escape.test", self.lab.responder, expect=EXIT_DNS_FAILURE,
                         json_out=False)
        self.assertNotIn(b"\x1b", out)
        self.assertIn(b"    While processing CAA for escape.test: DNS problem: looking up CAA for "
                      b"escape.test: DNSSEC: Bogus: line one\\010line two \\027[31mred\\027[0m\n",
                      out)


if __name__ == "__main__":
    unittest.main()
