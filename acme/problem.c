/*
 * acme/problem.c - problem documents (RFC 7807, RFC 8555 §6.7) and Retry-After
 * (RFC 9110 §10.2.3).
 *
 * Both parse untrusted server output, so both are bounded: at most
 * PROBLEM_MAX_SUB subproblems, strings cut at PROBLEM_MAX_STR bytes on a UTF-8
 * boundary, a wait of at most RETRY_AFTER_MAX seconds.  Strings are kept as
 * the server sent them (jansson guarantees valid UTF-8 without NUL); making
 * them safe for a terminal is the output layer's job.
 *
 * HTTP-dates are parsed by hand rather than with strptime(3): %a and %b follow
 * LC_TIME, and the CLI may call setlocale(), while RFC 9110 §5.6.7 day and
 * month names are fixed English tokens.  timegm() is not POSIX either, so the
 * UTC conversion is done here with a days-from-civil calculation.
 */
#include "acme/acme.h"
#include "common/civil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PROBLEM_MAX_SUB 100
#define PROBLEM_MAX_STR 4096
#define RETRY_AFTER_MAX 86400L
#define RETRY_AT_MAX    (366LL * 86400) /* retry_at: a year ahead at most */
#define ACME_ERR_PREFIX "urn:ietf:params:acme:error:"

/* ------------------------------------------------------ problem documents */

/* A copy of s cut to at most PROBLEM_MAX_STR bytes without splitting a UTF-8
 * sequence; NULL when out of memory. */
static char *bounded_strdup(const char *s, size_t len)
{
    if (len > PROBLEM_MAX_STR) {
        len = PROBLEM_MAX_STR;
        /* Back up over continuation bytes (10xxxxxx) to a lead byte, and cut before it. */
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

/* obj[key] as a bounded copy when it is a JSON string.  Returns false only when
 * out of memory; *out stays NULL when the member is absent or not a string. */
static bool take_string(const json_t *obj, const char *key, char **out)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!json_is_string(v))
        return true;
    *out = bounded_strdup(json_string_value(v), json_string_length(v));
    return *out != NULL;
}

static void subproblem_clear(struct acme_subproblem *s)
{
    free(s->type);
    free(s->detail);
    free(s->ident_type);
    free(s->ident_value);
    memset(s, 0, sizeof *s);
}

/* RFC 8555 §6.7.1: a subproblem is a problem document with an "identifier". */
static bool subproblem_parse(const json_t *obj, struct acme_subproblem *s)
{
    const json_t *ident = json_object_get(obj, "identifier");
    if (!take_string(obj, "type", &s->type) || !take_string(obj, "detail", &s->detail))
        return false;
    if (s->type == NULL) {
        /* RFC 7807 §4.2: an absent "type" means "about:blank"; keep type non-NULL. */
        s->type = strdup("about:blank");
        if (s->type == NULL)
            return false;
    }
    if (json_is_object(ident) && (!take_string(ident, "type", &s->ident_type) ||
                                  !take_string(ident, "value", &s->ident_value)))
        return false;
    return true;
}

enum cp_code acme_problem_parse(const char *body, size_t len, struct acme_problem *out,
                                struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    json_error_t jerr;
    json_t *doc = NULL;

    if (out == NULL)
        return cp_err_set(err, CP_EINTERNAL, "acme_problem_parse: no output");
    memset(out, 0, sizeof *out);
    if (body == NULL || len == 0)
        return cp_err_set(err, CP_EPROTO, "problem document is empty");

    /* Duplicate members would make "type" or "detail" ambiguous: refuse them. */
    doc = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (doc == NULL) {
        rc = cp_err_set(err, CP_EPROTO, "problem document is not valid JSON: %s (offset %d)",
                        jerr.text, jerr.position);
        goto out;
    }
    if (!json_is_object(doc)) {
        rc = cp_err_set(err, CP_EPROTO, "problem document is not a JSON object");
        goto out;
    }
    const json_t *type = json_object_get(doc, "type");
    if (!json_is_string(type)) {
        rc = cp_err_set(err, CP_EPROTO, "problem document has no string \"type\"");
        goto out;
    }
    if (!take_string(doc, "type", &out->type) || !take_string(doc, "detail", &out->detail))
        goto nomem;

    /* "status" is advisory (RFC 7807 §3.1); anything but a plausible HTTP status is ignored. */
    const json_t *status = json_object_get(doc, "status");
    if (json_is_integer(status) && json_integer_value(status) >= 100 &&
        json_integer_value(status) <= 599)
        out->status = (int)json_integer_value(status);

    const json_t *subs = json_object_get(doc, "subproblems");
    if (json_is_array(subs)) {
        size_t n = 0;
        for (size_t i = 0; i < json_array_size(subs); i++)
            if (json_is_object(json_array_get(subs, i)))
                n++;
        if (n > PROBLEM_MAX_SUB) {
            out->subproblems_dropped = n - PROBLEM_MAX_SUB;
            n = PROBLEM_MAX_SUB;
        }
        if (n > 0) {
            out->subproblems = calloc(n, sizeof *out->subproblems);
            if (out->subproblems == NULL)
                goto nomem;
        }
        for (size_t i = 0; i < json_array_size(subs) && out->nsubproblems < n; i++) {
            const json_t *sub = json_array_get(subs, i);
            if (!json_is_object(sub))
                continue;
            /* Count it first so that clear() frees a half-filled entry. */
            struct acme_subproblem *s = &out->subproblems[out->nsubproblems++];
            if (!subproblem_parse(sub, s))
                goto nomem;
        }
    }
    goto out;

nomem:
    rc = cp_err_set(err, CP_ENOMEM, "out of memory parsing a problem document");
out:
    json_decref(doc);
    if (rc != CP_OK)
        acme_problem_clear(out);
    return rc;
}

void acme_problem_clear(struct acme_problem *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->nsubproblems; i++)
        subproblem_clear(&p->subproblems[i]);
    free(p->subproblems);
    free(p->type);
    free(p->detail);
    memset(p, 0, sizeof *p);
}

bool acme_problem_is(const struct acme_problem *p, const char *name)
{
    const size_t plen = sizeof ACME_ERR_PREFIX - 1;
    if (p == NULL || p->type == NULL || name == NULL)
        return false;
    return strncmp(p->type, ACME_ERR_PREFIX, plen) == 0 && strcmp(p->type + plen, name) == 0;
}

/* ------------------------------------------------------------ Retry-After */

static const char *const wkday[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const weekday[7] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                       "Friday", "Saturday", "Sunday"};
static const char *const month_names[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

struct http_date {
    int year, mon, mday, hour, min, sec; /* mon 1..12 */
};

/* Match one of `names` at *p (case-sensitive: RFC 9110 §5.6.7); advance past it. */
static bool match_name(const char **p, const char *const *names, int n, int *index)
{
    for (int i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (strncmp(*p, names[i], len) == 0) {
            *p += len;
            if (index != NULL)
                *index = i;
            return true;
        }
    }
    return false;
}

static bool match_lit(const char **p, const char *lit)
{
    size_t len = strlen(lit);
    if (strncmp(*p, lit, len) != 0)
        return false;
    *p += len;
    return true;
}

/* Exactly `n` ASCII digits. */
static bool match_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char)(*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* time-of-day = hour ":" minute ":" second */
static bool match_time(const char **p, struct http_date *d)
{
    return match_digits(p, 2, &d->hour) && match_lit(p, ":") && match_digits(p, 2, &d->min) &&
           match_lit(p, ":") && match_digits(p, 2, &d->sec);
}

static bool match_month(const char **p, struct http_date *d)
{
    int m;
    if (!match_name(p, month_names, 12, &m))
        return false;
    d->mon = m + 1;
    return true;
}

/* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
static bool parse_imf(const char *p, struct http_date *d)
{
    return match_name(&p, wkday, 7, NULL) && match_lit(&p, ", ") && match_digits(&p, 2, &d->mday) &&
           match_lit(&p, " ") && match_month(&p, d) && match_lit(&p, " ") &&
           match_digits(&p, 4, &d->year) && match_lit(&p, " ") && match_time(&p, d) &&
           match_lit(&p, " GMT") && *p == '\0';
}

/* rfc850-date: Sunday, 06-Nov-94 08:49:37 GMT; the two-digit year is resolved
 * by the caller (RFC 9110 §5.6.7: never more than 50 years in the future). */
static bool parse_rfc850(const char *p, struct http_date *d)
{
    return match_name(&p, weekday, 7, NULL) && match_lit(&p, ", ") &&
           match_digits(&p, 2, &d->mday) && match_lit(&p, "-") && match_month(&p, d) &&
           match_lit(&p, "-") && match_digits(&p, 2, &d->year) && match_lit(&p, " ") &&
           match_time(&p, d) && match_lit(&p, " GMT") && *p == '\0';
}

/* asctime-date: Sun Nov  6 08:49:37 1994 (day is 2DIGIT or SP 1DIGIT) */
static bool parse_asctime(const char *p, struct http_date *d)
{
    if (!(match_name(&p, wkday, 7, NULL) && match_lit(&p, " ") && match_month(&p, d) &&
          match_lit(&p, " ")))
        return false;
    if (*p == ' ') {
        p++;
        if (!match_digits(&p, 1, &d->mday))
            return false;
    } else if (!match_digits(&p, 2, &d->mday)) {
        return false;
    }
    return match_lit(&p, " ") && match_time(&p, d) && match_lit(&p, " ") &&
           match_digits(&p, 4, &d->year) && *p == '\0';
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool date_valid(const struct http_date *d)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (d->mon < 1 || d->mon > 12 || d->mday < 1)
        return false;
    int dim = mdays[d->mon - 1] + (d->mon == 2 && is_leap(d->year));
    /* second 60: a leap second (RFC 5322 §3.3 allows it in IMF dates). */
    return d->mday <= dim && d->hour <= 23 && d->min <= 59 && d->sec <= 60;
}

static int64_t date_to_unix(const struct http_date *d)
{
    return cp_days_from_civil(d->year, d->mon, d->mday) * 86400 + (int64_t)d->hour * 3600 +
           (int64_t)d->min * 60 + d->sec;
}

/* The year of `now` in UTC. */
static int utc_year(time_t now)
{
    int64_t days = (int64_t)now / 86400 - ((int64_t)now % 86400 < 0);
    /* Invert days_from_civil for the year only (same algorithm, other direction). */
    days += 719468;
    const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    const int64_t doe = days - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    return (int)(yoe + era * 400 + (mp >= 10));
}

bool acme_timestamp_parse(const char *s, long long *out)
{
    struct http_date d = {0};
    const char *p = s;
    if (s == NULL ||
        !(match_digits(&p, 4, &d.year) && match_lit(&p, "-") && match_digits(&p, 2, &d.mon) &&
          match_lit(&p, "-") && match_digits(&p, 2, &d.mday)))
        return false;
    if (*p != 'T' && *p != 't')
        return false;
    p++;
    if (!match_time(&p, &d) || !date_valid(&d))
        return false;
    if (*p == '.') { /* time-secfrac: at least one digit */
        p++;
        size_t n = strspn(p, "0123456789");
        if (n == 0)
            return false;
        p += n;
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (!(match_digits(&p, 2, &oh) && match_lit(&p, ":") && match_digits(&p, 2, &om)) ||
            oh > 23 || om > 59)
            return false;
        offset = sign * ((int64_t)oh * 3600 + (int64_t)om * 60);
    } else {
        return false;
    }
    if (*p != '\0')
        return false;
    *out = (long long)(date_to_unix(&d) - offset);
    return true;
}

/* Seconds from `now` to what `value` names, at most `cap`; -1 when unusable. */
static long long retry_delta(const char *value, time_t now, long long cap)
{
    char buf[64];
    if (value == NULL)
        return -1;

    /* Trim OWS (SP / HTAB) around the field value. */
    while (*value == ' ' || *value == '\t')
        value++;
    size_t len = strlen(value);
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
        len--;
    if (len == 0)
        return -1;

    /* delay-seconds = 1*DIGIT, saturating instead of overflowing. */
    size_t ndigits = strspn(value, "0123456789");
    if (ndigits >= len) {
        long long v = 0;
        for (size_t i = 0; i < len && v <= cap; i++)
            v = v * 10 + (value[i] - '0');
        return v > cap ? cap : v;
    }

    /* HTTP-date: the longest form ("Wednesday, 09-Nov-94 08:49:37 GMT") is 33 bytes. */
    if (len >= sizeof buf)
        return -1;
    memcpy(buf, value, len);
    buf[len] = '\0';

    struct http_date d = {0};
    if (!parse_imf(buf, &d) && !parse_asctime(buf, &d)) {
        if (!parse_rfc850(buf, &d))
            return -1;
        int this_year = utc_year(now);
        d.year += this_year - this_year % 100;
        if (d.year > this_year + 50)
            d.year -= 100;
    }
    if (!date_valid(&d))
        return -1;

    int64_t delta = date_to_unix(&d) - (int64_t)now;
    if (delta <= 0)
        return 0;
    return delta > cap ? cap : (long long)delta;
}

long acme_retry_after(const char *value, time_t now)
{
    return (long)retry_delta(value, now, RETRY_AFTER_MAX);
}

long long acme_retry_at(const char *value, time_t now)
{
    long long d = retry_delta(value, now, RETRY_AT_MAX);
    return d < 0 ? -1 : (long long)now + d;
}
