/* tests/unit/test_flow_import.c - flow/import.c without another client: an
 * account, a certificate and a hook written into a temporary state
 * directory once (new), found again (same), refused over something else of
 * the same name (conflict: the existing one untouched), refused when
 * unusable (skipped), and never written by a dry run. */
#define _XOPEN_SOURCE 700
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file.h"
#include "flow/flow.h"
#include "tests/unit/fixture.h"

#define DIR_URL "https://ca.test/dir"

static char tmp[256], state[300], hooks[300];
static struct cp_store *S;

static int setup(void **st)
{
    (void)st;
    struct cp_err err = {0};
    snprintf(tmp, sizeof tmp, "/tmp/cp-flow-import-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    snprintf(state, sizeof state, "%s/state", tmp);
    snprintf(hooks, sizeof hooks, "%s/hooks.d", tmp);
    assert_int_equal(mkdir(state, 0700), 0);
    assert_int_equal(store_fs_open(state, &S, &err), CP_OK);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    store_close(S);
    S = NULL;
    return fixture_remove_tree(tmp) == 0 ? 0 : -1;
}

static const struct flow_import_item *last(const struct flow_import_report *r)
{
    assert_true(r->n > 0);
    return &r->items[r->n - 1];
}

/* ------------------------------------------------------------- accounts */

static void test_account(void **st)
{
    (void)st;
    struct cp_err err = {0};
    struct acme_key *key = NULL, *other = NULL;
    assert_int_equal(acme_key_generate(ACME_KEY_EC256, &key, &err), CP_OK);
    assert_int_equal(acme_key_generate(ACME_KEY_EC256, &other, &err), CP_OK);
    json_t *contact = json_pack("[s]", "mailto:ops@a.test");
    struct flow_import_account a = {.source = "/src/acct",
                                    .directory = DIR_URL,
                                    .url = "https://ca.test/acct/1",
                                    .key = key,
                                    .contact = contact};
    struct flow_import_report r = {.dry = true};

    /* A dry run says new and writes nothing. */
    assert_int_equal(flow_import_account(S, &a, &r, &err), CP_OK);
    assert_int_equal(last(&r)->action, FLOW_IMPORT_NEW);
    struct store_account cur = {0};
    assert_int_equal(store_account_load(S, DIR_URL, &cur, &err), CP_OK);
    assert_null(cur.key);
    assert_null(json_object_get(cur.rec, "url"));
    store_account_clear(&cur);

    /* The real import keeps URL, key and contacts. */
    r.dry = false;
    assert_int_equal(flow_import_account(S, &a, &r, &err), CP_OK);
    assert_int_equal(last(&r)->action, FLOW_IMPORT_NEW);
    assert_int_equal(store_account_load(S, DIR_URL, &cur, &err), CP_OK);
    assert_non_null(cur.key);
    char t1[44], t2[44];
    assert_int_equal(acme_key_thumbprint(cur.key, t1, &err), CP_OK);
    assert_int_equal(acme_key_thumbprint(key, t2, &err), CP_OK);
    assert_string_equal(t1, t2);
    assert_string_equal(json_string_value(json_object_get(cur.rec, "url")),
                        "https://ca.test/acct/1");
    assert_string_equal(json_string_value(json_array_get(json_object_get(cur.rec, "contact"), 0)),
                        "mailto:ops@a.test");
    assert_string_equal(json_string_value(json_object_get(cur.rec, "imported_from")), "/src/acct");
    store_account_clear(&cur);

    /* Again: the same. */
    assert_int_equal(flow_import_account(S, &a, &r, &err), CP_OK);
    assert_int_equal(last(&r)->action, FLOW_IMPORT_SAME);

    /* Another key, or another URL, for that CA: left alone. */
    a.key = other;
    assert_int_equal(flow_import_account(S, &a, &r, &err), CP_OK);
    assert_int_equal(last(&r)->action, FLOW_IMPORT_CONFLICT);
    assert_non_null(strstr(last(&r)->why, "another account"));
    a.key = key;
    a.url = "https://ca.test/acct/2";
    assert_int_equal(flow_import_account(S, &a, &r, &err), CP_OK);
    assert_int_equal(last(&r)->action, FLOW_IMPORT_CONFLICT);
    assert_int_equal(store_account_load(S, DIR_URL, &cur, &err), CP_OK);
    assert_string_equal(json_string_value(json_object_get(cur.rec, "url")),
                        "https://ca.test/acct/1");
    store_account_clear(&cur);

    assert_int_equal(r.n, 5);
    flow_import_report_clear(&r);
    json_decref(contact);
    acme_key_free(key);
    acme_key_free(other);
}

/* ------------------------------------------------------------ lineages */

static void test_lineage(void **st)
{
    (void)st;
    struct cp_err err = {0};
    char *key = NULL, *key2 = NULL;
    char *cert = fixture_cert(7, 0, 86400, &key);
    char *cert2 = fixture_cert(8, 0, 86400, &key2);
    const char *settings = "domain = a.test\nserver = " DIR_URL "\n";
    struct flow_import_lineage l = {.source = "/src/a.conf",
                                    .name = "a.test",
                                    .privkey_pem = key,
                                    .cert_pem = cert,
                                    .chain_pem = "",
                                    .fullchain_pem = cert,
                                    .settings = settings};
    struct flow_import_report r = {.dry = true};

    assert_int_equal(flow_import_lineage(S, &l, &r, &err), CP_OK);
    assert_int_equal(last(&r)->action, FLOW_IMPORT_NEW);
    assert_false(store_lineage_exists(S, "a.test"));

    r.dry = false;
    assert_int_equal(flow_import_lineage(S, &l, &r, &err), CP_OK);
    assert_int_equal(last(&r)->action, FLOW_IMPORT_NEW);
    char *cur = NULL, *text = NULL;
    size_t len = 0;
    assert_int_equal(store_current_cert(S, "a.test", &cur, &len, &err), CP_OK);
    assert_non_null(cur);
    assert_string_equal(cur, cert);
    free(cur);
    assert_int_equal(store_settings_load(S, "a.test", &text, &len, NULL, 0, &err), CP_OK);
    assert_string_equal(text, settings);
    free(text);
    json_t *status = store_status_load(S, "a.test");
    assert_string_equal(json_string_value(json_object_get(status, "imported_from")), "/src/a.conf");
    json_decref(status);

    /* Again: the same; another certificate under that name: left alone. */
    assert_int_equal(flow_import_lineage(S, &l, &r, &err), CP_OK);
    assert_int_equal(last(&r)->action, FLOW_IMPORT_SAME);
    l.privkey_pem = key2;
    l.cert_pem = l.fullchain_pem = cert2;
    assert_int_equal(flow_import_lineage(S, &l, &r, &err), CP_OK);
    assert_int_equal(last(&r)->action, FLOW_IMPORT_CONFLICT);
    assert_int_equal(store_current_cert(S, "a.test", &cur, &len, &err), CP_OK);
    assert_string_equal(cur, cert);
    free(cur);

    /* A key that is not the certificate's, and a name certpilot cannot
     * use, are skipped with why, and nothing is written. */
    l.name = "b.test";
    l.privkey_pem = key;
    assert_int_equal(flow_import_lineage(S, &l, &r, &err), CP_OK);
    assert_int_equal(last(&r)->action, FLOW_IMPORT_SKIPPED);
    assert_non_null(strstr(last(&r)->why, "does not belong"));
    assert_false(store_lineage_exists(S, "b.test"));
    l.name = "../x";
    l.privkey_pem = key2;
    assert_int_equal(flow_import_lineage(S, &l, &r, &err), CP_OK);
    assert_int_equal(last(&r)->action, FLOW_IMPORT_SKIPPED);
    l.name = "c.test";
    l.cert_pem = "not a certificate";
    assert_int_equal(flow_import_lineage(S, &l, &r, &err), CP_OK);
    assert_int_equal(last(&r)->action, FLOW_IMPORT_SKIPPED);
    assert_false(store_lineage_exists(S, "c.test"));

    flow_import_report_clear(&r);
    free(key);
    free(key2);
    free(cert);
    free(cert2);
}

/* --------------------------------------------------------------- hooks */

static void write_file(const char *path, const char *text, mode_t mode)
{
    struct cp_err err = {0};
    assert_int_equal(cp_file_write_atomic(path, text, strlen(text), mode, &err), CP_OK);
}

static void test_hook(void **st)
{
    (void)st;
    struct cp_err err = {0};
    char src[400], plain[400], dst[400], other[400];
    snprintf(src, sizeof src, "%s/reload", tmp);
    snprintf(plain, sizeof plain, "%s/README", tmp);
    snprintf(other, sizeof other, "%s/other/reload", tmp);
    snprintf(dst, sizeof dst, "%s/deploy/reload", hooks);
    write_file(src, "#!/bin/sh\nexit 0\n", 0755);
    write_file(plain, "not a hook\n", 0644);
    char otherdir[400];
    snprintf(otherdir, sizeof otherdir, "%s/other", tmp);
    assert_int_equal(mkdir(otherdir, 0700), 0);
    write_file(other, "#!/bin/sh\nexit 1\n", 0755);
    struct flow_import_report r = {.dry = true};

    assert_int_equal(flow_import_hook(hooks, FLOW_HOOK_DEPLOY, src, &r, &err), CP_OK);
    assert_int_equal(last(&r)->action, FLOW_IMPORT_NEW);
    assert_int_equal(access(dst, F_OK), -1);

    r.dry = false;
    assert_int_equal(flow_import_hook(hooks, FLOW_HOOK_DEPLOY, src, &r, &err), CP_OK);
    assert_int_equal(last(&r)->action, FLOW_IMPORT_NEW);
    struct stat sb;
    assert_int_equal(stat(dst, &sb), 0);
    assert_true(sb.st_mode & S_IXUSR);
    assert_int_equal(sb.st_mode & 022, 0); /* hooks.d refuses what others may change */

    assert_int_equal(flow_import_hook(hooks, FLOW_HOOK_DEPLOY, src, &r, &err), CP_OK);
    assert_int_equal(last(&r)->action, FLOW_IMPORT_SAME);
    /* Another hook of the same name: the one there stays. */
    assert_int_equal(flow_import_hook(hooks, FLOW_HOOK_DEPLOY, other, &r, &err), CP_OK);
    assert_int_equal(last(&r)->action, FLOW_IMPORT_CONFLICT);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(cp_file_read(dst, 4096, &text, &len, &err), CP_OK);
    assert_string_equal(text, "#!/bin/sh\nexit 0\n");
    free(text);
    /* Not executable: skipped, in any phase. */
    assert_int_equal(flow_import_hook(hooks, FLOW_HOOK_PRE, plain, &r, &err), CP_OK);
    assert_int_equal(last(&r)->action, FLOW_IMPORT_SKIPPED);
    assert_string_equal(flow_import_action_name(last(&r)->action), "skipped");
    flow_import_report_clear(&r);
    assert_int_equal(r.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_account, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lineage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hook, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
