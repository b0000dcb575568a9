/* The forward pass's config and weights (see model.h): config.json resolved through the
 * family row, and every tensor a layer needs found by the family's names and checked
 * against the shapes the config implies. One table of slots says which tensors a layer
 * has; the family row and the config say which slots are wanted. */
#include "checked.h"
#include "error.h"
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cks_model_config_from(cks_model_config *out, const cks_config *c, const char *display)
{
    char disp[1024];
    snprintf(disp, sizeof disp, "%s:config.json", display);
    int err = cks_config_check_forward(c, disp);
    if (err)
        return err;
    const cks_model_family *f = c->family;
    cks_model_config m;
    memset(&m, 0, sizeof m);
    m.family = f;
    m.steps = f->steps;
    m.dim = c->hidden_size;
    m.hidden = c->intermediate_size;
    m.n_layers = c->num_hidden_layers;
    m.n_heads = c->num_attention_heads;
    m.n_kv_heads = f->reads & CKS_CF_KV_HEADS ? c->num_key_value_heads : c->num_attention_heads;
    m.head_dim = c->head_dim;
    m.vocab = c->vocab_size;
    m.max_pos = c->max_position_embeddings;
    cks_config_rotary(c, &m.rot_freqs, &m.rot_dim);
    m.theta = c->rope_theta;
    m.eps = (float)c->norm_eps;
    m.clip_qkv = (float)c->clip_qkv;
    m.window = cks_config_window(c);
    m.parallel = (f->reads & CKS_CF_PARALLEL) && c->parallel_residual;
    /* biases: Qwen2's q/k/v always; GPT-NeoX's attention_bias on query_key_value and
       dense, its MLP always (nn.Linear's default); LLaMA's would be attention_bias and
       mlp_bias, which check_forward only lets through at false */
    int attn_bias = (f->reads & CKS_CF_ATTN_BIAS) && c->attention_bias;
    m.bias_qkv = f->steps.qkv_bias || attn_bias;
    m.bias_o = attn_bias;
    m.bias_mlp = f->steps.mlp == CKS_MLP_GELU || ((f->reads & CKS_CF_MLP_BIAS) && c->mlp_bias);
    m.tied = c->tie_word_embeddings;
    *out = m;
    return 0;
}

/* ---- binding ---- */

typedef struct {
    cks_kind kind;
    size_t off;         /* in cks_model_layer_views */
    int64_t rows, cols; /* cols 0: a vector */
    int want;
} slot;

#define V(f) offsetof(cks_model_layer_views, f)

static int norm_has_w(cks_norm_type t)
{
    return t == CKS_NORM_RMS || t == CKS_NORM_LAYER;
}

/* The tensors of one layer and whether the model has them. */
static size_t layer_slots(const cks_model_config *c, slot *s)
{
    const int64_t qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    const cks_model_family_steps *st = &c->steps;
    cks_norm_type an = st->attn_in ? st->attn_in : st->attn_out;
    cks_norm_type mn = st->mlp_in ? st->mlp_in : st->mlp_out;
    int swiglu = st->mlp == CKS_MLP_SWIGLU;
    const slot all[] = {
        {CKS_KIND_ATTN_NORM, V(attn_norm), c->dim, 0, norm_has_w(an)},
        {CKS_KIND_ATTN_NORM_BIAS, V(attn_norm_b), c->dim, 0, an == CKS_NORM_LAYER},
        {CKS_KIND_Q, V(wq), qd, c->dim, 1},
        {CKS_KIND_Q_BIAS, V(bq), qd, 0, c->bias_qkv},
        {CKS_KIND_K, V(wk), kvd, c->dim, 1},
        {CKS_KIND_K_BIAS, V(bk), kvd, 0, c->bias_qkv},
        {CKS_KIND_V, V(wv), kvd, c->dim, 1},
        {CKS_KIND_V_BIAS, V(bv), kvd, 0, c->bias_qkv},
        {CKS_KIND_Q_NORM, V(q_norm), qd, 0, st->qk_norm},
        {CKS_KIND_K_NORM, V(k_norm), kvd, 0, st->qk_norm},
        {CKS_KIND_O, V(wo), c->dim, qd, 1},
        {CKS_KIND_O_BIAS, V(bo), c->dim, 0, c->bias_o},
        {CKS_KIND_MLP_NORM, V(mlp_norm), c->dim, 0, norm_has_w(mn)},
        {CKS_KIND_MLP_NORM_BIAS, V(mlp_norm_b), c->dim, 0, mn == CKS_NORM_LAYER},
        {CKS_KIND_GATE, V(w_gate), c->hidden, c->dim, swiglu},
        {CKS_KIND_GATE_BIAS, V(b_gate), c->hidden, 0, swiglu && c->bias_mlp},
        {CKS_KIND_UP, V(w_up), c->hidden, c->dim, 1},
        {CKS_KIND_UP_BIAS, V(b_up), c->hidden, 0, c->bias_mlp},
        {CKS_KIND_DOWN, V(w_down), c->dim, c->hidden, 1},
        {CKS_KIND_DOWN_BIAS, V(b_down), c->dim, 0, c->bias_mlp},
    };
    memcpy(s, all, sizeof all);
    return sizeof all / sizeof all[0];
}
#undef V

#define MAX_SLOTS 32

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
        char got[64];
        cks_tensor_shape_str(t, got, sizeof got);
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

static int bind_layer(cks_model_layer_views *v, const cks_model_config *c,
                      const cks_tensor_list *tl, int64_t l, const char *display)
{
    slot s[MAX_SLOTS];
    size_t n = layer_slots(c, s);
    char name[512];
    for (size_t i = 0; i < n; i++) {
        if (!s[i].want)
            continue;
        if (cks_model_family_tensor_name(c->family, l, s[i].kind, name, sizeof name) != 0)
            return cks_error_set(CKS_ERROR, "%s: the %s family names no %s tensor", display,
                                 c->family->model_type, cks_kind_name(s[i].kind));
        int err = find((const cks_tensor **)((char *)v + s[i].off), tl, name, s[i].rows, s[i].cols,
                       display);
        if (err)
            return err;
    }
    return 0;
}

static int bind_top(cks_model_weights *w, const cks_tensor_list *tl, const char *display)
{
    const cks_model_config *c = &w->cfg;
    cks_norm_type fn = c->steps.final;
    char name[512];
    int err;
#define TOP(field, kind, a, b)                                                               \
    if ((err = cks_model_family_tensor_name(c->family, -1, kind, name, sizeof name)) != 0 || \
        (err = find(&w->field, tl, name, a, b, display)) != 0)                               \
        return err;
    TOP(embed, CKS_KIND_EMBED, c->vocab, c->dim);
    if (norm_has_w(fn)) {
        TOP(final_norm, CKS_KIND_FINAL_NORM, c->dim, 0);
    }
    if (fn == CKS_NORM_LAYER) {
        TOP(final_norm_b, CKS_KIND_FINAL_NORM_BIAS, c->dim, 0);
    }
    if (c->tied) {
        w->lm_head = w->embed;
    } else {
        TOP(lm_head, CKS_KIND_LM_HEAD, c->vocab, c->dim);
    }
#undef TOP
    return 0;
}

/* Tensors of a known kind that nothing bound: the forward pass would ignore them. */
static int check_unused(const cks_model_weights *w, const cks_tensor_list *tl, const char *display)
{
    const cks_model_config *c = &w->cfg;
    unsigned char *used = calloc(tl->count ? tl->count : 1, 1);
    int err = 0;
    if (!used)
        return cks_error_set(CKS_ENOMEM, "out of memory");
#define MARK(p) \
    if (p)      \
        used[(p)-tl->items] = 1;
    MARK(w->embed);
    MARK(w->final_norm);
    MARK(w->final_norm_b);
    MARK(w->lm_head);
    for (int64_t l = 0; l < c->n_layers; l++) {
        const cks_tensor *const *vs = (const cks_tensor *const *)&w->layers[l];
        for (size_t i = 0; i < sizeof w->layers[l] / sizeof *vs; i++)
            MARK(vs[i]);
    }
#undef MARK
    for (size_t i = 0; i < tl->count && !err; i++) {
        const cks_tensor *t = &tl->items[i];
        if (used[i] || (t->kind == CKS_KIND_OTHER && t->layer < c->n_layers))
            continue;
        if (t->layer >= c->n_layers)
            err = cks_error_set(CKS_EFORMAT,
                                "%s: tensor %s belongs to layer %d but the config has %lld "
                                "layers",
                                display, t->name, t->layer, (long long)c->n_layers);
        else
            err =
                cks_error_set(CKS_EUNSUPPORTED,
                              "%s: tensor %s (kind %s) is not part of the %s forward pass as "
                              "config.json describes it%s",
                              display, t->name, cks_kind_name(t->kind), c->family->model_type,
                              t->kind == CKS_KIND_LM_HEAD ? " (tie_word_embeddings is true)" : "");
    }
    free(used);
    return err;
}

int cks_model_weights_bind(cks_model_weights *out, const cks_model_config *cfg,
                           const cks_tensor_list *tl, const char *display)
{
    cks_model_weights w;
    int err;
    memset(&w, 0, sizeof w);
    w.cfg = *cfg;
    if (!(w.layers = calloc((size_t)cfg->n_layers, sizeof *w.layers)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    if ((err = bind_top(&w, tl, display)) != 0)
        goto fail;
    for (int64_t l = 0; l < cfg->n_layers; l++)
        if ((err = bind_layer(&w.layers[l], cfg, tl, l, display)) != 0)
            goto fail;
    if ((err = check_unused(&w, tl, display)) != 0)
        goto fail;
    *out = w;
    return 0;
fail:
    cks_model_weights_release(&w);
    return err;
}

void cks_model_weights_release(cks_model_weights *w)
{
    if (!w)
        return;
    free(w->layers);
    w->layers = NULL;
}

void cks_model_layer_tensors(const cks_model_weights *w, int64_t l,
                             void (*fn)(void *ctx, const cks_tensor *t), void *ctx)
{
    if (l >= w->cfg.n_layers) {
        const cks_tensor *head[] = {w->final_norm, w->final_norm_b, w->lm_head};
        for (size_t i = 0; i < 3; i++)
            if (head[i])
                fn(ctx, head[i]);
        return;
    }
    const cks_tensor *const *vs = (const cks_tensor *const *)&w->layers[l];
    for (size_t i = 0; i < sizeof w->layers[l] / sizeof *vs; i++)
        if (vs[i])
            fn(ctx, vs[i]);
}
