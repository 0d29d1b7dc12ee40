#!/usr/bin/python3
"""`certpilot import certbot` against the state the real certbot made.

Debian's certbot registers an account and obtains a certificate from the lab
Pebble with its webroot authenticator (http-01 answered by a static HTTP
server on Pebble's http-01 port), with a deploy hook in its renewal conf and
an executable in renewal-hooks/deploy/.  certpilot then imports that
directory (dry run, real, again), and renews the imported certificate with
the imported account (no new registration at the CA) and the imported hooks
(checked by the files they write).  certbot runs once, for the whole class;
every test imports into its own state directory, and tests that change
certbot's files change a copy.
"""

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
from cplab import BASE_ENV, Lab, _accepts, _wait_until  # noqa: E402
from etcd import EtcdCluster, write_store_key  # noqa: E402

CERTPILOT = os.path.abspath(os.environ.get("CERTPILOT", os.path.join(ROOT, "build", "certpilot")))
NAME = "web.example.test"
ALT = "www.web.example.test"


def tree_digest(top):
    """Names, types, modes, link targets and contents of everything under top."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            h.update(("%s %o\n" % (os.path.relpath(path, top), st.st_mode)).encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(path).encode())
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


class ImportCertbot(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="cpcertbot-")
        top = cls.tmp.name
        cls.lab = Lab()
        cls.lab.start()
        cls.pebble = cls.lab.pebble(env={"PEBBLE_WFE_NONCEREJECT": "0",
                                         "PEBBLE_AUTHZREUSE": "0"})
        # The webroot, served where Pebble validates http-01.
        cls.webroot = os.path.join(top, "www")
        os.mkdir(cls.webroot)
        cls.web = subprocess.Popen(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
             cls.webroot, str(cls.pebble.http_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_until("http.server", lambda: _accepts(cls.pebble.http_port), cls.web)
        # Hooks write into marks/: their effects are what the tests check.
        cls.marks = os.path.join(top, "marks")
        os.mkdir(cls.marks)
        cls.certbot_dir = os.path.join(top, "letsencrypt")
        deploy_dir = os.path.join(cls.certbot_dir, "renewal-hooks", "deploy")
        os.makedirs(deploy_dir)
        hook = os.path.join(deploy_dir, "10-mark")
        with open(hook, "w") as f:
            f.write("#!/bin/sh\necho \"$RENEWED_DOMAINS\" >> %s/dir-deploy\n" % cls.marks)
        os.chmod(hook, 0o755)
        cls.deploy_hook = ("echo \"$RENEWED_DOMAINS\" >> %s/conf-deploy && touch %s/shell-ok"
                           % (cls.marks, cls.marks))
        env = dict(BASE_ENV, REQUESTS_CA_BUNDLE=cls.pebble.ca_bundle, HOME=top)
        proc = subprocess.run(
            ["certbot", "certonly", "--non-interactive", "--agree-tos", "-m", "ops@example.test",
             "--no-eff-email", "--server", cls.pebble.directory_url,
             "--config-dir", cls.certbot_dir, "--work-dir", os.path.join(top, "work"),
             "--logs-dir", os.path.join(top, "logs"),
             "--webroot", "-w", cls.webroot, "-d", NAME, "-d", ALT, "--cert-name", "web",
             "--pre-hook", "touch %s/conf-pre" % cls.marks,
             "--deploy-hook", cls.deploy_hook],
            capture_output=True, text=True, timeout=120, env=env)
        if proc.returncode != 0:
            cls.tearDownClass()
            raise AssertionError("certbot failed:\n%s\n%s" % (proc.stdout, proc.stderr))
        for name in os.listdir(cls.marks):  # certbot's own run of its hooks
            os.unlink(os.path.join(cls.marks, name))
        acc = os.path.join(cls.certbot_dir, "accounts")
        (cls.account_dir,) = [d for d, _, files in os.walk(acc) if "regr.json" in files]
        with open(os.path.join(cls.account_dir, "regr.json")) as f:
            cls.account_url = json.load(f)["uri"]
        cls.digest = tree_digest(cls.certbot_dir)

    @classmethod
    def tearDownClass(cls):
        cls.web.terminate()
        cls.web.wait(timeout=10)
        cls.lab.close()
        cls.tmp.cleanup()

    def setUp(self):
        for name in os.listdir(self.marks):  # what another test's hooks wrote
            os.unlink(os.path.join(self.marks, name))
        self.dir = tempfile.TemporaryDirectory(prefix="cpimport-")
        self.state = os.path.join(self.dir.name, "state")
        self.etc = os.path.join(self.dir.name, "etc")
        os.mkdir(self.etc)
        self.config = os.path.join(self.etc, "config")
        with open(self.config, "w") as f:
            f.write("ca-bundle = %s\n" % self.pebble.ca_bundle)
            # the webroot check fetches its probe as Pebble will: names
            # resolved by challtestsrv's DNS, on Pebble's http-01 port
            f.write("resolver = %s\nwebroot-check-port = %d\n"
                    % (self.pebble.dns_server, self.pebble.http_port))

    def tearDown(self):
        # Whatever a test did, certbot's own directory is as certbot left it.
        self.assertEqual(tree_digest(self.certbot_dir), self.digest)
        self.dir.cleanup()

    def run_cp(self, *args, expect=0):
        argv = [CERTPILOT] + list(args)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        self.assertNotIn("Sanitizer", proc.stderr)  # exit 1 is also "partial"
        if expect is not None:
            self.assertEqual(proc.returncode, expect, "exit status of %s\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(argv), proc.stdout, proc.stderr))
        return proc

    def import_(self, *args, expect=0, source=None):
        proc = self.run_cp("import", "certbot", "--config-dir", source or self.certbot_dir,
                           "--state-dir", self.state, "--config", self.config, "--json", *args,
                           expect=expect)
        doc = json.loads(proc.stdout)
        self.assertEqual(doc["exit_status"], proc.returncode)
        return doc

    def items(self, doc, kind):
        return [i for i in doc["items"] if i["kind"] == kind]

    def copy_source(self):
        """A copy of certbot's directory that a test may change."""
        copy = os.path.join(self.dir.name, "letsencrypt")
        shutil.copytree(self.certbot_dir, copy, symlinks=True)
        # certbot's renewal conf names its files by absolute paths
        for name in os.listdir(os.path.join(copy, "renewal")):
            path = os.path.join(copy, "renewal", name)
            with open(path) as f:
                text = f.read()
            with open(path, "w") as f:
                f.write(text.replace(self.certbot_dir + "/", copy + "/"))
        return copy

    def renewal_conf(self, name="web"):
        with open(os.path.join(self.state, "certs", name, "renewal.conf")) as f:
            return f.read()

    def test_dry_run_writes_nothing(self):
        doc = self.import_("--dry-run")
        self.assertEqual(doc["outcome"], "dry_run")
        self.assertTrue(doc["dry_run"])
        self.assertEqual([(i["kind"], i["name"], i["action"]) for i in doc["items"]],
                         [("account", self.account_url, "new"), ("certificate", "web", "new"),
                          ("hook", "10-mark", "new")])
        self.assertFalse(os.path.exists(self.state))
        self.assertEqual(os.listdir(self.etc), ["config"])

    def test_import_again_then_renew_with_same_account_and_hooks(self):
        doc = self.import_()
        self.assertEqual(doc["outcome"], "imported")
        self.assertEqual({i["action"] for i in doc["items"]}, {"new"})
        # The account: certbot's key and URL, for certbot's CA.
        (acct,) = os.listdir(os.path.join(self.state, "accounts"))
        with open(os.path.join(self.state, "accounts", acct, "account.json")) as f:
            rec = json.load(f)
        self.assertEqual(rec["url"], self.account_url)
        self.assertEqual(rec["directory"], self.pebble.directory_url)
        self.assertEqual(rec["key_type"], "rsa2048")  # certbot's account keys are RSA
        # The certificate, as certbot has it now.
        live = os.path.join(self.state, "certs", "web")
        with open(os.path.join(live, "cert.pem")) as f, \
                open(os.path.join(self.certbot_dir, "live", "web", "cert.pem")) as g:
            self.assertEqual(f.read(), g.read())
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(live, "privkey.pem")).st_mode), 0o600)
        conf = self.renewal_conf()
        for line in ("server = %s" % self.pebble.directory_url, "domain = %s" % NAME,
                     "domain = %s" % ALT, "webroot = %s" % self.webroot, "key-type = ec256",
                     "pre-hook = sh:touch %s/conf-pre" % self.marks,
                     "deploy-hook = sh:%s" % self.deploy_hook):
            self.assertIn(line + "\n", conf)
        hook = os.path.join(self.etc, "hooks.d", "deploy", "10-mark")
        self.assertTrue(os.access(hook, os.X_OK))

        # Again: nothing to do.
        again = self.import_()
        self.assertEqual(again["outcome"], "unchanged")
        self.assertEqual({i["action"] for i in again["items"]}, {"same"})
        self.assertEqual(self.renewal_conf(), conf)

        # Renewed by certpilot: no registration at the CA (Pebble's newAccount
        # is /sign-me-up), the imported account signs the order, the hooks run.
        with open(self.pebble.log) as f:
            registrations = f.read().count("/sign-me-up")
        proc = self.run_cp("renew", "--force-renewal", "--state-dir", self.state, "--config",
                           self.config, "--json")
        with open(self.pebble.log) as f:
            self.assertEqual(f.read().count("/sign-me-up"), registrations)
        with open(os.path.join(live, "cert.pem")) as f, \
                open(os.path.join(self.certbot_dir, "live", "web", "cert.pem")) as g:
            self.assertNotEqual(f.read(), g.read())
        (result,) = json.loads(proc.stdout)["results"]
        self.assertEqual(result["outcome"], "renewed", proc.stdout)
        with open(os.path.join(self.marks, "conf-deploy")) as f:
            self.assertEqual(f.read().split(), [NAME, ALT])
        self.assertTrue(os.path.exists(os.path.join(self.marks, "shell-ok")))
        self.assertTrue(os.path.exists(os.path.join(self.marks, "conf-pre")))
        with open(os.path.join(self.marks, "dir-deploy")) as f:
            self.assertEqual(f.read().split(), [NAME, ALT])

    def test_keep_live_paths(self):
        src = self.copy_source()
        live = os.path.join(src, "live", "web")
        archive = tree_digest(os.path.join(src, "archive"))
        doc = self.import_("--keep-live-paths", source=src)
        self.assertEqual(doc["outcome"], "imported")
        (setting,) = self.items(doc, "setting")
        self.assertEqual(setting["action"], "new")
        conf = self.renewal_conf()
        self.assertIn("install-dir = %s\n" % live, conf)
        again = self.import_("--keep-live-paths", source=src)
        self.assertEqual(again["outcome"], "unchanged")
        self.assertEqual(self.renewal_conf(), conf)
        # Nothing is written there at import: certbot's links are as they were.
        self.assertTrue(os.path.islink(os.path.join(live, "cert.pem")))
        self.run_cp("renew", "--force-renewal", "--state-dir", self.state, "--config",
                    self.config, "--json")
        # The renewal wrote the new files over certbot's links, not into archive/.
        for name in ("privkey.pem", "cert.pem", "chain.pem", "fullchain.pem"):
            path = os.path.join(live, name)
            self.assertFalse(os.path.islink(path), name)
            with open(path) as f, open(os.path.join(self.state, "certs", "web", name)) as g:
                self.assertEqual(f.read(), g.read(), name)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(live, "privkey.pem")).st_mode), 0o600)
        self.assertEqual(tree_digest(os.path.join(src, "archive")), archive)

    def test_keep_live_paths_after_a_plain_import(self):
        self.import_()
        conf = self.renewal_conf()
        self.assertNotIn("install-dir", conf)
        doc = self.import_("--keep-live-paths", "--dry-run")
        self.assertEqual(self.renewal_conf(), conf)
        doc = self.import_("--keep-live-paths")
        self.assertEqual([(i["kind"], i["action"]) for i in doc["items"]],
                         [("account", "same"), ("certificate", "same"), ("setting", "new"),
                          ("hook", "same")])
        live = os.path.join(self.certbot_dir, "live", "web")
        self.assertEqual(self.renewal_conf(), conf + "install-dir = %s\n" % live)

    def edit_conf(self, src, drop=(), add="", section_add=""):
        """Change the copy's renewal/web.conf: lines starting with `drop`
        removed, `add` after [renewalparams], `section_add` at the end."""
        conf = os.path.join(src, "renewal", "web.conf")
        with open(conf) as f:
            lines = f.read().splitlines(True)
        out = []
        for line in lines:
            if line.startswith(tuple(drop)) or line.startswith("[[webroot_map]]"):
                continue
            if line.split(" = ")[0] in (NAME, ALT):
                continue  # the old webroot_map entries
            out.append(line)
            if line.startswith("[renewalparams]"):
                out.append(add)
        with open(conf, "w") as f:
            f.write("".join(out) + section_add)

    def test_settings_carried_over_and_accepted_by_renew(self):
        src = self.copy_source()
        other = os.path.join(self.dir.name, "other-www")
        self.edit_conf(src, drop=("key_type", "deploy_hook", "renew_hook", "pre_hook"),
                       add="key_type = rsa\nrsa_key_size = 3072\nreuse_key = True\n"
                           "preferred_chain = Pebble Root\n"
                           "preferred_profile = tlsserver\n"
                           "renew_hook = \"echo 'renewed, it said' > /dev/null\"\n"
                           "post_hook = true, really\n",
                       section_add="[[webroot_map]]\n%s = %s\n%s = %s\n"
                                   % (NAME, self.webroot, ALT, other))
        doc = self.import_(source=src, expect=1)
        (setting,) = self.items(doc, "setting")
        self.assertEqual(setting["action"], "skipped")
        self.assertIn("post_hook", setting["why"])
        conf = self.renewal_conf()
        for line in ("key-type = rsa3072", "reuse-key = yes", "preferred-chain = Pebble Root",
                     "preferred-profile = tlsserver",
                     "deploy-hook = sh:echo 'renewed, it said' > /dev/null",
                     "webroot-map = %s:%s" % (NAME, self.webroot),
                     "webroot-map = %s:%s" % (ALT, other)):
            self.assertIn(line + "\n", conf)
        self.assertNotIn("\nwebroot =", conf)
        self.assertNotIn("pre-hook", conf)
        self.assertNotIn("post-hook", conf)
        # renew reads it as issue's settings (a check run: nothing ordered;
        # `other` is served by no web server, so the webroot check is off)
        os.mkdir(other)
        with open(self.config, "a") as f:
            f.write("no-webroot-check = yes\n")
        proc = self.run_cp("renew", "--dry-run", "--force-renewal", "--state-dir", self.state,
                           "--config", self.config, "--json")
        (result,) = json.loads(proc.stdout)["results"]
        self.assertEqual(result["exit_status"], 0, proc.stdout)
        self.assertIn("account: %s\n" % self.account_url, proc.stderr)
        self.assertIn("2 webroots are writable", proc.stderr)

    def test_missing_account_is_said(self):
        src = self.copy_source()
        shutil.rmtree(os.path.join(src, "accounts"))
        doc = self.import_(source=src, expect=1)
        (acct,) = self.items(doc, "account")
        self.assertEqual(acct["action"], "skipped")
        self.assertIn("account register --server %s" % self.pebble.directory_url, acct["why"])
        self.assertEqual([i["action"] for i in self.items(doc, "certificate")], ["new"])

    def test_hook_too_long_for_renewal_conf(self):
        src = self.copy_source()
        self.edit_conf(src, drop=("pre_hook",), add="pre_hook = echo %s\n" % ("x" * 5000))
        doc = self.import_(source=src, expect=1)
        (setting,) = self.items(doc, "setting")
        self.assertIn("pre_hook is 5005 bytes long", setting["why"])
        self.assertNotIn("pre-hook", self.renewal_conf())
        # what was written is readable by renew
        self.run_cp("renew", "--dry-run", "--state-dir", self.state, "--config", self.config)

    def test_standalone_settings(self):
        src = self.copy_source()
        self.edit_conf(src, drop=("authenticator", "webroot_path"),
                       add="authenticator = standalone\nhttp01_port = 8080\n")
        self.import_(source=src)
        conf = self.renewal_conf()
        self.assertIn("standalone = yes\nhttp-port = 8080\n", conf)
        self.assertNotIn("webroot", conf)

    def test_authenticator_certpilot_lacks_is_reported(self):
        src = self.copy_source()
        conf = os.path.join(src, "renewal", "web.conf")
        with open(conf) as f:
            text = f.read()
        text = text.replace("authenticator = webroot", "authenticator = nginx\ninstaller = nginx")
        text = "".join(line for line in text.splitlines(True)
                       if not line.startswith(("deploy_hook", "renew_hook", "installer = None")))
        with open(conf, "w") as f:
            f.write(text)
        doc = self.import_(source=src, expect=1)
        self.assertEqual(doc["outcome"], "partial")
        self.assertEqual([i["action"] for i in self.items(doc, "certificate")], ["new"])
        settings = self.items(doc, "setting")
        self.assertEqual([i["action"] for i in settings], ["skipped", "skipped"], settings)
        self.assertIn("\"nginx\" authenticator", settings[0]["why"])
        self.assertIn("webroot", settings[0]["why"])
        self.assertIn("deploy-hook", settings[1]["why"])
        self.assertIn("# certbot renewed this certificate with its \"nginx\" authenticator",
                      self.renewal_conf())
        self.assertNotIn("\nwebroot =", self.renewal_conf())
        # What was said once is not a reason to fail a second run.
        self.assertEqual(self.import_(source=src)["outcome"], "unchanged")

    def test_key_not_of_the_certificate_is_skipped(self):
        src = self.copy_source()
        target = os.path.realpath(os.path.join(src, "live", "web", "privkey.pem"))
        self.assertTrue(target.startswith(src))
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-out", target], check=True,
                       capture_output=True)
        doc = self.import_(source=src, expect=1)
        (cert,) = self.items(doc, "certificate")
        self.assertEqual(cert["action"], "skipped")
        self.assertIn("does not belong", cert["why"])
        self.assertFalse(os.path.exists(os.path.join(self.state, "certs", "web")))

    def test_another_certificate_of_that_name_is_left_alone(self):
        self.import_()
        # Another certificate for the same key, under the same name.
        src = self.copy_source()
        live = os.path.join(src, "live", "web")
        other = os.path.realpath(os.path.join(live, "cert.pem"))
        subprocess.run(["openssl", "req", "-x509", "-key", os.path.join(live, "privkey.pem"),
                        "-subj", "/CN=" + NAME, "-addext", "subjectAltName=DNS:" + NAME,
                        "-days", "30", "-out", other], check=True, capture_output=True)
        before = self.renewal_conf()
        with open(os.path.join(self.state, "certs", "web", "cert.pem")) as f:
            cert_before = f.read()
        doc = self.import_(source=src, expect=1)
        self.assertEqual(doc["outcome"], "partial")
        (cert,) = self.items(doc, "certificate")
        self.assertEqual(cert["action"], "conflict")
        self.assertIn("delete --cert-name web", cert["why"])
        self.assertEqual([i["action"] for i in self.items(doc, "account")], ["same"])
        self.assertEqual(self.renewal_conf(), before)
        with open(os.path.join(self.state, "certs", "web", "cert.pem")) as f:
            self.assertEqual(f.read(), cert_before)

    def test_cert_name_selects(self):
        doc = self.import_("--cert-name", "nosuch", "--dry-run", expect=1)
        self.assertEqual([(i["kind"], i["action"]) for i in doc["items"]],
                         [("certificate", "skipped"), ("hook", "new")])
        doc = self.import_("--cert-name", "web", "--dry-run")
        self.assertEqual([i["kind"] for i in doc["items"]], ["account", "certificate", "hook"])

    def test_text_report_and_next_steps(self):
        proc = self.run_cp("import", "certbot", "--config-dir", self.certbot_dir, "--state-dir",
                           self.state, "--config", self.config)
        self.assertIn("imported", proc.stdout)
        self.assertIn("systemctl disable --now certbot.timer", proc.stdout)
        self.assertIn("renew --dry-run --state-dir %s\n" % self.state, proc.stdout)
        self.assertNotIn("--store", proc.stdout)
        quiet = self.run_cp("import", "certbot", "--config-dir", self.certbot_dir,
                            "--state-dir", self.state, "--config", self.config, "--quiet")
        self.assertEqual(quiet.stdout, "")

    def test_next_steps_with_a_shared_store(self):
        """Imported into etcd, the renew to try names the local state
        directory (not the store's URL) and asks for the store options."""
        with EtcdCluster(os.path.join(self.dir.name, "etcd"), members=1) as etcd:
            url = etcd.url("/import")
            key = write_store_key(os.path.join(self.dir.name, "store.key"))
            proc = self.run_cp("import", "certbot", "--config-dir", self.certbot_dir,
                               "--state-dir", self.state, "--config", self.config, "--store",
                               url, "--store-key-file", key)
            self.assertIn("renew --dry-run --state-dir %s\n" % self.state, proc.stdout)
            self.assertIn("with the same --store options as this import (--store %s ...)" % url,
                          proc.stdout)
            listed = self.run_cp("list", "--json", "--state-dir", self.state, "--store", url,
                                 "--store-key-file", key)
            self.assertEqual([c["cert_name"] for c in json.loads(listed.stdout)["results"]],
                             ["web"])

    def test_state_dir_of_the_defaults_file(self):
        with open(self.config, "a") as f:
            f.write("state-dir = %s\n" % self.state)
        proc = self.run_cp("import", "certbot", "--config-dir", self.certbot_dir, "--config",
                           self.config, "--json")
        self.assertEqual(json.loads(proc.stdout)["outcome"], "imported")
        self.assertTrue(os.path.exists(os.path.join(self.state, "certs", "web", "renewal.conf")))
        with open(self.config, "a") as f:
            f.write("no-such-setting = 1\n")
        proc = self.run_cp("import", "certbot", "--config-dir", self.certbot_dir, "--config",
                           self.config, expect=78)
        self.assertIn("no-such-setting", proc.stderr)

    def test_usage_errors(self):
        proc = self.run_cp("import", "certbot", "--help")
        self.assertIn("--keep-live-paths", proc.stdout)
        proc = self.run_cp("import", "certbot", "--config-d", self.certbot_dir, expect=64)
        self.assertIn("--config-dir", proc.stderr)
        proc = self.run_cp("import", "certbot", "--config-dir",
                           os.path.join(self.dir.name, "none"), "--state-dir", self.state,
                           expect=78)
        self.assertIn("no such directory", proc.stderr)
        proc = self.run_cp("import", "certbot", "--config-dir", self.etc, "--state-dir",
                           self.state, expect=78)
        self.assertIn("not a certbot configuration directory", proc.stderr)
        proc = self.run_cp("issue", "-d", NAME, "--webroot", self.webroot, "--install-dir",
                           "relative/dir", "--state-dir", self.state, expect=64)
        self.assertIn("absolute path", proc.stderr)


if __name__ == "__main__":
    unittest.main()
