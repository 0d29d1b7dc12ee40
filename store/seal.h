/*
 * store/seal.h - private keys sealed for a shared store, so that what etcd
 * (its members, its backups, anyone who can read a snapshot) holds never
 * contains a key in the clear.
 *
 * The operator's key is 32 random bytes kept in a file as base64
 * (`openssl rand -base64 32 > FILE`), owned by the user that runs certpilot
 * and closed to group and others.  A value is sealed with AES-256-GCM
 * (OpenSSL EVP), a fresh random 96-bit nonce each time, and the name of the
 * etcd key it is stored under as associated data: a sealed value copied or
 * moved to another key does not open.  Its text form is
 *   "cpseal1:" base64(nonce | ciphertext | tag)
 * which keeps it printable inside JSON.
 *
 * It does not manage keys (no rotation, no derivation): one key file, one
 * key.  Nothing here prints.
 */
#ifndef CP_STORE_SEAL_H
#define CP_STORE_SEAL_H

#include <stddef.h>

#include "common/err.h"

#define SEAL_KEY_LEN   32
#define SEAL_PREFIX    "cpseal1:"
#define SEAL_PLAIN_MAX (256u * 1024) /* bytes of one sealed value, before sealing */

/* The key: a plain buffer the caller keeps and wipes with seal_key_clear(). */
struct seal_key {
    unsigned char k[SEAL_KEY_LEN];
    int loaded; /* 0 until seal_key_load() succeeded */
};

/*
 * Read the key file `path`: a regular file (a symbolic link to one is
 * followed) owned by this user, mode 0600 or 0400 (no group or other bit:
 * else CP_EUNSAFE), holding the base64 of exactly 32 bytes and optional
 * surrounding white space (else CP_ESETUP saying how to make one).  A missing
 * or unreadable file is CP_ESETUP too.
 */
enum cp_code seal_key_load(const char *path, struct seal_key *out, struct cp_err *err);
/* The same from text already read (the base64 and white space). */
enum cp_code seal_key_parse(const char *text, size_t len, const char *what, struct seal_key *out,
                            struct cp_err *err);
void seal_key_clear(struct seal_key *k);

/* Seal `len` bytes for the etcd key `aad`: *out a heap NUL-terminated
 * "cpseal1:..." string of *out_len bytes (free() it). */
enum cp_code seal_seal(const struct seal_key *k, const char *aad, const void *plain, size_t len,
                       char **out, size_t *out_len, struct cp_err *err);

/*
 * Open `text` (`len` bytes, "cpseal1:...") read from the etcd key `aad`:
 * *plain a heap buffer of *plain_len bytes plus a NUL (OPENSSL_cleanse and
 * free it).  CP_EPROTO when the text is not a sealed value (no prefix, bad
 * base64, too short or too long); CP_ESETUP when it does not open: sealed
 * with another key, changed, or moved from another etcd key.
 */
enum cp_code seal_open(const struct seal_key *k, const char *aad, const char *text, size_t len,
                       unsigned char **plain, size_t *plain_len, struct cp_err *err);

#endif
