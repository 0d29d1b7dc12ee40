#!/usr/bin/python3
"""Shell completions (dist/completions/) driven by the real binary.

The scripts hold no option lists: they ask `certpilot COMMAND --list-options`,
which prints the table the command parses with.  These tests complete words
as bash and zsh would and check what is offered: command words, subcommands,
every option of the table, the values of options that take known values, and
files or directories where an option names one.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_issue as base  # noqa: E402

CERTPILOT = base.CERTPILOT
ROOT = os.path.dirname(os.path.dirname(HERE))
BASH_SCRIPT = os.path.join(ROOT, "dist", "completions", "certpilot.bash")
ZSH_SCRIPT = os.path.join(ROOT, "dist", "completions", "_certpilot")

COMMANDS = [["caa", "check"], ["doctor"], ["persist-record"], ["account", "register"], ["issue"], ["renew"],
            ["list"], ["revoke"], ["delete"], ["systemd", "install"], ["systemd", "cron"],
            ["import", "certbot"], ["import", "dehydrated"], ["serve-challenges"]]


def list_options(words):
    out = subprocess.run([CERTPILOT] + words + ["--list-options"], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    return out.split()


def bash_complete(words, cwd=None):
    """COMPREPLY for the command line `words`, the last one being completed."""
    line = " ".join(words)
    script = (
        'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); '
        'COMP_LINE="%s"; _certpilot; printf "%%s\\n" "${COMPREPLY[@]}"' % line)
    proc = subprocess.run(["bash", "-c", script, "bash", BASH_SCRIPT, CERTPILOT] + words[1:],
                          capture_output=True, text=True, timeout=60, cwd=cwd)
    if proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return [w for w in proc.stdout.split("\n") if w]


class ListOptions(unittest.TestCase):
    def test_each_command_lists_its_table(self):
        for words in COMMANDS:
            opts = list_options(words)
            self.assertIn("--help", opts, words)
            self.assertEqual(len(opts), len(set(opts)), words)
            for o in opts:
                self.assertRegex(o, r"^--[a-z0-9-]+(=|\[=\])?$")
        issue = list_options(["issue"])
        # A flag, a value option, an optional value.
        self.assertIn("--standalone", issue)
        self.assertIn("--webroot=", issue)
        self.assertIn("--dry-run[=]", issue)

    def test_every_listed_option_is_accepted(self):
        # Each listed name is one the command knows: an unknown one would be
        # refused as such (exit 64, "unknown option") before anything runs.
        # --help first: the command stops at it, after the whole line was
        # checked for unknown options (and in a scratch directory, should
        # one write anything anyway).
        with tempfile.TemporaryDirectory() as scratch:
            for words in COMMANDS:
                for o in list_options(words):
                    name = o.rstrip("=").replace("[=]", "")
                    if name == "--help":
                        continue
                    value = ["x"] if o.endswith("=") and not o.endswith("[=]") else []
                    proc = subprocess.run([CERTPILOT] + words + ["--help", name] + value,
                                          capture_output=True, text=True, timeout=30,
                                          cwd=scratch)
                    self.assertNotIn("unknown option", proc.stderr, (words, name))
            self.assertEqual(os.listdir(scratch), [])


    def test_help_whatever_the_defaults_file(self):
        # --help prints the usage (exit 0) even when --config names a file
        # that cannot be read: the defaults file is not read then.
        missing = "/nonexistent/certpilot-config"
        checked = 0
        for words in COMMANDS:
            if "--config=" not in list_options(words):
                continue
            for args in (["--help", "--config", missing], ["--config=" + missing, "-h"]):
                proc = subprocess.run([CERTPILOT] + words + args, capture_output=True,
                                      text=True, timeout=30)
                self.assertEqual(proc.returncode, 0, (words, args, proc.stderr))
                self.assertIn("usage:", proc.stdout, (words, args))
            checked += 1
        self.assertGreaterEqual(checked, 10)


@unittest.skipIf(shutil.which("bash") is None, "bash is not installed")
class Bash(unittest.TestCase):
    def test_commands_and_subcommands(self):
        got = bash_complete(["certpilot", ""])
        for c in ["caa", "doctor", "account", "issue", "renew", "list", "import", "systemd"]:
            self.assertIn(c, got)
        self.assertEqual(bash_complete(["certpilot", "acc"]), ["account"])
        self.assertEqual(sorted(bash_complete(["certpilot", "account", ""])),
                         sorted(["register", "show", "update", "rollover", "deactivate",
                                 "--help"]))

    def test_options_are_the_commands_table(self):
        for words in COMMANDS:
            want = sorted(o.rstrip("=").replace("[=]", "") for o in list_options(words))
            got = sorted(bash_complete(["certpilot"] + words + ["--"]))
            self.assertEqual(got, want, words)
        self.assertEqual(sorted(bash_complete(["certpilot", "issue", "--webroot-"])),
                         sorted(o.rstrip("=") for o in list_options(["issue"])
                                if o.startswith("--webroot-")))
        self.assertIn("--webroot-map", bash_complete(["certpilot", "issue", "--webroot-"]))

    def test_values(self):
        self.assertEqual(bash_complete(["certpilot", "issue", "--key-type", "ec"]),
                         ["ecdsa", "ec256", "ec384"])
        self.assertEqual(bash_complete(["certpilot", "issue", "--challenge", "d"]),
                         ["dns-01", "dns-persist-01"])
        self.assertEqual(bash_complete(["certpilot", "issue", "--dry-run=o"]), ["order"])
        self.assertEqual(bash_complete(["certpilot", "issue", "--required-profile", "s"]),
                         ["shortlived"])
        self.assertEqual(bash_complete(["certpilot", "revoke", "--reason", "key"]),
                         ["keyCompromise"])

    def test_files_and_directories(self):
        with tempfile.TemporaryDirectory() as d:
            os.mkdir(os.path.join(d, "www"))
            open(os.path.join(d, "wfile"), "w").close()
            self.assertEqual(bash_complete(["certpilot", "issue", "--webroot", "w"], cwd=d),
                             ["www"])
            self.assertEqual(bash_complete(["certpilot", "issue", "-w", "w"], cwd=d), ["www"])
            self.assertEqual(sorted(bash_complete(["certpilot", "issue", "--config", "w"],
                                                  cwd=d)), ["wfile", "www"])
            # A name given to -d is not a file: nothing is offered.
            self.assertEqual(bash_complete(["certpilot", "issue", "-d", "w"], cwd=d), [])
            # After a flag comes an operand, not the flag's value: issue
            # takes none, and no file is offered.
            self.assertEqual(bash_complete(["certpilot", "issue", "--standalone", "w"],
                                           cwd=d), [])


# Stand-ins for zsh's completion system print what would be offered; the
# script, as autoloaded, runs _certpilot on `words` and CURRENT.
ZSH_DRIVER = r'''
compadd() { print -r -- "compadd ${(j: :)@}" }
_arguments() { local s; for s in "$@"; do print -r -- "spec $s"; done }
_files() { print -r -- "files $*" }
script=$1; shift
words=("$@"); CURRENT=$#
source "$script"
'''


@unittest.skipIf(shutil.which("zsh") is None, "zsh is not installed")
class Zsh(unittest.TestCase):
    def complete(self, words):
        proc = subprocess.run(["zsh", "-f", "-c", ZSH_DRIVER, "zsh", ZSH_SCRIPT, CERTPILOT]
                              + words[1:], capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc.stdout.splitlines()

    def test_commands(self):
        out = self.complete(["certpilot", ""])
        self.assertTrue(any(l.startswith("compadd") and " issue " in l for l in out), out)
        self.assertIn("compadd -a subs", self.complete(["certpilot", "import", ""])[0])

    def test_specs_follow_the_table(self):
        for words in COMMANDS:
            specs = [l[5:] for l in self.complete(["certpilot"] + words + ["--"])
                     if l.startswith("spec ")]
            names = sorted(s.split("[", 1)[0].rstrip("=-").rstrip("=") for s in specs
                           if s.startswith("--"))
            want = sorted(o.rstrip("=").replace("[=]", "") for o in list_options(words))
            self.assertEqual(names, want, words)
        specs = [l[5:] for l in self.complete(["certpilot", "issue", "--"])]
        self.assertIn("--key-type=[key-type]:value:(ecdsa rsa ec256 ec384 rsa2048 rsa3072 "
                      "rsa4096)", specs)
        self.assertIn("--webroot=[webroot]:value:_files -/", specs)
        self.assertIn("--dry-run=-[dry-run]:value:(check order)", specs)
        self.assertIn("--standalone[standalone]", specs)


if __name__ == "__main__":
    unittest.main()
