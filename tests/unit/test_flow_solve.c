/* tests/unit/test_flow_solve.c - flow/solve.c with a store a fleet shares:
 * http-01 answers published before the CA is told and withdrawn after
 * (webroot, --standalone, --http-shared), the standalone server and
 * serve-challenges' responder answering tokens from the store.  The store is
 * a filesystem store given the shared-store entries of a fake backend
 * (store/store_int.h) that keeps the published answers in a small table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "flow/flow.h"
#include "store/store_int.h"
#include "tests/unit/fixture.h"

#define TOKEN   "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
#define KEYAUTH TOKEN ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
#define OTHER   "otherHostToken_0123456789"
#define OTHERKA OTHER ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"

static char tmp[64], webroot[128];
static struct cp_store *S;
static struct store_ops fake_ops;

/* The fake's table and what was asked of it, in order. */
static struct {
    pthread_mutex_t mu;
    char token[8][64], ka[8][128];
    bool used[8];
    unsigned ttl;
    char log[1024]; /* "publish TOKEN;withdraw TOKEN;..." */
    bool refuse_publish;
    bool file_at_publish; /* the webroot file existed when it was published */
} fake;

static void note(const char *what, const char *token)
{
    size_t len = strlen(fake.log);
    snprintf(fake.log + len, sizeof fake.log - len, "%s %s;", what, token);
}

static enum cp_code fake_publish(struct cp_store *st, const char *token, const char *ka,
                                 unsigned ttl_s, struct cp_err *err)
{
    (void)st;
    if (fake.refuse_publish)
        return cp_err_set(err, CP_ENET, "etcd unreachable");
    char path[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/.well-known/acme-challenge/%s", webroot, token);
    pthread_mutex_lock(&fake.mu);
    fake.file_at_publish = stat(path, &sb) == 0;
    note("publish", token);
    fake.ttl = ttl_s;
    for (size_t i = 0; i < 8; i++)
        if (!fake.used[i]) {
            fake.used[i] = true;
            snprintf(fake.token[i], sizeof fake.token[i], "%s", token);
            snprintf(fake.ka[i], sizeof fake.ka[i], "%s", ka);
            break;
        }
    pthread_mutex_unlock(&fake.mu);
    return CP_OK;
}

static enum cp_code fake_withdraw(struct cp_store *st, const char *token, struct cp_err *err)
{
    (void)st;
    (void)err;
    pthread_mutex_lock(&fake.mu);
    note("withdraw", token);
    for (size_t i = 0; i < 8; i++)
        if (fake.used[i] && strcmp(fake.token[i], token) == 0)
            fake.used[i] = false;
    pthread_mutex_unlock(&fake.mu);
    return CP_OK;
}

static enum cp_code fake_lookup(struct cp_store *st, const char *token, char **ka,
                                struct cp_err *err)
{
    (void)st;
    (void)err;
    *ka = NULL;
    pthread_mutex_lock(&fake.mu);
    for (size_t i = 0; i < 8; i++)
        if (fake.used[i] && strcmp(fake.token[i], token) == 0)
            *ka = strdup(fake.ka[i]);
    pthread_mutex_unlock(&fake.mu);
    return CP_OK;
}

static enum cp_code fake_lock(struct cp_store *st, const char *name, unsigned timeout_s,
                              void (*waiting)(void *ctx, const char *holder), void *ctx,
                              struct store_lineage_lock **out, struct cp_err *err)
{
    (void)st, (void)name, (void)timeout_s, (void)waiting, (void)ctx, (void)out;
    return cp_err_set(err, CP_EINTERNAL, "not used here");
}

static void make_shared(void)
{
    fake_ops = *S->ops;
    fake_ops.lineage_lock = fake_lock; /* what makes store_shared() true */
    fake_ops.challenge_publish = fake_publish;
    fake_ops.challenge_withdraw = fake_withdraw;
    fake_ops.challenge_lookup = fake_lookup;
    S->ops = &fake_ops;
}

static int setup(void **state)
{
    (void)state;
    struct cp_err err = {0};
    snprintf(tmp, sizeof tmp, "/tmp/cp-solve-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    snprintf(webroot, sizeof webroot, "%s/www", tmp);
    assert_int_equal(mkdir(webroot, 0755), 0);
    assert_int_equal(store_fs_open(tmp, &S, &err), CP_OK);
    pthread_mutex_destroy(&fake.mu);
    memset(&fake, 0, sizeof fake);
    pthread_mutex_init(&fake.mu, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    store_close(S);
    S = NULL;
    assert_int_equal(fixture_remove_tree(tmp), 0);
    return 0;
}

static bool webroot_has(const char *token)
{
    char path[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/.well-known/acme-challenge/%s", webroot, token);
    return stat(path, &sb) == 0;
}

/* GET /.well-known/acme-challenge/TOKEN from 127.0.0.1:port: the whole answer. */
static void get(int port, const char *token, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    char req[256];
    int n = snprintf(req, sizeof req,
                     "GET /.well-known/acme-challenge/%s HTTP/1.1\r\nHost: a.test\r\n\r\n", token);
    assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    size_t off = 0;
    for (;;) {
        ssize_t r = recv(fd, out + off, cap - 1 - off, 0);
        if (r <= 0 || (off += (size_t)r) == cap - 1)
            break;
    }
    out[off] = '\0';
    close(fd);
}

static const char *const HTTP01[] = {"http-01"};

/* ------------------------------------------------------------------ tests */

static void test_not_shared_publishes_nothing(void **state)
{
    (void)state;
    struct cp_err err = {0};
    struct flow_solve_opts o = {.webroot = webroot, .store = S};
    struct flow_solver *s = NULL;
    assert_int_equal(flow_solver_new(&o, NULL, &s, &err), CP_OK);
    assert_int_equal(flow_solver_start(s, HTTP01, 1, &err), CP_OK);
    struct acme_solver a = flow_solver_acme(s);
    assert_int_equal(a.deploy(a.ctx, "http-01", "a.test", TOKEN, KEYAUTH, &err), CP_OK);
    assert_true(webroot_has(TOKEN));
    a.cleanup(a.ctx, "http-01", "a.test", TOKEN, KEYAUTH);
    assert_false(webroot_has(TOKEN));
    assert_string_equal(fake.log, "");
    flow_solver_free(s);

    /* --http-shared needs a shared store. */
    o = (struct flow_solve_opts){.http_shared = true, .store = S};
    assert_int_equal(flow_solver_new(&o, NULL, &s, &err), CP_OK);
    assert_int_equal(flow_solver_start(s, HTTP01, 1, &err), CP_ESETUP);
    assert_non_null(strstr(err.msg, "--store"));
    flow_solver_free(s);

    /* And so does the responder of serve-challenges. */
    struct flow_responder *r = NULL;
    assert_int_equal(
        flow_responder_start(S, "127.0.0.1", fixture_free_port(), NULL, NULL, &r, &err), CP_ESETUP);
    assert_null(r);
}

/* A webroot answers, and the key authorization is published first (before
 * the file is written) and withdrawn after. */
static void test_webroot_published_and_withdrawn(void **state)
{
    (void)state;
    struct cp_err err = {0};
    make_shared();
    struct flow_solve_opts o = {.webroot = webroot, .store = S, .shared_ttl_s = 700};
    struct flow_solver *s = NULL;
    assert_int_equal(flow_solver_new(&o, NULL, &s, &err), CP_OK);
    assert_int_equal(flow_solver_start(s, HTTP01, 1, &err), CP_OK);
    struct acme_solver a = flow_solver_acme(s);
    assert_int_equal(a.deploy(a.ctx, "http-01", "a.test", TOKEN, KEYAUTH, &err), CP_OK);
    assert_true(webroot_has(TOKEN));
    assert_false(fake.file_at_publish);
    assert_int_equal(fake.ttl, 700);
    char *ka = NULL;
    assert_int_equal(store_challenge_lookup(S, TOKEN, &ka, &err), CP_OK);
    assert_string_equal(ka, KEYAUTH);
    free(ka);
    a.cleanup(a.ctx, "http-01", "a.test", TOKEN, KEYAUTH);
    assert_false(webroot_has(TOKEN));
    assert_string_equal(fake.log, "publish " TOKEN ";withdraw " TOKEN ";");
    flow_solver_free(s);
}

/* A deploy that fails after publishing withdraws (the order does not clean
 * up a failed deploy); a store that cannot publish fails the deploy before
 * anything else. */
static void test_failed_deploys(void **state)
{
    (void)state;
    struct cp_err err = {0};
    make_shared();
    char notdir[160];
    snprintf(notdir, sizeof notdir, "%s/file", tmp);
    FILE *f = fopen(notdir, "w");
    assert_non_null(f);
    fclose(f);
    struct flow_solve_opts o = {.webroot = notdir, .store = S};
    struct flow_solver *s = NULL;
    assert_int_equal(flow_solver_new(&o, NULL, &s, &err), CP_OK);
    struct acme_solver a = flow_solver_acme(s);
    assert_int_not_equal(a.deploy(a.ctx, "http-01", "a.test", TOKEN, KEYAUTH, &err), CP_OK);
    assert_string_equal(fake.log, "publish " TOKEN ";withdraw " TOKEN ";");
    flow_solver_free(s);

    fake.log[0] = '\0';
    fake.refuse_publish = true;
    o.webroot = webroot;
    assert_int_equal(flow_solver_new(&o, NULL, &s, &err), CP_OK);
    a = flow_solver_acme(s);
    assert_int_equal(a.deploy(a.ctx, "http-01", "a.test", TOKEN, KEYAUTH, &err), CP_ENET);
    assert_false(webroot_has(TOKEN));
    assert_string_equal(fake.log, "");
    flow_solver_free(s);
}

/* --http-shared: published only; nothing written, no server, no waiting
 * for a local server; not for wildcards. */
static void test_http_shared(void **state)
{
    (void)state;
    struct cp_err err = {0};
    make_shared();
    struct flow_solve_opts o = {.http_shared = true, .store = S, .webroot = NULL};
    struct flow_solver *s = NULL;
    assert_int_equal(flow_solver_new(&o, NULL, &s, &err), CP_OK);
    assert_int_equal(flow_solver_start(s, HTTP01, 1, &err), CP_OK);
    struct acme_solver a = flow_solver_acme(s);
    assert_true(a.supports(a.ctx, "http-01", "a.test"));
    assert_false(a.supports(a.ctx, "http-01", "*.a.test"));
    assert_false(a.supports(a.ctx, "tls-alpn-01", "a.test"));
    assert_int_equal(a.deploy(a.ctx, "http-01", "a.test", TOKEN, KEYAUTH, &err), CP_OK);
    assert_int_equal(a.await_served(a.ctx, "http-01", "a.test", TOKEN, 10), -1);
    assert_false(webroot_has(TOKEN));
    a.cleanup(a.ctx, "http-01", "a.test", TOKEN, KEYAUTH);
    assert_string_equal(fake.log, "publish " TOKEN ";withdraw " TOKEN ";");
    char what[256];
    assert_int_equal(flow_solver_check(s, "http-01", what, sizeof what, &err), CP_OK);
    assert_non_null(strstr(what, "shared store"));
    flow_solver_free(s);
}

/* --standalone with a shared look-up store: its own token from its table,
 * another host's from the store. */
static void test_standalone_answers_the_fleet(void **state)
{
    (void)state;
    struct cp_err err = {0};
    char resp[1024];
    make_shared();
    int port = fixture_free_port();
    struct flow_solve_opts o = {.standalone = true,
                                .http_addr = "127.0.0.1",
                                .http_port = port,
                                .store = S,
                                .lookup_store = S};
    struct flow_solver *s = NULL;
    assert_int_equal(flow_solver_new(&o, NULL, &s, &err), CP_OK);
    assert_int_equal(flow_solver_start(s, HTTP01, 1, &err), CP_OK);
    struct acme_solver a = flow_solver_acme(s);
    assert_int_equal(a.deploy(a.ctx, "http-01", "a.test", TOKEN, KEYAUTH, &err), CP_OK);
    assert_int_equal(store_challenge_publish(S, OTHER, OTHERKA, 60, &err), CP_OK);

    get(port, TOKEN, resp, sizeof resp);
    assert_non_null(strstr(resp, "HTTP/1.1 200"));
    assert_non_null(strstr(resp, "\r\n\r\n" KEYAUTH));
    get(port, OTHER, resp, sizeof resp);
    assert_non_null(strstr(resp, "HTTP/1.1 200"));
    assert_non_null(strstr(resp, "\r\n\r\n" OTHERKA));
    get(port, "unknownToken", resp, sizeof resp);
    assert_non_null(strstr(resp, "HTTP/1.1 404"));

    a.cleanup(a.ctx, "http-01", "a.test", TOKEN, KEYAUTH);
    assert_non_null(strstr(fake.log, "withdraw " TOKEN ";"));
    flow_solver_free(s);
}

static unsigned served_count;
static char served_last[64];

static void on_served(void *ctx, const char *token)
{
    (void)ctx;
    served_count++;
    snprintf(served_last, sizeof served_last, "%s", token);
}

static void test_responder(void **state)
{
    (void)state;
    struct cp_err err = {0};
    char resp[1024];
    make_shared();
    int port = fixture_free_port();
    struct flow_responder *r = NULL;
    assert_int_equal(flow_responder_start(S, "127.0.0.1", port, on_served, NULL, &r, &err), CP_OK);
    assert_int_equal(store_challenge_publish(S, OTHER, OTHERKA, 60, &err), CP_OK);
    get(port, OTHER, resp, sizeof resp);
    assert_non_null(strstr(resp, "\r\n\r\n" OTHERKA));
    get(port, TOKEN, resp, sizeof resp);
    assert_non_null(strstr(resp, "HTTP/1.1 404"));
    flow_responder_stop(r);
    assert_int_equal(served_count, 1);
    assert_string_equal(served_last, OTHER);
    flow_responder_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_not_shared_publishes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webroot_published_and_withdrawn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_deploys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_standalone_answers_the_fleet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_responder, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
