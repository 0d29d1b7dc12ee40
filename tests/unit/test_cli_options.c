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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(edit_distance),
        cmocka_unit_test(suggestions),
        cmocka_unit_test(exact_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
