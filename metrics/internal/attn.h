/* Causal grouped-query attention over windows, blocked by query rows.
 *
 * For every window (consecutive rows, positions 0..n-1) and head h (kv head h / (heads /
 * kv_heads), transformers' repeat_kv), query rows are taken qblock at a time: the block's
 * scores against the keys it may see (qblock × last row + 1, never n² per head), scaled
 * by 1/sqrt(head_dim), masked, softmaxed in float32 and multiplied by V. Windows × heads
 * are spread over threads; each thread owns one qblock × max_win score buffer. */
#ifndef CKS_ATTN_H
#define CKS_ATTN_H

#include "model.h"

#include <stdint.h>

typedef struct {
    int64_t n_heads, n_kv_heads, head_dim;
    int64_t qblock;  /* query rows per block */
    int64_t max_win; /* longest window (score buffer width) */
    int nthreads;
} cks_attn_shape;

/* qkv: rows of [q (n_heads*hd) | k (n_kv_heads*hd) | v (n_kv_heads*hd)], row stride ldqkv;
 * out: (rows, n_heads*hd), row stride ldo; scores: nthreads * qblock * max_win floats.
 * Returns 0 or CKS_ENOMEM (from the GEMM library). */
int cks_attention(const cks_attn_shape *sh, const float *qkv, int64_t ldqkv, float *out,
                  int64_t ldo, const cks_model_window *win, int64_t nwin, float *scores);

/* One decode step of nseq sequences, one query row each at position pos (row r of qkv:
 * sequence r): each head's query against keys 0..pos of the sequence's cache, kc and vc
 * (nseq, cap, n_kv_heads*hd), which already hold position pos. scores: as above
 * (max_win >= pos + 1). Returns 0. */
int cks_attention_cached(const cks_attn_shape *sh, const float *qkv, int64_t ldqkv, float *out,
                         int64_t ldo, int64_t nseq, int64_t pos, const float *kc, const float *vc,
                         int64_t cap, float *scores);

#endif
