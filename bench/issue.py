#!/usr/bin/python3
"""Benchmark: one `certpilot issue` of 1 name and of 10 names against Pebble,
paired with uacme and lego on the same lab when they are installed.

A lab Pebble (PEBBLE_VA_NOSLEEP=1, PEBBLE_WFE_NONCEREJECT=0,
PEBBLE_AUTHZREUSE=0: validations start at once, no nonce is rejected, no
authorization is reused) validates http-01 against certpilot's built-in
server (--standalone).  The account is registered once beforehand, so the
figures are those of the issuance.  Each measured run orders fresh names.
Reported, not asserted, for each size:

- wall time of the certpilot process (median, min, max of the runs);
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
- the protocol floor of an issuance: a nonce + newOrder + per name (authorization
  GET + challenge POST + one authorization poll) + finalize + one order
  poll + certificate download = 5 + 3 x names, and certpilot's count minus
  that floor.

Paired runs (--clients certpilot,uacme,lego): in each round every client
issues for its own fresh names, one after the other, and the medians of
wall, CPU and peak RSS are reported per client and size.  The others are set
up as their packages ship them: uacme (Debian's `uacme`) answers http-01
through a hook script that writes the key authorization into a directory
this process serves on the lab's http-01 port (uacme has no server of its
own), and, having no CA bundle option, runs in a private mount namespace
where the system bundle is Pebble's (unshare -m + a bind mount; the exec
chain keeps one process, so GNU time still measures uacme alone); lego
(Debian's `lego`) uses its own http-01 server and LEGO_CA_CERTIFICATES.
All use a P-256 key for the certificate and an account registered
beforehand.  Measure a Release build of certpilot (--certpilot
build-rel/certpilot); a sanitizer build is several times slower.

    /usr/bin/python3 bench/issue.py [--certpilot PATH] [--runs 5] [--json]
                                    [--clients certpilot,uacme,lego]

Prints Markdown tables; --json prints the figures as JSON.  Recorded figures,
and where certpilot's start-up CPU and memory go: bench/README.md.
"""

import argparse
import collections
import json
import os
import re
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

# cplab's Pebble always sets PEBBLE_VA_NOSLEEP=1 (and refuses it in env).
PEBBLE_ENV = {"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
REQUEST_LINE = re.compile(r" (GET|HEAD|POST) (\S+) -> calling handler\(\)")
SIZES = (1, 10)


def floor(names):
    """Fewest requests of an issuance, as certpilot counts them (the first nonce on)."""
    return 1 + 1 + 3 * names + 1 + 1 + 1


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


def run_measured(argv, tmp, env=None):
    """Run argv to its end: (exit status, stdout, stderr, wall, cpu, maxrss kB, how)."""
    out_path, err_path = os.path.join(tmp, "out"), os.path.join(tmp, "err")
    rss_path = os.path.join(tmp, "maxrss")
    if os.access(GNU_TIME, os.X_OK):
        argv = [GNU_TIME, "-f", "%M", "-o", rss_path] + argv
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out_path, "w") as out, open(err_path, "w") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        # wait4: this one process's own rusage (RUSAGE_CHILDREN's maxrss is
        # the maximum over every child ever waited for).
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out_path) as f:
        stdout = f.read()
    with open(err_path) as f:
        stderr = f.read()
    if os.access(GNU_TIME, os.X_OK):
        with open(rss_path) as f:
            words = f.read().split()
        maxrss, how = int(words[-1]) if words else 0, "GNU time %M (the client alone)"
    else:
        maxrss, how = ru.ru_maxrss, "wait4 (upper bound: includes Python's RSS)"
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return code, stdout, stderr, wall, cpu, maxrss, how


def one_run(certpilot, pebble, state, names, tmp):
    """One measured issuance; returns a dict of figures."""
    argv = [certpilot, "issue", "--json", "--standalone", "--http-port",
            str(pebble.http_port)] + sum((["-d", n] for n in names), []) + \
        common_args(pebble, state)
    offset = log_size(pebble)
    code, stdout, stderr, wall, cpu, maxrss, how = run_measured(argv, tmp)
    if code != 0:
        raise RuntimeError("certpilot issue exited %d: %s" % (code, stderr))
    doc = json.loads(stdout)
    at_pebble = log_requests(pebble, offset)
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "maxrss_kb": maxrss,
        "rss_method": how,
        "requests_certpilot": doc["requests"],
        "requests_pebble": sum(at_pebble.values()),
        "endpoints": dict(sorted(at_pebble.items())),
    }


# ------------------------------------------------------------- other clients

UACME_HOOK = r"""#!/bin/sh
# uacme hook: METHOD TYPE IDENT TOKEN AUTH; only http-01, into $WEBROOT.
[ "$2" = http-01 ] || exit 1
case "$1" in
begin) printf '%s' "$5" >"$WEBROOT/$4" ;;
done|failed) rm -f "$WEBROOT/$4" ;;
esac
"""


class Webroot:
    """A plain HTTP server for uacme's challenge files on the http-01 port."""

    def __init__(self, port, root):
        import functools
        import http.server
        import threading

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def translate_path(self, path):
                return os.path.join(root, os.path.basename(path.split("?")[0]))

        self.server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", port), functools.partial(Quiet, directory=root))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Uacme:
    name = "uacme"

    def __init__(self, pebble, tmp):
        self.pebble, self.tmp = pebble, tmp
        self.conf = os.path.join(tmp, "uacme")
        self.webroot = os.path.join(tmp, "uacme-webroot")
        os.makedirs(self.webroot)
        self.hook = os.path.join(tmp, "uacme-hook.sh")
        with open(self.hook, "w") as f:
            f.write(UACME_HOOK)
        os.chmod(self.hook, 0o755)
        # The system bundle as uacme's libcurl reads it: Pebble's CA in it.
        self.bundle = os.path.join(tmp, "uacme-ca.pem")
        with open(self.bundle, "w") as f, open(pebble.ca_bundle) as ca:
            f.write(ca.read())
        self.server = None

    def argv(self, *args):
        inner = ["uacme", "-a", self.pebble.directory_url, "-c", self.conf, "-t", "EC",
                 "-b", "256", "-h", self.hook, "-y"] + list(args)
        script = 'mount --bind "$1" /etc/ssl/certs/ca-certificates.crt && shift && exec "$@"'
        return ["unshare", "-m", "sh", "-c", script, "sh", self.bundle] + inner

    def env(self):
        return dict(os.environ, WEBROOT=self.webroot)

    def setup(self):
        code, _, err, *_ = run_measured(self.argv("new"), self.tmp, self.env())
        if code != 0:
            raise RuntimeError("uacme new exited %d: %s" % (code, err))

    def before(self):
        # Only while uacme runs: the others bind the same port.
        self.server = Webroot(self.pebble.http_port, self.webroot)

    def after(self):
        self.server.close()
        self.server = None

    def issue_argv(self, names):
        return self.argv("issue", *names)

    def teardown(self):
        if self.server is not None:
            self.after()


class Lego:
    name = "lego"

    def __init__(self, pebble, tmp):
        self.pebble, self.tmp = pebble, tmp
        self.path = os.path.join(tmp, "lego")

    def base(self):
        return ["lego", "--server", self.pebble.directory_url, "--accept-tos",
                "--email", "bench@example.test", "--path", self.path, "--key-type", "ec256",
                "--http", "--http.port", "127.0.0.1:%d" % self.pebble.http_port]

    def env(self):
        return dict(os.environ, LEGO_CA_CERTIFICATES=self.pebble.ca_bundle)

    def setup(self):
        # The account is registered by the first (unmeasured) run.
        code, _, err, *_ = run_measured(self.issue_argv(["lego-warmup.bench.test"]), self.tmp,
                                        self.env())
        if code != 0:
            raise RuntimeError("lego run exited %d: %s" % (code, err))

    def issue_argv(self, names):
        return self.base() + sum((["--domains", n] for n in names), []) + ["run"]

    def before(self):
        pass

    def after(self):
        pass

    def teardown(self):
        pass


def other_run(client, pebble, names, tmp):
    offset = log_size(pebble)
    client.before()
    try:
        code, _, err, wall, cpu, maxrss, how = run_measured(client.issue_argv(names), tmp,
                                                            client.env())
    finally:
        client.after()
    if code != 0:
        raise RuntimeError("%s exited %d: %s" % (client.name, code, err[-2000:]))
    at_pebble = log_requests(pebble, offset)
    return {"wall_s": wall, "cpu_s": cpu, "maxrss_kb": maxrss, "rss_method": how,
            "requests_pebble": sum(at_pebble.values())}


def summary(results):
    return {
        "runs": len(results),
        "wall_s_median": round(statistics.median(r["wall_s"] for r in results), 4),
        "cpu_s_median": round(statistics.median(r["cpu_s"] for r in results), 4),
        "peak_rss_kb_median": int(statistics.median(r["maxrss_kb"] for r in results)),
        "requests_pebble_median": statistics.median(r["requests_pebble"] for r in results),
    }


def measure(certpilot, others, pebble, state, size, runs, tmp):
    results = []
    paired = {c.name: [] for c in others}
    for run in range(runs):
        names = ["n%d.r%d.s%d.bench.test" % (i, run, size) for i in range(size)]
        results.append(one_run(certpilot, pebble, state, names, tmp))
        for c in others:  # the same round, fresh names of its own
            own = ["%s.%s" % (c.name, n) for n in names]
            paired[c.name].append(other_run(c, pebble, own, tmp))
    walls = [r["wall_s"] for r in results]
    req = [r["requests_certpilot"] for r in results]
    return {
        "names": size,
        "runs": runs,
        "wall_s_median": round(statistics.median(walls), 4),
        "wall_s_min": round(min(walls), 4),
        "wall_s_max": round(max(walls), 4),
        "cpu_s_median": round(statistics.median(r["cpu_s"] for r in results), 4),
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
        "paired": {"certpilot": summary(results),
                   **{name: summary(rs) for name, rs in paired.items()}},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--certpilot", default=os.environ.get(
        "CERTPILOT", os.path.join(HERE, "..", "build", "certpilot")))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--clients", default="certpilot,uacme,lego",
                    help="certpilot and any of uacme, lego (those not installed are skipped)")
    args = ap.parse_args()
    certpilot = os.path.abspath(args.certpilot)
    wanted = [c for c in args.clients.split(",") if c in ("uacme", "lego")]
    wanted = [c for c in wanted if shutil.which(c) is not None]

    with Lab() as lab, tempfile.TemporaryDirectory(prefix="cpbench-") as tmp:
        # Pebble needs no DNS from the lab: pebble-challtestsrv answers its look-ups.
        pebble = lab.pebble(env=PEBBLE_ENV)
        state = os.path.join(tmp, "state")
        subprocess.run([certpilot, "account", "register", "--agree-tos"] +
                       common_args(pebble, state), check=True, capture_output=True)
        # One unmeasured issuance: page cache, Pebble's first-order work.
        one_run(certpilot, pebble, state, ["warmup.bench.test"], tmp)
        others = [{"uacme": Uacme, "lego": Lego}[c](pebble, tmp) for c in wanted]
        try:
            for c in others:
                c.setup()
            figures = {"pebble_env": dict(PEBBLE_ENV, PEBBLE_VA_NOSLEEP="1"),
                       "sizes": [measure(certpilot, others, pebble, state, size, args.runs,
                                         tmp) for size in SIZES]}
        finally:
            for c in others:
                c.teardown()

    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    sizes = figures["sizes"]
    heads = " | ".join("%d name%s" % (s["names"], "s" * (s["names"] > 1)) for s in sizes)
    print("| figure | %s |" % heads)
    print("| --- |%s" % (" --- |" * len(sizes)))
    for key in ("runs", "wall_s_median", "wall_s_min", "wall_s_max", "cpu_s_median",
                "peak_rss_kb_median", "peak_rss_kb_max",
                "requests_certpilot_median", "requests_certpilot_min", "requests_certpilot_max",
                "requests_pebble_median", "protocol_floor", "requests_minus_floor_median"):
        print("| %s | %s |" % (key, " | ".join(str(s[key]) for s in sizes)))
    print("\nPeak RSS measured by: %s.\n" % sizes[0]["peak_rss_method"])
    print("Paired runs, medians (wall s / CPU s / peak RSS MiB / requests at Pebble):\n")
    clients = list(sizes[0]["paired"])
    print("| client | %s |" % heads)
    print("| --- |%s" % (" --- |" * len(sizes)))
    for c in clients:
        cells = []
        for s in sizes:
            p = s["paired"][c]
            cells.append("%.3f / %.3f / %.1f / %g" % (p["wall_s_median"], p["cpu_s_median"],
                                                       p["peak_rss_kb_median"] / 1024.0,
                                                       p["requests_pebble_median"]))
        print("| %s | %s |" % (c, " | ".join(cells)))
    print()
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
