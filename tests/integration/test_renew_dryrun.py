#!/usr/bin/python3
"""`renew --dry-run=check|order` and the webroot check (issue 15) against Pebble.

- DryRun: --dry-run=order reaches the CA (an order created and finalized,
  seen in Pebble's request log) yet leaves the whole state directory
  byte-identical and runs no hook; --dry-run=check orders nothing; a dry
  run says per certificate what a real run would do; --dry-run=order is
  refused for a lineage on Let's Encrypt's production CA before anything is
  sent (no network needed).
- DryRunAri: the dry-run order does not carry ARI "replaces" (the real
  renewal's does), so that it cannot use up the replacement.
- WebrootCheck: before ordering, a probe file under the webroot is fetched
  from the name as the CA would (the name resolved through --resolver:
  pebble-challtestsrv's DNS, which answers 127.0.0.1; the port through
  --webroot-check-port: Pebble's httpPort, where the lab's web server
  listens).  Served: the run goes on; a redirect: reported as not
  confirmed (not followed), the run goes on; 404, other content, nothing
  listening, a name that does not resolve: exit 4 before anything is sent
  to the CA, with the hint; --no-webroot-check (kept in renewal.conf) skips
  it; renew --dry-run=order finds a webroot that stopped being served.
"""

import http.server
import os
import sys
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_renew import RenewCase, file_tree, read, write  # noqa: E402
from test_certbot_spellings import VhostServer  # noqa: E402
from cplab import free_port  # noqa: E402


class FixedAnswer(http.server.BaseHTTPRequestHandler):
    """200 with the same text for every path: another site answering."""

    def do_GET(self):
        body = b"<html>welcome</html>\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Redirect(http.server.BaseHTTPRequestHandler):
    """301 to another site for every path."""

    def do_GET(self):
        self.send_response(301)
        self.send_header("Location", "https://elsewhere.example.test" + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class FixedServer:
    def __init__(self, port, handler=FixedAnswer):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def state_tree(state):
    """Every entry of the state directory, status.json included."""
    return file_tree(state, skip=())


class DryRun(RenewCase):
    def deploy_hook(self):
        return ["--deploy-hook", "%s %s deploy" % (self.hook, self.hook_log)]

    def test_dry_run_order_reaches_the_ca_and_writes_nothing(self):
        name = "dro.example.test"
        self.issue(name, extra=self.http() + self.deploy_hook())
        os.remove(self.hook_log)  # the deploy of the issue itself
        before = state_tree(self.state)
        proc = self.renew("--dry-run=order", "--force-renewal",
                          "--pre-hook", "%s %s pre" % (self.hook, self.hook_log))
        r = self.results(proc.doc)[name]
        self.assertEqual((r["outcome"], r["exit_status"], r["dry_run"]), ("dry_run", 0, "order"))
        self.assertIs(proc.doc["dry_run"], True)
        # The CA created the order and finalized it...
        self.assertIn("POST /order-plz", proc.pebble_log)
        self.assertIn("POST /finalize-order/", proc.pebble_log)
        # ... yet nothing in the state directory changed, and no hook ran.
        self.assertEqual(state_tree(self.state), before)
        self.assertFalse(os.path.exists(self.hook_log))
        self.assertIn("dry run (order): a real run would renew it now", proc.stderr)

    def test_dry_run_says_a_real_run_would_leave_it_alone(self):
        name = "drnd.example.test"
        self.issue(name)
        before = state_tree(self.state)
        proc = self.renew("--dry-run=order", json_out=False)
        self.assertIn("a real run would leave it alone", proc.stderr)
        self.assertRegex(proc.stdout, name + r" +dry_run +order passed; a real run would renew "
                         r"it from \d{4}-")
        self.assertIn("POST /order-plz", proc.pebble_log)  # ordered all the same: it was asked
        self.assertEqual(state_tree(self.state), before)

    def test_dry_run_check_orders_nothing(self):
        name = "drc.example.test"
        self.issue(name)
        before = state_tree(self.state)
        for args in (["--dry-run=check"], ["--dry-run"]):  # bare: check, for a CA not staging
            with self.subTest(args=args):
                proc = self.renew(*args, "--force-renewal")
                r = self.results(proc.doc)[name]
                self.assertEqual((r["outcome"], r["dry_run"]), ("dry_run", "check"))
                self.assertIsNone(r["replaces"])  # this Pebble offers no ARI
                self.assert_nothing_ordered(proc)
                self.assertEqual(state_tree(self.state), before)

    def test_dry_run_order_refused_for_letsencrypt_production(self):
        name = "drp.example.test"
        self.issue(name)
        conf = self.renewal_conf(name)
        text = read(conf)
        write(conf, "".join("server = letsencrypt\n" if line.startswith("server =") else line
                            for line in text.splitlines(True)))
        before = state_tree(self.state)
        proc = self.renew("--dry-run=order", expect=64)
        r = self.results(proc.doc)[name]
        self.assertEqual((r["outcome"], r["exit_status"]), ("refused", 64))
        self.assertIn("production CA", proc.stderr)
        self.assertIn("--dry-run=check", proc.stderr)
        self.assertEqual(state_tree(self.state), before)
        self.assertEqual(proc.pebble_log, "")

    def test_bad_dry_run_mode(self):
        proc = self.renew("--dry-run=maybe", expect=64, json_out=False)
        self.assertIn("--dry-run=check or --dry-run=order", proc.stderr)


class DryRunAri(RenewCase):
    ari = True

    def test_dry_run_order_does_not_claim_the_replacement(self):
        name = "dra.example.test"
        self.issue(name)
        before = len(self.pebble.ari_new_orders())
        # check: nothing ordered, and says what a real run would replace
        proc = self.renew("--dry-run=check", "--force-renewal")
        self.assertEqual(len(self.pebble.ari_new_orders()), before)
        checked = self.results(proc.doc)[name]["replaces"]
        self.assertRegex(checked, r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
        proc = self.renew("--dry-run=check", "--force-renewal", json_out=False)
        self.assertIn("a real run would name the certificate it replaces (ARI): " + checked,
                      proc.stderr + proc.stdout)
        # order: the order carries no "replaces"; the report names it
        proc = self.renew("--dry-run=order", "--force-renewal")
        dry = self.pebble.ari_new_orders()[-1]
        self.assertNotIn("replaces", dry)
        self.assertEqual(self.results(proc.doc)[name]["replaces"], checked)
        self.renew("--force-renewal")
        real = self.pebble.ari_new_orders()[-1]
        self.assertEqual(real.get("replaces"), checked)


class WebrootCheck(RenewCase):
    """Issue and renew with a webroot, the check pointed at the lab."""

    def setUp(self):
        super().setUp()
        self.www = os.path.join(self.tmp.name, "www")
        os.mkdir(self.www)

    def webroot(self, port=None):
        return ["--webroot", self.www, "--resolver", self.pebble.dns_server,
                "--webroot-check-port", str(port or self.pebble.http_port)]

    def assert_stopped_before_the_ca(self, proc):
        self.assertEqual(proc.pebble_log, "", "Pebble was asked something\n" + self.describe(proc))
        self.assertFalse(os.path.exists(os.path.join(self.www, ".well-known")))

    def test_served_webroot_passes_and_is_checked_again_on_renewal(self):
        name = "served.example.test"
        with VhostServer(self.pebble.http_port, {name: self.www}):
            doc = self.issue(name, extra=self.webroot())
            self.assertEqual([(w["name"], w["outcome"]) for w in doc["webroot_check"]],
                             [(name, "served")])
            self.assertEqual(doc["webroot_check"][0]["address"], "127.0.0.1")
            # renew reads the port and resolver back from renewal.conf
            proc = self.renew("--force-renewal", "-v")
            self.assertEqual(self.results(proc.doc)[name]["outcome"], "renewed")
            self.assertIn("webroot check: %s serves %s" % (name, os.path.realpath(self.www)),
                          proc.stderr)
        self.assertEqual(os.listdir(self.www), [])  # probe and challenge files gone

    def test_not_served_404(self):
        name = "nf.example.test"
        other = os.path.join(self.tmp.name, "other")
        os.mkdir(other)
        with VhostServer(self.pebble.http_port, {name: other}):
            proc = self.issue(name, extra=self.webroot(), expect=4)
        self.assertIn("answered 404", proc.stderr)
        self.assertIn("the server at %s does not serve %s; check the webroot" % (name, self.www),
                      proc.stderr)
        self.assertIn("nothing was sent to it", proc.stderr)
        self.assert_stopped_before_the_ca(proc)
        self.assertFalse(os.path.exists(os.path.join(self.state, "certs", name)))

    def test_wrong_content(self):
        name = "wc.example.test"
        with FixedServer(self.pebble.http_port):
            proc = self.issue(name, extra=self.webroot(), expect=4)
        self.assertIn("another server or site answers for " + name, proc.stderr)
        self.assert_stopped_before_the_ca(proc)

    def test_redirect_is_reported_not_followed(self):
        name = "rd.example.test"
        with FixedServer(self.pebble.http_port, Redirect):
            proc = self.certpilot("issue", "--dry-run=check", "--json", "-d", name,
                                  *self.ca_args(), *self.webroot(), "--state-dir", self.state,
                                  json_out=True)
        self.assertIn("redirects to https://elsewhere.example.test/.well-known/acme-challenge/",
                      proc.stderr)
        self.assertIn("not confirmed", proc.stderr)
        checks = [c["check"] for c in proc.doc["checks"] if c["ok"]]
        self.assertTrue(any("not followed" in c for c in checks), proc.doc["checks"])
        self.assert_nothing_ordered(proc)

    def test_nothing_listening(self):
        name = "nl.example.test"
        port = free_port(udp=False)
        proc = self.issue(name, extra=self.webroot(port), expect=4)
        self.assertIn("nothing listens on port %d of 127.0.0.1" % port, proc.stderr)
        self.assert_stopped_before_the_ca(proc)

    def test_name_does_not_resolve(self):
        name = "nowhere.test"  # the lab's resolver: NXDOMAIN (no such zone below test.)
        args = ["--webroot", self.www, "--resolver", self.lab.resolver]
        proc = self.issue(name, extra=args, expect=4)
        self.assertIn("%s does not resolve" % name, proc.stderr)
        self.assertIn("NXDOMAIN", proc.stderr)
        self.assert_stopped_before_the_ca(proc)

    def test_json_of_a_failed_check(self):
        name = "js.example.test"
        port = free_port(udp=False)
        args = ["issue", "--json", "-d", name] + self.ca_args() + self.issue_args() + \
            self.webroot(port) + ["--state-dir", self.state]
        proc = self.certpilot(*args, expect=4, json_out=True)
        self.assertEqual(proc.doc["outcome"], "webroot_check_failed")
        self.assertEqual(proc.doc["exit_status"], 4)
        self.assertEqual([(w["name"], w["outcome"]) for w in proc.doc["webroot_check"]],
                         [(name, "refused")])

    def test_no_webroot_check_is_kept_and_skips_it(self):
        name = "skip.example.test"
        port = free_port(udp=False)  # the check would fail here
        with VhostServer(self.pebble.http_port, {name: self.www}):
            doc = self.issue(name, extra=self.webroot(port) + ["--no-webroot-check"])
            self.assertNotIn("webroot_check", doc)
            self.assertIn("no-webroot-check = yes\n", read(self.renewal_conf(name)))
            proc = self.renew("--force-renewal", "-v")
            self.assertEqual(self.results(proc.doc)[name]["outcome"], "renewed")
            self.assertNotIn("webroot check", proc.stderr)
            # --webroot-check turns it on again (and the check fails on that port)
            proc = self.certpilot("issue", "-d", name, "--force-renewal", "--webroot-check",
                                  *self.ca_args(), "--state-dir", self.state, expect=4)
            self.assertIn("nothing listens on port %d" % port, proc.stderr)

    def test_without_the_check_the_ca_finds_the_404(self):
        name = "ca404.example.test"
        other = os.path.join(self.tmp.name, "other")
        os.mkdir(other)
        with VhostServer(self.pebble.http_port, {name: other}):
            proc = self.issue(name, extra=self.webroot() + ["--no-webroot-check"], expect=4)
        self.assertIn("POST /order-plz", proc.pebble_log)
        self.assertIn("urn:ietf:params:acme:error:", proc.stderr)

    def test_renew_dry_run_order_finds_a_webroot_no_longer_served(self):
        name = "gone.example.test"
        with VhostServer(self.pebble.http_port, {name: self.www}):
            self.issue(name, extra=self.webroot())
        before = state_tree(self.state)
        proc = self.renew("--dry-run=order", "--force-renewal", expect=1)
        r = self.results(proc.doc)[name]
        self.assertEqual((r["outcome"], r["exit_status"]), ("webroot_check_failed", 4))
        self.assertIn("nothing listens on port %d" % self.pebble.http_port, r["message"] +
                      proc.stderr)
        # Stopped before the CA's directory was read: whether it offers ARI
        # is not known, so nothing is said of "replaces".
        self.assertNotIn("replaces", r)
        self.assert_nothing_ordered(proc)
        self.assertEqual(state_tree(self.state), before)


if __name__ == "__main__":
    unittest.main()
