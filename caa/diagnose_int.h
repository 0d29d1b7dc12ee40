/*
 * caa/diagnose_int.h - what the stages of `certpilot doctor` share; not part
 * of the public interface (caa/caa.h).
 *
 * The diagnosis is split along the stages caa_diagnose() runs:
 *
 *   caa/diagnose.c       the driver: caa_diagnose() runs the rounds below in
 *                        order, and owns the opaque struct caa_diag;
 *   caa/diag_query.c     rounds of queries over c-ares, to the resolver and
 *                        straight to server addresses;
 *   caa/diag_zone.c      the names on the CAA path (hops), their zones, NS
 *                        names and server addresses, and the readiness facts;
 *   caa/diag_server.c    the direct CAA and SOA queries to every authoritative
 *                        server address of a hop, and what their answers say;
 *   caa/diag_classify.c  caa_diag_classify(): the pure judgement, answers in,
 *                        findings out (spec §11);
 *   caa/diag_text.c      the words of findings: answers and servers as text.
 *
 * The state below (struct caa_diag_run, struct caa_diag_item) lives for one
 * caa_diagnose() call and is passed by pointer; no stage keeps global state.
 */
#ifndef CP_CAA_DIAGNOSE_INT_H
#define CP_CAA_DIAGNOSE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "caa/caa.h"
#include "caa/dns_int.h"

#define CAA_DIAG_NS_NAMES_MAX     16 /* NS names per zone, as caa_zone_servers() */
#define CAA_DIAG_ADDRS_PER_NS     4  /* addresses kept per NS name */
#define CAA_DIAG_ZONE_SERVERS_MAX (CAA_DIAG_NS_NAMES_MAX * CAA_DIAG_ADDRS_PER_NS)
#define CAA_DIAG_RECORDS_MAX      64 /* CAA records kept per answer */

/* ------------------------------------------------ state of one diagnosis */

/* One query of a round and, once it ran, its answer. */
struct caa_diag_query {
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

/* A server address the direct queries go to (channel index + 1). */
struct caa_diag_addr {
    char text[64];
    struct ares_addr_port_node node;
};

/* A zone on the CAA path and its NS names. */
struct caa_diag_zone {
    char zone[CAA_NAME_MAX + 1];
    bool taken; /* its NS answer has been read */
    size_t q_ns;
    char names[CAA_DIAG_NS_NAMES_MAX][CAA_NAME_MAX + 1];
    size_t nnames;
    char why[320]; /* "" or why its NS names are unknown */
};

/* An NS name and its addresses this host can reach. */
struct caa_diag_ns {
    char name[CAA_NAME_MAX + 1];
    size_t q_a, q_aaaa;
    size_t addr[CAA_DIAG_ADDRS_PER_NS]; /* indexes into caa_diag_run.addrs */
    size_t naddr;
    bool unroutable_only; /* it has addresses, none this host can reach */
    bool taken;           /* its A/AAAA answers have been read */
    char why[320];
};

/* Per hop, what is known of it and the queries asked for it. */
struct caa_diag_hopq {
    bool done;       /* its last round is over */
    bool guessed;    /* zone from the parent's SOA: the servers must confirm it */
    size_t q_zone;   /* SOA query naming its zone */
    size_t q_parent; /* when that fails: SOA of the parent */
    size_t zone;     /* index into caa_diag_run.zones */
    size_t q_res, q_cd;
    size_t *q_caa, *q_soa; /* per server; SIZE_MAX for one without address */
    size_t *q_apex;        /* guessed zones: SOA of the name itself, per server */
};

/* One identifier being diagnosed: its result and, per hop, its queries. */
struct caa_diag_item {
    struct caa_diag_name d;
    struct caa_diag_hopq *hq; /* parallel to d.hops */
    size_t hcap;
    size_t last;         /* chain index of the last name looked at */
    size_t aliases_left; /* alias hops that may still be added */
    size_t q_a, q_aaaa, q_chal;
    size_t chal_zone; /* index into caa_diag_run.zones, SIZE_MAX when unknown */
};

/* What one caa_diagnose() call shares across identifiers: every query (each
 * asked once), server address, zone and NS name, with the time budget.  Its
 * arrays grow with caa_diag_grow(); indexes into them stay valid. */
struct caa_diag_run {
    const struct caa_resolver_opts *ropts;
    struct ares_addr_port_node *resolvers; /* NULL: the system's */
    unsigned budget, tries, port;
    struct caa_diag_query *q;
    size_t nq, qcap;
    struct caa_diag_addr *addrs;
    size_t naddrs, acap;
    struct caa_diag_zone *zones;
    size_t nzones, zcap;
    struct caa_diag_ns *nss;
    size_t nnss, ncap;
};

/* --------------------------------------------- caa/diag_query.c: queries */

/* Make room for one more element of an array of `size`-byte elements. */
bool caa_diag_grow(void **arr, size_t *cap, size_t n, size_t size);

/* The index of the query (added when new), or SIZE_MAX without memory. */
size_t caa_diag_query_add(struct caa_diag_run *cx, const char *name, unsigned type, size_t chan,
                          bool cd);

/*
 * Run every query not run yet: one c-ares channel for the resolver and one per
 * server address, all driven by one poll loop; CAA_DNS_CHANNELS_MAX channels
 * at a time, each group bounded by the budget.
 */
enum cp_code caa_diag_run_pending(struct caa_diag_run *cx, struct cp_err *err);

/* Query `i` once it has run, else NULL. */
const struct caa_diag_query *caa_diag_query_ran(const struct caa_diag_run *cx, size_t i);

/* Why a query through the resolver gave nothing usable, or NULL when it did. */
const char *caa_diag_query_failed(const struct caa_diag_query *q, char *buf, size_t size);

/* ------------------------------------------- caa/diag_zone.c: zones, hops */

/* The zone of `name` from the resolver's answer to SOA `name`; `name` must
 * not be an alias (its zone is then that of its parent).  The fallback, for
 * a resolver that leaves out the authority section, is caa_zone_servers(). */
void caa_diag_zone_of(const struct caa_diag_run *cx, size_t qi, const char *name,
                      char zone[CAA_NAME_MAX + 1], char *why, size_t whysize);

/* A new hop at position `at` (the later ones move up). */
struct caa_diag_hop *caa_diag_hop_insert(struct caa_diag_item *it, size_t at, const char *name,
                                         const char *alias_of, size_t chain_index);

/* The parent of a name ("b.c" for "a.b.c"); "" for a TLD. */
const char *caa_diag_parent_of(const char *name);

/* Hops of one identifier: its chain names up to the relevant one, and after
 * each alias the names its CNAME chain runs through (from the resolver's
 * answer to SOA, which carries the chain).  At most CAA_DNS_CNAME_HOPS_MAX
 * alias hops in all. */
enum cp_code caa_diag_build_hops(const struct caa_diag_run *cx, struct caa_diag_item *it,
                                 const size_t *q_soa);

/* The name whose SOA answer gives the hop's zone: the hop itself, or its
 * parent when the hop is an alias (a CNAME owner is never a zone apex). */
const char *caa_diag_soa_name(const struct caa_diag_item *it, size_t i);

/* The index of `zone` in cx->zones (added, with its NS query, when new), or
 * SIZE_MAX without memory. */
size_t caa_diag_zone_add(struct caa_diag_run *cx, const char *zone);

/* The index of NS name `name` in cx->nss (added, with its A and AAAA
 * queries, when new), or SIZE_MAX without memory. */
size_t caa_diag_ns_add(struct caa_diag_run *cx, const char *name);

/* The NS names of each zone from the answers to NS, sorted (resolvers rotate
 * them; reports should not). */
void caa_diag_take_ns_names(struct caa_diag_run *cx);

/* The server addresses of each NS name from its answers to A and AAAA (the
 * ones this host can route to), or why it has none; CP_ENOMEM. */
enum cp_code caa_diag_take_ns_addresses(struct caa_diag_run *cx);

/* dns-01: the zone of _acme-challenge.NAME, or of where its CNAME chain ends
 * (the TXT record goes there), so that its NS names are looked up. */
enum cp_code caa_diag_add_challenge_zone(struct caa_diag_run *cx, struct caa_diag_item *it);

/* Fill it->d.readiness: the name's addresses and, for dns-01, the NS names
 * of the challenge zone. */
void caa_diag_take_readiness(struct caa_diag_run *cx, struct caa_diag_item *it);

/* ---------------------------------- caa/diag_server.c: direct queries */

/* A readable DNS answer came back, whatever its RCODE. */
bool caa_diag_answered(const struct caa_diag_answer *a);

/* NOERROR or NXDOMAIN: a CAA set, maybe empty (spec §3). */
bool caa_diag_usable(const struct caa_diag_answer *a);

/* The servers of the hop's zone, and the queries of its last round. */
enum cp_code caa_diag_plan_hop(struct caa_diag_run *cx, struct caa_diag_hop *h,
                               struct caa_diag_hopq *hq);

/* Read the answers of the hop's last round into `h`; drop a zone guessed from
 * the parent when its servers show the name is a zone of its own.
 * CP_ENOMEM. */
enum cp_code caa_diag_take_hop(const struct caa_diag_run *cx, struct caa_diag_hop *h,
                               struct caa_diag_hopq *hq);

/* A CNAME the servers (or the resolver) show for a hop with no target hop
 * after it: where the resolver could not follow the chain.  NULL if none. */
const char *caa_diag_unfollowed_alias(const struct caa_diag_item *it, size_t i);

/* ---------------------------------------------- caa/diag_text.c: words */

/* Text appended to a fixed buffer; what does not fit ends in "...". */
struct caa_diag_text {
    char *p;
    size_t size, len;
};

/* Start `t` on `buf` (`size` > 0 bytes), emptied. */
void caa_diag_text_init(struct caa_diag_text *t, char *buf, size_t size);

/* Append printf-style; once full, the text ends in "..." and stays so. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void
caa_diag_put(struct caa_diag_text *t, const char *fmt, ...);

/* What came back, in words: "NOERROR, 1 record: 0 issue "x"", "SERVFAIL",
 * "no answer within 2.0 s". */
void caa_diag_put_answer(struct caa_diag_text *t, const struct caa_diag_answer *a,
                         unsigned timeout_ms);

/* "ns1.example.com (192.0.2.1)" */
void caa_diag_put_server(struct caa_diag_text *t, const struct caa_diag_server *s);

/* "ns1.example.com (192.0.2.1, SOA serial 7)" when it served the SOA. */
void caa_diag_put_server_serial(struct caa_diag_text *t, const struct caa_diag_server *s);

/* What the server's SOA answer says about it, for evidence. */
void caa_diag_put_soa(struct caa_diag_text *t, const struct caa_diag_hop *h,
                      const struct caa_diag_server *s, unsigned timeout_ms);

#endif
