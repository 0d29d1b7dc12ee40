/*
 * tests/unit/test_caa_resolve.c - caa_resolve() against a UDP responder on
 * loopback: how many queries go out, in how many waves (round trips), and
 * what happens to a first try the server drops.  Structural counts only, no
 * timing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "caa/caa.h"
#include "caa/dns_int.h"
#include "tests/unit/fixture.h"

#define SEEN_MAX 1024

/* Answers every query NOERROR with no records, except the first query for a
 * name starting with "lost", which it drops (a full queue's loss). */
struct responder {
    int fd;
    unsigned port;
    pthread_t thread;
    pthread_mutex_t lock;
    bool stop;
    unsigned queries;                      /* under lock */
    char seen[SEEN_MAX][CAA_NAME_MAX + 1]; /* "lost" names already dropped once */
    size_t nseen;
};

static void *respond(void *arg)
{
    struct responder *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        bool stop = r->stop;
        pthread_mutex_unlock(&r->lock);
        if (stop)
            return NULL;
        unsigned char q[512];
        struct sockaddr_in from;
        char name[CAA_NAME_MAX + 1];
        size_t qend;
        if (fixture_dns_question(r->fd, q, &from, name, &qend) == 0)
            continue;
        pthread_mutex_lock(&r->lock);
        r->queries++;
        bool drop = false;
        if (strncmp(name, "lost", 4) == 0) {
            drop = true;
            for (size_t i = 0; i < r->nseen && drop; i++)
                drop = strcmp(r->seen[i], name) != 0;
            if (drop && r->nseen < SEEN_MAX)
                snprintf(r->seen[r->nseen++], sizeof r->seen[0], "%s", name);
        }
        pthread_mutex_unlock(&r->lock);
        if (drop)
            continue;
        /* The header with QR and RA set, RCODE 0, the question only. */
        unsigned char a[512];
        memcpy(a, q, qend);
        a[2] = 0x80 | (q[2] & 0x01);
        a[3] = 0x80;
        a[4] = 0, a[5] = 1;
        memset(a + 6, 0, 6);
        sendto(r->fd, a, qend, 0, (struct sockaddr *)&from, sizeof from);
    }
}

static int setup(void **state)
{
    struct responder *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(r->fd >= 0);
    int buf = 4 << 20; /* a wave of 600 queries waits here (capped at rmem_max) */
    (void)setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(r->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(r->fd, (struct sockaddr *)&sa, &len), 0);
    r->port = ntohs(sa.sin_port);
    pthread_mutex_init(&r->lock, NULL);
    assert_int_equal(pthread_create(&r->thread, NULL, respond, r), 0);
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    struct responder *r = *state;
    pthread_mutex_lock(&r->lock);
    r->stop = true;
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    close(r->fd);
    pthread_mutex_destroy(&r->lock);
    free(r);
    return 0;
}

/* Queries received since the last call; the next test starts afresh (every
 * "lost" name is dropped once again). */
static unsigned received(struct responder *r)
{
    pthread_mutex_lock(&r->lock);
    unsigned n = r->queries;
    r->queries = 0;
    r->nseen = 0;
    pthread_mutex_unlock(&r->lock);
    return n;
}

/* Resolve n names "<prefix-of-i>N.example.test" (every lost_every-th one
 * starting with "lost", 0: none) with `tries`; check every look-up's answer
 * kind and return the stats. */
static struct caa_resolve_stats run(struct responder *r, size_t n, size_t lost_every,
                                    unsigned tries, size_t *answered)
{
    char server[32];
    snprintf(server, sizeof server, "127.0.0.1:%u", r->port);
    const char *servers[] = {server};
    struct caa_resolver_opts opts = {
        .servers = servers, .nservers = 1, .timeout_ms = 900, .tries = tries};
    char(*buf)[64] = calloc(n, sizeof *buf);
    const char **names = calloc(n, sizeof *names);
    assert_non_null(buf);
    assert_non_null(names);
    for (size_t i = 0; i < n; i++) {
        bool lost = lost_every != 0 && i % lost_every == 0;
        snprintf(buf[i], sizeof buf[i], "%s%zu.example.test", lost ? "lost" : "n", i);
        names[i] = buf[i];
    }
    struct caa_lookup *lookups = NULL;
    struct caa_resolve_stats st;
    struct cp_err err = {0};
    assert_int_equal(caa_resolve(&opts, names, n, &lookups, &st, &err), CP_OK);
    *answered = 0;
    for (size_t i = 0; i < n; i++)
        if (lookups[i].answer == CAA_ANSWER_RECORDS)
            (*answered)++;
    caa_lookups_free(lookups, n);
    free(names);
    free(buf);
    return st;
}

/* Every name known up front: one wave, each name asked once. */
static void one_wave(void **state)
{
    struct responder *r = *state;
    size_t answered;
    struct caa_resolve_stats st = run(r, 150, 0, 2, &answered);
    assert_int_equal(answered, 150);
    assert_int_equal(st.queries, 150);
    assert_int_equal(st.resent, 0);
    assert_int_equal(st.waves, 1);
    assert_int_equal(received(r), 150);
}

/* A dropped first try is asked again once, in a second wave. */
static void lost_first_tries_resent_once(void **state)
{
    struct responder *r = *state;
    size_t answered;
    struct caa_resolve_stats st = run(r, 40, 5, 2, &answered);
    assert_int_equal(answered, 40);
    assert_int_equal(st.queries, 48);
    assert_int_equal(st.resent, 8);
    assert_int_equal(st.waves, 2);
    assert_int_equal(received(r), 48);
}

/* With one try there is nothing to resend: the lost names time out. */
static void one_try_no_resend(void **state)
{
    struct responder *r = *state;
    size_t answered;
    struct caa_resolve_stats st = run(r, 40, 5, 1, &answered);
    assert_int_equal(answered, 32);
    assert_int_equal(st.queries, 40);
    assert_int_equal(st.resent, 0);
    assert_int_equal(st.waves, 1);
    assert_int_equal(received(r), 40);
}

/* Beyond CAA_DNS_WAVE_MAX in flight, the rest waits for answers: a later wave. */
static void fan_out_is_bounded(void **state)
{
    struct responder *r = *state;
    size_t answered;
    struct caa_resolve_stats st = run(r, CAA_DNS_WAVE_MAX + 88, 0, 2, &answered);
    assert_int_equal(answered, CAA_DNS_WAVE_MAX + 88);
    assert_true(st.queries >= CAA_DNS_WAVE_MAX + 88);
    assert_true(st.waves >= 2);
    (void)received(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_wave),
        cmocka_unit_test(lost_first_tries_resent_once),
        cmocka_unit_test(one_try_no_resend),
        cmocka_unit_test(fan_out_is_bounded),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
