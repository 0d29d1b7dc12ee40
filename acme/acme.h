/*
 * acme/acme.h - the ACME v2 protocol (RFC 8555) as a library.
 *
 * This header grows with the protocol.  Present now: the bottom layer that
 * everything else stands on:
 *   - keys (acme/key.c): generate, load and store account and certificate keys
 *     (ECDSA P-256/P-384, RSA 2048/3072/4096) through OpenSSL EVP; public JWK
 *     and RFC 7638 thumbprint;
 *   - JWS (acme/jws.c): RFC 7515 flattened JSON signatures as RFC 8555 §6.2
 *     wants them (ES256/ES384/RS256, "jwk" or "kid"), External Account Binding
 *     (HS256, §7.3.4), base64url without padding;
 *   - transport (acme/http.c): one reused libcurl handle, TLS verification
 *     always on, bounded response size, the headers ACME needs;
 *   - problem documents (acme/problem.c): RFC 7807 / RFC 8555 §6.7 with
 *     subproblems, and Retry-After.
 * Directory, nonce pool, account, order, challenges and finalization come next
 * (they use only what is declared here).
 *
 * Nothing in acme/ prints or exits: functions return enum cp_code and fill the
 * optional struct cp_err.  Secrets are wiped with OPENSSL_cleanse before free.
 */
#ifndef CP_ACME_ACME_H
#define CP_ACME_ACME_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/err.h"

/* ------------------------------------------------------------- base64url */

/* RFC 4648 §5 without padding, encoded via OpenSSL EVP.  Returns a
 * NUL-terminated heap string (free()), or NULL when out of memory. */
char *acme_b64url_encode(const unsigned char *data, size_t len);

/* Decode base64url with or without padding; rejects any other character
 * (CP_EINVAL naming `what`, e.g. "--eab-hmac-key").  *out is heap memory the
 * caller frees (wipe it first when it held a secret). */
enum cp_code acme_b64url_decode(const char *text, const char *what, unsigned char **out,
                                size_t *outlen, struct cp_err *err);

/* ------------------------------------------------------------------ keys */

enum acme_key_type {
    ACME_KEY_EC256, /* default */
    ACME_KEY_EC384,
    ACME_KEY_RSA2048,
    ACME_KEY_RSA3072,
    ACME_KEY_RSA4096
};

/* "ec256", "ec384", "rsa2048", "rsa3072", "rsa4096". */
enum cp_code acme_key_type_parse(const char *name, enum acme_key_type *out, struct cp_err *err);
const char *acme_key_type_name(enum acme_key_type t);

struct acme_key; /* opaque: an EVP_PKEY with its type */

enum cp_code acme_key_generate(enum acme_key_type t, struct acme_key **out, struct cp_err *err);

/* Parse a PEM private key (PKCS#8 or traditional).  Keys of other kinds or
 * sizes than the five above are refused with a message naming `what`. */
enum cp_code acme_key_from_pem(const char *pem, size_t len, const char *what, struct acme_key **out,
                               struct cp_err *err);

/* The private key as unencrypted PKCS#8 PEM; *pem is heap memory the caller
 * wipes (OPENSSL_cleanse) and frees. */
enum cp_code acme_key_to_pem(const struct acme_key *k, char **pem, size_t *len, struct cp_err *err);

/* A private key from its JWK (RFC 7518 §6.2.2 EC: kty, crv, x, y, d; §6.3.2
 * RSA: kty, n, e, d, p, q, dp, dq, qi), as other clients store account
 * keys (certbot's private_key.json).  The members are checked to make one
 * consistent key of the five types above; anything else is refused naming
 * `what`.  Other members ("alg", "kid", ...) are ignored. */
enum cp_code acme_key_from_jwk(const json_t *jwk, const char *what, struct acme_key **out,
                               struct cp_err *err);

enum acme_key_type acme_key_type_of(const struct acme_key *k);

/* The public key as a JWK object with exactly the required members (EC: crv,
 * kty, x, y; RSA: e, kty, n).  New reference, NULL when out of memory. */
json_t *acme_key_jwk(const struct acme_key *k);

/* RFC 7638 thumbprint: base64url(SHA-256(canonical JWK)), 43 characters + NUL. */
enum cp_code acme_key_thumbprint(const struct acme_key *k, char out[44], struct cp_err *err);

/* JWS "alg" for the key: "ES256", "ES384" or "RS256". */
const char *acme_key_alg(const struct acme_key *k);

/* Borrowed EVP_PKEY for other OpenSSL work (CSR, certificate checks). */
struct evp_pkey_st *acme_key_evp(const struct acme_key *k);

/* Wipes and frees; NULL is a no-op. */
void acme_key_free(struct acme_key *k);

/* ------------------------------------------------------------------- JWS */

/*
 * Sign an ACME request body (RFC 8555 §6.2): protected header {alg, nonce,
 * url} plus "jwk" when `kid` is NULL (newAccount, revocation by certificate
 * key) or "kid" otherwise.  `payload` is the JSON text to sign; NULL means
 * POST-as-GET (empty payload, §6.3).  ECDSA signatures are the raw R||S form
 * of RFC 7518 §3.4, not DER.  *out is the flattened JWS JSON text (free()).
 */
enum cp_code acme_jws_sign(const struct acme_key *k, const char *kid, const char *nonce,
                           const char *url, const char *payload, char **out, struct cp_err *err);

/*
 * The inner JWS of a key change (RFC 8555 §7.3.5): protected header {alg,
 * jwk, url} of `k` (the new key), no nonce and no kid, over `payload` (JSON
 * text).  *out is the flattened JWS JSON text (free()), to be the payload of
 * the outer request.
 */
enum cp_code acme_jws_sign_inner(const struct acme_key *k, const char *url, const char *payload,
                                 char **out, struct cp_err *err);

/*
 * External Account Binding (RFC 8555 §7.3.4): a JWS over the account key's JWK,
 * protected header {alg: "HS256", kid: eab_kid, url: newAccount URL}, MAC'd
 * with the base64url-decoded `hmac_key_b64url`.  *out is a new JSON object to
 * put in the newAccount payload as "externalAccountBinding".
 */
enum cp_code acme_eab_sign(const struct acme_key *account_key, const char *eab_kid,
                           const char *hmac_key_b64url, const char *url, json_t **out,
                           struct cp_err *err);

/* ------------------------------------------------------------- transport */

struct acme_http_opts {
    const char *ca_bundle;   /* trusted CA file (PEM) replacing the system store, NULL:
                                system store only.  Verification is never turned off. */
    bool ca_system;          /* with ca_bundle: trust the system store as well */
    const char *user_agent;  /* NULL: "certpilot/<version>" */
    long connect_timeout_ms; /* 0: 10000 */
    long timeout_ms;         /* whole request, 0: 30000 */
    size_t max_response;     /* body cap in bytes, 0: 1 MiB; bigger answers fail */
    /* Called once per request after it completes, for -v logging: method, URL,
     * HTTP status (0 when no response).  Never sees bodies or headers. */
    void (*trace)(void *ctx, const char *method, const char *url, long status);
    void *trace_ctx;
};

struct acme_response {
    long status; /* HTTP status */
    char *body;  /* NUL-terminated, body_len bytes, may be NULL if empty */
    size_t body_len;
    char *content_type; /* without parameters, lower case, or NULL */
    char *location;     /* Location header or NULL */
    char *replay_nonce; /* Replay-Nonce header or NULL */
    char *retry_after;  /* raw Retry-After header or NULL */
    char **links;       /* raw Link header values in order received */
    size_t nlinks;
};

struct acme_http; /* opaque: one libcurl easy handle, reused (keep-alive, HTTP/2) */

enum cp_code acme_http_new(const struct acme_http_opts *opts, struct acme_http **out,
                           struct cp_err *err);

/*
 * One request.  `method` is "GET", "HEAD" or "POST"; for POST `body` is sent
 * with Content-Type application/jose+json.  Any HTTP status is CP_OK (the
 * caller interprets it); CP_ENET for connection/TLS/time-out failures (message
 * names the URL and curl's reason), CP_EPROTO for a body over max_response or
 * a header line over 8 KiB.  `resp` is cleared first; clear it after use.
 */
enum cp_code acme_http_request(struct acme_http *h, const char *method, const char *url,
                               const char *body, struct acme_response *resp, struct cp_err *err);

void acme_response_clear(struct acme_response *r);
void acme_http_free(struct acme_http *h);

/*
 * The URL of the first Link with relation `rel` (e.g. "up", "alternate",
 * "index") starting at index *pos of r->links; *pos is advanced so repeated
 * calls return every match.  Returns a heap string or NULL when none is left.
 * Handles several links in one header value, and relative references resolved
 * against `base`.
 */
char *acme_link_next(const struct acme_response *r, const char *rel, const char *base, size_t *pos);

/* ------------------------------------------------------ problem documents */

struct acme_subproblem {
    char *type;
    char *detail;
    char *ident_type; /* "dns", "ip", or NULL */
    char *ident_value;
};

struct acme_problem {
    char *type;   /* e.g. "urn:ietf:params:acme:error:badNonce"; never NULL after parse */
    char *detail; /* may be NULL */
    int status;   /* the document's "status" member, 0 if absent */
    struct acme_subproblem *subproblems;
    size_t nsubproblems;
    size_t subproblems_dropped; /* subproblems beyond the bound, not kept */
    /* When the CA said to ask again (its Retry-After, any size or an HTTP
     * date): Unix seconds, or 0 when it did not say.  Set by acme_post() and
     * the other requests of the client, not by acme_problem_parse(). */
    long long retry_at;
};

/*
 * Parse a problem document.  Bounded: at most 100 subproblems are kept (the
 * count of the others in subproblems_dropped) and strings longer than 4 KiB
 * are cut.  A body that is not a JSON object with a
 * string "type" yields CP_EPROTO; the caller then reports the HTTP status.
 */
enum cp_code acme_problem_parse(const char *body, size_t len, struct acme_problem *out,
                                struct cp_err *err);
void acme_problem_clear(struct acme_problem *p);

/* True when type is "urn:ietf:params:acme:error:<name>". */
bool acme_problem_is(const struct acme_problem *p, const char *name);

/*
 * Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, relative to
 * `now`.  Returns the wait in seconds (0 for a date in the past), or -1 when
 * the value is missing or unparsable.  Capped at 86400.
 */
/* "scheme://host:port" of an absolute URL, lower case, the port explicit
 * (the scheme's default when absent), into `out`; false when `url` is not an
 * absolute URL or it does not fit. */
bool acme_url_origin(const char *url, char *out, size_t size);

long acme_retry_after(const char *value, time_t now);

/* The pause in milliseconds before poll number `attempt` + 1 of an
 * authorization or order whose last answer was still pending or processing
 * (attempt 0: after the first answer).  A Retry-After of `retry_after_s`
 * seconds (> 0) is followed, bounded at 10 s; otherwise 20 ms doubling per
 * attempt up to 2 s.  Pure; the client's wait bound (deadline) is the
 * caller's. */
long acme_poll_delay_ms(unsigned attempt, long retry_after_s);

/* The same as a point in time: Unix seconds (`now` for a date in the past),
 * not capped at a day but at a year ahead; -1 when missing or unparsable. */
long long acme_retry_at(const char *value, time_t now);

/*
 * An RFC 3339 date-time as ACME objects carry them ("expires", "validated"):
 * 2026-11-24T08:15:30Z, with optional fractional seconds (ignored), "t"/"z"
 * in lower case, or a numeric offset (+01:00).  Sets *out to Unix seconds and
 * returns true; false for anything else (never reads past the string's NUL).
 */
bool acme_timestamp_parse(const char *s, long long *out);

/* ------------------------------------------------------------ identifiers */

/* RFC 8738: IP address identifiers.  An IPv6 text form is at most 45
 * characters (RFC 4291 §2.2 with an embedded IPv4 address). */
#define ACME_IP_MAX      46
#define ACME_REVERSE_MAX 74 /* "x.x. ... .ip6.arpa": 32 nibbles, 8 more, NUL */

/* True when `name` is an IPv4 or IPv6 address literal (inet_pton; no
 * brackets, no zone index); `out` (may be NULL) then gets its normalized
 * text form (inet_ntop: "::1", "2001:db8::1", "127.0.0.1"). */
bool acme_ip_normalize(const char *name, char out[ACME_IP_MAX]);

/* RFC 8738 §6: the reverse-DNS name of an IP address, which the CA sends as
 * the SNI of a tls-alpn-01 validation: "1.0.0.127.in-addr.arpa", or the 32
 * nibbles of an IPv6 address in reverse, dot-separated, + ".ip6.arpa".
 * CP_EINVAL when `ip` is no address literal. */
enum cp_code acme_ip_reverse_name(const char *ip, char out[ACME_REVERSE_MAX], struct cp_err *err);

/* Can challenge `type` validate identifier `ident` ("*." kept for
 * wildcards, or an IP literal)?  CP_EINVAL with the reason when it cannot:
 * dns-01 and dns-persist-01 for an IP address (RFC 8738 §7 defines only
 * http-01 and tls-alpn-01 for them), http-01 and tls-alpn-01 for a wildcard
 * (RFC 8555 §7.1.3, RFC 8737 §3).  Unknown types are not judged (CP_OK). */
enum cp_code acme_ident_method_check(const char *ident, const char *type, struct cp_err *err);

/* ------------------------------------------------- CSR and certificates */

/*
 * A PKCS#10 CSR (RFC 2986) for `names` (dns identifiers, "*." allowed, and
 * IP address literals, which go in as iPAddress and never as the CN),
 * signed by `cert_key`: every name in subjectAltName, the first name that fits
 * in 64 octets as the subject CN (CAs ignore it; some tools still show it).
 * *der is heap memory (free()).  (acme/csr.c)
 */
enum cp_code acme_csr_make(const struct acme_key *cert_key, const char *const *names, size_t n,
                           unsigned char **der, size_t *der_len, struct cp_err *err);

struct acme_chain; /* opaque: a parsed PEM certificate chain, leaf first (acme/cert.c) */

/* Parse a PEM chain as served by the CA's certificate URL (leaf first, then
 * intermediates).  Anything that is not a certificate, or no certificate at
 * all, is CP_EPROTO naming `what`.  At most 10 certificates. */
enum cp_code acme_chain_parse(const char *pem, size_t len, const char *what,
                              struct acme_chain **out, struct cp_err *err);
size_t acme_chain_count(const struct acme_chain *c);

/* PEM texts for the files web servers expect (heap strings, free()):
 * cert = leaf only, chain = everything after the leaf, fullchain = all. */
enum cp_code acme_chain_pem(const struct acme_chain *c, char **cert, char **chain, char **fullchain,
                            struct cp_err *err);

/* The leaf's public key is `key`'s: CP_EPROTO otherwise. */
enum cp_code acme_chain_check_key(const struct acme_chain *c, const struct acme_key *key,
                                  struct cp_err *err);

/* Every one of `names` is in the leaf's subjectAltName (exact, case-insensitive;
 * "*.example.com" only matches the SAN "*.example.com"; an IP literal matches
 * an iPAddress of the same octets): CP_EPROTO naming the first missing one
 * otherwise. */
enum cp_code acme_chain_check_names(const struct acme_chain *c, const char *const *names, size_t n,
                                    struct cp_err *err);

/* The leaf's validity (UTC seconds since the epoch). */
time_t acme_chain_not_before(const struct acme_chain *c);
time_t acme_chain_not_after(const struct acme_chain *c);

/* Common name of the issuer of the last certificate in the chain (the root
 * it chains to), for --preferred-chain; "" when absent.  Borrowed. */
const char *acme_chain_top_issuer_cn(const struct acme_chain *c);

/* Borrowed X509 of certificate i (0 = leaf), for further OpenSSL work. */
struct x509_st *acme_chain_x509(const struct acme_chain *c, size_t i);

void acme_chain_free(struct acme_chain *c);

/* ----------------------------------------------------- challenge solvers */

/* Key authorization (RFC 8555 §8.1): token "." thumbprint.  Heap string. */
char *acme_key_authorization(const char *token, const char *thumbprint);

/* dns-01 TXT value (RFC 8555 §8.4): base64url(SHA-256(key authorization)),
 * 43 characters + NUL. */
enum cp_code acme_dns01_txt(const char *key_authz, char out[44], struct cp_err *err);

/*
 * http-01 webroot (RFC 8555 §8.3): write the key authorization to
 * <webroot>/.well-known/acme-challenge/<token>, creating the two directories
 * 0755 if missing and the file 0644 (the web server must read it).  The token
 * must be base64url (refused otherwise: it becomes a file name).  `*created`
 * (start at 0, one per webroot, kept by the caller) records which directories
 * were created; acme_webroot_remove() deletes the file and those directories
 * once they are empty, and is safe to call when nothing was written.
 */
enum cp_code acme_webroot_write(const char *webroot, const char *token, const char *key_authz,
                                unsigned *created, struct cp_err *err);
void acme_webroot_remove(const char *webroot, const char *token, unsigned *created);

/* Can we create files under <webroot>/.well-known/acme-challenge/?  For
 * --dry-run; creates and removes a probe file. */
enum cp_code acme_webroot_check(const char *webroot, struct cp_err *err);

/*
 * Built-in challenge servers for --standalone, each on its own thread,
 * listening on `addr` (NULL: all addresses, IPv4 and IPv6 where available)
 * and `port`, for the duration of an order.  http-01 answers only
 * GET /.well-known/acme-challenge/<token> for registered tokens (404
 * otherwise); tls-alpn-01 (RFC 8737) completes only handshakes offering ALPN
 * "acme-tls/1" with an SNI of a registered name, presenting a self-signed
 * certificate for that name with the critical id-pe-acmeIdentifier extension
 * holding SHA-256 of the key authorization.  Requests and connections are
 * bounded in size and time: each server's thread serves up to 256
 * connections at once without blocking on any, each closed 5 s after it was
 * accepted if not answered by then, and the oldest unanswered one is dropped
 * when a new one would exceed the 256.  CP_EINVAL for an `addr` that is not a
 * numeric IPv4/IPv6 address; CP_EIO naming the port when it cannot be bound
 * (e.g. in use, or below 1024 without privilege).
 */
struct acme_solver_server; /* opaque (acme/solver_http01.c, acme/solver_tlsalpn01.c) */

enum cp_code acme_http01_server_start(const char *addr, int port, struct acme_solver_server **out,
                                      struct cp_err *err);
enum cp_code acme_tlsalpn01_server_start(const char *addr, int port,
                                         struct acme_solver_server **out, struct cp_err *err);

/*
 * Tokens the http-01 server was not given (acme_solver_server_add) may be
 * answered from elsewhere, e.g. a store a fleet of hosts shares: find()
 * sets *key_authz (heap, wiped and freed by the server) or leaves it NULL
 * for a token it does not know (then 404).  find() may block: it runs on
 * worker threads of the server, never on the thread that answers the other
 * clients; at most 64 look-ups wait at once (more are answered 503 at once),
 * and a look-up that takes longer than timeout_ms is answered 503 (find()
 * still returns to its thread, whose result is then dropped).  A look-up
 * error (not CP_OK) is answered 503 too.  served(), when not NULL, is called
 * on the server's thread after each 200 answer, with looked_up saying
 * whether find() gave it.  Both must be thread-safe; `ctx` must outlive the
 * server (acme_solver_server_stop() waits for running look-ups).
 */
struct acme_http01_lookup {
    enum cp_code (*find)(void *ctx, const char *token, char **key_authz, struct cp_err *err);
    void (*served)(void *ctx, const char *token, bool looked_up);
    void *ctx;
    unsigned timeout_ms; /* per look-up; 0: 3000 */
};
/* acme_http01_server_start() with a look-up for unknown tokens (NULL: none). */
enum cp_code acme_http01_server_start_lookup(const char *addr, int port,
                                             const struct acme_http01_lookup *lookup,
                                             struct acme_solver_server **out, struct cp_err *err);

/* Register a challenge: for http-01 `name_or_token` is the token, for
 * tls-alpn-01 the dns name (not wildcard) or an IP address literal, whose
 * certificate then names the address (iPAddress) and which is served to the
 * SNI of its reverse-DNS name (RFC 8738 §6).  Thread-safe. */
enum cp_code acme_solver_server_add(struct acme_solver_server *s, const char *name_or_token,
                                    const char *key_authz, struct cp_err *err);

/* Requests answered with a registered challenge so far (for tests and -v). */
unsigned long acme_solver_server_hits(const struct acme_solver_server *s);

/* Wait up to `ms` milliseconds until the server has answered a request for
 * the challenge registered as `name_or_token` (as in acme_solver_server_add):
 * true at once when it already has, false when the time is up (or the name is
 * not registered).  Thread-safe.  For acme_solver.await_served. */
bool acme_solver_server_await(struct acme_solver_server *s, const char *name_or_token, long ms);

/* Stop listening, join the thread, free; NULL is a no-op. */
void acme_solver_server_stop(struct acme_solver_server *s);

/* Can `port` be bound on `addr` now?  For --dry-run. */
enum cp_code acme_port_check(const char *addr, int port, struct cp_err *err);

/* The RFC 8737 certificate alone, for tests: self-signed, SAN = name (an
 * iPAddress for an IP literal), acmeIdentifier critical.  *key_out and *cert_out are owned by the
 * caller (EVP_PKEY_free / X509_free). */
enum cp_code acme_tlsalpn01_cert(const char *name, const char *key_authz,
                                 struct evp_pkey_st **key_out, struct x509_st **cert_out,
                                 struct cp_err *err);

/* ---------------------------------------------------------------- client */

/* A certificate profile the CA offers (draft-aaron-acme-profiles §3:
 * meta.profiles maps a name to a description for people). */
#define ACME_PROFILES_MAX       16   /* more in a directory are not kept */
#define ACME_PROFILE_NAME_MAX   64   /* longer names, or other characters, are skipped */
#define ACME_PROFILE_DESC_MAX   1024 /* longer descriptions are cut */
#define ACME_ISSUER_DOMAINS_MAX 10   /* draft-ietf-acme-dns-persist §3.1 */
struct acme_profile {
    char *name;        /* 1 to ACME_PROFILE_NAME_MAX of A-Z a-z 0-9 . _ - */
    char *description; /* "" when the CA gave none, or not a string */
};

/* The directory (RFC 8555 §7.1.1).  Strings are NULL when absent. */
struct acme_directory {
    char *new_nonce, *new_account, *new_order, *revoke_cert, *key_change, *renewal_info;
    char *terms_of_service, *website;
    char **caa_identities; /* meta.caaIdentities, may be empty */
    size_t ncaa_identities;
    bool external_account_required;
    struct acme_profile *profiles; /* meta.profiles in the CA's order; may be empty */
    size_t nprofiles;
    size_t profiles_dropped; /* entries not kept: over the count, bad name */
    /* meta.issuerDomainNames (draft-ietf-acme-dns-persist §3.2): the issuer
     * names a dns-persist-01 record may use, for records published before
     * any order.  Empty when absent or nonconforming (the draft: then
     * unavailable): not 1 to ACME_ISSUER_DOMAINS_MAX lower-case names of at
     * most 253 octets without a trailing dot. */
    char **issuer_domain_names;
    size_t nissuer_domain_names;
};

/* Parse a directory object (untrusted: strings bounded as above).  CP_EPROTO
 * naming `url` for a body that is no JSON object or lacks newNonce,
 * newAccount or newOrder.  Clear `out` afterwards, also on failure. */
enum cp_code acme_directory_parse(const char *body, size_t len, const char *url,
                                  struct acme_directory *out, struct cp_err *err);
void acme_directory_clear(struct acme_directory *d); /* frees and zeroes; NULL is a no-op */

/* The description of profile `name` (exact, case-sensitive) when the
 * directory offers it, else NULL.  Borrowed from `d`. */
const char *acme_directory_profile(const struct acme_directory *d, const char *name);

/* How an order asks for a profile (certbot's --preferred-profile and
 * --required-profile). */
enum acme_profile_mode {
    ACME_PROFILE_PREFERRED, /* used when offered, left out otherwise */
    ACME_PROFILE_REQUIRED   /* the issuance fails before newOrder when not offered */
};

/* Decide the profile to put in newOrder: *use = name when the directory
 * offers it; NULL when `name` is NULL, or when it is preferred and not
 * offered.  Required and not offered: CP_EINVAL whose message names the
 * profile and lists the profiles offered (or says there are none). */
enum cp_code acme_profile_choose(const struct acme_directory *d, const char *name,
                                 enum acme_profile_mode mode, const char **use, struct cp_err *err);

struct acme_client_opts {
    const char *directory_url; /* https URL */
    struct acme_http_opts http;
    unsigned deadline_s; /* bound on every wait for the CA (polls); 0: 300 */
    /* -v progress: one line per step, never secrets.  May be NULL. */
    void (*log)(void *ctx, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 2, 3)))
#endif
        ;
    void *log_ctx;
};

struct acme_client; /* opaque: transport, directory, nonce, account (acme/client.c) */

/* Connect and fetch the directory.  A problem from the CA fills `prob` (which
 * must then be cleared) and returns CP_ECA. */
enum cp_code acme_client_new(const struct acme_client_opts *o, struct acme_client **out,
                             struct acme_problem *prob, struct cp_err *err);
const struct acme_directory *acme_client_directory(const struct acme_client *c);
void acme_client_free(struct acme_client *c);

/* The account used to sign from now on (borrowed; kid NULL until known). */
void acme_client_set_account(struct acme_client *c, const struct acme_key *key, const char *kid);
const char *acme_client_kid(const struct acme_client *c);

/*
 * A signed POST (payload NULL: POST-as-GET).  Nonces come from every response;
 * newNonce is asked only when none is held.  badNonce is retried with the fresh
 * nonce up to 15 times; rateLimited and 503 with a Retry-After of at most 60 s
 * are retried once after waiting.  Any other error status: CP_ECA with `prob`
 * filled.  CP_OK leaves the response in `resp` (clear it).
 */
enum cp_code acme_post(struct acme_client *c, const char *url, const char *payload,
                       struct acme_response *resp, struct acme_problem *prob, struct cp_err *err);

/* Requests sent so far (for -v and the benchmark). */
unsigned long acme_client_requests(const struct acme_client *c);

/* ---------------------------------------------------------------- account */

struct acme_account_req {
    const char *const *contacts; /* "mailto:..." */
    size_t ncontacts;
    bool agree_tos;
    bool only_existing;  /* onlyReturnExisting: look up, never create */
    const char *eab_kid; /* both or neither */
    const char *eab_hmac_key;
};

/* newAccount (RFC 8555 §7.3).  On success the client signs with `key` and the
 * returned account URL; *kid (heap string) is that URL and *status the
 * account's status.  CP_ECA with `prob` when the CA refuses (e.g.
 * accountDoesNotExist for only_existing). */
enum cp_code acme_account_register(struct acme_client *c, const struct acme_key *key,
                                   const struct acme_account_req *req, char **kid,
                                   struct acme_problem *prob, struct cp_err *err);

/*
 * The account object (RFC 8555 §7.1.2) and what an account can do after it
 * exists (§7.3.2 update and fetch, §7.3.5 key change, §7.3.6
 * deactivation), in acme/account.c.  Each request is signed with the
 * client's account key and kid (acme_client_set_account() or
 * acme_account_register() first); a refusal is CP_ECA with `prob` filled.
 */
#define ACME_ACCOUNT_CONTACTS_MAX 16 /* more in an answer is a protocol error */

struct acme_account {
    char *status;    /* "valid", "deactivated" or "revoked" */
    char **contacts; /* as the CA holds them, e.g. "mailto:..." */
    size_t ncontacts;
    char *orders;            /* the orders list URL, or NULL when the CA names none */
    int terms_agreed;        /* termsOfServiceAgreed: 1 or 0, -1 when the CA does not say */
    char key_thumbprint[44]; /* RFC 7638 thumbprint of the object's "key", "" when absent */
};

/* Parse an account object (untrusted, bounded: at most 64 KiB,
 * ACME_ACCOUNT_CONTACTS_MAX contacts of at most 1024 bytes, an orders URL of
 * at most 2048).  A missing or unknown status, or any member of the wrong
 * type or size, is CP_EPROTO.  Clear `out` afterwards, also on failure. */
enum cp_code acme_account_parse(const char *body, size_t len, struct acme_account *out,
                                struct cp_err *err);
void acme_account_clear(struct acme_account *a); /* frees and zeroes; NULL is a no-op */

/* The account object as the CA has it now: POST-as-GET to the account URL
 * (§6.3; the "empty update" {} of §7.3.2's older wording is refused by some
 * CAs, Pebble among them). */
enum cp_code acme_account_fetch(struct acme_client *c, struct acme_account *out,
                                struct acme_problem *prob, struct cp_err *err);

/* Replace the contacts (§7.3.2); n == 0 clears them ("contact": []).  *out is
 * the account object the CA answered with. */
enum cp_code acme_account_update(struct acme_client *c, const char *const *contacts, size_t n,
                                 struct acme_account *out, struct acme_problem *prob,
                                 struct cp_err *err);

/* Deactivate the account (§7.3.6).  CP_EPROTO when the CA answers with
 * another status than "deactivated". */
enum cp_code acme_account_deactivate(struct acme_client *c, struct acme_account *out,
                                     struct acme_problem *prob, struct cp_err *err);

/* The payload of a keyChange request (§7.3.5): the inner JWS signed by
 * `new_key` over {"account": account_url, "oldKey": JWK of old_key}, with
 * url = key_change_url.  Heap JSON text (free()).  Exposed for tests. */
enum cp_code acme_key_change_payload(const struct acme_key *old_key, const struct acme_key *new_key,
                                     const char *account_url, const char *key_change_url,
                                     char **out, struct cp_err *err);

/* Roll the account over to `new_key` (borrowed; must outlive the client's
 * use of it): the outer JWS is signed by the current key with its kid.  On
 * success the client signs with `new_key` from then on; on any failure it
 * keeps the old key.  CP_ECA without a problem document (type NULL) when the
 * directory names no keyChange. */
enum cp_code acme_account_key_change(struct acme_client *c, const struct acme_key *new_key,
                                     struct acme_problem *prob, struct cp_err *err);

/* ------------------------------------------------------------------ issue */

/* Callbacks that make a challenge answerable and undo it.  `type` is
 * "http-01", "dns-01", "tls-alpn-01" or "dns-persist-01"; `domain` is the
 * identifier without "*." (an IP identifier in its normalized text form);
 * deploy returns CP_OK when the CA may now validate.  For dns-persist-01
 * (draft-ietf-acme-dns-persist) there is no token and no key authorization:
 * both are "", and deploy only confirms that the standing record is in
 * place (acme/ does not check it; caa_persist_evaluate() can).  supports() says
 * whether `type` may be used for `ident` (the order's identifier, "*." kept
 * for wildcards): a solver being set up, and anything else the caller knows,
 * such as the challenge types CAA allows for that name. */
struct acme_solver {
    bool (*supports)(void *ctx, const char *type, const char *ident);
    enum cp_code (*deploy)(void *ctx, const char *type, const char *domain, const char *token,
                           const char *key_authz, struct cp_err *err);
    void (*cleanup)(void *ctx, const char *type, const char *domain, const char *token,
                    const char *key_authz);
    /* Optional (NULL: the order just sleeps between polls).  For a challenge
     * answered by a built-in server: block up to `ms` milliseconds until the
     * CA's validation request for it was answered, and return 1 as soon as it
     * was (the order then polls the authorization at once), 0 when `ms`
     * passed.  For any other challenge (webroot, DNS): return -1 at once,
     * without waiting (the order then sleeps by its schedule). */
    int (*await_served)(void *ctx, const char *type, const char *domain, const char *token,
                        long ms);
    void *ctx;
};

/* An authorization that was already valid when the order was created
 * (RFC 8555 §7.1.4: the CA may reuse one it validated earlier). */
struct acme_reused_authz {
    const char *ident;   /* "*." kept for wildcards */
    const char *type;    /* type of the challenge that validated it; NULL if none says */
    long long validated; /* that challenge's "validated" time, Unix seconds; -1 unknown */
};

struct acme_issue_req {
    /* dns identifiers ("*." for wildcards) and IP address literals (RFC 8738:
     * sent as type "ip" in their inet_ntop form, iPAddress in the CSR) */
    const char *const *names;
    size_t n;
    const char *const *methods; /* challenge types in order of preference */
    size_t nmethods;
    const struct acme_key *cert_key;
    const char *preferred_chain; /* issuer CN of the root wanted, or NULL */
    /* RFC 9773 §5: ARI cert ID of the certificate this order replaces, or
     * NULL.  Sent only when the directory offers renewalInfo. */
    const char *replaces;
    /* draft-aaron-acme-profiles: "profile" in newOrder, or NULL for none.
     * Decide it with acme_profile_choose() first (sent as given). */
    const char *profile;
    struct acme_solver solver;
    /* Called once before finalize with the order's reused authorizations
     * (n may be 0: the caller may also check that it may still finalize,
     * e.g. that it holds a lock); any code but CP_OK stops the issuance with
     * that code before finalize is sent.  NULL: not asked. */
    enum cp_code (*before_finalize)(void *ctx, const struct acme_reused_authz *reused, size_t n,
                                    struct cp_err *err);
    void *before_finalize_ctx;
};

/* How an authorization of the order was satisfied. */
struct acme_authz_used {
    char *ident; /* "*." kept for wildcards */
    char *type;  /* challenge type; NULL for a reused one that names none */
    bool reused; /* valid before this order: nothing was deployed */
};

struct acme_issue_result {
    struct acme_authz_used *authzs; /* as far as the order got */
    size_t nauthzs;
    char *order_url;
    char *cert_url;
    char *pem;               /* the chain chosen, PEM, leaf first */
    char *failed_identifier; /* set when a challenge failed */
    char *failed_type;
    struct acme_problem problem; /* the CA's problem (order, challenge, finalize) */
    unsigned long requests;      /* HTTP requests this issuance sent */
    /* newOrder with `replaces` was refused (alreadyReplaced, or malformed or
     * unauthorized naming "replaces") and the order was placed again without it. */
    bool replaces_dropped;
    /* The order's "profile" member as the CA answered (at most
     * ACME_PROFILE_NAME_MAX characters), NULL when it names none. */
    char *profile;
};

/*
 * One whole issuance (RFC 8555 §7.4-§7.4.2): newOrder, every authorization,
 * for each pending one the first of req->methods that it offers and the
 * solver supports (deploy, answer, poll), finalize with a CSR of the names,
 * poll, download, and pick the alternate chain whose top issuer CN is
 * preferred_chain when asked.  Every deployed challenge is cleaned up, also
 * on failure.  CP_ECHALLENGE when validation failed (failed_* and problem
 * say which and why), CP_ECA for other refusals, CP_ETIMEOUT when the
 * deadline passed.  Clear the result with acme_issue_result_clear().
 */
enum cp_code acme_issue(struct acme_client *c, const struct acme_issue_req *req,
                        struct acme_issue_result *res, struct cp_err *err);
void acme_issue_result_clear(struct acme_issue_result *r);

/* ------------------------------------------------------------------- ARI */

/*
 * ACME Renewal Information (RFC 9773, acme/ari.c): the CA's suggested
 * renewal window for a certificate.  Choosing a time in the window, and
 * when to ask again, is the caller's policy.
 */

/* RFC 9773 §4.1 cert ID of the chain's leaf: base64url(AKI keyIdentifier)
 * "." base64url(DER content octets of the serial).  *out is a heap string
 * (free()).  CP_EINVAL when the leaf has no AKI keyIdentifier. */
enum cp_code acme_ari_cert_id(const struct acme_chain *c, char **out, struct cp_err *err);

struct acme_renewal_info {
    long long start, end;  /* suggestedWindow, Unix seconds; end > start */
    char *explanation_url; /* http(s) URL for the operator, or NULL */
    long long retry_after; /* seconds until asking again (0 from _parse) */
};

/* Parse a renewalInfo object (untrusted: bounded, strict on the window).
 * An explanationURL that is not a short http(s) URL is dropped, not an
 * error.  CP_EPROTO for anything else that is wrong.  Clear `out` after. */
enum cp_code acme_renewal_info_parse(const char *body, size_t len, struct acme_renewal_info *out,
                                     struct cp_err *err);

/* Unauthenticated GET <renewalInfo>/<cert_id> (RFC 9773 §4.2).  retry_after
 * comes from Retry-After, clamped to [60 s, 1 day]; 6 hours when absent or
 * unreadable (§4.3.2, §4.3.3).  CP_EINVAL when the directory has no
 * renewalInfo or cert_id is malformed; CP_ECA with the problem's type and
 * detail in `err` for a non-2xx answer. */
enum cp_code acme_renewal_info_get(struct acme_client *c, const char *cert_id,
                                   struct acme_renewal_info *out, struct cp_err *err);

/* Frees explanation_url and zeroes; NULL is a no-op. */
void acme_renewal_info_clear(struct acme_renewal_info *r);

/* ------------------------------------------------------------ revocation */

/*
 * Revocation (RFC 8555 §7.6, acme/revoke.c): revokeCert for a certificate,
 * signed either by the account (kid) or by the certificate's own key (jwk),
 * and the reason codes a subscriber may give.  Deciding which certificate to
 * revoke and what to do with it afterwards is the caller's business.
 */

/* No "reason" member in the request (the CA records the RFC 5280 default,
 * unspecified). */
#define ACME_REVOKE_NO_REASON (-1)

/* An RFC 5280 §5.3.1 CRLReason that ACME CAs accept from a subscriber. */
struct acme_revoke_reason {
    const char *name; /* as RFC 5280 spells it: "keyCompromise" */
    int code;         /* 1 */
};

/* The accepted reasons, in code order: unspecified (0), keyCompromise (1),
 * affiliationChanged (3), superseded (4), cessationOfOperation (5).  A static
 * table of *n entries. */
const struct acme_revoke_reason *acme_revoke_reasons(size_t *n);

/* A reason name (case-insensitive) to its code; CP_EINVAL naming `name` and
 * listing the accepted names for anything else. */
enum cp_code acme_revoke_reason_parse(const char *name, int *code, struct cp_err *err);

/* The name of an accepted code, NULL for any other. */
const char *acme_revoke_reason_name(int code);

/* The revokeCert payload: {"certificate": base64url(der), "reason": code},
 * "reason" left out for ACME_REVOKE_NO_REASON.  CP_EINVAL for an empty
 * certificate or a code not in the table.  *out is JSON text (free()). */
enum cp_code acme_revoke_payload(const unsigned char *der, size_t der_len, int reason, char **out,
                                 struct cp_err *err);

/* The leaf's serial number in lower-case hex without leading zeros (as CAs
 * print it), into `out` of `size` bytes (CP_EINVAL when it does not fit;
 * 41 bytes hold any serial RFC 5280 §4.1.2.2 allows). */
enum cp_code acme_chain_serial_hex(const struct acme_chain *c, char *out, size_t size,
                                   struct cp_err *err);

/*
 * Ask the CA to revoke the leaf of `cert`.  `cert_key` NULL: signed by the
 * client's account (acme_client_set_account), which must have issued the
 * certificate or hold authorizations for all its names.  Otherwise signed by
 * `cert_key` with its JWK and no account; the leaf's public key must be
 * cert_key's (CP_EINVAL otherwise, nothing sent).  A refusal (alreadyRevoked,
 * unauthorized, badRevocationReason, ...) is CP_ECA with `prob` filled (clear
 * it); a directory without revokeCert is CP_EPROTO.
 */
enum cp_code acme_revoke_cert(struct acme_client *c, const struct acme_chain *cert, int reason,
                              const struct acme_key *cert_key, struct acme_problem *prob,
                              struct cp_err *err);

#endif
