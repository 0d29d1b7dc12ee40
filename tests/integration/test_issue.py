#!/usr/bin/python3
"""`certpilot account` and `certpilot issue` end to end against a real Pebble.

Pebble (with pebble-challtestsrv as its DNS) validates the challenges that
certpilot answers: http-01 through the built-in server and through a webroot
served by a real static HTTP server, tls-alpn-01 through the built-in TLS
listener, dns-01 through the example challtestsrv hook.  Certificates are
verified with openssl against Pebble's root from its management API.
"""

import json
import os
import re
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
from cplab import Lab, ipv6_loopback  # noqa: E402

CERTPILOT = os.path.abspath(os.environ.get("CERTPILOT", os.path.join(ROOT, "build", "certpilot")))
CHALLTESTSRV_HOOK = os.path.join(ROOT, "hooks", "examples", "dns-challtestsrv.sh")


def serve_directory(test, port, directory, bind="127.0.0.1"):
    """A static HTTP server of `directory` on 127.0.0.1:`port` (where Pebble
    validates http-01; or on `bind`) until `test` ends; returns once it
    accepts."""
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", bind, "--directory", directory,
         str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    test.addCleanup(lambda: (server.terminate(), server.wait(5)))
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection((bind, port), 1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def openssl(*args, stdin=None):
    return subprocess.run(["openssl"] + list(args), input=stdin, capture_output=True, text=True,
                          timeout=30)


class PebbleCase(unittest.TestCase):
    """One lab and one Pebble per test class; a fresh state dir per test."""

    pebble_env = {"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}

    @classmethod
    def setUpClass(cls):
        cls.lab = Lab()
        cls.lab.start()
        cls.pebble = cls.lab.pebble(env=cls.pebble_env)
        cls.root_pem = cls.pebble.root()

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="cptest-")
        self.state = os.path.join(self.tmp.name, "state")

    def tearDown(self):
        self.tmp.cleanup()

    def server(self):
        return self.pebble.directory_url

    def certpilot(self, *args, expect=0, env=None):
        argv = [CERTPILOT] + list(args) + [
            "--server", self.server(), "--ca-bundle", self.pebble.ca_bundle,
            "--state-dir", self.state]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, **(env or {})))
        if expect is not None:
            self.assertEqual(proc.returncode, expect, "exit status of %s\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(argv), proc.stdout, proc.stderr))
        return proc

    def issue(self, *args, expect=0):
        proc = self.certpilot("issue", "--agree-tos", "--json", *args, expect=expect)
        return json.loads(proc.stdout) if expect == 0 else proc

    def assert_certificate(self, doc, names, key_alg="id-ecPublicKey"):
        live = doc["live_dir"]
        for name in ("privkey.pem", "cert.pem", "chain.pem", "fullchain.pem"):
            self.assertTrue(os.path.exists(os.path.join(live, name)), name)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(live, "privkey.pem")).st_mode), 0o600)
        root = os.path.join(self.tmp.name, "root.pem")
        with open(root, "w") as f:
            f.write(self.root_pem)
        # The chain verifies to Pebble's root, with the intermediates as served.
        v = openssl("verify", "-CAfile", root, "-untrusted", os.path.join(live, "chain.pem"),
                    os.path.join(live, "cert.pem"))
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        text = openssl("x509", "-in", os.path.join(live, "cert.pem"), "-noout", "-text").stdout
        for name in names:
            self.assertIn("DNS:" + name, text)
        self.assertIn(key_alg, text)
        # The key is the certificate's key.
        pub_cert = openssl("x509", "-in", os.path.join(live, "cert.pem"), "-noout", "-pubkey")
        pub_key = openssl("pkey", "-in", os.path.join(live, "privkey.pem"), "-pubout")
        self.assertEqual(pub_cert.stdout, pub_key.stdout)
        with open(os.path.join(live, "fullchain.pem")) as f:
            full = f.read()
        with open(os.path.join(live, "cert.pem")) as f:
            self.assertTrue(full.startswith(f.read()))



class Accounts(PebbleCase):
    def test_register_then_show(self):
        proc = self.certpilot("account", "register", "--agree-tos", "--email", "ops@example.test",
                              "--json")
        doc = json.loads(proc.stdout)
        self.assertTrue(doc["url"].startswith("https://127.0.0.1:"))
        acct_dirs = os.listdir(os.path.join(self.state, "accounts"))
        self.assertEqual(len(acct_dirs), 1)
        acct = os.path.join(self.state, "accounts", acct_dirs[0])
        self.assertEqual(stat.S_IMODE(os.stat(self.state).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(acct, "account.key")).st_mode), 0o600)
        with open(os.path.join(acct, "account.json")) as f:
            saved = json.load(f)
        self.assertEqual(saved["url"], doc["url"])
        self.assertEqual(saved["contact"], ["mailto:ops@example.test"])
        shown = json.loads(self.certpilot("account", "show", "--json").stdout)
        self.assertEqual(shown["url"], doc["url"])
        self.assertEqual(shown["thumbprint"], doc["thumbprint"])

    def test_register_needs_agree_tos(self):
        proc = self.certpilot("account", "register", expect=64)
        self.assertIn("--agree-tos", proc.stderr)

    def test_issue_without_account_says_how(self):
        proc = self.certpilot("issue", "-d", "a.example.test", "--standalone", "--http-port",
                              str(self.pebble.http_port), expect=78)
        self.assertIn("account register --agree-tos", proc.stderr)

    def test_untrusted_ca_is_refused(self):
        argv = [CERTPILOT, "account", "show", "--server", self.pebble.directory_url,
                "--state-dir", self.state]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 5, proc.stderr)
        self.assertIn("certificate", proc.stderr.lower())


class Issue(PebbleCase):
    def test_standalone_http01_two_names(self):
        names = ["www.example.test", "example.test"]
        args = sum((["-d", n] for n in names), [])
        doc = self.issue(*args, "--standalone", "--http-port", str(self.pebble.http_port))
        self.assertEqual(doc["names"], names)
        self.assertEqual(doc["cert_name"], "www.example.test")
        self.assert_certificate(doc, names)

    def test_webroot_behind_a_static_server(self):
        webroot = os.path.join(self.tmp.name, "www")
        os.mkdir(webroot)
        serve_directory(self, self.pebble.http_port, webroot)
        # the webroot check fetches its probe there first (names resolved by
        # challtestsrv's DNS, as Pebble resolves them)
        doc = self.issue("-d", "web.example.test", "--webroot", webroot, "--resolver",
                         self.pebble.dns_server, "--webroot-check-port",
                         str(self.pebble.http_port))
        self.assert_certificate(doc, ["web.example.test"])
        # The challenge file and the directories certpilot created are gone.
        self.assertEqual(os.listdir(webroot), [])

    def test_webroot_check_tries_ipv4_after_an_unreachable_ipv6_address(self):
        # As a CA does: the name's AAAA (::1) is tried first; when nothing
        # listens there, its A (127.0.0.1, the static server) next.
        if not ipv6_loopback():
            self.skipTest("no ::1 on this machine")
        name = "dual.example.test"
        body = json.dumps({"host": name + ".", "addresses": ["::1"]}).encode()
        urllib.request.urlopen(self.pebble.challtestsrv_url + "/add-aaaa", body, 10).read()
        self.addCleanup(lambda: urllib.request.urlopen(
            self.pebble.challtestsrv_url + "/clear-aaaa",
            json.dumps({"host": name + "."}).encode(), 10).read())
        webroot = os.path.join(self.tmp.name, "www")
        os.mkdir(webroot)
        serve_directory(self, self.pebble.http_port, webroot)

        def check():
            proc = self.certpilot("issue", "--agree-tos", "--json", "--dry-run", "-d", name,
                                  "--webroot", webroot, "--resolver", self.pebble.dns_server,
                                  "--webroot-check-port", str(self.pebble.http_port),
                                  expect=None)
            return proc.returncode, json.loads(proc.stdout)

        status, doc = check()
        self.assertEqual(status, 0, doc)
        (c,) = [c for c in doc["checks"] if c["check"].startswith("webroot check:")]
        self.assertTrue(c["ok"], c)
        self.assertIn("address 127.0.0.1,", c["check"])
        # An IPv6 address that answers is the one judged: a server on ::1
        # that does not serve the webroot fails the check there (exit 4).
        elsewhere = os.path.join(self.tmp.name, "elsewhere")
        os.mkdir(elsewhere)
        serve_directory(self, self.pebble.http_port, elsewhere, bind="::1")
        status, doc = check()
        self.assertEqual(status, 4, doc)
        (c,) = doc["webroot_check"]
        self.assertEqual((c["address"], c["outcome"]), ("::1", "not_found"), c)
        self.assertEqual(os.listdir(webroot), [])

    def test_tls_alpn01(self):
        doc = self.issue("-d", "tls.example.test", "--challenge", "tls-alpn-01", "--standalone",
                         "--tls-port", str(self.pebble.tls_port))
        self.assert_certificate(doc, ["tls.example.test"])

    def test_dns01_wildcard_and_names_through_hook(self):
        names = ["*.wild.example.test", "wild.example.test", "other.example.test"]
        args = sum((["-d", n] for n in names), [])
        # challtestsrv is no zone with nameservers: no propagation wait
        # (tests/integration/test_dns_wait.py covers it).
        proc = self.certpilot("issue", "--agree-tos", "--json", *args, "--challenge", "dns-01",
                              "--dns-hook", CHALLTESTSRV_HOOK, "--dns-timeout", "0",
                              env={"CHALLTESTSRV_URL": self.pebble.challtestsrv_url})
        doc = json.loads(proc.stdout)
        self.assertEqual(doc["cert_name"], "wild.example.test")
        self.assert_certificate(doc, names)

    def test_every_key_type(self):
        for key_type, alg in (("ec384", "id-ecPublicKey"), ("rsa2048", "rsaEncryption"),
                              ("rsa3072", "rsaEncryption"), ("rsa4096", "rsaEncryption")):
            with self.subTest(key_type=key_type):
                doc = self.issue("-d", key_type + ".example.test", "--key-type", key_type,
                                 "--standalone", "--http-port", str(self.pebble.http_port))
                self.assert_certificate(doc, [key_type + ".example.test"], alg)

    def test_failed_challenge_writes_nothing(self):
        # Nothing serves the webroot: Pebble's validation connection is refused
        # (the webroot check, which would stop it first, is left out).
        webroot = os.path.join(self.tmp.name, "unserved")
        os.mkdir(webroot)
        proc = self.issue("-d", "fail.example.test", "--webroot", webroot, "--no-webroot-check",
                          expect=4)
        self.assertIn("fail.example.test", proc.stderr)
        self.assertIn("urn:ietf:params:acme:error:", proc.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.state, "certs")))
        self.assertEqual(os.listdir(webroot), [])

    def test_verbose_logs_requests_not_secrets(self):
        proc = self.certpilot("issue", "--agree-tos", "-v", "-d", "v.example.test",
                              "--standalone", "--http-port", str(self.pebble.http_port))
        self.assertIn("POST " + self.pebble.directory_url.replace("/dir", "/order-plz"),
                      proc.stderr)
        self.assertNotIn("PRIVATE KEY", proc.stderr + proc.stdout)

    def test_second_issue_replaces_pair_atomically(self):
        args = ("-d", "again.example.test", "--standalone", "--http-port",
                str(self.pebble.http_port))
        first = self.issue(*args)
        with open(os.path.join(first["live_dir"], "cert.pem")) as f:
            cert1 = f.read()
        second = self.issue(*args, "--force-renewal")  # not due: only when forced
        self.assertEqual(first["live_dir"], second["live_dir"])
        with open(os.path.join(second["live_dir"], "cert.pem")) as f:
            self.assertNotEqual(f.read(), cert1)
        self.assert_certificate(second, ["again.example.test"])
        versions = os.listdir(os.path.join(second["live_dir"], "versions"))
        self.assertEqual(len(versions), 2)  # the previous version is kept

    def test_reuse_key(self):
        args = ("-d", "reuse.example.test", "--standalone", "--http-port",
                str(self.pebble.http_port))
        first = self.issue(*args)
        key_path = os.path.join(first["live_dir"], "privkey.pem")
        with open(key_path) as f:
            key1 = f.read()
        self.issue(*args, "--reuse-key", "--force-renewal")
        with open(key_path) as f:
            self.assertEqual(f.read(), key1)  # same key, new certificate
        self.assert_certificate(first, ["reuse.example.test"])
        # The setting is kept in renewal.conf until turned off.
        self.issue(*args, "--force-renewal")
        with open(key_path) as f:
            self.assertEqual(f.read(), key1)
        self.issue(*args, "--no-reuse-key", "--force-renewal")
        with open(key_path) as f:
            self.assertNotEqual(f.read(), key1)  # turned off: a fresh key

    def test_bad_usage(self):
        for args, needle in ((["-d", "a..test", "--standalone"], "a..test"),
                             (["-d", "a.test"], "needs --webroot"),
                             (["-d", "a.test", "--challenge", "http-02"], "http-02"),
                             (["-d", "a.test", "--standalone", "--http-port", "0"], "port"),
                             (["-d", "a.test", "--dns-hook", "/nonexistent", "--challenge",
                               "dns-01"], "/nonexistent")):
            with self.subTest(args=args):
                proc = self.certpilot("issue", *args, expect=64)
                self.assertIn(needle, proc.stderr)


class NonceRejection(PebbleCase):
    """Half of all nonces rejected: badNonce is retried transparently.

    Not with Pebble's PEBBLE_WFE_NONCEREJECT=50, which draws for every request:
    a run could see no rejection at all (1 in 2^16 or so), or one request
    refused 16 times in a row, more than certpilot retries (1 in 65536 per
    request).  The proxy in front of Pebble refuses every second POST instead
    (reject_nonces(2)): each signed request is refused once, then accepted."""

    @classmethod
    def setUpClass(cls):
        cls.lab = Lab()
        cls.lab.start()
        cls.pebble = cls.lab.pebble(env=cls.pebble_env, ari=True)
        cls.root_pem = cls.pebble.root()

    def server(self):
        return self.pebble.ari_directory_url

    def test_issue_succeeds(self):
        names = ["n1.example.test", "n2.example.test", "n3.example.test"]
        args = sum((["-d", n] for n in names), [])
        before = self.pebble.rejected_nonces()
        self.pebble.reject_nonces(2)
        try:
            proc = self.certpilot("issue", "--agree-tos", "--json", "-v", *args, "--standalone",
                                  "--http-port", str(self.pebble.http_port))
        finally:
            self.pebble.reject_nonces(0)
        self.assert_certificate(json.loads(proc.stdout), names)
        # Every signed request was refused once and retried: half of the POSTs
        # (about 16 signed requests here), each a "-> 400" in the -v trace.
        rejected = self.pebble.rejected_nonces() - before
        posts = len(re.findall(r"(?m)POST \S+ -> \d+$", proc.stderr))
        self.assertGreaterEqual(rejected, 10, proc.stderr)
        self.assertEqual(proc.stderr.count(" -> 400\n"), rejected, proc.stderr)
        self.assertEqual(posts, 2 * rejected, proc.stderr)


if __name__ == "__main__":
    unittest.main()
