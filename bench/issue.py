#!/usr/bin/python3
"""Benchmark: one `certpilot issue` of 1 name and of 10 names against Pebble.

A lab Pebble (PEBBLE_VA_NOSLEEP=1, PEBBLE_WFE_NONCEREJECT=0,
PEBBLE_AUTHZREUSE=0: validations start at once, no nonce is rejected, no
authorization is reused) validates http-01 against certpilot's built-in
server (--standalone).  The account is registered once beforehand, so the
figures are those of the issuance.  Each measured run orders fresh names.
Reported, not asserted, for each size:

- wall time of the certpilot process (median, min, max of the runs).  With
  validations this fast, it clusters at multiples of certpilot's 200 ms
  first poll delay (an authorization or the order still pending or
  processing when first polled), so the median jumps between clusters;
- its CPU time (user + system, from RUSAGE_CHILDREN deltas) and its peak
  RSS.  ru_maxrss from os.wait4 on a process Python spawned is no good here:
  Linux keeps the spawning process's RSS (Python's, about 23 MB with the lab
  loaded) in the child's maxrss when it execs, so every run would read the
  same number.  The run goes through GNU time (/usr/bin/time -f %M), which
  forks a small child to exec certpilot and reports that child's own
  ru_maxrss from wait4; without /usr/bin/time the wait4 figure is reported
  and marked as an upper bound;
- HTTP requests: certpilot's own count for the issuance (`issue --json`
  "requests": newOrder to certificate download) and the requests Pebble
  logged during the whole run (one "METHOD /path -> calling handler()" line
  each; adds the directory, a nonce and the account look-up);
- the protocol floor of an issuance: newOrder + per name (authorization
  GET + challenge POST + one authorization poll) + finalize + one order
  poll + certificate download = 4 + 3 x names, and certpilot's count minus
  that floor.

    /usr/bin/python3 bench/issue.py [--certpilot PATH] [--runs 5] [--json]

Prints Markdown tables; --json prints the figures as JSON.
"""

import argparse
import collections
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lab"))
from cplab import Lab  # noqa: E402

# cplab's Pebble always sets PEBBLE_VA_NOSLEEP=1 (and refuses it in env).
PEBBLE_ENV = {"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
REQUEST_LINE = re.compile(r" (GET|HEAD|POST) (\S+) -> calling handler\(\)")
SIZES = (1, 10)


def floor(names):
    """Fewest requests of an issuance, as certpilot counts them (newOrder on)."""
    return 1 + 3 * names + 1 + 1 + 1


def log_size(pebble):
    return os.path.getsize(pebble.log)


def log_requests(pebble, offset):
    """Requests Pebble logged after byte offset: Counter of "METHOD /path"."""
    with open(pebble.log, "rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    return collections.Counter("%s %s" % m.groups() for m in REQUEST_LINE.finditer(text))


def common_args(pebble, state):
    return ["--server", pebble.directory_url, "--ca-bundle", pebble.ca_bundle,
            "--state-dir", state]


GNU_TIME = "/usr/bin/time"


def one_run(certpilot, pebble, state, names, tmp):
    """One measured issuance; returns a dict of figures."""
    argv = [certpilot, "issue", "--json", "--standalone", "--http-port",
            str(pebble.http_port)] + sum((["-d", n] for n in names), []) + \
        common_args(pebble, state)
    out_path, err_path = os.path.join(tmp, "out"), os.path.join(tmp, "err")
    rss_path = os.path.join(tmp, "maxrss")
    if os.access(GNU_TIME, os.X_OK):
        argv = [GNU_TIME, "-f", "%M", "-o", rss_path] + argv
    offset = log_size(pebble)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out_path, "w") as out, open(err_path, "w") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stderr=err)
        # wait4: this one process's own rusage (RUSAGE_CHILDREN's maxrss is
        # the maximum over every child ever waited for).
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out_path) as f:
        stdout = f.read()
    if proc.returncode != 0:
        with open(err_path) as f:
            raise RuntimeError("certpilot issue exited %d: %s" % (proc.returncode, f.read()))
    doc = json.loads(stdout)
    at_pebble = log_requests(pebble, offset)
    if os.access(GNU_TIME, os.X_OK):
        with open(rss_path) as f:
            maxrss, rss_method = int(f.read().split()[-1]), "GNU time %M (certpilot alone)"
    else:
        maxrss, rss_method = ru.ru_maxrss, "wait4 (upper bound: includes Python's RSS)"
    return {
        "wall_s": wall,
        "cpu_s": (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
        "cpu_s_wait4": ru.ru_utime + ru.ru_stime,
        "maxrss_kb": maxrss,
        "rss_method": rss_method,
        "requests_certpilot": doc["requests"],
        "requests_pebble": sum(at_pebble.values()),
        "endpoints": dict(sorted(at_pebble.items())),
    }


def measure(certpilot, pebble, state, size, runs, tmp):
    results = []
    for run in range(runs):
        names = ["n%d.r%d.s%d.bench.test" % (i, run, size) for i in range(size)]
        results.append(one_run(certpilot, pebble, state, names, tmp))
    walls = [r["wall_s"] for r in results]
    req = [r["requests_certpilot"] for r in results]
    return {
        "names": size,
        "runs": runs,
        "wall_s_median": round(statistics.median(walls), 4),
        "wall_s_min": round(min(walls), 4),
        "wall_s_max": round(max(walls), 4),
        "cpu_s_median": round(statistics.median(r["cpu_s"] for r in results), 4),
        "cpu_s_wait4_median": round(statistics.median(r["cpu_s_wait4"] for r in results), 4),
        "peak_rss_kb_median": int(statistics.median(r["maxrss_kb"] for r in results)),
        "peak_rss_kb_max": max(r["maxrss_kb"] for r in results),
        "peak_rss_method": results[0]["rss_method"],
        "requests_certpilot_median": statistics.median(req),
        "requests_certpilot_min": min(req),
        "requests_certpilot_max": max(req),
        "requests_pebble_median": statistics.median(r["requests_pebble"] for r in results),
        "protocol_floor": floor(size),
        "requests_minus_floor_median": statistics.median(req) - floor(size),
        "endpoints_last_run": results[-1]["endpoints"],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--certpilot", default=os.environ.get(
        "CERTPILOT", os.path.join(HERE, "..", "build", "certpilot")))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    certpilot = os.path.abspath(args.certpilot)

    with Lab() as lab, tempfile.TemporaryDirectory(prefix="cpbench-") as tmp:
        # Pebble needs no DNS from the lab: pebble-challtestsrv answers its look-ups.
        pebble = lab.pebble(env=PEBBLE_ENV)
        state = os.path.join(tmp, "state")
        subprocess.run([certpilot, "account", "register", "--agree-tos"] +
                       common_args(pebble, state), check=True, capture_output=True)
        # One unmeasured issuance: page cache, Pebble's first-order work.
        one_run(certpilot, pebble, state, ["warmup.bench.test"], tmp)
        figures = {"pebble_env": dict(PEBBLE_ENV, PEBBLE_VA_NOSLEEP="1"),
                   "sizes": [measure(certpilot, pebble, state, size, args.runs, tmp)
                             for size in SIZES]}

    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    sizes = figures["sizes"]
    heads = " | ".join("%d name%s" % (s["names"], "s" * (s["names"] > 1)) for s in sizes)
    print("| figure | %s |" % heads)
    print("| --- |%s" % (" --- |" * len(sizes)))
    for key in ("runs", "wall_s_median", "wall_s_min", "wall_s_max", "cpu_s_median",
                "cpu_s_wait4_median", "peak_rss_kb_median", "peak_rss_kb_max",
                "requests_certpilot_median", "requests_certpilot_min", "requests_certpilot_max",
                "requests_pebble_median", "protocol_floor", "requests_minus_floor_median"):
        print("| %s | %s |" % (key, " | ".join(str(s[key]) for s in sizes)))
    print("\nPeak RSS measured by: %s.\n" % sizes[0]["peak_rss_method"])
    print("Requests Pebble logged in the last run, by endpoint:\n")
    endpoints = sorted(set().union(*(s["endpoints_last_run"] for s in sizes)))
    print("| request | %s |" % heads)
    print("| --- |%s" % (" --- |" * len(sizes)))
    for e in endpoints:
        print("| %s | %s |" % (e, " | ".join(str(s["endpoints_last_run"].get(e, 0))
                                           for s in sizes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
