/* Model families: one table row per Hugging Face model class (DESIGN §2, §5).
 *
 * A row says everything ckptscope knows about a family, as data:
 *   - config.json's model_type and the HF class it stands for;
 *   - the config fields the family's HF code reads (CKS_CF_* bits), their defaults (HF's
 *     configuration_<family>.py) and which of them ckptscope implements at their default
 *     value only (a departing value is refused by name, see config.h);
 *   - the tensor names, mapped to the same kinds in every family (tensor.h), the buffers
 *     that are stored but are not weights, and a fused per-head [q|k|v] projection;
 *   - the forward steps: which norm sits where, the MLP shape, q/k norms, fixed biases.
 * The forward pass (metrics/model.h) and the loaders read the row; nothing else branches
 * on the family.
 *
 * Rows: llama (LlamaForCausalLM), mistral (MistralForCausalLM), qwen2 (Qwen2ForCausalLM),
 * gpt_neox (GPTNeoXForCausalLM, Pythia), olmo (OlmoForCausalLM, OLMo-1 "-hf"), olmo2
 * (Olmo2ForCausalLM). Defaults and modeling follow transformers' configuration_*.py and
 * modeling_*.py of 2025 (v4.5x; tools/family_ref.py names the files). */
#ifndef CKS_MODEL_FAMILY_H
#define CKS_MODEL_FAMILY_H

#include "config.h"
#include "tensor.h"

#include <stddef.h>

/* Where a norm sits and what it computes. */
typedef enum {
    CKS_NORM_NONE = 0, /* no norm at this point */
    CKS_NORM_RMS,      /* w * x / sqrt(mean(x²) + eps)               LlamaRMSNorm */
    CKS_NORM_LAYER,    /* (x - mean) / sqrt(var + eps) * w + b       nn.LayerNorm */
    CKS_NORM_LAYER_NP  /* (x - mean) / sqrt(var + 1e-5), no params   OlmoLayerNorm */
} cks_norm_type;

typedef enum {
    CKS_MLP_SWIGLU = 0, /* down(silu(gate(x)) * up(x))   LlamaMLP */
    CKS_MLP_GELU        /* down(gelu(up(x))), exact erf  GPTNeoXMLP with hidden_act gelu */
} cks_mlp_type;

/* The forward steps of one family. attn_* norms use the layer's attn_norm tensors,
 * mlp_* norms its mlp_norm tensors; *_in norms feed a sublayer, *_out norms (OLMo 2)
 * normalise its output before it is added to the residual stream. */
typedef struct {
    cks_norm_type attn_in, attn_out, mlp_in, mlp_out, final;
    int qk_norm;      /* RMSNorm of q and k over the whole projection (OLMo 2) */
    cks_mlp_type mlp; /* also: the MLP has biases when mlp == CKS_MLP_GELU */
    int qkv_bias;     /* q, k, v projections always have biases (Qwen2) */
} cks_model_family_steps;

/* A tensor name without its ".weight" / ".bias" ending, and its kind. */
typedef struct {
    const char *base;
    cks_kind kind;
} cks_model_family_name;

struct cks_model_family {
    const char *model_type; /* config.json model_type */
    const char *hf_class;
    const char *layer_prefix;           /* "model.layers." then "<i>." then a layer name */
    const cks_model_family_name *layer; /* names inside a layer, {NULL} at the end */
    const cks_model_family_name *top;   /* names outside the layers */
    const char *const *layer_buffers;   /* names inside a layer that are buffers, NULL ends */
    const char *fused_qkv; /* base of the fused per-head [q‖k‖v] projection, or NULL */
    cks_model_family_steps steps;
    unsigned reads;  /* CKS_CF_* the HF code reads from config.json */
    unsigned fixed;  /* of those, the ones implemented at their default value only */
    int add_bos;     /* whether HF's tokenizer starts a document with BOS by default */
    cks_config dflt; /* HF's defaults for the fields read */
};

/* The row of a model_type, or NULL. */
const cks_model_family *cks_model_family_find(const char *model_type);
/* Row i (0 <= i < cks_model_family_count()). */
const cks_model_family *cks_model_family_at(size_t i);
size_t cks_model_family_count(void);
/* "llama, mistral, qwen2, gpt_neox, olmo, olmo2" (static storage). */
const char *cks_model_family_list(void);
/* The row used to name tensors when model_type is unknown or absent: llama. */
const cks_model_family *cks_model_family_default(void);

/* Maps a tensor name to its layer (-1 outside the layers) and kind with fam's names
 * (fam NULL: the default row). "<fused>.weight:q" and the like are the q/k/v row blocks
 * of a fused projection (loaders/weights.h makes them). Returns 1 when the name is one of
 * the family's buffers (kind other: not a weight, metrics skip it), else 0. */
int cks_model_family_classify(const cks_model_family *fam, const char *name, int *layer,
                              cks_kind *kind);

/* The name of layer l's tensor of a kind (a bias kind gives the ".bias" name) into
 * buf[cap]; l < 0 for the tensors outside the layers. CKS_ENOTFOUND (no message) when
 * the family has no tensor of that kind there. */
int cks_model_family_tensor_name(const cks_model_family *fam, int64_t l, cks_kind kind, char *buf,
                                 size_t cap);

/* 1 when name (ending ".weight" or ".bias") is the fused projection of fam. */
int cks_model_family_is_fused(const cks_model_family *fam, const char *name);

#endif
