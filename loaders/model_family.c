/* The family table (see model_family.h) and the one tensor-name -> (layer, kind) mapper.
 * Defaults are transformers' configuration_{llama,mistral,qwen2,gpt_neox,olmo,olmo2}.py;
 * names and steps its modeling_*.py (GPTNeoXLayer, Olmo2DecoderLayer, ...). */
#include "model_family.h"
#include "error.h"

#include <stdio.h>
#include <string.h>

#define K(x) CKS_KIND_##x

static const cks_model_family_name llama_layer[] = {
    {"self_attn.q_proj", K(Q)},
    {"self_attn.k_proj", K(K)},
    {"self_attn.v_proj", K(V)},
    {"self_attn.o_proj", K(O)},
    {"mlp.gate_proj", K(GATE)},
    {"mlp.up_proj", K(UP)},
    {"mlp.down_proj", K(DOWN)},
    {"input_layernorm", K(ATTN_NORM)},
    {"post_attention_layernorm", K(MLP_NORM)},
    {NULL, K(OTHER)},
};
static const cks_model_family_name llama_top[] = {
    {"model.embed_tokens", K(EMBED)},
    {"model.norm", K(FINAL_NORM)},
    {"lm_head", K(LM_HEAD)},
    {NULL, K(OTHER)},
};
static const char *const llama_buffers[] = {"self_attn.rotary_emb.inv_freq", NULL};

/* OLMo 2: no input norm; post_attention_layernorm and post_feedforward_layernorm
 * normalise the sublayer outputs (kinds attn_norm, mlp_norm); q/k norms. */
static const cks_model_family_name olmo2_layer[] = {
    {"self_attn.q_proj", K(Q)},
    {"self_attn.k_proj", K(K)},
    {"self_attn.v_proj", K(V)},
    {"self_attn.o_proj", K(O)},
    {"mlp.gate_proj", K(GATE)},
    {"mlp.up_proj", K(UP)},
    {"mlp.down_proj", K(DOWN)},
    {"self_attn.q_norm", K(Q_NORM)},
    {"self_attn.k_norm", K(K_NORM)},
    {"post_attention_layernorm", K(ATTN_NORM)},
    {"post_feedforward_layernorm", K(MLP_NORM)},
    {NULL, K(OTHER)},
};

/* GPT-NeoX: the fused query_key_value is named by fused_qkv, not here (its q, k, v row
 * blocks get the kinds; the whole tensor never reaches a metric). */
static const cks_model_family_name neox_layer[] = {
    {"attention.dense", K(O)},
    {"mlp.dense_h_to_4h", K(UP)},
    {"mlp.dense_4h_to_h", K(DOWN)},
    {"input_layernorm", K(ATTN_NORM)},
    {"post_attention_layernorm", K(MLP_NORM)},
    {NULL, K(OTHER)},
};
static const cks_model_family_name neox_top[] = {
    {"gpt_neox.embed_in", K(EMBED)},
    {"gpt_neox.final_layer_norm", K(FINAL_NORM)},
    {"embed_out", K(LM_HEAD)},
    {NULL, K(OTHER)},
};
/* stored by older Pythia files: the causal mask, its fill value and the rotary table */
static const char *const neox_buffers[] = {"attention.bias", "attention.masked_bias",
                                           "attention.rotary_emb.inv_freq", NULL};

#define LLAMA_NAMES "model.layers.", llama_layer, llama_top, llama_buffers, NULL
#define READS_LLAMA_LIKE                                                             \
    (CKS_CF_KV_HEADS | CKS_CF_HEAD_DIM | CKS_CF_ROPE_THETA | CKS_CF_PARTIAL_ROTARY | \
     CKS_CF_ROPE_SCALING | CKS_CF_HIDDEN_ACT)

/* The behaviour fields every LLaMA-like default shares. */
#define LLAMA_DFLT                                                                       \
    .rope_theta = 10000.0, .rotary_pct = 1.0, .pretraining_tp = 1, .hidden_act = "silu", \
    .parallel_residual = 0, .first_sliding_layer = -2

static const cks_model_family rows[] = {
    {"llama",
     "LlamaForCausalLM",
     LLAMA_NAMES,
     {CKS_NORM_RMS, CKS_NORM_NONE, CKS_NORM_RMS, CKS_NORM_NONE, CKS_NORM_RMS, 0, CKS_MLP_SWIGLU, 0},
     READS_LLAMA_LIKE | CKS_CF_RMS_EPS | CKS_CF_ATTN_BIAS | CKS_CF_MLP_BIAS | CKS_CF_PRETRAINING_TP,
     CKS_CF_PARTIAL_ROTARY | CKS_CF_ATTN_BIAS | CKS_CF_MLP_BIAS | CKS_CF_PRETRAINING_TP |
         CKS_CF_HIDDEN_ACT,
     1,
     {LLAMA_DFLT, .max_position_embeddings = 2048, .norm_eps = 1e-6, .bos_token_id = 1}},
    {"mistral",
     "MistralForCausalLM",
     LLAMA_NAMES,
     {CKS_NORM_RMS, CKS_NORM_NONE, CKS_NORM_RMS, CKS_NORM_NONE, CKS_NORM_RMS, 0, CKS_MLP_SWIGLU, 0},
     READS_LLAMA_LIKE | CKS_CF_RMS_EPS | CKS_CF_SLIDING_WINDOW,
     CKS_CF_PARTIAL_ROTARY | CKS_CF_HIDDEN_ACT,
     1,
     {LLAMA_DFLT, .max_position_embeddings = 4096 * 32, .norm_eps = 1e-6, .bos_token_id = 1,
      .num_key_value_heads = 8, .sliding_window = 4096}},
    {"qwen2",
     "Qwen2ForCausalLM",
     LLAMA_NAMES,
     {CKS_NORM_RMS, CKS_NORM_NONE, CKS_NORM_RMS, CKS_NORM_NONE, CKS_NORM_RMS, 0, CKS_MLP_SWIGLU, 1},
     READS_LLAMA_LIKE | CKS_CF_RMS_EPS | CKS_CF_SLIDING_WINDOW | CKS_CF_USE_SLIDING,
     CKS_CF_PARTIAL_ROTARY | CKS_CF_HIDDEN_ACT,
     0,
     {LLAMA_DFLT, .max_position_embeddings = 32768, .norm_eps = 1e-6, .bos_token_id = -1,
      .num_key_value_heads = 32, .sliding_window = 4096, .max_window_layers = 28}},
    {"gpt_neox",
     "GPTNeoXForCausalLM",
     "gpt_neox.layers.",
     neox_layer,
     neox_top,
     neox_buffers,
     "attention.query_key_value",
     {CKS_NORM_LAYER, CKS_NORM_NONE, CKS_NORM_LAYER, CKS_NORM_NONE, CKS_NORM_LAYER, 0, CKS_MLP_GELU,
      0},
     CKS_CF_LN_EPS | CKS_CF_ROTARY_BASE | CKS_CF_ROTARY_PCT | CKS_CF_ROPE_SCALING |
         CKS_CF_PARALLEL | CKS_CF_ATTN_BIAS | CKS_CF_HIDDEN_ACT,
     CKS_CF_HIDDEN_ACT,
     0,
     {.max_position_embeddings = 2048,
      .norm_eps = 1e-5,
      .rope_theta = 10000.0,
      .rotary_pct = 0.25,
      .parallel_residual = 1,
      .attention_bias = 1,
      .pretraining_tp = 1,
      .hidden_act = "gelu",
      .bos_token_id = 0,
      .first_sliding_layer = -2}},
    {"olmo",
     "OlmoForCausalLM",
     LLAMA_NAMES,
     {CKS_NORM_LAYER_NP, CKS_NORM_NONE, CKS_NORM_LAYER_NP, CKS_NORM_NONE, CKS_NORM_LAYER_NP, 0,
      CKS_MLP_SWIGLU, 0},
     READS_LLAMA_LIKE | CKS_CF_ATTN_BIAS | CKS_CF_CLIP_QKV,
     CKS_CF_PARTIAL_ROTARY | CKS_CF_ATTN_BIAS | CKS_CF_HIDDEN_ACT,
     0,
     {LLAMA_DFLT, .max_position_embeddings = 2048, .norm_eps = 1e-5, .bos_token_id = -1}},
    {"olmo2",
     "Olmo2ForCausalLM",
     "model.layers.",
     olmo2_layer,
     llama_top,
     llama_buffers,
     NULL,
     {CKS_NORM_NONE, CKS_NORM_RMS, CKS_NORM_NONE, CKS_NORM_RMS, CKS_NORM_RMS, 1, CKS_MLP_SWIGLU, 0},
     READS_LLAMA_LIKE | CKS_CF_RMS_EPS | CKS_CF_ATTN_BIAS,
     CKS_CF_PARTIAL_ROTARY | CKS_CF_ATTN_BIAS | CKS_CF_HIDDEN_ACT,
     0,
     {LLAMA_DFLT, .max_position_embeddings = 2048, .norm_eps = 1e-5, .bos_token_id = -1}},
};

#define NROWS (sizeof rows / sizeof rows[0])

const cks_model_family *cks_model_family_find(const char *model_type)
{
    for (size_t i = 0; model_type && i < NROWS; i++)
        if (strcmp(rows[i].model_type, model_type) == 0)
            return &rows[i];
    return NULL;
}

const cks_model_family *cks_model_family_at(size_t i)
{
    return i < NROWS ? &rows[i] : NULL;
}

size_t cks_model_family_count(void)
{
    return NROWS;
}

const char *cks_model_family_list(void)
{
    return "llama, mistral, qwen2, gpt_neox, olmo, olmo2";
}

const cks_model_family *cks_model_family_default(void)
{
    return &rows[0];
}

/* name == base + ".weight" (0) or base + ".bias" (1); -1 otherwise. */
static int ending(const char *name, const char *base)
{
    size_t n = strlen(base);
    if (strncmp(name, base, n) != 0)
        return -1;
    if (strcmp(name + n, ".weight") == 0)
        return 0;
    if (strcmp(name + n, ".bias") == 0)
        return 1;
    return -1;
}

static cks_kind kind_of(cks_kind k, int bias)
{
    return bias ? cks_kind_bias(k) : k;
}

/* After "<prefix><digits>.": the layer number and the rest, or -1. */
static int layer_of(const cks_model_family *f, const char *name, const char **rest)
{
    size_t n = strlen(f->layer_prefix);
    const char *p = name + n;
    long v = 0;
    int digits = 0;
    if (strncmp(name, f->layer_prefix, n) != 0)
        return -1;
    while (*p >= '0' && *p <= '9' && digits < 9) {
        v = v * 10 + (*p - '0');
        p++;
        digits++;
    }
    if (digits == 0 || *p != '.')
        return -1;
    *rest = p + 1;
    return (int)v;
}

int cks_model_family_is_fused(const cks_model_family *fam, const char *name)
{
    const char *rest;
    if (!fam || !fam->fused_qkv || layer_of(fam, name, &rest) < 0)
        return 0;
    return ending(rest, fam->fused_qkv) >= 0;
}

int cks_model_family_classify(const cks_model_family *fam, const char *name, int *layer,
                              cks_kind *kind)
{
    const cks_model_family *f = fam ? fam : cks_model_family_default();
    const char *rest;
    int l, b;
    *layer = -1;
    *kind = CKS_KIND_OTHER;
    for (const cks_model_family_name *t = f->top; t->base; t++)
        if ((b = ending(name, t->base)) >= 0) {
            *kind = kind_of(t->kind, b);
            return 0;
        }
    if ((l = layer_of(f, name, &rest)) < 0)
        return 0;
    *layer = l;
    for (const char *const *bu = f->layer_buffers; *bu; bu++)
        if (strcmp(rest, *bu) == 0)
            return 1;
    for (const cks_model_family_name *t = f->layer; t->base; t++)
        if ((b = ending(rest, t->base)) >= 0) {
            *kind = kind_of(t->kind, b);
            return 0;
        }
    /* "<fused>.weight:q": a row block of the fused projection */
    size_t n = strlen(rest);
    if (f->fused_qkv && n > 2 && rest[n - 2] == ':') {
        static const char qkv[] = "qkv";
        const char *c = strchr(qkv, rest[n - 1]);
        char base[160];
        if (c && n - 2 < sizeof base) {
            memcpy(base, rest, n - 2);
            base[n - 2] = '\0';
            if ((b = ending(base, f->fused_qkv)) >= 0)
                *kind = kind_of((cks_kind)(CKS_KIND_Q + (c - qkv)), b);
        }
    }
    return 0;
}

int cks_model_family_tensor_name(const cks_model_family *fam, int64_t l, cks_kind kind, char *buf,
                                 size_t cap)
{
    int bias = cks_kind_is_bias(kind);
    cks_kind w = bias ? cks_kind_weight(kind) : kind;
    const char *end = bias ? "bias" : "weight";
    if (l < 0) {
        for (const cks_model_family_name *t = fam->top; t->base; t++)
            if (t->kind == w)
                return snprintf(buf, cap, "%s.%s", t->base, end) < (int)cap ? 0 : CKS_ELIMIT;
        return CKS_ENOTFOUND;
    }
    if (fam->fused_qkv && (w == CKS_KIND_Q || w == CKS_KIND_K || w == CKS_KIND_V))
        return snprintf(buf, cap, "%s%lld.%s.%s:%c", fam->layer_prefix, (long long)l,
                        fam->fused_qkv, end, "qkv"[w - CKS_KIND_Q]) < (int)cap
                   ? 0
                   : CKS_ELIMIT;
    for (const cks_model_family_name *t = fam->layer; t->base; t++)
        if (t->kind == w)
            return snprintf(buf, cap, "%s%lld.%s.%s", fam->layer_prefix, (long long)l, t->base,
                            end) < (int)cap
                       ? 0
                       : CKS_ELIMIT;
    return CKS_ENOTFOUND;
}
