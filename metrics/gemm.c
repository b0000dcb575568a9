/* cks_sgemm: row-major single-precision GEMM through oneDNN (default) or OpenBLAS.
 * Thread counts are applied around each call and restored, so callers do not have to
 * change the process's OpenMP settings. */
#include "gemm.h"
#include "error.h"

#include <assert.h>
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

const char *cks_gemm_backend_name(cks_gemm_backend b)
{
    switch (b) {
    case CKS_GEMM_DNNL:
        return "onednn";
    case CKS_GEMM_OPENBLAS:
        return "openblas";
    default:
        return "?";
    }
}

static int gemm_dnnl(char ta, char tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                     int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc,
                     int nthreads)
{
    /* oneDNN's OpenMP runtime sizes its team from omp_get_max_threads() of the caller */
    int in_par = omp_in_parallel(), saved = omp_get_max_threads();
    if (!in_par)
        omp_set_num_threads(nthreads);
    dnnl_status_t st = dnnl_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    if (!in_par)
        omp_set_num_threads(saved);
    if (st == dnnl_out_of_memory)
        return cks_error_set(CKS_ENOMEM, "out of memory in a %lldx%lldx%lld matrix product",
                             (long long)M, (long long)N, (long long)K);
    assert(st == dnnl_success);
    return st == dnnl_success ? 0 : cks_error_set(CKS_ERROR, "oneDNN sgemm failed (%d)", (int)st);
}

static int gemm_openblas(char ta, char tb, int64_t M, int64_t N, int64_t K, float alpha,
                         const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                         float *C, int64_t ldc, int nthreads)
{
    /* OpenBLAS keeps one global thread count; benchmarks only */
    openblas_set_num_threads(nthreads);
    cblas_sgemm(CblasRowMajor, ta == 'T' ? CblasTrans : CblasNoTrans,
                tb == 'T' ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N, (blasint)K, alpha, A,
                (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
    return 0;
}

int cks_sgemm_with(cks_gemm_backend b, char transa, char transb, int64_t M, int64_t N, int64_t K,
                   float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                   float beta, float *C, int64_t ldc, int nthreads)
{
    assert((transa == 'N' || transa == 'T') && (transb == 'N' || transb == 'T'));
    assert(M >= 0 && N >= 0 && K >= 0);
    if (M == 0 || N == 0)
        return 0;
    if (nthreads < 1)
        nthreads = 1;
    if (b == CKS_GEMM_OPENBLAS)
        return gemm_openblas(transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
                             nthreads);
    return gemm_dnnl(transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, nthreads);
}

int cks_sgemm(char transa, char transb, int64_t M, int64_t N, int64_t K, float alpha,
              const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
              int64_t ldc, int nthreads)
{
    return cks_sgemm_with(CKS_GEMM_DEFAULT, transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C,
                          ldc, nthreads);
}
