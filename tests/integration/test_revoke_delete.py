#!/usr/bin/python3
"""`certpilot revoke` and `certpilot delete` end to end against a real Pebble.

Same set-up as test_issue.py (whose PebbleCase this reuses): one lab and one
Pebble per class, a fresh state dir per test, and so a fresh account per
test (each test's first `issue --agree-tos` registers one).  What the CA
recorded is read from Pebble's management interface,
GET /cert-status-by-serial/<serial in hex>, which answers
{"Status": "Valid" | "Revoked", "Serial", "Reason" (the CRLReason code, only
once revoked), "RevokedAt", "Certificate"}.

- revoke --cert-name: signed with the lineage's account, the CA taken from its
  renewal.conf; the reason recorded; the lineage marked in status.json; a
  second revoke is the CA's alreadyRevoked (exit 3); a bad reason is a usage
  error and nothing is sent; an unknown lineage is a usage error.
- revoke --cert-path --key-path: signed with the certificate's own key from a
  state dir without any account (nothing written there); a key that is not
  the certificate's is refused before anything is sent; --cert-path without a
  key and without an account says how; --config gives the server and bundle.
- renew skips a revoked lineage (also when forced without naming it), list
  shows it; `renew --cert-name NAME --force-renewal` replaces it, and so does
  issuing it again; afterwards it is an ordinary lineage.
- --delete-after-revoke removes the lineage.
- delete removes that lineage only (the other lineage and the account stay
  byte for byte), refuses without --yes when stdin is no terminal, asks on a
  terminal (a pty), refuses an unknown name and an unsafe lineage, and removes
  symbolic links planted in the lineage without touching what they point to.
"""

import json
import os
import pty
import re
import shutil
import subprocess
import sys
import unittest
import urllib.error
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# test_issue gives PebbleCase, openssl and CERTPILOT, and puts tests/lab on the path.
import test_issue as base  # noqa: E402

CERTPILOT = base.CERTPILOT
openssl = base.openssl
REASONS = {"unspecified": 0, "keyCompromise": 1, "affiliationChanged": 3, "superseded": 4,
           "cessationOfOperation": 5}


def tree(top):
    """{relative path: (kind, content or link target)} under top, no link followed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, top)
            if os.path.islink(path):
                out[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                out[rel] = ("dir", None)
            else:
                with open(path, "rb") as f:
                    out[rel] = ("file", f.read())
    return out


class RevokeCase(base.PebbleCase):
    """PebbleCase with helpers that do not add --server (revoke --cert-name
    refuses it: the lineage's renewal.conf names the CA)."""

    def run_cp(self, *args, expect=0, stdin=subprocess.DEVNULL, state=None):
        argv = [CERTPILOT] + list(args) + ["--state-dir", state or self.state]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, stdin=stdin)
        proc.argv = argv
        # ASan/UBSan reports exit 1 too: never an expected outcome.
        self.assertNotRegex(proc.stderr, r"ERROR: (Address|Leak)Sanitizer|: runtime error: ",
                            self.describe(proc))
        if expect is not None:
            self.assertEqual(proc.returncode, expect, self.describe(proc))
        return proc

    @staticmethod
    def describe(proc):
        return "exit status %s of %s\nstdout:\n%s\nstderr:\n%s" % (
            proc.returncode, " ".join(proc.argv), proc.stdout, proc.stderr)

    def issue_name(self, name):
        """A lineage NAME for the one name NAME; its issue --json document."""
        return self.issue("-d", name, "--standalone", "--http-port", str(self.pebble.http_port),
                          "--caa-preflight", "off")

    def lineage(self, name):
        return os.path.join(self.state, "certs", name)

    def serial(self, cert_pem_path):
        out = openssl("x509", "-in", cert_pem_path, "-noout", "-serial")
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.strip().split("=", 1)[1].lower().lstrip("0") or "0"

    def ca_status(self, serial):
        """Pebble's record of the certificate with this serial (hex)."""
        url = self.pebble.management_url + "/cert-status-by-serial/" + serial
        return json.loads(self.pebble._get(url))

    def revoke_requests(self):
        with open(self.pebble.log) as f:
            return f.read().count("POST /revoke-cert")

    def status_json(self, name):
        with open(os.path.join(self.lineage(name), "status.json")) as f:
            return json.load(f)

    def list_json(self):
        doc = json.loads(self.run_cp("list", "--json").stdout)
        return {e["cert_name"]: e for e in doc["results"]}


class Revoke(RevokeCase):
    def test_revoke_with_the_account_key(self):
        self.issue_name("acct.example.test")
        cert = os.path.join(self.lineage("acct.example.test"), "cert.pem")
        serial = self.serial(cert)
        self.assertEqual(self.ca_status(serial)["Status"], "Valid")
        before = self.revoke_requests()
        proc = self.run_cp("revoke", "--cert-name", "acct.example.test", "--reason",
                           "keyCompromise", "--json")
        doc = json.loads(proc.stdout)
        self.assertEqual(self.revoke_requests(), before + 1)
        self.assertTrue(doc["revoked"])
        self.assertEqual(doc["serial"], serial)
        self.assertEqual(doc["reason"], "keyCompromise")
        self.assertEqual(doc["reason_code"], 1)
        self.assertEqual(doc["signed_with"], "account")
        self.assertEqual(doc["server"], self.pebble.directory_url)  # from renewal.conf
        self.assertTrue(doc["account_url"].startswith(self.pebble.directory_url.rsplit("/", 1)[0]))
        self.assertTrue(doc["marked"])
        self.assertFalse(doc["deleted"])
        self.assertIsNone(doc["problem"])
        status = self.ca_status(serial)
        self.assertEqual(status["Status"], "Revoked")
        self.assertEqual(status["Reason"], 1)
        mark = self.status_json("acct.example.test")["revoked"]
        self.assertEqual(mark["serial"], serial)
        self.assertEqual(mark["reason"], "keyCompromise")
        self.assertEqual(mark["reason_code"], 1)
        # The lineage's files are all still there: revoking deletes nothing.
        for name in ("cert.pem", "privkey.pem", "renewal.conf"):
            self.assertTrue(os.path.exists(os.path.join(self.lineage("acct.example.test"), name)))

    def test_every_reason_reaches_the_ca(self):
        for i, (reason, code) in enumerate(sorted(REASONS.items())):
            with self.subTest(reason=reason):
                name = "r%d.example.test" % i
                self.issue_name(name)
                serial = self.serial(os.path.join(self.lineage(name), "cert.pem"))
                proc = self.run_cp("revoke", "--cert-name", name, "--reason", reason)
                self.assertIn("reason " + reason, proc.stdout)
                status = self.ca_status(serial)
                self.assertEqual(status["Status"], "Revoked")
                self.assertEqual(status["Reason"], code)

    def test_no_reason_given(self):
        self.issue_name("noreason.example.test")
        serial = self.serial(os.path.join(self.lineage("noreason.example.test"), "cert.pem"))
        doc = json.loads(self.run_cp("revoke", "--cert-name", "noreason.example.test",
                                     "--json").stdout)
        self.assertIsNone(doc["reason"])
        self.assertIsNone(doc["reason_code"])
        status = self.ca_status(serial)
        self.assertEqual(status["Status"], "Revoked")
        self.assertEqual(status.get("Reason", 0), 0)  # RFC 5280: absent is unspecified

    def test_second_revoke_is_already_revoked(self):
        self.issue_name("twice.example.test")
        self.run_cp("revoke", "--cert-name", "twice.example.test", "--reason", "superseded")
        mark = self.status_json("twice.example.test")["revoked"]
        proc = self.run_cp("revoke", "--cert-name", "twice.example.test", expect=3)
        self.assertIn("urn:ietf:params:acme:error:alreadyRevoked", proc.stderr)
        self.assertIn("CA problem", proc.stderr)
        proc = self.run_cp("revoke", "--cert-name", "twice.example.test", "--json", expect=3)
        doc = json.loads(proc.stdout)
        self.assertEqual(doc["problem"]["type"], "urn:ietf:params:acme:error:alreadyRevoked")
        self.assertEqual(doc["exit_status"], 3)
        self.assertTrue(doc["already_revoked"])
        # The first mark (its reason and time) stays.
        self.assertEqual(self.status_json("twice.example.test")["revoked"], mark)

    def test_already_revoked_elsewhere_marks_the_lineage(self):
        self.issue_name("elsewhere.example.test")
        live = self.lineage("elsewhere.example.test")
        # Revoked by its key from another state dir, as another tool would.
        other = os.path.join(self.tmp.name, "other")
        self.run_cp("revoke", "--cert-path", os.path.join(live, "cert.pem"), "--key-path",
                    os.path.join(live, "privkey.pem"), "--server", self.pebble.directory_url,
                    "--ca-bundle", self.pebble.ca_bundle, state=other)
        self.assertNotIn("revoked", self.status_json("elsewhere.example.test"))
        self.run_cp("revoke", "--cert-name", "elsewhere.example.test", expect=3)
        mark = self.status_json("elsewhere.example.test")["revoked"]
        self.assertTrue(mark["already_revoked"])
        self.assertIsNone(mark["reason"])
        self.assertIn("revoked", self.list_json()["elsewhere.example.test"])

    def test_bad_reason_is_a_usage_error(self):
        self.issue_name("badreason.example.test")
        serial = self.serial(os.path.join(self.lineage("badreason.example.test"), "cert.pem"))
        before = self.revoke_requests()
        for reason in ("certificateHold", "cACompromise", "1", "compromised"):
            with self.subTest(reason=reason):
                proc = self.run_cp("revoke", "--cert-name", "badreason.example.test", "--reason",
                                   reason, expect=64)
                for name in REASONS:
                    self.assertIn(name, proc.stderr)
        self.assertEqual(self.revoke_requests(), before)
        self.assertEqual(self.ca_status(serial)["Status"], "Valid")
        self.assertNotIn("revoked", self.status_json("badreason.example.test"))

    def test_unknown_lineage(self):
        self.issue_name("known.example.test")
        proc = self.run_cp("revoke", "--cert-name", "unknown.example.test", expect=64)
        self.assertIn("unknown.example.test", proc.stderr)
        self.assertIn("certpilot list", proc.stderr)

    def test_usage_errors(self):
        cases = [
            ([], "--cert-name"),
            (["--cert-name", "a", "--cert-path", "/x"], "both"),
            (["--cert-name", "a", "--key-path", "/x"], "--key-path"),
            (["--cert-path", "/x", "--delete-after-revoke"], "--delete-after-revoke"),
            (["--cert-name", "a", "--server", "https://127.0.0.1:1/dir"], "renewal.conf"),
            (["--cert-name", "../a"], "--cert-name"),
            (["--cert-name", "a", "extra"], "extra"),
            (["--cert-name", "a", "--no-such-option"], "--no-such-option"),
        ]
        for args, needle in cases:
            with self.subTest(args=args):
                proc = self.run_cp("revoke", *args, expect=64)
                self.assertIn(needle, proc.stderr)
        # A missing value (last on the line: run_cp would append --state-dir).
        for command in ("revoke", "delete"):
            proc = subprocess.run([CERTPILOT, command, "--cert-name"], capture_output=True,
                                  text=True, timeout=60, stdin=subprocess.DEVNULL)
            self.assertEqual(proc.returncode, 64, proc.stderr)
            self.assertIn("missing value: \"--cert-name\"", proc.stderr)

    def test_revoke_with_the_certificate_key_and_no_account(self):
        self.issue_name("bykey.example.test")
        live = self.lineage("bykey.example.test")
        cert = os.path.join(self.tmp.name, "cert.pem")
        key = os.path.join(self.tmp.name, "key.pem")
        shutil.copy(os.path.join(live, "fullchain.pem"), cert)  # leaf first, then the chain
        shutil.copy(os.path.join(live, "privkey.pem"), key)
        serial = self.serial(cert)
        bare = os.path.join(self.tmp.name, "bare")
        ca = ["--server", self.pebble.directory_url, "--ca-bundle", self.pebble.ca_bundle]

        # Without a key and without an account: refused, says what to give.
        proc = self.run_cp("revoke", "--cert-path", cert, *ca, state=bare, expect=78)
        self.assertIn("--key-path", proc.stderr)
        # Another certificate's key: refused before anything is sent.
        self.issue_name("other.example.test")
        before = self.revoke_requests()
        proc = self.run_cp("revoke", "--cert-path", cert, "--key-path",
                           os.path.join(self.lineage("other.example.test"), "privkey.pem"), *ca,
                           state=bare, expect=64)
        self.assertIn("not the certificate's", proc.stderr)
        self.assertEqual(self.revoke_requests(), before)
        self.assertEqual(self.ca_status(serial)["Status"], "Valid")

        proc = self.run_cp("revoke", "--cert-path", cert, "--key-path", key, "--reason",
                           "keyCompromise", "--json", *ca, state=bare)
        doc = json.loads(proc.stdout)
        self.assertEqual(doc["signed_with"], "certificate_key")
        self.assertIsNone(doc["account_url"])
        self.assertEqual(doc["serial"], serial)
        status = self.ca_status(serial)
        self.assertEqual(status["Status"], "Revoked")
        self.assertEqual(status["Reason"], 1)
        # No account was made or looked up, nothing written in that state dir.
        self.assertFalse(os.path.exists(os.path.join(bare, "accounts")))
        self.assertFalse(os.path.exists(os.path.join(bare, "certs")))
        # The lineage in the other state dir is not marked (a file is no lineage).
        self.assertNotIn("revoked", self.status_json("bykey.example.test"))

    def test_cert_path_with_the_account_and_a_config_file(self):
        self.issue_name("conf.example.test")
        cert = os.path.join(self.lineage("conf.example.test"), "cert.pem")
        serial = self.serial(cert)
        config = os.path.join(self.tmp.name, "config")
        with open(config, "w") as f:
            f.write("# defaults\nserver = %s\nca-bundle = %s\nstate-dir = %s\n"
                    % (self.pebble.directory_url, self.pebble.ca_bundle, self.state))
        argv = [CERTPILOT, "revoke", "--cert-path", cert, "--config", config, "--reason",
                "cessationOfOperation", "--json"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        doc = json.loads(proc.stdout)
        self.assertEqual(doc["signed_with"], "account")
        self.assertEqual(self.ca_status(serial)["Reason"], 5)
        # A config file with a setting issue does not know is refused, as issue refuses it.
        with open(config, "a") as f:
            f.write("no-such-setting = 1\n")
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
        self.assertEqual(proc.returncode, 78, proc.stderr)
        self.assertIn("no-such-setting", proc.stderr)

    def test_other_account_is_unauthorized(self):
        self.issue_name("mine.example.test")
        cert = os.path.join(self.lineage("mine.example.test"), "cert.pem")
        other = os.path.join(self.tmp.name, "other")
        ca = ["--server", self.pebble.directory_url, "--ca-bundle", self.pebble.ca_bundle]
        self.run_cp("account", "register", "--agree-tos", *ca, state=other)
        proc = self.run_cp("revoke", "--cert-path", cert, *ca, state=other, expect=3)
        self.assertIn("urn:ietf:params:acme:error:unauthorized", proc.stderr)
        self.assertEqual(self.ca_status(self.serial(cert))["Status"], "Valid")


class RenewAfterRevoke(RevokeCase):
    def test_renew_skips_a_revoked_lineage(self):
        self.issue_name("gone.example.test")
        self.issue_name("kept.example.test")
        old_serial = self.serial(os.path.join(self.lineage("gone.example.test"), "cert.pem"))
        self.run_cp("revoke", "--cert-name", "gone.example.test", "--reason", "superseded")

        entry = self.list_json()["gone.example.test"]
        self.assertEqual(entry["revoked"]["serial"], old_serial)
        self.assertEqual(entry["revoked"]["reason"], "superseded")
        self.assertNotIn("revoked", self.list_json()["kept.example.test"])
        text = self.run_cp("list").stdout
        self.assertRegex(text, r"status:\s+revoked \S+ \(reason superseded")

        # Forced without naming it: the other one renews, the revoked one is skipped.
        proc = self.run_cp("renew", "--force-renewal", "--json")
        results = {r["cert_name"]: r for r in json.loads(proc.stdout)["results"]}
        self.assertEqual(results["gone.example.test"]["outcome"], "revoked")
        self.assertEqual(results["gone.example.test"]["exit_status"], 0)
        self.assertEqual(results["kept.example.test"]["outcome"], "renewed")
        notes = [l for l in proc.stderr.splitlines() if "gone.example.test: skipped" in l]
        self.assertEqual(len(notes), 1, proc.stderr)
        self.assertIn("--cert-name gone.example.test --force-renewal", notes[0])
        # Named but not forced: still skipped.
        proc = self.run_cp("renew", "--cert-name", "gone.example.test", "--json")
        self.assertEqual(json.loads(proc.stdout)["results"][0]["outcome"], "revoked")
        self.assertEqual(self.serial(os.path.join(self.lineage("gone.example.test"), "cert.pem")),
                         old_serial)

        # Named and forced: replaced; from then on an ordinary lineage.
        proc = self.run_cp("renew", "--cert-name", "gone.example.test", "--force-renewal",
                           "--json")
        self.assertEqual(json.loads(proc.stdout)["results"][0]["outcome"], "renewed")
        new_serial = self.serial(os.path.join(self.lineage("gone.example.test"), "cert.pem"))
        self.assertNotEqual(new_serial, old_serial)
        self.assertEqual(self.ca_status(new_serial)["Status"], "Valid")
        self.assertNotIn("revoked", self.list_json()["gone.example.test"])
        proc = self.run_cp("renew", "--json")
        results = {r["cert_name"]: r for r in json.loads(proc.stdout)["results"]}
        self.assertEqual(results["gone.example.test"]["outcome"], "not_due")

    def test_issue_again_replaces_a_revoked_certificate(self):
        self.issue_name("again.example.test")
        self.run_cp("revoke", "--cert-name", "again.example.test")
        self.assertIn("revoked", self.list_json()["again.example.test"])
        self.issue_name("again.example.test")
        self.assertNotIn("revoked", self.list_json()["again.example.test"])
        proc = self.run_cp("renew", "--json")
        self.assertEqual(json.loads(proc.stdout)["results"][0]["outcome"], "not_due")

    def test_delete_after_revoke(self):
        self.issue_name("bye.example.test")
        self.issue_name("stay.example.test")
        serial = self.serial(os.path.join(self.lineage("bye.example.test"), "cert.pem"))
        proc = self.run_cp("revoke", "--cert-name", "bye.example.test", "--reason",
                           "cessationOfOperation", "--delete-after-revoke", "--json")
        doc = json.loads(proc.stdout)
        self.assertTrue(doc["revoked"])
        self.assertTrue(doc["deleted"])
        self.assertIn("renewal.conf", proc.stderr)  # what went, on stderr beside --json
        self.assertEqual(self.ca_status(serial)["Reason"], 5)
        self.assertFalse(os.path.lexists(self.lineage("bye.example.test")))
        self.assertEqual(sorted(os.listdir(os.path.join(self.state, "certs"))),
                         ["stay.example.test"])
        self.assertEqual(list(self.list_json()), ["stay.example.test"])


class Delete(RevokeCase):
    def two_lineages(self):
        self.issue_name("a.example.test")
        self.issue_name("b.example.test")
        return tree(os.path.join(self.state, "accounts")), tree(self.lineage("b.example.test"))

    def test_delete_removes_only_that_lineage(self):
        accounts, other = self.two_lineages()
        proc = self.run_cp("delete", "--cert-name", "a.example.test", "--yes")
        # It said exactly what went: every entry of the lineage.
        self.assertIn(os.path.join(self.state, "certs", "a.example.test"), proc.stdout)
        for line in ("renewal.conf", "status.json", "cert.pem -> current/cert.pem",
                     "privkey.pem -> current/privkey.pem", "versions/"):
            self.assertIn("    " + line + "\n", proc.stdout)
        self.assertIn("Deleted a.example.test", proc.stdout)
        self.assertFalse(os.path.lexists(self.lineage("a.example.test")))
        self.assertEqual(os.listdir(os.path.join(self.state, "certs")), ["b.example.test"])
        self.assertEqual(tree(os.path.join(self.state, "accounts")), accounts)
        self.assertEqual(tree(self.lineage("b.example.test")), other)
        self.assertEqual(list(self.list_json()), ["b.example.test"])
        # The account still works: b is renewed with it.
        proc = self.run_cp("renew", "--force-renewal", "--json")
        self.assertEqual(json.loads(proc.stdout)["results"][0]["outcome"], "renewed")

    def test_delete_json(self):
        self.issue_name("j.example.test")
        proc = self.run_cp("delete", "--cert-name", "j.example.test", "--yes", "--json")
        doc = json.loads(proc.stdout)
        self.assertTrue(doc["deleted"])
        self.assertEqual(doc["names"], ["j.example.test"])
        self.assertIn("renewal.conf", doc["removed"])
        self.assertIn("versions/", doc["removed"])
        self.assertEqual(doc["entries"], len(doc["removed"]) + 1)  # and the lineage itself
        self.assertFalse(os.path.lexists(self.lineage("j.example.test")))

    def test_delete_refuses_without_yes_and_terminal(self):
        self.issue_name("a.example.test")
        before = tree(self.lineage("a.example.test"))
        proc = self.run_cp("delete", "--cert-name", "a.example.test", expect=64)
        self.assertIn("--yes", proc.stderr)
        self.assertIn("not a terminal", proc.stderr)
        self.assertIn("renewal.conf", proc.stdout)  # what would have gone, said first
        self.assertEqual(tree(self.lineage("a.example.test")), before)
        proc = self.run_cp("delete", "--cert-name", "a.example.test", "--json", expect=64)
        self.assertFalse(json.loads(proc.stdout)["deleted"])

    def confirm_on_pty(self, name, answer, *more):
        """delete NAME with a pty as stdin, answering `answer`; the process."""
        master, slave = pty.openpty()
        try:
            argv = [CERTPILOT, "delete", "--cert-name", name, "--state-dir", self.state] + list(more)
            os.write(master, answer.encode() + b"\n")
            proc = subprocess.run(argv, stdin=slave, capture_output=True, text=True, timeout=60)
            proc.argv = argv
            return proc
        finally:
            os.close(master)
            os.close(slave)

    def test_delete_asks_on_a_terminal(self):
        self.issue_name("a.example.test")
        before = tree(self.lineage("a.example.test"))
        for answer in ("n", "", "no", "maybe"):
            with self.subTest(answer=answer):
                proc = self.confirm_on_pty("a.example.test", answer)
                self.assertEqual(proc.returncode, 1, self.describe(proc))
                self.assertIn("Delete a.example.test? [y/N]", proc.stderr)
                self.assertIn("Nothing was deleted", proc.stdout)
                self.assertEqual(tree(self.lineage("a.example.test")), before)
        # --quiet still shows what the question is about (on stderr).
        proc = self.confirm_on_pty("a.example.test", "n", "--quiet")
        self.assertEqual(proc.returncode, 1, self.describe(proc))
        self.assertEqual(proc.stdout, "")
        self.assertIn("The certificate lineage a.example.test", proc.stderr)
        self.assertIn("cert.pem", proc.stderr)
        self.assertEqual(tree(self.lineage("a.example.test")), before)
        proc = self.confirm_on_pty("a.example.test", "y")
        self.assertEqual(proc.returncode, 0, self.describe(proc))
        self.assertFalse(os.path.lexists(self.lineage("a.example.test")))

    def test_delete_unknown_name(self):
        self.issue_name("a.example.test")
        proc = self.run_cp("delete", "--cert-name", "nope.example.test", "--yes", expect=64)
        self.assertIn("nope.example.test", proc.stderr)
        self.assertIn("certpilot list", proc.stderr)
        proc = self.run_cp("delete", "--cert-name", "../accounts", "--yes", expect=64)
        self.assertTrue(os.path.isdir(os.path.join(self.state, "accounts")))
        # A symlink in certs/ is no lineage: refused, its target untouched.
        outside = os.path.join(self.tmp.name, "outside")
        os.mkdir(outside)
        with open(os.path.join(outside, "keep"), "w") as f:
            f.write("keep")
        os.symlink(outside, os.path.join(self.state, "certs", "linked"))
        proc = self.run_cp("delete", "--cert-name", "linked", "--yes", expect=64)
        self.assertTrue(os.path.exists(os.path.join(outside, "keep")))

    def test_delete_does_not_follow_symlinks(self):
        self.issue_name("a.example.test")
        live = self.lineage("a.example.test")
        outside = os.path.join(self.tmp.name, "outside")
        os.mkdir(outside)
        secret = os.path.join(outside, "precious.txt")
        with open(secret, "w") as f:
            f.write("not certpilot's\n")
        inner = os.path.join(outside, "dir")
        os.mkdir(inner)
        with open(os.path.join(inner, "inner.txt"), "w") as f:
            f.write("inner\n")
        version = os.path.join(live, os.readlink(os.path.join(live, "current")))
        # Links planted in the lineage and in a version: to a file and to a directory.
        os.symlink(secret, os.path.join(live, "planted.pem"))
        os.symlink(inner, os.path.join(live, "planted-dir"))
        os.symlink(secret, os.path.join(version, "extra.pem"))
        os.symlink(inner, os.path.join(live, "versions", "20000101T000000.000000000Z"))
        proc = self.run_cp("delete", "--cert-name", "a.example.test", "--yes")
        self.assertIn("planted.pem -> " + secret, proc.stdout)
        self.assertFalse(os.path.lexists(live))
        with open(secret) as f:
            self.assertEqual(f.read(), "not certpilot's\n")
        with open(os.path.join(inner, "inner.txt")) as f:
            self.assertEqual(f.read(), "inner\n")
        self.assertEqual(sorted(os.listdir(outside)), ["dir", "precious.txt"])
        # Nothing half-removed is left in certs/, hidden or not.
        self.assertEqual(os.listdir(os.path.join(self.state, "certs")), [])

    def test_unsafe_lineage_is_refused(self):
        self.issue_name("a.example.test")
        live = self.lineage("a.example.test")
        outside = os.path.join(self.tmp.name, "outside")
        os.mkdir(outside)
        with open(os.path.join(outside, "cert.pem"), "w") as f:
            f.write("outside\n")
        before_target = os.readlink(os.path.join(live, "current"))
        os.unlink(os.path.join(live, "current"))
        os.symlink(outside, os.path.join(live, "current"))
        proc = self.run_cp("delete", "--cert-name", "a.example.test", "--yes", expect=77)
        self.assertIn("current", proc.stderr)
        self.assertTrue(os.path.exists(os.path.join(live, "renewal.conf")))
        self.assertTrue(os.path.exists(os.path.join(outside, "cert.pem")))
        # revoke refuses it too, before asking the CA anything.
        before = self.revoke_requests()
        self.run_cp("revoke", "--cert-name", "a.example.test", expect=77)
        self.assertEqual(self.revoke_requests(), before)
        # Group-writable lineage directory: refused as well.
        os.unlink(os.path.join(live, "current"))
        os.symlink(before_target, os.path.join(live, "current"))
        os.chmod(live, 0o770)
        self.run_cp("delete", "--cert-name", "a.example.test", "--yes", expect=77)
        self.assertTrue(os.path.isdir(live))


if __name__ == "__main__":
    unittest.main()
