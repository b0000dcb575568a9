/* The LLaMA forward pass in float32 (see llama.h): binding a checkpoint's tensors, widening
 * one layer at a time, and running a layer over a batch of windows with every projection
 * as one GEMM over all rows. Reference: transformers/models/llama/modeling_llama.py
 * (LlamaRMSNorm, LlamaRotaryEmbedding, apply_rotary_pos_emb, LlamaMLP, LlamaAttention). */
#include "llama.h"
#include "attn.h"
#include "checked.h"
#include "error.h"
#include "gemm.h"
#include "json.h"
#include "vmath.h"

#include <math.h>
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

void cks_llama_config_from(cks_llama_config *out, const cks_config *c)
{
    memset(out, 0, sizeof *out);
    out->dim = c->hidden_size;
    out->hidden = c->intermediate_size;
    out->n_layers = c->num_hidden_layers;
    out->n_heads = c->num_attention_heads;
    out->n_kv_heads = c->num_key_value_heads;
    out->head_dim = c->head_dim;
    out->vocab = c->vocab_size;
    out->max_pos = c->max_position_embeddings;
    out->eps = (float)c->rms_norm_eps; /* HF adds it to a float32 tensor */
    out->theta = c->rope_theta;
    out->tied = c->tie_word_embeddings;
}

int cks_llama_check_config_json(const char *text, size_t len, const char *display)
{
    json_t *j = NULL, *v;
    int err = cks_json_parse(text, len, display, 1, &j);
    if (err)
        return err;
    if ((v = json_object_get(j, "rope_scaling")) && !json_is_null(v))
        err = cks_error_set(CKS_EUNSUPPORTED,
                            "%s: rope_scaling is set; the built-in forward pass implements "
                            "plain RoPE only",
                            display);
    else if (((v = json_object_get(j, "attention_bias")) && json_is_true(v)) ||
             ((v = json_object_get(j, "mlp_bias")) && json_is_true(v)))
        err = cks_error_set(CKS_EUNSUPPORTED,
                            "%s: projection biases (attention_bias/mlp_bias) are not supported",
                            display);
    else if ((v = json_object_get(j, "hidden_act")) &&
             (!json_is_string(v) || strcmp(json_string_value(v), "silu") != 0))
        err = cks_error_set(CKS_EUNSUPPORTED, "%s: hidden_act must be \"silu\" for LLaMA", display);
    else if ((v = json_object_get(j, "model_type")) &&
             (!json_is_string(v) || strcmp(json_string_value(v), "llama") != 0))
        err = cks_error_set(CKS_EUNSUPPORTED,
                            "%s: model_type is not \"llama\"; the forward pass is LLaMA's only",
                            display);
    json_decref(j);
    return err;
}

/* ---- binding ---- */

static int find(const cks_tensor **out, const cks_tensor_list *tl, const char *name, int64_t a,
                int64_t b, const char *display)
{
    long i = cks_tensor_list_find(tl, name);
    if (i < 0)
        return cks_error_set(CKS_ENOTFOUND, "%s: tensor %s is missing", display, name);
    const cks_tensor *t = &tl->items[i];
    int ndim = b > 0 ? 2 : 1;
    if (!cks_dtype_is_float(t->dtype))
        return cks_error_set(CKS_EUNSUPPORTED, "%s: tensor %s has dtype %s, not a float type",
                             display, name, cks_dtype_name(t->dtype));
    if (t->ndim != ndim || t->shape[0] != a || (ndim == 2 && t->shape[1] != b)) {
        char got[64] = "";
        size_t k = 0;
        for (int d = 0; d < t->ndim && k < sizeof got; d++)
            k += (size_t)snprintf(got + k, sizeof got - k, "%s%lld", d ? "x" : "",
                                  (long long)t->shape[d]);
        if (ndim == 2)
            return cks_error_set(CKS_EFORMAT,
                                 "%s: tensor %s has shape [%s], the config implies [%lldx%lld]",
                                 display, name, got, (long long)a, (long long)b);
        return cks_error_set(CKS_EFORMAT, "%s: tensor %s has shape [%s], the config implies [%lld]",
                             display, name, got, (long long)a);
    }
    *out = t;
    return 0;
}

/* Tensors the forward pass would have to use but does not implement. */
static int check_extra(const cks_tensor_list *tl, const cks_llama_config *c, const char *display)
{
    for (size_t i = 0; i < tl->count; i++) {
        const cks_tensor *t = &tl->items[i];
        size_t n = strlen(t->name);
        if (t->layer >= c->n_layers)
            return cks_error_set(CKS_EFORMAT,
                                 "%s: tensor %s belongs to layer %d but the config has %lld "
                                 "layers",
                                 display, t->name, t->layer, (long long)c->n_layers);
        if (n > 5 && strcmp(t->name + n - 5, ".bias") == 0 && t->layer >= 0)
            return cks_error_set(CKS_EUNSUPPORTED,
                                 "%s: tensor %s is a bias; LLaMA projections have none", display,
                                 t->name);
    }
    return 0;
}

static int bind_layer(cks_llama_layer_views *v, const cks_llama_config *c,
                      const cks_tensor_list *tl, int64_t l, const char *display)
{
    char name[128];
    const int64_t qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    int err;
#define BIND(field, suffix, a, b)                                              \
    snprintf(name, sizeof name, "model.layers.%lld.%s", (long long)l, suffix); \
    if ((err = find(&v->field, tl, name, a, b, display)) != 0)                 \
        return err;
    BIND(attn_norm, "input_layernorm.weight", c->dim, 0);
    BIND(wq, "self_attn.q_proj.weight", qd, c->dim);
    BIND(wk, "self_attn.k_proj.weight", kvd, c->dim);
    BIND(wv, "self_attn.v_proj.weight", kvd, c->dim);
    BIND(wo, "self_attn.o_proj.weight", c->dim, qd);
    BIND(mlp_norm, "post_attention_layernorm.weight", c->dim, 0);
    BIND(w_gate, "mlp.gate_proj.weight", c->hidden, c->dim);
    BIND(w_up, "mlp.up_proj.weight", c->hidden, c->dim);
    BIND(w_down, "mlp.down_proj.weight", c->dim, c->hidden);
#undef BIND
    return 0;
}

int cks_llama_weights_bind(cks_llama_weights *out, const cks_llama_config *cfg,
                           const cks_tensor_list *tl, const char *display)
{
    cks_llama_weights w;
    int err;
    memset(&w, 0, sizeof w);
    w.cfg = *cfg;
    if ((err = check_extra(tl, cfg, display)) != 0)
        return err;
    if (!(w.layers = calloc((size_t)cfg->n_layers, sizeof *w.layers)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    if ((err = find(&w.embed, tl, "model.embed_tokens.weight", cfg->vocab, cfg->dim, display)) ||
        (err = find(&w.final_norm, tl, "model.norm.weight", cfg->dim, 0, display)))
        goto fail;
    if (cfg->tied)
        w.lm_head = w.embed; /* HF ties lm_head to the embedding and ignores a stored copy */
    else if ((err = find(&w.lm_head, tl, "lm_head.weight", cfg->vocab, cfg->dim, display)) != 0)
        goto fail;
    for (int64_t l = 0; l < cfg->n_layers; l++)
        if ((err = bind_layer(&w.layers[l], cfg, tl, l, display)) != 0)
            goto fail;
    *out = w;
    return 0;
fail:
    free(w.layers);
    return err;
}

void cks_llama_weights_release(cks_llama_weights *w)
{
    if (!w)
        return;
    free(w->layers);
    w->layers = NULL;
}

/* ---- state ---- */

/* Bytes of the two norms (f32) at the start of a layer, 64-byte aligned. */
static size_t norm_bytes(const cks_llama_config *c)
{
    return ((size_t)c->dim * 2 * sizeof(float) + 63) / 64 * 64;
}

/* Bytes of one layer in the weight buffer: the two norms, then the four matrices in the
 * precision's form (cks_wmat_bytes). */
static size_t layer_bytes(const cks_llama_state *s, int *bad)
{
    const cks_llama_config *c = &s->cfg;
    const int64_t qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    return norm_bytes(c) + cks_wmat_bytes(&s->mm, qd + 2 * kvd, c->dim, bad) +
           cks_wmat_bytes(&s->mm, c->dim, qd, bad) +
           cks_wmat_bytes(&s->mm, 2 * c->hidden, c->dim, bad) +
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

/* cos/sin of pos * inv_freq_i, inv_freq_i = 1 / theta^(2i/d), each step rounded to float32
 * as LlamaRotaryEmbedding computes them (arange(0, d, 2).float() / d, base ** that, 1.0 /
 * that, inv_freq @ position_ids in float32, then cos/sin of the float32 angle). */
static void rope_tables(cks_llama_state *s)
{
    const int64_t half = s->cfg.head_dim / 2;
    const float d = (float)s->cfg.head_dim, base = (float)s->cfg.theta;
    for (int64_t i = 0; i < half; i++) {
        float inv = 1.0f / powf(base, (float)(2 * i) / d);
        for (int64_t p = 0; p < s->max_win; p++) {
            float ang = (float)p * inv;
            s->rope_cos[p * half + i] = (float)cos((double)ang);
            s->rope_sin[p * half + i] = (float)sin((double)ang);
        }
    }
}

int cks_llama_state_new(cks_llama_state **out, const cks_llama_config *cfg, int64_t max_rows,
                        int64_t max_win, int nthreads)
{
    cks_llama_state *s = calloc(1, sizeof *s);
    const cks_llama_config *c = cfg;
    const int64_t qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    int bad = 0;
    if (!s)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    s->cfg = *cfg;
    s->nthreads = nthreads < 1 ? 1 : nthreads;
    s->max_rows = max_rows < 1 ? 1 : max_rows;
    s->max_win = max_win < 1 ? 1 : max_win;
    if (s->max_win > s->max_rows)
        s->max_rows = s->max_win;
    s->mlp_rows = s->max_rows < MLP_ROWS ? s->max_rows : MLP_ROWS;
    s->qblock = s->max_win < QBLOCK ? s->max_win : QBLOCK;
    s->head_rows = s->max_rows < HEAD_ROWS ? s->max_rows : HEAD_ROWS;
    s->vblock = c->vocab < VOCAB_BLOCK ? c->vocab : VOCAB_BLOCK;
    int err = cks_mm_init(&s->mm, c->precision, CKS_BF16_AUTO);
    if (err) {
        cks_llama_state_free(s);
        return err;
    }
    size_t lb = layer_bytes(s, &bad), hb = cks_wmat_bytes(&s->mm, c->vocab, c->dim, &bad);
    s->wbuf = alloc_floats((int64_t)((lb > hb ? lb : hb) / sizeof(float)), 1, &bad);
    /* the rounded activations of the largest products (bf16) */
    bad = bad || cks_mm_reserve(&s->mm, s->max_rows, c->dim > qd ? c->dim : qd) != 0 ||
          cks_mm_reserve(&s->mm, s->mlp_rows, c->hidden) != 0 ||
          cks_mm_reserve(&s->mm, s->head_rows, c->dim) != 0;
    s->final_norm = alloc_floats(c->dim, 1, &bad);
    s->rope_cos = alloc_floats(s->max_win, c->head_dim / 2, &bad);
    s->rope_sin = alloc_floats(s->max_win, c->head_dim / 2, &bad);
    s->xb = alloc_floats(s->max_rows, c->dim, &bad);
    s->qkv = alloc_floats(s->max_rows, qd + 2 * kvd, &bad);
    s->att = alloc_floats(s->max_rows, qd, &bad);
    s->hb = alloc_floats(s->mlp_rows, 2 * c->hidden, &bad);
    s->scores = alloc_floats((int64_t)s->nthreads * s->qblock, s->max_win, &bad);
    s->logits = alloc_floats(s->head_rows, s->vblock, &bad);
    s->lse_max = alloc_floats(s->head_rows, 1, &bad);
    s->lse_target = alloc_floats(s->head_rows, 1, &bad);
    s->lse_sum = bad ? NULL : malloc((size_t)s->head_rows * sizeof *s->lse_sum);
    s->pos = bad ? NULL : malloc((size_t)s->max_rows * sizeof *s->pos);
    if (bad || !s->pos || !s->lse_sum) {
        cks_llama_state_free(s);
        return cks_error_set(CKS_ENOMEM,
                             "out of memory for the forward pass (batches of %lld rows, "
                             "windows of %lld)",
                             (long long)max_rows, (long long)max_win);
    }
    rope_tables(s);
    *out = s;
    return 0;
}

void cks_llama_state_free(cks_llama_state *s)
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
    free(s->xb);
    free(s->rope_sin);
    free(s->rope_cos);
    free(s->final_norm);
    free(s->wbuf);
    cks_mm_release(&s->mm);
    free(s);
}

/* ---- widening ---- */

/* Widens t into elements e0.. of w (widened to f32, or rounded to bf16 in the precision's
 * layout), WIDEN_CHUNK stored bytes at a time: the pager maps each chunk in before and
 * releases it after, so at most one chunk of the mapped file is resident. */
static void widen_into(const cks_llama_state *s, const cks_tensor *t, cks_wmat *w, int64_t e0)
{
    const size_t n = (size_t)t->numel, es = cks_dtype_size(t->dtype);
    const size_t per_chunk = WIDEN_CHUNK / es;
    const unsigned char *src = t->data;
    const cks_llama_pager *pg = &s->pager;
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

/* Widens t (a norm) into dst as float32. */
static void widen(const cks_llama_state *s, const cks_tensor *t, float *dst)
{
    cks_wmat w = {1, t->numel, CKS_WMAT_F32, dst};
    widen_into(s, t, &w, 0);
}

/* Places an n × k matrix of the layer at *p in the buffer and moves *p past it. */
static void place(cks_llama_state *s, cks_wmat *w, unsigned char **p, int64_t n, int64_t k)
{
    int bad = 0;
    cks_wmat_init(w, &s->mm, *p, n, k);
    *p += cks_wmat_bytes(&s->mm, n, k, &bad);
}

void cks_llama_load_layer(cks_llama_state *s, const cks_llama_weights *w, int64_t l)
{
    const cks_llama_config *c = &s->cfg;
    const cks_llama_layer_views *v = &w->layers[l];
    const int64_t qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    cks_llama_layer *L = &s->layer;
    unsigned char *p = s->wbuf;
    L->attn_norm = (float *)(void *)p;
    L->mlp_norm = L->attn_norm + c->dim;
    p += norm_bytes(c);
    place(s, &L->wqkv, &p, qd + 2 * kvd, c->dim);
    place(s, &L->wo, &p, c->dim, qd);
    place(s, &L->w_gate_up, &p, 2 * c->hidden, c->dim);
    place(s, &L->w_down, &p, c->dim, c->hidden);
    widen(s, v->attn_norm, L->attn_norm);
    widen(s, v->mlp_norm, L->mlp_norm);
    widen_into(s, v->wq, &L->wqkv, 0);
    widen_into(s, v->wk, &L->wqkv, qd * c->dim);
    widen_into(s, v->wv, &L->wqkv, (qd + kvd) * c->dim);
    widen_into(s, v->wo, &L->wo, 0);
    widen_into(s, v->w_gate, &L->w_gate_up, 0);
    widen_into(s, v->w_up, &L->w_gate_up, c->hidden * c->dim);
    widen_into(s, v->w_down, &L->w_down, 0);
}

void cks_llama_load_head(cks_llama_state *s, const cks_llama_weights *w)
{
    widen(s, w->final_norm, s->final_norm);
    memset(&s->layer, 0, sizeof s->layer);
    cks_wmat_init(&s->head, &s->mm, s->wbuf, s->cfg.vocab, s->cfg.dim);
    widen_into(s, w->lm_head, &s->head, 0);
}

void cks_llama_embed(const cks_llama_weights *w, const int32_t *ids, int64_t n, float *x,
                     int nthreads)
{
    const int64_t dim = w->cfg.dim;
    const size_t row = (size_t)dim * cks_dtype_size(w->embed->dtype);
    const unsigned char *e = w->embed->data;
#pragma omp parallel for num_threads(nthreads < 1 ? 1 : nthreads) schedule(static)
    for (int64_t i = 0; i < n; i++)
        cks_widen_f32(w->embed->dtype, e + (size_t)ids[i] * row, x + i * dim, (size_t)dim);
}

/* ---- one layer ---- */

/* out = w * (x * rsqrt(mean(x^2) + eps)) per row (LlamaRMSNorm; the mean is accumulated in
 * double, the rest in float32 in HF's order). out may equal x. */
static void rmsnorm(float *out, const float *x, const float *w, int64_t rows, int64_t dim,
                    float eps, int nthreads)
{
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *o = out + r * dim;
        double ss = 0;
        for (int64_t i = 0; i < dim; i++)
            ss += (double)xr[i] * xr[i];
        float var = (float)(ss / (double)dim);
        float inv = 1.0f / sqrtf(var + eps);
        for (int64_t i = 0; i < dim; i++)
            o[i] = w[i] * (xr[i] * inv);
    }
}

/* apply_rotary_pos_emb: v*cos + rotate_half(v)*sin, rotate_half(v) = [-v2, v1]. */
static inline void rope_head(float *v, const float *cs, const float *sn, int64_t half)
{
    for (int64_t i = 0; i < half; i++) {
        float a = v[i], b = v[i + half];
        v[i] = a * cs[i] - b * sn[i];
        v[i + half] = b * cs[i] + a * sn[i];
    }
}

static void rope(cks_llama_state *s, int64_t rows, int64_t ld)
{
    const int64_t hd = s->cfg.head_dim, half = hd / 2;
    const int64_t nrot = s->cfg.n_heads + s->cfg.n_kv_heads; /* q heads, then k heads */
#pragma omp parallel for num_threads(s->nthreads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *cs = s->rope_cos + (int64_t)s->pos[r] * half;
        const float *sn = s->rope_sin + (int64_t)s->pos[r] * half;
        for (int64_t h = 0; h < nrot; h++)
            rope_head(s->qkv + r * ld + h * hd, cs, sn, half);
    }
}

static int mlp(cks_llama_state *s, float *x, int64_t rows)
{
    const cks_llama_config *c = &s->cfg;
    const int64_t H = c->hidden;
    int err = 0;
    for (int64_t m0 = 0; m0 < rows && !err; m0 += s->mlp_rows) {
        int64_t m = rows - m0 < s->mlp_rows ? rows - m0 : s->mlp_rows;
        /* [gate | up] = n2 [W_gate; W_up]ᵀ, one product */
        if ((err = cks_matmul(&s->mm, &s->layer.w_gate_up, 0, 2 * H, m, s->xb + m0 * c->dim, c->dim,
                              0.0f, s->hb, 2 * H, s->nthreads)))
            break;
#pragma omp parallel for num_threads(s->nthreads) schedule(static)
        for (int64_t r = 0; r < m; r++)
            cks_vswiglu(s->hb + r * 2 * H, s->hb + r * 2 * H + H, H);
        /* x += down(silu(gate) * up) */
        err = cks_matmul(&s->mm, &s->layer.w_down, 0, c->dim, m, s->hb, 2 * H, 1.0f,
                         x + m0 * c->dim, c->dim, s->nthreads);
    }
    return err;
}

int cks_llama_layer_forward(cks_llama_state *s, float *x, const cks_llama_window *win, int64_t nwin)
{
    const cks_llama_config *c = &s->cfg;
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
    rmsnorm(s->xb, x, s->layer.attn_norm, rows, c->dim, c->eps, s->nthreads);
    if ((err = cks_matmul(&s->mm, &s->layer.wqkv, 0, ld, rows, s->xb, c->dim, 0.0f, s->qkv, ld,
                          s->nthreads)))
        return err;
    rope(s, rows, ld);
    cks_attn_shape sh = {c->n_heads, c->n_kv_heads, c->head_dim,
                         s->qblock,  s->max_win,    s->nthreads};
    double t0 = omp_get_wtime();
    err = cks_attention(&sh, s->qkv, ld, s->att, qd, win, nwin, s->scores);
    s->t_attention += omp_get_wtime() - t0;
    if (err)
        return err;
    /* h = x + o_proj(attn) */
    if ((err = cks_matmul(&s->mm, &s->layer.wo, 0, c->dim, rows, s->att, qd, 1.0f, x, c->dim,
                          s->nthreads)))
        return err;
    rmsnorm(s->xb, x, s->layer.mlp_norm, rows, c->dim, c->eps, s->nthreads);
    return mlp(s, x, rows);
}

/* ---- head ---- */

int cks_llama_head_logits(cks_llama_state *s, float *x, int64_t n, float *out)
{
    const cks_llama_config *c = &s->cfg;
    rmsnorm(x, x, s->final_norm, n, c->dim, c->eps, s->nthreads);
    return cks_matmul(&s->mm, &s->head, 0, c->vocab, n, x, c->dim, 0.0f, out, c->vocab,
                      s->nthreads);
}

/* Folds one block of logits columns [v0, v0+nb) into each row's running logsumexp
 * (online: m' = max(m, block max), sum' = sum·exp(m - m') + Σ exp(l - m')) and picks the
 * target's logit when it lies in the block. */
static void lse_fold(cks_llama_state *s, const int32_t *targets, int64_t n, int64_t v0, int64_t nb)
{
#pragma omp parallel for num_threads(s->nthreads) schedule(static)
    for (int64_t r = 0; r < n; r++) {
        const float *row = s->logits + r * nb;
        float bm = cks_vmax(row, nb), m = s->lse_max[r] > bm ? s->lse_max[r] : bm;
        double scale = exp((double)s->lse_max[r] - (double)m); /* 0 for the first block */
        s->lse_sum[r] = s->lse_sum[r] * scale + cks_vsumexp(row, nb, m);
        s->lse_max[r] = m;
        if (targets[r] >= v0 && targets[r] < v0 + nb)
            s->lse_target[r] = row[targets[r] - v0];
    }
}

int cks_llama_head_nll(cks_llama_state *s, float *x, const int32_t *targets, int64_t n, float *nll)
{
    const cks_llama_config *c = &s->cfg;
    int err;
    rmsnorm(x, x, s->final_norm, n, c->dim, c->eps, s->nthreads);
    for (int64_t r = 0; r < n; r++) {
        s->lse_max[r] = -INFINITY;
        s->lse_sum[r] = 0;
        s->lse_target[r] = NAN;
    }
    /* logits in column blocks that stay in cache, each folded into an online logsumexp;
       the rows enter the products once (bf16: rounded once) */
    if ((err = cks_mm_input(&s->mm, x, c->dim, n, c->dim, s->nthreads)) != 0)
        return err;
    for (int64_t v0 = 0; v0 < c->vocab; v0 += s->vblock) {
        int64_t nb = c->vocab - v0 < s->vblock ? c->vocab - v0 : s->vblock;
        if ((err = cks_mm_product(&s->mm, &s->head, v0, nb, 0.0f, s->logits, nb, s->nthreads)) != 0)
            return err;
        lse_fold(s, targets, n, v0, nb);
    }
    /* -log_softmax(logits)[t] = logsumexp(logits) - logits[t] */
    for (int64_t r = 0; r < n; r++)
        nll[r] = (float)((double)s->lse_max[r] + log(s->lse_sum[r]) - (double)s->lse_target[r]);
    return 0;
}

/* ---- one sequence ---- */

int cks_llama_logits(const cks_llama_weights *w, const int32_t *ids, int64_t n, int nthreads,
                     float **out)
{
    const cks_llama_config *c = &w->cfg;
    cks_llama_state *s = NULL;
    float *x = NULL, *lg = NULL;
    size_t nl;
    int err;
    if (n < 1 || cks_mul_size((size_t)n, (size_t)c->vocab, &nl))
        return cks_error_set(CKS_EINVAL, "cannot compute logits of %lld tokens", (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab)
            return cks_error_set(CKS_EINVAL, "token %lld is %d, not below the vocabulary size %lld",
                                 (long long)i, ids[i], (long long)c->vocab);
    if ((err = cks_llama_state_new(&s, c, n, n, nthreads)) != 0)
        return err;
    x = malloc((size_t)n * (size_t)c->dim * sizeof *x);
    lg = malloc(nl * sizeof *lg);
    if (!x || !lg) {
        err = cks_error_set(CKS_ENOMEM, "out of memory");
        goto done;
    }
    cks_llama_embed(w, ids, n, x, s->nthreads);
    cks_llama_window win = {0, n};
    for (int64_t l = 0; l < c->n_layers; l++) {
        cks_llama_load_layer(s, w, l);
        if ((err = cks_llama_layer_forward(s, x, &win, 1)) != 0)
            goto done;
    }
    cks_llama_load_head(s, w);
    if ((err = cks_llama_head_logits(s, x, n, lg)) != 0)
        goto done;
    *out = lg;
    lg = NULL;
done:
    free(lg);
    free(x);
    cks_llama_state_free(s);
    return err;
}
