#!/usr/bin/python3
"""What every command prints, against the real lab (issue 15, "Output").

- `--json`: one object on stdout for every command and outcome, with
  "outcome" (a string) and "exit_status" (the process's exit status);
  usage errors too, when --json is on the command line.
- `--quiet` is accepted by every command and prints nothing on success.
- `list --json` and `renew --json` describe a certificate with the same
  fields.
- Progress lines (one per step) appear when stderr is a terminal, not when it
  is a pipe, and never with --quiet or --json.
- Failures: a name list is never cut to "and others", the CA's detail is said
  once, and the common causes get a "hint:" line.
"""

import json
import os
import pty
import shutil
import socket
import subprocess
import sys
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
sys.path.insert(0, HERE)
from cplab import Lab  # noqa: E402
from test_issue import PebbleCase, serve_directory  # noqa: E402

CERTPILOT = os.path.abspath(os.environ.get("CERTPILOT", os.path.join(ROOT, "build", "certpilot")))
USAGE = 64
SHAPE_ZONE = "shape.test"
# The progress lines of one issuance, as a person on a terminal sees them.
STEPS = ("connecting to ", "account: ", "order created for ", "challenge ready",
         "validated by the CA", "finalizing the order", "certificate stored in ")


def run_pty(argv, env=None):
    """Run argv with stderr on a pseudo-terminal (stdout a pipe): (status,
    stdout, stderr)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                            env=env)
    os.close(slave)
    out = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()))
    reader.start()
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: every writer of the terminal is gone
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(120)
    reader.join(10)
    proc.stdout.close()
    os.close(master)
    err = b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")
    return proc.returncode, out[0].decode(), err


class OutputShape(PebbleCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = Lab()
        cls.lab.zone(SHAPE_ZONE, '@ CAA 0 issue "letsencrypt.org"\n@ A 192.0.2.10')
        cls.lab.start()
        cls.pebble = cls.lab.pebble(env=cls.pebble_env)
        cls.root_pem = cls.pebble.root()

    # -- running

    def ca(self):
        return ["--server", self.server(), "--ca-bundle", self.pebble.ca_bundle,
                "--state-dir", self.state]

    def run_cp(self, *args, expect=0):
        argv = [CERTPILOT] + list(args)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
        if expect is not None:
            self.assertEqual(proc.returncode, expect, "exit status of %s\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(argv), proc.stdout, proc.stderr))
        return proc

    def json_of(self, *args, expect=0):
        """Run with --json: the object, checked for its shape."""
        proc = self.run_cp(*args, "--json", expect=expect)
        try:
            doc = json.loads(proc.stdout)
        except ValueError:
            self.fail("not JSON on stdout of %s:\n%s\nstderr:\n%s" % (args, proc.stdout,
                                                                     proc.stderr))
        self.assertIsInstance(doc, dict)
        self.assertIsInstance(doc.get("outcome"), str, doc)
        self.assertTrue(doc["outcome"], doc)
        self.assertEqual(doc.get("exit_status"), proc.returncode, doc)
        if proc.returncode != 0:
            self.assertIsInstance(doc.get("error"), str, doc)
        return doc

    def standalone(self):
        return ["--standalone", "--http-port", str(self.pebble.http_port)]

    def dns(self):
        return ["--resolver", self.lab.resolver, "--timeout", "5"]

    def serve(self, directory):
        """A static HTTP server of `directory` on Pebble's http-01 port."""
        serve_directory(self, self.pebble.http_port, directory)

    # -- --json

    def test_every_command_prints_one_result_object(self):
        name = "json.example.test"
        outcomes = {}
        outcomes["register"] = self.json_of("account", "register", "--agree-tos", *self.ca())
        outcomes["show"] = self.json_of("account", "show", *self.ca())
        outcomes["update"] = self.json_of("account", "update", "--email", "ops@example.test",
                                          *self.ca())
        outcomes["issue"] = self.json_of("issue", "-d", name, *self.standalone(), *self.ca())
        outcomes["unchanged"] = self.json_of("issue", "-d", name, *self.standalone(), *self.ca())
        outcomes["list"] = self.json_of("list", "--state-dir", self.state)
        outcomes["renew"] = self.json_of("renew", "--state-dir", self.state)
        outcomes["forced"] = self.json_of("renew", "--force-renewal", "--state-dir", self.state)
        outcomes["caa"] = self.json_of("caa", "check", *self.dns(), SHAPE_ZONE)
        outcomes["doctor"] = self.json_of("doctor", *self.dns(), "--authoritative-port",
                                          str(self.lab.auth_port), SHAPE_ZONE)
        outcomes["revoke"] = self.json_of("revoke", "--cert-name", name, "--state-dir",
                                          self.state)
        outcomes["delete"] = self.json_of("delete", "--cert-name", name, "--yes", "--state-dir",
                                          self.state)
        outcomes["rollover"] = self.json_of("account", "rollover", *self.ca())
        outcomes["deactivate"] = self.json_of("account", "deactivate", "--yes", *self.ca())
        self.assertEqual({k: v["outcome"] for k, v in outcomes.items()}, {
            "register": "registered", "show": "shown", "update": "contacts_updated",
            "issue": "issued", "unchanged": "unchanged", "list": "listed",
            "renew": "nothing_due", "forced": "renewed", "caa": "allowed", "doctor": "ok",
            "revoke": "revoked", "delete": "deleted", "rollover": "rolled_over",
            "deactivate": "deactivated"})

    def test_failures_are_result_objects_too(self):
        self.run_cp("account", "register", "--agree-tos", *self.ca())
        # A challenge the CA cannot validate: exit 4, what the CA said (the
        # webroot check, which would find it first, is off).
        unserved = os.path.join(self.tmp.name, "unserved")
        os.mkdir(unserved)
        doc = self.json_of("issue", "-d", "fail.example.test", "--webroot", unserved, *self.ca(),
                           "--no-webroot-check", expect=4)
        self.assertEqual(doc["outcome"], "failed")
        self.assertEqual(doc["failed_identifier"], "fail.example.test")
        self.assertTrue(doc["problem"]["type"].startswith("urn:ietf:params:acme:error:"), doc)
        # A state directory that is not safe: the command's own words.
        os.chmod(self.state, 0o777)
        doc = self.json_of("list", "--state-dir", self.state, expect=77)
        self.assertEqual(doc["outcome"], "failed")
        self.assertIn(self.state, doc["error"])

    def test_usage_errors_are_json_when_asked(self):
        state = ["--state-dir", self.state]
        cases = [
            ([], "no command given"),
            (["frobnicate"], "frobnicate"),
            (["caa", "check", "--frob"], "--frob"),
            (["caa", "check"], "identifier"),
            (["doctor", "--authoritative-port", "0", "x.test"], "--authoritative-port"),
            (["account", "frob"], "frob"),
            (["account", "show", "--frob"] + state, "--frob"),
            (["issue"] + state, "-d"),
            (["issue", "-d", "a.test", "--challenge", "http-02"] + state, "http-02"),
            (["renew", "--lock-timeout", "x"] + state, "--lock-timeout"),
            (["list", "--force-renewal"] + state, "list takes"),
            (["revoke"] + state, "--cert-name"),
            (["delete", "--yes"] + state, "--cert-name"),
        ]
        for args, needle in cases:
            with self.subTest(args=args):
                doc = self.json_of(*args, expect=USAGE)
                self.assertEqual(doc["outcome"], "usage_error")
                self.assertIn(needle, doc["error"])
                # The message stays on stderr, as without --json.
                proc = self.run_cp(*args, expect=USAGE)
                self.assertIn(needle, proc.stderr)
                self.assertEqual(proc.stdout, "")

    # -- --quiet

    def test_quiet_is_accepted_everywhere_and_silent_on_success(self):
        name = "quiet.example.test"
        runs = [
            ["account", "register", "--agree-tos", "--quiet"] + self.ca(),
            ["account", "show", "-q"] + self.ca(),
            ["account", "update", "--email", "q@example.test", "--quiet"] + self.ca(),
            ["issue", "-d", name, "--quiet"] + self.standalone() + self.ca(),
            ["list", "--quiet", "--state-dir", self.state],
            ["renew", "--quiet", "--force-renewal", "--state-dir", self.state],
            ["caa", "check", "--quiet"] + self.dns() + [SHAPE_ZONE],
            ["doctor", "-q", "--authoritative-port", str(self.lab.auth_port)] + self.dns()
            + [SHAPE_ZONE],
            ["revoke", "--cert-name", name, "--quiet", "--state-dir", self.state],
            ["delete", "--cert-name", name, "--yes", "--quiet", "--state-dir", self.state],
            ["account", "rollover", "--quiet"] + self.ca(),
            ["account", "deactivate", "--yes", "--quiet"] + self.ca(),
        ]
        for argv in runs:
            with self.subTest(argv=argv[:3]):
                proc = self.run_cp(*argv)
                self.assertEqual((proc.stdout, proc.stderr), ("", ""))

    def test_quiet_still_says_errors_and_prints_json(self):
        proc = self.run_cp("issue", "-d", "a.example.test", "--quiet", *self.standalone(),
                           *self.ca(), expect=78)  # no account
        self.assertIn("account register --agree-tos", proc.stderr)
        doc = self.json_of("list", "--quiet", "--state-dir", self.state)
        self.assertEqual(doc["outcome"], "listed")

    # -- list and renew

    def test_list_and_renew_describe_a_certificate_alike(self):
        self.run_cp("account", "register", "--agree-tos", *self.ca())
        names = ["alike.example.test", "www.alike.example.test"]
        self.run_cp("issue", "-d", names[0], "-d", names[1], *self.standalone(), *self.ca())
        listed = self.json_of("list", "--state-dir", self.state)["results"][0]
        renewed = self.json_of("renew", "--state-dir", self.state)["results"][0]
        self.assertEqual(renewed["outcome"], "not_due")
        # Every field of list is in renew's result, with the same value when
        # nothing was renewed; renew adds only how its run went.
        self.assertEqual({k: renewed.get(k) for k in listed}, listed)
        self.assertEqual(set(renewed) - set(listed), {"outcome", "exit_status", "message"})
        self.assertEqual(listed["names"], names)
        self.assertEqual(listed["last_result"], "issued")
        # After a renewal both show the new certificate and its result.
        renewed = self.json_of("renew", "--force-renewal", "--state-dir",
                               self.state)["results"][0]
        listed = self.json_of("list", "--state-dir", self.state)["results"][0]
        self.assertEqual((renewed["outcome"], listed["last_result"]), ("renewed", "renewed"))
        for key in ("cert_name", "names", "not_after", "days_left", "last_result",
                    "last_attempt"):
            self.assertEqual(renewed[key], listed[key], key)

    # -- progress lines

    def test_progress_lines_on_a_terminal_only(self):
        self.run_cp("account", "register", "--agree-tos", *self.ca())
        argv = [CERTPILOT, "issue", "-d", "tty.example.test", *self.standalone(), *self.ca()]
        status, out, err = run_pty(argv)
        self.assertEqual(status, 0, err)
        for step in STEPS:
            self.assertIn(step, err)
        self.assertIn("Certificate issued for tty.example.test", out)
        # Progress lines go to stderr only: stdout is the report.
        self.assertNotIn("connecting to", out)
        # A pipe (a script, a timer's log file): no progress lines.
        proc = self.run_cp(*argv[1:], "--force-renewal")
        for step in STEPS:
            self.assertNotIn(step, proc.stderr)
        # On a terminal, but --quiet or --json: none either.
        for extra in (["--quiet"], ["--json"]):
            with self.subTest(extra=extra):
                status, out, err = run_pty(argv + ["--force-renewal"] + extra)
                self.assertEqual(status, 0, err)
                for step in STEPS:
                    self.assertNotIn(step, err)
                if extra == ["--json"]:
                    self.assertEqual(json.loads(out)["outcome"], "issued")

    def test_renew_shows_progress_on_a_terminal(self):
        self.run_cp("account", "register", "--agree-tos", *self.ca())
        self.run_cp("issue", "-d", "rtty.example.test", *self.standalone(), *self.ca())
        # A new account, so that the renewal answers its challenge: Pebble now
        # and then reuses the first one's valid authorization even with
        # PEBBLE_AUTHZREUSE=0 (tests/lab/README.md), and "challenge ready"
        # would not show.
        shutil.rmtree(os.path.join(self.state, "accounts"))
        self.run_cp("account", "register", "--agree-tos", *self.ca())
        status, _, err = run_pty([CERTPILOT, "renew", "--force-renewal", "--state-dir",
                                  self.state])
        self.assertEqual(status, 0, err)
        for step in STEPS:
            self.assertIn(step, err)

    # -- failures: names, the CA's detail, hints

    def test_every_name_is_listed(self):
        self.run_cp("account", "register", "--agree-tos", *self.ca())
        names = ["a.names.example.test", "b.names.example.test", "c.names.example.test"]
        args = sum((["-d", n] for n in names), [])
        proc = self.run_cp("issue", *args, *self.standalone(), *self.ca())
        self.assertIn("Certificate issued for %s, %s and %s (" % tuple(names), proc.stdout)
        proc = self.run_cp("issue", *args, *self.standalone(), *self.ca())  # not due
        self.assertIn("(%s, %s and %s) is not due" % tuple(names), proc.stdout)
        self.assertNotIn("others", proc.stdout)

    def test_webroot_404_has_a_hint_and_the_detail_once(self):
        self.run_cp("account", "register", "--agree-tos", *self.ca())
        served = os.path.join(self.tmp.name, "served")
        elsewhere = os.path.join(self.tmp.name, "elsewhere")
        os.mkdir(served)
        os.mkdir(elsewhere)
        self.serve(served)  # the web server's root is not the webroot given
        # The webroot check finds it before anything is sent to the CA ...
        proc = self.run_cp("issue", "-d", "nf.example.test", "--webroot", elsewhere, *self.ca(),
                           "--resolver", self.pebble.dns_server, "--webroot-check-port",
                           str(self.pebble.http_port), "--json", expect=4)
        self.assertEqual(json.loads(proc.stdout)["outcome"], "webroot_check_failed")
        self.assertIn("404", proc.stderr)
        self.assertIn(elsewhere, proc.stderr)
        # ... and without it, the CA's 404 gets the hint, its detail said once.
        proc = self.run_cp("issue", "-d", "nf.example.test", "--webroot", elsewhere, *self.ca(),
                           "--no-webroot-check", "--json", expect=4)
        detail = json.loads(proc.stdout)["problem"]["detail"]
        self.assertIn("404", detail)
        self.assertEqual(proc.stderr.count(detail), 1, proc.stderr)
        hints = [l for l in proc.stderr.splitlines() if "hint: " in l]
        self.assertEqual(len(hints), 1, proc.stderr)
        self.assertIn("document root", hints[0])
        # The failure is said once: not also as "challenge ... failed".
        self.assertEqual(proc.stderr.count("nf.example.test failed"), 1, proc.stderr)

    def test_port_in_use_has_a_hint(self):
        self.run_cp("account", "register", "--agree-tos", *self.ca())
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(holder.close)
        holder.bind(("0.0.0.0", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        proc = self.run_cp("issue", "-d", "busy.example.test", "--standalone", "--http-port",
                           str(port), *self.ca(), expect=None)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("Address already in use", proc.stderr)
        self.assertIn("hint: another program listens on that port", proc.stderr)

    def test_dns_record_not_visible_has_a_hint(self):
        self.run_cp("account", "register", "--agree-tos", *self.ca())
        hook = os.path.join(self.tmp.name, "hook.sh")
        with open(hook, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")  # publishes nothing
        os.chmod(hook, 0o755)
        proc = self.run_cp("issue", "-d", "nodns.example.test", "--challenge", "dns-01",
                           "--dns-hook", hook, "--dns-timeout", "0", *self.ca(), expect=4)
        hints = [l for l in proc.stderr.splitlines() if "hint: " in l]
        self.assertEqual(len(hints), 1, proc.stderr)
        self.assertIn("_acme-challenge.NAME", hints[0])

    def test_a_failure_with_no_known_cause_has_no_hint(self):
        proc = self.run_cp("issue", "-d", "nohint.example.test", *self.standalone(), *self.ca(),
                           expect=78)
        self.assertNotIn("hint:", proc.stderr)


if __name__ == "__main__":
    unittest.main()
