/* The built-in forward pass (DESIGN §5): every family of model_family.h in float32, organised
 * for layer-major evaluation (metrics/ppl.h drives it; function-space statistics reuse the
 * layer and head functions). With cfg.precision CKS_PRECISION_BF16 every weight product
 * goes through cks_matmul in bf16 (gemm.h); the rest (norms, biases, attention, RoPE, the
 * residual stream) stays float32.
 *
 * llama2.c's four structs: a config (cks_model_config, resolved from config.json and the
 * family row), the weights as views into the mapped checkpoint in their stored dtype
 * (cks_model_weights), a run state holding every scratch buffer, allocated once for a
 * largest chunk of rows (cks_model_state), and the owner of all three (the caller), which
 * frees in reverse. Nothing allocates per layer or per token.
 *
 * One layer, as the family row's steps say (transformers' modeling_<family>.py, eager
 * attention; every matmul by a weight goes through cks_model_linear, model_ops.h):
 *   a   = attn_in ? Norm_attn(x) : x
 *   q,k,v = a W_{q,k,v}ᵀ (+ b)        clip to ±clip_qkv (OLMo); RMSNorm of q and of k over
 *                                    the whole projection (OLMo 2); RoPE on the first
 *                                    2·ceil(d/2) dims of each head, d = int(head_dim ·
 *                                    rotary share), rotate-half layout
 *   o   = attn(q, k, v) W_oᵀ (+ b)    causal, softmax(q kᵀ / sqrt(head_dim)), GQA
 *   o   = attn_out ? Norm_attn(o) : o (OLMo 2: post_attention_layernorm)
 *   sequential:  x = x + o;  m = mlp_in ? Norm_mlp(x) : x;  x = x + MLP(m)'
 *   parallel:    m = Norm_mlp(x_in);  x = x_in + o + MLP(m)      (GPT-NeoX)
 *   MLP(m) = down(silu(gate(m)) * up(m)) or down(gelu(up(m) + b) ) + b (exact erf);
 *   MLP(m)' = mlp_out ? Norm_mlp(MLP(m)) : MLP(m)   (OLMo 2: post_feedforward_layernorm)
 * and at the end logits = lm_head(Norm_final(x)) (lm_head = embedding when tied).
 * Norms: RMSNorm w·x/sqrt(mean x² + eps); LayerNorm (x−mean)/sqrt(var + eps)·w + b;
 * OLMo's LayerNorm without parameters, eps 1e-5. RoPE: inv_freq_i = 1 / theta^(2i/d) and
 * angles pos · inv_freq_i rounded to float32 as HF computes them.
 *
 * A batch of rows is a list of *windows*: consecutive rows forming one sequence with
 * positions 0, 1, ...; attention never crosses windows. */
#ifndef CKS_MODEL_H
#define CKS_MODEL_H

#include "config.h"
#include "gemm.h"
#include "model_family.h"
#include "tensor.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const cks_model_family *family;
    cks_model_family_steps steps; /* the row's forward steps */
    int64_t dim;                  /* hidden_size */
    int64_t hidden;               /* intermediate_size */
    int64_t n_layers;
    int64_t n_heads;
    int64_t n_kv_heads; /* = n_heads where the family has no GQA */
    int64_t head_dim;
    int64_t vocab;
    int64_t max_pos;         /* max_position_embeddings */
    int64_t rot_freqs;       /* RoPE frequencies: dims [0, 2·rot_freqs) of each head rotate */
    int64_t rot_dim;         /* d in inv_freq_i = 1 / theta^(2i/d) */
    double theta;            /* rope_theta / rotary_emb_base */
    float eps;               /* norm eps (HF adds it to a float32 tensor) */
    float clip_qkv;          /* 0: none */
    int64_t window;          /* windows longer than this would meet a sliding window; 0: none */
    int parallel;            /* GPT-NeoX's use_parallel_residual */
    int bias_qkv;            /* q, k, v projections have biases */
    int bias_o;              /* the output projection has a bias */
    int bias_mlp;            /* the MLP projections have biases */
    int tied;                /* lm_head is the embedding */
    cks_precision precision; /* arithmetic of the weight products (DESIGN §5); set by the
                                caller, F32 from cks_model_config_from */
} cks_model_config;

/* Resolves a parsed config.json for the forward pass after cks_config_check_forward,
 * whose refusals name display (the checkpoint) and its config.json. */
int cks_model_config_from(cks_model_config *out, const cks_config *c, const char *display);

/* One layer's tensors: views borrowed from a cks_tensor_list, stored dtype; NULL where
 * the family has none (qd = n_heads·head_dim, kvd = n_kv_heads·head_dim). */
typedef struct {
    const cks_tensor *attn_norm, *attn_norm_b; /* (dim) */
    const cks_tensor *wq, *bq;                 /* (qd, dim), (qd) */
    const cks_tensor *wk, *bk;                 /* (kvd, dim), (kvd) */
    const cks_tensor *wv, *bv;                 /* (kvd, dim), (kvd) */
    const cks_tensor *q_norm;                  /* (qd) */
    const cks_tensor *k_norm;                  /* (kvd) */
    const cks_tensor *wo, *bo;                 /* (dim, qd), (dim) */
    const cks_tensor *mlp_norm, *mlp_norm_b;   /* (dim) */
    const cks_tensor *w_gate, *b_gate;         /* (hidden, dim), (hidden) SwiGLU */
    const cks_tensor *w_up, *b_up;             /* (hidden, dim), (hidden) */
    const cks_tensor *w_down, *b_down;         /* (dim, hidden), (dim) */
} cks_model_layer_views;

typedef struct {
    cks_model_config cfg;
    const cks_tensor *embed;                     /* (vocab, dim) */
    const cks_tensor *final_norm, *final_norm_b; /* (dim); NULL without parameters */
    const cks_tensor *lm_head;                   /* (vocab, dim); the embedding when tied */
    cks_model_layer_views *layers;               /* [n_layers], owned */
} cks_model_weights;

/* Finds every tensor the model needs in tl by the family's names and checks its shape
 * and dtype (a float dtype) against cfg. A tensor of a known kind that the forward pass
 * would not use (a bias the family has none of, a second lm_head of a tied model, a layer
 * past num_hidden_layers) is refused: it would be ignored silently. The views borrow from
 * tl. Errors name display (the checkpoint) and the tensor. */
int cks_model_weights_bind(cks_model_weights *out, const cks_model_config *cfg,
                           const cks_tensor_list *tl, const char *display);
void cks_model_weights_release(cks_model_weights *w);

/* Calls fn(ctx, t) for every tensor of layer l (l == n_layers: the final norm and the
 * lm_head), in the order cks_model_load_layer reads them (for read-ahead hints). */
void cks_model_layer_tensors(const cks_model_weights *w, int64_t l,
                             void (*fn)(void *ctx, const cks_tensor *t), void *ctx);

/* One layer inside the state's weight buffer: norms and biases widened to float32 (NULL
 * where absent), the matrices in the form the precision multiplies (gemm.h cks_wmat: f32
 * rows, or rounded to bf16; data NULL where absent). wq, wk, wv are consecutive (one
 * (qd+2kvd)×dim matrix, one GEMM), so are their biases; for SwiGLU w_up holds the gate rows
 * then the up rows (one (2·hidden)×dim matrix). */
typedef struct {
    float *attn_norm, *attn_norm_b; /* (dim) */
    float *q_norm, *k_norm;         /* (qd), (kvd) */
    cks_wmat wqkv;                  /* (qd + 2·kvd, dim) */
    float *bqkv;                    /* (qd + 2·kvd) */
    cks_wmat wo;                    /* (dim, qd) */
    float *bo;                      /* (dim) */
    float *mlp_norm, *mlp_norm_b;   /* (dim) */
    cks_wmat w_up;                  /* (up_rows, dim); up_rows = 2·hidden or hidden */
    float *b_up;                    /* (up_rows) */
    cks_wmat w_down;                /* (dim, hidden) */
    float *b_down;                  /* (dim) */
} cks_model_layer;

/* A window: n consecutive rows of a batch, positions 0..n-1. */
typedef struct {
    int64_t row; /* first row, relative to the batch */
    int64_t n;
} cks_model_window;

/* Optional hooks around the reads of stored weights while widening: prepare(p, len)
 * before a run of tensor t is read, release(p, len) after (e.g. map it in, then drop it
 * from the resident set). Either may be NULL. */
typedef struct {
    void (*prepare)(void *ctx, const cks_tensor *t, const void *p, size_t len);
    void (*release)(void *ctx, const cks_tensor *t, const void *p, size_t len);
    void *ctx;
} cks_model_pager;

typedef struct {
    cks_model_config cfg;
    cks_model_pager pager; /* zero: no hooks; set by the owner after cks_model_state_new */
    int64_t max_rows;      /* rows per batch (>= the longest window) */
    int64_t max_win;       /* longest window */
    int64_t mlp_rows;      /* rows per MLP block */
    int64_t head_rows;     /* rows per lm_head block */
    int64_t vblock;        /* logits columns per block */
    int64_t qblock;        /* query rows per attention block */
    int64_t up_rows;       /* 2·hidden (SwiGLU: gate|up) or hidden */
    int nthreads;
    cks_mm mm;             /* the weight products' arithmetic (cfg.precision) */
    void *wbuf;            /* one layer widened, or the lm_head: max of the two */
    cks_model_layer layer; /* views into wbuf after cks_model_load_layer */
    cks_wmat head;         /* (vocab, dim) lm_head in wbuf after cks_model_load_head */
    float *final_norm;     /* (dim) */
    float *final_norm_b;   /* (dim) */
    float *rope_cos;       /* (max_win, rot_freqs) */
    float *rope_sin;       /* (max_win, rot_freqs) */
    float *xb;             /* (max_rows, dim) normalised input */
    float *ob;             /* (max_rows, dim) a sublayer's output before its norm (OLMo 2) */
    float *qkv;            /* (max_rows, qd + 2·kvd) */
    float *att;            /* (max_rows, qd) attention output */
    float *hb;             /* (mlp_rows, up_rows) */
    float *scores;         /* (nthreads, qblock, max_win) attention probabilities */
    float *logits;         /* (head_rows, vblock) one block of logits */
    float *lse_max;        /* (head_rows) running max of each row's logits */
    double *lse_sum;       /* (head_rows) running sum of exp(logit - max) */
    float *lse_target;     /* (head_rows) the target's logit */
    int32_t *pos;          /* (max_rows) position of each row in its window */
    double t_attention;    /* seconds spent in attention so far (benchmarks) */
} cks_model_state;

/* Allocates a state for batches of up to max_rows rows whose windows are at most
 * max_win rows, running on nthreads threads (<= 0: one), in cfg->precision.
 * CKS_EUNSUPPORTED when windows that long would meet the model's sliding window;
 * CKS_ENOMEM when the buffers do not fit; CKS_ERROR when the bf16 library could not start. */
int cks_model_state_new(cks_model_state **out, const cks_model_config *cfg, int64_t max_rows,
                        int64_t max_win, int nthreads);
void cks_model_state_free(cks_model_state *s);

/* Rows of the embedding for ids[0..n) into x (n, dim). Ids must be < vocab (checked by
 * the caller). */
void cks_model_embed(const cks_model_weights *w, const int32_t *ids, int64_t n, float *x,
                     int nthreads);

/* Widens layer l of w into the state's weight buffer (s->layer), matrices in the
 * precision's form. */
void cks_model_load_layer(cks_model_state *s, const cks_model_weights *w, int64_t l);

/* Runs the loaded layer over a batch in place: x (rows, dim) is the residual stream of
 * the batch's windows (rows = sum of their n, <= max_rows). Returns 0 or CKS_ENOMEM. */
int cks_model_layer_forward(cks_model_state *s, float *x, const cks_model_window *win,
                            int64_t nwin);

/* A key/value cache of one layer for a batch of sequences (generation): k and v (nseq,
 * cap, kvd) floats, sequence i's position p at (i·cap + p)·kvd; the keys after RMSNorm
 * (OLMo 2), clipping and RoPE, as attention sees them. */
typedef struct {
    float *k, *v;
    int64_t cap; /* positions per sequence */
} cks_model_kv;

/* After cks_model_layer_forward over windows win[0..nwin) (each a sequence from position
 * 0), copies their keys and values into kv as sequences seq0, seq0 + 1, ... */
void cks_model_kv_store(const cks_model_state *s, const cks_model_window *win, int64_t nwin,
                        int64_t seq0, const cks_model_kv *kv);

/* One token per sequence: runs the loaded layer over x (nseq, dim), row i the token of
 * sequence i at position pos, attending to positions 0..pos-1 of kv (filled by
 * cks_model_kv_store and earlier steps) and itself; its key and value go to kv at pos.
 * Needs nseq <= max_rows and pos < max_win (RoPE tables) and pos < kv->cap. The same
 * arithmetic as cks_model_layer_forward row by row (the products are other GEMM calls:
 * results agree to float rounding). Returns 0, CKS_EINVAL or CKS_ENOMEM. */
int cks_model_layer_decode(cks_model_state *s, float *x, int64_t nseq, int64_t pos,
                           const cks_model_kv *kv);

/* Widens the final norm and the lm_head into the state (replaces the loaded layer). */
void cks_model_load_head(cks_model_state *s, const cks_model_weights *w);

/* Logits of n rows of the final residual stream x (n, dim), which are normalised in
 * place by the final norm, into out (n, vocab). Returns 0 or CKS_ENOMEM. */
int cks_model_head_logits(cks_model_state *s, float *x, int64_t n, float *out);

/* Negative log-probabilities of targets[i] under the logits of row i, for n <= head_rows
 * rows of the final residual stream x (normalised in place): -log_softmax(logits)[target]
 * = logsumexp(logits) - logits[target], as float. The logits are made vblock columns at a
 * time and folded into an online logsumexp (max in float, sum in double), so the full
 * (rows, vocab) matrix never exists. Returns 0 or CKS_ENOMEM. */
int cks_model_head_nll(cks_model_state *s, float *x, const int32_t *targets, int64_t n, float *nll);

/* One sequence, token-major convenience for tests and small inputs: the (n, vocab)
 * logits of ids[0..n) at positions 0..n-1, in a new array (free it). */
int cks_model_logits(const cks_model_weights *w, const int32_t *ids, int64_t n, int nthreads,
                     float **out);

#endif
