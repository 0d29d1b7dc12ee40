#!/usr/bin/python3
"""A scriptable DNS server for the lab: it misbehaves on purpose.

Knot answers the way a correct authoritative server does; this responder
answers the way broken ones do in the field (SERVFAIL or NOTIMP for CAA,
firewalls that drop unknown types, truncation, slow servers), so that
certpilot's CAA preflight can be tested against each failure.

Run it as::

    /usr/bin/python3 responder.py --config FILE.json --port N

It listens on 127.0.0.1 (or --address, another loopback address such as
127.0.0.3), UDP and TCP on the same port, until SIGTERM or SIGINT.  The
config is JSON::

    {
      "zones": {
        "notimp.test.": {
          "records": ["@ 60 IN SOA ns hostmaster 1 3600 900 604800 60",
                      "@ CAA 0 issue \\"letsencrypt.org\\""],
          "rules": {"CAA": "notimp", "TXT": {"delay_ms": 300}}
        }
      },
      "default": {"rules": {"*": {"delay_ms": 20}}}
    }

records: presentation-format RRs, owner names relative to the zone (``@``
is the apex), default TTL 60.  Names in a zone are answered
authoritatively (AA): the RRset of the asked type, else a CNAME at the name
(followed inside the zone), else NOERROR/empty with the SOA in authority,
or NXDOMAIN with the SOA when nothing exists at or below the name.
A zone may say ``"aa": false``: the same answers without the AA bit, the
way a lame server (a cache or a forwarder listed as a nameserver) answers.

rules: by query type name, or "*" for any other type.  A rule is an action
name, or an object {"action": NAME, "delay_ms": N}; {"delay_ms": N} alone
means a normal answer sent N ms late (the other queries are not held up).
Actions: "answer" (the default), "servfail", "notimp", "refused",
"formerr" (that RCODE, no records), "drop" (no reply at all), "truncate"
(over UDP an empty reply with TC=1; over TCP the full answer), "tcpfail"
(over UDP an empty reply with TC=1; over TCP the connection is closed
without a reply, like a server or firewall that blocks DNS over TCP).
Any answer larger than 65535 octets, which TCP's length prefix cannot
frame, goes out as an empty reply with TC=1 over TCP too.
A rule object may also hold "ede": [[INFO-CODE, "HEX"], ...]: the reply
then carries an OPT record with one Extended DNS Error option (RFC 8914)
per entry, in that order, EXTRA-TEXT given as hex bytes so that any byte
can be sent ({"action": "servfail", "ede": [[22, "6e6f6e65"]]}), the way a
resolver explains its failures; only to queries that have an OPT record.

default: optional; used for names in no zone, so that the responder can
stand in for a recursive resolver.  A benchmark's fake resolver that
answers every name NOERROR/empty, each reply 20 ms late, is the one-line
config ``{"default": {"rules": {"*": {"delay_ms": 20}}}}``.  The default
section holds "rules" and may hold "records" with absolute owner names;
names with no records get NOERROR and an empty answer, without AA.
Without a default section such names get REFUSED, as from an
authoritative server.

serial: optional, {"service_ms": N, "backlog": B}: the whole server behaves
like a slow single-threaded one.  Queries (UDP and TCP) wait in one FIFO
queue and are answered strictly one at a time, each N ms after its turn
comes (rules apply as usual; a rule's delay_ms is added after that).  A UDP
query that arrives while B queries already wait is dropped, the way a full
socket receive buffer loses packets (B = 0: no bound); TCP queries are
never dropped (TCP's flow control holds them back instead).  The stats
query is answered at once, outside the queue.

Every reply has the query's ID and question, copies RD and sets RA.

Query counting: a TXT query for ``stats.responder.invalid`` (any class,
UDP or TCP) is answered at once with one TXT string per counter:
``total=N``, ``udp=N``, ``tcp=N``, ``type:CAA=N`` per query type seen and, in
serial mode, ``backlog_dropped=N`` (UDP queries lost to a full backlog) and
``backlog_max=N`` (the most queries that ever waited at once).
The stats query itself is not counted; every other query received is,
including dropped and malformed ones.  Example:
``dig @127.0.0.1 -p N stats.responder.invalid TXT +short``.  The same
query tells a starting script when the responder is up.
"""

import argparse
import asyncio
import collections
import json
import signal
import socket
import struct

from dnslib import CLASS, EDNS0, DNSLabel, DNSRecord, EDNSOption, QTYPE, RCODE, RR, TXT

STATS_NAME = DNSLabel("stats.responder.invalid.")
ACTIONS = ("answer", "servfail", "notimp", "refused", "formerr", "drop", "truncate",
           "tcpfail")
TCP_MAX = 65535  # the largest message a 16-bit length prefix frames
RCODE_OF_ACTION = {
    "servfail": RCODE.SERVFAIL,
    "notimp": RCODE.NOTIMP,
    "refused": RCODE.REFUSED,
    "formerr": RCODE.FORMERR,
}
DEFAULT_TTL = 60


class Rule:
    """What to do with one query: an action, possibly after a delay."""

    def __init__(self, spec):
        if isinstance(spec, str):
            spec = {"action": spec}
        self.action = spec.get("action", "answer")
        self.delay = spec.get("delay_ms", 0) / 1000.0
        if self.action not in ACTIONS:
            raise ValueError("unknown action %r" % self.action)
        self.ede = [(int(code), bytes.fromhex(text)) for code, text in spec.get("ede", [])]


class Zone:
    """Records and rules of one zone (or of the default section, origin None)."""

    def __init__(self, origin, spec):
        self.origin = DNSLabel(origin) if origin is not None else None
        text = "\n".join(spec.get("records", []))
        self.records = RR.fromZone(text, origin=origin or ".", ttl=DEFAULT_TTL) if text else []
        self.rules = {qtype.upper(): Rule(r) for qtype, r in spec.get("rules", {}).items()}
        self.authoritative = origin is not None and spec.get("aa", True)
        self.soa = [rr for rr in self.records if self.origin is not None
                    and rr.rtype == QTYPE.SOA and rr.rname == self.origin]

    def rule_for(self, qtype_name):
        return self.rules.get(qtype_name) or self.rules.get("*") or Rule("answer")

    def rrs(self, name, rtype):
        return [rr for rr in self.records if rr.rname == name and rr.rtype == rtype]

    def name_exists(self, name):
        """True if the name owns records or is an empty non-terminal."""
        return any(rr.rname == name or rr.rname.matchSuffix(name) for rr in self.records)

    def holds(self, name):
        return self.origin is None or name.matchSuffix(self.origin)

    def answer(self, reply):
        """Fill reply with what this zone holds for its question."""
        qname, qtype = reply.q.qname, reply.q.qtype
        reply.header.aa = int(self.authoritative)
        for _ in range(8):  # bound on CNAME chain length, and on loops
            found = self.rrs(qname, qtype)
            cname = [] if qtype == QTYPE.CNAME else self.rrs(qname, QTYPE.CNAME)
            if found or not cname:
                break
            reply.add_answer(*cname)
            qname = cname[0].rdata.label
            if not self.holds(qname):
                return  # the resolver chases a target outside the zone
        if found:
            reply.add_answer(*found)
            return
        if self.origin is not None and not self.name_exists(qname):
            reply.header.rcode = RCODE.NXDOMAIN
        for rr in self.soa:
            reply.add_auth(rr)


class Responder:
    """Answers queries from the zones of a config and counts them."""

    def __init__(self, config):
        self.zones = [Zone(origin, spec) for origin, spec in config.get("zones", {}).items()]
        # Longest origin first, so that the closest enclosing zone wins.
        self.zones.sort(key=lambda z: -len(z.origin.label))
        self.default = Zone(None, config["default"]) if "default" in config else None
        self.counts = collections.Counter()
        serial = config.get("serial")
        self.service = serial["service_ms"] / 1000.0 if serial else None
        self.backlog = int(serial.get("backlog", 0)) if serial else 0
        self.waiting = collections.deque()  # serial mode: (query, transport, send)
        self.busy = False

    def zone_for(self, qname):
        for zone in self.zones:
            if qname.matchSuffix(zone.origin):
                return zone
        return self.default

    def handle(self, data, transport, send):
        """Answer one wire-format query: send(bytes) now, later, or never."""
        try:
            query = DNSRecord.parse(data)
        except Exception:
            self.counts["total"] += 1
            self.counts[transport] += 1
            if len(data) >= 2:  # FORMERR with the query's ID, empty sections
                send(data[:2] + struct.pack("!HHHHH", 0x8001, 0, 0, 0, 0))
            return
        if query.q.qname == STATS_NAME and query.q.qtype == QTYPE.TXT:
            send(self.stats_reply(query).pack())
            return
        qtype_name = QTYPE.get(query.q.qtype, str(query.q.qtype))
        self.counts["total"] += 1
        self.counts[transport] += 1
        self.counts["type:" + qtype_name] += 1
        if self.service is None:
            self.answer(query, transport, send)
            return
        if transport == "udp" and self.backlog and len(self.waiting) >= self.backlog:
            self.counts["backlog_dropped"] += 1
            return
        self.waiting.append((query, transport, send))
        self.counts["backlog_max"] = max(self.counts["backlog_max"], len(self.waiting))
        if not self.busy:
            self.busy = True
            asyncio.get_running_loop().create_task(self.serve_serially())

    async def serve_serially(self):
        """Serial mode: one query at a time, service_ms each, in arrival order."""
        try:
            while self.waiting:
                query, transport, send = self.waiting.popleft()
                await asyncio.sleep(self.service)
                self.answer(query, transport, send)
        finally:
            self.busy = False

    def answer(self, query, transport, send):
        """Reply to a parsed query as its zone's rules say."""
        qtype_name = QTYPE.get(query.q.qtype, str(query.q.qtype))
        reply = empty_reply(query)
        zone = self.zone_for(query.q.qname)
        rule = zone.rule_for(qtype_name) if zone else Rule("refused")
        if rule.action == "drop":
            return
        if rule.action == "tcpfail" and transport == "tcp":
            send(None)
            return
        if rule.action in RCODE_OF_ACTION:
            reply.header.rcode = RCODE_OF_ACTION[rule.action]
        else:
            zone.answer(reply)
        limit = udp_limit(query) if transport == "udp" else TCP_MAX
        if (transport == "udp" and rule.action in ("truncate", "tcpfail")
                or len(reply.pack()) > limit):
            aa = reply.header.aa
            reply = empty_reply(query)
            reply.header.aa = aa
            reply.header.tc = 1
        if rule.ede and any(rr.rtype == QTYPE.OPT for rr in query.ar):
            reply.add_ar(EDNS0(udp_len=1232, opts=[
                EDNSOption(15, struct.pack("!H", code) + text) for code, text in rule.ede]))
        wire = reply.pack()
        if rule.delay:
            asyncio.get_running_loop().call_later(rule.delay, send, wire)
        else:
            send(wire)

    def stats_reply(self, query):
        reply = empty_reply(query)
        reply.header.aa = 1
        types = sorted(k for k in self.counts if k.startswith("type:"))
        extra = ["backlog_dropped", "backlog_max"] if self.service is not None else []
        for key in ["total", "udp", "tcp"] + extra + types:
            reply.add_answer(RR(query.q.qname, QTYPE.TXT, CLASS.IN, 0,
                                TXT("%s=%d" % (key, self.counts[key]))))
        return reply


def empty_reply(query):
    """A reply with the query's ID, question, RD and CD; RA set; AD clear."""
    reply = query.reply(ra=1, aa=0)
    reply.header.ad = 0
    return reply


def udp_limit(query):
    """The largest UDP reply the querier accepts (RFC 6891)."""
    for rr in query.ar:
        if rr.rtype == QTYPE.OPT:
            return max(512, rr.rclass)
    return 512


class UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, responder):
        self.responder = responder
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        # Bursts of hundreds of queries overflow the default 208 KiB buffer
        # and are lost before they are counted; the kernel caps this at
        # net.core.rmem_max.
        transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)

    def datagram_received(self, data, addr):
        def send(wire):
            if wire is not None and not self.transport.is_closing():
                self.transport.sendto(wire, addr)
        self.responder.handle(data, "udp", send)


async def serve_tcp(responder, reader, writer):
    """One TCP connection: any number of length-prefixed queries."""
    def send(wire):
        if writer.is_closing():
            return
        if wire is None:  # "tcpfail": hang up instead of answering
            writer.close()
        else:
            writer.write(struct.pack("!H", len(wire)) + wire)
    try:
        while True:
            length = struct.unpack("!H", await reader.readexactly(2))[0]
            responder.handle(await reader.readexactly(length), "tcp", send)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(responder, port, address="127.0.0.1"):
    """Serve UDP and TCP on address:port until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # A client's whole wave of queries (hundreds) may arrive before this
    # process reads any: a larger buffer than the default (~208 KiB) keeps
    # them, so that only the serial mode's backlog drops queries, on purpose.
    # The kernel caps the size at net.core.rmem_max.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((address, port))
    udp, _ = await loop.create_datagram_endpoint(lambda: UDPProtocol(responder), sock=sock)
    tcp = await asyncio.start_server(
        lambda r, w: serve_tcp(responder, r, w), address, port)
    try:
        await stop
    finally:
        udp.close()
        tcp.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="JSON file with zones/default")
    parser.add_argument("--port", type=int, required=True, help="UDP and TCP port")
    parser.add_argument("--address", default="127.0.0.1",
                        help="IPv4 address to listen on (default 127.0.0.1)")
    args = parser.parse_args()
    with open(args.config) as f:
        responder = Responder(json.load(f))
    asyncio.run(serve(responder, args.port, args.address))


if __name__ == "__main__":
    main()
