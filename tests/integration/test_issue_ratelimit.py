#!/usr/bin/python3
"""When the CA says to come back later (issue 13, item 5): a rateLimited
answer with a Retry-After longer than certpilot waits by itself (60 s), or
given as an HTTP date, is shown as a time and a duration, in text and in
--json.  The lab's ARI proxy in front of Pebble answers newOrder with 429.
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

    def issue(self, name, *extra, expect):
        argv = [CERTPILOT, "issue", "--agree-tos", "-d", name, "--standalone", "--http-port",
                str(self.pebble.http_port), "--server", self.pebble.ari_directory_url,
                "--ca-bundle", self.pebble.ca_bundle,
                "--state-dir", os.path.join(self.tmp.name, "state")] + list(extra)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, expect, "stdout:\n%s\nstderr:\n%s"
                         % (proc.stdout, proc.stderr))
        return proc

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


if __name__ == "__main__":
    unittest.main()
