#!/usr/bin/python3
"""`certpilot import dehydrated` on the state the real dehydrated made (issue 15).

Debian's dehydrated (0.7.0) registers and issues against the lab Pebble once
per class: a config in a temporary BASEDIR (CA = Pebble, WELLKNOWN under a
document root that a static server answers Pebble's http-01 validations
from, HOOK = a hook.sh that records deploy_cert calls) and a domains.txt
with an alias line.  dehydrated trusts Pebble's TLS certificate through
curl's CURL_CA_BUNDLE.  Each test imports that BASEDIR into a fresh state
directory and checks:

- --dry-run says what it would import and writes nothing;
- the import copies the account (its key, and its URL from account_id.json),
  the certificate (the same one: nothing reissued) and a renewal.conf of
  certpilot's keys; dehydrated's files are byte for byte as before;
- a second import changes nothing (exit 0, outcome "unchanged");
- `renew --force-renewal` issues with the same account: no newAccount
  request reaches Pebble, and the account URL kept is dehydrated's; the
  hook.sh that dehydrated used gets deploy_cert for certpilot's files;
- without account_id.json, the key alone is imported and renew finds the
  same account URL at the CA (onlyReturnExisting).
"""

import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_issue as base  # noqa: E402

CERTPILOT = base.CERTPILOT
DEHYDRATED = shutil.which("dehydrated") or "/usr/bin/dehydrated"

HOOK = """#!/bin/sh
# Records what a client tells its dehydrated hook, as dehydrated users write them.
case "$1" in
  deploy_cert) echo "deploy_cert $2 $3 $4 $5 $6" >> "%s" ;;
esac
exit 0
"""


def tree_digest(root):
    """Every entry under root: path -> (type, mode, content or link target digest)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if os.path.islink(path):
                out[path] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                out[path] = ("dir", st.st_mode)
            else:
                with open(path, "rb") as f:
                    out[path] = ("file", st.st_mode, hashlib.sha256(f.read()).hexdigest())
    return out


def settings(path):
    out = []
    with open(path) as f:
        for line in f:
            if line.strip() and not line.lstrip().startswith("#"):
                k, _, v = line.partition("=")
                out.append((k.strip(), v.strip()))
    return out


def pubkey(path):
    return base.openssl("pkey", "-in", path, "-pubout").stdout


class Quiet(http.server.SimpleHTTPRequestHandler):
    """The document root, and /.well-known/acme-challenge/ also from an
    aliased directory (as Debian's dehydrated package sets up a server)."""

    alias = None
    served_from_alias = []  # the Host of each request answered from there

    def translate_path(self, path):
        prefix = "/.well-known/acme-challenge/"
        if self.alias and path.startswith(prefix):
            candidate = os.path.join(self.alias, os.path.basename(path))
            if os.path.isfile(candidate):
                self.served_from_alias.append((self.headers.get("Host") or "").split(":")[0])
                return candidate
        return super().translate_path(path)

    def log_message(self, *args):
        pass


class FromDehydrated(base.PebbleCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.src_tmp = tempfile.TemporaryDirectory(prefix="cpdh-")
        cls.basedir = os.path.join(cls.src_tmp.name, "dehydrated")
        cls.docroot = os.path.join(cls.src_tmp.name, "www")
        cls.hook_log = os.path.join(cls.src_tmp.name, "hook.log")
        wellknown = os.path.join(cls.docroot, ".well-known", "acme-challenge")
        os.makedirs(wellknown)
        os.makedirs(cls.basedir)
        cls.hook = os.path.join(cls.basedir, "hook.sh")
        with open(cls.hook, "w") as f:
            f.write(HOOK % cls.hook_log)
        os.chmod(cls.hook, 0o755)
        with open(os.path.join(cls.basedir, "config"), "w") as f:
            f.write('# dehydrated config for the lab\n'
                    'CA="%s"\n'
                    'CHALLENGETYPE="http-01"\n'
                    'WELLKNOWN="%s"\n'
                    'HOOK="${BASEDIR}/hook.sh"\n'
                    'CONTACT_EMAIL=ops@example.test\n'
                    'KEY_ALGO=prime256v1\n'
                    'KEYSIZE=2048\n' % (cls.pebble.directory_url, wellknown))
        with open(os.path.join(cls.basedir, "domains.txt"), "w") as f:
            f.write("# the lab's certificate\na.example b.example > mycert\n")
        # Pebble validates every name on its http port: a static server there.
        cls.alias_dir = os.path.join(cls.src_tmp.name, "acme-challenges")
        os.mkdir(cls.alias_dir)
        Quiet.alias = cls.alias_dir
        handler = functools.partial(Quiet, directory=cls.docroot)
        cls.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", cls.pebble.http_port), handler)
        cls.thread = threading.Thread(target=cls.httpd.serve_forever, daemon=True)
        cls.thread.start()
        env = dict(os.environ, CURL_CA_BUNDLE=cls.pebble.ca_bundle)
        config = os.path.join(cls.basedir, "config")
        for argv in ([DEHYDRATED, "--register", "--accept-terms", "-f", config],
                     [DEHYDRATED, "-c", "-f", config]):
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
            if proc.returncode != 0:
                cls.tearDownClass()
                raise AssertionError("%s: exit %d\n%s%s" % (" ".join(argv), proc.returncode,
                                                            proc.stdout, proc.stderr))
        accounts = os.listdir(os.path.join(cls.basedir, "accounts"))
        assert len(accounts) == 1, accounts
        cls.account_dir = os.path.join(cls.basedir, "accounts", accounts[0])
        with open(os.path.join(cls.account_dir, "account_id.json")) as f:
            cls.account_url = json.load(f)["url"]

    @classmethod
    def tearDownClass(cls):
        cls.httpd.shutdown()
        cls.httpd.server_close()
        cls.thread.join(5)
        cls.src_tmp.cleanup()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        # certpilot's defaults file: Pebble's TLS certificate for renew
        self.defaults = os.path.join(self.tmp.name, "certpilot.conf")
        with open(self.defaults, "w") as f:
            f.write("ca-bundle = %s\n" % self.pebble.ca_bundle)
            # the webroot check fetches its probe as Pebble will: names
            # resolved by challtestsrv's DNS, on Pebble's http-01 port
            f.write("resolver = %s\nwebroot-check-port = %d\n"
                    % (self.pebble.dns_server, self.pebble.http_port))

    def run_cp(self, *args, expect=0):
        argv = [CERTPILOT] + list(args)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if expect is not None:
            self.assertEqual(proc.returncode, expect, "exit status of %s\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(argv), proc.stdout, proc.stderr))
        return proc

    def import_json(self, *extra, basedir=None, expect=0):
        proc = self.run_cp("import", "dehydrated", "--basedir", basedir or self.basedir,
                           "--state-dir", self.state, "--config", self.defaults, "--json",
                           *extra, expect=expect)
        doc = json.loads(proc.stdout)
        self.assertEqual(doc["exit_status"], proc.returncode)
        return doc

    def account_record(self):
        accounts = os.path.join(self.state, "accounts")
        dirs = os.listdir(accounts)
        self.assertEqual(len(dirs), 1, dirs)
        with open(os.path.join(accounts, dirs[0], "account.json")) as f:
            return json.load(f), os.path.join(accounts, dirs[0], "account.key")

    def test_dry_run_writes_nothing(self):
        before = tree_digest(self.basedir)
        doc = self.import_json("--dry-run")
        self.assertEqual(doc["outcome"], "dry_run")
        self.assertTrue(doc["dry_run"])
        got = {(i["kind"], i["name"], i["action"]) for i in doc["items"]}
        self.assertEqual(got, {("account", self.account_url, "new"),
                               ("certificate", "mycert", "new")})
        self.assertFalse(os.path.exists(self.state))
        self.assertEqual(tree_digest(self.basedir), before)
        # The text report says the same, for a person.
        proc = self.run_cp("import", "dehydrated", "--basedir", self.basedir, "--state-dir",
                           self.state, "--config", self.defaults, "--dry-run")
        self.assertIn("would import", proc.stdout)
        self.assertIn("mycert", proc.stdout)
        self.assertIn("dry run: nothing written", proc.stdout)
        self.assertFalse(os.path.exists(self.state))

    def test_import_twice_then_renew_with_the_same_account_and_hook(self):
        before = tree_digest(self.basedir)
        doc = self.import_json()
        self.assertEqual(doc["outcome"], "imported")
        self.assertEqual({i["action"] for i in doc["items"]}, {"new"})
        self.assertEqual(tree_digest(self.basedir), before)

        # The account: dehydrated's key and URL.
        rec, key = self.account_record()
        self.assertEqual(rec["url"], self.account_url)
        self.assertEqual(rec["directory"], self.pebble.directory_url)
        self.assertEqual(rec.get("contact"), ["mailto:ops@example.test"])
        self.assertEqual(pubkey(key), pubkey(os.path.join(self.account_dir, "account_key.pem")))

        # The certificate: the one dehydrated has now, with certpilot's settings.
        live = os.path.join(self.state, "certs", "mycert")
        src = os.path.join(self.basedir, "certs", "mycert")
        for name in ("cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"):
            with open(os.path.join(live, name)) as a, open(os.path.join(src, name)) as b:
                self.assertEqual(a.read(), b.read(), name)
        conf = settings(os.path.join(live, "renewal.conf"))
        self.assertEqual(conf, [("server", self.pebble.directory_url),
                                ("domain", "a.example"), ("domain", "b.example"),
                                ("key-type", "ec256"), ("challenge", "http-01"),
                                ("webroot", self.docroot), ("hook", self.hook)])

        # Again: nothing to do.
        doc = self.import_json()
        self.assertEqual(doc["outcome"], "unchanged")
        self.assertEqual(doc["exit_status"], 0)
        self.assertEqual({i["action"] for i in doc["items"]}, {"same"})
        self.assertEqual(tree_digest(self.basedir), before)

        # renew: the same account (no newAccount request at all: the URL is
        # known), the same webroot, and dehydrated's hook.sh gets deploy_cert.
        with open(self.hook_log, "w"):
            pass
        with open(self.pebble.log) as f:
            offset = len(f.read())
        proc = self.run_cp("renew", "--force-renewal", "--state-dir", self.state, "--config",
                           self.defaults, "--json")
        results = json.loads(proc.stdout)["results"]
        self.assertEqual([(r["cert_name"], r["outcome"]) for r in results],
                         [("mycert", "renewed")], proc.stdout)
        with open(self.pebble.log) as f:
            since = f.read()[offset:]
        self.assertIn("POST /order-plz", since)
        self.assertNotIn("/sign-me-up", since)
        rec, _ = self.account_record()
        self.assertEqual(rec["url"], self.account_url)
        with open(os.path.join(live, "cert.pem")) as a, open(os.path.join(src, "cert.pem")) as b:
            self.assertNotEqual(a.read(), b.read())  # a new certificate
        with open(self.hook_log) as f:
            calls = f.read().splitlines()
        self.assertEqual(len(calls), 1, calls)
        words = calls[0].split()
        self.assertEqual(words[:2], ["deploy_cert", "a.example"])
        self.assertTrue(os.path.realpath(words[3]).startswith(os.path.realpath(self.state)),
                        words)
        self.assertEqual(tree_digest(self.basedir), before)

    def test_without_the_account_url_renew_finds_the_same_account(self):
        # dehydrated before 0.7, or one that never ran -c: no account_id.json.
        copy = os.path.join(self.tmp.name, "dehydrated")
        shutil.copytree(self.basedir, copy, symlinks=True)
        os.remove(os.path.join(copy, "accounts", os.path.basename(self.account_dir),
                               "account_id.json"))
        doc = self.import_json(basedir=copy)
        self.assertEqual(doc["outcome"], "imported")
        account = [i for i in doc["items"] if i["kind"] == "account"]
        self.assertEqual(account[0]["name"], self.pebble.directory_url)
        self.assertIn("onlyReturnExisting", account[0]["why"])
        rec, _ = self.account_record()
        self.assertNotIn("url", rec)
        with open(self.pebble.log) as f:
            offset = len(f.read())
        self.run_cp("renew", "--force-renewal", "--state-dir", self.state, "--config",
                    self.defaults)
        with open(self.pebble.log) as f:
            since = f.read()[offset:]
        self.assertEqual(since.count("POST /sign-me-up"), 1, since)  # the look-up
        rec, _ = self.account_record()
        self.assertEqual(rec["url"], self.account_url)

    def test_wellknown_served_by_an_alias_gets_a_linked_webroot(self):
        # WELLKNOWN as Debian sets it: a directory the web server maps
        # /.well-known/acme-challenge/ to, not under a document root.
        copy = os.path.join(self.tmp.name, "dehydrated")
        shutil.copytree(self.basedir, copy, symlinks=True)
        with open(os.path.join(copy, "config"), "a") as f:
            f.write('WELLKNOWN="%s"\n' % self.alias_dir)
        doc = self.import_json(basedir=copy)
        self.assertEqual(doc["outcome"], "imported")
        shim = os.path.join(os.path.realpath(self.state), "webroots", "mycert")
        link = os.path.join(shim, ".well-known", "acme-challenge")
        self.assertEqual(os.readlink(link), self.alias_dir)
        conf = settings(os.path.join(self.state, "certs", "mycert", "renewal.conf"))
        self.assertIn(("webroot", shim), conf)
        doc = self.import_json(basedir=copy)
        self.assertEqual(doc["outcome"], "unchanged")
        # renew answers http-01 through the link: the files land where the
        # server's alias points, and are removed afterwards.  A fresh account,
        # which has validated nothing: Pebble may hand an account's valid
        # authorizations back (tests/lab/README.md).
        shutil.rmtree(os.path.join(self.state, "accounts"))
        self.run_cp("account", "register", "--agree-tos", "--server", self.pebble.directory_url,
                    "--ca-bundle", self.pebble.ca_bundle, "--state-dir", self.state)
        del Quiet.served_from_alias[:]
        self.run_cp("renew", "--force-renewal", "--state-dir", self.state, "--config",
                    self.defaults)
        self.assertEqual(set(Quiet.served_from_alias), {"a.example", "b.example"})
        self.assertEqual(os.listdir(self.alias_dir), [])
        self.assertEqual(os.readlink(link), self.alias_dir)

    def test_cert_name_selects_and_unknown_names_are_said(self):
        doc = self.import_json("--cert-name", "mycert", "--dry-run")
        self.assertEqual(doc["outcome"], "dry_run")
        doc = self.import_json("--cert-name", "other", "--dry-run", expect=1)
        self.assertEqual(doc["outcome"], "partial")
        skipped = [i for i in doc["items"] if i["action"] == "skipped"]
        self.assertEqual([i["name"] for i in skipped], ["other"])
        self.assertNotIn("mycert", [i["name"] for i in doc["items"]])


class Options(unittest.TestCase):
    def run_cp(self, *args):
        return subprocess.run([CERTPILOT] + list(args), capture_output=True, text=True,
                              timeout=30)

    def test_exact_option_names(self):
        proc = self.run_cp("import", "dehydrated", "--base", "/x")
        self.assertEqual(proc.returncode, 64, proc.stderr)
        self.assertIn("--basedir", proc.stderr)
        proc = self.run_cp("import", "dehydrated", "--dehydrated-conf", "/x")
        self.assertEqual(proc.returncode, 64, proc.stderr)

    def test_usage_error_is_json_with_json(self):
        proc = self.run_cp("import", "dehydrated", "--json", "--frobnicate")
        self.assertEqual(proc.returncode, 64)
        doc = json.loads(proc.stdout)
        self.assertEqual(doc["exit_status"], 64)
        self.assertIn("outcome", doc)

    def test_missing_config_given_with_f(self):
        with tempfile.TemporaryDirectory() as tmp:
            proc = self.run_cp("import", "dehydrated", "--dehydrated-config",
                               os.path.join(tmp, "nope"), "--state-dir",
                               os.path.join(tmp, "state"))
            self.assertEqual(proc.returncode, 74, proc.stderr)
            self.assertIn("nope", proc.stderr)
            self.assertFalse(os.path.exists(os.path.join(tmp, "state")))


if __name__ == "__main__":
    unittest.main()
