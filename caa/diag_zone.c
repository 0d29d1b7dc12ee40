/*
 * caa/diag_zone.c - where a diagnosis has to ask: the names on the CAA path
 * (hops: the chain names and the CNAME targets after each alias), the zone
 * holding each (the zone cut, from the resolver's SOA answers), the zone's NS
 * names and their addresses; and the readiness facts of the challenge type
 * (the name's addresses, the NS names of the dns-01 challenge zone).
 *
 * Everything here is read from the resolver's answers (CD=1, so that a broken
 * DNSSEC chain does not hide the servers); referrals from the parent are not
 * followed.
 */
#include "caa/caa.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "caa/diagnose_int.h"

void caa_diag_zone_of(const struct caa_diag_run *cx, size_t qi, const char *name,
                      char zone[CAA_NAME_MAX + 1], char *why, size_t whysize)
{
    char target[CAA_NAME_MAX + 1];
    const struct caa_diag_query *q = caa_diag_query_ran(cx, qi);
    zone[0] = '\0';
    if (caa_diag_query_failed(q, why, whysize) != NULL)
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

struct caa_diag_hop *caa_diag_hop_insert(struct caa_diag_item *it, size_t at, const char *name,
                                         const char *alias_of, size_t chain_index)
{
    struct caa_diag_name *d = &it->d;
    if (d->nhops == it->hcap) {
        size_t cap = it->hcap ? 2 * it->hcap : 8;
        struct caa_diag_hop *h = realloc(d->hops, cap * sizeof *h);
        if (h == NULL)
            return NULL;
        d->hops = h;
        struct caa_diag_hopq *hq = realloc(it->hq, cap * sizeof *hq);
        if (hq == NULL)
            return NULL;
        it->hq = hq;
        it->hcap = cap;
    }
    memmove(&d->hops[at + 1], &d->hops[at], (d->nhops - at) * sizeof d->hops[0]);
    memmove(&it->hq[at + 1], &it->hq[at], (d->nhops - at) * sizeof it->hq[0]);
    struct caa_diag_hop *h = &d->hops[at];
    struct caa_diag_hopq *hq = &it->hq[at];
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

static struct caa_diag_hop *hop_add(struct caa_diag_item *it, const char *name,
                                    const char *alias_of, size_t chain_index)
{
    return caa_diag_hop_insert(it, it->d.nhops, name, alias_of, chain_index);
}

const char *caa_diag_parent_of(const char *name)
{
    const char *dot = strchr(name, '.');
    return dot != NULL ? dot + 1 : "";
}

enum cp_code caa_diag_build_hops(const struct caa_diag_run *cx, struct caa_diag_item *it,
                                 const size_t *q_soa)
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
        const struct caa_diag_query *q = caa_diag_query_ran(cx, q_soa[j]);
        al.n = 0;
        if (caa_diag_query_failed(q, why, sizeof why) == NULL &&
            caa_dns_walk_start(&w, q->buf, q->len) == 0) {
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

const char *caa_diag_soa_name(const struct caa_diag_item *it, size_t i)
{
    const struct caa_diag_name *d = &it->d;
    bool alias = i + 1 < d->nhops && strcasecmp(d->hops[i + 1].alias_of, d->hops[i].name) == 0;
    if (!alias && d->hops[i].alias_of[0] == '\0') {
        const struct caa_lookup *l = d->caa->chain[d->hops[i].chain_index];
        alias = l->target[0] != '\0';
    }
    return alias ? caa_diag_parent_of(d->hops[i].name) : d->hops[i].name;
}

size_t caa_diag_zone_add(struct caa_diag_run *cx, const char *zone)
{
    for (size_t i = 0; i < cx->nzones; i++)
        if (strcasecmp(cx->zones[i].zone, zone) == 0)
            return i;
    if (!caa_diag_grow((void **)&cx->zones, &cx->zcap, cx->nzones, sizeof *cx->zones))
        return SIZE_MAX;
    struct caa_diag_zone *z = &cx->zones[cx->nzones];
    memset(z, 0, sizeof *z);
    snprintf(z->zone, sizeof z->zone, "%s", zone);
    z->q_ns = caa_diag_query_add(cx, zone, CAA_DNS_TYPE_NS, 0, true);
    if (z->q_ns == SIZE_MAX)
        return SIZE_MAX;
    return cx->nzones++;
}

size_t caa_diag_ns_add(struct caa_diag_run *cx, const char *name)
{
    for (size_t i = 0; i < cx->nnss; i++)
        if (strcmp(cx->nss[i].name, name) == 0)
            return i;
    if (!caa_diag_grow((void **)&cx->nss, &cx->ncap, cx->nnss, sizeof *cx->nss))
        return SIZE_MAX;
    struct caa_diag_ns *ns = &cx->nss[cx->nnss];
    memset(ns, 0, sizeof *ns);
    snprintf(ns->name, sizeof ns->name, "%s", name);
    ns->q_a = caa_diag_query_add(cx, name, CAA_DNS_TYPE_A, 0, true);
    ns->q_aaaa = caa_diag_query_add(cx, name, CAA_DNS_TYPE_AAAA, 0, true);
    if (ns->q_a == SIZE_MAX || ns->q_aaaa == SIZE_MAX)
        return SIZE_MAX;
    return cx->nnss++;
}

static size_t addr_add(struct caa_diag_run *cx, int family, const void *bytes, const char *text)
{
    for (size_t i = 0; i < cx->naddrs; i++)
        if (strcmp(cx->addrs[i].text, text) == 0)
            return i;
    if (!caa_diag_grow((void **)&cx->addrs, &cx->acap, cx->naddrs, sizeof *cx->addrs))
        return SIZE_MAX;
    struct caa_diag_addr *a = &cx->addrs[cx->naddrs];
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

void caa_diag_take_ns_names(struct caa_diag_run *cx)
{
    for (size_t z = 0; z < cx->nzones; z++) {
        struct caa_diag_zone *zi = &cx->zones[z];
        const struct caa_diag_query *q = caa_diag_query_ran(cx, zi->q_ns);
        if (zi->taken || q == NULL)
            continue;
        zi->taken = true;
        if (caa_diag_query_failed(q, zi->why, sizeof zi->why) != NULL)
            continue;
        int found = caa_dns_ns_names(q->buf, q->len, zi->zone, zi->names, CAA_DIAG_NS_NAMES_MAX);
        if (found < 0)
            goto unreadable;
        zi->nnames = found > CAA_DIAG_NS_NAMES_MAX ? CAA_DIAG_NS_NAMES_MAX : (size_t)found;
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
static size_t take_addresses(struct caa_diag_run *cx, const struct caa_diag_query *q,
                             struct caa_diag_ns *ns, char (*out)[64], size_t max, size_t *nout)
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
        if (ns == NULL || !caa_zone_routable(family, rr.rdata) ||
            ns->naddr == CAA_DIAG_ADDRS_PER_NS)
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

enum cp_code caa_diag_take_ns_addresses(struct caa_diag_run *cx)
{
    for (size_t i = 0; i < cx->nnss; i++) {
        struct caa_diag_ns *ns = &cx->nss[i];
        const struct caa_diag_query *qa = caa_diag_query_ran(cx, ns->q_a),
                                    *q6 = caa_diag_query_ran(cx, ns->q_aaaa);
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
        const char *f4 = caa_diag_query_failed(qa, why4, sizeof why4),
                   *f6 = caa_diag_query_failed(q6, why6, sizeof why6);
        if (f4 != NULL)
            snprintf(ns->why, sizeof ns->why, "its address look-up fails: %.280s", f4);
        else if (f6 != NULL)
            snprintf(ns->why, sizeof ns->why, "it has no A record, and %.280s", f6);
        else
            snprintf(ns->why, sizeof ns->why, "the resolver finds no A or AAAA record for it");
    }
    return CP_OK;
}

enum cp_code caa_diag_add_challenge_zone(struct caa_diag_run *cx, struct caa_diag_item *it)
{
    struct caa_diag_readiness *r = &it->d.readiness;
    const struct caa_diag_query *qc = caa_diag_query_ran(cx, it->q_chal);
    if (qc == NULL ||
        caa_diag_query_failed(qc, r->challenge_error, sizeof r->challenge_error) != NULL)
        return CP_OK;
    int found = caa_zone_from_soa_answer(qc->buf, qc->len, r->challenge_name, r->challenge_target,
                                         r->challenge_zone);
    if (found != 1) {
        r->challenge_zone[0] = '\0';
        snprintf(r->challenge_error, sizeof r->challenge_error,
                 "the resolver's answer to SOA %.200s names no zone", r->challenge_name);
        return CP_OK;
    }
    it->chal_zone = caa_diag_zone_add(cx, r->challenge_zone);
    return it->chal_zone == SIZE_MAX ? CP_ENOMEM : CP_OK;
}

void caa_diag_take_readiness(struct caa_diag_run *cx, struct caa_diag_item *it)
{
    struct caa_diag_readiness *r = &it->d.readiness;
    const struct caa_diag_query *qa = caa_diag_query_ran(cx, it->q_a),
                                *q6 = caa_diag_query_ran(cx, it->q_aaaa);
    const char *base = it->d.caa->chain[0]->name;
    char why4[320], why6[320];

    (void)take_addresses(cx, qa, NULL, r->addresses, CAA_DIAG_ADDRS_MAX, &r->naddresses);
    (void)take_addresses(cx, q6, NULL, r->addresses, CAA_DIAG_ADDRS_MAX, &r->naddresses);
    if (r->naddresses == 0) {
        const char *f4 = caa_diag_query_failed(qa, why4, sizeof why4),
                   *f6 = caa_diag_query_failed(q6, why6, sizeof why6);
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
    const struct caa_diag_zone *z = &cx->zones[it->chal_zone];
    for (size_t i = 0; i < z->nnames && i < 16; i++)
        memcpy(r->nameservers[r->nnameservers++], z->names[i], sizeof z->names[i]);
    if (z->nnames == 0)
        snprintf(r->challenge_error, sizeof r->challenge_error, "%s", z->why);
}
