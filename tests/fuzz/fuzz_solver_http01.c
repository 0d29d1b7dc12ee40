/*
 * tests/fuzz/fuzz_solver_http01.c - libFuzzer target for the built-in http-01
 * server's request reader (acme/solver_http01.c): whatever bytes a client
 * sends, the server answers with one well-formed HTTP/1.1 response, and the
 * key authorization only to a GET or HEAD of the registered token's path.
 *
 * The input goes through a socket pair into the real per-connection step
 * function, exactly as the server loop drives it; no listening socket.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "acme/acme.h"
#include "acme/solver_int.h"

#define TOKEN     "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
#define KEY_AUTHZ TOKEN ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
#define INPUT_MAX 12000 /* fits the socket buffer: written at once */

static void check(bool ok)
{
    if (!ok)
        abort();
}

static struct acme_solver_server *server(void)
{
    static struct acme_solver_server *s;
    if (s != NULL)
        return s;
    s = calloc(1, sizeof *s);
    check(s != NULL);
    s->kind = SOLVER_HTTP01;
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    check(pthread_mutex_init(&s->lock, NULL) == 0);
    check(pthread_cond_init(&s->served_cond, NULL) == 0);
    struct cp_err err = {0};
    check(acme_solver_server_add(s, TOKEN, KEY_AUTHZ, &err) == CP_OK);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2];
    if (size > INPUT_MAX)
        return 0;
    check(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    check(fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0);
    check(size == 0 || write(sv[1], data, size) == (ssize_t)size);
    check(shutdown(sv[1], SHUT_WR) == 0);

    struct solver_conn c;
    memset(&c, 0, sizeof c);
    c.fd = sv[0];
    c.deadline_ms = acme_solver_now_ms() + SOLVER_CONN_MS;
    bool open = true;
    for (int i = 0; i < 64 && open; i++)
        open = acme_http01_step(server(), &c);
    acme_http01_release(&c);
    close(sv[0]);

    char out[4096];
    ssize_t n = read(sv[1], out, sizeof out - 1);
    close(sv[1]);
    if (n <= 0)
        return 0; /* closed without an answer (an empty request) */
    out[n] = '\0';
    check(strncmp(out, "HTTP/1.1 ", 9) == 0);
    check(strstr(out, "\r\n\r\n") != NULL);
    if (strncmp(out, "HTTP/1.1 200 ", 13) == 0) {
        /* Only for the token's path, by GET or HEAD. */
        static const char path[] = "/.well-known/acme-challenge/" TOKEN;
        check(memmem(data, size, path, sizeof path - 1) != NULL);
        check(memcmp(data, "GET ", 4) == 0 || memcmp(data, "HEAD ", 5) == 0);
        const char *body = strstr(out, "\r\n\r\n") + 4;
        check(*body == '\0' || strcmp(body, KEY_AUTHZ) == 0);
    } else {
        check(strstr(out, KEY_AUTHZ) == NULL);
    }
    return 0;
}
