#!/usr/bin/python3
"""The wait for the CA ends while an authorization is still pending (issue 13,
items 3 and 7), against a real Pebble.

Pebble validates http-01 by connecting to its httpPort; here a listener that
accepts and never answers holds that port, so the validation hangs and the
authorization stays pending while certpilot waits.  Under the suite's
sanitizer build (LeakSanitizer, abort_on_error) a leak on that path turns
the documented exit status 5 into an abort.
"""

import os
import socket
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_issue as base  # noqa: E402


class WaitEnds(base.PebbleCase):
    def silent_listener(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.pebble.http_port))
        sock.listen(64)
        self.addCleanup(sock.close)
        return sock

    def test_pending_authorization_when_the_wait_ends(self):
        self.silent_listener()
        webroot = os.path.join(self.tmp.name, "webroot")
        os.mkdir(webroot)
        start = time.monotonic()
        proc = self.certpilot("issue", "--agree-tos", "-d", "wait.example.test", "--webroot",
                              webroot, "--no-webroot-check", "--wait-timeout", "2", expect=5)
        self.assertLess(time.monotonic() - start, 60)  # a hang guard, not a timing check
        self.assertIn('was still "pending" when the wait for the CA ended (after 2 s)',
                      proc.stderr)
        self.assertIn("run the same command again", proc.stderr)
        self.assertIn("--wait-timeout SECONDS", proc.stderr)
        # Nothing stored: no lineage, and the challenge file is cleaned up.
        self.assertFalse(os.path.exists(os.path.join(self.state, "certs", "wait.example.test",
                                                      "current")))
        self.assertEqual(os.listdir(os.path.join(webroot, ".well-known", "acme-challenge"))
                         if os.path.isdir(os.path.join(webroot, ".well-known", "acme-challenge"))
                         else [], [])

    def test_wait_timeout_is_checked(self):
        for bad in ("0", "-1", "x", "86401", "5s", ""):
            with self.subTest(value=bad):
                proc = self.certpilot("issue", "--agree-tos", "-d", "w.example.test",
                                      "--standalone", "--wait-timeout", bad, expect=64)
                self.assertIn("--wait-timeout", proc.stderr)


if __name__ == "__main__":
    unittest.main()
