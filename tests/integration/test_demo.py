#!/usr/bin/python3
"""The quick-start demo (scripts/demo.sh runs tests/lab/demo.py) keeps working:
both CAA verdicts and the issuance come out as the README promises."""

import os
import subprocess
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
CERTPILOT = os.path.abspath(os.environ.get("CERTPILOT", os.path.join(ROOT, "build", "certpilot")))


class Demo(unittest.TestCase):
    def test_demo_runs_clean(self):
        proc = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tests", "lab", "demo.py"),
                               "--certpilot", CERTPILOT], capture_output=True, text=True,
                              timeout=300)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        out = proc.stdout
        self.assertIn("www.example.test: allowed", out)
        self.assertIn("*.blog.example.test: REFUSED by the CAA record set at blog.example.test",
                      out)
        self.assertIn("Certificate issued for www.example.test", out)
        self.assertIn("DNS:www.example.test, DNS:example.test", out)


if __name__ == "__main__":
    unittest.main()
