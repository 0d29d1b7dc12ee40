/*
 * caa/caa.h - CAA (RFC 8659, RFC 8657) checked the way Let's Encrypt checks it.
 *
 * The design reference is shared/spec/caa-letsencrypt.md ("spec §N" below).
 * The work is split into steps that can be used and tested on their own:
 *
 *   1. Names (caa/name.c): validate and normalize an identifier, and list the
 *      names whose CAA RRset is looked up (the name and each parent up to the TLD).
 *   2. Resolution (caa/resolve.c): query CAA for many names at once over c-ares
 *      and classify each answer (spec §3).  Does I/O, as does step 7.
 *   3. Values (caa/parse.c): parse an issue/issuewild value (spec §6).
 *   4. Policy (caa/policy.c): a pure function from the lookups of one identifier
 *      to a decision with a verdict for every record (spec §4, §5, §7, §8).
 *   5. Explanation (caa/explain.c): the CA's problem document (spec §9) word for
 *      word, an explanation in plain words and the records that would fix it.
 *   6. Checking (caa/check.c): glue for a batch of identifiers: dedupe names,
 *      resolve all of them in one event loop, evaluate and explain each.
 *   7. Authoritative servers (caa/zone.c): the nameservers of the zone holding
 *      a name, and the dns-01 propagation wait: ask each of them directly until
 *      all serve a TXT value.  The other module doing I/O; the DNS plumbing it
 *      shares with caa/resolve.c is in caa/dns.c (private header caa/dns_int.h).
 *   8. Diagnosis (caa/diagnose.c and its stages caa/diag_*.c, private header
 *      caa/diagnose_int.h): `doctor`: the verdict of step 6 plus every
 *      authoritative server of every zone on the CAA path asked directly, and
 *      findings with evidence and a fix (spec §11).  Does I/O, classifies purely
 *      (caa/diag_classify.c).
 *
 * What it does not do: ACME, printing, exiting, reading configuration files.
 * Every function that can fail returns an enum cp_code and fills the optional
 * struct cp_err with a message naming the input.
 */
#ifndef CP_CAA_CAA_H
#define CP_CAA_CAA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define CAA_NAME_MAX     253 /* octets of a domain name in text form, no trailing dot */
#define CAA_LABEL_MAX    63
#define CAA_IDENT_MAX    256 /* CAA_NAME_MAX plus "*." plus NUL */
#define CAA_EDE_TEXT_MAX 512 /* bytes of an Extended DNS Error's text kept */

/* ---------------------------------------------------------------- names */

/*
 * Validate `in` as a DNS identifier and normalize it (spec §2): lower case, no
 * trailing dot.  A leading "*." marks a wildcard: `ident` keeps it, `base` does
 * not, `*wildcard` is set.  Rejected (CP_EINVAL, message naming `in` and the
 * reason): empty name or label, a label over 63 octets, a name over 253,
 * characters outside letters/digits/hyphen, a label starting or ending with a
 * hyphen, '*' anywhere but as the whole leftmost label, IP address literals.
 * `ident` and `base` are caller buffers of CAA_IDENT_MAX bytes.
 */
enum cp_code caa_name_normalize(const char *in, char ident[CAA_IDENT_MAX], char base[CAA_IDENT_MAX],
                                bool *wildcard, struct cp_err *err);

/*
 * The names to query for a normalized base name, from the name itself to the
 * TLD: "a.b.example.com" gives "a.b.example.com", "b.example.com",
 * "example.com", "com".  Fills `out` with pointers into `base` (borrowed: valid
 * while `base` is) and returns how many, at most `max`.
 */
size_t caa_name_chain(const char *base, const char **out, size_t max);

/* -------------------------------------------------------------- records */

/* Tags Let's Encrypt recognizes (spec §5); compared case-insensitively.  The
 * last three are recognized and ignored, even when flagged critical. */
enum caa_tag {
    CAA_TAG_ISSUE,
    CAA_TAG_ISSUEWILD,
    CAA_TAG_IODEF,
    CAA_TAG_ISSUEMAIL,
    CAA_TAG_ISSUEVMC,
    CAA_TAG_UNKNOWN
};

/* One CAA resource record as received.  Owned by the caa_lookup holding it.
 * Tags and values are byte strings from the network: both may hold NUL bytes,
 * so always use the lengths (spec §5: `issue\000` is not `issue`). */
struct caa_record {
    uint8_t flags;
    char *tag; /* tag_len bytes as received (case kept), NUL-terminated */
    size_t tag_len;
    unsigned char *value; /* value_len raw bytes, NUL-terminated */
    size_t value_len;
};

/* The kind of a tag of `len` bytes; a tag holding any byte outside the name
 * of a known tag (a NUL included) is CAA_TAG_UNKNOWN. */
enum caa_tag caa_tag_kind(const char *tag, size_t len);

/* Critical per Let's Encrypt: flag bit 128, or bit 1 (spec §5). */
bool caa_record_critical(const struct caa_record *r);

/*
 * A parsed issue/issuewild value (spec §6).  Every pointer borrows from the
 * value that was parsed; lengths exclude any terminator.  `accounturi` and
 * `methods` are NULL when the parameter is absent.  A value that gives
 * accounturi or validationmethods twice does not parse (spec §6: Let's
 * Encrypt finds it unsatisfiable); other parameters may repeat.
 */
struct caa_issue_value {
    const char *issuer;
    size_t issuer_len; /* 0 for ";" or an empty value: forbids issuance */
    const char *accounturi;
    size_t accounturi_len;
    const char *methods; /* the raw validationmethods list */
    size_t methods_len;
    /* dns-persist-01 records use the same grammar (draft-ietf-acme-dns-persist
     * §4.1): the first "policy" and "persistUntil" (tags case-sensitive, as
     * every parameter tag here), NULL when absent; persist_repeated when
     * either appears more than once.  CAA ignores all three. */
    const char *policy;
    size_t policy_len;
    const char *persist_until;
    size_t persist_until_len;
    bool persist_repeated;
};

/* Parse an issue/issuewild value.  Returns true when well formed; false when
 * malformed (a malformed record authorizes nothing).  Never reads past `len`. */
bool caa_parse_issue_value(const unsigned char *value, size_t len, struct caa_issue_value *out);

/*
 * Format a record in zone-file presentation syntax without owner and class,
 * e.g. `0 issue "letsencrypt.org"`; bytes outside 0x20-0x7E and `"` / `\` are
 * escaped as \DDD / \" / \\.  Always NUL-terminates; returns the length it
 * needed (like snprintf), so a result >= size means it was truncated.
 */
size_t caa_record_format(const struct caa_record *r, char *buf, size_t size);

/* ------------------------------------------------------------- lookups */

/* How the answer for one name was classified (spec §3). */
enum caa_answer {
    CAA_ANSWER_RECORDS, /* NOERROR or NXDOMAIN: a set of records, maybe empty */
    CAA_ANSWER_RCODE,   /* any other RCODE: SERVFAIL, REFUSED, NOTIMP, FORMERR... */
    CAA_ANSWER_TIMEOUT, /* no answer within the timeout after every try */
    CAA_ANSWER_NETWORK  /* the query could not be sent or the answer not read */
};

/* The CAA lookup of one name.  Allocated by caa_resolve(); freed by
 * caa_lookups_free(). */
struct caa_lookup {
    char name[CAA_NAME_MAX + 1];
    enum caa_answer answer;
    int rcode;                     /* RCODE of the response; -1 when none arrived */
    char target[CAA_NAME_MAX + 1]; /* where a CNAME chain from `name` ended (no
                                      trailing dot); "" when `name` is no alias */
    struct caa_record *records;    /* CAA records of the answer (after CNAMEs) */
    size_t nrecords;
    /* RFC 8914 Extended DNS Error: the first EDE option of the answer's OPT
     * record, filled only for answers classified CAA_ANSWER_RCODE (the CA's
     * detail then quotes it, spec §10 EDE; on other answers the CA ignores
     * it).  `ede_code` is the INFO-CODE when `has_ede` (false, the zero
     * value, when there is none or it is malformed).  `ede_text` is the
     * EXTRA-TEXT ("" when absent) as valid UTF-8: well-formed sequences as
     * sent, every other byte as U+FFFD, one per byte, as the CA's Go code
     * shows it.  A NUL byte also becomes U+FFFD, where the CA would keep
     * U+0000, because this is a C string: the one place where certpilot's
     * detail cannot be byte for byte the CA's (besides texts longer than
     * CAA_EDE_TEXT_MAX bytes, cut at a character boundary; real ones are a
     * line or two). */
    bool has_ede;
    unsigned ede_code;
    char ede_text[CAA_EDE_TEXT_MAX + 1];
};

/* "NOERROR", "SERVFAIL", ... or "RCODE<n>" for unnamed ones; static storage. */
const char *caa_rcode_name(int rcode);

/* The words Let's Encrypt uses for an Extended DNS Error INFO-CODE (RFC 8914,
 * spec §10 EDE): static storage for the codes 0-24, else "Unknown Extended
 * DNS Error code N" written into `buf` (64 bytes are enough). */
const char *caa_ede_summary(unsigned code, char *buf, size_t size);

/* ------------------------------------------------------------- resolver */

struct caa_resolver_opts {
    /* Recursive resolvers as "IP", "IP:PORT", "[IPv6]" or "[IPv6]:PORT".
     * None: the system's (/etc/resolv.conf). */
    const char *const *servers;
    size_t nservers;
    unsigned timeout_ms; /* per query, all its tries, from when it is sent;
                            0 means the default, 10000 */
    unsigned tries;      /* 1-10; 0 means the default, 2 */
};

/* What one caa_resolve() cost on the wire. */
struct caa_resolve_stats {
    size_t queries; /* queries sent, resent ones included */
    size_t resent;  /* of them, queries asked again after their first try was lost */
    unsigned waves; /* round trips: 1 when every query went out before any answer
                       came back; each wait for answers before sending more adds
                       one (0 when nothing was sent) */
};

/*
 * Look up CAA for each of `names` (normalized, distinct) in one c-ares event
 * loop.  Every query goes out at once, in one wave, up to CAA_DNS_WAVE_MAX
 * (512, caa/dns_int.h) in flight; more wait for room.  The resolver follows
 * CNAME and DNAME chains (spec §2), so no answer leads to another query here.
 * Each query's first try has its share of `timeout_ms`; the queries whose
 * first try went unanswered (lost in a resolver's full queue, say) are asked
 * again with the rest of the budget and tries, at most half as many in flight
 * as the resolver answered (4 to 32), so that a slow resolver is not flooded
 * twice.  A truncated answer is asked again
 * over TCP; an answer too large even for that is a network failure of that
 * name, never a partial set.  On CP_OK, *out is an array of n lookups in the
 * order of `names` (each classified: a DNS failure of one name is not an
 * error of the call).  Errors are only for set-up: bad server syntax
 * (CP_EINVAL naming it), c-ares initialization (CP_EDNS), memory.
 * `*stats`, when not NULL, receives the figures of the run.
 */
enum cp_code caa_resolve(const struct caa_resolver_opts *opts, const char *const *names, size_t n,
                         struct caa_lookup **out, struct caa_resolve_stats *stats,
                         struct cp_err *err);

/* Free what caa_resolve() returned; NULL is a no-op. */
void caa_lookups_free(struct caa_lookup *lookups, size_t n);

/* --------------------------------------------------------------- policy */

/* What the CA is and what the order will look like. */
struct caa_params {
    const char *ca_identity; /* issuer domain the CA looks for, e.g. "letsencrypt.org" */
    const char *account_uri; /* the ordering account's URL, NULL if unknown */
    const char *method;      /* challenge type that will be used: "http-01", ... */
};

enum caa_status {
    CAA_ALLOWED,
    CAA_DENIED,
    CAA_ERROR /* a DNS failure decided the outcome (spec §4) */
};

/* Why the decision came out as it did. */
enum caa_why {
    CAA_WHY_NO_RECORDS,       /* allowed: no CAA record at any name */
    CAA_WHY_NO_ISSUE,         /* allowed: not a wildcard and no issue record */
    CAA_WHY_NO_CANDIDATE,     /* allowed: wildcard, neither issue nor issuewild */
    CAA_WHY_AUTHORIZED,       /* allowed: a candidate record authorizes */
    CAA_WHY_CRITICAL_UNKNOWN, /* denied: a critical unknown tag */
    CAA_WHY_NOT_AUTHORIZED,   /* denied: no candidate record authorizes */
    CAA_WHY_DNS               /* error: the lookup at `at` failed */
};

/* Per-record verdict, for display and explanation. */
enum caa_verdict {
    CAA_VERDICT_AUTHORIZES,
    CAA_VERDICT_MALFORMED,        /* candidate, value does not parse */
    CAA_VERDICT_FORBIDS,          /* candidate, empty issuer (";"): no CA at all */
    CAA_VERDICT_OTHER_CA,         /* candidate, names another issuer */
    CAA_VERDICT_ACCOUNT_MISMATCH, /* candidate for this CA, accounturi differs */
    CAA_VERDICT_METHOD_MISMATCH,  /* candidate for this CA, method not listed */
    CAA_VERDICT_CRITICAL,         /* unknown tag flagged critical: blocks all */
    CAA_VERDICT_IGNORED           /* not a candidate (iodef, issuemail, issue when
                                     issuewild governs, issuewild for a non-wildcard,
                                     non-critical unknown tag) */
};

struct caa_decision {
    enum caa_status status;
    enum caa_why why;
    size_t at;                  /* index into the chain of the relevant RRset or of the
                                   failing lookup; SIZE_MAX for CAA_WHY_NO_RECORDS */
    size_t authorizing;         /* record index at `at` that authorizes; SIZE_MAX if none */
    enum caa_verdict *verdicts; /* one per record of chain[at]; NULL when at == SIZE_MAX
                                   or the lookup failed; owned, see caa_decision_clear */
    size_t nverdicts;
};

/*
 * Decide (spec §4-§8).  `chain` holds the lookups of the identifier's names
 * from the name itself to the TLD (as caa_name_chain() lists them).  Pure: no
 * I/O.  Returns CP_OK or CP_ENOMEM/CP_EINVAL (NULL ca_identity or method).
 * Let's Encrypt account URLs also match their ACME v1 form (spec §7).
 */
enum cp_code caa_evaluate(const struct caa_lookup *const *chain, size_t n, bool wildcard,
                          const struct caa_params *params, struct caa_decision *out,
                          struct cp_err *err);

/* Free what caa_evaluate() allocated and zero the decision; NULL is a no-op. */
void caa_decision_clear(struct caa_decision *d);

/*
 * Spec §10: the CA checks CAA again just before issuing when the
 * authorization it reuses was validated more than CAA_REUSE_WINDOW_S seconds
 * earlier.  `validated` and `now` are Unix seconds; a negative `validated`
 * (unknown) counts as old.
 */
#define CAA_REUSE_WINDOW_S (7 * 3600)
bool caa_recheck_due(long long validated, long long now);

/* Short words for a verdict ("authorizes", "other CA", ...), static storage. */
const char *caa_verdict_name(enum caa_verdict v);

/* ---------------------------------------------------------- explanation */

/*
 * Words for a decision.  All strings heap-allocated, freed by
 * caa_explanation_clear().
 *   problem_type/problem_detail: what the CA would answer (spec §9), NULL when
 *     allowed.  Detail is exact, e.g. "While processing CAA for *.example.com:
 *     CAA record for example.com prevents issuance".
 *   text: one or more sentences for a human, always set.
 *   fix: zone-file lines that would allow issuance (for a denial), or what to
 *     repair (for a DNS error); NULL when allowed.
 *   warning: what other CAs may read differently in the relevant records
 *     (a validationmethods element that is not a method name, spec §8), with
 *     the corrected record; NULL when there is nothing to say.
 */
struct caa_explanation {
    char *problem_type;
    char *problem_detail;
    char *text;
    char *fix;
    char *warning;
};

enum cp_code caa_explain(const char *ident, const struct caa_lookup *const *chain, size_t n,
                         const struct caa_params *params, const struct caa_decision *d,
                         struct caa_explanation *out, struct cp_err *err);

void caa_explanation_clear(struct caa_explanation *e);

/* ----------------------------------------------------------------- check */

/* The outcome for one identifier of a batch; read-only view owned by the report. */
struct caa_result {
    const char *ident; /* normalized, "*." kept for wildcards */
    bool wildcard;
    enum caa_status status;
    const struct caa_lookup *const *chain; /* from the name to the TLD */
    size_t nchain;
    const struct caa_decision *decision;
    const struct caa_explanation *explanation;
    const struct caa_params *params; /* what it was judged with (borrowed) */
};

struct caa_report; /* opaque */

/*
 * Check a batch: normalize every identifier (a bad one fails the whole call
 * with CP_EINVAL naming it, before any query), query every distinct name once,
 * all in one wave (as caa_resolve() does), then evaluate and explain each
 * identifier.  Free the report with caa_report_free().  Each result borrows
 * `params`: keep it (and its strings) alive as long as the report.
 */
enum cp_code caa_check(const char *const *identifiers, size_t n,
                       const struct caa_resolver_opts *ropts, const struct caa_params *params,
                       struct caa_report **out, struct cp_err *err);

/*
 * Judge identifier i of a report again with other parameters (another
 * challenge type, CA identity or account URL), from the look-ups already made:
 * no DNS query.  Its decision and explanation are replaced; `params` and the
 * strings it points to must outlive the report (the result's `params` borrows
 * them).  CP_EINVAL for i out of range.
 */
enum cp_code caa_report_judge(struct caa_report *r, size_t i, const struct caa_params *params,
                              struct cp_err *err);

/*
 * Only the verdict for identifier i under `params` (allowed, denied, error),
 * without touching the report: used to find which challenge types the CAA
 * records allow.  CP_EINVAL for i out of range or params missing fields.
 */
enum cp_code caa_report_status(const struct caa_report *r, size_t i,
                               const struct caa_params *params, enum caa_status *status,
                               struct cp_err *err);

size_t caa_report_count(const struct caa_report *r);
const struct caa_result *caa_report_result(const struct caa_report *r, size_t i);
size_t caa_report_queries(const struct caa_report *r); /* DNS queries sent */
unsigned caa_report_waves(const struct caa_report *r); /* DNS round trips (see caa_resolve) */
void caa_report_free(struct caa_report *r);

/* ------------------------------------------------ authoritative servers */

/* One address of one authoritative nameserver. */
struct caa_ns {
    char name[CAA_NAME_MAX + 1]; /* the NS name, lower case, no trailing dot */
    char addr[64];               /* "192.0.2.1" or "2001:db8::1" */
};

/*
 * The zone holding `name` and the addresses of its authoritative servers, all
 * found through the recursive resolvers of `o` (NULL: the system's), as the
 * CA's resolver would find them: the SOA of `name` (the apex, or the SOA in
 * the authority section of a NODATA/NXDOMAIN answer; should a resolver leave
 * that out, the SOA of each parent), the zone's NS records (at most 16 names),
 * then A and AAAA of each NS name (at most 32 addresses in all; addresses this
 * host has no route to, e.g. IPv6 on an IPv4-only host, are left out).
 * `target` receives where a CNAME chain from `name` ends (`name` itself when
 * it is no alias): the name whose TXT records a CA reads, and the one to pass
 * to caa_txt_wait(); `zone` is the zone holding `target`, lower case ("" for
 * the root).  On CP_OK, *ns is a heap array of *nns entries, released with
 * free().  Errors name the step and the name: CP_EINVAL (bad name or resolver
 * syntax), CP_EDNS (c-ares set-up), CP_ENET (no usable answer: time-out,
 * SERVFAIL, no SOA, no NS, a nameserver without any address because its
 * look-ups failed), CP_EPROTO (unreadable answer, more servers than the
 * bounds), CP_ENOMEM.
 */
enum cp_code caa_zone_servers(const struct caa_resolver_opts *o, const char *name,
                              char zone[CAA_NAME_MAX + 1], char target[CAA_NAME_MAX + 1],
                              struct caa_ns **ns, size_t *nns, struct cp_err *err);

/*
 * Wait until every address in `ns` serves the TXT value `value` at `name`: ask
 * each one directly (RD=0, UDP with TCP fallback on truncation, port `port`,
 * 0 meaning 53), all in parallel, every `interval_ms` (0: 2000) until
 * `timeout_ms` has passed; an address that has served the value is not asked
 * again.  A server serves the value when its answer is NOERROR, authoritative
 * (AA) and holds a TXT record at `name` whose character-strings, joined, equal
 * `value` exactly; other TXT records at the name may be there too (a wildcard
 * and its base name share one _acme-challenge name).  Each round allows 2 s
 * for the answers, so the call may take up to that much longer than
 * `timeout_ms`.  CP_OK when all serve it; CP_ETIMEOUT naming each address
 * that did not and what it answered last (an RCODE, no authority, no TXT
 * record, the values it served instead, or no answer); CP_EINVAL for bad
 * arguments (at most 32 addresses, value 1 to 255 octets).
 */
enum cp_code caa_txt_wait(const struct caa_ns *ns, size_t nns, unsigned port, const char *name,
                          const char *value, unsigned timeout_ms, unsigned interval_ms,
                          struct cp_err *err);

/* ------------------------------------------------------------ diagnosis */

/*
 * `certpilot doctor` (caa/diagnose.c and caa/diag_*.c): why the CA's CAA
 * check would fail, or fail now and then, and what to fix.  caa_diagnose()
 * does the I/O: caa_check() for the verdict, then for every name on the CAA
 * path (up to the relevant RRset, CNAME targets hop by hop) its zone and
 * authoritative servers, then one parallel round asking CAA of every server
 * address with recursion off, and of the resolver (again with CD=1).
 * caa_diag_classify() is the pure part: from the collected answers to
 * findings with evidence and a fix.  Nothing is sent to the addresses the
 * identifiers resolve to.
 */

enum caa_diag_severity {
    CAA_DIAG_OK,        /* a name's status only: nothing wrong */
    CAA_DIAG_INFO,      /* worth knowing, nothing to fix (a CNAME chain) */
    CAA_DIAG_FLAKY,     /* issuance works now, but may fail at some perspectives */
    CAA_DIAG_WILL_FAIL, /* the CA would fail on DNS */
    CAA_DIAG_BLOCKED    /* the CA would refuse because of CAA */
};

enum caa_diag_kind {
    CAA_DIAG_CAA_DENIED,    /* the records refuse */
    CAA_DIAG_DNSSEC,        /* SERVFAIL through the resolver, CD=1 answer fine */
    CAA_DIAG_NOTIMP,        /* a server rejects the CAA type (NOTIMP, FORMERR, ...) */
    CAA_DIAG_REFUSED,       /* an authoritative server answers REFUSED to CAA */
    CAA_DIAG_SERVFAIL,      /* a server answers SERVFAIL to CAA */
    CAA_DIAG_TIMEOUT,       /* a server does not answer CAA */
    CAA_DIAG_LAME,          /* a listed server that is not authoritative */
    CAA_DIAG_INCONSISTENT,  /* the servers that answered disagree */
    CAA_DIAG_CNAME,         /* the chain of aliases, hop by hop */
    CAA_DIAG_RESOLVER_ERROR /* the resolver fails and nothing more specific is known */
};

/* "OK", "INFO", "FLAKY", "WILL_FAIL", "BLOCKED"; static storage. */
const char *caa_diag_severity_name(enum caa_diag_severity s);
/* "caa_denied", "dnssec", ..., "resolver_error"; static storage. */
const char *caa_diag_kind_name(enum caa_diag_kind k);

/* One CAA (or SOA) query and what came back. */
struct caa_diag_answer {
    bool asked;
    bool timeout;                 /* no DNS answer: none in time, or none at all */
    char error[64];               /* "" or why, when not for lack of time */
    int rcode;                    /* -1 without an answer */
    bool aa;                      /* the AA bit of the answer */
    char cname[CAA_NAME_MAX + 1]; /* CNAME target at the asked name, "" for none */
    struct caa_record *records;   /* CAA records at the end of the answer's CNAME chain */
    size_t nrecords;
    long ms; /* from sending to the answer (or to giving up) */
};

/* One address of one authoritative server of a hop's zone. */
struct caa_diag_server {
    char name[CAA_NAME_MAX + 1]; /* the NS name */
    char addr[64];               /* "" when the NS name has no address (see `why`) */
    char why[320];               /* why an NS name has no address */
    struct caa_diag_answer caa;  /* CAA of the hop's name, RD=0 */
    struct caa_diag_answer soa;  /* SOA of the zone, RD=0: does it serve the zone? */
    bool authoritative;          /* soa: NOERROR, AA and the zone's SOA record */
    unsigned long serial;        /* of that SOA record */
};

/* One name whose CAA set the CA reads: a name of the chain or a CNAME target. */
struct caa_diag_hop {
    char name[CAA_NAME_MAX + 1];
    char zone[CAA_NAME_MAX + 1];     /* the zone holding `name`; "" when unknown */
    char zone_error[320];            /* why the zone or its servers are unknown */
    char alias_of[CAA_NAME_MAX + 1]; /* the name whose CNAME led here, "" */
    size_t chain_index;              /* the identifier's chain name this hop serves */
    struct caa_diag_answer resolver; /* through the resolver, RD=1 */
    /* The same with CD=1: asked with it, shown only when `resolver` failed. */
    struct caa_diag_answer resolver_cd;
    struct caa_diag_server *servers;
    size_t nservers;
    bool agree; /* set by caa_diag_classify(): the usable answers are the same */
};

struct caa_diag_finding {
    enum caa_diag_severity severity; /* never CAA_DIAG_OK */
    enum caa_diag_kind kind;
    char name[CAA_NAME_MAX + 1];   /* the hop */
    char zone[CAA_NAME_MAX + 1];   /* "" for none */
    char server[CAA_NAME_MAX + 1]; /* NS name, "" for none */
    char address[64];              /* "" for none */
    char summary[400];             /* a headline for people */
    char evidence[1024];           /* one line */
    char fix[640];                 /* one or two sentences */
};

#define CAA_DIAG_ADDRS_MAX 16

/* What the chosen challenge type needs from DNS; nothing is sent to the addresses. */
struct caa_diag_readiness {
    const char *method;                     /* borrowed from the params */
    char addresses[CAA_DIAG_ADDRS_MAX][64]; /* A and AAAA of the name, through the resolver */
    size_t naddresses;
    char addresses_error[320];               /* "" or why there are none */
    char challenge_name[CAA_NAME_MAX + 1];   /* dns-01: _acme-challenge.NAME, else "" */
    char challenge_target[CAA_NAME_MAX + 1]; /* where its CNAME chain ends */
    char challenge_zone[CAA_NAME_MAX + 1];   /* "" when unknown */
    char nameservers[16][CAA_NAME_MAX + 1];  /* of challenge_zone */
    size_t nnameservers;
    char challenge_error[320]; /* "" or why zone/servers are unknown */
};

/* The diagnosis of one identifier.  In a caa_diag everything is owned by it;
 * hand-built ones (tests) own their hops; caa_diag_classify() allocates
 * `findings` (release with free()). */
struct caa_diag_name {
    char ident[CAA_IDENT_MAX];
    const struct caa_result *caa; /* the verdict through the resolver (caa_check) */
    struct caa_diag_hop *hops;    /* the chain's names from the name up to the relevant one,
                                     each CNAME target right after its alias */
    size_t nhops;
    struct caa_diag_finding *findings; /* worst first */
    size_t nfindings;
    enum caa_diag_severity status; /* the worst finding; INFO counts as OK */
    struct caa_diag_readiness readiness;
};

/* What classification needs besides the answers. */
struct caa_diag_context {
    const char *resolver; /* how evidence names the resolver, e.g. "127.0.0.1:53" */
    unsigned timeout_ms;  /* the time allowed per round, for evidence */
    /* No authoritative server answered this host at all: direct queries are
     * probably blocked here. */
    bool no_direct_answers;
};

/*
 * Findings for `d` from its caa result and hops (spec §11): replaces
 * d->findings, d->status and every hop's `agree`.  Pure: no I/O.  Rules:
 * caa_denied is BLOCKED; a server's NOTIMP/REFUSED/SERVFAIL/time-out is FLAKY
 * while the resolver still gets an answer for the hop and WILL_FAIL when it
 * does not; REFUSED from a server that does not serve the zone's SOA either,
 * NOTAUTH, or an answer without AA is lame (same severities); a resolver
 * SERVFAIL with a good CD=1 answer while every server answers is dnssec
 * (WILL_FAIL); servers whose usable answers differ are inconsistent (FLAKY,
 * BLOCKED when the verdict is a refusal); each alias is a cname INFO; a
 * failed verdict with nothing more specific is resolver_error (WILL_FAIL).
 * A finding repeated at several hops of one zone is kept once, at its worst.
 * CP_EINVAL when d->caa is missing; CP_ENOMEM.
 */
enum cp_code caa_diag_classify(struct caa_diag_name *d, const struct caa_diag_context *cx,
                               struct cp_err *err);

struct caa_diag_opts {
    const struct caa_resolver_opts *resolver; /* NULL: the system's */
    const struct caa_params *params;          /* borrowed by the result */
    unsigned auth_port;                       /* of every authoritative server; 0: 53 */
};

struct caa_diag; /* opaque */

/*
 * Diagnose a batch of identifiers: caa_check(), then the zones and servers
 * of every hop (rounds of queries to the resolver: SOA, NS, A/AAAA, with
 * CD=1 so that a broken DNSSEC chain does not hide the servers), then one
 * round of CAA queries to every server address and to the resolver, then
 * caa_diag_classify().  When the resolver cannot name a hop's zone, the
 * parent's zone is tried and kept only if its servers answer for the name
 * with authority and do not serve it as an apex.  A CNAME that only the
 * servers show (the resolver could not follow it) becomes a new hop and
 * another pass of those rounds.  Each round is bounded by the resolver
 * options' timeout (default 10 s); at most 32 server addresses are asked at
 * once, so a batch with more takes one more round per 32.  Errors as for
 * caa_check(): CP_EINVAL (an identifier or resolver), CP_EDNS, CP_ENOMEM.
 * Free with caa_diag_free(); `o->params` must outlive the result.
 */
enum cp_code caa_diagnose(const char *const *identifiers, size_t n, const struct caa_diag_opts *o,
                          struct caa_diag **out, struct cp_err *err);

size_t caa_diag_count(const struct caa_diag *d);
const struct caa_diag_name *caa_diag_get(const struct caa_diag *d, size_t i);
const struct caa_report *caa_diag_report(const struct caa_diag *d); /* of caa_check() */
/* The resolver as evidence names it: the first one given, or "the system's resolver". */
const char *caa_diag_resolver(const struct caa_diag *d);
void caa_diag_free(struct caa_diag *d);

/* Release what caa_diagnose() put in a hop (answers' records, servers). */
void caa_diag_hop_clear(struct caa_diag_hop *h);

/* ------------------------------------------------------------ addresses */

/*
 * The addresses `name` resolves to through the recursive resolvers of `o`
 * (NULL: the system's), as a CA's resolver finds them: AAAA and A asked at
 * once (the resolver follows CNAMEs), IPv6 addresses first, each once;
 * addresses this host has no route to are left out.  On CP_OK, *out is a heap
 * array of *n entries (at least one; `name` in each is the owner of the
 * record), released with free().  Errors: CP_EINVAL (bad name or resolver),
 * CP_EDNS (c-ares set-up), CP_ENET when the name has no usable address, the
 * message saying why (NXDOMAIN, no A or AAAA record, a resolver failure or
 * time-out), CP_EPROTO (unreadable answer), CP_ENOMEM.
 */
enum cp_code caa_addresses(const struct caa_resolver_opts *o, const char *name, struct caa_ns **out,
                           size_t *n, struct cp_err *err);
/* --------------------------------------------------- dns-persist-01 records */

/*
 * draft-ietf-acme-dns-persist (caa/persist.c): a standing TXT record at
 * "_validation-persist.<name>" whose value has the CAA issue-value syntax
 * (spec §6, parsed by caa_parse_issue_value(); no second parser): the issuer
 * domain name, then accounturi=<account URL>, optionally policy=wildcard and
 * persistUntil=<Unix seconds>.  The account URL in clear is the form of the
 * drafts up to -01 and of Let's Encrypt's deployment; -02 replaces it by a
 * hashed URI, which a caller would pass as `account_uri` instead.  Pure
 * functions: looking the TXT records up is the caller's (caa/zone.c).
 */
#define CAA_PERSIST_LABEL       "_validation-persist"
#define CAA_PERSIST_OWNER_MAX   (CAA_IDENT_MAX + 20)
#define CAA_PERSIST_VALUE_MAX   1024
#define CAA_PERSIST_ISSUERS_MAX 10 /* draft §3.1 */

struct caa_persist_spec {
    const char *issuer;      /* issuer domain name, e.g. "letsencrypt.org" */
    const char *account_uri; /* the ACME account URL (or the hashed URI) */
    bool wildcard;           /* policy=wildcard; implied by a "*." name */
    long long persist_until; /* Unix seconds; 0 for none */
};

struct caa_persist_record {
    char owner[CAA_PERSIST_OWNER_MAX]; /* "_validation-persist.example.com", no final dot */
    char value[CAA_PERSIST_VALUE_MAX]; /* the TXT value, unquoted */
    /* `<owner>. IN TXT "<value>"`, split in strings of at most 255 octets
     * (RFC 1035 §3.3.14), '"' and '\' escaped */
    char zone_line[CAA_PERSIST_OWNER_MAX + 2 * CAA_PERSIST_VALUE_MAX + 32];
};

/*
 * The record that lets the account `spec->account_uri` validate `name`
 * ("*.example.com" gives the record at _validation-persist.example.com
 * with policy=wildcard) with the CA `spec->issuer`: "letsencrypt.org;
 * accounturi=https://...; policy=wildcard; persistUntil=1767225600".
 * CP_EINVAL naming the input: a name or issuer caa_name_normalize()
 * refuses (an IP address among them: the draft covers DNS names only), an
 * account URI that is empty or has a byte outside 0x21-0x7E or a ';', a
 * negative persist_until.
 */
enum cp_code caa_persist_build(const char *name, const struct caa_persist_spec *spec,
                               struct caa_persist_record *out, struct cp_err *err);

/* Why a record does not authorize, ordered by how far it got: a larger
 * value is a record closer to authorizing. */
enum caa_persist_fault {
    CAA_PERSIST_OTHER_ISSUER,  /* its issuer domain name is none of the CA's */
    CAA_PERSIST_MALFORMED,     /* not the issue-value grammar, a parameter given twice, or
                                  persistUntil not a base-10 integer (draft §4.1 item 5) */
    CAA_PERSIST_NO_ACCOUNT,    /* no accounturi (draft §4.1 item 3: mandatory) */
    CAA_PERSIST_OTHER_ACCOUNT, /* accounturi names another account (simple string comparison) */
    CAA_PERSIST_NOT_WILDCARD,  /* a wildcard name without policy=wildcard (case-insensitive) */
    CAA_PERSIST_EXPIRED,       /* persistUntil is in the past */
    CAA_PERSIST_AUTHORIZES
};

struct caa_persist_check {
    const char *const *issuers; /* the CA's issuer domain names (challenge's issuerDomainNames) */
    size_t nissuers;
    const char *account_uri; /* the account asking */
    long long now;           /* Unix seconds */
};

/* One TXT value at the validation name: its character-strings joined. */
struct caa_persist_txt {
    const unsigned char *data;
    size_t len;
};

struct caa_persist_verdict {
    bool authorized;
    size_t record;                /* the authorizing record, or the one `reason` is about;
                                     SIZE_MAX when there is no record */
    enum caa_persist_fault fault; /* of `record` (CAA_PERSIST_AUTHORIZES when authorized) */
    long long persist_until;      /* of `record`; -1 when it has none */
    char reason[CP_ERR_MSG_MAX];  /* why not, in words naming the record; "" when authorized */
};

/* The fault of one TXT value for identifier `ident` ("*." for a wildcard);
 * *persist_until (may be NULL) gets its persistUntil or -1. */
enum caa_persist_fault caa_persist_judge(const char *ident, const unsigned char *value, size_t len,
                                         const struct caa_persist_check *c,
                                         long long *persist_until);

/*
 * Do the TXT values found at _validation-persist.<name> authorize the
 * account to validate `ident`?  Any one record that passes every rule does
 * (draft §4.2); when none does, the reason is that of the record that got
 * furthest (the first of those).  CP_EINVAL for an `ident` that is not a
 * DNS name, or no issuer or account to check against.
 */
enum cp_code caa_persist_evaluate(const char *ident, const struct caa_persist_txt *txts, size_t n,
                                  const struct caa_persist_check *c,
                                  struct caa_persist_verdict *out, struct cp_err *err);

/* What one authoritative server answered for the dns-persist-01 record. */
struct caa_persist_server {
    bool answered;     /* an authoritative (AA) NOERROR or NXDOMAIN answer came */
    int rcode;         /* the answer's RCODE, -1 without an answer */
    size_t nvalues;    /* TXT records at the name (at most 16 are judged) */
    char problem[160]; /* when !answered: "no answer", "not authoritative", "SERVFAIL", ... */
    struct caa_persist_verdict verdict; /* when answered: the records it serves, judged */
};

/*
 * The dns-persist-01 preflight (caa/zone.c): ask every address in `ns`
 * directly (RD=0, as caa_txt_wait() does; port 0 means 53) once for TXT at
 * `qname` (the validation name "_validation-persist.<base>", or where
 * caa_zone_servers() says its CNAME chain ends) and judge what each serves
 * for `ident` with caa_persist_evaluate().  out[] has nns entries (caller's
 * array).  *nauthorizing (may be NULL) counts the servers whose records
 * authorize: all of them must, since the CA asks any one.  Errors:
 * CP_EINVAL (bad arguments, at most 32 addresses), CP_EDNS, CP_ENOMEM; a
 * server that does not answer is no error (its entry says so).
 */
enum cp_code caa_persist_servers(const struct caa_ns *ns, size_t nns, unsigned port,
                                 const char *qname, const char *ident,
                                 const struct caa_persist_check *c, struct caa_persist_server *out,
                                 size_t *nauthorizing, struct cp_err *err);

#endif
