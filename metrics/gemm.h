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

#endif
