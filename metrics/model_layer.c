/* One layer of the forward pass over a batch of windows (see model.h), as the family
 * row's steps say. Every projection is one GEMM over all rows of the batch (through
 * cks_model_linear); the MLP runs in blocks of mlp_rows rows. References:
 * transformers' LlamaDecoderLayer, Qwen2Attention (q/k/v biases), OlmoAttention
 * (clip_qkv), Olmo2Attention and Olmo2DecoderLayer (q/k norms, post-sublayer norms),
 * GPTNeoXAttention and GPTNeoXLayer (fused qkv, partial rotary, parallel residual). */
#include "attn.h"
#include "error.h"
#include "model.h"
#include "model_ops.h"
#include "vmath.h"

#include <omp.h>
#include <string.h>

/* x[r] += o[r] for rows r < rows. */
static void add_rows(float *x, const float *o, int64_t rows, int64_t dim, int nthreads)
{
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < dim; i++)
            x[r * dim + i] += o[r * dim + i];
}

/* The MLP of rows [0, rows) of in, added to x: x += MLP(in), or with a post-MLP norm
 * (OLMo 2) x += Norm_mlp(MLP(in)). in may be x: each block reads its rows before it
 * writes them. */
static int mlp(cks_model_state *s, const float *in, float *x, int64_t rows)
{
    const cks_model_config *c = &s->cfg;
    const cks_model_layer *L = &s->layer;
    const int64_t H = c->hidden, U = s->up_rows, D = c->dim;
    const cks_norm_type post = c->steps.mlp_out;
    int err = 0;
    for (int64_t m0 = 0; m0 < rows && !err; m0 += s->mlp_rows) {
        int64_t m = rows - m0 < s->mlp_rows ? rows - m0 : s->mlp_rows;
        /* SwiGLU: [gate | up] = m [W_gate; W_up]ᵀ, one product; GELU: up */
        if ((err = cks_model_linear(&s->mm, &L->w_up, in + m0 * D, D, m, L->b_up, s->hb, U, 0,
                                    s->nthreads)))
            break;
#pragma omp parallel for num_threads(s->nthreads) schedule(static)
        for (int64_t r = 0; r < m; r++) {
            if (c->steps.mlp == CKS_MLP_SWIGLU)
                cks_vswiglu(s->hb + r * U, s->hb + r * U + H, H);
            else
                cks_model_gelu(s->hb + r * U, H);
        }
        if (!post) { /* x += down(h) */
            err = cks_model_linear(&s->mm, &L->w_down, s->hb, U, m, L->b_down, x + m0 * D, D, 1,
                                   s->nthreads);
            continue;
        }
        float *o = s->ob + m0 * D;
        if ((err = cks_model_linear(&s->mm, &L->w_down, s->hb, U, m, L->b_down, o, D, 0,
                                    s->nthreads)))
            break;
        cks_model_norm(post, o, D, o, D, L->mlp_norm, L->mlp_norm_b, m, D, c->eps, s->nthreads);
        add_rows(x + m0 * D, o, m, D, s->nthreads);
    }
    return err;
}

/* q, k, v of every row into s->qkv: projection, clip, q/k norms, rotary embeddings. */
static int qkv(cks_model_state *s, const float *in, int64_t rows)
{
    const cks_model_config *c = &s->cfg;
    const cks_model_layer *L = &s->layer;
    const int64_t hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    const int64_t ld = qd + 2 * kvd;
    int err =
        cks_model_linear(&s->mm, &L->wqkv, in, c->dim, rows, L->bqkv, s->qkv, ld, 0, s->nthreads);
    if (err)
        return err;
    if (c->clip_qkv > 0) /* OlmoAttention: q, k and v clamped to [-clip, clip] */
        cks_model_clip(s->qkv, ld, rows, ld, c->clip_qkv, s->nthreads);
    if (c->steps.qk_norm) { /* Olmo2Attention: q_norm(q_proj(x)), k_norm(k_proj(x)) */
        cks_model_norm(CKS_NORM_RMS, s->qkv, ld, s->qkv, ld, L->q_norm, NULL, rows, qd, c->eps,
                       s->nthreads);
        cks_model_norm(CKS_NORM_RMS, s->qkv + qd, ld, s->qkv + qd, ld, L->k_norm, NULL, rows, kvd,
                       c->eps, s->nthreads);
    }
    /* q heads, then k heads: consecutive in a row */
    cks_model_rope(s->qkv, ld, rows, c->n_heads + c->n_kv_heads, hd, c->rot_freqs, s->pos,
                   s->rope_cos, s->rope_sin, s->nthreads);
    return 0;
}

/* The layer's input side up to attention: positions already in s->pos; the attention
 * input (normalised x or x) into q, k, v of s->qkv. */
static int layer_in(cks_model_state *s, float *x, int64_t rows)
{
    const cks_model_config *c = &s->cfg;
    const cks_model_layer *L = &s->layer;
    const cks_model_family_steps *st = &c->steps;
    const int64_t D = c->dim;
    const float *a = x;
    if (st->attn_in) {
        cks_model_norm(st->attn_in, s->xb, D, x, D, L->attn_norm, L->attn_norm_b, rows, D, c->eps,
                       s->nthreads);
        a = s->xb;
    }
    return qkv(s, a, rows);
}

/* The layer's output side from the attention output s->att: the output projection, the
 * residuals and the MLP, into x. */
static int layer_out(cks_model_state *s, float *x, int64_t rows)
{
    const cks_model_config *c = &s->cfg;
    const cks_model_layer *L = &s->layer;
    const cks_model_family_steps *st = &c->steps;
    const int64_t D = c->dim, qd = c->n_heads * c->head_dim;
    int err;
    /* GPT-NeoX's parallel residual: the MLP reads the layer's input, x before the
       attention output is added */
    if (c->parallel)
        cks_model_norm(st->mlp_in, s->xb, D, x, D, L->mlp_norm, L->mlp_norm_b, rows, D, c->eps,
                       s->nthreads);
    if (st->attn_out) { /* x += Norm(o_proj(attn)) */
        if ((err = cks_model_linear(&s->mm, &L->wo, s->att, qd, rows, L->bo, s->ob, D, 0,
                                    s->nthreads)))
            return err;
        cks_model_norm(st->attn_out, s->ob, D, s->ob, D, L->attn_norm, L->attn_norm_b, rows, D,
                       c->eps, s->nthreads);
        add_rows(x, s->ob, rows, D, s->nthreads);
    } else if ((err = cks_model_linear(&s->mm, &L->wo, s->att, qd, rows, L->bo, x, D, 1,
                                       s->nthreads))) { /* x += o_proj(attn) */
        return err;
    }
    /* MLP */
    const float *m = c->parallel ? s->xb : x;
    if (!c->parallel && st->mlp_in) {
        cks_model_norm(st->mlp_in, s->xb, D, x, D, L->mlp_norm, L->mlp_norm_b, rows, D, c->eps,
                       s->nthreads);
        m = s->xb;
    }
    return mlp(s, m, x, rows);
}

int cks_model_layer_forward(cks_model_state *s, float *x, const cks_model_window *win, int64_t nwin)
{
    const cks_model_config *c = &s->cfg;
    const int64_t qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    const int64_t ld = qd + 2 * kvd;
    int64_t rows = 0;
    int err;
    for (int64_t w = 0; w < nwin; w++) {
        for (int64_t i = 0; i < win[w].n; i++)
            s->pos[win[w].row + i] = (int32_t)i;
        if (win[w].row + win[w].n > rows)
            rows = win[w].row + win[w].n;
    }
    if ((err = layer_in(s, x, rows)) != 0)
        return err;
    cks_attn_shape sh = {c->n_heads, c->n_kv_heads, c->head_dim,
                         s->qblock,  s->max_win,    s->nthreads};
    double t0 = omp_get_wtime();
    err = cks_attention(&sh, s->qkv, ld, s->att, qd, win, nwin, s->scores);
    s->t_attention += omp_get_wtime() - t0;
    if (err)
        return err;
    return layer_out(s, x, rows);
}

int cks_model_layer_decode(cks_model_state *s, float *x, int64_t nseq, int64_t pos,
                           const cks_model_kv *kv)
{
    const cks_model_config *c = &s->cfg;
    const int64_t qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    const int64_t ld = qd + 2 * kvd;
    int err;
    if (nseq > s->max_rows || pos >= s->max_win || pos >= kv->cap)
        return cks_error_set(CKS_EINVAL,
                             "decode of %lld sequences at position %lld: the state "
                             "holds %lld rows and %lld positions",
                             (long long)nseq, (long long)pos, (long long)s->max_rows,
                             (long long)s->max_win);
    for (int64_t r = 0; r < nseq; r++)
        s->pos[r] = (int32_t)pos;
    if ((err = layer_in(s, x, nseq)) != 0)
        return err;
    /* this position's k and v join each sequence's cache */
    for (int64_t r = 0; r < nseq; r++) {
        float *dk = kv->k + (r * kv->cap + pos) * kvd, *dv = kv->v + (r * kv->cap + pos) * kvd;
        memcpy(dk, s->qkv + r * ld + qd, (size_t)kvd * sizeof *dk);
        memcpy(dv, s->qkv + r * ld + qd + kvd, (size_t)kvd * sizeof *dv);
    }
    cks_attn_shape sh = {c->n_heads, c->n_kv_heads, c->head_dim,
                         s->qblock,  s->max_win,    s->nthreads};
    double t0 = omp_get_wtime();
    err = cks_attention_cached(&sh, s->qkv, ld, s->att, qd, nseq, pos, kv->k, kv->v, kv->cap,
                               s->scores);
    s->t_attention += omp_get_wtime() - t0;
    if (err)
        return err;
    return layer_out(s, x, nseq);
}

void cks_model_kv_store(const cks_model_state *s, const cks_model_window *win, int64_t nwin,
                        int64_t seq0, const cks_model_kv *kv)
{
    const cks_model_config *c = &s->cfg;
    const int64_t qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    const int64_t ld = qd + 2 * kvd;
    for (int64_t w = 0; w < nwin; w++)
        for (int64_t i = 0; i < win[w].n && i < kv->cap; i++) {
            const float *src = s->qkv + (win[w].row + i) * ld;
            float *dk = kv->k + ((seq0 + w) * kv->cap + i) * kvd;
            float *dv = kv->v + ((seq0 + w) * kv->cap + i) * kvd;
            memcpy(dk, src + qd, (size_t)kvd * sizeof *dk);
            memcpy(dv, src + qd + kvd, (size_t)kvd * sizeof *dv);
        }
}
