/* Spectral statistics from eigenvalues (DESIGN §3), the whole pipeline for a tensor
 * (esd.c for the eigenvalues, powerlaw.c for the fit), and the table of metric names.
 * Sums run over ascending values (small terms first) in f64. */
#include "spectral.h"
#include "error.h"
#include "esd.h"
#include "powerlaw.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const cks_metric_info metrics[] = {
    {"sigma_max", "largest singular value of W", ""},
    {"log_spectral_norm", "log10 of the largest eigenvalue of W^T W (sigma_max^2)", "log10"},
    {"log_norm", "log10 of the squared Frobenius norm of W (sum of eigenvalues)", "log10"},
    {"stable_rank", "squared Frobenius norm over the largest eigenvalue", ""},
    {"entropy", "spectral entropy of the eigenvalues normalised by ln(nonzero count)", ""},
    {"effective_rank", "exp of the entropy of the normalised singular values (Roy & Vetterli)", ""},
    {"alpha", "power-law exponent of the eigenvalue tail (MLE, xmin by minimum KS distance)", ""},
    {"xmin", "lower bound of the fitted power-law tail (an eigenvalue of W^T W)", ""},
    {"ks", "Kolmogorov-Smirnov distance of the power-law fit", ""},
    {"tail", "number of eigenvalues in the fitted power-law tail", "count"},
    {"alpha_weighted", "alpha times log10 of the largest eigenvalue", ""},
    {"num_spikes", "eigenvalues above the Marchenko-Pastur edge of a random matrix like W",
     "count"},
    {"mp_softrank", "Marchenko-Pastur edge over the largest eigenvalue", ""},
};
#define NMETRICS (sizeof metrics / sizeof metrics[0])

const cks_metric_info *cks_spectral_metrics(size_t *count)
{
    *count = NMETRICS;
    return metrics;
}

double cks_spectral_value(const cks_spectral *s, size_t i)
{
    /* in the order of metrics[] */
    const double v[] = {s->sigma_max,
                        s->log_spectral_norm,
                        s->log_norm,
                        s->stable_rank,
                        s->entropy,
                        s->effective_rank,
                        s->alpha,
                        s->xmin,
                        s->ks,
                        s->tail > 0 ? (double)s->tail : NAN,
                        s->alpha_weighted,
                        isnan(s->sigma_max) ? NAN : (double)s->num_spikes,
                        s->mp_softrank};
    _Static_assert(sizeof v / sizeof v[0] == NMETRICS, "one value per metric");
    return i < NMETRICS ? v[i] : NAN;
}

static void all_nan(cks_spectral *s)
{
    *s = (cks_spectral){NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, 0, 0};
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* entropy and effective_rank over the r nonzero values x[0..r) (ascending) */
static void entropies(const double *x, int64_t r, cks_spectral *s)
{
    double sl = 0.0, ss = 0.0;
    for (int64_t i = 0; i < r; i++) {
        sl += x[i];
        ss += sqrt(x[i]);
    }
    double hl = 0.0, hs = 0.0;
    for (int64_t i = 0; i < r; i++) {
        double p = x[i] / sl, q = sqrt(x[i]) / ss;
        hl -= p * log(p);
        hs -= q * log(q);
    }
    s->entropy = r > 1 ? hl / log((double)r) : NAN;
    s->effective_rank = exp(hs);
}

/* Statistics of the ascending eigenvalues x[0..n) (n <= min(rows, cols); tiny negative
 * values already allowed by the caller) with the fit on nthreads. */
static int stats(const double *x, int64_t n, int64_t rows, int64_t cols, double fro2, int nthreads,
                 cks_spectral *out)
{
    cks_spectral s;
    all_nan(&s);
    double l1 = n ? x[n - 1] : 0.0;
    if (!(l1 > 0)) {
        s.sigma_max = 0.0;
        *out = s;
        return 0;
    }
    double tol = l1 * (double)(rows > cols ? rows : cols) * DBL_EPSILON;
    int64_t z = 0; /* x[0..z) are zero at working precision */
    while (z < n && !(x[z] > tol))
        z++;
    const double *nz = x + z;
    int64_t r = n - z;
    if (!(fro2 > 0) || !isfinite(fro2)) {
        fro2 = 0.0;
        for (int64_t i = 0; i < r; i++)
            fro2 += nz[i];
    }
    s.sigma_max = sqrt(l1);
    s.log_spectral_norm = log10(l1);
    s.log_norm = log10(fro2);
    s.stable_rank = fro2 / l1;
    entropies(nz, r, &s);
    if ((rows < cols ? rows : cols) >= CKS_POWERLAW_MIN_TAIL) {
        cks_powerlaw pl;
        int err = cks_powerlaw_fit(nz, r, nthreads, &pl);
        if (err)
            return err;
        s.alpha = pl.alpha;
        s.xmin = pl.xmin;
        s.ks = pl.ks;
        s.tail = pl.tail;
        s.alpha_weighted = pl.alpha * s.log_spectral_norm;
    }
    double sq = sqrt((double)rows) + sqrt((double)cols);
    double lplus = fro2 / ((double)rows * (double)cols) * sq * sq;
    for (int64_t i = n - 1; i >= 0 && x[i] > lplus; i--)
        s.num_spikes++;
    s.mp_softrank = lplus / l1;
    *out = s;
    return 0;
}

/* Checks the eigenvalues, copies them ascending into *sorted (caller frees). */
static int sorted_copy(const double *lambda, int64_t n, int64_t rows, int64_t cols, double **sorted)
{
    double l1 = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(lambda[i]))
            return cks_error_set(CKS_EINVAL, "spectral statistics: eigenvalue %lld is %g",
                                 (long long)i, lambda[i]);
        if (lambda[i] > l1)
            l1 = lambda[i];
    }
    double tol = l1 * (double)(rows > cols ? rows : cols) * DBL_EPSILON;
    for (int64_t i = 0; i < n; i++)
        if (lambda[i] < -tol)
            return cks_error_set(CKS_EINVAL,
                                 "spectral statistics: eigenvalue %lld is negative (%g)",
                                 (long long)i, lambda[i]);
    double *x = malloc((n ? (size_t)n : 1) * sizeof *x);
    if (!x)
        return cks_error_set(CKS_ENOMEM, "spectral statistics: out of memory for %lld values",
                             (long long)n);
    memcpy(x, lambda, (size_t)n * sizeof *x);
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    *sorted = x;
    return 0;
}

static int check_shape(int64_t n, int64_t rows, int64_t cols)
{
    if (rows < 1 || cols < 1 || n < 0 || n > (rows < cols ? rows : cols))
        return cks_error_set(CKS_EINVAL,
                             "spectral statistics: %lld eigenvalues for a %lldx%lld matrix "
                             "(at most min(rows, cols))",
                             (long long)n, (long long)rows, (long long)cols);
    return 0;
}

int cks_spectral_from_eigs(const double *lambda, int64_t n, int64_t rows, int64_t cols, double fro2,
                           cks_spectral *out)
{
    double *x = NULL;
    int err = check_shape(n, rows, cols);
    if (!err)
        err = sorted_copy(lambda, n, rows, cols, &x);
    if (!err)
        err = stats(x, n, rows, cols, fro2, 1, out);
    free(x);
    return err;
}

int cks_spectral_compute(const cks_tensor *t, int nthreads, int ntop, float *top, cks_spectral *out)
{
    if (ntop < 0)
        return cks_error_set(CKS_EINVAL, "tensor '%s': %d top eigenvalues requested", t->name,
                             ntop);
    int err = cks_esd_check(t);
    if (err)
        return err;
    int64_t m = t->shape[0], n = t->shape[1], p = m < n ? m : n;
    double fro2 = NAN, *lambda = malloc((size_t)p * sizeof *lambda);
    if (!lambda)
        return cks_error_set(CKS_ENOMEM, "tensor '%s': out of memory", t->name);
    cks_spectral s;
    if ((err = cks_esd_compute(t, nthreads, lambda, &fro2)) != 0)
        goto done;
    if (isnan(fro2)) {
        all_nan(&s);
    } else {
        /* the eigensolver returns them ascending; rounding can leave tiny negatives */
        for (int64_t i = 0; i < p; i++)
            if (lambda[i] < 0)
                lambda[i] = 0.0;
        if ((err = stats(lambda, p, m, n, fro2, nthreads, &s)) != 0)
            goto done;
    }
    for (int i = 0; top && i < ntop; i++)
        top[i] = i < p && !isnan(fro2) ? (float)lambda[p - 1 - i] : NAN;
    *out = s;
done:
    free(lambda);
    return err;
}
