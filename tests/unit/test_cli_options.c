/* tests/unit/test_cli_options.c - cli/options.c: long options only as spelled
 * in full, and the option suggested for a typo. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static char said[512];

/* cli/output.c is not linked: keep what would have been printed. */
void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(said, sizeof said, fmt, ap);
    va_end(ap);
}

static const struct option opts[] = {
    {"domain", required_argument, NULL, 'd'}, {"domains", required_argument, NULL, 1},
    {"force-renewal", no_argument, NULL, 2},  {"reuse-key", no_argument, NULL, 3},
    {"replace-names", no_argument, NULL, 4},  {"dry-run", optional_argument, NULL, 5},
    {"json", no_argument, NULL, 6},           {NULL, 0, NULL, 0},
};

static size_t dist(const char *a, const char *b)
{
    return cli_edit_distance(a, strlen(a), b, strlen(b));
}

static void edit_distance(void **state)
{
    (void)state;
    assert_int_equal(dist("", ""), 0);
    assert_int_equal(dist("json", "json"), 0);
    assert_int_equal(dist("jsn", "json"), 1);
    assert_int_equal(dist("josn", "json"), 2); /* a swap is two edits */
    assert_int_equal(dist("kitten", "sitting"), 3);
    assert_int_equal(dist("", "abc"), 3);
    char longer[80];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    assert_int_equal(dist(longer, "a"), (size_t)-1);
}

static const char *suggest(const char *given)
{
    return cli_option_suggest(given, strlen(given), opts);
}

static void suggestions(void **state)
{
    (void)state;
    assert_string_equal(suggest("force-renew"), "force-renewal"); /* the one it starts */
    assert_string_equal(suggest("force-renewl"), "force-renewal");
    assert_string_equal(suggest("jsn"), "json");
    assert_string_equal(suggest("reuse-kye"), "reuse-key");
    assert_string_equal(suggest("domian"), "domain");
    assert_null(suggest("re"));                      /* a prefix of two, and far from both */
    assert_null(suggest("frobnicate"));              /* close to nothing */
    assert_string_equal(suggest("domai"), "domain"); /* prefix of two, but one edit away */
}

static int find(int argc, char **argv)
{
    return cli_options_find_inexact(argc, argv, ":hvd:", opts);
}

static void exact_only(void **state)
{
    (void)state;
    char *ok[] = {"issue", "--domain", "--jsn", "-d", "--force-renew", "--json", "--dry-run=order",
                  "name",  "-vd",      "--x",   "--", "--whatever"};
    /* values of --domain and -d (also in a cluster) are not options */
    assert_int_equal(find(12, ok), -1);
    char *prefix[] = {"issue", "-d", "a.test", "--force-renew"};
    assert_int_equal(find(4, prefix), 3);
    char *with_value[] = {"issue", "--dom=a.test"};
    assert_int_equal(find(2, with_value), 1);
    char *bare[] = {"issue", "-", "--dry-run", "x"}; /* optional: x is an operand */
    assert_int_equal(find(4, bare), -1);

    said[0] = '\0';
    assert_int_equal(cli_options_exact(4, prefix, ":hvd:", opts, "issue"), CLI_EXIT_USAGE);
    assert_non_null(strstr(said, "\"--force-renew\""));
    assert_non_null(strstr(said, "did you mean --force-renewal?"));
    said[0] = '\0';
    assert_int_equal(cli_options_exact(2, with_value, ":hvd:", opts, "issue"), CLI_EXIT_USAGE);
    assert_non_null(strstr(said, "\"--dom\""));
    said[0] = '\0';
    assert_int_equal(cli_options_exact(12, ok, ":hvd:", opts, "issue"), 0);
    assert_string_equal(said, "");
}

static int key(const char *type, const char *curve, const char *size, enum acme_key_type *t)
{
    char msg[256];
    *t = ACME_KEY_RSA4096; /* untouched when nothing is given */
    msg[0] = '\0';
    int rc = cli_key_type_resolve(type, curve, size, t, msg, sizeof msg);
    assert_true(rc == 0 ? msg[0] == '\0' : msg[0] != '\0');
    return rc;
}

static void key_types(void **state)
{
    (void)state;
    enum acme_key_type t;
    assert_int_equal(key(NULL, NULL, NULL, &t), 0);
    assert_int_equal(t, ACME_KEY_RSA4096);
    assert_int_equal(key("ecdsa", NULL, NULL, &t), 0);
    assert_int_equal(t, ACME_KEY_EC256);
    assert_int_equal(key("ecdsa", "secp384r1", NULL, &t), 0);
    assert_int_equal(t, ACME_KEY_EC384);
    assert_int_equal(key("ecdsa", "secp256r1", NULL, &t), 0);
    assert_int_equal(t, ACME_KEY_EC256);
    assert_int_equal(key("rsa", NULL, NULL, &t), 0);
    assert_int_equal(t, ACME_KEY_RSA2048);
    assert_int_equal(key("rsa", NULL, "3072", &t), 0);
    assert_int_equal(t, ACME_KEY_RSA3072);
    assert_int_equal(key(NULL, NULL, "4096", &t), 0); /* a size alone: RSA */
    assert_int_equal(t, ACME_KEY_RSA4096);
    assert_int_equal(key(NULL, "secp384r1", NULL, &t), 0); /* a curve alone: ECDSA */
    assert_int_equal(t, ACME_KEY_EC384);
    assert_int_equal(key("ec384", "secp384r1", NULL, &t), 0); /* both say the same */
    assert_int_equal(t, ACME_KEY_EC384);
    assert_int_equal(key("rsa3072", NULL, "3072", &t), 0);
    assert_int_equal(t, ACME_KEY_RSA3072);
    assert_int_equal(key("rsa2048", NULL, NULL, &t), 0);
    assert_int_equal(t, ACME_KEY_RSA2048);
    /* refused: conflicts and unknown values */
    assert_int_equal(key("rsa", "secp256r1", NULL, &t), -1);
    assert_int_equal(key("ecdsa", NULL, "2048", &t), -1);
    assert_int_equal(key(NULL, "secp256r1", "2048", &t), -1);
    assert_int_equal(key("ec256", "secp384r1", NULL, &t), -1);
    assert_int_equal(key("ec256", NULL, "2048", &t), -1);
    assert_int_equal(key("rsa2048", NULL, "4096", &t), -1);
    assert_int_equal(key("rsa4096", "secp384r1", NULL, &t), -1);
    assert_int_equal(key("dsa", NULL, NULL, &t), -1);
    assert_int_equal(key(NULL, "secp521r1", NULL, &t), -1);
    assert_int_equal(key("rsa", NULL, "1024", &t), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(edit_distance),
        cmocka_unit_test(suggestions),
        cmocka_unit_test(exact_only),
        cmocka_unit_test(key_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
