#!/usr/bin/python3
"""The state directory is trusted only when nobody else could have changed it
(issue 13, item 1): no symlinks where certpilot keeps files or directories of
its own, no directory owned by another user or writable by group/others.

Every case runs the built binary on a state directory made by the test; no
server is contacted (the checks come before any network traffic), so the
commands are pointed at a port where nothing listens.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

CERTPILOT = os.environ.get("CERTPILOT", "build/certpilot")
NOWHERE = "https://127.0.0.1:9/dir"  # discard port: nothing answers
UNSAFE = 77
NOBODY = 65534


class StateSafety(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cptest-state-")
        os.chmod(self.tmp, 0o700)
        self.state = os.path.join(self.tmp, "state")
        os.mkdir(self.state, 0o700)
        self.victim = os.path.join(self.tmp, "victim")
        with open(self.victim, "w") as f:
            f.write("precious\n")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_cp(self, *args, expect):
        argv = [CERTPILOT] + list(args)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, expect, "exit status of %s\nstdout:\n%s\nstderr:\n%s"
                         % (" ".join(argv), proc.stdout, proc.stderr))
        return proc

    def renew(self, *extra, expect):
        return self.run_cp("renew", "--state-dir", self.state, "--lock-timeout", "1", *extra,
                           expect=expect)

    def lineage(self, name="example.test"):
        """A lineage as cli_cert_store() lays it out (contents do not matter here)."""
        base = os.path.join(self.state, "certs", name)
        version = os.path.join(base, "versions", "20260101T000000.000000000Z")
        os.makedirs(version, 0o700)
        for f in ("privkey.pem", "cert.pem", "chain.pem", "fullchain.pem"):
            with open(os.path.join(version, f), "w") as out:
                out.write("not a real file\n")
            os.symlink("current/" + f, os.path.join(base, f))
        os.symlink("versions/20260101T000000.000000000Z", os.path.join(base, "current"))
        with open(os.path.join(base, "renewal.conf"), "w") as out:
            out.write("domains = %s\nserver = %s\n" % (name, NOWHERE))
        os.chmod(os.path.join(self.state, "certs"), 0o700)
        os.chmod(base, 0o700)
        os.chmod(os.path.join(base, "versions"), 0o700)
        return base

    def assert_victim_untouched(self):
        with open(self.victim) as f:
            self.assertEqual(f.read(), "precious\n")

    # -- the lock file

    def test_lock_file_symlink_is_refused_and_not_followed(self):
        os.symlink(self.victim, os.path.join(self.state, "renew.lock"))
        proc = self.renew(expect=UNSAFE)
        self.assertIn("renew.lock", proc.stderr)
        self.assertIn("symbolic link", proc.stderr)
        self.assert_victim_untouched()
        # issue takes the same lock: refused before anything is sent.
        proc = self.run_cp("issue", "--state-dir", self.state, "--server", NOWHERE,
                           "--agree-tos", "--standalone", "-d", "example.test", expect=UNSAFE)
        self.assert_victim_untouched()

    def test_lock_file_of_another_user_is_refused(self):
        lock = os.path.join(self.state, "renew.lock")
        with open(lock, "w") as f:
            f.write("1\n")
        os.chown(lock, NOBODY, NOBODY)
        proc = self.renew(expect=UNSAFE)
        self.assertIn("not a regular file of this user", proc.stderr)

    def test_lock_file_made_by_certpilot_is_fine(self):
        self.renew(expect=0)
        st = os.lstat(os.path.join(self.state, "renew.lock"))
        self.assertEqual(st.st_mode & 0o777, 0o600)

    # -- the state directory

    def test_group_writable_state_dir_is_refused_with_the_fix(self):
        os.chmod(self.state, 0o770)
        for args in (["renew", "--lock-timeout", "1"], ["list"],
                     ["account", "show", "--server", NOWHERE]):
            with self.subTest(command=args[0]):
                proc = self.run_cp(*args, "--state-dir", self.state, expect=UNSAFE)
                self.assertIn("refusing %s" % self.state, proc.stderr)
                self.assertIn("mode 0770", proc.stderr)
                self.assertIn("owned by root (uid 0)", proc.stderr)
                self.assertIn("chmod 0700 %s" % self.state, proc.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.state, "renew.lock")))

    def test_state_dir_of_another_user_is_refused(self):
        os.chown(self.state, NOBODY, NOBODY)
        proc = self.run_cp("list", "--state-dir", self.state, expect=UNSAFE)
        self.assertIn("uid %d" % NOBODY, proc.stderr)
        self.assertIn("chown 0 %s" % self.state, proc.stderr)

    def test_a_symlink_to_a_safe_state_dir_is_fine(self):
        link = os.path.join(self.tmp, "link")
        os.symlink(self.state, link)
        self.run_cp("list", "--state-dir", link, expect=0)

    def test_symlinked_accounts_dir_is_refused(self):
        elsewhere = os.path.join(self.tmp, "elsewhere")
        os.mkdir(elsewhere, 0o700)
        os.symlink(elsewhere, os.path.join(self.state, "accounts"))
        proc = self.run_cp("account", "show", "--state-dir", self.state, "--server", NOWHERE,
                           expect=UNSAFE)
        self.assertIn("accounts: it is a symbolic link", proc.stderr)

    def test_world_writable_certs_dir_is_refused(self):
        self.lineage()
        os.chmod(os.path.join(self.state, "certs"), 0o777)
        proc = self.run_cp("list", "--state-dir", self.state, expect=UNSAFE)
        self.assertIn("certs: it is owned by root (uid 0) with mode 0777", proc.stderr)

    # -- lineages

    def test_group_writable_lineage_is_refused_by_renew_and_list(self):
        base = self.lineage()
        self.lineage("other.test")
        os.chmod(base, 0o775)
        proc = self.renew("--json", expect=1)
        results = {r["cert_name"]: r for r in json.loads(proc.stdout)["results"]}
        self.assertEqual(results["example.test"]["outcome"], "unsafe")
        self.assertEqual(results["example.test"]["exit_status"], UNSAFE)
        self.assertIn("mode 0775", results["example.test"]["message"])
        # The other lineage is still handled (here it fails on the network).
        self.assertNotEqual(results["other.test"]["outcome"], "unsafe")
        self.assertFalse(os.path.exists(os.path.join(base, "status.json")))
        proc = self.run_cp("list", "--json", "--state-dir", self.state, expect=UNSAFE)
        doc = json.loads(proc.stdout)
        self.assertEqual((doc["outcome"], doc["exit_status"]), ("unsafe", UNSAFE))
        listed = {r["cert_name"]: r for r in doc["results"]}
        # the same field in both: renew's result names the reason as list does
        self.assertEqual(listed["example.test"]["unsafe"], results["example.test"]["unsafe"])
        self.assertIn("unsafe", listed["example.test"])
        self.assertNotIn("unsafe", listed["other.test"])

    def test_current_pointing_outside_the_lineage_is_refused(self):
        base = self.lineage()
        outside = os.path.join(self.tmp, "planted")
        os.mkdir(outside, 0o700)
        for target in (outside, "../../..", "versions/../../../planted"):
            with self.subTest(target=target):
                os.unlink(os.path.join(base, "current"))
                os.symlink(target, os.path.join(base, "current"))
                proc = self.renew("--json", expect=1)
                result = json.loads(proc.stdout)["results"][0]
                self.assertEqual(result["outcome"], "unsafe")
                self.assertIn("outside the lineage's versions/ directory", result["message"])

    def test_version_that_is_a_symlink_is_refused(self):
        base = self.lineage()
        outside = os.path.join(self.tmp, "planted")
        os.mkdir(outside, 0o700)
        os.symlink(outside, os.path.join(base, "versions", "20270101T000000.000000000Z"))
        os.unlink(os.path.join(base, "current"))
        os.symlink("versions/20270101T000000.000000000Z", os.path.join(base, "current"))
        proc = self.run_cp("issue", "--state-dir", self.state, "--server", NOWHERE,
                           "--agree-tos", "--standalone", "--reuse-key", "-d", "example.test",
                           expect=UNSAFE)
        self.assertIn("a version must be a directory of the lineage, not a symbolic link",
                      proc.stderr)

    # -- leftovers of a killed run (issue 13, item 7)

    def plant(self, path, age=3600, symlink=False, owner=None):
        if symlink:
            os.symlink("versions/whatever", path)
        else:
            with open(path, "w") as f:
                f.write("half-written\n")
        if owner is not None:
            os.lchown(path, owner, owner)
        old = time.time() - age
        os.utime(path, (old, old), follow_symlinks=False)
        return path

    def test_leftover_temp_files_are_removed_under_the_lock(self):
        base = self.lineage()
        version = os.path.join(base, "versions", "20260101T000000.000000000Z")
        acct = os.path.join(self.state, "accounts", "127.0.0.1_9_dir")
        os.makedirs(acct, 0o700)
        os.chmod(os.path.join(self.state, "accounts"), 0o700)
        gone = [self.plant(os.path.join(version, "privkey.pem.tmp-0123456789abcdef")),
                self.plant(os.path.join(base, "status.json.tmp-00ff00ff00ff00ff")),
                self.plant(os.path.join(base, "current.tmp-4242"), symlink=True),
                self.plant(os.path.join(acct, "account.key.tmp-deadbeefdeadbeef"))]
        kept = [self.plant(os.path.join(version, "cert.pem.tmp-1111111111111111"), age=0),
                self.plant(os.path.join(base, "fullchain.pem.tmp-2222222222222222"),
                           owner=NOBODY),
                self.plant(os.path.join(base, "notes.tmp-not-ours")),
                self.plant(os.path.join(base, "renewal.conf.tmp-0123456789abcdef0"))]
        self.renew(expect=1)  # the lineage itself fails: its CA does not answer
        for path in gone:
            self.assertFalse(os.path.lexists(path), path)
        for path in kept:
            self.assertTrue(os.path.lexists(path), path)
        # What certpilot itself relies on is untouched.
        self.assertEqual(os.readlink(os.path.join(base, "current")),
                         "versions/20260101T000000.000000000Z")
        self.assertTrue(os.path.exists(os.path.join(version, "privkey.pem")))

    def test_leftovers_of_a_run_killed_after_a_clean_one_are_removed(self):
        # A run that ended in good order leaves nothing for the next to sweep
        # in the lineages; a run killed while holding the lock must still
        # have its leftovers removed by the next one.
        base = self.lineage()
        with open(os.path.join(base, "renewal.conf"), "a") as out:
            out.write("standalone = yes\nhttp-port = 9\n")  # settings renew can use
        self.renew(expect=1)  # ends in good order (its CA does not answer)
        mark = os.path.join(self.tmp, "in-hook")
        # The lineage is due (no readable certificate): the pre-hook runs
        # under the lock, and the run is killed there.
        proc = subprocess.Popen([CERTPILOT, "renew", "--state-dir", self.state,
                                 "--lock-timeout", "1",
                                 "--pre-hook", "sh:echo $$ > %s.new; mv %s.new %s; exec sleep 30"
                                 % (mark, mark, mark)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            for _ in range(600):
                if os.path.exists(mark) or proc.poll() is not None:
                    break
                time.sleep(0.05)
            self.assertTrue(os.path.exists(mark), "the pre-hook never ran")
            # What the killed run was writing when it died.
            gone = self.plant(os.path.join(base, "status.json.tmp-00ff00ff00ff00ff"))
        finally:
            os.killpg(proc.pid, 9)
            proc.wait()
            if os.path.exists(mark):  # the hook runs in a process group of its own
                with open(mark) as f:
                    os.kill(int(f.read()), 9)
        self.renew(expect=1)
        self.assertFalse(os.path.lexists(gone))

    def test_safe_lineage_passes_the_checks(self):
        self.lineage()
        proc = self.run_cp("list", "--json", "--state-dir", self.state, expect=0)
        self.assertNotIn("unsafe", json.loads(proc.stdout)["results"][0])


if __name__ == "__main__":
    unittest.main()
