#!/usr/bin/python3
"""A read-only webroot or state directory (what systemd's ProtectSystem=strict
makes of everything not listed in ReadWritePaths=) against a real Pebble.

Each run of certpilot happens in its own mount namespace (`unshare --mount`)
where the directory is bind-mounted read-only, as systemd does for a
service.  issue must stop before it orders anything (Pebble's request log
shows no new-order request), exit 74 (a local file problem) and name the
ReadWritePaths= line to add; issue --dry-run reports it as a failed check;
renew says the same for the certificate (and sums up with 1) or, for a
read-only state directory, exits 74 at the lock.  A machine that allows no mount namespace skips
these tests, saying so; tests/unit/test_common_file.c covers the hint itself.
"""

import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_issue as base  # noqa: E402

CERTPILOT = base.CERTPILOT


def mounts_allowed():
    """None when a read-only bind mount works here, else why not."""
    try:
        proc = subprocess.run(
            ["unshare", "--mount", "sh", "-c",
             'mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp && ! touch /tmp/.cp-ro-probe'],
            capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        return "unshare cannot run: %s" % e
    if proc.returncode != 0:
        return "no read-only bind mount in a mount namespace here: %s" % proc.stderr.strip()
    return None


NO_MOUNTS = mounts_allowed()

# Inside the namespace: make each of the directories $1.. read-only, then run
# the command after "--".  The directories are arguments, never interpolated.
RO_SCRIPT = """
while [ "$1" != "--" ]; do
    mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" || exit 120
    shift
done
shift
exec "$@"
"""


@unittest.skipIf(NO_MOUNTS, NO_MOUNTS)
class ReadOnly(base.PebbleCase):
    def run_readonly(self, ro_dirs, *args, env=None):
        # renew takes the CA from each lineage's renewal.conf.
        ca = [] if args[0] == "renew" else [
            "--server", self.server(), "--ca-bundle", self.pebble.ca_bundle]
        argv = ["unshare", "--mount", "sh", "-c", RO_SCRIPT, "sh"] + list(ro_dirs) + [
            "--", CERTPILOT] + list(args) + ca + ["--state-dir", self.state]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, **(env or {})))
        self.assertNotEqual(proc.returncode, 120, "the read-only mount failed: " + proc.stderr)
        return proc

    def log_size(self):
        with open(self.pebble.log) as f:
            return len(f.read())

    def log_since(self, offset):
        with open(self.pebble.log) as f:
            return f.read()[offset:]

    def make_webroot(self):
        webroot = os.path.join(self.tmp.name, "www")
        os.mkdir(webroot)
        return webroot

    def assert_hint(self, text, directory):
        self.assertIn(directory + " is on a read-only file system", text)
        self.assertIn("ReadWritePaths=%s " % directory, text)
        self.assertIn("systemctl edit certpilot-renew.service", text)
        self.assertIn("certpilot systemd install", text)

    def test_readonly_webroot_fails_before_ordering(self):
        webroot = self.make_webroot()
        # An account first, so that the run below would otherwise order at once.
        self.certpilot("account", "register", "--agree-tos")
        before = self.log_size()
        proc = self.run_readonly([webroot], "issue", "-d", "ro.example.test", "--webroot", webroot)
        self.assertEqual(proc.returncode, 74, proc.stderr)
        self.assert_hint(proc.stderr, webroot)
        self.assertNotIn("new-order", self.log_since(before))
        self.assertNotIn("order-plz", self.log_since(before))
        self.assertFalse(os.path.exists(os.path.join(self.state, "certs")))

    def test_readonly_webroot_in_a_service_says_so(self):
        webroot = self.make_webroot()
        proc = self.run_readonly([webroot], "issue", "--agree-tos", "-d", "svc.example.test",
                                 "--webroot", webroot, env={"INVOCATION_ID": "0123abcd"})
        self.assertEqual(proc.returncode, 74, proc.stderr)
        self.assertIn(webroot + " is read-only in this systemd service", proc.stderr)
        self.assertIn("ReadWritePaths=%s " % webroot, proc.stderr)

    def test_dry_run_reports_the_readonly_webroot(self):
        webroot = self.make_webroot()
        # The webroot check (which writes a probe there) says it first.
        proc = self.run_readonly([webroot], "issue", "--agree-tos", "--dry-run",
                                 "-d", "dry.example.test", "--webroot", webroot)
        self.assertEqual(proc.returncode, 74, proc.stderr)
        self.assert_hint(proc.stderr, webroot)
        # Without it, the dry run's solver checks report it.
        proc = self.run_readonly([webroot], "issue", "--agree-tos", "--dry-run", "--json",
                                 "-d", "dry.example.test", "--webroot", webroot,
                                 "--no-webroot-check")
        self.assertEqual(proc.returncode, 74, proc.stderr)
        doc = json.loads(proc.stdout)
        failed = [c for c in doc["checks"] if not c["ok"]]
        self.assertEqual(len(failed), 1, doc["checks"])
        self.assertIn("webroot " + webroot, failed[0]["check"])
        self.assert_hint(failed[0]["detail"], webroot)
        self.assertEqual(os.listdir(webroot), [])

    def test_readonly_state_directory(self):
        webroot = self.make_webroot()
        self.certpilot("account", "register", "--agree-tos")
        before = self.log_size()
        # (the webroot check is off: the name resolves nowhere, and the
        # state directory is what this is about)
        proc = self.run_readonly([self.state], "issue", "-d", "st.example.test",
                                 "--webroot", webroot, "--no-webroot-check")
        self.assertEqual(proc.returncode, 74, proc.stderr)
        self.assert_hint(proc.stderr, self.state)
        self.assertNotIn("order-plz", self.log_since(before))
        # The dry run writes nothing, but says a real run could not.
        proc = self.run_readonly([self.state], "issue", "--dry-run", "-d", "st.example.test",
                                 "--webroot", webroot, "--no-webroot-check")
        self.assertEqual(proc.returncode, 74, proc.stdout + proc.stderr)
        self.assertIn("FAIL state directory is on a writable mount", proc.stdout)
        self.assert_hint(proc.stdout, self.state)

    def serve(self, directory):
        """A static HTTP server of `directory` on Pebble's http-01 port."""
        base.serve_directory(self, self.pebble.http_port, directory)

    def test_renew_with_readonly_webroot_or_state(self):
        webroot = self.make_webroot()
        self.serve(webroot)
        # the webroot check fetches as Pebble will: challtestsrv's DNS, its port
        self.certpilot("issue", "--agree-tos", "-d", "renew-ro.example.test", "--webroot",
                       webroot, "--resolver", self.pebble.dns_server, "--webroot-check-port",
                       str(self.pebble.http_port))
        before = self.log_size()
        proc = self.run_readonly([webroot], "renew", "--force-renewal")
        self.assertEqual(proc.returncode, 1, proc.stderr)  # renew: a certificate failed
        self.assert_hint(proc.stderr, webroot)
        self.assertNotIn("order-plz", self.log_since(before))
        proc = self.run_readonly([self.state], "renew", "--force-renewal")
        self.assertEqual(proc.returncode, 74, proc.stderr)  # the lock, before any lineage
        self.assert_hint(proc.stderr, self.state)
        self.assertNotIn("order-plz", self.log_since(before))

    def test_writable_webroot_still_issues(self):
        # The same namespace dance with another directory read-only: the
        # check does not refuse what is writable (the order goes on and fails
        # only at the CA's validation, nothing serving the webroot).
        webroot = self.make_webroot()
        other = os.path.join(self.tmp.name, "other")
        os.mkdir(other)
        before = self.log_size()
        proc = self.run_readonly([other], "issue", "--agree-tos", "-d", "rw.example.test",
                                 "--webroot", webroot, "--no-webroot-check")
        self.assertEqual(proc.returncode, 4, proc.stderr)
        self.assertIn("order-plz", self.log_since(before))  # what the tests above look for
        self.assertNotIn("ReadWritePaths", proc.stderr)


if __name__ == "__main__":
    unittest.main()
