/* Several gnuplots at once: plots are independent and gnuplot is single-threaded, so a
 * run's plots are drawn by up to `jobs` worker threads, each running one gnuplot
 * (cks_gnuplot_run) at a time. Scripts are queued by one producer thread; the queue holds
 * at most 2 x jobs scripts (a K2 heatmap script is ~2 MB), so building never runs far
 * ahead of drawing. The first failure stops the pool: later submissions return it, and
 * cks_gnuplot_pool_wait returns it with its message (set on the caller's thread). */
#ifndef CKS_GNUPLOT_POOL_H
#define CKS_GNUPLOT_POOL_H

#include <stddef.h>

#define CKS_GNUPLOT_MAX_JOBS 64

typedef struct cks_gnuplot_pool cks_gnuplot_pool;

/* jobs in 1..CKS_GNUPLOT_MAX_JOBS; exe and cwd are copied. */
int cks_gnuplot_pool_new(cks_gnuplot_pool **out, const char *exe, const char *cwd, int jobs,
                         int timeout_ms);

/* Queues script[0..len) (taking ownership: it is freed after the run) for the plot named
 * what. Blocks while the queue is full. Returns 0, or the error of an earlier job (the
 * script is then freed unrun). */
int cks_gnuplot_pool_submit(cks_gnuplot_pool *p, char *script, size_t len, const char *what);

/* Waits until every queued script has run; returns 0 or the first failure. */
int cks_gnuplot_pool_wait(cks_gnuplot_pool *p);

/* Waits for the running jobs, drops the queued ones, joins the threads, frees. NULL-safe. */
void cks_gnuplot_pool_free(cks_gnuplot_pool *p);

#endif
