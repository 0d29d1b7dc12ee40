/* tests/unit/test_cli_config.c - cli/config.c: the "key = value" files and
 * their conversion into issue's long options (how a lineage's file is
 * updated key by key: tests/unit/test_flow_lineage.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const struct option opts[] = {
    {"domain", required_argument, NULL, 'd'},
    {"server", required_argument, NULL, 1},
    {"standalone", no_argument, NULL, 2},
    {"reuse-key", no_argument, NULL, 3},
    {"dry-run", optional_argument, NULL, 4},
    {"deploy-hook", required_argument, NULL, 5},
    {NULL, 0, NULL, 0},
};

static enum cp_code parse(const char *text, struct cli_conf *c, struct cp_err *err)
{
    return cli_conf_parse("/etc/x.conf", text, strlen(text), c, err);
}

static void keys_values_and_lines(void **state)
{
    (void)state;
    struct cli_conf c;
    struct cp_err err = {0};
    assert_int_equal(parse("# comment\n\n  domain =  a.example  \n\tdomain=b.example\r\n"
                           "server = https://ca/dir?x=1 # not a comment\nreuse_key = yes",
                           &c, &err),
                     CP_OK);
    assert_int_equal(c.n, 4);
    assert_string_equal(c.e[0].key, "domain");
    assert_string_equal(c.e[0].value, "a.example");
    assert_int_equal(c.e[0].line, 3);
    assert_string_equal(c.e[1].value, "b.example");
    assert_int_equal(c.e[1].line, 4);
    /* the value is the rest of the line, literally */
    assert_string_equal(c.e[2].value, "https://ca/dir?x=1 # not a comment");
    assert_string_equal(c.e[3].key, "reuse-key"); /* '_' is '-' */
    assert_string_equal(cli_conf_get(&c, "domain"), "b.example");
    assert_null(cli_conf_get(&c, "email"));
    cli_conf_clear(&c);
}

static void syntax_errors_name_file_and_line(void **state)
{
    (void)state;
    struct cli_conf c;
    struct cp_err err = {0};
    assert_int_equal(parse("domain = a\nthis line has no equals\n", &c, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "/etc/x.conf:2:"));
    assert_int_equal(c.n, 0);
    assert_int_equal(parse("Domain = a\n", &c, &err), CP_EINVAL); /* keys are lower case */
    assert_int_equal(parse(" = a\n", &c, &err), CP_EINVAL);
    assert_int_equal(cli_conf_parse("f", "a = b\0c", 7, &c, &err), CP_EINVAL);
    char *long_line = malloc(5000);
    memset(long_line, 'x', 4999);
    memcpy(long_line, "domain = ", 9);
    long_line[4999] = '\0';
    assert_int_equal(parse(long_line, &c, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "longer than"));
    free(long_line);
}

static void to_args(void **state)
{
    (void)state;
    struct cli_conf c;
    struct cli_args a = {0};
    struct cp_err err = {0};
    assert_int_equal(parse("domain = a\nstandalone = yes\nreuse-key = no\n"
                           "deploy-hook = /usr/bin/x y z\nserver = s\n",
                           &c, &err),
                     CP_OK);
    const char *const skip[] = {"server", NULL};
    assert_int_equal(cli_conf_to_args(&c, opts, NULL, skip, &a, &err), CP_OK);
    assert_int_equal(a.argc, 3);
    assert_string_equal(a.argv[0], "--domain=a");
    assert_string_equal(a.argv[1], "--standalone"); /* "no" adds nothing */
    assert_string_equal(a.argv[2], "--deploy-hook=/usr/bin/x y z");
    assert_null(a.argv[3]);
    assert_string_equal(a.origin[0], "/etc/x.conf:1");
    assert_string_equal(a.origin[2], "/etc/x.conf:4");
    cli_args_clear(&a);
    cli_conf_clear(&c);
}

static void refused_keys(void **state)
{
    (void)state;
    struct cli_conf c;
    struct cli_args a = {0};
    struct cp_err err = {0};
    const char *const refused[] = {"domain", NULL};

    assert_int_equal(parse("server = s\ndomain = a\n", &c, &err), CP_OK);
    assert_int_equal(cli_conf_to_args(&c, opts, refused, NULL, &a, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "/etc/x.conf:2"));
    assert_non_null(strstr(err.msg, "\"domain\""));
    cli_args_clear(&a);
    cli_conf_clear(&c);

    assert_int_equal(parse("colour = blue\n", &c, &err), CP_OK);
    assert_int_equal(cli_conf_to_args(&c, opts, NULL, NULL, &a, &err), CP_EINVAL);
    cli_args_clear(&a);
    cli_conf_clear(&c);

    /* an option with an optional argument cannot be a setting */
    assert_int_equal(parse("dry-run = yes\n", &c, &err), CP_OK);
    assert_int_equal(cli_conf_to_args(&c, opts, NULL, NULL, &a, &err), CP_EINVAL);
    cli_args_clear(&a);
    cli_conf_clear(&c);

    assert_int_equal(parse("standalone = maybe\n", &c, &err), CP_OK);
    assert_int_equal(cli_conf_to_args(&c, opts, NULL, NULL, &a, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "yes or no"));
    cli_args_clear(&a);
    cli_conf_clear(&c);

    assert_int_equal(parse("server =\n", &c, &err), CP_OK);
    assert_int_equal(cli_conf_to_args(&c, opts, NULL, NULL, &a, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "no value"));
    cli_args_clear(&a);
    cli_conf_clear(&c);
}

static void missing_file(void **state)
{
    (void)state;
    struct cli_conf c;
    struct cp_err err = {0};
    assert_int_equal(cli_conf_load("/nonexistent/certpilot.conf", true, &c, &err), CP_OK);
    assert_int_equal(c.n, 0);
    assert_int_equal(cli_conf_load("/nonexistent/certpilot.conf", false, &c, &err), CP_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent/certpilot.conf"));
}

/* hooks.d is next to the defaults file, wherever --config names it. */
static void hooks_dir_next_to_config(void **state)
{
    (void)state;
    char buf[64];
    assert_string_equal(cli_hooks_dir(NULL, buf, sizeof buf), "/etc/certpilot/hooks.d");
    assert_string_equal(cli_hooks_dir("/srv/cp/defaults.conf", buf, sizeof buf), "/srv/cp/hooks.d");
    assert_string_equal(cli_hooks_dir("local.conf", buf, sizeof buf), "./hooks.d");
    assert_string_equal(cli_hooks_dir("/config", buf, sizeof buf), "/hooks.d");
    assert_null(cli_hooks_dir("/a/very/long/directory/name/that/does/not/fit/in/sixty-four/c", buf,
                              sizeof buf));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys_values_and_lines),
        cmocka_unit_test(syntax_errors_name_file_and_line),
        cmocka_unit_test(to_args),
        cmocka_unit_test(refused_keys),
        cmocka_unit_test(missing_file),
        cmocka_unit_test(hooks_dir_next_to_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
