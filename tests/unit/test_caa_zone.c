/* tests/unit/test_caa_zone.c - caa/zone.c: reading TXT and SOA answers built by
 * hand, and caa_txt_wait() against small responders on 127.0.0.1. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "caa/caa.h"
#include "caa/dns_int.h"
#include "tests/unit/fixture.h"

/* ------------------------------------------------------ building answers */

struct msg {
    unsigned char b[4096];
    size_t len;
};

static void put8(struct msg *m, unsigned v)
{
    assert_true(m->len < sizeof m->b);
    m->b[m->len++] = (unsigned char)v;
}

static void put16(struct msg *m, unsigned v)
{
    put8(m, v >> 8);
    put8(m, v & 0xFF);
}

static void put_name(struct msg *m, const char *name)
{
    while (*name) {
        size_t n = strcspn(name, ".");
        put8(m, (unsigned)n);
        for (size_t i = 0; i < n; i++)
            put8(m, (unsigned char)name[i]);
        name += n + (name[n] == '.');
    }
    put8(m, 0);
}

/* Header: QR set, AA as given, RCODE; counts filled in by the RR helpers. */
static void start(struct msg *m, bool aa, int rcode, const char *qname, unsigned qtype)
{
    m->len = 0;
    put16(m, 0x1234);
    put8(m, 0x80 | (aa ? 0x04 : 0));
    put8(m, (unsigned)rcode);
    put16(m, 1); /* qdcount */
    put16(m, 0);
    put16(m, 0);
    put16(m, 0);
    put_name(m, qname);
    put16(m, qtype);
    put16(m, CAA_DNS_CLASS_IN);
}

static void count(struct msg *m, enum caa_dns_section s)
{
    size_t at = 6 + 2 * (size_t)s;
    unsigned v = caa_dns_read16(m->b + at) + 1;
    m->b[at] = (unsigned char)(v >> 8);
    m->b[at + 1] = (unsigned char)v;
}

/* An RR header; owner NULL means a pointer to the question name (offset 12). */
static size_t rr_head(struct msg *m, enum caa_dns_section s, const char *owner, unsigned type)
{
    count(m, s);
    if (owner == NULL)
        put16(m, 0xC00C);
    else
        put_name(m, owner);
    put16(m, type);
    put16(m, CAA_DNS_CLASS_IN);
    put16(m, 0);
    put16(m, 60); /* TTL */
    size_t rdlen_at = m->len;
    put16(m, 0);
    return rdlen_at;
}

static void rr_end(struct msg *m, size_t rdlen_at)
{
    size_t rdlen = m->len - rdlen_at - 2;
    m->b[rdlen_at] = (unsigned char)(rdlen >> 8);
    m->b[rdlen_at + 1] = (unsigned char)rdlen;
}

/* A TXT record of the character-strings given (NULL-terminated). */
static void txt(struct msg *m, const char *owner, ...)
{
    va_list ap;
    size_t at = rr_head(m, CAA_DNS_ANSWER, owner, CAA_DNS_TYPE_TXT);
    va_start(ap, owner);
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;) {
        put8(m, (unsigned)strlen(s));
        for (; *s; s++)
            put8(m, (unsigned char)*s);
    }
    va_end(ap);
    rr_end(m, at);
}

static void soa(struct msg *m, enum caa_dns_section s, const char *owner)
{
    size_t at = rr_head(m, s, owner, CAA_DNS_TYPE_SOA);
    put_name(m, "ns.example");
    put_name(m, "hostmaster.example");
    for (int i = 0; i < 10; i++)
        put16(m, 1); /* serial, refresh, retry, expire, minimum */
    rr_end(m, at);
}

static void cname(struct msg *m, const char *owner, const char *target)
{
    size_t at = rr_head(m, CAA_DNS_ANSWER, owner, CAA_DNS_TYPE_CNAME);
    put_name(m, target);
    rr_end(m, at);
}

/* The first `len` bytes in a heap block of exactly that size: ASan sees any
 * read past the end. */
static unsigned char *exactly(const struct msg *m, size_t len)
{
    unsigned char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, m->b, len);
    return copy;
}

#define NAME  "_acme-challenge.www.example.test"
#define VALUE "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"

static int read_txt(const struct msg *m, const char *value, struct caa_txt_seen *seen)
{
    return caa_zone_read_txt(m->b, (int)m->len, NAME, value, seen);
}

/* ------------------------------------------------------------ TXT answers */

static void txt_value_served(void **state)
{
    (void)state;
    struct msg m;
    struct caa_txt_seen seen;
    start(&m, true, 0, NAME, CAA_DNS_TYPE_TXT);
    txt(&m, NULL, VALUE, NULL);
    assert_int_equal(read_txt(&m, VALUE, &seen), 0);
    assert_true(seen.served);
    assert_true(seen.aa);
    assert_int_equal(seen.rcode, 0);
    assert_int_equal(seen.nvalues, 1);
    assert_string_equal(seen.values, "\"" VALUE "\"");
}

static void txt_strings_are_joined(void **state)
{
    (void)state;
    struct msg m;
    struct caa_txt_seen seen;
    start(&m, true, 0, NAME, CAA_DNS_TYPE_TXT);
    txt(&m, NULL, "LoqXcYV8q5ONbJQxbmR7", "SCTNo3tiAXDfowyjxAjEuX0", NULL);
    assert_int_equal(read_txt(&m, VALUE, &seen), 0);
    assert_true(seen.served);
    /* An empty string in between changes nothing. */
    start(&m, true, 0, NAME, CAA_DNS_TYPE_TXT);
    txt(&m, NULL, "LoqXcYV8q5ONbJQxbmR7", "", "SCTNo3tiAXDfowyjxAjEuX0", NULL);
    assert_int_equal(read_txt(&m, VALUE, &seen), 0);
    assert_true(seen.served);
}

static void txt_value_among_others(void **state)
{
    (void)state;
    struct msg m;
    struct caa_txt_seen seen;
    /* A wildcard and its base name: two values at one name, and a stray one. */
    start(&m, true, 0, NAME, CAA_DNS_TYPE_TXT);
    txt(&m, NULL, "n5-6_Kk1eLZyhTmOaW0nLn4Z9bX7lq9Yx3wQvR2sT8c", NULL);
    txt(&m, "_ACME-Challenge.WWW.example.test", VALUE, NULL); /* case differs */
    txt(&m, NULL, "v=spf1 -all", NULL);
    assert_int_equal(read_txt(&m, VALUE, &seen), 0);
    assert_true(seen.served);
    assert_int_equal(seen.nvalues, 3);
}

static void txt_exact_comparison(void **state)
{
    (void)state;
    struct msg m;
    struct caa_txt_seen seen;
    start(&m, true, 0, NAME, CAA_DNS_TYPE_TXT);
    txt(&m, NULL, VALUE "x", NULL);
    txt(&m, NULL, "loqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", NULL); /* case matters */
    txt(&m, NULL, "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX", NULL);  /* one short */
    assert_int_equal(read_txt(&m, VALUE, &seen), 0);
    assert_false(seen.served);
    assert_int_equal(seen.nvalues, 3);
}

static void txt_other_owners_and_types_ignored(void **state)
{
    (void)state;
    struct msg m;
    struct caa_txt_seen seen;
    start(&m, true, 0, NAME, CAA_DNS_TYPE_TXT);
    txt(&m, "_acme-challenge.example.test", VALUE, NULL);
    txt(&m, "www.example.test", VALUE, NULL);
    cname(&m, "x.example.test", "y.example.test");
    soa(&m, CAA_DNS_AUTHORITY, "example.test");
    /* A TXT record in the authority section is no answer. */
    size_t at = rr_head(&m, CAA_DNS_AUTHORITY, NULL, CAA_DNS_TYPE_TXT);
    put8(&m, (unsigned)strlen(VALUE));
    for (const char *s = VALUE; *s; s++)
        put8(&m, (unsigned char)*s);
    rr_end(&m, at);
    assert_int_equal(read_txt(&m, VALUE, &seen), 0);
    assert_false(seen.served);
    assert_int_equal(seen.nvalues, 0);
    assert_string_equal(seen.values, "");
}

static void txt_header_flags(void **state)
{
    (void)state;
    struct msg m;
    struct caa_txt_seen seen;
    start(&m, false, 0, NAME, CAA_DNS_TYPE_TXT);
    txt(&m, NULL, VALUE, NULL);
    assert_int_equal(read_txt(&m, VALUE, &seen), 0);
    assert_false(seen.aa); /* the caller does not count it */
    start(&m, true, 3, NAME, CAA_DNS_TYPE_TXT);
    soa(&m, CAA_DNS_AUTHORITY, "example.test");
    assert_int_equal(read_txt(&m, VALUE, &seen), 0);
    assert_int_equal(seen.rcode, 3);
    assert_int_equal(seen.nvalues, 0);
}

static void txt_values_quoted_for_messages(void **state)
{
    (void)state;
    struct msg m;
    struct caa_txt_seen seen;
    char longv[101];
    memset(longv, 'a', 100);
    longv[100] = '\0';
    start(&m, true, 0, NAME, CAA_DNS_TYPE_TXT);
    txt(&m, NULL, "say \"hi\"\x01", NULL);
    txt(&m, NULL, longv, NULL);
    assert_int_equal(read_txt(&m, VALUE, &seen), 0);
    assert_string_equal(seen.values, "\"say \\\"hi\\\"\\001\", "
                                     "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\"");
    assert_false(seen.values_short);
    /* Many values: the list is cut and says so. */
    start(&m, true, 0, NAME, CAA_DNS_TYPE_TXT);
    for (int i = 0; i < 10; i++)
        txt(&m, NULL, longv, NULL);
    assert_int_equal(read_txt(&m, VALUE, &seen), 0);
    assert_int_equal(seen.nvalues, 10);
    assert_true(seen.values_short);
    assert_true(strlen(seen.values) < sizeof seen.values);
}

static void txt_malformed(void **state)
{
    (void)state;
    struct msg m;
    struct caa_txt_seen seen;

    /* Short header. */
    start(&m, true, 0, NAME, CAA_DNS_TYPE_TXT);
    assert_int_equal(caa_zone_read_txt(m.b, 11, NAME, VALUE, &seen), -1);
    assert_int_equal(caa_zone_read_txt(NULL, 0, NAME, VALUE, &seen), -1);

    /* A character-string longer than the RDATA. */
    start(&m, true, 0, NAME, CAA_DNS_TYPE_TXT);
    size_t at = rr_head(&m, CAA_DNS_ANSWER, NULL, CAA_DNS_TYPE_TXT);
    put8(&m, 10);
    put8(&m, 'a');
    rr_end(&m, at);
    assert_int_equal(read_txt(&m, VALUE, &seen), -1);

    /* Empty RDATA: a TXT record holds one or more strings. */
    start(&m, true, 0, NAME, CAA_DNS_TYPE_TXT);
    at = rr_head(&m, CAA_DNS_ANSWER, NULL, CAA_DNS_TYPE_TXT);
    rr_end(&m, at);
    assert_int_equal(read_txt(&m, VALUE, &seen), -1);

    /* Every truncation of a good answer is refused, never read past. */
    start(&m, true, 0, NAME, CAA_DNS_TYPE_TXT);
    txt(&m, NULL, VALUE, NULL);
    txt(&m, NULL, "second", NULL);
    size_t full = m.len;
    for (size_t len = 0; len < full; len++) {
        unsigned char *copy = exactly(&m, len);
        int rc = caa_zone_read_txt(copy, (int)len, NAME, VALUE, &seen);
        free(copy);
        if (rc != -1)
            fail_msg("truncated to %zu of %zu bytes: not refused", len, full);
    }

    /* A compression pointer loop in the answer's owner name. */
    start(&m, true, 0, NAME, CAA_DNS_TYPE_TXT);
    count(&m, CAA_DNS_ANSWER);
    put16(&m, 0xC000 | (unsigned)m.len); /* points at itself */
    assert_int_equal(read_txt(&m, VALUE, &seen), -1);

    /* Counts larger than what follows. */
    start(&m, true, 0, NAME, CAA_DNS_TYPE_TXT);
    txt(&m, NULL, VALUE, NULL);
    m.b[7] = 200;
    assert_int_equal(read_txt(&m, VALUE, &seen), -1);
}

/* ------------------------------------------------------------ SOA answers */

static void soa_apex(void **state)
{
    (void)state;
    struct msg m;
    char target[CAA_NAME_MAX + 1], zone[CAA_NAME_MAX + 1];
    start(&m, false, 0, "example.test", CAA_DNS_TYPE_SOA);
    soa(&m, CAA_DNS_ANSWER, NULL);
    assert_int_equal(caa_zone_from_soa_answer(m.b, (int)m.len, "example.test", target, zone), 1);
    assert_string_equal(zone, "example.test");
    assert_string_equal(target, "example.test");
}

static void soa_negative_answers(void **state)
{
    (void)state;
    struct msg m;
    char target[CAA_NAME_MAX + 1], zone[CAA_NAME_MAX + 1];
    /* NXDOMAIN and NODATA carry the zone's SOA in the authority section. */
    for (int rcode = 0; rcode <= 3; rcode += 3) {
        start(&m, false, rcode, NAME, CAA_DNS_TYPE_SOA);
        soa(&m, CAA_DNS_AUTHORITY, "Example.TEST");
        assert_int_equal(caa_zone_from_soa_answer(m.b, (int)m.len, NAME, target, zone), 1);
        assert_string_equal(zone, "example.test"); /* lower-cased */
        assert_string_equal(target, NAME);
    }
    /* An SOA that does not hold the name is no answer; neither is a suffix
     * that is no parent ("ample.test"). */
    start(&m, false, 3, NAME, CAA_DNS_TYPE_SOA);
    soa(&m, CAA_DNS_AUTHORITY, "other.test");
    soa(&m, CAA_DNS_AUTHORITY, "ample.test");
    assert_int_equal(caa_zone_from_soa_answer(m.b, (int)m.len, NAME, target, zone), 0);
    assert_string_equal(zone, "");
    /* No authority section at all (a resolver that strips it). */
    start(&m, false, 3, NAME, CAA_DNS_TYPE_SOA);
    assert_int_equal(caa_zone_from_soa_answer(m.b, (int)m.len, NAME, target, zone), 0);
    /* Of two SOAs holding the name, the longest. */
    start(&m, false, 3, NAME, CAA_DNS_TYPE_SOA);
    soa(&m, CAA_DNS_AUTHORITY, "test");
    soa(&m, CAA_DNS_AUTHORITY, "example.test");
    soa(&m, CAA_DNS_AUTHORITY, "");
    assert_int_equal(caa_zone_from_soa_answer(m.b, (int)m.len, NAME, target, zone), 1);
    assert_string_equal(zone, "example.test");
}

static void soa_through_cname(void **state)
{
    (void)state;
    struct msg m;
    char target[CAA_NAME_MAX + 1], zone[CAA_NAME_MAX + 1];
    /* _acme-challenge delegated by CNAME to a validation zone. */
    start(&m, false, 0, NAME, CAA_DNS_TYPE_SOA);
    cname(&m, NULL, "hop.example.test");
    cname(&m, "hop.example.test", "x1.acme.other.test");
    soa(&m, CAA_DNS_AUTHORITY, "acme.other.test");
    assert_int_equal(caa_zone_from_soa_answer(m.b, (int)m.len, NAME, target, zone), 1);
    assert_string_equal(target, "x1.acme.other.test");
    assert_string_equal(zone, "acme.other.test");
    /* The SOA of the alias's own zone does not hold the target. */
    start(&m, false, 0, NAME, CAA_DNS_TYPE_SOA);
    cname(&m, NULL, "x1.acme.other.test");
    soa(&m, CAA_DNS_AUTHORITY, "example.test");
    assert_int_equal(caa_zone_from_soa_answer(m.b, (int)m.len, NAME, target, zone), 0);
    assert_string_equal(target, "x1.acme.other.test");
    /* A loop ends at the bound. */
    start(&m, false, 0, NAME, CAA_DNS_TYPE_SOA);
    cname(&m, NULL, "a.example.test");
    cname(&m, "a.example.test", NAME);
    assert_int_equal(caa_zone_from_soa_answer(m.b, (int)m.len, NAME, target, zone), 0);
}

static void soa_malformed(void **state)
{
    (void)state;
    struct msg m;
    char target[CAA_NAME_MAX + 1], zone[CAA_NAME_MAX + 1];
    start(&m, false, 3, NAME, CAA_DNS_TYPE_SOA);
    soa(&m, CAA_DNS_AUTHORITY, "example.test");
    size_t full = m.len;
    for (size_t len = 0; len < full; len++) {
        unsigned char *copy = exactly(&m, len);
        int rc = caa_zone_from_soa_answer(copy, (int)len, NAME, target, zone);
        free(copy);
        if (rc != -1)
            fail_msg("truncated to %zu of %zu bytes: not refused", len, full);
    }
}

/* --------------------------------------------- caa_txt_wait() on loopback */

/* A UDP responder on 127.0.0.1 answering TXT queries the way it is told. */
struct responder {
    int fd;
    unsigned port;
    pthread_t thread;
    pthread_mutex_t lock;
    bool stop;
    /* behaviour, under lock */
    bool drop, aa;
    int rcode;
    const char *values[4];
    unsigned queries;
};

static void *respond(void *arg)
{
    struct responder *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        bool stop = r->stop;
        pthread_mutex_unlock(&r->lock);
        if (stop)
            return NULL;
        unsigned char q[512];
        struct sockaddr_in from;
        char name[CAA_NAME_MAX + 1];
        size_t qend;
        if (fixture_dns_question(r->fd, q, &from, name, &qend) == 0)
            continue;

        pthread_mutex_lock(&r->lock);
        r->queries++;
        bool rd = (q[2] & 0x01) != 0;
        struct msg m;
        m.len = 0;
        put16(&m, caa_dns_read16(q)); /* the query's ID */
        put8(&m, 0x80 | (r->aa ? 0x04 : 0) | (rd ? 0x01 : 0));
        /* An authoritative server refuses recursion: the test wants RD off. */
        put8(&m, rd ? 5 : (unsigned)r->rcode);
        put16(&m, 1);
        put16(&m, 0);
        put16(&m, 0);
        put16(&m, 0);
        for (size_t i = CAA_DNS_HEADER_LEN; i < qend; i++)
            put8(&m, q[i]);
        for (size_t i = 0; !rd && i < 4 && r->values[i] != NULL; i++)
            txt(&m, NULL, r->values[i], NULL);
        bool drop = r->drop;
        pthread_mutex_unlock(&r->lock);
        if (!drop)
            sendto(r->fd, m.b, m.len, 0, (struct sockaddr *)&from, sizeof from);
    }
}

static void responder_start(struct responder *r, unsigned port)
{
    memset(r, 0, sizeof *r);
    r->aa = true;
    r->fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(r->fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(r->fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
        close(r->fd);
        r->fd = -1;
        return;
    }
    socklen_t len = sizeof sin;
    getsockname(r->fd, (struct sockaddr *)&sin, &len);
    r->port = ntohs(sin.sin_port);
    pthread_mutex_init(&r->lock, NULL);
    assert_int_equal(pthread_create(&r->thread, NULL, respond, r), 0);
}

static void responder_stop(struct responder *r)
{
    pthread_mutex_lock(&r->lock);
    r->stop = true;
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->lock);
    close(r->fd);
}

/* caa_txt_wait() has one port for all servers: two responders share one port
 * on 127.0.0.1 and 127.0.0.2 (all of 127/8 is loopback on Linux). */
struct pair {
    struct responder a, b;
    struct caa_ns ns[2];
};

static int pair_setup(void **state)
{
    static struct pair p;
    for (int attempt = 0; attempt < 20; attempt++) {
        responder_start(&p.a, 0);
        struct responder *b = &p.b;
        memset(b, 0, sizeof *b);
        b->aa = true;
        b->fd = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p.a.port)};
        inet_pton(AF_INET, "127.0.0.2", &sin.sin_addr);
        if (b->fd >= 0 && bind(b->fd, (struct sockaddr *)&sin, sizeof sin) == 0) {
            b->port = p.a.port;
            pthread_mutex_init(&b->lock, NULL);
            assert_int_equal(pthread_create(&b->thread, NULL, respond, b), 0);
            snprintf(p.ns[0].name, sizeof p.ns[0].name, "ns1.example.test");
            snprintf(p.ns[0].addr, sizeof p.ns[0].addr, "127.0.0.1");
            snprintf(p.ns[1].name, sizeof p.ns[1].name, "ns2.example.test");
            snprintf(p.ns[1].addr, sizeof p.ns[1].addr, "127.0.0.2");
            *state = &p;
            return 0;
        }
        if (b->fd >= 0)
            close(b->fd);
        responder_stop(&p.a);
    }
    return -1;
}

static int pair_teardown(void **state)
{
    struct pair *p = *state;
    responder_stop(&p->a);
    responder_stop(&p->b);
    return 0;
}

static void serve(struct responder *r, bool drop, bool aa, int rcode, const char *v1,
                  const char *v2)
{
    pthread_mutex_lock(&r->lock);
    r->drop = drop;
    r->aa = aa;
    r->rcode = rcode;
    r->values[0] = v1;
    r->values[1] = v1 != NULL ? v2 : NULL;
    r->values[2] = NULL;
    r->queries = 0;
    pthread_mutex_unlock(&r->lock);
}

static unsigned queries(struct responder *r)
{
    pthread_mutex_lock(&r->lock);
    unsigned n = r->queries;
    pthread_mutex_unlock(&r->lock);
    return n;
}

static void wait_all_serve(void **state)
{
    struct pair *p = *state;
    struct cp_err err = {0};
    serve(&p->a, false, true, 0, VALUE, NULL);
    serve(&p->b, false, true, 0, "other", VALUE);
    assert_int_equal(caa_txt_wait(p->ns, 2, p->a.port, NAME, VALUE, 2000, 100, &err), CP_OK);
    /* One round was enough, with RD off (the responders refuse RD). */
    assert_int_equal(queries(&p->a), 1);
    assert_int_equal(queries(&p->b), 1);
}

static void wait_names_the_laggard(void **state)
{
    struct pair *p = *state;
    struct cp_err err = {0};
    serve(&p->a, false, true, 0, VALUE, NULL);
    serve(&p->b, false, true, 0, "old-value", NULL);
    assert_int_equal(caa_txt_wait(p->ns, 2, p->a.port, NAME, VALUE, 600, 100, &err), CP_ETIMEOUT);
    assert_int_equal(err.code, CP_ETIMEOUT);
    if (strstr(err.msg, "not served by 1 of 2 nameserver addresses after 0.6 s: "
                        "ns2.example.test (127.0.0.2): only \"old-value\"") == NULL)
        fail_msg("%s", err.msg);
    assert_null(strstr(err.msg, "ns1.example.test"));
    assert_non_null(strstr(err.msg, VALUE));
    assert_non_null(strstr(err.msg, NAME));
    /* The server that served it was asked once; the other every round. */
    assert_int_equal(queries(&p->a), 1);
    assert_true(queries(&p->b) >= 3);
}

static void wait_describes_each_failure(void **state)
{
    struct pair *p = *state;
    struct cp_err err = {0};
    serve(&p->a, false, false, 0, VALUE, NULL); /* not authoritative */
    serve(&p->b, false, true, 2, NULL, NULL);   /* SERVFAIL */
    assert_int_equal(caa_txt_wait(p->ns, 2, p->a.port, NAME, VALUE, 300, 100, &err), CP_ETIMEOUT);
    assert_non_null(strstr(err.msg, "ns1.example.test (127.0.0.1): answered without authority"));
    assert_non_null(strstr(err.msg, "; ns2.example.test (127.0.0.2): answered SERVFAIL"));

    serve(&p->a, true, true, 0, VALUE, NULL); /* silent */
    serve(&p->b, false, true, 0, NULL, NULL); /* NODATA */
    long long t0 = caa_dns_now_ms();
    assert_int_equal(caa_txt_wait(p->ns, 2, p->a.port, NAME, VALUE, 300, 100, &err), CP_ETIMEOUT);
    long long took = caa_dns_now_ms() - t0;
    assert_non_null(strstr(err.msg, "ns1.example.test (127.0.0.1): no answer"));
    assert_non_null(strstr(err.msg, "ns2.example.test (127.0.0.2): no TXT record at the name"));
    /* Bounded: the time-out plus at most one round of queries (2 s). */
    assert_true(took >= 300);
    assert_true(took < 300 + 2000 + 500);
}

/*
 * A recursive resolver for the zone dyn.example that leaves the authority
 * section out of negative answers (so the zone is found by asking for the
 * SOA of each parent), with two nameservers, one of them listed twice and
 * one sharing its address with another name.
 */
static void *resolve_like(void *arg)
{
    struct responder *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        bool stop = r->stop;
        pthread_mutex_unlock(&r->lock);
        if (stop)
            return NULL;
        unsigned char q[512];
        struct sockaddr_in from;
        char qname[CAA_NAME_MAX + 1];
        size_t qend;
        if (fixture_dns_question(r->fd, q, &from, qname, &qend) == 0)
            continue;
        unsigned qtype = caa_dns_read16(q + qend - 4); /* then the class */
        bool rd = (q[2] & 0x01) != 0;
        struct msg m;
        m.len = 0;
        put16(&m, caa_dns_read16(q));
        put8(&m, 0x80 | (rd ? 0x01 : 0));
        bool apex = strcmp(qname, "dyn.example") == 0;
        bool known = apex || strcmp(qname, "ns1.dyn.example") == 0 ||
                     strcmp(qname, "ns2.dyn.example") == 0 || strcmp(qname, "example") == 0;
        put8(&m, !rd ? 5 : known ? 0 : 3); /* a resolver wants RD */
        put16(&m, 1);
        put16(&m, 0);
        put16(&m, 0);
        put16(&m, 0);
        for (const unsigned char *b = q + CAA_DNS_HEADER_LEN; b < q + qend; b++)
            put8(&m, *b);
        if (rd && apex && qtype == CAA_DNS_TYPE_SOA) {
            soa(&m, CAA_DNS_ANSWER, NULL);
        } else if (rd && apex && qtype == CAA_DNS_TYPE_NS) {
            const char *hosts[] = {"ns1.dyn.example", "NS2.dyn.example", "ns1.dyn.example",
                                   "ns3.dyn.example"};
            for (size_t i = 0; i < 4; i++) {
                size_t at = rr_head(&m, CAA_DNS_ANSWER, NULL, CAA_DNS_TYPE_NS);
                put_name(&m, hosts[i]);
                rr_end(&m, at);
            }
        } else if (rd && qtype == CAA_DNS_TYPE_A && strncmp(qname, "ns", 2) == 0 && known) {
            size_t at = rr_head(&m, CAA_DNS_ANSWER, NULL, CAA_DNS_TYPE_A);
            put8(&m, 127);
            put8(&m, 0);
            put8(&m, 0);
            put8(&m, qname[2] == '1' ? 1 : 2);
            rr_end(&m, at);
        }
        /* ns3 does not exist (NXDOMAIN): nobody can ask it, it is left out. */
        pthread_mutex_lock(&r->lock);
        r->queries++;
        pthread_mutex_unlock(&r->lock);
        sendto(r->fd, m.b, m.len, 0, (struct sockaddr *)&from, sizeof from);
    }
}

static void zone_servers_without_authority_section(void **state)
{
    (void)state;
    struct responder r;
    memset(&r, 0, sizeof r);
    r.fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(r.fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(r.fd, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t len = sizeof sin;
    getsockname(r.fd, (struct sockaddr *)&sin, &len);
    pthread_mutex_init(&r.lock, NULL);
    assert_int_equal(pthread_create(&r.thread, NULL, resolve_like, &r), 0);

    char server[32], zone[CAA_NAME_MAX + 1], target[CAA_NAME_MAX + 1];
    snprintf(server, sizeof server, "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
    const char *servers[] = {server};
    struct caa_resolver_opts o = {.servers = servers, .nservers = 1, .timeout_ms = 2000};
    struct caa_ns *ns = NULL;
    size_t nns = 0;
    struct cp_err err = {0};
    enum cp_code rc =
        caa_zone_servers(&o, "_acme-challenge.www.dyn.example", zone, target, &ns, &nns, &err);
    if (rc != CP_OK)
        fail_msg("%s", err.msg);
    assert_string_equal(zone, "dyn.example");
    assert_string_equal(target, "_acme-challenge.www.dyn.example");
    assert_int_equal(nns, 2);
    assert_string_equal(ns[0].name, "ns1.dyn.example");
    assert_string_equal(ns[0].addr, "127.0.0.1");
    assert_string_equal(ns[1].name, "ns2.dyn.example"); /* lower-cased */
    assert_string_equal(ns[1].addr, "127.0.0.2");
    free(ns);

    /* A name under no zone the resolver knows. */
    rc = caa_zone_servers(&o, "_acme-challenge.nowhere.invalid", zone, target, &ns, &nns, &err);
    assert_int_equal(rc, CP_ENET);
    assert_non_null(strstr(err.msg, "no SOA record at _acme-challenge.nowhere.invalid or above"));
    assert_null(ns);
    assert_string_equal(zone, "");

    pthread_mutex_lock(&r.lock);
    r.stop = true;
    pthread_mutex_unlock(&r.lock);
    pthread_join(r.thread, NULL);
    pthread_mutex_destroy(&r.lock);
    close(r.fd);

    /* Nobody answers any more: a time-out naming the step. */
    o.timeout_ms = 300;
    rc = caa_zone_servers(&o, "_acme-challenge.www.dyn.example", zone, target, &ns, &nns, &err);
    assert_int_equal(rc, CP_ENET);
    if (strstr(err.msg, "finding the zone of _acme-challenge.www.dyn.example: no answer from the "
                        "resolver to _acme-challenge.www.dyn.example SOA") == NULL)
        fail_msg("%s", err.msg);
}

/* caa_addresses() through the same resolver: an address, NXDOMAIN, a name
 * with no address record, and no answer at all. */
static void addresses_of_a_name(void **state)
{
    (void)state;
    struct responder r;
    memset(&r, 0, sizeof r);
    r.fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(r.fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(r.fd, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t len = sizeof sin;
    getsockname(r.fd, (struct sockaddr *)&sin, &len);
    pthread_mutex_init(&r.lock, NULL);
    assert_int_equal(pthread_create(&r.thread, NULL, resolve_like, &r), 0);

    char server[32];
    snprintf(server, sizeof server, "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
    const char *servers[] = {server};
    struct caa_resolver_opts o = {.servers = servers, .nservers = 1, .timeout_ms = 2000};
    struct caa_ns *addrs = NULL;
    size_t n = 0;
    struct cp_err err = {0};
    enum cp_code rc = caa_addresses(&o, "ns2.dyn.example.", &addrs, &n, &err);
    if (rc != CP_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(n, 1);
    assert_string_equal(addrs[0].addr, "127.0.0.2");
    assert_string_equal(addrs[0].name, "ns2.dyn.example");
    free(addrs);

    rc = caa_addresses(&o, "ns3.dyn.example", &addrs, &n, &err);
    assert_int_equal(rc, CP_ENET);
    assert_null(addrs);
    assert_non_null(strstr(err.msg, "ns3.dyn.example does not exist in DNS"));
    assert_non_null(strstr(err.msg, "NXDOMAIN"));

    rc = caa_addresses(&o, "dyn.example", &addrs, &n, &err); /* only SOA and NS there */
    assert_int_equal(rc, CP_ENET);
    assert_string_equal(err.msg, "dyn.example has no A or AAAA record");

    assert_int_equal(caa_addresses(&o, "", &addrs, &n, &err), CP_EINVAL);

    pthread_mutex_lock(&r.lock);
    r.stop = true;
    pthread_mutex_unlock(&r.lock);
    pthread_join(r.thread, NULL);
    pthread_mutex_destroy(&r.lock);
    close(r.fd);

    o.timeout_ms = 300;
    rc = caa_addresses(&o, "ns1.dyn.example", &addrs, &n, &err);
    assert_int_equal(rc, CP_ENET);
    if (strstr(err.msg, "looking up ns1.dyn.example: no answer from the resolver") == NULL)
        fail_msg("%s", err.msg);
}

static void wait_arguments(void **state)
{
    (void)state;
    struct cp_err err = {0};
    struct caa_ns ns[33];
    memset(ns, 0, sizeof ns);
    snprintf(ns[0].name, sizeof ns[0].name, "ns1.example.test");
    snprintf(ns[0].addr, sizeof ns[0].addr, "ns1.example.test");
    assert_int_equal(caa_txt_wait(ns, 0, 53, NAME, VALUE, 100, 100, &err), CP_EINVAL);
    assert_int_equal(caa_txt_wait(ns, 33, 53, NAME, VALUE, 100, 100, &err), CP_EINVAL);
    assert_int_equal(caa_txt_wait(ns, 1, 53, NAME, VALUE, 100, 100, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "is no IP address"));
    snprintf(ns[0].addr, sizeof ns[0].addr, "127.0.0.1");
    assert_int_equal(caa_txt_wait(ns, 1, 70000, NAME, VALUE, 100, 100, &err), CP_EINVAL);
    assert_int_equal(caa_txt_wait(ns, 1, 53, "", VALUE, 100, 100, &err), CP_EINVAL);
    assert_int_equal(caa_txt_wait(ns, 1, 53, NAME, "", 100, 100, &err), CP_EINVAL);
    char big[300];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(caa_txt_wait(ns, 1, 53, NAME, big, 100, 100, &err), CP_EINVAL);
    assert_int_equal(caa_txt_wait(ns, 1, 53, big, VALUE, 100, 100, &err), CP_EINVAL);
}

static void zone_servers_arguments(void **state)
{
    (void)state;
    struct cp_err err = {0};
    char zone[CAA_NAME_MAX + 1], target[CAA_NAME_MAX + 1];
    struct caa_ns dummy;
    struct caa_ns *ns = &dummy; /* must be reset */
    size_t nns = 7;
    const char *bad[] = {"not-an-ip"};
    struct caa_resolver_opts o = {.servers = bad, .nservers = 1};
    assert_int_equal(caa_zone_servers(&o, NAME, zone, target, &ns, &nns, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "not-an-ip"));
    assert_null(ns);
    assert_int_equal(nns, 0);
    assert_int_equal(caa_zone_servers(&o, "", zone, target, &ns, &nns, &err), CP_EINVAL);
    assert_int_equal(caa_zone_servers(&o, NULL, zone, target, &ns, &nns, &err), CP_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(txt_value_served),
        cmocka_unit_test(txt_strings_are_joined),
        cmocka_unit_test(txt_value_among_others),
        cmocka_unit_test(txt_exact_comparison),
        cmocka_unit_test(txt_other_owners_and_types_ignored),
        cmocka_unit_test(txt_header_flags),
        cmocka_unit_test(txt_values_quoted_for_messages),
        cmocka_unit_test(txt_malformed),
        cmocka_unit_test(soa_apex),
        cmocka_unit_test(soa_negative_answers),
        cmocka_unit_test(soa_through_cname),
        cmocka_unit_test(soa_malformed),
        cmocka_unit_test(wait_arguments),
        cmocka_unit_test(zone_servers_arguments),
    };
    const struct CMUnitTest loopback[] = {
        cmocka_unit_test(zone_servers_without_authority_section),
        cmocka_unit_test(addresses_of_a_name),
        cmocka_unit_test(wait_all_serve),
        cmocka_unit_test(wait_names_the_laggard),
        cmocka_unit_test(wait_describes_each_failure),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return failed + cmocka_run_group_tests(loopback, pair_setup, pair_teardown);
}
