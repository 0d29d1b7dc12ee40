#!/usr/bin/python3
"""Self-test of the lab (tests/lab): the real servers answer the way the
integration tests rely on, and nothing is left behind afterwards."""

import os
import signal
import socket
import subprocess
import sys
import time
import unittest

LAB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab")
sys.path.insert(0, LAB_DIR)

from dnslib import QTYPE, RCODE  # noqa: E402
from cplab import Lab  # noqa: E402


def caa_values(reply):
    return [str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.CAA]


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


class LabAnswers(unittest.TestCase):
    """One lab for all the answer checks (it starts in well under a second)."""

    @classmethod
    def setUpClass(cls):
        cls.lab = lab = Lab()
        cls.addClassCleanup(lab.close)
        lab.zone("example.test", '''
            @      CAA 0 issue "letsencrypt.org"
            www    CNAME web.hosting.test.
        ''')
        lab.zone("hosting.test", 'web CAA 0 issuewild "pki.goog"')
        lab.zone("signed.test", '@ CAA 0 issue "letsencrypt.org"', dnssec=True)
        lab.zone("bogus.test", '@ CAA 0 issue "letsencrypt.org"', dnssec="broken")
        lab.misbehaving_zone("notimp.test", caa="notimp")
        lab.misbehaving_zone("refused.test", caa="refused")
        lab.misbehaving_zone("servfail.test", caa="servfail")
        lab.misbehaving_zone("drop.test", caa="drop")
        lab.misbehaving_zone("trunc.test", '@ CAA 0 issue "letsencrypt.org"', caa="truncate")
        lab.misbehaving_zone("slow.test", '@ CAA 0 issue "letsencrypt.org"',
                             caa={"delay_ms": 300})
        lab.start()
        cls.pebble = lab.pebble()

    # -- through unbound

    def test_caa_at_apex(self):
        reply = self.lab.query("example.test", "CAA")
        self.assertEqual(reply.header.rcode, RCODE.NOERROR)
        self.assertEqual(caa_values(reply), ['0 issue "letsencrypt.org"'])

    def test_cname_into_other_zone_is_followed(self):
        reply = self.lab.query("www.example.test", "CAA")
        self.assertEqual(reply.header.rcode, RCODE.NOERROR)
        self.assertIn(QTYPE.CNAME, [rr.rtype for rr in reply.rr])
        self.assertEqual(caa_values(reply), ['0 issuewild "pki.goog"'])

    def test_tld_is_served_without_caa(self):
        reply = self.lab.query("test", "CAA")
        self.assertEqual(reply.header.rcode, RCODE.NOERROR)
        self.assertEqual(caa_values(reply), [])

    def test_names_outside_the_lab_get_nxdomain_locally(self):
        self.assertEqual(self.lab.query("example.com", "CAA").header.rcode, RCODE.NXDOMAIN)

    def test_signed_zone_is_validated(self):
        reply = self.lab.query("signed.test", "CAA")
        self.assertEqual(reply.header.rcode, RCODE.NOERROR)
        self.assertTrue(reply.header.ad)
        self.assertEqual(caa_values(reply), ['0 issue "letsencrypt.org"'])

    def test_unsigned_zone_has_no_ad(self):
        self.assertFalse(self.lab.query("example.test", "CAA").header.ad)

    def test_broken_dnssec_is_servfail_and_cd_shows_records(self):
        self.assertEqual(self.lab.query("bogus.test", "CAA").header.rcode, RCODE.SERVFAIL)
        reply = self.lab.query("bogus.test", "CAA", cd=True)
        self.assertEqual(reply.header.rcode, RCODE.NOERROR)
        self.assertEqual(caa_values(reply), ['0 issue "letsencrypt.org"'])

    def test_notimp_zone_is_servfail_through_resolver(self):
        self.assertEqual(self.lab.query("notimp.test", "CAA").header.rcode, RCODE.SERVFAIL)

    def test_dynamic_update_with_tsig(self):
        self.lab.update("example.test", 'add upd.example.test. 60 CAA 0 issue ";"')
        self.lab.flush()
        self.assertEqual(caa_values(self.lab.query("upd.example.test", "CAA")),
                         ['0 issue ";"'])

    # -- straight at the responder

    def ask_responder(self, name, **kw):
        return self.lab.query(name, "CAA", server=self.lab.responder, **kw)

    def test_responder_rcodes(self):
        for name, rcode in (("notimp.test", RCODE.NOTIMP), ("refused.test", RCODE.REFUSED),
                            ("servfail.test", RCODE.SERVFAIL)):
            with self.subTest(name=name):
                reply = self.ask_responder(name)
                self.assertEqual(reply.header.rcode, rcode)
                self.assertTrue(reply.header.ra)
                self.assertEqual(reply.rr, [])

    def test_responder_answers_other_types_normally(self):
        reply = self.lab.query("notimp.test", "SOA", server=self.lab.responder)
        self.assertEqual(reply.header.rcode, RCODE.NOERROR)
        self.assertTrue(reply.header.aa)
        self.assertEqual(reply.rr[0].rtype, QTYPE.SOA)
        nx = self.lab.query("nx.notimp.test", "A", server=self.lab.responder)
        self.assertEqual(nx.header.rcode, RCODE.NXDOMAIN)

    def test_responder_drop_never_answers(self):
        with self.assertRaises(socket.timeout):
            self.ask_responder("drop.test", timeout=1.0)

    def test_responder_truncates_udp_only(self):
        udp = self.ask_responder("trunc.test")
        self.assertTrue(udp.header.tc)
        self.assertEqual(udp.rr, [])
        tcp = self.ask_responder("trunc.test", tcp=True)
        self.assertFalse(tcp.header.tc)
        self.assertEqual(caa_values(tcp), ['0 issue "letsencrypt.org"'])

    def test_responder_delays(self):
        start = time.monotonic()
        reply = self.ask_responder("slow.test")
        self.assertGreaterEqual(time.monotonic() - start, 0.3)
        self.assertEqual(caa_values(reply), ['0 issue "letsencrypt.org"'])

    def test_responder_counts_queries(self):
        before = self.lab.responder_stats()
        self.ask_responder("servfail.test")
        self.ask_responder("refused.test")
        self.ask_responder("trunc.test", tcp=True)
        after = self.lab.responder_stats()
        self.assertEqual(after["total"] - before["total"], 3)
        self.assertEqual(after["type:CAA"] - before["type:CAA"], 3)
        self.assertEqual(after["tcp"] - before["tcp"], 1)

    # -- pebble

    def test_pebble_directory_over_tls(self):
        directory = self.pebble.directory()
        self.assertTrue(directory["newOrder"].startswith("https://127.0.0.1:"))
        self.assertIn("BEGIN CERTIFICATE", self.pebble.root())
        with open(self.pebble.log) as log:
            self.assertIn("GET /dir", log.read())


class MisbehavingTLD(unittest.TestCase):
    """The TLD itself can be the broken one: the CAA climb reaches it last."""

    def test_tld_served_by_responder(self):
        with Lab() as lab:
            lab.zone("example.test", '@ CAA 0 issue "letsencrypt.org"')
            lab.misbehaving_zone("test", caa="servfail")
            lab.start()
            self.assertEqual(caa_values(lab.query("example.test", "CAA")),
                             ['0 issue "letsencrypt.org"'])
            self.assertEqual(lab.query("test", "CAA").header.rcode, RCODE.SERVFAIL)


class LabLifecycle(unittest.TestCase):
    """Every process stops and the temp dir goes, on close and on SIGTERM."""

    def test_close_stops_everything(self):
        with Lab() as lab:
            lab.zone("signed.test", dnssec=True)
            lab.misbehaving_zone("notimp.test", caa="notimp")
            lab.start()
            lab.pebble()
            pids, tmp = lab.pids, lab.dir
            self.assertEqual(len(pids), 5)  # knotd, responder, unbound, challtestsrv, pebble
            self.assertTrue(all(not gone(pid) for pid in pids))
        self.assertEqual([pid for pid in pids if not gone(pid)], [])
        self.assertFalse(os.path.exists(tmp))

    def test_sigterm_of_the_test_process_cleans_up(self):
        script = ("import sys, time; sys.path.insert(0, %r); from cplab import Lab\n"
                  "lab = Lab(); lab.misbehaving_zone('x.test', caa='drop'); lab.start()\n"
                  "print(lab.dir, *lab.pids, flush=True); time.sleep(60)\n" % LAB_DIR)
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                 text=True)
        try:
            tmp, *pids = child.stdout.readline().split()
            child.send_signal(signal.SIGTERM)
            self.assertEqual(child.wait(30), 128 + signal.SIGTERM)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stdout.close()
        self.assertEqual([pid for pid in map(int, pids) if not gone(pid)], [])
        self.assertFalse(os.path.exists(tmp))


if __name__ == "__main__":
    unittest.main()
