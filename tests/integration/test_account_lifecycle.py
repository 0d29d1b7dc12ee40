#!/usr/bin/python3
"""The account's whole life against a real Pebble: register, show, update,
rollover (and recovery from a rollover cut short), deactivate, --config.

Same set-up as test_issue.py (whose PebbleCase this reuses): one lab and one
Pebble per class, a fresh state dir and a fresh account per test.  What the
CA recorded is checked independently of certpilot, with a small ACME client
written here (RFC 8555 JWS with the `cryptography` module): the account
object by POST-as-GET (Pebble shows the account's key there, so the key the
CA holds is known), onlyReturnExisting with a given key, and keyChange
itself, to leave the state a crash between keyChange and the local key
switch would leave.  That certpilot sent no request is read from Pebble's
request log.
"""

import base64
import glob
import hashlib
import json
import os
import pty
import stat
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# test_issue gives PebbleCase, openssl and CERTPILOT, and puts tests/lab on the path.
import test_issue as base  # noqa: E402

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature  # noqa: E402

import ssl  # noqa: E402
import urllib.error  # noqa: E402
import urllib.parse  # noqa: E402
import urllib.request  # noqa: E402

CERTPILOT = base.CERTPILOT
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")


# --- an independent ACME client: just enough JWS ---------------------------

def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def load_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def new_ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def jwk(key):
    pub = key.public_key()
    if isinstance(pub, ec.EllipticCurvePublicKey):
        size = (pub.curve.key_size + 7) // 8
        nums = pub.public_numbers()
        return {"crv": "P-%d" % pub.curve.key_size, "kty": "EC",
                "x": b64url(nums.x.to_bytes(size, "big")),
                "y": b64url(nums.y.to_bytes(size, "big"))}
    nums = pub.public_numbers()
    return {"e": b64url(nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big")), "kty": "RSA",
            "n": b64url(nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big"))}


def thumbprint(key):
    """RFC 7638."""
    canonical = json.dumps(jwk(key), sort_keys=True, separators=(",", ":")).encode()
    return b64url(hashlib.sha256(canonical).digest())


def jws(key, header, payload):
    """Flattened JWS; payload None is POST-as-GET's empty payload."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        bits = key.curve.key_size
        alg, digest = ("ES256", hashes.SHA256()) if bits == 256 else ("ES384", hashes.SHA384())
    else:
        alg, digest = "RS256", hashes.SHA256()
    protected = b64url(json.dumps(dict(header, alg=alg)).encode())
    body = "" if payload is None else b64url(json.dumps(payload).encode())
    signing_input = (protected + "." + body).encode()
    if alg.startswith("ES"):
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(digest)))
        n = (bits + 7) // 8
        sig = r.to_bytes(n, "big") + s.to_bytes(n, "big")
    else:
        sig = key.sign(signing_input, padding.PKCS1v15(), digest)
    return {"protected": protected, "payload": body, "signature": b64url(sig)}


class MiniAcme:
    """Signed requests to Pebble (which rejects no nonces in these tests)."""

    def __init__(self, pebble):
        ctx = ssl.create_default_context(cafile=pebble.ca_bundle)
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                                  urllib.request.HTTPSHandler(context=ctx))
        self.dir = pebble.directory()

    def _request(self, method, url, body=None):
        req = urllib.request.Request(url, data=body, method=method,
                                     headers={"Content-Type": "application/jose+json"})
        try:
            with self.opener.open(req, timeout=10) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()

    def post(self, key, url, payload, kid=None):
        """(HTTP status, headers, decoded JSON body or None)."""
        nonce = self._request("HEAD", self.dir["newNonce"])[1]["Replay-Nonce"]
        header = {"nonce": nonce, "url": url}
        if kid is not None:
            header["kid"] = kid
        else:
            header["jwk"] = jwk(key)
        status, headers, text = self._request("POST", url,
                                              json.dumps(jws(key, header, payload)).encode())
        return status, headers, json.loads(text) if text else None

    def account(self, key, url):
        """The account object, POST-as-GET with the account's key."""
        return self.post(key, url, None, kid=url)

    def lookup(self, key):
        """onlyReturnExisting: (status, Location or None, body)."""
        status, headers, doc = self.post(key, self.dir["newAccount"],
                                         {"onlyReturnExisting": True})
        return status, headers.get("Location"), doc

    def key_change(self, old_key, url, new_key):
        """RFC 8555 §7.3.5, independently of certpilot's acme/account.c."""
        inner = jws(new_key, {"jwk": jwk(new_key), "url": self.dir["keyChange"]},
                    {"account": url, "oldKey": jwk(old_key)})
        return self.post(old_key, self.dir["keyChange"], inner, kid=url)

    def new_order(self, key, url, name):
        return self.post(key, self.dir["newOrder"],
                         {"identifiers": [{"type": "dns", "value": name}]}, kid=url)


def log_size(pebble):
    with open(pebble.log) as f:
        return len(f.read())


def log_since(pebble, offset):
    with open(pebble.log) as f:
        return f.read()[offset:]


class AccountCase(base.PebbleCase):
    def setUp(self):
        super().setUp()
        self.ca = MiniAcme(self.pebble)

    def run_certpilot(self, *args, expect=0, common=True, stdin=subprocess.DEVNULL):
        argv = [CERTPILOT] + list(args)
        if common:
            argv += ["--server", self.server(), "--ca-bundle", self.pebble.ca_bundle,
                     "--state-dir", self.state]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, stdin=stdin)
        for mark in SANITIZER_MARKS:
            self.assertNotIn(mark, proc.stderr)
        if expect is not None:
            self.assertEqual(proc.returncode, expect, "exit status of %s\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(argv), proc.stdout, proc.stderr))
        return proc

    def json_of(self, *args, **kw):
        return json.loads(self.run_certpilot(*(args + ("--json",)), **kw).stdout)

    def account_dir(self):
        (ca,) = os.listdir(os.path.join(self.state, "accounts"))
        return os.path.join(self.state, "accounts", ca)

    def path(self, name):
        return os.path.join(self.account_dir(), name)

    def saved(self):
        with open(self.path("account.json")) as f:
            return json.load(f)

    def register(self, *emails):
        args = sum((["--email", e] for e in emails), [])
        return self.json_of("account", "register", "--agree-tos", *args)

    def assert_private(self, name):
        self.assertEqual(stat.S_IMODE(os.stat(self.path(name)).st_mode), 0o600, name)

    def ca_account(self, key=None, url=None):
        """The account object as Pebble has it, asked with the saved key."""
        key = key or load_key(self.path("account.key"))
        url = url or self.saved()["url"]
        status, _, doc = self.ca.account(key, url)
        self.assertEqual(status, 200, doc)
        return doc

    def issue_one(self, name, expect=0):
        return self.run_certpilot("issue", "--json", "-d", name, "--standalone", "--http-port",
                                  str(self.pebble.http_port), expect=expect)


class Register(AccountCase):
    def test_register_records_terms_and_contacts(self):
        doc = self.register("ops@example.test")
        self.assertEqual(doc["outcome"], "registered")
        self.assertEqual(doc["contacts"], ["mailto:ops@example.test"])
        saved = self.saved()
        self.assertEqual(saved["url"], doc["url"])
        self.assertEqual(saved["terms_agreed"]["terms"],
                         self.pebble.directory()["meta"]["termsOfService"])
        self.assert_private("account.key")
        self.assert_private("account.json")
        ca = self.ca_account()
        self.assertEqual(ca["status"], "valid")
        self.assertEqual(ca["contact"], ["mailto:ops@example.test"])
        self.assertEqual(ca["key"], jwk(load_key(self.path("account.key"))))

    def test_register_again_with_other_email_updates_the_ca(self):
        first = self.register("old@example.test")
        doc = self.register("new@example.test", "second@example.test")
        self.assertEqual(doc["outcome"], "contacts_updated")
        self.assertEqual(doc["url"], first["url"])
        self.assertEqual(doc["thumbprint"], first["thumbprint"])
        want = ["mailto:new@example.test", "mailto:second@example.test"]
        self.assertEqual(self.ca_account()["contact"], want)
        self.assertEqual(self.saved()["contact"], want)

    def test_register_again_with_same_email_says_so(self):
        first = self.register("same@example.test")
        log_before = log_size(self.pebble)
        proc = self.run_certpilot("account", "register", "--agree-tos", "--email",
                                  "same@example.test")
        self.assertIn("Already registered", proc.stdout)
        self.assertIn("contacts unchanged", proc.stdout)
        self.assertIn("account update", proc.stdout)
        # No newAccount, no update: only the account object was read.
        log = log_since(self.pebble, log_before)
        self.assertNotIn("POST %s " % urllib.parse.urlsplit(self.ca.dir["newAccount"]).path, log)
        doc = self.register()  # no --email: nothing to compare, nothing changes
        self.assertEqual(doc["outcome"], "existing")
        self.assertEqual(doc["url"], first["url"])
        self.assertEqual(self.ca_account()["contact"], ["mailto:same@example.test"])

    def test_register_key_type(self):
        doc = self.json_of("account", "register", "--agree-tos", "--key-type", "rsa2048")
        self.assertEqual(doc["key_type"], "rsa2048")
        key = load_key(self.path("account.key"))
        self.assertEqual(self.ca_account()["key"], jwk(key))
        self.assertEqual(doc["thumbprint"], thumbprint(key))


class Show(AccountCase):
    def test_show_reports_what_the_ca_has(self):
        reg = self.register("show@example.test")
        # Changed behind certpilot's back: show tells what the CA has now.
        key = load_key(self.path("account.key"))
        status, _, _ = self.ca.post(key, reg["url"], {"contact": ["mailto:other@example.test"]},
                                    kid=reg["url"])
        self.assertEqual(status, 200)
        doc = self.json_of("account", "show")
        self.assertEqual(doc["status"], "valid")
        self.assertEqual(doc["status_from"], "ca")
        self.assertEqual(doc["contacts"], ["mailto:other@example.test"])
        self.assertEqual(doc["saved_contacts"], ["mailto:show@example.test"])
        self.assertEqual(doc["thumbprint"], thumbprint(key))
        self.assertEqual(doc["ca_key_thumbprint"], thumbprint(key))
        self.assertEqual(doc["key_type"], "ec256")
        self.assertTrue(doc["terms_agreed"])
        self.assertIsNone(doc["ca_error"])
        text = self.run_certpilot("account", "show").stdout
        self.assertIn("valid (as the CA reports it)", text)
        self.assertIn("mailto:other@example.test", text)
        self.assertIn(reg["url"], text)

    def test_show_without_the_ca_says_so(self):
        self.register("offline@example.test")
        # Without --ca-bundle Pebble's certificate is not trusted: the CA cannot be asked.
        argv = ["account", "show", "--json", "--server", self.server(), "--state-dir", self.state]
        proc = self.run_certpilot(*argv, common=False, expect=5)
        doc = json.loads(proc.stdout)
        self.assertIsNone(doc["status"])
        self.assertIn("certificate", doc["ca_error"].lower())
        self.assertEqual(doc["contacts"], ["mailto:offline@example.test"])
        text = self.run_certpilot(*argv[:2], *argv[3:], common=False, expect=5).stdout
        self.assertIn("the CA could not be asked", text)


class Update(AccountCase):
    def test_update_replaces_then_clears(self):
        reg = self.register("first@example.test")
        doc = self.json_of("account", "update", "--email", "a@example.test", "--email",
                           "b@example.test")
        want = ["mailto:a@example.test", "mailto:b@example.test"]
        self.assertEqual(doc["contacts"], want)
        self.assertEqual(self.ca_account()["contact"], want)
        self.assertEqual(self.saved()["contact"], want)
        self.assert_private("account.json")

        doc = self.json_of("account", "update", "--no-email")
        self.assertEqual(doc["contacts"], [])
        self.assertEqual(self.ca_account().get("contact", []), [])
        self.assertEqual(self.saved()["contact"], [])
        self.assertEqual(self.saved()["url"], reg["url"])

    def test_update_needs_exactly_one_way(self):
        self.register()
        log_before = log_size(self.pebble)
        for args in ([], ["--email", "a@example.test", "--no-email"]):
            proc = self.run_certpilot("account", "update", *args, expect=64)
            self.assertIn("--no-email", proc.stderr)
        proc = self.run_certpilot("account", "update", "--yes", expect=64)
        self.assertIn("does not take", proc.stderr)
        self.assertNotIn("POST ", log_since(self.pebble, log_before))

    def test_update_without_account_says_how(self):
        proc = self.run_certpilot("account", "update", "--email", "a@example.test", expect=78)
        self.assertIn("account register --agree-tos", proc.stderr)


class Rollover(AccountCase):
    def test_rollover_new_key_works_old_refused(self):
        reg = self.register("roll@example.test")
        old = load_key(self.path("account.key"))
        doc = self.json_of("account", "rollover", "--key-type", "ec384")
        self.assertEqual(doc["url"], reg["url"])
        self.assertEqual(doc["old_thumbprint"], thumbprint(old))
        self.assertEqual(doc["key_type"], "ec384")
        new = load_key(self.path("account.key"))
        self.assertEqual(doc["thumbprint"], thumbprint(new))
        self.assertNotEqual(thumbprint(new), thumbprint(old))
        self.assert_private("account.key")
        self.assertEqual(sorted(os.listdir(self.account_dir())),
                         ["account.json", "account.key"])  # no pending key, no old key
        self.assertEqual(self.saved()["key_type"], "ec384")
        self.assertEqual(self.saved()["url"], reg["url"])

        # The CA holds the new key for the same URL and no longer knows the old one.
        self.assertEqual(self.ca_account(new)["key"], jwk(new))
        status, location, _ = self.ca.lookup(new)
        self.assertEqual((status, location), (200, reg["url"]))
        status, _, problem = self.ca.lookup(old)
        self.assertEqual(status, 400)
        self.assertEqual(problem["type"], "urn:ietf:params:acme:error:accountDoesNotExist")
        status, _, problem = self.ca.new_order(old, reg["url"], "old.example.test")
        self.assertNotEqual(status, 201, problem)
        status, _, order = self.ca.new_order(new, reg["url"], "new.example.test")
        self.assertEqual(status, 201, order)

        # certpilot itself orders with the new key.
        cert = json.loads(self.issue_one("rolled.example.test").stdout)
        self.assert_certificate(cert, ["rolled.example.test"])

    def test_rollover_default_keeps_key_type(self):
        self.json_of("account", "register", "--agree-tos", "--key-type", "rsa2048")
        doc = self.json_of("account", "rollover")
        self.assertEqual((doc["old_key_type"], doc["key_type"]), ("rsa2048", "rsa2048"))
        self.assertNotEqual(doc["old_thumbprint"], doc["thumbprint"])
        self.assertEqual(self.ca_account()["key"], jwk(load_key(self.path("account.key"))))

    def leave_pending(self, key):
        with open(os.open(self.path("account.key.pending"), os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                          0o600), "wb") as f:
            f.write(key_pem(key))

    def test_crash_before_key_change_keeps_old_key(self):
        # Killed after writing the pending key, before the CA heard of it.
        reg = self.register()
        old = load_key(self.path("account.key"))
        self.leave_pending(new_ec_key())
        doc = self.json_of("account", "show")
        self.assertEqual(doc["thumbprint"], thumbprint(old))
        self.assertEqual(doc["ca_key_thumbprint"], thumbprint(old))
        self.assertFalse(os.path.exists(self.path("account.key.pending")))
        self.assertEqual(thumbprint(load_key(self.path("account.key"))), thumbprint(old))
        self.assertEqual(self.saved()["url"], reg["url"])

    def test_crash_after_key_change_takes_new_key(self):
        # Killed after the CA changed the key, before account.key was replaced:
        # the key change is made here, the pending key left as certpilot leaves it.
        reg = self.register("crash@example.test")
        old = load_key(self.path("account.key"))
        new = ec.generate_private_key(ec.SECP384R1())
        self.leave_pending(new)
        status, _, doc = self.ca.key_change(old, reg["url"], new)
        self.assertEqual(status, 200, doc)
        # issue is the next command: it finishes the rollover and orders with the new key.
        cert = json.loads(self.issue_one("recovered.example.test").stdout)
        self.assert_certificate(cert, ["recovered.example.test"])
        self.assertFalse(os.path.exists(self.path("account.key.pending")))
        self.assertEqual(thumbprint(load_key(self.path("account.key"))), thumbprint(new))
        self.assert_private("account.key")
        saved = self.saved()
        self.assertEqual((saved["url"], saved["key_type"]), (reg["url"], "ec384"))
        self.assertEqual(saved["contact"], ["mailto:crash@example.test"])

    def test_crash_with_neither_key_known_keeps_both(self):
        self.register()
        stranger = new_ec_key()
        with open(self.path("account.key"), "wb") as f:
            f.write(key_pem(stranger))
        self.leave_pending(new_ec_key())
        proc = self.run_certpilot("account", "show", expect=3)
        self.assertIn("knows neither", proc.stderr)
        self.assertTrue(os.path.exists(self.path("account.key.pending")))
        self.assertEqual(thumbprint(load_key(self.path("account.key"))), thumbprint(stranger))

    def test_pending_key_symlink_is_refused(self):
        self.register()
        target = os.path.join(self.tmp.name, "elsewhere.pem")
        with open(target, "wb") as f:
            f.write(key_pem(new_ec_key()))
        os.symlink(target, self.path("account.key.pending"))
        proc = self.run_certpilot("account", "rollover", expect=77)
        self.assertIn("symbolic link", proc.stderr)


class Deactivate(AccountCase):
    def test_deactivate_then_everything_refuses(self):
        reg = self.register("bye@example.test")
        key = load_key(self.path("account.key"))
        self.issue_one("before.example.test")  # a certificate for renew to try
        doc = self.json_of("account", "deactivate", "--yes")
        self.assertEqual((doc["status"], doc["url"]), ("deactivated", reg["url"]))
        saved = self.saved()
        self.assertEqual(saved["status"], "deactivated")
        self.assertEqual(saved["deactivated_at"], doc["deactivated_at"])
        self.assert_private("account.json")

        # The CA refuses the account, by its URL and by its key.
        status, _, problem = self.ca.account(key, reg["url"])
        self.assertEqual(status, 403)
        self.assertEqual(problem["type"], "urn:ietf:params:acme:error:unauthorized")
        status, _, problem = self.ca.lookup(key)
        self.assertEqual(status, 403, problem)

        # certpilot refuses locally: clear message, exit 78, nothing signed sent.
        log_before = log_size(self.pebble)
        for args in (["issue", "-d", "gone.example.test", "--standalone", "--http-port",
                      str(self.pebble.http_port)],
                     ["account", "update", "--email", "x@example.test"],
                     ["account", "rollover"],
                     ["account", "deactivate", "--yes"]):
            proc = self.run_certpilot(*args, expect=78)
            self.assertIn("was deactivated on %s" % doc["deactivated_at"], proc.stderr)
            self.assertIn(reg["url"], proc.stderr)
            self.assertIn("account register --agree-tos", proc.stderr)
        # renew reports the certificate failed, for the same reason.
        proc = subprocess.run([CERTPILOT, "renew", "--force-renewal", "--json", "--state-dir",
                               self.state], capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("was deactivated on %s" % doc["deactivated_at"], proc.stderr)
        self.assertNotIn("POST ", log_since(self.pebble, log_before))
        shown = self.json_of("account", "show")
        self.assertEqual((shown["status"], shown["status_from"]), ("deactivated", "state"))

        # A new registration replaces it: new key, new URL, and issue works again.
        new = self.register("again@example.test")
        self.assertEqual(new["outcome"], "registered")
        self.assertNotEqual(new["url"], reg["url"])
        self.assertNotEqual(new["thumbprint"], thumbprint(key))
        self.assertNotIn("status", self.saved())
        cert = json.loads(self.issue_one("again.example.test").stdout)
        self.assert_certificate(cert, ["again.example.test"])

    def test_without_terminal_needs_yes(self):
        self.register()
        log_before = log_size(self.pebble)
        proc = self.run_certpilot("account", "deactivate", expect=64)
        self.assertIn("--yes", proc.stderr)
        self.assertNotIn("POST ", log_since(self.pebble, log_before))
        self.assertEqual(self.ca_account()["status"], "valid")

    def deactivate_on_terminal(self, answer):
        master, slave = pty.openpty()
        try:
            os.write(master, answer.encode() + b"\n")
            return self.run_certpilot("account", "deactivate", stdin=slave, expect=None)
        finally:
            os.close(slave)
            os.close(master)

    def test_terminal_asks(self):
        reg = self.register()
        proc = self.deactivate_on_terminal("no")
        self.assertEqual(proc.returncode, 64, proc.stderr)
        self.assertIn("Type yes", proc.stderr)
        self.assertIn(reg["url"], proc.stderr)
        self.assertEqual(self.ca_account()["status"], "valid")
        self.assertNotIn("status", self.saved())
        proc = self.deactivate_on_terminal("yes")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(self.saved()["status"], "deactivated")


class Config(AccountCase):
    def write_config(self, **settings):
        path = os.path.join(self.tmp.name, "config")
        with open(path, "w") as f:
            f.write("# account commands read these three\nemail = ignored@example.test\n")
            for key, value in settings.items():
                f.write("%s = %s\n" % (key.replace("_", "-"), value))
        return path

    def test_config_supplies_server_and_state_dir(self):
        config = self.write_config(server=self.server(), ca_bundle=self.pebble.ca_bundle,
                                   state_dir=self.state)
        doc = self.json_of("account", "register", "--agree-tos", "--config", config,
                           common=False)
        self.assertEqual(doc["server"], self.server())
        self.assertEqual(doc["state_dir"], self.state)
        self.assertEqual(self.saved()["url"], doc["url"])
        shown = self.json_of("account", "show", "--config", config, common=False)
        self.assertEqual((shown["url"], shown["status"]), (doc["url"], "valid"))

    def test_command_line_wins(self):
        other = os.path.join(self.tmp.name, "other-state")
        config = self.write_config(server="https://127.0.0.1:1/dir", state_dir=other)
        doc = self.json_of("account", "register", "--agree-tos", "--config", config)
        self.assertEqual(doc["state_dir"], self.state)
        self.assertEqual(doc["server"], self.server())
        self.assertFalse(os.path.exists(other))

    def test_missing_config_given_is_an_error(self):
        proc = self.run_certpilot("account", "show", "--config",
                                  os.path.join(self.tmp.name, "nope"), expect=78)
        self.assertIn("nope", proc.stderr)


if __name__ == "__main__":
    unittest.main()
