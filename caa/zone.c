/*
 * caa/zone.c - the authoritative nameservers of the zone holding a name, and
 * waiting until every one of them serves a TXT value (the dns-01 propagation
 * wait, RFC 8555 §8.4), and what each serves as dns-persist-01 record
 * (draft-ietf-acme-dns-persist; the rules are caa/persist.c's).
 *
 * A CA asks whichever authoritative server its resolver picks, so a freshly
 * published record must be on all of them before the CA is told to validate.
 * The zone, its NS names and their addresses are found through the recursive
 * resolver, as the CA's resolver would find them.  The TXT record is then asked
 * of every server address directly, with RD=0 and one c-ares channel per
 * address, all in one event loop: no cache stands between a server and us.
 *
 * What it does not do: DNSSEC validation, glue from referrals (addresses come
 * from A/AAAA look-ups), publishing records (hooks do that).
 */
#include "caa/caa.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "caa/caa_int.h"
#include "caa/dns_int.h"

#define NS_NAMES_MAX       16
#define NS_ADDRS_MAX       32
#define LABELS_MAX         127 /* a 253-octet name has at most 127 labels */
#define TXT_VALUE_MAX      255
#define SHOWN_VALUE_MAX    48 /* octets of a served value quoted in messages */
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_TRIES      2
#define DIRECT_BUDGET_MS   2000 /* one round of direct queries, both tries */
#define DIRECT_TRIES       2
#define DEFAULT_INTERVAL   2000

#if NS_ADDRS_MAX > CAA_DNS_CHANNELS_MAX
#error "caa_dns_run() must be able to drive one channel per nameserver address"
#endif

/* One query and, once it is over, its answer. */
struct reply {
    char qname[CAA_NAME_MAX + 1];
    unsigned qtype;     /* 0: not asked this time */
    size_t chan;        /* the channel to send it on */
    int status;         /* ARES_SUCCESS, or why there is no answer */
    unsigned char *buf; /* a heap copy of the answer; NULL without one */
    int len;
};

struct pending {
    struct reply *r;
    size_t *outstanding;
};

static void on_reply(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct pending *pd = arg;
    struct reply *r = pd->r;
    (void)timeouts;
    (*pd->outstanding)--;
    r->status = caa_dns_keep_answer(status, abuf, alen, &r->buf, &r->len);
    free(pd);
}

static void replies_clear(struct reply *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].buf);
        r[i].buf = NULL;
        r[i].len = 0;
    }
}

/* Send every r[i] with a qtype on chs[r[i].chan], all at once, and drive the
 * channels until each is answered or `deadline` passes. */
static enum cp_code ask(ares_channel *chs, size_t nch, struct reply *r, size_t n, bool rd,
                        long long deadline, struct cp_err *err)
{
    size_t outstanding = 0;
    bool nomem = false;

    replies_clear(r, n);
    for (size_t i = 0; i < n && !nomem; i++) {
        r[i].status = ARES_ETIMEOUT;
        if (r[i].qtype == 0)
            continue;
        unsigned char *q = NULL;
        int qlen = 0;
        int status = ares_create_query(r[i].qname, CAA_DNS_CLASS_IN, (int)r[i].qtype, 0, rd, &q,
                                       &qlen, CAA_DNS_EDNS_UDP_SIZE);
        if (status != ARES_SUCCESS) {
            r[i].status = status; /* a name c-ares cannot encode */
            continue;
        }
        struct pending *pd = malloc(sizeof *pd);
        if (pd == NULL) {
            ares_free_string(q);
            nomem = true;
            break;
        }
        pd->r = &r[i];
        pd->outstanding = &outstanding;
        outstanding++;
        ares_send(chs[r[i].chan], q, qlen, on_reply, pd); /* may call back at once */
        ares_free_string(q);
    }
    /* Even after a failure: the callbacks point at `outstanding`, so every
     * query must be over (cancelled at once then) before returning. */
    caa_dns_run(chs, nch, &outstanding, nomem ? 0 : deadline);
    for (size_t i = 0; i < n; i++)
        nomem = nomem || r[i].status == ARES_ENOMEM;
    if (nomem)
        return cp_err_set(err, CP_ENOMEM, "out of memory for DNS queries");
    return CP_OK;
}

/* Is `name` equal to `zone` or below it?  The root ("") holds every name. */
static bool within(const char *name, const char *zone)
{
    size_t n = strlen(name), z = strlen(zone);
    if (z == 0)
        return true;
    if (n < z || strcasecmp(name + n - z, zone) != 0)
        return false;
    return n == z || name[n - z - 1] == '.';
}

int caa_zone_from_soa_answer(const unsigned char *abuf, int alen, const char *name,
                             char target[CAA_NAME_MAX + 1], char zone[CAA_NAME_MAX + 1])
{
    struct caa_dns_aliases al;
    struct caa_dns_walk w;
    struct caa_dns_rr rr;

    al.n = 0;
    zone[0] = '\0';
    snprintf(target, CAA_NAME_MAX + 1, "%s", name);
    if (caa_dns_walk_start(&w, abuf, alen) != 0)
        return -1;
    while (w.section == CAA_DNS_ANSWER) {
        if (caa_dns_walk_next(&w, &rr) != 1)
            return -1;
        if (rr.rrclass == CAA_DNS_CLASS_IN && rr.type == CAA_DNS_TYPE_CNAME &&
            caa_dns_aliases_add(&al, &w, &rr) != 0)
            return -1;
    }
    snprintf(target, CAA_NAME_MAX + 1, "%s", caa_dns_aliases_follow(&al, name));

    /* Second pass: the SOA that names the zone.  The additional section is
     * not read: nothing there is needed. */
    bool found = false;
    if (caa_dns_walk_start(&w, abuf, alen) != 0)
        return -1;
    while (w.section == CAA_DNS_ANSWER || w.section == CAA_DNS_AUTHORITY) {
        if (caa_dns_walk_next(&w, &rr) != 1)
            return -1;
        if (rr.rrclass != CAA_DNS_CLASS_IN || rr.type != CAA_DNS_TYPE_SOA)
            continue;
        if (rr.section == CAA_DNS_ANSWER && strcasecmp(rr.owner, target) == 0) {
            memcpy(zone, rr.owner, strlen(rr.owner) + 1);
            found = true;
            break;
        }
        /* RFC 2308 §3: a negative answer carries the zone's SOA; the longest
         * one that holds the target wins should there be several. */
        if (rr.section == CAA_DNS_AUTHORITY && within(target, rr.owner) &&
            (!found || strlen(rr.owner) > strlen(zone))) {
            memcpy(zone, rr.owner, strlen(rr.owner) + 1);
            found = true;
        }
    }
    caa_dns_lower(zone);
    return found ? 1 : 0;
}

/* Join the character-strings of TXT RDATA (RFC 1035 §3.3.14): the first
 * `size` octets into `out`, the full length into *len.  -1 when malformed. */
static int txt_join(const unsigned char *rd, size_t rdlen, unsigned char *out, size_t size,
                    size_t *len)
{
    size_t off = 0, total = 0;
    if (rdlen == 0)
        return -1; /* one or more strings */
    while (off < rdlen) {
        size_t n = rd[off++];
        if (n > rdlen - off)
            return -1;
        if (total < size)
            memcpy(out + total, rd + off, n < size - total ? n : size - total);
        total += n;
        off += n;
    }
    *len = total;
    return 0;
}

/* Quote a served value into seen->values for messages, while it fits. */
static void note_value(struct caa_txt_seen *seen, const unsigned char *v, size_t len)
{
    char esc[4 * SHOWN_VALUE_MAX + 1], item[sizeof esc + 8];
    if (seen->values_short)
        return;
    size_t shown = len > SHOWN_VALUE_MAX ? SHOWN_VALUE_MAX : len;
    (void)caa_escape_bytes(v, shown, esc, sizeof esc);
    int n = snprintf(item, sizeof item, "%s\"%s%s\"", seen->values[0] ? ", " : "", esc,
                     shown < len ? "..." : "");
    size_t used = strlen(seen->values);
    if (n < 0 || (size_t)n >= sizeof item || used + (size_t)n >= sizeof seen->values) {
        seen->values_short = true;
        return;
    }
    memcpy(seen->values + used, item, (size_t)n + 1);
}

int caa_zone_read_txt(const unsigned char *abuf, int alen, const char *name, const char *value,
                      struct caa_txt_seen *seen)
{
    struct caa_dns_walk w;
    struct caa_dns_rr rr;
    size_t vlen = strlen(value);

    memset(seen, 0, sizeof *seen);
    seen->rcode = -1;
    if (caa_dns_walk_start(&w, abuf, alen) != 0)
        return -1;
    seen->rcode = w.rcode;
    seen->aa = w.aa;
    while (w.section == CAA_DNS_ANSWER) {
        unsigned char buf[TXT_VALUE_MAX + 1];
        size_t len;
        if (caa_dns_walk_next(&w, &rr) != 1)
            return -1;
        if (rr.rrclass != CAA_DNS_CLASS_IN || rr.type != CAA_DNS_TYPE_TXT ||
            strcasecmp(rr.owner, name) != 0)
            continue;
        if (txt_join(rr.rdata, rr.rdlen, buf, sizeof buf, &len) != 0)
            return -1;
        seen->nvalues++;
        if (len == vlen && len <= sizeof buf && memcmp(buf, value, vlen) == 0)
            seen->served = true;
        /* Longer values are quoted cut short anyway (SHOWN_VALUE_MAX). */
        note_value(seen, buf, len < sizeof buf ? len : sizeof buf);
    }
    return 0;
}

/* A name from the caller: at most CAA_NAME_MAX octets, no trailing dot kept. */
static bool copy_name(char out[CAA_NAME_MAX + 1], const char *in)
{
    size_t len = in != NULL ? strlen(in) : 0;
    if (len > 1 && in[len - 1] == '.')
        len--;
    if (len == 0 || len > CAA_NAME_MAX)
        return false;
    memcpy(out, in, len);
    out[len] = '\0';
    return true;
}

/* The start of a look-up of `name` through the resolvers of `o`: the name
 * copied to `qname` (or CP_EINVAL saying why not), the time budget and the
 * tries per query (at most 10). */
static enum cp_code lookup_start(const struct caa_resolver_opts *o, const char *name,
                                 char qname[CAA_NAME_MAX + 1], unsigned *budget, unsigned *tries,
                                 struct cp_err *err)
{
    if (!copy_name(qname, name))
        return cp_err_set(err, CP_EINVAL, "\"%.60s\" is not a domain name of 1 to %d octets",
                          name != NULL ? name : "", CAA_NAME_MAX);
    *budget = o && o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    *tries = o && o->tries ? o->tries : DEFAULT_TRIES;
    if (*tries > 10)
        *tries = 10;
    return CP_OK;
}

/* Why a recursive look-up gave nothing usable, or CP_OK when it did. */
static enum cp_code recursive_failed(const struct reply *r, const char *why, struct cp_err *err)
{
    const char *type = r->qtype == CAA_DNS_TYPE_SOA  ? "SOA"
                       : r->qtype == CAA_DNS_TYPE_NS ? "NS"
                       : r->qtype == CAA_DNS_TYPE_A  ? "A"
                                                     : "AAAA";
    if (r->status != ARES_SUCCESS)
        return cp_err_set(err, CP_ENET, "%s: no answer from the resolver to %s %s (%s)", why,
                          r->qname, type,
                          r->status == ARES_ECANCELLED ? "timed out" : ares_strerror(r->status));
    int rcode = r->buf[3] & 0x0F;
    if (rcode != CAA_DNS_RCODE_NOERROR && rcode != CAA_DNS_RCODE_NXDOMAIN)
        return cp_err_set(err, CP_ENET, "%s: the resolver answered %s to %s %s", why,
                          caa_rcode_name(rcode), r->qname, type);
    return CP_OK;
}

/* The parents of `target`, longest first, down to the TLD. */
static size_t parents(const char *target, struct reply *r, size_t max)
{
    const char *chain[LABELS_MAX + 1];
    size_t n = caa_name_chain(target, chain, LABELS_MAX + 1), k = 0;
    for (size_t i = 1; i < n && k < max; i++, k++) {
        memset(&r[k], 0, sizeof r[k]);
        snprintf(r[k].qname, sizeof r[k].qname, "%s", chain[i]);
        r[k].qtype = CAA_DNS_TYPE_SOA;
    }
    return k;
}

/* Can this host send to `addr` at all?  Connecting a UDP socket sends nothing
 * but fails without a route (an IPv6 address on an IPv4-only host). */
bool caa_zone_routable(int family, const void *addr)
{
    struct sockaddr_in sin = {0};
    struct sockaddr_in6 sin6 = {0};
    const struct sockaddr *sa;
    socklen_t salen;
    if (family == AF_INET) {
        sin.sin_family = AF_INET;
        sin.sin_port = htons(53);
        memcpy(&sin.sin_addr, addr, sizeof sin.sin_addr);
        sa = (const struct sockaddr *)&sin;
        salen = sizeof sin;
    } else {
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(53);
        memcpy(&sin6.sin6_addr, addr, sizeof sin6.sin6_addr);
        sa = (const struct sockaddr *)&sin6;
        salen = sizeof sin6;
    }
    int fd = socket(family, SOCK_DGRAM, 0);
    if (fd < 0)
        return errno != EAFNOSUPPORT; /* cannot tell otherwise: keep it */
    bool ok = connect(fd, sa, salen) == 0 || (errno != ENETUNREACH && errno != EHOSTUNREACH &&
                                              errno != EADDRNOTAVAIL && errno != EAFNOSUPPORT);
    close(fd);
    return ok;
}

/* Add the addresses of one A or AAAA answer to `out` (deduplicated). */
static enum cp_code take_addresses(const struct reply *r, const char *nsname, struct caa_ns *out,
                                   size_t *nout, size_t *found, struct cp_err *err)
{
    struct caa_dns_walk w;
    struct caa_dns_rr rr;
    if (caa_dns_walk_start(&w, r->buf, r->len) != 0)
        goto bad;
    while (w.section == CAA_DNS_ANSWER) {
        if (caa_dns_walk_next(&w, &rr) != 1)
            goto bad;
        int family = rr.type == CAA_DNS_TYPE_A && rr.rdlen == 4       ? AF_INET
                     : rr.type == CAA_DNS_TYPE_AAAA && rr.rdlen == 16 ? AF_INET6
                                                                      : AF_UNSPEC;
        /* Only the type asked: an answer may also carry the CNAME chain of a
         * (non-conforming, RFC 2181 §10.3) aliased NS name. */
        if (rr.rrclass != CAA_DNS_CLASS_IN || family == AF_UNSPEC || rr.type != r->qtype)
            continue;
        char text[INET6_ADDRSTRLEN];
        if (inet_ntop(family, rr.rdata, text, sizeof text) == NULL)
            continue;
        (*found)++;
        if (!caa_zone_routable(family, rr.rdata))
            continue;
        bool dup = false;
        for (size_t i = 0; i < *nout && !dup; i++)
            dup = strcmp(out[i].addr, text) == 0;
        if (dup)
            continue;
        if (*nout == NS_ADDRS_MAX)
            return cp_err_set(err, CP_EPROTO,
                              "the nameservers of the zone have more than %d addresses; "
                              "certpilot waits for at most %d",
                              NS_ADDRS_MAX, NS_ADDRS_MAX);
        snprintf(out[*nout].name, sizeof out[*nout].name, "%s", nsname);
        snprintf(out[*nout].addr, sizeof out[*nout].addr, "%s", text);
        (*nout)++;
    }
    return CP_OK;
bad:
    return cp_err_set(err, CP_EPROTO, "unreadable answer from the resolver to %s %s", r->qname,
                      r->qtype == CAA_DNS_TYPE_A ? "A" : "AAAA");
}

enum cp_code caa_zone_servers(const struct caa_resolver_opts *o, const char *name,
                              char zone[CAA_NAME_MAX + 1], char target[CAA_NAME_MAX + 1],
                              struct caa_ns **ns, size_t *nns, struct cp_err *err)
{
    enum cp_code rc;
    struct ares_addr_port_node *servers = NULL;
    ares_channel ch = NULL;
    struct reply *r = NULL;
    struct caa_ns *out = NULL;
    size_t nr = 0, nout = 0, nnames = 0;
    char qname[CAA_NAME_MAX + 1], why[CAA_NAME_MAX + 64];
    char(*names)[CAA_NAME_MAX + 1] = NULL;

    *ns = NULL;
    *nns = 0;
    zone[0] = target[0] = '\0';
    unsigned budget, tries;
    enum cp_code started = lookup_start(o, name, qname, &budget, &tries, err);
    if (started != CP_OK)
        return started;

    r = calloc(LABELS_MAX + 1, sizeof *r);
    out = calloc(NS_ADDRS_MAX, sizeof *out);
    names = calloc(NS_NAMES_MAX, sizeof *names);
    if (r == NULL || out == NULL || names == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory for the nameserver look-up");
        goto cleanup;
    }
    rc = caa_dns_parse_servers(o ? o->servers : NULL, o ? o->nservers : 0, &servers, err);
    if (rc == CP_OK)
        rc = caa_dns_open(servers, budget, tries, 0, &ch, err);
    if (rc != CP_OK)
        goto cleanup;

    /* 1. The zone: the SOA of a NODATA/NXDOMAIN answer names it, or the name
     * is the apex itself. */
    snprintf(why, sizeof why, "finding the zone of %s", qname);
    snprintf(r[0].qname, sizeof r[0].qname, "%s", qname);
    r[0].qtype = CAA_DNS_TYPE_SOA;
    nr = 1;
    rc = ask(&ch, 1, r, nr, true, caa_dns_now_ms() + budget, err);
    if (rc == CP_OK)
        rc = recursive_failed(&r[0], why, err);
    if (rc != CP_OK)
        goto cleanup;
    int found = caa_zone_from_soa_answer(r[0].buf, r[0].len, qname, target, zone);
    if (found < 0) {
        rc = cp_err_set(err, CP_EPROTO, "%s: unreadable answer from the resolver", why);
        goto cleanup;
    }
    if (found == 0) {
        /* A resolver that leaves out the authority section: ask for the SOA
         * of every parent at once; the longest one with an SOA is the zone. */
        replies_clear(r, nr);
        nr = parents(target, r, LABELS_MAX + 1);
        rc = ask(&ch, 1, r, nr, true, caa_dns_now_ms() + budget, err);
        if (rc != CP_OK)
            goto cleanup;
        for (size_t i = 0; i < nr && zone[0] == '\0'; i++) {
            char t[CAA_NAME_MAX + 1], z[CAA_NAME_MAX + 1];
            if (r[i].status == ARES_SUCCESS && (r[i].buf[3] & 0x0F) == CAA_DNS_RCODE_NOERROR &&
                caa_zone_from_soa_answer(r[i].buf, r[i].len, r[i].qname, t, z) == 1 &&
                strcasecmp(z, r[i].qname) == 0)
                memcpy(zone, z, sizeof z);
        }
        if (zone[0] == '\0') {
            rc = cp_err_set(err, CP_ENET, "%s: the resolver knows no SOA record at %s or above",
                            why, target);
            goto cleanup;
        }
    }
    replies_clear(r, nr);

    /* 2. Its NS records. */
    snprintf(why, sizeof why, "listing the nameservers of %s", zone[0] ? zone : ".");
    memset(&r[0], 0, sizeof r[0]);
    snprintf(r[0].qname, sizeof r[0].qname, "%s", zone[0] ? zone : ".");
    r[0].qtype = CAA_DNS_TYPE_NS;
    nr = 1;
    rc = ask(&ch, 1, r, nr, true, caa_dns_now_ms() + budget, err);
    if (rc == CP_OK)
        rc = recursive_failed(&r[0], why, err);
    if (rc != CP_OK)
        goto cleanup;
    int nns_found = caa_dns_ns_names(r[0].buf, r[0].len, zone, names, NS_NAMES_MAX);
    if (nns_found < 0)
        goto unreadable;
    if (nns_found > NS_NAMES_MAX) {
        rc = cp_err_set(err, CP_EPROTO,
                        "zone %s has more than %d nameservers; certpilot waits for at most %d",
                        zone, NS_NAMES_MAX, NS_NAMES_MAX);
        goto cleanup;
    }
    nnames = (size_t)nns_found;
    if (nnames == 0) {
        rc = cp_err_set(err, CP_ENET, "%s: the resolver returned no NS records", why);
        goto cleanup;
    }
    replies_clear(r, nr);

    /* 3. Their addresses, A and AAAA of every name at once. */
    nr = 0;
    for (size_t i = 0; i < nnames; i++)
        for (int t = 0; t < 2; t++, nr++) {
            memset(&r[nr], 0, sizeof r[nr]);
            memcpy(r[nr].qname, names[i], sizeof r[nr].qname);
            r[nr].qtype = t == 0 ? CAA_DNS_TYPE_A : CAA_DNS_TYPE_AAAA;
        }
    rc = ask(&ch, 1, r, nr, true, caa_dns_now_ms() + budget, err);
    if (rc != CP_OK)
        goto cleanup;
    size_t listed = 0;
    for (size_t i = 0; i < nnames; i++) {
        size_t before = nout, found_here = 0;
        const struct reply *failed = NULL;
        for (size_t t = 2 * i; t < 2 * i + 2; t++) {
            struct cp_err ignored = {0};
            if (recursive_failed(&r[t], "", &ignored) != CP_OK) {
                failed = &r[t];
                continue;
            }
            rc = take_addresses(&r[t], names[i], out, &nout, &found_here, err);
            if (rc != CP_OK)
                goto cleanup;
        }
        listed += found_here;
        /* A server with some address can be asked; one whose look-ups failed
         * might be the one the CA asks. */
        if (nout == before && failed != NULL) {
            snprintf(why, sizeof why, "finding the address of nameserver %s of %s", names[i], zone);
            rc = recursive_failed(failed, why, err);
            goto cleanup;
        }
    }
    if (nout == 0) {
        rc = cp_err_set(err, CP_ENET,
                        "no nameserver of %s has an address this host can reach (%zu name%s, "
                        "%zu address%s found)",
                        zone, nnames, nnames == 1 ? "" : "s", listed, listed == 1 ? "" : "es");
        goto cleanup;
    }

    *ns = out;
    *nns = nout;
    out = NULL;
    rc = CP_OK;
    goto cleanup;
unreadable:
    rc = cp_err_set(err, CP_EPROTO, "%s: unreadable answer from the resolver", why);
cleanup:
    caa_dns_close(ch); /* before the replies: callbacks may still write to them */
    if (r != NULL)
        replies_clear(r, LABELS_MAX + 1);
    free(r);
    free(out);
    free(names);
    free(servers);
    if (rc != CP_OK)
        zone[0] = target[0] = '\0';
    return rc;
}

/* ----------------------------------------------------------- addresses */

#define HOST_ADDRS_MAX 16 /* more than any check needs: the first of each family is used */

enum cp_code caa_addresses(const struct caa_resolver_opts *o, const char *name, struct caa_ns **out,
                           size_t *n, struct cp_err *err)
{
    struct ares_addr_port_node *servers = NULL;
    ares_channel ch = NULL;
    struct reply r[2];
    struct caa_ns *list = NULL;
    size_t nlist = 0, found = 0;
    char qname[CAA_NAME_MAX + 1];
    bool nxdomain = false;
    const struct reply *failed = NULL;
    enum cp_code rc;

    *out = NULL;
    *n = 0;
    memset(r, 0, sizeof r);
    unsigned budget, tries;
    enum cp_code started = lookup_start(o, name, qname, &budget, &tries, err);
    if (started != CP_OK)
        return started;
    if ((list = calloc(HOST_ADDRS_MAX, sizeof *list)) == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory for the address look-up");
    rc = caa_dns_parse_servers(o ? o->servers : NULL, o ? o->nservers : 0, &servers, err);
    if (rc == CP_OK)
        rc = caa_dns_open(servers, budget, tries, 0, &ch, err);
    if (rc != CP_OK)
        goto cleanup;
    /* AAAA first: a CA that finds both tries IPv6 first. */
    for (int t = 0; t < 2; t++) {
        memcpy(r[t].qname, qname, sizeof r[t].qname);
        r[t].qtype = t == 0 ? CAA_DNS_TYPE_AAAA : CAA_DNS_TYPE_A;
    }
    rc = ask(&ch, 1, r, 2, true, caa_dns_now_ms() + budget, err);
    for (int t = 0; rc == CP_OK && t < 2; t++) {
        struct cp_err ignored = {0};
        if (recursive_failed(&r[t], "", &ignored) != CP_OK) {
            failed = &r[t];
            continue;
        }
        nxdomain = nxdomain || (r[t].buf[3] & 0x0F) == CAA_DNS_RCODE_NXDOMAIN;
        struct caa_dns_walk w;
        struct caa_dns_rr rr;
        if (caa_dns_walk_start(&w, r[t].buf, r[t].len) != 0) {
            rc = cp_err_set(err, CP_EPROTO, "unreadable answer from the resolver to %s", qname);
            break;
        }
        while (w.section == CAA_DNS_ANSWER) {
            if (caa_dns_walk_next(&w, &rr) != 1) {
                rc = cp_err_set(err, CP_EPROTO, "unreadable answer from the resolver to %s", qname);
                break;
            }
            int family = rr.type == CAA_DNS_TYPE_A && rr.rdlen == 4       ? AF_INET
                         : rr.type == CAA_DNS_TYPE_AAAA && rr.rdlen == 16 ? AF_INET6
                                                                          : AF_UNSPEC;
            char text[INET6_ADDRSTRLEN];
            if (rr.rrclass != CAA_DNS_CLASS_IN || family == AF_UNSPEC || rr.type != r[t].qtype ||
                inet_ntop(family, rr.rdata, text, sizeof text) == NULL)
                continue; /* the CNAME chain, if any */
            found++;
            bool dup = !caa_zone_routable(family, rr.rdata) || nlist == HOST_ADDRS_MAX;
            for (size_t i = 0; i < nlist && !dup; i++)
                dup = strcmp(list[i].addr, text) == 0;
            if (dup)
                continue;
            snprintf(list[nlist].name, sizeof list[nlist].name, "%s", rr.owner);
            snprintf(list[nlist].addr, sizeof list[nlist].addr, "%s", text);
            nlist++;
        }
    }
    if (rc != CP_OK)
        goto cleanup;
    if (nlist == 0) {
        if (nxdomain)
            rc = cp_err_set(err, CP_ENET,
                            "%s does not exist in DNS (the resolver answered "
                            "NXDOMAIN)",
                            qname);
        else if (failed != NULL) {
            char why[CAA_NAME_MAX + 32];
            snprintf(why, sizeof why, "looking up %s", qname);
            rc = recursive_failed(failed, why, err);
        } else if (found > 0)
            rc = cp_err_set(err, CP_ENET, "no address of %s can be reached from this host", qname);
        else
            rc = cp_err_set(err, CP_ENET, "%s has no A or AAAA record", qname);
        goto cleanup;
    }
    *out = list;
    *n = nlist;
    list = NULL;
cleanup:
    caa_dns_close(ch); /* before the replies: callbacks may still write to them */
    replies_clear(r, 2);
    free(list);
    free(servers);
    return rc;
}

/* ---------------------------------------------------------------- wait */

struct server {
    struct reply r;
    struct caa_txt_seen seen;
    bool done;
};

static void sleep_ms(long long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* What a server that does not serve the value answered last, for messages. */
static void describe(const struct server *s, char *buf, size_t size)
{
    if (s->r.status == ARES_ETIMEOUT || s->r.status == ARES_ECANCELLED ||
        s->r.status == ARES_EDESTRUCTION)
        snprintf(buf, size, "no answer");
    else if (s->r.status == ARES_EBADRESP)
        snprintf(buf, size, "an unreadable answer");
    else if (s->r.status != ARES_SUCCESS)
        snprintf(buf, size, "no answer (%s)", ares_strerror(s->r.status));
    else if (s->seen.rcode != CAA_DNS_RCODE_NOERROR)
        snprintf(buf, size, "answered %s", caa_rcode_name(s->seen.rcode));
    else if (!s->seen.aa)
        snprintf(buf, size, "answered without authority (not authoritative for the zone)");
    else if (s->seen.nvalues == 0)
        snprintf(buf, size, "no TXT record at the name");
    else
        snprintf(buf, size, "only %s%s", s->seen.values, s->seen.values_short ? ", ..." : "");
}

enum cp_code caa_txt_wait(const struct caa_ns *ns, size_t nns, unsigned port, const char *name,
                          const char *value, unsigned timeout_ms, unsigned interval_ms,
                          struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    ares_channel chs[NS_ADDRS_MAX] = {0};
    struct ares_addr_port_node nodes[NS_ADDRS_MAX];
    struct server *sv = NULL;
    char qname[CAA_NAME_MAX + 1];

    if (ns == NULL || nns == 0 || nns > NS_ADDRS_MAX)
        return cp_err_set(err, CP_EINVAL, "between 1 and %d nameserver addresses are needed",
                          NS_ADDRS_MAX);
    if (!copy_name(qname, name))
        return cp_err_set(err, CP_EINVAL, "\"%.60s\" is not a domain name of 1 to %d octets",
                          name != NULL ? name : "", CAA_NAME_MAX);
    if (value == NULL || value[0] == '\0' || strlen(value) > TXT_VALUE_MAX)
        return cp_err_set(err, CP_EINVAL, "the TXT value to wait for must be 1 to %d octets",
                          TXT_VALUE_MAX);
    if (port == 0)
        port = 53;
    if (port > 65535)
        return cp_err_set(err, CP_EINVAL, "port %u is not a port number", port);
    if (interval_ms == 0)
        interval_ms = DEFAULT_INTERVAL;

    sv = calloc(nns, sizeof *sv);
    if (sv == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory for %zu nameservers", nns);
    for (size_t i = 0; i < nns; i++) {
        struct ares_addr_port_node *n = &nodes[i];
        memset(n, 0, sizeof *n);
        if (inet_pton(AF_INET, ns[i].addr, &n->addr.addr4) == 1) {
            n->family = AF_INET;
        } else if (inet_pton(AF_INET6, ns[i].addr, &n->addr.addr6) == 1) {
            n->family = AF_INET6;
        } else {
            rc = cp_err_set(err, CP_EINVAL, "nameserver address \"%.64s\" of %s is no IP address",
                            ns[i].addr, ns[i].name);
            goto cleanup;
        }
        n->udp_port = n->tcp_port = (int)port;
        /* RD is off in the queries themselves (ares_create_query with rd=0);
         * NORECURSE says the same to c-ares. */
        rc = caa_dns_open(n, DIRECT_BUDGET_MS, DIRECT_TRIES, ARES_FLAG_NORECURSE, &chs[i], err);
        if (rc != CP_OK)
            goto cleanup;
        memcpy(sv[i].r.qname, qname, sizeof qname);
        sv[i].r.chan = i;
        sv[i].r.status = ARES_ETIMEOUT;
    }

    long long start = caa_dns_now_ms(), deadline = start + timeout_ms, begin = start;
    struct reply r[NS_ADDRS_MAX];
    for (;;) {
        /* One round: every server not yet serving the value, in parallel. */
        for (size_t i = 0; i < nns; i++) {
            r[i] = sv[i].r;
            r[i].buf = NULL;
            r[i].qtype = sv[i].done ? 0 : CAA_DNS_TYPE_TXT;
        }
        rc = ask(chs, nns, r, nns, false, begin + DIRECT_BUDGET_MS, err);
        if (rc != CP_OK) {
            replies_clear(r, nns);
            goto cleanup;
        }
        bool all = true;
        for (size_t i = 0; i < nns; i++) {
            if (sv[i].done)
                continue;
            sv[i].r.status = r[i].status;
            if (r[i].status == ARES_SUCCESS &&
                caa_zone_read_txt(r[i].buf, r[i].len, qname, value, &sv[i].seen) != 0)
                sv[i].r.status = ARES_EBADRESP;
            sv[i].done = sv[i].r.status == ARES_SUCCESS &&
                         sv[i].seen.rcode == CAA_DNS_RCODE_NOERROR && sv[i].seen.aa &&
                         sv[i].seen.served;
            all = all && sv[i].done;
        }
        replies_clear(r, nns);
        if (all)
            goto cleanup; /* rc is CP_OK */

        long long now = caa_dns_now_ms();
        if (begin >= deadline || now >= deadline)
            break;
        /* The last round is sent at the deadline itself. */
        long long next = begin + interval_ms < deadline ? begin + interval_ms : deadline;
        if (next > now)
            sleep_ms(next - now);
        begin = caa_dns_now_ms();
    }

    char list[CP_ERR_MSG_MAX];
    size_t off = 0, missing = 0;
    list[0] = '\0';
    for (size_t i = 0; i < nns; i++) {
        if (sv[i].done)
            continue;
        char what[sizeof sv[i].seen.values + 32];
        describe(&sv[i], what, sizeof what);
        missing++;
        if (off < sizeof list) {
            int n = snprintf(list + off, sizeof list - off, "%s%s (%s): %s", off ? "; " : "",
                             ns[i].name, ns[i].addr, what);
            off += n > 0 ? (size_t)n : 0;
        }
    }
    rc = cp_err_set(err, CP_ETIMEOUT,
                    "TXT record \"%s\" at %s not served by %zu of %zu nameserver address%s "
                    "after %.1f s: %s",
                    value, qname, missing, nns, nns == 1 ? "" : "es", timeout_ms / 1000.0, list);
cleanup:
    for (size_t i = 0; i < nns; i++)
        caa_dns_close(chs[i]);
    free(sv);
    return rc;
}

/* ------------------------------------------------------- dns-persist-01 */

#define PERSIST_VALUES_MAX 16
#define PERSIST_VALUE_MAX  (4 * CAA_PERSIST_VALUE_MAX)

struct persist_values {
    unsigned char buf[PERSIST_VALUES_MAX][PERSIST_VALUE_MAX];
    struct caa_persist_txt txt[PERSIST_VALUES_MAX];
    size_t n;
};

/* The TXT values at `name` in a direct answer, joined; 0, or -1 when
 * malformed.  Values longer than PERSIST_VALUE_MAX and those past the
 * count are counted, not kept. */
static int read_persist(const unsigned char *abuf, int alen, const char *name,
                        struct persist_values *v, struct caa_persist_server *out)
{
    struct caa_dns_walk w;
    struct caa_dns_rr rr;
    v->n = 0;
    if (caa_dns_walk_start(&w, abuf, alen) != 0)
        return -1;
    out->rcode = w.rcode;
    if (w.rcode != CAA_DNS_RCODE_NOERROR && w.rcode != CAA_DNS_RCODE_NXDOMAIN) {
        snprintf(out->problem, sizeof out->problem, "%s", caa_rcode_name(w.rcode));
        return 0;
    }
    if (!w.aa) {
        snprintf(out->problem, sizeof out->problem, "not authoritative (AA not set)");
        return 0;
    }
    out->answered = true;
    while (w.section == CAA_DNS_ANSWER) {
        size_t len;
        if (caa_dns_walk_next(&w, &rr) != 1)
            return -1;
        if (rr.rrclass != CAA_DNS_CLASS_IN || rr.type != CAA_DNS_TYPE_TXT ||
            strcasecmp(rr.owner, name) != 0)
            continue;
        out->nvalues++;
        if (v->n >= PERSIST_VALUES_MAX)
            continue;
        if (txt_join(rr.rdata, rr.rdlen, v->buf[v->n], PERSIST_VALUE_MAX, &len) != 0)
            return -1;
        if (len > PERSIST_VALUE_MAX)
            continue;
        v->txt[v->n] = (struct caa_persist_txt){v->buf[v->n], len};
        v->n++;
    }
    return 0;
}

enum cp_code caa_persist_servers(const struct caa_ns *ns, size_t nns, unsigned port,
                                 const char *qname, const char *ident,
                                 const struct caa_persist_check *c, struct caa_persist_server *out,
                                 size_t *nauthorizing, struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    ares_channel chs[NS_ADDRS_MAX] = {0};
    struct reply r[NS_ADDRS_MAX];
    struct persist_values *v = NULL;
    char name[CAA_NAME_MAX + 1];
    size_t opened = 0;

    if (nauthorizing != NULL)
        *nauthorizing = 0;
    if (ns == NULL || out == NULL || nns == 0 || nns > NS_ADDRS_MAX)
        return cp_err_set(err, CP_EINVAL, "between 1 and %d nameserver addresses are needed",
                          NS_ADDRS_MAX);
    if (!copy_name(name, qname))
        return cp_err_set(err, CP_EINVAL, "\"%.60s\" is not a domain name of 1 to %d octets",
                          qname != NULL ? qname : "", CAA_NAME_MAX);
    if (port == 0)
        port = 53;
    if (port > 65535)
        return cp_err_set(err, CP_EINVAL, "port %u is not a port number", port);
    memset(r, 0, sizeof r);
    for (size_t i = 0; i < nns; i++) {
        struct ares_addr_port_node n;
        memset(&n, 0, sizeof n);
        memset(&out[i], 0, sizeof out[i]);
        out[i].rcode = -1;
        out[i].verdict.record = SIZE_MAX;
        if (inet_pton(AF_INET, ns[i].addr, &n.addr.addr4) == 1) {
            n.family = AF_INET;
        } else if (inet_pton(AF_INET6, ns[i].addr, &n.addr.addr6) == 1) {
            n.family = AF_INET6;
        } else {
            rc = cp_err_set(err, CP_EINVAL, "nameserver address \"%.64s\" of %s is no IP address",
                            ns[i].addr, ns[i].name);
            goto cleanup;
        }
        n.udp_port = n.tcp_port = (int)port;
        rc = caa_dns_open(&n, DIRECT_BUDGET_MS, DIRECT_TRIES, ARES_FLAG_NORECURSE, &chs[i], err);
        if (rc != CP_OK)
            goto cleanup;
        opened = i + 1;
        memcpy(r[i].qname, name, sizeof name);
        r[i].qtype = CAA_DNS_TYPE_TXT;
        r[i].chan = i;
    }
    v = malloc(sizeof *v);
    if (v == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        goto cleanup;
    }
    rc = ask(chs, nns, r, nns, false, caa_dns_now_ms() + DIRECT_BUDGET_MS, err);
    for (size_t i = 0; rc == CP_OK && i < nns; i++) {
        struct caa_persist_server *o = &out[i];
        if (r[i].status != ARES_SUCCESS) {
            snprintf(o->problem, sizeof o->problem, "no answer");
            continue;
        }
        if (read_persist(r[i].buf, r[i].len, name, v, o) != 0) {
            o->answered = false;
            snprintf(o->problem, sizeof o->problem, "an unreadable answer");
            continue;
        }
        if (!o->answered)
            continue;
        rc = caa_persist_evaluate(ident, v->txt, v->n, c, &o->verdict, err);
        if (rc == CP_OK && o->verdict.authorized && nauthorizing != NULL)
            (*nauthorizing)++;
    }
    replies_clear(r, nns);
cleanup:
    for (size_t i = 0; i < opened; i++)
        caa_dns_close(chs[i]);
    free(v);
    return rc;
}
