/*
 * store/seal.c - AES-256-GCM sealing of private keys (store/seal.h).
 */
#include "store/seal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NONCE_LEN    12
#define TAG_LEN      16
#define KEY_FILE_MAX 4096
/* The longest text a sealed SEAL_PLAIN_MAX can make, with room to spare. */
#define SEALED_TEXT_MAX                                                                            \
    (sizeof SEAL_PREFIX + (SEAL_PLAIN_MAX + NONCE_LEN + TAG_LEN + 2) / 3 * 4 + 16)

static const char how_to_make[] =
    "make one with: openssl rand -base64 32 > FILE && chmod 0600 FILE (the same file on every "
    "host sharing the store)";

static bool b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* Strict base64 (no white space inside, '=' only as the final padding):
 * *out a heap buffer of *out_len bytes; false when it is not base64. */
static bool b64_decode(const char *in, size_t len, unsigned char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (len == 0 || len % 4 != 0 || len > SEALED_TEXT_MAX)
        return false;
    size_t pad = in[len - 1] == '=' ? (in[len - 2] == '=' ? 2 : 1) : 0;
    for (size_t i = 0; i < len - pad; i++)
        if (!b64_char((unsigned char)in[i]))
            return false;
    unsigned char *buf = malloc(len / 4 * 3 + 1);
    if (buf == NULL)
        return false;
    int n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)len);
    if (n < 0 || (size_t)n != len / 4 * 3) {
        OPENSSL_cleanse(buf, len / 4 * 3 + 1);
        free(buf);
        return false;
    }
    *out = buf;
    *out_len = (size_t)n - pad;
    return true;
}

void seal_key_clear(struct seal_key *k)
{
    if (k != NULL)
        OPENSSL_cleanse(k, sizeof *k);
}

enum cp_code seal_key_parse(const char *text, size_t len, const char *what, struct seal_key *out,
                            struct cp_err *err)
{
    memset(out, 0, sizeof *out);
    while (len > 0 && strchr(" \t\r\n", text[len - 1]) != NULL && text[len - 1] != '\0')
        len--;
    while (len > 0 && strchr(" \t\r\n", text[0]) != NULL && text[0] != '\0') {
        text++;
        len--;
    }
    unsigned char *raw = NULL;
    size_t n = 0;
    if (!b64_decode(text, len, &raw, &n))
        return cp_err_set(err, CP_ESETUP, "the store key file %s does not hold base64 text; %s",
                          what, how_to_make);
    enum cp_code rc = CP_OK;
    if (n != SEAL_KEY_LEN)
        rc = cp_err_set(err, CP_ESETUP, "the store key file %s holds %zu bytes, not %d; %s", what,
                        n, SEAL_KEY_LEN, how_to_make);
    else {
        memcpy(out->k, raw, SEAL_KEY_LEN);
        out->loaded = 1;
    }
    OPENSSL_cleanse(raw, n);
    free(raw);
    return rc;
}

enum cp_code seal_key_load(const char *path, struct seal_key *out, struct cp_err *err)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return cp_err_set(err, CP_ESETUP,
                          "cannot read the store key file %s (--store-key-file): %s", path,
                          strerror(errno));
    struct stat sb;
    enum cp_code rc = CP_OK;
    if (fstat(fd, &sb) != 0)
        rc = cp_err_set(err, CP_EIO, "cannot examine the store key file %s: %s", path,
                        strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        rc = cp_err_set(err, CP_EUNSAFE, "refusing the store key file %s: it is not a regular file",
                        path);
    else if (sb.st_uid != geteuid())
        rc = cp_err_set(err, CP_EUNSAFE,
                        "refusing the store key file %s: it is owned by uid %u, not by this user "
                        "(uid %u), who alone should be able to change or read it; chown %u %s",
                        path, (unsigned)sb.st_uid, (unsigned)geteuid(), (unsigned)geteuid(), path);
    else if ((sb.st_mode & 077) != 0)
        rc = cp_err_set(err, CP_EUNSAFE,
                        "refusing the store key file %s: its mode %04o lets group or others at "
                        "it; chmod 0600 %s",
                        path, (unsigned)(sb.st_mode & 07777), path);
    else if (sb.st_size > KEY_FILE_MAX)
        rc = cp_err_set(err, CP_ESETUP, "the store key file %s is too big for a key; %s", path,
                        how_to_make);
    char buf[KEY_FILE_MAX + 1];
    ssize_t got = 0;
    while (rc == CP_OK) {
        ssize_t r = read(fd, buf + got, sizeof buf - 1 - (size_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = cp_err_set(err, CP_EIO, "cannot read the store key file %s: %s", path,
                            strerror(errno));
        else if (r == 0)
            break;
        else if ((got += r) >= (ssize_t)sizeof buf - 1)
            rc = cp_err_set(err, CP_ESETUP, "the store key file %s is too big for a key; %s", path,
                            how_to_make);
    }
    close(fd);
    if (rc == CP_OK)
        rc = seal_key_parse(buf, (size_t)got, path, out, err);
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

enum cp_code seal_seal(const struct seal_key *k, const char *aad, const void *plain, size_t len,
                       char **out, size_t *out_len, struct cp_err *err)
{
    *out = NULL;
    *out_len = 0;
    if (!k->loaded)
        return cp_err_set(err, CP_EINTERNAL, "no store key loaded");
    if (len > SEAL_PLAIN_MAX)
        return cp_err_set(err, CP_EINVAL, "a value of %zu bytes is too big to seal for %s", len,
                          aad);
    size_t raw_len = NONCE_LEN + len + TAG_LEN;
    unsigned char *raw = malloc(raw_len);
    char *text = malloc(sizeof SEAL_PREFIX + (raw_len + 2) / 3 * 4);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    enum cp_code rc = CP_OK;
    int n = 0;
    if (raw == NULL || text == NULL || ctx == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        goto out;
    }
    if (RAND_bytes(raw, NONCE_LEN) != 1) {
        rc = cp_err_set(err, CP_EINTERNAL, "no random bytes for a nonce");
        goto out;
    }
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, k->k, raw) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
        EVP_EncryptUpdate(ctx, raw + NONCE_LEN, &n, plain, (int)len) != 1 ||
        EVP_EncryptFinal_ex(ctx, raw + NONCE_LEN + n, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, raw + NONCE_LEN + len) != 1) {
        rc = cp_err_set(err, CP_EINTERNAL, "AES-256-GCM sealing failed for %s", aad);
        goto out;
    }
    memcpy(text, SEAL_PREFIX, sizeof SEAL_PREFIX - 1);
    n = EVP_EncodeBlock((unsigned char *)text + sizeof SEAL_PREFIX - 1, raw, (int)raw_len);
    *out_len = sizeof SEAL_PREFIX - 1 + (size_t)n;
    text[*out_len] = '\0';
    *out = text;
    text = NULL;
out:
    EVP_CIPHER_CTX_free(ctx);
    if (raw != NULL)
        OPENSSL_cleanse(raw, raw_len);
    free(raw);
    free(text);
    return rc;
}

enum cp_code seal_open(const struct seal_key *k, const char *aad, const char *text, size_t len,
                       unsigned char **plain, size_t *plain_len, struct cp_err *err)
{
    *plain = NULL;
    *plain_len = 0;
    const size_t plen = sizeof SEAL_PREFIX - 1;
    if (!k->loaded)
        return cp_err_set(err, CP_EINTERNAL, "no store key loaded");
    if (len < plen || memcmp(text, SEAL_PREFIX, plen) != 0)
        return cp_err_set(err, CP_EPROTO,
                          "%s does not hold a sealed value (\"%s...\"): certpilot never stores a "
                          "private key unsealed",
                          aad, SEAL_PREFIX);
    unsigned char *raw = NULL, *out = NULL;
    size_t raw_len = 0;
    if (!b64_decode(text + plen, len - plen, &raw, &raw_len) || raw_len < NONCE_LEN + TAG_LEN ||
        raw_len - NONCE_LEN - TAG_LEN > SEAL_PLAIN_MAX) {
        if (raw != NULL)
            OPENSSL_cleanse(raw, raw_len);
        free(raw);
        return cp_err_set(err, CP_EPROTO,
                          "the sealed value of %s is damaged (bad length or base64)", aad);
    }
    size_t clen = raw_len - NONCE_LEN - TAG_LEN;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    enum cp_code rc = CP_OK;
    int n = 0;
    if (ctx == NULL || (out = malloc(clen + 1)) == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        goto done;
    }
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, k->k, raw) != 1 ||
        EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
        EVP_DecryptUpdate(ctx, out, &n, raw + NONCE_LEN, (int)clen) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, raw + NONCE_LEN + clen) != 1 ||
        EVP_DecryptFinal_ex(ctx, out + n, &n) != 1) {
        rc = cp_err_set(err, CP_ESETUP,
                        "the sealed value of %s does not open with the store key: "
                        "--store-key-file is not the key it was sealed with, or the value was "
                        "changed or copied from another key",
                        aad);
        goto done;
    }
    out[clen] = '\0';
    *plain = out;
    *plain_len = clen;
    out = NULL;
done:
    EVP_CIPHER_CTX_free(ctx);
    OPENSSL_cleanse(raw, raw_len);
    free(raw);
    if (out != NULL) {
        OPENSSL_cleanse(out, clen + 1);
        free(out);
    }
    return rc;
}
