/* Memorisation of training sequences (DESIGN §3; Biderman et al. 2023, LLM360
 * Analysis360's definition): of each sequence the first k tokens (default 32), exactly as
 * stored (no BOS added), are the prompt; the next l (default 32) are the truth S; the model
 * generates G greedily (argmax, ties to the lowest id) for l tokens.
 *
 *   match[i][j]   1 when G_ij == S_ij
 *   token_match   mean over sequences of (1/l) Σ_j match[i][j]
 *   full_match    fraction of sequences with G_i == S_i            (full[i] = 1)
 *   prefix_match  mean over sequences of (longest common prefix of G_i and S_i) / l
 *
 * Sequences shorter than k + l are skipped (`skipped`); `sequences` counts the others,
 * over which the means are taken. `--samples N` picks N of them uniformly without
 * replacement with gsl_ran_choose and a gsl_rng_mt19937 seeded `--seed` (default 1), kept
 * in file order: the same sample for every checkpoint of a scan (N >= the count: all).
 * (gsl_rng_set turns a seed of 0 into 4357, the generator's historical default: --seed 0
 * and --seed 4357 pick the same sample.)
 * The generation itself is the forward pass's; this file scores what it produced. */
#ifndef CKS_MEMO_H
#define CKS_MEMO_H

#include "trainset.h"

#include <stdint.h>

#define CKS_MEMO_PROMPT       32
#define CKS_MEMO_CONTINUATION 32
#define CKS_MEMO_SEED         1

typedef struct {
    int64_t k, l;                                 /* prompt and continuation lengths */
    int64_t sequences;                            /* scored */
    int64_t skipped;                              /* shorter than k + l (in the file) */
    double token_match, full_match, prefix_match; /* NaN when sequences = 0 */
} cks_memo_summary;

/* The sample's indices among n, increasing, into pick[0..*npick) (pick has room for
 * min(samples, n)): all of 0..n-1 when samples >= n or samples <= 0, else gsl_ran_choose's
 * choice of samples with a fresh gsl_rng_mt19937 seeded seed. Errors: CKS_ENOMEM,
 * CKS_ELIMIT (n > 2^40). */
int cks_memo_choose(int64_t *pick, int64_t *npick, int64_t n, int64_t samples, unsigned long seed);

/* Reads path's sequences for prompt k and continuation l: counts the long-enough lines,
 * picks `samples` of them (cks_memo_choose; samples <= 0: all), reads those (two passes
 * over the file when sampling, one otherwise). out->eligible and out->skipped hold the
 * file's counts. Errors: the file's (loaders/trainset.h); k or l < 1. */
int cks_memo_load(cks_trainset *out, const char *path, int64_t k, int64_t l, int64_t samples,
                  unsigned long seed);

/* Scores n generated continuations: gen[i·l + j] against the truth t->ids + i·width + k
 * (the kept sequences of t, width = k + l). match[n·l] and full[n] receive the flags when
 * not NULL. out->skipped is t->skipped. */
void cks_memo_score(cks_memo_summary *out, const cks_trainset *t, int64_t k, const int32_t *gen,
                    uint8_t *match, uint8_t *full);

#endif
