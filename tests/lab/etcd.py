#!/usr/bin/python3
"""A real etcd cluster on loopback for the tests of certpilot's etcd store.

EtcdCluster(tmpdir, members=3, tls=False, auth=False) runs Debian's etcd
3.4 (/usr/bin/etcd), one foreground child process per member, each with
its data under tmpdir and its client and peer ports picked free at run
time (cplab.free_port), so that several clusters and labs can run at once.

    with EtcdCluster(tmpdir) as cluster:          # start() ... stop()
        cluster.endpoints       # ["http://127.0.0.1:P0", ...]
        cluster.url("/certpilot")  # "etcd://127.0.0.1:P0,.../certpilot"
        cluster.etcdctl("put", "/a", "1")   # CompletedProcess, text
        cluster.stop_member(1); cluster.start_member(1)

tls=True: clients must use HTTPS with a certificate of the cluster's own
CA (client-cert-auth); endpoints are https://, url() is etcds://, and
ca_file, client_cert, client_key name the PEM files (CA, certificate and
key of a client certificate without a CN, see below).  Members talk to each other in plain HTTP on
loopback (only the client side is under test).

auth=True: etcd authentication is on; user / password is a user with
read-write access to every key starting with "/" (what certpilot uses);
the user "root" (root_password) exists as etcd requires, and etcdctl()
runs as root so that tests can look at anything.  token_ttl: seconds an
authentication token lives without use (etcd's --auth-token-ttl, 300 by
default); a request with an expired one gets "etcdserver: invalid auth
token".

start() returns once every member answers /health with a leader elected
(a few seconds).  stop_member(i) stops member i (SIGTERM, then SIGKILL, by
PID) and keeps its data; start_member(i) starts it again on the same ports
and waits for its /health; wait_healthy() waits for every running member's
/health (a quorum with a leader: after stopping the leader, the others need
an election, about a second).  stop() stops every member; the data stays in
tmpdir (the caller owns it).  Children get SIGTERM from the kernel if the
test process dies (PR_SET_PDEATHSIG), as cplab's do.

Gotchas (etcd 3.4 as packaged in Debian 12):
- The JSON gateway of a member with client-cert-auth dials its own gRPC
  port with the member's server certificate as its client certificate,
  so that certificate needs extendedKeyUsage clientAuth as well as
  serverAuth; without it every gateway request fails.
- With client-cert-auth and auth both on, the gateway answers 400 "CommonName
  of client sending a request against gateway will be ignored ..." to any
  client certificate with a CN (it cannot pass the CN on as the user), so
  the client certificate has subject O=certpilot and no CN; the user is
  then the one of the token (user/password).  etcdctl speaks gRPC and is
  not affected.
- /health answers {"health":"true"} only once the cluster has a leader;
  with client-cert-auth it needs a client certificate too.
- Both /v3/lease/revoke and /v3/kv/lease/revoke are served.
- Int64 fields of the gateway's JSON are strings; fields whose value is
  zero/false are left out ("succeeded" of a failed txn, "TTL" of an
  expired lease's keep-alive).
- etcd reads ETCD_* variables from the environment: members get only
  cplab.BASE_ENV, never the caller's.
"""

import os
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.request

import cplab

ETCD = "/usr/bin/etcd"
ETCDCTL = "/usr/bin/etcdctl"


class EtcdCluster:
    """A cluster of `members` etcd processes; see the module doc."""

    def __init__(self, tmpdir, members=3, tls=False, auth=False, token_ttl=None):
        if members < 1:
            raise ValueError("members: at least 1")
        self.dir = os.path.join(tmpdir, "etcd-%d" % cplab.free_port(udp=False))
        os.makedirs(self.dir)
        self.tls, self.auth = bool(tls), bool(auth)
        self.token_ttl = token_ttl
        self.members = members
        self.client_ports = [cplab.free_port(udp=False) for _ in range(members)]
        self.peer_ports = [cplab.free_port(udp=False) for _ in range(members)]
        scheme = "https" if self.tls else "http"
        self.endpoints = ["%s://127.0.0.1:%d" % (scheme, p) for p in self.client_ports]
        self.ca_file = self.client_cert = self.client_key = None
        self.user = self.password = self.root_password = None
        if self.auth:
            self.user = "certpilot"
            self.password = "pw-" + os.urandom(9).hex()
            self.root_password = "root-" + os.urandom(9).hex()
        self._procs = [None] * members
        self._logs = [os.path.join(self.dir, "member%d.log" % i) for i in range(members)]
        self._cluster_id = "cplab-%s" % os.urandom(4).hex()
        self._started = False

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- names

    def name(self, i):
        return "m%d" % i

    def url(self, prefix=""):
        """etcd://127.0.0.1:P0,127.0.0.1:P1,.../prefix (etcds:// with TLS)."""
        hosts = ",".join("127.0.0.1:%d" % p for p in self.client_ports)
        if prefix and not prefix.startswith("/"):
            prefix = "/" + prefix
        return "%s://%s%s" % ("etcds" if self.tls else "etcd", hosts, prefix)

    def running(self, i):
        """True while member i runs."""
        return self._procs[i] is not None and self._procs[i].poll() is None

    @property
    def pids(self):
        """PIDs of the members running now."""
        return [p.pid for p in self._procs if p is not None and p.poll() is None]

    # -- starting and stopping

    def start(self):
        if self._started:
            raise RuntimeError("cluster already started")
        self._started = True
        cplab._open_labs.add(self)  # stopped at exit / SIGTERM like a Lab
        cplab._install_signal_handlers()
        if self.tls:
            self._make_certificates()
        try:
            for i in range(self.members):
                self._spawn(i)
            for i in range(self.members):
                self._wait_healthy(i)
            if self.auth:
                self._enable_auth()
        except BaseException:
            self.stop()
            raise
        return self

    def close(self):  # cplab's exit/signal hooks call close()
        self.stop()

    def stop(self):
        for i in range(self.members):
            self.stop_member(i)
        cplab._open_labs.discard(self)

    def stop_member(self, i):
        proc = self._procs[i]
        if proc is not None:
            cplab._stop(proc)
            self._procs[i] = None

    def start_member(self, i):
        if self._procs[i] is not None and self._procs[i].poll() is None:
            raise RuntimeError("member %d is running" % i)
        self._spawn(i)
        self._wait_healthy(i)

    def _spawn(self, i):
        scheme = "https" if self.tls else "http"
        client = "%s://127.0.0.1:%d" % (scheme, self.client_ports[i])
        peer = "http://127.0.0.1:%d" % self.peer_ports[i]
        initial = ",".join("%s=http://127.0.0.1:%d" % (self.name(j), self.peer_ports[j])
                           for j in range(self.members))
        argv = [
            ETCD, "--name", self.name(i),
            "--data-dir", os.path.join(self.dir, "data%d" % i),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", initial, "--initial-cluster-state", "new",
            "--initial-cluster-token", self._cluster_id,
            "--logger", "zap", "--log-outputs", "stderr",
        ]
        if self.token_ttl is not None:
            argv += ["--auth-token-ttl", str(int(self.token_ttl))]
        if self.tls:
            argv += ["--cert-file", self._server_cert, "--key-file", self._server_key,
                     "--trusted-ca-file", self.ca_file, "--client-cert-auth"]
        log = open(self._logs[i], "ab")
        try:
            self._procs[i] = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=dict(cplab.BASE_ENV), cwd=self.dir, preexec_fn=cplab._child_setup)
        finally:
            log.close()

    def _ssl_context(self):
        ctx = ssl.create_default_context(cafile=self.ca_file)
        ctx.load_cert_chain(self.client_cert, self.client_key)
        return ctx

    def health(self, i, timeout=1.0):
        """True when member i answers /health with {"health":"true"}."""
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=self._ssl_context()) if self.tls
            else urllib.request.HTTPHandler())
        try:
            with opener.open(self.endpoints[i] + "/health", timeout=timeout) as r:
                return b'"health":"true"' in r.read()
        except OSError:
            return False

    def _wait_healthy(self, i, timeout=30.0):
        cplab._wait_until("etcd member %d" % i, lambda: self.health(i), self._procs[i],
                          self._logs[i], timeout=timeout)

    def wait_healthy(self, timeout=30.0):
        """Wait until every running member answers /health (e.g. after
        stop_member() of the leader, until the others have elected one)."""
        for i, proc in enumerate(self._procs):
            if proc is not None and proc.poll() is None:
                self._wait_healthy(i, timeout)

    # -- etcdctl

    def etcdctl(self, *args, check=False, endpoints=None, user=None, timeout=30):
        """Run etcdctl (API 3) against the running members (or `endpoints`),
        as root when auth is on (user="name:password" to be someone else).
        Returns the CompletedProcess (text)."""
        if endpoints is None:
            endpoints = [e for e, p in zip(self.endpoints, self._procs)
                         if p is not None and p.poll() is None] or self.endpoints
        argv = [ETCDCTL, "--endpoints", ",".join(endpoints),
                "--dial-timeout", "3s", "--command-timeout", "10s"]
        if self.tls:
            argv += ["--cacert", self.ca_file, "--cert", self.client_cert,
                     "--key", self.client_key]
        if user is None and self.auth and self._auth_on:
            user = "root:" + self.root_password
        if user:
            argv += ["--user", user]
        env = dict(cplab.BASE_ENV, ETCDCTL_API="3")
        return subprocess.run(argv + list(args), env=env, capture_output=True, text=True,
                              check=check, timeout=timeout)

    _auth_on = False

    def _enable_auth(self):
        steps = [
            ("user", "add", "root", "--new-user-password=" + self.root_password),
            ("user", "add", self.user, "--new-user-password=" + self.password),
            ("role", "add", "certpilot"),
            ("role", "grant-permission", "certpilot", "--prefix=true", "readwrite", "/"),
            ("user", "grant-role", self.user, "certpilot"),
            ("auth", "enable"),
        ]
        for step in steps:
            self.etcdctl(*step, check=True)
        self._auth_on = True

    # -- certificates (tls=True)

    def _openssl(self, *args):
        subprocess.run(["openssl"] + list(args), env=cplab.BASE_ENV, check=True,
                       capture_output=True, cwd=self.dir)

    def _make_certificates(self):
        d = os.path.join(self.dir, "pki")
        os.makedirs(d, mode=0o700)
        self.ca_file = os.path.join(d, "ca.pem")
        ca_key = os.path.join(d, "ca-key.pem")
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-nodes", "-days", "7", "-subj", "/CN=cplab etcd CA",
                      "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                      "-keyout", ca_key, "-out", self.ca_file)

        def issue(stem, subject, ext):
            key, csr, cert = (os.path.join(d, stem + s) for s in ("-key.pem", ".csr", ".pem"))
            extfile = os.path.join(d, stem + ".ext")
            with open(extfile, "w") as f:
                f.write(ext + "\n")
            self._openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
                          "ec_paramgen_curve:P-256", "-nodes", "-subj", subject,
                          "-keyout", key, "-out", csr)
            self._openssl("x509", "-req", "-in", csr, "-CA", self.ca_file, "-CAkey", ca_key,
                          "-CAcreateserial", "-days", "7", "-extfile", extfile, "-out", cert)
            return cert, key

        # clientAuth too: the member's gateway presents it to its own gRPC port.
        self._server_cert, self._server_key = issue(
            "server", "/CN=cplab etcd member",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
            "extendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature")
        # No CN: with auth on, the gateway refuses client certificates with one.
        self.client_cert, self.client_key = issue(
            "client", "/O=certpilot",
            "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature")


def cluster_for_class(cls, members=3, **kw):
    """Start a cluster for a unittest class: stopped and its data removed by
    the class's cleanups."""
    import shutil
    import tempfile
    data = tempfile.mkdtemp(prefix="cptest-etcd-")
    cls.addClassCleanup(shutil.rmtree, data, ignore_errors=True)
    cluster = EtcdCluster(data, members=members, **kw)
    cluster.start()
    cls.addClassCleanup(cluster.stop)
    return cluster


def fleet_lab_for_class(cls, pebble_env, ari=True):
    """For a unittest class: the lab, its Pebble (behind the ACME proxy when
    ari) as cls.lab and cls.pebble, and an etcd cluster as cls.etcd; all
    stopped by the class's cleanups."""
    cls.lab = cplab.Lab()
    cls.addClassCleanup(cls.lab.close)
    cls.lab.start()
    cls.pebble = cls.lab.pebble(env=pebble_env, ari=ari)
    cls.etcd = cluster_for_class(cls)


class FleetLabCase(unittest.TestCase):
    """A base for tests of hosts sharing a store: one lab, one Pebble (behind
    the ACME proxy, which counts orders) and one etcd cluster per class
    (cls.server is the proxy's directory); per test a temp dir (self.dir),
    a key prefix in etcd of its own (self.prefix, "/..."), hence an account
    of its own, and a store key (self.key).  A subclass gives
    run_node(node, *args)."""

    pebble_env = {"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
    label = "fleet"  # of the temp dirs and key prefixes

    @classmethod
    def setUpClass(cls):
        fleet_lab_for_class(cls, cls.pebble_env)
        cls.server = cls.pebble.ari_directory_url

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="cptest-%s-" % self.label)
        self.addCleanup(self.tmp.cleanup)
        self.dir = self.tmp.name
        self.prefix = "/%s-%s-%d" % (self.label, self._testMethodName, os.getpid())
        self.key = write_store_key(os.path.join(self.dir, "store.key"))

    def fresh_account(self, node):
        """The store's account replaced by a new one, which validated nothing:
        for a step that must answer its challenge (Pebble hands an order a
        valid authorization of the same account now and then even with
        PEBBLE_AUTHZREUSE=0, tests/lab/README.md)."""
        accounts = "%s/accounts/" % self.prefix
        self.assertNotEqual(self.etcd.etcdctl("get", "--prefix", "--keys-only", accounts,
                                              check=True).stdout.strip(), "")
        self.etcd.etcdctl("del", "--prefix", accounts, check=True)
        self.run_node(node, "account", "register", "--agree-tos", "--server", self.server,
                      "--ca-bundle", self.pebble.ca_bundle)


def write_store_key(path, mode=0o600):
    """A fresh store sealing key (32 random bytes, base64), as an operator
    makes it with `openssl rand -base64 32`; returns path."""
    key = subprocess.run(["openssl", "rand", "-base64", "32"], capture_output=True,
                         text=True, check=True).stdout
    with open(path, "w") as f:
        f.write(key)
    os.chmod(path, mode)
    return path


if __name__ == "__main__":
    import sys
    import tempfile
    tls = "--tls" in sys.argv
    auth = "--auth" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        with EtcdCluster(tmp, tls=tls, auth=auth) as c:
            print("started in %.2fs: %s" % (time.monotonic() - t0, c.url("/certpilot")))
            print(c.etcdctl("endpoint", "status", "-w", "table").stdout)
            c.stop_member(2)
            print(c.etcdctl("put", "/x", "1", endpoints=c.endpoints[:2]).stdout.strip())
            t0 = time.monotonic()
            c.start_member(2)
            print("member 2 back in %.2fs" % (time.monotonic() - t0))
