#!/usr/bin/python3
"""`certpilot issue` on a certificate that already exists, against a real Pebble.

- The same command again, the certificate not due: nothing is sent to the CA
  (Pebble's log shows no new request), the files stay, exit 0; with
  --force-renewal it is replaced.
- Another set of names: dropping one is refused (both sets shown, nothing
  changes), adding one needs --expand, any change is allowed by
  --replace-names; the new certificate and renewal.conf carry the new names.
- renewal.conf is updated key by key: a comment and a hand-written setting
  survive `issue` (which changes another key) and `renew`.
- --keep-versions prunes old versions after a renewal, never the current one
  or the one before it.
"""

import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_issue as base  # noqa: E402

openssl = base.openssl


def read(path):
    with open(path) as f:
        return f.read()


class Lineage(base.PebbleCase):

    def http(self):
        return ("--standalone", "--http-port", str(self.pebble.http_port))

    def pebble_log(self):
        return read(self.pebble.log)

    def live(self, name):
        return os.path.join(self.state, "certs", name)

    def cert_names(self, name):
        text = openssl("x509", "-in", os.path.join(self.live(name), "cert.pem"), "-noout",
                       "-ext", "subjectAltName").stdout
        return sorted(part.strip()[4:] for part in text.splitlines()[1].split(","))

    def conf(self, name):
        return read(os.path.join(self.live(name), "renewal.conf"))

    def test_same_command_sends_nothing_when_not_due(self):
        args = ("-d", "same.example.test", "-d", "www.same.example.test", "-d",
                "api.same.example.test") + self.http()
        first = self.issue(*args)
        cert = read(os.path.join(first["live_dir"], "cert.pem"))
        before = len(self.pebble_log())
        again = self.issue(*args, "-v")
        self.assertEqual(again["outcome"], "unchanged")
        self.assertEqual(again["requests"], 0)
        self.assertEqual(again["settings_updated"], [])
        self.assertEqual(self.pebble_log()[before:], "")  # not even the directory
        self.assertEqual(read(os.path.join(first["live_dir"], "cert.pem")), cert)
        self.assertEqual(len(os.listdir(os.path.join(first["live_dir"], "versions"))), 1)
        # The names in another order and case are the same names (the first
        # one, which names the certificate, kept).
        text = self.certpilot("issue", "-d", "Same.Example.Test", "-d", "api.same.example.test",
                              "-d", "WWW.same.example.test.", *self.http())
        self.assertIn("is not due for renewal", text.stdout)
        self.assertIn("Nothing was sent to the CA", text.stdout)
        # Forced: a new certificate.
        forced = self.issue(*args, "--force-renewal")
        self.assertNotEqual(read(os.path.join(forced["live_dir"], "cert.pem")), cert)
        self.assertEqual(len(os.listdir(os.path.join(first["live_dir"], "versions"))), 2)

    def test_dropping_a_name_is_refused(self):
        name = "drop.example.test"
        self.issue("-d", name, "-d", "www." + name, *self.http())
        conf = self.conf(name)
        cert = read(os.path.join(self.live(name), "cert.pem"))
        before = len(self.pebble_log())
        proc = self.certpilot("issue", "--json", "-d", name, *self.http(), "--force-renewal",
                              expect=64)
        doc = json.loads(proc.stdout)
        self.assertEqual(doc["outcome"], "names_differ")
        self.assertEqual(doc["dropped"], ["www." + name])
        self.assertEqual(doc["added"], [])
        self.assertEqual(sorted(doc["current_names"]), [name, "www." + name])
        self.assertIn("already exists with other names", proc.stderr)
        self.assertRegex(proc.stderr, r"it would drop: +www\." + name)
        self.assertIn("--replace-names", proc.stderr)
        # --expand does not allow dropping either.
        proc = self.certpilot("issue", "-d", name, *self.http(), "--expand", expect=64)
        self.assertIn("it would drop:", proc.stderr)
        self.assertEqual(self.pebble_log()[before:], "")
        self.assertEqual(self.conf(name), conf)
        self.assertEqual(read(os.path.join(self.live(name), "cert.pem")), cert)
        # Asked for: the name goes.
        doc = self.issue("-d", name, *self.http(), "--replace-names")
        self.assertEqual(doc["names"], [name])
        self.assertEqual(self.cert_names(name), [name])
        self.assertNotIn("www." + name, self.conf(name))

    def test_adding_a_name_needs_expand(self):
        name = "add.example.test"
        self.issue("-d", name, *self.http())
        proc = self.certpilot("issue", "-d", name, "-d", "new." + name, *self.http(), expect=64)
        self.assertRegex(proc.stderr, r"it would add: +new\." + name)
        self.assertIn("--expand", proc.stderr)
        self.assertEqual(self.cert_names(name), [name])
        # --expand: not due, but the names changed, so a new certificate.
        doc = self.issue("-d", name, "-d", "new." + name, *self.http(), "--expand")
        self.assertIn("live_dir", doc)
        self.assertEqual(self.cert_names(name), sorted([name, "new." + name]))
        conf = self.conf(name)
        self.assertIn("domain = " + name + "\n", conf)
        self.assertIn("domain = new." + name + "\n", conf)
        # The cert name alone selects it with its names.
        doc = self.issue("--cert-name", name, "--force-renewal")
        self.assertEqual(sorted(doc["names"]), sorted([name, "new." + name]))

    def test_hand_edits_survive_issue_and_renew(self):
        name = "edit.example.test"
        self.issue("-d", name, *self.http())
        path = os.path.join(self.live(name), "renewal.conf")
        hook_out = os.path.join(self.tmp.name, "deployed")
        text = read(path).replace(
            "domain = ", "# my note: keep this\ndeploy_hook = /usr/bin/touch %s\ndomain = "
            % hook_out, 1)
        with open(path, "w") as f:
            f.write(text)
        # A setting given now changes its key only; not due: saved for later.
        proc = self.certpilot("issue", "-d", name, *self.http(), "--key-type", "ec384")
        self.assertIn("Settings saved in renewal.conf (used from the next renewal): key-type",
                      proc.stdout)
        conf = self.conf(name)
        self.assertIn("# my note: keep this\n", conf)
        self.assertIn("deploy_hook = /usr/bin/touch %s\n" % hook_out, conf)
        self.assertIn("key-type = ec384\n", conf)
        self.assertEqual(conf.replace("key-type = ec384\n", ""), text)
        # renew uses it all (the hand-written deploy hook runs) and rewrites nothing.
        proc = subprocess.run([base.CERTPILOT, "renew", "--force-renewal", "--state-dir",
                               self.state], capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertTrue(os.path.exists(hook_out))
        self.assertEqual(self.conf(name), conf)
        key = openssl("pkey", "-in", os.path.join(self.live(name), "privkey.pem"), "-noout",
                      "-text").stdout
        self.assertIn("384", key)
        # issue --force-renewal with a changed option: the comment survives again.
        self.issue("-d", name, *self.http(), "--force-renewal", "--key-type", "ec256")
        conf = self.conf(name)
        self.assertIn("# my note: keep this\n", conf)
        self.assertIn("key-type = ec256\n", conf)
        self.assertNotIn("ec384", conf)

    def test_webroot_and_standalone_replace_each_other(self):
        name = "switch.example.test"
        webroot = os.path.join(self.tmp.name, "www")
        os.makedirs(webroot)
        self.issue("-d", name, *self.http())
        self.assertIn("standalone = yes\n", self.conf(name))
        # The command line's choice replaces the saved one (not due: saved only).
        doc = self.issue("-d", name, "--webroot", webroot)
        self.assertEqual(doc["outcome"], "unchanged")
        self.assertEqual(sorted(doc["settings_updated"]), ["standalone", "webroot"])
        conf = self.conf(name)
        self.assertIn("webroot = %s\n" % webroot, conf)
        self.assertNotIn("standalone", conf)
        # And back, with a renewal through the built-in server.
        doc = self.issue("-d", name, *self.http(), "--force-renewal")
        self.assertIn("live_dir", doc)
        conf = self.conf(name)
        self.assertIn("standalone = yes\n", conf)
        self.assertNotIn("webroot", conf)
        # Both on one command line are still a mistake.
        proc = self.certpilot("issue", "-d", name, "--webroot", webroot, "--standalone",
                              expect=64)
        self.assertIn("exclude each other", proc.stderr)

    def test_keep_versions(self):
        name = "prune.example.test"
        args = ("-d", name) + self.http()
        self.issue(*args, "--keep-versions", "2")
        versions = os.path.join(self.live(name), "versions")
        stamps = []
        for _ in range(3):
            self.issue(*args, "--force-renewal")
            stamps = sorted(os.listdir(versions))
        self.assertEqual(len(stamps), 2)
        current = os.readlink(os.path.join(self.live(name), "current"))
        self.assertEqual(current, "versions/" + stamps[-1])
        self.assertIn("keep-versions = 2", self.conf(name))
        # 0 keeps every version from now on.
        self.issue(*args, "--force-renewal", "--keep-versions", "0")
        self.issue(*args, "--force-renewal")
        self.assertEqual(len(os.listdir(versions)), 4)
        proc = self.certpilot("issue", *args, "--keep-versions", "1", expect=64)
        self.assertIn("--keep-versions \"1\"", proc.stderr)

    def test_keep_versions_never_removes_current_or_previous(self):
        name = "rollback.example.test"
        args = ("-d", name) + self.http()
        self.issue(*args)
        for _ in range(3):
            self.issue(*args, "--force-renewal", "--keep-versions", "0")
        versions = os.path.join(self.live(name), "versions")
        stamps = sorted(os.listdir(versions))
        self.assertEqual(len(stamps), 4)
        # Roll back by hand to the oldest: it is current, the next renewal
        # keeps it and the newest one before the new version.
        link = os.path.join(self.live(name), "current")
        os.unlink(link)
        os.symlink("versions/" + stamps[0], link)
        self.issue(*args, "--force-renewal", "--keep-versions", "2")
        left = sorted(os.listdir(versions))
        self.assertEqual(len(left), 2)
        self.assertEqual(os.readlink(link), "versions/" + left[-1])
        self.assertIn(stamps[-1], left)  # the newest before the new one


if __name__ == "__main__":
    unittest.main()
