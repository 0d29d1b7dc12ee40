#!/usr/bin/python3
"""How many fsync() and rename() calls storing a certificate costs (issue 17).

Counted with strace on a real issuance and a forced renewal against Pebble:
a syscall count is behaviour, not timing.  A new version is written without
temp names or per-file directory syncs: each of its 4 files fsync'd, then its
directory, then versions/; one rename() of `current` and one fsync of the
lineage directory (store/fs.c, fs_version_add(), gives the reasoning).
Skipped when strace is not installed or cannot trace (ptrace refused).
"""

import os
import re
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_issue as base  # noqa: E402

STRACE = shutil.which("strace")
CALLS = "fsync,fdatasync,rename,renameat,renameat2"


def strace_works():
    if STRACE is None:
        return False
    return subprocess.run([STRACE, "-f", "-o", os.devnull, "true"],
                          capture_output=True).returncode == 0


@unittest.skipUnless(strace_works(), "strace is not available here")
class StoreSyncs(base.PebbleCase):

    def traced(self, *args):
        log = os.path.join(self.tmp.name, "strace.log")
        argv = [STRACE, "-f", "-y", "-qq", "-e", "trace=" + CALLS, "-o", log, base.CERTPILOT,
                "issue", "--agree-tos", "--json", *args, "--server", self.server(),
                "--ca-bundle", self.pebble.ca_bundle, "--state-dir", self.state,
                "--standalone", "--http-port", str(self.pebble.http_port)]
        # LeakSanitizer cannot run under ptrace; the other tests look for leaks.
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(log) as f:
            lines = [line.split(None, 1)[1] for line in f if " = " in line]
        return [line for line in lines if line.rstrip().endswith("= 0")]

    def counts(self, calls, name):
        lineage = os.path.realpath(os.path.join(self.state, "certs", name))
        versions = os.path.join(lineage, "versions")
        def n(pattern):
            return sum(1 for c in calls if re.match(pattern, c))
        return {
            "file_fsyncs": n(r"f(data)?sync\(\d+<%s/[^/>]+/[^/>]+>\)" % re.escape(versions)),
            "version_dir_fsyncs": n(r"fsync\(\d+<%s/[^/>]+>\)" % re.escape(versions)),
            "versions_fsyncs": n(r"fsync\(\d+<%s>\)" % re.escape(versions)),
            "lineage_fsyncs": n(r"fsync\(\d+<%s>\)" % re.escape(lineage)),
            "version_renames": n(r"rename\w*\(.*versions/"),
            "current_renames": n(r"rename\w*\(.*%s/current\"" % re.escape(lineage)),
            "fsyncs": n(r"f(data)?sync\("),
            "renames": n(r"rename"),
        }

    def test_a_renewal_stores_its_version_with_seven_fsyncs_and_one_rename(self):
        name = "syncs.example.test"
        first = self.counts(self.traced("-d", name), name)
        renewal = self.counts(self.traced("-d", name, "--force-renewal"), name)
        print("first issuance:", first, "\nforced renewal:", renewal, file=sys.stderr)
        for c in (first, renewal):
            self.assertEqual(c["file_fsyncs"], 4)
            self.assertEqual(c["version_dir_fsyncs"], 1)
            self.assertEqual(c["version_renames"], 0)  # no temp names in a version
            self.assertEqual(c["current_renames"], 1)
        self.assertEqual(renewal["versions_fsyncs"], 1)
        # The switch made durable, plus status.json's own atomic write.
        self.assertEqual(renewal["lineage_fsyncs"], 2)
        # Nothing else on a renewal: status.json (fsync, rename) on top.
        self.assertEqual(renewal["fsyncs"], 4 + 1 + 1 + 2 + 1)
        self.assertEqual(renewal["renames"], 1 + 1)
        # Both pairs are whole: the stable paths lead to the new version.
        live = os.path.join(self.state, "certs", name)
        self.assertTrue(os.readlink(os.path.join(live, "current")).startswith("versions/"))
        for f in ("privkey.pem", "cert.pem", "chain.pem", "fullchain.pem"):
            self.assertTrue(os.path.isfile(os.path.join(live, f)), f)


if __name__ == "__main__":
    unittest.main()
