/*
 * tests/fuzz/fuzz_etcd_reply.c - libFuzzer target for store/etcd_json.c: the
 * replies of etcd's JSON gateway (any member, or anything answering on its
 * port).  The first byte picks the stream form (lease keep-alive) and
 * keys-only; the rest is the body.  An answer is read as a range (key-values),
 * a header revision, a token and the int64 fields the client uses; the body
 * is also decoded as base64 and used as a prefix.
 *
 * Needs: store/etcd_json.c common/err.c, jansson, OpenSSL.  Seeds:
 * corpus/etcd_reply/.
 */
#include "store/etcd_kv_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool stream = data[0] & 1, keys_only = data[0] & 2;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    struct etcd_reply r;
    struct cp_err err = {0};

    if (etcd_reply_parse(body, len, stream, &r, &err) == CP_OK) {
        if (r.verdict == ETCD_ANSWER) {
            struct etcd_kv_list l;
            if (r.root == NULL)
                abort();
            if (etcd_json_kvs(r.root, keys_only, &l, &err) == CP_OK) {
                if (l.n > ETCD_KV_MAX_ITEMS || (l.n > 0) != (l.items != NULL))
                    abort();
                for (size_t i = 0; i < l.n; i++) {
                    const struct etcd_kv_item *it = &l.items[i];
                    if (it->key == NULL || it->key[0] == '\0' || strlen(it->key) > ETCD_KV_MAX_KEY)
                        abort();
                    if (i > 0 && strcmp(l.items[i - 1].key, it->key) > 0)
                        abort();
                    if (keys_only != (it->value == NULL))
                        abort();
                    if (it->value != NULL && (it->len > ETCD_KV_MAX_VALUE || it->value[it->len]))
                        abort();
                }
                etcd_kv_list_clear(&l);
            } else if (l.items != NULL || l.n != 0) {
                abort();
            }
            int64_t v;
            (void)etcd_json_revision(r.root, &v, &err);
            (void)etcd_json_int64(r.root, "TTL", &v, &err);
            char *token = NULL;
            if (etcd_json_token(r.root, &token, &err) == CP_OK) {
                if (token == NULL || strlen(token) > ETCD_KV_MAX_TOKEN)
                    abort();
                free(token);
            } else if (token != NULL) {
                abort();
            }
        } else if (r.root != NULL || strlen(r.message) >= sizeof r.message) {
            abort();
        }
        etcd_reply_clear(&r);
    } else if (r.root != NULL) {
        abort();
    }

    /* Base64 of a NUL-terminated copy (at most 4 KiB), and a prefix. */
    char text[4097];
    size_t n = len < 4096 ? len : 4096;
    memcpy(text, body, n);
    text[n] = '\0';
    unsigned char *out = NULL, end[4097];
    size_t outlen = 0;
    if (etcd_b64_decode(text, 1024, &out, &outlen, &err) == CP_OK) {
        if (outlen > 1024 || out[outlen] != 0)
            abort();
        /* Encoding again and decoding gives the same bytes. */
        char *again = etcd_b64_encode(out, outlen);
        unsigned char *back = NULL;
        size_t backlen = 0;
        if (again == NULL || etcd_b64_decode(again, 1024, &back, &backlen, &err) != CP_OK ||
            backlen != outlen || memcmp(back, out, outlen) != 0)
            abort();
        free(back);
        free(again);
        free(out);
    } else if (out != NULL) {
        abort();
    }
    size_t elen = etcd_prefix_end(text, n, end);
    if (elen == 0 || elen > (n ? n : 1))
        abort();
    return 0;
}
