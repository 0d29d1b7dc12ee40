#!/usr/bin/python3
"""The example hooks in hooks/examples.

- dns-nsupdate.sh sends TSIG-signed RFC 2136 updates to the lab's Knot;
  the TXT record is checked by asking Knot directly (no resolver cache).
- dns-challtestsrv.sh drives pebble-challtestsrv's management API; the TXT
  record is checked on challtestsrv's own DNS listener.
- The deploy hooks reload-nginx.sh, reload-apache.sh and restart-unit.sh run
  with fake nginx, apachectl and systemctl first on PATH, which record their
  arguments: what matters is which commands run, in which order, and that a
  failed configuration test stops the reload.

The hooks are run as certpilot runs them: the script itself, an argv
(command word, then DOMAIN TOKEN_FILENAME TOKEN_VALUE for the dns-01 hooks; the
words after the program in --deploy-hook for deploy hooks) and an environment
holding only PATH and the hook's configuration (deploy hooks: RENEWED_LINEAGE
and RENEWED_DOMAINS).
"""

import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lab"))
from cplab import Lab, BASE_ENV, split_addr  # noqa: E402
from dnslib import QTYPE  # noqa: E402

EXAMPLES = os.path.join(HERE, "..", "..", "hooks", "examples")
NSUPDATE_HOOK = os.path.join(EXAMPLES, "dns-nsupdate.sh")
CHALLTESTSRV_HOOK = os.path.join(EXAMPLES, "dns-challtestsrv.sh")
NGINX_HOOK = os.path.join(EXAMPLES, "reload-nginx.sh")
APACHE_HOOK = os.path.join(EXAMPLES, "reload-apache.sh")
RESTART_HOOK = os.path.join(EXAMPLES, "restart-unit.sh")

# Key authorization digests (base64url, 43 characters) as a CA would see them.
VALUE_A = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
VALUE_B = "n5-6_Kk1eLZyhTmOaW0nLn4Z9bX7lq9Yx3wQvR2sT8c"


def run_hook(hook, env, *argv, timeout=60):
    return subprocess.run([hook] + list(argv), env=dict(BASE_ENV, **env),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def txt_values(lab, name, server):
    reply = lab.query(name, "TXT", server=server)
    return sorted(b"".join(rr.rdata.data).decode()
                  for rr in reply.rr if rr.rtype == QTYPE.TXT)


class NsupdateHook(unittest.TestCase):
    lab = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="cp-hook-test-")
        lab = cls.lab = Lab()
        lab.zone("example.test")
        lab.zone("other.test")
        lab.start()
        host, port = split_addr(lab.knot)
        key_name, algorithm, secret = lab.tsig
        cls.key_file = os.path.join(cls.tmp.name, "update.key")
        fd = os.open(cls.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write('key "%s" {\n\talgorithm %s;\n\tsecret "%s";\n};\n'
                    % (key_name, algorithm, secret))
        cls.env = {"NSUPDATE_SERVER": host, "NSUPDATE_PORT": str(port),
                   "NSUPDATE_KEY": cls.key_file}

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()
        cls.tmp.cleanup()

    def hook(self, *argv, env=None):
        return run_hook(NSUPDATE_HOOK, env or self.env, *argv)

    def txt(self, name):
        return txt_values(self.lab, name, self.lab.knot)

    def assertRan(self, result):
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_deploy_then_clean(self):
        name = "_acme-challenge.www.example.test"
        self.assertEqual(self.txt(name), [])
        self.assertRan(self.hook("deploy_challenge", "www.example.test", "tok", VALUE_A))
        self.assertEqual(self.txt(name), [VALUE_A])
        reply = self.lab.query(name, "TXT", server=self.lab.knot)
        self.assertEqual([rr.ttl for rr in reply.rr], [60])
        self.assertRan(self.hook("clean_challenge", "www.example.test", "tok", VALUE_A))
        self.assertEqual(self.txt(name), [])

    def test_clean_removes_only_its_value(self):
        # A wildcard and its base name share _acme-challenge.<base>.
        name = "_acme-challenge.example.test"
        self.assertRan(self.hook("deploy_challenge", "example.test", "t1", VALUE_A))
        self.assertRan(self.hook("deploy_challenge", "*.example.test", "t2", VALUE_B))
        self.assertEqual(self.txt(name), sorted([VALUE_A, VALUE_B]))
        self.assertRan(self.hook("clean_challenge", "*.example.test", "t2", VALUE_B))
        self.assertEqual(self.txt(name), [VALUE_A])
        self.assertRan(self.hook("clean_challenge", "example.test", "t1", VALUE_A))
        self.assertEqual(self.txt(name), [])

    def test_chain_of_names_in_two_zones(self):
        args = ["a.example.test", "t1", VALUE_A, "b.other.test.", "t2", VALUE_B]
        self.assertRan(self.hook("deploy_challenge", *args))
        self.assertEqual(self.txt("_acme-challenge.a.example.test"), [VALUE_A])
        self.assertEqual(self.txt("_acme-challenge.b.other.test"), [VALUE_B])
        self.assertRan(self.hook("clean_challenge", *args))
        self.assertEqual(self.txt("_acme-challenge.a.example.test"), [])
        self.assertEqual(self.txt("_acme-challenge.b.other.test"), [])

    def test_explicit_zone(self):
        env = dict(self.env, NSUPDATE_ZONE="example.test.")
        name = "_acme-challenge.deep.sub.example.test"
        args = ["deep.sub.example.test", "t", VALUE_B]
        self.assertRan(self.hook("deploy_challenge", *args, env=env))
        self.assertEqual(self.txt(name), [VALUE_B])
        self.assertRan(self.hook("clean_challenge", *args, env=env))
        self.assertEqual(self.txt(name), [])
        # A name outside the zone given is refused by the server.
        result = self.hook("deploy_challenge", "x.other.test", "t", VALUE_B, env=env)
        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(self.txt("_acme-challenge.x.other.test"), [])

    def test_wrong_key_fails(self):
        bad_key = os.path.join(self.tmp.name, "wrong.key")
        with open(bad_key, "w") as f:
            f.write('key "%s" {\n\talgorithm hmac-sha256;\n\tsecret "%s";\n};\n'
                    % (self.lab.tsig[0], "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="))
        result = self.hook("deploy_challenge", "bad.example.test", "tok", VALUE_A,
                           env=dict(self.env, NSUPDATE_KEY=bad_key))
        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(self.txt("_acme-challenge.bad.example.test"), [])

    def test_refuses_bad_domain_without_sending(self):
        result = self.hook("deploy_challenge", "x.example.test;y", "tok", VALUE_A)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("refusing", result.stderr)

    def test_other_commands_do_nothing(self):
        for argv in (["startup_hook"], ["exit_hook", "oops"],
                     ["deploy_cert", "example.test", "k", "c", "f", "ch", "1700000000"],
                     ["this_hook_is_unknown"], []):
            result = self.hook(*argv, env={})  # no configuration needed
            self.assertEqual(result.returncode, 0, (argv, result.stderr))


class ChalltestsrvHook(unittest.TestCase):
    lab = None

    @classmethod
    def setUpClass(cls):
        lab = cls.lab = Lab()
        lab.start()
        cls.pebble = lab.pebble()
        cls.env = {"CHALLTESTSRV_URL": cls.pebble.challtestsrv_url}

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()

    def hook(self, *argv):
        return run_hook(CHALLTESTSRV_HOOK, self.env, *argv)

    def txt(self, name):
        return txt_values(self.lab, name, self.pebble.dns_server)

    def test_deploy_then_clean(self):
        name = "_acme-challenge.www.example.test"
        self.assertEqual(self.txt(name), [])
        result = self.hook("deploy_challenge", "www.example.test", "tok", VALUE_A)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(self.txt(name), [VALUE_A])
        result = self.hook("clean_challenge", "www.example.test", "tok", VALUE_A)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(self.txt(name), [])

    def test_wildcard_uses_base_name(self):
        name = "_acme-challenge.wild.test"
        result = self.hook("deploy_challenge", "*.wild.test", "tok", VALUE_B)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(self.txt(name), [VALUE_B])
        result = self.hook("clean_challenge", "*.wild.test", "tok", VALUE_B)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(self.txt(name), [])

    def test_refuses_bad_domain(self):
        for domain in ("a;b.test", "a b.test", 'x.test","value":"y'):
            result = self.hook("deploy_challenge", domain, "tok", VALUE_A)
            self.assertNotEqual(result.returncode, 0, domain)
            self.assertIn("refusing", result.stderr)

    def test_unreachable_api_fails(self):
        result = run_hook(CHALLTESTSRV_HOOK, {"CHALLTESTSRV_URL": "http://127.0.0.1:9"},
                          "deploy_challenge", "www.example.test", "tok", VALUE_A)
        self.assertNotEqual(result.returncode, 0)


# A stand-in for a system tool: appends its name and arguments to calls.log and
# exits with the status in <name>.status (0 when there is none).
FAKE_TOOL = """#!/bin/sh
dir=$(dirname "$0")
printf '%s\\n' "$(basename "$0") $*" >>"$dir/calls.log"
[ -f "$dir/$(basename "$0").status" ] && exit "$(cat "$dir/$(basename "$0").status")"
exit 0
"""

LINEAGE = "/var/lib/certpilot/certs/example.org"
DOMAINS = "example.org www.example.org"


class DeployHooks(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="cp-deploy-hook-")
        self.bin = self.tmp.name
        for tool in ("nginx", "apachectl", "systemctl"):
            path = os.path.join(self.bin, tool)
            with open(path, "w") as f:
                f.write(FAKE_TOOL)
            os.chmod(path, 0o755)

    def tearDown(self):
        self.tmp.cleanup()

    def fail_tool(self, tool, status=1):
        with open(os.path.join(self.bin, tool + ".status"), "w") as f:
            f.write("%d\n" % status)

    def hook(self, hook, *argv, env=None):
        env = dict({"PATH": self.bin + ":" + BASE_ENV["PATH"],
                    "RENEWED_LINEAGE": LINEAGE, "RENEWED_DOMAINS": DOMAINS}, **(env or {}))
        return subprocess.run([hook] + list(argv), env=dict(BASE_ENV, **env),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=30)

    def calls(self):
        try:
            with open(os.path.join(self.bin, "calls.log")) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def assertRan(self, result):
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_nginx_tests_then_reloads(self):
        result = self.hook(NGINX_HOOK)
        self.assertRan(result)
        self.assertEqual(self.calls(), ["nginx -t", "systemctl reload nginx"])
        self.assertIn(DOMAINS, result.stdout)
        self.assertIn(LINEAGE, result.stdout)

    def test_nginx_bad_configuration_is_not_reloaded(self):
        self.fail_tool("nginx")
        result = self.hook(NGINX_HOOK)
        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(self.calls(), ["nginx -t"])

    def test_nginx_failed_reload_fails_the_hook(self):
        self.fail_tool("systemctl", 5)
        result = self.hook(NGINX_HOOK)
        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(self.calls(), ["nginx -t", "systemctl reload nginx"])

    def test_apache_tests_then_reloads(self):
        result = self.hook(APACHE_HOOK)
        self.assertRan(result)
        self.assertEqual(self.calls(), ["apachectl configtest", "systemctl reload apache2"])
        self.assertIn(DOMAINS, result.stdout)

    def test_apache_bad_configuration_is_not_reloaded(self):
        self.fail_tool("apachectl")
        result = self.hook(APACHE_HOOK)
        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(self.calls(), ["apachectl configtest"])

    def test_reload_hooks_without_certpilot_variables(self):
        # Run by hand: the log line says what is unknown, the reload still happens.
        for hook in (NGINX_HOOK, APACHE_HOOK):
            result = self.hook(hook, env={"RENEWED_LINEAGE": "", "RENEWED_DOMAINS": ""})
            self.assertRan(result)
        self.assertEqual(self.calls()[1::2], ["systemctl reload nginx",
                                              "systemctl reload apache2"])

    def test_restart_unit_from_argument(self):
        # --deploy-hook "/usr/.../restart-unit.sh postfix.service"
        result = self.hook(RESTART_HOOK, "postfix.service")
        self.assertRan(result)
        self.assertEqual(self.calls(), ["systemctl restart -- postfix.service"])
        self.assertIn("restarting postfix.service", result.stdout)
        self.assertIn(LINEAGE, result.stdout)

    def test_restart_unit_from_environment(self):
        result = self.hook(RESTART_HOOK, env={"UNIT": "dovecot.service"})
        self.assertRan(result)
        self.assertEqual(self.calls(), ["systemctl restart -- dovecot.service"])

    def test_restart_unit_argument_wins_over_environment(self):
        result = self.hook(RESTART_HOOK, "postfix.service", env={"UNIT": "dovecot.service"})
        self.assertRan(result)
        self.assertEqual(self.calls(), ["systemctl restart -- postfix.service"])

    def test_restart_unit_refuses_bad_use(self):
        for argv, env in (([], {}), ([], {"UNIT": ""}), (["--now"], {}),
                          ([], {"UNIT": "-H"}), (["postfix.service", "dovecot.service"], {})):
            result = self.hook(RESTART_HOOK, *argv, env=env)
            self.assertNotEqual(result.returncode, 0, (argv, env))
            self.assertIn("restart-unit:", result.stderr)
        self.assertEqual(self.calls(), [])

    def test_restart_unit_failure_fails_the_hook(self):
        self.fail_tool("systemctl", 1)
        result = self.hook(RESTART_HOOK, "postfix.service")
        self.assertNotEqual(result.returncode, 0)


if __name__ == "__main__":
    unittest.main()
