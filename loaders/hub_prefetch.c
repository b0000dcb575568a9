/* Fetching ahead for the hub source: a pool of worker threads takes jobs (list a
 * checkpoint, fetch one of its files) from a queue, so several files are in flight at
 * once while the caller analyses another checkpoint; wait joins a checkpoint's jobs;
 * evict deletes what this source downloaded and nothing kept needs; progress is summed
 * over the transfers in flight and handed to the caller's callback. */
#include "error.h"
#include "grow.h"
#include "hub_impl.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WAKE_NS (100 * 1000 * 1000L) /* how often a wait looks at the interrupt flag */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- progress (h->pmu) ---- */

static void report(hub_impl *h, double t)
{
    if (!h->progress)
        return;
    h->prog.ckpt = h->prog_ckpt;
    h->prog.seconds = t - h->t0;
    h->progress(h->progress_ctx, &h->prog);
    h->last = t;
}

void cks_hub_progress_start(hub_impl *h, size_t idx, uint64_t bytes)
{
    pthread_mutex_lock(&h->pmu);
    if (h->active++ == 0) { /* idle until now: a new batch */
        memset(&h->prog, 0, sizeof h->prog);
        h->t0 = now_s();
    }
    h->prog.total += bytes;
    h->prog.files_total++;
    snprintf(h->prog_ckpt, sizeof h->prog_ckpt, "%s", h->s->ckpts[idx].name);
    pthread_mutex_unlock(&h->pmu);
}

void cks_hub_progress_bytes(hub_impl *h, uint64_t n)
{
    pthread_mutex_lock(&h->pmu);
    h->prog.done += n;
    double t = now_s();
    if (t - h->last >= 0.25)
        report(h, t);
    pthread_mutex_unlock(&h->pmu);
}

void cks_hub_progress_end(hub_impl *h)
{
    pthread_mutex_lock(&h->pmu);
    h->active--;
    h->prog.files_done++;
    report(h, now_s());
    pthread_mutex_unlock(&h->pmu);
}

void cks_hub_set_progress(cks_source *s, cks_fetch_progress_fn fn, void *ctx)
{
    hub_impl *h = s->impl;
    pthread_mutex_lock(&h->pmu);
    h->progress = fn;
    h->progress_ctx = ctx;
    pthread_mutex_unlock(&h->pmu);
}

/* ---- the job queue and the workers (h->mu) ---- */

static int push_job(hub_impl *h, size_t idx, size_t file)
{
    if (h->jcount == h->jcap) { /* grow the ring, unrolled into the new array */
        size_t cap = h->jcap ? h->jcap * 2 : 64;
        hub_job *j = malloc(cap * sizeof *j);
        if (!j)
            return cks_error_set(CKS_ENOMEM, "out of memory");
        for (size_t i = 0; i < h->jcount; i++)
            j[i] = h->jobs[(h->jhead + i) % h->jcap];
        free(h->jobs);
        h->jobs = j;
        h->jcap = cap;
        h->jhead = 0;
    }
    h->jobs[(h->jhead + h->jcount++) % h->jcap] = (hub_job){idx, file};
    pthread_cond_signal(&h->cv_jobs);
    return 0;
}

static void job_done(hub_impl *h, size_t idx, int err)
{
    hub_ckpt *c = &h->ck[idx];
    if (err && !c->err) {
        c->err = err;
        c->msg = strdup(cks_error_last());
    }
    c->pending--;
    pthread_cond_broadcast(&h->cv);
}

static void run_job(hub_impl *h, hub_job j)
{
    hub_ckpt *c = &h->ck[j.idx];
    int err;
    if (j.file == SIZE_MAX) {
        err = cks_hub_ensure_listed(h, j.idx);
        pthread_mutex_lock(&h->mu);
        for (size_t k = 0; !err && k < c->tree.count; k++)
            if ((err = push_job(h, j.idx, k)) == 0)
                c->pending++;
        job_done(h, j.idx, err);
        pthread_mutex_unlock(&h->mu);
        return;
    }
    char real[PATH_MAX];
    err = cks_hub_ensure_file(h, j.idx, &c->tree.items[j.file], real, sizeof real);
    pthread_mutex_lock(&h->mu);
    job_done(h, j.idx, err);
    pthread_mutex_unlock(&h->mu);
}

static void *worker(void *arg)
{
    hub_impl *h = arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->jcount && !h->stop)
            pthread_cond_wait(&h->cv_jobs, &h->mu);
        if (h->stop)
            break;
        hub_job j = h->jobs[h->jhead];
        h->jhead = (h->jhead + 1) % h->jcap;
        h->jcount--;
        pthread_mutex_unlock(&h->mu);
        run_job(h, j);
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static int start_workers(hub_impl *h)
{
    if (!h->workers && !(h->workers = calloc(CKS_HUB_WORKERS_MAX, sizeof *h->workers)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    while (h->nworkers < h->want_workers) {
        if (pthread_create(&h->workers[h->nworkers], NULL, worker, h) != 0) {
            if (h->nworkers > 0)
                break; /* fewer threads, still working */
            return cks_error_set(CKS_ERROR, "cannot start a download thread");
        }
        h->nworkers++;
    }
    return 0;
}

void cks_hub_stop_workers(hub_impl *h)
{
    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    __atomic_store_n(&h->cancel, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&h->cv_jobs);
    pthread_mutex_unlock(&h->mu);
    for (int i = 0; i < h->nworkers; i++)
        pthread_join(h->workers[i], NULL);
    h->nworkers = 0;
}

int cks_hub_set_threads(cks_source *s, int n)
{
    hub_impl *h = s->impl;
    if (n < 1 || n > CKS_HUB_WORKERS_MAX)
        return cks_error_set(CKS_EINVAL, "fetch threads must be in [1, %d], not %d",
                             CKS_HUB_WORKERS_MAX, n);
    pthread_mutex_lock(&h->mu);
    h->want_workers = n;
    pthread_mutex_unlock(&h->mu);
    return 0;
}

/* ---- the operations of source.h ---- */

int cks_hub_prefetch(cks_source *s, size_t idx)
{
    hub_impl *h = s->impl;
    int err = 0;
    if (idx >= s->count)
        return cks_error_set(CKS_EINVAL, "checkpoint index %zu out of range", idx);
    pthread_mutex_lock(&h->mu);
    hub_ckpt *c = &h->ck[idx];
    if (!c->prefetching && (err = start_workers(h)) == 0) {
        c->pending = 1;
        if ((err = push_job(h, idx, SIZE_MAX)) == 0)
            c->prefetching = 1;
        else
            c->pending = 0;
    }
    pthread_mutex_unlock(&h->mu);
    return err;
}

/* h->mu held: waits for h->cv, or WAKE_NS when an interrupt flag is to be watched. */
static void wait_changed(hub_impl *h)
{
    if (!h->interrupt) {
        pthread_cond_wait(&h->cv, &h->mu);
        return;
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += WAKE_NS;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&h->cv, &h->mu, &until);
}

int cks_hub_wait(cks_source *s, size_t idx)
{
    hub_impl *h = s->impl;
    int err = cks_hub_prefetch(s, idx);
    if (err)
        return err;
    pthread_mutex_lock(&h->mu);
    hub_ckpt *c = &h->ck[idx];
    while (c->pending > 0 && !err) {
        if (h->interrupt && *h->interrupt) {
            /* the transfers in flight give up too: nothing will use them */
            __atomic_store_n(&h->cancel, 1, __ATOMIC_RELAXED);
            err = cks_error_set(CKS_EINTR, "interrupted while fetching %s", s->ckpts[idx].name);
        } else {
            wait_changed(h);
        }
    }
    if (!err && c->err)
        err = cks_error_set(c->err, "%s", c->msg ? c->msg : "fetching failed");
    pthread_mutex_unlock(&h->mu);
    return err;
}

void cks_hub_set_interrupt(cks_source *s, const volatile sig_atomic_t *flag)
{
    hub_impl *h = s->impl;
    pthread_mutex_lock(&h->mu);
    h->interrupt = flag;
    pthread_mutex_unlock(&h->mu);
}

int cks_hub_claim(cks_source *s, int exclusive)
{
    hub_impl *h = s->impl;
    int fd, err = cks_hub_cache_claim(&h->cache, exclusive, &fd);
    if (err)
        return err;
    pthread_mutex_lock(&h->mu);
    if (h->claim_fd >= 0)
        close(h->claim_fd); /* a new claim replaces the old one */
    h->claim_fd = fd;
    pthread_mutex_unlock(&h->mu);
    return 0;
}

typedef struct {
    char *name;
    uint64_t size;
    hub_link *links;
    size_t nlinks;
} victim;

/* h->mu held: the blobs to delete, taken out of the table's care. */
static int pick_victims(hub_impl *h, const size_t *keep, size_t nkeep, victim **out, size_t *n)
{
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    for (size_t i = 0; i < h->nblobs_cap; i++)
        if (h->blobs[i])
            h->blobs[i]->needed = 0;
    for (size_t k = 0; k < nkeep; k++) {
        const cks_hub_tree *t = &h->ck[keep[k]].tree;
        for (size_t i = 0; i < t->count; i++) {
            hub_blob *b = cks_hub_blob_find(h, t->items[i].blob);
            if (b)
                b->needed = 1;
        }
    }
    for (size_t i = 0; i < h->nblobs_cap; i++) {
        hub_blob *b = h->blobs[i];
        if (!b || !b->ours || b->state != BLOB_READY || b->needed)
            continue;
        if (cks_grow(out, &cap, *n, sizeof **out, 16) != 0)
            return CKS_ENOMEM;
        victim *v = &(*out)[(*n)++];
        if (!(v->name = strdup(b->name)))
            return cks_error_set(CKS_ENOMEM, "out of memory");
        v->size = b->size;
        v->links = b->links;
        v->nlinks = b->nlinks;
        b->links = NULL;
        b->nlinks = b->caplinks = 0;
        b->state = BLOB_NONE;
        b->ours = 0;
    }
    return 0;
}

int cks_hub_evict(cks_source *s, const size_t *keep, size_t nkeep, uint64_t *freed)
{
    hub_impl *h = s->impl;
    victim *v = NULL;
    size_t nv = 0;
    int err = 0;
    for (size_t k = 0; k < nkeep; k++) {
        if (keep[k] >= s->count)
            return cks_error_set(CKS_EINVAL, "checkpoint index %zu out of range", keep[k]);
        if ((err = cks_hub_ensure_listed(h, keep[k])) != 0)
            return err;
    }
    char *kept = calloc(s->count, 1);
    if (!kept)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t k = 0; k < nkeep; k++)
        kept[keep[k]] = 1;
    pthread_mutex_lock(&h->mu);
    err = pick_victims(h, keep, nkeep, &v, &nv);
    /* a checkpoint not kept may lose files: prefetching it again must fetch them */
    for (size_t i = 0; i < s->count; i++)
        if (!kept[i] && h->ck[i].pending == 0 && !h->ck[i].err)
            h->ck[i].prefetching = 0;
    pthread_mutex_unlock(&h->mu);
    for (size_t i = 0; i < nv; i++) {
        char blob[PATH_MAX];
        for (size_t k = 0; k < v[i].nlinks; k++) {
            cks_hub_cache_unlink(&h->cache, s->ckpts[v[i].links[k].idx].commit, v[i].links[k].path,
                                 v[i].name);
            free(v[i].links[k].path);
        }
        free(v[i].links);
        if (v[i].name &&
            cks_hub_cache_blob_path(&h->cache, v[i].name, NULL, blob, sizeof blob) == 0 &&
            unlink(blob) == 0 && freed)
            *freed += v[i].size;
        free(v[i].name);
    }
    free(v);
    free(kept);
    return err;
}
