/* config.json of a checkpoint (DESIGN §2).
 *
 * model_type picks the family (model_family.h); the fields the family's Hugging Face code reads
 * are parsed with that family's defaults. Two levels of checking:
 *
 * cks_config_parse — what every command may rely on. The text is JSON, at most
 *   CKS_MAX_CONFIG_BYTES; every field present has the right type and range (sizes in
 *   [1, CKS_MAX_*], eps in (0, 1], ...), and products that would size buffers fit. An
 *   unknown or absent model_type, or a missing size, is accepted (family NULL, size 0):
 *   norms, spectra and drift work on any checkpoint whose tensors can be read.
 *
 * cks_config_check_forward — what the forward pass needs on top, run only where a forward
 *   pass runs (ppl, scan's ppl family): a family ckptscope implements (refused naming
 *   them), every size it needs present, heads dividing hidden where the family derives
 *   head_dim, kv heads dividing heads, an even head_dim, and every field the family's code
 *   would honour at a value ckptscope implements (rope_scaling of another type,
 *   pretraining_tp != 1, mlp_bias true, attention_bias true for LLaMA, hidden_act other
 *   than the family's, a rotary fraction HF itself cannot run, ...): refused by name,
 *   never ignored. Fields at implemented values are accepted. A sliding window depends on
 *   the window length run: cks_config_window says from which length it would apply. */
#ifndef CKS_CONFIG_H
#define CKS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CKS_MAX_CONFIG_BYTES (1u << 20) /* config.json larger than 1 MiB is refused */
#define CKS_MAX_HIDDEN       (1 << 17)  /* 131072; K2 uses 8192 */
#define CKS_MAX_INTERMEDIATE (1 << 20)
#define CKS_MAX_LAYERS       4096
#define CKS_MAX_HEADS        4096
#define CKS_MAX_VOCAB        (1 << 22) /* 4M pieces */
#define CKS_MAX_POSITIONS    (1 << 22)

/* config.json fields beyond the sizes, as bits (cks_model_family.reads/.fixed, cks_config.present).
 */
#define CKS_CF_KV_HEADS       (1u << 0)  /* num_key_value_heads */
#define CKS_CF_HEAD_DIM       (1u << 1)  /* head_dim (else hidden_size / num_attention_heads) */
#define CKS_CF_RMS_EPS        (1u << 2)  /* rms_norm_eps */
#define CKS_CF_LN_EPS         (1u << 3)  /* layer_norm_eps */
#define CKS_CF_ROPE_THETA     (1u << 4)  /* rope_theta */
#define CKS_CF_ROTARY_BASE    (1u << 5)  /* rotary_emb_base (GPT-NeoX's rope_theta) */
#define CKS_CF_ROTARY_PCT     (1u << 6)  /* rotary_pct (GPT-NeoX) */
#define CKS_CF_PARTIAL_ROTARY (1u << 7)  /* partial_rotary_factor (LLaMA's rope init reads it) */
#define CKS_CF_ROPE_SCALING   (1u << 8)  /* rope_scaling, rope_parameters */
#define CKS_CF_PARALLEL       (1u << 9)  /* use_parallel_residual */
#define CKS_CF_ATTN_BIAS      (1u << 10) /* attention_bias */
#define CKS_CF_MLP_BIAS       (1u << 11) /* mlp_bias */
#define CKS_CF_PRETRAINING_TP (1u << 12) /* pretraining_tp */
#define CKS_CF_CLIP_QKV       (1u << 13) /* clip_qkv */
#define CKS_CF_SLIDING_WINDOW (1u << 14) /* sliding_window */
#define CKS_CF_USE_SLIDING    (1u << 15) /* use_sliding_window, max_window_layers, layer_types */
#define CKS_CF_HIDDEN_ACT     (1u << 16) /* hidden_act */

typedef struct cks_model_family cks_model_family;

typedef struct {
    const cks_model_family *family; /* from model_type; NULL when unknown or absent */
    char model_type[32];            /* "" when absent */
    /* sizes; 0 when absent */
    int64_t hidden_size;
    int64_t intermediate_size;
    int64_t num_hidden_layers;
    int64_t num_attention_heads;
    int64_t num_key_value_heads; /* default: num_attention_heads */
    int64_t head_dim;            /* head_dim when the family reads it and it is given, else
                                    hidden_size / num_attention_heads (0 when unknown) */
    int64_t vocab_size;
    int64_t max_position_embeddings; /* default: the family's */
    /* what the forward pass reads (each from the family's field, else its default) */
    double norm_eps;             /* rms_norm_eps or layer_norm_eps; OLMo: 1e-5 */
    double rope_theta;           /* rope_theta, rotary_emb_base or rope_parameters.rope_theta */
    double rotary_pct;           /* rotary_pct or partial_rotary_factor: rotated share of a head */
    char rope_type[24];          /* rope_scaling's type, "" for none (null or "default") */
    int parallel_residual;       /* use_parallel_residual */
    int attention_bias;          /* attention_bias */
    int mlp_bias;                /* mlp_bias */
    int64_t pretraining_tp;      /* pretraining_tp */
    double clip_qkv;             /* clip_qkv; 0 when null */
    int64_t sliding_window;      /* sliding_window; 0 when null */
    int use_sliding_window;      /* use_sliding_window (Qwen2) */
    int64_t max_window_layers;   /* max_window_layers (Qwen2) */
    int64_t first_sliding_layer; /* layer_types' first "sliding_attention", -1 none, -2 absent */
    char hidden_act[24];
    int tie_word_embeddings;
    int64_t bos_token_id; /* -1 when absent (and no family default) */
    int64_t eos_token_id; /* -1 when absent or a list */
    char torch_dtype[16]; /* "" when absent */
    unsigned present;     /* CKS_CF_* bits of the fields config.json holds */
} cks_config;

/* Parses and validates config.json text; display names the file in messages. */
int cks_config_parse(const char *text, size_t len, const char *display, cks_config *out);

/* The forward pass's checks (see the top of this file). display names the file (and the
 * checkpoint). CKS_EUNSUPPORTED for a family or value not implemented, CKS_ENOTFOUND for
 * a missing size, CKS_EFORMAT for inconsistent sizes; 0 when a forward pass can run. */
int cks_config_check_forward(const cks_config *c, const char *display);

/* The window length (rows of one sequence) above which a sliding window would apply to
 * some layer, or 0 when none would (Mistral: sliding_window; Qwen2: sliding_window when
 * use_sliding_window is true and some layer is at or past max_window_layers, or is a
 * "sliding_attention" layer of layer_types). */
int64_t cks_config_window(const cks_config *c);

/* Rotary dimensions per head as HF computes them: the frequencies are 1 / theta^(2i/d)
 * for i < ceil(d/2) with d = int(head_dim * rotary_pct), and they rotate the first
 * 2*ceil(d/2) dims of each head. *nfreq = ceil(d/2), *d_out = d. */
void cks_config_rotary(const cks_config *c, int64_t *nfreq, int64_t *d_out);

#endif
