/*
 * acme/solver_loop.c - the poll() loop of a built-in challenge server.
 *
 * One thread per server, no thread per connection: the loop keeps a fixed
 * table of at most SOLVER_MAX_CONNS non-blocking connections, waits on all of
 * them, the listening sockets and the stop pipe at once, and hands each ready
 * connection to its protocol's step function (acme_http01_step(),
 * acme_tlsalpn01_step()), which does only what the socket allows now.
 *
 * Why a connection cannot hold the server: its deadline is fixed when it is
 * accepted (SOLVER_CONN_MS) and is not moved by the bytes it sends, so a
 * client that trickles a byte now and then is closed on time like an idle
 * one; and when the table is full, the oldest connection that has not been
 * answered yet is dropped for the new one.  A CA's validation request is sent
 * right after its connection is accepted, so it is answered unless someone
 * opens SOLVER_MAX_CONNS connections within that round trip.
 *
 * A request for a token the server does not hold, when it has a look-up,
 * parks its connection (events 0) and queues a job (solver_lookup.c); the
 * done pipe, polled here, says when jobs finished, and their connections
 * are answered in the same turn.  A parked connection whose look-up passes
 * its deadline is answered 503 at once.
 */
#include "acme/acme.h"
#include "acme/solver_int.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ACCEPT_BATCH 64  /* accepts per listening socket per turn: others get served too */
#define EMFILE_PAUSE 100 /* ms to wait when no descriptor can be had at all */

long long acme_solver_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct loop {
    struct acme_solver_server *s;
    struct solver_conn conns[SOLVER_MAX_CONNS];
    size_t nopen;
    unsigned long long next_id;
    struct pollfd pfd[2 + SOLVER_MAX_LISTEN + SOLVER_MAX_CONNS];
    size_t slot_of[SOLVER_MAX_CONNS]; /* pfd index -> conns index, for this turn */
};

static void conn_close(struct loop *l, struct solver_conn *c)
{
    if (c->fd < 0)
        return;
    if (l->s->kind == SOLVER_HTTP01)
        acme_http01_release(c);
    else
        acme_tlsalpn01_release(c);
    close(c->fd);
    memset(c, 0, sizeof *c);
    c->fd = -1;
    l->nopen--;
}

/* The connection to give up for a new one: the oldest not yet answered, or,
 * when every one is being answered, the oldest of all. */
static struct solver_conn *victim(struct loop *l)
{
    struct solver_conn *idle = NULL, *any = NULL;
    for (size_t i = 0; i < SOLVER_MAX_CONNS; i++) {
        struct solver_conn *c = &l->conns[i];
        if (c->fd < 0)
            continue;
        if (any == NULL || c->id < any->id)
            any = c;
        if (!c->answered && (idle == NULL || c->id < idle->id))
            idle = c;
    }
    return idle != NULL ? idle : any;
}

static struct solver_conn *free_slot(struct loop *l)
{
    for (size_t i = 0; i < SOLVER_MAX_CONNS; i++)
        if (l->conns[i].fd < 0)
            return &l->conns[i];
    return NULL;
}

static bool out_of_fds(int e)
{
    return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

/* Accept what is waiting on one listening socket, up to ACCEPT_BATCH. */
static void accept_some(struct loop *l, int lfd)
{
    for (int n = 0; n < ACCEPT_BATCH; n++) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0 && out_of_fds(errno) && l->nopen > 0) {
            /* The process is short of descriptors: ours go first. */
            conn_close(l, victim(l));
            fd = accept(lfd, NULL, NULL);
        }
        if (fd < 0) {
            if (out_of_fds(errno)) {
                /* Not even one: do not spin on the ready socket. */
                struct pollfd q = {.fd = l->s->stop_pipe[0], .events = POLLIN};
                (void)poll(&q, 1, EMFILE_PAUSE);
            }
            return; /* EAGAIN, a connection reset before accept, ... */
        }
        if (!acme_solver_fd_flags(fd)) {
            close(fd);
            continue;
        }
        /* Only now that there is a new one: make room for it. */
        if (l->nopen == SOLVER_MAX_CONNS)
            conn_close(l, victim(l));
        struct solver_conn *c = free_slot(l);
        memset(c, 0, sizeof *c);
        c->fd = fd;
        c->slot = (size_t)(c - l->conns);
        c->id = l->next_id++;
        c->deadline_ms = acme_solver_now_ms() + SOLVER_CONN_MS;
        c->events = POLLIN; /* both protocols start with the client speaking */
        l->nopen++;
    }
}

static bool step(struct loop *l, struct solver_conn *c)
{
    return l->s->kind == SOLVER_HTTP01 ? acme_http01_step(l->s, c) : acme_tlsalpn01_step(l->s, c);
}

/* Answer the connections whose look-ups finished; the results of those
 * that went meanwhile (closed, or their slot taken by a newer one) are
 * dropped. */
static void collect(struct loop *l)
{
    struct solver_job *j = acme_solver_lookup_collect(l->s);
    while (j != NULL) {
        struct solver_job *next = j->next;
        struct solver_conn *c = j->slot < SOLVER_MAX_CONNS ? &l->conns[j->slot] : NULL;
        if (c != NULL && c->fd >= 0 && c->id == j->conn_id)
            acme_http01_resolved(l->s, c, j);
        acme_solver_job_free(j);
        j = next;
    }
}

/* poll()'s time-out: until the nearest deadline, -1 with none. */
static int next_timeout(const struct loop *l, long long now)
{
    long long best = -1;
    for (size_t i = 0; i < SOLVER_MAX_CONNS; i++) {
        const struct solver_conn *c = &l->conns[i];
        if (c->fd < 0)
            continue;
        long long left = c->deadline_ms > now ? c->deadline_ms - now : 0;
        if (best < 0 || left < best)
            best = left;
    }
    return best < 0 ? -1 : (int)best + 1; /* +1: wake after, not just before */
}

void *acme_solver_loop(void *arg)
{
    struct loop *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    l->s = arg;
    for (size_t i = 0; i < SOLVER_MAX_CONNS; i++)
        l->conns[i].fd = -1;
    struct acme_solver_server *s = l->s;

    for (;;) {
        size_t np = 0;
        l->pfd[np++] = (struct pollfd){.fd = s->stop_pipe[0], .events = POLLIN};
        /* Finished look-ups (a negative fd is skipped by poll()). */
        l->pfd[np++] = (struct pollfd){.fd = s->lookup != NULL ? s->lookup->done_pipe[0] : -1,
                                       .events = POLLIN};
        for (size_t i = 0; i < s->nlisten; i++)
            l->pfd[np++] = (struct pollfd){.fd = s->listen_fds[i], .events = POLLIN};
        size_t first_conn = np;
        for (size_t i = 0; i < SOLVER_MAX_CONNS; i++) {
            if (l->conns[i].fd < 0)
                continue;
            l->slot_of[np - first_conn] = i;
            l->pfd[np++] = (struct pollfd){.fd = l->conns[i].fd, .events = l->conns[i].events};
        }

        int r = poll(l->pfd, (nfds_t)np, next_timeout(l, acme_solver_now_ms()));
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0 && (l->pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0)
            break;

        /* Connections first: the ones accepted below have not been polled. */
        for (size_t k = first_conn; r > 0 && k < np; k++) {
            if (l->pfd[k].revents == 0)
                continue;
            struct solver_conn *c = &l->conns[l->slot_of[k - first_conn]];
            if (!step(l, c))
                conn_close(l, c);
        }
        if (r > 0 && (l->pfd[1].revents & POLLIN) != 0)
            collect(l);
        long long now = acme_solver_now_ms();
        for (size_t i = 0; i < SOLVER_MAX_CONNS; i++) {
            struct solver_conn *c = &l->conns[i];
            if (c->fd < 0 || c->deadline_ms > now)
                continue;
            /* A look-up that ran late is answered, not dropped. */
            if (s->kind == SOLVER_HTTP01 && acme_http01_late(s, c))
                continue;
            conn_close(l, c);
        }
        for (size_t i = 0; r > 0 && i < s->nlisten; i++) {
            if ((l->pfd[2 + i].revents & POLLIN) != 0)
                accept_some(l, s->listen_fds[i]);
        }
    }

    for (size_t i = 0; i < SOLVER_MAX_CONNS; i++)
        conn_close(l, &l->conns[i]);
    free(l);
    return NULL;
}
