/*
 * caa/name.c - identifiers as the CAA check sees them (spec §2): validate,
 * normalize (lower case, no trailing dot, "*." split off) and list the names
 * whose CAA RRsets are looked up.
 *
 * Only the LDH syntax of host names is accepted (letters, digits, hyphens):
 * that is what a CA issues for.  Internationalized names must be given in
 * their ASCII (xn--) form; converting them is not this module's job.
 */
#include "caa/caa.h"

#include <stdio.h>
#include <string.h>

/* The longest input that can be valid: "*." + 253 octets + a trailing dot. */
#define INPUT_MAX (CAA_NAME_MAX + 3)

/* The input quoted for a message: printable ASCII as is, other bytes as \xNN,
 * cut short with "..." when long.  Never fails. */
static void show(const char *in, size_t len, char *buf, size_t size)
{
    size_t o = 0;
    const size_t keep = 80;

    buf[o++] = '"';
    for (size_t i = 0; i < len && i < keep && o + 8 < size; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
            buf[o++] = (char)c;
        } else {
            int w = snprintf(buf + o, size - o, "\\x%02X", c);
            if (w < 0 || (size_t)w >= size - o)
                break;
            o += (size_t)w;
        }
    }
    if (len > keep && o + 4 < size) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
}

/* How a byte is named in a message. */
static void show_char(unsigned char c, char *buf, size_t size)
{
    if (c > 0x20 && c < 0x7F && c != '\'')
        (void)snprintf(buf, size, "character '%c'", c);
    else if (c == ' ')
        (void)snprintf(buf, size, "character ' '");
    else
        (void)snprintf(buf, size, "byte 0x%02X", c);
}

static bool is_ldh(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* A dotted quad: four labels of one to three digits, each at most 255. */
static bool is_ipv4(const char *s)
{
    int labels = 0;
    while (*s != '\0') {
        unsigned v = 0;
        size_t digits = 0;
        while (*s >= '0' && *s <= '9') {
            v = v * 10 + (unsigned)(*s - '0');
            if (++digits > 3)
                return false;
            s++;
        }
        if (digits == 0 || v > 255)
            return false;
        labels++;
        if (*s == '.')
            s++;
        else if (*s != '\0')
            return false;
        else
            break;
    }
    return labels == 4;
}

enum cp_code caa_name_normalize(const char *in, char ident[CAA_IDENT_MAX], char base[CAA_IDENT_MAX],
                                bool *wildcard, struct cp_err *err)
{
    char name[INPUT_MAX + 1];
    char q[128];
    char what[32];

    if (in == NULL || ident == NULL || base == NULL || wildcard == NULL)
        return cp_err_set(err, CP_EINVAL, "no identifier given");
    ident[0] = '\0';
    base[0] = '\0';
    *wildcard = false;

    size_t len = strnlen(in, INPUT_MAX + 1);
    show(in, len, q, sizeof q);
    if (len > INPUT_MAX)
        return cp_err_set(err, CP_EINVAL, "%s: the name is too long (at most %d octets)", q,
                          CAA_NAME_MAX);

    /* spec §2: lower case (ASCII only, whatever the locale). */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        name[i] = (char)((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
    }
    name[len] = '\0';

    /* IP identifiers are validated by other means; CAA does not apply (spec §2). */
    if (memchr(name, ':', len) != NULL || (len > 0 && name[0] == '['))
        return cp_err_set(err, CP_EINVAL,
                          "%s: this is an IPv6 address; IP address identifiers have no CAA "
                          "check (CAA applies to DNS names only)",
                          q);

    /* spec §2: a trailing dot (fully qualified form) is dropped. */
    if (len > 0 && name[len - 1] == '.')
        name[--len] = '\0';
    if (len == 0)
        return cp_err_set(err, CP_EINVAL, "%s: the name is empty", q);

    const char *b = name;
    bool wild = false;
    if (name[0] == '*' && (len == 1 || name[1] == '.')) {
        if (len <= 2)
            return cp_err_set(err, CP_EINVAL,
                              "%s: a wildcard needs a base name after \"*.\", e.g. "
                              "\"*.example.com\"",
                              q);
        wild = true;
        b += 2;
    }
    size_t blen = strlen(b);

    if (is_ipv4(b))
        return cp_err_set(err, CP_EINVAL,
                          "%s: this is an IPv4 address; IP address identifiers have no CAA "
                          "check (CAA applies to DNS names only)",
                          q);
    if (blen > CAA_NAME_MAX)
        return cp_err_set(err, CP_EINVAL, "%s: the name is %zu octets long; the limit is %d", q,
                          blen, CAA_NAME_MAX);

    /* RFC 1035 §2.3.1 (LDH), RFC 1123 §2.1 (a label may start with a digit). */
    for (size_t start = 0; start <= blen;) {
        const char *dot = memchr(b + start, '.', blen - start);
        size_t end = dot != NULL ? (size_t)(dot - b) : blen;
        size_t llen = end - start;
        const char *label = b + start;

        if (llen == 0)
            return cp_err_set(err, CP_EINVAL,
                              "%s: empty label (a leading dot or two dots in a row)", q);
        if (llen > CAA_LABEL_MAX)
            return cp_err_set(err, CP_EINVAL,
                              "%s: the label \"%.20s...\" is %zu octets long; the limit is %d", q,
                              label, llen, CAA_LABEL_MAX);
        for (size_t i = 0; i < llen; i++) {
            unsigned char c = (unsigned char)label[i];
            if (is_ldh(c))
                continue;
            if (c == '*')
                return cp_err_set(err, CP_EINVAL,
                                  "%s: '*' is only allowed as the whole leftmost label, e.g. "
                                  "\"*.example.com\"",
                                  q);
            show_char(c, what, sizeof what);
            if (c >= 0x80)
                return cp_err_set(err, CP_EINVAL,
                                  "%s: %s is not allowed in a DNS name (letters, digits and "
                                  "hyphens only; give an internationalized name in its ASCII "
                                  "form, xn--...)",
                                  q, what);
            return cp_err_set(err, CP_EINVAL,
                              "%s: %s is not allowed in a DNS name (letters, digits and hyphens "
                              "only)",
                              q, what);
        }
        if (label[0] == '-' || label[llen - 1] == '-')
            return cp_err_set(err, CP_EINVAL, "%s: the label \"%.*s\" %s with a hyphen", q,
                              (int)(llen > 63 ? 63 : llen), label,
                              label[0] == '-' ? "starts" : "ends");
        start = end + 1;
    }

    /* Both fit: blen <= 253 and 2 + 253 < CAA_IDENT_MAX. */
    int w = snprintf(base, CAA_IDENT_MAX, "%s", b);
    if (w < 0 || (size_t)w >= CAA_IDENT_MAX)
        return cp_err_set(err, CP_EINTERNAL, "%s: normalized name does not fit", q);
    w = snprintf(ident, CAA_IDENT_MAX, "%s%s", wild ? "*." : "", b);
    if (w < 0 || (size_t)w >= CAA_IDENT_MAX)
        return cp_err_set(err, CP_EINTERNAL, "%s: normalized name does not fit", q);
    *wildcard = wild;
    return CP_OK;
}

size_t caa_name_chain(const char *base, const char **out, size_t max)
{
    size_t n = 0;

    /* spec §2: the name itself, then each parent down to the TLD. */
    if (base == NULL || out == NULL || base[0] == '\0')
        return 0;
    const char *p = base;
    while (n < max) {
        out[n++] = p;
        const char *dot = strchr(p, '.');
        if (dot == NULL || dot[1] == '\0')
            break;
        p = dot + 1;
    }
    return n;
}
