/*
 * caa/diag_classify.c - the judgement of a diagnosis: caa_diag_classify()
 * turns the collected answers of one identifier into findings with evidence
 * and a fix (spec §11).
 *
 * Pure: answers in, findings out, no I/O; the unit tests feed it hand-built
 * hops.  The checks run per server of every hop (NOTIMP, REFUSED, SERVFAIL,
 * time-outs, lame servers), per hop (servers that disagree, DNSSEC), then per
 * name (the refusal, aliases, a resolver failure nothing else explains, no
 * server reachable from this host).
 */
#include "caa/caa.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "caa/diagnose_int.h"

#define CHAIN_MAX  128 /* a 253-octet name has at most 127 labels */
#define LISTED_MAX 3   /* servers named in one piece of evidence */

#define RCODE_SERVFAIL 2
#define RCODE_REFUSED  5
#define RCODE_NOTAUTH  9

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
    if (h->resolver.asked && !caa_diag_usable(&h->resolver))
        return true;
    const struct caa_result *r = c->d->caa;
    size_t at = r->decision->at;
    return r->status == CAA_ERROR && at < r->nchain && h->alias_of[0] == '\0' &&
           strcasecmp(r->chain[at]->name, h->name) == 0;
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
    } else if (caa_diag_usable(a)) {
        if (a->aa)
            return;
        kind = CAA_DIAG_LAME;
    } else if (a->rcode == RCODE_NOTAUTH) {
        kind = CAA_DIAG_LAME;
    } else if (a->rcode == RCODE_REFUSED) {
        /* Refusing CAA alone is a broken server; refusing the zone's SOA
         * too means it does not serve the zone: lame. */
        kind = !s->authoritative && caa_diag_answered(&s->soa) ? CAA_DIAG_LAME : CAA_DIAG_REFUSED;
    } else if (a->rcode == RCODE_SERVFAIL) {
        kind = CAA_DIAG_SERVFAIL;
    } else {
        kind = CAA_DIAG_NOTIMP; /* NOTIMP, FORMERR, ...: the type is rejected */
    }

    struct caa_diag_finding *f = finding(c, sev, kind, h->name, h->zone, s->name, s->addr);
    if (f == NULL)
        return;
    struct caa_diag_text sum, ev, fix;
    caa_diag_text_init(&sum, f->summary, sizeof f->summary);
    caa_diag_text_init(&ev, f->evidence, sizeof f->evidence);
    caa_diag_text_init(&fix, f->fix, sizeof f->fix);

    if (s->addr[0] == '\0') {
        caa_diag_put(&sum, "nameserver %s of %s has no address", s->name, zone);
        caa_diag_put(&ev, "%s is in the NS records of %s, but %s", s->name, zone,
                     s->why[0] ? s->why : "it has no A or AAAA record");
        caa_diag_put(&fix,
                     "Give %s an address (A/AAAA records, and glue at the parent when it is inside "
                     "the zone), or remove it from the NS records of %s and from the delegation "
                     "at the parent.",
                     s->name, zone);
        return;
    }
    caa_diag_put(&ev, "CAA %s @", h->name);
    caa_diag_put_server(&ev, s);
    caa_diag_put(&ev, ": ");
    caa_diag_put_answer(&ev, a, tmo);
    if (kind == CAA_DIAG_LAME && caa_diag_usable(a))
        caa_diag_put(&ev, " without the AA bit");
    caa_diag_put_soa(&ev, h, s, tmo);
    if (rfail)
        caa_diag_put(&ev, "; the resolver gets no answer for %s either", h->name);

    switch (kind) {
    case CAA_DIAG_TIMEOUT:
        caa_diag_put_server(&sum, s);
        caa_diag_put(&sum, " does not answer CAA queries for %s", h->name);
        if (s->authoritative)
            caa_diag_put(&fix,
                         "The server answers other query types but not CAA: a firewall or filter "
                         "in front of it drops query types it does not know. Have it let every "
                         "query type through (ask the DNS provider if it is theirs).");
        else
            caa_diag_put(&fix,
                         "The server does not answer at all: it is down or unreachable. Repair "
                         "it, or remove it from the NS records of %s and from the delegation at "
                         "the parent.",
                         zone);
        break;
    case CAA_DIAG_NOTIMP:
    case CAA_DIAG_REFUSED:
        caa_diag_put_server(&sum, s);
        caa_diag_put(&sum, " answers %s to CAA queries for %s", caa_rcode_name(a->rcode), h->name);
        caa_diag_put(&fix, "%s", FIX_REJECTS_TYPE);
        break;
    case CAA_DIAG_SERVFAIL:
        caa_diag_put_server(&sum, s);
        caa_diag_put(&sum, " answers SERVFAIL to CAA queries for %s", h->name);
        caa_diag_put(&fix,
                     "The server fails on CAA queries; its log says why. PowerDNS before 4.0 did "
                     "this, later versions with a broken database schema (e.g. no domainmetadata "
                     "table): upgrade or repair it. Publishing a CAA record avoids servers that "
                     "fail only on empty answers.");
        break;
    case CAA_DIAG_LAME:
        caa_diag_put_server(&sum, s);
        caa_diag_put(&sum, " is a nameserver of %s that does not serve it with authority", zone);
        caa_diag_put(&fix,
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
    bool used[CAA_DIAG_RECORDS_MAX] = {false};
    if (na != nb || na > CAA_DIAG_RECORDS_MAX)
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
        a->nrecords > CAA_DIAG_RECORDS_MAX)
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
        if (h->servers[i].addr[0] == '\0' || !caa_diag_usable(a) || !a->aa)
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
            caa_diag_usable(&h->resolver) && a->cname[0] == '\0' && a->rcode == h->resolver.rcode &&
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
        struct caa_diag_text sum, ev, fix;
        caa_diag_text_init(&sum, f->summary, sizeof f->summary);
        caa_diag_text_init(&ev, f->evidence, sizeof f->evidence);
        caa_diag_text_init(&fix, f->fix, sizeof f->fix);
        caa_diag_put(&sum, "the nameservers of %s disagree on CAA %s: ", zone, h->name);
        caa_diag_put_server(&sum, s);
        caa_diag_put(&sum, " differs");

        caa_diag_put_server_serial(&ev, s);
        caa_diag_put(&ev, " answers ");
        caa_diag_put_answer(&ev, &s->caa, c->cx->timeout_ms);
        caa_diag_put(&ev, "; ");
        size_t listed = 0, more = 0;
        for (size_t j = 0; j < n; j++) {
            if (g[j] != ref)
                continue;
            if (listed == LISTED_MAX) {
                more++;
                continue;
            }
            caa_diag_put(&ev, "%s", listed ? ", " : "");
            caa_diag_put_server_serial(&ev, &h->servers[j]);
            listed++;
        }
        if (more)
            caa_diag_put(&ev, " and %zu more", more);
        caa_diag_put(&ev, " answer%s ", count[ref] == 1 ? "s" : "");
        caa_diag_put_answer(&ev, refa, c->cx->timeout_ms);
        int odd_refuses = refuses_with(c, h, &s->caa);
        if (odd_refuses >= 0 && ref_refuses >= 0 && odd_refuses != ref_refuses)
            caa_diag_put(&ev, "; a CA that gets the answer of %s would %s", s->name,
                         odd_refuses ? "refuse" : "allow issuance");
        else if (odd_refuses == 1)
            caa_diag_put(&ev, "; the CA would refuse with either answer");
        caa_diag_put(&fix,
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
    if (!rfail || !caa_diag_answered(&h->resolver) || h->resolver.rcode != RCODE_SERVFAIL ||
        !caa_diag_usable(&h->resolver_cd) || h->nservers == 0)
        return;
    for (size_t i = 0; i < h->nservers; i++) {
        const struct caa_diag_server *s = &h->servers[i];
        if (s->addr[0] == '\0' || !caa_diag_usable(&s->caa) || !s->caa.aa)
            return;
    }
    /* An alias whose target fails the same way: the finding is the target's. */
    const struct caa_diag_hop *t = alias_target(c->d, h);
    if (t != NULL && t->resolver.asked && !caa_diag_usable(&t->resolver))
        return;

    const char *zone = h->zone[0] ? h->zone : ".";
    struct caa_diag_finding *f =
        finding(c, CAA_DIAG_WILL_FAIL, CAA_DIAG_DNSSEC, h->name, h->zone, "", "");
    if (f == NULL)
        return;
    struct caa_diag_text sum, ev, fix;
    caa_diag_text_init(&sum, f->summary, sizeof f->summary);
    caa_diag_text_init(&ev, f->evidence, sizeof f->evidence);
    caa_diag_text_init(&fix, f->fix, sizeof f->fix);
    caa_diag_put(&sum, "DNSSEC validation fails for %s", h->name);
    caa_diag_put(&ev,
                 "the resolver %s answers SERVFAIL to CAA %s; asked again with checking disabled "
                 "(CD=1) it answers ",
                 c->resolver, h->name);
    caa_diag_put_answer(&ev, &h->resolver_cd, c->cx->timeout_ms);
    if (h->nservers == 1)
        caa_diag_put(&ev, "; the one authoritative server address of %s answers", zone);
    else
        caa_diag_put(&ev, "; all %zu authoritative server addresses of %s answer", h->nservers,
                     zone);
    if (h->agree) {
        caa_diag_put(&ev, " ");
        caa_diag_put_answer(&ev, &h->servers[0].caa, c->cx->timeout_ms);
    }
    caa_diag_put(&fix,
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
    struct caa_diag_text sum, ev, fix;
    caa_diag_text_init(&sum, f->summary, sizeof f->summary);
    caa_diag_text_init(&ev, f->evidence, sizeof f->evidence);
    caa_diag_text_init(&fix, f->fix, sizeof f->fix);

    caa_diag_put(&sum, "the CAA records at %s do not allow %s to issue for %s", where,
                 c->p->ca_identity, r->ident);
    caa_diag_put(&ev, "CAA at %s", where);
    if (set->target[0])
        caa_diag_put(&ev, " (the CNAME target of %s)", set->name);
    caa_diag_put(&ev, ":");
    for (size_t i = 0; i < set->nrecords; i++) {
        char rec[300];
        (void)caa_record_format(&set->records[i], rec, sizeof rec);
        caa_diag_put(&ev, "%s %s", i ? "," : "", rec);
        if (dec->verdicts != NULL && i < dec->nverdicts)
            caa_diag_put(&ev, " (%s)", caa_verdict_name(dec->verdicts[i]));
    }
    if (r->explanation != NULL && r->explanation->problem_detail != NULL)
        caa_diag_put(&ev, "; the CA would answer: %s", r->explanation->problem_detail);

    if (dec->why == CAA_WHY_CRITICAL_UNKNOWN) {
        caa_diag_put(&fix, "Remove the record flagged critical at %s, or publish it with flags 0",
                     where);
    } else {
        const char *tag = r->wildcard && has_tag(set, CAA_TAG_ISSUEWILD) ? "issuewild" : "issue";
        caa_diag_put(&fix, "Publish at %s: %s. CAA 0 %s \"%s", where, where, tag,
                     c->p->ca_identity);
        if (c->p->account_uri != NULL)
            caa_diag_put(&fix, "; accounturi=%s", c->p->account_uri);
        caa_diag_put(&fix, "\" (one record that allows is enough)");
    }
    if (set->target[0])
        caa_diag_put(&fix,
                     "; %s is an alias of %s, so ask whoever runs %s, or replace the alias by "
                     "A/AAAA records",
                     set->name, where, where);
    caa_diag_put(&fix, ". certpilot caa check %s prints the exact lines.", r->ident);
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
        if (caa_diag_usable(&end->servers[k].caa) && end->servers[k].caa.aa &&
            end->servers[k].caa.cname[0])
            t = end->servers[k].caa.cname;
    if (t == NULL && caa_diag_usable(&end->resolver) && end->resolver.cname[0])
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
        struct caa_diag_text sum, ev, fix;
        caa_diag_text_init(&sum, f->summary, sizeof f->summary);
        caa_diag_text_init(&ev, f->evidence, sizeof f->evidence);
        caa_diag_text_init(&fix, f->fix, sizeof f->fix);
        caa_diag_put(&ev, "%s", h->name);
        for (const struct caa_diag_hop *t = alias_target(d, h); t != NULL; t = alias_target(d, t)) {
            caa_diag_put(&ev, " -> %s", t->name);
            if (t->zone[0])
                caa_diag_put(&ev, " (zone %s)", t->zone);
            end = t;
        }
        const struct caa_diag_hop *back = loops_to(d, end);
        if (back != NULL) {
            caa_diag_put(&ev, " -> %s: a loop", back->name);
            caa_diag_put(&sum, "%s is an alias in a CNAME loop: no resolver can follow it",
                         h->name);
        } else {
            caa_diag_put(&sum, "%s is an alias: the CA uses the CAA records of %s", h->name,
                         end->name);
        }
        caa_diag_put(&ev, "; at %s the resolver gets ", end->name);
        caa_diag_put_answer(&ev, &end->resolver, c->cx->timeout_ms);
        if (back != NULL) {
            caa_diag_put(&fix,
                         "Point one of the aliases at a name with address records; until then "
                         "every look-up of %s fails, the CA's included.",
                         h->name);
            continue;
        }
        caa_diag_put(&fix,
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
    struct caa_diag_text sum, ev, fix;
    caa_diag_text_init(&sum, f->summary, sizeof f->summary);
    caa_diag_text_init(&ev, f->evidence, sizeof f->evidence);
    caa_diag_text_init(&fix, f->fix, sizeof f->fix);

    char what[64];
    switch (l->answer) {
    case CAA_ANSWER_TIMEOUT: snprintf(what, sizeof what, "no answer in time"); break;
    case CAA_ANSWER_NETWORK: snprintf(what, sizeof what, "a network error"); break;
    default: snprintf(what, sizeof what, "%s", caa_rcode_name(l->rcode)); break;
    }
    caa_diag_put(&sum, "the resolver gets %s looking up CAA for %s", what, l->name);
    caa_diag_put(&ev, "the resolver %s: %s for CAA %s", c->resolver, what, l->name);
    if (h0 != NULL && h0->resolver_cd.asked && !caa_diag_usable(&h0->resolver)) {
        caa_diag_put(&ev, "; with CD=1: ");
        caa_diag_put_answer(&ev, &h0->resolver_cd, c->cx->timeout_ms);
    }
    if (h != NULL && h != h0 && back == NULL)
        caa_diag_put(&ev, "; its CNAME chain ends at %s", h->name);

    bool all_answer = false;
    if (h != NULL && back == NULL) {
        const char *zone = h->zone[0] ? h->zone : ".";
        if (h->nservers == 0) {
            caa_diag_put(&ev, "; the authoritative servers of %s are unknown%s%s", h->name,
                         h->zone_error[0] ? ": " : "", h->zone_error);
        } else {
            all_answer = true;
            for (size_t i = 0; i < h->nservers; i++)
                all_answer =
                    all_answer && caa_diag_usable(&h->servers[i].caa) && h->servers[i].caa.aa;
            if (h->nservers == 1)
                caa_diag_put(&ev, "; the one server address of %s answers%s", zone,
                             all_answer ? " with authority" : "");
            else
                caa_diag_put(&ev, "; %s %zu server addresses of %s answer%s",
                             all_answer ? "all" : "the", h->nservers, zone,
                             all_answer ? " with authority" : "");
        }
    }
    if (back != NULL)
        caa_diag_put(&fix,
                     "The CNAME chain from %s comes back to %s, so no resolver can follow it: "
                     "point one of its aliases at a name that has address records.",
                     l->name, back->name);
    else if (l->answer == CAA_ANSWER_NETWORK)
        caa_diag_put(&fix, "Make sure the resolver %s is reachable from this host and try again.",
                     c->resolver);
    else if (h != NULL && h->nservers == 0)
        caa_diag_put(&fix,
                     "Repair the delegation of %s so that its nameservers can be found (NS records "
                     "at the zone and at the parent, and addresses for them), then check each one "
                     "with dig CAA %s @server.",
                     h->name, h->name);
    else if (all_answer)
        caa_diag_put(&fix,
                     "Every authoritative server answers, yet the resolver fails: check that "
                     "resolvers can reach them over UDP and TCP from anywhere (no firewall or "
                     "rate limit in the way) and that the zone's DNSSEC is intact.");
    else
        caa_diag_put(&fix,
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
