/*
 * caa/diag_server.c - the direct queries of a diagnosis: for every hop, CAA of
 * the name to every address of every authoritative server of its zone (RD=0),
 * SOA of the zone to each (does it serve the zone at all?), and CAA through
 * the resolver with and without CD; then the answers read into the hop.
 *
 * Also what an answer is worth (answered, usable), which the judgement uses.
 */
#include "caa/caa.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "caa/diagnose_int.h"

bool caa_diag_answered(const struct caa_diag_answer *a)
{
    return a->asked && !a->timeout && a->error[0] == '\0' && a->rcode >= 0;
}

bool caa_diag_usable(const struct caa_diag_answer *a)
{
    return caa_diag_answered(a) &&
           (a->rcode == CAA_DNS_RCODE_NOERROR || a->rcode == CAA_DNS_RCODE_NXDOMAIN);
}

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
    if (a->nrecords == CAA_DIAG_RECORDS_MAX)
        return CP_OK;
    return caa_dns_add_caa(&a->records, &a->nrecords, rd, rdlen);
}

/* Fill `a` from a CAA query about `name`.  CP_ENOMEM only: an unreadable
 * answer is recorded as such. */
static enum cp_code take_caa(const struct caa_diag_query *q, const char *name,
                             struct caa_diag_answer *a)
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
static void take_soa(const struct caa_diag_query *q, const char *zone, struct caa_diag_server *s)
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
        s->authoritative = w.rcode == CAA_DNS_RCODE_NOERROR && w.aa;
        return;
    }
}

enum cp_code caa_diag_plan_hop(struct caa_diag_run *cx, struct caa_diag_hop *h,
                               struct caa_diag_hopq *hq)
{
    hq->q_res = caa_diag_query_add(cx, h->name, CAA_DNS_TYPE_CAA, 0, false);
    hq->q_cd = caa_diag_query_add(cx, h->name, CAA_DNS_TYPE_CAA, 0, true);
    if (hq->q_res == SIZE_MAX || hq->q_cd == SIZE_MAX)
        return CP_ENOMEM;
    if (hq->zone == SIZE_MAX)
        return CP_OK;
    const struct caa_diag_zone *z = &cx->zones[hq->zone];
    if (z->nnames == 0) {
        snprintf(h->zone_error, sizeof h->zone_error, "%s", z->why);
        return CP_OK;
    }
    h->servers = calloc(CAA_DIAG_ZONE_SERVERS_MAX, sizeof *h->servers);
    hq->q_caa = calloc(CAA_DIAG_ZONE_SERVERS_MAX, sizeof *hq->q_caa);
    hq->q_soa = calloc(CAA_DIAG_ZONE_SERVERS_MAX, sizeof *hq->q_soa);
    hq->q_apex = hq->guessed ? calloc(CAA_DIAG_ZONE_SERVERS_MAX, sizeof *hq->q_apex) : NULL;
    if (h->servers == NULL || hq->q_caa == NULL || hq->q_soa == NULL ||
        (hq->guessed && hq->q_apex == NULL))
        return CP_ENOMEM;
    for (size_t k = 0; k < z->nnames; k++) {
        size_t ni = caa_diag_ns_add(cx, z->names[k]);
        if (ni == SIZE_MAX)
            return CP_ENOMEM;
        const struct caa_diag_ns *ns = &cx->nss[ni];
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
            hq->q_caa[si] =
                caa_diag_query_add(cx, h->name, CAA_DNS_TYPE_CAA, ns->addr[a] + 1, false);
            hq->q_soa[si] =
                caa_diag_query_add(cx, h->zone, CAA_DNS_TYPE_SOA, ns->addr[a] + 1, false);
            if (hq->q_caa[si] == SIZE_MAX || hq->q_soa[si] == SIZE_MAX)
                return CP_ENOMEM;
            if (hq->q_apex != NULL &&
                (hq->q_apex[si] = caa_diag_query_add(cx, h->name, CAA_DNS_TYPE_SOA, ns->addr[a] + 1,
                                                     false)) == SIZE_MAX)
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

enum cp_code caa_diag_take_hop(const struct caa_diag_run *cx, struct caa_diag_hop *h,
                               struct caa_diag_hopq *hq)
{
    if (take_caa(caa_diag_query_ran(cx, hq->q_res), h->name, &h->resolver) != CP_OK ||
        take_caa(caa_diag_query_ran(cx, hq->q_cd), h->name, &h->resolver_cd) != CP_OK)
        return CP_ENOMEM;
    bool authoritative = false, without_aa = false, apex = false;
    for (size_t k = 0; k < h->nservers; k++) {
        struct caa_diag_server *s = &h->servers[k];
        if (hq->q_caa[k] == SIZE_MAX)
            continue;
        if (take_caa(caa_diag_query_ran(cx, hq->q_caa[k]), h->name, &s->caa) != CP_OK)
            return CP_ENOMEM;
        take_soa(caa_diag_query_ran(cx, hq->q_soa[k]), h->zone, s);
        authoritative = authoritative || (caa_diag_usable(&s->caa) && s->caa.aa);
        without_aa = without_aa || (caa_diag_usable(&s->caa) && !s->caa.aa);
        if (hq->q_apex != NULL && hq->q_apex[k] != SIZE_MAX) {
            struct caa_diag_server probe;
            memset(&probe, 0, sizeof probe);
            take_soa(caa_diag_query_ran(cx, hq->q_apex[k]), h->name, &probe);
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

const char *caa_diag_unfollowed_alias(const struct caa_diag_item *it, size_t i)
{
    const struct caa_diag_name *d = &it->d;
    const struct caa_diag_hop *h = &d->hops[i];
    if (i + 1 < d->nhops && strcasecmp(d->hops[i + 1].alias_of, h->name) == 0)
        return NULL;
    const char *t = NULL;
    for (size_t k = 0; k < h->nservers && t == NULL; k++)
        if (caa_diag_usable(&h->servers[k].caa) && h->servers[k].caa.aa &&
            h->servers[k].caa.cname[0])
            t = h->servers[k].caa.cname;
    if (t == NULL && caa_diag_usable(&h->resolver) && h->resolver.cname[0])
        t = h->resolver.cname;
    for (size_t k = 0; t != NULL && k < d->nhops; k++)
        if (strcasecmp(d->hops[k].name, t) == 0)
            return NULL; /* a loop: shown by the servers' answers */
    return t;
}

void caa_diag_hop_clear(struct caa_diag_hop *h)
{
    if (h == NULL)
        return;
    records_free(&h->resolver);
    records_free(&h->resolver_cd);
    servers_clear(h);
}
