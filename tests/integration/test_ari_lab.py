#!/usr/bin/python3
"""ACME Renewal Information (RFC 9773) in the lab.

Pebble 2.4 has no renewalInfo, so the lab puts an ARI proxy in front of it
(tests/lab/ari_proxy.py, lab.pebble(ari=True)).  These tests check the proxy
itself (directory, windows, Retry-After, request log, newOrder forwarding
with a real `certpilot issue`, short-lived certificates with validity=),
then acme/ari.c and the `replaces` of acme/order.c end to end through
tests/tools/acme_probe (`ari`, `ari-issue`).

Run by ctest with CERTPILOT and ACME_PROBE set; by hand:
  CERTPILOT=build/certpilot ACME_PROBE=build/tests/acme_probe \\
      /usr/bin/python3 tests/integration/test_ari_lab.py -v
"""

import base64
import datetime
import email.utils
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
from cplab import Lab  # noqa: E402

CERTPILOT = os.path.abspath(os.environ.get("CERTPILOT", os.path.join(ROOT, "build", "certpilot")))
ACME_PROBE = os.path.abspath(os.environ.get("ACME_PROBE",
                                            os.path.join(ROOT, "build", "tests", "acme_probe")))
# Nothing from the environment may send the tools through a proxy.
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
VALIDITY = 600


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def openssl_x509(pem_path, *args):
    return subprocess.run(["openssl", "x509", "-in", pem_path, "-noout"] + list(args),
                          capture_output=True, text=True, check=True, timeout=30).stdout


def openssl_date(text):
    """"Nov  4 18:38:53 2026 GMT" as a datetime."""
    return datetime.datetime.strptime(" ".join(text.split()), "%b %d %H:%M:%S %Y %Z")


def expected_cert_id(pem_path):
    """RFC 9773 §4.1 computed here with openssl(1), independently of acme/ari.c."""
    aki = openssl_x509(pem_path, "-ext", "authorityKeyIdentifier")
    keyid = re.search(r"((?:[0-9A-Fa-f]{2}:)+[0-9A-Fa-f]{2})", aki).group(1)
    serial_hex = openssl_x509(pem_path, "-serial").strip().split("=", 1)[1]
    serial = bytes.fromhex(serial_hex if len(serial_hex) % 2 == 0 else "0" + serial_hex)
    if serial[0] & 0x80:
        serial = b"\x00" + serial  # DER keeps the integer positive
    return b64url(bytes.fromhex(keyid.replace(":", ""))) + "." + b64url(serial)


def probe(*args):
    """Run acme_probe; its JSON output (it exits 0 whenever it printed JSON)."""
    r = subprocess.run([ACME_PROBE] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=120, env=CLEAN_ENV)
    if r.returncode != 0:
        raise AssertionError("acme_probe %s: exit %d\n%s" % (args[0], r.returncode, r.stderr))
    return json.loads(r.stdout)


class AriLab(unittest.TestCase):
    """One lab and one Pebble behind the ARI proxy for every test."""

    @classmethod
    def setUpClass(cls):
        cls.lab = Lab()
        cls.addClassCleanup(cls.lab.close)
        cls.lab.start()
        cls.pebble = cls.lab.pebble(env={"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"},
                                    validity=VALIDITY, ari=True)
        cls.tls = ssl.create_default_context(cafile=cls.pebble.ca_bundle)
        cls.tmp = tempfile.TemporaryDirectory(prefix="cptest-ari-")
        cls.addClassCleanup(cls.tmp.cleanup)
        # One certificate issued through the proxy by acme/order.c, for the ID tests.
        out = cls.ari_issue("-", "first.example.test")
        assert out["ok"], out
        cls.cert_path = os.path.join(cls.tmp.name, "first.pem")
        with open(cls.cert_path, "w") as f:
            f.write(out["pem"])
        cls.cert_id = out["cert_id"]

    def setUp(self):
        self.pebble.clear_renewal_windows()
        self.pebble.refuse_replaces(None)

    @classmethod
    def ari_issue(cls, replaces, name, server=None):
        return probe("ari-issue", "--ca-bundle", cls.pebble.ca_bundle,
                     server or cls.pebble.ari_directory_url, cls.pebble.http_port, replaces, name)

    def ari(self, *target, server=None):
        return probe("ari", "--ca-bundle", self.pebble.ca_bundle,
                     server or self.pebble.ari_directory_url, *target)

    def get(self, url):
        """(status, headers, body) of a plain GET to the proxy."""
        try:
            with urllib.request.urlopen(url, context=self.tls, timeout=10) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    # -- the proxy itself

    def test_directory_adds_renewal_info(self):
        status, headers, body = self.get(self.pebble.ari_directory_url)
        self.assertEqual(status, 200)
        directory = json.loads(body)
        proxy = self.pebble.ari_directory_url.rsplit("/", 1)[0]
        self.assertEqual(directory["renewalInfo"], proxy + "/renewalInfo")
        for key in ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange"):
            self.assertTrue(directory[key].startswith(proxy + "/"), directory[key])
        self.assertNotIn("renewalInfo", self.pebble.directory())  # Pebble 2.4 has none

    def test_window_served_and_logged(self):
        start = datetime.datetime(2030, 1, 2, 4, 0, 0, tzinfo=datetime.timezone.utc)
        self.pebble.set_renewal_window(start, 1893729600, cert_id="AAAA.BBBB", retry_after=21600,
                                       explanation_url="https://ca.test/why")
        self.pebble.set_renewal_window(1893456000, 1893459600, retry_after="Wed, 21 Oct 2015 "
                                       "07:28:00 GMT")
        before = len(self.pebble.ari_requests())
        base = self.pebble.ari_directory_url.rsplit("/", 1)[0] + "/renewalInfo/"
        status, headers, body = self.get(base + "AAAA.BBBB")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Retry-After"], "21600")
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(json.loads(body), {
            "suggestedWindow": {"start": "2030-01-02T04:00:00Z", "end": "2030-01-04T04:00:00Z"},
            "explanationURL": "https://ca.test/why"})
        status, headers, body = self.get(base + "CCCC.DDDD")  # the default window
        self.assertEqual(status, 200)
        self.assertEqual(headers["Retry-After"], "Wed, 21 Oct 2015 07:28:00 GMT")
        self.assertEqual(json.loads(body), {
            "suggestedWindow": {"start": "2030-01-01T00:00:00Z", "end": "2030-01-01T01:00:00Z"}})
        self.pebble.clear_renewal_windows()
        status, headers, body = self.get(base + "AAAA.BBBB")
        self.assertEqual(status, 404)
        self.assertEqual(headers["Content-Type"], "application/problem+json")
        self.assertEqual(self.pebble.ari_requests()[before:],
                         ["AAAA.BBBB", "CCCC.DDDD", "AAAA.BBBB"])

    def test_window_without_retry_after_has_no_header(self):
        self.pebble.set_renewal_window(1893456000, 1893459600)
        status, headers, _ = self.get(self.pebble.ari_directory_url.rsplit("/", 1)[0]
                                      + "/renewalInfo/AAAA.BBBB")
        self.assertEqual(status, 200)
        self.assertIsNone(headers["Retry-After"])

    def test_certpilot_issue_through_proxy(self):
        """newOrder is forwarded with the client's Host (Pebble's JWS url and kid
        checks pass), its payload is recorded, and validity= is honoured."""
        state = os.path.join(self.tmp.name, "state-cp")
        before = len(self.pebble.ari_new_orders())
        argv = [CERTPILOT, "issue", "--agree-tos", "--json", "-d", "cp.example.test",
                "--standalone", "--http-port", str(self.pebble.http_port),
                "--caa-preflight", "off", "--server", self.pebble.ari_directory_url,
                "--ca-bundle", self.pebble.ca_bundle, "--state-dir", state]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=CLEAN_ENV)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        doc = json.loads(r.stdout)
        orders = self.pebble.ari_new_orders()[before:]
        self.assertEqual(orders, [{"identifiers": [{"type": "dns", "value": "cp.example.test"}]}])
        cert = os.path.join(doc["live_dir"], "cert.pem")
        dates = dict(line.split("=", 1) for line in openssl_x509(cert, "-dates").splitlines())
        lifetime = openssl_date(dates["notAfter"]) - openssl_date(dates["notBefore"])
        self.assertEqual(lifetime.total_seconds(), VALIDITY - 1)  # Pebble: validity - 1 s

    # -- acme/ari.c through acme_probe

    def test_cert_id_matches_openssl(self):
        self.assertEqual(self.cert_id, expected_cert_id(self.cert_path))
        self.assertEqual(self.ari(self.cert_path)["cert_id"], self.cert_id)

    def test_renewal_info_get(self):
        now = int(time.time())
        self.pebble.set_renewal_window(now + 100, now + 200, cert_id=self.cert_id,
                                       retry_after=3600, explanation_url="https://ca.test/ari")
        before = len(self.pebble.ari_requests())
        out = self.ari(self.cert_path)
        self.assertIsNone(out["error"])
        self.assertEqual(out["renewal_info"], {"start": now + 100, "end": now + 200,
                                               "explanation_url": "https://ca.test/ari",
                                               "retry_after": 3600})
        self.assertEqual(self.pebble.ari_requests()[before:], [self.cert_id])

    def test_retry_after_default_and_clamps(self):
        future = email.utils.formatdate(time.time() + 7200, usegmt=True)
        cases = [(None, 21600),         # absent: RFC 9773 §4.3.3, six hours
                 ("soon", 21600),       # unreadable: the same
                 (5, 60),               # at least one minute
                 (0, 60),
                 (10 ** 7, 86400),      # at most one day
                 (43200, 43200)]
        for value, want in cases:
            self.pebble.set_renewal_window(1893456000, 1893459600, cert_id="AAAA.BBBB",
                                           retry_after=value)
            out = self.ari("--id", "AAAA.BBBB")
            self.assertIsNone(out["error"], value)
            self.assertEqual(out["renewal_info"]["retry_after"], want, value)
        self.pebble.set_renewal_window(1893456000, 1893459600, cert_id="AAAA.BBBB",
                                       retry_after=future)
        got = self.ari("--id", "AAAA.BBBB")["renewal_info"]["retry_after"]
        self.assertTrue(7190 <= got <= 7200, got)

    def test_bad_windows_refused(self):
        for start, end, explanation in (
                (1893459600, 1893459600, "ends before it starts"),
                (1893459600, 1893456000, "ends before it starts"),
                ("yesterday", 1893456000, "start is not an RFC 3339"),
                (1893456000, "2030-01-02 01:00:00", "end is not an RFC 3339")):
            self.pebble.set_renewal_window(start, end, cert_id="AAAA.BBBB")
            out = self.ari("--id", "AAAA.BBBB")
            self.assertIsNone(out["renewal_info"])
            self.assertEqual(out["error"]["code"], "protocol error")
            self.assertIn(explanation, out["error"]["message"])

    def test_unknown_certificate_is_the_cas_problem(self):
        out = self.ari("--id", "AAAA.BBBB")  # no window set: the proxy answers 404
        self.assertEqual(out["error"]["code"], "refused by the CA")
        self.assertIn("HTTP 404", out["error"]["message"])
        self.assertIn("no renewal window set for AAAA.BBBB", out["error"]["message"])

    def test_malformed_cert_id_not_sent(self):
        before = len(self.pebble.ari_requests())
        for bad in ("../dir", "AAAA", "AAAA.", ".BBBB", "AA=A.BBBB", "AAAA.BB.BB",
                    "A" * 600 + ".B"):
            out = self.ari("--id", bad)
            self.assertEqual(out["error"]["code"], "invalid input", bad)
        self.assertEqual(len(self.pebble.ari_requests()), before)

    def test_ca_without_renewal_info(self):
        out = self.ari(self.cert_path, server=self.pebble.directory_url)
        self.assertEqual(out["cert_id"], self.cert_id)
        self.assertEqual(out["error"]["code"], "invalid input")
        self.assertIn("offers no renewal information", out["error"]["message"])

    # -- replaces (acme/order.c)

    def test_replaces_sent(self):
        before = len(self.pebble.ari_new_orders())
        out = self.ari_issue(self.cert_id, "first.example.test")
        self.assertTrue(out["ok"], out)
        self.assertFalse(out["replaces_dropped"])
        self.assertEqual(self.pebble.ari_new_orders()[before:], [
            {"identifiers": [{"type": "dns", "value": "first.example.test"}],
             "replaces": self.cert_id}])

    def test_replaces_refused_then_dropped(self):
        for refusal in ("alreadyReplaced", "malformed", "unauthorized"):
            self.pebble.refuse_replaces(refusal)
            before = len(self.pebble.ari_new_orders())
            out = self.ari_issue(self.cert_id, "first.example.test")
            self.assertTrue(out["ok"], out)
            self.assertTrue(out["replaces_dropped"], refusal)
            self.assertIsNone(out["problem"])  # the retry's success clears it
            self.assertEqual([("replaces" in p) for p in self.pebble.ari_new_orders()[before:]],
                             [True, False], refusal)

    def test_replaces_not_sent_without_renewal_info(self):
        """RFC 9773 §5: no replaces to a CA without ARI (Pebble directly); the
        order still goes through."""
        out = self.ari_issue(self.cert_id, "first.example.test", server=self.pebble.directory_url)
        self.assertTrue(out["ok"], out)
        self.assertFalse(out["replaces_dropped"])


class AriProxyLifetime(unittest.TestCase):
    def test_proxy_stops_with_the_lab(self):
        lab = Lab()
        try:
            lab.start()
            pebble = lab.pebble(ari=True)
            port = int(pebble.ari_directory_url.split(":")[2].split("/")[0])
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                pass
        finally:
            lab.close()
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()

    def test_ari_calls_need_ari(self):
        with Lab() as lab:
            lab.start()
            pebble = lab.pebble()
            self.assertIsNone(pebble.ari_directory_url)
            with self.assertRaises(RuntimeError):
                pebble.ari_requests()


if __name__ == "__main__":
    unittest.main()
