/* tests/unit/test_store_fs.c - store/fs.c and store/fs_remove.c, the store on
 * the filesystem: listing and removing a lineage (never through a symbolic
 * link, nothing else touched, refusals before anything is removed), the
 * current version, pruning old versions, settings and status files that are
 * not followed through symbolic links, and the lock (and when it sweeps the
 * lineages for a killed run's temp files), on lineages stored with
 * store_version_add() in a temporary state directory. */
#define _XOPEN_SOURCE 700 /* nftw() */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "store/store.h"
#include "tests/unit/fixture.h"

static char tmp[256], state[300], outside[300];
static struct cp_store *S; /* the store on `state`, opened by setup() */

/* ------------------------------------------------------------- fixtures */

static void path_of(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void path_of(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < size);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Store a certificate with `serial` as the new current version of `name`. */
static void store(const char *name, long serial)
{
    char *key = NULL, *cert = fixture_cert(serial, 0, 86400, &key);
    struct cp_err err = {0};
    assert_int_equal(store_version_add(S, name, key, strlen(key), cert, "", cert, &err), CP_OK);
    free(key);
    free(cert);
}

static int setup(void **st)
{
    (void)st;
    char path[400];
    snprintf(tmp, sizeof tmp, "/tmp/cp-lineage-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    path_of(state, sizeof state, "%s/%s", tmp, "state");
    path_of(outside, sizeof outside, "%s/%s", tmp, "outside");
    assert_int_equal(mkdir(state, 0700), 0);
    assert_int_equal(mkdir(outside, 0700), 0);
    struct cp_err err = {0};
    assert_int_equal(store_fs_open(state, &S, &err), CP_OK);
    path_of(path, sizeof path, "%s/%s", outside, "precious.txt");
    write_file(path, "not certpilot's\n");
    path_of(path, sizeof path, "%s/%s", outside, "dir");
    assert_int_equal(mkdir(path, 0700), 0);
    path_of(path, sizeof path, "%s/%s", outside, "dir/inner.txt");
    write_file(path, "inner\n");
    store("a", 0x1001);
    store("a", 0x1002);
    store("b", 0x2001);
    path_of(path, sizeof path, "%s/certs/%s/renewal.conf", state, "a");
    write_file(path, "domain = a.test\n");
    path_of(path, sizeof path, "%s/certs/%s/status.json", state, "a");
    write_file(path, "{}\n");
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    store_close(S);
    S = NULL;
    return fixture_remove_tree(tmp) == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- tests */

static void test_list(void **st)
{
    (void)st;
    struct store_contents c = {0};
    struct cp_err err = {0};
    assert_int_equal(store_lineage_contents(S, "a", &c, &err), CP_OK);
    /* 2 versions x 4 files + renewal.conf + status.json; current + 4 stable links;
     * versions/ and the 2 version directories. */
    assert_int_equal(c.files, 10);
    assert_int_equal(c.links, 5);
    assert_int_equal(c.dirs, 3);
    assert_int_equal(c.n, 18);
    assert_string_equal(c.e[0].path, "cert.pem");
    assert_string_equal(c.e[0].target, "current/cert.pem");
    for (size_t i = 1; i < c.n; i++)
        assert_true(strcmp(c.e[i - 1].path, c.e[i].path) < 0); /* sorted, parents first */
    bool saw_versions = false;
    for (size_t i = 0; i < c.n; i++) {
        if (strcmp(c.e[i].path, "versions/") == 0)
            saw_versions = true;
        if (strncmp(c.e[i].path, "versions/", 9) == 0 && c.e[i].path[9] != '\0')
            assert_true(saw_versions);
        if (strcmp(c.e[i].path, "current") == 0)
            assert_non_null(strstr(c.e[i].target, "versions/"));
    }
    store_contents_clear(&c);
    assert_int_equal(c.n, 0);
}

static void test_remove_follows_no_link(void **st)
{
    (void)st;
    char path[600], link[600], version[600], target[256];
    struct cp_err err = {0};
    size_t removed = 0;
    /* Links to a file and to a directory outside, in the lineage and in a version. */
    path_of(path, sizeof path, "%s/%s", outside, "precious.txt");
    path_of(link, sizeof link, "%s/certs/%s/planted.pem", state, "a");
    assert_int_equal(symlink(path, link), 0);
    path_of(link, sizeof link, "%s/certs/%s/current", state, "a");
    ssize_t n = readlink(link, target, sizeof target - 1);
    assert_true(n > 0);
    target[n] = '\0';
    path_of(version, sizeof version, "%s/certs/a/%s", state, target);
    path_of(link, sizeof link, "%s/%s", version, "extra.pem");
    assert_int_equal(symlink(path, link), 0);
    path_of(path, sizeof path, "%s/%s", outside, "dir");
    path_of(link, sizeof link, "%s/certs/%s/versions/20000101T000000.000000000Z", state, "a");
    assert_int_equal(symlink(path, link), 0);

    struct store_contents before = {0}, b_before = {0}, b_after = {0};
    assert_int_equal(store_lineage_contents(S, "a", &before, &err), CP_OK);
    assert_int_equal(store_lineage_contents(S, "b", &b_before, &err), CP_OK);
    assert_int_equal(store_lineage_remove(S, "a", &removed, &err), CP_OK);
    assert_int_equal(removed, before.n + 1);
    assert_false(store_lineage_exists(S, "a"));
    path_of(path, sizeof path, "%s/certs/%s", state, "a");
    assert_false(exists(path));
    /* What the links pointed to is still there. */
    path_of(path, sizeof path, "%s/%s", outside, "precious.txt");
    assert_true(exists(path));
    path_of(path, sizeof path, "%s/%s", outside, "dir/inner.txt");
    assert_true(exists(path));
    /* The other lineage is as it was, and no hidden leftover in certs/. */
    assert_int_equal(store_lineage_contents(S, "b", &b_after, &err), CP_OK);
    assert_int_equal(b_after.n, b_before.n);
    for (size_t i = 0; i < b_after.n; i++)
        assert_string_equal(b_after.e[i].path, b_before.e[i].path);
    path_of(path, sizeof path, "%s/%s", state, "certs");
    DIR *d = opendir(path);
    struct dirent *e;
    size_t entries = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        assert_string_equal(e->d_name, "b");
        entries++;
    }
    closedir(d);
    assert_int_equal(entries, 1);
    store_contents_clear(&before);
    store_contents_clear(&b_before);
    store_contents_clear(&b_after);
}

static void test_unknown_and_symlinked_lineage(void **st)
{
    (void)st;
    char link[600];
    struct cp_err err = {0};
    size_t removed = 0;
    struct store_contents c = {0};
    assert_false(store_lineage_exists(S, "nope"));
    assert_int_equal(store_lineage_remove(S, "nope", &removed, &err), CP_EINVAL);
    assert_int_equal(store_lineage_contents(S, "nope", &c, &err), CP_EINVAL);
    /* certs/linked -> a directory outside: no lineage, nothing removed there. */
    path_of(link, sizeof link, "%s/certs/%s", state, "linked");
    assert_int_equal(symlink(outside, link), 0);
    assert_false(store_lineage_exists(S, "linked"));
    assert_int_not_equal(store_lineage_remove(S, "linked", &removed, &err), CP_OK);
    assert_int_equal(removed, 0);
    path_of(link, sizeof link, "%s/%s", outside, "precious.txt");
    assert_true(exists(link));
}

static void test_refused_before_anything_is_removed(void **st)
{
    (void)st;
    char path[600], deep[700];
    struct cp_err err = {0};
    size_t removed = 0;
    store("c", 0x3001);
    path_of(path, sizeof path, "%s/certs/%s/renewal.conf", state, "c");
    write_file(path, "domain = c.test\n");

    /* Nesting deeper than certpilot makes. */
    for (int i = 1; i <= 6; i++) {
        char *p = deep;
        p += snprintf(deep, sizeof deep, "%s/certs/c", state);
        for (int k = 0; k < i; k++)
            p += snprintf(p, sizeof deep - (size_t)(p - deep), "/x");
        assert_int_equal(mkdir(deep, 0700), 0);
    }
    assert_int_equal(store_lineage_remove(S, "c", &removed, &err), CP_EUNSAFE);
    assert_non_null(strstr(err.msg, "deeper"));
    assert_int_equal(removed, 0);
    assert_true(store_lineage_exists(S, "c"));
    assert_true(exists(path));
    path_of(deep, sizeof deep, "%s/certs/%s/x", state, "c");
    assert_int_equal(fixture_remove_tree(deep), 0);

    /* `current` pointing outside the lineage. */
    char link[600], target[256];
    path_of(link, sizeof link, "%s/certs/%s/current", state, "c");
    ssize_t n = readlink(link, target, sizeof target - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_int_equal(unlink(link), 0);
    assert_int_equal(symlink(outside, link), 0);
    assert_int_equal(store_lineage_remove(S, "c", &removed, &err), CP_EUNSAFE);
    assert_true(exists(path));
    assert_int_equal(unlink(link), 0);
    assert_int_equal(symlink(target, link), 0);

    /* A lineage directory others may write. */
    path_of(link, sizeof link, "%s/certs/%s", state, "c");
    assert_int_equal(chmod(link, 0770), 0);
    assert_int_equal(store_lineage_remove(S, "c", &removed, &err), CP_EUNSAFE);
    assert_true(exists(path));
    assert_int_equal(chmod(link, 0700), 0);
    assert_int_equal(store_lineage_remove(S, "c", &removed, &err), CP_OK);
    assert_false(store_lineage_exists(S, "c"));
}

static char *current_pem(const char *name)
{
    char *pem = NULL;
    size_t len = 0;
    struct cp_err err = {0};
    assert_int_equal(store_current_cert(S, name, &pem, &len, &err), CP_OK);
    return pem;
}

static size_t count_versions(const char *name)
{
    char path[400];
    size_t n = 0;
    path_of(path, sizeof path, "%s/certs/%s/versions", state, name);
    DIR *d = opendir(path);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The current version is the last one added; none: NULL, not an error. */
static void test_current_version(void **st)
{
    (void)st;
    char *none = current_pem("nothing-here");
    assert_null(none);
    store("e", 0x5001);
    char *first = current_pem("e");
    store("e", 0x5002);
    char *second = current_pem("e");
    assert_non_null(first);
    assert_non_null(second);
    assert_string_not_equal(first, second);
    free(first);
    free(second);
    struct acme_key *key = NULL;
    struct cp_err err = {0};
    assert_int_equal(store_current_key(S, "e", &key, &err), CP_OK);
    assert_non_null(key);
    acme_key_free(key);
}

/* Pruning keeps the newest `keep`, the current one and the one before it. */
static void test_prune(void **st)
{
    (void)st;
    size_t removed = 0;
    struct cp_err err = {0};
    for (long i = 0; i < 5; i++)
        store("p", 0x6000 + i);
    assert_int_equal(count_versions("p"), 5);
    assert_int_equal(store_versions_prune(S, "p", 0, &removed, &err), CP_OK); /* 0: all kept */
    assert_int_equal(removed, 0);
    assert_int_equal(store_versions_prune(S, "p", 3, &removed, &err), CP_OK);
    assert_int_equal(removed, 2);
    assert_int_equal(count_versions("p"), 3);
    /* Something certpilot does not make inside an old version: left alone. */
    char path[700], link[400], target[200];
    path_of(link, sizeof link, "%s/certs/p/current", state);
    ssize_t n = readlink(link, target, sizeof target - 1);
    assert_true(n > 0);
    target[n] = '\0';
    store("p", 0x6010);
    DIR *d;
    path_of(path, sizeof path, "%s/certs/p/versions", state);
    assert_non_null(d = opendir(path));
    char oldest[300] = "~";
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.' && strcmp(e->d_name, oldest) < 0)
            snprintf(oldest, sizeof oldest, "%s", e->d_name);
    closedir(d);
    path_of(path, sizeof path, "%s/certs/p/versions/%s/extra", state, oldest);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(store_versions_prune(S, "p", 2, &removed, &err), CP_EIO);
    assert_non_null(strstr(err.msg, oldest));
    /* The current version is the newest and is kept, as is the one before. */
    assert_int_equal(readlink(link, target, sizeof target - 1) > 0, 1);
}

/* Settings and status are files certpilot keeps: a symlink there is refused. */
static void test_settings_not_followed(void **st)
{
    (void)st;
    char path[400], label[400], *text = NULL;
    size_t len = 0;
    struct cp_err err = {0};
    store("s", 0x7001);
    assert_int_equal(store_settings_save(S, "s", "domain = a.test\n", 16, &err), CP_OK);
    assert_int_equal(store_settings_load(S, "s", &text, &len, label, sizeof label, &err), CP_OK);
    assert_string_equal(text, "domain = a.test\n");
    assert_non_null(strstr(label, "/certs/s/renewal.conf"));
    free(text);
    path_of(path, sizeof path, "%s/certs/s/renewal.conf", state);
    assert_int_equal(unlink(path), 0);
    char target[400];
    path_of(target, sizeof target, "%s/precious.txt", outside);
    assert_int_equal(symlink(target, path), 0);
    assert_int_equal(store_settings_load(S, "s", &text, &len, NULL, 0, &err), CP_EUNSAFE);
    assert_null(text);
    /* No settings at all: NULL text, not an error. */
    assert_int_equal(store_settings_load(S, "b2", &text, &len, NULL, 0, &err), CP_OK);
    assert_null(text);
    assert_int_equal(store_settings_load(S, "../x", &text, &len, NULL, 0, &err), CP_EINVAL);
}

/* A second handle cannot take the lock the first holds. */
static void test_lock(void **st)
{
    (void)st;
    struct cp_store *other = NULL;
    struct cp_err err = {0};
    size_t swept = 0;
    assert_int_equal(store_lock(S, 1, NULL, NULL, &swept, &err), CP_OK);
    assert_int_equal(store_fs_open(state, &other, &err), CP_OK);
    assert_int_equal(store_lock(other, 0, NULL, NULL, &swept, &err), CP_ETIMEOUT);
    assert_non_null(strstr(err.msg, "another certpilot run"));
    store_unlock(S);
    assert_int_equal(store_lock(other, 0, NULL, NULL, &swept, &err), CP_OK);
    store_close(other);
}

/* Set the modification time of `path` to `age` seconds ago. */
static void age(const char *path, long age)
{
    struct timespec t[2] = {{.tv_sec = time(NULL) - age}, {.tv_sec = time(NULL) - age}};
    assert_int_equal(utimensat(AT_FDCWD, path, t, AT_SYMLINK_NOFOLLOW), 0);
}

/* The lineages are swept for a killed run's temp files after a run that
 * did not let the lock go in good order (its pid left in the lock file),
 * and after one whose sweep left a young temp file there; not after a run
 * that let it go in good order. */
static void test_sweep_after_unclean_release(void **st)
{
    (void)st;
    char old[400], young[400], lock[400];
    size_t swept = 0;
    struct cp_err err = {0};
    store("swept", 0x3001);
    path_of(old, sizeof old, "%s/certs/swept/status.json.tmp-00000000000000aa", state);
    path_of(young, sizeof young, "%s/certs/swept/status.json.tmp-00000000000000bb", state);
    path_of(lock, sizeof lock, "%s/renew.lock", state);

    assert_int_equal(store_lock(S, 1, NULL, NULL, &swept, &err), CP_OK);
    store_unlock(S); /* in good order */
    write_file(old, "half\n");
    age(old, 3600);
    assert_int_equal(store_lock(S, 1, NULL, NULL, &swept, &err), CP_OK);
    assert_int_equal(swept, 0);
    assert_true(exists(old)); /* not a killed run's: not looked for */
    store_unlock(S);

    write_file(lock, "12345\n"); /* what a killed run leaves */
    write_file(young, "half\n");
    assert_int_equal(store_lock(S, 1, NULL, NULL, &swept, &err), CP_OK);
    assert_int_equal(swept, 1);
    assert_false(exists(old));
    assert_true(exists(young)); /* it may belong to a run still going */
    store_unlock(S);

    age(young, 3600); /* the next run looks again */
    assert_int_equal(store_lock(S, 1, NULL, NULL, &swept, &err), CP_OK);
    assert_int_equal(swept, 1);
    assert_false(exists(young));
    store_unlock(S);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_remove_follows_no_link),
        cmocka_unit_test(test_unknown_and_symlinked_lineage),
        cmocka_unit_test(test_refused_before_anything_is_removed),
        cmocka_unit_test(test_current_version),
        cmocka_unit_test(test_prune),
        cmocka_unit_test(test_settings_not_followed),
        cmocka_unit_test(test_lock),
        cmocka_unit_test(test_sweep_after_unclean_release),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
