/*
 * caa/caa_int.h - internals shared by the caa/ sources; not part of the public
 * interface (caa/caa.h).
 *
 * The public parser answers only "well formed or not".  The explanation wants
 * to say why a value is malformed, so the parser's worker is exposed here with
 * a description of the first fault it found.
 */
#ifndef CP_CAA_CAA_INT_H
#define CP_CAA_CAA_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "caa/caa.h"

enum caa_parse_fault {
    CAA_PARSE_OK,
    CAA_PARSE_NO_EQUALS, /* a parameter piece without '=' (an empty piece included) */
    CAA_PARSE_BAD_TAG,   /* a parameter tag byte other than an ASCII letter or digit */
    CAA_PARSE_BAD_VALUE, /* a parameter value byte outside 0x21-0x7E */
    CAA_PARSE_DUPLICATE  /* accounturi or validationmethods a second time (spec §6);
                            bad_off is the repeated tag */
};

/* Where the first fault is.  Offsets are into the parsed value. */
struct caa_parse_error {
    enum caa_parse_fault fault;
    size_t piece_off; /* the offending parameter piece, between two ';' (untrimmed) */
    size_t piece_len;
    size_t bad_off; /* the offending byte (NO_EQUALS: equal to piece_off) */
};

/*
 * caa_parse_issue_value() with the reason of a failure in *pe (may be NULL).
 * Whatever the outcome, out->issuer/issuer_len hold the trimmed first piece;
 * on failure accounturi and methods are NULL.
 */
bool caa_parse_issue_value_ex(const unsigned char *value, size_t len, struct caa_issue_value *out,
                              struct caa_parse_error *pe);

/*
 * Write `n` bytes in zone-file character-string syntax (without the quotes):
 * printable ASCII as is, `"` and `\` escaped with a backslash, any other byte
 * as \DDD.  snprintf-like: always NUL-terminates when size > 0 and returns the
 * length it needed.
 */
size_t caa_escape_bytes(const unsigned char *s, size_t n, char *buf, size_t size);

/* The challenge types Let's Encrypt knows (spec §8). */
bool caa_method_known(const char *m, size_t len);

/* A validationmethods element: one or more ALPHA, DIGIT or "-" (RFC 8657 §4). */
bool caa_method_token_valid(const char *m, size_t len);

/*
 * Let's Encrypt's evaluation of a validationmethods list (spec §8): elements
 * in order; an invalid element ends the walk with "no match", an unknown one
 * is skipped, one equal to `method` ends it with "match" (later elements are
 * not read).  When the list does not match and `bad` is not NULL, *bad and
 * *bad_len receive the invalid element that stopped the walk (NULL if none
 * did).
 */
bool caa_methods_match(const char *list, size_t len, const char *method, const char **bad,
                       size_t *bad_len);

/* The first element of a validationmethods list, wherever it stands, that is
 * not 1*(ALPHA / DIGIT / "-"): *bad and *bad_len (an empty element has length
 * 0).  False when every element is well formed. */
bool caa_methods_first_invalid(const char *list, size_t len, const char **bad, size_t *bad_len);

/* accounturi matching (spec §7), including Let's Encrypt's ACME v1 aliases. */
bool caa_account_matches(const char *uri, size_t len, const char *account);

#endif
