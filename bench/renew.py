#!/usr/bin/python3
"""Benchmark: `certpilot renew` over 10,000 certificates of which none is due.

One certificate is issued by a lab Pebble; its directory in the state
directory is then copied to 10,000 certificate names (--certs) (renewal.conf with the
name changed, the same certificate files), as a server with many sites would
have.  Nothing is due: the certificates are fresh (5-year Pebble
certificates) and Pebble offers no ARI.

Reported, not asserted:
- the first run: it asks the CA's directory once (whether the CA offers ARI)
  and caches the answer in each certificate's status.json;
- later runs (median, min, max): no network at all;
- wall time, CPU time (user + system) and peak RSS of the certpilot process.
  Peak RSS comes from GNU time (/usr/bin/time -f %M): Python's own RSS would
  otherwise leak into ru_maxrss of a child it spawned (see bench/issue.py).

    /usr/bin/python3 bench/renew.py [--certpilot PATH] [--certs 10000] [--runs 5] [--json]
        [--keep-state DIR]

Build certpilot without sanitizers for meaningful figures:
    cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench

Figures (issue 17), 10,000 certificates, release build, a 2-core VM shared
with other builds (load average 1-3 during the runs: wall time there is
CPU time plus waiting for a core), later runs, median of 5:

| build | wall | CPU | peak RSS | syscalls |
|---|---|---|---|---|
| before (3b52773) | 3.011 s (2.941-3.199) | 3.005 s | 13488 KiB | 820,705 |
| status.json cache, fewer syscalls (abb1e0b) | 1.209-1.274 s (1.069-1.380) | 1.14-1.17 s | 13164 KiB | 290,712 |
| abb1e0b (main), quieter machine (load 0.9) | 0.954 s (0.945-1.083) | 0.952 s | 12272 KiB | 300,711 |
| lineages swept only after a killed run, look-ups from certs/ | 0.581 s (0.577-0.635) | 0.580 s | 12292 KiB | 130,655 |
| ... same binary, load 1-2.6 | 0.727 s (0.628-0.809) | 0.615 s | 12288 KiB | |

Instructions (valgrind --tool=callgrind, 1,000 certificates): 1.67 G before,
0.350 G with the cache, 0.345 G now (what changed since is in the kernel:
callgrind does not count it).  Where a lineage's time went before: parsing
its certificate (81% of the instructions; now cached in status.json under
the current version's identity), 82 syscalls; then 29, of which 15 swept the
lineage's three directories for a killed run's temp files under the lock in
every run.  That sweep now runs only after a run that did not let the lock
go in good order (a run that does empties renew.lock as it ends; a killed
one leaves its pid there), and the lineage's names are looked up from an
open certs/ directory (2-3 path components for the kernel to walk, not 7-8).
What is left, 13 syscalls a lineage: the lineage check (fstatat of the
lineage, versions/ and the current version, readlinkat of current), the
version's identity (fstatat of cert.pem), status.json and renewal.conf
(openat, fstat, read, close each); half the time is system time, mostly
syscall entry and path look-up on this VM.  In user space (about 0.3 s):
the JSON parse of status.json, renewal.conf turned into issue's arguments
and parsed (which also finds a renewal.conf that cannot be used, due or not),
the summary line, and a 98 KB issue structure allocated and zeroed per
lineage.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lab"))
from cplab import Lab  # noqa: E402


def timed(argv):
    """(wall s, cpu s, peak RSS KiB, CompletedProcess) of one run."""
    gnu_time = shutil.which("time", path="/usr/bin")
    out = tempfile.NamedTemporaryFile(delete=False)
    out.close()
    cmd = ([gnu_time, "-f", "%M", "-o", out.name] if gnu_time else []) + argv
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rss = None
    if gnu_time:
        with open(out.name) as f:
            lines = f.read().split()
            rss = int(lines[-1]) if lines else None
    os.unlink(out.name)
    return wall, cpu, rss, proc


def clone(state, src, n):
    """Copy certs/<src> to n names cert-0000.example.test ..."""
    base = os.path.join(state, "certs")
    conf = open(os.path.join(base, src, "renewal.conf")).read()
    for i in range(n):
        name = "cert-%04d.example.test" % i
        dst = os.path.join(base, name)
        shutil.copytree(os.path.join(base, src), dst, symlinks=True)
        with open(os.path.join(dst, "renewal.conf"), "w") as f:
            f.write(conf.replace("domain = %s" % src, "domain = %s" % name))
    shutil.rmtree(os.path.join(base, src))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--certpilot", default=os.environ.get("CERTPILOT", "build-bench/certpilot"))
    ap.add_argument("--certs", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep-state", metavar="DIR",
                    help="copy the state directory there at the end (for profiling)")
    args = ap.parse_args()
    cp = os.path.abspath(args.certpilot)

    with Lab() as lab:
        pebble = lab.pebble(env={"PEBBLE_WFE_NONCEREJECT": "0"})
        state = os.path.join(lab.dir, "state")
        subprocess.run([cp, "issue", "--agree-tos", "--server", pebble.directory_url,
                        "--ca-bundle", pebble.ca_bundle, "--state-dir", state, "--standalone",
                        "--http-port", str(pebble.http_port), "-d", "seed.example.test"],
                       check=True, capture_output=True)
        clone(state, "seed.example.test", args.certs)
        renew = [cp, "renew", "--quiet", "--state-dir", state]

        first = timed(renew)
        if first[3].returncode != 0:
            sys.exit("renew failed: %s" % first[3].stderr)
        runs = [timed(renew) for _ in range(args.runs)]
        for r in runs:
            if r[3].returncode != 0 or r[3].stdout or r[3].stderr:
                sys.exit("renew said something or failed: %r" % (r[3],))
        check = subprocess.run(renew[:-2] + ["--json", "--state-dir", state],
                               capture_output=True, text=True, check=True)
        summary = json.loads(check.stdout)
        assert summary["certificates"] == args.certs and summary["attempted"] == 0
        if args.keep_state:
            shutil.copytree(state, args.keep_state, symlinks=True)

    walls = [r[0] for r in runs]
    fig = {
        "certificates": args.certs,
        "first_run": {"wall_s": round(first[0], 3), "cpu_s": round(first[1], 3),
                      "peak_rss_kib": first[2]},
        "later_runs": {"wall_s_median": round(statistics.median(walls), 3),
                       "wall_s_min": round(min(walls), 3), "wall_s_max": round(max(walls), 3),
                       "cpu_s_median": round(statistics.median(r[1] for r in runs), 3),
                       "peak_rss_kib_max": max((r[2] or 0) for r in runs)},
    }
    if args.json:
        print(json.dumps(fig, indent=2))
        return
    print("| renew, %d certificates, none due | wall | CPU | peak RSS |" % args.certs)
    print("|---|---|---|---|")
    print("| first run (asks the CA once whether it offers ARI) | %.3f s | %.3f s | %s KiB |"
          % (first[0], first[1], first[2]))
    lr = fig["later_runs"]
    print("| later runs, median of %d (no network) | %.3f s (%.3f-%.3f) | %.3f s | %s KiB |"
          % (args.runs, lr["wall_s_median"], lr["wall_s_min"], lr["wall_s_max"],
             lr["cpu_s_median"], lr["peak_rss_kib_max"]))


if __name__ == "__main__":
    main()
