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
 * This file is the driver: it runs the stages in order and owns the result.
 * The stages are in caa/diag_query.c, caa/diag_zone.c, caa/diag_server.c,
 * caa/diag_classify.c and caa/diag_text.c (see caa/diagnose_int.h).
 *
 * What it does not do: print, send anything to the addresses the names
 * resolve to, validate DNSSEC itself, or follow referrals from the parent (the
 * NS set is the one the resolver returns, as for caa_zone_servers()).
 */
#include "caa/caa.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caa/diagnose_int.h"

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_TRIES      2

struct caa_diag {
    struct caa_report *report;
    struct caa_diag_item *items;
    size_t n;
    char resolver[160];
};

static void item_clear(struct caa_diag_item *it)
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

static void ctx_clear(struct caa_diag_run *cx)
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
    struct caa_diag_run cx = {0};
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
        struct caa_diag_item *it = &dg->items[i];
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
            if ((q_soa[i][j] = caa_diag_query_add(&cx, res->chain[j]->name, CAA_DNS_TYPE_SOA, 0,
                                                  true)) == SIZE_MAX)
                goto nomem;
        const char *base = res->chain[0]->name;
        struct caa_diag_readiness *r = &it->d.readiness;
        r->method = o->params->method;
        it->q_a = caa_diag_query_add(&cx, base, CAA_DNS_TYPE_A, 0, false);
        it->q_aaaa = caa_diag_query_add(&cx, base, CAA_DNS_TYPE_AAAA, 0, false);
        it->q_chal = SIZE_MAX;
        if (it->q_a == SIZE_MAX || it->q_aaaa == SIZE_MAX)
            goto nomem;
        /* The DNS types are answered at a name of their own: dns-01's
         * record, or dns-persist-01's standing one (draft §3). */
        bool persist = strcmp(o->params->method, "dns-persist-01") == 0;
        if (persist || strcmp(o->params->method, "dns-01") == 0) {
            const char *label = persist ? "_validation-persist" : "_acme-challenge";
            int len = snprintf(r->challenge_name, sizeof r->challenge_name, "%s.%s", label, base);
            if (len < 0 || (size_t)len >= sizeof r->challenge_name) {
                snprintf(r->challenge_error, sizeof r->challenge_error,
                         "%s.%s is longer than %d octets", label, base, CAA_NAME_MAX);
            } else if ((it->q_chal = caa_diag_query_add(&cx, r->challenge_name, CAA_DNS_TYPE_SOA, 0,
                                                        false)) == SIZE_MAX) {
                goto nomem;
            }
        }
    }
    rc = caa_diag_run_pending(&cx, err);
    if (rc != CP_OK)
        goto cleanup;

    /* 2. The hops: the chain names and the CNAME chains the resolver shows. */
    for (size_t i = 0; i < n; i++) {
        dg->items[i].aliases_left = CAA_DNS_CNAME_HOPS_MAX;
        if (caa_diag_build_hops(&cx, &dg->items[i], q_soa[i]) != CP_OK)
            goto nomem;
    }

    /* 3. Until no hop is new: zones, nameservers, addresses, then the round
     * that matters.  A CNAME only the servers show (the resolver failed to
     * follow it) adds a hop, and another pass. */
    for (bool first = true;; first = false) {
        bool fresh = false;
        for (size_t i = 0; i < n; i++) {
            struct caa_diag_item *it = &dg->items[i];
            for (size_t k = 0; k < it->d.nhops; k++) {
                struct caa_diag_hopq *hq = &it->hq[k];
                const char *sn = caa_diag_soa_name(it, k);
                if (hq->done)
                    continue;
                fresh = true;
                /* The parent's SOA in the same round: the fallback when the
                 * resolver cannot name the zone (a CNAME it cannot follow). */
                if (sn[0] &&
                    ((hq->q_zone = caa_diag_query_add(&cx, sn, CAA_DNS_TYPE_SOA, 0, true)) ==
                         SIZE_MAX ||
                     (caa_diag_parent_of(sn)[0] &&
                      (hq->q_parent = caa_diag_query_add(&cx, caa_diag_parent_of(sn),
                                                         CAA_DNS_TYPE_SOA, 0, true)) == SIZE_MAX)))
                    goto nomem;
            }
        }
        if (!fresh)
            break;
        if ((rc = caa_diag_run_pending(&cx, err)) != CP_OK)
            goto cleanup;

        /* The zones; when the resolver cannot name one, that of the parent,
         * to be confirmed by the servers' answers. */
        for (size_t i = 0; i < n; i++) {
            struct caa_diag_item *it = &dg->items[i];
            for (size_t k = 0; k < it->d.nhops; k++) {
                struct caa_diag_hop *h = &it->d.hops[k];
                struct caa_diag_hopq *hq = &it->hq[k];
                const char *sn = caa_diag_soa_name(it, k);
                char why[8];
                if (hq->done)
                    continue;
                if (hq->q_zone == SIZE_MAX) {
                    snprintf(h->zone_error, sizeof h->zone_error, "%.200s has no parent zone",
                             h->name);
                    continue;
                }
                caa_diag_zone_of(&cx, hq->q_zone, sn, h->zone, h->zone_error, sizeof h->zone_error);
                if (h->zone_error[0] != '\0' && hq->q_parent != SIZE_MAX &&
                    caa_diag_query_failed(caa_diag_query_ran(&cx, hq->q_zone), why, sizeof why) !=
                        NULL) {
                    char zone[CAA_NAME_MAX + 1], why2[320];
                    caa_diag_zone_of(&cx, hq->q_parent, caa_diag_parent_of(sn), zone, why2,
                                     sizeof why2);
                    if (why2[0] == '\0') {
                        memcpy(h->zone, zone, sizeof zone);
                        h->zone_error[0] = '\0';
                        hq->guessed = true;
                    }
                }
                if (h->zone_error[0] == '\0' &&
                    (hq->zone = caa_diag_zone_add(&cx, h->zone)) == SIZE_MAX)
                    goto nomem;
            }
            if (first && caa_diag_add_challenge_zone(&cx, it) != CP_OK)
                goto nomem;
        }
        if ((rc = caa_diag_run_pending(&cx, err)) != CP_OK)
            goto cleanup;
        caa_diag_take_ns_names(&cx);

        /* The addresses of every NS name. */
        for (size_t z = 0; z < cx.nzones; z++)
            for (size_t k = 0; k < cx.zones[z].nnames; k++)
                if (caa_diag_ns_add(&cx, cx.zones[z].names[k]) == SIZE_MAX)
                    goto nomem;
        if ((rc = caa_diag_run_pending(&cx, err)) != CP_OK)
            goto cleanup;
        if (caa_diag_take_ns_addresses(&cx) != CP_OK)
            goto nomem;

        /* CAA from every server and the resolver, all at once. */
        for (size_t i = 0; i < n; i++) {
            struct caa_diag_item *it = &dg->items[i];
            for (size_t k = 0; k < it->d.nhops; k++)
                if (!it->hq[k].done && caa_diag_plan_hop(&cx, &it->d.hops[k], &it->hq[k]) != CP_OK)
                    goto nomem;
        }
        if ((rc = caa_diag_run_pending(&cx, err)) != CP_OK)
            goto cleanup;
        for (size_t i = 0; i < n; i++) {
            struct caa_diag_item *it = &dg->items[i];
            for (size_t k = 0; k < it->d.nhops; k++) {
                if (it->hq[k].done)
                    continue;
                if (caa_diag_take_hop(&cx, &it->d.hops[k], &it->hq[k]) != CP_OK)
                    goto nomem;
                it->hq[k].done = true;
            }
            for (size_t k = 0; k < it->d.nhops && it->aliases_left > 0; k++) {
                const char *t = caa_diag_unfollowed_alias(it, k);
                if (t == NULL)
                    continue;
                char target[CAA_NAME_MAX + 1];
                snprintf(target, sizeof target, "%s", t); /* t points into the hops */
                if (caa_diag_hop_insert(it, k + 1, target, it->d.hops[k].name,
                                        it->d.hops[k].chain_index) == NULL)
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
        struct caa_diag_item *it = &dg->items[i];
        caa_diag_take_readiness(&cx, it);
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
