/* tests/unit/test_store_seal.c - store/seal.c: a private key sealed for an
 * etcd key opens again with the same key file and the same etcd key name,
 * and with nothing else (another key, another name, a changed, truncated or
 * garbled text); key files that others could read or change, or that hold
 * the wrong number of bytes, are refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/seal.h"

static const char pem[] =
    "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"
    "-----END PRIVATE KEY-----\n";
/* base64 of 32 bytes 0x00..0x1f, and of 32 bytes 0x01 */
static const char key_a[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";
static const char key_b[] = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
static const char aad[] = "/certpilot/lineages/www/versions/20261207T000000.000000000Z-ab";

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/cp-seal-XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    char path[300];
    static const char *const names[] = {"k", "k2", "k3", "k4", "k5", "k6"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
    return 0;
}

static void key_of(const char *b64, struct seal_key *k)
{
    struct cp_err err = {0};
    assert_int_equal(seal_key_parse(b64, strlen(b64), "test", k, &err), CP_OK);
}

static const char *write_key(const char *name, const char *text, mode_t mode)
{
    static char path[300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static void test_round_trip(void **state)
{
    (void)state;
    struct seal_key k;
    struct cp_err err = {0};
    char *text = NULL, *again = NULL;
    size_t len = 0, len2 = 0;
    unsigned char *plain = NULL;
    size_t plain_len = 0;
    key_of(key_a, &k);
    assert_int_equal(seal_seal(&k, aad, pem, strlen(pem), &text, &len, &err), CP_OK);
    assert_int_equal(strlen(text), len);
    assert_memory_equal(text, SEAL_PREFIX, strlen(SEAL_PREFIX));
    assert_null(strstr(text, "PRIVATE KEY"));
    assert_int_equal(seal_open(&k, aad, text, len, &plain, &plain_len, &err), CP_OK);
    assert_int_equal(plain_len, strlen(pem));
    assert_memory_equal(plain, pem, plain_len);
    assert_int_equal(plain[plain_len], '\0');
    /* A fresh nonce each time: the same value never seals to the same text. */
    assert_int_equal(seal_seal(&k, aad, pem, strlen(pem), &again, &len2, &err), CP_OK);
    assert_string_not_equal(text, again);
    OPENSSL_cleanse(plain, plain_len);
    free(plain);
    free(text);
    free(again);

    /* An empty value seals and opens too. */
    assert_int_equal(seal_seal(&k, aad, "", 0, &text, &len, &err), CP_OK);
    assert_int_equal(seal_open(&k, aad, text, len, &plain, &plain_len, &err), CP_OK);
    assert_int_equal(plain_len, 0);
    free(plain);
    free(text);
    seal_key_clear(&k);
}

static void test_wrong_key(void **state)
{
    (void)state;
    struct seal_key a, b;
    struct cp_err err = {0};
    char *text = NULL;
    size_t len = 0;
    unsigned char *plain = NULL;
    size_t plain_len = 0;
    key_of(key_a, &a);
    key_of(key_b, &b);
    assert_int_equal(seal_seal(&a, aad, pem, strlen(pem), &text, &len, &err), CP_OK);
    assert_int_equal(seal_open(&b, aad, text, len, &plain, &plain_len, &err), CP_ESETUP);
    assert_null(plain);
    assert_non_null(strstr(err.msg, "--store-key-file"));
    assert_non_null(strstr(err.msg, aad));
    free(text);
}

static void test_moved_value(void **state)
{
    (void)state;
    struct seal_key k;
    struct cp_err err = {0};
    char *text = NULL;
    size_t len = 0;
    unsigned char *plain = NULL;
    size_t plain_len = 0;
    key_of(key_a, &k);
    assert_int_equal(
        seal_seal(&k, "/certpilot/accounts/aa/key", pem, strlen(pem), &text, &len, &err), CP_OK);
    /* Copied into the pending key's place, or another prefix: does not open. */
    assert_int_equal(
        seal_open(&k, "/certpilot/accounts/aa/pending", text, len, &plain, &plain_len, &err),
        CP_ESETUP);
    assert_int_equal(seal_open(&k, "/other/accounts/aa/key", text, len, &plain, &plain_len, &err),
                     CP_ESETUP);
    assert_null(plain);
    assert_int_equal(
        seal_open(&k, "/certpilot/accounts/aa/key", text, len, &plain, &plain_len, &err), CP_OK);
    free(plain);
    free(text);
}

static void test_damaged(void **state)
{
    (void)state;
    struct seal_key k;
    struct cp_err err = {0};
    char *text = NULL;
    size_t len = 0;
    unsigned char *plain = NULL;
    size_t plain_len = 0;
    key_of(key_a, &k);
    assert_int_equal(seal_seal(&k, aad, pem, strlen(pem), &text, &len, &err), CP_OK);

    /* Truncated by one base64 quantum: still base64, the tag no longer matches. */
    assert_int_equal(seal_open(&k, aad, text, len - 4, &plain, &plain_len, &err), CP_ESETUP);
    /* Truncated to a length base64 cannot have. */
    assert_int_equal(seal_open(&k, aad, text, len - 1, &plain, &plain_len, &err), CP_EPROTO);
    /* Shorter than a nonce and a tag. */
    assert_int_equal(seal_open(&k, aad, "cpseal1:AAAA", 12, &plain, &plain_len, &err), CP_EPROTO);
    assert_int_equal(seal_open(&k, aad, "cpseal1:", 8, &plain, &plain_len, &err), CP_EPROTO);
    /* No prefix: a plain PEM is never taken. */
    assert_int_equal(seal_open(&k, aad, pem, strlen(pem), &plain, &plain_len, &err), CP_EPROTO);
    assert_int_equal(seal_open(&k, aad, "cpseal2:AAAA", 12, &plain, &plain_len, &err), CP_EPROTO);
    /* One bit of the ciphertext flipped (a valid base64 letter swapped). */
    size_t mid = strlen(SEAL_PREFIX) + 30;
    text[mid] = text[mid] == 'A' ? 'B' : 'A';
    assert_int_equal(seal_open(&k, aad, text, len, &plain, &plain_len, &err), CP_ESETUP);
    /* Not base64 at all. */
    text[mid] = '*';
    assert_int_equal(seal_open(&k, aad, text, len, &plain, &plain_len, &err), CP_EPROTO);
    text[mid] = '\n';
    assert_int_equal(seal_open(&k, aad, text, len, &plain, &plain_len, &err), CP_EPROTO);
    assert_null(plain);
    free(text);
}

static void test_key_text(void **state)
{
    (void)state;
    struct seal_key k;
    struct cp_err err = {0};
    /* 31 and 33 bytes */
    assert_int_equal(
        seal_key_parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==", 44, "f", &k, &err),
        CP_ESETUP);
    assert_non_null(strstr(err.msg, "31 bytes"));
    assert_int_equal(
        seal_key_parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g", 44, "f", &k, &err),
        CP_ESETUP);
    assert_int_equal(k.loaded, 0);
    assert_int_equal(seal_key_parse("not base64 at all!", 18, "f", &k, &err), CP_ESETUP);
    assert_non_null(strstr(err.msg, "openssl rand -base64 32"));
    assert_int_equal(seal_key_parse("", 0, "f", &k, &err), CP_ESETUP);
    /* White space around it is fine. */
    assert_int_equal(
        seal_key_parse("  AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\r\n", 48, "f", &k, &err),
        CP_OK);
    assert_int_equal(k.loaded, 1);
    assert_int_equal(k.k[0], 1);
    /* Not sealing or opening without a key. */
    struct seal_key none = {0};
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(seal_seal(&none, aad, "x", 1, &text, &len, &err), CP_EINTERNAL);
}

static void test_key_file(void **state)
{
    (void)state;
    struct seal_key k;
    struct cp_err err = {0};
    assert_int_equal(seal_key_load(write_key("k", key_a, 0600), &k, &err), CP_OK);
    assert_int_equal(k.k[31], 0x1f);
    assert_int_equal(seal_key_load(write_key("k2", key_a, 0400), &k, &err), CP_OK);
    /* Open modes: refused, with the chmod to run. */
    assert_int_equal(seal_key_load(write_key("k3", key_a, 0640), &k, &err), CP_EUNSAFE);
    assert_non_null(strstr(err.msg, "chmod 0600"));
    assert_int_equal(k.loaded, 0);
    assert_int_equal(seal_key_load(write_key("k4", key_a, 0604), &k, &err), CP_EUNSAFE);
    /* Wrong length in a file. */
    assert_int_equal(seal_key_load(write_key("k5", "AAAA\n", 0600), &k, &err), CP_ESETUP);
    assert_non_null(strstr(err.msg, "3 bytes"));
    /* Missing. */
    char path[300];
    snprintf(path, sizeof path, "%s/missing", dir);
    assert_int_equal(seal_key_load(path, &k, &err), CP_ESETUP);
    assert_non_null(strstr(err.msg, "--store-key-file"));
    /* A directory. */
    assert_int_equal(seal_key_load(dir, &k, &err), CP_EUNSAFE);
    /* Another owner (root can give a file away; others cannot test it). */
    if (geteuid() == 0) {
        const char *p = write_key("k6", key_a, 0600);
        assert_int_equal(chown(p, 65534, 65534), 0);
        assert_int_equal(seal_key_load(p, &k, &err), CP_EUNSAFE);
        assert_non_null(strstr(err.msg, "owned by uid 65534"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),  cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_moved_value), cmocka_unit_test(test_damaged),
        cmocka_unit_test(test_key_text),    cmocka_unit_test(test_key_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
