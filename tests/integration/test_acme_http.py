#!/usr/bin/python3
"""acme/http.c (and acme/problem.c) through tests/tools/acme_probe.

Two kinds of peer, both on loopback:
- a real Pebble from the lab: directory, nonces, problem documents, TLS
  verification with and without the lab's CA bundle, body cap, Link headers;
- a small scripted HTTP/1.1 server (below), TLS or plain, that records which
  client port each request came from (connection reuse) and sends responses
  Pebble never would: 1xx before the final status, oversized header lines,
  chunked bodies over the cap, relative Links, redirects.

Run by ctest with ACME_PROBE set; by hand:
  ACME_PROBE=build-d/tests/acme_probe /usr/bin/python3 tests/integration/test_acme_http.py -v
"""

import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from cplab import Lab  # noqa: E402

ACME_PROBE = os.environ.get("ACME_PROBE", "build/tests/acme_probe")
# Nothing from the environment may send the probe through a proxy.
PROBE_ENV = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


def probe(*args, timeout=60):
    """Run acme_probe; return (exit status, parsed stdout or None, stderr)."""
    r = subprocess.run([ACME_PROBE] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout, env=PROBE_ENV)
    out = json.loads(r.stdout) if r.returncode == 0 else None
    return r.returncode, out, r.stderr


def self_signed(directory, name):
    """A self-signed P-256 certificate for localhost/127.0.0.1: (cert path, key path)."""
    cert, key = os.path.join(directory, name + ".pem"), os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


class PebbleHttp(unittest.TestCase):
    lab = pebble = directory = None

    @classmethod
    def setUpClass(cls):
        cls.lab = Lab()
        try:
            cls.pebble = cls.lab.pebble()
            cls.directory = cls.pebble.directory()
        except BaseException:
            cls.lab.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()

    def ok(self, *args):
        code, out, err = probe(*args)
        self.assertEqual(code, 0, err)
        return out

    def fails(self, *args):
        code, out, err = probe(*args)
        self.assertEqual(code, 2, out)
        return err

    def test_get_directory(self):
        out = self.ok("--ca-bundle", self.pebble.ca_bundle, "GET", self.pebble.directory_url)
        self.assertEqual(out["status"], 200)
        self.assertEqual(out["content_type"], "application/json")
        body = json.loads(out["body"])
        for key in ("newNonce", "newAccount", "newOrder"):
            self.assertTrue(body[key].startswith("https://127.0.0.1:"), body)
        self.assertEqual(out["body_len"], len(out["body"].encode()))
        self.assertEqual(out["trace"], ["GET %s 200" % self.pebble.directory_url])

    def test_head_new_nonce(self):
        url = self.directory["newNonce"]
        out = self.ok("--ca-bundle", self.pebble.ca_bundle, "HEAD", url)
        self.assertEqual(out["status"], 200)
        self.assertRegex(out["replay_nonce"], r"^[A-Za-z0-9_-]{16,}$")
        self.assertEqual(out["body_len"], 0)
        self.assertNotIn("body", out)
        self.assertEqual(out["trace"], ["HEAD %s 200" % url])

    def test_link_index_captured(self):
        """Pebble sends Link: <.../dir>;rel="index" on its ACME resources."""
        out = self.ok("--ca-bundle", self.pebble.ca_bundle, "--rel", "index", "--rel", "up",
                      "HEAD", self.directory["newNonce"])
        self.assertIn('<%s>;rel="index"' % self.pebble.directory_url, out["links"])
        self.assertEqual(out["rel"], {"index": [self.pebble.directory_url], "up": []})

    def test_tls_verification_without_bundle_fails(self):
        err = self.fails("GET", self.pebble.directory_url)
        self.assertIn("GET %s failed: TLS failure: the server's certificate is not trusted"
                      % self.pebble.directory_url, err)
        self.assertIn("give its certificate with --ca-bundle FILE", err)
        self.assertIn("network error", err)

    def test_tls_verification_with_other_bundle_fails(self):
        with tempfile.TemporaryDirectory() as d:
            other, _ = self_signed(d, "other")
            err = self.fails("--ca-bundle", other, "GET", self.pebble.directory_url)
        self.assertIn("certificate", err)

    def test_missing_bundle_refused(self):
        err = self.fails("--ca-bundle", "/nonexistent/bundle.pem", "GET",
                         self.pebble.directory_url)
        self.assertIn("/nonexistent/bundle.pem", err)

    def test_garbage_post_gets_problem(self):
        url = self.directory["newAccount"]
        out = self.ok("--ca-bundle", self.pebble.ca_bundle, "--rel", "index", "POST", url,
                      "this is not a JWS")
        self.assertEqual(out["status"], 400)
        self.assertEqual(out["content_type"], "application/problem+json")
        body = json.loads(out["body"])
        self.assertEqual(body["type"], "urn:ietf:params:acme:error:malformed")
        # the same document through acme_problem_parse
        self.assertEqual(out["problem"]["type"], "urn:ietf:params:acme:error:malformed")
        self.assertEqual(out["problem"]["detail"], body["detail"])
        self.assertEqual(out["problem"]["status"], 400)
        self.assertTrue(out["problem"]["is_malformed"])
        # RFC 8555 §6.5: every response to a POST carries a fresh nonce
        self.assertTrue(out["replay_nonce"])
        self.assertEqual(out["rel"]["index"], [self.pebble.directory_url])
        self.assertEqual(out["trace"], ["POST %s 400" % url])

    def test_body_cap(self):
        err = self.fails("--ca-bundle", self.pebble.ca_bundle, "--max", "100", "GET",
                         self.pebble.directory_url)
        self.assertIn("response from %s larger than 100 bytes" % self.pebble.directory_url, err)
        self.assertIn("protocol error", err)

    def test_twice_same_handle(self):
        out = self.ok("--ca-bundle", self.pebble.ca_bundle, "--twice", self.pebble.directory_url)
        self.assertEqual(out["first"]["status"], 200)
        self.assertEqual(out["second"]["status"], 200)
        self.assertEqual(out["first"]["body"], out["second"]["body"])
        self.assertEqual(out["second"]["trace"], ["GET %s 200" % self.pebble.directory_url])

    def test_plain_http_to_other_host_refused(self):
        started = time.monotonic()
        err = self.fails("GET", "http://example.invalid/directory")
        self.assertLess(time.monotonic() - started, 5)
        self.assertIn("refusing http://example.invalid/directory: ACME needs https", err)
        self.assertIn("invalid input", err)

    def test_unreachable_server(self):
        port = _free_port()
        err = self.fails("--ca-bundle", self.pebble.ca_bundle, "GET",
                         "https://127.0.0.1:%d/dir" % port)
        self.assertIn("GET https://127.0.0.1:%d/dir failed: the connection was refused or the "
                      "host is unreachable; check the --server URL" % port, err)
        self.assertIn("network error", err)


# --- the scripted server ----------------------------------------------------

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def response(status, headers=(), body=b"", length=True):
    head = ["HTTP/1.1 %s" % status] + list(headers)
    if length:
        head.append("Content-Length: %d" % len(body))
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def chunked(status, body, chunk=500):
    out = response(status, ["Transfer-Encoding: chunked"], length=False)
    for i in range(0, len(body), chunk):
        part = body[i:i + chunk]
        out += b"%x\r\n%s\r\n" % (len(part), part)
    return out + b"0\r\n\r\n"


PROBLEM = json.dumps({
    "type": "urn:ietf:params:acme:error:rejectedIdentifier",
    "detail": "Some identifiers were rejected",
    "status": 400,
    "subproblems": [{"type": "urn:ietf:params:acme:error:malformed", "detail": "bad name",
                     "identifier": {"type": "dns", "value": "_bad.test"}}],
}).encode()

ROUTES = {
    "/acme/cert/1": response("200 OK", [
        "Content-Type: Application/JSON ; charset=utf-8",
        "replay-NONCE:    n0nce-value   ",
        "Retry-After: 30",
        "Link: </dir>;rel=\"index\"",
        "LINK: <../issuer/1>; rel=up, <https://alt.test/c>; rel=\"alternate up\"",
    ], b"{}"),
    "/continue": (response("100 Continue", ["Replay-Nonce: from-the-1xx",
                                            "Link: <https://x.test/>;rel=\"up\""], length=False)
                  + response("201 Created", ["Location: /acct/1", "Replay-Nonce: final"])),
    "/close": response("200 OK", ["Connection: close"], b"{}"),
    "/redirect": response("302 Found", ["Location: https://elsewhere.invalid/x"]),
    "/long-header": response("200 OK", ["X-Long: " + "a" * 9000]),
    "/many-headers": response("200 OK", ["X-H%d: %s" % (i, "b" * 4000) for i in range(20)]),
    "/chunked": chunked("200 OK", b"c" * 3000),
    "/exact": response("200 OK", [], b"d" * 1000),
    "/problem": response("403 Forbidden", ["Content-Type: application/problem+json"], PROBLEM),
    "/post": None,  # echoes the request headers it saw
    # A hostile or broken CA (issue 13, item 4).
    "/huge-header": response("200 OK", ["X-Huge: " + "h" * (10 * 1024 * 1024)]),
    "/garbage": b"HELLO THERE\r\n\r\n",
    "/nothing": b"",  # the connection is closed without a byte
    "/silent": "SILENT",  # no answer at all for a while
}
ROUTES["/plain"] = ROUTES["/acme/cert/1"]


class ScriptedServer:
    """HTTP/1.1 with keep-alive on 127.0.0.1, optionally TLS; logs every request."""

    def __init__(self, tls_cert=None):
        self.requests = []  # (method, path, client port, {header: value}, body)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.ctx = None
        if tls_cert:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(*tls_cert)
            self.ctx.set_alpn_protocols(["http/1.1"])
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def url(self, path, host="127.0.0.1"):
        return "%s://%s:%d%s" % ("https" if self.ctx else "http", host, self.port, path)

    def close(self):
        self.stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)

    def _serve(self):
        while not self.stopping:
            try:
                conn, addr = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn, addr), daemon=True).start()

    def _connection(self, conn, addr):
        try:
            conn.settimeout(10)
            if self.ctx:
                conn = self.ctx.wrap_socket(conn, server_side=True)
            f = conn.makefile("rb")
            while True:
                line = f.readline()
                if not line:
                    return
                method, path, _ = line.decode().split(" ", 2)
                headers = {}
                while True:
                    h = f.readline().decode()
                    if h in ("\r\n", "\n", ""):
                        break
                    name, _, value = h.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = f.read(int(headers.get("content-length", 0)))
                self.requests.append((method, path, addr[1], headers, body))
                reply = ROUTES.get(path, response("404 Not Found"))
                if reply == "SILENT":
                    time.sleep(5)
                    return
                if reply == b"":
                    return
                if reply is None:
                    reply = response("200 OK", ["Content-Type: application/json"],
                                     json.dumps({"headers": headers,
                                                 "body": body.decode()}).encode())
                if method == "HEAD":
                    reply = reply.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
                conn.sendall(reply)
                if b"\r\nConnection: close\r\n" in reply:
                    return
        except (OSError, ValueError, ssl.SSLError):
            pass
        finally:
            conn.close()


class ScriptedHttp(unittest.TestCase):
    tmp = tls = plain = cert = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.cert = self_signed(cls.tmp.name, "server")
        cls.tls = ScriptedServer(tls_cert=cls.cert)
        cls.plain = ScriptedServer()

    @classmethod
    def tearDownClass(cls):
        cls.tls.close()
        cls.plain.close()
        cls.tmp.cleanup()

    def ok(self, *args):
        code, out, err = probe("--ca-bundle", self.cert[0], *args)
        self.assertEqual(code, 0, err)
        return out

    def fails(self, *args):
        code, out, err = probe("--ca-bundle", self.cert[0], *args)
        self.assertEqual(code, 2, out)
        return err

    def test_connection_reused(self):
        before = len(self.tls.requests)
        out = self.ok("--twice", self.tls.url("/plain"))
        self.assertEqual((out["first"]["status"], out["second"]["status"]), (200, 200))
        reqs = self.tls.requests[before:]
        self.assertEqual([r[1] for r in reqs], ["/plain", "/plain"])
        self.assertEqual(reqs[0][2], reqs[1][2], "second GET came on a new connection")

    def test_new_connection_trusts_bundle_again(self):
        """The extra CA is added to every new connection's store, not just the first."""
        before = len(self.tls.requests)
        out = self.ok("--twice", self.tls.url("/close"))
        self.assertEqual((out["first"]["status"], out["second"]["status"]), (200, 200))
        reqs = self.tls.requests[before:]
        self.assertEqual(len(reqs), 2)
        self.assertNotEqual(reqs[0][2], reqs[1][2])

    def test_headers_normalised(self):
        out = self.ok("--rel", "up", "--rel", "index", "--rel", "alternate", "GET",
                      self.tls.url("/acme/cert/1"))
        self.assertEqual(out["content_type"], "application/json")
        self.assertEqual(out["replay_nonce"], "n0nce-value")
        self.assertEqual(out["retry_after"], "30")
        self.assertEqual(out["retry_after_seconds"], 30)
        self.assertEqual(out["links"], ['</dir>;rel="index"',
                                        '<../issuer/1>; rel=up, <https://alt.test/c>; '
                                        'rel="alternate up"'])
        # relative references resolved against the request URL
        self.assertEqual(out["rel"], {
            "index": [self.tls.url("/dir")],
            "up": [self.tls.url("/acme/issuer/1"), "https://alt.test/c"],
            "alternate": ["https://alt.test/c"],
        })
        self.assertEqual(json.loads(out["body"]), {})

    def test_request_headers(self):
        out = self.ok("POST", self.tls.url("/post"), '{"protected":"x"}')
        seen = json.loads(out["body"])
        self.assertEqual(seen["body"], '{"protected":"x"}')
        self.assertEqual(seen["headers"]["content-type"], "application/jose+json")
        self.assertRegex(seen["headers"]["user-agent"], r"^certpilot/\d+\.\d+\.\d+$")
        self.assertNotIn("expect", seen["headers"])

    def test_methods_switch_on_one_handle(self):
        """No option of one request leaks into the next (POST body, NOBODY)."""
        before = len(self.tls.requests)
        out = self.ok("POST", self.tls.url("/post"), "{}", "--then", "GET", self.tls.url("/post"),
                      "--then", "HEAD", self.tls.url("/exact"), "--then", "GET",
                      self.tls.url("/exact"), "--then", "POST", self.tls.url("/post"), "")
        reqs = self.tls.requests[before:]
        self.assertEqual([(r[0], r[1]) for r in reqs], [
            ("POST", "/post"), ("GET", "/post"), ("HEAD", "/exact"), ("GET", "/exact"),
            ("POST", "/post")])
        self.assertEqual(len({r[2] for r in reqs}), 1, "not all on one connection")
        got = out["responses"]
        self.assertEqual(json.loads(got[0]["body"])["body"], "{}")
        get_seen = json.loads(got[1]["body"])
        self.assertNotIn("content-type", get_seen["headers"])
        self.assertNotIn("content-length", get_seen["headers"])
        self.assertEqual((got[2]["status"], got[2]["body_len"]), (200, 0))
        self.assertEqual(got[3]["body_len"], 1000)
        self.assertEqual(json.loads(got[4]["body"])["body"], "")  # empty POST body
        self.assertEqual(json.loads(got[4]["body"])["headers"]["content-length"], "0")
        self.assertEqual([g["trace"][0].split(" ")[0] for g in got],
                         ["POST", "GET", "HEAD", "GET", "POST"])

    def test_informational_response_headers_dropped(self):
        out = self.ok("GET", self.tls.url("/continue"))
        self.assertEqual(out["status"], 201)
        self.assertEqual(out["replay_nonce"], "final")
        self.assertEqual(out["location"], "/acct/1")
        self.assertEqual(out["links"], [])

    def test_redirect_not_followed(self):
        before = len(self.tls.requests)
        out = self.ok("GET", self.tls.url("/redirect"))
        self.assertEqual(out["status"], 302)
        self.assertEqual(out["location"], "https://elsewhere.invalid/x")
        self.assertEqual(len(self.tls.requests) - before, 1)
        self.assertEqual(len(out["trace"]), 1)

    def test_header_line_bound(self):
        err = self.fails("GET", self.tls.url("/long-header"))
        self.assertIn("header line longer than 8192 bytes", err)

    def test_header_total_bound(self):
        err = self.fails("GET", self.tls.url("/many-headers"))
        self.assertIn("response headers from %s larger than" % self.tls.url("/many-headers"),
                      err)

    def test_huge_header_is_named_not_out_of_memory(self):
        url = self.tls.url("/huge-header")
        err = self.fails("GET", url)
        self.assertIn("GET %s failed: the response header is too large" % url, err)
        self.assertNotIn("Out of memory", err.split("(")[0])
        self.assertIn("protocol error", err)

    def test_silent_server_is_a_time_out(self):
        url = self.tls.url("/silent")
        err = self.fails("--timeout-ms", "500", "GET", url)
        self.assertIn("GET %s failed: no complete answer in time (timed out)" % url, err)
        self.assertIn("network error", err)

    def test_connection_closed_without_answer(self):
        url = self.tls.url("/nothing")
        err = self.fails("GET", url)
        self.assertIn("GET %s failed: the server closed the connection without an answer" % url,
                      err)
        self.assertIn("protocol error", err)

    def test_answer_that_is_not_http(self):
        url = self.plain.url("/garbage")
        err = self.fails("GET", url)
        self.assertIn("GET %s failed: the answer is not HTTP" % url, err)

    def test_chunked_body_over_cap(self):
        err = self.fails("--max", "1000", "GET", self.tls.url("/chunked"))
        self.assertIn("larger than 1000 bytes", err)
        out = self.ok("--max", "3000", "GET", self.tls.url("/chunked"))
        self.assertEqual(out["body_len"], 3000)
        self.assertNotIn("body", out)  # not JSON text

    def test_body_exactly_at_cap(self):
        self.assertEqual(self.ok("--max", "1000", "GET", self.tls.url("/exact"))["body_len"], 1000)
        err = self.fails("--max", "999", "GET", self.tls.url("/exact"))
        self.assertIn("larger than 999 bytes", err)

    def test_head_ignores_body_cap(self):
        out = self.ok("--max", "999", "HEAD", self.tls.url("/exact"))
        self.assertEqual((out["status"], out["body_len"]), (200, 0))
        self.assertEqual(self.tls.requests[-1][0], "HEAD")
        # and the same handle kind still caps a GET
        self.assertIn("larger than 999", self.fails("--max", "999", "GET", self.tls.url("/exact")))

    def test_problem_with_subproblems(self):
        out = self.ok("GET", self.tls.url("/problem"))
        self.assertEqual(out["status"], 403)
        self.assertEqual(out["problem"]["type"], "urn:ietf:params:acme:error:rejectedIdentifier")
        self.assertEqual(out["problem"]["subproblems"], [{
            "type": "urn:ietf:params:acme:error:malformed", "detail": "bad name",
            "ident_type": "dns", "ident_value": "_bad.test"}])

    def test_plain_http_to_loopback_allowed(self):
        for host in ("127.0.0.1", "localhost"):
            out = self.ok("GET", self.plain.url("/plain", host))
            self.assertEqual(out["status"], 200)
            self.assertEqual(out["replay_nonce"], "n0nce-value")

    def test_https_to_plain_server_fails(self):
        err = self.fails("GET", "https://127.0.0.1:%d/plain" % self.plain.port)
        self.assertIn("network error", err)


if __name__ == "__main__":
    unittest.main()
