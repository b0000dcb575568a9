/* Held-out perplexity by layer-major evaluation (DESIGN §3, §5).
 *
 * The protocol, exactly: for each document t of a set, s = [BOS] + t when bos is on, else
 * t. Windows s[b:e] with b = 0, stride, 2·stride, …, e = min(b + ctx, |s|), each a fresh
 * sequence at positions 0…e−b−1; `done` starts at 1; window [b, e) scores every p with
 * max(done, b+1) ≤ p < e (−log P(s[p] | s[b:p])), then done = e; the window with e = |s|
 * is the last. nll = summed NLL / scored tokens over the set; ppl = exp(nll); bpb =
 * summed NLL / (ln 2 · UTF-8 bytes of the set), NaN when the set was given as tokens.
 * (Row i of a window predicts s[b+i+1], so the window's last token, which predicts
 * nothing, is not run: s[b:e-1] goes through the model. The result is the same.)
 *
 * Layer-major: the windows of every set are embedded into one residual stream (rows =
 * window tokens; in memory, or in an unlinked scratch file above resid_mem_max), then
 * layer 0 runs over all of them, then layer 1, …, each layer widened once from the mapped
 * checkpoint and its mapped pages released after use, so peak memory is one layer's
 * weights (or the lm_head) plus the activations of one batch of windows. Each projection
 * is one GEMM over a batch of up to batch_rows rows. The lm_head and the log-softmax run
 * only for scored positions. */
#ifndef CKS_PPL_H
#define CKS_PPL_H

#include "bf16.h"
#include "config.h"
#include "docset.h"
#include "weights.h"

#include <stddef.h>
#include <stdint.h>

#define CKS_PPL_BATCH_ROWS 4096 /* rows per layer batch (raised to the longest window) */

/* A consumer of the lm_head's logits (e.g. klpass.h): block(ctx, pos0, n, targets, col0,
 * nb, logits, ld) receives columns [col0, col0 + nb) of the logits of scored positions
 * [pos0, pos0 + n), numbered over all sets in scoring order (sets, documents, positions:
 * set s's positions follow those of sets 0..s-1), row i at logits + i·ld, targets[i] its
 * true next token. For each group of positions the calls start at col0 = 0 and cover
 * the vocabulary in increasing order; groups come in increasing pos0. The logits are the
 * ones the losses are computed from, bit for bit. A non-zero return (message set) stops
 * the evaluation with that code. */
typedef struct {
    int (*block)(void *ctx, int64_t pos0, int64_t n, const int32_t *targets, int64_t col0,
                 int64_t nb, const float *logits, int64_t ld);
    void *ctx;
} cks_ppl_sink;

typedef struct {
    int64_t ctx;             /* window length, >= 2 */
    int64_t stride;          /* 1 <= stride <= ctx */
    int bos;                 /* prepend BOS to every document */
    int32_t bos_id;          /* the BOS id when bos is on */
    int force;               /* allow ctx > max_position_embeddings */
    int nthreads;            /* <= 0: one */
    cks_precision precision; /* arithmetic of the weight products (DESIGN §5); 0: f32 */
    size_t resid_mem_max;    /* residual stream larger than this goes to a scratch file;
                                0: CKS_ROWSTORE_MEM_MAX */
    const char *tmpdir;      /* scratch folder; NULL: $TMPDIR or /tmp */
    int64_t batch_rows;      /* 0: CKS_PPL_BATCH_ROWS */
    /* called before layer i (0 <= i < nlayers) and with i == nlayers before the lm_head;
       may be NULL */
    void (*progress)(void *ctx, int64_t i, int64_t nlayers);
    void *progress_ctx;
    const cks_ppl_sink *sink; /* NULL: none */
} cks_ppl_options;

/* Results of one set; token_nll is owned (cks_ppl_result_release). */
typedef struct {
    int64_t tokens;      /* scored tokens */
    int64_t rows;        /* window tokens run through the model for this set */
    int64_t bytes;       /* UTF-8 bytes, -1 for token inputs */
    double nll_sum;      /* natural log */
    double nll;          /* nll_sum / tokens */
    double ppl;          /* exp(nll) */
    double bpb;          /* nll_sum / (ln 2 · bytes); NaN for token inputs */
    float *token_nll;    /* [tokens], in scoring order (documents, then positions) */
    int64_t top1;        /* positions whose argmax (ties: the lowest id) is the target */
    double top1_acc;     /* top1 / tokens */
    int64_t ndocs;       /* documents of the set */
    int64_t *doc_tokens; /* [ndocs] scored positions of each document (owned) */
} cks_ppl_result;

typedef struct {
    int64_t rows; /* all window tokens run */
    int64_t windows;
    int64_t batches;
    int resid_file; /* the residual stream lived in a scratch file */
    /* wall-clock seconds of the phases, for benchmarks */
    double t_embed, t_widen, t_layers, t_attention, t_head, t_total;
} cks_ppl_stats;

/* Defaults: ctx = max_position_embeddings, stride = ctx / 2, bos as the family's HF
 * tokenizer does by default (LLaMA, Mistral on; GPT-NeoX, Qwen2, OLMo, OLMo 2 off; on for
 * an unknown family) with config.json's bos_token_id (or the family's default; -1 when
 * there is none), all other fields 0. evalset.h's cks_evalset_bos applies the rest of the
 * BOS rule (tokenizer_config.json, the tokenizer's BOS piece). */
void cks_ppl_options_default(cks_ppl_options *o, const cks_config *cfg);

/* Evaluates every set with the checkpoint's weights. out[nsets] is filled on success
 * (release each). display names the checkpoint in messages. Errors: a config.json the
 * forward pass does not implement (cks_config_check_forward: an unknown model_type, a
 * missing size, a field at a value not implemented; CKS_EUNSUPPORTED and the like); a
 * ctx longer than a sliding window that would apply (CKS_EUNSUPPORTED); a bad
 * ctx/stride, ctx above max_position_embeddings without force, BOS on without a BOS id
 * (CKS_EINVAL); a token id not below the vocabulary (CKS_EFORMAT naming the set's file
 * and the position); a set with nothing to score (CKS_EINVAL); a missing or misshapen
 * tensor. stats may be NULL. */
int cks_ppl_evaluate(cks_ppl_result *out, const cks_weights *cw, const cks_config *cfg,
                     const char *display, const cks_docset *sets, size_t nsets,
                     const cks_ppl_options *o, cks_ppl_stats *stats);
void cks_ppl_result_release(cks_ppl_result *r);

/* The scored positions of all sets together (the size of a sink's numbering), for options
 * that cks_ppl_evaluate would accept. */
int64_t cks_ppl_positions(const cks_docset *sets, size_t nsets, const cks_ppl_options *o);

#endif
