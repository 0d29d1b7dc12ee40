/*
 * caa/dns_int.h - the DNS plumbing shared by caa/resolve.c and caa/zone.c
 * (implemented in caa/dns.c); not part of the public interface (caa/caa.h).
 *
 * c-ares builds the queries (ares_create_query), sends them, retries, falls
 * back to TCP and decompresses names.  What is ours: parsing server strings,
 * opening a channel with the project's flags and time budget, one poll loop
 * that drives one or several channels (the direct queries of caa/zone.c use a
 * channel per nameserver), and a resource-record walker that bounds every read
 * by the answer buffer.  It does not interpret records: callers do.
 *
 * The last section declares the pure parts of caa/zone.c so that the unit tests
 * can feed them hand-built answers.
 */
#ifndef CP_CAA_DNS_INT_H
#define CP_CAA_DNS_INT_H

#include <sys/select.h> /* ares.h uses fd_set */
#include <sys/time.h>
#include <ares.h>
#include <stdbool.h>
#include <stddef.h>

#include "caa/caa.h"

#define CAA_DNS_HEADER_LEN     12
#define CAA_DNS_CLASS_IN       1
#define CAA_DNS_TYPE_A         1
#define CAA_DNS_TYPE_NS        2
#define CAA_DNS_TYPE_CNAME     5
#define CAA_DNS_TYPE_SOA       6
#define CAA_DNS_TYPE_TXT       16
#define CAA_DNS_TYPE_AAAA      28
#define CAA_DNS_TYPE_OPT       41 /* RFC 6891 EDNS pseudo-record */
#define CAA_DNS_TYPE_CAA       257
#define CAA_DNS_RCODE_NOERROR  0
#define CAA_DNS_RCODE_NXDOMAIN 3
#define CAA_DNS_EDNS_UDP_SIZE  1232 /* the DNS flag day 2020 recommendation */
#define CAA_DNS_EDNS_OPT_EDE   15   /* RFC 8914 Extended DNS Error option code */
#define CAA_DNS_CNAME_HOPS_MAX 16   /* more than any sane chain; bounds the walk */
#define CAA_DNS_CHANNELS_MAX   32   /* channels one caa_dns_run() drives */
/* Queries caa_dns_send_all() may have in flight on its channel at once: a
 * bound on fan-out, not a pace.  A batch up to this size goes out as one wave
 * (one round trip); the queries beyond it follow as answers come in.  Half of
 * Unbound's default num-queries-per-thread with libevent (1024) and of BIND's
 * recursive-clients (1000); a resolver with a smaller queue (dnsmasq forwards
 * 150 at a time) loses the excess, which caa/resolve.c sends again at a pace
 * (CAA_DNS_RESEND_WINDOW_MAX). */
#define CAA_DNS_WAVE_MAX 512
/* The most queries in flight when queries lost to a full resolver queue are
 * sent again: 32 keep a single-threaded server busy without more waiting than
 * a try allows unless each answer takes over 100 ms (at the default 10 s
 * budget and 2 tries). */
#define CAA_DNS_RESEND_WINDOW_MAX 32
#define CAA_DNS_RESEND_WINDOW_MIN 4
/* Receive buffer asked for on c-ares's sockets: a wave of 512 answers from a
 * fast resolver arrives nearly at once (the kernel caps it at rmem_max). */
#define CAA_DNS_RCVBUF (1 << 20)

unsigned caa_dns_read16(const unsigned char *p);

/* Append the CAA record in RDATA `rd` (RFC 8659 §4.1) to the array *records
 * of *n; CP_EPROTO when the RDATA is malformed, CP_ENOMEM. */
enum cp_code caa_dns_add_caa(struct caa_record **records, size_t *n, const unsigned char *rd,
                             size_t rdlen);

/* In a c-ares callback: copy a successful answer into *buf (heap, *len
 * bytes); returns the status to keep (ARES_EBADRESP for a short answer,
 * ARES_ENOMEM). */
int caa_dns_keep_answer(int status, const unsigned char *abuf, int alen, unsigned char **buf,
                        int *len);

/* Lower-case `s` in place (ASCII). */
void caa_dns_lower(char *s);

/* The distinct NS names owned by `zone` in an answer's answer section, lower
 * case, in answer order: at most `max` are stored in `names`; returns how
 * many there are (which may exceed `max`), or -1 when the answer is
 * unreadable. */
int caa_dns_ns_names(const unsigned char *abuf, int alen, const char *zone,
                     char (*names)[CAA_NAME_MAX + 1], size_t max);

/* Milliseconds of CLOCK_MONOTONIC. */
long long caa_dns_now_ms(void);

/* Expand a (possibly compressed) name at `p`; on success (0) *next points past
 * it and `out` holds the name without trailing dot, or "" for the root.  -1
 * when it cannot be read or is longer than CAA_NAME_MAX. */
int caa_dns_expand_name(const unsigned char *p, const unsigned char *abuf, int alen,
                        char out[CAA_NAME_MAX + 1], const unsigned char **next);

/* Parse "IP", "IP:PORT", "[IPv6]" or "[IPv6]:PORT" (port 53 when absent);
 * CP_EINVAL naming `s` otherwise. */
enum cp_code caa_dns_parse_server(const char *s, struct ares_addr_port_node *node,
                                  struct cp_err *err);

/* Parse n server strings into a linked array for ares_set_servers_ports();
 * *out is NULL when n is 0, else heap memory released with free(). */
enum cp_code caa_dns_parse_servers(const char *const *servers, size_t n,
                                   struct ares_addr_port_node **out, struct cp_err *err);

/*
 * Initialize c-ares and open a channel asking `servers` (NULL: the system's,
 * from /etc/resolv.conf) with ARES_FLAG_NOCHECKRESP (every RCODE reaches the
 * callback), NOSEARCH, STAYOPEN and `extra_flags`.  With ARES_FLAG_EDNS among
 * them c-ares accepts UDP answers of up to CAA_DNS_EDNS_UDP_SIZE octets (and,
 * after a FORMERR without OPT record, asks again without EDNS); without it,
 * c-ares 1.18 treats any UDP answer over 512 octets as truncated and asks
 * again over TCP.  `tries` tries share `budget_ms`, counted by c-ares for each
 * query from when it is sent: each try waits twice as long as the one before.
 * Close with caa_dns_close(), which also undoes the initialization.
 */
enum cp_code caa_dns_open(const struct ares_addr_port_node *servers, unsigned budget_ms,
                          unsigned tries, int extra_flags, ares_channel *out, struct cp_err *err);

/* The first try's share of `budget_ms` split over `tries` tries (each try
 * waits twice as long as the one before); at least c-ares's floor of 50 ms. */
unsigned caa_dns_first_try_ms(unsigned budget_ms, unsigned tries);

/* How long c-ares may spend on one query of a channel opened with `budget_ms`
 * and `tries` (1-10), all tries together: about `budget_ms`, more when the
 * share of a try is raised to c-ares's floor of 50 ms. */
unsigned caa_dns_query_ms(unsigned budget_ms, unsigned tries);

/* How many servers the channel asks in turn (at least 1): with one try, c-ares
 * gives each of them the try's time before a query times out. */
size_t caa_dns_server_count(ares_channel ch);

/* Destroy the channel (pending callbacks run with ARES_EDESTRUCTION) and undo
 * caa_dns_open()'s library initialization.  NULL is a no-op. */
void caa_dns_close(ares_channel ch);

/*
 * Drive `nch` channels (at most CAA_DNS_CHANNELS_MAX) in one poll loop until
 * *outstanding, which the callbacks decrement, is 0 or `deadline`
 * (caa_dns_now_ms() time) passes; then whatever is pending is cancelled
 * (its callbacks get ARES_ECANCELLED).
 */
void caa_dns_run(ares_channel *chs, size_t nch, const size_t *outstanding, long long deadline);

/* One query for caa_dns_send_all(). */
struct caa_dns_job {
    const char *name; /* the question: `name`, class IN, `type` */
    unsigned type;
    bool rd;          /* recursion desired */
    ares_callback cb; /* runs exactly once, with the answer or why there is none */
    void *arg;
    struct caa_dns_batch *batch; /* private to caa_dns_send_all() */
    unsigned wave;               /* private: the round trip this query went out in */
};

/*
 * Round trips, counted structurally: a query sent before any answer came back
 * is in wave 1; one sent after answers of wave k came back (because it waited
 * for room in the window, or is asked again after its first try was lost) is
 * in wave k + 1.  `waves` is the highest wave sent.  Callers pass the same
 * struct to several caa_dns_send_all() calls of one run: counts add up and
 * waves continue from where the previous call ended.
 */
struct caa_dns_waves {
    size_t sent;            /* queries handed to c-ares */
    unsigned waves;         /* highest wave sent */
    unsigned answered_wave; /* highest wave an answer (or failure) came back from */
};

/*
 * Send the n jobs on `ch` in order, at most `window` (1..CAA_DNS_WAVE_MAX) at
 * a time, each next one as soon as one completes, and drive the channel until
 * every callback has run.  The queries carry EDNS (CAA_DNS_EDNS_UDP_SIZE).
 * c-ares counts each query's budget (`query_ms`, see caa_dns_query_ms()) from
 * when that query is sent and resends a lost UDP query within it when the
 * channel has more than one try; a truncated answer is asked again over TCP.
 * An answer that still has TC set (one over TCP: the set does not fit in
 * 65535 octets) reaches the callback as ARES_EBADRESP without the answer,
 * never as a partial set.  As a safety net, what is still pending `query_ms`
 * plus 250 ms after the last query was sent is cancelled (ARES_ECANCELLED).
 * Adds to *w (see struct caa_dns_waves); returns the number of queries
 * handed to c-ares by this call.
 */
size_t caa_dns_send_all(ares_channel ch, struct caa_dns_job *jobs, size_t n, unsigned query_ms,
                        size_t window, struct caa_dns_waves *w);

/* ------------------------------------------------------------ RR walker */

enum caa_dns_section {
    CAA_DNS_ANSWER,
    CAA_DNS_AUTHORITY,
    CAA_DNS_ADDITIONAL,
    CAA_DNS_END /* no record left */
};

struct caa_dns_rr {
    enum caa_dns_section section;
    char owner[CAA_NAME_MAX + 1];
    unsigned type, rrclass;
    const unsigned char *rdata; /* inside the answer buffer; rdlen bytes are readable */
    size_t rdlen;
};

/* A position in an answer.  After caa_dns_walk_start(), `section` is that of
 * the next record (CAA_DNS_END when there is none). */
struct caa_dns_walk {
    const unsigned char *abuf, *end, *p;
    int alen;
    int rcode;
    bool aa; /* authoritative answer */
    enum caa_dns_section section;
    unsigned left[3]; /* records not yet read, per section */
};

/* Read the header and skip the question section: 0, or -1 when malformed. */
int caa_dns_walk_start(struct caa_dns_walk *w, const unsigned char *abuf, int alen);

/* The next record: 1 and *rr filled; 0 when none is left; -1 when the answer
 * is malformed (the walk is over then).  Terminates: every record consumes at
 * least 11 bytes of the buffer. */
int caa_dns_walk_next(struct caa_dns_walk *w, struct caa_dns_rr *rr);

/* ------------------------------------------ Extended DNS Errors (RFC 8914) */

/*
 * The first EDE option of an answer: the first OPT record (type 41) of the
 * additional section, then its options in order; the first with code 15 is
 * the one (spec §10 EDE).  On 1, *code is its INFO-CODE and *text / *text_len
 * its EXTRA-TEXT, borrowed from `abuf` (NULL and 0 when empty).  0 when there
 * is none, or when the OPT RDATA or that first EDE option is cut short or
 * overlong (then there is no usable EDE: nothing later is taken in its
 * place).  -1 when the answer itself is malformed.  Every length is checked
 * against the buffer before a byte is read.
 */
int caa_dns_find_ede(const unsigned char *abuf, int alen, unsigned *code,
                     const unsigned char **text, size_t *text_len);

/*
 * Copy `len` bytes to `out` (`size` bytes, > 0) as valid UTF-8: every
 * well-formed sequence (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF) as is, every other byte and every NUL as U+FFFD (EF BF BD),
 * one per byte, which is how Go decodes bad bytes.  Stops before a character
 * that would not fit, so the output is cut at a character boundary; always
 * NUL-terminates.  Returns the length written.
 */
size_t caa_dns_utf8_clean(const unsigned char *in, size_t len, char *out, size_t size);

/* caa_dns_find_ede() into l->has_ede, l->ede_code and l->ede_text (cleaned
 * by caa_dns_utf8_clean()); with no usable EDE, has_ede false and "". */
void caa_dns_lookup_ede(struct caa_lookup *l, const unsigned char *abuf, int alen);

/* CNAME records of an answer section and the chain they form. */
struct caa_dns_aliases {
    size_t n;
    struct {
        char owner[CAA_NAME_MAX + 1];
        char target[CAA_NAME_MAX + 1];
    } a[CAA_DNS_CNAME_HOPS_MAX];
};

/* Remember a CNAME record read by `w` (records beyond the bound are ignored);
 * -1 when its target cannot be read. */
int caa_dns_aliases_add(struct caa_dns_aliases *al, const struct caa_dns_walk *w,
                        const struct caa_dns_rr *rr);

/* Where the chain from `name` ends: `name` itself when it is no alias, else a
 * pointer into `al`.  The bound on hops stops loops. */
const char *caa_dns_aliases_follow(const struct caa_dns_aliases *al, const char *name);

/* ------------------------------------------ caa/zone.c, for the unit tests */

/* What one nameserver answered to a direct "TXT name?" query. */
struct caa_txt_seen {
    int rcode;
    bool aa;
    bool served;       /* a TXT record at the name holds exactly the value */
    size_t nvalues;    /* TXT records at the name */
    char values[160];  /* the first of them, quoted and escaped, for messages */
    bool values_short; /* `values` does not list all of them */
};

/*
 * Read a direct answer to "TXT `name`?".  A record's character-strings are
 * joined before comparing, as CAs do (RFC 8555 §8.4 does not split values, but
 * a TXT record may hold several strings).  Only TXT records of class IN owned
 * by `name` (compared case-insensitively) count.  0, or -1 when malformed.
 */
int caa_zone_read_txt(const unsigned char *abuf, int alen, const char *name, const char *value,
                      struct caa_txt_seen *seen);

/*
 * From a recursive answer to "SOA `name`?": where the CNAME chain from `name`
 * ends (`target`, equal to `name` when it is no alias) and the zone holding
 * it: the owner of an SOA record in the answer section owned by the target, or
 * of one in the authority section (a NODATA or NXDOMAIN answer) owned by the
 * target or one of its parents.  1 with `zone` set, 0 when the answer names no
 * zone (`zone` is ""), -1 when malformed.
 */
int caa_zone_from_soa_answer(const unsigned char *abuf, int alen, const char *name,
                             char target[CAA_NAME_MAX + 1], char zone[CAA_NAME_MAX + 1]);

/* Can this host send to `addr` (AF_INET or AF_INET6 bytes) at all?  False for
 * an address without a route, e.g. IPv6 on an IPv4-only host; nothing is sent.
 * Also used by caa/diag_zone.c. */
bool caa_zone_routable(int family, const void *addr);

#endif
