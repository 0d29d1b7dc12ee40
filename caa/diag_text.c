/*
 * caa/diag_text.c - the words of a diagnosis: the names of severities and
 * kinds, and answers, servers and SOA probes put as text into the fixed-size
 * summary, evidence and fix of a finding.
 *
 * Pure: no I/O, no allocation; text that does not fit is cut and ends in
 * "...".
 */
#include "caa/caa.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "caa/diagnose_int.h"

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

void caa_diag_text_init(struct caa_diag_text *t, char *buf, size_t size)
{
    t->p = buf;
    t->size = size;
    t->len = 0;
    buf[0] = '\0';
}

void caa_diag_put(struct caa_diag_text *t, const char *fmt, ...)
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
static void put_records(struct caa_diag_text *t, const struct caa_record *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char rec[300];
        size_t need = caa_record_format(&r[i], rec, sizeof rec);
        caa_diag_put(t, "%s%s%s", i ? ", " : "", rec, need >= sizeof rec ? "..." : "");
    }
}

void caa_diag_put_answer(struct caa_diag_text *t, const struct caa_diag_answer *a,
                         unsigned timeout_ms)
{
    if (!a->asked) {
        caa_diag_put(t, "not asked");
    } else if (a->error[0] != '\0') {
        caa_diag_put(t, "no answer (%s)", a->error);
    } else if (a->timeout) {
        caa_diag_put(t, "no answer within %.1f s", timeout_ms / 1000.0);
    } else if (!caa_diag_usable(a)) {
        caa_diag_put(t, "%s", caa_rcode_name(a->rcode));
    } else {
        caa_diag_put(t, "%s", caa_rcode_name(a->rcode));
        if (a->cname[0] != '\0')
            caa_diag_put(t, ", CNAME %s", a->cname);
        if (a->nrecords == 0) {
            caa_diag_put(t, ", no CAA record");
        } else {
            caa_diag_put(t, ", %zu record%s: ", a->nrecords, a->nrecords == 1 ? "" : "s");
            put_records(t, a->records, a->nrecords);
        }
    }
}

void caa_diag_put_server(struct caa_diag_text *t, const struct caa_diag_server *s)
{
    if (s->addr[0] != '\0')
        caa_diag_put(t, "%s (%s)", s->name, s->addr);
    else
        caa_diag_put(t, "%s", s->name);
}

void caa_diag_put_server_serial(struct caa_diag_text *t, const struct caa_diag_server *s)
{
    if (!s->authoritative) {
        caa_diag_put_server(t, s);
        return;
    }
    caa_diag_put(t, "%s (%s, SOA serial %lu)", s->name, s->addr, s->serial);
}

void caa_diag_put_soa(struct caa_diag_text *t, const struct caa_diag_hop *h,
                      const struct caa_diag_server *s, unsigned timeout_ms)
{
    const struct caa_diag_answer *a = &s->soa;
    const char *zone = h->zone[0] ? h->zone : ".";
    if (!a->asked)
        return;
    if (s->authoritative)
        caa_diag_put(t, "; it serves SOA %s with authority (serial %lu)", zone, s->serial);
    else if (a->error[0] != '\0')
        caa_diag_put(t, "; SOA %s: no answer (%s)", zone, a->error);
    else if (a->timeout)
        caa_diag_put(t, "; it does not answer SOA %s either", zone);
    else if (caa_diag_usable(a) && !a->aa)
        caa_diag_put(t, "; it answers SOA %s without authority", zone);
    else if (caa_diag_usable(a))
        caa_diag_put(t, "; it answers SOA %s without the zone's SOA record", zone);
    else
        caa_diag_put(t, "; it answers %s to SOA %s", caa_rcode_name(a->rcode), zone);
    (void)timeout_ms;
}
