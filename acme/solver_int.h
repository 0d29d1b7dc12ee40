/*
 * acme/solver_int.h - private to acme/challenge.c, acme/solver_http01.c and
 * acme/solver_tlsalpn01.c: the built-in challenge server shared by http-01
 * and tls-alpn-01.
 *
 * One server is one thread running one poll() loop (solver_loop.c) over its
 * listening sockets, its stop pipe and up to SOLVER_MAX_CONNS open
 * connections.  Every connection is non-blocking and has a deadline fixed
 * when it is accepted (SOLVER_CONN_MS); the per-protocol step functions read,
 * write or handshake as far as the socket allows and say what they wait for
 * next.  When the table is full, the connection accepted first among those
 * not yet answered is dropped to make room, so that idle or slow clients can
 * neither hold the server nor delay a CA's validation request, and stopping
 * never waits for a client.  The rest of the generic part (start, table of
 * challenges, stop) lives in solver_http01.c; solver_tlsalpn01.c adds the TLS
 * handshake and the RFC 8737 certificate; challenge.c binds the sockets
 * (acme_port_check() uses the same code) and validates tokens.
 *
 * An http-01 server may also look up tokens it was not given
 * (solver_lookup.c): such a request parks its connection (polled for
 * nothing) while a worker thread asks, and the loop wakes on the done pipe
 * to answer it; the loop itself never waits for a look-up.
 */
#ifndef CP_ACME_SOLVER_INT_H
#define CP_ACME_SOLVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/ssl.h>

#include "acme/acme.h"
#include "common/err.h"

/* Bounds (the CA sends few validation requests; anything else is noise). */
#define SOLVER_MAX_ENTRIES    1000 /* registered challenges per server */
#define SOLVER_MAX_TOKEN      256  /* characters of a token (also for the webroot) */
#define SOLVER_MAX_KEY_AUTHZ  1024 /* characters of a key authorization */
#define SOLVER_CONN_MS        5000 /* life of one connection until it is answered */
#define SOLVER_MAX_LISTEN     2    /* IPv6 (dual-stack) and/or IPv4 */
#define SOLVER_MAX_CONNS      256  /* open connections per server (file descriptors) */
#define SOLVER_BACKLOG        128  /* listen() queue: the loop accepts eagerly */
#define SOLVER_LOOKUP_THREADS 4    /* workers running acme_http01_lookup.find */
#define SOLVER_MAX_LOOKUPS    64   /* look-ups queued, running or not yet collected */
#define SOLVER_LOOKUP_MS      3000 /* default deadline of one look-up */

enum solver_kind { SOLVER_HTTP01, SOLVER_TLSALPN01 };

struct solver_entry {
    char *name;      /* token (http-01) or lower-case DNS name (tls-alpn-01) */
    char *key_authz; /* wiped before free */
    EVP_PKEY *pkey;  /* tls-alpn-01 only: the certificate's key */
    X509 *cert;      /* tls-alpn-01 only: the RFC 8737 certificate */
    bool served;     /* a request for it was answered (see acme_solver_server_await) */
};

/* One look-up of an unknown token (solver_lookup.c).  Made by the loop,
 * run by a worker, handed back through the done list and freed by the loop:
 * never touched by two threads at once.  The connection that asked is found
 * again by its slot and accept id; when it has gone, the result is dropped. */
struct solver_job {
    struct solver_job *next;
    size_t slot;
    unsigned long long conn_id;
    char token[SOLVER_MAX_TOKEN + 1];
    char *key_authz; /* the answer (heap, wiped); NULL: not found or failed */
    bool failed;     /* find() returned an error */
};

/* The look-up side of an http-01 server (unused when find is NULL). */
struct solver_lookup {
    struct acme_http01_lookup cfg;
    pthread_t threads[SOLVER_LOOKUP_THREADS];
    size_t nthreads;
    pthread_mutex_t mu;
    pthread_cond_t wake;             /* a job was queued, or stopping */
    struct solver_job *queue, *tail; /* waiting for a worker, oldest first */
    struct solver_job *done;         /* finished, for the loop to collect */
    size_t pending;                  /* queued + running + done */
    bool stopping;
    int done_pipe[2]; /* a byte per finished job: [0] polled by the loop */
};

struct acme_solver_server {
    enum solver_kind kind;
    int listen_fds[SOLVER_MAX_LISTEN];
    size_t nlisten;
    int stop_pipe[2]; /* [0] polled by the thread, [1] written by stop */
    pthread_t thread;
    bool running; /* the thread was started and must be joined */

    pthread_mutex_t lock;       /* guards entries/nentries/cap and their `served` */
    pthread_cond_t served_cond; /* broadcast when an entry becomes served (CLOCK_MONOTONIC) */
    struct solver_entry *entries;
    size_t nentries, cap;

    atomic_ulong hits;
    SSL_CTX *ssl_ctx;             /* tls-alpn-01 only; read-only once the thread runs */
    struct solver_lookup *lookup; /* http-01 only; NULL: unknown tokens are 404 */
};

/* One open connection in the loop's table. */
struct solver_conn {
    int fd;                /* -1: the slot is free */
    size_t slot;           /* its index in the loop's table (for look-up results) */
    unsigned long long id; /* accept order: lower is older */
    long long deadline_ms; /* CLOCK_MONOTONIC; closed when it passes */
    short events;          /* what the step waits for: POLLIN and/or POLLOUT */
    bool answered;         /* request read / handshake done: no longer idle */
    int phase;             /* the step function's own state */
    bool head_only;        /* http-01: a HEAD request */

    /* http-01 */
    char *head; /* the request head read so far (HTTP_MAX_HEAD + 1), lazily */
    size_t head_len;
    char *out; /* the response; wiped before free */
    size_t out_len, out_off;
    size_t drained; /* bytes read and dropped after the answer */

    /* tls-alpn-01 */
    SSL *ssl;
    bool matched;                    /* the SNI named a registered challenge */
    char name[SOLVER_MAX_TOKEN + 1]; /* that name (the table's key) */
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

/* Entry for `name` (exact match: names are stored lower-case for tls-alpn-01)
 * or NULL.  Caller holds s->lock. */
struct solver_entry *acme_solver_lookup(struct acme_solver_server *s, const char *name);

/* The request for entry `name` was answered: count a hit, mark the entry
 * served and wake acme_solver_server_await().  Takes s->lock. */
void acme_solver_served(struct acme_solver_server *s, const char *name);

/* Set `fd` non-blocking and close-on-exec. */
bool acme_solver_fd_flags(int fd);

/* Milliseconds of CLOCK_MONOTONIC. */
long long acme_solver_now_ms(void);

/* One step of an http-01 connection: read, answer, linger, as far as the
 * socket allows without blocking.  true: keep it (c->events says what it waits
 * for); false: done, close it.  Only bounded work per call. */
bool acme_http01_step(struct acme_solver_server *s, struct solver_conn *c);

/* Free what an http-01 connection holds (not the fd). */
void acme_http01_release(struct solver_conn *c);

/* Its deadline passed: true when it is kept (a look-up ran late: the
 * connection is answered 503 instead), false to close it. */
bool acme_http01_late(struct acme_solver_server *s, struct solver_conn *c);

/* The look-up job of connection `c` finished: answer with its result. */
void acme_http01_resolved(struct acme_solver_server *s, struct solver_conn *c,
                          const struct solver_job *job);

/* --- solver_lookup.c */

/* Set up the look-up of `s` (queue, done pipe, workers).  The workers
 * start at once and wait for jobs. */
enum cp_code acme_solver_lookup_start(struct acme_solver_server *s,
                                      const struct acme_http01_lookup *cfg, struct cp_err *err);
/* Queue a look-up of `token` for connection `c`; false when
 * SOLVER_MAX_LOOKUPS are pending or out of memory (answer 503). */
bool acme_solver_lookup_submit(struct acme_solver_server *s, const struct solver_conn *c,
                               const char *token);
/* The finished jobs, oldest first (the caller frees them with
 * acme_solver_job_free()); drains the done pipe. */
struct solver_job *acme_solver_lookup_collect(struct acme_solver_server *s);
void acme_solver_job_free(struct solver_job *j);
/* Stop the workers (waiting for running look-ups to return) and free
 * everything; NULL: no-op. */
void acme_solver_lookup_stop(struct solver_lookup *l);
/* Look-ups pending now (for tests). */
size_t acme_solver_lookups_pending(struct acme_solver_server *s);

/* --- solver_loop.c */

/* The server thread: accept, step and expire connections until the stop pipe
 * is readable.  `arg` is the struct acme_solver_server. */
void *acme_solver_loop(void *arg);

/* --- solver_tlsalpn01.c */

/* One step of a tls-alpn-01 connection: the TLS handshake and then one
 * close_notify, non-blocking; as acme_http01_step(). */
bool acme_tlsalpn01_step(struct acme_solver_server *s, struct solver_conn *c);

/* Free what a tls-alpn-01 connection holds (not the fd). */
void acme_tlsalpn01_release(struct solver_conn *c);

/* Check a tls-alpn-01 name (a DNS name, not a wildcard) and store its
 * lower-case form in `out`. */
enum cp_code acme_tlsalpn01_name(const char *name, char out[254], struct cp_err *err);

#endif
