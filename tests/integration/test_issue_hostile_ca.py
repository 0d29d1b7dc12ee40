#!/usr/bin/python3
"""A CA that refuses for a while or breaks the protocol, played by the lab's
ARI proxy in front of Pebble (issue 13, items 5 and 6).

- rateLimited with a Retry-After longer than certpilot waits by itself
  (60 s), or given as an HTTP date: shown as a time and a duration, in text
  and in --json.
- A challenge token that is not base64url, a Replay-Nonce that is not
  base64url: the CA is at fault, so the exit status is 76 (protocol), never
  64 (the user's usage error), and nothing is written under the webroot.
"""

import email.utils
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from cplab import Lab  # noqa: E402

CERTPILOT = os.environ.get("CERTPILOT", "build/certpilot")


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class RateLimited(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = Lab()
        try:
            cls.lab.start()
            cls.pebble = cls.lab.pebble(ari=True, env={"PEBBLE_WFE_NONCEREJECT": "0"})
        except BaseException:
            cls.lab.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="cptest-")
        self.addCleanup(self.tmp.cleanup)
        self.addCleanup(self.pebble.rate_limit_orders, None)
        self.addCleanup(self.pebble.break_protocol)

    def issue(self, name, *extra, expect):
        """issue with the built-in http-01 server."""
        solver = ("--standalone", "--http-port", str(self.pebble.http_port)) + extra
        return self.issue_with(name, solver, expect)

    def test_long_retry_after_in_seconds(self):
        self.pebble.rate_limit_orders("7200")
        before = int(time.time())
        proc = self.issue("rl1.example.test", "--json", expect=3)
        after = int(time.time())
        problem = json.loads(proc.stdout)["problem"]
        self.assertEqual(problem["type"], "urn:ietf:params:acme:error:rateLimited")
        retry = problem["retry_after"]
        self.assertIn(retry["at"], [iso(t) for t in range(before + 7200, after + 7201)])
        self.assertTrue(7200 - (after - before) - 1 <= retry["in_seconds"] <= 7200, retry)
        # Text on stderr: the time and the duration.
        m = re.search(r"retry after: (\S+) \(in (1 h 59 min|2 h 0 min)\), as the CA asks",
                      proc.stderr)
        self.assertIsNotNone(m, proc.stderr)
        self.assertEqual(m.group(1), retry["at"])

    def test_retry_after_as_an_http_date(self):
        when = int(time.time()) + 3 * 86400 + 600  # beyond a day, where waits are capped
        self.pebble.rate_limit_orders(email.utils.formatdate(when, usegmt=True))
        proc = self.issue("rl2.example.test", "--json", expect=3)
        retry = json.loads(proc.stdout)["problem"]["retry_after"]
        self.assertEqual(retry["at"], iso(when))
        self.assertIn("retry after: %s (in 3 d 0 h), as the CA asks" % iso(when), proc.stderr)

    def test_no_retry_after_no_line(self):
        self.pebble.rate_limit_orders("")
        proc = self.issue("rl3.example.test", "--json", expect=3)
        self.assertIsNone(json.loads(proc.stdout)["problem"]["retry_after"])
        self.assertNotIn("retry after", proc.stderr)


    def test_malformed_token_is_the_cas_fault(self):
        for token in ("../../etc/passwd", "tok en", "x" * 300):
            with self.subTest(token=token[:20]):
                self.pebble.break_protocol(token=token)
                webroot = os.path.join(self.tmp.name, "webroot")
                os.makedirs(webroot, exist_ok=True)
                proc = self.issue_with("tok.example.test", ("--webroot", webroot,
                                                            "--no-webroot-check"), expect=76)
                self.assertIn("whose token is not 1 to 256 base64url characters", proc.stderr)
                self.assertEqual(os.listdir(webroot), [])

    def test_nonce_that_is_not_base64url(self):
        self.pebble.break_protocol(nonce="not a nonce!")
        proc = self.issue("nonce.example.test", expect=76)
        self.assertIn("gave no usable (base64url) Replay-Nonce", proc.stderr)

    def test_url_outside_the_cas_origins_is_not_requested(self):
        self.pebble.break_protocol(foreign_urls=True)
        proc = self.issue("origin.example.test", expect=76)
        m = re.search(r"refusing POST (https://\S+): the CA sent a URL outside its own origins",
                      proc.stderr)
        self.assertIsNotNone(m, proc.stderr)
        self.assertTrue(m.group(1).startswith("https://127.0.0.1:%d/" % self.pebble_port()))
        self.assertIn("nothing was sent to it", proc.stderr)

    def pebble_port(self):
        return int(self.pebble.directory_url.split(":")[2].split("/")[0])

    def issue_with(self, name, solver, expect):
        argv = [CERTPILOT, "issue", "--agree-tos", "-d", name] + list(solver) + [
            "--server", self.pebble.ari_directory_url, "--ca-bundle", self.pebble.ca_bundle,
            "--state-dir", os.path.join(self.tmp.name, "state")]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, expect, "stdout:\n%s\nstderr:\n%s"
                         % (proc.stdout, proc.stderr))
        return proc


if __name__ == "__main__":
    unittest.main()
