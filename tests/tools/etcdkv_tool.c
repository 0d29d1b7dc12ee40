/*
 * tests/tools/etcdkv_tool.c - drive store/etcd_kv.c from the integration
 * tests (tests/integration/test_etcd_kv.py).  Not installed.
 *
 *   etcdkv_tool [--ca FILE] [--cert FILE --key FILE] [--user NAME --password PW]
 *               [--timeout-ms N] ENDPOINT[,ENDPOINT...] COMMAND ARGS... [-- COMMAND ARGS...]...
 *
 * Commands (values are given and printed in base64, so that they may hold
 * any byte; lease IDs in decimal):
 *   get KEY                     {"found", "value", "len", "create_revision",
 *                                "mod_revision", "version", "lease"}
 *   put KEY VALUE [LEASE]       {}
 *   range PREFIX [keys]         {"revision", "items": [{"key", "value", ...}]}
 *   del KEY [prefix]            {"deleted"}
 *   txn-create KEY VALUE [LEASE]  put if KEY does not exist: {"succeeded", "revision"}
 *   txn-cas KEY OLD NEW         put NEW if KEY's value is OLD: {"succeeded", "revision"}
 *   txn-guard GUARD LEASE KEY VALUE
 *                               put KEY if GUARD exists with lease LEASE
 *                               (the fleet's guarded write): {"succeeded", "revision"}
 *   lease-grant TTL             {"id"}
 *   keepalive ID                {"ttl"}
 *   revoke ID                   {}
 * Each command prints one JSON object with "ok": true and the fields above,
 * or {"ok": false, "code": cp_code_name(), "message"}.  Commands joined by
 * "--" run in order on one handle (connection reuse, token reuse) and print
 * {"results": [...]}.  Exit status 0 when every command succeeded, 1 when
 * one failed (the rest still run), 2 for usage errors.
 */
#include "store/etcd_kv.h"

#include <jansson.h>
#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    fprintf(stderr, "usage: etcdkv_tool [--ca FILE] [--cert FILE --key FILE] [--user NAME "
                    "--password PW] [--timeout-ms N] ENDPOINTS COMMAND ARGS... [-- ...]\n");
    exit(2);
}

static unsigned char *unb64(const char *s, size_t *len)
{
    size_t n = strlen(s);
    unsigned char *out = malloc(n / 4 * 3 + 1);
    if (out == NULL || n % 4 != 0)
        usage();
    int got = n ? EVP_DecodeBlock(out, (const unsigned char *)s, (int)n) : 0;
    if (got < 0)
        usage();
    size_t pad = n >= 1 && s[n - 1] == '=' ? (n >= 2 && s[n - 2] == '=' ? 2 : 1) : 0;
    *len = (size_t)got - pad;
    return out;
}

static json_t *b64(const unsigned char *data, size_t len)
{
    char *s = malloc((len + 2) / 3 * 4 + 1);
    if (s == NULL)
        exit(3);
    EVP_EncodeBlock((unsigned char *)s, data ? data : (const unsigned char *)"", (int)len);
    json_t *j = json_string(s);
    free(s);
    return j;
}

static int64_t number(const char *s)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0')
        usage();
    return (int64_t)v;
}

static json_t *item_json(const struct etcd_kv_item *it)
{
    json_t *o =
        json_pack("{s:s, s:I, s:I, s:I, s:I}", "key", it->key, "create_revision",
                  (json_int_t)it->create_revision, "mod_revision", (json_int_t)it->mod_revision,
                  "version", (json_int_t)it->version, "lease", (json_int_t)it->lease);
    if (it->value != NULL) {
        json_object_set_new(o, "value", b64(it->value, it->len));
        json_object_set_new(o, "len", json_integer((json_int_t)it->len));
    } else {
        json_object_set_new(o, "value", json_null());
    }
    return o;
}

/* Runs argv[0..argc) as one command; returns its JSON result. */
static json_t *run(struct etcd_kv *kv, int argc, char **argv)
{
    struct cp_err err = {0};
    enum cp_code rc;
    json_t *out = json_object();
    const char *cmd = argc > 0 ? argv[0] : "";

#define NEED(lo, hi)                                                                               \
    do {                                                                                           \
        if (argc < (lo) + 1 || argc > (hi) + 1)                                                    \
            usage();                                                                               \
    } while (0)

    if (strcmp(cmd, "get") == 0) {
        NEED(1, 1);
        struct etcd_kv_item it;
        rc = etcd_kv_get(kv, argv[1], &it, &err);
        if (rc == CP_OK && it.value != NULL) {
            json_decref(out);
            out = item_json(&it);
        }
        if (rc == CP_OK)
            json_object_set_new(out, "found", json_boolean(it.value != NULL));
        etcd_kv_item_clear(&it);
    } else if (strcmp(cmd, "put") == 0) {
        NEED(2, 3);
        size_t len;
        unsigned char *v = unb64(argv[2], &len);
        rc = etcd_kv_put(kv, argv[1], v, len, argc > 3 ? number(argv[3]) : 0, &err);
        free(v);
    } else if (strcmp(cmd, "range") == 0) {
        NEED(1, 2);
        bool keys = argc > 2 && strcmp(argv[2], "keys") == 0;
        struct etcd_kv_list l;
        rc = etcd_kv_range(kv, argv[1], keys, &l, &err);
        if (rc == CP_OK) {
            json_t *items = json_array();
            for (size_t i = 0; i < l.n; i++)
                json_array_append_new(items, item_json(&l.items[i]));
            json_object_set_new(out, "items", items);
            json_object_set_new(out, "revision", json_integer((json_int_t)l.revision));
            etcd_kv_list_clear(&l);
        }
    } else if (strcmp(cmd, "del") == 0) {
        NEED(1, 2);
        size_t n = 0;
        rc = etcd_kv_delete(kv, argv[1], argc > 2 && strcmp(argv[2], "prefix") == 0, &n, &err);
        if (rc == CP_OK)
            json_object_set_new(out, "deleted", json_integer((json_int_t)n));
    } else if (strncmp(cmd, "txn-", 4) == 0) {
        struct etcd_cmp c = {0};
        struct etcd_op op = {.type = ETCD_OP_PUT};
        unsigned char *v1 = NULL, *v2 = NULL;
        size_t l1 = 0, l2 = 0;
        bool ok = false;
        int64_t rev = 0;
        if (strcmp(cmd, "txn-create") == 0) {
            NEED(2, 3);
            v1 = unb64(argv[2], &l1);
            c = (struct etcd_cmp){argv[1], ETCD_CMP_CREATE, ETCD_EQUAL, 0, NULL, 0};
            op = (struct etcd_op){ETCD_OP_PUT, argv[1], v1, l1, argc > 3 ? number(argv[3]) : 0,
                                  false};
        } else if (strcmp(cmd, "txn-cas") == 0) {
            NEED(3, 3);
            v1 = unb64(argv[2], &l1);
            v2 = unb64(argv[3], &l2);
            c = (struct etcd_cmp){argv[1], ETCD_CMP_VALUE, ETCD_EQUAL, 0, v1, l1};
            op = (struct etcd_op){ETCD_OP_PUT, argv[1], v2, l2, 0, false};
        } else if (strcmp(cmd, "txn-guard") == 0) {
            NEED(4, 4);
            v1 = unb64(argv[4], &l1);
            c = (struct etcd_cmp){argv[1], ETCD_CMP_LEASE, ETCD_EQUAL, number(argv[2]), NULL, 0};
            op = (struct etcd_op){ETCD_OP_PUT, argv[3], v1, l1, 0, false};
        } else {
            usage();
        }
        rc = etcd_kv_txn(kv, &c, 1, &op, 1, NULL, 0, &ok, &rev, &err);
        if (rc == CP_OK) {
            json_object_set_new(out, "succeeded", json_boolean(ok));
            json_object_set_new(out, "revision", json_integer((json_int_t)rev));
        }
        free(v1);
        free(v2);
    } else if (strcmp(cmd, "lease-grant") == 0) {
        NEED(1, 1);
        int64_t id = 0;
        rc = etcd_lease_grant(kv, (unsigned)number(argv[1]), &id, &err);
        if (rc == CP_OK)
            json_object_set_new(out, "id", json_integer((json_int_t)id));
    } else if (strcmp(cmd, "keepalive") == 0) {
        NEED(1, 1);
        int64_t ttl = -1;
        rc = etcd_lease_keepalive(kv, number(argv[1]), &ttl, &err);
        json_object_set_new(out, "ttl", json_integer((json_int_t)ttl));
    } else if (strcmp(cmd, "revoke") == 0) {
        NEED(1, 1);
        rc = etcd_lease_revoke(kv, number(argv[1]), &err);
    } else {
        usage();
    }
#undef NEED
    json_object_set_new(out, "ok", json_boolean(rc == CP_OK));
    if (rc != CP_OK) {
        json_object_set_new(out, "code", json_string(cp_code_name(rc)));
        json_object_set_new(out, "message", json_string(err.msg));
    }
    return out;
}

int main(int argc, char **argv)
{
    struct etcd_kv_opts o = {0};
    int i = 1;

    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0 && argv[i][2] != '\0'; i += 2) {
        if (strcmp(argv[i], "--ca") == 0)
            o.ca_file = argv[i + 1];
        else if (strcmp(argv[i], "--cert") == 0)
            o.cert_file = argv[i + 1];
        else if (strcmp(argv[i], "--key") == 0)
            o.key_file = argv[i + 1];
        else if (strcmp(argv[i], "--user") == 0)
            o.user = argv[i + 1];
        else if (strcmp(argv[i], "--password") == 0)
            o.password = argv[i + 1];
        else if (strcmp(argv[i], "--timeout-ms") == 0)
            o.timeout_ms = (unsigned)number(argv[i + 1]);
        else
            usage();
    }
    if (i + 1 >= argc)
        usage();

    const char *eps[ETCD_KV_MAX_ENDPOINTS + 1];
    char *list = strdup(argv[i++]);
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        if (o.nendpoints > ETCD_KV_MAX_ENDPOINTS)
            usage();
        eps[o.nendpoints++] = t;
    }
    o.endpoints = eps;

    struct etcd_kv *kv = NULL;
    struct cp_err err = {0};
    enum cp_code rc = etcd_kv_open(&o, &kv, &err);
    if (rc != CP_OK) {
        json_t *e =
            json_pack("{s:b, s:s, s:s}", "ok", 0, "code", cp_code_name(rc), "message", err.msg);
        json_dumpf(e, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(e);
        free(list);
        return 1;
    }

    json_t *results = json_array();
    int status = 0;
    while (i < argc) {
        int j = i;
        while (j < argc && strcmp(argv[j], "--") != 0)
            j++;
        json_t *r = run(kv, j - i, argv + i);
        if (!json_is_true(json_object_get(r, "ok")))
            status = 1;
        json_array_append_new(results, r);
        i = j + 1;
    }
    json_t *out = json_array_size(results) == 1 ? json_incref(json_array_get(results, 0))
                                                : json_pack("{s:O}", "results", results);
    json_dumpf(out, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(out);
    json_decref(results);
    etcd_kv_close(kv);
    free(list);
    return status;
}
