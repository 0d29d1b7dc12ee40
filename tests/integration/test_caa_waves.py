#!/usr/bin/python3
"""Round trips of a `certpilot caa check` batch (issue 17: at most two for 100
identifiers), counted structurally, never timed.

certpilot reports `round_trips` in its JSON: a query sent before any answer
came back is in the first wave, one sent after answers of wave k came back is
in wave k + 1.  Every name of a batch is known before the first query (each
identifier and all its parents, deduplicated; the resolver follows CNAMEs), so
a batch of a hundred identifiers is one wave.  The resolver's own count of the
queries it received (Unbound's statistics, the responder's counter) checks
that the wave lost nothing and that no query was sent twice.
"""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from cplab import Lab  # noqa: E402

CERTPILOT = os.environ.get("CERTPILOT", "build/certpilot")
LE = "letsencrypt.org"


def names_of(ident):
    """The identifier and every parent up to the TLD."""
    labels = ident.split(".")
    return [".".join(labels[k:]) for k in range(len(labels))]


def batch():
    """100 identifiers under four zones, with parents shared between them and
    some aliases into another zone; (identifiers, expected) where expected maps
    an identifier to (status, relevant name, alias target)."""
    idents, want = [], {}
    for i in range(100):
        kind = i % 4
        if kind == 0:  # allowed by the apex of allow.test
            ident = "h%d.svc%d.allow.test" % (i, i % 5)
            want[ident] = ("allowed", "allow.test", None)
        elif kind == 1:  # denied by the apex of deny.test
            ident = "h%d.deny.test" % i
            want[ident] = ("denied", "deny.test", None)
        elif kind == 2:  # an alias into deny.test's pool name, which allows
            ident = "a%d.alias.test" % i
            want[ident] = ("allowed", ident, "pool.deny.test")
        else:  # nothing anywhere
            ident = "www.h%d.open.test" % i
            want[ident] = ("allowed", None, None)
        idents.append(ident)
    return idents, want


class CaaWaves(unittest.TestCase):
    lab = None

    @classmethod
    def setUpClass(cls):
        idents, _ = batch()
        aliases = "\n".join("%s CNAME pool.deny.test." % i.split(".")[0]
                            for i in idents if i.endswith(".alias.test"))
        lab = cls.lab = Lab()
        try:
            lab.zone("allow.test", '@ CAA 0 issue "%s"' % LE)
            lab.zone("deny.test", '@ CAA 0 issue "otherca.example"\n'
                                  'pool CAA 0 issue "%s"' % LE)
            lab.zone("alias.test", aliases)
            lab.zone("open.test")
            # Served by the responder, which counts what it gets; asked
            # directly, it must hold the TLD too.
            lab.misbehaving_zone("flat.test")
            lab.misbehaving_zone("test")
            lab.start()
        except BaseException:
            lab.close()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.lab is not None:
            cls.lab.close()

    def check(self, resolver, idents):
        argv = [CERTPILOT, "caa", "check", "--json", "--resolver", resolver] + idents
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        self.assertIn(proc.returncode, (0, 1), proc.stderr)
        return json.loads(proc.stdout)

    def test_hundred_identifiers_in_one_wave_through_unbound(self):
        idents, want = batch()
        names = {n for i in idents for n in names_of(i)}
        self.lab.flush()
        before = self.lab.resolver_queries()
        doc = self.check(self.lab.resolver, idents)
        received = self.lab.resolver_queries() - before
        got = {r["identifier"]: (r["status"], r["relevant_name"], r["alias_target"])
               for r in doc["results"]}
        self.assertEqual(got, want)
        # Each distinct name once (parents shared by identifiers included), all
        # in the first wave; the aliases needed no second one.
        self.assertEqual({l["name"] for r in doc["results"] for l in r["lookups"]}, names)
        self.assertEqual(doc["queries"], len(names))
        self.assertEqual(received, len(names))
        self.assertEqual(doc["round_trips"], 1)

    def test_hundred_four_label_identifiers_in_one_wave(self):
        # The benchmark's shape (bench/caa_batch.py): 202 distinct names.
        idents = ["www.site%d.flat.test" % i for i in range(100)]
        before = self.lab.responder_stats()["total"]
        doc = self.check(self.lab.responder, idents)
        received = self.lab.responder_stats()["total"] - before
        self.assertEqual({r["status"] for r in doc["results"]}, {"allowed"})
        self.assertEqual(doc["queries"], 202)
        self.assertEqual(received, 202)
        self.assertEqual(doc["round_trips"], 1)


if __name__ == "__main__":
    unittest.main()
