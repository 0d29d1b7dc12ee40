/*
 * acme/solver_int.h - private to acme/challenge.c, acme/solver_http01.c and
 * acme/solver_tlsalpn01.c: the built-in challenge server shared by http-01
 * and tls-alpn-01.
 *
 * One server is one thread running a poll() loop over its listening sockets
 * and a stop pipe.  Connections are handled one at a time, each within a
 * fixed deadline, and every wait also watches the stop pipe, so a slow or
 * idle client can neither hang the thread nor delay acme_solver_server_stop().
 * The generic part (start, table of challenges, stop) lives in
 * solver_http01.c; solver_tlsalpn01.c adds the TLS handshake and the RFC 8737
 * certificate; challenge.c binds the sockets (acme_port_check() uses the same
 * code) and validates tokens.
 */
#ifndef CP_ACME_SOLVER_INT_H
#define CP_ACME_SOLVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/ssl.h>

#include "common/err.h"

/* Bounds (the CA sends few validation requests; anything else is noise). */
#define SOLVER_MAX_ENTRIES   1000 /* registered challenges per server */
#define SOLVER_MAX_TOKEN     256  /* characters of a token (also for the webroot) */
#define SOLVER_MAX_KEY_AUTHZ 1024 /* characters of a key authorization */
#define SOLVER_CONN_MS       5000 /* whole life of one connection */
#define SOLVER_MAX_LISTEN    2    /* IPv6 (dual-stack) and/or IPv4 */

enum solver_kind { SOLVER_HTTP01, SOLVER_TLSALPN01 };

struct solver_entry {
    char *name;      /* token (http-01) or lower-case DNS name (tls-alpn-01) */
    char *key_authz; /* wiped before free */
    EVP_PKEY *pkey;  /* tls-alpn-01 only: the certificate's key */
    X509 *cert;      /* tls-alpn-01 only: the RFC 8737 certificate */
};

struct acme_solver_server {
    enum solver_kind kind;
    int listen_fds[SOLVER_MAX_LISTEN];
    size_t nlisten;
    int stop_pipe[2]; /* [0] polled by the thread, [1] written by stop */
    pthread_t thread;
    bool running; /* the thread was started and must be joined */

    pthread_mutex_t lock; /* guards entries/nentries/cap */
    struct solver_entry *entries;
    size_t nentries, cap;

    atomic_ulong hits;
    SSL_CTX *ssl_ctx; /* tls-alpn-01 only; read-only once the thread runs */
};

/* --- challenge.c */

/* A token usable as a file name and URL path segment: 1..SOLVER_MAX_TOKEN
 * characters of the base64url alphabet (A-Z a-z 0-9 - _). */
bool acme_token_valid(const char *token);

/* Bind and listen on `addr` (numeric IPv4/IPv6, NULL: everything: an IPv6
 * dual-stack socket, or IPv4 only where IPv6 is missing, or both sockets where
 * dual-stack is refused) and `port`.  The sockets are non-blocking and
 * close-on-exec; *nfds (1 or 2) of fds[] are filled.  CP_EINVAL for a bad
 * address or port, CP_EIO naming the port when it cannot be bound. */
enum cp_code acme_solver_listen(const char *addr, int port, int fds[SOLVER_MAX_LISTEN],
                                size_t *nfds, struct cp_err *err);

/* --- solver_http01.c: the generic server */

/* Allocate a server of `kind`, bind its sockets and make its stop pipe; the
 * thread is not started yet (so the caller can finish setting it up). */
enum cp_code acme_solver_server_new(enum solver_kind kind, const char *addr, int port,
                                    struct acme_solver_server **out, struct cp_err *err);

/* Start the thread. */
enum cp_code acme_solver_server_run(struct acme_solver_server *s, struct cp_err *err);

/* The deadline for a connection accepted now. */
struct timespec acme_solver_deadline(void);

/* Wait until `fd` is ready for `events` (POLLIN/POLLOUT).  1: ready; 0: the
 * deadline passed or the server is being stopped; -1: poll failed. */
int acme_solver_wait(struct acme_solver_server *s, int fd, short events,
                     const struct timespec *deadline);

/* Entry for `name` (exact match: names are stored lower-case for tls-alpn-01)
 * or NULL.  Caller holds s->lock. */
struct solver_entry *acme_solver_lookup(struct acme_solver_server *s, const char *name);

/* --- solver_tlsalpn01.c */

/* Serve one accepted connection: a TLS handshake and nothing else. */
void acme_tlsalpn01_handle(struct acme_solver_server *s, int fd);

/* Check a tls-alpn-01 name (a DNS name, not a wildcard) and store its
 * lower-case form in `out`. */
enum cp_code acme_tlsalpn01_name(const char *name, char out[254], struct cp_err *err);

#endif
