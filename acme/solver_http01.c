/*
 * acme/solver_http01.c - the built-in http-01 server (RFC 8555 §8.3) and the
 * server machinery it shares with tls-alpn-01 (see acme/solver_int.h).
 *
 * The HTTP side is deliberately tiny: read one request head (at most 8 KiB,
 * within SOLVER_CONN_MS), answer GET or HEAD of
 * /.well-known/acme-challenge/<registered token> with the key authorization,
 * anything else with 404, and close.  No keep-alive, no bodies read, no
 * redirects: the CA's validation requests need nothing more.
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

/* ---------------------------------------------------------------- timing */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timespec deadline_in(long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

struct timespec acme_solver_deadline(void)
{
    return deadline_in(SOLVER_CONN_MS);
}

static bool stop_requested(const struct pollfd *p)
{
    return (p->revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

int acme_solver_wait(struct acme_solver_server *s, int fd, short events,
                     const struct timespec *deadline)
{
    long long end = (long long)deadline->tv_sec * 1000 + deadline->tv_nsec / 1000000;
    for (;;) {
        long long left = end - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p[2] = {{.fd = s->stop_pipe[0], .events = POLLIN},
                              {.fd = fd, .events = events}};
        int r = poll(p, 2, left > 1000 ? 1000 : (int)left);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (stop_requested(&p[0]))
            return 0;
        if (p[1].revents != 0)
            return 1; /* ready, or an error the next read/write reports */
    }
}

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

enum cp_code acme_solver_server_add(struct acme_solver_server *s, const char *name_or_token,
                                    const char *key_authz, struct cp_err *err)
{
    if (s == NULL || name_or_token == NULL || key_authz == NULL)
        return cp_err_set(err, CP_EINVAL, "challenge server: missing argument");
    /* The key in the table: the token as is, or the lower-case name. */
    char name[SOLVER_MAX_TOKEN + 1];
    enum cp_code rc = CP_OK;
    if (s->kind == SOLVER_HTTP01) {
        if (!acme_token_valid(name_or_token))
            return cp_err_set(err, CP_EINVAL, "http-01 token is not 1 to %d base64url characters",
                              SOLVER_MAX_TOKEN);
        memcpy(name, name_or_token, strlen(name_or_token) + 1);
    } else {
        rc = acme_tlsalpn01_name(name_or_token, name, err);
        if (rc != CP_OK)
            return rc;
    }

    if (!key_authz_valid(key_authz))
        return cp_err_set(err, CP_EINVAL,
                          "key authorization for %s is not token.thumbprint (base64url, at most "
                          "%d characters)",
                          name, SOLVER_MAX_KEY_AUTHZ);

    struct solver_entry e = {0};
    /* Made outside the lock: key generation is the slow part. */
    if (s->kind == SOLVER_TLSALPN01)
        rc = acme_tlsalpn01_cert(name, key_authz, &e.pkey, &e.cert, err);
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

/* ------------------------------------------------------------- lifecycle */

static bool fd_flags(int fd, int fl, int fdfl)
{
    int a = fcntl(fd, F_GETFL);
    int b = fcntl(fd, F_GETFD);
    return a >= 0 && b >= 0 && fcntl(fd, F_SETFL, a | fl) == 0 && fcntl(fd, F_SETFD, b | fdfl) == 0;
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

static void handle_http(struct acme_solver_server *s, int fd);

static void serve(struct acme_solver_server *s, int fd)
{
    if (!fd_flags(fd, O_NONBLOCK, FD_CLOEXEC))
        return;
    if (s->kind == SOLVER_HTTP01)
        handle_http(s, fd);
    else
        acme_tlsalpn01_handle(s, fd);
}

static void *server_main(void *arg)
{
    struct acme_solver_server *s = arg;
    for (;;) {
        struct pollfd p[1 + SOLVER_MAX_LISTEN];
        p[0] = (struct pollfd){.fd = s->stop_pipe[0], .events = POLLIN};
        for (size_t i = 0; i < s->nlisten; i++)
            p[1 + i] = (struct pollfd){.fd = s->listen_fds[i], .events = POLLIN};
        int r = poll(p, 1 + s->nlisten, -1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (stop_requested(&p[0]))
            break;
        for (size_t i = 0; i < s->nlisten; i++) {
            if ((p[1 + i].revents & POLLIN) == 0)
                continue;
            int c = accept(s->listen_fds[i], NULL, NULL);
            if (c < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                    /* Out of resources: do not spin on the ready socket. */
                    struct pollfd q = {.fd = s->stop_pipe[0], .events = POLLIN};
                    (void)poll(&q, 1, 100);
                }
                continue;
            }
            serve(s, c);
            close(c);
        }
    }
    return NULL;
}

enum cp_code acme_solver_server_run(struct acme_solver_server *s, struct cp_err *err)
{
    /* The thread takes no signals: they stay with the application's threads,
     * and a peer that resets the connection cannot SIGPIPE us (OpenSSL writes
     * with write(), not send(MSG_NOSIGNAL)). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&s->thread, NULL, server_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0)
        return cp_err_set(err, CP_EIO, "challenge server: cannot start a thread: %s", strerror(e));
    s->running = true;
    return CP_OK;
}

enum cp_code acme_http01_server_start(const char *addr, int port, struct acme_solver_server **out,
                                      struct cp_err *err)
{
    if (out == NULL)
        return cp_err_set(err, CP_EINVAL, "http-01 server: no result pointer");
    struct acme_solver_server *s = NULL;
    enum cp_code rc = acme_solver_server_new(SOLVER_HTTP01, addr, port, &s, err);
    if (rc != CP_OK)
        return rc;
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
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* ------------------------------------------------------------------ HTTP */

/* Send all of buf before the deadline; false on error, time-out or stop. */
static bool send_all(struct acme_solver_server *s, int fd, const char *buf, size_t len,
                     const struct timespec *deadline)
{
    while (len > 0) {
        ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
        if (w > 0) {
            buf += w;
            len -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
            acme_solver_wait(s, fd, POLLOUT, deadline) == 1)
            continue;
        return false;
    }
    return true;
}

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

enum head_result { HEAD_OK, HEAD_TOO_BIG, HEAD_GONE };

static enum head_result read_head(struct acme_solver_server *s, int fd, char *buf, size_t cap,
                                  size_t *len, const struct timespec *deadline)
{
    *len = 0;
    for (;;) {
        if (*len == cap)
            return HEAD_TOO_BIG;
        ssize_t r = recv(fd, buf + *len, cap - *len, 0);
        if (r > 0) {
            /* Only the new bytes and the 2 before them can end the head. */
            size_t from = *len > 2 ? *len - 2 : 0;
            *len += (size_t)r;
            if (head_complete(buf, from, *len))
                return HEAD_OK;
            continue;
        }
        if (r == 0)
            return HEAD_GONE;
        if (errno == EINTR)
            continue;
        if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
            acme_solver_wait(s, fd, POLLIN, deadline) == 1)
            continue;
        return HEAD_GONE;
    }
}

/*
 * Parse "METHOD SP target SP HTTP/1.x" and decide.  Returns the status; for
 * 200, *body is a heap copy of the key authorization (wiped by the caller).
 */
static int decide(struct acme_solver_server *s, char *buf, size_t len, bool *head_only, char **body)
{
    *head_only = false;
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
    if (e == NULL)
        return 404;
    return *body == NULL ? 500 : 200;
}

/* After the answer: stop sending, read what the client still sends (briefly,
 * boundedly) so that closing does not reset the connection before the client
 * has read the response. */
static void linger_close(struct acme_solver_server *s, int fd)
{
    char sink[4096];
    size_t total = 0;
    struct timespec deadline = deadline_in(HTTP_LINGER_MS);
    (void)shutdown(fd, SHUT_WR);
    while (total < HTTP_LINGER_MAX) {
        ssize_t r = recv(fd, sink, sizeof sink, 0);
        if (r > 0) {
            total += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
            acme_solver_wait(s, fd, POLLIN, &deadline) == 1)
            continue;
        break;
    }
}

static void handle_http(struct acme_solver_server *s, int fd)
{
    struct timespec deadline = acme_solver_deadline();
    char *buf = malloc(HTTP_MAX_HEAD + 1);
    if (buf == NULL)
        return;
    size_t len = 0;
    enum head_result hr = read_head(s, fd, buf, HTTP_MAX_HEAD, &len, &deadline);
    if (hr == HEAD_GONE)
        goto out;

    int status = 431;
    bool head_only = false;
    char *body = NULL;
    if (hr == HEAD_OK)
        status = decide(s, buf, len, &head_only, &body);

    const char *reason = status == 200   ? "OK"
                         : status == 400 ? "Bad Request"
                         : status == 404 ? "Not Found"
                         : status == 431 ? "Request Header Fields Too Large"
                                         : "Internal Server Error";
    char fallback[64];
    if (body == NULL)
        snprintf(fallback, sizeof fallback, "%s\n", reason);
    const char *text = body != NULL ? body : fallback;
    size_t text_len = strlen(text);

    char hdr[256];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, reason, text_len);
    if (n > 0 && (size_t)n < sizeof hdr) {
        if (status == 200)
            atomic_fetch_add(&s->hits, 1); /* counted before the client can see it */
        if (send_all(s, fd, hdr, (size_t)n, &deadline) &&
            (head_only || send_all(s, fd, text, text_len, &deadline)))
            linger_close(s, fd);
    }
    if (body != NULL) {
        OPENSSL_cleanse(body, strlen(body));
        free(body);
    }
out:
    OPENSSL_cleanse(buf, HTTP_MAX_HEAD + 1);
    free(buf);
}
