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
from cplab import Lab, dns_query, responder, split_addr  # noqa: E402


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


class ZoneNameservers(unittest.TestCase):
    """Zones with several nameservers on their own loopback addresses, all on
    lab.auth_port, as `certpilot doctor` meets them: each address asked the
    way dig +norec asks it."""

    @classmethod
    def setUpClass(cls):
        cls.lab = lab = Lab()
        cls.addClassCleanup(lab.close)
        caa = '@ CAA 0 issue "letsencrypt.org"'
        cls.ns = {
            "multi": lab.zone("multi.test", caa + "\nwww A 192.0.2.10", servers=[
                "knot", "knot", responder(caa="servfail"), responder(caa="notimp"),
                responder(caa="refused"), responder(caa="drop")]),
            "disagree": lab.zone("disagree.test", caa, servers=[
                "knot", responder(text='@ CAA 0 issue "otherca.example"')]),
            "lame": lab.zone("lame.test", caa, servers=["knot", "lame", responder(aa=False),
                                                       "dead"]),
            "signed": lab.zone("signed.test", caa, dnssec=True, servers=["knot", "knot"]),
            "bogus": lab.zone("bogus.test", caa, dnssec="broken", servers=["knot", "knot"]),
        }
        cls.single = lab.zone("single.test", caa)
        lab.start()

    def ask(self, address, name, qtype="CAA", **kw):
        """dig @address -p auth_port +norec name qtype"""
        return dns_query("%s:%d" % (address, self.lab.auth_port), name, qtype, rd=False, **kw)

    def test_addresses_names_and_port(self):
        self.assertEqual(self.ns["multi"], [("ns%d.multi.test" % i, "127.0.0.%d" % (i + 1))
                                            for i in range(1, 7)])
        self.assertEqual(self.ns["disagree"][0], ("ns1.disagree.test", "127.0.0.8"))
        self.assertEqual(self.lab.nameservers("multi.test."), self.ns["multi"])
        self.assertEqual(self.single, [("ns.single.test", "127.0.0.1")])
        self.assertEqual(self.lab.nameservers("test"), [("ns.test", "127.0.0.1")])
        self.assertEqual(split_addr(self.lab.knot), ("127.0.0.1", self.lab.auth_port))
        with self.assertRaises(KeyError):
            self.lab.nameservers("nowhere.test")

    def test_nothing_listens_on_ipv6_loopback_at_auth_port(self):
        # An NS address ::1 reaches nothing: the port was picked free there too.
        try:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        except OSError:
            self.skipTest("no IPv6")
        with sock:
            sock.bind(("::1", self.lab.auth_port))

    def test_each_server_of_one_zone(self):
        expected = [("NOERROR", True), ("NOERROR", True), ("SERVFAIL", False),
                    ("NOTIMP", False), ("REFUSED", False)]
        for (ns, address), (rcode, aa) in zip(self.ns["multi"], expected):
            with self.subTest(server=ns):
                reply = self.ask(address, "multi.test")
                self.assertEqual(RCODE.get(reply.header.rcode), rcode)
                self.assertEqual(bool(reply.header.aa), aa)
                self.assertFalse(reply.header.rd)
                self.assertEqual(caa_values(reply),
                                 ['0 issue "letsencrypt.org"'] if aa else [])

    def test_misbehaving_server_serves_other_types_of_the_same_zone(self):
        for ns, address in self.ns["multi"][2:]:
            with self.subTest(server=ns):
                reply = self.ask(address, "www.multi.test", "A")
                self.assertEqual(reply.header.rcode, RCODE.NOERROR)
                self.assertTrue(reply.header.aa)
                self.assertEqual([str(rr.rdata) for rr in reply.rr], ["192.0.2.10"])
                soa = self.ask(address, "multi.test", "SOA")
                self.assertEqual(str(soa.rr[0].rdata).split()[0], "ns1.multi.test.")

    def test_dropping_server_never_answers_caa(self):
        address = self.ns["multi"][5][1]
        with self.assertRaises(socket.timeout):
            self.ask(address, "multi.test", timeout=1.0)
        self.assertEqual(self.lab.responder_stats(address)["type:CAA"], 1)
        self.assertEqual(self.ask(address, "multi.test", "NS").header.rcode, RCODE.NOERROR)

    def test_every_server_lists_the_same_ns_set_with_glue(self):
        names = sorted(ns + "." for ns, _ in self.ns["multi"])
        for ns, address in self.ns["multi"][:5]:
            with self.subTest(server=ns):
                reply = self.ask(address, "multi.test", "NS")
                self.assertEqual(sorted(str(rr.rdata) for rr in reply.rr), names)
                glue = self.ask(address, "ns3.multi.test", "A")
                self.assertEqual([str(rr.rdata) for rr in glue.rr], ["127.0.0.4"])

    def test_parent_delegates_with_glue(self):
        # knotd serves multi.test. on 127.0.0.1 too, so asking it gives the
        # child's answer, not a referral: read test. from knotd instead.
        out = subprocess.run(["knotc", "-c", self.lab._knot_conf, "zone-read", "test."],
                             check=True, capture_output=True, text=True).stdout
        records = {tuple(line.split()[1:2] + line.split()[3:]) for line in out.splitlines()}
        for ns, address in self.ns["multi"]:
            self.assertIn(("multi.test.", "NS", ns + "."), records)
            self.assertIn((ns + ".", "A", address), records)

    def test_resolver_finds_the_delegation(self):
        ns = self.lab.query("multi.test", "NS")
        self.assertEqual(len(ns.rr), 6)
        self.assertEqual([str(rr.rdata) for rr in self.lab.query("ns6.multi.test", "A").rr],
                         ["127.0.0.7"])

    def test_resolver_answers_past_bad_servers(self):
        for _ in range(4):  # unbound picks servers at random
            # A time-out from the dropping server costs unbound up to seconds.
            reply = self.lab.query("multi.test", "CAA", timeout=15)
            self.assertEqual(reply.header.rcode, RCODE.NOERROR)
            self.assertEqual(caa_values(reply), ['0 issue "letsencrypt.org"'])

    def test_servers_that_disagree(self):
        (_, knot), (_, other) = self.ns["disagree"]
        self.assertEqual(caa_values(self.ask(knot, "disagree.test")),
                         ['0 issue "letsencrypt.org"'])
        reply = self.ask(other, "disagree.test")
        self.assertTrue(reply.header.aa)
        self.assertEqual(caa_values(reply), ['0 issue "otherca.example"'])

    def test_lame_servers(self):
        (_, knot), (_, refusing), (_, cache), _ = self.ns["lame"]
        self.assertTrue(self.ask(knot, "lame.test").header.aa)
        reply = self.ask(refusing, "lame.test")
        self.assertEqual(reply.header.rcode, RCODE.REFUSED)
        self.assertFalse(reply.header.aa)
        self.assertEqual(self.ask(refusing, "lame.test", "SOA").header.rcode, RCODE.REFUSED)
        reply = self.ask(cache, "lame.test")
        self.assertEqual(reply.header.rcode, RCODE.NOERROR)
        self.assertFalse(reply.header.aa)
        self.assertEqual(caa_values(reply), ['0 issue "letsencrypt.org"'])

    def test_dead_server_is_listed_but_nothing_answers(self):
        ns, dead = self.ns["lame"][3]
        self.assertEqual(ns, "ns4.lame.test")
        with self.assertRaises((ConnectionRefusedError, socket.timeout)):
            self.ask(dead, "lame.test", timeout=1.0)
        self.assertEqual(len(self.lab.query("lame.test", "NS").rr), 4)

    def test_signed_zone_on_every_knot_address(self):
        for zone in ("signed", "bogus"):
            for ns, address in self.ns[zone]:
                with self.subTest(server=ns):
                    reply = self.ask(address, zone + ".test", dnssec_ok=True)
                    self.assertTrue(reply.header.aa)
                    self.assertIn(QTYPE.RRSIG, [rr.rtype for rr in reply.rr])
        self.assertTrue(self.lab.query("signed.test", "CAA").header.ad)
        self.assertEqual(self.lab.query("bogus.test", "CAA").header.rcode, RCODE.SERVFAIL)
        reply = self.lab.query("bogus.test", "CAA", cd=True)
        self.assertEqual(caa_values(reply), ['0 issue "letsencrypt.org"'])

    def test_bad_server_specs(self):
        lab = Lab()
        self.addCleanup(lab.close)
        for servers in ([], ["bind"], [{"CAA": "servfail"}], "knot"):
            with self.subTest(servers=servers):
                with self.assertRaises(ValueError):
                    lab.zone("x.test", servers=servers)
        lab.zone("x.test", servers=["knot"])  # nothing was declared by the failures


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

    def test_close_stops_nameserver_responders(self):
        with Lab() as lab:
            lab.zone("multi.test", servers=["knot", responder(caa="drop"), "lame"])
            lab.start()
            pids = lab.pids
            self.assertEqual(len(pids), 4)  # knotd, two responders, unbound
        self.assertEqual([pid for pid in pids if not gone(pid)], [])

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
