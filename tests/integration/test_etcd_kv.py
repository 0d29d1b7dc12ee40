#!/usr/bin/python3
"""store/etcd_kv.c (the etcd v3 JSON-gateway client) against a real etcd 3.4
cluster (tests/lab/etcd.py), through tests/tools/etcdkv_tool.

- Plain cluster of 3: put/get/range/delete with binary values (NUL bytes,
  every byte value), prefix bounds, keys-only ranges; transactions
  (create-if-absent where the second writer loses, compare-and-swap, a write
  guarded by a lease as the fleet's lock does); leases whose key disappears
  after revoke and after expiry, keep-alive of an expired lease
  (CP_ETIMEOUT, "timed out"); a definite refusal is not failed over.
- Fail-over (its own cluster): one member stopped (the first endpoint)
  and everything still works; two stopped: a network error naming every
  endpoint within the per-request time-outs; an endpoint that is no etcd
  gateway, and one answering "no leader", are skipped for the next; one
  handle keeps one connection; replies over the bounds (8 MiB, a 1 MiB
  value), bad base64 and bad int64 strings are refused.
- TLS cluster (client-cert-auth): with the CA and a client certificate;
  without a certificate, with another CA, with a CA file that does not
  exist.
- Auth cluster (etcd users): user/password; wrong password, no user and a
  key outside the user's permissions are set-up errors naming the member;
  an expired token is replaced once (seen through a recording proxy).
"""

import base64
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lab"))
import cplab  # noqa: E402
from etcd import EtcdCluster  # noqa: E402

TOOL = os.environ.get("ETCDKV_TOOL") or os.path.join(HERE, "..", "..", "build", "tests",
                                                      "etcdkv_tool")


def b64(data):
    return base64.b64encode(data).decode()


def unb64(text):
    return base64.b64decode(text)


class Tool:
    """Runs etcdkv_tool against a cluster (or endpoints) with options."""

    def __init__(self, endpoints, *opts):
        self.endpoints = list(endpoints)
        self.opts = list(opts)

    def run(self, *args, timeout=60):
        proc = subprocess.run([TOOL] + self.opts + [",".join(self.endpoints)] + list(args),
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode not in (0, 1):
            raise AssertionError("etcdkv_tool %s: status %d: %s" % (args, proc.returncode,
                                                                    proc.stderr))
        return json.loads(proc.stdout)

    def ok(self, *args):
        out = self.run(*args)
        results = out["results"] if "results" in out else [out]
        for r in results:
            if not r["ok"]:
                raise AssertionError("etcdkv_tool %s: %s" % (args, r))
        return out


def tool_for(cluster, *opts):
    extra = []
    if cluster.tls:
        extra += ["--ca", cluster.ca_file, "--cert", cluster.client_cert,
                  "--key", cluster.client_key]
    if cluster.auth:
        extra += ["--user", cluster.user, "--password", cluster.password]
    return Tool(cluster.endpoints, *(extra + list(opts)))


class ClusterCase(unittest.TestCase):
    """One cluster per class; every test works under its own key prefix."""

    members = 3
    tls = False
    auth = False
    token_ttl = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="etcdkv-")
        cls.cluster = EtcdCluster(cls.tmp, members=cls.members, tls=cls.tls, auth=cls.auth,
                                  token_ttl=cls.token_ttl)
        try:
            cls.cluster.start()
        except BaseException:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.tool = tool_for(self.cluster)
        self.p = "/t/%s/" % self._testMethodName

    def etcdctl_get(self, key):
        """The value of key as etcdctl sees it (bytes), None when absent."""
        out = self.cluster.etcdctl("get", key, "-w", "json", check=True).stdout
        kvs = json.loads(out).get("kvs") or []
        return unb64(kvs[0].get("value", "")) if kvs else None


# --------------------------------------------------------------- plain cluster

class PlainTest(ClusterCase):

    def test_binary_round_trip(self):
        values = {"a": b"x\0y\0", "b": bytes(range(256)), "c": b"", "d": b"\0"}
        for name, value in values.items():
            self.tool.ok("put", self.p + name, b64(value))
        for name, value in values.items():
            got = self.tool.ok("get", self.p + name)
            self.assertTrue(got["found"])
            self.assertEqual(unb64(got["value"]), value)
            self.assertEqual(got["len"], len(value))
            self.assertEqual(got["version"], 1)
        # etcdctl (gRPC) sees the same bytes.
        self.assertEqual(self.etcdctl_get(self.p + "b"), bytes(range(256)))
        missing = self.tool.ok("get", self.p + "nope")
        self.assertEqual(missing["found"], False)
        self.assertIsNone(missing.get("value"))
        # A second put bumps the version and mod_revision, not create_revision.
        before = self.tool.ok("get", self.p + "a")
        self.tool.ok("put", self.p + "a", b64(b"new"))
        after = self.tool.ok("get", self.p + "a")
        self.assertEqual(after["version"], 2)
        self.assertEqual(after["create_revision"], before["create_revision"])
        self.assertGreater(after["mod_revision"], before["mod_revision"])

    def test_range_and_delete(self):
        for key in ("x/2", "x/1", "x/3/deep", "x0", "y"):
            self.tool.ok("put", self.p + key, b64(key.encode() + b"\0!"))
        got = self.tool.ok("range", self.p + "x/")
        self.assertEqual([i["key"] for i in got["items"]],
                         [self.p + k for k in ("x/1", "x/2", "x/3/deep")])
        self.assertEqual([unb64(i["value"]) for i in got["items"]],
                         [b"x/1\0!", b"x/2\0!", b"x/3/deep\0!"])
        self.assertGreater(got["revision"], 0)
        keys = self.tool.ok("range", self.p, "keys")
        self.assertEqual(len(keys["items"]), 5)
        self.assertTrue(all(i["value"] is None for i in keys["items"]))
        # The empty prefix is every key.
        every = self.tool.ok("range", "", "keys")
        self.assertTrue({self.p + "y", self.p + "x0"} <= {i["key"] for i in every["items"]})

        self.assertEqual(self.tool.ok("del", self.p + "x/", "prefix")["deleted"], 3)
        self.assertEqual(self.tool.ok("del", self.p + "x0")["deleted"], 1)
        self.assertEqual(self.tool.ok("del", self.p + "x0")["deleted"], 0)
        left = self.tool.ok("range", self.p)
        self.assertEqual([i["key"] for i in left["items"]], [self.p + "y"])
        self.assertIsNone(self.etcdctl_get(self.p + "x/1"))

    def test_prefix_bounds(self):
        # A prefix's last byte is incremented for the range end ("/t/.../a" ->
        # "/t/.../b"): the key just past the prefix stays out (trailing 0xff
        # bytes: tests/unit/test_store_etcd_json.c).
        self.tool.ok("put", self.p + "a", b64(b"1"))
        self.tool.ok("put", self.p + "a/b", b64(b"2"))
        self.tool.ok("put", self.p + "b", b64(b"3"))
        got = self.tool.ok("range", self.p + "a")
        self.assertEqual([i["key"] for i in got["items"]], [self.p + "a", self.p + "a/b"])

    def test_create_if_absent(self):
        key = self.p + "lock"
        first = self.tool.ok("txn-create", key, b64(b"host-a 1"))
        second = self.tool.ok("txn-create", key, b64(b"host-b 2"))
        self.assertTrue(first["succeeded"])
        self.assertFalse(second["succeeded"])
        self.assertGreaterEqual(second["revision"], first["revision"])
        self.assertEqual(self.etcdctl_get(key), b"host-a 1")

    def test_compare_and_swap(self):
        key = self.p + "current"
        self.tool.ok("put", key, b64(b"v1\0"))
        lost = self.tool.ok("txn-cas", key, b64(b"v0"), b64(b"v2"))
        self.assertFalse(lost["succeeded"])
        self.assertEqual(self.etcdctl_get(key), b"v1\0")
        won = self.tool.ok("txn-cas", key, b64(b"v1\0"), b64(b"v2"))
        self.assertTrue(won["succeeded"])
        self.assertEqual(self.etcdctl_get(key), b"v2")

    def test_write_guarded_by_lease(self):
        lease = self.tool.ok("lease-grant", "30")["id"]
        guard, target = self.p + "lock", self.p + "version"
        self.tool.ok("put", guard, b64(b"host 1"), str(lease))
        self.assertEqual(self.tool.ok("get", guard)["lease"], lease)
        self.assertTrue(self.tool.ok("txn-guard", guard, str(lease), target, b64(b"one"))
                        ["succeeded"])
        self.assertFalse(self.tool.ok("txn-guard", guard, str(lease + 1), target, b64(b"x"))
                         ["succeeded"])
        self.tool.ok("revoke", str(lease))
        # The lease is gone: the guard key with it, and the write is refused.
        self.assertIsNone(self.etcdctl_get(guard))
        self.assertFalse(self.tool.ok("txn-guard", guard, str(lease), target, b64(b"two"))
                         ["succeeded"])
        self.assertEqual(self.etcdctl_get(target), b"one")

    def test_lease_revoke(self):
        lease = self.tool.ok("lease-grant", "60")["id"]
        self.assertNotEqual(lease, 0)
        self.tool.ok("put", self.p + "a", b64(b"1"), str(lease))
        self.tool.ok("put", self.p + "b", b64(b"2"), str(lease))
        self.tool.ok("put", self.p + "c", b64(b"3"))
        ttl = self.tool.ok("keepalive", str(lease))["ttl"]
        self.assertTrue(0 < ttl <= 60, ttl)
        self.tool.ok("revoke", str(lease))
        left = self.tool.ok("range", self.p, "keys")
        self.assertEqual([i["key"] for i in left["items"]], [self.p + "c"])
        # Revoking again (or a lease that never was) is not an error: its keys are gone.
        self.tool.ok("revoke", str(lease))
        gone = self.tool.run("keepalive", str(lease))
        self.assertFalse(gone["ok"])
        self.assertEqual(gone["code"], "timed out")
        self.assertEqual(gone["ttl"], 0)

    def test_lease_expiry(self):
        lease = self.tool.ok("lease-grant", "2")["id"]
        self.tool.ok("put", self.p + "short", b64(b"x"), str(lease))
        self.assertEqual(self.etcdctl_get(self.p + "short"), b"x")
        deadline = time.monotonic() + 30
        while self.tool.ok("get", self.p + "short")["found"]:
            if time.monotonic() > deadline:
                self.fail("the key of an unrenewed 2 s lease still exists after 30 s")
            time.sleep(0.2)
        expired = self.tool.run("keepalive", str(lease))
        self.assertFalse(expired["ok"])
        self.assertEqual(expired["code"], "timed out")
        self.assertIn("expired", expired["message"])
        self.assertIn("%x" % lease, expired["message"])

    def test_put_with_unknown_lease_is_a_definite_refusal(self):
        # etcd answers "requested lease not found": the first member's answer
        # stands, no other member is asked (the message names just the one).
        got = self.tool.run("put", self.p + "k", b64(b"v"), "12345")
        self.assertFalse(got["ok"])
        self.assertEqual(got["code"], "protocol error")
        self.assertIn("lease not found", got["message"])
        named = [e for e in self.cluster.endpoints if e in got["message"]]
        self.assertEqual(len(named), 1, got["message"])

    def test_one_handle_many_commands(self):
        # Several requests on one handle (one connection, reused).
        args = []
        for i in range(20):
            args += ["put", self.p + "k%02d" % i, b64(b"%d" % i), "--"]
        got = self.tool.ok(*(args + ["range", self.p]))
        self.assertEqual(len(got["results"][-1]["items"]), 20)

    def test_bad_options(self):
        for endpoints, opts, words in (
                (["ftp://127.0.0.1:1"], [], "scheme"),
                (["127.0.0.1:2379"], [], "127.0.0.1:2379"),
                (["http://127.0.0.1:1/v3"], [], "no path"),
                (["http://127.0.0.1:1", "https://127.0.0.1:2"], [], "mix"),
                (["http://127.0.0.1:1"], ["--ca", "/etc/hostname"], "https"),
                (["http://127.0.0.1:1"], ["--user", "u"], "password")):
            got = Tool(endpoints, *opts).run("get", "/k")
            self.assertFalse(got["ok"])
            self.assertEqual(got["code"], "invalid input", got)
            self.assertIn(words, got["message"])


# -------------------------------------------------------------------- fail-over

class FakeMember:
    """A plain-HTTP stand-in for a member on a free port: answers the
    replies queued with answer() in order, then forwards every request to
    `target` (a real member's endpoint; None: 404 "Not Found").  Records
    (path, Authorization header, status, reply body) of each exchange."""

    def __init__(self, target=None):
        self.target = target
        self.port = cplab.free_port(udp=False)
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.exchanges = []
        self.connections = set()  # client (address, port) pairs seen
        self._queue = []
        self._lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                auth = self.headers.get("Authorization")
                status, reply = fake._reply(self.path, body, auth)
                with fake._lock:
                    fake.exchanges.append((self.path, auth, status, reply))
                    fake.connections.add(self.client_address)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                try:
                    self.wfile.write(reply)
                except OSError:
                    pass  # the client stopped reading (a reply over its bound)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def answer(self, status, body, path=None):
        """Queue a reply for the next request (to `path` only, if given)."""
        with self._lock:
            self._queue.append((path, status,
                                body if isinstance(body, bytes) else body.encode()))

    def _reply(self, path, body, auth):
        with self._lock:
            for i, (only, status, reply) in enumerate(self._queue):
                if only in (None, path):
                    del self._queue[i]
                    return status, reply
        if self.target is None:
            return 404, b"Not Found"
        req = urllib.request.Request(self.target + path, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        if auth:
            req.add_header("Authorization", auth)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def paths(self):
        with self._lock:
            return [e[0] for e in self.exchanges]

    def close(self):
        self._server.shutdown()
        self._server.server_close()


class FailoverTest(ClusterCase):
    """Stops and starts members: its own cluster."""

    def tearDown(self):
        for i in range(self.cluster.members):
            if not self.cluster.running(i):
                self.cluster.start_member(i)
        self.cluster.wait_healthy()

    def exercise(self, tool):
        """Every kind of request once."""
        tool.ok("put", self.p + "a", b64(b"1\0"))
        self.assertEqual(unb64(tool.ok("get", self.p + "a")["value"]), b"1\0")
        self.assertEqual(len(tool.ok("range", self.p)["items"]), 1)
        self.assertTrue(tool.ok("txn-create", self.p + "b", b64(b"2"))["succeeded"])
        lease = tool.ok("lease-grant", "30")["id"]
        self.assertGreater(tool.ok("keepalive", str(lease))["ttl"], 0)
        tool.ok("revoke", str(lease))
        self.assertEqual(tool.ok("del", self.p, "prefix")["deleted"], 2)

    def test_one_member_stopped(self):
        self.cluster.stop_member(0)  # the endpoint tried first
        self.cluster.wait_healthy()
        self.exercise(self.tool)
        # The same on one handle: the stopped member is skipped once, then
        # the member that answered is asked first.
        self.tool.ok("put", self.p + "x", b64(b"1"), "--", "get", self.p + "x", "--",
                     "del", self.p + "x")

    def test_two_members_stopped(self):
        self.cluster.stop_member(0)
        self.cluster.stop_member(1)
        tool = tool_for(self.cluster, "--timeout-ms", "1500")
        for args in (("get", self.p + "a"), ("put", self.p + "a", b64(b"1")),
                     ("lease-grant", "10")):
            got = tool.run(*args, timeout=60)
            self.assertFalse(got["ok"], got)
            self.assertEqual(got["code"], "network error", got)
            self.assertIn("no member answered", got["message"])
            for endpoint in self.cluster.endpoints:
                self.assertIn(endpoint, got["message"])
            # The last member is up but without a quorum: it cannot answer in time.
            self.assertIn("%s: no answer in time (1500 ms)" % self.cluster.endpoints[2],
                          got["message"])
            self.assertIn("%s: connection refused" % self.cluster.endpoints[0], got["message"])
            self.assertIn("%s: the same" % self.cluster.endpoints[1], got["message"])
        # Given more time than etcd's own request time-out (about 7 s), the
        # member without a quorum answers with an error: still no answer.
        slow = tool_for(self.cluster, "--timeout-ms", "15000")
        got = slow.run("lease-grant", "10", timeout=120)
        self.assertEqual(got["code"], "network error", got)
        self.assertRegex(got["message"], r"%s: (context deadline exceeded|etcdserver: )"
                         % self.cluster.endpoints[2])
        # Back to a quorum: the same handle options work again.
        self.cluster.start_member(1)
        self.cluster.wait_healthy()
        tool.ok("put", self.p + "a", b64(b"1"))

    def test_nothing_listening(self):
        ports = [cplab.free_port(udp=False) for _ in range(2)]
        endpoints = ["http://127.0.0.1:%d" % p for p in ports]
        got = Tool(endpoints).run("get", "/k")
        self.assertEqual(got["code"], "network error")
        self.assertIn("%s: connection refused" % endpoints[0], got["message"])
        self.assertIn("%s: the same" % endpoints[1], got["message"])

    def test_not_a_gateway_is_skipped(self):
        fake = FakeMember()  # answers 404 "Not Found" as text
        try:
            tool = Tool([fake.endpoint] + self.cluster.endpoints)
            tool.ok("put", self.p + "a", b64(b"1"))
            self.assertEqual(fake.paths(), ["/v3/kv/put"])
            alone = Tool([fake.endpoint]).run("get", self.p + "a")
            self.assertEqual(alone["code"], "protocol error")
            self.assertIn("HTTP 404", alone["message"])
            self.assertIn('"Not Found"', alone["message"])
        finally:
            fake.close()

    def test_member_without_leader_is_skipped_but_refusals_are_not(self):
        fake = FakeMember(target=self.cluster.endpoints[0])
        try:
            tool = Tool([fake.endpoint] + self.cluster.endpoints[1:])
            fake.answer(503, '{"error":"etcdserver: no leader","message":"etcdserver: no leader",'
                        '"code":14}')
            tool.ok("put", self.p + "a", b64(b"1"))
            self.assertEqual(fake.paths(), ["/v3/kv/put"])  # then the next member
            self.assertEqual(self.etcdctl_get(self.p + "a"), b"1")
            fake.answer(500, '{"error":"etcdserver: request timed out","code":14}')
            tool.ok("get", self.p + "a")
            self.assertEqual(len(fake.paths()), 2)
            # A definite refusal is the answer: the next member is not asked.
            fake.answer(400, '{"error":"etcdserver: request is too large",'
                        '"message":"etcdserver: request is too large","code":3}')
            got = tool.run("put", self.p + "b", b64(b"2"))
            self.assertEqual(got["code"], "protocol error")
            self.assertIn("%s refused the write of %sb: etcdserver: request is too large"
                          % (fake.endpoint, self.p), got["message"])
            self.assertIsNone(self.etcdctl_get(self.p + "b"))
            # Forwarded as is otherwise.
            tool = Tool([fake.endpoint])
            tool.ok("put", self.p + "c", b64(b"3"))
            self.assertEqual(self.etcdctl_get(self.p + "c"), b"3")
        finally:
            fake.close()

    def test_connection_reused(self):
        fake = FakeMember(target=self.cluster.endpoints[0])
        try:
            Tool([fake.endpoint]).ok("put", self.p + "a", b64(b"1"), "--", "get", self.p + "a",
                                     "--", "range", self.p, "--", "del", self.p + "a")
            self.assertEqual(len(fake.paths()), 4)
            self.assertEqual(len(fake.connections), 1)
        finally:
            fake.close()

    def test_reply_bounds(self):
        fake = FakeMember(target=self.cluster.endpoints[0])
        try:
            tool = Tool([fake.endpoint])
            huge = b'{"kvs":[' + b",".join([b'{"key":"L2E=","value":"%s"}' % (b"A" * 4000)]
                                           * 2200) + b"]}"
            fake.answer(200, huge)  # more than ETCD_KV_MAX_REPLY (8 MiB)
            got = tool.run("range", "/")
            self.assertEqual(got["code"], "protocol error")
            self.assertIn("larger than 8388608 bytes", got["message"])
            value = b64(b"x" * ((1 << 20) + 1))  # one byte over ETCD_KV_MAX_VALUE
            fake.answer(200, '{"kvs":[{"key":"L2E=","value":"%s"}]}' % value)
            got = tool.run("get", "/a")
            self.assertEqual(got["code"], "protocol error")
            self.assertIn("more than 1048576 bytes", got["message"])
            fake.answer(200, '{"kvs":[{"key":"L2E=","value":"not base64!"}]}')
            got = tool.run("get", "/a")
            self.assertIn("base64", got["message"])
            fake.answer(200, '{"header":{"revision":"x12"}}')
            got = tool.run("get", "/a")
            self.assertIn('bad "revision"', got["message"])
            fake.answer(502, '{}')  # JSON, but neither an answer nor an etcd error
            got = tool.run("get", "/a")
            self.assertIn("HTTP 502 without an etcd error", got["message"])
            fake.answer(200, '{"deleted":"12x"}')
            got = tool.run("del", "/a")
            self.assertIn('bad "deleted"', got["message"])
        finally:
            fake.close()


# -------------------------------------------------------------------------- TLS

class TlsTest(ClusterCase):
    tls = True

    def test_with_ca_and_client_certificate(self):
        self.assertTrue(all(e.startswith("https://") for e in self.cluster.endpoints))
        self.assertTrue(self.cluster.url("/x").startswith("etcds://"))
        self.tool.ok("put", self.p + "a", b64(b"\0tls"), "--", "get", self.p + "a")
        self.assertEqual(self.etcdctl_get(self.p + "a"), b"\0tls")
        lease = self.tool.ok("lease-grant", "30")["id"]
        self.assertGreater(self.tool.ok("keepalive", str(lease))["ttl"], 0)
        self.tool.ok("revoke", str(lease))

    def test_without_client_certificate(self):
        got = Tool(self.cluster.endpoints, "--ca", self.cluster.ca_file).run("get", "/a")
        self.assertFalse(got["ok"])
        self.assertEqual(got["code"], "network error")
        for e in self.cluster.endpoints:
            self.assertIn(e, got["message"])

    def test_with_another_ca(self):
        other = os.path.join(self.tmp, "other-ca.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=other",
                        "-keyout", os.path.join(self.tmp, "other-key.pem"), "-out", other],
                       check=True, capture_output=True)
        got = Tool(self.cluster.endpoints, "--ca", other, "--cert", self.cluster.client_cert,
                   "--key", self.cluster.client_key).run("get", "/a")
        self.assertEqual(got["code"], "network error")
        self.assertIn("not trusted", got["message"])
        for e in self.cluster.endpoints[1:]:
            self.assertIn("%s: the same" % e, got["message"])
        # Without any CA: the system store does not know the lab's CA either.
        got = Tool(self.cluster.endpoints, "--cert", self.cluster.client_cert,
                   "--key", self.cluster.client_key).run("get", "/a")
        self.assertEqual(got["code"], "network error")
        self.assertIn("not trusted", got["message"])

    def test_unreadable_files(self):
        got = Tool(self.cluster.endpoints, "--ca", os.path.join(self.tmp, "nope.pem")).run(
            "get", "/a")
        self.assertEqual(got["code"], "set-up missing")
        self.assertIn("nope.pem", got["message"])
        got = Tool(self.cluster.endpoints, "--cert", self.cluster.client_cert).run("get", "/a")
        self.assertEqual(got["code"], "invalid input")


# ------------------------------------------------------------------------- auth

class AuthTest(ClusterCase):
    auth = True
    token_ttl = 1  # seconds of idleness before etcd forgets a token

    def test_user_and_password(self):
        self.tool.ok("put", self.p + "a", b64(b"\0auth"))
        self.assertEqual(unb64(self.tool.ok("get", self.p + "a")["value"]), b"\0auth")
        self.assertTrue(self.tool.ok("txn-create", self.p + "b", b64(b"1"))["succeeded"])
        lease = self.tool.ok("lease-grant", "30")["id"]
        self.tool.ok("put", self.p + "c", b64(b"1"), str(lease))
        self.tool.ok("revoke", str(lease))
        self.assertIsNone(self.etcdctl_get(self.p + "c"))

    def test_wrong_password(self):
        got = Tool(self.cluster.endpoints, "--user", self.cluster.user,
                   "--password", "wrong").run("get", self.p + "a")
        self.assertEqual(got["code"], "set-up missing")
        self.assertIn("authentication of user certpilot", got["message"])
        self.assertIn("invalid user ID or password", got["message"])
        self.assertTrue(any(e in got["message"] for e in self.cluster.endpoints))

    def test_no_user(self):
        got = Tool(self.cluster.endpoints).run("get", self.p + "a")
        self.assertEqual(got["code"], "set-up missing")
        self.assertIn("no user given", got["message"])
        self.assertIn("user name is empty", got["message"])

    def test_permission_denied(self):
        got = self.tool.run("put", "outside", b64(b"1"))  # the role covers "/" only
        self.assertEqual(got["code"], "set-up missing")
        self.assertIn("by user certpilot: etcdserver: permission denied", got["message"])
        self.assertIsNone(self.etcdctl_get("outside"))

    def test_expired_token_is_replaced_once(self):
        fake = FakeMember(target=self.cluster.endpoints[0])
        try:
            tool = Tool([fake.endpoint], "--user", self.cluster.user,
                        "--password", self.cluster.password)
            # Idle for 4 token lifetimes between two requests on one handle.
            tool.ok("put", self.p + "a", b64(b"1"), "--", "sleep", "4000", "--",
                    "get", self.p + "a")
            paths = [(p, s) for p, _, s, _ in fake.exchanges]
            self.assertEqual(paths, [("/v3/auth/authenticate", 200), ("/v3/kv/put", 200),
                                     ("/v3/kv/range", 401), ("/v3/auth/authenticate", 200),
                                     ("/v3/kv/range", 200)])
            self.assertIn(b"invalid auth token", fake.exchanges[2][3])
            tokens = [a for _, a, _, _ in fake.exchanges]
            self.assertIsNone(tokens[0])
            self.assertEqual(tokens[1], tokens[2])
            self.assertNotEqual(tokens[4], tokens[1])
            # A token refused again right after a new one: no loop, an error.
            del fake.exchanges[:]
            for _ in range(2):
                fake.answer(401, '{"error":"etcdserver: invalid auth token","code":16}',
                            path="/v3/kv/range")
            got = tool.run("get", self.p + "a")
            self.assertEqual(got["code"], "set-up missing")
            self.assertIn("invalid auth token", got["message"])
            self.assertEqual(fake.paths(), ["/v3/auth/authenticate", "/v3/kv/range"] * 2)
        finally:
            fake.close()


if __name__ == "__main__":
    unittest.main()
