#!/usr/bin/python3
"""issue --preferred-profile / --required-profile and renew (issue 16) on the lab.

- Offered: Pebble behind the lab's ACME proxy, which advertises Let's
  Encrypt's profiles (classic, tlsserver, shortlived), records the profile of
  each newOrder and echoes it in the order.  A preferred or required profile
  is sent, recorded in the lineage's status, shown by list (text and JSON)
  and issue --json, kept in renewal.conf and sent again by renew; a required
  profile the CA does not offer stops the run before newOrder (exit 78, the
  offered list in the message); both options at once are refused (exit 64).
- NotOffered: a plain Pebble, whose directory lists no profiles: a preferred
  profile is left out with a note and the certificate issued; a required one
  fails before anything is ordered.

That nothing was ordered is read from the proxy's recorded newOrders and from
Pebble's own request log ("POST /order-plz").
"""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_renew import RenewCase, read  # noqa: E402

OFFERED = "classic, tlsserver, shortlived"


class ProfileCase(RenewCase):
    def issue_profile(self, name, *profile_args, expect=0):
        """issue NAME with the profile options; the process (JSON in proc.doc)."""
        args = ["issue", "--json", "-d", name] + self.ca_args() + self.issue_args()
        args += self.http() + list(profile_args) + ["--state-dir", self.state]
        return self.certpilot(*args, expect=expect, json_out=True)

    def assert_result(self, proc, outcome, status):
        self.assertEqual((proc.doc["outcome"], proc.doc["exit_status"]), (outcome, status),
                         self.describe(proc))

    def assert_nothing_ordered(self, proc):
        self.assertNotIn("POST /order-plz", proc.pebble_log, self.describe(proc))


class Offered(ProfileCase):
    profiles = True

    def orders(self):
        return self.pebble.ari_new_orders()

    def test_preferred_offered_sent_recorded_listed(self):
        c = "preferred.example.test"
        before = len(self.orders())
        proc = self.issue_profile(c, "--preferred-profile", "shortlived")
        self.assert_result(proc, "issued", 0)
        self.assertEqual(proc.doc["profile"], "shortlived")
        self.assertEqual([o.get("profile") for o in self.orders()[before:]], ["shortlived"])
        self.assertEqual(self.status(c)["profile"], "shortlived")
        self.assertIn("preferred-profile = shortlived\n", read(self.renewal_conf(c)))
        self.assertEqual(self.list_json()[c]["profile"], "shortlived")
        text = self.certpilot("list", "--state-dir", self.state).stdout
        self.assertIn("  profile: shortlived\n", text)
        # The text report names it too.
        proc = self.certpilot("issue", "-d", c, "--force-renewal", *self.ca_args(),
                              *self.issue_args(), *self.http(), "--state-dir", self.state)
        self.assertIn("  profile:   shortlived\n", proc.stdout)

    def test_no_profile_asked_none_sent(self):
        c = "noprofile.example.test"
        before = len(self.orders())
        proc = self.issue_profile(c)
        self.assertIsNone(proc.doc["profile"])
        self.assertEqual(len(self.orders()), before + 1)
        self.assertNotIn("profile", self.orders()[before])
        self.assertNotIn("profile", self.status(c))
        self.assertIsNone(self.list_json()[c]["profile"])
        self.assertNotIn("profile:", self.certpilot("list", "--state-dir", self.state).stdout)

    def test_required_offered(self):
        c = "required.example.test"
        before = len(self.orders())
        proc = self.issue_profile(c, "--required-profile", "tlsserver")
        self.assert_result(proc, "issued", 0)
        self.assertEqual(proc.doc["profile"], "tlsserver")
        self.assertEqual([o.get("profile") for o in self.orders()[before:]], ["tlsserver"])
        conf = read(self.renewal_conf(c))
        self.assertIn("required-profile = tlsserver\n", conf)
        self.assertNotIn("preferred-profile", conf)

    def test_required_not_offered_sends_nothing(self):
        c = "longlived.example.test"
        before = len(self.orders())
        proc = self.issue_profile(c, "--required-profile", "longlived", expect=78)
        self.assert_result(proc, "profile_not_offered", 78)
        self.assertIn('the profile "longlived" is required, but this CA offers only: ' + OFFERED,
                      proc.stderr)
        self.assertIn("nothing was ordered", proc.stderr)
        self.assertEqual(len(self.orders()), before)
        self.assert_nothing_ordered(proc)
        self.assertFalse(os.path.exists(self.live(c)))

    def test_both_options_refused(self):
        before = len(self.orders())
        proc = self.issue_profile("both.example.test", "--preferred-profile", "classic",
                                  "--required-profile", "tlsserver", expect=64)
        self.assertIn("--preferred-profile and --required-profile exclude each other",
                      proc.stderr)
        self.assertEqual(len(self.orders()), before)
        self.assert_nothing_ordered(proc)
        # A name that is no profile name is refused as well.
        proc = self.issue_profile("bad.example.test", "--preferred-profile", "short lived",
                                  expect=64)
        self.assertIn("a profile name is", proc.stderr)

    def test_renew_uses_the_saved_profile(self):
        c = "renewed.example.test"
        self.issue_profile(c, "--preferred-profile", "tlsserver")
        before = len(self.orders())
        proc = self.renew("--force-renewal")
        r = proc.doc["results"][0]
        self.assertEqual((r["outcome"], r["profile"]), ("renewed", "tlsserver"), r)
        self.assertEqual([o.get("profile") for o in self.orders()[before:]], ["tlsserver"])
        self.assertEqual(self.status(c)["profile"], "tlsserver")
        # issue on the lineage with the other option: it replaces the saved one.
        self.issue_profile(c, "--required-profile", "shortlived", "--force-renewal")
        conf = read(self.renewal_conf(c))
        self.assertIn("required-profile = shortlived\n", conf)
        self.assertNotIn("preferred-profile", conf)
        before = len(self.orders())
        proc = self.renew("--force-renewal")
        self.assertEqual(proc.doc["results"][0]["profile"], "shortlived")
        self.assertEqual([o.get("profile") for o in self.orders()[before:]], ["shortlived"])
        self.assertEqual(self.list_json()[c]["profile"], "shortlived")

    def test_renew_with_a_required_profile_no_longer_offered(self):
        # renewal.conf edited by hand to a profile the CA does not offer:
        # that certificate fails with 78 and nothing is ordered.
        c = "gone.example.test"
        self.issue_profile(c, "--required-profile", "classic")
        conf = read(self.renewal_conf(c)).replace("required-profile = classic",
                                                  "required-profile = longlived")
        with open(self.renewal_conf(c), "w") as f:
            f.write(conf)
        before = len(self.orders())
        proc = self.renew("--force-renewal", expect=1)
        r = proc.doc["results"][0]
        self.assertEqual((r["outcome"], r["exit_status"]), ("profile_not_offered", 78), r)
        self.assertIn("offers only: " + OFFERED, r["message"])
        self.assertEqual(len(self.orders()), before)
        self.assert_nothing_ordered(proc)
        self.assertEqual(self.status(c)["profile"], "classic")  # the certificate in place


class NotOffered(ProfileCase):
    """A plain Pebble: its directory lists no profiles."""

    def test_preferred_not_offered_left_out(self):
        c = "plain-preferred.example.test"
        proc = self.issue_profile(c, "--preferred-profile", "shortlived")
        self.assert_result(proc, "issued", 0)
        self.assertIn('does not offer the profile "shortlived"', proc.stderr)
        self.assertIsNone(proc.doc["profile"])
        self.assertEqual(proc.pebble_log.count("POST /order-plz"), 1)
        self.assertNotIn("profile", self.status(c))
        self.assertIsNone(self.list_json()[c]["profile"])
        # Kept: the CA may offer it later.
        self.assertIn("preferred-profile = shortlived\n", read(self.renewal_conf(c)))

    def test_required_not_offered_sends_nothing(self):
        c = "plain-required.example.test"
        proc = self.issue_profile(c, "--required-profile", "shortlived", expect=78)
        self.assert_result(proc, "profile_not_offered", 78)
        self.assertIn("this CA offers no profiles", proc.stderr)
        self.assert_nothing_ordered(proc)
        self.assertFalse(os.path.exists(self.live(c)))


if __name__ == "__main__":
    unittest.main()
