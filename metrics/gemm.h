/* Single-precision matrix products for the forward pass: the one place that decides which
 * library computes them.
 *
 * Row-major, BLAS semantics: C = alpha * op(A) * op(B) + beta * C with op(X) = X or Xᵀ
 * ('N' / 'T'), op(A) M×K, op(B) K×N, C M×N; lda/ldb/ldc are row strides in elements.
 *
 * The backend is chosen by measurement (bench/bench_gemm.c): on the project machines
 * (AMD EPYC with AVX-512, OPENBLAS_CORETYPE=Haswell set in the environment) oneDNN's
 * dnnl_sgemm runs the projection shapes of a LLaMA layer about twice as fast as
 * Debian's OpenBLAS 0.3.21 held to its Haswell kernels. Called from inside an OpenMP
 * parallel region, oneDNN runs the product on the calling thread only, which is what
 * the per-head attention blocks want. */
#ifndef CKS_GEMM_H
#define CKS_GEMM_H

#include "bf16.h"
#include "dtype.h"

#include <stddef.h>
#include <stdint.h>

typedef enum { CKS_GEMM_DNNL = 0, CKS_GEMM_OPENBLAS, CKS_GEMM_COUNT } cks_gemm_backend;

/* The backend cks_sgemm uses (see the measurement above). */
#define CKS_GEMM_DEFAULT CKS_GEMM_DNNL

const char *cks_gemm_backend_name(cks_gemm_backend b);

/* C = alpha op(A) op(B) + beta C on up to nthreads threads (<= 0: one). Returns 0, or
 * CKS_ENOMEM when the library could not allocate its packing buffers. Dimensions must
 * be valid (asserted: they come from validated configs, not from disk). */
int cks_sgemm(char transa, char transb, int64_t M, int64_t N, int64_t K, float alpha,
              const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
              int64_t ldc, int nthreads);

/* The same through a named backend (for benchmarks and cross-checks). */
int cks_sgemm_with(cks_gemm_backend b, char transa, char transb, int64_t M, int64_t N, int64_t K,
                   float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                   float beta, float *C, int64_t ldc, int nthreads);

/* ---- weight products in the evaluation's precision (DESIGN §5) ----
 *
 * Every weight matmul of the forward pass is C (+)= A Wᵀ with W a stored weight matrix
 * (n × k, row-major as on disk) and A the activations (m × k, f32). A cks_mm is the
 * arithmetic of one forward-pass state: its precision, the bf16 kernel (bf16.h) and the
 * scratch that holds the rounded activations. A cks_wmat is one weight matrix in the
 * form that arithmetic multiplies, inside a buffer the caller owns:
 *   f32:                 f32 rows (the stored values widened), cks_sgemm
 *   bf16, avx512 kernel: bf16, packed once (gemm_bf16.h), half the f32 bytes
 *   bf16, onednn:        bf16 rows, half the f32 bytes
 *   bf16, emulated:      f32 rows holding the bf16-rounded values, cks_sgemm on the
 *                        rounded activations (same bytes as f32)
 * The activations are rounded to bf16 once per product, as they enter it. */
typedef struct {
    cks_precision prec;
    cks_bf16_kernel kernel; /* resolved (bf16.h); unused when prec is F32 */
    void *scratch;          /* rounded activations */
    size_t scratch_bytes;
    void *dnnl; /* cks_bf16_dnnl (kernel ONEDNN) */
    /* the input of the products that follow (cks_mm_input) */
    const float *in; /* f32: the caller's activations; bf16: rounded into scratch */
    int64_t in_m, in_k, in_lda;
} cks_mm;

typedef enum {
    CKS_WMAT_F32 = 0,     /* f32 rows */
    CKS_WMAT_BF16_F32,    /* f32 rows holding bf16-rounded values (emulated kernel) */
    CKS_WMAT_BF16_PACKED, /* gemm_bf16.h's packed panels (avx512 kernel) */
    CKS_WMAT_BF16_ROWS    /* bf16 rows (onednn kernel) */
} cks_wmat_layout;

typedef struct {
    int64_t n, k; /* W is n × k: the product has n columns, k is the inner dimension */
    cks_wmat_layout layout;
    void *data; /* borrowed: the caller's buffer */
} cks_wmat;

/* The arithmetic for precision p; want picks the bf16 kernel (CKS_BF16_AUTO: the CPU's
 * fastest, or the CKS_BF16_KERNEL environment variable, see cks_bf16_kernel_resolve).
 * Returns 0, CKS_ENOMEM or CKS_ERROR (oneDNN engine). */
int cks_mm_init(cks_mm *mm, cks_precision p, cks_bf16_kernel want);
void cks_mm_release(cks_mm *mm);

/* Makes the scratch large enough for products of m rows with inner dimension k, so that
 * cks_matmul does not allocate later. CKS_ENOMEM when it does not fit. */
int cks_mm_reserve(cks_mm *mm, int64_t m, int64_t k);

/* Bytes of a cks_wmat of n × k in mm's form, a multiple of 64 (0 with *bad set on
 * overflow). */
size_t cks_wmat_bytes(const cks_mm *mm, int64_t n, int64_t k, int *bad);

/* Places W (n × k) in buf (64-byte aligned, cks_wmat_bytes long) and zeroes its padding;
 * fill it with cks_wmat_fill. */
void cks_wmat_init(cks_wmat *w, const cks_mm *mm, void *buf, int64_t n, int64_t k);

/* Elements [e0, e0+ne) of the row-major W from ne stored elements of float dtype dt:
 * widened (f32), or widened and rounded to bf16 (bf16.h). Disjoint ranges may be filled
 * from different threads. */
void cks_wmat_fill(cks_wmat *w, int64_t e0, int64_t ne, cks_dtype dt, const void *src);

/* Takes A (m × k f32, row stride lda) as the input of the products that follow: f32 keeps
 * the pointer (A must stay unchanged until then); bf16 rounds A once, into the scratch.
 * Returns 0 or CKS_ENOMEM (the scratch could not grow). */
int cks_mm_input(cks_mm *mm, const float *A, int64_t lda, int64_t m, int64_t k, int nthreads);

/* C[i][j - j0] = beta C[i][j - j0] + Σ_k A[i][k] W[j][k] for the input's rows i < m and
 * columns j0 <= j < j0+nn of the product (rows of W; W's k is the input's), in mm's
 * precision: f32 is exactly cks_sgemm('N', 'T'); bf16 multiplies the rounded input by W's
 * rounded values, products summed in f32. beta is 0 or 1; j0 is a multiple of 32 when nn
 * < n. Returns 0 or a library's error (CKS_ENOMEM, CKS_ERROR). */
int cks_mm_product(cks_mm *mm, const cks_wmat *w, int64_t j0, int64_t nn, float beta, float *C,
                   int64_t ldc, int nthreads);

/* cks_mm_input then cks_mm_product: C (+)= A W[j0 .. j0+nn)ᵀ. */
int cks_matmul(cks_mm *mm, const cks_wmat *w, int64_t j0, int64_t nn, int64_t m, const float *A,
               int64_t lda, float beta, float *C, int64_t ldc, int nthreads);

#endif
