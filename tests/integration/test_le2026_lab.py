#!/usr/bin/python3
"""Let's Encrypt 2026-2028 foundations (issue 16) on the lab, through acme/
(tests/tools/acme_probe) and the lab's ACME proxy (tests/lab/ari_proxy.py):

- profiles (draft-aaron-acme-profiles): the proxy advertises classic,
  tlsserver and shortlived; preferred and required choices; the profile in
  newOrder and echoed in the order; invalidProfile for an unknown one;
- IP address identifiers (RFC 8738) against Pebble 2.4: 127.0.0.1 and ::1
  with http-01 and tls-alpn-01 (reverse-name SNI), iPAddress SANs, dns-01
  refused before anything is deployed;
- dns-persist-01 (draft-ietf-acme-dns-persist): records in the lab's Knot
  zone, checked by the proxy against the JWS kid; records that pass and
  records that must fail, each rule.

Every test makes its own account (fresh key), so Pebble's authorization
reuse never decides an outcome.

By hand: ACME_PROBE=build/tests/acme_probe /usr/bin/python3 tests/integration/test_le2026_lab.py -v
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from cplab import Lab, Pebble, ipv6_loopback, responder  # noqa: E402

ACME_PROBE = os.environ.get("ACME_PROBE", "build/tests/acme_probe")
PROBE_ENV = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
QUIET = {"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}


def probe(*args):
    r = subprocess.run([ACME_PROBE] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=120, env=PROBE_ENV)
    if r.returncode != 0:
        raise AssertionError("acme_probe %s: exit %d\n%s" % (args[0], r.returncode, r.stderr))
    return json.loads(r.stdout)


class Profiles(unittest.TestCase):
    """A proxy advertising Let's Encrypt's three profiles."""

    @classmethod
    def setUpClass(cls):
        cls.lab = Lab()
        try:
            cls.lab.start()
            cls.pebble = cls.lab.pebble(env=QUIET, profiles=True)
            cls.plain = cls.lab.pebble(env=QUIET)
        except BaseException:
            cls.lab.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()

    def issue(self, *args, pebble=None, url=None):
        pebble = pebble or self.pebble
        return probe("issue", "--ca-bundle", pebble.ca_bundle, "--http-port", pebble.http_port,
                     *args, url or pebble.ari_directory_url, self.id().rsplit(".", 1)[-1]
                     .replace("_", "-") + ".test")

    def test_directory_lists_profiles(self):
        out = self.issue("--profile", "classic")
        self.assertEqual(out["profiles"], Pebble.LE_PROFILES)

    def test_preferred_profile_sent_and_echoed(self):
        before = len(self.pebble.ari_new_orders())
        out = self.issue("--profile", "shortlived")
        self.assertTrue(out["ok"], out["error"])
        self.assertEqual(out["profile_sent"], "shortlived")
        self.assertEqual(out["profile"], "shortlived")  # the order, as the CA echoed it
        orders = self.pebble.ari_new_orders()[before:]
        self.assertEqual([o.get("profile") for o in orders], ["shortlived"])

    def test_required_offered_profile(self):
        out = self.issue("--profile", "tlsserver", "--require-profile")
        self.assertTrue(out["ok"], out["error"])
        self.assertEqual(out["profile"], "tlsserver")

    def test_no_profile_asked_none_sent(self):
        before = len(self.pebble.ari_new_orders())
        out = self.issue()
        self.assertTrue(out["ok"], out["error"])
        self.assertIsNone(out["profile"])
        self.assertNotIn("profile", self.pebble.ari_new_orders()[before])

    def test_preferred_unknown_profile_left_out(self):
        before = len(self.pebble.ari_new_orders())
        out = self.issue("--profile", "longlived")
        self.assertTrue(out["ok"], out["error"])
        self.assertIsNone(out["profile_sent"])
        self.assertIsNone(out["profile"])
        self.assertNotIn("profile", self.pebble.ari_new_orders()[before])

    def test_required_unknown_profile_fails_before_new_order(self):
        before = len(self.pebble.ari_new_orders())
        out = self.issue("--profile", "longlived", "--require-profile")
        self.assertFalse(out["ok"])
        self.assertEqual(out["error"]["message"],
                         'the profile "longlived" is required, but this CA offers only: '
                         "classic, tlsserver, shortlived")
        self.assertEqual(len(self.pebble.ari_new_orders()), before)

    def test_required_profile_without_any_offered(self):
        out = self.issue("--profile", "shortlived", "--require-profile", pebble=self.plain,
                         url=self.plain.directory_url)
        self.assertFalse(out["ok"])
        self.assertIn("this CA offers no profiles", out["error"]["message"])
        self.assertEqual(out["profiles"], {})

    def test_preferred_profile_without_any_offered(self):
        out = self.issue("--profile", "shortlived", pebble=self.plain,
                         url=self.plain.directory_url)
        self.assertTrue(out["ok"], out["error"])
        self.assertIsNone(out["profile_sent"])

    def test_unknown_profile_refused_by_the_ca(self):
        before = len(self.pebble.ari_new_orders())
        at_pebble = self.orders_at_pebble()
        out = self.issue("--send-profile", "longlived")
        self.assertFalse(out["ok"])
        self.assertEqual(out["problem"]["type"], "urn:ietf:params:acme:error:invalidProfile")
        self.assertIn("longlived", out["problem"]["detail"])
        self.assertEqual(out["error"]["code"], "refused by the CA")
        self.assertEqual(len(self.pebble.ari_new_orders()), before + 1)
        self.assertEqual(self.orders_at_pebble(), at_pebble)  # answered by the proxy alone

    def orders_at_pebble(self):
        with open(self.pebble.log) as f:
            return sum("POST /order-plz" in line for line in f)


class IpIdentifiers(unittest.TestCase):
    """RFC 8738 against Pebble 2.4, through the proxy (to see the payloads)."""

    @classmethod
    def setUpClass(cls):
        cls.lab = Lab()
        try:
            cls.lab.start()
            cls.pebble = cls.lab.pebble(env=QUIET, ari=True)
        except BaseException:
            cls.lab.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()

    def issue(self, *args):
        return probe("issue", "--ca-bundle", self.pebble.ca_bundle, *args)

    def check_issued(self, out, sans):
        self.assertTrue(out["ok"], out["error"])
        self.assertEqual(sorted(out["sans"]), sorted(sans))

    def test_ipv4_http01(self):
        before = len(self.pebble.ari_new_orders())
        out = self.issue("--http-port", self.pebble.http_port, "--bind", "127.0.0.1",
                         self.pebble.ari_directory_url, "127.0.0.1")
        self.check_issued(out, ["IP:127.0.0.1"])
        self.assertEqual(out["authzs"], [{"ident": "127.0.0.1", "type": "http-01",
                                          "reused": False}])
        self.assertEqual(self.pebble.ari_new_orders()[before]["identifiers"],
                         [{"type": "ip", "value": "127.0.0.1"}])

    def test_ipv4_tlsalpn01(self):
        out = self.issue("--tls-port", self.pebble.tls_port, "--bind", "127.0.0.1",
                         "--method", "tls-alpn-01", self.pebble.ari_directory_url, "127.0.0.1")
        self.check_issued(out, ["IP:127.0.0.1"])
        self.assertEqual(out["authzs"][0]["type"], "tls-alpn-01")

    def test_ip_and_dns_name_together(self):
        out = self.issue("--http-port", self.pebble.http_port, self.pebble.ari_directory_url,
                         "127.0.0.1", "mixed.test")
        self.check_issued(out, ["IP:127.0.0.1", "DNS:mixed.test"])

    def test_ipv6_http01_normalized(self):
        if not ipv6_loopback():
            self.skipTest("no ::1 on this machine")
        before = len(self.pebble.ari_new_orders())
        out = self.issue("--http-port", self.pebble.http_port, "--bind", "::1",
                         self.pebble.ari_directory_url, "0:0:0:0:0:0:0:1")
        self.check_issued(out, ["IP:::1"])
        self.assertEqual(self.pebble.ari_new_orders()[before]["identifiers"],
                         [{"type": "ip", "value": "::1"}])

    def test_ipv6_tlsalpn01(self):
        if not ipv6_loopback():
            self.skipTest("no ::1 on this machine")
        out = self.issue("--tls-port", self.pebble.tls_port, "--bind", "::1",
                         "--method", "tls-alpn-01", self.pebble.ari_directory_url, "::1")
        self.check_issued(out, ["IP:::1"])

    def test_dns01_refused_for_ip(self):
        out = self.issue("--method", "dns-01", self.pebble.ari_directory_url, "127.0.0.1")
        self.assertFalse(out["ok"])
        self.assertEqual(out["failed_identifier"], "127.0.0.1")
        self.assertIsNone(out["failed_type"])
        self.assertIn("dns-01 cannot validate the IP address 127.0.0.1", out["error"]["message"])
        self.assertEqual(out["authzs"], [])

    def test_dns01_skipped_for_ip_when_http01_follows(self):
        out = self.issue("--method", "dns-01", "--method", "http-01", "--http-port",
                         self.pebble.http_port, self.pebble.ari_directory_url, "127.0.0.1")
        self.check_issued(out, ["IP:127.0.0.1"])
        self.assertEqual(out["authzs"][0]["type"], "http-01")

    def test_authorization_for_another_identifier_refused(self):
        """Authorizations are matched by type and value: one for the address
        as a dns name, or for another address, is not the order's."""
        for ident in ({"type": "dns", "value": "127.0.0.1"}, {"type": "ip", "value": "127.0.0.2"}):
            self.pebble.break_protocol(identifier=ident)
            try:
                out = self.issue("--http-port", self.pebble.http_port,
                                 self.pebble.ari_directory_url, "127.0.0.1")
            finally:
                self.pebble.break_protocol()
            self.assertFalse(out["ok"])
            self.assertEqual(out["error"]["message"],
                             "the CA sent an authorization for %s identifier %s, which the order "
                             "did not ask for" % (ident["type"], ident["value"]))
            self.assertEqual(out["authzs"], [])


ISSUER = "letsencrypt.org"


class DnsPersist(unittest.TestCase):
    """dns-persist-01 offered by the proxy, records in Knot's persist.test."""

    @classmethod
    def setUpClass(cls):
        cls.lab = Lab()
        try:
            cls.lab.zone("persist.test")
            cls.lab.start()
            cls.pebble = cls.lab.pebble(env=QUIET, persist_issuer=ISSUER)
        except BaseException:
            cls.lab.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="cptest-")
        self.key = os.path.join(self.tmp.name, "account.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-out", self.key], check=True,
                       capture_output=True)
        self.kid = self.account(self.key)
        self.name = self.id().rsplit(".", 1)[-1].replace("_", "-") + ".persist.test"

    def tearDown(self):
        self.tmp.cleanup()

    def account(self, key):
        out = probe("account", "--ca-bundle", self.pebble.ca_bundle, "--account-key", key,
                    self.pebble.ari_directory_url)
        self.assertIsNone(out["error"])
        return out["kid"]

    def publish(self, owner_name, *values):
        commands = ['add _validation-persist.%s. 60 TXT "%s"' % (owner_name, v) for v in values]
        self.lab.update("persist.test", *commands)
        self.lab.flush()

    def record(self, name, *options, account=None):
        out = probe("persist-record", *options, ISSUER, account or self.kid, name)
        self.assertIsNone(out["error"])
        return out

    def issue(self, *names):
        return probe("issue", "--ca-bundle", self.pebble.ca_bundle, "--account-key", self.key,
                     "--method", "dns-persist-01", self.pebble.ari_directory_url, *names)

    def assert_issued(self, out, names):
        self.assertTrue(out["ok"], out["error"])
        self.assertEqual(sorted(out["sans"]), sorted("DNS:" + n for n in names))
        self.assertEqual({a["type"] for a in out["authzs"]}, {"dns-persist-01"})
        self.assertIsNone(self.pebble.persist_checks()[-1]["reason"])

    def assert_refused(self, out, reason):
        self.assertFalse(out["ok"])
        self.assertEqual(out["failed_type"], "dns-persist-01")
        self.assertEqual(out["problem"]["type"], "urn:ietf:params:acme:error:unauthorized")
        self.assertIn(reason, out["problem"]["detail"])
        self.assertEqual(out["error"]["code"], "challenge failed")
        check = self.pebble.persist_checks()[-1]
        self.assertEqual(check["account"], self.kid)
        self.assertIn(reason, check["reason"])

    # -- records that pass

    def test_record_built_by_certpilot_passes(self):
        rec = self.record(self.name)
        self.assertEqual(rec["owner"], "_validation-persist." + self.name)
        self.publish(self.name, rec["value"])
        out = self.issue(self.name)
        self.assert_issued(out, [self.name])
        self.assertEqual(out["issuer_domain_names"], [ISSUER])  # the directory's (§3.2)

    def test_wildcard_with_policy_passes(self):
        rec = self.record("*." + self.name)
        self.assertIn("; policy=wildcard", rec["value"])
        self.publish(self.name, rec["value"])
        out = self.issue("*." + self.name)
        self.assert_issued(out, ["*." + self.name])
        self.assertTrue(self.pebble.persist_checks()[-1]["wildcard"])

    def test_future_persist_until_passes(self):
        rec = self.record(self.name, "--until", int(time.time()) + 86400)
        self.assertIn("persistUntil=", rec["value"])
        self.publish(self.name, rec["value"])
        self.assert_issued(self.issue(self.name), [self.name])

    def test_one_good_record_among_others_passes(self):
        self.publish(self.name, "pki.goog; accounturi=%s" % self.kid,
                     "%s; accounturi=%s/0" % (ISSUER, self.kid),
                     "%s; accounturi=%s" % (ISSUER, self.kid))
        self.assert_issued(self.issue(self.name), [self.name])

    def test_policy_case_and_unknown_parameters(self):
        self.publish(self.name, "LetsEncrypt.org; future=1; accounturi=%s; policy=WILDCARD"
                     % self.kid)
        self.assert_issued(self.issue("*." + self.name), ["*." + self.name])

    # -- records that must fail

    def test_other_account_refused(self):
        other_key = os.path.join(self.tmp.name, "other.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-out", other_key], check=True,
                       capture_output=True)
        other = self.account(other_key)
        self.assertNotEqual(other, self.kid)
        self.publish(self.name, self.record(self.name, account=other)["value"])
        self.assert_refused(self.issue(self.name), "is for the account %s" % other)

    def test_other_issuer_refused(self):
        self.publish(self.name, "pki.goog; accounturi=%s" % self.kid)
        self.assert_refused(self.issue(self.name), "names the issuer 'pki.goog'")

    def test_wildcard_without_policy_refused(self):
        self.publish(self.name, self.record(self.name)["value"])
        self.assert_refused(self.issue("*." + self.name), "lacks policy=wildcard")

    def test_expired_persist_until_refused(self):
        until = int(time.time()) - 60
        self.publish(self.name, self.record(self.name, "--until", until)["value"])
        self.assert_refused(self.issue(self.name), "expired at persistUntil=%d" % until)

    def test_missing_record_refused(self):
        self.assert_refused(self.issue(self.name), "no TXT record at _validation-persist."
                            + self.name)

    def test_record_without_accounturi_refused(self):
        self.publish(self.name, ISSUER)
        self.assert_refused(self.issue(self.name), "has no accounturi")

    def test_malformed_persist_until_refused(self):
        self.publish(self.name, "%s; accounturi=%s; persistUntil=tomorrow" % (ISSUER, self.kid))
        self.assert_refused(self.issue(self.name), "is not a base-10 integer")

    def test_second_issuer_domain_name_passes(self):
        """draft §4.3: a record naming any of the challenge's issuer domain names."""
        self.pebble.set_persist_issuers(["ca.example.net", ISSUER])
        try:
            self.publish(self.name, self.record(self.name)["value"])
            self.assert_issued(self.issue(self.name), [self.name])
        finally:
            self.pebble.set_persist_issuers([ISSUER])

    def test_challenge_with_bad_issuer_list_refused_by_the_client(self):
        """draft §3.1: 1 to 10 issuer domain names, or the client refuses the challenge."""
        self.publish(self.name, self.record(self.name)["value"])
        for names in ([], ["ca%d.example" % i for i in range(10)] + [ISSUER]):
            self.pebble.set_persist_issuers(names)
            checks = len(self.pebble.persist_checks())
            try:
                out = self.issue(self.name)
            finally:
                self.pebble.set_persist_issuers([ISSUER])
            self.assertFalse(out["ok"])
            self.assertIn("issuerDomainNames is not a list of 1 to 10 names",
                          out["error"]["message"])
            self.assertEqual(len(self.pebble.persist_checks()), checks)  # nothing answered

    def test_record_published_after_a_refusal_passes(self):
        self.assert_refused(self.issue(self.name), "no TXT record")
        self.publish(self.name, self.record(self.name)["value"])
        self.assert_issued(self.issue(self.name), [self.name])


class PersistServers(unittest.TestCase):
    """caa_persist_servers(): the record as each authoritative server serves it."""

    ACCOUNT = "https://ca.example/acct/1"
    GOOD = '_validation-persist.both 60 TXT "letsencrypt.org; accounturi=%s"' % ACCOUNT

    @classmethod
    def setUpClass(cls):
        cls.lab = Lab()
        try:
            cls.lab.zone("ns-persist.test", cls.GOOD, servers=["knot", responder()])
            cls.lab.zone("lame-persist.test", cls.GOOD, servers=["knot", "lame"])
            cls.lab.start()
        except BaseException:
            cls.lab.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()

    def servers(self, ident, account=ACCOUNT):
        out = probe("persist-servers", self.lab.resolver, self.lab.auth_port, ISSUER, account,
                    ident)
        self.assertIsNone(out["error"])
        return out

    def test_every_server_serves_it(self):
        out = self.servers("both.ns-persist.test")
        self.assertEqual(out["target"], "_validation-persist.both.ns-persist.test")
        self.assertEqual(out["authorizing"], 2)
        self.assertEqual([s["authorized"] for s in out["servers"]], [True, True])

    def test_a_server_without_the_record(self):
        # Published to knot only; the responder keeps the zone as declared.
        self.lab.update("ns-persist.test", 'add _validation-persist.knotonly.ns-persist.test. 60 '
                        'TXT "letsencrypt.org; accounturi=%s"' % self.ACCOUNT)
        out = self.servers("knotonly.ns-persist.test")
        self.assertEqual(out["authorizing"], 1)
        by_ns = {s["ns"]: s for s in out["servers"]}
        self.assertTrue(by_ns["ns1.ns-persist.test"]["authorized"])
        self.assertFalse(by_ns["ns2.ns-persist.test"]["authorized"])
        self.assertTrue(by_ns["ns2.ns-persist.test"]["answered"])
        self.assertIn("there is no TXT record at _validation-persist.knotonly.ns-persist.test",
                      by_ns["ns2.ns-persist.test"]["reason"])

    def test_rules_applied_per_server(self):
        out = self.servers("*.both.ns-persist.test")
        self.assertEqual(out["authorizing"], 0)
        for s in out["servers"]:
            self.assertIn("lacks policy=wildcard", s["reason"])
        out = self.servers("both.ns-persist.test", account="https://ca.example/acct/2")
        self.assertEqual(out["authorizing"], 0)
        self.assertIn("is for another account", out["servers"][0]["reason"])

    def test_lame_server_reported(self):
        """A server that has forgotten the zone (REFUSED) does not count."""
        out = self.servers("both.lame-persist.test")
        self.assertEqual(out["authorizing"], 1)
        lame = [s for s in out["servers"] if not s["answered"]]
        self.assertEqual(len(lame), 1)
        self.assertEqual(lame[0]["problem"], "REFUSED")
        self.assertFalse(lame[0]["authorized"])


if __name__ == "__main__":
    unittest.main()
