/* The block bootstrap of a mean over scored positions (DESIGN §3: the interval of dnll,
 * which `regress` gates held-out nll with, §7), and the quantile rule every percentile of
 * the function-space metrics uses.
 *
 * Exactly: the positions of each document, in scoring order, are cut into consecutive
 * blocks of `block` (256; a document's last block may be shorter; a document with no
 * positions has no block); nb blocks in all, block j with Δ_j = Σ of its values (summed in
 * order, float64) and n_j positions. A fresh gsl_rng_mt19937 seeded `seed` (1) per call;
 * B = `resamples` (1000) resamples, each drawing nb block indices one after another with
 * gsl_rng_uniform_int(r, nb); a resample's statistic is (Σ Δ) / (Σ n) over its draws,
 * both summed in draw order; the interval is the `lo` (0.025) and `hi` (0.975) quantiles
 * of the B statistics sorted ascending, by gsl_stats_quantile_from_sorted_data (linear
 * interpolation between order statistics: numpy's default). The whole computation is
 * serial: the same numbers on every run, thread count, shard and MPI rank.
 *
 * A re-implementation needs, besides: numpy's legacy RandomState(seed) gives the same
 * 32-bit stream as GSL's mt19937 (both Matsumoto & Nishimura's 2002 seeding), drawn as
 * randint(0, 2**32, dtype=uint64); gsl_rng_uniform_int(r, n) with scale = (2^32 − 1) / n
 * (integer division) returns k = x / scale for the next output x, drawing again while
 * k >= n (tools/make_fstats_refs.py does it in numpy). */
#ifndef CKS_BOOTSTRAP_H
#define CKS_BOOTSTRAP_H

#include <stdint.h>

#define CKS_BOOT_BLOCK     256
#define CKS_BOOT_RESAMPLES 1000
#define CKS_BOOT_SEED      1
#define CKS_MAX_BOOT_DRAWS ((int64_t)1 << 40) /* resamples × blocks: hours of work past this */

typedef struct {
    int64_t block;     /* positions per block, >= 1 */
    int64_t resamples; /* B >= 1 */
    unsigned long seed;
    double lo, hi; /* quantiles in [0, 1] */
} cks_boot_options;

/* DESIGN §3's values: 256, 1000, seed 1, 0.025 and 0.975. */
void cks_boot_options_default(cks_boot_options *o);

/* The interval of mean(values) for n values in document order, doc_npos[d] of them
 * belonging to document d (Σ doc_npos = n, else CKS_EINVAL). o NULL: the defaults. With
 * no block (n = 0), or a NaN among the values, *lo = *hi = NaN. Errors: bad options
 * (CKS_EINVAL), more than CKS_MAX_BOOT_DRAWS draws (CKS_ELIMIT), no memory. */
int cks_bootstrap_mean(double *lo, double *hi, const double *values, int64_t n,
                       const int64_t *doc_npos, int64_t ndocs, const cks_boot_options *o);

/* The blocks of the above: *nb blocks with sums[j] and counts[j] (malloc'd, the caller's
 * to free). For tests and re-implementations. */
int cks_bootstrap_blocks(double **sums, int64_t **counts, int64_t *nb, const double *values,
                         int64_t n, const int64_t *doc_npos, int64_t ndocs, int64_t block);

/* The q-quantile of x[0..n) (sorted ascending) by gsl_stats_quantile_from_sorted_data:
 * h = q (n − 1), x[⌊h⌋] + (h − ⌊h⌋)(x[⌊h⌋+1] − x[⌊h⌋]) in GSL's form; NaN when n = 0. */
double cks_quantile_sorted(const double *x, int64_t n, double q);

#endif
