/* Eigenvalues of WᵀW for a weight matrix (esd.h): the Gram matrix G of the smaller side,
 * accumulated in f64 by dsyrk over blocks of W widened from the stored dtype, then the
 * eigenvalues of G by LAPACK's symmetric eigensolver (values only).
 *
 * Why this method (measured on this machine, 2-core AMD EPYC under KVM, OpenBLAS 0.3.21
 * with OPENBLAS_CORETYPE=Haswell; `bench_spectral --solvers` and `--accuracy` reprint them):
 *  - Speed. dgesdd(jobz='N') on W in f64, the routine numpy and scipy call and so
 *    WeightWatcher, costs 2.6 s at 2048² and 23 s at 4096² on one thread; the Gram route
 *    costs 0.76 s and 5.5 s (dsyrk is BLAS-3 at ~90 GFLOP/s; only the reduction of the p×p
 *    G to tridiagonal form is half BLAS-2).
 *  - Accuracy. In f64 the Gram route loses relative accuracy only in eigenvalues below
 *    ~1e-10·λ1 (absolute error ~ε·λ1); against dgesdd on W every statistic agrees to
 *    <1e-13 relative at 2048², 4096×1024 and 1024×4096, and to numpy's SVD likewise on
 *    the reference matrices (tests/test_spectral.c). An f32 Gram matrix (ssyrk: 2x faster
 *    for the dsyrk part only) has absolute errors ~1e-7·λ1: at 2048² (λmin/λ1 = 1e-10) it
 *    returns negative eigenvalues, moves entropy by 6e-5 and effective_rank by 4e-7
 *    relative (the count of nonzero λ changes). f64 it is.
 *  - Eigensolver. dsyevd and dsyevr reduce with dsytrd (half BLAS-2, memory-bound once G
 *    leaves the cache); dsyevd_2stage reduces to a band first (BLAS-3) then chases bulges
 *    on one thread. One thread, 4096: 2-stage 4.0 s, dsyevd 6.8 s, dsyevr 6.8 s; 2048:
 *    0.56 s vs 0.64 s; 1024: dsyevd wins (0.067 s vs 0.086 s). Two threads the 2-stage
 *    does not scale (4.8 s at 4096) and dsyevr is fastest (3.4 s; dsyevd 4.1 s). Hence
 *    cks_esd_pick: one thread and p >= CKS_ESD_TWO_STAGE_FROM: 2-stage; one thread below:
 *    dsyevd; more threads: dsyevr.
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

cks_esd_solver cks_esd_pick(int64_t p, int nthreads)
{
    if (nthreads > 1)
        return CKS_ESD_SYEVR;
    return p >= CKS_ESD_TWO_STAGE_FROM ? CKS_ESD_SYEVD_2STAGE : CKS_ESD_SYEVD;
}

const char *cks_esd_solver_name(cks_esd_solver s)
{
    switch (s) {
    case CKS_ESD_SYEVD:
        return "dsyevd";
    case CKS_ESD_SYEVR:
        return "dsyevr";
    case CKS_ESD_SYEVD_2STAGE:
        return "dsyevd_2stage";
    default:
        return "auto";
    }
}

/* Eigenvalues of the p×p G (lower triangle; destroyed) into lambda, ascending. */
static lapack_int eigenvalues(cks_esd_solver solver, int64_t p, double *g, double *lambda)
{
    lapack_int n = (lapack_int)p, found = 0;
    switch (solver) {
    case CKS_ESD_SYEVD_2STAGE:
        return LAPACKE_dsyevd_2stage(LAPACK_COL_MAJOR, 'N', 'L', n, g, n, lambda);
    case CKS_ESD_SYEVR: {
        /* jobz 'N', range 'A': dsterf on the tridiagonal form. isuppz is documented as
         * 2·max(1, M) even when unused. */
        lapack_int *isuppz = malloc(2 * (size_t)p * sizeof *isuppz), info;
        double z[1];
        if (!isuppz)
            return LAPACK_WORK_MEMORY_ERROR;
        info = LAPACKE_dsyevr(LAPACK_COL_MAJOR, 'N', 'A', 'L', n, g, n, 0.0, 0.0, 0, 0, 0.0, &found,
                              lambda, z, 1, isuppz);
        free(isuppz);
        return info;
    }
    default:
        return LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'N', 'L', n, g, n, lambda);
    }
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
    if (!cks_tensor_is_contiguous(t)) { /* a row-block view: one contiguous copy (tensor.h) */
        cks_tensor g;
        void *own;
        if ((err = cks_tensor_gather(t, &g, &own)) == 0)
            err = cks_esd_compute_with(&g, nthreads, solver, lambda, fro2);
        free(own);
        return err;
    }
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
        if (solver == CKS_ESD_AUTO)
            solver = cks_esd_pick(p, nthreads);
        lapack_int info = eigenvalues(solver, p, g, lambda);
        if (info != 0)
            err = lapack_error(t, cks_esd_solver_name(solver), info);
        else
            *fro2 = tr;
    }
    openblas_set_num_threads(prev);
done:
    free(buf);
    free(g);
    return err;
}
