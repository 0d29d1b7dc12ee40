/*
 * caa/explain.c - a CAA decision in words: the problem document Let's Encrypt
 * would return (spec §9, word for word), an explanation a server operator can
 * act on without reading the RFCs, and the zone-file lines or repairs that
 * would let issuance through.
 *
 * The strings are built in memory streams (POSIX open_memstream); record
 * contents from the network always go through the zone-file escaping of
 * caa_record_format(), so no raw byte of a value reaches the output.
 */
#include "caa/caa_int.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROBLEM_CAA "urn:ietf:params:acme:error:caa"
#define PROBLEM_DNS "urn:ietf:params:acme:error:dns"

/* ------------------------------------------------------------ a string sink */

struct sink {
    FILE *f;
    char *buf;
    size_t len;
    bool failed;
    bool line_open; /* something written since the last line break */
};

static bool sink_open(struct sink *s)
{
    memset(s, 0, sizeof *s);
    s->f = open_memstream(&s->buf, &s->len);
    return s->f != NULL;
}

/* Close and hand over the string (without a trailing newline), or NULL. */
static char *sink_close(struct sink *s)
{
    if (s->f == NULL)
        return NULL;
    bool bad = s->failed || ferror(s->f) != 0;
    if (fclose(s->f) != 0)
        bad = true;
    s->f = NULL;
    if (bad || s->buf == NULL) {
        free(s->buf);
        s->buf = NULL;
        return NULL;
    }
    while (s->len > 0 && s->buf[s->len - 1] == '\n')
        s->buf[--s->len] = '\0';
    char *out = s->buf;
    s->buf = NULL;
    return out;
}

static void sink_discard(struct sink *s)
{
    if (s->f != NULL)
        (void)fclose(s->f);
    s->f = NULL;
    free(s->buf);
    s->buf = NULL;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
say(struct sink *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (vfprintf(s->f, fmt, ap) < 0)
        s->failed = true;
    va_end(ap);
}

/* Start a new line (a no-op at the start of the text). */
static void newline(struct sink *s)
{
    if (ftell(s->f) > 0)
        say(s, "\n");
}

/* Bytes from the network, escaped as in a zone file. */
static void say_bytes(struct sink *s, const void *bytes, size_t n)
{
    size_t need = caa_escape_bytes(bytes, n, NULL, 0);
    char *tmp = malloc(need + 1);
    if (tmp == NULL) {
        s->failed = true;
        return;
    }
    (void)caa_escape_bytes(bytes, n, tmp, need + 1);
    say(s, "%s", tmp);
    free(tmp);
}

static void say_record(struct sink *s, const struct caa_record *r)
{
    size_t need = caa_record_format(r, NULL, 0);
    char *tmp = malloc(need + 1);
    if (tmp == NULL) {
        s->failed = true;
        return;
    }
    (void)caa_record_format(r, tmp, need + 1);
    say(s, "%s", tmp);
    free(tmp);
}

/* A zone-file line: `owner. CAA flags tag "value"`. */
static void say_zone(struct sink *s, const char *indent, const char *owner,
                     const struct caa_record *r)
{
    newline(s);
    say(s, "%s%s. CAA ", indent, owner);
    say_record(s, r);
}

/* The record that would authorize this CA: `0 <tag> "<ca>[; accounturi=<uri>]"`. */
static void say_allow_line(struct sink *s, const char *indent, const char *owner, const char *tag,
                           const struct caa_params *p)
{
    struct sink v;
    if (!sink_open(&v)) {
        s->failed = true;
        return;
    }
    say(&v, "%s", p->ca_identity);
    if (p->account_uri != NULL)
        say(&v, "; accounturi=%s", p->account_uri);
    char *value = sink_close(&v);
    if (value == NULL) {
        s->failed = true;
        return;
    }
    struct caa_record r = {.flags = 0,
                           .tag = (char *)tag,
                           .tag_len = strlen(tag),
                           .value = (unsigned char *)value,
                           .value_len = strlen(value)};
    say_zone(s, indent, owner, &r);
    free(value);
}

/* ------------------------------------------------------------- helpers */

static char *dup_printf(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static char *dup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *p = malloc((size_t)n + 1);
    if (p == NULL)
        return NULL;
    va_start(ap, fmt);
    int m = vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if (m != n) {
        free(p);
        return NULL;
    }
    return p;
}

static bool ascii_case_equal(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

static bool has_unprintable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7E)
            return true;
    }
    return false;
}

/* Which tag the candidates carry (spec §5 rule 3). */
static enum caa_tag candidate_tag(const struct caa_lookup *set, bool wildcard)
{
    if (!wildcard)
        return CAA_TAG_ISSUE;
    for (size_t i = 0; i < set->nrecords; i++) {
        if (caa_tag_kind(set->records[i].tag, set->records[i].tag_len) == CAA_TAG_ISSUEWILD)
            return CAA_TAG_ISSUEWILD;
    }
    return CAA_TAG_ISSUE;
}

static bool set_has(const struct caa_lookup *set, enum caa_tag t)
{
    for (size_t i = 0; i < set->nrecords; i++) {
        if (caa_tag_kind(set->records[i].tag, set->records[i].tag_len) == t)
            return true;
    }
    return false;
}

/* ----------------------------------------------------------- the records */

/* A parameter piece, trimmed of blanks, quoted and escaped. */
static void say_piece(struct sink *s, const unsigned char *v, size_t off, size_t len)
{
    while (len > 0 && (v[off] == ' ' || v[off] == '\t')) {
        off++;
        len--;
    }
    while (len > 0 && (v[off + len - 1] == ' ' || v[off + len - 1] == '\t'))
        len--;
    say(s, "the parameter \"");
    say_bytes(s, v + off, len);
    say(s, "\"");
}

static void say_byte(struct sink *s, unsigned char c)
{
    if (c == ' ' || c == '\t') {
        say(s, "a blank");
    } else {
        say(s, "\"");
        say_bytes(s, &c, 1);
        say(s, "\"");
    }
}

static void say_malformed_reason(struct sink *s, const struct caa_record *r)
{
    struct caa_issue_value iv;
    struct caa_parse_error pe;
    if (caa_parse_issue_value_ex(r->value, r->value_len, &iv, &pe))
        return;
    const unsigned char *v = r->value;
    switch (pe.fault) {
    case CAA_PARSE_OK: break;
    case CAA_PARSE_NO_EQUALS: {
        size_t i = 0;
        while (i < pe.piece_len && (v[pe.piece_off + i] == ' ' || v[pe.piece_off + i] == '\t'))
            i++;
        if (i == pe.piece_len) {
            say(s, "an empty parameter: a ';' too many");
        } else {
            say_piece(s, v, pe.piece_off, pe.piece_len);
            say(s, " is not of the form tag=value");
        }
        break;
    }
    case CAA_PARSE_BAD_TAG:
        say_piece(s, v, pe.piece_off, pe.piece_len);
        say(s, " has ");
        say_byte(s, v[pe.bad_off]);
        say(s, " in its tag, where only letters and digits are allowed");
        break;
    case CAA_PARSE_BAD_VALUE:
        say_piece(s, v, pe.piece_off, pe.piece_len);
        say(s, " has ");
        say_byte(s, v[pe.bad_off]);
        say(s, " in its value, where only visible ASCII characters other than ';' are allowed");
        break;
    case CAA_PARSE_DUPLICATE:
        say_piece(s, v, pe.piece_off, pe.piece_len);
        say(s, " repeats one given before; Let's Encrypt cannot satisfy a value that names "
               "accounturi or validationmethods twice, even with equal copies");
        break;
    }
}

static void say_issuer(struct sink *s, const struct caa_issue_value *iv)
{
    say(s, "\"");
    say_bytes(s, iv->issuer, iv->issuer_len);
    say(s, "\"");
}

static void say_candidate(struct sink *s, const struct caa_record *r, enum caa_verdict v,
                          const struct caa_params *p)
{
    struct caa_issue_value iv;
    bool parsed = caa_parse_issue_value(r->value, r->value_len, &iv);
    const char *ca = p->ca_identity;

    newline(s);
    say(s, "- ");
    say_record(s, r);
    say(s, ": ");
    switch (v) {
    case CAA_VERDICT_AUTHORIZES: say(s, "authorizes %s.", ca); break;
    case CAA_VERDICT_MALFORMED:
        say(s, "is malformed (");
        say_malformed_reason(s, r);
        say(s, "); a malformed record authorizes no CA, not even the one it names.");
        break;
    case CAA_VERDICT_FORBIDS:
        say(s, "names no CA at all (an empty issuer, as in \";\"), which forbids issuance by "
               "every CA.");
        break;
    case CAA_VERDICT_OTHER_CA:
        say(s, "authorizes the CA ");
        say_issuer(s, &iv);
        say(s, ", not \"%s\".", ca);
        if (!parsed)
            break;
        if (ascii_case_equal(iv.issuer, iv.issuer_len, ca)) {
            say(s, " The CA name is compared exactly, and the letter case differs.");
        } else if (iv.issuer_len == strlen(ca) + 1 && iv.issuer[iv.issuer_len - 1] == '.' &&
                   memcmp(iv.issuer, ca, strlen(ca)) == 0) {
            say(s, " The CA name is compared exactly, and the trailing dot makes it a "
                   "different name.");
        } else if (has_unprintable(iv.issuer, iv.issuer_len)) {
            say(s, " A value of control bytes such as \"\\000\" is often a DNS provider's "
                   "placeholder; it forbids issuance as surely as \";\".");
        }
        break;
    case CAA_VERDICT_ACCOUNT_MISMATCH:
        say(s, "authorizes %s only for the account \"", ca);
        say_bytes(s, iv.accounturi, iv.accounturi_len);
        if (p->account_uri != NULL) {
            say(s, "\", but the account placing the order is \"%s\".", p->account_uri);
        } else {
            say(s, "\". This check was not told which account will place the order, so it "
                   "cannot count this record; if that URL is your account's, the CA will "
                   "accept it.");
        }
        break;
    case CAA_VERDICT_METHOD_MISMATCH: {
        const char *bad = NULL;
        size_t bad_len = 0;
        say(s, "authorizes %s only with the validation methods \"", ca);
        say_bytes(s, iv.methods, iv.methods_len);
        say(s, "\", and this order uses %s.", p->method);
        (void)caa_methods_match(iv.methods, iv.methods_len, p->method, &bad, &bad_len);
        if (bad != NULL) {
            say(s, " The CA reads the list from the left and gives up at the element \"");
            say_bytes(s, bad, bad_len);
            say(s,
                "\", which is not a method name (only letters, digits and hyphens), before "
                "it reaches %s.",
                p->method);
        }
        break;
    }
    case CAA_VERDICT_CRITICAL:
        say(s, "the property \"");
        if (r->tag != NULL)
            say_bytes(s, r->tag, r->tag_len);
        say(s,
            "\" is unknown to the CA and flagged critical (flags %u), so no CA may issue "
            "at all.",
            (unsigned)r->flags);
        if ((r->flags & 0x80u) == 0)
            say(s, " (The critical flag is 128; Let's Encrypt treats the flag value 1 as "
                   "critical too, because it is often set by mistake.)");
        break;
    case CAA_VERDICT_IGNORED: say(s, "does not apply to this request."); break;
    }
}

/* -------------------------------------------------------------- the texts */

static void say_where(struct sink *s, const struct caa_lookup *const *chain, size_t at)
{
    const struct caa_lookup *set = chain[at];
    if (at == 1) {
        say(s, " %s has no CAA records of its own, so those of its parent %s apply.",
            chain[0]->name, set->name);
    } else if (at > 1) {
        say(s,
            " No CAA records exist at %s or at the names between it and %s, so those at %s, "
            "the closest name that has some, apply.",
            chain[0]->name, set->name, set->name);
    }
    if (set->target[0] != '\0') {
        say(s,
            " %s is an alias (CNAME) of %s: the CAA lookup follows the alias, so the records "
            "published at %s are the ones that apply.",
            set->name, set->target, set->target);
    }
}

static void text_allowed(struct sink *s, const char *ident, const struct caa_lookup *const *chain,
                         size_t n, const struct caa_params *p, const struct caa_decision *d)
{
    switch (d->why) {
    case CAA_WHY_NO_RECORDS:
        if (n == 0) {
            say(s, "No CAA records were found, so any CA may issue for %s.", ident);
        } else {
            say(s,
                "No CAA record exists at %s or at any parent up to %s, so any CA may issue "
                "for %s.",
                chain[0]->name, chain[n - 1]->name, ident);
        }
        return;
    case CAA_WHY_NO_ISSUE:
        say(s,
            "The CAA records at %s hold no issue record; issuewild records apply only to "
            "wildcard certificates, so the set does not restrict issuance for %s.",
            chain[d->at]->name, ident);
        say_where(s, chain, d->at);
        return;
    case CAA_WHY_NO_CANDIDATE:
        say(s,
            "%s is a wildcard: for it the CA reads the issuewild records, or the issue records "
            "when there is no issuewild record. The CAA records at %s hold neither, so they "
            "do not restrict issuance for %s.",
            ident, chain[d->at]->name, ident);
        say_where(s, chain, d->at);
        return;
    case CAA_WHY_AUTHORIZED:
        say(s, "The record ");
        say_record(s, &chain[d->at]->records[d->authorizing]);
        say(s, " at %s authorizes %s to issue for %s.", chain[d->at]->name, p->ca_identity, ident);
        say_where(s, chain, d->at);
        return;
    default:
        /* Not an "allowed" reason: say what the status says. */
        say(s, "Issuance for %s is allowed.", ident);
        return;
    }
}

static void text_denied(struct sink *s, const char *ident, bool wildcard,
                        const struct caa_lookup *const *chain, const struct caa_params *p,
                        const struct caa_decision *d)
{
    const struct caa_lookup *set = chain[d->at];

    say(s, "The CAA records at %s do not allow %s to issue a certificate for %s.", set->name,
        p->ca_identity, ident);
    say_where(s, chain, d->at);
    newline(s);

    switch (d->why) {
    case CAA_WHY_CRITICAL_UNKNOWN:
        say(s, "The set holds a property the CA does not know, flagged critical; a CA must "
               "then refuse to issue at all (RFC 8659 section 4.1):");
        for (size_t i = 0; i < set->nrecords; i++) {
            if (d->verdicts[i] == CAA_VERDICT_CRITICAL)
                say_candidate(s, &set->records[i], d->verdicts[i], p);
        }
        break;
    case CAA_WHY_NOT_AUTHORIZED:
    default: {
        enum caa_tag cand = candidate_tag(set, wildcard);
        if (wildcard && cand == CAA_TAG_ISSUEWILD && set_has(set, CAA_TAG_ISSUE))
            say(s,
                "%s is a wildcard and the set has issuewild records, so only those count "
                "(its issue records are ignored for wildcards). ",
                ident);
        else if (wildcard)
            say(s,
                "%s is a wildcard, but the set has no issuewild record, so its issue records "
                "govern wildcards too. ",
                ident);
        say(s, "None of the %s records authorizes %s for this order:",
            cand == CAA_TAG_ISSUEWILD ? "issuewild" : "issue", p->ca_identity);
        for (size_t i = 0; i < set->nrecords; i++) {
            if (d->verdicts[i] != CAA_VERDICT_IGNORED)
                say_candidate(s, &set->records[i], d->verdicts[i], p);
        }
        break;
    }
    }
}

/* What an RCODE or failure usually means (spec §11, field reports). */
static void text_error(struct sink *s, const char *ident, const struct caa_lookup *const *chain,
                       const struct caa_decision *d)
{
    const struct caa_lookup *l = chain[d->at];

    switch (l->answer) {
    case CAA_ANSWER_RCODE:
        say(s, "The CAA lookup for %s failed: the resolver answered %s.", l->name,
            caa_rcode_name(l->rcode));
        if (l->has_ede) {
            /* The text comes from the resolver: escaped here like record
             * contents; the problem detail quotes it as the CA does. */
            char buf[64];
            say(s, " Its Extended DNS Error (RFC 8914) says: %s",
                caa_ede_summary(l->ede_code, buf, sizeof buf));
            if (l->ede_text[0] != '\0') {
                say(s, ": \"");
                say_bytes(s, l->ede_text, strlen(l->ede_text));
                say(s, "\"");
            }
            say(s, ".");
        }
        break;
    case CAA_ANSWER_TIMEOUT:
        say(s, "The CAA lookup for %s failed: no answer came in time, after every try.", l->name);
        break;
    case CAA_ANSWER_NETWORK:
    default:
        say(s,
            "The CAA lookup for %s failed: the query could not be sent or its answer not "
            "read.",
            l->name);
        break;
    }
    say(s,
        " The CA refuses to issue for %s when a lookup fails, because records hidden behind "
        "the failure could forbid issuance.",
        ident);
    if (d->at > 0)
        say(s,
            " %s is a parent of %s, and the CA looks up every name from %s up to the TLD "
            "until one has records, so a failure there counts too.",
            l->name, chain[0]->name, chain[0]->name);
    if (l->target[0] != '\0')
        say(s,
            " %s is an alias (CNAME) of %s, so the failing answer concerns the nameservers "
            "of %s.",
            l->name, l->target, l->target);
    newline(s);

    if (l->answer == CAA_ANSWER_TIMEOUT) {
        say(s, "A timeout usually means a firewall in front of the authoritative nameservers "
               "drops queries of types it does not know (CAA is type 257), or a nameserver is "
               "down or unreachable. Let's Encrypt checks from several network locations, so a "
               "nameserver unreachable from some of them makes issuance fail now and then.");
        return;
    }
    if (l->answer != CAA_ANSWER_RCODE) {
        say(s, "This is a failure on this side: the resolver used by this check could not be "
               "reached. It says nothing about the domain yet.");
        return;
    }
    switch (l->rcode) {
    case 2: /* SERVFAIL */
        say(s, "SERVFAIL usually means one of: DNSSEC validation failed (the CA's resolver "
               "validates DNSSEC, and some signers produce bad signatures only for empty answers, "
               "which CAA answers mostly are); an authoritative nameserver is broken (PowerDNS "
               "before 4.0 answered SERVFAIL to CAA queries, and later versions still do when "
               "their database schema is damaged, e.g. a missing domainmetadata table); or an "
               "authoritative nameserver answered NOTIMP, which the resolver passes on as "
               "SERVFAIL.");
        break;
    case 4: /* NOTIMP */
    case 5: /* REFUSED */
        say(s,
            "A nameserver answered %s to a query for the CAA type. RFC 1035 requires a server "
            "to answer a query for a type it does not know with NOERROR and an empty answer; "
            "anything else breaks CAA checking. The DNS provider need not support CAA records, "
            "only answer correctly.",
            caa_rcode_name(l->rcode));
        if (l->rcode == 5)
            say(s, " REFUSED can also mean that a nameserver listed for the zone does not "
                   "serve it (a lame delegation).");
        break;
    case 3: /* NXDOMAIN, only an error for a name without a dot (spec §3) */
        say(s,
            "%s is the top-level domain, and the resolver says it does not exist. The CA "
            "treats that as a failure, so that it never issues for names under a TLD that "
            "was removed from the root zone. Either the name is misspelt, or the resolver "
            "does not see the real root zone.",
            l->name);
        break;
    case 1: /* FORMERR */
        say(s, "FORMERR means a server could not parse the query; old servers or middleboxes "
               "that reject unknown query types or EDNS do this.");
        break;
    default: say(s, "The CA treats any answer other than NOERROR or NXDOMAIN as a failure."); break;
    }
}

/* --------------------------------------------------------------- the fixes */

/*
 * An element that is not a method name but plainly means one ("HTTP_01",
 * "dns_01"): the method it means, else NULL.
 */
static const char *const known_methods[] = {"http-01", "dns-01", "tls-alpn-01", "dns-persist-01"};

static const char *meant_method(const char *el, size_t n)
{
    const char *const *known = known_methods;
    for (size_t k = 0; k < sizeof known_methods / sizeof known_methods[0]; k++) {
        if (strlen(known[k]) != n)
            continue;
        size_t i = 0;
        while (i < n) {
            unsigned char c = (unsigned char)el[i];
            if (c == '_')
                c = '-';
            else if (c >= 'A' && c <= 'Z')
                c = (unsigned char)(c - 'A' + 'a');
            if (c != (unsigned char)known[k][i])
                break;
            i++;
        }
        if (i == n)
            return known[k];
    }
    return NULL;
}

/*
 * The record's value with a validationmethods list every CA reads alike:
 * elements that are not method names dropped, or replaced by the method they
 * plainly mean, and `method` appended when given and missing.  NULL on
 * failure or when the value has no list.
 */
static unsigned char *corrected_methods(const struct caa_record *r, const char *method,
                                        size_t *len_out)
{
    struct caa_issue_value iv;
    struct sink v;

    if (!caa_parse_issue_value(r->value, r->value_len, &iv) || iv.methods == NULL)
        return NULL;
    if (!sink_open(&v))
        return NULL;
    size_t off = (size_t)((const unsigned char *)iv.methods - r->value);
    fwrite(r->value, 1, off, v.f);
    bool sep = false, seen = method == NULL;
    unsigned emitted = 0;
    size_t start = 0;
    for (;;) {
        size_t end = start;
        while (end < iv.methods_len && iv.methods[end] != ',')
            end++;
        const char *el = iv.methods + start;
        size_t el_len = end - start;
        if (!caa_method_token_valid(el, el_len)) {
            el = meant_method(el, el_len);
            el_len = el != NULL ? strlen(el) : 0;
        }
        /* A known method once is enough ("http-01,http_01" repaired). */
        for (size_t k = 0; el != NULL && k < sizeof known_methods / sizeof known_methods[0]; k++) {
            if (strlen(known_methods[k]) != el_len || memcmp(el, known_methods[k], el_len) != 0)
                continue;
            if (emitted & (1u << k))
                el = NULL;
            emitted |= 1u << k;
        }
        if (el != NULL) {
            say(&v, "%s%.*s", sep ? "," : "", (int)el_len, el);
            sep = true;
            if (method != NULL && strlen(method) == el_len && memcmp(el, method, el_len) == 0)
                seen = true;
        }
        if (end >= iv.methods_len)
            break;
        start = end + 1;
    }
    if (!seen)
        say(&v, "%s%s", sep ? "," : "", method);
    size_t rest = off + iv.methods_len;
    fwrite(r->value + rest, 1, r->value_len - rest, v.f);
    char *out = sink_close(&v);
    if (out == NULL)
        return NULL;
    *len_out = strlen(out);
    return (unsigned char *)out;
}

/*
 * spec §8: a validationmethods element that is not a method name is read
 * differently by different CAs.  Let's Encrypt stops at the first element
 * equal to the method in use, so what stands after it does not count; a
 * stricter CA rejects the record.  Warn about each such record of the
 * relevant set and show it corrected.
 */
static void warn_methods(struct sink *s, const struct caa_lookup *set, const struct caa_params *p)
{
    for (size_t i = 0; i < set->nrecords; i++) {
        const struct caa_record *r = &set->records[i];
        enum caa_tag t = caa_tag_kind(r->tag, r->tag_len);
        struct caa_issue_value iv;
        const char *bad = NULL;
        size_t bad_len = 0;
        if ((t != CAA_TAG_ISSUE && t != CAA_TAG_ISSUEWILD) ||
            !caa_parse_issue_value(r->value, r->value_len, &iv) || iv.methods == NULL ||
            !caa_methods_first_invalid(iv.methods, iv.methods_len, &bad, &bad_len))
            continue;
        const char *owner = set->target[0] != '\0' ? set->target : set->name;
        newline(s);
        say(s, "The record ");
        say_record(s, r);
        say(s, " at %s has \"", owner);
        say_bytes(s, bad, bad_len);
        say(s, "\" in its validationmethods, which is not a method name (only letters, digits "
               "and hyphens). ");
        if (caa_methods_match(iv.methods, iv.methods_len, p->method, NULL, NULL))
            say(s,
                "Let's Encrypt reads the list from the left and stops at %s, so it accepts "
                "the record for %s, but ",
                p->method, p->method);
        else
            say(s, "Let's Encrypt gives up on the record when it reaches it, and ");
        say(s, "other CAs may reject the whole record. Write it as:");
        size_t vlen = 0;
        unsigned char *nv = corrected_methods(r, NULL, &vlen);
        if (nv == NULL) {
            s->failed = true;
            return;
        }
        struct caa_record nr = *r;
        nr.value = nv;
        nr.value_len = vlen;
        say_zone(s, "    ", owner, &nr);
        free(nv);
    }
}

/* The lines that would make `set` authorize this CA, with records placed at
 * `owner`.  `d` is the decision for `set`. */
static void fix_records(struct sink *s, const char *owner, const struct caa_lookup *set,
                        bool wildcard, const struct caa_params *p, const struct caa_decision *d)
{
    const char *tag = "issue";
    if (wildcard && candidate_tag(set, true) == CAA_TAG_ISSUEWILD)
        tag = "issuewild";

    if (d->why == CAA_WHY_NOT_AUTHORIZED) {
        for (size_t i = 0; i < set->nrecords; i++) {
            if (d->verdicts[i] != CAA_VERDICT_METHOD_MISMATCH)
                continue;
            size_t vlen = 0;
            unsigned char *nv = corrected_methods(&set->records[i], p->method, &vlen);
            if (nv == NULL)
                break;
            struct caa_record nr = set->records[i];
            nr.value = nv;
            nr.value_len = vlen;
            newline(s);
            say(s, "Add %s to the validationmethods of the record for %s. Replace", p->method,
                p->ca_identity);
            say_zone(s, "    ", owner, &set->records[i]);
            newline(s);
            say(s, "with");
            say_zone(s, "    ", owner, &nr);
            free(nv);
            return;
        }
    }
    newline(s);
    say(s, "Publish at %s:", owner);
    say_allow_line(s, "    ", owner, tag, p);
    if (d->why == CAA_WHY_NOT_AUTHORIZED) {
        newline(s);
        say(s, "CAA records are additive: one authorizing record is enough, so the existing "
               "records can stay (a \";\" record forbids only when no record authorizes).");
    }
}

/*
 * The set without its critical unknown properties (their flags cleared) and
 * the decision for it: does removing them suffice?
 */
static enum cp_code decide_without_critical(const struct caa_lookup *set, bool wildcard,
                                            const struct caa_params *p, struct caa_lookup **copy,
                                            struct caa_decision *d2)
{
    struct caa_lookup *c = malloc(sizeof *c);
    if (c == NULL)
        return CP_ENOMEM;
    *c = *set;
    c->records = calloc(set->nrecords, sizeof *c->records);
    if (c->records == NULL) {
        free(c);
        return CP_ENOMEM;
    }
    for (size_t i = 0; i < set->nrecords; i++) {
        c->records[i] = set->records[i];
        if (caa_tag_kind(c->records[i].tag, c->records[i].tag_len) == CAA_TAG_UNKNOWN)
            c->records[i].flags = 0;
    }
    const struct caa_lookup *one[1] = {c};
    enum cp_code rc = caa_evaluate(one, 1, wildcard, p, d2, NULL);
    if (rc != CP_OK) {
        free(c->records);
        free(c);
        return rc;
    }
    *copy = c;
    return CP_OK;
}

static void free_copy(struct caa_lookup *c)
{
    if (c == NULL)
        return;
    free(c->records);
    free(c);
}

static void fix_denied(struct sink *s, const char *ident, bool wildcard,
                       const struct caa_lookup *const *chain, const struct caa_params *p,
                       const struct caa_decision *d)
{
    const struct caa_lookup *set = chain[d->at];
    const char *rname = set->name;
    const char *target = set->target;
    const char *owner = target[0] != '\0' ? target : rname;
    const char *base = chain[0]->name;

    if (target[0] != '\0') {
        say(s,
            "%s is an alias (CNAME) of %s, and the records that block issuance are published "
            "at %s, so they must change there: ask the operator of %s to change them (a "
            "CNAME cannot have CAA records next to it). Or replace the alias at %s by address "
            "records (A/AAAA) for the same server; then the CAA records of %s's own zone "
            "apply.",
            rname, target, target, target, rname, rname);
    }

    if (d->why == CAA_WHY_CRITICAL_UNKNOWN) {
        newline(s);
        say(s,
            "Remove the critical record(s) at %s, or publish them with flags 0 so that a CA "
            "that does not know the property ignores it:",
            owner);
        for (size_t i = 0; i < set->nrecords; i++) {
            if (d->verdicts[i] != CAA_VERDICT_CRITICAL)
                continue;
            struct caa_record nr = set->records[i];
            nr.flags = 0;
            say_zone(s, "    ", owner, &nr);
        }
        struct caa_lookup *copy = NULL;
        struct caa_decision d2 = {0};
        if (decide_without_critical(set, wildcard, p, &copy, &d2) != CP_OK) {
            s->failed = true;
            return;
        }
        if (d2.status != CAA_ALLOWED) {
            newline(s);
            say(s, "Without them the records there still do not allow %s; also:", p->ca_identity);
            fix_records(s, owner, copy, wildcard, p, &d2);
        }
        caa_decision_clear(&d2);
        free_copy(copy);
    } else {
        fix_records(s, owner, set, wildcard, p, d);
    }

    if (target[0] == '\0') {
        newline(s);
        say(s,
            "Records at %s also cover every name below it that has no CAA records of its "
            "own.",
            rname);
    } else {
        newline(s);
        say(s, "If you replace the alias and %s's zone publishes CAA records, they need:", rname);
        say_allow_line(s, "    ", rname, wildcard ? "issuewild" : "issue", p);
    }
    if (d->at > 0 && chain[0]->target[0] == '\0') {
        newline(s);
        say(s,
            "To allow %s for %s only, publish at %s instead; a CAA set there replaces the one "
            "at %s for %s (and the names below it), so copy any records from %s you want to "
            "keep:",
            p->ca_identity, ident, base, rname, base, rname);
        say_allow_line(s, "    ", base, wildcard ? "issuewild" : "issue", p);
    }
}

static void fix_error(struct sink *s, const struct caa_lookup *const *chain,
                      const struct caa_decision *d, const struct caa_params *p)
{
    const struct caa_lookup *l = chain[d->at];
    const char *name = l->target[0] != '\0' ? l->target : l->name;

    switch (l->answer) {
    case CAA_ANSWER_TIMEOUT:
        say(s,
            "Query each authoritative nameserver of %s directly (dig CAA %s @server). If "
            "other types are answered but CAA is not, have whoever runs the firewall in front "
            "of them let every query type through; if nothing answers, repair or replace the "
            "dead nameserver and correct the NS records.",
            name, name);
        return;
    case CAA_ANSWER_NETWORK:
        say(s, "Make sure the resolver this check uses is reachable from this host (the resolver "
               "option, or /etc/resolv.conf) and run the check again.");
        return;
    case CAA_ANSWER_RECORDS: return;
    case CAA_ANSWER_RCODE: break;
    }
    switch (l->rcode) {
    case 2:
        say(s,
            "Check the DNSSEC of %s with a DNSSEC debugger such as https://dnsviz.net/ and fix "
            "bad signatures or a stale DS record at the parent. Query each authoritative "
            "nameserver directly (dig CAA %s @server): each must answer NOERROR, with an empty "
            "answer when there is no CAA record. If they run PowerDNS, upgrade it (4.0 or "
            "later) and look in its log for database errors, e.g. a missing domainmetadata "
            "table; restore the schema. Publishing a CAA record works around servers that "
            "fail only on empty answers:",
            name, name);
        say_allow_line(s, "    ", name, "issue", p);
        return;
    case 3:
        say(s,
            "Check the spelling of the name: %s does not exist as a top-level domain. If it "
            "should, check that the resolver this check uses answers from the real root zone "
            "(dig SOA %s.).",
            name, name);
        return;
    case 4:
    case 5:
        say(s,
            "Ask the DNS provider of %s to answer CAA queries (type 257) with NOERROR, with an "
            "empty answer when there is no record, as RFC 1035 requires, or to upgrade its "
            "servers; if it cannot, move the zone to a provider that does. Check each "
            "nameserver with: dig CAA %s @server.",
            name, name);
        if (l->rcode == 5)
            say(s, " Also check that every nameserver in the NS records of the zone serves it.");
        return;
    default:
        say(s,
            "Query each authoritative nameserver of %s directly (dig CAA %s @server) and have "
            "the one that answers %s fixed so that it answers NOERROR.",
            name, name, caa_rcode_name(l->rcode));
        return;
    }
}

/* spec §10 (EDE): the summary Let's Encrypt prints for an Extended DNS Error
 * INFO-CODE (RFC 8914 §4 names the codes). */
const char *caa_ede_summary(unsigned code, char *buf, size_t size)
{
    static const char *const summaries[] = {
        "Other",
        "DNSSEC: Unsupported DNSKEY Algorithm",
        "DNSSEC: Unsupported DS Digest Type",
        "Stale Answer",
        "Forged Answer",
        "DNSSEC: Indeterminate",
        "DNSSEC: Bogus",
        "DNSSEC: Signature Expired",
        "DNSSEC: Signature Not Yet Valid",
        "DNSSEC: DNSKEY Missing",
        "DNSSEC: RRSIGs Missing",
        "DNSSEC: No Zone Key Bit Set",
        "DNSSEC: NSEC Missing",
        "Cached Error",
        "Not Ready",
        "Blocked",
        "Censored",
        "Filtered",
        "Prohibited",
        "Stale NXDOMAIN Answer",
        "Not Authoritative",
        "Not Supported",
        "No Reachable Authority",
        "Network Error between Resolver and Authority",
        "Invalid Data",
    };
    if (code < sizeof summaries / sizeof summaries[0])
        return summaries[code];
    (void)snprintf(buf, size, "Unknown Extended DNS Error code %u", code);
    return buf;
}

/* The CA's detail for a failed lookup (spec §9, §10 EDE), heap-allocated. */
static char *dns_detail(const char *ident, const struct caa_lookup *l)
{
    char what[64];
    const char *extra = "";

    /* An error answer with an Extended DNS Error is described by it. */
    if (l->answer == CAA_ANSWER_RCODE && l->has_ede) {
        char buf[64];
        const char *summary = caa_ede_summary(l->ede_code, buf, sizeof buf);
        return dup_printf("While processing CAA for %s: DNS problem: looking up CAA for %s: %s%s%s",
                          ident, l->name, summary, l->ede_text[0] != '\0' ? ": " : "", l->ede_text);
    }
    if (l->answer == CAA_ANSWER_RCODE) {
        (void)snprintf(what, sizeof what, "%s", caa_rcode_name(l->rcode));
        if (l->rcode == 2)
            extra = " - the domain's nameservers may be malfunctioning";
        else if (l->rcode == 3)
            extra = " - check that a DNS record exists for this domain";
    } else if (l->answer == CAA_ANSWER_TIMEOUT) {
        (void)snprintf(what, sizeof what, "query timed out");
    } else {
        (void)snprintf(what, sizeof what, "networking error");
    }
    return dup_printf("While processing CAA for %s: DNS problem: %s looking up CAA for %s%s", ident,
                      what, l->name, extra);
}

/* ------------------------------------------------------------------- entry */

static bool decision_fits(const struct caa_lookup *const *chain, size_t n,
                          const struct caa_decision *d)
{
    if (d->at == SIZE_MAX)
        return d->status == CAA_ALLOWED && d->why == CAA_WHY_NO_RECORDS;
    if (d->at >= n || chain == NULL || chain[d->at] == NULL)
        return false;
    for (size_t i = 0; i <= d->at; i++) {
        if (chain[i] == NULL)
            return false;
    }
    if (d->status == CAA_ERROR)
        return chain[d->at]->answer != CAA_ANSWER_RECORDS;
    const struct caa_lookup *set = chain[d->at];
    if (d->verdicts == NULL || d->nverdicts != set->nrecords || set->records == NULL)
        return false;
    if (d->why == CAA_WHY_AUTHORIZED && d->authorizing >= set->nrecords)
        return false;
    return true;
}

enum cp_code caa_explain(const char *ident, const struct caa_lookup *const *chain, size_t n,
                         const struct caa_params *params, const struct caa_decision *d,
                         struct caa_explanation *out, struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    struct sink text = {0}, fix = {0};

    if (out == NULL)
        return cp_err_set(err, CP_EINVAL, "caa_explain: no explanation to fill");
    memset(out, 0, sizeof *out);
    if (ident == NULL || params == NULL || params->ca_identity == NULL || params->method == NULL ||
        d == NULL)
        return cp_err_set(err, CP_EINVAL,
                          "caa_explain needs the identifier, the CA parameters and a decision");
    if (!decision_fits(chain, n, d))
        return cp_err_set(err, CP_EINVAL,
                          "caa_explain: the decision for %s does not match its lookups", ident);

    bool wildcard = strncmp(ident, "*.", 2) == 0;
    if (!sink_open(&text) || (d->status != CAA_ALLOWED && !sink_open(&fix))) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory explaining CAA for %s", ident);
        goto cleanup;
    }

    switch (d->status) {
    case CAA_ALLOWED: text_allowed(&text, ident, chain, n, params, d); break;
    case CAA_DENIED: {
        /* spec §9: Let's Encrypt's words, exactly. */
        out->problem_type = dup_printf("%s", PROBLEM_CAA);
        out->problem_detail =
            dup_printf("While processing CAA for %s: CAA record for %s prevents issuance", ident,
                       chain[d->at]->name);
        text_denied(&text, ident, wildcard, chain, params, d);
        fix_denied(&fix, ident, wildcard, chain, params, d);
        break;
    }
    case CAA_ERROR:
        out->problem_type = dup_printf("%s", PROBLEM_DNS);
        out->problem_detail = dns_detail(ident, chain[d->at]);
        text_error(&text, ident, chain, d);
        fix_error(&fix, chain, d, params);
        break;
    }

    if (d->status != CAA_ERROR && d->at != SIZE_MAX) {
        struct sink warn;
        if (!sink_open(&warn)) {
            rc = cp_err_set(err, CP_ENOMEM, "out of memory explaining CAA for %s", ident);
            goto cleanup;
        }
        warn_methods(&warn, chain[d->at], params);
        bool empty = ftell(warn.f) == 0;
        out->warning = sink_close(&warn);
        if (out->warning == NULL && !empty) {
            rc = cp_err_set(err, CP_ENOMEM, "out of memory explaining CAA for %s", ident);
            goto cleanup;
        }
        if (empty) {
            free(out->warning);
            out->warning = NULL;
        }
    }
    out->text = sink_close(&text);
    if (d->status != CAA_ALLOWED)
        out->fix = sink_close(&fix);
    if (out->text == NULL ||
        (d->status != CAA_ALLOWED &&
         (out->fix == NULL || out->problem_type == NULL || out->problem_detail == NULL))) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory explaining CAA for %s", ident);
        goto cleanup;
    }
    return CP_OK;

cleanup:
    sink_discard(&text);
    sink_discard(&fix);
    caa_explanation_clear(out);
    return rc;
}

void caa_explanation_clear(struct caa_explanation *e)
{
    if (e == NULL)
        return;
    free(e->problem_type);
    free(e->problem_detail);
    free(e->text);
    free(e->fix);
    free(e->warning);
    memset(e, 0, sizeof *e);
}
