#!/usr/bin/python3
"""The CAA preflight inside `certpilot issue` (issue 4), end to end.

Each class runs one lab (Knot, validating Unbound, the misbehaving
responder) and one Pebble; every test gets a fresh state dir that is a copy
of one where an account was registered once for the class (so that the
account URL is known and accounturi= records can name it).  Pebble 2.4
publishes no caaIdentities, so the preflight runs with --ca-identity
pebble.test and --resolver pointing at the lab's Unbound.

- Refusals: the preflight stops the order before anything is sent to the
  CA: exit 1 (CAA refusal) or 2 (DNS failure), the report on stdout, the
  message on stderr, and no newOrder, neither in certpilot's -v trace nor
  in Pebble's request log since the run started.
- Proceed: names CAA allows are issued; the challenge type follows
  validationmethods=; --caa-preflight=warn and =off; no CA identity.
- DryRun: --dry-run checks without ordering and without touching the state
  dir; --dry-run=order orders but saves nothing; never for Let's Encrypt
  production.
- RecheckBeforeFinalize: Pebble reuses authorizations (PEBBLE_AUTHZREUSE=100);
  an authorization validated more than 7 hours ago is checked again, for the
  type of challenge that validated it, just before finalize.  The 8 hours
  are simulated with faketime (Debian package faketime).

The contract is /work/coord/issue4-contract.md (issue 4).
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
from cplab import Lab  # noqa: E402

CERTPILOT = os.path.abspath(os.environ.get("CERTPILOT", os.path.join(ROOT, "build", "certpilot")))
CHALLTESTSRV_HOOK = os.path.join(ROOT, "hooks", "examples", "dns-challtestsrv.sh")

CA_ID = "pebble.test"
# An account URL of the same CA that is not the test's account.
OTHER_ACCOUNT = "https://127.0.0.1:1/my-account/0123456789abcdef"
ALL_METHODS = {"http-01", "dns-01", "tls-alpn-01", "dns-persist-01"}
CAA_PROBLEM = "urn:ietf:params:acme:error:caa"
DNS_PROBLEM = "urn:ietf:params:acme:error:dns"
SERVFAIL_EXTRA = " - the domain's nameservers may be malfunctioning"
REFUSED_MSG = "certpilot: CAA preflight refused the order: nothing was sent to the CA"
# The contract has "could not complete: ..."; the wording after it is free.
DNS_ERROR_MSG = "certpilot: CAA preflight could not complete"
PREFLIGHT_LINE = (r"(?m)^certpilot: CAA preflight: %d identifiers?, \d+ DNS quer(y|ies), "
                  r"\d+ round trips?, \d+(\.\d+)? ms$")
RECHECK_LINE = "certpilot: CAA recheck before finalize:"
RESULT_KEYS = {"identifier", "wildcard", "status", "relevant_name", "alias_target", "records",
               "problem", "explanation", "fix", "warning", "lookups", "method",
               "allowed_methods"}


def caa_deny_detail(ident, name):
    return "While processing CAA for %s: CAA record for %s prevents issuance" % (ident, name)


def dns_detail(ident, what, name, extra=""):
    return ("While processing CAA for %s: DNS problem: %s looking up CAA for %s%s"
            % (ident, what, name, extra))


def tree_snapshot(path):
    """Everything under path (path included) with type, mode, size and mtime;
    None when path does not exist."""
    if not os.path.lexists(path):
        return None
    paths = [path]
    for top, dirs, files in os.walk(path):
        paths += [os.path.join(top, name) for name in dirs + files]
    entries = []
    for full in paths:
        st = os.lstat(full)
        target = os.readlink(full) if os.path.islink(full) else None
        entries.append((os.path.relpath(full, path), st.st_mode, st.st_size, st.st_mtime_ns,
                        target))
    return sorted(entries)


def busy_port():
    """A socket listening on a free 127.0.0.1 port; the caller closes it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


def with_asan_option(env, option):
    """env with `option` added to ASAN_OPTIONS (kept if already there)."""
    current = env.get("ASAN_OPTIONS", "")
    parts = [p for p in current.split(":") if p]
    key = option.split("=")[0]
    parts = [p for p in parts if p.split("=")[0] != key] + [option]
    return dict(env, ASAN_OPTIONS=":".join(parts))


class PreflightCase(unittest.TestCase):
    """One lab and one Pebble per class; each test starts from a copy of a
    state dir holding the class's registered account."""

    pebble_env = {"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
    bind_to_account = "acctok.test"  # a zone given an accounturi= record for the class's account

    @classmethod
    def declare_zones(cls, lab):
        lab.zone("nocaa.test")  # no CAA anywhere up to the root
        lab.zone("otherca.test", '@ CAA 0 issue "otherca.example"')
        lab.zone("forbid.test", '@ CAA 0 issue ";"')
        lab.zone("acct.test", '@ CAA 0 issue "%s; accounturi=%s"' % (CA_ID, OTHER_ACCOUNT))
        lab.zone("acctok.test")  # gets the class's real account URL after registration
        lab.zone("methods.test", '@ CAA 0 issue "%s; validationmethods=dns-01"' % CA_ID)
        lab.zone("crit.test", '@ CAA 128 tbs "x"')
        # Let's Encrypt stops at http-01; the malformed element after it is a
        # warning (other CAs may reject the record), not a refusal.
        lab.zone("methwarn.test", '@ CAA 0 issue "%s; validationmethods=http-01,http_01"' % CA_ID)
        # The hosting-provider case: a name aliased into a provider's zone
        # whose CAA allows this CA, but only another one for wildcards.
        lab.zone("site.test", "blog CNAME pages.hosting.test.")
        lab.zone("hosting.test", """
            pages CAA 0 issue "%s"
            pages CAA 0 issuewild "otherca.example"
        """ % CA_ID)
        lab.zone("bogus.test", '@ CAA 0 issue "%s"' % CA_ID, dnssec="broken")
        lab.misbehaving_zone("drop.test", caa="drop")
        # Served normally by the responder, which counts the queries it gets.
        lab.misbehaving_zone("counted.test", '@ CAA 0 issue "otherca.example"')

    @classmethod
    def setUpClass(cls):
        cls.lab = Lab()
        try:
            cls.declare_zones(cls.lab)
            cls.lab.start()
            cls.pebble = cls.lab.pebble(env=cls.pebble_env)
            cls.class_tmp = tempfile.mkdtemp(prefix="cptest-preflight-")
            cls.account_state = os.path.join(cls.class_tmp, "account-state")
            cls.account_url = cls.register(cls.account_state)
            if cls.bind_to_account:
                cls.lab.update(cls.bind_to_account, 'add %s. 60 CAA 0 issue "%s; accounturi=%s"'
                               % (cls.bind_to_account, CA_ID, cls.account_url))
                cls.lab.flush()
        except BaseException:
            cls.lab.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()
        shutil.rmtree(cls.class_tmp, ignore_errors=True)

    @classmethod
    def register(cls, state):
        """Register an account into state; return its URL as `account show` gives it."""
        common = ["--server", cls.pebble.directory_url, "--ca-bundle", cls.pebble.ca_bundle,
                  "--state-dir", state]
        for args in (["account", "register", "--agree-tos"], ["account", "show", "--json"]):
            proc = subprocess.run([CERTPILOT] + args + common, capture_output=True, text=True,
                                  timeout=60)
            if proc.returncode != 0:
                raise RuntimeError("%s: exit %d\n%s%s" % (" ".join(args), proc.returncode,
                                                        proc.stdout, proc.stderr))
        return json.loads(proc.stdout)["url"]

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="cptest-")
        self.state = os.path.join(self.tmp.name, "state")
        shutil.copytree(self.account_state, self.state, symlinks=True)

    def tearDown(self):
        self.tmp.cleanup()

    # -- running certpilot

    def pebble_log_size(self):
        with open(self.pebble.log, "rb") as f:
            return len(f.read())

    def pebble_log_since(self, offset):
        with open(self.pebble.log, "rb") as f:
            return f.read()[offset:].decode(errors="replace")

    def certpilot(self, *args, expect=0, env=None, state=None, wrap=(), ca=True):
        """Run certpilot (against the class's Pebble when ca); proc.pebble_log is
        what Pebble logged while it ran."""
        argv = list(wrap) + [CERTPILOT] + list(args)
        if ca:
            argv += ["--server", self.pebble.directory_url, "--ca-bundle", self.pebble.ca_bundle,
                     "--state-dir", state or self.state]
        run_env = dict(os.environ, CHALLTESTSRV_URL=self.pebble.challtestsrv_url)
        run_env.update(env or {})
        offset = self.pebble_log_size()
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=run_env)
        proc.pebble_log = self.pebble_log_since(offset)
        proc.argv = argv
        if expect is not None:
            self.assertEqual(proc.returncode, expect, self.describe(proc))
        return proc

    @staticmethod
    def describe(proc):
        return "exit status %s of %s\nstdout:\n%s\nstderr:\n%s" % (
            proc.returncode, " ".join(proc.argv), proc.stdout, proc.stderr)

    def issue(self, *args, expect=0, json_out=True, ca_identity=True, resolver=None, **kw):
        """`certpilot issue -v` with the preflight set up for the lab; proc.doc is
        the parsed JSON (json_out), which must be one object whatever the outcome."""
        argv = ["issue", "-v"]
        if json_out:
            argv.append("--json")
        if ca_identity:
            argv += ["--ca-identity", CA_ID]
        argv += ["--resolver", resolver or self.lab.resolver] + list(args)
        proc = self.certpilot(*argv, expect=expect, **kw)
        proc.doc = None
        if json_out:
            try:
                proc.doc = json.loads(proc.stdout)
            except ValueError as e:
                self.fail("stdout is not one JSON object (%s)\n%s" % (e, self.describe(proc)))
            self.assertIsInstance(proc.doc, dict)
        return proc

    def http(self):
        return ("--standalone", "--http-port", str(self.pebble.http_port))

    @staticmethod
    def dns():
        # challtestsrv is no zone with nameservers: no propagation wait.
        return ("--dns-hook", CHALLTESTSRV_HOOK, "--dns-timeout", "0")

    # -- assertions

    def assert_nothing_ordered(self, proc):
        self.assertNotIn("order-plz", proc.stderr,
                         "newOrder in the -v trace\n" + self.describe(proc))
        self.assertNotIn("order-plz", proc.pebble_log, "newOrder in Pebble's log")

    def assert_preflight_line(self, proc, n):
        self.assertRegex(proc.stderr, PREFLIGHT_LINE % n)

    def assert_preflight_shape(self, p, method=None, account_uri="class"):
        """P of the contract: caa check's shape plus per-result method and allowed_methods.
        method: the top-level "method" when every identifier is judged for one type
        (None: names judged for different types; the contract leaves it open)."""
        self.assertIsInstance(p, dict)
        self.assertEqual(p["ca_identity"], CA_ID)
        self.assertEqual(p["account_uri"],
                         self.account_url if account_uri == "class" else account_uri)
        if method is None:
            self.assertIn(p["method"], ALL_METHODS)
        else:
            self.assertEqual(p["method"], method)
        self.assertIsInstance(p["queries"], int)
        self.assertGreater(p["queries"], 0)
        for r in p["results"]:
            self.assertEqual(set(r) & RESULT_KEYS, RESULT_KEYS, r)
            self.assertIn(r["status"], ("allowed", "denied", "error"))
            self.assertIn(r["method"], ALL_METHODS)
            self.assertIsInstance(r["allowed_methods"], list)
            self.assertLessEqual(set(r["allowed_methods"]), ALL_METHODS)
            self.assertEqual(len(set(r["allowed_methods"])), len(r["allowed_methods"]))
            for rec in r["records"]:
                self.assertEqual(set(rec), {"name", "flags", "tag", "value", "verdict"})
            self.assertTrue(r["lookups"])
            for lookup in r["lookups"]:
                # "ede" only on a failed lookup whose answer carried an
                # Extended DNS Error (RFC 8914).
                self.assertEqual(set(lookup) - {"ede"}, {"name", "answer", "rcode",
                                                         "alias_target", "records"})
                if "ede" in lookup:
                    self.assertEqual(lookup["answer"], "rcode")
                    self.assertEqual(set(lookup["ede"]), {"code", "summary", "text"})

    def assert_refused_doc(self, doc, names, outcome="caa_refused", stage="preflight",
                           method="http-01"):
        self.assertEqual(doc["outcome"], outcome)
        self.assertEqual(doc["stage"], stage)
        self.assertEqual(doc["names"], names)
        self.assertEqual(doc["cert_name"], names[0].lstrip("*."))
        self.assert_preflight_shape(doc["preflight"], method)
        self.assertEqual([r["identifier"] for r in doc["preflight"]["results"]], names)

    def assert_issued(self, doc, names):
        self.assertEqual(doc["names"], names)
        live = doc["live_dir"]
        for f in ("privkey.pem", "cert.pem", "chain.pem", "fullchain.pem"):
            self.assertTrue(os.path.exists(os.path.join(live, f)), f)
        self.assertTrue(live.startswith(self.state + os.sep), live)

    def refuse(self, *args, names, expect=1, method="http-01", **kw):
        """Run the refused issuance twice, as text and as JSON; check the message
        and that nothing was ordered.  Returns (text run, JSON run)."""
        text = self.issue(*args, expect=expect, json_out=False, **kw)
        self.assertIn(REFUSED_MSG if expect == 1 else DNS_ERROR_MSG, text.stderr)
        self.assert_nothing_ordered(text)
        self.assert_preflight_line(text, len(names))
        self.assertFalse(os.path.exists(os.path.join(self.state, "certs")))
        js = self.issue(*args, expect=expect, **kw)
        self.assert_nothing_ordered(js)
        self.assert_refused_doc(js.doc, names,
                                outcome="caa_refused" if expect == 1 else "caa_dns_error",
                                method=method)
        return text, js

    @staticmethod
    def verdicts(result):
        return [(r["tag"], r["value"], r["verdict"]) for r in result["records"]]


class Refusals(PreflightCase):
    """The preflight refuses: nothing goes to the CA."""

    def test_other_ca(self):
        text, js = self.refuse("-d", "www.otherca.test", *self.http(), names=["www.otherca.test"])
        out = text.stdout
        self.assertIn("www.otherca.test: REFUSED by the CAA record set at otherca.test", out)
        self.assertIn("The CA would answer:", out)
        self.assertIn(caa_deny_detail("www.otherca.test", "otherca.test"), out)
        self.assertIn("Fix:", out)
        self.assertIn('otherca.test. CAA 0 issue "%s' % CA_ID, out)  # "; accounturi=" may follow
        r = js.doc["preflight"]["results"][0]
        self.assertEqual(r["status"], "denied")
        self.assertEqual(r["relevant_name"], "otherca.test")
        self.assertEqual(r["problem"], {"type": CAA_PROBLEM,
                                        "detail": caa_deny_detail("www.otherca.test",
                                                                  "otherca.test")})
        self.assertEqual(self.verdicts(r), [("issue", "otherca.example", "other CA")])
        self.assertEqual(r["method"], "http-01")
        self.assertEqual(r["allowed_methods"], [])

    def test_semicolon_forbids_all(self):
        text, js = self.refuse("-d", "forbid.test", *self.http(), names=["forbid.test"])
        self.assertIn("forbid.test: REFUSED by the CAA record set at forbid.test", text.stdout)
        self.assertIn(caa_deny_detail("forbid.test", "forbid.test"), text.stdout)
        r = js.doc["preflight"]["results"][0]
        self.assertEqual(self.verdicts(r), [("issue", ";", "forbids all CAs")])
        self.assertEqual(r["problem"]["detail"], caa_deny_detail("forbid.test", "forbid.test"))
        self.assertEqual(r["allowed_methods"], [])

    def test_accounturi_of_another_account(self):
        text, js = self.refuse("-d", "acct.test", *self.http(), names=["acct.test"])
        self.assertIn("acct.test: REFUSED by the CAA record set at acct.test", text.stdout)
        # The fix binds the record to the account that orders.
        self.assertIn("accounturi=" + self.account_url, text.stdout)
        p = js.doc["preflight"]
        self.assertEqual(p["account_uri"], self.account_url)
        r = p["results"][0]
        self.assertEqual(self.verdicts(r)[0][2], "account mismatch")
        self.assertEqual(r["problem"]["detail"], caa_deny_detail("acct.test", "acct.test"))
        self.assertEqual(r["allowed_methods"], [])

    def test_validationmethods_excludes_the_configured_type(self):
        text, js = self.refuse("-d", "methods.test", *self.http(), names=["methods.test"])
        # The message names what CAA allows.
        self.assertRegex(text.stdout + text.stderr, r"CAA allows only dns-01 for methods\.test")
        self.assertIn(caa_deny_detail("methods.test", "methods.test"), text.stdout)
        r = js.doc["preflight"]["results"][0]
        self.assertEqual(self.verdicts(r)[0][2], "method mismatch")
        self.assertEqual(r["method"], "http-01")
        self.assertEqual(r["allowed_methods"], ["dns-01"])

    def test_wildcard_blocked_through_alias_into_provider_zone(self):
        names = ["blog.site.test", "*.blog.site.test"]
        text, js = self.refuse("-d", names[0], "-d", names[1], "--challenge", "dns-01",
                               *self.dns(), names=names, method="dns-01")
        self.assertIn("*.blog.site.test: REFUSED by the CAA record set at blog.site.test",
                      text.stdout)
        self.assertRegex(text.stdout, r"(?m)^blog\.site\.test: allowed")
        self.assertIn(caa_deny_detail("*.blog.site.test", "blog.site.test"), text.stdout)
        base, wild = js.doc["preflight"]["results"]
        self.assertEqual(base["status"], "allowed")
        self.assertIsNone(base["problem"])
        self.assertEqual(base["alias_target"], "pages.hosting.test")
        self.assertEqual(set(base["allowed_methods"]), ALL_METHODS)
        self.assertEqual(base["method"], "dns-01")
        self.assertEqual(wild["status"], "denied")
        self.assertTrue(wild["wildcard"])
        self.assertEqual(wild["relevant_name"], "blog.site.test")
        self.assertEqual(wild["alias_target"], "pages.hosting.test")
        self.assertEqual(wild["problem"]["detail"],
                         caa_deny_detail("*.blog.site.test", "blog.site.test"))
        self.assertEqual(dict((t, v) for t, _, v in self.verdicts(wild)),
                         {"issue": "ignored", "issuewild": "other CA"})
        self.assertEqual(wild["allowed_methods"], [])

    def test_critical_unknown_tag(self):
        text, js = self.refuse("-d", "crit.test", *self.http(), names=["crit.test"])
        self.assertIn("crit.test: REFUSED by the CAA record set at crit.test", text.stdout)
        r = js.doc["preflight"]["results"][0]
        self.assertEqual(self.verdicts(r), [("tbs", "x", "critical unknown tag")])
        self.assertEqual(r["problem"]["detail"], caa_deny_detail("crit.test", "crit.test"))

    def test_broken_dnssec_is_servfail(self):
        text, js = self.refuse("-d", "www.bogus.test", *self.http(), names=["www.bogus.test"],
                               expect=2)
        # Unbound attaches an Extended DNS Error (a DNSSEC one; which code and
        # text depends on what it has cached), and the CA's detail quotes it.
        self.assertIn("www.bogus.test: DNS FAILURE looking up CAA for www.bogus.test",
                      text.stdout)
        self.assertIn("While processing CAA for www.bogus.test: DNS problem: looking up CAA for "
                      "www.bogus.test: DNSSEC: ", text.stdout)
        r = js.doc["preflight"]["results"][0]
        self.assertEqual(r["status"], "error")
        ede = [lk for lk in r["lookups"] if lk["name"] == "www.bogus.test"][0]["ede"]
        self.assertTrue(ede["summary"].startswith("DNSSEC: "), ede)
        detail = ("While processing CAA for www.bogus.test: DNS problem: looking up CAA for "
                  "www.bogus.test: " + ede["summary"] + (": " + ede["text"] if ede["text"] else ""))
        self.assertEqual(r["problem"], {"type": DNS_PROBLEM, "detail": detail})

    def test_timeout(self):
        # Straight at the responder, which drops CAA queries for drop.test.
        text, js = self.refuse("-d", "drop.test", *self.http(), "--timeout", "2",
                               names=["drop.test"], expect=2, resolver=self.lab.responder)
        detail = dns_detail("drop.test", "query timed out", "drop.test")
        self.assertIn(detail, text.stdout)
        r = js.doc["preflight"]["results"][0]
        self.assertEqual(r["status"], "error")
        self.assertEqual(r["problem"], {"type": DNS_PROBLEM, "detail": detail})
        lookup = next(lk for lk in r["lookups"] if lk["name"] == "drop.test")
        self.assertEqual(lookup["answer"], "timeout")


class Proceed(PreflightCase):
    """The preflight allows (or is told not to stop): the certificate is issued."""

    def test_no_caa_at_all(self):
        proc = self.issue("-d", "www.nocaa.test", *self.http())
        doc = proc.doc
        self.assert_issued(doc, ["www.nocaa.test"])
        self.assert_preflight_shape(doc["preflight"], "http-01")
        r = doc["preflight"]["results"][0]
        self.assertEqual(r["status"], "allowed")
        self.assertIsNone(r["relevant_name"])
        self.assertEqual(r["records"], [])
        self.assertEqual(r["method"], "http-01")
        self.assertEqual(set(r["allowed_methods"]), ALL_METHODS)
        self.assertEqual(doc["methods"], {"www.nocaa.test": "http-01"})
        # The preflight ran before the order.
        self.assert_preflight_line(proc, 1)
        self.assertLess(re.search(PREFLIGHT_LINE % 1, proc.stderr).start(),
                        proc.stderr.index("order-plz"))

    def test_accounturi_of_this_account(self):
        doc = self.issue("-d", "acctok.test", *self.http()).doc
        self.assert_issued(doc, ["acctok.test"])
        p = doc["preflight"]
        self.assertEqual(p["account_uri"], self.account_url)
        self.assertEqual(self.verdicts(p["results"][0]),
                         [("issue", "%s; accounturi=%s" % (CA_ID, self.account_url),
                           "authorizes")])

    def test_validationmethods_chooses_dns01(self):
        # http-01 first in the preference list: CAA allows only dns-01 for
        # methods.test, any type for www.nocaa.test.
        names = ["methods.test", "www.nocaa.test"]
        proc = self.issue("-d", names[0], "-d", names[1], "--challenge", "http-01,dns-01",
                          *self.http(), *self.dns())
        doc = proc.doc
        self.assert_issued(doc, names)
        self.assertEqual(doc["methods"], {"methods.test": "dns-01", "www.nocaa.test": "http-01"})
        self.assert_preflight_shape(doc["preflight"])  # judged for dns-01 and http-01
        m, free = doc["preflight"]["results"]
        self.assertEqual(m["status"], "allowed")
        self.assertEqual(m["method"], "dns-01")
        self.assertEqual(m["allowed_methods"], ["dns-01"])
        self.assertEqual(free["method"], "http-01")
        self.assert_preflight_line(proc, 2)

    def test_warn_reports_then_issues(self):
        text = self.issue("-d", "www.otherca.test", *self.http(), "--caa-preflight=warn",
                          json_out=False)
        self.assertIn("www.otherca.test: REFUSED by the CAA record set at otherca.test",
                      text.stdout)
        self.assertIn(caa_deny_detail("www.otherca.test", "otherca.test"), text.stdout)
        self.assertIn("Certificate issued for www.otherca.test", text.stdout)
        self.assertNotIn(REFUSED_MSG, text.stderr)
        self.assertIn("order-plz", text.stderr)
        doc = self.issue("-d", "www.otherca.test", *self.http(), "--caa-preflight", "warn",
                         "--force-renewal").doc
        self.assert_issued(doc, ["www.otherca.test"])
        self.assertEqual(doc["preflight"]["results"][0]["status"], "denied")
        self.assertEqual(doc["methods"], {"www.otherca.test": "http-01"})

    def caa_queries_seen(self):
        return self.lab.responder_stats().get("type:CAA", 0)

    def test_off_sends_no_caa_query(self):
        before = self.caa_queries_seen()
        proc = self.issue("-d", "www.counted.test", *self.http(), "--caa-preflight=off")
        self.assert_issued(proc.doc, ["www.counted.test"])
        self.assertIn("preflight", proc.doc)
        self.assertIsNone(proc.doc["preflight"])
        self.assertNotRegex(proc.stderr, PREFLIGHT_LINE % 1)
        self.assertEqual(self.caa_queries_seen(), before)
        # The same name in enforce mode: the CAA queries reach the responder
        # (so the count above means something), and its record refuses.  (The
        # certificate's renewal.conf keeps "off" until the command line says
        # otherwise.)
        proc = self.issue("-d", "www.counted.test", *self.http(), "--force-renewal",
                          "--caa-preflight=enforce", expect=1)
        self.assertGreater(self.caa_queries_seen(), before)
        self.assert_nothing_ordered(proc)
        # The space-separated form.
        proc = self.issue("-d", "www.counted.test", *self.http(), "--caa-preflight", "off",
                          "--force-renewal")
        self.assertIsNone(proc.doc["preflight"])

    def test_no_ca_identity_warns_and_issues(self):
        # Pebble's directory has no caaIdentities, and no --ca-identity is given.
        proc = self.issue("-d", "www.otherca.test", *self.http(), ca_identity=False)
        self.assertIn("CAA preflight cannot run", proc.stderr)
        self.assert_issued(proc.doc, ["www.otherca.test"])
        self.assertIsNone(proc.doc["preflight"])
        self.assertNotRegex(proc.stderr, PREFLIGHT_LINE % 1)

    def test_wildcard_without_dns01_is_usage_error(self):
        # CAs validate wildcards only with dns-01: no point ordering with http-01.
        proc = self.issue("-d", "*.wild.nocaa.test", *self.http(), expect=64, json_out=False)
        self.assertIn("*.wild.nocaa.test is a wildcard", proc.stderr)
        self.assertIn("dns-01", proc.stderr)
        self.assertEqual(proc.pebble_log, "")

    def test_wildcard_judged_for_dns01_in_a_mixed_list(self):
        # http-01 comes first, but the wildcard can only use dns-01: it is judged
        # for dns-01 (allowed here), and its base name keeps http-01.
        proc = self.issue("--dry-run", "-d", "*.methods.test", "-d", "www.nocaa.test",
                          "--challenge", "http-01,dns-01", *self.http(), *self.dns())
        self.assertEqual(proc.doc["methods"], {"*.methods.test": "dns-01",
                                               "www.nocaa.test": "http-01"})
        wild = proc.doc["preflight"]["results"][0]
        self.assertEqual((wild["status"], wild["method"]), ("allowed", "dns-01"))

    def test_failure_still_prints_one_json_object(self):
        # An empty state dir and no --agree-tos: exit 78, and --json still gives
        # an object saying so (the message is on stderr).
        empty = os.path.join(self.tmp.name, "empty")
        proc = self.issue("-d", "www.nocaa.test", *self.http(), expect=78, state=empty)
        self.assertEqual(proc.doc["outcome"], "failed")
        self.assertEqual(proc.doc["exit_status"], 78)
        self.assertEqual(proc.doc["names"], ["www.nocaa.test"])
        self.assertIsNone(proc.doc["preflight"])
        self.assertIn("no account", proc.stderr)

    def test_bad_preflight_mode_is_usage_error(self):
        proc = self.issue("-d", "www.nocaa.test", *self.http(), "--caa-preflight=maybe",
                          expect=64, json_out=False)
        self.assertIn("maybe", proc.stderr)
        self.assertEqual(proc.pebble_log, "")


class DryRun(PreflightCase):
    """--dry-run: everything but the order; --dry-run=order: everything but saving."""

    def new_account_path(self):
        return urllib.parse.urlsplit(self.pebble.directory()["newAccount"]).path

    def test_check_changes_nothing_and_orders_nothing(self):
        names = ["methods.test", "www.nocaa.test"]
        before = tree_snapshot(self.state)
        proc = self.issue("--dry-run", "-d", names[0], "-d", names[1], "--challenge",
                          "http-01,dns-01", *self.http(), *self.dns())
        self.assertEqual(tree_snapshot(self.state), before)
        self.assert_nothing_ordered(proc)
        self.assertNotIn("POST %s " % self.new_account_path(), proc.pebble_log)
        doc = proc.doc
        self.assertEqual(doc["dry_run"], "check")
        self.assertEqual(doc["cert_name"], "methods.test")
        self.assertEqual(doc["names"], names)
        self.assertEqual(doc["server"], self.pebble.directory_url)
        self.assertEqual(doc["account_url"], self.account_url)
        self.assert_preflight_shape(doc["preflight"])  # judged for dns-01 and http-01
        self.assertEqual([r["status"] for r in doc["preflight"]["results"]],
                         ["allowed", "allowed"])
        self.assertEqual([r["method"] for r in doc["preflight"]["results"]],
                         ["dns-01", "http-01"])
        self.assertEqual(doc["methods"], {"methods.test": "dns-01", "www.nocaa.test": "http-01"})
        self.assertIsInstance(doc["checks"], list)
        self.assertTrue(doc["checks"])
        for check in doc["checks"]:
            self.assertEqual(set(check), {"check", "ok", "detail"}, check)
            self.assertIsInstance(check["check"], str)
            self.assertIsInstance(check["detail"], str)
            self.assertIs(check["ok"], True, check)
        self.assertNotIn("live_dir", doc)
        self.assert_preflight_line(proc, 2)

    def test_check_of_a_hundred_names_is_one_round_trip(self):
        # Issue 17: every identifier and all its parents (shared ones once) go
        # out in one wave; the resolver's own count says none was lost or
        # sent twice.  A structural count, not a timing.
        names = ["h%03d.svc%d.nocaa.test" % (i, i % 4) for i in range(100)]
        distinct = {".".join(n.split(".")[k:]) for n in names for k in range(4)}
        self.assertEqual(len(distinct), 106)
        before = self.lab.resolver_queries()
        proc = self.issue("--dry-run", *sum((["-d", n] for n in names), []), *self.http())
        received = self.lab.resolver_queries() - before
        p = proc.doc["preflight"]
        self.assertEqual([r["status"] for r in p["results"]], ["allowed"] * 100)
        self.assertEqual(p["queries"], 106)
        self.assertEqual(received, 106)
        self.assertEqual(p["round_trips"], 1)
        self.assertRegex(proc.stderr, r"(?m)^certpilot: CAA preflight: 100 identifiers, "
                                      r"106 DNS queries, 1 round trip, ")
        self.assert_nothing_ordered(proc)

    def test_check_without_state_dir_creates_none(self):
        # No account yet, and --agree-tos: a dry run still registers nothing.
        state = os.path.join(self.tmp.name, "fresh-state")
        proc = self.issue("--dry-run", "--agree-tos", "-d", "www.nocaa.test", *self.http(),
                          state=state)
        self.assertFalse(os.path.lexists(state), "the dry run created %s" % state)
        self.assert_nothing_ordered(proc)
        self.assertNotIn("POST %s " % self.new_account_path(), proc.pebble_log)
        self.assertEqual(proc.doc["dry_run"], "check")
        self.assertIsNone(proc.doc["account_url"])
        self.assertEqual(proc.doc["methods"], {"www.nocaa.test": "http-01"})
        self.assert_preflight_shape(proc.doc["preflight"], "http-01", account_uri=None)

    def test_check_refused_by_caa(self):
        before = tree_snapshot(self.state)
        proc = self.issue("--dry-run", "-d", "www.otherca.test", *self.http(), expect=1)
        self.assertEqual(tree_snapshot(self.state), before)
        self.assert_nothing_ordered(proc)
        self.assertEqual(proc.doc["preflight"]["results"][0]["status"], "denied")

    def test_check_warns_about_a_malformed_method_after_the_match(self):
        proc = self.issue("--dry-run", "-d", "www.methwarn.test", *self.http())
        self.assert_nothing_ordered(proc)
        result = proc.doc["preflight"]["results"][0]
        self.assertEqual(result["status"], "allowed")
        self.assertEqual(result["method"], "http-01")
        self.assertIn('"http_01" in its validationmethods', result["warning"])
        self.assertIn('methwarn.test. CAA 0 issue "%s; validationmethods=http-01"' % CA_ID,
                      result["warning"])
        text = self.issue("--dry-run", "-d", "www.methwarn.test", *self.http(), json_out=False)
        self.assertIn("www.methwarn.test: allowed (http-01)\n  Warning:\n", text.stdout)
        # Judged for dns-01 the walk reaches http_01 first: refused, nothing ordered.
        proc = self.issue("--dry-run", "-d", "www.methwarn.test", "--challenge", "dns-01",
                          *self.dns(), expect=1)
        self.assert_nothing_ordered(proc)
        self.assertEqual(proc.doc["preflight"]["results"][0]["status"], "denied")

    def test_check_with_busy_http_port(self):
        sock = busy_port()
        port = sock.getsockname()[1]
        try:
            before = tree_snapshot(self.state)
            text = self.issue("--dry-run", "-d", "www.nocaa.test", "--standalone",
                              "--http-port", str(port), expect=None, json_out=False)
            js = self.issue("--dry-run", "-d", "www.nocaa.test", "--standalone",
                            "--http-port", str(port), expect=None)
        finally:
            sock.close()
        for proc in (text, js):
            self.assertNotEqual(proc.returncode, 0, self.describe(proc))
            self.assertNotEqual(proc.returncode, 70, self.describe(proc))
            self.assertLess(proc.returncode, 128, self.describe(proc))
            self.assert_nothing_ordered(proc)
        self.assertIn(str(port), text.stderr)
        # The JSON summary holds the failed check.
        failed = [c for c in js.doc.get("checks", []) if not c["ok"]]
        self.assertEqual(len(failed), 1, js.stdout)
        self.assertIn(str(port), failed[0]["check"] + failed[0]["detail"])
        self.assertEqual(tree_snapshot(self.state), before)

    def test_order_saves_nothing(self):
        before = tree_snapshot(self.state)
        proc = self.issue("--dry-run=order", "-d", "www.nocaa.test", *self.http())
        self.assertEqual(tree_snapshot(self.state), before)
        # A real order, validated, finalized and downloaded.
        self.assertIn("order-plz", proc.pebble_log)
        self.assertIn("POST /finalize-order/", proc.pebble_log)
        self.assertIn("POST /certZ/", proc.pebble_log)
        self.assertIsNotNone(proc.doc["preflight"])
        self.assertEqual(proc.doc["methods"], {"www.nocaa.test": "http-01"})
        self.assertNotIn("live_dir", proc.doc)  # there is none

    def test_order_without_state_dir_registers_but_saves_nothing(self):
        state = os.path.join(self.tmp.name, "fresh-state")
        proc = self.issue("--dry-run=order", "--agree-tos", "-d", "www.nocaa.test", *self.http(),
                          state=state)
        self.assertFalse(os.path.lexists(state), "the dry run created %s" % state)
        self.assertIn("POST %s " % self.new_account_path(), proc.pebble_log)
        self.assertIn("POST /finalize-order/", proc.pebble_log)

    def test_order_refused_for_letsencrypt_production(self):
        # No traffic at all: under strace, no connect()/sendto() to an IP
        # address; without strace, in a network namespace with nothing in it.
        state = os.path.join(self.tmp.name, "fresh-state")
        for server in ("letsencrypt", "https://acme-v02.api.letsencrypt.org/directory"):
            with self.subTest(server=server):
                trace = os.path.join(self.tmp.name, "strace.txt")
                env = with_asan_option(dict(os.environ), "detect_leaks=0")  # LSan vs ptrace
                if shutil.which("strace"):
                    wrap = ["strace", "-f", "-qq", "-o", trace,
                            "-e", "trace=connect,sendto,sendmsg,sendmmsg"]
                elif shutil.which("unshare"):
                    wrap = ["unshare", "--net"]
                else:
                    self.skipTest("neither strace nor unshare to show that nothing is sent")
                proc = self.certpilot("issue", "--dry-run=order", "--server", server,
                                      "--state-dir", state, "-d", "example.com", "--standalone",
                                      "--http-port", str(self.pebble.http_port),
                                      expect=64, env=env, wrap=wrap, ca=False)
                self.assertIn("--dry-run", proc.stderr)
                self.assertFalse(os.path.lexists(state))
                if wrap[0] == "strace":
                    with open(trace) as f:
                        calls = f.read()
                    self.assertNotRegex(calls, r"AF_INET6?\b", calls)


class RecheckBeforeFinalize(PreflightCase):
    """Pebble reuses every valid authorization: the CAA recheck before finalize."""

    pebble_env = {"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "100"}
    bind_to_account = None

    @classmethod
    def declare_zones(cls, lab):
        for zone in ("recent.test", "old.test"):
            lab.zone(zone, '@ CAA 0 issue "%s"' % CA_ID)

    def validate_with_http01_then_allow_only_dns01(self, zone):
        first = self.issue("-d", zone, *self.http())
        self.assertIn("/chalZ/", first.stderr)  # validated now, with http-01
        self.assertEqual(first.doc["methods"], {zone: "http-01"})
        self.lab.update(zone, "del %s. CAA" % zone,
                        'add %s. 60 CAA 0 issue "%s; validationmethods=dns-01"' % (zone, CA_ID))
        self.lab.flush()
        return first

    def test_recent_authorization_is_not_rechecked(self):
        self.validate_with_http01_then_allow_only_dns01("recent.test")
        proc = self.issue("-d", "recent.test", "--challenge", "dns-01", *self.dns(),
                          "--force-renewal")
        # The authorization was reused (no challenge answered), and it is recent:
        # nothing is rechecked (-v may still say that none was due).
        self.assertNotIn("/chalZ/", proc.stderr)
        for line in proc.stderr.splitlines():
            if line.startswith(RECHECK_LINE):
                self.assertRegex(line, r": 0 of 1 ", proc.stderr)
        self.assertIn("POST /finalize-order/", proc.pebble_log)
        self.assert_issued(proc.doc, ["recent.test"])
        self.assertEqual(proc.doc["preflight"]["results"][0]["method"], "dns-01")

    @unittest.skipUnless(shutil.which("faketime"),
                         "needs faketime (Debian package faketime) to age the authorization")
    def test_old_authorization_is_rechecked_for_its_own_type(self):
        first = self.validate_with_http01_then_allow_only_dns01("old.test")
        versions = os.path.join(first.doc["live_dir"], "versions")
        self.assertEqual(len(os.listdir(versions)), 1)
        # certpilot 8 h in the future: the authorization Pebble reuses was
        # validated (with http-01) 8 h ago.  An ASan build must let libfaketime
        # be preloaded before its runtime.
        env = with_asan_option(dict(os.environ), "verify_asan_link_order=0")
        proc = self.issue("-d", "old.test", "--challenge", "dns-01", *self.dns(),
                          "--force-renewal", expect=1,
                          wrap=["faketime", "-f", "+8h"], env=env)
        self.assertIn("order-plz", proc.stderr)  # the preflight (dns-01) let it order
        self.assertNotIn("/chalZ/", proc.stderr)
        self.assertIn(RECHECK_LINE, proc.stderr)
        self.assertNotIn("finalize-order", proc.stderr)
        self.assertNotIn("finalize", proc.pebble_log)
        self.assert_refused_doc(proc.doc, ["old.test"], stage="recheck", method="http-01")
        r = proc.doc["preflight"]["results"][0]
        self.assertEqual(r["status"], "denied")
        self.assertEqual(r["method"], "http-01")  # the type that validated it
        self.assertEqual(r["allowed_methods"], ["dns-01"])
        self.assertEqual(r["problem"]["detail"], caa_deny_detail("old.test", "old.test"))
        self.assertEqual(len(os.listdir(versions)), 1)  # nothing stored
        # The same in text: the refusal message and the report.
        proc = self.issue("-d", "old.test", "--challenge", "dns-01", *self.dns(),
                          "--force-renewal", expect=1,
                          json_out=False, wrap=["faketime", "-f", "+8h"], env=env)
        self.assertIn("old.test: REFUSED by the CAA record set at old.test", proc.stdout)
        self.assertNotIn("finalize", proc.pebble_log)


if __name__ == "__main__":
    unittest.main()
