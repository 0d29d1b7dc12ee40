/* tests/unit/test_acme_order.c - acme/order.c: the schedule of polls of an
 * authorization or order (acme_poll_delay_ms), and the built-in server's
 * "served" signal that ends a pause early (acme_solver_server_await).  The
 * issuance itself is tested against the lab (tests/integration/test_issue*.py,
 * test_acme_requests.py). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "acme/acme.h"
#include "tests/unit/fixture.h"

static void starts_short_and_doubles(void **state)
{
    (void)state;
    /* No Retry-After (-1, as acme_retry_after() says for a missing one). */
    assert_int_equal(acme_poll_delay_ms(0, -1), 20);
    assert_int_equal(acme_poll_delay_ms(1, -1), 40);
    assert_int_equal(acme_poll_delay_ms(2, -1), 80);
    assert_int_equal(acme_poll_delay_ms(3, -1), 160);
    assert_int_equal(acme_poll_delay_ms(6, -1), 1280);
    /* Retry-After: 0 means "now": the schedule still paces the polls. */
    assert_int_equal(acme_poll_delay_ms(0, 0), 20);
}

static void capped(void **state)
{
    (void)state;
    assert_int_equal(acme_poll_delay_ms(7, -1), 2000);
    assert_int_equal(acme_poll_delay_ms(8, -1), 2000);
    assert_int_equal(acme_poll_delay_ms(40, -1), 2000); /* no overflow from the doubling */
    assert_int_equal(acme_poll_delay_ms(~0u, -1), 2000);
    /* Never decreasing. */
    for (unsigned i = 0; i < 64; i++)
        assert_true(acme_poll_delay_ms(i + 1, -1) >= acme_poll_delay_ms(i, -1));
}

static void follows_retry_after_bounded(void **state)
{
    (void)state;
    assert_int_equal(acme_poll_delay_ms(0, 1), 1000);
    assert_int_equal(acme_poll_delay_ms(5, 3), 3000); /* the CA's word over the schedule */
    assert_int_equal(acme_poll_delay_ms(0, 10), 10000);
    assert_int_equal(acme_poll_delay_ms(0, 11), 10000);
    assert_int_equal(acme_poll_delay_ms(0, 86400), 10000); /* a day: bounded */
}

/* One GET of /.well-known/acme-challenge/<token> on 127.0.0.1:port; the
 * status code of the answer, or -1. */
static int fetch(int port, const char *token)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /.well-known/acme-challenge/%s HTTP/1.1\r\nHost: x\r\n\r\n", token);
    char buf[256] = {0};
    int status = -1;
    if (write(fd, req, (size_t)n) == n && read(fd, buf, sizeof buf - 1) > 12)
        (void)sscanf(buf, "HTTP/1.1 %d", &status);
    close(fd);
    return status;
}

static void served_signal(void **state)
{
    (void)state;
    static const char tok[] = "tok_A-1", other[] = "tok_B-2";
    static const char ka[] = "tok_A-1.thumbprintAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    static const char kb[] = "tok_B-2.thumbprintAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    int port = fixture_free_port();
    struct acme_solver_server *s = NULL;
    struct cp_err err = {0};
    assert_int_equal(acme_http01_server_start("127.0.0.1", port, &s, &err), CP_OK);
    assert_int_equal(acme_solver_server_add(s, tok, ka, &err), CP_OK);
    assert_int_equal(acme_solver_server_add(s, other, kb, &err), CP_OK);

    /* Nothing fetched yet: the wait runs out; unknown names never count. */
    assert_false(acme_solver_server_await(s, tok, 10));
    assert_false(acme_solver_server_await(s, "unknown", 0));
    assert_false(acme_solver_server_await(s, "not a token", 0));
    /* A 404 for an unknown token marks nothing. */
    assert_int_equal(fetch(port, "nope"), 404);
    assert_false(acme_solver_server_await(s, tok, 0));

    assert_int_equal(fetch(port, tok), 200);
    /* Counted before the answer was sent: true at once, also later. */
    assert_true(acme_solver_server_await(s, tok, 0));
    assert_true(acme_solver_server_await(s, tok, 60000));
    /* Per challenge: the other one was not fetched. */
    assert_false(acme_solver_server_await(s, other, 0));
    assert_int_equal(acme_solver_server_hits(s), 1);

    /* The same token registered again is a new challenge, not fetched yet. */
    assert_int_equal(acme_solver_server_add(s, tok, ka, &err), CP_OK);
    assert_false(acme_solver_server_await(s, tok, 0));
    acme_solver_server_stop(s);
    assert_false(acme_solver_server_await(NULL, tok, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(starts_short_and_doubles),
        cmocka_unit_test(capped),
        cmocka_unit_test(follows_retry_after_bounded),
        cmocka_unit_test(served_signal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
