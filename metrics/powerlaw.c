/* Power-law tail fit by MLE + minimum KS distance (powerlaw.h, DESIGN §3).
 *
 * The scan is literal: every candidate xmin, every point of its tail. Two things keep it
 * cheap without changing the answer: alpha comes from suffix sums of ln x (O(1) per
 * candidate), and a candidate's KS scan stops as soon as its running maximum exceeds the
 * best D found so far (it can no longer win; D is a maximum). A first pass over a sparse
 * subset of candidates seeds that bound. Ties are kept (only D > best is cut) and resolved
 * to the smaller xmin, so the result is the same as the plain O(n^2) scan, for any thread
 * count. F(x_i) = 1 - exp((1 - alpha)(ln x_i - ln xmin)) reuses the logs. */
#include "powerlaw.h"
#include "error.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

#define SEED_STRIDE 64 /* every 64th candidate is scanned first to bound the others */
#define MAX_THREADS 256
#define PAR_MIN_N   512 /* below this the scan takes microseconds: stay on one thread */

typedef struct {
    double d;
    int64_t i; /* index of xmin in x; -1 when none */
    double alpha;
} best;

/* KS distance of candidate i (tail x[i..n)), or a value > bound once it is certain to
 * exceed bound. */
static double ks_distance(const double *lx, int64_t n, int64_t i, double alpha, double bound)
{
    int64_t k = n - i;
    double c = 1.0 - alpha, kk = (double)k, d = 0.0, l0 = lx[i];
    for (int64_t t = 0; t < k; t++) {
        double f = 1.0 - exp(c * (lx[i + t] - l0));
        /* max(|(t+1)/k - F|, |t/k - F|) = max((t+1)/k - F, F - t/k): (t+1)/k > t/k */
        double hi = (double)(t + 1) / kk - f, lo = f - (double)t / kk;
        double dev = hi > lo ? hi : lo;
        if (dev > d) {
            d = dev;
            if (d > bound)
                return d;
        }
    }
    return d;
}

static int is_candidate(const double *x, int64_t n, int64_t i)
{
    return n - i >= CKS_POWERLAW_MIN_TAIL && (i == 0 || x[i] > x[i - 1]);
}

/* alpha of candidate i from the suffix sums; NaN when the tail is one repeated value (x
 * ascending: its last value equals its first). That case is decided on the values: the
 * sum below is then a difference of two roundings of k ln xmin, zero only where the
 * compiler does not fuse the product into the subtraction (aarch64 does). */
static double mle_alpha(const double *x, const double *lx, const double *suffix, int64_t n,
                        int64_t i)
{
    if (x[n - 1] == x[i])
        return NAN;
    double k = (double)(n - i);
    double s = suffix[i] - k * lx[i]; /* sum ln(x_j / x_i) over the tail */
    return s > 0 ? 1.0 + k / s : NAN;
}

static void consider(best *b, double d, int64_t i, double alpha)
{
    if (d < b->d || (d == b->d && i < b->i)) {
        b->d = d;
        b->i = i;
        b->alpha = alpha;
    }
}

/* Scans candidates i = start, start + step, ... (skipping those with i % SEED_STRIDE == 0
 * when skip_seeds) against the bound, merging into *out. */
static void scan(const double *x, const double *lx, const double *suffix, int64_t n, int nt,
                 int64_t step, int skip_seeds, best *out)
{
    best part[MAX_THREADS];
    for (int t = 0; t < nt; t++)
        part[t] = *out;
    int64_t last = n - CKS_POWERLAW_MIN_TAIL; /* the last index with a tail of MIN_TAIL */
#pragma omp parallel for num_threads(nt) schedule(dynamic, 16) if (nt > 1)
    for (int64_t i = 0; i <= last; i += step) {
        if ((skip_seeds && i % SEED_STRIDE == 0) || !is_candidate(x, n, i))
            continue;
        double alpha = mle_alpha(x, lx, suffix, n, i);
        if (isnan(alpha))
            continue;
        best *b = &part[omp_get_thread_num()];
        double d = ks_distance(lx, n, i, alpha, b->d);
        consider(b, d, i, alpha);
    }
    for (int t = 0; t < nt; t++)
        if (part[t].i >= 0)
            consider(out, part[t].d, part[t].i, part[t].alpha);
}

int cks_powerlaw_fit(const double *x, int64_t n, int nthreads, cks_powerlaw *out)
{
    for (int64_t i = 0; i < n; i++) {
        if (!(x[i] > 0) || !isfinite(x[i]) || (i && x[i] < x[i - 1]))
            return cks_error_set(CKS_EINVAL,
                                 "power-law fit: value %lld (%g) is not positive, finite and "
                                 "in ascending order",
                                 (long long)i, x[i]);
    }
    cks_powerlaw r = {NAN, NAN, NAN, 0};
    if (n < CKS_POWERLAW_MIN_TAIL) {
        *out = r;
        return 0;
    }
    double *lx = malloc(2 * (size_t)n * sizeof *lx);
    if (!lx)
        return cks_error_set(CKS_ENOMEM, "power-law fit: out of memory for %lld values",
                             (long long)n);
    double *suffix = lx + n;
    for (int64_t i = 0; i < n; i++)
        lx[i] = log(x[i]);
    /* suffix[i] = sum_{j >= i} ln x_j, Neumaier-compensated: the tail sum minus k ln xmin
     * cancels when the tail is narrow */
    double s = 0.0, comp = 0.0;
    for (int64_t i = n - 1; i >= 0; i--) {
        double t = s + lx[i];
        comp += fabs(s) >= fabs(lx[i]) ? (s - t) + lx[i] : (lx[i] - t) + s;
        s = t;
        suffix[i] = s + comp;
    }
    int nt = nthreads < 1 ? 1 : nthreads > MAX_THREADS ? MAX_THREADS : nthreads;
    if (n < PAR_MIN_N)
        nt = 1;
    best b = {INFINITY, -1, NAN};
    scan(x, lx, suffix, n, nt, SEED_STRIDE, 0, &b);
    scan(x, lx, suffix, n, nt, 1, 1, &b);
    if (b.i >= 0) {
        r.alpha = b.alpha;
        r.xmin = x[b.i];
        r.ks = b.d;
        r.tail = n - b.i;
    }
    free(lx);
    *out = r;
    return 0;
}
