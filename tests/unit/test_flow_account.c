/* tests/unit/test_flow_account.c - flow/account.c where it decides without
 * the CA: the account as loaded from a store in a temporary state directory
 * (URL, contacts, deactivation), the refusal of a deactivated account before
 * anything is sent, what needs the lock, dropping a deactivated account for
 * a new registration, the comparison of contacts, and the view `account
 * show` prints, with and without the CA's account object.  The steps that
 * talk to the CA run in tests/integration/test_account_lifecycle.py. */
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

#include "flow/flow.h"

#define SERVER "https://ca.example.test/dir"

static char tmp[256], state[300];
static struct cp_store *S;

/* What a flow said, one line after another. */
static char said[4096];

static void collect(void *ctx, enum flow_level level, const char *msg)
{
    (void)ctx;
    size_t n = strlen(said);
    snprintf(said + n, sizeof said - n, "%d %s\n", (int)level, msg);
}

static const struct flow_log log_sink = {collect, NULL};

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static int setup(void **state_)
{
    (void)state_;
    snprintf(tmp, sizeof tmp, "/tmp/cp-flow-account-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    snprintf(state, sizeof state, "%s/state", tmp);
    struct cp_err err = {0};
    assert_int_equal(store_fs_open(state, &S, &err), CP_OK);
    said[0] = '\0';
    return 0;
}

static int teardown(void **state_)
{
    (void)state_;
    store_close(S);
    S = NULL;
    return nftw(tmp, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The record `json` (and a key, a pending key when asked) kept for SERVER. */
static void keep(const char *json, bool key, bool pending)
{
    struct cp_err err = {0};
    struct acme_key *k = NULL;
    if (json != NULL) {
        json_t *rec = json_loads(json, 0, NULL);
        assert_non_null(rec);
        assert_int_equal(store_account_save_record(S, SERVER, rec, &err), CP_OK);
        json_decref(rec);
    }
    if (key) {
        assert_int_equal(acme_key_generate(ACME_KEY_EC256, &k, &err), CP_OK);
        assert_int_equal(store_account_save_key(S, SERVER, k, &err), CP_OK);
        acme_key_free(k);
    }
    if (pending) {
        assert_int_equal(acme_key_generate(ACME_KEY_EC384, &k, &err), CP_OK);
        assert_int_equal(store_account_save_pending(S, SERVER, k, &err), CP_OK);
        acme_key_free(k);
    }
}

static void open_account(struct flow_account *a)
{
    struct cp_err err = {0};
    assert_int_equal(flow_account_open(S, SERVER, a, &err), CP_OK);
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* ------------------------------------------------------------- loading */

static void test_nothing_kept_is_no_account(void **state_)
{
    (void)state_;
    struct flow_account a;
    struct cp_err err = {0};
    open_account(&a);
    assert_null(a.key);
    assert_null(a.pending);
    assert_true(json_is_object(a.rec));
    assert_null(flow_account_url(&a));
    assert_null(flow_account_deactivated_at(&a));
    assert_false(flow_account_unsettled(&a));
    assert_int_equal(flow_account_check(&a, 0, &err), CP_OK);
    json_t *contacts = flow_account_contacts(&a);
    assert_int_equal(json_array_size(contacts), 0);
    json_decref(contacts);
    flow_account_close(&a);
    flow_account_close(&a); /* twice: no-op */
}

static void test_record_read(void **state_)
{
    (void)state_;
    struct flow_account a;
    keep("{\"url\": \"https://ca.example.test/acct/1\", \"contact\": [\"mailto:a@x.test\", 7, "
         "\"mailto:b@x.test\"], \"future\": true}",
         true, false);
    open_account(&a);
    assert_non_null(a.key);
    assert_string_equal(flow_account_url(&a), "https://ca.example.test/acct/1");
    assert_false(flow_account_unsettled(&a));
    json_t *contacts = flow_account_contacts(&a); /* strings only */
    assert_int_equal(json_array_size(contacts), 2);
    assert_string_equal(json_string_value(json_array_get(contacts, 1)), "mailto:b@x.test");
    json_decref(contacts);
    flow_account_close(&a);
}

static void test_empty_url_is_unknown(void **state_)
{
    (void)state_;
    struct flow_account a;
    keep("{\"url\": \"\"}", true, false);
    open_account(&a);
    assert_null(flow_account_url(&a));
    assert_true(flow_account_unsettled(&a)); /* a key whose URL must be looked up */
    flow_account_close(&a);
}

static void test_pending_key_is_unsettled(void **state_)
{
    (void)state_;
    struct flow_account a;
    keep("{\"url\": \"https://ca.example.test/acct/1\"}", true, true);
    open_account(&a);
    assert_non_null(a.pending);
    assert_true(flow_account_unsettled(&a));
    assert_non_null(strstr(a.pending_where, "account.key.pending"));
    flow_account_close(&a);
}

static void test_server_too_long(void **state_)
{
    (void)state_;
    struct flow_account a;
    struct cp_err err = {0};
    char server[3000];
    memset(server, 'a', sizeof server - 1);
    server[sizeof server - 1] = '\0';
    assert_int_equal(flow_account_open(S, server, &a, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "too long"));
    flow_account_close(&a);
}

/* -------------------------------------------------------- deactivation */

static void test_deactivated_refused_with_how_to_go_on(void **state_)
{
    (void)state_;
    struct flow_account a;
    struct cp_err err = {0};
    keep("{\"url\": \"https://ca.example.test/acct/9\", \"status\": \"deactivated\", "
         "\"deactivated_at\": \"2026-01-02T03:04:05Z\"}",
         true, false);
    open_account(&a);
    assert_string_equal(flow_account_deactivated_at(&a), "2026-01-02T03:04:05Z");
    assert_int_equal(flow_account_check(&a, 0, &err), CP_ESETUP);
    assert_int_equal(err.code, CP_ESETUP);
    assert_non_null(strstr(err.msg, "the account https://ca.example.test/acct/9 at " SERVER
                                    " was deactivated on 2026-01-02T03:04:05Z"));
    assert_non_null(strstr(err.msg, "'certpilot account register --agree-tos [--email ADDR]'"));
    cp_err_clear(&err);
    assert_int_equal(flow_account_check(&a, FLOW_ACCOUNT_ANY_STATUS, &err), CP_OK);
    flow_account_close(&a);
}

static void test_deactivated_without_date_or_url(void **state_)
{
    (void)state_;
    struct flow_account a;
    struct cp_err err = {0};
    keep("{\"status\": \"deactivated\"}", false, false);
    open_account(&a);
    assert_string_equal(flow_account_deactivated_at(&a), "an unknown date");
    assert_int_equal(flow_account_check(&a, 0, &err), CP_ESETUP);
    assert_non_null(strstr(err.msg, "(URL unknown)"));
    flow_account_close(&a);
}

static void test_other_status_is_not_deactivated(void **state_)
{
    (void)state_;
    struct flow_account a;
    keep("{\"status\": \"valid\", \"deactivated_at\": \"2026-01-02T03:04:05Z\"}", true, false);
    open_account(&a);
    assert_null(flow_account_deactivated_at(&a));
    flow_account_close(&a);
}

/* Refused before the client is touched: none is given. */
static void test_use_refuses_deactivated_before_any_request(void **state_)
{
    (void)state_;
    struct flow_account a;
    struct acme_problem prob = {0};
    struct cp_err err = {0};
    struct flow_account_use_req use = {.key_type = ACME_KEY_EC256};
    keep("{\"url\": \"https://ca.example.test/acct/9\", \"status\": \"deactivated\"}", true, true);
    open_account(&a);
    assert_int_equal(flow_account_use(&a, NULL, &use, &log_sink, &prob, &err), CP_ESETUP);
    assert_non_null(strstr(err.msg, "was deactivated"));
    assert_string_equal(said, ""); /* not even the rollover was looked at */
    assert_non_null(a.pending);
    flow_account_close(&a);
}

/* A look-up only, no account: nothing to do, nothing sent, nothing written. */
static void test_use_lookup_only_without_account(void **state_)
{
    (void)state_;
    struct flow_account a;
    struct acme_problem prob = {0};
    struct cp_err err = {0};
    struct acme_key *key = (struct acme_key *)&a; /* overwritten */
    char *url = (char *)&a, where[400];
    struct flow_account_use_req use = {.key_type = ACME_KEY_EC256,
                                       .flags = FLOW_ACCOUNT_LOOKUP_ONLY | FLOW_ACCOUNT_NO_WRITE};
    open_account(&a);
    assert_int_equal(flow_account_use(&a, NULL, &use, &log_sink, &prob, &err), CP_OK);
    assert_null(a.key);
    assert_int_equal(flow_account_release(&a, NULL, &key, &url, &err), CP_OK);
    assert_null(key);
    assert_null(url);
    snprintf(where, sizeof where, "%s/accounts", state);
    assert_false(exists(where));
    flow_account_close(&a);
}

static void test_release_hands_over_key_and_url(void **state_)
{
    (void)state_;
    struct flow_account a;
    struct cp_err err = {0};
    struct acme_key *key = NULL;
    char *url = NULL;
    keep("{\"url\": \"https://ca.example.test/acct/1\"}", true, false);
    open_account(&a);
    const struct acme_key *kept = a.key;
    assert_int_equal(flow_account_release(&a, NULL, &key, &url, &err), CP_OK);
    assert_ptr_equal(key, kept);
    assert_null(a.key);
    assert_string_equal(url, "https://ca.example.test/acct/1");
    flow_account_close(&a); /* the URL copy outlives the record */
    assert_string_equal(url, "https://ca.example.test/acct/1");
    acme_key_free(key);
    free(url);
}

static void test_forget_deactivated(void **state_)
{
    (void)state_;
    struct flow_account a;
    struct cp_err err = {0};
    char key_path[4400];
    keep("{\"url\": \"https://ca.example.test/acct/9\", \"status\": \"deactivated\", "
         "\"deactivated_at\": \"2026-01-02T03:04:05Z\"}",
         true, true);
    open_account(&a);
    snprintf(key_path, sizeof key_path, "%s/account.key", a.where);
    assert_true(exists(a.pending_where));
    assert_int_equal(flow_account_forget_deactivated(&a, &log_sink, &err), CP_OK);
    assert_null(a.key);
    assert_null(a.pending);
    assert_false(exists(a.pending_where));
    assert_true(exists(key_path)); /* replaced only once a new account is registered */
    assert_non_null(strstr(said, "5 the account https://ca.example.test/acct/9 was deactivated on "
                                 "2026-01-02T03:04:05Z; registering a new one"));
    flow_account_close(&a);
}

static void test_forget_keeps_an_active_account(void **state_)
{
    (void)state_;
    struct flow_account a;
    struct cp_err err = {0};
    keep("{\"url\": \"https://ca.example.test/acct/1\"}", true, true);
    open_account(&a);
    assert_int_equal(flow_account_forget_deactivated(&a, &log_sink, &err), CP_OK);
    assert_non_null(a.key);
    assert_non_null(a.pending);
    assert_true(exists(a.pending_where));
    assert_string_equal(said, "");
    flow_account_close(&a);
}

/* ------------------------------------------------------------ contacts */

static void test_same_contacts(void **state_)
{
    (void)state_;
    char *held[] = {"mailto:a@x.test", "mailto:B@x.test"};
    struct acme_account ca = {.contacts = held, .ncontacts = 2, .terms_agreed = -1};
    const char *same[] = {"mailto:b@X.test", "mailto:a@x.test"};
    const char *fewer[] = {"mailto:a@x.test"};
    const char *other[] = {"mailto:a@x.test", "mailto:c@x.test"};
    assert_true(flow_account_same_contacts(&ca, same, 2));
    assert_false(flow_account_same_contacts(&ca, fewer, 1));
    assert_false(flow_account_same_contacts(&ca, other, 2));
    struct acme_account none = {.terms_agreed = -1};
    assert_true(flow_account_same_contacts(&none, NULL, 0));
    assert_false(flow_account_same_contacts(&none, fewer, 1));
}

/* ---------------------------------------------------------------- show */

static void test_view_saved_only(void **state_)
{
    (void)state_;
    struct flow_account a;
    struct flow_account_view v;
    keep("{\"url\": \"https://ca.example.test/acct/1\", \"contact\": [\"mailto:a@x.test\"], "
         "\"terms_agreed\": {\"terms\": \"https://ca.example.test/tos\", \"at\": "
         "\"2026-01-01T00:00:00Z\"}}",
         true, false);
    open_account(&a);
    flow_account_view_make(&a, NULL, &v);
    assert_false(v.asked);
    assert_string_equal(v.url, "https://ca.example.test/acct/1");
    assert_null(v.status);
    assert_null(v.deactivated_at);
    assert_true(json_equal(v.contacts, v.saved_contacts));
    assert_int_equal(json_array_size(v.contacts), 1);
    assert_null(v.orders);
    assert_int_equal(v.terms_agreed, -1);
    assert_true(v.terms_recorded);
    assert_string_equal(v.terms_at, "2026-01-01T00:00:00Z");
    assert_string_equal(v.terms_url, "https://ca.example.test/tos");
    assert_string_equal(v.key_type, "ec256");
    assert_int_equal(strlen(v.thumbprint), 43);
    assert_null(v.ca_key_thumbprint);
    assert_false(v.key_differs);
    json_decref(v.contacts);
    json_decref(v.saved_contacts);
    flow_account_close(&a);
}

static void test_view_deactivated_and_keyless(void **state_)
{
    (void)state_;
    struct flow_account a;
    struct flow_account_view v;
    keep("{\"status\": \"deactivated\", \"deactivated_at\": \"2026-01-02T03:04:05Z\"}", false,
         false);
    open_account(&a);
    flow_account_view_make(&a, NULL, &v);
    assert_string_equal(v.status, "deactivated");
    assert_string_equal(v.deactivated_at, "2026-01-02T03:04:05Z");
    assert_string_equal(v.key_type, "(none)");
    assert_string_equal(v.thumbprint, "");
    assert_false(v.terms_recorded);
    json_decref(v.contacts);
    json_decref(v.saved_contacts);
    flow_account_close(&a);
}

static void test_view_with_the_ca(void **state_)
{
    (void)state_;
    struct flow_account a;
    struct flow_account_view v;
    char *held[] = {"mailto:other@x.test"};
    char status[] = "valid", orders[] = "https://ca.example.test/orders/1";
    struct acme_account ca = {
        .status = status, .contacts = held, .ncontacts = 1, .orders = orders, .terms_agreed = 0};
    keep("{\"url\": \"https://ca.example.test/acct/1\", \"contact\": [\"mailto:a@x.test\"]}", true,
         false);
    open_account(&a);

    /* The CA holds the saved key. */
    assert_int_equal(acme_key_thumbprint(a.key, ca.key_thumbprint, NULL), CP_OK);
    flow_account_view_make(&a, &ca, &v);
    assert_true(v.asked);
    assert_string_equal(v.status, "valid");
    assert_string_equal(json_string_value(json_array_get(v.contacts, 0)), "mailto:other@x.test");
    assert_string_equal(json_string_value(json_array_get(v.saved_contacts, 0)), "mailto:a@x.test");
    assert_string_equal(v.orders, orders);
    assert_int_equal(v.terms_agreed, 0);
    assert_string_equal(v.ca_key_thumbprint, v.thumbprint);
    assert_false(v.key_differs);
    json_decref(v.contacts);
    json_decref(v.saved_contacts);

    /* Another key. */
    snprintf(ca.key_thumbprint, sizeof ca.key_thumbprint, "%s",
             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    flow_account_view_make(&a, &ca, &v);
    assert_true(v.key_differs);
    json_decref(v.contacts);
    json_decref(v.saved_contacts);

    /* No key shown: nothing to compare. */
    ca.key_thumbprint[0] = '\0';
    flow_account_view_make(&a, &ca, &v);
    assert_false(v.key_differs);
    assert_string_equal(v.ca_key_thumbprint, "");
    json_decref(v.contacts);
    json_decref(v.saved_contacts);
    flow_account_close(&a);
}

/* Without a client the CA is not asked: the view of what is saved. */
static void test_show_without_the_ca(void **state_)
{
    (void)state_;
    struct flow_account a;
    struct flow_account_show_res res;
    struct acme_problem prob = {0};
    struct cp_err err = {0};
    keep("{\"url\": \"https://ca.example.test/acct/1\", \"contact\": [\"mailto:a@x.test\"]}", true,
         false);
    open_account(&a);
    assert_int_equal(flow_account_show(&a, NULL, &res, &prob, &err), CP_OK);
    assert_false(res.view.asked);
    assert_null(res.view.status);
    assert_int_equal(json_array_size(res.view.contacts), 1);
    flow_account_show_clear(&res);
    flow_account_show_clear(&res); /* twice: no-op */
    flow_account_close(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_nothing_kept_is_no_account, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_url_is_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_key_is_unsettled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deactivated_refused_with_how_to_go_on, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deactivated_without_date_or_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_status_is_not_deactivated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_use_refuses_deactivated_before_any_request, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_use_lookup_only_without_account, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_hands_over_key_and_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget_deactivated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget_keeps_an_active_account, setup, teardown),
        cmocka_unit_test(test_same_contacts),
        cmocka_unit_test_setup_teardown(test_view_saved_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_deactivated_and_keyless, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_with_the_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show_without_the_ca, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
