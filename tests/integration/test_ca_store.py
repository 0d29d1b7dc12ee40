#!/usr/bin/python3
"""--ca-bundle and --ca-system (issue 17): the bundle is the trust store for the
server; --ca-system adds the system store to it; verification is never off.

Pebble's certificate chains to the lab's CA only, which no system store holds:
- its bundle alone, or with --ca-system, is trusted (the CA file stays in the
  store when the system's hashed directory is added);
- another CA's bundle, with or without --ca-system, is refused: the system
  store does not vouch for Pebble and nothing turns verification off.
"""

import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_renew import CERTPILOT, RenewCase  # noqa: E402
from test_acme_http import self_signed  # noqa: E402


class CaStore(RenewCase):
    def show(self, *ca_args):
        argv = [CERTPILOT, "account", "show", "--server", self.server, *ca_args,
                "--state-dir", self.state]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                              env=self.run_env())

    def test_bundle_alone_trusted(self):
        proc = self.show("--ca-bundle", self.pebble.ca_bundle)
        self.assertEqual(proc.returncode, 0, proc.stderr)

    def test_bundle_with_system_trusted(self):
        proc = self.show("--ca-bundle", self.pebble.ca_bundle, "--ca-system")
        self.assertEqual(proc.returncode, 0, proc.stderr)

    def test_other_bundle_refused_with_or_without_system(self):
        with tempfile.TemporaryDirectory() as d:
            other, _ = self_signed(d, "other")
            for extra in ([], ["--ca-system"]):
                proc = self.show("--ca-bundle", other, *extra)
                self.assertNotEqual(proc.returncode, 0, proc.stdout)
                self.assertIn("certificate", proc.stderr, extra)
                self.assertNotIn("Sanitizer", proc.stderr)


if __name__ == "__main__":
    unittest.main()
