/* tests/unit/test_store_etcd.c - store_open() (store/store.c) and what
 * store/etcd.c refuses before a request is answered: URLs that name no store
 * or no usable member, a missing key file, and members that do not answer
 * (CP_ENET naming every endpoint, the state directory left alone).  The
 * store against a real cluster is tests/integration/test_store_etcd.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/unit/fixture.h"

static char dir[256], state[300], key[300];

static int setup(void **st)
{
    (void)st;
    snprintf(dir, sizeof dir, "/tmp/cp-etcdstore-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(state, sizeof state, "%s/state", dir);
    snprintf(key, sizeof key, "%s/store.key", dir);
    FILE *f = fopen(key, "w");
    if (f == NULL)
        return -1;
    fputs("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", f);
    fclose(f);
    return chmod(key, 0600);
}

static int teardown(void **st)
{
    (void)st;
    return fixture_remove_tree(dir);
}

static enum cp_code open_url(const char *url, const char *key_file, struct cp_store **out,
                             struct cp_err *err)
{
    struct store_open_opts o = {
        .url = url, .local_dir = state, .seal_key_file = key_file, .timeout_ms = 2000};
    return store_open(&o, out, err);
}

static void test_paths_are_the_filesystem(void **st)
{
    (void)st;
    struct cp_store *s = NULL;
    struct cp_err err = {0};
    assert_int_equal(open_url(NULL, NULL, &s, &err), CP_OK);
    assert_string_equal(store_where(s), state);
    assert_false(store_shared(s));
    assert_false(store_unavailable(s));
    store_close(s);
    assert_int_equal(open_url(dir, NULL, &s, &err), CP_OK);
    assert_string_equal(store_where(s), dir);
    store_close(s);
}

static void test_bad_urls(void **st)
{
    (void)st;
    static const char *const bad[] = {
        "consul://127.0.0.1:8500/x", /* not a store certpilot knows */
        "etcd:///certpilot",         /* no member */
        "etcd://a:1,,b:2/x",         /* an empty member */
        "etcd://user:pw@h:2379/x",   /* credentials in the URL */
        "etcd://h:port/x",           /* a port that is no number */
        "etcd://h:123456/x",         /* too long a port */
        "etcd://::1:2379/x",         /* IPv6 without brackets */
        "etcd://[::1:2379/x",        /* unclosed bracket */
        "etcd://h:2379/a b",         /* a prefix with a space */
        "etcd://h:2379/a//b",        /* empty path segment */
        "etcds://h:2379/a?x=1",      /* a query */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cp_store *s = (struct cp_store *)1;
        struct cp_err err = {0};
        assert_int_equal(open_url(bad[i], key, &s, &err), CP_EINVAL);
        assert_null(s);
        assert_non_null(strstr(err.msg, "--store"));
    }
    struct cp_err err = {0};
    struct cp_store *s = NULL;
    assert_int_equal(open_url("consul://127.0.0.1:8500/x", key, &s, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "consul://127.0.0.1:8500/x"));
    assert_int_equal(open_url("etcd://u:p@h/x", key, &s, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "--store-user"));
}

static void test_key_file_needed(void **st)
{
    (void)st;
    struct cp_store *s = NULL;
    struct cp_err err = {0};
    assert_int_equal(open_url("etcd://127.0.0.1:1/x", NULL, &s, &err), CP_ESETUP);
    assert_non_null(strstr(err.msg, "--store-key-file"));
    assert_int_equal(open_url("etcd://127.0.0.1:1/x", "", &s, &err), CP_ESETUP);
    char missing[400];
    snprintf(missing, sizeof missing, "%s/absent.key", dir);
    assert_int_equal(open_url("etcd://127.0.0.1:1/x", missing, &s, &err), CP_ESETUP);
    assert_non_null(strstr(err.msg, "absent.key"));
    assert_null(s);
}

/* Members that refuse connections: CP_ENET naming each, nothing created locally. */
static void test_no_member_answers(void **st)
{
    (void)st;
    struct cp_store *s = NULL;
    struct cp_err err = {0};
    assert_int_equal(open_url("etcd://127.0.0.1:1,127.0.0.1:2,[::1]:3/certpilot", key, &s, &err),
                     CP_ENET);
    assert_null(s);
    assert_non_null(strstr(err.msg, "http://127.0.0.1:1"));
    assert_non_null(strstr(err.msg, "http://127.0.0.1:2"));
    assert_non_null(strstr(err.msg, "http://[::1]:3"));
    struct stat sb;
    assert_int_not_equal(stat(state, &sb), 0); /* the state directory was not made */
    /* The default port, and etcds:// speaks HTTPS. */
    assert_int_equal(open_url("etcds://127.0.0.1", key, &s, &err), CP_ENET);
    assert_non_null(strstr(err.msg, "https://127.0.0.1:2379"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths_are_the_filesystem),
        cmocka_unit_test(test_bad_urls),
        cmocka_unit_test(test_key_file_needed),
        cmocka_unit_test(test_no_member_answers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
