/*
 * tests/fuzz/fuzz_store_seal.c - libFuzzer target for the reading side of
 * store/seal.c: a sealed value as etcd (anyone who can write to it) may hand
 * it back, opened with a fixed key and etcd key name, and the same bytes as
 * the text of a key file.  A value that opens must be what was sealed: the
 * first seed is a real sealed value, so mutations near it reach the cipher.
 *
 * Needs: store/seal.c common/err.c, OpenSSL.
 * Seeds: corpus/store_seal/.
 */
#include "store/seal.h"

#include <openssl/crypto.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char key_b64[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    struct seal_key k, parsed;
    unsigned char *plain = NULL;
    size_t plain_len = 0;
    if (seal_key_parse(key_b64, strlen(key_b64), "fuzz", &k, NULL) != CP_OK)
        abort();
    if (seal_open(&k, "/certpilot/accounts/x/key", (const char *)data, size, &plain, &plain_len,
                  NULL) == CP_OK) {
        if (plain == NULL || plain[plain_len] != '\0')
            abort();
        OPENSSL_cleanse(plain, plain_len);
        free(plain);
    } else if (plain != NULL) {
        abort(); /* nothing handed out on failure */
    }
    if (seal_key_parse((const char *)data, size, "fuzz", &parsed, NULL) == CP_OK &&
        parsed.loaded != 1)
        abort();
    seal_key_clear(&parsed);
    seal_key_clear(&k);
    return 0;
}
