/* The block bootstrap of DESIGN §3 with GSL's Mersenne Twister, and the quantile rule
 * (see bootstrap.h). */
#include "bootstrap.h"
#include "checked.h"
#include "error.h"

#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdlib.h>

void cks_boot_options_default(cks_boot_options *o)
{
    o->block = CKS_BOOT_BLOCK;
    o->resamples = CKS_BOOT_RESAMPLES;
    o->seed = CKS_BOOT_SEED;
    o->lo = 0.025;
    o->hi = 0.975;
}

double cks_quantile_sorted(const double *x, int64_t n, double q)
{
    if (n <= 0)
        return NAN;
    return gsl_stats_quantile_from_sorted_data(x, 1, (size_t)n, q);
}

static int check_docs(int64_t n, const int64_t *doc_npos, int64_t ndocs, int64_t block, int64_t *nb)
{
    int64_t total = 0, blocks = 0;
    if (block < 1 || ndocs < 0 || n < 0)
        return cks_error_set(CKS_EINVAL, "bootstrap: block %lld, %lld documents, %lld values",
                             (long long)block, (long long)ndocs, (long long)n);
    for (int64_t d = 0; d < ndocs; d++) {
        if (doc_npos[d] < 0 || doc_npos[d] > n - total)
            return cks_error_set(CKS_EINVAL, "bootstrap: documents hold more than the %lld values",
                                 (long long)n);
        total += doc_npos[d];
        blocks += (doc_npos[d] + block - 1) / block;
    }
    if (total != n)
        return cks_error_set(CKS_EINVAL, "bootstrap: documents hold %lld of the %lld values",
                             (long long)total, (long long)n);
    *nb = blocks;
    return 0;
}

int cks_bootstrap_blocks(double **sums, int64_t **counts, int64_t *nb, const double *values,
                         int64_t n, const int64_t *doc_npos, int64_t ndocs, int64_t block)
{
    int64_t blocks = 0;
    int err = check_docs(n, doc_npos, ndocs, block, &blocks);
    if (err)
        return err;
    double *s = malloc((size_t)(blocks ? blocks : 1) * sizeof *s);
    int64_t *c = malloc((size_t)(blocks ? blocks : 1) * sizeof *c);
    if (!s || !c) {
        free(s);
        free(c);
        return cks_error_set(CKS_ENOMEM, "bootstrap: out of memory for %lld blocks",
                             (long long)blocks);
    }
    int64_t j = 0, at = 0;
    for (int64_t d = 0; d < ndocs; at += doc_npos[d], d++)
        for (int64_t p = 0; p < doc_npos[d]; p += block, j++) {
            int64_t k = doc_npos[d] - p < block ? doc_npos[d] - p : block;
            double sum = 0;
            for (int64_t i = 0; i < k; i++)
                sum += values[at + p + i];
            s[j] = sum;
            c[j] = k;
        }
    *sums = s;
    *counts = c;
    *nb = blocks;
    return 0;
}

/* B resample statistics into stat[], sorted. */
static int resample(double *stat, const double *sums, const int64_t *counts, int64_t nb,
                    const cks_boot_options *o)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r)
        return cks_error_set(CKS_ENOMEM, "bootstrap: out of memory");
    gsl_rng_set(r, o->seed);
    for (int64_t b = 0; b < o->resamples; b++) {
        double sd = 0;
        int64_t sn = 0;
        for (int64_t j = 0; j < nb; j++) {
            unsigned long k = gsl_rng_uniform_int(r, (unsigned long)nb);
            sd += sums[k];
            sn += counts[k];
        }
        stat[b] = sd / (double)sn;
    }
    gsl_rng_free(r);
    gsl_sort(stat, 1, (size_t)o->resamples);
    return 0;
}

int cks_bootstrap_mean(double *lo, double *hi, const double *values, int64_t n,
                       const int64_t *doc_npos, int64_t ndocs, const cks_boot_options *o)
{
    cks_boot_options dflt;
    double *sums = NULL, *stat = NULL;
    int64_t *counts = NULL, nb, draws;
    int err;
    if (!o) {
        cks_boot_options_default(&dflt);
        o = &dflt;
    }
    *lo = *hi = NAN;
    if (o->resamples < 1 || !(o->lo >= 0 && o->lo <= 1) || !(o->hi >= 0 && o->hi <= 1))
        return cks_error_set(CKS_EINVAL, "bootstrap: %lld resamples, quantiles %g and %g",
                             (long long)o->resamples, o->lo, o->hi);
    if ((err = cks_bootstrap_blocks(&sums, &counts, &nb, values, n, doc_npos, ndocs, o->block)))
        return err;
    for (int64_t i = 0; i < n; i++)
        if (isnan(values[i]))
            nb = 0; /* no number from NaN values */
    if (nb == 0)
        goto done;
    /* gsl_rng_uniform_int needs nb <= 2^32 - 1, mt19937's largest output (else GSL calls
       its error handler, which aborts) */
    if ((uint64_t)nb > 0xffffffffu || cks_mul_i64(nb, o->resamples, &draws) ||
        draws > CKS_MAX_BOOT_DRAWS) {
        err = cks_error_set(CKS_ELIMIT, "bootstrap: %lld blocks x %lld resamples is too many",
                            (long long)nb, (long long)o->resamples);
        goto done;
    }
    if (!(stat = malloc((size_t)o->resamples * sizeof *stat))) {
        err = cks_error_set(CKS_ENOMEM, "bootstrap: out of memory");
        goto done;
    }
    if ((err = resample(stat, sums, counts, nb, o)) != 0)
        goto done;
    *lo = cks_quantile_sorted(stat, o->resamples, o->lo);
    *hi = cks_quantile_sorted(stat, o->resamples, o->hi);
done:
    free(stat);
    free(sums);
    free(counts);
    return err;
}
