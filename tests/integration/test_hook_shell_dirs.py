#!/usr/bin/python3
"""Hooks as certbot users write them (issue 15), end to end against Pebble.

- "sh:TEXT" runs /bin/sh -c TEXT: the text reaches the shell exactly as
  written ($0 is /bin/sh, no positional arguments, a literal stays literal),
  the data is only in the environment (a $(...) in the text sees the
  environment's values), and it is kept as written in renewal.conf and run
  again by renew.  Without "sh:" the same kind of text is words: "&&" is an
  argument.  An empty "sh:" is a usage error before anything is ordered.
- hooks.d/{pre,post,deploy}/ next to the defaults file (--config, which may
  hold a "sh:" hook too): run in
  byte order around the hook options (pre before --pre-hook, deploy after
  --deploy-hook, post after --post-hook), skipping what is not executable,
  hidden or a backup; a failing deploy one gives issue's hook status (6) with
  the certificate stored, and renew's failure with the new certificate in
  place; renew runs pre and post once per run and deploy per certificate.
"""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_renew import RenewCase, read, write  # noqa: E402

# argv.sh FILE ARGS...: one line per argument, then a line "--".
ARGV_SH = r"""#!/bin/sh
out=$1
shift
for a in "$@"; do printf '%s\n' "$a" >>"$out"; done
echo -- >>"$out"
"""

# A hooks.d entry: appends "<its name> <RENEWED_DOMAINS or ->" to the log.
DIR_HOOK = r"""#!/bin/sh
printf '%s %s\n' "${0##*/}" "${RENEWED_DOMAINS:--}" >>"@LOG@"
"""


class ShellHooks(RenewCase):
    def test_shell_deploy_hook_and_done(self):
        out = os.path.join(self.tmp.name, "domains")
        hook = 'sh:echo "$RENEWED_DOMAINS" > %s && echo done' % out
        args = ["issue", "-d", "sh.example.test", "-d", "www.sh.example.test", "-v",
                "--deploy-hook", hook, "--state-dir", self.state]
        proc = self.certpilot(*args, *self.ca_args(), *self.issue_args(), *self.http())
        self.assertEqual(read(out), "sh.example.test www.sh.example.test\n")
        # The shell ran the second command too; its output is in the log.
        self.assertIn("deploy-hook: done", proc.stderr)

    def test_text_is_passed_as_written(self):
        c = "literal.example.test"
        out = os.path.join(self.tmp.name, "seen")
        # $0 and $# show the argv is exactly /bin/sh -c TEXT; the $(...) runs
        # on the environment's value; the quoted part is never filled in.
        hook = ("sh:printf '%%s|' \"$0\" \"$#\" \"$(printf %%s \"$RENEWED_DOMAINS\")\" "
                "\"${RENEWED_LINEAGE##*/}\" > %s; printf '%%s' '{domain} %%s $RENEWED_DOMAINS' "
                ">> %s" % (out, out))
        self.issue(c, extra=self.http() + ["--deploy-hook", hook])
        expected = "/bin/sh|0|%s|%s|{domain} %%s $RENEWED_DOMAINS" % (c, c)
        self.assertEqual(read(out), expected)
        # Kept as written for renew, which runs it the same way.
        self.assertIn("deploy-hook = %s\n" % hook, read(self.renewal_conf(c)))
        os.unlink(out)
        self.renew("--force-renewal")
        self.assertEqual(read(out), expected)

    def test_without_prefix_words_not_shell(self):
        argv_sh = os.path.join(self.tmp.name, "argv.sh")
        write(argv_sh, ARGV_SH, 0o755)
        out = os.path.join(self.tmp.name, "argv")
        marker = os.path.join(self.tmp.name, "marker")
        self.issue("words.example.test", extra=self.http() + [
            "--deploy-hook", "%s %s $RENEWED_DOMAINS && touch %s" % (argv_sh, out, marker)])
        self.assertEqual(read(out).splitlines(),
                         ["$RENEWED_DOMAINS", "&&", "touch", marker, "--"])
        self.assertFalse(os.path.exists(marker))

    def test_empty_shell_text_is_refused_first(self):
        for opt in ("--pre-hook", "--post-hook", "--deploy-hook"):
            proc = self.issue("empty.example.test", extra=self.http() + [opt, "sh:  "],
                              expect=64)
            self.assertIn('%s: hook "sh:  ": write a shell command line after "sh:"' % opt,
                          proc.stderr)
            self.assertNotIn("POST /order-plz", proc.pebble_log)
        proc = self.renew("--deploy-hook", "sh:", expect=64, json_out=False)
        self.assertIn('write a shell command line after "sh:"', proc.stderr)


class HookDirs(RenewCase):
    def setUp(self):
        super().setUp()
        self.conf_dir = os.path.join(self.tmp.name, "etc")
        self.config = os.path.join(self.conf_dir, "config")
        os.makedirs(self.conf_dir)
        write(self.config, "# defaults\n")
        self.log = os.path.join(self.tmp.name, "order.log")

    def dir_hook(self, phase, name, mode=0o755, body=None):
        d = os.path.join(self.conf_dir, "hooks.d", phase)
        os.makedirs(d, exist_ok=True)
        write(os.path.join(d, name), body or DIR_HOOK.replace("@LOG@", self.log), mode)

    def option_hooks(self):
        line = "sh:echo \"%s ${RENEWED_DOMAINS:--}\" >> " + self.log
        return ["--pre-hook", line % "pre-hook", "--post-hook", line % "post-hook",
                "--deploy-hook", line % "deploy-hook"]

    def lines(self):
        return read(self.log).splitlines() if os.path.exists(self.log) else []

    def test_issue_runs_directories_in_order(self):
        for name in ("b", "B", "a1", "10", "9"):
            self.dir_hook("deploy", name)
        self.dir_hook("pre", "20-second")
        self.dir_hook("pre", "10-first")
        self.dir_hook("post", "only")
        self.dir_hook("deploy", "c-not-executable", mode=0o644)
        self.dir_hook("deploy", ".hidden")
        self.dir_hook("deploy", "old~")
        # The post-hook from the defaults file this time.
        hooks = self.option_hooks()
        write(self.config, "post-hook = %s\n" % hooks[3])
        c = "dirs.example.test"
        self.issue(c, extra=self.http() + ["--config", self.config] + hooks[:2] + hooks[4:])
        self.assertEqual(self.lines(), [
            "10-first -", "20-second -", "pre-hook -",
            "deploy-hook " + c, "10 " + c, "9 " + c, "B " + c, "a1 " + c, "b " + c,
            "post-hook -", "only -"])

    def test_failing_deploy_hook_in_directory(self):
        self.dir_hook("deploy", "1-fails", body="#!/bin/sh\necho failing on purpose\nexit 3\n")
        self.dir_hook("deploy", "2-still-runs")
        c = "fail.example.test"
        proc = self.issue(c, extra=self.http() + ["--config", self.config], expect=6)
        self.assertIn("1-fails failed with exit status 3", proc.stderr)
        self.assertEqual(self.lines(), ["2-still-runs " + c])
        self.assert_pair(c)
        self.assertEqual(len(self.versions(c)), 1)
        # renew: the new certificate stays in place, the run fails.
        current = self.current(c)
        proc = self.renew("--force-renewal", "--config", self.config, expect=1)
        r = proc.doc["results"][0]
        self.assertEqual(r["outcome"], "deploy_hook_failed")
        self.assertNotEqual(self.current(c), current)
        self.assert_pair(c)

    def test_renew_runs_pre_post_once_deploy_each(self):
        names = ["one.example.test", "two.example.test"]
        for n in names:
            self.issue(n)
        self.dir_hook("pre", "p")
        self.dir_hook("deploy", "d")
        self.dir_hook("post", "q")
        self.renew("--force-renewal", "--config", self.config, *self.option_hooks())
        lines = self.lines()
        self.assertEqual(lines[:2], ["p -", "pre-hook -"])
        self.assertEqual(lines[-2:], ["post-hook -", "q -"])
        self.assertEqual(sorted(lines[2:-2]),
                         sorted(["deploy-hook " + n for n in names] + ["d " + n for n in names]))
        for i in range(2, 6, 2):  # each certificate: its deploy-hook, then hooks.d/deploy
            self.assertEqual(lines[i].split()[0], "deploy-hook")
            self.assertEqual(lines[i + 1], "d " + lines[i].split()[1])
        # Nothing due: no hook at all, not even the directories.
        os.unlink(self.log)
        proc = self.renew("--config", self.config, *self.option_hooks())
        self.assertEqual(proc.doc["attempted"], 0)
        self.assertEqual(self.lines(), [])


if __name__ == "__main__":
    unittest.main()
