#!/usr/bin/python3
"""`certpilot renew` and `certpilot list` (issue 5) end to end against Pebble.

Every class runs one lab and one Pebble; each test starts from a copy of a
state dir in which an account was registered once for the class, issues its
certificates with `certpilot issue` (which writes renewal.conf), and renews
them with `certpilot renew`.  A step that must answer a challenge (one the
test broke, or one whose hook it watches) first gives the state dir an account
of its own that has validated nothing (RenewCase.fresh_account()), so that no
valid authorization Pebble may reuse lets it pass without one.  Pebble issues
5-year certificates here, so a fresh one is not due unless the test forces it
or the class makes Pebble issue short-lived ones (ShortLived).  That nothing
was ordered is read from Pebble's own request log ("POST /order-plz") since
the run started.

- Renew: not due / forced / pre-, post- and deploy hooks (given and
  stored) / one of two failing / a bad renewal.conf / two runs at once and
  the lock / kill -9 at three points / the dehydrated example hook through
  dns-01 / journald priorities and --quiet / a defaults file (--config) /
  --cert-name and --dry-run.  Every run is checked for sanitizer reports
  (an ASan or LSan report exits 1 too, which could pass for a failure).
- ShortLived: a certificate is renewed when half its life is gone (under 10
  days), and not again right after; list warns that the timer is too slow.
- CaaAfterIssuance: the CAA preflight before every renewal order: a record
  set added after issuance stops the renewal before the CA is asked; a
  zone whose DNSSEC is broken is a DNS error.

The contract is /work/coord/issue5-contract.md; ARI is tests/integration/test_renew_ari.py.
"""

import calendar
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
from cplab import Lab, free_port  # noqa: E402

CERTPILOT = os.path.abspath(os.environ.get("CERTPILOT", os.path.join(ROOT, "build", "certpilot")))
CHALLTESTSRV_HOOK = os.path.join(ROOT, "hooks", "examples", "dns-challtestsrv.sh")
CA_ID = "pebble.test"
OUTCOMES = {"not_due", "renewed", "failed", "caa_refused", "caa_dns_error", "config_error",
            "deploy_hook_failed", "dry_run", "webroot_check_failed", "refused",
            "profile_not_offered"}
# A certificate has the same fields in `list --json` and `renew --json`; renew
# adds how its run for that certificate ended.
LIST_KEYS = {"cert_name", "names", "not_after", "days_left", "renew_at", "due", "why",
             "last_result", "last_attempt", "last_message", "profile"}
RESULT_KEYS = LIST_KEYS | {"outcome", "exit_status", "message"}
# only on the certificates they describe
OPTIONAL_KEYS = {"revoked", "unsafe", "window_warning"}
TIMESTAMP = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"

# hook.sh LOG LABEL [SECONDS]: a line when it starts (with RENEWED_*), one when it ends.
HOOK_SH = r"""#!/bin/sh
log=$1 label=$2
printf '%s\tstart\t%s\t%s\t%s\t%s\n' "$label" "$(date +%s.%N)" "$$" \
    "${RENEWED_LINEAGE-<unset>}" "${RENEWED_DOMAINS-<unset>}" >>"$log"
if [ -n "${3-}" ]; then sleep "$3"; fi
printf '%s\tend\t%s\t%s\n' "$label" "$(date +%s.%N)" "$$" >>"$log"
"""

# waiter.sh LOG LABEL FILE: says so, then waits until FILE exists (a lock
# holder that lets go when the test says, not after a guessed time).
WAITER_SH = r"""#!/bin/sh
printf '%s\tstart\t%s\t%s\n' "$2" "$(date +%s.%N)" "$$" >>"$1"
while [ ! -e "$3" ]; do sleep 0.05; done
"""

# sleeper.sh LOG LABEL: says so, then becomes `sleep 60` (same PID).
SLEEPER_SH = r"""#!/bin/sh
printf '%s\tstart\t%s\t%s\n' "$2" "$(date +%s.%N)" "$$" >>"$1"
exec sleep 60
"""

# A dehydrated hook that logs its argv (tab-separated), whether the files it
# is given exist, then runs the example challtestsrv hook.  With the file
# STALL next to it, deploy_challenge logs and sleeps instead; with NOPUBLISH,
# deploy_challenge publishes nothing.
DEHYDRATED_WRAPPER = r"""#!/bin/sh
dir=$(dirname "$0")
log="$dir/dehydrated.log"
cmd=$1
shift
line=$cmd
for a in "$@"; do line="$line	$a"; done
printf '%s\n' "$line" >>"$log"
case $cmd in
deploy_cert | unchanged_cert)
    for f in "$2" "$3" "$4" "$5"; do
        if [ -s "$f" ]; then state=exists; else state=missing; fi
        printf '%s\t%s\n' "$state" "$f" >>"$log"
    done ;;
deploy_challenge)
    if [ -e "$dir/STALL" ]; then
        printf 'stalled\t%s\n' "$$" >>"$log"
        exec sleep 60
    fi
    if [ -e "$dir/NOPUBLISH" ]; then exit 0; fi ;;
esac
exec @HOOK@ "$cmd" "$@"
"""


def openssl(*args):
    return subprocess.run(["openssl"] + list(args), capture_output=True, text=True, timeout=30)


def with_asan_option(env, option):
    """env with `option` added to ASAN_OPTIONS (replacing the same key)."""
    parts = [p for p in env.get("ASAN_OPTIONS", "").split(":") if p]
    key = option.split("=")[0]
    parts = [p for p in parts if p.split("=")[0] != key] + [option]
    return dict(env, ASAN_OPTIONS=":".join(parts))


def file_tree(path, skip=("status.json",)):
    """{relative path: symlink target, "dir", or sha256 of the content} under path."""
    out = {}
    for top, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(top, name)
            rel = os.path.relpath(full, path)
            if rel in skip:
                continue
            if os.path.islink(full):
                out[rel] = "-> " + os.readlink(full)
            elif os.path.isdir(full):
                out[rel] = "dir"
            else:
                with open(full, "rb") as f:
                    out[rel] = hashlib.sha256(f.read()).hexdigest()
    return out


def read(path):
    with open(path) as f:
        return f.read()


def write(path, text, mode=None):
    with open(path, "w") as f:
        f.write(text)
    if mode is not None:
        os.chmod(path, mode)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


class RenewCase(unittest.TestCase):
    """One lab and one Pebble per class; a fresh copy of the class's account
    state per test, and helpers to issue, renew and look at the result."""

    pebble_env = {"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
    validity = None
    ari = False  # True: Pebble behind the ARI proxy, used through ari_directory_url
    profiles = None  # True: the proxy also advertises Let's Encrypt's profiles

    @classmethod
    def declare_zones(cls, lab):
        pass

    @classmethod
    def setUpClass(cls):
        cls.lab = Lab()
        cls.addClassCleanup(cls.lab.close)
        cls.declare_zones(cls.lab)
        cls.lab.start()
        cls.pebble = cls.lab.pebble(env=cls.pebble_env, validity=cls.validity, ari=cls.ari,
                                    profiles=cls.profiles)
        proxied = cls.ari or cls.profiles
        cls.server = cls.pebble.ari_directory_url if proxied else cls.pebble.directory_url
        cls.class_tmp = tempfile.mkdtemp(prefix="cptest-renew-")
        cls.addClassCleanup(shutil.rmtree, cls.class_tmp, ignore_errors=True)
        cls.account_state = os.path.join(cls.class_tmp, "account-state")
        proc = subprocess.run([CERTPILOT, "account", "register", "--agree-tos", "--server",
                               cls.server, "--ca-bundle", cls.pebble.ca_bundle,
                               "--state-dir", cls.account_state],
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError("account register: %s%s" % (proc.stdout, proc.stderr))

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="cptest-")
        self.addCleanup(self.tmp.cleanup)
        self.state = os.path.join(self.tmp.name, "state")
        shutil.copytree(self.account_state, self.state, symlinks=True)
        self.hook = os.path.join(self.tmp.name, "hook.sh")
        write(self.hook, HOOK_SH, 0o755)
        self.hook_log = os.path.join(self.tmp.name, "hooks.log")

    # -- running certpilot

    def pebble_log_size(self):
        return os.path.getsize(self.pebble.log)

    def pebble_log_since(self, offset):
        with open(self.pebble.log, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def run_env(self, env=None):
        run_env = dict(os.environ, CHALLTESTSRV_URL=self.pebble.challtestsrv_url)
        run_env.pop("JOURNAL_STREAM", None)  # ctest under systemd: not our stderr anyway
        run_env.update(env or {})
        return run_env

    def certpilot(self, *args, expect=0, env=None, json_out=False, wrap=(), stderr=None,
                  timeout=120):
        """Run certpilot; proc.pebble_log is what Pebble logged meanwhile, proc.doc
        the JSON on stdout (json_out)."""
        argv = list(wrap) + [CERTPILOT] + list(args)
        offset = self.pebble_log_size()
        proc = subprocess.run(argv, stdout=subprocess.PIPE,
                              stderr=stderr if stderr is not None else subprocess.PIPE,
                              text=True, timeout=timeout, env=self.run_env(env))
        if stderr is not None:
            stderr.seek(0)
            proc.stderr = stderr.read()
            if isinstance(proc.stderr, bytes):
                proc.stderr = proc.stderr.decode(errors="replace")
        proc.pebble_log = self.pebble_log_since(offset)
        proc.argv = argv
        proc.doc = None
        if expect is not None:
            self.assert_no_sanitizer_report(proc)
            self.assertEqual(proc.returncode, expect, self.describe(proc))
        if json_out:
            try:
                proc.doc = json.loads(proc.stdout)
            except ValueError as e:
                if expect is not None:  # else the caller looks at proc.returncode
                    self.fail("stdout is not JSON (%s)\n%s" % (e, self.describe(proc)))
        return proc

    def assert_no_sanitizer_report(self, proc):
        """ASan/LSan/UBSan exit 1 too: a report is never an expected exit status."""
        self.assertNotRegex(proc.stderr, r"ERROR: (Address|Leak)Sanitizer|: runtime error: ",
                            self.describe(proc))

    @staticmethod
    def describe(proc):
        return "exit status %s of %s\nstdout:\n%s\nstderr:\n%s" % (
            proc.returncode, " ".join(proc.argv), proc.stdout, proc.stderr)

    def ca_args(self):
        return ["--server", self.server, "--ca-bundle", self.pebble.ca_bundle]

    def http(self):
        return ["--standalone", "--http-port", str(self.pebble.http_port)]

    def issue_args(self):
        """Extra issue options of the class (the CAA classes add the preflight's)."""
        return ["--caa-preflight", "off"]

    def issue(self, *names, extra=None, expect=0):
        """Issue names (the first is the cert name) with http-01; the JSON document."""
        args = ["issue", "--json"] + sum((["-d", n] for n in names), []) + self.ca_args()
        args += self.issue_args() + (self.http() if extra is None else list(extra))
        args += ["--state-dir", self.state]
        proc = self.certpilot(*args, expect=expect, json_out=expect == 0)
        return proc.doc if expect == 0 else proc

    def renew(self, *args, expect=0, json_out=True, **kw):
        argv = ["renew", "--state-dir", self.state] + list(args)
        if json_out:
            argv.append("--json")
        proc = self.certpilot(*argv, expect=expect, json_out=json_out, **kw)
        if json_out and proc.doc is not None:
            self.assert_renew_doc(proc.doc)
        return proc

    def list_json(self):
        proc = self.certpilot("list", "--json", "--state-dir", self.state)
        doc = json.loads(proc.stdout)
        self.assertEqual((doc["outcome"], doc["exit_status"]), ("listed", 0))
        self.assertEqual(doc["certificates"], len(doc["results"]))
        for entry in doc["results"]:
            self.assertEqual(set(entry) - OPTIONAL_KEYS, LIST_KEYS, entry)
        return {e["cert_name"]: e for e in doc["results"]}

    def fresh_account(self):
        """Replace the state dir's account with a new one, which has validated
        nothing yet.  For a step that must answer a challenge (one the test
        broke, or one whose hook it watches): with the class's account, which
        validated the names when they were issued, Pebble 2.4 hands the new
        order that valid authorization about 1 time in 100 even with
        PEBBLE_AUTHZREUSE=0 (tests/lab/README.md), and no challenge is tried.
        Every certificate of the state dir renews with the new account (one
        account per CA in a state dir)."""
        accounts = os.path.join(self.state, "accounts")
        shutil.rmtree(accounts)
        self.certpilot("account", "register", "--agree-tos", *self.ca_args(),
                       "--state-dir", self.state)
        self.assertEqual(len(os.listdir(accounts)), 1)

    # -- looking at the state dir

    def live(self, name):
        return os.path.join(self.state, "certs", name)

    def current(self, name):
        return os.readlink(os.path.join(self.live(name), "current"))

    def versions(self, name):
        return sorted(os.listdir(os.path.join(self.live(name), "versions")))

    def status(self, name):
        return json.loads(read(os.path.join(self.live(name), "status.json")))

    def not_after(self, name):
        """The current certificate's notAfter as YYYY-MM-DDTHH:MM:SSZ (openssl)."""
        out = openssl("x509", "-in", os.path.join(self.live(name), "cert.pem"), "-noout",
                      "-enddate", "-dateopt", "iso_8601").stdout
        return out.strip().split("=", 1)[1].replace(" ", "T")

    def renewal_conf(self, name):
        return os.path.join(self.live(name), "renewal.conf")

    def hook_lines(self):
        """The hook log as (label, event, time, pid, lineage, domains) tuples."""
        if not os.path.exists(self.hook_log):
            return []
        out = []
        for line in read(self.hook_log).splitlines():
            f = line.split("\t")
            out.append((f[0], f[1], float(f[2]), int(f[3]), f[4] if len(f) > 4 else None,
                        f[5] if len(f) > 5 else None))
        return out

    def waiter(self, label):
        """A pre-hook that holds the run (and its lock) until release() is called;
        (hook command, release)."""
        path = os.path.join(self.tmp.name, "waiter.sh")
        if not os.path.exists(path):
            write(path, WAITER_SH, 0o755)
        go = os.path.join(self.tmp.name, "release-" + label)

        def release():
            write(go, "")
        self.addCleanup(release)  # never leave a run waiting
        return "%s %s %s %s" % (path, self.hook_log, label, go), release

    def wait_for(self, what, predicate, timeout=30):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.fail("timed out waiting for " + what)
            time.sleep(0.05)

    # -- assertions

    def assert_renew_doc(self, doc):
        self.assertIsInstance(doc, dict)
        self.assertEqual(set(doc) - {"error"}, {"outcome", "exit_status", "dry_run",
                                                "certificates", "attempted", "failed", "results"},
                         doc)
        self.assertEqual(doc["exit_status"] != 0, "error" in doc, doc)
        self.assertEqual(doc["certificates"], len(doc["results"]))
        for r in doc["results"]:
            # a dry run also says which: "check" or "order", and, for a
            # certificate with an ARI id, what a real run would replace
            dry = {"dry_run", "replaces"} if doc["dry_run"] else set()
            self.assertEqual(set(r) - OPTIONAL_KEYS - dry, RESULT_KEYS, r)
            if doc["dry_run"] and r["outcome"] != "config_error":
                self.assertIn(r["dry_run"], ("check", "order"), r)
            self.assertIn(r["outcome"], OUTCOMES)
            self.assertIsInstance(r["names"], list)
            self.assertIsInstance(r["due"], bool)
            if r["outcome"] == "config_error":  # never judged
                self.assertIsNone(r["renew_at"], r)
            else:
                self.assertRegex(r["renew_at"], TIMESTAMP)
            self.assertIsInstance(r["why"], str)
            if r["outcome"] != "config_error":  # never judged
                self.assertTrue(r["why"], r)
        self.assertEqual(doc["attempted"],
                         sum(1 for r in doc["results"] if r["outcome"] != "not_due"))

    @staticmethod
    def results(doc):
        return {r["cert_name"]: r for r in doc["results"]}

    def assert_nothing_ordered(self, proc):
        self.assertNotIn("order-plz", proc.pebble_log, "newOrder in Pebble's log\n"
                         + self.describe(proc))
        self.assertNotIn("order-plz", proc.stderr)

    def assert_pair(self, name):
        """The stable paths hold a certificate and its own key; fullchain starts with it."""
        live = self.live(name)
        pub_cert = openssl("x509", "-in", os.path.join(live, "cert.pem"), "-noout", "-pubkey")
        pub_key = openssl("pkey", "-in", os.path.join(live, "privkey.pem"), "-pubout")
        self.assertEqual(pub_cert.returncode, 0, pub_cert.stderr)
        self.assertEqual(pub_key.returncode, 0, pub_key.stderr)
        self.assertEqual(pub_cert.stdout, pub_key.stdout, "key and certificate do not match")
        self.assertTrue(read(os.path.join(live, "fullchain.pem")).startswith(
            read(os.path.join(live, "cert.pem"))))
        text = openssl("x509", "-in", os.path.join(live, "cert.pem"), "-noout", "-text").stdout
        return text


class Renew(RenewCase):
    """renew against a Pebble with 5-year certificates."""

    def test_fresh_certificate_is_not_renewed(self):
        self.issue("fresh.example.test", "www.fresh.example.test")
        before = file_tree(self.live("fresh.example.test"))
        current = self.current("fresh.example.test")
        proc = self.renew("-v")
        self.assertEqual(proc.doc["certificates"], 1)
        self.assertEqual(proc.doc["attempted"], 0)
        self.assertEqual(proc.doc["failed"], 0)
        self.assertIs(proc.doc["dry_run"], False)
        r = proc.doc["results"][0]
        self.assertEqual(r["cert_name"], "fresh.example.test")
        self.assertEqual(r["names"], ["fresh.example.test", "www.fresh.example.test"])
        self.assertEqual((r["outcome"], r["exit_status"], r["due"]), ("not_due", 0, False))
        self.assertIn("third", r["why"])  # Pebble has no ARI: judged by lifetime
        self.assert_nothing_ordered(proc)
        self.assertEqual(self.current("fresh.example.test"), current)
        self.assertEqual(file_tree(self.live("fresh.example.test")), before)
        # Text and quiet: nothing at all when nothing is due.
        text = self.renew(json_out=False)
        self.assertIn("fresh.example.test", text.stdout)
        self.assertIn("not_due", text.stdout)
        quiet = self.renew("--quiet", json_out=False)
        self.assertEqual((quiet.stdout, quiet.stderr), ("", ""))
        self.assert_nothing_ordered(quiet)
        self.assertEqual(file_tree(self.live("fresh.example.test")), before)
        # list agrees: not due, renews when a third of the life is left.
        entry = self.list_json()["fresh.example.test"]
        self.assertIs(entry["due"], False)
        self.assertEqual(entry["renew_at"], r["renew_at"])
        self.assertEqual(entry["last_result"], "issued")
        self.assertGreater(entry["days_left"], 365)
        self.assertEqual(entry["not_after"], self.not_after("fresh.example.test"))

    def test_certificate_facts_cached_in_status(self):
        # renew keeps what it read of the certificate in status.json, keyed by
        # the current version; list and dry runs never write it, and an entry
        # about another version is not trusted.
        c = "cache.example.test"
        self.issue(c)
        path = os.path.join(self.live(c), "status.json")
        issued = read(path)
        self.assertNotIn("certificate", self.status(c))
        self.assertEqual(self.list_json()[c]["not_after"], self.not_after(c))
        self.renew("--dry-run=check")
        self.assertEqual(read(path), issued)  # neither list nor a dry run wrote it
        self.renew()
        entry = self.status(c)["certificate"]
        self.assertTrue(entry["version"].startswith(self.current(c)[len("versions/"):] + " "))
        self.assertEqual(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry["not_after"])),
                         self.not_after(c))
        # An entry naming another version, with a wrong expiry: read again.
        st = self.status(c)
        st["certificate"]["version"] = "20000101T000000.000000000Z 1 1 1.0"
        st["certificate"]["not_after"] += 86400 * 1000
        write(path, json.dumps(st))
        stale = read(path)
        self.assertEqual(self.list_json()[c]["not_after"], self.not_after(c))
        self.assertEqual(read(path), stale)
        r = self.renew().doc["results"][0]
        self.assertEqual(r["not_after"], self.not_after(c))
        self.assertEqual(self.status(c)["certificate"], entry)  # refreshed

    def test_not_due_result_has_the_expiry(self):
        # A monitoring script reads the current expiry from renew --json too.
        self.issue("expiry.example.test")
        proc = self.renew()
        r = proc.doc["results"][0]
        self.assertEqual(r["outcome"], "not_due")
        self.assertEqual(r["not_after"], self.not_after("expiry.example.test"))

    def test_force_renewal_with_hooks(self):
        names = {"one.example.test": ["one.example.test", "www.one.example.test"],
                 "two.example.test": ["two.example.test"]}
        for n in names.values():
            self.issue(*n)
        old = {c: (self.current(c), file_tree(os.path.join(self.live(c), self.current(c))))
               for c in names}
        hooks = ["--pre-hook", "%s %s pre" % (self.hook, self.hook_log),
                 "--post-hook", "%s %s post" % (self.hook, self.hook_log),
                 "--deploy-hook", "%s %s deploy" % (self.hook, self.hook_log)]
        proc = self.renew("--force-renewal", *hooks)
        self.assertEqual((proc.doc["attempted"], proc.doc["failed"]), (2, 0))
        for c, n in names.items():
            r = self.results(proc.doc)[c]
            self.assertEqual((r["outcome"], r["exit_status"], r["due"]), ("renewed", 0, True))
            self.assertEqual(r["names"], n)
            self.assertRegex(r["not_after"], TIMESTAMP)
            # A new version is current; the old one is kept as it was.
            self.assertNotEqual(self.current(c), old[c][0])
            self.assertEqual(len(self.versions(c)), 2)
            self.assertEqual(file_tree(os.path.join(self.live(c), old[c][0])), old[c][1])
            text = self.assert_pair(c)
            for name in n:
                self.assertIn("DNS:" + name, text)
            self.assertEqual(self.status(c)["last_result"], "renewed")
        self.assertEqual(proc.pebble_log.count("POST /order-plz"), 2)
        lines = self.hook_lines()
        starts = [(label, lineage, domains) for label, ev, _, _, lineage, domains in lines
                  if ev == "start"]
        self.assertEqual([s[0] for s in starts], ["pre", "deploy", "deploy", "post"], lines)
        deploys = sorted(s[1:] for s in starts if s[0] == "deploy")
        self.assertEqual(deploys, sorted((self.live(c), " ".join(n)) for c, n in names.items()))
        # Nothing due: no hook at all.
        os.unlink(self.hook_log)
        proc = self.renew(*hooks)
        self.assertEqual(proc.doc["attempted"], 0)
        self.assertEqual(self.hook_lines(), [])

    def test_stored_deploy_hook_and_its_replacement(self):
        c = "stored.example.test"
        self.issue(c, extra=self.http() + ["--deploy-hook",
                                           "%s %s stored" % (self.hook, self.hook_log)])
        self.assertIn("deploy-hook = %s %s stored" % (self.hook, self.hook_log),
                      read(self.renewal_conf(c)))
        os.unlink(self.hook_log)  # issue ran it
        self.renew("--force-renewal")
        starts = [(label, lineage, domains) for label, ev, _, _, lineage, domains
                  in self.hook_lines() if ev == "start"]
        self.assertEqual(starts, [("stored", self.live(c), c)])
        # --deploy-hook replaces the stored one.
        os.unlink(self.hook_log)
        self.renew("--force-renewal", "--deploy-hook", "%s %s given" % (self.hook, self.hook_log))
        self.assertEqual([l[0] for l in self.hook_lines() if l[1] == "start"], ["given"])
        # A failing deploy hook: the new certificate stays, the run fails.
        current = self.current(c)
        proc = self.renew("--force-renewal", "--deploy-hook", "/bin/false", expect=1)
        r = proc.doc["results"][0]
        self.assertEqual(r["outcome"], "deploy_hook_failed")
        self.assertNotEqual(r["exit_status"], 0)
        self.assertNotEqual(self.current(c), current)
        self.assert_pair(c)

    def break_http_port(self, name):
        """Point the certificate's renewal.conf at a port Pebble does not validate,
        and give the state dir a fresh account (fresh_account()), so that the
        renewal cannot pass without answering the broken challenge."""
        conf = self.renewal_conf(name)
        text = read(conf)
        self.assertIn("http-port = %d\n" % self.pebble.http_port, text)
        write(conf, text.replace("http-port = %d\n" % self.pebble.http_port,
                                 "http-port = %d\n" % free_port(udp=False)))
        self.fresh_account()

    def test_one_failing_certificate_does_not_stop_the_other(self):
        self.issue("good.example.test")
        self.issue("bad.example.test")
        self.break_http_port("bad.example.test")
        bad_before = file_tree(self.live("bad.example.test"))
        good_current = self.current("good.example.test")
        proc = self.renew("--force-renewal", expect=1)
        self.assertEqual((proc.doc["certificates"], proc.doc["attempted"], proc.doc["failed"]),
                         (2, 2, 1))
        good = self.results(proc.doc)["good.example.test"]
        bad = self.results(proc.doc)["bad.example.test"]
        self.assertEqual((good["outcome"], good["exit_status"]), ("renewed", 0))
        self.assertEqual(bad["outcome"], "failed")
        self.assertNotEqual(bad["exit_status"], 0)
        self.assertIn("bad.example.test", bad["message"])
        self.assertNotEqual(self.current("good.example.test"), good_current)
        self.assert_pair("good.example.test")
        # The failed one: every file byte for byte as before.
        self.assertEqual(file_tree(self.live("bad.example.test")), bad_before)
        self.assert_pair("bad.example.test")
        status = self.status("bad.example.test")
        self.assertEqual(status["last_result"], "failed")
        self.assertTrue(status["last_message"])
        entry = self.list_json()["bad.example.test"]
        self.assertEqual(entry["last_result"], "failed")
        self.assertEqual(entry["last_message"], bad["message"])
        self.assertRegex(entry["last_attempt"], TIMESTAMP)
        self.assertEqual(self.list_json()["good.example.test"]["last_result"], "renewed")
        # The text summary names both, and the failure on stderr.
        text = self.renew("--force-renewal", json_out=False, expect=1)
        lines = {line.split()[0]: line for line in text.stdout.splitlines() if line.strip()}
        self.assertIn("renewed", lines["good.example.test"])
        self.assertIn("failed", lines["bad.example.test"])
        self.assertIn("bad.example.test", text.stderr)
        self.assertIn("1 of 2", text.stderr)
        self.assertEqual(file_tree(self.live("bad.example.test")), bad_before)

    def add_unknown_key(self, name):
        conf = self.renewal_conf(name)
        text = read(conf)
        write(conf, text + "frobnicate = yes\n")
        return conf, len(text.splitlines()) + 1

    def test_unknown_key_in_renewal_conf(self):
        self.issue("conf.example.test")
        self.issue("other.example.test")
        conf, line = self.add_unknown_key("conf.example.test")
        before = file_tree(self.live("conf.example.test"))
        proc = self.renew("--force-renewal", expect=1)
        bad = self.results(proc.doc)["conf.example.test"]
        self.assertEqual(bad["outcome"], "config_error")
        self.assertNotEqual(bad["exit_status"], 0)
        self.assertIn("%s:%d" % (conf, line), proc.stderr)
        self.assertIn("frobnicate", proc.stderr)
        self.assertEqual(self.results(proc.doc)["other.example.test"]["outcome"], "renewed")
        self.assertEqual(proc.pebble_log.count("POST /order-plz"), 1)
        self.assertEqual(file_tree(self.live("conf.example.test")), before)
        # Not due, without --force-renewal: still a configuration error, not "not due".
        proc = self.renew(expect=1)
        self.assertEqual(self.results(proc.doc)["conf.example.test"]["outcome"], "config_error")
        self.assertEqual(self.results(proc.doc)["other.example.test"]["outcome"], "not_due")

    def test_unknown_key_is_named_in_the_result_and_in_list(self):
        # Regression: the JSON "message" said only "its settings cannot be used
        # (above)", without FILE:LINE, and status.json/list kept "issued" as if
        # renewal had never been tried.
        self.issue("conf.example.test")
        conf, line = self.add_unknown_key("conf.example.test")
        proc = self.renew("--force-renewal", expect=1)
        bad = self.results(proc.doc)["conf.example.test"]
        entry = self.list_json()["conf.example.test"]
        self.assertIn("%s:%d" % (conf, line), bad["message"])
        self.assertEqual(entry["last_result"], "config_error")
        self.assertIn("%s:%d" % (conf, line), entry["last_message"])

    def test_concurrent_runs_are_serialized(self):
        c = "lock.example.test"
        self.issue(c)

        def start(label, *extra):
            argv = [CERTPILOT, "renew", "--state-dir", self.state, "--force-renewal",
                    "--pre-hook", "%s %s pre-%s 2" % (self.hook, self.hook_log, label),
                    "--post-hook", "%s %s post-%s" % (self.hook, self.hook_log, label)]
            return subprocess.Popen(argv + list(extra), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=self.run_env())

        first = start("A")
        self.wait_for("the first run's pre-hook",
                      lambda: any(l[0] == "pre-A" for l in self.hook_lines()))
        second = start("B")
        outs = [p.communicate(timeout=120) for p in (first, second)]
        for out in outs:
            self.assertNotRegex(out[1], r"ERROR: (Address|Leak)Sanitizer|: runtime error: ")
        self.assertEqual(first.returncode, 0, outs[0])
        self.assertEqual(second.returncode, 0, outs[1])
        ev = {(l[0], l[1]): l[2] for l in self.hook_lines()}
        self.assertEqual(len(ev), 8, self.hook_lines())
        self.assertLessEqual(ev[("post-A", "end")], ev[("pre-B", "start")], self.hook_lines())
        self.assertEqual(len(self.versions(c)), 3)  # both renewed, one after the other
        self.assert_pair(c)

        # --lock-timeout 0: the second gives up at once, naming the lock and its holder.
        # The first holds the lock until the test releases it.
        os.unlink(self.hook_log)
        holder, release = self.waiter("pre-C")
        first = subprocess.Popen([CERTPILOT, "renew", "--state-dir", self.state,
                                  "--force-renewal", "--pre-hook", holder],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=self.run_env())
        try:
            self.wait_for("the first run's pre-hook",
                          lambda: any(l[0] == "pre-C" for l in self.hook_lines()))
            t0 = time.monotonic()
            proc = self.renew("--force-renewal", "--lock-timeout", "0",
                              "--pre-hook", "%s %s never" % (self.hook, self.hook_log),
                              json_out=False, expect=75)
            self.assertLess(time.monotonic() - t0, 1.5)
            self.assertIn(os.path.join(self.state, "renew.lock"), proc.stderr)
            self.assertIn(str(first.pid), proc.stderr)  # who holds it
            self.assertIsNone(first.poll(), "the first run ended too early for the test")
        finally:
            release()
            out = first.communicate(timeout=120)
        self.assertEqual(first.returncode, 0, out)
        self.assertNotIn("never", [l[0] for l in self.hook_lines()])
        self.assertEqual(len(self.versions(c)), 4)

    def test_lock_timeout_waits_that_long(self):
        # Regression: cli_state_lock() compared whole seconds of CLOCK_MONOTONIC,
        # so --lock-timeout 1 gave up as soon as the seconds counter ticked over
        # (0.43 s seen).  Each try starts half-way through a second of
        # CLOCK_MONOTONIC (Python's time.monotonic() on Linux), where that
        # mistake would give up after ~0.5 s.
        self.issue("waits.example.test")
        holder, release = self.waiter("holder")  # the lock is held until release()
        argv = [CERTPILOT, "renew", "--state-dir", self.state, "--force-renewal",
                "--pre-hook", holder]
        first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=self.run_env())
        try:
            self.wait_for("the first run's pre-hook",
                          lambda: any(l[0] == "holder" for l in self.hook_lines()))
            elapsed = []
            for _ in range(3):
                time.sleep((0.45 - time.monotonic()) % 1.0)
                t0 = time.monotonic()
                self.renew("--lock-timeout", "1", json_out=False, expect=75)
                elapsed.append(time.monotonic() - t0)
            self.assertIsNone(first.poll())
        finally:
            release()
            first.communicate(timeout=120)
        for e in elapsed:
            self.assertGreaterEqual(e, 0.95, elapsed)

    def kill_while(self, label, argv, waiting, env=None):
        """Start certpilot in its own process group, wait until waiting() gives the
        PID of the stalled hook, SIGKILL the group (and that hook, if it is elsewhere)."""
        offset = self.pebble_log_size()
        err_path = os.path.join(self.tmp.name, "killed.stderr")
        with open(err_path, "w") as err:
            proc = subprocess.Popen([CERTPILOT] + argv, stdout=subprocess.DEVNULL, stderr=err,
                                    env=self.run_env(env), start_new_session=True)
        try:
            self.wait_for(label, lambda: waiting() is not None or proc.poll() is not None)
            if proc.poll() is not None:
                self.fail("certpilot ended (%s) before the kill:\n%s"
                          % (proc.returncode, read(err_path)))
            hook_pid = waiting()
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            if pid_alive(hook_pid):  # hooks in a group of their own
                os.kill(hook_pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        self.assertEqual(proc.returncode, -signal.SIGKILL)
        return self.pebble_log_since(offset)

    def assert_recovers(self, c, old_current, old_tree, at=None):
        """After a kill: the pair in place is whole, and the next renewal works."""
        if at is not None:
            self.assertEqual(self.current(c), old_current)
            self.assertEqual(file_tree(os.path.join(self.live(c), old_current)), old_tree)
        self.assert_pair(c)
        self.assertIn(c, self.list_json())  # status.json still readable
        proc = self.renew("--force-renewal", "--lock-timeout", "0")
        self.assertEqual(proc.doc["results"][0]["outcome"], "renewed")
        self.assert_pair(c)

    def sleeper(self):
        path = os.path.join(self.tmp.name, "sleeper.sh")
        write(path, SLEEPER_SH, 0o755)
        return path

    def sleeper_pid(self, label):
        for line in read(self.hook_log).splitlines() if os.path.exists(self.hook_log) else []:
            f = line.split("\t")
            if f[0] == label:
                return int(f[3])
        return None

    def test_kill_during_pre_hook(self):
        c = "killpre.example.test"
        self.issue(c)
        cur = self.current(c)
        tree = file_tree(os.path.join(self.live(c), cur))
        self.kill_while("the pre-hook", ["renew", "--state-dir", self.state, "--force-renewal",
                                         "--pre-hook", "%s %s pre" % (self.sleeper(),
                                                                      self.hook_log)],
                        lambda: self.sleeper_pid("pre"))
        self.assertEqual(self.versions(c), [cur.split("/")[-1]])
        self.assert_recovers(c, cur, tree, at="old")

    def test_kill_during_deploy_hook(self):
        c = "killdeploy.example.test"
        self.issue(c)
        self.kill_while("the deploy hook", [
            "renew", "--state-dir", self.state, "--force-renewal",
            "--deploy-hook", "%s %s deploy" % (self.sleeper(), self.hook_log)],
            lambda: self.sleeper_pid("deploy"))
        # The new certificate was in place before its deploy hook ran.
        self.assertEqual(len(self.versions(c)), 2)
        self.assert_recovers(c, None, None)

    def dehydrated_hook(self):
        """The logging wrapper of the example challtestsrv hook; (path, log path)."""
        hook_dir = os.path.join(self.tmp.name, "hookdir")
        os.mkdir(hook_dir)
        path = os.path.join(hook_dir, "hook.sh")
        write(path, DEHYDRATED_WRAPPER.replace("@HOOK@", CHALLTESTSRV_HOOK), 0o755)
        return path, os.path.join(hook_dir, "dehydrated.log")

    def dns01(self, hook, option="--hook"):
        return ["--challenge", "dns-01", option, hook, "--dns-timeout", "0"]

    def dehydrated_calls(self, log):
        if not os.path.exists(log):
            return []
        return [line.split("\t") for line in read(log).splitlines()]

    def test_kill_during_dns01_challenge(self):
        c = "killdns.example.test"
        hook, log = self.dehydrated_hook()
        # --dns-hook (challenges only): --hook would meet the exit_hook bug below.
        self.issue(c, extra=self.dns01(hook, "--dns-hook"))
        cur = self.current(c)
        tree = file_tree(os.path.join(self.live(c), cur))
        write(os.path.join(os.path.dirname(hook), "STALL"), "")
        self.fresh_account()  # the renewal must reach deploy_challenge

        def stalled():
            for call in self.dehydrated_calls(log):
                if call[0] == "stalled":
                    return int(call[1])
            return None

        pebble_log = self.kill_while("deploy_challenge", ["renew", "--state-dir", self.state,
                                                          "--force-renewal"], stalled)
        self.assertIn("POST /order-plz", pebble_log)  # killed in the middle of the order
        self.assertNotIn("finalize", pebble_log)
        os.unlink(os.path.join(os.path.dirname(hook), "STALL"))
        self.assertEqual(self.versions(c), [cur.split("/")[-1]])
        self.assert_recovers(c, cur, tree, at="old")

    def commands(self, calls):
        return [call[0] for call in calls if call[0] not in ("exists", "missing")]

    # Regression: renew kept info.hook (freed with the certificate's settings at
    # the end of renew_one()) for exit_hook: a heap-use-after-free in
    # hook_dehydrated() on every run with a `hook =` certificate, due or not.
    # The hook's calls are checked before the run's exit status and exit_hook,
    # so that a failure there says what else still worked.
    def test_dehydrated_example_hook(self):
        c = "dehydrated.example.test"
        names = [c, "www.dehydrated.example.test"]
        hook, log = self.dehydrated_hook()
        self.issue(*names, extra=self.dns01(hook))
        conf = read(self.renewal_conf(c))
        self.assertIn("hook = %s\n" % hook, conf)
        self.assertIn("challenge = dns-01\n", conf)
        # Not due: startup_hook, unchanged_cert DOMAIN KEYFILE CERTFILE
        # FULLCHAINFILE CHAINFILE, exit_hook.
        os.unlink(log)
        not_due = self.renew(expect=None)
        calls = self.dehydrated_calls(log)
        commands = self.commands(calls)
        self.assertEqual(commands[:2], ["startup_hook", "unchanged_cert"], calls)
        self.assertNotIn("deploy_challenge", commands)
        self.assertNotIn("deploy_cert", commands)
        unchanged = [call for call in calls if call[0] == "unchanged_cert"]
        self.assertEqual(len(unchanged), 1, calls)
        self.assertEqual(len(unchanged[0]), 6, unchanged)
        self.assertEqual(unchanged[0][1], c)
        self.assertNotIn("missing", [x[0] for x in calls])
        not_due_commands = commands
        # Forced: startup_hook, deploy_challenge/clean_challenge for every name,
        # deploy_cert with its 6 arguments, exit_hook.
        os.unlink(log)
        self.fresh_account()  # a challenge for every name, whatever Pebble draws
        forced = self.renew("--force-renewal", expect=None)
        calls = self.dehydrated_calls(log)
        commands = self.commands(calls)
        self.assertEqual(commands[0], "startup_hook", calls)
        self.assertEqual(commands.count("startup_hook"), 1)
        for command in ("deploy_challenge", "clean_challenge"):
            args = sum((call[1:] for call in calls if call[0] == command), [])
            self.assertEqual(len(args) % 3, 0, calls)
            self.assertEqual(sorted(args[0::3]), sorted(names), calls)
        last_deploy = max(i for i, call in enumerate(calls) if call[0] == "deploy_challenge")
        first_clean = min(i for i, call in enumerate(calls) if call[0] == "clean_challenge")
        self.assertLess(last_deploy, first_clean)
        deploy = [(i, call) for i, call in enumerate(calls) if call[0] == "deploy_cert"]
        self.assertEqual(len(deploy), 1, calls)
        i, call = deploy[0]
        self.assertEqual(len(call), 7, call)  # deploy_cert + 6 arguments
        self.assertEqual(call[1], c)
        key, cert, fullchain, chain, stamp = call[2:7]
        self.assertRegex(stamp, r"^\d+$")
        self.assertLess(first_clean, i)
        self.assertEqual([x[0] for x in calls[i + 1:i + 5]], ["exists"] * 4, calls)
        self.assertEqual(read(cert), read(os.path.join(self.live(c), "cert.pem")))
        self.assertEqual(read(key), read(os.path.join(self.live(c), "privkey.pem")))
        self.assertEqual(read(fullchain), read(os.path.join(self.live(c), "fullchain.pem")))
        self.assertEqual(read(chain), read(os.path.join(self.live(c), "chain.pem")))
        self.assert_pair(c)
        self.assertEqual(len(self.versions(c)), 2)
        # What the use-after-free broke: the exit status, the JSON, exit_hook last.
        self.assert_no_sanitizer_report(not_due)
        self.assert_no_sanitizer_report(forced)
        self.assertEqual(not_due.returncode, 0, self.describe(not_due))
        self.assertEqual(not_due_commands[-1], "exit_hook")
        self.assertEqual(forced.returncode, 0, self.describe(forced))
        self.assertEqual(json.loads(forced.stdout)["results"][0]["outcome"], "renewed")
        self.assertEqual(commands[-1], "exit_hook", calls)
        self.assertEqual(commands.count("exit_hook"), 1)
        self.assertNotIn("ERROR", [call for call in calls if call[0] == "exit_hook"][0][1:])

    def test_dehydrated_hook_told_of_failure(self):
        c = "nopublish.example.test"
        hook, log = self.dehydrated_hook()
        self.issue(c, extra=self.dns01(hook))
        before = file_tree(self.live(c))
        write(os.path.join(os.path.dirname(hook), "NOPUBLISH"), "")
        os.unlink(log)
        self.fresh_account()  # no valid authorization to pass without the TXT record
        proc = self.renew("--force-renewal", expect=None)
        self.assertIn("No TXT records", proc.stderr)
        calls = self.dehydrated_calls(log)
        commands = self.commands(calls)
        self.assertIn("deploy_challenge", commands)
        self.assertNotIn("deploy_cert", commands)
        self.assertTrue({"invalid_challenge", "request_failure"} & set(commands), calls)
        self.assertEqual(file_tree(self.live(c)), before)
        # What the use-after-free broke.
        self.assert_no_sanitizer_report(proc)
        self.assertEqual(proc.returncode, 1, self.describe(proc))
        self.assertEqual(json.loads(proc.stdout)["results"][0]["outcome"], "failed")
        self.assertEqual(commands[-1], "exit_hook")
        self.assertIn("ERROR", calls[-1][1:], calls)

    def test_stored_pre_and_post_hooks_run_once(self):
        # Regression: the same use-after-free for pre- and post-hooks from
        # renewal.conf (listed() read the first certificate's freed pre-hook when
        # judging the second: ASan abort, the second never renewed).
        pre = "%s %s pre" % (self.hook, self.hook_log)
        post = "%s %s post" % (self.hook, self.hook_log)
        for c in ("storedpre1.example.test", "storedpre2.example.test"):
            self.issue(c, extra=self.http() + ["--pre-hook", pre, "--post-hook", post])
            self.assertIn("pre-hook = %s\n" % pre, read(self.renewal_conf(c)))
            self.assertIn("post-hook = %s\n" % post, read(self.renewal_conf(c)))
        os.unlink(self.hook_log)  # issue ran them
        proc = self.renew("--force-renewal", expect=None)
        self.assert_no_sanitizer_report(proc)
        self.assertEqual(len(self.versions("storedpre1.example.test")), 2)
        self.assertEqual(len(self.versions("storedpre2.example.test")), 2, self.describe(proc))
        self.assertEqual(proc.returncode, 0, self.describe(proc))
        self.assertEqual([l[0] for l in self.hook_lines() if l[1] == "start"], ["pre", "post"])

    def journal_run(self, *args, expect=0, journal=True):
        """renew with stderr a file; JOURNAL_STREAM names that file when journal."""
        with tempfile.TemporaryFile(dir=self.tmp.name) as err:
            st = os.fstat(err.fileno())
            stream = "%d:%d" % (st.st_dev, st.st_ino if journal else st.st_ino + 1)
            return self.renew(*args, expect=expect, json_out=False, stderr=err,
                              env={"JOURNAL_STREAM": stream})

    def test_journald_priorities_and_quiet(self):
        self.issue("journal.example.test")
        self.issue("broken.example.test")
        proc = self.journal_run()
        lines = proc.stderr.splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<[0-7]>", lines)
        self.assertNotIn("certpilot: ", proc.stderr)
        self.assertTrue(any(l.startswith("<6>") for l in lines), lines)  # "nothing is due"
        # -v: debug lines are <7>; the certificate that is not due gets one.
        proc = self.journal_run("-v")
        lines = proc.stderr.splitlines()
        for line in lines:
            self.assertRegex(line, r"^<[0-7]>", lines)
        self.assertTrue(any(re.match(r"^<7>.*journal\.example\.test", l) for l in lines), lines)
        # Another file's identity: plain "certpilot: " lines.
        proc = self.journal_run(journal=False)
        for line in proc.stderr.splitlines():
            self.assertTrue(line.startswith("certpilot: "), line)
        # A failure, quiet: only errors, each <3>; nothing on stdout.
        self.break_http_port("broken.example.test")
        proc = self.journal_run("--force-renewal", "--quiet", expect=1)
        self.assertEqual(proc.stdout, "")
        # (lines without a priority: test_every_journal_line_has_a_priority)
        lines = [l for l in proc.stderr.splitlines() if l.startswith("<")]
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<3>", lines)
        self.assertTrue(any("broken.example.test" in l for l in lines), lines)
        self.assertFalse(any("journal.example.test" in l for l in lines), lines)
        # Not quiet: the renewal is a notice or info, the failure an error.
        proc = self.journal_run("--force-renewal", expect=1)
        lines = proc.stderr.splitlines()
        self.assertTrue(any(re.match(r"^<[56]>journal\.example\.test: renewed", l)
                            for l in lines), lines)
        self.assertTrue(any(re.match(r"^<3>.*broken\.example\.test", l) for l in lines), lines)
        self.assertFalse(any(re.match(r"^<3>.*journal\.example\.test", l) for l in lines), lines)

    def test_every_journal_line_has_a_priority(self):
        # The CA's problem lines too, so that `journalctl -p err` keeps them.
        self.issue("prio.example.test")
        self.break_http_port("prio.example.test")
        for args in (("--force-renewal",), ("--force-renewal", "--quiet")):
            proc = self.journal_run(*args, expect=1)
            self.assertIn("urn:ietf:params:acme:error:connection", proc.stderr)
            for line in proc.stderr.splitlines():
                self.assertRegex(line, r"^<[0-7]>", proc.stderr)
                if "urn:ietf:params:acme:error" in line:
                    self.assertRegex(line, r"^<3>prio\.example\.test: ", proc.stderr)

    def test_defaults_file(self):
        c = "defaults.example.test"
        defaults = os.path.join(self.tmp.name, "config")
        write(defaults, "# certpilot defaults\nserver = %s\nca-bundle = %s\n"
              % (self.pebble.directory_url, self.pebble.ca_bundle))
        proc = self.certpilot("issue", "--json", "--config", defaults, "-d", c,
                              "--caa-preflight", "off", *self.http(), "--state-dir", self.state,
                              json_out=True)
        self.assertEqual(proc.doc["cert_name"], c)
        # renewal.conf without the CA: renew takes it from the defaults file,
        # and renewal.conf wins over the defaults file.
        conf = self.renewal_conf(c)
        kept = [l for l in read(conf).splitlines(True)
                if not l.startswith(("server ", "server=", "ca-bundle"))]
        write(conf, "".join(kept))
        write(defaults, read(defaults) + "http-port = %d\n" % free_port(udp=False))
        cur = self.current(c)
        proc = self.renew("--config", defaults, "--force-renewal", "-v")
        self.assertEqual(proc.doc["results"][0]["outcome"], "renewed")
        self.assertIn(self.pebble.directory_url.replace("/dir", "/order-plz"), proc.stderr)
        self.assertNotEqual(self.current(c), cur)
        # A defaults file that is not there is an error naming it.
        missing = os.path.join(self.tmp.name, "no-such-config")
        proc = self.renew("--config", missing, json_out=False, expect=None)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn(missing, proc.stderr)
        self.assert_nothing_ordered(proc)

    def test_cert_name_and_dry_run(self):
        self.issue("sel1.example.test")
        self.issue("sel2.example.test")
        trees = {c: file_tree(self.live(c)) for c in ("sel1.example.test", "sel2.example.test")}
        proc = self.renew("--force-renewal", "--cert-name", "sel2.example.test")
        self.assertEqual([r["cert_name"] for r in proc.doc["results"]], ["sel2.example.test"])
        self.assertEqual(file_tree(self.live("sel1.example.test")), trees["sel1.example.test"])
        self.assertEqual(len(self.versions("sel2.example.test")), 2)
        proc = self.renew("--cert-name", "nosuch.example.test", json_out=False, expect=64)
        self.assertIn("nosuch.example.test", proc.stderr)
        # --dry-run: checks, orders nothing, writes nothing, runs no hook.
        trees = {c: file_tree(self.live(c)) for c in ("sel1.example.test", "sel2.example.test")}
        proc = self.renew("--dry-run", "--force-renewal",
                          "--pre-hook", "%s %s pre" % (self.hook, self.hook_log),
                          "--deploy-hook", "%s %s deploy" % (self.hook, self.hook_log))
        self.assertIs(proc.doc["dry_run"], True)
        self.assertEqual({r["outcome"] for r in proc.doc["results"]}, {"dry_run"})
        self.assert_nothing_ordered(proc)
        self.assertEqual(self.hook_lines(), [])
        for c, tree in trees.items():
            self.assertEqual(file_tree(self.live(c)), tree)


class ShortLived(RenewCase):
    """Pebble issuing 30-second certificates: renewed once half is gone (the
    rule for lifetimes under 10 days; the jitter is 0 below 1000 s).

    The renewed certificate is checked to be not due before half its life is
    gone: with 30 s that leaves the renewal about 13 s."""

    validity = 30

    def not_before_after(self, name):
        out = openssl("x509", "-in", os.path.join(self.live(name), "cert.pem"), "-noout",
                      "-startdate", "-enddate", "-dateopt", "iso_8601").stdout
        dates = dict(line.split("=", 1) for line in out.splitlines())
        return tuple(calendar.timegm(time.strptime(dates[k].strip(), "%Y-%m-%d %H:%M:%SZ"))
                     for k in ("notBefore", "notAfter"))

    def test_list_warns_that_the_timer_is_too_slow(self):
        # 29 s of life, renewed with about 14 s left: a 6-hour timer cannot.
        c = "slow-timer.example.test"
        self.issue(c)
        warning = self.list_json()[c]["window_warning"]
        self.assertIn("certpilot-renew.timer runs every 6 hours", warning)
        text = self.certpilot("list", "--state-dir", self.state).stdout
        self.assertIn("  warning: " + warning + "\n", text)

    def test_renewed_when_due_and_not_again(self):
        c = "short.example.test"
        self.issue(c)
        nb, na = self.not_before_after(c)
        self.assertEqual(na - nb, self.validity - 1)
        due_at = na - (na - nb) / 2
        proc = self.renew()
        self.assertEqual(proc.doc["results"][0]["outcome"], "not_due")
        self.assert_nothing_ordered(proc)
        time.sleep(max(0.0, due_at - time.time()) + 1.0)
        cur = self.current(c)
        proc = self.renew()
        r = proc.doc["results"][0]
        self.assertEqual((r["outcome"], r["due"]), ("renewed", True), r)
        self.assertEqual(proc.pebble_log.count("POST /order-plz"), 1)
        self.assertNotEqual(self.current(c), cur)
        self.assert_pair(c)
        nb2, na2 = self.not_before_after(c)
        self.assertGreater(na2, na)
        # Right after: the new certificate is not due.
        if time.time() < nb2 + (na2 - nb2) / 2 - 1:
            proc = self.renew()
            self.assertEqual(proc.doc["results"][0]["outcome"], "not_due")
            self.assert_nothing_ordered(proc)
        else:
            self.fail("the renewal took too long to check that it is not due again")


class CaaAfterIssuance(RenewCase):
    """The CAA preflight runs before every renewal order."""

    @classmethod
    def declare_zones(cls, lab):
        lab.zone("caarenew.test", '@ CAA 0 issue "%s"' % CA_ID)
        lab.zone("bogus.test", '@ CAA 0 issue "%s"' % CA_ID, dnssec="broken")

    def issue_args(self):
        return ["--ca-identity", CA_ID, "--resolver", self.lab.resolver]

    def test_caa_record_added_after_issuance(self):
        c = "www.caarenew.test"
        self.issue(c)
        conf = read(self.renewal_conf(c))
        self.assertIn("ca-identity = %s\n" % CA_ID, conf)
        self.assertIn("resolver = %s\n" % self.lab.resolver, conf)
        before = file_tree(self.live(c))
        self.lab.update("caarenew.test", "del caarenew.test. CAA",
                        'add caarenew.test. 60 CAA 0 issue "other-ca.example"')
        self.lab.flush()
        proc = self.renew("--force-renewal", "-v", expect=1)
        r = proc.doc["results"][0]
        self.assertEqual(r["outcome"], "caa_refused")
        self.assertNotEqual(r["exit_status"], 0)
        self.assertIn("CAA record for caarenew.test prevents issuance", proc.stderr)
        self.assert_nothing_ordered(proc)
        self.assertEqual(file_tree(self.live(c)), before)
        self.assertEqual(self.status(c)["last_result"], "caa_refused")
        self.assertEqual(self.list_json()[c]["last_result"], "caa_refused")
        # Allowed again: renewed.
        self.lab.update("caarenew.test", "del caarenew.test. CAA",
                        'add caarenew.test. 60 CAA 0 issue "%s"' % CA_ID)
        self.lab.flush()
        proc = self.renew("--force-renewal")
        self.assertEqual(proc.doc["results"][0]["outcome"], "renewed")

    def test_caa_dns_error(self):
        c = "www.bogus.test"
        # Issued without the preflight; the preflight is turned on by hand.
        self.issue(c, extra=self.http() + ["--caa-preflight", "off"])
        conf = self.renewal_conf(c)
        self.assertIn("caa-preflight = off\n", read(conf))
        write(conf, read(conf).replace("caa-preflight = off\n", ""))
        before = file_tree(self.live(c))
        proc = self.renew("--force-renewal", expect=1)
        self.assertEqual(proc.doc["results"][0]["outcome"], "caa_dns_error")
        self.assert_nothing_ordered(proc)
        self.assertEqual(file_tree(self.live(c)), before)


if __name__ == "__main__":
    unittest.main()
