#!/usr/bin/python3
"""HTTP requests of one issuance (issue 17): the protocol minimum, plus only the
polls that found a state still changing.

Pebble runs behind the lab's ACME proxy (tests/lab/ari_proxy.py), which
records every request it answers with the "status" of the JSON answer.  For
an issuance of N names with a fresh account (so that no authorization is
reused and every name is validated), the requests must be exactly: the
directory, one nonce, at most one newAccount, newOrder, the N authorizations,
the N challenges, one poll per authorization that found it settled, finalize,
one poll of the order that found it settled when finalize answered
"processing", the certificate; and besides those only polls whose answer was
still "pending" or "processing".  Counted from the recorded answers, never
from timings.
"""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_renew import RenewCase  # noqa: E402

CHANGING = ("pending", "processing")


class RequestCount(RenewCase):
    ari = True  # Pebble behind the proxy, which records every exchange

    def count_issue(self, *names, extra=None):
        """Issue `names` with a fresh account; the proxy's exchanges of the issue."""
        self.fresh_account()
        before = len(self.pebble.ari_exchanges())
        doc = self.issue(*names, extra=extra)
        self.assertEqual(doc["outcome"], "issued", doc)
        return self.pebble.ari_exchanges()[before:]

    def assert_minimum(self, ex, n):
        def kind(e):
            p = e["path"]
            for prefix, k in (("/dir", "dir"), ("/nonce-plz", "nonce"),
                              ("/sign-me-up", "account"), ("/order-plz", "new_order"),
                              ("/authZ/", "authz"), ("/chalZ/", "challenge"),
                              ("/finalize-order/", "finalize"), ("/my-order/", "order"),
                              ("/certZ/", "cert")):
                if p.startswith(prefix):
                    return k
            return "other"

        what = "\n".join("%s %s -> %s %s" % (e["method"], e["path"], e["http_status"],
                                              e["status"]) for e in ex)
        if os.environ.get("CP_SHOW_REQUESTS"):
            print(what, file=sys.stderr)
        kinds = [kind(e) for e in ex]
        self.assertNotIn("other", kinds, what)
        self.assertTrue(all(e["http_status"] < 300 for e in ex), what)
        self.assertEqual(kinds.count("dir"), 1, what)
        self.assertEqual(kinds.count("nonce"), 1, what)
        self.assertLessEqual(kinds.count("account"), 1, what)
        self.assertEqual(kinds.count("new_order"), 1, what)
        self.assertEqual(kinds.count("challenge"), n, what)
        self.assertEqual(kinds.count("finalize"), 1, what)
        self.assertEqual(kinds.count("cert"), 1, what)

        # Authorizations: the first fetch of each (pending: nothing reused),
        # then polls; exactly one poll of each found it settled, the last one.
        by_authz = {}
        for e in ex:
            if kind(e) == "authz":
                by_authz.setdefault(e["path"], []).append(e["status"])
        self.assertEqual(len(by_authz), n, what)
        changing = 0
        for path, states in by_authz.items():
            self.assertEqual(states[0], "pending", what)
            polls = states[1:]
            self.assertGreaterEqual(len(polls), 1, what)
            self.assertEqual(polls[-1], "valid", what)
            self.assertTrue(all(s in CHANGING for s in polls[:-1]), what)
            changing += len(polls) - 1

        # The order: polled only when finalize answered "processing"; then
        # one settled poll at the end, the others still changing.
        fin = [e for e in ex if kind(e) == "finalize"][0]
        orders = [e["status"] for e in ex if kind(e) == "order"]
        if fin["status"] == "processing":
            self.assertGreaterEqual(len(orders), 1, what)
            self.assertEqual(orders[-1], "valid", what)
            self.assertTrue(all(s in CHANGING for s in orders[:-1]), what)
            changing += len(orders) - 1
            settled_order = 1
        else:
            self.assertEqual(fin["status"], "valid", what)
            self.assertEqual(orders, [], what)
            settled_order = 0

        minimum = (3 + kinds.count("account") + 3 * n + 1 + settled_order + 1)
        self.assertEqual(len(ex), minimum + changing, what)
        # Every request after the first fetch of an authorization and the
        # order's finalize is accounted for: none repeated for nothing.
        seen_changing = sum(1 for e in ex if kind(e) in ("authz", "order")
                            and e["status"] in CHANGING) - n  # the n first fetches
        self.assertEqual(seen_changing, changing, what)

    def test_one_name_http01(self):
        ex = self.count_issue("count-one.example.test")
        self.assert_minimum(ex, 1)

    def test_three_names_http01(self):
        ex = self.count_issue("count-a.example.test", "count-b.example.test",
                              "count-c.example.test")
        self.assert_minimum(ex, 3)

    def test_one_name_tlsalpn01(self):
        ex = self.count_issue("count-alpn.example.test",
                              extra=["--standalone", "--challenge", "tls-alpn-01",
                                     "--tls-port", str(self.pebble.tls_port)])
        self.assert_minimum(ex, 1)


if __name__ == "__main__":
    unittest.main()
