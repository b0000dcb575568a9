/* Causal GQA attention, blocked by query rows (see attn.h). Reference: transformers
 * modeling_llama.py (and the other families), eager_attention_forward: softmax(q kᵀ / sqrt(d) +
 * causal mask, fp32) v. */
#include "attn.h"
#include "error.h"
#include "gemm.h"
#include "vmath.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* One (window, head): all its query blocks. */
static int attend_head(const cks_attn_shape *sh, const float *qkv, int64_t ldqkv, float *out,
                       int64_t ldo, const cks_model_window *w, int64_t h, float *sc)
{
    const int64_t hd = sh->head_dim, qd = sh->n_heads * hd, kvd = sh->n_kv_heads * hd;
    const int64_t kvh = h / (sh->n_heads / sh->n_kv_heads);
    const float *base = qkv + w->row * ldqkv;
    const float *Q = base + h * hd, *K = base + qd + kvh * hd, *V = base + qd + kvd + kvh * hd;
    float *O = out + w->row * ldo + h * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int64_t i0 = 0; i0 < w->n; i0 += sh->qblock) {
        int64_t bq = w->n - i0 < sh->qblock ? w->n - i0 : sh->qblock;
        int64_t nk = i0 + bq; /* keys 0..nk-1 are visible to some row of the block */
        int err = cks_sgemm('N', 'T', bq, nk, hd, scale, Q + i0 * ldqkv, ldqkv, K, ldqkv, 0.0f, sc,
                            nk, 1);
        if (err)
            return err;
        for (int64_t r = 0; r < bq; r++) {
            float *row = sc + r * nk;
            int64_t vis = i0 + r + 1; /* causal: keys 0..i0+r */
            cks_vsoftmax(row, vis);
            memset(row + vis, 0, (size_t)(nk - vis) * sizeof *row);
        }
        if ((err = cks_sgemm('N', 'N', bq, hd, nk, 1.0f, sc, nk, V, ldqkv, 0.0f, O + i0 * ldo, ldo,
                             1)) != 0)
            return err;
    }
    return 0;
}

int cks_attention(const cks_attn_shape *sh, const float *qkv, int64_t ldqkv, float *out,
                  int64_t ldo, const cks_model_window *win, int64_t nwin, float *scores)
{
    int err = 0;
    const int64_t ntask = nwin * sh->n_heads;
#pragma omp parallel num_threads(sh->nthreads) reduction(min : err)
    {
        float *sc = scores + (size_t)omp_get_thread_num() * (size_t)(sh->qblock * sh->max_win);
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < ntask; t++) {
            int e =
                attend_head(sh, qkv, ldqkv, out, ldo, &win[t / sh->n_heads], t % sh->n_heads, sc);
            if (e < err)
                err = e;
        }
    }
    /* messages are thread-local: set it again on the calling thread */
    return err ? cks_error_set(err, "out of memory in the attention products") : 0;
}

/* One (sequence, head) of a decode step: the query against keys 0..nk-1 of its cache.
 * One query row: vector loops (float32 sums, as the GEMM's; vmath.h), not a GEMM call per
 * head, whose fixed cost would dominate products this small. */
static void attend_cached(const cks_attn_shape *sh, const float *restrict q,
                          const float *restrict K, const float *restrict V, int64_t nk,
                          float *restrict O, float *restrict sc)
{
    const int64_t hd = sh->head_dim, kvd = sh->n_kv_heads * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int64_t j = 0; j < nk; j++)
        sc[j] = scale * cks_vdot(q, K + j * kvd, hd);
    cks_vsoftmax(sc, nk);
    for (int64_t i = 0; i < hd; i++)
        O[i] = 0;
    for (int64_t j = 0; j < nk; j++)
        cks_vaxpy(sc[j], V + j * kvd, O, hd);
}

int cks_attention_cached(const cks_attn_shape *sh, const float *qkv, int64_t ldqkv, float *out,
                         int64_t ldo, int64_t nseq, int64_t pos, const float *kc, const float *vc,
                         int64_t cap, float *scores)
{
    const int64_t hd = sh->head_dim, kvd = sh->n_kv_heads * hd,
                  group = sh->n_heads / sh->n_kv_heads;
    const int64_t ntask = nseq * sh->n_heads;
#pragma omp parallel num_threads(sh->nthreads)
    {
        float *sc = scores + (size_t)omp_get_thread_num() * (size_t)(sh->qblock * sh->max_win);
#pragma omp for schedule(static)
        for (int64_t t = 0; t < ntask; t++) {
            int64_t r = t / sh->n_heads, h = t % sh->n_heads, kvh = h / group;
            const float *K = kc + r * cap * kvd + kvh * hd, *V = vc + r * cap * kvd + kvh * hd;
            attend_cached(sh, qkv + r * ldqkv + h * hd, K, V, pos + 1, out + r * ldo + h * hd, sc);
        }
    }
    return 0;
}
