#!/usr/bin/python3
"""certbot's spellings and option hygiene (issue 15), against a real Pebble.

- Long options are taken only as spelled in full, by every command; a typo or
  an abbreviation exits 64 naming the option and the closest one.
- issue takes certbot's spellings: --domains and comma-separated -d,
  --webroot-path/-w, --key-type ecdsa|rsa with --elliptic-curve and
  --rsa-key-size; renewal.conf keeps certpilot's own keys only.
- One webroot per name: "-w DIR1 -d a -d b -w DIR2 -d c".  Pebble validates
  every name on one port, so a small static server picks the directory it
  serves from by the Host header; a token written under the wrong webroot is
  a 404 there, and the validation fails.  renew uses the same map.
"""

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_issue as base  # noqa: E402

CERTPILOT = base.CERTPILOT


def run(*args):
    return subprocess.run([CERTPILOT] + list(args), capture_output=True, text=True, timeout=60)


class Options(unittest.TestCase):
    """No CA needed: the command line is refused before anything is done."""

    def assert_refused(self, proc, given, suggestion):
        self.assertEqual(proc.returncode, 64, proc.stderr)
        self.assertIn('"%s"' % given, proc.stderr)
        if suggestion is None:
            self.assertNotIn("did you mean", proc.stderr)
        else:
            self.assertIn("did you mean %s?" % suggestion, proc.stderr)

    def test_abbreviations_refused_by_every_command(self):
        cases = [
            (["issue", "-d", "a.test", "--force-renew"], "--force-renew", "--force-renewal"),
            (["renew", "--force-renew"], "--force-renew", "--force-renewal"),
            (["list", "--jso"], "--jso", "--json"),
            (["account", "register", "--agree"], "--agree", "--agree-tos"),
            (["revoke", "--cert-nam", "x"], "--cert-nam", "--cert-name"),
            (["delete", "--cert-nam", "x"], "--cert-nam", "--cert-name"),
            (["caa", "check", "--resolv", "127.0.0.1", "a.test"], "--resolv", "--resolver"),
            (["doctor", "--ca-ident", "x.test", "a.test"], "--ca-ident", "--ca-identity"),
        ]
        for argv, given, suggestion in cases:
            with self.subTest(argv=argv):
                self.assert_refused(run(*argv), given, suggestion)

    def test_typos_suggest_the_closest(self):
        self.assert_refused(run("issue", "-d", "a.test", "--force-renwal"), "--force-renwal",
                            "--force-renewal")
        self.assert_refused(run("issue", "-d", "a.test", "--webrot=/tmp"), "--webrot",
                            "--webroot")
        self.assert_refused(run("renew", "--dryrun"), "--dryrun", "--dry-run")
        self.assert_refused(run("issue", "-d", "a.test", "--frobnicate"), "--frobnicate", None)

    def test_an_option_value_is_not_an_option(self):
        # "--deploy-hook" takes the next word whatever it looks like.
        proc = run("issue", "--deploy-hook", "--jso", "--frobnicate")
        self.assert_refused(proc, "--frobnicate", None)

    def test_key_options_that_conflict(self):
        for extra, said in ((["--key-type", "rsa", "--elliptic-curve", "secp384r1"],
                             "--elliptic-curve"),
                            (["--key-type", "ecdsa", "--rsa-key-size", "4096"], "--rsa-key-size"),
                            (["--key-type", "ec256", "--elliptic-curve", "secp384r1"],
                             "--elliptic-curve"),
                            (["--elliptic-curve", "secp256r1", "--rsa-key-size", "2048"],
                             "exclude each other"),
                            (["--rsa-key-size", "1024"], "2048, 3072 or 4096"),
                            (["--elliptic-curve", "secp521r1"], "secp256r1 or secp384r1")):
            with self.subTest(extra=extra):
                proc = run("issue", "-d", "a.test", "--standalone", *extra)
                self.assertEqual(proc.returncode, 64, proc.stderr)
                self.assertIn(said, proc.stderr)

    def test_a_webroot_that_serves_no_name(self):
        proc = run("issue", "-w", "/tmp/one", "-w", "/tmp/two", "-d", "a.test")
        self.assertEqual(proc.returncode, 64, proc.stderr)
        self.assertIn("-w /tmp/one is followed by no -d", proc.stderr)

    def test_empty_comma_list(self):
        proc = run("issue", "-d", ",", "--standalone")
        self.assertEqual(proc.returncode, 64, proc.stderr)
        self.assertIn("names no domain", proc.stderr)


def read(path):
    with open(path) as f:
        return f.read()


def settings(text):
    """renewal.conf as (key, value) pairs."""
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            k, _, v = line.partition("=")
            out.append((k.strip(), v.strip()))
    return out


class Spellings(base.PebbleCase):
    def test_domains_comma_lists_and_rsa_key_size(self):
        doc = self.issue("--domains", "sa.example.test,sb.example.test", "-d",
                         " sc.example.test", "--key-type", "rsa", "--rsa-key-size", "3072",
                         "--standalone", "--http-port", str(self.pebble.http_port))
        names = ["sa.example.test", "sb.example.test", "sc.example.test"]
        self.assertEqual(doc["names"], names)
        self.assert_certificate(doc, names, "rsaEncryption")
        text = base.openssl("x509", "-in", os.path.join(doc["live_dir"], "cert.pem"), "-noout",
                            "-text").stdout
        self.assertIn("(3072 bit)", text)
        conf = settings(read(os.path.join(doc["live_dir"], "renewal.conf")))
        self.assertEqual([v for k, v in conf if k == "domain"], names)
        self.assertIn(("key-type", "rsa3072"), conf)
        keys = {k for k, _ in conf}
        for certbot_key in ("domains", "rsa-key-size", "elliptic-curve"):
            self.assertNotIn(certbot_key, keys)

    def test_ecdsa_curve_and_webroot_path(self):
        www = os.path.join(self.tmp.name, "www")
        os.mkdir(www)
        with VhostServer(self.pebble.http_port, {"ec.example.test": www}) as srv:
            doc = self.issue("--webroot-path", www, "-d", "ec.example.test", "--key-type",
                             "ecdsa", "--elliptic-curve", "secp384r1", *webroot_check(self))
        self.assertEqual(srv.hosts(www), {"ec.example.test"})
        text = base.openssl("x509", "-in", os.path.join(doc["live_dir"], "cert.pem"), "-noout",
                            "-text").stdout
        self.assertIn("secp384r1", text)
        conf = settings(read(os.path.join(doc["live_dir"], "renewal.conf")))
        self.assertIn(("key-type", "ec384"), conf)
        self.assertIn(("webroot", os.path.realpath(www)), conf)
        self.assertNotIn("webroot-path", {k for k, _ in conf})
        self.assertNotIn("webroot-map", {k for k, _ in conf})  # one webroot: no map


def webroot_check(case):
    """The webroot check pointed at the lab: names resolved by challtestsrv's
    DNS (127.0.0.1), fetched on Pebble's httpPort, where VhostServer listens."""
    return ("--resolver", case.pebble.dns_server, "--webroot-check-port",
            str(case.pebble.http_port))


class VhostHandler(http.server.SimpleHTTPRequestHandler):
    """Static files from the directory of the request's Host."""

    def __init__(self, *args, roots, seen, **kw):
        self.roots = roots
        self.seen = seen
        super().__init__(*args, directory=next(iter(roots.values())), **kw)

    def translate_path(self, path):
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        root = self.roots.get(host)
        if root is None:
            return "/nonexistent/" + host
        self.directory = root
        local = super().translate_path(path)
        if os.path.isfile(local):
            self.seen.append((host, root))
        return local

    def log_message(self, *args):
        pass


class VhostServer:
    def __init__(self, port, roots):
        self.seen = []
        handler = functools.partial(VhostHandler, roots=roots, seen=self.seen)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def hosts(self, root):
        """The names whose challenge file was found under `root`."""
        return {h for h, r in self.seen if r == root}


class WebrootPerName(base.PebbleCase):
    def test_each_name_under_its_own_webroot_then_renew(self):
        one = os.path.join(self.tmp.name, "one")
        two = os.path.join(self.tmp.name, "two")
        os.mkdir(one)
        os.mkdir(two)
        roots = {"a.example.test": one, "b.example.test": one, "c.example.test": two}
        with VhostServer(self.pebble.http_port, roots) as srv:
            doc = self.issue("-w", one, "-d", "a.example.test", "-d", "b.example.test", "-w", two,
                             "-d", "c.example.test", *webroot_check(self))
            self.assert_certificate(doc, list(roots))
            self.assertEqual(srv.hosts(one), {"a.example.test", "b.example.test"})
            self.assertEqual(srv.hosts(two), {"c.example.test"})
            self.assertEqual(os.listdir(one), [])
            self.assertEqual(os.listdir(two), [])
            conf = settings(read(os.path.join(doc["live_dir"], "renewal.conf")))
            # The last -w is the default; the names of the earlier one are mapped.
            self.assertIn(("webroot", os.path.realpath(two)), conf)
            self.assertEqual(sorted(v for k, v in conf if k == "webroot-map"),
                             ["a.example.test:" + os.path.realpath(one),
                              "b.example.test:" + os.path.realpath(one)])

            # renew reads the map back: each name again under its own webroot.
            # A new account, which has validated nothing: Pebble 2.4 may hand
            # the old one's valid authorizations back (tests/lab/README.md).
            shutil.rmtree(os.path.join(self.state, "accounts"))
            self.certpilot("account", "register", "--agree-tos")
            del srv.seen[:]
            proc = run("renew", "--force-renewal", "--cert-name", doc["cert_name"],
                       "--state-dir", self.state)
            self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
            self.assertEqual(srv.hosts(one), {"a.example.test", "b.example.test"})
            self.assertEqual(srv.hosts(two), {"c.example.test"})

    def test_names_before_any_w_use_the_last_one(self):
        one = os.path.join(self.tmp.name, "one")
        two = os.path.join(self.tmp.name, "two")
        os.mkdir(one)
        os.mkdir(two)
        roots = {"d.example.test": two, "e.example.test": one}
        with VhostServer(self.pebble.http_port, roots) as srv:
            self.issue("-d", "d.example.test", "-w", one, "-d", "e.example.test", "-w", two,
                       *webroot_check(self))
        self.assertEqual(srv.hosts(one), {"e.example.test"})
        self.assertEqual(srv.hosts(two), {"d.example.test"})

    def test_webroot_map_option_and_dry_run_checks_each(self):
        one = os.path.join(self.tmp.name, "one")
        os.mkdir(one)
        proc = self.certpilot("issue", "--agree-tos", "--dry-run=check", "--webroot-map",
                              "f.example.test:" + one, "--webroot-map",
                              "g.example.test:" + os.path.join(self.tmp.name, "missing"),
                              "-d", "f.example.test", "-d", "g.example.test",
                              "--no-webroot-check", expect=None)
        self.assertNotEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("missing", proc.stdout + proc.stderr)


if __name__ == "__main__":
    unittest.main()
