/* tests/unit/test_flow_import_certbot.c - flow/import_certbot.c's reader of
 * certbot's renewal conf (configobj's format): what certbot 2.1 writes, what
 * configobj writes for awkward values (quotes inside, '#' and ',' quoted,
 * lists, one-line triple quotes), and odd or hostile input refused with
 * FILE:LINE or read without a crash (a deterministic run of mutated inputs
 * under the sanitizers stands in for a fuzz target: the file is local and
 * root's). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow/flow.h"

static const char certbot21[] =
    "# renew_before_expiry = 30 days\n"
    "version = 2.1.0\n"
    "archive_dir = /etc/letsencrypt/archive/web\n"
    "cert = /etc/letsencrypt/live/web/cert.pem\n"
    "privkey = /etc/letsencrypt/live/web/privkey.pem\n"
    "chain = /etc/letsencrypt/live/web/chain.pem\n"
    "fullchain = /etc/letsencrypt/live/web/fullchain.pem\n"
    "\n"
    "# Options used in the renewal process\n"
    "[renewalparams]\n"
    "account = 556ae136f209af330d0be777df0aeb9a\n"
    "pre_hook = touch /tmp/pre\n"
    "renew_hook = echo \"$RENEWED_DOMAINS\" >> /tmp/x && touch /tmp/y\n"
    "server = https://127.0.0.1:14000/dir\n"
    "authenticator = webroot\n"
    "webroot_path = /var/www/html,\n"
    "key_type = ecdsa\n"
    "deploy_hook = echo \"$RENEWED_DOMAINS\" >> /tmp/x && touch /tmp/y\n"
    "[[webroot_map]]\n"
    "web.example.test = /var/www/html\n"
    "www.web.example.test = /var/www/other\n";

static void parse_ok(const char *text, struct flow_certbot_conf *c)
{
    struct cp_err err = {0};
    enum cp_code rc = flow_certbot_conf_parse("web.conf", text, strlen(text), c, &err);
    if (rc != CP_OK)
        fail_msg("refused: %s", err.msg);
}

static void test_certbot_21(void **state)
{
    (void)state;
    struct flow_certbot_conf c;
    parse_ok(certbot21, &c);
    assert_string_equal(flow_certbot_conf_str(&c, "", "cert"),
                        "/etc/letsencrypt/live/web/cert.pem");
    assert_null(flow_certbot_conf_str(&c, "", "renew_before_expiry")); /* a comment */
    assert_null(flow_certbot_conf_str(&c, "", "server"));              /* in its section */
    assert_string_equal(flow_certbot_conf_str(&c, "renewalparams", "server"),
                        "https://127.0.0.1:14000/dir");
    assert_string_equal(flow_certbot_conf_str(&c, "renewalparams", "deploy_hook"),
                        "echo \"$RENEWED_DOMAINS\" >> /tmp/x && touch /tmp/y");
    const struct flow_certbot_entry *wp =
        flow_certbot_conf_get(&c, "renewalparams", "webroot_path");
    assert_non_null(wp);
    assert_true(wp->list);
    assert_int_equal(wp->n, 1);
    assert_string_equal(wp->values[0], "/var/www/html");
    assert_int_equal(wp->line, 16);
    assert_string_equal(
        flow_certbot_conf_str(&c, "renewalparams/webroot_map", "www.web.example.test"),
        "/var/www/other");
    assert_null(flow_certbot_conf_str(&c, "renewalparams", "web.example.test"));
    flow_certbot_conf_clear(&c);
    flow_certbot_conf_clear(&c); /* again: nothing left */
}

/* What configobj 5 writes for values that need care. */
static void test_configobj_values(void **state)
{
    (void)state;
    struct flow_certbot_conf c;
    parse_ok("pre_hook = it's\r\n"
             "both = '''a \"b\" it's'''\n"
             "list = /a, /b\n"
             "empty = ,\n"
             "blank =\n"
             "hash = \"x # y\"   # and a comment\n"
             "comma = \"a, b\"\n"
             "sp = \"  lead\"\n"
             "'quoted key' = v # comment\n"
             "  indented = yes\n"
             "[s]\n"
             "k = v\n"
             "[[ss]]\n"
             "x = 1\n"
             "[t]\n"
             "[[u]]\n"
             "y = 2",
             &c);
    assert_string_equal(flow_certbot_conf_str(&c, "", "pre_hook"), "it's");
    assert_string_equal(flow_certbot_conf_str(&c, "", "both"), "a \"b\" it's");
    const struct flow_certbot_entry *e = flow_certbot_conf_get(&c, "", "list");
    assert_int_equal(e->n, 2);
    assert_string_equal(e->values[1], "/b");
    e = flow_certbot_conf_get(&c, "", "empty");
    assert_true(e->list);
    assert_int_equal(e->n, 0);
    assert_null(flow_certbot_conf_str(&c, "", "empty"));
    assert_string_equal(flow_certbot_conf_str(&c, "", "blank"), "");
    assert_string_equal(flow_certbot_conf_str(&c, "", "hash"), "x # y");
    assert_string_equal(flow_certbot_conf_str(&c, "", "comma"), "a, b");
    assert_false(flow_certbot_conf_get(&c, "", "comma")->list);
    assert_string_equal(flow_certbot_conf_str(&c, "", "sp"), "  lead");
    assert_string_equal(flow_certbot_conf_str(&c, "", "quoted key"), "v");
    assert_string_equal(flow_certbot_conf_str(&c, "", "indented"), "yes");
    assert_string_equal(flow_certbot_conf_str(&c, "s/ss", "x"), "1");
    assert_string_equal(flow_certbot_conf_str(&c, "t/u", "y"), "2");
    assert_null(flow_certbot_conf_str(&c, "s", "y"));
    flow_certbot_conf_clear(&c);
}

/* `text` is refused with "web.conf:LINE: ..." containing `needle`. */
static void refused(const char *text, unsigned line, const char *needle)
{
    struct flow_certbot_conf c;
    struct cp_err err = {0};
    char where[32];
    assert_int_equal(flow_certbot_conf_parse("web.conf", text, strlen(text), &c, &err), CP_EINVAL);
    assert_null(c.e);
    assert_int_equal(c.n, 0);
    snprintf(where, sizeof where, "web.conf:%u: ", line);
    if (strncmp(err.msg, where, strlen(where)) != 0 || strstr(err.msg, needle) == NULL)
        fail_msg("\"%s\": message \"%s\", expected %s...%s", text, err.msg, where, needle);
}

static void test_refused(void **state)
{
    (void)state;
    refused("a = 1\nb = \"open\n", 2, "not closed");
    refused("nl = '''a\nb'''\n", 1, "multi-line");
    refused("[[sub]]\nx = 1\n", 1, "outside a [section]");
    refused("[a]]\n", 1, "not closed like it opens");
    refused("[[[deep]]]\n", 1, "nested too deep");
    refused("[]\n", 1, "without a name");
    refused("[a/b]\n", 1, "'/'");
    refused("[a] junk\n", 1, "not closed like it opens");
    refused("just words\n", 1, "not \"key = value\"");
    refused(" = v\n", 1, "not \"key = value\"");
    refused("k = \"q\" tail\n", 1, "text after a quoted value");
    refused("k = a,,b\n", 1, "two commas");
    refused("'k = v\n", 1, "quoted key");
    refused("\n\n# c\nk = ''' never\n", 4, "multi-line");
    char name[700];
    memset(name, 'n', sizeof name);
    name[0] = '[';
    name[sizeof name - 2] = ']';
    name[sizeof name - 1] = '\0';
    refused(name, 1, "too long");

    /* a NUL inside the text */
    struct flow_certbot_conf c;
    struct cp_err err = {0};
    static const char nul[] = "a = 1\nb = x\0y\n";
    assert_int_equal(flow_certbot_conf_parse("web.conf", nul, sizeof nul - 1, &c, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "web.conf:2: a NUL byte"));
    /* nothing at all is an empty conf */
    assert_int_equal(flow_certbot_conf_parse("web.conf", "", 0, &c, &err), CP_OK);
    assert_int_equal(c.n, 0);
    flow_certbot_conf_clear(&c);
}

/* Mutations of the real file (bytes changed, cut short, lines doubled):
 * read or refused, never a crash or a leak (ASan/UBSan in CI). */
static void test_mutations(void **state)
{
    (void)state;
    static const char alphabet[] = "[]'\"=,# \n\r\t\0ab";
    size_t len = sizeof certbot21 - 1;
    char *buf = malloc(2 * len);
    assert_non_null(buf);
    unsigned long seed = 12345;
    for (int round = 0; round < 5000; round++) {
        memcpy(buf, certbot21, len);
        size_t n = len;
        int changes = 1 + round % 8;
        for (int i = 0; i < changes; i++) {
            seed = seed * 6364136223846793005UL + 1442695040888963407UL;
            size_t at = (size_t)(seed >> 33) % n;
            buf[at] = alphabet[(seed >> 20) % (sizeof alphabet - 1)];
        }
        if (round % 3 == 0)
            n = (size_t)(seed >> 40) % n; /* cut short */
        struct flow_certbot_conf c;
        struct cp_err err = {0};
        enum cp_code rc = flow_certbot_conf_parse("web.conf", buf, n, &c, &err);
        assert_true(rc == CP_OK || rc == CP_EINVAL);
        if (rc == CP_OK) {
            for (size_t i = 0; i < c.n; i++)
                for (size_t j = 0; j < c.e[i].n; j++)
                    assert_non_null(c.e[i].values[j]);
            flow_certbot_conf_clear(&c);
        } else {
            assert_non_null(strstr(err.msg, "web.conf:"));
        }
    }
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_certbot_21),
        cmocka_unit_test(test_configobj_values),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
