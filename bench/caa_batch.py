#!/usr/bin/python3
"""Benchmark: CAA check of many identifiers against a slow resolver.

A scriptable responder stands in for the recursive resolver and delays every
answer by a fixed time (default 20 ms, NOERROR and no records for every
name).  certpilot checks N identifiers of 4 labels each (default 100) in one
`caa check` run.  Reported, not asserted: wall time (median of the runs),
queries sent (certpilot's count and the responder's), certpilot's own count
of round trips (`round_trips` of its JSON: waves of queries, a query sent
after answers came back starting a new one), the wall time divided by one
round trip, and the same net of process start-up: (median wall of 100 -
median wall of 1) / round trip + 1, since one identifier costs one round
trip.  A checker that waits for each answer before sending the next needs one
round trip per query; certpilot sends every name in one wave.

With --serial-ms N the responder is a slow single-threaded resolver instead:
one answer at a time, N ms each, UDP queries dropped while --backlog B
already wait (0: never).  Then the figures also count the identifiers whose
verdict came out as a DNS error (every name has an answer, so each is wrong).

    /usr/bin/python3 bench/caa_batch.py [--identifiers 100] [--delay-ms 20] [--runs 5]
                                        [--serial-ms N [--backlog B]] [--timeout S]
                                        [--certpilot PATH]

Prints a Markdown table; --json prints the figures as JSON.
"""

import argparse
import json
import resource
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lab"))
from cplab import RESPONDER, dns_query, free_port  # noqa: E402


def stats(server):
    reply = dns_query(server, "stats.responder.invalid", "TXT")
    pairs = (b"".join(rr.rdata.data).decode().split("=") for rr in reply.rr)
    return {key: int(value) for key, value in pairs}


def start_responder(tmp, delay_ms, serial_ms=0, backlog=0):
    port = free_port()
    server = "127.0.0.1:%d" % port
    config = os.path.join(tmp, "responder.json")
    doc = {"zones": {}, "default": {"rules": {"*": {"delay_ms": delay_ms}}}}
    if serial_ms:
        doc["serial"] = {"service_ms": serial_ms, "backlog": backlog}
    with open(config, "w") as f:
        json.dump(doc, f)
    log = open(os.path.join(tmp, "responder.log"), "w")
    proc = subprocess.Popen([sys.executable, RESPONDER, "--config", config, "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        try:
            stats(server)
            return proc, server
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("responder did not start; see " + log.name)
            time.sleep(0.05)


GNU_TIME = "/usr/bin/time"  # its %M is the child's own peak RSS (see bench/issue.py)


def one_run(certpilot, server, idents, rss_file, timeout_s=30):
    before = stats(server)["total"]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    argv = [certpilot, "caa", "check", "--json", "--resolver", server, "--timeout",
            str(timeout_s)]
    proc = subprocess.run([GNU_TIME, "-f", "%M", "-o", rss_file] + argv + idents,
                          capture_output=True, text=True)
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if proc.returncode not in (0, 1, 2):
        raise RuntimeError("certpilot failed: %s" % proc.stderr)
    doc = json.loads(proc.stdout)
    statuses = {r["status"] for r in doc["results"]}
    errors = sum(r["status"] == "error" for r in doc["results"])
    with open(rss_file) as f:
        maxrss = int(f.read().split()[-1])
    return (wall, doc["queries"], stats(server)["total"] - before, statuses, cpu, maxrss, errors,
            doc.get("round_trips"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--certpilot", default=os.path.join(HERE, "..", "build", "certpilot"))
    ap.add_argument("--identifiers", type=int, default=100)
    ap.add_argument("--delay-ms", type=int, default=20)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--serial-ms", type=int, default=0,
                    help="slow single-threaded resolver: ms per answer, one at a time")
    ap.add_argument("--backlog", type=int, default=0,
                    help="with --serial-ms: queries waiting beyond which UDP ones are dropped")
    ap.add_argument("--timeout", type=int, default=30, help="certpilot's --timeout (s)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    idents = ["www.site%d.bench.test" % i for i in range(args.identifiers)]
    rtt = args.delay_ms / 1000.0
    with tempfile.TemporaryDirectory(prefix="cpbench-") as tmp:
        proc, server = start_responder(tmp, args.delay_ms, args.serial_ms, args.backlog)
        try:
            # The same binary on one identifier: process start-up plus one round.
            rss = os.path.join(tmp, "maxrss")
            # Alternate the sizes, so that drift in the machine's load hits both alike.
            single, runs = [], []
            for _ in range(args.runs):
                single.append(one_run(args.certpilot, server, idents[:1], rss, args.timeout)[0])
                runs.append(one_run(args.certpilot, server, idents, rss, args.timeout))
        finally:
            proc.terminate()
            proc.wait(5)

    wall = statistics.median(r[0] for r in runs)
    figures = {
        "identifiers": args.identifiers,
        "labels_per_identifier": 4,
        "answer_delay_ms": args.delay_ms,
        "timeout_s": args.timeout,
        "serial_ms": args.serial_ms,
        "backlog": args.backlog,
        "runs": args.runs,
        "wall_s_median": round(wall, 4),
        "wall_s_min": round(min(r[0] for r in runs), 4),
        "wall_s_max": round(max(r[0] for r in runs), 4),
        "one_identifier_wall_s_median": round(statistics.median(single), 4),
        "certpilot_cpu_s_median": round(statistics.median(r[4] for r in runs), 4),
        "certpilot_peak_rss_kb": max(r[5] for r in runs),
        "queries_certpilot": runs[0][1],
        "queries_at_resolver": runs[0][2],
        "round_trips": round(wall / rtt, 2) if rtt else None,
        "round_trips_net_of_start": (round((wall - statistics.median(single)) / rtt + 1, 2)
                                     if rtt else None),
        "round_trips_certpilot": sorted({r[7] for r in runs}, key=str),
        "sequential_estimate_s": round(runs[0][1] * (rtt or args.serial_ms / 1000.0), 2),
        "statuses": sorted(runs[0][3]),
        "error_identifiers_per_run": [r[6] for r in runs],
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print("| figure | value |\n| --- | --- |")
    for key in ("identifiers", "answer_delay_ms", "serial_ms", "backlog", "runs",
                "wall_s_median", "wall_s_min",
                "wall_s_max", "one_identifier_wall_s_median", "certpilot_cpu_s_median",
                "certpilot_peak_rss_kb", "queries_certpilot",
                "queries_at_resolver", "round_trips", "round_trips_net_of_start",
                "round_trips_certpilot", "sequential_estimate_s",
                "error_identifiers_per_run"):
        print("| %s | %s |" % (key, figures[key]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
