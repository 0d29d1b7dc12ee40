/*
 * caa/diag_query.c - the rounds of queries of a diagnosis: each query is
 * added once (same name, type, channel and CD bit: same query), then a round
 * sends every query not sent yet, with one c-ares channel for the resolver and
 * one per server address, all in one poll loop (caa/dns.c).
 *
 * Towards the resolver RD is set (with CD=1 where asked); towards a server it
 * is not.  Answers are kept as they came; reading them is for the other stages.
 */
#include "caa/caa.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "caa/diagnose_int.h"

bool caa_diag_grow(void **arr, size_t *cap, size_t n, size_t size)
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

size_t caa_diag_query_add(struct caa_diag_run *cx, const char *name, unsigned type, size_t chan,
                          bool cd)
{
    const char *qname = name[0] ? name : ".";
    for (size_t i = 0; i < cx->nq; i++) {
        const struct caa_diag_query *q = &cx->q[i];
        if (q->qtype == type && q->chan == chan && q->cd == cd && strcasecmp(q->qname, qname) == 0)
            return i;
    }
    if (!caa_diag_grow((void **)&cx->q, &cx->qcap, cx->nq, sizeof *cx->q))
        return SIZE_MAX;
    struct caa_diag_query *q = &cx->q[cx->nq];
    memset(q, 0, sizeof *q);
    snprintf(q->qname, sizeof q->qname, "%s", qname);
    q->qtype = type;
    q->chan = chan;
    q->cd = cd;
    q->status = ARES_ETIMEOUT;
    return cx->nq++;
}

struct pending {
    struct caa_diag_query *q;
    size_t *outstanding;
};

static void on_reply(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct pending *pd = arg;
    struct caa_diag_query *q = pd->q;
    (void)timeouts;
    (*pd->outstanding)--;
    q->ms = (long)(caa_dns_now_ms() - q->sent);
    q->status = caa_dns_keep_answer(status, abuf, alen, &q->buf, &q->len);
    free(pd);
}

static bool send_query(ares_channel ch, struct caa_diag_query *q, size_t *outstanding)
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

enum cp_code caa_diag_run_pending(struct caa_diag_run *cx, struct cp_err *err)
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
            struct caa_diag_query *q = &cx->q[i];
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

const struct caa_diag_query *caa_diag_query_ran(const struct caa_diag_run *cx, size_t i)
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

const char *caa_diag_query_failed(const struct caa_diag_query *q, char *buf, size_t size)
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
        if (rcode == CAA_DNS_RCODE_NOERROR || rcode == CAA_DNS_RCODE_NXDOMAIN)
            return NULL;
        snprintf(buf, size, "the resolver answers %s to %s %s", caa_rcode_name(rcode),
                 type_name(q->qtype), q->qname);
    }
    return buf;
}
