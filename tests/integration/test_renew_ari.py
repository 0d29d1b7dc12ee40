#!/usr/bin/python3
"""`certpilot renew` with ACME Renewal Information (RFC 9773), end to end.

Pebble 2.4 has no renewalInfo: the lab's ARI proxy (tests/lab/ari_proxy.py,
lab.pebble(ari=True)) adds it, serves the windows a test sets, records the
cert IDs asked for and the newOrder payloads.  Everything goes through
ari_directory_url, the account included.  The cert ID a test expects is
computed here from cert.pem with openssl(1) (RFC 9773 §4.1), independently
of acme/ari.c.

A renewal window caches until its Retry-After (at least 60 s in certpilot);
the tests that need the cache to expire run certpilot under faketime
(Debian package faketime), a few minutes in the future, and skip without it.

The helpers (one lab and one Pebble per class, a copy of an account state
per test, issue/renew/list) are tests/integration/test_renew.py's.
"""

import base64
import os
import re
import shutil
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_renew import RenewCase, file_tree, with_asan_option  # noqa: E402

DAY = 86400


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def expected_cert_id(pem_path):
    """base64url(AKI keyIdentifier) "." base64url(DER serial content octets)."""
    def x509(*args):
        return subprocess.run(["openssl", "x509", "-in", pem_path, "-noout"] + list(args),
                              capture_output=True, text=True, check=True, timeout=30).stdout
    aki = x509("-ext", "authorityKeyIdentifier")
    keyid = re.search(r"((?:[0-9A-Fa-f]{2}:)+[0-9A-Fa-f]{2})", aki).group(1)
    serial_hex = x509("-serial").strip().split("=", 1)[1]
    serial = bytes.fromhex(serial_hex if len(serial_hex) % 2 == 0 else "0" + serial_hex)
    if serial[0] & 0x80:
        serial = b"\x00" + serial  # DER keeps the integer positive
    return b64url(bytes.fromhex(keyid.replace(":", ""))) + "." + b64url(serial)


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Ari(RenewCase):
    ari = True

    def setUp(self):
        super().setUp()
        self.pebble.clear_renewal_windows()
        self.pebble.refuse_replaces(None)

    def cert_id(self, name):
        return expected_cert_id(os.path.join(self.live(name), "cert.pem"))

    def ari_state(self, name):
        return self.status(name).get("ari")

    def new_requests(self, since):
        return self.pebble.ari_requests()[since:]

    def later(self, seconds):
        """Options to run certpilot `seconds` in the future (faketime)."""
        if not shutil.which("faketime"):
            self.skipTest("needs faketime (Debian package faketime) to let the cache expire")
        # An ASan build must let libfaketime be preloaded before its runtime.
        asan = with_asan_option(dict(os.environ), "verify_asan_link_order=0")["ASAN_OPTIONS"]
        return {"wrap": ["faketime", "-f", "+%ds" % seconds], "env": {"ASAN_OPTIONS": asan}}

    def assert_chosen_in(self, name, start, end):
        ari = self.ari_state(name)
        self.assertIsNotNone(ari, self.status(name))
        self.assertEqual((ari["start"], ari["end"]), (int(start), int(end)), ari)
        self.assertGreaterEqual(ari["chosen"], int(start), ari)
        self.assertLess(ari["chosen"], int(end), ari)
        return ari["chosen"]

    # -- the tests

    def test_future_window_is_not_due_and_cached(self):
        now = time.time()
        start, end = int(now + 10 * DAY), int(now + 11 * DAY)
        self.pebble.set_renewal_window(start, end, retry_after=3600)
        c = "future.example.test"
        self.issue(c)
        cert_id = self.cert_id(c)
        n = len(self.pebble.ari_requests())
        proc = self.renew("-v")
        r = proc.doc["results"][0]
        self.assertEqual((r["outcome"], r["due"], r["exit_status"]), ("not_due", False, 0))
        self.assertEqual(self.new_requests(n), [cert_id])
        self.assert_nothing_ordered(proc)
        chosen = self.assert_chosen_in(c, start, end)
        self.assertEqual(self.ari_state(c)["cert_id"], cert_id)
        self.assertEqual(r["renew_at"], iso(chosen))
        self.assertIn(iso(start), r["why"])
        self.assertIn(iso(end), r["why"])
        # Right after: from the cache (no renewalInfo, not even the directory),
        # the same chosen time.
        n = len(self.pebble.ari_requests())
        proc = self.renew()
        self.assertEqual(self.new_requests(n), [])
        self.assertNotIn("GET /dir", proc.pebble_log)
        self.assertEqual(proc.doc["results"][0]["outcome"], "not_due")
        self.assertEqual(proc.doc["results"][0]["renew_at"], iso(chosen))
        self.assertEqual(self.ari_state(c)["chosen"], chosen)
        entry = self.list_json()[c]
        self.assertEqual((entry["renew_at"], entry["due"]), (iso(chosen), False))
        # Half an hour later, still within Retry-After: not asked.
        self.renew(**self.later(1800))
        self.assertEqual(self.new_requests(n), [])
        # After Retry-After: asked again; the same window keeps its chosen time.
        proc = self.renew(**self.later(2 * 3600))
        self.assertEqual(self.new_requests(n), [cert_id])
        self.assertEqual(proc.doc["results"][0]["outcome"], "not_due")
        self.assertEqual(self.ari_state(c)["chosen"], chosen)

    def test_past_window_renews_with_replaces(self):
        now = time.time()
        future = (int(now + 30 * DAY), int(now + 31 * DAY))
        self.pebble.set_renewal_window(*future)  # for every certificate, the new one too
        c = "past.example.test"
        self.issue(c, "www.past.example.test")
        old_id = self.cert_id(c)
        self.pebble.set_renewal_window(int(now - 2 * DAY), int(now - DAY), cert_id=old_id)
        old_current = self.current(c)
        orders = len(self.pebble.ari_new_orders())
        proc = self.renew()
        r = proc.doc["results"][0]
        self.assertEqual((r["outcome"], r["due"], r["exit_status"]), ("renewed", True, 0), r)
        new_orders = self.pebble.ari_new_orders()[orders:]
        self.assertEqual(len(new_orders), 1, new_orders)
        self.assertEqual(new_orders[0].get("replaces"), old_id)
        self.assertEqual(sorted(i["value"] for i in new_orders[0]["identifiers"]),
                         ["past.example.test", "www.past.example.test"])
        self.assertNotEqual(self.current(c), old_current)
        self.assert_pair(c)
        new_id = self.cert_id(c)
        self.assertNotEqual(new_id, old_id)
        # The new certificate has its own (future) window: not due.
        n = len(self.pebble.ari_requests())
        proc = self.renew()
        self.assertEqual(proc.doc["results"][0]["outcome"], "not_due")
        self.assertEqual(self.new_requests(n), [new_id])
        self.assert_nothing_ordered(proc)
        self.assertEqual(self.ari_state(c)["cert_id"], new_id)
        self.assert_chosen_in(c, *future)

    def test_window_changes(self):
        c = "moving.example.test"
        self.issue(c)
        now = time.time()
        w1 = (int(now + 10 * DAY), int(now + 12 * DAY))
        self.pebble.set_renewal_window(*w1, retry_after=60)
        self.renew()
        chosen1 = self.assert_chosen_in(c, *w1)
        # A new window, but the answer is still fresh: nothing asked, nothing changes.
        w2 = (int(now + 20 * DAY), int(now + 21 * DAY))
        self.pebble.set_renewal_window(*w2, retry_after=60)
        n = len(self.pebble.ari_requests())
        self.renew()
        self.assertEqual(self.new_requests(n), [])
        self.assertEqual(self.ari_state(c)["chosen"], chosen1)
        # Once it is stale: the new window, a new time inside it.
        proc = self.renew(**self.later(120))
        self.assertEqual(len(self.new_requests(n)), 1)
        chosen2 = self.assert_chosen_in(c, *w2)
        self.assertEqual(proc.doc["results"][0]["renew_at"], iso(chosen2))
        # Narrow windows: the end is excluded ([start, end)).
        offset = 120
        for width in (1, 1, 2, 2, 3):
            offset += 120
            start = int(now + 40 * DAY) + offset
            self.pebble.set_renewal_window(start, start + width, retry_after=60)
            self.renew(**self.later(offset))
            chosen = self.assert_chosen_in(c, start, start + width)
            if width == 1:
                self.assertEqual(chosen, start)

    def test_explanation_url_is_shown(self):
        url = "https://ca.example/incidents/2025-renew-early"
        now = time.time()
        self.pebble.set_renewal_window(int(now + 10 * DAY), int(now + 11 * DAY),
                                       explanation_url=url)
        c = "explained.example.test"
        self.issue(c)
        proc = self.renew()
        self.assertIn(url, proc.doc["results"][0]["why"])
        self.assertEqual(self.ari_state(c).get("explanation_url"), url)
        self.assertIn(url, self.list_json()[c]["why"])
        text = self.certpilot("list", "--state-dir", self.state)
        self.assertIn(url, text.stdout)
        # Due because the CA moved the window: the renewal's log line says why.
        self.pebble.set_renewal_window(int(now - 2 * DAY), int(now - DAY), cert_id=self.cert_id(c),
                                       explanation_url=url)
        proc = self.renew(json_out=False, **self.later(7 * 3600))  # past the 6 h default
        self.assertIn("renewed", proc.stdout)
        self.assertIn(url, proc.stderr)

    def test_renewal_info_error_falls_back_to_lifetime(self):
        c = "noinfo.example.test"
        self.issue(c)
        before = file_tree(self.live(c))
        # No window set: the proxy answers 404 with a problem document.
        n = len(self.pebble.ari_requests())
        proc = self.renew()
        self.assertEqual(self.new_requests(n), [self.cert_id(c)])
        r = proc.doc["results"][0]
        self.assertEqual((r["outcome"], r["exit_status"]), ("not_due", 0))
        self.assertIn("third", r["why"])
        self.assertIn("renewalInfo", proc.stderr)  # the warning names what failed
        self.assert_nothing_ordered(proc)
        self.assertEqual(file_tree(self.live(c)), before)

    def test_refused_replaces_is_dropped(self):
        now = time.time()
        self.pebble.set_renewal_window(int(now + 30 * DAY), int(now + 31 * DAY))
        c = "replaced.example.test"
        self.issue(c)
        old_id = self.cert_id(c)
        self.pebble.set_renewal_window(int(now - 2 * DAY), int(now - DAY), cert_id=old_id)
        self.pebble.refuse_replaces("alreadyReplaced")
        orders = len(self.pebble.ari_new_orders())
        proc = self.renew()
        self.assertEqual(proc.doc["results"][0]["outcome"], "renewed")
        sent = self.pebble.ari_new_orders()[orders:]
        self.assertEqual([o.get("replaces") for o in sent], [old_id, None], sent)
        self.assert_pair(c)


if __name__ == "__main__":
    unittest.main()
