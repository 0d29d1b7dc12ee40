/*
 * acme/solver_http01.c - the built-in http-01 server (RFC 8555 §8.3) and the
 * server machinery it shares with tls-alpn-01 (see acme/solver_int.h).
 *
 * The HTTP side is deliberately tiny: read one request head (at most 8 KiB,
 * within SOLVER_CONN_MS), answer GET or HEAD of
 * /.well-known/acme-challenge/<registered token> with the key authorization,
 * anything else with 404, and close.  No keep-alive, no bodies read, no
 * redirects: the CA's validation requests need nothing more.  Each
 * connection is a small state machine (read the head, write the answer,
 * linger) that the loop in solver_loop.c steps whenever its socket is ready;
 * nothing here blocks.
 */
#include "acme/acme.h"
#include "acme/solver_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define HTTP_MAX_HEAD   8192
#define HTTP_LINGER_MS  500
#define HTTP_LINGER_MAX ((size_t)64 * 1024) /* bytes read after answering */
#define HTTP_PREFIX     "/.well-known/acme-challenge/"

/* ----------------------------------------------------------------- table */

struct solver_entry *acme_solver_lookup(struct acme_solver_server *s, const char *name)
{
    for (size_t i = 0; i < s->nentries; i++) {
        if (strcmp(s->entries[i].name, name) == 0)
            return &s->entries[i];
    }
    return NULL;
}

static void entry_clear(struct solver_entry *e)
{
    if (e->key_authz != NULL) {
        OPENSSL_cleanse(e->key_authz, strlen(e->key_authz));
        free(e->key_authz);
    }
    free(e->name);
    EVP_PKEY_free(e->pkey);
    X509_free(e->cert);
    memset(e, 0, sizeof *e);
}

static bool key_authz_valid(const char *ka)
{
    /* token "." thumbprint: both base64url. */
    size_t n = 0;
    for (const char *p = ka; *p != '\0'; p++, n++) {
        char c = *p;
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok || n >= SOLVER_MAX_KEY_AUTHZ)
            return false;
    }
    return n > 0;
}

/* The key in the table for `name_or_token`: the token as is, the lower-case
 * name, or an address's reverse-DNS name (RFC 8738 §6). */
static enum cp_code table_key(const struct acme_solver_server *s, const char *name_or_token,
                              char name[SOLVER_MAX_TOKEN + 1], struct cp_err *err)
{
    if (s->kind == SOLVER_HTTP01) {
        if (!acme_token_valid(name_or_token))
            return cp_err_set(err, CP_EINVAL, "http-01 token is not 1 to %d base64url characters",
                              SOLVER_MAX_TOKEN);
        memcpy(name, name_or_token, strlen(name_or_token) + 1);
        return CP_OK;
    }
    if (acme_ip_normalize(name_or_token, NULL)) {
        char rev[ACME_REVERSE_MAX];
        enum cp_code rc = acme_ip_reverse_name(name_or_token, rev, err);
        if (rc == CP_OK)
            memcpy(name, rev, strlen(rev) + 1);
        return rc;
    }
    return acme_tlsalpn01_name(name_or_token, name, err);
}

enum cp_code acme_solver_server_add(struct acme_solver_server *s, const char *name_or_token,
                                    const char *key_authz, struct cp_err *err)
{
    if (s == NULL || name_or_token == NULL || key_authz == NULL)
        return cp_err_set(err, CP_EINVAL, "challenge server: missing argument");
    char name[SOLVER_MAX_TOKEN + 1];
    enum cp_code rc = table_key(s, name_or_token, name, err);
    if (rc != CP_OK)
        return rc;

    if (!key_authz_valid(key_authz))
        return cp_err_set(err, CP_EINVAL,
                          "key authorization for %s is not token.thumbprint (base64url, at most "
                          "%d characters)",
                          name, SOLVER_MAX_KEY_AUTHZ);

    struct solver_entry e = {0};
    /* Made outside the lock: key generation is the slow part. */
    if (s->kind == SOLVER_TLSALPN01) /* for an address: its certificate, the reverse name's slot */
        rc = acme_tlsalpn01_cert(acme_ip_normalize(name_or_token, NULL) ? name_or_token : name,
                                 key_authz, &e.pkey, &e.cert, err);
    if (rc == CP_OK) {
        e.name = strdup(name);
        e.key_authz = strdup(key_authz);
        if (e.name == NULL || e.key_authz == NULL)
            rc = cp_err_set(err, CP_ENOMEM, "challenge server: out of memory");
    }
    if (rc != CP_OK) {
        entry_clear(&e);
        return rc;
    }

    pthread_mutex_lock(&s->lock);
    struct solver_entry *old = acme_solver_lookup(s, e.name);
    if (old != NULL) {
        /* The same token or name again: the newer challenge wins. */
        entry_clear(old);
        *old = e;
        e = (struct solver_entry){0};
    } else if (s->nentries >= SOLVER_MAX_ENTRIES) {
        rc = cp_err_set(err, CP_EINVAL, "challenge server: more than %d challenges",
                        SOLVER_MAX_ENTRIES);
    } else {
        if (s->nentries == s->cap) {
            size_t cap = s->cap == 0 ? 8 : s->cap * 2;
            if (cap > SOLVER_MAX_ENTRIES)
                cap = SOLVER_MAX_ENTRIES;
            struct solver_entry *n = realloc(s->entries, cap * sizeof *n);
            if (n == NULL) {
                rc = cp_err_set(err, CP_ENOMEM, "challenge server: out of memory");
                goto unlock;
            }
            s->entries = n;
            s->cap = cap;
        }
        s->entries[s->nentries++] = e;
        e = (struct solver_entry){0};
    }
unlock:
    pthread_mutex_unlock(&s->lock);
    entry_clear(&e);
    return rc;
}

unsigned long acme_solver_server_hits(const struct acme_solver_server *s)
{
    return s == NULL ? 0 : atomic_load(&s->hits);
}

void acme_solver_served(struct acme_solver_server *s, const char *name)
{
    pthread_mutex_lock(&s->lock);
    atomic_fetch_add(&s->hits, 1);
    struct solver_entry *e = acme_solver_lookup(s, name);
    if (e != NULL && !e->served) {
        e->served = true;
        pthread_cond_broadcast(&s->served_cond);
    }
    pthread_mutex_unlock(&s->lock);
}

bool acme_solver_server_await(struct acme_solver_server *s, const char *name_or_token, long ms)
{
    char name[SOLVER_MAX_TOKEN + 1];
    if (s == NULL || name_or_token == NULL || table_key(s, name_or_token, name, NULL) != CP_OK)
        return false;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    long long ns = (long long)until.tv_nsec + (long long)(ms > 0 ? ms : 0) * 1000000LL;
    until.tv_sec += (time_t)(ns / 1000000000LL);
    until.tv_nsec = (long)(ns % 1000000000LL);

    bool served = false;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        const struct solver_entry *e = acme_solver_lookup(s, name);
        served = e != NULL && e->served;
        if (served || pthread_cond_timedwait(&s->served_cond, &s->lock, &until) == ETIMEDOUT)
            break;
    }
    if (!served) { /* the last word after the time-out */
        const struct solver_entry *e = acme_solver_lookup(s, name);
        served = e != NULL && e->served;
    }
    pthread_mutex_unlock(&s->lock);
    return served;
}

/* ------------------------------------------------------------- lifecycle */

static bool fd_flags(int fd, int fl, int fdfl)
{
    int a = fcntl(fd, F_GETFL);
    int b = fcntl(fd, F_GETFD);
    return a >= 0 && b >= 0 && fcntl(fd, F_SETFL, a | fl) == 0 && fcntl(fd, F_SETFD, b | fdfl) == 0;
}

bool acme_solver_fd_flags(int fd)
{
    return fd_flags(fd, O_NONBLOCK, FD_CLOEXEC);
}

enum cp_code acme_solver_server_new(enum solver_kind kind, const char *addr, int port,
                                    struct acme_solver_server **out, struct cp_err *err)
{
    *out = NULL;
    struct acme_solver_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return cp_err_set(err, CP_ENOMEM, "challenge server: out of memory");
    s->kind = kind;
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    atomic_init(&s->hits, 0);
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s);
        return cp_err_set(err, CP_EIO, "challenge server: cannot create a mutex");
    }
    pthread_condattr_t ca;
    bool cond_ok = pthread_condattr_init(&ca) == 0;
    if (cond_ok) {
        /* Waits are measured on the monotonic clock, as everything else here. */
        cond_ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
                  pthread_cond_init(&s->served_cond, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (!cond_ok) {
        pthread_mutex_destroy(&s->lock);
        free(s);
        return cp_err_set(err, CP_EIO, "challenge server: cannot create a condition variable");
    }

    enum cp_code rc = acme_solver_listen(addr, port, s->listen_fds, &s->nlisten, err);
    if (rc != CP_OK)
        goto fail;
    if (pipe(s->stop_pipe) != 0) {
        s->stop_pipe[0] = s->stop_pipe[1] = -1;
        rc = cp_err_set(err, CP_EIO, "challenge server: pipe: %s", strerror(errno));
        goto fail;
    }
    if (!fd_flags(s->stop_pipe[0], O_NONBLOCK, FD_CLOEXEC) ||
        !fd_flags(s->stop_pipe[1], O_NONBLOCK, FD_CLOEXEC)) {
        rc = cp_err_set(err, CP_EIO, "challenge server: fcntl: %s", strerror(errno));
        goto fail;
    }
    *out = s;
    return CP_OK;
fail:
    acme_solver_server_stop(s);
    return rc;
}

enum cp_code acme_solver_server_run(struct acme_solver_server *s, struct cp_err *err)
{
    /* The thread takes no signals: they stay with the application's threads,
     * and a peer that resets the connection cannot SIGPIPE us (OpenSSL writes
     * with write(), not send(MSG_NOSIGNAL)). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&s->thread, NULL, acme_solver_loop, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0)
        return cp_err_set(err, CP_EIO, "challenge server: cannot start a thread: %s", strerror(e));
    s->running = true;
    return CP_OK;
}

enum cp_code acme_http01_server_start(const char *addr, int port, struct acme_solver_server **out,
                                      struct cp_err *err)
{
    return acme_http01_server_start_lookup(addr, port, NULL, out, err);
}

enum cp_code acme_http01_server_start_lookup(const char *addr, int port,
                                             const struct acme_http01_lookup *lookup,
                                             struct acme_solver_server **out, struct cp_err *err)
{
    if (out == NULL)
        return cp_err_set(err, CP_EINVAL, "http-01 server: no result pointer");
    *out = NULL;
    struct acme_solver_server *s = NULL;
    enum cp_code rc = acme_solver_server_new(SOLVER_HTTP01, addr, port, &s, err);
    if (rc != CP_OK)
        return rc;
    rc = acme_solver_lookup_start(s, lookup, err);
    if (rc == CP_OK)
        rc = acme_solver_server_run(s, err);
    if (rc != CP_OK) {
        acme_solver_server_stop(s);
        return rc;
    }
    *out = s;
    return CP_OK;
}

void acme_solver_server_stop(struct acme_solver_server *s)
{
    if (s == NULL)
        return;
    if (s->running) {
        char b = 'x';
        ssize_t w;
        do
            w = write(s->stop_pipe[1], &b, 1);
        while (w < 0 && errno == EINTR);
        /* Even if the write failed (full pipe: already signalled) the byte
         * that is there wakes the thread. */
        pthread_join(s->thread, NULL);
    }
    acme_solver_lookup_stop(s->lookup);
    for (size_t i = 0; i < s->nlisten; i++)
        close(s->listen_fds[i]);
    for (size_t i = 0; i < 2; i++) {
        if (s->stop_pipe[i] >= 0)
            close(s->stop_pipe[i]);
    }
    for (size_t i = 0; i < s->nentries; i++)
        entry_clear(&s->entries[i]);
    free(s->entries);
    SSL_CTX_free(s->ssl_ctx);
    pthread_cond_destroy(&s->served_cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* ------------------------------------------------------------------ HTTP */

/* HTTP_LOOKUP: the request is read and a worker looks its token up; the
 * connection is polled for nothing until acme_http01_resolved() or
 * acme_http01_late() answers it. */
enum http_phase { HTTP_READ, HTTP_LOOKUP, HTTP_WRITE, HTTP_LINGER };

/* The end of the request head ("\r\n\r\n", or "\n\n" from lax clients). */
static bool head_complete(const char *buf, size_t from, size_t len)
{
    for (size_t i = from; i + 1 < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (buf[i + 1] == '\n' || (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n'))
            return true;
    }
    return false;
}

#define HTTP_ASK 0 /* decide(): a token to look up (solver_lookup.c) */

/*
 * Parse "METHOD SP target SP HTTP/1.x" and decide.  Returns the status, or
 * HTTP_ASK for a valid token that is not registered when the server has a
 * look-up (*token_out then names it); for 200, *body is a heap copy of the
 * key authorization (wiped by the caller).
 */
static int decide(struct acme_solver_server *s, char *buf, size_t len, bool *head_only, char **body,
                  const char **token_out)
{
    *head_only = false;
    *token_out = NULL;
    *body = NULL;
    const char *eol = memchr(buf, '\n', len);
    if (eol == NULL)
        return 400;
    size_t linelen = (size_t)(eol - buf);
    if (linelen > 0 && buf[linelen - 1] == '\r')
        linelen--;
    if (memchr(buf, '\0', linelen) != NULL)
        return 400;
    buf[linelen] = '\0';

    char *method = buf;
    char *sp1 = strchr(method, ' ');
    if (sp1 == NULL)
        return 400;
    *sp1 = '\0';
    char *target = sp1 + 1;
    char *sp2 = strchr(target, ' ');
    if (sp2 == NULL)
        return 400;
    *sp2 = '\0';
    const char *version = sp2 + 1;
    if (strncmp(version, "HTTP/1.", 7) != 0 || *target == '\0')
        return 400;

    if (strcmp(method, "HEAD") == 0)
        *head_only = true;
    else if (strcmp(method, "GET") != 0)
        return 404;
    if (strncmp(target, HTTP_PREFIX, strlen(HTTP_PREFIX)) != 0)
        return 404;
    const char *token = target + strlen(HTTP_PREFIX);
    if (!acme_token_valid(token))
        return 404;

    pthread_mutex_lock(&s->lock);
    struct solver_entry *e = acme_solver_lookup(s, token);
    if (e != NULL)
        *body = strdup(e->key_authz);
    pthread_mutex_unlock(&s->lock);
    *token_out = token;
    if (e == NULL)
        return s->lookup != NULL ? HTTP_ASK : 404;
    return *body == NULL ? 500 : 200;
}

/* The whole response into c->out; false when out of memory.  `body` (for
 * 200) is the key authorization of `token`. */
static bool respond(struct acme_solver_server *s, struct solver_conn *c, int status,
                    const char *body, const char *token, bool looked_up)
{
    const char *reason = status == 200   ? "OK"
                         : status == 400 ? "Bad Request"
                         : status == 404 ? "Not Found"
                         : status == 431 ? "Request Header Fields Too Large"
                         : status == 503 ? "Service Unavailable"
                                         : "Internal Server Error";
    char fallback[64];
    if (body == NULL)
        snprintf(fallback, sizeof fallback, "%s\n", reason);
    const char *text = body != NULL ? body : fallback;
    size_t text_len = strlen(text); /* at most SOLVER_MAX_KEY_AUTHZ */

    char hdr[256];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, reason, text_len);
    if (n <= 0 || (size_t)n >= sizeof hdr)
        return false;
    size_t total = (size_t)n + (c->head_only ? 0 : text_len);
    c->out = malloc(total);
    if (c->out == NULL)
        return false;
    memcpy(c->out, hdr, (size_t)n);
    if (!c->head_only)
        memcpy(c->out + n, text, text_len);
    c->out_len = total;
    c->out_off = 0;
    if (status == 200) { /* counted before the client can see it */
        acme_solver_served(s, token);
        if (s->lookup != NULL && s->lookup->cfg.served != NULL)
            s->lookup->cfg.served(s->lookup->cfg.ctx, token, looked_up);
    }
    return true;
}

/* Decide and answer the request read into c->head: *parked when it waits
 * for a look-up instead (nothing to send yet).  false when out of memory. */
static bool build_response(struct acme_solver_server *s, struct solver_conn *c, bool too_big,
                           bool *parked)
{
    int status = 431;
    char *body = NULL;
    const char *token = NULL; /* points into c->head */
    *parked = false;
    if (!too_big)
        status = decide(s, c->head, c->head_len, &c->head_only, &body, &token);
    if (status == HTTP_ASK) {
        if (acme_solver_lookup_submit(s, c, token)) {
            *parked = true;
            return true;
        }
        status = 503; /* too many look-ups waiting already */
    }
    bool ok = respond(s, c, status, body, token, false);
    if (body != NULL) {
        OPENSSL_cleanse(body, strlen(body));
        free(body);
    }
    return ok;
}

static void wipe_head(struct solver_conn *c)
{
    if (c->head != NULL) {
        OPENSSL_cleanse(c->head, HTTP_MAX_HEAD + 1);
        free(c->head);
        c->head = NULL;
    }
    c->head_len = 0;
}

void acme_http01_release(struct solver_conn *c)
{
    wipe_head(c);
    if (c->out != NULL) {
        OPENSSL_cleanse(c->out, c->out_len);
        free(c->out);
        c->out = NULL;
    }
}

/* HTTP_READ: true when the head is complete or too big (then answer), false
 * to wait or close (c->events set, or *gone). */
static bool read_head(struct solver_conn *c, bool *too_big, bool *gone)
{
    if (c->head == NULL) {
        c->head = malloc(HTTP_MAX_HEAD + 1); /* only once the client has sent something */
        if (c->head == NULL) {
            *gone = true;
            return false;
        }
    }
    for (;;) {
        if (c->head_len == HTTP_MAX_HEAD) {
            *too_big = true;
            return true;
        }
        ssize_t r = recv(c->fd, c->head + c->head_len, HTTP_MAX_HEAD - c->head_len, 0);
        if (r > 0) {
            /* Only the new bytes and the 2 before them can end the head. */
            size_t from = c->head_len > 2 ? c->head_len - 2 : 0;
            c->head_len += (size_t)r;
            if (head_complete(c->head, from, c->head_len))
                return true;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->events = POLLIN;
            return false;
        }
        *gone = true; /* closed before a whole head, or an error */
        return false;
    }
}

/* HTTP_WRITE: true when everything is sent; false to wait (c->events) or on
 * error (*gone). */
static bool send_out(struct solver_conn *c, bool *gone)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w > 0) {
            c->out_off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->events = POLLOUT;
            return false;
        }
        *gone = true;
        return false;
    }
    return true;
}

/* HTTP_LINGER: after the answer, stop sending and read what the client
 * still sends (briefly, boundedly) so that closing does not reset the
 * connection before the client has read the response.  true to keep. */
static bool drain(struct solver_conn *c)
{
    char sink[4096];
    while (c->drained < HTTP_LINGER_MAX) {
        ssize_t r = recv(c->fd, sink, sizeof sink, 0);
        if (r > 0) {
            c->drained += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->events = POLLIN;
            return true;
        }
        return false; /* the client closed its side: done */
    }
    return false;
}

bool acme_http01_step(struct acme_solver_server *s, struct solver_conn *c)
{
    bool gone = false;
    if (c->phase == HTTP_READ) {
        bool too_big = false, parked = false;
        if (!read_head(c, &too_big, &gone))
            return !gone;
        bool ok = build_response(s, c, too_big, &parked);
        wipe_head(c);
        if (!ok)
            return false;
        c->answered = true;
        if (parked) {
            c->phase = HTTP_LOOKUP;
            c->events = 0; /* only a hang-up or an error can wake it */
            c->deadline_ms = acme_solver_now_ms() + (long long)s->lookup->cfg.timeout_ms;
            return true;
        }
        c->phase = HTTP_WRITE;
    }
    if (c->phase == HTTP_LOOKUP)
        return false; /* the client hung up or failed while waiting */
    if (c->phase == HTTP_WRITE) {
        if (!send_out(c, &gone))
            return !gone;
        acme_http01_release(c);
        (void)shutdown(c->fd, SHUT_WR);
        c->phase = HTTP_LINGER;
        /* The answer is out: a short grace period of its own. */
        c->deadline_ms = acme_solver_now_ms() + HTTP_LINGER_MS;
    }
    return drain(c);
}

/* Answer a parked connection: its look-up's result, or `status` alone. */
static void answer_parked(struct acme_solver_server *s, struct solver_conn *c, int status,
                          const char *body, const char *token)
{
    if (!respond(s, c, status, body, token, true)) {
        /* Out of memory: let the deadline close it. */
        c->events = 0;
        return;
    }
    c->phase = HTTP_WRITE;
    c->events = POLLOUT;
    c->deadline_ms = acme_solver_now_ms() + SOLVER_CONN_MS;
}

void acme_http01_resolved(struct acme_solver_server *s, struct solver_conn *c,
                          const struct solver_job *job)
{
    if (c->phase != HTTP_LOOKUP)
        return;
    if (job->failed)
        answer_parked(s, c, 503, NULL, job->token);
    else if (job->key_authz == NULL)
        answer_parked(s, c, 404, NULL, job->token);
    else if (!key_authz_valid(job->key_authz))
        answer_parked(s, c, 500, NULL, job->token); /* not what the store should hold */
    else
        answer_parked(s, c, 200, job->key_authz, job->token);
}

bool acme_http01_late(struct acme_solver_server *s, struct solver_conn *c)
{
    if (c->phase != HTTP_LOOKUP)
        return false;
    answer_parked(s, c, 503, NULL, NULL);
    return c->phase == HTTP_WRITE;
}
