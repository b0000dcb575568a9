/* The built-in forward pass: Hugging Face LlamaForCausalLM in float32 (DESIGN §5),
 * organised for layer-major evaluation (metrics/ppl.h drives it). With cfg.precision
 * CKS_PRECISION_BF16 every weight product goes through cks_matmul in bf16 (gemm.h); the
 * rest stays float32.
 *
 * llama2.c's four structs: a config (cks_llama_config), the weights as views into the
 * mapped checkpoint in their stored dtype (cks_llama_weights), a run state holding every
 * scratch buffer, allocated once for a largest chunk of rows (cks_llama_state), and the
 * owner of all three (the caller), which frees in reverse. Nothing allocates per layer or
 * per token.
 *
 * The computation follows transformers' modeling_llama.py (eager attention):
 *   x = embed_tokens[ids]
 *   per layer:  h = x + o_proj(attn(rope(q_proj(n1)), rope(k_proj(n1)), v_proj(n1)))
 *               x = h + down_proj(silu(gate_proj(n2)) * up_proj(n2))
 *               with n1 = RMSNorm_in(x), n2 = RMSNorm_post(h)
 *   logits = lm_head(RMSNorm_final(x))       (lm_head = embed_tokens when tied)
 * RMSNorm(x) = w * (x * rsqrt(mean(x^2) + eps)); RoPE is rotate-half with
 * inv_freq_i = 1 / theta^(2i/d) and angles pos * inv_freq_i rounded to float32 as HF does;
 * attention is causal, softmax(q kᵀ / sqrt(d)) v, in float32, kv head = head / (heads /
 * kv_heads) (repeat_kv). A batch of rows is a list of *windows*: consecutive rows forming
 * one sequence with positions 0, 1, ...; attention never crosses windows. */
#ifndef CKS_LLAMA_H
#define CKS_LLAMA_H

#include "config.h"
#include "gemm.h"
#include "tensor.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t dim;    /* hidden_size */
    int64_t hidden; /* intermediate_size */
    int64_t n_layers;
    int64_t n_heads;
    int64_t n_kv_heads;
    int64_t head_dim;
    int64_t vocab;
    int64_t max_pos;         /* max_position_embeddings */
    float eps;               /* rms_norm_eps */
    double theta;            /* rope_theta */
    int tied;                /* lm_head is embed_tokens */
    cks_precision precision; /* arithmetic of the weight products (DESIGN §5); set by the
                                caller, F32 from cks_llama_config_from */
} cks_llama_config;

/* From a validated config.json. */
void cks_llama_config_from(cks_llama_config *out, const cks_config *c);

/* Refuses config.json features this forward pass does not implement (they would give
 * silently wrong numbers): rope_scaling other than null, attention_bias or mlp_bias true,
 * hidden_act other than "silu", a model_type other than "llama" (when present).
 * CKS_EUNSUPPORTED naming display and the field. */
int cks_llama_check_config_json(const char *text, size_t len, const char *display);

/* One layer's tensors: views borrowed from a cks_tensor_list, stored dtype. */
typedef struct {
    const cks_tensor *attn_norm; /* (dim) input_layernorm */
    const cks_tensor *wq;        /* (n_heads*head_dim, dim) */
    const cks_tensor *wk;        /* (n_kv_heads*head_dim, dim) */
    const cks_tensor *wv;        /* (n_kv_heads*head_dim, dim) */
    const cks_tensor *wo;        /* (dim, n_heads*head_dim) */
    const cks_tensor *mlp_norm;  /* (dim) post_attention_layernorm */
    const cks_tensor *w_gate;    /* (hidden, dim) */
    const cks_tensor *w_up;      /* (hidden, dim) */
    const cks_tensor *w_down;    /* (dim, hidden) */
} cks_llama_layer_views;

typedef struct {
    cks_llama_config cfg;
    const cks_tensor *embed;       /* (vocab, dim) */
    const cks_tensor *final_norm;  /* (dim) */
    const cks_tensor *lm_head;     /* (vocab, dim); the embedding when tied */
    cks_llama_layer_views *layers; /* [n_layers], owned */
} cks_llama_weights;

/* Finds every tensor the model needs in tl and checks its shape and dtype (a float
 * dtype) against cfg; biases or a second lm_head for a tied model are refused. The views
 * borrow from tl. Errors name display (the checkpoint) and the tensor. */
int cks_llama_weights_bind(cks_llama_weights *out, const cks_llama_config *cfg,
                           const cks_tensor_list *tl, const char *display);
void cks_llama_weights_release(cks_llama_weights *w);

/* One layer inside the state's weight buffer: the norms widened to float32, the matrices
 * in the form the precision multiplies (gemm.h cks_wmat: f32 rows, or rounded to bf16).
 * wq, wk, wv are consecutive (one (q+2kv)×dim matrix, one GEMM); so are w_gate, w_up. */
typedef struct {
    float *attn_norm;   /* (dim) */
    cks_wmat wqkv;      /* (n_heads*head_dim + 2*n_kv_heads*head_dim, dim) */
    cks_wmat wo;        /* (dim, n_heads*head_dim) */
    float *mlp_norm;    /* (dim) */
    cks_wmat w_gate_up; /* (2*hidden, dim): gate rows then up rows */
    cks_wmat w_down;    /* (dim, hidden) */
} cks_llama_layer;

/* A window: n consecutive rows of a batch, positions 0..n-1. */
typedef struct {
    int64_t row; /* first row, relative to the batch */
    int64_t n;
} cks_llama_window;

/* Optional hooks around the reads of stored weights while widening: prepare(p, len)
 * before a chunk of tensor t is read, release(p, len) after (e.g. map it in, then drop it
 * from the resident set). Either may be NULL. */
typedef struct {
    void (*prepare)(void *ctx, const cks_tensor *t, const void *p, size_t len);
    void (*release)(void *ctx, const cks_tensor *t, const void *p, size_t len);
    void *ctx;
} cks_llama_pager;

typedef struct {
    cks_llama_config cfg;
    cks_llama_pager pager; /* zero: no hooks; set by the owner after cks_llama_state_new */
    int64_t max_rows;      /* rows per batch (>= the longest window) */
    int64_t max_win;       /* longest window */
    int64_t mlp_rows;      /* rows per MLP block */
    int64_t head_rows;     /* rows per lm_head block */
    int64_t vblock;        /* logits columns per block */
    int64_t qblock;        /* query rows per attention block */
    int nthreads;
    cks_mm mm;             /* the weight products' arithmetic (cfg.precision) */
    void *wbuf;            /* one layer widened, or the lm_head: max of the two */
    cks_llama_layer layer; /* views into wbuf after cks_llama_load_layer */
    cks_wmat head;         /* (vocab, dim) lm_head in wbuf after cks_llama_load_head */
    float *final_norm;     /* (dim) */
    float *rope_cos;       /* (max_win, head_dim/2) */
    float *rope_sin;       /* (max_win, head_dim/2) */
    float *xb;             /* (max_rows, dim) normalised input */
    float *qkv;            /* (max_rows, n_heads*head_dim + 2*n_kv_heads*head_dim) */
    float *att;            /* (max_rows, n_heads*head_dim) attention output */
    float *hb;             /* (mlp_rows, 2*hidden) gate|up */
    float *scores;         /* (nthreads, qblock, max_win) attention probabilities */
    float *logits;         /* (head_rows, vblock) one block of logits */
    float *lse_max;        /* (head_rows) running max of each row's logits */
    double *lse_sum;       /* (head_rows) running sum of exp(logit - max) */
    float *lse_target;     /* (head_rows) the target's logit */
    int32_t *pos;          /* (max_rows) position of each row in its window */
    double t_attention;    /* seconds spent in attention so far (benchmarks) */
} cks_llama_state;

/* Allocates a state for batches of up to max_rows rows whose windows are at most
 * max_win rows, running on nthreads threads (<= 0: one). CKS_ENOMEM when the buffers do
 * not fit. */
int cks_llama_state_new(cks_llama_state **out, const cks_llama_config *cfg, int64_t max_rows,
                        int64_t max_win, int nthreads);
void cks_llama_state_free(cks_llama_state *s);

/* Rows of embed_tokens for ids[0..n) into x (n, dim). Ids must be < vocab (checked by
 * the caller). */
void cks_llama_embed(const cks_llama_weights *w, const int32_t *ids, int64_t n, float *x,
                     int nthreads);

/* Widens layer l of w into the state's weight buffer (s->layer). */
void cks_llama_load_layer(cks_llama_state *s, const cks_llama_weights *w, int64_t l);

/* Runs the loaded layer over a batch in place: x (rows, dim) is the residual stream of
 * the batch's windows (rows = sum of their n, <= max_rows). Returns 0 or CKS_ENOMEM. */
int cks_llama_layer_forward(cks_llama_state *s, float *x, const cks_llama_window *win,
                            int64_t nwin);

/* Widens the final norm and the lm_head into the state (replaces the loaded layer). */
void cks_llama_load_head(cks_llama_state *s, const cks_llama_weights *w);

/* Logits of n rows of the final residual stream x (n, dim), which are normalised in
 * place by the final RMSNorm, into out (n, vocab). Returns 0 or CKS_ENOMEM. */
int cks_llama_head_logits(cks_llama_state *s, float *x, int64_t n, float *out);

/* Negative log-probabilities of targets[i] under the logits of row i, for n <= head_rows
 * rows of the final residual stream x (normalised in place): -log_softmax(logits)[target]
 * = logsumexp(logits) - logits[target], as float. The logits are made vblock columns at a
 * time and folded into an online logsumexp (max in float, sum in double), so the full
 * (rows, vocab) matrix never exists. Returns 0 or CKS_ENOMEM. */
int cks_llama_head_nll(cks_llama_state *s, float *x, const int32_t *targets, int64_t n, float *nll);

/* One sequence, token-major convenience for tests and small inputs: the (n, vocab)
 * logits of ids[0..n) at positions 0..n-1, in a new array (free it). */
int cks_llama_logits(const cks_llama_weights *w, const int32_t *ids, int64_t n, int nthreads,
                     float **out);

#endif
