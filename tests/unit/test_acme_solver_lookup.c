/* tests/unit/test_acme_solver_lookup.c - acme/solver_lookup.c: the built-in
 * http-01 server looking up tokens it was not given, through a fake look-up
 * that blocks until the test opens its gate, so that what the server does
 * meanwhile is seen without relying on timing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "acme/acme.h"
#include "acme/solver_int.h" /* SOLVER_MAX_LOOKUPS, acme_solver_lookups_pending */
#include "tests/unit/fixture.h"

#define TOKEN   "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
#define THUMB   "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
#define KEYAUTH TOKEN "." THUMB
#define PREFIX  "/.well-known/acme-challenge/"

/* ------------------------------------------------------------ the fake */

/* Tokens starting with "slow" wait for the gate; "shared*" are found
 * ("<token>." THUMB), "broken" gives a value that is no key authorization,
 * "fail" an error, anything else is not found. */
struct fake {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool gate_open;
    unsigned entered_slow; /* slow look-ups that are waiting or were */
    unsigned returned;     /* look-ups that returned */
    char served[8][64];    /* tokens told to served(), in order */
    bool served_looked_up[8];
    unsigned nserved;
};

static struct fake fk;

static enum cp_code fake_find(void *ctx, const char *token, char **key_authz, struct cp_err *err)
{
    struct fake *f = ctx;
    *key_authz = NULL;
    pthread_mutex_lock(&f->mu);
    if (strncmp(token, "slow", 4) == 0) {
        f->entered_slow++;
        pthread_cond_broadcast(&f->cond);
        while (!f->gate_open)
            pthread_cond_wait(&f->cond, &f->mu);
    }
    pthread_mutex_unlock(&f->mu);

    enum cp_code rc = CP_OK;
    char buf[256];
    if (strcmp(token, "fail") == 0) {
        rc = cp_err_set(err, CP_ENET, "the store is unreachable");
    } else if (strcmp(token, "broken") == 0) {
        *key_authz = strdup("not a key authorization\r\nX-Injected: 1");
    } else if (strncmp(token, "shared", 6) == 0 || strncmp(token, "slow", 4) == 0) {
        snprintf(buf, sizeof buf, "%s.%s", token, THUMB);
        *key_authz = strdup(buf);
    }
    pthread_mutex_lock(&f->mu);
    f->returned++;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static void fake_served(void *ctx, const char *token, bool looked_up)
{
    struct fake *f = ctx;
    pthread_mutex_lock(&f->mu);
    if (f->nserved < 8) {
        snprintf(f->served[f->nserved], sizeof f->served[0], "%s", token);
        f->served_looked_up[f->nserved] = looked_up;
        f->nserved++;
    }
    pthread_mutex_unlock(&f->mu);
}

static void open_gate(void)
{
    pthread_mutex_lock(&fk.mu);
    fk.gate_open = true;
    pthread_cond_broadcast(&fk.cond);
    pthread_mutex_unlock(&fk.mu);
}

/* Wait (at most 10 s: a bound, not a measurement) until `n` slow look-ups
 * have started. */
static void wait_entered(unsigned n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&fk.mu);
    while (fk.entered_slow < n) {
        if (pthread_cond_timedwait(&fk.cond, &fk.mu, &until) == ETIMEDOUT)
            break;
    }
    unsigned got = fk.entered_slow;
    pthread_mutex_unlock(&fk.mu);
    assert_true(got >= n);
}

/* ---------------------------------------------------------------- helpers */

/* A connection that has sent GET (or HEAD) for `token`; 10 s receive
 * time-out so that a broken server fails the test instead of hanging it. */
static int ask(int port, const char *method, const char *token)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    char req[512];
    int n = snprintf(req, sizeof req, "%s " PREFIX "%s HTTP/1.1\r\nHost: example.test\r\n\r\n",
                     method, token);
    assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    return fd;
}

/* The whole answer on `fd` (until the server closes), closed after. */
static void answer(int fd, char *out, size_t cap)
{
    size_t off = 0;
    for (;;) {
        ssize_t r = recv(fd, out + off, cap - 1 - off, 0);
        if (r <= 0 || (off += (size_t)r) == cap - 1)
            break;
    }
    out[off] = '\0';
    close(fd);
}

/* Has the server sent nothing yet (and kept the connection open)? */
static bool nothing_yet(int fd)
{
    char b;
    ssize_t r = recv(fd, &b, 1, MSG_DONTWAIT);
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static int status_of(const char *resp)
{
    int st = 0;
    if (sscanf(resp, "HTTP/1.1 %d", &st) != 1)
        return -1;
    return st;
}

static const char *body_of(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");
    return b != NULL ? b + 4 : "";
}

/* ---------------------------------------------------------------- fixture */

struct fx {
    struct acme_solver_server *s;
    int port;
};

static int start(void **state, unsigned timeout_ms)
{
    static struct fx f;
    struct cp_err err = {0};
    pthread_mutex_destroy(&fk.mu);
    pthread_cond_destroy(&fk.cond);
    memset(&fk, 0, sizeof fk);
    pthread_mutex_init(&fk.mu, NULL);
    pthread_cond_init(&fk.cond, NULL);
    const struct acme_http01_lookup lk = {
        .find = fake_find, .served = fake_served, .ctx = &fk, .timeout_ms = timeout_ms};
    f.port = fixture_free_port();
    f.s = NULL;
    if (acme_http01_server_start_lookup("127.0.0.1", f.port, &lk, &f.s, &err) != CP_OK) {
        fprintf(stderr, "start: %s\n", err.msg);
        return -1;
    }
    if (acme_solver_server_add(f.s, TOKEN, KEYAUTH, &err) != CP_OK) {
        fprintf(stderr, "add: %s\n", err.msg);
        return -1;
    }
    *state = &f;
    return 0;
}

static int setup(void **state)
{
    return start(state, 0);
}

static int setup_short(void **state)
{
    return start(state, 200);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    open_gate(); /* stop waits for running look-ups */
    acme_solver_server_stop(f->s);
    f->s = NULL;
    return 0;
}

/* ------------------------------------------------------------------ tests */

/* The point of the workers: while one client waits on a slow look-up, a
 * second one asking for a registered token is answered. */
static void test_slow_lookup_does_not_delay_others(void **state)
{
    struct fx *f = *state;
    char resp[2048];
    int slow = ask(f->port, "GET", "slowtoken");
    wait_entered(1);

    int fast = ask(f->port, "GET", TOKEN);
    answer(fast, resp, sizeof resp);
    assert_int_equal(status_of(resp), 200);
    assert_string_equal(body_of(resp), KEYAUTH);

    /* The slow look-up is still blocked and its client still waits. */
    pthread_mutex_lock(&fk.mu);
    assert_int_equal(fk.returned, 0);
    pthread_mutex_unlock(&fk.mu);
    assert_true(nothing_yet(slow));

    open_gate();
    answer(slow, resp, sizeof resp);
    assert_int_equal(status_of(resp), 200);
    assert_string_equal(body_of(resp), "slowtoken." THUMB);
    assert_int_equal(acme_solver_server_hits(f->s), 2);
    assert_int_equal(fk.nserved, 2);
    assert_string_equal(fk.served[0], TOKEN);
    assert_false(fk.served_looked_up[0]);
    assert_string_equal(fk.served[1], "slowtoken");
    assert_true(fk.served_looked_up[1]);
}

static void test_lookup_answers(void **state)
{
    struct fx *f = *state;
    char resp[2048];
    answer(ask(f->port, "GET", "shared1"), resp, sizeof resp);
    assert_int_equal(status_of(resp), 200);
    assert_string_equal(body_of(resp), "shared1." THUMB);

    answer(ask(f->port, "HEAD", "shared2"), resp, sizeof resp);
    assert_int_equal(status_of(resp), 200);
    assert_string_equal(body_of(resp), "");

    /* Not found: 404, as without a look-up. */
    answer(ask(f->port, "GET", "unknown"), resp, sizeof resp);
    assert_int_equal(status_of(resp), 404);
    /* A look-up error: 503 (the CA may try again), nothing leaked. */
    answer(ask(f->port, "GET", "fail"), resp, sizeof resp);
    assert_int_equal(status_of(resp), 503);
    assert_null(strstr(resp, "unreachable"));
    /* A stored value that is no key authorization is not sent. */
    answer(ask(f->port, "GET", "broken"), resp, sizeof resp);
    assert_int_equal(status_of(resp), 500);
    assert_null(strstr(resp, "X-Injected"));
    /* An invalid token is never looked up. */
    unsigned before = fk.returned;
    answer(ask(f->port, "GET", "bad%20token"), resp, sizeof resp);
    assert_int_equal(status_of(resp), 404);
    assert_int_equal(fk.returned, before);
    assert_int_equal(acme_solver_server_hits(f->s), 2);
}

/* A look-up past its deadline is answered 503 while find() still blocks. */
static void test_lookup_deadline(void **state)
{
    struct fx *f = *state;
    char resp[2048];
    int slow = ask(f->port, "GET", "slowlate");
    wait_entered(1);
    answer(slow, resp, sizeof resp);
    assert_int_equal(status_of(resp), 503);
    pthread_mutex_lock(&fk.mu);
    assert_int_equal(fk.returned, 0); /* answered without waiting for it */
    pthread_mutex_unlock(&fk.mu);
    open_gate();
    /* The late result is dropped; the server goes on answering. */
    answer(ask(f->port, "GET", "shared3"), resp, sizeof resp);
    assert_int_equal(status_of(resp), 200);
    answer(ask(f->port, "GET", TOKEN), resp, sizeof resp);
    assert_int_equal(status_of(resp), 200);
}

/* At most SOLVER_MAX_LOOKUPS wait: one more is refused at once (503), a
 * registered token is still answered, and the waiting ones are answered
 * when their look-ups return. */
static void test_lookup_bound(void **state)
{
    struct fx *f = *state;
    char resp[2048];
    int fds[SOLVER_MAX_LOOKUPS];
    for (size_t i = 0; i < SOLVER_MAX_LOOKUPS; i++) {
        char token[32];
        snprintf(token, sizeof token, "slow%zu", i);
        fds[i] = ask(f->port, "GET", token);
    }
    /* Every one queued or running (a bound on the wait, not a timing). */
    for (int i = 0; i < 1000 && acme_solver_lookups_pending(f->s) < SOLVER_MAX_LOOKUPS; i++) {
        struct timespec ts = {.tv_nsec = 10000000L};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(acme_solver_lookups_pending(f->s), SOLVER_MAX_LOOKUPS);
    wait_entered(SOLVER_LOOKUP_THREADS);

    answer(ask(f->port, "GET", "shared-extra"), resp, sizeof resp);
    assert_int_equal(status_of(resp), 503);
    answer(ask(f->port, "GET", TOKEN), resp, sizeof resp);
    assert_int_equal(status_of(resp), 200);

    open_gate();
    for (size_t i = 0; i < SOLVER_MAX_LOOKUPS; i++) {
        char want[128];
        snprintf(want, sizeof want, "slow%zu." THUMB, i);
        answer(fds[i], resp, sizeof resp);
        assert_int_equal(status_of(resp), 200);
        assert_string_equal(body_of(resp), want);
    }
    assert_int_equal(acme_solver_lookups_pending(f->s), 0);
}

/* Stopping while a look-up blocks waits for it, and frees everything
 * (ASan checks the latter). */
static void test_stop_while_waiting(void **state)
{
    struct fx *f = *state;
    int slow = ask(f->port, "GET", "slowstop");
    wait_entered(1);
    open_gate();
    acme_solver_server_stop(f->s);
    f->s = NULL;
    char resp[256];
    answer(slow, resp, sizeof resp); /* closed, answered or not */
    assert_true(fk.returned == 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_slow_lookup_does_not_delay_others, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_deadline, setup_short, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_while_waiting, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
