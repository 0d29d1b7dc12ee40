/* tests/unit/test_caa_diagnose.c - caa/diag_classify.c: the classification of
 * hand-built answers into findings (caa_diag_classify), one test per kind,
 * severities, the worst-status rule and de-duplication. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caa/caa.h"

#define NOERROR  0
#define SERVFAIL 2
#define NXDOMAIN 3
#define NOTIMP   4
#define REFUSED  5
#define NOTAUTH  9

static struct caa_record LE[] = {
    {0, "issue", sizeof "issue" - 1, (unsigned char *)"letsencrypt.org", 15}};
static struct caa_record GOOG[] = {
    {0, "issue", sizeof "issue" - 1, (unsigned char *)"pki.goog", 8}};
static struct caa_record WILD_GOOG[] = {
    {0, "issuewild", sizeof "issuewild" - 1, (unsigned char *)"pki.goog", 8}};

/* ------------------------------------------------------------- fixtures */

#define HOPS_MAX    4
#define SERVERS_MAX 6

struct fx {
    struct caa_lookup lk[HOPS_MAX];
    const struct caa_lookup *chain[HOPS_MAX];
    size_t nchain;
    struct caa_params p;
    struct caa_decision dec;
    struct caa_explanation ex;
    struct caa_result res;
    struct caa_diag_hop hops[HOPS_MAX];
    struct caa_diag_server srv[HOPS_MAX][SERVERS_MAX];
    struct caa_diag_name d;
    struct caa_diag_context cx;
};

static struct caa_diag_answer ans(int rcode, bool aa, struct caa_record *recs, size_t n)
{
    struct caa_diag_answer a;
    memset(&a, 0, sizeof a);
    a.asked = true;
    a.rcode = rcode;
    a.aa = aa;
    a.records = recs;
    a.nrecords = n;
    a.ms = 2;
    return a;
}

static struct caa_diag_answer none(void)
{
    struct caa_diag_answer a;
    memset(&a, 0, sizeof a);
    a.asked = true;
    a.timeout = true;
    a.rcode = -1;
    a.ms = 2000;
    return a;
}

static struct caa_diag_answer cname(const char *target)
{
    struct caa_diag_answer a = ans(NOERROR, true, NULL, 0);
    snprintf(a.cname, sizeof a.cname, "%s", target);
    return a;
}

static struct fx *fx_new(void)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->p.ca_identity = "letsencrypt.org";
    f->p.method = "http-01";
    f->cx.resolver = "127.0.0.1:5353";
    f->cx.timeout_ms = 2000;
    f->d.caa = &f->res;
    f->d.hops = f->hops;
    return f;
}

static void fx_free(struct fx *f)
{
    caa_decision_clear(&f->dec);
    caa_explanation_clear(&f->ex);
    free(f->d.findings);
    free(f);
}

/* A name of the chain as the resolver gave it to caa_check(). */
static void fx_lookup(struct fx *f, const char *name, enum caa_answer answer, int rcode,
                      struct caa_record *recs, size_t n, const char *target)
{
    struct caa_lookup *l = &f->lk[f->nchain];
    snprintf(l->name, sizeof l->name, "%s", name);
    snprintf(l->target, sizeof l->target, "%s", target ? target : "");
    l->answer = answer;
    l->rcode = rcode;
    l->records = recs;
    l->nrecords = n;
    f->chain[f->nchain] = l;
    f->nchain++;
}

/* The verdict, with the real policy and explanation. */
static void fx_judge(struct fx *f, const char *ident, bool wildcard)
{
    assert_int_equal(caa_evaluate(f->chain, f->nchain, wildcard, &f->p, &f->dec, NULL), CP_OK);
    assert_int_equal(caa_explain(ident, f->chain, f->nchain, &f->p, &f->dec, &f->ex, NULL), CP_OK);
    f->res.ident = ident;
    f->res.wildcard = wildcard;
    f->res.status = f->dec.status;
    f->res.chain = f->chain;
    f->res.nchain = f->nchain;
    f->res.decision = &f->dec;
    f->res.explanation = &f->ex;
    f->res.params = &f->p;
    snprintf(f->d.ident, sizeof f->d.ident, "%s", ident);
}

static struct caa_diag_hop *fx_hop(struct fx *f, const char *name, const char *zone,
                                   const char *alias_of, size_t chain_index,
                                   struct caa_diag_answer resolver)
{
    size_t i = f->d.nhops++;
    struct caa_diag_hop *h = &f->hops[i];
    snprintf(h->name, sizeof h->name, "%s", name);
    snprintf(h->zone, sizeof h->zone, "%s", zone);
    snprintf(h->alias_of, sizeof h->alias_of, "%s", alias_of ? alias_of : "");
    h->chain_index = chain_index;
    h->resolver = resolver;
    h->resolver_cd = resolver;
    h->servers = f->srv[i];
    return h;
}

/* A server address; `soa_auth` says whether it serves the zone's SOA. */
static struct caa_diag_server *fx_server(struct fx *f, struct caa_diag_hop *h, const char *name,
                                         const char *addr, struct caa_diag_answer caa,
                                         bool soa_auth)
{
    size_t hi = (size_t)(h - f->hops);
    struct caa_diag_server *s = &f->srv[hi][h->nservers++];
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->addr, sizeof s->addr, "%s", addr);
    s->caa = caa;
    s->soa = soa_auth ? ans(NOERROR, true, NULL, 0) : ans(REFUSED, false, NULL, 0);
    s->authoritative = soa_auth;
    s->serial = 7;
    return s;
}

/* Three servers of example.test answering `a`, `b`, `c`. */
static struct caa_diag_hop *three(struct fx *f, struct caa_diag_answer resolver,
                                  struct caa_diag_answer a, struct caa_diag_answer b,
                                  struct caa_diag_answer c)
{
    struct caa_diag_hop *h = fx_hop(f, "example.test", "example.test", NULL, 0, resolver);
    fx_server(f, h, "ns1.example.test", "127.0.0.2", a, true);
    fx_server(f, h, "ns2.example.test", "127.0.0.3", b, true);
    fx_server(f, h, "ns3.example.test", "127.0.0.4", c, true);
    return h;
}

static void classify(struct fx *f)
{
    assert_int_equal(caa_diag_classify(&f->d, &f->cx, NULL), CP_OK);
}

static const struct caa_diag_finding *find(const struct fx *f, enum caa_diag_kind k)
{
    for (size_t i = 0; i < f->d.nfindings; i++)
        if (f->d.findings[i].kind == k)
            return &f->d.findings[i];
    return NULL;
}

static size_t count(const struct fx *f, enum caa_diag_kind k)
{
    size_t n = 0;
    for (size_t i = 0; i < f->d.nfindings; i++)
        n += f->d.findings[i].kind == k;
    return n;
}

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        if (strstr((hay), (needle)) == NULL)                                                       \
            fail_msg("\"%s\" not in \"%s\"", (needle), (hay));                                     \
    } while (0)

/* ---------------------------------------------------------------- tests */

static void names(void **state)
{
    (void)state;
    assert_string_equal(caa_diag_severity_name(CAA_DIAG_OK), "OK");
    assert_string_equal(caa_diag_severity_name(CAA_DIAG_INFO), "INFO");
    assert_string_equal(caa_diag_severity_name(CAA_DIAG_FLAKY), "FLAKY");
    assert_string_equal(caa_diag_severity_name(CAA_DIAG_WILL_FAIL), "WILL_FAIL");
    assert_string_equal(caa_diag_severity_name(CAA_DIAG_BLOCKED), "BLOCKED");
    const char *kinds[] = {"caa_denied", "dnssec", "notimp",       "refused", "servfail",
                           "timeout",    "lame",   "inconsistent", "cname",   "resolver_error"};
    for (int k = CAA_DIAG_CAA_DENIED; k <= CAA_DIAG_RESOLVER_ERROR; k++)
        assert_string_equal(caa_diag_kind_name((enum caa_diag_kind)k), kinds[k]);
}

static void needs_a_verdict(void **state)
{
    (void)state;
    struct caa_diag_name d;
    struct caa_diag_context cx = {0};
    struct cp_err err = {0};
    memset(&d, 0, sizeof d);
    assert_int_equal(caa_diag_classify(&d, &cx, &err), CP_EINVAL);
    assert_true(err.msg[0] != '\0');
}

static void all_good(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_lookup(f, "example.test", CAA_ANSWER_RECORDS, NOERROR, LE, 1, NULL);
    fx_judge(f, "example.test", false);
    struct caa_diag_answer le = ans(NOERROR, true, LE, 1);
    struct caa_diag_hop *h = three(f, ans(NOERROR, false, LE, 1), le, le, le);
    classify(f);
    assert_int_equal(f->d.status, CAA_DIAG_OK);
    assert_int_equal(f->d.nfindings, 0);
    assert_true(h->agree);
    fx_free(f);
}

static void caa_denied(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_lookup(f, "example.test", CAA_ANSWER_RECORDS, NOERROR, GOOG, 1, NULL);
    fx_judge(f, "example.test", false);
    struct caa_diag_answer g = ans(NOERROR, true, GOOG, 1);
    three(f, ans(NOERROR, false, GOOG, 1), g, g, g);
    classify(f);
    assert_int_equal(f->d.status, CAA_DIAG_BLOCKED);
    assert_int_equal(f->d.nfindings, 1);
    const struct caa_diag_finding *x = find(f, CAA_DIAG_CAA_DENIED);
    assert_non_null(x);
    assert_int_equal(x->severity, CAA_DIAG_BLOCKED);
    assert_string_equal(x->name, "example.test");
    assert_string_equal(x->zone, "example.test");
    assert_string_equal(x->server, "");
    assert_contains(x->evidence, "0 issue \"pki.goog\" (other CA)");
    assert_contains(x->evidence, "CAA record for example.test prevents issuance");
    assert_contains(x->fix, "example.test. CAA 0 issue \"letsencrypt.org\"");
    fx_free(f);
}

static void caa_denied_wildcard_account(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->p.account_uri = "https://ca.test/acct/1";
    fx_lookup(f, "example.test", CAA_ANSWER_RECORDS, NOERROR, WILD_GOOG, 1, NULL);
    fx_judge(f, "*.example.test", true);
    struct caa_diag_answer g = ans(NOERROR, true, WILD_GOOG, 1);
    three(f, ans(NOERROR, false, WILD_GOOG, 1), g, g, g);
    classify(f);
    const struct caa_diag_finding *x = find(f, CAA_DIAG_CAA_DENIED);
    assert_non_null(x);
    assert_contains(x->summary, "*.example.test");
    assert_contains(x->fix,
                    "CAA 0 issuewild \"letsencrypt.org; accounturi=https://ca.test/acct/1\"");
    fx_free(f);
}

static void notimp_from_one_server_is_flaky(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_lookup(f, "example.test", CAA_ANSWER_RECORDS, NOERROR, LE, 1, NULL);
    fx_judge(f, "example.test", false);
    struct caa_diag_answer le = ans(NOERROR, true, LE, 1);
    struct caa_diag_hop *h =
        three(f, ans(NOERROR, false, LE, 1), le, le, ans(NOTIMP, true, NULL, 0));
    classify(f);
    assert_int_equal(f->d.status, CAA_DIAG_FLAKY);
    assert_int_equal(f->d.nfindings, 1);
    const struct caa_diag_finding *x = find(f, CAA_DIAG_NOTIMP);
    assert_non_null(x);
    assert_int_equal(x->severity, CAA_DIAG_FLAKY);
    assert_string_equal(x->server, "ns3.example.test");
    assert_string_equal(x->address, "127.0.0.4");
    assert_string_equal(x->zone, "example.test");
    assert_contains(x->evidence, "NOTIMP");
    assert_contains(x->evidence, "127.0.0.4");
    assert_contains(x->fix, "RFC 1035");
    assert_contains(x->fix, "PowerDNS before 4.0");
    assert_true(h->agree); /* a failing server is no disagreement */
    fx_free(f);
}

static void notimp_everywhere_will_fail(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_lookup(f, "notimp.test", CAA_ANSWER_RCODE, SERVFAIL, NULL, 0, NULL);
    fx_judge(f, "notimp.test", false);
    assert_int_equal(f->res.status, CAA_ERROR);
    struct caa_diag_hop *h =
        fx_hop(f, "notimp.test", "notimp.test", NULL, 0, ans(SERVFAIL, false, NULL, 0));
    fx_server(f, h, "ns.notimp.test", "127.0.0.1", ans(NOTIMP, true, NULL, 0), true);
    classify(f);
    assert_int_equal(f->d.status, CAA_DIAG_WILL_FAIL);
    const struct caa_diag_finding *x = find(f, CAA_DIAG_NOTIMP);
    assert_non_null(x);
    assert_int_equal(x->severity, CAA_DIAG_WILL_FAIL);
    assert_null(find(f, CAA_DIAG_RESOLVER_ERROR)); /* the specific cause is known */
    assert_null(find(f, CAA_DIAG_DNSSEC));
    fx_free(f);
}

static void formerr_counts_as_rejecting_the_type(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_lookup(f, "example.test", CAA_ANSWER_RECORDS, NOERROR, LE, 1, NULL);
    fx_judge(f, "example.test", false);
    struct caa_diag_answer le = ans(NOERROR, true, LE, 1);
    three(f, ans(NOERROR, false, LE, 1), ans(1, true, NULL, 0), le, le);
    classify(f);
    const struct caa_diag_finding *x = find(f, CAA_DIAG_NOTIMP);
    assert_non_null(x);
    assert_string_equal(x->server, "ns1.example.test");
    assert_contains(x->evidence, "FORMERR");
    fx_free(f);
}

static void refused_or_lame(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_lookup(f, "example.test", CAA_ANSWER_RECORDS, NOERROR, LE, 1, NULL);
    fx_judge(f, "example.test", false);
    struct caa_diag_hop *h =
        fx_hop(f, "example.test", "example.test", NULL, 0, ans(NOERROR, false, LE, 1));
    fx_server(f, h, "ns1.example.test", "127.0.0.2", ans(NOERROR, true, LE, 1), true);
    /* Serves the zone's SOA but refuses CAA: a broken server. */
    fx_server(f, h, "ns2.example.test", "127.0.0.3", ans(REFUSED, false, NULL, 0), true);
    /* Refuses the SOA too: it does not serve the zone. */
    fx_server(f, h, "ns3.example.test", "127.0.0.4", ans(REFUSED, false, NULL, 0), false);
    classify(f);
    assert_int_equal(f->d.status, CAA_DIAG_FLAKY);
    assert_int_equal(f->d.nfindings, 2);
    const struct caa_diag_finding *r = find(f, CAA_DIAG_REFUSED), *l = find(f, CAA_DIAG_LAME);
    assert_non_null(r);
    assert_non_null(l);
    assert_string_equal(r->server, "ns2.example.test");
    assert_int_equal(r->severity, CAA_DIAG_FLAKY);
    assert_string_equal(l->server, "ns3.example.test");
    assert_string_equal(l->address, "127.0.0.4");
    assert_int_equal(l->severity, CAA_DIAG_FLAKY);
    assert_contains(l->evidence, "REFUSED to SOA example.test");
    assert_contains(l->fix, "Remove ns3.example.test from the NS records of example.test");
    fx_free(f);
}

static void lame_without_aa_notauth_or_address(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_lookup(f, "example.test", CAA_ANSWER_RECORDS, NOERROR, LE, 1, NULL);
    fx_judge(f, "example.test", false);
    struct caa_diag_hop *h =
        fx_hop(f, "example.test", "example.test", NULL, 0, ans(NOERROR, false, LE, 1));
    fx_server(f, h, "ns1.example.test", "127.0.0.2", ans(NOERROR, true, LE, 1), true);
    fx_server(f, h, "ns2.example.test", "127.0.0.3", ans(NOERROR, false, NULL, 0), false);
    fx_server(f, h, "ns3.example.test", "127.0.0.4", ans(NOTAUTH, false, NULL, 0), false);
    struct caa_diag_server *s = fx_server(f, h, "ns4.example.test", "", none(), false);
    s->caa.asked = false;
    s->soa.asked = false;
    snprintf(s->why, sizeof s->why, "its address look-up fails: NXDOMAIN");
    classify(f);
    assert_int_equal(count(f, CAA_DIAG_LAME), 3);
    assert_int_equal(f->d.status, CAA_DIAG_FLAKY);
    assert_true(h->agree); /* answers without authority are not compared */
    bool noaa = false, noaddr = false;
    for (size_t i = 0; i < f->d.nfindings; i++) {
        const struct caa_diag_finding *x = &f->d.findings[i];
        if (strcmp(x->server, "ns2.example.test") == 0) {
            assert_contains(x->evidence, "without the AA bit");
            noaa = true;
        }
        if (strcmp(x->server, "ns4.example.test") == 0) {
            assert_string_equal(x->address, "");
            assert_contains(x->evidence, "NXDOMAIN");
            noaddr = true;
        }
    }
    assert_true(noaa && noaddr);
    fx_free(f);
}

static void servfail_from_one_server(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_lookup(f, "example.test", CAA_ANSWER_RECORDS, NOERROR, LE, 1, NULL);
    fx_judge(f, "example.test", false);
    struct caa_diag_answer le = ans(NOERROR, true, LE, 1);
    three(f, ans(NOERROR, false, LE, 1), le, ans(SERVFAIL, false, NULL, 0), le);
    classify(f);
    assert_int_equal(f->d.status, CAA_DIAG_FLAKY);
    const struct caa_diag_finding *x = find(f, CAA_DIAG_SERVFAIL);
    assert_non_null(x);
    assert_string_equal(x->server, "ns2.example.test");
    assert_int_equal(x->severity, CAA_DIAG_FLAKY);
    assert_contains(x->fix, "PowerDNS");
    fx_free(f);
}

static void timeout_from_some_servers(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_lookup(f, "example.test", CAA_ANSWER_RECORDS, NOERROR, LE, 1, NULL);
    fx_judge(f, "example.test", false);
    struct caa_diag_answer le = ans(NOERROR, true, LE, 1);
    struct caa_diag_hop *h = three(f, ans(NOERROR, false, LE, 1), le, none(), none());
    /* ns3 does not answer SOA either: a dead server, not a filter. */
    h->servers[2].soa = none();
    h->servers[2].authoritative = false;
    classify(f);
    assert_int_equal(f->d.status, CAA_DIAG_FLAKY);
    assert_int_equal(count(f, CAA_DIAG_TIMEOUT), 2);
    for (size_t i = 0; i < f->d.nfindings; i++) {
        const struct caa_diag_finding *x = &f->d.findings[i];
        assert_int_equal(x->severity, CAA_DIAG_FLAKY);
        assert_contains(x->evidence, "no answer within 2.0 s");
        if (strcmp(x->server, "ns2.example.test") == 0)
            assert_contains(x->fix, "firewall");
        else
            assert_contains(x->fix, "down or unreachable");
    }
    fx_free(f);
}

static void dead_server(void **state)
{
    (void)state;
    /* Nothing listens at ns3's address: no DNS answer at all, to SOA neither. */
    struct fx *f = fx_new();
    fx_lookup(f, "example.test", CAA_ANSWER_RECORDS, NOERROR, LE, 1, NULL);
    fx_judge(f, "example.test", false);
    struct caa_diag_answer le = ans(NOERROR, true, LE, 1), dead = none();
    snprintf(dead.error, sizeof dead.error, "refused at the network level");
    struct caa_diag_hop *h = three(f, ans(NOERROR, false, LE, 1), le, le, dead);
    h->servers[2].soa = dead;
    h->servers[2].authoritative = false;
    classify(f);
    assert_int_equal(f->d.status, CAA_DIAG_FLAKY);
    assert_int_equal(f->d.nfindings, 1);
    const struct caa_diag_finding *x = find(f, CAA_DIAG_TIMEOUT);
    assert_non_null(x);
    assert_string_equal(x->address, "127.0.0.4");
    assert_contains(x->evidence, "no answer (refused at the network level)");
    assert_contains(x->fix, "down or unreachable");
    fx_free(f);
}

static void timeout_from_all_servers(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_lookup(f, "drop.test", CAA_ANSWER_TIMEOUT, -1, NULL, 0, NULL);
    fx_judge(f, "drop.test", false);
    struct caa_diag_hop *h = fx_hop(f, "drop.test", "drop.test", NULL, 0, none());
    fx_server(f, h, "ns1.drop.test", "127.0.0.2", none(), true);
    fx_server(f, h, "ns2.drop.test", "127.0.0.3", none(), true);
    classify(f);
    assert_int_equal(f->d.status, CAA_DIAG_WILL_FAIL);
    assert_int_equal(count(f, CAA_DIAG_TIMEOUT), 2);
    assert_int_equal(f->d.findings[0].severity, CAA_DIAG_WILL_FAIL);
    assert_int_equal(f->d.findings[1].severity, CAA_DIAG_WILL_FAIL);
    assert_null(find(f, CAA_DIAG_RESOLVER_ERROR));
    fx_free(f);
}

static void this_host_reaches_no_server(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->cx.no_direct_answers = true;
    fx_lookup(f, "example.test", CAA_ANSWER_RECORDS, NOERROR, LE, 1, NULL);
    fx_judge(f, "example.test", false);
    three(f, ans(NOERROR, false, LE, 1), none(), none(), none());
    classify(f);
    assert_int_equal(f->d.status, CAA_DIAG_OK);
    assert_int_equal(f->d.nfindings, 1);
    assert_int_equal(f->d.findings[0].kind, CAA_DIAG_TIMEOUT);
    assert_int_equal(f->d.findings[0].severity, CAA_DIAG_INFO);
    fx_free(f);
}

static void dnssec_bogus(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_lookup(f, "bogus.test", CAA_ANSWER_RCODE, SERVFAIL, NULL, 0, NULL);
    fx_judge(f, "bogus.test", false);
    struct caa_diag_hop *h =
        fx_hop(f, "bogus.test", "bogus.test", NULL, 0, ans(SERVFAIL, false, NULL, 0));
    h->resolver_cd = ans(NOERROR, false, LE, 1);
    fx_server(f, h, "ns1.bogus.test", "127.0.0.2", ans(NOERROR, true, LE, 1), true);
    fx_server(f, h, "ns2.bogus.test", "127.0.0.3", ans(NOERROR, true, LE, 1), true);
    classify(f);
    assert_int_equal(f->d.status, CAA_DIAG_WILL_FAIL);
    assert_int_equal(f->d.nfindings, 1);
    const struct caa_diag_finding *x = find(f, CAA_DIAG_DNSSEC);
    assert_non_null(x);
    assert_int_equal(x->severity, CAA_DIAG_WILL_FAIL);
    assert_string_equal(x->name, "bogus.test");
    assert_string_equal(x->zone, "bogus.test");
    assert_string_equal(x->summary, "DNSSEC validation fails for bogus.test");
    assert_contains(x->evidence, "127.0.0.1:5353 answers SERVFAIL");
    assert_contains(x->evidence,
                    "(CD=1) it answers NOERROR, 1 record: 0 issue \"letsencrypt.org\"");
    assert_contains(x->fix, "DS record");
    assert_contains(x->fix, "dig +cd CAA bogus.test");
    fx_free(f);
}

static void servfail_without_dnssec(void **state)
{
    (void)state;
    /* The CD=1 answer fails as well: the resolver's failure, not DNSSEC. */
    struct fx *f = fx_new();
    fx_lookup(f, "plain.test", CAA_ANSWER_RCODE, SERVFAIL, NULL, 0, NULL);
    fx_judge(f, "plain.test", false);
    struct caa_diag_hop *h =
        fx_hop(f, "plain.test", "plain.test", NULL, 0, ans(SERVFAIL, false, NULL, 0));
    fx_server(f, h, "ns1.plain.test", "127.0.0.2", ans(NOERROR, true, LE, 1), true);
    classify(f);
    assert_null(find(f, CAA_DIAG_DNSSEC));
    const struct caa_diag_finding *x = find(f, CAA_DIAG_RESOLVER_ERROR);
    assert_non_null(x);
    assert_int_equal(x->severity, CAA_DIAG_WILL_FAIL);
    assert_contains(x->evidence, "SERVFAIL for CAA plain.test");
    assert_contains(x->evidence, "with CD=1: SERVFAIL");
    assert_int_equal(f->d.status, CAA_DIAG_WILL_FAIL);
    fx_free(f);

    /* CD=1 succeeds but a server fails too: that server is the finding. */
    f = fx_new();
    fx_lookup(f, "plain.test", CAA_ANSWER_RCODE, SERVFAIL, NULL, 0, NULL);
    fx_judge(f, "plain.test", false);
    h = fx_hop(f, "plain.test", "plain.test", NULL, 0, ans(SERVFAIL, false, NULL, 0));
    h->resolver_cd = ans(NOERROR, false, LE, 1);
    fx_server(f, h, "ns1.plain.test", "127.0.0.2", ans(NOERROR, true, LE, 1), true);
    fx_server(f, h, "ns2.plain.test", "127.0.0.3", ans(SERVFAIL, false, NULL, 0), true);
    classify(f);
    assert_null(find(f, CAA_DIAG_DNSSEC));
    assert_null(find(f, CAA_DIAG_RESOLVER_ERROR));
    const struct caa_diag_finding *s = find(f, CAA_DIAG_SERVFAIL);
    assert_non_null(s);
    assert_int_equal(s->severity, CAA_DIAG_WILL_FAIL);
    assert_string_equal(s->server, "ns2.plain.test");
    fx_free(f);
}

static void resolver_error_servers_unknown(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_lookup(f, "gone.test", CAA_ANSWER_TIMEOUT, -1, NULL, 0, NULL);
    fx_judge(f, "gone.test", false);
    struct caa_diag_hop *h = fx_hop(f, "gone.test", "", NULL, 0, none());
    snprintf(h->zone_error, sizeof h->zone_error, "no answer from the resolver to gone.test");
    classify(f);
    const struct caa_diag_finding *x = find(f, CAA_DIAG_RESOLVER_ERROR);
    assert_non_null(x);
    assert_string_equal(x->zone, "");
    assert_contains(x->evidence, "no answer in time for CAA gone.test");
    assert_contains(x->evidence, "the authoritative servers of gone.test are unknown");
    assert_contains(x->fix, "delegation");
    fx_free(f);
}

static void inconsistent_servers(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_lookup(f, "example.test", CAA_ANSWER_RECORDS, NOERROR, LE, 1, NULL);
    fx_judge(f, "example.test", false);
    struct caa_diag_answer le = ans(NOERROR, true, LE, 1);
    struct caa_diag_hop *h =
        three(f, ans(NOERROR, false, LE, 1), le, le, ans(NOERROR, true, GOOG, 1));
    h->servers[2].serial = 3;
    classify(f);
    assert_false(h->agree);
    assert_int_equal(f->d.status, CAA_DIAG_FLAKY);
    assert_int_equal(f->d.nfindings, 1);
    const struct caa_diag_finding *x = find(f, CAA_DIAG_INCONSISTENT);
    assert_non_null(x);
    assert_int_equal(x->severity, CAA_DIAG_FLAKY);
    assert_string_equal(x->server, "ns3.example.test");
    assert_string_equal(x->address, "127.0.0.4");
    assert_contains(x->evidence, "ns3.example.test (127.0.0.4, SOA serial 3) answers NOERROR, 1 "
                                 "record: 0 issue \"pki.goog\"");
    assert_contains(x->evidence, "ns1.example.test (127.0.0.2, SOA serial 7), ns2.example.test");
    assert_contains(x->evidence, "would refuse");
    assert_contains(x->fix, "serial");
    fx_free(f);
}

static void inconsistent_rcode_and_blocked(void **state)
{
    (void)state;
    /* NXDOMAIN against NOERROR is a disagreement too. */
    struct fx *f = fx_new();
    fx_lookup(f, "example.test", CAA_ANSWER_RECORDS, NOERROR, LE, 1, NULL);
    fx_judge(f, "example.test", false);
    struct caa_diag_answer le = ans(NOERROR, true, LE, 1);
    struct caa_diag_hop *h =
        three(f, ans(NOERROR, false, LE, 1), ans(NXDOMAIN, true, NULL, 0), le, le);
    classify(f);
    assert_false(h->agree);
    assert_string_equal(find(f, CAA_DIAG_INCONSISTENT)->server, "ns1.example.test");
    fx_free(f);

    /* The resolver got the refusing set: BLOCKED, the odd server named. */
    f = fx_new();
    fx_lookup(f, "example.test", CAA_ANSWER_RECORDS, NOERROR, GOOG, 1, NULL);
    fx_judge(f, "example.test", false);
    struct caa_diag_answer g = ans(NOERROR, true, GOOG, 1);
    three(f, ans(NOERROR, false, GOOG, 1), g, g, ans(NOERROR, true, LE, 1));
    classify(f);
    assert_int_equal(f->d.status, CAA_DIAG_BLOCKED);
    const struct caa_diag_finding *x = find(f, CAA_DIAG_INCONSISTENT);
    assert_non_null(x);
    assert_int_equal(x->severity, CAA_DIAG_BLOCKED);
    assert_string_equal(x->server, "ns3.example.test");
    assert_contains(x->evidence, "would allow issuance");
    assert_non_null(find(f, CAA_DIAG_CAA_DENIED));
    fx_free(f);
}

static void tie_goes_to_the_resolver(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_lookup(f, "example.test", CAA_ANSWER_RECORDS, NOERROR, GOOG, 1, NULL);
    fx_judge(f, "example.test", false);
    struct caa_diag_hop *h =
        fx_hop(f, "example.test", "example.test", NULL, 0, ans(NOERROR, false, GOOG, 1));
    fx_server(f, h, "ns1.example.test", "127.0.0.2", ans(NOERROR, true, LE, 1), true);
    fx_server(f, h, "ns2.example.test", "127.0.0.3", ans(NOERROR, true, GOOG, 1), true);
    classify(f);
    assert_string_equal(find(f, CAA_DIAG_INCONSISTENT)->server, "ns1.example.test");
    fx_free(f);
}

static void cname_chain_into_another_zone(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_lookup(f, "www.example.test", CAA_ANSWER_RECORDS, NOERROR, WILD_GOOG, 1, "web.hosting.test");
    fx_lookup(f, "example.test", CAA_ANSWER_RECORDS, NOERROR, LE, 1, NULL);
    fx_judge(f, "*.www.example.test", true);
    assert_int_equal(f->res.status, CAA_DENIED);
    struct caa_diag_hop *a =
        fx_hop(f, "www.example.test", "example.test", NULL, 0, ans(NOERROR, false, WILD_GOOG, 1));
    fx_server(f, a, "ns.example.test", "127.0.0.2", cname("web.hosting.test"), true);
    struct caa_diag_hop *b = fx_hop(f, "web.hosting.test", "hosting.test", "www.example.test", 0,
                                    ans(NOERROR, false, WILD_GOOG, 1));
    fx_server(f, b, "ns.hosting.test", "127.0.0.3", ans(NOERROR, true, WILD_GOOG, 1), true);
    classify(f);
    assert_int_equal(f->d.status, CAA_DIAG_BLOCKED);
    assert_int_equal(f->d.nfindings, 2);
    const struct caa_diag_finding *x = &f->d.findings[0];
    assert_int_equal(x->kind, CAA_DIAG_CAA_DENIED);
    assert_string_equal(x->name, "web.hosting.test");
    assert_string_equal(x->zone, "hosting.test");
    assert_contains(x->evidence, "the CNAME target of www.example.test");
    assert_contains(x->evidence, "0 issuewild \"pki.goog\" (other CA)");
    assert_contains(x->fix, "issuewild");
    const struct caa_diag_finding *c = &f->d.findings[1];
    assert_int_equal(c->kind, CAA_DIAG_CNAME);
    assert_int_equal(c->severity, CAA_DIAG_INFO);
    assert_string_equal(c->name, "www.example.test");
    assert_contains(c->evidence,
                    "www.example.test -> web.hosting.test (zone hosting.test); at "
                    "web.hosting.test the resolver gets NOERROR, 1 record: 0 issuewild "
                    "\"pki.goog\"");
    fx_free(f);
}

static void cname_alone_is_ok(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_lookup(f, "www.example.test", CAA_ANSWER_RECORDS, NOERROR, LE, 1, "web.hosting.test");
    fx_judge(f, "www.example.test", false);
    struct caa_diag_hop *a =
        fx_hop(f, "www.example.test", "example.test", NULL, 0, ans(NOERROR, false, LE, 1));
    fx_server(f, a, "ns.example.test", "127.0.0.2", cname("web.hosting.test"), true);
    struct caa_diag_hop *b = fx_hop(f, "web.hosting.test", "hosting.test", "www.example.test", 0,
                                    ans(NOERROR, false, LE, 1));
    fx_server(f, b, "ns.hosting.test", "127.0.0.3", ans(NOERROR, true, LE, 1), true);
    classify(f);
    assert_int_equal(f->d.status, CAA_DIAG_OK);
    assert_int_equal(f->d.nfindings, 1);
    assert_int_equal(f->d.findings[0].kind, CAA_DIAG_CNAME);
    fx_free(f);
}

static void cname_loop(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_lookup(f, "loop.site.test", CAA_ANSWER_RCODE, SERVFAIL, NULL, 0, NULL);
    fx_judge(f, "loop.site.test", false);
    struct caa_diag_hop *a =
        fx_hop(f, "loop.site.test", "site.test", NULL, 0, ans(SERVFAIL, false, NULL, 0));
    fx_server(f, a, "ns1.site.test", "127.0.0.2", cname("loop.cdn.test"), true);
    struct caa_diag_hop *b =
        fx_hop(f, "loop.cdn.test", "cdn.test", "loop.site.test", 0, ans(SERVFAIL, false, NULL, 0));
    fx_server(f, b, "ns1.cdn.test", "127.0.0.3", cname("loop.site.test"), true);
    classify(f);
    assert_int_equal(f->d.status, CAA_DIAG_WILL_FAIL);
    const struct caa_diag_finding *c = find(f, CAA_DIAG_CNAME),
                                  *r = find(f, CAA_DIAG_RESOLVER_ERROR);
    assert_non_null(c);
    assert_non_null(r);
    assert_contains(c->summary, "CNAME loop");
    assert_contains(c->evidence, "loop.site.test -> loop.cdn.test (zone cdn.test) -> "
                                 "loop.site.test: a loop");
    assert_contains(r->fix, "comes back to loop.site.test");
    assert_null(find(f, CAA_DIAG_DNSSEC));
    fx_free(f);
}

static void dnssec_at_the_alias_target_only(void **state)
{
    (void)state;
    /* The target's zone is bogus: the alias fails with it; one finding, the target's. */
    struct fx *f = fx_new();
    fx_lookup(f, "www.example.test", CAA_ANSWER_RCODE, SERVFAIL, NULL, 0, NULL);
    fx_judge(f, "www.example.test", false);
    struct caa_diag_hop *a =
        fx_hop(f, "www.example.test", "example.test", NULL, 0, ans(SERVFAIL, false, NULL, 0));
    a->resolver_cd = ans(NOERROR, false, LE, 1);
    fx_server(f, a, "ns.example.test", "127.0.0.2", cname("web.bogus.test"), true);
    struct caa_diag_hop *b = fx_hop(f, "web.bogus.test", "bogus.test", "www.example.test", 0,
                                    ans(SERVFAIL, false, NULL, 0));
    b->resolver_cd = ans(NOERROR, false, LE, 1);
    fx_server(f, b, "ns.bogus.test", "127.0.0.3", ans(NOERROR, true, LE, 1), true);
    classify(f);
    assert_int_equal(count(f, CAA_DIAG_DNSSEC), 1);
    assert_string_equal(find(f, CAA_DIAG_DNSSEC)->name, "web.bogus.test");
    assert_int_equal(f->d.status, CAA_DIAG_WILL_FAIL);
    fx_free(f);
}

static void worst_first_and_status(void **state)
{
    (void)state;
    /* A flaky server below, a refusal above: BLOCKED, the refusal first. */
    struct fx *f = fx_new();
    fx_lookup(f, "www.example.test", CAA_ANSWER_RECORDS, NOERROR, NULL, 0, NULL);
    fx_lookup(f, "example.test", CAA_ANSWER_RECORDS, NOERROR, GOOG, 1, NULL);
    fx_judge(f, "www.example.test", false);
    struct caa_diag_hop *a =
        fx_hop(f, "www.example.test", "example.test", NULL, 0, ans(NOERROR, false, NULL, 0));
    fx_server(f, a, "ns1.example.test", "127.0.0.2", ans(NOERROR, true, NULL, 0), true);
    fx_server(f, a, "ns2.example.test", "127.0.0.3", ans(NOTIMP, true, NULL, 0), true);
    struct caa_diag_hop *b =
        fx_hop(f, "example.test", "example.test", NULL, 1, ans(NOERROR, false, GOOG, 1));
    fx_server(f, b, "ns1.example.test", "127.0.0.2", ans(NOERROR, true, GOOG, 1), true);
    fx_server(f, b, "ns2.example.test", "127.0.0.3", ans(NOTIMP, true, NULL, 0), true);
    classify(f);
    assert_int_equal(f->d.status, CAA_DIAG_BLOCKED);
    assert_int_equal(f->d.nfindings, 2); /* ns2's NOTIMP once for the zone */
    assert_int_equal(f->d.findings[0].kind, CAA_DIAG_CAA_DENIED);
    assert_int_equal(f->d.findings[1].kind, CAA_DIAG_NOTIMP);
    assert_string_equal(f->d.findings[1].name, "www.example.test");
    fx_free(f);
}

static void repeated_finding_keeps_the_worst(void **state)
{
    (void)state;
    /* ns2 drops CAA at both hops; the resolver fails only at the second. */
    struct fx *f = fx_new();
    fx_lookup(f, "www.example.test", CAA_ANSWER_RECORDS, NOERROR, NULL, 0, NULL);
    fx_lookup(f, "example.test", CAA_ANSWER_TIMEOUT, -1, NULL, 0, NULL);
    fx_judge(f, "www.example.test", false);
    struct caa_diag_hop *a =
        fx_hop(f, "www.example.test", "example.test", NULL, 0, ans(NOERROR, false, NULL, 0));
    fx_server(f, a, "ns1.example.test", "127.0.0.2", ans(NOERROR, true, NULL, 0), true);
    fx_server(f, a, "ns2.example.test", "127.0.0.3", none(), true);
    struct caa_diag_hop *b = fx_hop(f, "example.test", "example.test", NULL, 1, none());
    fx_server(f, b, "ns1.example.test", "127.0.0.2", none(), true);
    fx_server(f, b, "ns2.example.test", "127.0.0.3", none(), true);
    classify(f);
    assert_int_equal(f->d.status, CAA_DIAG_WILL_FAIL);
    assert_int_equal(count(f, CAA_DIAG_TIMEOUT), 2);
    for (size_t i = 0; i < f->d.nfindings; i++) {
        assert_int_equal(f->d.findings[i].severity, CAA_DIAG_WILL_FAIL);
        assert_string_equal(f->d.findings[i].name, "example.test");
    }
    fx_free(f);
}

static void classify_twice_replaces(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_lookup(f, "example.test", CAA_ANSWER_RECORDS, NOERROR, LE, 1, NULL);
    fx_judge(f, "example.test", false);
    struct caa_diag_answer le = ans(NOERROR, true, LE, 1);
    three(f, ans(NOERROR, false, LE, 1), le, le, ans(NOTIMP, true, NULL, 0));
    classify(f);
    classify(f);
    assert_int_equal(f->d.nfindings, 1);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names),
        cmocka_unit_test(needs_a_verdict),
        cmocka_unit_test(all_good),
        cmocka_unit_test(caa_denied),
        cmocka_unit_test(caa_denied_wildcard_account),
        cmocka_unit_test(notimp_from_one_server_is_flaky),
        cmocka_unit_test(notimp_everywhere_will_fail),
        cmocka_unit_test(formerr_counts_as_rejecting_the_type),
        cmocka_unit_test(refused_or_lame),
        cmocka_unit_test(lame_without_aa_notauth_or_address),
        cmocka_unit_test(servfail_from_one_server),
        cmocka_unit_test(timeout_from_some_servers),
        cmocka_unit_test(dead_server),
        cmocka_unit_test(timeout_from_all_servers),
        cmocka_unit_test(this_host_reaches_no_server),
        cmocka_unit_test(dnssec_bogus),
        cmocka_unit_test(servfail_without_dnssec),
        cmocka_unit_test(resolver_error_servers_unknown),
        cmocka_unit_test(inconsistent_servers),
        cmocka_unit_test(inconsistent_rcode_and_blocked),
        cmocka_unit_test(tie_goes_to_the_resolver),
        cmocka_unit_test(cname_chain_into_another_zone),
        cmocka_unit_test(cname_alone_is_ok),
        cmocka_unit_test(cname_loop),
        cmocka_unit_test(dnssec_at_the_alias_target_only),
        cmocka_unit_test(worst_first_and_status),
        cmocka_unit_test(repeated_finding_keeps_the_worst),
        cmocka_unit_test(classify_twice_replaces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
