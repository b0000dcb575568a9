/* Eigenvalues of WᵀW for a weight matrix (esd.h): the Gram matrix G of the smaller side,
 * accumulated in f64 by dsyrk over blocks of W widened from the stored dtype, then the
 * eigenvalues of G by LAPACK's symmetric eigensolver (values only).
 *
 * Why this method (measured on this machine, AMD EPYC, 1 thread, OPENBLAS_CORETYPE=Haswell;
 * bench/bench_spectral prints the current figures):
 *  - Speed. dgesdd(jobz='N') on W in f64, the path numpy/scipy and so WeightWatcher take,
 *    costs 2.5 s at 2048² and 36.5 s at 4096²; Gram + eigensolver costs 0.8 s and 6.3 s
 *    (dsyrk is BLAS-3 at ~45 GFLOP/s; only the p×p tridiagonal reduction is half BLAS-2).
 *  - Accuracy. In f64 the Gram route loses relative accuracy only in eigenvalues below
 *    ~1e-10·λ1 (absolute error ~ε·λ1): against numpy's f64 SVD the statistics agree to
 *    1e-12 on the reference matrices (tests/test_spectral.c). f32 syrk (2x faster for the
 *    Gram step, ~0 for the eigensolver) gives absolute errors ~1e-7·λ1, which moves the
 *    small eigenvalues of square matrices (λ_min/λ1 ~ 1e-8 for a 4096² Gaussian) and with
 *    them effective_rank and the low xmin candidates: f64 it is.
 *  - Eigensolver. dsyevd and dsyevr both reduce to tridiagonal with dsytrd; dsyevd_2stage
 *    reduces to a band first (BLAS-3) and wins once G no longer fits in cache: 4.9 s vs
 *    7.1 s at 4096 but 0.74 s vs 0.62 s at 2048. The switch is CKS_ESD_TWO_STAGE_FROM.
 *  - Memory. G (p² doubles) and one block of BLOCK columns; the f64 copy of W that dgesdd
 *    would need (1.9 GiB for K2's 8192×28672) is never made. */
#include "esd.h"
#include "checked.h"
#include "error.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>

/* Rows (or columns) of W per dsyrk call: a multiple of OpenBLAS's K blocking (GEMM_Q =
 * 256 for Haswell f64), so blocking adds no passes over G beyond those OpenBLAS makes. */
#define BLOCK 256

static int lapack_error(const cks_tensor *t, const char *routine, lapack_int info)
{
    if (info == LAPACK_WORK_MEMORY_ERROR || info == LAPACK_TRANSPOSE_MEMORY_ERROR)
        return cks_error_set(CKS_ENOMEM, "tensor '%s': out of memory for LAPACK %s workspace",
                             t->name, routine);
    return cks_error_set(CKS_ERROR, "tensor '%s': LAPACK %s failed (info %d)", t->name, routine,
                         (int)info);
}

/* G (p×p, column-major, lower triangle) = WᵀW when W is tall (n <= m), else W Wᵀ.
 * Block j of W is widened into buf as a column-major matrix A_j with G += A_j A_jᵀ (tall:
 * rows of W are columns of A_j) or G += A_jᵀ A_j (wide: row segments of W are columns). */
static void gram(const cks_tensor *t, int tall, int64_t p, int64_t q, double *buf, double *g)
{
    const unsigned char *base = t->data;
    size_t es = cks_dtype_size(t->dtype);
    int64_t n = t->shape[1];
    for (int64_t off = 0; off < q; off += BLOCK) {
        int64_t b = q - off < BLOCK ? q - off : BLOCK;
        if (tall) {
            cks_widen_f64(t->dtype, base + (size_t)off * (size_t)n * es, buf, (size_t)(b * n));
        } else {
            for (int64_t i = 0; i < p; i++)
                cks_widen_f64(t->dtype, base + ((size_t)i * (size_t)n + (size_t)off) * es,
                              buf + i * b, (size_t)b);
        }
        cblas_dsyrk(CblasColMajor, CblasLower, tall ? CblasNoTrans : CblasTrans, (int)p, (int)b,
                    1.0, buf, tall ? (int)p : (int)b, off ? 1.0 : 0.0, g, (int)p);
    }
}

int cks_esd_check(const cks_tensor *t)
{
    if (!cks_tensor_is_matrix(t))
        return cks_error_set(CKS_EUNSUPPORTED,
                             "tensor '%s': spectral statistics need a 2-D float matrix, not a "
                             "%d-D %s tensor",
                             t->name, t->ndim, cks_dtype_name(t->dtype));
    int64_t m = t->shape[0], n = t->shape[1], p = m < n ? m : n;
    if (p > CKS_SPECTRAL_MAX_SIDE)
        return cks_error_set(CKS_ELIMIT,
                             "tensor '%s' (%lldx%lld): spectral statistics are limited to "
                             "matrices whose smaller side is at most %d (its Gram matrix would "
                             "take %.1f GiB)",
                             t->name, (long long)m, (long long)n, CKS_SPECTRAL_MAX_SIDE,
                             (double)p * (double)p * 8.0 / (1 << 30));
    return 0;
}

int cks_esd_compute(const cks_tensor *t, int nthreads, double *lambda, double *fro2)
{
    return cks_esd_compute_with(t, nthreads, CKS_ESD_AUTO, lambda, fro2);
}

int cks_esd_compute_with(const cks_tensor *t, int nthreads, cks_esd_solver solver, double *lambda,
                         double *fro2)
{
    int err = cks_esd_check(t);
    if (err)
        return err;
    int64_t m = t->shape[0], n = t->shape[1];
    int tall = n <= m;
    int64_t p = tall ? n : m, q = tall ? m : n;
    size_t gbytes, bbytes;
    int64_t bcols = q < BLOCK ? q : BLOCK;
    if (cks_mul_size((size_t)p * (size_t)p, sizeof(double), &gbytes) ||
        cks_mul_size((size_t)p * (size_t)bcols, sizeof(double), &bbytes))
        return cks_error_set(CKS_ELIMIT, "tensor '%s': Gram matrix size overflows", t->name);
    double *g = malloc(gbytes), *buf = malloc(bbytes);
    if (!g || !buf) {
        err = cks_error_set(CKS_ENOMEM, "tensor '%s': out of memory for its %lldx%lld Gram matrix",
                            t->name, (long long)p, (long long)p);
        goto done;
    }
    int prev = openblas_get_num_threads();
    openblas_set_num_threads(nthreads < 1 ? 1 : nthreads);
    gram(t, tall, p, q, buf, g);
    double tr = 0.0;
    for (int64_t i = 0; i < p; i++)
        tr += g[i * p + i];
    if (!isfinite(tr)) {
        /* a NaN or Inf in W reaches the diagonal of G (G_jj = sum of squares): no spectrum */
        *fro2 = NAN;
    } else {
        int two = solver == CKS_ESD_SYEVD_2STAGE ||
                  (solver == CKS_ESD_AUTO && p >= CKS_ESD_TWO_STAGE_FROM);
        lapack_int info = two ? LAPACKE_dsyevd_2stage(LAPACK_COL_MAJOR, 'N', 'L', (lapack_int)p, g,
                                                      (lapack_int)p, lambda)
                              : LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'N', 'L', (lapack_int)p, g,
                                               (lapack_int)p, lambda);
        if (info != 0)
            err = lapack_error(t, two ? "dsyevd_2stage" : "dsyevd", info);
        else
            *fro2 = tr;
    }
    openblas_set_num_threads(prev);
done:
    free(buf);
    free(g);
    return err;
}
