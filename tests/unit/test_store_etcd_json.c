/* tests/unit/test_store_etcd_json.c - store/etcd_json.c: base64, prefix range
 * ends, and the reading of etcd gateway replies (answers, refusals and what
 * they mean for fail-over, int64 strings, key-values, tokens). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "store/etcd_kv_int.h"

/* ------------------------------------------------------------------ base64 */

static void b64_round_trips(void **state)
{
    (void)state;
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    for (size_t n = 0; n <= sizeof all; n += (n < 8 ? 1 : 37)) {
        char *t = etcd_b64_encode(all, n);
        assert_non_null(t);
        assert_int_equal(strlen(t), (n + 2) / 3 * 4);
        unsigned char *back = NULL;
        size_t len = 99;
        assert_int_equal(etcd_b64_decode(t, ETCD_KV_MAX_VALUE, &back, &len, NULL), CP_OK);
        assert_int_equal(len, n);
        assert_memory_equal(back, all, n);
        assert_int_equal(back[n], 0); /* NUL after the bytes */
        free(back);
        free(t);
    }
    char *empty = etcd_b64_encode(NULL, 0);
    assert_string_equal(empty, "");
    free(empty);
}

static void b64_padding_and_bad_input(void **state)
{
    (void)state;
    unsigned char *out = NULL;
    size_t len = 0;
    struct cp_err err = {0};

    assert_int_equal(etcd_b64_decode("eA==", 10, &out, &len, &err), CP_OK);
    assert_int_equal(len, 1);
    assert_int_equal(out[0], 'x');
    free(out);
    assert_int_equal(etcd_b64_decode("eAB5", 10, &out, &len, &err), CP_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(out, "x\0y", 3);
    free(out);

    static const char *const bad[] = {"eA=",
                                      "eA",
                                      "e===",
                                      "====",
                                      "eA=a",
                                      " eA=",
                                      "eA==\n",
                                      "e-A=",
                                      "eA_=",
                                      "YQ==YQ==",
                                      "\xff\xff\xff\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        out = (unsigned char *)"untouched";
        assert_int_equal(etcd_b64_decode(bad[i], 10, &out, &len, &err), CP_EPROTO);
        assert_null(out);
    }
    /* Bounded: 4 bytes do not fit a maximum of 3. */
    assert_int_equal(etcd_b64_decode("AAAAAA==", 3, &out, &len, &err), CP_EPROTO);
    assert_non_null(strstr(err.msg, "more than 3 bytes"));
    assert_int_equal(etcd_b64_decode("AAAAAA==", 4, &out, &len, &err), CP_OK);
    assert_int_equal(len, 4);
    free(out);
    assert_null(etcd_b64_encode("", ETCD_KV_MAX_VALUE + 1));
}

static void prefix_ends(void **state)
{
    (void)state;
    unsigned char end[8];
    assert_int_equal(etcd_prefix_end("/a/", 3, end), 3);
    assert_memory_equal(end, "/a0", 3);
    assert_int_equal(etcd_prefix_end("a\xff\xff", 3, end), 1);
    assert_memory_equal(end, "b", 1);
    assert_int_equal(etcd_prefix_end("a\xfe\xff", 3, end), 2);
    assert_memory_equal(end, "a\xff", 2);
    /* Nothing after these: to the end of the key space. */
    assert_int_equal(etcd_prefix_end("\xff\xff", 2, end), 1);
    assert_int_equal(end[0], 0);
    assert_int_equal(etcd_prefix_end("", 0, end), 1);
    assert_int_equal(end[0], 0);
}

/* ------------------------------------------------------------------ replies */

static enum etcd_verdict verdict_of(const char *body, bool stream, struct etcd_reply *r)
{
    assert_int_equal(etcd_reply_parse(body, strlen(body), stream, r, NULL), CP_OK);
    return r->verdict;
}

static void refusals_are_classified(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        enum etcd_verdict v;
    } cases[] = {
        {"{\"error\":\"etcdserver: no leader\",\"message\":\"etcdserver: no leader\",\"code\":14}",
         ETCD_RETRY},
        {"{\"error\":\"etcdserver: request timed out\",\"code\":14}", ETCD_RETRY},
        {"{\"error\":\"context deadline exceeded\",\"code\":4}", ETCD_RETRY},
        /* What etcd 3.4 answers to a lease grant without a quorum. */
        {"{\"error\":\"context deadline exceeded\",\"code\":2}", ETCD_RETRY},
        {"{\"error\":\"raft proposal dropped\",\"code\":2}", ETCD_RETRY},
        {"{\"error\":\"etcdserver: leader changed\",\"code\":2}", ETCD_RETRY},
        {"{\"error\":\"etcdserver: too many requests\",\"code\":8}", ETCD_RETRY},
        {"{\"error\":\"etcdserver: invalid auth token\",\"code\":16}", ETCD_REAUTH},
        {"{\"error\":\"etcdserver: revision of auth store is old\",\"code\":3}", ETCD_REAUTH},
        {"{\"error\":\"etcdserver: permission denied\",\"code\":7}", ETCD_DENIED},
        {"{\"error\":\"etcdserver: user name is empty\",\"code\":3}", ETCD_DENIED},
        {"{\"error\":\"etcdserver: authentication failed, invalid user ID or password\","
         "\"code\":3}",
         ETCD_DENIED},
        {"{\"error\":\"etcdserver: requested lease not found\",\"code\":5}", ETCD_REFUSED},
        {"{\"error\":\"etcdserver: request is too large\",\"code\":3}", ETCD_REFUSED},
        {"{\"code\":3,\"message\":\"invalid character\"}", ETCD_REFUSED},
        /* A lease grant's own error field. */
        {"{\"ID\":\"0\",\"error\":\"lease already exists\"}", ETCD_REFUSED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct etcd_reply r;
        assert_int_equal(verdict_of(cases[i].body, false, &r), cases[i].v);
        assert_null(r.root);
        assert_true(r.message[0] != '\0');
    }
    struct etcd_reply r;
    verdict_of("{\"error\":\"etcdserver: no leader\",\"code\":14}", false, &r);
    assert_int_equal(r.code, 14);
    assert_string_equal(r.message, "etcdserver: no leader");
    /* Control bytes in a message are not passed on. */
    verdict_of("{\"error\":\"a\\nb\\u0007c\",\"code\":3}", false, &r);
    assert_string_equal(r.message, "a?b?c");
}

static void answers_and_streams(void **state)
{
    (void)state;
    struct etcd_reply r;
    int64_t rev = -1;

    assert_int_equal(verdict_of("{\"header\":{\"revision\":\"42\"},\"succeeded\":true}", false, &r),
                     ETCD_ANSWER);
    assert_int_equal(etcd_json_revision(r.root, &rev, NULL), CP_OK);
    assert_int_equal(rev, 42);
    etcd_reply_clear(&r);
    assert_null(r.root);

    /* The keep-alive stream: the first result only. */
    const char *ka = "{\"result\":{\"ID\":\"7\",\"TTL\":\"30\"}}\n{\"result\":{}}\n";
    assert_int_equal(verdict_of(ka, true, &r), ETCD_ANSWER);
    int64_t ttl = 0;
    assert_int_equal(etcd_json_int64(r.root, "TTL", &ttl, NULL), CP_OK);
    assert_int_equal(ttl, 30);
    etcd_reply_clear(&r);
    /* An expired lease: no TTL (zero is left out). */
    assert_int_equal(verdict_of("{\"result\":{\"ID\":\"7\"}}", true, &r), ETCD_ANSWER);
    assert_int_equal(etcd_json_int64(r.root, "TTL", &ttl, NULL), CP_OK);
    assert_int_equal(ttl, 0);
    etcd_reply_clear(&r);
    /* A stream's error object. */
    assert_int_equal(verdict_of("{\"error\":{\"grpc_code\":14,\"http_code\":503,"
                                "\"message\":\"etcdserver: no leader\"}}",
                                true, &r),
                     ETCD_RETRY);
    assert_int_equal(r.code, 14);

    static const char *const bad[] = {"",      "Not Found", "[1]",
                                      "\"x\"", "{\"a\":1",  "{\"a\":1} trailing"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cp_err err = {0};
        assert_int_equal(etcd_reply_parse(bad[i], strlen(bad[i]), false, &r, &err), CP_EPROTO);
        assert_null(r.root);
        assert_true(err.msg[0] != '\0');
    }
    assert_int_equal(etcd_reply_parse("{\"x\":1}", 7, true, &r, NULL), CP_EPROTO);
}

static void int64_fields(void **state)
{
    (void)state;
    json_t *o = json_loads("{\"a\":\"9223372036854775807\",\"b\":\"-5\",\"c\":12,\"d\":null,"
                           "\"e\":\"9223372036854775808\",\"f\":\"1x\",\"g\":\"\",\"h\":true,"
                           "\"i\":\"+1\",\"j\":\" 1\"}",
                           0, NULL);
    assert_non_null(o);
    int64_t v = 1;
    assert_int_equal(etcd_json_int64(o, "a", &v, NULL), CP_OK);
    assert_true(v == INT64_MAX);
    assert_int_equal(etcd_json_int64(o, "b", &v, NULL), CP_OK);
    assert_true(v == -5);
    assert_int_equal(etcd_json_int64(o, "c", &v, NULL), CP_OK);
    assert_true(v == 12);
    assert_int_equal(etcd_json_int64(o, "d", &v, NULL), CP_OK);
    assert_true(v == 0);
    assert_int_equal(etcd_json_int64(o, "absent", &v, NULL), CP_OK);
    assert_true(v == 0);
    static const char *const bad[] = {"e", "f", "g", "h", "i", "j"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(etcd_json_int64(o, bad[i], &v, NULL), CP_EPROTO);
    json_decref(o);
}

static void key_values(void **state)
{
    (void)state;
    struct etcd_kv_list l;
    struct cp_err err = {0};
    /* Out of order on purpose; an empty value is left out by the gateway. */
    json_t *o = json_loads(
        "{\"header\":{\"revision\":\"9\"},\"kvs\":["
        "{\"key\":\"L2I=\",\"create_revision\":\"3\",\"mod_revision\":\"4\",\"version\":\"2\","
        "\"value\":\"eAB5\",\"lease\":\"77\"},"
        "{\"key\":\"L2E=\",\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\"}],"
        "\"count\":\"2\"}",
        0, NULL);
    assert_non_null(o);
    assert_int_equal(etcd_json_kvs(o, false, &l, &err), CP_OK);
    assert_int_equal(l.n, 2);
    assert_true(l.revision == 9);
    assert_string_equal(l.items[0].key, "/a");
    assert_non_null(l.items[0].value);
    assert_int_equal(l.items[0].len, 0);
    assert_string_equal(l.items[1].key, "/b");
    assert_int_equal(l.items[1].len, 3);
    assert_memory_equal(l.items[1].value, "x\0y", 4);
    assert_true(l.items[1].lease == 77 && l.items[1].version == 2 &&
                l.items[1].create_revision == 3 && l.items[1].mod_revision == 4);
    etcd_kv_list_clear(&l);
    assert_int_equal(etcd_json_kvs(o, true, &l, &err), CP_OK);
    assert_null(l.items[0].value);
    assert_null(l.items[1].value);
    etcd_kv_list_clear(&l);
    json_decref(o);

    o = json_loads("{\"header\":{}}", 0, NULL);
    assert_int_equal(etcd_json_kvs(o, false, &l, &err), CP_OK);
    assert_int_equal(l.n, 0);
    assert_null(l.items);
    json_decref(o);

    static const char *const bad[] = {
        "{\"kvs\":[{\"key\":\"L2E=\"}],\"more\":true}", /* cut: more keys than asked */
        "{\"kvs\":{}}",
        "{\"kvs\":[1]}",
        "{\"kvs\":[{\"value\":\"eA==\"}]}",
        "{\"kvs\":[{\"key\":\"\"}]}",     /* empty key */
        "{\"kvs\":[{\"key\":\"YQBi\"}]}", /* "a\0b" */
        "{\"kvs\":[{\"key\":\"L2E=\",\"value\":5}]}",
        "{\"kvs\":[{\"key\":\"L2E=\",\"version\":\"x\"}]}",
        "{\"kvs\":[{\"key\":\"L2E=\"},{\"key\":\"*\"}]}", /* the second fails: all freed */
        "{\"header\":[]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o = json_loads(bad[i], 0, NULL);
        assert_non_null(o);
        assert_int_equal(etcd_json_kvs(o, false, &l, &err), CP_EPROTO);
        assert_int_equal(l.n, 0);
        assert_null(l.items);
        json_decref(o);
    }
}

static void tokens(void **state)
{
    (void)state;
    char *t = NULL;
    json_t *o = json_loads("{\"token\":\"EuxFRQYbyQyoGHbS.21\"}", 0, NULL);
    assert_int_equal(etcd_json_token(o, &t, NULL), CP_OK);
    assert_string_equal(t, "EuxFRQYbyQyoGHbS.21");
    free(t);
    json_decref(o);
    static const char *const bad[] = {"{}", "{\"token\":\"\"}", "{\"token\":\"a b\"}",
                                      "{\"token\":\"a\\r\\nX-Evil: 1\"}", "{\"token\":7}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o = json_loads(bad[i], 0, NULL);
        assert_int_equal(etcd_json_token(o, &t, NULL), CP_EPROTO);
        assert_null(t);
        json_decref(o);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(b64_round_trips),     cmocka_unit_test(b64_padding_and_bad_input),
        cmocka_unit_test(prefix_ends),         cmocka_unit_test(refusals_are_classified),
        cmocka_unit_test(answers_and_streams), cmocka_unit_test(int64_fields),
        cmocka_unit_test(key_values),          cmocka_unit_test(tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
