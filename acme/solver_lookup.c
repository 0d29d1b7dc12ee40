/*
 * acme/solver_lookup.c - look-ups of http-01 tokens the server was not
 * given, off the server's loop.
 *
 * The look-up (acme_http01_lookup.find) may block, e.g. on a request to a
 * store shared by a fleet; the loop must keep answering the CA's other
 * requests meanwhile.  So a request for an unknown token becomes a job on a
 * queue that SOLVER_LOOKUP_THREADS workers take from; a finished job goes to
 * the done list and a byte to the done pipe, which the loop polls with its
 * sockets.  The pending count (queued, running, not yet collected) is
 * bounded by SOLVER_MAX_LOOKUPS, so a flood of unknown tokens costs a fixed
 * amount of memory and threads; the loop also answers a connection whose
 * look-up outlives its deadline without waiting for the worker.
 */
#include "acme/acme.h"
#include "acme/solver_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

void acme_solver_job_free(struct solver_job *j)
{
    if (j == NULL)
        return;
    if (j->key_authz != NULL) {
        OPENSSL_cleanse(j->key_authz, strlen(j->key_authz));
        free(j->key_authz);
    }
    free(j);
}

static void *worker(void *arg)
{
    struct solver_lookup *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stopping && l->queue == NULL)
            pthread_cond_wait(&l->wake, &l->mu);
        if (l->stopping)
            break;
        struct solver_job *j = l->queue;
        l->queue = j->next;
        if (l->queue == NULL)
            l->tail = NULL;
        j->next = NULL;
        pthread_mutex_unlock(&l->mu);

        struct cp_err err = {0};
        char *ka = NULL;
        enum cp_code rc = l->cfg.find(l->cfg.ctx, j->token, &ka, &err);
        if (rc != CP_OK) {
            j->failed = true;
            if (ka != NULL) { /* a find() that set it anyway */
                OPENSSL_cleanse(ka, strlen(ka));
                free(ka);
                ka = NULL;
            }
        }
        j->key_authz = ka;

        pthread_mutex_lock(&l->mu);
        /* Newest first on the done list; collect() reverses it. */
        j->next = l->done;
        l->done = j;
        char b = 'j';
        ssize_t w;
        do
            w = write(l->done_pipe[1], &b, 1);
        while (w < 0 && errno == EINTR);
        /* A full pipe already wakes the loop, which collects every job. */
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static bool pipe_flags(int fd)
{
    int a = fcntl(fd, F_GETFL);
    int b = fcntl(fd, F_GETFD);
    return a >= 0 && b >= 0 && fcntl(fd, F_SETFL, a | O_NONBLOCK) == 0 &&
           fcntl(fd, F_SETFD, b | FD_CLOEXEC) == 0;
}

enum cp_code acme_solver_lookup_start(struct acme_solver_server *s,
                                      const struct acme_http01_lookup *cfg, struct cp_err *err)
{
    if (cfg == NULL || cfg->find == NULL)
        return CP_OK;
    struct solver_lookup *l = calloc(1, sizeof *l);
    if (l == NULL)
        return cp_err_set(err, CP_ENOMEM, "http-01 server: out of memory");
    l->cfg = *cfg;
    if (l->cfg.timeout_ms == 0)
        l->cfg.timeout_ms = SOLVER_LOOKUP_MS;
    l->done_pipe[0] = l->done_pipe[1] = -1;
    if (pthread_mutex_init(&l->mu, NULL) != 0) {
        free(l);
        return cp_err_set(err, CP_EIO, "http-01 server: cannot create a mutex");
    }
    if (pthread_cond_init(&l->wake, NULL) != 0) {
        pthread_mutex_destroy(&l->mu);
        free(l);
        return cp_err_set(err, CP_EIO, "http-01 server: cannot create a condition variable");
    }
    s->lookup = l; /* from here on, acme_solver_lookup_stop() undoes it */
    if (pipe(l->done_pipe) != 0) {
        l->done_pipe[0] = l->done_pipe[1] = -1;
        return cp_err_set(err, CP_EIO, "http-01 server: pipe: %s", strerror(errno));
    }
    if (!pipe_flags(l->done_pipe[0]) || !pipe_flags(l->done_pipe[1]))
        return cp_err_set(err, CP_EIO, "http-01 server: fcntl: %s", strerror(errno));
    /* Workers take no signals, as the loop's thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = 0;
    for (size_t i = 0; i < SOLVER_LOOKUP_THREADS && e == 0; i++) {
        e = pthread_create(&l->threads[i], NULL, worker, l);
        if (e == 0)
            l->nthreads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0)
        return cp_err_set(err, CP_EIO, "http-01 server: cannot start a look-up thread: %s",
                          strerror(e));
    return CP_OK;
}

bool acme_solver_lookup_submit(struct acme_solver_server *s, const struct solver_conn *c,
                               const char *token)
{
    struct solver_lookup *l = s->lookup;
    size_t len = strlen(token);
    if (l == NULL || len > SOLVER_MAX_TOKEN)
        return false;
    struct solver_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return false;
    j->slot = c->slot;
    j->conn_id = c->id;
    memcpy(j->token, token, len + 1);

    bool queued = false;
    pthread_mutex_lock(&l->mu);
    if (l->pending < SOLVER_MAX_LOOKUPS && !l->stopping) {
        if (l->tail != NULL)
            l->tail->next = j;
        else
            l->queue = j;
        l->tail = j;
        l->pending++;
        queued = true;
        pthread_cond_signal(&l->wake);
    }
    pthread_mutex_unlock(&l->mu);
    if (!queued)
        free(j);
    return queued;
}

struct solver_job *acme_solver_lookup_collect(struct acme_solver_server *s)
{
    struct solver_lookup *l = s->lookup;
    if (l == NULL)
        return NULL;
    char sink[256];
    while (read(l->done_pipe[0], sink, sizeof sink) > 0)
        ;
    pthread_mutex_lock(&l->mu);
    struct solver_job *newest = l->done, *oldest = NULL;
    l->done = NULL;
    for (struct solver_job *j = newest; j != NULL;) {
        struct solver_job *next = j->next;
        j->next = oldest;
        oldest = j;
        l->pending--;
        j = next;
    }
    pthread_mutex_unlock(&l->mu);
    return oldest;
}

size_t acme_solver_lookups_pending(struct acme_solver_server *s)
{
    if (s == NULL || s->lookup == NULL)
        return 0;
    pthread_mutex_lock(&s->lookup->mu);
    size_t n = s->lookup->pending;
    pthread_mutex_unlock(&s->lookup->mu);
    return n;
}

static void free_list(struct solver_job *j)
{
    while (j != NULL) {
        struct solver_job *next = j->next;
        acme_solver_job_free(j);
        j = next;
    }
}

void acme_solver_lookup_stop(struct solver_lookup *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&l->mu);
    l->stopping = true;
    pthread_cond_broadcast(&l->wake);
    pthread_mutex_unlock(&l->mu);
    /* A running find() returns by its own deadline (a store request's
     * time-out): its context must stay valid until then. */
    for (size_t i = 0; i < l->nthreads; i++)
        pthread_join(l->threads[i], NULL);
    free_list(l->queue);
    free_list(l->done);
    for (size_t i = 0; i < 2; i++)
        if (l->done_pipe[i] >= 0)
            close(l->done_pipe[i]);
    pthread_cond_destroy(&l->wake);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
