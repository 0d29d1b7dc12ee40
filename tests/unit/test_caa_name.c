/* tests/unit/test_caa_name.c - caa/name.c: identifier validation, normalization, name chain. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "caa/caa.h"

struct norm {
    char ident[CAA_IDENT_MAX];
    char base[CAA_IDENT_MAX];
    bool wildcard;
    struct cp_err err;
};

static enum cp_code norm(const char *in, struct norm *n)
{
    memset(n, 0x55, sizeof *n); /* garbage in, to see what is reset */
    cp_err_clear(&n->err);
    return caa_name_normalize(in, n->ident, n->base, &n->wildcard, &n->err);
}

static void ok(const char *in, const char *ident, const char *base, bool wildcard)
{
    struct norm n;
    enum cp_code rc = norm(in, &n);
    if (rc != CP_OK)
        fail_msg("%s: unexpected rejection: %s", in, n.err.msg);
    assert_string_equal(n.ident, ident);
    assert_string_equal(n.base, base);
    assert_int_equal(n.wildcard, wildcard);
}

/* Rejected with CP_EINVAL, a message naming the input (`shown`) and `reason`. */
static void rejected(const char *in, const char *shown, const char *reason)
{
    struct norm n;
    enum cp_code rc = norm(in, &n);
    if (rc != CP_EINVAL)
        fail_msg("%s: expected CP_EINVAL, got %d", in, (int)rc);
    assert_int_equal(n.err.code, CP_EINVAL);
    if (strstr(n.err.msg, shown) == NULL)
        fail_msg("message does not name the input %s: %s", shown, n.err.msg);
    if (strstr(n.err.msg, reason) == NULL)
        fail_msg("message lacks \"%s\": %s", reason, n.err.msg);
    assert_false(n.wildcard);
    assert_string_equal(n.ident, "");
    assert_string_equal(n.base, "");
}

static void lower_cased_and_trailing_dot_dropped(void **state)
{
    (void)state;
    ok("Example.COM.", "example.com", "example.com", false);
    ok("WWW.Example.Com", "www.example.com", "www.example.com", false);
    ok("xn--bcher-kva.example", "xn--bcher-kva.example", "xn--bcher-kva.example", false);
    ok("a-b.1example.com", "a-b.1example.com", "a-b.1example.com", false);
    ok("123.example.com", "123.example.com", "123.example.com", false);
}

static void wildcards(void **state)
{
    (void)state;
    ok("*.Example.com", "*.example.com", "example.com", true);
    ok("*.example.com.", "*.example.com", "example.com", true);
    /* Syntactically valid, though no CA would issue it. */
    ok("*.com", "*.com", "com", true);
}

static void single_label_accepted(void **state)
{
    (void)state;
    ok("localhost", "localhost", "localhost", false);
    ok("COM.", "com", "com", false);
}

static void empty_names_rejected(void **state)
{
    (void)state;
    rejected("", "\"\"", "empty");
    rejected(".", "\".\"", "empty");
    rejected("a..b.com", "\"a..b.com\"", "empty label");
    rejected(".a.com", "\".a.com\"", "empty label");
    rejected("a.com..", "\"a.com..\"", "empty label");
}

static void bad_characters_rejected(void **state)
{
    (void)state;
    struct norm n;
    assert_int_equal(norm("exa mple.com", &n), CP_EINVAL);
    assert_string_equal(n.err.msg, "\"exa mple.com\": character ' ' is not allowed in a DNS "
                                   "name (letters, digits and hyphens only)");
    rejected("a_b.example.com", "\"a_b.example.com\"", "character '_' is not allowed");
    rejected("a\tb.com", "\"a\\x09b.com\"", "byte 0x09 is not allowed");
    rejected("a@b.com", "\"a@b.com\"", "character '@'");
    rejected("a/b", "\"a/b\"", "character '/'");
    rejected("b\xc3\xbc"
             "cher.de",
             "\"b\\xC3\\xBCcher.de\"", "xn--");
}

static void hyphens_at_label_edges_rejected(void **state)
{
    (void)state;
    rejected("-a.com", "\"-a.com\"", "label \"-a\" starts with a hyphen");
    rejected("a-.com", "\"a-.com\"", "label \"a-\" ends with a hyphen");
    rejected("www.example.com-", "\"www.example.com-\"", "ends with a hyphen");
}

static void lengths(void **state)
{
    (void)state;
    char label[80], name[300], in[300];
    memset(label, 'a', 63);
    label[63] = '\0';
    snprintf(name, sizeof name, "%s.com", label);
    ok(name, name, name, false);

    memset(label, 'a', 64);
    label[64] = '\0';
    snprintf(name, sizeof name, "%s.com", label);
    rejected(name, "\"aaaa", "64 octets long; the limit is 63");

    /* 253 octets: 4 labels of 62 + ".b" ... built as 63.63.63.61 */
    char l63[64], l61[62];
    memset(l63, 'x', 63);
    l63[63] = '\0';
    memset(l61, 'y', 61);
    l61[61] = '\0';
    snprintf(name, sizeof name, "%s.%s.%s.%s", l63, l63, l63, l61);
    assert_int_equal(strlen(name), 253);
    ok(name, name, name, false);
    assert_true((size_t)snprintf(in, sizeof in, "*.%s.", name) < sizeof in);
    struct norm n;
    assert_int_equal(norm(in, &n), CP_OK);
    assert_int_equal(strlen(n.ident), 255);
    assert_true(n.wildcard);

    snprintf(name, sizeof name, "%s.%s.%s.%sy", l63, l63, l63, l61);
    assert_int_equal(strlen(name), 254);
    rejected(name, "\"xxxx", "254 octets long; the limit is 253");

    memset(in, 'a', 299);
    in[299] = '\0';
    rejected(in, "...\"", "too long");
}

static void wildcard_misuse_rejected(void **state)
{
    (void)state;
    rejected("*", "\"*\"", "a wildcard needs a base name");
    rejected("*.", "\"*.\"", "a wildcard needs a base name");
    rejected("a.*.com", "\"a.*.com\"", "'*' is only allowed as the whole leftmost label");
    rejected("*a.com", "\"*a.com\"", "'*' is only allowed");
    rejected("**.a.com", "\"**.a.com\"", "'*' is only allowed");
    rejected("*.*.a.com", "\"*.*.a.com\"", "'*' is only allowed");
    rejected("www.*", "\"www.*\"", "'*' is only allowed");
}

static void ip_literals_rejected(void **state)
{
    (void)state;
    rejected("192.0.2.1", "\"192.0.2.1\"", "IP address identifiers have no CAA check");
    rejected("192.0.2.1.", "\"192.0.2.1.\"", "IPv4 address");
    rejected("*.192.0.2.1", "\"*.192.0.2.1\"", "IPv4 address");
    rejected("::1", "\"::1\"", "IP address identifiers have no CAA check");
    rejected("2001:DB8::1", "\"2001:DB8::1\"", "IPv6 address");
    rejected("[2001:db8::1]", "\"[2001:db8::1]\"", "IPv6 address");
    /* Not dotted quads: ordinary (if odd) names. */
    ok("1.2.3", "1.2.3", "1.2.3", false);
    ok("256.1.1.1", "256.1.1.1", "256.1.1.1", false);
    ok("1.2.3.4.example", "1.2.3.4.example", "1.2.3.4.example", false);
}

static void null_input_rejected(void **state)
{
    (void)state;
    char ident[CAA_IDENT_MAX], base[CAA_IDENT_MAX];
    bool w;
    struct cp_err err;
    assert_int_equal(caa_name_normalize(NULL, ident, base, &w, &err), CP_EINVAL);
    assert_int_equal(caa_name_normalize(NULL, ident, base, &w, NULL), CP_EINVAL);
}

static void chain_of_deep_name(void **state)
{
    (void)state;
    const char *base = "a.b.example.com";
    const char *out[8];
    size_t n = caa_name_chain(base, out, 8);
    assert_int_equal(n, 4);
    assert_string_equal(out[0], "a.b.example.com");
    assert_string_equal(out[1], "b.example.com");
    assert_string_equal(out[2], "example.com");
    assert_string_equal(out[3], "com");
    /* Borrowed pointers into `base`. */
    assert_ptr_equal(out[0], base);
    assert_ptr_equal(out[3], base + 12);
}

static void chain_of_single_label(void **state)
{
    (void)state;
    const char *out[4];
    assert_int_equal(caa_name_chain("com", out, 4), 1);
    assert_string_equal(out[0], "com");
}

static void chain_limits(void **state)
{
    (void)state;
    const char *out[2];
    assert_int_equal(caa_name_chain("a.b.example.com", out, 2), 2);
    assert_string_equal(out[1], "b.example.com");
    assert_int_equal(caa_name_chain("a.b", out, 0), 0);
    assert_int_equal(caa_name_chain("", out, 2), 0);
    assert_int_equal(caa_name_chain(NULL, out, 2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lower_cased_and_trailing_dot_dropped),
        cmocka_unit_test(wildcards),
        cmocka_unit_test(single_label_accepted),
        cmocka_unit_test(empty_names_rejected),
        cmocka_unit_test(bad_characters_rejected),
        cmocka_unit_test(hyphens_at_label_edges_rejected),
        cmocka_unit_test(lengths),
        cmocka_unit_test(wildcard_misuse_rejected),
        cmocka_unit_test(ip_literals_rejected),
        cmocka_unit_test(null_input_rejected),
        cmocka_unit_test(chain_of_deep_name),
        cmocka_unit_test(chain_of_single_label),
        cmocka_unit_test(chain_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
