/* tests/unit/test_caa_dns.c - caa/dns.c: the Extended DNS Error reader
 * (RFC 8914) and the UTF-8 cleaning of its text, on answers built by hand.
 * Every answer is copied into a heap block of its exact size before it is
 * read, so that AddressSanitizer reports any read past its end. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "caa/caa.h"
#include "caa/dns_int.h"

/* ------------------------------------------------------ building answers */

struct msg {
    unsigned char b[2048];
    size_t len;
    size_t rdlen_at; /* where the RDLENGTH of the last RR is */
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

static void put_bytes(struct msg *m, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put8(m, ((const unsigned char *)p)[i]);
}

static void set16(struct msg *m, size_t at, unsigned v)
{
    m->b[at] = (unsigned char)(v >> 8);
    m->b[at + 1] = (unsigned char)v;
}

/* A response to "example.com. CAA?" with this RCODE and no records yet. */
static void start(struct msg *m, int rcode)
{
    static const unsigned char qname[] = "\7example\3com";
    memset(m, 0, sizeof *m);
    put16(m, 0x4242);
    put8(m, 0x81); /* QR, RD */
    put8(m, 0x80 | (unsigned)rcode);
    put16(m, 1);
    put16(m, 0);
    put16(m, 0);
    put16(m, 0);
    put_bytes(m, qname, sizeof qname); /* with the root label */
    put16(m, CAA_DNS_TYPE_CAA);
    put16(m, CAA_DNS_CLASS_IN);
}

/* Start a record in `section` (owner: the question name); RDLENGTH is
 * kept up to date by the put_* helpers below through end_rr(). */
static void begin_rr(struct msg *m, enum caa_dns_section section, unsigned type)
{
    size_t at = 6 + 2 * (size_t)section;
    set16(m, at, caa_dns_read16(m->b + at) + 1);
    if (type == CAA_DNS_TYPE_OPT) {
        put8(m, 0); /* the root */
        put16(m, type);
        put16(m, CAA_DNS_EDNS_UDP_SIZE); /* CLASS: the UDP payload size */
        put16(m, 0);                     /* extended RCODE, version */
        put16(m, 0);                     /* DO and Z */
    } else {
        put16(m, 0xC00C);
        put16(m, type);
        put16(m, CAA_DNS_CLASS_IN);
        put16(m, 0);
        put16(m, 60);
    }
    m->rdlen_at = m->len;
    put16(m, 0);
}

static void end_rr(struct msg *m)
{
    set16(m, m->rdlen_at, (unsigned)(m->len - m->rdlen_at - 2));
}

/* An EDNS option with `len` bytes of data. */
static void put_option(struct msg *m, unsigned code, const void *data, size_t len)
{
    put16(m, code);
    put16(m, (unsigned)len);
    put_bytes(m, data, len);
}

/* An EDE option: INFO-CODE and text of `len` bytes. */
static void put_ede(struct msg *m, unsigned code, const char *text, size_t len)
{
    put16(m, CAA_DNS_EDNS_OPT_EDE);
    put16(m, (unsigned)(2 + len));
    put16(m, code);
    put_bytes(m, text, len);
}

/* An OPT record holding one EDE option. */
static void opt_with_ede(struct msg *m, unsigned code, const char *text, size_t len)
{
    begin_rr(m, CAA_DNS_ADDITIONAL, CAA_DNS_TYPE_OPT);
    put_ede(m, code, text, len);
    end_rr(m);
}

/* ------------------------------------------------------------- reading */

struct seen {
    int rc;
    unsigned code;
    char text[sizeof(struct msg)]; /* the raw text, NUL-terminated */
    size_t text_len;
    struct caa_lookup l;
};

/* Read `m` from an exact-size heap copy, both ways: the raw reader and the
 * lookup filler. */
static void read_ede(const struct msg *m, struct seen *s)
{
    unsigned char *copy = malloc(m->len);
    assert_non_null(copy);
    memcpy(copy, m->b, m->len);
    const unsigned char *text = NULL;
    memset(s, 0, sizeof *s);
    s->rc = caa_dns_find_ede(copy, (int)m->len, &s->code, &text, &s->text_len);
    assert_true(s->text_len < sizeof s->text);
    if (s->text_len > 0) {
        assert_true(text >= copy && text + s->text_len <= copy + m->len);
        memcpy(s->text, text, s->text_len);
    } else {
        assert_null(text);
    }
    s->l.has_ede = true; /* must be reset */
    s->l.ede_code = 99;
    memcpy(s->l.ede_text, "stale", 6);
    caa_dns_lookup_ede(&s->l, copy, (int)m->len);
    assert_int_equal(s->l.has_ede, s->rc == 1);
    free(copy);
}

static void no_opt_no_ede(void **state)
{
    (void)state;
    struct msg m;
    struct seen s;
    start(&m, 2);
    read_ede(&m, &s);
    assert_int_equal(s.rc, 0);
    assert_false(s.l.has_ede);
    assert_int_equal(s.l.ede_code, 0);
    assert_string_equal(s.l.ede_text, "");

    /* An A record in the additional section is no OPT. */
    begin_rr(&m, CAA_DNS_ADDITIONAL, CAA_DNS_TYPE_A);
    put_bytes(&m, "\x7f\0\0\1", 4);
    end_rr(&m);
    read_ede(&m, &s);
    assert_int_equal(s.rc, 0);
}

static void opt_without_ede(void **state)
{
    (void)state;
    struct msg m;
    struct seen s;
    start(&m, 2);
    begin_rr(&m, CAA_DNS_ADDITIONAL, CAA_DNS_TYPE_OPT);
    end_rr(&m); /* no options at all */
    read_ede(&m, &s);
    assert_int_equal(s.rc, 0);

    start(&m, 2);
    begin_rr(&m, CAA_DNS_ADDITIONAL, CAA_DNS_TYPE_OPT);
    put_option(&m, 10, "\1\2\3\4\5\6\7\10", 8); /* a COOKIE */
    put_option(&m, 12, "", 0);                  /* an empty PADDING */
    end_rr(&m);
    read_ede(&m, &s);
    assert_int_equal(s.rc, 0);
    assert_false(s.l.has_ede);
}

static void ede_after_other_options(void **state)
{
    (void)state;
    struct msg m;
    struct seen s;
    start(&m, 2);
    begin_rr(&m, CAA_DNS_ADDITIONAL, CAA_DNS_TYPE_A);
    put_bytes(&m, "\x7f\0\0\1", 4);
    end_rr(&m);
    begin_rr(&m, CAA_DNS_ADDITIONAL, CAA_DNS_TYPE_OPT);
    put_option(&m, 10, "\1\2\3\4\5\6\7\10", 8);
    put_ede(&m, 6, "validation failure <x.example.com. CAA IN>", 42);
    end_rr(&m);
    read_ede(&m, &s);
    assert_int_equal(s.rc, 1);
    assert_int_equal(s.code, 6);
    assert_string_equal(s.text, "validation failure <x.example.com. CAA IN>");
    assert_true(s.l.has_ede);
    assert_int_equal(s.l.ede_code, 6);
    assert_string_equal(s.l.ede_text, "validation failure <x.example.com. CAA IN>");
}

static void ede_without_text(void **state)
{
    (void)state;
    struct msg m;
    struct seen s;
    start(&m, 2);
    opt_with_ede(&m, 22, "", 0);
    read_ede(&m, &s);
    assert_int_equal(s.rc, 1);
    assert_int_equal(s.code, 22);
    assert_int_equal(s.text_len, 0);
    assert_int_equal(s.l.ede_code, 22);
    assert_string_equal(s.l.ede_text, "");

    /* The full 16-bit range of INFO-CODEs. */
    start(&m, 2);
    opt_with_ede(&m, 0xFFFF, "", 0);
    read_ede(&m, &s);
    assert_int_equal(s.l.ede_code, 0xFFFF);
}

static void first_ede_wins(void **state)
{
    (void)state;
    struct msg m;
    struct seen s;
    start(&m, 2);
    begin_rr(&m, CAA_DNS_ADDITIONAL, CAA_DNS_TYPE_OPT);
    put_ede(&m, 9, "first", 5);
    put_ede(&m, 6, "second", 6);
    end_rr(&m);
    read_ede(&m, &s);
    assert_int_equal(s.rc, 1);
    assert_int_equal(s.l.ede_code, 9);
    assert_string_equal(s.l.ede_text, "first");

    /* Only the first OPT record is read (a second one is a FORMERR anyway). */
    start(&m, 2);
    begin_rr(&m, CAA_DNS_ADDITIONAL, CAA_DNS_TYPE_OPT);
    put_option(&m, 10, "\1\2\3\4\5\6\7\10", 8);
    end_rr(&m);
    opt_with_ede(&m, 6, "in the second OPT", 17);
    read_ede(&m, &s);
    assert_int_equal(s.rc, 0);
}

static void opt_outside_additional_ignored(void **state)
{
    (void)state;
    struct msg m;
    struct seen s;
    start(&m, 2);
    begin_rr(&m, CAA_DNS_AUTHORITY, CAA_DNS_TYPE_OPT);
    put_ede(&m, 6, "misplaced", 9);
    end_rr(&m);
    read_ede(&m, &s);
    assert_int_equal(s.rc, 0);
}

static void truncated_lengths(void **state)
{
    (void)state;
    struct msg m;
    struct seen s;

    /* An EDE option too short for its INFO-CODE. */
    start(&m, 2);
    begin_rr(&m, CAA_DNS_ADDITIONAL, CAA_DNS_TYPE_OPT);
    put_option(&m, CAA_DNS_EDNS_OPT_EDE, "\6", 1);
    end_rr(&m);
    read_ede(&m, &s);
    assert_int_equal(s.rc, 0);
    assert_false(s.l.has_ede);

    /* ... and an empty one, followed by a good one: the first is unusable,
     * and nothing later is taken in its place. */
    start(&m, 2);
    begin_rr(&m, CAA_DNS_ADDITIONAL, CAA_DNS_TYPE_OPT);
    put_option(&m, CAA_DNS_EDNS_OPT_EDE, "", 0);
    put_ede(&m, 6, "later", 5);
    end_rr(&m);
    read_ede(&m, &s);
    assert_int_equal(s.rc, 0);

    /* An option length running past the OPT RDATA (and the message). */
    start(&m, 2);
    begin_rr(&m, CAA_DNS_ADDITIONAL, CAA_DNS_TYPE_OPT);
    put_ede(&m, 6, "abcdef", 6);
    end_rr(&m);
    set16(&m, m.len - 6 - 4, 2 + 6 + 1); /* OPTION-LENGTH one too many */
    read_ede(&m, &s);
    assert_int_equal(s.rc, 0);
    set16(&m, m.len - 6 - 4, 0xFFFF);
    read_ede(&m, &s);
    assert_int_equal(s.rc, 0);

    /* An option length running past the OPT RDATA, with more bytes after
     * the record (another RR): the RDATA bounds it, not the message. */
    start(&m, 2);
    begin_rr(&m, CAA_DNS_ADDITIONAL, CAA_DNS_TYPE_OPT);
    put_ede(&m, 6, "abcdef", 6);
    end_rr(&m);
    size_t optlen_at = m.len - 6 - 4;
    begin_rr(&m, CAA_DNS_ADDITIONAL, CAA_DNS_TYPE_A);
    put_bytes(&m, "\x7f\0\0\1", 4);
    end_rr(&m);
    set16(&m, optlen_at, 2 + 6 + 4);
    read_ede(&m, &s);
    assert_int_equal(s.rc, 0);

    /* An option header cut short: three bytes of RDATA. */
    start(&m, 2);
    begin_rr(&m, CAA_DNS_ADDITIONAL, CAA_DNS_TYPE_OPT);
    put8(&m, 0);
    put8(&m, CAA_DNS_EDNS_OPT_EDE);
    put8(&m, 0);
    end_rr(&m);
    read_ede(&m, &s);
    assert_int_equal(s.rc, 0);

    /* An OPT RDLENGTH past the end of the message: the answer is malformed. */
    start(&m, 2);
    opt_with_ede(&m, 6, "abc", 3);
    set16(&m, m.rdlen_at, 2 + 2 + 2 + 3 + 1);
    read_ede(&m, &s);
    assert_int_equal(s.rc, -1);
    assert_false(s.l.has_ede);

    /* The message cut in the middle of the option, at every length. */
    start(&m, 2);
    opt_with_ede(&m, 6, "abcdef", 6);
    size_t full = m.len;
    for (size_t len = 0; len < full; len++) {
        m.len = len;
        read_ede(&m, &s);
        assert_int_not_equal(s.rc, 1);
    }
}

static void text_is_cleaned_to_utf8(void **state)
{
    (void)state;
    struct msg m;
    struct seen s;
    /* a, a bad byte, é, a cut 3-byte sequence (2 bytes), an overlong '/',
     * a surrogate, a code point above U+10FFFF, F5, a lone continuation,
     * NUL, a 4-byte emoji, U+FFFD itself, z. */
    static const char in[] = "a\xff"
                             "b\xc3\xa9"
                             "\xe2\x82"
                             "c\xc0\xaf"
                             "\xed\xa0\x80"
                             "\xf4\x90\x80\x80"
                             "\xf5\x80"
                             "\0"
                             "\xf0\x9f\x98\x80"
                             "\xef\xbf\xbd"
                             "z";
#define R "\xef\xbf\xbd"
    static const char want[] = "a" R "b\xc3\xa9" R R "c" R R R R R R R R R R R R "\xf0\x9f\x98\x80"
                               "\xef\xbf\xbd"
                               "z";
#undef R
    start(&m, 2);
    opt_with_ede(&m, 1, in, sizeof in - 1);
    read_ede(&m, &s);
    assert_int_equal(s.rc, 1);
    assert_int_equal(s.text_len, sizeof in - 1);
    assert_memory_equal(s.text, in, sizeof in - 1); /* raw bytes, untouched */
    assert_string_equal(s.l.ede_text, want);

    /* Plain ASCII and valid UTF-8 stay as they are, controls included. */
    char out[64];
    assert_int_equal(caa_dns_utf8_clean((const unsigned char *)"tab\there\n", 9, out, sizeof out),
                     9);
    assert_string_equal(out, "tab\there\n");
    assert_int_equal(caa_dns_utf8_clean((const unsigned char *)"\xe2\x82\xac", 3, out, sizeof out),
                     3);
    assert_string_equal(out, "\xe2\x82\xac");
    /* The last valid code point and the first after the surrogates. */
    assert_int_equal(caa_dns_utf8_clean((const unsigned char *)"\xf4\x8f\xbf\xbf\xee\x80\x80", 7,
                                        out, sizeof out),
                     7);
}

static void text_is_cut_at_a_character(void **state)
{
    (void)state;
    char out[8];
    /* "ab" + é (2) + € (3) = 7 bytes: fits 8 exactly with the NUL. */
    const unsigned char *t = (const unsigned char *)"ab\xc3\xa9\xe2\x82\xac";
    assert_int_equal(caa_dns_utf8_clean(t, 7, out, 8), 7);
    assert_int_equal(caa_dns_utf8_clean(t, 7, out, 7), 4); /* € would not fit */
    assert_string_equal(out, "ab\xc3\xa9");
    assert_int_equal(caa_dns_utf8_clean(t, 7, out, 4), 2); /* nor é */
    assert_string_equal(out, "ab");
    assert_int_equal(caa_dns_utf8_clean(t, 7, out, 1), 0);
    assert_string_equal(out, "");
    /* A replacement character is three bytes too. */
    assert_int_equal(caa_dns_utf8_clean((const unsigned char *)"a\xff", 2, out, 4), 1);
    assert_string_equal(out, "a");

    /* Through the lookup: a text longer than CAA_EDE_TEXT_MAX. */
    struct msg m;
    struct seen s;
    char longtext[CAA_EDE_TEXT_MAX + 8];
    memset(longtext, 'x', CAA_EDE_TEXT_MAX - 1);
    memcpy(longtext + CAA_EDE_TEXT_MAX - 1, "\xc3\xa9tail", 6);
    size_t len = CAA_EDE_TEXT_MAX - 1 + 6;
    start(&m, 2);
    opt_with_ede(&m, 6, longtext, len);
    read_ede(&m, &s);
    assert_int_equal(s.rc, 1);
    assert_int_equal(strlen(s.l.ede_text), CAA_EDE_TEXT_MAX - 1);
    assert_memory_equal(s.l.ede_text, longtext, CAA_EDE_TEXT_MAX - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_opt_no_ede),
        cmocka_unit_test(opt_without_ede),
        cmocka_unit_test(ede_after_other_options),
        cmocka_unit_test(ede_without_text),
        cmocka_unit_test(first_ede_wins),
        cmocka_unit_test(opt_outside_additional_ignored),
        cmocka_unit_test(truncated_lengths),
        cmocka_unit_test(text_is_cleaned_to_utf8),
        cmocka_unit_test(text_is_cut_at_a_character),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
