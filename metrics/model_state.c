/* The forward pass's run state and weights (see model.h): scratch buffers allocated once, a
 * layer or the lm_head widened from the mapped checkpoint (row-block views run by run) into
 * the precision's form, and embedding lookups. */
#include "checked.h"
#include "error.h"
#include "model.h"
#include "model_ops.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WIDEN_BLOCK ((size_t)1 << 16) /* elements per widening task */
#define WIDEN_CHUNK ((size_t)8 << 20) /* stored bytes mapped in at a time while widening */
#define HEAD_ROWS   512               /* rows per lm_head block */
#define VOCAB_BLOCK 4096 /* logits columns per block: 512 x 4096 floats (8 MiB) stay in cache */
#define MLP_ROWS    1024 /* rows per gate/up/down block */
#define QBLOCK      128  /* query rows per attention block */

static int64_t qkv_rows(const cks_model_config *c)
{
    return (c->n_heads + 2 * c->n_kv_heads) * c->head_dim;
}

static int64_t up_rows(const cks_model_config *c)
{
    return c->steps.mlp == CKS_MLP_SWIGLU ? 2 * c->hidden : c->hidden;
}

/* Bytes of a layer's vectors (norms and biases, f32): every piece, present or not, 64-byte
 * aligned. */
static size_t vec_bytes(const cks_model_config *c)
{
    const int64_t qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    int64_t n = 6 * c->dim + qd + kvd; /* norms and their biases */
    n += qkv_rows(c) + c->dim;         /* bqkv, bo */
    n += up_rows(c) + c->dim;          /* b_up, b_down */
    return ((size_t)n * sizeof(float) + 63) / 64 * 64;
}

/* Bytes of one layer in the weight buffer: the vectors, then the four matrices in the
 * precision's form (cks_wmat_bytes). */
static size_t layer_bytes(const cks_model_state *s, int *bad)
{
    const cks_model_config *c = &s->cfg;
    const int64_t qd = c->n_heads * c->head_dim;
    return vec_bytes(c) + cks_wmat_bytes(&s->mm, qkv_rows(c), c->dim, bad) +
           cks_wmat_bytes(&s->mm, c->dim, qd, bad) +
           cks_wmat_bytes(&s->mm, up_rows(c), c->dim, bad) +
           cks_wmat_bytes(&s->mm, c->dim, c->hidden, bad);
}

static float *alloc_floats(int64_t a, int64_t b, int *bad)
{
    int64_t n;
    size_t bytes;
    if (*bad || cks_mul_i64(a, b, &n) || n < 0 || cks_mul_size((size_t)n, sizeof(float), &bytes)) {
        *bad = 1;
        return NULL;
    }
    /* 64-byte aligned rows start for the GEMM kernels */
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) {
        *bad = 1;
        return NULL;
    }
    return p;
}

static void state_sizes(cks_model_state *s, int64_t max_rows, int64_t max_win, int nthreads)
{
    const cks_model_config *c = &s->cfg;
    s->nthreads = nthreads < 1 ? 1 : nthreads;
    s->max_rows = max_rows < 1 ? 1 : max_rows;
    s->max_win = max_win < 1 ? 1 : max_win;
    if (s->max_win > s->max_rows)
        s->max_rows = s->max_win;
    s->mlp_rows = s->max_rows < MLP_ROWS ? s->max_rows : MLP_ROWS;
    s->qblock = s->max_win < QBLOCK ? s->max_win : QBLOCK;
    s->head_rows = s->max_rows < HEAD_ROWS ? s->max_rows : HEAD_ROWS;
    s->vblock = c->vocab < VOCAB_BLOCK ? c->vocab : VOCAB_BLOCK;
    s->up_rows = up_rows(c);
}

int cks_model_state_new(cks_model_state **out, const cks_model_config *cfg, int64_t max_rows,
                        int64_t max_win, int nthreads)
{
    const cks_model_config *c = cfg;
    const int64_t qd = c->n_heads * c->head_dim;
    int bad = 0;
    if (c->window > 0 && max_win > c->window)
        return cks_error_set(CKS_EUNSUPPORTED,
                             "windows of %lld tokens would meet the %s sliding window of %lld "
                             "tokens, which ckptscope does not implement",
                             (long long)max_win, c->family->model_type, (long long)c->window);
    cks_model_state *s = calloc(1, sizeof *s);
    if (!s)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    s->cfg = *cfg;
    state_sizes(s, max_rows, max_win, nthreads);
    int err = cks_mm_init(&s->mm, c->precision, CKS_BF16_AUTO);
    if (err) {
        cks_model_state_free(s);
        return err;
    }
    int post = c->steps.attn_out || c->steps.mlp_out;
    size_t lb = layer_bytes(s, &bad), hb = cks_wmat_bytes(&s->mm, c->vocab, c->dim, &bad);
    s->wbuf = alloc_floats((int64_t)((lb > hb ? lb : hb) / sizeof(float)), 1, &bad);
    /* the rounded activations of the largest products (bf16) */
    bad = bad || cks_mm_reserve(&s->mm, s->max_rows, c->dim > qd ? c->dim : qd) != 0 ||
          cks_mm_reserve(&s->mm, s->mlp_rows, c->hidden) != 0 ||
          cks_mm_reserve(&s->mm, s->head_rows, c->dim) != 0;
    s->final_norm = alloc_floats(c->dim, 1, &bad);
    s->final_norm_b = alloc_floats(c->dim, 1, &bad);
    s->rope_cos = alloc_floats(s->max_win, c->rot_freqs > 0 ? c->rot_freqs : 1, &bad);
    s->rope_sin = alloc_floats(s->max_win, c->rot_freqs > 0 ? c->rot_freqs : 1, &bad);
    s->xb = alloc_floats(s->max_rows, c->dim, &bad);
    s->ob = post ? alloc_floats(s->max_rows, c->dim, &bad) : NULL;
    s->qkv = alloc_floats(s->max_rows, qkv_rows(c), &bad);
    s->att = alloc_floats(s->max_rows, qd, &bad);
    s->hb = alloc_floats(s->mlp_rows, s->up_rows, &bad);
    s->scores = alloc_floats((int64_t)s->nthreads * s->qblock, s->max_win, &bad);
    s->logits = alloc_floats(s->head_rows, s->vblock, &bad);
    s->lse_max = alloc_floats(s->head_rows, 1, &bad);
    s->lse_target = alloc_floats(s->head_rows, 1, &bad);
    s->lse_sum = bad ? NULL : malloc((size_t)s->head_rows * sizeof *s->lse_sum);
    s->pos = bad ? NULL : malloc((size_t)s->max_rows * sizeof *s->pos);
    if (bad || !s->pos || !s->lse_sum) {
        cks_model_state_free(s);
        return cks_error_set(CKS_ENOMEM,
                             "out of memory for the forward pass (batches of %lld rows, "
                             "windows of %lld)",
                             (long long)max_rows, (long long)max_win);
    }
    cks_model_rope_tables(s->rope_cos, s->rope_sin, s->max_win, c->rot_freqs, c->rot_dim, c->theta);
    *out = s;
    return 0;
}

void cks_model_state_free(cks_model_state *s)
{
    if (!s)
        return;
    free(s->pos);
    free(s->lse_sum);
    free(s->lse_target);
    free(s->lse_max);
    free(s->logits);
    free(s->scores);
    free(s->hb);
    free(s->att);
    free(s->qkv);
    free(s->ob);
    free(s->xb);
    free(s->rope_sin);
    free(s->rope_cos);
    free(s->final_norm_b);
    free(s->final_norm);
    free(s->wbuf);
    cks_mm_release(&s->mm);
    free(s);
}

/* ---- widening ---- */

/* Widens one contiguous run of n stored elements of t into elements e0.. of w (widened to
 * f32, or rounded to bf16 in the precision's layout), WIDEN_CHUNK stored bytes at a time:
 * the pager maps each chunk in before and releases it after, so at most one chunk of the
 * mapped file is resident. */
static void widen_run(const cks_model_state *s, const cks_tensor *t, const unsigned char *src,
                      size_t n, cks_wmat *w, int64_t e0)
{
    const size_t es = cks_dtype_size(t->dtype);
    const size_t per_chunk = WIDEN_CHUNK / es;
    const cks_model_pager *pg = &s->pager;
    for (size_t c0 = 0; c0 < n; c0 += per_chunk) {
        const size_t cn = n - c0 < per_chunk ? n - c0 : per_chunk;
        const int64_t nb = (int64_t)((cn + WIDEN_BLOCK - 1) / WIDEN_BLOCK);
        if (pg->prepare)
            pg->prepare(pg->ctx, t, src + c0 * es, cn * es);
#pragma omp parallel for num_threads(s->nthreads) schedule(static)
        for (int64_t b = 0; b < nb; b++) {
            size_t i = c0 + (size_t)b * WIDEN_BLOCK,
                   k = c0 + cn - i < WIDEN_BLOCK ? c0 + cn - i : WIDEN_BLOCK;
            cks_wmat_fill(w, e0 + (int64_t)i, (int64_t)k, t->dtype, src + i * es);
        }
        if (pg->release)
            pg->release(pg->ctx, t, src + c0 * es, cn * es);
    }
}

/* Widens t (contiguous or a row-block view, tensor.h) into elements e0.. of w, in element
 * order. */
static void widen_into(const cks_model_state *s, const cks_tensor *t, cks_wmat *w, int64_t e0)
{
    for (int64_t i = 0; i < cks_tensor_nseg(t); i++) {
        size_t n;
        const unsigned char *src = cks_tensor_seg(t, i, &n);
        widen_run(s, t, src, n, w, e0);
        e0 += (int64_t)n;
    }
}

/* Widens t (a norm or a bias) into dst as float32. */
static void widen(const cks_model_state *s, const cks_tensor *t, float *dst)
{
    cks_wmat w = {1, t->numel, CKS_WMAT_F32, dst};
    widen_into(s, t, &w, 0);
}

/* 1 when q, k, v are the three row-block views of one fused tensor (GPT-NeoX's
 * query_key_value, loaders/weights.h): block i of each lies side by side in the file. */
static int fused_views(const cks_tensor *const *v)
{
    if (!v[0] || !v[1] || !v[2] || cks_tensor_is_contiguous(v[0]))
        return 0;
    size_t n0, n1;
    const unsigned char *a = cks_tensor_seg(v[0], 0, &n0), *b = cks_tensor_seg(v[1], 0, &n1),
                        *c = cks_tensor_seg(v[2], 0, &n1);
    size_t bytes = n0 * cks_dtype_size(v[0]->dtype);
    for (int p = 1; p < 3; p++)
        if (v[p]->file != v[0]->file || v[p]->dtype != v[0]->dtype ||
            v[p]->block_rows != v[0]->block_rows || v[p]->block_stride != v[0]->block_stride ||
            cks_tensor_nseg(v[p]) != cks_tensor_nseg(v[0]))
            return 0;
    return b == a + bytes && c == b + bytes && v[0]->block_stride == 3 * v[0]->block_rows;
}

/* Widens the q, k, v views of one fused tensor into w at elements off[0..3) in one pass
 * over its stored rows, about WIDEN_CHUNK bytes of heads at a time (mapped in, widened
 * into the three destinations, released): every page is read once, where three separate
 * views would read the fused rows three times and drop each other's pages. */
static void widen_fused(const cks_model_state *s, const cks_tensor *const *v, cks_wmat *w,
                        const int64_t *off)
{
    const int64_t nseg = cks_tensor_nseg(v[0]);
    size_t n;
    cks_tensor_seg(v[0], 0, &n);
    const size_t es = cks_dtype_size(v[0]->dtype), head = 3 * n * es;
    const int64_t per = head < WIDEN_CHUNK ? (int64_t)(WIDEN_CHUNK / head) : 1;
    const cks_model_pager *pg = &s->pager;
    for (int64_t h0 = 0; h0 < nseg; h0 += per) {
        const int64_t nh = nseg - h0 < per ? nseg - h0 : per;
        const unsigned char *p = cks_tensor_seg(v[0], h0, &n);
        if (pg->prepare)
            pg->prepare(pg->ctx, v[0], p, (size_t)nh * head);
#pragma omp parallel for num_threads(s->nthreads) schedule(static)
        for (int64_t t = 0; t < 3 * nh; t++) {
            size_t k;
            const void *src = cks_tensor_seg(v[t % 3], h0 + t / 3, &k);
            cks_wmat_fill(w, off[t % 3] + (h0 + t / 3) * (int64_t)k, (int64_t)k, v[t % 3]->dtype,
                          src);
        }
        if (pg->release)
            pg->release(pg->ctx, v[0], p, (size_t)nh * head);
    }
}

/* Places an n × k matrix of the layer at *p in the buffer and moves *p past it; data NULL
 * when the model has no such matrix (view NULL). */
static void place(cks_model_state *s, cks_wmat *w, const cks_tensor *view, unsigned char **p,
                  int64_t n, int64_t k)
{
    int bad = 0;
    memset(w, 0, sizeof *w);
    if (!view)
        return;
    cks_wmat_init(w, &s->mm, *p, n, k);
    *p += cks_wmat_bytes(&s->mm, n, k, &bad);
}

/* Lays the layer's vectors out at the start of wbuf (NULL where the model has none). */
static void take_vectors(cks_model_state *s, const cks_model_layer_views *v)
{
    const cks_model_config *c = &s->cfg;
    const int64_t qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    cks_model_layer *L = &s->layer;
    float *p = s->wbuf;
#define TAKE(field, view, n) \
    L->field = NULL;         \
    if (view) {              \
        L->field = p;        \
        p += (n);            \
    }
    TAKE(attn_norm, v->attn_norm, c->dim);
    TAKE(attn_norm_b, v->attn_norm_b, c->dim);
    TAKE(mlp_norm, v->mlp_norm, c->dim);
    TAKE(mlp_norm_b, v->mlp_norm_b, c->dim);
    TAKE(q_norm, v->q_norm, qd);
    TAKE(k_norm, v->k_norm, kvd);
    TAKE(bqkv, v->bq, qkv_rows(c));
    TAKE(bo, v->bo, c->dim);
    TAKE(b_up, v->b_up, s->up_rows);
    TAKE(b_down, v->b_down, c->dim);
#undef TAKE
}

/* Lays the layer's pieces out in wbuf (vectors f32, then the matrices in the precision's
 * form) and widens them. */
void cks_model_load_layer(cks_model_state *s, const cks_model_weights *w, int64_t l)
{
    const cks_model_config *c = &s->cfg;
    const cks_model_layer_views *v = &w->layers[l];
    const int64_t qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    cks_model_layer *L = &s->layer;
    take_vectors(s, v);
    unsigned char *p = (unsigned char *)s->wbuf + vec_bytes(c);
    place(s, &L->wqkv, v->wq, &p, qkv_rows(c), c->dim);
    place(s, &L->wo, v->wo, &p, c->dim, qd);
    place(s, &L->w_up, v->w_up, &p, s->up_rows, c->dim);
    place(s, &L->w_down, v->w_down, &p, c->dim, c->hidden);
    const struct {
        const cks_tensor *t;
        float *dst;
    } vecs[] = {
        {v->attn_norm, L->attn_norm},
        {v->attn_norm_b, L->attn_norm_b},
        {v->mlp_norm, L->mlp_norm},
        {v->mlp_norm_b, L->mlp_norm_b},
        {v->q_norm, L->q_norm},
        {v->k_norm, L->k_norm},
        {v->bo, L->bo},
        /* SwiGLU: gate rows first, then up rows (one GEMM gives [gate | up]) */
        {v->b_gate, L->b_up},
        {v->b_up, v->b_gate ? L->b_up + c->hidden : L->b_up},
        {v->b_down, L->b_down},
    };
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++)
        if (vecs[i].t)
            widen(s, vecs[i].t, vecs[i].dst);
    const cks_tensor *wqkv[3] = {v->wq, v->wk, v->wv}, *bqkv[3] = {v->bq, v->bk, v->bv};
    const int64_t woff[3] = {0, qd * c->dim, (qd + kvd) * c->dim}, boff[3] = {0, qd, qd + kvd};
    cks_wmat bv = {1, qkv_rows(c), CKS_WMAT_F32, L->bqkv};
    if (fused_views(wqkv))
        widen_fused(s, wqkv, &L->wqkv, woff);
    else
        for (int i = 0; i < 3; i++)
            if (wqkv[i])
                widen_into(s, wqkv[i], &L->wqkv, woff[i]);
    if (fused_views(bqkv))
        widen_fused(s, bqkv, &bv, boff);
    else
        for (int i = 0; i < 3; i++)
            if (bqkv[i])
                widen_into(s, bqkv[i], &bv, boff[i]);
    if (v->wo)
        widen_into(s, v->wo, &L->wo, 0);
    if (v->w_gate)
        widen_into(s, v->w_gate, &L->w_up, 0);
    if (v->w_up)
        widen_into(s, v->w_up, &L->w_up, v->w_gate ? c->hidden * c->dim : 0);
    if (v->w_down)
        widen_into(s, v->w_down, &L->w_down, 0);
}

void cks_model_load_head(cks_model_state *s, const cks_model_weights *w)
{
    if (w->final_norm)
        widen(s, w->final_norm, s->final_norm);
    if (w->final_norm_b)
        widen(s, w->final_norm_b, s->final_norm_b);
    memset(&s->layer, 0, sizeof s->layer);
    cks_wmat_init(&s->head, &s->mm, s->wbuf, s->cfg.vocab, s->cfg.dim);
    widen_into(s, w->lm_head, &s->head, 0);
}

void cks_model_embed(const cks_model_weights *w, const int32_t *ids, int64_t n, float *x,
                     int nthreads)
{
    const int64_t dim = w->cfg.dim;
    const size_t row = (size_t)dim * cks_dtype_size(w->embed->dtype);
    const unsigned char *e = w->embed->data;
#pragma omp parallel for num_threads(nthreads < 1 ? 1 : nthreads) schedule(static)
    for (int64_t i = 0; i < n; i++)
        cks_widen_f32(w->embed->dtype, e + (size_t)ids[i] * row, x + i * dim, (size_t)dim);
}
