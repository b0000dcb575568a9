/* The row operations of the forward pass (model.h): the one weight-matmul call site,
 * norms, activations, rotary embeddings, clipping. All float32 over row-major rows with a
 * row stride, spread over nthreads OpenMP threads. */
#ifndef CKS_MODEL_OPS_H
#define CKS_MODEL_OPS_H

#include "gemm.h"
#include "model_family.h"

#include <stdint.h>

/* y[r] = x[r] Wᵀ + b (accumulate: y[r] += x[r] Wᵀ + b) for rows r < m: x (m, W->k) with
 * row stride ldx, W (W->n, W->k) in mm's form, b (W->n) or NULL, y (m, W->n) with row
 * stride ldy. Every matmul by a weight of the forward pass goes through here (q/k/v, o,
 * gate/up, down, lm_head), in mm's precision (cks_matmul: bf16 rounds x and uses W's
 * rounded values); the bias is added in float32. Returns 0 or CKS_ENOMEM / CKS_ERROR (from
 * the GEMM library). */
int cks_model_linear(cks_mm *mm, const cks_wmat *W, const float *x, int64_t ldx, int64_t m,
                     const float *b, float *y, int64_t ldy, int accumulate, int nthreads);

/* out[r] = Norm(x[r]) over n columns for rows r < rows (out may equal x):
 *   CKS_NORM_RMS       w · (x · 1/sqrt(mean(x²) + eps))                 LlamaRMSNorm
 *   CKS_NORM_LAYER     (x − mean) · 1/sqrt(var + eps) · w + b            nn.LayerNorm
 *   CKS_NORM_LAYER_NP  (x − mean) · 1/sqrt(var + 1e-5)                   OlmoLayerNorm
 * mean and var (population) are accumulated in double and rounded to float, the rest is
 * float32 in HF's order. CKS_NORM_NONE copies. */
void cks_model_norm(cks_norm_type type, float *out, int64_t ldo, const float *x, int64_t ldx,
                    const float *w, const float *b, int64_t rows, int64_t n, float eps,
                    int nthreads);

/* x = gelu(x) = x/2 · (1 + erf(x/√2)), the exact (erf) GELU of torch's
 * nn.functional.gelu, with erf to within 1.5e-7 (Abramowitz & Stegun 7.1.26): each
 * output within 3e-7·|x| of the exact value (tests/test_model.c measures it). */
void cks_model_gelu(float *x, int64_t n);

/* x = min(max(x, −c), c) for rows r < rows, n columns each (OLMo's clip_qkv). */
void cks_model_clip(float *x, int64_t ldx, int64_t rows, int64_t n, float c, int nthreads);

/* cos and sin (max_pos, nfreq) of pos · inv_freq_i, inv_freq_i = 1 / theta^(2i/d), each
 * step rounded to float32 as LlamaRotaryEmbedding computes them (arange(0, d, 2).float()
 * / d, base ** that, 1.0 / that, inv_freq @ position_ids in float32, then cos/sin of the
 * float32 angle). */
void cks_model_rope_tables(float *cosv, float *sinv, int64_t max_pos, int64_t nfreq, int64_t d,
                           double theta);

/* apply_rotary_pos_emb on heads [0, nheads) of each row of qk (row stride ld, head size
 * hd): v[i], v[i+nfreq] = v[i]·cos − v[i+nfreq]·sin, v[i+nfreq]·cos + v[i]·sin for
 * i < nfreq (rotate-half over the first 2·nfreq dims; the rest pass through). Row r is at
 * position pos[r]. */
void cks_model_rope(float *qk, int64_t ld, int64_t rows, int64_t nheads, int64_t hd, int64_t nfreq,
                    const int32_t *pos, const float *cosv, const float *sinv, int nthreads);

#endif
