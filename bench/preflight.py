#!/usr/bin/python3
"""Benchmark: the wall time the CAA preflight adds to `certpilot issue`.

A scriptable responder (tests/lab/responder.py) stands in for the recursive
resolver and delays every answer by a fixed time (default 20 ms, NOERROR and
no records for every name, so each CAA look-up climbs to the TLD).  A lab
Pebble (PEBBLE_WFE_NONCEREJECT=0) is the CA; an account is registered once
beforehand, since a dry run never registers one.  For 1, 10 and 100
identifiers of 4 labels each (hNNN.svcK.example.test, under --parents
shared parents), the same command

    certpilot issue --dry-run -v --ca-identity pebble.test --resolver R
        --standalone --http-port P -d ... --server ... --ca-bundle ...
        --state-dir ...

is run with the preflight (the default, enforce) and with
--caa-preflight=off, alternately, --runs times each.  A dry run fetches the
directory, looks the account up, runs the preflight and the solver checks,
and sends no newOrder.  Reported, not asserted, for each size:

- the preflight's own wall time T, DNS query count Q and round trips W, from
  certpilot's -v line `certpilot: CAA preflight: <N> identifiers, <Q> DNS
  queries, <W> round trips, <T> ms` (T may have decimals; median, min, max of
  T), and T divided by one round trip (the answer delay).  W is certpilot's
  structural count (a query sent after answers came back starts a new wave),
  T / delay the timed one.  The goal is one round trip whatever
  the number of identifiers: every name of every climb sent at once;
- the distinct names those climbs cover (each identifier and its
  ancestors down to the TLD, the root excluded) and the queries the
  responder received during a run (its stats counter; 0 expected with off);
- the whole dry run's wall time with and without the preflight (medians),
  and the added wall time = median(with) - median(off), also in round
  trips;
- CPU time of certpilot (user + system, RUSAGE_CHILDREN deltas) and its
  peak RSS through GNU time (/usr/bin/time -f %M, certpilot alone; see
  bench/issue.py), with and without the preflight;
- ACME requests certpilot logged with -v (`certpilot: POST <url> -> ...`)
  and whether any was a newOrder (/order-plz), which a dry run must not send.

    /usr/bin/python3 bench/preflight.py [--certpilot PATH] [--delay-ms 20]
        [--parents 4] [--runs 5] [--json]

Prints Markdown tables; --json prints the figures as JSON.
"""

import argparse
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
sys.path.insert(0, HERE)
from cplab import Lab  # noqa: E402
from caa_batch import start_responder, stats  # noqa: E402  (the slow resolver)

SIZES = (1, 10, 100)
CA_IDENTITY = "pebble.test"
PEBBLE_ENV = {"PEBBLE_WFE_NONCEREJECT": "0"}
# Round trips are absent from the line of certpilot before issue 17 (for paired runs).
PREFLIGHT_LINE = re.compile(r"^certpilot: CAA preflight: (\d+) identifiers?, "
                            r"(\d+) DNS quer(?:y|ies), (?:(\d+) round trips?, )?"
                            r"(\d+(?:\.\d+)?) ms\s*$")
REQUEST_LINE = re.compile(r"^certpilot: (GET|HEAD|POST) (\S+) -> ")
GNU_TIME = "/usr/bin/time"  # its %M is the child's own peak RSS (see bench/issue.py)


# --- identifiers ------------------------------------------------------------

def identifiers(n, parents):
    """n names of 4 labels, spread over min(n, parents) shared parents."""
    return ["h%03d.svc%d.example.test" % (i, i % parents) for i in range(n)]


def distinct_names(idents):
    """Every name a CAA climb visits: each identifier and its ancestors, root excluded."""
    names = set()
    for ident in idents:
        labels = ident.split(".")
        names.update(".".join(labels[i:]) for i in range(len(labels)))
    return len(names)


# --- one run ----------------------------------------------------------------

def common_args(pebble, state):
    return ["--server", pebble.directory_url, "--ca-bundle", pebble.ca_bundle,
            "--state-dir", state]


def one_run(certpilot, pebble, server, state, idents, preflight, tmp):
    """One dry run; returns a dict of figures."""
    argv = [certpilot, "issue", "--dry-run", "-v", "--ca-identity", CA_IDENTITY,
            "--resolver", server, "--standalone", "--http-port", str(pebble.http_port)]
    if not preflight:
        argv.append("--caa-preflight=off")
    argv += sum((["-d", n] for n in idents), []) + common_args(pebble, state)
    rss_path = os.path.join(tmp, "maxrss")
    before = stats(server)["total"]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run([GNU_TIME, "-f", "%M", "-o", rss_path] + argv,
                          capture_output=True, text=True)
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    at_resolver = stats(server)["total"] - before
    if proc.returncode != 0:
        raise RuntimeError("certpilot issue --dry-run (%s, %d identifiers) exited %d:\n%s" % (
            "preflight" if preflight else "off", len(idents), proc.returncode, proc.stderr))
    with open(rss_path) as f:
        maxrss = int(f.read().split()[-1])
    lines = proc.stderr.splitlines()
    mentions = [line for line in lines if "CAA preflight" in line]
    parsed = [PREFLIGHT_LINE.match(line) for line in mentions]
    parsed = [m for m in parsed if m]
    requests = [m.group(1) + " " + m.group(2) for m in map(REQUEST_LINE.match, lines) if m]
    return {
        "wall_s": wall,
        "cpu_s": (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
        "maxrss_kb": maxrss,
        "at_resolver": at_resolver,
        # (identifiers, queries, ms, round trips) of the -v line, None when it is
        # missing or differs
        "line": ((int(parsed[0].group(1)), int(parsed[0].group(2)), float(parsed[0].group(4)),
                  int(parsed[0].group(3)) if parsed[0].group(3) else None)
                 if len(parsed) == 1 else None),
        "mentions": mentions,
        "acme_requests": len(requests),
        "order_plz": sum("/order-plz" in r for r in requests),
    }


def measure(certpilot, pebble, server, state, size, parents, runs, delay_ms, tmp):
    idents = identifiers(size, parents)
    rtt_ms = float(delay_ms)
    with_, off = [], []
    for run in range(runs):
        # Alternate which mode goes first, so that drift hits both alike.
        for preflight in ((True, False) if run % 2 == 0 else (False, True)):
            r = one_run(certpilot, pebble, server, state, idents, preflight, tmp)
            (with_ if preflight else off).append(r)

    lines = [r["line"] for r in with_ if r["line"]]
    t_ms = [line[2] for line in lines]
    wall_with = statistics.median(r["wall_s"] for r in with_)
    wall_off = statistics.median(r["wall_s"] for r in off)
    added_ms = (wall_with - wall_off) * 1000

    def med(values, digits=1):
        values = list(values)
        return round(statistics.median(values), digits) if values else None

    def span(values):
        values = sorted(set(values))
        return values[0] if len(values) == 1 else "%s-%s" % (values[0], values[-1])

    return {
        "identifiers": size,
        "parents": min(size, parents),
        "distinct_names": distinct_names(idents),
        "runs": runs,
        "preflight_line_runs": "%d/%d" % (len(lines), runs),
        "identifiers_reported": span(line[0] for line in lines) if lines else None,
        "queries_certpilot": span(line[1] for line in lines) if lines else None,
        "queries_at_resolver": span(r["at_resolver"] for r in with_),
        "queries_at_resolver_off": span(r["at_resolver"] for r in off),
        "preflight_ms_median": med(t_ms),
        "preflight_ms_min": round(min(t_ms), 1) if t_ms else None,
        "preflight_ms_max": round(max(t_ms), 1) if t_ms else None,
        "preflight_round_trips": med((t / rtt_ms for t in t_ms), 2),
        # certpilot's structural count: waves of queries, each sent after answers came back
        "preflight_dns_waves": (span(line[3] for line in lines)
                                if lines and lines[0][3] is not None else None),
        "wall_ms_median_with": round(wall_with * 1000, 1),
        "wall_ms_median_off": round(wall_off * 1000, 1),
        "wall_ms_min_with": round(min(r["wall_s"] for r in with_) * 1000, 1),
        "wall_ms_max_with": round(max(r["wall_s"] for r in with_) * 1000, 1),
        "wall_ms_min_off": round(min(r["wall_s"] for r in off) * 1000, 1),
        "wall_ms_max_off": round(max(r["wall_s"] for r in off) * 1000, 1),
        "added_wall_ms": round(added_ms, 1),
        "added_round_trips": round(added_ms / rtt_ms, 2),
        "sequential_estimate_ms": (round(max(line[1] for line in lines) * rtt_ms)
                                   if lines else None),
        "cpu_ms_median_with": med(r["cpu_s"] * 1000 for r in with_),
        "cpu_ms_median_off": med(r["cpu_s"] * 1000 for r in off),
        "peak_rss_kb_with": max(r["maxrss_kb"] for r in with_),
        "peak_rss_kb_off": max(r["maxrss_kb"] for r in off),
        "acme_requests_with": span(r["acme_requests"] for r in with_),
        "acme_requests_off": span(r["acme_requests"] for r in off),
        "order_plz_sent": sum(r["order_plz"] for r in with_ + off),
        # stderr lines that mention the preflight, from the last run of each mode
        "preflight_mentions_with": with_[-1]["mentions"],
        "preflight_mentions_off": off[-1]["mentions"],
    }


TABLE_KEYS = (
    "runs", "parents", "distinct_names", "preflight_line_runs", "identifiers_reported",
    "queries_certpilot", "queries_at_resolver", "queries_at_resolver_off",
    "preflight_ms_median", "preflight_ms_min", "preflight_ms_max", "preflight_round_trips",
    "preflight_dns_waves",
    "wall_ms_median_with", "wall_ms_median_off", "wall_ms_min_with", "wall_ms_max_with",
    "wall_ms_min_off", "wall_ms_max_off", "added_wall_ms", "added_round_trips",
    "sequential_estimate_ms", "cpu_ms_median_with", "cpu_ms_median_off",
    "peak_rss_kb_with", "peak_rss_kb_off", "acme_requests_with", "acme_requests_off",
    "order_plz_sent")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--certpilot", default=os.environ.get(
        "CERTPILOT", os.path.join(HERE, "..", "build", "certpilot")))
    ap.add_argument("--delay-ms", type=int, default=20)
    ap.add_argument("--parents", type=int, default=4,
                    help="shared parents svcK.example.test of the identifiers (default 4)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    certpilot = os.path.abspath(args.certpilot)

    with Lab() as lab, tempfile.TemporaryDirectory(prefix="cpbench-") as tmp:
        lab.start()
        pebble = lab.pebble(env=PEBBLE_ENV)
        proc, server = start_responder(tmp, args.delay_ms)
        try:
            state = os.path.join(tmp, "state")
            subprocess.run([certpilot, "account", "register", "--agree-tos"] +
                           common_args(pebble, state), check=True, capture_output=True)
            # Unmeasured: page cache, Pebble's first requests, the responder's first answers.
            for preflight in (True, False):
                one_run(certpilot, pebble, server, state, identifiers(1, 1), preflight, tmp)
            sizes = [measure(certpilot, pebble, server, state, size, args.parents, args.runs,
                             args.delay_ms, tmp) for size in SIZES]
        finally:
            proc.terminate()
            proc.wait(5)
    figures = {"answer_delay_ms": args.delay_ms, "labels_per_identifier": 4,
               "ca_identity": CA_IDENTITY, "pebble_env": dict(PEBBLE_ENV, PEBBLE_VA_NOSLEEP="1"),
               "sizes": sizes}

    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print("Answer delay %d ms (one round trip); identifiers of 4 labels.\n" % args.delay_ms)
    heads = " | ".join("%d identifier%s" % (s["identifiers"], "s" * (s["identifiers"] > 1))
                       for s in sizes)
    print("| figure | %s |" % heads)
    print("| --- |%s" % (" --- |" * len(sizes)))
    for key in TABLE_KEYS:
        print("| %s | %s |" % (key, " | ".join(str(s[key]) for s in sizes)))
    odd = [s for s in sizes if s["preflight_line_runs"] != "%d/%d" % (s["runs"], s["runs"])
           or s["preflight_mentions_off"]]
    if odd:
        print("\nstderr lines mentioning the preflight (last run; with | off):\n")
        for s in odd:
            print("- %d identifiers: %s | %s" % (s["identifiers"],
                                                json.dumps(s["preflight_mentions_with"]),
                                                json.dumps(s["preflight_mentions_off"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
