#!/usr/bin/python3
"""The dns-01 propagation wait of `certpilot issue`, end to end.

After the dns hook publishes _acme-challenge.<name> TXT <value>, certpilot
must wait until every authoritative nameserver of the zone serves it, and only
then ask the CA to validate; it gives up after --dns-timeout, naming the
servers.  The lab: Knot serves dyn.test and accepts the TSIG-signed updates of
hooks/examples/dns-nsupdate.sh, Unbound resolves (certpilot finds the zone and
its nameservers through it, --resolver), and Pebble resolves through Unbound
too, so it validates against what Knot serves.  The lab's NS records say
127.0.0.1 while Knot listens on another port: --authoritative-port.
"""

import json
import os
import re
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
from cplab import Lab, split_addr  # noqa: E402
from dnslib import QTYPE  # noqa: E402

CERTPILOT = os.path.abspath(os.environ.get("CERTPILOT", os.path.join(ROOT, "build", "certpilot")))
NSUPDATE_HOOK = os.path.join(ROOT, "hooks", "examples", "dns-nsupdate.sh")
# Pebble names challenge URLs /chalZ/<id>: with -v certpilot logs every POST.
CHALLENGE_POST = re.compile(r"POST \S+/chalZ/")

# deploy_challenge records its arguments and publishes nothing; clean_challenge
# is handed to the nsupdate hook (deleting a record that is not there is fine).
SILENT_HOOK = """#!/bin/sh
printf '%s\\n' "$*" >> "$HOOK_LOG"
case $1 in
clean_challenge) exec "$NSUPDATE_HOOK" "$@" ;;
esac
exit 0
"""

# Publishes (and cleans) a value other than the one it is given.
WRONG_VALUE = "WrongWrongWrongWrongWrongWrongWrongWrong123"
WRONG_HOOK = """#!/bin/sh
printf '%%s\\n' "$*" >> "$HOOK_LOG"
case $1 in
deploy_challenge | clean_challenge) exec "$NSUPDATE_HOOK" "$1" "$2" "$3" %s ;;
esac
exit 0
""" % WRONG_VALUE


class DnsWait(unittest.TestCase):
    lab = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="cp-dnswait-")
        lab = cls.lab = Lab()
        # Explicit addresses: a wildcard A would also answer at _acme-challenge names.
        lab.zone("dyn.test", """
            @     A 127.0.0.1
            a     A 127.0.0.1
            late  A 127.0.0.1
            none  A 127.0.0.1
            wrong A 127.0.0.1
            zero  A 127.0.0.1
            bad   A 127.0.0.1
        """)
        lab.start()
        cls.pebble = lab.pebble(dns_server=lab.resolver,
                                env={"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"})
        cls.knot_port = split_addr(lab.knot)[1]
        key_name, algorithm, secret = lab.tsig
        cls.key_file = os.path.join(cls.tmp.name, "update.key")
        fd = os.open(cls.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write('key "%s" {\n\talgorithm %s;\n\tsecret "%s";\n};\n'
                    % (key_name, algorithm, secret))
        cls.hook_env = {"NSUPDATE_SERVER": "127.0.0.1", "NSUPDATE_PORT": str(cls.knot_port),
                        "NSUPDATE_KEY": cls.key_file, "NSUPDATE_HOOK": NSUPDATE_HOOK}

    @classmethod
    def tearDownClass(cls):
        if cls.lab is not None:
            cls.lab.close()
        cls.tmp.cleanup()

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="cptest-", dir=self.tmp.name)
        self.state = os.path.join(self.dir.name, "state")
        self.hook_log = os.path.join(self.dir.name, "hook.log")

    def tearDown(self):
        self.dir.cleanup()

    def write_hook(self, text):
        path = os.path.join(self.dir.name, "hook.sh")
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)
        return path

    def issue(self, names, hook, *extra, expect=0):
        argv = [CERTPILOT, "issue", "--agree-tos", "-v", "--challenge", "dns-01",
                "--dns-hook", hook, "--resolver", self.lab.resolver,
                "--authoritative-port", str(self.knot_port),
                "--server", self.pebble.directory_url, "--ca-bundle", self.pebble.ca_bundle,
                "--state-dir", self.state] + sum((["-d", n] for n in names), []) + list(extra)
        env = dict(os.environ, HOOK_LOG=self.hook_log, **self.hook_env)
        t0 = time.monotonic()
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=180, env=env)
        proc.elapsed = time.monotonic() - t0
        if expect is not None:
            self.assertEqual(proc.returncode, expect, "exit status of %s\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(argv), proc.stdout, proc.stderr))
        return proc

    def txt(self, name):
        reply = self.lab.query(name, "TXT", server=self.lab.knot)
        return sorted(b"".join(rr.rdata.data).decode() for rr in reply.rr
                      if rr.rtype == QTYPE.TXT)

    def hook_calls(self):
        if not os.path.exists(self.hook_log):
            return []
        with open(self.hook_log) as f:
            return [line.split()[0] for line in f if line.strip()]

    def assert_waited_before_validating(self, stderr, names):
        """Each _acme-challenge name was waited for, before the first challenge POST."""
        first_post = CHALLENGE_POST.search(stderr)
        self.assertIsNotNone(first_post, stderr)
        for name in names:
            wait = "waiting for 1 nameserver of dyn.test to serve _acme-challenge.%s\n" % name
            done = "all 1 nameserver of dyn.test serve _acme-challenge.%s (" % name
            self.assertIn(wait, stderr)
            self.assertIn(done, stderr)
            self.assertLess(stderr.index(done), first_post.start(), stderr)

    def test_issue_waits_for_the_nameservers(self):
        # The wildcard and dyn.test share _acme-challenge.dyn.test: two values at one name.
        names = ["a.dyn.test", "*.dyn.test", "dyn.test"]
        proc = self.issue(names, NSUPDATE_HOOK, "--json")
        doc = json.loads(proc.stdout)
        self.assertEqual(doc["cert_name"], "a.dyn.test")
        live = doc["live_dir"]
        for name in ("privkey.pem", "cert.pem", "chain.pem", "fullchain.pem"):
            self.assertTrue(os.path.exists(os.path.join(live, name)), name)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(live, "privkey.pem")).st_mode), 0o600)
        text = subprocess.run(["openssl", "x509", "-in", os.path.join(live, "cert.pem"),
                               "-noout", "-text"], capture_output=True, text=True).stdout
        for name in names:
            self.assertIn("DNS:" + name, text)
        self.assert_waited_before_validating(proc.stderr, ["a.dyn.test", "dyn.test"])
        self.assertEqual(proc.stderr.count("to serve _acme-challenge.dyn.test\n"), 2)
        # The hook cleaned up after validation.
        self.assertEqual(self.txt("_acme-challenge.a.dyn.test"), [])
        self.assertEqual(self.txt("_acme-challenge.dyn.test"), [])

    def test_waits_for_a_record_published_late(self):
        # The hook publishes nothing; the test publishes the value 2.5 s later.
        hook = self.write_hook(SILENT_HOOK)
        published = []

        def publish_late():
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not self.hook_calls():
                time.sleep(0.05)
            if not self.hook_calls():
                return
            with open(self.hook_log) as f:
                _, domain, _, value = f.readline().split()
            time.sleep(2.5)
            self.lab.update("dyn.test", 'add _acme-challenge.%s. 60 TXT "%s"' % (domain, value))
            published.append(time.monotonic())

        thread = threading.Thread(target=publish_late)
        thread.start()
        try:
            proc = self.issue(["late.dyn.test"], hook, "--dns-timeout", "60")
        finally:
            thread.join()
        self.assertEqual(len(published), 1)
        self.assertGreaterEqual(proc.elapsed, 2.5)
        self.assertIn("Certificate issued for late.dyn.test", proc.stdout)
        self.assert_waited_before_validating(proc.stderr, ["late.dyn.test"])
        self.assertEqual(self.hook_calls(), ["deploy_challenge", "clean_challenge"])
        self.assertEqual(self.txt("_acme-challenge.late.dyn.test"), [])

    def test_times_out_naming_the_nameserver(self):
        hook = self.write_hook(SILENT_HOOK)
        proc = self.issue(["none.dyn.test"], hook, "--dns-timeout", "2", expect=5)
        self.assertGreaterEqual(proc.elapsed, 2.0)
        self.assertLess(proc.elapsed, 30)
        self.assertIn("_acme-challenge.none.dyn.test", proc.stderr)
        self.assertIn("not served by 1 of 1 nameserver address after 2.0 s", proc.stderr)
        self.assertIn("ns.dyn.test (127.0.0.1): answered NXDOMAIN", proc.stderr)
        self.assertIn("waiting for 1 nameserver of dyn.test", proc.stderr)
        # The CA was never asked to validate, and the challenge was cleaned up.
        self.assertIsNone(CHALLENGE_POST.search(proc.stderr), proc.stderr)
        self.assertEqual(self.hook_calls(), ["deploy_challenge", "clean_challenge"])
        self.assertFalse(os.path.exists(os.path.join(self.state, "certs")))

    def test_other_value_is_named(self):
        hook = self.write_hook(WRONG_HOOK)
        proc = self.issue(["wrong.dyn.test"], hook, "--dns-timeout", "2", expect=5)
        self.assertIn('ns.dyn.test (127.0.0.1): only "%s"' % WRONG_VALUE, proc.stderr)
        self.assertIsNone(CHALLENGE_POST.search(proc.stderr), proc.stderr)
        self.assertEqual(self.txt("_acme-challenge.wrong.dyn.test"), [])

    def test_dns_timeout_zero_does_not_wait(self):
        # Nothing is published and nothing waits: the CA finds no record.
        hook = self.write_hook(SILENT_HOOK)
        proc = self.issue(["zero.dyn.test"], hook, "--dns-timeout", "0", expect=4)
        self.assertNotIn("waiting for", proc.stderr)
        self.assertIsNotNone(CHALLENGE_POST.search(proc.stderr), proc.stderr)
        self.assertIn("zero.dyn.test", proc.stderr)

    def test_bad_resolver_is_named(self):
        hook = self.write_hook(SILENT_HOOK)
        proc = self.issue(["bad.dyn.test"], hook, "--resolver", "not-an-ip", expect=64)
        self.assertIn('resolver "not-an-ip"', proc.stderr)
        self.assertIsNone(CHALLENGE_POST.search(proc.stderr), proc.stderr)
        self.assertEqual(self.hook_calls(), ["deploy_challenge", "clean_challenge"])

    def test_bad_usage(self):
        for args, needle in ((["--dns-timeout", "-1"], "--dns-timeout"),
                             (["--dns-timeout", "2s"], "--dns-timeout"),
                             (["--dns-timeout", "3601"], "--dns-timeout"),
                             (["--authoritative-port", "0"], "--authoritative-port"),
                             (["--authoritative-port", "65536"], "--authoritative-port")):
            with self.subTest(args=args):
                proc = self.issue(["a.dyn.test"], NSUPDATE_HOOK, *args, expect=64)
                self.assertIn(needle, proc.stderr)
        self.assertEqual(self.hook_calls(), [])

    def test_help_lists_the_options(self):
        proc = subprocess.run([CERTPILOT, "issue", "--help"], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0)
        for option in ("--resolver IP[:PORT]", "--dns-timeout SECONDS", "--authoritative-port N"):
            self.assertIn(option, proc.stdout)


if __name__ == "__main__":
    unittest.main()
