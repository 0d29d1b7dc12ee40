"""An ACME Renewal Information (RFC 9773) front for the lab's Pebble.

Pebble 2.4 has no renewalInfo resource.  AriProxy is a small HTTPS server on
127.0.0.1, in a thread of the test process, using Pebble's own TLS
certificate and key (so the lab's ca_bundle trusts it), that adds one:

- GET /dir is Pebble's directory plus "renewalInfo": "<proxy>/renewalInfo";
- GET /renewalInfo/<certID> answers the window the test set for that cert ID
  (or for every cert), with a Retry-After when one was set, and logs the ID;
- every other request is forwarded to Pebble unchanged, keeping the Host
  header the client used.

Why everything goes through the proxy: Pebble builds every URL it hands out
from the request's Host, checks the JWS "url" against Host + path, and
checks that a "kid" starts with <Host>/my-account/.  Sending only newOrder
through the proxy therefore fails: with the proxy's Host the kid (made
with Pebble's Host) is refused, with Pebble's Host the JWS url is.  So the
directory is fetched from Pebble with the proxy's Host, every URL in it
names the proxy, and the whole conversation passes through, consistently.
An account registered through Pebble's own directory URL is a different
account here (its kid names Pebble's port).

POST newOrder payloads are decoded and recorded (new_orders()), so a test
can see that "replaces" went on the wire.  refuse_replaces(type) makes the
proxy itself answer a newOrder that carries "replaces" with that problem
(alreadyReplaced 409, or malformed 400 naming the field), as a CA with ARI
would, without forwarding it.

reject_nonces(every) makes the proxy answer the first POST and then every
`every`-th one with badNonce (400, with a fresh nonce from Pebble in
Replay-Nonce) instead of forwarding it: with every=2 a client that sends one
request at a time and retries at once has each signed request refused once,
then accepted.
Unlike Pebble's PEBBLE_WFE_NONCEREJECT, which draws for every request, the
outcome does not depend on chance (rejected_nonces() counts them).

Profiles (draft-aaron-acme-profiles), which Pebble 2.4 does not know:
with profiles={name: description} the directory's meta carries them; a
newOrder naming another profile is answered 400 invalidProfile without
being forwarded; one naming an offered profile is forwarded as signed (the
proxy cannot take the member out without breaking the signature, and Pebble
2.4 ignores members it does not know), and every order object of that
order (newOrder's answer, POST-as-GET, finalize) gets "profile" echoed.

dns-persist-01 (draft-ietf-acme-dns-persist), which Pebble 2.4 does not
know either: with persist_issuer=DOMAIN (and dns_server, where the proxy
looks records up) every dns-01 challenge in the authorizations it returns
becomes a dns-persist-01 challenge: same URL (so the client's signed POST is
Pebble's as is), no token, issuerDomainNames [DOMAIN], and the directory's
meta gets issuerDomainNames.  Pebble runs with PEBBLE_VA_ALWAYS_VALID=1.
When the client POSTs to such a challenge the proxy first looks up TXT at
_validation-persist.<identifier> and applies the draft's rules
(persist_rules.py) with the JWS kid as the account: if no record
authorizes, the challenge is answered "invalid" with an unauthorized
problem naming the reason, without forwarding, and later views of the
challenge and its authorization say so too; otherwise the POST goes to
Pebble, which then marks the challenge valid.  persist_checks() lists each
decision.

exchanges() lists every request answered (method, path, HTTP status and the
"status" of a JSON answer), for tests that count a client's requests.
"""

import base64
import datetime
import http.client
import http.server
import json
import ssl
import threading
import urllib.parse

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade",
              "proxy-connection", "te", "trailer"}
MAX_BODY = 1 << 20
QTYPE_TXT = 16


def rfc3339(t):
    """Unix seconds or a datetime (naive = UTC) as 2025-01-02T04:00:00Z; a str is kept."""
    if isinstance(t, str):
        return t
    if isinstance(t, datetime.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=datetime.timezone.utc)
        t = t.timestamp()
    when = datetime.datetime.fromtimestamp(int(t), tz=datetime.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64url_json(text):
    text = text + "=" * (-len(text) % 4)
    return json.loads(base64.urlsafe_b64decode(text.encode()).decode() or "null")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def finish_request(self, request, client_address):
        # The TLS handshake happens here, in the connection's own thread, so a
        # stalled client cannot hold up accept().
        request.settimeout(15)
        try:
            tls = self.tls_context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        try:  # the TLS socket took over the descriptor: close it here
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            tls.close()

    def handle_error(self, request, client_address):
        pass  # a client that goes away is no news in a test


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cplab-ari"

    def log_message(self, fmt, *args):
        self.server.proxy._log("%s %s" % (self.address_string(), fmt % args))

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(n) if n else b""

    def _reply(self, status, body=b"", headers=()):
        self.server.proxy._record_exchange(self.command, self.path, status, body)
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _problem(self, status, kind, detail):
        body = json.dumps({"type": "urn:ietf:params:acme:error:" + kind, "detail": detail,
                           "status": status}).encode()
        self._reply(status, body, [("Content-Type", "application/problem+json")])

    def do_GET(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def _dispatch(self):
        proxy = self.server.proxy
        try:
            body = self._body()
            path = urllib.parse.urlsplit(self.path).path
            if self.command == "POST" and proxy._reject_this_post():
                self._bad_nonce()
            elif self.command == "GET" and path == proxy.dir_path:
                self._directory()
            elif self.command == "GET" and path.startswith("/renewalInfo/"):
                self._renewal_info(path[len("/renewalInfo/"):])
            elif self.command == "POST" and path == proxy.new_order_path:
                self._new_order(body)
            elif self.command == "POST" and proxy._persist_challenge(path) is not None:
                self._persist_answer(body, path)
            else:
                self._forward(body)
        except (OSError, ValueError, http.client.HTTPException) as e:
            proxy._log("error: %r" % e)
            try:
                self._problem(502, "serverInternal", "ari proxy: %s" % e)
            except OSError:
                pass

    def _directory(self):
        status, headers, body = self.server.proxy._pebble(
            "GET", self.server.proxy.dir_path, None, self._host(), {})
        if status != 200:
            self._reply(status, body, headers)
            return
        directory = json.loads(body)
        directory["renewalInfo"] = "https://%s/renewalInfo" % self._host()
        proxy = self.server.proxy
        if proxy._profiles is not None:
            directory.setdefault("meta", {})["profiles"] = dict(proxy._profiles)
        if proxy.persist_issuer is not None:
            directory.setdefault("meta", {})["issuerDomainNames"] = [proxy.persist_issuer]
        self._reply(200, json.dumps(directory, indent=2).encode(),
                    [("Content-Type", "application/json")])

    def _bad_nonce(self):
        """RFC 8555 §6.5: badNonce, with a fresh nonce (Pebble's) to retry with."""
        proxy = self.server.proxy
        status, headers, _ = proxy._pebble("HEAD", proxy.new_nonce_path, None, self._host(), {})
        nonce = [v for k, v in headers if k.lower() == "replay-nonce"]
        if status not in (200, 204) or not nonce:
            raise ValueError("no nonce from Pebble (HTTP %d)" % status)
        body = json.dumps({"type": "urn:ietf:params:acme:error:badNonce",
                           "detail": "ari proxy: nonce refused on purpose (reject_nonces)",
                           "status": 400}).encode()
        self._reply(400, body, [("Content-Type", "application/problem+json"),
                                ("Replay-Nonce", nonce[0])])

    def _renewal_info(self, cert_id):
        answer = self.server.proxy._window_for(cert_id)
        if answer is None:
            self._problem(404, "malformed", "no renewal window set for %s" % cert_id)
            return
        doc = {"suggestedWindow": {"start": rfc3339(answer["start"]),
                                   "end": rfc3339(answer["end"])}}
        if answer["explanation_url"] is not None:
            doc["explanationURL"] = answer["explanation_url"]
        headers = [("Content-Type", "application/json")]
        if answer["retry_after"] is not None:
            headers.append(("Retry-After", str(answer["retry_after"])))
        self._reply(200, json.dumps(doc).encode(), headers)

    def _new_order(self, body):
        proxy = self.server.proxy
        try:
            payload = _b64url_json(json.loads(body)["payload"])
        except (ValueError, KeyError, TypeError):
            payload = None
        refusal = proxy._record_order(payload)
        limit = proxy._rate_limit
        if limit is not None:
            body = json.dumps({"type": "urn:ietf:params:acme:error:rateLimited",
                               "detail": "too many new orders recently (ari proxy)",
                               "status": 429}).encode()
            self._reply(429, body, [("Content-Type", "application/problem+json"),
                                    ("Retry-After", limit)])
            return
        if refusal is not None and isinstance(payload, dict) and "replaces" in payload:
            if refusal == "alreadyReplaced":
                self._problem(409, "alreadyReplaced",
                              "the certificate %s has already been replaced" % payload["replaces"])
            else:
                self._problem(400, refusal, "cannot use 'replaces' %s for this order"
                              % payload["replaces"])
            return
        profile = payload.get("profile") if isinstance(payload, dict) else None
        if proxy._profiles is not None and profile is not None:
            if not isinstance(profile, str) or profile not in proxy._profiles:
                # draft-aaron-acme-profiles §4: an unknown profile is refused.
                self._problem(400, "invalidProfile", "profile %r is not one of %s"
                              % (profile, ", ".join(sorted(proxy._profiles))))
                return
        self._forward(body, new_order_profile=profile)

    def _persist_answer(self, body, path):
        """A POST to a relabelled dns-persist-01 challenge: check, then forward or refuse."""
        proxy = self.server.proxy
        chal = proxy._persist_challenge(path)
        try:
            protected = _b64url_json(json.loads(body)["protected"])
            account = protected.get("kid")
        except (ValueError, KeyError, TypeError, AttributeError):
            account = None
        why = proxy._persist_check(chal, account)
        if why is None:
            self._forward(body)
            return
        status, headers, _ = proxy._pebble("HEAD", proxy.new_nonce_path, None, self._host(), {})
        nonce = [v for k, v in headers if k.lower() == "replay-nonce"]
        doc = proxy._persist_view(path, {"type": "dns-persist-01",
                                         "url": "https://%s%s" % (self._host(), path),
                                         "status": "pending"})
        out = [("Content-Type", "application/json")]
        if nonce:
            out.append(("Replay-Nonce", nonce[0]))
        self._reply(200, json.dumps(doc).encode(), out)

    def _host(self):
        return self.headers.get("Host") or "127.0.0.1:%d" % self.server.server_address[1]

    def _forward(self, body, new_order_profile=None):
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in HOP_BY_HOP and k.lower() != "host"}
        proxy = self.server.proxy
        status, out_headers, out_body = proxy._pebble(
            self.command, self.path, body if self.command == "POST" else None, self._host(),
            headers)
        if new_order_profile is not None and status == 201:
            location = [v for k, v in out_headers if k.lower() == "location"]
            if location:
                proxy._remember_order(location[0], new_order_profile)
        out_body = proxy._rewrite(urllib.parse.urlsplit(self.path).path, out_body)
        with proxy._lock:
            token, nonce, foreign = proxy._token, proxy._nonce, proxy._foreign
            other_ident = proxy._other_ident
        if foreign and b'"authorizations"' in out_body:
            # URLs of another origin (Pebble's own port) in the order.
            doc = json.loads(out_body)
            pebble = "https://%s:%d" % (proxy.pebble_host, proxy.pebble_port)
            doc["authorizations"] = [pebble + urllib.parse.urlsplit(u).path
                                     for u in doc["authorizations"]]
            out_body = json.dumps(doc).encode()
        if token is not None and b'"challenges"' in out_body:
            doc = json.loads(out_body)
            for chal in doc.get("challenges", []):
                chal["token"] = token
            out_body = json.dumps(doc).encode()
        if other_ident is not None and b'"challenges"' in out_body:
            doc = json.loads(out_body)
            doc["identifier"] = dict(other_ident)
            out_body = json.dumps(doc).encode()
        if nonce is not None:
            out_headers = [(k, nonce if k.lower() == "replay-nonce" else v)
                           for k, v in out_headers]
        self._reply(status, out_body, out_headers)


class AriProxy:
    """The proxy in front of one Pebble; see the module doc.  start() it, stop() it."""

    def __init__(self, pebble_directory_url, ca_bundle, cert, key, port, log_path=None,
                 profiles=None, persist_issuer=None, dns_server=None):
        parts = urllib.parse.urlsplit(pebble_directory_url)
        self.pebble_host, self.pebble_port = parts.hostname, parts.port
        self.dir_path = parts.path
        self.port = port
        self.directory_url = "https://127.0.0.1:%d%s" % (port, self.dir_path)
        self.renewal_info_url = "https://127.0.0.1:%d/renewalInfo" % port
        self._client_tls = ssl.create_default_context(cafile=ca_bundle)
        self._lock = threading.Lock()
        self._windows = {}  # cert ID or None (default) -> answer
        self._requests = []
        self._exchanges = []
        self._orders = []
        self._refusal = None
        self._rate_limit = None  # Retry-After of a 429 answer to every newOrder
        self._token = None  # every challenge's token in authorizations, when set
        self._foreign = False  # orders name authorizations at Pebble's own origin
        self._other_ident = None  # every authorization's identifier, when set
        self._nonce = None  # every Replay-Nonce, when set
        self._reject_every = 0
        self._posts = self._rejected = 0
        self._log_path = log_path
        self._profiles = dict(profiles) if profiles is not None else None
        self._order_profiles = {}  # order ID (last path segment) -> profile asked for
        self.persist_issuer = persist_issuer
        self._persist_names = [persist_issuer] if persist_issuer is not None else []
        self._dns_server = dns_server
        self._persist_chals = {}  # challenge path -> {"authz", "name", "wildcard"}
        self._persist_denied = {}  # challenge path -> problem document
        self._persist_log = []
        self.new_order_path = self.new_nonce_path = None
        server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_tls.load_cert_chain(cert, key)
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.tls_context = server_tls
        self._server.proxy = self
        self._thread = None

    def start(self):
        # Pebble's newOrder path (its URL is built from Host; the path is fixed).
        status, _, body = self._pebble("GET", self.dir_path, None,
                                       "%s:%d" % (self.pebble_host, self.pebble_port), {})
        if status != 200:
            raise RuntimeError("Pebble's directory answered HTTP %d" % status)
        directory = json.loads(body)
        self.new_order_path = urllib.parse.urlsplit(directory["newOrder"]).path
        self.new_nonce_path = urllib.parse.urlsplit(directory["newNonce"]).path
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name="ari-proxy-%d" % self.port, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    # -- what tests call (through Pebble)

    def set_window(self, start, end, cert_id=None, retry_after=None, explanation_url=None):
        with self._lock:
            self._windows[cert_id] = {"start": start, "end": end, "retry_after": retry_after,
                                      "explanation_url": explanation_url}

    def clear_windows(self):
        with self._lock:
            self._windows.clear()

    def requests(self):
        with self._lock:
            return list(self._requests)

    def exchanges(self):
        """Every answered request in order: dicts with method, path, HTTP status
        and the "status" member of a JSON object answer (None otherwise)."""
        with self._lock:
            return [dict(e) for e in self._exchanges]

    def new_orders(self):
        with self._lock:
            return [json.loads(json.dumps(p)) for p in self._orders]

    def rate_limit_orders(self, retry_after):
        """Answer every newOrder with 429 rateLimited and this Retry-After value
        (a str: delay-seconds or an HTTP date), without forwarding it; None
        forwards again."""
        with self._lock:
            self._rate_limit = retry_after

    def break_protocol(self, token=None, nonce=None, foreign_urls=False, identifier=None):
        """Be a CA that breaks RFC 8555: give every challenge of every
        authorization this token, and/or send this Replay-Nonce on every
        answer (None: as Pebble sent them); identifier ({"type", "value"}):
        show it as every authorization's identifier; foreign_urls: name an order's
        authorizations at another origin (Pebble's own port)."""
        with self._lock:
            self._token, self._nonce, self._foreign = token, nonce, foreign_urls
            self._other_ident = identifier

    def refuse_replaces(self, problem_type):
        if problem_type not in (None, "alreadyReplaced", "malformed", "unauthorized"):
            raise ValueError("problem_type: None, alreadyReplaced, malformed or unauthorized")
        with self._lock:
            self._refusal = problem_type

    def reject_nonces(self, every):
        """From now on answer the next POST and every `every`-th one after it
        with badNonce; 0 forwards all."""
        if not isinstance(every, int) or every < 0 or every == 1:
            raise ValueError("every: 0 (off) or an int >= 2 (1 would refuse every retry)")
        with self._lock:
            self._reject_every, self._posts = every, 0

    def rejected_nonces(self):
        """How many POSTs reject_nonces() has answered with badNonce so far."""
        with self._lock:
            return self._rejected

    def set_persist_issuers(self, names):
        """The issuerDomainNames of dns-persist-01 challenges from now on (the
        records accepted follow them); any list, to play a CA that breaks the
        draft's 1-to-10 rule."""
        with self._lock:
            self._persist_names = list(names)

    def persist_checks(self):
        """Each dns-persist-01 decision: {"name", "wildcard", "account", "reason"} (None: passed)."""
        with self._lock:
            return [dict(c) for c in self._persist_log]

    # -- internals

    def _remember_order(self, url, profile):
        with self._lock:
            self._order_profiles[url.rstrip("/").rsplit("/", 1)[-1]] = profile

    def _persist_challenge(self, path):
        with self._lock:
            return self._persist_chals.get(path)

    def _persist_check(self, chal, account):
        """None when a TXT record authorizes `account` for the challenge, else why not."""
        from cplab import dns_query  # noqa: E402  (the lab imports this module)
        import persist_rules
        name = chal["name"]
        values = []
        reply = dns_query(self._dns_server, "_validation-persist.%s" % name, "TXT")
        for rr in reply.rr:
            if QTYPE_TXT == rr.rtype:
                values.append(b"".join(rr.rdata.data).decode("latin-1"))
        if account is None:
            why = "the request has no kid"
        else:
            with self._lock:
                names = list(self._persist_names)
            why = persist_rules.evaluate(values, names, account, chal["wildcard"], name)
        with self._lock:
            self._persist_log.append({"name": name, "wildcard": chal["wildcard"],
                                      "account": account, "reason": why})
            if why is not None:
                self._persist_denied[chal["path"]] = {
                    "type": "urn:ietf:params:acme:error:unauthorized",
                    "detail": "dns-persist-01: %s" % why, "status": 403}
        return why

    def _persist_view(self, path, chal):
        """A challenge object as a dns-persist-01 one, invalid when it was refused."""
        chal["type"] = "dns-persist-01"
        chal.pop("token", None)
        with self._lock:
            chal["issuerDomainNames"] = list(self._persist_names)
            denied = self._persist_denied.get(path)
        if denied is not None:
            chal["status"] = "invalid"
            chal["error"] = dict(denied)
        return chal

    def _rewrite(self, path, body):
        """Profiles echoed in orders; dns-01 shown as dns-persist-01 in authorizations."""
        if self._profiles is None and self.persist_issuer is None:
            return body
        try:
            doc = json.loads(body)
        except ValueError:
            return body
        if not isinstance(doc, dict):
            return body
        changed = False
        if isinstance(doc.get("finalize"), str):
            order_id = doc["finalize"].rstrip("/").rsplit("/", 1)[-1]
            with self._lock:
                profile = self._order_profiles.get(order_id)
            if profile is not None:
                doc["profile"] = profile
                changed = True
        if self.persist_issuer is not None and isinstance(doc.get("challenges"), list):
            ident = doc.get("identifier") or {}
            wildcard = doc.get("wildcard") is True
            refused = False
            for chal in doc["challenges"]:
                if chal.get("type") != "dns-01":
                    continue
                cpath = urllib.parse.urlsplit(chal.get("url", "")).path
                with self._lock:
                    self._persist_chals[cpath] = {"path": cpath, "authz": path,
                                                  "name": ident.get("value"),
                                                  "wildcard": wildcard}
                    refused = refused or cpath in self._persist_denied
                self._persist_view(cpath, chal)
            if refused:
                doc["status"] = "invalid"
            changed = True
        elif (self.persist_issuer is not None and doc.get("type") == "dns-01"
              and self._persist_challenge(urllib.parse.urlsplit(doc.get("url", "")).path)):
            self._persist_view(urllib.parse.urlsplit(doc["url"]).path, doc)
            changed = True
        return json.dumps(doc).encode() if changed else body

    def _reject_this_post(self):
        with self._lock:
            if not self._reject_every:
                return False
            reject = self._posts % self._reject_every == 0  # the 1st, every+1-th, ...
            self._posts += 1
            self._rejected += reject
            return reject

    def _record_exchange(self, method, path, status, body):
        state = None
        try:
            doc = json.loads(body) if body[:1] == b"{" else None
            state = doc.get("status") if isinstance(doc, dict) else None
        except ValueError:
            pass
        with self._lock:
            self._exchanges.append({"method": method, "path": urllib.parse.urlsplit(path).path,
                                    "http_status": status, "status": state})

    def _window_for(self, cert_id):
        with self._lock:
            self._requests.append(cert_id)
            answer = self._windows.get(cert_id, self._windows.get(None))
            return dict(answer) if answer is not None else None

    def _record_order(self, payload):
        with self._lock:
            self._orders.append(payload)
            return self._refusal

    def _pebble(self, method, path, body, host, headers):
        """One request to Pebble with Host: host; (status, [(name, value)], body)."""
        conn = http.client.HTTPSConnection(self.pebble_host, self.pebble_port, timeout=30,
                                           context=self._client_tls)
        try:
            conn.request(method, path, body=body, headers=dict(headers, Host=host))
            resp = conn.getresponse()
            out = resp.read(MAX_BODY + 1)
            if len(out) > MAX_BODY:
                raise ValueError("answer from Pebble too large")
            kept = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
            return resp.status, kept, out
        finally:
            conn.close()

    def _log(self, line):
        if self._log_path:
            with open(self._log_path, "a") as f:
                f.write(line + "\n")
