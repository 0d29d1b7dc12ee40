/* tests/unit/test_flow_revoke.c - flow/revoke.c without a CA: the revocation
 * mark (written, then read back: it applies to the serial it names only,
 * not to a certificate put in place after it, nor when absent), the plan of a
 * revocation (the lineage's CA from its settings, its certificate and
 * serial, and the refusals before anything is sent) and the plan and run of a
 * deletion, on lineages stored with store_version_add() in a temporary state
 * directory. */
#define _XOPEN_SOURCE 700 /* nftw() */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "flow/flow.h"
#include "tests/unit/fixture.h"

static char tmp[256], state[300];
static struct cp_store *S; /* the store on `state`, opened by setup() */

/* ------------------------------------------------------------- fixtures */

/* Store a certificate with `serial` as the new current version of `name`. */
static void store(const char *name, long serial)
{
    char *key = NULL, *cert = fixture_cert(serial, 0, 86400, &key);
    struct cp_err err = {0};
    assert_int_equal(store_version_add(S, name, key, strlen(key), cert, "", cert, &err), CP_OK);
    free(key);
    free(cert);
}

/* The settings of `name`; a lineage without a certificate yet is just its
 * directory. */
static void settings(const char *name, const char *text)
{
    struct cp_err err = {0};
    char dir[400];
    snprintf(dir, sizeof dir, "%s/certs/%s", state, name);
    if (!store_lineage_exists(S, name))
        assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(store_settings_save(S, name, text, strlen(text), &err), CP_OK);
}

/* The status of `name` with `member` set to the JSON text `value`. */
static void status_set(const char *name, const char *member, const char *value)
{
    struct cp_err err = {0};
    json_t *st = store_status_load(S, name);
    assert_non_null(st);
    json_t *v = json_loads(value, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    assert_int_equal(json_object_set_new(st, member, v), 0);
    assert_int_equal(store_status_save(S, name, st, &err), CP_OK);
    json_decref(st);
}

static bool revoked(const char *name, char *note, size_t size)
{
    json_t *st = store_status_load(S, name);
    bool r = flow_lineage_revoked(S, name, st, note, size);
    json_decref(st);
    return r;
}

static int setup(void **st)
{
    (void)st;
    struct cp_err err = {0};
    snprintf(tmp, sizeof tmp, "/tmp/cp-flow-revoke-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    snprintf(state, sizeof state, "%s/state", tmp);
    assert_int_equal(mkdir(state, 0700), 0);
    assert_int_equal(store_fs_open(state, &S, &err), CP_OK);
    store("a", 0x1f);
    settings("a", "# issued by hand\n"
                  "domain = a.test\n"
                  "domain = www.a.test\n"
                  "server = https://ca.test/dir\n"
                  "ca_bundle = /etc/ca.pem\n");
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    store_close(S);
    S = NULL;
    return fixture_remove_tree(tmp) == 0 ? 0 : -1;
}

/* -------------------------------------------------------- the mark */

static void test_serial(void **st)
{
    (void)st;
    char serial[128];
    struct cp_err err = {0};
    assert_int_equal(flow_lineage_serial(S, "a", serial, sizeof serial, &err), CP_OK);
    assert_string_equal(serial, "1f");
    /* Settings but no certificate yet. */
    settings("empty", "domain = e.test\n");
    assert_int_equal(flow_lineage_serial(S, "empty", serial, sizeof serial, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "empty has no certificate"));
}

static void test_no_mark(void **st)
{
    (void)st;
    char note[256] = "untouched";
    assert_false(revoked("a", note, sizeof note));
    assert_string_equal(note, "untouched");
    /* A status with other members but no mark; a mark without a serial. */
    status_set("a", "last_result", "\"issued\"");
    assert_false(revoked("a", note, sizeof note));
    status_set("a", "revoked", "{\"at\": 0}");
    assert_false(revoked("a", note, sizeof note));
    /* A lineage without a certificate: nothing the mark could name. */
    settings("empty", "domain = e.test\n");
    status_set("empty", "revoked", "{\"serial\": \"1f\"}");
    assert_false(revoked("empty", note, sizeof note));
}

static void test_mark_matches_serial(void **st)
{
    (void)st;
    char note[256] = "";
    struct cp_err err = {0};
    status_set("a", "last_result", "\"issued\"");
    /* 2001-09-09T01:46:40Z, reason keyCompromise (1). */
    assert_int_equal(flow_lineage_mark_revoked(S, "a", "1f", 1, false, 1000000000, &err), CP_OK);
    assert_true(revoked("a", note, sizeof note));
    assert_string_equal(note, "revoked 2001-09-09T01:46:40Z (reason keyCompromise, serial 1f)");
    assert_true(revoked("a", NULL, 0));

    json_t *status = store_status_load(S, "a");
    json_t *mark = json_object_get(status, "revoked");
    assert_int_equal(json_integer_value(json_object_get(mark, "at")), 1000000000);
    assert_string_equal(json_string_value(json_object_get(mark, "reason")), "keyCompromise");
    assert_int_equal(json_integer_value(json_object_get(mark, "reason_code")), 1);
    assert_string_equal(json_string_value(json_object_get(mark, "serial")), "1f");
    assert_string_equal(json_string_value(json_object_get(mark, "signed_with")), "account");
    assert_true(json_is_false(json_object_get(mark, "already_revoked")));
    /* The rest of the status stays. */
    assert_string_equal(json_string_value(json_object_get(status, "last_result")), "issued");
    json_decref(status);

    /* A new certificate in place: the mark is about another one now. */
    store("a", 0x20);
    assert_false(revoked("a", note, sizeof note));
}

static void test_mark_other_serial(void **st)
{
    (void)st;
    char note[256] = "";
    struct cp_err err = {0};
    assert_int_equal(flow_lineage_mark_revoked(S, "a", "20", 1, false, 0, &err), CP_OK);
    assert_false(revoked("a", note, sizeof note));
    /* A serial that only starts like the current one does not match either. */
    assert_int_equal(flow_lineage_mark_revoked(S, "a", "1", 1, false, 0, &err), CP_OK);
    assert_false(revoked("a", note, sizeof note));
    assert_int_equal(flow_lineage_mark_revoked(S, "a", "1f0", 1, false, 0, &err), CP_OK);
    assert_false(revoked("a", note, sizeof note));
}

/* Revoked before (alreadyRevoked): the reason given then is unknown here. */
static void test_mark_already_and_no_reason(void **st)
{
    (void)st;
    char note[256] = "";
    struct cp_err err = {0};
    assert_int_equal(flow_lineage_mark_revoked(S, "a", "1f", 4, true, 0, &err), CP_OK);
    assert_true(revoked("a", note, sizeof note));
    assert_string_equal(note, "revoked 1970-01-01T00:00:00Z (no reason given, serial 1f)");
    json_t *status = store_status_load(S, "a");
    json_t *mark = json_object_get(status, "revoked");
    assert_true(json_is_null(json_object_get(mark, "reason")));
    assert_true(json_is_null(json_object_get(mark, "reason_code")));
    assert_true(json_is_true(json_object_get(mark, "already_revoked")));
    json_decref(status);
    assert_int_equal(flow_lineage_mark_revoked(S, "a", "1f", ACME_REVOKE_NO_REASON, false, 0, &err),
                     CP_OK);
    assert_true(revoked("a", note, sizeof note));
    assert_string_equal(note, "revoked 1970-01-01T00:00:00Z (no reason given, serial 1f)");
}

/* ------------------------------------------------- the revocation's plan */

static void test_plan(void **st)
{
    (void)st;
    struct flow_revoke_req req = {.cert_name = "a", .reason = ACME_REVOKE_NO_REASON};
    struct flow_revoke_plan plan = {0};
    struct cp_err err = {0};
    assert_int_equal(flow_revoke_plan_ca(S, &req, &plan, &err), CP_OK);
    assert_string_equal(plan.server, "https://ca.test/dir");
    assert_true(plan.has_ca_bundle);
    assert_string_equal(plan.ca_bundle, "/etc/ca.pem"); /* ca_bundle is ca-bundle */
    assert_non_null(strstr(plan.live, "/certs/a"));
    assert_null(plan.chain); /* nothing read but the settings yet */
    assert_int_equal(flow_revoke_plan_cert(S, &req, &plan, &err), CP_OK);
    assert_non_null(plan.chain);
    assert_string_equal(plan.serial, "1f");
    flow_revoke_plan_clear(&plan);
    assert_null(plan.chain);

    /* A certificate given: its CA is the caller's, its serial is read. */
    char *key = NULL, *pem = fixture_cert(0x2a, 0, 86400, &key);
    struct acme_chain *chain = NULL;
    assert_int_equal(acme_chain_parse(pem, strlen(pem), "given.pem", &chain, &err), CP_OK);
    struct flow_revoke_req given = {.chain = chain, .reason = 1};
    struct flow_revoke_plan gplan = {0};
    assert_int_equal(flow_revoke_plan_ca(S, &given, &gplan, &err), CP_OK);
    assert_string_equal(gplan.server, "");
    assert_int_equal(flow_revoke_plan_cert(S, &given, &gplan, &err), CP_OK);
    assert_string_equal(gplan.serial, "2a");
    assert_null(gplan.chain);
    flow_revoke_plan_clear(&gplan);
    acme_chain_free(chain);
    free(pem);
    free(key);
}

static void test_plan_refusals(void **st)
{
    (void)st;
    struct flow_revoke_plan plan = {0};
    struct cp_err err = {0};

    struct flow_revoke_req req = {.cert_name = "nope"};
    assert_int_equal(flow_revoke_plan_ca(S, &req, &plan, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "there is no certificate named \"nope\""));
    assert_non_null(strstr(err.msg, state));

    /* No settings: the CA is unknown; what to do instead is said. */
    store("bare", 0x30);
    req.cert_name = "bare";
    assert_int_equal(flow_revoke_plan_ca(S, &req, &plan, &err), CP_ESETUP);
    assert_non_null(strstr(err.msg, "bare has no settings"));
    assert_non_null(strstr(err.msg, "--cert-path"));
    assert_non_null(strstr(err.msg, "/certs/bare/cert.pem --server URL"));

    /* Settings without a server. */
    settings("bare", "domain = bare.test\n");
    assert_int_equal(flow_revoke_plan_ca(S, &req, &plan, &err), CP_ESETUP);
    assert_non_null(strstr(err.msg, "renewal.conf names no server"));

    /* Settings that do not parse: the file and line are named. */
    settings("bare", "domain = bare.test\nserver https://ca.test/dir\n");
    assert_int_equal(flow_revoke_plan_ca(S, &req, &plan, &err), CP_ESETUP);
    assert_non_null(strstr(err.msg, "renewal.conf:2:"));
    assert_non_null(strstr(err.msg, "the lineage's CA is unknown"));

    /* A lineage whose CA is known but which has no certificate. */
    settings("empty", "server = https://ca.test/dir\n");
    req.cert_name = "empty";
    assert_int_equal(flow_revoke_plan_ca(S, &req, &plan, &err), CP_OK);
    assert_int_equal(flow_revoke_plan_cert(S, &req, &plan, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "empty has no certificate"));
    assert_non_null(strstr(err.msg, "nothing to revoke"));
    assert_null(plan.chain);
    flow_revoke_plan_clear(&plan);
}

/* ---------------------------------------------------------- deletion */

static void test_delete_plan_and_run(void **st)
{
    (void)st;
    struct flow_delete_plan plan = {0};
    struct cp_err err = {0};
    size_t removed = 0;
    assert_int_equal(flow_delete_plan(S, "a", &plan, &err), CP_OK);
    assert_non_null(strstr(plan.live, "/certs/a"));
    /* One version (4 files) + renewal.conf; current + 4 stable links;
     * versions/ and the version's directory. */
    assert_int_equal(plan.list.files, 5);
    assert_int_equal(plan.list.links, 5);
    assert_int_equal(plan.list.dirs, 2);
    assert_int_equal(json_array_size(plan.names), 2);
    assert_string_equal(json_string_value(json_array_get(plan.names, 0)), "a.test");
    assert_string_equal(json_string_value(json_array_get(plan.names, 1)), "www.a.test");
    assert_string_equal(plan.revoked, "");
    flow_delete_plan_clear(&plan);
    assert_null(plan.names);

    /* Marked revoked: the plan says so. */
    assert_int_equal(flow_lineage_mark_revoked(S, "a", "1f", 5, false, 0, &err), CP_OK);
    assert_int_equal(flow_delete_plan(S, "a", &plan, &err), CP_OK);
    assert_string_equal(plan.revoked,
                        "revoked 1970-01-01T00:00:00Z (reason cessationOfOperation, serial 1f)");
    assert_int_equal(plan.list.files, 6); /* and status.json */
    flow_delete_plan_clear(&plan);

    assert_int_equal(flow_delete_run(S, "a", &removed, &err), CP_OK);
    assert_int_equal(removed, 6 + 5 + 2 + 1); /* and the lineage's directory */
    assert_false(store_lineage_exists(S, "a"));
    assert_int_equal(flow_delete_plan(S, "a", &plan, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "there is no certificate named \"a\""));
    flow_delete_plan_clear(&plan);
}

/* Settings that do not parse: no names, the deletion still planned. */
static void test_delete_plan_unreadable_settings(void **st)
{
    (void)st;
    struct flow_delete_plan plan = {0};
    struct cp_err err = {0};
    settings("a", "domain = a.test\nthis is not a setting\n");
    assert_int_equal(flow_delete_plan(S, "a", &plan, &err), CP_OK);
    assert_int_equal(json_array_size(plan.names), 0);
    assert_true(plan.list.n > 0);
    flow_delete_plan_clear(&plan);
}

/* A lineage someone else could have changed is refused before any listing. */
static void test_delete_plan_unsafe(void **st)
{
    (void)st;
    struct flow_delete_plan plan = {0};
    struct cp_err err = {0};
    char dir[400];
    snprintf(dir, sizeof dir, "%s/certs/a", state);
    assert_int_equal(chmod(dir, 0777), 0);
    assert_int_equal(flow_delete_plan(S, "a", &plan, &err), CP_EUNSAFE);
    assert_non_null(strstr(err.msg, "nothing was deleted"));
    flow_delete_plan_clear(&plan);
    assert_int_equal(chmod(dir, 0700), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_serial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_mark, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mark_matches_serial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mark_other_serial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mark_already_and_no_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_plan_and_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_plan_unreadable_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_plan_unsafe, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
