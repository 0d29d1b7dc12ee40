#!/usr/bin/python3
"""Shared http-01 answering for a fleet (issue 18) against the lab's Pebble
and a real three-member etcd cluster.

Two certpilot "nodes", each with its own --state-dir, share one --store:
node B runs `certpilot serve-challenges` on the port Pebble validates http-01
on; node A runs `issue --http-shared`, which publishes each key authorization
in etcd and has neither a server nor a webroot of its own.  Each test uses
its own etcd key prefix, hence its own account at Pebble (with authorization
reuse off): nothing validated for another test can be reused.

- SharedResponder: A gets its certificate answered by B (B's log names the
  tokens; A could not have listened: B holds the port throughout); the key
  authorizations are gone from etcd after the order; renewal.conf keeps
  http-shared and a forced renew is answered by B again.
- StandaloneShared: --standalone on a shared store publishes its answers
  too and leaves nothing in etcd.
- NoResponder: without serve-challenges the webroot check's probe (published
  in the store) finds nothing listening and stops the run before any order.
- NotShared: --http-shared and serve-challenges refuse a store that is not
  shared (exit 78).
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
sys.path.insert(0, HERE)
from etcd import FleetLabCase, write_store_key  # noqa: E402

CERTPILOT = os.path.abspath(os.environ.get("CERTPILOT", os.path.join(ROOT, "build", "certpilot")))
WAIT = 60  # seconds: a bound on waits for another process, never an assertion
SANITIZER = r"ERROR: (Address|Leak)Sanitizer|: runtime error: "


def read(path):
    with open(path) as f:
        return f.read()


def answered_tokens(text):
    return re.findall(r"answered http-01 token (\S+)", text)


class NotShared(unittest.TestCase):
    """No lab needed: both commands refuse before doing anything."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="cptest-fleethttp-")
        self.addCleanup(self.tmp.cleanup)
        self.state = os.path.join(self.tmp.name, "state")

    def run_cp(self, *args):
        proc = subprocess.run([CERTPILOT] + list(args), capture_output=True, text=True,
                              timeout=60)
        self.assertNotRegex(proc.stderr, SANITIZER)
        return proc

    def test_http_shared_needs_a_shared_store(self):
        proc = self.run_cp("issue", "-d", "a.example.test", "--http-shared", "--agree-tos",
                           "--server", "https://127.0.0.1:9/dir", "--state-dir", self.state)
        self.assertEqual(proc.returncode, 78, proc.stderr)
        self.assertIn("--http-shared", proc.stderr)
        self.assertIn("--store etcd://", proc.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.state, "certs")))

    def test_http_shared_excludes_local_answers(self):
        for extra in (["--standalone"], ["--webroot", self.tmp.name]):
            proc = self.run_cp("issue", "-d", "a.example.test", "--http-shared", *extra,
                               "--state-dir", self.state)
            self.assertEqual(proc.returncode, 64, proc.stderr)
            self.assertIn("excludes", proc.stderr)

    def test_serve_challenges_needs_a_shared_store(self):
        proc = self.run_cp("serve-challenges", "--http-port", "1", "--state-dir", self.state)
        self.assertEqual(proc.returncode, 78, proc.stderr)
        self.assertIn("--store etcd://", proc.stderr)


class FleetHttpCase(FleetLabCase):
    """FleetLabCase with two nodes, "a" and "b"."""

    label = "fleethttp"

    def setUp(self):
        super().setUp()
        self.procs = []
        self.addCleanup(self.stop_all)

    def state(self, node):
        return os.path.join(self.dir, "node-" + node)

    def store_args(self, node, key=True):
        keyfile = ["--store-key-file", self.key if key is True else key] if key else []
        return ["--store", self.etcd.url(self.prefix), "--state-dir", self.state(node)] + keyfile

    def run_node(self, node, *args, expect=0):
        argv = [CERTPILOT] + list(args) + self.store_args(node)
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=240, env=env)
        self.assertNotRegex(proc.stderr, SANITIZER, proc.stderr)
        if expect is not None:
            self.assertEqual(proc.returncode, expect, "%s exited %s\nstdout:\n%s\nstderr:\n%s" % (
                " ".join(argv), proc.returncode, proc.stdout, proc.stderr))
        return proc

    def start_responder(self, node, key=False):
        """serve-challenges on Pebble's http-01 port; returns once it serves.
        Without the store key by default: a host that only answers
        challenges needs none."""
        argv = [CERTPILOT, "serve-challenges", "--http-port", str(self.pebble.http_port),
                "--http-address", "127.0.0.1"] + self.store_args(node, key)
        log = os.path.join(self.dir, "serve-%s.log" % node)
        with open(log, "w") as err:
            p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err,
                                 start_new_session=True)
        p.log = log
        self.procs.append(p)
        deadline = time.monotonic() + WAIT
        while "serving http-01 challenges" not in read(log):
            if p.poll() is not None:
                self.fail("serve-challenges exited %s:\n%s" % (p.returncode, read(log)))
            if time.monotonic() > deadline:
                self.fail("serve-challenges did not start:\n%s" % read(log))
            time.sleep(0.05)
        return p

    def stop_responder(self, p):
        """SIGTERM: a clean exit 0; its log."""
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=WAIT), 0, read(p.log))
        text = read(p.log)
        self.assertNotRegex(text, SANITIZER, text)
        return text

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(10)

    def issue_shared(self, node, name, expect=0):
        return self.run_node(node, "issue", "--json", "--agree-tos", "-d", name,
                             "--server", self.server, "--ca-bundle", self.pebble.ca_bundle,
                             "--caa-preflight", "off", "--http-shared",
                             "--resolver", self.pebble.dns_server,
                             "--webroot-check-port", str(self.pebble.http_port), "-v",
                             expect=expect)

    def challenge_keys(self):
        proc = self.etcd.etcdctl("get", "--prefix", "--keys-only",
                                 "%s/challenges/" % self.prefix, check=True)
        return [k for k in proc.stdout.split() if k]

    def orders(self):
        return len(self.pebble.ari_new_orders())


class SharedResponder(FleetHttpCase):
    def test_node_a_issues_node_b_answers(self):
        name = "shared.example.test"
        b = self.start_responder("b")
        before = self.orders()
        proc = self.issue_shared("a", name)
        self.assertEqual(self.orders() - before, 1)
        live = os.path.join(self.state("a"), "certs", name)
        self.assertIn("BEGIN CERTIFICATE", read(os.path.join(live, "cert.pem")))
        # A published (said at -v) and did not listen: B held the port all
        # along (still running), and A's log names the store, not a port.
        self.assertIsNone(b.poll())
        self.assertIn("published in the shared store", proc.stderr)
        self.assertNotIn("standalone", proc.stderr)
        # Nothing left in etcd: withdrawn after the order (the probe too).
        self.assertEqual(self.challenge_keys(), [])
        # renewal.conf (in the shared store) keeps it for renew.
        conf = self.etcd.etcdctl("get", "--print-value-only",
                                 "%s/lineages/%s/settings" % (self.prefix, name),
                                 check=True).stdout
        self.assertRegex(conf, r"(?m)^http-shared = yes$")

        # A forced renewal on A is answered by B again: with a new account,
        # since Pebble now and then hands an order a valid authorization of
        # the same account even with PEBBLE_AUTHZREUSE=0 (tests/lab/README.md).
        self.fresh_account("a")
        before = self.orders()
        self.run_node("a", "renew", "--json", "--force-renewal", "--cert-name", name)
        self.assertEqual(self.orders() - before, 1)
        self.assertEqual(self.challenge_keys(), [])

        text = self.stop_responder(b)
        answered = set(answered_tokens(text))
        # Every token Pebble validated for the name (the issue's and the
        # renewal's) was answered by B, A's webroot-check probes too.
        validated = set(re.findall(
            r"Attempting to validate w/ HTTP: http://%s:%d/\.well-known/acme-challenge/(\S+)"
            % (re.escape(name), self.pebble.http_port), read(self.pebble.log)))
        self.assertEqual(len(validated), 2, read(self.pebble.log))
        self.assertLessEqual(validated, answered, text)
        self.assertGreater(len(answered - validated), 0, text)  # the probe(s)
        self.assertIn("stopping", text)


class StandaloneShared(FleetHttpCase):
    def test_standalone_publishes_and_withdraws(self):
        # --standalone on a shared store: the token is answered by A's own
        # server (which also looks unknown tokens up in etcd through a
        # handle of its own) and published for the fleet meanwhile.
        name = "standalone.example.test"
        before = self.orders()
        proc = self.run_node("a", "issue", "--json", "--agree-tos", "-d", name,
                             "--server", self.server, "--ca-bundle", self.pebble.ca_bundle,
                             "--caa-preflight", "off", "--standalone",
                             "--http-port", str(self.pebble.http_port),
                             "--http-address", "127.0.0.1", "-v")
        self.assertEqual(self.orders() - before, 1)
        self.assertIn("published in the shared store", proc.stderr)
        self.assertEqual(self.challenge_keys(), [])
        live = os.path.join(self.state("a"), "certs", name)
        self.assertIn("BEGIN CERTIFICATE", read(os.path.join(live, "cert.pem")))


class NoResponder(FleetHttpCase):
    def test_webroot_check_finds_no_responder(self):
        name = "nobody.example.test"
        before = self.orders()
        proc = self.issue_shared("a", name, expect=4)
        self.assertIn("no fleet responder listens", proc.stderr)
        self.assertIn("serve-challenges", proc.stderr)
        self.assertEqual(self.orders(), before)  # nothing sent to the CA
        self.assertEqual(self.challenge_keys(), [])  # the probe withdrawn

    def test_responder_checks_a_key_it_is_given(self):
        """serve-challenges needs no store key, but one given must be the
        store's (as for every command); other commands still need one."""
        self.run_node("a", "list")  # the first keyed open leaves seal-check
        other = write_store_key(os.path.join(self.dir, "other.key"))
        argv = [CERTPILOT, "serve-challenges", "--http-port", str(self.pebble.http_port),
                "--http-address", "127.0.0.1"] + self.store_args("b", other)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 78, proc.stderr)
        self.assertIn("is not the key the private keys", proc.stderr)
        proc = subprocess.run([CERTPILOT, "list"] + self.store_args("b", key=False),
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 78, proc.stderr)
        self.assertIn("--store-key-file", proc.stderr)


if __name__ == "__main__":
    unittest.main()
