#!/usr/bin/python3
"""Three certpilot hosts sharing one etcd store (issue 18) against the lab's Pebble.

A real three-member etcd cluster (tests/lab/etcd.py), Pebble behind the lab's
ACME proxy (tests/lab/ari_proxy.py, which records every newOrder: the count of
orders) and three certpilot "nodes": each its own --state-dir (its run lock,
its deployed files), all the same --store URL and --store-key-file.  Each test
uses its own key prefix in etcd, hence its own account: nothing Pebble
validated for another test can be reused; a renewal that must reach its
challenge first gets an account that validated nothing (fresh_account).

- ConcurrentRenewal: `renew --force-renewal` on the three nodes at once gives
  exactly one new order; the three end with the same certificate at their
  stable paths and each ran its deploy hook once.  The node that orders waits
  in its pre-hook (run under the lineage lock) until the two others say they
  wait for that lock, so that all three decided before anything was renewed:
  the outcome does not depend on which process the kernel ran first.
- ConcurrentIssue: `issue` of a new name on two nodes at once gives one
  order; the second finds it issued meanwhile and leaves it alone.
- KillTakeover: the node ordering is killed (kill -9) while its dns-01 hook
  stalls mid-order; a node waiting on the lock takes it over once the lease
  (--store-lock-ttl 3) runs out and renews.  The takeover time is printed.
- LockLost: the node ordering is stopped (SIGSTOP) until etcd dropped its
  lease; resumed, it finds its lock lost before finalize: exit 75, outcome
  lock_lost, nothing finalized, nothing written.
- MemberLoss: one etcd member stopped, renew and issue still work; two
  stopped (no quorum), they fail with exit 69 and leave every local file as
  it was.

http-01 is answered from one webroot that every node writes into, served by a
static server on Pebble's http port: whichever node orders is answered.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
sys.path.insert(0, HERE)
from etcd import FleetLabCase  # noqa: E402
from test_issue import serve_directory  # noqa: E402

CERTPILOT = os.path.abspath(os.environ.get("CERTPILOT", os.path.join(ROOT, "build", "certpilot")))
CHALLTESTSRV_HOOK = os.path.join(ROOT, "hooks", "examples", "dns-challtestsrv.sh")
NODES = 3
WAIT = 90  # seconds: a bound on waits for another process, never an assertion

# deploy.sh LOG: one line per run, with the lineage it was given.
DEPLOY_SH = r"""#!/bin/sh
printf '%s\t%s\n' "${RENEWED_LINEAGE-<unset>}" "${RENEWED_DOMAINS-<unset>}" >>"$1"
"""

# barrier.sh DIR NODE: says it runs (DIR/pre-NODE), then waits for DIR/go.
BARRIER_SH = r"""#!/bin/sh
: >"$1/pre-$2"
while [ ! -e "$1/go" ]; do sleep 0.05; done
"""

# A dehydrated hook for dns-01 (the example challtestsrv hook) that, when
# CP_FLEET_STALL names a file, writes its PID there on deploy_challenge and
# waits until the file $CP_FLEET_STALL.go exists (at most 300 s) before doing
# its work: an order stopped half way, for as long as the test wants.
STALL_HOOK = r"""#!/bin/sh
if [ "$1" = deploy_challenge ] && [ -n "${CP_FLEET_STALL-}" ]; then
    printf '%s\n' "$$" >"$CP_FLEET_STALL.tmp"
    mv "$CP_FLEET_STALL.tmp" "$CP_FLEET_STALL"
    n=0
    while [ ! -e "$CP_FLEET_STALL.go" ] && [ $n -lt 6000 ]; do sleep 0.05; n=$((n + 1)); done
fi
exec @HOOK@ "$@"
"""


def write(path, text, mode=None):
    with open(path, "w") as f:
        f.write(text)
    if mode is not None:
        os.chmod(path, mode)


def read(path):
    with open(path) as f:
        return f.read()


def tree_hashes(path):
    """{relative path: sha256 of the content, "-> target" or "dir"} under path;
    renew.lock left out (each run writes its PID there)."""
    out = {}
    for top, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(top, name)
            rel = os.path.relpath(full, path)
            if rel == "renew.lock":
                continue
            if os.path.islink(full):
                out[rel] = "-> " + os.readlink(full)
            elif os.path.isdir(full):
                out[rel] = "dir"
            else:
                with open(full, "rb") as f:
                    out[rel] = hashlib.sha256(f.read()).hexdigest()
    return out


def wait_for(what, ready, procs=(), timeout=WAIT):
    """Poll ready() until true; fail (with the processes' stderr) after timeout."""
    deadline = time.monotonic() + timeout
    while not ready():
        for p in procs:
            if p.poll() is not None:
                raise AssertionError("%s: %s exited %s first:\n%s" % (
                    what, p.label, p.returncode, read(p.stderr_path)))
        if time.monotonic() > deadline:
            raise AssertionError("%s: not after %d s\n%s" % (what, timeout, "\n".join(
                "%s:\n%s" % (p.label, read(p.stderr_path)) for p in procs)))
        time.sleep(0.05)


class FleetCase(FleetLabCase):
    """FleetLabCase with three nodes (0, 1, 2) and a webroot served on
    Pebble's http port."""

    def setUp(self):
        super().setUp()
        self.webroot = os.path.join(self.dir, "www")
        os.mkdir(self.webroot)
        serve_directory(self, self.pebble.http_port, self.webroot)
        self.deploy_sh = os.path.join(self.dir, "deploy.sh")
        write(self.deploy_sh, DEPLOY_SH, 0o755)
        self.procs = []
        self.addCleanup(self.kill_all)

    # -- the nodes

    def state(self, i):
        return os.path.join(self.dir, "node%d" % i)

    def live(self, i, name):
        return os.path.join(self.state(i), "certs", name)

    def store_args(self, i, *extra):
        return ["--store", self.etcd.url(self.prefix), "--store-key-file", self.key,
                "--state-dir", self.state(i)] + list(extra)

    def env(self, extra=None):
        env = dict(os.environ, CHALLTESTSRV_URL=self.pebble.challtestsrv_url)
        env.pop("JOURNAL_STREAM", None)
        env.update(extra or {})
        return env

    def run_node(self, i, *args, expect=0, env=None):
        argv = [CERTPILOT] + list(args) + self.store_args(i)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=240,
                              env=self.env(env))
        proc.argv = argv
        self.assertNotRegex(proc.stderr, r"ERROR: (Address|Leak)Sanitizer|: runtime error: ",
                            self.describe(proc))
        if expect is not None:
            self.assertEqual(proc.returncode, expect, self.describe(proc))
        return proc

    def start_node(self, i, *args, env=None, label=None):
        """Start a node in a process group of its own; stderr to a file."""
        label = label or "node%d" % i
        argv = [CERTPILOT] + list(args) + self.store_args(i)
        stdout_path = os.path.join(self.dir, "%s.out" % label)
        stderr_path = os.path.join(self.dir, "%s.err" % label)
        with open(stdout_path, "w") as out, open(stderr_path, "w") as err:
            p = subprocess.Popen(argv, stdout=out, stderr=err, env=self.env(env),
                                 start_new_session=True)
        p.label, p.argv, p.stdout_path, p.stderr_path = label, argv, stdout_path, stderr_path
        self.procs.append(p)
        return p

    def finish(self, p, expect=0):
        p.wait(timeout=240)
        p.stdout_text, p.stderr_text = read(p.stdout_path), read(p.stderr_path)
        self.assertNotRegex(p.stderr_text, r"ERROR: (Address|Leak)Sanitizer|: runtime error: ",
                            p.stderr_text)
        if expect is not None:
            self.assertEqual(p.returncode, expect, "%s exited %s\nstdout:\n%s\nstderr:\n%s" % (
                " ".join(p.argv), p.returncode, p.stdout_text, p.stderr_text))
        return json.loads(p.stdout_text) if p.stdout_text.strip().startswith("{") else None

    def kill_all(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(10)

    @staticmethod
    def describe(proc):
        return "exit status %s of %s\nstdout:\n%s\nstderr:\n%s" % (
            proc.returncode, " ".join(proc.argv), proc.stdout, proc.stderr)

    def http01(self):
        return ["--webroot", self.webroot, "--resolver", self.pebble.dns_server,
                "--webroot-check-port", str(self.pebble.http_port)]

    def issue(self, i, name, extra=None, expect=0):
        args = ["issue", "--json", "--agree-tos", "-d", name, "--server", self.server,
                "--ca-bundle", self.pebble.ca_bundle, "--caa-preflight", "off"]
        args += self.http01() if extra is None else list(extra)
        proc = self.run_node(i, *args, expect=expect)
        return json.loads(proc.stdout) if expect == 0 else proc

    def orders(self):
        return len(self.pebble.ari_new_orders())

    def cert(self, i, name):
        return read(os.path.join(self.live(i, name), "cert.pem"))

    def deploys(self, log):
        if not os.path.exists(log):
            return []
        return [line.split("\t") for line in read(log).splitlines()]

    @staticmethod
    def result(doc, name):
        return {r["cert_name"]: r for r in doc["results"]}[name]


class ConcurrentRenewal(FleetCase):
    def test_one_order_for_three_forced_renewals(self):
        name = "fleet.example.test"
        doc = self.issue(0, name)
        first = self.cert(0, name)
        self.assertEqual(read(os.path.join(doc["live_dir"], "cert.pem")), first)

        # The two other nodes deploy the lineage when they first look at it,
        # with their deploy hooks, and order nothing: not due.
        before = self.orders()
        for i in (1, 2):
            log = os.path.join(self.dir, "deploy-first-%d.log" % i)
            proc = self.run_node(i, "renew", "--json", "--deploy-hook",
                                 "%s %s" % (self.deploy_sh, log))
            r = self.result(json.loads(proc.stdout), name)
            self.assertEqual(r["outcome"], "renewed_elsewhere", proc.stdout)
            self.assertEqual(self.cert(i, name), first)
            self.assertEqual([d[0] for d in self.deploys(log)], [self.live(i, name)])
        self.assertEqual(self.orders(), before)

        # Three forced renewals at once.
        barrier = os.path.join(self.dir, "barrier")
        os.mkdir(barrier)
        barrier_sh = os.path.join(self.dir, "barrier.sh")
        write(barrier_sh, BARRIER_SH, 0o755)
        logs = [os.path.join(self.dir, "deploy-%d.log" % i) for i in range(NODES)]
        before = self.orders()
        t0 = time.monotonic()
        procs = [self.start_node(i, "renew", "--json", "--force-renewal",
                                 "--pre-hook", "%s %s %d" % (barrier_sh, barrier, i),
                                 "--deploy-hook", "%s %s" % (self.deploy_sh, logs[i]))
                 for i in range(NODES)]

        # One node holds the lock (in its pre-hook); the two others say whose
        # lock they wait for.  Only then may it order.
        def pre_ran():
            return [f for f in os.listdir(barrier) if f.startswith("pre-")]

        wait_for("a node in its pre-hook", lambda: len(pre_ran()) == 1, procs)
        holder = int(pre_ran()[0][len("pre-"):])
        others = [p for i, p in enumerate(procs) if i != holder]
        wait_for("the others waiting for the lock",
                 lambda: all("waiting for the lock of %s, held by" % name in read(p.stderr_path)
                             for p in others), procs)
        write(os.path.join(barrier, "go"), "")
        docs = [self.finish(p) for p in procs]
        elapsed = time.monotonic() - t0

        new_orders = self.orders() - before
        print("\nfigure: %d new order(s) for %d concurrent `renew --force-renewal` "
              "(%.2f s for all three)" % (new_orders, NODES, elapsed))
        self.assertEqual(new_orders, 1)
        outcomes = [self.result(d, name)["outcome"] for d in docs]
        self.assertEqual(outcomes[holder], "renewed", outcomes)
        self.assertEqual(sorted(outcomes), ["renewed", "renewed_elsewhere", "renewed_elsewhere"])
        for i in range(NODES):
            self.assertEqual(docs[i]["exit_status"], 0)
            self.assertEqual(docs[i]["outcome"],
                             "renewed" if i == holder else "renewed_elsewhere")
        # The pre-hook ran on the node that ordered only.
        self.assertEqual(pre_ran(), ["pre-%d" % holder])
        # The same new certificate at every node's stable paths, each node's
        # deploy hook run once for it.
        new = self.cert(holder, name)
        self.assertNotEqual(new, first)
        for i in range(NODES):
            self.assertEqual(self.cert(i, name), new, "node%d" % i)
            self.assertEqual(self.deploys(logs[i]), [[self.live(i, name), name]], "node%d" % i)
            for f in ("privkey.pem", "fullchain.pem", "chain.pem"):
                self.assertEqual(read(os.path.join(self.live(i, name), f)),
                                 read(os.path.join(self.live(holder, name), f)), f)
            # the waiting nodes said whose lock they waited for
            if i != holder:
                self.assertRegex(read(procs[i].stderr_path),
                                 r"waiting for the lock of %s, held by \S+ pid %d"
                                 % (name.replace(".", r"\."), procs[holder].pid))


class ConcurrentAccount(FleetCase):
    def test_one_account_for_three_concurrent_registrations(self):
        """`account register` on three nodes at once (a provisioning run on
        every host): one account between them, and the key every node has is
        the one the CA holds for its URL."""
        procs = [self.start_node(i, "account", "register", "--agree-tos", "--json", "--server",
                                 self.server, "--ca-bundle", self.pebble.ca_bundle)
                 for i in range(3)]
        docs = [self.finish(p) for p in procs]
        self.assertEqual(len({d["url"] for d in docs}), 1, docs)
        self.assertEqual(len({d["thumbprint"] for d in docs}), 1, docs)
        self.assertEqual(sorted(d["outcome"] for d in docs),
                         ["existing", "existing", "registered"], docs)
        for i in range(3):
            shown = json.loads(self.run_node(i, "account", "show", "--json", "--server",
                                             self.server, "--ca-bundle",
                                             self.pebble.ca_bundle).stdout)
            self.assertEqual(shown["url"], docs[0]["url"])
            self.assertEqual(shown["ca_key_thumbprint"], shown["thumbprint"], shown)
        # The lock is gone with the registration.
        locks = self.etcd.etcdctl("get", "--prefix", "--keys-only", "%s/locks/" % self.prefix,
                                  check=True).stdout.split()
        self.assertEqual(locks, [])


class ConcurrentIssue(FleetCase):
    def test_one_order_for_two_issues_of_a_new_name(self):
        """`issue` of a name no host has yet, on two nodes at once: the node
        that gets the lineage lock second finds it issued by the first, and
        leaves it alone (deployed here, with its deploy hook)."""
        name = "new.example.test"
        barrier = os.path.join(self.dir, "barrier")
        os.mkdir(barrier)
        barrier_sh = os.path.join(self.dir, "barrier.sh")
        write(barrier_sh, BARRIER_SH, 0o755)
        logs = [os.path.join(self.dir, "deploy-%d.log" % i) for i in range(2)]
        # One account first, so that the two runs do not both register one.
        self.run_node(0, "account", "register", "--agree-tos", "--server", self.server,
                      "--ca-bundle", self.pebble.ca_bundle)
        before = self.orders()
        procs = [self.start_node(i, "issue", "--json", "--agree-tos", "-d", name, "--server",
                                 self.server, "--ca-bundle", self.pebble.ca_bundle,
                                 "--caa-preflight", "off", *self.http01(),
                                 "--pre-hook", "%s %s %d" % (barrier_sh, barrier, i),
                                 "--deploy-hook", "%s %s" % (self.deploy_sh, logs[i]))
                 for i in range(2)]

        def pre_ran():
            return [f for f in os.listdir(barrier) if f.startswith("pre-")]

        wait_for("a node in its pre-hook", lambda: len(pre_ran()) == 1, procs)
        first = int(pre_ran()[0][len("pre-"):])
        second = 1 - first
        wait_for("the other waiting for the lock",
                 lambda: "waiting for the lock of %s, held by" % name
                 in read(procs[second].stderr_path), procs)
        write(os.path.join(barrier, "go"), "")
        docs = [self.finish(p) for p in procs]
        print("\nfigure: %d new order(s) for 2 concurrent `issue` of a new name"
              % (self.orders() - before))
        self.assertEqual(self.orders() - before, 1)
        self.assertEqual(docs[first]["outcome"], "issued", docs)
        self.assertEqual(docs[second]["outcome"], "unchanged", docs)
        self.assertIn("another host issued it meanwhile", read(procs[second].stderr_path))
        self.assertEqual(pre_ran(), ["pre-%d" % first])
        for i in range(2):
            self.assertEqual(self.cert(i, name), self.cert(first, name))
            self.assertEqual(self.deploys(logs[i]), [[self.live(i, name), name]], "node%d" % i)


class KillTakeover(FleetCase):
    def test_kill_9_mid_order_then_takeover(self):
        name = "takeover.example.test"
        hook = os.path.join(self.dir, "stall-hook.sh")
        write(hook, STALL_HOOK.replace("@HOOK@", CHALLTESTSRV_HOOK), 0o755)
        dns01 = ["--challenge", "dns-01", "--dns-hook", hook, "--dns-timeout", "0"]
        self.issue(0, name, extra=dns01)
        first = self.cert(0, name)
        self.fresh_account(0)  # the renewal must reach deploy_challenge
        self.run_node(1, "renew")  # node1 has the lineage deployed
        self.assertEqual(self.cert(1, name), first)
        node0_files = tree_hashes(self.state(0))

        before = self.orders()
        marker = os.path.join(self.dir, "stalled")
        ttl = ["--store-lock-ttl", "3"]
        a = self.start_node(0, "renew", "--json", "--force-renewal", *ttl,
                            env={"CP_FLEET_STALL": marker})
        wait_for("node0 stalled in its dns-01 hook", lambda: os.path.exists(marker), [a])
        stalled_hook = int(read(marker).strip())
        self.addCleanup(self.kill_pid, stalled_hook)
        self.assertEqual(self.orders(), before + 1)  # node0's order is half way
        log = os.path.join(self.dir, "deploy-1.log")
        b = self.start_node(1, "renew", "--json", "--force-renewal", *ttl,
                            "--deploy-hook", "%s %s" % (self.deploy_sh, log))
        wait_for("node1 waiting for node0's lock",
                 lambda: "waiting for the lock of %s, held by" % name in read(b.stderr_path),
                 [a, b])
        self.assertIn("pid %d" % a.pid, read(b.stderr_path))

        lock_key = "%s/locks/%s" % (self.prefix, name)
        os.killpg(a.pid, signal.SIGKILL)
        t_kill = time.monotonic()
        a.wait(10)

        def lock_holder():
            out = self.etcd.etcdctl("get", lock_key, "--print-value-only")
            return out.stdout.strip() if out.returncode == 0 else ""

        wait_for("node1 holding the lock", lambda: ("pid %d" % b.pid) in lock_holder() or
                 b.poll() is not None, [])
        takeover = time.monotonic() - t_kill
        doc = self.finish(b)
        done = time.monotonic() - t_kill
        print("\nfigure: takeover after kill -9 of the node ordering: lock taken by the waiting "
              "node %.2f s after the kill (--store-lock-ttl 3), its renewal done %.2f s after "
              "the kill" % (takeover, done))
        self.assertEqual(self.result(doc, name)["outcome"], "renewed")
        self.assertEqual(self.orders(), before + 2)  # node0's abandoned order, node1's
        new = self.cert(1, name)
        self.assertNotEqual(new, first)
        self.assertEqual(self.deploys(log), [[self.live(1, name), name]])
        # node0 died before storing anything: its files are as they were,
        # and its next run deploys node1's certificate.
        self.maxDiff = None
        self.assertEqual(tree_hashes(self.state(0)), node0_files)
        proc = self.run_node(0, "renew", "--json")
        self.assertEqual(self.result(json.loads(proc.stdout), name)["outcome"],
                         "renewed_elsewhere")
        self.assertEqual(self.cert(0, name), new)
        self.assertEqual(self.orders(), before + 2)

    @staticmethod
    def kill_pid(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class LockLost(FleetCase):
    def test_lease_lost_mid_order_stores_nothing(self):
        """A node whose lease ran out while it was stopped (SIGSTOP, as a host
        that hangs) finds its lock gone before finalize: it stops, finalizes
        nothing, writes nothing, exits 75."""
        name = "lost.example.test"
        hook = os.path.join(self.dir, "stall-hook.sh")
        write(hook, STALL_HOOK.replace("@HOOK@", CHALLTESTSRV_HOOK), 0o755)
        self.issue(0, name, extra=["--challenge", "dns-01", "--dns-hook", hook,
                                   "--dns-timeout", "0"])
        first = self.cert(0, name)
        self.fresh_account(0)  # the renewal must reach deploy_challenge
        node0_files = tree_hashes(self.state(0))
        current_key = "%s/lineages/%s/current" % (self.prefix, name)
        lock_key = "%s/locks/%s" % (self.prefix, name)
        current = self.etcd.etcdctl("get", current_key, "--print-value-only", check=True).stdout

        marker = os.path.join(self.dir, "stalled")
        exchanges = len(self.pebble.ari_exchanges())
        a = self.start_node(0, "renew", "--json", "--force-renewal", "--store-lock-ttl", "5",
                            env={"CP_FLEET_STALL": marker})
        wait_for("node0 in its dns-01 hook", lambda: os.path.exists(marker), [a])
        self.assertIn("pid %d" % a.pid, self.etcd.etcdctl(
            "get", lock_key, "--print-value-only", check=True).stdout)
        # Stopped until etcd has dropped its lease (the lock key goes with it).
        os.killpg(a.pid, signal.SIGSTOP)
        self.addCleanup(lambda: a.poll() is None and os.killpg(a.pid, signal.SIGCONT))
        wait_for("node0's lease expired", lambda: self.etcd.etcdctl(
            "get", lock_key, "--print-value-only", check=True).stdout.strip() == "", [])
        write(marker + ".go", "")
        os.killpg(a.pid, signal.SIGCONT)
        doc = self.finish(a, expect=75)
        r = self.result(doc, name)
        self.assertEqual((r["outcome"], r["exit_status"]), ("lock_lost", 75), doc)
        self.assertRegex(read(a.stderr_path), r"lock of \"%s\" was lost before finalize"
                         % name.replace(".", r"\."))
        # Validated, never finalized; nothing written, here or in etcd.
        sent = self.pebble.ari_exchanges()[exchanges:]
        self.assertEqual([e for e in sent if "/finalize-order/" in e["path"]], [], sent)
        self.assertEqual(len([e for e in sent if e["method"] == "POST" and
                              "/chalZ/" in e["path"]]), 1, sent)
        self.assertEqual(tree_hashes(self.state(0)), node0_files)
        self.assertEqual(self.cert(0, name), first)
        self.assertEqual(self.etcd.etcdctl("get", current_key, "--print-value-only",
                                           check=True).stdout, current)


class MemberLoss(FleetCase):
    def restart(self, i):
        try:
            self.etcd.start_member(i)
        except Exception:  # already running
            pass

    def test_one_member_down_then_two(self):
        name = "quorum.example.test"
        self.issue(0, name)
        first = self.cert(0, name)

        # One of three down (the first endpoint of the URL): still a quorum.
        self.etcd.stop_member(0)
        self.addCleanup(self.restart, 0)
        proc = self.run_node(1, "renew", "--json", "--force-renewal")
        self.assertEqual(self.result(json.loads(proc.stdout), name)["outcome"], "renewed")
        self.assertNotEqual(self.cert(1, name), first)
        doc = self.issue(2, "quorum2.example.test")
        self.assertEqual(doc["cert_name"], "quorum2.example.test")
        proc = self.run_node(0, "renew", "--json")
        self.assertEqual(self.result(json.loads(proc.stdout), name)["outcome"],
                         "renewed_elsewhere")
        self.assertEqual(self.cert(0, name), self.cert(1, name))

        # Two of three down: no quorum.  Clear errors, exit 69, no local change.
        self.etcd.stop_member(1)
        self.addCleanup(self.restart, 1)
        before = {i: tree_hashes(self.state(i)) for i in range(NODES)}
        orders = self.orders()
        proc = self.run_node(0, "renew", "--force-renewal", expect=69)
        print("\nwith two of three etcd members stopped, renew says:\n" + proc.stderr)
        self.assertIn("etcd", proc.stderr)
        for endpoint in self.etcd.endpoints:
            self.assertIn(endpoint.split("//")[-1], proc.stderr)
        proc = self.run_node(1, "issue", "--agree-tos", "-d", "quorum3.example.test",
                             "--server", self.server, "--ca-bundle", self.pebble.ca_bundle,
                             "--caa-preflight", "off", *self.http01(), expect=69)
        self.assertIn("etcd", proc.stderr)
        proc = self.run_node(2, "renew", "--json", "--force-renewal", expect=69)
        self.assertEqual(json.loads(proc.stdout)["exit_status"], 69)
        self.assertEqual({i: tree_hashes(self.state(i)) for i in range(NODES)}, before)
        self.assertEqual(self.orders(), orders)


if __name__ == "__main__":
    unittest.main(verbosity=2)
