/* The lm_head as a scorer (see model.h): for a batch of scored rows, the negative
 * log-likelihood of each row's target, its argmax (top-1), and every block of logits
 * columns handed to a consumer as it is made, so that one forward pass can both score a
 * checkpoint and compare its next-token distributions with another's (klrow.h, klkeep.h)
 * without ever holding a (rows, vocab) matrix. */
#ifndef CKS_MODEL_SCORE_H
#define CKS_MODEL_SCORE_H

#include "model.h"

#include <stdint.h>

/* A consumer of logits blocks: block(ctx, n, col0, nb, logits, ld) receives columns
 * [col0, col0 + nb) of the n rows being scored (row i at logits + i·ld), called with
 * col0 = 0 first and then in increasing order until the vocabulary is covered. A non-zero
 * return (message set) stops the scoring with that code. */
typedef struct {
    int (*block)(void *ctx, int64_t n, int64_t col0, int64_t nb, const float *logits, int64_t ld);
    void *ctx;
} cks_head_sink;

/* cks_model_head_nll (model.h) and more: for n <= head_rows rows of the final residual
 * stream x (normalised in place), nll[i] = −log_softmax(logits_i)[targets[i]] and, when
 * arg is not NULL, arg[i] = the first id holding the largest logit of row i (ties to the
 * lowest id; NaN logits skipped; -1 for a row without a number); every logits block goes
 * to sink when it is not NULL. targets and nll NULL: the argmax alone (no logsumexp). Returns 0,
 * CKS_ENOMEM, or the sink's error. */
int cks_model_head_score(cks_model_state *s, float *x, const int32_t *targets, int64_t n,
                         float *nll, int32_t *arg, const cks_head_sink *sink);

#endif
