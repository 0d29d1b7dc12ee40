/*
 * caa/diagnose.c - `certpilot doctor`: find the nameserver that makes the CA's
 * CAA check fail (or fail now and then) and say what to fix.
 *
 * A CA's several network perspectives reach different authoritative servers,
 * so one broken server of three makes issuance flaky, and a resolver that
 * validates DNSSEC turns a bad signature into SERVFAIL.  What the resolver
 * says is therefore not enough: every authoritative server of every zone on
 * the CAA path is asked directly, with recursion off, and the answers are
 * compared.
 *
 * The work is in two parts.  caa_diagnose() does the I/O in rounds of
 * parallel queries over c-ares (caa/dns.c): the verdict (caa_check()), the
 * zones of the names (SOA), their nameservers (NS) and their addresses
 * (A/AAAA), all through the resolver with CD=1 so that a broken chain of
 * trust does not hide the servers; then one round with the CAA query to every
 * server address (RD=0), an SOA query per server (does it serve the zone at
 * all?), and the CAA query through the resolver with and without CD.
 * caa_diag_classify() is pure: answers in, findings out (spec §11).
 *
 * What it does not do: print, send anything to the addresses the names
 * resolve to, validate DNSSEC itself, or follow referrals from the parent (the
 * NS set is the one the resolver returns, as for caa_zone_servers()).
 */
#include "caa/caa.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "caa/dns_int.h"

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_TRIES      2
#define CHAIN_MAX          128 /* a 253-octet name has at most 127 labels */
#define NS_NAMES_MAX       16  /* NS names per zone, as caa_zone_servers() */
#define ADDRS_PER_NS       4   /* addresses kept per NS name */
#define ZONE_SERVERS_MAX   (NS_NAMES_MAX * ADDRS_PER_NS)
#define RECORDS_MAX        64 /* CAA records kept per answer */
#define LISTED_MAX         3  /* servers named in one piece of evidence */

#define RCODE_NOERROR  0
#define RCODE_SERVFAIL 2
#define RCODE_NXDOMAIN 3
#define RCODE_REFUSED  5
#define RCODE_NOTAUTH  9

const char *caa_diag_severity_name(enum caa_diag_severity s)
{
    switch (s) {
    case CAA_DIAG_OK: return "OK";
    case CAA_DIAG_INFO: return "INFO";
    case CAA_DIAG_FLAKY: return "FLAKY";
    case CAA_DIAG_WILL_FAIL: return "WILL_FAIL";
    case CAA_DIAG_BLOCKED: return "BLOCKED";
    }
    return "OK";
}

const char *caa_diag_kind_name(enum caa_diag_kind k)
{
    switch (k) {
    case CAA_DIAG_CAA_DENIED: return "caa_denied";
    case CAA_DIAG_DNSSEC: return "dnssec";
    case CAA_DIAG_NOTIMP: return "notimp";
    case CAA_DIAG_REFUSED: return "refused";
    case CAA_DIAG_SERVFAIL: return "servfail";
    case CAA_DIAG_TIMEOUT: return "timeout";
    case CAA_DIAG_LAME: return "lame";
    case CAA_DIAG_INCONSISTENT: return "inconsistent";
    case CAA_DIAG_CNAME: return "cname";
    case CAA_DIAG_RESOLVER_ERROR: return "resolver_error";
    }
    return "resolver_error";
}

/* ------------------------------------------------------------------ text */

/* Text appended to a fixed buffer; what does not fit ends in "...". */
struct text {
    char *p;
    size_t size, len;
};

static void text_init(struct text *t, char *buf, size_t size)
{
    t->p = buf;
    t->size = size;
    t->len = 0;
    buf[0] = '\0';
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
put(struct text *t, const char *fmt, ...)
{
    if (t->len + 1 >= t->size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->p + t->len, t->size - t->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < t->size - t->len) {
        t->len += (size_t)n;
        return;
    }
    t->len = t->size - 1; /* full: mark the cut */
    if (t->size >= 4)
        memcpy(t->p + t->size - 4, "...", 4);
}

/* "CAA records" of an answer: `0 issue "x"`, joined with ", ". */
static void put_records(struct text *t, const struct caa_record *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char rec[300];
        size_t need = caa_record_format(&r[i], rec, sizeof rec);
        put(t, "%s%s%s", i ? ", " : "", rec, need >= sizeof rec ? "..." : "");
    }
}

static bool answered(const struct caa_diag_answer *a)
{
    return a->asked && !a->timeout && a->error[0] == '\0' && a->rcode >= 0;
}

/* NOERROR or NXDOMAIN: a CAA set, maybe empty (spec §3). */
static bool usable(const struct caa_diag_answer *a)
{
    return answered(a) && (a->rcode == RCODE_NOERROR || a->rcode == RCODE_NXDOMAIN);
}

/* What came back, in words: "NOERROR, 1 record: 0 issue "x"", "SERVFAIL",
 * "no answer within 2.0 s". */
static void put_answer(struct text *t, const struct caa_diag_answer *a, unsigned timeout_ms)
{
    if (!a->asked) {
        put(t, "not asked");
    } else if (a->error[0] != '\0') {
        put(t, "no answer (%s)", a->error);
    } else if (a->timeout) {
        put(t, "no answer within %.1f s", timeout_ms / 1000.0);
    } else if (!usable(a)) {
        put(t, "%s", caa_rcode_name(a->rcode));
    } else {
        put(t, "%s", caa_rcode_name(a->rcode));
        if (a->cname[0] != '\0')
            put(t, ", CNAME %s", a->cname);
        if (a->nrecords == 0) {
            put(t, ", no CAA record");
        } else {
            put(t, ", %zu record%s: ", a->nrecords, a->nrecords == 1 ? "" : "s");
            put_records(t, a->records, a->nrecords);
        }
    }
}

/* "ns1.example.com (192.0.2.1)" */
static void put_server(struct text *t, const struct caa_diag_server *s)
{
    if (s->addr[0] != '\0')
        put(t, "%s (%s)", s->name, s->addr);
    else
        put(t, "%s", s->name);
}

/* "ns1.example.com (192.0.2.1, SOA serial 7)" when it served the SOA. */
static void put_server_serial(struct text *t, const struct caa_diag_server *s)
{
    if (!s->authoritative) {
        put_server(t, s);
        return;
    }
    put(t, "%s (%s, SOA serial %lu)", s->name, s->addr, s->serial);
}

/* ------------------------------------------------------- classification */

struct cls {
    struct caa_diag_name *d;
    const struct caa_diag_context *cx;
    const struct caa_params *p;
    const char *resolver;
    size_t cap;
    bool nomem;
};

static bool same_zone(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

/*
 * A finding to fill in, or NULL when there is nothing to write: the same
 * kind for the same zone, server and address is already there at least as
 * bad (it is rewritten when this one is worse), or memory ran out.
 */
static struct caa_diag_finding *finding(struct cls *c, enum caa_diag_severity sev,
                                        enum caa_diag_kind kind, const char *name, const char *zone,
                                        const char *server, const char *addr)
{
    struct caa_diag_name *d = c->d;
    struct caa_diag_finding *f = NULL;
    for (size_t i = 0; i < d->nfindings && f == NULL; i++) {
        struct caa_diag_finding *o = &d->findings[i];
        if (o->kind == kind && same_zone(o->zone, zone) && strcmp(o->server, server) == 0 &&
            strcmp(o->address, addr) == 0) {
            if (o->severity >= sev)
                return NULL;
            f = o;
        }
    }
    if (f == NULL) {
        if (d->nfindings == c->cap) {
            size_t cap = c->cap ? 2 * c->cap : 8;
            struct caa_diag_finding *grown = realloc(d->findings, cap * sizeof *grown);
            if (grown == NULL) {
                c->nomem = true;
                return NULL;
            }
            d->findings = grown;
            c->cap = cap;
        }
        f = &d->findings[d->nfindings++];
    }
    memset(f, 0, sizeof *f);
    f->severity = sev;
    f->kind = kind;
    snprintf(f->name, sizeof f->name, "%s", name);
    snprintf(f->zone, sizeof f->zone, "%s", zone);
    snprintf(f->server, sizeof f->server, "%s", server);
    snprintf(f->address, sizeof f->address, "%s", addr);
    return f;
}

static const struct caa_diag_hop *hop_named(const struct caa_diag_name *d, const char *name)
{
    for (size_t i = 0; i < d->nhops; i++)
        if (strcasecmp(d->hops[i].name, name) == 0)
            return &d->hops[i];
    return NULL;
}

/* The hop right after `h` when it is the target of h's CNAME. */
static const struct caa_diag_hop *alias_target(const struct caa_diag_name *d,
                                               const struct caa_diag_hop *h)
{
    size_t i = (size_t)(h - d->hops);
    if (i + 1 < d->nhops && strcasecmp(d->hops[i + 1].alias_of, h->name) == 0)
        return &d->hops[i + 1];
    return NULL;
}

/* Does the resolver fail for this hop, in our round or in the verdict? */
static bool resolver_failed(const struct cls *c, const struct caa_diag_hop *h)
{
    if (h->resolver.asked && !usable(&h->resolver))
        return true;
    const struct caa_result *r = c->d->caa;
    size_t at = r->decision->at;
    return r->status == CAA_ERROR && at < r->nchain && h->alias_of[0] == '\0' &&
           strcasecmp(r->chain[at]->name, h->name) == 0;
}

/* What the server's SOA answer says about it, for evidence. */
static void put_soa(struct text *t, const struct caa_diag_hop *h, const struct caa_diag_server *s,
                    unsigned timeout_ms)
{
    const struct caa_diag_answer *a = &s->soa;
    const char *zone = h->zone[0] ? h->zone : ".";
    if (!a->asked)
        return;
    if (s->authoritative)
        put(t, "; it serves SOA %s with authority (serial %lu)", zone, s->serial);
    else if (a->error[0] != '\0')
        put(t, "; SOA %s: no answer (%s)", zone, a->error);
    else if (a->timeout)
        put(t, "; it does not answer SOA %s either", zone);
    else if (usable(a) && !a->aa)
        put(t, "; it answers SOA %s without authority", zone);
    else if (usable(a))
        put(t, "; it answers SOA %s without the zone's SOA record", zone);
    else
        put(t, "; it answers %s to SOA %s", caa_rcode_name(a->rcode), zone);
    (void)timeout_ms;
}

static const char *const FIX_REJECTS_TYPE =
    "A server must answer a query for a type it does not know with NOERROR and no records "
    "(RFC 1035, RFC 3597); rejecting CAA (type 257) is a bug of old server software, e.g. "
    "PowerDNS before 4.0. Ask the DNS provider to fix or upgrade the server, or take it out "
    "of the zone's NS records.";

/* One server's answer for one hop: NOTIMP, REFUSED, SERVFAIL, time-out, lame. */
static void server_problem(struct cls *c, const struct caa_diag_hop *h,
                           const struct caa_diag_server *s, bool rfail)
{
    const struct caa_diag_answer *a = &s->caa;
    enum caa_diag_severity sev = rfail ? CAA_DIAG_WILL_FAIL : CAA_DIAG_FLAKY;
    unsigned tmo = c->cx->timeout_ms;
    enum caa_diag_kind kind;
    const char *zone = h->zone[0] ? h->zone : ".";

    if (s->addr[0] == '\0') {
        kind = CAA_DIAG_LAME;
    } else if (!a->asked) {
        return;
    } else if (a->timeout) {
        if (c->cx->no_direct_answers && !rfail)
            return; /* this host reaches no server at all: said once, below */
        kind = CAA_DIAG_TIMEOUT;
    } else if (usable(a)) {
        if (a->aa)
            return;
        kind = CAA_DIAG_LAME;
    } else if (a->rcode == RCODE_NOTAUTH) {
        kind = CAA_DIAG_LAME;
    } else if (a->rcode == RCODE_REFUSED) {
        /* Refusing CAA alone is a broken server; refusing the zone's SOA
         * too means it does not serve the zone: lame. */
        kind = !s->authoritative && answered(&s->soa) ? CAA_DIAG_LAME : CAA_DIAG_REFUSED;
    } else if (a->rcode == RCODE_SERVFAIL) {
        kind = CAA_DIAG_SERVFAIL;
    } else {
        kind = CAA_DIAG_NOTIMP; /* NOTIMP, FORMERR, ...: the type is rejected */
    }

    struct caa_diag_finding *f = finding(c, sev, kind, h->name, h->zone, s->name, s->addr);
    if (f == NULL)
        return;
    struct text sum, ev, fix;
    text_init(&sum, f->summary, sizeof f->summary);
    text_init(&ev, f->evidence, sizeof f->evidence);
    text_init(&fix, f->fix, sizeof f->fix);

    if (s->addr[0] == '\0') {
        put(&sum, "nameserver %s of %s has no address", s->name, zone);
        put(&ev, "%s is in the NS records of %s, but %s", s->name, zone,
            s->why[0] ? s->why : "it has no A or AAAA record");
        put(&fix,
            "Give %s an address (A/AAAA records, and glue at the parent when it is inside "
            "the zone), or remove it from the NS records of %s and from the delegation "
            "at the parent.",
            s->name, zone);
        return;
    }
    put(&ev, "CAA %s @", h->name);
    put_server(&ev, s);
    put(&ev, ": ");
    put_answer(&ev, a, tmo);
    if (kind == CAA_DIAG_LAME && usable(a))
        put(&ev, " without the AA bit");
    put_soa(&ev, h, s, tmo);
    if (rfail)
        put(&ev, "; the resolver gets no answer for %s either", h->name);

    switch (kind) {
    case CAA_DIAG_TIMEOUT:
        put_server(&sum, s);
        put(&sum, " does not answer CAA queries for %s", h->name);
        if (s->authoritative)
            put(&fix, "The server answers other query types but not CAA: a firewall or filter "
                      "in front of it drops query types it does not know. Have it let every "
                      "query type through (ask the DNS provider if it is theirs).");
        else
            put(&fix,
                "The server does not answer at all: it is down or unreachable. Repair "
                "it, or remove it from the NS records of %s and from the delegation at "
                "the parent.",
                zone);
        break;
    case CAA_DIAG_NOTIMP:
    case CAA_DIAG_REFUSED:
        put_server(&sum, s);
        put(&sum, " answers %s to CAA queries for %s", caa_rcode_name(a->rcode), h->name);
        put(&fix, "%s", FIX_REJECTS_TYPE);
        break;
    case CAA_DIAG_SERVFAIL:
        put_server(&sum, s);
        put(&sum, " answers SERVFAIL to CAA queries for %s", h->name);
        put(&fix, "The server fails on CAA queries; its log says why. PowerDNS before 4.0 did "
                  "this, later versions with a broken database schema (e.g. no domainmetadata "
                  "table): upgrade or repair it. Publishing a CAA record avoids servers that "
                  "fail only on empty answers.");
        break;
    case CAA_DIAG_LAME:
        put_server(&sum, s);
        put(&sum, " is a nameserver of %s that does not serve it with authority", zone);
        put(&fix,
            "Remove %s from the NS records of %s and from the delegation at the parent, "
            "or load the zone on that server so that it answers with authority.",
            s->name, zone);
        break;
    default: break;
    }
}

static bool same_record(const struct caa_record *a, const struct caa_record *b)
{
    return a->flags == b->flags && a->tag_len == b->tag_len &&
           memcmp(a->tag, b->tag, a->tag_len) == 0 && a->value_len == b->value_len &&
           memcmp(a->value, b->value, a->value_len) == 0;
}

/* The same CAA records, in any order (a multiset). */
static bool same_set(const struct caa_record *a, size_t na, const struct caa_record *b, size_t nb)
{
    bool used[RECORDS_MAX] = {false};
    if (na != nb || na > RECORDS_MAX)
        return na == nb && na == 0;
    for (size_t i = 0; i < na; i++) {
        bool found = false;
        for (size_t j = 0; j < nb && !found; j++) {
            if (!used[j] && same_record(&a[i], &b[j])) {
                used[j] = true;
                found = true;
            }
        }
        if (!found)
            return false;
    }
    return true;
}

static bool same_answer(const struct caa_diag_answer *a, const struct caa_diag_answer *b)
{
    return a->rcode == b->rcode && strcasecmp(a->cname, b->cname) == 0 &&
           same_set(a->records, a->nrecords, b->records, b->nrecords);
}

/* Would the CA refuse if the resolver had got this server's set at this hop?
 * -1 when that cannot be told (an alias answer, a hop off the chain). */
static int refuses_with(const struct cls *c, const struct caa_diag_hop *h,
                        const struct caa_diag_answer *a)
{
    const struct caa_result *r = c->d->caa;
    const struct caa_lookup *chain[CHAIN_MAX];
    if (a->cname[0] != '\0' || h->chain_index >= r->nchain || r->nchain > CHAIN_MAX ||
        a->nrecords > RECORDS_MAX)
        return -1;
    struct caa_lookup alt = *r->chain[h->chain_index];
    alt.answer = CAA_ANSWER_RECORDS;
    alt.rcode = a->rcode;
    alt.records = a->records;
    alt.nrecords = a->nrecords;
    for (size_t i = 0; i < r->nchain; i++)
        chain[i] = i == h->chain_index ? &alt : r->chain[i];
    struct caa_decision dec = {0};
    if (caa_evaluate(chain, r->nchain, r->wildcard, c->p, &dec, NULL) != CP_OK)
        return -1;
    int refuses = dec.status == CAA_DENIED ? 1 : dec.status == CAA_ALLOWED ? 0 : -1;
    caa_decision_clear(&dec);
    return refuses;
}

/* The servers that answered (NOERROR/NXDOMAIN with authority) give one set? */
static void consistency(struct cls *c, struct caa_diag_hop *h)
{
    size_t n = h->nservers, groups = 0;
    h->agree = true;
    if (n == 0)
        return;
    size_t *g = malloc(n * sizeof *g), *count = calloc(n, sizeof *count);
    if (g == NULL || count == NULL) {
        c->nomem = true;
        goto out;
    }
    /* g[i]: the first server with the same answer; SIZE_MAX for unusable ones. */
    for (size_t i = 0; i < n; i++) {
        const struct caa_diag_answer *a = &h->servers[i].caa;
        g[i] = SIZE_MAX;
        if (h->servers[i].addr[0] == '\0' || !usable(a) || !a->aa)
            continue;
        for (size_t j = 0; j < i && g[i] == SIZE_MAX; j++)
            if (g[j] != SIZE_MAX && same_answer(a, &h->servers[j].caa))
                g[i] = g[j];
        if (g[i] == SIZE_MAX) {
            g[i] = i;
            groups++;
        }
        count[g[i]]++;
    }
    if (groups <= 1)
        goto out;
    h->agree = false;

    /* The reference set: the most servers; on a tie, the one the resolver got. */
    size_t ref = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        if (g[i] != i)
            continue;
        const struct caa_diag_answer *a = &h->servers[i].caa;
        bool like_resolver =
            usable(&h->resolver) && a->cname[0] == '\0' && a->rcode == h->resolver.rcode &&
            same_set(a->records, a->nrecords, h->resolver.records, h->resolver.nrecords);
        if (ref == SIZE_MAX || count[i] > count[ref] || (count[i] == count[ref] && like_resolver))
            ref = i;
    }
    const struct caa_diag_answer *refa = &h->servers[ref].caa;
    enum caa_diag_severity sev =
        c->d->caa->status == CAA_DENIED ? CAA_DIAG_BLOCKED : CAA_DIAG_FLAKY;
    int ref_refuses = refuses_with(c, h, refa);
    const char *zone = h->zone[0] ? h->zone : ".";

    for (size_t i = 0; i < n; i++) {
        if (g[i] == SIZE_MAX || g[i] == ref)
            continue;
        const struct caa_diag_server *s = &h->servers[i];
        struct caa_diag_finding *f =
            finding(c, sev, CAA_DIAG_INCONSISTENT, h->name, h->zone, s->name, s->addr);
        if (f == NULL)
            continue;
        struct text sum, ev, fix;
        text_init(&sum, f->summary, sizeof f->summary);
        text_init(&ev, f->evidence, sizeof f->evidence);
        text_init(&fix, f->fix, sizeof f->fix);
        put(&sum, "the nameservers of %s disagree on CAA %s: ", zone, h->name);
        put_server(&sum, s);
        put(&sum, " differs");

        put_server_serial(&ev, s);
        put(&ev, " answers ");
        put_answer(&ev, &s->caa, c->cx->timeout_ms);
        put(&ev, "; ");
        size_t listed = 0, more = 0;
        for (size_t j = 0; j < n; j++) {
            if (g[j] != ref)
                continue;
            if (listed == LISTED_MAX) {
                more++;
                continue;
            }
            put(&ev, "%s", listed ? ", " : "");
            put_server_serial(&ev, &h->servers[j]);
            listed++;
        }
        if (more)
            put(&ev, " and %zu more", more);
        put(&ev, " answer%s ", count[ref] == 1 ? "s" : "");
        put_answer(&ev, refa, c->cx->timeout_ms);
        int odd_refuses = refuses_with(c, h, &s->caa);
        if (odd_refuses >= 0 && ref_refuses >= 0 && odd_refuses != ref_refuses)
            put(&ev, "; a CA that gets the answer of %s would %s", s->name,
                odd_refuses ? "refuse" : "allow issuance");
        else if (odd_refuses == 1)
            put(&ev, "; the CA would refuse with either answer");
        put(&fix,
            "Make every nameserver of %s serve the same CAA records: compare their SOA "
            "serials; a secondary that missed a NOTIFY or a zone transfer serves an old "
            "copy, a server outside the transfer setup has its own.",
            zone);
    }
out:
    free(g);
    free(count);
}

/* SERVFAIL through the resolver, a good answer with CD=1, and every server
 * answering: the resolver's DNSSEC validation fails. */
static void dnssec(struct cls *c, const struct caa_diag_hop *h, bool rfail)
{
    if (!rfail || !answered(&h->resolver) || h->resolver.rcode != RCODE_SERVFAIL ||
        !usable(&h->resolver_cd) || h->nservers == 0)
        return;
    for (size_t i = 0; i < h->nservers; i++) {
        const struct caa_diag_server *s = &h->servers[i];
        if (s->addr[0] == '\0' || !usable(&s->caa) || !s->caa.aa)
            return;
    }
    /* An alias whose target fails the same way: the finding is the target's. */
    const struct caa_diag_hop *t = alias_target(c->d, h);
    if (t != NULL && t->resolver.asked && !usable(&t->resolver))
        return;

    const char *zone = h->zone[0] ? h->zone : ".";
    struct caa_diag_finding *f =
        finding(c, CAA_DIAG_WILL_FAIL, CAA_DIAG_DNSSEC, h->name, h->zone, "", "");
    if (f == NULL)
        return;
    struct text sum, ev, fix;
    text_init(&sum, f->summary, sizeof f->summary);
    text_init(&ev, f->evidence, sizeof f->evidence);
    text_init(&fix, f->fix, sizeof f->fix);
    put(&sum, "DNSSEC validation fails for %s", h->name);
    put(&ev,
        "the resolver %s answers SERVFAIL to CAA %s; asked again with checking disabled "
        "(CD=1) it answers ",
        c->resolver, h->name);
    put_answer(&ev, &h->resolver_cd, c->cx->timeout_ms);
    if (h->nservers == 1)
        put(&ev, "; the one authoritative server address of %s answers", zone);
    else
        put(&ev, "; all %zu authoritative server addresses of %s answer", h->nservers, zone);
    if (h->agree) {
        put(&ev, " ");
        put_answer(&ev, &h->servers[0].caa, c->cx->timeout_ms);
    }
    put(&fix,
        "Repair the chain of trust of %s: the DS record at the parent must match a key "
        "the zone is signed with, and its signatures must be current. Compare dig CAA "
        "%s with dig +cd CAA %s, and look at the zone with a DNSSEC debugger such as "
        "DNSViz (https://dnsviz.net/).",
        zone, h->name, h->name);
}

static bool has_tag(const struct caa_lookup *l, enum caa_tag tag)
{
    for (size_t i = 0; i < l->nrecords; i++)
        if (caa_tag_kind(l->records[i].tag, l->records[i].tag_len) == tag)
            return true;
    return false;
}

/* The verdict refuses: name the set, the records and what to publish. */
static void denied(struct cls *c)
{
    const struct caa_result *r = c->d->caa;
    const struct caa_decision *dec = r->decision;
    if (r->status != CAA_DENIED || dec->at >= r->nchain)
        return;
    const struct caa_lookup *set = r->chain[dec->at];
    const char *where = set->target[0] ? set->target : set->name;
    const struct caa_diag_hop *h = hop_named(c->d, where);
    struct caa_diag_finding *f =
        finding(c, CAA_DIAG_BLOCKED, CAA_DIAG_CAA_DENIED, where, h != NULL ? h->zone : "", "", "");
    if (f == NULL)
        return;
    struct text sum, ev, fix;
    text_init(&sum, f->summary, sizeof f->summary);
    text_init(&ev, f->evidence, sizeof f->evidence);
    text_init(&fix, f->fix, sizeof f->fix);

    put(&sum, "the CAA records at %s do not allow %s to issue for %s", where, c->p->ca_identity,
        r->ident);
    put(&ev, "CAA at %s", where);
    if (set->target[0])
        put(&ev, " (the CNAME target of %s)", set->name);
    put(&ev, ":");
    for (size_t i = 0; i < set->nrecords; i++) {
        char rec[300];
        (void)caa_record_format(&set->records[i], rec, sizeof rec);
        put(&ev, "%s %s", i ? "," : "", rec);
        if (dec->verdicts != NULL && i < dec->nverdicts)
            put(&ev, " (%s)", caa_verdict_name(dec->verdicts[i]));
    }
    if (r->explanation != NULL && r->explanation->problem_detail != NULL)
        put(&ev, "; the CA would answer: %s", r->explanation->problem_detail);

    if (dec->why == CAA_WHY_CRITICAL_UNKNOWN) {
        put(&fix, "Remove the record flagged critical at %s, or publish it with flags 0", where);
    } else {
        const char *tag = r->wildcard && has_tag(set, CAA_TAG_ISSUEWILD) ? "issuewild" : "issue";
        put(&fix, "Publish at %s: %s. CAA 0 %s \"%s", where, where, tag, c->p->ca_identity);
        if (c->p->account_uri != NULL)
            put(&fix, "; accounturi=%s", c->p->account_uri);
        put(&fix, "\" (one record that allows is enough)");
    }
    if (set->target[0])
        put(&fix,
            "; %s is an alias of %s, so ask whoever runs %s, or replace the alias by "
            "A/AAAA records",
            set->name, where, where);
    put(&fix, ". certpilot caa check %s prints the exact lines.", r->ident);
}

/* The end of the CNAME chain that starts at `h`. */
static const struct caa_diag_hop *chain_end(const struct caa_diag_name *d,
                                            const struct caa_diag_hop *h)
{
    for (const struct caa_diag_hop *t = alias_target(d, h); t != NULL; t = alias_target(d, t))
        h = t;
    return h;
}

/* The hop a CNAME at `end` points back to (a loop), or NULL. */
static const struct caa_diag_hop *loops_to(const struct caa_diag_name *d,
                                           const struct caa_diag_hop *end)
{
    const char *t = NULL;
    for (size_t k = 0; k < end->nservers && t == NULL; k++)
        if (usable(&end->servers[k].caa) && end->servers[k].caa.aa && end->servers[k].caa.cname[0])
            t = end->servers[k].caa.cname;
    if (t == NULL && usable(&end->resolver) && end->resolver.cname[0])
        t = end->resolver.cname;
    return t != NULL && alias_target(d, end) == NULL ? hop_named(d, t) : NULL;
}

/* An INFO finding per alias: the chain hop by hop and the set it ends at. */
static void aliases(struct cls *c)
{
    struct caa_diag_name *d = c->d;
    for (size_t i = 0; i < d->nhops; i++) {
        const struct caa_diag_hop *h = &d->hops[i];
        if (h->alias_of[0] != '\0' || alias_target(d, h) == NULL)
            continue;
        const struct caa_diag_hop *end = h;
        struct caa_diag_finding *f =
            finding(c, CAA_DIAG_INFO, CAA_DIAG_CNAME, h->name, h->zone, "", "");
        if (f == NULL)
            continue;
        struct text sum, ev, fix;
        text_init(&sum, f->summary, sizeof f->summary);
        text_init(&ev, f->evidence, sizeof f->evidence);
        text_init(&fix, f->fix, sizeof f->fix);
        put(&ev, "%s", h->name);
        for (const struct caa_diag_hop *t = alias_target(d, h); t != NULL; t = alias_target(d, t)) {
            put(&ev, " -> %s", t->name);
            if (t->zone[0])
                put(&ev, " (zone %s)", t->zone);
            end = t;
        }
        const struct caa_diag_hop *back = loops_to(d, end);
        if (back != NULL) {
            put(&ev, " -> %s: a loop", back->name);
            put(&sum, "%s is an alias in a CNAME loop: no resolver can follow it", h->name);
        } else {
            put(&sum, "%s is an alias: the CA uses the CAA records of %s", h->name, end->name);
        }
        put(&ev, "; at %s the resolver gets ", end->name);
        put_answer(&ev, &end->resolver, c->cx->timeout_ms);
        if (back != NULL) {
            put(&fix,
                "Point one of the aliases at a name with address records; until then "
                "every look-up of %s fails, the CA's included.",
                h->name);
            continue;
        }
        put(&fix,
            "Nothing to fix for the alias itself. The CAA records at %s decide for %s: to "
            "change them ask whoever runs %s, or replace the alias by A/AAAA records so "
            "that the zone of %s decides.",
            end->name, h->name, end->name, h->name);
    }
}

static bool worse_than(const struct caa_diag_name *d, enum caa_diag_severity sev)
{
    for (size_t i = 0; i < d->nfindings; i++)
        if (d->findings[i].severity >= sev)
            return true;
    return false;
}

/* The verdict is a DNS failure and nothing more specific was found. */
static void resolver_error(struct cls *c)
{
    const struct caa_result *r = c->d->caa;
    size_t at = r->decision->at;
    if (r->status != CAA_ERROR || at >= r->nchain || worse_than(c->d, CAA_DIAG_WILL_FAIL))
        return;
    const struct caa_lookup *l = r->chain[at];
    const struct caa_diag_hop *h0 = hop_named(c->d, l->name);
    /* For an alias, the trouble is where its chain ends. */
    const struct caa_diag_hop *h = h0 != NULL ? chain_end(c->d, h0) : NULL;
    const struct caa_diag_hop *back = h != NULL ? loops_to(c->d, h) : NULL;
    struct caa_diag_finding *f = finding(c, CAA_DIAG_WILL_FAIL, CAA_DIAG_RESOLVER_ERROR, l->name,
                                         h0 != NULL ? h0->zone : "", "", "");
    if (f == NULL)
        return;
    struct text sum, ev, fix;
    text_init(&sum, f->summary, sizeof f->summary);
    text_init(&ev, f->evidence, sizeof f->evidence);
    text_init(&fix, f->fix, sizeof f->fix);

    char what[64];
    switch (l->answer) {
    case CAA_ANSWER_TIMEOUT: snprintf(what, sizeof what, "no answer in time"); break;
    case CAA_ANSWER_NETWORK: snprintf(what, sizeof what, "a network error"); break;
    default: snprintf(what, sizeof what, "%s", caa_rcode_name(l->rcode)); break;
    }
    put(&sum, "the resolver gets %s looking up CAA for %s", what, l->name);
    put(&ev, "the resolver %s: %s for CAA %s", c->resolver, what, l->name);
    if (h0 != NULL && h0->resolver_cd.asked && !usable(&h0->resolver)) {
        put(&ev, "; with CD=1: ");
        put_answer(&ev, &h0->resolver_cd, c->cx->timeout_ms);
    }
    if (h != NULL && h != h0 && back == NULL)
        put(&ev, "; its CNAME chain ends at %s", h->name);

    bool all_answer = false;
    if (h != NULL && back == NULL) {
        const char *zone = h->zone[0] ? h->zone : ".";
        if (h->nservers == 0) {
            put(&ev, "; the authoritative servers of %s are unknown%s%s", h->name,
                h->zone_error[0] ? ": " : "", h->zone_error);
        } else {
            all_answer = true;
            for (size_t i = 0; i < h->nservers; i++)
                all_answer = all_answer && usable(&h->servers[i].caa) && h->servers[i].caa.aa;
            if (h->nservers == 1)
                put(&ev, "; the one server address of %s answers%s", zone,
                    all_answer ? " with authority" : "");
            else
                put(&ev, "; %s %zu server addresses of %s answer%s", all_answer ? "all" : "the",
                    h->nservers, zone, all_answer ? " with authority" : "");
        }
    }
    if (back != NULL)
        put(&fix,
            "The CNAME chain from %s comes back to %s, so no resolver can follow it: "
            "point one of its aliases at a name that has address records.",
            l->name, back->name);
    else if (l->answer == CAA_ANSWER_NETWORK)
        put(&fix, "Make sure the resolver %s is reachable from this host and try again.",
            c->resolver);
    else if (h != NULL && h->nservers == 0)
        put(&fix,
            "Repair the delegation of %s so that its nameservers can be found (NS records "
            "at the zone and at the parent, and addresses for them), then check each one "
            "with dig CAA %s @server.",
            h->name, h->name);
    else if (all_answer)
        put(&fix, "Every authoritative server answers, yet the resolver fails: check that "
                  "resolvers can reach them over UDP and TCP from anywhere (no firewall or "
                  "rate limit in the way) and that the zone's DNSSEC is intact.");
    else
        put(&fix,
            "Query each authoritative server of the zone directly (dig CAA %s @server) "
            "and repair the ones that do not answer NOERROR.",
            h != NULL ? h->name : l->name);
}

/* Not a single server answered this host: say it once, not per server. */
static void unreachable(struct cls *c)
{
    struct caa_diag_name *d = c->d;
    if (!c->cx->no_direct_answers)
        return;
    bool asked = false;
    for (size_t i = 0; i < d->nhops && !asked; i++)
        for (size_t j = 0; j < d->hops[i].nservers && !asked; j++)
            asked = d->hops[i].servers[j].caa.asked;
    if (!asked)
        return;
    struct caa_diag_finding *f =
        finding(c, CAA_DIAG_INFO, CAA_DIAG_TIMEOUT, d->hops[0].name, d->hops[0].zone, "", "");
    if (f == NULL)
        return;
    snprintf(f->summary, sizeof f->summary,
             "no authoritative server answered this host, so the servers were not compared");
    snprintf(f->evidence, sizeof f->evidence,
             "every query sent straight to an authoritative server went unanswered, while the "
             "resolver answers");
    snprintf(f->fix, sizeof f->fix,
             "This host is probably not allowed to send DNS queries to the Internet (UDP and "
             "TCP port 53); run the doctor from a host that is.");
}

/* Stable: worst first, in the order found within a severity. */
static void sort_findings(struct caa_diag_name *d)
{
    for (size_t i = 1; i < d->nfindings; i++) {
        struct caa_diag_finding f = d->findings[i];
        size_t j = i;
        while (j > 0 && d->findings[j - 1].severity < f.severity) {
            d->findings[j] = d->findings[j - 1];
            j--;
        }
        d->findings[j] = f;
    }
}

enum cp_code caa_diag_classify(struct caa_diag_name *d, const struct caa_diag_context *cx,
                               struct cp_err *err)
{
    if (d == NULL || cx == NULL || d->caa == NULL || d->caa->decision == NULL ||
        d->caa->params == NULL || d->caa->params->ca_identity == NULL)
        return cp_err_set(err, CP_EINVAL, "a diagnosis needs the CAA verdict of its name");
    free(d->findings);
    d->findings = NULL;
    d->nfindings = 0;
    d->status = CAA_DIAG_OK;

    struct cls c = {.d = d, .cx = cx, .p = d->caa->params};
    c.resolver = cx->resolver != NULL ? cx->resolver : "the system's resolver";

    denied(&c);
    for (size_t i = 0; i < d->nhops; i++) {
        struct caa_diag_hop *h = &d->hops[i];
        bool rfail = resolver_failed(&c, h);
        for (size_t j = 0; j < h->nservers; j++)
            server_problem(&c, h, &h->servers[j], rfail);
        consistency(&c, h);
        dnssec(&c, h, rfail);
    }
    resolver_error(&c);
    unreachable(&c);
    aliases(&c);
    if (c.nomem) {
        free(d->findings);
        d->findings = NULL;
        d->nfindings = 0;
        return cp_err_set(err, CP_ENOMEM, "out of memory classifying %s", d->ident);
    }
    sort_findings(d);
    for (size_t i = 0; i < d->nfindings; i++)
        if (d->findings[i].severity > d->status && d->findings[i].severity > CAA_DIAG_INFO)
            d->status = d->findings[i].severity;
    return CP_OK;
}

/* ------------------------------------------------------------ queries */

/* One query of a round and, once it ran, its answer. */
struct query {
    char qname[CAA_NAME_MAX + 1];
    unsigned qtype;
    size_t chan; /* 0: the resolver; k > 0: authoritative address k - 1 */
    bool cd;
    bool ran;
    int status;         /* ARES_SUCCESS, or why there is no answer */
    unsigned char *buf; /* a heap copy of the answer */
    int len;
    long long sent;
    long ms;
};

struct pending {
    struct query *q;
    size_t *outstanding;
};

struct addr {
    char text[64];
    struct ares_addr_port_node node;
};

struct zinfo {
    char zone[CAA_NAME_MAX + 1];
    bool taken; /* its NS answer has been read */
    size_t q_ns;
    char names[NS_NAMES_MAX][CAA_NAME_MAX + 1];
    size_t nnames;
    char why[320]; /* "" or why its NS names are unknown */
};

struct nsinfo {
    char name[CAA_NAME_MAX + 1];
    size_t q_a, q_aaaa;
    size_t addr[ADDRS_PER_NS]; /* indexes into ctx.addrs */
    size_t naddr;
    bool unroutable_only; /* it has addresses, none this host can reach */
    bool taken;           /* its A/AAAA answers have been read */
    char why[320];
};

/* Per hop, what is known of it and the queries asked for it. */
struct hopq {
    bool done;       /* its last round is over */
    bool guessed;    /* zone from the parent's SOA: the servers must confirm it */
    size_t q_zone;   /* SOA query naming its zone */
    size_t q_parent; /* when that fails: SOA of the parent */
    size_t zone;     /* index into ctx.zones */
    size_t q_res, q_cd;
    size_t *q_caa, *q_soa; /* per server; SIZE_MAX for one without address */
    size_t *q_apex;        /* guessed zones: SOA of the name itself, per server */
};

struct item {
    struct caa_diag_name d;
    struct hopq *hq; /* parallel to d.hops */
    size_t hcap;
    size_t last;         /* chain index of the last name looked at */
    size_t aliases_left; /* alias hops that may still be added */
    size_t q_a, q_aaaa, q_chal;
    size_t chal_zone; /* index into ctx.zones, SIZE_MAX when unknown */
};

struct caa_diag {
    struct caa_report *report;
    struct item *items;
    size_t n;
    char resolver[160];
};

struct ctx {
    const struct caa_resolver_opts *ropts;
    struct ares_addr_port_node *resolvers; /* NULL: the system's */
    unsigned budget, tries, port;
    struct query *q;
    size_t nq, qcap;
    struct addr *addrs;
    size_t naddrs, acap;
    struct zinfo *zones;
    size_t nzones, zcap;
    struct nsinfo *nss;
    size_t nnss, ncap;
};

/* Make room for one more element of an array of `size`-byte elements. */
static bool grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t cap2 = *cap ? 2 * *cap : 16;
    void *p = realloc(*arr, cap2 * size);
    if (p == NULL)
        return false;
    memset((char *)p + *cap * size, 0, (cap2 - *cap) * size);
    *arr = p;
    *cap = cap2;
    return true;
}

/* The index of the query (added when new), or SIZE_MAX without memory. */
static size_t query_add(struct ctx *cx, const char *name, unsigned type, size_t chan, bool cd)
{
    const char *qname = name[0] ? name : ".";
    for (size_t i = 0; i < cx->nq; i++) {
        const struct query *q = &cx->q[i];
        if (q->qtype == type && q->chan == chan && q->cd == cd && strcasecmp(q->qname, qname) == 0)
            return i;
    }
    if (!grow((void **)&cx->q, &cx->qcap, cx->nq, sizeof *cx->q))
        return SIZE_MAX;
    struct query *q = &cx->q[cx->nq];
    memset(q, 0, sizeof *q);
    snprintf(q->qname, sizeof q->qname, "%s", qname);
    q->qtype = type;
    q->chan = chan;
    q->cd = cd;
    q->status = ARES_ETIMEOUT;
    return cx->nq++;
}

static void on_reply(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct pending *pd = arg;
    struct query *q = pd->q;
    (void)timeouts;
    (*pd->outstanding)--;
    q->ms = (long)(caa_dns_now_ms() - q->sent);
    q->status = caa_dns_keep_answer(status, abuf, alen, &q->buf, &q->len);
    free(pd);
}

static bool send_query(ares_channel ch, struct query *q, size_t *outstanding)
{
    unsigned char *buf = NULL;
    int len = 0;
    /* RD only towards the resolver: the servers are asked what they hold. */
    int st = ares_create_query(q->qname, CAA_DNS_CLASS_IN, (int)q->qtype, 0, q->chan == 0, &buf,
                               &len, CAA_DNS_EDNS_UDP_SIZE);
    if (st != ARES_SUCCESS) {
        q->status = st;
        return true;
    }
    if (q->cd)
        buf[3] |= 0x10; /* RFC 4035 §3.2.2: the resolver skips validation */
    struct pending *pd = malloc(sizeof *pd);
    if (pd == NULL) {
        ares_free_string(buf);
        return false;
    }
    pd->q = q;
    pd->outstanding = outstanding;
    (*outstanding)++;
    q->sent = caa_dns_now_ms();
    ares_send(ch, buf, len, on_reply, pd); /* may call back at once */
    ares_free_string(buf);
    return true;
}

/*
 * Run every query not run yet: one c-ares channel for the resolver and one per
 * server address, all driven by one poll loop; CAA_DNS_CHANNELS_MAX channels
 * at a time, each group bounded by the budget.
 */
static enum cp_code run_pending(struct ctx *cx, struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    size_t *chans = malloc((cx->nq ? cx->nq : 1) * sizeof *chans);
    size_t *slot = malloc((cx->naddrs + 1) * sizeof *slot);
    size_t nchans = 0;
    if (chans == NULL || slot == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory for DNS queries");
        goto out;
    }
    for (size_t i = 0; i <= cx->naddrs; i++)
        slot[i] = SIZE_MAX;
    for (size_t i = 0; i < cx->nq; i++) {
        if (cx->q[i].ran || slot[cx->q[i].chan] != SIZE_MAX)
            continue;
        slot[cx->q[i].chan] = nchans;
        chans[nchans++] = cx->q[i].chan;
    }
    for (size_t g = 0; g < nchans && rc == CP_OK; g += CAA_DNS_CHANNELS_MAX) {
        size_t ng = nchans - g < CAA_DNS_CHANNELS_MAX ? nchans - g : CAA_DNS_CHANNELS_MAX;
        ares_channel chs[CAA_DNS_CHANNELS_MAX] = {0};
        size_t outstanding = 0;
        for (size_t k = 0; k < ng && rc == CP_OK; k++) {
            size_t chan = chans[g + k];
            if (chan == 0)
                rc = caa_dns_open(cx->resolvers, cx->budget, cx->tries, 0, &chs[k], err);
            else
                rc = caa_dns_open(&cx->addrs[chan - 1].node, cx->budget, cx->tries,
                                  ARES_FLAG_NORECURSE, &chs[k], err);
        }
        for (size_t i = 0; i < cx->nq && rc == CP_OK; i++) {
            struct query *q = &cx->q[i];
            size_t s = slot[q->chan];
            if (q->ran || s < g || s >= g + ng)
                continue;
            q->ran = true;
            if (!send_query(chs[s - g], q, &outstanding))
                rc = cp_err_set(err, CP_ENOMEM, "out of memory for DNS queries");
        }
        if (rc == CP_OK)
            caa_dns_run(chs, ng, &outstanding, caa_dns_now_ms() + cx->budget);
        for (size_t k = 0; k < ng; k++)
            caa_dns_close(chs[k]); /* pending callbacks run here */
    }
out:
    free(chans);
    free(slot);
    return rc;
}

static const struct query *Q(const struct ctx *cx, size_t i)
{
    return i < cx->nq && cx->q[i].ran ? &cx->q[i] : NULL;
}

static const char *type_name(unsigned t)
{
    switch (t) {
    case CAA_DNS_TYPE_A: return "A";
    case CAA_DNS_TYPE_NS: return "NS";
    case CAA_DNS_TYPE_SOA: return "SOA";
    case CAA_DNS_TYPE_AAAA: return "AAAA";
    default: return "CAA";
    }
}

/* Why a query through the resolver gave nothing usable, or NULL when it did. */
static const char *failed(const struct query *q, char *buf, size_t size)
{
    if (q == NULL) {
        snprintf(buf, size, "not asked");
    } else if (q->status != ARES_SUCCESS) {
        bool late = q->status == ARES_ETIMEOUT || q->status == ARES_ECANCELLED ||
                    q->status == ARES_EDESTRUCTION;
        snprintf(buf, size, "no answer from the resolver to %s %s (%s)", type_name(q->qtype),
                 q->qname, late ? "timed out" : ares_strerror(q->status));
    } else {
        int rcode = q->buf[3] & 0x0F;
        if (rcode == RCODE_NOERROR || rcode == RCODE_NXDOMAIN)
            return NULL;
        snprintf(buf, size, "the resolver answers %s to %s %s", caa_rcode_name(rcode),
                 type_name(q->qtype), q->qname);
    }
    return buf;
}

/* ------------------------------------------------------------ answers */

/* Why a query got no DNS answer other than by timing out. */
static void no_answer_why(int status, char *buf, size_t size)
{
    if (status == ARES_ECONNREFUSED)
        snprintf(buf, size, "refused at the network level: nothing serves DNS there");
    else if (status == ARES_EBADRESP)
        snprintf(buf, size, "an unreadable answer");
    else
        snprintf(buf, size, "%s", ares_strerror(status));
}

static void records_free(struct caa_diag_answer *a)
{
    for (size_t i = 0; i < a->nrecords; i++) {
        free(a->records[i].tag);
        free(a->records[i].value);
    }
    free(a->records);
    a->records = NULL;
    a->nrecords = 0;
}

static enum cp_code add_record(struct caa_diag_answer *a, const unsigned char *rd, size_t rdlen)
{
    if (a->nrecords == RECORDS_MAX)
        return CP_OK;
    return caa_dns_add_caa(&a->records, &a->nrecords, rd, rdlen);
}

/* Fill `a` from a CAA query about `name`.  CP_ENOMEM only: an unreadable
 * answer is recorded as such. */
static enum cp_code take_caa(const struct query *q, const char *name, struct caa_diag_answer *a)
{
    struct caa_dns_aliases al;
    struct caa_dns_walk w;
    struct caa_dns_rr rr;

    memset(a, 0, sizeof *a);
    a->rcode = -1;
    if (q == NULL)
        return CP_OK;
    a->asked = true;
    a->ms = q->ms;
    if (q->status == ARES_ETIMEOUT || q->status == ARES_ECANCELLED ||
        q->status == ARES_EDESTRUCTION) {
        a->timeout = true;
        return CP_OK;
    }
    if (q->status != ARES_SUCCESS) {
        a->timeout = true; /* no DNS answer at all; `error` says why */
        no_answer_why(q->status, a->error, sizeof a->error);
        return CP_OK;
    }
    al.n = 0;
    if (caa_dns_walk_start(&w, q->buf, q->len) != 0)
        goto unreadable;
    a->rcode = w.rcode;
    a->aa = w.aa;
    while (w.section == CAA_DNS_ANSWER) {
        if (caa_dns_walk_next(&w, &rr) != 1 ||
            (rr.rrclass == CAA_DNS_CLASS_IN && rr.type == CAA_DNS_TYPE_CNAME &&
             caa_dns_aliases_add(&al, &w, &rr) != 0))
            goto unreadable;
    }
    for (size_t i = 0; i < al.n; i++)
        if (strcasecmp(al.a[i].owner, name) == 0)
            snprintf(a->cname, sizeof a->cname, "%s", al.a[i].target);
    caa_dns_lower(a->cname);
    const char *end = caa_dns_aliases_follow(&al, name);
    if (caa_dns_walk_start(&w, q->buf, q->len) != 0)
        goto unreadable;
    while (w.section == CAA_DNS_ANSWER) {
        if (caa_dns_walk_next(&w, &rr) != 1)
            goto unreadable;
        if (rr.rrclass != CAA_DNS_CLASS_IN || rr.type != CAA_DNS_TYPE_CAA ||
            strcasecmp(rr.owner, end) != 0)
            continue;
        enum cp_code rc = add_record(a, rr.rdata, rr.rdlen);
        if (rc == CP_ENOMEM)
            return rc;
        if (rc != CP_OK)
            goto unreadable;
    }
    return CP_OK;
unreadable:
    records_free(a);
    a->cname[0] = '\0';
    a->rcode = -1;
    a->aa = false;
    a->timeout = true;
    snprintf(a->error, sizeof a->error, "an unreadable answer");
    return CP_OK;
}

/* Fill the server's SOA probe: does it serve `zone` with authority? */
static void take_soa(const struct query *q, const char *zone, struct caa_diag_server *s)
{
    struct caa_dns_walk w;
    struct caa_dns_rr rr;
    struct caa_diag_answer *a = &s->soa;

    memset(a, 0, sizeof *a);
    a->rcode = -1;
    s->authoritative = false;
    s->serial = 0;
    if (q == NULL)
        return;
    a->asked = true;
    a->ms = q->ms;
    if (q->status == ARES_ETIMEOUT || q->status == ARES_ECANCELLED ||
        q->status == ARES_EDESTRUCTION) {
        a->timeout = true;
        return;
    }
    if (q->status != ARES_SUCCESS || caa_dns_walk_start(&w, q->buf, q->len) != 0) {
        a->timeout = true;
        no_answer_why(q->status != ARES_SUCCESS ? q->status : ARES_EBADRESP, a->error,
                      sizeof a->error);
        return;
    }
    a->rcode = w.rcode;
    a->aa = w.aa;
    while (w.section == CAA_DNS_ANSWER) {
        if (caa_dns_walk_next(&w, &rr) != 1)
            return;
        if (rr.rrclass != CAA_DNS_CLASS_IN || rr.type != CAA_DNS_TYPE_SOA ||
            strcasecmp(rr.owner, zone) != 0)
            continue;
        /* RDATA: MNAME, RNAME (maybe compressed), then the serial. */
        const unsigned char *p = rr.rdata;
        char skip[CAA_NAME_MAX + 1];
        if (caa_dns_expand_name(p, w.abuf, w.alen, skip, &p) != 0 ||
            caa_dns_expand_name(p, w.abuf, w.alen, skip, &p) != 0 || p + 4 > rr.rdata + rr.rdlen)
            return;
        s->serial = (unsigned long)caa_dns_read16(p) << 16 | caa_dns_read16(p + 2);
        s->authoritative = w.rcode == RCODE_NOERROR && w.aa;
        return;
    }
}

/* The zone of `name` from the resolver's answer to SOA `name`; `name` must
 * not be an alias (its zone is then that of its parent).  The fallback, for
 * a resolver that leaves out the authority section, is caa_zone_servers(). */
static void zone_of(const struct ctx *cx, size_t qi, const char *name, char zone[CAA_NAME_MAX + 1],
                    char *why, size_t whysize)
{
    char target[CAA_NAME_MAX + 1];
    const struct query *q = Q(cx, qi);
    zone[0] = '\0';
    if (failed(q, why, whysize) != NULL)
        return;
    int found = caa_zone_from_soa_answer(q->buf, q->len, name, target, zone);
    if (found < 0) {
        snprintf(why, whysize, "unreadable answer from the resolver to SOA %s", name);
        zone[0] = '\0';
        return;
    }
    if (strcasecmp(target, name) != 0) {
        snprintf(why, whysize, "%s is an alias of %s, so its zone cannot be told", name, target);
        zone[0] = '\0';
        return;
    }
    if (found == 0) {
        struct caa_ns *ns = NULL;
        size_t nns = 0;
        struct cp_err e = {0};
        if (caa_zone_servers(cx->ropts, name, zone, target, &ns, &nns, &e) != CP_OK) {
            snprintf(why, whysize, "%.300s", e.msg);
            zone[0] = '\0';
        }
        free(ns);
        return;
    }
    why[0] = '\0';
}

/* ---------------------------------------------------------------- hops */

/* A new hop at position `at` (the later ones move up). */
static struct caa_diag_hop *hop_insert(struct item *it, size_t at, const char *name,
                                       const char *alias_of, size_t chain_index)
{
    struct caa_diag_name *d = &it->d;
    if (d->nhops == it->hcap) {
        size_t cap = it->hcap ? 2 * it->hcap : 8;
        struct caa_diag_hop *h = realloc(d->hops, cap * sizeof *h);
        if (h == NULL)
            return NULL;
        d->hops = h;
        struct hopq *hq = realloc(it->hq, cap * sizeof *hq);
        if (hq == NULL)
            return NULL;
        it->hq = hq;
        it->hcap = cap;
    }
    memmove(&d->hops[at + 1], &d->hops[at], (d->nhops - at) * sizeof d->hops[0]);
    memmove(&it->hq[at + 1], &it->hq[at], (d->nhops - at) * sizeof it->hq[0]);
    struct caa_diag_hop *h = &d->hops[at];
    struct hopq *hq = &it->hq[at];
    memset(h, 0, sizeof *h);
    memset(hq, 0, sizeof *hq);
    hq->q_zone = hq->q_parent = hq->zone = hq->q_res = hq->q_cd = SIZE_MAX;
    h->resolver.rcode = h->resolver_cd.rcode = -1;
    h->agree = true;
    snprintf(h->name, sizeof h->name, "%s", name);
    snprintf(h->alias_of, sizeof h->alias_of, "%s", alias_of);
    caa_dns_lower(h->name);
    caa_dns_lower(h->alias_of);
    h->chain_index = chain_index;
    d->nhops++;
    return h;
}

static struct caa_diag_hop *hop_add(struct item *it, const char *name, const char *alias_of,
                                    size_t chain_index)
{
    return hop_insert(it, it->d.nhops, name, alias_of, chain_index);
}

/* The parent of a name ("b.c" for "a.b.c"); "" for a TLD. */
static const char *parent_of(const char *name)
{
    const char *dot = strchr(name, '.');
    return dot != NULL ? dot + 1 : "";
}

/* Hops of one identifier: its chain names up to the relevant one, and after
 * each alias the names its CNAME chain runs through (from the resolver's
 * answer to SOA, which carries the chain).  At most CAA_DNS_CNAME_HOPS_MAX
 * alias hops in all. */
static enum cp_code build_hops(const struct ctx *cx, struct item *it, const size_t *q_soa)
{
    const struct caa_result *res = it->d.caa;
    size_t aliases_left = it->aliases_left;
    for (size_t j = 0; j <= it->last; j++) {
        const struct caa_lookup *l = res->chain[j];
        if (hop_add(it, l->name, "", j) == NULL)
            return CP_ENOMEM;
        struct caa_dns_aliases al;
        struct caa_dns_walk w;
        struct caa_dns_rr rr;
        char why[8];
        const struct query *q = Q(cx, q_soa[j]);
        al.n = 0;
        if (failed(q, why, sizeof why) == NULL && caa_dns_walk_start(&w, q->buf, q->len) == 0) {
            while (w.section == CAA_DNS_ANSWER && caa_dns_walk_next(&w, &rr) == 1)
                if (rr.rrclass == CAA_DNS_CLASS_IN && rr.type == CAA_DNS_TYPE_CNAME &&
                    caa_dns_aliases_add(&al, &w, &rr) != 0)
                    break;
        }
        const char *cur = l->name;
        bool any = false;
        for (; aliases_left > 0; aliases_left--) {
            const char *next = NULL;
            for (size_t a = 0; a < al.n && next == NULL; a++)
                if (strcasecmp(al.a[a].owner, cur) == 0)
                    next = al.a[a].target;
            if (next == NULL)
                break;
            if (hop_add(it, next, cur, j) == NULL)
                return CP_ENOMEM;
            cur = next;
            any = true;
        }
        /* The verdict saw an alias our SOA look-up did not: its end only. */
        if (!any && l->target[0] != '\0' && aliases_left > 0) {
            aliases_left--;
            if (hop_add(it, l->target, l->name, j) == NULL)
                return CP_ENOMEM;
        }
    }
    it->aliases_left = aliases_left;
    return CP_OK;
}

/* The name whose SOA answer gives the hop's zone: the hop itself, or its
 * parent when the hop is an alias (a CNAME owner is never a zone apex). */
static const char *soa_name(const struct item *it, size_t i)
{
    const struct caa_diag_name *d = &it->d;
    bool alias = i + 1 < d->nhops && strcasecmp(d->hops[i + 1].alias_of, d->hops[i].name) == 0;
    if (!alias && d->hops[i].alias_of[0] == '\0') {
        const struct caa_lookup *l = d->caa->chain[d->hops[i].chain_index];
        alias = l->target[0] != '\0';
    }
    return alias ? parent_of(d->hops[i].name) : d->hops[i].name;
}

static size_t zone_add(struct ctx *cx, const char *zone)
{
    for (size_t i = 0; i < cx->nzones; i++)
        if (strcasecmp(cx->zones[i].zone, zone) == 0)
            return i;
    if (!grow((void **)&cx->zones, &cx->zcap, cx->nzones, sizeof *cx->zones))
        return SIZE_MAX;
    struct zinfo *z = &cx->zones[cx->nzones];
    memset(z, 0, sizeof *z);
    snprintf(z->zone, sizeof z->zone, "%s", zone);
    z->q_ns = query_add(cx, zone, CAA_DNS_TYPE_NS, 0, true);
    if (z->q_ns == SIZE_MAX)
        return SIZE_MAX;
    return cx->nzones++;
}

static size_t ns_add(struct ctx *cx, const char *name)
{
    for (size_t i = 0; i < cx->nnss; i++)
        if (strcmp(cx->nss[i].name, name) == 0)
            return i;
    if (!grow((void **)&cx->nss, &cx->ncap, cx->nnss, sizeof *cx->nss))
        return SIZE_MAX;
    struct nsinfo *ns = &cx->nss[cx->nnss];
    memset(ns, 0, sizeof *ns);
    snprintf(ns->name, sizeof ns->name, "%s", name);
    ns->q_a = query_add(cx, name, CAA_DNS_TYPE_A, 0, true);
    ns->q_aaaa = query_add(cx, name, CAA_DNS_TYPE_AAAA, 0, true);
    if (ns->q_a == SIZE_MAX || ns->q_aaaa == SIZE_MAX)
        return SIZE_MAX;
    return cx->nnss++;
}

static size_t addr_add(struct ctx *cx, int family, const void *bytes, const char *text)
{
    for (size_t i = 0; i < cx->naddrs; i++)
        if (strcmp(cx->addrs[i].text, text) == 0)
            return i;
    if (!grow((void **)&cx->addrs, &cx->acap, cx->naddrs, sizeof *cx->addrs))
        return SIZE_MAX;
    struct addr *a = &cx->addrs[cx->naddrs];
    memset(a, 0, sizeof *a);
    snprintf(a->text, sizeof a->text, "%s", text);
    a->node.family = family;
    if (family == AF_INET)
        memcpy(&a->node.addr.addr4, bytes, 4);
    else
        memcpy(&a->node.addr.addr6, bytes, 16);
    a->node.udp_port = a->node.tcp_port = (int)cx->port;
    a->node.next = NULL;
    return cx->naddrs++;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The NS names of each zone from the answers to NS, sorted (resolvers rotate
 * them; reports should not). */
static void take_ns_names(struct ctx *cx)
{
    for (size_t z = 0; z < cx->nzones; z++) {
        struct zinfo *zi = &cx->zones[z];
        const struct query *q = Q(cx, zi->q_ns);
        if (zi->taken || q == NULL)
            continue;
        zi->taken = true;
        if (failed(q, zi->why, sizeof zi->why) != NULL)
            continue;
        int found = caa_dns_ns_names(q->buf, q->len, zi->zone, zi->names, NS_NAMES_MAX);
        if (found < 0)
            goto unreadable;
        zi->nnames = found > NS_NAMES_MAX ? NS_NAMES_MAX : (size_t)found;
        qsort(zi->names, zi->nnames, sizeof zi->names[0], cmp_name);
        if (zi->nnames == 0)
            snprintf(zi->why, sizeof zi->why, "the resolver returns no NS records for %s",
                     zi->zone[0] ? zi->zone : ".");
        continue;
    unreadable:
        zi->nnames = 0;
        snprintf(zi->why, sizeof zi->why, "unreadable answer from the resolver to NS %s",
                 zi->zone[0] ? zi->zone : ".");
    }
}

/* The addresses in an answer to A or AAAA: into `out` as text (at most
 * `max`); with `cx`, the routable ones become server addresses of `ns`. */
static size_t take_addresses(struct ctx *cx, const struct query *q, struct nsinfo *ns,
                             char (*out)[64], size_t max, size_t *nout)
{
    struct caa_dns_walk w;
    struct caa_dns_rr rr;
    size_t found = 0;
    if (q == NULL || q->status != ARES_SUCCESS || caa_dns_walk_start(&w, q->buf, q->len) != 0)
        return 0;
    while (w.section == CAA_DNS_ANSWER && caa_dns_walk_next(&w, &rr) == 1) {
        int family = rr.type == CAA_DNS_TYPE_A && rr.rdlen == 4       ? AF_INET
                     : rr.type == CAA_DNS_TYPE_AAAA && rr.rdlen == 16 ? AF_INET6
                                                                      : AF_UNSPEC;
        char text[INET6_ADDRSTRLEN];
        if (rr.rrclass != CAA_DNS_CLASS_IN || family == AF_UNSPEC || rr.type != q->qtype ||
            inet_ntop(family, rr.rdata, text, sizeof text) == NULL)
            continue;
        found++;
        if (out != NULL && *nout < max) {
            bool dup = false;
            for (size_t i = 0; i < *nout && !dup; i++)
                dup = strcmp(out[i], text) == 0;
            if (!dup)
                snprintf(out[(*nout)++], 64, "%s", text);
        }
        if (ns == NULL || !caa_zone_routable(family, rr.rdata) || ns->naddr == ADDRS_PER_NS)
            continue;
        size_t a = addr_add(cx, family, rr.rdata, text);
        if (a == SIZE_MAX)
            return SIZE_MAX;
        bool dup = false;
        for (size_t i = 0; i < ns->naddr && !dup; i++)
            dup = ns->addr[i] == a;
        if (!dup)
            ns->addr[ns->naddr++] = a;
    }
    return found;
}

static enum cp_code take_ns_addresses(struct ctx *cx)
{
    for (size_t i = 0; i < cx->nnss; i++) {
        struct nsinfo *ns = &cx->nss[i];
        const struct query *qa = Q(cx, ns->q_a), *q6 = Q(cx, ns->q_aaaa);
        size_t found = 0;
        if (ns->taken || qa == NULL || q6 == NULL)
            continue;
        ns->taken = true;
        for (int t = 0; t < 2; t++) {
            size_t n = take_addresses(cx, t == 0 ? qa : q6, ns, NULL, 0, NULL);
            if (n == SIZE_MAX)
                return CP_ENOMEM;
            found += n;
        }
        if (ns->naddr > 0)
            continue;
        if (found > 0) {
            ns->unroutable_only = true;
            continue;
        }
        char why4[320], why6[320];
        const char *f4 = failed(qa, why4, sizeof why4), *f6 = failed(q6, why6, sizeof why6);
        if (f4 != NULL)
            snprintf(ns->why, sizeof ns->why, "its address look-up fails: %.280s", f4);
        else if (f6 != NULL)
            snprintf(ns->why, sizeof ns->why, "it has no A record, and %.280s", f6);
        else
            snprintf(ns->why, sizeof ns->why, "the resolver finds no A or AAAA record for it");
    }
    return CP_OK;
}

/* The servers of the hop's zone, and the queries of its last round. */
static enum cp_code plan_hop(struct ctx *cx, struct caa_diag_hop *h, struct hopq *hq)
{
    hq->q_res = query_add(cx, h->name, CAA_DNS_TYPE_CAA, 0, false);
    hq->q_cd = query_add(cx, h->name, CAA_DNS_TYPE_CAA, 0, true);
    if (hq->q_res == SIZE_MAX || hq->q_cd == SIZE_MAX)
        return CP_ENOMEM;
    if (hq->zone == SIZE_MAX)
        return CP_OK;
    const struct zinfo *z = &cx->zones[hq->zone];
    if (z->nnames == 0) {
        snprintf(h->zone_error, sizeof h->zone_error, "%s", z->why);
        return CP_OK;
    }
    h->servers = calloc(ZONE_SERVERS_MAX, sizeof *h->servers);
    hq->q_caa = calloc(ZONE_SERVERS_MAX, sizeof *hq->q_caa);
    hq->q_soa = calloc(ZONE_SERVERS_MAX, sizeof *hq->q_soa);
    hq->q_apex = hq->guessed ? calloc(ZONE_SERVERS_MAX, sizeof *hq->q_apex) : NULL;
    if (h->servers == NULL || hq->q_caa == NULL || hq->q_soa == NULL ||
        (hq->guessed && hq->q_apex == NULL))
        return CP_ENOMEM;
    for (size_t k = 0; k < z->nnames; k++) {
        size_t ni = ns_add(cx, z->names[k]);
        if (ni == SIZE_MAX)
            return CP_ENOMEM;
        const struct nsinfo *ns = &cx->nss[ni];
        if (ns->unroutable_only)
            continue;
        for (size_t a = 0; a < (ns->naddr ? ns->naddr : 1); a++) {
            struct caa_diag_server *s = &h->servers[h->nservers];
            size_t si = h->nservers++;
            snprintf(s->name, sizeof s->name, "%s", ns->name);
            s->caa.rcode = s->soa.rcode = -1;
            hq->q_caa[si] = hq->q_soa[si] = SIZE_MAX;
            if (hq->q_apex != NULL)
                hq->q_apex[si] = SIZE_MAX;
            if (ns->naddr == 0) {
                snprintf(s->why, sizeof s->why, "%s", ns->why);
                continue;
            }
            snprintf(s->addr, sizeof s->addr, "%s", cx->addrs[ns->addr[a]].text);
            hq->q_caa[si] = query_add(cx, h->name, CAA_DNS_TYPE_CAA, ns->addr[a] + 1, false);
            hq->q_soa[si] = query_add(cx, h->zone, CAA_DNS_TYPE_SOA, ns->addr[a] + 1, false);
            if (hq->q_caa[si] == SIZE_MAX || hq->q_soa[si] == SIZE_MAX)
                return CP_ENOMEM;
            if (hq->q_apex != NULL &&
                (hq->q_apex[si] =
                     query_add(cx, h->name, CAA_DNS_TYPE_SOA, ns->addr[a] + 1, false)) == SIZE_MAX)
                return CP_ENOMEM;
        }
    }
    return CP_OK;
}

static void servers_clear(struct caa_diag_hop *h)
{
    for (size_t i = 0; i < h->nservers; i++) {
        records_free(&h->servers[i].caa);
        records_free(&h->servers[i].soa);
    }
    free(h->servers);
    h->servers = NULL;
    h->nservers = 0;
}

static enum cp_code take_hop(const struct ctx *cx, struct caa_diag_hop *h, struct hopq *hq)
{
    if (take_caa(Q(cx, hq->q_res), h->name, &h->resolver) != CP_OK ||
        take_caa(Q(cx, hq->q_cd), h->name, &h->resolver_cd) != CP_OK)
        return CP_ENOMEM;
    bool authoritative = false, without_aa = false, apex = false;
    for (size_t k = 0; k < h->nservers; k++) {
        struct caa_diag_server *s = &h->servers[k];
        if (hq->q_caa[k] == SIZE_MAX)
            continue;
        if (take_caa(Q(cx, hq->q_caa[k]), h->name, &s->caa) != CP_OK)
            return CP_ENOMEM;
        take_soa(Q(cx, hq->q_soa[k]), h->zone, s);
        authoritative = authoritative || (usable(&s->caa) && s->caa.aa);
        without_aa = without_aa || (usable(&s->caa) && !s->caa.aa);
        if (hq->q_apex != NULL && hq->q_apex[k] != SIZE_MAX) {
            struct caa_diag_server probe;
            memset(&probe, 0, sizeof probe);
            take_soa(Q(cx, hq->q_apex[k]), h->name, &probe);
            apex = apex || probe.authoritative;
        }
    }
    /* A zone guessed from the parent is wrong when its servers only refer
     * the name elsewhere, or serve the name's own SOA: then the name is a
     * zone of its own, which the resolver could not reach, and blaming the
     * parent's servers would mislead. */
    if (hq->guessed && (apex || (!authoritative && without_aa))) {
        snprintf(h->zone_error, sizeof h->zone_error,
                 "%.100s is a zone of its own (below %.100s), whose nameservers the "
                 "resolver cannot find or reach",
                 h->name, h->zone);
        h->zone[0] = '\0';
        servers_clear(h);
    }
    return CP_OK;
}

/* A CNAME the servers (or the resolver) show for a hop with no target hop
 * after it: where the resolver could not follow the chain.  NULL if none. */
static const char *unfollowed_alias(const struct item *it, size_t i)
{
    const struct caa_diag_name *d = &it->d;
    const struct caa_diag_hop *h = &d->hops[i];
    if (i + 1 < d->nhops && strcasecmp(d->hops[i + 1].alias_of, h->name) == 0)
        return NULL;
    const char *t = NULL;
    for (size_t k = 0; k < h->nservers && t == NULL; k++)
        if (usable(&h->servers[k].caa) && h->servers[k].caa.aa && h->servers[k].caa.cname[0])
            t = h->servers[k].caa.cname;
    if (t == NULL && usable(&h->resolver) && h->resolver.cname[0])
        t = h->resolver.cname;
    for (size_t k = 0; t != NULL && k < d->nhops; k++)
        if (strcasecmp(d->hops[k].name, t) == 0)
            return NULL; /* a loop: shown by the servers' answers */
    return t;
}

/* ----------------------------------------------------------- readiness */

/* dns-01: the zone of _acme-challenge.NAME, or of where its CNAME chain ends
 * (the TXT record goes there), so that its NS names are looked up. */
static enum cp_code add_challenge_zone(struct ctx *cx, struct item *it)
{
    struct caa_diag_readiness *r = &it->d.readiness;
    const struct query *qc = Q(cx, it->q_chal);
    if (qc == NULL || failed(qc, r->challenge_error, sizeof r->challenge_error) != NULL)
        return CP_OK;
    int found = caa_zone_from_soa_answer(qc->buf, qc->len, r->challenge_name, r->challenge_target,
                                         r->challenge_zone);
    if (found != 1) {
        r->challenge_zone[0] = '\0';
        snprintf(r->challenge_error, sizeof r->challenge_error,
                 "the resolver's answer to SOA %.200s names no zone", r->challenge_name);
        return CP_OK;
    }
    it->chal_zone = zone_add(cx, r->challenge_zone);
    return it->chal_zone == SIZE_MAX ? CP_ENOMEM : CP_OK;
}

static void take_readiness(struct ctx *cx, struct item *it)
{
    struct caa_diag_readiness *r = &it->d.readiness;
    const struct query *qa = Q(cx, it->q_a), *q6 = Q(cx, it->q_aaaa);
    const char *base = it->d.caa->chain[0]->name;
    char why4[320], why6[320];

    (void)take_addresses(cx, qa, NULL, r->addresses, CAA_DIAG_ADDRS_MAX, &r->naddresses);
    (void)take_addresses(cx, q6, NULL, r->addresses, CAA_DIAG_ADDRS_MAX, &r->naddresses);
    if (r->naddresses == 0) {
        const char *f4 = failed(qa, why4, sizeof why4), *f6 = failed(q6, why6, sizeof why6);
        if (f4 != NULL || f6 != NULL)
            snprintf(r->addresses_error, sizeof r->addresses_error, "%s", f4 ? f4 : f6);
        else
            snprintf(r->addresses_error, sizeof r->addresses_error, "%s has no A or AAAA record",
                     base);
    }
    if (r->challenge_name[0] == '\0')
        return;
    if (it->chal_zone == SIZE_MAX)
        return; /* challenge_error says why */
    const struct zinfo *z = &cx->zones[it->chal_zone];
    for (size_t i = 0; i < z->nnames && i < 16; i++)
        memcpy(r->nameservers[r->nnameservers++], z->names[i], sizeof z->names[i]);
    if (z->nnames == 0)
        snprintf(r->challenge_error, sizeof r->challenge_error, "%s", z->why);
}

/* ------------------------------------------------------------- driver */

static void item_clear(struct item *it)
{
    for (size_t i = 0; i < it->d.nhops; i++) {
        caa_diag_hop_clear(&it->d.hops[i]);
        if (it->hq != NULL) {
            free(it->hq[i].q_caa);
            free(it->hq[i].q_soa);
            free(it->hq[i].q_apex);
        }
    }
    free(it->d.hops);
    free(it->hq);
    free(it->d.findings);
}

void caa_diag_hop_clear(struct caa_diag_hop *h)
{
    if (h == NULL)
        return;
    records_free(&h->resolver);
    records_free(&h->resolver_cd);
    for (size_t i = 0; i < h->nservers; i++) {
        records_free(&h->servers[i].caa);
        records_free(&h->servers[i].soa);
    }
    free(h->servers);
    h->servers = NULL;
    h->nservers = 0;
}

void caa_diag_free(struct caa_diag *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n && d->items != NULL; i++)
        item_clear(&d->items[i]);
    free(d->items);
    caa_report_free(d->report);
    free(d);
}

size_t caa_diag_count(const struct caa_diag *d)
{
    return d ? d->n : 0;
}

const struct caa_diag_name *caa_diag_get(const struct caa_diag *d, size_t i)
{
    return d && i < d->n ? &d->items[i].d : NULL;
}

const struct caa_report *caa_diag_report(const struct caa_diag *d)
{
    return d ? d->report : NULL;
}

const char *caa_diag_resolver(const struct caa_diag *d)
{
    return d ? d->resolver : "";
}

static void ctx_clear(struct ctx *cx)
{
    for (size_t i = 0; i < cx->nq; i++)
        free(cx->q[i].buf);
    free(cx->q);
    free(cx->addrs);
    free(cx->zones);
    free(cx->nss);
    free(cx->resolvers);
}

enum cp_code caa_diagnose(const char *const *identifiers, size_t n, const struct caa_diag_opts *o,
                          struct caa_diag **out, struct cp_err *err)
{
    enum cp_code rc;
    struct ctx cx = {0};
    struct caa_diag *dg = NULL;
    size_t **q_soa = NULL;

    *out = NULL;
    if (o == NULL || o->params == NULL || o->params->method == NULL)
        return cp_err_set(err, CP_EINVAL, "a diagnosis needs the CA parameters");
    if (o->auth_port > 65535)
        return cp_err_set(err, CP_EINVAL, "port %u is not a port number", o->auth_port);
    cx.ropts = o->resolver;
    cx.budget =
        o->resolver && o->resolver->timeout_ms ? o->resolver->timeout_ms : DEFAULT_TIMEOUT_MS;
    cx.tries = o->resolver && o->resolver->tries ? o->resolver->tries : DEFAULT_TRIES;
    if (cx.tries > 10)
        cx.tries = 10;
    cx.port = o->auth_port ? o->auth_port : 53;

    dg = calloc(1, sizeof *dg);
    if (dg == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    if (o->resolver != NULL && o->resolver->nservers > 0)
        snprintf(dg->resolver, sizeof dg->resolver, "%.120s%s", o->resolver->servers[0],
                 o->resolver->nservers > 1 ? " (or another one given)" : "");
    else
        snprintf(dg->resolver, sizeof dg->resolver, "the system's resolver");

    /* 0. The verdict, as `caa check` gives it; it also validates every name. */
    rc = caa_check(identifiers, n, o->resolver, o->params, &dg->report, err);
    if (rc != CP_OK)
        goto cleanup;
    rc = caa_dns_parse_servers(o->resolver ? o->resolver->servers : NULL,
                               o->resolver ? o->resolver->nservers : 0, &cx.resolvers, err);
    if (rc != CP_OK)
        goto cleanup;
    dg->n = n;
    dg->items = calloc(n ? n : 1, sizeof *dg->items);
    q_soa = calloc(n ? n : 1, sizeof *q_soa);
    if (dg->items == NULL || q_soa == NULL)
        goto nomem;

    /* 1. SOA of every chain name up to the relevant one (zones, CNAME
     * chains), and what the challenge type needs. */
    for (size_t i = 0; i < n; i++) {
        struct item *it = &dg->items[i];
        const struct caa_result *res = caa_report_result(dg->report, i);
        it->d.caa = res;
        it->chal_zone = SIZE_MAX;
        snprintf(it->d.ident, sizeof it->d.ident, "%s", res->ident);
        size_t at = res->decision->at;
        it->last = at < res->nchain ? at : res->nchain - 1;
        q_soa[i] = calloc(it->last + 1, sizeof *q_soa[i]);
        if (q_soa[i] == NULL)
            goto nomem;
        for (size_t j = 0; j <= it->last; j++)
            if ((q_soa[i][j] = query_add(&cx, res->chain[j]->name, CAA_DNS_TYPE_SOA, 0, true)) ==
                SIZE_MAX)
                goto nomem;
        const char *base = res->chain[0]->name;
        struct caa_diag_readiness *r = &it->d.readiness;
        r->method = o->params->method;
        it->q_a = query_add(&cx, base, CAA_DNS_TYPE_A, 0, false);
        it->q_aaaa = query_add(&cx, base, CAA_DNS_TYPE_AAAA, 0, false);
        it->q_chal = SIZE_MAX;
        if (it->q_a == SIZE_MAX || it->q_aaaa == SIZE_MAX)
            goto nomem;
        if (strcmp(o->params->method, "dns-01") == 0) {
            int len =
                snprintf(r->challenge_name, sizeof r->challenge_name, "_acme-challenge.%s", base);
            if (len < 0 || (size_t)len >= sizeof r->challenge_name) {
                snprintf(r->challenge_error, sizeof r->challenge_error,
                         "_acme-challenge.%s is longer than %d octets", base, CAA_NAME_MAX);
            } else if ((it->q_chal = query_add(&cx, r->challenge_name, CAA_DNS_TYPE_SOA, 0,
                                               false)) == SIZE_MAX) {
                goto nomem;
            }
        }
    }
    rc = run_pending(&cx, err);
    if (rc != CP_OK)
        goto cleanup;

    /* 2. The hops: the chain names and the CNAME chains the resolver shows. */
    for (size_t i = 0; i < n; i++) {
        dg->items[i].aliases_left = CAA_DNS_CNAME_HOPS_MAX;
        if (build_hops(&cx, &dg->items[i], q_soa[i]) != CP_OK)
            goto nomem;
    }

    /* 3. Until no hop is new: zones, nameservers, addresses, then the round
     * that matters.  A CNAME only the servers show (the resolver failed to
     * follow it) adds a hop, and another pass. */
    for (bool first = true;; first = false) {
        bool fresh = false;
        for (size_t i = 0; i < n; i++) {
            struct item *it = &dg->items[i];
            for (size_t k = 0; k < it->d.nhops; k++) {
                struct hopq *hq = &it->hq[k];
                const char *sn = soa_name(it, k);
                if (hq->done)
                    continue;
                fresh = true;
                /* The parent's SOA in the same round: the fallback when the
                 * resolver cannot name the zone (a CNAME it cannot follow). */
                if (sn[0] &&
                    ((hq->q_zone = query_add(&cx, sn, CAA_DNS_TYPE_SOA, 0, true)) == SIZE_MAX ||
                     (parent_of(sn)[0] &&
                      (hq->q_parent = query_add(&cx, parent_of(sn), CAA_DNS_TYPE_SOA, 0, true)) ==
                          SIZE_MAX)))
                    goto nomem;
            }
        }
        if (!fresh)
            break;
        if ((rc = run_pending(&cx, err)) != CP_OK)
            goto cleanup;

        /* The zones; when the resolver cannot name one, that of the parent,
         * to be confirmed by the servers' answers. */
        for (size_t i = 0; i < n; i++) {
            struct item *it = &dg->items[i];
            for (size_t k = 0; k < it->d.nhops; k++) {
                struct caa_diag_hop *h = &it->d.hops[k];
                struct hopq *hq = &it->hq[k];
                const char *sn = soa_name(it, k);
                char why[8];
                if (hq->done)
                    continue;
                if (hq->q_zone == SIZE_MAX) {
                    snprintf(h->zone_error, sizeof h->zone_error, "%.200s has no parent zone",
                             h->name);
                    continue;
                }
                zone_of(&cx, hq->q_zone, sn, h->zone, h->zone_error, sizeof h->zone_error);
                if (h->zone_error[0] != '\0' && hq->q_parent != SIZE_MAX &&
                    failed(Q(&cx, hq->q_zone), why, sizeof why) != NULL) {
                    char zone[CAA_NAME_MAX + 1], why2[320];
                    zone_of(&cx, hq->q_parent, parent_of(sn), zone, why2, sizeof why2);
                    if (why2[0] == '\0') {
                        memcpy(h->zone, zone, sizeof zone);
                        h->zone_error[0] = '\0';
                        hq->guessed = true;
                    }
                }
                if (h->zone_error[0] == '\0' && (hq->zone = zone_add(&cx, h->zone)) == SIZE_MAX)
                    goto nomem;
            }
            if (first && add_challenge_zone(&cx, it) != CP_OK)
                goto nomem;
        }
        if ((rc = run_pending(&cx, err)) != CP_OK)
            goto cleanup;
        take_ns_names(&cx);

        /* The addresses of every NS name. */
        for (size_t z = 0; z < cx.nzones; z++)
            for (size_t k = 0; k < cx.zones[z].nnames; k++)
                if (ns_add(&cx, cx.zones[z].names[k]) == SIZE_MAX)
                    goto nomem;
        if ((rc = run_pending(&cx, err)) != CP_OK)
            goto cleanup;
        if (take_ns_addresses(&cx) != CP_OK)
            goto nomem;

        /* CAA from every server and the resolver, all at once. */
        for (size_t i = 0; i < n; i++) {
            struct item *it = &dg->items[i];
            for (size_t k = 0; k < it->d.nhops; k++)
                if (!it->hq[k].done && plan_hop(&cx, &it->d.hops[k], &it->hq[k]) != CP_OK)
                    goto nomem;
        }
        if ((rc = run_pending(&cx, err)) != CP_OK)
            goto cleanup;
        for (size_t i = 0; i < n; i++) {
            struct item *it = &dg->items[i];
            for (size_t k = 0; k < it->d.nhops; k++) {
                if (it->hq[k].done)
                    continue;
                if (take_hop(&cx, &it->d.hops[k], &it->hq[k]) != CP_OK)
                    goto nomem;
                it->hq[k].done = true;
            }
            for (size_t k = 0; k < it->d.nhops && it->aliases_left > 0; k++) {
                const char *t = unfollowed_alias(it, k);
                if (t == NULL)
                    continue;
                char target[CAA_NAME_MAX + 1];
                snprintf(target, sizeof target, "%s", t); /* t points into the hops */
                if (hop_insert(it, k + 1, target, it->d.hops[k].name, it->d.hops[k].chain_index) ==
                    NULL)
                    goto nomem;
                it->aliases_left--;
            }
        }
    }

    bool asked = false, answered_any = false;
    for (size_t i = 0; i < cx.nq; i++) {
        if (cx.q[i].chan == 0 || !cx.q[i].ran)
            continue;
        asked = true;
        answered_any = answered_any || cx.q[i].status == ARES_SUCCESS;
    }
    struct caa_diag_context dcx = {
        .resolver = dg->resolver,
        .timeout_ms = cx.budget,
        .no_direct_answers = asked && !answered_any,
    };
    for (size_t i = 0; i < n; i++) {
        struct item *it = &dg->items[i];
        take_readiness(&cx, it);
        rc = caa_diag_classify(&it->d, &dcx, err);
        if (rc != CP_OK)
            goto cleanup;
    }
    *out = dg;
    dg = NULL;
    rc = CP_OK;
    goto cleanup;
nomem:
    rc = cp_err_set(err, CP_ENOMEM, "out of memory diagnosing CAA");
cleanup:
    for (size_t i = 0; i < n && q_soa != NULL; i++)
        free(q_soa[i]);
    free(q_soa);
    ctx_clear(&cx);
    caa_diag_free(dg);
    return rc;
}
