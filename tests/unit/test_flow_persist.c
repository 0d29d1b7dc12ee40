/* tests/unit/test_flow_persist.c - flow/persist.c's words: when a name
 * counts as authorized (every server, none unknown), what each server is
 * said to answer, and the one-line summary that names the servers that do
 * not authorize.  The look-ups are tested on the lab in
 * tests/integration/test_ip_persist.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "flow/flow.h"

static struct caa_ns ns[3] = {
    {"ns1.example.test", "192.0.2.1"},
    {"ns2.example.test", "192.0.2.2"},
    {"ns3.example.test", "2001:db8::3"},
};

static void fill(struct flow_persist_name *p, struct caa_persist_server *s, size_t n)
{
    memset(p, 0, sizeof *p);
    memset(s, 0, n * sizeof *s);
    snprintf(p->ident, sizeof p->ident, "www.example.test");
    snprintf(p->qname, sizeof p->qname, "_validation-persist.www.example.test");
    snprintf(p->target, sizeof p->target, "%s", p->qname);
    snprintf(p->zone, sizeof p->zone, "example.test");
    p->ns = ns;
    p->nns = n;
    p->servers = s;
    for (size_t i = 0; i < n; i++) {
        s[i].answered = true;
        s[i].verdict.authorized = true;
    }
    p->nauthorizing = n;
}

static void all_authorize(void **state)
{
    (void)state;
    struct flow_persist_name p;
    struct caa_persist_server s[3];
    char line[CP_ERR_MSG_MAX];
    fill(&p, s, 3);
    assert_true(flow_persist_name_ok(&p));
    assert_string_equal(flow_persist_server_says(&p, 2), "authorizes");
    flow_persist_summary(&p, line, sizeof line);
    assert_string_equal(line, "www.example.test: all 3 nameservers of example.test serve a "
                              "record that authorizes");
}

static void one_disagrees_one_silent(void **state)
{
    (void)state;
    struct flow_persist_name p;
    struct caa_persist_server s[3];
    char line[CP_ERR_MSG_MAX];
    fill(&p, s, 3);
    s[1].verdict.authorized = false;
    snprintf(s[1].verdict.reason, sizeof s[1].verdict.reason, "the record is for another account");
    s[2].answered = false;
    s[2].verdict.authorized = false;
    snprintf(s[2].problem, sizeof s[2].problem, "no answer");
    p.nauthorizing = 1;
    assert_false(flow_persist_name_ok(&p));
    assert_string_equal(flow_persist_server_says(&p, 1), "the record is for another account");
    assert_string_equal(flow_persist_server_says(&p, 2), "no answer");
    flow_persist_summary(&p, line, sizeof line);
    assert_string_equal(line, "www.example.test: 2 of 3 nameservers of example.test do not "
                              "authorize; ns2.example.test (192.0.2.2): the record is for "
                              "another account; ns3.example.test (2001:db8::3): no answer");
    /* cut to the buffer, marked */
    char small[40];
    flow_persist_summary(&p, small, sizeof small);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_string_equal(small + sizeof small - 4, "...");
}

static void servers_unknown(void **state)
{
    (void)state;
    struct flow_persist_name p;
    struct caa_persist_server s[1];
    char line[CP_ERR_MSG_MAX];
    fill(&p, s, 1);
    p.nns = 0;
    p.nauthorizing = 0;
    p.zone[0] = '\0';
    snprintf(p.error, sizeof p.error, "SERVFAIL");
    assert_false(flow_persist_name_ok(&p));
    flow_persist_summary(&p, line, sizeof line);
    assert_string_equal(line, "www.example.test: the nameservers of "
                              "_validation-persist.www.example.test could not be found: SERVFAIL");
    /* no server at all is no authorization either */
    snprintf(p.error, sizeof p.error, "%s", "");
    assert_false(flow_persist_name_ok(&p));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(all_authorize),
        cmocka_unit_test(one_disagrees_one_silent),
        cmocka_unit_test(servers_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
