/*
 * caa/parse.c - CAA record contents: tag kinds, the critical flag, the
 * issue/issuewild value grammar as Let's Encrypt applies it (spec §6), the
 * zone-file presentation of a record, and RCODE names.
 *
 * Values come from the network: every function here works on explicit
 * lengths, never on NUL termination, and reads nothing past `len`.
 */
#include "caa/caa_int.h"

#include <stdio.h>
#include <string.h>

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* ASCII-only, locale-independent case-insensitive equality of `len` bytes
 * with a lower-case literal.  Lengths, not NULs, end both: a tag is a byte
 * string, and "issue\0" is six bytes long (spec §5). */
static bool tag_equals(const char *tag, size_t len, const char *lower)
{
    if (len != strlen(lower))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (ascii_lower((unsigned char)tag[i]) != (unsigned char)lower[i])
            return false;
    }
    return true;
}

enum caa_tag caa_tag_kind(const char *tag, size_t len)
{
    /* spec §5: property tags compare case-insensitively ("ISSUE" is issue). */
    static const struct {
        const char *name;
        enum caa_tag kind;
    } known[] = {
        {"issue", CAA_TAG_ISSUE},       {"issuewild", CAA_TAG_ISSUEWILD},
        {"iodef", CAA_TAG_IODEF},       {"issuemail", CAA_TAG_ISSUEMAIL},
        {"issuevmc", CAA_TAG_ISSUEVMC},
    };
    if (tag == NULL)
        return CAA_TAG_UNKNOWN;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (tag_equals(tag, len, known[i].name))
            return known[i].kind;
    }
    return CAA_TAG_UNKNOWN;
}

bool caa_record_critical(const struct caa_record *r)
{
    /* RFC 8659 §4.1: the critical flag is the bit of value 128.  Let's Encrypt
     * also treats the bit of value 1 as critical, because many operators read
     * "bit 0" as the low bit (spec §5). */
    return r != NULL && (r->flags & (0x80u | 0x01u)) != 0;
}

/* spec §6: only spaces and tabs are trimmed. */
static bool is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static void trim(const unsigned char *s, size_t *off, size_t *len)
{
    while (*len > 0 && is_wsp(s[*off])) {
        (*off)++;
        (*len)--;
    }
    while (*len > 0 && is_wsp(s[*off + *len - 1]))
        (*len)--;
}

static bool is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static size_t find_byte(const unsigned char *s, size_t from, size_t end, unsigned char c)
{
    while (from < end && s[from] != c)
        from++;
    return from;
}

static bool piece_blank(const unsigned char *s, size_t off, size_t len)
{
    trim(s, &off, &len);
    return len == 0;
}

static bool fail(struct caa_issue_value *out, struct caa_parse_error *pe,
                 enum caa_parse_fault fault, size_t piece_off, size_t piece_len, size_t bad_off)
{
    out->accounturi = NULL;
    out->accounturi_len = 0;
    out->methods = NULL;
    out->methods_len = 0;
    out->policy = out->persist_until = NULL;
    out->policy_len = out->persist_until_len = 0;
    out->persist_repeated = false;
    if (pe != NULL) {
        pe->fault = fault;
        pe->piece_off = piece_off;
        pe->piece_len = piece_len;
        pe->bad_off = bad_off;
    }
    return false;
}

bool caa_parse_issue_value_ex(const unsigned char *value, size_t len, struct caa_issue_value *out,
                              struct caa_parse_error *pe)
{
    static const unsigned char empty[1] = {0};
    const unsigned char *v = (value != NULL) ? value : empty;

    if (value == NULL)
        len = 0;
    memset(out, 0, sizeof *out);
    if (pe != NULL)
        memset(pe, 0, sizeof *pe);

    /* spec §6 / RFC 8659 §4.2: ';' may not occur inside a tag or a value, so
     * splitting on every ';' is exact.  The first piece is the issuer. */
    size_t semi = find_byte(v, 0, len, ';');
    size_t ioff = 0, ilen = semi;
    trim(v, &ioff, &ilen);
    out->issuer = (const char *)(v + ioff);
    out->issuer_len = ilen;
    if (semi == len)
        return true;

    /* "issuer;" and "issuer;  " carry no parameters (Let's Encrypt special-cases
     * exactly one trailing blank piece; a second ';' makes pieces that must
     * each be tag=value, so "issuer;;" is malformed). */
    size_t start = semi + 1;
    if (find_byte(v, start, len, ';') == len && piece_blank(v, start, len - start))
        return true;

    while (start <= len) {
        size_t end = find_byte(v, start, len, ';');
        size_t eq = find_byte(v, start, end, '=');
        if (eq == end)
            return fail(out, pe, CAA_PARSE_NO_EQUALS, start, end - start, start);

        /* Tag: ASCII letters and digits only.  Let's Encrypt checks each byte
         * and nothing else, so an empty tag ("=x") passes; we do the same (the
         * parameter is then simply never looked at).  RFC 8659's hyphens inside
         * a tag are rejected by Let's Encrypt, and so here. */
        size_t toff = start, tlen = eq - start;
        trim(v, &toff, &tlen);
        for (size_t i = toff; i < toff + tlen; i++) {
            if (!is_alnum(v[i]))
                return fail(out, pe, CAA_PARSE_BAD_TAG, start, end - start, i);
        }

        /* Value: RFC 8659 §4.2 parameter-value = 0*(%x21-3A / %x3C-7E), so it
         * may be empty; ';' cannot appear after the split. */
        size_t voff = eq + 1, vlen = end - (eq + 1);
        trim(v, &voff, &vlen);
        for (size_t i = voff; i < voff + vlen; i++) {
            if (v[i] < 0x21 || v[i] > 0x7E)
                return fail(out, pe, CAA_PARSE_BAD_VALUE, start, end - start, i);
        }

        /* Parameter tags are case-sensitive.  spec §6: accounturi or
         * validationmethods given twice makes the value unsatisfiable at Let's
         * Encrypt, even when both copies are equal; reading it as malformed
         * gives the same outcome (it authorizes nothing) and says why. */
        if (tlen == 10 && memcmp(v + toff, "accounturi", 10) == 0) {
            if (out->accounturi != NULL)
                return fail(out, pe, CAA_PARSE_DUPLICATE, start, end - start, toff);
            out->accounturi = (const char *)(v + voff);
            out->accounturi_len = vlen;
        } else if (tlen == 17 && memcmp(v + toff, "validationmethods", 17) == 0) {
            if (out->methods != NULL)
                return fail(out, pe, CAA_PARSE_DUPLICATE, start, end - start, toff);
            out->methods = (const char *)(v + voff);
            out->methods_len = vlen;
        } else if (tlen == 6 && memcmp(v + toff, "policy", 6) == 0) {
            out->persist_repeated = out->persist_repeated || out->policy != NULL;
            if (out->policy == NULL) {
                out->policy = (const char *)(v + voff);
                out->policy_len = vlen;
            }
        } else if (tlen == 12 && memcmp(v + toff, "persistUntil", 12) == 0) {
            out->persist_repeated = out->persist_repeated || out->persist_until != NULL;
            if (out->persist_until == NULL) {
                out->persist_until = (const char *)(v + voff);
                out->persist_until_len = vlen;
            }
        }
        start = end + 1;
    }
    return true;
}

bool caa_parse_issue_value(const unsigned char *value, size_t len, struct caa_issue_value *out)
{
    return caa_parse_issue_value_ex(value, len, out, NULL);
}

/* ------------------------------------------------------------ formatting */

struct writer {
    char *buf;
    size_t size;
    size_t len; /* what was needed so far, may exceed size */
};

static void put_char(struct writer *w, char c)
{
    if (w->size > 0 && w->len < w->size - 1)
        w->buf[w->len] = c;
    w->len++;
}

static void put_str(struct writer *w, const char *s)
{
    while (*s != '\0')
        put_char(w, *s++);
}

static void put_ddd(struct writer *w, unsigned char c)
{
    put_char(w, '\\');
    put_char(w, (char)('0' + c / 100));
    put_char(w, (char)('0' + (c / 10) % 10));
    put_char(w, (char)('0' + c % 10));
}

static void finish(struct writer *w)
{
    if (w->size == 0)
        return;
    w->buf[w->len < w->size ? w->len : w->size - 1] = '\0';
}

/* `lo`: the lowest byte written as is (0x20 inside quotes, 0x21 outside). */
static void put_escaped(struct writer *w, const unsigned char *s, size_t n, unsigned char lo)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            put_char(w, '\\');
            put_char(w, (char)c);
        } else if (c >= lo && c <= 0x7E) {
            put_char(w, (char)c);
        } else {
            put_ddd(w, c);
        }
    }
}

size_t caa_escape_bytes(const unsigned char *s, size_t n, char *buf, size_t size)
{
    struct writer w = {buf, size, 0};
    if (s != NULL)
        put_escaped(&w, s, n, 0x20);
    finish(&w);
    return w.len;
}

size_t caa_record_format(const struct caa_record *r, char *buf, size_t size)
{
    struct writer w = {buf, size, 0};
    char flags[4];

    if (r == NULL) {
        finish(&w);
        return 0;
    }
    /* A uint8_t has at most three digits: cannot truncate. */
    (void)snprintf(flags, sizeof flags, "%u", (unsigned)r->flags);
    put_str(&w, flags);
    put_char(&w, ' ');
    /* The tag is unquoted in presentation form: escape blanks too. */
    if (r->tag != NULL)
        put_escaped(&w, (const unsigned char *)r->tag, r->tag_len, 0x21);
    put_str(&w, " \"");
    if (r->value != NULL)
        put_escaped(&w, r->value, r->value_len, 0x20);
    put_char(&w, '"');
    finish(&w);
    return w.len;
}

/* ----------------------------------------------------------------- rcodes */

const char *caa_rcode_name(int rcode)
{
    /* RFC 1035 §4.1.1, RFC 2136 §2.2, RFC 6891, RFC 8945, RFC 7873.  Only
     * constant strings, so the function is thread-safe.  The header RCODE has
     * four bits; the named extended codes are listed too. */
    static const char *const names[] = {
        "NOERROR",  "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",   "REFUSED",
        "YXDOMAIN", "YXRRSET", "NXRRSET",  "NOTAUTH",  "NOTZONE",  "DSOTYPENI",
        "RCODE12",  "RCODE13", "RCODE14",  "RCODE15",  "BADVERS",  "BADKEY",
        "BADTIME",  "BADMODE", "BADNAME",  "BADALG",   "BADTRUNC", "BADCOOKIE",
    };
    if (rcode < 0 || (size_t)rcode >= sizeof names / sizeof names[0])
        return "unknown RCODE";
    return names[rcode];
}
