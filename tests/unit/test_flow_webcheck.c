/* tests/unit/test_flow_webcheck.c - flow/webcheck.c's pure parts: a fetch
 * judged into an outcome, which outcomes stop a run, the sentence and hint
 * of each, and which names are answered from which webroot.  The fetch
 * itself is tested against real servers in
 * tests/integration/test_renew_dryrun.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "flow/flow.h"

static enum flow_web_outcome judge(enum flow_web_transport t, long status, bool matches)
{
    struct flow_web_fetch f = {.transport = t, .status = status, .body_matches = matches};
    return flow_webcheck_judge(&f);
}

static void judged(void **state)
{
    (void)state;
    assert_int_equal(judge(FLOW_WEB_T_OK, 200, true), FLOW_WEB_SERVED);
    assert_int_equal(judge(FLOW_WEB_T_OK, 200, false), FLOW_WEB_WRONG_CONTENT);
    assert_int_equal(judge(FLOW_WEB_T_OK, 404, false), FLOW_WEB_NOT_FOUND);
    assert_int_equal(judge(FLOW_WEB_T_OK, 404, true), FLOW_WEB_NOT_FOUND); /* status first */
    for (long s = 300; s < 310; s++)
        assert_int_equal(judge(FLOW_WEB_T_OK, s, false),
                         s == 301 || s == 302 || s == 303 || s == 307 || s == 308
                             ? FLOW_WEB_REDIRECT
                             : FLOW_WEB_HTTP_STATUS);
    assert_int_equal(judge(FLOW_WEB_T_OK, 403, false), FLOW_WEB_HTTP_STATUS);
    assert_int_equal(judge(FLOW_WEB_T_OK, 500, false), FLOW_WEB_HTTP_STATUS);
    assert_int_equal(judge(FLOW_WEB_T_OK, 204, true), FLOW_WEB_HTTP_STATUS);
    assert_int_equal(judge(FLOW_WEB_T_REFUSED, 0, false), FLOW_WEB_REFUSED);
    assert_int_equal(judge(FLOW_WEB_T_TIMEOUT, 0, false), FLOW_WEB_TIMEOUT);
    assert_int_equal(judge(FLOW_WEB_T_FAILED, 0, false), FLOW_WEB_CONN_FAILED);
}

static void what_stops_a_run(void **state)
{
    (void)state;
    for (int o = FLOW_WEB_SERVED; o <= FLOW_WEB_REDIRECT; o++)
        assert_int_equal(flow_webcheck_fails((enum flow_web_outcome)o),
                         o != FLOW_WEB_SERVED && o != FLOW_WEB_REDIRECT);
    assert_string_equal(flow_webcheck_outcome_name(FLOW_WEB_NOT_FOUND), "not_found");
    assert_string_equal(flow_webcheck_outcome_name(FLOW_WEB_WRONG_CONTENT), "wrong_content");
    assert_string_equal(flow_webcheck_outcome_name(FLOW_WEB_REDIRECT), "redirect");
    assert_string_equal(flow_webcheck_outcome_name((enum flow_web_outcome)99), "?");
}

static void hints(void **state)
{
    (void)state;
    static const struct {
        enum flow_web_outcome o;
        const char *want;
    } cases[] = {
        {FLOW_WEB_SERVED, "a.example serves /srv/www (address 192.0.2.1, port 80)"},
        {FLOW_WEB_NOT_FOUND, "the server at a.example does not serve /srv/www; check the webroot"},
        {FLOW_WEB_REFUSED, "nothing listens on port 80 of 192.0.2.1"},
        {FLOW_WEB_NO_ADDRESS, "a.example does not resolve (NXDOMAIN here)"},
        {FLOW_WEB_WRONG_CONTENT, "another server or site answers for a.example"},
        {FLOW_WEB_TIMEOUT, "no answer from 192.0.2.1 port 80"},
        {FLOW_WEB_HTTP_STATUS, "answered HTTP 403"},
        {FLOW_WEB_CONN_FAILED, "failed: NXDOMAIN here"},
        {FLOW_WEB_REDIRECT, "redirects to NXDOMAIN here; not followed"},
    };
    struct flow_web_fetch f = {.status = 403};
    snprintf(f.detail, sizeof f.detail, "NXDOMAIN here");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[CP_ERR_MSG_MAX];
        flow_webcheck_explain(cases[i].o, "a.example", "/srv/www", "192.0.2.1", 80, &f, buf,
                              sizeof buf);
        if (strstr(buf, cases[i].want) == NULL)
            fail_msg("outcome %d: \"%s\" lacks \"%s\"", (int)cases[i].o, buf, cases[i].want);
        assert_non_null(strstr(buf, "webroot check: "));
    }
    /* a small buffer: cut, still a string */
    char small[16];
    flow_webcheck_explain(FLOW_WEB_NOT_FOUND, "a.example", "/srv/www", "192.0.2.1", 80, &f, small,
                          sizeof small);
    assert_int_equal(strlen(small), sizeof small - 1);
}

static void which_webroot(void **state)
{
    (void)state;
    const char *names[] = {"b.example"}, *dirs[] = {"/srv/b"};
    struct flow_solve_opts s = {
        .webroot = "/srv/www", .webroot_names = names, .webroots = dirs, .nwebroots = 1};
    const char *http[] = {"http-01"}, *dns_first[] = {"dns-01", "http-01"};
    assert_string_equal(flow_webcheck_webroot(&s, http, 1, "a.example"), "/srv/www");
    assert_string_equal(flow_webcheck_webroot(&s, http, 1, "b.example"), "/srv/b");
    assert_null(flow_webcheck_webroot(&s, http, 1, "*.a.example")); /* never http-01 */
    /* dns-01 first, but no hook: http-01 answers */
    assert_string_equal(flow_webcheck_webroot(&s, dns_first, 2, "a.example"), "/srv/www");
    s.dns_hook = "/usr/local/bin/hook";
    assert_null(flow_webcheck_webroot(&s, dns_first, 2, "a.example"));
    /* no webroot for a name, none by default */
    s.webroot = NULL;
    assert_null(flow_webcheck_webroot(&s, http, 1, "a.example"));
    assert_string_equal(flow_webcheck_webroot(&s, http, 1, "b.example"), "/srv/b");
    /* the built-in server answers: nothing to check */
    struct flow_solve_opts standalone = {.standalone = true};
    assert_null(flow_webcheck_webroot(&standalone, http, 1, "a.example"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(judged),
        cmocka_unit_test(what_stops_a_run),
        cmocka_unit_test(hints),
        cmocka_unit_test(which_webroot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
