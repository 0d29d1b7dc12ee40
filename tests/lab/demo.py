#!/usr/bin/python3
"""certpilot's quick-start demo: a local lab on loopback and the CAA check in it.

Started by scripts/demo.sh.  It brings up Knot (authoritative for a small
example zone), Unbound (a validating recursive resolver, like the CA's) and
Pebble (Let's Encrypt's test CA) with pebble-challtestsrv, then runs
`certpilot caa check` on a name the CAA records allow and on one they
refuse, showing the explanation a user would get; then it obtains a real
certificate from Pebble with `certpilot issue` (http-01, built-in server)
and shows what was stored, and finally asks for the refused name, which the
CAA preflight stops before any order reaches Pebble.  Every process is stopped
and the temp dir removed on exit.  Exit status 0 when both verdicts came out
as expected.
"""

import argparse
import os
import shlex
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cplab import Lab  # noqa: E402

HOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "hooks", "examples",
                    "dns-challtestsrv.sh")

ZONE = """
    @     CAA 0 issue "letsencrypt.org"
    www   A   127.0.0.1
    blog  CNAME example-shop.pages.test.
"""
HOSTING = """
    example-shop  CAA 0 issue "letsencrypt.org"
    example-shop  CAA 0 issuewild "otherca.example"
"""


def show_zone(origin, text):
    for line in text.strip().splitlines():
        owner, rest = line.split(None, 1)
        name = origin if owner == "@" else owner + "." + origin
        print("      %-32s %s" % (name + ".", " ".join(rest.split())))


def run(certpilot, resolver, *idents):
    argv = [certpilot, "caa", "check", "--resolver", resolver] + list(idents)
    print("\n$ certpilot caa check --resolver %s %s" % (resolver, " ".join(
        shlex.quote(i) for i in idents)))
    sys.stdout.flush()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    for line in proc.stdout.splitlines():
        print("  " + line)
    if proc.stderr:
        print(proc.stderr, file=sys.stderr)
    print("  (exit status %d)" % proc.returncode)
    return proc.returncode


def issue(certpilot, pebble, resolver, state, names, solver):
    domains = []
    for name in names:
        domains += ["-d", name]
    argv = [certpilot, "issue"] + domains + solver + [
        "--agree-tos",
        "--email", "ops@example.test", "--ca-identity", "letsencrypt.org", "--resolver", resolver,
        "--server", pebble.directory_url, "--ca-bundle", pebble.ca_bundle, "--state-dir", state]
    print("\n$ certpilot issue %s %s \\\n"
          "      --agree-tos --email ops@example.test --ca-identity letsencrypt.org \\\n"
          "      --resolver %s --server %s \\\n      --ca-bundle %s --state-dir %s"
          % (" ".join("-d " + shlex.quote(n) for n in names),
             " ".join(shlex.quote(a) for a in solver), resolver, pebble.directory_url,
             pebble.ca_bundle, state))
    sys.stdout.flush()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, CHALLTESTSRV_URL=pebble.challtestsrv_url))
    for line in (proc.stdout + proc.stderr).splitlines():
        print("  " + line)
    print("  (exit status %d)" % proc.returncode)
    if proc.returncode == 0:
        cert = os.path.join(state, "certs", names[0], "cert.pem")
        info = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-subject", "-issuer",
                               "-enddate", "-ext", "subjectAltName"],
                              capture_output=True, text=True)
        print("\n$ openssl x509 -in %s -noout -subject -issuer -enddate -ext subjectAltName"
              % cert)
        for line in info.stdout.splitlines():
            print("  " + line)
    return proc.returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certpilot", default="build/certpilot", help="the binary to run")
    args = parser.parse_args()
    certpilot = os.path.abspath(args.certpilot)

    print("certpilot demo: starting a lab on loopback (Knot, Unbound, Pebble)...")
    with Lab() as lab:
        lab.zone("example.test", ZONE)
        lab.zone("pages.test", HOSTING)
        lab.start()
        pebble = lab.pebble()
        print("  Knot DNS (authoritative)          %s" % lab.knot)
        print("  Unbound (validating resolver)     %s" % lab.resolver)
        print("  Pebble (ACME test CA) directory   %s" % pebble.directory_url)
        print("\n  The zones served:")
        show_zone("example.test", ZONE)
        show_zone("pages.test", HOSTING)
        print("\n  blog.example.test is an alias into a hosting provider whose CAA set lets"
              "\n  only another CA issue wildcard certificates.")

        allowed = run(certpilot, lab.resolver, "www.example.test", "blog.example.test")
        refused = run(certpilot, lab.resolver, "*.blog.example.test")
        print("\n  Now real orders.  Pebble publishes no caaIdentities, so --ca-identity"
              "\n  letsencrypt.org tells certpilot to judge CAA as Let's Encrypt would.  The"
              "\n  preflight runs before anything is ordered; a name the CA would refuse is"
              "\n  never sent to it.")
        with tempfile.TemporaryDirectory(prefix="cpdemo-") as state:
            issued = issue(certpilot, pebble, lab.resolver, state,
                           ["www.example.test", "example.test"],
                           ["--standalone", "--http-port", str(pebble.http_port)])
            before = open(pebble.log).read().count("/order-plz")
            # A wildcard needs dns-01; the hook talks to Pebble's test DNS.
            stopped = issue(certpilot, pebble, lab.resolver, state, ["*.blog.example.test"],
                            ["--challenge", "dns-01", "--dns-hook", HOOK])
            orders = open(pebble.log).read().count("/order-plz") - before
            print("  (orders Pebble received for it: %d)" % orders)

    ok = allowed == 0 and refused == 1 and issued == 0 and stopped == 1 and orders == 0
    print("\ncertpilot demo: %s; the lab is stopped and its files removed."
          % ("verdicts and issuance as expected" if ok else "UNEXPECTED results"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
