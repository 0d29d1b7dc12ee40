#!/usr/bin/python3
"""The etcd store (store/etcd.c, --store) against a real 3-member etcd cluster
(tests/lab/etcd.py) and the lab's Pebble: what two hosts sharing it see, what
etcd holds (never a private key in the clear), and the refusals: a wrong or
missing or open store key file, an unknown store URL, etcd down (exit 69,
local files untouched), a version stored after the lineage lock was lost.

Each test has its own key prefix in etcd (so its own account: nothing Pebble
validated for another test is reused) and two state directories, "A" and "B".
The renewal flow on a shared store and the races between hosts are
tests/integration/test_fleet.py's.
"""

import hashlib
import json
import os
import stat
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
sys.path.insert(0, HERE)
from etcd import EtcdCluster, fleet_lab_for_class, write_store_key  # noqa: E402

CERTPILOT = os.path.abspath(os.environ.get("CERTPILOT", os.path.join(ROOT, "build", "certpilot")))
TOOL = os.path.abspath(os.environ.get("ETCDSTORE_TOOL",
                                      os.path.join(ROOT, "build", "tests", "etcdstore_tool")))
PEM_FILES = ("privkey.pem", "cert.pem", "chain.pem", "fullchain.pem")
SANITIZER = r"ERROR: (Address|Leak)Sanitizer|: runtime error: "


def tree_hashes(path):
    """{relative path: sha256, "-> target" or "dir"} of everything under path."""
    out = {}
    for top, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(top, name)
            rel = os.path.relpath(full, path)
            if os.path.islink(full):
                out[rel] = "-> " + os.readlink(full)
            elif os.path.isdir(full):
                out[rel] = "dir"
            else:
                with open(full, "rb") as f:
                    out[rel] = hashlib.sha256(f.read()).hexdigest()
    return out


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


class StoreEtcd(unittest.TestCase):
    pebble_env = {"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}

    @classmethod
    def setUpClass(cls):
        fleet_lab_for_class(cls, cls.pebble_env, ari=False)

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="cptest-store-")
        self.addCleanup(self.tmp.cleanup)
        self.dir = self.tmp.name
        self.prefix = "/st-%s-%d" % (self._testMethodName.replace("_", "-"), os.getpid())
        self.url = self.etcd.url(self.prefix)
        self.key = self.make_key("store.key")
        self.states = {n: os.path.join(self.dir, "node-" + n) for n in "AB"}

    def make_key(self, name, mode=0o600):
        return write_store_key(os.path.join(self.dir, name), mode)

    def run_cp(self, node, *args, expect=0, key=None, store=None, ca=False):
        argv = [CERTPILOT] + list(args)
        if ca:
            argv += ["--server", self.pebble.directory_url, "--ca-bundle", self.pebble.ca_bundle]
        argv += ["--state-dir", self.states[node], "--store", store or self.url]
        if key is not False:
            argv += ["--store-key-file", key or self.key]
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
        proc.argv = argv
        self.assertNotRegex(proc.stderr, SANITIZER, self.describe(proc))
        if expect is not None:
            self.assertEqual(proc.returncode, expect, self.describe(proc))
        return proc

    @staticmethod
    def describe(proc):
        return "exit status %s of %s\nstdout:\n%s\nstderr:\n%s" % (
            proc.returncode, " ".join(proc.argv), proc.stdout, proc.stderr)

    def issue(self, node, name):
        proc = self.run_cp(node, "issue", "--agree-tos", "--json", "-d", name, "--standalone",
                           "--http-port", str(self.pebble.http_port), ca=True)
        return json.loads(proc.stdout)

    def etcd_dump(self):
        """Every key and value under this test's prefix, as etcdctl prints them."""
        proc = self.etcd.etcdctl("get", "--prefix", self.prefix + "/")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc.stdout

    def etcd_keys(self):
        proc = self.etcd.etcdctl("get", "--prefix", "--keys-only", self.prefix + "/")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return sorted(k for k in proc.stdout.split("\n") if k)

    def live(self, node, name):
        return os.path.join(self.states[node], "certs", name)

    # -- what two hosts see

    def test_issue_on_one_host_list_and_deploy_on_another(self):
        name = "shared.example.test"
        doc = self.issue("A", name)
        self.assertEqual(doc["live_dir"], self.live("A", name))

        listed = json.loads(self.run_cp("B", "list", "--json").stdout)
        names = [c["cert_name"] for c in listed["results"]]
        self.assertEqual(names, [name])
        self.assertFalse(os.path.exists(self.live("B", name)))  # list deploys nothing

        self.run_cp("B", "renew", "--json")  # not due: deploys what A stored
        for f in PEM_FILES:
            self.assertEqual(read_bytes(os.path.join(self.live("B", name), f)),
                             read_bytes(os.path.join(self.live("A", name), f)), f)
        mode = os.stat(os.path.join(self.live("B", name), "privkey.pem")).st_mode
        self.assertEqual(stat.S_IMODE(mode), 0o600)
        # The deployed version is the current one in etcd.
        current = self.etcd.etcdctl("get", "--print-value-only",
                                    "%s/lineages/%s/current" % (self.prefix, name)).stdout.strip()
        self.assertRegex(current, r"^\d{8}T\d{6}\.\d{9}Z-[0-9a-f]{8}$")
        with open(os.path.join(self.live("B", name), "store-version")) as f:
            self.assertEqual(f.read().strip(), current)

        # etcd holds the account and the lineage, every private key sealed.
        dump = self.etcd_dump()
        self.assertNotIn("PRIVATE KEY", dump)
        self.assertIn("cpseal1:", dump)
        keys = self.etcd_keys()
        self.assertIn("%s/lineages/%s/settings" % (self.prefix, name), keys)
        self.assertIn("%s/lineages/%s/versions/%s" % (self.prefix, name, current), keys)
        accounts = [k for k in keys if k.startswith(self.prefix + "/accounts/")]
        self.assertEqual(len(accounts), 2, accounts)  # record and key
        self.assertTrue(any(k.endswith("/key") for k in accounts))
        # Nothing of A's account in B's state directory: B used the shared one.
        self.assertFalse(os.path.exists(os.path.join(self.states["B"], "accounts")))

        # A second run on B has nothing to deploy: its files stay as they are.
        certs = os.path.join(self.states["B"], "certs")
        before = tree_hashes(certs)
        doc = json.loads(self.run_cp("B", "renew", "--json").stdout)
        self.assertEqual([r["outcome"] for r in doc["results"]], ["not_due"], doc)
        self.assertEqual(tree_hashes(certs), before)

    def test_prune_and_delete(self):
        name = "prune.example.test"
        args = ("-d", name, "--standalone", "--http-port", str(self.pebble.http_port),
                "--keep-versions", "2")
        for i in range(3):
            self.run_cp("A", "issue", "--agree-tos", *args,
                        *(["--force-renewal"] if i else []), ca=True)
        versions = [k for k in self.etcd_keys() if "/versions/" in k]
        # keep 2 of 3: the oldest goes, in etcd and in A's state directory.
        self.assertEqual(len(versions), 2, versions)
        local = os.listdir(os.path.join(self.live("A", name), "versions"))
        self.assertEqual(len(local), 2, local)
        self.run_cp("B", "renew")
        self.assertTrue(os.path.exists(os.path.join(self.live("B", name), "cert.pem")))

        self.run_cp("A", "delete", "--cert-name", name, "--yes")
        self.assertEqual([k for k in self.etcd_keys() if "/lineages/" in k], [])
        self.assertFalse(os.path.exists(self.live("A", name)))
        listed = json.loads(self.run_cp("B", "list", "--json").stdout)
        self.assertEqual(listed["results"], [])
        # B's deployed copy is B's: delete on A does not reach into it.
        self.assertTrue(os.path.exists(os.path.join(self.live("B", name), "cert.pem")))
        proc = self.run_cp("A", "delete", "--cert-name", name, "--yes", expect=None)
        self.assertNotEqual(proc.returncode, 0)

    def test_account_rollover_is_shared(self):
        reg = json.loads(self.run_cp("A", "account", "register", "--agree-tos", "--json",
                                     ca=True).stdout)
        shown = json.loads(self.run_cp("B", "account", "show", "--json", ca=True).stdout)
        self.assertEqual(shown["url"], reg["url"])
        self.assertEqual(shown["thumbprint"], reg["thumbprint"])
        doc = json.loads(self.run_cp("A", "account", "rollover", "--key-type", "ec384", "--json",
                                     ca=True).stdout)
        self.assertEqual(doc["old_thumbprint"], reg["thumbprint"])
        keys = self.etcd_keys()
        self.assertFalse(any(k.endswith("/pending") for k in keys), keys)
        shown = json.loads(self.run_cp("B", "account", "show", "--json", ca=True).stdout)
        self.assertEqual(shown["thumbprint"], doc["thumbprint"])
        self.assertEqual(shown["ca_key_thumbprint"], doc["thumbprint"])
        self.assertNotIn("PRIVATE KEY", self.etcd_dump())

    # -- the store key

    def test_wrong_store_key_file(self):
        name = "wrongkey.example.test"
        self.issue("A", name)
        keys = self.etcd_keys()
        other = self.make_key("other.key")
        proc = self.run_cp("B", "renew", key=other, expect=78)
        self.assertIn("--store-key-file", proc.stderr)
        self.assertIn("is not the key", proc.stderr)
        self.assertIn("other.key", proc.stderr)
        self.run_cp("B", "list", key=other, expect=78)
        self.assertNotIn("PRIVATE KEY", proc.stderr + proc.stdout)
        # Nothing deployed on B, nothing new in etcd.
        self.assertFalse(os.path.exists(os.path.join(self.live("B", name), "privkey.pem")))
        self.assertEqual(self.etcd_keys(), keys)
        self.assertFalse(os.path.exists(os.path.join(self.states["B"], "certs")))

        # A value moved to another key does not open, even with the right key:
        # the current version's value copied over an older version's id.
        current = self.etcd.etcdctl("get", "--print-value-only",
                                    "%s/lineages/%s/current" % (self.prefix, name)).stdout.strip()
        value = self.etcd.etcdctl("get", "--print-value-only", "%s/lineages/%s/versions/%s" % (
            self.prefix, name, current)).stdout.rstrip("\n")
        forged = "20000101T000000.000000000Z-00000000"
        for k, v in (("versions/" + forged, value), ("current", forged)):
            put = self.etcd.etcdctl("put", "%s/lineages/%s/%s" % (self.prefix, name, k), v)
            self.assertEqual(put.returncode, 0, put.stderr)
        proc = self.run_cp("B", "renew", expect=None)
        self.assertNotEqual(proc.returncode, 0, self.describe(proc))
        self.assertIn("does not open", proc.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.live("B", name), "privkey.pem")))

    def test_missing_or_unsafe_store_key_file(self):
        proc = self.run_cp("B", "list", key=False, expect=78)
        self.assertIn("--store-key-file", proc.stderr)
        proc = self.run_cp("B", "list", key=os.path.join(self.dir, "absent.key"), expect=78)
        self.assertIn("absent.key", proc.stderr)
        proc = self.run_cp("B", "list", key=self.make_key("open.key", 0o644), expect=77)
        self.assertIn("chmod 0600", proc.stderr)
        short = os.path.join(self.dir, "short.key")
        with open(short, "w") as f:
            f.write("AAAA\n")
        os.chmod(short, 0o600)
        proc = self.run_cp("B", "list", key=short, expect=78)
        self.assertIn("3 bytes, not 32", proc.stderr)
        self.assertEqual(self.etcd_keys(), [])
        self.assertFalse(os.path.exists(self.states["B"]))
        # The first use leaves the key check, sealed.
        self.run_cp("B", "list")
        self.assertEqual(self.etcd_keys(), [self.prefix + "/seal-check"])
        self.assertIn("cpseal1:", self.etcd_dump())

    def test_unknown_store_url(self):
        proc = self.run_cp("B", "list", store="consul://127.0.0.1:8500/x", expect=64)
        self.assertIn("consul://127.0.0.1:8500/x", proc.stderr)
        proc = self.run_cp("B", "list", store="etcd://user:pw@127.0.0.1:1/x", expect=64)
        self.assertIn("--store-user", proc.stderr)

    # -- etcd down

    def test_etcd_down_renew_exits_69_and_leaves_files(self):
        # A cluster of its own: once all members are stopped, none can be
        # started alone again (a member waits for a quorum).
        cluster = EtcdCluster(self.dir, members=3)
        cluster.start()
        self.addCleanup(cluster.stop)
        self.url = cluster.url(self.prefix)
        name = "down.example.test"
        self.issue("A", name)
        self.run_cp("B", "renew")
        certs = os.path.join(self.states["B"], "certs")
        before = tree_hashes(certs)
        self.assertIn(os.path.join(name, "privkey.pem"), before)
        for i in range(cluster.members):
            cluster.stop_member(i)
        proc = self.run_cp("B", "renew", "--force-renewal", expect=69)
        for endpoint in cluster.endpoints:
            self.assertIn(endpoint, proc.stderr)
        self.assertEqual(tree_hashes(certs), before)
        proc = self.run_cp("B", "list", "--json", expect=69)
        self.assertEqual(json.loads(proc.stdout)["exit_status"], 69)
        self.assertEqual(tree_hashes(certs), before)
        # issue on A: the same, before anything is sent to the CA.
        proc = self.run_cp("A", "issue", "-d", name, "--force-renewal", "--standalone",
                           "--http-port", str(self.pebble.http_port), ca=True, expect=69)
        self.assertIn(cluster.endpoints[0], proc.stderr)

    # -- HTTPS with a client certificate, and etcd authentication

    def test_tls_and_auth(self):
        cluster = EtcdCluster(self.dir, members=3, tls=True, auth=True)
        cluster.start()
        self.addCleanup(cluster.stop)
        self.url = cluster.url(self.prefix)
        self.assertTrue(self.url.startswith("etcds://"))
        password = os.path.join(self.dir, "etcd.password")
        with open(password, "w") as f:
            f.write(cluster.password + "\n")
        os.chmod(password, 0o600)
        tls = ["--store-ca-file", cluster.ca_file, "--store-client-cert", cluster.client_cert,
               "--store-client-key", cluster.client_key]
        auth = ["--store-user", cluster.user, "--store-password-file", password]
        name = "tls.example.test"
        proc = self.run_cp("A", "issue", "--agree-tos", "--json", "-d", name, "--standalone",
                           "--http-port", str(self.pebble.http_port), *tls, *auth, ca=True)
        self.assertEqual(json.loads(proc.stdout)["outcome"], "issued")
        self.run_cp("B", "renew", *tls, *auth)
        self.assertEqual(read_bytes(os.path.join(self.live("B", name), "cert.pem")),
                         read_bytes(os.path.join(self.live("A", name), "cert.pem")))
        dump = cluster.etcdctl("get", "--prefix", self.prefix + "/")
        self.assertEqual(dump.returncode, 0, dump.stderr)
        self.assertIn("cpseal1:", dump.stdout)
        self.assertNotIn("PRIVATE KEY", dump.stdout)
        # The same options from the defaults file.
        config = os.path.join(self.dir, "config")
        with open(config, "w") as f:
            f.write("store = %s\nstore-key-file = %s\nstore-ca-file = %s\n"
                    "store-client-cert = %s\nstore-client-key = %s\nstore-user = %s\n"
                    "store-password-file = %s\n" % (
                        self.url, self.key, cluster.ca_file, cluster.client_cert,
                        cluster.client_key, cluster.user, password))
        proc = subprocess.run([CERTPILOT, "list", "--json", "--config", config, "--state-dir",
                               self.states["B"]], capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual([c["cert_name"] for c in json.loads(proc.stdout)["results"]], [name])
        # Without the client certificate no member lets us in: unavailable.
        before = tree_hashes(os.path.join(self.states["B"], "certs"))
        proc = self.run_cp("B", "renew", "--store-ca-file", cluster.ca_file, *auth, expect=69)
        self.assertIn(cluster.endpoints[0], proc.stderr)
        # A wrong password is refused as such.
        with open(password, "w") as f:
            f.write("not-the-password\n")
        proc = self.run_cp("B", "renew", *tls, *auth, expect=None)
        self.assertNotEqual(proc.returncode, 0, self.describe(proc))
        self.assertEqual(tree_hashes(os.path.join(self.states["B"], "certs")), before)

    # -- the lineage lock guards the new version

    def run_tool(self, node, name, what):
        proc = subprocess.run([TOOL, self.url, self.key, self.states[node], name, what],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertNotRegex(proc.stderr, SANITIZER, proc.stderr)
        return json.loads(proc.stdout)

    def test_version_add_after_the_lock_was_lost_writes_nothing(self):
        os.mkdir(self.states["A"], 0o700)
        got = self.run_tool("A", "lost", "lost")
        # The keep-alive thread had no time to notice: the transaction refused it.
        self.assertTrue(got["held"], got)
        self.assertEqual(got["code"], "timed out", got)
        self.assertIn("no longer this host's", got["message"])
        # No version, no current, the lock gone: only the key check.
        self.assertEqual(self.etcd_keys(), [self.prefix + "/seal-check"])
        self.assertFalse(os.path.exists(self.live("A", "lost")))

        # The lock key deleted by hand (the lease still alive): the keep-alive
        # thread notices, and nothing is stored either.
        got = self.run_tool("A", "deleted", "deleted")
        self.assertFalse(got["held"], got)
        self.assertEqual(got["code"], "timed out", got)
        self.assertIn("was lost", got["message"])
        self.assertEqual(self.etcd_keys(), [self.prefix + "/seal-check"])

        # The same with the lock kept: stored, sealed, deployed, lock released.
        got = self.run_tool("A", "kept", "add")
        self.assertEqual(got["code"], "ok", got)
        keys = self.etcd_keys()
        self.assertIn("%s/lineages/kept/current" % self.prefix, keys)
        self.assertFalse(any("/locks/" in k for k in keys), keys)
        self.assertNotIn("PRIVATE KEY", self.etcd_dump())
        with open(os.path.join(self.live("A", "kept"), "privkey.pem")) as f:
            self.assertIn("not a key, a test value", f.read())

    # -- shared http-01 key authorizations

    def test_challenge_publish_lookup_withdraw(self):
        os.mkdir(self.states["A"], 0o700)
        token = "tok_EN-123"
        key = "%s/challenges/http-01/%s" % (self.prefix, token)
        got = self.run_tool("A", token, "publish")
        self.assertEqual(got, {"code": "ok", "message": "", "found": token + ".thumbprint"})
        out = self.etcd.etcdctl("get", key, "-w", "json")
        self.assertEqual(out.returncode, 0, out.stderr)
        kv = json.loads(out.stdout)["kvs"][0]
        self.assertNotEqual(int(kv.get("lease", 0)), 0)  # it goes away by itself
        ttl = self.etcd.etcdctl("lease", "timetolive", "%x" % int(kv["lease"]))
        self.assertRegex(ttl.stdout, r"remaining\(\d+s\)")
        got = self.run_tool("A", token, "withdraw")
        self.assertEqual(got, {"code": "ok", "message": "", "found": None})
        self.assertNotIn(key, self.etcd_keys())
        # A token that is not one is refused before any request.
        got = self.run_tool("A", "bad/token", "publish")
        self.assertEqual(got["code"], "invalid input")


if __name__ == "__main__":
    unittest.main()
