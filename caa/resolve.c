/*
 * caa/resolve.c - CAA look-ups for many names at once over c-ares.
 *
 * Round trips are what a batch costs (issue 17: 100 identifiers in at most
 * two).  Every name is known before the first query: the caller passes each
 * identifier and all its parents, deduplicated (caa/check.c), and the
 * resolver follows CNAME and DNAME chains itself (spec §2), so nothing waits
 * for an answer to learn what to ask.  All the queries therefore go out in one
 * wave (up to CAA_DNS_WAVE_MAX in flight, caa/dns.c), on a channel allowed
 * only their first try.
 *
 * A resolver with a small queue (a single-threaded one, or dnsmasq's 150
 * forwarded queries) loses what overflows it.  Those queries come back as
 * time-outs of the first try; they are then asked again on a second channel
 * with the rest of the budget and tries, at most half as many in flight as
 * the resolver answered in the first wave (between CAA_DNS_RESEND_WINDOW_MIN
 * and _MAX), so that it is not flooded twice.  c-ares would resend them all at
 * once.  Each try's time-out counts from when that query is sent; one still
 * unanswered after the last try is a time-out (spec §3).
 *
 * c-ares builds the queries, falls back to TCP on truncation and decompresses
 * names (ares_expand_name).  The answer section is walked here rather than
 * with ares_parse_caa_reply() because c-ares 1.18 rejects a CAA record whose
 * value is empty (`0 issue ""` is legitimate: it forbids issuance) and does
 * not report the CNAME chain the resolver followed.  The channel set-up, the
 * poll loop and the record walker are shared with caa/zone.c (caa/dns.c).
 */
#include "caa/caa.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caa/dns_int.h"

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_TRIES      2

struct pending {
    struct caa_lookup *lookup;
    enum cp_code *fatal; /* set on allocation failure inside a callback */
    bool retry;          /* a first try whose loss is not final: more tries follow */
    bool lost;           /* set when that first try went unanswered */
    size_t *answered;    /* first tries that got an answer or a definite failure */
};

static enum cp_code add_record(struct caa_lookup *l, const unsigned char *rd, size_t rdlen)
{
    return caa_dns_add_caa(&l->records, &l->nrecords, rd, rdlen);
}

/*
 * Collect the CAA records of the answer section and follow the CNAME chain
 * from the query name.  Every RR is bounds-checked against the buffer before
 * it is read.  CP_EPROTO means the answer could not be parsed.
 */
static enum cp_code parse_answer(struct caa_lookup *l, const unsigned char *abuf, int alen)
{
    struct caa_dns_aliases aliases;
    struct caa_dns_walk w;
    struct caa_dns_rr rr;

    aliases.n = 0;
    if (caa_dns_walk_start(&w, abuf, alen) != 0)
        return CP_EPROTO;
    while (w.section == CAA_DNS_ANSWER) {
        if (caa_dns_walk_next(&w, &rr) != 1)
            return CP_EPROTO;
        if (rr.rrclass == CAA_DNS_CLASS_IN && rr.type == CAA_DNS_TYPE_CAA) {
            enum cp_code rc = add_record(l, rr.rdata, rr.rdlen);
            if (rc != CP_OK)
                return rc;
        } else if (rr.rrclass == CAA_DNS_CLASS_IN && rr.type == CAA_DNS_TYPE_CNAME &&
                   caa_dns_aliases_add(&aliases, &w, &rr) != 0) {
            return CP_EPROTO;
        }
    }

    const char *cur = caa_dns_aliases_follow(&aliases, l->name);
    if (cur != l->name)
        snprintf(l->target, sizeof l->target, "%s", cur);
    return CP_OK;
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct pending *pd = arg;
    struct caa_lookup *l = pd->lookup;
    (void)timeouts;

    if (pd->retry && (status == ARES_ETIMEOUT || status == ARES_ECANCELLED)) {
        pd->lost = true; /* asked again in the second round */
        return;
    }
    if (pd->answered != NULL)
        (*pd->answered)++;
    switch (status) {
    case ARES_SUCCESS: break;
    case ARES_ETIMEOUT:
    case ARES_ECANCELLED:   /* our overall deadline passed */
    case ARES_EDESTRUCTION: /* channel torn down at the deadline */
        l->answer = CAA_ANSWER_TIMEOUT;
        goto out;
    default:
        /* Connection refused, unreadable answers, ...: the query never got a
         * usable response. */
        l->answer = CAA_ANSWER_NETWORK;
        goto out;
    }

    if (alen < CAA_DNS_HEADER_LEN) {
        l->answer = CAA_ANSWER_NETWORK;
        goto out;
    }
    l->rcode = abuf[3] & 0x0F;
    /* spec §3: NOERROR and NXDOMAIN carry a (maybe empty) set; any other
     * RCODE is an error for this name. */
    if (l->rcode != 0 && l->rcode != 3) {
        l->answer = CAA_ANSWER_RCODE;
        caa_dns_lookup_ede(l, abuf, alen); /* spec §10 EDE: quoted in the detail */
        goto out;
    }
    enum cp_code rc = parse_answer(l, abuf, alen);
    if (rc == CP_ENOMEM) {
        *pd->fatal = CP_ENOMEM;
    } else if (rc != CP_OK) {
        l->answer = CAA_ANSWER_NETWORK;
        goto out;
    }
    /* spec §3: NXDOMAIN for a name without a dot (the TLD step of the climb,
     * or the end of a CNAME chain) is an error, so that a TLD that does not
     * exist never allows issuance; below the TLD it is an empty set. */
    if (l->rcode == 3 && (strchr(l->name, '.') == NULL ||
                          (l->target[0] != '\0' && strchr(l->target, '.') == NULL))) {
        l->answer = CAA_ANSWER_RCODE;
        caa_dns_lookup_ede(l, abuf, alen);
        goto out;
    }
    l->answer = CAA_ANSWER_RECORDS;
out:
    return;
}

/* How many lost queries to have in flight when asking them again: half of
 * what the resolver answered while holding a whole wave (what its queue
 * evidently takes), within bounds.  A resolver that answered nothing is down
 * or unreachable, not full: pacing would only multiply the wait. */
static size_t resend_window(size_t answered)
{
    if (answered == 0)
        return CAA_DNS_WAVE_MAX;
    size_t w = answered / 2;
    if (w < CAA_DNS_RESEND_WINDOW_MIN)
        w = CAA_DNS_RESEND_WINDOW_MIN;
    return w > CAA_DNS_RESEND_WINDOW_MAX ? CAA_DNS_RESEND_WINDOW_MAX : w;
}

enum cp_code caa_resolve(const struct caa_resolver_opts *opts, const char *const *names, size_t n,
                         struct caa_lookup **out, struct caa_resolve_stats *stats,
                         struct cp_err *err)
{
    enum cp_code rc = CP_OK, fatal = CP_OK;
    struct caa_lookup *lookups = NULL;
    struct ares_addr_port_node *servers = NULL;
    ares_channel ch = NULL;
    struct caa_dns_job *jobs = NULL;
    struct pending *pds = NULL;
    struct caa_dns_waves w = {0};
    size_t answered = 0, nlost = 0;

    *out = NULL;
    if (stats != NULL)
        *stats = (struct caa_resolve_stats){0};
    unsigned timeout_ms = opts && opts->timeout_ms ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    unsigned tries = opts && opts->tries ? opts->tries : DEFAULT_TRIES;
    if (tries > 10)
        tries = 10;

    lookups = calloc(n ? n : 1, sizeof *lookups);
    jobs = calloc(n ? n : 1, sizeof *jobs);
    pds = calloc(n ? n : 1, sizeof *pds);
    if (lookups == NULL || jobs == NULL || pds == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory for %zu CAA look-ups", n);
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        if (strlen(names[i]) > CAA_NAME_MAX) {
            rc = cp_err_set(err, CP_EINVAL, "name \"%.40s...\" is longer than %d octets", names[i],
                            CAA_NAME_MAX);
            goto cleanup;
        }
        snprintf(lookups[i].name, sizeof lookups[i].name, "%s", names[i]);
        lookups[i].rcode = -1;
        lookups[i].answer = CAA_ANSWER_TIMEOUT;
    }

    if (opts != NULL) {
        rc = caa_dns_parse_servers(opts->servers, opts->nservers, &servers, err);
        if (rc != CP_OK)
            goto cleanup;
    }

    /* Round 1: every query at once, first try only.  EDNS: UDP answers up to
     * CAA_DNS_EDNS_UDP_SIZE octets are taken as they come; only truncated
     * ones are asked again over TCP. */
    unsigned first_ms = caa_dns_first_try_ms(timeout_ms, tries);
    rc = caa_dns_open(servers, first_ms, 1, ARES_FLAG_EDNS, &ch, err);
    if (rc != CP_OK)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        pds[i] = (struct pending){
            .lookup = &lookups[i], .fatal = &fatal, .retry = tries > 1, .answered = &answered};
        jobs[i] = (struct caa_dns_job){.name = lookups[i].name,
                                       .type = CAA_DNS_TYPE_CAA,
                                       .rd = true,
                                       .cb = on_answer,
                                       .arg = &pds[i]};
    }
    /* With one try, c-ares asks each server in turn before a query times
     * out: the safety net leaves time for all of them. */
    size_t nservers = caa_dns_server_count(ch);
    (void)caa_dns_send_all(ch, jobs, n, first_ms * (unsigned)(nservers < 16 ? nservers : 16),
                           CAA_DNS_WAVE_MAX, &w);
    caa_dns_close(ch);
    ch = NULL;

    /* Round 2: the lost first tries, with the tries and budget left, paced. */
    for (size_t i = 0; i < n; i++) {
        if (!pds[i].lost)
            continue;
        pds[i].retry = false;
        pds[i].answered = NULL;
        jobs[nlost++] = (struct caa_dns_job){.name = lookups[i].name,
                                             .type = CAA_DNS_TYPE_CAA,
                                             .rd = true,
                                             .cb = on_answer,
                                             .arg = &pds[i]};
    }
    if (nlost > 0) {
        unsigned rest_ms = caa_dns_query_ms(timeout_ms, tries) - first_ms;
        rc = caa_dns_open(servers, rest_ms, tries - 1, ARES_FLAG_EDNS, &ch, err);
        if (rc != CP_OK)
            goto cleanup;
        (void)caa_dns_send_all(ch, jobs, nlost, caa_dns_query_ms(rest_ms, tries - 1),
                               resend_window(answered), &w);
    }
    if (fatal != CP_OK) {
        rc = cp_err_set(err, fatal, "out of memory while reading DNS answers");
        goto cleanup;
    }

    *out = lookups;
    lookups = NULL;
    if (stats != NULL)
        *stats = (struct caa_resolve_stats){.queries = w.sent, .resent = nlost, .waves = w.waves};
cleanup:
    caa_dns_close(ch); /* outstanding callbacks run here */
    free(pds);
    free(jobs);
    free(servers);
    caa_lookups_free(lookups, n);
    return rc;
}

void caa_lookups_free(struct caa_lookup *lookups, size_t n)
{
    if (lookups == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        for (size_t r = 0; r < lookups[i].nrecords; r++) {
            free(lookups[i].records[r].tag);
            free(lookups[i].records[r].value);
        }
        free(lookups[i].records);
    }
    free(lookups);
}
