/*
 * tests/tools/etcdstore_tool.c - drives store/etcd.c for
 * tests/integration/test_store_etcd.py (not installed):
 *
 *   etcdstore_tool URL KEY_FILE STATE_DIR NAME add
 *       take the lineage lock of NAME, store a version (dummy PEM text), unlock
 *   etcdstore_tool URL KEY_FILE STATE_DIR NAME lost
 *       take the lineage lock of NAME, revoke its lease behind the store's
 *       back (through a handle of its own, as another host or an operator
 *       would), then store a version at once, before the keep-alive thread
 *       could notice: the guarded transaction alone must refuse it
 *
 *   etcdstore_tool URL KEY_FILE STATE_DIR TOKEN publish|withdraw
 *       publish "TOKEN.thumbprint" for http-01 token TOKEN (60 s), or withdraw
 *       it; then look TOKEN up
 *
 * Prints one JSON object: {"code": cp_code name, "message", "held"} (with
 * "found": the key authorization looked up, or null, for publish and
 * withdraw) and exits 0 when the store answered as described (whatever it
 * answered).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/etcd_kv.h"
#include "store/store.h"

static const char privkey[] = "-----BEGIN PRIVATE KEY-----\nnot a key, a test value\n"
                              "-----END PRIVATE KEY-----\n";
static const char cert[] = "-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n";

/* Revoke the lease the lock key of NAME is on, with a client of its own. */
static enum cp_code revoke_lock(const char *url, const char *name, struct cp_err *err)
{
    /* etcd://H:P,H:P/PREFIX -> http://H:P ... */
    char hosts[1024], *endpoints[16], keyname[1024];
    const char *p = strstr(url, "://") + 3;
    size_t n = strcspn(p, "/");
    snprintf(hosts, sizeof hosts, "%.*s", (int)n, p);
    snprintf(keyname, sizeof keyname, "%s/locks/%s", p[n] ? p + n : "/certpilot", name);
    size_t k = 0;
    for (char *save = NULL, *h = strtok_r(hosts, ",", &save); h && k < 16;
         h = strtok_r(NULL, ",", &save)) {
        size_t size = strlen(h) + 8;
        if ((endpoints[k] = malloc(size)) == NULL)
            break;
        snprintf(endpoints[k++], size, "http://%s", h);
    }
    struct etcd_kv_opts o = {.endpoints = (const char *const *)endpoints, .nendpoints = k};
    struct etcd_kv *kv = NULL;
    struct etcd_kv_item it = {0};
    enum cp_code rc = etcd_kv_open(&o, &kv, err);
    if (rc == CP_OK)
        rc = etcd_kv_get(kv, keyname, &it, err);
    if (rc == CP_OK && it.value == NULL)
        rc = cp_err_set(err, CP_EINTERNAL, "no lock key %s", keyname);
    if (rc == CP_OK)
        rc = etcd_lease_revoke(kv, it.lease, err);
    etcd_kv_item_clear(&it);
    etcd_kv_close(kv);
    for (size_t i = 0; i < k; i++)
        free(endpoints[i]);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: etcdstore_tool URL KEY_FILE STATE_DIR NAME add|lost\n");
        return 2;
    }
    const char *url = argv[1], *name = argv[4], *what = argv[5];
    struct store_open_opts o = {.url = url, .local_dir = argv[3], .seal_key_file = argv[2]};
    struct cp_store *st = NULL;
    struct store_lineage_lock *l = NULL;
    struct cp_err err = {0};
    enum cp_code rc = store_open(&o, &st, &err);
    if (strcmp(what, "publish") == 0 || strcmp(what, "withdraw") == 0) {
        char authz[512], *found = NULL;
        snprintf(authz, sizeof authz, "%s.thumbprint", name);
        if (rc == CP_OK)
            rc = what[0] == 'p' ? store_challenge_publish(st, name, authz, 60, &err)
                                : store_challenge_withdraw(st, name, &err);
        if (rc == CP_OK)
            rc = store_challenge_lookup(st, name, &found, &err);
        json_t *out = json_pack("{s:s, s:s, s:s?}", "code", rc == CP_OK ? "ok" : cp_code_name(rc),
                                "message", err.msg, "found", found);
        char *text = json_dumps(out, JSON_COMPACT);
        printf("%s\n", text);
        free(text);
        free(found);
        json_decref(out);
        store_close(st);
        return 0;
    }
    if (rc == CP_OK)
        rc = store_lineage_lock(st, name, 10, NULL, NULL, &l, &err);
    if (rc == CP_OK && strcmp(what, "lost") == 0)
        rc = revoke_lock(url, name, &err);
    bool held = rc == CP_OK && store_lineage_lock_held(l);
    if (rc == CP_OK)
        rc = store_version_add(st, name, privkey, strlen(privkey), cert, cert, cert, &err);
    json_t *out = json_pack("{s:s, s:s, s:b}", "code", rc == CP_OK ? "ok" : cp_code_name(rc),
                            "message", err.msg, "held", held);
    char *text = json_dumps(out, JSON_COMPACT);
    printf("%s\n", text);
    free(text);
    json_decref(out);
    store_lineage_unlock(l);
    store_close(st);
    return 0;
}
