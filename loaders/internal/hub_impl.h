/* Private contract between the files of the hub source: source_hub.c (opening, listings,
 * on-demand fetch), hub_fetch.c (downloading one blob) and hub_prefetch.c (background
 * workers, prefetch, wait, evict). One mutex guards all shared state. */
#ifndef CKS_HUB_IMPL_H
#define CKS_HUB_IMPL_H

#include "http.h"
#include "hub_api.h"
#include "hub_cache.h"
#include "source_impl.h"

#include <pthread.h>

#define CKS_HUB_WORKERS_DEFAULT 4
#define CKS_HUB_WORKERS_MAX     64

enum { BLOB_NONE = 0, BLOB_BUSY, BLOB_READY, BLOB_FAILED };

typedef struct {
    size_t idx;
    char *path;
} hub_link;

typedef struct {
    char *name; /* sha256 or git blob id */
    uint64_t size;
    int state;
    int ours;   /* this source downloaded it (so --evict may delete it) */
    int needed; /* scratch for evict */
    int err;    /* BLOB_FAILED: code and message */
    char *msg;
    hub_link *links; /* snapshot links this source created to it */
    size_t nlinks, caplinks;
} hub_blob;

typedef struct {
    int listed, listing;
    cks_hub_tree tree;
    size_t pending; /* prefetch jobs not finished */
    int prefetching;
    int err; /* first prefetch failure */
    char *msg;
    int ref_written;
} hub_ckpt;

typedef struct {
    size_t idx;
    size_t file; /* SIZE_MAX: list the checkpoint, then queue its files */
} hub_job;

typedef struct {
    cks_source *s;
    char repo[200];
    char *endpoint, *token;
    long timeout;
    cks_hub_cache cache;
    int cache_made;

    pthread_mutex_t mu;
    pthread_cond_t cv;      /* a blob, listing or checkpoint changed state */
    pthread_cond_t cv_jobs; /* a job was queued, or stop */
    hub_ckpt *ck;           /* one per checkpoint of s */
    hub_blob **blobs;       /* open-addressing table, nblobs_cap slots */
    size_t nblobs, nblobs_cap;
    hub_job *jobs;
    size_t jhead, jcount, jcap; /* a ring */
    cks_http **idle;            /* handles not in use */
    size_t nidle, capidle;
    pthread_t *workers;
    int nworkers, want_workers, stop;
    int cancel;                             /* read by transfers (atomic) */
    const volatile sig_atomic_t *interrupt; /* cks_source_set_interrupt (h->mu) */
    int claim_fd;                           /* cks_source_claim_cache's lock, or -1 */

    pthread_mutex_t pmu; /* progress */
    void (*progress)(void *ctx, const cks_fetch_progress *p);
    void *progress_ctx;
    int active;
    cks_fetch_progress prog;
    double t0, last;
    char prog_ckpt[256];
} hub_impl;

/* hub_fetch.c: downloads blob e of checkpoint idx into the cache (resume, hash check,
 * a second try after a mismatch, publish by rename). *downloaded = 1 when this call
 * wrote the blob (0 when it was there already). Called without h->mu held. */
int cks_hub_download(hub_impl *h, cks_http *http, size_t idx, const cks_hub_entry *e,
                     int *downloaded);
/* "hf://ORG/NAME@branch:path" into buf. */
const char *cks_hub_display(const hub_impl *h, size_t idx, const char *path, char *buf, size_t cap);
/* An error for an HTTP refusal (401/403 names HF_TOKEN, 404 what was missing). */
int cks_hub_http_error(const hub_impl *h, const cks_http_result *r, const char *what);

/* source_hub.c */
int cks_hub_http_acquire(hub_impl *h, cks_http **out);
void cks_hub_http_release(hub_impl *h, cks_http *http);
/* Lists checkpoint idx once (the tree API, all pages); later calls return at once. */
int cks_hub_ensure_listed(hub_impl *h, size_t idx);
/* Makes file e of checkpoint idx present in the cache; its resolved path in real. */
int cks_hub_ensure_file(hub_impl *h, size_t idx, const cks_hub_entry *e, char *real, size_t cap);
/* The table entry of a blob, created when missing (h->mu held). NULL: out of memory. */
hub_blob *cks_hub_blob(hub_impl *h, const char *name, uint64_t size);
hub_blob *cks_hub_blob_find(hub_impl *h, const char *name);

/* progress (hub_prefetch.c) */
void cks_hub_progress_start(hub_impl *h, size_t idx, uint64_t bytes);
void cks_hub_progress_bytes(hub_impl *h, uint64_t n);
void cks_hub_progress_end(hub_impl *h);

/* hub_prefetch.c: the operations of source.h */
int cks_hub_prefetch(cks_source *s, size_t idx);
int cks_hub_wait(cks_source *s, size_t idx);
int cks_hub_evict(cks_source *s, const size_t *keep, size_t nkeep, uint64_t *freed);
void cks_hub_set_progress(cks_source *s, cks_fetch_progress_fn fn, void *ctx);
int cks_hub_set_threads(cks_source *s, int n);
int cks_hub_claim(cks_source *s, int exclusive);
void cks_hub_set_interrupt(cks_source *s, const volatile sig_atomic_t *flag);
void cks_hub_stop_workers(hub_impl *h);

#endif
