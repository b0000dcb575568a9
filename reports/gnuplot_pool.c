/* The gnuplot worker pool of gnuplot_pool.h: a bounded queue under one mutex, workers that
 * run cks_gnuplot_run, the first error kept with its message. */
#include "gnuplot_pool.h"
#include "error.h"
#include "gnuplot.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *script;
    size_t len;
    char what[256];
} job;

struct cks_gnuplot_pool {
    char *exe, *cwd;
    int timeout_ms, nthreads;
    pthread_t threads[CKS_GNUPLOT_MAX_JOBS];
    pthread_mutex_t mu;
    pthread_cond_t changed; /* a job was queued or finished, or the pool is stopping */
    job *queue;             /* ring of cap jobs */
    size_t cap, head, count, running;
    int stop;       /* workers exit once the queue is empty */
    int err;        /* first failure */
    char msg[1024]; /* its message */
};

static void *worker(void *arg)
{
    cks_gnuplot_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->count == 0 && !p->stop)
            pthread_cond_wait(&p->changed, &p->mu);
        if (p->count == 0)
            break;
        job j = p->queue[p->head];
        p->head = (p->head + 1) % p->cap;
        p->count--;
        int skip = p->err != 0; /* after a failure the rest is not drawn */
        p->running++;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->mu);
        int err =
            skip ? 0 : cks_gnuplot_run(p->exe, p->cwd, j.script, j.len, p->timeout_ms, j.what);
        free(j.script);
        pthread_mutex_lock(&p->mu);
        if (err && !p->err) {
            p->err = err;
            snprintf(p->msg, sizeof p->msg, "%s", cks_error_last());
        }
        p->running--;
        pthread_cond_broadcast(&p->changed);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int cks_gnuplot_pool_new(cks_gnuplot_pool **out, const char *exe, const char *cwd, int jobs,
                         int timeout_ms)
{
    if (jobs < 1 || jobs > CKS_GNUPLOT_MAX_JOBS)
        return cks_error_set(CKS_EINVAL, "gnuplot jobs must be 1..%d, not %d", CKS_GNUPLOT_MAX_JOBS,
                             jobs);
    cks_gnuplot_pool *p = calloc(1, sizeof *p);
    if (!p)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    p->exe = strdup(exe);
    p->cwd = strdup(cwd);
    p->cap = 2 * (size_t)jobs;
    p->queue = calloc(p->cap, sizeof *p->queue);
    p->timeout_ms = timeout_ms;
    if (!p->exe || !p->cwd || !p->queue) {
        cks_gnuplot_pool_free(p);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->changed, NULL);
    for (int i = 0; i < jobs; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0)
            break;
        p->nthreads++;
    }
    if (p->nthreads == 0) {
        cks_gnuplot_pool_free(p);
        return cks_error_set(CKS_ERROR, "cannot start a thread for gnuplot");
    }
    *out = p;
    return 0;
}

int cks_gnuplot_pool_submit(cks_gnuplot_pool *p, char *script, size_t len, const char *what)
{
    pthread_mutex_lock(&p->mu);
    while (p->count == p->cap && !p->err)
        pthread_cond_wait(&p->changed, &p->mu);
    int err = p->err;
    if (!err) {
        job *j = &p->queue[(p->head + p->count) % p->cap];
        j->script = script;
        j->len = len;
        snprintf(j->what, sizeof j->what, "%s", what);
        p->count++;
        pthread_cond_broadcast(&p->changed);
    }
    pthread_mutex_unlock(&p->mu);
    if (err) {
        free(script);
        return cks_error_set(err, "%s", p->msg);
    }
    return 0;
}

int cks_gnuplot_pool_wait(cks_gnuplot_pool *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->count > 0 || p->running > 0)
        pthread_cond_wait(&p->changed, &p->mu);
    int err = p->err;
    pthread_mutex_unlock(&p->mu);
    return err ? cks_error_set(err, "%s", p->msg) : 0;
}

void cks_gnuplot_pool_free(cks_gnuplot_pool *p)
{
    if (!p)
        return;
    if (p->nthreads) {
        pthread_mutex_lock(&p->mu);
        for (size_t i = 0; i < p->count; i++) /* dropped unrun */
            free(p->queue[(p->head + i) % p->cap].script);
        p->count = 0;
        p->stop = 1;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->nthreads; i++)
            pthread_join(p->threads[i], NULL);
        pthread_cond_destroy(&p->changed);
        pthread_mutex_destroy(&p->mu);
    }
    free(p->queue);
    free(p->exe);
    free(p->cwd);
    free(p);
}
