#!/usr/bin/python3
"""`certpilot caa check` with a hundred identifiers against a slow resolver.

The resolver is the lab's responder, asked directly, in its serial mode: a
single-threaded server that answers one query at a time, each taking a few
milliseconds, and loses UDP queries that arrive while its queue (the socket
buffer of a real one) is full.  certpilot sends all ~240 queries in one wave
(issue 17: a batch costs one round trip): the wave overflows such a queue.
When c-ares resent the lost queries itself, all at once, they overflowed it
again and came back as `query timed out` for names whose answer was simply
late.  The lost first tries are now asked again at a pace the resolver showed
it can take.  Every verdict is compared with the one worked out here from the
zone data the test declares; no timing is asserted.
"""

import collections
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from cplab import Lab  # noqa: E402

CERTPILOT = os.environ.get("CERTPILOT", "build/certpilot")
LE = "letsencrypt.org"
ZONES = ("allow.test", "deny.test", "mixed.test", "open.test")


def issue(issuer):
    return '0 issue "%s"' % issuer


def burst_data(count):
    """Identifiers and the CAA records (name -> issuers) of the burst zones.

    Identifiers have 2 or 3 labels under one of four zones, so that the batch
    asks about 240 distinct names.  Some names carry records of their own, so
    that the verdicts differ: allowed by the apex, denied by the apex, denied
    or allowed closer to the identifier, and allowed for lack of records.
    """
    records = {"allow.test": [LE], "deny.test": ["otherca.example"]}
    idents = []
    for i in range(count):
        zone = ZONES[i % len(ZONES)]
        host = "h%d.%s" % (i, zone)
        ident = ("v.w%d.%s" % (i, host)) if i % 3 == 0 else ("w%d.%s" % (i, host))
        if i % 5 == 1:
            records[host] = [";"]  # forbids issuance below it
        elif i % 5 == 2:
            records[host] = ["otherca.example", LE]
        elif i % 5 == 3:
            records[ident] = ["otherca.example"]
        idents.append(ident)
    return idents, records


def expected(ident, records):
    """(status, relevant name) per spec §4-§5 for these plain issue records."""
    labels = ident.split(".")
    for k in range(len(labels)):
        name = ".".join(labels[k:])
        if name in records:
            return ("allowed" if LE in records[name] else "denied"), name
    return "allowed", None


def zone_text(zone, records):
    lines = []
    for name, issuers in sorted(records.items()):
        if name == zone or name.endswith("." + zone):
            owner = "@" if name == zone else name[:-len(zone) - 1]
            lines += ["%s CAA %s" % (owner, issue(v)) for v in issuers]
    return "\n".join(lines)


def start_lab(service_ms, backlog, records):
    lab = Lab()
    try:
        lab.misbehaving_zone("test")  # the TLD: asked too, no records
        for zone in ZONES:
            lab.misbehaving_zone(zone, zone_text(zone, records))
        lab.serial_responder(service_ms, backlog)
        lab.start()
    except BaseException:
        lab.close()
        raise
    return lab


def run_check(lab, idents, *extra):
    argv = [CERTPILOT, "caa", "check", "--json", "--resolver", lab.responder] + list(extra)
    proc = subprocess.run(argv + idents, capture_output=True, text=True, timeout=120)
    if proc.returncode not in (0, 1, 2):
        raise AssertionError("certpilot failed (%d): %s" % (proc.returncode, proc.stderr))
    return json.loads(proc.stdout)


def wrong_verdicts(doc, idents, records):
    """[(identifier, expected, got, what the failed look-ups answered)]."""
    wrong = []
    for ident, result in zip(idents, doc["results"]):
        want = expected(ident, records)
        got = (result["status"], result["relevant_name"])
        if got != want:
            failed = sorted({l["answer"] for l in result["lookups"] if l["answer"] != "records"})
            wrong.append((ident, want, got, failed))
    return wrong


class CaaBurst(unittest.TestCase):
    def check_all_right(self, lab, idents, records, *extra):
        before = lab.responder_stats()
        doc = run_check(lab, idents, *extra)
        after = lab.responder_stats()
        self.assertEqual([r["identifier"] for r in doc["results"]], idents)
        wrong = wrong_verdicts(doc, idents, records)
        stats = {k: after.get(k, 0) - before.get(k, 0)
                 for k in ("total", "udp", "tcp", "backlog_dropped")}
        stats["backlog_max"] = after.get("backlog_max", 0)
        failed = {(l["name"], l["answer"]) for r in doc["results"] for l in r["lookups"]
                  if l["answer"] != "records"}
        self.assertEqual(wrong, [], "%d of %d verdicts wrong, %d of %d look-ups failed "
                         "(by kind: %s); responder %s"
                         % (len(wrong), len(idents), len(failed), doc["queries"],
                            dict(collections.Counter(kind for _, kind in failed)), stats))
        return doc, stats

    def assert_each_loss_resent_once(self, doc, stats):
        """Every query certpilot sent reached the responder, and certpilot sent
        each query the responder dropped once more, never to be dropped again."""
        names = {l["name"] for r in doc["results"] for l in r["lookups"]}
        resent = doc["queries"] - len(names)
        # c-ares sends nothing behind the count: a lost first try is asked again
        # by certpilot, which counts it.
        self.assertEqual(stats["total"], doc["queries"], stats)
        self.assertEqual(stats["backlog_dropped"], resent, stats)
        self.assertGreaterEqual(doc["round_trips"], 2 if resent else 1)  # resent: later waves
        return names

    def test_hundred_identifiers_against_a_slow_serial_resolver(self):
        # 20 ms per answer, at most 48 queries waiting: the first wave of ~240
        # loses most of them; the lost ones go again at most 24 in flight
        # (half of the 49 answered), which never fill the queue.
        idents, records = burst_data(100)
        self.assertGreaterEqual(len({expected(i, records) for i in idents}), 6)
        statuses = {expected(i, records)[0] for i in idents}
        self.assertEqual(statuses, {"allowed", "denied"})
        with start_lab(20, 48, records) as lab:
            doc, stats = self.check_all_right(lab, idents, records)
            names = self.assert_each_loss_resent_once(doc, stats)
            self.assertGreaterEqual(len(names), 230)
            self.assertGreater(stats["backlog_dropped"], 0, stats)

    def test_lost_queries_are_resent(self):
        # A queue of 20: about half of the 43 queries of the wave are lost.
        # They are asked again a third of the 6 s budget after the first try,
        # at most 10 in flight; the second try is answered.
        idents, records = burst_data(16)
        with start_lab(10, 20, records) as lab:
            doc, stats = self.check_all_right(lab, idents, records, "--timeout", "6")
            self.assertGreater(stats["backlog_dropped"], 0, stats)
            self.assert_each_loss_resent_once(doc, stats)

if __name__ == "__main__":
    unittest.main()
