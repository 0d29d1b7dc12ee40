/*
 * caa/dns.c - the DNS plumbing shared by caa/resolve.c and caa/zone.c: server
 * strings, channels, the poll loop and the resource-record walker (see
 * caa/dns_int.h).
 */
#include "caa/dns_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

unsigned caa_dns_read16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

long long caa_dns_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int caa_dns_expand_name(const unsigned char *p, const unsigned char *abuf, int alen,
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

enum cp_code caa_dns_parse_server(const char *s, struct ares_addr_port_node *node,
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

enum cp_code caa_dns_parse_servers(const char *const *servers, size_t n,
                                   struct ares_addr_port_node **out, struct cp_err *err)
{
    *out = NULL;
    if (n == 0)
        return CP_OK;
    struct ares_addr_port_node *nodes = calloc(n, sizeof *nodes);
    if (nodes == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory for resolver list");
    for (size_t i = 0; i < n; i++) {
        enum cp_code rc = caa_dns_parse_server(servers[i], &nodes[i], err);
        if (rc != CP_OK) {
            free(nodes);
            return rc;
        }
        nodes[i].next = i + 1 < n ? &nodes[i + 1] : NULL;
    }
    *out = nodes;
    return CP_OK;
}

/* The first try's share of a budget: each try waits twice as long as the one
 * before (c-ares doubles it per round), so the budget is split into
 * 2^tries - 1 parts. */
unsigned caa_dns_first_try_ms(unsigned budget_ms, unsigned tries)
{
    if (tries < 1)
        tries = 1;
    if (tries > 10)
        tries = 10;
    unsigned t = budget_ms / ((1u << tries) - 1);
    return t < 50 ? 50 : t;
}

unsigned caa_dns_query_ms(unsigned budget_ms, unsigned tries)
{
    if (tries < 1)
        tries = 1;
    if (tries > 10)
        tries = 10;
    return caa_dns_first_try_ms(budget_ms, tries) * ((1u << tries) - 1);
}

enum cp_code caa_dns_open(const struct ares_addr_port_node *servers, unsigned budget_ms,
                          unsigned tries, int extra_flags, ares_channel *out, struct cp_err *err)
{
    ares_channel ch = NULL;
    *out = NULL;
    int status = ares_library_init(ARES_LIB_INIT_ALL);
    if (status != ARES_SUCCESS)
        return cp_err_set(err, CP_EDNS, "c-ares initialization failed: %s", ares_strerror(status));

    struct ares_options o = {0};
    o.flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_NOSEARCH | ARES_FLAG_STAYOPEN | extra_flags;
    o.timeout = (int)caa_dns_first_try_ms(budget_ms, tries);
    o.tries = (int)tries;
    o.ednspsz = CAA_DNS_EDNS_UDP_SIZE; /* used only with ARES_FLAG_EDNS */
    o.socket_receive_buffer_size = CAA_DNS_RCVBUF;
    status = ares_init_options(&ch, &o,
                               ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
                                   ARES_OPT_EDNSPSZ | ARES_OPT_SOCK_RCVBUF);
    if (status != ARES_SUCCESS) {
        ares_library_cleanup();
        return cp_err_set(err, CP_EDNS, "cannot set up DNS resolution: %s%s", ares_strerror(status),
                          status == ARES_EFILE ? " (check /etc/resolv.conf or pass --resolver)"
                                               : "");
    }
    if (servers != NULL) {
        /* c-ares takes a non-const list but only reads it. */
        status = ares_set_servers_ports(ch, (struct ares_addr_port_node *)servers);
        if (status != ARES_SUCCESS) {
            caa_dns_close(ch);
            return cp_err_set(err, CP_EDNS, "cannot use the resolvers given: %s",
                              ares_strerror(status));
        }
    }
    *out = ch;
    return CP_OK;
}

size_t caa_dns_server_count(ares_channel ch)
{
    struct ares_addr_port_node *list = NULL;
    size_t n = 0;
    if (ares_get_servers_ports(ch, &list) != ARES_SUCCESS)
        return 1;
    for (const struct ares_addr_port_node *s = list; s != NULL; s = s->next)
        n++;
    ares_free_data(list);
    return n ? n : 1;
}

void caa_dns_close(ares_channel ch)
{
    if (ch == NULL)
        return;
    ares_destroy(ch); /* outstanding callbacks run here and free their state */
    ares_library_cleanup();
}

/* One wait for events on `nch` channels and their processing, bounded by
 * `deadline`; false (and every pending query cancelled) once it has passed. */
static bool step(ares_channel *chs, size_t nch, long long deadline)
{
    enum { PER = ARES_GETSOCK_MAXNUM };
    struct pollfd pfd[CAA_DNS_CHANNELS_MAX * PER];
    size_t owner[CAA_DNS_CHANNELS_MAX * PER]; /* channel of each pfd */
    bool served[CAA_DNS_CHANNELS_MAX];

    if (nch > CAA_DNS_CHANNELS_MAX)
        nch = CAA_DNS_CHANNELS_MAX; /* callers check; never drive past the arrays */
    long long left = deadline - caa_dns_now_ms();
    if (left <= 0) {
        for (size_t c = 0; c < nch; c++)
            ares_cancel(chs[c]); /* pending callbacks get ARES_ECANCELLED */
        return false;
    }
    nfds_t nfds = 0;
    struct timeval max = {.tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000};
    for (size_t c = 0; c < nch; c++) {
        ares_socket_t socks[PER];
        /* Test the bits as unsigned: c-ares's ARES_GETSOCK_WRITABLE shifts a
         * signed 1 by up to 31 places, which is undefined behaviour. */
        unsigned mask = (unsigned)ares_getsock(chs[c], socks, PER);
        for (unsigned i = 0; i < PER; i++) {
            short ev = 0;
            if (mask & (1u << i))
                ev |= POLLIN;
            if (mask & (1u << (i + PER)))
                ev |= POLLOUT;
            if (ev == 0)
                continue;
            pfd[nfds].fd = socks[i];
            pfd[nfds].events = ev;
            pfd[nfds].revents = 0;
            owner[nfds] = c;
            nfds++;
        }
        /* The earliest time-out of any channel bounds the wait. */
        struct timeval tv;
        struct timeval *wait = ares_timeout(chs[c], &max, &tv);
        max = *wait;
    }
    int ms = (int)(max.tv_sec * 1000 + (max.tv_usec + 999) / 1000);
    int n = poll(pfd, nfds, ms);
    if (n < 0 && errno != EINTR)
        n = 0;
    if (n <= 0) {
        for (size_t c = 0; c < nch; c++)
            ares_process_fd(chs[c], ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* time-outs */
        return true;
    }
    memset(served, 0, sizeof served);
    for (nfds_t i = 0; i < nfds; i++) {
        ares_socket_t r =
            (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) ? pfd[i].fd : ARES_SOCKET_BAD;
        ares_socket_t w = (pfd[i].revents & POLLOUT) ? pfd[i].fd : ARES_SOCKET_BAD;
        if (r != ARES_SOCKET_BAD || w != ARES_SOCKET_BAD) {
            ares_process_fd(chs[owner[i]], r, w);
            served[owner[i]] = true;
        }
    }
    /* A busy channel must not hold back another one's time-outs. */
    for (size_t c = 0; c < nch && nch > 1; c++)
        if (!served[c])
            ares_process_fd(chs[c], ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    return true;
}

void caa_dns_run(ares_channel *chs, size_t nch, const size_t *outstanding, long long deadline)
{
    while (*outstanding > 0 && step(chs, nch, deadline))
        ;
}

struct caa_dns_batch {
    size_t inflight;
    struct caa_dns_waves *w;
};

/* Every answer passes here on its way to the job's callback. */
static void on_job_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct caa_dns_job *job = arg;
    job->batch->inflight--;
    if (job->wave > job->batch->w->answered_wave)
        job->batch->w->answered_wave = job->wave;
    /* c-ares hands over a TC answer only from TCP (it re-asks a truncated UDP
     * one over TCP): the set is larger than a DNS message can hold, and part
     * of it must never be judged as the whole (spec §3). */
    if (status == ARES_SUCCESS && abuf != NULL && alen >= CAA_DNS_HEADER_LEN &&
        (abuf[2] & 0x02) != 0) {
        status = ARES_EBADRESP;
        abuf = NULL;
        alen = 0;
    }
    job->cb(job->arg, status, timeouts, abuf, alen);
}

size_t caa_dns_send_all(ares_channel ch, struct caa_dns_job *jobs, size_t n, unsigned query_ms,
                        size_t window, struct caa_dns_waves *w)
{
    struct caa_dns_batch batch = {.inflight = 0, .w = w};
    size_t next = 0, sent = 0;
    long long last_sent = caa_dns_now_ms();

    if (window < 1)
        window = 1;
    if (window > CAA_DNS_WAVE_MAX)
        window = CAA_DNS_WAVE_MAX;
    for (;;) {
        while (batch.inflight < window && next < n) {
            struct caa_dns_job *job = &jobs[next++];
            unsigned char *q = NULL;
            int qlen = 0;
            int status = ares_create_query(job->name, CAA_DNS_CLASS_IN, (int)job->type, 0, job->rd,
                                           &q, &qlen, CAA_DNS_EDNS_UDP_SIZE);
            if (status != ARES_SUCCESS) {
                job->cb(job->arg, status, 0, NULL, 0); /* a name c-ares cannot encode */
                continue;
            }
            job->batch = &batch;
            /* Sent after answers of wave k came back: one round trip later. */
            job->wave = w->answered_wave + 1;
            if (job->wave > w->waves)
                w->waves = job->wave;
            batch.inflight++;
            sent++;
            last_sent = caa_dns_now_ms();
            /* c-ares starts this query's time-outs now; it may call back at once. */
            ares_send(ch, q, qlen, on_job_done, job);
            ares_free_string(q);
        }
        if (batch.inflight == 0)
            break;
        if (!step(&ch, 1, last_sent + (long long)query_ms + 250)) {
            /* The cancelled callbacks have run; nothing more is sent. */
            for (; next < n; next++)
                jobs[next].cb(jobs[next].arg, ARES_ECANCELLED, 0, NULL, 0);
            break;
        }
    }
    w->sent += sent;
    return sent;
}

/* Move to the first section, from the current one, that still has records. */
static void settle(struct caa_dns_walk *w)
{
    while (w->section != CAA_DNS_END && w->left[w->section] == 0)
        w->section++;
}

int caa_dns_walk_start(struct caa_dns_walk *w, const unsigned char *abuf, int alen)
{
    memset(w, 0, sizeof *w);
    w->section = CAA_DNS_END;
    if (abuf == NULL || alen < CAA_DNS_HEADER_LEN)
        return -1;
    w->abuf = abuf;
    w->alen = alen;
    w->end = abuf + alen;
    w->rcode = abuf[3] & 0x0F;
    w->aa = (abuf[2] & 0x04) != 0;
    unsigned qdcount = caa_dns_read16(abuf + 4);
    w->left[CAA_DNS_ANSWER] = caa_dns_read16(abuf + 6);
    w->left[CAA_DNS_AUTHORITY] = caa_dns_read16(abuf + 8);
    w->left[CAA_DNS_ADDITIONAL] = caa_dns_read16(abuf + 10);

    const unsigned char *p = abuf + CAA_DNS_HEADER_LEN;
    char name[CAA_NAME_MAX + 1];
    for (unsigned i = 0; i < qdcount; i++) {
        if (caa_dns_expand_name(p, abuf, alen, name, &p) != 0 || w->end - p < 4)
            return -1;
        p += 4; /* type, class */
    }
    w->p = p;
    w->section = CAA_DNS_ANSWER;
    settle(w);
    return 0;
}

int caa_dns_walk_next(struct caa_dns_walk *w, struct caa_dns_rr *rr)
{
    if (w->section == CAA_DNS_END)
        return 0;
    const unsigned char *p;
    if (caa_dns_expand_name(w->p, w->abuf, w->alen, rr->owner, &p) != 0 || w->end - p < 10)
        goto bad;
    rr->type = caa_dns_read16(p);
    rr->rrclass = caa_dns_read16(p + 2);
    rr->rdlen = caa_dns_read16(p + 8); /* after the 32-bit TTL */
    p += 10;
    if ((size_t)(w->end - p) < rr->rdlen)
        goto bad;
    rr->rdata = p;
    rr->section = w->section;
    w->p = p + rr->rdlen;
    w->left[w->section]--;
    settle(w);
    return 1;
bad:
    w->section = CAA_DNS_END;
    return -1;
}

int caa_dns_aliases_add(struct caa_dns_aliases *al, const struct caa_dns_walk *w,
                        const struct caa_dns_rr *rr)
{
    if (al->n >= CAA_DNS_CNAME_HOPS_MAX)
        return 0;
    const unsigned char *after;
    memcpy(al->a[al->n].owner, rr->owner, sizeof rr->owner);
    if (caa_dns_expand_name(rr->rdata, w->abuf, w->alen, al->a[al->n].target, &after) != 0)
        return -1;
    al->n++;
    return 0;
}

const char *caa_dns_aliases_follow(const struct caa_dns_aliases *al, const char *name)
{
    const char *cur = name;
    for (size_t hop = 0; hop < CAA_DNS_CNAME_HOPS_MAX; hop++) {
        const char *next = NULL;
        for (size_t a = 0; a < al->n && next == NULL; a++)
            if (strcasecmp(al->a[a].owner, cur) == 0)
                next = al->a[a].target;
        if (next == NULL)
            break;
        cur = next;
    }
    return cur;
}

enum cp_code caa_dns_add_caa(struct caa_record **records, size_t *n, const unsigned char *rd,
                             size_t rdlen)
{
    /* RFC 8659 §4.1: flags (1 octet), tag length (1 octet), tag, value. */
    if (rdlen < 2 || (size_t)rd[1] > rdlen - 2)
        return CP_EPROTO;
    size_t taglen = rd[1];
    size_t vlen = rdlen - 2 - taglen;

    struct caa_record *grown = realloc(*records, (*n + 1) * sizeof *grown);
    if (grown == NULL)
        return CP_ENOMEM;
    *records = grown;
    struct caa_record *r = &grown[*n];
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
    r->tag_len = taglen;
    memcpy(r->value, rd + 2 + taglen, vlen);
    r->value[vlen] = '\0';
    r->value_len = vlen;
    (*n)++;
    return CP_OK;
}

int caa_dns_keep_answer(int status, const unsigned char *abuf, int alen, unsigned char **buf,
                        int *len)
{
    if (status != ARES_SUCCESS)
        return status;
    if (abuf == NULL || alen < CAA_DNS_HEADER_LEN)
        return ARES_EBADRESP;
    if ((*buf = malloc((size_t)alen)) == NULL)
        return ARES_ENOMEM;
    memcpy(*buf, abuf, (size_t)alen);
    *len = alen;
    return ARES_SUCCESS;
}

void caa_dns_lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

int caa_dns_ns_names(const unsigned char *abuf, int alen, const char *zone,
                     char (*names)[CAA_NAME_MAX + 1], size_t max)
{
    struct caa_dns_walk w;
    struct caa_dns_rr rr;
    size_t n = 0;
    if (caa_dns_walk_start(&w, abuf, alen) != 0)
        return -1;
    while (w.section == CAA_DNS_ANSWER) {
        const unsigned char *after;
        char host[CAA_NAME_MAX + 1];
        if (caa_dns_walk_next(&w, &rr) != 1)
            return -1;
        if (rr.rrclass != CAA_DNS_CLASS_IN || rr.type != CAA_DNS_TYPE_NS ||
            strcasecmp(rr.owner, zone) != 0)
            continue;
        if (caa_dns_expand_name(rr.rdata, w.abuf, w.alen, host, &after) != 0)
            return -1;
        caa_dns_lower(host);
        bool dup = false;
        for (size_t i = 0; i < n && i < max && !dup; i++)
            dup = strcmp(names[i], host) == 0;
        if (dup)
            continue;
        if (n < max)
            memcpy(names[n], host, sizeof host);
        n++;
    }
    return n > (size_t)INT32_MAX ? INT32_MAX : (int)n;
}

/* ------------------------------------------------ Extended DNS Errors */

int caa_dns_find_ede(const unsigned char *abuf, int alen, unsigned *code,
                     const unsigned char **text, size_t *text_len)
{
    struct caa_dns_walk w;
    struct caa_dns_rr rr;

    *code = 0;
    *text = NULL;
    *text_len = 0;
    if (caa_dns_walk_start(&w, abuf, alen) != 0)
        return -1;
    for (;;) {
        int got = caa_dns_walk_next(&w, &rr);
        if (got < 0)
            return -1;
        if (got == 0)
            return 0; /* no OPT record */
        if (rr.section == CAA_DNS_ADDITIONAL && rr.type == CAA_DNS_TYPE_OPT)
            break;
    }
    /* RFC 6891 §6.1.1 allows one OPT record; a second one is not looked at. */
    const unsigned char *p = rr.rdata, *end = rr.rdata + rr.rdlen;
    while (end - p >= 4) {
        unsigned opt = caa_dns_read16(p);
        size_t optlen = caa_dns_read16(p + 2);
        p += 4;
        if ((size_t)(end - p) < optlen)
            return 0; /* the option runs past its record */
        if (opt == CAA_DNS_EDNS_OPT_EDE) {
            /* RFC 8914 §2: a 16-bit INFO-CODE, then EXTRA-TEXT. */
            if (optlen < 2)
                return 0;
            *code = caa_dns_read16(p);
            if (optlen > 2) {
                *text = p + 2;
                *text_len = optlen - 2;
            }
            return 1;
        }
        p += optlen;
    }
    return 0; /* no EDE option (or a few stray bytes after the last one) */
}

/* The length of the well-formed UTF-8 sequence at `s` (RFC 3629 §4), or 0. */
static size_t utf8_seq_len(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* bounds of the second byte */

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong below U+0800 */
        else if (c == 0xED)
            hi = 0x9F; /* U+D800-U+DFFF are surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong below U+10000 */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0; /* a continuation byte, C0/C1 (always overlong) or F5-FF */
    }
    if (left < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    }
    return n;
}

size_t caa_dns_utf8_clean(const unsigned char *in, size_t len, char *out, size_t size)
{
    static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
    size_t o = 0, i = 0;

    if (size == 0)
        return 0;
    while (i < len) {
        size_t n = in[i] == 0 ? 0 : utf8_seq_len(in + i, len - i);
        const char *src = n > 0 ? (const char *)in + i : replacement;
        size_t outlen = n > 0 ? n : 3;
        if (outlen >= size - o)
            break; /* keep room for the NUL; never split a character */
        memcpy(out + o, src, outlen);
        o += outlen;
        i += n > 0 ? n : 1;
    }
    out[o] = '\0';
    return o;
}

void caa_dns_lookup_ede(struct caa_lookup *l, const unsigned char *abuf, int alen)
{
    unsigned code;
    const unsigned char *text;
    size_t text_len;

    l->has_ede = caa_dns_find_ede(abuf, alen, &code, &text, &text_len) == 1;
    l->ede_code = l->has_ede ? code : 0;
    l->ede_text[0] = '\0';
    if (l->has_ede && text_len > 0)
        (void)caa_dns_utf8_clean(text, text_len, l->ede_text, sizeof l->ede_text);
}
