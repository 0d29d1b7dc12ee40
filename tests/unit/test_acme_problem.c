/* tests/unit/test_acme_problem.c - acme/problem.c: problem documents (RFC 7807,
 * RFC 8555 §6.7) and Retry-After (RFC 9110 §10.2.3). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme/acme.h"

/* Parse a C string; the copy is exactly strlen bytes so ASan catches over-reads. */
static enum cp_code parse(const char *s, struct acme_problem *pb, struct cp_err *err)
{
    size_t len = strlen(s);
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, s, len);
    enum cp_code rc = acme_problem_parse(copy, len, pb, err);
    free(copy);
    return rc;
}

/* ------------------------------------------------------ problem documents */

static void full_problem_with_subproblems(void **state)
{
    (void)state;
    /* RFC 8555 §6.7.1 example */
    const char *doc = "{\n"
                      "  \"type\": \"urn:ietf:params:acme:error:malformed\",\n"
                      "  \"detail\": \"Some of the identifiers requested were rejected\",\n"
                      "  \"status\": 400,\n"
                      "  \"subproblems\": [\n"
                      "    {\n"
                      "      \"type\": \"urn:ietf:params:acme:error:malformed\",\n"
                      "      \"detail\": \"Invalid underscore in DNS name \\\"_example.org\\\"\",\n"
                      "      \"identifier\": {\"type\": \"dns\", \"value\": \"_example.org\"}\n"
                      "    },\n"
                      "    {\n"
                      "      \"type\": \"urn:ietf:params:acme:error:rejectedIdentifier\",\n"
                      "      \"detail\": \"This CA will not issue for \\\"example.net\\\"\",\n"
                      "      \"identifier\": {\"type\": \"dns\", \"value\": \"example.net\"}\n"
                      "    }\n"
                      "  ]\n"
                      "}\n";
    struct acme_problem pb;
    struct cp_err err = {0};
    assert_int_equal(parse(doc, &pb, &err), CP_OK);
    assert_string_equal(pb.type, "urn:ietf:params:acme:error:malformed");
    assert_string_equal(pb.detail, "Some of the identifiers requested were rejected");
    assert_int_equal(pb.status, 400);
    assert_int_equal(pb.nsubproblems, 2);
    assert_string_equal(pb.subproblems[0].type, "urn:ietf:params:acme:error:malformed");
    assert_string_equal(pb.subproblems[0].detail,
                        "Invalid underscore in DNS name \"_example.org\"");
    assert_string_equal(pb.subproblems[0].ident_type, "dns");
    assert_string_equal(pb.subproblems[0].ident_value, "_example.org");
    assert_string_equal(pb.subproblems[1].type, "urn:ietf:params:acme:error:rejectedIdentifier");
    assert_string_equal(pb.subproblems[1].ident_value, "example.net");
    acme_problem_clear(&pb);
    assert_null(pb.type);
    assert_null(pb.subproblems);
    assert_int_equal(pb.nsubproblems, 0);
    acme_problem_clear(&pb); /* twice is harmless */
    acme_problem_clear(NULL);
}

static void missing_detail(void **state)
{
    (void)state;
    struct acme_problem pb;
    assert_int_equal(parse("{\"type\":\"urn:ietf:params:acme:error:badNonce\"}", &pb, NULL), CP_OK);
    assert_string_equal(pb.type, "urn:ietf:params:acme:error:badNonce");
    assert_null(pb.detail);
    assert_int_equal(pb.status, 0);
    assert_int_equal(pb.nsubproblems, 0);
    assert_null(pb.subproblems);
    acme_problem_clear(&pb);
}

static void odd_members_ignored(void **state)
{
    (void)state;
    struct acme_problem pb;
    /* detail not a string, status not a plausible HTTP status, subproblems not
     * an array, an identifier without value */
    assert_int_equal(
        parse("{\"type\":\"t\",\"detail\":5,\"status\":\"400\",\"subproblems\":{}}", &pb, NULL),
        CP_OK);
    assert_null(pb.detail);
    assert_int_equal(pb.status, 0);
    assert_int_equal(pb.nsubproblems, 0);
    acme_problem_clear(&pb);

    assert_int_equal(parse("{\"type\":\"t\",\"status\":99999999999,\"subproblems\":[1,\"x\","
                           "{\"identifier\":{\"type\":\"dns\"}},null]}",
                           &pb, NULL),
                     CP_OK);
    assert_int_equal(pb.status, 0);
    assert_int_equal(pb.nsubproblems, 1); /* only the object is kept */
    assert_string_equal(pb.subproblems[0].type, "about:blank");
    assert_null(pb.subproblems[0].detail);
    assert_string_equal(pb.subproblems[0].ident_type, "dns");
    assert_null(pb.subproblems[0].ident_value);
    acme_problem_clear(&pb);
}

static void refused(const char *doc, const char *msg_part)
{
    struct acme_problem pb;
    struct cp_err err = {0};
    memset(&pb, 0xA5, sizeof pb); /* parse must initialise it */
    assert_int_equal(parse(doc, &pb, &err), CP_EPROTO);
    assert_int_equal(err.code, CP_EPROTO);
    if (strstr(err.msg, msg_part) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, msg_part);
    assert_null(pb.type);
    assert_null(pb.detail);
    assert_null(pb.subproblems);
    acme_problem_clear(&pb);
}

static void not_an_object(void **state)
{
    (void)state;
    refused("[\"urn:ietf:params:acme:error:malformed\"]", "not a JSON object");
    refused("\"urn:ietf:params:acme:error:malformed\"", "not a JSON object");
    refused("null", "not a JSON object");
    refused("<html>502 Bad Gateway</html>", "not valid JSON");
    refused("{\"type\":\"a\"} trailing", "not valid JSON");
    refused("", "empty");
}

static void type_not_a_string(void **state)
{
    (void)state;
    refused("{\"type\": 7, \"detail\": \"x\"}", "\"type\"");
    refused("{\"type\": null}", "\"type\"");
    refused("{\"detail\": \"no type\"}", "\"type\"");
    refused("{}", "\"type\"");
}

static void duplicate_members_refused(void **state)
{
    (void)state;
    refused("{\"type\":\"urn:ietf:params:acme:error:malformed\","
            "\"type\":\"urn:ietf:params:acme:error:badNonce\"}",
            "not valid JSON");
}

static void nul_in_string_refused(void **state)
{
    (void)state;
    refused("{\"type\":\"a\\u0000b\"}", "not valid JSON");
}

static void many_subproblems_bounded(void **state)
{
    (void)state;
    size_t cap = 150 * 64 + 64, n = 0;
    char *doc = malloc(cap);
    assert_non_null(doc);
    n += (size_t)snprintf(doc + n, cap - n, "{\"type\":\"x\",\"subproblems\":[");
    for (int i = 0; i < 150; i++)
        n += (size_t)snprintf(doc + n, cap - n, "%s{\"type\":\"t%d\"}", i ? "," : "", i);
    n += (size_t)snprintf(doc + n, cap - n, "]}");
    assert_true(n < cap);

    struct acme_problem pb;
    assert_int_equal(parse(doc, &pb, NULL), CP_OK);
    assert_int_equal(pb.nsubproblems, 100);
    assert_int_equal(pb.subproblems_dropped, 50); /* said, not silently lost */
    assert_string_equal(pb.subproblems[0].type, "t0");
    assert_string_equal(pb.subproblems[99].type, "t99");
    acme_problem_clear(&pb);
    free(doc);
}

static void long_detail_cut(void **state)
{
    (void)state;
    size_t dlen = 10 * 1024;
    char *doc = malloc(dlen + 64);
    assert_non_null(doc);
    int n = snprintf(doc, 64, "{\"type\":\"x\",\"detail\":\"");
    memset(doc + n, 'a', dlen);
    strcpy(doc + n + dlen, "\"}"); /* test code: the buffer has room */

    struct acme_problem pb;
    assert_int_equal(parse(doc, &pb, NULL), CP_OK);
    assert_int_equal(strlen(pb.detail), 4096);
    assert_int_equal(pb.detail[4095], 'a');
    acme_problem_clear(&pb);
    free(doc);
}

static void long_detail_cut_at_utf8_boundary(void **state)
{
    (void)state;
    /* 4095 ASCII bytes, then "é" (C3 A9) straddling the 4096-byte limit. */
    size_t cap = 4095 + 64;
    char *doc = malloc(cap);
    assert_non_null(doc);
    int n = snprintf(doc, 64, "{\"type\":\"x\",\"detail\":\"");
    memset(doc + n, 'b', 4095);
    snprintf(doc + n + 4095, cap - (size_t)n - 4095, "\xc3\xa9zz\"}");

    struct acme_problem pb;
    assert_int_equal(parse(doc, &pb, NULL), CP_OK);
    assert_int_equal(strlen(pb.detail), 4095); /* the whole "é" is dropped, not half */
    acme_problem_clear(&pb);

    /* A 3-byte character ("€", E2 82 AC) starting at offset 4094. */
    memset(doc + n, 'b', 4094);
    snprintf(doc + n + 4094, cap - (size_t)n - 4094, "\xe2\x82\xac\"}");
    assert_int_equal(parse(doc, &pb, NULL), CP_OK);
    assert_int_equal(strlen(pb.detail), 4094);
    acme_problem_clear(&pb);

    /* Exactly 4096 bytes is kept whole. */
    memset(doc + n, 'c', 4094);
    snprintf(doc + n + 4094, cap - (size_t)n - 4094, "\xc3\xa9\"}");
    assert_int_equal(parse(doc, &pb, NULL), CP_OK);
    assert_int_equal(strlen(pb.detail), 4096);
    assert_memory_equal(pb.detail + 4094, "\xc3\xa9", 2);
    acme_problem_clear(&pb);
    free(doc);
}

static void problem_is(void **state)
{
    (void)state;
    struct acme_problem pb;
    assert_int_equal(parse("{\"type\":\"urn:ietf:params:acme:error:badNonce\"}", &pb, NULL), CP_OK);
    assert_true(acme_problem_is(&pb, "badNonce"));
    assert_false(acme_problem_is(&pb, "badnonce"));
    assert_false(acme_problem_is(&pb, "bad"));
    assert_false(acme_problem_is(&pb, "badNonceX"));
    assert_false(acme_problem_is(&pb, ""));
    assert_false(acme_problem_is(&pb, NULL));
    acme_problem_clear(&pb);

    assert_int_equal(parse("{\"type\":\"urn:example:error:badNonce\"}", &pb, NULL), CP_OK);
    assert_false(acme_problem_is(&pb, "badNonce"));
    acme_problem_clear(&pb);

    assert_false(acme_problem_is(&pb, "badNonce")); /* cleared: type NULL */
    assert_false(acme_problem_is(NULL, "badNonce"));
}

/* ------------------------------------------------------------ Retry-After */

/* 1994-11-06 08:49:37 UTC, the RFC 9110 example date. */
#define RFC_DATE ((time_t)784111777)

static void retry_after_seconds(void **state)
{
    (void)state;
    time_t now = RFC_DATE;
    assert_int_equal(acme_retry_after("120", now), 120);
    assert_int_equal(acme_retry_after("0", now), 0);
    assert_int_equal(acme_retry_after(" 5 ", now), 5);
    assert_int_equal(acme_retry_after("\t7\t", now), 7);
    assert_int_equal(acme_retry_after("0030", now), 30);
    assert_int_equal(acme_retry_after("86400", now), 86400);
    assert_int_equal(acme_retry_after("86401", now), 86400);
    assert_int_equal(acme_retry_after("99999999", now), 86400);
    assert_int_equal(acme_retry_after("999999999999999999999999999999", now), 86400);
}

static void retry_after_garbage(void **state)
{
    (void)state;
    time_t now = RFC_DATE;
    assert_int_equal(acme_retry_after("-1", now), -1);
    assert_int_equal(acme_retry_after("+5", now), -1);
    assert_int_equal(acme_retry_after("abc", now), -1);
    assert_int_equal(acme_retry_after("5s", now), -1);
    assert_int_equal(acme_retry_after("5 5", now), -1);
    assert_int_equal(acme_retry_after("1.5", now), -1);
    assert_int_equal(acme_retry_after("", now), -1);
    assert_int_equal(acme_retry_after("   ", now), -1);
    assert_int_equal(acme_retry_after(NULL, now), -1);
    /* dates that are nearly right */
    assert_int_equal(acme_retry_after("Sun, 06 Nov 1994 08:49:37 UTC", now), -1);
    assert_int_equal(acme_retry_after("sun, 06 nov 1994 08:49:37 GMT", now), -1);
    assert_int_equal(acme_retry_after("Sun, 6 Nov 1994 08:49:37 GMT", now), -1);
    assert_int_equal(acme_retry_after("Sun, 31 Nov 1994 08:49:37 GMT", now), -1);
    assert_int_equal(acme_retry_after("Sun, 29 Feb 1995 08:49:37 GMT", now), -1);
    assert_int_equal(acme_retry_after("Sun, 06 Nov 1994 24:00:00 GMT", now), -1);
    assert_int_equal(acme_retry_after("Sun, 06 Nov 1994 08:49:37 GMT x", now), -1);
    assert_int_equal(acme_retry_after("Sunday, 06 Nov 1994 08:49:37 GMT", now), -1);
    assert_int_equal(acme_retry_after("Sun Nov 6 08:49:37 1994", now), -1);
}

static void retry_at_is_not_capped_at_a_day(void **state)
{
    (void)state;
    time_t now = (time_t)1700000000;
    /* What the CA asked for, as a time: beyond a day too (a week-long limit). */
    assert_int_equal(acme_retry_at("7200", now), 1700000000LL + 7200);
    assert_int_equal(acme_retry_at("604800", now), 1700000000LL + 604800);
    assert_int_equal(acme_retry_at("Sun, 06 Nov 1994 08:50:07 GMT", RFC_DATE), RFC_DATE + 30);
    assert_int_equal(acme_retry_at("Sun, 13 Nov 1994 08:49:37 GMT", RFC_DATE), RFC_DATE + 604800);
    /* A date in the past is "now"; a year ahead at most. */
    assert_int_equal(acme_retry_at("Sat, 05 Nov 1994 08:49:37 GMT", RFC_DATE), RFC_DATE);
    assert_int_equal(acme_retry_at("99999999999", now), 1700000000LL + 366LL * 86400);
    assert_int_equal(acme_retry_at("Fri, 31 Dec 9999 23:59:59 GMT", now),
                     1700000000LL + 366LL * 86400);
    assert_int_equal(acme_retry_at("soon", now), -1);
    assert_int_equal(acme_retry_at(NULL, now), -1);
    /* The wait before an automatic retry stays capped at a day. */
    assert_int_equal(acme_retry_after("604800", now), 86400);
}

static void retry_after_imf_fixdate(void **state)
{
    (void)state;
    /* 30 s after now */
    assert_int_equal(acme_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", RFC_DATE), 30);
    assert_int_equal(acme_retry_after("  Sun, 06 Nov 1994 08:50:07 GMT ", RFC_DATE), 30);
    /* exactly now, and in the past */
    assert_int_equal(acme_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE), 0);
    assert_int_equal(acme_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", RFC_DATE), 0);
    assert_int_equal(acme_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", RFC_DATE), 0);
    /* far future: capped */
    assert_int_equal(acme_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", RFC_DATE), 86400);
    /* across a month and a leap day */
    assert_int_equal(acme_retry_after("Thu, 29 Feb 2024 00:00:10 GMT", (time_t)1709164800), 10);
    assert_int_equal(acme_retry_after("Fri, 01 Mar 2024 00:00:00 GMT", (time_t)1709164800), 86400);
    assert_int_equal(acme_retry_after("Fri, 01 Mar 2024 00:00:00 GMT", (time_t)1709164801 + 3600),
                     86400 - 3601);
}

static void retry_after_rfc850(void **state)
{
    (void)state;
    assert_int_equal(acme_retry_after("Sunday, 06-Nov-94 08:50:07 GMT", RFC_DATE), 30);
    assert_int_equal(acme_retry_after("Saturday, 05-Nov-94 08:49:37 GMT", RFC_DATE), 0);
    /* 2024-02-29 00:00:00 UTC: "24" is 2024, not 1924 */
    assert_int_equal(acme_retry_after("Thursday, 29-Feb-24 00:01:00 GMT", (time_t)1709164800), 60);
    /* "75" seen in 2024 would be more than 50 years ahead as 2075, so 1975: past */
    /* "73" is 2073: 49 years ahead is still the future */
    assert_int_equal(acme_retry_after("Sunday, 01-Jan-73 00:00:00 GMT", (time_t)1709164800), 86400);
    assert_int_equal(acme_retry_after("Wednesday, 01-Jan-75 00:00:00 GMT", (time_t)1709164800), 0);
}

static void retry_after_asctime(void **state)
{
    (void)state;
    assert_int_equal(acme_retry_after("Sun Nov  6 08:50:07 1994", RFC_DATE), 30);
    assert_int_equal(acme_retry_after("Sun Nov  6 08:49:00 1994", RFC_DATE), 0);
    assert_int_equal(acme_retry_after("Mon Nov 07 08:49:37 1994", RFC_DATE), 86400);
    assert_int_equal(acme_retry_after("Sun Nov 06 09:49:37 1994", RFC_DATE), 3600);
}

static void timestamps(void **state)
{
    (void)state;
    long long t = 0;
    assert_true(acme_timestamp_parse("1994-11-06T08:49:37Z", &t));
    assert_int_equal(t, (long long)RFC_DATE);
    assert_true(acme_timestamp_parse("1994-11-06t08:49:37z", &t));
    assert_int_equal(t, (long long)RFC_DATE);
    /* Pebble and Boulder send fractional seconds: ignored, not rounded. */
    assert_true(acme_timestamp_parse("1994-11-06T08:49:37.999999999Z", &t));
    assert_int_equal(t, (long long)RFC_DATE);
    assert_true(acme_timestamp_parse("1994-11-06T09:49:37+01:00", &t));
    assert_int_equal(t, (long long)RFC_DATE);
    assert_true(acme_timestamp_parse("1994-11-06T03:19:37-05:30", &t));
    assert_int_equal(t, (long long)RFC_DATE);
    assert_true(acme_timestamp_parse("2024-02-29T00:00:00Z", &t));
    assert_int_equal(t, 1709164800LL);
    assert_true(acme_timestamp_parse("1969-12-31T23:59:59Z", &t));
    assert_int_equal(t, -1LL);
}

static void timestamps_refused(void **state)
{
    (void)state;
    long long t = 42;
    static const char *const bad[] = {
        "",
        "1994-11-06",
        "1994-11-06T08:49:37",       /* no offset */
        "1994-11-06 08:49:37Z",      /* space instead of T */
        "1994-11-06T08:49:37.Z",     /* empty fraction */
        "1994-11-06T08:49:37Z ",     /* trailing garbage */
        "1994-11-06T08:49:37+0100",  /* offset without colon */
        "1994-11-06T08:49:37+24:00", /* offset hour */
        "1994-13-06T08:49:37Z",      /* month */
        "2023-02-29T00:00:00Z",      /* not a leap year */
        "1994-11-06T24:00:00Z",      /* hour */
        "94-11-06T08:49:37Z",
        "1994-11-06T08:49:3",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(acme_timestamp_parse(bad[i], &t));
    assert_false(acme_timestamp_parse(NULL, &t));
    assert_int_equal(t, 42); /* untouched on failure */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_problem_with_subproblems),
        cmocka_unit_test(missing_detail),
        cmocka_unit_test(odd_members_ignored),
        cmocka_unit_test(not_an_object),
        cmocka_unit_test(type_not_a_string),
        cmocka_unit_test(duplicate_members_refused),
        cmocka_unit_test(nul_in_string_refused),
        cmocka_unit_test(many_subproblems_bounded),
        cmocka_unit_test(long_detail_cut),
        cmocka_unit_test(long_detail_cut_at_utf8_boundary),
        cmocka_unit_test(problem_is),
        cmocka_unit_test(retry_after_seconds),
        cmocka_unit_test(retry_after_garbage),
        cmocka_unit_test(retry_after_imf_fixdate),
        cmocka_unit_test(retry_at_is_not_capped_at_a_day),
        cmocka_unit_test(retry_after_rfc850),
        cmocka_unit_test(retry_after_asctime),
        cmocka_unit_test(timestamps),
        cmocka_unit_test(timestamps_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
