#!/usr/bin/python3
"""`certpilot issue --ip-address` (RFC 8738) and dns-persist-01
(draft-ietf-acme-dns-persist: `persist-record`, `issue --challenge
dns-persist-01`, `doctor --challenge dns-persist-01`) end to end on the lab.

IP identifiers go to Pebble 2.4 directly (it validates 127.0.0.1 and ::1
with http-01 and tls-alpn-01).  dns-persist-01 goes through the lab's proxy
(lab.pebble(persist_issuer=...)), which offers it in place of dns-01 and
checks the record itself; certpilot checks every authoritative server of
the name first and refuses to order when one of them does not authorize.
Every test has its own state directory, so its own account.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
from cplab import Lab, ipv6_loopback, responder  # noqa: E402
sys.path.insert(0, HERE)
from test_issue import serve_directory  # noqa: E402

CERTPILOT = os.path.abspath(os.environ.get("CERTPILOT", os.path.join(ROOT, "build", "certpilot")))
QUIET = {"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
CA_ID = "pebble.test"
ISSUER = "letsencrypt.org"


def sans(live):
    text = subprocess.run(["openssl", "x509", "-in", os.path.join(live, "cert.pem"), "-noout",
                           "-ext", "subjectAltName"], capture_output=True, text=True).stdout
    return sorted(s.strip() for s in text.splitlines()[1].split(","))


class Case(unittest.TestCase):
    persist_issuer = None
    zones = ()

    @classmethod
    def setUpClass(cls):
        cls.lab = Lab()
        try:
            for args, kw in cls.zones:
                cls.lab.zone(*args, **kw)
            cls.lab.start()
            cls.pebble = cls.lab.pebble(env=QUIET, persist_issuer=cls.persist_issuer)
        except BaseException:
            cls.lab.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="cptest-")
        self.state = os.path.join(self.tmp.name, "state")

    def tearDown(self):
        self.tmp.cleanup()

    def server(self):
        return self.pebble.directory_url

    def certpilot(self, *args, expect=0, ca=True):
        argv = [CERTPILOT] + [str(a) for a in args] + ["--state-dir", self.state]
        if ca:
            argv += ["--server", self.server(), "--ca-bundle", self.pebble.ca_bundle]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if expect is not None:
            self.assertEqual(proc.returncode, expect, "exit status of %s\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(argv), proc.stdout, proc.stderr))
        return proc

    def issue(self, *args, expect=0):
        proc = self.certpilot("issue", "--agree-tos", "--json", "--ca-identity", CA_ID,
                              "--resolver", self.lab.resolver, *args, expect=expect)
        return json.loads(proc.stdout) if proc.stdout.strip() else proc


class IpAddresses(Case):
    def http(self):
        return ("--standalone", "--http-port", self.pebble.http_port)

    def test_ipv4_http01_standalone(self):
        doc = self.issue("--ip-address", "127.0.0.1", *self.http())
        self.assertEqual(doc["outcome"], "issued")
        self.assertEqual(doc["names"], ["127.0.0.1"])
        self.assertEqual(doc["methods"], {"127.0.0.1": "http-01"})
        self.assertEqual(sans(doc["live_dir"]), ["IP Address:127.0.0.1"])
        # The preflight said, per identifier, that CAA does not apply.
        result, = doc["preflight"]["results"]
        self.assertEqual(result["identifier"], "127.0.0.1")
        self.assertEqual(result["status"], "not_applicable")
        self.assertIn("CAA applies to DNS names only", result["explanation"])
        self.assertEqual(doc["preflight"]["queries"], 0)

    def test_ipv4_tlsalpn01_text(self):
        proc = self.certpilot("issue", "--agree-tos", "--ca-identity", CA_ID, "--resolver",
                              self.lab.resolver, "--ip-address", "127.0.0.1", "--challenge",
                              "tls-alpn-01", "--standalone", "--tls-port", self.pebble.tls_port)
        self.assertIn("127.0.0.1: not checked (CAA applies to DNS names only", proc.stdout)
        live = os.path.join(self.state, "certs", "127.0.0.1")
        self.assertEqual(sans(live), ["IP Address:127.0.0.1"])

    def test_ipv6_normalized_http01(self):
        if not ipv6_loopback():
            self.skipTest("no ::1 on this machine")
        doc = self.issue("--ip-address", "0:0:0:0:0:0:0:1", *self.http())
        self.assertEqual(doc["names"], ["::1"])
        self.assertEqual(doc["cert_name"], "__1")
        self.assertEqual(sans(doc["live_dir"]), ["IP Address:0:0:0:0:0:0:0:1"])

    def test_ipv6_tlsalpn01(self):
        """A test of its own: a fresh account, so no authorization to reuse."""
        if not ipv6_loopback():
            self.skipTest("no ::1 on this machine")
        doc = self.issue("--ip-address", "::1", "--challenge", "tls-alpn-01", "--standalone",
                         "--tls-port", self.pebble.tls_port)
        self.assertEqual(doc["methods"], {"::1": "tls-alpn-01"})
        self.assertEqual(doc["reused"], [])
        self.assertEqual(sans(doc["live_dir"]), ["IP Address:0:0:0:0:0:0:0:1"])

    def test_name_and_address_together(self):
        doc = self.issue("-d", "mixed.example.test", "--ip-address", "127.0.0.1", *self.http())
        self.assertEqual(sans(doc["live_dir"]),
                         ["DNS:mixed.example.test", "IP Address:127.0.0.1"])
        results = doc["preflight"]["results"]
        self.assertEqual([r["identifier"] for r in results], ["mixed.example.test", "127.0.0.1"])
        self.assertEqual(results[0]["status"], "allowed")
        self.assertEqual(results[1]["status"], "not_applicable")

    def test_webroot_checked_at_the_address(self):
        """The webroot check fetches http://127.0.0.1:PORT/ itself, no DNS."""
        webroot = os.path.join(self.tmp.name, "www")
        os.makedirs(webroot)
        serve_directory(self, self.pebble.http_port, webroot)
        doc = self.issue("--ip-address", "127.0.0.1", "--webroot", webroot,
                         "--webroot-check-port", self.pebble.http_port)
        self.assertEqual(doc["outcome"], "issued")
        check, = doc["webroot_check"]
        self.assertEqual(check["outcome"], "served")
        self.assertEqual(sans(doc["live_dir"]), ["IP Address:127.0.0.1"])

    def test_webroot_check_fails_at_the_address(self):
        webroot = os.path.join(self.tmp.name, "www")
        os.makedirs(webroot)
        doc = self.issue("--ip-address", "127.0.0.1", "--webroot", webroot,
                         "--webroot-check-port", self.pebble.http_port, expect=None)
        self.assertNotEqual(doc["exit_status"], 0)
        check, = doc["webroot_check"]
        self.assertEqual(check["outcome"], "refused")

    def test_dry_run_plans_http01_for_the_address(self):
        doc = self.issue("-d", "plan.example.test", "--ip-address", "127.0.0.1", "--challenge",
                         "dns-01,http-01", "--dns-hook", "/bin/true", "--standalone",
                         "--http-port", self.pebble.http_port, "--dry-run")
        self.assertEqual(doc["methods"], {"plan.example.test": "dns-01", "127.0.0.1": "http-01"})
        self.assertEqual([r["status"] for r in doc["preflight"]["results"]],
                         ["allowed", "not_applicable"])
        self.assertEqual(doc["preflight"]["results"][1]["allowed_methods"], ["http-01"])

    def test_dns01_refused_before_anything_is_sent(self):
        orders = self.orders()
        proc = self.certpilot("issue", "--agree-tos", "--ip-address", "127.0.0.1", "--challenge",
                              "dns-01", "--dns-hook", "/bin/true", expect=64)
        self.assertIn("127.0.0.1 is an IP address, which CAs validate only with http-01 or "
                      "tls-alpn-01 (RFC 8738 §7), not with dns-01", proc.stderr)
        self.assertEqual(self.orders(), orders)
        self.assertFalse(os.path.exists(os.path.join(self.state, "accounts")))

    def test_address_in_d_pointed_to_ip_address(self):
        proc = self.certpilot("issue", "--agree-tos", "-d", "127.0.0.1", "--standalone",
                              expect=64)
        self.assertIn("use --ip-address 127.0.0.1", proc.stderr)

    def test_bad_address_refused(self):
        for bad in ("[::1]", "127.0.0.1:80", "300.1.1.1", "example.test"):
            proc = self.certpilot("issue", "--ip-address", bad, "--standalone", expect=64)
            self.assertIn('--ip-address "%s" is not an IPv4 or IPv6 address' % bad, proc.stderr)

    def test_kept_in_renewal_conf_and_renewed(self):
        doc = self.issue("-d", "renew.example.test", "--ip-address", "127.0.0.1", *self.http())
        with open(os.path.join(doc["live_dir"], "renewal.conf")) as f:
            conf = f.read()
        self.assertIn("ip-address = 127.0.0.1", conf)
        listed = json.loads(self.certpilot("list", "--json", ca=False).stdout)
        self.assertEqual(listed["results"][0]["names"], ["renew.example.test", "127.0.0.1"])
        orders = self.orders()
        proc = self.certpilot("renew", "--force-renewal", "--json", ca=False)
        out = json.loads(proc.stdout)
        self.assertEqual(out["exit_status"], 0, proc.stderr)
        self.assertEqual(self.orders(), orders + 1)
        self.assertEqual(sans(doc["live_dir"]),
                         ["DNS:renew.example.test", "IP Address:127.0.0.1"])

    def test_issue_again_leaves_it_alone(self):
        self.issue("-d", "again.example.test", "--ip-address", "127.0.0.1", *self.http())
        orders = self.orders()
        doc = self.issue("--ip-address", "127.0.0.1", "-d", "again.example.test", "--cert-name",
                         "again.example.test", *self.http())
        self.assertEqual(doc["outcome"], "unchanged")
        self.assertEqual(self.orders(), orders)
        proc = self.certpilot("issue", "-d", "again.example.test", "--cert-name",
                              "again.example.test", "--standalone", expect=64)
        self.assertIn("127.0.0.1", proc.stderr)  # dropping the address needs --replace-names

    def test_address_refused_in_the_defaults_file(self):
        config = os.path.join(self.tmp.name, "certpilot.conf")
        with open(config, "w") as f:
            f.write("ip-address = 127.0.0.1\n")
        proc = self.certpilot("issue", "--config", config, "-d", "x.example.test",
                              "--standalone", expect=None)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("ip-address", proc.stderr)

    def orders(self):
        with open(self.pebble.log) as f:
            return sum("POST /order-plz" in line for line in f)


OTHER_ACCOUNT = "https://127.0.0.1:14000/my-account/999999"


class DnsPersist(Case):
    """dns-persist-01 through the lab's proxy; records in Knot's zones."""

    persist_issuer = ISSUER
    zones = ((("persist.test",), {}),
             (("vm-persist.test", '@ CAA 0 issue "%s; validationmethods=dns-persist-01"'
               % CA_ID), {}),
             (("vm-dns01.test", '@ CAA 0 issue "%s; validationmethods=dns-01"' % CA_ID), {}),
             (("split.test",), {"servers": ["knot", responder(
                 text='_validation-persist.www 60 TXT "%s; accounturi=%s"'
                 % (ISSUER, OTHER_ACCOUNT))]}))

    def server(self):
        return self.pebble.ari_directory_url

    def setUp(self):
        super().setUp()
        doc = json.loads(self.certpilot("account", "register", "--agree-tos", "--json").stdout)
        self.account = doc["url"]
        self.name = self.id().rsplit(".", 1)[-1].replace("_", "-") + ".persist.test"

    def record(self, name, *args):
        return json.loads(self.certpilot("persist-record", "-d", name, "--json", *args).stdout)

    def publish(self, name, *values, zone="persist.test"):
        self.lab.update(zone, *['add _validation-persist.%s. 60 TXT "%s"' % (name, v)
                                for v in values])
        self.lab.flush()

    def persist_issue(self, *names, expect=0, extra=()):
        """The JSON result when expect is 0, else the process."""
        args = []
        for n in names:
            args += ["-d", n]
        proc = self.certpilot("issue", "--agree-tos", "--json", "--ca-identity", CA_ID,
                              "--resolver", self.lab.resolver, *args, "--challenge",
                              "dns-persist-01", "--authoritative-port", self.lab.auth_port,
                              *extra, expect=expect)
        return json.loads(proc.stdout) if expect == 0 else proc

    def assert_refused(self, doc, reason, orders):
        self.assertEqual(doc["outcome"], "persist_check_failed")
        self.assertEqual(doc["exit_status"], 4)
        self.assertEqual(len(self.pebble.ari_new_orders()), orders)  # nothing ordered
        bad = [s for n in doc["persist_check"] for s in n["servers"] if not s["authorizes"]]
        self.assertTrue(bad)
        for s in bad:
            self.assertIn(reason, s["reason"])

    # -- persist-record

    def test_record_for_this_account(self):
        rec = self.record(self.name)
        self.assertEqual(rec["outcome"], "printed")
        self.assertEqual(rec["owner"], "_validation-persist." + self.name)
        self.assertEqual(rec["value"], "%s; accounturi=%s" % (ISSUER, self.account))
        self.assertEqual(rec["zone_line"], '_validation-persist.%s. IN TXT "%s"'
                         % (self.name, rec["value"]))
        text = self.certpilot("persist-record", "-d", "*." + self.name, "--until",
                              "2030-01-01").stdout
        self.assertIn("; policy=wildcard; persistUntil=1893456000", text)
        self.assertIn("_validation-persist.%s. IN TXT" % self.name, text.splitlines()[0])

    def test_record_needs_an_account(self):
        self.state = os.path.join(self.tmp.name, "empty")
        proc = self.certpilot("persist-record", "-d", self.name, "--json", expect=78)
        doc = json.loads(proc.stdout)
        self.assertEqual((doc["outcome"], doc["exit_status"]), ("failed", 78))
        self.assertIn("no account for", proc.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.state, "accounts")))

    def test_record_refuses_an_address(self):
        proc = self.certpilot("persist-record", "-d", "127.0.0.1", expect=64)
        self.assertIn("dns-persist-01 validates DNS names only", proc.stderr)

    # -- issue

    def test_passing_record_issues_without_hooks(self):
        self.publish(self.name, self.record(self.name)["value"])
        doc = self.persist_issue(self.name)
        self.assertEqual(doc["outcome"], "issued")
        self.assertEqual(doc["methods"], {self.name: "dns-persist-01"})
        self.assertEqual(sans(doc["live_dir"]), ["DNS:" + self.name])
        check, = doc["persist_check"]
        self.assertTrue(check["authorized"])
        self.assertEqual([s["authorizes"] for s in check["servers"]], [True])
        last = self.pebble.persist_checks()[-1]
        self.assertEqual((last["account"], last["reason"]), (self.account, None))

    def test_wildcard_with_policy_issues(self):
        self.publish(self.name, self.record("*." + self.name)["value"])
        doc = self.persist_issue("*." + self.name)
        self.assertEqual(doc["outcome"], "issued")
        self.assertEqual(sans(doc["live_dir"]), ["DNS:*." + self.name])

    def test_other_account_refused_before_ordering(self):
        orders = len(self.pebble.ari_new_orders())
        self.publish(self.name, "%s; accounturi=%s" % (ISSUER, OTHER_ACCOUNT))
        doc = self.persist_issue(self.name, expect=4)
        self.assert_refused(json.loads(doc.stdout), "is for another account than " + self.account,
                            orders)
        self.assertIn("nothing was sent to the CA", doc.stderr)

    def test_other_issuer_refused_before_ordering(self):
        orders = len(self.pebble.ari_new_orders())
        self.publish(self.name, "pki.goog; accounturi=%s" % self.account)
        doc = self.persist_issue(self.name, expect=4)
        self.assert_refused(json.loads(doc.stdout), "names another CA than", orders)

    def test_wildcard_without_policy_refused_before_ordering(self):
        orders = len(self.pebble.ari_new_orders())
        self.publish(self.name, self.record(self.name)["value"])
        doc = self.persist_issue("*." + self.name, expect=4)
        self.assert_refused(json.loads(doc.stdout), "lacks policy=wildcard", orders)

    def test_expired_record_refused_before_ordering(self):
        orders = len(self.pebble.ari_new_orders())
        until = int(time.time()) - 60
        self.publish(self.name, self.record(self.name, "--until", until)["value"])
        doc = self.persist_issue(self.name, expect=4)
        self.assert_refused(json.loads(doc.stdout), "expired at persistUntil=%d" % until, orders)

    def test_missing_record_refused_before_ordering(self):
        orders = len(self.pebble.ari_new_orders())
        doc = self.persist_issue(self.name, expect=4)
        self.assert_refused(json.loads(doc.stdout),
                            "no TXT record at _validation-persist." + self.name, orders)

    def test_dry_run_check_refuses_too(self):
        orders = len(self.pebble.ari_new_orders())
        doc = self.persist_issue(self.name, expect=4, extra=("--dry-run",))
        self.assert_refused(json.loads(doc.stdout), "no TXT record", orders)
        self.publish(self.name, self.record(self.name)["value"])
        doc = self.persist_issue(self.name, extra=("--dry-run",))
        self.assertEqual(doc["methods"], {self.name: "dns-persist-01"})
        self.assertTrue(doc["persist_check"][0]["authorized"])

    def test_one_server_of_two_disagrees(self):
        orders = len(self.pebble.ari_new_orders())
        value = self.record("www.split.test")["value"]
        self.publish("www.split.test", value, zone="split.test")
        proc = self.persist_issue("www.split.test", expect=4)
        doc = json.loads(proc.stdout)
        (ns1, a1), (ns2, a2) = self.lab.nameservers("split.test")
        check, = doc["persist_check"]
        self.assertEqual(sorted((s["name"], s["address"], s["authorizes"])
                                for s in check["servers"]),
                         [(ns1, a1, True), (ns2, a2, False)])
        self.assertIn("1 of 2 nameservers of split.test do not authorize; %s (%s): " % (ns2, a2),
                      proc.stderr)
        self.assert_refused(doc, "is for another account than " + self.account, orders)

    def test_caa_validationmethods_dns_persist_01(self):
        """CAA still applies: validationmethods= must allow dns-persist-01."""
        name = "www.vm-persist.test"
        self.publish(name, self.record(name)["value"], zone="vm-persist.test")
        doc = self.persist_issue(name)
        self.assertEqual(doc["outcome"], "issued")
        self.assertEqual(doc["preflight"]["results"][0]["chosen_method"], "dns-persist-01")
        orders = len(self.pebble.ari_new_orders())
        name = "www.vm-dns01.test"
        self.publish(name, self.record(name)["value"], zone="vm-dns01.test")
        proc = self.persist_issue(name, expect=1)
        doc = json.loads(proc.stdout)
        self.assertEqual((doc["outcome"], doc["stage"]), ("caa_refused", "preflight"))
        self.assertEqual(doc["preflight"]["results"][0]["allowed_methods"], ["dns-01"])
        self.assertEqual(len(self.pebble.ari_new_orders()), orders)

    # -- doctor

    def doctor(self, *args, expect=0):
        return subprocess.run(
            [CERTPILOT, "doctor", "--resolver", self.lab.resolver, "--authoritative-port",
             str(self.lab.auth_port), "--method", "dns-persist-01", "--ca-identity", ISSUER,
             *args], capture_output=True, text=True, timeout=60)

    def test_doctor_reports_each_server(self):
        value = self.record("www.split.test")["value"]
        self.publish("www.split.test", value, zone="split.test")
        (ns1, a1), (ns2, a2) = self.lab.nameservers("split.test")
        proc = self.doctor("--account-uri", self.account, "www.split.test")
        self.assertEqual(proc.returncode, 2, proc.stdout + proc.stderr)
        self.assertIn("www.split.test: dns-persist-01 WILL FAIL AT THE CA", proc.stdout)
        self.assertIn("    %s %s: authorizes\n" % (ns1, a1), proc.stdout)
        self.assertIn("    %s %s: the TXT record \"%s; accounturi=%s\" at "
                      "_validation-persist.www.split.test is for another account than %s\n"
                      % (ns2, a2, ISSUER, OTHER_ACCOUNT, self.account), proc.stdout)
        self.assertIn("readiness (dns-persist-01): _validation-persist.www.split.test is in "
                      "zone split.test", proc.stdout)
        proc = self.doctor("--account-uri", OTHER_ACCOUNT, "--json", "www.split.test")
        doc = json.loads(proc.stdout)
        self.assertEqual(doc["exit_status"], 2)
        self.assertEqual(sorted((s["name"], s["authorizes"])
                                for s in doc["persist_check"][0]["servers"]),
                         [(ns1, False), (ns2, True)])

    def test_doctor_ok_and_needs_account(self):
        self.publish(self.name, self.record(self.name)["value"])
        proc = self.doctor("--account-uri", self.account, "--json", self.name)
        doc = json.loads(proc.stdout)
        self.assertEqual((doc["outcome"], doc["exit_status"]), ("ok", 0), proc.stderr)
        self.assertTrue(doc["persist_check"][0]["authorized"])
        proc = self.doctor(self.name)
        self.assertEqual(proc.returncode, 64)
        self.assertIn("--method dns-persist-01 needs --account-uri", proc.stderr)


if __name__ == "__main__":
    unittest.main()
