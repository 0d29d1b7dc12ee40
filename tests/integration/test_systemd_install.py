#!/usr/bin/python3
"""`certpilot systemd install` and `certpilot systemd cron`.

install runs against a temporary --unit-dir and a state directory whose
lineages were issued by the lab Pebble (http-01 through two webroots, served
by a small HTTP server that picks the webroot by Host header), plus lineages
whose renewal.conf is written directly (a missing webroot, one under /home).
Checked: the units are dist/'s text with ExecStart= naming the binary, the
drop-in lists every directory, a second run changes nothing, a unit certpilot
did not write needs --force, --dry-run writes nothing, and systemd-analyze
verify accepts the result when it can run here.

cron: the line's format, the same line on every run (minute and hours from
the host name's FNV-1a hash), --install writing the file.
"""

import http.server
import json
import os
import re
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_issue as base  # noqa: E402

CERTPILOT = base.CERTPILOT
ROOT = base.ROOT
MARK = "# Written by `certpilot systemd install`"
CRON_MARK = "# Written by `certpilot systemd cron --install`"



def timer_hours():
    """FLOW_TIMER_HOURS of flow/flow.h: the one number the timer, cron and list use."""
    with open(os.path.join(ROOT, "flow", "flow.h")) as f:
        return int(re.search(r"^#define FLOW_TIMER_HOURS\s+(\d+)$", f.read(), re.M).group(1))


TIMER_HOURS = timer_hours()


def read(path):
    with open(path) as f:
        return f.read()


def run(*args, expect=0, cwd=None):
    proc = subprocess.run([CERTPILOT] + list(args), capture_output=True, text=True, timeout=60,
                          cwd=cwd)
    if expect is not None and proc.returncode != expect:
        raise AssertionError("exit status %d (want %d) of %s\nstdout:\n%s\nstderr:\n%s" % (
            proc.returncode, expect, " ".join(args), proc.stdout, proc.stderr))
    return proc


def analyze_works():
    """None when `systemd-analyze verify` judges units here, else why not."""
    with tempfile.TemporaryDirectory(prefix="cptest-sa-") as d:
        good = os.path.join(d, "cp-probe.service")
        with open(good, "w") as f:
            f.write("[Service]\nType=oneshot\nExecStart=/bin/true\n")
        bad = os.path.join(d, "cp-probe-bad.service")
        with open(bad, "w") as f:
            f.write("[Service]\nType=oneshot\nExecStart=relative-program\n")
        try:
            ok = subprocess.run(["systemd-analyze", "verify", "--man=no", good],
                                capture_output=True, text=True, timeout=60)
            ko = subprocess.run(["systemd-analyze", "verify", "--man=no", bad],
                                capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as e:
            return "systemd-analyze cannot run: %s" % e
        if ok.returncode != 0 or ko.returncode == 0:
            return "systemd-analyze verify does not judge units here: %s" % (
                ok.stderr.strip() or ko.stderr.strip() or "no difference between good and bad")
    return None


NO_ANALYZE = analyze_works()


class HostRouted(http.server.ThreadingHTTPServer):
    """Serves each Host's webroot, as a web server with virtual hosts does."""

    def __init__(self, port, webroots):
        self.webroots = webroots

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(handler):  # noqa: N805
                host = (handler.headers.get("Host") or "").split(":")[0]
                root = self.webroots.get(host)
                rel = handler.path.lstrip("/")
                path = os.path.join(root, rel) if root and ".." not in rel else None
                if path is None or not os.path.isfile(path):
                    handler.send_error(404)
                    return
                body = read(path).encode()
                handler.send_response(200)
                handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(body)

            def log_message(handler, *args):  # noqa: N805
                pass

        super().__init__(("127.0.0.1", port), Handler)


class Install(base.PebbleCase):
    def setUp(self):
        super().setUp()
        self.units = os.path.join(self.tmp.name, "units")
        os.mkdir(self.units)
        self.config = os.path.join(self.tmp.name, "config")
        with open(self.config, "w") as f:
            f.write("# no settings\n")
        self.service = os.path.join(self.units, "certpilot-renew.service")
        self.timer = os.path.join(self.units, "certpilot-renew.timer")
        self.dropin = os.path.join(self.units, "certpilot-renew.service.d",
                                   "certpilot-paths.conf")

    def install(self, *args, expect=0):
        proc = run("systemd", "install", "--unit-dir", self.units, "--state-dir", self.state,
                   "--config", self.config, "--json", *args, expect=expect)
        doc = json.loads(proc.stdout)
        self.assertEqual(doc["exit_status"], expect, proc.stderr)
        return doc, proc

    def write_lineage(self, name, settings):
        """A lineage with only a renewal.conf, as the state directory keeps it."""
        d = os.path.join(self.state, "certs", name)
        os.makedirs(d, mode=0o700)
        os.chmod(os.path.join(self.state, "certs"), 0o700)
        os.chmod(self.state, 0o700)
        with open(os.path.join(d, "renewal.conf"), "w") as f:
            f.write(settings)
        os.chmod(os.path.join(d, "renewal.conf"), 0o600)

    def issue_with_two_webroots(self):
        www1 = os.path.join(self.tmp.name, "www1")
        www2 = os.path.join(self.tmp.name, "www2")
        os.mkdir(www1)
        os.mkdir(www2)
        server = HostRouted(self.pebble.http_port, {"one.sd.test": www1, "two.sd.test": www2})
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            # the webroot check fetches as Pebble will: challtestsrv's DNS, its port
            self.issue("-w", www1, "-d", "one.sd.test", "-w", www2, "-d", "two.sd.test",
                       "--resolver", self.pebble.dns_server, "--webroot-check-port",
                       str(self.pebble.http_port))
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)
        conf = read(os.path.join(self.state, "certs", "one.sd.test", "renewal.conf"))
        self.assertIn(www1, conf)
        self.assertIn(www2, conf)
        return www1, www2

    def expected_service(self, *extra):
        template = read(os.path.join(ROOT, "dist", "certpilot-renew.service.in"))
        exec_start = " ".join([CERTPILOT, "renew", "--quiet", "--config", self.config,
                               "--state-dir", self.state] + list(extra))
        return re.sub(r"(?m)^ExecStart=.*$", "ExecStart=" + exec_start, template)

    def rw_lines(self, text):
        return re.findall(r"(?m)^ReadWritePaths=(.*)$", text)

    def test_units_and_dropin_from_issued_lineages(self):
        www1, www2 = self.issue_with_two_webroots()
        missing = os.path.join(self.tmp.name, "not-made-yet")
        self.write_lineage("manual.sd.test", "webroot-map = three.sd.test:%s\n" % missing)
        doc, proc = self.install()
        self.assertEqual(doc["outcome"], "written")
        self.assertEqual([f["action"] for f in doc["files"]], ["created"] * 3)
        self.assertEqual([f["path"] for f in doc["files"]], [self.service, self.timer, self.dropin])
        self.assertEqual(doc["next_steps"], ["systemctl daemon-reload",
                                             "systemctl enable --now certpilot-renew.timer"])
        self.assertEqual(doc["read_write_paths"], [self.state, missing, www1, www2])
        self.assertIsNone(doc["protect_home"])

        # The units: dist/'s text after two lines of mark, ExecStart= naming
        # this binary with this run's --config and --state-dir.
        service = read(self.service).split("\n", 2)
        self.assertTrue(service[0].startswith(MARK), service[0])
        self.assertEqual(service[2], self.expected_service())
        timer = read(self.timer).split("\n", 2)
        self.assertTrue(timer[0].startswith(MARK), timer[0])
        self.assertEqual(timer[2], read(os.path.join(ROOT, "dist", "certpilot-renew.timer")))
        # It runs every FLOW_TIMER_HOURS, which list's warning assumes.
        self.assertIn("\nOnCalendar=*-*-* 00/%d:00:00\n" % TIMER_HOURS, timer[2])
        dropin = read(self.dropin)
        self.assertTrue(dropin.startswith(MARK))
        self.assertIn("\n[Service]\n", dropin)
        # A missing directory with '-', so that the unit does not fail (226/NAMESPACE).
        self.assertEqual(self.rw_lines(dropin), [self.state, "-" + missing, www1, www2])
        self.assertNotIn("ProtectHome", dropin)
        for path in (self.service, self.timer, self.dropin):
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o644, path)

        # Again: nothing to do, nothing touched.
        inodes = [os.stat(p).st_ino for p in (self.service, self.timer, self.dropin)]
        doc, _ = self.install()
        self.assertEqual(doc["outcome"], "unchanged")
        self.assertEqual([f["action"] for f in doc["files"]], ["unchanged"] * 3)
        self.assertEqual([os.stat(p).st_ino for p in (self.service, self.timer, self.dropin)],
                         inodes)

        # A new webroot appears: only the drop-in changes.
        os.mkdir(missing)
        doc, _ = self.install()
        self.assertEqual(doc["outcome"], "written")
        self.assertEqual([f["action"] for f in doc["files"]],
                         ["unchanged", "unchanged", "updated"])
        self.assertEqual(self.rw_lines(read(self.dropin)), [self.state, missing, www1, www2])

    def test_text_output_says_what_to_run(self):
        proc = run("systemd", "install", "--unit-dir", self.units, "--state-dir", self.state,
                   "--config", self.config)
        self.assertIn("created   " + self.service, proc.stdout)
        self.assertIn("  systemctl daemon-reload\n", proc.stdout)
        self.assertIn("  systemctl enable --now certpilot-renew.timer\n", proc.stdout)
        self.assertIn("  " + self.state + "\n", proc.stdout)
        quiet = run("systemd", "install", "--unit-dir", self.units, "--state-dir", self.state,
                    "--config", self.config, "--quiet")
        self.assertEqual(quiet.stdout + quiet.stderr, "")

    def test_webroots_of_the_defaults_file_and_home(self):
        home_root = "/home/certpilot-test-no-such-user/www"
        with open(self.config, "w") as f:
            f.write("webroot = %s\n" % home_root)
        self.write_lineage("a.sd.test", "webroot = %s\n" % self.tmp.name)
        doc, _ = self.install()
        self.assertEqual(doc["protect_home"], "read-only")
        dropin = read(self.dropin)
        self.assertEqual(self.rw_lines(dropin), [self.state, "-" + home_root, self.tmp.name])
        self.assertIn("\nProtectHome=read-only\n", dropin)

    def test_quoting_of_unusual_paths(self):
        odd = os.path.join(self.tmp.name, "web root 100%")
        os.mkdir(odd)
        self.write_lineage("odd.sd.test", "webroot = %s\n" % odd)
        self.install()
        self.assertIn('ReadWritePaths="%s"\n' % odd.replace("%", "%%"), read(self.dropin))

    def test_foreign_unit_needs_force(self):
        foreign = "[Service]\nExecStart=/usr/bin/certbot renew\n"
        with open(self.service, "w") as f:
            f.write(foreign)
        doc, proc = self.install(expect=64)
        self.assertEqual(doc["outcome"], "refused")
        self.assertIn(self.service + " exists and was not written by certpilot", proc.stderr)
        self.assertIn("--force", proc.stderr)
        # Nothing at all was written.
        self.assertEqual(read(self.service), foreign)
        self.assertEqual(sorted(os.listdir(self.units)), ["certpilot-renew.service"])
        doc, _ = self.install("--force")
        self.assertEqual([f["action"] for f in doc["files"]], ["replaced", "created", "created"])
        self.assertEqual(read(self.service).split("\n", 2)[2], self.expected_service())

    def test_own_unit_is_updated_without_force(self):
        self.install()
        with open(self.service, "a") as f:
            f.write("# an edit\n")
        doc, _ = self.install()
        self.assertEqual([f["action"] for f in doc["files"]], ["updated", "unchanged", "unchanged"])
        self.assertNotIn("# an edit", read(self.service))

    def test_dry_run_writes_nothing(self):
        doc, _ = self.install("--dry-run")
        self.assertEqual(doc["outcome"], "dry_run")
        self.assertEqual(os.listdir(self.units), [])
        self.assertFalse(os.path.exists(self.state))
        self.assertEqual([f["action"] for f in doc["files"]], ["created"] * 3)
        self.assertEqual(doc["files"][0]["content"].split("\n", 2)[2], self.expected_service())
        proc = run("systemd", "install", "--unit-dir", self.units, "--state-dir", self.state,
                   "--config", self.config, "--dry-run")
        self.assertIn("--- %s (would be created)\n" % self.dropin, proc.stdout)
        self.assertIn("Nothing was written", proc.stdout)
        self.assertEqual(os.listdir(self.units), [])

    def test_missing_unit_dir(self):
        gone = os.path.join(self.tmp.name, "no-systemd")
        proc = run("systemd", "install", "--unit-dir", gone, "--state-dir", self.state,
                   expect=74)
        self.assertIn(gone + " is not a directory", proc.stderr)
        self.assertFalse(os.path.exists(gone))

    def test_usage_errors(self):
        proc = run("systemd", "install", "--install", expect=64)
        self.assertIn("--install", proc.stderr)
        proc = run("systemd", "enable", "--json", expect=64)
        doc = json.loads(proc.stdout)
        self.assertEqual((doc["outcome"], doc["exit_status"]), ("usage_error", 64))
        self.assertIn("systemd install", doc["error"])

    @unittest.skipIf(NO_ANALYZE, NO_ANALYZE)
    def test_systemd_analyze_accepts_the_units(self):
        www1, www2 = self.issue_with_two_webroots()
        self.write_lineage("b.sd.test", "webroot = /home/certpilot-test-none/www\n")
        odd = os.path.join(self.tmp.name, "web root 100%")
        os.mkdir(odd)
        self.write_lineage("c.sd.test", "webroot = %s\n" % odd)
        self.install()
        # As scripts/check-units.sh: verify exits 0 on most mistakes (an
        # unknown key, a relative path are "ignoring"), so any output fails.
        env = dict(os.environ, SYSTEMD_LOG_TARGET="console", SYSTEMD_LOG_LEVEL="info",
                   SYSTEMD_LOG_COLOR="0")
        proc = subprocess.run(["systemd-analyze", "verify", "--man=no", self.service, self.timer],
                              capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout + proc.stderr, "")
        # The drop-in was read: the quoted paths came through as written.
        env["SYSTEMD_LOG_LEVEL"] = "debug"
        dump = subprocess.run(["systemd-analyze", "verify", "--man=no", self.service],
                              capture_output=True, text=True, timeout=60, env=env)
        rw = re.search(r"ReadWritePaths: (.*)", dump.stdout + dump.stderr)
        self.assertIsNotNone(rw, "no ReadWritePaths in the debug dump")
        self.assertEqual(rw.group(1), " ".join(["-/var/log/nginx", self.state,
                                                "-/home/certpilot-test-none/www", odd, www1,
                                                www2]))


def fnv1a(text):
    h = 2166136261
    for byte in text.encode():
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


class Cron(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="cptest-cron-")
        self.state = os.path.join(self.tmp.name, "state")
        self.cron_file = os.path.join(self.tmp.name, "certpilot")

    def tearDown(self):
        self.tmp.cleanup()

    def cron(self, *args, expect=0):
        return run("systemd", "cron", "--state-dir", self.state, *args, expect=expect)

    def test_line_is_the_same_every_time(self):
        line = self.cron().stdout
        m = re.fullmatch(r"(\d+) ([\d,]+) \* \* \* root (\S+) renew --quiet "
                         r"--state-dir (\S+)\n", line)
        self.assertIsNotNone(m, line)
        minute, hours = int(m.group(1)), [int(x) for x in m.group(2).split(",")]
        self.assertEqual((m.group(3), m.group(4)), (CERTPILOT, self.state))
        # As often as the timer (every TIMER_HOURS), at this host's minute and hours.
        h = fnv1a(socket.gethostname())
        first = h // 60 % TIMER_HOURS
        self.assertEqual((minute, hours), (h % 60, list(range(first, 24, TIMER_HOURS))))
        self.assertEqual(self.cron().stdout, line)
        doc = json.loads(self.cron("--json").stdout)
        self.assertEqual((doc["outcome"], doc["exit_status"]), ("printed", 0))
        self.assertEqual(doc["line"] + "\n", line)
        self.assertEqual(doc["hours"], hours)

    def test_install_writes_the_file(self):
        doc = json.loads(self.cron("--install", "--cron-file", self.cron_file, "--json").stdout)
        self.assertEqual((doc["outcome"], doc["exit_status"]), ("written", 0))
        text = read(self.cron_file)
        self.assertTrue(text.startswith(CRON_MARK), text)
        self.assertIn("\nSHELL=/bin/sh\n", text)
        self.assertIn("\nPATH=", text)
        self.assertTrue(text.endswith("\n" + doc["line"] + "\n"), text)
        self.assertEqual(stat.S_IMODE(os.stat(self.cron_file).st_mode), 0o644)
        doc = json.loads(self.cron("--install", "--cron-file", self.cron_file, "--json").stdout)
        self.assertEqual(doc["outcome"], "unchanged")

    def test_install_dry_run_and_foreign_file(self):
        proc = self.cron("--install", "--cron-file", self.cron_file, "--dry-run")
        self.assertIn("would be created", proc.stdout)
        self.assertFalse(os.path.exists(self.cron_file))
        with open(self.cron_file, "w") as f:
            f.write("0 0 * * * root certbot renew\n")
        proc = self.cron("--install", "--cron-file", self.cron_file, expect=64)
        self.assertIn("--force", proc.stderr)
        self.assertEqual(read(self.cron_file), "0 0 * * * root certbot renew\n")
        self.cron("--install", "--cron-file", self.cron_file, "--force")
        self.assertTrue(read(self.cron_file).startswith(CRON_MARK))

    def test_shell_quoting(self):
        config = os.path.join(self.tmp.name, "my config 50%")
        with open(config, "w") as f:
            f.write("")
        line = self.cron("--config", config).stdout
        self.assertIn(" --config '%s' " % config.replace("%", "\\%"), line)


if __name__ == "__main__":
    unittest.main()
