/* The bf16 matrix kernels behind cks_matmul (gemm.h) for `--precision bf16`:
 * C(m × nn) (+)= A(m × k) · W[j0 .. j0+nn)ᵀ with A float32 activations rounded to bf16
 * (bf16.h) and W a weight matrix already rounded to bf16, products accumulated in f32.
 *
 * Our own AVX512_BF16 kernel (gemm_bf16.c) works on packed operands, BLIS-style:
 *   W (n × k, row-major as stored) is packed once per layer into panels of
 *     CKS_BF16_NR rows of W (columns of C); a panel holds the k/2 (k rounded up to even)
 *     pairs of its rows in order, each pair as NR dwords (lane r = bf16 pair (W[r][2p],
 *     W[r][2p+1])): the operand layout of vdpbf16ps. Rows past n and the pad column of an
 *     odd k are zero.
 *   A is rounded and packed per product into micro-panels of CKS_BF16_MR rows, pair by
 *     pair (MR dwords per pair), rows past m zero.
 * The product runs a 14 × 32 register-blocked micro-kernel (28 zmm accumulators, one
 * embedded-broadcast vdpbf16ps per A dword) over tiles of C spread over the threads; each
 * accumulator sums its k pairs in order, and a K-block's sum is added to C.
 *
 * The oneDNN kernel (gemm_bf16_dnnl.c) takes the same operands unpacked: W as bf16 rows,
 * A as bf16 rows. */
#ifndef CKS_GEMM_BF16_H
#define CKS_GEMM_BF16_H

#include "bf16.h"

#include <stddef.h>
#include <stdint.h>

#define CKS_BF16_MR 14 /* rows of A per micro-panel */
#define CKS_BF16_NR 32 /* rows of W (columns of C) per panel */

/* Elements (uint16_t) of W packed: panels of NR rows, k rounded up to even. */
size_t cks_bf16_packed_w_elems(int64_t n, int64_t k);

/* Elements (uint16_t) of A packed for m rows: micro-panels of MR rows. */
size_t cks_bf16_packed_a_elems(int64_t m, int64_t k);

/* Zeroes the padding of a packed W (rows n.. of the last panel, the pad column of an odd
 * k); call once before filling. */
void cks_bf16_pack_w_pad(uint16_t *pw, int64_t n, int64_t k);

/* Writes the already-rounded bf16 elements [e0, e0+ne) of the row-major n × k matrix W
 * (src[0] is element e0) into its packed form pw. */
void cks_bf16_pack_w(uint16_t *pw, int64_t n, int64_t k, int64_t e0, int64_t ne,
                     const uint16_t *src);

/* Rounds and packs rows of A (m × k f32, row stride lda) into pa, on nthreads threads. */
void cks_bf16_pack_a(uint16_t *pa, const float *A, int64_t lda, int64_t m, int64_t k, int nthreads);

/* C[i][j - j0] = (beta ? C[i][j - j0] : 0) + Σ_k A[i][k] W[j][k] for i < m, j0 <= j <
 * j0 + nn, from packed pa (m rows) and pw (n × k); j0 a multiple of CKS_BF16_NR, beta 0 or
 * 1. AVX512_BF16 CPUs only (cks_cpu_has_avx512_bf16). */
void cks_bf16_gemm_packed(int64_t m, int64_t n, int64_t k, int64_t j0, int64_t nn,
                          const uint16_t *pa, const uint16_t *pw, float beta, float *C, int64_t ldc,
                          int nthreads);

/* oneDNN's CPU engine and stream for the products below. */
typedef struct cks_bf16_dnnl cks_bf16_dnnl;
int cks_bf16_dnnl_new(cks_bf16_dnnl **out);
void cks_bf16_dnnl_free(cks_bf16_dnnl *d);

/* The same product by oneDNN's matmul primitive from unpacked bf16 rows: A (m × k, row
 * stride lda), W (nn rows of k, row stride k: rows j0.. of the weight matrix). Returns 0,
 * CKS_ENOMEM, or CKS_ERROR when oneDNN refuses the shape. */
int cks_bf16_gemm_dnnl(cks_bf16_dnnl *d, int64_t m, int64_t k, int64_t nn, const uint16_t *A,
                       int64_t lda, const uint16_t *W, float beta, float *C, int64_t ldc,
                       int nthreads);

#endif
