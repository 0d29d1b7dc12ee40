/*
 * caa/persist.c - dns-persist-01 validation records
 * (draft-ietf-acme-dns-persist): the record to publish for an account, and
 * whether the records found authorize it, rule by rule, with the reason.
 *
 * The value is a CAA issue-value, read by caa_parse_issue_value() (spec §6);
 * what is decided here is only what the draft adds: the issuer is one the
 * CA names, accounturi is mandatory and compared as a plain string,
 * policy=wildcard (case-insensitive) is needed for a wildcard name, and
 * persistUntil is a base-10 Unix time that has not passed.  No I/O.
 */
#include "caa/caa_int.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define TXT_STRING_MAX 255 /* RFC 1035 §3.3.14: octets of one character-string */
#define SHOWN_MAX      120 /* octets of a record quoted in a reason */

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* `len` bytes equal to the NUL-terminated `s`, ASCII case-insensitively. */
static bool equal_nocase(const char *a, size_t len, const char *s)
{
    if (strlen(s) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)s[i]))
            return false;
    return true;
}

static bool uri_ok(const char *u)
{
    size_t n = u ? strlen(u) : 0;
    if (n == 0 || n > CAA_PERSIST_VALUE_MAX / 2)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)u[i];
        /* RFC 8659 §4.2: a parameter value is 0x21-0x3A / 0x3C-0x7E. */
        if (c < 0x21 || c > 0x7e || c == ';')
            return false;
    }
    return true;
}

/* Append `n` bytes as zone-file character-strings of at most 255 octets. */
static bool put_strings(char *buf, size_t size, size_t *len, const char *s, size_t n)
{
    for (size_t off = 0; off < n || off == 0; off += TXT_STRING_MAX) {
        size_t part = n - off < TXT_STRING_MAX ? n - off : TXT_STRING_MAX;
        char esc[4 * TXT_STRING_MAX + 1];
        if (caa_escape_bytes((const unsigned char *)s + off, part, esc, sizeof esc) >= sizeof esc)
            return false;
        int w = snprintf(buf + *len, size - *len, "%s\"%s\"", off ? " " : "", esc);
        if (w < 0 || (size_t)w >= size - *len)
            return false;
        *len += (size_t)w;
        if (n == 0)
            break;
    }
    return true;
}

enum cp_code caa_persist_build(const char *name, const struct caa_persist_spec *spec,
                               struct caa_persist_record *out, struct cp_err *err)
{
    char ident[CAA_IDENT_MAX], base[CAA_IDENT_MAX], issuer[CAA_IDENT_MAX], ibase[CAA_IDENT_MAX];
    bool wildcard = false, iwild = false;
    memset(out, 0, sizeof *out);
    if (spec == NULL || spec->issuer == NULL || spec->account_uri == NULL)
        return cp_err_set(err, CP_EINVAL, "a dns-persist-01 record needs an issuer and an account");
    enum cp_code rc = caa_name_normalize(name, ident, base, &wildcard, err);
    if (rc != CP_OK)
        return rc;
    rc = caa_name_normalize(spec->issuer, issuer, ibase, &iwild, err);
    if (rc != CP_OK)
        return rc;
    if (iwild)
        return cp_err_set(err, CP_EINVAL, "the issuer domain name %s cannot be a wildcard",
                          spec->issuer);
    if (!uri_ok(spec->account_uri))
        return cp_err_set(err, CP_EINVAL,
                          "the account URL \"%.200s\" cannot go in a record: it must be 1 to %d "
                          "characters from 0x21 to 0x7E other than ';'",
                          spec->account_uri, CAA_PERSIST_VALUE_MAX / 2);
    if (spec->persist_until < 0)
        return cp_err_set(err, CP_EINVAL, "persistUntil cannot be before 1970");

    if ((size_t)snprintf(out->owner, sizeof out->owner, "%s.%s", CAA_PERSIST_LABEL, base) >=
        sizeof out->owner)
        return cp_err_set(err, CP_EINVAL, "%s is too long for a %s name", base, CAA_PERSIST_LABEL);
    size_t len = 0;
    int w = snprintf(out->value, sizeof out->value, "%s; accounturi=%s", ibase, spec->account_uri);
    if (w > 0)
        len = (size_t)w;
    if (w > 0 && (wildcard || spec->wildcard) && len < sizeof out->value) {
        w = snprintf(out->value + len, sizeof out->value - len, "; policy=wildcard");
        len += w > 0 ? (size_t)w : 0;
    }
    if (w > 0 && spec->persist_until > 0 && len < sizeof out->value) {
        w = snprintf(out->value + len, sizeof out->value - len, "; persistUntil=%lld",
                     spec->persist_until);
        len += w > 0 ? (size_t)w : 0;
    }
    if (w < 0 || len >= sizeof out->value)
        return cp_err_set(err, CP_EINVAL, "the record for %s is too long", ident);

    size_t zl = 0;
    w = snprintf(out->zone_line, sizeof out->zone_line, "%s. IN TXT ", out->owner);
    if (w < 0 || (size_t)w >= sizeof out->zone_line)
        return cp_err_set(err, CP_EINVAL, "the record for %s is too long", ident);
    zl = (size_t)w;
    if (!put_strings(out->zone_line, sizeof out->zone_line, &zl, out->value, len))
        return cp_err_set(err, CP_EINVAL, "the record for %s is too long", ident);
    return CP_OK;
}

/* draft §4.1 item 5: a base-10 integer, no sign; one that does not fit in
 * 64 bits is no time this side of the sun's end, so it is malformed too. */
static bool parse_until(const char *s, size_t len, long long *out)
{
    if (len == 0 || len > 19)
        return false;
    unsigned long long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long long)(s[i] - '0');
    }
    if (v > (unsigned long long)INT64_MAX)
        return false;
    *out = (long long)v;
    return true;
}

enum caa_persist_fault caa_persist_judge(const char *ident, const unsigned char *value, size_t len,
                                         const struct caa_persist_check *c,
                                         long long *persist_until)
{
    struct caa_issue_value iv;
    long long until = -1;
    if (persist_until != NULL)
        *persist_until = -1;
    bool parsed = caa_parse_issue_value(value, len, &iv);
    /* The issuer first: a record for another CA is not ours to call malformed. */
    bool ours = false;
    for (size_t i = 0; i < c->nissuers && !ours; i++)
        ours = iv.issuer_len > 0 && equal_nocase(iv.issuer, iv.issuer_len, c->issuers[i]);
    if (!ours)
        return CAA_PERSIST_OTHER_ISSUER;
    if (!parsed || iv.persist_repeated)
        return CAA_PERSIST_MALFORMED;
    if (iv.persist_until != NULL && !parse_until(iv.persist_until, iv.persist_until_len, &until))
        return CAA_PERSIST_MALFORMED;
    if (persist_until != NULL)
        *persist_until = until;
    if (iv.accounturi == NULL)
        return CAA_PERSIST_NO_ACCOUNT;
    /* draft §4.1: simple string comparison, no case folding. */
    if (iv.accounturi_len != strlen(c->account_uri) ||
        memcmp(iv.accounturi, c->account_uri, iv.accounturi_len) != 0)
        return CAA_PERSIST_OTHER_ACCOUNT;
    bool wildcard = ident != NULL && strncmp(ident, "*.", 2) == 0;
    /* draft §4.1 item 4: any other policy value counts as none. */
    if (wildcard && (iv.policy == NULL || !equal_nocase(iv.policy, iv.policy_len, "wildcard")))
        return CAA_PERSIST_NOT_WILDCARD;
    /* draft §4.1 item 5: not valid for new validations after T. */
    if (until >= 0 && c->now > until)
        return CAA_PERSIST_EXPIRED;
    return CAA_PERSIST_AUTHORIZES;
}

static void utc(long long t, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, size, "?");
}

/* The reason in words for record `v` of fault `f`. */
static void reason(char *out, size_t size, const char *ident, const char *owner,
                   const struct caa_persist_txt *v, enum caa_persist_fault f,
                   const struct caa_persist_check *c, long long until)
{
    char shown[4 * SHOWN_MAX + 8];
    size_t n = v->len < SHOWN_MAX ? v->len : SHOWN_MAX;
    caa_escape_bytes(v->data, n, shown, sizeof shown);
    if (v->len > n)
        strncat(shown, "...", sizeof shown - strlen(shown) - 1);
    struct caa_issue_value iv;
    (void)caa_parse_issue_value(v->data, v->len, &iv);
    char when[40];
    switch (f) {
    case CAA_PERSIST_OTHER_ISSUER:
        snprintf(out, size,
                 "the TXT record \"%s\" at %s names another CA than %s (dns-persist-01 needs the "
                 "CA's issuer domain name first)",
                 shown, owner, c->issuers[0]);
        break;
    case CAA_PERSIST_MALFORMED:
        snprintf(out, size,
                 "the TXT record \"%s\" at %s is malformed (not the CAA issue-value syntax, a "
                 "parameter given twice, or persistUntil not a base-10 Unix time)",
                 shown, owner);
        break;
    case CAA_PERSIST_NO_ACCOUNT:
        snprintf(out, size, "the TXT record \"%s\" at %s has no accounturi (it is mandatory)",
                 shown, owner);
        break;
    case CAA_PERSIST_OTHER_ACCOUNT:
        snprintf(out, size, "the TXT record \"%s\" at %s is for another account than %s", shown,
                 owner, c->account_uri);
        break;
    case CAA_PERSIST_NOT_WILDCARD:
        snprintf(out, size,
                 "%s is a wildcard name, and the TXT record \"%s\" at %s lacks policy=wildcard",
                 ident, shown, owner);
        break;
    case CAA_PERSIST_EXPIRED:
        utc(until, when, sizeof when);
        snprintf(out, size, "the TXT record \"%s\" at %s expired at persistUntil=%lld (%s)", shown,
                 owner, until, when);
        break;
    case CAA_PERSIST_AUTHORIZES: out[0] = '\0'; break;
    }
}

enum cp_code caa_persist_evaluate(const char *ident, const struct caa_persist_txt *txts, size_t n,
                                  const struct caa_persist_check *c,
                                  struct caa_persist_verdict *out, struct cp_err *err)
{
    char id[CAA_IDENT_MAX], base[CAA_IDENT_MAX], owner[CAA_PERSIST_OWNER_MAX];
    bool wildcard = false;
    memset(out, 0, sizeof *out);
    out->record = SIZE_MAX;
    out->persist_until = -1;
    out->fault = CAA_PERSIST_OTHER_ISSUER;
    if (c == NULL || c->nissuers == 0 || c->issuers == NULL || c->account_uri == NULL)
        return cp_err_set(err, CP_EINVAL, "dns-persist-01: no issuer or account to check against");
    if (c->nissuers > CAA_PERSIST_ISSUERS_MAX)
        return cp_err_set(err, CP_EINVAL, "dns-persist-01: more than %d issuer domain names",
                          CAA_PERSIST_ISSUERS_MAX);
    enum cp_code rc = caa_name_normalize(ident, id, base, &wildcard, err);
    if (rc != CP_OK)
        return rc;
    snprintf(owner, sizeof owner, "%s.%s", CAA_PERSIST_LABEL, base);

    for (size_t i = 0; i < n; i++) {
        long long until = -1;
        enum caa_persist_fault f = caa_persist_judge(id, txts[i].data, txts[i].len, c, &until);
        if (out->record == SIZE_MAX || f > out->fault) {
            out->record = i;
            out->fault = f;
            out->persist_until = until;
        }
        if (f == CAA_PERSIST_AUTHORIZES)
            break;
    }
    if (out->record == SIZE_MAX) {
        snprintf(out->reason, sizeof out->reason,
                 "there is no TXT record at %s: publish the dns-persist-01 record there", owner);
        return CP_OK;
    }
    out->authorized = out->fault == CAA_PERSIST_AUTHORIZES;
    reason(out->reason, sizeof out->reason, id, owner, &txts[out->record], out->fault, c,
           out->persist_until);
    return CP_OK;
}
