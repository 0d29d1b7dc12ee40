#!/usr/bin/python3
"""The certpilot test lab: real DNS servers and a real ACME CA on loopback.

A Lab runs, each as a foreground child process in a fresh temp dir:

- knotd, authoritative for every zone given with Lab.zone(), plus the root
  zone "." and the TLD "test." (CAA checks climb to the TLD).  Each zone
  gets SOA, NS ns.<zone> and ns.<zone> A 127.0.0.1, and its parent zone in
  the lab gets an NS delegation with glue.  dnssec=True zones are signed
  at load (ECDSA P-256); every zone accepts dynamic updates signed with
  the lab's TSIG key (Lab.tsig, Lab.update()).
- responder.py (only if a zone is declared with Lab.misbehaving_zone()):
  a scriptable server that answers SERVFAIL, NOTIMP, drops, truncates or
  delays on purpose.
- zones with several nameservers (Lab.zone(servers=[...])): each server
  on its own loopback address (127.0.0.2, 127.0.0.3, ...), all on one port,
  Lab.auth_port, which is also knotd's port on 127.0.0.1.  A server is
  knotd, a responder serving the zone's data but misbehaving for some
  query types, a responder serving other data (servers that disagree), or
  a lame one (not authoritative for the zone); see Lab.zone().
- unbound, a validating recursive resolver with a stub zone for every lab
  zone, pointing to knotd or to the responder, or to every address of a
  zone with several nameservers.  A stub for "." points to
  knotd's root zone, so names outside test. get NXDOMAIN from the lab and
  nothing is ever sent off the machine.  Signed zones get their real DS as
  a trust anchor (answers carry AD); dnssec="broken" zones get a wrong DS
  (SERVFAIL, while the same query with CD=1 returns the records).  The
  cache keeps nothing longer than 1 s; Lab.flush() empties it.  Unbound
  adds Extended DNS Errors (RFC 8914) to its answers (ede: yes), with a
  text for DNSSEC failures not served from its cache.
- on request, Pebble and pebble-challtestsrv (Lab.pebble()).

Example::

    with Lab() as lab:
        lab.zone("example.test", '''
            @      CAA 0 issue "letsencrypt.org"
            www    CNAME web.hosting.test.
        ''')
        lab.zone("signed.test", '@ CAA 0 issue "letsencrypt.org"', dnssec=True)
        lab.misbehaving_zone("notimp.test", caa="notimp")
        lab.zone("multi.test", '@ CAA 0 issue "letsencrypt.org"',
                 servers=["knot", "knot", responder(caa="servfail"), "lame"])
        lab.start()
        print(lab.query("example.test", "CAA"))      # through unbound
        print(lab.nameservers("multi.test"))  # [("ns1.multi.test", "127.0.0.2"), ...]
        print(lab.query("multi.test", "CAA", server="127.0.0.4:%d" % lab.auth_port))

Every port is a free one picked at run time; all traffic stays on
loopback (127.0.0.0/8).  Leaving the with block, close(), SIGTERM/SIGINT of the test
process, or its exit stop every process by PID and remove the temp dir;
with CPLAB_KEEP=1 in the environment the dir (logs, configs, zone files)
is kept and its path printed.  Children also get SIGTERM from the kernel
if the test process dies without cleaning up (PR_SET_PDEATHSIG).

Needs Debian's /usr/bin/python3 (python3-dnslib).  `cplab.py selfcheck`
starts a small lab and prints what it answers, for humans debugging.
"""

import atexit
import base64
import ctypes
import errno
import json
import os
import random
import secrets
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request

from dnslib import DNSRecord, EDNS0, QTYPE, RCODE

HERE = os.path.dirname(os.path.abspath(__file__))
RESPONDER = os.path.join(HERE, "responder.py")
SOA_TIMERS = "1 3600 900 604800 60"
# Children see only this environment (plus what a caller adds): no proxy
# variables, nothing that could send traffic elsewhere.
BASE_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


# --- DNS helpers ----------------------------------------------------------

def split_addr(addr):
    """"127.0.0.1:5300" -> ("127.0.0.1", 5300)."""
    host, _, port = addr.rpartition(":")
    return host, int(port)


def dns_query(server, name, qtype="CAA", cd=False, rd=True, dnssec_ok=False, tcp=False,
              timeout=3.0):
    """Send one query to server ("IP:PORT") and return the reply as a DNSRecord.

    The AD bit is set in the query, as dig does, so that a validating
    resolver reports AD in its reply.  Raises TimeoutError (socket.timeout)
    when no reply with the query's ID arrives within timeout seconds.
    """
    query = DNSRecord.question(name, qtype)
    query.header.rd = int(rd)
    query.header.ad = 1
    query.header.cd = int(cd)
    if dnssec_ok:
        query.add_ar(EDNS0(flags="do", udp_len=1232))
    wire = query.pack()
    deadline = time.monotonic() + timeout
    if tcp:
        with socket.create_connection(split_addr(server), timeout=timeout) as sock:
            sock.sendall(struct.pack("!H", len(wire)) + wire)
            length = struct.unpack("!H", _recv_exactly(sock, 2))[0]
            return DNSRecord.parse(_recv_exactly(sock, length))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(split_addr(server))
        sock.send(wire)
        while True:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            data = sock.recv(65535)
            if data[:2] == wire[:2]:
                return DNSRecord.parse(data)


def _recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def fqdn(name):
    """Lower-case absolute form: "Example.Test" -> "example.test.", "." -> "."."""
    name = name.lower().rstrip(".")
    return name + "." if name else "."


# --- ports and processes --------------------------------------------------

_ports_given = set()


def _ephemeral_range():
    """The kernel's range for the local ports of outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def _candidate_ports():
    """Ports to try, in a random order, outside the ephemeral range.

    A port the kernel hands out for bind(0) lies in the ephemeral range,
    where any outgoing connection of any process (Pebble's validation
    requests, etcd's peer links, curl) may take it as its local port
    before the server picked for it is started: that made a lab's http-01
    port "already in use" for minutes.  Ports below (or above) the range
    are never given to outgoing connections; the random start keeps
    parallel test processes apart.
    """
    low, high = _ephemeral_range()
    spans = [(r0, r1) for r0, r1 in ((10000, low - 1), (high + 1, 65535)) if r1 - r0 >= 1000]
    ports = [p for r0, r1 in spans for p in range(r0, r1 + 1)]
    start = random.randrange(len(ports)) if ports else 0
    return ports[start:] + ports[:start]


def _bindable(host, port, udp):
    kinds = (socket.SOCK_STREAM, socket.SOCK_DGRAM) if udp else (socket.SOCK_STREAM,)
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def free_port(udp=True, every_address=False):
    """A port free on 127.0.0.1 for TCP and, if udp, for UDP too.

    every_address: free on every IPv4 address (bound as 0.0.0.0) and, if
    the host has IPv6, on ::1 too (so that an NS address ::1 on that port
    reaches nothing unless a test puts a server there), for servers that
    listen on several loopback addresses.  Never returns the same port
    twice in one test process, so that ports picked for different servers
    cannot collide before they are bound.  The port is outside the
    kernel's ephemeral range (see _candidate_ports), or, on a machine
    whose range leaves no room, one the kernel picks.
    """
    host = "0.0.0.0" if every_address else "127.0.0.1"
    for port in _candidate_ports():
        if port in _ports_given or not _bindable(host, port, udp):
            continue
        if every_address and not _free_on_ipv6(port, udp):
            continue
        _ports_given.add(port)
        return port
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp_sock:
            tcp_sock.bind((host, 0))
            port = tcp_sock.getsockname()[1]
        if port in _ports_given or (udp and not _bindable(host, port, True)):
            continue
        if every_address and not _free_on_ipv6(port, udp):
            continue
        _ports_given.add(port)
        return port


def ipv6_loopback():
    """Can a socket be bound to ::1 here (for tests that skip without it)?"""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def _free_on_ipv6(port, udp):
    """False if something is bound to port on IPv6; True if free or no IPv6."""
    kinds = (socket.SOCK_STREAM, socket.SOCK_DGRAM) if udp else (socket.SOCK_STREAM,)
    for kind in kinds:
        try:
            sock = socket.socket(socket.AF_INET6, kind)
        except OSError:
            return True  # no IPv6 here
        with sock:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(("::", port))
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    return False
                return True  # e.g. IPv6 disabled
    return True


_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _child_setup():
    """Runs in the child before exec: die with the test process."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _accepts(port):
    """True if something accepts TCP connections on 127.0.0.1:port."""
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


def _stop(proc, timeout=5.0):
    """SIGTERM, wait, then SIGKILL: one process, by PID."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until(what, ready, proc=None, log=None, timeout=15.0):
    """Poll ready() until true; fail early if proc dies, with its log tail."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except (OSError, ValueError):
            pass
        dead = proc is not None and proc.poll() is not None
        if dead or time.monotonic() > deadline:
            tail = ""
            if log and os.path.exists(log):
                with open(log, errors="replace") as f:
                    tail = "".join(f.readlines()[-20:])
            state = "exited with %s" % proc.returncode if dead else "not ready in %gs" % timeout
            raise RuntimeError("%s %s; log %s:\n%s" % (what, state, log, tail))
        time.sleep(0.05)


_open_labs = set()


def _close_open_labs():
    for lab in list(_open_labs):
        lab.close()


def _on_signal(signum, frame):
    _close_open_labs()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def _install_signal_handlers():
    """Clean up on SIGTERM/SIGINT, unless the program has its own handlers."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, default in ((signal.SIGTERM, signal.SIG_DFL),
                         (signal.SIGINT, signal.default_int_handler)):
        if signal.getsignal(sig) is default:
            signal.signal(sig, _on_signal)


atexit.register(_close_open_labs)


# --- the lab ---------------------------------------------------------------

SERVER_KINDS = ("knot", "lame", "dead")


def responder(text=None, rules=None, aa=True, **rules_by_type):
    """A nameserver for Lab.zone(servers=[...]): a responder on its own address.

    It serves the zone's own records (text=None) or other ones (text, as
    for Lab.zone(): servers that disagree), with the lab's SOA, NS and
    glue added either way.  rules and rules_by_type as for
    Lab.misbehaving_zone(): responder(caa="servfail"),
    responder(caa="drop"), responder(rules={"*": {"delay_ms": 300}}).
    aa=False answers without the AA bit (a lame server that answers from
    a cache).  Returns a plain dict; the spec is checked by Lab.zone().
    """
    all_rules = dict(rules or {})
    all_rules.update({qtype.upper(): rule for qtype, rule in rules_by_type.items()})
    return {"kind": "responder", "text": text, "rules": all_rules, "aa": bool(aa)}


class Lab:
    """Knot + responder + Unbound (+ Pebble) in one temp dir; see the module doc.

    Declare zones, then start(); use as a context manager or call close().
    After start(): resolver, knot and responder are "127.0.0.1:PORT"
    strings (responder is None without misbehaving zones); auth_port is
    the port of every authoritative server: knot's (on 127.0.0.1) and
    that of each nameserver of a zone declared with servers=.  tsig is
    (key name, algorithm, base64 secret) for dynamic updates to knot.

    unbound_options: more lines for unbound's server: clause, e.g.
    ["outbound-msg-retry: 1"], for tests that need other timing.
    """

    def __init__(self, keep=None, unbound_options=()):
        self.keep = os.environ.get("CPLAB_KEEP") == "1" if keep is None else keep
        self.unbound_options = list(unbound_options)
        self.dir = tempfile.mkdtemp(prefix="cplab-")
        self.resolver = self.knot = self.responder = self.auth_port = None
        self.tsig = ("cplab-update.", "hmac-sha256",
                     base64.b64encode(secrets.token_bytes(32)).decode())
        self.trust_anchors = {}  # zone -> DS record text given to unbound
        self._zones = {".": ("", False), "test.": ("", False)}  # knotd's: name -> (text, dnssec)
        self._misbehaving = {}  # the responder's: name -> zone config
        self._serial = None  # the responder's "serial" section, see serial_responder()
        self._ns = {}  # zones declared with servers=: name -> [(NS name, address, spec)]
        self._addresses = 0  # loopback addresses given out: 127.0.0.2, .3, ...
        self._declared = set()
        self._procs = []  # (name, Popen), in start order
        self._servers = []  # in-process servers (ARI proxies): .stop()
        self._pebble_cert = None
        _open_labs.add(self)
        _install_signal_handlers()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def pids(self):
        """PIDs of every process this lab started (running or not)."""
        return [proc.pid for _, proc in self._procs]

    # -- declaring zones

    def zone(self, name, text="", dnssec=False, servers=None):
        """Serve zone `name` from knotd with the records in `text`.

        text is zone-file syntax, owner names relative to the zone (it is
        dedented; "@" is the apex).  The lab adds SOA, NS and the NS's
        address.  "test." exists already (without CAA) and may be given
        records this way too.  dnssec: False, True (signed; unbound trusts its real
        DS), or "broken" (signed; unbound gets a wrong DS).

        servers: None for one nameserver, ns.<zone> at 127.0.0.1 (knotd).
        Or a list, one entry per nameserver: ns1.<zone>, ns2.<zone>, ... in
        that order, each on the next free loopback address (127.0.0.2,
        127.0.0.3, ... in order of declaration across the lab), all on
        port auth_port, with NS records and A glue in the zone and in its
        parent.  An entry is
          "knot"        knotd, listening on that address too;
          responder(…)  a responder process on that address: the zone's
                        records (or others) with rules, see responder();
          "lame"        a responder that serves no zone: REFUSED to
                        everything, like a server that has forgotten the
                        zone (responder(aa=False) is the other lame kind);
          "dead"        nothing listens on that address: queries to it
                        get ICMP port unreachable (a server that is down).
        knotd serves the zone on 127.0.0.1 in any case (not listed in NS).
        Unbound gets a stub zone listing every address, so it spreads its
        queries over them and retries others after a failure, as a
        resolver following the delegation does (it cannot follow a
        delegation to servers off port 53).  Responders know nothing of
        child zones: ask them only about names of their own zone.

        Returns the nameservers, [(NS name, address)], as nameservers().

            lab.zone("multi.test", '@ CAA 0 issue "letsencrypt.org"',
                     servers=["knot", "knot", responder(caa="servfail")])
        """
        if dnssec not in (False, True, "broken"):
            raise ValueError("dnssec must be False, True or 'broken'")
        if servers is not None:
            servers = list(servers)
            if not servers:
                raise ValueError("servers: give at least one nameserver")
            for spec in servers:
                if not (spec in SERVER_KINDS
                        or isinstance(spec, dict) and spec.get("kind") == "responder"):
                    raise ValueError("servers: %r is not one of %s or responder(...)"
                                     % (spec, ", ".join(map(repr, SERVER_KINDS))))
        origin = self._declare(name)
        self._zones[origin] = (textwrap.dedent(text), dnssec)
        if servers is not None:
            self._ns[origin] = [("ns%d.%s" % (i, origin), self._next_address(), spec)
                                for i, spec in enumerate(servers, 1)]
        return self.nameservers(origin)

    def nameservers(self, zone):
        """[(NS name, IPv4 address)] of a lab zone, in the order declared.

        Names without the final dot: [("ns1.multi.test", "127.0.0.2"), ...].
        Every one listens on port auth_port (zones without servers= and
        misbehaving zones: ns.<zone> at 127.0.0.1).
        """
        origin = fqdn(zone)
        if origin not in self._zones and origin not in self._misbehaving:
            raise KeyError("no lab zone %s" % origin)
        return [(ns.rstrip(".") or ".", address) for ns, address, _ in self._ns_of(origin)]

    def _ns_of(self, origin):
        """[(absolute NS name, address, spec)] of a zone; ns.<zone> if none given."""
        if origin in self._ns:
            return self._ns[origin]
        return [("ns." + origin.lstrip("."), "127.0.0.1", "knot")]

    def _next_address(self):
        self._addresses += 1
        if self._addresses > 253:
            raise ValueError("more than 253 nameservers in one lab")
        return "127.0.0.%d" % (self._addresses + 1)

    def misbehaving_zone(self, name, text="", rules=None, **rules_by_type):
        """Serve zone `name` from the responder, misbehaving as told.

        text: records as for zone().  rules: responder rules by query type
        ({"CAA": "servfail", "*": {"delay_ms": 500}}, see responder.py);
        keyword arguments add rules by lower-case type: caa="notimp".
        The name may be "test" (a misbehaving TLD), not ".".
        """
        origin = self._declare(name)
        ns = "ns." + origin
        records = ["@ SOA %s hostmaster.%s %s" % (ns, origin, SOA_TIMERS),
                   "@ NS " + ns, ns + " A 127.0.0.1"]
        records += [line for line in textwrap.dedent(text).splitlines() if line.strip()]
        all_rules = dict(rules or {})
        all_rules.update({qtype.upper(): rule for qtype, rule in rules_by_type.items()})
        self._misbehaving[origin] = {"records": records, "rules": all_rules}

    def serial_responder(self, service_ms, backlog=0):
        """Make the misbehaving zones' responder a slow single-threaded server.

        It answers one query at a time, service_ms each, in arrival order;
        UDP queries arriving while `backlog` already wait are dropped (0: no
        bound).  See "serial" in responder.py; responder_stats() then also
        reports backlog_dropped and backlog_max.
        """
        if self.resolver is not None:
            raise RuntimeError("configure the responder before start()")
        self._serial = {"service_ms": int(service_ms), "backlog": int(backlog)}

    def _declare(self, name):
        """Check that a zone may be declared; return its absolute name."""
        if self.resolver is not None:
            raise RuntimeError("declare zones before start()")
        origin = fqdn(name)
        if origin == ".":
            raise ValueError("the root zone is the lab's own")
        if origin in self._declared:
            raise ValueError("zone %s declared twice" % origin)
        self._declared.add(origin)
        self._zones.pop(origin, None)  # "test." leaves knotd if it misbehaves
        return origin

    # -- starting

    def start(self):
        """Start knotd, the responder (if needed) and unbound; wait until each answers."""
        if self.resolver is not None:
            raise RuntimeError("lab already started")
        self._start_knot()
        if self._misbehaving:
            self._start_responder()
        self._start_nameservers()
        self._start_unbound()
        return self

    def _parent(self, origin):
        """The closest lab zone strictly above origin."""
        above = [z for z in list(self._zones) + list(self._misbehaving)
                 if z != origin and (z == "." or origin.endswith("." + z))]
        return max(above, key=len)

    def _ns_records(self, origin):
        """The apex records a server of the zone holds: SOA, NS and their A (owners absolute)."""
        nameservers = self._ns_of(origin)
        lines = ["%s SOA %s hostmaster.%s %s" % (origin, nameservers[0][0], origin.lstrip("."),
                                                 SOA_TIMERS)]
        lines += ["%s NS %s" % (origin, ns) for ns, _, _ in nameservers]
        lines += ["%s A %s" % (ns, address) for ns, address, _ in nameservers]
        return lines

    def _zone_file(self, origin, text):
        lines = ["$ORIGIN " + origin, "$TTL 60"] + self._ns_records(origin) + [text]
        for child in list(self._zones) + list(self._misbehaving):
            if child != "." and self._parent(child) == origin:
                lines += ["; delegation"] + self._ns_records(child)[1:]
        return "\n".join(lines) + "\n"

    def _start_knot(self):
        base = os.path.join(self.dir, "knot")
        zones_dir = os.path.join(base, "zones")
        os.makedirs(zones_dir)
        port = self.auth_port = free_port(every_address=True)
        self.knot = "127.0.0.1:%d" % port
        addresses = ["127.0.0.1"] + [address for servers in self._ns.values()
                                     for _, address, spec in servers if spec == "knot"]
        key_name, algorithm, secret = self.tsig
        conf = [
            "server:",
            "    rundir: \"%s\"" % base,
            "    listen: [ %s ]" % ", ".join("%s@%d" % (a, port) for a in addresses),
            "    udp-workers: 1",
            "    tcp-workers: 1",
            "    background-workers: 1",
            "database:",
            "    storage: \"%s\"" % base,
            "control:",
            "    listen: \"%s/knot.sock\"" % base,
            "log:",
            "  - target: stderr",
            "    any: info",
            "key:",
            "  - id: %s" % key_name,
            "    algorithm: %s" % algorithm,
            "    secret: %s" % secret,
            "acl:",
            "  - id: lab-update",
            "    address: 127.0.0.1",
            "    key: %s" % key_name,
            "    action: update",
            "keystore:",
            "  - id: lab-keys",
            "    config: \"%s/keys\"" % base,
            "policy:",
            "  - id: lab-ecdsa",
            "    keystore: lab-keys",
            "    algorithm: ecdsap256sha256",
            "template:",
            "  - id: default",
            "    storage: \"%s\"" % zones_dir,
            "    zonefile-sync: -1",  # never rewrite the zone files given
            "    acl: lab-update",
            "zone:",
        ]
        for i, (origin, (text, dnssec)) in enumerate(sorted(self._zones.items())):
            filename = "%02d-%s.zone" % (i, origin.strip(".") or "root")
            with open(os.path.join(zones_dir, filename), "w") as f:
                f.write(self._zone_file(origin, text))
            conf += ["  - domain: \"%s\"" % origin, "    file: \"%s\"" % filename]
            if dnssec:
                conf += ["    dnssec-signing: on", "    dnssec-policy: lab-ecdsa"]
        self._knot_conf = os.path.join(base, "knot.conf")
        with open(self._knot_conf, "w") as f:
            f.write("\n".join(conf) + "\n")
        check = subprocess.run(["knotc", "-c", self._knot_conf, "zone-check"], env=BASE_ENV,
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError("knotc zone-check: %s%s" % (check.stdout, check.stderr))
        proc, log = self._spawn("knotd", ["knotd", "-c", self._knot_conf])

        def zone_ready(origin, signed):
            reply = dns_query(self.knot, origin, "SOA", rd=False, dnssec_ok=signed, timeout=0.5)
            types = {rr.rtype for rr in reply.rr}
            return (reply.header.rcode == RCODE.NOERROR and reply.header.aa
                    and QTYPE.SOA in types and (not signed or QTYPE.RRSIG in types))

        for origin, (_, dnssec) in self._zones.items():
            _wait_until("knotd zone %s" % origin, lambda: zone_ready(origin, bool(dnssec)),
                        proc, log)
            if dnssec:
                self.trust_anchors[origin] = self._trust_anchor(origin, dnssec == "broken")

    def _trust_anchor(self, origin, broken):
        """The zone's SHA-256 DS as keymgr prints it; with a wrong digest if broken."""
        out = subprocess.run(["keymgr", "-c", self._knot_conf, origin, "ds"], env=BASE_ENV,
                             check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            fields = line.split()  # owner DS keytag algorithm digest-type digest
            if len(fields) == 6 and fields[1] == "DS" and fields[4] == "2":
                if broken:
                    last = fields[5][-1]
                    fields[5] = fields[5][:-1] + ("0" if last != "0" else "1")
                return " ".join(fields)
        raise RuntimeError("no SHA-256 DS from keymgr for %s:\n%s" % (origin, out))

    def _start_responder(self):
        port = free_port()
        self.responder = "127.0.0.1:%d" % port
        config = os.path.join(self.dir, "responder.json")
        with open(config, "w") as f:
            config_doc = {"zones": self._misbehaving}
            if self._serial is not None:
                config_doc["serial"] = self._serial
            json.dump(config_doc, f, indent=2)
        proc, log = self._spawn("responder", [sys.executable, RESPONDER,
                                              "--config", config, "--port", str(port)])
        _wait_until("responder", lambda: dns_query(
            self.responder, "stats.responder.invalid", "TXT", timeout=0.5), proc, log)

    def _start_nameservers(self):
        """One responder process per responder(...) or "lame" nameserver."""
        started = []
        for origin, servers in sorted(self._ns.items()):
            text = self._zones[origin][0]
            for ns, address, spec in servers:
                if spec in ("knot", "dead"):
                    continue
                zones = {}
                if spec != "lame":
                    own = text if spec["text"] is None else textwrap.dedent(spec["text"])
                    records = self._ns_records(origin)
                    records += [line for line in own.splitlines() if line.strip()]
                    zones[origin] = {"records": records, "rules": spec["rules"],
                                     "aa": spec["aa"]}
                name = "responder-%s" % address
                config = os.path.join(self.dir, name + ".json")
                with open(config, "w") as f:
                    json.dump({"zones": zones}, f, indent=2)
                proc, log = self._spawn(name, [sys.executable, RESPONDER, "--config", config,
                                               "--address", address,
                                               "--port", str(self.auth_port)])
                started.append((name, "%s:%d" % (address, self.auth_port), proc, log))
        for name, server, proc, log in started:  # started all at once, then waited for
            _wait_until(name, lambda: dns_query(
                server, "stats.responder.invalid", "TXT", timeout=0.5), proc, log)

    def _start_unbound(self):
        base = os.path.join(self.dir, "unbound")
        os.makedirs(base)
        port = free_port()
        self.resolver = "127.0.0.1:%d" % port
        conf = [
            "server:",
            "    interface: 127.0.0.1@%d" % port,
            "    port: %d" % port,
            "    do-ip6: no",
            "    access-control: 127.0.0.0/8 allow",
            "    username: \"\"",
            "    chroot: \"\"",
            "    directory: \"%s\"" % base,
            "    pidfile: \"%s/unbound.pid\"" % base,
            "    logfile: \"\"",
            "    use-syslog: no",
            "    verbosity: 1",
            "    val-log-level: 2",  # with ede: a DNSSEC failure's EDE gets a text
            "    ede: yes",  # RFC 8914 Extended DNS Errors in answers, as the CA's resolver
            "    log-servfail: yes",
            "    num-threads: 1",
            "    so-reuseport: no",
            "    discard-timeout: 0",  # else replies slower than 1.9 s are dropped
            "    wait-limit: 0",  # no cap on queries waiting per client (benchmarks)
            # certpilot sends a batch's CAA queries in one wave (up to 512, issue
            # 17).  Unbound's defaults take that: ratelimit and ip-ratelimit are
            # off (0), num-queries-per-thread is 1024 (libevent build), outgoing-
            # range 4096.  What can drop is the socket: the default receive
            # buffer (net.core.rmem_default, ~208 KiB) holds about 200 queries
            # when unbound is not scheduled while the burst arrives (2 busy
            # cores).  4 MiB (unbound runs as root here: SO_RCVBUFFORCE) keeps
            # the structural counts of the tests exact.
            "    so-rcvbuf: 4m",
            "    cache-max-ttl: 1",
            "    cache-max-negative-ttl: 1",
            "    trust-anchor-signaling: no",
            "    do-not-query-localhost: no",
            "    local-zone: \"test.\" nodefault",
            "    domain-insecure: \"test.\"",
        ]
        conf += ["    " + option for option in self.unbound_options]
        conf += ["    trust-anchor: \"%s\"" % ds for ds in self.trust_anchors.values()]
        conf += ["remote-control:",
                 "    control-enable: yes",
                 "    control-interface: \"%s/control.sock\"" % base,
                 "    control-use-cert: no"]
        stubs = [(z, [self.knot]) for z in self._zones if z not in self._ns] + \
                [(z, [self.responder]) for z in self._misbehaving] + \
                [(z, ["%s:%d" % (address, self.auth_port) for _, address, _ in servers])
                 for z, servers in self._ns.items()]
        for origin, servers in sorted(stubs):
            conf += ["stub-zone:", "    name: \"%s\"" % origin]
            conf += ["    stub-addr: %s" % server.replace(":", "@") for server in servers]
        self._unbound_conf = os.path.join(base, "unbound.conf")
        with open(self._unbound_conf, "w") as f:
            f.write("\n".join(conf) + "\n")
        check = subprocess.run(["unbound-checkconf", self._unbound_conf], env=BASE_ENV,
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError("unbound-checkconf: %s%s" % (check.stdout, check.stderr))
        proc, log = self._spawn("unbound", ["unbound", "-d", "-c", self._unbound_conf])
        _wait_until("unbound", lambda: dns_query(
            self.resolver, ".", "SOA", timeout=0.5).header.rcode == RCODE.NOERROR,
            proc, log)

    def _spawn(self, name, argv, env=None):
        """Start a foreground child, stdout+stderr to DIR/<name>.log."""
        log = os.path.join(self.dir, name + ".log")
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=env or BASE_ENV,
                                    cwd=self.dir, start_new_session=True,
                                    preexec_fn=_child_setup)
        self._procs.append((name, proc))
        return proc, log

    # -- using

    def query(self, name, qtype="CAA", server=None, cd=False, tcp=False, timeout=3.0):
        """Ask the resolver (or server, "IP:PORT") name/qtype; see dns_query()."""
        return dns_query(server or self.resolver, name, qtype, cd=cd, tcp=tcp, timeout=timeout)

    def responder_stats(self, server=None):
        """The responder's query counters: {"total": N, "udp": N, "tcp": N, "type:CAA": N, ...}.

        server: another responder, "IP:PORT" or a nameserver's IP (port
        auth_port); default the misbehaving zones' responder.
        """
        if server is not None and ":" not in server:
            server = "%s:%d" % (server, self.auth_port)
        reply = dns_query(server or self.responder, "stats.responder.invalid", "TXT")
        pairs = (b"".join(rr.rdata.data).decode().split("=") for rr in reply.rr)
        return {key: int(value) for key, value in pairs}

    def resolver_queries(self):
        """Queries unbound received from clients since it started (total.num.queries)."""
        proc = subprocess.run(["unbound-control", "-c", self._unbound_conf, "stats_noreset"],
                              env=BASE_ENV, check=True, capture_output=True, text=True)
        for line in proc.stdout.splitlines():
            key, _, value = line.partition("=")
            if key == "total.num.queries":
                return int(value)
        raise RuntimeError("unbound-control stats_noreset: no total.num.queries")

    def flush(self):
        """Empty unbound's caches: records, DNSSEC keys, and what it learnt of servers."""
        for command in (["flush_zone", "."], ["flush_infra", "all"]):
            subprocess.run(["unbound-control", "-c", self._unbound_conf] + command,
                           env=BASE_ENV, check=True, capture_output=True)

    def update(self, zone, *commands):
        """Send one TSIG-signed dynamic update to knotd.

        commands are knsupdate lines, e.g. 'add www.example.test. 60 CAA 0 issue ";"'
        or 'del example.test. CAA'.  Follow with flush() to see the change
        through the resolver at once.
        """
        key_name, algorithm, secret = self.tsig
        host, port = split_addr(self.knot)
        script = ["server %s %d" % (host, port), "zone " + fqdn(zone)]
        script += ["update " + c for c in commands] + ["send", "answer"]
        result = subprocess.run(["knsupdate", "-y", "%s:%s:%s" % (algorithm, key_name, secret)],
                                input="\n".join(script) + "\n", env=BASE_ENV,
                                capture_output=True, text=True)
        if result.returncode != 0 or "NOERROR" not in result.stdout:
            raise RuntimeError("update of %s failed: %s%s" % (zone, result.stdout, result.stderr))

    def pebble(self, http_port=None, tls_port=None, dns_server=None, env=None, eab_keys=None,
               validity=None, ari=False, profiles=None, persist_issuer=None):
        """Start Pebble and pebble-challtestsrv; return a Pebble (see there)."""
        return Pebble(self, http_port, tls_port, dns_server, env, eab_keys, validity, ari,
                      profiles, persist_issuer)

    # -- stopping

    def close(self):
        """Stop every process (last started first) and remove the temp dir."""
        if self not in _open_labs:
            return
        while self._servers:
            self._servers.pop().stop()
        while self._procs:
            _, proc = self._procs.pop()
            _stop(proc)
        _open_labs.discard(self)
        if self.dir and os.path.isdir(self.dir):
            if self.keep:
                print("cplab: kept %s" % self.dir, file=sys.stderr)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)


class Pebble:
    """Pebble (a test ACME CA) and pebble-challtestsrv, started for a Lab.

    Pebble serves TLS with a self-signed P-256 certificate for localhost
    and 127.0.0.1, made here with openssl; clients trust it through
    ca_bundle.  Pebble validates challenges on http_port (http-01) and
    tls_port (tls-alpn-01), which the client under test binds; they are
    picked free unless given.  It resolves names through dns_server,
    by default challtestsrv's DNS, which answers every A query with
    127.0.0.1 (IPv6 answers disabled).  Its environment is PEBBLE_VA_NOSLEEP=1
    plus env; Pebble's other defaults stay (it rejects 5 % of nonces as
    badNonce and reuses authorizations half the time: set
    PEBBLE_WFE_NONCEREJECT / PEBBLE_AUTHZREUSE to change that).

    eab_keys ({key id: base64url HMAC key}) makes Pebble require External
    Account Binding with those keys.

    validity (seconds) sets Pebble's certificateValidityPeriod: short-lived
    certificates for renewal tests (notAfter - notBefore = validity - 1 s).

    CPLAB_PEBBLE_AUTHZREUSE in the test's environment overrides
    PEBBLE_AUTHZREUSE for every Pebble (100: reuse whenever possible), to
    check that no test depends on Pebble's draw; see tests/lab/README.md.

    ari=True puts an ARI proxy in front (tests/lab/ari_proxy.py): use
    ari_directory_url as the client's server; it adds renewalInfo to the
    directory, answers it with set_renewal_window(), records the cert IDs
    asked for (ari_requests()) and the newOrder payloads (ari_new_orders()),
    and passes everything else to Pebble.  Accounts made through
    directory_url are not known through ari_directory_url (other kid).
    The proxy can also refuse nonces on a fixed pattern (reject_nonces()).

    profiles (True for Let's Encrypt's three, or {name: description}) and
    persist_issuer (an issuer domain name, e.g. "letsencrypt.org") also put
    the proxy in front (ari_directory_url), which then advertises those
    profiles, refuses others with invalidProfile and echoes the profile in
    orders; or offers dns-persist-01 in place of dns-01, checking the
    records itself in the lab's DNS (the resolver) before Pebble, started
    with PEBBLE_VA_ALWAYS_VALID=1, marks the challenge valid (every other
    challenge of that Pebble is then valid unchecked).  See
    tests/lab/ari_proxy.py; persist_checks() lists the proxy's decisions.

    Attributes: directory_url, management_url, ca_bundle, log (Pebble's
    stdout: request lines like "POST /order-plz"), challtestsrv_url,
    http_port, tls_port, dns_server, ari_directory_url (None without ari).
    """

    LE_PROFILES = {
        "classic": "The profile of old: 90-day certificates (64 from 2027, 45 from 2028)",
        "tlsserver": "45-day certificates for TLS servers, no client authentication",
        "shortlived": "About 6-day certificates; IP addresses allowed",
    }

    def __init__(self, lab, http_port=None, tls_port=None, dns_server=None, env=None,
                 eab_keys=None, validity=None, ari=False, profiles=None, persist_issuer=None):
        self.lab = lab
        self.http_port = http_port or free_port(udp=False)
        self.tls_port = tls_port or free_port(udp=False)
        challtest_dns = free_port()
        challtest_mgmt = free_port(udp=False)
        listen, mgmt = free_port(udp=False), free_port(udp=False)
        self.dns_server = dns_server or "127.0.0.1:%d" % challtest_dns
        self.directory_url = "https://127.0.0.1:%d/dir" % listen
        self.management_url = "https://127.0.0.1:%d" % mgmt
        self.challtestsrv_url = "http://127.0.0.1:%d" % challtest_mgmt
        self.ca_bundle, key = self._certificate()
        self.ari_directory_url = None
        self._ari = None

        proc, log = lab._spawn("challtestsrv-%d" % challtest_mgmt, [
            "pebble-challtestsrv", "-management", "127.0.0.1:%d" % challtest_mgmt,
            "-dns01", "127.0.0.1:%d" % challtest_dns, "-defaultIPv4", "127.0.0.1",
            "-defaultIPv6", "", "-http01", "", "-https01", "", "-tlsalpn01", ""])
        _wait_until("pebble-challtestsrv", lambda: _accepts(challtest_mgmt), proc, log)

        config = os.path.join(lab.dir, "pebble-%d.json" % listen)
        extra = {} if validity is None else {"certificateValidityPeriod": int(validity)}
        with open(config, "w") as f:
            json.dump({"pebble": dict({
                "listenAddress": "127.0.0.1:%d" % listen,
                "managementListenAddress": "127.0.0.1:%d" % mgmt,
                "certificate": self.ca_bundle,
                "privateKey": key,
                "httpPort": self.http_port,
                "tlsPort": self.tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": bool(eab_keys),
                "externalAccountMACKeys": dict(eab_keys or {}),
            }, **extra)}, f, indent=2)
        pebble_env = dict(BASE_ENV, PEBBLE_VA_NOSLEEP="1")
        pebble_env.update(env or {})
        if persist_issuer is not None:
            if lab.resolver is None:
                raise RuntimeError("persist_issuer needs a started lab (its resolver)")
            pebble_env["PEBBLE_VA_ALWAYS_VALID"] = "1"  # the proxy validates dns-persist-01
        if profiles is True:
            profiles = self.LE_PROFILES
        ari = ari or profiles is not None or persist_issuer is not None
        if os.environ.get("CPLAB_PEBBLE_AUTHZREUSE"):
            # Overrides what the test chose, for every Pebble: 100 makes Pebble
            # reuse every valid authorization it can, as it does by chance
            # about 1 time in 100 even with PEBBLE_AUTHZREUSE=0 (README.md).
            pebble_env["PEBBLE_AUTHZREUSE"] = os.environ["CPLAB_PEBBLE_AUTHZREUSE"]
        proc, self.log = lab._spawn("pebble-%d" % listen, [
            "pebble", "-config", config, "-dnsserver", self.dns_server], env=pebble_env)
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),  # never through a proxy from the environment
            urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=self.ca_bundle)))
        _wait_until("pebble", lambda: "newOrder" in self.directory(), proc, self.log)
        if ari:
            from ari_proxy import AriProxy  # only tests of renewal need it
            port = free_port(udp=False)
            self._ari = AriProxy(self.directory_url, self.ca_bundle, self.ca_bundle, key, port,
                                 log_path=os.path.join(lab.dir, "ari-proxy-%d.log" % port),
                                 profiles=profiles, persist_issuer=persist_issuer,
                                 dns_server=lab.resolver)
            lab._servers.append(self._ari)
            self._ari.start()
            self.ari_directory_url = self._ari.directory_url

    def _certificate(self):
        """Pebble's TLS certificate and key, made once per lab."""
        if self.lab._pebble_cert is None:
            cert = os.path.join(self.lab.dir, "pebble-cert.pem")
            key = os.path.join(self.lab.dir, "pebble-key.pem")
            subprocess.run([
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-days", "7", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-keyout", key, "-out", cert], env=BASE_ENV, check=True, capture_output=True)
            self.lab._pebble_cert = (cert, key)
        return self.lab._pebble_cert

    def _get(self, url):
        with self._opener.open(url, timeout=5) as response:
            return response.read().decode()

    def directory(self):
        """The ACME directory, as a dict."""
        return json.loads(self._get(self.directory_url))

    def root(self):
        """PEM of the root that signs Pebble's certificates (/roots/0)."""
        return self._get(self.management_url + "/roots/0")

    # -- the ARI proxy (ari=True)

    def _proxy(self):
        if self._ari is None:
            raise RuntimeError("this Pebble was started without ari=True")
        return self._ari

    def set_renewal_window(self, start, end, cert_id=None, retry_after=None,
                           explanation_url=None):
        """Serve this window for cert_id (None: for every cert without its own).

        start, end: Unix seconds or datetime (a str is served verbatim, to
        test bad timestamps).  retry_after: Retry-After header value (int or
        str), None for no header.  explanation_url: None for no member.
        """
        self._proxy().set_window(start, end, cert_id, retry_after, explanation_url)

    def clear_renewal_windows(self):
        """Forget every window: renewalInfo answers 404 again."""
        self._proxy().clear_windows()

    def ari_requests(self):
        """Cert IDs asked for at renewalInfo, in order."""
        return self._proxy().requests()

    def ari_exchanges(self):
        """Every request the proxy answered, in order (ari_proxy.AriProxy.exchanges)."""
        return self._proxy().exchanges()

    def ari_new_orders(self):
        """Decoded JWS payloads of the newOrder requests (dicts), in order."""
        return self._proxy().new_orders()

    def rate_limit_orders(self, retry_after):
        """Answer every newOrder with 429 rateLimited and Retry-After: retry_after
        (delay-seconds or an HTTP date, as a str); None forwards again."""
        self._proxy().rate_limit_orders(retry_after)

    def break_protocol(self, token=None, nonce=None, foreign_urls=False, identifier=None):
        """Through the ARI proxy: every challenge token, and/or every Replay-Nonce,
        replaced by these values (None restores Pebble's); identifier: every
        authorization shown for this {"type", "value"}; foreign_urls: orders
        name their authorizations at Pebble's own origin."""
        self._proxy().break_protocol(token, nonce, foreign_urls, identifier)

    def refuse_replaces(self, problem_type="alreadyReplaced"):
        """Answer newOrders carrying "replaces" with this problem instead of
        forwarding them: "alreadyReplaced" (409), "malformed" or "unauthorized"
        (400, detail naming the field); None forwards again."""
        self._proxy().refuse_replaces(problem_type)

    def reject_nonces(self, every):
        """Answer the next POST through the proxy and every `every`-th one after
        it with badNonce (a fresh nonce in Replay-Nonce) instead of forwarding
        it; 0 stops.  Deterministic,
        unlike PEBBLE_WFE_NONCEREJECT: with every=2 each signed request of a
        client that retries at once is refused exactly once."""
        self._proxy().reject_nonces(every)

    def rejected_nonces(self):
        """How many POSTs the proxy has answered with badNonce (reject_nonces())."""
        return self._proxy().rejected_nonces()

    def set_persist_issuers(self, names):
        """issuerDomainNames of dns-persist-01 challenges from now on (default
        [persist_issuer]); records naming any of them are accepted."""
        self._proxy().set_persist_issuers(names)

    def persist_checks(self):
        """The proxy's dns-persist-01 decisions, in order: {"name", "wildcard",
        "account", "reason"} with reason None when a record authorized."""
        return self._proxy().persist_checks()


# --- selfcheck -------------------------------------------------------------

def selfcheck(hold=False):
    """Start a small lab, print what it answers; with hold, wait for Ctrl-C."""
    with Lab() as lab:
        lab.zone("example.test", '''
            @    CAA 0 issue "letsencrypt.org"
            www  CNAME web.hosting.test.
        ''')
        lab.zone("hosting.test", 'web CAA 0 issuewild "pki.goog"')
        lab.zone("signed.test", '@ CAA 0 issue "letsencrypt.org"', dnssec=True)
        lab.zone("bogus.test", '@ CAA 0 issue "letsencrypt.org"', dnssec="broken")
        lab.misbehaving_zone("notimp.test", caa="notimp")
        t0 = time.monotonic()
        lab.start()
        t1 = time.monotonic()
        pebble = lab.pebble()
        t2 = time.monotonic()
        print("temp dir   %s" % lab.dir)
        print("resolver   %s   (unbound, validating)" % lab.resolver)
        print("knot       %s" % lab.knot)
        print("responder  %s" % lab.responder)
        print("tsig       %s %s %s" % lab.tsig)
        print("pebble     %s  (CA bundle %s)" % (pebble.directory_url, pebble.ca_bundle))
        print("started: DNS %.2fs, pebble %.2fs" % (t1 - t0, t2 - t1))
        for name, cd in (("example.test", False), ("www.example.test", False),
                         ("signed.test", False), ("bogus.test", False), ("bogus.test", True),
                         ("notimp.test", False), ("test", False)):
            reply = lab.query(name, "CAA", cd=cd)
            flags = " ".join(f for f in ("aa", "ad", "cd") if getattr(reply.header, f))
            print("\n;; %s CAA%s: %s [%s]" % (name, " +cd" if cd else "",
                                            RCODE.get(reply.header.rcode), flags))
            for rr in reply.rr:
                print("   %s" % rr.toZone())
        if hold:
            port = split_addr(lab.resolver)[1]
            print("\nrunning; dig @127.0.0.1 -p %d ... ; Ctrl-C stops" % port)
            signal.pause()


if __name__ == "__main__":
    if sys.argv[1:2] != ["selfcheck"] or sys.argv[2:] not in ([], ["--hold"]):
        sys.exit("usage: %s selfcheck [--hold]" % sys.argv[0])
    try:
        selfcheck(hold=sys.argv[2:] == ["--hold"])
    except KeyboardInterrupt:
        pass  # the lab is already stopped
