/* cks_sgemm: row-major single-precision GEMM through oneDNN (default) or OpenBLAS.
 * Thread counts are applied around each call and restored, so callers do not have to
 * change the process's OpenMP settings. cks_matmul: a weight product in the evaluation's
 * precision, dispatched to sgemm or one of the bf16 kernels (gemm_bf16.h). */
#include "gemm.h"
#include "checked.h"
#include "error.h"
#include "gemm_bf16.h"

#include <assert.h>
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- products in the evaluation's precision ---- */

int cks_mm_init(cks_mm *mm, cks_precision p, cks_bf16_kernel want)
{
    memset(mm, 0, sizeof *mm);
    mm->prec = p;
    mm->kernel = p == CKS_PRECISION_BF16 ? cks_bf16_kernel_resolve(want) : CKS_BF16_AUTO;
    if (mm->prec == CKS_PRECISION_BF16 && mm->kernel == CKS_BF16_ONEDNN)
        return cks_bf16_dnnl_new((cks_bf16_dnnl **)&mm->dnnl);
    return 0;
}

void cks_mm_release(cks_mm *mm)
{
    if (!mm)
        return;
    cks_bf16_dnnl_free(mm->dnnl);
    free(mm->scratch);
    memset(mm, 0, sizeof *mm);
}

static cks_wmat_layout layout_of(const cks_mm *mm)
{
    if (mm->prec != CKS_PRECISION_BF16)
        return CKS_WMAT_F32;
    if (mm->kernel == CKS_BF16_EMULATED)
        return CKS_WMAT_BF16_F32;
    return mm->kernel == CKS_BF16_AVX512 ? CKS_WMAT_BF16_PACKED : CKS_WMAT_BF16_ROWS;
}

/* Bytes of the rounded activations of an m × k product. */
static int scratch_need(const cks_mm *mm, int64_t m, int64_t k, size_t *out)
{
    size_t n;
    if (m < 0 || k < 0 || cks_mul_size((size_t)m + CKS_BF16_MR, (size_t)k + 1, &n) ||
        cks_mul_size(n, sizeof(float), out))
        return -1;
    if (mm->prec == CKS_PRECISION_F32)
        *out = 0;
    else if (mm->kernel == CKS_BF16_AVX512)
        *out = cks_bf16_packed_a_elems(m, k) * sizeof(uint16_t);
    else if (mm->kernel == CKS_BF16_ONEDNN)
        *out /= 2;
    return 0;
}

int cks_mm_reserve(cks_mm *mm, int64_t m, int64_t k)
{
    size_t need;
    void *p = NULL;
    if (scratch_need(mm, m, k, &need) != 0)
        return cks_error_set(CKS_ENOMEM, "a %lldx%lld product is too large", (long long)m,
                             (long long)k);
    if (need <= mm->scratch_bytes)
        return 0;
    if (posix_memalign(&p, 64, need) != 0)
        return cks_error_set(CKS_ENOMEM, "out of memory for the activations of a %lldx%lld product",
                             (long long)m, (long long)k);
    free(mm->scratch);
    mm->scratch = p;
    mm->scratch_bytes = need;
    return 0;
}

size_t cks_wmat_bytes(const cks_mm *mm, int64_t n, int64_t k, int *bad)
{
    size_t elems, bytes;
    cks_wmat_layout l = layout_of(mm);
    if (*bad || n < 0 || k < 0 || cks_mul_size((size_t)n + CKS_BF16_NR, (size_t)k + 1, &elems)) {
        *bad = 1;
        return 0;
    }
    if (l == CKS_WMAT_BF16_PACKED)
        bytes = cks_bf16_packed_w_elems(n, k) * sizeof(uint16_t);
    else
        bytes =
            (size_t)n * (size_t)k * (l == CKS_WMAT_BF16_ROWS ? sizeof(uint16_t) : sizeof(float));
    return (bytes + 63) / 64 * 64;
}

void cks_wmat_init(cks_wmat *w, const cks_mm *mm, void *buf, int64_t n, int64_t k)
{
    w->n = n;
    w->k = k;
    w->layout = layout_of(mm);
    w->data = buf;
    if (w->layout == CKS_WMAT_BF16_PACKED)
        cks_bf16_pack_w_pad(buf, n, k);
}

void cks_wmat_fill(cks_wmat *w, int64_t e0, int64_t ne, cks_dtype dt, const void *src)
{
    const unsigned char *s = src;
    const size_t es = cks_dtype_size(dt);
    uint16_t stage[2048];
    switch (w->layout) {
    case CKS_WMAT_F32:
        cks_widen_f32(dt, src, (float *)w->data + e0, (size_t)ne);
        break;
    case CKS_WMAT_BF16_F32:
        cks_bf16_from_stored_f32((float *)w->data + e0, dt, src, (size_t)ne);
        break;
    case CKS_WMAT_BF16_ROWS:
        cks_bf16_from_stored((uint16_t *)w->data + e0, dt, src, (size_t)ne);
        break;
    case CKS_WMAT_BF16_PACKED:
        for (int64_t i = 0; i < ne; i += 2048) {
            const int64_t k = ne - i < 2048 ? ne - i : 2048;
            cks_bf16_from_stored(stage, dt, s + (size_t)i * es, (size_t)k);
            cks_bf16_pack_w(w->data, w->n, w->k, e0 + i, k, stage);
        }
        break;
    }
}

/* Rows of A rounded to bf16 (bf16 rows, or bf16 values as f32 rows), row stride k. */
static void round_rows(void *dst, int as_f32, const float *A, int64_t lda, int64_t m, int64_t k,
                       int nthreads)
{
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t i = 0; i < m; i++) {
        if (as_f32)
            cks_bf16_round_f32_n((float *)dst + i * k, A + i * lda, (size_t)k);
        else
            cks_bf16_round_n((uint16_t *)dst + i * k, A + i * lda, (size_t)k);
    }
}

int cks_mm_input(cks_mm *mm, const float *A, int64_t lda, int64_t m, int64_t k, int nthreads)
{
    int err;
    if (nthreads < 1)
        nthreads = 1;
    mm->in = A;
    mm->in_m = m;
    mm->in_k = k;
    mm->in_lda = lda;
    if (mm->prec == CKS_PRECISION_F32 || m == 0)
        return 0;
    if ((err = cks_mm_reserve(mm, m, k)) != 0)
        return err;
    if (mm->kernel == CKS_BF16_AVX512)
        cks_bf16_pack_a(mm->scratch, A, lda, m, k, nthreads);
    else
        round_rows(mm->scratch, mm->kernel == CKS_BF16_EMULATED, A, lda, m, k, nthreads);
    mm->in = mm->scratch;
    mm->in_lda = k;
    return 0;
}

int cks_mm_product(cks_mm *mm, const cks_wmat *w, int64_t j0, int64_t nn, float beta, float *C,
                   int64_t ldc, int nthreads)
{
    const int64_t k = w->k, m = mm->in_m;
    assert(w->layout == layout_of(mm) && j0 >= 0 && nn >= 0 && j0 + nn <= w->n);
    assert(k == mm->in_k && (beta == 0.0f || beta == 1.0f));
    if (nthreads < 1)
        nthreads = 1;
    switch (w->layout) {
    case CKS_WMAT_F32:
    case CKS_WMAT_BF16_F32:
        return cks_sgemm('N', 'T', m, nn, k, 1.0f, mm->in, mm->in_lda,
                         (const float *)w->data + j0 * k, k, beta, C, ldc, nthreads);
    case CKS_WMAT_BF16_PACKED:
        cks_bf16_gemm_packed(m, w->n, k, j0, nn, (const uint16_t *)(const void *)mm->in, w->data,
                             beta, C, ldc, nthreads);
        return 0;
    case CKS_WMAT_BF16_ROWS:
        return cks_bf16_gemm_dnnl(mm->dnnl, m, k, nn, (const uint16_t *)(const void *)mm->in, k,
                                  (const uint16_t *)w->data + j0 * k, beta, C, ldc, nthreads);
    default:
        return cks_error_set(CKS_ERROR, "unknown weight layout %d", (int)w->layout);
    }
}

int cks_matmul(cks_mm *mm, const cks_wmat *w, int64_t j0, int64_t nn, int64_t m, const float *A,
               int64_t lda, float beta, float *C, int64_t ldc, int nthreads)
{
    int err = cks_mm_input(mm, A, lda, m, w->k, nthreads);
    return err ? err : cks_mm_product(mm, w, j0, nn, beta, C, ldc, nthreads);
}
