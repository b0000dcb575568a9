/* bench_spectral: time of cks_spectral_compute per matrix shape against the bare
 * BLAS/LAPACK calls it is built on (one dsyrk over a ready f64 copy of W, then dsyevd or
 * dsyevd_2stage), at 1 and 2 threads. With --accuracy, also how far the statistics move
 * when the Gram matrix is formed in f32 (ssyrk) instead of f64, both against dgesdd on W
 * in f64 (the routine numpy.linalg.svd and scipy.linalg.svd call). The numpy/scipy side
 * of the comparison is bench/spectral_numpy.py. With --solvers, the candidate methods
 * one by one: dgesdd('N') on W, and the Gram matrix followed by dsyevd, dsyevr or
 * dsyevd_2stage (the measurements behind the choice in esd.c). With --fit N, the time of
 * the statistics alone (the power-law KS scan dominates) for N eigenvalues.
 * Prints figures; never passes or fails.
 *
 *   bench_spectral [--shapes 1024x1024,2048x2048,...] [--threads 1,2] [--reps N]
 *                  [--dtype F32|BF16|F16] [--accuracy | --solvers | --fit N] */
#include "error.h"
#include "esd.h"
#include "spectral.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SHAPES 16

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of the whole process: on a shared machine, time slices taken by other
 * processes do not count (with 1 thread it is the honest figure; with 2 it sums both). */
static double cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng_state = 0x853c49e6748fea9bull;
static double gauss(void)
{
    /* xorshift64* + Box-Muller: content matters little for timing */
    double u[2];
    for (int i = 0; i < 2; i++) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        u[i] = ((double)((rng_state * 2685821657736338717ull) >> 11) + 0.5) / 9007199254740992.0;
    }
    return sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]);
}

/* W: Gaussian bulk (std 0.02) plus a few rank-one spikes, like a trained weight. */
static void make_matrix(int64_t m, int64_t n, cks_dtype dt, void *data, double *w64)
{
    for (int64_t i = 0; i < m * n; i++)
        w64[i] = 0.02 * gauss();
    for (int s = 0; s < 4; s++) {
        double *u = malloc((size_t)m * sizeof *u), *v = malloc((size_t)n * sizeof *v);
        for (int64_t i = 0; i < m; i++)
            u[i] = gauss() / sqrt((double)m);
        for (int64_t j = 0; j < n; j++)
            v[j] = gauss() / sqrt((double)n);
        double str = 0.02 * sqrt((double)(m > n ? m : n)) * (4.0 - s);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                w64[i * n + j] += str * u[i] * v[j];
        free(u);
        free(v);
    }
    for (int64_t i = 0; i < m * n; i++) {
        float f = (float)w64[i];
        if (dt == CKS_DT_F32) {
            ((float *)data)[i] = f;
        } else {
            uint16_t h = dt == CKS_DT_BF16 ? cks_f32_to_bf16(f) : cks_f32_to_f16(f);
            ((uint16_t *)data)[i] = h;
            f = dt == CKS_DT_BF16 ? cks_bf16_to_f32(h) : cks_f16_to_f32(h);
        }
        w64[i] = f; /* the stored value, exactly */
    }
}

static cks_tensor view(int64_t m, int64_t n, cks_dtype dt, const void *data)
{
    cks_tensor t = {.name = "bench", .dtype = dt, .ndim = 2, .data = data, .layer = -1};
    t.shape[0] = m;
    t.shape[1] = n;
    t.numel = m * n;
    t.nbytes = (size_t)t.numel * cks_dtype_size(dt);
    return t;
}

/* The bare calls on a ready f64 copy: G = WᵀW or W Wᵀ of the smaller side, eigenvalues. */
static double bare(const double *w64, int64_t m, int64_t n, double *g, double *lam, double *t_syrk)
{
    int tall = n <= m;
    int64_t p = tall ? n : m, q = tall ? m : n;
    double t0 = now();
    cblas_dsyrk(CblasColMajor, CblasLower, tall ? CblasNoTrans : CblasTrans, (int)p, (int)q, 1.0,
                w64, (int)n, 0.0, g, (int)p);
    double t1 = now();
    cks_esd_solver solver = cks_esd_pick(p, openblas_get_num_threads());
    lapack_int found, *isuppz = malloc(2 * (size_t)p * sizeof *isuppz);
    if (solver == CKS_ESD_SYEVD_2STAGE)
        LAPACKE_dsyevd_2stage(LAPACK_COL_MAJOR, 'N', 'L', (int)p, g, (int)p, lam);
    else if (solver == CKS_ESD_SYEVR)
        LAPACKE_dsyevr(LAPACK_COL_MAJOR, 'N', 'A', 'L', (int)p, g, (int)p, 0, 0, 0, 0, 0, &found,
                       lam, lam, 1, isuppz);
    else
        LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'N', 'L', (int)p, g, (int)p, lam);
    free(isuppz);
    *t_syrk = t1 - t0;
    return now() - t0;
}

static void timing(int64_t m, int64_t n, cks_dtype dt, const int *threads, int nthreads, int reps)
{
    int64_t p = m < n ? m : n;
    size_t es = cks_dtype_size(dt);
    void *data = malloc((size_t)(m * n) * es);
    double *w64 = malloc((size_t)(m * n) * sizeof *w64);
    double *g = malloc((size_t)(p * p) * sizeof *g), *lam = malloc((size_t)p * sizeof *lam);
    if (!data || !w64 || !g || !lam) {
        fprintf(stderr, "bench_spectral: out of memory for %lldx%lld\n", (long long)m,
                (long long)n);
        exit(1);
    }
    make_matrix(m, n, dt, data, w64);
    cks_tensor t = view(m, n, dt, data);
    for (int ti = 0; ti < nthreads; ti++) {
        int th = threads[ti];
        double best_c = INFINITY, best_b = INFINITY, best_s = INFINITY, cpu_c = INFINITY,
               cpu_b = INFINITY;
        cks_spectral s;
        for (int r = 0; r < reps; r++) {
            double t0 = now(), c0 = cpu();
            if (cks_spectral_compute(&t, th, 0, NULL, &s) != 0) {
                fprintf(stderr, "bench_spectral: %s\n", cks_error_last());
                exit(1);
            }
            double tc = now() - t0, cc = cpu() - c0;
            best_c = tc < best_c ? tc : best_c;
            cpu_c = cc < cpu_c ? cc : cpu_c;
            openblas_set_num_threads(th);
            c0 = cpu();
            double ts, tb = bare(w64, m, n, g, lam, &ts);
            cc = cpu() - c0;
            cpu_b = cc < cpu_b ? cc : cpu_b;
            if (tb < best_b) {
                best_b = tb;
                best_s = ts;
            }
        }
        printf("%5lldx%-6lld %-4s %d thr  compute %8.3f s (cpu %8.3f)  bare %8.3f s (cpu %8.3f; "
               "dsyrk %7.3f + %s %7.3f)  ratio %.3f (cpu %.3f)  alpha %.3f\n",
               (long long)m, (long long)n, cks_dtype_name(dt), th, best_c, cpu_c, best_b, cpu_b,
               best_s, cks_esd_solver_name(cks_esd_pick(p, th)), best_b - best_s, best_c / best_b,
               cpu_c / cpu_b, s.alpha);
        fflush(stdout);
    }
    free(data);
    free(w64);
    free(g);
    free(lam);
}

/* Statistics of W via (1) the library (f64 Gram), (2) f32 ssyrk Gram + f64 eigensolver,
 * (3) dgesdd on W in f64: relative deviation of (1) and (2) from (3). */
static void accuracy(int64_t m, int64_t n, int th)
{
    int64_t p = m < n ? m : n, q = m < n ? n : m;
    int tall = n <= m;
    float *w = malloc((size_t)(m * n) * sizeof *w);
    double *w64 = malloc((size_t)(m * n) * sizeof *w64), *lam = malloc((size_t)p * 8);
    float *gs = malloc((size_t)(p * p) * sizeof *gs);
    double *g = malloc((size_t)(p * p) * sizeof *g), dummy[1];
    make_matrix(m, n, CKS_DT_F32, w, w64);
    for (int64_t i = 0; i < m * n; i++)
        w[i] = (float)w64[i];
    openblas_set_num_threads(th);
    cks_spectral ours, f32g, ref;
    cks_tensor t = view(m, n, CKS_DT_F32, w);
    cks_spectral_compute(&t, th, 0, NULL, &ours);
    cblas_ssyrk(CblasColMajor, CblasLower, tall ? CblasNoTrans : CblasTrans, (int)p, (int)q, 1.0f,
                w, (int)n, 0.0f, gs, (int)p);
    for (int64_t i = 0; i < p * p; i++)
        g[i] = gs[i];
    LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'N', 'L', (int)p, g, (int)p, lam);
    int negative = 0;
    for (int64_t i = 0; i < p; i++) {
        negative += lam[i] < 0;
        lam[i] = lam[i] < 0 ? 0.0 : lam[i]; /* f32 rounding can push small λ below 0 */
    }
    cks_spectral_from_eigs(lam, p, m, n, NAN, &f32g);
    LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'N', (int)n, (int)m, w64, (int)n, lam, dummy, 1, dummy, 1);
    for (int64_t i = 0; i < p; i++)
        lam[i] *= lam[i];
    double lmin = lam[p - 1];
    cks_spectral_from_eigs(lam, p, m, n, NAN, &ref);
    size_t nm;
    const cks_metric_info *mi = cks_spectral_metrics(&nm);
    printf("accuracy %lldx%lld (λmin/λ1 = %.2g; f32 Gram: %d negative λ), relative deviation "
           "from dgesdd f64:\n",
           (long long)m, (long long)n, lmin / lam[0], negative);
    printf("  %-18s %12s %12s\n", "metric", "f64 Gram", "f32 Gram");
    for (size_t i = 0; i < nm; i++) {
        double r = cks_spectral_value(&ref, i);
        double a = cks_spectral_value(&ours, i), b = cks_spectral_value(&f32g, i);
        printf("  %-18s %12.2e %12.2e\n", mi[i].name, fabs(a - r) / fabs(r), fabs(b - r) / fabs(r));
    }
    free(w);
    free(w64);
    free(lam);
    free(gs);
    free(g);
}

/* Each candidate method once on W (f64), at th threads: wall (cpu) seconds. */
static void solvers(int64_t m, int64_t n, int th)
{
    int64_t p = m < n ? m : n, q = m < n ? n : m;
    int tall = n <= m;
    float *w = malloc((size_t)(m * n) * sizeof *w);
    double *w64 = malloc((size_t)(m * n) * sizeof *w64), *a = malloc((size_t)(m * n) * 8);
    double *g = malloc((size_t)(p * p) * sizeof *g), *g2 = malloc((size_t)(p * p) * 8);
    double *lam = malloc((size_t)p * 8), dummy[1];
    lapack_int *isuppz = malloc(2 * (size_t)p * sizeof *isuppz), found;
    make_matrix(m, n, CKS_DT_F32, w, w64);
    openblas_set_num_threads(th);
    double t0 = now(), c0 = cpu();
    cblas_dsyrk(CblasColMajor, CblasLower, tall ? CblasNoTrans : CblasTrans, (int)p, (int)q, 1.0,
                w64, (int)n, 0.0, g, (int)p);
    double t_syrk = now() - t0, c_syrk = cpu() - c0;
    printf("%5lldx%-6lld %d thr  dsyrk            %8.3f s (cpu %8.3f)\n", (long long)m,
           (long long)n, th, t_syrk, c_syrk);
    const char *names[] = {"dsyevd", "dsyevr", "dsyevd_2stage"};
    for (int k = 0; k < 3; k++) {
        memcpy(g2, g, (size_t)(p * p) * sizeof *g);
        t0 = now();
        c0 = cpu();
        if (k == 0)
            LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'N', 'L', (int)p, g2, (int)p, lam);
        else if (k == 1)
            LAPACKE_dsyevr(LAPACK_COL_MAJOR, 'N', 'A', 'L', (int)p, g2, (int)p, 0, 0, 0, 0, 0,
                           &found, lam, dummy, 1, isuppz);
        else
            LAPACKE_dsyevd_2stage(LAPACK_COL_MAJOR, 'N', 'L', (int)p, g2, (int)p, lam);
        printf("%5lldx%-6lld %d thr  %-16s %8.3f s (cpu %8.3f)\n", (long long)m, (long long)n, th,
               names[k], now() - t0, cpu() - c0);
        fflush(stdout);
    }
    memcpy(a, w64, (size_t)(m * n) * sizeof *a);
    t0 = now();
    c0 = cpu();
    LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'N', (int)n, (int)m, a, (int)n, lam, dummy, 1, dummy, 1);
    printf("%5lldx%-6lld %d thr  dgesdd('N') on W %8.3f s (cpu %8.3f)\n", (long long)m,
           (long long)n, th, now() - t0, cpu() - c0);
    fflush(stdout);
    free(w);
    free(w64);
    free(a);
    free(g);
    free(g2);
    free(lam);
    free(isuppz);
}

/* The statistics alone for n eigenvalues shaped like a trained layer's: a Marchenko-
 * Pastur-like bulk and a power-law tail. */
static void fit_only(int64_t n)
{
    double *lam = malloc((size_t)n * sizeof *lam);
    for (int64_t i = 0; i < n; i++) {
        double u = ((double)i + 0.5) / (double)n;
        lam[i] = i % 5 ? 4.0 * u * u * (1.0 + 0.1 * gauss()) + 0.01 : pow(1.0 - u, -1.0 / 2.5);
        lam[i] = fabs(lam[i]) + 1e-6;
    }
    cks_spectral s;
    double t0 = now();
    cks_spectral_from_eigs(lam, n, n, 3 * n, NAN, &s);
    printf("statistics of %lld eigenvalues: %.3f s (1 thread; alpha %.3f, tail %lld)\n",
           (long long)n, now() - t0, s.alpha, (long long)s.tail);
    free(lam);
}

static int parse_list(const char *s, int64_t *a, int64_t *b, int max)
{
    int k = 0;
    while (*s && k < max) {
        char *end;
        a[k] = strtoll(s, &end, 10);
        if (b) {
            if (*end != 'x')
                return -1;
            b[k] = strtoll(end + 1, &end, 10);
        }
        if (a[k] < 1 || (b && b[k] < 1) || (*end && *end != ','))
            return -1;
        k++;
        s = *end ? end + 1 : end;
    }
    return k;
}

int main(int argc, char **argv)
{
    int64_t ms[MAX_SHAPES] = {1024, 2048, 4096, 4096, 4096};
    int64_t ns[MAX_SHAPES] = {1024, 2048, 1024, 4096, 11008};
    int64_t th64[4] = {1, 2};
    int nshapes = 5, nth = 2, reps = 2, acc = 0, solv = 0;
    long fit = 0;
    cks_dtype dt = CKS_DT_F32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--shapes") && (nshapes = parse_list(v, ms, ns, MAX_SHAPES)) > 0)
            i++;
        else if (!strcmp(a, "--threads") && (nth = parse_list(v, th64, NULL, 4)) > 0)
            i++;
        else if (!strcmp(a, "--reps") && (reps = atoi(v)) > 0)
            i++;
        else if (!strcmp(a, "--dtype") && cks_dtype_from_name(v, &dt) == 0 &&
                 cks_dtype_is_float(dt) && dt != CKS_DT_F64)
            i++;
        else if (!strcmp(a, "--accuracy"))
            acc = 1;
        else if (!strcmp(a, "--solvers"))
            solv = 1;
        else if (!strcmp(a, "--fit") && (fit = atol(v)) > 0)
            i++;
        else {
            fprintf(stderr, "usage: bench_spectral [--shapes MxN,...] [--threads 1,2] [--reps N] "
                            "[--dtype F32|BF16|F16] [--accuracy | --solvers | --fit N]\n");
            return 2;
        }
    }
    int th[4];
    for (int i = 0; i < nth; i++)
        th[i] = (int)th64[i];
    printf("bench_spectral: OpenBLAS %s, core %s; best of %d\n", openblas_get_config(),
           openblas_get_corename(), reps);
    if (fit) {
        fit_only(fit);
        return 0;
    }
    if (acc || solv) {
        for (int i = 0; i < nshapes; i++)
            for (int t = 0; t < (solv ? nth : 1); t++)
                acc ? accuracy(ms[i], ns[i], th[nth - 1]) : solvers(ms[i], ns[i], th[t]);
        return 0;
    }
    for (int i = 0; i < nshapes; i++)
        timing(ms[i], ns[i], dt, th, nth, reps);
    return 0;
}
