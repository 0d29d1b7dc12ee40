#!/usr/bin/python3
"""Process start: what the dynamic loader does before main.

Debian's libcurl pulls GnuTLS in (through librtmp); certpilot exports
_gnutls_global_init_skip() so that GnuTLS's library constructor does not
initialise it in every run (cli/main.c).  The loader's own trace
(LD_DEBUG=bindings) shows which object GnuTLS's look-up of that symbol bound
to: certpilot's, not GnuTLS's own weak default.  The cost itself is measured
by bench/issue.py, never asserted here.
"""

import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_issue as base  # noqa: E402

CERTPILOT = base.CERTPILOT
SYMBOL = "_gnutls_global_init_skip"


def bindings(argv):
    """Lines of the loader's binding trace naming SYMBOL."""
    env = dict(os.environ, LD_DEBUG="bindings")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    return proc, [line for line in proc.stderr.splitlines() if "`%s'" % SYMBOL in line]


class GnutlsSkipTest(unittest.TestCase):
    def test_gnutls_binds_to_certpilots_skip(self):
        proc, lines = bindings([CERTPILOT, "--version"])
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        if not any("libgnutls" in line for line in lines):
            self.skipTest("this libcurl does not load GnuTLS")
        exe = os.path.realpath(CERTPILOT)
        for line in lines:
            target = line.split(" to ", 1)[1].split(" [", 1)[0]
            self.assertEqual(os.path.realpath(target), exe, line)

    def test_the_weak_default_would_bind_without_the_export(self):
        # The check above can fail: a program that does not export the symbol
        # leaves GnuTLS bound to its own default (which lets it initialise).
        proc, lines = bindings(["/bin/sh", "-c", "exec curl --version"])
        if proc.returncode != 0 or not any("libgnutls" in line for line in lines):
            self.skipTest("no curl loading GnuTLS to compare with")
        for line in lines:
            self.assertIn("to /lib", line.replace("/usr/lib", "/lib"), line)


if __name__ == "__main__":
    unittest.main()
