/*
 * caa/resolve.c - CAA look-ups for many names at once over c-ares.
 *
 * Every query is handed to one c-ares channel before the event loop starts, so
 * a batch costs one round trip to the resolver however many names it holds.
 * An overall deadline bounds the whole batch; whatever is still pending then is
 * classified as a time-out (spec §3).
 *
 * c-ares builds the queries, retries, falls back to TCP on truncation and
 * decompresses names (ares_expand_name).  The answer section is walked here
 * rather than with ares_parse_caa_reply() because c-ares 1.18 rejects a CAA
 * record whose value is empty (`0 issue ""` is legitimate: it forbids issuance)
 * and does not report the CNAME chain the resolver followed.
 */
#include "caa/caa.h"

#include <sys/select.h> /* ares.h uses fd_set */
#include <sys/time.h>
#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DNS_HEADER_LEN     12
#define DNS_TYPE_CNAME     5
#define DNS_TYPE_CAA       257
#define DNS_CLASS_IN       1
#define EDNS_UDP_SIZE      1232 /* the DNS flag day 2020 recommendation */
#define CNAME_HOPS_MAX     16   /* more than any sane chain; bounds the walk */
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_TRIES      2

struct pending {
    struct caa_lookup *lookup;
    size_t *outstanding;
    enum cp_code *fatal; /* set on allocation failure inside a callback */
};

static unsigned read16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* Expand a (possibly compressed) name at `p`; on success *next points past it
 * and `out` holds the name without trailing dot, or "" for the root. */
static int expand_name(const unsigned char *p, const unsigned char *abuf, int alen,
                       char out[CAA_NAME_MAX + 1], const unsigned char **next)
{
    char *name = NULL;
    long enclen = 0;
    if (ares_expand_name(p, abuf, alen, &name, &enclen) != ARES_SUCCESS)
        return -1;
    size_t len = strlen(name);
    int rc = -1;
    if (len > CAA_NAME_MAX)
        goto out;
    memcpy(out, name, len + 1);
    *next = p + enclen;
    rc = 0;
out:
    ares_free_string(name);
    return rc;
}

static enum cp_code add_record(struct caa_lookup *l, const unsigned char *rd, size_t rdlen)
{
    /* RFC 8659 §4.1: flags (1 octet), tag length (1 octet), tag, value. */
    if (rdlen < 2 || (size_t)rd[1] > rdlen - 2)
        return CP_EPROTO;
    size_t taglen = rd[1];
    size_t vlen = rdlen - 2 - taglen;

    struct caa_record *grown = realloc(l->records, (l->nrecords + 1) * sizeof *grown);
    if (grown == NULL)
        return CP_ENOMEM;
    l->records = grown;
    struct caa_record *r = &l->records[l->nrecords];
    r->flags = rd[0];
    r->tag = malloc(taglen + 1);
    r->value = malloc(vlen + 1);
    if (r->tag == NULL || r->value == NULL) {
        free(r->tag);
        free(r->value);
        return CP_ENOMEM;
    }
    memcpy(r->tag, rd + 2, taglen);
    r->tag[taglen] = '\0';
    memcpy(r->value, rd + 2 + taglen, vlen);
    r->value[vlen] = '\0';
    r->value_len = vlen;
    l->nrecords++;
    return CP_OK;
}

/*
 * Collect the CAA records of the answer section and follow the CNAME chain
 * from the query name.  Every RR is bounds-checked against the buffer before
 * it is read.  CP_EPROTO means the answer could not be parsed.
 */
static enum cp_code parse_answer(struct caa_lookup *l, const unsigned char *abuf, int alen)
{
    struct alias {
        char owner[CAA_NAME_MAX + 1];
        char target[CAA_NAME_MAX + 1];
    } aliases[CNAME_HOPS_MAX];
    size_t naliases = 0;
    const unsigned char *end = abuf + alen;

    if (alen < DNS_HEADER_LEN)
        return CP_EPROTO;
    unsigned qdcount = read16(abuf + 4), ancount = read16(abuf + 6);
    const unsigned char *p = abuf + DNS_HEADER_LEN;
    char name[CAA_NAME_MAX + 1];

    for (unsigned i = 0; i < qdcount; i++) {
        if (expand_name(p, abuf, alen, name, &p) != 0 || end - p < 4)
            return CP_EPROTO;
        p += 4; /* type, class */
    }
    for (unsigned i = 0; i < ancount; i++) {
        if (expand_name(p, abuf, alen, name, &p) != 0 || end - p < 10)
            return CP_EPROTO;
        unsigned type = read16(p), class = read16(p + 2), rdlen = read16(p + 8);
        p += 10;
        if ((size_t)(end - p) < rdlen)
            return CP_EPROTO;
        if (class == DNS_CLASS_IN && type == DNS_TYPE_CAA) {
            enum cp_code rc = add_record(l, p, rdlen);
            if (rc != CP_OK)
                return rc;
        } else if (class == DNS_CLASS_IN && type == DNS_TYPE_CNAME && naliases < CNAME_HOPS_MAX) {
            const unsigned char *after;
            memcpy(aliases[naliases].owner, name, sizeof name);
            if (expand_name(p, abuf, alen, aliases[naliases].target, &after) != 0)
                return CP_EPROTO;
            naliases++;
        }
        p += rdlen;
    }

    /* Follow the chain from the query name; the bound stops loops. */
    const char *cur = l->name;
    for (size_t hop = 0; hop < CNAME_HOPS_MAX; hop++) {
        const char *next = NULL;
        for (size_t a = 0; a < naliases && next == NULL; a++)
            if (strcasecmp(aliases[a].owner, cur) == 0)
                next = aliases[a].target;
        if (next == NULL)
            break;
        cur = next;
    }
    if (cur != l->name)
        snprintf(l->target, sizeof l->target, "%s", cur);
    return CP_OK;
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct pending *pd = arg;
    struct caa_lookup *l = pd->lookup;
    (void)timeouts;
    (*pd->outstanding)--;

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

    if (alen < DNS_HEADER_LEN) {
        l->answer = CAA_ANSWER_NETWORK;
        goto out;
    }
    l->rcode = abuf[3] & 0x0F;
    /* spec §3: NOERROR and NXDOMAIN carry a (maybe empty) set; any other
     * RCODE is an error for this name. */
    if (l->rcode != 0 && l->rcode != 3) {
        l->answer = CAA_ANSWER_RCODE;
        goto out;
    }
    enum cp_code rc = parse_answer(l, abuf, alen);
    if (rc == CP_ENOMEM) {
        *pd->fatal = CP_ENOMEM;
    } else if (rc != CP_OK) {
        l->answer = CAA_ANSWER_NETWORK;
        goto out;
    }
    l->answer = CAA_ANSWER_RECORDS;
out:
    free(pd);
}

/* Parse "IP", "IP:PORT", "[IPv6]" or "[IPv6]:PORT". */
static enum cp_code parse_server(const char *s, struct ares_addr_port_node *node,
                                 struct cp_err *err)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *hoststart = s, *port = NULL;
    size_t hostlen;

    memset(node, 0, sizeof *node);
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':'))
            goto bad;
        hoststart = s + 1;
        hostlen = (size_t)(close - hoststart);
        if (close[1] == ':')
            port = close + 2;
    } else {
        const char *colon = strchr(s, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL)
            colon = NULL; /* a bare IPv6 address */
        hostlen = colon != NULL ? (size_t)(colon - s) : strlen(s);
        if (colon != NULL)
            port = colon + 1;
    }
    if (hostlen == 0 || hostlen >= sizeof host)
        goto bad;
    memcpy(host, hoststart, hostlen);
    host[hostlen] = '\0';

    if (inet_pton(AF_INET, host, &node->addr.addr4) == 1)
        node->family = AF_INET;
    else if (inet_pton(AF_INET6, host, &node->addr.addr6) == 1)
        node->family = AF_INET6;
    else
        goto bad;

    node->udp_port = node->tcp_port = 53;
    if (port != NULL) {
        char *endp;
        errno = 0;
        unsigned long v = strtoul(port, &endp, 10);
        if (*port == '\0' || *endp != '\0' || errno != 0 || v == 0 || v > 65535)
            goto bad;
        node->udp_port = node->tcp_port = (int)v;
    }
    return CP_OK;
bad:
    return cp_err_set(err, CP_EINVAL,
                      "resolver \"%s\" is not an IP address with an optional port "
                      "(use 192.0.2.1, 192.0.2.1:5353, 2001:db8::1 or [2001:db8::1]:5353)",
                      s);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run the channel until nothing is outstanding or the deadline passes. */
static void run_loop(ares_channel ch, const size_t *outstanding, long long deadline)
{
    while (*outstanding > 0) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            ares_cancel(ch); /* pending callbacks get ARES_ECANCELLED */
            return;
        }
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        struct pollfd pfd[ARES_GETSOCK_MAXNUM];
        nfds_t nfds = 0;
        /* Test the bits as unsigned: c-ares's ARES_GETSOCK_WRITABLE shifts a
         * signed 1 by up to 31 places, which is undefined behaviour. */
        unsigned mask = (unsigned)ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
        for (unsigned i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            short ev = 0;
            if (mask & (1u << i))
                ev |= POLLIN;
            if (mask & (1u << (i + ARES_GETSOCK_MAXNUM)))
                ev |= POLLOUT;
            if (ev == 0)
                continue;
            pfd[nfds].fd = socks[i];
            pfd[nfds].events = ev;
            pfd[nfds].revents = 0;
            nfds++;
        }
        struct timeval max = {.tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000};
        struct timeval tv;
        struct timeval *wait = ares_timeout(ch, &max, &tv);
        int ms = (int)(wait->tv_sec * 1000 + (wait->tv_usec + 999) / 1000);
        int n = poll(pfd, nfds, ms);
        if (n < 0 && errno != EINTR)
            n = 0;
        if (n <= 0) {
            ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* time-outs */
            continue;
        }
        for (nfds_t i = 0; i < nfds; i++) {
            ares_socket_t r =
                (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) ? pfd[i].fd : ARES_SOCKET_BAD;
            ares_socket_t w = (pfd[i].revents & POLLOUT) ? pfd[i].fd : ARES_SOCKET_BAD;
            if (r != ARES_SOCKET_BAD || w != ARES_SOCKET_BAD)
                ares_process_fd(ch, r, w);
        }
    }
}

enum cp_code caa_resolve(const struct caa_resolver_opts *opts, const char *const *names, size_t n,
                         struct caa_lookup **out, size_t *queries_sent, struct cp_err *err)
{
    enum cp_code rc = CP_OK, fatal = CP_OK;
    struct caa_lookup *lookups = NULL;
    struct ares_addr_port_node *servers = NULL;
    ares_channel ch = NULL;
    bool lib_init = false;
    size_t outstanding = 0, sent = 0;

    *out = NULL;
    unsigned timeout_ms = opts && opts->timeout_ms ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    unsigned tries = opts && opts->tries ? opts->tries : DEFAULT_TRIES;
    if (tries > 10)
        tries = 10;

    lookups = calloc(n ? n : 1, sizeof *lookups);
    if (lookups == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory for %zu CAA look-ups", n);
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

    if (opts != NULL && opts->nservers > 0) {
        servers = calloc(opts->nservers, sizeof *servers);
        if (servers == NULL) {
            rc = cp_err_set(err, CP_ENOMEM, "out of memory for resolver list");
            goto cleanup;
        }
        for (size_t i = 0; i < opts->nservers; i++) {
            rc = parse_server(opts->servers[i], &servers[i], err);
            if (rc != CP_OK)
                goto cleanup;
            servers[i].next = i + 1 < opts->nservers ? &servers[i + 1] : NULL;
        }
    }

    int status = ares_library_init(ARES_LIB_INIT_ALL);
    if (status != ARES_SUCCESS) {
        rc = cp_err_set(err, CP_EDNS, "c-ares initialization failed: %s", ares_strerror(status));
        goto cleanup;
    }
    lib_init = true;

    /* Each try waits twice as long as the one before (c-ares doubles it per
     * round), so split the overall budget into 2^tries - 1 parts. */
    struct ares_options o = {0};
    o.flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_NOSEARCH | ARES_FLAG_STAYOPEN;
    o.timeout = (int)(timeout_ms / ((1u << tries) - 1));
    if (o.timeout < 50)
        o.timeout = 50;
    o.tries = (int)tries;
    status = ares_init_options(&ch, &o, ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (status != ARES_SUCCESS) {
        rc = cp_err_set(err, CP_EDNS, "cannot set up DNS resolution: %s%s", ares_strerror(status),
                        status == ARES_EFILE ? " (check /etc/resolv.conf or pass --resolver)" : "");
        goto cleanup;
    }
    if (servers != NULL) {
        status = ares_set_servers_ports(ch, servers);
        if (status != ARES_SUCCESS) {
            rc = cp_err_set(err, CP_EDNS, "cannot use the resolvers given: %s",
                            ares_strerror(status));
            goto cleanup;
        }
    }

    long long deadline = now_ms() + timeout_ms;
    for (size_t i = 0; i < n; i++) {
        unsigned char *q = NULL;
        int qlen = 0;
        status = ares_create_query(lookups[i].name, DNS_CLASS_IN, DNS_TYPE_CAA, 0, 1, &q, &qlen,
                                   EDNS_UDP_SIZE);
        if (status != ARES_SUCCESS) {
            /* Only a name c-ares cannot encode gets here; it was validated. */
            lookups[i].answer = CAA_ANSWER_NETWORK;
            continue;
        }
        struct pending *pd = malloc(sizeof *pd);
        if (pd == NULL) {
            ares_free_string(q);
            rc = cp_err_set(err, CP_ENOMEM, "out of memory for DNS queries");
            goto cleanup;
        }
        pd->lookup = &lookups[i];
        pd->outstanding = &outstanding;
        pd->fatal = &fatal;
        outstanding++;
        sent++;
        ares_send(ch, q, qlen, on_answer, pd); /* may call back at once */
        ares_free_string(q);
    }
    run_loop(ch, &outstanding, deadline);
    if (fatal != CP_OK) {
        rc = cp_err_set(err, fatal, "out of memory while reading DNS answers");
        goto cleanup;
    }

    *out = lookups;
    lookups = NULL;
    if (queries_sent != NULL)
        *queries_sent = sent;
cleanup:
    if (ch != NULL)
        ares_destroy(ch); /* outstanding callbacks run here and free their state */
    if (lib_init)
        ares_library_cleanup();
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
