/* tests/unit/test_common_conf.c - common/conf.c, the "key = value" syntax:
 * what is a setting, what is skipped, how keys and values are trimmed and
 * spelt, and where the scan stops. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/conf.h"

/* Every setting as "LINE:key=value;", appended to a buffer. */
struct seen {
    char text[512];
    unsigned stop_at; /* a line whose setting is refused (CP_EIO); 0: none */
};

static enum cp_code collect(void *ctx, const char *key, const char *value, unsigned line,
                            struct cp_err *err)
{
    struct seen *s = ctx;
    if (line == s->stop_at)
        return cp_err_set(err, CP_EIO, "stopped at %u", line);
    size_t used = strlen(s->text);
    snprintf(s->text + used, sizeof s->text - used, "%u:%s=%s;", line, key, value);
    return CP_OK;
}

static enum cp_code scan(const char *text, struct seen *s, struct cp_err *err)
{
    return cp_conf_scan("f.conf", text, strlen(text), collect, s, err);
}

static void test_settings(void **st)
{
    (void)st;
    struct seen s = {0};
    struct cp_err err = {0};
    assert_int_equal(scan("# a comment\n"
                          "\n"
                          "  server =  https://ca.test/dir  \r\n"
                          "reuse_key=yes\n"
                          "\t# indented comment\n"
                          "domain = a.test\n"
                          "empty =\n"
                          "domain = b = c",
                          &s, &err),
                     CP_OK);
    assert_string_equal(s.text, "3:server=https://ca.test/dir;4:reuse-key=yes;6:domain=a.test;"
                                "7:empty=;8:domain=b = c;");
}

static void test_refusals(void **st)
{
    (void)st;
    struct seen s = {0};
    struct cp_err err = {0};
    assert_int_equal(scan("a = 1\nno equals sign\nb = 2\n", &s, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "f.conf:2: \"no equals sign\" is not a setting"));
    assert_string_equal(s.text, "1:a=1;"); /* what came before was handed over */

    memset(&s, 0, sizeof s);
    assert_int_equal(scan("Server = x\n", &s, &err), CP_EINVAL); /* keys are lower case */
    assert_non_null(strstr(err.msg, "f.conf:1:"));
    assert_int_equal(scan(" = x\n", &s, &err), CP_EINVAL);
    assert_string_equal(s.text, "");

    assert_int_equal(cp_conf_scan("f.conf", "a = 1\0b", 7, collect, &s, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "NUL byte"));

    static char line[CP_CONF_LINE_MAX + 16];
    memset(line, 'x', sizeof line - 1);
    memcpy(line, "k = ", 4);
    assert_int_equal(scan(line, &s, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "f.conf:1: line longer than 4096 bytes"));
    /* The longest line allowed is read whole. */
    line[CP_CONF_LINE_MAX] = '\0';
    struct seen big = {0};
    assert_int_equal(scan(line, &big, &err), CP_OK);
}

static void test_callback_stops(void **st)
{
    (void)st;
    struct seen s = {.stop_at = 2};
    struct cp_err err = {0};
    assert_int_equal(scan("a = 1\nb = 2\nc = 3\n", &s, &err), CP_EIO);
    assert_string_equal(err.msg, "stopped at 2");
    assert_string_equal(s.text, "1:a=1;");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_callback_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
